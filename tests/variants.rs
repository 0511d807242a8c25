//! Speed/accuracy variants end to end: `--precision`, `--preset`, `mpnn eval` and cascade
//! screening (`mpnn design --screen PRESET --keep N`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::*;
use mpnn::kernels::precision::Precision;
use mpnn::npz::Npz;

fn fails_with(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected a failure, got success");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Sample records of a design FASTA: header fields and sequence.
fn samples(path: &Path) -> Vec<(BTreeMap<String, String>, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines[2..]
        .chunks(2)
        .map(|p| {
            let fields = p[0]
                .trim_start_matches('>')
                .split(", ")
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (fields, p[1].to_string())
        })
        .collect()
}

fn f(m: &BTreeMap<String, String>, k: &str) -> f64 {
    m[k].parse().unwrap_or_else(|_| panic!("{k}={}", m[k]))
}

#[test]
fn cascade_keeps_exactly_the_n_best_by_full_model_score() {
    let Some(dir) = parity_dir() else { return };
    let pdb = s(&dir.join("structures/5L33.pdb"));
    let w = s(&dir.join("weights/full_k48.pt"));
    let run = |keep: &str, extra: &[&str]| {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["design", &pdb, "--weights", &w, "--num_seq_per_target", "12", "--seed", "7"];
        args.extend_from_slice(&["--sampling_temp", "0.1 0.3", "--suppress_print", "1", "--out"]);
        let o = s(out.path());
        args.push(&o);
        if !keep.is_empty() {
            args.extend_from_slice(&["--screen", "fast", "--keep", keep]);
        }
        args.extend_from_slice(extra);
        ok(&mpnn(&args));
        samples(&out.path().join("seqs/5L33.fa"))
    };
    // Keeping all 24 generated: every candidate with both scores, sorted by the full score.
    let all = run("24", &[]);
    assert_eq!(all.len(), 24);
    for pair in all.windows(2) {
        assert!(f(&pair[0].0, "score") <= f(&pair[1].0, "score"), "not sorted by the full-model score");
    }
    // The screening scores are those of a plain k = 16 design of the same seed (same samples),
    // and the full-model scores differ from them (k = 48 rescoring).
    let plain16 = run("", &["--k", "16"]);
    for (h, seq) in &all {
        let twin = plain16
            .iter()
            .find(|(p, _)| p["T"] == h["T"] && p["sample"] == h["sample"])
            .expect("every candidate is a k = 16 sample");
        assert_eq!(&twin.1, seq);
        assert_eq!(twin.0["score"], h["screen_score"]);
        assert_ne!(h["score"], h["screen_score"]);
    }
    // Keeping 5: exactly the 5 best of the 24 by full-model score, in order.
    let kept = run("5", &[]);
    assert_eq!(kept.len(), 5);
    for (k, a) in kept.iter().zip(&all) {
        assert_eq!(k, a);
    }
    let worst_kept = f(&kept[4].0, "score");
    assert!(all[5..].iter().all(|(h, _)| f(h, "score") >= worst_kept));
}

#[test]
fn screening_and_preset_errors_are_clear() {
    let Some(dir) = parity_dir() else { return };
    let pdb = s(&dir.join("structures/5L33.pdb"));
    let w = s(&dir.join("weights/full_k48.pt"));
    let small = s(&dir.join("weights/small_h64_l2_k16.pt"));
    let out = tempfile::tempdir().unwrap();
    let o = s(out.path());
    let base = ["design", pdb.as_str(), "--weights", w.as_str(), "--out", o.as_str(), "--num_seq_per_target", "4"];
    let with = |extra: &[&str]| mpnn(&[&base[..], extra].concat());
    fails_with(&with(&["--screen", "fast", "--keep", "5"]), &["--keep 5", "4 sequences generated"]);
    fails_with(&with(&["--screen", "fast", "--keep", "0"]), &["--keep 0"]);
    fails_with(&with(&["--screen", "minimal", "--keep", "2"]), &["pruned checkpoint", "--screen-weights"]);
    fails_with(&with(&["--screen", "fast"]), &["--keep"]);
    fails_with(&with(&["--preset", "minimal"]), &["pruned checkpoint", "full_k48.pt"]);
    fails_with(&with(&["--preset", "turbo"]), &["turbo", "baseline, fast"]);
    fails_with(&with(&["--precision", "fp8"]), &["fp8", "f32, bf16, f16, int8"]);
    fails_with(
        &mpnn(&["score", &pdb, "--weights", &small, "--preset", "baseline", "--out", &o]),
        &["full architecture", "2 + 2 layers, hidden 64"],
    );
    // A pruned screening model with its checkpoint works, and nothing was left half-written.
    assert!(!out.path().join("seqs/5L33.fa").exists());
    ok(&with(&["--screen", "minimal-fast", "--screen-weights", &small, "--keep", "2", "--suppress_print", "1"]));
    assert_eq!(samples(&out.path().join("seqs/5L33.fa")).len(), 2);
}

/// Unconditional log-probabilities `[L, 21]` of 5L33 from `mpnn probs` with extra flags.
fn unconditional(dir: &Path, extra: &[&str]) -> Vec<f32> {
    let out = tempfile::tempdir().unwrap();
    let pdb = s(&dir.join("structures/5L33.pdb"));
    let w = s(&dir.join("weights/full_k48.pt"));
    let o = s(out.path());
    let args =
        [&["probs", "--unconditional", &pdb, "--weights", &w, "--out", &o, "--suppress_print", "1"], extra].concat();
    ok(&mpnn(&args));
    Npz::read(out.path().join("unconditional_probs_only/5L33.npz")).unwrap().f32("log_p").unwrap()
}

fn top1_agreement(a: &[f32], b: &[f32]) -> f64 {
    let argmax = |r: &[f32]| (0..r.len()).fold(0, |m, i| if r[i] > r[m] { i } else { m });
    let rows = a.len() / 21;
    (0..rows).filter(|&i| argmax(&a[i * 21..][..21]) == argmax(&b[i * 21..][..21])).count() as f64 / rows as f64
}

#[test]
fn precisions_are_close_to_f32_and_deterministic() {
    let Some(dir) = parity_dir() else { return };
    let exact = unconditional(&dir, &[]);
    assert_eq!(unconditional(&dir, &["--precision", "f32"]), exact, "f32 must be the exact default");
    for (p, max_mean) in [("f16", 0.01), ("bf16", 0.05), ("int8", 0.1)] {
        let got = unconditional(&dir, &["--precision", p, "--threads", "1"]);
        let mean = got.iter().zip(&exact).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / exact.len() as f64;
        assert!(mean > 0.0, "{p} should differ from f32");
        assert!(mean < max_mean, "{p}: mean |Δ log p| {mean}");
        assert!(top1_agreement(&got, &exact) > 0.96, "{p}: top-1 agreement {}", top1_agreement(&got, &exact));
        // Same numbers for any thread count (every kernel's rows are batch-independent).
        assert_eq!(unconditional(&dir, &["--precision", p, "--threads", "2"]), got, "{p} depends on threads");
    }
}

#[test]
fn with_precision_f32_is_the_exact_model() {
    let Some(dir) = parity_dir() else { return };
    let case = load_case(&dir, "monomer_5L33");
    let model = case.model();
    let feats = case.features("pdb").unwrap();
    let batch = mpnn::featurize::Batch::new(&[&feats], None);
    let want = model.unconditional(&model.encode(&batch));
    let back = model.with_precision(Precision::Int8).with_precision(Precision::F32);
    assert_eq!(back.unconditional(&back.encode(&batch)), want);
    let half = model.with_precision(Precision::Bf16);
    assert_ne!(half.unconditional(&half.encode(&batch)), want);
}

#[test]
fn eval_writes_table_json_and_plot() {
    let Some(dir) = parity_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("eval.json");
    let svg = out.path().join("eval.svg");
    let stdout = ok(&mpnn(&[
        "eval",
        &s(&dir.join("structures/5L33.pdb")),
        &s(&dir.join("structures/6MRR.pdb")),
        "--weights",
        &s(&dir.join("weights/full_k48.pt")),
        "--pruned-weights",
        &s(&dir.join("weights/small_h64_l2_k16.pt")),
        "--presets",
        "baseline,fast,minimal-fast",
        "--precisions",
        "f32,int8",
        "--designs",
        "2",
        "--repeats",
        "1",
        "--json",
        &s(&json),
        "--plot",
        &s(&svg),
        "--suppress_print",
        "1",
    ]));
    assert!(stdout.contains("| baseline/f32 | full_k48.pt | 48 | f32 |"), "{stdout}");
    assert!(stdout.contains("| minimal-fast/int8 | small_h64_l2_k16.pt | 16 | int8 |"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let row = |name: &str| rows.iter().find(|r| r["config"] == name).unwrap_or_else(|| panic!("{name}"));
    // The reference configuration agrees with itself exactly.
    let base = row("baseline/f32");
    assert_eq!(base["top1_agreement_unconditional"], 1.0);
    assert_eq!(base["max_abs_dlogp"], 0.0);
    assert_eq!(base["positions"], 106 + 68);
    // The pruned model at its own k in f32 is its own reference.
    assert_eq!(row("minimal-fast/f32")["top1_agreement_conditional"], 1.0);
    // int8 is close but not exact; k = 16 on a k = 48 checkpoint is far.
    let int8 = row("baseline/int8");
    assert!(int8["top1_agreement_unconditional"].as_f64().unwrap() > 0.9);
    assert!(int8["max_abs_dlogp"].as_f64().unwrap() > 0.0);
    let fast = row("fast/f32");
    assert!(fast["kl"].as_f64().unwrap() > int8["kl"].as_f64().unwrap());
    for r in rows {
        assert!(r["residues_per_s"].as_f64().unwrap() > 0.0);
        let d = r["designed_recovery"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&d));
    }
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("fast/f32") && plot.contains("minimal-fast/int8"));
    // Bad requests fail before any work.
    let bad = mpnn(&[
        "eval",
        &s(&dir.join("structures/5L33.pdb")),
        "--weights",
        &s(&dir.join("weights/full_k48.pt")),
        "--presets",
        "minimal",
    ]);
    fails_with(&bad, &["nothing to measure", "--pruned-weights"]);
    let bad = mpnn(&["eval", "x.pdb", "--plot", "p.png"]);
    fails_with(&bad, &["SVG"]);
}
