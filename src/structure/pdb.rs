//! PDB reader with the semantics of the official `parse_PDB` / `parse_PDB_biounits`.

use super::builder::ChainBuilder;
use super::text::{chain_alphabet_position, decode_ignore, py_int, py_rstrip, py_strip, stem_of, PyLine};
use super::{Protein, StructureError};

/// Parses PDB text. `file` is the file name used in messages (`5L33.pdb`); the protein is named
/// by its stem (`5L33`).
///
/// Exactly the official reading: `HETATM MSE` lines become `ATOM MET`, other `HETATM` lines are
/// ignored; chains are those of the official alphabet (`A-Z`, `a-z`, `0-9` for one-character
/// ids), in that order; per residue number and insertion code the first residue name and, per
/// atom, the first coordinates win; residue numbers missing between the lowest and highest
/// become `-` with NaN coordinates.
pub fn parse_pdb_bytes(file: &str, bytes: &[u8]) -> Result<Protein, StructureError> {
    check_not_cut_short(file, bytes)?;
    let mut chains: Vec<Option<ChainBuilder>> = (0..62).map(|_| None).collect();
    let mut atom_lines = 0usize;
    let mut hetatm_lines = 0usize;
    let mut ignored_chain: Option<String> = None;
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let decoded = decode_ignore(raw);
        let mut line: std::borrow::Cow<'_, str> = std::borrow::Cow::Borrowed(py_rstrip(&decoded));
        if line.starts_with("HETATM") {
            hetatm_lines += 1;
            if PyLine::new(&line).get(17, 20) == "MSE" {
                line = std::borrow::Cow::Owned(line.replace("HETATM", "ATOM  ").replace("MSE", "MET"));
            }
        }
        if !line.starts_with("ATOM") {
            continue;
        }
        atom_lines += 1;
        let l = PyLine::new(&line);
        if l.len() < 54 {
            return Err(StructureError::syntax(
                file,
                line_no,
                format!(
                    "ATOM record is only {} characters long; coordinates need columns 31-54 (is the file truncated?)",
                    l.len()
                ),
            ));
        }
        let ch = l.get(21, 22);
        let Some(pos) = chain_alphabet_position(ch).filter(|&p| p < 62) else {
            ignored_chain.get_or_insert_with(|| ch.to_string());
            continue;
        };
        let atom = py_strip(l.get(12, 16));
        let resname = l.get(17, 20);
        let xyz = l.pdb_coordinates(file, line_no)?;
        let resn = py_strip(l.get(22, 27));
        let (icode, number_text) = match resn.chars().last() {
            None => return Err(StructureError::syntax(file, line_no, "residue number (columns 23-27) is empty")),
            Some(c) if c.is_alphabetic() => (&resn[resn.len() - c.len_utf8()..], &resn[..resn.len() - c.len_utf8()]),
            Some(_) => ("", resn),
        };
        let number = py_int(number_text).and_then(|n| n.checked_sub(1)).ok_or_else(|| {
            StructureError::syntax(
                file,
                line_no,
                format!("residue number \"{resn}\" (columns 23-27) is not an integer with an optional insertion code"),
            )
        })?;
        chains[pos].get_or_insert_with(|| ChainBuilder::new(ch)).add(number, icode, resname, atom, xyz);
    }
    let mut out = Vec::new();
    for builder in chains.into_iter().flatten() {
        out.push(builder.finish(file)?);
    }
    if out.is_empty() {
        let hint = if let Some(ch) = ignored_chain {
            return Err(StructureError::invalid(
                file,
                format!(
                    "{atom_lines} ATOM records, but none has a chain id the official parser reads \
                     (found {ch:?}; chain ids must be A-Z, a-z or 0-9 in column 22)"
                ),
            ));
        } else if hetatm_lines > 0 {
            "only HETATM records (ligands, water); ProteinMPNN needs protein ATOM records".to_string()
        } else if bytes.is_empty() {
            "the file is empty".to_string()
        } else {
            "is this a PDB file? for mmCIF use .cif".to_string()
        };
        return Err(StructureError::NoAtoms { file: file.to_string(), hint });
    }
    Ok(Protein { name: stem_of(file), chains: out })
}

/// A file whose last line is a coordinate record (ATOM/HETATM/ANISOU) shorter than the previous
/// record of its kind, with no newline at the end, was cut off mid-record (an interrupted download or copy).
fn check_not_cut_short(file: &str, bytes: &[u8]) -> Result<(), StructureError> {
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let trim = |l: &[u8]| l.iter().rposition(|&b| !b.is_ascii_whitespace()).map_or(0, |p| p + 1);
    let last = lines[lines.len() - 1];
    let kind = &last[..last.len().min(6)];
    if kind.len() < 4 || !(kind.starts_with(b"ATOM") || kind.starts_with(b"HETATM") || kind.starts_with(b"ANISOU")) {
        return Ok(());
    }
    if let Some(prev) = lines[..lines.len() - 1].iter().rev().find(|l| l.starts_with(kind)) {
        if trim(last) < trim(prev) {
            return Err(StructureError::syntax(
                file,
                lines.len(),
                format!(
                    "the last record is cut short ({} of {} characters) and the file does not end with a newline: the file looks truncated; download or copy it again",
                    trim(last),
                    trim(prev)
                ),
            ));
        }
    }
    Ok(())
}
