//! Shared helpers for the parity tests: locating `../shared/parity`, reading cases, building
//! the engine's inputs from a case the way the command line does.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mpnn::checkpoint;
use mpnn::featurize::{featurize, Features};
use mpnn::inputs::Dictionaries;
use mpnn::model::ProteinMpnn;
use mpnn::npz::Npz;

/// The parity fixture directory (`MPNN_PARITY_DIR`, else `../shared/parity`). When it is missing
/// the test fails under CI (`CI=true`) and is skipped (returns `None`) elsewhere.
pub fn parity_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MPNN_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/parity"));
    if dir.join("README.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("parity fixtures not found at {} (required under CI)", dir.display());
    }
    eprintln!("skipped: parity fixtures not found at {}", dir.display());
    None
}

/// Every case name (`CASE.json` files) in the fixture directory.
pub fn cases(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_string_lossy().to_string();
            name.strip_suffix(".json").filter(|n| !n.contains('.')).map(String::from)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no parity cases in {}", dir.display());
    v
}

pub struct Case {
    pub dir: PathBuf,
    pub name: String,
    pub json: serde_json::Value,
    pub npz: Npz,
}

pub fn load_case(dir: &Path, name: &str) -> Case {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let npz = Npz::read(dir.join(format!("{name}.npz"))).unwrap();
    Case { dir: dir.to_path_buf(), name: name.to_string(), json, npz }
}

impl Case {
    pub fn ca_only(&self) -> bool {
        self.json["ca_only"].as_bool().unwrap()
    }
    pub fn model(&self) -> ProteinMpnn {
        let path = self.dir.join(self.json["checkpoint"].as_str().unwrap());
        let ckpt = checkpoint::load(&path).unwrap();
        let arch = ckpt.architecture().unwrap();
        ProteinMpnn::new(&ckpt, arch).unwrap()
    }
    /// The case's official dictionaries, as the command line would read them from files.
    pub fn dictionaries(&self) -> Dictionaries {
        let src = format!("{}.json", self.name);
        let dict = |key: &str| match &self.json[key] {
            serde_json::Value::Object(m) => Some((src.clone(), m.clone())),
            _ => None,
        };
        let mut d = Dictionaries {
            chain_id: dict("chain_id_jsonl"),
            fixed_positions: dict("fixed_positions_jsonl"),
            omit_aa: dict("omit_AA_jsonl"),
            bias_by_res: dict("bias_by_res_jsonl"),
            tied_positions: dict("tied_positions_jsonl"),
            ..Default::default()
        };
        if self.json["pssm_jsonl"].as_bool() == Some(true) {
            let path = self.dir.join(format!("{}.pssm.jsonl", self.name));
            d.pssm = Some((
                path.display().to_string(),
                mpnn::inputs::read_dict_file("--pssm_jsonl", path.to_str().unwrap()).unwrap(),
            ));
        }
        if let serde_json::Value::Object(m) = &self.json["bias_AA_jsonl"] {
            d.bias_aa = mpnn::inputs::bias_vector("bias_AA_jsonl", m).unwrap();
        }
        d
    }
    /// Parses the case's structure file (`ext` = "pdb" or "cif") and featurizes it.
    pub fn features(&self, ext: &str) -> Option<Features> {
        let pdb = self.json["pdb"].as_str().unwrap();
        let file = self.dir.join("structures").join(pdb.replace(".pdb", &format!(".{ext}")));
        if !file.exists() {
            return None;
        }
        let protein = mpnn::structure::read_structure(&file).unwrap();
        let d = self.dictionaries();
        let sel = d.chain_selection(&protein.name).unwrap().unwrap();
        let cons = d.constraints(&protein.name).unwrap();
        Some(featurize(&protein, &sel, &cons, self.ca_only()).unwrap())
    }
}

/// Max |a - b|.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Runs the `mpnn` binary offline (no weights from the environment or the network) with extra
/// environment variables; a panic is always a test failure.
pub fn mpnn_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpnn"));
    cmd.args(args).env_remove("MPNN_WEIGHTS").env("MPNN_OFFLINE", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run mpnn");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{args:?} panicked");
    out
}

/// [`mpnn_env`] without extra environment variables.
pub fn mpnn(args: &[&str]) -> Output {
    mpnn_env(args, &[])
}

/// Asserts that a run succeeded and returns its stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "mpnn failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Every file under `dir`, relative path → bytes (empty when `dir` does not exist).
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
