//! The machine's own arithmetic limit per unit (`mpnn bench --peak`), so benchmark figures can be
//! given as a share of what this CPU can do.
//!
//! Each measurement runs 12 independent dependency chains of one instruction, kept in registers
//! (no loads or stores in the loop), long enough to take about a quarter of a second, on 1 thread
//! and then on every core at once (one chain set per thread, rates added):
//!
//! - `avx2 fma`: `vfmadd` on 8 float32 lanes (2 FLOP per lane);
//! - `avx512 fma`: `vfmadd` on 16 float32 lanes;
//! - `avx512 vnni u8×s8`: `vpdpbusd`, 64 byte products added into 16 int32 lanes (2 OP each);
//! - `avx512 vnni s16×s16`: `vpdpwssd`, 32 int16 products (the instruction of mpnn's W8A16 int8
//!   kernel on VNNI CPUs);
//! - `avx-vnni u8×s8` / `avx512vl vnni u8×s8`: `vpdpbusd` on ymm (32 byte products into 8
//!   int32 lanes) in its VEX and EVEX encodings (the instruction of the AVX2 path's W8A8
//!   kernel, `crate::kernels::int8::avx_vnni`);
//! - `avx512 bf16`: `vdpbf16ps`, 32 bfloat16 products added pairwise into 16 float32 lanes
//!   (2 FLOP each; the instruction of mpnn's bf16 kernel on AVX-512 BF16 CPUs);
//! - `amx bf16`: `tdpbf16ps`, 16 × 16 float32 outputs × 32 bfloat16 products per instruction
//!   (16·16·32·2 FLOP), 4 independent accumulator tiles instead of 12 chains (the instruction of
//!   mpnn's bf16 kernel where AMX runs; `crate::kernels::bf16::amx::peak`).
//!
//! Units the CPU lacks are listed as skipped, naming the missing feature.

use std::time::Instant;

use serde::Serialize;

/// One measured unit.
#[derive(Debug, Clone, Serialize)]
pub struct Peak {
    pub unit: String,
    pub threads: usize,
    /// Billions of operations per second (GFLOP/s for float units, GOP/s for integer ones).
    pub giga_ops: f64,
    /// `GFLOP/s` or `GOP/s`.
    pub measure: &'static str,
}

/// A unit: its name, the features it needs, the operations per loop iteration, the loop.
type Unit = (&'static str, &'static [&'static str], f64, &'static str, fn(u64) -> f32);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 12 independent chains of `op`, `n` iterations; returns a value that depends on them all.
    macro_rules! chains {
        ($name:ident, $features:literal, $ty:ty, $init:expr, $op:expr, $reduce:expr) => {
            #[target_feature(enable = $features)]
            unsafe fn $name(n: u64) -> f32 {
                let mut acc: [$ty; 12] = std::array::from_fn(|i| $init(i));
                let (a, b) = ($init(100), $init(101));
                for _ in 0..n {
                    for x in acc.iter_mut() {
                        *x = $op(*x, a, b);
                    }
                }
                let mut s = 0f32;
                for x in acc {
                    s += $reduce(x);
                }
                s
            }
        };
    }

    /// `x = op(x, a, b)` (Intel syntax, `x` the accumulator) as inline assembly: opaque to
    /// LLVM, which otherwise knows these instructions' semantics and, with `a` and `b` the same
    /// every iteration, replaced every other `vpdpwssd` by a `vpaddd` of one hoisted `vpmaddwd`
    /// (the s16 unit then reported ≈ 1.75× the instruction's real rate).
    macro_rules! opaque {
        ($op:literal, $x:expr, $a:expr, $b:expr) => {{
            let mut x = $x;
            std::arch::asm!(concat!($op, " {x}, {a}, {b}"), x = inout(zmm_reg) x, a = in(zmm_reg) $a, b = in(zmm_reg) $b,
                options(pure, nomem, nostack));
            x
        }};
    }

    chains!(
        avx2_fma_raw,
        "avx2,fma",
        __m256,
        |i: usize| _mm256_set1_ps(1.0 + i as f32 * 1e-7),
        |x, a, b| _mm256_fmadd_ps(a, x, b),
        |x: __m256| _mm256_cvtss_f32(x)
    );
    chains!(
        avx512_fma_raw,
        "avx512f,avx2,fma",
        __m512,
        |i: usize| _mm512_set1_ps(1.0 + i as f32 * 1e-7),
        |x, a, b| _mm512_fmadd_ps(a, x, b),
        |x: __m512| _mm512_reduce_add_ps(x)
    );
    chains!(
        vnni_u8_raw,
        "avx512f,avx512bw,avx512vnni",
        __m512i,
        |i: usize| _mm512_set1_epi32(i as i32 + 1),
        |x: __m512i, a: __m512i, b: __m512i| opaque!("vpdpbusd", x, a, b),
        |x: __m512i| _mm512_reduce_add_epi32(x) as f32
    );
    chains!(
        vnni_s16_raw,
        "avx512f,avx512bw,avx512vnni",
        __m512i,
        |i: usize| _mm512_set1_epi32(i as i32 + 1),
        |x: __m512i, a: __m512i, b: __m512i| opaque!("vpdpwssd", x, a, b),
        |x: __m512i| _mm512_reduce_add_epi32(x) as f32
    );

    /// [`opaque!`] on ymm with an explicit encoding (`{vex}` or `{evex}`).
    macro_rules! opaque_ymm {
        ($op:literal, $x:expr, $a:expr, $b:expr) => {{
            let mut x = $x;
            std::arch::asm!(concat!($op, " {x}, {a}, {b}"), x = inout(ymm_reg) x, a = in(ymm_reg) $a, b = in(ymm_reg) $b,
                options(pure, nomem, nostack));
            x
        }};
    }

    /// The 8 int32 lanes of `x`, added.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sum_epi32(x: __m256i) -> f32 {
        let lanes: [i32; 8] = std::mem::transmute(x);
        lanes.iter().fold(0i32, |a, &b| a.wrapping_add(b)) as f32
    }

    chains!(
        avx_vnni_u8_raw,
        "avx2,avxvnni",
        __m256i,
        |i: usize| _mm256_set1_epi32(i as i32 + 1),
        |x: __m256i, a: __m256i, b: __m256i| opaque_ymm!("{{vex}} vpdpbusd", x, a, b),
        |x: __m256i| sum_epi32(x)
    );
    chains!(
        evex_ymm_vnni_u8_raw,
        "avx2,avx512f,avx512vl,avx512vnni",
        __m256i,
        |i: usize| _mm256_set1_epi32(i as i32 + 1),
        |x: __m256i, a: __m256i, b: __m256i| opaque_ymm!("{{evex}} vpdpbusd", x, a, b),
        |x: __m256i| sum_epi32(x)
    );

    chains!(
        bf16_dp_raw,
        "avx512f,avx512bw,avx512bf16",
        __m512,
        |i: usize| _mm512_set1_ps(1.0 + i as f32 * 1e-2),
        |x: __m512, a: __m512, b: __m512| opaque!("vdpbf16ps", x, a, b),
        |x: __m512| _mm512_reduce_add_ps(x)
    );

    // SAFETY (all seven): only called after the unit's features were detected (`super::measure`).
    pub fn avx2_fma(n: u64) -> f32 {
        unsafe { avx2_fma_raw(n) }
    }
    pub fn avx512_fma(n: u64) -> f32 {
        unsafe { avx512_fma_raw(n) }
    }
    pub fn vnni_u8(n: u64) -> f32 {
        unsafe { vnni_u8_raw(n) }
    }
    pub fn vnni_s16(n: u64) -> f32 {
        unsafe { vnni_s16_raw(n) }
    }
    pub fn bf16_dp(n: u64) -> f32 {
        unsafe { bf16_dp_raw(n) }
    }
    pub fn avx_vnni_u8(n: u64) -> f32 {
        unsafe { avx_vnni_u8_raw(n) }
    }
    pub fn evex_ymm_vnni_u8(n: u64) -> f32 {
        unsafe { evex_ymm_vnni_u8_raw(n) }
    }
}

fn units() -> Vec<Unit> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![
            ("avx2 fma", &["avx2", "fma"], 12.0 * 8.0 * 2.0, "GFLOP/s", x86::avx2_fma),
            ("avx512 fma", &["avx512f", "avx2", "fma"], 12.0 * 16.0 * 2.0, "GFLOP/s", x86::avx512_fma),
            ("avx512 vnni u8×s8 (vpdpbusd)", &["avx512bw", "avx512_vnni"], 12.0 * 64.0 * 2.0, "GOP/s", x86::vnni_u8),
            ("avx512 vnni s16×s16 (vpdpwssd)", &["avx512bw", "avx512_vnni"], 12.0 * 32.0 * 2.0, "GOP/s", x86::vnni_s16),
            ("avx-vnni u8×s8 (vpdpbusd ymm, VEX)", &["avx2", "avx_vnni"], 12.0 * 32.0 * 2.0, "GOP/s", x86::avx_vnni_u8),
            (
                "avx512vl vnni u8×s8 (vpdpbusd ymm, EVEX)",
                &["avx2", "avx512vl", "avx512_vnni"],
                12.0 * 32.0 * 2.0,
                "GOP/s",
                x86::evex_ymm_vnni_u8,
            ),
            ("avx512 bf16 (vdpbf16ps)", &["avx512f", "avx512_bf16"], 12.0 * 32.0 * 2.0, "GFLOP/s", x86::bf16_dp),
            (
                "amx bf16 (tdpbf16ps)",
                &["amx_bf16"],
                4.0 * 16.0 * 16.0 * 32.0 * 2.0,
                "GFLOP/s",
                crate::kernels::bf16::amx::peak,
            ),
        ]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

/// Rate of `f` on `threads` threads at once, in billions of operations per second.
fn rate(f: fn(u64) -> f32, ops_per_iter: f64, threads: usize) -> f64 {
    // Calibrate to about 0.25 s per thread.
    let t = Instant::now();
    std::hint::black_box(f(1_000_000));
    let n = ((0.25 / t.elapsed().as_secs_f64().max(1e-6)) * 1e6) as u64 + 1;
    let elapsed: Vec<f64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let t = Instant::now();
                    std::hint::black_box(f(std::hint::black_box(n)));
                    t.elapsed().as_secs_f64()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    elapsed.iter().map(|e| n as f64 * ops_per_iter / e / 1e9).sum()
}

/// Measures every unit this CPU has on 1 thread and on `threads` threads (skipping `threads`
/// when it is 1); `skipped` is called with a line for each unit the CPU lacks.
pub fn measure(threads: usize, mut skipped: impl FnMut(String)) -> Vec<Peak> {
    let mut out = Vec::new();
    if units().is_empty() {
        skipped("skipped: no peak kernels for this architecture (x86-64 only)".to_string());
    }
    for (unit, features, ops, measure, f) in units() {
        if let Some(missing) = features.iter().find(|f| !crate::kernels::isa::cpu_has(f)) {
            skipped(format!("skipped: CPU lacks {missing} ({unit})"));
            continue;
        }
        let mut counts = vec![1];
        if threads > 1 {
            counts.push(threads);
        }
        for t in counts {
            out.push(Peak { unit: unit.to_string(), threads: t, giga_ops: rate(f, ops, t), measure });
        }
    }
    out
}

/// A markdown table of the measurements.
pub fn markdown(rows: &[Peak]) -> String {
    let mut s = String::from("| unit | threads | rate |\n| --- | ---: | ---: |\n");
    for r in rows {
        s.push_str(&format!("| {} | {} | {:.1} {} |\n", r.unit, r.threads, r.giga_ops, r.measure));
    }
    s
}

#[cfg(test)]
mod tests {
    /// The AMX unit is declared with the feature `cpu_has` knows (so a CPU without AMX lists it as
    /// skipped instead of running it).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn amx_bf16_unit_is_declared() {
        let units = super::units();
        let (_, features, ops, ..) = units.iter().find(|u| u.0 == "amx bf16 (tdpbf16ps)").unwrap();
        assert_eq!(*features, &["amx_bf16"][..]);
        assert_eq!(*ops, 4.0 * 16.0 * 16.0 * 32.0 * 2.0);
        if !crate::kernels::isa::cpu_has("amx_bf16") {
            eprintln!("skipped: CPU lacks amx_bf16 (amx bf16 (tdpbf16ps) peak unit not run)");
        }
    }
}
