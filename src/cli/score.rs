//! `mpnn score` / `--score_only 1`: the official scoring of native and FASTA sequences.

use anyhow::{bail, Context, Result};
use mpnn::alphabet;
use mpnn::bucket::Group;
use mpnn::featurize::{featurize, Features};
use mpnn::job;
use mpnn::npz::NpzWriter;
use mpnn::pipeline::{fmt4, mean_std, Pass, Scores, Workspace};

use super::args::{Batching, Common, Skip};
use super::batching;
use super::common::*;

/// Reads a FASTA file: (header, sequence with '/' removed) per record.
pub fn read_fasta(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the FASTA file", path.display()))?;
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if let Some(h) = line.strip_prefix('>') {
            out.push((h.to_string(), String::new()));
        } else if !line.is_empty() {
            let Some(last) = out.last_mut() else {
                bail!("{} line {}: sequence before the first '>' header; is this a FASTA file?", path.display(), i + 1);
            };
            last.1.extend(line.chars().filter(|&c| c != '/'));
        }
    }
    if out.is_empty() {
        bail!("{}: no FASTA records found", path.display());
    }
    Ok(out)
}

pub fn run(c: &Common, fasta: Option<&std::path::Path>, batching: &Batching, skip: &Skip) -> Result<()> {
    let Prepared { quiet, seed, mut inputs, dicts, n_passes } = prepare(c)?;
    let fasta_records = fasta.map(read_fasta).transpose()?;
    // Check every input before any work starts.
    let prepared = inputs.prepare_each(|input| {
        let p = &input.protein;
        let sel = selection_for(p, c.chains.as_deref(), &dicts)?;
        let f = featurize(p, &sel, &dicts.constraints(&p.name)?, c.ca_only)?;
        let mut seqs = vec![(String::from("pdb"), f.s.clone())];
        if let (Some(recs), Some(path)) = (&fasta_records, fasta) {
            for (i, (h, s)) in recs.iter().enumerate() {
                let what = format!("record `{h}`");
                seqs.push((
                    format!("fasta_{}", i + 1),
                    job::parse_sequence(&f, s, &path.display().to_string(), &what)?,
                ));
            }
        }
        Ok((f, seqs))
    });
    for (input, x) in &prepared {
        super::native_ligand::warn_ignored_context(c, &input.source.path, &x.0.masked_chains);
    }
    let dir = out_base(c)?.join("score_only");
    check_unique_names(prepared.iter().map(|(i, _)| (i.protein.name.as_str(), &i.source)), |n| {
        dir.join(format!("{n}_pdb.npz"))
    })?;
    let list = dir.join("skipped.tsv");
    settle_invalid(&inputs.invalid, prepared.len(), skip.skip_invalid, &list)?;
    let feats: Vec<_> = prepared.into_iter().map(|(_, x)| x).collect();
    let model = load_configured(c, quiet)?;
    let engine = model.engine();
    let lengths: Vec<usize> = feats.iter().map(|(f, _)| f.len()).collect();
    let router = batching::router(batching, &lengths, engine.arch().k)?;
    let dir = out_dir(c, "score_only")?;
    write_skip_list(&list, &inputs.invalid)?;
    // Every sequence of a structure, `n_passes` passes each, in one list per structure.
    let passes_of = |f: &Features, seqs: &[(String, Vec<u8>)]| -> Vec<Pass> {
        seqs.iter().flat_map(|(_, s)| job::score_passes(f, s, n_passes, seed)).collect()
    };
    let run_group = |g: &Group, ws: &mut Workspace| -> Result<Vec<Vec<String>>> {
        let passes: Vec<Vec<Pass>> = g.members.iter().map(|&i| passes_of(&feats[i].0, &feats[i].1)).collect();
        let items: Vec<(&Features, &[Pass])> =
            g.members.iter().zip(&passes).map(|(&i, p)| (&feats[i].0, &p[..])).collect();
        let results = engine.score_many(&items, Some(g.pad_to), ws)?;
        let mut lines = Vec::new();
        for (&i, res) in g.members.iter().zip(results) {
            let (f, seqs) = &feats[i];
            lines.push(write_scores(&dir, f, seqs, &res, n_passes)?);
        }
        Ok(lines)
    };
    batching::run_in_order(&router, &lengths, run_group, |_, lines| {
        if !quiet {
            for line in lines {
                println!("{line}");
            }
        }
        Ok(())
    })
}

/// Writes `NAME_TAG.npz` for each sequence of a structure from its passes (`n_passes` per
/// sequence, in order) and returns the summary lines.
fn write_scores(
    dir: &std::path::Path,
    f: &Features,
    seqs: &[(String, Vec<u8>)],
    res: &[(Scores, Vec<f32>)],
    n_passes: usize,
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for ((tag, s), res) in seqs.iter().zip(res.chunks(n_passes)) {
        let score: Vec<f32> = res.iter().map(|r| r.0.score).collect();
        let global: Vec<f32> = res.iter().map(|r| r.0.global_score).collect();
        let seq_str: String =
            s.iter().zip(&f.chain_m).filter(|(_, &m)| m > 0.0).map(|(&a, _)| alphabet::letter_of(a)).collect();
        let mut w = NpzWriter::new();
        w.f32("score", &[score.len()], score.clone())
            .f32("global_score", &[global.len()], global.clone())
            .i64("S", &[s.len()], s.iter().map(|&v| v as i64).collect())
            .strings("seq_str", &[], vec![seq_str]);
        let path = dir.join(format!("{}_{tag}.npz", f.name));
        w.write(&path).with_context(|| format!("{}: cannot write", path.display()))?;
        let (m, sd) = mean_std(&score);
        let (gm, gsd) = mean_std(&global);
        let from =
            if tag == "pdb" { "from PDB".to_string() } else { format!("{} from FASTA", tag.replace("fasta_", "-")) };
        lines.push(format!(
            "Score for {}{}{from}, mean: {}, std: {}, sample size: {},  global score, mean: {}, std: {}, sample size: {}",
            f.name,
            if tag == "pdb" { " " } else { "" },
            fmt4(m),
            fmt4(sd),
            score.len(),
            fmt4(gm),
            fmt4(gsd),
            global.len()
        ));
    }
    Ok(lines)
}
