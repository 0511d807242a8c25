//! Cluster runs without a cluster: Slurm array tasks simulated through their environment
//! variables, the script `mpnn slurm` writes (run by bash as Slurm would), `mpnn status` and
//! `mpnn merge-tables`. The same on a real Slurm: scripts/slurm-test.sh (run by .ci/run).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The four inputs in name order (so a one-process table lists them as merge-tables does).
fn inputs(parity: &Path) -> Vec<String> {
    ["5L33", "6EHB", "6MRR", "quirks"].iter().map(|n| s(&parity.join(format!("structures/{n}.pdb")))).collect()
}

fn design_args(parity: &Path, out: &Path) -> Vec<String> {
    let mut a = vec!["design".to_string()];
    a.extend(inputs(parity));
    for w in [
        "--weights",
        &s(&parity.join("weights/full_k48.pt")),
        "--out",
        &s(out),
        "--num_seq_per_target",
        "2",
        "--sampling_temp",
        "0.1 0.2",
        "--seed",
        "5",
        "--save_score",
        "1",
    ] {
        a.push(w.to_string());
    }
    a
}

fn run(args: &[String], envs: &[(&str, &str)]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    mpnn_env(&refs, envs)
}

/// The output folder's files but for the run file and slurm/ (which one process does not write).
fn outputs(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut f = files_under(dir);
    f.retain(|k, _| k != ".mpnn-run.json" && !k.starts_with("slurm/"));
    f
}

fn status(out: &Path) -> (i32, String) {
    let o = mpnn(&["status", &s(out)]);
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string() + &err(&o))
}

#[test]
fn array_tasks_from_the_environment_write_what_one_process_writes() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("ref");
    let mut a = design_args(&parity, &reference);
    a.extend(["--table".into(), s(&tmp.path().join("ref.csv"))]);
    ok(&run(&a, &[]));
    assert_eq!(status(&reference), (0, format!("{}: all 4 structures complete (1 shard)\n", s(&reference))));

    // `--array=1-7:3` (ids 1, 4, 7), no --shard: each task takes its shard and says so.
    let out = tmp.path().join("array");
    let tables: Vec<String> = (0..3).map(|k| s(&tmp.path().join(format!("t{k}.csv")))).collect();
    for (k, id) in ["1", "4", "7"].iter().enumerate() {
        let mut a = design_args(&parity, &out);
        a.extend(["--table".into(), tables[k].clone()]);
        let env = [
            ("SLURM_ARRAY_TASK_ID", *id),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_STEP", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_CPUS_PER_TASK", "1"),
        ];
        let o = run(&a, &env);
        ok(&o);
        let line = format!(
            "SLURM_ARRAY_TASK_ID is set and --shard is not given: this task designs shard {}/3 (SLURM_ARRAY_TASK_ID={id} in the array 1-7:3)",
            k + 1
        );
        assert!(err(&o).contains(&line), "{}", err(&o));
        if k == 0 {
            // Shard 1 of 3 holds structures 1 and 4 of the name-sorted list.
            let (code, text) = status(&out);
            assert_eq!(code, 2, "{text}");
            assert!(text.contains("2 of 4 structures complete (3 shards); 2 missing, in 2 shards:"), "{text}");
            assert!(text.contains("  shard 2/3: 1 missing: 6EHB (no seqs file)"), "{text}");
            assert!(text.contains("  shard 3/3: 1 missing: 6MRR (no seqs file)"), "{text}");
            assert!(text.contains("--shard 2/3, then --shard 3/3"), "{text}");
        }
    }
    assert_eq!(status(&out).0, 0);
    assert_eq!(outputs(&out), outputs(&reference));
    let merged = tmp.path().join("merged.csv");
    let mut m = vec!["merge-tables".to_string()];
    m.extend(tables.iter().cloned());
    m.extend(["--out".into(), s(&merged)]);
    ok(&run(&m, &[]));
    assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(tmp.path().join("ref.csv")).unwrap());

    // An interrupted task: a structure's FASTA gone, a temporary file of a write left behind, and
    // another structure's record changed (designed with other parameters).
    std::fs::remove_file(out.join("seqs/6EHB.fa")).unwrap();
    std::fs::write(out.join("seqs/.6EHB.fa.tmp-4242"), ">cut").unwrap();
    std::fs::write(out.join("scores/.6EHB.npz.tmp-4242"), "cut").unwrap();
    let text = std::fs::read_to_string(out.join("seqs/quirks.fa")).unwrap();
    std::fs::write(out.join("seqs/quirks.fa"), &text[..text.len() / 2]).unwrap();
    let (code, text) = status(&out);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("  shard 2/3: 1 missing: 6EHB (no seqs file)"), "{text}");
    assert!(text.contains("  shard 1/3: 1 missing: quirks (seqs file cut short)"), "{text}");
    assert!(text.contains("2 temporary files of interrupted writes"), "{text}");
    // Rerunning those shards completes the set, with nothing stale.
    for shard in ["1/3", "2/3"] {
        let mut a = design_args(&parity, &out);
        a.extend(["--shard".into(), shard.into()]);
        ok(&run(&a, &[]));
    }
    assert_eq!(status(&out).0, 0);
    assert_eq!(outputs(&out), outputs(&reference));
}

#[test]
fn bad_slurm_variables_are_named() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let a = design_args(&parity, &out);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "4")],
            "SLURM_ARRAY_TASK_ID=9: not a task of the array 1-4",
        ),
        (
            vec![("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "4")],
            "SLURM_ARRAY_TASK_ID=x: not a whole number",
        ),
        (vec![("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")], "SLURM_ARRAY_TASK_MIN is not set"),
        (vec![("SLURM_CPUS_PER_TASK", "lots")], "SLURM_CPUS_PER_TASK=lots"),
    ];
    for (env, needle) in cases {
        let o = run(&a, &env);
        assert!(!o.status.success(), "{env:?}");
        assert!(err(&o).contains(needle), "{env:?}: {}", err(&o));
        assert!(files_under(&out).is_empty(), "{env:?} wrote files");
    }
    let mut auto = a.clone();
    auto.extend(["--shard".into(), "auto".into()]);
    let o = run(&auto, &[]);
    assert!(err(&o).contains("--shard auto: SLURM_ARRAY_TASK_ID is not set"), "{}", err(&o));
    // --shard auto in a 0-based array; an explicit --shard wins over the environment.
    let env = [("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "1")];
    let o = run(&auto, &env);
    ok(&o);
    assert!(
        err(&o).contains("--shard auto: this task designs shard 1/2 (SLURM_ARRAY_TASK_ID=0 in the array 0-1)"),
        "{}",
        err(&o)
    );
    let mut explicit = a.clone();
    explicit.extend(["--shard".into(), "2/2".into()]);
    let o = run(&explicit, &env);
    ok(&o);
    assert!(!err(&o).contains("SLURM_ARRAY_TASK_ID"), "{}", err(&o));
    assert_eq!(status(&out).0, 0);
}

#[test]
fn the_generated_script_runs_each_shard() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("ref");
    let mut a = design_args(&parity, &reference);
    a.extend(["--table".into(), s(&tmp.path().join("ref.jsonl"))]);
    ok(&run(&a, &[]));

    // GPU tasks: one GPU each, the design run with --device gpu, so a node whose GPU mpnn cannot
    // use stops with the clear error (this machine, unless it has a hardware GPU with a driver).
    let gpu_out = tmp.path().join("gpu");
    let slurm = |out: &Path, device: &str| -> Vec<String> {
        let mut a: Vec<String> =
            ["slurm", "--tasks", "3", "--parallel", "2", "--cpus-per-task", "2", "--time", "30", "--device", device]
                .iter()
                .map(|w| w.to_string())
                .collect();
        a.push("--".into());
        a.extend(design_args(&parity, out));
        a.extend(["--table".into(), s(&tmp.path().join("run.jsonl"))]);
        a
    };
    ok(&run(&slurm(&gpu_out, "gpu"), &[]));
    let gpu_script = gpu_out.join("slurm/mpnn.sbatch");
    let text = std::fs::read_to_string(&gpu_script).unwrap();
    assert!(text.lines().any(|l| l == "#SBATCH --gres=gpu:1"), "{text}");
    assert!(text.contains(" --device gpu \\\n"), "{text}");
    let o = Command::new("bash")
        .arg(&gpu_script)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("MPNN_OFFLINE", "1")
        .env_remove("MPNN_ALLOW_SOFTWARE_GPU")
        .output()
        .unwrap();
    assert!(o.status.success() || err(&o).contains("--device gpu: "), "{}", err(&o));
    let mut cpu_in_gpu = slurm(&gpu_out, "gpu");
    cpu_in_gpu.extend(["--device".into(), "cpu".into()]);
    assert!(err(&run(&cpu_in_gpu, &[])).contains("has --device cpu: drop one of them"));

    let out = tmp.path().join("out");
    ok(&run(&slurm(&out, "cpu"), &[]));
    let script = out.join("slurm/mpnn.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    for line in ["#SBATCH --array=1-3%2", "#SBATCH --cpus-per-task=2", "#SBATCH --time=30"] {
        assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    }
    assert!(!text.contains("--gres") && !text.contains("--device"), "{text}");
    assert!(
        text.contains("'0.1 0.2'") && text.contains("--shard \"$task/3\"") && !text.contains("run.jsonl --"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "mpnn merge-tables {}/slurm/tables/shard-*.jsonl --out {}/run.jsonl",
            s(&out),
            s(tmp.path())
        )),
        "{text}"
    );
    assert!(out.join("slurm/logs").is_dir());

    // Run by bash as Slurm would run each task (and once without an array id: refused).
    let o = Command::new("bash").arg(&script).env_remove("SLURM_ARRAY_TASK_ID").output().unwrap();
    assert!(!o.status.success() && err(&o).contains("submit this script with sbatch"), "{}", err(&o));
    for task in ["1", "2", "3"] {
        let o = Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", task)
            .env("MPNN_OFFLINE", "1")
            .output()
            .unwrap();
        ok(&o);
    }
    assert_eq!(status(&out).0, 0);
    assert_eq!(outputs(&out), outputs(&reference));
    let merged = tmp.path().join("run.jsonl");
    let tables: Vec<String> = (1..=3).map(|k| s(&out.join(format!("slurm/tables/shard-{k}.jsonl")))).collect();
    let mut m = vec!["merge-tables".to_string()];
    m.extend(tables.iter().cloned());
    m.extend(["--out".into(), s(&merged)]);
    ok(&run(&m, &[]));
    assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(tmp.path().join("ref.jsonl")).unwrap());
    // A table of another run with other rows for the same structure is refused.
    let other = tmp.path().join("other.jsonl");
    let t = std::fs::read_to_string(&tables[0]).unwrap();
    std::fs::write(&other, t.replacen("\"sample\":1", "\"sample\":9", 1)).unwrap();
    let o = run(&["merge-tables".into(), tables[0].clone(), s(&other), "--out".into(), s(&merged)], &[]);
    assert!(!o.status.success() && err(&o).contains("with different rows"), "{}", err(&o));

    // What mpnn slurm refuses.
    let base: Vec<String> = ["slurm", "--tasks", "2", "--time", "10"].iter().map(|w| w.to_string()).collect();
    let mut with_shard = base.clone();
    with_shard.push("--".into());
    with_shard.extend(design_args(&parity, &out));
    with_shard.extend(["--shard".into(), "1/2".into()]);
    assert!(err(&run(&with_shard, &[])).contains("leave it out: task I of the array runs --shard I/2"));
    let mut not_design = base.clone();
    not_design.extend(["--".into(), "score".into(), inputs(&parity)[0].clone(), "--out".into(), s(&out)]);
    assert!(err(&run(&not_design, &[])).contains("starting with `design`"));
    let mut no_out = base.clone();
    no_out.extend(["--".into(), "design".into(), inputs(&parity)[0].clone()]);
    assert!(err(&run(&no_out, &[])).contains("has no --out DIR"));
}
