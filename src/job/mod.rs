//! The jobs: score, unconditional and conditional probabilities, and design, as library calls
//! that take a structure and typed options and return typed results. The command line and the
//! Python package are thin layers over these.
//!
//! ```no_run
//! use mpnn::job::{self, DesignOptions, Labels, Model, ResidueConstraints};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Model::from_file("full_k48.pt".as_ref(), Some(false), &Labels::CLI)?;
//! let protein = mpnn::structure::read_structure("5L33.pdb".as_ref())?;
//! let chains = job::select_chains(&protein, None, &Labels::CLI)?;
//! let opts = DesignOptions { per_temperature: 8, ..DesignOptions::default() };
//! let f = job::prepare(&protein, &chains, Default::default(), &ResidueConstraints::default(), &opts.omit, model.ca_only())?;
//! let out = job::design(&model, &f, &opts, &|_| {})?;
//! for d in &out.designs {
//!     println!("{} {:.4}", d.designed_sequence(&f), d.score);
//! }
//! # Ok(()) }
//! ```
//!
//! Every random number comes from [`rng::stream`] keyed by the seed, the structure's name, a
//! purpose and an index, so the same seed gives the same results for any batching or threads.

mod constraints;
mod design;
mod error;
mod labels;
pub mod ligand;
mod model;

pub use constraints::ResidueConstraints;
pub use design::{
    check_backbone_noise, check_screen, design, design_many, design_screened, Design, DesignOptions, Designs,
    MAX_BACKBONE_NOISE,
};
pub use error::JobError;
pub use labels::Labels;
pub use model::Model;

use crate::alphabet;
use crate::featurize::{featurize, ChainSelection, Constraints, Features};
use crate::pipeline::{Pass, Scored, Workspace};
use crate::rng::{self, Purpose};
use crate::sampler::omit_vector;
use crate::structure::Protein;

/// The chains to design in `p`: `chains` (each must be one of its chains), else all of them;
/// the others are fixed context.
pub fn select_chains(p: &Protein, chains: Option<&[String]>, labels: &Labels) -> Result<ChainSelection, JobError> {
    match chains.filter(|c| !c.is_empty()) {
        Some(designed) => {
            for c in designed {
                if p.chain(c).is_none() {
                    return Err(JobError::UnknownChain {
                        structure: p.name.clone(),
                        option: labels.chains,
                        chain: c.clone(),
                        chains: p.chain_ids().join(", "),
                    });
                }
            }
            Ok(ChainSelection::designing(p, designed))
        }
        None => Ok(ChainSelection::all(p)),
    }
}

/// Features for designing `p`: the official dictionaries' constraints `base` plus `residue`,
/// featurized as the official `tied_featurize`, and checked so that sampling can run (some
/// chain designed, some position free, some letter allowed at every free position given the
/// global omitted letters `omit`).
pub fn prepare(
    p: &Protein,
    sel: &ChainSelection,
    base: Constraints,
    residue: &ResidueConstraints,
    omit: &str,
    ca_only: bool,
) -> Result<Features, JobError> {
    let labels = &residue.labels;
    let mut cons = base;
    residue.apply(p, &sel.designed, &mut cons)?;
    let f = featurize(p, sel, &cons, ca_only)?;
    if f.masked_chains.is_empty() {
        return Err(JobError::NoChainDesigned { structure: p.name.clone(), chains: labels.chains });
    }
    if f.design_mask().iter().all(|&m| m == 0.0) {
        return Err(JobError::NothingDesignable {
            structure: p.name.clone(),
            designed: f.masked_chains.join(", "),
            free: labels.free_positions,
        });
    }
    let blocked = f.fully_omitted(&omit_vector(omit));
    if !blocked.is_empty() {
        return Err(JobError::FullyOmitted {
            structure: p.name.clone(),
            plural: if blocked.len() == 1 { "" } else { "s" },
            positions: list_some(&blocked),
            omit: labels.omit,
        });
    }
    Ok(f)
}

/// Up to 10 items, then how many more.
fn list_some(items: &[String]) -> String {
    let shown = items.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    match items.len().saturating_sub(10) {
        0 => shown,
        n => format!("{shown} and {n} more"),
    }
}

/// The random vector `[len]` that the decoding order of scoring (or conditional-probability)
/// pass `pass` of structure `name` comes from.
pub fn order_noise(seed: u64, name: &str, pass: usize, len: usize) -> Vec<f32> {
    rng::randn(&mut rng::stream(seed, name, Purpose::ScoreOrder, pass as u64), len)
}

/// `passes` scoring passes of `seq`, each with its own decoding order.
pub fn score_passes(f: &Features, seq: &[u8], passes: usize, seed: u64) -> Vec<Pass> {
    (0..passes).map(|i| (seq.to_vec(), order_noise(seed, &f.name, i, f.len()))).collect()
}

/// `sequence` (one-letter, `/` between chains ignored) as the sequence to score on `f`: the
/// designed chains' residues in the model's chain order, or every residue; it is written over
/// the native sequence from the first position, as the official code does. `origin` and
/// `what` name it in errors (a file and a record, say).
pub fn parse_sequence(f: &Features, sequence: &str, origin: &str, what: &str) -> Result<Vec<u8>, JobError> {
    let designed: usize = f.masked_chain_lengths.iter().sum();
    let letters: Vec<char> = sequence.chars().filter(|&c| c != '/').collect();
    if letters.len() != designed && letters.len() != f.len() {
        return Err(JobError::SequenceLength {
            origin: origin.to_string(),
            structure: f.name.clone(),
            what: what.into(),
            found: letters.len(),
            designed,
            len: f.len(),
            chains: f.masked_chains.join(", ").into(),
        });
    }
    let mut s = f.s.clone();
    for (i, &c) in letters.iter().enumerate() {
        s[i] = alphabet::index_of(c.to_ascii_uppercase()).ok_or_else(|| JobError::SequenceLetter {
            origin: origin.to_string(),
            what: what.to_string(),
            position: i + 1,
            letter: c,
            alphabet: alphabet::ALPHABET,
        })?;
    }
    Ok(s)
}

/// The official scoring of `sequences` on `f`: `passes` passes each (decoding orders from
/// [`order_noise`]); per sequence, per pass, the scores and log-probabilities `[L, 21]`.
pub fn score(
    model: &Model,
    f: &Features,
    sequences: &[Vec<u8>],
    passes: usize,
    seed: u64,
) -> Result<Vec<Vec<Scored>>, JobError> {
    let all: Vec<Pass> = sequences.iter().flat_map(|s| score_passes(f, s, passes, seed)).collect();
    let mut out = model.engine().score_many(&[(f, &all[..])], None, &mut Workspace::new())?;
    let mut flat = out.pop().unwrap_or_default().into_iter();
    Ok(sequences.iter().map(|_| flat.by_ref().take(passes).collect()).collect())
}

/// The official `unconditional_probs()`: log-probabilities `[L, 21]`.
pub fn unconditional_probs(model: &Model, f: &Features) -> Result<Vec<f32>, JobError> {
    let mut out = model.engine().unconditional_many(&[f], None, &mut Workspace::new())?;
    Ok(out.pop().unwrap_or_default())
}

/// The official `conditional_probs()` of the native sequence, `passes` passes (decoding orders
/// from [`order_noise`]): per pass, log-probabilities `[L, 21]` (0 outside designed positions).
pub fn conditional_probs(
    model: &Model,
    f: &Features,
    passes: usize,
    seed: u64,
    backbone_only: bool,
) -> Result<Vec<Vec<f32>>, JobError> {
    let p = score_passes(f, &f.s, passes, seed);
    let mut out = model.engine().conditional_many(&[(f, &p[..])], backbone_only, None, &mut Workspace::new())?;
    Ok(out.pop().unwrap_or_default())
}
