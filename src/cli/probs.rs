//! `mpnn probs` / `--unconditional_probs_only 1` / `--conditional_probs_only 1`.

use anyhow::{Context, Result};
use mpnn::featurize::featurize;
use mpnn::npz::NpzWriter;
use mpnn::rng::{self, Purpose};

use super::args::Common;
use super::common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unconditional,
    Conditional { backbone_only: bool },
}

pub fn run(c: &Common, kind: Kind) -> Result<()> {
    let Prepared { quiet, seed, proteins, dicts, n_passes } = prepare(c)?;
    let mut feats = Vec::new();
    for p in &proteins {
        let sel = selection_for(p, c.chains.as_deref(), &dicts)?;
        feats.push(featurize(p, &sel, &dicts.constraints(&p.name)?, c.ca_only)?);
    }
    let engine = load_engine(c, quiet)?;
    let sub = match kind {
        Kind::Unconditional => "unconditional_probs_only",
        Kind::Conditional { .. } => "conditional_probs_only",
    };
    let dir = out_dir(c, sub)?;
    for f in &feats {
        let l = f.len();
        let mut log_p = Vec::with_capacity(n_passes * l * 21);
        match kind {
            Kind::Unconditional => {
                if !quiet {
                    println!("Calculating sequence unconditional probabilities for {}", f.name);
                }
                let lp = engine.unconditional(f);
                for _ in 0..n_passes {
                    log_p.extend_from_slice(&lp);
                }
            }
            Kind::Conditional { backbone_only } => {
                if !quiet {
                    println!("Calculating conditional probabilities for {}", f.name);
                }
                for i in 0..n_passes {
                    let randn = rng::randn(&mut rng::stream(seed, &f.name, Purpose::ScoreOrder, i as u64), l);
                    log_p.extend(engine.conditional(f, &f.s, &randn, backbone_only));
                }
            }
        }
        let mut w = NpzWriter::new();
        w.f32("log_p", &[n_passes, l, 21], log_p)
            .i64("S", &[l], f.s.iter().map(|&v| v as i64).collect())
            .f32("mask", &[l], f.mask.clone())
            .f32("design_mask", &[l], f.design_mask());
        let path = dir.join(format!("{}.npz", f.name));
        w.write(&path).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}
