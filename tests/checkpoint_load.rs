//! Checkpoint loading, architecture inference, safetensors round trip, corrupted inputs, and
//! verified downloads (loopback HTTP only).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use mpnn::checkpoint::ligand_weights::sha256_hex;
use mpnn::checkpoint::{
    self, download_verified, fetch_ligand_weights_with, git_blob_id, resolve_with, Architecture, Checkpoint,
    CheckpointError, LigandLocateEnv, LigandWeights, LocateEnv, Tensor, WeightsQuery,
};
use mpnn::ligand::checkpoint::ModelType;

/// The parity weights folder, or `None` (test skipped) when absent outside CI.
fn weights_dir() -> Option<PathBuf> {
    let parity = std::env::var_os("MPNN_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/parity"));
    let w = parity.join("weights");
    if w.join("full_k48.pt").is_file() {
        return Some(w);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("parity fixtures not found at {} (CI=true)", w.display());
    }
    eprintln!("skipped: parity fixtures not found");
    None
}

fn arch(hidden: usize, layers: usize, k: usize, ca_only: bool) -> Architecture {
    Architecture { hidden, encoder_layers: layers, decoder_layers: layers, k, ca_only, vocab: 21 }
}

#[test]
fn fixtures_load_and_infer_architecture() {
    let Some(w) = weights_dir() else { return };
    for (file, expect, n_tensors) in [
        ("full_k48.pt", arch(128, 3, 48, false), 118),
        ("ca_k48.pt", arch(128, 3, 48, true), 123),
        ("small_h64_l2_k16.pt", arch(64, 2, 16, false), 82),
    ] {
        let ck = checkpoint::load(&w.join(file)).unwrap();
        assert_eq!(ck.tensors.len(), n_tensors, "{file}");
        assert_eq!(ck.noise_level, 0.2, "{file}");
        assert_eq!(ck.architecture().unwrap(), expect, "{file}");
    }
}

/// (tensor name, index, exact value as printed by numpy).
type Spot = (&'static str, &'static [usize], f64);

#[test]
fn spot_check_values_against_numpy() {
    let Some(w) = weights_dir() else { return };
    // Values printed by numpy reading the raw storages of the zip.
    let cases: &[(&str, &[Spot], f64)] = &[
        (
            "full_k48.pt",
            &[
                ("W_e.bias", &[0], -0.04663766920566559),
                ("W_out.weight", &[20, 127], 0.15692894160747528),
                ("encoder_layers.1.W11.weight", &[5, 7], 0.07671570032835007),
                ("features.edge_embedding.weight", &[3, 100], 0.07462365925312042),
                ("decoder_layers.0.dense.W_in.bias", &[511], -0.016286373138427734),
            ],
            -4.144774828448476,
        ),
        (
            "ca_k48.pt",
            &[
                ("W_e.bias", &[0], -0.12528514862060547),
                ("W_out.weight", &[20, 127], -0.03538870811462402),
                ("encoder_layers.1.W11.weight", &[5, 7], 0.07538450509309769),
                ("features.edge_embedding.weight", &[3, 100], 0.046585675328969955),
                ("decoder_layers.0.dense.W_in.bias", &[511], -0.02499750815331936),
            ],
            12.850784060035949,
        ),
        (
            "small_h64_l2_k16.pt",
            &[
                ("W_e.bias", &[0], 0.1837676465511322),
                ("W_out.weight", &[20, 63], 0.5775218605995178),
                ("encoder_layers.1.W11.weight", &[5, 7], -0.022784728556871414),
                ("features.edge_embedding.weight", &[3, 100], -0.08144133538007736),
                ("decoder_layers.0.dense.W_in.bias", &[255], -0.0217130184173584),
            ],
            8.561975052347407,
        ),
    ];
    for (file, values, ws_sum) in cases {
        let ck = checkpoint::load(&w.join(file)).unwrap();
        for (name, idx, v) in values.iter() {
            let t = &ck.tensors[*name];
            let flat = idx.iter().zip(strides(&t.shape)).map(|(i, s)| i * s).sum::<usize>();
            // numpy printed the exact f32 value as a Python float.
            assert_eq!(t.data[flat] as f64, *v, "{file} {name}{idx:?}");
        }
        let sum: f64 = ck.tensors["W_s.weight"].data.iter().map(|&x| x as f64).sum();
        assert!((sum - ws_sum).abs() < 1e-9, "{file}: W_s sum {sum} vs {ws_sum}");
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

#[test]
fn pt_to_safetensors_roundtrip() {
    let Some(w) = weights_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    for file in ["full_k48.pt", "ca_k48.pt", "small_h64_l2_k16.pt"] {
        let ck = checkpoint::load(&w.join(file)).unwrap();
        let out = dir.path().join(file.replace(".pt", ".safetensors"));
        checkpoint::save_safetensors(&ck, &out).unwrap();
        let back = checkpoint::load(&out).unwrap();
        assert_eq!(back.num_edges, ck.num_edges);
        assert_eq!(back.noise_level.to_bits(), ck.noise_level.to_bits());
        assert_eq!(back.tensors, ck.tensors, "{file}");
        assert_eq!(back.architecture().unwrap(), ck.architecture().unwrap());
    }
    // No temp files left behind by the atomic save.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

/// Write a safetensors file with the given dtype (F16/BF16 bits computed by truncation here).
fn write_safetensors(ck: &Checkpoint, dtype: safetensors::Dtype, path: &Path) {
    let mut bufs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (n, t) in &ck.tensors {
        let bytes: Vec<u8> = match dtype {
            safetensors::Dtype::BF16 => {
                t.data.iter().flat_map(|f| ((f.to_bits() >> 16) as u16).to_le_bytes()).collect()
            }
            safetensors::Dtype::F32 => t.data.iter().flat_map(|f| f.to_le_bytes()).collect(),
            _ => unimplemented!(),
        };
        bufs.push((n.clone(), t.shape.clone(), bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = bufs
        .iter()
        .map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    let meta: HashMap<String, String> =
        [("num_edges".to_string(), ck.num_edges.to_string()), ("noise_level".to_string(), ck.noise_level.to_string())]
            .into();
    safetensors::serialize_to_file(views, &Some(meta), path).unwrap();
}

#[test]
fn bf16_safetensors_is_converted() {
    let Some(w) = weights_dir() else { return };
    let ck = checkpoint::load(&w.join("small_h64_l2_k16.pt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bf16.safetensors");
    write_safetensors(&ck, safetensors::Dtype::BF16, &p);
    let back = checkpoint::load(&p).unwrap();
    assert_eq!(back.architecture().unwrap(), arch(64, 2, 16, false));
    for (n, t) in &ck.tensors {
        let b = &back.tensors[n];
        assert_eq!(b.shape, t.shape);
        for (x, y) in t.data.iter().zip(&b.data) {
            assert_eq!(f32::from_bits(x.to_bits() & 0xffff_0000), *y, "{n}");
        }
    }
}

/// The error message (printed, so `--nocapture` shows what users would see).
fn msg(e: CheckpointError) -> String {
    let s = e.to_string();
    eprintln!("error: {s}");
    s
}

#[test]
fn corrupted_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    // Random bytes and an empty file.
    let mut x: u64 = 0x1234_5678;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let e = msg(checkpoint::load(&put("random.bin", &random)).unwrap_err());
    assert!(e.contains("random.bin") && e.contains("unrecognized checkpoint format"), "{e}");
    let e = msg(checkpoint::load(&put("empty.pt", b"")).unwrap_err());
    assert!(e.contains("unrecognized"), "{e}");
    let e = msg(checkpoint::load(&dir.path().join("nope.pt")).unwrap_err());
    assert!(e.contains("nope.pt"), "{e}");

    // A zip without data.pkl.
    let mut buf = Vec::new();
    {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut buf));
        z.start_file("archive/readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(b"hello").unwrap();
        z.finish().unwrap();
    }
    let e = msg(checkpoint::load(&put("nopkl.pt", &buf)).unwrap_err());
    assert!(e.contains("nopkl.pt") && e.contains("no data.pkl"), "{e}");

    // A legacy pickle file.
    let e = msg(checkpoint::load(&put("legacy.pt", &[0x80, 0x02, b'}', b'.'])).unwrap_err());
    assert!(e.contains("legacy") && e.contains("Re-save"), "{e}");

    let Some(w) = weights_dir() else { return };
    let full = std::fs::read(w.join("full_k48.pt")).unwrap();

    // Truncated zips (various cut points), and a zip with a corrupted byte in a storage.
    for cut in [10, full.len() / 3, full.len() / 2, full.len() - 100] {
        let p = put("trunc.pt", &full[..cut]);
        let e = checkpoint::load(&p).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("trunc.pt"), "{s}");
        assert!(matches!(e, CheckpointError::Torch { .. }), "{s}");
    }
    // A flipped byte inside a (stored) storage entry: its CRC-32 no longer matches.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&full[..])).unwrap();
    let name = zip.file_names().find(|n| n.contains("/data/")).unwrap().to_string();
    let start = zip.by_name(&name).unwrap().data_start() as usize;
    let mut flipped = full.clone();
    flipped[start + 5] ^= 0x40;
    let e = msg(checkpoint::load(&put("flipped.pt", &flipped)).unwrap_err());
    assert!(e.contains("flipped.pt") && e.contains("CRC-32") && e.contains("corrupted"), "{e}");

    // Corrupt the pickle: overwrite data.pkl's body bytes inside the (stored) zip.
    let pos = full.windows(9).position(|w| w == b"num_edges").unwrap();
    let mut bad = full.clone();
    for b in &mut bad[pos - 6..pos + 40] {
        *b = 0xfe;
    }
    let e = msg(checkpoint::load(&put("badpkl.pt", &bad)).unwrap_err());
    assert!(e.contains("badpkl.pt"), "{e}");

    // Safetensors with a missing tensor, a wrong shape, an extra tensor, missing metadata.
    let ck = checkpoint::load(&w.join("small_h64_l2_k16.pt")).unwrap();
    let mut missing = ck.clone();
    missing.tensors.remove("encoder_layers.1.W12.bias");
    let p = dir.path().join("missing.safetensors");
    checkpoint::save_safetensors(&missing, &p).unwrap();
    let e = msg(checkpoint::load(&p).unwrap().architecture().unwrap_err());
    assert!(
        e.contains("missing.safetensors")
            && e.contains("encoder_layers.1.W12.bias")
            && e.contains("expected shape [64]")
            && e.contains("found missing")
            && e.contains("not a ProteinMPNN checkpoint layout mpnn supports"),
        "{e}"
    );

    let mut wrong = ck.clone();
    wrong
        .tensors
        .insert("decoder_layers.0.W1.weight".into(), Tensor { shape: vec![64, 192], data: vec![0.0; 64 * 192] });
    let p = dir.path().join("wrong.safetensors");
    checkpoint::save_safetensors(&wrong, &p).unwrap();
    let e = msg(checkpoint::load(&p).unwrap().architecture().unwrap_err());
    assert!(
        e.contains("wrong.safetensors")
            && e.contains("decoder_layers.0.W1.weight")
            && e.contains("expected shape [64, 256]")
            && e.contains("found [64, 192]"),
        "{e}"
    );

    let mut extra = ck.clone();
    extra.tensors.insert("encoder_layers.7.W1.weight".into(), Tensor { shape: vec![1], data: vec![0.0] });
    let e = msg(extra.architecture().unwrap_err());
    assert!(e.contains("unexpected") && e.contains("encoder_layers.7.W1.weight"), "{e}");

    // A truncated safetensors file.
    let good = checkpoint::to_safetensors_bytes(&ck).unwrap();
    let e = msg(checkpoint::load(&put("trunc.safetensors", &good[..good.len() - 10])).unwrap_err());
    assert!(e.contains("trunc.safetensors") && e.contains("safetensors"), "{e}");

    // A safetensors file without the metadata.
    let p = dir.path().join("nometa.safetensors");
    let t = &ck.tensors["W_e.bias"];
    let b: Vec<u8> = t.data.iter().flat_map(|f| f.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), &b).unwrap();
    safetensors::serialize_to_file([("W_e.bias", view)], &None, &p).unwrap();
    let e = msg(checkpoint::load(&p).unwrap_err());
    assert!(e.contains("num_edges") && e.contains("__metadata__"), "{e}");
}

/// A bounded HTTP/1.1 server on loopback: serves `requests` connections, then exits.
/// `routes` maps a request path to a body; other paths get 404.
fn serve(routes: HashMap<String, Vec<u8>>, requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let mut stream = reader.into_inner();
            match routes.get(&path) {
                Some(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).ok();
                    stream.write_all(body).ok();
                }
                None => {
                    stream
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")
                        .ok();
                }
            }
            stream.flush().ok();
            seen.push(path);
        }
        seen
    });
    (base, h)
}

fn dir_entries(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn download_verified_loopback() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = git_blob_id(&body);
    let (base, h) = serve([("/w/file.pt".to_string(), body.clone())].into(), 3);
    let dir = tempfile::tempdir().unwrap();

    // Right id: the file appears in place.
    let dest = dir.path().join("sub").join("file.pt");
    download_verified(&format!("{base}/w/file.pt"), &id, &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(dir_entries(dest.parent().unwrap()), vec!["file.pt"]);

    // Wrong id: error, no file and no temp file.
    let dest2 = dir.path().join("bad").join("file.pt");
    let wrong = "0000000000000000000000000000000000000000";
    let e = download_verified(&format!("{base}/w/file.pt"), wrong, &dest2).unwrap_err();
    assert!(matches!(e, CheckpointError::BlobMismatch { .. }));
    let s = e.to_string();
    assert!(s.contains("does not match the pinned git blob id") && s.contains(wrong) && s.contains(&id), "{s}");
    assert!(dir_entries(dest2.parent().unwrap()).is_empty());

    // 404: clear error, nothing written.
    let dest3 = dir.path().join("missing").join("file.pt");
    let s = download_verified(&format!("{base}/w/nothere.pt"), &id, &dest3).unwrap_err().to_string();
    assert!(s.contains("404") && s.contains("nothere.pt"), "{s}");
    assert!(dir_entries(dest3.parent().unwrap()).is_empty());

    assert_eq!(h.join().unwrap(), vec!["/w/file.pt", "/w/file.pt", "/w/nothere.pt"]);
}

#[test]
fn resolve_with_env() {
    let cache = tempfile::tempdir().unwrap();
    let no_network = "http://127.0.0.1:9".to_string(); // nothing listens; must never be used
    let env = |base: &str, offline: bool| LocateEnv {
        weights: None,
        cache_dir: Some(cache.path().to_path_buf()),
        base_url: base.to_string(),
        offline,
    };

    // Offline: the message says what to fetch and where to put it.
    let q = WeightsQuery::default();
    let s = resolve_with(&q, &env(&no_network, true)).unwrap_err().to_string();
    let expected_cache = cache.path().join("vanilla_model_weights").join("v_48_020.pt");
    assert!(s.contains("http://127.0.0.1:9/vanilla_model_weights/v_48_020.pt"), "{s}");
    assert!(s.contains(&expected_cache.display().to_string()), "{s}");
    assert!(s.contains("--weights") && s.contains("--path_to_model_weights"), "{s}");
    let q_off = WeightsQuery { offline: true, ..Default::default() };
    assert!(matches!(resolve_with(&q_off, &env(&no_network, false)), Err(CheckpointError::Offline { .. })));

    // Unknown model names are rejected with the valid list.
    let bad = WeightsQuery { model_name: "v_48_999".into(), ..Default::default() };
    let s = resolve_with(&bad, &env(&no_network, true)).unwrap_err().to_string();
    assert!(s.contains("v_48_999") && s.contains("v_48_002, v_48_010, v_48_020, v_48_030"), "{s}");

    // Explicit path / folder that do not exist: clear errors.
    let q = WeightsQuery { path: Some(cache.path().join("nope.pt")), ..Default::default() };
    assert!(resolve_with(&q, &env(&no_network, true)).unwrap_err().to_string().contains("nope.pt"));

    let Some(w) = weights_dir() else { return };
    let full = std::fs::read(w.join("full_k48.pt")).unwrap();

    // A mirror serving a file that is not the pinned one: refused, nothing cached.
    let (base, h) = serve([("/vanilla_model_weights/v_48_020.pt".to_string(), full.clone())].into(), 1);
    let e = resolve_with(&WeightsQuery::default(), &env(&base, false)).unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, CheckpointError::BlobMismatch { .. }), "{s}");
    assert!(s.contains("66f81553eea491dfc1307582c679ef029511937b"), "{s}");
    assert_eq!(h.join().unwrap(), vec!["/vanilla_model_weights/v_48_020.pt"]);
    assert!(!expected_cache.exists());
    assert!(dir_entries(&cache.path().join("vanilla_model_weights")).is_empty());

    // A file already in the cache is used without any network (base URL points nowhere).
    std::fs::create_dir_all(expected_cache.parent().unwrap()).unwrap();
    std::fs::write(&expected_cache, &full).unwrap();
    let got = resolve_with(&WeightsQuery::default(), &env(&no_network, false)).unwrap();
    assert_eq!(got, expected_cache);

    // Explicit file and official folder layout.
    let q = WeightsQuery { path: Some(w.join("ca_k48.pt")), ..Default::default() };
    assert_eq!(resolve_with(&q, &env(&no_network, true)).unwrap(), w.join("ca_k48.pt"));
    let q = WeightsQuery { folder: Some(w.clone()), model_name: "small_h64_l2_k16".into(), ..Default::default() };
    assert_eq!(resolve_with(&q, &env(&no_network, true)).unwrap(), w.join("small_h64_l2_k16.pt"));
    let q = WeightsQuery { folder: Some(w.clone()), model_name: "v_48_020".into(), ..Default::default() };
    let s = resolve_with(&q, &env(&no_network, true)).unwrap_err().to_string();
    assert!(s.contains("v_48_020.pt") && s.contains("full_k48"), "{s}");

    // MPNN_WEIGHTS: a file, or a folder with <model_name>.pt or the official subfolders.
    let mut e2 = env(&no_network, true);
    e2.weights = Some(w.join("full_k48.pt"));
    assert_eq!(resolve_with(&WeightsQuery::default(), &e2).unwrap(), w.join("full_k48.pt"));
    let mirror = tempfile::tempdir().unwrap();
    let ca_dir = mirror.path().join("ca_model_weights");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::copy(w.join("ca_k48.pt"), ca_dir.join("v_48_010.pt")).unwrap();
    e2.weights = Some(mirror.path().to_path_buf());
    let q = WeightsQuery { ca_only: true, model_name: "v_48_010".into(), ..Default::default() };
    assert_eq!(resolve_with(&q, &e2).unwrap(), ca_dir.join("v_48_010.pt"));
    let mut buf = [0u8; 2];
    std::fs::File::open(ca_dir.join("v_48_010.pt")).unwrap().read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"PK");
}

/// The LigandMPNN fixture weights (`../shared/parity/ligand/weights`), or `None` (skip).
fn ligand_weights_dir() -> Option<PathBuf> {
    let w = weights_dir()?.parent()?.join("ligand").join("weights");
    w.join("ligand_k32_a25.pt").is_file().then_some(w)
}

fn o_text(o: &std::process::Output) -> Vec<u8> {
    [o.stdout.clone(), o.stderr.clone()].concat()
}

fn ligand_env(cache: &Path, base: &str, offline: bool) -> LigandLocateEnv {
    LigandLocateEnv { cache_dir: Some(cache.to_path_buf()), base_url: base.to_string(), offline }
}

#[test]
fn ligand_fetch_loopback() {
    let Some(w) = ligand_weights_dir() else { return };
    let lig = std::fs::read(w.join("ligand_k32_a25.pt")).unwrap();
    let protein = std::fs::read(w.join("protein_k48.pt")).unwrap();
    let routes: HashMap<String, Vec<u8>> = [
        ("/lig/ligandmpnn_v_32_010_25.pt".to_string(), lig.clone()),
        ("/lig/ligandmpnn_v_32_005_25.pt".to_string(), protein.clone()),
        ("/lig/ligandmpnn_v_32_010_16.pt".to_string(), lig.clone()),
        ("/lig/proteinmpnn_v_32_020.pt".to_string(), protein.clone()),
        ("/lig/solublempnn_v_48_020.pt".to_string(), b"not a checkpoint".to_vec()),
    ]
    .into();
    let (base, h) = serve(routes, 5);
    let base = format!("{base}/lig/");
    let cache = tempfile::tempdir().unwrap();
    let sub = cache.path().join("ligandmpnn");
    let no_network = "http://127.0.0.1:9";

    // Downloaded, verified, stored with its SHA-256 recorded beside it.
    let got = fetch_ligand_weights_with(
        ModelType::LigandMpnn,
        "ligandmpnn_v_32_010_25.pt",
        &ligand_env(cache.path(), &base, false),
    )
    .unwrap();
    let stored = sub.join("ligandmpnn_v_32_010_25.pt");
    assert_eq!(got.path, stored);
    assert!(got.downloaded);
    assert_eq!(got.sha256, sha256_hex(&lig));
    assert_eq!(std::fs::read(&stored).unwrap(), lig);
    let record = std::fs::read_to_string(sub.join("ligandmpnn_v_32_010_25.pt.sha256")).unwrap();
    assert_eq!(record, format!("{}  ligandmpnn_v_32_010_25.pt\n", sha256_hex(&lig)));
    assert_eq!(dir_entries(&sub), vec!["ligandmpnn_v_32_010_25.pt", "ligandmpnn_v_32_010_25.pt.sha256"]);

    // The second call uses the cache: no network (the base URL points nowhere), even offline.
    for offline in [false, true] {
        let again = fetch_ligand_weights_with(
            ModelType::LigandMpnn,
            "ligandmpnn_v_32_010_25.pt",
            &ligand_env(cache.path(), no_network, offline),
        )
        .unwrap();
        assert_eq!(again, LigandWeights { downloaded: false, ..got.clone() });
    }

    // Files that do not fit what their name promises: refused, nothing kept.
    let cases: [(ModelType, &str, &[&str]); 4] = [
        (ModelType::LigandMpnn, "ligandmpnn_v_32_005_25.pt", &["this is not a ligand_mpnn checkpoint", "protein_mpnn"]),
        (ModelType::LigandMpnn, "ligandmpnn_v_32_010_16.pt", &["atom_context_num is 25", "promises 16"]),
        (ModelType::ProteinMpnn, "proteinmpnn_v_32_020.pt", &["num_edges is 48", "promises 32"]),
        (ModelType::SolubleMpnn, "solublempnn_v_48_020.pt", &["does not load", "unrecognized checkpoint format"]),
    ];
    for (t, name, needles) in cases {
        let e = fetch_ligand_weights_with(t, name, &ligand_env(cache.path(), &base, false)).unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, CheckpointError::WrongWeights { .. }), "{s}");
        assert!(s.contains(&format!("{base}{name}")), "{s}");
        assert!(s.contains("Nothing was kept"), "{s}");
        for n in needles {
            assert!(s.contains(n), "{name}: message lacks {n:?}: {s}");
        }
        assert_eq!(dir_entries(&sub), vec!["ligandmpnn_v_32_010_25.pt", "ligandmpnn_v_32_010_25.pt.sha256"], "{name}");
    }
    let seen = h.join().unwrap();
    assert_eq!(seen.len(), 5, "{seen:?}");

    // A cached file that changed since it was recorded is refused, naming the file and the fix.
    let mut changed = lig.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&stored, &changed).unwrap();
    let e = fetch_ligand_weights_with(
        ModelType::LigandMpnn,
        "ligandmpnn_v_32_010_25.pt",
        &ligand_env(cache.path(), no_network, false),
    )
    .unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, CheckpointError::Tampered { .. }), "{s}");
    assert!(s.contains(&stored.display().to_string()) && s.contains("Delete") && s.contains(&sha256_hex(&lig)), "{s}");
    assert!(s.contains(&sha256_hex(&changed)), "{s}");

    // Offline with an empty cache: what to fetch and where to put it.
    let empty = tempfile::tempdir().unwrap();
    let e = fetch_ligand_weights_with(
        ModelType::LigandMpnn,
        "ligandmpnn_v_32_010_25.pt",
        &ligand_env(empty.path(), no_network, true),
    )
    .unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, CheckpointError::OfflineLigand { .. }), "{s}");
    assert!(s.contains("http://127.0.0.1:9/ligandmpnn_v_32_010_25.pt"), "{s}");
    assert!(
        s.contains(&empty.path().join("ligandmpnn").join("ligandmpnn_v_32_010_25.pt").display().to_string()),
        "{s}"
    );
    assert!(s.contains("--checkpoint_ligand_mpnn"), "{s}");
    assert!(dir_entries(empty.path()).is_empty());

    // A name that is not published, or of another model type: refused before any network.
    let s = fetch_ligand_weights_with(
        ModelType::LigandMpnn,
        "proteinmpnn_v_48_020.pt",
        &ligand_env(empty.path(), no_network, false),
    )
    .unwrap_err()
    .to_string();
    assert!(s.contains("protein_mpnn model, not a ligand_mpnn model"), "{s}");
}

/// `mpnn ligandmpnn run` with the default `--checkpoint_ligand_mpnn` (absent in the working
/// folder) fetches the published file through the locator and designs with it; an explicit
/// path that does not exist stays an error.
#[test]
fn ligandmpnn_run_fetches_the_default_checkpoint() {
    let Some(w) = ligand_weights_dir() else { return };
    let pdb = w.parent().unwrap().join("structures").join("1BC8.pdb");
    let lig = std::fs::read(w.join("ligand_k32_a25.pt")).unwrap();
    let (base, h) = serve([("/ligandmpnn_v_32_010_25.pt".to_string(), lig.clone())].into(), 1);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = |base: &str, model_type: &str, extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mpnn"));
        c.args(["ligandmpnn", "run", "--model_type", model_type, "--seed", "1", "--pdb_path"])
            .arg(&pdb)
            .args(["--out_folder", "out"])
            .args(extra)
            .current_dir(tmp.path())
            .env_remove("MPNN_WEIGHTS")
            .env_remove("MPNN_OFFLINE")
            .env("MPNN_CACHE_DIR", &cache)
            .env("MPNN_LIGAND_WEIGHTS_BASE_URL", base);
        let o = c.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        (o.status.success(), text)
    };
    let (ok, text) = run(&base, "ligand_mpnn", &[]);
    assert!(ok, "{text}");
    let stored = cache.join("ligandmpnn").join("ligandmpnn_v_32_010_25.pt");
    assert!(text.contains("downloaded and verified") && text.contains(&stored.display().to_string()), "{text}");
    assert_eq!(h.join().unwrap(), vec!["/ligandmpnn_v_32_010_25.pt"]);
    assert_eq!(std::fs::read(&stored).unwrap(), lig);
    assert!(
        tmp.path().join("out").join("seqs").join("1BC8.fa").is_file(),
        "{:?}",
        dir_entries(&tmp.path().join("out"))
    );

    // Again: the cache, no network.
    let (ok, text) = run("http://127.0.0.1:9", "ligand_mpnn", &[]);
    assert!(ok && text.contains("using the cached, verified"), "{text}");

    // `score` goes the same way.
    let c = std::process::Command::new(env!("CARGO_BIN_EXE_mpnn"))
        .args(["ligandmpnn", "score", "--model_type", "ligand_mpnn", "--autoregressive_score", "1", "--pdb_path"])
        .arg(&pdb)
        .args(["--out_folder", "scored"])
        .current_dir(tmp.path())
        .env_remove("MPNN_WEIGHTS")
        .env_remove("MPNN_OFFLINE")
        .env("MPNN_CACHE_DIR", &cache)
        .env("MPNN_LIGAND_WEIGHTS_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o_text(&c)).into_owned();
    assert!(c.status.success() && text.contains(&stored.display().to_string()), "{text}");
    assert!(tmp.path().join("scored").join("1BC8.pt").is_file(), "{:?}", dir_entries(&tmp.path().join("scored")));

    // A 404 from the mirror: a clear error naming the URL and the flag, nothing kept.
    let (base, h) = serve(HashMap::new(), 1);
    let (ok, text) = run(&base, "soluble_mpnn", &[]);
    assert!(!ok && text.contains("404") && text.contains("solublempnn_v_48_020.pt"), "{text}");
    assert!(text.contains("--checkpoint_soluble_mpnn"), "{text}");
    h.join().unwrap();
    assert_eq!(dir_entries(&cache.join("ligandmpnn")).len(), 2);

    // An explicit path that does not exist is an error, never a fetch.
    let (ok, text) = run("http://127.0.0.1:9", "ligand_mpnn", &["--checkpoint_ligand_mpnn", "mine.pt"]);
    assert!(!ok && text.contains("--checkpoint_ligand_mpnn mine.pt: no such file"), "{text}");
}

/// Mutated and truncated `data.pkl` (re-zipped, so the CRC is valid): errors, never panics.
#[test]
fn mutated_pickles_never_panic() {
    let Some(w) = weights_dir() else { return };
    let src = std::fs::read(w.join("small_h64_l2_k16.pt")).unwrap();
    let mut ar = zip::ZipArchive::new(std::io::Cursor::new(&src[..])).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..ar.len() {
        let mut f = ar.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        entries.push((f.name().to_string(), b));
    }
    let pkl_idx = entries.iter().position(|(n, _)| n.ends_with("/data.pkl")).unwrap();
    let pkl = entries[pkl_idx].1.clone();
    let rezip = |pkl: &[u8]| {
        let mut buf = Vec::new();
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut buf));
        let opt = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (i, (n, b)) in entries.iter().enumerate() {
            z.start_file(n.as_str(), opt).unwrap();
            z.write_all(if i == pkl_idx { pkl } else { b }).unwrap();
        }
        z.finish().unwrap();
        buf
    };
    // Sanity: the unmodified re-zip loads.
    checkpoint::load_bytes(&rezip(&pkl), "rezip.pt").unwrap();
    let mut errors = 0;
    for pos in (0..pkl.len()).step_by(11) {
        for val in [0x00u8, 0xff, pkl[pos].wrapping_add(1)] {
            let mut m = pkl.clone();
            m[pos] = val;
            if checkpoint::load_bytes(&rezip(&m), "mutated.pt").is_err() {
                errors += 1;
            }
        }
        // Pure pickle VM on a truncation.
        assert!(checkpoint::pickle::unpickle(&pkl[..pos]).is_err());
    }
    assert!(errors > 0);
}
