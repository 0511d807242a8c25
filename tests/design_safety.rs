//! Data safety of `mpnn design` / `score` / `probs`: inputs that would write the same output
//! file are refused, resume only keeps what the same parameters made, every bad input is listed
//! at once, and `--skip-invalid` designs the rest and records what it skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn weights(parity: &Path) -> String {
    s(&parity.join("weights/full_k48.pt"))
}

/// `mpnn <job> INPUTS --out OUT --weights W EXTRA...`.
fn run(parity: &Path, job: &[&str], inputs: &[PathBuf], out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = job.iter().map(|x| x.to_string()).collect();
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["--out".into(), s(out)]);
    if !extra.contains(&"--weights") {
        args.extend(["--weights".into(), weights(parity)]);
    }
    args.extend(extra.iter().map(|x| x.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    mpnn(&argv)
}

fn structure(parity: &Path, file: &str) -> PathBuf {
    parity.join("structures").join(file)
}

#[test]
fn inputs_sharing_an_output_name_are_refused_before_anything_is_written() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for d in ["d1", "d2"] {
        std::fs::create_dir(tmp.path().join(d)).unwrap();
    }
    let d1 = tmp.path().join("d1/model.pdb");
    let d2 = tmp.path().join("d2/model.pdb");
    std::fs::copy(structure(&parity, "5L33.pdb"), &d1).unwrap();
    std::fs::copy(structure(&parity, "6MRR.pdb"), &d2).unwrap();
    // jsonl entries with one name
    let p = mpnn::structure::read_structure(&structure(&parity, "6MRR.pdb")).unwrap();
    let line = mpnn::structure::to_jsonl_line(&p, false);
    let jsonl = tmp.path().join("dup.jsonl");
    std::fs::write(&jsonl, format!("{line}\n{line}\n")).unwrap();

    let cases: Vec<(Vec<PathBuf>, Vec<String>)> = vec![
        (vec![d1.clone(), d2.clone()], vec![s(&d1), s(&d2), "model.fa".into()]),
        (
            vec![structure(&parity, "5L33.pdb"), structure(&parity, "5L33.cif")],
            vec!["5L33.pdb".into(), "5L33.cif".into(), "5L33.fa".into()],
        ),
        (vec![jsonl.clone()], vec![format!("{} line 1", s(&jsonl)), format!("{} line 2", s(&jsonl))]),
    ];
    for (inputs, needles) in &cases {
        let out = tmp.path().join("out");
        let o = run(&parity, &["design"], inputs, &out, &["--num_seq_per_target", "1", "--seed", "1"]);
        assert!(!o.status.success(), "{inputs:?}: a name collision must fail");
        let e = err(&o);
        for n in needles {
            assert!(e.contains(n.as_str()), "{inputs:?}: the message should name {n}: {e}");
        }
        assert!(e.contains("Rename") && e.contains("separate --out"), "the message should say how to fix it: {e}");
        assert!(!out.exists(), "{inputs:?}: something was written");
    }
    // score and probs write NAME_pdb.npz / NAME.npz: the same check
    for (job, file) in [(vec!["score"], "model_pdb.npz"), (vec!["probs", "--unconditional"], "model.npz")] {
        let out = tmp.path().join("out");
        let o = run(&parity, &job, &[d1.clone(), d2.clone()], &out, &[]);
        assert!(!o.status.success(), "{job:?}: a name collision must fail");
        let e = err(&o);
        assert!(e.contains(&s(&d1)) && e.contains(&s(&d2)) && e.contains(file), "{job:?}: {e}");
        assert!(!out.exists(), "{job:?}: something was written");
    }
}

#[test]
fn resume_keeps_only_what_the_same_parameters_made() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let inputs = [structure(&parity, "5L33.pdb"), structure(&parity, "6MRR.pdb")];
    let base = ["--num_seq_per_target", "2", "--seed", "9", "--sampling_temp", "0.1"];
    // `extra` flags replace the base ones they name
    let design = |extra: &[&str]| {
        let mut args: Vec<&str> = Vec::new();
        for pair in base.chunks(2) {
            if !extra.contains(&pair[0]) {
                args.extend_from_slice(pair);
            }
        }
        args.extend_from_slice(extra);
        run(&parity, &["design"], &inputs, &out, &args)
    };
    ok(&design(&["--batch_size", "1"]));
    let before = files_under(&out);
    assert!(before.contains_key(".mpnn-params/5L33.json"), "{:?}", before.keys());

    // What does not change the designs resumes: batch size, threads, shards, another copy of
    // the same weights.
    let same_weights = tmp.path().join("copy.pt");
    std::fs::copy(parity.join("weights/full_k48.pt"), &same_weights).unwrap();
    for extra in [
        vec!["--batch_size", "2", "--threads", "2"],
        vec!["--shard", "1/1"],
        vec!["--weights", same_weights.to_str().unwrap()],
    ] {
        let again = ok(&design(&extra));
        assert_eq!(again.matches("Skipping").count(), 2, "{extra:?}: {again}");
        assert_eq!(files_under(&out), before, "{extra:?}: outputs changed");
    }

    // Anything that changes the designs stops the run before it writes anything.
    let other_weights = s(&parity.join("weights/small_h64_l2_k16.pt"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--seed", "10"], "--seed 9 → 10"),
        (vec!["--sampling_temp", "0.2"], "--sampling_temp 0.1 → 0.2"),
        (vec!["--num_seq_per_target", "3"], "--num_seq_per_target (sequences per temperature) 2 → 3"),
        (vec!["--backbone_noise", "0.1"], "--backbone_noise 0.0 → 0.1"),
        (vec!["--fixed", "A1-5"], "designed positions"),
        (vec!["--omit", "C"], "--omit_AAs / --omit X → CX"),
        (vec!["--bias", "W:1"], "--bias / --bias_AA_jsonl none → W:1.0"),
        (vec!["--k", "32"], "--k the checkpoint's → 32"),
        (vec!["--precision", "bf16"], "--precision f32 → bf16"),
        (vec!["--weights", &other_weights], "weights (file content) changed"),
        (vec!["--save_score", "1"], "--save_score 0 → 1"),
    ];
    for (extra, needle) in cases {
        let o = design(&extra);
        let e = err(&o);
        assert!(!o.status.success(), "{extra:?}: must not resume designs made with other parameters");
        assert!(e.contains(needle), "{extra:?}: the message should say `{needle}`: {e}");
        assert!(e.contains(&s(&out)) && e.contains("--overwrite") && e.contains("5L33"), "{extra:?}: {e}");
        assert_eq!(files_under(&out), before, "{extra:?}: outputs changed");
    }

    // --overwrite redoes them with the new parameters; the new ones then resume.
    let o = ok(&design(&["--seed", "10", "--overwrite"]));
    assert_eq!(o.matches("Generating sequences for").count(), 2, "{o}");
    assert_ne!(files_under(&out)["seqs/5L33.fa"], before["seqs/5L33.fa"]);
    let again = ok(&design(&["--seed", "10"]));
    assert_eq!(again.matches("Skipping").count(), 2, "{again}");
    assert!(!design(&[]).status.success(), "the old parameters no longer match");
}

#[test]
fn overwriting_removes_outputs_the_new_run_does_not_make() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let inputs = [structure(&parity, "6MRR.pdb")];
    let flags = ["--seed", "3", "--suppress_print", "1"];
    ok(&run(
        &parity,
        &["design"],
        &inputs,
        &out,
        &[&flags[..], &["--num_seq_per_target", "3", "--save-structures", "--save_score", "1"]].concat(),
    ));
    assert!(out.join("structures/6MRR_sample_3.pdb").exists());
    ok(&run(
        &parity,
        &["design"],
        &inputs,
        &out,
        &[&flags[..], &["--num_seq_per_target", "2", "--overwrite"]].concat(),
    ));
    assert!(!out.join("structures/6MRR_sample_3.pdb").exists(), "stale threaded structure kept");
    assert!(!out.join("structures/6MRR_sample_1.pdb").exists(), "stale threaded structure kept");
    assert!(!out.join("scores/6MRR.npz").exists(), "stale scores kept");
}

#[test]
fn official_flags_always_redo_and_leave_no_resumable_record() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let pdb = s(&structure(&parity, "6MRR.pdb"));
    let official = |seed: &str| {
        mpnn(&[
            "--pdb_path",
            &pdb,
            "--out_folder",
            &s(&out),
            "--path_to_model_weights",
            &s(&parity.join("weights")),
            "--model_name",
            "full_k48",
            "--num_seq_per_target",
            "1",
            "--seed",
            seed,
        ])
    };
    let design = || {
        run(
            &parity,
            &["design"],
            &[structure(&parity, "6MRR.pdb")],
            &out,
            &["--num_seq_per_target", "1", "--seed", "5"],
        )
    };
    ok(&design());
    for seed in ["5", "6"] {
        let o = ok(&official(seed));
        assert!(o.contains("Generating sequences for: 6MRR") && !o.contains("Skipping"), "{o}");
    }
    assert!(!out.join(".mpnn-params/6MRR.json").exists(), "the record of the overwritten design outlived it");
    assert!(std::fs::read_to_string(out.join("seqs/6MRR.fa")).unwrap().contains("seed=6"));
    // `mpnn design` cannot know what made the file now: it refuses instead of keeping it.
    let o = design();
    assert!(!o.status.success());
    assert!(err(&o).contains("no record of the parameters"), "{}", err(&o));
}

#[test]
fn every_bad_input_is_listed_and_skip_invalid_designs_the_rest() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let good = structure(&parity, "6MRR.pdb");
    let garbage = tmp.path().join("garbage.pdb");
    std::fs::write(&garbage, "this is not a structure\n").unwrap();
    let missing_atoms = tmp.path().join("empty.cif");
    std::fs::write(&missing_atoms, "data_x\n").unwrap();
    let p = mpnn::structure::read_structure(&structure(&parity, "5L33.pdb")).unwrap();
    let jsonl = tmp.path().join("mixed.jsonl");
    std::fs::write(&jsonl, format!("{}\n{{\"name\": 3}}\n", mpnn::structure::to_jsonl_line(&p, false))).unwrap();
    let inputs = vec![good.clone(), garbage.clone(), missing_atoms.clone(), jsonl.clone()];
    let bad = [s(&garbage), s(&missing_atoms), format!("{} line 2", s(&jsonl))];
    let flags = ["--num_seq_per_target", "1", "--seed", "2"];

    // default: nothing written, every bad input named at once
    let out = tmp.path().join("out");
    for job in [vec!["design"], vec!["score"], vec!["probs", "--unconditional"]] {
        let extra: &[&str] = if job[0] == "design" { &flags } else { &[] };
        let o = run(&parity, &job, &inputs, &out, extra);
        assert!(!o.status.success(), "{job:?}");
        let e = err(&o);
        for b in &bad {
            assert!(e.contains(b.as_str()), "{job:?}: the message should list {b}: {e}");
        }
        assert!(e.contains("3 of 5") && e.contains("--skip-invalid"), "{job:?}: {e}");
        assert!(!out.exists(), "{job:?}: something was written");
    }

    // --skip-invalid: the rest is designed, the skipped ones listed in OUT/skipped.tsv
    let o = run(&parity, &["design"], &inputs, &out, &[&flags[..], &["--skip-invalid"]].concat());
    let stdout = ok(&o);
    assert!(stdout.contains("Generating sequences for: 6MRR") && stdout.contains("Generating sequences for: 5L33"));
    assert!(err(&o).contains("skipping 3 of 5"), "{}", err(&o));
    let tsv = std::fs::read_to_string(out.join("skipped.tsv")).unwrap();
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines[0], "input\tstructure\treason");
    assert_eq!(lines.len(), 4, "{tsv}");
    for (line, b) in lines[1..].iter().zip(&bad) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "{line}");
        assert_eq!(cols[0], b.as_str());
        assert!(!cols[2].is_empty());
    }
    assert_eq!(std::fs::read_dir(out.join("seqs")).unwrap().count(), 2);

    // score / probs share it (their list lives in their own folder)
    let o = run(&parity, &["score"], &inputs, &out, &["--skip-invalid"]);
    ok(&o);
    assert_eq!(std::fs::read_to_string(out.join("score_only/skipped.tsv")).unwrap().lines().count(), 4);
    assert!(out.join("score_only/6MRR_pdb.npz").exists());

    // A later run with nothing to skip removes the now stale list.
    ok(&run(&parity, &["design"], std::slice::from_ref(&good), &out, &[&flags[..], &["--skip-invalid"]].concat()));
    assert!(!out.join("skipped.tsv").exists(), "stale skipped.tsv kept");

    // Every input invalid: a failure even with --skip-invalid, and nothing written.
    let out2 = tmp.path().join("out2");
    let o = run(
        &parity,
        &["design"],
        &[garbage.clone(), missing_atoms.clone()],
        &out2,
        &[&flags[..], &["--skip-invalid"]].concat(),
    );
    assert!(!o.status.success());
    assert!(err(&o).contains("every input structure is invalid"), "{}", err(&o));
    assert!(!out2.exists());
}

#[test]
fn a_structure_failing_a_constraint_is_listed_like_a_bad_file() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // 3HTN has chains A, B, C; 5L33 has only A
    let inputs = [structure(&parity, "3HTN.pdb"), structure(&parity, "5L33.pdb")];
    let flags = ["--chains", "B", "--num_seq_per_target", "1", "--seed", "2"];
    let o = run(&parity, &["design"], &inputs, &out, &flags);
    assert!(!o.status.success());
    assert!(err(&o).contains("5L33.pdb: ") && err(&o).contains("chain `B`"), "{}", err(&o));
    assert!(!out.exists());
    let o = run(&parity, &["design"], &inputs, &out, &[&flags[..], &["--skip-invalid"]].concat());
    ok(&o);
    assert!(out.join("seqs/3HTN.fa").exists() && !out.join("seqs/5L33.fa").exists());
    assert!(std::fs::read_to_string(out.join("skipped.tsv")).unwrap().contains("\t5L33\t"));
}
