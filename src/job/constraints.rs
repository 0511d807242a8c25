//! [`ResidueConstraints`]: the per-residue constraints written as residue specs (`A1-10`,
//! `A1,B1 A2,B2`), resolved against one structure into the official [`Constraints`] the
//! featurizer reads.

use std::collections::{BTreeMap, BTreeSet};

use super::{JobError, Labels};
use crate::alphabet::{self, VOCAB};
use crate::featurize::{Constraints, TiedMember};
use crate::spec::{ResidueItem, ResidueSpec, TiedSpec};
use crate::structure::Protein;

/// Per-residue constraints in residue-spec form, valid for any structure whose chains they name.
///
/// Positions are 1-based within each chain as parsed (the official dictionaries' convention).
/// [`ResidueConstraints::apply`] checks them against one structure and adds them to the
/// constraints from the official dictionaries.
#[derive(Debug, Clone, Default)]
pub struct ResidueConstraints {
    /// Positions kept at their native amino acid.
    pub fixed: Option<ResidueSpec>,
    /// The only positions of the designed chains that are designed (the rest are fixed).
    pub redesign: Option<ResidueSpec>,
    /// Groups of positions that receive the same amino acid.
    pub tied: Option<TiedSpec>,
    /// Ties every position of the designed chains across those chains (equal lengths).
    pub homo_oligomer: bool,
    /// Per-residue bias: residues → (letter, bias) pairs, added to the logits.
    pub bias_by_residue: Vec<(ResidueItem, Vec<(char, f32)>)>,
    /// Per-residue omitted letters.
    pub omit_by_residue: Vec<(ResidueItem, String)>,
    /// How the caller spells these options, for error messages.
    pub labels: Labels,
}

impl ResidueConstraints {
    /// Whether no constraint is set.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_none()
            && self.redesign.is_none()
            && self.tied.is_none()
            && !self.homo_oligomer
            && self.bias_by_residue.is_empty()
            && self.omit_by_residue.is_empty()
    }

    /// Resolves the constraints against `p` (designing the chains `designed`) and adds them to
    /// `c`. Errors name the option, the item and the structure.
    pub fn apply(&self, p: &Protein, designed: &[String], c: &mut Constraints) -> Result<(), JobError> {
        let l = &self.labels;
        let chain_len = |id: &str| p.chain(id).map(|c| c.sequence.chars().count()).unwrap_or(0);
        let mut fixed_set: BTreeSet<(String, i64)> = BTreeSet::new();
        if let Some(spec) = &self.fixed {
            for item in &spec.0 {
                let (chain, pos) = resolve(l.fixed, item, p)?;
                fixed_set.extend(pos.into_iter().map(|q| (chain.clone(), q)));
            }
        }
        if let Some(spec) = &self.redesign {
            let mut keep: BTreeSet<(String, i64)> = BTreeSet::new();
            for item in &spec.0 {
                let (chain, pos) = resolve(l.redesign, item, p)?;
                if !designed.contains(&chain) {
                    return Err(JobError::RedesignFixedChain {
                        option: l.redesign,
                        item: item.to_string().into(),
                        chain,
                        structure: p.name.clone(),
                        designed: designed.join(", ").into(),
                        chains: l.chains,
                    });
                }
                keep.extend(pos.into_iter().map(|q| (chain.clone(), q)));
            }
            if let Some(both) = keep.iter().find(|k| fixed_set.contains(k)) {
                return Err(JobError::FixedAndRedesigned {
                    fixed: l.fixed,
                    redesign: l.redesign,
                    chain: both.0.clone(),
                    position: both.1,
                    structure: p.name.clone(),
                });
            }
            for chain in designed {
                for q in 1..=chain_len(chain) as i64 {
                    if !keep.contains(&(chain.clone(), q)) {
                        fixed_set.insert((chain.clone(), q));
                    }
                }
            }
        }
        if !fixed_set.is_empty() {
            let m = c.fixed_positions.get_or_insert_with(BTreeMap::new);
            for (chain, q) in fixed_set {
                let v = m.entry(chain).or_default();
                if !v.contains(&q) {
                    v.push(q);
                }
            }
        }
        let mut groups: Vec<Vec<TiedMember>> = Vec::new();
        if let Some(spec) = &self.tied {
            for g in &spec.0 {
                let members = g.iter().map(|m| resolve(l.tied, m, p)).collect::<Result<Vec<_>, _>>()?;
                let lens: Vec<usize> = members.iter().map(|m| m.1.len()).collect();
                if lens.windows(2).any(|w| w[0] != w[1]) {
                    let shown: Vec<String> = g.iter().zip(&lens).map(|(m, n)| format!("{m} ({n})")).collect();
                    return Err(JobError::TiedUnequal {
                        option: l.tied,
                        group: g.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(","),
                        structure: p.name.clone(),
                        lengths: shown.join(", "),
                    });
                }
                for k in 0..lens[0] {
                    groups.push(
                        members
                            .iter()
                            .map(|(chain, pos)| TiedMember {
                                chain: chain.clone(),
                                positions: vec![pos[k]],
                                betas: None,
                            })
                            .collect(),
                    );
                }
            }
        }
        if self.homo_oligomer {
            let mut chains: Vec<String> = designed.to_vec();
            chains.sort();
            let lens: Vec<usize> = chains.iter().map(|c| chain_len(c)).collect();
            if lens.windows(2).any(|w| w[0] != w[1]) {
                let shown: Vec<String> = chains.iter().zip(&lens).map(|(c, n)| format!("{c}: {n}")).collect();
                return Err(JobError::HomoOligomerUnequal {
                    option: l.homo_oligomer,
                    structure: p.name.clone(),
                    lengths: shown.join(", "),
                    chains: l.chains,
                });
            }
            for q in 1..=lens.first().copied().unwrap_or(0) as i64 {
                groups.push(
                    chains.iter().map(|c| TiedMember { chain: c.clone(), positions: vec![q], betas: None }).collect(),
                );
            }
        }
        if !groups.is_empty() {
            c.tied.get_or_insert_with(Vec::new).extend(groups);
        }
        if !self.bias_by_residue.is_empty() {
            let m = c.bias_by_res.get_or_insert_with(BTreeMap::new);
            for (item, row) in &self.bias_by_residue {
                let (chain, pos) = resolve(l.bias_by_residue, item, p)?;
                let rows = m.entry(chain.clone()).or_insert_with(|| vec![[0f32; VOCAB]; chain_len(&chain)]);
                for q in pos {
                    for &(letter, v) in row {
                        let Some(a) = alphabet::index_of(letter) else {
                            return Err(JobError::BadValue {
                                option: l.bias_by_residue,
                                value: format!("`{item}`: `{letter}`"),
                                why: format!("not an amino-acid letter; use one of {}", alphabet::ALPHABET),
                            });
                        };
                        rows[q as usize - 1][a as usize] += v;
                    }
                }
            }
        }
        if !self.omit_by_residue.is_empty() {
            let m = c.omit_aa.get_or_insert_with(BTreeMap::new);
            for (item, letters) in &self.omit_by_residue {
                let (chain, pos) = resolve(l.omit_by_residue, item, p)?;
                m.entry(chain).or_default().push((pos, letters.clone()));
            }
        }
        Ok(())
    }
}

/// The chain and 1-based positions of `item` in `p`, or an error naming the option.
fn resolve(option: &'static str, item: &ResidueItem, p: &Protein) -> Result<(String, Vec<i64>), JobError> {
    let chain = item.chain();
    let Some(c) = p.chain(chain) else {
        return Err(JobError::SpecChain {
            option,
            item: item.to_string(),
            chain: chain.to_string(),
            structure: p.name.clone(),
            chains: p.chain_ids().join(", "),
        });
    };
    let len = c.sequence.chars().count();
    if item.max_position() as usize > len {
        return Err(JobError::SpecPosition {
            option,
            item: item.to_string().into(),
            position: item.max_position(),
            chain: chain.into(),
            structure: p.name.clone(),
            len,
        });
    }
    Ok((chain.to_string(), item.positions(len).into_iter().map(i64::from).collect()))
}
