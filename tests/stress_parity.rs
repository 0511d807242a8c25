//! Parity at scale: the `stress/` fixtures (20 public structures, clean and with 0.2 Å noise)
//! against the official unconditional log-probabilities of the three fixture checkpoints, and the
//! CA-only orientation features against the official ones, edge by edge.
//!
//! These structures hit the ill-conditioned corners of the official computation: CA-only frames
//! whose relative rotation is a half turn (quaternion `(0,0,0,0)` versus `(±u, ε)` on the last
//! bit), top-k ties between masked residues and the farthest valid one, and the CA-only model at
//! L = 6 (torch's `cross` without `dim` takes the residue axis).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use mpnn::checkpoint;
use mpnn::featurize::{featurize, Batch, ChainSelection, Constraints, Features};
use mpnn::model::features::{ca_coords, coarse_frames, orientation};
use mpnn::model::graph::Graph;
use mpnn::npz::Npz;
use mpnn::pipeline::Engine;

const MODELS: [&str; 3] = ["full_k48", "ca_k48", "small_h64_l2_k16"];

fn stress_dir() -> Option<PathBuf> {
    let dir = parity_dir()?.join("stress");
    assert!(dir.join("manifest.json").exists(), "{} has no manifest.json", dir.display());
    Some(dir)
}

fn engine(dir: &Path, model: &str) -> Engine {
    let ckpt = checkpoint::load(&dir.join("../weights").join(format!("{model}.pt"))).unwrap();
    let arch = ckpt.architecture().unwrap();
    Engine::new(&ckpt, arch).unwrap()
}

/// Parses and featurizes a structure the way the official run script does with no chain
/// options: every chain designed.
fn features(path: &Path, ca_only: bool) -> Result<Features, String> {
    let protein = mpnn::structure::read_structure(path).map_err(|e| e.to_string())?;
    let sel = ChainSelection::all(&protein);
    featurize(&protein, &sel, &Constraints::default(), ca_only).map_err(|e| e.to_string())
}

/// Every structure × checkpoint × clean/noisy within 1e-4 of the official log-probabilities at
/// every usable position, with the official mask and sequence; the runs the official code fails
/// on fail here too.
#[test]
fn stress_log_probs_match_official() {
    let Some(dir) = stress_dir() else { return };
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let engines: Vec<Engine> = MODELS.iter().map(|m| engine(&dir, m)).collect();
    let mut failures = Vec::new();
    let mut runs = 0;
    for (name, per_model) in manifest.as_object().unwrap() {
        let npz = Npz::read(dir.join(format!("{name}.npz"))).unwrap();
        let path = dir.join(format!("{name}.pdb"));
        for (model, engine) in MODELS.iter().zip(&engines) {
            runs += 1;
            let entry = &per_model[*model];
            let f = features(&path, *model == "ca_k48");
            if entry.get("error").is_some() {
                if f.is_ok() {
                    failures.push(format!("{name} × {model}: the official code fails ({}), mpnn ran", entry["error"]));
                }
                continue;
            }
            let f = match f {
                Ok(f) => f,
                Err(e) => {
                    failures.push(format!("{name} × {model}: {e}"));
                    continue;
                }
            };
            let want_mask = npz.f32(&format!("{model}_mask")).unwrap();
            let want_s = npz.i64(&format!("{model}_S")).unwrap();
            if f.mask != want_mask || f.s.iter().map(|&v| v as i64).collect::<Vec<_>>() != want_s {
                failures.push(format!("{name} × {model}: mask or sequence differ from the official parse"));
                continue;
            }
            let got = engine.unconditional(&f);
            let want = npz.f32(&format!("{model}_log_p")).unwrap();
            assert_eq!(got.len(), want.len(), "{name} × {model}: shape");
            let mut worst = 0f32;
            let mut off = 0;
            for i in (0..f.len()).filter(|&i| f.mask[i] == 1.0) {
                let d = max_abs_diff(&got[i * 21..(i + 1) * 21], &want[i * 21..(i + 1) * 21]);
                if d > 1e-4 {
                    off += 1;
                }
                worst = worst.max(d);
            }
            if worst > 1e-4 {
                failures.push(format!("{name} × {model}: {off} positions off, by up to {worst:.3e}"));
            }
        }
    }
    assert_eq!(runs, manifest.as_object().unwrap().len() * MODELS.len());
    assert!(runs >= 120, "expected 40 files × 3 checkpoints, ran {runs}");
    assert!(
        failures.is_empty(),
        "{} of {runs} runs differ from the official code:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The CA-only model's orientation features (direction in the node's frame, quaternion of the
/// relative rotation) of every edge of every stress structure, clean and noisy, against the
/// official code's (`tests/data/ca_orientations.npz`, written by
/// `scripts/official_ca_orientations.py`), and the neighbour lists exactly.
#[test]
fn ca_orientations_match_official_edge_by_edge() {
    let Some(dir) = stress_dir() else { return };
    let reference = Npz::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ca_orientations.npz")).unwrap();
    let mut names: Vec<String> =
        reference.arrays.keys().filter_map(|n| n.strip_suffix("/O").map(String::from)).collect::<Vec<_>>();
    names.sort();
    assert_eq!(names.len(), 40, "reference structures");
    let (mut edges, mut quaternion_flips, mut worst_du, mut worst_q) = (0usize, 0usize, 0f32, 0f32);
    let mut rows_off = 0;
    let mut report = Vec::new();
    for name in &names {
        let f = features(&dir.join(format!("{name}.pdb")), true).unwrap();
        let batch = Batch::new(&[&f], None);
        let ca = ca_coords(&batch);
        let l = batch.l;
        let graph = Graph::build(&ca, &batch.mask, l, &batch.lengths, 48);
        let k = graph.k;
        let want_idx = reference.i64(&format!("{name}/E_idx")).unwrap();
        let want_o = reference.f32(&format!("{name}/O")).unwrap();
        assert_eq!(reference.f32(&format!("{name}/mask")).unwrap(), f.mask, "{name}: mask");
        assert_eq!(want_idx.len(), l * k, "{name}: shape");
        let frames = coarse_frames(&ca, l, &batch.lengths);
        let p = |i: usize| [ca[i * 3], ca[i * 3 + 1], ca[i * 3 + 2]];
        let (mut flips, mut rows) = (0, 0);
        for i in (0..l).filter(|&i| f.mask[i] == 1.0) {
            let got_idx: Vec<i64> = graph.e_idx[i * k..(i + 1) * k].iter().map(|&j| j as i64).collect();
            if got_idx != want_idx[i * k..(i + 1) * k] {
                rows += 1;
            }
            for n in 0..k {
                // the official neighbour, so that a graph difference does not hide a feature one
                let j = want_idx[i * k + n] as usize;
                let (du, q) = orientation(&frames[i], &frames[j], p(i), p(j));
                let w = &want_o[(i * k + n) * 7..][..7];
                let ddu = max_abs_diff(&du, &w[..3]);
                let dq = max_abs_diff(&q, &w[3..]);
                worst_du = worst_du.max(ddu);
                worst_q = worst_q.max(dq);
                if dq > 1e-3 {
                    flips += 1;
                }
                edges += 1;
            }
        }
        if flips > 0 || rows > 0 {
            report.push(format!("{name}: {flips} quaternions differ, {rows} neighbour lists differ"));
        }
        quaternion_flips += flips;
        rows_off += rows;
    }
    eprintln!("{edges} edges: max |Δ direction| {worst_du:.2e}, max |Δ quaternion| {worst_q:.2e}");
    assert!(quaternion_flips == 0 && rows_off == 0, "{}", report.join("\n"));
    assert!(worst_du < 1e-5 && worst_q < 1e-5, "direction {worst_du:e}, quaternion {worst_q:e}");
}

/// A structure with no usable residue for the checkpoint (backbone atoms missing) stops every
/// job with a message saying why, and leaves no output file.
#[test]
fn no_usable_residue_fails_cleanly() {
    let Some(dir) = stress_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pdb = std::fs::read_to_string(dir.join("pm_5L33.pdb")).unwrap();
    // Cα atoms only: nothing usable for the full-backbone model.
    let ca_only: String =
        pdb.lines().filter(|l| l.starts_with("ATOM") && &l[12..16] == " CA ").map(|l| format!("{l}\n")).collect();
    // N atoms only: nothing usable for the CA-only model either.
    let n_only: String =
        pdb.lines().filter(|l| l.starts_with("ATOM") && &l[12..16] == " N  ").map(|l| format!("{l}\n")).collect();
    let weights = dir.join("../weights");
    for (file, text, model, flags) in
        [("ca_atoms.pdb", &ca_only, "full_k48", vec![]), ("n_atoms.pdb", &n_only, "ca_k48", vec!["--ca_only"])]
    {
        let path = tmp.path().join(file);
        std::fs::write(&path, text).unwrap();
        let w = weights.join(format!("{model}.pt"));
        let out = tmp.path().join(format!("out_{model}"));
        let (p, w, o) = (path.to_str().unwrap(), w.to_str().unwrap(), out.to_str().unwrap());
        let runs: Vec<Vec<&str>> = vec![
            vec!["probs", "--unconditional", p, "--weights", w, "--out", o],
            vec!["score", p, "--weights", w, "--out", o],
            vec!["design", p, "--weights", w, "--out", o, "--num_seq_per_target", "2"],
            vec!["--pdb_path", p, "--out_folder", o, "--unconditional_probs_only", "1", "--weights", w],
        ];
        for mut args in runs {
            args.extend(flags.iter().copied());
            let r = mpnn(&args);
            let err = String::from_utf8_lossy(&r.stderr);
            assert!(!r.status.success(), "{args:?} succeeded");
            assert!(err.contains("no usable residue"), "{args:?}: {err}");
            let files: Vec<String> = files_under(&out).into_keys().collect();
            assert!(files.is_empty(), "{args:?} left {files:?}");
        }
    }
}
