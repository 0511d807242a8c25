//! `mpnn eval`: what a speed/accuracy configuration costs, measured on the user's structures.
//!
//! For every configuration (a checkpoint + k + precision + batch, e.g. a [`crate::preset`] at a
//! [`crate::kernels::precision::Precision`]) and every structure:
//!
//! - **native recovery / perplexity** from the native scoring pass (the official `score` job:
//!   `forward()` with the native sequence and a seeded random decoding order): the fraction of
//!   designed positions whose most likely letter is the native one, and `exp` of the mean
//!   negative log-likelihood of the native letters;
//! - against the **reference configuration** (default: the same checkpoint at its own k in
//!   f32), on the official unconditional probabilities and on the official conditional
//!   probabilities (each position given the rest of the native sequence): per-position
//!   top-1 agreement, mean and max |Δ log p| over all 21 letters, and the mean KL divergence
//!   `KL(reference ‖ configuration)` per position;
//! - **designed recovery**: sequences sampled at the given temperature with the configuration
//!   itself, their mean identity to the native sequence over designed positions;
//! - **speed**: residues per second of scoring passes (encoder + `batch` decoder passes), timed
//!   in the same run as every other configuration.
//!
//! All figures are over designed positions (`chain_M · mask`), pooled over structures.
//! Random weights can show agreement between configurations but not recovery: recovery and
//! perplexity mean something only with trained weights.

use std::time::Instant;

use serde::Serialize;

use crate::alphabet::VOCAB;
use crate::featurize::{Batch, Features};
use crate::model::decoder::decoding_order;
use crate::model::encoder::Encoded;
use crate::model::ProteinMpnn;
use crate::pipeline::Engine;
use crate::rng::{self, Purpose};
use crate::sampler::{pssm_log_odds_mask, Chooser, Multinomial, Sampler, SamplingOptions};

/// One configuration to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// Display name, e.g. `fast/int8`.
    pub name: String,
    /// Preset name (or `custom`).
    pub preset: String,
    /// Checkpoint it runs (file name).
    pub checkpoint: String,
    pub engine: Engine,
    /// Sequences per structure scored together in the speed measurement.
    pub batch: usize,
    /// Index into the reference list of the configuration it is compared with.
    pub reference: usize,
}

/// Run settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Sequences designed per structure for designed recovery (0 = skip).
    pub designs: usize,
    pub temperature: f32,
    /// Timed repeats of the scoring passes (the median is kept).
    pub repeats: usize,
}

/// The outputs of one configuration on one structure that comparisons need.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub native_pass: Vec<f32>,
    pub unconditional: Vec<f32>,
    pub conditional: Vec<f32>,
}

/// Computes the comparison outputs from `f`'s encoding `enc` (deterministic for a seed): what
/// [`Engine::score`], [`Engine::unconditional`] and [`Engine::conditional`] return, sharing one
/// encoder pass.
pub fn outputs(model: &ProteinMpnn, enc: &Encoded, f: &Features, seed: u64) -> Outputs {
    let randn = rng::randn(&mut rng::stream(seed, &f.name, Purpose::ScoreOrder, 0), f.len());
    let design = f.design_mask();
    Outputs {
        native_pass: model.forward(enc, &f.s, &decoding_order(&design, &randn)),
        unconditional: model.unconditional(enc),
        conditional: model.conditional(enc, &f.s, &design, &randn, false),
    }
}

fn encode(engine: &Engine, f: &Features) -> Encoded {
    engine.model.encode(&Batch::new(&[f], None))
}

/// Pooled sums, turned into a [`Row`] at the end.
#[derive(Debug, Clone, Default)]
struct Acc {
    positions: f64,
    recovered: f64,
    nll: f64,
    agree_unconditional: f64,
    agree_conditional: f64,
    abs_dlogp: f64,
    entries: f64,
    max_abs_dlogp: f64,
    kl: f64,
    kl_rows: f64,
    designed_same: f64,
    designed_positions: f64,
    residues_timed: f64,
    seconds: f64,
    reference_residues: f64,
    reference_seconds: f64,
}

/// One line of the result table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub config: String,
    pub preset: String,
    pub checkpoint: String,
    pub k: usize,
    pub precision: String,
    pub batch: usize,
    pub reference: String,
    pub structures: usize,
    pub positions: usize,
    pub native_recovery: f64,
    pub perplexity: f64,
    pub top1_agreement_unconditional: f64,
    pub top1_agreement_conditional: f64,
    pub mean_abs_dlogp: f64,
    pub max_abs_dlogp: f64,
    pub kl: f64,
    pub designed_recovery: Option<f64>,
    pub residues_per_s: f64,
    /// Speed relative to the first reference (the main checkpoint at its own k in f32, unless a
    /// reference preset was chosen) at batch 1, timed beside each measurement of this row.
    pub speedup: f64,
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

impl Acc {
    fn compare(&mut self, mine: &[f32], reference: &[f32], design: &[f32], conditional: bool) {
        for (i, &m) in design.iter().enumerate() {
            if m <= 0.0 {
                continue;
            }
            let (a, b) = (&mine[i * VOCAB..(i + 1) * VOCAB], &reference[i * VOCAB..(i + 1) * VOCAB]);
            let same = (argmax(a) == argmax(b)) as u8 as f64;
            if conditional {
                self.agree_conditional += same;
            } else {
                self.agree_unconditional += same;
            }
            let mut kl = 0f64;
            for (&x, &y) in a.iter().zip(b) {
                let d = (x as f64 - y as f64).abs();
                self.abs_dlogp += d;
                self.max_abs_dlogp = self.max_abs_dlogp.max(d);
                kl += (y as f64).exp() * (y as f64 - x as f64);
            }
            self.entries += VOCAB as f64;
            self.kl += kl;
            self.kl_rows += 1.0;
        }
    }
}

/// Times `batch` scoring passes of `f` (`repeats` times, median) in seconds.
fn time_scoring(engine: &Engine, f: &Features, batch: usize, repeats: usize, seed: u64) -> f64 {
    let passes: Vec<(Vec<u8>, Vec<f32>)> = (0..batch)
        .map(|i| (f.s.clone(), rng::randn(&mut rng::stream(seed, &f.name, Purpose::ScoreOrder, i as u64), f.len())))
        .collect();
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(engine.score(f, &passes));
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Mean identity to the native sequence of `n` designs at `temperature`.
fn designed_identity(
    model: &ProteinMpnn,
    enc: &Encoded,
    f: &Features,
    n: usize,
    temperature: f32,
    seed: u64,
) -> (f64, f64) {
    let sampler = Sampler::new(model, enc, f, pssm_log_odds_mask(f, 0.0), SamplingOptions::new(temperature));
    let randns: Vec<Vec<f32>> =
        (0..n).map(|i| rng::randn(&mut rng::stream(seed, &f.name, Purpose::DesignOrder, i as u64), f.len())).collect();
    let mut choosers: Vec<_> =
        (0..n).map(|i| Multinomial(rng::stream(seed, &f.name, Purpose::DesignDraws, i as u64))).collect();
    let refs: Vec<&[f32]> = randns.iter().map(|r| r.as_slice()).collect();
    let mut dyns: Vec<&mut dyn Chooser> = choosers.iter_mut().map(|c| c as &mut dyn Chooser).collect();
    let design = f.design_mask();
    let (mut same, mut total) = (0f64, 0f64);
    for s in sampler.sample_many(&refs, &mut dyns) {
        for (i, &m) in design.iter().enumerate() {
            if m > 0.0 {
                total += 1.0;
                same += (s.s[i] == f.s[i]) as u8 as f64;
            }
        }
    }
    (same, total)
}

/// Measures every configuration on every structure. `references[r]` is the engine that
/// configurations with `reference == r` are compared with (`references[0]`'s speed, timed beside
/// every configuration, is every speed-up's denominator); `reference_names[r]` names it. `progress` is told each (configuration,
/// structure) as it finishes.
pub fn evaluate(
    configs: &[Config],
    references: &[Engine],
    reference_names: &[String],
    structures: &[Features],
    opts: &Options,
    mut progress: impl FnMut(&str, &str),
) -> Vec<Row> {
    // Reference outputs and speeds, once per reference.
    let ref_out: Vec<Vec<Outputs>> = references
        .iter()
        .map(|e| structures.iter().map(|f| outputs(&e.model, &encode(e, f), f, opts.seed)).collect())
        .collect();
    let mut rows = Vec::new();
    for c in configs {
        let mut acc = Acc::default();
        for (si, f) in structures.iter().enumerate() {
            let enc = encode(&c.engine, f);
            let out = outputs(&c.engine.model, &enc, f, opts.seed);
            let r = &ref_out[c.reference][si];
            let design = f.design_mask();
            for (i, &m) in design.iter().enumerate() {
                if m > 0.0 {
                    let row = &out.native_pass[i * VOCAB..(i + 1) * VOCAB];
                    acc.positions += 1.0;
                    acc.recovered += (argmax(row) == f.s[i] as usize) as u8 as f64;
                    acc.nll -= row[f.s[i] as usize] as f64;
                }
            }
            acc.compare(&out.unconditional, &r.unconditional, &design, false);
            acc.compare(&out.conditional, &r.conditional, &design, true);
            if opts.designs > 0 {
                let (same, total) =
                    designed_identity(&c.engine.model, &enc, f, opts.designs, opts.temperature, opts.seed);
                acc.designed_same += same;
                acc.designed_positions += total;
            }
            // The speed-up's denominator is timed right beside the configuration, so that load
            // changes on a shared machine hit both alike.
            acc.residues_timed += (f.len() * c.batch) as f64;
            acc.seconds += time_scoring(&c.engine, f, c.batch, opts.repeats, opts.seed);
            acc.reference_residues += f.len() as f64;
            acc.reference_seconds += time_scoring(&references[0], f, 1, opts.repeats, opts.seed);
            progress(&c.name, &f.name);
        }
        let pos = acc.positions.max(1.0);
        let speed = acc.residues_timed / acc.seconds.max(1e-12);
        rows.push(Row {
            config: c.name.clone(),
            preset: c.preset.clone(),
            checkpoint: c.checkpoint.clone(),
            k: c.engine.model.arch.k,
            precision: c.engine.model.precision.to_string(),
            batch: c.batch,
            reference: reference_names[c.reference].clone(),
            structures: structures.len(),
            positions: acc.positions as usize,
            native_recovery: acc.recovered / pos,
            perplexity: (acc.nll / pos).exp(),
            top1_agreement_unconditional: acc.agree_unconditional / pos,
            top1_agreement_conditional: acc.agree_conditional / pos,
            mean_abs_dlogp: acc.abs_dlogp / acc.entries.max(1.0),
            max_abs_dlogp: acc.max_abs_dlogp,
            kl: acc.kl / acc.kl_rows.max(1.0),
            designed_recovery: (opts.designs > 0).then(|| acc.designed_same / acc.designed_positions.max(1.0)),
            residues_per_s: speed,
            speedup: speed / (acc.reference_residues / acc.reference_seconds.max(1e-12)),
        });
    }
    rows
}

/// The result table as markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| configuration | checkpoint | k | precision | batch | reference | positions | native recovery | perplexity \
         | top-1 agree (uncond.) | top-1 agree (cond.) | mean abs Δlogp | max abs Δlogp | KL | designed recovery \
         | residues/s | speed-up |\n\
         | --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1}% | {:.2} | {:.2}% | {:.2}% | {:.2e} | {:.2e} | {:.2e} | {} | {:.0} | {:.2}× |\n",
            r.config,
            r.checkpoint,
            r.k,
            r.precision,
            r.batch,
            r.reference,
            r.positions,
            100.0 * r.native_recovery,
            r.perplexity,
            100.0 * r.top1_agreement_unconditional,
            100.0 * r.top1_agreement_conditional,
            r.mean_abs_dlogp,
            r.max_abs_dlogp,
            r.kl,
            r.designed_recovery.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v)),
            r.residues_per_s,
            r.speedup
        ));
    }
    s
}

/// An SVG scatter plot of accuracy (mean top-1 agreement with the reference over unconditional
/// and conditional probabilities) against speed (residues/s, log scale): one numbered point per
/// configuration, and a legend with each number's name, speed and agreement.
pub fn svg_plot(rows: &[Row], title: &str) -> String {
    let (w, h) = (1000.0f64, (120.0 + 16.0 * rows.len() as f64).max(560.0));
    let (left, right, top, bottom) = (80.0, 300.0, 50.0, 70.0);
    let acc = |r: &Row| 50.0 * (r.top1_agreement_unconditional + r.top1_agreement_conditional);
    let speeds: Vec<f64> = rows.iter().map(|r| r.residues_per_s.max(1.0).log10()).collect();
    let (mut x0, mut x1) = speeds.iter().fold((f64::MAX, f64::MIN), |a, &v| (a.0.min(v), a.1.max(v)));
    if x1 <= x0 || x1.is_nan() {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let (x0, x1) = (x0.floor(), x1.ceil());
    let min_acc = rows.iter().map(acc).fold(100.0f64, f64::min);
    let y0 = ((min_acc - 1.0) / 5.0).floor().clamp(0.0, 19.0) * 5.0;
    let y1 = 100.0;
    let px = |v: f64| left + (v - x0) / (x1 - x0) * (w - left - right);
    let py = |v: f64| top + (y1 - v) / (y1 - y0) * (h - top - bottom);
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
        w / 2.0,
        esc(title)
    );
    // Axes and grid.
    s.push_str(&format!(
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n",
        w - left - right,
        h - top - bottom
    ));
    let mut e = x0;
    while e <= x1 + 1e-9 {
        let x = px(e);
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\n<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            h - bottom,
            h - bottom + 18.0,
            10f64.powf(e).round()
        ));
        e += 1.0;
    }
    let mut t = y0;
    while t <= y1 + 1e-9 {
        let y = py(t);
        s.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{t:.0}%</text>\n",
            w - right,
            left - 6.0,
            y + 4.0
        ));
        t += if y1 - y0 > 20.0 { 10.0 } else { 1.0 };
    }
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">scoring speed, residues/s (log scale)</text>\n\
         <text transform=\"translate(20 {}) rotate(-90)\" text-anchor=\"middle\">top-1 agreement with the reference (mean of unconditional and conditional)</text>\n",
        left + (w - left - right) / 2.0,
        h - 20.0,
        top + (h - top - bottom) / 2.0
    ));
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
    for (i, r) in rows.iter().enumerate() {
        let (x, y) = (px(speeds[i]), py(acc(r)));
        let c = colours[i % colours.len()];
        s.push_str(&format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{c}\"><title>{}: {:.0} residues/s, {:.2}%</title></circle>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\" font-size=\"10\">{}</text>\n",
            esc(&r.config),
            r.residues_per_s,
            acc(r),
            x + 6.0,
            y - 5.0 - (i % 4) as f64 * 9.0,
            i + 1
        ));
        // Legend.
        let ly = top + 14.0 + i as f64 * 16.0;
        s.push_str(&format!(
            "<circle cx=\"{}\" cy=\"{:.1}\" r=\"4\" fill=\"{c}\"/><text x=\"{}\" y=\"{:.1}\">{} {} ({:.0}/s, {:.1}%)</text>\n",
            w - right + 14.0,
            ly - 4.0,
            w - right + 24.0,
            ly,
            i + 1,
            esc(&r.config),
            r.residues_per_s,
            acc(r)
        ));
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(rows: &[[f32; 3]]) -> Vec<f32> {
        // Pads 3-letter toy rows to 21 letters of very low probability.
        rows.iter()
            .flat_map(|r| {
                let mut v = vec![-30f32; VOCAB];
                v[..3].copy_from_slice(r);
                v
            })
            .collect()
    }

    #[test]
    fn comparison_counts_agreement_delta_and_kl() {
        let a = lp(&[[-0.1, -2.4, -3.0], [-2.0, -0.2, -3.0]]);
        let b = lp(&[[-0.1, -2.4, -3.0], [-0.2, -2.0, -3.0]]);
        let mut acc = Acc::default();
        acc.compare(&a, &b, &[1.0, 1.0], false);
        assert_eq!(acc.agree_unconditional, 1.0);
        assert!((acc.max_abs_dlogp - 1.8).abs() < 1e-6);
        assert!(acc.kl > 0.0);
        // Identical rows: no divergence; masked rows are skipped.
        let mut same = Acc::default();
        same.compare(&a, &a, &[1.0, 0.0], true);
        assert_eq!((same.agree_conditional, same.kl_rows, same.max_abs_dlogp), (1.0, 1.0, 0.0));
        assert!(same.kl.abs() < 1e-12);
    }

    #[test]
    fn plot_is_svg_with_a_point_per_row() {
        let row = |name: &str, speed: f64, agree: f64| Row {
            config: name.to_string(),
            preset: name.to_string(),
            checkpoint: "c.pt".into(),
            k: 48,
            precision: "f32".into(),
            batch: 1,
            reference: "ref".into(),
            structures: 1,
            positions: 10,
            native_recovery: 0.5,
            perplexity: 5.0,
            top1_agreement_unconditional: agree,
            top1_agreement_conditional: agree,
            mean_abs_dlogp: 0.0,
            max_abs_dlogp: 0.0,
            kl: 0.0,
            designed_recovery: None,
            residues_per_s: speed,
            speedup: 1.0,
        };
        let svg = svg_plot(&[row("baseline", 800.0, 1.0), row("fast<&>", 2000.0, 0.93)], "t");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle cx").count(), 4); // point + legend marker each
        assert!(svg.contains("fast&lt;&amp;&gt;"));
        let md = markdown(&[row("baseline", 800.0, 1.0)]);
        assert!(md.contains("| baseline | c.pt | 48 | f32 | 1 | ref | 10 | 50.0% | 5.00 | 100.00% |"), "{md}");
    }
}
