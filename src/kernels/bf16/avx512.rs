//! The AVX-512 BF16 kernel: `vdpbf16ps`, 12 rows × 32 columns (two pair-interleaved panels) per
//! register block, 24 zmm accumulators of float32.
//!
//! One zmm of packed weights holds a whole panel's pair of `k` (16 columns × 2 bfloat16), so per
//! pair a block loads two weight vectors and, per row, broadcasts the row's two bfloat16 inputs
//! (one 32-bit load, folded into the instruction's `{1to16}` memory operand) into two
//! `vdpbf16ps`: 24 instructions of 32 multiply-adds each for 14 loads — twice the products per
//! instruction and half the weight bytes of the float32 kernel ([`crate::kernels::gemm::avx512`]).
//! The starting values (bias, 0, existing output + bias in one float32 addition) and the masks of
//! a partial last panel are the float32 kernel's; the instruction itself applies the flushes of
//! [`super`]'s definition, so the result is the twin's bit for bit.

use super::{Init, NR};
use std::arch::x86_64::*;

/// Rows per register block.
pub const MR: usize = 12;

/// `out[m, :] = init + x[m, :] · Wᵀ` (see [`super::gemm_with`]); `x` is `[rows][2·kp]` bfloat16
/// bits, `packed` the [`super::Bf16Weights::native`] panels.
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512BW and AVX-512 BF16, and the slices must be as large as
/// [`super::gemm_with`] asserts (it is the safe entry point).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
pub unsafe fn gemm(x: &[u16], rows: usize, packed: &[u16], kp: usize, n_out: usize, init: Init, out: &mut [f32]) {
    debug_assert!(x.len() >= rows * kp * 2 && packed.len() >= n_out.div_ceil(NR) * kp * NR * 2);
    let panels = n_out.div_ceil(NR);
    let mut m = 0;
    while m < rows {
        let mr = (rows - m).min(MR);
        let mut p = 0;
        while p < panels {
            let two = panels - p >= 2;
            let g = Args { x: x.as_ptr(), m, kp, packed: packed.as_ptr(), p, n_out, init, out: out.as_mut_ptr() };
            macro_rules! go {
                ($($r:literal)*) => {
                    match (mr, two) {
                        $(($r, true) => block::<$r, 2>(&g), ($r, false) => block::<$r, 1>(&g),)*
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

/// Converts `rows` rows of `x` (`[rows, n_in]`) to bfloat16 bits `[rows][2·kp]` with
/// `vcvtne2ps2bf16` (32 values per instruction; [`super::to_bf16`]'s result, tested), the odd
/// tail padded with +0 by the masked loads.
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512BW and AVX-512 BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
pub unsafe fn convert(x: &[f32], rows: usize, n_in: usize, out: &mut [u16]) {
    let width = n_in.div_ceil(2) * 2;
    assert!(x.len() >= rows * n_in && out.len() >= rows * width);
    for r in 0..rows {
        let src = x.as_ptr().add(r * n_in);
        let dst = out.as_mut_ptr().add(r * width);
        let mut c = 0;
        while c < width {
            let left = n_in - c;
            let lo_mask: u16 = if left >= 16 { u16::MAX } else { (1u16 << left) - 1 };
            let hi_left = left.saturating_sub(16);
            let hi_mask: u16 = if hi_left >= 16 { u16::MAX } else { (1u16 << hi_left) - 1 };
            // Masked-off lanes are not read; `wrapping_add` keeps the pointer arithmetic defined past
            // the row's end.
            let lo = _mm512_maskz_loadu_ps(lo_mask, src.wrapping_add(c));
            let hi = _mm512_maskz_loadu_ps(hi_mask, src.wrapping_add(c + 16));
            let h: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            let n = (width - c).min(32);
            let store_mask: u32 = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
            _mm512_mask_storeu_epi16(dst.add(c) as *mut i16, store_mask, h);
            c += 32;
        }
    }
}

/// Where a block reads and writes: rows `m..m + R` of `x` and `out`, panels `p..p + P`.
struct Args<'a> {
    x: *const u16,
    m: usize,
    kp: usize,
    packed: *const u16,
    p: usize,
    n_out: usize,
    init: Init<'a>,
    out: *mut f32,
}

/// `R` rows × `P` panels (P ≤ 2, R ≤ 12): `R·P` zmm accumulators.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
unsafe fn block<const R: usize, const P: usize>(g: &Args) {
    let kp = g.kp;
    let mut mask = [0u16; P];
    for (j, mk) in mask.iter_mut().enumerate() {
        let cols = (g.n_out - (g.p + j) * NR).min(NR);
        *mk = if cols == NR { u16::MAX } else { (1u16 << cols) - 1 };
    }
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let c0 = (g.p + j) * NR;
            let dst = g.out.add((g.m + r) * g.n_out + c0);
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
    let wp = g.packed.add(g.p * kp * NR * 2);
    let xp = g.x.add(g.m * kp * 2) as *const i32;
    for kk in 0..kp {
        let mut w = [_mm512_setzero_si512(); P];
        for (j, wj) in w.iter_mut().enumerate() {
            *wj = _mm512_loadu_si512(wp.add(j * kp * NR * 2 + kk * NR * 2) as *const _);
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(std::ptr::read_unaligned(xp.add(r * kp + kk))));
            for (v, wj) in row.iter_mut().zip(&w) {
                *v = _mm512_dpbf16_ps(*v, xv, std::mem::transmute::<__m512i, __m512bh>(*wj));
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            _mm512_mask_storeu_ps(g.out.add((g.m + r) * g.n_out + (g.p + j) * NR), mask[j], *v);
        }
    }
}
