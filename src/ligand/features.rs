//! [`LigandFeatures`]: one structure's inputs to a LigandMPNN-family model, the official
//! `feature_dict` after `featurize()` and `run.py`'s completion (batch dimension dropped).
//!
//! Every field mirrors an array of `../shared/parity/ligand/CASE.npz` of the same name, so the
//! parser (which produces it) and the network (which consumes it) can each be tested against the
//! fixtures alone. Row-major flat vectors; `L` residues, `M` = the model's `atom_context_num`.

/// Inputs of one structure to a LigandMPNN-family model.
#[derive(Debug, Clone, PartialEq)]
pub struct LigandFeatures {
    /// `X` [L, 4, 3]: N, CA, C, O coordinates (zeros where missing).
    pub x: Vec<[[f32; 3]; 4]>,
    /// `S` [L]: native residues in the 21-letter alphabet `ACDEFGHIKLMNPQRSTVWYX` (20 = X).
    pub s: Vec<u8>,
    /// `mask` [L]: 1 where N, CA, C and O are all present.
    pub mask: Vec<f32>,
    /// `R_idx` [L]: residue numbers after `featurize`'s insertion-code renumbering.
    pub r_idx: Vec<i32>,
    /// `R_idx_original` [L]: residue numbers as written in the file.
    pub r_idx_original: Vec<i32>,
    /// `chain_labels` [L]: chain index in order of first appearance.
    pub chain_labels: Vec<i32>,
    /// `chain_mask` [L]: 1 = designed, 0 = fixed.
    pub chain_mask: Vec<f32>,
    /// `xyz_37` [L, 37, 3]: atom37 coordinates (N, CA, C, O only unless side-chain context is on).
    pub xyz_37: Vec<[[f32; 3]; 37]>,
    /// `xyz_37_m` [L, 37]: atom37 mask.
    pub xyz_37_m: Vec<[f32; 37]>,
    /// `M`: context atoms kept per residue (the model's `atom_context_num`; 0 for models without
    /// atom context, in which case `y`, `y_t`, `y_m` are empty).
    pub atom_context_num: usize,
    /// `Y` [L, M, 3]: the M nearest context atoms to each residue's virtual CB.
    pub y: Vec<[f32; 3]>,
    /// `Y_t` [L, M]: their element numbers (1-based index in the model's element list; 0 = empty).
    pub y_t: Vec<i32>,
    /// `Y_m` [L, M]: 1 where a context atom fills the slot (all 0 without atom context).
    pub y_m: Vec<f32>,
    /// `mask_XY` [L]: 1 where the nearest context atom lies within `ligand_mpnn_cutoff_for_score`.
    pub mask_xy: Vec<f32>,
    /// `membrane_per_residue_labels` [L]: membrane models only (2 buried, 1 interface, 0 neither).
    pub membrane_labels: Option<Vec<i32>>,
    /// `bias` [L, 21]: `-1e8·omit + bias + per-residue bias - 1e8·per-residue omit`.
    pub bias: Vec<[f32; 21]>,
}

impl LigandFeatures {
    /// Number of residues `L`.
    pub fn len(&self) -> usize {
        self.s.len()
    }

    /// True when the structure has no residues.
    pub fn is_empty(&self) -> bool {
        self.s.is_empty()
    }
}
