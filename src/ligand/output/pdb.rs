//! `backbones/NAME_N.pdb` as `run.py` writes it with ProDy's `writePDB(backbone + other_atoms)`:
//! the backbone atoms (N, CA, C, O of ProDy's `protein` selection, in file order) renamed to the
//! designed residues with B-factors exp(−CE)·(CE > 0.01), then every kept non-protein, non-water
//! atom with B-factor 0 — ProDy's line layout, serials renumbered from 1, `ANISOU` records when
//! the input had any, `TER` where the input had one after a kept atom of an amino-acid residue,
//! and ProDy's `REMARK` naming the selections.

use std::fmt::Write as _;

/// One atom as ProDy holds it after `parsePDB` (fields as parsed; names stripped).
#[derive(Debug, Clone, PartialEq)]
pub struct PdbAtom {
    /// HETATM record (else ATOM).
    pub hetatm: bool,
    pub name: String,
    /// Alternate location as read ('' when blank).
    pub altloc: String,
    pub resname: String,
    pub chain: String,
    pub resnum: i32,
    /// Insertion code ('' when blank).
    pub icode: String,
    pub xyz: [f64; 3],
    pub occupancy: f64,
    pub beta: f64,
    /// Segment name (columns 73-76, stripped).
    pub segment: String,
    /// Element (columns 77-78, stripped, as written).
    pub element: String,
    /// Formal charge (columns 79-80; 0 when blank).
    pub charge: i32,
    /// The six ANISOU values of the input as ProDy read them (floats of the text columns), where
    /// it had a record for this atom.
    pub anisou: Option<[f64; 6]>,
    /// A `TER` record followed this atom in the input.
    pub ter_after: bool,
}

/// ProDy's `str()` of a selection: `Selection '<selstr>'`, the string cut to its first and last
/// 15 characters around `...` when longer than 33.
pub fn selection_str(selstr: &str) -> String {
    let chars: Vec<char> = selstr.chars().collect();
    let shown: String = if chars.len() > 33 {
        let head: String = chars[..15].iter().collect();
        let tail: String = chars[chars.len() - 15..].iter().collect();
        format!("{head}...{tail}")
    } else {
        selstr.to_string()
    };
    format!("Selection {}", python_str_repr(&shown))
}

/// Python's `repr(str)` for the plain strings selections hold.
fn python_str_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// The selection strings `parse_PDB` builds: `occupancy > 0` (unless zero-occupancy atoms are
/// parsed), then `chain A or chain B` (with `--parse_these_chains_only`), then `protein` /
/// `backbone`, and `not protein and not water` for the context atoms. Returns the `REMARK` text
/// of `backbone + other_atoms` (or of `backbone` alone when there are no context atoms).
pub fn remark(parse_zero_occupancy: bool, chains: &[String], has_other_atoms: bool) -> String {
    let mut base: Option<String> = None;
    if !parse_zero_occupancy {
        base = Some("occupancy > 0".into());
    }
    if !chains.is_empty() {
        let sel = chains.iter().map(|c| format!("chain {c}")).collect::<Vec<_>>().join(" or ");
        base = Some(match base {
            Some(b) => format!("({sel}) and ({b})"),
            None => sel,
        });
    }
    let and = |new: &str, old: &Option<String>| match old {
        Some(o) => format!("({new}) and ({o})"),
        None => new.to_string(),
    };
    let protein = and("protein", &base);
    let backbone = format!("(backbone) and ({protein})");
    if has_other_atoms {
        let other = and("not protein and not water", &base);
        format!("AtomMap ({}) + ({})", selection_str(&backbone), selection_str(&other))
    } else {
        selection_str(&backbone)
    }
}

/// Residue names taken as amino acids (or nucleotides) by ProDy's `AAMAP` test before a `TER`:
/// `writePDB` writes the TER records of the input only after atoms of these residues (the
/// designed backbone always qualifies). The 20 standard names, ProDy's non-standard amino acids
/// and the nucleotides (1BC8's DNA keeps its TER records in the official output).
fn in_aamap(resname: &str) -> bool {
    const NAMES: [&str; 53] = [
        "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE", "PRO", "SER",
        "THR", "TRP", "TYR", "VAL", "ASX", "GLX", "ASH", "GLH", "CSO", "CYX", "HIP", "HID", "HIE", "HSD", "HSE", "HSP",
        "HISD", "HISE", "HISP", "LYN", "TYM", "ARN", "MSE", "CME", "SEC", "SEP", "TPO", "PTR", "PHD", "XLE", "XAA",
        "MEN", "CSB", "PYL", "UNK", "DA", "DC",
    ];
    const NUCLEOTIDES: [&str; 8] = ["DG", "DT", "DU", "A", "C", "G", "T", "U"];
    NAMES.contains(&resname) || NUCLEOTIDES.contains(&resname)
}

/// ProDy's `%6.2f` etc. are C formats; Rust's `{:.N}` rounds the same exact binary value.
fn f(x: f64, width: usize, prec: usize) -> String {
    format!("{x:>width$.prec$}")
}

/// What one backbone atom becomes: its residue's new name and B-factor.
#[derive(Debug, Clone, PartialEq)]
pub struct Threaded {
    pub resname: String,
    pub beta: f64,
}

/// B-factor of a designed residue: exp(−CE)·(CE > 0.01), in float32 as numpy computes it.
pub fn confidence_beta(ce: f32) -> f64 {
    let b = (-ce).exp() * if ce > 0.01 { 1.0f32 } else { 0.0 };
    b as f64
}

/// The text of `backbones/NAME_N.pdb`.
///
/// `backbone[i]` is written with `threaded[i]` (its residue's designed name and B-factor, or
/// `None` to keep the atom's own name with B-factor 0: a backbone atom of a residue without a
/// CA, where `run.py` stops with an error); `ligand` atoms keep their names with B-factor 0.
/// `anisou`: the input had ANISOU records (then every atom gets one; zeros where it had none).
pub fn backbone_pdb(
    remark: &str,
    backbone: &[PdbAtom],
    threaded: &[Option<Threaded>],
    ligand: &[PdbAtom],
    anisou: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "REMARK {remark}");
    let mut ter_lines = 0usize;
    let atoms = backbone
        .iter()
        .zip(threaded.iter().chain(std::iter::repeat(&None)))
        .map(|(a, t)| match t {
            Some(t) => (a, t.resname.clone(), t.beta),
            None => (a, a.resname.clone(), a.beta * 0.0),
        })
        .chain(ligand.iter().map(|a| (a, a.resname.clone(), a.beta * 0.0)));
    for (i, (a, resname, beta)) in atoms.enumerate() {
        let serial = i + 1 + ter_lines;
        let record = if a.hetatm { "HETATM" } else { "ATOM" };
        let name = if a.name.chars().count() < 4 { format!(" {}", a.name) } else { a.name.clone() };
        let resname3: String = resname.chars().take(3).collect();
        let chain: String = a.chain.chars().take(1).collect();
        let (resnum, icode) = resnum_field(a.resnum, &a.icode);
        let element = format!("{:>2}", a.element);
        let charge = charge_field(a.charge);
        let serial_s = serial_field(serial);
        let _ = writeln!(
            out,
            "{record:<6}{serial_s} {name:<4}{altloc:1}{resname3:<3}{chain:>2}{resnum}{icode:1}   {x}{y}{z}{occ}{b}      {seg:>4}{element:>2}{charge:>2}",
            altloc = a.altloc,
            x = f(a.xyz[0], 8, 3),
            y = f(a.xyz[1], 8, 3),
            z = f(a.xyz[2], 8, 3),
            occ = f(a.occupancy, 6, 2),
            b = f(beta, 6, 2),
            seg = a.segment,
        );
        if anisou {
            let u = a.anisou.map(prody_anisou).unwrap_or([0; 6]);
            let _ = writeln!(
                out,
                "ANISOU{serial_s} {name:<4}{altloc:1}{resname3:<3}{chain_full:>2}{resnum}{icode:1} {:>7}{:>7}{:>7}{:>7}{:>7}{:>7}  {seg:>4}{element:>2}{charge:>2}",
                u[0],
                u[1],
                u[2],
                u[3],
                u[4],
                u[5],
                altloc = a.altloc,
                chain_full = a.chain,
                seg = a.segment,
            );
        }
        if a.ter_after && in_aamap(&resname) {
            let ter_serial = serial_field(serial + 1);
            let line = format!("TER   {ter_serial} {:<4}{:1}{resname3:<3}{:>2}{resnum}{icode:1}", "", "", a.chain);
            let line: String = line.chars().take(26).collect();
            let _ = writeln!(out, "{line:<26}{}", " ".repeat(54));
            ter_lines += 1;
        }
    }
    out.push_str(&format!("END   {}\n", " ".repeat(74)));
    out
}

/// `%5d` below 100000 serials, `%5x` from there on (ProDy's hexadecimal switch).
fn serial_field(serial: usize) -> String {
    if serial > 99999 {
        format!("{serial:>5x}")
    } else {
        format!("{serial:>5}")
    }
}

/// `%4d` of the residue number and the insertion code; a 5-digit number keeps its first four
/// digits and moves the fifth into an empty insertion code (ProDy).
fn resnum_field(resnum: i32, icode: &str) -> (String, String) {
    let s = resnum.to_string();
    if s.len() == 5 {
        let icode = if icode.is_empty() { s[4..].to_string() } else { icode.to_string() };
        (format!("{:>4}", &s[..4]), icode)
    } else if s.len() > 5 {
        (format!("{:>4}", &s[..4]), icode.to_string())
    } else {
        (format!("{resnum:>4}"), icode.to_string())
    }
}

fn charge_field(charge: i32) -> String {
    if charge == 0 {
        "  ".into()
    } else {
        format!("{}{}", charge.unsigned_abs(), if charge < 0 { '-' } else { '+' })
    }
}

/// ProDy stores ANISOU values divided by 10000 (float64) and writes `int(u · 10000)`, which
/// truncates some values by one (7101 → 7100).
pub fn prody_anisou(u: [f64; 6]) -> [i64; 6] {
    u.map(|v| ((v / 10000.0) * 10000.0) as i64)
}

/// What ProDy's `parsePDB` attaches to atoms from the records around them, by line number (1-based,
/// lines split at `\n`, as the parser's `AtomRecord::line`) of the atom's ATOM/HETATM record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputAnnotations {
    /// ANISOU values of the atom (the record following it).
    pub anisou: std::collections::HashMap<usize, [f64; 6]>,
    /// Atoms followed by a TER record.
    pub ter_after: std::collections::HashSet<usize>,
    /// The file has ANISOU records (ProDy then writes one for every atom).
    pub any_anisou: bool,
}

/// ProDy's reading of ANISOU and TER records: both belong to the last atom read before them
/// whose alternate location is kept (blank or `A`); ANISOU columns 29-35, 36-42, 44-49, 50-56,
/// 57-63, 64-70 are read as floats until one fails. Only the first model is read.
pub fn input_annotations(text: &str) -> InputAnnotations {
    let mut out = InputAnnotations::default();
    let mut last: Option<usize> = None;
    for (i, line) in text.split('\n').enumerate() {
        let i = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let rec: String = line.chars().take(6).collect();
        let kept_alt = || matches!(line.as_bytes().get(16), None | Some(b' ') | Some(b'A'));
        if rec == "ATOM  " || rec == "HETATM" {
            if kept_alt() {
                last = Some(i);
            }
        } else if rec == "ANISOU" {
            out.any_anisou = true;
            if !kept_alt() {
                continue;
            }
            if let Some(a) = last {
                let cols = [(28, 35), (35, 42), (43, 49), (49, 56), (56, 63), (63, 70)];
                let mut u = [0f64; 6];
                for (k, (s, e)) in cols.into_iter().enumerate() {
                    match line.get(s..e.min(line.len())).and_then(|t| t.trim().parse::<f64>().ok()) {
                        Some(v) => u[k] = v,
                        None => break,
                    }
                }
                out.anisou.insert(a, u);
            }
        } else if rec == "TER   " || rec.trim() == "TER" {
            if let Some(a) = last {
                out.ter_after.insert(a);
            }
        } else if rec == "ENDMDL" || rec.starts_with("END") {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(name: &str, resname: &str, hetatm: bool) -> PdbAtom {
        PdbAtom {
            hetatm,
            name: name.into(),
            altloc: String::new(),
            resname: resname.into(),
            chain: "C".into(),
            resnum: 1,
            icode: String::new(),
            xyz: [-14.358, 13.416, 9.007],
            occupancy: 1.0,
            beta: 48.14,
            segment: String::new(),
            element: name[..1].into(),
            charge: 0,
            anisou: None,
            ter_after: false,
        }
    }

    #[test]
    fn remarks_match_prody() {
        assert_eq!(
            remark(false, &[], true),
            "AtomMap (Selection '(backbone) and ...occupancy > 0))') + (Selection '(not protein an...(occupancy > 0)')"
        );
        assert_eq!(remark(false, &["B".into()], false), "Selection '(backbone) and ...ccupancy > 0)))'");
    }

    #[test]
    fn lines_match_prody() {
        let bb = vec![atom("N", "MET", false)];
        let mut zn = atom("ZN", "ZN", true);
        zn.element = "ZN".into();
        zn.chain = "B".into();
        zn.resnum = 2;
        zn.xyz = [12.870, 8.232, 24.146];
        let text = backbone_pdb("R", &bb, &[Some(Threaded { resname: "PRO".into(), beta: 0.33 })], &[zn], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "ATOM      1  N   PRO C   1     -14.358  13.416   9.007  1.00  0.33           N  ");
        assert_eq!(lines[2], "HETATM    2  ZN  ZN  B   2      12.870   8.232  24.146  1.00  0.00          ZN  ");
        assert_eq!(lines[3].len(), 80);
        assert_eq!(
            prody_anisou([8739.0, 5936.0, 7101.0, -1177.0, -941.0, -2588.0]),
            [8739, 5936, 7100, -1177, -941, -2587]
        );
        let text = "ATOM      1  N   SER A   7      14.763  45.903  30.850  1.00 73.53           N  \n\
                    ANISOU    1  N   SER A   7     9210   6402   7348  -1167   -972  -2852       N  \n\
                    ATOM      2  CA BSER A   7      14.763  45.903  30.850  1.00 73.53           C  \n\
                    TER       3      SER A   7\n";
        let ann = input_annotations(text);
        assert!(ann.any_anisou);
        assert_eq!(ann.anisou[&1], [9210.0, 6402.0, 7348.0, -1167.0, -972.0, -2852.0]);
        assert!(ann.ter_after.contains(&1), "TER belongs to the last kept atom (altloc B is skipped)");
    }
}
