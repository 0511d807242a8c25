//! The LigandMPNN family (`ligand_mpnn`, `protein_mpnn`, `soluble_mpnn` and the two membrane
//! models, in LigandMPNN's checkpoint layout) behind the native jobs: design, score and
//! per-position probabilities of many structures with one model load.
//!
//! A structure is read with LigandMPNN's parser ([`crate::ligand::parse`]: ProDy's semantics,
//! context atoms kept), its residues selected as `run.py` selects them (residue ids are chain +
//! number + insertion code: `A10`, `B52A`), and featurized as `run.py` does; the numbers are
//! those of `mpnn ligandmpnn run` / `score` for the same seed:
//!
//! - design sample `i` (counted over all temperatures in output order) takes its decoding order
//!   from `seeded_randn(seed, NAME, i)` and its draws from `seeded_chooser(seed, NAME, i)`: the
//!   drop-in's `--batch_size 1` batch `i`;
//! - scoring pass `p` takes its decoding order from [`super::order_noise`]`(seed, NAME, p)`, as
//!   the drop-in's `score` pass `p`; its log-probabilities are `score.py --autoregressive_score 1
//!   --use_sequence 1`;
//! - per-position probabilities ([`ProbsKind`]) are `score.py --single_aa_score 1` with
//!   `--use_sequence 1` (conditional: each position decoded first, the official ProteinMPNN
//!   `conditional_probs` code path; unconditional: the same in an order where every position
//!   comes first) or `--use_sequence 0` (backbone only: each position decoded last, seeing every
//!   other native letter, the official `conditional_probs(backbone_only=True)` code path).
//!
//! ```no_run
//! use mpnn::job::ligand::{self, LigandModel, LigandOptions, LigandSelection};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = LigandModel::from_file("ligandmpnn_v_32_010_25.pt".as_ref(), None, false)?;
//! let opts = LigandOptions::default();
//! let sel = LigandSelection { redesign: Some("A10-A20 B52A".into()), ..Default::default() };
//! let p = ligand::prepare(&model, "1BC8.pdb".as_ref(), &sel, &opts)?;
//! for w in &p.warnings { eprintln!("warning: {w}"); }
//! let designs = ligand::design(&model, &p, &[0.1], 4, 37)?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::JobError;
use crate::checkpoint::{self, Checkpoint};
use crate::ligand::featurize::{featurize, virtual_cb, ContextOptions};
use crate::ligand::network::LigandEncoded;
use crate::ligand::parse::{read_ligand_structure, ContextStatus, LigandStructure, ParseOptions};
use crate::ligand::sample::{confidence, seeded_chooser, seeded_randn, Confidence};
use crate::ligand::select::{self, InputError, MembraneLabels, ResidueNames, RunFlags};
use crate::ligand::{LigandFeatures, LigandMpnn, ModelType, SampleOptions};
use crate::model::decoder::score as mean_nll;
use crate::pipeline::Scores;

/// A LigandMPNN-family model ready to run, with its type and file.
pub struct LigandModel {
    net: LigandMpnn,
    path: PathBuf,
    noise_level: f64,
}

/// The model type a checkpoint's tensors say, where they say it: `ligand_mpnn` for the
/// atom-context tensors, `None` for ProteinMPNN's layout (ProteinMPNN, SolubleMPNN, LigandMPNN's
/// `protein_mpnn` / `soluble_mpnn`: one layout). A membrane checkpoint is an error asking for
/// the type (the two membrane models share a layout).
pub fn detect_model_type(ckpt: &Checkpoint) -> Result<Option<ModelType>, JobError> {
    let has = |n: &str| ckpt.tensors.contains_key(n);
    let ca_only = ckpt
        .tensors
        .get("features.edge_embedding.weight")
        .is_some_and(|t| t.shape.get(1) == Some(&checkpoint::EDGE_IN_CA));
    if has("features.y_nodes.weight") || has("context_encoder_layers.0.W1.weight") {
        Ok(Some(ModelType::LigandMpnn))
    } else if has("features.node_embedding.weight") && !ca_only {
        // (ProteinMPNN's CA-only checkpoints have a node embedding and `W_v` too; their edge
        // features are the CA-only ones.)
        Err(JobError::BadValue {
            option: "model",
            value: ckpt.source.clone(),
            why: "this is a LigandMPNN membrane checkpoint; say which membrane model it is with --model_type \
                  per_residue_label_membrane_mpnn or --model_type global_label_membrane_mpnn (Python: \
                  model_type=...)"
                .into(),
        })
    } else {
        Ok(None)
    }
}

impl LigandModel {
    /// Loads `path` as `model_type`, or (`None`) as the type its tensors say (see
    /// [`detect_model_type`]; ProteinMPNN's layout loads as `protein_mpnn`).
    /// `side_chain_context`: `--ligand_mpnn_use_side_chain_context` (ligand_mpnn only, as in
    /// `run.py`).
    pub fn from_file(
        path: &Path,
        model_type: Option<ModelType>,
        side_chain_context: bool,
    ) -> Result<LigandModel, JobError> {
        let ckpt = checkpoint::load(path)?;
        Self::from_checkpoint(&ckpt, path, model_type, side_chain_context)
    }

    /// [`LigandModel::from_file`] of a loaded checkpoint.
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        path: &Path,
        model_type: Option<ModelType>,
        side_chain_context: bool,
    ) -> Result<LigandModel, JobError> {
        let t = match model_type {
            Some(t) => t,
            None => detect_model_type(ckpt)?.unwrap_or(ModelType::ProteinMpnn),
        };
        let net = LigandMpnn::from_checkpoint(ckpt, t)
            .map_err(|e| JobError::Ligand(e.to_string()))?
            .with_side_chain_context(side_chain_context && t == ModelType::LigandMpnn);
        Ok(LigandModel { net, path: path.to_path_buf(), noise_level: ckpt.noise_level })
    }

    pub fn model_type(&self) -> ModelType {
        self.net.model_type()
    }

    /// The network.
    pub fn net(&self) -> &LigandMpnn {
        &self.net
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file name without its extension (the FASTA headers' `model_name`).
    pub fn name(&self) -> String {
        self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Neighbours per residue (`num_edges`).
    pub fn num_edges(&self) -> usize {
        self.net.k()
    }

    /// The checkpoint's training noise level (Å).
    pub fn noise_level(&self) -> f64 {
        self.noise_level
    }

    /// Whether the model reads context atoms (ligand_mpnn with `use_atom_context`).
    pub fn reads_context(&self, opts: &LigandOptions) -> bool {
        self.model_type() == ModelType::LigandMpnn && opts.use_atom_context
    }
}

/// How structures are read and featurized: LigandMPNN's context and membrane flags.
#[derive(Debug, Clone, PartialEq)]
pub struct LigandOptions {
    /// `--ligand_mpnn_use_atom_context` (default on).
    pub use_atom_context: bool,
    /// `--ligand_mpnn_cutoff_for_score` (Å, default 8): residues this close to a context atom
    /// count for `ligand_confidence`, and for the warning that a model ignores context atoms.
    pub cutoff_for_score: f32,
    /// `--ligand_mpnn_use_side_chain_context` (ligand_mpnn; set it on the model too).
    pub side_chain_context: bool,
    /// `--parse_atoms_with_zero_occupancy`.
    pub zero_occupancy: bool,
    /// `--transmembrane_buried` / `--transmembrane_interface` residue ids (space-separated;
    /// `per_residue_label_membrane_mpnn`).
    pub transmembrane_buried: String,
    pub transmembrane_interface: String,
    /// `--global_transmembrane_label` (`global_label_membrane_mpnn`; 1 = transmembrane).
    pub global_transmembrane_label: i32,
}

impl Default for LigandOptions {
    fn default() -> Self {
        LigandOptions {
            use_atom_context: true,
            cutoff_for_score: 8.0,
            side_chain_context: false,
            zero_occupancy: false,
            transmembrane_buried: String::new(),
            transmembrane_interface: String::new(),
            global_transmembrane_label: 0,
        }
    }
}

/// Which residues are designed and how: residue ids as LigandMPNN names them (chain + number +
/// insertion code: `A10`, `B52A`), in the native spec syntax: items separated by spaces or
/// commas, a bare chain (`B`) for all its residues, ranges `B82-B100` / `B82-100` / `B82A-B82C`
/// (every residue of the chain from the first to the last named, in file order, insertion codes
/// included). Unknown ids are errors naming the nearest valid ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LigandSelection {
    /// Chains to design (empty: all).
    pub chains: Vec<String>,
    /// Residues kept at their native amino acid.
    pub fixed: Option<String>,
    /// The only residues of the designed chains that are designed (the others fixed). A residue
    /// both fixed and redesigned is refused.
    pub redesign: Option<String>,
    /// Groups of residues given one letter: `A1,C1|A2-A5,C2-C5`.
    pub tied: Option<String>,
    /// Ties the designed chains residue by residue.
    pub homo_oligomer: bool,
    /// Letters never sampled (`--omit_AAs`).
    pub omit: String,
    /// Global bias `W:3.0,P:-1`.
    pub bias: String,
    /// Per-residue bias (`{"A12": {"W": 2.0}}`) and omitted letters (`{"A12": "CP"}`), with the
    /// file they came from (for messages).
    pub bias_by_residue: Option<(String, serde_json::Value)>,
    pub omit_by_residue: Option<(String, serde_json::Value)>,
}

/// One structure ready for a LigandMPNN-family model.
#[derive(Debug, Clone)]
pub struct LigandPrepared {
    /// The structure's name (file stem): keys its random streams and its output files.
    pub name: String,
    pub features: LigandFeatures,
    /// Residue ids (`A10`, `B52A`) (`[L]`).
    pub residue_ids: Vec<String>,
    /// Chain id of each residue (`[L]`).
    pub chain_ids: Vec<String>,
    /// Chains in order of first appearance, and those designed.
    pub chains: Vec<String>,
    pub designed_chains: Vec<String>,
    /// Symmetry groups (0-based) and weights (`--tied`, `--homo-oligomer`).
    pub symmetry_residues: Vec<Vec<usize>>,
    pub symmetry_weights: Vec<Vec<f32>>,
    /// Usable context atoms.
    pub context_atoms: usize,
    /// Things worth knowing that change nothing (context atoms dropped by kind, a structure with
    /// no usable context atoms), one sentence each.
    pub notes: Vec<String>,
    /// Things that may not be what the user wants (a model that ignores context atoms lying
    /// near designed residues), one sentence each.
    pub warnings: Vec<String>,
}

impl LigandPrepared {
    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// `mask · chain_mask` (`[L]`): the designed positions.
    pub fn design_mask(&self) -> Vec<f32> {
        self.features.mask.iter().zip(&self.features.chain_mask).map(|(m, c)| m * c).collect()
    }

    /// The designed chains' letters of `s`, chains joined by `/` (the native FASTA form).
    pub fn designed_sequence(&self, s: &[u8]) -> String {
        let mut out: Vec<String> = Vec::new();
        for c in &self.designed_chains {
            out.push(
                (0..self.len())
                    .filter(|&i| &self.chain_ids[i] == c)
                    .map(|i| crate::alphabet::letter_of(s[i]))
                    .collect(),
            );
        }
        out.join("/")
    }
}

fn input(e: InputError) -> JobError {
    JobError::Ligand(e.to_string())
}

/// Resolves a residue-id spec (see [`LigandSelection`]) against `st` to `run.py` residue names,
/// in the order given. `what` names the option in errors.
pub fn resolve_ids(st: &LigandStructure, what: &str, spec: &str) -> Result<Vec<String>, JobError> {
    let names = ResidueNames::new(st);
    let chains = st.chains();
    let mut out = Vec::new();
    let items: Vec<&str> = spec.split([' ', ',', '\t', '\n']).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err(JobError::Ligand(format!("{what} \"{spec}\": empty; give residue ids like \"A10 A12-A20 B52A\"")));
    }
    for item in items {
        if !item.contains(|c: char| c.is_ascii_digit()) {
            if !chains.iter().any(|c| c == item) {
                return Err(JobError::Ligand(format!(
                    "{what}: `{item}`: {} has no chain {item} (its chains are: {})",
                    st.file,
                    chains.join(", ")
                )));
            }
            out.extend(st.ids.iter().filter(|id| id.chain == item).map(ToString::to_string));
            continue;
        }
        // A range: a '-' after the first digit (a '-' before it is a negative residue number).
        let first_digit = item.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        match item[first_digit..].find('-').map(|i| i + first_digit) {
            None => {
                names.find(what, item).map_err(input)?;
                out.push(item.to_string());
            }
            Some(dash) => {
                let (a, b) = (&item[..dash], &item[dash + 1..]);
                let chain: String = a.chars().take_while(|c| !c.is_ascii_digit() && *c != '-').collect();
                let b = if b.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    format!("{chain}{b}")
                } else {
                    b.to_string()
                };
                let i = names.find(&format!("{what} `{item}`"), a).map_err(input)?;
                let j = names.find(&format!("{what} `{item}`"), &b).map_err(input)?;
                if st.ids[i].chain != st.ids[j].chain {
                    return Err(JobError::Ligand(format!(
                        "{what}: `{item}`: a range stays within one chain; write {a}-... and {b}-... as two items"
                    )));
                }
                if j < i {
                    return Err(JobError::Ligand(format!(
                        "{what}: `{item}`: {b} comes before {a} in {}; write the range as {b}-{a}",
                        st.file
                    )));
                }
                out.extend((i..=j).map(|k| st.ids[k].to_string()));
            }
        }
    }
    Ok(out)
}

/// Residues (designed, with a full backbone) whose virtual CB lies within `cutoff` Å of a
/// usable context atom of `st`, as residue ids.
pub fn residues_near_context(st: &LigandStructure, designed: &[f32], cutoff: f32) -> Vec<String> {
    if st.context_xyz.is_empty() {
        return Vec::new();
    }
    let x = st.x();
    let mask = st.mask();
    let c2 = cutoff * cutoff;
    (0..st.len())
        .filter(|&i| designed[i] > 0.0 && mask[i] > 0.0)
        .filter(|&i| {
            let cb = virtual_cb(&x[i]);
            st.context_xyz.iter().any(|a| {
                let d: f32 = (0..3).map(|k| (a[k] - cb[k]) * (a[k] - cb[k])).sum();
                d < c2
            })
        })
        .map(|i| st.ids[i].to_string())
        .collect()
}

/// The context atoms the parser keeps and drops, and whether `model` reads them, as notes and
/// warnings for a structure whose designed positions are `designed` (`[L]`). Shared by the native
/// ProteinMPNN path (`reads_context` false).
pub fn context_messages(
    st: &LigandStructure,
    designed: &[f32],
    reads_context: bool,
    model_desc: &str,
    cutoff: f32,
) -> (Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    if reads_context {
        notes.extend(st.notes.iter().map(|n| n.describe(st)));
        match st.context_status() {
            ContextStatus::None => notes.push(format!(
                "{}: no context atoms (no non-protein, non-water atoms): the model runs without ligand context, as \
                 the official code does",
                st.file
            )),
            ContextStatus::AllRemoved => notes.push(format!(
                "{}: none of its {} non-protein, non-water atoms is usable context (hydrogens, unknown elements): \
                 the model runs without ligand context (the official code fails on this structure)",
                st.file,
                st.other_atoms.len()
            )),
            ContextStatus::Present(_) => {}
        }
    } else {
        let near = residues_near_context(st, designed, cutoff);
        if !near.is_empty() {
            let shown: Vec<&str> = near.iter().take(8).map(String::as_str).collect();
            warnings.push(format!(
                "{}: {} context atoms (ligands, metals, nucleic acids) lie within {cutoff} Å of {} designed residue{} \
                 ({}{}), but {model_desc} ignores them: the designs do not depend on them. Use a ligand_mpnn \
                 checkpoint (--model_type ligand_mpnn) to design with them",
                st.file,
                st.context_xyz.len(),
                near.len(),
                if near.len() == 1 { "" } else { "s" },
                shown.join(" "),
                if near.len() > shown.len() { " …" } else { "" }
            ));
        }
    }
    (notes, warnings)
}

/// Reads `path` with LigandMPNN's parser and prepares it for `model`: residues selected by
/// `sel`, context atoms and membrane labels by `opts`. Every bad input is an error naming it.
pub fn prepare(
    model: &LigandModel,
    path: &Path,
    sel: &LigandSelection,
    opts: &LigandOptions,
) -> Result<LigandPrepared, JobError> {
    if !(opts.cutoff_for_score.is_finite() && opts.cutoff_for_score >= 0.0) {
        return Err(JobError::BadValue {
            option: "--ligand_mpnn_cutoff_for_score",
            value: opts.cutoff_for_score.to_string(),
            why: "give a distance in Å such as 8.0".into(),
        });
    }
    let st = read_ligand_structure(
        path,
        &ParseOptions { chains: Vec::new(), parse_atoms_with_zero_occupancy: opts.zero_occupancy },
    )?;
    if st.is_empty() {
        return Err(JobError::Ligand(format!(
            "{}: no protein residues (LigandMPNN's parser found no CA of a protein residue); nothing to design or \
             score",
            st.file
        )));
    }
    let chains = st.chains();
    for c in &sel.chains {
        if !chains.contains(c) {
            return Err(JobError::UnknownChain {
                structure: st.name.clone(),
                option: "--chains",
                chain: c.clone(),
                chains: chains.join(", "),
            });
        }
    }
    let ids = |what: &str, v: &Option<String>| -> Result<String, JobError> {
        Ok(match v {
            Some(s) => resolve_ids(&st, what, s)?.join(" "),
            None => String::new(),
        })
    };
    let fixed = ids("--fixed", &sel.fixed)?;
    let redesign = ids("--redesign", &sel.redesign)?;
    if !fixed.is_empty() && !redesign.is_empty() {
        let r: Vec<&str> = redesign.split(' ').collect();
        if let Some(both) = fixed.split(' ').find(|f| r.contains(f)) {
            return Err(JobError::Ligand(format!(
                "--fixed and --redesign both name {both} of {}: a residue cannot be fixed and redesigned; remove \
                 it from one of them",
                st.name
            )));
        }
    }
    let (mut sym, mut weights) = (String::new(), String::new());
    if let Some(t) = &sel.tied {
        let mut groups = Vec::new();
        for g in t.split('|').filter(|g| !g.trim().is_empty()) {
            let members: Vec<Vec<String>> = g
                .split(',')
                .filter(|m| !m.trim().is_empty())
                .map(|m| resolve_ids(&st, "--tied", m.trim()))
                .collect::<Result<_, _>>()?;
            if members.len() < 2 || members.iter().any(|m| m.len() != members[0].len()) {
                let shown: Vec<String> = members.iter().map(|m| m.len().to_string()).collect();
                return Err(JobError::TiedUnequal {
                    option: "--tied",
                    group: g.to_string(),
                    structure: st.name.clone(),
                    lengths: format!("{} member(s) of {} residues", members.len(), shown.join(", ")),
                });
            }
            for k in 0..members[0].len() {
                groups.push(members.iter().map(|m| m[k].clone()).collect::<Vec<_>>());
            }
        }
        sym = groups.iter().map(|g| g.join(",")).collect::<Vec<_>>().join("|");
        weights = groups.iter().map(|g| vec!["1.0"; g.len()].join(",")).collect::<Vec<_>>().join("|");
    }
    let flags = RunFlags {
        chains_to_design: sel.chains.join(","),
        fixed_residues: fixed,
        redesigned_residues: redesign,
        bias_aa: sel.bias.clone(),
        omit_aa: sel.omit.clone(),
        bias_aa_per_residue: sel.bias_by_residue.clone(),
        omit_aa_per_residue: sel.omit_by_residue.clone(),
        symmetry_residues: sym,
        symmetry_weights: weights,
        homo_oligomer: sel.homo_oligomer,
        transmembrane_buried: opts.transmembrane_buried.clone(),
        transmembrane_interface: opts.transmembrane_interface.clone(),
        global_transmembrane_label: opts.global_transmembrane_label,
    };
    let t = model.model_type();
    let membrane = match t {
        ModelType::PerResidueLabelMembraneMpnn => MembraneLabels::PerResidue,
        ModelType::GlobalLabelMembraneMpnn => MembraneLabels::Global,
        _ => MembraneLabels::None,
    };
    let s = select::selections(&st, &flags, membrane).map_err(input)?;
    let ctx = if t == ModelType::LigandMpnn {
        ContextOptions {
            atom_context_num: model.net.atom_context_num(),
            cutoff_for_score: opts.cutoff_for_score,
            use_atom_context: opts.use_atom_context,
            side_chain_context: opts.side_chain_context,
        }
    } else {
        ContextOptions::without_context()
    };
    let featurized = featurize(&st, &ctx, &s.chain_mask, &s.bias, s.membrane_labels).map_err(input)?;
    let f = featurized.features;
    let designed: Vec<f32> = f.mask.iter().zip(&f.chain_mask).map(|(m, c)| m * c).collect();
    if designed.iter().all(|&d| d == 0.0) {
        return Err(JobError::NothingDesignable {
            structure: st.name.clone(),
            designed: if sel.chains.is_empty() { chains.join(", ") } else { sel.chains.join(", ") },
            free: "--fixed, --redesign, --chains",
        });
    }
    let desc = if t == ModelType::LigandMpnn {
        "ligand_mpnn with --ligand_mpnn_use_atom_context 0".to_string()
    } else {
        format!("the {t} model")
    };
    let (notes, warnings) = context_messages(&st, &designed, model.reads_context(opts), &desc, opts.cutoff_for_score);
    let designed_chains: Vec<String> = if sel.chains.is_empty() {
        chains.clone()
    } else {
        chains.iter().filter(|c| sel.chains.contains(c)).cloned().collect()
    };
    Ok(LigandPrepared {
        name: st.name.clone(),
        residue_ids: st.residue_names(),
        chain_ids: st.ids.iter().map(|id| id.chain.clone()).collect(),
        chains,
        designed_chains,
        symmetry_residues: s.symmetry.groups,
        symmetry_weights: s.symmetry.weights,
        context_atoms: st.context_xyz.len(),
        features: f,
        notes,
        warnings,
    })
}

/// One designed sequence.
#[derive(Debug, Clone)]
pub struct LigandDesign {
    /// Index among the structure's samples in output order (temperature-major).
    pub index: usize,
    pub temperature: f64,
    /// Its number among the samples of its temperature, from 1.
    pub number: usize,
    /// `[L]` letters.
    pub s: Vec<u8>,
    /// `[L, 21]` log-probabilities at each position when it was decoded (× mask·chain_mask).
    pub log_probs: Vec<f32>,
    /// `[L, 20]` what each draw saw.
    pub sampling_probs: Vec<f32>,
    pub decoding_order: Vec<usize>,
    /// `run.py`'s numbers (`overall_confidence`, `ligand_confidence`, `seq_rec`).
    pub confidence: Confidence,
    /// Mean negative log-likelihood over the designed positions (the native `score`).
    pub score: f32,
    /// The same over every position with a backbone (`global_score`).
    pub global_score: f32,
}

fn temperatures_ok(temperatures: &[f64], per_temperature: usize) -> Result<(), JobError> {
    if temperatures.is_empty() || temperatures.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(JobError::BadValue {
            option: "--sampling_temp",
            value: format!("{temperatures:?}"),
            why: "give positive temperatures, like 0.1".into(),
        });
    }
    if per_temperature == 0 {
        return Err(JobError::BadValue {
            option: "--num_seq_per_target",
            value: "0".into(),
            why: "design at least one sequence".into(),
        });
    }
    Ok(())
}

/// `per_temperature` sequences at each temperature (output order: temperature-major). Sample
/// `i` equals batch `i` of `mpnn ligandmpnn run --batch_size 1` with the same seed.
pub fn design(
    model: &LigandModel,
    p: &LigandPrepared,
    temperatures: &[f64],
    per_temperature: usize,
    seed: u64,
) -> Result<Vec<LigandDesign>, JobError> {
    temperatures_ok(temperatures, per_temperature)?;
    design_encoded(model, p, &encode(model, p)?, temperatures, per_temperature, seed)
}

/// [`design`] and [`native_scores`] of one structure with one encoder run (what a design job
/// reports: the designs and the native sequence's scores).
pub fn design_with_native(
    model: &LigandModel,
    p: &LigandPrepared,
    temperatures: &[f64],
    per_temperature: usize,
    seed: u64,
) -> Result<(Vec<LigandDesign>, Scores), JobError> {
    temperatures_ok(temperatures, per_temperature)?;
    let enc = encode(model, p)?;
    let designs = design_encoded(model, p, &enc, temperatures, per_temperature, seed)?;
    let native = score_encoded(model, p, &enc, std::slice::from_ref(&p.features.s), 1, seed)?;
    Ok((designs, native[0][0].0))
}

/// The encoder's output for `p` (its node, edge and context states).
fn encode(model: &LigandModel, p: &LigandPrepared) -> Result<LigandEncoded, JobError> {
    model.net.encode(&p.features).map_err(|e| JobError::Ligand(e.to_string()))
}

fn design_encoded(
    model: &LigandModel,
    p: &LigandPrepared,
    enc: &LigandEncoded,
    temperatures: &[f64],
    per_temperature: usize,
    seed: u64,
) -> Result<Vec<LigandDesign>, JobError> {
    let f = &p.features;
    let sampler = model.net.sampler(enc, f);
    let all: Vec<(usize, f64, usize)> = temperatures
        .iter()
        .enumerate()
        .flat_map(|(ti, &t)| (0..per_temperature).map(move |s| (ti * per_temperature + s, t, s + 1)))
        .collect();
    let design = p.design_mask();
    all.par_iter()
        .map(|&(i, t, number)| {
            let randn = seeded_randn(seed, &p.name, i as u64, f.len());
            let mut chooser = seeded_chooser(seed, &p.name, i as u64);
            let options = SampleOptions {
                temperature: t as f32,
                symmetry_residues: p.symmetry_residues.clone(),
                symmetry_weights: p.symmetry_weights.clone(),
            };
            let s = sampler.sample(&randn, &options, &mut chooser).map_err(|e| JobError::Ligand(e.to_string()))?;
            Ok(LigandDesign {
                index: i,
                temperature: t,
                number,
                score: mean_nll(&s.log_probs, &s.s, &design),
                global_score: mean_nll(&s.log_probs, &s.s, &f.mask),
                confidence: confidence(model.model_type(), f, &s.s, &s.log_probs),
                s: s.s,
                log_probs: s.log_probs,
                sampling_probs: s.sampling_probs,
                decoding_order: s.decoding_order,
            })
        })
        .collect()
}

/// The native sequence's score: one autoregressive pass (order from [`super::order_noise`]
/// pass 0), as the native design FASTA header reports it.
pub fn native_scores(model: &LigandModel, p: &LigandPrepared, seed: u64) -> Result<Scores, JobError> {
    let out = score(model, p, std::slice::from_ref(&p.features.s), 1, seed)?;
    Ok(out[0][0].0)
}

/// One scoring pass: the native scores and the log-probabilities `[L, 21]`.
pub type ScoredPass = (Scores, Vec<f32>);

/// `score.py --autoregressive_score 1 --use_sequence 1` of each sequence, `passes` passes each
/// (pass `k`'s order from [`super::order_noise`]`(seed, NAME, k)`): per sequence, per pass, the
/// native scores and the log-probabilities `[L, 21]`.
pub fn score(
    model: &LigandModel,
    p: &LigandPrepared,
    sequences: &[Vec<u8>],
    passes: usize,
    seed: u64,
) -> Result<Vec<Vec<ScoredPass>>, JobError> {
    score_encoded(model, p, &encode(model, p)?, sequences, passes, seed)
}

fn score_encoded(
    model: &LigandModel,
    p: &LigandPrepared,
    enc: &LigandEncoded,
    sequences: &[Vec<u8>],
    passes: usize,
    seed: u64,
) -> Result<Vec<Vec<ScoredPass>>, JobError> {
    let f = &p.features;
    let design = p.design_mask();
    let noise: Vec<Vec<f32>> = (0..passes).map(|k| super::order_noise(seed, &p.name, k, f.len())).collect();
    sequences
        .iter()
        .map(|seq| {
            let mut g = f.clone();
            g.s = seq.clone();
            noise
                .par_iter()
                .map(|randn| {
                    let out = model
                        .net
                        .score(enc, &g, randn, &p.symmetry_residues, true)
                        .map_err(|e| JobError::Ligand(e.to_string()))?;
                    let sc = Scores {
                        score: mean_nll(&out.log_probs, seq, &design),
                        global_score: mean_nll(&out.log_probs, seq, &f.mask),
                    };
                    Ok((sc, out.log_probs))
                })
                .collect()
        })
        .collect()
}

/// Which per-position probabilities [`probs`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbsKind {
    /// Every position decoded first, seeing no letter (the official `unconditional_probs`):
    /// `single_aa_score(use_sequence=True)` in an order where each position comes first; one pass,
    /// repeated.
    Unconditional,
    /// `score.py --single_aa_score 1 --use_sequence 1` with the pass's decoding order (the
    /// official ProteinMPNN `conditional_probs` code path; a position comes first unless its
    /// `|randn|` is ~10⁴ times another's).
    Conditional,
    /// `score.py --single_aa_score 1 --use_sequence 0`: each position decoded last, seeing every
    /// other native letter (the official `conditional_probs(backbone_only=True)` code path).
    BackboneOnly,
}

/// Per-position log-probabilities `[L, 21]`, `passes` passes (pass `k`'s order from
/// [`super::order_noise`]`(seed, NAME, k)`).
pub fn probs(
    model: &LigandModel,
    p: &LigandPrepared,
    passes: usize,
    seed: u64,
    kind: ProbsKind,
) -> Result<Vec<Vec<f32>>, JobError> {
    let f = &p.features;
    let enc = model.net.encode(f).map_err(|e| JobError::Ligand(e.to_string()))?;
    if kind == ProbsKind::Unconditional {
        // Equal |randn|: every position comes first in its own order.
        let lp = model.net.single_aa_score(&enc, f, &vec![1.0; f.len()], true).log_probs;
        return Ok(vec![lp; passes]);
    }
    Ok((0..passes)
        .into_par_iter()
        .map(|k| {
            let randn = super::order_noise(seed, &p.name, k, f.len());
            model.net.single_aa_score(&enc, f, &randn, kind == ProbsKind::Conditional).log_probs
        })
        .collect())
}
