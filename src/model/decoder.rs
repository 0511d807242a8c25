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

use super::cone::{Cone, ConeMarks};
use super::encoder::{Encoded, CHUNK};
use super::layers::DecLayer;
use super::{ProteinMpnn, MESSAGE_SCALE};
use crate::alphabet::VOCAB;
use crate::kernels::gelu_quantize_at;
use crate::kernels::gemm::GeluSum;
use crate::kernels::int8::w8a8::Rows;
#[cfg(target_arch = "x86_64")]
use crate::kernels::isa::{self, Isa};
use crate::kernels::{layer_norm_row, log_softmax_inplace};

/// Sequence-independent decoder inputs of an encoded batch, computed once and reused for every
/// sequence and step.
#[derive(Debug, Clone)]
pub struct DecoderContext<'a> {
    pub enc: &'a Encoded,
    /// Per layer: `W1v · h_enc` for every row `[rows, H]`.
    pub enc_nbr: Vec<Vec<f32>>,
    /// Per layer: `W1s · W_s[a]` for each letter `[21, H]`.
    pub seq_table: Vec<Vec<f32>>,
    /// Per layer: `W1e · e_ij` for every edge `[rows·K, H]`, when precomputed (worth it when
    /// the same edges are decoded many times: sampling, conditional probabilities).
    pub edge_proj: Option<Vec<Vec<f32>>>,
}

/// What neighbour `j` contributes to the decoder input of node `i` (besides `h_i` and, unless
/// hidden, the edge `e_ij`), all multiplied by `mask_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighbourInput {
    /// Decoded before `i`: `[e_ij, s_j, h_j]` with `j`'s current-layer state.
    Decoded,
    /// Not decoded yet: `[e_ij, 0, h_enc_j]` (the encoder state).
    Encoder,
    /// Nothing: `[0, 0, 0]` (LigandMPNN's `score(use_sequence=False)` for neighbours decoded
    /// before `i`).
    Hidden,
}

/// The inputs of one [`ProteinMpnn::decoder_rows`] call (see there).
struct RowsInput<'a, F: ?Sized> {
    ctx: &'a DecoderContext<'a>,
    l: usize,
    rows: &'a [usize],
    h_prev: &'a [f32],
    nbr_prev: &'a [f32],
    seq: &'a [u8],
    relation: &'a F,
}

impl<F: ?Sized> Clone for RowsInput<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F: ?Sized> Copy for RowsInput<'_, F> {}

/// Scratch buffers for [`ProteinMpnn::decoder_rows`].
#[derive(Debug, Default, Clone)]
pub struct DecoderScratch {
    pre: Vec<f32>,
    mid: Vec<f32>,
    dh: Vec<f32>,
    ffn: Vec<f32>,
    edges: Vec<f32>,
    /// W8A8: the rows' quantized edges, and the quantized input of `W2`.
    edges_q: Rows,
    q: Rows,
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
            super::forward_par(&layer.w1_nbr, &enc.h_v, &mut p);
            enc_nbr.push(p);
            let mut t = vec![0f32; VOCAB * h];
            layer.w1_seq.forward(&self.w_s, VOCAB, &mut t);
            seq_table.push(t);
        }
        DecoderContext { enc, enc_nbr, seq_table, edge_proj: None }
    }

    /// [`Self::decoder_context`] with the per-edge projections precomputed as well.
    pub fn decoder_context_full<'a>(&self, enc: &'a Encoded) -> DecoderContext<'a> {
        let mut ctx = self.decoder_context(enc);
        let h = self.hidden();
        let k = enc.graph.k.max(1);
        let projections = self
            .decoder_layers
            .iter()
            .map(|layer| {
                let mut p = vec![0f32; enc.h_e.len()];
                p.par_chunks_mut(CHUNK * k * h)
                    .zip(enc.h_e.par_chunks(CHUNK * k * h))
                    .for_each(|(o, e)| layer.w1_edge.forward_edges(e, e.len() / h, k, o));
                p
            })
            .collect();
        ctx.edge_proj = Some(projections);
        ctx
    }

    /// Computes layer `l + 1` states for `rows` (global row ids) into `out` (`[rows.len(), H]`).
    ///
    /// - `h_prev`: layer-`l` states, indexed by global row (only rows in `rows` and their
    ///   backward neighbours are read);
    /// - `nbr_prev`: `W1v · h_prev` for backward neighbours, by global row;
    /// - `seq`: sequence by global row (read at backward neighbours);
    /// - `backward(i, j)`: whether `j` is decoded before `i`.
    ///
    /// Row ids may also be "virtual", `s · R + r` with `R` the encoded rows: copy `s` of row `r`
    /// (several sequences of one structure decoded together, each with its own states and
    /// sequence in `h_prev`, `nbr_prev`, `seq`, all indexed by virtual row).
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
        let relation =
            |i: usize, j: usize| if backward(i, j) { NeighbourInput::Decoded } else { NeighbourInput::Encoder };
        self.decoder_rows_impl(&RowsInput { ctx, l, rows, h_prev, nbr_prev, seq, relation: &relation }, scratch, out)
    }

    /// [`Self::decoder_rows`] with a three-way relation: what each neighbour `j` of row `i`
    /// contributes ([`NeighbourInput`]), for callers whose masks are not the plain "decoded
    /// before" split (LigandMPNN's `score(use_sequence=False)` hides decoded neighbours).
    #[allow(clippy::too_many_arguments)]
    pub fn decoder_rows_with(
        &self,
        ctx: &DecoderContext,
        l: usize,
        rows: &[usize],
        h_prev: &[f32],
        nbr_prev: &[f32],
        seq: &[u8],
        relation: &(dyn Fn(usize, usize) -> NeighbourInput + Sync),
        scratch: &mut DecoderScratch,
        out: &mut [f32],
    ) {
        self.decoder_rows_impl(&RowsInput { ctx, l, rows, h_prev, nbr_prev, seq, relation }, scratch, out)
    }

    /// [`Self::decoder_rows_body`] compiled for the active instruction-set path
    /// ([`isa::active`]): its gathers, sums and scaling loops are plain element-wise float
    /// arithmetic (no reassociation, no contraction into FMA), so every path gives the same
    /// bits; the wider paths only run more lanes at once.
    fn decoder_rows_impl<F: Fn(usize, usize) -> NeighbourInput + Sync + ?Sized>(
        &self,
        x: &RowsInput<'_, F>,
        scratch: &mut DecoderScratch,
        out: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        match isa::active() {
            // SAFETY: `isa::active()` only names paths whose features this CPU has.
            Isa::Avx512 => return unsafe { self.decoder_rows_avx512(x, scratch, out) },
            Isa::Avx2 => return unsafe { self.decoder_rows_avx2(x, scratch, out) },
            Isa::Portable => {}
        }
        self.decoder_rows_body(x, scratch, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn decoder_rows_avx512<F: Fn(usize, usize) -> NeighbourInput + Sync + ?Sized>(
        &self,
        x: &RowsInput<'_, F>,
        scratch: &mut DecoderScratch,
        out: &mut [f32],
    ) {
        self.decoder_rows_body(x, scratch, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn decoder_rows_avx2<F: Fn(usize, usize) -> NeighbourInput + Sync + ?Sized>(
        &self,
        x: &RowsInput<'_, F>,
        scratch: &mut DecoderScratch,
        out: &mut [f32],
    ) {
        self.decoder_rows_body(x, scratch, out)
    }

    /// One decoder layer over `rows` (see [`Self::decoder_rows`]). Per row, its `K` messages are
    /// built, passed through GELU while still in cache, multiplied by `W2` for all rows at once,
    /// and summed (with the second GELU) row by row.
    #[inline(always)]
    fn decoder_rows_body<F: Fn(usize, usize) -> NeighbourInput + Sync + ?Sized>(
        &self,
        x: &RowsInput<'_, F>,
        scratch: &mut DecoderScratch,
        out: &mut [f32],
    ) {
        let RowsInput { ctx, l, rows, h_prev, nbr_prev, seq, relation } = *x;
        let layer: &DecLayer = &self.decoder_layers[l];
        let h = self.hidden();
        let g = &ctx.enc.graph;
        let k = g.k;
        let n = rows.len();
        let m = n * k;
        let mask = &ctx.enc.mask;
        let total = mask.len();
        // Edge block W1e·e_ij for the rows' edges: read in place from the precomputed
        // projection, or computed here into `mid` (free until W2 writes it).
        scratch.pre.resize(m * h, 0.0);
        scratch.mid.resize(m * h, 0.0);
        // W8A8 (int8 models on VNNI CPUs): the edges come quantized from the encoder, GELU is the
        // int8 table GELU and each message row is quantized for W2 while in cache.
        let w8a8 = layer.w2.is_w8a8();
        if w8a8 {
            scratch.q.reset(m, h);
        }
        if ctx.edge_proj.is_none() && layer.w1_edge.is_w8a8() && ctx.enc.h_e_q.is_some() {
            let hq = ctx.enc.h_e_q.as_ref().map(Rows::view).unwrap();
            let first = rows.first().map_or(0, |&row| row % total);
            if rows.iter().enumerate().all(|(r, &row)| row % total == first + r) {
                // Consecutive rows (a scoring pass): their edges are one run of the encoder's.
                layer.w1_edge.forward_quantized(hq.rows(first * k, m), m, k, &mut scratch.mid, false);
            } else {
                scratch.edges_q.reset(m, h);
                for (r, &row) in rows.iter().enumerate() {
                    let row = row % total;
                    for nb in 0..k {
                        scratch.edges_q.copy_row(r * k + nb, hq, row * k + nb);
                    }
                }
                layer.w1_edge.forward_quantized(scratch.edges_q.view(), m, k, &mut scratch.mid, false);
            }
        } else if ctx.edge_proj.is_none() {
            scratch.edges.resize(m * h, 0.0);
            for (r, &row) in rows.iter().enumerate() {
                let row = row % total;
                scratch.edges[r * k * h..(r + 1) * k * h].copy_from_slice(&ctx.enc.h_e[row * k * h..(row + 1) * k * h]);
            }
            layer.w1_edge.forward_edges(&scratch.edges, m, k, &mut scratch.mid);
        }
        scratch.edges.resize(n * h, 0.0);
        // Own-state block (with bias), then gathered neighbour blocks.
        scratch.dh.resize(n * h, 0.0);
        for (r, &row) in rows.iter().enumerate() {
            scratch.edges[r * h..(r + 1) * h].copy_from_slice(&h_prev[row * h..(row + 1) * h]);
        }
        layer.w1_self.forward(&scratch.edges[..n * h], n, &mut scratch.dh);
        let seq_table = &ctx.seq_table[l];
        let enc_nbr = &ctx.enc_nbr[l];
        for (r, &row) in rows.iter().enumerate() {
            let (base, local) = (row - row % total, row % total);
            let mi = mask[local];
            let own = &scratch.dh[r * h..(r + 1) * h];
            let edge_rows = match &ctx.edge_proj {
                Some(proj) => &proj[l][local * k * h..(local + 1) * k * h],
                None => &scratch.mid[r * k * h..(r + 1) * k * h],
            };
            let block = &mut scratch.pre[r * k * h..(r + 1) * k * h];
            for nb in 0..k {
                let j_local = g.neighbor_row(local, nb);
                let j = base + j_local;
                let p = &mut block[nb * h..][..h];
                let e = &edge_rows[nb * h..][..h];
                if mi == 0.0 {
                    p.copy_from_slice(own);
                    continue;
                }
                match relation(row, j) {
                    NeighbourInput::Decoded => {
                        let st = &seq_table[seq[j] as usize * h..][..h];
                        let hv = &nbr_prev[j * h..][..h];
                        for t in 0..h {
                            p[t] = own[t] + (mi * e[t] + (mi * st[t] + mi * hv[t]));
                        }
                    }
                    NeighbourInput::Encoder => {
                        let ev = &enc_nbr[j_local * h..][..h];
                        for t in 0..h {
                            p[t] = own[t] + (mi * e[t] + mi * ev[t]);
                        }
                    }
                    NeighbourInput::Hidden => p.copy_from_slice(own),
                }
            }
            if w8a8 {
                gelu_quantize_at(block, h, &mut scratch.q, r * k);
            }
        }
        // W2, the GELU after it and the sum of the hidden messages over each row's K
        // neighbours in one pass (fused for a float32 W2: the `[m, H]` messages are never
        // written); then W3 once per row (W3 is linear: `Σ_j (W3·g_j + b3) = W3·Σ_j g_j +
        // K·b3`), residual, norms, feed-forward. The edge projection in `mid` is spent: it
        // holds the sums.
        let sums = &mut scratch.mid[..n * h];
        sums.fill(0.0);
        let epi = GeluSum { group: k, weights: None };
        if w8a8 {
            layer.w2.forward_quantized_gelu_sum(scratch.q.view(), m, epi, sums);
        } else {
            // The input's GELU over the whole block first (a 12-bit W2 quantizes as it goes).
            layer.w2.forward_gelu_sum(&mut scratch.pre[..m * h], m, epi, sums);
        }
        layer.w3_sum.forward(sums, n, &mut out[..n * h]);
        let count = k as f32;
        for (r, &row) in rows.iter().enumerate() {
            let o = &mut out[r * h..(r + 1) * h];
            if let Some(b3) = &layer.w3.bias {
                for (v, &b) in o.iter_mut().zip(b3) {
                    *v += count * b;
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
            let mi = mask[row % total];
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
        self.decode_all_layers(ctx, seq, backward, false).0
    }

    /// [`Self::decode_all`] with a three-way neighbour relation (see
    /// [`Self::decoder_rows_with`]).
    pub fn decode_all_with(
        &self,
        ctx: &DecoderContext,
        seq: &[u8],
        relation: &(dyn Fn(usize, usize) -> NeighbourInput + Sync),
    ) -> Vec<f32> {
        self.decode_all_layers_impl(ctx, seq, relation, false).0
    }

    /// [`Self::decode_all`], optionally keeping every intermediate layer's states and their
    /// `W1v` projections (for layers `1..layers`).
    #[allow(clippy::type_complexity)]
    fn decode_all_layers(
        &self,
        ctx: &DecoderContext,
        seq: &[u8],
        backward: &(dyn Fn(usize, usize) -> bool + Sync),
        keep: bool,
    ) -> (Vec<f32>, Vec<(Vec<f32>, Vec<f32>)>) {
        let relation =
            |i: usize, j: usize| if backward(i, j) { NeighbourInput::Decoded } else { NeighbourInput::Encoder };
        self.decode_all_layers_impl(ctx, seq, &relation, keep)
    }

    #[allow(clippy::type_complexity)]
    fn decode_all_layers_impl<F: Fn(usize, usize) -> NeighbourInput + Sync + ?Sized>(
        &self,
        ctx: &DecoderContext,
        seq: &[u8],
        relation: &F,
        keep: bool,
    ) -> (Vec<f32>, Vec<(Vec<f32>, Vec<f32>)>) {
        let h = self.hidden();
        let rows = ctx.enc.mask.len();
        let mut h_cur = ctx.enc.h_v.clone();
        let mut kept = Vec::new();
        let all: Vec<usize> = (0..rows).collect();
        for l in 0..self.decoder_layers.len() {
            let nbr = if l == 0 {
                ctx.enc_nbr[0].clone()
            } else {
                let mut nbr = vec![0f32; rows * h];
                super::forward_par(&self.decoder_layers[l].w1_nbr, &h_cur, &mut nbr);
                nbr
            };
            let mut next = vec![0f32; rows * h];
            next.par_chunks_mut(CHUNK * h).zip(all.par_chunks(CHUNK)).for_each_init(
                DecoderScratch::default,
                |sc, (o, chunk)| {
                    self.decoder_rows_impl(
                        &RowsInput { ctx, l, rows: chunk, h_prev: &h_cur, nbr_prev: &nbr, seq, relation },
                        sc,
                        o,
                    )
                },
            );
            if keep && l > 0 {
                kept.push((std::mem::take(&mut h_cur), nbr));
            }
            h_cur = next;
        }
        (h_cur, kept)
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

    /// The logits at `target` (a global row) when decoding in the order whose
    /// positions are `pos` (by global row), computing only the rows the target depends on and,
    /// among those, only the ones whose states differ from `base` (a full pass whose order
    /// differs from `pos` at most in where `target` stands).
    fn logits_at(
        &self,
        ctx: &DecoderContext,
        seq: &[u8],
        base: &BasePass,
        pos: &[usize],
        target: usize,
        work: &mut ConeWork,
    ) -> [f32; VOCAB] {
        let h = self.hidden();
        let g = &ctx.enc.graph;
        let layers = self.decoder_layers.len();
        work.ensure(base);
        let backward = |i: usize, j: usize| pos[j] < pos[i];
        let cone = Cone::of(g, layers, &base.pos, pos, target, &mut work.marks);
        let mut out = Vec::new();
        let mut proj = Vec::new();
        let mut touched: Vec<Vec<usize>> = vec![Vec::new(); layers];
        for (l, rows) in cone.compute.into_iter().enumerate() {
            // rows of layer l+1 to recompute: the needed ones whose inputs changed
            out.resize(rows.len() * h, 0.0);
            let (h_prev, nbr_prev): (&[f32], &[f32]) =
                if l == 0 { (&ctx.enc.h_v, &ctx.enc_nbr[0]) } else { (&work.h[l - 1], &work.nbr[l - 1]) };
            self.decoder_rows(ctx, l, &rows, h_prev, nbr_prev, seq, &backward, &mut work.scratch, &mut out);
            if l + 1 < layers {
                proj.resize(rows.len() * h, 0.0);
                self.decoder_layers[l + 1].w1_nbr.forward(&out, rows.len(), &mut proj);
                for (r, &row) in rows.iter().enumerate() {
                    work.h[l][row * h..(row + 1) * h].copy_from_slice(&out[r * h..(r + 1) * h]);
                    work.nbr[l][row * h..(row + 1) * h].copy_from_slice(&proj[r * h..(r + 1) * h]);
                }
                touched[l] = rows;
            }
        }
        let mut lp = [0f32; VOCAB];
        self.w_out.forward(&out[..h], 1, &mut lp);
        // restore the base states we overwrote
        for (l, rows) in touched.iter().enumerate() {
            for &row in rows {
                work.h[l][row * h..(row + 1) * h].copy_from_slice(&base.layers[l].0[row * h..(row + 1) * h]);
                work.nbr[l][row * h..(row + 1) * h].copy_from_slice(&base.layers[l].1[row * h..(row + 1) * h]);
            }
        }
        lp
    }

    /// The official `conditional_probs()`: for each designed position (`design[row] = 1`),
    /// its log-probabilities when decoded last (`backbone_only = false`, conditioned on the rest
    /// of `seq`) or first (`backbone_only = true`), with the others ordered by `|randn|`.
    /// Rows that are not designed are 0.
    pub fn conditional(
        &self,
        enc: &Encoded,
        seq: &[u8],
        design: &[f32],
        randn: &[f32],
        backbone_only: bool,
    ) -> Vec<f32> {
        let mut out = self.conditional_logits(enc, seq, design, randn, backbone_only);
        for (row, &d) in out.chunks_exact_mut(VOCAB).zip(design) {
            if d == 1.0 {
                log_softmax_inplace(row);
            }
        }
        out
    }

    /// [`Self::conditional`] before the `log_softmax`: the logits `W_out(h)` of each designed
    /// position (rows that are not designed are 0).
    pub fn conditional_logits(
        &self,
        enc: &Encoded,
        seq: &[u8],
        design: &[f32],
        randn: &[f32],
        backbone_only: bool,
    ) -> Vec<f32> {
        let _span = tracing::debug_span!("conditional", backbone_only).entered();
        let ctx = self.decoder_context_full(enc);
        let l = enc.graph.l;
        let rows = enc.mask.len();
        // The others' order in every per-target pass: all keys scaled by the same constant.
        let others = if backbone_only { 1.0f32 } else { 0.0 };
        let mut base_order = Vec::with_capacity(rows);
        for bi in 0..enc.graph.b {
            base_order.extend(decoding_order(&vec![others; l], &randn[bi * l..(bi + 1) * l]));
        }
        let base_pos = order_positions(&base_order, l);
        let (_, layers) = self.decode_all_layers(&ctx, seq, &|i, j| base_pos[j] < base_pos[i], true);
        let base = BasePass { pos: base_pos, layers };
        let targets: Vec<usize> = (0..rows).filter(|&r| design[r] == 1.0).collect();
        let results: Vec<(usize, [f32; VOCAB])> = targets
            .par_iter()
            .map_init(ConeWork::default, |work, &target| {
                let bi = target / l;
                let base_row = bi * l;
                let mut order_mask = vec![others; l];
                order_mask[target - base_row] = 1.0 - others;
                let order = decoding_order(&order_mask, &randn[base_row..base_row + l]);
                let mut pos = base.pos.clone();
                for (t, &i) in order.iter().enumerate() {
                    pos[base_row + i] = t;
                }
                (target, self.logits_at(&ctx, seq, &base, &pos, target, work))
            })
            .collect();
        let mut out = vec![0f32; rows * VOCAB];
        for (t, lp) in results {
            out[t * VOCAB..(t + 1) * VOCAB].copy_from_slice(&lp);
        }
        out
    }
}

/// A full decoder pass kept layer by layer, reused by every per-target pass.
struct BasePass {
    pos: Vec<usize>,
    /// For layers `1..layers`: states and their `W1v` projections.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Reusable buffers for the per-target conditional passes.
#[derive(Debug, Default, Clone)]
struct ConeWork {
    /// Layer `l + 1` states (a copy of the base pass, patched per target and restored).
    h: Vec<Vec<f32>>,
    nbr: Vec<Vec<f32>>,
    marks: ConeMarks,
    scratch: DecoderScratch,
}

impl ConeWork {
    fn ensure(&mut self, base: &BasePass) {
        if self.h.len() != base.layers.len() || self.h.first().map(Vec::len) != base.layers.first().map(|x| x.0.len()) {
            self.h = base.layers.iter().map(|(h, _)| h.clone()).collect();
            self.nbr = base.layers.iter().map(|(_, n)| n.clone()).collect();
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
