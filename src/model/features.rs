//! `ProteinFeatures` and `CA_ProteinFeatures`: edge features of the k-NN graph.
//!
//! Full backbone: 16 positional features + 25 atom pairs × 16 RBFs = 416 inputs per edge
//! (virtual Cβ from N, Cα, C). CA-only: 16 + 9 × 16 RBFs over (previous, own, next) Cα
//! + 7 orientation features = 167. Then `edge_embedding` (no bias) and `norm_edges`.

use rayon::prelude::*;

use super::graph::{dist_eps, Graph};
use super::torch_order;
use super::{ProteinMpnn, MAX_RELATIVE, NUM_POSITIONAL, NUM_RBF};
use crate::featurize::Batch;

/// Nodes per parallel work item.
const CHUNK: usize = 16;

/// The 16 RBF centres, `torch.linspace(2, 22, 16)` in float32.
pub fn rbf_centres() -> [f32; NUM_RBF] {
    let (start, end, steps) = (2.0f32, 22.0f32, NUM_RBF);
    let step = (end - start) / (steps as f32 - 1.0);
    let mut mu = [0f32; NUM_RBF];
    for (i, m) in mu.iter_mut().enumerate() {
        *m = if i < steps / 2 { start + step * i as f32 } else { end - step * (steps - i - 1) as f32 };
    }
    mu
}

/// The 16 Gaussian RBFs of distance `d` around `mu` (σ = 1.25), the official `_rbf`, into `out`
/// (float32 `z = (d - μ)/σ` as the official code computes it, then [`exp_f32`] of `-z²`).
#[inline]
pub fn push_rbf(out: &mut [f32], d: f32, mu: &[f32; NUM_RBF]) {
    rbf_fill_body(&mut out[..NUM_RBF], &[d], mu, false);
}

/// `e^x` of a float32, computed in float64 and rounded once to float32: the correctly rounded
/// result except where `e^x` lies within ~1e-12 (relative) of a rounding midpoint, so within
/// 1 ulp of any good libm `expf` and nearly always equal to it (tested). Unlike a libm call it
/// vectorizes (16 RBFs per distance: 9 % of a 960-residue run was glibc's `expf`), and being
/// plain float64 arithmetic in a fixed order it gives the same bits on every CPU path and every
/// operating system (libm `expf` differs between C libraries).
///
/// `x = n·ln 2 + r` (`n` rounded to nearest with the 1.5·2⁵² trick, Cody-Waite split of ln 2,
/// `|r| ≤ ln2/2`), a degree-10 Taylor polynomial for `e^r` (truncation < 3e-13), times `2ⁿ` built
/// in the exponent bits. `x` is clamped to `[-110, 89]` first: beyond it float32 gives 0 or ∞
/// anyway; NaN stays NaN.
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub fn exp_f32(x: f32) -> f32 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01; // 32 trailing zero bits: n * LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    let x = (x as f64).clamp(-110.0, 89.0);
    let t = x * std::f64::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    // The integer n sits in the low bits of t's mantissa.
    let ni = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let scale = f64::from_bits((ni.wrapping_add(1023) << 52) as u64);
    (p * scale) as f32
}

/// The RBFs of several distances (`out` holds 16 per distance), vectorized: with [`exp_f32`]
/// (float32 models) or, when `fast`, the cheaper [`exp_fast`] (within a few ulp; the int8
/// models' featurization, whose products carry far larger errors). Compiled for AVX-512 / AVX2
/// where the kernels run those paths: the same float operations in the same order (no
/// contraction into FMAs), so the same bits on every path.
pub fn rbf_fill(out: &mut [f32], ds: &[f32], mu: &[f32; NUM_RBF], fast: bool) {
    #[cfg(target_arch = "x86_64")]
    match crate::kernels::isa::active() {
        // SAFETY: each path runs only where the CPU has its features (checked by `isa`).
        crate::kernels::isa::Isa::Avx512 => return unsafe { rbf_fill_avx512(out, ds, mu, fast) },
        crate::kernels::isa::Isa::Avx2 => return unsafe { rbf_fill_avx2(out, ds, mu, fast) },
        crate::kernels::isa::Isa::Portable => {}
    }
    rbf_fill_body(out, ds, mu, fast);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rbf_fill_avx512(out: &mut [f32], ds: &[f32], mu: &[f32; NUM_RBF], fast: bool) {
    rbf_fill_body(out, ds, mu, fast);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rbf_fill_avx2(out: &mut [f32], ds: &[f32], mu: &[f32; NUM_RBF], fast: bool) {
    rbf_fill_body(out, ds, mu, fast);
}

#[inline(always)]
fn rbf_fill_body(out: &mut [f32], ds: &[f32], mu: &[f32; NUM_RBF], fast: bool) {
    const SIGMA: f32 = (22.0 - 2.0) / NUM_RBF as f32;
    for (o, &d) in out.chunks_exact_mut(NUM_RBF).zip(ds) {
        for (v, m) in o.iter_mut().zip(mu) {
            let z = (d - m) / SIGMA;
            *v = if fast { exp_fast(-(z * z)) } else { exp_f32(-(z * z)) };
        }
    }
}

/// `exp(x)` for `x ≤ 0` in plain float32 arithmetic that LLVM vectorizes: `x = n·ln2 + r`
/// (Cody-Waite, `|r| ≤ ln2/2`), a degree-6 Taylor polynomial for `e^r`, times `2ⁿ` built in
/// the exponent bits; 0 below −87 (where `e^x` is below float32's normal range anyway).
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub fn exp_fast(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_145_751_953_125;
    const LN2_LO: f32 = 1.428_606_765_330_187_045e-6;
    let xc = x.clamp(-87.0, 0.0);
    let n = (xc * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // SAFETY: n is an integer in [-126, 0].
    let e = unsafe { n.to_int_unchecked::<i32>() };
    let scale = f32::from_bits(((e + 127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else {
        p * scale
    }
}

/// Backbone atoms per residue used for the 25 RBF pairs: N, Cα, C, O, Cβ (the virtual Cβ with
/// the official constants, written as the official code writes them).
#[allow(clippy::excessive_precision)]
pub fn backbone_atoms(x: &[f32], rows: usize) -> Vec<[[f32; 3]; 5]> {
    (0..rows)
        .map(|r| {
            let p = |a: usize| [x[(r * 4 + a) * 3], x[(r * 4 + a) * 3 + 1], x[(r * 4 + a) * 3 + 2]];
            let (n, ca, c, o) = (p(0), p(1), p(2), p(3));
            let b = [ca[0] - n[0], ca[1] - n[1], ca[2] - n[2]];
            let cc = [c[0] - ca[0], c[1] - ca[1], c[2] - ca[2]];
            let a = [b[1] * cc[2] - b[2] * cc[1], b[2] * cc[0] - b[0] * cc[2], b[0] * cc[1] - b[1] * cc[0]];
            let mut cb = [0f32; 3];
            for d in 0..3 {
                cb[d] = -0.58273431 * a[d] + 0.56802827 * b[d] - 0.54067466 * cc[d] + ca[d];
            }
            [n, ca, c, o, cb]
        })
        .collect()
}

// Atom indices into `backbone_atoms`.
const N: usize = 0;
const CA: usize = 1;
const C: usize = 2;
const O: usize = 3;
const CB: usize = 4;

/// The official order of the 24 atom pairs after Cα–Cα: `(atom of i, atom of j)`.
const PAIRS: [(usize, usize); 24] = [
    (N, N),
    (C, C),
    (O, O),
    (CB, CB),
    (CA, N),
    (CA, C),
    (CA, O),
    (CA, CB),
    (N, C),
    (N, O),
    (N, CB),
    (CB, C),
    (CB, O),
    (O, C),
    (N, CA),
    (C, CA),
    (O, CA),
    (CB, CA),
    (C, N),
    (O, N),
    (CB, N),
    (C, CB),
    (O, CB),
    (C, O),
];

/// Positional-encoding class of an edge: `clip(offset + 32, 0, 64)` within a chain, 65 across.
#[inline]
pub fn positional_class(res_i: i64, res_j: i64, chain_i: i64, chain_j: i64) -> usize {
    if chain_i == chain_j {
        (res_i - res_j + MAX_RELATIVE).clamp(0, 2 * MAX_RELATIVE) as usize
    } else {
        2 * MAX_RELATIVE as usize + 1
    }
}

/// Cα coordinates `[B·L, 3]` of a batch.
pub fn ca_coords(batch: &Batch) -> Vec<f32> {
    if batch.ca_only {
        batch.x.clone()
    } else {
        batch.x.chunks_exact(12).flat_map(|r| [r[3], r[4], r[5]]).collect()
    }
}

/// Per-node local frames of the CA-only model (`_orientations_coarse`), `[B·L, 9]`, each item
/// over its own real length (`lengths[b]`), so that padding an item does not change its frames
/// (the official code, run on one structure at a time, never pads). Every operation follows
/// torch's float32 order ([`torch_order`]): the frames feed ill-conditioned quaternions.
pub fn coarse_frames(ca: &[f32], l: usize, lengths: &[usize]) -> Vec<[f32; 9]> {
    let b = lengths.len();
    let mut frames = vec![[0f32; 9]; b * l];
    for (bi, &n) in lengths.iter().enumerate() {
        if n < 4 {
            continue;
        }
        let p = |i: usize| [ca[(bi * l + i) * 3], ca[(bi * l + i) * 3 + 1], ca[(bi * l + i) * 3 + 2]];
        // U[i] = normalize(X[i+1] - X[i], masked to in-range steps), i in 0..n-1
        let u: Vec<[f32; 3]> = (0..n - 1)
            .map(|i| {
                let (a, c) = (p(i), p(i + 1));
                let d = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
                let len = torch_order::norm3(d);
                let keep = if 3.6 < len && len < 4.0 { 1.0 } else { 0.0 };
                torch_order::normalize3([d[0] * keep, d[1] * keep, d[2] * keep])
            })
            .collect();
        // frame of node i+1 from u_2 = U[i], u_1 = U[i+1]
        let m = n - 3;
        let u2 = &u[..m];
        let u1 = &u[1..m + 1];
        let o1: Vec<[f32; 3]> =
            u2.iter().zip(u1).map(|(a, c)| torch_order::normalize3([a[0] - c[0], a[1] - c[1], a[2] - c[2]])).collect();
        let (n2, third): (Vec<[f32; 3]>, Vec<[f32; 3]>) = if m == 3 {
            // Official quirk, kept for the official numbers: `torch.cross` without `dim` takes the
            // first axis of size 3. On `[1, L-3, 3]` that is the residue axis when L = 6.
            let rows = |v: &[[f32; 3]]| [v[0], v[1], v[2]];
            let n2 = torch_order::cross_residue_axis(&rows(u2), &rows(u1)).map(torch_order::normalize3);
            let third = torch_order::cross_residue_axis(&rows(&o1), &n2);
            (n2.to_vec(), third.to_vec())
        } else {
            let n2: Vec<[f32; 3]> =
                u2.iter().zip(u1).map(|(&a, &c)| torch_order::normalize3(torch_order::cross(a, c))).collect();
            let third = o1.iter().zip(&n2).map(|(&a, &c)| torch_order::cross(a, c)).collect();
            (n2, third)
        };
        for i in 0..m {
            let (o, nn, t) = (o1[i], n2[i], third[i]);
            frames[bi * l + i + 1] = [o[0], o[1], o[2], nn[0], nn[1], nn[2], t[0], t[1], t[2]];
        }
    }
    frames
}

/// The 7 orientation features of edge i → j of the CA-only model: the direction to j in i's
/// frame, and the quaternion of j's frame relative to i's.
pub fn orientation(oi: &[f32; 9], oj: &[f32; 9], xi: [f32; 3], xj: [f32; 3]) -> ([f32; 3], [f32; 4]) {
    let dx = [xj[0] - xi[0], xj[1] - xi[1], xj[2] - xi[2]];
    let du = torch_order::normalize3(torch_order::matvec3(oi, dx));
    (du, torch_order::quaternion(&torch_order::relative_rotation(oi, oj)))
}

impl ProteinMpnn {
    /// Number of raw edge inputs before `edge_embedding`.
    pub fn edge_inputs(&self) -> usize {
        self.edge_embedding.n_in
    }

    /// Raw (pre-embedding) features of the edges of nodes `rows` (global rows of the batch),
    /// written to `out` (`[rows.len()·K, edge_inputs]`).
    fn raw_edge_features(
        &self,
        batch: &Batch,
        graph: &Graph,
        atoms: &NodeAtoms,
        rows: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let mu = rbf_centres();
        let n_in = self.edge_inputs();
        let k = graph.k;
        let pos_w = &self.pos_embedding;
        // The distances of an edge are collected, then their RBFs computed in one vectorized call
        // (int8 models: with the cheaper exp).
        let fast = self.precision == crate::kernels::precision::Precision::Int8;
        let mut ds = [0f32; 1 + PAIRS.len()];
        let mut nd;
        for (ri, row) in rows.enumerate() {
            let base = (row / graph.l) * graph.l;
            for n in 0..k {
                let j = base + graph.e_idx[row * k + n] as usize;
                let f = &mut out[(ri * k + n) * n_in..][..n_in];
                let class = positional_class(
                    batch.residue_idx[row],
                    batch.residue_idx[j],
                    batch.chain_encoding[row],
                    batch.chain_encoding[j],
                );
                for p in 0..NUM_POSITIONAL {
                    f[p] = pos_w.weight[p * pos_w.n_in + class] + pos_w.bias.as_ref().map_or(0.0, |b| b[p]);
                }
                ds[0] = graph.d_neighbors[row * k + n];
                nd = 1;
                match atoms {
                    NodeAtoms::Backbone(bb) => {
                        for &(a, b) in PAIRS.iter() {
                            ds[nd] = dist_eps(&bb[j][b], &bb[row][a]);
                            nd += 1;
                        }
                    }
                    NodeAtoms::Coarse { prev_own_next, frames } => {
                        // (Ca_0,Ca_0) (Ca_2,Ca_2) (Ca_0,Ca_1) (Ca_0,Ca_2) (Ca_1,Ca_0) (Ca_1,Ca_2) (Ca_2,Ca_0) (Ca_2,Ca_1)
                        const CA_PAIRS: [(usize, usize); 8] =
                            [(0, 0), (2, 2), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)];
                        for &(a, b) in CA_PAIRS.iter() {
                            ds[nd] = dist_eps(&prev_own_next[j][b], &prev_own_next[row][a]);
                            nd += 1;
                        }
                        let off = NUM_POSITIONAL + nd * NUM_RBF;
                        let (du, q) = orientation(&frames[row], &frames[j], prev_own_next[row][1], prev_own_next[j][1]);
                        f[off..off + 3].copy_from_slice(&du);
                        f[off + 3..off + 7].copy_from_slice(&q);
                    }
                }
                rbf_fill(&mut f[NUM_POSITIONAL..NUM_POSITIONAL + nd * NUM_RBF], &ds[..nd], &mu, fast);
            }
        }
    }

    /// The graph and the per-node atoms the edge features are computed from.
    fn graph_and_atoms(&self, batch: &Batch) -> (Graph, NodeAtoms) {
        let ca = ca_coords(batch);
        let graph = Graph::build(&ca, &batch.mask, batch.l, &batch.lengths, self.arch.k);
        let rows = batch.b * batch.l;
        let atoms = if batch.ca_only {
            let l = batch.l;
            let prev_own_next = (0..rows)
                .map(|r| {
                    let (bi, i) = (r / l, r % l);
                    let p = |i: usize| [ca[(bi * l + i) * 3], ca[(bi * l + i) * 3 + 1], ca[(bi * l + i) * 3 + 2]];
                    let prev = if i > 0 { p(i - 1) } else { [0.0; 3] };
                    let next = if i + 1 < batch.lengths[bi] { p(i + 1) } else { [0.0; 3] };
                    [prev, p(i), next]
                })
                .collect();
            NodeAtoms::Coarse { prev_own_next, frames: coarse_frames(&ca, batch.l, &batch.lengths) }
        } else {
            NodeAtoms::Backbone(backbone_atoms(&batch.x, rows))
        };
        (graph, atoms)
    }

    /// Edge features `E` `[B·L·K, H]` (after `edge_embedding` and `norm_edges`) and the graph.
    pub fn edge_features(&self, batch: &Batch) -> (Graph, Vec<f32>) {
        let _span = tracing::debug_span!("features", b = batch.b, l = batch.l).entered();
        let (graph, atoms) = self.graph_and_atoms(batch);
        let rows = batch.b * batch.l;
        let h = self.hidden();
        let k = graph.k;
        let n_in = self.edge_inputs();
        let mut e = vec![0f32; rows * k * h];
        e.par_chunks_mut(CHUNK * k * h).enumerate().for_each_init(
            || vec![0f32; CHUNK * k * n_in],
            |raw, (c, out)| {
                let start = c * CHUNK;
                let n = out.len() / (k * h);
                self.raw_edge_features(batch, &graph, &atoms, start..start + n, raw);
                self.edge_embedding.forward_edges(raw, n * k, k, out);
                self.norm_edges.forward_inplace(out);
            },
        );
        (graph, e)
    }

    /// The graph and the raw edge inputs `[B·L·K, edge_inputs]` before `edge_embedding` (for a
    /// backend that runs the embedding itself).
    pub fn raw_edge_inputs(&self, batch: &Batch) -> (Graph, Vec<f32>) {
        let (graph, atoms) = self.graph_and_atoms(batch);
        let rows = batch.b * batch.l;
        let k = graph.k;
        let n_in = self.edge_inputs();
        let mut raw = vec![0f32; rows * k * n_in];
        if k > 0 {
            raw.par_chunks_mut(CHUNK * k * n_in).enumerate().for_each(|(c, out)| {
                let start = c * CHUNK;
                let n = out.len() / (k * n_in);
                self.raw_edge_features(batch, &graph, &atoms, start..start + n, out);
            });
        }
        (graph, raw)
    }
}

enum NodeAtoms {
    Backbone(Vec<[[f32; 3]; 5]>),
    Coarse { prev_own_next: Vec<[[f32; 3]; 3]>, frames: Vec<[f32; 9]> },
}

#[cfg(test)]
mod tests {
    /// [`super::exp_f32`] against the correctly rounded value (float64 `exp` rounded to float32)
    /// and glibc-style `f32::exp`: never more than 1 ulp away, almost always equal; the edges
    /// (1, subnormal results, underflow to 0, overflow to ∞, NaN) exact.
    #[test]
    fn exp_f32_is_correctly_rounded_nearly_always() {
        let ulps = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let (mut n, mut off_exact, mut off_libm) = (0usize, 0usize, 0usize);
        let mut x = -110.0f32;
        while x <= 89.0 {
            let ours = super::exp_f32(x);
            let exact = (x as f64).exp() as f32;
            assert!(ulps(ours, exact) <= 1, "x = {x:e}: {ours:e} vs {exact:e}");
            assert!(ulps(ours, x.exp()) <= 1, "x = {x:e}: {ours:e} vs libm {:e}", x.exp());
            off_exact += (ours != exact) as usize;
            off_libm += (ours != x.exp()) as usize;
            n += 1;
            x = f32::from_bits(if x < 0.0 { x.to_bits() - 997 } else { x.to_bits() + 997 }).max(x + 1e-30);
            if x < 0.0 && x > -1e-30 {
                x = 0.0;
            }
        }
        eprintln!("exp_f32: {n} points, {off_exact} not correctly rounded, {off_libm} differ from libm");
        assert!(n > 1_000_000, "{n} points");
        assert!(off_exact * 100_000 < n, "{off_exact} of {n} not correctly rounded");
        assert!(off_libm * 1_000 < n, "{off_libm} of {n} differ from libm");
        assert_eq!(super::exp_f32(0.0), 1.0);
        assert_eq!(super::exp_f32(-0.0), 1.0);
        assert_eq!(super::exp_f32(-100.0), (-100f64).exp() as f32, "subnormal result");
        assert!(super::exp_f32(-100.0) > 0.0 && super::exp_f32(-100.0) < f32::MIN_POSITIVE);
        assert_eq!(super::exp_f32(-200.0), 0.0);
        assert_eq!(super::exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(super::exp_f32(100.0), f32::INFINITY);
        assert!(super::exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn exp_fast_is_close_to_libm() {
        let mut worst = 0f32;
        // Down to −86.5 (exp_fast gives 0 below −87, where e^x leaves float32's normal range).
        for i in 0..=173_000 {
            let x = -(i as f32) * 5e-4;
            let (a, b) = (super::exp_fast(x), x.exp());
            worst = worst.max((a - b).abs() / b.max(f32::MIN_POSITIVE));
        }
        assert!(worst < 4e-7, "exp_fast relative error {worst}");
        assert_eq!(super::exp_fast(0.0), 1.0);
        assert_eq!(super::exp_fast(-100.0), 0.0);
        assert!(super::exp_fast(-87.5) < 1e-37);
    }
}
