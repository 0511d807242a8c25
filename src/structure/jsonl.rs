//! The official `parsed_pdbs.jsonl` format (what `parse_multiple_chains.py` writes): one JSON
//! object per line with `seq_chain_X`, `coords_chain_X` = {`N_chain_X`, `CA_chain_X`, `C_chain_X`,
//! `O_chain_X`} per chain, then `name`, `num_of_chains` and `seq`. Python writes NaN as a bare
//! `NaN` token; it is read as a missing coordinate and written back the same way.

use std::fmt::Write as _;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::text::decode_ignore;
use super::{Chain, Protein, StructureError, ATOM_NAMES};

/// A JSON object with its keys in file order.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, Value>()? {
                    v.push((k, val));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl Ordered {
    /// The value of a key (the last one when repeated, as Python's `json` keeps it).
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Replaces bare `NaN` tokens (outside strings) by `null`; rejects `Infinity`.
fn nan_to_null(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if rest.starts_with("NaN") {
            out.push_str("null");
            rest = &rest[3..];
            continue;
        } else if rest.starts_with("Infinity") {
            return Err("a coordinate is Infinity; fix the structure that produced this file".into());
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

fn coords_list(what: &str, v: &Value, n: usize) -> Result<Vec<[f64; 3]>, String> {
    let arr = v.as_array().ok_or_else(|| format!("{what} is not a list of [x, y, z]"))?;
    if arr.len() != n {
        return Err(format!("{what} has {} positions but the sequence has {n} residues", arr.len()));
    }
    let mut out = Vec::with_capacity(n);
    for (i, p) in arr.iter().enumerate() {
        let xyz = p.as_array().filter(|a| a.len() == 3).ok_or_else(|| format!("{what}[{i}] is not [x, y, z]"))?;
        let mut c = [f64::NAN; 3];
        for (k, x) in xyz.iter().enumerate() {
            c[k] = match x {
                Value::Null => f64::NAN,
                Value::Number(num) => num.as_f64().ok_or_else(|| format!("{what}[{i}] has a bad number"))?,
                _ => return Err(format!("{what}[{i}][{k}] is not a number")),
            };
        }
        out.push(c);
    }
    Ok(out)
}

fn entry_from_object(obj: &Ordered) -> Result<Protein, String> {
    let name = match obj.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("\"name\" is not a string".into()),
        None => return Err("the object has no \"name\"".into()),
    };
    let mut chains: Vec<Chain> = Vec::new();
    for (key, _) in &obj.0 {
        let Some(id) = key.strip_prefix("seq_chain_") else {
            continue;
        };
        if chains.iter().any(|c| c.id == id) {
            continue;
        }
        let sequence = match obj.get(key) {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(format!("{key} is not a string")),
        };
        let n = sequence.chars().count();
        let ckey = format!("coords_chain_{id}");
        let coords_obj =
            obj.get(&ckey).and_then(Value::as_object).ok_or_else(|| format!("chain {id}: no {ckey} object"))?;
        let mut coords = vec![[[f64::NAN; 3]; 4]; n];
        let mut any = false;
        for (k, atom) in ATOM_NAMES.iter().enumerate() {
            let akey = format!("{atom}_chain_{id}");
            if let Some(v) = coords_obj.get(&akey) {
                any = true;
                for (i, c) in coords_list(&akey, v, n)?.into_iter().enumerate() {
                    coords[i][k] = c;
                }
            }
        }
        if !any {
            return Err(format!("chain {id}: {ckey} has none of N/CA/C/O_chain_{id}"));
        }
        chains.push(Chain { id: id.to_string(), sequence, coords });
    }
    if chains.is_empty() {
        return Err(format!("entry {name:?} has no seq_chain_* fields"));
    }
    Ok(Protein { name, chains })
}

/// Parses one jsonl line (`line` is 1-based, for messages).
pub fn parse_jsonl_line(file: &str, line: usize, text: &str) -> Result<Protein, StructureError> {
    let err = |m: String| StructureError::syntax(file, line, m);
    let cleaned = nan_to_null(text).map_err(err)?;
    let obj: Ordered = serde_json::from_str(&cleaned)
        .map_err(|e| err(format!("not a valid JSON object ({e}); each line must hold one parsed structure")))?;
    entry_from_object(&obj).map_err(err)
}

/// Parses a whole `parsed_pdbs.jsonl` (blank lines are skipped). One protein per line.
pub fn parse_jsonl_bytes(file: &str, bytes: &[u8]) -> Result<Vec<Protein>, StructureError> {
    let text = decode_ignore(bytes);
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_jsonl_line(file, i + 1, line)?);
    }
    if out.is_empty() {
        return Err(StructureError::invalid(file, "no structures in this jsonl file (it is empty)"));
    }
    Ok(out)
}

/// A float as Python's `repr` (and so `json.dumps`) writes it; NaN as `NaN`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let e = format!("{x:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        format!("{x:?}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii`).
fn python_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One protein as an official `parsed_pdbs.jsonl` line (no trailing newline): the same keys,
/// order and number formatting as `json.dumps` of the official `pdb_dict`. With `ca_only` only
/// `CA_chain_X` is written, like `parse_PDB(..., ca_only=True)`.
pub fn to_jsonl_line(protein: &Protein, ca_only: bool) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut key = |out: &mut String, k: &str| {
        if !first {
            out.push_str(", ");
        }
        first = false;
        python_json_string(k, out);
        out.push_str(": ");
    };
    for chain in &protein.chains {
        key(&mut out, &format!("seq_chain_{}", chain.id));
        python_json_string(&chain.sequence, &mut out);
        key(&mut out, &format!("coords_chain_{}", chain.id));
        out.push('{');
        let atoms: &[usize] = if ca_only { &[1] } else { &[0, 1, 2, 3] };
        for (j, &k) in atoms.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            python_json_string(&format!("{}_chain_{}", ATOM_NAMES[k], chain.id), &mut out);
            out.push_str(": [");
            for (i, res) in chain.coords.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let [x, y, z] = res[k];
                let _ = write!(out, "[{}, {}, {}]", python_float_repr(x), python_float_repr(y), python_float_repr(z));
            }
            out.push(']');
        }
        out.push('}');
    }
    key(&mut out, "name");
    python_json_string(&protein.name, &mut out);
    key(&mut out, "num_of_chains");
    let _ = write!(out, "{}", protein.chains.len());
    key(&mut out, "seq");
    let seq: String = protein.chains.iter().map(|c| c.sequence.as_str()).collect();
    python_json_string(&seq, &mut out);
    out.push('}');
    out
}

/// Writes proteins as a jsonl file (one line each, newline-terminated), atomically.
pub fn write_jsonl(path: &std::path::Path, proteins: &[Protein], ca_only: bool) -> std::io::Result<()> {
    let mut s = String::new();
    for p in proteins {
        s.push_str(&to_jsonl_line(p, ca_only));
        s.push('\n');
    }
    super::write_atomic(path, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        for (x, s) in [
            (12.0, "12.0"),
            (-15.113, "-15.113"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e15, "1500000000000000.0"),
            (f64::NAN, "NaN"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(python_float_repr(x), s);
        }
    }

    #[test]
    fn nan_round_trip_and_order() {
        let line = r#"{"seq_chain_B": "G-", "coords_chain_B": {"CA_chain_B": [[1.0, 2.0, 3.0], [NaN, NaN, NaN]]}, "seq_chain_A": "A", "coords_chain_A": {"N_chain_A": [[1, 2, 3]], "CA_chain_A": [[1, 2, 3]], "C_chain_A": [[1, 2, 3]], "O_chain_A": [[1, 2, 3]]}, "name": "x\"NaN", "num_of_chains": 2, "seq": "G-A"}"#;
        let p = parse_jsonl_line("t.jsonl", 1, line).expect("parses");
        assert_eq!(p.name, "x\"NaN");
        assert_eq!(p.chain_ids(), vec!["B", "A"]);
        assert!(p.chains[0].coords[1][1][0].is_nan());
        assert!(p.chains[0].coords[0][0][0].is_nan());
        let again = parse_jsonl_line("t.jsonl", 1, &to_jsonl_line(&p, false)).expect("round trip");
        assert_eq!(format!("{again:?}"), format!("{p:?}"));
    }
}
