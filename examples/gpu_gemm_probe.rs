//! Times the GPU GEMM kernel at an encoder-like shape (`cargo run --release --example gpu_gemm_probe`).
fn main() {
    let gpu = mpnn::gpu::Gpu::open(true).expect("gpu");
    println!("{}", gpu.adapter);
    let (m, n, k) = (7200usize, 128usize, 128usize);
    let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let wb = gpu.weights_buffer(&w);
    for (kernel_rep, plain) in [(1usize, false), (3, false), (1, true), (3, true)] {
        let mut plan = mpnn::gpu::Plan::new();
        plan.plain_gemm = plain;
        let x = plan.upload((0..m * k).map(|i| (i % 5) as f32).collect());
        let y = plan.alloc(m * n);
        for _ in 0..kernel_rep {
            plan.gemm(m, n, k, x, 0, mpnn::gpu::NONE, y, false);
        }
        let s = plan.read(y, 4);
        let t = std::time::Instant::now();
        let r = gpu.run(&wb, &plan).unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!("{kernel_rep} gemms (plain {plain}): {:.3} s, {:.2} GFLOP/s {:?}", dt, (2 * m * n * k * kernel_rep) as f64 / dt / 1e9, r.floats(s));
    }
    for rep in [1usize, 10] {
        let mut plan = mpnn::gpu::Plan::new();
        let x = plan.upload((0..m * n).map(|i| (i % 5) as f32).collect());
        for _ in 0..rep {
            plan.gelu(m * n, x);
        }
        let t = std::time::Instant::now();
        gpu.run(&wb, &plan).unwrap();
        println!("{rep} gelu: {:.3} s", t.elapsed().as_secs_f64());
    }
}
