//! Checkpoints: official `.pt` files (the zip + pickle layout of `torch.save`) and safetensors,
//! the architecture read off the tensor shapes, and locating / downloading the official weights.
//!
//! * [`load`] reads a file by content (zip → `torch.save`, else safetensors); legacy (pre-1.6)
//!   torch files get a clear "re-save / convert" error.
//! * [`Checkpoint::architecture`] infers hidden width, layer counts, k and CA-only, then checks
//!   every tensor of the official layout for presence and exact shape. Unexpected extra tensors
//!   are an **error** (not a warning): they mean a model mpnn does not implement.
//! * [`save_safetensors`] writes F32 tensors under the official names, with `num_edges` and
//!   `noise_level` as strings in `__metadata__`, atomically.
//! * [`locate::resolve`] finds (or downloads and verifies against pinned git blob ids) the
//!   official weights; [`ligand_weights::fetch_ligand_weights`] fetches the LigandMPNN family's
//!   published files, checks that they fit the model type, and records their SHA-256.

use std::collections::BTreeMap;
use std::path::Path;

mod arch;
mod error;
pub mod ligand_weights;
pub mod locate;
pub mod pickle;
pub mod safetensors;
pub mod torch;

pub use self::safetensors::{save_safetensors, to_safetensors_bytes};
pub use arch::{expected_tensors, EDGE_IN_CA};
pub use error::CheckpointError;
pub use ligand_weights::{
    fetch_ligand_weights, fetch_ligand_weights_with, official_ligand_file, LigandLocateEnv, LigandWeights,
};
pub use locate::{download_checked, download_verified, git_blob_id, resolve, resolve_with, LocateEnv, WeightsQuery};

/// A float32 tensor from a checkpoint, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A loaded checkpoint: the official dict's `num_edges`, `noise_level` and `model_state_dict`
/// (parameter name → tensor, with the official parameter names).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Where it came from (for error messages).
    pub source: String,
    pub num_edges: usize,
    pub noise_level: f64,
    /// LigandMPNN's `atom_context_num` (ligand atoms per residue), where the file has it.
    pub atom_context_num: Option<usize>,
    pub tensors: BTreeMap<String, Tensor>,
}

/// The model architecture, inferred from the tensors (never stored in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture {
    /// Hidden width (node = edge = hidden in all official models).
    pub hidden: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    /// Neighbours per residue the checkpoint was trained with (`num_edges`).
    pub k: usize,
    /// CA-only model (`CA_ProteinFeatures`, `W_v`).
    pub ca_only: bool,
    /// Output letters (21).
    pub vocab: usize,
}

/// Load a checkpoint, dispatching on the content (not the extension): a zip archive (`PK`) is
/// read as a `torch.save` file, a pickle as a legacy torch file (clear error), anything else as
/// safetensors. Only the file format is checked here; call [`Checkpoint::architecture`] to
/// validate the layout.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    if path.is_dir() {
        return Err(CheckpointError::Invalid(format!(
            "{}: this is a folder, not a checkpoint; pass the weights file itself (a .pt or .safetensors file)",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::io(path, "reading the checkpoint", e))?;
    load_bytes(&bytes, &path.display().to_string())
}

/// [`load`] for bytes already in memory; `source` names them in errors.
/// Weights holding NaN or infinite values are refused, naming the first such tensor.
pub fn load_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint, CheckpointError> {
    let ckpt = if bytes.starts_with(b"PK") {
        torch::load_torch_bytes(bytes, source)?
    } else if torch::is_legacy_torch(bytes) {
        return Err(CheckpointError::LegacyTorch { path: source.to_string() });
    } else if self::safetensors::looks_like_safetensors(bytes) {
        self::safetensors::load_safetensors_bytes(bytes, source)?
    } else {
        return Err(CheckpointError::UnknownFormat { path: source.to_string() });
    };
    ckpt.check_finite()?;
    Ok(ckpt)
}

impl Checkpoint {
    /// Refuses NaN or infinite weights: the first such tensor (by name) is named with its count
    /// of non-finite values, and the other affected tensors are counted.
    pub fn check_finite(&self) -> Result<(), CheckpointError> {
        let bad: Vec<(&String, usize, usize)> = self
            .tensors
            .iter()
            .map(|(name, t)| (name, t.data.iter().filter(|v| !v.is_finite()).count(), t.data.len()))
            .filter(|&(_, n, _)| n > 0)
            .collect();
        let Some(&(tensor, count, total)) = bad.first() else { return Ok(()) };
        let others = match bad.len() - 1 {
            0 => String::new(),
            1 => format!(", and 1 more tensor (`{}`) has some too", bad[1].0),
            n => format!(", and {n} more tensors have some too"),
        };
        Err(CheckpointError::NonFinite { path: self.source.clone(), tensor: tensor.clone(), count, total, others })
    }
}
