//! The AVX-512 int8 kernels: `R ≤ 12` rows × two 16-column panels per register block, one zmm
//! of int32 lanes per row and panel (24 accumulators). One zmm of packed weights holds a whole
//! panel's pair of `k` (16 columns × 2 int16), so per pair of `k` a block loads two weight
//! vectors and, per row, broadcasts the row's two activations (as one int32) into two dot
//! products:
//!
//! - [`gemm_bw`] (AVX-512BW): `vpmaddwd` (i16 × i16 pair sums into int32) then `vpaddd`;
//! - [`gemm_vnni`] (AVX-512 VNNI): `vpdpwssd`, the same multiply, pair sum and accumulation in
//!   one instruction (non-saturating: the same wrap-free int32 sums, see [`super::input_qmax`]).
//!
//! The epilogue is the shared float32 rescale `fma(float(Σ), s_x·s_w, start)`, with masks for a
//! partial last panel, so both equal the other paths bit for bit.

use super::{Init, QuantWeights, NR};
use std::arch::x86_64::*;

/// Rows per register block.
pub const MR: usize = 12;

/// Where a block reads and writes.
struct Args<'a> {
    xq: *const i16,
    xs: &'a [f32],
    m: usize,
    w: &'a QuantWeights,
    p: usize,
    init: Init<'a>,
    out: *mut f32,
}

/// `block::<R, P>` for the block's row count `mr` (1..=12) and panel count (2 or 1).
macro_rules! dispatch {
    ($block:ident, $mr:expr, $two:expr, $g:expr; $($r:literal)*) => {
        match ($mr, $two) {
            $(($r, true) => $block::<$r, 2>($g), ($r, false) => $block::<$r, 1>($g),)*
            _ => unreachable!(),
        }
    };
}

macro_rules! kernel {
    ($gemm:ident, $block:ident, $features:literal, $dot:expr) => {
        /// The int8 product (see [`super::gemm`]).
        ///
        /// # Safety
        /// The CPU must have every feature the function enables, and the slices must be as
        /// large as [`super::gemm_with`] asserts (it is the safe entry point).
        #[target_feature(enable = $features)]
        pub unsafe fn $gemm(xq: &[i16], xs: &[f32], rows: usize, w: &QuantWeights, init: Init, out: &mut [f32]) {
            let panels = w.n_out.div_ceil(NR);
            let mut m = 0;
            while m < rows {
                let mr = (rows - m).min(MR);
                let mut p = 0;
                while p < panels {
                    let two = panels - p >= 2;
                    let g = Args { xq: xq.as_ptr(), xs, m, w, p, init, out: out.as_mut_ptr() };
                    dispatch!($block, mr, two, &g; 1 2 3 4 5 6 7 8 9 10 11 12);
                    p += if two { 2 } else { 1 };
                }
                m += mr;
            }
        }

        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $block<const R: usize, const P: usize>(g: &Args) {
            let w = g.w;
            let (kp, n_out) = (w.k_pairs(), w.n_out);
            let mut acc = [[_mm512_setzero_si512(); P]; R];
            let wp = w.packed.as_ptr().add(g.p * kp * NR * 2);
            let xp = g.xq.add(g.m * kp * 2) as *const i32;
            for kk in 0..kp {
                let mut wv = [_mm512_setzero_si512(); P];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(wp.add(j * kp * NR * 2 + kk * NR * 2) as *const _);
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_epi32(std::ptr::read_unaligned(xp.add(r * kp + kk)));
                    for (a, wj) in row.iter_mut().zip(&wv) {
                        *a = $dot(*a, x, *wj);
                    }
                }
            }
            for j in 0..P {
                let c0 = (g.p + j) * NR;
                let cols = (n_out - c0).min(NR);
                let mask: u16 = if cols == NR { u16::MAX } else { (1u16 << cols) - 1 };
                let ws = _mm512_maskz_loadu_ps(mask, w.scales.as_ptr().add(c0));
                for (r, row) in acc.iter().enumerate() {
                    let dst = g.out.add((g.m + r) * n_out + c0);
                    let start = match g.init {
                        Init::Zero => _mm512_setzero_ps(),
                        Init::Bias(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(c0)),
                        Init::Accumulate(None) => _mm512_maskz_loadu_ps(mask, dst),
                        Init::Accumulate(Some(b)) => {
                            _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), _mm512_maskz_loadu_ps(mask, b.as_ptr().add(c0)))
                        }
                    };
                    let scale = _mm512_mul_ps(_mm512_set1_ps(g.xs[g.m + r]), ws);
                    let y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(row[j]), scale, start);
                    _mm512_mask_storeu_ps(dst, mask, y);
                }
            }
        }
    };
}

/// `vpmaddwd` + `vpaddd`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn madd_add(acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
}

/// `vpdpwssd`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dpwssd(acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
    _mm512_dpwssd_epi32(acc, x, w)
}

kernel!(gemm_bw, block_bw, "avx512f,avx512bw,avx2,fma", madd_add);
kernel!(gemm_vnni, block_vnni, "avx512f,avx512bw,avx512vnni,avx2,fma", dpwssd);
