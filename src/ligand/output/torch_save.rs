//! A `torch.save` writer: the zip archive `torch.load` reads (`NAME/data.pkl` pickled with
//! protocol 2, one `NAME/data/K` record per tensor storage, `NAME/version`, `NAME/byteorder`, …,
//! every record aligned to 64 bytes as torch 2 writes them), holding the values LigandMPNN's
//! `run.py` and `score.py` save: torch tensors, numpy arrays and numpy float32 scalars, Python
//! ints, floats, strings, lists and dicts.
//!
//! The pickle follows CPython's protocol-2 pickler opcode for opcode (memo, batched
//! `APPENDS`/`SETITEMS`, `_codecs.encode(..., 'latin1')` for bytes), and tensors and arrays are
//! pickled the way torch and numpy 1.x reduce them, so `torch.load(path, weights_only=False)`
//! (and, for files with tensors only, the default `weights_only=True`) returns the same Python
//! objects as for the official files.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

/// Element type of a tensor or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    I32,
    I64,
}

impl Dtype {
    fn storage_class(self) -> &'static str {
        match self {
            Dtype::F32 => "FloatStorage",
            Dtype::I32 => "IntStorage",
            Dtype::I64 => "LongStorage",
        }
    }
    fn numpy_code(self) -> &'static str {
        match self {
            Dtype::F32 => "f4",
            Dtype::I32 => "i4",
            Dtype::I64 => "i8",
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::I64 => 8,
        }
    }
}

/// A dense row-major array: element type, shape and little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Array {
    /// A float32 array; `data.len()` must equal the product of `shape`.
    pub fn f32(shape: &[usize], data: &[f32]) -> Array {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "array shape and data disagree");
        Array { dtype: Dtype::F32, shape: shape.to_vec(), bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
    /// An int32 array.
    pub fn i32(shape: &[usize], data: &[i32]) -> Array {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "array shape and data disagree");
        Array { dtype: Dtype::I32, shape: shape.to_vec(), bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
    /// An int64 array.
    pub fn i64(shape: &[usize], data: &[i64]) -> Array {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "array shape and data disagree");
        Array { dtype: Dtype::I64, shape: shape.to_vec(), bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
    fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    fn strides(&self) -> Vec<usize> {
        let mut s = vec![1usize; self.shape.len()];
        for i in (0..self.shape.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.shape[i + 1];
        }
        s
    }
}

/// A Python value to save.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    /// A dict, in insertion order.
    Dict(Vec<(PyValue, PyValue)>),
    /// A CPU torch tensor (contiguous, offset 0, no grad).
    Tensor(Array),
    /// A numpy array (`numpy.ndarray`, C order).
    NdArray(Array),
    /// A numpy float32 scalar (`np.float32`).
    NpF32(f32),
}

impl PyValue {
    /// `PyValue::Str` from anything string-like.
    pub fn str(s: impl Into<String>) -> PyValue {
        PyValue::Str(s.into())
    }
}

/// A dict with string keys, in order.
pub fn str_dict(items: Vec<(&str, PyValue)>) -> PyValue {
    PyValue::Dict(items.into_iter().map(|(k, v)| (PyValue::str(k), v)).collect())
}

// Pickle opcodes (protocol 2).
const PROTO: u8 = 0x80;
const STOP: u8 = b'.';
const MARK: u8 = b'(';
const EMPTY_DICT: u8 = b'}';
const EMPTY_LIST: u8 = b']';
const EMPTY_TUPLE: u8 = b')';
const TUPLE: u8 = b't';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';
const SETITEM: u8 = b's';
const SETITEMS: u8 = b'u';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const GLOBAL: u8 = b'c';
const REDUCE: u8 = b'R';
const BUILD: u8 = b'b';
const BINPERSID: u8 = b'Q';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const BINUNICODE: u8 = b'X';

/// CPython's batch size for `APPENDS` / `SETITEMS`.
const BATCH: usize = 1000;

#[derive(Hash, PartialEq, Eq)]
enum MemoKey {
    Global(&'static str, &'static str),
    Str(String),
    Dtype(Dtype),
    /// numpy's `b'b'` placeholder of `_reconstruct`: one object, shared by every array.
    ReconstructPlaceholder,
}

/// Protocol-2 pickler with the memo CPython would build for these objects (strings, globals and
/// numpy dtypes shared; lists, dicts and tuples memoized as they are written).
struct Pickler {
    out: Vec<u8>,
    memo: HashMap<MemoKey, u32>,
    next_memo: u32,
    /// Storages in order of first use: (key, bytes).
    storages: Vec<Vec<u8>>,
}

impl Pickler {
    fn new() -> Pickler {
        Pickler { out: vec![PROTO, 2], memo: HashMap::new(), next_memo: 0, storages: Vec::new() }
    }

    fn put(&mut self) -> u32 {
        let i = self.next_memo;
        self.next_memo += 1;
        if i < 256 {
            self.out.extend([BINPUT, i as u8]);
        } else {
            self.out.push(LONG_BINPUT);
            self.out.extend(i.to_le_bytes());
        }
        i
    }

    fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend([BINGET, i as u8]);
        } else {
            self.out.push(LONG_BINGET);
            self.out.extend(i.to_le_bytes());
        }
    }

    /// Emits a memoized object: a `BINGET` if written before, else `write` and a `BINPUT`.
    fn memoized(&mut self, key: MemoKey, write: impl FnOnce(&mut Pickler)) {
        if let Some(&i) = self.memo.get(&key) {
            self.get(i);
            return;
        }
        write(self);
        let i = self.put();
        self.memo.insert(key, i);
    }

    fn global(&mut self, module: &'static str, name: &'static str) {
        self.memoized(MemoKey::Global(module, name), |p| {
            p.out.push(GLOBAL);
            p.out.extend(module.as_bytes());
            p.out.push(b'\n');
            p.out.extend(name.as_bytes());
            p.out.push(b'\n');
        });
    }

    fn string(&mut self, s: &str) {
        self.memoized(MemoKey::Str(s.to_string()), |p| {
            p.out.push(BINUNICODE);
            p.out.extend((s.len() as u32).to_le_bytes());
            p.out.extend(s.as_bytes());
        });
    }

    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend([BININT1, v as u8]);
        } else if (256..65536).contains(&v) {
            self.out.push(BININT2);
            self.out.extend((v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(BININT);
            self.out.extend((v as i32).to_le_bytes());
        } else {
            // LONG1: minimal little-endian two's complement.
            let mut bytes = v.to_le_bytes().to_vec();
            while bytes.len() > 1 {
                let last = bytes[bytes.len() - 1];
                let prev = bytes[bytes.len() - 2];
                if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                    bytes.pop();
                } else {
                    break;
                }
            }
            self.out.extend([LONG1, bytes.len() as u8]);
            self.out.extend(bytes);
        }
    }

    fn float(&mut self, v: f64) {
        self.out.push(BINFLOAT);
        self.out.extend(v.to_be_bytes());
    }

    fn bool(&mut self, b: bool) {
        self.out.push(if b { NEWTRUE } else { NEWFALSE });
    }

    /// A tuple of already-emitted items (`n` of them on the stack, after `MARK` if `n > 3`).
    fn close_tuple(&mut self, n: usize) {
        match n {
            0 => self.out.push(EMPTY_TUPLE),
            1 => self.out.push(TUPLE1),
            2 => self.out.push(TUPLE2),
            3 => self.out.push(TUPLE3),
            _ => self.out.push(TUPLE),
        }
    }

    fn usize_tuple(&mut self, items: &[usize]) {
        if items.len() > 3 {
            self.out.push(MARK);
        }
        for &v in items {
            self.int(v as i64);
        }
        self.close_tuple(items.len());
        if !items.is_empty() {
            self.put();
        }
    }

    /// Python 3 bytes under protocol 2: `_codecs.encode(<latin-1 text>, 'latin1')`.
    fn bytes(&mut self, data: &[u8]) {
        if data.is_empty() {
            self.global("__builtin__", "bytes");
            self.out.push(EMPTY_TUPLE);
            self.out.push(REDUCE);
            self.put();
            return;
        }
        self.global("_codecs", "encode");
        let text: String = data.iter().map(|&b| b as char).collect();
        // The text is a fresh object each time (never shared through the memo).
        self.out.push(BINUNICODE);
        self.out.extend((text.len() as u32).to_le_bytes());
        self.out.extend(text.as_bytes());
        self.put();
        self.string("latin1");
        self.out.push(TUPLE2);
        self.put();
        self.out.push(REDUCE);
        self.put();
    }

    /// numpy's `b'b'` (the same bytes object for every array, so memoized after its first use).
    fn placeholder(&mut self) {
        if let Some(&i) = self.memo.get(&MemoKey::ReconstructPlaceholder) {
            self.get(i);
            return;
        }
        self.bytes(b"b");
        self.memo.insert(MemoKey::ReconstructPlaceholder, self.next_memo - 1);
    }

    /// `numpy.dtype('f4', False, True)` with its state `(3, '<', None, None, None, -1, -1, 0)`;
    /// the dtype object is memoized right after its `REDUCE`, as CPython does.
    fn np_dtype(&mut self, dtype: Dtype) {
        if let Some(&i) = self.memo.get(&MemoKey::Dtype(dtype)) {
            self.get(i);
            return;
        }
        self.global("numpy", "dtype");
        self.string(dtype.numpy_code());
        self.bool(false);
        self.bool(true);
        self.out.push(TUPLE3);
        self.put();
        self.out.push(REDUCE);
        let i = self.put();
        self.memo.insert(MemoKey::Dtype(dtype), i);
        self.out.push(MARK);
        self.int(3);
        self.string("<");
        self.out.extend([NONE, NONE, NONE]);
        self.int(-1);
        self.int(-1);
        self.int(0);
        self.out.push(TUPLE);
        self.put();
        self.out.push(BUILD);
    }

    fn value(&mut self, v: &PyValue) {
        match v {
            PyValue::None => self.out.push(NONE),
            PyValue::Bool(b) => self.bool(*b),
            PyValue::Int(i) => self.int(*i),
            PyValue::Float(f) => self.float(*f),
            PyValue::Str(s) => self.string(s),
            PyValue::List(items) => {
                self.out.push(EMPTY_LIST);
                self.put();
                for chunk in items.chunks(BATCH) {
                    if chunk.len() > 1 {
                        self.out.push(MARK);
                        for x in chunk {
                            self.value(x);
                        }
                        self.out.push(APPENDS);
                    } else {
                        self.value(&chunk[0]);
                        self.out.push(APPEND);
                    }
                }
            }
            PyValue::Dict(items) => {
                self.out.push(EMPTY_DICT);
                self.put();
                for chunk in items.chunks(BATCH) {
                    if chunk.len() > 1 {
                        self.out.push(MARK);
                        for (k, x) in chunk {
                            self.value(k);
                            self.value(x);
                        }
                        self.out.push(SETITEMS);
                    } else {
                        self.value(&chunk[0].0);
                        self.value(&chunk[0].1);
                        self.out.push(SETITEM);
                    }
                }
            }
            PyValue::Tensor(a) => self.tensor(a),
            PyValue::NdArray(a) => self.ndarray(a),
            PyValue::NpF32(x) => {
                self.global("numpy.core.multiarray", "scalar");
                self.np_dtype(Dtype::F32);
                self.bytes(&x.to_le_bytes());
                self.out.push(TUPLE2);
                self.put();
                self.out.push(REDUCE);
                self.put();
            }
        }
    }

    /// `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` with the
    /// storage as the persistent id `('storage', torch.<T>Storage, 'K', 'cpu', numel)`.
    fn tensor(&mut self, a: &Array) {
        let key = self.storages.len();
        self.storages.push(a.bytes.clone());
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(MARK);
        self.out.push(MARK);
        self.string("storage");
        self.global("torch", a.dtype.storage_class());
        // Storage keys are fresh strings per tensor.
        self.string(&key.to_string());
        self.string("cpu");
        self.int(a.numel() as i64);
        self.out.push(TUPLE);
        self.put();
        self.out.push(BINPERSID);
        self.int(0);
        self.usize_tuple(&a.shape);
        self.usize_tuple(&a.strides());
        self.bool(false);
        self.global("collections", "OrderedDict");
        self.out.push(EMPTY_TUPLE);
        self.out.push(REDUCE);
        self.put();
        self.out.push(TUPLE);
        self.put();
        self.out.push(REDUCE);
        self.put();
    }

    /// numpy 1.x's reduction of an ndarray: `_reconstruct(ndarray, (0,), b'b')` then
    /// `__setstate__((1, shape, dtype, False, raw bytes))`.
    fn ndarray(&mut self, a: &Array) {
        self.global("numpy.core.multiarray", "_reconstruct");
        self.global("numpy", "ndarray");
        self.int(0);
        self.out.push(TUPLE1);
        self.put();
        self.placeholder();
        self.out.push(TUPLE3);
        self.put();
        self.out.push(REDUCE);
        self.put();
        self.out.push(MARK);
        self.int(1);
        self.usize_tuple(&a.shape);
        self.np_dtype(a.dtype);
        self.bool(false);
        self.bytes(&a.bytes);
        self.out.push(TUPLE);
        self.put();
        self.out.push(BUILD);
    }
}

/// The pickle bytes of `value` (protocol 2) and the tensor storages it refers to, in key order.
pub fn pickle(value: &PyValue) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut p = Pickler::new();
    p.value(value);
    p.out.push(STOP);
    (p.out, p.storages)
}

/// The record prefix torch uses: the file name without its extension (`1BC8.pt` → `1BC8`).
pub fn archive_name(path: &Path) -> String {
    let base = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    match base.rfind('.') {
        Some(i) if i > 0 => base[..i].to_string(),
        _ if base.is_empty() => "archive".to_string(),
        _ => base,
    }
}

/// The bytes of a `torch.save(value, <file named archive.pt>)` archive.
pub fn torch_save_bytes(value: &PyValue, archive: &str) -> std::io::Result<Vec<u8>> {
    let (pkl, storages) = pickle(value);
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut cursor);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .with_alignment(64)
            .last_modified_time(zip::DateTime::default());
        let mut record = |name: String, data: &[u8]| -> std::io::Result<()> {
            zip.start_file(name, opts).map_err(std::io::Error::other)?;
            zip.write_all(data)
        };
        record(format!("{archive}/data.pkl"), &pkl)?;
        record(format!("{archive}/.format_version"), b"1")?;
        record(format!("{archive}/.storage_alignment"), b"64")?;
        record(format!("{archive}/byteorder"), b"little")?;
        for (k, s) in storages.iter().enumerate() {
            record(format!("{archive}/data/{k}"), s)?;
        }
        record(format!("{archive}/version"), b"3\n")?;
        record(format!("{archive}/.data/serialization_id"), serialization_id(&pkl, &storages).as_bytes())?;
        zip.finish().map_err(std::io::Error::other)?;
    }
    Ok(cursor.into_inner())
}

/// torch writes 40 decimal digits identifying the save; a content hash keeps output
/// reproducible.
fn serialization_id(pkl: &[u8], storages: &[Vec<u8>]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    eat(pkl);
    for s in storages {
        eat(s);
    }
    let a = h;
    let b = h.rotate_left(29).wrapping_mul(0x9e3779b97f4a7c15);
    format!("{:020}{:020}", a % 10u64.pow(19) * 10 + 1, b % 10u64.pow(19) * 10 + 3)
}

/// Writes `value` as a torch archive at `path`, atomically (temporary file + rename).
pub fn torch_save(value: &PyValue, path: &Path) -> std::io::Result<()> {
    let bytes = torch_save_bytes(value, &archive_name(path))?;
    crate::structure::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::pickle::{unpickle, Value};

    #[test]
    fn tensors_read_back_with_the_checkpoint_reader() {
        let v = str_dict(vec![
            ("a", PyValue::Tensor(Array::i64(&[2, 3], &[1, 2, 3, 4, 5, 6]))),
            ("b", PyValue::Tensor(Array::f32(&[3], &[0.5, 1.5, -2.0]))),
            ("seed", PyValue::Int(111)),
            ("t", PyValue::Float(0.1)),
            ("big", PyValue::Int(-5_000_000_000)),
        ]);
        let (pkl, storages) = pickle(&v);
        assert_eq!(storages.len(), 2);
        assert_eq!(storages[0].len(), 48);
        let Value::Dict(d) = unpickle(&pkl).unwrap() else { panic!("not a dict") };
        let d = d.borrow();
        let Value::Tensor(t) = &d[0].1 else { panic!() };
        assert_eq!(t.size, vec![2, 3]);
        assert_eq!(t.stride, vec![3, 1]);
        assert_eq!(t.storage.key, "0");
        assert_eq!(t.storage.numel, 6);
        let Value::Tensor(t) = &d[1].1 else { panic!() };
        assert_eq!(t.storage.dtype, crate::checkpoint::pickle::StorageDtype::F32);
        assert!(matches!(d[2].1, Value::Int(111)));
        assert!(matches!(d[3].1, Value::Float(x) if x == 0.1));
        assert!(matches!(d[4].1, Value::Int(-5_000_000_000)));
    }

    #[test]
    fn archive_layout() {
        let v = str_dict(vec![("x", PyValue::Tensor(Array::i32(&[2], &[7, 8])))]);
        let bytes = torch_save_bytes(&v, "1BC8").unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = (0..zip.len()).map(|i| zip.by_index(i).unwrap().name().to_string()).collect();
        assert_eq!(
            names,
            [
                "1BC8/data.pkl",
                "1BC8/.format_version",
                "1BC8/.storage_alignment",
                "1BC8/byteorder",
                "1BC8/data/0",
                "1BC8/version",
                "1BC8/.data/serialization_id"
            ]
        );
        for i in 0..zip.len() {
            let e = zip.by_index(i).unwrap();
            assert_eq!(e.data_start() % 64, 0, "{} is not 64-byte aligned", e.name());
        }
        assert_eq!(archive_name(Path::new("out/stats/1BC8.pt")), "1BC8");
        assert_eq!(archive_name(Path::new("x/a.b.pt")), "a.b");
    }

    #[test]
    fn large_lists_are_batched_like_cpython() {
        let v = PyValue::List((0..2001).map(PyValue::Int).collect());
        let (pkl, _) = pickle(&v);
        assert!(pkl.iter().filter(|&&b| b == APPENDS).count() >= 2);
        let Value::List(l) = unpickle(&pkl).unwrap() else { panic!() };
        assert_eq!(l.borrow().len(), 2001);
        assert!(matches!(l.borrow()[2000], Value::Int(2000)));
    }
}
