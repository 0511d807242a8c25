//! Building a [`Protein`] from coordinate arrays (what a notebook holds: numpy arrays from a
//! structure tool or a generative model) instead of a file.
//!
//! The result is exactly what the file readers would build from a file holding the same atoms:
//! residues are laid out per chain from the lowest to the highest residue number with numbering
//! gaps filled (`-` and NaN coordinates), chains are ordered like the readers order them (the
//! official alphabet `A-Z`, `a-z`, `0-9`, then other ids in order of appearance), unknown
//! residues are `-`, and the same checks apply ([`Protein::validate`]).
//!
//! ```
//! use mpnn::structure::ProteinArrays;
//! // Two residues of chain A, CA only ([L, 3]).
//! let ca = [0.0, 0.0, 0.0, 3.8, 0.0, 0.0];
//! let chains = ["A".to_string()];
//! let p = ProteinArrays::new("toy", &ca, &[2, 3], &chains).sequence(Some("GX")).build().unwrap();
//! assert_eq!(p.chains[0].sequence, "G-");
//! assert!(p.chains[0].coords[0][0][0].is_nan()); // no N atom in a CA-only array
//! assert_eq!(p.chains[0].coords[1][1], [3.8, 0.0, 0.0]);
//! ```

use super::builder::{finish_in_chain_order, ChainBuilder};
use super::{Protein, StructureError, ATOM_NAMES};
use crate::alphabet::{three_of_one, ALPHABET};

/// Longest chain id accepted (the mmCIF `auth_asym_id` limit).
pub const MAX_CHAIN_ID_CHARS: usize = 4;

/// The arrays a [`Protein`] is built from; see the [module documentation](self).
#[derive(Debug, Clone, Copy)]
pub struct ProteinArrays<'a> {
    /// The protein's name (used in messages and output file names).
    pub name: &'a str,
    /// Coordinates in row-major order, float64 (Å).
    pub coords: &'a [f64],
    /// Their shape: `[L, 4, 3]` (N, CA, C, O per residue) or `[L, 3]` (CA only).
    pub shape: &'a [usize],
    /// One chain id per residue, or a single id for every residue.
    pub chains: &'a [String],
    /// Residue numbers (one per residue, non-decreasing within a chain; an equal number twice is
    /// two residues, like insertion codes). Default: 1, 2, ... within each chain.
    pub residue_numbers: Option<&'a [i64]>,
    /// One-letter sequence, one letter per residue (`ACDEFGHIKLMNPQRSTVWY`; `X` or `-` for
    /// unknown). Default: every residue unknown, as the readers read a non-standard residue.
    pub sequence: Option<&'a str>,
    /// Treat NaN coordinates as missing atoms (as a file without those atoms is read) instead of
    /// refusing them.
    pub allow_missing: bool,
}

impl<'a> ProteinArrays<'a> {
    /// Arrays with default residue numbers and sequence, refusing NaN.
    pub fn new(name: &'a str, coords: &'a [f64], shape: &'a [usize], chains: &'a [String]) -> Self {
        ProteinArrays { name, coords, shape, chains, residue_numbers: None, sequence: None, allow_missing: false }
    }
    pub fn residue_numbers(mut self, numbers: Option<&'a [i64]>) -> Self {
        self.residue_numbers = numbers;
        self
    }
    pub fn sequence(mut self, sequence: Option<&'a str>) -> Self {
        self.sequence = sequence;
        self
    }
    pub fn allow_missing(mut self, allow: bool) -> Self {
        self.allow_missing = allow;
        self
    }
    /// Checks the arrays and builds the protein ([`protein_from_arrays`]).
    pub fn build(&self) -> Result<Protein, StructureError> {
        protein_from_arrays(self)
    }
}

fn bad(name: &str, item: &'static str, problem: impl Into<String>) -> StructureError {
    StructureError::Array { name: name.to_string(), item, problem: problem.into() }
}

fn shape_text(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Why a chain id is unusable, if it is.
fn chain_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("is empty".into());
    }
    if let Some(c) = id.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("contains {c:?}; chain ids cannot hold spaces or control characters"));
    }
    let n = id.chars().count();
    if n > MAX_CHAIN_ID_CHARS {
        return Some(format!("has {n} characters; chain ids have at most {MAX_CHAIN_ID_CHARS} (as in mmCIF)"));
    }
    None
}

/// Builds a [`Protein`] from arrays; see the [module documentation](self). Every problem is an
/// [`StructureError::Array`] naming the protein, the array and the fix, or the
/// [`Protein::validate`] error the readers' structures get (absurd coordinates, no usable residue).
pub fn protein_from_arrays(a: &ProteinArrays<'_>) -> Result<Protein, StructureError> {
    let name = if a.name.is_empty() { "arrays" } else { a.name };
    // Shape.
    let ca_only = match a.shape {
        [_, 4, 3] => false,
        [_, 3] => true,
        other => {
            return Err(bad(
                name,
                "coordinates",
                format!("shape {} is not [L, 4, 3] (N, CA, C, O per residue) or [L, 3] (CA only)", shape_text(other)),
            ))
        }
    };
    let len = a.shape[0];
    let atoms = if ca_only { 1 } else { 4 };
    if len == 0 {
        return Err(bad(name, "coordinates", "no residues (L = 0); give at least one residue"));
    }
    if a.coords.len() != len * atoms * 3 {
        return Err(bad(
            name,
            "coordinates",
            format!("{} values for shape {}, which needs {}", a.coords.len(), shape_text(a.shape), len * atoms * 3),
        ));
    }
    // Chain ids.
    let chain_of = |i: usize| -> &str {
        if a.chains.len() == 1 {
            &a.chains[0]
        } else {
            &a.chains[i]
        }
    };
    if a.chains.len() != len && a.chains.len() != 1 {
        return Err(bad(
            name,
            "chains",
            format!(
                "{} chain ids for {len} residues; give one chain id per residue, or a single id for all of them",
                a.chains.len()
            ),
        ));
    }
    for (i, id) in a.chains.iter().enumerate() {
        if let Some(why) = chain_id_problem(id) {
            return Err(bad(name, "chains", format!("chain id {id:?} (residue {}) {why}", i + 1)));
        }
    }
    // Residues of a chain must be together: runs [start, end) per chain in order of appearance.
    let mut runs: Vec<(String, usize, usize)> = Vec::new();
    for i in 0..len {
        let id = chain_of(i);
        match runs.last_mut() {
            Some((c, _, end)) if c == id => *end = i + 1,
            _ => {
                if let Some((_, s, e)) = runs.iter().find(|(c, _, _)| c == id) {
                    return Err(bad(
                        name,
                        "chains",
                        format!(
                            "chain {id} holds residues {}-{} and again residue {}; put each chain's residues \
                             together (one run per chain)",
                            s + 1,
                            e,
                            i + 1
                        ),
                    ));
                }
                runs.push((id.to_string(), i, i + 1));
            }
        }
    }
    // Residue numbers.
    if let Some(numbers) = a.residue_numbers {
        if numbers.len() != len {
            return Err(bad(
                name,
                "residue_numbers",
                format!("{} residue numbers for {len} residues; give one number per residue", numbers.len()),
            ));
        }
        for (c, s, e) in &runs {
            for i in s + 1..*e {
                if numbers[i] < numbers[i - 1] {
                    return Err(bad(
                        name,
                        "residue_numbers",
                        format!(
                            "chain {c}: residue {} has number {} after {}; numbers must not decrease within a chain \
                             (an equal number twice is two residues, like insertion codes)",
                            i + 1,
                            numbers[i],
                            numbers[i - 1]
                        ),
                    ));
                }
            }
        }
        if let Some(i) = numbers.iter().position(|n| n.checked_sub(1).is_none()) {
            return Err(bad(
                name,
                "residue_numbers",
                format!("residue {}: number {} is out of range", i + 1, numbers[i]),
            ));
        }
    }
    // Sequence.
    let letters: Option<Vec<char>> = a.sequence.map(|s| s.chars().collect());
    if let Some(letters) = &letters {
        if letters.len() != len {
            return Err(bad(
                name,
                "sequence",
                format!("{} letters for {len} residues; give one letter per residue", letters.len()),
            ));
        }
        if let Some((i, &c)) = letters.iter().enumerate().find(|(_, &c)| c != '-' && !ALPHABET.contains(c)) {
            let hint = if c.is_ascii_lowercase() {
                format!(" (write it in upper case: {})", c.to_ascii_uppercase())
            } else {
                String::new()
            };
            return Err(bad(
                name,
                "sequence",
                format!(
                    "letter {c:?} at residue {} is not an amino acid; use one of {} (X or - for unknown){hint}",
                    i + 1,
                    &ALPHABET[..20]
                ),
            ));
        }
    }
    // Coordinates: infinite values always fail; NaN fails unless missing atoms are allowed.
    let atom_name = |k: usize| if ca_only { "CA" } else { ATOM_NAMES[k] };
    let residue_label = |i: usize| {
        let number = a.residue_numbers.map_or(String::new(), |n| format!(", number {}", n[i]));
        format!("residue {} (chain {}{number})", i + 1, chain_of(i))
    };
    for i in 0..len {
        for k in 0..atoms {
            let xyz = &a.coords[(i * atoms + k) * 3..(i * atoms + k) * 3 + 3];
            if let Some(x) = xyz.iter().find(|x| x.is_infinite()) {
                return Err(bad(
                    name,
                    "coordinates",
                    format!("{}: {} coordinate is {x}; coordinates must be finite", residue_label(i), atom_name(k)),
                ));
            }
            if !a.allow_missing && xyz.iter().any(|x| x.is_nan()) {
                return Err(bad(
                    name,
                    "coordinates",
                    format!(
                        "{}: {} coordinate is NaN; fix it, or allow missing atoms (allow_missing) to read NaN \
                         atoms as absent, as a file without them is read",
                        residue_label(i),
                        atom_name(k)
                    ),
                ));
            }
        }
    }
    // Lay the residues out through the readers' builder: same gaps, same unknown letters.
    let mut builders: Vec<ChainBuilder> = Vec::with_capacity(runs.len());
    for (c, s, e) in &runs {
        let mut b = ChainBuilder::new(c);
        let mut previous: Option<i64> = None;
        let mut repeat = 0usize;
        for i in *s..*e {
            let number = a.residue_numbers.map_or((i - s) as i64 + 1, |n| n[i]);
            // An equal number again is a new residue: give it an insertion code that sorts after.
            repeat = if previous == Some(number) { repeat + 1 } else { 0 };
            previous = Some(number);
            let icode = if repeat == 0 { String::new() } else { format!("{repeat:020}") };
            let resname = letters.as_ref().map_or("UNK", |l| three_of_one(l[i]));
            let index = number - 1; // checked above for the given numbers; defaults start at 1
            b.add(index, &icode, resname, "", [f64::NAN; 3]);
            for k in 0..atoms {
                let xyz = &a.coords[(i * atoms + k) * 3..(i * atoms + k) * 3 + 3];
                if xyz.iter().any(|x| x.is_nan()) {
                    continue;
                }
                let atom = if ca_only { 1 } else { k };
                b.add(index, &icode, resname, ATOM_NAMES[atom], [xyz[0], xyz[1], xyz[2]]);
            }
        }
        builders.push(b);
    }
    let chains = finish_in_chain_order(builders, name)?;
    let protein = Protein { name: name.to_string(), chains };
    protein.validate(ca_only)?;
    Ok(protein)
}

impl Protein {
    /// N, CA, C, O coordinates of every residue, chain after chain (NaN where missing): the
    /// `[L, 4, 3]` array the protein was read as.
    pub fn coordinates(&self) -> Vec<[[f64; 3]; 4]> {
        self.chains.iter().flat_map(|c| c.coords.iter().copied()).collect()
    }
    /// The chain id of every residue, chain after chain.
    pub fn residue_chain_ids(&self) -> Vec<&str> {
        self.chains.iter().flat_map(|c| std::iter::repeat_n(c.id.as_str(), c.coords.len())).collect()
    }
    /// The one-letter sequence of every residue, chain after chain, with `X` for unknown residues
    /// and numbering gaps (the model's alphabet; the chains themselves store `-` there).
    pub fn sequence_x(&self) -> String {
        self.chains.iter().flat_map(|c| c.sequence.chars()).map(|c| if c == '-' { 'X' } else { c }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// A plausible backbone: residue i at x = 3.8 i, atoms offset a little.
    fn backbone(n: usize) -> Vec<f64> {
        let mut v = Vec::new();
        for i in 0..n {
            for k in 0..4 {
                v.extend([3.8 * i as f64 + 0.5 * k as f64, 0.3 * k as f64, 0.1 * i as f64]);
            }
        }
        v
    }

    fn err(a: ProteinArrays<'_>) -> (String, String) {
        match a.build() {
            Err(StructureError::Array { item, problem, .. }) => (item.to_string(), problem),
            Err(e) => ("validate".into(), e.to_string()),
            Ok(p) => panic!("expected an error, got {p:?}"),
        }
    }

    #[test]
    fn backbone_round_trip() {
        let x = backbone(3);
        let chains = ids(&["A"]);
        let p = ProteinArrays::new("toy", &x, &[3, 4, 3], &chains).sequence(Some("MKV")).build().unwrap();
        assert_eq!(p.name, "toy");
        assert_eq!(p.chain_ids(), vec!["A"]);
        assert_eq!(p.chains[0].sequence, "MKV");
        let flat: Vec<f64> = p.coordinates().iter().flat_map(|r| r.iter().flatten().copied()).collect();
        assert_eq!(flat, x);
        assert_eq!(p.residue_chain_ids(), vec!["A"; 3]);
    }

    #[test]
    fn ca_only_has_only_ca() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let chains = ids(&["A", "A"]);
        let p = ProteinArrays::new("ca", &x, &[2, 3], &chains).build().unwrap();
        assert_eq!(p.chains[0].sequence, "--", "unknown residues, as the readers write them");
        assert_eq!(p.sequence_x(), "XX");
        assert_eq!(p.chains[0].coords[1][1], [4.0, 5.0, 6.0]);
        for k in [0, 2, 3] {
            assert!(p.chains[0].coords[0][k].iter().all(|v| v.is_nan()));
        }
        // A CA-only structure has no usable residue for a full-backbone model.
        assert!(p.validate(false).is_err());
    }

    #[test]
    fn numbering_gaps_are_filled_like_the_readers() {
        let x = backbone(3);
        let chains = ids(&["A"]);
        let numbers = [10, 11, 14];
        let p = ProteinArrays::new("gap", &x, &[3, 4, 3], &chains)
            .residue_numbers(Some(&numbers))
            .sequence(Some("GAW"))
            .build()
            .unwrap();
        assert_eq!(p.chains[0].sequence, "GA--W");
        assert!(p.chains[0].coords[2].iter().flatten().all(|v| v.is_nan()));
        assert_eq!(p.chains[0].coords[4][0][0], x[24]);
        // An equal number twice is two residues (like 60 and 60A).
        let numbers = [5, 5, 6];
        let p = ProteinArrays::new("ins", &x, &[3, 4, 3], &chains)
            .residue_numbers(Some(&numbers))
            .sequence(Some("GAW"))
            .build()
            .unwrap();
        assert_eq!(p.chains[0].sequence, "GAW");
        assert_eq!(p.chains[0].coords[1][0][0], x[12]);
    }

    #[test]
    fn chains_are_ordered_like_the_readers() {
        let x = backbone(4);
        let chains = ids(&["B", "B", "AA", "A"]);
        let p = ProteinArrays::new("multi", &x, &[4, 4, 3], &chains).sequence(Some("ACDE")).build().unwrap();
        assert_eq!(p.chain_ids(), vec!["A", "B", "AA"]);
        assert_eq!(p.sequence_x(), "EACD");
        assert_eq!(p.chains[0].coords[0][0][0], x[36]);
    }

    #[test]
    fn shapes_and_lengths_are_checked() {
        let x = backbone(2);
        let chains = ids(&["A"]);
        for shape in [&[2usize, 5, 3][..], &[2, 4], &[2, 4, 3, 1], &[24]] {
            let (item, problem) = err(ProteinArrays::new("s", &x, shape, &chains));
            assert_eq!(item, "coordinates");
            assert!(problem.contains("[L, 4, 3]"), "{problem}");
        }
        let (item, problem) = err(ProteinArrays::new("s", &x, &[3, 4, 3], &chains));
        assert_eq!(item, "coordinates");
        assert!(problem.contains("24 values"), "{problem}");
        let (item, problem) = err(ProteinArrays::new("s", &[], &[0, 4, 3], &chains));
        assert_eq!(item, "coordinates");
        assert!(problem.contains("no residues"), "{problem}");
        let e = ProteinArrays::new("named", &[], &[0, 3], &chains).build().unwrap_err();
        assert!(e.to_string().starts_with("named: coordinates: "), "{e}");
    }

    #[test]
    fn chain_ids_are_checked() {
        let x = backbone(3);
        let s = [3usize, 4, 3];
        for (chains, needle) in [
            (ids(&["A", "B"]), "2 chain ids for 3 residues"),
            (ids(&[""]), "is empty"),
            (ids(&["A B"]), "spaces"),
            (ids(&["ABCDE"]), "at most 4"),
            (ids(&["A", "B", "A"]), "put each chain's residues together"),
        ] {
            let (item, problem) = err(ProteinArrays::new("c", &x, &s, &chains));
            assert_eq!(item, "chains");
            assert!(problem.contains(needle), "{problem}");
        }
    }

    #[test]
    fn numbers_and_sequences_are_checked() {
        let x = backbone(3);
        let s = [3usize, 4, 3];
        let chains = ids(&["A"]);
        let (item, problem) = err(ProteinArrays::new("n", &x, &s, &chains).residue_numbers(Some(&[1, 2])));
        assert_eq!(item, "residue_numbers");
        assert!(problem.contains("2 residue numbers for 3"), "{problem}");
        let (item, problem) = err(ProteinArrays::new("n", &x, &s, &chains).residue_numbers(Some(&[1, 3, 2])));
        assert_eq!(item, "residue_numbers");
        assert!(problem.contains("must not decrease"), "{problem}");
        // Two chains may each start low again.
        let two = ids(&["A", "A", "B"]);
        ProteinArrays::new("n", &x, &s, &two).residue_numbers(Some(&[5, 6, 1])).build().unwrap();
        let (item, problem) = err(ProteinArrays::new("q", &x, &s, &chains).sequence(Some("AC")));
        assert_eq!(item, "sequence");
        assert!(problem.contains("2 letters for 3"), "{problem}");
        let (_, problem) = err(ProteinArrays::new("q", &x, &s, &chains).sequence(Some("ABC")));
        assert!(problem.contains("'B' at residue 2"), "{problem}");
        let (_, problem) = err(ProteinArrays::new("q", &x, &s, &chains).sequence(Some("ACd")));
        assert!(problem.contains("upper case: D"), "{problem}");
        let p = ProteinArrays::new("q", &x, &s, &chains).sequence(Some("AX-")).build().unwrap();
        assert_eq!(p.chains[0].sequence, "A--");
    }

    #[test]
    fn nan_and_infinite_coordinates() {
        let chains = ids(&["A"]);
        let s = [3usize, 4, 3];
        let mut x = backbone(3);
        x[4 * 3 + 3 + 1] = f64::NAN; // residue 2, CA, y
        let (item, problem) = err(ProteinArrays::new("nan", &x, &s, &chains));
        assert_eq!(item, "coordinates");
        assert!(problem.contains("residue 2 (chain A): CA coordinate is NaN"), "{problem}");
        assert!(problem.contains("allow_missing"), "{problem}");
        // Allowed: the atom is missing, the residue unusable, the rest as given.
        let p = ProteinArrays::new("nan", &x, &s, &chains).allow_missing(true).build().unwrap();
        assert!(p.chains[0].coords[1][1].iter().all(|v| v.is_nan()));
        assert_eq!(p.chains[0].coords[1][0][0], x[12]);
        assert!(!Protein::residue_usable(&p.chains[0].coords[1], false));
        // All missing: no usable residue, the readers' check.
        let all = vec![f64::NAN; 36];
        let (item, problem) = err(ProteinArrays::new("void", &all, &s, &chains).allow_missing(true));
        assert_eq!(item, "validate");
        assert!(problem.contains("no usable residue"), "{problem}");
        // Infinite values are never missing atoms.
        let mut x = backbone(3);
        x[0] = f64::INFINITY;
        let (_, problem) = err(ProteinArrays::new("inf", &x, &s, &chains).allow_missing(true));
        assert!(problem.contains("N coordinate is inf"), "{problem}");
        // Absurd values fail the readers' range check.
        let mut x = backbone(3);
        x[5] = 1e7;
        let (item, problem) = err(ProteinArrays::new("far", &x, &s, &chains));
        assert_eq!(item, "validate");
        assert!(problem.contains("out of range"), "{problem}");
    }
}
