//! The error type of the structure readers.

/// Everything that can go wrong reading or checking a structure. Messages name the file, the
/// line (or item) and the problem, and say how to fix it where that is not obvious.
#[derive(Debug, thiserror::Error)]
pub enum StructureError {
    /// The file could not be read at all.
    #[error("{path}: cannot read file: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{file}: gzip data is corrupt or truncated ({source}); re-download or re-compress the file")]
    Gzip {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A malformed record at a known line.
    #[error("{file} line {line}: {problem}")]
    Syntax { file: String, line: usize, problem: String },
    /// Nothing the parser could use was found.
    #[error("{file}: no ATOM records found ({hint})")]
    NoAtoms { file: String, hint: String },
    /// The file parsed but its content is unusable.
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
    /// Arrays given for a structure ([`protein_from_arrays`](super::arrays::protein_from_arrays))
    /// are unusable: `item` names the array (`coordinates`, `chains`, `residue_numbers`, `sequence`).
    #[error("{name}: {item}: {problem}")]
    Array { name: String, item: &'static str, problem: String },
}

impl StructureError {
    pub(crate) fn syntax(file: &str, line: usize, problem: impl Into<String>) -> Self {
        StructureError::Syntax { file: file.to_string(), line, problem: problem.into() }
    }
    pub(crate) fn invalid(file: &str, problem: impl Into<String>) -> Self {
        StructureError::Invalid { file: file.to_string(), problem: problem.into() }
    }
}
