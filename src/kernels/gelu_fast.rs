//! A cheaper GELU for the int8 models (`--precision int8`): `x·Φ(x)` with `Φ` as a cubic
//! Hermite interpolant on 16 intervals of `[-4, 4]` that runs from exactly 0 at −4 to 1 at 4
//! (absolute error below 1.3e-4 against the exact GELU, against the ~1e-2 quantization step of
//! the int8 layers it feeds), `x` clamped to that range for the lookup — no division, no `erf`,
//! no branch: 15 vector operations. Below −4 the product is `x·0`, above 4 `x·Φ̃(4) ≈ x`.
//!
//! Per value: `u = fma(clamp(x, −4, 4), 2, 8)`, `i = min(trunc(u), 15)`, `t = u − i`,
//! `p = fma(fma(fma(c3[i], t, c2[i]), t, c1[i]), t, c0[i])`, `gelu ≈ x·p`. The AVX-512 form
//! looks the coefficients up with `vpermps` (one zmm holds each of the 4 tables), the AVX2
//! form with two `vpermps` and a blend per table (entries 0-7 and 8-15 in two ymm); the plain
//! twin indexes arrays and uses `f32::mul_add` (a fused multiply-add, as the vector forms'). All
//! three run the same float32 operations in the same order, so they give the same bits (tested).
//! A NaN stays NaN (the clamp maps it to −4, and `NaN·0` is NaN). The float32 model keeps
//! [`super::gelu_inplace`].

use std::sync::OnceLock;

/// Intervals per unit of `x` (16 intervals over `[-4, 4]`).
const PER_UNIT: f32 = 2.0;

/// `[c0, c1, c2, c3]` tables: `Φ(−4 + (i + t)/2) ≈ c0[i] + t·(c1[i] + t·(c2[i] + t·c3[i]))`,
/// the cubic Hermite interpolant of `Φ` and its derivative at the interval ends, with `Φ(−4)`
/// taken as 0 and `Φ(4)` as 1 (the true values are 3.2e-5 from those), so that the clamped
/// lookup gives `x·0` far below −4 and `≈ x` far above 4.
fn tables() -> &'static [[f32; 16]; 4] {
    static T: OnceLock<[[f32; 16]; 4]> = OnceLock::new();
    T.get_or_init(|| {
        let cdf = |x: f64| match x {
            x if x <= -4.0 => 0.0,
            x if x >= 4.0 => 1.0,
            x => 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        };
        let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let h = 1.0 / PER_UNIT as f64;
        let mut c = [[0f32; 16]; 4];
        #[allow(clippy::needless_range_loop)]
        for i in 0..16 {
            let a = -4.0 + i as f64 * h;
            let (f0, f1, d0, d1) = (cdf(a), cdf(a + h), h * pdf(a), h * pdf(a + h));
            c[0][i] = f0 as f32;
            c[1][i] = d0 as f32;
            c[2][i] = (3.0 * (f1 - f0) - 2.0 * d0 - d1) as f32;
            c[3][i] = (2.0 * (f0 - f1) + d0 + d1) as f32;
        }
        c
    })
}

/// The plain twin, one value.
#[inline(always)]
fn one(x: f32, c: &[[f32; 16]; 4]) -> f32 {
    // `max` first: a NaN becomes −4 (as `vmaxps(x, −4)` gives), the lookup then gives p = 0
    // (`clamp` would keep the NaN, and a NaN index is no index).
    #[allow(clippy::manual_clamp)]
    let u = x.max(-4.0).min(4.0).mul_add(PER_UNIT, 4.0 * PER_UNIT);
    // SAFETY: u is in [0, 16].
    let i = unsafe { u.to_int_unchecked::<i32>() }.min(15);
    let t = u - i as f32;
    let i = i as usize;
    let p = c[3][i].mul_add(t, c[2][i]).mul_add(t, c[1][i]).mul_add(t, c[0][i]);
    x * p
}

/// `x ← gelu(x)` (the approximation above), on the kernels' path.
pub fn gelu_fast_inplace(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match super::isa::active() {
        // SAFETY: each path runs only where the CPU has its features (checked by `isa`).
        super::isa::Isa::Avx512 => return unsafe { avx512(x) },
        super::isa::Isa::Avx2 => return unsafe { avx2(x) },
        super::isa::Isa::Portable => {}
    }
    portable(x);
}

/// The plain twin of [`gelu_fast_inplace`].
pub fn portable(x: &mut [f32]) {
    let c = tables();
    for v in x.iter_mut() {
        *v = one(*v, c);
    }
}

/// The AVX-512 form of [`one`] on 16 lanes: the tables in four zmm, looked up with `vpermps`.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx512 {
    c: [std::arch::x86_64::__m512; 4],
}

#[cfg(target_arch = "x86_64")]
impl Avx512 {
    /// # Safety
    /// The CPU must have AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn new() -> Avx512 {
        use std::arch::x86_64::*;
        let t = tables();
        Avx512 { c: [0, 1, 2, 3].map(|i| _mm512_loadu_ps(t[i].as_ptr())) }
    }

    /// `gelu(v)` lane by lane, the twin's operations.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn apply(&self, v: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        let [c0, c1, c2, c3] = self.c;
        // `vmaxps(v, −4)` returns −4 for a NaN lane, as the twin's `max`.
        let x = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
        let u = _mm512_fmadd_ps(x, _mm512_set1_ps(PER_UNIT), _mm512_set1_ps(4.0 * PER_UNIT));
        let idx = _mm512_min_epi32(_mm512_cvttps_epi32(u), _mm512_set1_epi32(15));
        let t = _mm512_sub_ps(u, _mm512_cvtepi32_ps(idx));
        let mut p = _mm512_permutexvar_ps(idx, c3);
        p = _mm512_fmadd_ps(p, t, _mm512_permutexvar_ps(idx, c2));
        p = _mm512_fmadd_ps(p, t, _mm512_permutexvar_ps(idx, c1));
        p = _mm512_fmadd_ps(p, t, _mm512_permutexvar_ps(idx, c0));
        _mm512_mul_ps(v, p)
    }
}

/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512(x: &mut [f32]) {
    use std::arch::x86_64::*;
    let g = Avx512::new();
    let n = x.len();
    let ptr = x.as_mut_ptr();
    let mut i = 0;
    // Two vectors per step, plain loads and stores (the chain of one vector is ~20 dependent
    // operations: two in flight keep the pipes busier; masked memory operations only for the
    // tail).
    while i + 32 <= n {
        let (a, b) = (_mm512_loadu_ps(ptr.add(i)), _mm512_loadu_ps(ptr.add(i + 16)));
        let (a, b) = (g.apply(a), g.apply(b));
        _mm512_storeu_ps(ptr.add(i), a);
        _mm512_storeu_ps(ptr.add(i + 16), b);
        i += 32;
    }
    while i < n {
        let left = n - i;
        let m: u16 = if left >= 16 { u16::MAX } else { (1u16 << left) - 1 };
        let v = _mm512_maskz_loadu_ps(m, ptr.add(i));
        _mm512_mask_storeu_ps(ptr.add(i), m, g.apply(v));
        i += 16;
    }
}

/// The AVX2 form of [`one`] on 8 lanes: each 16-entry table in two ymm (entries 0-7 and
/// 8-15), looked up with two `vpermps` and a blend on the index's bit 3.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2 {
    lo: [std::arch::x86_64::__m256; 4],
    hi: [std::arch::x86_64::__m256; 4],
}

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    /// # Safety
    /// The CPU must have AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn new() -> Avx2 {
        use std::arch::x86_64::*;
        let t = tables();
        Avx2 {
            lo: [0, 1, 2, 3].map(|i| _mm256_loadu_ps(t[i].as_ptr())),
            hi: [0, 1, 2, 3].map(|i| _mm256_loadu_ps(t[i].as_ptr().add(8))),
        }
    }

    /// `gelu(v)` lane by lane, the twin's operations (as [`Avx512::apply`]).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply(&self, v: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        let x = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0));
        let u = _mm256_fmadd_ps(x, _mm256_set1_ps(PER_UNIT), _mm256_set1_ps(4.0 * PER_UNIT));
        let idx = _mm256_min_epi32(_mm256_cvttps_epi32(u), _mm256_set1_epi32(15));
        let t = _mm256_sub_ps(u, _mm256_cvtepi32_ps(idx));
        let upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
        let c = |j: usize| {
            _mm256_blendv_ps(
                _mm256_permutevar8x32_ps(self.lo[j], idx),
                _mm256_permutevar8x32_ps(self.hi[j], idx),
                upper,
            )
        };
        let mut p = c(3);
        p = _mm256_fmadd_ps(p, t, c(2));
        p = _mm256_fmadd_ps(p, t, c(1));
        p = _mm256_fmadd_ps(p, t, c(0));
        _mm256_mul_ps(v, p)
    }
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2(x: &mut [f32]) {
    use std::arch::x86_64::*;
    let g = Avx2::new();
    let (n, ptr) = (x.len(), x.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        let (a, b) = (_mm256_loadu_ps(ptr.add(i)), _mm256_loadu_ps(ptr.add(i + 8)));
        let (a, b) = (g.apply(a), g.apply(b));
        _mm256_storeu_ps(ptr.add(i), a);
        _mm256_storeu_ps(ptr.add(i + 8), b);
        i += 16;
    }
    // The tail through a staging vector.
    if i < n {
        let mut tail = [0f32; 16];
        let left = n - i;
        tail[..left].copy_from_slice(&x[i..]);
        let (a, b) = (g.apply(_mm256_loadu_ps(tail.as_ptr())), g.apply(_mm256_loadu_ps(tail.as_ptr().add(8))));
        _mm256_storeu_ps(tail.as_mut_ptr(), a);
        _mm256_storeu_ps(tail.as_mut_ptr().add(8), b);
        x[i..].copy_from_slice(&tail[..left]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_gelu_and_identical_on_every_path() {
        let mut xs: Vec<f32> = (-120_001..=120_001).map(|i| i as f32 * 5e-5).collect();
        xs.extend([-4.0, 4.0, -3.99999, 3.99999, 100.0, -100.0, f32::INFINITY, f32::NEG_INFINITY, -0.0]);
        let mut slow = xs.clone();
        portable(&mut slow);
        let mut worst = 0f32;
        for (&x, &y) in xs.iter().zip(&slow) {
            if x.is_finite() {
                worst = worst.max((y - super::super::naive::gelu(x)).abs());
            }
        }
        assert!(worst < 1.5e-4, "gelu_fast error {worst}");
        let mut nan = [f32::NAN];
        portable(&mut nan);
        assert!(nan[0].is_nan());
        // Far outside the table: x·0 below −4, x (to a float's precision) above 4.
        let mut far = [-100.0f32, -4.5, 4.5, 100.0, f32::INFINITY];
        portable(&mut far);
        assert_eq!(far[..2], [0.0, 0.0]);
        assert!((far[2] - 4.5).abs() < 1e-6 && (far[3] - 100.0).abs() < 1e-4 && far[4] == f32::INFINITY, "{far:?}");
        #[cfg(target_arch = "x86_64")]
        {
            if !(super::super::isa::cpu_has("avx2") && super::super::isa::cpu_has("fma")) {
                eprintln!("skipped: CPU lacks avx2/fma (fast GELU AVX2 form)");
            } else {
                for len in [xs.len(), 1, 7, 15, 16, 17, 33] {
                    let mut fast = xs[..len].to_vec();
                    // SAFETY: the CPU has AVX2 and FMA (checked above).
                    unsafe { avx2(&mut fast) };
                    let a: Vec<u32> = fast.iter().map(|v| v.to_bits()).collect();
                    let b: Vec<u32> = slow[..len].iter().map(|v| v.to_bits()).collect();
                    assert!(a == b, "AVX2 fast GELU differs from its twin (len {len})");
                }
                let mut nan = [1.0, f32::NAN, 2.0];
                unsafe { avx2(&mut nan) };
                assert!(nan[1].is_nan());
            }
            if !super::super::isa::cpu_has("avx512f") {
                eprintln!("skipped: CPU lacks avx512f (fast GELU AVX-512 form)");
                return;
            }
            for len in [xs.len(), 1, 15, 17, 33] {
                let mut fast = xs[..len].to_vec();
                // SAFETY: the CPU has AVX-512F (checked above).
                unsafe { avx512(&mut fast) };
                let a: Vec<u32> = fast.iter().map(|v| v.to_bits()).collect();
                let b: Vec<u32> = slow[..len].iter().map(|v| v.to_bits()).collect();
                assert!(a == b, "AVX-512 fast GELU differs from its twin (len {len})");
            }
            let mut nan = [1.0, f32::NAN, 2.0];
            unsafe { avx512(&mut nan) };
            assert!(nan[1].is_nan());
        }
    }
}
