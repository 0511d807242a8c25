//! Small text helpers that reproduce Python's behaviour where the official parser relies on it.

use super::StructureError;
use std::borrow::Cow;

/// Decodes UTF-8 like Python's `bytes.decode("utf-8", "ignore")`: invalid bytes are dropped.
pub(crate) fn decode_ignore(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len());
            let mut rest = bytes;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        if let Ok(s) = std::str::from_utf8(good) {
                            out.push_str(s);
                        }
                        let skip = e.error_len().unwrap_or(bad.len()).max(1).min(bad.len());
                        rest = &bad[skip..];
                        if rest.is_empty() {
                            break;
                        }
                    }
                }
            }
            Cow::Owned(out)
        }
    }
}

/// Python's `str.isspace` (Rust's `char::is_whitespace` plus the ASCII separators 0x1c-0x1f).
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `str.rstrip()`.
pub(crate) fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Python's `float(s)` restricted to finite values; `Err(true)` when the text is a NaN/inf
/// literal, `Err(false)` when it is not a number at all.
pub(crate) fn py_float(s: &str) -> Result<f64, bool> {
    let t = py_strip(s);
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(true),
        Err(_) => Err(false),
    }
}

/// Python's `int(s)` for the range of `i64`.
pub(crate) fn py_int(s: &str) -> Option<i64> {
    py_strip(s).parse::<i64>().ok()
}

/// Position of a chain id in the official chain alphabet
/// (`A..Z`, `a..z`, then `"0"` .. `"299"`), or `None` when the official code would never ask for it.
pub fn chain_alphabet_position(id: &str) -> Option<usize> {
    let b = id.as_bytes();
    if b.len() == 1 {
        let c = b[0];
        if c.is_ascii_uppercase() {
            return Some((c - b'A') as usize);
        }
        if c.is_ascii_lowercase() {
            return Some(26 + (c - b'a') as usize);
        }
    }
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let n: usize = id.parse().ok()?;
    (n < 300).then_some(52 + n)
}

/// The official chain alphabet, in order.
pub fn chain_alphabet() -> Vec<String> {
    let mut v: Vec<String> = ('A'..='Z').chain('a'..='z').map(|c| c.to_string()).collect();
    v.extend((0..300).map(|n| n.to_string()));
    v
}

/// A line with Python-style (character-indexed, clamped) slicing.
pub(crate) struct PyLine<'a> {
    s: &'a str,
    /// Byte offset of every character, plus the end; `None` when the line is ASCII.
    offsets: Option<Vec<usize>>,
}

impl<'a> PyLine<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        let offsets = if s.is_ascii() {
            None
        } else {
            let mut v: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
            v.push(s.len());
            Some(v)
        };
        PyLine { s, offsets }
    }
    /// Number of characters.
    pub(crate) fn len(&self) -> usize {
        match &self.offsets {
            None => self.s.len(),
            Some(v) => v.len() - 1,
        }
    }
    /// `line[a:b]` in Python.
    pub(crate) fn get(&self, a: usize, b: usize) -> &'a str {
        let n = self.len();
        let (a, b) = (a.min(n), b.min(n));
        if a >= b {
            return "";
        }
        match &self.offsets {
            None => self.s.get(a..b).unwrap_or(""),
            Some(v) => self.s.get(v[a]..v[b]).unwrap_or(""),
        }
    }
}

impl PyLine<'_> {
    /// The x, y, z of a PDB `ATOM`/`HETATM` line (columns 31-38, 39-46, 47-54, read as Python's
    /// `float`), or an error naming the file, line, axis and columns of text that is not a
    /// finite number.
    pub(crate) fn pdb_coordinates(&self, file: &str, line_no: usize) -> Result<[f64; 3], StructureError> {
        let mut xyz = [0.0; 3];
        for (k, (axis, start)) in [("x", 30), ("y", 38), ("z", 46)].into_iter().enumerate() {
            let field = self.get(start, start + 8);
            xyz[k] = py_float(field).map_err(|special| {
                let why = if special {
                    "is not a finite number (NaN/inf written in the file; fix or remove the atom)"
                } else {
                    "is not a number"
                };
                StructureError::syntax(
                    file,
                    line_no,
                    format!("{axis} coordinate \"{}\" (columns {}-{}) {why}", py_strip(field), start + 1, start + 8),
                )
            })?;
        }
        Ok(xyz)
    }
}

/// File name without directory, `.gz` and the last extension (`dir/5L33.pdb.gz` → `5L33`).
pub fn stem_of(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let base =
        if base.len() > 3 && base.to_ascii_lowercase().ends_with(".gz") { &base[..base.len() - 3] } else { base };
    match base.rfind('.') {
        Some(i) if i > 0 => base[..i].to_string(),
        _ => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_positions() {
        let a = chain_alphabet();
        assert_eq!(a.len(), 352);
        for (i, id) in a.iter().enumerate() {
            assert_eq!(chain_alphabet_position(id), Some(i), "{id}");
        }
        for bad in ["", " ", "00", "300", "AA", "-1", "01", "é"] {
            assert_eq!(chain_alphabet_position(bad), None, "{bad}");
        }
    }

    #[test]
    fn decode_drops_invalid() {
        assert_eq!(decode_ignore(b"ab\xffc\xe2\x82"), "abc");
        assert_eq!(decode_ignore("é".as_bytes()), "é");
    }

    #[test]
    fn stems() {
        for f in ["5L33.pdb", "5L33.pdb.gz", "5L33.cif", "x/y/5L33.cif.gz", "5L33"] {
            assert_eq!(stem_of(f), "5L33", "{f}");
        }
    }

    #[test]
    fn py_slicing() {
        let l = PyLine::new("aé bc");
        assert_eq!(l.get(1, 3), "é ");
        assert_eq!(l.get(4, 10), "c");
        assert_eq!(l.get(9, 10), "");
    }
}
