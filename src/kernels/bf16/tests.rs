use super::*;
use rand::{Rng, SeedableRng};

/// The kernels this CPU can run: `(path, native)`, with a `skipped:` line for each one it lacks.
fn kernels() -> Vec<(Isa, bool)> {
    let mut out = Vec::new();
    if isa::Isa::Avx512.supported() && isa::cpu_has("avx512_bf16") {
        out.push((Isa::Avx512, true));
    } else {
        eprintln!("skipped: CPU lacks avx512_bf16 (bf16 vdpbf16ps kernel)");
    }
    for p in Isa::ALL {
        match isa::skip_message(p) {
            Some(msg) => eprintln!("{msg}"),
            None => out.push((p, false)),
        }
    }
    out
}

fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn first_diff(a: &[f32], b: &[f32]) -> String {
    match a.iter().zip(b).position(|(x, y)| !(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))) {
        Some(i) => format!(
            "first difference at {i}: {:e} ({:08x}) vs {:e} ({:08x})",
            a[i],
            a[i].to_bits(),
            b[i],
            b[i].to_bits()
        ),
        None => "lengths differ".into(),
    }
}

/// Runs kernel `(p, native)` on `x` and returns the outputs (starting from `start`).
fn run(p: Isa, native: bool, x: &[f32], rows: usize, w: &Bf16Weights, init: Init, start: &[f32]) -> Vec<f32> {
    let mut inputs = Inputs::default();
    inputs.convert_with(p, x, rows, w.n_in, native);
    let mut out = start.to_vec();
    gemm_with(p, native, &inputs, rows, w, init, &mut out);
    out
}

fn twin(x: &[f32], rows: usize, w: &Bf16Weights, init: Init, start: &[f32]) -> Vec<f32> {
    let mut inputs = Inputs::default();
    inputs.convert(x, rows, w.n_in, true);
    let mut out = start.to_vec();
    reference(&inputs.bits, rows, w, init, &mut out);
    out
}

/// A value of one of several kinds: ordinary, wide-range, tiny (products below the float32
/// range), subnormal, huge (products above it), zeros, infinities.
fn edge_value(rng: &mut impl Rng, edge: bool) -> f32 {
    let v: f32 = rng.gen_range(-1.0..1.0);
    if !edge {
        return v;
    }
    match rng.gen_range(0..20) {
        0..=7 => v,
        8..=10 => v * 10f32.powi(rng.gen_range(-8..8)),
        11 | 12 => v * 2f32.powi(rng.gen_range(-126..-50)),
        13 => f32::from_bits(rng.gen_range(1..0x0080_0000)) * if rng.gen() { 1.0 } else { -1.0 },
        14 | 15 => v * 2f32.powi(rng.gen_range(50..127)),
        16 => [0.0, -0.0][rng.gen_range(0..2)],
        17 => [f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN][rng.gen_range(0..4)],
        _ => 2f32.powi(-126) * (1.0 + v),
    }
}

/// Runs `check` on every shape `(rows, n_in, n_out)`, with ordinary data and then edge values
/// ([`edge_value`]), for every way an output can start, with the twin's result (`want`) and a
/// description of the case.
#[allow(clippy::type_complexity)]
fn for_each_case(
    rng: &mut rand_chacha::ChaCha8Rng,
    shapes: &[(usize, usize, usize)],
    mut check: impl FnMut(&[f32], usize, &Bf16Weights, Init, &[f32], &[f32], &str),
) {
    for edge in [false, true] {
        for &(rows, n_in, n_out) in shapes {
            let x: Vec<f32> = (0..rows * n_in).map(|_| edge_value(rng, edge)).collect();
            let wv: Vec<f32> = (0..n_out * n_in).map(|_| edge_value(rng, edge)).collect();
            let b: Vec<f32> = (0..n_out).map(|_| edge_value(rng, edge)).collect();
            let start: Vec<f32> = (0..rows * n_out).map(|_| edge_value(rng, edge)).collect();
            let w = Bf16Weights::new(&wv, n_out, n_in);
            for init in [Init::Zero, Init::Bias(&b), Init::Accumulate(Some(&b)), Init::Accumulate(None)] {
                let want = twin(&x, rows, &w, init, &start);
                let case = format!("edge={edge}: {rows}x{n_in}x{n_out} {init:?}");
                check(&x, rows, &w, init, &start, &want, &case);
            }
        }
    }
}

/// Every kernel equals the plain twin bit for bit (NaN for NaN), on random shapes (odd `n_in`,
/// `n_out` not a multiple of 16 or 32, 1 to 40 rows) and every way an output can start, with
/// ordinary data and with edge values (subnormals, tiny and huge products, infinities).
#[test]
fn every_kernel_equals_the_twin_bit_for_bit() {
    let kernels = kernels();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let mut shapes = vec![(1, 1, 1), (5, 7, 3), (12, 128, 128), (13, 128, 21), (48, 512, 128), (7, 417, 130)];
    for _ in 0..30 {
        shapes.push((rng.gen_range(1..=40), rng.gen_range(1..=300), rng.gen_range(1..=70)));
    }
    let fallbacks = fallback_rows();
    for_each_case(&mut rng, &shapes, |x, rows, w, init, start, want, case| {
        for &(p, native) in &kernels {
            let got = run(p, native, x, rows, w, init, start);
            assert!(same(&got, want), "{p} native={native} {case}: {}", first_diff(&got, want));
        }
    });
    // The edge values send some rows of the emulated paths through the twin fallback.
    assert!(fallback_rows() > fallbacks, "the edge values never reached the fallback");
}

/// The emulated paths take their fast form on ordinary data (and the fallback on tiny rows
/// only): a row of 1e-30 against weights of 1e-10 needs the twin, 1e-3 against 1e-3 does not.
#[test]
fn the_fast_form_check() {
    let w = Bf16Weights::new(&[1e-10, 1e-3], 2, 1);
    let mut inputs = Inputs::default();
    inputs.convert(&[1e-30, 1e-3, 0.0], 3, 1, false);
    assert!(inputs.min_exp[0] + w.min_exp < MIN_EXP_SUM);
    assert!(inputs.min_exp[1] + w.min_exp >= MIN_EXP_SUM);
    assert_eq!(inputs.min_exp[2], 255);
    assert!(start_ok(0.0) && start_ok(-0.0) && start_ok(f32::INFINITY) && start_ok(1e-30));
    assert!(!start_ok(1e-38) && !start_ok(1e-40));
}

/// The twin reproduces what `vdpbf16ps` gave on a Zen 4 CPU in targeted cases (so the definition
/// is checked even where the instruction is absent), and the instruction agrees where present.
#[test]
fn twin_matches_measured_instruction_cases() {
    let p = |e: i32| 2f32.powi(e);
    let m126 = f32::MIN_POSITIVE;
    // (start, x[odd], w[odd], x[even], w[even], result measured on Zen 4)
    let cases: &[(f32, f32, f32, f32, f32, f32)] = &[
        // the odd product is added first: (1 - 1) + 2^-30, not (1 + 2^-30) - 1 = 0
        (1.0, -1.0, 1.0, p(-30), 1.0, p(-30)),
        // ties to even at each step
        (1.0, p(-24), 1.0, p(-24), 1.0, 1.0),
        // a subnormal start reads as zero
        (p(-127), p(-125), 1.0, 0.0, 0.0, p(-125)),
        // a product below the float32 range is added exactly (as in an FMA)
        (m126, p(-70), p(-70), 0.0, 0.0, m126 + p(-140)),
        // ... and a subnormal sum is flushed to zero before the next product
        (0.0, 1.5 * p(-63), p(-64), p(-63), p(-63), m126),
        (1.5 * m126, -1.0, m126, 1.0, m126, m126),
        // an exact product above the float32 range can be cancelled back into range
        (f32::MIN, p(64), p(64), 0.0, 0.0, p(104)),
        // -0 + 0·0 = +0, -0 + (-0)·0 = -0
        (-0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (-0.0, -0.0, 0.0, -0.0, 0.0, -0.0),
    ];
    let (kernels, amx_kernels) = (kernels(), amx_kernels());
    for &(s, x1, w1, x0, w0, want) in cases {
        let w = Bf16Weights::new(&[w0, w1], 1, 2);
        let x = [x0, x1];
        let got = twin(&x, 1, &w, Init::Accumulate(None), &[s]);
        assert_eq!(got[0].to_bits(), want.to_bits(), "twin: start {s:e}, odd {x1:e}·{w1:e}, even {x0:e}·{w0:e}");
        for &(p, native) in &kernels {
            let got = run(p, native, &x, 1, &w, Init::Accumulate(None), &[s]);
            assert_eq!(got[0].to_bits(), want.to_bits(), "{p} native={native}: start {s:e}, odd {x1:e}·{w1:e}");
        }
        for &(name, f) in &amx_kernels {
            let got = run_amx(f, &x, 1, &w, Init::Accumulate(None), &[s]);
            assert_eq!(got[0].to_bits(), want.to_bits(), "{name}: start {s:e}, odd {x1:e}·{w1:e}");
        }
    }
}

/// [`to_bf16`] rounds to nearest even like the `half` crate on normal values, flushes
/// subnormals, keeps NaN, and equals `vcvtne2ps2bf16` on random bits where the CPU has it.
#[test]
fn conversion_equals_the_instruction() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let xs: Vec<f32> = (0..1 << 16).map(|_| f32::from_bits(rng.gen())).collect();
    for &x in &xs {
        let h = to_bf16(x);
        if x.is_nan() {
            assert!(from_bf16(h).is_nan());
        } else if x.is_subnormal() {
            assert_eq!(from_bf16(h).to_bits(), 0f32.copysign(x).to_bits());
        } else {
            assert_eq!(h, half::bf16::from_f32(x).to_bits(), "{x:e}");
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        if !isa::cpu_has("avx512_bf16") {
            eprintln!("skipped: CPU lacks avx512_bf16 (vcvtne2ps2bf16 comparison)");
            return;
        }
        #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
        unsafe fn hw(x: &[f32; 32]) -> [u16; 32] {
            use std::arch::x86_64::*;
            let lo = _mm512_loadu_ps(x.as_ptr());
            let hi = _mm512_loadu_ps(x.as_ptr().add(16));
            std::mem::transmute::<__m512bh, [u16; 32]>(_mm512_cvtne2ps_pbh(hi, lo))
        }
        for chunk in xs.chunks_exact(32) {
            let c: &[f32; 32] = chunk.try_into().unwrap();
            // SAFETY: the CPU has AVX-512 BF16 (checked; it implies F and BW here).
            let h = unsafe { hw(c) };
            for (x, h) in c.iter().zip(h) {
                assert_eq!(to_bf16(*x), h, "{x:e} ({:08x})", x.to_bits());
            }
        }
    }
}

/// A row's result does not depend on how many rows are computed with it.
#[test]
fn rows_do_not_depend_on_the_batch() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let (n_in, n_out) = (129, 40);
    let x: Vec<f32> = (0..30 * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let w = Bf16Weights::new(&(0..n_in * n_out).map(|_| rng.gen_range(-1.0..1.0)).collect::<Vec<f32>>(), n_out, n_in);
    for (p, native) in kernels() {
        let all = run(p, native, &x, 30, &w, Init::Zero, &vec![0.0; 30 * n_out]);
        for r in [0, 11, 12, 29] {
            let one = run(p, native, &x[r * n_in..(r + 1) * n_in], 1, &w, Init::Zero, &vec![0.0; n_out]);
            assert!(same(&one, &all[r * n_out..(r + 1) * n_out]), "{p} native={native} row {r}");
        }
    }
}

/// The emulated paths' conversion (vector code per path) equals the scalar one on random bits
/// (NaN, infinities and subnormals included) and odd widths, exponents included.
#[test]
fn emulated_conversion_is_the_same_on_every_path() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    for &(rows, n_in) in &[(3usize, 1usize), (5, 15), (4, 16), (7, 33), (9, 128), (2, 417)] {
        let x: Vec<f32> = (0..rows * n_in).map(|_| f32::from_bits(rng.gen())).collect();
        let mut want =
            Inputs { swapped: vec![0.0; rows * n_in.div_ceil(2) * 2], min_exp: vec![0; rows], ..Default::default() };
        swap_rows(&x, rows, n_in, &mut want);
        for (p, native) in kernels() {
            if native {
                continue;
            }
            let mut got = Inputs::default();
            got.convert_with(p, &x, rows, n_in, false);
            assert_eq!(got.min_exp, want.min_exp, "{p} {rows}x{n_in}");
            let (g, w): (Vec<u32>, Vec<u32>) =
                (got.swapped.iter().map(|v| v.to_bits()).collect(), want.swapped.iter().map(|v| v.to_bits()).collect());
            assert_eq!(g, w, "{p} {rows}x{n_in}");
            for (i, v) in want.swapped.iter().enumerate() {
                let src = if n_in % 2 == 1 && i % (n_in + 1) == n_in - 1 {
                    0.0
                } else {
                    x[(i / (n_in.div_ceil(2) * 2)) * n_in + ((i % (n_in.div_ceil(2) * 2)) ^ 1)]
                };
                assert_eq!(v.to_bits(), from_bf16(to_bf16(src)).to_bits(), "scalar swap at {i}");
            }
        }
    }
}

/// An AMX tile kernel: `out = init + x · Wᵀ` from [`Inputs::bits`].
type AmxKernel = fn(&[u16], usize, &Bf16Weights, Init, &mut [f32]);

/// The AMX kernels this CPU can run: the tile emulator always, the instructions where
/// [`amx::detect`] passes (a `skipped:` line otherwise).
fn amx_kernels() -> Vec<(&'static str, AmxKernel)> {
    let mut out: Vec<(&'static str, AmxKernel)> = vec![("amx emulated", |x, rows, w, init, out| {
        amx::gemm_emulated(x, rows, w, init, out, amx::emulate_tdpbf16ps_chain)
    })];
    match amx::detect() {
        Ok(()) => out.push(("amx", amx::gemm)),
        Err(e) => eprintln!("skipped: CPU lacks amx-bf16 (bf16 AMX tile kernel: {e})"),
    }
    out
}

fn run_amx(f: AmxKernel, x: &[f32], rows: usize, w: &Bf16Weights, init: Init, start: &[f32]) -> Vec<f32> {
    let mut inputs = Inputs::default();
    inputs.convert(x, rows, w.n_in, true);
    let mut out = start.to_vec();
    f(&inputs.bits, rows, w, init, &mut out);
    out
}

/// The AMX tiling (pair swap, `-0` pair padding, row and column padding, start values staged in
/// `C`) equals the twin bit for bit through the tile emulator, and through the instructions
/// where the CPU has them: random shapes (1-40 rows, 1-300 inputs, 1-70 outputs), shapes on and
/// around the tile sizes, every way an output can start, ordinary data and edge values.
#[test]
fn amx_tiles_equal_the_twin_bit_for_bit() {
    let kernels = amx_kernels();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let mut shapes = vec![
        (1, 1, 1),
        (1, 2, 16),
        (16, 32, 16),
        (32, 32, 32),
        (33, 33, 33),
        (31, 64, 48),
        (40, 300, 70),
        (3, 0, 5),
        (64, 31, 17),
    ];
    for _ in 0..30 {
        shapes.push((rng.gen_range(1..=40), rng.gen_range(1..=300), rng.gen_range(1..=70)));
    }
    for_each_case(&mut rng, &shapes, |x, rows, w, init, start, want, case| {
        for &(name, f) in &kernels {
            let got = run_amx(f, x, rows, w, init, start);
            assert!(same(&got, want), "{name} {case}: {}", first_diff(&got, want));
        }
    });
}

/// Padded pairs must not touch a `-0` sum: the twin keeps `-0 + (-0)·1 + ...` at `-0`, and so do
/// the tiles, whose 14 padded pairs multiply `+0` by `-0` (a `+0` product would give `+0`).
#[test]
fn amx_padding_keeps_negative_zero() {
    let (rows, n_in, n_out) = (3, 4, 5);
    let w = Bf16Weights::new(&vec![1.0; n_out * n_in], n_out, n_in);
    let x = vec![-0.0; rows * n_in];
    let start = vec![-0.0; rows * n_out];
    let want = twin(&x, rows, &w, Init::Accumulate(None), &start);
    assert!(want.iter().all(|v| v.to_bits() == (-0f32).to_bits()), "{want:?}");
    for (name, f) in amx_kernels() {
        let got = run_amx(f, &x, rows, &w, Init::Accumulate(None), &start);
        assert!(same(&got, &want), "{name}: {got:?}");
    }
}

/// The tile emulators follow Intel's two texts: the chain form adds the even element of a pair
/// first (the opposite of `vdpbf16ps`), the current SDM's form sums even and odd products apart
/// and adds their sum to `C`; both read a subnormal accumulator as zero and flush results.
#[test]
fn amx_tile_emulators_follow_the_two_definitions() {
    let h = to_bf16;
    let mut a: amx::TileBf16 = [[0; 32]; 16];
    let mut b: amx::TileBf16 = [[0; 32]; 16];
    for row in a.iter_mut() {
        row[0] = h(-1.0); // pair 0, even element
        row[1] = h(2f32.powi(-30)); // pair 0, odd element
    }
    b[0] = [h(1.0); 32];
    // Chain, even first: (1 - 1) + 2^-30. Odd first would give (1 + 2^-30) - 1 = 0.
    let mut c: amx::TileF32 = [[1.0; 16]; 16];
    amx::emulate_tdpbf16ps_chain(&mut c, &a, &b);
    assert!(c.iter().flatten().all(|&v| v == 2f32.powi(-30)), "{:?}", c[0]);
    // Partial sums: 1 + (-1 + 2^-30) = 1 - 1 = 0 (2^-30 is lost against 1 before C is added).
    let mut c: amx::TileF32 = [[1.0; 16]; 16];
    amx::emulate_tdpbf16ps(&mut c, &a, &b);
    assert!(c.iter().flatten().all(|&v| v == 0.0), "{:?}", c[0]);
    // A subnormal start reads as zero; a subnormal sum is flushed (to a zero of its sign).
    let mut a: amx::TileBf16 = [[0; 32]; 16];
    a[0][0] = h(2f32.powi(-70));
    b[0] = [h(2f32.powi(-70)); 32];
    for op in [amx::emulate_tdpbf16ps_chain as amx::TileOp, amx::emulate_tdpbf16ps] {
        let mut c: amx::TileF32 = [[f32::from_bits(1); 16]; 16];
        op(&mut c, &a, &b);
        assert_eq!(c[0][0].to_bits(), 0, "2^-140 flushed onto a zero start");
        assert_eq!(c[1][0].to_bits(), 0, "subnormal start read as zero");
    }
}

/// Why the tiles need the hardware's word: through the current SDM's definition, the same
/// packing gives other bits than the twin (the contract's chain cannot be re-associated), so
/// [`amx::in_use`] stays false unless the self-test sees the twin's bits from the silicon.
#[test]
fn amx_current_sdm_form_is_not_the_contract() {
    let w = Bf16Weights::new(&[2f32.powi(-30), 1.0], 1, 2);
    let x = [1.0, -1.0];
    let want = twin(&x, 1, &w, Init::Accumulate(None), &[1.0]);
    assert_eq!(want[0], 2f32.powi(-30));
    let sdm: AmxKernel = |x, rows, w, init, out| amx::gemm_emulated(x, rows, w, init, out, amx::emulate_tdpbf16ps);
    assert_eq!(run_amx(sdm, &x, 1, &w, Init::Accumulate(None), &[1.0])[0], 0.0);
}

/// The start-up self-test passes a kernel with the twin's bits (the chain-form emulator) and
/// fails one with the current SDM's partial sums, saying so.
#[test]
fn amx_self_test_tells_the_two_definitions_apart() {
    amx::self_test_with(|x, rows, w, init, out| {
        amx::gemm_emulated(x, rows, w, init, out, amx::emulate_tdpbf16ps_chain)
    })
    .unwrap();
    let e =
        amx::self_test_with(|x, rows, w, init, out| amx::gemm_emulated(x, rows, w, init, out, amx::emulate_tdpbf16ps))
            .unwrap_err();
    assert!(e.contains("matches the current SDM"), "{e}");
}

/// `cpu_has("amx_bf16")` is [`amx::detect`]; where it passes, the start-up self-test gives the
/// twin's bits. On this machine: a `skipped:` line naming the reason.
#[test]
fn amx_detection_and_self_test() {
    assert_eq!(isa::cpu_has("amx_bf16"), amx::detect().is_ok());
    match amx::detect() {
        Ok(()) => {
            amx::self_test().unwrap();
            assert!(amx::in_use());
        }
        Err(e) => {
            assert!(!amx::in_use() && !amx_on());
            assert_ne!(kernel_name(Isa::Avx512), "amx");
            eprintln!("skipped: CPU lacks amx-bf16 (AMX self-test: {e})");
        }
    }
}
