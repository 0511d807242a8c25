//! LigandMPNN's `sample()`: autoregressive decoding in the order of
//! [`decoding_steps_for`] (symmetry groups decoded together), one decoder row per step over
//! the layer states of the positions decoded before ([`ProteinMpnn::decoder_rows`]), and the
//! letter of each step chosen by a [`Chooser`]: [`Argmax`], [`Forced`] (both reproduce the
//! official fixtures) or a seeded [`Multinomial`] draw from the crate's own streams
//! ([`crate::rng`]).
//!
//! Per step, as the official code does: each member's logits `W_out(h)` give its log-probabilities
//! (stored × `mask·chain_mask`); a symmetry group's logits are summed with the members'
//! `symmetry_weights`; `softmax((logits + bias_last) / T)` over 21 letters, renormalised over the
//! first 20 (X is never drawn), is what the draw sees; the letter then passes through the members
//! in group order as `S_t ← S_t·chain_mask_t + S_native_t·(1 − chain_mask_t)`, so after a fixed
//! member the later members receive that member's native letter.
//!
//! [`ProteinMpnn::decoder_rows`]: crate::model::ProteinMpnn::decoder_rows

use rand_chacha::ChaCha8Rng;

use super::checkpoint::{LigandModelError, ModelType};
use super::features::LigandFeatures;
use super::network::{decoding_steps_for, LigandEncoded, LigandMpnn};
use crate::alphabet::VOCAB;
use crate::kernels::{log_softmax_inplace, softmax_inplace};
use crate::model::decoder::{DecoderContext, DecoderScratch};
use crate::rng::{self, Purpose};
pub use crate::sampler::{Argmax, Chooser, Forced, Multinomial};

/// Letters that can be drawn (X excluded).
pub const DRAWN: usize = 20;

/// The letter index of "not decoded yet": its sequence embedding is zero, like the official
/// `h_S` before a position is assigned (a symmetry group's later members see the earlier ones
/// that way).
const UNSET: u8 = VOCAB as u8;

/// Sampling settings (the official `temperature`, `symmetry_residues`, `symmetry_weights`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SampleOptions {
    pub temperature: f32,
    /// Groups of 0-based positions decoded together and given one letter.
    pub symmetry_residues: Vec<Vec<usize>>,
    /// Each member's weight on the group's summed logits (same shape as `symmetry_residues`;
    /// positions outside any group weigh 1).
    pub symmetry_weights: Vec<Vec<f32>>,
}

impl SampleOptions {
    /// No symmetry, temperature `t`.
    pub fn new(temperature: f32) -> SampleOptions {
        SampleOptions { temperature, ..Default::default() }
    }
}

/// One sampled sequence, with what `run.py` writes about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LigandSample {
    /// `[L]` letters (`ACDEFGHIKLMNPQRSTVWYX` indices); fixed and missing positions native.
    pub s: Vec<u8>,
    /// `[L, 20]` the probabilities each letter was drawn from, × `mask·chain_mask`.
    pub sampling_probs: Vec<f32>,
    /// `[L, 21]` the unbiased, untempered log-probabilities at each position when it was decoded,
    /// × `mask·chain_mask`.
    pub log_probs: Vec<f32>,
    /// The decoding order (symmetry groups contiguous).
    pub decoding_order: Vec<usize>,
    /// What each draw saw, one row per step (position or symmetry group) `[steps][20]`.
    pub step_probs: Vec<[f32; DRAWN]>,
    pub confidence: Confidence,
}

/// `run.py`'s numbers for a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Confidence {
    /// `exp(−mean CE)` over `mask·chain_mask`.
    pub overall_confidence: f32,
    /// The same over `mask·mask_XY·chain_mask` (ligand_mpnn) or `mask·chain_mask` (others).
    pub ligand_confidence: f32,
    /// Fraction of native letters over `mask·chain_mask` (NaN when nothing is designed, as
    /// officially).
    pub seq_rec: f32,
    /// `[L]` cross-entropy of each position's letter under `log_probs` (0 where fixed).
    pub loss_per_residue: Vec<f32>,
}

/// `run.py`'s `get_score` / `get_seq_rec` numbers of sequence `s` under `log_probs` `[L, 21]`.
pub fn confidence(model_type: ModelType, f: &LigandFeatures, s: &[u8], log_probs: &[f32]) -> Confidence {
    let l = f.len();
    let loss_per_residue: Vec<f32> = (0..l).map(|i| -log_probs[i * VOCAB + s[i] as usize]).collect();
    let designed: Vec<f32> = f.mask.iter().zip(&f.chain_mask).map(|(m, c)| m * c).collect();
    let ligand_mask: Vec<f32> = if model_type == ModelType::LigandMpnn {
        designed.iter().zip(&f.mask_xy).map(|(d, x)| d * x).collect()
    } else {
        designed.clone()
    };
    let mean_loss = |m: &[f32]| {
        let num: f32 = loss_per_residue.iter().zip(m).map(|(a, b)| a * b).sum();
        let den: f32 = m.iter().sum();
        num / (den + 1e-8)
    };
    let matches: f32 = (0..l).map(|i| if s[i] == f.s[i] { designed[i] } else { 0.0 }).sum();
    let seq_rec = matches / designed.iter().sum::<f32>();
    Confidence {
        overall_confidence: (-mean_loss(&designed)).exp(),
        ligand_confidence: (-mean_loss(&ligand_mask)).exp(),
        seq_rec,
        loss_per_residue,
    }
}

/// The crate's seeded stream for the draws of sample `index` of structure `name`.
pub fn seeded_chooser(seed: u64, name: &str, index: u64) -> Multinomial<ChaCha8Rng> {
    Multinomial(rng::stream(seed, name, Purpose::DesignDraws, index))
}

/// The crate's seeded `randn` (decoding order) of sample `index` of structure `name`.
pub fn seeded_randn(seed: u64, name: &str, index: u64, len: usize) -> Vec<f32> {
    rng::randn(&mut rng::stream(seed, name, Purpose::DesignOrder, index), len)
}

/// Checks symmetry groups and weights against a structure of `l` residues.
pub fn check_symmetry(l: usize, groups: &[Vec<usize>], weights: Option<&[Vec<f32>]>) -> Result<(), LigandModelError> {
    let bad = |m: String| Err(LigandModelError::Features(m));
    let mut seen = vec![false; l];
    for g in groups {
        for &p in g {
            if p >= l {
                return bad(format!("symmetry position {p} is beyond the {l} residues"));
            }
            if seen[p] {
                return bad(format!("position {p} is in more than one symmetry group (or twice in one)"));
            }
            seen[p] = true;
        }
    }
    if let Some(w) = weights {
        if !w.is_empty() && (w.len() != groups.len() || w.iter().zip(groups).any(|(a, b)| a.len() != b.len())) {
            return bad("symmetry_weights must have one weight per symmetry position".into());
        }
    }
    Ok(())
}

/// Samples sequences of one encoded structure: the sequence-independent decoder inputs are
/// computed once ([`LigandMpnn::sampler`]) and shared by every sample (`&self`, so samples can
/// run in parallel).
pub struct LigandSampler<'m, 'a> {
    model: &'m LigandMpnn,
    encoded: &'a LigandEncoded,
    features: &'a LigandFeatures,
    ctx: DecoderContext<'a>,
}

impl LigandMpnn {
    /// A sampler for `encoded` (from [`LigandMpnn::encode`] of `f`).
    pub fn sampler<'m, 'a>(&'m self, encoded: &'a LigandEncoded, f: &'a LigandFeatures) -> LigandSampler<'m, 'a> {
        let h = self.hidden();
        let mut ctx = self.protein.decoder_context_full(&encoded.enc);
        for t in &mut ctx.seq_table {
            t.resize((VOCAB + 1) * h, 0.0);
        }
        LigandSampler { model: self, encoded, features: f, ctx }
    }

    /// The official `sample()` on an encoded structure (one sample; see [`LigandSampler`] for
    /// many).
    pub fn sample(
        &self,
        encoded: &LigandEncoded,
        f: &LigandFeatures,
        randn: &[f32],
        options: &SampleOptions,
        chooser: &mut dyn Chooser,
    ) -> Result<LigandSample, LigandModelError> {
        self.sampler(encoded, f).sample(randn, options, chooser)
    }
}

impl LigandSampler<'_, '_> {
    /// One sequence: `randn` (`[L]`) gives the decoding order, `chooser` the draws.
    pub fn sample(
        &self,
        randn: &[f32],
        options: &SampleOptions,
        chooser: &mut dyn Chooser,
    ) -> Result<LigandSample, LigandModelError> {
        let f = self.features;
        let l = f.len();
        if randn.len() != l {
            return Err(LigandModelError::Features(format!("randn has {} values for {l} residues", randn.len())));
        }
        check_symmetry(l, &options.symmetry_residues, Some(&options.symmetry_weights))?;
        let model = &self.model.protein;
        let enc = &self.encoded.enc;
        let ctx = &self.ctx;
        let h = self.model.hidden();
        let layers = model.decoder_layers.len();
        let steps = decoding_steps_for(f, randn, &options.symmetry_residues);
        let order: Vec<usize> = steps.iter().flatten().copied().collect();
        let mut pos = vec![0usize; l];
        for (p, &t) in order.iter().enumerate() {
            pos[t] = p;
        }
        let mut weight = vec![1.0f32; l];
        for (g, w) in options.symmetry_residues.iter().zip(&options.symmetry_weights) {
            for (&p, &wp) in g.iter().zip(w) {
                weight[p] = wp;
            }
        }
        let symmetric = !options.symmetry_residues.is_empty();
        let design: Vec<f32> = f.mask.iter().zip(&f.chain_mask).map(|(m, c)| m * c).collect();
        let mut seq = vec![UNSET; l];
        let mut s = vec![20u8; l];
        let mut states = vec![vec![0f32; l * h]; layers];
        let mut projections = vec![vec![0f32; l * h]; layers.saturating_sub(1)];
        let mut sampling_probs = vec![0f32; l * DRAWN];
        let mut log_probs = vec![0f32; l * VOCAB];
        let mut step_probs = Vec::with_capacity(steps.len());
        let mut scratch = DecoderScratch::default();
        let mut out = vec![0f32; h];
        let mut proj = vec![0f32; h];
        let temperature = options.temperature;
        for step in &steps {
            let mut total = [0f32; VOCAB];
            for &t in step {
                for li in 0..layers {
                    let (h_prev, nbr_prev): (&[f32], &[f32]) =
                        if li == 0 { (&enc.h_v, &ctx.enc_nbr[0]) } else { (&states[li - 1], &projections[li - 1]) };
                    model.decoder_rows(
                        ctx,
                        li,
                        &[t],
                        h_prev,
                        nbr_prev,
                        &seq,
                        &|i, j| pos[j] < pos[i],
                        &mut scratch,
                        &mut out,
                    );
                    states[li][t * h..(t + 1) * h].copy_from_slice(&out);
                    if li + 1 < layers {
                        model.decoder_layers[li + 1].w1_nbr.forward(&out, 1, &mut proj);
                        projections[li][t * h..(t + 1) * h].copy_from_slice(&proj);
                    }
                }
                let mut logits = [0f32; VOCAB];
                model.w_out.forward(&out, 1, &mut logits);
                let mut lp = logits;
                log_softmax_inplace(&mut lp);
                for (o, v) in log_probs[t * VOCAB..(t + 1) * VOCAB].iter_mut().zip(lp) {
                    *o = design[t] * v;
                }
                if symmetric {
                    for (acc, v) in total.iter_mut().zip(logits) {
                        *acc += weight[t] * v;
                    }
                } else {
                    total = logits;
                }
            }
            let last = *step.last().expect("a decoding step has a position");
            let mut probs = [0f32; VOCAB];
            for a in 0..VOCAB {
                probs[a] = (total[a] + f.bias[last][a]) / temperature;
            }
            softmax_inplace(&mut probs);
            let norm: f32 = probs[..DRAWN].iter().sum();
            let mut drawn_from = [0f32; VOCAB];
            let mut row = [0f32; DRAWN];
            for a in 0..DRAWN {
                row[a] = probs[a] / norm;
                drawn_from[a] = row[a];
            }
            step_probs.push(row);
            let mut letter = chooser.choose(&drawn_from, step);
            for &t in step {
                for (o, &p) in sampling_probs[t * DRAWN..(t + 1) * DRAWN].iter_mut().zip(&row) {
                    *o = design[t] * p;
                }
                letter = (letter as f32 * design[t] + f.s[t] as f32 * (1.0 - design[t])) as u8;
                seq[t] = letter;
                s[t] = letter;
            }
        }
        let confidence = confidence(self.model.model_type(), f, &s, &log_probs);
        Ok(LigandSample { s, sampling_probs, log_probs, decoding_order: order, step_probs, confidence })
    }
}
