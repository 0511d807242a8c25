//! The AVX-512F kernel: 12 rows × 32 columns (two packed 16-column panels) per register block.
//!
//! One zmm register holds one row's 16 outputs of a panel, so a block keeps 24 accumulators in
//! registers (of 32), and per `k` it loads two weight vectors and feeds each of the 12 row values
//! (a broadcast folded into the FMA's memory operand, `{1to16}`) into two `vfmadd231ps`: 24 FMAs
//! for 14 loads, against the AVX2 kernel's 12 FMAs for 8 loads. A lone last panel runs the same
//! block with one column vector. Partial panels (`n_out` not a multiple of 16) and the starting
//! values use AVX-512 masks instead of staging buffers.
//!
//! Each lane is one output's FMA chain over `k` in order, started from the same value as
//! [`super::start_row`] (bias, 0, or existing output + bias in one float32 addition): the chain
//! every path computes, so the results equal the AVX2 and portable paths' bit for bit.

use super::{Init, NR};
use std::arch::x86_64::*;

/// Rows per register block.
pub const MR: usize = 12;

/// `out[m, :] = init + a[m, :] · Wᵀ` (see [`super::gemm`]).
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA, and the slices must be as large as
/// [`super::gemm_with`] asserts (it is the safe entry point).
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gemm(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    blocks(a, rows, n_in, packed, n_out, init, out.as_mut_ptr(), &Store);
}

/// [`super::gemm_gelu_sum`]: the blocks of [`gemm`] (bias start, same FMA chains, same row
/// order per panel), each finishing in GELU and its rows' node sums instead of a store.
///
/// # Safety
/// As [`gemm`] ([`super::gemm_gelu_sum_with`] is the safe entry point and checks the sizes).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gemm_gelu_sum(
    a: &[f32],
    rows: usize,
    n_in: usize,
    packed: &[f32],
    n_out: usize,
    bias: Option<&[f32]>,
    epi: super::GeluSum,
    sums: &mut [f32],
) {
    let sink = GeluSumSink { sums: sums.as_mut_ptr(), group: epi.group, weights: epi.weights };
    // `out` is never written on this path (the sink takes every block).
    blocks(a, rows, n_in, packed, n_out, bias.map_or(Init::Zero, Init::Bias), std::ptr::null_mut(), &sink);
}

/// Every register block in order (row blocks of [`MR`], within each the panels in pairs), each
/// ended by `finish`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn blocks<F: Finish>(
    a: &[f32],
    rows: usize,
    n_in: usize,
    packed: &[f32],
    n_out: usize,
    init: Init,
    out: *mut f32,
    finish: &F,
) {
    let panels = n_out.div_ceil(NR);
    let mut m = 0;
    while m < rows {
        let mr = (rows - m).min(MR);
        let mut p = 0;
        while p < panels {
            let two = panels - p >= 2;
            let args = Args { a: a.as_ptr(), m, n_in, packed: packed.as_ptr(), p, n_out, init, out };
            macro_rules! go {
                ($($r:literal)*) => {
                    match (mr, two) {
                        $(($r, true) => block::<$r, 2, F>(&args, finish), ($r, false) => block::<$r, 1, F>(&args, finish),)*
                        _ => unreachable!(),
                    }
                };
            }
            go!(1 2 3 4 5 6 7 8 9 10 11 12);
            p += if two { 2 } else { 1 };
        }
        m += mr;
    }
}

/// What a register block does with its finished accumulators (`acc[r][j]`: row `g.m + r`,
/// panel `g.p + j`, columns under `mask[j]`).
trait Finish {
    /// # Safety
    /// The block's destination must be valid for the rows and panels of `g`.
    unsafe fn finish<const R: usize, const P: usize>(&self, g: &Args, acc: &[[__m512; P]; R], mask: &[u16; P]);
}

/// [`gemm`]'s end: store each row's panels into `out`.
struct Store;

impl Finish for Store {
    #[inline(always)]
    unsafe fn finish<const R: usize, const P: usize>(&self, g: &Args, acc: &[[__m512; P]; R], mask: &[u16; P]) {
        for (r, row) in acc.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(g.out.add((g.m + r) * g.n_out + (g.p + j) * NR), mask[j], *v);
            }
        }
    }
}

/// [`gemm_gelu_sum`]'s end: per row (in order) and panel `sums[row / group] += w · gelu(acc)`
/// under the panel's column mask. The GELU is [`crate::kernels::gelu`] on the 16 lanes (the
/// same scalar operations, vectorized by the compiler), so it is the bits of the unfused path.
struct GeluSumSink<'a> {
    sums: *mut f32,
    group: usize,
    weights: Option<&'a [f32]>,
}

impl Finish for GeluSumSink<'_> {
    #[inline(always)]
    unsafe fn finish<const R: usize, const P: usize>(&self, g: &Args, acc: &[[__m512; P]; R], mask: &[u16; P]) {
        for (r, row) in acc.iter().enumerate() {
            let at = g.m + r;
            let w = self.weights.map(|w| w[at]);
            if w == Some(0.0) {
                continue;
            }
            let node = self.sums.add(at / self.group * g.n_out);
            for (j, v) in row.iter().enumerate() {
                let mut lanes = [0f32; NR];
                _mm512_storeu_ps(lanes.as_mut_ptr(), *v);
                for x in &mut lanes {
                    *x = crate::kernels::gelu(*x);
                }
                let mut y = _mm512_loadu_ps(lanes.as_ptr());
                if let Some(w) = w {
                    y = _mm512_mul_ps(_mm512_set1_ps(w), y);
                }
                let dst = node.add((g.p + j) * NR);
                _mm512_mask_storeu_ps(dst, mask[j], _mm512_add_ps(_mm512_maskz_loadu_ps(mask[j], dst), y));
            }
        }
    }
}

/// Where a block reads and writes: rows `m..m + R` of `a` and `out`, panels `p..p + P`.
struct Args<'a> {
    a: *const f32,
    m: usize,
    n_in: usize,
    packed: *const f32,
    p: usize,
    n_out: usize,
    init: Init<'a>,
    out: *mut f32,
}

/// `R` rows × `P` panels (P ≤ 2, R ≤ 12): `R·P` zmm accumulators, then `finish`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn block<const R: usize, const P: usize, F: Finish>(g: &Args, finish: &F) {
    let (acc, mask) = products::<R, P>(g);
    finish.finish::<R, P>(g, &acc, &mask);
}

/// A block's accumulators (each started from its [`Init`] value and run through its FMA chain
/// over `k`) and the panels' column masks.
#[inline(always)]
unsafe fn products<const R: usize, const P: usize>(g: &Args) -> ([[__m512; P]; R], [u16; P]) {
    let n_in = g.n_in;
    // Column masks of the panels (all ones except a partial last panel).
    let mut mask = [0u16; P];
    for (j, mk) in mask.iter_mut().enumerate() {
        let cols = (g.n_out - (g.p + j) * NR).min(NR);
        *mk = if cols == NR { u16::MAX } else { (1u16 << cols) - 1 };
    }
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let c0 = (g.p + j) * NR;
            // (Only an accumulating start reads `out`; the fused path passes no `out`.)
            let dst = g.out.wrapping_add((g.m + r) * g.n_out + c0);
            *v = match g.init {
                Init::Zero => _mm512_setzero_ps(),
                Init::Bias(b) => _mm512_maskz_loadu_ps(mask[j], b.as_ptr().add(c0)),
                Init::Accumulate(None) => _mm512_maskz_loadu_ps(mask[j], dst),
                Init::Accumulate(Some(b)) => _mm512_add_ps(
                    _mm512_maskz_loadu_ps(mask[j], dst),
                    _mm512_maskz_loadu_ps(mask[j], b.as_ptr().add(c0)),
                ),
            };
        }
    }
    let ap = g.a.add(g.m * n_in);
    let wp = g.packed.add(g.p * n_in * NR);
    for k in 0..n_in {
        let mut w = [_mm512_setzero_ps(); P];
        for (j, wj) in w.iter_mut().enumerate() {
            *wj = _mm512_loadu_ps(wp.add(j * n_in * NR + k * NR));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*ap.add(r * n_in + k));
            for (v, wj) in row.iter_mut().zip(&w) {
                *v = _mm512_fmadd_ps(x, *wj, *v);
            }
        }
    }
    (acc, mask)
}
