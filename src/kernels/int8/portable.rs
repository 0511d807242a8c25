//! The portable int8 kernel: plain Rust that LLVM vectorizes (NEON `smlal`-style widening
//! multiply-adds on aarch64). `R ≤ 6` rows × one 16-column panel in `[[i32; 16]; R]`; per pair
//! of `k`, 16 columns × 2 products added exactly into int32 lanes — the same integer sums as
//! every other path — then the shared float32 rescale `fma(float(Σ), s_x·s_w, start)`.

use super::{start, Init, QuantWeights, MR, NR};

pub fn gemm(xq: &[i16], xs: &[f32], rows: usize, w: &QuantWeights, init: Init, out: &mut [f32]) {
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

#[inline(always)]
fn block<const R: usize>(xq: &[i16], xs: &[f32], m: usize, w: &QuantWeights, p: usize, init: Init, out: &mut [f32]) {
    let (kp, n_out) = (w.k_pairs(), w.n_out);
    let panel = &w.packed[p * kp * NR * 2..(p + 1) * kp * NR * 2];
    let x: [&[i16]; R] = std::array::from_fn(|r| &xq[(m + r) * kp * 2..(m + r + 1) * kp * 2]);
    let mut acc = [[0i32; NR]; R];
    for kk in 0..kp {
        let wk: &[i16; NR * 2] = panel[kk * NR * 2..(kk + 1) * NR * 2].try_into().unwrap();
        for (row, xr) in acc.iter_mut().zip(&x) {
            let (x0, x1) = (xr[2 * kk] as i32, xr[2 * kk + 1] as i32);
            for (c, a) in row.iter_mut().enumerate() {
                *a += x0 * wk[2 * c] as i32 + x1 * wk[2 * c + 1] as i32;
            }
        }
    }
    let c0 = p * NR;
    let cols = (n_out - c0).min(NR);
    for (r, row) in acc.iter().enumerate() {
        for (c, &a) in row[..cols].iter().enumerate() {
            let s = start(init, out, m + r, c0 + c, n_out);
            out[(m + r) * n_out + c0 + c] = (a as f32).mul_add(xs[m + r] * w.scales[c0 + c], s);
        }
    }
}
