//! Plain reference implementations of the kernels, written for clarity: float64 accumulation
//! for the model-level twins ([`linear`], [`layer_norm`], [`gelu`]), and the exact float32 FMA
//! chain ([`gemm_packed`]) that every instruction-set path of [`super::gemm`] must reproduce bit
//! for bit.

use super::gemm::{Init, NR};
use super::{LayerNorm, Linear, LAYER_NORM_EPS};

/// The plain twin of [`super::gemm::gemm`] on its packed weights: one output at a time, one
/// fused multiply-add chain over `k = 0..n_in` in order, started from the bias, 0, or the
/// existing output plus the bias.
pub fn gemm_packed(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
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

/// `x · Wᵀ + b`, one dot product at a time.
pub fn linear(lin: &Linear, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * lin.n_out];
    for r in 0..rows {
        for o in 0..lin.n_out {
            let mut acc = lin.bias.as_ref().map(|b| b[o] as f64).unwrap_or(0.0);
            for i in 0..lin.n_in {
                acc += x[r * lin.n_in + i] as f64 * lin.weight[o * lin.n_in + i] as f64;
            }
            out[r * lin.n_out + o] = acc as f32;
        }
    }
    out
}

pub fn layer_norm(ln: &LayerNorm, x: &[f32]) -> Vec<f32> {
    let d = ln.dim();
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        for (j, &v) in row.iter().enumerate() {
            let y = (v as f64 - mean) / (var + LAYER_NORM_EPS as f64).sqrt();
            out.push((y * ln.gamma[j] as f64 + ln.beta[j] as f64) as f32);
        }
    }
    out
}

pub fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}
