//! bfloat16 dense layers (`--precision bf16`): weights and layer inputs rounded to bfloat16, pairs
//! of products accumulated in float32 with the semantics of AVX-512 BF16's `vdpbf16ps`, on every
//! instruction-set path.
//!
//! # The arithmetic (one definition, every path)
//!
//! Inputs `x` and weights `W` are rounded to bfloat16 by [`to_bf16`] (round to nearest, ties to
//! even; subnormals become a signed zero; NaN stays NaN) — what `vcvtne2ps2bf16` does. The input
//! width is padded with zeros to an even `2·kp`. Each output is then one float32 chain over the
//! `k` pairs, `j = 0..kp` in order, odd element first:
//!
//! ```text
//! acc = daz(start)                                   (start: bias, 0, or out + bias, as f32)
//! acc = ftz(fma(x[2j+1], W[o, 2j+1], acc))           (exact product, one rounding to nearest)
//! acc = ftz(fma(x[2j],   W[o, 2j],   acc))
//! ```
//!
//! where `daz`/`ftz` turn a subnormal into a zero of the same sign (`acc` is left alone when
//! `kp = 0`). This is `vdpbf16ps` lane by lane as the Intel SDM defines it (DAZ on inputs, FTZ on
//! outputs, round to nearest even, MXCSR ignored), and it was checked on a Zen 4 CPU against 1.6
//! million random lanes (exponents from tiny to huge, with cancellations) and targeted cases:
//! the odd product is added first; each addition is one rounding of the *exact* product (a
//! product below the float32 range still counts, as in an FMA, and an exact product above it can
//! be cancelled back into range); a subnormal accumulator input is read as zero; a subnormal
//! intermediate sum is flushed before the second product is added; `-0 + 0·0 = +0`. NaN payloads
//! are not part of the contract (paths agree on NaN-ness, not on a NaN's bits).
//!
//! # The paths
//!
//! - **`vdpbf16ps`** ([`avx512`], when the process's path is AVX-512 and the CPU has AVX-512
//!   BF16): weights pre-packed at load in pair-interleaved panels of 16 output columns
//!   (`[panel][k/2][column][k%2]` bfloat16, one zmm per panel and pair: half of float32's bytes),
//!   inputs converted once per row to bfloat16 pairs, one instruction per 16 outputs × 2 `k` (32
//!   multiply-adds). 12 rows × 2 panels per register block.
//! - **AMX** ([`amx`], `tdpbf16ps` through `asm!`, preferred over `vdpbf16ps` on the AVX-512
//!   path where the CPU has AMX-BF16, the OS grants the tile state and a self-test at first use
//!   gives the twin's bits; `MPNN_BF16=no-amx` turns it off): 16 × 16 outputs × 16 pairs per
//!   instruction, pairs swapped at packing so that its even-first order is the chain above. Built
//!   and tested through a software tile emulator that runs the same packing and tile walk.
//! - **Emulated** (AVX-512 without BF16, AVX2, portable): the float32 kernel [`super::gemm`] on
//!   bfloat16-valued float32 data whose `k` pairs are swapped at packing (weights, once) and at
//!   conversion (inputs, once per row), so its in-order FMA chain *is* the chain above, odd element
//!   first, at float32 speed. The flushes never fire when every product and the start value are
//!   multiples of 2⁻¹²⁶ (then every partial sum is too, and a nonzero one is ≥ 2⁻¹²⁶, never
//!   subnormal): that holds when a row's smallest nonzero input exponent plus the layer's smallest
//!   nonzero weight exponent is large enough ([`MIN_EXP_SUM`]) and the start values are zero or
//!   ≥ 2⁻¹⁰³ in magnitude, which [`gemm_with`] checks per row. A row that fails the check (inputs
//!   below ~1e-25 against tiny weights; none on the parity cases, see [`fallback_rows`]) runs the
//!   plain twin instead, so the bits are the same either way.
//! - [`reference()`]: the plain twin, the chain above one output at a time with explicit flushes.
//!
//! # Agreement
//!
//! [`crate::model::ProteinMpnn::with_precision`] keeps the output layer `W_out` (h → 21 logits,
//! < 0.1 % of the arithmetic) in float32 for bf16: its input rounding lands on the logits
//! undamped. Measured with `mpnn eval` on the parity structures (BENCHMARKS.md), this lowers the
//! mean |Δ log p| against f32 from ≈ 0.021 to ≈ 0.017 and keeps top-1 agreement ≥ 99 % on every
//! case where the earlier emulation had it.
//!
//! Every path gives the same bits (tested on random shapes and on edge values: subnormals,
//! infinities, products out of the float32 range, cancellations).

use super::gemm::{self, start_row, Init, NR};
use super::isa::{self, Isa};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

pub mod amx;
#[cfg(target_arch = "x86_64")]
pub mod avx512;

/// The emulated paths' fast form is exact for a row when its smallest nonzero input's biased
/// exponent plus the layer's smallest nonzero weight's is at least this: the products are then
/// multiples of `2^(Ex + Ew - 2·127 - 2·7) ≥ 2⁻¹²⁶`.
pub const MIN_EXP_SUM: u32 = 142;

/// Rounds `x` to bfloat16 bits: to nearest, ties to even; a subnormal gives a zero of the same
/// sign; NaN stays NaN (quieted). Equal to `vcvtne2ps2bf16` (checked on random bits, tested).
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    (round_bits(x.to_bits()) >> 16) as u16
}

/// [`to_bf16`] as the float32 bits of the rounded value (low half zero). Branch-free 32-bit
/// integer operations, so loops over it vectorize.
#[inline(always)]
fn round_bits(b: u32) -> u32 {
    let abs = b & 0x7fff_ffff;
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    let nan = (b | 0x0040_0000) & 0xffff_0000;
    let r = if abs > 0x7f80_0000 { nan } else { rounded };
    if abs < 0x0080_0000 {
        b & 0x8000_0000
    } else {
        r
    }
}

/// [`check_exp`] of float32 bits with a zero low half.
#[inline(always)]
fn check_exp32(r: u32) -> u32 {
    let e = (r >> 23) & 0xff;
    if e == 0 {
        255
    } else {
        e
    }
}

/// The float32 value of bfloat16 bits.
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// The biased exponent of bfloat16 bits for the exactness check: 255 for zeros and non-finite
/// values (which never break the fast form).
#[inline(always)]
fn check_exp(h: u16) -> u32 {
    let e = ((h >> 7) & 0xff) as u32;
    if e == 0 {
        255
    } else {
        e
    }
}

/// A float32 start value the fast form handles: zero, non-finite, or a multiple of 2⁻¹²⁶
/// (biased exponent ≥ 24).
#[inline(always)]
fn start_ok(v: f32) -> bool {
    let e = (v.to_bits() >> 23) & 0xff;
    e >= 24 || v.to_bits() & 0x7fff_ffff == 0
}

#[inline(always)]
fn flush(v: f32) -> f32 {
    if v.is_subnormal() {
        0f32.copysign(v)
    } else {
        v
    }
}

/// A layer's weights in bfloat16 form.
#[derive(Debug, Clone)]
pub struct Bf16Weights {
    /// `[n_out][2·kp]` bfloat16 bits, zero-padded: the canonical form (the twin reads it).
    pub bits: Vec<u16>,
    pub n_in: usize,
    pub n_out: usize,
    /// The smallest biased exponent of a nonzero finite weight (255: none).
    pub min_exp: u32,
    /// Pair-interleaved panels for `vdpbf16ps` (built on first use).
    native: OnceLock<Vec<u16>>,
    /// Float32 panels over pair-swapped `k` for the emulated paths (built on first use).
    emulated: OnceLock<Vec<f32>>,
    /// Pair-swapped AMX `B` tiles (`amx::pack`, built on first use).
    amx: OnceLock<Vec<u16>>,
}

impl Bf16Weights {
    /// Rounds `weight` (`[n_out, n_in]`, row-major) to bfloat16.
    pub fn new(weight: &[f32], n_out: usize, n_in: usize) -> Bf16Weights {
        assert_eq!(weight.len(), n_out * n_in);
        let width = n_in.div_ceil(2) * 2;
        let mut bits = vec![0u16; n_out * width];
        for o in 0..n_out {
            for (d, &w) in bits[o * width..].iter_mut().zip(&weight[o * n_in..(o + 1) * n_in]) {
                *d = to_bf16(w);
            }
        }
        let min_exp = bits.iter().map(|&h| check_exp(h)).min().unwrap_or(255);
        Bf16Weights {
            bits,
            n_in,
            n_out,
            min_exp,
            native: OnceLock::new(),
            emulated: OnceLock::new(),
            amx: OnceLock::new(),
        }
    }

    /// Number of `k` pairs.
    pub fn k_pairs(&self) -> usize {
        self.n_in.div_ceil(2)
    }

    /// `[panel][kp][NR][2]` bfloat16 bits.
    pub fn native(&self) -> &[u16] {
        self.native.get_or_init(|| {
            let kp = self.k_pairs();
            let mut packed = vec![0u16; self.n_out.div_ceil(NR) * kp * NR * 2];
            for o in 0..self.n_out {
                let (p, c) = (o / NR, o % NR);
                for k in 0..kp * 2 {
                    packed[((p * kp + k / 2) * NR + c) * 2 + k % 2] = self.bits[o * kp * 2 + k];
                }
            }
            packed
        })
    }

    /// The AMX `B` tiles (`amx::pack`: pairs swapped, padded to whole tiles).
    pub fn amx_tiles(&self) -> &[u16] {
        self.amx.get_or_init(|| amx::pack(self))
    }

    /// [`gemm::pack`] of the bfloat16 values with each pair `(2j, 2j+1)` swapped.
    pub fn emulated(&self) -> &[f32] {
        self.emulated.get_or_init(|| {
            let width = self.k_pairs() * 2;
            let mut swapped = vec![0f32; self.n_out * width];
            for (d, s) in swapped.chunks_exact_mut(2).zip(self.bits.chunks_exact(2)) {
                d[0] = from_bf16(s[1]);
                d[1] = from_bf16(s[0]);
            }
            gemm::pack(&swapped, self.n_out, width)
        })
    }
}

/// Layer inputs converted to bfloat16 once per call: every row once, before any panel.
#[derive(Debug, Default)]
pub struct Inputs {
    /// `[rows][2·kp]` bfloat16 bits in natural order (the `vdpbf16ps` kernel and the twin; filled
    /// when converted for the native kernel).
    pub bits: Vec<u16>,
    /// `[rows][2·kp]` the same values as float32 with each pair swapped (emulated paths).
    pub swapped: Vec<f32>,
    /// Per row, the smallest exponent (zeros and non-finite values count as 255) (emulated paths).
    pub min_exp: Vec<u32>,
}

impl Inputs {
    /// Converts `rows` rows of `x` (`[rows, n_in]`) for the kernel `native` says, on the
    /// process's path (every path gives the same bits).
    pub fn convert(&mut self, x: &[f32], rows: usize, n_in: usize, native: bool) {
        self.convert_with(isa::active(), x, rows, n_in, native);
    }

    /// [`Inputs::convert`] on path `p`.
    pub fn convert_with(&mut self, p: Isa, x: &[f32], rows: usize, n_in: usize, native: bool) {
        assert!(x.len() >= rows * n_in);
        let width = n_in.div_ceil(2) * 2;
        if native {
            // Grown, never shrunk (a call with fewer rows leaves the tail alone), and not
            // cleared: every element of the first `rows` rows, padding included, is written below.
            if self.bits.len() < rows * width {
                self.bits.resize(rows * width, 0);
            }
            #[cfg(target_arch = "x86_64")]
            if isa::cpu_has("avx512_bf16") {
                // SAFETY: the CPU has AVX-512F/BW/BF16 (checked); the sizes match (asserted).
                unsafe { avx512::convert(x, rows, n_in, &mut self.bits) };
                return;
            }
            for r in 0..rows {
                let d = &mut self.bits[r * width..(r + 1) * width];
                for (d, &v) in d.iter_mut().zip(&x[r * n_in..(r + 1) * n_in]) {
                    *d = to_bf16(v);
                }
                d[n_in..].fill(0);
            }
            return;
        }
        if self.swapped.len() < rows * width {
            self.swapped.resize(rows * width, 0.0);
        }
        if self.min_exp.len() < rows {
            self.min_exp.resize(rows, 255);
        }
        #[cfg(target_arch = "x86_64")]
        match p {
            // SAFETY (both): the CPU has the path's features (checked); the body is safe code.
            Isa::Avx512 if p.supported() => return unsafe { swap_x86::swap_rows_avx512(x, rows, n_in, self) },
            Isa::Avx2 if p.supported() => return unsafe { swap_x86::swap_rows_avx2(x, rows, n_in, self) },
            _ => {}
        }
        let _ = p;
        swap_rows(x, rows, n_in, self);
    }
}

/// The emulated paths' conversion: rounded inputs with each pair swapped, and each row's
/// smallest exponent. `head` converts a row's first values with vector instructions and returns
/// how many (a multiple of 2) and their smallest exponent; the rest is done here one pair at a time.
#[inline(always)]
fn swap_rows_with(
    x: &[f32],
    rows: usize,
    n_in: usize,
    s: &mut Inputs,
    head: impl Fn(&[f32], &mut [f32]) -> (usize, u32),
) {
    let width = n_in.div_ceil(2) * 2;
    for r in 0..rows {
        let src = &x[r * n_in..(r + 1) * n_in];
        let dst = &mut s.swapped[r * width..(r + 1) * width];
        let (done, mut min) = head(src, dst);
        for (d, p) in dst[done..].chunks_exact_mut(2).zip(src[done..].chunks_exact(2)) {
            let (h0, h1) = (round_bits(p[0].to_bits()), round_bits(p[1].to_bits()));
            d[0] = f32::from_bits(h1);
            d[1] = f32::from_bits(h0);
            min = min.min(check_exp32(h0)).min(check_exp32(h1));
        }
        if n_in % 2 == 1 {
            let h = round_bits(src[n_in - 1].to_bits());
            dst[width - 2] = 0.0;
            dst[width - 1] = f32::from_bits(h);
            min = min.min(check_exp32(h));
        }
        s.min_exp[r] = min;
    }
}

fn swap_rows(x: &[f32], rows: usize, n_in: usize, s: &mut Inputs) {
    swap_rows_with(x, rows, n_in, s, |_, _| (0, 255));
}

/// [`round_bits`], [`check_exp32`] and the pair swap on 16 (AVX-512F) or 8 (AVX2) lanes: the
/// same integer operations, so the same bits.
#[cfg(target_arch = "x86_64")]
mod swap_x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn swap_rows_avx512(x: &[f32], rows: usize, n_in: usize, s: &mut super::Inputs) {
        super::swap_rows_with(x, rows, n_in, s, |src, dst| {
            let n = src.len() / 16 * 16;
            let (abs_mask, inf, min_normal) =
                (_mm512_set1_epi32(0x7fff_ffff), _mm512_set1_epi32(0x7f80_0000), _mm512_set1_epi32(0x0080_0000));
            let (one, bias, hi_mask, quiet, sign) = (
                _mm512_set1_epi32(1),
                _mm512_set1_epi32(0x7fff),
                _mm512_set1_epi32(0xffff_0000u32 as i32),
                _mm512_set1_epi32(0x0040_0000),
                _mm512_set1_epi32(0x8000_0000u32 as i32),
            );
            let (e255, emask) = (_mm512_set1_epi32(255), _mm512_set1_epi32(0xff));
            let mut mins = e255;
            let mut i = 0;
            while i < n {
                let b = _mm512_loadu_si512(src.as_ptr().add(i) as *const _);
                let abs = _mm512_and_si512(b, abs_mask);
                let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(b), one);
                let rounded = _mm512_and_si512(_mm512_add_epi32(b, _mm512_add_epi32(bias, lsb)), hi_mask);
                let nan = _mm512_and_si512(_mm512_or_si512(b, quiet), hi_mask);
                let r = _mm512_mask_blend_epi32(_mm512_cmpgt_epu32_mask(abs, inf), rounded, nan);
                let r = _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(abs, min_normal), r, _mm512_and_si512(b, sign));
                let e = _mm512_and_si512(_mm512_srli_epi32::<23>(r), emask);
                let e = _mm512_mask_blend_epi32(_mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()), e, e255);
                mins = _mm512_min_epu32(mins, e);
                let swapped = _mm512_permute_ps::<0b1011_0001>(_mm512_castsi512_ps(r));
                _mm512_storeu_ps(dst.as_mut_ptr().add(i), swapped);
                i += 16;
            }
            (n, _mm512_reduce_min_epu32(mins))
        });
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn swap_rows_avx2(x: &[f32], rows: usize, n_in: usize, s: &mut super::Inputs) {
        super::swap_rows_with(x, rows, n_in, s, |src, dst| {
            let n = src.len() / 8 * 8;
            // Unsigned comparisons through the sign flip: a >u b  <=>  (a ^ 2^31) >s (b ^ 2^31);
            // `abs` has a clear sign bit, so the signed comparison is the unsigned one.
            let (abs_mask, inf, min_normal) =
                (_mm256_set1_epi32(0x7fff_ffff), _mm256_set1_epi32(0x7f80_0000), _mm256_set1_epi32(0x0080_0000));
            let (one, bias, hi_mask, quiet, sign) = (
                _mm256_set1_epi32(1),
                _mm256_set1_epi32(0x7fff),
                _mm256_set1_epi32(0xffff_0000u32 as i32),
                _mm256_set1_epi32(0x0040_0000),
                _mm256_set1_epi32(0x8000_0000u32 as i32),
            );
            let (e255, emask) = (_mm256_set1_epi32(255), _mm256_set1_epi32(0xff));
            let mut mins = e255;
            let mut i = 0;
            while i < n {
                let b = _mm256_loadu_si256(src.as_ptr().add(i) as *const _);
                let abs = _mm256_and_si256(b, abs_mask);
                let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(b), one);
                let rounded = _mm256_and_si256(_mm256_add_epi32(b, _mm256_add_epi32(bias, lsb)), hi_mask);
                let nan = _mm256_and_si256(_mm256_or_si256(b, quiet), hi_mask);
                let r = _mm256_blendv_epi8(rounded, nan, _mm256_cmpgt_epi32(abs, inf));
                let r = _mm256_blendv_epi8(r, _mm256_and_si256(b, sign), _mm256_cmpgt_epi32(min_normal, abs));
                let e = _mm256_and_si256(_mm256_srli_epi32::<23>(r), emask);
                let e = _mm256_blendv_epi8(e, e255, _mm256_cmpeq_epi32(e, _mm256_setzero_si256()));
                mins = _mm256_min_epu32(mins, e);
                let swapped = _mm256_permute_ps::<0b1011_0001>(_mm256_castsi256_ps(r));
                _mm256_storeu_ps(dst.as_mut_ptr().add(i), swapped);
                i += 8;
            }
            let mut lanes = [0u32; 8];
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut _, mins);
            (n, lanes.iter().fold(255, |a, &b| a.min(b)))
        });
    }
}

/// Natural-order bfloat16 bits of rows converted by [`swap_rows`] (for the twin's fallback).
fn unswap(swapped: &[f32]) -> Vec<u16> {
    let mut bits = Vec::with_capacity(swapped.len());
    for p in swapped.chunks_exact(2) {
        bits.push((p[1].to_bits() >> 16) as u16);
        bits.push((p[0].to_bits() >> 16) as u16);
    }
    bits
}

static EMULATE: AtomicBool = AtomicBool::new(false);

static FALLBACK_ROWS: AtomicU64 = AtomicU64::new(0);

/// Rows the emulated paths have computed with the plain twin since the process started (their
/// fast form could not be proven exact; see the module docs). For tests and diagnostics.
pub fn fallback_rows() -> u64 {
    FALLBACK_ROWS.load(Ordering::Relaxed)
}

/// Makes the AVX-512 path emulate `vdpbf16ps` even on a CPU that has it (`true`), or use the
/// instruction again (`false`); for tests and benchmarks that compare the two in one process.
/// The environment variable `MPNN_BF16=emulate` sets it at start-up. Results do not depend on it.
pub fn force_emulation(on: bool) {
    EMULATE.store(on, Ordering::Relaxed);
}

/// `MPNN_BF16`, read once: `emulate` (emulate on every path), `no-amx` (`vdpbf16ps` even where
/// AMX runs), anything else or unset: the best kernel.
fn env_choice() -> &'static str {
    static ENV: OnceLock<String> = OnceLock::new();
    ENV.get_or_init(|| std::env::var("MPNN_BF16").map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default())
}

/// Whether a native (bfloat16-bits) kernel is in use on path `p`: AVX-512, a CPU with AVX-512
/// BF16, and neither [`force_emulation`] nor `MPNN_BF16=emulate`. The kernel is then AMX where
/// [`amx_on`], `vdpbf16ps` otherwise.
pub fn native_on(p: Isa) -> bool {
    p == Isa::Avx512 && isa::cpu_has("avx512_bf16") && !EMULATE.load(Ordering::Relaxed) && env_choice() != "emulate"
}

/// Whether the native kernel runs on AMX tiles: the CPU and OS allow it and its self-test gave
/// the twin's bits ([`amx::in_use`]), and `MPNN_BF16` is not `no-amx`.
pub fn amx_on() -> bool {
    env_choice() != "no-amx" && amx::in_use()
}

/// The kernel name `mpnn bench` and `--verbose` report for bf16 on path `p`.
pub fn kernel_name(p: Isa) -> &'static str {
    if !native_on(p) {
        "emulated"
    } else if amx_on() {
        "amx"
    } else {
        "vdpbf16ps"
    }
}

thread_local! {
    /// Per-thread staging of converted layer inputs (no allocation after warm-up).
    static STAGING: RefCell<Inputs> = RefCell::new(Inputs::default());
}

/// `out[m, :] = init + x[m, :] · Wᵀ` in bfloat16 (see the module docs) for `m < rows`, on the
/// process's path.
pub fn forward(x: &[f32], rows: usize, w: &Bf16Weights, init: Init, out: &mut [f32]) {
    let p = isa::active();
    let native = native_on(p);
    STAGING.with_borrow_mut(|s| {
        s.convert_with(p, x, rows, w.n_in, native);
        gemm_with(p, native, s, rows, w, init, out);
    });
}

/// The product on path `isa`, by `vdpbf16ps` (`native`, which needs AVX-512 BF16) or emulated;
/// `x` must have been converted for the same `native`. Panics when the CPU lacks the kernel.
pub fn gemm_with(isa: Isa, native: bool, x: &Inputs, rows: usize, w: &Bf16Weights, init: Init, out: &mut [f32]) {
    let (kp, n_out) = (w.k_pairs(), w.n_out);
    assert!(out.len() >= rows * n_out);
    if let Init::Bias(b) | Init::Accumulate(Some(b)) = init {
        assert!(b.len() >= n_out);
    }
    if rows == 0 || n_out == 0 {
        return;
    }
    if native {
        assert!(x.bits.len() >= rows * kp * 2);
        assert!(isa == Isa::Avx512 && isa::cpu_has("avx512_bf16"), "bf16 vdpbf16ps kernel: this CPU lacks avx512_bf16");
        if amx_on() {
            return amx::gemm(&x.bits, rows, w, init, out);
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F/BW/BF16 (checked: the AVX-512 path implies F, BF16
        // implies BW), and the asserts above bound every access.
        unsafe {
            avx512::gemm(&x.bits, rows, w.native(), kp, n_out, init, out)
        };
        return;
    }
    assert!(x.swapped.len() >= rows * kp * 2 && x.min_exp.len() >= rows);
    let bias_ok = match init {
        Init::Bias(b) | Init::Accumulate(Some(b)) => b[..n_out].iter().all(|&v| start_ok(v)),
        _ => true,
    };
    let row_ok = |out: &[f32], m: usize| {
        bias_ok
            && x.min_exp[m] + w.min_exp >= MIN_EXP_SUM
            && (!matches!(init, Init::Accumulate(_)) || out[m * n_out..(m + 1) * n_out].iter().all(|&v| start_ok(v)))
    };
    let packed = w.emulated();
    let width = kp * 2;
    let mut m = 0;
    while m < rows {
        let fast = row_ok(out, m);
        let mut end = m + 1;
        while end < rows && row_ok(out, end) == fast {
            end += 1;
        }
        let o = &mut out[m * n_out..end * n_out];
        if fast {
            gemm::gemm_with(isa, &x.swapped[m * width..end * width], end - m, width, packed, n_out, init, o);
        } else {
            FALLBACK_ROWS.fetch_add((end - m) as u64, Ordering::Relaxed);
            reference(&unswap(&x.swapped[m * width..end * width]), end - m, w, init, o);
        }
        m = end;
    }
}

/// The plain twin: the chain of the module docs, one output at a time, flushes explicit.
/// `x` is `[rows][2·kp]` bfloat16 bits ([`Inputs::bits`]).
pub fn reference(x: &[u16], rows: usize, w: &Bf16Weights, init: Init, out: &mut [f32]) {
    let (kp, n_out) = (w.k_pairs(), w.n_out);
    for m in 0..rows {
        for p in 0..n_out.div_ceil(NR) {
            let c0 = p * NR;
            let cols = (n_out - c0).min(NR);
            let mut start = [0f32; NR];
            start_row(init, out, m, c0, cols, n_out, &mut start);
            for (c, &s) in start[..cols].iter().enumerate() {
                let o = c0 + c;
                let xr = &x[m * kp * 2..(m + 1) * kp * 2];
                let wr = &w.bits[o * kp * 2..(o + 1) * kp * 2];
                let mut acc = if kp > 0 { flush(s) } else { s };
                for (xp, wp) in xr.chunks_exact(2).zip(wr.chunks_exact(2)) {
                    acc = flush(from_bf16(xp[1]).mul_add(from_bf16(wp[1]), acc));
                    acc = flush(from_bf16(xp[0]).mul_add(from_bf16(wp[0]), acc));
                }
                out[m * n_out + o] = acc;
            }
        }
    }
}

#[cfg(test)]
mod tests;
