//! Collecting atoms per residue the way the official `parse_PDB_biounits` does, then laying the
//! residues out from the lowest to the highest residue number with gaps filled.

use std::collections::BTreeMap;

use super::{chain_alphabet_position, Chain, StructureError, ATOM_NAMES};
use crate::alphabet::one_letter_of_three;

/// Largest residue-number span accepted for one chain (guards against absurd numbering).
pub(crate) const MAX_SPAN: i64 = 1_000_000;

#[derive(Debug)]
struct ResidueAtoms {
    name: String,
    atoms: [Option<[f64; 3]>; 4],
}

/// Atoms of one chain, keyed by (residue number - 1, insertion code).
#[derive(Debug)]
pub(crate) struct ChainBuilder {
    pub(crate) id: String,
    residues: BTreeMap<i64, BTreeMap<String, ResidueAtoms>>,
}

impl ChainBuilder {
    pub(crate) fn new(id: &str) -> Self {
        ChainBuilder { id: id.to_string(), residues: BTreeMap::new() }
    }

    /// Records one atom. The first residue name seen for (number, icode) and the first
    /// coordinates seen for an atom name win, as in the official parser.
    pub(crate) fn add(&mut self, number: i64, icode: &str, resname: &str, atom: &str, xyz: [f64; 3]) {
        let by_code = self.residues.entry(number).or_default();
        let res = by_code
            .entry(icode.to_string())
            .or_insert_with(|| ResidueAtoms { name: resname.to_string(), atoms: [None; 4] });
        if let Some(k) = ATOM_NAMES.iter().position(|a| *a == atom) {
            if res.atoms[k].is_none() {
                res.atoms[k] = Some(xyz);
            }
        }
    }

    /// Lays the residues out from min to max residue number (`-` and NaN for missing numbers).
    pub(crate) fn finish(self, file: &str) -> Result<Chain, StructureError> {
        let (Some(&min), Some(&max)) = (self.residues.keys().next(), self.residues.keys().next_back()) else {
            return Err(StructureError::invalid(file, format!("chain {} has no residues", self.id)));
        };
        let span = (max as i128) - (min as i128) + 1;
        if span > MAX_SPAN as i128 {
            return Err(StructureError::invalid(
                file,
                format!(
                    "chain {}: residue numbers run from {} to {}, which would need {} positions; renumber the chain",
                    self.id,
                    min as i128 + 1,
                    max as i128 + 1,
                    span
                ),
            ));
        }
        let nan = [f64::NAN; 3];
        let mut sequence = String::new();
        let mut coords = Vec::new();
        let mut iter = self.residues.into_iter().peekable();
        let mut number = min;
        loop {
            match iter.peek() {
                Some((n, _)) if *n == number => {
                    if let Some((_, by_code)) = iter.next() {
                        for res in by_code.into_values() {
                            sequence.push(one_letter_of_three(&res.name).unwrap_or('-'));
                            coords.push(res.atoms.map(|a| a.unwrap_or(nan)));
                        }
                    }
                }
                _ => {
                    sequence.push('-');
                    coords.push([nan; 4]);
                }
            }
            if number >= max {
                break;
            }
            number += 1;
        }
        Ok(Chain { id: self.id, sequence, coords })
    }
}

/// Finishes the chains in the official chain order: by position in the official chain alphabet
/// (ids outside it last), ties in the order the chains were first seen.
pub(crate) fn finish_in_chain_order(builders: Vec<ChainBuilder>, file: &str) -> Result<Vec<Chain>, StructureError> {
    let mut keyed: Vec<(usize, usize, ChainBuilder)> = builders
        .into_iter()
        .enumerate()
        .map(|(i, b)| (chain_alphabet_position(&b.id).unwrap_or(usize::MAX), i, b))
        .collect();
    keyed.sort_by_key(|(p, i, _)| (*p, *i));
    keyed.into_iter().map(|(_, _, b)| b.finish(file)).collect()
}
