//! `mpnn probs` / `--unconditional_probs_only 1` / `--conditional_probs_only 1`.

use anyhow::{Context, Result};
use mpnn::bucket::Group;
use mpnn::featurize::{featurize, Features};
use mpnn::job;
use mpnn::npz::NpzWriter;
use mpnn::pipeline::{Pass, Workspace};

use super::args::{Batching, Common, Skip};
use super::batching;
use super::common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unconditional,
    Conditional { backbone_only: bool },
}

pub fn run(c: &Common, kind: Kind, batching: &Batching, skip: &Skip) -> Result<()> {
    let Prepared { quiet, seed, mut inputs, dicts, n_passes } = prepare(c)?;
    let prepared = inputs.prepare_each(|input| {
        let p = &input.protein;
        let sel = selection_for(p, c.chains.as_deref(), &dicts)?;
        Ok(featurize(p, &sel, &dicts.constraints(&p.name)?, c.ca_only)?)
    });
    for (input, x) in &prepared {
        super::native_ligand::warn_ignored_context(c, &input.source.path, &x.masked_chains);
    }
    let sub = match kind {
        Kind::Unconditional => "unconditional_probs_only",
        Kind::Conditional { .. } => "conditional_probs_only",
    };
    let dir = out_base(c)?.join(sub);
    check_unique_names(prepared.iter().map(|(i, _)| (i.protein.name.as_str(), &i.source)), |n| {
        dir.join(format!("{n}.npz"))
    })?;
    let list = dir.join("skipped.tsv");
    settle_invalid(&inputs.invalid, prepared.len(), skip.skip_invalid, &list)?;
    let feats: Vec<Features> = prepared.into_iter().map(|(_, f)| f).collect();
    let model = load_configured(c, quiet)?;
    let engine = model.engine();
    let dir = out_dir(c, sub)?;
    write_skip_list(&list, &inputs.invalid)?;
    let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
    let router = batching::router(batching, &lengths, engine.arch().k)?;
    let run_group = |g: &Group, ws: &mut Workspace| -> Result<Vec<()>> {
        let members: Vec<&Features> = g.members.iter().map(|&i| &feats[i]).collect();
        // Per structure: the `n_passes` log-probability arrays, concatenated.
        let log_ps: Vec<Vec<f32>> = match kind {
            Kind::Unconditional => engine
                .unconditional_many(&members, Some(g.pad_to), ws)?
                .into_iter()
                .map(|lp| lp.repeat(n_passes))
                .collect(),
            Kind::Conditional { backbone_only } => {
                let passes: Vec<Vec<Pass>> =
                    members.iter().map(|f| job::score_passes(f, &f.s, n_passes, seed)).collect();
                let items: Vec<(&Features, &[Pass])> = members.iter().zip(&passes).map(|(f, p)| (*f, &p[..])).collect();
                engine
                    .conditional_many(&items, backbone_only, Some(g.pad_to), ws)?
                    .into_iter()
                    .map(|p| p.concat())
                    .collect()
            }
        };
        for (f, log_p) in members.iter().zip(log_ps) {
            let l = f.len();
            let mut w = NpzWriter::new();
            w.f32("log_p", &[n_passes, l, 21], log_p)
                .i64("S", &[l], f.s.iter().map(|&v| v as i64).collect())
                .f32("mask", &[l], f.mask.clone())
                .f32("design_mask", &[l], f.design_mask());
            let path = dir.join(format!("{}.npz", f.name));
            w.write(&path).with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(vec![(); members.len()])
    };
    batching::run_in_order(&router, &lengths, run_group, |i, ()| {
        if !quiet {
            match kind {
                Kind::Unconditional => {
                    println!("Calculating sequence unconditional probabilities for {}", feats[i].name)
                }
                Kind::Conditional { .. } => println!("Calculating conditional probabilities for {}", feats[i].name),
            }
        }
        Ok(())
    })
}
