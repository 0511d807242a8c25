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
        let hd = self.w2.n_out;
        let n = node_mask.len();
        let m = edge_node.len();
        assert_eq!(h.len(), n * hd);
        assert_eq!(edges.len(), m * self.edge_inputs());
        assert_eq!(att.len(), m);
        s.own.resize(n * hd, 0.0);
        self.w1_self.forward(h, n, &mut s.own);
        s.pre.resize(m * hd, 0.0);
        self.w1_edge.forward(edges, m, &mut s.pre);
        for (e, &node) in edge_node.iter().enumerate() {
            let own = &s.own[node as usize * hd..][..hd];
            for (p, &o) in s.pre[e * hd..][..hd].iter_mut().zip(own) {
                *p = o + *p;
            }
        }
        gelu_inplace(&mut s.pre);
        s.mid.resize(m * hd, 0.0);
        self.w2.forward(&s.pre, m, &mut s.mid);
        gelu_inplace(&mut s.mid);
        s.sums.clear();
        s.sums.resize(n * hd, 0.0);
        s.counts.clear();
        s.counts.resize(n, 0.0);
        for (e, (&node, &a)) in edge_node.iter().zip(att).enumerate() {
            let node = node as usize;
            s.counts[node] += a;
            let acc = &mut s.sums[node * hd..][..hd];
            for (v, &g) in acc.iter_mut().zip(&s.mid[e * hd..][..hd]) {
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
