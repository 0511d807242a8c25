//! The dense-layer kernel: `C[M, N] = A[M, K] · Wᵀ (+ C) (+ b)` with `W` pre-packed in panels of
//! 16 output columns (`packed[panel][k][16]`), computed 6 rows × 16 columns at a time in
//! registers with AVX2 + FMA (12 accumulators, 2 weight loads and 6 broadcasts per `k`).
//!
//! Every output element is one fused multiply-add chain over `k = 0..K` in order, started from
//! the bias (or the existing output): the result of a row never depends on how many rows are
//! computed with it, so batching and threading cannot change a number. [`reference`] is the
//! same chain written plainly; CPUs without AVX2/FMA use it.

/// Output columns per panel.
pub const NR: usize = 16;
/// Rows per register block.
pub const MR: usize = 6;

/// Packs `weight` (`[n_out, n_in]`, row-major) into panels of [`NR`] output columns.
pub fn pack(weight: &[f32], n_out: usize, n_in: usize) -> Vec<f32> {
    let panels = n_out.div_ceil(NR);
    let mut packed = vec![0f32; panels * n_in * NR];
    for o in 0..n_out {
        let (p, c) = (o / NR, o % NR);
        for k in 0..n_in {
            packed[(p * n_in + k) * NR + c] = weight[o * n_in + k];
        }
    }
    packed
}

/// How each output starts before the products are added.
#[derive(Debug, Clone, Copy)]
pub enum Init<'a> {
    Zero,
    Bias(&'a [f32]),
    /// Keep the existing output (and add `bias` when given).
    Accumulate(Option<&'a [f32]>),
}

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static DETECTED: OnceLock<bool> = OnceLock::new();
        *DETECTED.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[m, :] = init + a[m, :] · Wᵀ` for `m < rows`.
pub fn gemm(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    assert!(a.len() >= rows * n_in && out.len() >= rows * n_out);
    assert_eq!(packed.len(), n_out.div_ceil(NR) * n_in * NR);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked), and the asserts above bound every
        // access the kernel makes.
        unsafe { avx2::gemm(a, rows, n_in, packed, n_out, init, out) };
        return;
    }
    reference(a, rows, n_in, packed, n_out, init, out);
}

/// The plain twin: the same multiply-add chain per element, one element at a time.
pub fn reference(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    for m in 0..rows {
        for o in 0..n_out {
            let (p, c) = (o / NR, o % NR);
            let mut acc = match init {
                Init::Zero => 0.0,
                Init::Bias(b) => b[o],
                Init::Accumulate(b) => out[m * n_out + o] + b.map_or(0.0, |b| b[o]),
            };
            for k in 0..n_in {
                acc = a[m * n_in + k].mul_add(packed[(p * n_in + k) * NR + c], acc);
            }
            out[m * n_out + o] = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Init, MR, NR};
    use std::arch::x86_64::*;

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
            match init {
                Init::Zero => {}
                Init::Bias(b) => start[..cols].copy_from_slice(&b[c0..c0 + cols]),
                Init::Accumulate(b) => {
                    start[..cols].copy_from_slice(&out[(m + r) * n_out + c0..(m + r) * n_out + c0 + cols]);
                    if let Some(b) = b {
                        for (s, &bv) in start[..cols].iter_mut().zip(&b[c0..c0 + cols]) {
                            *s += bv;
                        }
                    }
                }
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn kernel_equals_reference_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for &(rows, n_in, n_out) in &[(1, 1, 1), (5, 7, 3), (6, 128, 128), (13, 128, 21), (48, 512, 128), (7, 416, 130)]
        {
            let a: Vec<f32> = (0..rows * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let w: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..n_out).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let packed = pack(&w, n_out, n_in);
            for init in [Init::Zero, Init::Bias(&b), Init::Accumulate(Some(&b)), Init::Accumulate(None)] {
                let start: Vec<f32> = (0..rows * n_out).map(|i| i as f32 * 0.01).collect();
                let mut fast = start.clone();
                let mut slow = start.clone();
                gemm(&a, rows, n_in, &packed, n_out, init, &mut fast);
                reference(&a, rows, n_in, &packed, n_out, init, &mut slow);
                assert_eq!(fast, slow, "{rows}x{n_in}x{n_out} {init:?}");
            }
        }
    }

    #[test]
    fn rows_do_not_depend_on_the_batch() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let (n_in, n_out) = (128, 128);
        let a: Vec<f32> = (0..50 * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let w: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let packed = pack(&w, n_out, n_in);
        let mut all = vec![0f32; 50 * n_out];
        gemm(&a, 50, n_in, &packed, n_out, Init::Zero, &mut all);
        for r in [0, 5, 6, 37, 49] {
            let mut one = vec![0f32; n_out];
            gemm(&a[r * n_in..(r + 1) * n_in], 1, n_in, &packed, n_out, Init::Zero, &mut one);
            assert_eq!(one, all[r * n_out..(r + 1) * n_out]);
        }
    }
}
