//! The GPU backend (wgpu) against the official fixtures and against the CPU path. In CI it runs
//! on Mesa's software Vulkan device (lavapipe); without any Vulkan device the tests print
//! `skipped: no Vulkan device` (and fail under `CI=true`).
#![cfg(feature = "gpu")]

mod common;

use std::sync::Arc;

use common::*;
use mpnn::alphabet::{self, VOCAB};
use mpnn::featurize::{Batch, Features};
use mpnn::gpu::{Draw, Gpu, GpuModel};
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

/// Scoring (`forward()`), unconditional and both conditional log-probabilities of every parity
/// case within 1e-4 of the official fixtures.
#[test]
fn gpu_log_probs_match_official() {
    let Some(dir) = parity_dir() else { return };
    let Some(gpu) = gpu() else { return };
    for name in cases(&dir) {
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
        let mut passes = gm
            .forward_passes(&model, &batch, &[(f.s.clone(), Some(order.clone())), (f.s.clone(), None)])
            .unwrap();
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
        let mut both = gm.conditional_variants(&model, &batch, &f.s, &design, &randn, &[true, false]).unwrap();
        let (cb, cs) = (both.remove(0), both.remove(0));
        let d = max_abs_diff(&cb, &n.f32("conditional_backbone_log_probs").unwrap());
        eprintln!("{name}: conditional backbone {d:.2e} ({:.2?} for both)", t.elapsed());
        assert!(d < 1e-4, "{name}: conditional backbone differs by {d}");
        let d = max_abs_diff(&cs, &n.f32("conditional_log_probs").unwrap());
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
    for name in cases(&dir) {
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
        let samples =
            gm.sample(&model, &f, &lom, &options, &[&randn, &randn], vec![Draw::Argmax, Draw::Forced(&forced)]).unwrap();
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
    for name in ["small_5L33", "small_6EHB", "complex_3HTN_tied_beta", "monomer_6MRR_bias_omit"] {
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
