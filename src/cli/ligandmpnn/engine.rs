//! The seam between the command line and the LigandMPNN library: load a checkpoint, prepare a
//! structure (parse with ProDy's rules → `run.py`'s residue selection → `featurize`), sample,
//! score. The command line (`run.rs`, `score.rs`) only talks to these functions.

use anyhow::{bail, Result};

use super::args::ModelType;
use super::inputs::Request;
use mpnn::ligand::output::pdb::PdbAtom;
use mpnn::ligand::output::torch_save::Dtype;
use mpnn::ligand::LigandFeatures;

/// A loaded LigandMPNN-family model.
pub struct Model {
    pub model_type: ModelType,
    /// `atom_context_num` of a ligand_mpnn checkpoint (1 for the others, as `run.py` sets it).
    pub atom_context_num: usize,
    /// Neighbours per residue (`num_edges`).
    pub k: usize,
}

/// How structures are parsed and featurized (the flags `parse_PDB` and `featurize` take).
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// `--parse_these_chains_only` (empty: all chains).
    pub chains: Vec<String>,
    /// `--ligand_mpnn_use_side_chain_context 1` (ligand_mpnn only): parse all 37 atoms.
    pub side_chain_context: bool,
    /// `--parse_atoms_with_zero_occupancy 1`.
    pub zero_occupancy: bool,
    /// `--ligand_mpnn_use_atom_context`.
    pub use_atom_context: bool,
    /// `--ligand_mpnn_cutoff_for_score`.
    pub cutoff_for_score: f64,
    /// `--global_transmembrane_label` (global_label_membrane_mpnn).
    pub global_label: i64,
}

/// One structure ready for the model, with what the output files need.
pub struct Prepared {
    pub features: LigandFeatures,
    /// `run.py` residue names (chain + number + insertion code), one per residue.
    pub residue_ids: Vec<String>,
    /// Chain id of each residue.
    pub chain_ids: Vec<String>,
    /// Symmetry groups (0-based positions) and weights, as `run.py` remapped them (empty: none).
    pub symmetry_residues: Vec<Vec<usize>>,
    pub symmetry_weights: Vec<Vec<f32>>,
    /// Integer type of the saved `chain_mask`.
    pub chain_mask_dtype: Dtype,
    /// ProDy's `backbone` selection (file order) and, per atom, its residue (None: no residue,
    /// e.g. a residue without CA).
    pub backbone_atoms: Vec<PdbAtom>,
    pub backbone_residue: Vec<Option<usize>>,
    /// ProDy's `not protein and not water` selection.
    pub ligand_atoms: Vec<PdbAtom>,
    /// The input had ANISOU records.
    pub has_anisou: bool,
}

/// One designed sequence with what `model.sample` returns for it.
pub struct Design {
    /// [L] alphabet indices.
    pub s: Vec<u8>,
    /// [L·20]
    pub sampling_probs: Vec<f32>,
    /// [L·21]
    pub log_probs: Vec<f32>,
    /// [L]
    pub decoding_order: Vec<usize>,
}

/// Which score function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreKind {
    Autoregressive,
    SingleAa,
}

/// One scoring pass.
pub struct ScorePass {
    /// [L·21]
    pub logits: Vec<f32>,
    /// [L·21]
    pub log_probs: Vec<f32>,
    /// [L] (autoregressive) or [L][L] flattened (single_aa: per position, its order).
    pub decoding_order: Vec<usize>,
}

/// The random stream of a run: one generator seeded once, continued across batches and
/// structures (as `torch.manual_seed` once per process).
pub struct RunRng {
    pub seed: u64,
}

const NOT_WIRED: &str = "the LigandMPNN network and parser are not wired into the command line yet \
     (the command line, its checks and its writers are ready)";

impl Model {
    /// Loads `path` as `model_type`.
    pub fn load(model_type: ModelType, path: &str) -> Result<Model> {
        let _ = (model_type, path);
        bail!("{NOT_WIRED}")
    }
}

/// Parse → select → featurize one structure.
pub fn prepare(model: &Model, request: &Request, opts: &ParseOptions) -> Result<Prepared> {
    let _ = (model, request, opts);
    bail!("{NOT_WIRED}")
}

/// `batch_size` designs of one batch (one `model.sample` call).
pub fn sample(model: &Model, p: &Prepared, temperature: f64, batch_size: usize, rng: &mut RunRng) -> Result<Vec<Design>> {
    let _ = (model, p, temperature, batch_size, rng);
    bail!("{NOT_WIRED}")
}

/// `batch_size` passes of one score call.
pub fn score(
    model: &Model,
    p: &Prepared,
    kind: ScoreKind,
    use_sequence: bool,
    batch_size: usize,
    rng: &mut RunRng,
) -> Result<Vec<ScorePass>> {
    let _ = (model, p, kind, use_sequence, batch_size, rng);
    bail!("{NOT_WIRED}")
}
