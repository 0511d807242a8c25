//! ProteinMPNN on the GPU: the weights uploaded once, and plans for the encoder, the decoder
//! passes (scoring, unconditional, conditional) and the autoregressive sampler.
//!
//! The decoder runs on sets of *virtual rows* `v = c·R + r` (copy `c` of encoded row `r`), like
//! [`ProteinMpnn::decoder_rows`] on the CPU: a scoring pass is every row of one copy; the sampler
//! decodes one row per sequence per step (copy = sequence); the conditional probabilities decode,
//! per target (copy = target), only the rows the target's final state depends on.

use std::sync::Arc;

use rand::{Rng, RngCore};

use super::{fbits, Gpu, GpuError, Kernel, Plan, HALF, NONE};
use crate::alphabet::VOCAB;
use crate::featurize::{Batch, Features};
use crate::kernels::precision::Precision;
use crate::kernels::{LayerNorm, Linear};
use crate::model::cone::{Cone, ConeMarks};
use crate::model::decoder::{decoding_order, order_positions};
use crate::model::graph::Graph;
use crate::model::ProteinMpnn;
use crate::sampler::{decoding_steps, Sample, SamplingOptions};

/// Letter index of "no letter yet" (its sequence-table row is zero).
const UNSET: u32 = VOCAB as u32;

#[derive(Debug, Clone, Copy)]
struct Lin {
    w: u32,
    b: u32,
}

#[derive(Debug, Clone, Copy)]
struct Norm {
    g: u32,
    b: u32,
}

#[derive(Debug, Clone)]
struct EncW {
    w1: [Lin; 3],
    w2: Lin,
    w3: Lin,
    b3: u32,
    w11: [Lin; 3],
    w12: Lin,
    w13: Lin,
    norm: [Norm; 3],
    ffn_in: Lin,
    ffn_out: Lin,
}

#[derive(Debug, Clone)]
struct DecW {
    w1_self: Lin,
    w1_edge: Lin,
    w1_nbr: Lin,
    w2: Lin,
    w3: Lin,
    b3: u32,
    norm: [Norm; 2],
    ffn_in: Lin,
    ffn_out: Lin,
    /// `W1s · W_s` per letter plus a zero row for "unset": `[22, H]`.
    seq_table: u32,
}

/// The weights buffer being filled; `half`: layers computed in f16 on the CPU model are stored
/// as IEEE halves (two per word) and run by the f16 kernel.
struct Packer(Vec<f32>, bool);

impl Packer {
    fn put(&mut self, v: &[f32]) -> u32 {
        let o = self.0.len() as u32;
        self.0.extend_from_slice(v);
        while !self.0.len().is_multiple_of(64) {
            self.0.push(0.0);
        }
        o
    }
    /// A layer's weight transposed to `[n_in, n_out]` (what the GEMM kernels read) and its bias
    /// (float32). A layer the CPU model computes in f16 (with `half`) has its matrix rounded to
    /// IEEE half (nearest even, as the CPU does) and packed two halves per word; its offset
    /// then counts halves and carries [`HALF`].
    fn lin(&mut self, l: &Linear) -> Lin {
        let mut t = vec![0f32; l.weight.len()];
        for o in 0..l.n_out {
            for i in 0..l.n_in {
                t[i * l.n_out + o] = l.weight[o * l.n_in + i];
            }
        }
        let w = if self.1 && l.precision() == Precision::F16 {
            let words: Vec<f32> = t
                .chunks(2)
                .map(|c| {
                    let h = |v: Option<&f32>| v.map_or(0u32, |&v| half::f16::from_f32(v).to_bits() as u32);
                    f32::from_bits(h(c.first()) | (h(c.get(1)) << 16))
                })
                .collect();
            (self.put(&words) * 2) | HALF
        } else {
            self.put(&t)
        };
        let b = l.bias.as_ref().map_or(NONE, |b| self.put(b));
        Lin { w, b }
    }
    fn norm(&mut self, n: &LayerNorm) -> Norm {
        Norm { g: self.put(&n.gamma), b: self.put(&n.beta) }
    }
}

/// How the sampler picks the letters of one sequence.
pub enum Draw<'a> {
    /// Inverse-CDF draws, one uniform `f32` per choice from the sequence's own generator (the
    /// same stream, in the same order, as the CPU's [`crate::sampler::Multinomial`]).
    Uniform(&'a mut dyn RngCore),
    /// The most probable letter.
    Argmax,
    /// The letter of this sequence at the step's first position.
    Forced(&'a [u8]),
}

impl Draw<'_> {
    fn mode(&self) -> u32 {
        match self {
            Draw::Uniform(_) => 0,
            Draw::Argmax => 1,
            Draw::Forced(_) => 2,
        }
    }
}

/// One structure's part of a multi-structure sampler batch ([`GpuModel::sample_structures`]):
/// its features, PSSM log-odds mask, one `randn` and one draw mode per sequence.
pub struct SampleItem<'a, 'r> {
    pub f: &'a Features,
    pub log_odds_mask: &'a [f32],
    pub randns: Vec<&'a [f32]>,
    pub draws: Vec<Draw<'r>>,
}

/// A model on a GPU.
pub struct GpuModel {
    pub gpu: Arc<Gpu>,
    weights: wgpu::Buffer,
    h: usize,
    edge_in: usize,
    k: usize,
    edge_embedding: Lin,
    norm_edges: Norm,
    w_e: Lin,
    enc: Vec<EncW>,
    dec: Vec<DecW>,
    w_out: Lin,
    /// `log_softmax(W_out.bias)`: the log-probabilities of a missing residue's zero state.
    missing_row: Vec<f32>,
    /// Bytes of the weights on the device.
    pub weight_bytes: u64,
}

impl std::fmt::Debug for GpuModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuModel(h={}, on {})", self.h, self.gpu.adapter)
    }
}

/// The encoder's outputs, where they are in a plan's arenas.
struct Enc {
    /// Rows `B·L`, length `L`, neighbours `K`.
    r: usize,
    l: usize,
    k: usize,
    mask: u32,
    e_idx: u32,
    h_v: u32,
    enc_nbr: Vec<u32>,
    edge_proj: Vec<u32>,
}

/// Scratch for decoder layers over at most `rows` rows.
struct Scratch {
    x: u32,
    own: u32,
    pre: u32,
    mid: u32,
    sums: u32,
    dh: u32,
    inner: u32,
    f: u32,
    proj: u32,
}

/// One decoder layer's inputs and outputs in the arenas.
struct LayerIo {
    rows: u32,
    n: usize,
    h_prev: u32,
    nbr_prev: u32,
    /// `h_prev` / `nbr_prev` hold encoded rows (index `v % R`), not virtual rows.
    shared: bool,
    pos: u32,
    seq: u32,
    h_out: Option<u32>,
    nbr_out: Option<u32>,
}

/// The decoder's per-layer outputs for `rows` virtual rows (every layer but the last): node
/// states and their projection through the next layer's `W1` neighbour block.
struct DecoderStates {
    states: Vec<u32>,
    nbrs: Vec<u32>,
}

impl DecoderStates {
    /// Layer `l`'s inputs and outputs (of `layers`) for the `n` virtual rows listed at `rows`:
    /// layer 0 reads the encoder's states (`h_v`, `enc_nbr0`), each later layer the previous
    /// one's; every layer but the last writes its own.
    #[allow(clippy::too_many_arguments)]
    fn layer_io(
        &self,
        h_v: u32,
        enc_nbr0: u32,
        l: usize,
        layers: usize,
        rows: u32,
        n: usize,
        pos: u32,
        seq: u32,
    ) -> LayerIo {
        LayerIo {
            rows,
            n,
            h_prev: if l == 0 { h_v } else { self.states[l - 1] },
            nbr_prev: if l == 0 { enc_nbr0 } else { self.nbrs[l - 1] },
            shared: l == 0,
            pos,
            seq,
            h_out: (l + 1 < layers).then(|| self.states[l]),
            nbr_out: (l + 1 < layers).then(|| self.nbrs[l]),
        }
    }
}

impl GpuModel {
    /// Uploads `model`'s weights: float32, or for a model in `Precision::F16` (on a device with
    /// SHADER_F16, [`Gpu::supports`]) the dense layers the CPU computes in f16 as halves, run by
    /// the f16 kernel with the CPU's semantics (inputs rounded to f16, products summed in f32).
    ///
    /// Panics for a precision the device does not support (check [`Gpu::supports`] first).
    pub fn new(gpu: Arc<Gpu>, model: &ProteinMpnn) -> GpuModel {
        if let Err(e) = gpu.supports(model.precision) {
            panic!("GpuModel::new: {e}");
        }
        let h = model.hidden();
        let mut pk = Packer(Vec::new(), model.precision == Precision::F16);
        let edge_embedding = pk.lin(&model.edge_embedding);
        let norm_edges = pk.norm(&model.norm_edges);
        let w_e = pk.lin(&model.w_e);
        let enc = model
            .encoder_layers
            .iter()
            .map(|l| EncW {
                w1: [pk.lin(&l.w1_blocks[0]), pk.lin(&l.w1_blocks[1]), pk.lin(&l.w1_blocks[2])],
                w2: pk.lin(&l.w2),
                w3: pk.lin(&l.w3_sum),
                b3: l.w3.bias.as_ref().map_or(NONE, |b| pk.put(b)),
                w11: [pk.lin(&l.w11_blocks[0]), pk.lin(&l.w11_blocks[1]), pk.lin(&l.w11_blocks[2])],
                w12: pk.lin(&l.w12),
                w13: pk.lin(&l.w13),
                norm: [pk.norm(&l.norm1), pk.norm(&l.norm2), pk.norm(&l.norm3)],
                ffn_in: pk.lin(&l.dense.w_in),
                ffn_out: pk.lin(&l.dense.w_out),
            })
            .collect();
        let dec = model
            .decoder_layers
            .iter()
            .map(|l| {
                let mut table = vec![0f32; (VOCAB + 1) * h];
                l.w1_seq.forward(&model.w_s, VOCAB, &mut table[..VOCAB * h]);
                DecW {
                    w1_self: pk.lin(&l.w1_self),
                    w1_edge: pk.lin(&l.w1_edge),
                    w1_nbr: pk.lin(&l.w1_nbr),
                    w2: pk.lin(&l.w2),
                    w3: pk.lin(&l.w3_sum),
                    b3: l.w3.bias.as_ref().map_or(NONE, |b| pk.put(b)),
                    norm: [pk.norm(&l.norm1), pk.norm(&l.norm2)],
                    ffn_in: pk.lin(&l.dense.w_in),
                    ffn_out: pk.lin(&l.dense.w_out),
                    seq_table: pk.put(&table),
                }
            })
            .collect();
        let w_out = pk.lin(&model.w_out);
        let mut missing_row = model.w_out.bias.clone().unwrap_or_else(|| vec![0.0; VOCAB]);
        crate::kernels::log_softmax_inplace(&mut missing_row);
        let weights = gpu.weights_buffer(&pk.0);
        GpuModel {
            weight_bytes: pk.0.len() as u64 * 4,
            gpu,
            weights,
            h,
            edge_in: model.edge_inputs(),
            k: model.arch.k,
            edge_embedding,
            norm_edges,
            w_e,
            enc,
            dec,
            w_out,
            missing_row,
        }
    }

    /// Bytes a plan may still use in its float arena after `used`.
    fn budget(&self, used: u64) -> u64 {
        self.gpu.max_buffer.min(2 << 30).saturating_sub(used + (1 << 20))
    }

    fn run(&self, plan: &Plan) -> Result<super::Results, GpuError> {
        self.gpu.run(&self.weights, plan)
    }

    /// Records the edge embedding, the encoder and the decoder's sequence-independent inputs.
    fn record_encoder(&self, plan: &mut Plan, model: &ProteinMpnn, batch: &Batch) -> (Enc, Graph) {
        let (graph, raw) = model.raw_edge_inputs(batch);
        let h = self.h;
        let (r, l, k) = (batch.b * batch.l, batch.l, graph.k);
        debug_assert!(k <= self.k.max(k));
        let edges = r * k;
        let raw_len = raw.len();
        let raw = plan.upload(raw);
        let mask = plan.upload(batch.mask.clone());
        let e_idx = plan.upload_int(graph.e_idx.clone());
        let e = plan.alloc(edges * h);
        plan.gemm(edges, h, self.edge_in, raw, self.edge_embedding.w, NONE, e, false);
        let n = self.norm_edges;
        plan.run1(Kernel::AddNorm, edges, &[edges as u32, h as u32, e, NONE, n.g, n.b, NONE, NONE, 1]);
        let h_e = plan.alloc(edges * h);
        plan.gemm(edges, h, h, e, self.w_e.w, self.w_e.b, h_e, false);
        let h_v = plan.alloc(r * h);
        plan.fill(r * h, h_v, 0.0);
        let s_proj = plan.alloc(r * h);
        let n_proj = plan.alloc(r * h);
        let pre = e; // the embedded features are no longer needed
                     // The raw inputs are dead after the embedding: their region holds `mid` and as many of
                     // the decoder's edge projections as fit (keeps long structures within one buffer).
        let mut free = (raw, raw_len);
        let mut recycle = |plan: &mut Plan, n: usize| {
            let n_pad = n.div_ceil(64) * 64;
            if n_pad <= free.1 {
                let o = free.0;
                free = (free.0 + n_pad as u32, free.1 - n_pad);
                o
            } else {
                plan.alloc(n)
            }
        };
        let mid = recycle(plan, edges * h);
        let sums = plan.alloc(r * h);
        let counts = plan.alloc(r);
        let dh = plan.alloc(r * h);
        let inner = plan.alloc(r * 4 * h);
        let ff = plan.alloc(r * h);
        let (hu, ku, lu, ru) = (h as u32, k as u32, l as u32, r as u32);
        for w in &self.enc {
            // Node update.
            plan.gemm(r, h, h, h_v, w.w1[0].w, w.w1[0].b, s_proj, false);
            plan.gemm(r, h, h, h_v, w.w1[2].w, NONE, n_proj, false);
            plan.gemm(edges, h, h, h_e, w.w1[1].w, NONE, pre, false);
            plan.run1(Kernel::EncPre, edges * h, &[edges as u32, hu, ku, pre, s_proj, n_proj, e_idx, lu]);
            plan.gelu(edges * h, pre);
            plan.gemm(edges, h, h, pre, w.w2.w, w.w2.b, mid, false);
            plan.gelu(edges * h, mid);
            plan.run1(Kernel::EncSum, r * h, &[ru, hu, ku, mid, mask, e_idx, lu, sums, counts]);
            plan.gemm(r, h, h, sums, w.w3.w, NONE, dh, false);
            let n1 = w.norm[0];
            plan.run1(Kernel::NodeUpdate, r, &[ru, hu, h_v, dh, counts, 0, w.b3, n1.g, n1.b]);
            plan.gemm(r, 4 * h, h, h_v, w.ffn_in.w, w.ffn_in.b, inner, false);
            plan.gelu(r * 4 * h, inner);
            plan.gemm(r, h, 4 * h, inner, w.ffn_out.w, w.ffn_out.b, ff, false);
            let n2 = w.norm[1];
            plan.run1(Kernel::AddNorm, r, &[ru, hu, h_v, ff, n2.g, n2.b, mask, NONE, ru]);
            // Edge update.
            plan.gemm(r, h, h, h_v, w.w11[0].w, w.w11[0].b, s_proj, false);
            plan.gemm(r, h, h, h_v, w.w11[2].w, NONE, n_proj, false);
            plan.gemm(edges, h, h, h_e, w.w11[1].w, NONE, pre, false);
            plan.run1(Kernel::EncPre, edges * h, &[edges as u32, hu, ku, pre, s_proj, n_proj, e_idx, lu]);
            plan.gelu(edges * h, pre);
            plan.gemm(edges, h, h, pre, w.w12.w, w.w12.b, mid, false);
            plan.gelu(edges * h, mid);
            plan.gemm(edges, h, h, mid, w.w13.w, w.w13.b, pre, false);
            let n3 = w.norm[2];
            plan.run1(Kernel::AddNorm, edges, &[edges as u32, hu, h_e, pre, n3.g, n3.b, NONE, NONE, 1]);
        }
        // Decoder inputs that do not depend on the sequence.
        let mut enc_nbr = Vec::new();
        let mut edge_proj = Vec::new();
        for w in &self.dec {
            let nb = plan.alloc(r * h);
            plan.gemm(r, h, h, h_v, w.w1_nbr.w, NONE, nb, false);
            enc_nbr.push(nb);
            let ep = recycle(plan, edges * h);
            plan.gemm(edges, h, h, h_e, w.w1_edge.w, NONE, ep, false);
            edge_proj.push(ep);
        }
        (Enc { r, l, k, mask, e_idx, h_v, enc_nbr, edge_proj }, graph)
    }

    fn scratch(&self, plan: &mut Plan, k: usize, rows: usize) -> Scratch {
        let h = self.h;
        Scratch {
            x: plan.alloc(rows * h),
            own: plan.alloc(rows * h),
            pre: plan.alloc(rows * k * h),
            mid: plan.alloc(rows * k * h),
            sums: plan.alloc(rows * h),
            dh: plan.alloc(rows * h),
            inner: plan.alloc(rows * 4 * h),
            f: plan.alloc(rows * h),
            proj: plan.alloc(rows * h),
        }
    }

    /// One decoder layer over `io.n` virtual rows; leaves their new states in `sc.x`.
    fn record_layer(&self, plan: &mut Plan, e: &Enc, sc: &Scratch, l: usize, io: &LayerIo) {
        let h = self.h;
        let (n, k) = (io.n, e.k);
        if n == 0 {
            return;
        }
        let w = &self.dec[l];
        let (hu, ku, ru, nu) = (h as u32, k as u32, e.r as u32, n as u32);
        plan.run1(Kernel::Gather, n * h, &[nu, hu, io.rows, io.h_prev, sc.x, ru, io.shared as u32]);
        plan.gemm(n, h, h, sc.x, w.w1_self.w, w.w1_self.b, sc.own, false);
        plan.run1(
            Kernel::DecPre,
            n * k * h,
            &[
                nu,
                hu,
                ku,
                ru,
                e.l as u32,
                io.rows,
                sc.own,
                e.edge_proj[l],
                w.seq_table,
                io.nbr_prev,
                io.shared as u32,
                e.enc_nbr[l],
                e.mask,
                io.pos,
                io.seq,
                e.e_idx,
                sc.pre,
            ],
        );
        plan.gelu(n * k * h, sc.pre);
        plan.gemm(n * k, h, h, sc.pre, w.w2.w, w.w2.b, sc.mid, false);
        plan.gelu(n * k * h, sc.mid);
        plan.run1(Kernel::DecSum, n * h, &[nu, hu, ku, sc.mid, sc.sums]);
        plan.gemm(n, h, h, sc.sums, w.w3.w, NONE, sc.dh, false);
        let n1 = w.norm[0];
        plan.run1(Kernel::NodeUpdate, n, &[nu, hu, sc.x, sc.dh, NONE, fbits(k as f32), w.b3, n1.g, n1.b]);
        plan.gemm(n, 4 * h, h, sc.x, w.ffn_in.w, w.ffn_in.b, sc.inner, false);
        plan.gelu(n * 4 * h, sc.inner);
        plan.gemm(n, h, 4 * h, sc.inner, w.ffn_out.w, w.ffn_out.b, sc.f, false);
        let n2 = w.norm[1];
        plan.run1(Kernel::AddNorm, n, &[nu, hu, sc.x, sc.f, n2.g, n2.b, e.mask, io.rows, ru]);
        if let Some(out) = io.h_out {
            plan.run1(Kernel::Scatter, n * h, &[nu, hu, io.rows, sc.x, out]);
        }
        if let Some(out) = io.nbr_out {
            let next = &self.dec[l + 1];
            plan.gemm(n, h, h, sc.x, next.w1_nbr.w, NONE, sc.proj, false);
            plan.run1(Kernel::Scatter, n * h, &[nu, hu, io.rows, sc.proj, out]);
        }
    }

    /// Arrays for the decoder's intermediate layer outputs of `rows` virtual rows.
    fn decoder_states(&self, plan: &mut Plan, rows: usize) -> DecoderStates {
        let inner = self.dec.len().saturating_sub(1);
        let h = self.h;
        DecoderStates {
            states: (0..inner).map(|_| plan.alloc(rows * h)).collect(),
            nbrs: (0..inner).map(|_| plan.alloc(rows * h)).collect(),
        }
    }

    /// Every decoder layer in turn over the virtual rows `rows(plan, layer)` returns (their
    /// index array and count), reading and writing `ds`; the last layer's states stay in `sc.x`.
    #[allow(clippy::too_many_arguments)]
    fn record_decoder_stack(
        &self,
        plan: &mut Plan,
        e: &Enc,
        sc: &Scratch,
        ds: &DecoderStates,
        pos: u32,
        seq: u32,
        mut rows: impl FnMut(&mut Plan, usize) -> (u32, usize),
    ) {
        let layers = self.dec.len();
        for l in 0..layers {
            let (rows, n) = rows(plan, l);
            let io = ds.layer_io(e.h_v, e.enc_nbr[0], l, layers, rows, n, pos, seq);
            self.record_layer(plan, e, sc, l, &io);
        }
    }

    /// `W_out` and `log_softmax` of `n` states at `x` into a new array `[n, 21]`.
    fn record_log_probs(&self, plan: &mut Plan, n: usize, x: u32) -> u32 {
        let out = plan.alloc(n * VOCAB);
        plan.gemm(n, VOCAB, self.h, x, self.w_out.w, self.w_out.b, out, false);
        plan.log_softmax(n, VOCAB, out, out);
        out
    }

    /// Full decoder passes over every row of `batch`, one per `(seq, order)` (`seq` `[B·L]`,
    /// `order` per item as in [`ProteinMpnn::forward`]; `None` order = unconditional, every
    /// neighbour seen through the encoder only). Returns `[B·L, 21]` log-probabilities per pass.
    pub fn forward_passes(
        &self,
        model: &ProteinMpnn,
        batch: &Batch,
        passes: &[(Vec<u8>, Option<Vec<usize>>)],
    ) -> Result<Vec<Vec<f32>>, GpuError> {
        let mut plan = Plan::new();
        let (e, _) = self.record_encoder(&mut plan, model, batch);
        let r = e.r;
        let h = self.h;
        let layers = self.dec.len();
        let t = passes.len().max(1);
        // Copies decoded together: as many as the device's buffer limit allows. When not even
        // one copy's scratch fits (long structures on a device with small buffers, such as
        // lavapipe's 128 MiB), each layer runs over slices of the rows instead, layer by layer
        // so that every slice reads the previous layer's states of all rows.
        let row_bytes = 4 * (h as u64 * (2 * e.k as u64 + 12) + VOCAB as u64 + 2);
        let state_bytes = 4 * r as u64 * h as u64 * 4 * layers as u64;
        let per_copy = r as u64 * row_bytes + state_bytes;
        let outputs = 4 * (r * VOCAB + 64) as u64 * t as u64;
        let avail = self.budget(plan.float_bytes() + outputs);
        let per = (avail / per_copy.max(1)).clamp(1, t as u64) as usize;
        let step = if per_copy <= avail {
            per * r
        } else {
            let fit = (avail.saturating_sub(state_bytes) / row_bytes) as usize;
            (fit / 64 * 64).clamp(64, r.max(64))
        };
        let sc = self.scratch(&mut plan, e.k, step.min(per * r));
        let ds = self.decoder_states(&mut plan, per * r);
        let rows = plan.upload_int((0..(per * r) as u32).collect());
        let mut slots = Vec::new();
        for chunk in passes.chunks(per) {
            let c = chunk.len();
            let mut pos = Vec::with_capacity(c * r);
            let mut seq = Vec::with_capacity(c * r);
            for (s, order) in chunk {
                match order {
                    Some(o) => pos.extend(order_positions(o, e.l).iter().map(|&p| p as u32)),
                    None => pos.extend(std::iter::repeat_n(0u32, r)),
                }
                seq.extend(s.iter().map(|&a| a as u32));
            }
            let pos = plan.upload_int(pos);
            let seq = plan.upload_int(seq);
            let total = c * r;
            let mut reads = Vec::new();
            for l in 0..layers {
                for start in (0..total).step_by(step) {
                    let n = step.min(total - start);
                    // `rows` is the identity: its slice from `start` names rows start.. .
                    let io = ds.layer_io(e.h_v, e.enc_nbr[0], l, layers, rows + start as u32, n, pos, seq);
                    self.record_layer(&mut plan, &e, &sc, l, &io);
                    if l + 1 == layers {
                        let lp = self.record_log_probs(&mut plan, n, sc.x);
                        reads.push(plan.read(lp, n * VOCAB));
                    }
                }
            }
            slots.push((c, reads));
        }
        let res = self.run(&plan)?;
        let mut out = Vec::new();
        for (c, reads) in slots {
            let v: Vec<f32> = reads.into_iter().flat_map(|s| res.floats(s)).collect();
            out.extend(v.chunks(r * VOCAB).take(c).map(|x| x.to_vec()));
        }
        Ok(out)
    }

    /// The official `forward()` ([`ProteinMpnn::forward`]) for `batch`.
    pub fn forward(
        &self,
        model: &ProteinMpnn,
        batch: &Batch,
        seq: &[u8],
        order: &[usize],
    ) -> Result<Vec<f32>, GpuError> {
        Ok(self.forward_passes(model, batch, &[(seq.to_vec(), Some(order.to_vec()))])?.remove(0))
    }

    /// The official `unconditional_probs()`.
    pub fn unconditional(&self, model: &ProteinMpnn, batch: &Batch) -> Result<Vec<f32>, GpuError> {
        let r = batch.b * batch.l;
        Ok(self.forward_passes(model, batch, &[(vec![0; r], None)])?.remove(0))
    }

    /// The official `conditional_probs()` ([`ProteinMpnn::conditional`]): per designed row, the
    /// log-probabilities when decoded last (or first with `backbone_only`), the others ordered by
    /// `|randn|`; each target decodes only the rows its final state depends on.
    pub fn conditional(
        &self,
        model: &ProteinMpnn,
        batch: &Batch,
        seq: &[u8],
        design: &[f32],
        randn: &[f32],
        backbone_only: bool,
    ) -> Result<Vec<f32>, GpuError> {
        Ok(self.conditional_variants(model, batch, seq, design, randn, &[backbone_only])?.remove(0))
    }

    /// [`Self::conditional`] for each `backbone_only` value of `variants`, with one encoder run.
    ///
    /// As on the CPU: one full base pass per variant keeps every layer's states; each target
    /// then recomputes only the rows of its [`Cone`] whose inputs differ from the base pass,
    /// reading every other state from a copy of the base pass's.
    pub fn conditional_variants(
        &self,
        model: &ProteinMpnn,
        batch: &Batch,
        seq: &[u8],
        design: &[f32],
        randn: &[f32],
        variants: &[bool],
    ) -> Result<Vec<Vec<f32>>, GpuError> {
        let mut plan = Plan::new();
        let (e, graph) = self.record_encoder(&mut plan, model, batch);
        let (r, l, h) = (e.r, e.l, self.h);
        let layers = self.dec.len();
        let nv = variants.len();
        let base_pos = |others: f32| {
            let mut base_order = Vec::with_capacity(r);
            for bi in 0..batch.b {
                base_order.extend(decoding_order(&vec![others; l], &randn[bi * l..(bi + 1) * l]));
            }
            order_positions(&base_order, l)
        };
        let bases: Vec<Vec<usize>> = variants.iter().map(|&bo| base_pos(if bo { 1.0 } else { 0.0 })).collect();
        // (variant, target) pairs; every copy has its own positions, so variants share chunks.
        let targets: Vec<(usize, usize)> =
            (0..nv).flat_map(|v| (0..r).filter(|&i| design[i] == 1.0).map(move |i| (v, i))).collect();
        // Per target: its positions, its cone, and per layer `l >= 1` the needed rows that keep
        // the base pass's layer-`l` state (copied in before layer `l` runs).
        struct Target {
            pos: Vec<usize>,
            cone: Cone,
            copy: Vec<Vec<usize>>,
        }
        let cone = |marks: &mut ConeMarks, &(variant, target): &(usize, usize)| -> Target {
            let others = if variants[variant] { 1.0f32 } else { 0.0 };
            let bi = target / l;
            let base_row = bi * l;
            let mut order_mask = vec![others; l];
            order_mask[target - base_row] = 1.0 - others;
            let order = decoding_order(&order_mask, &randn[base_row..base_row + l]);
            let mut pos = bases[variant].clone();
            for (t, &i) in order.iter().enumerate() {
                pos[base_row + i] = t;
            }
            let cone = Cone::of(&graph, layers, &bases[variant], &pos, target, marks);
            let copy = (0..layers)
                .map(|lay| {
                    if lay == 0 {
                        return Vec::new();
                    }
                    let fresh = &cone.compute[lay - 1];
                    cone.needed[lay].iter().copied().filter(|row| !fresh.contains(row)).collect()
                })
                .collect();
            Target { pos, cone, copy }
        };
        let cones: Vec<Target> = {
            use rayon::prelude::*;
            targets.par_iter().map_init(ConeMarks::default, cone).collect()
        };
        // The base passes' states (virtual rows `v·R + row`), then the budget left.
        let bs = self.decoder_states(&mut plan, nv * r);
        let row_bytes = 4 * h as u64 * (2 * e.k as u64 + 12);
        let copy_bytes = 4 * r as u64 * (2 * h as u64 * layers as u64 + 4) + 4 * VOCAB as u64;
        let outputs = 4 * (VOCAB as u64 + 64) * cones.len() as u64;
        let half = self.budget(plan.float_bytes()).saturating_sub(outputs) / 2;
        let rows_of = |t: &Target| t.cone.compute.iter().map(Vec::len).max().unwrap_or(1);
        let copies_of = |t: &Target| t.copy.iter().map(Vec::len).max().unwrap_or(0);
        // Scratch rows: half the budget (at most the base passes' rows, at least the largest
        // target's); chunks of targets fill it, and their copies' states the other half.
        let largest = cones.iter().map(rows_of).max().unwrap_or(1);
        let scratch_rows = ((half / row_bytes) as usize).min(nv * r).max(largest).max(1);
        let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = 0;
        let (mut rows_used, mut copies_used) = (0usize, 0u64);
        for (i, t) in cones.iter().enumerate() {
            let copy = copy_bytes + 4 * h as u64 * copies_of(t) as u64;
            if i > start && (rows_used + rows_of(t) > scratch_rows || copies_used + copy > half) {
                chunks.push(start..i);
                start = i;
                rows_used = 0;
                copies_used = 0;
            }
            rows_used += rows_of(t);
            copies_used += copy;
        }
        if start < cones.len() {
            chunks.push(start..cones.len());
        }
        let max_copies = chunks.iter().map(|c| c.len()).max().unwrap_or(0);
        let max_moved =
            chunks.iter().map(|c| cones[c.clone()].iter().map(copies_of).sum::<usize>()).max().unwrap_or(0).max(1);
        let sc = self.scratch(&mut plan, e.k, scratch_rows);
        let moved = plan.alloc(max_moved * h);
        let ds = self.decoder_states(&mut plan, max_copies * r);
        let seq_all: Vec<u32> = seq.iter().map(|&a| a as u32).collect();
        let seq_rep = plan.upload_int(seq_all.repeat(max_copies.max(nv).max(1)));
        // The base passes, every layer but the last, over slices of `scratch_rows` rows.
        let ident = plan.upload_int((0..(nv * r) as u32).collect());
        let pos_all = plan.upload_int(bases.iter().flatten().map(|&p| p as u32).collect());
        for lay in 0..layers.saturating_sub(1) {
            for first in (0..nv * r).step_by(scratch_rows) {
                let n = scratch_rows.min(nv * r - first);
                let io = bs.layer_io(e.h_v, e.enc_nbr[0], lay, layers, ident + first as u32, n, pos_all, seq_rep);
                self.record_layer(&mut plan, &e, &sc, lay, &io);
            }
        }
        let (hu, ru) = (h as u32, r as u32);
        let mut slots = Vec::new();
        for ch in &chunks {
            let mut pos = Vec::with_capacity(ch.len() * r);
            for c in ch.clone() {
                pos.extend(cones[c].pos.iter().map(|&p| p as u32));
            }
            let pos = plan.upload_int(pos);
            self.record_decoder_stack(&mut plan, &e, &sc, &ds, pos, seq_rep, |plan, lay| {
                if lay > 0 {
                    // The base pass's layer-`lay` states of the rows read but not recomputed.
                    let (mut from, mut to) = (Vec::new(), Vec::new());
                    for (ci, c) in ch.clone().enumerate() {
                        let v = targets[c].0;
                        for &row in &cones[c].copy[lay] {
                            from.push((v * r + row) as u32);
                            to.push((ci * r + row) as u32);
                        }
                    }
                    let n = from.len();
                    if n > 0 {
                        let (from, to) = (plan.upload_int(from), plan.upload_int(to));
                        let nu = n as u32;
                        for (src, dst) in
                            [(bs.states[lay - 1], ds.states[lay - 1]), (bs.nbrs[lay - 1], ds.nbrs[lay - 1])]
                        {
                            plan.run1(Kernel::Gather, n * h, &[nu, hu, from, src, moved, ru, 0]);
                            plan.run1(Kernel::Scatter, n * h, &[nu, hu, to, moved, dst]);
                        }
                    }
                }
                let mut rows = Vec::new();
                for (ci, c) in ch.clone().enumerate() {
                    rows.extend(cones[c].cone.compute[lay].iter().map(|&row| (ci * r + row) as u32));
                }
                let n = rows.len();
                (plan.upload_int(rows), n)
            });
            let lp = self.record_log_probs(&mut plan, ch.len(), sc.x);
            slots.push((ch.clone(), plan.read(lp, ch.len() * VOCAB)));
        }
        let res = self.run(&plan)?;
        let mut out = vec![vec![0f32; r * VOCAB]; nv];
        for (ch, s) in slots {
            let v = res.floats(s);
            for (ci, c) in ch.enumerate() {
                let (variant, t) = targets[c];
                out[variant][t * VOCAB..(t + 1) * VOCAB].copy_from_slice(&v[ci * VOCAB..(ci + 1) * VOCAB]);
            }
        }
        Ok(out)
    }

    /// The sampler's device memory for one structure of length `l`: (bytes per structure for
    /// its encoding, bytes per sequence sampled from it).
    fn sampler_bytes(&self, l: usize) -> (u64, u64) {
        let (l64, h) = (l as u64, self.h as u64);
        let k = self.k.min(l).max(1) as u64;
        let layers = self.dec.len().max(1) as u64;
        let per_seq =
            4 * (l64 * h * 2 * (layers - 1) + 2 * l64 * VOCAB as u64 + 2 * k * h + 12 * h + 2 * VOCAB as u64 + 2 * l64);
        let per_structure = 4 * (l64 * k * (self.edge_in as u64 + h * (3 + layers)) + 12 * l64 * h);
        (per_structure, per_seq)
    }

    /// Sequences per sampler batch that fit the device's largest buffer for length `l`.
    pub fn sample_batch_limit(&self, l: usize) -> usize {
        let (fixed, per_seq) = self.sampler_bytes(l);
        (self.budget(fixed + (4 << 20)) / per_seq.max(1)).clamp(1, 8192) as usize
    }

    /// Samples one sequence per `randn` for the single structure `f` (the CPU's
    /// [`crate::sampler::Sampler::sample_many`], everything from the encoder to the draws on the
    /// GPU in one command buffer).
    pub fn sample(
        &self,
        model: &ProteinMpnn,
        f: &Features,
        log_odds_mask: &[f32],
        options: &SamplingOptions,
        randns: &[&[f32]],
        mut draws: Vec<Draw>,
    ) -> Result<Vec<Sample>, GpuError> {
        let n_seq = randns.len();
        if n_seq == 0 {
            return Ok(Vec::new());
        }
        assert_eq!(draws.len(), n_seq, "one draw mode per sequence");
        let limit = self.sample_batch_limit(f.len());
        if n_seq > limit {
            // Batches that fit the device, one after the other (each sequence depends only on
            // its own randn and draws, so the split never changes a result).
            let mut out = Vec::with_capacity(n_seq);
            for chunk in randns.chunks(limit) {
                let rest = draws.split_off(chunk.len());
                let mine = std::mem::replace(&mut draws, rest);
                out.extend(self.sample(model, f, log_odds_mask, options, chunk, mine)?);
            }
            return Ok(out);
        }
        let item = SampleItem { f, log_odds_mask, randns: randns.to_vec(), draws };
        Ok(self.sample_group(model, vec![item], options)?.remove(0))
    }

    /// Structures per multi-structure sampler batch that fit the device, for `n` sequences
    /// each, padded to length `l` (at least 1).
    pub fn structures_per_batch(&self, l: usize, n: usize) -> usize {
        let (fixed, per_seq) = self.sampler_bytes(l);
        (self.budget(4 << 20) / (fixed + n as u64 * per_seq).max(1)).clamp(1, 4096) as usize
    }

    /// Samples several structures' sequences in shared command buffers: the structures are
    /// padded to the longest of a group and encoded together, and sequence `c` of every
    /// structure is one row block of a copy, so one decoder dispatch per step serves all of
    /// them (a design job's 8 sequences of a 100-residue backbone alone leave a GPU idle).
    /// Every structure needs the same number of sequences; each sequence depends only on its
    /// structure, `randn` and draws, so the result equals [`GpuModel::sample`] per structure.
    /// Structures with tied positions, and groups that would not fit, run on their own.
    pub fn sample_structures<'a, 'r>(
        &self,
        model: &ProteinMpnn,
        items: Vec<SampleItem<'a, 'r>>,
        options: &SamplingOptions,
    ) -> Result<Vec<Vec<Sample>>, GpuError> {
        let mut out: Vec<Vec<Sample>> = Vec::with_capacity(items.len());
        let mut group: Vec<SampleItem<'a, 'r>> = Vec::new();
        let flush = |group: &mut Vec<SampleItem<'a, 'r>>, out: &mut Vec<Vec<Sample>>| -> Result<(), GpuError> {
            match group.len() {
                0 => {}
                1 => {
                    let it = group.pop().expect("one item");
                    out.push(self.sample(model, it.f, it.log_odds_mask, options, &it.randns, it.draws)?);
                }
                _ => out.extend(self.sample_group(model, std::mem::take(group), options)?),
            }
            Ok(())
        };
        // A structure shorter than k has padding among its k nearest "neighbours" once padded:
        // it only joins structures of its own length (no padding).
        let short = |it: &SampleItem| it.f.len() < self.k;
        for item in items {
            let n = item.randns.len();
            let alone = !item.f.tied_positions.is_empty() || n == 0 || n > self.sample_batch_limit(item.f.len());
            let fits = |g: &[SampleItem<'a, 'r>], it: &SampleItem<'a, 'r>| {
                let l = g.iter().chain([it]).map(|x| x.f.len()).max().unwrap_or(0);
                let same_len = g.iter().all(|x| x.f.len() == it.f.len());
                g[0].randns.len() == n
                    && (same_len || (!short(it) && !g.iter().any(short)))
                    && g.len() < self.structures_per_batch(l, n)
            };
            if !group.is_empty() && (alone || !fits(&group, &item)) {
                flush(&mut group, &mut out)?;
            }
            group.push(item);
            if alone {
                flush(&mut group, &mut out)?;
            }
        }
        flush(&mut group, &mut out)?;
        Ok(out)
    }

    /// One command buffer for `items` (the same number of sequences each, tied positions only
    /// when alone): chain `s = c·B + b` is sequence `c` of structure `b`, its rows `s·L + t`.
    fn sample_group(
        &self,
        model: &ProteinMpnn,
        mut items: Vec<SampleItem<'_, '_>>,
        options: &SamplingOptions,
    ) -> Result<Vec<Vec<Sample>>, GpuError> {
        let nb = items.len();
        let n_per = items[0].randns.len();
        assert!(items.iter().all(|it| it.randns.len() == n_per && it.draws.len() == n_per));
        let tied = !items[0].f.tied_positions.is_empty();
        assert!(nb == 1 || items.iter().all(|it| it.f.tied_positions.is_empty()), "tied structures run alone");
        let fs: Vec<&Features> = items.iter().map(|it| it.f).collect();
        let batch = Batch::new(&fs, None);
        let l = batch.l;
        let n_seq = n_per * nb;
        let h = self.h;
        tracing::debug!("GPU sampler batch: {nb} structure(s) × {n_per} sequences, padded to {l} residues");
        // The schedule, per sequence: sub-steps of one decoded row each; a step's letter is
        // chosen at its last sub-step.
        struct Sub {
            decode: Option<(u32, u32, f32, f32)>, // row, flags, beta, members
            fin: Option<[u32; 8]>, // kind, last, members offset, count, uniform, letter, mode, row offset
        }
        let mut members_all: Vec<u32> = Vec::new();
        let mut schedules: Vec<Vec<Sub>> = Vec::with_capacity(n_seq);
        let mut orders = Vec::with_capacity(n_seq);
        // Positions never decoded (padding) come after every decoded one.
        let mut pos = vec![u32::MAX / 2; n_seq * l];
        for c in 0..n_per {
            for (b, item) in items.iter_mut().enumerate() {
                let si = c * nb + b;
                let f = item.f;
                let design = f.design_mask();
                let randn = item.randns[c];
                assert_eq!(randn.len(), f.len());
                let base = decoding_order(&design, randn);
                let steps = decoding_steps(&base, &f.tied_positions);
                let order: Vec<usize> = steps.iter().flatten().copied().collect();
                for (p, &t) in order.iter().enumerate() {
                    pos[si * l + t] = p as u32;
                }
                let mut subs = Vec::new();
                for step in &steps {
                    let before = subs.len();
                    let mut missing = None;
                    let mut first = true;
                    for &t in step {
                        if f.mask[t] == 0.0 {
                            missing = Some(t);
                            break;
                        }
                        let flags = (first as u32) | if tied { 4 } else { 2 };
                        first = false;
                        subs.push(Sub {
                            decode: Some((t as u32, flags, f.tied_beta[t], step.len() as f32)),
                            fin: None,
                        });
                    }
                    let moff = members_all.len() as u32;
                    members_all.extend(step.iter().map(|&m| m as u32));
                    let last = *step.last().expect("steps are not empty");
                    let soff = (b * l) as u32;
                    let fin = match missing {
                        Some(t) => [2, last as u32, moff, step.len() as u32, 0, f.s[t] as u32, 0, soff],
                        None => {
                            let draw = &mut item.draws[c];
                            let (u, letter) = match draw {
                                Draw::Uniform(g) => (fbits(g.gen::<f32>()), 0),
                                Draw::Argmax => (0, 0),
                                Draw::Forced(s) => (0, s[step[0]] as u32),
                            };
                            [1, last as u32, moff, step.len() as u32, u, letter, draw.mode(), soff]
                        }
                    };
                    if subs.len() == before {
                        subs.push(Sub { decode: None, fin: None });
                    }
                    subs.last_mut().expect("pushed above").fin = Some(fin);
                }
                schedules.push(subs);
                orders.push(order);
            }
        }
        let u_max = schedules.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut plan = Plan::new();
        let (e, _) = self.record_encoder(&mut plan, model, &batch);
        let k = e.k;
        let sc = self.scratch(&mut plan, k, n_seq);
        let ds = self.decoder_states(&mut plan, n_seq * l);
        for (&s, &nbr) in ds.states.iter().zip(&ds.nbrs) {
            plan.fill(n_seq * l * h, s, 0.0);
            plan.fill(n_seq * l * h, nbr, 0.0);
        }
        let pos = plan.upload_int(pos);
        let seq = plan.alloc_int(n_seq * l);
        plan.fill_int(n_seq * l, seq, UNSET);
        let acc = plan.alloc(n_seq * VOCAB);
        let probs = plan.alloc(n_seq * l * VOCAB);
        plan.fill(n_seq * l * VOCAB, probs, 0.0);
        let lps = plan.alloc(n_seq * l * VOCAB);
        plan.fill(n_seq * l * VOCAB, lps, 0.0);
        let members = plan.upload_int(members_all);
        let o = options;
        // Per-residue arrays of every structure, each padded to L.
        let padded = |width: usize, get: &dyn Fn(&SampleItem) -> Vec<f32>| -> Vec<f32> {
            let mut v = vec![0f32; nb * l * width];
            for (b, it) in items.iter().enumerate() {
                let x = get(it);
                v[b * l * width..b * l * width + x.len()].copy_from_slice(&x);
            }
            v
        };
        let omit_aas = plan.upload(o.omit_aas.to_vec());
        let bias_aa = plan.upload(o.bias_aa.to_vec());
        let bbr = plan.upload(padded(VOCAB, &|it| it.f.bias_by_res.clone()));
        let coef = plan.upload(padded(1, &|it| it.f.pssm_coef.clone()));
        let pbias = plan.upload(padded(VOCAB, &|it| it.f.pssm_bias.clone()));
        let lom = plan.upload(padded(VOCAB, &|it| it.log_odds_mask.to_vec()));
        let omit_mask = plan.upload(padded(VOCAB, &|it| it.f.omit_aa_mask.clone()));
        let design_off = plan.upload(padded(1, &|it| it.f.design_mask()));
        let mut native_all = vec![0u32; nb * l];
        for (b, it) in items.iter().enumerate() {
            for (t, &a) in it.f.s.iter().enumerate() {
                native_all[b * l + t] = a as u32;
            }
        }
        let native = plan.upload_int(native_all);
        let pssm_flags = (o.pssm_bias_flag as u32) | ((o.pssm_log_odds_flag as u32) << 1);
        let raw = plan.alloc(n_seq * VOCAB);
        for u in 0..u_max {
            let mut rows = Vec::new();
            let mut meta = Vec::new();
            let mut recs = vec![0u32; n_seq * 8];
            let mut any_fin = false;
            for (si, subs) in schedules.iter().enumerate() {
                let Some(sub) = subs.get(u) else { continue };
                if let Some((t, flags, beta, m)) = sub.decode {
                    rows.push((si * l) as u32 + t);
                    meta.extend([flags, fbits(beta), fbits(m)]);
                }
                if let Some(fin) = sub.fin {
                    recs[si * 8..si * 8 + 8].copy_from_slice(&fin);
                    recs[si * 8 + 2] += members;
                    any_fin = true;
                }
            }
            let n = rows.len();
            if n > 0 {
                let rows_off = plan.upload_int(rows);
                let meta_off = plan.upload_int(meta);
                self.record_decoder_stack(&mut plan, &e, &sc, &ds, pos, seq, |_, _| (rows_off, n));
                plan.gemm(n, VOCAB, h, sc.x, self.w_out.w, self.w_out.b, raw, false);
                plan.run1(
                    Kernel::SampAccum,
                    n,
                    &[n as u32, rows_off, meta_off, raw, acc, lps, l as u32, fbits(o.temperature)],
                );
            }
            if any_fin {
                let rec = plan.upload_int(recs);
                plan.run1(
                    Kernel::SampFinal,
                    n_seq,
                    &[
                        n_seq as u32,
                        l as u32,
                        rec,
                        acc,
                        seq,
                        probs,
                        0,
                        fbits(o.temperature),
                        omit_aas,
                        bias_aa,
                        bbr,
                        pssm_flags,
                        fbits(o.pssm_multi),
                        coef,
                        pbias,
                        lom,
                        omit_mask,
                        design_off,
                        native,
                        tied as u32,
                    ],
                );
            }
        }
        let s_slot = plan.read_int(seq, n_seq * l);
        let p_slot = plan.read(probs, n_seq * l * VOCAB);
        let lp_slot = plan.read(lps, n_seq * l * VOCAB);
        let res = self.run(&plan)?;
        let (s_all, p_all, lp_all) = (res.ints(s_slot), res.floats(p_slot), res.floats(lp_slot));
        let mut out: Vec<Vec<Sample>> = (0..nb).map(|_| Vec::with_capacity(n_per)).collect();
        for (si, order) in orders.into_iter().enumerate() {
            let b = si % nb;
            let f = items[b].f;
            let len = f.len();
            let rows = si * l..si * l + len;
            let s: Vec<u8> = s_all[rows.clone()].iter().map(|&v| v.min(UNSET) as u8).collect();
            let probs = p_all[rows.start * VOCAB..rows.end * VOCAB].to_vec();
            let log_probs = (!tied).then(|| {
                let mut lp = lp_all[rows.start * VOCAB..rows.end * VOCAB].to_vec();
                for t in (0..len).filter(|&t| f.mask[t] == 0.0) {
                    lp[t * VOCAB..(t + 1) * VOCAB].copy_from_slice(&self.missing_row);
                }
                lp
            });
            out[b].push(Sample { s, probs, decoding_order: order, log_probs });
        }
        Ok(out)
    }
}
