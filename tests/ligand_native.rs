//! LigandMPNN-family checkpoints through the native interface (`mpnn design / score / probs` and
//! [`mpnn::job::ligand`]): many structures per process with one model load, the numbers of the
//! `mpnn ligandmpnn` drop-in and of the official fixtures, residue ids with insertion codes, the
//! warnings and notes about context atoms, and bad inputs.
//!
//! Fixtures: `../shared/parity/ligand` (`MPNN_PARITY_DIR`); without them these tests are skipped,
//! and under `CI=true` they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{max_abs_diff, mpnn};
use mpnn::job::ligand::{self, LigandModel, LigandOptions, LigandSelection, ProbsKind};
use mpnn::ligand::ModelType;
use mpnn::npz::Npz;

fn ligand_dir() -> Option<PathBuf> {
    common::parity_dir().map(|d| d.join("ligand"))
}

fn run(args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    mpnn(&a)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "mpnn failed:\n{}\n{}", stdout(o), stderr(o));
    stdout(o)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A folder holding copies of the named fixture structures.
fn folder_of(dir: &Path, names: &[&str]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::copy(dir.join("structures").join(n), t.path().join(n)).unwrap();
    }
    t
}

/// (header, sequence) records of a FASTA file.
fn fasta(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks(2).map(|c| (c[0].to_string(), c[1].to_string())).collect()
}

/// `key=value` of a FASTA header.
fn field(header: &str, key: &str) -> String {
    header
        .split(", ")
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {header}"))
        .to_string()
}

/// Whether position `i` is decoded first in `single_aa_score(use_sequence=True)`'s order for it:
/// `argsort((m + 1e-4)·|randn|)` with `m` = 1 except `m[i]` = 0.
fn first(randn: &[f32], i: usize) -> bool {
    let own = 1e-4f32 * randn[i].abs();
    randn.iter().enumerate().all(|(j, r)| j == i || own < (1.0f32 + 1e-4) * r.abs())
}

#[test]
fn design_equals_the_dropin_for_several_structures_with_one_model_load() {
    let Some(dir) = ligand_dir() else { return };
    let w = dir.join("weights/ligand_k32_a25.pt");
    let inputs = folder_of(&dir, &["1BC8.pdb", "7v11.pdb", "2GFB.pdb"]);
    let out = tempfile::tempdir().unwrap();
    // A folder: every structure, one process.
    let o = run(&s(&[
        "design",
        &p(inputs.path()),
        "--weights",
        &p(&w),
        "--out",
        &p(out.path()),
        "--seed",
        "111",
        "--num_seq_per_target",
        "3",
    ]));
    let text = ok(&o);
    assert_eq!(text.matches("Model: ligand_k32_a25 (ligand_mpnn)").count(), 1, "one model load:\n{text}");
    let model = LigandModel::from_file(&w, None, false).unwrap();
    assert_eq!(model.model_type(), ModelType::LigandMpnn, "detected from the tensors");
    for name in ["1BC8", "7v11", "2GFB"] {
        let native = fasta(&out.path().join(format!("seqs/{name}.fa")));
        assert_eq!(native.len(), 4, "{name}: native + 3 designs");
        // The drop-in, --batch_size 1: batch i is sample i.
        let drop = tempfile::tempdir().unwrap();
        ok(&run(&s(&[
            "ligandmpnn",
            "run",
            "--model_type",
            "ligand_mpnn",
            "--checkpoint_ligand_mpnn",
            &p(&w),
            "--pdb_path",
            &p(&inputs.path().join(format!("{name}.pdb"))),
            "--out_folder",
            &p(drop.path()),
            "--seed",
            "111",
            "--batch_size",
            "1",
            "--number_of_batches",
            "3",
        ])));
        let official = fasta(&drop.path().join(format!("seqs/{name}.fa")));
        // Chains: `/` in the native FASTA, `:` in the drop-in's.
        let slash = |x: &str| x.replace(':', "/");
        assert_eq!(native[0].1, slash(&official[0].1), "{name}: native sequence");
        for k in 1..4 {
            assert_eq!(native[k].1, slash(&official[k].1), "{name}: design {k}");
            assert_eq!(field(&native[k].0, "overall_confidence"), field(&official[k].0, "overall_confidence"));
            assert_eq!(field(&native[k].0, "seq_recovery"), field(&official[k].0, "seq_rec"));
            if name == "2GFB" {
                // No context atoms: no ligand_confidence claim.
                assert!(!native[k].0.contains("ligand_confidence"), "{}", native[k].0);
            } else {
                assert_eq!(field(&native[k].0, "ligand_confidence"), field(&official[k].0, "ligand_confidence"));
            }
        }
        // The library gives the same designs.
        let prep = ligand::prepare(
            &model,
            &inputs.path().join(format!("{name}.pdb")),
            &Default::default(),
            &LigandOptions::default(),
        )
        .unwrap();
        let lib = ligand::design(&model, &prep, &[0.1], 3, 111).unwrap();
        for (k, d) in lib.iter().enumerate() {
            assert_eq!(prep.designed_sequence(&d.s), native[k + 1].1, "{name}: library design {k}");
        }
    }
    assert!(stderr(&o).contains("note: 2GFB.pdb: no context atoms"), "{}", stderr(&o));
}

#[test]
fn probs_equal_the_fixtures_single_aa_scores() {
    let Some(dir) = ligand_dir() else { return };
    // (weights, extra flags, cases), each group in one process over a folder.
    /// (weights, extra flags, (fixture case, structure) pairs).
    type Group<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let groups: Vec<Group> = vec![
        (
            "ligand_k32_a25.pt",
            vec![],
            vec![("ligand_1BC8", "1BC8"), ("ligand_7v11", "7v11"), ("ligand_no_ligand_5L33", "5L33")],
        ),
        ("ligand_k32_a25.pt", vec!["--ligand_mpnn_use_atom_context", "0"], vec![("ligand_1BC8_no_context", "1BC8")]),
        ("ligand_h64_l2_k16_a16.pt", vec![], vec![("pruned_1BC8", "1BC8")]),
        ("protein_k48.pt", vec!["--model_type", "protein_mpnn"], vec![("protein_1BC8", "1BC8")]),
        (
            "soluble_k48.pt",
            vec!["--model_type", "soluble_mpnn"],
            vec![("soluble_5L33", "5L33"), ("soluble_7v11", "7v11")],
        ),
        (
            "membrane_global_k48.pt",
            vec!["--model_type", "global_label_membrane_mpnn", "--global_transmembrane_label", "1"],
            vec![("membrane_global_1BC8", "1BC8")],
        ),
        (
            "membrane_residue_k48.pt",
            vec![
                "--model_type",
                "per_residue_label_membrane_mpnn",
                "--transmembrane_buried",
                "C10 C11 C12 C13 C14 C15 C40 C41 C60",
                "--transmembrane_interface",
                "C20 C21 C22 C60",
            ],
            vec![("membrane_residue_1BC8", "1BC8")],
        ),
    ];
    for (weights, flags, cases) in groups {
        let names: Vec<String> = cases.iter().map(|c| format!("{}.pdb", c.1)).collect();
        let inputs = folder_of(&dir, &names.iter().map(String::as_str).collect::<Vec<_>>());
        for kind in ["--unconditional", "--conditional"] {
            let out = tempfile::tempdir().unwrap();
            let mut args = s(&["probs", kind, &p(inputs.path()), "--out", &p(out.path()), "--seed", "3"]);
            args.extend(s(&["--weights", &p(&dir.join("weights").join(weights))]));
            args.extend(flags.iter().map(|f| f.to_string()));
            let text = ok(&run(&args));
            assert_eq!(text.matches("Model: ").count(), 1);
            let sub = if kind == "--unconditional" { "unconditional_probs_only" } else { "conditional_probs_only" };
            for (case, name) in &cases {
                let got = Npz::read(out.path().join(sub).join(format!("{name}.npz"))).unwrap().f32("log_p").unwrap();
                let fx = Npz::read(dir.join(format!("{case}.npz"))).unwrap();
                let want = fx.f32("single_aa_seq_log_probs").unwrap();
                // Position i of `single_aa_score(use_sequence=True)` is decoded first (and then
                // depends on nothing else) unless some |randn_j| is ~1e-4·|randn_i|: compare the
                // positions that come first under both the fixture's randn and this run's.
                let l = want.len() / 21;
                let fixture_randn = fx.f32("randn").unwrap();
                let ours = mpnn::job::order_noise(3, name, 0, l);
                let mut compared = 0;
                for i in 0..l {
                    if kind == "--conditional" && !(first(&fixture_randn, i) && first(&ours, i)) {
                        continue;
                    }
                    if kind == "--unconditional" && !first(&fixture_randn, i) {
                        continue;
                    }
                    compared += 1;
                    let d = max_abs_diff(&got[i * 21..(i + 1) * 21], &want[i * 21..(i + 1) * 21]);
                    assert!(d < 1e-4, "{case} {kind} position {i}: max |Δ log p| = {d}");
                }
                assert!(compared * 10 >= l * 9, "{case}: only {compared} of {l} positions compared");
            }
        }
    }
}

#[test]
fn score_and_backbone_only_probs_equal_the_library_and_the_network() {
    let Some(dir) = ligand_dir() else { return };
    let w = dir.join("weights/ligand_k32_a25.pt");
    let inputs = folder_of(&dir, &["1BC8.pdb", "4GYT.pdb"]);
    let out = tempfile::tempdir().unwrap();
    let glob = format!("{}/*.pdb", p(inputs.path()));
    let common = s(&["--weights", &p(&w), "--out", &p(out.path()), "--seed", "9", "--num_seq_per_target", "2"]);
    let mut a = s(&["score", &glob]);
    a.extend(common.clone());
    let text = ok(&run(&a));
    assert!(text.contains("Score for 1BC8 from PDB, mean: "), "{text}");
    let mut a = s(&["probs", "--conditional", "--backbone-only", &glob]);
    a.extend(common);
    ok(&run(&a));
    let model = LigandModel::from_file(&w, Some(ModelType::LigandMpnn), false).unwrap();
    for name in ["1BC8", "4GYT"] {
        let prep = ligand::prepare(
            &model,
            &inputs.path().join(format!("{name}.pdb")),
            &Default::default(),
            &LigandOptions::default(),
        )
        .unwrap();
        let npz = Npz::read(out.path().join(format!("score_only/{name}_pdb.npz"))).unwrap();
        let lib = ligand::score(&model, &prep, std::slice::from_ref(&prep.features.s), 2, 9).unwrap();
        let scores = npz.f32("score").unwrap();
        let lps = npz.f32("log_probs").unwrap();
        let l = prep.len();
        for (k, (sc, lp)) in lib[0].iter().enumerate() {
            assert_eq!(scores[k], sc.score, "{name} pass {k}");
            assert_eq!(&lps[k * l * 21..(k + 1) * l * 21], &lp[..]);
            // The network's official score() with the pass's decoding order.
            let enc = model.net().encode(&prep.features).unwrap();
            let randn = mpnn::job::order_noise(9, name, k, l);
            let direct = model.net().score(&enc, &prep.features, &randn, &[], true).unwrap();
            assert!(max_abs_diff(&direct.log_probs, lp) < 1e-6);
            // Mean NLL over the designed positions.
            let mean: f32 = (0..l).map(|i| -lp[i * 21 + prep.features.s[i] as usize]).sum::<f32>() / l as f32;
            assert!((mean - sc.score).abs() < 1e-4, "{name}: {mean} vs {}", sc.score);
        }
        let bb =
            Npz::read(out.path().join(format!("conditional_probs_only/{name}.npz"))).unwrap().f32("log_p").unwrap();
        let want = ligand::probs(&model, &prep, 2, 9, ProbsKind::BackboneOnly).unwrap().concat();
        assert_eq!(bb, want, "{name}: backbone-only probabilities");
        let enc = model.net().encode(&prep.features).unwrap();
        let randn = mpnn::job::order_noise(9, name, 0, l);
        let direct = model.net().single_aa_score(&enc, &prep.features, &randn, false);
        assert_eq!(&bb[..l * 21], &direct.log_probs[..]);
    }
}

#[test]
fn residue_ids_with_insertion_codes() {
    let Some(dir) = ligand_dir() else { return };
    let w = dir.join("weights/ligand_k32_a25.pt");
    let model = LigandModel::from_file(&w, None, false).unwrap();
    let pdb = dir.join("structures/2GFB.pdb");
    let sel = LigandSelection {
        chains: vec!["B".into()],
        redesign: Some("B52A B82-B82C,B100A-B100B".into()),
        ..Default::default()
    };
    let prep = ligand::prepare(&model, &pdb, &sel, &LigandOptions::default()).unwrap();
    let designed: Vec<&str> = prep
        .residue_ids
        .iter()
        .zip(&prep.features.chain_mask)
        .filter(|(_, &m)| m > 0.0)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(designed, ["B52A", "B82", "B82A", "B82B", "B82C", "B100A", "B100B"]);
    // `B82-82C` spells the same range.
    let st = mpnn::ligand::parse::read_ligand_structure(&pdb, &Default::default()).unwrap();
    assert_eq!(ligand::resolve_ids(&st, "--fixed", "B82-82C").unwrap(), ["B82", "B82A", "B82B", "B82C"]);
    // The command line equals the drop-in with the same residues.
    let out = tempfile::tempdir().unwrap();
    ok(&run(&s(&[
        "design",
        &p(&pdb),
        "--weights",
        &p(&w),
        "--chains",
        "B",
        "--redesign",
        "B52A B82-B82C B100A-B100B",
        "--out",
        &p(out.path()),
        "--seed",
        "7",
        "--num_seq_per_target",
        "2",
        "--sampling_temp",
        "0.3",
    ])));
    let drop = tempfile::tempdir().unwrap();
    ok(&run(&s(&[
        "ligandmpnn",
        "run",
        "--checkpoint_ligand_mpnn",
        &p(&w),
        "--model_type",
        "ligand_mpnn",
        "--pdb_path",
        &p(&pdb),
        "--chains_to_design",
        "B",
        "--redesigned_residues",
        "B52A B82 B82A B82B B82C B100A B100B",
        "--out_folder",
        &p(drop.path()),
        "--seed",
        "7",
        "--batch_size",
        "1",
        "--number_of_batches",
        "2",
        "--temperature",
        "0.3",
    ])));
    let native = fasta(&out.path().join("seqs/2GFB.fa"));
    let official = fasta(&drop.path().join("seqs/2GFB.fa"));
    // The drop-in writes every chain joined by ':'; the native FASTA the designed chain B.
    for k in 1..3 {
        let b = official[k].1.split(':').nth(1).unwrap_or(&official[k].1).to_string();
        assert_eq!(native[k].1, b, "design {k}");
        assert_ne!(native[k].1, native[0].1, "design {k} changed something");
    }
}

#[test]
fn warnings_and_notes_about_context_atoms() {
    let Some(dir) = ligand_dir() else { return };
    let st = |n: &str| p(&dir.join("structures").join(n));
    let out = tempfile::tempdir().unwrap();
    let o = p(out.path());
    // A model that ignores context atoms next to designed residues: warned, per structure.
    let r = run(&s(&[
        "design",
        &st("1BC8.pdb"),
        &st("5L33.pdb"),
        "--weights",
        &p(&dir.join("weights/protein_k48.pt")),
        "--model_type",
        "protein_mpnn",
        "--out",
        &o,
        "--seed",
        "1",
    ]));
    ok(&r);
    let e = stderr(&r);
    assert!(e.contains("warning: 1BC8.pdb: 406 context atoms"), "{e}");
    assert!(e.contains("the protein_mpnn model ignores them"), "{e}");
    assert!(!e.contains("5L33.pdb: "), "5L33 has no context atoms: {e}");
    // Not when only fixed chains are near them... chain C is the only protein chain of 1BC8, so
    // check the cutoff instead: at 0 Å nothing is near.
    let r = run(&s(&[
        "score",
        &st("1BC8.pdb"),
        "--weights",
        &p(&dir.join("weights/protein_k48.pt")),
        "--model_type",
        "protein_mpnn",
        "--ligand_mpnn_cutoff_for_score",
        "0",
        "--out",
        &o,
    ]));
    ok(&r);
    assert!(!stderr(&r).contains("warning"), "{}", stderr(&r));
    // ligand_mpnn with the context switched off: warned; with it on: not.
    let lig = p(&dir.join("weights/ligand_k32_a25.pt"));
    let r = run(&s(&[
        "probs",
        "--unconditional",
        &st("7v11.pdb"),
        "--weights",
        &lig,
        "--ligand_mpnn_use_atom_context",
        "0",
        "--out",
        &o,
    ]));
    ok(&r);
    assert!(stderr(&r).contains("ligand_mpnn with --ligand_mpnn_use_atom_context 0 ignores them"), "{}", stderr(&r));
    let r = run(&s(&["probs", "--unconditional", &st("7v11.pdb"), "--weights", &lig, "--out", &o]));
    ok(&r);
    assert!(!stderr(&r).contains("warning"), "{}", stderr(&r));
    // ProteinMPNN checkpoints (full and CA-only) stay on the native path.
    let parity = dir.parent().unwrap();
    for (w, extra) in [("weights/full_k48.pt", None), ("weights/ca_k48.pt", Some("--ca_only"))] {
        let ck = mpnn::checkpoint::load(&parity.join(w)).unwrap();
        assert_eq!(ligand::detect_model_type(&ck).unwrap(), None, "{w}");
        let mut a =
            s(&["score", &p(&parity.join("structures/5L33.pdb")), "--weights", &p(&parity.join(w)), "--out", &o]);
        a.extend(extra.map(String::from));
        let text = ok(&run(&a));
        assert!(!text.contains("Model: "), "{w} ran as a LigandMPNN model:\n{text}");
    }
    // The native ProteinMPNN path warns too.
    let r = run(&s(&[
        "design",
        &st("7v11.pdb"),
        "--weights",
        &p(&dir.parent().unwrap().join("weights/full_k48.pt")),
        "--out",
        &p(&out.path().join("native")),
        "--seed",
        "1",
    ]));
    ok(&r);
    assert!(stderr(&r).contains("but this ProteinMPNN model ignores them"), "{}", stderr(&r));
    // Dropped context atoms, by kind; no usable context atoms at all.
    let r = run(&s(&[
        "design",
        &st("ligand_quirks.pdb"),
        &st("ligand_hydrogen_only.pdb"),
        "--weights",
        &lig,
        "--out",
        &p(&out.path().join("q")),
        "--seed",
        "1",
    ]));
    ok(&r);
    let e = stderr(&r);
    for want in [
        "note: ligand_quirks.pdb: hydrogen (H/D) atoms are not context atoms: LIG H1 A201",
        "note: ligand_quirks.pdb: Mo atoms are not context atoms",
        "note: ligand_quirks.pdb: atoms without an element",
        "note: ligand_hydrogen_only.pdb: none of its 3 non-protein, non-water atoms is usable context",
    ] {
        assert!(e.contains(want), "missing `{want}` in:\n{e}");
    }
    assert!(out.path().join("q/seqs/ligand_hydrogen_only.fa").exists(), "runs as without context atoms");
}

#[test]
fn resume_and_shards() {
    let Some(dir) = ligand_dir() else { return };
    let inputs = folder_of(&dir, &["1BC8.pdb", "5L33.pdb", "4oz7.pdb"]);
    let out = tempfile::tempdir().unwrap();
    let lig = p(&dir.join("weights/ligand_k32_a25.pt"));
    let base = |extra: &[&str]| {
        let mut a = s(&["design", &p(inputs.path()), "--weights", &lig, "--out", &p(out.path()), "--seed", "4"]);
        a.extend(s(extra));
        a
    };
    ok(&run(&base(&["--shard", "1/2", "--save_probs", "1", "--save_score", "1"])));
    let probs = Npz::read(out.path().join("probs/1BC8.npz")).unwrap();
    assert_eq!(probs.shape("probs").unwrap()[2], 21, "the native [n, L, 21] layout");
    // `mpnn status` reads the run: 2 of 3 structures complete.
    let st = run(&s(&["status", &p(out.path())]));
    assert_eq!(st.status.code(), Some(2), "{}{}", stdout(&st), stderr(&st));
    let first: Vec<bool> =
        ["1BC8", "4oz7", "5L33"].iter().map(|n| out.path().join(format!("seqs/{n}.fa")).exists()).collect();
    assert_eq!(first, [true, false, true], "shard 1/2 takes structures 1 and 3 of the name-sorted list");
    let before = std::fs::read(out.path().join("seqs/1BC8.fa")).unwrap();
    let table = out.path().join("table.csv");
    let text = ok(&run(&base(&["--save_probs", "1", "--save_score", "1", "--table", &p(&table)])));
    assert!(text.contains("Skipping 1BC8"), "{text}");
    let rows = std::fs::read_to_string(&table).unwrap();
    assert_eq!(rows.lines().count(), 4, "a header and one row per structure:\n{rows}");
    assert!(text.contains("Generating sequences for: 4oz7"), "{text}");
    let st = run(&s(&["status", &p(out.path())]));
    assert_eq!(st.status.code(), Some(0), "{}{}", stdout(&st), stderr(&st));
    assert_eq!(std::fs::read(out.path().join("seqs/1BC8.fa")).unwrap(), before);
    // Other parameters: refused, nothing written.
    let r = run(&base(&["--save_probs", "1", "--save_score", "1", "--sampling_temp", "0.2"]));
    assert!(!r.status.success());
    assert!(stderr(&r).contains("already designed there with other parameters"), "{}", stderr(&r));
}

#[test]
fn bad_inputs_are_clear_errors_before_any_output() {
    let Some(dir) = ligand_dir() else { return };
    let lig = p(&dir.join("weights/ligand_k32_a25.pt"));
    let gfb = p(&dir.join("structures/2GFB.pdb"));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (s(&["design", &gfb, "--weights", &lig, "--fixed", "B52Z"]), "residue B52Z is not in"),
        (s(&["design", &gfb, "--weights", &lig, "--fixed", "B52Z"]), "B52A"),
        (s(&["design", &gfb, "--weights", &lig, "--redesign", "B82C-B82"]), "write the range as B82-B82C"),
        (s(&["design", &gfb, "--weights", &lig, "--redesign", "Q5"]), "no chain"),
        (s(&["design", &gfb, "--weights", &lig, "--chains", "Q"]), "chain `Q` is not in the structure"),
        (
            s(&["design", &gfb, "--weights", &lig, "--fixed", "B52A", "--redesign", "B52A"]),
            "cannot be fixed and redesigned",
        ),
        (s(&["design", &gfb, "--weights", &lig, "--ca_only"]), "--ca_only is not supported"),
        (s(&["design", &gfb, "--weights", &lig, "--backbone_noise", "0.1"]), "--backbone_noise is not supported"),
        (s(&["score", &gfb, "--model_type", "ligand_mpnn"]), "give the LigandMPNN checkpoint with --weights"),
        (s(&["score", &gfb, "--weights", &lig, "--model_type", "protein_mpnn"]), "not a protein_mpnn checkpoint"),
        (
            s(&["score", &gfb, "--weights", &p(&dir.join("weights/membrane_global_k48.pt"))]),
            "--model_type per_residue_label_membrane_mpnn or --model_type global_label_membrane_mpnn",
        ),
        (s(&["score", &gfb, "--weights", &lig, "--model_type", "ligand"]), "unknown model type `ligand`"),
        // ProteinMPNN weights: specs are positions; an id with an insertion code says what to do.
        (
            s(&[
                "design",
                &gfb,
                "--weights",
                &p(&dir.parent().unwrap().join("weights/full_k48.pt")),
                "--fixed",
                "B52A",
            ]),
            "Residue ids such as B52A are read with LigandMPNN models (--model_type",
        ),
    ];
    for (args, want) in cases {
        let out = tempfile::tempdir().unwrap();
        let mut a = args.clone();
        a.extend(s(&["--out", &p(&out.path().join("o"))]));
        let r = run(&a);
        assert!(!r.status.success(), "{args:?} succeeded");
        assert!(stderr(&r).contains(want), "{args:?}: expected `{want}` in:\n{}", stderr(&r));
        assert!(
            !out.path().join("o/seqs").exists() && !out.path().join("o/score_only").exists(),
            "{args:?} wrote output"
        );
    }
}

/// `mpnn design` FASTA sequences, and the drop-in's (chains joined by `/`), for the same seed.
fn design_pair(dir: &Path, pdb: &str, native_flags: &[&str], dropin_flags: &[&str]) -> (Vec<String>, Vec<String>) {
    let w = p(&dir.join("weights/ligand_k32_a25.pt"));
    let pdb = p(&dir.join("structures").join(pdb));
    let name = Path::new(&pdb).file_stem().unwrap().to_string_lossy().into_owned();
    let out = tempfile::tempdir().unwrap();
    let mut a =
        s(&["design", &pdb, "--weights", &w, "--out", &p(out.path()), "--seed", "21", "--num_seq_per_target", "2"]);
    a.extend(s(native_flags));
    ok(&run(&a));
    let drop = tempfile::tempdir().unwrap();
    let mut a = s(&[
        "ligandmpnn",
        "run",
        "--model_type",
        "ligand_mpnn",
        "--checkpoint_ligand_mpnn",
        &w,
        "--pdb_path",
        &pdb,
        "--out_folder",
        &p(drop.path()),
        "--seed",
        "21",
        "--batch_size",
        "1",
        "--number_of_batches",
        "2",
    ]);
    a.extend(s(dropin_flags));
    ok(&run(&a));
    let native = fasta(&out.path().join(format!("seqs/{name}.fa"))).into_iter().skip(1).map(|r| r.1).collect();
    let official = fasta(&drop.path().join(format!("seqs/{name}.fa")))
        .into_iter()
        .skip(1)
        .map(|r| r.1.replace(':', "/"))
        .collect();
    (native, official)
}

#[test]
fn tied_homo_oligomer_bias_and_omit_equal_the_dropin() {
    let Some(dir) = ligand_dir() else { return };
    let (a, b) = design_pair(
        &dir,
        "4oz7.pdb",
        &["--tied", "A2,B2|A3-A4,B3-B4", "--fixed", "A5"],
        &["--symmetry_residues", "A2,B2|A3,B3|A4,B4", "--symmetry_weights", "1,1|1,1|1,1", "--fixed_residues", "A5"],
    );
    assert_eq!(a, b, "--tied");
    let (a, b) = design_pair(&dir, "4GYT.pdb", &["--homo-oligomer"], &["--homo_oligomer", "1"]);
    assert_eq!(a, b, "--homo-oligomer");
    let bias = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bias.path(), r#"{"C5": {"W": 50.0}, "C6": {"A": 2.0}}"#).unwrap();
    let (a, b) = design_pair(
        &dir,
        "1BC8.pdb",
        &["--bias", "A:-1,W:1.5", "--omit", "CM", "--bias-by-residue", &p(bias.path()), "--sampling_temp", "0.1"],
        &["--bias_AA", "A:-1,W:1.5", "--omit_AA", "CM", "--bias_AA_per_residue", &p(bias.path())],
    );
    assert_eq!(a, b, "--bias / --omit / --bias-by-residue");
    assert!(a.iter().all(|x| x.contains('W') && !x.contains('C') && !x.contains('M')), "biases applied: {a:?}");
    // Side-chain context (fixed residues' side chains are context atoms).
    let fixed = "C1 C2 C3 C4 C5 C10 C22 C30 C31 C50 C51 C52";
    let (a, b) = design_pair(
        &dir,
        "1BC8.pdb",
        &["--ligand_mpnn_use_side_chain_context", "1", "--fixed", fixed, "--sampling_temp", "0.3"],
        &["--ligand_mpnn_use_side_chain_context", "1", "--fixed_residues", fixed, "--temperature", "0.3"],
    );
    assert_eq!(a, b, "side-chain context");
    let (c, _) = design_pair(&dir, "1BC8.pdb", &["--fixed", fixed, "--sampling_temp", "0.3"], &[]);
    assert_ne!(a, c, "side-chain context changes the designs");
}
