//! Fetching the LigandMPNN family's published weights (`https://files.ipd.uw.edu/pub/ligandmpnn/`).
//!
//! No digest is published for these files, so a download is verified by what the file itself
//! shows: it must load, its keys and tensor shapes must be those of the model type asked for
//! ([`crate::ligand::checkpoint::architecture`]), and its `num_edges` / `atom_context_num` must be
//! those its name promises (`_v_48_` / `_v_32_`, `_25` / `_16`). A file that fails is never kept.
//! The SHA-256 of what was stored is written beside it (`<file>.sha256`), and a cached file that
//! no longer matches its record is refused, so a later change is noticed.
//!
//! Conventions shared with the ProteinMPNN fetcher ([`super::locate`]): the cache root
//! (`$MPNN_CACHE_DIR`, else `$XDG_CACHE_HOME/mpnn`, else `~/.cache/mpnn`; files go to
//! `<cache>/ligandmpnn/<file>`), `MPNN_OFFLINE=1`, and the download itself
//! ([`super::locate::download_checked`]: temp file, check, atomic rename). The base URL has its own
//! variable, `MPNN_LIGAND_WEIGHTS_BASE_URL`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::locate::{download_checked, LocateEnv};
use super::CheckpointError;
use crate::ligand::checkpoint::ModelType;

/// Default base URL; files live at `<base>/<file>`.
pub const LIGAND_DEFAULT_BASE_URL: &str = "https://files.ipd.uw.edu/pub/ligandmpnn";
/// The environment variable overriding [`LIGAND_DEFAULT_BASE_URL`].
pub const LIGAND_BASE_URL_VAR: &str = "MPNN_LIGAND_WEIGHTS_BASE_URL";
/// The cache subfolder of the LigandMPNN family's files.
pub const LIGAND_CACHE_SUBFOLDER: &str = "ligandmpnn";

/// One published file: its name, model type, `num_edges` and `atom_context_num` (ligand_mpnn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficialLigandFile {
    pub file: String,
    pub model_type: ModelType,
    pub k: usize,
    pub atom_context_num: Option<usize>,
}

/// Every published model file of the LigandMPNN family (the side-chain packer is not included:
/// mpnn does not run it).
pub fn official_ligand_files() -> Vec<OfficialLigandFile> {
    let mut v = Vec::new();
    let mut add = |file: String, model_type, k, atom_context_num| {
        v.push(OfficialLigandFile { file, model_type, k, atom_context_num })
    };
    for k in [48, 32] {
        for n in ["002", "010", "020", "030"] {
            add(format!("proteinmpnn_v_{k}_{n}.pt"), ModelType::ProteinMpnn, k, None);
        }
    }
    for ctx in [25, 16] {
        for n in ["005", "010", "020", "030"] {
            add(format!("ligandmpnn_v_32_{n}_{ctx}.pt"), ModelType::LigandMpnn, 32, Some(ctx));
        }
    }
    for n in ["002", "010", "020", "030"] {
        add(format!("solublempnn_v_48_{n}.pt"), ModelType::SolubleMpnn, 48, None);
    }
    add("per_residue_label_membrane_mpnn_v_48_020.pt".into(), ModelType::PerResidueLabelMembraneMpnn, 48, None);
    add("global_label_membrane_mpnn_v_48_020.pt".into(), ModelType::GlobalLabelMembraneMpnn, 48, None);
    v
}

/// The published file named `file`, if there is one.
pub fn official_ligand_file(file: &str) -> Option<OfficialLigandFile> {
    official_ligand_files().into_iter().find(|f| f.file == file)
}

/// The environment the LigandMPNN fetcher consults, explicit so that it can be tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LigandLocateEnv {
    /// The cache root (as [`LocateEnv::cache_dir`]); files go to `<root>/ligandmpnn/`.
    pub cache_dir: Option<PathBuf>,
    /// `MPNN_LIGAND_WEIGHTS_BASE_URL`, else [`LIGAND_DEFAULT_BASE_URL`].
    pub base_url: String,
    /// `MPNN_OFFLINE=1` (or `true`/`yes`/`on`).
    pub offline: bool,
}

impl LigandLocateEnv {
    /// Read the environment variables.
    pub fn from_env() -> Self {
        let e = LocateEnv::from_env();
        LigandLocateEnv {
            cache_dir: e.cache_dir,
            base_url: std::env::var(LIGAND_BASE_URL_VAR)
                .ok()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| LIGAND_DEFAULT_BASE_URL.to_string()),
            offline: e.offline,
        }
    }
}

/// A located, verified LigandMPNN-family file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LigandWeights {
    /// Where it is stored (in the cache).
    pub path: PathBuf,
    /// Its SHA-256, lowercase hex (also in `<path>.sha256`).
    pub sha256: String,
    /// Downloaded by this call (else it was in the cache).
    pub downloaded: bool,
}

/// [`fetch_ligand_weights_with`] reading the environment ([`LigandLocateEnv::from_env`]).
pub fn fetch_ligand_weights(model_type: ModelType, file: &str) -> Result<LigandWeights, CheckpointError> {
    fetch_ligand_weights_with(model_type, file, &LigandLocateEnv::from_env())
}

/// The path of `<file>.sha256` beside `path`.
pub fn sha256_record_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".sha256");
    path.with_file_name(name)
}

/// Find the published `file` of `model_type` in the cache, or download and verify it; see the
/// module docs.
pub fn fetch_ligand_weights_with(
    model_type: ModelType,
    file: &str,
    env: &LigandLocateEnv,
) -> Result<LigandWeights, CheckpointError> {
    let Some(spec) = official_ligand_file(file) else {
        let valid: Vec<String> =
            official_ligand_files().into_iter().filter(|f| f.model_type == model_type).map(|f| f.file).collect();
        return Err(CheckpointError::Invalid(format!(
            "`{file}` is not a published {model_type} weights file; the published ones are {}. \
             For other weights pass --checkpoint_{model_type} FILE",
            valid.join(", ")
        )));
    };
    if spec.model_type != model_type {
        return Err(CheckpointError::Invalid(format!(
            "`{file}` holds a {} model, not a {model_type} model; pick a {model_type} file or \
             --model_type {}",
            spec.model_type, spec.model_type
        )));
    }
    let url = format!("{}/{file}", env.base_url.trim_end_matches('/'));
    let Some(cache) = &env.cache_dir else {
        return Err(CheckpointError::Invalid(format!(
            "no cache folder for the weights: set MPNN_CACHE_DIR (or HOME), or download {url} \
             yourself and pass --checkpoint_{model_type} FILE"
        )));
    };
    let cached = cache.join(LIGAND_CACHE_SUBFOLDER).join(file);
    let record = sha256_record_path(&cached);

    if cached.is_file() {
        let got = sha256_of_file(&cached).map_err(|e| CheckpointError::io(&cached, "reading the cached file", e))?;
        if record.is_file() {
            let text = std::fs::read_to_string(&record)
                .map_err(|e| CheckpointError::io(&record, "reading the SHA-256 record", e))?;
            let expected = text.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            if expected != got {
                return Err(CheckpointError::Tampered {
                    path: cached.display().to_string(),
                    record: record.display().to_string(),
                    expected,
                    got,
                });
            }
        } else {
            // Stored without a record (an interrupted fetch, or put there by hand): check it
            // as a download would be, then record it.
            let bytes =
                std::fs::read(&cached).map_err(|e| CheckpointError::io(&cached, "reading the cached file", e))?;
            check_fits(&bytes, &cached.display().to_string(), &spec).map_err(|problem| {
                CheckpointError::WrongWeights {
                    source_desc: cached.display().to_string(),
                    file: file.to_string(),
                    model_type: model_type.to_string(),
                    problem,
                    fate: format!("Delete {} to download it again", cached.display()),
                }
            })?;
            write_record(&record, &got, file)?;
        }
        return Ok(LigandWeights { path: cached, sha256: got, downloaded: false });
    }
    if env.offline {
        return Err(CheckpointError::OfflineLigand {
            file: file.to_string(),
            url,
            cache_path: cached.display().to_string(),
            model_type: model_type.to_string(),
        });
    }
    let mut digest = String::new();
    download_checked(&url, &cached, |tmp| {
        let bytes = std::fs::read(tmp).map_err(|e| CheckpointError::io(tmp, "reading the download", e))?;
        check_fits(&bytes, &url, &spec).map_err(|problem| CheckpointError::WrongWeights {
            source_desc: url.clone(),
            file: file.to_string(),
            model_type: model_type.to_string(),
            problem,
            fate: format!("Nothing was kept in {}", cached.parent().unwrap_or(cache).display()),
        })?;
        digest = hex(&Sha256::digest(&bytes));
        Ok(())
    })
    .map_err(|e| match e {
        // The shared download error names ProteinMPNN's flag and variable; say ours.
        CheckpointError::Download { url, dest, reason } => CheckpointError::Invalid(format!(
            "downloading {url} failed: {}. You can fetch it yourself and save it as {dest}, or pass \
             --checkpoint_{model_type} FILE",
            reason.replace("MPNN_WEIGHTS_BASE_URL", LIGAND_BASE_URL_VAR)
        )),
        e => e,
    })?;
    write_record(&record, &digest, file)?;
    Ok(LigandWeights { path: cached, sha256: digest, downloaded: true })
}

/// Whether `bytes` load as the model `spec` names: layout of the model type, `num_edges`,
/// `atom_context_num`. The error says what did not fit.
fn check_fits(bytes: &[u8], source: &str, spec: &OfficialLigandFile) -> Result<(), String> {
    let ckpt = super::load_bytes(bytes, source).map_err(|e| format!("it does not load ({e})"))?;
    let arch = crate::ligand::checkpoint::architecture(&ckpt, spec.model_type).map_err(|e| e.to_string())?;
    if arch.base.k != spec.k {
        return Err(format!("its num_edges is {}, the name promises {}", arch.base.k, spec.k));
    }
    if let Some(ctx) = spec.atom_context_num {
        if arch.atom_context_num != ctx {
            return Err(format!("its atom_context_num is {}, the name promises {ctx}", arch.atom_context_num));
        }
    }
    Ok(())
}

/// Write `<hex>  <file>` (the `sha256sum` format) atomically.
fn write_record(record: &Path, digest: &str, file: &str) -> Result<(), CheckpointError> {
    let tmp = record.with_extension(format!("sha256.tmp-{}", std::process::id()));
    std::fs::write(&tmp, format!("{digest}  {file}\n"))
        .map_err(|e| CheckpointError::io(&tmp, "writing the SHA-256 record", e))?;
    std::fs::rename(&tmp, record).map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        CheckpointError::io(record, "writing the SHA-256 record", e)
    })
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_and_specs() {
        let f = official_ligand_file("ligandmpnn_v_32_010_25.pt").unwrap();
        assert_eq!((f.model_type, f.k, f.atom_context_num), (ModelType::LigandMpnn, 32, Some(25)));
        let f = official_ligand_file("proteinmpnn_v_32_002.pt").unwrap();
        assert_eq!((f.model_type, f.k), (ModelType::ProteinMpnn, 32));
        assert_eq!(official_ligand_file("solublempnn_v_48_020.pt").unwrap().model_type, ModelType::SolubleMpnn);
        assert!(official_ligand_file("ligandmpnn_sc_v_32_002_16.pt").is_none());
        assert_eq!(official_ligand_files().len(), 8 + 8 + 4 + 2);
        // `echo -n abc | sha256sum`
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn wrong_name_or_type_is_refused_before_any_network() {
        let env = LigandLocateEnv {
            cache_dir: Some(PathBuf::from("/nonexistent")),
            base_url: "http://127.0.0.1:9".into(),
            offline: false,
        };
        let e = fetch_ligand_weights_with(ModelType::LigandMpnn, "ligandmpnn_v_32_999_25.pt", &env).unwrap_err();
        assert!(e.to_string().contains("ligandmpnn_v_32_010_25.pt"), "{e}");
        let e = fetch_ligand_weights_with(ModelType::LigandMpnn, "solublempnn_v_48_020.pt", &env).unwrap_err();
        assert!(e.to_string().contains("soluble_mpnn"), "{e}");
    }
}
