//! mmCIF reader: the `_atom_site` category read with the official PDB parser's semantics.

use std::collections::HashMap;

use super::builder::{finish_in_chain_order, ChainBuilder};
use super::text::{decode_ignore, py_float, stem_of};
use super::{Protein, StructureError};

/// One CIF token with the line it starts on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok<'a> {
    pub(crate) text: &'a str,
    pub(crate) quoted: bool,
    pub(crate) line: usize,
}

impl Tok<'_> {
    /// The value, or `None` for the unquoted `?` (unknown) and `.` (inapplicable).
    pub(crate) fn value(&self) -> Option<&str> {
        if !self.quoted && (self.text == "?" || self.text == ".") {
            None
        } else {
            Some(self.text)
        }
    }
    fn is_tag(&self) -> bool {
        !self.quoted && self.text.starts_with('_')
    }
    fn is_reserved(&self) -> bool {
        if self.quoted {
            return false;
        }
        let t = self.text.as_bytes();
        let starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
        starts(b"data_") || starts(b"loop_") || starts(b"save_") || starts(b"global_") || starts(b"stop_")
    }
}

/// CIF 1.1 tokenizer (comments, quoted values, `;` text fields).
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
    pending: Option<Tok<'a>>,
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    let (s, p) = (s.as_bytes(), prefix.as_bytes());
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Lexer { s, pos: 0, line: 1, pending: None }
    }

    fn push_back(&mut self, t: Tok<'a>) {
        self.pending = Some(t);
    }

    fn slice(&self, a: usize, b: usize) -> &'a str {
        self.s.get(a..b).unwrap_or("")
    }

    fn next(&mut self) -> Result<Option<Tok<'a>>, (usize, String)> {
        if let Some(t) = self.pending.take() {
            return Ok(Some(t));
        }
        let b = self.s.as_bytes();
        loop {
            while self.pos < b.len() && is_ws(b[self.pos]) {
                if b[self.pos] == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return Ok(None);
            }
            if b[self.pos] == b'#' {
                while self.pos < b.len() && b[self.pos] != b'\n' {
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
        let start = self.pos;
        let line = self.line;
        let c = b[start];
        if c == b';' && (start == 0 || b[start - 1] == b'\n') {
            // Text field: up to a line that starts with ';'.
            let mut i = start + 1;
            loop {
                if i >= b.len() {
                    return Err((
                        line,
                        "text field (a line starting with ';') is never closed; the file may be truncated".into(),
                    ));
                }
                if b[i] == b'\n' {
                    self.line += 1;
                    if i + 1 < b.len() && b[i + 1] == b';' {
                        let text = self.slice(start + 1, i);
                        self.pos = i + 2;
                        return Ok(Some(Tok { text, quoted: true, line }));
                    }
                }
                i += 1;
            }
        }
        if c == b'\'' || c == b'"' {
            let mut i = start + 1;
            loop {
                if i >= b.len() || b[i] == b'\n' {
                    return Err((line, format!("quoted value starting with {} is not closed on its line", c as char)));
                }
                if b[i] == c && (i + 1 >= b.len() || is_ws(b[i + 1])) {
                    let text = self.slice(start + 1, i);
                    self.pos = i + 1;
                    return Ok(Some(Tok { text, quoted: true, line }));
                }
                i += 1;
            }
        }
        let mut i = start;
        while i < b.len() && !is_ws(b[i]) {
            i += 1;
        }
        self.pos = i;
        Ok(Some(Tok { text: self.slice(start, i), quoted: false, line }))
    }
}

/// Column positions of the `_atom_site` items we use.
struct Columns {
    group: Option<usize>,
    asym: [Option<usize>; 2],
    seq: [Option<usize>; 2],
    icode: Option<usize>,
    comp: [Option<usize>; 2],
    atom: [Option<usize>; 2],
    xyz: [usize; 3],
}

impl Columns {
    fn find(file: &str, line: usize, tags: &[String]) -> Result<Columns, StructureError> {
        let col = |name: &str| tags.iter().position(|t| t.eq_ignore_ascii_case(&format!("_atom_site.{name}")));
        let need = |name: &str| {
            col(name).ok_or_else(|| {
                StructureError::syntax(file, line, format!("the atom_site loop has no _atom_site.{name} column"))
            })
        };
        let c = Columns {
            group: col("group_PDB"),
            asym: [col("auth_asym_id"), col("label_asym_id")],
            seq: [col("auth_seq_id"), col("label_seq_id")],
            icode: col("pdbx_PDB_ins_code"),
            comp: [col("auth_comp_id"), col("label_comp_id")],
            atom: [col("auth_atom_id"), col("label_atom_id")],
            xyz: [need("Cartn_x")?, need("Cartn_y")?, need("Cartn_z")?],
        };
        for (what, pair) in [("asym_id", c.asym), ("seq_id", c.seq), ("comp_id", c.comp), ("atom_id", c.atom)] {
            if pair.iter().all(Option::is_none) {
                return Err(StructureError::syntax(
                    file,
                    line,
                    format!("the atom_site loop has neither _atom_site.auth_{what} nor _atom_site.label_{what}"),
                ));
            }
        }
        Ok(c)
    }
}

fn first_value<'a>(row: &[Tok<'a>], cols: [Option<usize>; 2]) -> Option<&'a str> {
    cols.iter().flatten().filter_map(|&i| row.get(i)).find_map(|t| {
        if !t.quoted && (t.text == "?" || t.text == ".") {
            None
        } else {
            Some(t.text)
        }
    })
}

/// The `_atom_site` table of the first data block that has one: column tags, values row-major
/// (`tags.len()` values per row), and the line the table starts on.
pub(crate) struct AtomSiteTable<'a> {
    pub(crate) tags: Vec<String>,
    pub(crate) values: Vec<Tok<'a>>,
    pub(crate) loop_line: usize,
}

/// Finds the `_atom_site` table in mmCIF text (a `loop_`, or single items for one atom) and checks
/// that its values fill whole rows. `empty_file` only chooses the message when nothing is found.
pub(crate) fn atom_site_table<'a>(
    file: &str,
    text: &'a str,
    empty_file: bool,
) -> Result<AtomSiteTable<'a>, StructureError> {
    let mut lex = Lexer::new(text);
    let lex_err = |(line, msg): (usize, String)| StructureError::syntax(file, line, msg);
    let mut tags: Vec<String> = Vec::new();
    let mut values: Vec<Tok<'a>> = Vec::new();
    let mut loop_line = 1;
    let mut single_tags: Vec<String> = Vec::new();
    let mut single_values: Vec<Tok<'a>> = Vec::new();
    let mut found_loop = false;
    while let Some(t) = lex.next().map_err(lex_err)? {
        if !t.quoted && t.text.eq_ignore_ascii_case("loop_") {
            let mut loop_tags = Vec::new();
            let mut first = None;
            while let Some(n) = lex.next().map_err(lex_err)? {
                if n.is_tag() {
                    loop_tags.push(n.text.to_string());
                } else {
                    first = Some(n);
                    break;
                }
            }
            let is_atom_site = loop_tags.first().is_some_and(|t| starts_with_ci(t, "_atom_site."));
            let mut vals = Vec::new();
            let mut next = first;
            while let Some(v) = next {
                if v.is_tag() || v.is_reserved() {
                    lex.push_back(v);
                    break;
                }
                if is_atom_site {
                    vals.push(v);
                }
                next = lex.next().map_err(lex_err)?;
            }
            if is_atom_site {
                tags = loop_tags;
                values = vals;
                loop_line = t.line;
                found_loop = true;
                break;
            }
        } else if t.is_tag() {
            let v = lex.next().map_err(lex_err)?;
            let is_atom_site = starts_with_ci(t.text, "_atom_site.");
            match v {
                Some(v) if !v.is_tag() && !v.is_reserved() => {
                    if is_atom_site {
                        single_tags.push(t.text.to_string());
                        single_values.push(v);
                    }
                }
                _ => return Err(StructureError::syntax(file, t.line, format!("item {} has no value", t.text))),
            }
        }
    }
    if !found_loop && !single_tags.is_empty() {
        tags = single_tags;
        values = single_values;
        loop_line = values.first().map_or(1, |v| v.line);
    }
    if tags.is_empty() {
        let hint = if empty_file {
            "the file is empty"
        } else {
            "no _atom_site records; is this an mmCIF file? for PDB format use .pdb"
        };
        return Err(StructureError::NoAtoms { file: file.to_string(), hint: hint.to_string() });
    }
    let ncol = tags.len();
    if !values.len().is_multiple_of(ncol) {
        let line = values.last().map_or(loop_line, |v| v.line);
        return Err(StructureError::syntax(
            file,
            line,
            format!(
                "the atom_site table has {} values, not a multiple of its {ncol} columns (is the file truncated?)",
                values.len()
            ),
        ));
    }
    Ok(AtomSiteTable { tags, values, loop_line })
}

/// Parses mmCIF text (`_atom_site` of the first data block that has one). `file` is the file name
/// used in messages; the protein is named by its stem.
///
/// Chain id = `auth_asym_id`, residue = `auth_seq_id` + `pdbx_PDB_ins_code`, residue name =
/// `auth_comp_id` (else `label_comp_id`), atom = `auth_atom_id` (else `label_atom_id`); `HETATM MSE`
/// is read as `ATOM MET` and other `HETATM` rows are ignored; the first occurrence of an atom
/// wins (first model, first alternate location). Chains are ordered by the official chain
/// alphabet, ids outside it after those in order of first appearance.
pub fn parse_mmcif_bytes(file: &str, bytes: &[u8]) -> Result<Protein, StructureError> {
    let text = decode_ignore(bytes);
    let AtomSiteTable { tags, values, loop_line } = atom_site_table(file, &text, bytes.is_empty())?;
    let ncol = tags.len();
    let cols = Columns::find(file, loop_line, &tags)?;
    let mut builders: Vec<ChainBuilder> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut hetatm = 0usize;
    for row in values.chunks(ncol) {
        let line = row.first().map_or(loop_line, |t| t.line);
        let group = cols.group.and_then(|i| row.get(i)).map_or("ATOM", |t| t.text);
        let mut comp = first_value(row, cols.comp).unwrap_or("");
        if group.eq_ignore_ascii_case("HETATM") {
            hetatm += 1;
            if comp == "MSE" {
                comp = "MET";
            } else {
                continue;
            }
        } else if !group.eq_ignore_ascii_case("ATOM") {
            continue;
        }
        let chain = first_value(row, cols.asym)
            .ok_or_else(|| StructureError::syntax(file, line, "atom has no chain id (auth_asym_id is ? or .)"))?;
        let seq_text = first_value(row, cols.seq)
            .ok_or_else(|| StructureError::syntax(file, line, "atom has no residue number (auth_seq_id is ? or .)"))?;
        let number = seq_text.trim().parse::<i64>().ok().and_then(|n| n.checked_sub(1)).ok_or_else(|| {
            StructureError::syntax(file, line, format!("residue number \"{seq_text}\" is not an integer"))
        })?;
        let icode = cols.icode.and_then(|i| row.get(i)).and_then(|t| t.value()).unwrap_or("");
        let atom = first_value(row, cols.atom).unwrap_or("");
        let mut xyz = [0.0; 3];
        for (k, axis) in ["x", "y", "z"].into_iter().enumerate() {
            let t = row.get(cols.xyz[k]).map_or("?", |t| t.text);
            xyz[k] = py_float(t).map_err(|special| {
                let why = if special {
                    "is not a finite number (NaN/inf written in the file; fix or remove the atom)"
                } else {
                    "is not a number"
                };
                StructureError::syntax(file, line, format!("Cartn_{axis} \"{t}\" {why}"))
            })?;
        }
        let slot = match index.get(chain) {
            Some(&i) => i,
            None => {
                index.insert(chain.to_string(), builders.len());
                builders.push(ChainBuilder::new(chain));
                builders.len() - 1
            }
        };
        builders[slot].add(number, icode, comp, atom, xyz);
    }
    if builders.is_empty() {
        let hint = if hetatm > 0 {
            "only HETATM records (ligands, water); ProteinMPNN needs protein ATOM records"
        } else {
            "the atom_site table has no ATOM rows"
        };
        return Err(StructureError::NoAtoms { file: file.to_string(), hint: hint.to_string() });
    }
    let chains = finish_in_chain_order(builders, file)?;
    Ok(Protein { name: stem_of(file), chains })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexer_handles_quotes_and_text_fields() {
        let s = "data_x\n# c\n_a 'it''s' \"O5'\"\n;line1\nline2\n;\nbare\n";
        let mut l = Lexer::new(s);
        let mut got = Vec::new();
        while let Ok(Some(t)) = l.next() {
            got.push((t.text.to_string(), t.quoted, t.line));
        }
        assert_eq!(got[0].0, "data_x");
        assert_eq!(got[1], ("_a".into(), false, 3));
        assert_eq!(got[2].0, "it''s");
        assert_eq!(got[3].0, "O5'");
        assert_eq!(got[4], ("line1\nline2".into(), true, 4));
        assert_eq!(got[5], ("bare".into(), false, 7));
    }

    #[test]
    fn multi_character_chain_ids_are_ordered() {
        let mut s = String::from("data_t\nloop_\n_atom_site.group_PDB\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n_atom_site.auth_asym_id\n_atom_site.auth_seq_id\n_atom_site.pdbx_PDB_ins_code\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n");
        for (i, ch) in ["AA", "B", "12", "a", "3"].iter().enumerate() {
            for atom in ["N", "CA", "C", "O"] {
                s.push_str(&format!("ATOM {atom} GLY {ch} {} ? 1.0 2.0 3.0\n", i + 1));
            }
        }
        s.push_str("HETATM O HOH W 1 ? 0 0 0\n");
        let p = parse_mmcif_bytes("t.cif", s.as_bytes()).expect("parses");
        assert_eq!(p.chain_ids(), vec!["B", "a", "3", "12", "AA"]);
        assert_eq!(p.chains[0].sequence, "G");
    }
}
