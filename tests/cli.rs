//! The `mpnn` binary end to end: official file names and arrays, official flag spellings, and
//! clear failures (non-zero exit, the file named, nothing written) on bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use mpnn::npz::Npz;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

struct Paths {
    parity: PathBuf,
    out: tempfile::TempDir,
}

impl Paths {
    fn new() -> Option<Paths> {
        Some(Paths { parity: parity_dir()?, out: tempfile::tempdir().unwrap() })
    }
    fn structure(&self, f: &str) -> String {
        s(&self.parity.join("structures").join(f))
    }
    fn weights(&self) -> String {
        s(&self.parity.join("weights/full_k48.pt"))
    }
    fn out(&self) -> String {
        s(self.out.path())
    }
}

#[test]
fn unconditional_probs_match_the_official_numbers_in_both_spellings() {
    let Some(p) = Paths::new() else { return };
    let want = Npz::read(p.parity.join("monomer_5L33.npz")).unwrap();
    let o = mpnn_env(
        &["probs", "--unconditional", &p.structure("5L33.pdb"), "--weights", &p.weights(), "--out", &p.out()],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let got = Npz::read(p.out.path().join("unconditional_probs_only/5L33.npz")).unwrap();
    assert_eq!(got.shape("log_p").unwrap(), vec![1, 106, 21]);
    for name in ["S", "mask", "design_mask"] {
        assert_eq!(got.shape(name).unwrap(), vec![106], "{name}");
    }
    let d = max_abs_diff(&got.f32("log_p").unwrap(), &want.f32("unconditional_log_probs").unwrap());
    assert!(d < 1e-4, "unconditional log_p differs by {d}");
    assert_eq!(got.i64("S").unwrap(), want.i64("S").unwrap());

    // the official flags, into another folder, several passes
    let out2 = tempfile::tempdir().unwrap();
    let o = mpnn_env(
        &[
            "--pdb_path",
            &p.structure("5L33.pdb"),
            "--out_folder",
            &s(out2.path()),
            "--unconditional_probs_only",
            "1",
            "--path_to_model_weights",
            &s(&p.parity.join("weights")),
            "--model_name",
            "full_k48",
            "--num_seq_per_target",
            "2",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let got2 = Npz::read(out2.path().join("unconditional_probs_only/5L33.npz")).unwrap();
    assert_eq!(got2.shape("log_p").unwrap(), vec![2, 106, 21]);
}

#[test]
fn conditional_probs_write_official_arrays() {
    let Some(p) = Paths::new() else { return };
    for (flags, backbone) in [(vec!["--conditional"], false), (vec!["--conditional", "--backbone-only"], true)] {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["probs"];
        args.extend(flags);
        let (st, w, o_) = (p.structure("6MRR.pdb"), p.weights(), s(out.path()));
        args.extend(["--seed", "3", &st, "--weights", &w, "--out", &o_]);
        let o = mpnn_env(&args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got = Npz::read(out.path().join("conditional_probs_only/6MRR.npz")).unwrap();
        let lp = got.f32("log_p").unwrap();
        assert_eq!(got.shape("log_p").unwrap()[0], 1);
        // every designed row is a log-distribution
        let l = got.shape("S").unwrap()[0];
        for i in 0..l {
            let sum: f32 = lp[i * 21..(i + 1) * 21].iter().map(|v| v.exp()).sum();
            assert!((sum - 1.0).abs() < 1e-4, "row {i} sums to {sum}");
        }
        if backbone {
            // backbone-only conditionals equal the unconditional probabilities
            let want = Npz::read(p.parity.join("monomer_6MRR_bias_omit.npz")).unwrap();
            let d = max_abs_diff(&lp, &want.f32("conditional_backbone_log_probs").unwrap());
            assert!(d < 1e-4, "backbone-only differs by {d}");
        }
    }
}

#[test]
fn score_only_with_fasta() {
    let Some(p) = Paths::new() else { return };
    let npz = Npz::read(p.parity.join("monomer_5L33.npz")).unwrap();
    let native: String = npz.i64("S").unwrap().iter().map(|&i| mpnn::alphabet::letter_of(i as u8)).collect();
    let mut mutant = native.clone().into_bytes();
    mutant[10] = b'W';
    let fasta = p.out.path().join("seqs.fa");
    std::fs::write(&fasta, format!(">native\n{native}\n>mutant\n{}\n", String::from_utf8(mutant).unwrap())).unwrap();
    let o = mpnn_env(
        &[
            "score",
            &p.structure("5L33.pdb"),
            "--weights",
            &p.weights(),
            "--out",
            &p.out(),
            "--fasta",
            &s(&fasta),
            "--seed",
            "11",
            "--num_seq_per_target",
            "3",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = p.out.path().join("score_only");
    let pdb = Npz::read(dir.join("5L33_pdb.npz")).unwrap();
    let f1 = Npz::read(dir.join("5L33_fasta_1.npz")).unwrap();
    let f2 = Npz::read(dir.join("5L33_fasta_2.npz")).unwrap();
    assert_eq!(pdb.shape("score").unwrap(), vec![3]);
    assert_eq!(pdb.f32("score").unwrap(), f1.f32("score").unwrap(), "the native sequence from FASTA scores the same");
    assert_ne!(pdb.f32("score").unwrap(), f2.f32("score").unwrap());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Score for 5L33 from PDB, mean:"));
}

/// `--device auto` probes for a GPU; on a machine with Mesa's Vulkan drivers and no
/// `XDG_RUNTIME_DIR` (Slurm, containers) Mesa's device-selection layer used to print
/// "error: XDG_RUNTIME_DIR is invalid ..." twice on a successful run (CI installs Mesa, so this
/// runs where the layer exists).
#[test]
fn cpu_run_prints_no_window_system_errors() {
    let Some(p) = Paths::new() else { return };
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mpnn"))
        .args(["score", &p.structure("5L33.pdb"), "--weights", &p.weights(), "--out", &p.out()])
        .env("MPNN_OFFLINE", "1")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .env_remove("MPNN_ALLOW_SOFTWARE_GPU")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("error"), "a successful run printed errors:\n{err}");
}

#[test]
fn bad_inputs_fail_clearly_and_write_nothing() {
    let Some(p) = Paths::new() else { return };
    let dir = p.out.path();
    let truncated = dir.join("truncated.pdb");
    let text = std::fs::read_to_string(p.parity.join("structures/5L33.pdb")).unwrap();
    std::fs::write(&truncated, &text[..text.len() / 2 - 17]).unwrap();
    let empty = dir.join("empty.pdb");
    std::fs::write(&empty, "").unwrap();
    let short_fasta = dir.join("short.fa");
    std::fs::write(&short_fasta, ">x\nACDE\n").unwrap();
    let bad_letters = dir.join("bad.fa");
    std::fs::write(&bad_letters, format!(">x\n{}\n", "B".repeat(106))).unwrap();
    let out = dir.join("out");
    let (w, o_) = (p.weights(), s(&out));
    let s5 = p.structure("5L33.pdb");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["score".into(), s(&dir.join("missing.pdb"))], "missing.pdb"),
        (vec!["score".into(), s(&truncated)], "truncated.pdb"),
        (vec!["score".into(), s(&empty)], "empty.pdb"),
        (vec!["score".into(), s5.clone(), "--chains".into(), "Z".into()], "chain `Z`"),
        (vec!["score".into(), s5.clone(), "--fasta".into(), s(&short_fasta)], "short.fa"),
        (vec!["score".into(), s5.clone(), "--fasta".into(), s(&bad_letters)], "bad.fa"),
        (vec!["score".into(), s5.clone(), "--chain_id_jsonl".into(), r#"{"5L33": [["A"], []]}"#.into()], "inline JSON"),
        (vec!["score".into(), s5.clone(), "--weights".into(), s5.clone()], "5L33.pdb"),
    ];
    for (mut args, needle) in cases {
        if !args.iter().any(|a| a == "--weights") {
            args.extend(["--weights".into(), w.clone()]);
        }
        args.extend(["--out".into(), o_.clone()]);
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = mpnn_env(&refs, &[]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: error should mention `{needle}`:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
        let written = walk(&out);
        assert!(written.is_empty(), "{args:?} left files behind: {written:?}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

#[test]
fn offline_without_weights_says_what_to_do() {
    let Some(p) = Paths::new() else { return };
    let cache = tempfile::tempdir().unwrap();
    let o = mpnn_env(
        &["score", &p.structure("5L33.pdb"), "--out", &p.out(), "--offline"],
        &[("MPNN_CACHE_DIR", &s(cache.path()))],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("v_48_020.pt"), "{err}");
    assert!(err.contains(&s(cache.path())), "the message names the cache path: {err}");
    assert!(
        err.contains("https://github.com/dauparas/ProteinMPNN/raw/8907e6671bfbfc92303b5f79c4b5e6ce47cdef57"),
        "{err}"
    );
}

#[test]
fn help_explains_every_command() {
    for args in [vec!["--help"], vec!["score", "--help"], vec!["probs", "--help"], vec!["convert", "--help"]] {
        let o = mpnn_env(&args, &[]);
        assert!(o.status.success());
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Usage"), "{text}");
    }
    let o = mpnn_env(&["--help"], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--out_folder",
        "--pdb_path_chains",
        "--score_only",
        "--unconditional_probs_only",
        "--conditional_probs_only",
        "--num_seq_per_target",
        "--suppress_print",
    ] {
        assert!(text.contains(flag), "--help should list {flag}");
    }
}

#[test]
fn convert_round_trips_through_safetensors() {
    let Some(p) = Paths::new() else { return };
    let st = p.out.path().join("small.safetensors");
    let o = mpnn_env(&["convert", &s(&p.parity.join("weights/small_h64_l2_k16.pt")), &s(&st)], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("hidden 64, 2+2 layers, k = 16"));
    // the converted file gives the same probabilities
    let run = |w: &str, out: &Path| {
        let o =
            mpnn_env(&["probs", "--unconditional", &p.structure("5L33.pdb"), "--weights", w, "--out", &s(out)], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        Npz::read(out.join("unconditional_probs_only/5L33.npz")).unwrap().f32("log_p").unwrap()
    };
    let a = run(&s(&p.parity.join("weights/small_h64_l2_k16.pt")), &p.out.path().join("a"));
    let b = run(&s(&st), &p.out.path().join("b"));
    assert_eq!(a, b);
}

#[test]
fn scores_and_probabilities_are_identical_for_any_thread_count() {
    let Some(p) = Paths::new() else { return };
    let (st, w) = (p.structure("3HTN.pdb"), p.weights());
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out = tempfile::tempdir().unwrap();
        let o_ = s(out.path());
        for job in [
            vec!["score", "--num_seq_per_target", "3"],
            vec!["probs", "--conditional"],
            vec!["probs", "--unconditional"],
        ] {
            let mut args = job.clone();
            args.extend([st.as_str(), "--weights", &w, "--out", &o_, "--seed", "7", "--threads", threads]);
            let o = mpnn_env(&args, &[]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
        let files: Vec<Vec<u8>> =
            ["score_only/3HTN_pdb.npz", "conditional_probs_only/3HTN.npz", "unconditional_probs_only/3HTN.npz"]
                .iter()
                .map(|f| std::fs::read(out.path().join(f)).unwrap())
                .collect();
        outputs.push(files);
    }
    assert!(outputs[0] == outputs[1], "outputs differ between --threads 1 and --threads 2");
}

#[test]
fn inference_time_k_warns_and_changes_the_graph() {
    let Some(p) = Paths::new() else { return };
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec!["probs", "--unconditional"];
        let (st, w, o_) = (p.structure("5L33.pdb"), p.weights(), s(out));
        args.extend([st.as_str(), "--weights", &w, "--out", &o_]);
        args.extend(extra);
        let o = mpnn_env(&args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        (stderr(&o), Npz::read(out.join("unconditional_probs_only/5L33.npz")).unwrap().f32("log_p").unwrap())
    };
    let (quiet, full) = run(&[], &p.out.path().join("a"));
    assert!(!quiet.contains("warning"), "{quiet}");
    let (same_err, same) = run(&["--k", "48"], &p.out.path().join("b"));
    assert!(!same_err.contains("warning"));
    assert_eq!(full, same, "--k equal to the checkpoint's k changes nothing");
    let (err, fast) = run(&["--k", "16"], &p.out.path().join("c"));
    assert!(err.contains("warning: --k 16: fewer neighbours than the 48"), "{err}");
    assert_ne!(full, fast);
}
