//! Featurization: the official `tied_featurize`, turning a [`Protein`] plus design constraints
//! into the per-residue arrays the model reads, and [`Batch`], several of them padded together.
//!
//! Chain order follows the official code exactly: the designed ("masked") chains sorted, then the
//! fixed ("visible") chains sorted; residue indices are global positions plus 100 per chain.

use std::collections::BTreeMap;

use crate::alphabet::{self, VOCAB};
use crate::structure::Protein;

/// Which chains are designed and which are kept fixed (the official `chain_id_jsonl` pair).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainSelection {
    pub designed: Vec<String>,
    pub fixed: Vec<String>,
}

impl ChainSelection {
    /// Every chain designed (the official default when no chain dictionary is given).
    pub fn all(protein: &Protein) -> Self {
        ChainSelection { designed: protein.chain_ids(), fixed: Vec::new() }
    }
    /// Design `designed`, keep every other chain of `protein` fixed (`--pdb_path_chains`).
    pub fn designing(protein: &Protein, designed: &[String]) -> Self {
        let fixed = protein.chain_ids().into_iter().filter(|c| !designed.contains(c)).collect();
        ChainSelection { designed: designed.to_vec(), fixed }
    }
}

/// PSSM rows of one chain (official `pssm_dict[name][chain]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainPssm {
    pub coef: Vec<f32>,
    pub bias: Vec<[f32; VOCAB]>,
    pub log_odds: Vec<[f32; VOCAB]>,
}

/// One member of a tied group: a chain, its 1-based positions and optional per-position weights.
#[derive(Debug, Clone, PartialEq)]
pub struct TiedMember {
    pub chain: String,
    pub positions: Vec<i64>,
    pub betas: Option<Vec<f32>>,
}

/// `(1-based positions, letters to omit there)` items of one chain.
pub type OmitList = Vec<(Vec<i64>, String)>;

/// Per-structure design constraints in the official dictionaries' terms (chain → 1-based
/// residue positions within the chain).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    pub fixed_positions: Option<BTreeMap<String, Vec<i64>>>,
    /// chain → list of (positions, letters to omit there)
    pub omit_aa: Option<BTreeMap<String, OmitList>>,
    pub pssm: Option<BTreeMap<String, ChainPssm>>,
    pub bias_by_res: Option<BTreeMap<String, Vec<[f32; VOCAB]>>>,
    pub tied: Option<Vec<Vec<TiedMember>>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FeaturizeError {
    #[error("{name}: chain `{chain}` is not in the structure (its chains are: {available}); fix the chain list")]
    UnknownChain { name: String, chain: String, available: String },
    #[error("{name}: chain `{chain}` is listed as both designed and fixed; list it once")]
    ChainTwice { name: String, chain: String },
    #[error("{name}: no chains selected; name at least one chain to design")]
    NoChains { name: String },
    #[error("{name}: {what} position {position} is outside chain {chain} (it has residues 1-{len}); positions are 1-based within the chain")]
    PositionOutOfRange { name: String, what: String, chain: String, position: i64, len: usize },
    #[error("{name}: {what} for chain {chain} has {found} rows but the chain has {len} residues; give one row per residue of the chain")]
    WrongLength { name: String, what: String, chain: String, found: usize, len: usize },
    #[error("{name}: letter `{letter}` in {what} is not one of {alphabet}")]
    BadLetter { name: String, what: String, letter: char, alphabet: String },
    #[error("{name}: tied group {group} has members of unequal length ({lengths}); every chain in a group needs the same number of positions")]
    TiedUnequal { name: String, group: usize, lengths: String },
}

/// One structure's features (unpadded), the arrays of the official `tied_featurize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub name: String,
    pub ca_only: bool,
    /// `[L, 4, 3]` (CA-only: `[L, 3]`), missing coordinates set to 0.
    pub x: Vec<f32>,
    /// Native sequence indices over `ACDEFGHIKLMNPQRSTVWYX`.
    pub s: Vec<u8>,
    /// 1 where the residue's backbone (CA for CA-only) is complete.
    pub mask: Vec<f32>,
    /// 1 for residues of designed chains.
    pub chain_m: Vec<f32>,
    /// 0 at fixed positions, 1 elsewhere.
    pub chain_m_pos: Vec<f32>,
    /// Chain label, 1-based in chain order.
    pub chain_encoding: Vec<i64>,
    pub residue_idx: Vec<i64>,
    /// `[L, 21]`
    pub omit_aa_mask: Vec<f32>,
    pub pssm_coef: Vec<f32>,
    /// `[L, 21]`
    pub pssm_bias: Vec<f32>,
    /// `[L, 21]`
    pub pssm_log_odds: Vec<f32>,
    /// `[L, 21]`
    pub bias_by_res: Vec<f32>,
    /// Tied groups as 0-based positions.
    pub tied_positions: Vec<Vec<usize>>,
    pub tied_beta: Vec<f32>,
    /// Chains in model order (`letter_list`).
    pub chain_order: Vec<String>,
    /// Designed chains in model order (`masked_list`) and their lengths.
    pub masked_chains: Vec<String>,
    pub masked_chain_lengths: Vec<usize>,
    /// Fixed chains in model order (`visible_list`).
    pub visible_chains: Vec<String>,
    /// `(chain, start, end)` ranges in model order.
    pub chain_ranges: Vec<(String, usize, usize)>,
}

impl Features {
    pub fn len(&self) -> usize {
        self.s.len()
    }
    pub fn is_empty(&self) -> bool {
        self.s.is_empty()
    }
    /// Atoms per residue in `x` (4, or 1 for CA-only).
    pub fn atoms(&self) -> usize {
        if self.ca_only {
            1
        } else {
            4
        }
    }
    /// Designed positions (as `A12`: chain, 1-based position) where the letters omitted
    /// everywhere (`global_omit`, 1 = omitted) and at the position (`omit_aa_mask`) leave none of
    /// the 20 standard letters to sample.
    pub fn fully_omitted(&self, global_omit: &[f32; VOCAB]) -> Vec<String> {
        let design = self.design_mask();
        let mut out = Vec::new();
        for (chain, start, end) in &self.chain_ranges {
            for (r, &m) in design[*start..*end].iter().enumerate() {
                let i = start + r;
                let row = &self.omit_aa_mask[i * VOCAB..(i + 1) * VOCAB];
                let open = (0..alphabet::UNKNOWN as usize).any(|a| row[a] == 0.0 && global_omit[a] == 0.0);
                if m > 0.0 && !open {
                    out.push(format!("{chain}{}", r + 1));
                }
            }
        }
        out
    }

    /// `chain_M * chain_M_pos * mask`: the positions that are actually designed.
    pub fn design_mask(&self) -> Vec<f32> {
        (0..self.len()).map(|i| self.chain_m[i] * self.chain_m_pos[i] * self.mask[i]).collect()
    }
}

/// The official `tied_featurize` for one structure.
pub fn featurize(
    protein: &Protein,
    selection: &ChainSelection,
    constraints: &Constraints,
    ca_only: bool,
) -> Result<Features, FeaturizeError> {
    let name = protein.name.clone();
    let available = || protein.chain_ids().join(", ");
    for c in selection.designed.iter().chain(&selection.fixed) {
        if protein.chain(c).is_none() {
            return Err(FeaturizeError::UnknownChain { name, chain: c.clone(), available: available() });
        }
    }
    for c in &selection.designed {
        if selection.fixed.contains(c) {
            return Err(FeaturizeError::ChainTwice { name, chain: c.clone() });
        }
    }
    let mut masked = selection.designed.clone();
    let mut visible = selection.fixed.clone();
    masked.sort();
    masked.dedup();
    visible.sort();
    visible.dedup();
    if masked.is_empty() && visible.is_empty() {
        return Err(FeaturizeError::NoChains { name });
    }
    let all_chains: Vec<String> = masked.iter().chain(&visible).cloned().collect();

    let atoms = if ca_only { 1 } else { 4 };
    let mut f = Features {
        name: name.clone(),
        ca_only,
        x: Vec::new(),
        s: Vec::new(),
        mask: Vec::new(),
        chain_m: Vec::new(),
        chain_m_pos: Vec::new(),
        chain_encoding: Vec::new(),
        residue_idx: Vec::new(),
        omit_aa_mask: Vec::new(),
        pssm_coef: Vec::new(),
        pssm_bias: Vec::new(),
        pssm_log_odds: Vec::new(),
        bias_by_res: Vec::new(),
        tied_positions: Vec::new(),
        tied_beta: Vec::new(),
        chain_order: Vec::new(),
        masked_chains: Vec::new(),
        masked_chain_lengths: Vec::new(),
        visible_chains: Vec::new(),
        chain_ranges: Vec::new(),
    };
    let check_pos = |what: &str, chain: &str, p: i64, len: usize| -> Result<usize, FeaturizeError> {
        if p < 1 || p as usize > len {
            Err(FeaturizeError::PositionOutOfRange {
                name: name.clone(),
                what: what.to_string(),
                chain: chain.to_string(),
                position: p,
                len,
            })
        } else {
            Ok(p as usize - 1)
        }
    };

    for (ci, letter) in all_chains.iter().enumerate() {
        let chain = protein.chain(letter).expect("checked above");
        let designed = masked.contains(letter);
        let len = chain.sequence.chars().count();
        let start = f.s.len();
        f.chain_order.push(letter.clone());
        if designed {
            f.masked_chains.push(letter.clone());
            f.masked_chain_lengths.push(len);
        } else {
            f.visible_chains.push(letter.clone());
        }
        for (r, ch) in chain.sequence.chars().enumerate() {
            let coords = &chain.coords[r];
            let picked: &[[f64; 3]] = if ca_only { &coords[1..2] } else { &coords[..] };
            let finite = picked.iter().all(|a| a.iter().all(|v| v.is_finite()));
            for a in picked {
                for &v in a {
                    f.x.push(if v.is_nan() { 0.0 } else { v as f32 });
                }
            }
            f.mask.push(if finite { 1.0 } else { 0.0 });
            f.s.push(alphabet::index_of(ch).unwrap_or(alphabet::UNKNOWN));
            f.chain_m.push(if designed { 1.0 } else { 0.0 });
            f.chain_encoding.push(ci as i64 + 1);
            f.residue_idx.push(100 * ci as i64 + (start + r) as i64);
        }
        let mut m_pos = vec![1.0f32; len];
        let mut omit = vec![0.0f32; len * VOCAB];
        let mut coef = vec![0.0f32; len];
        let mut pbias = vec![0.0f32; len * VOCAB];
        let mut log_odds = vec![10000.0f32; len * VOCAB];
        let mut bias = vec![0.0f32; len * VOCAB];
        if designed {
            if let Some(fixed) = constraints.fixed_positions.as_ref().and_then(|d| d.get(letter)) {
                for &p in fixed {
                    m_pos[check_pos("fixed", letter, p, len)?] = 0.0;
                }
            }
            if let Some(items) = constraints.omit_aa.as_ref().and_then(|d| d.get(letter)) {
                for (positions, letters) in items {
                    for &p in positions {
                        let i = check_pos("omit_AA", letter, p, len)?;
                        for l in letters.chars() {
                            let a = alphabet::ALPHABET.find(l).ok_or_else(|| FeaturizeError::BadLetter {
                                name: name.clone(),
                                what: "omit_AA".into(),
                                letter: l,
                                alphabet: alphabet::ALPHABET.into(),
                            })?;
                            omit[i * VOCAB + a] = 1.0;
                        }
                    }
                }
            }
            if let Some(p) = constraints.pssm.as_ref().and_then(|d| d.get(letter)) {
                for (what, n) in
                    [("pssm_coef", p.coef.len()), ("pssm_bias", p.bias.len()), ("pssm_log_odds", p.log_odds.len())]
                {
                    if n != len {
                        return Err(FeaturizeError::WrongLength {
                            name,
                            what: what.into(),
                            chain: letter.clone(),
                            found: n,
                            len,
                        });
                    }
                }
                coef.copy_from_slice(&p.coef);
                for r in 0..len {
                    pbias[r * VOCAB..(r + 1) * VOCAB].copy_from_slice(&p.bias[r]);
                    log_odds[r * VOCAB..(r + 1) * VOCAB].copy_from_slice(&p.log_odds[r]);
                }
            }
            if let Some(rows) = constraints.bias_by_res.as_ref().and_then(|d| d.get(letter)) {
                if rows.len() != len {
                    return Err(FeaturizeError::WrongLength {
                        name,
                        what: "bias_by_res".into(),
                        chain: letter.clone(),
                        found: rows.len(),
                        len,
                    });
                }
                for (r, row) in rows.iter().enumerate() {
                    bias[r * VOCAB..(r + 1) * VOCAB].copy_from_slice(row);
                }
            }
        }
        f.chain_m_pos.extend(m_pos);
        f.omit_aa_mask.extend(omit);
        f.pssm_coef.extend(coef);
        f.pssm_bias.extend(pbias);
        f.pssm_log_odds.extend(log_odds);
        f.bias_by_res.extend(bias);
        f.chain_ranges.push((letter.clone(), start, start + len));
    }
    let l = f.s.len();
    f.tied_beta = vec![1.0; l];
    if let Some(groups) = &constraints.tied {
        for (g, group) in groups.iter().enumerate() {
            let lengths: Vec<usize> = group.iter().map(|m| m.positions.len()).collect();
            if lengths.windows(2).any(|w| w[0] != w[1]) {
                return Err(FeaturizeError::TiedUnequal {
                    name,
                    group: g + 1,
                    lengths: lengths.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
                });
            }
            let mut one = Vec::new();
            for m in group {
                let (_, start, end) = f.chain_ranges.iter().find(|(c, _, _)| *c == m.chain).ok_or_else(|| {
                    FeaturizeError::UnknownChain {
                        name: name.clone(),
                        chain: m.chain.clone(),
                        available: f.chain_order.join(", "),
                    }
                })?;
                for (vi, &p) in m.positions.iter().enumerate() {
                    let i = start + check_pos("tied", &m.chain, p, end - start)?;
                    one.push(i);
                    if let Some(b) = &m.betas {
                        if let Some(&beta) = b.get(vi) {
                            f.tied_beta[i] = beta;
                        }
                    }
                }
            }
            f.tied_positions.push(one);
        }
    }
    let _ = atoms;
    Ok(f)
}

/// Several structures padded to one length, the batch shape every model entry point takes.
/// Padding follows the official code: coordinates 0, mask 0, residue index -100, chain 0.
#[derive(Debug, Clone)]
pub struct Batch {
    pub b: usize,
    pub l: usize,
    pub ca_only: bool,
    /// `[B, L, atoms, 3]`
    pub x: Vec<f32>,
    pub mask: Vec<f32>,
    pub residue_idx: Vec<i64>,
    pub chain_encoding: Vec<i64>,
    /// Real (unpadded) length of each item.
    pub lengths: Vec<usize>,
}

impl Batch {
    /// Pads `items` to the longest (or to `pad_to` when that is longer).
    pub fn new(items: &[&Features], pad_to: Option<usize>) -> Batch {
        let mut batch = Batch::empty();
        batch.fill(items, pad_to);
        batch
    }

    /// A batch of no structures, whose buffers [`Batch::fill`] grows as needed.
    pub fn empty() -> Batch {
        Batch {
            b: 0,
            l: 0,
            ca_only: false,
            x: Vec::new(),
            mask: Vec::new(),
            residue_idx: Vec::new(),
            chain_encoding: Vec::new(),
            lengths: Vec::new(),
        }
    }

    /// Refills the batch with `items` padded to the longest (or to `pad_to` when that is
    /// longer), reusing its buffers: a batch no larger than an earlier one allocates nothing.
    pub fn fill(&mut self, items: &[&Features], pad_to: Option<usize>) {
        assert!(!items.is_empty(), "a batch needs at least one structure");
        let ca_only = items[0].ca_only;
        let atoms = items[0].atoms();
        let l = items.iter().map(|f| f.len()).max().unwrap_or(0).max(pad_to.unwrap_or(0));
        let b = items.len();
        (self.b, self.l, self.ca_only) = (b, l, ca_only);
        refill(&mut self.x, b * l * atoms * 3, 0.0);
        refill(&mut self.mask, b * l, 0.0);
        refill(&mut self.residue_idx, b * l, -100);
        refill(&mut self.chain_encoding, b * l, 0);
        self.lengths.clear();
        self.lengths.extend(items.iter().map(|f| f.len()));
        for (bi, f) in items.iter().enumerate() {
            assert_eq!(f.ca_only, ca_only, "cannot batch CA-only and full-backbone features");
            let n = f.len();
            self.x[bi * l * atoms * 3..][..n * atoms * 3].copy_from_slice(&f.x);
            self.mask[bi * l..][..n].copy_from_slice(&f.mask);
            self.residue_idx[bi * l..][..n].copy_from_slice(&f.residue_idx);
            self.chain_encoding[bi * l..][..n].copy_from_slice(&f.chain_encoding);
        }
    }

    /// Rows (items × padded length) the buffers hold without growing.
    pub fn capacity_rows(&self) -> usize {
        self.mask.capacity()
    }

    pub fn atoms(&self) -> usize {
        if self.ca_only {
            1
        } else {
            4
        }
    }

    /// Pads a per-item vector (e.g. a sequence) to `[B, L]` with `fill`.
    pub fn pad<T: Copy>(&self, items: &[&[T]], fill: T) -> Vec<T> {
        let mut out = vec![fill; self.b * self.l];
        for (bi, v) in items.iter().enumerate() {
            out[bi * self.l..][..v.len()].copy_from_slice(v);
        }
        out
    }
}

/// Sets `v` to `n` copies of `fill`, keeping its allocation.
fn refill<T: Copy>(v: &mut Vec<T>, n: usize, fill: T) {
    v.clear();
    v.resize(n, fill);
}
