//! `mpnn ligandmpnn run|score`, the drop-in for LigandMPNN's `run.py` and `score.py`:
//! - every example command of LigandMPNN's README and `run_examples.sh` / `sc_examples.sh`, run
//!   verbatim (`python run.py` → `mpnn ligandmpnn run`) in a folder laid out like the official
//!   repository (`inputs/`, `model_params/` holding the fixture weights under the official names);
//! - the official command-line runs of `../shared/parity/ligand/official_cli/commands.txt`: the
//!   same files, with the same layout, keys, types and shapes (not the same letters: the official
//!   draws come from torch's generator);
//! - the FASTA header and native line of every fixture case, byte for byte;
//! - the `.pt` writer read back with the crate's pickle reader;
//! - bad inputs: a clear error naming the file, the item and the fix, and nothing written.
//!
//! Fixtures: `../shared/parity` (`MPNN_PARITY_DIR`); without them these tests are skipped, and
//! under `CI=true` they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mpnn::checkpoint::pickle::{unpickle, Numpy, StorageDtype, Value};
use mpnn::ligand::output::fasta::{fasta_text, header_line, FastaHeader, FastaSample};
use mpnn::ligand::output::stats::{RunStats, ScoreOrders, ScoreStats};
use mpnn::ligand::output::torch_save::{torch_save, Dtype};

/// `../shared/parity/ligand`, or None (skip) when the fixtures are absent.
fn ligand_dir() -> Option<PathBuf> {
    common::parity_dir().map(|d| d.join("ligand"))
}

/// `../shared/reference/ligandmpnn` (the official scripts, README and inputs).
fn reference_dir(parity: &Path) -> PathBuf {
    parity.parent().unwrap().join("reference/ligandmpnn")
}

/// Runs `mpnn ARGS` in `cwd`; a panic is always a failure.
fn run_in(cwd: &Path, args: &[String]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mpnn"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MPNN_WEIGHTS")
        .env("MPNN_OFFLINE", "1")
        .output()
        .expect("run mpnn");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{args:?} panicked");
    out
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// POSIX-shell words of a command line (quotes and backslashes; no expansions).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The `python run.py ...` / `python score.py ...` commands of a file (continuation lines
/// joined), as (script, arguments).
fn example_commands(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let words = shell_words(line.trim());
        if words.len() >= 2 && words[0] == "python" && (words[1] == "run.py" || words[1] == "score.py") {
            out.push((words[1].trim_end_matches(".py").to_string(), words[2..].to_vec()));
        }
    }
    out
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(|s| s.as_str())
}

/// The fixture checkpoint (relative to `../shared/parity/ligand`) standing in for an official
/// weights file name.
fn stand_in(name: &str) -> &'static str {
    if name.starts_with("ligandmpnn") {
        "weights/ligand_k32_a25.pt"
    } else if name.starts_with("solublempnn") {
        "weights/soluble_k48.pt"
    } else if name.starts_with("per_residue_label_membrane") {
        "weights/membrane_residue_k48.pt"
    } else if name.starts_with("global_label_membrane") {
        "weights/membrane_global_k48.pt"
    } else {
        "../weights/full_k48.pt"
    }
}

/// A folder laid out like the official repository: `inputs/` (the reference JSON inputs and the
/// fixture structures) and `model_params/` (fixture weights under the official names).
fn official_layout(lig: &Path, reference: &Path, commands: &[(String, Vec<String>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    for e in std::fs::read_dir(reference.join("inputs")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, inputs.join(p.file_name().unwrap())).unwrap();
    }
    for pdb in ["1BC8.pdb", "4GYT.pdb", "2GFB.pdb"] {
        std::fs::copy(lig.join("structures").join(pdb), inputs.join(pdb)).unwrap();
    }
    let params = dir.path().join("model_params");
    std::fs::create_dir_all(&params).unwrap();
    let mut names: Vec<String> = [
        "proteinmpnn_v_48_020.pt",
        "ligandmpnn_v_32_010_25.pt",
        "per_residue_label_membrane_mpnn_v_48_020.pt",
        "global_label_membrane_mpnn_v_48_020.pt",
        "solublempnn_v_48_020.pt",
    ]
    .iter()
    .map(|n| n.to_string())
    .collect();
    for (_, args) in commands {
        for a in args {
            if let Some(n) = a.strip_prefix("./model_params/") {
                names.push(n.to_string());
            }
        }
    }
    for n in names {
        std::fs::copy(lig.join(stand_in(&n)), params.join(&n)).unwrap();
    }
    dir
}

/// Checks a run.py output folder: FASTA with the official record layout, one backbone per
/// design, stats when asked for.
fn check_run_outputs(out: &Path, args: &[String], names: &[String]) {
    let batch: usize = flag(args, "--batch_size").map_or(1, |v| v.parse().unwrap());
    let batches: usize = flag(args, "--number_of_batches").map_or(1, |v| v.parse().unwrap());
    let ending = flag(args, "--file_ending").unwrap_or("");
    let zero = flag(args, "--zero_indexed").is_some_and(|v| v != "0");
    for name in names {
        let fa = out.join("seqs").join(format!("{name}{ending}.fa"));
        let text = std::fs::read_to_string(&fa).unwrap_or_else(|e| panic!("{}: {e}", fa.display()));
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 2 + 2 * batch * batches, "{}", fa.display());
        assert!(!text.ends_with('\n'));
        assert!(lines[0].starts_with(&format!(">{name}, T=")), "{}", lines[0]);
        assert!(lines[0].contains(", num_res=") && lines[0].contains(", model_path=./model_params/"), "{}", lines[0]);
        for k in 0..batch * batches {
            let id = k + if zero { 0 } else { 1 };
            let h = lines[2 + 2 * k];
            assert!(h.starts_with(&format!(">{name}, id={id}, T=")), "{h}");
            for field in ["overall_confidence=", "ligand_confidence=", "seq_rec="] {
                let v = h.split(field).nth(1).unwrap().split(',').next().unwrap();
                assert!(v == "nan" || (v.len() == 6 && v.as_bytes()[1] == b'.'), "{field}{v} in {h}");
            }
            assert_eq!(lines[3 + 2 * k].len(), lines[1].len(), "design and native differ in length");
            let pdb = out.join("backbones").join(format!("{name}_{id}{ending}.pdb"));
            let p = std::fs::read_to_string(&pdb).unwrap_or_else(|e| panic!("{}: {e}", pdb.display()));
            assert!(p.starts_with("REMARK ") && p.ends_with(&format!("END{}\n", " ".repeat(77))));
        }
        let stats = out.join("stats").join(format!("{name}{ending}.pt"));
        assert_eq!(stats.exists(), flag(args, "--save_stats") == Some("1"), "{}", stats.display());
        if stats.exists() {
            let sig = pt_signature(&stats);
            assert!(sig.contains(&format!("'generated_sequences': tensor Long [{}, ", batch * batches)), "{sig}");
        }
    }
    assert!(out.join("packed").is_dir(), "run.py always makes packed/");
}

#[test]
fn every_official_example_command_runs() {
    let Some(lig) = ligand_dir() else { return };
    let reference = reference_dir(lig.parent().unwrap());
    let mut commands = Vec::new();
    for f in ["run_examples.sh", "README.md", "sc_examples.sh"] {
        let t = std::fs::read_to_string(reference.join(f)).unwrap();
        for c in example_commands(&t) {
            if !commands.contains(&c) {
                commands.push(c);
            }
        }
    }
    assert!(commands.len() >= 40, "only {} example commands found", commands.len());
    // run.py first: the score.py examples score a run.py output.
    commands.sort_by_key(|(script, _)| script == "score");
    let dir = official_layout(&lig, &reference, &commands);
    for (script, args) in &commands {
        let mut full = s(&["ligandmpnn", script]);
        full.extend(args.iter().cloned());
        let out_folder = dir.path().join(flag(args, "--out_folder").unwrap());
        let o = run_in(dir.path(), &full);
        if flag(args, "--pack_side_chains").is_some_and(|v| v != "0") {
            assert_eq!(o.status.code(), Some(1), "{full:?}: {}", text(&o));
            assert!(text(&o).contains("--pack_side_chains 1: side-chain packing is not supported yet"), "{}", text(&o));
            assert!(!out_folder.exists(), "{full:?} created {}", out_folder.display());
            continue;
        }
        assert!(o.status.success(), "{full:?} failed:\n{}", text(&o));
        if script == "run" {
            let names: Vec<String> = match flag(args, "--pdb_path") {
                Some(p) => vec![Path::new(p).file_stem().unwrap().to_string_lossy().into()],
                None => vec!["1BC8".into(), "4GYT".into()],
            };
            check_run_outputs(&out_folder, args, &names);
        } else {
            let pt = out_folder.join("1BC8_1.pt");
            let sig = pt_signature(&pt);
            let n: usize = flag(args, "--number_of_batches").unwrap().parse().unwrap();
            assert!(sig.contains(&format!("'log_probs': ndarray f4 < [{n}, 93, 21]")), "{sig}");
        }
    }
}

/// A description of a `torch.save` file's pickle: keys, value types, tensor storage types and
/// shapes, numpy codes and shapes, and string contents.
fn pt_signature(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let names: Vec<String> = zip.file_names().map(String::from).collect();
    let pkl = names.iter().find(|n| n.ends_with("/data.pkl")).expect("data.pkl");
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    for rec in ["version", "byteorder"] {
        assert!(names.contains(&format!("{prefix}{rec}")), "{}: no {rec} record", path.display());
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(pkl).unwrap(), &mut bytes).unwrap();
    let v = unpickle(&bytes).unwrap();
    let mut out = String::new();
    signature(&v, &mut out, &mut |key: &str| {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(&format!("{prefix}data/{key}")).unwrap(), &mut b).unwrap();
        b.len()
    });
    out
}

fn signature(v: &Value, out: &mut String, storage_len: &mut dyn FnMut(&str) -> usize) {
    match v {
        Value::Dict(d) => {
            out.push('{');
            for (k, x) in d.borrow().iter() {
                match k {
                    Value::Str(s) => out.push_str(&format!("'{s}': ")),
                    Value::Int(i) => out.push_str(&format!("{i}: ")),
                    other => out.push_str(&format!("{}: ", other.describe())),
                }
                signature(x, out, storage_len);
                out.push_str(", ");
            }
            out.push('}');
        }
        Value::List(l) => {
            out.push('[');
            for x in l.borrow().iter() {
                signature(x, out, storage_len);
                out.push_str(", ");
            }
            out.push(']');
        }
        Value::Tensor(t) => {
            let ty = match t.storage.dtype {
                StorageDtype::F32 => "Float",
                StorageDtype::Other("LongStorage") => "Long",
                StorageDtype::Other("IntStorage") => "Int",
                other => panic!("unexpected storage {other:?}"),
            };
            let numel: usize = t.size.iter().product();
            let width = if ty == "Long" { 8 } else { 4 };
            assert_eq!(storage_len(&t.storage.key), numel * width, "storage size of a {ty} tensor {:?}", t.size);
            out.push_str(&format!("tensor {ty} {:?}", t.size));
        }
        Value::Numpy(n) => match &*n.borrow() {
            Numpy::Array { code, byteorder, shape, fortran, data } => {
                let width = if code == "i8" { 8 } else { 4 };
                assert_eq!(data.len(), shape.iter().product::<usize>() * width);
                out.push_str(&format!("ndarray {code} {byteorder} {shape:?} fortran={fortran}"));
            }
            Numpy::Scalar { code, data } => out.push_str(&format!("npscalar {code} {}", data.len())),
            other => panic!("unexpected numpy object {other:?}"),
        },
        Value::Int(_) => out.push_str("int"),
        Value::Float(_) => out.push_str("float"),
        Value::Str(s) => out.push_str(&format!("'{s}'")),
        other => out.push_str(&other.describe()),
    }
}

/// The official `commands.txt` lines as `mpnn` arguments (output into `out` instead).
fn official_cli_commands(lig: &Path, out: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(lig.join("official_cli/commands.txt")).unwrap();
    let mut cmds = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("PYTHONHASHSEED")) {
        let words = shell_words(line);
        let script = if words[2].ends_with("run.py") { "run" } else { "score" };
        let mut args = s(&["ligandmpnn", script]);
        let mut it = words[3..].iter();
        let mut folder = String::new();
        while let Some(w) = it.next() {
            if w == "--out_folder" {
                folder = it.next().unwrap().trim_start_matches("official_cli/").to_string();
                args.push(w.clone());
                args.push(out.join(&folder).display().to_string());
            } else {
                args.push(w.clone());
            }
        }
        cmds.push((folder, args));
    }
    cmds
}

/// Backbone PDB lines with what the design changes blanked: residue names (columns 18-20) and
/// B-factors (61-66) of the designed backbone atoms.
fn pdb_layout(text: &str, backbone_atoms: usize) -> Vec<String> {
    let mut seen = 0;
    text.lines()
        .map(|l| {
            if (l.starts_with("ATOM") || l.starts_with("HETATM")) && seen < backbone_atoms {
                seen += 1;
                format!("{}...{}......{}", &l[..17], &l[20..60], &l[66..])
            } else if l.starts_with("ANISOU") && seen <= backbone_atoms {
                format!("{}...{}", &l[..17], &l[20..])
            } else {
                l.to_string()
            }
        })
        .collect()
}

#[test]
fn official_cli_runs_give_the_official_files() {
    let Some(lig) = ligand_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cmds = official_cli_commands(&lig, tmp.path());
    assert_eq!(cmds.len(), 5);
    for (folder, args) in &cmds {
        let o = run_in(&lig, args);
        assert!(o.status.success(), "{args:?}:\n{}", text(&o));
        let ours = common::files_under(&tmp.path().join(folder));
        let official = common::files_under(&lig.join("official_cli").join(folder));
        let ours_names: Vec<&String> = ours.keys().collect();
        let official_names: Vec<&String> = official.keys().collect();
        assert_eq!(ours_names, official_names, "{folder}: file names");
        for (name, theirs) in &official {
            let mine = &ours[name];
            let (m, t) = (String::from_utf8_lossy(mine), String::from_utf8_lossy(theirs));
            if name.ends_with(".fa") {
                let (ml, tl): (Vec<&str>, Vec<&str>) = (m.split('\n').collect(), t.split('\n').collect());
                assert_eq!(ml.len(), tl.len(), "{folder}/{name}: lines");
                assert_eq!(ml[0], tl[0], "{folder}/{name}: header");
                assert_eq!(ml[1], tl[1], "{folder}/{name}: native sequence");
                for k in (2..ml.len()).step_by(2) {
                    let cut = |h: &str| h.split(", overall_confidence=").next().unwrap().to_string();
                    assert_eq!(cut(ml[k]), cut(tl[k]), "{folder}/{name}: record {k}");
                    assert_eq!(ml[k].len(), tl[k].len(), "{folder}/{name}: record {k} layout");
                    assert_eq!(ml[k + 1].len(), tl[k + 1].len(), "{folder}/{name}: sequence {k}");
                    let colons = |x: &str| x.match_indices(':').map(|(i, _)| i).collect::<Vec<_>>();
                    assert_eq!(colons(ml[k + 1]), colons(tl[k + 1]), "{folder}/{name}: chain separators");
                }
            } else if name.ends_with(".pdb") {
                // The designed backbone: N, CA, C, O records (written first).
                let backbone = t
                    .lines()
                    .filter(|l| l.starts_with("ATOM") && [" N  ", " CA ", " C  ", " O  "].contains(&&l[12..16]))
                    .count();
                assert_eq!(pdb_layout(&m, backbone), pdb_layout(&t, backbone), "{folder}/{name}");
            } else {
                assert_eq!(
                    pt_signature(&tmp.path().join(folder).join(name)),
                    pt_signature(&lig.join("official_cli").join(folder).join(name)),
                    "{folder}/{name}"
                );
            }
        }
    }
}

/// The case flags of a fixture as `run.py` arguments (dictionaries written to files in `tmp`).
fn case_args(case: &serde_json::Value, tmp: &Path) -> Vec<String> {
    let model_type = case["model_type"].as_str().unwrap();
    let mut args = s(&["ligandmpnn", "run", "--model_type", model_type]);
    args.push(format!("--checkpoint_{model_type}"));
    args.push(case["checkpoint"].as_str().unwrap().to_string());
    args.extend(s(&["--pdb_path", case["pdb"].as_str().unwrap(), "--seed", "111", "--batch_size", "1"]));
    args.extend(s(&["--number_of_batches", "2", "--save_stats", "1", "--verbose", "0"]));
    for (k, v) in case["flags"].as_object().unwrap() {
        args.push(format!("--{k}"));
        match v {
            serde_json::Value::String(x) => args.push(x.clone()),
            serde_json::Value::Object(_) => {
                let p = tmp.join(format!("{k}.json"));
                std::fs::write(&p, v.to_string()).unwrap();
                args.push(p.display().to_string());
            }
            other => args.push(other.to_string()),
        }
    }
    args
}

#[test]
fn fasta_header_and_native_match_every_fixture_case() {
    let Some(lig) = ligand_dir() else { return };
    let mut checked = 0;
    for name in common::cases(&lig) {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(lig.join(format!("{name}.json"))).unwrap()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let mut args = case_args(&case, tmp.path());
        args.push("--out_folder".into());
        args.push(tmp.path().join("out").display().to_string());
        let o = run_in(&lig, &args);
        // The official code fails on these two; mpnn designs them (see the README).
        assert!(o.status.success(), "{name}: {args:?}\n{}", text(&o));
        let Some(header) = case["fasta_header"].as_str() else { continue };
        let stem = Path::new(case["pdb"].as_str().unwrap()).file_stem().unwrap().to_string_lossy().to_string();
        let fa = std::fs::read_to_string(tmp.path().join("out/seqs").join(format!("{stem}.fa"))).unwrap();
        let lines: Vec<&str> = fa.split('\n').collect();
        assert_eq!(lines[0], header, "{name}: header");
        assert_eq!(lines[1], case["fasta_native"].as_str().unwrap(), "{name}: native");
        assert_eq!(lines.len(), 6, "{name}");
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} cases with a FASTA header");
}

#[test]
fn fasta_records_format_like_run_py() {
    let Some(lig) = ligand_dir() else { return };
    for name in common::cases(&lig) {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(lig.join(format!("{name}.json"))).unwrap()).unwrap();
        let (Some(header), true) = (case["fasta_header"].as_str(), case["argmax_fasta"].is_object()) else { continue };
        // Rebuild the header from its fields and the sample records from the recorded numbers.
        let field = |k: &str| header.split(&format!(", {k}=")).nth(1).unwrap().split(", ").next().unwrap().to_string();
        let h = FastaHeader {
            name: header[1..].split(',').next().unwrap().to_string(),
            temperature: field("T").parse().unwrap(),
            seed: field("seed").parse().unwrap(),
            num_res: field("num_res").parse().unwrap(),
            num_ligand_res: field("num_ligand_res").parse().unwrap(),
            use_ligand_context: field("use_ligand_context") == "True",
            ligand_cutoff_distance: field("ligand_cutoff_distance").parse().unwrap(),
            batch_size: field("batch_size").parse().unwrap(),
            number_of_batches: field("number_of_batches").parse().unwrap(),
            model_path: header.split(", model_path=").nth(1).unwrap().to_string(),
            native: case["fasta_native"].as_str().unwrap().to_string(),
        };
        assert_eq!(header_line(&h), header, "{name}");
        let rec = |k: &str, id: usize| {
            let r = &case[k];
            let num = |f: &str| r[f].as_str().unwrap().parse::<f32>().unwrap();
            FastaSample {
                id,
                overall_confidence: num("overall_confidence"),
                ligand_confidence: num("ligand_confidence"),
                seq_rec: num("seq_rec"),
                seq: r["sequence"].as_str().unwrap().to_string(),
            }
        };
        let text = fasta_text(&h, &[rec("argmax_fasta", 1), rec("forced_fasta", 2)]);
        let lines: Vec<&str> = text.split('\n').collect();
        for (k, key) in [(2, "argmax_fasta"), (4, "forced_fasta")] {
            let r = &case[key];
            let want = format!(
                ">{}, id={}, T={}, seed=111, overall_confidence={}, ligand_confidence={}, seq_rec={}",
                h.name,
                k / 2,
                field("T"),
                r["overall_confidence"].as_str().unwrap(),
                r["ligand_confidence"].as_str().unwrap(),
                r["seq_rec"].as_str().unwrap()
            );
            assert_eq!(lines[k], want, "{name}");
            assert_eq!(lines[k + 1], r["sequence"].as_str().unwrap());
        }
    }
}

#[test]
fn pt_writer_reads_back_like_the_official_files() {
    let Some(lig) = ligand_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // run.py stats: 2 designs of 1BC8 (93 residues), chain mask from chains only (int32).
    let l = 93;
    let stats = RunStats {
        generated_sequences: vec![vec![12; l]; 2],
        sampling_probs: vec![vec![0.05; l * 20]; 2],
        log_probs: vec![vec![-3.0; l * 21]; 2],
        decoding_order: vec![(0..l).collect(); 2],
        native_sequence: vec![10; l],
        mask: vec![1.0; l],
        chain_mask: vec![1.0; l],
        chain_mask_dtype: Dtype::I32,
        seed: 111,
        temperature: 0.1,
    };
    let p = tmp.path().join("stats/1BC8.pt");
    torch_save(&stats.to_py(), &p).unwrap();
    assert_eq!(pt_signature(&p), pt_signature(&lig.join("official_cli/run_1BC8/stats/1BC8.pt")));
    // With fixed or redesigned residues the official chain_mask is int64.
    let p4 = tmp.path().join("stats/4GYT.pt");
    let l4 = 354;
    let stats4 = RunStats {
        generated_sequences: vec![vec![12; l4]],
        sampling_probs: vec![vec![0.05; l4 * 20]],
        log_probs: vec![vec![-3.0; l4 * 21]],
        decoding_order: vec![(0..l4).collect()],
        native_sequence: vec![10; l4],
        mask: vec![1.0; l4],
        chain_mask: vec![1.0; l4],
        chain_mask_dtype: Dtype::I64,
        seed: 111,
        temperature: 0.1,
    };
    torch_save(&stats4.to_py(), &p4).unwrap();
    assert_eq!(pt_signature(&p4), pt_signature(&lig.join("official_cli/run_4GYT_homo/stats/4GYT.pt")));

    // score.py: numpy arrays, dicts of numpy float32 scalars, residue names.
    let official = pt_signature(&lig.join("official_cli/score_1BC8_single_aa/1BC8.pt"));
    let names: Vec<String> = (1..=l).map(|i| format!("C{i}")).collect();
    let native = native_1bc8(&official);
    let score = ScoreStats {
        logits: vec![vec![0.5; l * 21]; 2],
        log_probs: vec![vec![-3.0; l * 21]; 2],
        decoding_order: ScoreOrders::SingleAa(vec![vec![(0..l).collect(); l]; 2]),
        native_sequence: native.clone(),
        mask: vec![1.0; l],
        chain_mask: vec![1.0; l],
        chain_mask_dtype: Dtype::I32,
        seed: 111,
        residue_names: names.clone(),
    };
    let ps = tmp.path().join("score/1BC8.pt");
    torch_save(&score.to_py(), &ps).unwrap();
    assert_eq!(pt_signature(&ps), official);
    let score_ar = ScoreStats {
        logits: vec![vec![0.5; l * 21]],
        log_probs: vec![vec![-3.0; l * 21]],
        decoding_order: ScoreOrders::Autoregressive(vec![(0..l).collect()]),
        native_sequence: native,
        residue_names: names,
        ..score
    };
    torch_save(&score_ar.to_py(), &ps).unwrap();
    assert_eq!(pt_signature(&ps), pt_signature(&lig.join("official_cli/score_1BC8_autoregressive/1BC8.pt")));
}

/// The native sequence of 1BC8 from a signature's `'sequence': [...]`.
fn native_1bc8(sig: &str) -> Vec<u8> {
    let list = sig.split("'sequence': [").nth(1).unwrap().split(']').next().unwrap();
    list.split(", ")
        .filter(|x| !x.is_empty())
        .map(|x| mpnn::alphabet::index_of(x.trim_matches('\'').chars().next().unwrap()).unwrap())
        .collect()
}

// ---- bad inputs: a clear error, nothing written ----

/// Runs `mpnn ligandmpnn run` on 1BC8 with extra arguments into a fresh folder; returns the
/// output and whether the output folder holds any file.
fn run_bad(lig: &Path, extra: &[&str]) -> (Output, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut args = s(&["ligandmpnn", "run", "--model_type", "ligand_mpnn"]);
    args.extend(s(&["--checkpoint_ligand_mpnn", "weights/ligand_k32_a25.pt", "--pdb_path", "structures/1BC8.pdb"]));
    args.extend(s(&["--out_folder", out.to_str().unwrap()]));
    args.extend(extra.iter().map(|x| x.to_string()));
    let o = run_in(lig, &args);
    let wrote = !common::files_under(&out).is_empty();
    (o, wrote)
}

fn assert_refused(lig: &Path, extra: &[&str], needles: &[&str]) {
    let (o, wrote) = run_bad(lig, extra);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{extra:?}: {t}");
    assert!(!wrote, "{extra:?} wrote files before failing");
    for n in needles {
        assert!(t.contains(n), "{extra:?}: message lacks {n:?}:\n{t}");
    }
}

#[test]
fn packing_is_refused_before_any_output() {
    let Some(lig) = ligand_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    let o = run_in(
        &lig,
        &s(&["ligandmpnn", "run", "--pdb_path", "structures/1BC8.pdb", "--pack_side_chains", "1", "--out_folder"])
            .into_iter()
            .chain([out.display().to_string()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--pack_side_chains 1: side-chain packing is not supported yet"));
    assert!(!out.exists(), "the output folder was created");
    // The other packing flags alone are accepted (and unused), as with --pack_side_chains 0.
    let (o, _) = run_bad(&lig, &["--number_of_packs_per_design", "2", "--packed_suffix", "_p", "--batch_size", "1"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_inputs_are_named_before_any_output() {
    let Some(lig) = ligand_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bad_json = tmp.path().join("bad.json");
    std::fs::write(&bad_json, "{\"structures/1BC8.pdb\": \"C1 C2\",").unwrap();
    let b = bad_json.to_str().unwrap();
    assert_refused(&lig, &["--fixed_residues_multi", b], &["--fixed_residues_multi", "bad.json", "not valid JSON"]);
    let missing_key = tmp.path().join("other.json");
    std::fs::write(&missing_key, "{\"structures/4GYT.pdb\": \"A7\"}").unwrap();
    assert_refused(
        &lig,
        &["--redesigned_residues_multi", missing_key.to_str().unwrap()],
        &["--redesigned_residues_multi", "no entry for structures/1BC8.pdb"],
    );
    let bias = tmp.path().join("bias.json");
    std::fs::write(&bias, "{\"C1\": {\"G\": \"high\"}}").unwrap();
    assert_refused(&lig, &["--bias_AA_per_residue", bias.to_str().unwrap()], &["bias.json", "C1", "not a number"]);
    assert_refused(
        &lig,
        &["--bias_AA_per_residue", "nowhere.json"],
        &["--bias_AA_per_residue nowhere.json", "cannot read"],
    );
    let multi = tmp.path().join("multi.json");
    std::fs::write(&multi, "{\"structures/1BC8.pdb\": \"\", \"structures/none.pdb\": \"\"}").unwrap();
    assert_refused(&lig, &["--pdb_path_multi", multi.to_str().unwrap()], &["structures/none.pdb", "does not exist"]);
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(lig.join("structures/1BC8.pdb"), copy.join("1BC8.pdb")).unwrap();
    let twins = tmp.path().join("twins.json");
    let copy_path = copy.join("1BC8.pdb").display().to_string();
    std::fs::write(&twins, serde_json::json!({"structures/1BC8.pdb": "", copy_path.clone(): ""}).to_string()).unwrap();
    assert_refused(
        &lig,
        &["--pdb_path_multi", twins.to_str().unwrap()],
        &["structures/1BC8.pdb and ", "would both write"],
    );
    assert_refused(&lig, &["--pdb_path", "structures/missing.pdb"], &["--pdb_path", "structures/missing.pdb"]);
    assert_refused(
        &lig,
        &["--checkpoint_ligand_mpnn", "weights/none.pt"],
        &["--checkpoint_ligand_mpnn weights/none.pt"],
    );
    assert_refused(&lig, &["--bias_AA", "A-1"], &["--bias_AA", "A-1"]);
    assert_refused(&lig, &["--fixed_residues", "C1 Q7"], &["--fixed_residues", "Q7"]);
    assert_refused(&lig, &["--symmetry_residues", "C1,C2", "--symmetry_weights", "1.0"], &["--symmetry"]);
    assert_refused(&lig, &["--batch_size", "0"], &["--batch_size 0"]);
    assert_refused(&lig, &["--temperature", "0"], &["--temperature"]);
    // Unknown flags are usage errors (exit 2), as with argparse.
    let (o, wrote) = run_bad(&lig, &["--no_such_flag", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!wrote);
}

#[test]
fn score_needs_a_score_kind() {
    let Some(lig) = ligand_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut args = s(&["ligandmpnn", "score", "--model_type", "ligand_mpnn"]);
    args.extend(s(&["--checkpoint_ligand_mpnn", "weights/ligand_k32_a25.pt", "--pdb_path", "structures/4oz7.pdb"]));
    args.extend(s(&["--single_aa_score", "0", "--out_folder", out.to_str().unwrap()]));
    let o = run_in(&lig, &args);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--autoregressive_score 1 or --single_aa_score 1"), "{}", text(&o));
    assert!(!out.exists());
    // Both on: autoregressive, as in score.py.
    args.truncate(args.len() - 4);
    args.extend(s(&["--autoregressive_score", "1", "--out_folder", out.to_str().unwrap(), "--verbose", "0"]));
    let o = run_in(&lig, &args);
    assert!(o.status.success(), "{}", text(&o));
    let sig = pt_signature(&out.join("4oz7.pt"));
    assert!(sig.contains("'decoding_order': ndarray i8 < [1, 16] fortran=false"), "{sig}");
}
