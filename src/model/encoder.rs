//! The encoder: `EncLayer`s over the k-NN graph, starting from `h_V = 0` and `h_E = W_e(E)`.
//!
//! Each message MLP's first layer is split: the node parts `W1h·h_i` and `W1v·h_j` are
//! projected once per node and gathered, so only `W1e·e_ij` runs per edge. The node update's
//! last layer `W3` is linear, so it runs once per node on the masked sum of the hidden messages
//! (`Σ_j att_ij·(W3·g_ij + b3) = W3·Σ_j att_ij·g_ij + b3·Σ_j att_ij`) instead of once per edge.

use rayon::prelude::*;

use super::graph::Graph;
use super::layers::EncLayer;
use super::{ProteinMpnn, MESSAGE_SCALE};
use crate::featurize::Batch;
use crate::kernels::{gelu_inplace, Linear};

/// Nodes per parallel work item.
pub(crate) const CHUNK: usize = 8;

/// The encoder's outputs for a batch.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub graph: Graph,
    /// `[B·L]`
    pub mask: Vec<f32>,
    /// Node embeddings `[B·L, H]`.
    pub h_v: Vec<f32>,
    /// Edge embeddings `[B·L·K, H]`.
    pub h_e: Vec<f32>,
    pub hidden: usize,
}

/// Runs the message MLP for the edges of `n` nodes starting at global row `start`:
/// `W3·gelu(W2·gelu(self_i + W1e·e_ij + nbr_j))`, writing `[n·K, H]` messages to `out`
/// (without `W3` when `w3` is `None`: the hidden messages `g_ij`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn edge_messages(
    graph: &Graph,
    start: usize,
    n: usize,
    self_proj: &[f32],
    nbr_proj: &[f32],
    edges: &[f32],
    w1_edge: &Linear,
    w2: &Linear,
    w3: Option<&Linear>,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    let h = w2.n_out;
    let k = graph.k;
    let m = n * k;
    scratch.resize(m * h, 0.0);
    let pre = &mut scratch[..m * h];
    w1_edge.forward(edges, m, pre);
    for r in 0..n {
        let row = start + r;
        let si = &self_proj[row * h..][..h];
        for nb in 0..k {
            let j = graph.neighbor_row(row, nb);
            let sj = &nbr_proj[j * h..][..h];
            let p = &mut pre[(r * k + nb) * h..][..h];
            for t in 0..h {
                p[t] += si[t] + sj[t];
            }
        }
    }
    gelu_inplace(pre);
    w2.forward(pre, m, out);
    gelu_inplace(&mut out[..m * h]);
    if let Some(w3) = w3 {
        // W3 needs a separate output buffer
        pre.copy_from_slice(&out[..m * h]);
        w3.forward(pre, m, out);
    }
}

impl EncLayer {
    /// One encoder layer, updating `h_v` and `h_e` in place.
    pub fn forward(&self, graph: &Graph, mask: &[f32], h_v: &mut [f32], h_e: &mut [f32]) {
        let h = self.w2.n_out;
        let k = graph.k;
        let rows = graph.b * graph.l;
        // Node update.
        let [w1_self, w1_edge, w1_nbr] = &self.w1_blocks;
        let mut self_proj = vec![0f32; rows * h];
        let mut nbr_proj = vec![0f32; rows * h];
        w1_self.forward(h_v, rows, &mut self_proj);
        w1_nbr.forward(h_v, rows, &mut nbr_proj);
        let mut dh = vec![0f32; rows * h];
        dh.par_chunks_mut(CHUNK * h).enumerate().for_each_init(
            || (Vec::new(), vec![0f32; CHUNK * k * h]),
            |(scratch, msg), (c, dh_chunk)| {
                let start = c * CHUNK;
                let n = dh_chunk.len() / h;
                let edges = &h_e[start * k * h..(start + n) * k * h];
                edge_messages(graph, start, n, &self_proj, &nbr_proj, edges, w1_edge, &self.w2, None, scratch, msg);
                // Masked sums of the hidden messages (in `scratch`, free again), then W3 once
                // per node and the bias once per attended neighbour.
                let sums = &mut scratch[..n * h];
                sums.fill(0.0);
                let mut counts = [0f32; CHUNK];
                for r in 0..n {
                    let row = start + r;
                    let acc = &mut sums[r * h..][..h];
                    for nb in 0..k {
                        let j = graph.neighbor_row(row, nb);
                        let att = mask[row] * mask[j];
                        if att == 0.0 {
                            continue;
                        }
                        counts[r] += att;
                        let mv = &msg[(r * k + nb) * h..][..h];
                        for t in 0..h {
                            acc[t] += att * mv[t];
                        }
                    }
                }
                self.w3_sum.forward(sums, n, dh_chunk);
                if let Some(b3) = &self.w3.bias {
                    for (r, &c) in counts[..n].iter().enumerate() {
                        for (d, &b) in dh_chunk[r * h..][..h].iter_mut().zip(b3) {
                            *d += c * b;
                        }
                    }
                }
            },
        );
        for (v, d) in h_v.iter_mut().zip(&dh) {
            *v += d / MESSAGE_SCALE;
        }
        self.norm1.forward_inplace(h_v);
        let mut scratch = Vec::new();
        self.dense.residual_norm(h_v, rows, &self.norm2, &mut scratch);
        for (row, m) in mask.iter().enumerate() {
            h_v[row * h..][..h].iter_mut().for_each(|v| *v *= m);
        }
        // Edge update with the new node states.
        let [w11_self, w11_edge, w11_nbr] = &self.w11_blocks;
        w11_self.forward(h_v, rows, &mut self_proj);
        w11_nbr.forward(h_v, rows, &mut nbr_proj);
        h_e.par_chunks_mut(CHUNK * k * h).enumerate().for_each_init(
            || (Vec::new(), vec![0f32; CHUNK * k * h]),
            |(scratch, msg), (c, e_chunk)| {
                let start = c * CHUNK;
                let n = e_chunk.len() / (k * h);
                edge_messages(
                    graph,
                    start,
                    n,
                    &self_proj,
                    &nbr_proj,
                    e_chunk,
                    w11_edge,
                    &self.w12,
                    Some(&self.w13),
                    scratch,
                    msg,
                );
                for (e, m) in e_chunk.iter_mut().zip(msg.iter()) {
                    *e += m;
                }
                self.norm3.forward_inplace(e_chunk);
            },
        );
    }
}

impl ProteinMpnn {
    /// Features + encoder for a batch.
    pub fn encode(&self, batch: &Batch) -> Encoded {
        let (graph, e) = self.edge_features(batch);
        self.encode_edges(batch, graph, &e)
    }

    /// Encoder from precomputed edge features `E` (after the norm).
    pub fn encode_edges(&self, batch: &Batch, graph: Graph, e: &[f32]) -> Encoded {
        let rows = batch.b * batch.l;
        self.encode_edges_from(batch, graph, e, vec![0f32; rows * self.hidden()])
    }

    /// [`Self::encode_edges`] from given initial node states `h_v` `[B·L, H]` instead of zeros
    /// (LigandMPNN's membrane models start from `W_v(V)`).
    pub fn encode_edges_from(&self, batch: &Batch, graph: Graph, e: &[f32], mut h_v: Vec<f32>) -> Encoded {
        let _span = tracing::debug_span!("encoder", b = batch.b, l = batch.l).entered();
        let h = self.hidden();
        assert_eq!(h_v.len(), batch.b * batch.l * h, "initial node states");
        let mut h_e = vec![0f32; e.len()];
        h_e.par_chunks_mut(CHUNK * graph.k.max(1) * h)
            .zip(e.par_chunks(CHUNK * graph.k.max(1) * h))
            .for_each(|(out, inp)| self.w_e.forward(inp, inp.len() / h, out));
        for layer in &self.encoder_layers {
            layer.forward(&graph, &batch.mask, &mut h_v, &mut h_e);
        }
        Encoded { graph, mask: batch.mask.clone(), h_v, h_e, hidden: h }
    }
}
