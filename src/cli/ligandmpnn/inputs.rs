//! Reading the scripts' inputs before any work: the structure list (`--pdb_path` or
//! `--pdb_path_multi`), the `*_multi` JSON dictionaries and per-residue JSON files, and the
//! inline flags (`--bias_AA`, `--omit_AA`, `--symmetry_residues` / `--symmetry_weights`, ...),
//! into one [`Request`] per structure. Every problem is reported here, naming the file or flag,
//! the item and the fix, so nothing is written for a run that cannot finish.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::cli::ligandmpnn::args::{InputArgs, RunArgs};
use mpnn::alphabet::{index_of, ALPHABET};

/// What to do with one structure: its path (as listed) and the residue selection flags as they
/// apply to it. Residue names are `run.py`'s (chain + number + insertion code, `A12`, `B52A`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub pdb: String,
    /// Chains to design (`None`: every chain).
    pub chains_to_design: Option<Vec<String>>,
    pub fixed: Vec<String>,
    pub redesigned: Vec<String>,
    /// `--bias_AA`, per letter of `ACDEFGHIKLMNPQRSTVWYX`.
    pub bias_aa: [f32; 21],
    /// `--omit_AA`, per letter.
    pub omit_aa: [bool; 21],
    /// Per-residue bias: residue name → (letter index, bias), in file order.
    pub bias_per_residue: Vec<(String, Vec<(u8, f32)>)>,
    /// Per-residue omissions: residue name → letter indices.
    pub omit_per_residue: Vec<(String, Vec<u8>)>,
    /// `--symmetry_residues` groups (names).
    pub symmetry_residues: Vec<Vec<String>>,
    /// `--symmetry_weights`, group by group (None when not given).
    pub symmetry_weights: Option<Vec<Vec<f32>>>,
    pub homo_oligomer: bool,
    pub transmembrane_buried: Vec<String>,
    pub transmembrane_interface: Vec<String>,
}

/// Reads a JSON file, naming it in every error.
fn read_json(flag: &str, path: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow!("--{flag} {path}: cannot read the file ({e}); give the path of an existing JSON file")
    })?;
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
        bail!("--{flag} {path}: holds {}, not a dictionary keyed by PDB path; write {{\"/path/to/pdb\": ...}}", kind(&v));
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
                other => bail!("--{flag} {path}: entry {pdb} holds {}, not a residue name; write \"A12 A13\"", kind(other)),
            })
            .collect(),
        other => bail!("--{flag} {path}: entry {pdb} is {}, not a string of residue names; write \"A12 A13 B2\"", kind(other)),
    }
}

/// A per-residue bias dictionary `{"A12": {"G": -0.3}}` (letters outside the alphabet are
/// ignored, as in `run.py`).
fn bias_dict(flag: &str, path: &str, v: &Value) -> Result<Vec<(String, Vec<(u8, f32)>)>> {
    let Value::Object(m) = v else {
        bail!("--{flag} {path}: holds {}, not a dictionary; write {{\"A12\": {{\"G\": -0.3}}}}", kind(v));
    };
    let mut out = Vec::new();
    for (res, inner) in m {
        let Value::Object(letters) = inner else {
            bail!("--{flag} {path}: residue {res} maps to {}, not a dictionary; write \"{res}\": {{\"G\": -0.3}}", kind(inner));
        };
        let mut row = Vec::new();
        for (letter, x) in letters {
            let Some(b) = x.as_f64() else {
                bail!("--{flag} {path}: residue {res}, letter {letter}: {x} is not a number; give a number such as -0.3");
            };
            if let Some(i) = single_letter(letter) {
                row.push((i, b as f32));
            }
        }
        out.push((res.clone(), row));
    }
    Ok(out)
}

/// A per-residue omission dictionary `{"A12": "PG"}`.
fn omit_dict(flag: &str, path: &str, v: &Value) -> Result<Vec<(String, Vec<u8>)>> {
    let Value::Object(m) = v else {
        bail!("--{flag} {path}: holds {}, not a dictionary; write {{\"A12\": \"PG\"}}", kind(v));
    };
    let mut out = Vec::new();
    for (res, letters) in m {
        let Value::String(s) = letters else {
            bail!("--{flag} {path}: residue {res} maps to {}, not a string of letters; write \"{res}\": \"PG\"", kind(letters));
        };
        out.push((res.clone(), s.chars().filter_map(|c| single_letter(&c.to_string())).collect()));
    }
    Ok(out)
}

fn single_letter(s: &str) -> Option<u8> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => index_of(c),
        _ => None,
    }
}

/// `--bias_AA 'A:-1.024,P:2.34'`.
pub fn parse_bias_aa(s: &str) -> Result<[f32; 21]> {
    let mut bias = [0.0f32; 21];
    if s.is_empty() {
        return Ok(bias);
    }
    for item in s.split(',') {
        let Some((letter, value)) = item.split_once(':') else {
            bail!("--bias_AA: `{item}` is not LETTER:VALUE; write e.g. 'A:-1.024,P:2.34'");
        };
        let Some(i) = single_letter(letter) else {
            bail!("--bias_AA: `{letter}` is not one of the letters {ALPHABET}; write e.g. 'A:-1.024,P:2.34'");
        };
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| anyhow!("--bias_AA: `{value}` (for {letter}) is not a number; write e.g. 'A:-1.024'"))?;
        bias[i as usize] = v as f32;
    }
    Ok(bias)
}

/// `--omit_AA 'CM'`: letters of the alphabet present in the string (others ignored, as in
/// `run.py`).
pub fn parse_omit_aa(s: &str) -> [bool; 21] {
    let mut omit = [false; 21];
    for (i, c) in ALPHABET.chars().enumerate() {
        omit[i] = s.contains(c);
    }
    omit
}

/// `--symmetry_residues 'A12,A13|C2,C3'`.
pub fn parse_symmetry_residues(s: &str) -> Vec<Vec<String>> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split('|').map(|g| g.split(',').map(String::from).collect()).collect()
}

/// `--symmetry_weights '1.0,1.0|-1.0,2.0'`, checked against the residue groups.
pub fn parse_symmetry_weights(s: &str, groups: &[Vec<String>]) -> Result<Option<Vec<Vec<f32>>>> {
    if s.is_empty() {
        return Ok(None);
    }
    let weights: Vec<Vec<f32>> = s
        .split('|')
        .map(|g| {
            g.split(',')
                .map(|w| {
                    w.trim().parse::<f64>().map(|v| v as f32).map_err(|_| {
                        anyhow!("--symmetry_weights: `{w}` is not a number; write e.g. '1.0,1.0|-1.0,2.0'")
                    })
                })
                .collect::<Result<Vec<f32>>>()
        })
        .collect::<Result<_>>()?;
    if groups.is_empty() {
        bail!("--symmetry_weights is given without --symmetry_residues; give the residue groups it weights");
    }
    if weights.len() != groups.len() || weights.iter().zip(groups).any(|(w, g)| w.len() != g.len()) {
        let shape = |v: Vec<usize>| v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("|");
        bail!(
            "--symmetry_weights has groups of {} weights but --symmetry_residues has groups of {} residues; \
             give one weight per residue, group by group",
            shape(weights.iter().map(|w| w.len()).collect()),
            shape(groups.iter().map(|g| g.len()).collect())
        );
    }
    Ok(Some(weights))
}

fn split_names(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// The per-structure fixed / redesigned lists, from the flags or their `*_multi` files.
fn residue_lists(input: &InputArgs, pdbs: &[String]) -> Result<(HashMap<String, Vec<String>>, HashMap<String, Vec<String>>)> {
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

fn common_request(input: &InputArgs, pdb: &str, fixed: &HashMap<String, Vec<String>>, redesigned: &HashMap<String, Vec<String>>) -> Request {
    Request {
        pdb: pdb.to_string(),
        fixed: fixed.get(pdb).cloned().unwrap_or_default(),
        redesigned: redesigned.get(pdb).cloned().unwrap_or_default(),
        symmetry_residues: parse_symmetry_residues(&input.symmetry_residues),
        homo_oligomer: input.homo_oligomer.on(),
        transmembrane_buried: split_names(&input.transmembrane_buried),
        transmembrane_interface: split_names(&input.transmembrane_interface),
        ..Request::default()
    }
}

fn chain_list(s: &str) -> Vec<String> {
    s.split(',').map(String::from).collect()
}

/// One [`Request`] per structure of a `run.py` command.
pub fn run_requests(a: &RunArgs) -> Result<Vec<Request>> {
    let pdbs = structure_paths(&a.input)?;
    let (fixed, redesigned) = residue_lists(&a.input, &pdbs)?;
    let bias_aa = parse_bias_aa(&a.bias_aa)?;
    let omit_aa = parse_omit_aa(&a.omit_aa);
    let groups = parse_symmetry_residues(&a.input.symmetry_residues);
    let weights = parse_symmetry_weights(&a.symmetry_weights, &groups)?;
    let bias_multi: Option<HashMap<String, Value>> = if !a.bias_aa_per_residue_multi.is_empty() {
        Some(multi_dict("bias_AA_per_residue_multi", &a.bias_aa_per_residue_multi, &pdbs)?)
    } else {
        None
    };
    let bias_single = if bias_multi.is_none() && !a.bias_aa_per_residue.is_empty() {
        let v = read_json("bias_AA_per_residue", &a.bias_aa_per_residue)?;
        Some(bias_dict("bias_AA_per_residue", &a.bias_aa_per_residue, &v)?)
    } else {
        None
    };
    let omit_multi: Option<HashMap<String, Value>> = if !a.omit_aa_per_residue_multi.is_empty() {
        Some(multi_dict("omit_AA_per_residue_multi", &a.omit_aa_per_residue_multi, &pdbs)?)
    } else {
        None
    };
    let omit_single = if omit_multi.is_none() && !a.omit_aa_per_residue.is_empty() {
        let v = read_json("omit_AA_per_residue", &a.omit_aa_per_residue)?;
        Some(omit_dict("omit_AA_per_residue", &a.omit_aa_per_residue, &v)?)
    } else {
        None
    };
    let mut out = Vec::new();
    for pdb in &pdbs {
        let mut r = common_request(&a.input, pdb, &fixed, &redesigned);
        r.chains_to_design = (!a.chains_to_design.is_empty()).then(|| chain_list(&a.chains_to_design));
        r.bias_aa = bias_aa;
        r.omit_aa = omit_aa;
        r.symmetry_weights = weights.clone();
        r.bias_per_residue = match (&bias_multi, &bias_single) {
            (Some(m), _) => bias_dict("bias_AA_per_residue_multi", &a.bias_aa_per_residue_multi, &m[pdb])
                .with_context(|| format!("in the entry for {pdb}"))?,
            (None, Some(b)) => b.clone(),
            _ => Vec::new(),
        };
        r.omit_per_residue = match (&omit_multi, &omit_single) {
            (Some(m), _) => omit_dict("omit_AA_per_residue_multi", &a.omit_aa_per_residue_multi, &m[pdb])
                .with_context(|| format!("in the entry for {pdb}"))?,
            (None, Some(o)) => o.clone(),
            _ => Vec::new(),
        };
        out.push(r);
    }
    Ok(out)
}

/// One [`Request`] per structure of a `score.py` command.
pub fn score_requests(a: &crate::cli::ligandmpnn::args::ScoreArgs) -> Result<Vec<Request>> {
    let pdbs = structure_paths(&a.input)?;
    let (fixed, redesigned) = residue_lists(&a.input, &pdbs)?;
    Ok(pdbs
        .iter()
        .map(|pdb| {
            let mut r = common_request(&a.input, pdb, &fixed, &redesigned);
            r.chains_to_design = a.chains_to_design.as_deref().map(chain_list);
            r
        })
        .collect())
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
    fn inline_flags() {
        let b = parse_bias_aa("A:-1.0,W:1.5,P:0.7").unwrap();
        assert_eq!(b[0], -1.0);
        assert_eq!(b[18], 1.5);
        assert!(parse_bias_aa("A-1").unwrap_err().to_string().contains("LETTER:VALUE"));
        assert!(parse_bias_aa("Z:1").unwrap_err().to_string().contains("`Z`"));
        let o = parse_omit_aa("CM");
        assert!(o[1] && o[10] && !o[0]);
        let g = parse_symmetry_residues("A2,B2|A3,B3");
        assert_eq!(g, vec![vec!["A2".to_string(), "B2".into()], vec!["A3".into(), "B3".into()]]);
        assert!(parse_symmetry_weights("0.5|1,1", &g).is_err());
        assert_eq!(parse_symmetry_weights("0.5,0.5|1,-1", &g).unwrap().unwrap()[1], vec![1.0, -1.0]);
        assert_eq!(parse_chains_only("A,B"), vec!["A", "B"]);
        assert_eq!(parse_chains_only("AB"), vec!["A", "B"]);
        assert!(parse_chains_only("").is_empty());
    }
}
