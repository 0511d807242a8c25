//! Protein structures: the parsed form the official code works with (`parse_PDB` /
//! `parsed_pdbs.jsonl`), and readers for PDB, mmCIF (both optionally gzip-compressed) and jsonl.
//!
//! A [`Protein`] holds chains in the order the official parser produces them; each chain holds
//! one entry per residue number from min to max (gaps filled with `-` and NaN coordinates).

pub mod arrays;
mod builder;
pub mod error;
pub mod jsonl;
pub mod mmcif;
pub mod pdb;
pub mod read;
pub(crate) mod text;

pub use arrays::{protein_from_arrays, ProteinArrays};
pub use error::StructureError;
pub use jsonl::{parse_jsonl_bytes, parse_jsonl_line, to_jsonl_line, write_jsonl};
pub use mmcif::parse_mmcif_bytes;
pub use pdb::parse_pdb_bytes;
pub use read::{
    detect_format, parse_bytes, parse_entries, read_path, read_path_entries, read_structure, Entry, Format,
};
pub use text::{chain_alphabet, chain_alphabet_position, stem_of};

/// Largest coordinate magnitude [`Protein::validate`] accepts (Å).
pub const MAX_ABS_COORD: f64 = 1e5;

/// One chain: its id, its one-letter sequence (`-` for unknown residues and gaps, as in the
/// official `seq_chain_X`), and N, CA, C, O coordinates per residue (NaN where missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub id: String,
    pub sequence: String,
    /// `[residue][atom N/CA/C/O][xyz]`, float64 as the official parser keeps them.
    pub coords: Vec<[[f64; 3]; 4]>,
}

/// A parsed structure, the equivalent of one official `pdb_dict`.
#[derive(Debug, Clone, PartialEq)]
pub struct Protein {
    /// File stem, as the official code names it (`5L33` for `5L33.pdb`).
    pub name: String,
    pub chains: Vec<Chain>,
}

impl Protein {
    /// Total number of residues over all chains.
    pub fn len(&self) -> usize {
        self.chains.iter().map(|c| c.sequence.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The chain with this id.
    pub fn chain(&self, id: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.id == id)
    }
    /// Chain ids in stored order.
    pub fn chain_ids(&self) -> Vec<String> {
        self.chains.iter().map(|c| c.id.clone()).collect()
    }

    /// Whether a residue's backbone is complete: all of N, CA, C, O finite (CA only with `ca_only`).
    pub fn residue_usable(res: &[[f64; 3]; 4], ca_only: bool) -> bool {
        let ok = |a: &[f64; 3]| a.iter().all(|x| x.is_finite());
        if ca_only {
            ok(&res[1])
        } else {
            res.iter().all(ok)
        }
    }

    /// Ids of chains without a single usable residue (see [`Protein::residue_usable`]). The
    /// official code accepts them (their mask is all zero; 4YOW's peptide chains are such), so
    /// they are not an error, but callers may want to warn.
    pub fn unusable_chains(&self, ca_only: bool) -> Vec<String> {
        self.chains
            .iter()
            .filter(|c| !c.coords.iter().any(|r| Self::residue_usable(r, ca_only)))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Checks that the structure can be designed: at least one chain, at least one usable
    /// residue overall (all of N, CA, C, O finite; CA only with `ca_only`), no infinite or absurd
    /// (|x| > 1e5) coordinate, and sequence and coordinate lengths that agree. Single chains
    /// without usable residues are allowed, as in the official code (see
    /// [`Protein::unusable_chains`]). NaN written in a file's coordinate text is already
    /// rejected by the readers.
    pub fn validate(&self, ca_only: bool) -> Result<(), StructureError> {
        let name = if self.name.is_empty() { "structure" } else { &self.name };
        if self.chains.is_empty() {
            return Err(StructureError::invalid(name, "no chains; the file holds no protein residues"));
        }
        let mut usable = 0usize;
        for chain in &self.chains {
            let n = chain.sequence.chars().count();
            if n != chain.coords.len() {
                return Err(StructureError::invalid(
                    name,
                    format!(
                        "chain {}: sequence has {n} residues but there are {} coordinate sets",
                        chain.id,
                        chain.coords.len()
                    ),
                ));
            }
            for (i, res) in chain.coords.iter().enumerate() {
                for (k, atom) in res.iter().enumerate() {
                    for &x in atom {
                        if x.is_infinite() || (x.is_finite() && x.abs() > MAX_ABS_COORD) {
                            return Err(StructureError::invalid(
                                name,
                                format!(
                                    "chain {} residue {} (position {} in the chain): {} coordinate {x} is out of range \
                                     (|x| must be at most {MAX_ABS_COORD}); fix the coordinates",
                                    chain.id,
                                    chain.sequence.chars().nth(i).unwrap_or('-'),
                                    i + 1,
                                    ATOM_NAMES[k]
                                ),
                            ));
                        }
                    }
                }
                if Self::residue_usable(res, ca_only) {
                    usable += 1;
                }
            }
        }
        if usable == 0 {
            let need = if ca_only { "a CA atom" } else { "all of N, CA, C and O (use --ca_only for CA-only models)" };
            return Err(StructureError::invalid(name, format!("no usable residue in any chain (none has {need})")));
        }
        Ok(())
    }
}

pub const ATOM_NAMES: [&str; 4] = ["N", "CA", "C", "O"];

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so readers
/// never see a partial file and an interrupted run leaves nothing half-written.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{}.tmp-{}", file_name, std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all().ok();
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        std::fs::remove_file(&tmp).ok();
    })
}
