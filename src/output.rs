//! Design outputs: the official FASTA records, a PDB of a design threaded onto its backbone,
//! and the run table (CSV / JSON lines).

use std::fmt::Write as _;

use crate::alphabet;
use crate::structure::Protein;

/// Python's `repr` of a list of strings: `['A', 'C']`, `[]`.
pub fn python_str_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", parts.join(", "))
}

/// Python's `repr(float)` for the values a run prints (temperatures, timings): shortest
/// round-trip digits, always with a `.` or an exponent (`0.1`, `1.0`, `1e-05`).
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Python: 1e-05, 1.5e+16
        let s = format!("{x:e}");
        let (m, e) = s.split_once('e').unwrap();
        let e: i32 = e.parse().unwrap();
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{x}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// numpy's `format_float_positional(np.float32(x), unique=False, precision=4)`, without the
/// sign of a negative zero (an empty float sum is -0.0 in Rust, +0.0 in torch): `0.0000`.
pub fn np4(x: f32) -> String {
    let x = if x == 0.0 { 0.0 } else { x };
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{x:.4}")
    }
}

/// The designed chains' letters of `s` (where `chain_m > 0`), split per designed chain and
/// joined by `/` (the official `_S_to_seq` plus the chain separators).
pub fn designed_sequence(s: &[u8], chain_m: &[f32], masked_chain_lengths: &[usize]) -> String {
    let letters: Vec<char> =
        s.iter().zip(chain_m).filter(|(_, &m)| m > 0.0).map(|(&a, _)| alphabet::letter_of(a)).collect();
    let mut out = String::with_capacity(letters.len() + masked_chain_lengths.len());
    let mut start = 0;
    for (i, &n) in masked_chain_lengths.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        let end = (start + n).min(letters.len());
        out.extend(&letters[start..end]);
        start = end;
    }
    out
}

/// The header fields of the native record.
pub struct NativeHeader<'a> {
    pub name: &'a str,
    pub score: f32,
    pub global_score: f32,
    pub fixed_chains: &'a [String],
    pub designed_chains: &'a [String],
    pub ca_only: bool,
    pub model_name: &'a str,
    pub git_hash: &'a str,
    pub seed: u64,
}

/// The official first record `>NAME, score=..., ...\nNATIVE\n`.
pub fn native_record(h: &NativeHeader, native: &str) -> String {
    format!(
        ">{}, score={}, global_score={}, fixed_chains={}, designed_chains={}, {}={}, git_hash={}, seed={}\n{}\n",
        h.name,
        np4(h.score),
        np4(h.global_score),
        python_str_list(h.fixed_chains),
        python_str_list(h.designed_chains),
        if h.ca_only { "CA_model_name" } else { "model_name" },
        h.model_name,
        h.git_hash,
        h.seed,
        native
    )
}

/// One sample record `>T=0.1, sample=1, score=..., global_score=..., seq_recovery=...\nSEQ\n`.
pub fn sample_record(temperature: f64, sample: usize, score: f32, global: f32, recovery: f32, seq: &str) -> String {
    format!(
        ">T={}, sample={}, score={}, global_score={}, seq_recovery={}\n{}\n",
        python_float(temperature),
        sample,
        np4(score),
        np4(global),
        np4(recovery),
        seq
    )
}

/// A sample record read back from a FASTA written by [`sample_record`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub temperature: String,
    pub sample: usize,
    pub score: String,
    pub global_score: String,
    pub seq_recovery: String,
    pub sequence: String,
}

/// Parses a design FASTA: `(native header, native sequence, samples)`; `None` when it is not
/// a complete design file.
pub fn parse_design_fasta(text: &str) -> Option<(String, String, Vec<SampleRow>)> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 2 || !lines.len().is_multiple_of(2) || !text.ends_with('\n') {
        return None;
    }
    let native_header = lines[0].strip_prefix('>')?.to_string();
    let native = lines[1].to_string();
    let mut rows = Vec::new();
    for pair in lines[2..].chunks(2) {
        let h = pair[0].strip_prefix('>')?;
        let mut fields = std::collections::HashMap::new();
        for f in h.split(", ") {
            let (k, v) = f.split_once('=')?;
            fields.insert(k, v);
        }
        rows.push(SampleRow {
            temperature: fields.get("T")?.to_string(),
            sample: fields.get("sample")?.parse().ok()?,
            score: fields.get("score")?.to_string(),
            global_score: fields.get("global_score")?.to_string(),
            seq_recovery: fields.get("seq_recovery")?.to_string(),
            sequence: pair[1].to_string(),
        });
    }
    Some((native_header, native, rows))
}

/// The first residue number of each chain of a PDB file's text (`None` for other formats).
/// Used to number threaded designs like the input: position `i` of a chain is residue
/// `first + i` (the parser fills numbering gaps, so this holds for every position).
pub fn pdb_first_residue_numbers(text: &str) -> std::collections::HashMap<String, i64> {
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        if line.starts_with("ENDMDL") {
            break;
        }
        if !(line.starts_with("ATOM") || line.starts_with("HETATM")) || line.len() < 26 {
            continue;
        }
        let chain = line[21..22].trim().to_string();
        if let Ok(n) = line[22..26].trim().parse::<i64>() {
            out.entry(chain).or_insert(n);
        }
    }
    out
}

/// A PDB of `protein` with `letters` (per chain id, the chain's full sequence) threaded onto
/// its backbone: N, CA, C, O (CA only with `ca_only`) of every residue with coordinates,
/// residue names from the design, original chain ids, numbering from `first_numbers`
/// (default 1).
pub fn threaded_pdb(
    protein: &Protein,
    letters: &std::collections::HashMap<String, Vec<char>>,
    first_numbers: &std::collections::HashMap<String, i64>,
    ca_only: bool,
    remark: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "REMARK   1 {remark}");
    let names = ["N", "CA", "C", "O"];
    let mut serial = 1usize;
    for chain in &protein.chains {
        let seq: Vec<char> = letters.get(&chain.id).cloned().unwrap_or_else(|| chain.sequence.chars().collect());
        let first = first_numbers.get(&chain.id).copied().unwrap_or(1);
        let cid = chain.id.chars().next().unwrap_or('A');
        let mut last = None;
        for (i, coords) in chain.coords.iter().enumerate() {
            let resname = alphabet::three_of_one(seq.get(i).copied().unwrap_or('X'));
            let resnum = first + i as i64;
            for (a, name) in names.iter().enumerate() {
                if ca_only && a != 1 {
                    continue;
                }
                let xyz = coords[a];
                if !xyz.iter().all(|v| v.is_finite()) {
                    continue;
                }
                let element = &name[..1];
                let _ = writeln!(
                    out,
                    "ATOM  {:>5} {:<4} {:>3} {}{:>4}    {:>8.3}{:>8.3}{:>8.3}{:>6.2}{:>6.2}          {:>2}",
                    serial % 100000,
                    format!(" {name}"),
                    resname,
                    cid,
                    resnum,
                    xyz[0],
                    xyz[1],
                    xyz[2],
                    1.0,
                    0.0,
                    element
                );
                serial += 1;
                last = Some((resname, resnum));
            }
        }
        if let Some((resname, resnum)) = last {
            let _ = writeln!(out, "TER   {:>5}      {:>3} {}{:>4}", serial % 100000, resname, cid, resnum);
            serial += 1;
        }
    }
    out.push_str("END\n");
    out
}

/// One row of the run table.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub structure: String,
    pub row: SampleRow,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The run table as CSV (`jsonl == false`) or JSON lines.
pub fn table_text(rows: &[TableRow], jsonl: bool) -> String {
    let mut out = String::new();
    if !jsonl {
        out.push_str("structure,sample,temperature,score,global_score,seq_recovery,sequence\n");
    }
    for r in rows {
        let s = &r.row;
        if jsonl {
            let num = |v: &str| v.parse::<f64>().map(serde_json::Value::from).unwrap_or(serde_json::Value::Null);
            let v = serde_json::json!({
                "structure": r.structure,
                "sample": s.sample,
                "temperature": num(&s.temperature),
                "score": num(&s.score),
                "global_score": num(&s.global_score),
                "seq_recovery": num(&s.seq_recovery),
                "sequence": s.sequence,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        } else {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                csv_field(&r.structure),
                s.sample,
                s.temperature,
                s.score,
                s.global_score,
                s.seq_recovery,
                csv_field(&s.sequence)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.25), "0.25");
        assert_eq!(python_float(1e-5), "1e-05");
        assert_eq!(python_float(12.3456), "12.3456");
        assert_eq!(python_str_list(&[]), "[]");
        assert_eq!(python_str_list(&["A".into(), "C".into()]), "['A', 'C']");
        assert_eq!(np4(0.82214), "0.8221");
        assert_eq!(np4(f32::NAN), "nan");
    }

    #[test]
    fn sequences_and_records_round_trip() {
        let s = [0u8, 1, 2, 3, 4];
        let m = [1.0, 1.0, 0.0, 1.0, 1.0];
        assert_eq!(designed_sequence(&s, &m, &[2, 2]), "AC/EF");
        let text = format!(
            "{}{}",
            native_record(
                &NativeHeader {
                    name: "X",
                    score: 1.0,
                    global_score: 2.0,
                    fixed_chains: &["B".into()],
                    designed_chains: &["A".into()],
                    ca_only: false,
                    model_name: "v_48_020",
                    git_hash: "h",
                    seed: 37
                },
                "AC"
            ),
            sample_record(0.1, 1, 0.5, 0.25, 0.5, "AD")
        );
        assert!(text.starts_with(
            ">X, score=1.0000, global_score=2.0000, fixed_chains=['B'], designed_chains=['A'], model_name=v_48_020, git_hash=h, seed=37\nAC\n"
        ));
        let (_, native, rows) = parse_design_fasta(&text).unwrap();
        assert_eq!(native, "AC");
        assert_eq!(rows[0].sample, 1);
        assert_eq!(rows[0].temperature, "0.1");
        assert_eq!(rows[0].sequence, "AD");
        assert!(parse_design_fasta(&text[..text.len() - 1]).is_none());
    }
}
