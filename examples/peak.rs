use std::arch::x86_64::*;
#[target_feature(enable = "avx2,fma")]
unsafe fn run(n: usize) -> f32 {
    let mut acc = [_mm256_set1_ps(0.0); 12];
    let a = _mm256_set1_ps(1.0000001);
    let b = _mm256_set1_ps(0.9999999);
    for _ in 0..n {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(a, *x, b);
        }
    }
    let mut s = [0f32; 8];
    let mut t = acc[0];
    for x in &acc[1..] {
        t = _mm256_add_ps(t, *x);
    }
    _mm256_storeu_ps(s.as_mut_ptr(), t);
    s.iter().sum()
}
fn main() {
    let n = 100_000_000;
    let t = std::time::Instant::now();
    let r = unsafe { run(n) };
    let s = t.elapsed().as_secs_f64();
    println!("{r} peak single-core: {:.1} GFLOP/s", (n * 12 * 16) as f64 / s / 1e9);
}
