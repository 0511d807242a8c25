//! Structure reading with LigandMPNN's semantics: the official `parse_PDB` on top of ProDy's
//! `parsePDB` (ProDy 2.6.1), for PDB and mmCIF files, either optionally gzip-compressed.
//!
//! What the official code does, and so what [`parse_ligand_structure`] does (see
//! `../shared/parity/ligand/README.md` for the observations on real and edge-case files):
//! - Only the first model is read (up to the first `ENDMDL` / `END` after atoms). Alternate
//!   locations: atoms with a blank or `A` altloc are kept, every other altloc is dropped wherever
//!   it is written (a residue with only `B` atoms vanishes).
//! - By default atoms with occupancy ≤ 0 are dropped before anything else; a PDB occupancy that
//!   cannot be read (blank columns 55-60) counts as 0, as in ProDy.
//!   [`ParseOptions::parse_atoms_with_zero_occupancy`] keeps them. Then
//!   [`ParseOptions::chains`] restricts the atoms to those chains.
//! - Residues are ProDy residues (chain + number + insertion code, split after `TER`); a residue
//!   is protein when one of its atoms is a `CA` of an amino-acid name (the 20 standard names and
//!   ProDy's non-standard list: MSE, SEC, SEP, TPO, PTR, HID/HIE/HIP, CSO, …), minus water and
//!   ion names. Protein membership is decided on every atom read, before the occupancy filter
//!   (a zero-occupancy CA removes its residue, but its N, C, O stay protein atoms).
//! - The design positions are the protein `CA` atoms, in file order. `S` is 20 (`X`) for
//!   anything outside the 20 standard names (MSE → X). Backbone and side-chain atoms are looked
//!   up by residue key (the last atom of a name wins). `mask` = N, CA, C, O all present.
//!   `chain_labels` are ProDy chain indices: order of first appearance of the chain among all
//!   atoms read (ligands and waters included, before any filter).
//! - Context atoms are `not protein and not water`: ligands, metals, nucleic acids, non-protein
//!   HETATM groups of a peptide. Their element (PDB columns 77-78, mmCIF `type_symbol`) is
//!   upper-cased and looked up in the official element list ([`ELEMENTS`]); type 0 (not in the
//!   list: `D`, an empty element, `MO` since the list spells molybdenum `Mb`) and type 1 (`H`) are
//!   removed, each kind reported in a [`ContextNote`].
//!
//! Differences from the official code, all where it would crash or silently misbehave:
//! - Errors (naming the file, the line or residue, and the fix) instead of ProDy's silent
//!   renumbering of unreadable residue numbers, instead of crashes when no protein residue or no
//!   atom of the requested chains is left, and when two `CA` atoms share one residue key (the
//!   official arrays would then disagree in length).
//! - Context atoms present but all removed (only hydrogens): the official featurization fails;
//!   here [`ContextStatus::AllRemoved`] is reported and featurization runs as without context
//!   atoms.
//! - The element `UUO` (last in the list, which the official lookup table leaves out and so
//!   drops every context atom of the structure) is treated as unknown here.
//!
//! mmCIF (ProDy reads `.cif` through its own mmCIF reader, not specified by the fixtures) is
//! mapped field by field onto the PDB reading so the same atoms give the same structure:
//! `group_PDB`, `id`, `auth_atom_id` (else `label_atom_id`), `label_alt_id`, `auth_comp_id`
//! (else `label_comp_id`), `auth_asym_id` (else `label_asym_id`), `auth_seq_id` (else
//! `label_seq_id`), `pdbx_PDB_ins_code`, `Cartn_x/y/z`, `occupancy` (1 when the column is
//! absent), `B_iso_or_equiv`, `type_symbol`, `pdbx_formal_charge`; first `pdbx_PDB_model_num`
//! only; no segments and no `TER`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::structure::mmcif::{atom_site_table, AtomSiteTable, Tok};
use crate::structure::read::{decompress_if_gzip, detect_format, Format};
use crate::structure::text::{decode_ignore, py_float, py_int, stem_of, PyLine};
use crate::structure::{StructureError, MAX_ABS_COORD};

/// The official element list (`data_utils.element_list`), upper-cased: the element number of a
/// context atom is its 1-based position here. Molybdenum is spelled `MB` (so `MO` is unknown).
pub const ELEMENTS: [&str; 118] = [
    "H", "HE", "LI", "BE", "B", "C", "N", "O", "F", "NE", "NA", "MG", "AL", "SI", "P", "S", "CL", "AR", "K", "CA",
    "SC", "TI", "V", "CR", "MN", "FE", "CO", "NI", "CU", "ZN", "GA", "GE", "AS", "SE", "BR", "KR", "RB", "SR", "Y",
    "ZR", "NB", "MB", "TC", "RU", "RH", "PD", "AG", "CD", "IN", "SN", "SB", "TE", "I", "XE", "CS", "BA", "LA", "CE",
    "PR", "ND", "PM", "SM", "EU", "GD", "TB", "DY", "HO", "ER", "TM", "YB", "LU", "HF", "TA", "W", "RE", "OS", "IR",
    "PT", "AU", "HG", "TL", "PB", "BI", "PO", "AT", "RN", "FR", "RA", "AC", "TH", "PA", "U", "NP", "PU", "AM", "CM",
    "BK", "CF", "ES", "FM", "MD", "NO", "LR", "RF", "DB", "SG", "BH", "HS", "MT", "DS", "RG", "CN", "UUT", "FL", "UUP",
    "LV", "UUS", "UUO",
];

/// Element number of an element symbol as the official code computes it: upper-cased, 1-based
/// position in [`ELEMENTS`]; 0 when unknown (including `UUO`, see the module documentation).
pub fn element_number(symbol: &str) -> i32 {
    let up = symbol.to_uppercase();
    ELEMENTS[..ELEMENTS.len() - 1].iter().position(|e| *e == up).map_or(0, |i| i as i32 + 1)
}

/// The official `atom_order`: slot of each atom name in `xyz_37`.
pub const ATOM37: [&str; 37] = [
    "N", "CA", "C", "CB", "O", "CG", "CG1", "CG2", "OG", "OG1", "SG", "CD", "CD1", "CD2", "ND1", "ND2", "OD1", "OD2",
    "SD", "CE", "CE1", "CE2", "CE3", "NE", "NE1", "NE2", "OE1", "OE2", "CH2", "NH1", "NH2", "OH", "CZ", "CZ2", "CZ3",
    "NZ", "OXT",
];

/// `xyz_37` slots of N, CA, C, O (the `X` atoms).
pub const BACKBONE37: [usize; 4] = [0, 1, 2, 4];

/// ProDy's amino-acid residue names (standard and non-standard): a `CA` of one of these makes its
/// residue protein.
const AMINO_ACIDS: [&str; 49] = [
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE", "PRO", "SER",
    "THR", "TRP", "TYR", "VAL", "ASX", "GLX", "ASH", "GLH", "CSO", "CYX", "HIP", "HID", "HIE", "HSD", "HSE", "HSP",
    "HISD", "HISE", "HISP", "LYN", "TYM", "ARN", "MSE", "CME", "SEC", "SEP", "TPO", "PTR", "PHD", "XLE", "XAA", "MEN",
    "CSB",
];

/// ProDy's water residue names.
pub const WATER_NAMES: [&str; 12] =
    ["HOH", "DOD", "WAT", "TIP3", "H2O", "OH2", "TIP", "TIP2", "TIP4", "SPC", "SOL", "T3P"];

/// ProDy's ion residue names (never protein).
const ION_NAMES: [&str; 26] = [
    "AL", "BA", "CA", "CD", "CL", "CO", "CS", "CU", "CU1", "CUA", "HG", "IN", "IOD", "K", "MG", "MN", "MN3", "NA",
    "PB", "PT", "RB", "TB", "TL", "WO4", "YB", "ZN",
];

/// One-letter code index (`ACDEFGHIKLMNPQRSTVWYX`) of a residue name: the 20 standard names, else
/// 20 (`X`).
fn residue_type(resname: &str) -> u8 {
    crate::alphabet::one_letter_of_three(resname)
        .and_then(crate::alphabet::index_of)
        .unwrap_or(crate::alphabet::UNKNOWN)
}

/// A residue name as `run.py` spells it: chain + residue number + insertion code (`A10`, `A10A`,
/// `B-3`). `Display` writes that form; `FromStr` reads it back for chain ids without digits or
/// `-` (the chain is the leading run of such characters, the insertion code the trailing
/// letters). Residue selection matches names as strings (as `run.py` does), so it also works for
/// chain ids `FromStr` cannot split.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidueId {
    pub chain: String,
    pub number: i32,
    pub icode: String,
}

impl fmt::Display for ResidueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.chain, self.number, self.icode)
    }
}

impl FromStr for ResidueId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("residue name {s:?} is not chain + number + insertion code (e.g. A10 or A10A)");
        let start = s.find(|c: char| c.is_ascii_digit() || c == '-').ok_or_else(bad)?;
        let (chain, rest) = s.split_at(start);
        let end = rest.char_indices().skip(1).find(|(_, c)| !c.is_ascii_digit()).map_or(rest.len(), |(i, _)| i);
        let (number, icode) = rest.split_at(end);
        if !icode.chars().all(char::is_alphabetic) {
            return Err(bad());
        }
        let number = number.parse::<i32>().map_err(|_| bad())?;
        Ok(ResidueId { chain: chain.to_string(), number, icode: icode.to_string() })
    }
}

/// One atom as read from the file (ProDy's fields), kept so that a writer can reproduce
/// `run.py`'s `backbones/NAME_N.pdb` (ProDy's `backbone` selection followed by its
/// `other_atoms`).
#[derive(Debug, Clone, PartialEq)]
pub struct AtomRecord {
    /// `HETATM` (true) or `ATOM`.
    pub hetatm: bool,
    /// Serial number (hybrid-36 / hexadecimal decoded as ProDy does).
    pub serial: i64,
    /// Atom name, stripped (`CA`).
    pub name: String,
    /// Alternate location: `' '` or `'A'` (others are dropped).
    pub altloc: char,
    /// Residue name, stripped.
    pub resname: String,
    /// Chain id, stripped (may be empty).
    pub chain: String,
    /// Residue number.
    pub resnum: i32,
    /// Insertion code, stripped (`""` when none).
    pub icode: String,
    /// Coordinates (float64, as ProDy holds them).
    pub xyz: [f64; 3],
    /// Occupancy (0 where the PDB columns could not be read).
    pub occupancy: f64,
    /// B-factor (0 where the PDB columns could not be read).
    pub b_factor: f64,
    /// Segment name (PDB columns 73-76), stripped.
    pub segment: String,
    /// Element as written (PDB columns 77-78 / `type_symbol`), stripped, not upper-cased.
    pub element: String,
    /// Formal charge (PDB columns 79-80 as ProDy reads them; 0 when unreadable).
    pub charge: i32,
    /// The six `ANISOU` numbers as written (ProDy's columns 29-35, 36-42, 44-49, 50-56, 57-63,
    /// 64-70; unreadable ones 0), `None` without an `ANISOU` record. ProDy holds them divided by
    /// 10⁴ and writes `int(u / 10⁴ · 10⁴)`; when the file has any `ANISOU` record
    /// ([`LigandStructure::has_anisou`]) it writes one for every atom (zeros where `None`).
    pub anisou: Option<[f64; 6]>,
    /// Line of the record in the (decompressed) file.
    pub line: usize,
}

impl AtomRecord {
    /// `RES NAME CHAIN+NUMBER+ICODE` (`LIG H1 A201`), for messages and notes.
    pub fn label(&self) -> String {
        format!("{} {} {}{}{}", self.resname, self.name, self.chain, self.resnum, self.icode)
    }
}

/// Why context atoms were removed (their atoms count as not there for the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DroppedKind {
    /// Element `H` (type 1) or `D` (not in the list).
    Hydrogen,
    /// Empty element column.
    EmptyElement,
    /// Element `MO`: the official list spells molybdenum `Mb`, so Mo is never context.
    Molybdenum,
    /// Any other element not in the list.
    UnknownElement,
}

/// Context atoms removed for one [`DroppedKind`].
#[derive(Debug, Clone, PartialEq)]
pub struct ContextNote {
    pub kind: DroppedKind,
    /// Indices into [`LigandStructure::other_atoms`].
    pub atoms: Vec<usize>,
}

impl ContextNote {
    /// A sentence for the user (first few atoms named).
    pub fn describe(&self, structure: &LigandStructure) -> String {
        let what = match self.kind {
            DroppedKind::Hydrogen => "hydrogen (H/D) atoms are not context atoms".to_string(),
            DroppedKind::EmptyElement => {
                "atoms without an element (PDB columns 77-78 empty) are not context atoms; write the element to keep them".to_string()
            }
            DroppedKind::Molybdenum => {
                "Mo atoms are not context atoms (the official element list spells molybdenum \"Mb\")".to_string()
            }
            DroppedKind::UnknownElement => "atoms with an element outside the official element list are not context atoms".to_string(),
        };
        let names: Vec<String> = self.atoms.iter().take(5).map(|&i| structure.other_atoms[i].label()).collect();
        let more = if self.atoms.len() > 5 { format!(", … ({} in all)", self.atoms.len()) } else { String::new() };
        format!("{}: {what}: {}{more}", structure.file, names.join(", "))
    }
}

/// Whether the structure has usable context atoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextStatus {
    /// No non-protein, non-water atoms at all: the official single zero atom with `Y_m` = 0.
    None,
    /// Non-protein, non-water atoms exist but every one was removed (e.g. only hydrogens): the
    /// official code crashes; featurization runs as with [`ContextStatus::None`].
    AllRemoved,
    /// This many context atoms.
    Present(usize),
}

/// Options of [`parse_ligand_structure`] (`run.py`'s parsing flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParseOptions {
    /// `--parse_these_chains_only` split at commas; empty = all chains.
    pub chains: Vec<String>,
    /// `--parse_atoms_with_zero_occupancy`.
    pub parse_atoms_with_zero_occupancy: bool,
}

/// A structure read with LigandMPNN's semantics: residues (design positions) in file order with
/// all their atom37 coordinates, context atoms, and the atom records a writer needs.
#[derive(Debug, Clone, PartialEq)]
pub struct LigandStructure {
    /// File name as given (for messages).
    pub file: String,
    /// File stem (`1BC8` for `1BC8.pdb.gz`), as `run.py` names its outputs.
    pub name: String,
    /// Residue ids [L].
    pub ids: Vec<ResidueId>,
    /// Residue names [L] (of the CA atom).
    pub resnames: Vec<String>,
    /// ProDy chain index [L].
    pub chain_labels: Vec<i32>,
    /// Native residues [L] in `ACDEFGHIKLMNPQRSTVWYX` (20 = X).
    pub s: Vec<u8>,
    /// `xyz_37` [L, 37, 3]: every parsed atom (all names of [`ATOM37`] but `OXT`, which the
    /// official parser never reads); zeros where missing.
    pub xyz_37: Vec<[[f32; 3]; 37]>,
    /// `xyz_37_m` [L, 37].
    pub xyz_37_m: Vec<[f32; 37]>,
    /// Context atom coordinates [N] (float32 as the official `Y`).
    pub context_xyz: Vec<[f32; 3]>,
    /// Context atom element numbers [N] (1-based in [`ELEMENTS`]; never 0 or 1).
    pub context_types: Vec<i32>,
    /// For each context atom, its index in [`LigandStructure::other_atoms`].
    pub context_atoms: Vec<usize>,
    /// ProDy's `backbone` selection (protein atoms named N, CA, C, O that passed the occupancy
    /// and chain filters), in file order: the protein part of `run.py`'s output PDB.
    pub backbone: Vec<AtomRecord>,
    /// ProDy's `other_atoms` (`not protein and not water`, after the filters), in file order,
    /// hydrogens and other removed atoms included: the part `run.py` appends to its output PDB.
    pub other_atoms: Vec<AtomRecord>,
    /// Number of water atoms (after the filters).
    pub water_atoms: usize,
    /// Whether the file has `ANISOU` records (ProDy then writes one after every atom).
    pub has_anisou: bool,
    /// Atoms whose occupancy (PDB columns 55-60) could not be read: ProDy takes 0, so they are
    /// dropped unless [`ParseOptions::parse_atoms_with_zero_occupancy`] is set. Worth a warning.
    pub unreadable_occupancy: usize,
    /// Context atoms removed, by kind.
    pub notes: Vec<ContextNote>,
}

impl LigandStructure {
    /// Number of residues `L`.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True without residues (never the case for a parsed structure).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `X` [L, 4, 3]: N, CA, C, O.
    pub fn x(&self) -> Vec<[[f32; 3]; 4]> {
        self.xyz_37.iter().map(|r| BACKBONE37.map(|k| r[k])).collect()
    }

    /// `mask` [L]: 1 where N, CA, C and O are all present.
    pub fn mask(&self) -> Vec<f32> {
        self.xyz_37_m.iter().map(|m| BACKBONE37.iter().map(|&k| m[k]).product()).collect()
    }

    /// `R_idx_original` [L]: residue numbers as written.
    pub fn r_idx_original(&self) -> Vec<i32> {
        self.ids.iter().map(|id| id.number).collect()
    }

    /// Chain letters [L].
    pub fn chain_letters(&self) -> Vec<&str> {
        self.ids.iter().map(|id| id.chain.as_str()).collect()
    }

    /// Chains in order of first appearance among the residues.
    pub fn chains(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in &self.ids {
            if !out.contains(&id.chain) {
                out.push(id.chain.clone());
            }
        }
        out
    }

    /// `run.py` residue names [L] (`A10A`).
    pub fn residue_names(&self) -> Vec<String> {
        self.ids.iter().map(ToString::to_string).collect()
    }

    /// Index of a residue by its `run.py` name (exact string match, the last one if repeated,
    /// as `run.py`'s dictionary).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.ids.iter().rposition(|id| id.to_string() == name)
    }

    /// For each [`LigandStructure::backbone`] record, the residue it belongs to (by chain, number
    /// and insertion code), `None` for backbone atoms of a residue that is not a design position
    /// (its CA was dropped, e.g. at occupancy 0). `run.py` instead assumes exactly four backbone
    /// atoms per residue in order and fails when that does not hold (`ligand_quirks`); a writer
    /// can use this to name every backbone atom's residue correctly.
    pub fn backbone_residues(&self) -> Vec<Option<usize>> {
        let index: HashMap<(&str, i32, &str), usize> =
            self.ids.iter().enumerate().map(|(i, id)| ((id.chain.as_str(), id.number, id.icode.as_str()), i)).collect();
        self.backbone.iter().map(|a| index.get(&(a.chain.as_str(), a.resnum, a.icode.as_str())).copied()).collect()
    }

    /// Whether usable context atoms exist.
    pub fn context_status(&self) -> ContextStatus {
        if !self.context_xyz.is_empty() {
            ContextStatus::Present(self.context_xyz.len())
        } else if self.other_atoms.is_empty() {
            ContextStatus::None
        } else {
            ContextStatus::AllRemoved
        }
    }

    /// The official `parse_PDB` context arrays (`Y`, `Y_t`, `Y_m`): the context atoms, or the
    /// single zero atom with mask 0 when there are none (also for [`ContextStatus::AllRemoved`],
    /// where the official arrays would be empty).
    pub fn context_arrays(&self) -> (Vec<[f32; 3]>, Vec<i32>, Vec<i32>) {
        if self.context_xyz.is_empty() {
            (vec![[0.0; 3]], vec![0], vec![0])
        } else {
            (self.context_xyz.clone(), self.context_types.clone(), vec![1; self.context_xyz.len()])
        }
    }
}

/// Reads a PDB or mmCIF file (gzip allowed) with LigandMPNN's semantics.
pub fn read_ligand_structure(path: &Path, options: &ParseOptions) -> Result<LigandStructure, StructureError> {
    let bytes =
        std::fs::read(path).map_err(|source| StructureError::Io { path: path.display().to_string(), source })?;
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    parse_ligand_structure(&file, &bytes, options)
}

/// Parses PDB or mmCIF bytes (gzip allowed; the content decides the format, else the extension).
/// `file` names the file in messages and, through its stem, the structure.
pub fn parse_ligand_structure(
    file: &str,
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<LigandStructure, StructureError> {
    let data = decompress_if_gzip(file, bytes)?;
    let atoms = match detect_format(file, &data) {
        Format::Pdb => read_pdb_atoms(file, &data)?,
        Format::Mmcif => read_mmcif_atoms(file, &data)?,
        Format::Jsonl => {
            return Err(StructureError::invalid(
                file,
                "LigandMPNN models need a PDB or mmCIF file (a parsed jsonl holds no ligand atoms)",
            ))
        }
    };
    build(file, atoms, options)
}

/// A cheap pre-check of a PDB or mmCIF file's bytes (already decompressed): `false` only when
/// the file surely holds no context atoms (`not protein and not water`), so that the full
/// [`parse_ligand_structure`] can be skipped, e.g. by the native ProteinMPNN path's warning about
/// the ligand context it ignores. It reads each `ATOM`/`HETATM` line's residue name and atom
/// name only: `false` when every residue is named as an amino acid (or water) and holds a `CA`.
/// mmCIF files always say `true` (their columns are declared per file; the full parse decides).
pub fn may_have_context(file: &str, data: &[u8]) -> bool {
    if detect_format(file, data) != Format::Pdb {
        return true;
    }
    // Residue (columns 18-27: name, chain, number, insertion code) -> holds a CA.
    let mut residues: std::collections::HashMap<&[u8], bool> = std::collections::HashMap::new();
    for line in data.split(|&b| b == b'\n') {
        if line.starts_with(b"END") && !residues.is_empty() {
            break; // the first model only, as the full parse
        }
        if !(line.starts_with(b"ATOM") || line.starts_with(b"HETATM")) || line.len() < 27 {
            continue;
        }
        let resname = std::str::from_utf8(&line[17..20]).unwrap_or("?").trim();
        if WATER_NAMES.contains(&resname) {
            continue;
        }
        if !AMINO_ACIDS.contains(&resname) {
            return true;
        }
        let is_ca = line[12..16].trim_ascii() == b"CA" && matches!(line[16], b' ' | b'A');
        *residues.entry(&line[17..27]).or_insert(false) |= is_ca;
    }
    residues.values().any(|&has_ca| !has_ca)
}

/// Atoms read from a file, with ProDy's `TER` flags.
struct RawAtoms {
    atoms: Vec<AtomRecord>,
    /// `termini[i]`: a `TER` record follows atom i.
    termini: Vec<bool>,
    has_anisou: bool,
    unreadable_occupancy: usize,
}

/// Standard hybrid-36 decoding of an upper-case field of `width` characters.
fn hybrid36_upper(s: &str, width: u32) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) {
        return None;
    }
    let v = i64::from_str_radix(t, 36).ok()?;
    Some(v - 10 * 36i64.pow(width - 1) + 10i64.pow(width))
}

/// Python's `int(s, 16)`.
fn py_hex(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    let v = i64::from_str_radix(t, 16).ok()?;
    Some(if neg { -v } else { v })
}

/// ProDy's numbers that are not plain decimals: upper-case non-numeric text is hybrid-36, the
/// rest hexadecimal.
fn prody_nondecimal(s: &str, width: u32) -> Option<i64> {
    let numeric = s.chars().all(|c| c.is_ascii_digit() || c == ' ');
    if !numeric && s == s.to_uppercase() {
        hybrid36_upper(s, width)
    } else {
        py_hex(s)
    }
}

fn read_pdb_atoms(file: &str, data: &[u8]) -> Result<RawAtoms, StructureError> {
    let text = decode_ignore(data);
    let mut atoms: Vec<AtomRecord> = Vec::new();
    let mut termini: Vec<bool> = Vec::new();
    // ProDy reads residue numbers as decimals until one is not (hybrid-36 files), then stays in
    // that mode for the rest of the file.
    let mut decimal = true;
    let mut has_anisou = false;
    let mut unreadable_occupancy = 0usize;
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let l = PyLine::new(raw);
        let record = l.get(0, 6).trim();
        if record == "TER" {
            if let Some(t) = termini.last_mut() {
                *t = true;
            }
            continue;
        }
        if record == "ENDMDL" || record.starts_with("END") {
            if atoms.is_empty() {
                continue;
            }
            break;
        }
        if record == "ANISOU" {
            has_anisou = true;
            let alt = l.get(16, 17).chars().next().unwrap_or(' ');
            if alt != ' ' && alt != 'A' {
                continue;
            }
            if let Some(last) = atoms.last_mut() {
                let cols = [(28, 35), (35, 42), (43, 49), (49, 56), (56, 63), (63, 70)];
                last.anisou = Some(cols.map(|(a, b)| py_float(l.get(a, b)).unwrap_or(0.0)));
            }
            continue;
        }
        if record != "ATOM" && record != "HETATM" {
            continue;
        }
        if l.len() < 54 {
            return Err(StructureError::syntax(
                file,
                line_no,
                format!(
                    "{record} record is only {} characters long; coordinates need columns 31-54 (is the file truncated?)",
                    l.len()
                ),
            ));
        }
        let alt = l.get(16, 17).chars().next().unwrap_or(' ');
        if alt != ' ' && alt != 'A' {
            continue;
        }
        let xyz = l.pdb_coordinates(file, line_no)?;
        for (axis, &v) in ["x", "y", "z"].iter().zip(&xyz) {
            check_range(file, line_no, axis, v)?;
        }
        let serial_text = l.get(6, 11);
        let serial = py_int(serial_text)
            .or_else(|| prody_nondecimal(serial_text, 5))
            .unwrap_or_else(|| atoms.last().map_or(1, |a| a.serial + 1));
        let resnum_text = l.get(22, 26);
        let icode_char = l.get(26, 27);
        let mut icode = String::new();
        let mut resnum: Option<i64> = None;
        if decimal {
            match py_int(resnum_text) {
                Some(n) => resnum = Some(n),
                None => decimal = false,
            }
            if icode_char.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                // ProDy: a digit in column 27 is a fifth digit of the residue number.
                resnum = resnum.and_then(|n| format!("{n}{icode_char}").parse::<i64>().ok());
            } else {
                icode = icode_char.trim().to_string();
            }
            if decimal && atoms.len() > 2 {
                let before = atoms[atoms.len() - 2].resnum as i64;
                if resnum.is_some_and(|r| before > r) && before >= 9999 {
                    decimal = false;
                }
            }
        }
        if !decimal {
            resnum = prody_nondecimal(resnum_text, 4);
        }
        let resnum = resnum.and_then(|n| i32::try_from(n).ok()).ok_or_else(|| {
            StructureError::syntax(
                file,
                line_no,
                format!(
                    "residue number \"{}\" (columns 23-26) is not a decimal, hybrid-36 or hexadecimal number; fix the residue numbering",
                    resnum_text.trim()
                ),
            )
        })?;
        let occupancy = py_float(l.get(54, 60)).unwrap_or_else(|_| {
            unreadable_occupancy += 1;
            0.0
        });
        let b_factor = py_float(l.get(60, 66)).unwrap_or(0.0);
        let charge_text: String = [l.get(79, 80), l.get(78, 79)].concat();
        atoms.push(AtomRecord {
            hetatm: record == "HETATM",
            serial,
            name: l.get(12, 16).trim().to_string(),
            altloc: alt,
            resname: l.get(17, 20).trim().to_string(),
            chain: l.get(21, 22).trim().to_string(),
            resnum,
            icode,
            xyz,
            occupancy,
            b_factor,
            segment: l.get(72, 76).trim().to_string(),
            element: l.get(76, 78).trim().to_string(),
            charge: charge_text.parse::<i32>().unwrap_or(0),
            anisou: None,
            line: line_no,
        });
        termini.push(false);
    }
    if atoms.is_empty() {
        let hint = if data.is_empty() { "the file is empty" } else { "is this a PDB file? for mmCIF use .cif" };
        return Err(StructureError::NoAtoms { file: file.to_string(), hint: hint.to_string() });
    }
    Ok(RawAtoms { atoms, termini, has_anisou, unreadable_occupancy })
}

fn read_mmcif_atoms(file: &str, data: &[u8]) -> Result<RawAtoms, StructureError> {
    let text = decode_ignore(data);
    let AtomSiteTable { tags, values, loop_line } = atom_site_table(file, &text, data.is_empty())?;
    let ncol = tags.len();
    let col = |name: &str| tags.iter().position(|t| t.eq_ignore_ascii_case(&format!("_atom_site.{name}")));
    let need = |name: &str| {
        col(name).ok_or_else(|| {
            StructureError::syntax(file, loop_line, format!("the atom_site loop has no _atom_site.{name} column"))
        })
    };
    let either = |a: &str, b: &str| -> Result<[Option<usize>; 2], StructureError> {
        let pair = [col(a), col(b)];
        if pair.iter().all(Option::is_none) {
            return Err(StructureError::syntax(
                file,
                loop_line,
                format!("the atom_site loop has neither _atom_site.{a} nor _atom_site.{b}"),
            ));
        }
        Ok(pair)
    };
    let xyz_cols = [need("Cartn_x")?, need("Cartn_y")?, need("Cartn_z")?];
    let chain_cols = either("auth_asym_id", "label_asym_id")?;
    let seq_cols = either("auth_seq_id", "label_seq_id")?;
    let comp_cols = either("auth_comp_id", "label_comp_id")?;
    let atom_cols = either("auth_atom_id", "label_atom_id")?;
    let (group, id, alt, icode_col, occ, bfac, elem, charge, model) = (
        col("group_PDB"),
        col("id"),
        col("label_alt_id"),
        col("pdbx_PDB_ins_code"),
        col("occupancy"),
        col("B_iso_or_equiv"),
        col("type_symbol"),
        col("pdbx_formal_charge"),
        col("pdbx_PDB_model_num"),
    );
    let value = |row: &[Tok<'_>], c: Option<usize>| -> Option<String> {
        c.and_then(|i| row.get(i)).and_then(|t| t.value()).map(str::to_string)
    };
    let first = |row: &[Tok<'_>], cs: [Option<usize>; 2]| -> Option<String> { cs.iter().find_map(|&c| value(row, c)) };
    let mut atoms = Vec::new();
    let mut first_model: Option<String> = None;
    for row in values.chunks(ncol) {
        let line = row.first().map_or(loop_line, |t| t.line);
        if let Some(m) = value(row, model) {
            if first_model.get_or_insert_with(|| m.clone()) != &m {
                continue;
            }
        }
        let altloc = match value(row, alt) {
            None => ' ',
            Some(a) if a == "A" => 'A',
            Some(_) => continue,
        };
        let mut xyz = [0.0; 3];
        for (k, axis) in ["x", "y", "z"].into_iter().enumerate() {
            let t = row.get(xyz_cols[k]).map_or("?", |t| t.text);
            xyz[k] = py_float(t).map_err(|special| {
                let why = if special {
                    "is not a finite number (NaN/inf written in the file; fix or remove the atom)"
                } else {
                    "is not a number"
                };
                StructureError::syntax(file, line, format!("Cartn_{axis} \"{t}\" {why}"))
            })?;
            check_range(file, line, axis, xyz[k])?;
        }
        let seq_text = first(row, seq_cols)
            .ok_or_else(|| StructureError::syntax(file, line, "atom has no residue number (auth_seq_id is ? or .)"))?;
        let resnum = seq_text.trim().parse::<i32>().map_err(|_| {
            StructureError::syntax(
                file,
                line,
                format!("residue number \"{seq_text}\" is not an integer; fix the residue numbering"),
            )
        })?;
        let number = |c: Option<usize>, default: f64| value(row, c).and_then(|v| py_float(&v).ok()).unwrap_or(default);
        atoms.push(AtomRecord {
            hetatm: value(row, group).is_some_and(|g| g.eq_ignore_ascii_case("HETATM")),
            serial: value(row, id).and_then(|v| v.trim().parse().ok()).unwrap_or(atoms.len() as i64 + 1),
            name: first(row, atom_cols).unwrap_or_default(),
            altloc,
            resname: first(row, comp_cols).unwrap_or_default(),
            chain: first(row, chain_cols).unwrap_or_default(),
            resnum,
            icode: value(row, icode_col).unwrap_or_default(),
            xyz,
            occupancy: number(occ, 1.0),
            b_factor: number(bfac, 0.0),
            segment: String::new(),
            element: value(row, elem).unwrap_or_default(),
            charge: value(row, charge).and_then(|v| v.trim().parse().ok()).unwrap_or(0),
            anisou: None,
            line,
        });
    }
    if atoms.is_empty() {
        return Err(StructureError::NoAtoms {
            file: file.to_string(),
            hint: "the atom_site table has no rows".to_string(),
        });
    }
    let termini = vec![false; atoms.len()];
    Ok(RawAtoms { atoms, termini, has_anisou: false, unreadable_occupancy: 0 })
}

/// Coordinates beyond ±[`MAX_ABS_COORD`] Å (float32 distances would overflow) are an error.
fn check_range(file: &str, line: usize, axis: &str, v: f64) -> Result<(), StructureError> {
    if v.abs() > MAX_ABS_COORD {
        return Err(StructureError::syntax(
            file,
            line,
            format!(
                "{axis} coordinate {v} is out of range (|x| must be at most {MAX_ABS_COORD} Å); fix the coordinates"
            ),
        ));
    }
    Ok(())
}

/// ProDy's residue index of every atom (`HierView`): a new residue starts where (segment, chain,
/// number, icode) changes or after a `TER`; a run whose key was seen before joins that residue
/// unless the earlier one ended with a `TER` (or the key already names several residues).
fn residue_indices(atoms: &[AtomRecord], termini: &[bool]) -> Vec<usize> {
    type Key<'a> = (&'a str, &'a str, i32, &'a str);
    fn key(a: &AtomRecord) -> Key<'_> {
        (&a.segment, &a.chain, a.resnum, &a.icode)
    }
    let mut out = vec![0usize; atoms.len()];
    // Key → its residue, or `None` once the key names several residues (ProDy's list), after
    // which every new run of that key is a new residue.
    let mut seen: HashMap<Key<'_>, Option<usize>> = HashMap::new();
    let mut last_atom: Vec<usize> = Vec::new();
    let mut start = 0usize;
    let n = atoms.len();
    for j in 1..=n {
        let boundary = j == n || key(&atoms[j]) != key(&atoms[start]) || termini[j - 1];
        if !boundary {
            continue;
        }
        let k = key(&atoms[start]);
        let rid = match seen.get(&k) {
            Some(&Some(rid)) if !termini[last_atom[rid]] => rid,
            found => {
                last_atom.push(0);
                let rid = last_atom.len() - 1;
                seen.insert(k, if found.is_some() { None } else { Some(rid) });
                rid
            }
        };
        for o in out.iter_mut().take(j).skip(start) {
            *o = rid;
        }
        last_atom[rid] = j - 1;
        start = j;
    }
    out
}

fn build(file: &str, raw: RawAtoms, options: &ParseOptions) -> Result<LigandStructure, StructureError> {
    let RawAtoms { atoms, termini, has_anisou, unreadable_occupancy } = raw;
    // Chain indices: order of first appearance of (segment, chain) among all atoms read.
    let mut chain_index: HashMap<(&str, &str), i32> = HashMap::new();
    for a in &atoms {
        let next = chain_index.len() as i32;
        chain_index.entry((a.segment.as_str(), a.chain.as_str())).or_insert(next);
    }
    // Protein: residues holding a CA of an amino-acid name, minus water and ion names.
    let resindex = residue_indices(&atoms, &termini);
    let nres = resindex.iter().max().map_or(0, |m| m + 1);
    let mut protein_residue = vec![false; nres];
    for (a, &r) in atoms.iter().zip(&resindex) {
        if a.name == "CA" && AMINO_ACIDS.contains(&a.resname.as_str()) {
            protein_residue[r] = true;
        }
    }
    let is_water = |a: &AtomRecord| WATER_NAMES.contains(&a.resname.as_str());
    let protein: Vec<bool> = atoms
        .iter()
        .zip(&resindex)
        .map(|(a, &r)| protein_residue[r] && !is_water(a) && !ION_NAMES.contains(&a.resname.as_str()))
        .collect();
    // Filters: occupancy, then chains.
    let chain_ok = |a: &AtomRecord| options.chains.is_empty() || options.chains.contains(&a.chain);
    let selected: Vec<bool> =
        atoms.iter().map(|a| (options.parse_atoms_with_zero_occupancy || a.occupancy > 0.0) && chain_ok(a)).collect();
    if !selected.iter().any(|&s| s) {
        let mut chains: Vec<&str> = Vec::new();
        for a in &atoms {
            if !chains.contains(&a.chain.as_str()) {
                chains.push(&a.chain);
            }
        }
        let problem = if !options.chains.is_empty() && !atoms.iter().any(chain_ok) {
            format!(
                "no atoms in chain(s) {} (parse_these_chains_only); the file has chains {}",
                options.chains.join(", "),
                chains.join(", ")
            )
        } else if unreadable_occupancy > 0 {
            format!(
                "every atom has occupancy 0 ({unreadable_occupancy} have no readable occupancy in columns 55-60, which \
                 counts as 0); write occupancies or use --parse_atoms_with_zero_occupancy 1 to read them"
            )
        } else {
            "every atom has occupancy 0 (columns 55-60); use --parse_atoms_with_zero_occupancy 1 to read them"
                .to_string()
        };
        return Err(StructureError::invalid(file, problem));
    }
    // Residues: the selected protein CA atoms, in file order.
    let mut ids: Vec<ResidueId> = Vec::new();
    let mut resnames = Vec::new();
    let mut chain_labels = Vec::new();
    let mut by_key: HashMap<(&str, i32, &str), usize> = HashMap::new();
    let mut ca_lines: Vec<usize> = Vec::new();
    for (i, a) in atoms.iter().enumerate() {
        if selected[i] && protein[i] && a.name == "CA" {
            let k = (a.chain.as_str(), a.resnum, a.icode.as_str());
            if let Some(&prev) = by_key.get(&k) {
                return Err(StructureError::invalid(
                    file,
                    format!(
                        "residue {} has two CA atoms (lines {} and {}; repeated residue number or both a blank and an 'A' alternate location); \
                         renumber the residue or remove the duplicate",
                        ids[prev], ca_lines[prev], a.line
                    ),
                ));
            }
            by_key.insert(k, ids.len());
            ca_lines.push(a.line);
            ids.push(ResidueId { chain: a.chain.clone(), number: a.resnum, icode: a.icode.clone() });
            resnames.push(a.resname.clone());
            chain_labels.push(chain_index[&(a.segment.as_str(), a.chain.as_str())]);
        }
    }
    if ids.is_empty() {
        return Err(StructureError::invalid(
            file,
            "no protein residues (no CA atom of an amino acid with occupancy > 0 in the chosen chains); \
             LigandMPNN designs protein residues",
        ));
    }
    let l = ids.len();
    let mut xyz_37 = vec![[[0f32; 3]; 37]; l];
    let mut xyz_37_m = vec![[0f32; 37]; l];
    let mut backbone = Vec::new();
    let mut other_atoms = Vec::new();
    let mut water_atoms = 0usize;
    for (i, a) in atoms.iter().enumerate() {
        if !selected[i] {
            continue;
        }
        if protein[i] {
            if let Some(slot) = ATOM37[..36].iter().position(|n| *n == a.name) {
                if let Some(&r) = by_key.get(&(a.chain.as_str(), a.resnum, a.icode.as_str())) {
                    xyz_37[r][slot] = a.xyz.map(|v| v as f32);
                    xyz_37_m[r][slot] = 1.0;
                }
            }
            if matches!(a.name.as_str(), "N" | "CA" | "C" | "O") {
                backbone.push(a.clone());
            }
        } else if is_water(a) {
            water_atoms += 1;
        } else {
            other_atoms.push(a.clone());
        }
    }
    let s = resnames.iter().map(|n| residue_type(n)).collect();
    // Context atoms.
    let mut context_xyz = Vec::new();
    let mut context_types = Vec::new();
    let mut context_atoms = Vec::new();
    let mut notes: Vec<ContextNote> = Vec::new();
    for (i, a) in other_atoms.iter().enumerate() {
        let t = element_number(&a.element);
        if t > 1 {
            context_xyz.push(a.xyz.map(|v| v as f32));
            context_types.push(t);
            context_atoms.push(i);
            continue;
        }
        let up = a.element.to_uppercase();
        let kind = match up.as_str() {
            "H" | "D" => DroppedKind::Hydrogen,
            "" => DroppedKind::EmptyElement,
            "MO" => DroppedKind::Molybdenum,
            _ => DroppedKind::UnknownElement,
        };
        match notes.iter_mut().find(|n| n.kind == kind) {
            Some(n) => n.atoms.push(i),
            None => notes.push(ContextNote { kind, atoms: vec![i] }),
        }
    }
    Ok(LigandStructure {
        file: file.to_string(),
        name: stem_of(file),
        ids,
        resnames,
        chain_labels,
        s,
        xyz_37,
        xyz_37_m,
        context_xyz,
        context_types,
        context_atoms,
        backbone,
        other_atoms,
        water_atoms,
        has_anisou,
        unreadable_occupancy,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(record: &str, name: &str, resname: &str, chain: &str, resnum: i32) -> String {
        format!(
            "{record:<6}{:>5} {name:<4} {resname:>3} {chain}{resnum:>4}    {:>8.3}{:>8.3}{:>8.3}  1.00  0.00           C\n",
            1, 1.0, 2.0, 3.0
        )
    }

    #[test]
    fn context_pre_check_skips_only_files_without_context() {
        let protein: String = ["N", "CA", "C", "O"].iter().map(|n| atom("ATOM", n, "GLY", "A", 1)).collect();
        let water = atom("HETATM", "O", "HOH", "A", 101);
        assert!(!may_have_context("x.pdb", protein.as_bytes()));
        assert!(!may_have_context("x.pdb", (protein.clone() + &water).as_bytes()));
        let ligand = atom("HETATM", "ZN", "ZN", "A", 201);
        assert!(may_have_context("x.pdb", (protein.clone() + &ligand).as_bytes()));
        let dna = atom("ATOM", "P", "DA", "B", 1);
        assert!(may_have_context("x.pdb", (protein.clone() + &dna).as_bytes()));
        let no_ca: String = ["N", "C", "O"].iter().map(|n| atom("ATOM", n, "ALA", "A", 2)).collect();
        assert!(may_have_context("x.pdb", (protein.clone() + &no_ca).as_bytes()));
        // What the full parse reads agrees on each of these.
        for (text, expect) in
            [(protein.clone() + &water, false), (protein.clone() + &ligand, true), (protein.clone() + &no_ca, true)]
        {
            let st = parse_ligand_structure(
                "x.pdb",
                text.as_bytes(),
                &ParseOptions { chains: Vec::new(), parse_atoms_with_zero_occupancy: false },
            )
            .unwrap();
            assert_eq!(!st.other_atoms.is_empty(), expect, "{text}");
        }
        assert!(may_have_context("x.cif", b"data_x\n"));
    }

    #[test]
    fn residue_ids_round_trip() {
        for s in ["A10", "A10A", "B-3", "AB100C", "C1"] {
            let id: ResidueId = s.parse().expect(s);
            assert_eq!(id.to_string(), s);
        }
        let id: ResidueId = "A10B".parse().unwrap();
        assert_eq!((id.chain.as_str(), id.number, id.icode.as_str()), ("A", 10, "B"));
        for bad in ["A", "A1-", "A1A1", ""] {
            assert!(bad.parse::<ResidueId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn element_numbers() {
        assert_eq!(element_number("C"), 6);
        assert_eq!(element_number("Zn"), 30);
        assert_eq!(element_number("H"), 1);
        assert_eq!(element_number("MO"), 0);
        assert_eq!(element_number("Mb"), 42);
        assert_eq!(element_number(""), 0);
        assert_eq!(element_number("UUO"), 0);
    }

    /// A PDB record with ProDy's columns.
    #[allow(clippy::too_many_arguments)]
    fn rec(
        kind: &str,
        serial: usize,
        name: &str,
        alt: char,
        res: &str,
        chain: &str,
        num: &str,
        x: f64,
        occ: &str,
        el: &str,
    ) -> String {
        format!(
            "{kind:<6}{serial:>5} {name:<4}{alt}{res:>3} {chain:1}{num:<5}   {x:8.3}{:8.3}{:8.3}{occ:>6}{:>6}          {el:>2}\n",
            0.0, 0.0, "0.00"
        )
    }

    fn backbone(chain: &str, num: &str, res: &str, x: f64) -> String {
        ["N", "CA", "C", "O"].iter().map(|n| rec("ATOM", 1, n, ' ', res, chain, num, x, "1.00", &n[..1])).collect()
    }

    fn parse(text: &str) -> Result<LigandStructure, StructureError> {
        parse_ligand_structure("t.pdb", text.as_bytes(), &ParseOptions::default())
    }

    #[test]
    fn prody_residue_rules() {
        let mut t = String::new();
        // A ligand of chain Z first: chain indices follow first appearance among all atoms.
        t += &rec("HETATM", 1, "C1", ' ', "LIG", "Z", "1", 9.0, "1.00", "C");
        t += &backbone("A", "1", "GLY", 1.0);
        t += &backbone("A", "2", "MSE", 2.0);
        // UNK has a CA but is not an amino-acid name: context atoms.
        t += &backbone("A", "3", "UNK", 3.0);
        // Ion and water names are never protein.
        t += &rec("HETATM", 1, "CA", ' ', "CA", "A", "4", 4.0, "1.00", "CA");
        t += &rec("HETATM", 1, "O", ' ', "HOH", "A", "5", 5.0, "1.00", "O");
        // A five-digit residue number (digit in the insertion-code column).
        t += &backbone("B", "1000", "ALA", 6.0).replace("1000 ", "10000");
        t += "ENDMDL\n";
        t += &backbone("C", "1", "ALA", 7.0);
        let s = parse(&t).unwrap();
        assert_eq!(s.residue_names(), vec!["A1", "A2", "B10000"]);
        assert_eq!(s.chain_labels, vec![1, 1, 2]);
        assert_eq!(s.s, vec![5, 20, 0]);
        assert_eq!(
            s.other_atoms.iter().map(|a| a.resname.as_str()).collect::<Vec<_>>(),
            ["LIG", "UNK", "UNK", "UNK", "UNK", "CA"]
        );
        assert_eq!(s.context_types, vec![6, 7, 6, 6, 8, 20]);
        assert_eq!(s.water_atoms, 1);
        assert_eq!(s.mask(), vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn ter_splits_a_residue_and_a_repeated_key_is_an_error() {
        let t = format!("{}TER\n{}", backbone("A", "1", "GLY", 1.0), backbone("A", "1", "GLY", 2.0));
        let e = parse(&t).unwrap_err().to_string();
        assert!(e.starts_with("t.pdb: residue A1 has two CA atoms (lines 2 and 7"), "{e}");
        // Without TER the atoms join one residue (the last coordinates win) ...
        let t = format!(
            "{}{}",
            backbone("A", "1", "GLY", 1.0),
            rec("ATOM", 9, "CB", ' ', "GLY", "A", "1", 3.0, "1.00", "C")
        );
        let s = parse(&t).unwrap();
        assert_eq!(s.xyz_37_m[0][3], 1.0);
        // ... and a ligand atom with a protein residue's key is part of that (protein) residue.
        let t = format!(
            "{}{}",
            backbone("A", "1", "GLY", 1.0),
            rec("HETATM", 9, "C1", ' ', "NAG", "A", "1", 3.0, "1.00", "C")
        );
        assert_eq!(parse(&t).unwrap().context_status(), ContextStatus::None);
    }

    #[test]
    fn residue_grouping_is_prodys() {
        let ca = |num: &str| rec("ATOM", 1, "CA", ' ', "GLY", "A", num, 1.0, "1.00", "C");
        let groups = |t: &str| {
            let raw = read_pdb_atoms("t.pdb", t.as_bytes()).unwrap();
            residue_indices(&raw.atoms, &raw.termini)
        };
        assert_eq!(groups(&[ca("1"), ca("2"), ca("1")].concat()), vec![0, 1, 0]);
        let t = [ca("1"), "TER\n".into(), ca("1"), ca("2"), ca("1")].concat();
        assert_eq!(groups(&t), vec![0, 1, 2, 3]);
    }

    #[test]
    fn altlocs_occupancy_and_hybrid36() {
        let mut t = backbone("A", "1", "GLY", 1.0);
        t += &rec("ATOM", 5, "CB", 'B', "GLY", "A", "1", 9.0, "1.00", "C");
        t += &rec("HETATM", 6, "ZN", ' ', "ZN", "A", "2", 9.0, "0.00", "ZN");
        t += &rec("HETATM", 7, "FE", 'A', "FE", "A", "3", 9.0, "0.50", "FE");
        // Hybrid-36 residue numbers switch ProDy to hybrid-36 / hexadecimal for the rest of the file.
        t += &backbone("B", "A000", "GLY", 2.0);
        t += &backbone("B", "10", "GLY", 3.0);
        let s = parse(&t).unwrap();
        assert_eq!(s.residue_names(), vec!["A1", "B10000", "B16"]);
        assert_eq!(s.xyz_37_m[0][3], 0.0);
        assert_eq!(s.context_types, vec![26]);
        let s = parse_ligand_structure(
            "t.pdb",
            t.as_bytes(),
            &ParseOptions { parse_atoms_with_zero_occupancy: true, chains: vec!["A".into()] },
        )
        .unwrap();
        assert_eq!(s.residue_names(), vec!["A1"]);
        assert_eq!(s.context_types, vec![30, 26]);
    }

    #[test]
    fn hybrid36() {
        assert_eq!(hybrid36_upper("A000", 4), Some(10000));
        assert_eq!(hybrid36_upper("A0000", 5), Some(100000));
        assert_eq!(py_hex(" 1f "), Some(31));
    }
}
