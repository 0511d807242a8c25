//! The reference modules' weights: `EncLayer`, `DecLayer`, `PositionWiseFeedForward`.

use super::MESSAGE_SCALE;
use crate::kernels::{gelu_inplace, LayerNorm, Linear};

/// `PositionWiseFeedForward`: `W_out(gelu(W_in(h)))`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    pub w_in: Linear,
    pub w_out: Linear,
}

impl FeedForward {
    /// `h ← norm(h + FFN(h))` for `rows` rows, using `scratch` (≥ rows·4H) and `tmp` (≥ rows·H).
    pub fn residual_norm(&self, h: &mut [f32], rows: usize, norm: &LayerNorm, scratch: &mut Vec<f32>) {
        let hd = self.w_out.n_out;
        let ff = self.w_in.n_out;
        scratch.resize(rows * (ff + hd), 0.0);
        let (inner, out) = scratch.split_at_mut(rows * ff);
        self.w_in.forward(h, rows, inner);
        gelu_inplace(inner);
        self.w_out.forward(inner, rows, out);
        for (v, d) in h[..rows * hd].iter_mut().zip(out.iter()) {
            *v += d;
        }
        norm.forward_inplace(&mut h[..rows * hd]);
    }
}

/// `EncLayer`: node update from messages over `[h_i, e_ij, h_j]`, then edge update.
#[derive(Debug, Clone)]
pub struct EncLayer {
    pub w1: Linear,
    pub w2: Linear,
    pub w3: Linear,
    pub w11: Linear,
    pub w12: Linear,
    pub w13: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    pub dense: FeedForward,
    /// `W1` split into the blocks for `h_i` (with W1's bias), `e_ij` and `h_j`.
    pub w1_blocks: [Linear; 3],
    /// `W11` split the same way.
    pub w11_blocks: [Linear; 3],
    /// `W3` without its bias: applied once per node to the masked sum of the hidden messages
    /// (`Σ_j W3·g_ij + b3 = W3·Σ_j g_ij + count·b3`, W3 being linear).
    pub w3_sum: Linear,
}

/// `W · [h_i; e_ij; h_j]` as three blocks (the first one carries the bias).
fn node_edge_node_blocks(w: &Linear) -> [Linear; 3] {
    let h = w.n_in / 3;
    let mut own = w.column_block(0, h);
    own.bias = w.bias.clone();
    [own, w.column_block(h, h), w.column_block(2 * h, h)]
}

impl EncLayer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w1: Linear,
        w2: Linear,
        w3: Linear,
        w11: Linear,
        w12: Linear,
        w13: Linear,
        norm1: LayerNorm,
        norm2: LayerNorm,
        norm3: LayerNorm,
        dense: FeedForward,
    ) -> Self {
        let w1_blocks = node_edge_node_blocks(&w1);
        let w11_blocks = node_edge_node_blocks(&w11);
        let w3_sum = w3.column_block(0, w3.n_in);
        EncLayer { w1, w2, w3, w11, w12, w13, norm1, norm2, norm3, dense, w1_blocks, w11_blocks, w3_sum }
    }
}

/// `DecLayer`, with its first layer split into the blocks that multiply `h_i`, `e_ij`, `s_j`
/// and `h_j` (`W1·[h_i; e; s; h_j] = W1h·h_i + W1e·e + W1s·s + W1v·h_j`).
#[derive(Debug, Clone)]
pub struct DecLayer {
    pub w1: Linear,
    pub w2: Linear,
    pub w3: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dense: FeedForward,
    /// Block of `W1` for the node's own state (with W1's bias).
    pub w1_self: Linear,
    pub w1_edge: Linear,
    pub w1_seq: Linear,
    pub w1_nbr: Linear,
    /// `W3` without its bias, applied once per node to the sum of the hidden messages.
    pub w3_sum: Linear,
}

impl DecLayer {
    pub fn new(w1: Linear, w2: Linear, w3: Linear, norm1: LayerNorm, norm2: LayerNorm, dense: FeedForward) -> Self {
        let h = w2.n_out;
        let mut w1_self = w1.column_block(0, h);
        w1_self.bias = w1.bias.clone();
        let w1_edge = w1.column_block(h, h);
        let w1_seq = w1.column_block(2 * h, h);
        let w1_nbr = w1.column_block(3 * h, h);
        let w3_sum = w3.column_block(0, w3.n_in);
        DecLayer { w1, w2, w3, norm1, norm2, dense, w1_self, w1_edge, w1_seq, w1_nbr, w3_sum }
    }
}

/// A `DecLayer` (or LigandMPNN's `DecLayerJ`) applied to a given set of edge inputs per node,
/// without a neighbour gather: LigandMPNN's atom-context layers. `W1·[h_i; x_ia]` is split into
/// the node block (with W1's bias, once per node) and the edge block (once per edge).
///
/// `h_i ← mask_i · norm2(h' + FFN(h'))` with `h' = norm1(h_i + Σ_a att_ia·msg_ia / 30)` and
/// `msg_ia = W3·gelu(W2·gelu(W1·[h_i; x_ia]))`, exactly the reference layer's arithmetic; edges
/// whose attention weight is 0 contribute nothing and are left out by the caller.
#[derive(Debug, Clone)]
pub struct EdgeSetLayer {
    pub w1: Linear,
    pub w2: Linear,
    pub w3: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dense: FeedForward,
    /// Block of `W1` for the node's own state (with W1's bias).
    pub w1_self: Linear,
    /// Block of `W1` for the edge input (`n_in − H` columns).
    pub w1_edge: Linear,
    /// `W3` without its bias, applied once per node to the weighted sum of the hidden messages.
    pub w3_sum: Linear,
}

/// Scratch buffers for [`EdgeSetLayer::forward`].
#[derive(Debug, Default, Clone)]
pub struct EdgeSetScratch {
    own: Vec<f32>,
    pre: Vec<f32>,
    mid: Vec<f32>,
    sums: Vec<f32>,
    counts: Vec<f32>,
    dh: Vec<f32>,
    ffn: Vec<f32>,
}

impl EdgeSetLayer {
    pub fn new(w1: Linear, w2: Linear, w3: Linear, norm1: LayerNorm, norm2: LayerNorm, dense: FeedForward) -> Self {
        let h = w2.n_out;
        assert!(w1.n_in > h, "W1 must take the node state and an edge input");
        let mut w1_self = w1.column_block(0, h);
        w1_self.bias = w1.bias.clone();
        let w1_edge = w1.column_block(h, w1.n_in - h);
        let w3_sum = w3.column_block(0, w3.n_in);
        EdgeSetLayer { w1, w2, w3, norm1, norm2, dense, w1_self, w1_edge, w3_sum }
    }

    /// Width of an edge input.
    pub fn edge_inputs(&self) -> usize {
        self.w1_edge.n_in
    }

    /// Updates the `node_mask.len()` node states `h` (`[n, H]`) in place from the edges
    /// `edges` (`[m, edge_inputs]`), edge `e` belonging to node `edge_node[e]` with weight
    /// `att[e]` (the reference `mask_attend`), then multiplies each node by `node_mask`.
    pub fn forward(
        &self,
        h: &mut [f32],
        node_mask: &[f32],
        edges: &[f32],
        edge_node: &[u32],
        att: &[f32],
        s: &mut EdgeSetScratch,
    ) {
        let m = edge_node.len();
        assert_eq!(edges.len(), m * self.edge_inputs());
        self.forward_filled(h, node_mask, edge_node, att, s, |pre| self.edge_pre(edges, m, pre));
    }

    /// [`Self::forward`] once `fill` has written the edges' first-layer edge blocks into the
    /// `[m, H]` array it is given: the node blocks, the hidden messages and the node update.
    fn forward_filled(
        &self,
        h: &mut [f32],
        node_mask: &[f32],
        edge_node: &[u32],
        att: &[f32],
        s: &mut EdgeSetScratch,
        fill: impl FnOnce(&mut [f32]),
    ) {
        let hd = self.w2.n_out;
        let m = edge_node.len();
        let mut pre = std::mem::take(&mut s.pre);
        pre.resize(m * hd, 0.0);
        fill(&mut pre);
        self.node_own(h, node_mask.len(), &mut s.own);
        s.mid.resize(m * hd, 0.0);
        self.hidden_messages(&s.own, &mut pre, edge_node, &mut s.mid);
        s.pre = pre;
        let mid = std::mem::take(&mut s.mid);
        self.finish(h, node_mask, &mid, None, edge_node, att, s);
        s.mid = mid;
    }

    /// The edge block of the first layer, `W1e·x` for `m` edge inputs `x` (no bias: W1's bias
    /// sits in the node block). A row depends on its own edge input only (the kernels'
    /// guarantee), so edges met by several node sets can be computed once and shared.
    pub fn edge_pre(&self, edges: &[f32], m: usize, out: &mut [f32]) {
        self.w1_edge.forward(edges, m, out);
    }

    /// The node block of the first layer (with W1's bias) for `n` node states `h`.
    pub fn node_own(&self, h: &[f32], n: usize, out: &mut Vec<f32>) {
        assert_eq!(h.len(), n * self.w2.n_out);
        out.resize(n * self.w2.n_out, 0.0);
        self.w1_self.forward(h, n, out);
    }

    /// The hidden messages `gelu(W2·gelu(W1e·x + own))` of the edges whose edge block `pre`
    /// holds (overwritten), edge `e` taking its node block from row `edge_node[e]` of `own`.
    pub fn hidden_messages(&self, own: &[f32], pre: &mut [f32], edge_node: &[u32], mid: &mut [f32]) {
        let hd = self.w2.n_out;
        let m = edge_node.len();
        for (e, &node) in edge_node.iter().enumerate() {
            let own = &own[node as usize * hd..][..hd];
            for (p, &o) in pre[e * hd..][..hd].iter_mut().zip(own) {
                *p += o;
            }
        }
        gelu_inplace(&mut pre[..m * hd]);
        self.w2.forward(pre, m, &mut mid[..m * hd]);
        gelu_inplace(&mut mid[..m * hd]);
    }

    /// [`Self::forward`] with the edge blocks given once per distinct edge: edge `e` takes row
    /// `rows[e]` of `edge_pre` (what [`Self::edge_pre`] gave for its input). The same bits as
    /// `forward` on the gathered inputs.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_shared_pre(
        &self,
        h: &mut [f32],
        node_mask: &[f32],
        edge_pre: &[f32],
        rows: &[u32],
        edge_node: &[u32],
        att: &[f32],
        s: &mut EdgeSetScratch,
    ) {
        let hd = self.w2.n_out;
        assert_eq!(rows.len(), edge_node.len());
        self.forward_filled(h, node_mask, edge_node, att, s, |pre| {
            for (dst, &r) in pre.chunks_exact_mut(hd).zip(rows) {
                dst.copy_from_slice(&edge_pre[r as usize * hd..][..hd]);
            }
        });
    }

    /// [`Self::forward`] with the hidden messages given once per distinct (edge input, node
    /// state) pair: edge `e`'s message is row `rows[e]` of `messages` (what
    /// [`Self::hidden_messages`] gave for it). Only the weighted sums and the node update remain.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_shared_messages(
        &self,
        h: &mut [f32],
        node_mask: &[f32],
        messages: &[f32],
        rows: &[u32],
        edge_node: &[u32],
        att: &[f32],
        s: &mut EdgeSetScratch,
    ) {
        assert_eq!(rows.len(), edge_node.len());
        self.finish(h, node_mask, messages, Some(rows), edge_node, att, s);
    }

    /// The node update from the hidden messages: edge `e`'s message is row `rows[e]` of `mid`
    /// (row `e` without `rows`). `h ← mask · norm2(h' + FFN(h'))`, `h' = norm1(h + W3·Σ/30)`.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        h: &mut [f32],
        node_mask: &[f32],
        mid: &[f32],
        rows: Option<&[u32]>,
        edge_node: &[u32],
        att: &[f32],
        s: &mut EdgeSetScratch,
    ) {
        let hd = self.w2.n_out;
        let n = node_mask.len();
        assert_eq!(h.len(), n * hd);
        assert_eq!(att.len(), edge_node.len());
        s.sums.clear();
        s.sums.resize(n * hd, 0.0);
        s.counts.clear();
        s.counts.resize(n, 0.0);
        for (e, (&node, &a)) in edge_node.iter().zip(att).enumerate() {
            let node = node as usize;
            s.counts[node] += a;
            let r = rows.map_or(e, |rows| rows[e] as usize);
            let acc = &mut s.sums[node * hd..][..hd];
            for (v, &g) in acc.iter_mut().zip(&mid[r * hd..][..hd]) {
                *v += a * g;
            }
        }
        s.dh.resize(n * hd, 0.0);
        self.w3_sum.forward(&s.sums, n, &mut s.dh);
        let b3 = self.w3.bias.as_deref();
        for (r, row) in h.chunks_exact_mut(hd).enumerate() {
            let dh = &s.dh[r * hd..][..hd];
            let c = s.counts[r];
            for t in 0..hd {
                let d = dh[t] + b3.map_or(0.0, |b| c * b[t]);
                row[t] += d / MESSAGE_SCALE;
            }
        }
        self.norm1.forward_inplace(h);
        self.dense.residual_norm(h, n, &self.norm2, &mut s.ffn);
        for (row, &mk) in h.chunks_exact_mut(hd).zip(node_mask) {
            row.iter_mut().for_each(|v| *v *= mk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::naive;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, rng: &mut impl Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn lin(n_out: usize, n_in: usize, rng: &mut impl Rng) -> Linear {
        Linear::new(random(n_out * n_in, rng), Some(random(n_out, rng)), n_out, n_in)
    }

    fn norm(d: usize, rng: &mut impl Rng) -> LayerNorm {
        LayerNorm { gamma: random(d, rng).iter().map(|v| 1.0 + 0.3 * v).collect(), beta: random(d, rng) }
    }

    /// The reference layer on every edge (masked ones included, multiplied by their weight),
    /// written the plain way: one dense layer on the concatenated input.
    fn reference(layer: &EdgeSetLayer, h: &[f32], edges: &[f32], e: usize, att: &[f32], node_mask: &[f32]) -> Vec<f32> {
        let hd = layer.w2.n_out;
        let de = layer.edge_inputs();
        let n = node_mask.len();
        let mut out = h.to_vec();
        for i in 0..n {
            let mut dh = vec![0f32; hd];
            for a in 0..e {
                let mut x = h[i * hd..(i + 1) * hd].to_vec();
                x.extend_from_slice(&edges[(i * e + a) * de..(i * e + a + 1) * de]);
                let g1: Vec<f32> = naive::linear(&layer.w1, &x, 1).iter().map(|&v| naive::gelu(v)).collect();
                let g2: Vec<f32> = naive::linear(&layer.w2, &g1, 1).iter().map(|&v| naive::gelu(v)).collect();
                let msg = naive::linear(&layer.w3, &g2, 1);
                for t in 0..hd {
                    dh[t] += att[i * e + a] * msg[t];
                }
            }
            let row: Vec<f32> = (0..hd).map(|t| h[i * hd + t] + dh[t] / MESSAGE_SCALE).collect();
            let row = naive::layer_norm(&layer.norm1, &row);
            let ff: Vec<f32> = naive::linear(&layer.dense.w_in, &row, 1).iter().map(|&v| naive::gelu(v)).collect();
            let ff = naive::linear(&layer.dense.w_out, &ff, 1);
            let row: Vec<f32> = row.iter().zip(&ff).map(|(a, b)| a + b).collect();
            let row = naive::layer_norm(&layer.norm2, &row);
            for t in 0..hd {
                out[i * hd + t] = node_mask[i] * row[t];
            }
        }
        out
    }

    /// Leaving out the edges of weight 0 (as the context stage does) gives the reference layer's
    /// result over all edges, for 2H-wide (`DecLayerJ`) and 3H-wide (`DecLayer`) inputs.
    #[test]
    fn edge_set_layer_matches_the_reference_layer() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let hd = 8;
        for edge_in in [hd, 2 * hd] {
            let ffn = FeedForward { w_in: lin(4 * hd, hd, &mut rng), w_out: lin(hd, 4 * hd, &mut rng) };
            let layer = EdgeSetLayer::new(
                lin(hd, hd + edge_in, &mut rng),
                lin(hd, hd, &mut rng),
                lin(hd, hd, &mut rng),
                norm(hd, &mut rng),
                norm(hd, &mut rng),
                ffn,
            );
            let (n, e) = (5, 6);
            let h = random(n * hd, &mut rng);
            let edges = random(n * e * edge_in, &mut rng);
            let att: Vec<f32> = (0..n * e).map(|i| if i % 3 == 1 { 0.0 } else { 1.0 }).collect();
            let node_mask = [1.0, 0.0, 1.0, 1.0, 1.0];
            let want = reference(&layer, &h, &edges, e, &att, &node_mask);
            let (mut edge_node, mut kept, mut w) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..n {
                for a in 0..e {
                    if att[i * e + a] != 0.0 {
                        edge_node.push(i as u32);
                        w.push(att[i * e + a]);
                        kept.extend_from_slice(&edges[(i * e + a) * edge_in..(i * e + a + 1) * edge_in]);
                    }
                }
            }
            let mut got = h.clone();
            layer.forward(&mut got, &node_mask, &kept, &edge_node, &w, &mut EdgeSetScratch::default());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
            assert!(got[hd..2 * hd].iter().all(|&v| v == 0.0), "a masked node is zero");
        }
    }
}
