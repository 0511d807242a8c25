//! [`LigandStructure`] + `run.py`'s selections → [`LigandFeatures`], exactly as the official
//! `featurize()` and `run.py` build the feature dictionary.
//!
//! - `R_idx`: walking the residues in order, every residue whose number equals the previous
//!   residue's (an insertion code) increments a counter added to it and every later residue,
//!   across chains; `R_idx_original` keeps the file numbers.
//! - Atom context (`atom_context_num` M > 0, the `ligand_mpnn` model): the M context atoms
//!   nearest to each residue's virtual CB (computed from N, CA, C in float32 in torch's order of
//!   operations), nearest first, ties by atom order; slots beyond the available atoms are 0 with
//!   `Y_m` = 0; residues without a full backbone see every atom at distance² 1000 and get the
//!   first M atoms in file order (the official choice among those equal keys is whatever torch's
//!   unstable CPU sort returns, x86-simd-sort on AVX2/AVX-512 builds: not reproducible; the
//!   fixtures have no such residue, and every other slot matches them exactly).
//!   `mask_XY` = nearest atom closer than `cutoff_for_score` × `mask` × that atom's mask.
//!   `use_atom_context` false zeroes `Y_m` only (`mask_XY` stays as with context).
//! - No context atoms: the official single zero atom with mask 0 (so `Y_m` and `mask_XY` are 0).
//!   Context atoms present but all removed (only hydrogens, …): the official code crashes; here
//!   the same as without context atoms, with a [`FeatureNote`].
//! - `xyz_37` holds N, CA, C, O only unless side-chain context is on (then every parsed atom).
//! - Models without atom context (M = 0: protein, soluble, membrane): `Y`, `Y_t`, `Y_m` are
//!   empty and `mask_XY` is all 1 (their `ligand_confidence` is taken over mask × chain_mask).

use rayon::prelude::*;

use super::features::LigandFeatures;
use super::parse::{ContextStatus, LigandStructure, BACKBONE37};
use super::select::InputError;
use crate::alphabet::VOCAB;

/// Atom-context settings of a model and run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContextOptions {
    /// M: the checkpoint's `atom_context_num` for `ligand_mpnn`, 0 for models without atom
    /// context.
    pub atom_context_num: usize,
    /// `--ligand_mpnn_cutoff_for_score` (Å, default 8).
    pub cutoff_for_score: f32,
    /// `--ligand_mpnn_use_atom_context` (default on).
    pub use_atom_context: bool,
    /// `--ligand_mpnn_use_side_chain_context` (default off): keep every parsed atom in `xyz_37`.
    pub side_chain_context: bool,
}

impl ContextOptions {
    /// Defaults of `run.py` for a `ligand_mpnn` checkpoint with this `atom_context_num`.
    pub fn ligand(atom_context_num: usize) -> Self {
        ContextOptions { atom_context_num, cutoff_for_score: 8.0, use_atom_context: true, side_chain_context: false }
    }

    /// A model without atom context.
    pub fn without_context() -> Self {
        ContextOptions { atom_context_num: 0, ..ContextOptions::ligand(0) }
    }
}

/// Something featurization did differently from the official code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureNote {
    /// The structure has non-protein, non-water atoms but none is usable (e.g. only hydrogens):
    /// run as without context atoms (the official code fails here).
    AllContextAtomsRemoved { file: String, removed: usize },
}

impl std::fmt::Display for FeatureNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeatureNote::AllContextAtomsRemoved { file, removed } => write!(
                f,
                "{file}: all {removed} non-protein, non-water atoms were removed (hydrogens, unknown elements), so the \
                 model runs without ligand context (the official code fails on this structure)"
            ),
        }
    }
}

/// Features plus the notes on how they were made.
#[derive(Debug, Clone, PartialEq)]
pub struct Featurized {
    pub features: LigandFeatures,
    pub notes: Vec<FeatureNote>,
}

/// The virtual CB from N, CA, C in float32, in torch's order of operations:
/// `-0.58273431·a + 0.56802827·b - 0.54067466·c + CA` with `b = CA - N`, `c = C - CA`,
/// `a = b × c`.
pub fn virtual_cb(x: &[[f32; 3]; 4]) -> [f32; 3] {
    let (n, ca, c) = (x[0], x[1], x[2]);
    let b = [ca[0] - n[0], ca[1] - n[1], ca[2] - n[2]];
    let cc = [c[0] - ca[0], c[1] - ca[1], c[2] - ca[2]];
    let a = [b[1] * cc[2] - b[2] * cc[1], b[2] * cc[0] - b[0] * cc[2], b[0] * cc[1] - b[1] * cc[0]];
    // Python floats (double) that torch casts to float32.
    let (ka, kb, kc) = (-0.58273431_f64 as f32, 0.56802827_f64 as f32, 0.54067466_f64 as f32);
    std::array::from_fn(|k| ((ka * a[k] + kb * b[k]) - kc * cc[k]) + ca[k])
}

/// `featurize()`'s renumbering of residue numbers for insertion codes.
pub fn renumber(r_idx_original: &[i32]) -> Vec<i32> {
    let mut count = 0;
    let mut prev: Option<i32> = None;
    r_idx_original
        .iter()
        .map(|&r| {
            if prev == Some(r) {
                count += 1;
            }
            prev = Some(r);
            r + count
        })
        .collect()
}

/// Nearest-context-atom result for all residues: `Y` [L·M], `Y_t` [L·M], `Y_m` [L·M], and the
/// distance to the nearest atom [L].
pub struct Nearest {
    pub y: Vec<[f32; 3]>,
    pub y_t: Vec<i32>,
    pub y_m: Vec<f32>,
    pub nearest_distance: Vec<f32>,
}

/// The official `get_nearest_neighbours`: for each residue the `m` atoms nearest to `cb`
/// (squared distances in float32, 1000 where the residue mask or the atom mask is 0), stable
/// order (ties by atom index).
pub fn nearest_atoms(cb: &[[f32; 3]], mask: &[f32], y: &[[f32; 3]], y_t: &[i32], y_m: &[i32], m: usize) -> Nearest {
    let l = cb.len();
    let n = y.len();
    let take = m.min(n);
    let mut out = Nearest {
        y: vec![[0.0; 3]; l * m],
        y_t: vec![0; l * m],
        y_m: vec![0.0; l * m],
        nearest_distance: vec![0.0; l],
    };
    // Rows are independent: one per residue, in parallel.
    let rows: Vec<(Vec<usize>, f32)> = (0..l)
        .into_par_iter()
        .map_init(
            || (vec![0f32; n], Vec::with_capacity(n)),
            |(d2, order): &mut (Vec<f32>, Vec<usize>), i| {
                for j in 0..n {
                    d2[j] = if mask[i] * y_m[j] as f32 != 0.0 {
                        let d = [cb[i][0] - y[j][0], cb[i][1] - y[j][1], cb[i][2] - y[j][2]];
                        (d[0] * d[0] + d[1] * d[1]) + d[2] * d[2]
                    } else {
                        1000.0
                    };
                }
                order.clear();
                order.extend(0..n);
                let cmp = |a: &usize, b: &usize| d2[*a].total_cmp(&d2[*b]).then(a.cmp(b));
                if take < n && take > 0 {
                    order.select_nth_unstable_by(take - 1, cmp);
                    order.truncate(take);
                }
                order.sort_by(cmp);
                let nearest = order.first().map_or(0.0, |&j| d2[j].sqrt());
                (order[..take].to_vec(), nearest)
            },
        )
        .collect();
    for (i, (chosen, nearest)) in rows.into_iter().enumerate() {
        out.nearest_distance[i] = nearest;
        for (k, j) in chosen.into_iter().enumerate() {
            out.y[i * m + k] = y[j];
            out.y_t[i * m + k] = y_t[j];
            out.y_m[i * m + k] = y_m[j] as f32;
        }
    }
    out
}

/// Builds the model inputs. `chain_mask` [L] (1 = designed), `bias` [L, 21] and the membrane
/// labels [L] (membrane models only) come from [`super::select`].
pub fn featurize(
    structure: &LigandStructure,
    options: &ContextOptions,
    chain_mask: &[f32],
    bias: &[[f32; VOCAB]],
    membrane_labels: Option<Vec<i32>>,
) -> Result<Featurized, InputError> {
    let l = structure.len();
    let check = |what: &str, n: usize| {
        if n == l {
            Ok(())
        } else {
            Err(InputError::new(
                format!("{}: {what}", structure.file),
                format!("has {n} entries but the structure has {l} residues"),
            ))
        }
    };
    check("chain_mask", chain_mask.len())?;
    check("bias", bias.len())?;
    if let Some(m) = &membrane_labels {
        check("membrane labels", m.len())?;
    }
    let x = structure.x();
    let mask = structure.mask();
    let r_idx_original = structure.r_idx_original();
    let mut notes = Vec::new();
    let m = options.atom_context_num;
    let (y, y_t, y_m, mask_xy) = if m == 0 {
        (Vec::new(), Vec::new(), Vec::new(), vec![1.0; l])
    } else {
        if structure.context_status() == ContextStatus::AllRemoved {
            notes.push(FeatureNote::AllContextAtomsRemoved {
                file: structure.file.clone(),
                removed: structure.other_atoms.len(),
            });
        }
        let (cy, ct, cm) = structure.context_arrays();
        let cb: Vec<[f32; 3]> = x.iter().map(virtual_cb).collect();
        let near = nearest_atoms(&cb, &mask, &cy, &ct, &cm, m);
        let mask_xy: Vec<f32> = (0..l)
            .map(|i| {
                let close = if near.nearest_distance[i] < options.cutoff_for_score { 1.0 } else { 0.0 };
                close * mask[i] * near.y_m[i * m]
            })
            .collect();
        let y_m = if options.use_atom_context { near.y_m } else { vec![0.0; l * m] };
        (near.y, near.y_t, y_m, mask_xy)
    };
    let (xyz_37, xyz_37_m) = if options.side_chain_context {
        (structure.xyz_37.clone(), structure.xyz_37_m.clone())
    } else {
        let mut xyz = vec![[[0f32; 3]; 37]; l];
        let mut xm = vec![[0f32; 37]; l];
        for i in 0..l {
            for k in BACKBONE37 {
                xyz[i][k] = structure.xyz_37[i][k];
                xm[i][k] = structure.xyz_37_m[i][k];
            }
        }
        (xyz, xm)
    };
    let features = LigandFeatures {
        x,
        s: structure.s.clone(),
        mask,
        r_idx: renumber(&r_idx_original),
        r_idx_original,
        chain_labels: structure.chain_labels.clone(),
        chain_mask: chain_mask.to_vec(),
        xyz_37,
        xyz_37_m,
        atom_context_num: m,
        y,
        y_t,
        y_m,
        mask_xy,
        membrane_labels,
        bias: bias.to_vec(),
    };
    Ok(Featurized { features, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_follows_insertion_codes() {
        assert_eq!(renumber(&[1, 2, 2, 2, 3, 1, 1]), vec![1, 2, 3, 4, 5, 3, 4]);
    }

    #[test]
    fn nearest_pads_and_orders() {
        let cb = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
        let y = [[3.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]];
        let n = nearest_atoms(&cb, &[1.0, 0.0], &y, &[6, 7, 8], &[1, 1, 1], 4);
        assert_eq!(&n.y_t[..4], &[7, 8, 6, 0]);
        assert_eq!(&n.y_m[..4], &[1.0, 1.0, 1.0, 0.0]);
        assert_eq!(n.nearest_distance[0], 1.0);
        // A masked residue sees every atom at distance² 1000: atom order.
        assert_eq!(&n.y_t[4..], &[6, 7, 8, 0]);
        assert_eq!(n.nearest_distance[1], 1000f32.sqrt());
    }
}
