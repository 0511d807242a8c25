//! Reading the scripts' inputs before any work: the structure list (`--pdb_path` or
//! `--pdb_path_multi`), the `*_multi` JSON dictionaries and per-residue JSON files, and the
//! inline flags (`--bias_AA`, `--omit_AA`, `--symmetry_residues` / `--symmetry_weights`, ...),
//! into one [`Request`] per structure. Every problem is reported here, naming the file or flag,
//! the item and the fix, so nothing is written for a run that cannot finish.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use mpnn::ligand::select::RunFlags;

use crate::cli::ligandmpnn::args::{InputArgs, RunArgs};

/// What to do with one structure: its path (as listed) and `run.py`'s residue-selection flags
/// as they apply to it (the `*_multi` entry for this structure where one was given), resolved
/// against the structure by `mpnn::ligand::select::selections`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub pdb: String,
    pub flags: RunFlags,
}

/// Reads a JSON file, naming it in every error.
fn read_json(flag: &str, path: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("--{flag} {path}: cannot read the file ({e}); give the path of an existing JSON file"))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow!("--{flag} {path}: not valid JSON ({e}); fix the file (see `mpnn ligandmpnn run --help` for its layout)")
    })
}

/// The structure paths: `--pdb_path`, or the keys (or items) of `--pdb_path_multi`.
pub fn structure_paths(input: &InputArgs) -> Result<Vec<String>> {
    if !input.pdb_path_multi.is_empty() {
        let v = read_json("pdb_path_multi", &input.pdb_path_multi)?;
        let paths: Vec<String> = match v {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Value::String(s) => Ok(s),
                    other => bail!(
                        "--pdb_path_multi {}: item {i} is {other}, not a path; list PDB paths as strings \
                         ({{\"/path/to/pdb\": \"\"}} or [\"/path/to/pdb\"])",
                        input.pdb_path_multi
                    ),
                })
                .collect::<Result<_>>()?,
            other => bail!(
                "--pdb_path_multi {}: holds {}, not a dictionary of PDB paths; write {{\"/path/to/pdb\": \"\", ...}}",
                input.pdb_path_multi,
                kind(&other)
            ),
        };
        if paths.is_empty() {
            bail!("--pdb_path_multi {}: lists no PDB paths; add at least one", input.pdb_path_multi);
        }
        return Ok(paths);
    }
    if input.pdb_path.is_empty() {
        bail!("no input structure: give --pdb_path FILE or --pdb_path_multi FILE.json");
    }
    Ok(vec![input.pdb_path.clone()])
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dictionary",
    }
}

/// Every listed structure must exist and be a file.
pub fn check_structures_exist(paths: &[String], input: &InputArgs) -> Result<()> {
    for p in paths {
        let meta = std::fs::metadata(p);
        if !meta.as_ref().map(|m| m.is_file()).unwrap_or(false) {
            let from = if input.pdb_path_multi.is_empty() {
                "--pdb_path".to_string()
            } else {
                format!("--pdb_path_multi {}", input.pdb_path_multi)
            };
            bail!("{from}: structure {p} does not exist or is not a file; correct the path");
        }
    }
    Ok(())
}

/// A `{pdb: value}` dictionary of a `*_multi` flag; every structure must have an entry.
fn multi_dict(flag: &str, path: &str, pdbs: &[String]) -> Result<HashMap<String, Value>> {
    let v = read_json(flag, path)?;
    let Value::Object(m) = v else {
        bail!(
            "--{flag} {path}: holds {}, not a dictionary keyed by PDB path; write {{\"/path/to/pdb\": ...}}",
            kind(&v)
        );
    };
    let mut out = HashMap::new();
    for pdb in pdbs {
        match m.get(pdb) {
            Some(x) => {
                out.insert(pdb.clone(), x.clone());
            }
            None => bail!(
                "--{flag} {path}: no entry for {pdb}; add \"{pdb}\": ... (keys must be the PDB paths exactly as \
                 given to --pdb_path / --pdb_path_multi)"
            ),
        }
    }
    Ok(out)
}

/// Whitespace-separated residue names from a JSON string value.
fn names_of(flag: &str, path: &str, pdb: &str, v: &Value) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(s.split_whitespace().map(String::from).collect()),
        Value::Array(items) => items
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                other => {
                    bail!("--{flag} {path}: entry {pdb} holds {}, not a residue name; write \"A12 A13\"", kind(other))
                }
            })
            .collect(),
        other => bail!(
            "--{flag} {path}: entry {pdb} is {}, not a string of residue names; write \"A12 A13 B2\"",
            kind(other)
        ),
    }
}

fn split_names(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// The per-structure fixed / redesigned lists, from the flags or their `*_multi` files.
#[allow(clippy::type_complexity)]
fn residue_lists(
    input: &InputArgs,
    pdbs: &[String],
) -> Result<(HashMap<String, Vec<String>>, HashMap<String, Vec<String>>)> {
    let mut fixed = HashMap::new();
    let mut redesigned = HashMap::new();
    if !input.fixed_residues_multi.is_empty() {
        let d = multi_dict("fixed_residues_multi", &input.fixed_residues_multi, pdbs)?;
        for (pdb, v) in d {
            let names = names_of("fixed_residues_multi", &input.fixed_residues_multi, &pdb, &v)?;
            fixed.insert(pdb, names);
        }
    } else {
        for pdb in pdbs {
            fixed.insert(pdb.clone(), split_names(&input.fixed_residues));
        }
    }
    if !input.redesigned_residues_multi.is_empty() {
        let d = multi_dict("redesigned_residues_multi", &input.redesigned_residues_multi, pdbs)?;
        for (pdb, v) in d {
            let names = names_of("redesigned_residues_multi", &input.redesigned_residues_multi, &pdb, &v)?;
            redesigned.insert(pdb, names);
        }
    } else {
        for pdb in pdbs {
            redesigned.insert(pdb.clone(), split_names(&input.redesigned_residues));
        }
    }
    Ok((fixed, redesigned))
}

fn common_request(
    input: &InputArgs,
    pdb: &str,
    fixed: &HashMap<String, Vec<String>>,
    redesigned: &HashMap<String, Vec<String>>,
) -> Request {
    Request {
        pdb: pdb.to_string(),
        flags: RunFlags {
            fixed_residues: fixed.get(pdb).map(|v| v.join(" ")).unwrap_or_default(),
            redesigned_residues: redesigned.get(pdb).map(|v| v.join(" ")).unwrap_or_default(),
            symmetry_residues: input.symmetry_residues.clone(),
            homo_oligomer: input.homo_oligomer.on(),
            transmembrane_buried: input.transmembrane_buried.clone(),
            transmembrane_interface: input.transmembrane_interface.clone(),
            global_transmembrane_label: input.global_transmembrane_label as i32,
            ..RunFlags::default()
        },
    }
}

/// A per-residue dictionary flag: the single file for every structure, or the `_multi` file's
/// entry for each.
fn per_residue(
    flag: &str,
    file: &str,
    multi_flag: &str,
    multi_file: &str,
    pdbs: &[String],
) -> Result<HashMap<String, (String, Value)>> {
    let mut out = HashMap::new();
    if !multi_file.is_empty() {
        let d = multi_dict(multi_flag, multi_file, pdbs)?;
        for (pdb, v) in d {
            if !v.is_object() {
                bail!(
                    "--{multi_flag} {multi_file}: the entry for {pdb} is {}, not a dictionary of residues; write                      \"{pdb}\": {{\"A12\": ...}}",
                    kind(&v)
                );
            }
            out.insert(pdb.clone(), (format!("--{multi_flag} {multi_file} (entry {pdb})"), v));
        }
    } else if !file.is_empty() {
        let v = read_json(flag, file)?;
        if !v.is_object() {
            bail!("--{flag} {file}: holds {}, not a dictionary of residues; write {{\"A12\": ...}}", kind(&v));
        }
        for pdb in pdbs {
            out.insert(pdb.clone(), (format!("--{flag} {file}"), v.clone()));
        }
    }
    Ok(out)
}

/// One [`Request`] per structure of a `run.py` command (every file read and checked).
pub fn run_requests(a: &RunArgs) -> Result<Vec<Request>> {
    let pdbs = structure_paths(&a.input)?;
    let (fixed, redesigned) = residue_lists(&a.input, &pdbs)?;
    let mut bias = per_residue(
        "bias_AA_per_residue",
        &a.bias_aa_per_residue,
        "bias_AA_per_residue_multi",
        &a.bias_aa_per_residue_multi,
        &pdbs,
    )?;
    let mut omit = per_residue(
        "omit_AA_per_residue",
        &a.omit_aa_per_residue,
        "omit_AA_per_residue_multi",
        &a.omit_aa_per_residue_multi,
        &pdbs,
    )?;
    Ok(pdbs
        .iter()
        .map(|pdb| {
            let mut r = common_request(&a.input, pdb, &fixed, &redesigned);
            r.flags.chains_to_design = a.chains_to_design.clone();
            r.flags.bias_aa = a.bias_aa.clone();
            r.flags.omit_aa = a.omit_aa.clone();
            r.flags.symmetry_weights = a.symmetry_weights.clone();
            r.flags.bias_aa_per_residue = bias.remove(pdb);
            r.flags.omit_aa_per_residue = omit.remove(pdb);
            r
        })
        .collect())
}

/// One [`Request`] per structure of a `score.py` command. `score.py` has no symmetry weights
/// (scoring only regroups the decoding order): every member weighs 1.
pub fn score_requests(a: &crate::cli::ligandmpnn::args::ScoreArgs) -> Result<Vec<Request>> {
    let pdbs = structure_paths(&a.input)?;
    let (fixed, redesigned) = residue_lists(&a.input, &pdbs)?;
    let weights = unit_weights(&a.input.symmetry_residues);
    Ok(pdbs
        .iter()
        .map(|pdb| {
            let mut r = common_request(&a.input, pdb, &fixed, &redesigned);
            r.flags.chains_to_design = a.chains_to_design.clone().unwrap_or_default();
            r.flags.symmetry_weights = weights.clone();
            r
        })
        .collect())
}

/// `1.0` for every member of `--symmetry_residues` groups ('A1,B1|A2,B2' → '1.0,1.0|1.0,1.0').
pub fn unit_weights(groups: &str) -> String {
    if groups.trim().is_empty() {
        return String::new();
    }
    groups.split('|').map(|g| g.split(',').map(|_| "1.0").collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join("|")
}

/// `--parse_these_chains_only`: `run.py` splits on commas ('A,B'); `score.py` passes the string
/// on and ProDy sees one chain per character ('AB'). Both spellings are read by both commands:
/// commas split, and a comma-free string is one chain per character (where `run.py` would look
/// for a chain named 'AB' and fail).
pub fn parse_chains_only(s: &str) -> Vec<String> {
    if s.contains(',') {
        s.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()
    } else {
        s.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_and_weights() {
        assert_eq!(parse_chains_only("A,B"), vec!["A", "B"]);
        assert_eq!(parse_chains_only("AB"), vec!["A", "B"]);
        assert!(parse_chains_only("").is_empty());
        assert_eq!(unit_weights("A1,B1|A2,B2,C2"), "1.0,1.0|1.0,1.0,1.0");
        assert_eq!(unit_weights(""), "");
    }
}
