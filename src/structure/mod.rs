//! Protein structures: the parsed form the official code works with (`parse_PDB` /
//! `parsed_pdbs.jsonl`), and readers for PDB, mmCIF (both optionally gzip-compressed) and jsonl.
//!
//! A [`Protein`] holds chains in the order the official parser produces them; each chain holds
//! one entry per residue number from min to max (gaps filled with `-` and NaN coordinates).

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
