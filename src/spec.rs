//! Inline residue specifications for `mpnn design`: `--fixed "A1-10 A15 B"`,
//! `--redesign "A20-30"`, `--tied "A1,C1|A2-5,C2-5"`, `--bias "W:3.0,P:-1"`, `--shard 2/4`.
//!
//! Positions are 1-based within the chain as parsed (the official convention: the index into the
//! chain's residue list counted from its first residue, gaps included), not PDB residue numbers.
//! A chain id is the leading non-digit part of an item (`A12` → chain `A`, position 12); an item
//! with no digits names a whole chain.
//!
//! Every type parses with [`FromStr`] and prints back with [`Display`] in a canonical form that
//! parses to the same value:
//!
//! ```
//! use mpnn::spec::{ResidueSpec, TiedSpec, BiasSpec, Shard};
//! let s: ResidueSpec = "A1-10 A15, B".parse().unwrap();
//! assert_eq!(s.to_string(), "A1-10 A15 B");
//! assert_eq!(s.to_string().parse::<ResidueSpec>().unwrap(), s);
//! let t: TiedSpec = "A1,C1|A2-5,C2-5".parse().unwrap();
//! assert_eq!(t.to_string(), "A1,C1|A2-5,C2-5");
//! let b: BiasSpec = "W:3.0,P:-1".parse().unwrap();
//! assert_eq!(b.to_string(), "W:3,P:-1");
//! let sh: Shard = "2/4".parse().unwrap();
//! assert_eq!((sh.index, sh.count), (2, 4));
//! assert!("0/3".parse::<Shard>().is_err());
//! assert!("A5-2".parse::<ResidueSpec>().is_err());
//! assert!("B:1".parse::<BiasSpec>().is_err());
//! // Residue ids with insertion codes are read with LigandMPNN models (`mpnn::job::ligand`).
//! assert!("B52A".parse::<ResidueSpec>().unwrap_err().to_string().contains("--model_type"));
//! ```

use std::fmt;
use std::str::FromStr;

use crate::alphabet::ALPHABET;

/// Why a specification did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("empty specification; give items like \"A1-10 A15 B\"")]
    Empty,
    #[error("`{item}`: expected CHAIN, CHAIN<pos> or CHAIN<start>-<end> (e.g. A, A12, A3-9)")]
    BadItem { item: String },
    #[error(
        "`{item}`: a residue id with an insertion code; with ProteinMPNN weights, specs name 1-based positions within \
         the chain as parsed (insertion-code residues counted like any other). Residue ids such as B52A are read \
         with LigandMPNN models (--model_type, or a LigandMPNN checkpoint)"
    )]
    InsertionCode { item: String },
    #[error("`{item}`: positions are 1-based; {position} is not a position")]
    ZeroPosition { item: String, position: u32 },
    #[error("`{item}`: the range ends before it starts; write it as {chain}{end}-{start}")]
    ReversedRange { item: String, chain: String, start: u32, end: u32 },
    #[error("tied group `{group}` needs at least two members separated by ',' (e.g. A1,C1)")]
    LonelyTiedGroup { group: String },
    #[error("`{item}`: expected LETTER:VALUE (e.g. W:3.0)")]
    BadBias { item: String },
    #[error("`{letter}` is not an amino-acid letter; use one of {ALPHABET}")]
    BadLetter { letter: String },
    #[error("`{value}` is not a number in `{item}`")]
    BadNumber { item: String, value: String },
    #[error("`{value}`: a shard is I/N with 1 <= I <= N (e.g. 1/4)")]
    BadShard { value: String },
}

/// One item of a residue specification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResidueItem {
    /// Every position of a chain.
    Chain(String),
    /// One 1-based position.
    Residue { chain: String, position: u32 },
    /// An inclusive range of 1-based positions.
    Range { chain: String, start: u32, end: u32 },
}

impl ResidueItem {
    pub fn chain(&self) -> &str {
        match self {
            ResidueItem::Chain(c) | ResidueItem::Residue { chain: c, .. } | ResidueItem::Range { chain: c, .. } => c,
        }
    }
    /// The 1-based positions, given the chain's length (for whole chains).
    pub fn positions(&self, chain_len: usize) -> Vec<u32> {
        match self {
            ResidueItem::Chain(_) => (1..=chain_len as u32).collect(),
            ResidueItem::Residue { position, .. } => vec![*position],
            ResidueItem::Range { start, end, .. } => (*start..=*end).collect(),
        }
    }
    /// The largest position named (0 for a whole chain).
    pub fn max_position(&self) -> u32 {
        match self {
            ResidueItem::Chain(_) => 0,
            ResidueItem::Residue { position, .. } => *position,
            ResidueItem::Range { end, .. } => *end,
        }
    }
}

impl FromStr for ResidueItem {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let item = s.trim();
        let bad = || SpecError::BadItem { item: item.to_string() };
        let split = item.find(|c: char| c.is_ascii_digit()).unwrap_or(item.len());
        let (chain, rest) = item.split_at(split);
        if chain.is_empty() || chain.contains(|c: char| c.is_whitespace() || c == '-' || c == ',' || c == '|') {
            return Err(bad());
        }
        if rest.is_empty() {
            return Ok(ResidueItem::Chain(chain.to_string()));
        }
        let num = |t: &str| -> Result<u32, SpecError> {
            let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            if digits.len() < t.len() && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(SpecError::InsertionCode { item: item.to_string() });
            }
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            let v: u32 = t.parse().map_err(|_| bad())?;
            if v == 0 {
                return Err(SpecError::ZeroPosition { item: item.to_string(), position: 0 });
            }
            Ok(v)
        };
        match rest.split_once('-') {
            None => Ok(ResidueItem::Residue { chain: chain.to_string(), position: num(rest)? }),
            Some((a, b)) => {
                // "A3-9" or "A3-A9"
                let b = b.strip_prefix(chain).unwrap_or(b);
                let (start, end) = (num(a)?, num(b)?);
                if end < start {
                    return Err(SpecError::ReversedRange {
                        item: item.to_string(),
                        chain: chain.to_string(),
                        start,
                        end,
                    });
                }
                Ok(ResidueItem::Range { chain: chain.to_string(), start, end })
            }
        }
    }
}

impl fmt::Display for ResidueItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResidueItem::Chain(c) => write!(f, "{c}"),
            ResidueItem::Residue { chain, position } => write!(f, "{chain}{position}"),
            ResidueItem::Range { chain, start, end } => write!(f, "{chain}{start}-{end}"),
        }
    }
}

/// A set of residues: items separated by spaces and/or commas (`"A1-10 A15 B"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResidueSpec(pub Vec<ResidueItem>);

impl FromStr for ResidueSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let items: Vec<ResidueItem> =
            s.split([' ', ',', '\t']).filter(|t| !t.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
        if items.is_empty() {
            return Err(SpecError::Empty);
        }
        Ok(ResidueSpec(items))
    }
}

impl fmt::Display for ResidueSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|i| i.to_string()).collect();
        write!(f, "{}", parts.join(" "))
    }
}

/// Tied residues: groups separated by `|`, members of a group by `,`. Members that are ranges
/// (or whole chains) are tied elementwise: `A1-10,C1-10` is ten groups `A1,C1` … `A10,C10`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TiedSpec(pub Vec<Vec<ResidueItem>>);

impl FromStr for TiedSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let mut groups = Vec::new();
        for g in s.split('|').map(str::trim).filter(|g| !g.is_empty()) {
            let members: Vec<ResidueItem> =
                g.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
            if members.len() < 2 {
                return Err(SpecError::LonelyTiedGroup { group: g.to_string() });
            }
            groups.push(members);
        }
        if groups.is_empty() {
            return Err(SpecError::Empty);
        }
        Ok(TiedSpec(groups))
    }
}

impl fmt::Display for TiedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> =
            self.0.iter().map(|g| g.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(",")).collect();
        write!(f, "{}", groups.join("|"))
    }
}

/// Per-letter biases `"W:3.0,P:-1"` (added to the logits like `--bias_AA_jsonl`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BiasSpec(pub Vec<(char, f32)>);

impl FromStr for BiasSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let mut out = Vec::new();
        for item in s.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
            let (l, v) = item.split_once([':', '=']).ok_or_else(|| SpecError::BadBias { item: item.to_string() })?;
            let l = l.trim();
            let mut chars = l.chars();
            let letter = match (chars.next(), chars.next()) {
                (Some(c), None) if ALPHABET.contains(c.to_ascii_uppercase()) => c.to_ascii_uppercase(),
                _ => return Err(SpecError::BadLetter { letter: l.to_string() }),
            };
            let value: f32 = v
                .trim()
                .parse()
                .ok()
                .filter(|x: &f32| x.is_finite())
                .ok_or_else(|| SpecError::BadNumber { item: item.to_string(), value: v.trim().to_string() })?;
            out.push((letter, value));
        }
        if out.is_empty() {
            return Err(SpecError::Empty);
        }
        Ok(BiasSpec(out))
    }
}

impl fmt::Display for BiasSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(l, v)| format!("{l}:{v}")).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// Letters to omit (`--omit CP`); every character must be in the alphabet.
pub fn parse_letters(s: &str) -> Result<String, SpecError> {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != ',') {
        let u = c.to_ascii_uppercase();
        if !ALPHABET.contains(u) {
            return Err(SpecError::BadLetter { letter: c.to_string() });
        }
        if !out.contains(u) {
            out.push(u);
        }
    }
    Ok(out)
}

/// `--shard I/N`: this run does structure `k` (0-based, in the name-sorted list) when
/// `k % N == I - 1` (round-robin by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether item `k` (0-based, sorted order) belongs to this shard.
    pub fn takes(&self, k: usize) -> bool {
        k % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = || SpecError::BadShard { value: s.to_string() };
        let (a, b) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: usize = a.trim().parse().map_err(|_| bad())?;
        let count: usize = b.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item() -> impl Strategy<Value = ResidueItem> {
        let chain = "[A-Z]{1,2}";
        prop_oneof![
            chain.prop_map(ResidueItem::Chain),
            (chain, 1u32..5000).prop_map(|(chain, position)| ResidueItem::Residue { chain, position }),
            (chain, 1u32..5000, 0u32..100).prop_map(|(chain, start, d)| ResidueItem::Range {
                chain,
                start,
                end: start + d
            }),
        ]
    }

    proptest! {
        #[test]
        fn residue_specs_round_trip(items in prop::collection::vec(item(), 1..6)) {
            let s = ResidueSpec(items);
            prop_assert_eq!(s.to_string().parse::<ResidueSpec>().unwrap(), s);
        }
        #[test]
        fn tied_specs_round_trip(groups in prop::collection::vec(prop::collection::vec(item(), 2..4), 1..4)) {
            let t = TiedSpec(groups);
            prop_assert_eq!(t.to_string().parse::<TiedSpec>().unwrap(), t);
        }
        #[test]
        fn bias_specs_round_trip(v in prop::collection::vec((0usize..21, -10f32..10f32), 1..5)) {
            let b = BiasSpec(v.into_iter().map(|(i, x)| (ALPHABET.as_bytes()[i] as char, x)).collect());
            prop_assert_eq!(b.to_string().parse::<BiasSpec>().unwrap(), b);
        }
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!("A0".parse::<ResidueItem>(), Err(SpecError::ZeroPosition { item: "A0".into(), position: 0 }));
        assert!(matches!("A9-3".parse::<ResidueItem>(), Err(SpecError::ReversedRange { .. })));
        assert!(matches!("A1-".parse::<ResidueItem>(), Err(SpecError::BadItem { .. })));
        assert!(matches!("12".parse::<ResidueItem>(), Err(SpecError::BadItem { .. })));
        assert!(matches!("A1".parse::<TiedSpec>(), Err(SpecError::LonelyTiedGroup { .. })));
        assert!(matches!("J:1".parse::<BiasSpec>(), Err(SpecError::BadLetter { .. })));
        assert!(matches!("W:x".parse::<BiasSpec>(), Err(SpecError::BadNumber { .. })));
        assert!("4/3".parse::<Shard>().is_err());
        assert_eq!("A3-A9".parse::<ResidueItem>().unwrap().to_string(), "A3-9");
        assert_eq!(parse_letters("cp").unwrap(), "CP");
        assert!(parse_letters("B").is_err());
    }
}
