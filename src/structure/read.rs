//! Reading any supported structure file: format detection and gzip.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use super::{jsonl, mmcif, pdb, Protein, StructureError};

/// A structure file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdb,
    Mmcif,
    Jsonl,
}

/// Decompresses gzip data (detected by the magic bytes `1f 8b`); other data is returned as is.
pub fn decompress_if_gzip<'a>(file: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, StructureError> {
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| StructureError::Gzip { file: file.to_string(), source })?;
    Ok(Cow::Owned(out))
}

/// The format of (decompressed) data: the content decides when it is unambiguous (`data_`,
/// `loop_` or `_atom_site` first → mmCIF, `{` → jsonl), else the extension (`.cif`, `.mmcif` →
/// mmCIF; `.jsonl`, `.json` → jsonl), else PDB.
pub fn detect_format(file_name: &str, bytes: &[u8]) -> Format {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    for line in head.split(|&b| b == b'\n') {
        let t = line.trim_ascii_start();
        if t.is_empty() || t[0] == b'#' {
            continue;
        }
        let starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
        if starts(b"data_") || starts(b"loop_") || starts(b"_atom_site") {
            return Format::Mmcif;
        }
        if t[0] == b'{' {
            return Format::Jsonl;
        }
        break;
    }
    let lower = file_name.to_ascii_lowercase();
    let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
    if lower.ends_with(".cif") || lower.ends_with(".mmcif") {
        Format::Mmcif
    } else if lower.ends_with(".jsonl") || lower.ends_with(".json") {
        Format::Jsonl
    } else {
        Format::Pdb
    }
}

/// Parses the bytes of a structure file of any supported format (gzip allowed). `file_name`
/// names the file in messages and, through its stem, the protein.
pub fn parse_bytes(file_name: &str, bytes: &[u8]) -> Result<Vec<Protein>, StructureError> {
    let data = decompress_if_gzip(file_name, bytes)?;
    match detect_format(file_name, &data) {
        Format::Pdb => Ok(vec![pdb::parse_pdb_bytes(file_name, &data)?]),
        Format::Mmcif => Ok(vec![mmcif::parse_mmcif_bytes(file_name, &data)?]),
        Format::Jsonl => jsonl::parse_jsonl_bytes(file_name, &data),
    }
}

fn display_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// Reads a PDB or mmCIF file (one protein) or a `parsed_pdbs.jsonl` (one protein per line),
/// optionally gzip-compressed.
pub fn read_path(path: &Path) -> Result<Vec<Protein>, StructureError> {
    let bytes =
        std::fs::read(path).map_err(|source| StructureError::Io { path: path.display().to_string(), source })?;
    parse_bytes(&display_name(path), &bytes)
}

/// One entry of a structure file: its 1-based line for jsonl entries (`None` for PDB / mmCIF),
/// and the protein or why that entry cannot be used.
pub type Entry = (Option<usize>, Result<Protein, StructureError>);

/// Like [`parse_bytes`], but a bad jsonl line fails only its own entry: the outer error is for
/// data that cannot be read at all (corrupt gzip, an empty jsonl), the inner one per entry.
pub fn parse_entries(file_name: &str, bytes: &[u8]) -> Result<Vec<Entry>, StructureError> {
    let data = decompress_if_gzip(file_name, bytes)?;
    match detect_format(file_name, &data) {
        Format::Pdb => Ok(vec![(None, pdb::parse_pdb_bytes(file_name, &data))]),
        Format::Mmcif => Ok(vec![(None, mmcif::parse_mmcif_bytes(file_name, &data))]),
        Format::Jsonl => {
            let text = super::text::decode_ignore(&data);
            let out: Vec<Entry> = text
                .split('\n')
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(i, line)| (Some(i + 1), jsonl::parse_jsonl_line(file_name, i + 1, line)))
                .collect();
            if out.is_empty() {
                return Err(StructureError::invalid(file_name, "no structures in this jsonl file (it is empty)"));
            }
            Ok(out)
        }
    }
}

/// [`parse_entries`] of a file.
pub fn read_path_entries(path: &Path) -> Result<Vec<Entry>, StructureError> {
    let bytes =
        std::fs::read(path).map_err(|source| StructureError::Io { path: path.display().to_string(), source })?;
    parse_entries(&display_name(path), &bytes)
}

/// Reads a single structure (PDB, mmCIF, or a jsonl holding exactly one entry).
pub fn read_structure(path: &Path) -> Result<Protein, StructureError> {
    let mut v = read_path(path)?;
    if v.len() != 1 {
        return Err(StructureError::invalid(
            &display_name(path),
            format!("holds {} structures where one was expected; pass them one at a time or as a list", v.len()),
        ));
    }
    v.pop().ok_or_else(|| StructureError::invalid(&display_name(path), "holds no structure"))
}
