//! `seqs/NAME.fa` as LigandMPNN's `run.py` writes it: a header record with the run's settings
//! and the native sequence, then one record per design with its confidences and recovery.
//!
//! Sequences are written chain by chain in sorted chain-letter order (not file order), joined
//! by `--fasta_seq_separation`; the last line has no newline.

use crate::output::{np4, python_float};

/// The header record's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct FastaHeader {
    /// Input file name without `.pdb` (and without folders).
    pub name: String,
    pub temperature: f64,
    pub seed: i64,
    /// Residues designed and present (`sum(mask · chain_mask)`).
    pub num_res: i64,
    /// Designed residues near the ligand (`sum(mask · mask_XY · chain_mask)`; without a ligand
    /// model, `num_res` again).
    pub num_ligand_res: i64,
    pub use_ligand_context: bool,
    pub ligand_cutoff_distance: f64,
    pub batch_size: usize,
    pub number_of_batches: usize,
    /// The checkpoint path as given on the command line.
    pub model_path: String,
    /// The native sequence, already laid out by [`chain_sequence`].
    pub native: String,
}

/// One design's record.
#[derive(Debug, Clone, PartialEq)]
pub struct FastaSample {
    /// `1..` (or `0..` with `--zero_indexed`).
    pub id: usize,
    pub overall_confidence: f32,
    pub ligand_confidence: f32,
    pub seq_rec: f32,
    /// The designed sequence, laid out by [`chain_sequence`].
    pub seq: String,
}

/// `>NAME, T=0.1, seed=111, num_res=93, num_ligand_res=41, use_ligand_context=True,
/// ligand_cutoff_distance=8.0, batch_size=2, number_of_batches=1, model_path=...` and the
/// native sequence.
pub fn header_line(h: &FastaHeader) -> String {
    format!(
        ">{}, T={}, seed={}, num_res={}, num_ligand_res={}, use_ligand_context={}, ligand_cutoff_distance={}, batch_size={}, number_of_batches={}, model_path={}",
        h.name,
        python_float(h.temperature),
        h.seed,
        h.num_res,
        h.num_ligand_res,
        if h.use_ligand_context { "True" } else { "False" },
        python_float(h.ligand_cutoff_distance),
        h.batch_size,
        h.number_of_batches,
        h.model_path,
    )
}

/// `>NAME, id=1, T=0.1, seed=111, overall_confidence=0.5279, ligand_confidence=0.5140,
/// seq_rec=0.0538`.
pub fn sample_line(name: &str, temperature: f64, seed: i64, s: &FastaSample) -> String {
    format!(
        ">{}, id={}, T={}, seed={}, overall_confidence={}, ligand_confidence={}, seq_rec={}",
        name,
        s.id,
        python_float(temperature),
        seed,
        np4(s.overall_confidence),
        np4(s.ligand_confidence),
        np4(s.seq_rec),
    )
}

/// The whole file: header, native, then each sample; no newline after the last line.
pub fn fasta_text(h: &FastaHeader, samples: &[FastaSample]) -> String {
    let mut out = format!("{}\n{}\n", header_line(h), h.native);
    for (i, s) in samples.iter().enumerate() {
        out.push_str(&sample_line(&h.name, h.temperature, h.seed, s));
        out.push('\n');
        out.push_str(&s.seq);
        if i + 1 < samples.len() {
            out.push('\n');
        }
    }
    out
}

/// The letters of `seq` (one per residue) grouped by chain, chains in sorted order of their ids,
/// joined by `separator`.
///
/// The official code joins the groups with the separator after each and then drops the last
/// character, which loses a residue when the separator is empty and leaves part of a longer
/// separator at the end; here the separator goes between chains only (the same text for the
/// default `:` and any other single character).
pub fn chain_sequence(seq: &[char], chain_ids: &[String], separator: &str) -> String {
    let mut chains: Vec<&String> = chain_ids.iter().collect();
    chains.sort();
    chains.dedup();
    let parts: Vec<String> =
        chains.iter().map(|c| seq.iter().zip(chain_ids).filter(|(_, id)| id == c).map(|(l, _)| *l).collect()).collect();
    parts.join(separator)
}

/// The file name stem `run.py` uses: everything after the last `/`, without a final `.pdb`.
pub fn structure_name(path: &str) -> String {
    let base = match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    };
    base.strip_suffix(".pdb").unwrap_or(base).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> FastaHeader {
        FastaHeader {
            name: "1BC8".into(),
            temperature: 0.1,
            seed: 111,
            num_res: 93,
            num_ligand_res: 41,
            use_ligand_context: true,
            ligand_cutoff_distance: 8.0,
            batch_size: 2,
            number_of_batches: 1,
            model_path: "weights/ligand_k32_a25.pt".into(),
            native: "MDS".into(),
        }
    }

    #[test]
    fn records_match_run_py() {
        let h = header();
        assert_eq!(
            header_line(&h),
            ">1BC8, T=0.1, seed=111, num_res=93, num_ligand_res=41, use_ligand_context=True, \
             ligand_cutoff_distance=8.0, batch_size=2, number_of_batches=1, model_path=weights/ligand_k32_a25.pt"
        );
        let s = FastaSample {
            id: 1,
            overall_confidence: 0.5279,
            ligand_confidence: 0.514,
            seq_rec: 0.05376,
            seq: "PPP".into(),
        };
        assert_eq!(
            sample_line("1BC8", 0.1, 111, &s),
            ">1BC8, id=1, T=0.1, seed=111, overall_confidence=0.5279, ligand_confidence=0.5140, seq_rec=0.0538"
        );
        let text = fasta_text(&h, &[s.clone(), FastaSample { id: 2, ..s }]);
        assert!(text.ends_with("PPP") && !text.ends_with('\n'));
        assert_eq!(text.lines().count(), 6);
    }

    #[test]
    fn chains_in_sorted_order() {
        let ids: Vec<String> = ["C", "C", "A", "B"].iter().map(|s| s.to_string()).collect();
        assert_eq!(chain_sequence(&['M', 'D', 'K', 'L'], &ids, ":"), "K:L:MD");
        assert_eq!(chain_sequence(&['M', 'D', 'K', 'L'], &ids, ""), "KLMD");
        assert_eq!(structure_name("a/b/1BC8.pdb"), "1BC8");
        assert_eq!(structure_name("x.cif"), "x.cif");
    }
}
