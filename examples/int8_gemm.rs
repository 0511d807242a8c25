//! Multiply-add rates of the dense-layer kernels on one 384 × 128 → 128 per-edge product (8 nodes
//! × 48 neighbours), one thread (development aid; `mpnn bench --peak` gives the units' limits):
//! float32, W8A8 (`vpdpbusd` on VNNI CPUs), W8A16 and the 12-bit `w12` form (`vpdpwssd`), each
//! with its input quantization and without. `cargo run --release --example int8_gemm`.
use mpnn::kernels::gemm::Init;
use mpnn::kernels::int8::{self, QuantWeights};
use mpnn::kernels::precision::Precision;
use mpnn::kernels::Linear;
use std::time::Instant;

fn rate(label: &str, macs: usize, mut f: impl FnMut()) {
    f();
    let reps = (3e9 / macs as f64) as usize + 1;
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    let s = t.elapsed().as_secs_f64();
    println!("{label:<40} {:7.1} G multiply-adds/s", (reps * macs) as f64 / s / 1e9);
}

fn main() {
    let (m, k, n) = (384usize, 128usize, 128usize);
    let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.2).collect();
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 104729) % 997) as f32 * 1e-4 - 0.05).collect();
    let mut y = vec![0f32; m * n];
    let macs = m * k * n;
    let mut g = x.clone();
    for len in [128, 2048, m * k] {
        rate(&format!("gelu_fast_inplace in runs of {len} (per-MAC equivalent)"), m * k * n, || {
            for c in g.chunks_mut(len) {
                mpnn::kernels::gelu_fast::gelu_fast_inplace(c)
            }
        });
        g.copy_from_slice(&x);
    }
    rate("gelu_inplace (exact erf) (per-MAC equivalent)", m * k * n, || mpnn::kernels::gelu_inplace(&mut g));
    let f32l = Linear::new(w.clone(), None, n, k);
    rate("f32 Linear::forward", macs, || f32l.forward(&x, m, &mut y));
    let i8l = f32l.with_precision(Precision::Int8);
    rate(&format!("int8 Linear::forward (w8a8: {})", i8l.is_w8a8()), macs, || i8l.forward(&x, m, &mut y));
    let a16 = f32l.with_precision_algorithm(Precision::Int8, int8::Algorithm::W8A16);
    rate("W8A16 Linear::forward", macs, || a16.forward(&x, m, &mut y));
    let w12 = f32l.with_wide_int8();
    rate("w12 Linear::forward", macs, || w12.forward(&x, m, &mut y));
    {
        use int8::w8a8;
        let q = w8a8::Weights::new(&w, n, k);
        let mut rows = w8a8::Rows::default();
        rows.quantize(&x, m, k);
        rate("W8A8 w8a8::gemm (inputs quantized)", macs, || w8a8::gemm(rows.view(), m, &q, Init::Zero, &mut y));
        rate("W8A8 w8a8::gemm, 6 rows", 6 * k * n, || w8a8::gemm(rows.rows(0, 6), 6, &q, Init::Zero, &mut y));
        rate("W8A8 Rows::quantize (per-MAC equivalent)", macs, || rows.quantize(&x, m, k));
    }
    {
        // Edge-embedding-like inputs: 416 RBF values per row, most of them tiny (some subnormal).
        let n_in = 416;
        let rbf: Vec<f32> = (0..m * n_in)
            .map(|i| {
                let d = 2.0 + ((i / 16) * 7919 % 2000) as f32 * 0.01;
                let mu = 2.0 + (i % 16) as f32 * 1.333;
                (-((d - mu) / 1.25).powi(2)).exp()
            })
            .collect();
        let (mut xq, mut xs) = (Vec::new(), Vec::new());
        rate("w12 quantize_rows of RBF rows (416 wide, per input)", m * n_in * 128, || {
            int8::quantize_rows_for(&rbf, m, n_in, 2521.0, &mut xq, &mut xs)
        });
    }
    for (name, q) in [("W8A16", QuantWeights::new(&w, n, k)), ("w12", QuantWeights::wide(&w, n, k))] {
        let (mut xq, mut xs) = (Vec::new(), Vec::new());
        int8::quantize_rows_for(&x, m, k, q.input_qmax(), &mut xq, &mut xs);
        rate(&format!("{name} int8::gemm (inputs quantized)"), macs, || {
            int8::gemm(&xq, &xs, m, &q, Init::Zero, &mut y)
        });
        for rows in [6, 48] {
            rate(&format!("{name} int8::gemm, {rows} rows"), rows * k * n, || {
                int8::gemm(&xq, &xs, rows, &q, Init::Zero, &mut y)
            });
        }
        rate(&format!("{name} quantize_rows (per-MAC equivalent)"), macs, || {
            int8::quantize_rows_for(&x, m, k, q.input_qmax(), &mut xq, &mut xs)
        });
    }
}
