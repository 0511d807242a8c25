//! The AVX2 int8 kernel: `R ≤ 6` rows × one 16-column panel, per pair of `k` two weight loads,
//! and per row one broadcast of the two int16 activations (as one int32) and two `vpmaddwd`
//! (i16 × i16 pair sums into int32 lanes) added into 2 ymm accumulators.

use super::{start, Init, QuantWeights, MR, NR};
use std::arch::x86_64::*;

/// The int8 product (see [`super::gemm`]).
///
/// # Safety
/// The CPU must have AVX2 and FMA, and the slices must be as large as [`super::gemm_with`]
/// asserts (it is the safe entry point).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm(xq: &[i16], xs: &[f32], rows: usize, w: &QuantWeights, init: Init, out: &mut [f32]) {
    let panels = w.n_out.div_ceil(NR);
    let mut m = 0;
    while m < rows {
        let mr = (rows - m).min(MR);
        for p in 0..panels {
            match mr {
                6 => block::<6>(xq, xs, m, w, p, init, out),
                5 => block::<5>(xq, xs, m, w, p, init, out),
                4 => block::<4>(xq, xs, m, w, p, init, out),
                3 => block::<3>(xq, xs, m, w, p, init, out),
                2 => block::<2>(xq, xs, m, w, p, init, out),
                _ => block::<1>(xq, xs, m, w, p, init, out),
            }
        }
        m += mr;
    }
}

/// `R` rows × one 16-column panel. Per pair of `k`: two weight loads, and per row one
/// broadcast of the two activations (as one int32) and two `vpmaddwd` into int32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const R: usize>(
    xq: &[i16],
    xs: &[f32],
    m: usize,
    w: &QuantWeights,
    p: usize,
    init: Init,
    out: &mut [f32],
) {
    let kp = w.k_pairs();
    let n_out = w.n_out;
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    let wp = w.packed.as_ptr().add(p * kp * NR * 2);
    let xp = xq.as_ptr().add(m * kp * 2) as *const i32;
    for kk in 0..kp {
        let w0 = _mm256_loadu_si256(wp.add(kk * NR * 2) as *const __m256i);
        let w1 = _mm256_loadu_si256(wp.add(kk * NR * 2 + 16) as *const __m256i);
        for (r, a) in acc.iter_mut().enumerate() {
            let x = _mm256_set1_epi32(std::ptr::read_unaligned(xp.add(r * kp + kk)));
            a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(x, w0));
            a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(x, w1));
        }
    }
    let c0 = p * NR;
    let cols = (n_out - c0).min(NR);
    let mut ws = [0f32; NR];
    ws[..cols].copy_from_slice(&w.scales[c0..c0 + cols]);
    let ws0 = _mm256_loadu_ps(ws.as_ptr());
    let ws1 = _mm256_loadu_ps(ws.as_ptr().add(8));
    for (r, a) in acc.iter().enumerate() {
        let mut s = [0f32; NR];
        for (c, v) in s[..cols].iter_mut().enumerate() {
            *v = start(init, out, m + r, c0 + c, n_out);
        }
        let sx = _mm256_set1_ps(xs[m + r]);
        let y0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[0]), _mm256_mul_ps(sx, ws0), _mm256_loadu_ps(s.as_ptr()));
        let y1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[1]), _mm256_mul_ps(sx, ws1), _mm256_loadu_ps(s.as_ptr().add(8)));
        _mm256_storeu_ps(s.as_mut_ptr(), y0);
        _mm256_storeu_ps(s.as_mut_ptr().add(8), y1);
        out[(m + r) * n_out + c0..][..cols].copy_from_slice(&s[..cols]);
    }
}
