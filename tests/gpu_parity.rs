//! The GPU backend (wgpu) against the official fixtures and against the CPU path. In CI it runs
//! on Mesa's software Vulkan device (lavapipe); without any Vulkan device the tests print
//! `skipped: no Vulkan device` (and fail under `CI=true`).
#![cfg(feature = "gpu")]

mod common;

use std::sync::Arc;

use common::*;
use mpnn::alphabet::{self, VOCAB};
use mpnn::featurize::{Batch, Features};
use mpnn::gpu::{Draw, Gpu, GpuModel, SampleItem};
use mpnn::model::decoder::{decoding_order, score};
use mpnn::sampler::{omit_vector, Argmax, Chooser, Multinomial, Sampler, SamplingOptions};

/// The GPU (software adapters allowed), or `None` with `skipped: no Vulkan device` (a failure
/// under `CI=true`).
fn gpu() -> Option<Arc<Gpu>> {
    match Gpu::open(true) {
        Ok(g) => {
            eprintln!("GPU: {}", g.adapter);
            Some(Arc::new(g))
        }
        Err(e) => {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("no Vulkan device under CI=true (install libvulkan1 mesa-vulkan-drivers): {e}");
            }
            eprintln!("skipped: no Vulkan device ({e})");
            None
        }
    }
}

/// The parity cases the GPU sampler tests run (the log-probability test runs every case).
/// Lavapipe (CI) is slow (~0.5 GFLOP/s and ~ms per dispatch on 2 cores), so by default they
/// cover every code path on the cases that are quick there: the pruned model (small_5L33,
/// small_6EHB), the full model with bias and omissions (6MRR), missing residues and chain breaks
/// (quirks_edge), the CA-only model (ca_5L33); the official sampling paths (`tied`) also on the
/// full model (monomer_5L33), a tied homo-oligomer (homooligomer_4GYT_tied) and tied sampling
/// with beta (complex_3HTN_tied_beta). `MPNN_GPU_PARITY=all` runs every case (on a real GPU that
/// takes seconds; on lavapipe about 20 minutes), `MPNN_GPU_PARITY=case,case` the named ones.
fn gpu_cases(dir: &std::path::Path, tied: bool) -> Vec<String> {
    match std::env::var("MPNN_GPU_PARITY").as_deref() {
        Ok("all") => return cases(dir),
        Ok(list) if !list.is_empty() => return list.split(',').map(|s| s.trim().to_string()).collect(),
        _ => {}
    }
    let mut v = vec!["small_5L33", "small_6EHB", "monomer_6MRR_bias_omit", "quirks_edge", "ca_5L33"];
    if tied {
        v.extend(["monomer_5L33", "homooligomer_4GYT_tied", "complex_3HTN_tied_beta"]);
    }
    let all = cases(dir);
    v.into_iter().filter(|c| all.iter().any(|a| a == c)).map(String::from).collect()
}

fn options_of(case: &Case) -> SamplingOptions {
    let j = &case.json;
    let mut o = SamplingOptions::new(j["temperature"].as_f64().unwrap() as f32);
    o.omit_aas = omit_vector(j["omit_AAs"].as_str().unwrap_or("X"));
    if let Some(bias) = j["bias_AA_jsonl"].as_object() {
        for (letter, v) in bias {
            let i = alphabet::index_of(letter.chars().next().unwrap()).unwrap();
            o.bias_aa[i as usize] = v.as_f64().unwrap() as f32;
        }
    }
    o.pssm_multi = j["pssm_multi"].as_f64().unwrap_or(0.0) as f32;
    o.pssm_log_odds_flag = j["pssm_log_odds_flag"].as_i64().unwrap_or(0) != 0;
    o.pssm_bias_flag = j["pssm_bias_flag"].as_i64().unwrap_or(0) != 0;
    o
}

fn design_of(case: &Case, f: &Features) -> Vec<f32> {
    let n = &case.npz;
    n.f32("chain_M")
        .unwrap()
        .iter()
        .zip(n.f32("chain_M_pos").unwrap())
        .zip(&f.mask)
        .map(|((a, b), c)| a * b * c)
        .collect()
}

/// The designed positions whose conditional probabilities a test computes: every one under
/// `MPNN_GPU_PARITY=all`, else at most 16 evenly spaced ones (each target's pass is independent
/// of the others', so a subset checks the same code on every structure at a fraction of
/// lavapipe's time).
fn conditional_targets(design: &[f32]) -> Vec<f32> {
    if std::env::var("MPNN_GPU_PARITY").as_deref() == Ok("all") {
        return design.to_vec();
    }
    let designed: Vec<usize> = (0..design.len()).filter(|&i| design[i] == 1.0).collect();
    let stride = designed.len().div_ceil(16).max(1);
    let mut subset = vec![0f32; design.len()];
    for &i in designed.iter().step_by(stride) {
        subset[i] = 1.0;
    }
    subset
}

/// `max_abs_diff` over the rows where `rows` is 1.
fn max_abs_diff_at(a: &[f32], b: &[f32], rows: &[f32]) -> f32 {
    let pick = |x: &[f32]| -> Vec<f32> {
        x.chunks(VOCAB).zip(rows).filter(|(_, &m)| m == 1.0).flat_map(|(r, _)| r.iter().copied()).collect()
    };
    max_abs_diff(&pick(a), &pick(b))
}

/// Scoring (`forward()`), unconditional and both conditional log-probabilities of every parity
/// case within 1e-4 of the official fixtures (conditional: see [`conditional_targets`]).
#[test]
fn gpu_log_probs_match_official() {
    let Some(dir) = parity_dir() else { return };
    let Some(gpu) = gpu() else { return };
    let names = match std::env::var("MPNN_GPU_PARITY").as_deref() {
        Ok(list) if !list.is_empty() && list != "all" => list.split(',').map(|s| s.trim().to_string()).collect(),
        _ => cases(&dir),
    };
    for name in names {
        let case = load_case(&dir, &name);
        let model = case.model();
        let gm = GpuModel::new(gpu.clone(), &model);
        let f = case.features("pdb").unwrap();
        let batch = Batch::new(&[&f], None);
        let n = &case.npz;
        let randn = n.f32("randn").unwrap();
        let design = design_of(&case, &f);
        let order = decoding_order(&design, &randn);
        let t = std::time::Instant::now();
        // One encoder run for both passes.
        let mut passes =
            gm.forward_passes(&model, &batch, &[(f.s.clone(), Some(order.clone())), (f.s.clone(), None)]).unwrap();
        let (lp, un) = (passes.remove(0), passes.remove(0));
        let d = max_abs_diff(&lp, &n.f32("log_probs").unwrap());
        let sc = score(&lp, &f.s, &design);
        eprintln!("{name}: log_probs {d:.2e} ({:.2?})", t.elapsed());
        assert!(d < 1e-4, "{name}: log_probs differ by {d}");
        assert!((sc - n.f32("score").unwrap()[0]).abs() < 1e-4, "{name}: score {sc}");
        let d = max_abs_diff(&un, &n.f32("unconditional_log_probs").unwrap());
        eprintln!("{name}: unconditional {d:.2e}");
        assert!(d < 1e-4, "{name}: unconditional differs by {d}");
        let t = std::time::Instant::now();
        let targets = conditional_targets(&design);
        let count = targets.iter().filter(|&&m| m == 1.0).count();
        let mut both = gm.conditional_variants(&model, &batch, &f.s, &targets, &randn, &[true, false]).unwrap();
        let (cb, cs) = (both.remove(0), both.remove(0));
        let d = max_abs_diff_at(&cb, &n.f32("conditional_backbone_log_probs").unwrap(), &targets);
        eprintln!("{name}: conditional backbone {d:.2e} ({count} positions, {:.2?} for both)", t.elapsed());
        assert!(d < 1e-4, "{name}: conditional backbone differs by {d}");
        let d = max_abs_diff_at(&cs, &n.f32("conditional_log_probs").unwrap(), &targets);
        eprintln!("{name}: conditional {d:.2e}");
        assert!(d < 1e-4, "{name}: conditional differs by {d}");
    }
}

/// The sampler on the GPU with argmax and forced draws gives the official sequences, orders,
/// probabilities and scores.
#[test]
fn gpu_sampler_matches_official_argmax_and_forced_paths() {
    let Some(dir) = parity_dir() else { return };
    let Some(gpu) = gpu() else { return };
    for name in gpu_cases(&dir, true) {
        let case = load_case(&dir, &name);
        let model = case.model();
        let gm = GpuModel::new(gpu.clone(), &model);
        let f = case.features("pdb").unwrap();
        let threshold = case.json["pssm_threshold"].as_f64().unwrap_or(0.0) as f32;
        let lom = mpnn::sampler::pssm_log_odds_mask(&f, threshold);
        let options = options_of(&case);
        let n = &case.npz;
        let randn = n.f32("randn").unwrap();
        let forced: Vec<u8> = n.i64("forced_seq").unwrap().iter().map(|&v| v as u8).collect();
        let enc = model.encode(&Batch::new(&[&f], None));
        let cpu = Sampler::new(&model, &enc, &f, lom.clone(), options.clone());
        // Both paths in one batch (one encoder run).
        let t = std::time::Instant::now();
        let samples = gm
            .sample(&model, &f, &lom, &options, &[&randn, &randn], vec![Draw::Argmax, Draw::Forced(&forced)])
            .unwrap();
        eprintln!("{name}: GPU sampling {:.2?}", t.elapsed());
        for (kind, sample) in ["argmax", "forced"].iter().zip(samples) {
            let want_s: Vec<u8> = n.i64(&format!("{kind}_S")).unwrap().iter().map(|&v| v as u8).collect();
            let want_order: Vec<usize> = n.i64(&format!("{kind}_order")).unwrap().iter().map(|&v| v as usize).collect();
            assert_eq!(sample.decoding_order, want_order, "{name}: {kind} decoding order");
            let mismatches: Vec<usize> = (0..f.len()).filter(|&i| sample.s[i] != want_s[i]).collect();
            assert!(mismatches.is_empty(), "{name}: {kind} sequence differs at {mismatches:?}");
            let dp = max_abs_diff(&sample.probs, &n.f32(&format!("{kind}_probs")).unwrap());
            let (sc, gs) = cpu.scores(&sample);
            let dsc = (sc - n.f32(&format!("{kind}_score")).unwrap()[0]).abs();
            let dgs = (gs - n.f32(&format!("{kind}_global_score")).unwrap()[0]).abs();
            eprintln!("{name}: {kind}: probs {dp:.2e}, score {dsc:.2e}, global score {dgs:.2e}");
            let tol = 1e-5f32.max(2.5e-6 / options.temperature) * 2.0;
            assert!(dp < tol, "{name}: {kind} probs differ by {dp} (tolerance {tol})");
            assert!(dsc < 1e-4, "{name}: {kind} score differs by {dsc}");
            assert!(dgs < 1e-4, "{name}: {kind} global score differs by {dgs}");
        }
    }
}

/// Seeded multinomial sampling: the GPU and the CPU draw the same sequences from the same
/// streams, except where the two implementations' probabilities straddle a uniform draw
/// (reported; none expected on these small structures).
#[test]
fn gpu_and_cpu_seeded_samples_agree() {
    let Some(dir) = parity_dir() else { return };
    let Some(gpu) = gpu() else { return };
    let mut report = Vec::new();
    let mut total = 0;
    for name in ["small_5L33", "small_6EHB", "monomer_6MRR_bias_omit", "quirks_edge"] {
        let case = load_case(&dir, name);
        let model = case.model();
        let gm = GpuModel::new(gpu.clone(), &model);
        let f = case.features("pdb").unwrap();
        let lom = mpnn::sampler::pssm_log_odds_mask(&f, 0.0);
        let mut options = options_of(&case);
        options.temperature = 0.1;
        let nseq = 4;
        let stream = |i: u64| mpnn::rng::stream(7, &f.name, mpnn::rng::Purpose::DesignDraws, i);
        let randns: Vec<Vec<f32>> = (0..nseq)
            .map(|i| mpnn::rng::randn(&mut mpnn::rng::stream(7, &f.name, mpnn::rng::Purpose::DesignOrder, i), f.len()))
            .collect();
        let refs: Vec<&[f32]> = randns.iter().map(|r| r.as_slice()).collect();
        let enc = model.encode(&Batch::new(&[&f], None));
        let cpu = Sampler::new(&model, &enc, &f, lom.clone(), options.clone());
        let mut choosers: Vec<Multinomial<_>> = (0..nseq).map(|i| Multinomial(stream(i))).collect();
        let mut dyns: Vec<&mut dyn Chooser> = choosers.iter_mut().map(|c| c as &mut dyn Chooser).collect();
        let want = cpu.sample_many(&refs, &mut dyns);
        let mut rngs: Vec<_> = (0..nseq).map(stream).collect();
        let draws: Vec<Draw> = rngs.iter_mut().map(|r| Draw::Uniform(r)).collect();
        let got = gm.sample(&model, &f, &lom, &options, &refs, draws).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            total += 1;
            assert_eq!(g.decoding_order, w.decoding_order, "{name} #{i}: order");
            if g.s != w.s {
                let first = (0..f.len()).find(|&t| g.s[t] != w.s[t]).unwrap();
                let margin = (0..VOCAB)
                    .map(|a| (g.probs[first * VOCAB + a] - w.probs[first * VOCAB + a]).abs())
                    .fold(0f32, f32::max);
                report.push(format!("{name} #{i}: first difference at {first} (probs differ by {margin:.1e})"));
            } else {
                let d = max_abs_diff(&g.probs, &w.probs);
                assert!(d < 1e-4, "{name} #{i}: probs differ by {d}");
            }
        }
    }
    eprintln!("GPU vs CPU seeded samples: {} of {total} differ", report.len());
    for r in &report {
        eprintln!("  {r}");
    }
    assert!(report.is_empty(), "GPU and CPU samples differ: {report:?}");
}

/// A sequence sampled alone equals the same sequence sampled among others, and argmax on the
/// GPU equals argmax on the CPU.
#[test]
fn gpu_batching_never_changes_a_sample() {
    let Some(dir) = parity_dir() else { return };
    let Some(gpu) = gpu() else { return };
    let case = load_case(&dir, "small_5L33");
    let model = case.model();
    let gm = GpuModel::new(gpu, &model);
    let f = case.features("pdb").unwrap();
    let lom = mpnn::sampler::pssm_log_odds_mask(&f, 0.0);
    let options = SamplingOptions::new(0.1);
    let randns: Vec<Vec<f32>> = (0..3)
        .map(|i| mpnn::rng::randn(&mut mpnn::rng::stream(1, "x", mpnn::rng::Purpose::DesignOrder, i), f.len()))
        .collect();
    let refs: Vec<&[f32]> = randns.iter().map(|r| r.as_slice()).collect();
    let all = gm.sample(&model, &f, &lom, &options, &refs, (0..3).map(|_| Draw::Argmax).collect()).unwrap();
    let one = gm.sample(&model, &f, &lom, &options, &refs[2..], vec![Draw::Argmax]).unwrap();
    assert_eq!(all[2], one[0]);
    // Argmax on the GPU equals argmax on the CPU.
    let enc = model.encode(&Batch::new(&[&f], None));
    let cpu = Sampler::new(&model, &enc, &f, lom.clone(), options.clone());
    let want = cpu.sample(&randns[2], &mut Argmax);
    assert_eq!(want.s, one[0].s);
}

/// `mpnn design` with the same seed on the GPU and on the CPU writes the same FASTA (two small
/// parity structures, two temperatures, four sequences each).
#[test]
fn design_fasta_on_gpu_equals_cpu() {
    let Some(dir) = parity_dir() else { return };
    let Some(_gpu) = gpu() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let weights = dir.join("weights/small_h64_l2_k16.pt");
    // The GPU designs the structures of one run together (padded to the longest); a structure
    // shorter than k (here 12 residues, k = 16) would see padding among its neighbours, so it
    // runs on its own: all three must still give the CPU's FASTA.
    let pdb = std::fs::read_to_string(dir.join("structures/6MRR.pdb")).unwrap();
    let short: String = pdb
        .lines()
        .filter(|l| {
            l.starts_with("ATOM") && l.get(22..26).and_then(|n| n.trim().parse::<i32>().ok()).is_some_and(|n| n <= 12)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let short_path = tmp.path().join("short12.pdb");
    std::fs::write(&short_path, short).unwrap();
    for device in ["cpu", "gpu"] {
        let out = tmp.path().join(device);
        let args = [
            "design",
            dir.join("structures/6MRR.pdb").to_str().unwrap(),
            dir.join("structures/5L33.pdb").to_str().unwrap(),
            short_path.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--num_seq_per_target",
            "4",
            "--sampling_temp",
            "0.1 0.3",
            "--seed",
            "3",
            "--device",
            device,
        ]
        .map(String::from);
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        ok(&mpnn_env(&refs, &[("MPNN_ALLOW_SOFTWARE_GPU", "1")]));
    }
    for name in ["6MRR", "5L33", "short12"] {
        let cpu = std::fs::read_to_string(tmp.path().join(format!("cpu/seqs/{name}.fa"))).unwrap();
        let gpu = std::fs::read_to_string(tmp.path().join(format!("gpu/seqs/{name}.fa"))).unwrap();
        assert_eq!(cpu.lines().count(), 2 + 2 * 8, "{name}: native + 8 designs");
        assert_eq!(gpu, cpu, "{name}: GPU and CPU FASTA differ");
    }
}

/// Structures sampled together in one GPU batch (padded to the longest, each with its own
/// design mask, per-residue bias and omissions, missing residues) give exactly the samples each
/// gives alone.
#[test]
fn structures_sampled_together_equal_alone() {
    let Some(dir) = parity_dir() else { return };
    let Some(gpu) = gpu() else { return };
    let names = ["monomer_6MRR_bias_omit", "quirks_edge", "small_5L33"];
    let cases: Vec<Case> =
        names.iter().map(|n| load_case(&dir, n)).filter(|c| c.json["checkpoint"] == "weights/full_k48.pt").collect();
    assert!(cases.len() >= 2, "two full_k48 cases");
    let model = cases[0].model();
    let gm = GpuModel::new(gpu, &model);
    let fs: Vec<Features> = cases.iter().map(|c| c.features("pdb").unwrap()).collect();
    assert!(fs.iter().all(|f| f.tied_positions.is_empty() && f.len() >= 48), "untied, at least k residues");
    let loms: Vec<Vec<f32>> = fs.iter().map(|f| mpnn::sampler::pssm_log_odds_mask(f, 0.0)).collect();
    let options = SamplingOptions::new(0.1);
    let nseq = 3u64;
    let randns: Vec<Vec<Vec<f32>>> = fs
        .iter()
        .map(|f| {
            (0..nseq)
                .map(|i| {
                    mpnn::rng::randn(&mut mpnn::rng::stream(9, &f.name, mpnn::rng::Purpose::DesignOrder, i), f.len())
                })
                .collect()
        })
        .collect();
    let streams = |f: &Features| -> Vec<_> {
        (0..nseq).map(|i| mpnn::rng::stream(9, &f.name, mpnn::rng::Purpose::DesignDraws, i)).collect()
    };
    let mut rngs: Vec<Vec<_>> = fs.iter().map(streams).collect();
    let items: Vec<SampleItem> = fs
        .iter()
        .zip(&loms)
        .zip(&randns)
        .zip(rngs.iter_mut())
        .map(|(((f, lom), rs), st)| SampleItem {
            f,
            log_odds_mask: lom,
            randns: rs.iter().map(|r| r.as_slice()).collect(),
            draws: st.iter_mut().map(|r| Draw::Uniform(r)).collect(),
        })
        .collect();
    assert!(gm.structures_per_batch(fs.iter().map(|f| f.len()).max().unwrap(), nseq as usize) >= fs.len());
    let together = gm.sample_structures(&model, items, &options).unwrap();
    for (b, f) in fs.iter().enumerate() {
        let mut st = streams(f);
        let refs: Vec<&[f32]> = randns[b].iter().map(|r| r.as_slice()).collect();
        let alone =
            gm.sample(&model, f, &loms[b], &options, &refs, st.iter_mut().map(|r| Draw::Uniform(r)).collect()).unwrap();
        assert_eq!(together[b], alone, "{}: together vs alone", f.name);
    }
}

/// `--device gpu` without a usable (hardware, or allowed software) GPU is a clear error, never
/// a panic; `--device auto` then runs on the CPU.
#[test]
fn device_gpu_without_a_usable_gpu_is_a_clear_error() {
    let Some(dir) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = |device: &str| {
        let out = tmp.path().join(device);
        std::process::Command::new(env!("CARGO_BIN_EXE_mpnn"))
            .args(["probs", "--unconditional", "--device", device, "--out"])
            .arg(&out)
            .arg("--weights")
            .arg(dir.join("weights/small_h64_l2_k16.pt"))
            .arg(dir.join("structures/6MRR.pdb"))
            .env_remove("MPNN_ALLOW_SOFTWARE_GPU")
            .env("MPNN_OFFLINE", "1")
            .output()
            .unwrap()
    };
    let o = run("gpu");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    if o.status.success() {
        eprintln!("skipped: this machine has a hardware GPU ({err})");
    } else {
        assert!(err.contains("--device gpu:"), "{err}");
        assert!(err.contains("MPNN_ALLOW_SOFTWARE_GPU") || err.contains("no usable GPU"), "{err}");
        // auto falls back to the CPU without complaint
        let o = run("auto");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!String::from_utf8_lossy(&o.stderr).contains("device: GPU"));
    }
}

/// The WGSL kernels against the CPU kernels on random data: GEMM + bias (and accumulate), the
/// erf-GELU, LayerNorm (eps 1e-5), the gather of neighbour rows, the masked neighbour sum and
/// log_softmax.
#[test]
fn gpu_kernels_match_cpu_kernels() {
    use mpnn::gpu::{Kernel, Plan, NONE};
    use mpnn::kernels::{gelu, log_softmax_inplace, LayerNorm, Linear};
    use rand::{Rng, SeedableRng};
    let Some(gpu) = gpu() else { return };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut random = |n: usize, scale: f32| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-scale..scale)).collect() };
    let (m, k, n) = (70, 96, 130);
    let w = random(n * k, 0.3);
    let b = random(n, 1.0);
    let x = random(m * k, 2.0);
    let y0 = random(m * n, 1.0);
    let (gamma, beta) = (random(n, 1.0), random(n, 0.5));
    // weights: W transposed [k, n], then the bias, gamma, beta
    let mut wt = vec![0f32; k * n];
    for o in 0..n {
        for i in 0..k {
            wt[i * n + o] = w[o * k + i];
        }
    }
    let (w_off, b_off) = (0u32, (k * n) as u32);
    let g_off = b_off + n as u32;
    let be_off = g_off + n as u32;
    let weights = gpu.weights_buffer(&[wt, b.clone(), gamma.clone(), beta.clone()].concat());
    let mut plan = Plan::new();
    let xo = plan.upload(x.clone());
    let y = plan.alloc(m * n);
    plan.gemm(m, n, k, xo, w_off, b_off, y, false);
    let ya = plan.upload(y0.clone());
    plan.gemm(m, n, k, xo, w_off, NONE, ya, true);
    let gl = plan.upload(x.iter().map(|v| v * 3.0).collect());
    plan.gelu(m * k, gl);
    let ln = plan.alloc(m * n);
    plan.copy(m * n, y, ln, m * n);
    plan.run1(Kernel::AddNorm, m, &[m as u32, n as u32, ln, NONE, g_off, be_off, NONE, NONE, 1]);
    let ls = plan.alloc(m * n);
    plan.log_softmax(m, n, y, ls);
    // neighbours: 2 items of L = 35 rows, K = 4, rows of width n (the GEMM output)
    let (l, kk) = (35usize, 4usize);
    let e_idx: Vec<u32> = (0..m * kk).map(|i| ((i * 7 + 3) % l) as u32).collect();
    let mask: Vec<f32> = (0..m).map(|i| if i % 9 == 4 { 0.0 } else { 1.0 }).collect();
    let eo = plan.upload_int(e_idx.clone());
    let mo = plan.upload(mask.clone());
    let msg = random(m * kk * n, 1.0);
    let msgo = plan.upload(msg.clone());
    let sums = plan.alloc(m * n);
    let counts = plan.alloc(m);
    plan.run1(Kernel::EncSum, m * n, &[m as u32, n as u32, kk as u32, msgo, mo, eo, l as u32, sums, counts]);
    let rows: Vec<u32> = (0..m as u32).rev().collect();
    let ro = plan.upload_int(rows.clone());
    let gathered = plan.alloc(m * n);
    plan.run1(Kernel::Gather, m * n, &[m as u32, n as u32, ro, y, gathered, m as u32, 0]);
    let slots = [
        plan.read(y, m * n),
        plan.read(ya, m * n),
        plan.read(gl, m * k),
        plan.read(ln, m * n),
        plan.read(ls, m * n),
        plan.read(sums, m * n),
        plan.read(counts, m),
        plan.read(gathered, m * n),
    ];
    let res = gpu.run(&weights, &plan).unwrap();
    let got: Vec<Vec<f32>> = slots.iter().map(|&s| res.floats(s)).collect();
    let lin = Linear::new(w.clone(), Some(b.clone()), n, k);
    let mut want = vec![0f32; m * n];
    lin.forward(&x, m, &mut want);
    let rel = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0f32, f32::max);
    assert!(rel(&got[0], &want) < 1e-5, "gemm + bias: {}", rel(&got[0], &want));
    let mut acc = y0.clone();
    Linear::new(w.clone(), None, n, k).forward_add(&x, m, &mut acc);
    assert!(rel(&got[1], &acc) < 1e-5, "gemm accumulate: {}", rel(&got[1], &acc));
    let g: Vec<f32> = x.iter().map(|v| gelu(v * 3.0)).collect();
    assert!(rel(&got[2], &g) < 2e-6, "gelu: {}", rel(&got[2], &g));
    let mut ln_want = got[0].clone();
    LayerNorm { gamma, beta }.forward_inplace(&mut ln_want);
    assert!(max_abs_diff(&got[3], &ln_want) < 2e-5, "layer norm: {}", max_abs_diff(&got[3], &ln_want));
    let mut ls_want = got[0].clone();
    ls_want.chunks_exact_mut(n).for_each(log_softmax_inplace);
    assert!(max_abs_diff(&got[4], &ls_want) < 2e-5, "log_softmax: {}", max_abs_diff(&got[4], &ls_want));
    for i in 0..m {
        let mut c = 0f32;
        let mut s = vec![0f32; n];
        for nb in 0..kk {
            let j = (i / l) * l + e_idx[i * kk + nb] as usize;
            let att = mask[i] * mask[j];
            c += att;
            for t in 0..n {
                s[t] += att * msg[(i * kk + nb) * n + t];
            }
        }
        assert_eq!(got[6][i], c, "count of row {i}");
        assert!(max_abs_diff(&got[5][i * n..(i + 1) * n], &s) < 1e-5, "masked sum of row {i}");
    }
    for (r, &src) in rows.iter().enumerate() {
        let src = src as usize;
        assert_eq!(&got[7][r * n..(r + 1) * n], &got[0][src * n..(src + 1) * n], "gather row {r}");
    }
}

/// The GPU, or `None` with `skipped: adapter lacks SHADER_F16` (never a silent pass).
fn gpu_with_f16() -> Option<Arc<Gpu>> {
    let gpu = gpu()?;
    if !gpu.f16 {
        eprintln!("skipped: adapter lacks SHADER_F16 ({})", gpu.adapter);
        return None;
    }
    Some(gpu)
}

/// The f16 dense layer (weights packed as halves, inputs rounded to f16, f32 sums) against the
/// CPU's `--precision f16` Linear, with and without bias, accumulating, an odd width (21).
#[test]
fn gpu_f16_gemm_matches_cpu_f16() {
    use mpnn::gpu::{Plan, HALF, NONE};
    use mpnn::kernels::precision::Precision;
    use mpnn::kernels::Linear;
    use rand::{Rng, SeedableRng};
    let Some(gpu) = gpu_with_f16() else { return };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let mut random = |n: usize, scale: f32| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-scale..scale)).collect() };
    for (m, k, n) in [(70, 96, 130), (33, 64, 21)] {
        let w = random(n * k, 0.3);
        let b = random(n, 1.0);
        // inputs spanning the f16 range: normal values, values near the subnormal halves
        let mut x = random(m * k, 2.0);
        for (i, v) in x.iter_mut().enumerate().filter(|(i, _)| i % 7 == 3) {
            *v *= 1e-5 * (1 + i % 5) as f32;
        }
        let y0 = random(m * n, 1.0);
        // halves of W transposed [k, n], two per word, then the f32 bias
        let mut halves = vec![0u16; k * n];
        for o in 0..n {
            for i in 0..k {
                halves[i * n + o] = half::f16::from_f32(w[o * k + i]).to_bits();
            }
        }
        if halves.len() % 2 == 1 {
            halves.push(0);
        }
        let mut words: Vec<f32> =
            halves.chunks(2).map(|c| f32::from_bits(c[0] as u32 | ((c[1] as u32) << 16))).collect();
        let b_off = words.len() as u32;
        words.extend_from_slice(&b);
        let weights = gpu.weights_buffer(&words);
        let mut plan = Plan::new();
        let xo = plan.upload(x.clone());
        let y = plan.alloc(m * n);
        plan.gemm(m, n, k, xo, HALF, b_off, y, false);
        let ya = plan.upload(y0.clone());
        plan.gemm(m, n, k, xo, HALF, NONE, ya, true);
        let slots = [plan.read(y, m * n), plan.read(ya, m * n)];
        let res = gpu.run(&weights, &plan).unwrap();
        let lin = Linear::new(w.clone(), Some(b.clone()), n, k).with_precision(Precision::F16);
        let mut want = vec![0f32; m * n];
        lin.forward(&x, m, &mut want);
        let rel =
            |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0f32, f32::max);
        let got = res.floats(slots[0]);
        assert!(rel(&got, &want) < 1e-5, "f16 gemm + bias ({m}×{k}×{n}): {}", rel(&got, &want));
        let mut acc = y0.clone();
        Linear::new(w.clone(), None, n, k).with_precision(Precision::F16).forward_add(&x, m, &mut acc);
        let got = res.floats(slots[1]);
        assert!(rel(&got, &acc) < 1e-5, "f16 gemm accumulate ({m}×{k}×{n}): {}", rel(&got, &acc));
        // and it is not the f32 product: the rounding happened
        let mut exact = vec![0f32; m * n];
        Linear::new(w.clone(), Some(b.clone()), n, k).forward(&x, m, &mut exact);
        assert!(rel(&res.floats(slots[0]), &exact) > 1e-4, "the f16 kernel computed the f32 product");
    }
}

/// Top-1 agreement (share of residues with `mask` 1 whose most probable letter is the same) and
/// max |Δ| of two `[L, 21]` log-probability arrays.
fn agreement(a: &[f32], b: &[f32], mask: &[f32]) -> (f64, f32) {
    let arg = |r: &[f32]| r.iter().enumerate().fold(0, |best, (i, &v)| if v > r[best] { i } else { best });
    let (mut same, mut n) = (0usize, 0usize);
    for ((ra, rb), &m) in a.chunks(VOCAB).zip(b.chunks(VOCAB)).zip(mask) {
        if m == 1.0 {
            n += 1;
            same += (arg(ra) == arg(rb)) as usize;
        }
    }
    (same as f64 / n.max(1) as f64, max_abs_diff_at(a, b, mask))
}

/// `--precision f16` on the GPU (scoring and unconditional passes): against the CPU's f16
/// model, against the official float32 fixtures, and the same most probable letter as float32
/// on ≥ 99 % of the residues (all cases and passes together). A few cases only (lavapipe is slow): `MPNN_GPU_F16_PARITY=case,case`
/// picks others.
///
/// The GPU computes the CPU's f16 roundings (`gpu_f16_gemm_matches_cpu_f16`: equal to 1e-5 per
/// layer), yet whole-model GPU f16 and CPU f16 differ about as much as f16 and f32 do: f32
/// summation-order differences (~1e-7) move some layer inputs across an f16 rounding boundary,
/// and such half-ulp flips grow through the layers like f16's own rounding errors. The CPU f16
/// model alone does the same: one f32 ulp added to a third of the (float32) edge-embedding
/// weights moves its log-probabilities by 7.2e-3 (small_5L33) and 9.7e-3 (monomer_5L33), where
/// the float32 model moves by 1e-5. Measured on lavapipe (Zen 4 EPYC): vs CPU f16 6.9e-3 to
/// 9.3e-3, vs official 8.8e-3 to 1.3e-2, top-1 agreement with f32 100 % on these three cases.
#[test]
fn gpu_f16_matches_cpu_f16_and_official() {
    use mpnn::kernels::precision::Precision;
    let Some(dir) = parity_dir() else { return };
    let Some(gpu) = gpu_with_f16() else { return };
    let names: Vec<String> = match std::env::var("MPNN_GPU_F16_PARITY").as_deref() {
        Ok(list) if !list.is_empty() => list.split(',').map(|s| s.trim().to_string()).collect(),
        _ => ["small_5L33", "monomer_5L33", "monomer_6MRR_bias_omit"].iter().map(|s| s.to_string()).collect(),
    };
    // Top-1 agreement with f32 over every residue of every case and pass (one case alone has
    // ~100 residues: one letter more or less is a point).
    let (mut same, mut total) = (0.0, 0.0);
    for name in names {
        let case = load_case(&dir, &name);
        let f32_model = case.model();
        let model = f32_model.with_precision(Precision::F16);
        let f = case.features("pdb").unwrap();
        let batch = Batch::new(&[&f], None);
        let randn = case.npz.f32("randn").unwrap();
        let order = decoding_order(&design_of(&case, &f), &randn);
        let t = std::time::Instant::now();
        let passes = [(f.s.clone(), Some(order.clone())), (f.s.clone(), None)];
        let got = GpuModel::new(gpu.clone(), &model).forward_passes(&model, &batch, &passes).unwrap();
        let gpu_ms = t.elapsed();
        let f32_got = GpuModel::new(gpu.clone(), &f32_model).forward_passes(&f32_model, &batch, &passes).unwrap();
        let enc = model.encode(&batch);
        let cpu = [model.forward(&enc, &f.s, &order), model.unconditional(&enc)];
        let official = [case.npz.f32("log_probs").unwrap(), case.npz.f32("unconditional_log_probs").unwrap()];
        for (i, what) in ["log_probs", "unconditional"].iter().enumerate() {
            let d_cpu = max_abs_diff_at(&got[i], &cpu[i], &f.mask);
            let d_off = max_abs_diff_at(&got[i], &official[i], &f.mask);
            let (agree, d_f32) = agreement(&got[i], &f32_got[i], &f.mask);
            let (cpu_agree, _) = agreement(&cpu[i], &f32_got[i], &f.mask);
            eprintln!(
                "{name} {what} f16 on the GPU ({gpu_ms:.2?}): vs CPU f16 {d_cpu:.2e}, vs official {d_off:.2e}, \
                 vs GPU f32 {d_f32:.2e}, top-1 agreement with f32 {:.2} % (CPU f16: {:.2} %)",
                100.0 * agree,
                100.0 * cpu_agree
            );
            assert!(d_cpu < F16_VS_CPU_F16, "{name} {what}: f16 GPU vs CPU f16 differ by {d_cpu}");
            assert!(d_off < F16_VS_OFFICIAL, "{name} {what}: f16 GPU vs official differ by {d_off}");
            let n = f.mask.iter().filter(|&&m| m == 1.0).count() as f64;
            same += agree * n;
            total += n;
        }
    }
    eprintln!("top-1 agreement of f16 with f32 on the GPU: {:.2} % of {total} residues", 100.0 * same / total);
    assert!(same / total >= 0.99, "top-1 agreement with f32 {}", same / total);
}

/// f16 on the GPU vs the CPU's f16 model, max |Δ log-prob| (measured at most 9.3e-3 on
/// lavapipe; see the test above).
const F16_VS_CPU_F16: f32 = 2.5e-2;
/// f16 on the GPU vs the official float32 fixtures, max |Δ log-prob| (measured at most 1.3e-2
/// on lavapipe).
const F16_VS_OFFICIAL: f32 = 3e-2;

/// `--precision f16 --device gpu` on a device without f16 shaders (here: lavapipe with
/// `MPNN_GPU_NO_F16=1`) and `--precision bf16 --device gpu` are clear errors; `--device auto`
/// with int8 runs on the CPU and says so.
#[test]
fn gpu_precision_errors_are_clear() {
    let Some(dir) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = |device: &str, precision: &str, no_f16: bool| {
        let out = tmp.path().join(format!("{device}_{precision}"));
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mpnn"));
        c.args(["probs", "--unconditional", "--device", device, "--precision", precision, "--out"])
            .arg(&out)
            .arg("--weights")
            .arg(dir.join("weights/small_h64_l2_k16.pt"))
            .arg(dir.join("structures/6MRR.pdb"))
            .env("MPNN_ALLOW_SOFTWARE_GPU", "1")
            .env("MPNN_OFFLINE", "1");
        if no_f16 {
            c.env("MPNN_GPU_NO_F16", "1");
        }
        c.output().unwrap()
    };
    // auto with a CPU-only format takes the CPU without opening a GPU (any machine)
    let o = run("auto", "int8", false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("--precision int8 runs on the CPU only"), "{err}");
    if gpu().is_none() {
        return;
    }
    let o = run("gpu", "f16", true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("SHADER_F16") && err.contains("--precision f32"), "{err}");
    let o = run("gpu", "bf16", false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("bf16 runs on the CPU only"), "{err}");
}
