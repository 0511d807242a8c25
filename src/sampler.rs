//! The official sequence sampler: `sample()` and `tied_sample()` of `protein_mpnn_utils.py`.
//!
//! Decoding is incremental: each step computes the decoder states of the step's position(s)
//! from the states of the positions decoded before (kept per layer), turns the top state into
//! probabilities with every constraint applied (omitted letters, amino-acid bias, per-residue
//! bias, PSSM bias / log-odds, per-residue omissions), and lets a [`Chooser`] pick the letter
//! (a seeded multinomial for real runs, argmax or a forced path for parity tests).
//!
//! Several sequences of the same structure are decoded together by [`Sampler::sample_many`]:
//! each sequence keeps its own layer states, sequence and decoding order, and every step runs
//! the decoder once over one row per sequence (virtual rows `seq · L + row`, see
//! [`ProteinMpnn::decoder_rows`]).

use rand::Rng;

use crate::alphabet::{self, VOCAB};
use crate::featurize::Features;
use crate::kernels::{log_softmax_inplace, softmax_inplace};
use crate::model::decoder::{decoding_order, score, DecoderContext, DecoderScratch};
use crate::model::encoder::Encoded;
use crate::model::ProteinMpnn;
use rayon::prelude::*;

/// Letter index used in the working sequence for "no letter yet": its sequence-embedding row is
/// zero, like the official `h_S` before a position is assigned (this matters within a tied
/// group, whose members see each other as decoded before the group's letter is chosen).
const UNSET: u8 = VOCAB as u8;

/// Global sampling settings (the official command-line options).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingOptions {
    pub temperature: f32,
    /// 1 for letters never to sample (`--omit_AAs`, default `X`).
    pub omit_aas: [f32; VOCAB],
    /// Per-letter bias added to the logits before dividing by the temperature (`--bias_AA_jsonl`).
    pub bias_aa: [f32; VOCAB],
    pub pssm_multi: f32,
    pub pssm_log_odds_flag: bool,
    pub pssm_bias_flag: bool,
}

impl SamplingOptions {
    /// The official defaults at `temperature`: omit `X`, no bias, no PSSM.
    pub fn new(temperature: f32) -> Self {
        SamplingOptions {
            temperature,
            omit_aas: omit_vector("X"),
            bias_aa: [0.0; VOCAB],
            pssm_multi: 0.0,
            pssm_log_odds_flag: false,
            pssm_bias_flag: false,
        }
    }
}

/// The 21-vector with 1 at each letter of `letters` (unknown characters are ignored, like the
/// official code does).
pub fn omit_vector(letters: &str) -> [f32; VOCAB] {
    let mut v = [0f32; VOCAB];
    for c in letters.chars() {
        if let Some(i) = alphabet::index_of(c) {
            v[i as usize] = 1.0;
        }
    }
    v
}

/// `(pssm_log_odds > threshold)` as 0/1, `[L, 21]`.
pub fn pssm_log_odds_mask(features: &Features, threshold: f32) -> Vec<f32> {
    features.pssm_log_odds.iter().map(|&v| if v > threshold { 1.0 } else { 0.0 }).collect()
}

/// Picks the letter of one step from its final probabilities.
///
/// `step_rows` are the positions decoded at this step (one, or a whole tied group in its listed
/// order). The returned letter is replaced by the native one at non-designed positions.
pub trait Chooser: Send {
    fn choose(&mut self, probs: &[f32; VOCAB], step_rows: &[usize]) -> u8;
}

/// Inverse-CDF draw from `probs` with a uniform `u` in `[0, 1)`: the first letter whose
/// cumulative probability exceeds `u` (rounding leftovers go to the last letter with
/// non-zero probability).
pub fn draw(probs: &[f32; VOCAB], u: f32) -> u8 {
    let mut cum = 0f32;
    let mut last = 0u8;
    for (a, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cum += p;
            last = a as u8;
            if u < cum {
                return a as u8;
            }
        }
    }
    last
}

/// The official `torch.multinomial(probs, 1)` replaced by an inverse-CDF draw from a seeded RNG
/// (one `f32` uniform per step).
#[derive(Debug, Clone)]
pub struct Multinomial<R: Rng>(pub R);

impl<R: Rng + Send> Chooser for Multinomial<R> {
    fn choose(&mut self, probs: &[f32; VOCAB], _step_rows: &[usize]) -> u8 {
        let u: f32 = self.0.gen();
        draw(probs, u)
    }
}

/// The most probable letter (first one on ties, like `torch.argmax`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Argmax;

impl Chooser for Argmax {
    fn choose(&mut self, probs: &[f32; VOCAB], _step_rows: &[usize]) -> u8 {
        let mut best = 0;
        for a in 1..VOCAB {
            if probs[a] > probs[best] {
                best = a;
            }
        }
        best as u8
    }
}

/// A fixed path: the letter of `seq` at the step's first position.
#[derive(Debug, Clone, Copy)]
pub struct Forced<'a>(pub &'a [u8]);

impl Chooser for Forced<'_> {
    fn choose(&mut self, _probs: &[f32; VOCAB], step_rows: &[usize]) -> u8 {
        self.0[step_rows[0]]
    }
}

impl<C: Chooser + ?Sized> Chooser for &mut C {
    fn choose(&mut self, probs: &[f32; VOCAB], step_rows: &[usize]) -> u8 {
        (**self).choose(probs, step_rows)
    }
}

/// One sampled sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `[L]` letter indices.
    pub s: Vec<u8>,
    /// `[L, 21]` the probabilities each letter was drawn from (untied: 0 where not designed;
    /// tied: stored for every member of a sampled group; 0 at skipped missing residues).
    pub probs: Vec<f32>,
    /// The decoding order used (for tied sampling the rewritten one, groups contiguous).
    pub decoding_order: Vec<usize>,
    /// `[L, 21]` untempered log-probabilities the decoder gave each position when it was
    /// decoded — what `forward()` with `decoding_order` computes for the final sequence, so the
    /// official scores come from them without a second pass. `None` for tied sampling, where a
    /// group's later members saw its earlier ones without their letters (so `forward()` differs).
    pub log_probs: Option<Vec<f32>>,
}

/// The official steps of a decoding order: without tied groups one position per step; with
/// them, walking the order, each position not yet placed brings its whole (first) group, in the
/// group's listed order, as one step.
pub fn decoding_steps(order: &[usize], tied: &[Vec<usize>]) -> Vec<Vec<usize>> {
    if tied.is_empty() {
        return order.iter().map(|&t| vec![t]).collect();
    }
    let n = order.len();
    let mut group_of = vec![usize::MAX; n];
    for (g, members) in tied.iter().enumerate().rev() {
        for &m in members {
            group_of[m] = g;
        }
    }
    // `group_of[m]` holds the first group listing `m` (filled in reverse).
    let mut placed = vec![false; n];
    let mut steps = Vec::new();
    for &t in order {
        if placed[t] {
            continue;
        }
        let step = if group_of[t] == usize::MAX { vec![t] } else { tied[group_of[t]].clone() };
        for &m in &step {
            placed[m] = true;
        }
        steps.push(step);
    }
    steps
}

/// Samples sequences of one structure.
pub struct Sampler<'m, 'a> {
    model: &'m ProteinMpnn,
    enc: &'a Encoded,
    ctx: DecoderContext<'a>,
    features: &'a Features,
    log_odds_mask: Vec<f32>,
    options: SamplingOptions,
    /// `chain_M * chain_M_pos * mask`
    design: Vec<f32>,
}

/// Per-sequence decoding state (the layer states live in [`Batched`]).
struct SeqState {
    steps: Vec<Vec<usize>>,
    order: Vec<usize>,
    s: Vec<u8>,
    probs: Vec<f32>,
    /// Tempered (and, when tied, beta-weighted) logits of the current step.
    logits: [f32; VOCAB],
    /// Untempered log-probabilities by position (untied sampling).
    log_probs: Vec<f32>,
    /// The current step met a missing residue at this position.
    missing: Option<usize>,
}

/// Layer states of all sequences decoded together, by virtual row `seq · L + row`.
struct Batched {
    /// Position of each virtual row in its sequence's decoding order.
    pos: Vec<usize>,
    /// Working sequences read at backward neighbours (`UNSET` until assigned).
    seq: Vec<u8>,
    /// Encoder states and their layer-0 `W1v` projections, one copy per sequence.
    h0: Vec<f32>,
    nbr0: Vec<f32>,
    /// `h[l]`: layer `l + 1` states `[N·L, H]`.
    h: Vec<Vec<f32>>,
    /// `nbr[l]`: `W1v` of decoder layer `l + 1` applied to `h[l]`.
    nbr: Vec<Vec<f32>>,
}

impl<'m, 'a> Sampler<'m, 'a> {
    /// A sampler for the single structure encoded in `enc` (batch of one) with its features
    /// and `pssm_log_odds_mask` (`[L, 21]`, see [`pssm_log_odds_mask`]).
    pub fn new(
        model: &'m ProteinMpnn,
        enc: &'a Encoded,
        features: &'a Features,
        pssm_log_odds_mask: Vec<f32>,
        options: SamplingOptions,
    ) -> Self {
        let l = features.len();
        assert_eq!(enc.graph.b, 1, "the sampler decodes one structure at a time");
        assert_eq!(enc.mask.len(), l, "features and encoding disagree on the length");
        assert_eq!(pssm_log_odds_mask.len(), l * VOCAB);
        let mut ctx = model.decoder_context_full(enc);
        let h = model.hidden();
        for t in &mut ctx.seq_table {
            t.resize((VOCAB + 1) * h, 0.0);
        }
        let design = features.design_mask();
        Sampler { model, enc, ctx, features, log_odds_mask: pssm_log_odds_mask, options, design }
    }

    pub fn options(&self) -> &SamplingOptions {
        &self.options
    }

    /// One sequence from `randn` (`[L]`, the official random vector of the decoding order).
    pub fn sample(&self, randn: &[f32], chooser: &mut dyn Chooser) -> Sample {
        self.sample_many(&[randn], &mut [chooser]).pop().unwrap()
    }

    /// Several sequences, one per `randn` / chooser: split into one group per worker thread,
    /// each group decoded together (one decoder call per step over all its sequences).
    /// Every sequence depends only on its own `randn` and chooser, so the grouping never
    /// changes a result.
    pub fn sample_many(&self, randns: &[&[f32]], choosers: &mut [&mut dyn Chooser]) -> Vec<Sample> {
        assert_eq!(randns.len(), choosers.len());
        let threads = rayon::current_num_threads().max(1);
        if randns.len() < 2 || threads < 2 {
            return self.sample_group(randns, choosers);
        }
        let per = randns.len().div_ceil(threads);
        let mut out: Vec<Vec<Sample>> = Vec::new();
        randns
            .par_chunks(per)
            .zip(choosers.par_chunks_mut(per))
            .map(|(r, c)| self.sample_group(r, c))
            .collect_into_vec(&mut out);
        out.into_iter().flatten().collect()
    }

    /// Sequences decoded together on the calling thread.
    fn sample_group(&self, randns: &[&[f32]], choosers: &mut [&mut dyn Chooser]) -> Vec<Sample> {
        let l = self.features.len();
        let h = self.model.hidden();
        let layers = self.model.decoder_layers.len();
        let n_seq = randns.len();
        let mut batched = Batched {
            pos: vec![0; n_seq * l],
            seq: vec![UNSET; n_seq * l],
            h0: self.enc.h_v.repeat(n_seq),
            nbr0: self.ctx.enc_nbr[0].repeat(n_seq),
            h: vec![vec![0.0; n_seq * l * h]; layers],
            nbr: vec![vec![0.0; n_seq * l * h]; layers.saturating_sub(1)],
        };
        let mut states: Vec<SeqState> = randns
            .iter()
            .enumerate()
            .map(|(si, randn)| {
                assert_eq!(randn.len(), l);
                let base = decoding_order(&self.design, randn);
                let steps = decoding_steps(&base, &self.features.tied_positions);
                let order: Vec<usize> = steps.iter().flatten().copied().collect();
                for (p, &t) in order.iter().enumerate() {
                    batched.pos[si * l + t] = p;
                }
                SeqState {
                    steps,
                    order,
                    s: vec![0; l],
                    probs: vec![0.0; l * VOCAB],
                    logits: [0.0; VOCAB],
                    log_probs: vec![0.0; l * VOCAB],
                    missing: None,
                }
            })
            .collect();
        let mut scratch = DecoderScratch::default();
        let max_steps = states.iter().map(|s| s.steps.len()).max().unwrap_or(0);
        for step in 0..max_steps {
            self.run_step(&mut states, &mut batched, step, choosers, &mut scratch);
        }
        let tied = !self.features.tied_positions.is_empty();
        // Missing residues are never decoded; `forward()` gives them the states 0, so their
        // log-probabilities are those of `W_out`'s bias alone.
        let mut missing_row = self.model.w_out.bias.clone().unwrap_or_else(|| vec![0.0; VOCAB]);
        log_softmax_inplace(&mut missing_row);
        for st in states.iter_mut() {
            for t in (0..l).filter(|&t| self.features.mask[t] == 0.0) {
                st.log_probs[t * VOCAB..(t + 1) * VOCAB].copy_from_slice(&missing_row);
            }
        }
        states
            .into_iter()
            .map(|st| Sample {
                s: st.s,
                probs: st.probs,
                decoding_order: st.order,
                log_probs: (!tied).then_some(st.log_probs),
            })
            .collect()
    }

    /// Decoder layers for virtual rows `rows` (at most one per sequence); returns the
    /// tempered logits `W_out(h_top) / T`, `[rows, 21]`.
    fn decode_rows(&self, b: &mut Batched, rows: &[usize], scratch: &mut DecoderScratch) -> Vec<f32> {
        let h = self.model.hidden();
        let layers = self.model.decoder_layers.len();
        let n = rows.len();
        let mut out = vec![0f32; n * h];
        let mut proj = vec![0f32; n * h];
        for l in 0..layers {
            {
                let (h_prev, nbr_prev): (&[f32], &[f32]) =
                    if l == 0 { (&b.h0, &b.nbr0) } else { (&b.h[l - 1], &b.nbr[l - 1]) };
                let pos = &b.pos;
                self.model.decoder_rows(
                    &self.ctx,
                    l,
                    rows,
                    h_prev,
                    nbr_prev,
                    &b.seq,
                    &|i, j| pos[j] < pos[i],
                    scratch,
                    &mut out,
                );
            }
            if l + 1 < layers {
                self.model.decoder_layers[l + 1].w1_nbr.forward(&out, n, &mut proj);
            }
            for (r, &row) in rows.iter().enumerate() {
                b.h[l][row * h..(row + 1) * h].copy_from_slice(&out[r * h..(r + 1) * h]);
                if l + 1 < layers {
                    b.nbr[l][row * h..(row + 1) * h].copy_from_slice(&proj[r * h..(r + 1) * h]);
                }
            }
        }
        let mut logits = vec![0f32; n * VOCAB];
        self.model.w_out.forward(&out, n, &mut logits);
        logits
    }

    /// The official probability pipeline at position `t` from tempered logits.
    fn constrain(&self, logits: &[f32; VOCAB], t: usize) -> [f32; VOCAB] {
        let o = &self.options;
        let f = self.features;
        let temp = o.temperature;
        let bbr = &f.bias_by_res[t * VOCAB..(t + 1) * VOCAB];
        let mut p = [0f32; VOCAB];
        for a in 0..VOCAB {
            p[a] = logits[a] - o.omit_aas[a] * 1e8 + o.bias_aa[a] / temp + bbr[a] / temp;
        }
        softmax_inplace(&mut p);
        if o.pssm_bias_flag {
            let c = o.pssm_multi * f.pssm_coef[t];
            let bias = &f.pssm_bias[t * VOCAB..(t + 1) * VOCAB];
            for a in 0..VOCAB {
                p[a] = (1.0 - c) * p[a] + c * bias[a];
            }
        }
        if o.pssm_log_odds_flag {
            let m = &self.log_odds_mask[t * VOCAB..(t + 1) * VOCAB];
            let mut pm = [0f32; VOCAB];
            for a in 0..VOCAB {
                pm[a] = p[a] * m[a];
                pm[a] += p[a] * 0.001;
            }
            let sum: f32 = pm.iter().sum();
            for a in 0..VOCAB {
                p[a] = pm[a] / sum;
            }
        }
        let omit = &f.omit_aa_mask[t * VOCAB..(t + 1) * VOCAB];
        let mut pm = [0f32; VOCAB];
        for a in 0..VOCAB {
            pm[a] = p[a] * (1.0 - omit[a]);
        }
        let sum: f32 = pm.iter().sum();
        for a in 0..VOCAB {
            p[a] = pm[a] / sum;
        }
        p
    }

    /// Step `step` of every sequence that has it: the k-th members of all sequences' steps are
    /// decoded together (members of one tied group run one after the other, as officially).
    fn run_step(
        &self,
        states: &mut [SeqState],
        b: &mut Batched,
        step: usize,
        choosers: &mut [&mut dyn Chooser],
        scratch: &mut DecoderScratch,
    ) {
        let f = self.features;
        let l = f.len();
        let tied = !f.tied_positions.is_empty();
        let active: Vec<usize> = (0..states.len()).filter(|&si| step < states[si].steps.len()).collect();
        for &si in &active {
            states[si].logits = [0.0; VOCAB];
            states[si].missing = None;
        }
        let max_members = active.iter().map(|&si| states[si].steps[step].len()).max().unwrap_or(0);
        let mut rows = Vec::with_capacity(active.len());
        let mut owners = Vec::with_capacity(active.len());
        for m in 0..max_members {
            rows.clear();
            owners.clear();
            for &si in &active {
                let st = &mut states[si];
                if st.missing.is_some() || m >= st.steps[step].len() {
                    continue;
                }
                let t = st.steps[step][m];
                if f.mask[t] == 0.0 {
                    st.missing = Some(t);
                } else {
                    rows.push(si * l + t);
                    owners.push(si);
                }
            }
            if rows.is_empty() {
                continue;
            }
            let raw = self.decode_rows(b, &rows, scratch);
            let temp = self.options.temperature;
            for (r, &si) in owners.iter().enumerate() {
                let st = &mut states[si];
                let t = rows[r] - si * l;
                let mut lg = [0f32; VOCAB];
                for (o, &v) in lg.iter_mut().zip(&raw[r * VOCAB..(r + 1) * VOCAB]) {
                    *o = v / temp;
                }
                if !tied {
                    let lp = &mut st.log_probs[t * VOCAB..(t + 1) * VOCAB];
                    lp.copy_from_slice(&raw[r * VOCAB..(r + 1) * VOCAB]);
                    log_softmax_inplace(lp);
                }
                if tied {
                    let n = st.steps[step].len() as f32;
                    let beta = f.tied_beta[t];
                    for (acc, &v) in st.logits.iter_mut().zip(&lg) {
                        *acc += beta * v / n;
                    }
                } else {
                    st.logits.copy_from_slice(&lg);
                }
            }
        }
        for &si in &active {
            let st = &mut states[si];
            let members = &st.steps[step];
            let last = *members.last().unwrap();
            if let Some(t) = st.missing {
                // Missing residue: the native letter, nothing sampled, no probabilities stored.
                for &m in members {
                    st.s[m] = f.s[t];
                    b.seq[si * l + m] = f.s[t];
                }
                continue;
            }
            let probs = self.constrain(&st.logits, last);
            let drawn = choosers[si].choose(&probs, members);
            let letter = if self.design[last] == 1.0 { drawn } else { f.s[last] };
            for &m in members {
                st.s[m] = letter;
                b.seq[si * l + m] = letter;
                let row = &mut st.probs[m * VOCAB..(m + 1) * VOCAB];
                if tied {
                    row.copy_from_slice(&probs);
                } else {
                    let c = self.design[m];
                    row.iter_mut().zip(&probs).for_each(|(r, &p)| *r = c * p);
                }
            }
        }
    }

    /// Official scores of a sample: `(score, global_score)`, the mean negative log-likelihood
    /// of the sequence under `forward()` with the sample's decoding order, over designed
    /// positions and over all present residues. Untied samples carry those log-probabilities
    /// already; tied ones run `forward()`.
    pub fn scores(&self, sample: &Sample) -> (f32, f32) {
        match &sample.log_probs {
            Some(lp) => (score(lp, &sample.s, &self.design), score(lp, &sample.s, &self.features.mask)),
            None => scores(self.model, self.enc, self.features, sample),
        }
    }
}

/// `(score, global_score)` of `sample` the official way (see [`Sampler::scores`]).
pub fn scores(model: &ProteinMpnn, enc: &Encoded, features: &Features, sample: &Sample) -> (f32, f32) {
    let lp = model.forward(enc, &sample.s, &sample.decoding_order);
    (score(&lp, &sample.s, &features.design_mask()), score(&lp, &sample.s, &features.mask))
}
