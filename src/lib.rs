//! # mpnn — ProteinMPNN in Rust
//!
//! The pipeline is visible from the module tree:
//!
//! structure (PDB / mmCIF / jsonl) → [`featurize`] (official `tied_featurize`) →
//! [`model::features`] (k-NN graph, RBF, positional encodings) → [`model::encoder`] →
//! [`model::decoder`] (forward, unconditional, conditional, incremental sampling) → [`sampler`] →
//! [`job`] (score, probabilities and design as library calls, which the command line and the
//! Python package wrap) → [`output`].
//!
//! Checkpoints (official `.pt` and safetensors) are read by [`checkpoint`]; numeric kernels live
//! behind the small interface in [`kernels`].

pub mod alphabet;
pub mod bench;
pub mod bucket;
pub mod checkpoint;
pub mod cluster;
pub mod device;
pub mod eval;
pub mod featurize;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod inputs;
pub mod job;
pub mod kernels;
pub mod ligand;
pub mod model;
pub mod npz;
pub mod output;
pub mod peak;
pub mod pipeline;
pub mod preset;
pub mod rng;
pub mod sampler;
pub mod spec;
pub mod structure;
