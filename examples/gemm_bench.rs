use std::time::Instant;
fn main() {
    for &(m, k, n) in
        &[(768usize, 128usize, 128usize), (5088, 128, 128), (48, 128, 128), (384, 128, 128), (5088, 416, 128)]
    {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let reps = (2e9 / (m * k * n) as f64) as usize + 1;
        let t = Instant::now();
        for _ in 0..reps {
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    w.as_ptr(),
                    1,
                    k as isize,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
        }
        let mm = t.elapsed().as_secs_f64() / reps as f64;
        let packed = mpnn::kernels::gemm::pack(&w, n, k);
        let fl = 2.0 * (m * k * n) as f64;
        let mut line = format!("{m}x{k}x{n}: matrixmultiply {:.1} GFLOP/s", fl / mm / 1e9);
        for isa in mpnn::kernels::isa::Isa::available() {
            let t = Instant::now();
            for _ in 0..reps {
                mpnn::kernels::gemm::gemm_with(isa, &a, m, k, &packed, n, mpnn::kernels::gemm::Init::Zero, &mut c);
            }
            let gm = t.elapsed().as_secs_f64() / reps as f64;
            line += &format!(", {isa} {:.1} GFLOP/s", fl / gm / 1e9);
        }
        println!("{line}");
    }
}
