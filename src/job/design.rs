//! The design job: sequences for one prepared structure, with the official sampler, optional
//! backbone noise, the native sequence's score and cascade screening.
//!
//! Randomness: sample `i` of structure `NAME` (counted over all temperatures in output order)
//! takes its decoding order from `stream(seed, NAME, DesignOrder, i)`, its draws from
//! `stream(seed, NAME, DesignDraws, i)` and (with backbone noise) its noise from
//! `stream(seed, NAME, Noise, i)`, so results do not depend on batch size, threads or how
//! structures are split between jobs.

use rayon::prelude::*;

use super::{JobError, Labels, Model};
use crate::alphabet::{self, VOCAB};
use crate::featurize::{Batch, Features};
use crate::model::decoder::{decoding_order, score};
use crate::model::encoder::Encoded;
use crate::model::ProteinMpnn;
use crate::output;
use crate::pipeline::Scores;
use crate::rng::{self, Purpose};
use crate::sampler::{omit_vector, pssm_log_odds_mask, Chooser, Multinomial, Sample, Sampler, SamplingOptions};
use crate::spec;

/// The largest backbone noise (Å): far beyond any use (the official models were trained with
/// 0.02-0.3 Å; at 10 Å the backbone is noise).
pub const MAX_BACKBONE_NOISE: f32 = 10.0;

/// Samples of one structure decoded together per call (bounds the per-call state memory).
/// Results never depend on it.
const DECODE_GROUP: usize = 32;

/// How to design: the official sampling options plus seed and noise.
#[derive(Debug, Clone)]
pub struct DesignOptions {
    /// Sampling temperatures, in output order.
    pub temperatures: Vec<f64>,
    /// Sequences per temperature.
    pub per_temperature: usize,
    /// The seed every random stream derives from.
    pub seed: u64,
    /// Gaussian noise (Å, standard deviation) added to the backbone of each sample.
    pub backbone_noise: f32,
    /// Letters never sampled, anywhere.
    pub omit: String,
    /// Bias added to each letter's logit, everywhere.
    pub bias_aa: [f32; VOCAB],
    /// The official `--pssm_multi`, `--pssm_threshold`, `--pssm_log_odds_flag`, `--pssm_bias_flag`.
    pub pssm_multi: f32,
    pub pssm_threshold: f32,
    pub pssm_log_odds: bool,
    pub pssm_bias: bool,
    /// How the caller spells these options, for error messages.
    pub labels: Labels,
}

impl Default for DesignOptions {
    /// One sequence at T = 0.1, seed 37, no noise, no omissions or biases (the official defaults,
    /// except the seed, which the official script draws at random).
    fn default() -> Self {
        DesignOptions {
            temperatures: vec![0.1],
            per_temperature: 1,
            seed: 37,
            backbone_noise: 0.0,
            omit: "X".into(),
            bias_aa: [0.0; VOCAB],
            pssm_multi: 0.0,
            pssm_threshold: 0.0,
            pssm_log_odds: false,
            pssm_bias: false,
            labels: Labels::default(),
        }
    }
}

impl DesignOptions {
    /// Checks every option, before any work.
    pub fn validate(&self) -> Result<(), JobError> {
        let l = &self.labels;
        if self.temperatures.is_empty() {
            return Err(JobError::BadValue {
                option: l.temperature,
                value: "(none)".into(),
                why: "give at least one temperature, like 0.1".into(),
            });
        }
        for &t in &self.temperatures {
            if !(t.is_finite() && t > 0.0) {
                return Err(JobError::BadValue {
                    option: l.temperature,
                    value: t.to_string(),
                    why: "temperatures must be positive numbers (0 or less is not a temperature), like 0.1".into(),
                });
            }
        }
        if self.per_temperature == 0 {
            return Err(JobError::BadValue {
                option: l.num_seqs,
                value: "0".into(),
                why: "design at least one sequence".into(),
            });
        }
        check_backbone_noise(self.backbone_noise, l)?;
        let omit = spec::parse_letters(&self.omit).map_err(|e| JobError::BadValue {
            option: l.omit,
            value: format!("\"{}\"", self.omit),
            why: e.to_string(),
        })?;
        if alphabet::ALPHABET.chars().take(20).all(|a| omit.contains(a)) {
            return Err(JobError::AllOmitted {
                omit: l.omit,
                letters: self.omit.clone(),
                allowed: &alphabet::ALPHABET[..20],
            });
        }
        if let Some(b) = self.bias_aa.iter().find(|b| !b.is_finite()) {
            return Err(JobError::BadValue {
                option: "bias",
                value: b.to_string(),
                why: "biases must be finite numbers".into(),
            });
        }
        Ok(())
    }

    /// How many sequences one structure gets: temperatures × sequences per temperature.
    pub fn generated(&self) -> usize {
        self.temperatures.len() * self.per_temperature
    }

    fn sampling(&self, t: f64) -> SamplingOptions {
        SamplingOptions {
            temperature: t as f32,
            omit_aas: omit_vector(&self.omit),
            bias_aa: self.bias_aa,
            pssm_multi: self.pssm_multi,
            pssm_log_odds_flag: self.pssm_log_odds,
            pssm_bias_flag: self.pssm_bias,
        }
    }
}

/// Checks a backbone noise level (Å): 0 (none) to [`MAX_BACKBONE_NOISE`].
pub fn check_backbone_noise(sigma: f32, labels: &Labels) -> Result<(), JobError> {
    if sigma.is_nan() || sigma < 0.0 {
        return Err(JobError::BadValue {
            option: labels.backbone_noise,
            value: sigma.to_string(),
            why: format!(
                "the noise is a standard deviation in Å and cannot be negative; give 0 (none) to {MAX_BACKBONE_NOISE}"
            ),
        });
    }
    if sigma > MAX_BACKBONE_NOISE {
        return Err(JobError::BadValue {
            option: labels.backbone_noise,
            value: sigma.to_string(),
            why: format!(
                "{sigma} Å of noise is larger than any structure's detail (the official models were trained with \
                 0.02-0.3 Å); give at most {MAX_BACKBONE_NOISE}"
            ),
        });
    }
    Ok(())
}

/// One designed sequence.
#[derive(Debug, Clone)]
pub struct Design {
    /// Index among the structure's samples in output order (temperature-major).
    pub index: usize,
    /// The temperature it was sampled at.
    pub temperature: f64,
    /// Its number among the samples of its temperature, from 1 (the official `sample=`).
    pub number: usize,
    /// Sequence `[L]`, sampling probabilities `[L, 21]` and decoding order `[L]`.
    pub sample: Sample,
    /// Log-probabilities `[L, 21]` of the sequence on its own decoding order (the official
    /// `log_probs`, also what `score` and `global_score` come from).
    pub log_probs: Vec<f32>,
    /// Mean negative log-likelihood over the designed positions.
    pub score: f32,
    /// Mean negative log-likelihood over all positions.
    pub global_score: f32,
    /// Fraction of designed positions that kept the native amino acid.
    pub recovery: f32,
    /// With screening: the screening model's scores (the others are the main model's).
    pub screen: Option<Scores>,
}

impl Design {
    /// The designed chains' sequence as the official FASTA writes it (chains joined by `/`).
    pub fn designed_sequence(&self, f: &Features) -> String {
        output::designed_sequence(&self.sample.s, &f.chain_m, &f.masked_chain_lengths)
    }
}

/// Every design of one structure, and the native sequence's scores.
#[derive(Debug, Clone)]
pub struct Designs {
    /// The native sequence's official score (one pass, decoding order from
    /// `stream(seed, NAME, ScoreOrder, 0)`).
    pub native: Scores,
    /// The designs in output order (with screening: best first).
    pub designs: Vec<Design>,
}

/// Designs `opts.generated()` sequences for the prepared structure `f` (see
/// [`prepare`](super::prepare)). `progress` is called with the number of sequences each time
/// some are finished (from worker threads).
pub fn design(
    model: &Model,
    f: &Features,
    opts: &DesignOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Designs, JobError> {
    Ok(design_many(model, &[f], opts, progress)?.remove(0))
}

/// [`design`] for several structures at once, in order. On a GPU (without backbone noise) the
/// structures' samples share command buffers, padded to a common length
/// ([`crate::gpu::GpuModel::sample_structures`]): a design job's few sequences per backbone
/// leave a GPU mostly idle one structure at a time. Every result equals [`design`]'s for that
/// structure (each sample depends only on its structure, seed and index); on the CPU the
/// structures are designed one after the other.
pub fn design_many(
    model: &Model,
    fs: &[&Features],
    opts: &DesignOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Designs>, JobError> {
    opts.validate()?;
    for f in fs {
        check_model(model, f)?;
    }
    let net = &model.engine().model;
    #[cfg(feature = "gpu")]
    if let Some(g) = &model.engine().gpu {
        if opts.backbone_noise == 0.0 {
            match sample_all_gpu(g, net, fs, opts, progress) {
                Ok(all) => {
                    return Ok(all
                        .into_iter()
                        .zip(fs)
                        .map(|(designs, f)| Designs { native: native_scores_gpu(g, net, f, opts.seed), designs })
                        .collect());
                }
                Err(e) if fs.len() > 1 => {
                    eprintln!("warning: {e}; designing these {} structures one at a time", fs.len());
                    return fs.iter().map(|f| design(model, f, opts, progress)).collect();
                }
                Err(e) => eprintln!("warning: {e}; designing {} on the CPU", fs[0].name),
            }
        }
    }
    Ok(fs
        .iter()
        .map(|f| {
            // One encoding of the clean backbone serves the samples (without backbone noise)
            // and the native sequence's score.
            let enc = net.encode(&Batch::new(&[f], None));
            let designs = sample_all(net, &enc, f, opts, progress);
            Designs { native: native_scores(net, &enc, f, opts.seed), designs }
        })
        .collect())
}

/// [`sample_all`] on the GPU for several structures: per temperature, every sample of every
/// structure in as few command buffers as fit the device
/// ([`crate::gpu::GpuModel::sample_structures`]), from the same random streams as the CPU path.
#[cfg(feature = "gpu")]
fn sample_all_gpu(
    gm: &crate::gpu::GpuModel,
    model: &ProteinMpnn,
    fs: &[&Features],
    opts: &DesignOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<Design>>, crate::gpu::GpuError> {
    let seed = opts.seed;
    let per = opts.per_temperature;
    let masks: Vec<Vec<f32>> = fs.iter().map(|f| pssm_log_odds_mask(f, opts.pssm_threshold)).collect();
    let mut out: Vec<Vec<Design>> = fs.iter().map(|_| Vec::with_capacity(opts.temperatures.len() * per)).collect();
    for (ti, &t) in opts.temperatures.iter().enumerate() {
        let ids: Vec<usize> = (ti * per..(ti + 1) * per).collect();
        let randns: Vec<Vec<Vec<f32>>> = fs
            .iter()
            .map(|f| {
                ids.iter()
                    .map(|&i| rng::randn(&mut rng::stream(seed, &f.name, Purpose::DesignOrder, i as u64), f.len()))
                    .collect()
            })
            .collect();
        let mut streams: Vec<Vec<_>> = fs
            .iter()
            .map(|f| ids.iter().map(|&i| rng::stream(seed, &f.name, Purpose::DesignDraws, i as u64)).collect())
            .collect();
        let items: Vec<crate::gpu::SampleItem> = fs
            .iter()
            .zip(&masks)
            .zip(&randns)
            .zip(streams.iter_mut())
            .map(|(((f, mask), rs), st)| crate::gpu::SampleItem {
                f,
                log_odds_mask: mask,
                randns: rs.iter().map(|r| r.as_slice()).collect(),
                draws: st.iter_mut().map(|r| crate::gpu::Draw::Uniform(r)).collect(),
            })
            .collect();
        let all = gm.sample_structures(model, items, &opts.sampling(t))?;
        for ((f, samples), designs) in fs.iter().zip(all).zip(out.iter_mut()) {
            // Tied samples are rescored with `forward()` on their own order (one batch).
            let rescore: Vec<(Vec<u8>, Option<Vec<usize>>)> = samples
                .iter()
                .filter(|s| s.log_probs.is_none())
                .map(|s| (s.s.clone(), Some(s.decoding_order.clone())))
                .collect();
            let mut rescored = if rescore.is_empty() {
                Vec::new()
            } else {
                gm.forward_passes(model, &Batch::new(&[f], None), &rescore)?
            }
            .into_iter();
            for (s, (k, &i)) in samples.into_iter().zip(ids.iter().enumerate()) {
                let lp = match &s.log_probs {
                    Some(lp) => lp.clone(),
                    None => rescored.next().expect("one pass per tied sample"),
                };
                designs.push(finish_with(f, i, t, k + 1, s, lp));
            }
        }
        progress(per * fs.len());
    }
    Ok(out)
}

/// [`native_scores`] on the GPU (the CPU when the GPU fails).
#[cfg(feature = "gpu")]
fn native_scores_gpu(gm: &crate::gpu::GpuModel, model: &ProteinMpnn, f: &Features, seed: u64) -> Scores {
    let randn = super::order_noise(seed, &f.name, 0, f.len());
    let design = f.design_mask();
    match gm.forward(model, &Batch::new(&[f], None), &f.s, &decoding_order(&design, &randn)) {
        Ok(lp) => Scores { score: score(&lp, &f.s, &design), global_score: score(&lp, &f.s, &f.mask) },
        Err(_) => native_scores(model, &model.encode(&Batch::new(&[f], None)), f, seed),
    }
}

/// Cascade screening: samples with the (faster) `screen` model, rescores every design with
/// `model` on the design's own decoding order and keeps the `keep` best by `model`'s score
/// (ties: the earlier sample first), best first. Backbone noise is not supported (each sample
/// would need its own noisy backbone rescored).
pub fn design_screened(
    model: &Model,
    screen: &Model,
    keep: usize,
    f: &Features,
    opts: &DesignOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Designs, JobError> {
    opts.validate()?;
    check_screen(keep, opts)?;
    check_model(model, f)?;
    check_model(screen, f)?;
    let net = &model.engine().model;
    let screen_net = &screen.engine().model;
    let sampled = sample_all(screen_net, &screen_net.encode(&Batch::new(&[f], None)), f, opts, progress);
    let enc = net.encode(&Batch::new(&[f], None));
    let mut rescored: Vec<Design> = sampled
        .into_par_iter()
        .map(|mut x| {
            let first = Scores { score: x.score, global_score: x.global_score };
            x.sample.log_probs = None;
            let mut full = finish(net, &enc, f, x.index, x.temperature, x.number, x.sample);
            full.screen = Some(first);
            full
        })
        .collect();
    rescored.sort_by(|a, b| a.score.total_cmp(&b.score).then(a.index.cmp(&b.index)));
    rescored.truncate(keep);
    Ok(Designs { native: native_scores(net, &enc, f, opts.seed), designs: rescored })
}

/// Checks screening options: `keep` within what is generated, no backbone noise.
pub fn check_screen(keep: usize, opts: &DesignOptions) -> Result<(), JobError> {
    let l = &opts.labels;
    let generated = opts.generated();
    if keep == 0 || keep > generated {
        return Err(JobError::BadValue {
            option: l.keep,
            value: keep.to_string(),
            why: format!(
                "keep between 1 and the {generated} sequences generated per structure ({} × temperatures); raise {} \
                 to screen more",
                l.num_seqs, l.num_seqs
            ),
        });
    }
    if opts.backbone_noise > 0.0 {
        return Err(JobError::BadValue {
            option: l.screen,
            value: format!("with {} {}", l.backbone_noise, opts.backbone_noise),
            why: "screening with backbone noise is not supported: each sample would need its own noisy backbone \
                  rescored; drop one of them"
                .into(),
        });
    }
    Ok(())
}

/// The model must read what the structure was prepared for (CA-only or full backbone).
fn check_model(model: &Model, f: &Features) -> Result<(), JobError> {
    let kind = |ca: bool| if ca { "CA-only" } else { "full-backbone" };
    if model.ca_only() != f.ca_only {
        return Err(JobError::BadValue {
            option: "model",
            value: model.name(),
            why: format!(
                "{} was prepared as a {} structure but this is a {} model; prepare it with the model's ca_only",
                f.name,
                kind(f.ca_only),
                kind(model.ca_only())
            ),
        });
    }
    Ok(())
}

/// `f` with the noise of sample `i` added to every coordinate.
fn noisy(f: &Features, sigma: f32, seed: u64, i: u64) -> Features {
    let mut g = f.clone();
    let noise = rng::randn(&mut rng::stream(seed, &f.name, Purpose::Noise, i), g.x.len());
    for (x, n) in g.x.iter_mut().zip(noise) {
        *x += sigma * n;
    }
    g
}

/// Scores a finished sample: its log-probabilities on its own decoding order, its scores and
/// its recovery.
fn finish(
    model: &ProteinMpnn,
    enc: &Encoded,
    f: &Features,
    index: usize,
    temperature: f64,
    number: usize,
    sample: Sample,
) -> Design {
    // Untied samples carry the log-probabilities `forward()` gives them with their own
    // decoding order (computed while decoding); tied ones are rescored.
    let lp = match &sample.log_probs {
        Some(lp) => lp.clone(),
        None => model.forward(enc, &sample.s, &sample.decoding_order),
    };
    finish_with(f, index, temperature, number, sample, lp)
}

/// [`finish`] with the sample's log-probabilities `lp` already computed.
fn finish_with(f: &Features, index: usize, temperature: f64, number: usize, sample: Sample, lp: Vec<f32>) -> Design {
    let design = f.design_mask();
    let score_v = score(&lp, &sample.s, &design);
    let global = score(&lp, &sample.s, &f.mask);
    let den: f32 = design.iter().sum();
    let same: f32 = design.iter().enumerate().filter(|(i, _)| sample.s[*i] == f.s[*i]).map(|(_, &m)| m).sum();
    Design {
        index,
        temperature,
        number,
        sample,
        log_probs: lp,
        score: score_v,
        global_score: global,
        recovery: same / den,
        screen: None,
    }
}

/// Every sample of one structure, in output order. `enc` is `model`'s encoding of `f` (each
/// sample with backbone noise encodes its own noisy copy instead).
fn sample_all(
    model: &ProteinMpnn,
    enc: &Encoded,
    f: &Features,
    opts: &DesignOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<Design> {
    let l = f.len();
    let seed = opts.seed;
    let per = opts.per_temperature;
    let log_odds_mask = pssm_log_odds_mask(f, opts.pssm_threshold);
    // (index, temperature, number) in output order.
    let all: Vec<(usize, f64, usize)> = opts
        .temperatures
        .iter()
        .enumerate()
        .flat_map(|(ti, &t)| (0..per).map(move |s| (ti * per + s, t, s + 1)))
        .collect();
    let draw = |i: usize| {
        let randn = rng::randn(&mut rng::stream(seed, &f.name, Purpose::DesignOrder, i as u64), l);
        let chooser = Multinomial(rng::stream(seed, &f.name, Purpose::DesignDraws, i as u64));
        (randn, chooser)
    };
    if opts.backbone_noise > 0.0 {
        return all
            .par_iter()
            .map(|&(i, t, number)| {
                let g = noisy(f, opts.backbone_noise, seed, i as u64);
                let enc = model.encode(&Batch::new(&[&g], None));
                let sampler = Sampler::new(model, &enc, &g, log_odds_mask.clone(), opts.sampling(t));
                let (randn, mut chooser) = draw(i);
                let sample = sampler.sample(&randn, &mut chooser);
                progress(1);
                finish(model, &enc, &g, i, t, number, sample)
            })
            .collect();
    }
    let mut out = Vec::with_capacity(all.len());
    for (ti, &t) in opts.temperatures.iter().enumerate() {
        let sampler = Sampler::new(model, enc, f, log_odds_mask.clone(), opts.sampling(t));
        let mine = &all[ti * per..(ti + 1) * per];
        // Every sample of a temperature is decoded together, in groups that bound memory and
        // give every worker thread an equal share (8 samples on 2 threads: 2 groups of 4, not
        // one group of 8 and an idle core).
        let share = mine.len().div_ceil(rayon::current_num_threads().max(1));
        let group = DECODE_GROUP.min(share).max(1);
        let done: Vec<Vec<Design>> = mine
            .par_chunks(group)
            .map(|ids| {
                let drawn: Vec<(Vec<f32>, _)> = ids.iter().map(|&(i, _, _)| draw(i)).collect();
                let randns: Vec<&[f32]> = drawn.iter().map(|x| x.0.as_slice()).collect();
                let mut choosers: Vec<_> = drawn.iter().map(|x| x.1.clone()).collect();
                let mut refs: Vec<&mut dyn Chooser> = choosers.iter_mut().map(|c| c as &mut dyn Chooser).collect();
                let samples = sampler.sample_many(&randns, &mut refs);
                let r: Vec<Design> = samples
                    .into_iter()
                    .zip(ids)
                    .map(|(s, &(i, t, number))| finish(model, enc, f, i, t, number, s))
                    .collect();
                progress(r.len());
                r
            })
            .collect();
        out.extend(done.into_iter().flatten());
    }
    out
}

/// The native sequence's official score: one forward pass with its own decoding order (`enc`:
/// `model`'s encoding of `f`).
fn native_scores(model: &ProteinMpnn, enc: &Encoded, f: &Features, seed: u64) -> Scores {
    let randn = super::order_noise(seed, &f.name, 0, f.len());
    let design = f.design_mask();
    let lp = model.forward(enc, &f.s, &decoding_order(&design, &randn));
    Scores { score: score(&lp, &f.s, &design), global_score: score(&lp, &f.s, &f.mask) }
}
