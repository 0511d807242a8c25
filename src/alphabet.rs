//! The amino-acid alphabets used by ProteinMPNN.

/// The model's 21-letter alphabet, in index order (`X` = unknown, index 20).
pub const ALPHABET: &str = "ACDEFGHIKLMNPQRSTVWYX";
/// Number of tokens the model predicts.
pub const VOCAB: usize = 21;
/// Index of `X`.
pub const UNKNOWN: u8 = 20;

/// Index of a one-letter code in [`ALPHABET`] (`-` maps to `X` like the official featurizer).
pub fn index_of(letter: char) -> Option<u8> {
    let letter = if letter == '-' { 'X' } else { letter };
    ALPHABET.find(letter).map(|i| i as u8)
}

/// One-letter code of an alphabet index.
pub fn letter_of(index: u8) -> char {
    ALPHABET.as_bytes()[index as usize] as char
}

/// One-letter code of a three-letter residue name as the official parser reads it
/// (the 20 standard residues; `MSE` is read as MET by the parsers before this lookup).
/// Everything else is unknown (`None`), which the official code writes as `-` / `X`.
pub fn one_letter_of_three(name: &str) -> Option<char> {
    Some(match name {
        "ALA" => 'A',
        "ARG" => 'R',
        "ASN" => 'N',
        "ASP" => 'D',
        "CYS" => 'C',
        "GLN" => 'Q',
        "GLU" => 'E',
        "GLY" => 'G',
        "HIS" => 'H',
        "ILE" => 'I',
        "LEU" => 'L',
        "LYS" => 'K',
        "MET" => 'M',
        "PHE" => 'F',
        "PRO" => 'P',
        "SER" => 'S',
        "THR" => 'T',
        "TRP" => 'W',
        "TYR" => 'Y',
        "VAL" => 'V',
        _ => return None,
    })
}

/// Three-letter name of a one-letter code (`UNK` for anything unknown).
pub fn three_of_one(letter: char) -> &'static str {
    match letter {
        'A' => "ALA",
        'R' => "ARG",
        'N' => "ASN",
        'D' => "ASP",
        'C' => "CYS",
        'Q' => "GLN",
        'E' => "GLU",
        'G' => "GLY",
        'H' => "HIS",
        'I' => "ILE",
        'L' => "LEU",
        'K' => "LYS",
        'M' => "MET",
        'F' => "PHE",
        'P' => "PRO",
        'S' => "SER",
        'T' => "THR",
        'W' => "TRP",
        'Y' => "TYR",
        'V' => "VAL",
        _ => "UNK",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_letters() {
        for (i, c) in ALPHABET.chars().enumerate() {
            assert_eq!(index_of(c), Some(i as u8));
            assert_eq!(letter_of(i as u8), c);
        }
        assert_eq!(index_of('-'), Some(UNKNOWN));
        assert_eq!(index_of('B'), None);
        assert_eq!(one_letter_of_three("MSE"), None);
        assert_eq!(three_of_one(one_letter_of_three("TRP").unwrap()), "TRP");
    }
}
