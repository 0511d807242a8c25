//! The decoder: `DecLayer`s with a decoding order.
//!
//! For node `i` and neighbour `j` the official code feeds `[h_i, e_ij, s_j, h_j]` when `j` was
//! decoded before `i` ("backward" edge) and `[h_i, e_ij, 0, h_enc_j]` otherwise, all multiplied
//! by `mask_i`. The first linear layer is split into those four blocks; the `s_j` block is a
//! 21-row table per layer and the encoder block is projected once per structure.
//!
//! Everything here works on sets of rows, so the same code runs the whole-sequence pass
//! (`forward`), the incremental sampler (one row per step) and the conditional probabilities
//! (only the rows a target position depends on).

use rayon::prelude::*;

use super::encoder::{Encoded, CHUNK};
use super::layers::DecLayer;
use super::{ProteinMpnn, MESSAGE_SCALE};
use crate::alphabet::VOCAB;
use crate::kernels::{gelu_inplace, layer_norm_row, log_softmax_inplace};

/// Sequence-independent decoder inputs of an encoded batch, computed once and reused for every
/// sequence and step.
#[derive(Debug, Clone)]
pub struct DecoderContext<'a> {
    pub enc: &'a Encoded,
    /// Per layer: `W1v · h_enc` for every row `[rows, H]`.
    pub enc_nbr: Vec<Vec<f32>>,
    /// Per layer: `W1s · W_s[a]` for each letter `[21, H]`.
    pub seq_table: Vec<Vec<f32>>,
}

/// Scratch buffers for [`ProteinMpnn::decoder_rows`].
#[derive(Debug, Default, Clone)]
pub struct DecoderScratch {
    pre: Vec<f32>,
    mid: Vec<f32>,
    dh: Vec<f32>,
    ffn: Vec<f32>,
    edges: Vec<f32>,
}

impl ProteinMpnn {
    /// Precomputes the sequence-independent parts of the decoder for `enc`.
    pub fn decoder_context<'a>(&self, enc: &'a Encoded) -> DecoderContext<'a> {
        let h = self.hidden();
        let rows = enc.mask.len();
        let mut enc_nbr = Vec::new();
        let mut seq_table = Vec::new();
        for layer in &self.decoder_layers {
            let mut p = vec![0f32; rows * h];
            layer.w1_nbr.forward(&enc.h_v, rows, &mut p);
            enc_nbr.push(p);
            let mut t = vec![0f32; VOCAB * h];
            layer.w1_seq.forward(&self.w_s, VOCAB, &mut t);
            seq_table.push(t);
        }
        DecoderContext { enc, enc_nbr, seq_table }
    }

    /// Computes layer `l + 1` states for `rows` (global row ids) into `out` (`[rows.len(), H]`).
    ///
    /// - `h_prev`: layer-`l` states, indexed by global row (only rows in `rows` and their
    ///   backward neighbours are read);
    /// - `nbr_prev`: `W1v · h_prev` for backward neighbours, by global row;
    /// - `seq`: sequence by global row (read at backward neighbours);
    /// - `backward(i, j)`: whether `j` is decoded before `i`.
    #[allow(clippy::too_many_arguments)]
    pub fn decoder_rows(
        &self,
        ctx: &DecoderContext,
        l: usize,
        rows: &[usize],
        h_prev: &[f32],
        nbr_prev: &[f32],
        seq: &[u8],
        backward: &(dyn Fn(usize, usize) -> bool + Sync),
        scratch: &mut DecoderScratch,
        out: &mut [f32],
    ) {
        let layer: &DecLayer = &self.decoder_layers[l];
        let h = self.hidden();
        let g = &ctx.enc.graph;
        let k = g.k;
        let n = rows.len();
        let m = n * k;
        let mask = &ctx.enc.mask;
        // Edge block W1e·e_ij for the rows' edges.
        scratch.edges.resize(m * h, 0.0);
        for (r, &row) in rows.iter().enumerate() {
            scratch.edges[r * k * h..(r + 1) * k * h].copy_from_slice(&ctx.enc.h_e[row * k * h..(row + 1) * k * h]);
        }
        scratch.pre.resize(m * h, 0.0);
        layer.w1_edge.forward(&scratch.edges, m, &mut scratch.pre);
        // Own-state block (with bias), then gathered neighbour blocks.
        scratch.dh.resize(n * h, 0.0);
        for (r, &row) in rows.iter().enumerate() {
            scratch.edges[r * h..(r + 1) * h].copy_from_slice(&h_prev[row * h..(row + 1) * h]);
        }
        layer.w1_self.forward(&scratch.edges[..n * h], n, &mut scratch.dh);
        let seq_table = &ctx.seq_table[l];
        let enc_nbr = &ctx.enc_nbr[l];
        for (r, &row) in rows.iter().enumerate() {
            let mi = mask[row];
            let own = &scratch.dh[r * h..(r + 1) * h];
            for nb in 0..k {
                let j = g.neighbor_row(row, nb);
                let p = &mut scratch.pre[(r * k + nb) * h..][..h];
                if mi == 0.0 {
                    p.copy_from_slice(own);
                } else if backward(row, j) {
                    let st = &seq_table[seq[j] as usize * h..][..h];
                    let hv = &nbr_prev[j * h..][..h];
                    for t in 0..h {
                        p[t] = own[t] + (mi * p[t] + (mi * st[t] + mi * hv[t]));
                    }
                } else {
                    let ev = &enc_nbr[j * h..][..h];
                    for t in 0..h {
                        p[t] = own[t] + (mi * p[t] + mi * ev[t]);
                    }
                }
            }
        }
        gelu_inplace(&mut scratch.pre);
        scratch.mid.resize(m * h, 0.0);
        layer.w2.forward(&scratch.pre, m, &mut scratch.mid);
        gelu_inplace(&mut scratch.mid);
        layer.w3.forward(&scratch.mid, m, &mut scratch.pre);
        // Sum over neighbours, residual, norms, feed-forward.
        for (r, &row) in rows.iter().enumerate() {
            let o = &mut out[r * h..(r + 1) * h];
            o.fill(0.0);
            for nb in 0..k {
                let msg = &scratch.pre[(r * k + nb) * h..][..h];
                for t in 0..h {
                    o[t] += msg[t];
                }
            }
            let hp = &h_prev[row * h..(row + 1) * h];
            for t in 0..h {
                o[t] = hp[t] + o[t] / MESSAGE_SCALE;
            }
            layer_norm_row(o, &layer.norm1.gamma, &layer.norm1.beta);
        }
        layer.dense.residual_norm(&mut out[..n * h], n, &layer.norm2, &mut scratch.ffn);
        for (r, &row) in rows.iter().enumerate() {
            let mi = mask[row];
            out[r * h..(r + 1) * h].iter_mut().for_each(|v| *v *= mi);
        }
    }

    /// Runs every decoder layer over all rows with a given "decoded before" relation and
    /// returns the final node states `[rows, H]`.
    pub fn decode_all(
        &self,
        ctx: &DecoderContext,
        seq: &[u8],
        backward: &(dyn Fn(usize, usize) -> bool + Sync),
    ) -> Vec<f32> {
        let h = self.hidden();
        let rows = ctx.enc.mask.len();
        let mut h_cur = ctx.enc.h_v.clone();
        let all: Vec<usize> = (0..rows).collect();
        for l in 0..self.decoder_layers.len() {
            let mut nbr = vec![0f32; rows * h];
            self.decoder_layers[l].w1_nbr.forward(&h_cur, rows, &mut nbr);
            let mut next = vec![0f32; rows * h];
            next.par_chunks_mut(CHUNK * h).zip(all.par_chunks(CHUNK)).for_each_init(DecoderScratch::default, |sc, (o, chunk)| {
                self.decoder_rows(ctx, l, chunk, &h_cur, &nbr, seq, backward, sc, o)
            });
            h_cur = next;
        }
        h_cur
    }

    /// `W_out` + `log_softmax` of node states `[rows, H]` → `[rows, 21]`.
    pub fn log_probs_of(&self, states: &[f32], rows: usize) -> Vec<f32> {
        let mut logits = vec![0f32; rows * VOCAB];
        self.w_out.forward(states, rows, &mut logits);
        logits.chunks_exact_mut(VOCAB).for_each(log_softmax_inplace);
        logits
    }

    /// The official `forward()`: log-probabilities of every position `[B·L, 21]` with the
    /// given decoding order (`order[b, t]` = row index within item `b` decoded at step `t`).
    pub fn forward(&self, enc: &Encoded, seq: &[u8], order: &[usize]) -> Vec<f32> {
        let _span = tracing::debug_span!("decoder").entered();
        let ctx = self.decoder_context(enc);
        let pos = order_positions(order, enc.graph.l);
        let states = self.decode_all(&ctx, seq, &|i, j| pos[j] < pos[i]);
        self.log_probs_of(&states, enc.mask.len())
    }

    /// The official `unconditional_probs()`: every neighbour is seen through the encoder only.
    pub fn unconditional(&self, enc: &Encoded) -> Vec<f32> {
        let ctx = self.decoder_context(enc);
        let dummy = vec![0u8; enc.mask.len()];
        let states = self.decode_all(&ctx, &dummy, &|_, _| false);
        self.log_probs_of(&states, enc.mask.len())
    }

    /// The log-probabilities at `target` (a global row) when decoding in the order whose
    /// positions are `pos` (by global row), computing only the rows the target depends on.
    pub fn log_probs_at(&self, ctx: &DecoderContext, seq: &[u8], pos: &[usize], target: usize, work: &mut ConeWork) -> [f32; VOCAB] {
        let h = self.hidden();
        let g = &ctx.enc.graph;
        let layers = self.decoder_layers.len();
        let rows_total = ctx.enc.mask.len();
        work.ensure(layers, rows_total, h);
        // needed[l] = rows whose layer-l state is needed, l = layers..1
        let backward = |i: usize, j: usize| pos[j] < pos[i];
        let mut needed: Vec<Vec<usize>> = vec![Vec::new(); layers + 1];
        needed[layers].push(target);
        work.stamp += 1;
        for l in (1..layers).rev() {
            let stamp = work.stamp;
            let mut set = Vec::new();
            for &i in &needed[l + 1] {
                if work.seen[i] != stamp {
                    work.seen[i] = stamp;
                    set.push(i);
                }
                for nb in 0..g.k {
                    let j = g.neighbor_row(i, nb);
                    if backward(i, j) && work.seen[j] != stamp {
                        work.seen[j] = stamp;
                        set.push(j);
                    }
                }
            }
            needed[l] = set;
            work.stamp += 1;
        }
        // Layer 0 = encoder states, neighbour projections precomputed.
        let mut out = vec![0f32; 0];
        for l in 0..layers {
            let rows = &needed[l + 1];
            out.resize(rows.len() * h, 0.0);
            let (h_prev, nbr_prev): (&[f32], &[f32]) =
                if l == 0 { (&ctx.enc.h_v, &ctx.enc_nbr[0]) } else { (&work.h[l], &work.nbr[l]) };
            self.decoder_rows(ctx, l, rows, h_prev, nbr_prev, seq, &backward, &mut work.scratch, &mut out);
            if l + 1 < layers {
                let mut proj = vec![0f32; rows.len() * h];
                self.decoder_layers[l + 1].w1_nbr.forward(&out, rows.len(), &mut proj);
                for (r, &row) in rows.iter().enumerate() {
                    work.h[l + 1][row * h..(row + 1) * h].copy_from_slice(&out[r * h..(r + 1) * h]);
                    work.nbr[l + 1][row * h..(row + 1) * h].copy_from_slice(&proj[r * h..(r + 1) * h]);
                }
            }
        }
        let lp = self.log_probs_of(&out[..h], 1);
        let mut res = [0f32; VOCAB];
        res.copy_from_slice(&lp);
        res
    }

    /// The official `conditional_probs()`: for each designed position (`design[row] = 1`),
    /// its log-probabilities when decoded last (`backbone_only = false`, conditioned on the rest
    /// of `seq`) or first (`backbone_only = true`), with the others ordered by `|randn|`.
    /// Rows that are not designed are 0.
    pub fn conditional(&self, enc: &Encoded, seq: &[u8], design: &[f32], randn: &[f32], backbone_only: bool) -> Vec<f32> {
        let ctx = self.decoder_context(enc);
        let l = enc.graph.l;
        let rows = enc.mask.len();
        let targets: Vec<usize> = (0..rows).filter(|&r| design[r] == 1.0).collect();
        let results: Vec<(usize, [f32; VOCAB])> = targets
            .par_iter()
            .map_init(ConeWork::default, |work, &target| {
                let bi = target / l;
                let base = bi * l;
                let mut order_mask = vec![if backbone_only { 1.0f32 } else { 0.0 }; l];
                order_mask[target - base] = if backbone_only { 0.0 } else { 1.0 };
                let order = decoding_order(&order_mask, &randn[base..base + l]);
                let mut pos = vec![0usize; rows];
                for (t, &i) in order.iter().enumerate() {
                    pos[base + i] = t;
                }
                (target, self.log_probs_at(&ctx, seq, &pos, target, work))
            })
            .collect();
        let mut out = vec![0f32; rows * VOCAB];
        for (t, lp) in results {
            out[t * VOCAB..(t + 1) * VOCAB].copy_from_slice(&lp);
        }
        out
    }
}

/// Reusable buffers for [`ProteinMpnn::log_probs_at`].
#[derive(Debug, Default, Clone)]
pub struct ConeWork {
    h: Vec<Vec<f32>>,
    nbr: Vec<Vec<f32>>,
    seen: Vec<u64>,
    stamp: u64,
    scratch: DecoderScratch,
}

impl ConeWork {
    fn ensure(&mut self, layers: usize, rows: usize, h: usize) {
        if self.h.len() != layers || self.seen.len() != rows {
            self.h = vec![vec![0f32; rows * h]; layers];
            self.nbr = vec![vec![0f32; rows * h]; layers];
            self.seen = vec![0; rows];
            self.stamp = 0;
        }
    }
}

/// The official decoding order `argsort((chain_mask + 1e-4) · |randn|)` for one item
/// (ascending, ties by index).
pub fn decoding_order(chain_mask: &[f32], randn: &[f32]) -> Vec<usize> {
    let keys: Vec<f32> = chain_mask.iter().zip(randn).map(|(m, r)| (m + 1e-4f32) * r.abs()).collect();
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]).then(a.cmp(&b)));
    idx
}

/// Positions in the decoding order by global row, from per-item orders `[B·L]`.
pub fn order_positions(order: &[usize], l: usize) -> Vec<usize> {
    let mut pos = vec![0usize; order.len()];
    for (idx, &i) in order.iter().enumerate() {
        let (bi, t) = (idx / l, idx % l);
        pos[bi * l + i] = t;
    }
    pos
}

/// Official `_scores`: mean negative log-likelihood of `seq` under `log_probs` over `mask`.
pub fn score(log_probs: &[f32], seq: &[u8], mask: &[f32]) -> f32 {
    let mut num = 0f32;
    let mut den = 0f32;
    for (i, (&s, &m)) in seq.iter().zip(mask).enumerate() {
        num += -log_probs[i * VOCAB + s as usize] * m;
        den += m;
    }
    num / den
}
