//! Shared helpers for the parity tests: locating `../shared/parity` and reading cases.
#![allow(dead_code)]

use std::path::PathBuf;

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
pub fn cases(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json" && !p.to_string_lossy().ends_with(".pssm.json"))
                .then(|| p.file_stem().map(|s| s.to_string_lossy().to_string()))
                .flatten()
        })
        .collect();
    v.sort();
    v
}

pub struct Case {
    pub name: String,
    pub json: serde_json::Value,
    pub npz: Npz,
}

pub fn load_case(dir: &std::path::Path, name: &str) -> Case {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let npz = Npz::read(dir.join(format!("{name}.npz"))).unwrap();
    Case { name: name.to_string(), json, npz }
}

/// Max |a - b| over positions where `keep` is true.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
