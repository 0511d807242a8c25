//! The portable kernel: plain Rust that LLVM vectorizes — the path of aarch64 (NEON, where FMA
//! is baseline) and of every target without a hand-written kernel.
//!
//! A block is `R ≤ 6` rows × one 16-column panel held in `[[f32; 16]; R]`. The loop order is
//! `k` outer, rows, then the 16 columns innermost: the inner loop is 16 independent
//! `f32::mul_add`s on contiguous lanes (one weight row of the packed panel, one broadcast input),
//! which LLVM turns into vector FMAs (four `fmla` per row on NEON, two `vfmadd` on x86 with FMA),
//! and the accumulators stay in registers across `k`. Each lane is one output's chain
//! `acc = fma(a[m, k], w[o, k], acc)` over `k` in order from [`start_row`]'s value, exactly as
//! the other paths, so the bits agree.
//!
//! `f32::mul_add` is always a fused multiply-add (one rounding). On x86-64 the source is compiled
//! twice: with the `fma` target feature (used when the CPU has it; LLVM then emits `vfmadd` on
//! 256-bit registers), and for the baseline, where each `mul_add` becomes a call to the C
//! library's correctly rounded `fmaf` — slow, but the same bits.

use super::{start_row, Init, NR};

/// Rows per register block.
pub const MR: usize = 6;

pub fn gemm(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::isa::cpu_has("fma") {
        // SAFETY: the CPU has FMA (checked); the body is safe code.
        unsafe { gemm_fma(a, rows, n_in, packed, n_out, init, out) };
        return;
    }
    body(a, rows, n_in, packed, n_out, init, out);
}

/// The same source with FMA (and the AVX it implies) enabled, for x86-64 CPUs that have it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn gemm_fma(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    body(a, rows, n_in, packed, n_out, init, out);
}

#[inline(always)]
fn body(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    let panels = n_out.div_ceil(NR);
    // The block's inputs transposed to `[k][row]`, so the inner loop walks two slices in step and
    // carries no bounds checks (which would keep the accumulators in memory).
    let mut xt = vec![0f32; MR * n_in];
    let mut m = 0;
    while m < rows {
        let mr = (rows - m).min(MR);
        for k in 0..n_in {
            for r in 0..mr {
                xt[k * mr + r] = a[(m + r) * n_in + k];
            }
        }
        let xt = &xt[..mr * n_in];
        for p in 0..panels {
            let panel = &packed[p * n_in * NR..(p + 1) * n_in * NR];
            let c0 = p * NR;
            match mr {
                6 => block::<6>(xt, m, panel, c0, n_out, init, out),
                5 => block::<5>(xt, m, panel, c0, n_out, init, out),
                4 => block::<4>(xt, m, panel, c0, n_out, init, out),
                3 => block::<3>(xt, m, panel, c0, n_out, init, out),
                2 => block::<2>(xt, m, panel, c0, n_out, init, out),
                _ => block::<1>(xt, m, panel, c0, n_out, init, out),
            }
        }
        m += mr;
    }
}

/// Rows `m..m + R` × columns `c0..c0 + 16` (fewer in a partial last panel); `xt` holds the rows'
/// inputs as `[k][R]`.
#[inline(always)]
fn block<const R: usize>(xt: &[f32], m: usize, panel: &[f32], c0: usize, n_out: usize, init: Init, out: &mut [f32]) {
    let cols = (n_out - c0).min(NR);
    // The accumulators are only ever touched whole (variable-length copies go through
    // `staging`), so LLVM can keep them in registers across the `k` loop.
    let mut acc = [[0f32; NR]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        let mut staging = [0f32; NR];
        start_row(init, out, m + r, c0, cols, n_out, &mut staging);
        *row = staging;
    }
    for (xk, w) in xt.chunks_exact(R).zip(panel.chunks_exact(NR)) {
        let xk: &[f32; R] = xk.try_into().unwrap();
        let w: &[f32; NR] = w.try_into().unwrap();
        for (row, &xv) in acc.iter_mut().zip(xk) {
            for (v, &wc) in row.iter_mut().zip(w) {
                *v = xv.mul_add(wc, *v);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let staging = *row;
        out[(m + r) * n_out + c0..(m + r) * n_out + c0 + cols].copy_from_slice(&staging[..cols]);
    }
}
