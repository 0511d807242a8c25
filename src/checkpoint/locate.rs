//! Locating the weights: explicit file → `--path_to_model_weights` folder → `MPNN_WEIGHTS` →
//! the cache → a verified download of the pinned official file.
//!
//! Official files are pinned by git blob id at a fixed commit of dauparas/ProteinMPNN; a download
//! whose bytes do not hash to the pinned id is refused and nothing is written.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use super::CheckpointError;

/// The ProteinMPNN commit the official weights are pinned at.
pub const PINNED_COMMIT: &str = "8907e6671bfbfc92303b5f79c4b5e6ce47cdef57";
/// Default base URL; files live at `<base>/<subfolder>/<model_name>.pt`.
pub const DEFAULT_BASE_URL: &str =
    "https://github.com/dauparas/ProteinMPNN/raw/8907e6671bfbfc92303b5f79c4b5e6ce47cdef57";
/// Default model name (the official `--model_name` default).
pub const DEFAULT_MODEL_NAME: &str = "v_48_020";

/// `(subfolder, model_name, git blob id)` of every official weights file.
pub const PINNED: &[(&str, &str, &str)] = &[
    ("vanilla_model_weights", "v_48_002", "ca45322d4e3fa2812dada241202bac3d3b144025"),
    ("vanilla_model_weights", "v_48_010", "b22f72c6e49a05fc19ffedc1a483392e57c84141"),
    ("vanilla_model_weights", "v_48_020", "66f81553eea491dfc1307582c679ef029511937b"),
    ("vanilla_model_weights", "v_48_030", "54548472396a948b8dbbac3745b85b95cc308cb9"),
    ("soluble_model_weights", "v_48_002", "f7a4aacf9fbcd7ca77f77e16800d1e248a4fd6db"),
    ("soluble_model_weights", "v_48_010", "9b7c4344a6b1167eeef79331e90e8d75d2b73c66"),
    ("soluble_model_weights", "v_48_020", "7bdbd0522fae78a889b55b91925183338adeaebf"),
    ("soluble_model_weights", "v_48_030", "93b264a7f9b72e0439254d8089c19ef9641e5cd9"),
    ("ca_model_weights", "v_48_002", "2459257c32ab183a57fd2f741fcb829bc1f5934e"),
    ("ca_model_weights", "v_48_010", "f2f722d54c3aab2ea4fcba97ca530fa912aef152"),
    ("ca_model_weights", "v_48_020", "7fd96c7abf26621fad0f4352e3aad15e452251b4"),
];

/// What the user asked for (the CLI options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsQuery {
    /// An explicit weights file (`--weights FILE`); used as is.
    pub path: Option<PathBuf>,
    /// The official `--path_to_model_weights` folder; `<folder>/<model_name>.pt` is used.
    pub folder: Option<PathBuf>,
    /// The official `--model_name` (default `v_48_020`).
    pub model_name: String,
    /// `--ca_only`.
    pub ca_only: bool,
    /// `--use_soluble_model`.
    pub soluble: bool,
    /// Never download (`--offline`; also env `MPNN_OFFLINE=1`).
    pub offline: bool,
}

impl Default for WeightsQuery {
    fn default() -> Self {
        WeightsQuery {
            path: None,
            folder: None,
            model_name: DEFAULT_MODEL_NAME.to_string(),
            ca_only: false,
            soluble: false,
            offline: false,
        }
    }
}

impl WeightsQuery {
    /// The official subfolder of this model family.
    pub fn subfolder(&self) -> Result<&'static str, CheckpointError> {
        match (self.ca_only, self.soluble) {
            (true, true) => Err(CheckpointError::Invalid(
                "CA-SolubleMPNN is not available: the official repository has no soluble \
                 CA-only weights (use --ca_only or --use_soluble_model, not both)"
                    .into(),
            )),
            (true, false) => Ok("ca_model_weights"),
            (false, true) => Ok("soluble_model_weights"),
            (false, false) => Ok("vanilla_model_weights"),
        }
    }
}

/// The environment `resolve` consults, made explicit so it can be tested without touching
/// process-global variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocateEnv {
    /// `MPNN_WEIGHTS`: a weights file, or a folder holding `<model_name>.pt` or the official
    /// subfolders.
    pub weights: Option<PathBuf>,
    /// The cache root (`$MPNN_CACHE_DIR`, else `$XDG_CACHE_HOME/mpnn`, else `~/.cache/mpnn`).
    pub cache_dir: Option<PathBuf>,
    /// Base URL of the official files (`MPNN_WEIGHTS_BASE_URL`, else [`DEFAULT_BASE_URL`]).
    pub base_url: String,
    /// `MPNN_OFFLINE=1` (or `true`/`yes`).
    pub offline: bool,
}

impl LocateEnv {
    /// Read the environment variables.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let cache_dir = var("MPNN_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("mpnn")))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache").join("mpnn")));
        let offline = std::env::var("MPNN_OFFLINE")
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
            .unwrap_or(false);
        LocateEnv {
            weights: var("MPNN_WEIGHTS").map(PathBuf::from),
            cache_dir,
            base_url: std::env::var("MPNN_WEIGHTS_BASE_URL")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string()),
            offline,
        }
    }
}

/// The pinned git blob id of an official file, if `(subfolder, model_name)` is official.
pub fn pinned_blob_id(subfolder: &str, model_name: &str) -> Option<&'static str> {
    PINNED.iter().find(|(s, n, _)| *s == subfolder && *n == model_name).map(|(_, _, b)| *b)
}

/// Find the weights file for `q`, reading the environment ([`LocateEnv::from_env`]).
pub fn resolve(q: &WeightsQuery) -> Result<PathBuf, CheckpointError> {
    resolve_with(q, &LocateEnv::from_env())
}

/// Find the weights file for `q` in `env`; see the module docs for the order.
pub fn resolve_with(q: &WeightsQuery, env: &LocateEnv) -> Result<PathBuf, CheckpointError> {
    let file_name = format!("{}.pt", q.model_name);

    // 1. An explicit file.
    if let Some(p) = &q.path {
        if p.is_file() {
            return Ok(p.clone());
        }
        if p.is_dir() {
            return Err(CheckpointError::Invalid(format!(
                "--weights {}: this is a folder; --weights takes a weights file (.pt or .safetensors), \
                 e.g. {}{}. For a folder of official weights use --path_to_model_weights DIR \
                 (with --model_name)",
                p.display(),
                p.join(&file_name).display(),
                list_pt_files(p)
            )));
        }
        return Err(CheckpointError::NotFound {
            what: "weights file (--weights)",
            path: p.display().to_string(),
            hint: String::new(),
        });
    }
    // 2. The official --path_to_model_weights folder.
    if let Some(dir) = &q.folder {
        let p = dir.join(&file_name);
        if p.is_file() {
            return Ok(p);
        }
        return Err(CheckpointError::NotFound {
            what: "weights file (--path_to_model_weights + --model_name)",
            path: p.display().to_string(),
            hint: list_pt_files(dir),
        });
    }
    let subfolder = q.subfolder()?;
    // 3. MPNN_WEIGHTS.
    if let Some(w) = &env.weights {
        if w.is_file() {
            return Ok(w.clone());
        }
        if w.is_dir() {
            for p in [w.join(&file_name), w.join(subfolder).join(&file_name)] {
                if p.is_file() {
                    return Ok(p);
                }
            }
            // Not there: fall through to the cache (the folder may hold only some models).
        } else {
            return Err(CheckpointError::NotFound {
                what: "MPNN_WEIGHTS (a weights file or folder)",
                path: w.display().to_string(),
                hint: "; fix or unset MPNN_WEIGHTS".into(),
            });
        }
    }
    // 4. The pinned table.
    let Some(blob) = pinned_blob_id(subfolder, &q.model_name) else {
        return Err(CheckpointError::UnknownModel {
            name: q.model_name.clone(),
            family: match subfolder {
                "ca_model_weights" => "CA-only (ca_model_weights)",
                "soluble_model_weights" => "soluble (soluble_model_weights)",
                _ => "vanilla (vanilla_model_weights)",
            },
            valid: PINNED.iter().filter(|(s, _, _)| *s == subfolder).map(|(_, n, _)| n.to_string()).collect(),
            own: OWN_WEIGHTS,
        });
    };
    let url = format!("{}/{subfolder}/{file_name}", env.base_url.trim_end_matches('/'));
    // 5. The cache.
    let Some(cache) = &env.cache_dir else {
        return Err(CheckpointError::Invalid(format!(
            "no cache folder for the weights: set MPNN_CACHE_DIR (or HOME), or download {url} \
             yourself and pass --weights FILE"
        )));
    };
    let cached = cache.join(subfolder).join(&file_name);
    if cached.is_file() {
        return Ok(cached);
    }
    // 6. Download, unless offline.
    if q.offline || env.offline {
        return Err(CheckpointError::Offline {
            model: format!("{subfolder}/{file_name}"),
            url,
            cache_path: cached.display().to_string(),
            own: OWN_WEIGHTS,
        });
    }
    download_verified(&url, blob, &cached)?;
    Ok(cached)
}

/// How the command line names a weights file or folder of one's own, in error messages (the
/// library's callers may say it their way: `job::Model::load`).
pub const OWN_WEIGHTS: &str = "--weights FILE or --path_to_model_weights DIR";

fn list_pt_files(dir: &Path) -> String {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return format!(" (the folder {} cannot be read)", dir.display());
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pt"))
        .map(|n| n.trim_end_matches(".pt").to_string())
        .collect();
    names.sort();
    if names.is_empty() {
        " (the folder holds no .pt files)".into()
    } else {
        format!("; model names available there: {}", names.join(", "))
    }
}

/// The git blob id of `bytes`: SHA-1 of `"blob <len>\0" + bytes`, lowercase hex.
pub fn git_blob_id(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The git blob id of a file, streamed.
fn git_blob_id_of_file(path: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
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

/// Download `url` to `dest`, verifying the git blob id before the file appears.
///
/// Streams into a temp file next to `dest` (progress bar on stderr when it is a terminal),
/// checks the blob id, then renames atomically into place. On any failure the temp file is
/// removed and `dest` is left untouched.
pub fn download_verified(url: &str, expected_blob_id: &str, dest: &Path) -> Result<(), CheckpointError> {
    download_checked(url, dest, |tmp| {
        let id = git_blob_id_of_file(tmp).map_err(|e| CheckpointError::io(tmp, "reading the download", e))?;
        if !id.eq_ignore_ascii_case(expected_blob_id.trim()) {
            return Err(CheckpointError::BlobMismatch {
                url: url.to_string(),
                dest: dest.display().to_string(),
                expected: expected_blob_id.to_string(),
                got: id,
            });
        }
        Ok(())
    })
}

/// Download `url` to `dest`, running `check` on the complete download before it appears.
///
/// Streams into a temp file next to `dest` (progress bar on stderr when it is a terminal), calls
/// `check(temp file)`, then renames atomically into place. On any failure (the transfer or the
/// check) the temp file is removed and `dest` is left untouched.
pub fn download_checked(
    url: &str,
    dest: &Path,
    check: impl FnOnce(&Path) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CheckpointError::io(dir, "creating the folder", e))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "weights".into());
    let tmp = dir.join(format!(".{name}.download-{}", std::process::id()));
    let result = download_to(url, dest, &tmp).and_then(|()| check(&tmp)).and_then(|()| {
        std::fs::rename(&tmp, dest).map_err(|e| CheckpointError::io(dest, "moving the download into place", e))
    });
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result
}

fn download_to(url: &str, dest: &Path, tmp: &Path) -> Result<(), CheckpointError> {
    let derr =
        |reason: String| CheckpointError::Download { url: url.to_string(), dest: dest.display().to_string(), reason };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout_read(std::time::Duration::from_secs(120))
        .build();
    let resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            return Err(derr(format!("the server answered HTTP {code} {}", r.status_text())))
        }
        Err(ureq::Error::Transport(t)) => {
            if t.kind() == ureq::ErrorKind::UnknownScheme {
                return Err(derr(format!(
                    "this mpnn build has no TLS support, so it cannot download over {}. \
                     Run `curl -L -o {} {url}` yourself, or set MPNN_WEIGHTS_BASE_URL to a plain \
                     http mirror",
                    url.split(':').next().unwrap_or("this scheme"),
                    dest.display()
                )));
            }
            return Err(derr(t.to_string()));
        }
    };
    let total: Option<u64> = resp.header("Content-Length").and_then(|v| v.trim().parse().ok());

    use std::io::IsTerminal;
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("downloading {name}", name = dest.display()));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }

    let mut file = std::fs::File::create(tmp).map_err(|e| CheckpointError::io(tmp, "creating the temp file", e))?;
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut got: u64 = 0;
    loop {
        let n = reader.read(&mut buf).map_err(|e| derr(format!("the connection broke after {got} bytes: {e}")))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(|e| CheckpointError::io(tmp, "writing the download", e))?;
        got += n as u64;
        bar.set_position(got);
    }
    bar.finish_and_clear();
    if let Some(n) = total {
        if n != got {
            return Err(derr(format!("expected {n} bytes, received {got}")));
        }
    }
    file.sync_all().ok();
    drop(file);

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_id_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(git_blob_id(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(git_blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }

    /// An https download whose TLS handshake fails (a plain-TCP listener on loopback) is a
    /// clear download error naming the URL, and leaves nothing behind.
    #[test]
    fn failed_tls_handshake_is_a_clear_error() {
        // A loopback listener so the TCP connect succeeds and ureq reaches the TLS step.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let _ = listener.accept();
        });
        let dir = std::env::temp_dir().join(format!("mpnn-tls-test-{}", std::process::id()));
        let dest = dir.join("v.pt");
        let e = download_verified(&format!("https://127.0.0.1:{port}/v.pt"), "00", &dest).unwrap_err().to_string();
        h.join().ok();
        let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        std::fs::remove_dir_all(&dir).ok();
        assert!(e.contains(&format!("https://127.0.0.1:{port}/v.pt")), "{e}");
        assert_eq!(left, 0, "temp file left behind");
    }

    #[test]
    fn unknown_model_lists_valid_names() {
        let env = LocateEnv {
            weights: None,
            cache_dir: Some(PathBuf::from("/nonexistent")),
            base_url: DEFAULT_BASE_URL.into(),
            offline: true,
        };
        let q = WeightsQuery { model_name: "v_48_030".into(), ca_only: true, ..Default::default() };
        let e = resolve_with(&q, &env).unwrap_err().to_string();
        assert!(e.contains("v_48_002, v_48_010, v_48_020") && e.contains("CA-only"), "{e}");
        let q = WeightsQuery { ca_only: true, soluble: true, ..Default::default() };
        assert!(resolve_with(&q, &env).unwrap_err().to_string().contains("CA-SolubleMPNN"));
    }
}
