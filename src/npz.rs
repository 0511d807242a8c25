//! Reading and writing NumPy `.npy` arrays inside `.npz` archives (what `np.savez` writes and
//! `np.load` reads). Only little-endian numeric arrays in C order are supported, which is all
//! ProteinMPNN's fixtures and outputs use.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// A decoded array: shape and values (integers and booleans are widened to `f64`/`i64` views).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: ArrayData,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    /// Unicode strings (`<U..`), as `np.savez` writes Python strings.
    Str(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a valid npz archive: {message}")]
    Zip { path: String, message: String },
    #[error("{path}: array `{name}` missing (the file has: {available})")]
    Missing { path: String, name: String, available: String },
    #[error("array `{name}`: {message}")]
    Format { name: String, message: String },
}

impl Array {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values as f32 (integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            ArrayData::F32(v) => v.clone(),
            ArrayData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            ArrayData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            ArrayData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            ArrayData::Str(_) => Vec::new(),
        }
    }
    /// Values as i64 (floats truncated).
    pub fn to_i64(&self) -> Vec<i64> {
        match &self.data {
            ArrayData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            ArrayData::F64(v) => v.iter().map(|&x| x as i64).collect(),
            ArrayData::I64(v) => v.clone(),
            ArrayData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            ArrayData::Str(_) => Vec::new(),
        }
    }
}

/// All arrays of an `.npz` file, by name (without the `.npy` suffix).
#[derive(Debug, Clone, Default)]
pub struct Npz {
    pub path: String,
    pub arrays: BTreeMap<String, Array>,
}

impl Npz {
    pub fn read(path: impl AsRef<Path>) -> Result<Npz, NpzError> {
        let path_s = path.as_ref().display().to_string();
        let file =
            std::fs::File::open(path.as_ref()).map_err(|source| NpzError::Io { path: path_s.clone(), source })?;
        Self::from_reader(file, &path_s)
    }

    pub fn from_reader<R: Read + Seek>(reader: R, path: &str) -> Result<Npz, NpzError> {
        let zerr = |e: zip::result::ZipError| NpzError::Zip { path: path.to_string(), message: e.to_string() };
        let mut zip = zip::ZipArchive::new(reader).map_err(zerr)?;
        let mut arrays = BTreeMap::new();
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(zerr)?;
            let name = entry.name().trim_end_matches(".npy").to_string();
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(|source| NpzError::Io { path: path.to_string(), source })?;
            let array = parse_npy(&name, &bytes)?;
            arrays.insert(name, array);
        }
        Ok(Npz { path: path.to_string(), arrays })
    }

    pub fn get(&self, name: &str) -> Result<&Array, NpzError> {
        self.arrays.get(name).ok_or_else(|| NpzError::Missing {
            path: self.path.clone(),
            name: name.to_string(),
            available: self.arrays.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
    pub fn has(&self, name: &str) -> bool {
        self.arrays.contains_key(name)
    }
    pub fn f32(&self, name: &str) -> Result<Vec<f32>, NpzError> {
        Ok(self.get(name)?.to_f32())
    }
    pub fn i64(&self, name: &str) -> Result<Vec<i64>, NpzError> {
        Ok(self.get(name)?.to_i64())
    }
    pub fn shape(&self, name: &str) -> Result<Vec<usize>, NpzError> {
        Ok(self.get(name)?.shape.clone())
    }
}

/// Parses one `.npy` payload.
pub fn parse_npy(name: &str, bytes: &[u8]) -> Result<Array, NpzError> {
    let ferr = |m: &str| NpzError::Format { name: name.to_string(), message: m.to_string() };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(ferr("not an .npy payload (bad magic)"));
    }
    let major = bytes[6];
    let (hlen, start) = if major == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        if bytes.len() < 12 {
            return Err(ferr("truncated header"));
        }
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = bytes.get(start..start + hlen).ok_or_else(|| ferr("truncated header"))?;
    let header = String::from_utf8_lossy(header);
    let descr = header_value(&header, "descr").ok_or_else(|| ferr("no descr in header"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_string();
    let fortran = header_value(&header, "fortran_order").map(|v| v.starts_with("True")).unwrap_or(false);
    if fortran {
        return Err(ferr("Fortran-ordered arrays are not supported"));
    }
    let shape_s = header_value(&header, "shape").ok_or_else(|| ferr("no shape in header"))?;
    let shape: Vec<usize> = shape_s
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| ferr("bad shape")))
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + hlen..];
    let need = |size: usize| -> Result<(), NpzError> {
        if body.len() < n * size {
            Err(ferr("truncated data"))
        } else {
            Ok(())
        }
    };
    let data = match descr.as_str() {
        "<f4" => {
            need(4)?;
            ArrayData::F32(body[..n * 4].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        }
        "<f8" => {
            need(8)?;
            ArrayData::F64(body[..n * 8].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        "<i8" => {
            need(8)?;
            ArrayData::I64(body[..n * 8].chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        "<i4" => {
            need(4)?;
            ArrayData::I32(body[..n * 4].chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect())
        }
        "<i2" => {
            need(2)?;
            ArrayData::I32(body[..n * 2].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as i32).collect())
        }
        "|b1" | "|u1" => {
            need(1)?;
            ArrayData::I64(body[..n].iter().map(|&b| b as i64).collect())
        }
        d if d.starts_with("<U") => {
            let width: usize = d[2..].parse().map_err(|_| ferr("bad string width"))?;
            need(4 * width)?;
            ArrayData::Str(
                body[..n * 4 * width]
                    .chunks_exact(4 * width)
                    .map(|c| {
                        c.chunks_exact(4)
                            .map(|u| u32::from_le_bytes(u.try_into().unwrap()))
                            .take_while(|&u| u != 0)
                            .filter_map(char::from_u32)
                            .collect()
                    })
                    .collect(),
            )
        }
        other => return Err(ferr(&format!("unsupported dtype {other}"))),
    };
    Ok(Array { shape, data })
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let i = header.find(&pat)? + pat.len();
    let rest = header[i..].trim_start();
    if rest.starts_with('(') {
        let end = rest.find(')')?;
        Some(&rest[..=end])
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim())
    }
}

/// Serializes one array as `.npy` bytes (format 1.0).
pub fn npy_bytes(array: &Array) -> Vec<u8> {
    let (descr, body): (String, Vec<u8>) = match &array.data {
        ArrayData::F32(v) => ("<f4".into(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::F64(v) => ("<f8".into(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::I64(v) => ("<i8".into(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::I32(v) => ("<i4".into(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::Str(v) => {
            let width = v.iter().map(|s| s.chars().count()).max().unwrap_or(0).max(1);
            let mut body = Vec::new();
            for s in v {
                let mut count = 0;
                for c in s.chars() {
                    body.extend((c as u32).to_le_bytes());
                    count += 1;
                }
                for _ in count..width {
                    body.extend(0u32.to_le_bytes());
                }
            }
            (format!("<U{width}"), body)
        }
    };
    let shape = match array.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", array.shape[0]),
        _ => format!("({})", array.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 10 + header.len() + 1;
    let pad = (64 - total % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + body.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Builds an `.npz` archive in memory and writes it atomically (temporary file + rename), so a
/// failed run never leaves a partial output file.
#[derive(Debug, Default)]
pub struct NpzWriter {
    entries: Vec<(String, Array)>,
}

impl NpzWriter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, name: &str, array: Array) -> &mut Self {
        self.entries.push((name.to_string(), array));
        self
    }
    pub fn f32(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> &mut Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "npz array {name}: shape/data mismatch");
        self.add(name, Array { shape: shape.to_vec(), data: ArrayData::F32(data) })
    }
    pub fn i64(&mut self, name: &str, shape: &[usize], data: Vec<i64>) -> &mut Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "npz array {name}: shape/data mismatch");
        self.add(name, Array { shape: shape.to_vec(), data: ArrayData::I64(data) })
    }
    pub fn i32(&mut self, name: &str, shape: &[usize], data: Vec<i32>) -> &mut Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "npz array {name}: shape/data mismatch");
        self.add(name, Array { shape: shape.to_vec(), data: ArrayData::I32(data) })
    }
    pub fn strings(&mut self, name: &str, shape: &[usize], data: Vec<String>) -> &mut Self {
        self.add(name, Array { shape: shape.to_vec(), data: ArrayData::Str(data) })
    }

    /// The archive's bytes (stored, uncompressed, as `np.savez` writes).
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut cursor);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(false);
            for (name, array) in &self.entries {
                zip.start_file(format!("{name}.npy"), opts).map_err(std::io::Error::other)?;
                zip.write_all(&npy_bytes(array))?;
            }
            zip.finish().map_err(std::io::Error::other)?;
        }
        Ok(cursor.into_inner())
    }

    /// Writes the archive to `path` atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        crate::structure::write_atomic(path.as_ref(), &self.to_bytes()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npz_round_trip() {
        let mut w = NpzWriter::new();
        w.f32("a", &[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        w.i64("S", &[3], vec![0, 20, 7]);
        w.strings("seq", &[], vec!["ACD".into()]);
        let bytes = w.to_bytes().unwrap();
        let npz = Npz::from_reader(std::io::Cursor::new(bytes), "mem").unwrap();
        assert_eq!(npz.shape("a").unwrap(), vec![2, 3]);
        assert_eq!(npz.f32("a").unwrap()[5], -6.5);
        assert_eq!(npz.i64("S").unwrap(), vec![0, 20, 7]);
        assert_eq!(npz.get("seq").unwrap().data, ArrayData::Str(vec!["ACD".into()]));
        assert!(npz.get("missing").is_err());
    }

    #[test]
    fn truncated_npy_is_an_error() {
        let mut w = NpzWriter::new();
        w.f32("a", &[4], vec![1.0; 4]);
        let bytes = npy_bytes(&w.entries[0].1);
        assert!(parse_npy("a", &bytes[..bytes.len() - 3]).is_err());
    }
}
