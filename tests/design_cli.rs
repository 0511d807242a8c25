//! `mpnn design` end to end: the official example scripts (same flags, outputs with the same
//! structure as the official ones), determinism across batch sizes / threads / shards,
//! constraints, resume, printed scores against a fresh scoring, and bad constraints.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use mpnn::featurize::{featurize, Batch, ChainSelection};
use mpnn::npz::Npz;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn reference() -> Option<(PathBuf, PathBuf)> {
    let parity = parity_dir()?;
    let reference = parity.join("../reference/official-outputs");
    if !reference.exists() {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("official outputs not found at {}", reference.display());
        }
        eprintln!("skipped: no official outputs at {}", reference.display());
        return None;
    }
    Some((parity, reference))
}

/// A design FASTA: (header fields, sequence) per record.
fn read_fa(path: &Path) -> Vec<(BTreeMap<String, String>, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() % 2, 0, "{}: odd number of lines", path.display());
    lines
        .chunks(2)
        .map(|p| {
            let h = p[0].strip_prefix('>').expect("header");
            let mut fields = BTreeMap::new();
            // the native header's chain lists contain ", " inside brackets
            let mut depth = 0;
            let mut cur = String::new();
            let mut parts = Vec::new();
            for ch in h.chars() {
                match ch {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                if ch == ',' && depth == 0 {
                    parts.push(std::mem::take(&mut cur));
                } else {
                    cur.push(ch);
                }
            }
            parts.push(cur);
            for (i, part) in parts.iter().enumerate() {
                let part = part.trim();
                match part.split_once('=') {
                    Some((k, v)) => fields.insert(k.to_string(), v.to_string()),
                    None => fields.insert(format!("#{i}"), part.to_string()),
                };
            }
            (fields, p[1].to_string())
        })
        .collect()
}

fn dict(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    mpnn::inputs::read_dict_file("test", path.to_str().unwrap()).unwrap()
}

/// Letter at (chain, 1-based position) of a `/`-joined designed sequence.
fn at(seq: &str, designed: &[String], chain: &str, pos: usize) -> Option<char> {
    let k = designed.iter().position(|c| c == chain)?;
    seq.split('/').nth(k)?.chars().nth(pos - 1)
}

fn chain_list(v: &str) -> Vec<String> {
    v.trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .filter(|x| !x.is_empty())
        .map(|x| x.trim_matches('\'').to_string())
        .collect()
}

/// Checks that `ours` has the structure of the official `theirs`, and the constraints.
fn same_structure(ours: &Path, theirs: &Path, fixed: Option<&serde_json::Value>, tied: Option<&serde_json::Value>) {
    let a = read_fa(ours);
    let b = read_fa(theirs);
    assert_eq!(a.len(), b.len(), "{}: record count", ours.display());
    let (h0, native) = &a[0];
    let (g0, native_official) = &b[0];
    let keys = |m: &BTreeMap<String, String>| m.keys().filter(|k| !k.starts_with('#')).cloned().collect::<Vec<_>>();
    assert_eq!(keys(h0), keys(g0), "native header fields");
    for k in ["fixed_chains", "designed_chains", "seed"] {
        assert_eq!(h0[k], g0[k], "native header {k}");
    }
    assert_eq!(h0["#0"], g0["#0"], "name");
    assert!(h0["git_hash"].starts_with("mpnn-"));
    assert_eq!(native, native_official, "native sequence");
    let designed = chain_list(&h0["designed_chains"]);
    let lens = |s: &str| s.split('/').map(|p| p.len()).collect::<Vec<_>>();
    for ((h, seq), (g, seq_o)) in a[1..].iter().zip(&b[1..]) {
        assert_eq!(keys(h), keys(g), "sample header fields");
        assert_eq!(h["T"], g["T"]);
        assert_eq!(h["sample"], g["sample"]);
        assert_eq!(lens(seq), lens(seq_o), "chain layout");
        for k in ["score", "global_score", "seq_recovery"] {
            let v = &h[k];
            assert!(v.split_once('.').is_some_and(|(_, d)| d.len() == 4), "{k}={v}: 4 decimals");
        }
        if let Some(fixed) = fixed {
            for (chain, list) in fixed.as_object().unwrap() {
                for p in list.as_array().unwrap() {
                    let p = p.as_u64().unwrap() as usize;
                    if let Some(x) = at(seq, &designed, chain, p) {
                        assert_eq!(Some(x), at(native, &designed, chain, p), "fixed {chain}{p} changed");
                    }
                }
            }
        }
        if let Some(tied) = tied {
            for group in tied.as_array().unwrap() {
                let letters: Vec<char> = group
                    .as_object()
                    .unwrap()
                    .iter()
                    .flat_map(|(chain, list)| {
                        list.as_array()
                            .unwrap()
                            .iter()
                            .filter_map(|p| at(seq, &designed, chain, p.as_u64().unwrap() as usize))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                assert!(letters.windows(2).all(|w| w[0] == w[1]), "tied group {group} disagrees: {letters:?}");
            }
        }
    }
}

struct Example {
    folder: &'static str,
    /// flags besides the structure input, out folder and weights; `{dir}` = the example folder
    flags: &'static [&'static str],
    jsonl: bool,
    ca: bool,
    fixed: bool,
    tied: bool,
}

const EXAMPLES: &[Example] = &[
    // submit_example_1.sh (the reference outputs hold 2 samples per structure)
    Example { folder: "example_1_outputs", flags: &[], jsonl: true, ca: false, fixed: false, tied: false },
    // submit_example_2.sh; the reference header says CA_model_name, so it was run with --ca_only
    Example {
        folder: "example_2_outputs",
        flags: &["--chain_id_jsonl", "{dir}/assigned_pdbs.jsonl"],
        jsonl: true,
        ca: true,
        fixed: false,
        tied: false,
    },
    // submit_example_3.sh
    Example {
        folder: "example_3_outputs",
        flags: &["--pdb_path", "{pdb}/3HTN.pdb", "--pdb_path_chains", "A B"],
        jsonl: false,
        ca: false,
        fixed: false,
        tied: false,
    },
    // submit_example_4.sh
    Example {
        folder: "example_4_outputs",
        flags: &["--chain_id_jsonl", "{dir}/assigned_pdbs.jsonl", "--fixed_positions_jsonl", "{dir}/fixed_pdbs.jsonl"],
        jsonl: true,
        ca: false,
        fixed: true,
        tied: false,
    },
    // submit_example_4_non_fixed.sh (the dictionary already lists the complement)
    Example {
        folder: "example_4_non_fixed_outputs",
        flags: &["--chain_id_jsonl", "{dir}/assigned_pdbs.jsonl", "--fixed_positions_jsonl", "{dir}/fixed_pdbs.jsonl"],
        jsonl: true,
        ca: false,
        fixed: true,
        tied: false,
    },
    // submit_example_5.sh
    Example {
        folder: "example_5_outputs",
        flags: &[
            "--chain_id_jsonl",
            "{dir}/assigned_pdbs.jsonl",
            "--fixed_positions_jsonl",
            "{dir}/fixed_pdbs.jsonl",
            "--tied_positions_jsonl",
            "{dir}/tied_pdbs.jsonl",
        ],
        jsonl: true,
        ca: false,
        fixed: true,
        tied: true,
    },
    // submit_example_6.sh
    Example {
        folder: "example_6_outputs",
        flags: &["--tied_positions_jsonl", "{dir}/tied_pdbs.jsonl", "--sampling_temp", "0.2"],
        jsonl: true,
        ca: false,
        fixed: false,
        tied: true,
    },
    // submit_example_8.sh (the reference outputs were made with seed 37 and 2 samples)
    Example {
        folder: "example_8_outputs",
        flags: &["--bias_AA_jsonl", "{dir}/bias_pdbs.jsonl"],
        jsonl: true,
        ca: false,
        fixed: false,
        tied: false,
    },
    // submit_example_pssm.sh
    Example {
        folder: "example_pssm_outputs",
        flags: &[
            "--chain_id_jsonl",
            "{dir}/assigned_pdbs.jsonl",
            "--pssm_jsonl",
            "{dir}/pssm.jsonl",
            "--pssm_multi",
            "0.3",
            "--pssm_bias_flag",
            "1",
        ],
        jsonl: true,
        ca: false,
        fixed: false,
        tied: false,
    },
];

#[test]
fn official_examples_give_outputs_shaped_like_the_official_ones() {
    let Some((parity, reference)) = reference() else { return };
    for ex in EXAMPLES {
        let dir = reference.join(ex.folder);
        let out = tempfile::tempdir().unwrap();
        let sub = |f: &str| f.replace("{dir}", &s(&dir)).replace("{pdb}", &s(&parity.join("structures")));
        let mut args: Vec<String> = Vec::new();
        if ex.jsonl {
            args.extend(["--jsonl_path".into(), s(&dir.join("parsed_pdbs.jsonl"))]);
        }
        args.extend(ex.flags.iter().map(|f| sub(f)));
        args.extend(
            ["--out_folder", &s(out.path()), "--num_seq_per_target", "2", "--seed", "37", "--batch_size", "1"]
                .map(String::from),
        );
        if !ex.flags.contains(&"--sampling_temp") {
            args.extend(["--sampling_temp".into(), "0.1".into()]);
        }
        args.extend(["--path_to_model_weights".into(), s(&parity.join("weights"))]);
        args.extend(["--model_name".into(), if ex.ca { "ca_k48" } else { "full_k48" }.into()]);
        if ex.ca {
            args.push("--ca_only".into());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdout = ok(&mpnn(&argv));
        assert!(stdout.contains("sequences of length"), "{}: {stdout}", ex.folder);
        let mut theirs: Vec<String> = std::fs::read_dir(dir.join("seqs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        let mut ours: Vec<String> = std::fs::read_dir(out.path().join("seqs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "{}: files", ex.folder);
        let fixed = ex.fixed.then(|| dict(&dir.join("fixed_pdbs.jsonl")));
        let tied = ex.tied.then(|| dict(&dir.join("tied_pdbs.jsonl")));
        for f in &ours {
            let name = f.trim_end_matches(".fa");
            eprintln!("{}: {name}", ex.folder);
            same_structure(
                &out.path().join("seqs").join(f),
                &dir.join("seqs").join(f),
                fixed.as_ref().and_then(|d| d.get(name)),
                tied.as_ref().and_then(|d| d.get(name)),
            );
        }
    }
}

#[test]
fn official_unconditional_probs_example_writes_the_same_files() {
    // submit_example_7.sh
    let Some((parity, reference)) = reference() else { return };
    let dir = reference.join("example_7_outputs");
    let out = tempfile::tempdir().unwrap();
    ok(&mpnn(&[
        "--jsonl_path",
        &s(&dir.join("parsed_pdbs.jsonl")),
        "--out_folder",
        &s(out.path()),
        "--unconditional_probs_only",
        "1",
        "--num_seq_per_target",
        "1",
        "--seed",
        "37",
        "--batch_size",
        "1",
        "--path_to_model_weights",
        &s(&parity.join("weights")),
        "--model_name",
        "full_k48",
    ]));
    for name in ["5L33", "6MRR"] {
        assert!(out.path().join(format!("unconditional_probs_only/{name}.npz")).exists());
    }
}

fn design(parity: &Path, out: &Path, structures: &[&str], extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["design".into()];
    args.extend(structures.iter().map(|f| s(&parity.join("structures").join(f))));
    args.extend(["--out".into(), s(out), "--weights".into(), s(&parity.join("weights/full_k48.pt"))]);
    args.extend(extra.iter().map(|x| x.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    mpnn(&argv)
}

fn fa_bytes(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out.join("seqs"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_across_batch_sizes_threads_and_shards() {
    let Some(parity) = parity_dir() else { return };
    let structures = ["5L33.pdb", "6MRR.pdb"];
    let base = ["--num_seq_per_target", "4", "--sampling_temp", "0.1 0.3", "--seed", "11", "--suppress_print", "1"];
    let run = |extra: &[&str]| {
        let out = tempfile::tempdir().unwrap();
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        ok(&design(&parity, out.path(), &structures, &args));
        fa_bytes(out.path())
    };
    let reference = run(&["--batch_size", "1", "--threads", "1"]);
    assert_eq!(reference.len(), 2);
    let records = String::from_utf8_lossy(&reference["5L33.fa"]).matches('>').count();
    assert_eq!(records, 1 + 8);
    assert_eq!(run(&["--batch_size", "2", "--threads", "2"]), reference, "batch 2, threads 2");
    assert_eq!(run(&["--batch_size", "4", "--threads", "1"]), reference, "batch 4");
    let mut sharded = run(&["--batch_size", "2", "--shard", "1/2"]);
    assert_eq!(sharded.len(), 1);
    sharded.extend(run(&["--batch_size", "1", "--shard", "2/2"]));
    assert_eq!(sharded, reference, "shards");
}

#[test]
fn constraints_hold_in_every_design() {
    let Some(parity) = parity_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let table = out.path().join("run.csv");
    ok(&design(
        &parity,
        out.path(),
        &["3HTN.pdb"],
        &[
            "--chains",
            "A,B",
            "--fixed",
            "A1-10 A15",
            "--tied",
            "A20-30,B20-30|A40,B41",
            "--omit",
            "C",
            "--omit_AAs",
            "XW",
            "--num_seq_per_target",
            "3",
            "--sampling_temp",
            "1.0",
            "--seed",
            "5",
            "--save-structures",
            "--table",
            &s(&table),
        ],
    ));
    let recs = read_fa(&out.path().join("seqs/3HTN.fa"));
    assert_eq!(recs.len(), 4);
    let designed = chain_list(&recs[0].0["designed_chains"]);
    assert_eq!(designed, ["A", "B"]);
    assert_eq!(chain_list(&recs[0].0["fixed_chains"]), ["C"]);
    let native = &recs[0].1;
    for (_, seq) in &recs[1..] {
        for p in (1..=10).chain([15]) {
            assert_eq!(at(seq, &designed, "A", p), at(native, &designed, "A", p), "A{p} fixed");
        }
        for p in 20..=30 {
            assert_eq!(at(seq, &designed, "A", p), at(seq, &designed, "B", p), "A{p}/B{p} tied");
        }
        assert_eq!(at(seq, &designed, "A", 40), at(seq, &designed, "B", 41));
        for (a, n) in seq.chars().zip(native.chars()) {
            // missing residues keep their native letter (X); every sampled one avoids the omitted
            if n != 'X' {
                assert!(!['C', 'W', 'X'].contains(&a), "omitted {a} appears: {seq}");
            }
        }
    }
    // threaded structures and the table
    #[allow(clippy::needless_range_loop)]
    for k in 1..=3 {
        let pdb = std::fs::read_to_string(out.path().join(format!("structures/3HTN_sample_{k}.pdb"))).unwrap();
        let p = mpnn::structure::read_structure(&out.path().join(format!("structures/3HTN_sample_{k}.pdb")));
        let p = p.unwrap_or_else(|e| panic!("threaded PDB does not parse: {e}\n{}", &pdb[..400]));
        let seq_a = p.chain("A").unwrap().sequence.replace('-', "X");
        assert_eq!(seq_a, recs[k].1.split('/').next().unwrap(), "threaded chain A");
    }
    let t = std::fs::read_to_string(&table).unwrap();
    assert!(t.starts_with("structure,sample,temperature,score,global_score,seq_recovery,sequence\n"));
    assert_eq!(t.lines().count(), 4);
}

#[test]
fn homo_oligomer_and_redesign() {
    let Some(parity) = parity_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    // design only A20-40 of 3HTN: everything else in chain A stays native
    ok(&design(
        &parity,
        out.path(),
        &["3HTN.pdb"],
        &["--chains", "A", "--redesign", "A20-40", "--num_seq_per_target", "2", "--seed", "3", "--suppress_print", "1"],
    ));
    let recs = read_fa(&out.path().join("seqs/3HTN.fa"));
    let native = &recs[0].1;
    for (_, seq) in &recs[1..] {
        for (i, (a, b)) in seq.chars().zip(native.chars()).enumerate() {
            if !(19..40).contains(&i) {
                assert_eq!(a, b, "position {} outside --redesign changed", i + 1);
            }
        }
    }
    let out2 = tempfile::tempdir().unwrap();
    let dir = parity.join("../reference/official-outputs/example_6_outputs");
    if dir.exists() {
        ok(&mpnn(&[
            "design",
            "--jsonl_path",
            &s(&dir.join("parsed_pdbs.jsonl")),
            "--homo-oligomer",
            "--out",
            &s(out2.path()),
            "--weights",
            &s(&parity.join("weights/full_k48.pt")),
            "--num_seq_per_target",
            "1",
            "--suppress_print",
            "1",
        ]));
        for name in ["4GYT", "6EHB"] {
            let recs = read_fa(&out2.path().join(format!("seqs/{name}.fa")));
            let chains: Vec<&str> = recs[1].1.split('/').collect();
            assert!(chains.windows(2).all(|w| w[0] == w[1]), "{name}: homo-oligomer chains differ");
        }
    }
}

#[test]
fn resume_skips_finished_structures_and_redoes_missing_ones() {
    let Some(parity) = parity_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let args = ["--num_seq_per_target", "1", "--seed", "9"];
    let first = ok(&design(&parity, out.path(), &["5L33.pdb", "6MRR.pdb"], &args));
    assert_eq!(first.matches("Generating sequences for").count(), 2);
    let before = fa_bytes(out.path());
    let mtime = std::fs::metadata(out.path().join("seqs/6MRR.fa")).unwrap().modified().unwrap();
    let again = ok(&design(&parity, out.path(), &["5L33.pdb", "6MRR.pdb"], &args));
    assert_eq!(again.matches("Skipping").count(), 2, "{again}");
    assert!(!again.contains("Generating sequences for"));
    std::fs::remove_file(out.path().join("seqs/5L33.fa")).unwrap();
    let third = ok(&design(&parity, out.path(), &["5L33.pdb", "6MRR.pdb"], &args));
    assert!(third.contains("Generating sequences for: 5L33"), "{third}");
    assert!(!third.contains("Generating sequences for: 6MRR"));
    assert_eq!(fa_bytes(out.path()), before, "redone output differs");
    assert_eq!(std::fs::metadata(out.path().join("seqs/6MRR.fa")).unwrap().modified().unwrap(), mtime);
    let forced = ok(&design(&parity, out.path(), &["5L33.pdb", "6MRR.pdb"], &[&args[..], &["--overwrite"]].concat()));
    assert_eq!(forced.matches("Generating sequences for").count(), 2);
}

#[test]
fn printed_scores_equal_a_fresh_official_scoring() {
    let Some(parity) = parity_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    ok(&design(
        &parity,
        out.path(),
        &["5L33.pdb"],
        &[
            "--num_seq_per_target",
            "4",
            "--batch_size",
            "2",
            "--sampling_temp",
            "0.1 0.5",
            "--save_probs",
            "1",
            "--save_score",
            "1",
            "--fixed",
            "A1-20",
            "--seed",
            "21",
        ],
    ));
    let probs = Npz::read(out.path().join("probs/5L33.npz")).unwrap();
    let scores = Npz::read(out.path().join("scores/5L33.npz")).unwrap();
    let l = 106;
    assert_eq!(probs.shape("probs").unwrap(), vec![8, l, 21]);
    assert_eq!(probs.shape("log_probs").unwrap(), vec![8, l, 21]);
    assert_eq!(probs.shape("S").unwrap(), vec![8, l]);
    assert_eq!(probs.shape("mask").unwrap(), vec![2, l]);
    assert_eq!(probs.shape("decoding_order").unwrap(), vec![8, l]);
    assert_eq!(scores.shape("score").unwrap(), vec![8]);
    let ckpt = mpnn::checkpoint::load(&parity.join("weights/full_k48.pt")).unwrap();
    let model = mpnn::model::ProteinMpnn::new(&ckpt, ckpt.architecture().unwrap()).unwrap();
    let protein = mpnn::structure::read_structure(&parity.join("structures/5L33.pdb")).unwrap();
    let cons = mpnn::featurize::Constraints {
        fixed_positions: Some([("A".to_string(), (1..=20).collect())].into()),
        ..Default::default()
    };
    let f = featurize(&protein, &ChainSelection::all(&protein), &cons, false).unwrap();
    let enc = model.encode(&Batch::new(&[&f], None));
    let s_all = probs.i64("S").unwrap();
    let order_all = probs.i64("decoding_order").unwrap();
    let recs = read_fa(&out.path().join("seqs/5L33.fa"));
    let printed_scores = scores.f32("score").unwrap();
    for k in 0..8 {
        let seq: Vec<u8> = s_all[k * l..(k + 1) * l].iter().map(|&v| v as u8).collect();
        let order: Vec<usize> = order_all[k * l..(k + 1) * l].iter().map(|&v| v as usize).collect();
        let lp = model.forward(&enc, &seq, &order);
        let sc = mpnn::model::decoder::score(&lp, &seq, &f.design_mask());
        let gs = mpnn::model::decoder::score(&lp, &seq, &f.mask);
        let (h, text) = &recs[k + 1];
        assert_eq!(h["score"], format!("{sc:.4}"), "sample {k} score");
        assert_eq!(h["global_score"], format!("{gs:.4}"), "sample {k} global score");
        assert_eq!(printed_scores[k], sc);
        let letters: String = seq.iter().map(|&a| mpnn::alphabet::letter_of(a)).collect();
        assert_eq!(&letters, text, "S matches the FASTA");
        assert_eq!(&letters[..20], &recs[0].1[..20], "fixed A1-20");
    }
}

#[test]
fn bad_constraints_fail_before_any_work_with_a_clear_message() {
    let Some(parity) = parity_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pssm_bad = tmp.path().join("pssm.jsonl");
    std::fs::write(
        &pssm_bad,
        r#"{"5L33": {"A": {"pssm_coef": [0.5], "pssm_bias": [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]], "pssm_log_odds": [[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]}}}"#,
    )
    .unwrap();
    let bias_bad = tmp.path().join("bias.json");
    std::fs::write(&bias_bad, r#"{"A12": {"J": 2.0}}"#).unwrap();
    let pssm = s(&pssm_bad);
    let bias = s(&bias_bad);
    let cases: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        (vec!["5L33.pdb"], "`Q`", vec!["--chains", "Q"]),
        (vec!["5L33.pdb"], "`Q3`", vec!["--fixed", "Q3"]),
        (vec!["5L33.pdb"], "`A500`", vec!["--fixed", "A500"]),
        (vec!["5L33.pdb"], "`A1-500`", vec!["--redesign", "A1-500"]),
        (vec!["3HTN.pdb"], "unequal length", vec!["--tied", "A1-5,B1-4"]),
        (vec!["5L33.pdb"], "`B`", vec!["--bias", "B:1.0"]),
        (vec!["5L33.pdb"], "`J`", vec!["--bias-by-residue", &bias]),
        (vec!["5L33.pdb"], "pssm_coef", vec!["--pssm_jsonl", &pssm]),
        (vec!["quirks.pdb"], "--homo-oligomer", vec!["--homo-oligomer"]),
        (vec!["5L33.pdb"], "A5", vec!["--fixed", "A5", "--redesign", "A1-10"]),
        (vec!["5L33.pdb"], "--shard 0/3", vec!["--shard", "0/3"]),
        (vec!["5L33.pdb"], "--shard 4/3", vec!["--shard", "4/3"]),
        (vec!["5L33.pdb"], "inline JSON", vec!["--tied_positions_jsonl", "{\"5L33\": []}"]),
        (vec!["5L33.pdb"], "--omit", vec!["--omit", "Z"]),
    ];
    for (structures, needle, flags) in cases {
        let out = tmp.path().join("out");
        let o = design(&parity, &out, &structures, &flags);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "{flags:?} should fail");
        assert!(err.contains(needle), "{flags:?}: message should name `{needle}`: {err}");
        assert!(
            err.contains("fix")
                || err.contains("use ")
                || err.contains("give ")
                || err.contains("remove")
                || err.contains("drop")
                || err.contains("add ")
                || err.contains("1-based")
                || err.contains("expected")
                || err.contains("Write the JSON"),
            "{flags:?}: message should say how to fix it: {err}"
        );
        assert!(!out.exists(), "{flags:?}: output written");
    }
}

#[test]
fn backbone_noise_is_seeded_per_sample() {
    let Some(parity) = parity_dir() else { return };
    let run = |extra: &[&str]| {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["--num_seq_per_target", "2", "--seed", "4", "--suppress_print", "1"];
        args.extend_from_slice(extra);
        ok(&design(&parity, out.path(), &["6MRR.pdb"], &args));
        fa_bytes(out.path())
    };
    let noisy = run(&["--backbone_noise", "0.2", "--batch_size", "1"]);
    assert_eq!(run(&["--backbone_noise", "0.2", "--batch_size", "2"]), noisy);
    assert_ne!(run(&["--batch_size", "2"]), noisy, "noise changes the designs");
}
