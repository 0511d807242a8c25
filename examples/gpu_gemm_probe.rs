//! Throughput of the GPU kernels at an encoder-like shape (edges × 128 × 128 GEMM, GELU), one
//! command buffer per measurement: `cargo run --release --example gpu_gemm_probe [ROWS]`.
//! Software adapters are allowed (lavapipe: ~0.5 GFLOP/s on 2 cores).
fn main() {
    let gpu = match mpnn::gpu::Gpu::open(true) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("{}", gpu.adapter);
    let m: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7200);
    let (n, k) = (128usize, 128usize);
    let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let wb = gpu.weights_buffer(&w);
    for rep in [1usize, 4] {
        let mut plan = mpnn::gpu::Plan::new();
        let x = plan.upload((0..m * k).map(|i| (i % 5) as f32).collect());
        let y = plan.alloc(m * n);
        for _ in 0..rep {
            plan.gemm(m, n, k, x, 0, mpnn::gpu::NONE, y, false);
            plan.gelu(m * n, y);
        }
        let s = plan.read(y, 4);
        let t = std::time::Instant::now();
        let r = gpu.run(&wb, &plan).expect("run");
        let dt = t.elapsed().as_secs_f64();
        let flops = (2 * m * n * k * rep) as f64;
        println!(
            "{rep} × (GEMM {m}×{n}×{k} + GELU): {dt:.3} s, {:.2} GFLOP/s, y[0..4] = {:?}",
            flops / dt / 1e9,
            r.floats(s)
        );
    }
}
