//! Reading official `.pt` checkpoints: the zip archive written by `torch.save` (PyTorch ≥ 1.6).
//!
//! Layout: `<prefix>/data.pkl` (the pickled dict), `<prefix>/data/<key>` (raw little-endian
//! storages), `<prefix>/byteorder`, `<prefix>/version`. Only the top-level keys `num_edges`,
//! `noise_level` and `model_state_dict` are used; everything else (`epoch`, `step`,
//! `optimizer_state_dict`, …) is decoded as opaque values and ignored. Storages are read only for
//! tensors of the model state dict, and every tensor is materialized as contiguous f32, honouring
//! its storage offset and strides.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read};

use rayon::prelude::*;

use super::pickle::{self, StorageDtype, TensorRef, Value};
use super::{Checkpoint, CheckpointError, Tensor};

/// The magic number at the start of a legacy (pre-1.6) `torch.save` file, after `\x80\x02\x8a\x0a`.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// True when `bytes` look like a legacy (non-zip) `torch.save` file: a protocol-2 pickle
/// starting with torch's magic number (or any pickle, which torch ≥ 1.6 never writes alone).
pub fn is_legacy_torch(bytes: &[u8]) -> bool {
    if bytes.len() >= 14 && bytes[..4] == [0x80, 0x02, 0x8a, 0x0a] && bytes[4..14] == LEGACY_MAGIC {
        return true;
    }
    bytes.len() >= 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1])
}

/// Parse a `torch.save` zip archive held in memory. `source` names the file in errors.
pub fn load_torch_bytes(bytes: &[u8], source: &str) -> Result<Checkpoint, CheckpointError> {
    let terr = |reason: String| CheckpointError::Torch { path: source.to_string(), reason };
    if is_legacy_torch(bytes) {
        return Err(CheckpointError::LegacyTorch { path: source.to_string() });
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        terr(format!("cannot open the zip archive ({e}); the file is truncated or corrupted, download it again"))
    })?;

    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let pkl = names.iter().filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl")).min_by_key(|n| n.len()).cloned();
    let Some(pkl) = pkl else {
        if names.iter().any(|n| n.ends_with("constants.pkl")) {
            return Err(terr(
                "this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; \
                 save the model's state dict with torch.save instead"
                    .into(),
            ));
        }
        return Err(terr("the zip archive has no data.pkl entry, so it was not written by torch.save".into()));
    };
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];

    let read_entry =
        |zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str| -> Result<Option<Vec<u8>>, CheckpointError> {
            let mut f = match zip.by_name(name) {
                Ok(f) => f,
                Err(zip::result::ZipError::FileNotFound) => return Ok(None),
                Err(e) => return Err(terr(format!("cannot read zip entry {name}: {e}"))),
            };
            // The size in the zip header is untrusted: cap the up-front allocation.
            let mut out = Vec::with_capacity(f.size().min(64 << 20) as usize);
            f.read_to_end(&mut out).map_err(|e| {
                terr(format!("cannot read zip entry {name} ({e}); the file is corrupted, download it again"))
            })?;
            Ok(Some(out))
        };

    if let Some(order) = read_entry(&mut zip, &format!("{prefix}byteorder"))? {
        let order = String::from_utf8_lossy(&order);
        if order.trim() != "little" {
            return Err(terr(format!(
                "storages are {} endian; only little-endian checkpoints are supported",
                order.trim()
            )));
        }
    }

    let pkl_bytes = read_entry(&mut zip, &pkl)?.unwrap_or_default();
    let root =
        pickle::unpickle(&pkl_bytes).map_err(|e| CheckpointError::Pickle { path: source.to_string(), reason: e.0 })?;
    let Value::Dict(root) = root else {
        return Err(terr(format!(
            "the pickled object is a {}, not the official checkpoint dict \
             (with num_edges, noise_level, model_state_dict)",
            root.describe()
        )));
    };
    let root = root.borrow();
    let get = |key: &str| root.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v.clone());
    let keys = || {
        root.iter()
            .map(|(k, _)| match k {
                Value::Str(s) => s.clone(),
                other => other.describe(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };

    let num_edges = match get("num_edges") {
        Some(v) => {
            v.as_usize().ok_or_else(|| terr(format!("num_edges is not a non-negative integer ({})", v.describe())))?
        }
        None => {
            return Err(terr(format!(
                "the checkpoint dict has no `num_edges` entry (keys: {}); mpnn expects the \
                 official ProteinMPNN checkpoint dict",
                keys()
            )))
        }
    };
    let noise_level = match get("noise_level") {
        Some(Value::Float(f)) => f,
        Some(Value::Int(i)) => i as f64,
        Some(v) => return Err(terr(format!("noise_level is not a number ({})", v.describe()))),
        None => return Err(terr(format!("the checkpoint dict has no `noise_level` entry (keys: {})", keys()))),
    };
    let atom_context_num = match get("atom_context_num") {
        Some(v) => Some(
            v.as_usize()
                .ok_or_else(|| terr(format!("atom_context_num is not a non-negative integer ({})", v.describe())))?,
        ),
        None => None,
    };
    let state = match get("model_state_dict") {
        Some(Value::Dict(d)) => d,
        Some(v) => return Err(terr(format!("model_state_dict is a {}, not a dict of tensors", v.describe()))),
        None => return Err(terr(format!("the checkpoint dict has no `model_state_dict` entry (keys: {})", keys()))),
    };

    // Storages: stored (uncompressed) entries, as torch.save writes them, are used in place once
    // their CRC-32 is checked (no copy of the 10 MB of a LigandMPNN checkpoint); others are read
    // (inflated) into memory.
    let mut storages: HashMap<String, Cow<[u8]>> = HashMap::new();
    let mut views: Vec<(String, TensorRef)> = Vec::new();
    for (k, v) in state.borrow().iter() {
        let Value::Str(name) = k else {
            return Err(terr(format!("model_state_dict has a non-string key ({})", k.describe())));
        };
        let Value::Tensor(t) = v else {
            return Err(terr(format!("model_state_dict entry `{name}` is a {}, not a tensor", v.describe())));
        };
        let key = &t.storage.key;
        if !storages.contains_key(key) {
            let entry = format!("{prefix}data/{key}");
            let b = match stored_entry(&mut zip, bytes, &entry).map_err(terr)? {
                Some(b) => Cow::Borrowed(b),
                None => match read_entry(&mut zip, &entry)? {
                    Some(b) => Cow::Owned(b),
                    None => {
                        return Err(terr(format!(
                            "tensor `{name}` refers to storage {entry}, which is missing from the archive"
                        )))
                    }
                },
            };
            storages.insert(key.clone(), b);
        }
        views.push((name.clone(), (**t).clone()));
    }
    // Materializing copies every tensor: in parallel (errors reported in the dict's order).
    let data: Vec<Result<Vec<f32>, String>> =
        views.par_iter().map(|(_, t)| materialize(t, &storages[&t.storage.key])).collect();
    let mut tensors = BTreeMap::new();
    for ((name, t), data) in views.into_iter().zip(data) {
        let data = data.map_err(|m| terr(format!("tensor `{name}`: {m}")))?;
        tensors.insert(name, Tensor { shape: t.size, data });
    }

    Ok(Checkpoint { source: source.to_string(), num_edges, noise_level, atom_context_num, tensors })
}

/// The bytes of zip entry `name` when it is stored uncompressed inside `bytes` (the archive
/// itself) and its CRC-32 matches; `None` when it is missing or compressed (read it instead).
fn stored_entry<'a>(
    zip: &mut zip::ZipArchive<Cursor<&'a [u8]>>,
    bytes: &'a [u8],
    name: &str,
) -> Result<Option<&'a [u8]>, String> {
    let f = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("cannot read zip entry {name}: {e}")),
    };
    if f.compression() != zip::CompressionMethod::Stored || f.size() != f.compressed_size() {
        return Ok(None);
    }
    let start = f.data_start() as usize;
    let Some(data) = start.checked_add(f.size() as usize).and_then(|end| bytes.get(start..end)) else {
        return Err(format!(
            "zip entry {name} runs past the end of the file; the file is truncated or corrupted, download it again"
        ));
    };
    if crc32fast::hash(data) != f.crc32() {
        return Err(format!("zip entry {name} fails its CRC-32 check; the file is corrupted, download it again"));
    }
    Ok(Some(data))
}

/// Views with more elements than their storage (stride-0 broadcasts) are materialized only up
/// to this many elements (1 GiB of f32), so a corrupted header cannot exhaust memory.
const MAX_BROADCAST_ELEMENTS: usize = 1 << 28;

/// Convert an IEEE half to f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = m as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Convert bfloat16 to f32 (exact).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Decode element `i` of a raw little-endian storage.
fn element(bytes: &[u8], dtype: StorageDtype, i: usize) -> f32 {
    match dtype {
        StorageDtype::F32 => f32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]),
        StorageDtype::F16 => f16_to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])),
        StorageDtype::BF16 => bf16_to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])),
        StorageDtype::F64 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[8 * i..8 * i + 8]);
            f64::from_le_bytes(a) as f32
        }
        StorageDtype::Other(_) => 0.0,
    }
}

/// Gather a strided view of a storage into a contiguous row-major f32 buffer.
/// All bounds are checked up front; errors are messages for the caller to wrap.
pub(crate) fn materialize(t: &TensorRef, bytes: &[u8]) -> Result<Vec<f32>, String> {
    let dtype = t.storage.dtype;
    let Some(es) = dtype.size() else {
        let StorageDtype::Other(name) = dtype else { unreachable!() };
        return Err(format!(
            "has storage type {name}; only float32, float16, bfloat16 and float64 tensors are supported"
        ));
    };
    let available = bytes.len() / es;
    let mut numel: usize = 1;
    for &s in &t.size {
        numel = numel.checked_mul(s).ok_or_else(|| format!("size {:?} overflows", t.size))?;
    }
    if numel == 0 {
        return Ok(Vec::new());
    }
    let mut last = t.offset;
    for (&s, &st) in t.size.iter().zip(&t.stride) {
        last = (s - 1)
            .checked_mul(st)
            .and_then(|x| last.checked_add(x))
            .ok_or_else(|| format!("size {:?} / stride {:?} overflow", t.size, t.stride))?;
    }
    if last >= available {
        return Err(format!(
            "view (offset {}, size {:?}, stride {:?}) reaches element {last} but storage {} holds \
             only {available} elements; the file is truncated or corrupted",
            t.offset, t.size, t.stride, t.storage.key
        ));
    }

    if numel > available && numel > MAX_BROADCAST_ELEMENTS {
        return Err(format!(
            "view (size {:?}, stride {:?}) has {numel} elements but its storage only \
             {available}; refusing to materialize such a large overlapping view",
            t.size, t.stride
        ));
    }

    // Contiguous row-major: one linear pass.
    let mut expect = 1usize;
    let mut contiguous = true;
    for (&s, &st) in t.size.iter().zip(&t.stride).rev() {
        if s != 1 && st != expect {
            contiguous = false;
            break;
        }
        expect *= s;
    }
    if contiguous {
        if dtype == StorageDtype::F32 {
            let raw = &bytes[4 * t.offset..4 * (t.offset + numel)];
            return Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
        }
        return Ok((t.offset..t.offset + numel).map(|i| element(bytes, dtype, i)).collect());
    }

    // General strided gather with an odometer over the multi-index.
    let nd = t.size.len();
    let mut idx = vec![0usize; nd];
    let mut out = Vec::with_capacity(numel);
    let mut pos = t.offset;
    for _ in 0..numel {
        out.push(element(bytes, dtype, pos));
        for d in (0..nd).rev() {
            // Wrapping arithmetic: every visited position is in bounds (checked above), but a
            // huge stride on a size-1 dimension may overflow transiently.
            idx[d] += 1;
            pos = pos.wrapping_add(t.stride[d]);
            if idx[d] < t.size[d] {
                break;
            }
            pos = pos.wrapping_sub(t.stride[d].wrapping_mul(t.size[d]));
            idx[d] = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A tiny pickle writer for building synthetic checkpoints.
    struct P(Vec<u8>);
    impl P {
        fn s(&mut self, s: &str) -> &mut Self {
            self.0.push(b'X');
            self.0.extend((s.len() as u32).to_le_bytes());
            self.0.extend(s.as_bytes());
            self
        }
        fn i(&mut self, v: u8) -> &mut Self {
            self.0.extend([b'K', v]);
            self
        }
        fn op(&mut self, o: &[u8]) -> &mut Self {
            self.0.extend(o);
            self
        }
        fn global(&mut self, m: &str, n: &str) -> &mut Self {
            self.0.push(b'c');
            self.0.extend(format!("{m}\n{n}\n").as_bytes());
            self
        }
        /// Push `_rebuild_parameter(_rebuild_tensor_v2(storage, off, size, stride, False, OD()), False, OD())`.
        fn tensor(&mut self, class: &str, key: &str, numel: u8, off: u8, size: &[u8], stride: &[u8]) -> &mut Self {
            self.global("torch._utils", "_rebuild_parameter").op(b"(");
            self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
            self.op(b"(").s("storage").global("torch", class).s(key).s("cuda:0").i(numel).op(b"tQ");
            self.i(off).op(b"(");
            for &x in size {
                self.i(x);
            }
            self.op(b"t(");
            for &x in stride {
                self.i(x);
            }
            self.op(b"t");
            self.op(&[0x89]).global("collections", "OrderedDict").op(b")R").op(b"tR");
            self.op(&[0x89]).global("collections", "OrderedDict").op(b")R").op(b"tR")
        }
    }

    fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut buf = Vec::new();
        {
            let mut z = zip::ZipWriter::new(Cursor::new(&mut buf));
            let opt = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            for (n, b) in entries {
                z.start_file(*n, opt).unwrap();
                z.write_all(b).unwrap();
            }
            z.finish().unwrap();
        }
        buf
    }

    fn synthetic() -> Vec<u8> {
        let mut p = P(vec![0x80, 2]);
        p.op(b"}(");
        p.s("epoch").i(7);
        p.s("optimizer_state_dict").global("torch.optim.adam", "Adam").op(b")R}b");
        p.s("num_edges").i(32);
        p.s("noise_level").op(b"G").op(&0.1f64.to_be_bytes());
        p.s("model_state_dict").global("collections", "OrderedDict").op(b")R(");
        // a: f16 storage of 10, offset 2, size (2,3), stride (1,2) -> a[i][j] = s[2 + i + 2j]
        p.s("a").tensor("HalfStorage", "0", 10, 2, &[2, 3], &[1, 2]);
        // b: bf16, contiguous (4,)
        p.s("b").tensor("BFloat16Storage", "1", 4, 0, &[4], &[1]);
        // c: f64 slice offset 1 size (2,) of the same storage as d
        p.s("c").tensor("DoubleStorage", "2", 3, 1, &[2], &[1]);
        // d: f32 transposed (2,2) stride (1,2)
        p.s("d").tensor("FloatStorage", "3", 4, 0, &[2, 2], &[1, 2]);
        p.op(b"u").op(b"}b"); // SETITEMS into the OrderedDict, then BUILD with {}
        p.op(b"u.");
        let f16: Vec<u8> = (0..10u16)
            .flat_map(|i| {
                // i as half: exact small integers.
                let f = i as f32;
                let bits = if i == 0 {
                    0
                } else {
                    let e = f.log2().floor() as u16;
                    let m = ((f / (1 << e) as f32 - 1.0) * 1024.0) as u16;
                    ((e + 15) << 10) | m
                };
                bits.to_le_bytes()
            })
            .collect();
        let bf16: Vec<u8> =
            [1.5f32, -2.0, 0.25, 3.0].iter().flat_map(|f| ((f.to_bits() >> 16) as u16).to_le_bytes()).collect();
        let f64s: Vec<u8> = [9.0f64, 0.5, -0.75].iter().flat_map(|f| f.to_le_bytes()).collect();
        let f32s: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        zip_of(&[
            ("archive/data.pkl", p.0.clone()),
            ("archive/byteorder", b"little".to_vec()),
            ("archive/data/0", f16),
            ("archive/data/1", bf16),
            ("archive/data/2", f64s),
            ("archive/data/3", f32s),
            ("archive/version", b"3\n".to_vec()),
        ])
    }

    #[test]
    fn synthetic_strided_mixed_dtypes() {
        let ck = load_torch_bytes(&synthetic(), "synthetic.pt").unwrap();
        assert_eq!(ck.num_edges, 32);
        assert_eq!(ck.noise_level, 0.1);
        assert_eq!(ck.tensors.len(), 4);
        let a = &ck.tensors["a"];
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![2.0, 4.0, 6.0, 3.0, 5.0, 7.0]);
        assert_eq!(ck.tensors["b"].data, vec![1.5, -2.0, 0.25, 3.0]);
        assert_eq!(ck.tensors["c"].data, vec![0.5, -0.75]);
        assert_eq!(ck.tensors["d"].data, vec![1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn out_of_bounds_view_is_an_error() {
        let t = TensorRef {
            storage: pickle::StorageRef { key: "0".into(), dtype: StorageDtype::F32, numel: 4 },
            offset: 1,
            size: vec![4],
            stride: vec![1],
        };
        let e = materialize(&t, &[0u8; 16]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn half_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn legacy_detected() {
        let mut b = vec![0x80, 0x02, 0x8a, 0x0a];
        b.extend(LEGACY_MAGIC);
        b.extend([b'.']);
        let e = load_torch_bytes(&b, "old.pt").unwrap_err();
        assert!(matches!(e, CheckpointError::LegacyTorch { .. }));
        assert!(e.to_string().contains("re-save") || e.to_string().contains("Re-save"));
    }

    #[test]
    fn missing_storage_and_torchscript() {
        let mut z = synthetic();
        // Drop storage 3 by rebuilding without it.
        let ck_zip = {
            let mut ar = zip::ZipArchive::new(Cursor::new(&z[..])).unwrap();
            let mut entries = Vec::new();
            for i in 0..ar.len() {
                let mut f = ar.by_index(i).unwrap();
                let name = f.name().to_string();
                let mut b = Vec::new();
                f.read_to_end(&mut b).unwrap();
                if name != "archive/data/3" {
                    entries.push((name, b));
                }
            }
            let refs: Vec<(&str, Vec<u8>)> = entries.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
            zip_of(&refs)
        };
        let e = load_torch_bytes(&ck_zip, "x.pt").unwrap_err().to_string();
        assert!(e.contains("archive/data/3") && e.contains("missing"), "{e}");
        z = zip_of(&[("m/constants.pkl", vec![b'.']), ("m/code/x.py", vec![])]);
        let e = load_torch_bytes(&z, "ts.pt").unwrap_err().to_string();
        assert!(e.contains("TorchScript"), "{e}");
    }
}
