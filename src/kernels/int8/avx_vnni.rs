//! The AVX2-width W8A8 product with VNNI's 256-bit `vpdpbusd` (see [`super::w8a8`]): the int8
//! kernel of the AVX2 path on CPUs that have VNNI but no AVX-512 (AVX-VNNI: Intel's Alder Lake
//! and later client cores, Sierra Forest's E-cores; Zen 5 has it too), where W8A8 otherwise fell
//! to its plain twin, 14× slower than this.
//!
//! The instruction has two encodings with the same semantics: VEX (`{vex} vpdpbusd`, the
//! AVX-VNNI extension) and EVEX (`{evex} vpdpbusd` on ymm, AVX-512 VNNI with AVX-512VL). A CPU
//! may have either or both, so the kernel is written once ([`kernel!`]) and compiled for each:
//! [`gemm_w8a8_vex`] runs on AVX-VNNI CPUs, [`gemm_w8a8_evex`] on AVX-512 VNNI CPUs when the
//! AVX2 path is forced (`MPNN_ISA=avx2`), which is how it is tested and measured on a machine
//! without AVX-VNNI. Inline assembly, not the intrinsic, picks the encoding (LLVM chooses one
//! from the enabled features otherwise) and keeps the multiply and the accumulation one
//! instruction.
//!
//! `R ≤ 6` rows × one 16-column panel per register block: per quad of `k` the panel's 64 bytes
//! of weights (16 columns × 4 offset uint8, the unsigned operand) in two ymm, and per row one
//! broadcast of the row's 4 signed codes (one int32) into two `vpdpbusd` (12 accumulators, 2
//! weight registers and 1 broadcast: 15 of the 16 ymm registers VEX can name). The sums are
//! exact int32 arithmetic, and the epilogue is the twin's float32 rescale
//! `fma(float(Σ − 128·Σx_s + (128 − z)·Σq_w), s_x·s_w, start)`, so every kernel gives the
//! bits of [`super::w8a8::gemm_portable`] (tested).

use super::w8a8::{check, row_term, RowsRef, Weights, KQ};
use super::{start, Init, NR};
use std::arch::x86_64::*;

/// Rows per register block.
const MR: usize = 6;

macro_rules! kernel {
    ($gemm:ident, $block:ident, $features:literal, $dot:literal) => {
        /// The W8A8 product on ymm (see the module documentation).
        ///
        /// # Safety
        /// The CPU must have every feature the function enables; the arguments are checked
        /// (as [`super::w8a8::gemm`] checks them) before any access.
        #[target_feature(enable = $features)]
        pub unsafe fn $gemm(x: RowsRef, rows: usize, w: &Weights, init: Init, out: &mut [f32]) {
            check(x, rows, w, init, out);
            let panels = w.n_out.div_ceil(NR);
            let mut m = 0;
            while m < rows {
                let mr = (rows - m).min(MR);
                for p in 0..panels {
                    by_rows_6!(mr, $block(x, m, w, p, init, out))
                }
                m += mr;
            }
        }

        /// Rows `m..m + R` × panel `p`.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $block<const R: usize>(x: RowsRef, m: usize, w: &Weights, p: usize, init: Init, out: &mut [f32]) {
            let (kq, width) = (w.k_quads(), x.width);
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            let wp = w.packed.as_ptr().add(p * kq * NR * KQ);
            let xp = x.q.as_ptr().add(m * width);
            for kk in 0..kq {
                let w0 = _mm256_loadu_si256(wp.add(kk * NR * KQ) as *const __m256i);
                let w1 = _mm256_loadu_si256(wp.add(kk * NR * KQ + 32) as *const __m256i);
                for (r, a) in acc.iter_mut().enumerate() {
                    let xv = _mm256_set1_epi32(std::ptr::read_unaligned(xp.add(r * width + kk * KQ) as *const i32));
                    // acc += Σ_{j<4} u8(w[c·4 + j]) · i8(x[j]) per int32 lane c.
                    std::arch::asm!(concat!($dot, " {a0}, {w0}, {x}"), concat!($dot, " {a1}, {w1}, {x}"),
                        a0 = inout(ymm_reg) a[0], a1 = inout(ymm_reg) a[1], w0 = in(ymm_reg) w0,
                        w1 = in(ymm_reg) w1, x = in(ymm_reg) xv, options(pure, nomem, nostack));
                }
            }
            epilogue(x, m, w, p, init, out, &acc);
        }
    };
}

kernel!(gemm_w8a8_vex, block_vex, "avx2,fma,avxvnni", "{{vex}} vpdpbusd");
kernel!(gemm_w8a8_evex, block_evex, "avx2,fma,avx512f,avx512vl,avx512vnni", "{{evex}} vpdpbusd");

/// The rescale of a block's sums into `out`, the twin's float32 expression per output (for a
/// partial last panel through a staging row, so that it reads and writes only its own columns).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn epilogue<const R: usize>(
    x: RowsRef,
    m: usize,
    w: &Weights,
    p: usize,
    init: Init,
    out: &mut [f32],
    acc: &[[__m256i; 2]; R],
) {
    let n_out = w.n_out;
    let c0 = p * NR;
    let cols = (n_out - c0).min(NR);
    if cols == NR {
        // A whole panel: starts, scales and column sums straight from memory.
        for (r, a) in acc.iter().enumerate() {
            let row = m + r;
            let k = RowConstants::of(x, row);
            let dst = out.as_mut_ptr().add(row * n_out + c0);
            for (h, &a) in a.iter().enumerate() {
                let c = c0 + 8 * h;
                let start = match init {
                    Init::Zero => _mm256_setzero_ps(),
                    Init::Bias(b) => _mm256_loadu_ps(b.as_ptr().add(c)),
                    Init::Accumulate(None) => _mm256_loadu_ps(dst.add(8 * h)),
                    Init::Accumulate(Some(b)) => {
                        _mm256_add_ps(_mm256_loadu_ps(dst.add(8 * h)), _mm256_loadu_ps(b.as_ptr().add(c)))
                    }
                };
                let y = k.rescale(a, w.col_sums.as_ptr().add(c), w.scales.as_ptr().add(c), start);
                _mm256_storeu_ps(dst.add(8 * h), y);
            }
        }
        return;
    }
    let (mut ws, mut sums) = ([0f32; NR], [0i32; NR]);
    ws[..cols].copy_from_slice(&w.scales[c0..c0 + cols]);
    sums[..cols].copy_from_slice(&w.col_sums[c0..c0 + cols]);
    for (r, a) in acc.iter().enumerate() {
        let row = m + r;
        let mut s = [0f32; NR];
        for (c, v) in s[..cols].iter_mut().enumerate() {
            *v = start(init, out, row, c0 + c, n_out);
        }
        let k = RowConstants::of(x, row);
        for (h, &a) in a.iter().enumerate() {
            let y =
                k.rescale(a, sums.as_ptr().add(8 * h), ws.as_ptr().add(8 * h), _mm256_loadu_ps(s.as_ptr().add(8 * h)));
            _mm256_storeu_ps(s.as_mut_ptr().add(8 * h), y);
        }
        out[row * n_out + c0..][..cols].copy_from_slice(&s[..cols]);
    }
}

/// A row's terms of the rescale, broadcast: `−128·Σx_s`, `128 − z` and `s_x`.
#[derive(Clone, Copy)]
struct RowConstants {
    t: __m256i,
    zc: __m256i,
    sx: __m256,
}

impl RowConstants {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn of(x: RowsRef, row: usize) -> RowConstants {
        RowConstants {
            t: _mm256_set1_epi32(row_term(x, row)),
            zc: _mm256_set1_epi32(128 - x.zero[row]),
            sx: _mm256_set1_ps(x.scale[row]),
        }
    }

    /// 8 outputs from their sums `a`, the columns' weight sums and scales (8 each at `cs`, `ws`)
    /// and starting values: `fma(float(a − 128·Σx_s + (128 − z)·Σq_w), s_x·s_w, start)`, the
    /// twin's expression.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rescale(self, a: __m256i, cs: *const i32, ws: *const f32, start: __m256) -> __m256 {
        let v = _mm256_add_epi32(
            _mm256_add_epi32(a, self.t),
            _mm256_mullo_epi32(self.zc, _mm256_loadu_si256(cs as *const __m256i)),
        );
        let scale = _mm256_mul_ps(self.sx, _mm256_loadu_ps(ws));
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), scale, start)
    }
}
