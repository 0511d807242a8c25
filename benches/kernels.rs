//! Criterion micro-benchmarks of mpnn's kernels, each fast kernel beside its plain twin so the
//! ratio is visible in one run:
//!
//! - `gemm/*`: the AVX2 packed dense-layer kernel (`kernels::gemm::gemm`) vs its plain twin
//!   (`kernels::gemm::reference`, the same FMA chain one element at a time) vs the
//!   `matrixmultiply` crate's `sgemm`, on the model's shapes. Throughput is set to the number
//!   of floating-point operations (`2·M·K·N`), so criterion's `elem/s` column reads as FLOP/s
//!   (`35 Gelem/s` = 35 GFLOP/s).
//! - `linear/*`: `Linear::forward` (the packed kernel plus bias) vs `kernels::naive::linear`
//!   (float64 dot products), throughput in FLOP as above.
//! - `layer_norm`, `gelu`, `log_softmax`: the f32 kernels vs their plain float64 twins;
//!   throughput in elements.
//! - `int8_rows/*`: the int8 models' table GELU, W8A8 row quantizer, and the two in one pass
//!   (`gelu_codes`) vs its unfused twin; throughput in elements.
//! - `knn/*`: the k-NN graph (k = 48) of synthetic backbones, cell list vs plain scan (the
//!   method `Graph::build` picks for long structures vs the official all-pairs computation).
//! - `encoder/5L33`: edge features, one encoder layer, the whole `encode` and the plain
//!   reference encoder (`encode_reference`) with the parity checkpoint `full_k48.pt`; skipped
//!   with a message when `../shared/parity` (or `$MPNN_PARITY_DIR`) is missing.
//!
//! The dense kernels are single-threaded; the k-NN graph and the encoder use rayon's global pool
//! (all cores, `RAYON_NUM_THREADS` to change). Run: `cargo bench --bench kernels` (a filter such
//! as `cargo bench --bench kernels -- gemm` runs one group). Medians are written by criterion to
//! `target/criterion/GROUP/FUNCTION/PARAMETER/new/estimates.json`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rand::{Rng, SeedableRng};

use mpnn::featurize::{featurize, Batch, ChainSelection, Constraints};
use mpnn::kernels::gemm::{self, Init};
use mpnn::kernels::{gelu_inplace, log_softmax_inplace, naive, LayerNorm, Linear};
use mpnn::model::features::ca_coords;
use mpnn::model::graph::Graph;
use mpnn::model::ProteinMpnn;

/// Rows of one encoder work item: 8 nodes × 48 neighbours.
const ROWS: usize = 384;
/// Hidden width of the official models.
const H: usize = 128;

/// Settings for the slow plain twins (tens of ms to seconds per call): 10 samples with the same
/// iteration count each, instead of criterion's growing-iterations scheme, which would not fit
/// the 2 s target. [`fast_settings`] puts the group back.
fn slow_settings(group: &mut BenchmarkGroup<WallTime>) {
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
}

fn fast_settings(group: &mut BenchmarkGroup<WallTime>) {
    group.sample_size(20).sampling_mode(SamplingMode::Auto);
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// `C = A · Wᵀ` on the model's shapes: packed AVX2 kernel, its plain twin, matrixmultiply.
fn bench_gemm(c: &mut Criterion) {
    // (label, rows, n_in, n_out)
    let shapes = [
        ("384x128to128 (W2, W3)", ROWS, H, H),
        ("384x384to128 (3H to H)", ROWS, 3 * H, H),
        ("384x128to512 (FFN in)", ROWS, H, 4 * H),
        ("384x512to128 (FFN out)", ROWS, 4 * H, H),
        ("384x416to128 (edge embedding)", ROWS, 416, H),
    ];
    let mut group = c.benchmark_group("gemm");
    for (label, m, k, n) in shapes {
        let a = random(m * k, 1);
        let w = random(n * k, 2); // `[n_out, n_in]`, PyTorch layout
        let packed = gemm::pack(&w, n, k);
        let mut out = vec![0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::new("packed_avx2", label), |b| {
            b.iter(|| gemm::gemm(black_box(&a), m, k, &packed, n, Init::Zero, &mut out))
        });
        group.bench_function(BenchmarkId::new("matrixmultiply", label), |b| {
            b.iter(|| {
                // SAFETY: `a` is `[m, k]` row-major, `w` read as `Wᵀ` (`[k, n]` with strides 1, k),
                // `out` is `[m, n]` row-major; all three buffers are that large.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        black_box(&a).as_ptr(),
                        k as isize,
                        1,
                        w.as_ptr(),
                        1,
                        k as isize,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            })
        });
        slow_settings(&mut group);
        group.bench_function(BenchmarkId::new("reference", label), |b| {
            b.iter(|| gemm::reference(black_box(&a), m, k, &packed, n, Init::Zero, &mut out))
        });
        fast_settings(&mut group);
    }
    group.finish();
}

/// `Linear::forward` (packed kernel + bias) vs `naive::linear` (float64 dot products, allocates
/// its output).
fn bench_linear(c: &mut Criterion) {
    let mut group = c.benchmark_group("linear");
    for (label, n_in, n_out) in [("384x128to128", H, H), ("384x128to512", H, 4 * H)] {
        let lin = Linear::new(random(n_out * n_in, 3), Some(random(n_out, 4)), n_out, n_in);
        let x = random(ROWS * n_in, 5);
        let mut out = vec![0f32; ROWS * n_out];
        group.throughput(Throughput::Elements((2 * ROWS * n_in * n_out) as u64));
        group.bench_function(BenchmarkId::new("forward", label), |b| {
            b.iter(|| lin.forward(black_box(&x), ROWS, &mut out))
        });
        slow_settings(&mut group);
        group.bench_function(BenchmarkId::new("naive", label), |b| b.iter(|| naive::linear(&lin, black_box(&x), ROWS)));
        fast_settings(&mut group);
    }
    group.finish();
}

/// The plain float64 `log_softmax` of one row (`kernels::naive` has none).
fn log_softmax_f64(row: &mut [f32]) {
    let max = row.iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max);
    let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    row.iter_mut().for_each(|v| *v = (*v as f64 - lse) as f32);
}

/// The element-wise kernels on one work item's `[384, 128]` activations (`log_softmax`: 384 rows
/// of the 21-letter alphabet). In-place kernels get a fresh copy of the input per iteration
/// (the copy is not timed).
fn bench_elementwise(c: &mut Criterion) {
    let ln = LayerNorm { gamma: random(H, 6), beta: random(H, 7) };
    let x: Vec<f32> = random(ROWS * H, 8).iter().map(|v| v * 4.0).collect();

    let mut group = c.benchmark_group("layer_norm");
    group.throughput(Throughput::Elements((ROWS * H) as u64));
    group.bench_function(BenchmarkId::new("forward_inplace", "384x128"), |b| {
        b.iter_batched_ref(|| x.clone(), |buf| ln.forward_inplace(buf), BatchSize::SmallInput)
    });
    group.bench_function(BenchmarkId::new("naive", "384x128"), |b| b.iter(|| naive::layer_norm(&ln, black_box(&x))));
    group.finish();

    let mut group = c.benchmark_group("gelu");
    group.throughput(Throughput::Elements((ROWS * H) as u64));
    group.bench_function(BenchmarkId::new("gelu_inplace", "384x128"), |b| {
        b.iter_batched_ref(|| x.clone(), |buf| gelu_inplace(buf), BatchSize::SmallInput)
    });
    group.bench_function(BenchmarkId::new("naive", "384x128"), |b| {
        b.iter_batched_ref(|| x.clone(), |buf| buf.iter_mut().for_each(|v| *v = naive::gelu(*v)), BatchSize::SmallInput)
    });
    group.finish();

    let logits: Vec<f32> = random(ROWS * 21, 9).iter().map(|v| v * 8.0).collect();
    let mut group = c.benchmark_group("log_softmax");
    group.throughput(Throughput::Elements((ROWS * 21) as u64));
    group.bench_function(BenchmarkId::new("log_softmax_inplace", "384x21"), |b| {
        b.iter_batched_ref(
            || logits.clone(),
            |buf| buf.chunks_exact_mut(21).for_each(log_softmax_inplace),
            BatchSize::SmallInput,
        )
    });
    group.bench_function(BenchmarkId::new("plain_f64", "384x21"), |b| {
        b.iter_batched_ref(
            || logits.clone(),
            |buf| buf.chunks_exact_mut(21).for_each(log_softmax_f64),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The int8 models' message rows (`--precision int8`): the table GELU alone, the W8A8 row
/// quantizer alone, and the two as one pass (`gelu_codes`, AVX-512 VNNI) against its unfused
/// twin (the GELU pass, then the quantizer; every path's form). Post-GELU-like inputs in
/// `[-4, 4]`; throughput in elements.
fn bench_int8_rows(c: &mut Criterion) {
    use mpnn::kernels::gelu_fast::gelu_fast_inplace;
    use mpnn::kernels::int8::gelu_codes::{gelu_codes, gelu_codes_unfused};
    use mpnn::kernels::int8::w8a8::{quantize_rows_into, Rows};
    let x: Vec<f32> = random(ROWS * H, 10).iter().map(|v| v * 4.0).collect();
    let mut q = Rows::default();
    q.reset(ROWS, H);
    let mut group = c.benchmark_group("int8_rows");
    group.throughput(Throughput::Elements((ROWS * H) as u64));
    group.bench_function(BenchmarkId::new("gelu_fast", "384x128"), |b| {
        b.iter_batched_ref(|| x.clone(), |buf| gelu_fast_inplace(buf), BatchSize::SmallInput)
    });
    group.bench_function(BenchmarkId::new("quantize_rows", "384x128"), |b| {
        b.iter(|| quantize_rows_into(black_box(&x), H, q.rows_mut(0, ROWS)))
    });
    group.bench_function(BenchmarkId::new("gelu_codes", "384x128"), |b| {
        b.iter_batched_ref(|| x.clone(), |buf| gelu_codes(buf, H, None, q.rows_mut(0, ROWS)), BatchSize::SmallInput)
    });
    group.bench_function(BenchmarkId::new("gelu_codes_unfused", "384x128"), |b| {
        b.iter_batched_ref(
            || x.clone(),
            |buf| gelu_codes_unfused(buf, H, None, q.rows_mut(0, ROWS)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The k-NN graph (k = 48) of synthetic all-helix backbones: cell list vs the plain scan it is
/// tested equal to. Throughput in residues.
fn bench_knn(c: &mut Criterion) {
    let mut group = c.benchmark_group("knn");
    for len in [200, 2000] {
        let p = mpnn::bench::synthetic_backbone(&format!("synthetic_{len}"), len, 500);
        let f = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), false).unwrap();
        let batch = Batch::new(&[&f], None);
        let ca = ca_coords(&batch);
        let l = batch.l;
        assert_eq!(
            Graph::build_with(&ca, &batch.mask, l, &batch.lengths, 48, true),
            Graph::build_with(&ca, &batch.mask, l, &batch.lengths, 48, false)
        );
        group.throughput(Throughput::Elements(len as u64));
        if len > 1000 {
            slow_settings(&mut group);
        }
        group.bench_function(BenchmarkId::new("cell_list", len), |bn| {
            bn.iter(|| Graph::build_with(black_box(&ca), &batch.mask, l, &batch.lengths, 48, true))
        });
        group.bench_function(BenchmarkId::new("scan", len), |bn| {
            bn.iter(|| Graph::build_with(black_box(&ca), &batch.mask, l, &batch.lengths, 48, false))
        });
    }
    group.finish();
}

/// The parity fixture directory (`$MPNN_PARITY_DIR`, else `../shared/parity`), as the tests find it.
fn parity_dir() -> PathBuf {
    std::env::var_os("MPNN_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/parity"))
}

/// 5L33 (106 residues) with `full_k48.pt` (the official v_48 shapes): edge features, one
/// encoder layer, the whole encoder, and the plain reference encoder as its twin.
fn bench_encoder(c: &mut Criterion) {
    let dir = parity_dir();
    let (weights, pdb) = (dir.join("weights/full_k48.pt"), dir.join("structures/5L33.pdb"));
    if !weights.exists() || !pdb.exists() {
        eprintln!("encoder benchmarks skipped: {} or {} not found", weights.display(), pdb.display());
        return;
    }
    let ckpt = mpnn::checkpoint::load(&weights).unwrap();
    let model = ProteinMpnn::new(&ckpt, ckpt.architecture().unwrap()).unwrap();
    let p = mpnn::structure::read_structure(&pdb).unwrap();
    let f = featurize(&p, &ChainSelection::all(&p), &Constraints::default(), false).unwrap();
    let batch = Batch::new(&[&f], None);
    let (graph, e) = model.edge_features(&batch);
    // The first layer's inputs, as `encode_edges` prepares them: h_V = 0, h_E = W_e(E).
    let rows = batch.b * batch.l;
    let mut h_e0 = vec![0f32; e.len()];
    model.w_e.forward(&e, rows * graph.k, &mut h_e0);
    let h_v0 = vec![0f32; rows * model.hidden()];

    let mut group = c.benchmark_group("encoder");
    group.throughput(Throughput::Elements(rows as u64));
    slow_settings(&mut group); // tens of ms per call and more
    group.bench_function(BenchmarkId::new("edge_features", "5L33"), |b| b.iter(|| model.edge_features(&batch)));
    group.bench_function(BenchmarkId::new("layer", "5L33"), |b| {
        b.iter_batched_ref(
            || (h_v0.clone(), h_e0.clone()),
            |(h_v, h_e)| {
                model.encoder_layers[0].forward(&graph, &batch.mask, h_v, h_e, Default::default(), Default::default())
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function(BenchmarkId::new("encode", "5L33"), |b| b.iter(|| model.encode(&batch)));
    // Seconds per call: ten samples of one call each.
    group.measurement_time(Duration::from_secs(30));
    group.bench_function(BenchmarkId::new("encode_reference", "5L33"), |b| b.iter(|| model.encode_reference(&batch)));
    group.finish();
}

criterion_group! {
    name = benches;
    // Modest times so the whole file runs in a few minutes on two cores.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_gemm, bench_linear, bench_elementwise, bench_int8_rows, bench_knn, bench_encoder
}
criterion_main!(benches);
