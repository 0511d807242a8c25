//! The AVX2 + FMA kernel: 6 rows × 16 columns (one packed panel) per register block, 12 ymm
//! accumulators (two 8-wide halves per row), per `k` two weight loads and six broadcasts feeding
//! twelve `vfmadd231ps`. Each lane is one output's FMA chain over `k` in order, started from
//! [`super::start_row`]'s value — the chain every path computes.

use super::{start_row, Init, NR};
use std::arch::x86_64::*;

/// Rows per register block.
pub const MR: usize = 6;

/// `out[m, :] = init + a[m, :] · Wᵀ` (see [`super::gemm`]).
///
/// # Safety
/// The CPU must have AVX2 and FMA, and the slices must be as large as [`super::gemm_with`]
/// asserts (it is the safe entry point).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    let panels = n_out.div_ceil(NR);
    let mut m = 0;
    while m < rows {
        let mr = (rows - m).min(MR);
        for p in 0..panels {
            let cols = (n_out - p * NR).min(NR);
            block(a, m, mr, n_in, &packed[p * n_in * NR..(p + 1) * n_in * NR], p * NR, cols, n_out, init, out);
        }
        m += mr;
    }
}

/// One `mr × cols` block (mr ≤ 6, cols ≤ 16) at rows `m..m+mr`, columns `c0..c0+cols`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn block(
    a: &[f32],
    m: usize,
    mr: usize,
    n_in: usize,
    panel: &[f32],
    c0: usize,
    cols: usize,
    n_out: usize,
    init: Init,
    out: &mut [f32],
) {
    // Starting values, staged through a 16-wide buffer so partial panels need no masks.
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for (r, row_acc) in acc.iter_mut().enumerate().take(mr) {
        let mut start = [0f32; NR];
        start_row(init, out, m + r, c0, cols, n_out, &mut start);
        row_acc[0] = _mm256_loadu_ps(start.as_ptr());
        row_acc[1] = _mm256_loadu_ps(start.as_ptr().add(8));
    }
    let ap = a.as_ptr().add(m * n_in);
    let bp = panel.as_ptr();
    if mr == MR {
        let [mut c00, mut c01] = acc[0];
        let [mut c10, mut c11] = acc[1];
        let [mut c20, mut c21] = acc[2];
        let [mut c30, mut c31] = acc[3];
        let [mut c40, mut c41] = acc[4];
        let [mut c50, mut c51] = acc[5];
        for k in 0..n_in {
            let b0 = _mm256_loadu_ps(bp.add(k * NR));
            let b1 = _mm256_loadu_ps(bp.add(k * NR + 8));
            let a0 = _mm256_broadcast_ss(&*ap.add(k));
            c00 = _mm256_fmadd_ps(a0, b0, c00);
            c01 = _mm256_fmadd_ps(a0, b1, c01);
            let a1 = _mm256_broadcast_ss(&*ap.add(n_in + k));
            c10 = _mm256_fmadd_ps(a1, b0, c10);
            c11 = _mm256_fmadd_ps(a1, b1, c11);
            let a2 = _mm256_broadcast_ss(&*ap.add(2 * n_in + k));
            c20 = _mm256_fmadd_ps(a2, b0, c20);
            c21 = _mm256_fmadd_ps(a2, b1, c21);
            let a3 = _mm256_broadcast_ss(&*ap.add(3 * n_in + k));
            c30 = _mm256_fmadd_ps(a3, b0, c30);
            c31 = _mm256_fmadd_ps(a3, b1, c31);
            let a4 = _mm256_broadcast_ss(&*ap.add(4 * n_in + k));
            c40 = _mm256_fmadd_ps(a4, b0, c40);
            c41 = _mm256_fmadd_ps(a4, b1, c41);
            let a5 = _mm256_broadcast_ss(&*ap.add(5 * n_in + k));
            c50 = _mm256_fmadd_ps(a5, b0, c50);
            c51 = _mm256_fmadd_ps(a5, b1, c51);
        }
        acc = [[c00, c01], [c10, c11], [c20, c21], [c30, c31], [c40, c41], [c50, c51]];
    } else {
        for k in 0..n_in {
            let b0 = _mm256_loadu_ps(bp.add(k * NR));
            let b1 = _mm256_loadu_ps(bp.add(k * NR + 8));
            for (r, row_acc) in acc.iter_mut().enumerate().take(mr) {
                let av = _mm256_broadcast_ss(&*ap.add(r * n_in + k));
                row_acc[0] = _mm256_fmadd_ps(av, b0, row_acc[0]);
                row_acc[1] = _mm256_fmadd_ps(av, b1, row_acc[1]);
            }
        }
    }
    for (r, row_acc) in acc.iter().enumerate().take(mr) {
        let dst = &mut out[(m + r) * n_out + c0..(m + r) * n_out + c0 + cols];
        if cols == NR {
            _mm256_storeu_ps(dst.as_mut_ptr(), row_acc[0]);
            _mm256_storeu_ps(dst.as_mut_ptr().add(8), row_acc[1]);
        } else {
            let mut tmp = [0f32; NR];
            _mm256_storeu_ps(tmp.as_mut_ptr(), row_acc[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), row_acc[1]);
            dst.copy_from_slice(&tmp[..cols]);
        }
    }
}
