//! W8A8: int8 weights (per output channel, symmetric) × uint8 activations (per row, asymmetric
//! with a zero point), exact int32 sums — the algorithm `--precision int8` runs on CPUs with
//! VNNI (AVX-512 VNNI, or AVX-VNNI on AVX2 CPUs), whose `vpdpbusd` multiplies 4 u8 × s8 pairs
//! per 32-bit lane and accumulates them in one instruction (4× the products per instruction of
//! a float32 FMA).
//!
//! For an output `o` and an input row `x`:
//!
//! ```text
//! s_w[o] = clip[o] / 127             q_w[o,k] = round(W[o,k] / s_w[o])  ∈ [-127, 127]   (at load)
//! lo = min(0, min x), hi = max(0, max x)
//! s_x = (hi − lo) / 255, z = round(−lo / s_x)      q_x[k] = clamp(round(x[k] / s_x) + z, 0, 255)
//! y[o] = init[o] + (Σ_k q_x[k]·q_w[o,k] − z·Σ_k q_w[o,k]) · (s_x · s_w[o])
//! ```
//!
//! `vpdpbusd` takes its unsigned operand from a register and its signed one from a register or
//! a memory broadcast, so the kernel keeps the weights as the unsigned operand, offset by 128
//! (`q_w + 128 ∈ [1, 255]`), and streams the activation codes as signed bytes (`c − 128`), each
//! row's 4 codes per `k` quad broadcast straight from memory into the instruction. The offsets
//! are undone exactly in integers: with `x_s = c − 128`,
//! `Σ q_w·(c − z) = Σ (q_w + 128)·x_s − 128·Σ x_s + (128 − z)·Σ q_w`, per row one sum of the
//! codes (from the quantizer) and per channel one sum of the weights (at load).
//!
//! The zero point spends all 256 levels on the row's actual range (post-GELU inputs are
//! ≥ −0.17, so a symmetric code would waste almost half of them). `Σ_k q_w[o,k]` is precomputed
//! per channel; the correction is exact integer arithmetic, as is the sum (|Σ| ≤ 255·127·n_in,
//! far from 2³¹ for any layer here). Rounding is to nearest even by the `1.5·2²³` trick in plain
//! float32 arithmetic, so the row quantizer ([`quantize_row`]) is one piece of code that gives
//! the same bytes however LLVM vectorizes it; the final rescale `fma(float(Σ − z·Σw), s_x·s_w,
//! start)` is the same float32 expression in [`gemm_portable`] (plain Rust, the twin used
//! wherever VNNI is absent or the portable path is forced), in the AVX-512 VNNI kernel
//! ([`super::avx512::gemm_w8a8`]) and in the AVX2 path's ymm kernels
//! ([`super::avx_vnni`]), so all of them give the same bits (tested).
//!
//! Weights are packed (as `q_w + 128`) in panels of 16 output columns holding quads of `k`:
//! `packed[panel][k / 4][column][k % 4]` — one 64-byte zmm per panel and quad of `k`.

use super::super::gemm::{Init, NR};
use super::{quantize, start, weight_scale, QMAX};

/// Products per 32-bit lane of `vpdpbusd`.
pub const KQ: usize = 4;

/// Rows per register block of the portable kernel.
const MR: usize = 4;

/// A layer's weights in W8A8 form.
#[derive(Debug, Clone)]
pub struct Weights {
    /// `[panels][k_quads][NR][4]`, `q_w + 128` as uint8; padding (columns past `n_out`, `k`
    /// past `n_in`) is 128 (a zero weight).
    pub packed: Vec<u8>,
    /// Per-output-channel scales `s_w`.
    pub scales: Vec<f32>,
    /// Per-output-channel `Σ_k q_w[o,k]` (the zero-point correction).
    pub col_sums: Vec<i32>,
    pub n_in: usize,
    pub n_out: usize,
}

impl Weights {
    /// Quantizes `weight` (`[n_out, n_in]`, row-major) per output channel (the clipped
    /// MSE-optimal scale of [`super::QuantWeights`]).
    pub fn new(weight: &[f32], n_out: usize, n_in: usize) -> Weights {
        Weights::with_scales(weight, n_out, n_in, weight_scale)
    }

    /// The rounding residual `W − s_w·q_w` of these weights (quantized from `weight`), itself
    /// quantized per output channel with plain max-abs scales: what the per-node mean
    /// correction ([`gemm_node_corrected`]) multiplies. A residual is spread evenly over
    /// `±s_w/2` with no outliers, so the clipped-MSE search of [`Weights::new`] buys nothing
    /// there, and max-abs costs one pass instead of 41 when a model is loaded.
    pub fn correction(&self, weight: &[f32]) -> Weights {
        let residual = self.residual(weight);
        Weights::with_scales(&residual, self.n_out, self.n_in, |row| super::scale_of(row, QMAX))
    }

    fn with_scales(weight: &[f32], n_out: usize, n_in: usize, scale_of: impl Fn(&[f32]) -> (f32, f32)) -> Weights {
        assert_eq!(weight.len(), n_out * n_in);
        assert!(n_in <= 1 << 14, "W8A8 layers take at most 16384 inputs (int32 sums)");
        let kq = n_in.div_ceil(KQ);
        let panels = n_out.div_ceil(NR);
        let mut packed = vec![128u8; panels * kq * NR * KQ];
        let mut scales = vec![0f32; n_out];
        let mut col_sums = vec![0i32; n_out];
        for o in 0..n_out {
            let row = &weight[o * n_in..(o + 1) * n_in];
            let (scale, inv) = scale_of(row);
            scales[o] = scale;
            let (p, c) = (o / NR, o % NR);
            for (k, &w) in row.iter().enumerate() {
                let q = quantize(w, inv, QMAX) as i32;
                packed[((p * kq + k / KQ) * NR + c) * KQ + k % KQ] = (q + 128) as u8;
                col_sums[o] += q;
            }
        }
        Weights { packed, scales, col_sums, n_in, n_out }
    }

    /// `W − s_w·q_w` for the float32 weights `weight` these were quantized from.
    pub fn residual(&self, weight: &[f32]) -> Vec<f32> {
        let (n_in, kq) = (self.n_in, self.k_quads());
        let mut r = weight.to_vec();
        for o in 0..self.n_out {
            let (p, c) = (o / NR, o % NR);
            for k in 0..n_in {
                let q = self.packed[((p * kq + k / KQ) * NR + c) * KQ + k % KQ] as i32 - 128;
                r[o * n_in + k] -= q as f32 * self.scales[o];
            }
        }
        r
    }

    /// Number of quads of `k`.
    pub fn k_quads(&self) -> usize {
        self.n_in.div_ceil(KQ)
    }
}

/// Width of a quantized row of `n_in` values (padded to a multiple of 4).
pub fn row_width(n_in: usize) -> usize {
    n_in.div_ceil(KQ) * KQ
}

/// Quantized rows: the codes as signed bytes `x_s = c − 128` (`[rows, row_width]`, padding 0),
/// and per row the scale, the zero point and `Σ x_s`.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub q: Vec<i8>,
    pub scale: Vec<f32>,
    pub zero: Vec<i32>,
    pub sum: Vec<i32>,
    pub width: usize,
}

/// A borrowed run of quantized rows (what the kernels read).
#[derive(Debug, Clone, Copy)]
pub struct RowsRef<'a> {
    pub q: &'a [i8],
    pub scale: &'a [f32],
    pub zero: &'a [i32],
    pub sum: &'a [i32],
    pub width: usize,
}

impl Rows {
    /// Room for `rows` rows of `n_in` values (their contents are left to [`Rows::quantize_at`]).
    pub fn reset(&mut self, rows: usize, n_in: usize) {
        self.width = row_width(n_in);
        self.q.resize(rows * self.width, 0);
        self.scale.resize(rows, 0.0);
        self.zero.resize(rows, 0);
        self.sum.resize(rows, 0);
    }

    /// All rows.
    pub fn view(&self) -> RowsRef<'_> {
        RowsRef { q: &self.q, scale: &self.scale, zero: &self.zero, sum: &self.sum, width: self.width }
    }

    /// Rows `start..start + n`.
    pub fn rows(&self, start: usize, n: usize) -> RowsRef<'_> {
        self.view().rows(start, n)
    }

    /// Copies row `from` of `src` (of the same width) to row `r`.
    #[inline]
    pub fn copy_row(&mut self, r: usize, src: RowsRef, from: usize) {
        let w = self.width;
        self.q[r * w..(r + 1) * w].copy_from_slice(&src.q[from * w..(from + 1) * w]);
        self.scale[r] = src.scale[from];
        self.zero[r] = src.zero[from];
        self.sum[r] = src.sum[from];
    }

    /// The rows (as sized by [`Rows::reset`]) split into runs of `chunk` rows (the last may be
    /// shorter), for writers that quantize disjoint runs in parallel.
    pub fn chunks_mut(&mut self, chunk: usize) -> Vec<RowsMut<'_>> {
        let (w, chunk) = (self.width, chunk.max(1));
        self.q
            .chunks_mut(chunk * w)
            .zip(self.scale.chunks_mut(chunk))
            .zip(self.zero.chunks_mut(chunk))
            .zip(self.sum.chunks_mut(chunk))
            .map(|(((q, scale), zero), sum)| RowsMut { q, scale, zero, sum, width: w })
            .collect()
    }

    /// Rows `start..start + n` to write (as sized by [`Rows::reset`]).
    pub fn rows_mut(&mut self, start: usize, n: usize) -> RowsMut<'_> {
        let w = self.width;
        RowsMut {
            q: &mut self.q[start * w..(start + n) * w],
            scale: &mut self.scale[start..start + n],
            zero: &mut self.zero[start..start + n],
            sum: &mut self.sum[start..start + n],
            width: w,
        }
    }

    /// Quantizes `rows` rows of `x` (`[rows, n_in]`).
    pub fn quantize(&mut self, x: &[f32], rows: usize, n_in: usize) {
        self.reset(rows, n_in);
        self.quantize_at(0, &x[..rows * n_in], n_in);
    }

    /// Quantizes rows `start..` (as many as `x` holds, `n_in` values each) in place.
    pub fn quantize_at(&mut self, start: usize, x: &[f32], n_in: usize) {
        let rows = x.len() / n_in.max(1);
        let out = self.rows_mut(start, rows);
        quantize_rows_into(x, n_in, out);
    }
}

/// Where [`quantize_rows_into`] writes: the codes (`[rows, width]`) and the per-row values of
/// [`Rows`].
pub struct RowsMut<'a> {
    pub q: &'a mut [i8],
    pub scale: &'a mut [f32],
    pub zero: &'a mut [i32],
    pub sum: &'a mut [i32],
    pub width: usize,
}

/// Quantizes the rows of `x` (`n_in` values each, as many as `out` has scales) into `out`, each
/// as [`quantize_row`] does (padding codes set to 0); on AVX-512 several rows at a time (their
/// reductions and divisions overlap), on AVX2 row by row on ymm
/// ([`super::avx2::quantize_rows8`]): the same bytes.
pub fn quantize_rows_into(x: &[f32], n_in: usize, out: RowsMut) {
    let rows = out.scale.len();
    let w = out.width;
    assert!(x.len() >= rows * n_in && out.q.len() >= rows * w && w >= n_in);
    assert!(out.zero.len() == rows && out.sum.len() == rows);
    #[cfg(target_arch = "x86_64")]
    {
        use super::super::isa::{self, Isa};
        match isa::active() {
            // SAFETY: the CPU has AVX-512F/BW (checked by `vnni`); the sizes are asserted above.
            Isa::Avx512 if vnni() => return unsafe { super::avx512::quantize_rows8(x, n_in, out) },
            // SAFETY: the AVX2 path runs only where the CPU has AVX2 and FMA.
            Isa::Avx2 => return unsafe { super::avx2::quantize_rows8(x, n_in, out) },
            _ => {}
        }
    }
    for r in 0..rows {
        let q = &mut out.q[r * w..(r + 1) * w];
        q[n_in..].fill(0);
        (out.scale[r], out.zero[r], out.sum[r]) = quantize_row_portable(&x[r * n_in..(r + 1) * n_in], &mut q[..n_in]);
    }
}

impl<'a> RowsRef<'a> {
    /// Rows `start..start + n` of this run.
    pub fn rows(&self, start: usize, n: usize) -> RowsRef<'a> {
        let w = self.width;
        RowsRef {
            q: &self.q[start * w..(start + n) * w],
            scale: &self.scale[start..start + n],
            zero: &self.zero[start..start + n],
            sum: &self.sum[start..start + n],
            width: w,
        }
    }
}

/// `1.5·2²³`: adding and subtracting it rounds a float32 of magnitude < 2²² to the nearest
/// integer, ties to even (the default rounding of the addition), in plain arithmetic.
pub(super) const ROUND: f32 = 12_582_912.0;

/// Quantizes one row into `dst` (same length, codes as `c − 128`) and returns
/// `(s_x, z, Σ (c − 128))`; a zero or non-finite range (or a NaN anywhere) gives scale 0, zero
/// point 128 and all codes 128 (`x_s = 0`). Runs the AVX-512 form where the W8A8 VNNI kernel
/// runs; both give the same bytes (the same float32 operations per element, and min/max are
/// exact in any order).
#[inline]
pub fn quantize_row(x: &[f32], dst: &mut [i8]) -> (f32, i32, i32) {
    assert_eq!(x.len(), dst.len());
    #[cfg(target_arch = "x86_64")]
    if vnni() {
        // SAFETY: the CPU has AVX-512F/BW (checked by `vnni`); the lengths are equal.
        return unsafe { super::avx512::quantize_row(x, dst) };
    }
    quantize_row_portable(x, dst)
}

/// The plain twin of [`quantize_row`].
pub fn quantize_row_portable(x: &[f32], dst: &mut [i8]) -> (f32, i32, i32) {
    let (mut lo, mut hi, mut nan) = (0f32, 0f32, false);
    for &v in x {
        lo = lo.min(v);
        hi = hi.max(v);
        nan |= v.is_nan();
    }
    let Some((inv, zero)) = row_params(lo, hi, nan) else {
        dst.fill(0);
        return (0.0, 128, 0);
    };
    let mut sum = 0i32;
    for (d, &v) in dst.iter_mut().zip(x) {
        let c = code(v, inv, zero);
        *d = c as i8;
        sum += c;
    }
    ((hi - lo) / 255.0, zero as i32, sum)
}

/// `(255 / range, zero point)` of a row with extremes `lo ≤ 0 ≤ hi`, or `None` for a zero or
/// non-finite range.
#[inline(always)]
pub(super) fn row_params(lo: f32, hi: f32, nan: bool) -> Option<(f32, f32)> {
    let range = hi - lo;
    if nan || !(range > 0.0 && range.is_finite()) {
        return None;
    }
    let inv = 255.0 / range;
    Some((inv, (-lo * inv + ROUND) - ROUND))
}

/// One code, offset: `clamp(round(v·inv) + zero, 0, 255) − 128`.
#[inline(always)]
pub(super) fn code(v: f32, inv: f32, zero: f32) -> i32 {
    let q = ((v * inv + ROUND) - ROUND + zero).clamp(0.0, 255.0);
    // SAFETY: q is an integer in [0, 255].
    unsafe { q.to_int_unchecked::<i32>() - 128 }
}

/// `out[m, o] = init + (Σ_k (c[m,k] − z[m])·q_w[o,k]) · (s_x[m]·s_w[o])` for
/// `m < rows`, on the fastest kernel this CPU has for it (VNNI, else the portable twin).
pub fn gemm(x: RowsRef, rows: usize, w: &Weights, init: Init, out: &mut [f32]) {
    check(x, rows, w, init, out);
    #[cfg(target_arch = "x86_64")]
    {
        use super::super::isa::{self, Isa};
        // SAFETY (all three): the CPU has the kernel's features (checked), and `check` bounds
        // every access.
        match (isa::active(), ymm_vnni()) {
            (Isa::Avx512, _) if has_vnni() => return unsafe { super::avx512::gemm_w8a8(x, rows, w, init, out) },
            (Isa::Avx2, Some(YmmVnni::Vex)) => return unsafe { super::avx_vnni::gemm_w8a8_vex(x, rows, w, init, out) },
            (Isa::Avx2, Some(YmmVnni::Evex)) => {
                return unsafe { super::avx_vnni::gemm_w8a8_evex(x, rows, w, init, out) }
            }
            _ => {}
        }
    }
    gemm_portable(x, rows, w, init, out);
}

/// The encoding of the 256-bit VNNI instructions a CPU has (see [`super::avx_vnni`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YmmVnni {
    /// AVX-VNNI (`{vex} vpdpbusd`): Intel's Alder Lake and later client cores, Sierra Forest, Zen 5.
    Vex,
    /// AVX-512 VNNI with AVX-512VL (`{evex} vpdpbusd` on ymm), on CPUs without AVX-VNNI.
    Evex,
}

/// Which 256-bit VNNI encoding this CPU has for the AVX2 path's W8A8 kernel (with AVX2 and FMA),
/// VEX preferred; `None` where it has neither.
pub fn ymm_vnni() -> Option<YmmVnni> {
    use super::super::isa::cpu_has;
    static HAS: std::sync::OnceLock<Option<YmmVnni>> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let base = cpu_has("avx2") && cpu_has("fma");
        if base && cpu_has("avx_vnni") {
            Some(YmmVnni::Vex)
        } else if base && cpu_has("avx512f") && cpu_has("avx512vl") && cpu_has("avx512_vnni") {
            Some(YmmVnni::Evex)
        } else {
            None
        }
    })
}

/// Scratch of [`gemm_node_corrected`] (no allocation after warm-up).
#[derive(Debug, Default)]
pub struct Correction {
    means: Vec<f32>,
    q: Rows,
    starts: Vec<f32>,
}

/// A one-pass W8A8 layer over per-edge rows with the **per-node mean correction** of its
/// weights' rounding: rows come in groups of `group` (one node's edges, `k` neighbours), and
/// each group's outputs start from `bias + R·x̄`, where `x̄` is the mean of the group's
/// (dequantized) input rows and `R = W − s_w·q_w` the weights' rounding residual (`bc`, itself
/// quantized per output channel: [`Weights::correction`]).
///
/// Why: a weight's rounding error is fixed, so for inputs with a non-zero mean (every input
/// after a GELU is mostly positive) `R·x` has a systematic part `R·x̄` that is the same for all
/// of a node's messages. The messages are then summed over the node's neighbours, where that
/// part adds up `k` times while the rest (the spread around the mean) partly cancels: it was
/// what flipped close calls (int8 vs float32 top-1). With the correction a layer computes
/// `W_q·x_m + R·x̄` instead of `W·x_m`, so its error is `R·(x̄ − x_m)` (plus the inputs'
/// rounding), whose sum over the group is zero; on the parity cases it halves the largest
/// |Δ log-probability| against float32 (BENCHMARKS.md, "Per-node mean correction").
///
/// Cost: one pass over the codes for the means, one int8 product per node (`1/k` of the
/// layer's), nothing per row: the correction rides in each group's starting value.
///
/// Every output depends only on its own group's rows (not on which other nodes are computed in
/// the same call), and the means are one fixed sequence of float32 operations, so the results
/// are the same for any batching, threading or row subset, and on every path (the products run
/// [`gemm`], whose VNNI kernel and portable twin give the same bits).
#[allow(clippy::too_many_arguments)]
pub fn gemm_node_corrected(
    x: RowsRef,
    rows: usize,
    group: usize,
    w: &Weights,
    bc: &Weights,
    bias: Option<&[f32]>,
    accumulate: bool,
    s: &mut Correction,
    out: &mut [f32],
) {
    assert!(group > 0 && rows.is_multiple_of(group), "{rows} rows are not whole groups of {group}");
    assert!(bc.n_in == w.n_in && bc.n_out == w.n_out, "correction weights of another shape");
    let (n_in, n_out, groups) = (w.n_in, w.n_out, rows / group);
    group_means(x, rows, group, n_in, &mut s.means);
    s.q.quantize(&s.means, groups, n_in);
    s.starts.resize(groups * n_out, 0.0);
    let init = bias.map_or(Init::Zero, Init::Bias);
    gemm(s.q.view(), groups, bc, init, &mut s.starts);
    for g in 0..groups {
        let start = &s.starts[g * n_out..(g + 1) * n_out];
        let init = if accumulate { Init::Accumulate(Some(start)) } else { Init::Bias(start) };
        gemm(x.rows(g * group, group), group, w, init, &mut out[g * group * n_out..(g + 1) * group * n_out]);
    }
}

/// The mean of each group of `group` dequantized rows, `(x_s + 128 − z)·s_x` summed in row
/// order and divided by `group` (`means`: `[rows / group, n_in]`). Plain float32 products and
/// sums (no FMA), compiled for the process's instruction-set path: the same bits on each.
pub fn group_means(x: RowsRef, rows: usize, group: usize, n_in: usize, means: &mut Vec<f32>) {
    group_means_with(crate::kernels::isa::active(), x, rows, group, n_in, means)
}

/// [`group_means`] on the path `isa` (which the CPU must support: panics otherwise).
pub fn group_means_with(
    isa: crate::kernels::isa::Isa,
    x: RowsRef,
    rows: usize,
    group: usize,
    n_in: usize,
    means: &mut Vec<f32>,
) {
    if let Some(missing) = isa.missing_feature() {
        panic!("group means on path {isa}: this CPU lacks {missing}");
    }
    assert!(group > 0 && rows.is_multiple_of(group) && x.scale.len() >= rows && x.width >= n_in);
    // Every mean is written below: sized, not cleared (no fill per call).
    means.resize(rows / group * n_in, 0.0);
    #[cfg(target_arch = "x86_64")]
    {
        use crate::kernels::isa::Isa;
        match isa {
            // SAFETY: the CPU has the path's features (checked above).
            Isa::Avx512 => return unsafe { group_means_avx512(x, group, n_in, means) },
            Isa::Avx2 => return unsafe { group_means_avx2(x, group, n_in, means) },
            Isa::Portable => {}
        }
    }
    group_means_body(x, group, n_in, means)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn group_means_avx512(x: RowsRef, group: usize, n_in: usize, means: &mut [f32]) {
    group_means_body(x, group, n_in, means)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_means_avx2(x: RowsRef, group: usize, n_in: usize, means: &mut [f32]) {
    group_means_body(x, group, n_in, means)
}

/// [`group_means`]: 64 features at a time summed over the group's rows in registers.
#[inline(always)]
fn group_means_body(x: RowsRef, group: usize, n_in: usize, means: &mut [f32]) {
    const W: usize = 64;
    let n = group as f32;
    for (g, mean) in means.chunks_exact_mut(n_in).enumerate() {
        for (b, out) in mean.chunks_mut(W).enumerate() {
            let k0 = b * W;
            let mut acc = [0f32; W];
            for m in g * group..(g + 1) * group {
                let (scale, offset) = (x.scale[m], 128 - x.zero[m]);
                let codes = &x.q[m * x.width + k0..][..out.len()];
                // A whole block of W codes takes the same loop with a length known at compile
                // time (so that it runs in registers).
                match <&[i8; W]>::try_from(codes) {
                    Ok(whole) => add_dequantized(&mut acc, whole, offset, scale),
                    Err(_) => add_dequantized(&mut acc, codes, offset, scale),
                }
            }
            for (o, a) in out.iter_mut().zip(acc) {
                *o = a / n;
            }
        }
    }
}

/// `acc[k] += (codes[k] + offset)·scale` for the codes given.
#[inline(always)]
fn add_dequantized(acc: &mut [f32], codes: &[i8], offset: i32, scale: f32) {
    for (a, &c) in acc.iter_mut().zip(codes) {
        *a += (c as i32 + offset) as f32 * scale;
    }
}

/// Whether the AVX-512 VNNI W8A8 kernel runs here (the CPU has it, and the process's path is
/// AVX-512: `MPNN_ISA=avx2` runs the ymm kernels where the CPU has 256-bit VNNI, `portable` the
/// portable twin; all give the same bits).
pub fn vnni() -> bool {
    use super::super::isa::{self, Isa};
    isa::active() == Isa::Avx512 && has_vnni()
}

/// Whether the CPU has what the VNNI W8A8 kernel needs.
pub fn has_vnni() -> bool {
    use super::super::isa::cpu_has;
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        cpu_has("avx512f") && cpu_has("avx512bw") && cpu_has("avx512_vnni") && cpu_has("avx2") && cpu_has("fma")
    })
}

pub(super) fn check(x: RowsRef, rows: usize, w: &Weights, init: Init, out: &mut [f32]) {
    assert_eq!(x.width, w.k_quads() * KQ, "quantized rows of the wrong width");
    assert!(x.q.len() >= rows * x.width && x.scale.len() >= rows);
    assert!(x.zero.len() >= rows && x.sum.len() >= rows);
    assert!(out.len() >= rows * w.n_out);
    if let Init::Bias(b) | Init::Accumulate(Some(b)) = init {
        assert!(b.len() >= w.n_out);
    }
}

/// The portable twin: `R ≤ 4` rows × one 16-column panel of int32 lanes, exact sums, then the
/// shared rescale.
pub fn gemm_portable(x: RowsRef, rows: usize, w: &Weights, init: Init, out: &mut [f32]) {
    check(x, rows, w, init, out);
    let panels = w.n_out.div_ceil(NR);
    let mut m = 0;
    while m < rows {
        let mr = (rows - m).min(MR);
        for p in 0..panels {
            match mr {
                4 => block::<4>(x, m, w, p, init, out),
                3 => block::<3>(x, m, w, p, init, out),
                2 => block::<2>(x, m, w, p, init, out),
                _ => block::<1>(x, m, w, p, init, out),
            }
        }
        m += mr;
    }
}

#[inline(always)]
fn block<const R: usize>(x: RowsRef, m: usize, w: &Weights, p: usize, init: Init, out: &mut [f32]) {
    let (kq, n_out, width) = (w.k_quads(), w.n_out, x.width);
    let panel = &w.packed[p * kq * NR * KQ..(p + 1) * kq * NR * KQ];
    let xr: [&[i8]; R] = std::array::from_fn(|r| &x.q[(m + r) * width..(m + r + 1) * width]);
    let mut acc = [[0i32; NR]; R];
    for kk in 0..kq {
        let wk: &[u8; NR * KQ] = panel[kk * NR * KQ..(kk + 1) * NR * KQ].try_into().unwrap();
        for (row, xq) in acc.iter_mut().zip(&xr) {
            let xs: [i32; KQ] = std::array::from_fn(|j| xq[kk * KQ + j] as i32);
            for (c, a) in row.iter_mut().enumerate() {
                let mut s = 0i32;
                for j in 0..KQ {
                    s += xs[j] * wk[c * KQ + j] as i32;
                }
                *a = a.wrapping_add(s);
            }
        }
    }
    let c0 = p * NR;
    let cols = (n_out - c0).min(NR);
    for (r, row) in acc.iter().enumerate() {
        let (xs, t, zc) = (x.scale[m + r], row_term(x, m + r), 128 - x.zero[m + r]);
        for (c, &a) in row[..cols].iter().enumerate() {
            let o = c0 + c;
            let s = start(init, out, m + r, o, n_out);
            let v = a.wrapping_add(t).wrapping_add(zc.wrapping_mul(w.col_sums[o]));
            out[(m + r) * n_out + o] = (v as f32).mul_add(xs * w.scales[o], s);
        }
    }
}

/// `−128·Σ x_s` of row `m` (the weights' offset, undone).
#[inline(always)]
pub(super) fn row_term(x: RowsRef, m: usize) -> i32 {
    x.sum[m].wrapping_mul(-128)
}

/// The plain definition: one exact integer dot product per output.
pub fn reference(x: RowsRef, rows: usize, w: &Weights, init: Init, out: &mut [f32]) {
    let kq = w.k_quads();
    for m in 0..rows {
        for o in 0..w.n_out {
            let (p, c) = (o / NR, o % NR);
            let mut acc = 0i64;
            for k in 0..kq * KQ {
                let wq = w.packed[((p * kq + k / KQ) * NR + c) * KQ + k % KQ] as i64 - 128;
                if k < w.n_in {
                    acc += (x.q[m * x.width + k] as i64 + 128 - x.zero[m] as i64) * wq;
                }
            }
            let s = start(init, out, m, o, w.n_out);
            out[m * w.n_out + o] = (acc as i32 as f32).mul_add(x.scale[m] * w.scales[o], s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A grouped case: GELU-like inputs (mostly positive, a per-column mean) and their codes, a
    /// random layer's float32 weights and bias, its W8A8 weights and their correction.
    struct Grouped {
        x: Vec<f32>,
        q: Rows,
        wt: Vec<f32>,
        b: Vec<f32>,
        w: Weights,
        bc: Weights,
    }

    fn grouped_case(groups: usize, group: usize, n_in: usize, n_out: usize, seed: u64) -> Grouped {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let col_mean: Vec<f32> = (0..n_in).map(|_| rng.gen_range(-0.2..1.5)).collect();
        let x: Vec<f32> = (0..groups * group * n_in)
            .map(|i| crate::kernels::gelu(col_mean[i % n_in] + rng.gen_range(-1.0..1.0)))
            .collect();
        let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-0.3..0.3)).collect();
        let b: Vec<f32> = (0..n_out).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let w = Weights::new(&wt, n_out, n_in);
        let bc = w.correction(&wt);
        let mut q = Rows::default();
        q.quantize(&x, groups * group, n_in);
        Grouped { x, q, wt, b, w, bc }
    }

    /// The per-node correction removes the systematic part of the weights' rounding error: the
    /// mean error over a group's rows (what a sum over a node's neighbours accumulates) drops
    /// by more than 5x against the plain one-pass product, and no row gets worse on average.
    #[test]
    fn node_correction_removes_the_mean_error_of_each_group() {
        let (groups, group, n_in, n_out) = (6, 48, 128, 64);
        let Grouped { x, q, wt, b, w, bc } = grouped_case(groups, group, n_in, n_out, 41);
        let rows = groups * group;
        let mut plain = vec![0f32; rows * n_out];
        gemm(q.view(), rows, &w, Init::Bias(&b), &mut plain);
        let mut fixed = vec![0f32; rows * n_out];
        gemm_node_corrected(q.view(), rows, group, &w, &bc, Some(&b), false, &mut Correction::default(), &mut fixed);
        let exact = |m: usize, o: usize| {
            b[o] as f64 + (0..n_in).map(|k| wt[o * n_in + k] as f64 * x[m * n_in + k] as f64).sum::<f64>()
        };
        let (mut mean_plain, mut mean_fixed, mut sq_plain, mut sq_fixed) = (0f64, 0f64, 0f64, 0f64);
        for g in 0..groups {
            for o in 0..n_out {
                let (mut ep, mut ef) = (0f64, 0f64);
                for m in g * group..(g + 1) * group {
                    let e = exact(m, o);
                    ep += plain[m * n_out + o] as f64 - e;
                    ef += fixed[m * n_out + o] as f64 - e;
                    sq_plain += (plain[m * n_out + o] as f64 - e).powi(2);
                    sq_fixed += (fixed[m * n_out + o] as f64 - e).powi(2);
                }
                mean_plain = mean_plain.max((ep / group as f64).abs());
                mean_fixed = mean_fixed.max((ef / group as f64).abs());
            }
        }
        eprintln!(
            "largest group-mean error: plain {mean_plain:.2e}, corrected {mean_fixed:.2e}; rms {:.2e} vs {:.2e}",
            (sq_plain / (rows * n_out) as f64).sqrt(),
            (sq_fixed / (rows * n_out) as f64).sqrt()
        );
        assert!(mean_fixed * 5.0 < mean_plain, "group-mean error {mean_fixed:.2e} vs plain {mean_plain:.2e}");
        assert!(sq_fixed <= sq_plain, "rms error grew: {sq_fixed:.3e} vs {sq_plain:.3e}");
    }

    /// A group's outputs depend on its own rows only: all groups in one call, each group alone,
    /// and the accumulating form (on top of existing outputs) give the same bits; rows that are
    /// not whole groups are refused.
    #[test]
    fn node_correction_depends_on_the_group_only() {
        let (groups, group, n_in, n_out) = (5, 16, 72, 40);
        let Grouped { q, b, w, bc, .. } = grouped_case(groups, group, n_in, n_out, 42);
        let rows = groups * group;
        let mut s = Correction::default();
        let mut all = vec![0f32; rows * n_out];
        gemm_node_corrected(q.view(), rows, group, &w, &bc, Some(&b), false, &mut s, &mut all);
        for g in (0..groups).rev() {
            let mut one = vec![0f32; group * n_out];
            gemm_node_corrected(
                q.view().rows(g * group, group),
                group,
                group,
                &w,
                &bc,
                Some(&b),
                false,
                &mut s,
                &mut one,
            );
            assert_eq!(one, all[g * group * n_out..(g + 1) * group * n_out], "group {g}");
        }
        let base: Vec<f32> = (0..rows * n_out).map(|i| (i % 7) as f32 * 0.25).collect();
        let mut acc = base.clone();
        gemm_node_corrected(q.view(), rows, group, &w, &bc, Some(&b), true, &mut s, &mut acc);
        let mut twice = base.clone();
        let mut starts = Vec::new();
        group_means(q.view(), rows, group, n_in, &mut starts);
        let mut mq = Rows::default();
        mq.quantize(&starts, groups, n_in);
        let mut start = vec![0f32; groups * n_out];
        gemm(mq.view(), groups, &bc, Init::Bias(&b), &mut start);
        for g in 0..groups {
            let st = &start[g * n_out..(g + 1) * n_out];
            gemm(
                q.view().rows(g * group, group),
                group,
                &w,
                Init::Accumulate(Some(st)),
                &mut twice[g * group * n_out..(g + 1) * group * n_out],
            );
        }
        assert_eq!(acc, twice);
        let bad = std::panic::catch_unwind(|| {
            let mut out = vec![0f32; rows * n_out];
            gemm_node_corrected(q.view(), rows - 1, group, &w, &bc, None, false, &mut Correction::default(), &mut out)
        });
        assert!(bad.is_err(), "rows that are not whole groups must be refused");
    }

    /// Every instruction-set path computes the same group means, bit for bit (one fixed
    /// sequence of float32 products and sums), on widths that are and are not multiples of 64.
    #[test]
    fn group_means_are_the_same_on_every_path() {
        use crate::kernels::isa::{self, Isa};
        for p in Isa::ALL {
            if let Some(msg) = isa::skip_message(p) {
                eprintln!("{msg}");
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(43);
        for (groups, group, n_in) in [(3, 48, 128), (2, 16, 64), (4, 7, 130), (1, 1, 5), (2, 5, 416)] {
            let x: Vec<f32> = (0..groups * group * n_in).map(|_| rng.gen_range(-2.0..5.0)).collect();
            let mut q = Rows::default();
            q.quantize(&x, groups * group, n_in);
            let mut results = Vec::new();
            for p in Isa::available() {
                let mut means = Vec::new();
                group_means_with(p, q.view(), groups * group, group, n_in, &mut means);
                results.push((p, means.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), means));
            }
            for (p, bits, _) in &results[1..] {
                assert_eq!(bits, &results[0].1, "{p} vs {}: {groups}x{group}x{n_in}", results[0].0);
            }
            // And they are the means of the dequantized rows.
            let means = &results[0].2;
            for g in 0..groups {
                for k in 0..n_in {
                    let want: f64 = (g * group..(g + 1) * group)
                        .map(|m| (q.q[m * q.width + k] as f64 + 128.0 - q.zero[m] as f64) * q.scale[m] as f64)
                        .sum::<f64>()
                        / group as f64;
                    assert!((means[g * n_in + k] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()), "{g} {k}");
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    type YmmKernel = fn(RowsRef, usize, &Weights, Init, &mut [f32]);

    #[test]
    fn vnni_kernel_equals_its_twin_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        let have = has_vnni();
        #[cfg(not(target_arch = "x86_64"))]
        let have = false;
        if !have {
            eprintln!("skipped: CPU lacks avx512_vnni (W8A8 VNNI kernel; the portable twin is still checked)");
        }
        // The ymm kernels: each encoding where the CPU has it.
        #[cfg(target_arch = "x86_64")]
        let ymm: Vec<(&str, YmmKernel)> = {
            use crate::kernels::int8::avx_vnni;
            use crate::kernels::isa::cpu_has;
            let base = cpu_has("avx2") && cpu_has("fma");
            let mut k: Vec<(&str, YmmKernel)> = Vec::new();
            if base && cpu_has("avx_vnni") {
                // SAFETY: the CPU has the kernel's features (checked).
                k.push(("ymm vex", |a, b, c, d, e| unsafe { avx_vnni::gemm_w8a8_vex(a, b, c, d, e) }));
            } else {
                eprintln!("skipped: CPU lacks avx_vnni (W8A8 ymm kernel, VEX encoding)");
            }
            if base && cpu_has("avx512f") && cpu_has("avx512vl") && cpu_has("avx512_vnni") {
                // SAFETY: as above.
                k.push(("ymm evex", |a, b, c, d, e| unsafe { avx_vnni::gemm_w8a8_evex(a, b, c, d, e) }));
            } else {
                eprintln!("skipped: CPU lacks avx512vl + avx512_vnni (W8A8 ymm kernel, EVEX encoding)");
            }
            k
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
        let mut shapes = vec![(1, 1, 1), (5, 7, 3), (12, 128, 128), (13, 127, 21), (48, 512, 128), (7, 416, 130)];
        for _ in 0..40 {
            shapes.push((rng.gen_range(1..=40), rng.gen_range(1..=300), rng.gen_range(1..=70)));
        }
        for &(rows, n_in, n_out) in &shapes {
            let shift: f32 = rng.gen_range(-1.0..1.0);
            let x: Vec<f32> = (0..rows * n_in).map(|_| rng.gen_range(-3.0..3.0) + shift).collect();
            let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..n_out).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let w = Weights::new(&wt, n_out, n_in);
            let mut q = Rows::default();
            q.quantize(&x, rows, n_in);
            for init in [Init::Zero, Init::Bias(&b), Init::Accumulate(Some(&b)), Init::Accumulate(None)] {
                let begin: Vec<f32> = (0..rows * n_out).map(|i| i as f32 * 0.01).collect();
                let mut slow = begin.clone();
                reference(q.view(), rows, &w, init, &mut slow);
                let mut twin = begin.clone();
                gemm_portable(q.view(), rows, &w, init, &mut twin);
                assert_eq!(twin, slow, "portable {rows}x{n_in}x{n_out} {init:?}");
                #[cfg(target_arch = "x86_64")]
                if have {
                    let mut fast = begin.clone();
                    // SAFETY: the CPU has the kernel's features (checked above).
                    unsafe { crate::kernels::int8::avx512::gemm_w8a8(q.view(), rows, &w, init, &mut fast) };
                    assert_eq!(fast, slow, "avx512 vnni {rows}x{n_in}x{n_out} {init:?}");
                }
                #[cfg(target_arch = "x86_64")]
                for (name, kernel) in &ymm {
                    let mut fast = begin.clone();
                    kernel(q.view(), rows, &w, init, &mut fast);
                    assert_eq!(fast, slow, "{name} {rows}x{n_in}x{n_out} {init:?}");
                }
            }
        }
    }

    /// Rows for the row quantizers' tests: random ranges and lengths 1-70, and the edge rows
    /// (zeros, a NaN, an infinity, constant rows, exact ties, a finite row whose sum overflows).
    #[cfg(target_arch = "x86_64")]
    fn quantizer_rows() -> Vec<Vec<f32>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(34);
        let mut rows: Vec<Vec<f32>> = (0..300)
            .map(|i| {
                let (a, b) = (rng.gen_range(-3.0f32..0.5), rng.gen_range(0.6f32..4.0));
                (0..1 + i % 70).map(|_| rng.gen_range(a..b)).collect()
            })
            .collect();
        rows.push(vec![0.0; 17]);
        rows.push(vec![-0.0, 1.0, 2.5, -0.5]);
        rows.push(vec![1.0, f32::NAN, 2.0]);
        rows.push(vec![1.0, f32::INFINITY]);
        rows.push(vec![3.0; 33]);
        rows.push(vec![-1.5; 16]);
        // Ties: range 255 makes `inv` 1, so every `x.5` rounds to even, and `127.5` lands
        // on code 256 before the clamp.
        rows.push(
            (0..37).map(|i| [0.5, 255.0, 254.5, 3.5][i % 4] + (i / 4) as f32 * (i % 4 == 3) as u8 as f32).collect(),
        );
        rows.push((0..21).map(|i| [-127.5, 127.5, -0.5, 0.5, 1.5, -2.5, 126.5][i % 7]).collect());
        rows.push(vec![3e38, 3e38, -1.0, 2e38]); // a finite row whose sum overflows
        rows
    }

    /// The AVX2 row quantizer against the twin, one row at a time and in blocks of rows.
    #[test]
    fn avx2_row_quantizer_equals_its_twin() {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::kernels::isa::cpu_has;
            if !(cpu_has("avx2") && cpu_has("fma")) {
                eprintln!("skipped: CPU lacks avx2 (W8A8 AVX2 row quantizer)");
                return;
            }
            let rows = quantizer_rows();
            for x in &rows {
                let n = x.len();
                let mut want = Rows::default();
                want.reset(1, n);
                let (width, mut got) = (want.width, Rows::default());
                (want.scale[0], want.zero[0], want.sum[0]) = quantize_row_portable(x, &mut want.q[..n]);
                want.q[n..].fill(0);
                got.reset(1, n);
                got.q.fill(7);
                let out =
                    RowsMut { q: &mut got.q, scale: &mut got.scale, zero: &mut got.zero, sum: &mut got.sum, width };
                // SAFETY: the CPU has AVX2 and FMA (checked above); one row of `n` into one of `width`.
                unsafe { crate::kernels::int8::avx2::quantize_rows8(x, n, out) };
                assert_eq!((&got.q, &got.zero, &got.sum), (&want.q, &want.zero, &want.sum), "{x:?}");
                assert_eq!(got.scale[0].to_bits(), want.scale[0].to_bits(), "{x:?}");
            }
            // Blocks: every row of one length at once.
            for n in [1usize, 7, 8, 16, 21, 37] {
                let block: Vec<&Vec<f32>> = rows.iter().filter(|r| r.len() == n).collect();
                let x: Vec<f32> = block.iter().flat_map(|r| r.iter().copied()).collect();
                let mut want = Rows::default();
                want.reset(block.len(), n);
                let width = want.width;
                for (r, row) in block.iter().enumerate() {
                    want.q[r * width..(r + 1) * width].fill(0);
                    (want.scale[r], want.zero[r], want.sum[r]) =
                        quantize_row_portable(row, &mut want.q[r * width..r * width + n]);
                }
                let mut got = Rows::default();
                got.reset(block.len(), n);
                let out =
                    RowsMut { q: &mut got.q, scale: &mut got.scale, zero: &mut got.zero, sum: &mut got.sum, width };
                // SAFETY: as above.
                unsafe { crate::kernels::int8::avx2::quantize_rows8(&x, n, out) };
                assert_eq!((&got.q, &got.zero, &got.sum), (&want.q, &want.zero, &want.sum), "n={n}");
            }
        }
    }

    #[test]
    fn avx512_row_quantizer_equals_its_twin() {
        #[cfg(target_arch = "x86_64")]
        {
            if !has_vnni() {
                eprintln!("skipped: CPU lacks avx512_vnni (W8A8 AVX-512 row quantizer)");
                return;
            }
            let rows = quantizer_rows();
            for x in &rows {
                let (mut a, mut b) = (vec![1i8; x.len()], vec![2i8; x.len()]);
                let slow = quantize_row_portable(x, &mut a);
                // SAFETY: the CPU has AVX-512F/BW (checked above).
                let fast = unsafe { crate::kernels::int8::avx512::quantize_row(x, &mut b) };
                assert_eq!((fast.0.to_bits(), fast.1, fast.2), (slow.0.to_bits(), slow.1, slow.2), "{x:?}");
                assert_eq!(a, b, "{x:?}");
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        eprintln!("skipped: CPU lacks avx512_vnni (W8A8 AVX-512 row quantizer)");
    }

    #[test]
    fn block_quantizer_equals_the_row_twin() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(35);
        if !vnni() {
            eprintln!("skipped: CPU lacks avx512_vnni (W8A8 block quantizer; the portable path is the twin itself)");
        }
        for n in [1usize, 7, 16, 37, 128] {
            for rows in [1usize, 2, 3, 4, 5, 9] {
                let mut x: Vec<f32> = (0..rows * n).map(|_| rng.gen_range(-0.3f32..3.0)).collect();
                let special: [Vec<f32>; 4] = [
                    (0..n).map(|i| [-127.5, 127.5, -0.5, 0.5, 1.5, -2.5, 126.5][i % 7]).collect(),
                    (0..n).map(|i| if i == n / 2 { f32::NAN } else { 1.0 }).collect(),
                    vec![0.0; n],
                    vec![3e38; n],
                ];
                for (r, row) in special.iter().enumerate().filter(|(r, _)| r % 2 == rows % 2 && *r < rows) {
                    x[r * n..(r + 1) * n].copy_from_slice(row);
                }
                let mut want = Rows::default();
                want.reset(rows, n);
                for r in 0..rows {
                    want.q[r * want.width..(r + 1) * want.width].fill(0);
                    let q = &mut want.q[r * want.width..r * want.width + n];
                    (want.scale[r], want.zero[r], want.sum[r]) = quantize_row_portable(&x[r * n..(r + 1) * n], q);
                }
                let mut got = Rows::default();
                got.reset(rows, n);
                got.q.fill(5);
                got.quantize(&x, rows, n);
                assert_eq!((&got.q, &got.zero, &got.sum), (&want.q, &want.zero, &want.sum), "n={n} rows={rows}");
                let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.scale), bits(&want.scale), "n={n} rows={rows}");
            }
        }
    }

    #[test]
    fn quantized_rows_decode_close_to_the_input() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(32);
        for (lo, hi) in [(-0.17f32, 3.0f32), (-2.0, 2.0), (0.5, 4.0), (-3.0, -1.0)] {
            let x: Vec<f32> = (0..200).map(|_| rng.gen_range(lo..hi)).collect();
            let mut q = vec![0i8; 200];
            let (s, z, sum) = quantize_row(&x, &mut q);
            assert_eq!(sum, q.iter().map(|&c| c as i32).sum::<i32>());
            for (&v, &c) in x.iter().zip(&q) {
                let back = (c as i32 + 128 - z) as f32 * s;
                assert!((back - v).abs() <= 0.5001 * s, "{v} -> {c} -> {back} (s {s}, z {z})");
            }
            // The range (with 0 included) uses the whole code span.
            assert!(q.iter().any(|&c| c >= 126) || q.iter().any(|&c| c <= -127));
        }
        let mut q = vec![7i8; 5];
        assert_eq!(quantize_row(&[0.0; 5], &mut q), (0.0, 128, 0));
        assert!(q.iter().all(|&c| c == 0));
        assert_eq!(quantize_row(&[1.0, f32::INFINITY], &mut q[..2]), (0.0, 128, 0));
    }

    #[test]
    fn product_is_close_to_float() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(33);
        let (rows, n_in, n_out) = (9, 128, 40);
        let x: Vec<f32> = (0..rows * n_in).map(|_| rng.gen_range(-0.17..2.0)).collect();
        let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-0.2..0.2)).collect();
        let w = Weights::new(&wt, n_out, n_in);
        let mut q = Rows::default();
        q.quantize(&x, rows, n_in);
        let mut y = vec![0f32; rows * n_out];
        gemm(q.view(), rows, &w, Init::Zero, &mut y);
        let mut worst = 0f32;
        for m in 0..rows {
            for o in 0..n_out {
                let exact: f32 = (0..n_in).map(|k| x[m * n_in + k] * wt[o * n_in + k]).sum();
                worst = worst.max((y[m * n_out + o] - exact).abs());
            }
        }
        assert!(worst < 0.03, "worst W8A8 error {worst}");
        assert!(worst > 0.0);
    }

    /// The two-pass form (`Linear::with_residual_weights`): the second pass (an accumulating call of the same kernels) gives the same
    /// bits on the VNNI kernel and its twin, and the two-pass product is closer to float32 than
    /// one pass.
    #[test]
    fn residual_weights_pass_is_exact_across_kernels_and_closer_to_float() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(34);
        for &(rows, n_in, n_out) in &[(9, 128, 40), (13, 416, 128), (5, 37, 19), (30, 128, 128)] {
            let x: Vec<f32> = (0..rows * n_in).map(|_| rng.gen_range(-0.17..2.0)).collect();
            let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-0.2..0.2)).collect();
            let b: Vec<f32> = (0..n_out).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let w = Weights::new(&wt, n_out, n_in);
            let res = w.residual(&wt);
            let r = Weights::new(&res, n_out, n_in);
            let mut q = Rows::default();
            q.quantize(&x, rows, n_in);
            let two_pass = |kernel: fn(RowsRef, usize, &Weights, Init, &mut [f32])| {
                let mut one = vec![0f32; rows * n_out];
                kernel(q.view(), rows, &w, Init::Bias(&b), &mut one);
                let mut two = one.clone();
                kernel(q.view(), rows, &r, Init::Accumulate(None), &mut two);
                (one, two)
            };
            let (one, two) = two_pass(gemm_portable);
            assert_eq!(two_pass(gemm), (one.clone(), two.clone()), "{rows}x{n_in}x{n_out}");
            // Against the float32 product of the same quantized inputs: only the weights differ.
            let (mut e1, mut e2) = (0f64, 0f64);
            for m in 0..rows {
                let xs = &q.q[m * q.width..][..n_in];
                for o in 0..n_out {
                    let exact: f64 = b[o] as f64
                        + (0..n_in)
                            .map(|k| {
                                (xs[k] as i32 + 128 - q.zero[m]) as f64 * q.scale[m] as f64 * wt[o * n_in + k] as f64
                            })
                            .sum::<f64>();
                    e1 += (one[m * n_out + o] as f64 - exact).powi(2);
                    e2 += (two[m * n_out + o] as f64 - exact).powi(2);
                }
            }
            assert!(e2 < e1 / 100.0, "two passes {e2} against one {e1}");
        }
    }
}
