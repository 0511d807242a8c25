//! `run.py`'s residue-selection inputs as pure functions over a [`LigandStructure`]: which
//! residues are designed (`chain_mask`), amino-acid biases (`bias`), symmetry groups, and
//! membrane labels.
//!
//! Residues are named as `run.py` names them: chain + residue number + insertion code (`A10`,
//! `A10A`), matched as exact strings. Differences from the official code, all on input it would
//! ignore silently or crash on:
//! - A residue name that is not in the structure at all (`--fixed_residues`,
//!   `--redesigned_residues`, per-residue dictionaries, symmetry and membrane lists) is an error
//!   naming it and listing nearby valid names; the official code ignores it (symmetry: crashes).
//!   Names of residues that exist but are not designed behave as in the official code (a
//!   per-residue bias of a fixed residue is still stored).
//! - A chain in `--chains_to_design` that the structure lacks is an error (official: ignored);
//!   chain names are trimmed (`"A, B"` means A and B).
//! - Letters outside `ACDEFGHIKLMNPQRSTVWYX` in `--omit_AA`, `--bias_AA` and the per-residue
//!   dictionaries are errors (official: ignored in `omit_AA` and the dictionaries, a crash in
//!   `bias_AA`); spaces and commas in `--omit_AA` are ignored.
//! - `--homo_oligomer`: the official takes the reference chain as `list(set(chains))[0]`, which
//!   depends on Python's string hashing (random per process unless `PYTHONHASHSEED` is set).
//!   Here the groups follow the chains in order of first appearance (the reference chain is the
//!   first chain); [`homo_oligomer`] takes an explicit chain order to reproduce a recorded run.
//! - Symmetry residues without weights (official: crash) or weights without residues (official:
//!   ignored), group shapes that disagree, and a residue in two groups are errors.

use std::collections::HashMap;

use super::parse::{LigandStructure, ResidueId};
use crate::alphabet::{ALPHABET, VOCAB};

/// A bad selection input: `context` says where (the flag or file, and the item), `problem` what
/// is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {problem}")]
pub struct InputError {
    pub context: String,
    pub problem: String,
}

impl InputError {
    pub fn new(context: impl Into<String>, problem: impl Into<String>) -> Self {
        InputError { context: context.into(), problem: problem.into() }
    }
}

/// Symmetry groups (0-based positions, member order kept) and their weights (`run.py`'s
/// `symmetry_residues` / `symmetry_weights` after remapping). Empty = no symmetry (the
/// official `[[]]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Symmetry {
    pub groups: Vec<Vec<usize>>,
    pub weights: Vec<Vec<f32>>,
}

impl Symmetry {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// `run.py` residue names of a structure, for lookups with helpful errors.
pub struct ResidueNames<'a> {
    structure: &'a LigandStructure,
    index: HashMap<String, usize>,
}

impl<'a> ResidueNames<'a> {
    pub fn new(structure: &'a LigandStructure) -> Self {
        let index = structure.ids.iter().enumerate().map(|(i, id)| (id.to_string(), i)).collect();
        ResidueNames { structure, index }
    }

    /// Position of a residue name (the last residue of that name, as `run.py`'s dictionary).
    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Position of a residue name, or an error naming it (`what`: the flag or file it came from)
    /// with nearby valid names.
    pub fn find(&self, what: &str, name: &str) -> Result<usize, InputError> {
        self.get(name).ok_or_else(|| InputError::new(what, self.unknown(name)))
    }

    fn unknown(&self, name: &str) -> String {
        let s = self.structure;
        let file = &s.file;
        let chains = s.chains();
        let parsed: Option<ResidueId> = name.parse().ok();
        let hint = "residue names are chain + number + insertion code, e.g. A10 or A10A";
        match parsed {
            Some(id) if chains.contains(&id.chain) => {
                let mut near: Vec<(i64, usize)> = s
                    .ids
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.chain == id.chain)
                    .map(|(i, r)| (((r.number as i64) - (id.number as i64)).abs(), i))
                    .collect();
                near.sort();
                let mut pick: Vec<usize> = near.iter().take(6).map(|&(_, i)| i).collect();
                pick.sort();
                let names: Vec<String> = pick.iter().map(|&i| s.ids[i].to_string()).collect();
                format!("residue {name} is not in {file}; nearby residues of chain {}: {}", id.chain, names.join(" "))
            }
            Some(id) => format!(
                "residue {name} is not in {file}: it has no chain {:?} (chains: {}); {hint}",
                id.chain,
                chains.join(", ")
            ),
            None => {
                let first: Vec<String> = s.ids.iter().take(3).map(ToString::to_string).collect();
                format!("residue {name:?} is not in {file} ({hint}; its first residues are {})", first.join(" "))
            }
        }
    }
}

/// `chain_mask` (1 = designed): residues of `chains_to_design` (comma-separated; empty = every
/// chain), restricted to `redesigned_residues` when that is non-empty, else excluding
/// `fixed_residues` (both space-separated residue names). `fixed_residues` is ignored when
/// `redesigned_residues` is given, as in `run.py`.
pub fn chain_mask(
    structure: &LigandStructure,
    chains_to_design: &str,
    fixed_residues: &str,
    redesigned_residues: &str,
) -> Result<Vec<f32>, InputError> {
    let names = ResidueNames::new(structure);
    let chains = structure.chains();
    let design: Vec<String> = if chains_to_design.trim().is_empty() {
        chains.clone()
    } else {
        let mut v = Vec::new();
        for c in chains_to_design.split(',').map(str::trim) {
            if !chains.contains(&c.to_string()) {
                return Err(InputError::new(
                    "--chains_to_design",
                    format!("chain {c:?} is not in {} (its chains: {})", structure.file, chains.join(", ")),
                ));
            }
            v.push(c.to_string());
        }
        v
    };
    let lookup = |flag: &str, text: &str| -> Result<Vec<bool>, InputError> {
        let mut listed = vec![false; structure.len()];
        for name in text.split_whitespace() {
            listed[names.find(flag, name)?] = true;
        }
        Ok(listed)
    };
    let fixed = lookup("--fixed_residues", fixed_residues)?;
    let redesigned = lookup("--redesigned_residues", redesigned_residues)?;
    let use_redesigned = redesigned_residues.split_whitespace().next().is_some();
    let use_fixed = fixed_residues.split_whitespace().next().is_some();
    Ok(structure
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let in_chain = design.contains(&id.chain);
            let keep = if use_redesigned {
                redesigned[i]
            } else if use_fixed {
                !fixed[i]
            } else {
                true
            };
            if in_chain && keep {
                1.0
            } else {
                0.0
            }
        })
        .collect())
}

fn letter_index(context: &str, c: char) -> Result<usize, InputError> {
    ALPHABET.find(c).ok_or_else(|| {
        InputError::new(context, format!("{c:?} is not an amino-acid letter (one of {ALPHABET}, upper case)"))
    })
}

/// `--bias_AA` (`A:-1.0,W:1.5`) as a [21] vector; later entries for a letter win.
pub fn parse_bias_aa(text: &str) -> Result<[f32; VOCAB], InputError> {
    let mut out = [0f32; VOCAB];
    if text.trim().is_empty() {
        return Ok(out);
    }
    for item in text.split(',') {
        let bad = || {
            InputError::new(
                "--bias_AA",
                format!("{:?} is not LETTER:NUMBER (write e.g. \"A:-1.0,W:1.5\")", item.trim()),
            )
        };
        let (aa, value) = item.split_once(':').ok_or_else(bad)?;
        let aa = aa.trim();
        let mut chars = aa.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else { return Err(bad()) };
        let k = letter_index("--bias_AA", c)?;
        let v: f64 = value.trim().parse().map_err(|_| bad())?;
        if !v.is_finite() {
            return Err(bad());
        }
        out[k] = v as f32;
    }
    Ok(out)
}

/// `--omit_AA` (`CM`) as a [21] 0/1 vector. Spaces and commas are ignored.
pub fn parse_omit_aa(text: &str) -> Result<[f32; VOCAB], InputError> {
    let mut out = [0f32; VOCAB];
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != ',') {
        out[letter_index("--omit_AA", c)?] = 1.0;
    }
    Ok(out)
}

/// A per-residue bias dictionary (`{"A12": {"G": 1.1}}`, the JSON of
/// `--bias_AA_per_residue`) as [L, 21]. `source` names the file in messages.
pub fn per_residue_bias(
    structure: &LigandStructure,
    source: &str,
    json: &serde_json::Value,
) -> Result<Vec<[f32; VOCAB]>, InputError> {
    let names = ResidueNames::new(structure);
    let mut out = vec![[0f32; VOCAB]; structure.len()];
    let map = json
        .as_object()
        .ok_or_else(|| InputError::new(source, "must be a JSON object {\"A12\": {\"G\": 1.1}, ...}"))?;
    for (residue, v) in map {
        let i = names.find(source, residue)?;
        let inner = v.as_object().ok_or_else(|| {
            InputError::new(format!("{source}: {residue}"), "must be an object of letter: bias, e.g. {\"G\": 1.1}")
        })?;
        for (aa, b) in inner {
            let ctx = format!("{source}: {residue}");
            let mut chars = aa.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(InputError::new(ctx, format!("{aa:?} is not a single amino-acid letter")));
            };
            let k = letter_index(&ctx, c)?;
            let value = b
                .as_f64()
                .ok_or_else(|| InputError::new(ctx.clone(), format!("bias for {aa} is not a number: {b}")))?;
            out[i][k] = value as f32;
        }
    }
    Ok(out)
}

/// A per-residue omit dictionary (`{"A12": "PG"}`, the JSON of `--omit_AA_per_residue`) as
/// [L, 21] 0/1.
pub fn per_residue_omit(
    structure: &LigandStructure,
    source: &str,
    json: &serde_json::Value,
) -> Result<Vec<[f32; VOCAB]>, InputError> {
    let names = ResidueNames::new(structure);
    let mut out = vec![[0f32; VOCAB]; structure.len()];
    let map =
        json.as_object().ok_or_else(|| InputError::new(source, "must be a JSON object {\"A12\": \"PG\", ...}"))?;
    for (residue, v) in map {
        let i = names.find(source, residue)?;
        let ctx = format!("{source}: {residue}");
        let letters =
            v.as_str().ok_or_else(|| InputError::new(ctx.clone(), "must be a string of letters, e.g. \"PG\""))?;
        for c in letters.chars() {
            out[i][letter_index(&ctx, c)?] = 1.0;
        }
    }
    Ok(out)
}

/// `run.py`'s `bias` [L, 21] in float32, in its order of operations:
/// `(-1e8·omit_AA + bias_AA) + bias_AA_per_residue - 1e8·omit_AA_per_residue` (an omitted
/// letter gets -1e8 from each omit that names it; a bias for `X` is stored).
pub fn combine_bias(
    len: usize,
    bias_aa: &[f32; VOCAB],
    omit_aa: &[f32; VOCAB],
    bias_per_residue: Option<&[[f32; VOCAB]]>,
    omit_per_residue: Option<&[[f32; VOCAB]]>,
) -> Vec<[f32; VOCAB]> {
    (0..len)
        .map(|i| {
            let mut row = [0f32; VOCAB];
            for k in 0..VOCAB {
                let mut v = -1e8f32 * omit_aa[k] + bias_aa[k];
                v += bias_per_residue.map_or(0.0, |b| b[i][k]);
                v -= 1e8f32 * omit_per_residue.map_or(0.0, |o| o[i][k]);
                row[k] = v;
            }
            row
        })
        .collect()
}

/// [`combine_bias`] of the flag strings and optional dictionaries (`(source, json)`).
pub fn bias(
    structure: &LigandStructure,
    bias_aa: &str,
    omit_aa: &str,
    bias_per_residue: Option<(&str, &serde_json::Value)>,
    omit_per_residue: Option<(&str, &serde_json::Value)>,
) -> Result<Vec<[f32; VOCAB]>, InputError> {
    let b = parse_bias_aa(bias_aa)?;
    let o = parse_omit_aa(omit_aa)?;
    let bp = bias_per_residue.map(|(src, j)| per_residue_bias(structure, src, j)).transpose()?;
    let op = omit_per_residue.map(|(src, j)| per_residue_omit(structure, src, j)).transpose()?;
    Ok(combine_bias(structure.len(), &b, &o, bp.as_deref(), op.as_deref()))
}

/// `--symmetry_residues` (`A1,B1|A2,B2`) and `--symmetry_weights` (`0.5,0.5|0.5,0.5`) as
/// groups of positions and weights. Both empty = no symmetry.
pub fn symmetry(structure: &LigandStructure, residues: &str, weights: &str) -> Result<Symmetry, InputError> {
    let (residues, weights) = (residues.trim(), weights.trim());
    if residues.is_empty() && weights.is_empty() {
        return Ok(Symmetry::default());
    }
    if residues.is_empty() {
        return Err(InputError::new(
            "--symmetry_weights",
            "given without --symmetry_residues; give the residues the weights belong to",
        ));
    }
    let names = ResidueNames::new(structure);
    let mut groups = Vec::new();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for (g, group) in residues.split('|').enumerate() {
        let mut members = Vec::new();
        for name in group.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(InputError::new(
                    "--symmetry_residues",
                    format!("group {} ({group:?}) has an empty residue name; write groups as A1,B1|A2,B2", g + 1),
                ));
            }
            let i = names.find("--symmetry_residues", name)?;
            if let Some(&other) = seen.get(&i) {
                return Err(InputError::new(
                    "--symmetry_residues",
                    format!(
                        "residue {name} is in group {} and group {}; a residue can be in one group only",
                        other + 1,
                        g + 1
                    ),
                ));
            }
            seen.insert(i, g);
            members.push(i);
        }
        groups.push(members);
    }
    if weights.is_empty() {
        let example: Vec<String> =
            groups.iter().map(|m| vec![format!("{}", 1.0 / m.len() as f64); m.len()].join(",")).collect();
        return Err(InputError::new(
            "--symmetry_residues",
            format!("given without --symmetry_weights; give one weight per residue, e.g. \"{}\"", example.join("|")),
        ));
    }
    let mut out_weights = Vec::new();
    for (g, group) in weights.split('|').enumerate() {
        let mut w = Vec::new();
        for item in group.split(',') {
            let v: f64 = item.trim().parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                InputError::new(
                    "--symmetry_weights",
                    format!("{:?} in group {} is not a number; write weights as 0.5,0.5|0.5,0.5", item.trim(), g + 1),
                )
            })?;
            w.push(v as f32);
        }
        out_weights.push(w);
    }
    let shape = |v: &[Vec<usize>]| v.iter().map(Vec::len).collect::<Vec<_>>();
    let wshape: Vec<usize> = out_weights.iter().map(Vec::len).collect();
    if shape(&groups) != wshape {
        return Err(InputError::new(
            "--symmetry_weights",
            format!(
                "group sizes {wshape:?} do not match --symmetry_residues group sizes {:?}; give one weight per residue",
                shape(&groups)
            ),
        ));
    }
    Ok(Symmetry { groups, weights: out_weights })
}

/// `--homo_oligomer 1`: one group per residue of the reference chain (the first of
/// `chain_order`), holding the residue of the same number and insertion code in every chain of
/// `chain_order`, in that order, each weighted 1/(number of chains). `chain_order` `None` = the
/// chains in order of first appearance (see the module documentation for the official order).
pub fn homo_oligomer(structure: &LigandStructure, chain_order: Option<&[String]>) -> Result<Symmetry, InputError> {
    let chains = match chain_order {
        Some(order) => {
            let present = structure.chains();
            for c in order {
                if !present.contains(c) {
                    return Err(InputError::new(
                        "--homo_oligomer",
                        format!("chain {c:?} is not in {} (its chains: {})", structure.file, present.join(", ")),
                    ));
                }
            }
            order.to_vec()
        }
        None => structure.chains(),
    };
    let Some(reference) = chains.first() else { return Ok(Symmetry::default()) };
    let names = ResidueNames::new(structure);
    let w = (1.0 / chains.len() as f64) as f32;
    let mut out = Symmetry::default();
    for id in structure.ids.iter().filter(|id| &id.chain == reference) {
        let mut group = Vec::new();
        for c in &chains {
            let name = ResidueId { chain: c.clone(), number: id.number, icode: id.icode.clone() }.to_string();
            let i = names.get(&name).ok_or_else(|| {
                InputError::new(
                    "--homo_oligomer",
                    format!(
                        "chain {c} has no residue {name} matching {id} of chain {reference}; every chain must have the same residue numbering"
                    ),
                )
            })?;
            group.push(i);
        }
        out.groups.push(group);
        out.weights.push(vec![w; chains.len()]);
    }
    Ok(out)
}

/// `membrane_per_residue_labels` for the per-residue membrane model: 2 for residues listed in
/// `buried` only, 1 for those in `interface` only, 0 otherwise (both lists space-separated
/// residue names).
pub fn membrane_labels(structure: &LigandStructure, buried: &str, interface: &str) -> Result<Vec<i32>, InputError> {
    let names = ResidueNames::new(structure);
    let mut b = vec![0i32; structure.len()];
    let mut f = vec![0i32; structure.len()];
    for name in buried.split_whitespace() {
        b[names.find("--transmembrane_buried", name)?] = 1;
    }
    for name in interface.split_whitespace() {
        f[names.find("--transmembrane_interface", name)?] = 1;
    }
    Ok(b.iter().zip(&f).map(|(&b, &f)| 2 * b * (1 - f) + f * (1 - b)).collect())
}

/// `membrane_per_residue_labels` for the global-label membrane model: the label everywhere.
pub fn global_membrane_labels(structure: &LigandStructure, label: i32) -> Vec<i32> {
    vec![label; structure.len()]
}

/// `run.py`'s selection flags for one structure, as strings in its own syntax (empty = not
/// given); the per-residue dictionaries as `(file name for messages, parsed JSON)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFlags {
    pub chains_to_design: String,
    pub fixed_residues: String,
    pub redesigned_residues: String,
    pub bias_aa: String,
    pub omit_aa: String,
    pub bias_aa_per_residue: Option<(String, serde_json::Value)>,
    pub omit_aa_per_residue: Option<(String, serde_json::Value)>,
    pub symmetry_residues: String,
    pub symmetry_weights: String,
    pub homo_oligomer: bool,
    pub transmembrane_buried: String,
    pub transmembrane_interface: String,
    pub global_transmembrane_label: i32,
}

/// Which membrane labels a model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembraneLabels {
    /// Not a membrane model.
    None,
    /// `per_residue_label_membrane_mpnn`: from `--transmembrane_buried` / `_interface`.
    PerResidue,
    /// `global_label_membrane_mpnn`: `--global_transmembrane_label` everywhere.
    Global,
}

/// Everything [`RunFlags`] decide for one structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Selections {
    /// [L], 1 = designed.
    pub chain_mask: Vec<f32>,
    /// [L, 21].
    pub bias: Vec<[f32; VOCAB]>,
    /// Groups (homo-oligomer groups when `homo_oligomer` is set, which overrides
    /// `symmetry_residues` as in `run.py`).
    pub symmetry: Symmetry,
    /// [L] for membrane models.
    pub membrane_labels: Option<Vec<i32>>,
}

/// Applies `run.py`'s selection flags to a structure (see the functions above for each).
pub fn selections(
    structure: &LigandStructure,
    flags: &RunFlags,
    membrane: MembraneLabels,
) -> Result<Selections, InputError> {
    let chain_mask = chain_mask(structure, &flags.chains_to_design, &flags.fixed_residues, &flags.redesigned_residues)?;
    let bias = bias(
        structure,
        &flags.bias_aa,
        &flags.omit_aa,
        flags.bias_aa_per_residue.as_ref().map(|(s, v)| (s.as_str(), v)),
        flags.omit_aa_per_residue.as_ref().map(|(s, v)| (s.as_str(), v)),
    )?;
    let symmetry = if flags.homo_oligomer {
        homo_oligomer(structure, None)?
    } else {
        symmetry(structure, &flags.symmetry_residues, &flags.symmetry_weights)?
    };
    let membrane_labels = match membrane {
        MembraneLabels::None => None,
        MembraneLabels::PerResidue => {
            Some(membrane_labels(structure, &flags.transmembrane_buried, &flags.transmembrane_interface)?)
        }
        MembraneLabels::Global => Some(global_membrane_labels(structure, flags.global_transmembrane_label)),
    };
    Ok(Selections { chain_mask, bias, symmetry, membrane_labels })
}
