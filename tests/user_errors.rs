//! What a new user ran into: official 0/1 flags, bad checkpoints, dictionaries naming chains a
//! structure does not have, the checkpoint's name in FASTA headers, inputs that leave nothing to
//! design or sample, flag values clap or the checks misreported, and the help texts.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use mpnn::checkpoint;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Asserts that a run failed with every one of `parts` in its error, without a clap usage error.
fn fails_with(o: &Output, parts: &[&str]) -> String {
    let e = stderr(o);
    assert!(!o.status.success(), "expected a failure, got success:\n{}\n{e}", stdout(o));
    for p in parts {
        assert!(e.contains(p), "the error should mention `{p}`:\n{e}");
    }
    assert!(!e.contains("unexpected argument"), "{e}");
    e
}

struct Fx {
    parity: PathBuf,
    dir: tempfile::TempDir,
}

impl Fx {
    fn new() -> Option<Fx> {
        Some(Fx { parity: parity_dir()?, dir: tempfile::tempdir().unwrap() })
    }
    fn pdb(&self) -> String {
        s(&self.parity.join("structures/5L33.pdb"))
    }
    /// The small full-backbone fixture checkpoint (fast).
    fn weights(&self) -> String {
        s(&self.parity.join("weights/small_h64_l2_k16.pt"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        s(&p)
    }
    /// `mpnn design` of 5L33 with the small checkpoint into `out`, plus `extra`.
    fn design(&self, out: &str, extra: &[&str]) -> Output {
        self.design_with(&self.weights(), out, extra)
    }
    /// [`Fx::design`] with the checkpoint `w`.
    fn design_with(&self, w: &str, out: &str, extra: &[&str]) -> Output {
        let (pdb, o) = (self.pdb(), s(&self.path(out)));
        let mut args = vec!["design", pdb.as_str(), "--weights", w, "--out", &o, "--seed", "3"];
        args.extend_from_slice(extra);
        mpnn(&args)
    }
}

// 6. Official 0/1 flags: any non-zero whole number is on.

#[test]
fn official_int_flags_are_on_for_any_non_zero_number() {
    let Some(fx) = Fx::new() else { return };
    let (pdb, w) = (fx.pdb(), fx.weights());
    // --score_only 2 scores (it used to design silently).
    let out = s(&fx.path("score"));
    ok(&mpnn(&["--pdb_path", &pdb, "--out_folder", &out, "--weights", &w, "--score_only", "2"]));
    assert!(fx.path("score/score_only/5L33_pdb.npz").is_file(), "--score_only 2 did not score");
    assert!(!fx.path("score/seqs").exists(), "--score_only 2 designed");
    // --unconditional_probs_only -1 (negative numbers are true in Python too).
    let out = s(&fx.path("probs"));
    ok(&mpnn(&["--pdb_path", &pdb, "--out_folder", &out, "--weights", &w, "--unconditional_probs_only", "-1"]));
    assert!(fx.path("probs/unconditional_probs_only/5L33.npz").is_file());
    // --save_score 2, --save_probs 7, --suppress_print 5 in a design run.
    let o = fx.design("design", &["--save_score", "2", "--save_probs", "7", "--suppress_print", "5"]);
    let printed = ok(&o);
    assert!(fx.path("design/scores/5L33.npz").is_file(), "--save_score 2 wrote no scores");
    assert!(fx.path("design/probs/5L33.npz").is_file(), "--save_probs 7 wrote no probs");
    assert!(printed.trim().is_empty(), "--suppress_print 5 printed:\n{printed}");
    // 0 (in any spelling) is off; a non-number is refused.
    let o = fx.design("zero", &["--save_score", "00", "--suppress_print", "1"]);
    ok(&o);
    assert!(!fx.path("zero/scores").exists(), "--save_score 00 wrote scores");
    let o = mpnn(&["--pdb_path", &pdb, "--out_folder", &out, "--weights", &w, "--score_only", "yes"]);
    fails_with(&o, &["--score_only", "`yes` is not a whole number"]);
}

// 7. Checkpoints with NaN or infinite weights are refused at load time.

#[test]
fn checkpoints_with_non_finite_weights_are_refused() {
    let Some(fx) = Fx::new() else { return };
    let good = checkpoint::load(Path::new(&fx.weights())).unwrap();
    let mut bad = good.clone();
    let name = bad.tensors.keys().nth(3).unwrap().clone();
    let t = bad.tensors.get_mut(&name).unwrap();
    t.data[0] = f32::NAN;
    t.data[1] = f32::INFINITY;
    t.data[2] = f32::NEG_INFINITY;
    let st = fx.path("poisoned.safetensors");
    checkpoint::save_safetensors(&bad, &st).unwrap();
    let e = checkpoint::load(&st).unwrap_err().to_string();
    for part in [s(&st), format!("`{name}`"), "3 non-finite values".to_string()] {
        assert!(e.contains(&part), "the error should mention {part}: {e}");
    }
    // The command line stops before writing anything.
    let o = fx.design_with(&s(&st), "out", &[]);
    fails_with(&o, &["poisoned.safetensors", &name, "non-finite"]);
    assert!(!fx.path("out/seqs").exists(), "a design was written with a NaN checkpoint");

    // A .pt: the same file with one storage value set to NaN (re-zipped).
    let src = std::fs::read(fx.weights()).unwrap();
    let mut ar = zip::ZipArchive::new(std::io::Cursor::new(&src[..])).unwrap();
    let mut buf = Vec::new();
    {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut buf));
        let opt = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for i in 0..ar.len() {
            let mut f = ar.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            if f.name().ends_with("/data/0") {
                b[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            }
            z.start_file(f.name(), opt).unwrap();
            z.write_all(&b).unwrap();
        }
        z.finish().unwrap();
    }
    let pt = fx.path("poisoned.pt");
    std::fs::write(&pt, &buf).unwrap();
    let e = checkpoint::load(&pt).unwrap_err().to_string();
    assert!(e.contains(&s(&pt)) && e.contains("1 non-finite value ") && e.contains("tensor `"), "{e}");
}

// 8. Official per-chain dictionaries naming a chain the structure does not have.

#[test]
fn dictionaries_naming_a_missing_chain_are_refused() {
    let Some(fx) = Fx::new() else { return };
    let row = format!("[{}]", vec!["0.0"; 21].join(","));
    let cases = [
        ("--fixed_positions_jsonl", r#"{"5L33": {"A": [1], "B": [1]}}"#.to_string()),
        ("--omit_AA_jsonl", r#"{"5L33": {"B": [[[1], "C"]]}}"#.to_string()),
        ("--bias_by_res_jsonl", format!(r#"{{"5L33": {{"B": [{row}]}}}}"#)),
        (
            "--pssm_jsonl",
            format!(r#"{{"5L33": {{"B": {{"pssm_coef": [0.0], "pssm_bias": [{row}], "pssm_log_odds": [{row}]}}}}}}"#),
        ),
        ("--tied_positions_jsonl", r#"{"5L33": [{"A": [1], "B": [1]}]}"#.to_string()),
        ("--chain_id_jsonl", r#"{"5L33": [["A"], ["B"]]}"#.to_string()),
    ];
    for (k, (flag, text)) in cases.iter().enumerate() {
        let file = fx.write(&format!("dict{k}.jsonl"), text);
        let out = format!("out{k}");
        let o = fx.design(&out, &[flag, &file]);
        fails_with(&o, &[&file, "5L33", "chain `B`", "its chains are: A"]);
        assert!(!fx.path(&out).join("seqs").exists(), "{flag}: output written");
    }
    // Scoring reads the fixed positions too.
    let file = fx.write("fixed.jsonl", r#"{"5L33": {"C": []}}"#);
    let (pdb, w, out) = (fx.pdb(), fx.weights(), s(&fx.path("score")));
    let o = mpnn(&["score", &pdb, "--weights", &w, "--out", &out, "--fixed_positions_jsonl", &file]);
    fails_with(&o, &[&file, "5L33", "chain `C`", "its chains are: A"]);
    // A dictionary naming only chains the structure has is fine.
    let file = fx.write("fixed_ok.jsonl", r#"{"5L33": {"A": [1, 2]}}"#);
    ok(&fx.design("fine", &["--fixed_positions_jsonl", &file, "--suppress_print", "1"]));
}

// 9. The FASTA header names the checkpoint actually loaded.

#[test]
fn fasta_header_names_the_checkpoint_loaded() {
    let Some(fx) = Fx::new() else { return };
    let header = |out: &str| {
        let text = std::fs::read_to_string(fx.path(out).join("seqs/5L33.fa")).unwrap();
        text.lines().next().unwrap().to_string()
    };
    ok(&fx.design("a", &["--suppress_print", "1"]));
    let h = header("a");
    assert!(h.contains(", model_name=small_h64_l2_k16, "), "{h}");
    // through $MPNN_WEIGHTS
    let (pdb, out) = (fx.pdb(), s(&fx.path("b")));
    let w = fx.weights();
    ok(&mpnn_env(&["design", &pdb, "--out", &out, "--suppress_print", "1"], &[("MPNN_WEIGHTS", &w)]));
    assert!(header("b").contains(", model_name=small_h64_l2_k16, "), "{}", header("b"));
    // the official folder + --model_name
    let folder = s(&fx.parity.join("weights"));
    let out = s(&fx.path("c"));
    ok(&mpnn(&[
        "--pdb_path",
        &pdb,
        "--out_folder",
        &out,
        "--path_to_model_weights",
        &folder,
        "--model_name",
        "small_h64_l2_k16",
        "--suppress_print",
        "1",
    ]));
    assert!(header("c").contains(", model_name=small_h64_l2_k16, "), "{}", header("c"));
}

// 10a. Omitting every letter.

#[test]
fn omitting_every_letter_is_refused() {
    let Some(fx) = Fx::new() else { return };
    let o = fx.design("a", &["--omit_AAs", "ACDEFGHIKLMNPQRSTVWYX"]);
    fails_with(&o, &["--omit_AAs", "every amino acid is omitted"]);
    let o = fx.design("b", &["--omit", "ACDEFGHIKLMNPQRSTVWY"]);
    fails_with(&o, &["--omit", "every amino acid is omitted"]);
    let file = fx.write("omit.json", r#"{"A5": "ACDEFGHIKLMNPQRSTVWY", "A7": "AC"}"#);
    let o = fx.design("c", &["--omit-by-residue", &file]);
    let e = fails_with(&o, &["5L33", "position A5 ", "every amino acid is omitted"]);
    assert!(!e.contains("A7"), "{e}");
    let file = fx.write("omit.jsonl", r#"{"5L33": {"A": [[[3, 4], "ACDEFGHIKLMNPQRSTVWY"]]}}"#);
    let o = fx.design("d", &["--omit_AA_jsonl", &file]);
    fails_with(&o, &["5L33", "positions A3, A4 ", "every amino acid is omitted"]);
    for out in ["a", "b", "c", "d"] {
        assert!(!fx.path(out).join("seqs").exists(), "{out}: output written");
    }
    // Omitting some of them at a fixed position is fine.
    let file = fx.write("omit_fixed.json", r#"{"A5": "ACDEFGHIKLMNPQRSTVWY"}"#);
    ok(&fx.design("e", &["--omit-by-residue", &file, "--fixed", "A5", "--suppress_print", "1"]));
}

// 10b. Nothing designable.

#[test]
fn a_design_with_every_residue_fixed_is_refused() {
    let Some(fx) = Fx::new() else { return };
    let o = fx.design("a", &["--fixed", "A"]);
    fails_with(&o, &["5L33", "nothing is designable"]);
    assert!(!fx.path("a/seqs").exists());
    let file = fx.write("fixed.jsonl", &format!(r#"{{"5L33": {{"A": {:?}}}}}"#, (1..=106).collect::<Vec<_>>()));
    let o = fx.design("b", &["--fixed_positions_jsonl", &file]);
    fails_with(&o, &["5L33", "nothing is designable"]);
    assert!(!fx.path("b/seqs").exists());
}

// 10c, 10d. Flag values: absurd noise, negative temperatures.

#[test]
fn backbone_noise_and_temperature_values_get_clear_errors() {
    let Some(fx) = Fx::new() else { return };
    let e = fails_with(&fx.design("a", &["--backbone_noise", "1e6"]), &["--backbone_noise 1000000", "at most 10"]);
    assert!(!e.contains("negative"), "1e6 reported as negative: {e}");
    fails_with(&fx.design("b", &["--backbone_noise", "-0.5"]), &["--backbone_noise -0.5", "cannot be negative"]);
    fails_with(&fx.design("c", &["--sampling_temp", "-0.1"]), &["--sampling_temp", "`-0.1`", "positive"]);
    fails_with(&fx.design("d", &["--sampling_temp", "0.1 0"]), &["--sampling_temp", "`0`", "positive"]);
    fails_with(&fx.design("e", &["--sampling_temp", "-0.1 -0.2"]), &["--sampling_temp", "`-0.1`", "positive"]);
    for out in ["a", "b", "c", "d", "e"] {
        assert!(!fx.path(out).exists(), "{out}: output written");
    }
    // a sane noise still runs
    ok(&fx.design("f", &["--backbone_noise", "0.1", "--suppress_print", "1"]));
}

// 10e. --weights DIR.

#[test]
fn weights_given_a_folder_says_so() {
    let Some(fx) = Fx::new() else { return };
    let dir = s(&fx.parity.join("weights"));
    let e = fails_with(&fx.design_with(&dir, "a", &[]), &[&dir, "is a folder", "--path_to_model_weights"]);
    assert!(!e.contains("not found"), "{e}");
    let o = mpnn(&["convert", &dir, &s(&fx.path("x.safetensors"))]);
    fails_with(&o, &[&dir, "is a folder"]);
}

// 10f. No negative zero in the FASTA.

#[test]
fn zero_recovery_prints_without_a_sign() {
    // An empty f32 sum is -0.0 in Rust: a design that matches no native letter has -0.0 recovery.
    let empty: f32 = std::iter::empty::<f32>().sum();
    assert_eq!(mpnn::output::np4(empty / 5.0), "0.0000");
    assert_eq!(mpnn::output::np4(-0.0), "0.0000");
    let record = mpnn::output::sample_record(0.1, 1, 1.5, 1.25, empty / 5.0, "AC");
    assert!(record.contains("seq_recovery=0.0000\n"), "{record}");
    assert_eq!(mpnn::output::np4(-1.5), "-1.5000");
}

// 10g-i. Help texts.

#[test]
fn help_lists_every_subcommand_and_says_the_truth() {
    let top = stdout(&mpnn(&["--help"]));
    let commands = top.split("Commands:").nth(1).unwrap_or_else(|| panic!("no Commands section:\n{top}"));
    for (cmd, words) in [
        ("design", "design sequences"),
        ("score", "score"),
        ("probs", "log-probabilities"),
        ("convert", "safetensors"),
        ("bench", "benchmark"),
        ("eval", "variant"),
    ] {
        let line = commands
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("`mpnn --help` does not list {cmd}:\n{top}"));
        assert!(line.to_lowercase().contains(words), "{cmd}: `{line}` should say what it does");
    }
    assert!(!top.contains("(score, probs, convert)"), "{top}");
    let design = stdout(&mpnn(&["design", "--help"]));
    let flat = design.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!flat.contains("Passes per structure for scoring"), "{design}");
    assert!(flat.contains("for design, the number of sequences designed per temperature"), "{design}");
    // int8 is W8A8 on VNNI CPUs and W8A16 (int16 inputs) elsewhere, in --help and in the README.
    for text in [&top, &design] {
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("inputs quantized per row to int16"), "{flat}");
        assert!(flat.contains("W8A8"), "{flat}");
        assert!(!flat.contains("per-row int8 inputs"), "{flat}");
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("quantized per row to int16"), "README: int8 input width");
}
