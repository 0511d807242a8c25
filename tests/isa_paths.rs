//! Every instruction-set path of the kernels (`MPNN_ISA=avx512|avx2|portable`) gives the same
//! bits: whole parity cases computed in one process on each path the CPU has (log-probabilities,
//! encoder states, every precision), and the output files of `mpnn design`, `score` and `probs`
//! run with each `MPNN_ISA`. Paths the CPU lacks print `skipped: CPU lacks ...`.
//!
//! Only [`parity_cases_are_identical_on_every_path`] switches the process's path
//! ([`isa::force`]); the other tests run the binary in child processes.

mod common;

use common::*;
use mpnn::featurize::Batch;
use mpnn::kernels::bf16;
use mpnn::kernels::isa::{self, Isa};
use mpnn::kernels::precision::Precision;
use mpnn::model::decoder::decoding_order;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every path this CPU has; prints the skip line for each one it lacks.
fn paths() -> Vec<Isa> {
    for p in Isa::ALL {
        if let Some(msg) = isa::skip_message(p) {
            eprintln!("{msg}");
        }
    }
    let v = Isa::available();
    assert!(v.contains(&Isa::Portable));
    v
}

#[test]
fn parity_cases_are_identical_on_every_path() {
    let Some(dir) = parity_dir() else { return };
    let paths = paths();
    let home = isa::active();
    for name in cases(&dir) {
        let case = load_case(&dir, &name);
        let base = case.model();
        let f = case.features("pdb").unwrap();
        let batch = Batch::new(&[&f], None);
        let randn = case.npz.f32("randn").unwrap();
        let order = decoding_order(&f.design_mask(), &randn);
        let design = f.design_mask();
        // f32 on every case; the other precisions (whose kernels are also per path) on two.
        let precisions: &[Precision] =
            if name == "monomer_5L33" || name == "small_6EHB" { &Precision::ALL } else { &[Precision::F32] };
        for &precision in precisions {
            let model = if precision == Precision::F32 { base.clone() } else { base.with_precision(precision) };
            let mut first: Option<(String, Vec<Vec<u32>>)> = None;
            // bf16 also runs AVX-512 with `vdpbf16ps` emulated, where the CPU has the instruction.
            let mut labels = Vec::new();
            let mut variants: Vec<(Isa, bool)> = paths.iter().map(|&p| (p, false)).collect();
            if precision == Precision::Bf16 {
                if bf16::native_on(Isa::Avx512) {
                    variants.push((Isa::Avx512, true));
                } else {
                    eprintln!("skipped: CPU lacks avx512_bf16 (bf16 vdpbf16ps kernel; AVX-512 bf16 is emulated)");
                }
            }
            for &(p, emulate) in &variants {
                isa::force(p).unwrap();
                bf16::force_emulation(emulate);
                let label = match (precision, emulate, bf16::native_on(p)) {
                    (Precision::Bf16, _, true) => format!("{p} (vdpbf16ps)"),
                    (Precision::Bf16, true, false) => format!("{p} (vdpbf16ps emulated)"),
                    _ => p.to_string(),
                };
                labels.push(label.clone());
                let enc = model.encode(&batch);
                let lp = model.forward(&enc, &f.s, &order);
                let un = model.unconditional(&enc);
                let cb = model.conditional(&enc, &f.s, &design, &randn, true);
                let cs = model.conditional(&enc, &f.s, &design, &randn, false);
                if precision == Precision::F32 {
                    let d = max_abs_diff(&lp, &case.npz.f32("log_probs").unwrap());
                    assert!(d < 1e-4, "{name} on {p}: log_probs differ from the official by {d}");
                    let d = max_abs_diff(&un, &case.npz.f32("unconditional_log_probs").unwrap());
                    assert!(d < 1e-4, "{name} on {p}: unconditional differs from the official by {d}");
                }
                let got = vec![bits(&enc.h_v), bits(&enc.h_e), bits(&lp), bits(&un), bits(&cb), bits(&cs)];
                bf16::force_emulation(false);
                match &first {
                    None => first = Some((label, got)),
                    Some((q, want)) => {
                        for (i, what) in
                            ["h_V", "h_E", "log_probs", "unconditional", "conditional backbone", "conditional"]
                                .iter()
                                .enumerate()
                        {
                            assert!(got[i] == want[i], "{name} {precision}: {what} on {label} differs from {q}");
                        }
                    }
                }
            }
            eprintln!("{name} {precision}: identical on {labels:?}");
            if precision == Precision::Bf16 {
                eprintln!("bf16 rows computed by the twin fallback so far: {}", bf16::fallback_rows());
            }
        }
    }
    isa::force(home).unwrap();
}

/// `mpnn design`, `score` and `probs` write byte-identical files under every `MPNN_ISA`.
#[test]
fn output_files_are_identical_across_mpnn_isa() {
    let Some(dir) = parity_dir() else { return };
    let paths = paths();
    let weights = dir.join("weights/full_k48.pt");
    let s5 = dir.join("structures/5L33.pdb");
    let s3 = dir.join("structures/3HTN.pdb");
    let tmp = tempfile::tempdir().unwrap();
    let (w, a, b) = (weights.display().to_string(), s5.display().to_string(), s3.display().to_string());
    let mut first: Option<(Isa, std::collections::BTreeMap<String, Vec<u8>>)> = None;
    for &p in &paths {
        let out = tmp.path().join(p.name());
        let o = |sub: &str| out.join(sub).display().to_string();
        let env = [("MPNN_ISA", p.name())];
        let runs: Vec<Vec<String>> = vec![
            vec![
                "design",
                &a,
                &b,
                "--weights",
                &w,
                "--out",
                &o("design"),
                "--num_seq_per_target",
                "4",
                "--seed",
                "7",
                "--save_score",
                "1",
                "--save_probs",
                "1",
                "--sampling_temp",
                "0.1 0.3",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            ["score", &a, &b, "--weights", &w, "--out", &o("score"), "--num_seq_per_target", "3", "--seed", "5"]
                .into_iter()
                .map(String::from)
                .collect(),
            ["score", &a, "--weights", &w, "--out", &o("score_int8"), "--precision", "int8", "--seed", "5"]
                .into_iter()
                .map(String::from)
                .collect(),
            ["score", &a, "--weights", &w, "--out", &o("score_bf16"), "--precision", "bf16", "--seed", "5"]
                .into_iter()
                .map(String::from)
                .collect(),
            ["probs", "--unconditional", &a, &b, "--weights", &w, "--out", &o("probs")]
                .into_iter()
                .map(String::from)
                .collect(),
        ];
        let mut stdout = Vec::new();
        for args in &runs {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            stdout.push(ok(&mpnn_env(&args, &env)));
        }
        let mut files = files_under(&out);
        assert!(files.keys().any(|k| k.ends_with(".fa")), "{p}: no designs written: {:?}", files.keys());
        for (i, s) in stdout.into_iter().enumerate() {
            // Printed lines too, except the timings ("... generated in 0.27 seconds").
            let lines: Vec<&str> = s.lines().filter(|l| !l.contains(" seconds")).collect();
            files.insert(format!("stdout of run {i}"), lines.join("\n").into_bytes());
        }
        match &first {
            None => first = Some((p, files)),
            Some((q, want)) => {
                assert_eq!(files.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{p} vs {q}: file lists");
                for (k, v) in &files {
                    assert!(v == &want[k], "MPNN_ISA={p}: {k} differs from MPNN_ISA={q}");
                }
                eprintln!("MPNN_ISA={p}: {} files identical to MPNN_ISA={q}", files.len());
            }
        }
    }
}

/// A bad `MPNN_ISA` stops the run with an error naming the variable; so does a path the CPU lacks.
#[test]
fn bad_mpnn_isa_values_are_refused() {
    let Some(dir) = parity_dir() else { return };
    let w = dir.join("weights/full_k48.pt").display().to_string();
    let s = dir.join("structures/5L33.pdb").display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().display().to_string();
    let o = mpnn_env(&["score", &s, "--weights", &w, "--out", &out], &[("MPNN_ISA", "sse9")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("MPNN_ISA=sse9") && err.contains("avx512, avx2 or portable"), "{err}");
    assert!(files_under(tmp.path()).is_empty(), "nothing is written");
    match Isa::ALL.into_iter().find(|p| !p.supported()) {
        None => eprintln!("skipped: this CPU has every path, so no unsupported MPNN_ISA value to try"),
        Some(p) => {
            let o = mpnn_env(&["score", &s, "--weights", &w, "--out", &out], &[("MPNN_ISA", p.name())]);
            assert!(!o.status.success());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains(&format!("MPNN_ISA={p}")) && err.contains("lacks"), "{err}");
        }
    }
}
