//! The plain reference path: the official network written the obvious way — concatenated
//! message inputs `[h_i, e_ij, h_j]` / `[h_i, e_ij, s_j, h_j]` materialized per edge, one
//! full first layer, naive kernels with float64 dot products. It shares only the edge
//! features with the fast path. Tests compare the two; `mpnn bench` reports the speed-up.

use super::decoder::order_positions;
use super::encoder::Encoded;
use super::layers::FeedForward;
use super::{ProteinMpnn, MESSAGE_SCALE};
use crate::alphabet::VOCAB;
use crate::featurize::Batch;
use crate::kernels::{naive, LayerNorm, Linear};

fn lin(l: &Linear, x: &[f32], rows: usize) -> Vec<f32> {
    naive::linear(l, x, rows)
}

fn gelu(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(naive::gelu).collect()
}

fn norm(n: &LayerNorm, x: &[f32]) -> Vec<f32> {
    naive::layer_norm(n, x)
}

fn ffn(f: &FeedForward, x: &[f32], rows: usize) -> Vec<f32> {
    lin(&f.w_out, &gelu(lin(&f.w_in, x, rows)), rows)
}

/// `mask · norm2(v + FFN(v))` with `v = norm1(pre)`: the node update shared by both layer kinds.
fn node_update(
    norm1: &LayerNorm,
    norm2: &LayerNorm,
    dense: &FeedForward,
    pre: &[f32],
    mask: &[f32],
    h: usize,
) -> Vec<f32> {
    let rows = mask.len();
    let v1 = norm(norm1, pre);
    let d = ffn(dense, &v1, rows);
    let v2: Vec<f32> = v1.iter().zip(&d).map(|(a, b)| a + b).collect();
    let mut out = norm(norm2, &v2);
    for i in 0..rows {
        out[i * h..(i + 1) * h].iter_mut().for_each(|v| *v *= mask[i]);
    }
    out
}

impl ProteinMpnn {
    /// Encoder on the reference path.
    pub fn encode_reference(&self, batch: &Batch) -> Encoded {
        let (graph, e) = self.edge_features(batch);
        let h = self.hidden();
        let rows = batch.b * batch.l;
        let k = graph.k;
        let mut h_e = lin(&self.w_e, &e, rows * k);
        let mut h_v = vec![0f32; rows * h];
        let mask = &batch.mask;
        let cat = |h_v: &[f32], h_e: &[f32]| {
            let mut x = Vec::with_capacity(rows * k * 3 * h);
            for i in 0..rows {
                for n in 0..k {
                    let j = graph.neighbor_row(i, n);
                    x.extend_from_slice(&h_v[i * h..(i + 1) * h]);
                    x.extend_from_slice(&h_e[(i * k + n) * h..(i * k + n + 1) * h]);
                    x.extend_from_slice(&h_v[j * h..(j + 1) * h]);
                }
            }
            x
        };
        for layer in &self.encoder_layers {
            let x = cat(&h_v, &h_e);
            let msg = lin(&layer.w3, &gelu(lin(&layer.w2, &gelu(lin(&layer.w1, &x, rows * k)), rows * k)), rows * k);
            let mut pre = h_v.clone();
            for i in 0..rows {
                for n in 0..k {
                    let att = mask[i] * mask[graph.neighbor_row(i, n)];
                    for t in 0..h {
                        pre[i * h + t] += att * msg[(i * k + n) * h + t] / MESSAGE_SCALE;
                    }
                }
            }
            h_v = node_update(&layer.norm1, &layer.norm2, &layer.dense, &pre, mask, h);
            let x = cat(&h_v, &h_e);
            let msg = lin(&layer.w13, &gelu(lin(&layer.w12, &gelu(lin(&layer.w11, &x, rows * k)), rows * k)), rows * k);
            let sum: Vec<f32> = h_e.iter().zip(&msg).map(|(a, b)| a + b).collect();
            h_e = norm(&layer.norm3, &sum);
        }
        Encoded { graph, mask: batch.mask.clone(), h_v, h_e, h_e_q: None, hidden: h }
    }

    /// `forward()` on the reference path: log-probabilities `[B·L, 21]`.
    pub fn forward_reference(&self, enc: &Encoded, seq: &[u8], order: &[usize]) -> Vec<f32> {
        let h = self.hidden();
        let g = &enc.graph;
        let rows = g.b * g.l;
        let k = g.k;
        let pos = order_positions(order, g.l);
        let mask = &enc.mask;
        let mut h_v = enc.h_v.clone();
        for layer in &self.decoder_layers {
            let mut x = Vec::with_capacity(rows * k * 4 * h);
            for i in 0..rows {
                for n in 0..k {
                    let j = g.neighbor_row(i, n);
                    let bw = if pos[j] < pos[i] { mask[i] } else { 0.0 };
                    let fw = mask[i] - bw;
                    x.extend_from_slice(&h_v[i * h..(i + 1) * h]);
                    for t in 0..h {
                        x.push((bw + fw) * enc.h_e[(i * k + n) * h + t]);
                    }
                    for t in 0..h {
                        x.push(bw * self.w_s[seq[j] as usize * h + t]);
                    }
                    for t in 0..h {
                        x.push(bw * h_v[j * h + t] + fw * enc.h_v[j * h + t]);
                    }
                }
            }
            let msg = lin(&layer.w3, &gelu(lin(&layer.w2, &gelu(lin(&layer.w1, &x, rows * k)), rows * k)), rows * k);
            let mut pre = h_v.clone();
            for i in 0..rows {
                for n in 0..k {
                    for t in 0..h {
                        pre[i * h + t] += msg[(i * k + n) * h + t] / MESSAGE_SCALE;
                    }
                }
            }
            h_v = node_update(&layer.norm1, &layer.norm2, &layer.dense, &pre, mask, h);
        }
        let mut lp = lin(&self.w_out, &h_v, rows);
        lp.chunks_exact_mut(VOCAB).for_each(crate::kernels::log_softmax_inplace);
        lp
    }
}
