//! A minimal, safe pickle virtual machine: enough of protocols 0–5 to read the `data.pkl` that
//! `torch.save` writes, without executing anything.
//!
//! Globals are never imported. The few callables a checkpoint needs are interpreted
//! (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`,
//! …); every other global becomes an opaque value, so unknown objects inside values mpnn ignores
//! (optimizer state, training metadata) load without error.

use std::cell::RefCell;
use std::rc::Rc;

/// Element type of a torch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDtype {
    F32,
    F16,
    BF16,
    F64,
    /// Any other storage type (integers, bools, …); carries the torch class name.
    Other(&'static str),
}

impl StorageDtype {
    fn from_class(name: &str) -> StorageDtype {
        match name {
            "FloatStorage" => StorageDtype::F32,
            "HalfStorage" => StorageDtype::F16,
            "BFloat16Storage" => StorageDtype::BF16,
            "DoubleStorage" => StorageDtype::F64,
            "LongStorage" => StorageDtype::Other("LongStorage"),
            "IntStorage" => StorageDtype::Other("IntStorage"),
            "ShortStorage" => StorageDtype::Other("ShortStorage"),
            "CharStorage" => StorageDtype::Other("CharStorage"),
            "ByteStorage" => StorageDtype::Other("ByteStorage"),
            "BoolStorage" => StorageDtype::Other("BoolStorage"),
            _ => StorageDtype::Other("unknown storage type"),
        }
    }

    /// Bytes per element, where known.
    pub fn size(&self) -> Option<usize> {
        match self {
            StorageDtype::F32 => Some(4),
            StorageDtype::F16 | StorageDtype::BF16 => Some(2),
            StorageDtype::F64 => Some(8),
            StorageDtype::Other(_) => None,
        }
    }
}

/// A reference to a storage record `<prefix>/data/<key>` of the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: StorageDtype,
    /// Number of elements of the storage, as recorded in the persistent id.
    pub numel: usize,
}

/// A tensor as described by `_rebuild_tensor_v2`: a strided view into a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A value on the pickle stack.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64 (kept as its little-endian two's-complement bytes).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    /// dict / OrderedDict, in insertion order.
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Set(Rc<RefCell<Vec<Value>>>),
    /// A global reference (`module.name`) that was not called (yet).
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
    /// An object mpnn does not interpret (the result of calling an unknown global, …).
    Opaque(Rc<String>),
    /// A numpy dtype, array or scalar (as numpy 1.x and 2.x pickle them); read so that saved
    /// outputs holding numpy values (LigandMPNN's `score.py` files) can be inspected.
    Numpy(Rc<RefCell<Numpy>>),
}

/// A numpy object read from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Numpy {
    /// `numpy.dtype(code, ...)`: the type code (`f4`, `i8`, …) and, once built, its byte order.
    Dtype { code: String, byteorder: Option<String> },
    /// `_reconstruct(ndarray, ...)` before its state is set.
    EmptyArray,
    /// An array: dtype code, shape, Fortran order, raw bytes.
    Array { code: String, byteorder: String, shape: Vec<usize>, fortran: bool, data: Vec<u8> },
    /// `numpy.core.multiarray.scalar(dtype, bytes)`.
    Scalar { code: String, data: Vec<u8> },
}

impl Value {
    /// A short human description, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => format!("bool {b}"),
            Value::Int(i) => format!("int {i}"),
            Value::BigInt(_) => "big int".into(),
            Value::Float(f) => format!("float {f}"),
            Value::Str(s) => format!("str {s:?}"),
            Value::Bytes(b) => format!("bytes (len {})", b.len()),
            Value::Tuple(t) => format!("tuple (len {})", t.len()),
            Value::List(l) => format!("list (len {})", l.borrow().len()),
            Value::Dict(d) => format!("dict (len {})", d.borrow().len()),
            Value::Set(_) => "set".into(),
            Value::Global(g) => format!("global {}.{}", g.0, g.1),
            Value::Storage(_) => "storage".into(),
            Value::Tensor(_) => "tensor".into(),
            Value::Opaque(s) => format!("object {s}"),
            Value::Numpy(n) => match &*n.borrow() {
                Numpy::Dtype { code, .. } => format!("numpy dtype {code}"),
                Numpy::EmptyArray => "numpy array (no state)".into(),
                Numpy::Array { code, shape, .. } => format!("numpy array {code} {shape:?}"),
                Numpy::Scalar { code, .. } => format!("numpy scalar {code}"),
            },
        }
    }

    /// The value as a non-negative integer, if it is one.
    pub fn as_usize(&self) -> Option<usize> {
        match self {
            Value::Int(i) if *i >= 0 => usize::try_from(*i).ok(),
            Value::Bool(b) => Some(*b as usize),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn seq(&self) -> Option<Vec<Value>> {
        match self {
            Value::Tuple(t) => Some(t.as_ref().clone()),
            Value::List(l) => Some(l.borrow().clone()),
            _ => None,
        }
    }
}

/// A pickle decoding failure (message only; the caller adds the file name).
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError(pub String);

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError(msg.into()))
}

/// Stack items: values and MARK sentinels.
enum Item {
    Mark,
    Val(Value),
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => err(format!(
                "truncated pickle: needed {n} bytes at offset {}, only {} left",
                self.pos,
                self.data.len() - self.pos
            )),
        }
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn len_u64(&mut self) -> Result<usize, PickleError> {
        let n = self.u64()?;
        usize::try_from(n).or_else(|_| err("length does not fit in memory"))
    }
    /// A text line (protocol 0 opcodes), without the trailing newline.
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return err("truncated pickle: unterminated text line");
        };
        self.pos += nl + 1;
        std::str::from_utf8(&rest[..nl]).or_else(|_| err("non-UTF-8 text in pickle"))
    }
}

fn utf8(b: &[u8]) -> Result<String, PickleError> {
    String::from_utf8(b.to_vec()).or_else(|_| err("invalid UTF-8 in pickled string"))
}

/// Decode a little-endian two's-complement integer (LONG1 / LONG4).
fn decode_long(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    if b.len() <= 8 {
        let neg = b[b.len() - 1] & 0x80 != 0;
        let mut a = if neg { [0xffu8; 8] } else { [0u8; 8] };
        a[..b.len()].copy_from_slice(b);
        return Value::Int(i64::from_le_bytes(a));
    }
    Value::BigInt(b.to_vec())
}

/// Run the pickle program in `data` and return the value it builds.
///
/// Never panics on malformed input; every failure is a [`PickleError`].
pub fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    let mut r = Reader { data, pos: 0 };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: std::collections::HashMap<u64, Value> = std::collections::HashMap::new();

    fn pop(stack: &mut Vec<Item>) -> Result<Value, PickleError> {
        match stack.pop() {
            Some(Item::Val(v)) => Ok(v),
            Some(Item::Mark) => err("malformed pickle: unexpected MARK on the stack"),
            None => err("malformed pickle: stack underflow"),
        }
    }
    fn top(stack: &[Item]) -> Result<&Value, PickleError> {
        match stack.last() {
            Some(Item::Val(v)) => Ok(v),
            _ => err("malformed pickle: no value on top of the stack"),
        }
    }
    fn pop_mark(stack: &mut Vec<Item>) -> Result<Vec<Value>, PickleError> {
        let Some(m) = stack.iter().rposition(|i| matches!(i, Item::Mark)) else {
            return err("malformed pickle: MARK not found");
        };
        let items = stack.split_off(m + 1);
        stack.pop();
        Ok(items
            .into_iter()
            .map(|i| match i {
                Item::Val(v) => v,
                Item::Mark => Value::None,
            })
            .collect())
    }
    fn push(stack: &mut Vec<Item>, v: Value) {
        stack.push(Item::Val(v));
    }
    fn set_items(target: &Value, kv: Vec<Value>) -> Result<(), PickleError> {
        if !kv.len().is_multiple_of(2) {
            return err("malformed pickle: odd number of items for SETITEMS");
        }
        match target {
            Value::Dict(d) => {
                let mut d = d.borrow_mut();
                let mut it = kv.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    dict_insert(&mut d, k, v);
                }
                Ok(())
            }
            // Item assignment on an object mpnn does not model: ignore.
            Value::Opaque(_) => Ok(()),
            other => err(format!("malformed pickle: SETITEM on {}", other.describe())),
        }
    }
    fn append_items(target: &Value, items: Vec<Value>) -> Result<(), PickleError> {
        match target {
            Value::List(l) | Value::Set(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            Value::Opaque(_) => Ok(()),
            other => err(format!("malformed pickle: APPEND on {}", other.describe())),
        }
    }

    loop {
        let op = r.u8()?;
        match op {
            0x80 => {
                // PROTO
                let p = r.u8()?;
                if p > 5 {
                    return err(format!("unsupported pickle protocol {p}"));
                }
            }
            0x95 => {
                // FRAME
                r.u64()?;
            }
            b'.' => {
                // STOP
                return pop(&mut stack);
            }
            b'(' => stack.push(Item::Mark),
            b'0' => {
                // POP
                if stack.pop().is_none() {
                    return err("malformed pickle: POP on empty stack");
                }
            }
            b'1' => {
                // POP_MARK
                pop_mark(&mut stack)?;
            }
            b'2' => {
                // DUP
                let v = top(&stack)?.clone();
                push(&mut stack, v);
            }
            b'N' => push(&mut stack, Value::None),
            0x88 => push(&mut stack, Value::Bool(true)),
            0x89 => push(&mut stack, Value::Bool(false)),
            b'J' => {
                let v = r.u32()? as i32;
                push(&mut stack, Value::Int(v as i64));
            }
            b'K' => {
                let v = r.u8()?;
                push(&mut stack, Value::Int(v as i64));
            }
            b'M' => {
                let v = r.u16()?;
                push(&mut stack, Value::Int(v as i64));
            }
            0x8a => {
                // LONG1
                let n = r.u8()? as usize;
                let b = r.take(n)?;
                push(&mut stack, decode_long(b));
            }
            0x8b => {
                // LONG4
                let n = r.u32()? as usize;
                let b = r.take(n)?;
                push(&mut stack, decode_long(b));
            }
            b'I' => {
                // INT (text)
                let l = r.line()?.trim();
                let v = match l {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    _ => Value::Int(l.parse().or_else(|_| err(format!("bad INT {l:?}")))?),
                };
                push(&mut stack, v);
            }
            b'L' => {
                // LONG (text)
                let l = r.line()?.trim().trim_end_matches('L');
                let v = l.parse().map(Value::Int).unwrap_or(Value::BigInt(Vec::new()));
                push(&mut stack, v);
            }
            b'G' => {
                let b = r.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                push(&mut stack, Value::Float(f64::from_be_bytes(a)));
            }
            b'F' => {
                let l = r.line()?.trim();
                let v = l.parse().or_else(|_| err(format!("bad FLOAT {l:?}")))?;
                push(&mut stack, Value::Float(v));
            }
            b'X' => {
                let n = r.u32()? as usize;
                let s = utf8(r.take(n)?)?;
                push(&mut stack, Value::Str(s));
            }
            0x8c => {
                // SHORT_BINUNICODE
                let n = r.u8()? as usize;
                let s = utf8(r.take(n)?)?;
                push(&mut stack, Value::Str(s));
            }
            0x8d => {
                // BINUNICODE8
                let n = r.len_u64()?;
                let s = utf8(r.take(n)?)?;
                push(&mut stack, Value::Str(s));
            }
            b'V' => {
                // UNICODE (raw-unicode-escape; plain ASCII in practice)
                let s = r.line()?.to_string();
                push(&mut stack, Value::Str(s));
            }
            b'T' => {
                // BINSTRING
                let n = r.u32()? as usize;
                let b = r.take(n)?;
                push(&mut stack, Value::Str(String::from_utf8_lossy(b).into_owned()));
            }
            b'U' => {
                // SHORT_BINSTRING
                let n = r.u8()? as usize;
                let b = r.take(n)?;
                push(&mut stack, Value::Str(String::from_utf8_lossy(b).into_owned()));
            }
            b'S' => {
                // STRING (quoted text)
                let l = r.line()?.trim();
                let s = l.trim_matches(|c| c == '\'' || c == '"').to_string();
                push(&mut stack, Value::Str(s));
            }
            b'B' => {
                let n = r.u32()? as usize;
                let b = r.take(n)?.to_vec();
                push(&mut stack, Value::Bytes(b));
            }
            b'C' => {
                let n = r.u8()? as usize;
                let b = r.take(n)?.to_vec();
                push(&mut stack, Value::Bytes(b));
            }
            0x8e => {
                let n = r.len_u64()?;
                let b = r.take(n)?.to_vec();
                push(&mut stack, Value::Bytes(b));
            }
            0x96 => {
                // BYTEARRAY8
                let n = r.len_u64()?;
                let b = r.take(n)?.to_vec();
                push(&mut stack, Value::Bytes(b));
            }
            b'}' => push(&mut stack, Value::Dict(Rc::new(RefCell::new(Vec::new())))),
            b']' => push(&mut stack, Value::List(Rc::new(RefCell::new(Vec::new())))),
            b')' => push(&mut stack, Value::Tuple(Rc::new(Vec::new()))),
            0x8f => push(&mut stack, Value::Set(Rc::new(RefCell::new(Vec::new())))),
            b't' => {
                let items = pop_mark(&mut stack)?;
                push(&mut stack, Value::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop(&mut stack)?);
                }
                items.reverse();
                push(&mut stack, Value::Tuple(Rc::new(items)));
            }
            b'l' => {
                let items = pop_mark(&mut stack)?;
                push(&mut stack, Value::List(Rc::new(RefCell::new(items))));
            }
            0x91 => {
                // FROZENSET
                let items = pop_mark(&mut stack)?;
                push(&mut stack, Value::Set(Rc::new(RefCell::new(items))));
            }
            b'd' => {
                let kv = pop_mark(&mut stack)?;
                let d = Value::Dict(Rc::new(RefCell::new(Vec::new())));
                set_items(&d, kv)?;
                push(&mut stack, d);
            }
            b'a' => {
                let v = pop(&mut stack)?;
                append_items(top(&stack)?, vec![v])?;
            }
            b'e' | 0x90 => {
                // APPENDS / ADDITEMS
                let items = pop_mark(&mut stack)?;
                append_items(top(&stack)?, items)?;
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                set_items(top(&stack)?, vec![k, v])?;
            }
            b'u' => {
                let kv = pop_mark(&mut stack)?;
                set_items(top(&stack)?, kv)?;
            }
            b'q' => {
                let i = r.u8()? as u64;
                memo.insert(i, top(&stack)?.clone());
            }
            b'r' => {
                let i = r.u32()? as u64;
                memo.insert(i, top(&stack)?.clone());
            }
            b'p' => {
                let l = r.line()?.trim();
                let i = l.parse().or_else(|_| err(format!("bad PUT {l:?}")))?;
                memo.insert(i, top(&stack)?.clone());
            }
            0x94 => {
                // MEMOIZE
                let i = memo.len() as u64;
                memo.insert(i, top(&stack)?.clone());
            }
            b'h' | b'j' | b'g' => {
                let i = match op {
                    b'h' => r.u8()? as u64,
                    b'j' => r.u32()? as u64,
                    _ => {
                        let l = r.line()?.trim();
                        l.parse().or_else(|_| err(format!("bad GET {l:?}")))?
                    }
                };
                let Some(v) = memo.get(&i) else {
                    return err(format!("malformed pickle: memo entry {i} read before it was written"));
                };
                push(&mut stack, v.clone());
            }
            b'c' => {
                let module = r.line()?.to_string();
                let name = r.line()?.to_string();
                push(&mut stack, Value::Global(Rc::new((module, name))));
            }
            0x93 => {
                // STACK_GLOBAL
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => push(&mut stack, Value::Global(Rc::new((m, n)))),
                    _ => return err("malformed pickle: STACK_GLOBAL needs two strings"),
                }
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let func = pop(&mut stack)?;
                let v = call(&func, &args)?;
                push(&mut stack, v);
            }
            0x81 => {
                // NEWOBJ
                let args = pop(&mut stack)?;
                let cls = pop(&mut stack)?;
                let v = call(&cls, &args)?;
                push(&mut stack, v);
            }
            0x92 => {
                // NEWOBJ_EX
                let _kwargs = pop(&mut stack)?;
                let args = pop(&mut stack)?;
                let cls = pop(&mut stack)?;
                let v = call(&cls, &args)?;
                push(&mut stack, v);
            }
            b'b' => {
                // BUILD: numpy objects take their state; other state (e.g. OrderedDict's
                // `_metadata`) is not needed and is dropped.
                let state = pop(&mut stack)?;
                if let Value::Numpy(n) = top(&stack)? {
                    build_numpy(&mut n.borrow_mut(), &state)?;
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                push(&mut stack, persistent_load(&pid)?);
            }
            b'P' => {
                let l = r.line()?.to_string();
                push(&mut stack, Value::Opaque(Rc::new(format!("persistent id {l}"))));
            }
            0x97 => {
                // READONLY_BUFFER: no-op
            }
            0x98 => return err("pickle uses out-of-band buffers (NEXT_BUFFER), which mpnn cannot read"),
            other => return err(format!("unsupported pickle opcode 0x{other:02x} at offset {}", r.pos - 1)),
        }
    }
}

/// Applies a numpy object's pickled state (`__setstate__`).
fn build_numpy(n: &mut Numpy, state: &Value) -> Result<(), PickleError> {
    let items = state.seq().unwrap_or_default();
    match n {
        Numpy::Dtype { byteorder, .. } => {
            if let Some(Value::Str(b)) = items.get(1) {
                *byteorder = Some(b.clone());
            }
        }
        Numpy::EmptyArray => {
            // (version, shape, dtype, is_fortran, data)
            let [_, shape, dtype, fortran, data] = items.as_slice() else {
                return err(format!("numpy array state has {} items, not 5", items.len()));
            };
            let shape = usize_seq(shape, "shape")?;
            let (code, byteorder) = match dtype {
                Value::Numpy(d) => match &*d.borrow() {
                    Numpy::Dtype { code, byteorder } => (code.clone(), byteorder.clone().unwrap_or_default()),
                    _ => return err("numpy array state: the dtype is not a dtype"),
                },
                other => return err(format!("numpy array state: dtype is {}", other.describe())),
            };
            let data = match data {
                Value::Bytes(b) => b.clone(),
                Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
                other => return err(format!("numpy array state: data is {}", other.describe())),
            };
            let fortran = matches!(fortran, Value::Bool(true));
            *n = Numpy::Array { code, byteorder, shape, fortran, data };
        }
        _ => {}
    }
    Ok(())
}

/// Insert into an ordered dict, replacing an equal key (string / int keys).
fn dict_insert(d: &mut Vec<(Value, Value)>, k: Value, v: Value) {
    let same = |a: &Value| match (a, &k) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        _ => false,
    };
    if let Some(slot) = d.iter_mut().find(|(a, _)| same(a)) {
        slot.1 = v;
    } else {
        d.push((k, v));
    }
}

/// Resolve a persistent id: torch's `('storage', <StorageClass>, key, location, numel)`.
fn persistent_load(pid: &Value) -> Result<Value, PickleError> {
    let Some(items) = pid.seq() else {
        return Ok(Value::Opaque(Rc::new(format!("persistent id {}", pid.describe()))));
    };
    match items.as_slice() {
        [Value::Str(kind), class, Value::Str(key), _location, numel] if kind == "storage" => {
            let dtype = match class {
                Value::Global(g) => StorageDtype::from_class(&g.1),
                _ => StorageDtype::Other("unknown storage type"),
            };
            let Some(numel) = numel.as_usize() else {
                return err("malformed storage persistent id: numel is not an integer");
            };
            Ok(Value::Storage(Rc::new(StorageRef { key: key.clone(), dtype, numel })))
        }
        _ => Ok(Value::Opaque(Rc::new("persistent id".into()))),
    }
}

fn usize_seq(v: &Value, what: &str) -> Result<Vec<usize>, PickleError> {
    let Some(items) = v.seq() else {
        return err(format!("tensor {what} is not a tuple ({})", v.describe()));
    };
    items
        .iter()
        .map(|x| x.as_usize().ok_or_else(|| PickleError(format!("tensor {what} holds a non-integer"))))
        .collect()
}

/// Interpret a call `func(*args)` (REDUCE / NEWOBJ) for the few callables torch checkpoints use.
fn call(func: &Value, args: &Value) -> Result<Value, PickleError> {
    let Value::Global(g) = func else {
        // Calling something that is not a plain global (e.g. the result of getattr).
        return Ok(Value::Opaque(Rc::new(format!("call of {}", func.describe()))));
    };
    let (module, name) = (g.0.as_str(), g.1.as_str());
    let args_v = args.seq().unwrap_or_default();
    match (module, name) {
        ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
            let d = Value::Dict(Rc::new(RefCell::new(Vec::new())));
            // OrderedDict([(k, v), ...]) form.
            if let Some(Value::List(pairs)) = args_v.first() {
                if let Value::Dict(inner) = &d {
                    for p in pairs.borrow().iter() {
                        if let Some([k, v]) = p.seq().as_deref() {
                            dict_insert(&mut inner.borrow_mut(), k.clone(), v.clone());
                        }
                    }
                }
            }
            Ok(d)
        }
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            if args_v.len() < 4 {
                return err(format!("{name} called with {} arguments", args_v.len()));
            }
            let storage = match &args_v[0] {
                Value::Storage(s) => s.as_ref().clone(),
                other => return err(format!("{name}: first argument is not a storage ({})", other.describe())),
            };
            let offset =
                args_v[1].as_usize().ok_or_else(|| PickleError(format!("{name}: storage offset is not an integer")))?;
            let size = usize_seq(&args_v[2], "size")?;
            let stride = usize_seq(&args_v[3], "stride")?;
            if size.len() != stride.len() {
                return err(format!("{name}: size has {} dims but stride has {}", size.len(), stride.len()));
            }
            Ok(Value::Tensor(Rc::new(TensorRef { storage, offset, size, stride })))
        }
        ("_codecs", "encode") => match args_v.as_slice() {
            // Protocol-2 bytes: the text's code points are the bytes.
            [Value::Str(text), Value::Str(enc)] if enc == "latin1" || enc == "latin-1" => {
                if text.chars().any(|c| c as u32 > 255) {
                    return err("_codecs.encode: text is not latin-1");
                }
                Ok(Value::Bytes(text.chars().map(|c| c as u32 as u8).collect()))
            }
            _ => Ok(Value::Opaque(Rc::new("_codecs.encode(...)".into()))),
        },
        ("numpy", "dtype") => match args_v.first() {
            Some(Value::Str(code)) => {
                Ok(Value::Numpy(Rc::new(RefCell::new(Numpy::Dtype { code: code.clone(), byteorder: None }))))
            }
            _ => Ok(Value::Opaque(Rc::new("numpy.dtype(...)".into()))),
        },
        ("numpy.core.multiarray", "_reconstruct") | ("numpy._core.multiarray", "_reconstruct") => {
            Ok(Value::Numpy(Rc::new(RefCell::new(Numpy::EmptyArray))))
        }
        ("numpy.core.multiarray", "scalar") | ("numpy._core.multiarray", "scalar") => match args_v.as_slice() {
            [Value::Numpy(d), data] => {
                let code = match &*d.borrow() {
                    Numpy::Dtype { code, .. } => code.clone(),
                    _ => return err("numpy scalar: the dtype is not a dtype"),
                };
                let data = match data {
                    Value::Bytes(b) => b.clone(),
                    Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
                    other => return err(format!("numpy scalar: data is {}", other.describe())),
                };
                Ok(Value::Numpy(Rc::new(RefCell::new(Numpy::Scalar { code, data }))))
            }
            _ => Ok(Value::Opaque(Rc::new("numpy scalar(...)".into()))),
        },
        ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
            match args_v.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                _ => Ok(Value::Opaque(Rc::new(format!("{module}.{name}(...)")))),
            }
        }
        _ => Ok(Value::Opaque(Rc::new(format!("{module}.{name}(...)")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_values() {
        // {'a': 1, 'b': [1.5, None, True], 'c': (-2, 300, 70000)}
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend([0x8c, 1, b'a', b'K', 1]);
        p.extend([0x8c, 1, b'b', b']', b'(', b'G']);
        p.extend(1.5f64.to_be_bytes());
        p.extend([b'N', 0x88, b'e']);
        p.extend([0x8c, 1, b'c', b'J']);
        p.extend((-2i32).to_le_bytes());
        p.extend([b'M', 0x2c, 0x01, b'J']);
        p.extend(70000i32.to_le_bytes());
        p.extend([0x87, b'u', b'.']);
        let v = unpickle(&p).unwrap();
        let Value::Dict(d) = v else { panic!() };
        let d = d.borrow();
        assert_eq!(d.len(), 3);
        assert!(matches!(d[0].1, Value::Int(1)));
        let Value::List(l) = &d[1].1 else { panic!() };
        assert!(matches!(l.borrow()[0], Value::Float(x) if x == 1.5));
        let Value::Tuple(t) = &d[2].1 else { panic!() };
        assert!(matches!(t[0], Value::Int(-2)));
        assert!(matches!(t[1], Value::Int(300)));
        assert!(matches!(t[2], Value::Int(70000)));
    }

    #[test]
    fn long1_and_memo() {
        // LONG1 of -1 (0xff) and a big number, memoized and fetched again.
        let p = [0x80, 2, 0x8a, 1, 0xff, 0x94, b'h', 0, 0x86, b'.'];
        let v = unpickle(&p).unwrap();
        let Value::Tuple(t) = v else { panic!() };
        assert!(matches!(t[0], Value::Int(-1)));
        assert!(matches!(t[1], Value::Int(-1)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            &[0x80, 2][..],
            &[0x80, 2, b'h', 7, b'.'][..],
            &[b'u', b'.'][..],
            &[b'X', 0xff, 0xff, 0xff, 0x7f][..],
            &[0xfe][..],
            &[b'K', 1, b'K', 2, b's', b'.'][..],
        ] {
            assert!(unpickle(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_globals_are_opaque() {
        let mut p = vec![0x80, 2, b'c'];
        p.extend(b"torch.optim.adam\nAdam\n");
        p.extend([b')', b'R', b'}', b'b', b'.']);
        let v = unpickle(&p).unwrap();
        assert!(matches!(v, Value::Opaque(_)));
    }
}
