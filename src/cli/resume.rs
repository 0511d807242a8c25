//! Resuming `mpnn design` only where the same parameters made the outputs.
//!
//! Next to every structure it designs, `mpnn design` records the parameters that decide the
//! designs in `OUT/.mpnn-params/NAME.json`, written before the structure's outputs (FASTA last)
//! after its previous outputs are removed. A complete `seqs/NAME.fa` counts as done only when its
//! record holds this run's parameters; when it holds others (or none), the run stops before
//! writing anything and names what differs. Records are per structure, so shards of one run
//! (`--shard`) never write the same file.
//!
//! Recorded: everything the designs depend on (the structure's coordinates and sequence, its
//! designed chains and positions, ties, per-residue biases / omissions / PSSM as featurized, the
//! seed as given, temperatures, sequences per temperature, noise, global bias and omissions, PSSM
//! options, the weights' content hash, k, precision, screening, and which files are saved), and
//! nothing they do not depend on (`--batch_size` except through the sequences per temperature,
//! `--threads`, `--shard`, `--max_length`, `--table`, file paths of weights).
//!
//! Every `mpnn design` also writes the run file `OUT/.mpnn-run.json` ([`RunFile`]) when it
//! starts: each structure of the run, its shard and the hash of the parameters its record must
//! hold, so `mpnn status OUT` can tell complete from missing without the inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mpnn::featurize::Features;
use mpnn::output::python_float;
use mpnn::structure;
use sha1::{Digest, Sha1};

/// Parameter → value (hashed values start with `sha1:`).
pub type Params = BTreeMap<String, String>;

/// The hidden folder holding the per-structure records.
pub const DIR: &str = ".mpnn-params";

/// The record of structure `name` in output folder `base`.
pub fn record_path(base: &Path, name: &str) -> PathBuf {
    base.join(DIR).join(format!("{name}.json"))
}

fn hex(h: Sha1) -> String {
    let d = h.finalize();
    let mut s = String::from("sha1:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn hash_f32s(h: &mut Sha1, v: &[f32]) {
    h.update((v.len() as u64).to_le_bytes());
    for x in v {
        h.update(x.to_bits().to_le_bytes());
    }
}

/// The content hash of a file (the weights).
pub fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut h = Sha1::new();
    h.update(&bytes);
    Ok(hex(h))
}

/// The parameters of one structure's designs that come from the structure and its constraints.
pub fn structure_params(f: &Features) -> Params {
    let mut p = Params::new();
    let mut h = Sha1::new();
    h.update(f.name.as_bytes());
    h.update([0]);
    hash_f32s(&mut h, &f.x);
    h.update(&f.s);
    hash_f32s(&mut h, &f.mask);
    h.update(format!("{:?}{:?}{:?}", f.residue_idx, f.chain_encoding, f.chain_order).as_bytes());
    p.insert("structure (the input's coordinates and sequence)".into(), hex(h));
    p.insert(
        "designed chains (--chains, --chain_id_jsonl)".into(),
        format!(
            "designed {}; fixed {}",
            f.masked_chains.join(","),
            if f.visible_chains.is_empty() { "none".into() } else { f.visible_chains.join(",") }
        ),
    );
    let mut h = Sha1::new();
    hash_f32s(&mut h, &f.chain_m);
    hash_f32s(&mut h, &f.chain_m_pos);
    p.insert("designed positions (--fixed, --redesign, --fixed_positions_jsonl)".into(), hex(h));
    let mut h = Sha1::new();
    h.update(format!("{:?}", f.tied_positions).as_bytes());
    hash_f32s(&mut h, &f.tied_beta);
    p.insert("tied positions (--tied, --homo-oligomer, --tied_positions_jsonl)".into(), hex(h));
    let mut h = Sha1::new();
    hash_f32s(&mut h, &f.bias_by_res);
    p.insert("per-residue biases (--bias-by-residue, --bias_by_res_jsonl)".into(), hex(h));
    let mut h = Sha1::new();
    hash_f32s(&mut h, &f.omit_aa_mask);
    p.insert("per-residue omissions (--omit-by-residue, --omit_AA_jsonl)".into(), hex(h));
    let mut h = Sha1::new();
    hash_f32s(&mut h, &f.pssm_coef);
    hash_f32s(&mut h, &f.pssm_bias);
    hash_f32s(&mut h, &f.pssm_log_odds);
    p.insert("PSSM (--pssm_jsonl)".into(), hex(h));
    p
}

/// A float as the record writes it.
pub fn num(x: f64) -> String {
    python_float(x)
}

/// A float32 flag value as given (`0.1`, not its float64 expansion).
pub fn num32(x: f32) -> String {
    python_float(format!("{x}").parse().unwrap_or(x as f64))
}

/// The record of a structure: its parameters, plus (not compared) the seed actually used, the
/// weights file and the program version.
pub fn write_record(base: &Path, name: &str, params: &Params, seed: u64, weights: &Path) -> Result<()> {
    let path = record_path(base, name);
    let v = serde_json::json!({
        "params": params,
        "seed_used": seed,
        "weights_file": weights.display().to_string(),
        "mpnn": env!("CARGO_PKG_VERSION"),
    });
    let text = serde_json::to_string_pretty(&v)? + "\n";
    structure::write_atomic(&path, text.as_bytes()).with_context(|| format!("{}: cannot write", path.display()))
}

/// The recorded parameters of structure `name`, if there is a readable record.
pub fn read_record(base: &Path, name: &str) -> Option<Params> {
    let text = std::fs::read_to_string(record_path(base, name)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let m = v.get("params")?.as_object()?;
    m.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
}

/// The run file: every structure of the last run into this folder (name-sorted, the shard
/// split's order), its shard and the parameters its record must hold, written by every
/// `mpnn design` (every shard writes the same bytes, since each one checks every structure) when
/// it starts. `mpnn status` reads it; nothing else does.
pub const RUN_FILE: &str = ".mpnn-run.json";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunFile {
    /// Shards the run is split into (1 without --shard).
    pub shards: usize,
    /// Design records each complete `seqs/NAME.fa` holds (after the native one).
    pub records: usize,
    pub structures: Vec<RunEntry>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunEntry {
    pub name: String,
    /// 1-based.
    pub shard: usize,
    /// [`params_hash`] of the structure's parameters.
    pub params: String,
}

/// One hash of a structure's parameters (what its record must hold).
pub fn params_hash(p: &Params) -> String {
    let mut h = Sha1::new();
    h.update(serde_json::to_string(p).unwrap_or_default().as_bytes());
    hex(h)
}

pub fn run_file_path(base: &Path) -> PathBuf {
    base.join(RUN_FILE)
}

pub fn write_run_file(base: &Path, run: &RunFile) -> Result<()> {
    let path = run_file_path(base);
    let text = serde_json::to_string_pretty(run)? + "\n";
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    structure::write_atomic(&path, text.as_bytes()).with_context(|| format!("{}: cannot write", path.display()))
}

pub fn read_run_file(base: &Path) -> Result<RunFile> {
    let path = run_file_path(base);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read it; it is written when an `mpnn design` task starts writing into {} (has none started, \
             or is this not a design output folder?)",
            path.display(),
            base.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a run file of this mpnn", path.display()))
}

/// Removes what an interrupted write left of `file` (`.FILE.tmp-PID`, see
/// [`structure::write_atomic`]) in `dir`.
pub fn remove_temporaries(dir: &Path, file: &str) -> Result<()> {
    let prefix = format!(".{file}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.strip_prefix(&prefix).is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())) {
            remove_if_exists(&e.path())?;
        }
    }
    Ok(())
}

pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("{}: cannot remove the previous output", path.display()))
        }
        _ => Ok(()),
    }
}

/// What differs between a recorded and this run's parameters, one `name: old → new` each
/// (hashed values: `name changed`).
pub fn diff(old: &Params, new: &Params) -> Vec<String> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (a, b) = (old.get(k), new.get(k));
        if a == b {
            continue;
        }
        let hashed = |v: Option<&String>| v.is_some_and(|v| v.starts_with("sha1:"));
        out.push(if hashed(a) || hashed(b) {
            format!("{k} changed")
        } else {
            format!(
                "{k} {} → {}",
                a.map(String::as_str).unwrap_or("(not recorded)"),
                b.map(String::as_str).unwrap_or("(not recorded)")
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_changed_parameters_only() {
        let mut a = Params::new();
        a.insert("--seed".into(), "9".into());
        a.insert("weights".into(), "sha1:aa".into());
        a.insert("--k".into(), "48".into());
        let mut b = a.clone();
        assert!(diff(&a, &b).is_empty());
        b.insert("--seed".into(), "10".into());
        b.insert("weights".into(), "sha1:bb".into());
        b.insert("--new".into(), "1".into());
        assert_eq!(diff(&a, &b), ["--new (not recorded) → 1", "--seed 9 → 10", "weights changed"]);
    }
}
