//! safetensors checkpoints: tensors under the official parameter names, `num_edges` and
//! `noise_level` in the `__metadata__` map (as strings). F32, F16 and BF16 tensors are accepted
//! and converted to f32; files are written as F32.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensors, View};

use super::torch::{bf16_to_f32, f16_to_f32};
use super::{Checkpoint, CheckpointError, Tensor};

/// Metadata key for the number of neighbours.
pub const META_NUM_EDGES: &str = "num_edges";
/// Metadata key for the training noise level.
pub const META_NOISE_LEVEL: &str = "noise_level";
/// Metadata key of LigandMPNN's `atom_context_num` (written only when the checkpoint has one).
pub const META_ATOM_CONTEXT_NUM: &str = "atom_context_num";

/// True when `bytes` start like a safetensors file (u64 header length, then a JSON object).
pub fn looks_like_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 10 {
        return false;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(a);
    n >= 2 && n <= (bytes.len() as u64 - 8) && bytes[8] == b'{'
}

/// Parse a safetensors file held in memory. `source` names the file in errors.
pub fn load_safetensors_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint, CheckpointError> {
    let serr = |reason: String| CheckpointError::Safetensors { path: source.to_string(), reason };
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| serr(format!("bad header ({e:?}); the file is truncated or corrupted")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| serr(format!("{e:?}; the file is truncated or corrupted")))?;
    let empty = HashMap::new();
    let md = meta.metadata().as_ref().unwrap_or(&empty);
    let field = |key: &str| {
        md.get(key).ok_or_else(|| {
            serr(format!(
                "the __metadata__ map has no `{key}` entry; mpnn needs `num_edges` and \
                 `noise_level` there (save the file with mpnn, or add them as strings)"
            ))
        })
    };
    let ne = field(META_NUM_EDGES)?;
    let num_edges: usize =
        ne.trim().parse().map_err(|_| serr(format!("__metadata__ num_edges = {ne:?} is not an integer")))?;
    let nl = field(META_NOISE_LEVEL)?;
    let noise_level: f64 =
        nl.trim().parse().map_err(|_| serr(format!("__metadata__ noise_level = {nl:?} is not a number")))?;

    let atom_context_num = match md.get(META_ATOM_CONTEXT_NUM) {
        Some(v) => Some(v.trim().parse().map_err(|_| {
            serr(format!("__metadata__ {META_ATOM_CONTEXT_NUM} = {v:?} is not a non-negative integer"))
        })?),
        None => None,
    };

    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F16 => raw.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            Dtype::BF16 => raw.chunks_exact(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            other => {
                return Err(serr(format!("tensor `{name}` has dtype {other:?}; only F32, F16 and BF16 are supported")))
            }
        };
        tensors.insert(name, Tensor { shape: view.shape().to_vec(), data });
    }
    Ok(Checkpoint { source: source.to_string(), num_edges, noise_level, atom_context_num, tensors })
}

struct F32View<'a>(&'a Tensor);

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.data.iter().flat_map(|f| f.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        self.0.data.len() * 4
    }
}

/// Serialize a checkpoint to safetensors bytes (all tensors F32).
pub fn to_safetensors_bytes(ckpt: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    for (name, t) in &ckpt.tensors {
        let n: usize = t.shape.iter().product();
        if n != t.data.len() {
            return Err(CheckpointError::Invalid(format!(
                "cannot save {}: tensor `{name}` has shape {:?} but {} values",
                ckpt.source,
                t.shape,
                t.data.len()
            )));
        }
    }
    let mut meta = HashMap::new();
    meta.insert(META_NUM_EDGES.to_string(), ckpt.num_edges.to_string());
    // Rust's shortest round-trip formatting: parses back to the identical f64.
    meta.insert(META_NOISE_LEVEL.to_string(), format!("{:?}", ckpt.noise_level));
    if let Some(n) = ckpt.atom_context_num {
        meta.insert(META_ATOM_CONTEXT_NUM.to_string(), n.to_string());
    }
    meta.insert("format".to_string(), "mpnn-proteinmpnn".to_string());
    let views = ckpt.tensors.iter().map(|(n, t)| (n.as_str(), F32View(t)));
    ::safetensors::serialize(views, &Some(meta))
        .map_err(|e| CheckpointError::Invalid(format!("cannot serialize {} to safetensors: {e:?}", ckpt.source)))
}

/// Write `ckpt` as a safetensors file, atomically (temp file in the same folder + rename).
pub fn save_safetensors(ckpt: &Checkpoint, path: &Path) -> Result<(), CheckpointError> {
    let bytes = to_safetensors_bytes(ckpt)?;
    crate::structure::write_atomic(path, &bytes).map_err(|e| CheckpointError::io(path, "writing", e))
}
