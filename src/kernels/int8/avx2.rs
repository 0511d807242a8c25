//! The AVX2 int8 kernel: `R ≤ 6` rows × one 16-column panel, per pair of `k` two weight loads,
//! and per row one broadcast of the two int16 activations (as one int32) and two dot products
//! (i16 × i16 pair sums into int32 lanes) added into 2 ymm accumulators: `vpmaddwd` + `vpaddd`
//! ([`gemm`]), or where the CPU has 256-bit VNNI, `vpdpwssd`, the same multiply, pair sum and
//! accumulation in one instruction, in its VEX (AVX-VNNI, [`gemm_vnni_vex`]) or EVEX (AVX-512
//! VNNI + VL, [`gemm_vnni_evex`]) encoding (see [`super::avx_vnni`]). The sums are exact, so the
//! three give the same bits.

use super::{start, Init, QuantWeights, MR, NR};
use std::arch::x86_64::*;

/// `vpmaddwd` + `vpaddd`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn madd_add(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
}

/// `vpdpwssd` on ymm in one encoding, as inline assembly (LLVM would pick the encoding from the
/// enabled features, and split the intrinsic into `vpmaddwd` + `vpaddd` where it sees fit).
macro_rules! dpwssd {
    ($name:ident, $features:literal, $op:literal, $doc:literal) => {
        #[doc = $doc]
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $name(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
            let mut acc = acc;
            std::arch::asm!(concat!($op, " {acc}, {x}, {w}"), acc = inout(ymm_reg) acc, x = in(ymm_reg) x,
                w = in(ymm_reg) w, options(pure, nomem, nostack));
            acc
        }
    };
}

dpwssd!(dpwssd_vex, "avx2,avxvnni", "{{vex}} vpdpwssd", "`{vex} vpdpwssd` (AVX-VNNI).");
dpwssd!(
    dpwssd_evex,
    "avx2,avx512f,avx512vl,avx512vnni",
    "{{evex}} vpdpwssd",
    "`{evex} vpdpwssd` on ymm (AVX-512 VNNI + VL)."
);

macro_rules! kernel {
    ($gemm:ident, $block:ident, $features:literal, $dot:ident) => {
        /// The int8 product (see [`super::gemm`]).
        ///
        /// # Safety
        /// The CPU must have AVX2 and FMA, and the slices must be as large as [`super::gemm_with`]
        /// asserts (it is the safe entry point).
        #[target_feature(enable = $features)]
        pub unsafe fn $gemm(xq: &[i16], xs: &[f32], rows: usize, w: &QuantWeights, init: Init, out: &mut [f32]) {
            let panels = w.n_out.div_ceil(NR);
            let mut m = 0;
            while m < rows {
                let mr = (rows - m).min(MR);
                for p in 0..panels {
                    by_rows_6!(mr, $block(xq, xs, m, w, p, init, out))
                }
                m += mr;
            }
        }

        /// `R` rows × one 16-column panel. Per pair of `k`: two weight loads, and per row one
        /// broadcast of the two activations (as one int32) and two `vpmaddwd` into int32 lanes.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $block<const R: usize>(
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
                    a[0] = $dot(a[0], x, w0);
                    a[1] = $dot(a[1], x, w1);
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
                let y1 = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(a[1]),
                    _mm256_mul_ps(sx, ws1),
                    _mm256_loadu_ps(s.as_ptr().add(8)),
                );
                _mm256_storeu_ps(s.as_mut_ptr(), y0);
                _mm256_storeu_ps(s.as_mut_ptr().add(8), y1);
                out[(m + r) * n_out + c0..][..cols].copy_from_slice(&s[..cols]);
            }
        }
    };
}

kernel!(gemm, block, "avx2,fma", madd_add);
kernel!(gemm_vnni_vex, block_vnni_vex, "avx2,fma,avxvnni", dpwssd_vex);
kernel!(gemm_vnni_evex, block_vnni_evex, "avx2,fma,avx512f,avx512vl,avx512vnni", dpwssd_evex);

/// [`super::w8a8::quantize_rows_into`] on ymm, row by row: the twin's codes (tested equal) by
/// the operations of the AVX-512 quantizer ([`super::avx512::quantize_rows8`]): extremes by
/// `vminps`/`vmaxps` (exact in any order) beside a running sum that is finite only if every
/// value is (other rows take the twin), then per value `cvt(v·inv)` (round to nearest even, as
/// the twin's 1.5·2²³ trick) plus the zero point and `min(·, 255)`, narrowed with two saturating
/// packs (exact: the codes are in −128..=127). A row's last `n mod 8` values take the twin's own
/// scalar code.
///
/// # Safety
/// The CPU must have AVX2; the sizes must pass `quantize_rows_into`'s asserts.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quantize_rows8(x: &[f32], n: usize, out: super::w8a8::RowsMut) {
    use super::w8a8::{code, quantize_row_portable, row_params};
    let w = out.width;
    let full = n / 8 * 8;
    for r in 0..out.scale.len() {
        let src = &x[r * n..(r + 1) * n];
        let codes = &mut out.q[r * w..(r + 1) * w];
        codes[n..].fill(0);
        let p = src.as_ptr();
        let z = _mm256_setzero_ps();
        let (mut lo, mut hi, mut fin) = ([z; 2], [z; 2], [z; 2]);
        let mut i = 0;
        while i + 16 <= full {
            for (j, off) in [0, 8].into_iter().enumerate() {
                let v = _mm256_loadu_ps(p.add(i + off));
                lo[j] = _mm256_min_ps(lo[j], v);
                hi[j] = _mm256_max_ps(hi[j], v);
                fin[j] = _mm256_add_ps(fin[j], v);
            }
            i += 16;
        }
        if i < full {
            let v = _mm256_loadu_ps(p.add(i));
            lo[0] = _mm256_min_ps(lo[0], v);
            hi[0] = _mm256_max_ps(hi[0], v);
            fin[0] = _mm256_add_ps(fin[0], v);
        }
        let (lo, hi, fin) = (_mm256_min_ps(lo[0], lo[1]), _mm256_max_ps(hi[0], hi[1]), _mm256_add_ps(fin[0], fin[1]));
        let (mut l, mut h) = (reduce(lo, f32::min), reduce(hi, f32::max));
        let mut finite = all_finite(fin);
        for &v in &src[full..] {
            (l, h, finite) = (l.min(v), h.max(v), finite && v.is_finite());
        }
        if !finite {
            (out.scale[r], out.zero[r], out.sum[r]) = quantize_row_portable(src, &mut codes[..n]);
            continue;
        }
        let Some((inv, zero)) = row_params(l, h, false) else {
            codes[..n].fill(0);
            (out.scale[r], out.zero[r], out.sum[r]) = (0.0, 128, 0);
            continue;
        };
        let (vinv, offset, top) = (_mm256_set1_ps(inv), _mm256_set1_epi32(zero as i32 - 128), _mm256_set1_epi32(127));
        let mut sum = _mm256_setzero_si256();
        let dst = codes.as_mut_ptr();
        let mut i = 0;
        while i < full {
            let t = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(p.add(i)), vinv));
            let c = _mm256_min_epi32(_mm256_add_epi32(t, offset), top);
            sum = _mm256_add_epi32(sum, c);
            // int32 → int8 (in-lane packs: bytes 0-3 of each 128-bit lane hold its 4 codes).
            let b = _mm256_packs_epi16(_mm256_packs_epi32(c, c), _mm256_setzero_si256());
            let (b0, b1) = (_mm256_castsi256_si128(b), _mm256_extracti128_si256::<1>(b));
            _mm_storel_epi64(dst.add(i) as *mut __m128i, _mm_unpacklo_epi32(b0, b1));
            i += 8;
        }
        let lanes: [i32; 8] = std::mem::transmute(sum);
        let mut total = lanes.iter().fold(0i32, |a, &b| a.wrapping_add(b));
        for (d, &v) in codes[full..n].iter_mut().zip(&src[full..]) {
            let c = code(v, inv, zero);
            *d = c as i8;
            total = total.wrapping_add(c);
        }
        (out.scale[r], out.zero[r], out.sum[r]) = ((h - l) / 255.0, zero as i32, total);
    }
}

/// The lanes of `v` folded with `f` (a minimum or maximum: exact in any order).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn reduce(v: __m256, f: fn(f32, f32) -> f32) -> f32 {
    let lanes: [f32; 8] = std::mem::transmute(v);
    lanes.into_iter().reduce(f).unwrap_or(0.0)
}

/// Whether every lane of `v` is finite (`v·0` is 0 for a finite lane, NaN otherwise).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn all_finite(v: __m256) -> bool {
    let z = _mm256_mul_ps(v, _mm256_setzero_ps());
    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(z, z)) == 0
}
