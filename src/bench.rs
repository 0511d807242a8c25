//! `mpnn bench`: a reproducible benchmark of scoring and design over real and synthetic
//! backbones, per configuration (checkpoint, k, batch), with peak memory and the speed-up over
//! the plain reference path measured in the same run.

use std::time::Instant;

use serde::Serialize;

use crate::bucket::{Buckets, Router};
use crate::featurize::{featurize, Batch, ChainSelection, Constraints, Features};
use crate::kernels::isa::{self, Isa};
use crate::kernels::precision::Precision;
use crate::model::decoder::decoding_order;
use crate::model::ProteinMpnn;
use crate::pipeline::{Engine, Pass, Workspace};
use crate::rng::{self, Purpose};
use crate::sampler::{Chooser, Multinomial, Sampler, SamplingOptions};
use crate::structure::{Chain, Protein};

/// Default length-bucket boundaries.
pub const BUCKETS: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

/// The bucket label of a length (`≤64`, `≤128`, ..., `>2048`).
pub fn bucket_of(len: usize) -> String {
    BUCKETS
        .iter()
        .find(|&&b| len <= b)
        .map(|b| format!("≤{b}"))
        .unwrap_or_else(|| format!(">{}", BUCKETS[BUCKETS.len() - 1]))
}

/// An idealized all-helix backbone of `len` residues: 20-residue helices (N, CA, C, O from
/// ideal helix geometry) packed on a square lattice 10 Å apart, split into chains of at most
/// `chain_len` residues. Deterministic; protein-like density for the k-NN graph.
pub fn synthetic_backbone(name: &str, len: usize, chain_len: usize) -> Protein {
    const PER_HELIX: usize = 20;
    let helices = len.div_ceil(PER_HELIX);
    let side = (helices as f64).sqrt().ceil() as usize;
    let mut coords = Vec::with_capacity(len);
    for r in 0..len {
        let (hx, i) = (r / PER_HELIX, r % PER_HELIX);
        let (gx, gy) = ((hx % side) as f64 * 10.0, (hx / side) as f64 * 10.0);
        let dir = if hx % 2 == 0 { 1.0 } else { -1.0 };
        let atom = |radius: f64, phase: f64, dz: f64| -> [f64; 3] {
            let t = (i as f64) * 100f64.to_radians() + phase;
            let z = dir * (i as f64 * 1.5 + dz) + (hx / (side * side)) as f64 * 35.0;
            [gx + radius * t.cos(), gy + radius * t.sin(), z]
        };
        coords.push([atom(1.55, -0.45, -0.9), atom(2.3, 0.0, 0.0), atom(1.65, 0.5, 0.9), atom(1.9, 0.75, 1.8)]);
    }
    let letters = b"ACDEFGHIKLMNPQRSTVWY";
    let chains = coords
        .chunks(chain_len.max(1))
        .enumerate()
        .map(|(c, cs)| Chain {
            id: crate::structure::chain_alphabet().get(c).cloned().unwrap_or_else(|| format!("C{c}")),
            sequence: (0..cs.len()).map(|i| letters[(i * 7 + c) % 20] as char).collect(),
            coords: cs.to_vec(),
        })
        .collect();
    Protein { name: name.to_string(), chains }
}

/// Peak resident memory since the last reset, in MiB (Linux; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Resets the peak-memory counter (Linux `clear_refs`), so the next reading covers only what
/// follows.
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").ok();
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub task: String,
    pub structure: String,
    pub length: usize,
    pub bucket: String,
    pub checkpoint: String,
    pub k: usize,
    pub batch: usize,
    /// Structures run together (padded) per batch; 1 for the per-structure rows.
    pub structure_batch: usize,
    pub ms_per_protein: f64,
    pub ms_per_sequence: f64,
    pub residues_per_s: f64,
    pub peak_rss_mib: f64,
    /// The plain reference path, same work, same run (scoring, short structures only).
    pub reference_ms_per_protein: Option<f64>,
    pub speedup_over_reference: Option<f64>,
    /// The kernels' instruction-set path ([`crate::kernels::isa`]).
    pub isa: String,
    /// The dense layers' number format ([`BenchPrecision`]: `f32`, `bf16`, `bf16-emulated`, ...).
    pub precision: String,
    /// Dense-layer arithmetic per protein (counted by [`crate::kernels::count_flops`]), in GFLOP.
    pub gflop_per_protein: f64,
    /// `gflop_per_protein / time`: the dense layers' achieved rate over the whole task.
    pub gflops: f64,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `(label, model)` pairs.
    pub models: Vec<(String, ProteinMpnn)>,
    /// `(name, structure)` pairs (real or synthetic).
    pub structures: Vec<Protein>,
    /// Inference-time k values (`0` = the checkpoint's own).
    pub ks: Vec<usize>,
    /// Sequences per structure scored / designed together.
    pub batches: Vec<usize>,
    pub temperature: f32,
    pub repeats: usize,
    /// Measure the reference path for structures up to this length (0 = never).
    pub reference_max_len: usize,
    pub design: bool,
    pub score: bool,
    /// Structure batch sizes for the "score-set" rows: every structure of the plan scored
    /// through the bucketed, padded batch path (empty = no such rows).
    pub structure_batches: Vec<usize>,
    pub buckets: Buckets,
    /// Instruction-set paths to compare (empty = the process's path only). With several, each
    /// row's repeats are interleaved across the paths (A B C A B C ...), so slow phases of a
    /// noisy machine hit every path alike.
    pub isas: Vec<Isa>,
    /// Number formats to compare (empty = f32 only), interleaved with the paths like them.
    pub precisions: Vec<BenchPrecision>,
}

/// A number format to benchmark: a [`Precision`], and for bf16 whether `vdpbf16ps` is emulated
/// even where the CPU has it (`bf16-emulated`, [`crate::kernels::bf16::force_emulation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchPrecision {
    pub precision: Precision,
    pub bf16_emulated: bool,
}

impl std::str::FromStr for BenchPrecision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        if t == "bf16-emulated" || t == "bf16-emu" {
            return Ok(BenchPrecision { precision: Precision::Bf16, bf16_emulated: true });
        }
        t.parse::<Precision>()
            .map(|precision| BenchPrecision { precision, bf16_emulated: false })
            .map_err(|_| format!("`{s}` is not a precision; use f32, bf16, bf16-emulated, f16 or int8"))
    }
}

impl std::fmt::Display for BenchPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.bf16_emulated {
            f.write_str("bf16-emulated")
        } else {
            write!(f, "{}", self.precision)
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Dense-layer GFLOP of one call of `f` (which also warms the caches up).
fn count_gflop<F: FnMut()>(mut f: F) -> f64 {
    crate::kernels::count_flops(true);
    f();
    crate::kernels::count_flops(false);
    crate::kernels::counted_flops() as f64 / 1e9
}

/// Median milliseconds of `repeats` calls of `f(j)` on each `(path, j)` of `variants`,
/// interleaved (`j` picks the precision's model; bf16 emulation is set as the variant says).
fn time_paths<F: FnMut(usize)>(variants: &[(Isa, usize, bool)], repeats: usize, mut f: F) -> Vec<f64> {
    let mut ms = vec![Vec::new(); variants.len()];
    for _ in 0..repeats.max(1) {
        for (i, &(p, j, emulate)) in variants.iter().enumerate() {
            isa::force(p).expect("benchmark paths are checked by the caller");
            crate::kernels::bf16::force_emulation(emulate);
            let t = Instant::now();
            f(j);
            ms[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    crate::kernels::bf16::force_emulation(false);
    ms.into_iter().map(median).collect()
}

fn time<F: FnMut()>(repeats: usize, mut f: F) -> f64 {
    median(
        (0..repeats.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// A scoring pass of `batch` sequences: encoder once, one decoder pass per sequence.
fn score_once(model: &ProteinMpnn, f: &Features, randns: &[Vec<f32>]) -> f32 {
    let batch = Batch::new(&[f], None);
    let enc = model.encode(&batch);
    let design = f.design_mask();
    let mut acc = 0.0;
    for r in randns {
        let lp = model.forward(&enc, &f.s, &decoding_order(&design, r));
        acc += lp[0];
    }
    acc
}

fn design_once(model: &ProteinMpnn, f: &Features, randns: &[Vec<f32>], temperature: f32) -> usize {
    let batch = Batch::new(&[f], None);
    let enc = model.encode(&batch);
    let lom = crate::sampler::pssm_log_odds_mask(f, 0.0);
    let sampler = Sampler::new(model, &enc, f, lom, SamplingOptions::new(temperature));
    let refs: Vec<&[f32]> = randns.iter().map(|r| r.as_slice()).collect();
    let mut choosers: Vec<Multinomial<rand_chacha::ChaCha8Rng>> =
        (0..randns.len()).map(|i| Multinomial(rng::stream(1, &f.name, Purpose::DesignDraws, i as u64))).collect();
    let mut dyns: Vec<&mut dyn Chooser> = choosers.iter_mut().map(|c| c as &mut dyn Chooser).collect();
    let samples = sampler.sample_many(&refs, &mut dyns);
    let mut n = 0;
    for s in &samples {
        let (score, _) = sampler.scores(s);
        n += s.s.len() + (score > 1e9) as usize;
    }
    n
}

/// Runs the plan; `progress` is called with each finished row.
pub fn run(plan: &Plan, mut progress: impl FnMut(&Row)) -> Vec<Row> {
    let mut rows = Vec::new();
    let home = isa::active();
    let isas = if plan.isas.is_empty() { vec![home] } else { plan.isas.clone() };
    let precisions = if plan.precisions.is_empty() {
        vec![BenchPrecision { precision: Precision::F32, bf16_emulated: false }]
    } else {
        plan.precisions.clone()
    };
    let variants: Vec<(Isa, usize, bool)> =
        isas.iter().flat_map(|&p| precisions.iter().enumerate().map(move |(j, v)| (p, j, v.bf16_emulated))).collect();
    for (label, base) in &plan.models {
        for &k in &plan.ks {
            let model = if k == 0 || k == base.arch.k { base.clone() } else { base.with_k(k) };
            let models: Vec<ProteinMpnn> = precisions
                .iter()
                .map(|v| if v.precision == Precision::F32 { model.clone() } else { model.with_precision(v.precision) })
                .collect();
            let k_used = model.arch.k;
            for p in &plan.structures {
                let f = featurize(p, &ChainSelection::all(p), &Constraints::default(), model.arch.ca_only)
                    .expect("benchmark structures featurize");
                let l = f.len();
                for &b in &plan.batches {
                    let randns: Vec<Vec<f32>> = (0..b)
                        .map(|i| rng::randn(&mut rng::stream(1, &f.name, Purpose::ScoreOrder, i as u64), l))
                        .collect();
                    let mut tasks = Vec::new();
                    if plan.score {
                        tasks.push("score");
                    }
                    if plan.design {
                        tasks.push("design");
                    }
                    for task in tasks {
                        reset_peak_rss();
                        let mut once = |j: usize| match task {
                            "score" => {
                                std::hint::black_box(score_once(&models[j], &f, &randns));
                            }
                            _ => {
                                std::hint::black_box(design_once(&models[j], &f, &randns, plan.temperature));
                            }
                        };
                        let gflop = count_gflop(|| once(0));
                        let times = time_paths(&variants, plan.repeats, &mut once);
                        isa::force(home).expect("the process's own path runs");
                        let peak = peak_rss_mib();
                        for (i, (&(path, j, _), &ms)) in variants.iter().zip(&times).enumerate() {
                            let (reference_ms, speedup) =
                                if i == 0 && task == "score" && l <= plan.reference_max_len && b == 1 {
                                    let r = time(1, || {
                                        let batch = Batch::new(&[&f], None);
                                        let enc = model.encode_reference(&batch);
                                        let order = decoding_order(&f.design_mask(), &randns[0]);
                                        std::hint::black_box(model.forward_reference(&enc, &f.s, &order));
                                    });
                                    (Some(r), Some(r / ms))
                                } else {
                                    (None, None)
                                };
                            let row = Row {
                                task: task.to_string(),
                                structure: f.name.clone(),
                                length: l,
                                bucket: bucket_of(l),
                                checkpoint: label.clone(),
                                k: k_used,
                                batch: b,
                                structure_batch: 1,
                                ms_per_protein: ms,
                                ms_per_sequence: ms / b as f64,
                                residues_per_s: (b * l) as f64 / (ms / 1e3),
                                peak_rss_mib: peak,
                                reference_ms_per_protein: reference_ms,
                                speedup_over_reference: speedup,
                                isa: path.to_string(),
                                precision: precisions[j].to_string(),
                                gflop_per_protein: gflop,
                                gflops: gflop / (ms / 1e3),
                            };
                            progress(&row);
                            rows.push(row);
                        }
                    }
                }
            }
            if plan.score && !plan.structure_batches.is_empty() {
                for row in score_set(plan, label, &model) {
                    progress(&row);
                    rows.push(row);
                }
            }
        }
    }
    rows
}

/// "score-set" rows: every structure of the plan scored (`batch` passes each) through
/// [`Engine::score_many`], grouped by the plan's buckets, `structure_batch` structures at a time.
fn score_set(plan: &Plan, label: &str, model: &ProteinMpnn) -> Vec<Row> {
    let engine = Engine::from_model(model.clone(), label.to_string(), 0.0);
    let feats: Vec<Features> = plan
        .structures
        .iter()
        .map(|p| {
            featurize(p, &ChainSelection::all(p), &Constraints::default(), model.arch.ca_only)
                .expect("benchmark structures featurize")
        })
        .collect();
    let lengths: Vec<usize> = feats.iter().map(Features::len).collect();
    let total: usize = lengths.iter().sum();
    let mut rows = Vec::new();
    for &b in &plan.batches {
        let passes: Vec<Vec<Pass>> = feats
            .iter()
            .map(|f| {
                (0..b)
                    .map(|i| {
                        (f.s.clone(), rng::randn(&mut rng::stream(1, &f.name, Purpose::ScoreOrder, i as u64), f.len()))
                    })
                    .collect()
            })
            .collect();
        for &sb in &plan.structure_batches {
            let Ok(router) = Router::new(plan.buckets.resolve(&lengths), sb) else { continue };
            let groups = router.exact_below(model.arch.k).route(&lengths);
            let padded: usize = groups.iter().map(|g| g.members.len() * g.pad_to).sum();
            reset_peak_rss();
            let mut once = || {
                let mut ws = (usize::MAX, Workspace::new());
                for g in &groups {
                    if ws.0 != g.bucket {
                        ws = (g.bucket, Workspace::new());
                    }
                    let items: Vec<(&Features, &[Pass])> =
                        g.members.iter().map(|&i| (&feats[i], &passes[i][..])).collect();
                    let out = engine.score_many(&items, Some(g.pad_to), &mut ws.1).expect("routed batches are valid");
                    std::hint::black_box(out);
                }
            };
            let gflop = count_gflop(&mut once);
            let ms = time(plan.repeats, once);
            let n = feats.len();
            rows.push(Row {
                task: "score-set".to_string(),
                structure: format!("{n} structures (+{:.0}% padding)", 100.0 * (padded as f64 / total as f64 - 1.0)),
                length: total,
                bucket: plan.buckets.to_string(),
                checkpoint: label.to_string(),
                k: model.arch.k,
                batch: b,
                structure_batch: sb,
                ms_per_protein: ms / n as f64,
                ms_per_sequence: ms / (n * b) as f64,
                residues_per_s: (b * total) as f64 / (ms / 1e3),
                peak_rss_mib: peak_rss_mib(),
                reference_ms_per_protein: None,
                speedup_over_reference: None,
                isa: isa::active().to_string(),
                precision: model.precision.to_string(),
                gflop_per_protein: gflop / n as f64,
                gflops: gflop / (ms / 1e3),
            });
        }
    }
    rows
}

/// A markdown table of the rows.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| task | structure | L | bucket | checkpoint | k | batch | structures/batch | isa | precision | ms/protein | ms/sequence | residues/s | dense GFLOP/protein | dense GFLOP/s | peak RSS (MiB) | reference ms | speed-up |\n\
         | --- | --- | ---: | --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.2} | {:.1} | {:.0} | {} | {} |\n",
            r.task,
            r.structure,
            r.length,
            r.bucket,
            r.checkpoint,
            r.k,
            r.batch,
            r.structure_batch,
            r.isa,
            r.precision,
            r.ms_per_protein,
            r.ms_per_sequence,
            r.residues_per_s,
            r.gflop_per_protein,
            r.gflops,
            r.peak_rss_mib,
            r.reference_ms_per_protein.map(|v| format!("{v:.0}")).unwrap_or_default(),
            r.speedup_over_reference.map(|v| format!("{v:.1}×")).unwrap_or_default(),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_backbones_are_valid_and_deterministic() {
        let p = synthetic_backbone("syn", 230, 100);
        assert_eq!(p.len(), 230);
        assert_eq!(p.chains.len(), 3);
        p.validate(false).unwrap();
        assert_eq!(p, synthetic_backbone("syn", 230, 100));
        // consecutive CAs about 1.5 Å rise + helix turn apart: 3-4 Å like a real helix
        let ca = |i: usize| p.chains[0].coords[i][1];
        let d = ((ca(1)[0] - ca(0)[0]).powi(2) + (ca(1)[1] - ca(0)[1]).powi(2) + (ca(1)[2] - ca(0)[2]).powi(2)).sqrt();
        assert!((3.0..4.5).contains(&d), "{d}");
        assert_eq!(bucket_of(50), "≤64");
        assert_eq!(bucket_of(5000), ">2048");
    }
}

/// One row of `mpnn bench --device gpu`: a task on one structure at one batch size, on the GPU
/// and (same machine, same work) on the CPU.
#[cfg(feature = "gpu")]
#[derive(Debug, Clone, Serialize)]
pub struct GpuRow {
    pub task: &'static str,
    pub structure: String,
    pub length: usize,
    pub bucket: String,
    pub checkpoint: String,
    /// The dense layers' number format on the GPU (`f32`, `f16`).
    pub precision: String,
    /// Score rows of a non-f32 precision: the share of residues whose most probable letter
    /// (first scoring pass) is the GPU float32 model's.
    pub top1_vs_f32: Option<f64>,
    /// Score rows of a non-f32 precision: max |Δ log-probability| against the GPU float32 model
    /// (first scoring pass, every letter of every residue).
    pub max_dlp_vs_f32: Option<f64>,
    /// Sequences (design) or scoring passes (score) asked for.
    pub batch: usize,
    /// Sequences per GPU command buffer (the device's memory limit may split a batch).
    pub gpu_batch: usize,
    pub gpu_ms: f64,
    pub gpu_seq_per_s: f64,
    pub gpu_residues_per_s: f64,
    /// Device memory held: weights + arenas, MiB.
    pub gpu_mib: f64,
    /// The model's weights on the device, MiB (f16: the dense matrices as halves).
    pub weight_mib: f64,
    pub cpu_ms: Option<f64>,
    pub cpu_seq_per_s: Option<f64>,
    pub device: String,
}

/// `mpnn bench --device gpu`: design (seeded multinomial sampling, whole sampler on the GPU)
/// and scoring passes per structure and batch size, the CPU's time for the same work beside
/// (skipped for CPU runs estimated over `cpu_max_seconds`).
#[cfg(feature = "gpu")]
#[allow(clippy::too_many_arguments)]
pub fn run_gpu(
    gpu: &std::sync::Arc<crate::gpu::Gpu>,
    models: &[(String, ProteinMpnn)],
    precisions: &[Precision],
    tasks: &[&'static str],
    structures: &[Protein],
    batches: &[usize],
    temperature: f32,
    repeats: usize,
    with_cpu: bool,
    mut progress: impl FnMut(&GpuRow),
) -> Result<Vec<GpuRow>, crate::gpu::GpuError> {
    use crate::gpu::{Draw, GpuModel};
    let precisions = if precisions.is_empty() { &[Precision::F32][..] } else { precisions };
    for &p in precisions {
        gpu.supports(p)?;
    }
    let mut rows = Vec::new();
    for ((label, base), &precision) in models.iter().flat_map(|m| precisions.iter().map(move |p| (m, p))) {
        let model = &(if precision == Precision::F32 { base.clone() } else { base.with_precision(precision) });
        let gm = GpuModel::new(gpu.clone(), model);
        // The float32 model on the GPU: the reference of the other precisions' accuracy.
        let reference = (precision != Precision::F32).then(|| GpuModel::new(gpu.clone(), base));
        for p in structures {
            let f = featurize(p, &ChainSelection::all(p), &Constraints::default(), model.arch.ca_only)
                .expect("benchmark structures featurize");
            let l = f.len();
            let lom = crate::sampler::pssm_log_odds_mask(&f, 0.0);
            let opts = SamplingOptions::new(temperature);
            let batch = Batch::new(&[&f], None);
            let design = f.design_mask();
            for &b in batches {
                let randns: Vec<Vec<f32>> = (0..b)
                    .map(|i| rng::randn(&mut rng::stream(1, &f.name, Purpose::DesignOrder, i as u64), l))
                    .collect();
                let refs: Vec<&[f32]> = randns.iter().map(|r| r.as_slice()).collect();
                for &task in tasks {
                    let mut err = None;
                    let mut gpu_once = || {
                        let r = match task {
                            "design" => {
                                let mut streams: Vec<_> =
                                    (0..b).map(|i| rng::stream(1, &f.name, Purpose::DesignDraws, i as u64)).collect();
                                let draws: Vec<Draw> = streams.iter_mut().map(|r| Draw::Uniform(r)).collect();
                                gm.sample(model, &f, &lom, &opts, &refs, draws).map(|s| s.len())
                            }
                            _ => {
                                let passes: Vec<(Vec<u8>, Option<Vec<usize>>)> =
                                    randns.iter().map(|r| (f.s.clone(), Some(decoding_order(&design, r)))).collect();
                                gm.forward_passes(model, &batch, &passes).map(|v| v.len())
                            }
                        };
                        if let Err(e) = r {
                            err = Some(e);
                        }
                    };
                    gpu_once(); // warm-up: pipelines, arenas for this bucket
                    let gpu_ms = time(repeats, &mut gpu_once);
                    if let Some(e) = err {
                        return Err(e);
                    }
                    let accuracy = match (&reference, task) {
                        (Some(r), "score") => {
                            let first = [(f.s.clone(), Some(decoding_order(&design, &randns[0])))];
                            let lp = gm.forward_passes(model, &batch, &first)?.remove(0);
                            let want = r.forward_passes(base, &batch, &first)?.remove(0);
                            Some(top1_and_max_delta(&lp, &want, &f.mask))
                        }
                        _ => None,
                    };
                    let cpu_ms = with_cpu.then(|| match task {
                        "design" => time(repeats, || {
                            design_once(model, &f, &randns, temperature);
                        }),
                        _ => time(repeats, || {
                            score_once(model, &f, &randns);
                        }),
                    });
                    let row = GpuRow {
                        task,
                        structure: f.name.clone(),
                        length: l,
                        bucket: bucket_of(l),
                        checkpoint: label.clone(),
                        precision: precision.to_string(),
                        top1_vs_f32: accuracy.map(|a| a.0),
                        max_dlp_vs_f32: accuracy.map(|a| a.1),
                        batch: b,
                        gpu_batch: if task == "design" { b.min(gm.sample_batch_limit(l)) } else { b },
                        gpu_ms,
                        gpu_seq_per_s: b as f64 / (gpu_ms / 1e3),
                        gpu_residues_per_s: (b * l) as f64 / (gpu_ms / 1e3),
                        gpu_mib: (gm.weight_bytes + gpu.arena_bytes()) as f64 / (1 << 20) as f64,
                        weight_mib: gm.weight_bytes as f64 / (1 << 20) as f64,
                        cpu_ms,
                        cpu_seq_per_s: cpu_ms.map(|ms| b as f64 / (ms / 1e3)),
                        device: gpu.adapter.to_string(),
                    };
                    progress(&row);
                    rows.push(row);
                }
            }
        }
    }
    Ok(rows)
}

/// Top-1 agreement over the residues with `mask` 1 and max |Δ| over all of them, of two
/// `[L, 21]` log-probability arrays.
#[cfg(feature = "gpu")]
fn top1_and_max_delta(a: &[f32], b: &[f32], mask: &[f32]) -> (f64, f64) {
    use crate::alphabet::VOCAB;
    let arg = |r: &[f32]| r.iter().enumerate().fold(0, |best, (i, &v)| if v > r[best] { i } else { best });
    let (mut same, mut n, mut d) = (0usize, 0usize, 0f32);
    for ((ra, rb), &m) in a.chunks(VOCAB).zip(b.chunks(VOCAB)).zip(mask) {
        if m == 1.0 {
            n += 1;
            same += (arg(ra) == arg(rb)) as usize;
            d = ra.iter().zip(rb).fold(d, |d, (x, y)| d.max((x - y).abs()));
        }
    }
    (same as f64 / n.max(1) as f64, d as f64)
}

/// The GPU rows as a markdown table.
#[cfg(feature = "gpu")]
pub fn gpu_markdown(rows: &[GpuRow]) -> String {
    let mut s = String::from(
        "| task | structure | L | bucket | checkpoint | precision | batch | GPU batch | GPU ms | GPU seq/s | GPU res/s | GPU MiB | CPU ms | CPU seq/s | GPU speed-up | top-1 vs f32 | max \\|Δ log-prob\\| vs f32 |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let cpu = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {} | {} | {} | {} | {} |\n",
            r.task,
            r.structure,
            r.length,
            r.bucket,
            r.checkpoint,
            r.precision,
            r.batch,
            r.gpu_batch,
            r.gpu_ms,
            r.gpu_seq_per_s,
            r.gpu_residues_per_s,
            r.gpu_mib,
            cpu(r.cpu_ms, 1),
            cpu(r.cpu_seq_per_s, 1),
            r.cpu_ms.map_or("-".to_string(), |c| format!("{:.2}× the CPU", c / r.gpu_ms)),
            r.top1_vs_f32.map_or("-".to_string(), |a| format!("{:.2} %", 100.0 * a)),
            r.max_dlp_vs_f32.map_or("-".to_string(), |d| format!("{d:.2e}")),
        ));
    }
    s
}
