//! The AVX-512 int8 kernels: `R ≤ 6` rows × up to four 16-column panels per register block,
//! one zmm of int32 lanes per row and panel (24 accumulators). One zmm of packed weights holds a
//! whole panel's pair of `k` (16 columns × 2 int16), so per pair of `k` a block loads four weight
//! vectors and, per row, broadcasts the row's two activations (as one int32) into four dot
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

/// Rows per register block (× up to 4 panels: 24 accumulators, each row's broadcast feeding
/// 4 dot products). Twelve rows × 2 panels (14 loads per 24 products instead of 10) also made
/// LLVM store every accumulator back to the stack on every step of `k` (one store per
/// `vpdpwssd`): this kernel ran at ≈ 35 % of the instruction's rate.
pub const MR: usize = 6;

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

/// `block::<R, P>` for the block's row count `mr` (1..=6) and panel count `np` (4, 2 or 1).
macro_rules! dispatch {
    ($block:ident, $mr:expr, $np:expr, $g:expr; $($r:literal)*) => {
        match ($mr, $np) {
            $(($r, 4) => $block::<$r, 4>($g), ($r, 2) => $block::<$r, 2>($g), ($r, _) => $block::<$r, 1>($g),)*
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
                    let np = match panels - p {
                        1 => 1,
                        2 | 3 => 2,
                        _ => 4,
                    };
                    let g = Args { xq: xq.as_ptr(), xs, m, w, p, init, out: out.as_mut_ptr() };
                    dispatch!($block, mr, np, &g; 1 2 3 4 5 6);
                    p += np;
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
            let xp = g.xq.add(g.m * kp * 2);
            for kk in 0..kp {
                let mut wv = [_mm512_setzero_si512(); P];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(wp.add((j * kp + kk) * NR * 2) as *const _);
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_epi32(std::ptr::read_unaligned(xp.add(r * kp * 2 + kk * 2) as *const i32));
                    for (a, wj) in row.iter_mut().zip(&wv) {
                        *a = $dot(*a, x, *wj);
                    }
                }
            }
            // A copy for the epilogue (which indexes it at run time): without it LLVM kept
            // `acc` itself in memory and stored every accumulator on every step of `k` (one
            // zmm store per dot product), which held this kernel at ≈ 35 % of the
            // instruction's rate (`examples/int8_gemm.rs`).
            let acc = std::hint::black_box(acc);
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

/// `vpdpwssd`, as inline assembly: LLVM knows the intrinsic's semantics and, tuning for a
/// generic x86-64, split most of them into `vpmaddwd` + `vpaddd` (two double-pumped zmm
/// instructions on Zen 4 where one does the job): the kernel ran at 42 G multiply-adds/s per
/// core against 113 for the instruction (`examples/int8_gemm.rs`, `mpnn bench --peak`). The
/// result is the same either way (both are exact, wrapping int32 sums).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dpwssd(acc: __m512i, x: __m512i, w: __m512i) -> __m512i {
    let mut acc = acc;
    std::arch::asm!("vpdpwssd {acc}, {x}, {w}", acc = inout(zmm_reg) acc, x = in(zmm_reg) x, w = in(zmm_reg) w,
        options(pure, nomem, nostack));
    acc
}

kernel!(gemm_bw, block_bw, "avx512f,avx512bw,avx2,fma", madd_add);
kernel!(gemm_vnni, block_vnni, "avx512f,avx512bw,avx512vnni,avx2,fma", dpwssd);

/// Where a W8A8 block reads and writes.
struct Args8<'a> {
    x: super::w8a8::RowsRef<'a>,
    m: usize,
    w: &'a super::w8a8::Weights,
    p: usize,
    init: Init<'a>,
    out: *mut f32,
}

/// The W8A8 product with AVX-512 VNNI `vpdpbusd` (see [`super::w8a8`]): `R ≤ 6` rows × up to
/// four 16-column panels per register block, one zmm of int32 lanes per row and panel. Per
/// quad of `k` a block loads one zmm of weights per panel (16 columns × 4 offset uint8, the
/// unsigned operand) and, per row, broadcasts the row's 4 signed codes (one int32) into one
/// `vpdpbusd` per panel.
///
/// # Safety
/// The CPU must have AVX-512F/BW/VNNI, AVX2 and FMA, and the arguments must pass
/// [`super::w8a8::gemm`]'s checks (it is the safe entry point).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn gemm_w8a8(x: super::w8a8::RowsRef, rows: usize, w: &super::w8a8::Weights, init: Init, out: &mut [f32]) {
    super::w8a8::check(x, rows, w, init, out);
    let panels = w.n_out.div_ceil(NR);
    let mut m = 0;
    while m < rows {
        let mr = (rows - m).min(MR8);
        let mut p = 0;
        while p < panels {
            let np = match panels - p {
                1 => 1,
                2 | 3 => 2,
                _ => 4,
            };
            let g = Args8 { x, m, w, p, init, out: out.as_mut_ptr() };
            macro_rules! go {
                ($($r:literal)*) => {
                    match (mr, np) {
                        $(($r, 4) => block_w8a8::<$r, 4>(&g), ($r, 2) => block_w8a8::<$r, 2>(&g),
                          ($r, _) => block_w8a8::<$r, 1>(&g),)*
                        _ => unreachable!(),
                    }
                };
            }
            go!(1 2 3 4 5 6);
            p += np;
        }
        m += mr;
    }
}

/// Rows per W8A8 register block (× up to 4 panels: 24 accumulators, each row's broadcast
/// feeding 4 `vpdpbusd`).
const MR8: usize = 6;

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn block_w8a8<const R: usize, const P: usize>(g: &Args8) {
    use super::w8a8::{row_term, KQ};
    let w = g.w;
    let (kq, n_out, width) = (w.k_quads(), w.n_out, g.x.width);
    let mut acc = [[_mm512_setzero_si512(); P]; R];
    let wp = w.packed.as_ptr().add(g.p * kq * NR * KQ);
    let xp = g.x.q.as_ptr().add(g.m * width);
    for kk in 0..kq {
        let mut wv = [_mm512_setzero_si512(); P];
        for (j, v) in wv.iter_mut().enumerate() {
            *v = _mm512_loadu_si512(wp.add((j * kq + kk) * NR * KQ) as *const _);
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_epi32(std::ptr::read_unaligned(xp.add(r * width + kk * KQ) as *const i32));
            for (a, wj) in row.iter_mut().zip(&wv) {
                *a = _mm512_dpbusd_epi32(*a, *wj, x);
            }
        }
    }
    for j in 0..P {
        let c0 = (g.p + j) * NR;
        let cols = (n_out - c0).min(NR);
        let mask: u16 = if cols == NR { u16::MAX } else { (1u16 << cols) - 1 };
        let ws = _mm512_maskz_loadu_ps(mask, w.scales.as_ptr().add(c0));
        let sums = _mm512_maskz_loadu_epi32(mask, w.col_sums.as_ptr().add(c0));
        for (r, row) in acc.iter().enumerate() {
            let m = g.m + r;
            let dst = g.out.add(m * n_out + c0);
            let start = match g.init {
                Init::Zero => _mm512_setzero_ps(),
                Init::Bias(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(c0)),
                Init::Accumulate(None) => _mm512_maskz_loadu_ps(mask, dst),
                Init::Accumulate(Some(b)) => {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), _mm512_maskz_loadu_ps(mask, b.as_ptr().add(c0)))
                }
            };
            let t = _mm512_add_epi32(row[j], _mm512_set1_epi32(row_term(g.x, m)));
            let v = _mm512_add_epi32(t, _mm512_mullo_epi32(_mm512_set1_epi32(128 - g.x.zero[m]), sums));
            let scale = _mm512_mul_ps(_mm512_set1_ps(g.x.scale[m]), ws);
            let y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), scale, start);
            _mm512_mask_storeu_ps(dst, mask, y);
        }
    }
}

/// The lanes of the 16 values from `i` that lie inside a row of `n` (all 16 but at the tail).
#[inline(always)]
fn tail_mask(n: usize, i: usize) -> u16 {
    let left = n - i;
    if left >= 16 {
        u16::MAX
    } else {
        (1u16 << left) - 1
    }
}

/// [`super::w8a8::quantize_row`] on zmm: the one-row case of [`quantize_rows8`] (see
/// `block8` for the operations).
///
/// # Safety
/// The CPU must have AVX-512F/BW; `x` and `dst` must have the same length.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn quantize_row(x: &[f32], dst: &mut [i8]) -> (f32, i32, i32) {
    let (mut scale, mut zero, mut sum) = ([0f32], [0i32], [0i32]);
    let width = dst.len();
    let mut out = super::w8a8::RowsMut { q: dst, scale: &mut scale, zero: &mut zero, sum: &mut sum, width };
    block8::<1>(x, width, 0, &mut out);
    (scale[0], zero[0], sum[0])
}

/// [`super::w8a8::quantize_rows_into`] on zmm: [`quantize_row`]'s operations, four rows at a
/// time (each row's extremes, reductions and division are a chain of dependent operations; four
/// independent chains side by side keep the pipes busy where one row at a time waited on them).
///
/// # Safety
/// The CPU must have AVX-512F/BW; the sizes must be as `quantize_rows_into` asserts.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn quantize_rows8(x: &[f32], n_in: usize, mut out: super::w8a8::RowsMut) {
    let rows = out.scale.len();
    let mut r = 0;
    while r < rows {
        let left = rows - r;
        match left {
            1 => block8::<1>(x, n_in, r, &mut out),
            2 => block8::<2>(x, n_in, r, &mut out),
            3 => block8::<3>(x, n_in, r, &mut out),
            _ => block8::<4>(x, n_in, r, &mut out),
        }
        r += left.min(4);
    }
}

/// Rows `r0..r0 + R` of [`quantize_rows8`]: the same codes as the plain twin by fewer
/// operations (tested equal). Extremes by `vminps`/`vmaxps` (exact in any order) beside a
/// running sum that is finite only if every value is (a row with a NaN or an infinity, or whose
/// sum overflows, takes the twin); then per value `cvt(v·inv)` (round to nearest even, as the
/// twin's 1.5·2²³ trick) plus the zero point, and `min(·, 255)`: no lower clamp, as `v ≥ lo`
/// gives `round(v·inv) ≥ round(lo·inv) = −zero` (rounding is monotone and odd). Codes narrowed
/// with `vpmovdb`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn block8<const R: usize>(x: &[f32], n: usize, r0: usize, out: &mut super::w8a8::RowsMut) {
    use super::w8a8::row_params;
    let mask_at = |i: usize| tail_mask(n, i);
    let w = out.width;
    let src = |r: usize| x.as_ptr().add((r0 + r) * n);
    // Raw pointers (bounds asserted by `quantize_rows_into`): each row writes only its own
    // codes and values.
    let q = out.q.as_mut_ptr();
    let (scale, zero, sums) = (out.scale.as_mut_ptr(), out.zero.as_mut_ptr(), out.sum.as_mut_ptr());
    let (mut lo, mut hi, mut fin) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
    let mut i = 0;
    while i < n {
        let m = mask_at(i);
        for r in 0..R {
            let v = _mm512_maskz_loadu_ps(m, src(r).add(i));
            lo[r] = _mm512_min_ps(lo[r], v);
            hi[r] = _mm512_max_ps(hi[r], v);
            fin[r] = _mm512_add_ps(fin[r], v);
        }
        i += 16;
    }
    let mut params = [None; R];
    for r in 0..R {
        let row = r0 + r;
        let codes = std::slice::from_raw_parts_mut(q.add(row * w), w);
        codes[n..].fill(0);
        if !all_finite(fin[r]) {
            let (s, z, t) = super::w8a8::quantize_row_portable(std::slice::from_raw_parts(src(r), n), &mut codes[..n]);
            (*scale.add(row), *zero.add(row), *sums.add(row)) = (s, z, t);
            continue;
        }
        let (l, h) = (_mm512_reduce_min_ps(lo[r]), _mm512_reduce_max_ps(hi[r]));
        params[r] = row_params(l, h, false);
        match params[r] {
            Some((_, z)) => (*scale.add(row), *zero.add(row)) = ((h - l) / 255.0, z as i32),
            None => {
                codes[..n].fill(0);
                (*scale.add(row), *zero.add(row), *sums.add(row)) = (0.0, 128, 0);
            }
        }
    }
    let mut vinv = [_mm512_setzero_ps(); R];
    let mut offset = [_mm512_setzero_si512(); R];
    for r in 0..R {
        if let Some((inv, z)) = params[r] {
            (vinv[r], offset[r]) = (_mm512_set1_ps(inv), _mm512_set1_epi32(z as i32 - 128));
        }
    }
    let top = _mm512_set1_epi32(127);
    let mut sum = [_mm512_setzero_si512(); R];
    let mut i = 0;
    while i < n {
        let m = mask_at(i);
        for r in 0..R {
            if params[r].is_none() {
                continue;
            }
            let v = _mm512_maskz_loadu_ps(m, src(r).add(i));
            let t = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
                v, vinv[r],
            ));
            let c = _mm512_min_epi32(_mm512_add_epi32(t, offset[r]), top);
            sum[r] = _mm512_mask_add_epi32(sum[r], m, sum[r], c);
            _mm512_mask_cvtepi32_storeu_epi8(q.add((r0 + r) * w + i) as *mut _, m, c);
        }
        i += 16;
    }
    for r in 0..R {
        if params[r].is_some() {
            *sums.add(r0 + r) = _mm512_reduce_add_epi32(sum[r]);
        }
    }
}

/// Whether every lane of `v` is finite (`v·0` is 0 for a finite lane, NaN otherwise).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn all_finite(v: __m512) -> bool {
    let z = _mm512_mul_ps(v, _mm512_setzero_ps());
    _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(z, z) == 0
}

/// [`super::quantize_rows_for`] on zmm (the rows' codes and scales; `q` and `scales` sized by the
/// caller): the plain body's codes (tested equal). `max |v|` by `vmaxps(|v|, acc)` (a maximum
/// does not depend on the order); on finite rows the codes by the same multiply and a rounding
/// `cvt` without clamp (see [`rows16`]), narrowed by `vpmovdw` (truncation, as `as i16`); other
/// rows by the plain body.
///
/// # Safety
/// The CPU must have AVX-512F; `x` must hold `scales.len()` rows of `n_in` and `q` as many rows
/// of `width ≥ n_in`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn quantize_rows16(x: &[f32], n_in: usize, width: usize, qmax: f32, q: &mut [i16], scales: &mut [f32]) {
    assert!(x.len() >= scales.len() * n_in);
    rows16::<false>(x.as_ptr() as *mut f32, n_in, width, qmax, q, scales)
}

/// [`quantize_rows16`] of `gelu(x)` (the table GELU, [`crate::kernels::gelu_fast`]), written
/// into `x` on the way: each row is read from memory once, its GELU and extremes computed in
/// one pass, and its codes from L1 in the next (instead of a GELU pass over the whole block
/// and two more passes to quantize it).
///
/// # Safety
/// As [`quantize_rows16`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn quantize_rows16_gelu(
    x: &mut [f32],
    n_in: usize,
    width: usize,
    qmax: f32,
    q: &mut [i16],
    scales: &mut [f32],
) {
    assert!(x.len() >= scales.len() * n_in);
    rows16::<true>(x.as_mut_ptr(), n_in, width, qmax, q, scales)
}

/// The rows of [`quantize_rows16`] (`GELU`: of [`quantize_rows16_gelu`], which writes through
/// `x`), four at a time (each row's maximum, reduction and division are a chain of dependent
/// operations: four side by side keep the pipes busy). A row whose values are all finite (a
/// running sum says so; any other row takes the plain body, [`super::quantize_rows_row`]) needs
/// neither the clamp nor the NaN test of `super::quantize`: `|v·inv| ≤ max·(qmax/max)` is within
/// rounding of `qmax`, an integer, so `cvt(v·inv)` (round to nearest even, as the 1.5·2²³ trick)
/// is the same code.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn rows16<const GELU: bool>(
    x: *mut f32,
    n_in: usize,
    width: usize,
    qmax: f32,
    q: &mut [i16],
    scales: &mut [f32],
) {
    let rows = scales.len();
    assert!(q.len() >= rows * width && width >= n_in);
    let mut r = 0;
    while r < rows {
        let left = rows - r;
        let b = Block16 { x, n_in, width, qmax, q: q.as_mut_ptr(), scales: scales.as_mut_ptr(), r0: r };
        match left {
            1 => b.run::<1, GELU>(),
            2 => b.run::<2, GELU>(),
            3 => b.run::<3, GELU>(),
            _ => b.run::<4, GELU>(),
        }
        r += left.min(4);
    }
}

/// Rows `r0..` of [`rows16`].
struct Block16 {
    x: *mut f32,
    n_in: usize,
    width: usize,
    qmax: f32,
    q: *mut i16,
    scales: *mut f32,
    r0: usize,
}

impl Block16 {
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run<const R: usize, const GELU: bool>(&self) {
        let n = self.n_in;
        let mask_at = |i: usize| tail_mask(n, i);
        let src = |r: usize| self.x.add((self.r0 + r) * n);
        let dst = |r: usize| self.q.add((self.r0 + r) * self.width);
        let gelu = crate::kernels::gelu_fast::Avx512::new();
        let (mut acc, mut fin) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
        let mut i = 0;
        while i < n {
            let m = mask_at(i);
            for r in 0..R {
                let mut v = _mm512_maskz_loadu_ps(m, src(r).add(i));
                if GELU {
                    v = gelu.apply(v);
                    _mm512_mask_storeu_ps(src(r).add(i), m, v);
                }
                acc[r] = _mm512_max_ps(_mm512_abs_ps(v), acc[r]);
                fin[r] = _mm512_add_ps(fin[r], v);
            }
            i += 16;
        }
        let mut fast = [false; R];
        let mut vinv = [_mm512_setzero_ps(); R];
        for r in 0..R {
            let codes = std::slice::from_raw_parts_mut(dst(r), self.width);
            codes[n..].fill(0);
            let s = self.scales.add(self.r0 + r);
            if all_finite(fin[r]) {
                let (scale, inv) = super::scale_from_max(_mm512_reduce_max_ps(acc[r]), self.qmax);
                (*s, vinv[r], fast[r]) = (scale, _mm512_set1_ps(inv), true);
            } else {
                *s = super::quantize_rows_row(std::slice::from_raw_parts(src(r), n), self.qmax, codes);
            }
        }
        let mut i = 0;
        while i < n {
            let m = mask_at(i);
            for r in 0..R {
                if fast[r] {
                    let t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src(r).add(i)), vinv[r]);
                    let code = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
                    _mm512_mask_cvtepi32_storeu_epi16(dst(r).add(i) as *mut _, m, code);
                }
            }
            i += 16;
        }
    }
}
