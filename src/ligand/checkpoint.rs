//! LigandMPNN's checkpoint layout: the model type, and the strict check that a file's tensors are
//! exactly those of that type (architecture read off the shapes).
//!
//! The file does not say which model it holds: the official scripts take `--model_type` and load
//! the matching `--checkpoint_<type>` file. The caller gives the type here; the tensors must fit
//! it. `protein_mpnn` and `soluble_mpnn` files are indistinguishable (same layout); the membrane
//! models add `W_v` and a 3-class node embedding; `ligand_mpnn` adds the atom-context stage.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::checkpoint::{expected_tensors, Architecture, Checkpoint, CheckpointError};
use crate::model::ModelError;

/// Input width of `features.node_project_down`: 5 atoms × 16 RBFs + 64 type features + 4 angles.
pub const NODE_PROJECT_IN: usize = 5 * 16 + 64 + 4;
/// One-hot width of an atom type: 120 elements + 19 groups + 8 periods.
pub const ATOM_TYPE_ONE_HOT: usize = 120 + 19 + 8;
/// Output width of `features.type_linear`.
pub const ATOM_TYPE_FEATURES: usize = 64;
/// Membrane label classes (`features.node_embedding` input).
pub const MEMBRANE_CLASSES: usize = 3;

/// The five model types of LigandMPNN's `run.py --model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelType {
    ProteinMpnn,
    LigandMpnn,
    SolubleMpnn,
    PerResidueLabelMembraneMpnn,
    GlobalLabelMembraneMpnn,
}

impl ModelType {
    /// Every model type, in `run.py`'s order.
    pub const ALL: [ModelType; 5] = [
        ModelType::ProteinMpnn,
        ModelType::LigandMpnn,
        ModelType::PerResidueLabelMembraneMpnn,
        ModelType::GlobalLabelMembraneMpnn,
        ModelType::SolubleMpnn,
    ];

    /// The official spelling (`--model_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            ModelType::ProteinMpnn => "protein_mpnn",
            ModelType::LigandMpnn => "ligand_mpnn",
            ModelType::SolubleMpnn => "soluble_mpnn",
            ModelType::PerResidueLabelMembraneMpnn => "per_residue_label_membrane_mpnn",
            ModelType::GlobalLabelMembraneMpnn => "global_label_membrane_mpnn",
        }
    }

    /// `ligand_mpnn`: the atom-context stage (`Y`, `Y_t`, `Y_m`).
    pub fn has_atom_context(self) -> bool {
        self == ModelType::LigandMpnn
    }

    /// The two membrane models (`membrane_per_residue_labels`).
    pub fn is_membrane(self) -> bool {
        matches!(self, ModelType::PerResidueLabelMembraneMpnn | ModelType::GlobalLabelMembraneMpnn)
    }

    /// What a checkpoint's tensors look like: the layout family its keys belong to.
    fn family(self) -> &'static str {
        match self {
            ModelType::ProteinMpnn | ModelType::SolubleMpnn => "protein_mpnn / soluble_mpnn",
            ModelType::LigandMpnn => "ligand_mpnn",
            _ => "membrane (per_residue_label_membrane_mpnn / global_label_membrane_mpnn)",
        }
    }
}

impl fmt::Display for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            format!("unknown model type `{s}`; choose one of {}", ModelType::ALL.map(ModelType::as_str).join(", "))
        })
    }
}

/// Errors loading a LigandMPNN-family model or running it on features that do not fit it.
#[derive(Debug, thiserror::Error)]
pub enum LigandModelError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: this is not a {expected} checkpoint: {problem}")]
    WrongType { path: String, expected: ModelType, problem: String },
    #[error("{path}: {problem}")]
    Layout { path: String, problem: String },
    #[error("the features do not fit the model: {0}")]
    Features(String),
}

/// The architecture of a LigandMPNN-family checkpoint as read off its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LigandArchitecture {
    pub model_type: ModelType,
    /// The protein part: hidden width, encoder/decoder layers, k (`num_edges`).
    pub base: Architecture,
    /// `atom_context_num` (ligand_mpnn; 0 otherwise).
    pub atom_context_num: usize,
    /// Context layers (`context_encoder_layers` = `y_context_encoder_layers`; ligand_mpnn).
    pub context_layers: usize,
}

/// Which layout family the keys of `ckpt` belong to (for error messages).
fn detected_family(ckpt: &Checkpoint) -> &'static str {
    let has = |n: &str| ckpt.tensors.contains_key(n);
    if has("features.y_nodes.weight") || has("context_encoder_layers.0.W1.weight") {
        ModelType::LigandMpnn.family()
    } else if has("features.node_embedding.weight") || has("W_v.weight") {
        ModelType::PerResidueLabelMembraneMpnn.family()
    } else {
        ModelType::ProteinMpnn.family()
    }
}

/// The `(name, shape)` list of the tensors a `model_type` checkpoint holds beyond the protein part.
pub fn extra_tensors(model_type: ModelType, hidden: usize, context_layers: usize) -> Vec<(String, Vec<usize>)> {
    let h = hidden;
    let mut v: Vec<(String, Vec<usize>)> = Vec::new();
    let lin = |v: &mut Vec<(String, Vec<usize>)>, p: &str, out: usize, inp: usize, bias: bool| {
        v.push((format!("{p}.weight"), vec![out, inp]));
        if bias {
            v.push((format!("{p}.bias"), vec![out]));
        }
    };
    let norm = |v: &mut Vec<(String, Vec<usize>)>, p: &str| {
        v.push((format!("{p}.weight"), vec![h]));
        v.push((format!("{p}.bias"), vec![h]));
    };
    if model_type.is_membrane() {
        lin(&mut v, "W_v", h, h, true);
        lin(&mut v, "features.node_embedding", h, MEMBRANE_CLASSES, false);
        norm(&mut v, "features.norm_nodes");
    }
    if model_type.has_atom_context() {
        lin(&mut v, "features.node_project_down", h, NODE_PROJECT_IN, true);
        norm(&mut v, "features.norm_nodes");
        lin(&mut v, "features.type_linear", ATOM_TYPE_FEATURES, ATOM_TYPE_ONE_HOT, true);
        lin(&mut v, "features.y_nodes", h, ATOM_TYPE_ONE_HOT, false);
        lin(&mut v, "features.y_edges", h, crate::model::NUM_RBF, false);
        norm(&mut v, "features.norm_y_edges");
        norm(&mut v, "features.norm_y_nodes");
        for p in ["W_v", "W_c", "W_nodes_y", "W_edges_y"] {
            lin(&mut v, p, h, h, true);
        }
        lin(&mut v, "V_C", h, h, false);
        norm(&mut v, "V_C_norm");
        for (stem, edge_in) in [("context_encoder_layers", 2 * h), ("y_context_encoder_layers", h)] {
            for i in 0..context_layers {
                let p = format!("{stem}.{i}");
                lin(&mut v, &format!("{p}.W1"), h, h + edge_in, true);
                lin(&mut v, &format!("{p}.W2"), h, h, true);
                lin(&mut v, &format!("{p}.W3"), h, h, true);
                norm(&mut v, &format!("{p}.norm1"));
                norm(&mut v, &format!("{p}.norm2"));
                lin(&mut v, &format!("{p}.dense.W_in"), 4 * h, h, true);
                lin(&mut v, &format!("{p}.dense.W_out"), h, 4 * h, true);
            }
        }
    }
    v
}

fn shape_of(ckpt: &Checkpoint, name: &str) -> Option<Vec<usize>> {
    ckpt.tensors.get(name).map(|t| t.shape.clone())
}

/// Reads the architecture of a `model_type` checkpoint off its tensors and checks that the file
/// holds exactly that model's tensors (presence, shapes, nothing extra).
pub fn architecture(ckpt: &Checkpoint, model_type: ModelType) -> Result<LigandArchitecture, LigandModelError> {
    let path = ckpt.source.clone();
    let layout = |problem: String| LigandModelError::Layout { path: path.clone(), problem };
    let wrong = |problem: String| LigandModelError::WrongType {
        path: path.clone(),
        expected: model_type,
        problem: format!("{problem} (its tensors look like a {} checkpoint)", detected_family(ckpt)),
    };
    let has = |n: &str| ckpt.tensors.contains_key(n);
    // The type's signature tensors first, so a file of another type gets a clear message.
    match model_type {
        ModelType::LigandMpnn => {
            for n in ["features.y_nodes.weight", "context_encoder_layers.0.W1.weight"] {
                if !has(n) {
                    return Err(wrong(format!("it has no `{n}`")));
                }
            }
        }
        t if t.is_membrane() => {
            for n in ["features.node_embedding.weight", "W_v.weight"] {
                if !has(n) {
                    return Err(wrong(format!("it has no `{n}`")));
                }
            }
            if has("features.y_nodes.weight") {
                return Err(wrong("it has the ligand atom-context tensors (`features.y_nodes.weight`, …)".into()));
            }
        }
        _ => {
            for n in ["features.y_nodes.weight", "features.node_embedding.weight", "W_v.weight"] {
                if has(n) {
                    return Err(wrong(format!("it has `{n}`, which protein_mpnn / soluble_mpnn models do not")));
                }
            }
        }
    }
    let hidden = match shape_of(ckpt, "W_out.weight") {
        Some(s) if s.len() == 2 && s[0] == crate::alphabet::VOCAB && s[1] > 0 => s[1],
        s => {
            return Err(layout(format!(
                "tensor `W_out.weight` (which gives the hidden width): expected [21, H], found {s:?}"
            )))
        }
    };
    let count = |stem: &str| (0..).take_while(|i| has(&format!("{stem}.{i}.W1.weight"))).count();
    let (encoder_layers, decoder_layers) = (count("encoder_layers"), count("decoder_layers"));
    if encoder_layers == 0 || decoder_layers == 0 {
        return Err(layout(format!(
            "found {encoder_layers} encoder and {decoder_layers} decoder layers; at least one of each is needed"
        )));
    }
    if ckpt.num_edges == 0 {
        return Err(layout("num_edges is 0; the model needs k ≥ 1 neighbours".into()));
    }
    let (atom_context_num, context_layers) = if model_type.has_atom_context() {
        let n = count("context_encoder_layers");
        let ny = count("y_context_encoder_layers");
        if n != ny {
            return Err(layout(format!(
                "{n} context_encoder_layers but {ny} y_context_encoder_layers; they come in pairs"
            )));
        }
        match ckpt.atom_context_num {
            Some(m) if m > 0 => (m, n),
            _ => {
                return Err(layout(
                    "the checkpoint dict has no (positive) `atom_context_num`, which ligand_mpnn checkpoints carry"
                        .into(),
                ))
            }
        }
    } else {
        (0, 0)
    };
    let base = Architecture {
        hidden,
        encoder_layers,
        decoder_layers,
        k: ckpt.num_edges,
        ca_only: false,
        vocab: crate::alphabet::VOCAB,
    };
    let mut expected = expected_tensors(&base);
    expected.extend(extra_tensors(model_type, hidden, context_layers));
    for (name, exp) in &expected {
        let found = shape_of(ckpt, name);
        if found.as_ref() != Some(exp) {
            return Err(layout(format!(
                "tensor `{name}`: expected shape {exp:?} for a {model_type} model with hidden width {hidden}, \
                 {encoder_layers}+{decoder_layers} layers, found {}",
                found.map_or("nothing".to_string(), |s| format!("{s:?}"))
            )));
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let extra: Vec<&str> = ckpt.tensors.keys().map(String::as_str).filter(|n| !known.contains(n)).collect();
    if !extra.is_empty() {
        let shown: Vec<&str> = extra.iter().take(8).copied().collect();
        return Err(layout(format!(
            "{} tensor(s) that a {model_type} model does not have: {}{}",
            extra.len(),
            shown.join(", "),
            if extra.len() > shown.len() { ", …" } else { "" }
        )));
    }
    Ok(LigandArchitecture { model_type, base, atom_context_num, context_layers })
}
