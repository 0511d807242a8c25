//! The official input dictionaries (`--chain_id_jsonl`, `--fixed_positions_jsonl`,
//! `--omit_AA_jsonl`, `--bias_AA_jsonl`, `--bias_by_res_jsonl`, `--pssm_jsonl`,
//! `--tied_positions_jsonl`), read from their files and turned into [`Constraints`].
//!
//! Every line of a file is a JSON object; lines are merged (the official script keeps only the
//! last line of most files, which silently drops entries when several are given). A value
//! that is inline JSON instead of a path is refused: the official script ignores it silently.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::alphabet::{self, VOCAB};
use crate::featurize::{ChainPssm, ChainSelection, Constraints, TiedMember};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{flag} expects the path of a file, but got inline JSON ({preview}...). The official script silently ignores this (and e.g. designs every chain); mpnn refuses it. Write the JSON to a file and pass its path, or use mpnn's inline options")]
    InlineJson { flag: String, preview: String },
    #[error("{flag}: cannot read {path}: {source}")]
    Io { flag: String, path: String, source: std::io::Error },
    #[error("{path} line {line}: not valid JSON ({message})")]
    Json { path: String, line: usize, message: String },
    #[error("{source_name}: {item}: {problem}")]
    Shape { source_name: String, item: String, problem: String },
    #[error("{source_name}: structure `{name}` has no chain `{chain}` (its chains are: {available}); fix the chain id in {source_name} or leave the chain out")]
    UnknownChain { source_name: String, name: String, chain: String, available: String },
    #[error("{source_name}: no entry for structure `{name}` (it has: {available}); add one or leave the option out")]
    MissingName { source_name: String, name: String, available: String },
}

/// Refuses inline JSON where a path is expected.
pub fn expect_path(flag: &str, value: &str) -> Result<(), InputError> {
    let t = value.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return Err(InputError::InlineJson { flag: flag.to_string(), preview: t.chars().take(30).collect() });
    }
    Ok(())
}

/// Reads a JSON-lines dictionary file, merging the objects of all lines.
pub fn read_dict_file(flag: &str, path: &str) -> Result<Map<String, Value>, InputError> {
    expect_path(flag, path)?;
    let text = std::fs::read_to_string(Path::new(path)).map_err(|source| InputError::Io {
        flag: flag.to_string(),
        path: path.to_string(),
        source,
    })?;
    let mut out = Map::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| InputError::Json {
            path: path.to_string(),
            line: i + 1,
            message: e.to_string(),
        })?;
        match v {
            Value::Object(m) => out.extend(m),
            _ => {
                return Err(InputError::Shape {
                    source_name: path.to_string(),
                    item: format!("line {}", i + 1),
                    problem: "expected a JSON object".into(),
                })
            }
        }
    }
    Ok(out)
}

/// The official dictionaries of a run (any may be absent), keyed by structure name.
#[derive(Debug, Clone, Default)]
pub struct Dictionaries {
    pub chain_id: Option<(String, Map<String, Value>)>,
    pub fixed_positions: Option<(String, Map<String, Value>)>,
    pub omit_aa: Option<(String, Map<String, Value>)>,
    pub bias_by_res: Option<(String, Map<String, Value>)>,
    pub pssm: Option<(String, Map<String, Value>)>,
    pub tied_positions: Option<(String, Map<String, Value>)>,
    /// `--bias_AA_jsonl`: letter → bias, as a 21-vector.
    pub bias_aa: [f32; VOCAB],
}

fn shape_err(src: &str, item: impl Into<String>, problem: impl Into<String>) -> InputError {
    InputError::Shape { source_name: src.to_string(), item: item.into(), problem: problem.into() }
}

fn entry<'a>(
    d: &'a Option<(String, Map<String, Value>)>,
    name: &str,
) -> Result<Option<(&'a str, &'a Value)>, InputError> {
    let Some((src, map)) = d else { return Ok(None) };
    match map.get(name) {
        Some(v) => Ok(Some((src.as_str(), v))),
        None => Err(InputError::MissingName {
            source_name: src.clone(),
            name: name.to_string(),
            available: map.keys().take(10).cloned().collect::<Vec<_>>().join(", "),
        }),
    }
}

fn int_list(src: &str, item: &str, v: &Value) -> Result<Vec<i64>, InputError> {
    v.as_array()
        .ok_or_else(|| shape_err(src, item, "expected a list of residue numbers"))?
        .iter()
        .map(|x| x.as_i64().ok_or_else(|| shape_err(src, item, format!("`{x}` is not a whole residue number"))))
        .collect()
}

fn row21(src: &str, item: &str, v: &Value) -> Result<[f32; VOCAB], InputError> {
    let a = v.as_array().ok_or_else(|| shape_err(src, item, "expected a list of 21 numbers"))?;
    if a.len() != VOCAB {
        return Err(shape_err(
            src,
            item,
            format!("has {} values; expected 21 (one per letter of {})", a.len(), alphabet::ALPHABET),
        ));
    }
    let mut out = [0f32; VOCAB];
    for (o, x) in out.iter_mut().zip(a) {
        *o = x.as_f64().ok_or_else(|| shape_err(src, item, format!("`{x}` is not a number")))? as f32;
    }
    Ok(out)
}

/// A list of 21-value rows (`[[..21..], ...]`), rows named `"{item} {row_label} N"` in errors.
fn rows21(
    src: &str,
    item: &str,
    v: &Value,
    not_a_list: &str,
    row_label: &str,
) -> Result<Vec<[f32; VOCAB]>, InputError> {
    v.as_array()
        .ok_or_else(|| shape_err(src, item, not_a_list))?
        .iter()
        .enumerate()
        .map(|(i, r)| row21(src, &format!("{item} {row_label} {}", i + 1), r))
        .collect()
}

fn chain_map<'a>(src: &str, name: &str, v: &'a Value) -> Result<&'a Map<String, Value>, InputError> {
    v.as_object().ok_or_else(|| shape_err(src, name, "expected an object keyed by chain id"))
}

/// Parses a `--bias_AA_jsonl` object (`{"A": -1.1, "F": 0.7}`) into a 21-vector.
pub fn bias_vector(src: &str, map: &Map<String, Value>) -> Result<[f32; VOCAB], InputError> {
    let mut out = [0f32; VOCAB];
    for (k, v) in map {
        let mut chars = k.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(shape_err(src, k, format!("keys are single letters of {}", alphabet::ALPHABET)));
        };
        let i = alphabet::ALPHABET
            .find(c)
            .ok_or_else(|| shape_err(src, k, format!("`{c}` is not one of {}", alphabet::ALPHABET)))?;
        out[i] = v.as_f64().ok_or_else(|| shape_err(src, k, format!("`{v}` is not a number")))? as f32;
    }
    Ok(out)
}

impl Dictionaries {
    /// The chain selection for `name`, if a chain dictionary was given.
    pub fn chain_selection(&self, name: &str) -> Result<Option<ChainSelection>, InputError> {
        let Some((src, v)) = entry(&self.chain_id, name)? else { return Ok(None) };
        let pair = v
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or_else(|| shape_err(src, name, "expected [[designed chains], [fixed chains]]"))?;
        let list = |x: &Value| -> Result<Vec<String>, InputError> {
            x.as_array()
                .ok_or_else(|| shape_err(src, name, "expected [[designed chains], [fixed chains]]"))?
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(String::from)
                        .ok_or_else(|| shape_err(src, name, format!("chain `{c}` is not a string")))
                })
                .collect()
        };
        Ok(Some(ChainSelection { designed: list(&pair[0])?, fixed: list(&pair[1])? }))
    }

    /// Refuses an entry for structure `name` that names a chain it does not have (`chains`),
    /// in any per-chain dictionary (chain_id, fixed_positions, omit_AA, bias_by_res, pssm,
    /// tied_positions), naming the file. The official script silently ignores such chains;
    /// the inline specs (`--fixed A12`) refuse them too. A dictionary without an entry for
    /// `name` is not checked here.
    pub fn check_chains(&self, name: &str, chains: &[String]) -> Result<(), InputError> {
        let check = |src: &str, chain: &str| -> Result<(), InputError> {
            if chains.iter().any(|c| c == chain) {
                return Ok(());
            }
            Err(InputError::UnknownChain {
                source_name: src.to_string(),
                name: name.to_string(),
                chain: chain.to_string(),
                available: chains.join(", "),
            })
        };
        fn get<'a>(d: &'a Option<(String, Map<String, Value>)>, name: &str) -> Option<(&'a str, &'a Value)> {
            d.as_ref().and_then(|(src, m)| m.get(name).map(|v| (src.as_str(), v)))
        }
        if let Some((src, v)) = get(&self.chain_id, name) {
            for list in v.as_array().into_iter().flatten() {
                for c in list.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    check(src, c)?;
                }
            }
        }
        for d in [&self.fixed_positions, &self.omit_aa, &self.bias_by_res, &self.pssm] {
            if let Some((src, Value::Object(m))) = get(d, name) {
                for c in m.keys() {
                    check(src, c)?;
                }
            }
        }
        if let Some((src, v)) = get(&self.tied_positions, name) {
            for group in v.as_array().into_iter().flatten().filter_map(Value::as_object) {
                for c in group.keys() {
                    check(src, c)?;
                }
            }
        }
        Ok(())
    }

    /// The per-residue constraints for structure `name`.
    pub fn constraints(&self, name: &str) -> Result<Constraints, InputError> {
        let mut c = Constraints::default();
        if let Some((src, v)) = entry(&self.fixed_positions, name)? {
            let mut m = BTreeMap::new();
            for (chain, list) in chain_map(src, name, v)? {
                m.insert(chain.clone(), int_list(src, &format!("{name}/{chain}"), list)?);
            }
            c.fixed_positions = Some(m);
        }
        if let Some((src, v)) = entry(&self.omit_aa, name)? {
            let mut m = BTreeMap::new();
            for (chain, items) in chain_map(src, name, v)? {
                let item = format!("{name}/{chain}");
                let mut list = Vec::new();
                for it in items
                    .as_array()
                    .ok_or_else(|| shape_err(src, &item, "expected a list of [[positions], \"letters\"]"))?
                {
                    let pair = it
                        .as_array()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| shape_err(src, &item, "expected [[positions], \"letters\"]"))?;
                    let letters = pair[1]
                        .as_str()
                        .ok_or_else(|| shape_err(src, &item, "the letters to omit must be a string like \"CW\""))?;
                    list.push((int_list(src, &item, &pair[0])?, letters.to_string()));
                }
                m.insert(chain.clone(), list);
            }
            c.omit_aa = Some(m);
        }
        if let Some((src, v)) = entry(&self.bias_by_res, name)? {
            let mut m = BTreeMap::new();
            for (chain, rows) in chain_map(src, name, v)? {
                let item = format!("{name}/{chain}");
                let parsed = rows21(src, &item, rows, "expected one list of 21 biases per residue", "residue")?;
                m.insert(chain.clone(), parsed);
            }
            c.bias_by_res = Some(m);
        }
        if let Some((src, v)) = entry(&self.pssm, name)? {
            let mut m = BTreeMap::new();
            for (chain, p) in chain_map(src, name, v)? {
                let item = format!("{name}/{chain}");
                let Some(obj) = p.as_object().filter(|o| !o.is_empty()) else { continue };
                let get = |k: &str| obj.get(k).ok_or_else(|| shape_err(src, &item, format!("missing `{k}`")));
                let coef = get("pssm_coef")?
                    .as_array()
                    .ok_or_else(|| shape_err(src, &item, "pssm_coef must be a list"))?
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .map(|v| v as f32)
                            .ok_or_else(|| shape_err(src, &item, "pssm_coef values must be numbers"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let rows =
                    |k: &str| rows21(src, &item, get(k)?, &format!("{k} must be a list of rows"), &format!("{k} row"));
                m.insert(chain.clone(), ChainPssm { coef, bias: rows("pssm_bias")?, log_odds: rows("pssm_log_odds")? });
            }
            c.pssm = Some(m);
        }
        if let Some((src, v)) = entry(&self.tied_positions, name)? {
            let groups =
                v.as_array().ok_or_else(|| shape_err(src, name, "expected a list of {chain: positions} groups"))?;
            let mut out = Vec::new();
            for (g, group) in groups.iter().enumerate() {
                let item = format!("{name} group {}", g + 1);
                let mut members = Vec::new();
                for (chain, val) in
                    group.as_object().ok_or_else(|| shape_err(src, &item, "expected an object keyed by chain"))?
                {
                    let arr = val
                        .as_array()
                        .ok_or_else(|| shape_err(src, &item, "expected positions or [[positions], [weights]]"))?;
                    let member = if arr.first().is_some_and(|x| x.is_array()) {
                        if arr.len() != 2 {
                            return Err(shape_err(src, &item, "weighted form is [[positions], [weights]]"));
                        }
                        let positions = int_list(src, &item, &arr[0])?;
                        let betas: Vec<f32> = arr[1]
                            .as_array()
                            .ok_or_else(|| shape_err(src, &item, "weights must be a list"))?
                            .iter()
                            .map(|x| {
                                x.as_f64()
                                    .map(|v| v as f32)
                                    .ok_or_else(|| shape_err(src, &item, "weights must be numbers"))
                            })
                            .collect::<Result<_, _>>()?;
                        if betas.len() != positions.len() {
                            return Err(shape_err(
                                src,
                                &item,
                                format!("{} positions but {} weights", positions.len(), betas.len()),
                            ));
                        }
                        TiedMember { chain: chain.clone(), positions, betas: Some(betas) }
                    } else {
                        TiedMember { chain: chain.clone(), positions: int_list(src, &item, val)?, betas: None }
                    };
                    members.push(member);
                }
                out.push(members);
            }
            c.tied = Some(out);
        }
        Ok(c)
    }
}
