//! The checkpoint error type: every message names the file (or URL), the problem, and a fix.

/// Everything that can go wrong reading, validating, locating or downloading a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: {action} failed: {source}")]
    Io {
        path: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// A pre-1.6 (non-zip) `torch.save` file.
    #[error(
        "{path}: this is a legacy (pre-1.6, non-zip) PyTorch checkpoint, which mpnn cannot read. \
         Re-save it with a current PyTorch (`torch.save(torch.load(\"{path}\"), \"new.pt\")`), \
         or convert it to safetensors (`mpnn` reads both)"
    )]
    LegacyTorch { path: String },

    /// A zip archive that is not a valid `torch.save` checkpoint.
    #[error("{path}: not a valid PyTorch checkpoint: {reason}")]
    Torch { path: String, reason: String },

    /// `data.pkl` could not be decoded.
    #[error("{path}: cannot decode the pickle (data.pkl) of this PyTorch checkpoint: {reason}")]
    Pickle { path: String, reason: String },

    /// A malformed safetensors file.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Safetensors { path: String, reason: String },

    /// Neither a zip nor a safetensors file.
    #[error(
        "{path}: unrecognized checkpoint format (neither a PyTorch .pt zip archive nor a \
         safetensors file); pass an official ProteinMPNN .pt file or a safetensors file \
         written by mpnn"
    )]
    UnknownFormat { path: String },

    /// The tensors do not form a ProteinMPNN state dict mpnn supports.
    #[error(
        "{path}: {problem}. This is not a ProteinMPNN checkpoint layout mpnn supports \
         (expected the state dict of the official ProteinMPNN or CA-ProteinMPNN model)"
    )]
    Layout { path: String, problem: String },

    /// A tensor holding NaN or infinite values (a diverged or corrupted training run).
    #[error(
        "{path}: tensor `{tensor}` holds {count} non-finite value{} (NaN or infinite) of {total}{others}. \
         Such weights make every score nan; use a checkpoint from a run that did not diverge \
         (or re-download / re-convert this one)",
        if *count == 1 { "" } else { "s" }
    )]
    NonFinite { path: String, tensor: String, count: usize, total: usize, others: String },

    /// A model name that is not in the pinned table of official weights.
    #[error(
        "unknown model name `{name}` for the {family} weights; valid names: {}. \
         For your own weights pass {own}",
        valid.join(", ")
    )]
    UnknownModel { name: String, family: &'static str, valid: Vec<String>, own: &'static str },

    /// A weights file or folder the user named does not exist.
    #[error("{what} not found: {path}{hint}")]
    NotFound { what: &'static str, path: String, hint: String },

    /// An invalid combination of options.
    #[error("{0}")]
    Invalid(String),

    /// The weights are not available locally and downloads are disabled.
    #[error(
        "the {model} weights are not available locally and downloads are disabled (offline). \
         Fetch {url} and save it as {cache_path}, or pass {own} (or set MPNN_WEIGHTS)"
    )]
    Offline { model: String, url: String, cache_path: String, own: &'static str },

    /// The HTTP download failed.
    #[error(
        "downloading {url} failed: {reason}. You can fetch it yourself and save it as {dest}, \
         or pass --weights FILE"
    )]
    Download { url: String, dest: String, reason: String },

    /// The downloaded bytes are not the pinned file.
    #[error(
        "{url}: downloaded file does not match the pinned git blob id {expected} (got {got}); \
         the download was corrupted or the mirror serves a different file. Nothing was written \
         to {dest}"
    )]
    BlobMismatch { url: String, dest: String, expected: String, got: String },
    /// A cached LigandMPNN-family file whose bytes no longer hash to the SHA-256 recorded when it
    /// was downloaded.
    #[error(
        "{path}: this cached weights file changed since it was downloaded and verified: its SHA-256 \
         is {got}, but {record} recorded {expected}. Delete {path} (and {record}) to download and \
         verify it again"
    )]
    Tampered { path: String, record: String, expected: String, got: String },

    /// A downloaded (or cached, unrecorded) LigandMPNN-family file that does not fit the model
    /// type and the `num_edges` / `atom_context_num` its name promises.
    #[error("{source_desc}: the file does not fit `{file}` as a {model_type} model: {problem}. {fate}")]
    WrongWeights { source_desc: String, file: String, model_type: String, problem: String, fate: String },

    /// A LigandMPNN-family file that is not cached, with downloads disabled.
    #[error(
        "the {file} weights are not available locally and downloads are disabled (MPNN_OFFLINE). \
         Fetch {url} and save it as {cache_path}, or pass --checkpoint_{model_type} FILE"
    )]
    OfflineLigand { file: String, url: String, cache_path: String, model_type: String },
}

impl CheckpointError {
    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: std::io::Error) -> Self {
        CheckpointError::Io { path: path.display().to_string(), action, source }
    }
}
