//! The LigandMPNN family (issue 16): `ligand_mpnn`, `protein_mpnn`, `soluble_mpnn` and the two
//! membrane models in LigandMPNN's checkpoint layout, with LigandMPNN's parsing semantics.
//!
//! Pipeline, as in the rest of the crate: structure (ProDy semantics) → [`LigandFeatures`] (the
//! official `feature_dict` as `run.py` completes it) → graph + atom-context features → encoder
//! (+ context layers) → decoder / sampler → outputs. The network reuses `crate::model`'s layers and
//! kernels; this module adds the context stage, not a second copy of the model.
//!
//! - [`checkpoint`]: [`ModelType`] and the strict check of LigandMPNN's checkpoint layout
//!   (architecture read off the tensors, the file checked against the type the caller names);
//! - [`context`]: the atom-context stage of `ligand_mpnn` (atom features, side-chain context,
//!   context layers as [`crate::model::layers::EdgeSetLayer`]s);
//! - [`network`]: [`LigandMpnn`] (ProteinMPNN's features / encoder / decoder + the type's node
//!   stage) with `encode`, `score` and `single_aa_score`;
//! - [`sample`]: `sample()` with pluggable draws and `run.py`'s confidence numbers.

pub mod checkpoint;
pub mod context;
pub mod features;
pub mod featurize;
pub mod network;
pub mod output;
pub mod parse;
pub mod sample;
pub mod select;

pub use checkpoint::{LigandModelError, ModelType};
pub use features::LigandFeatures;
pub use network::{LigandEncoded, LigandMpnn, ScoreOutput};
pub use sample::{LigandSample, LigandSampler, SampleOptions};
