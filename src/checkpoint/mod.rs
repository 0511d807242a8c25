//! Checkpoints: official `.pt` files (the zip + pickle layout of `torch.save`) and safetensors,
//! the architecture read off the tensor shapes, and locating / downloading the official weights.

use std::collections::BTreeMap;

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
