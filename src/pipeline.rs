//! The engine's whole-structure operations, shared by the command line and the tests: scoring
//! sequences, unconditional and conditional probabilities. Interfaces take several sequences of
//! one structure at once; the encoder runs once and is shared by all of them.
//!
//! The `*_many` twins run several structures together, padded to one length with masks (the
//! groups come from [`crate::bucket::Router`]), with a [`Workspace`] reused from batch to batch.
//! Each structure's results are identical, bit for bit, to the one-structure functions'.

use crate::alphabet::VOCAB;
use crate::checkpoint::{Architecture, Checkpoint};
use crate::featurize::{Batch, Features};
use crate::kernels::precision::Precision;
use crate::model::decoder::{decoding_order, score};
use crate::model::encoder::Encoded;
use crate::model::{ModelError, ProteinMpnn};

/// A loaded model plus where it came from.
#[derive(Debug, Clone)]
pub struct Engine {
    pub model: ProteinMpnn,
    pub source: String,
    pub noise_level: f64,
    /// The same model on a GPU (`--device gpu`/`auto`): the passes below run there.
    #[cfg(feature = "gpu")]
    pub gpu: Option<std::sync::Arc<crate::gpu::GpuModel>>,
}

/// Scores of one sequence, the official `score` (designed positions) and `global_score` (all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub score: f32,
    pub global_score: f32,
}

/// `(sequence, randn)`: one pass over a structure — the sequence scored (or conditioned on)
/// and the random vector its decoding order comes from.
pub type Pass = (Vec<u8>, Vec<f32>);

/// One scoring pass's result: the scores and the log-probabilities `[L, 21]`.
pub type Scored = (Scores, Vec<f32>);

/// Why structures cannot run together as one batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error("{name}: {what} features, but the model is {model}; featurize with the model's --ca_only setting")]
    ModelMismatch { name: String, what: &'static str, model: &'static str },
    #[error(
        "{name} has {len} residues, fewer than the model's k = {k}: padding it to {pad_to} would add padded \
         positions to its neighbour lists and change its results; run it unpadded (bucket::Router::exact_below)"
    )]
    ShortPadded { name: String, len: usize, k: usize, pad_to: usize },
    #[error("{name}: pass {pass} has a {what} of length {found}, but the structure has {len} residues")]
    WrongLength { name: String, pass: usize, what: &'static str, found: usize, len: usize },
}

/// Buffers for running batches of one bucket: the padded batch and the padded per-pass inputs,
/// sized by the first (largest) batch of a bucket and reused by the following ones. (The
/// model's own intermediate arrays, edge features and encoder states, are still allocated per
/// batch inside the model.)
#[derive(Debug, Default)]
pub struct Workspace {
    batch: Option<Batch>,
    seq: Vec<u8>,
    order: Vec<usize>,
    design: Vec<f32>,
    randn: Vec<f32>,
    batches: usize,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace::default()
    }

    /// Batches run with this workspace so far.
    pub fn batches_run(&self) -> usize {
        self.batches
    }

    /// Rows (structures × padded length) the buffers hold without growing.
    pub fn capacity_rows(&self) -> usize {
        self.batch.as_ref().map_or(0, Batch::capacity_rows)
    }

    /// Pads `items` into the reused batch.
    fn fill(&mut self, items: &[&Features], pad_to: usize) -> &Batch {
        self.batches += 1;
        let batch = self.batch.get_or_insert_with(Batch::empty);
        batch.fill(items, Some(pad_to));
        batch
    }
}

impl Engine {
    /// Builds the model from a checkpoint, inferring its architecture.
    pub fn new(ckpt: &Checkpoint, arch: Architecture) -> Result<Engine, ModelError> {
        Ok(Engine::from_model(ProteinMpnn::new(ckpt, arch)?, ckpt.source.clone(), ckpt.noise_level))
    }

    /// An engine for `model` on the CPU.
    pub fn from_model(model: ProteinMpnn, source: String, noise_level: f64) -> Engine {
        Engine {
            model,
            source,
            noise_level,
            #[cfg(feature = "gpu")]
            gpu: None,
        }
    }

    /// The same engine running on `device` (the weights are uploaded once here).
    pub fn on_device(&self, device: &crate::device::Device) -> Engine {
        let e = self.clone();
        #[cfg(feature = "gpu")]
        let e = Engine {
            gpu: match device {
                // A precision this GPU cannot run (bf16, int8; f16 without SHADER_F16) stays on
                // the CPU (the CLI refuses such a combination before: `Device::for_precision`).
                crate::device::Device::Gpu(g) => match g.supports(self.model.precision) {
                    Ok(()) => Some(std::sync::Arc::new(crate::gpu::GpuModel::new(g.clone(), &self.model))),
                    Err(e) => {
                        eprintln!("warning: {e}; running on the CPU");
                        None
                    }
                },
                crate::device::Device::Cpu => None,
            },
            ..e
        };
        let _ = device;
        e
    }

    /// Whether the passes run on a GPU.
    pub fn on_gpu(&self) -> bool {
        #[cfg(feature = "gpu")]
        if self.gpu.is_some() {
            return true;
        }
        false
    }

    /// `gpu`'s result when there is a GPU; `None` without one, or when the GPU fails (with a
    /// warning: the caller runs the CPU path, the same numbers to ~1e-5).
    #[cfg(feature = "gpu")]
    fn try_gpu<T>(&self, gpu: impl FnOnce(&crate::gpu::GpuModel) -> Result<T, crate::gpu::GpuError>) -> Option<T> {
        let g = self.gpu.as_ref()?;
        match gpu(g) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("warning: {e}; running this structure on the CPU");
                None
            }
        }
    }

    pub fn arch(&self) -> Architecture {
        self.model.arch
    }

    /// The same checkpoint with `k` neighbours (`None`: its own) and dense layers in
    /// `precision`. With `(None, F32)` it is the exact model.
    pub fn with_options(&self, k: Option<usize>, precision: Precision) -> Engine {
        let mut model =
            if precision == self.model.precision { self.model.clone() } else { self.model.with_precision(precision) };
        if let Some(k) = k {
            model = model.with_k(k);
        }
        Engine {
            model,
            source: self.source.clone(),
            noise_level: self.noise_level,
            #[cfg(feature = "gpu")]
            gpu: None,
        }
    }

    /// Official scoring passes: for each `(sequence, randn)` pair, `forward()` with the decoding
    /// order from `randn` over the designed positions, then `score` and `global_score`.
    /// Returns the scores and the log-probabilities `[L, 21]` of each pass.
    pub fn score(&self, f: &Features, passes: &[(Vec<u8>, Vec<f32>)]) -> Vec<(Scores, Vec<f32>)> {
        let batch = Batch::new(&[f], None);
        let design = f.design_mask();
        let orders: Vec<Vec<usize>> = passes.iter().map(|(_, randn)| decoding_order(&design, randn)).collect();
        let cpu = || {
            let enc = self.model.encode(&batch);
            passes.iter().zip(&orders).map(|((seq, _), order)| self.model.forward(&enc, seq, order)).collect()
        };
        #[cfg(feature = "gpu")]
        let lps: Option<Vec<Vec<f32>>> = self.try_gpu(|g| {
            let p: Vec<(Vec<u8>, Option<Vec<usize>>)> =
                passes.iter().zip(&orders).map(|((s, _), o)| (s.clone(), Some(o.clone()))).collect();
            g.forward_passes(&self.model, &batch, &p)
        });
        #[cfg(not(feature = "gpu"))]
        let lps: Option<Vec<Vec<f32>>> = None;
        #[cfg_attr(not(feature = "gpu"), allow(clippy::unnecessary_literal_unwrap))]
        let lps: Vec<Vec<f32>> = lps.unwrap_or_else(cpu);
        passes
            .iter()
            .zip(lps)
            .map(|((seq, _), lp)| {
                let s = Scores { score: score(&lp, seq, &design), global_score: score(&lp, seq, &f.mask) };
                (s, lp)
            })
            .collect()
    }

    /// Official `unconditional_probs()` log-probabilities `[L, 21]`.
    pub fn unconditional(&self, f: &Features) -> Vec<f32> {
        let batch = Batch::new(&[f], None);
        #[cfg(feature = "gpu")]
        if let Some(lp) = self.try_gpu(|g| g.unconditional(&self.model, &batch)) {
            return lp;
        }
        self.model.unconditional(&self.model.encode(&batch))
    }

    /// Official `conditional_probs()` log-probabilities `[L, 21]` (0 outside designed positions).
    pub fn conditional(&self, f: &Features, seq: &[u8], randn: &[f32], backbone_only: bool) -> Vec<f32> {
        let batch = Batch::new(&[f], None);
        let design = f.design_mask();
        #[cfg(feature = "gpu")]
        if let Some(lp) = self.try_gpu(|g| g.conditional(&self.model, &batch, seq, &design, randn, backbone_only)) {
            return lp;
        }
        self.model.conditional(&self.model.encode(&batch), seq, &design, randn, backbone_only)
    }

    /// Checks that `items` can run as one batch padded to `pad_to` without changing a result,
    /// and returns the padded length (`pad_to`, or the longest item when that is longer).
    fn check_batch(&self, items: &[(&Features, &[Pass])], pad_to: Option<usize>) -> Result<usize, BatchError> {
        let arch = self.arch();
        let l = items.iter().map(|(f, _)| f.len()).max().unwrap_or(0).max(pad_to.unwrap_or(0));
        let kind = |ca: bool| if ca { "CA-only" } else { "full-backbone" };
        for (f, passes) in items {
            if f.ca_only != arch.ca_only {
                return Err(BatchError::ModelMismatch {
                    name: f.name.clone(),
                    what: kind(f.ca_only),
                    model: kind(arch.ca_only),
                });
            }
            if f.len() < arch.k && f.len() < l {
                return Err(BatchError::ShortPadded { name: f.name.clone(), len: f.len(), k: arch.k, pad_to: l });
            }
            for (p, (seq, randn)) in passes.iter().enumerate() {
                for (what, found) in [("sequence", seq.len()), ("random vector", randn.len())] {
                    if found != f.len() {
                        return Err(BatchError::WrongLength {
                            name: f.name.clone(),
                            pass: p + 1,
                            what,
                            found,
                            len: f.len(),
                        });
                    }
                }
            }
        }
        Ok(l)
    }

    /// Checks `items` as one batch, pads them into `ws` and encodes them: the padded length, the
    /// encoding and each item's design mask.
    fn encode_many(
        &self,
        items: &[(&Features, &[Pass])],
        pad_to: Option<usize>,
        ws: &mut Workspace,
    ) -> Result<(usize, Encoded, Vec<Vec<f32>>), BatchError> {
        let l = self.check_batch(items, pad_to)?;
        let feats: Vec<&Features> = items.iter().map(|(f, _)| *f).collect();
        let enc = self.model.encode(ws.fill(&feats, l));
        Ok((l, enc, feats.iter().map(|f| f.design_mask()).collect()))
    }

    /// [`Engine::score`] for several structures at once: they are padded to one length (the
    /// longest, or `pad_to`), encoded together, and pass `p` of every structure is decoded in
    /// one `forward()`. Returns, per structure, what [`Engine::score`] returns for it alone,
    /// bit for bit. Structures shorter than the model's k must not be padded (an error).
    pub fn score_many(
        &self,
        items: &[(&Features, &[Pass])],
        pad_to: Option<usize>,
        ws: &mut Workspace,
    ) -> Result<Vec<Vec<Scored>>, BatchError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        #[cfg(feature = "gpu")]
        if let Some(g) = &self.gpu {
            let l = self.check_batch(items, pad_to)?;
            let feats: Vec<&Features> = items.iter().map(|(f, _)| *f).collect();
            let designs: Vec<Vec<f32>> = feats.iter().map(|f| f.design_mask()).collect();
            let most = items.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
            let passes: Vec<(Vec<u8>, Option<Vec<usize>>)> = (0..most)
                .map(|p| {
                    let (mut seq, mut order) = (Vec::new(), Vec::new());
                    for ((f, passes), design) in items.iter().zip(&designs) {
                        let n = f.len();
                        match passes.get(p) {
                            Some((s, randn)) => {
                                seq.extend_from_slice(s);
                                order.extend(decoding_order(design, randn));
                            }
                            None => {
                                seq.extend_from_slice(&f.s);
                                order.extend(0..n);
                            }
                        }
                        seq.resize(seq.len() + l - n, 0);
                        order.extend(n..l);
                    }
                    (seq, Some(order))
                })
                .collect();
            let batch = ws.fill(&feats, l).clone();
            match g.forward_passes(&self.model, &batch, &passes) {
                Ok(lps) => {
                    let mut out: Vec<Vec<Scored>> = items.iter().map(|(_, p)| Vec::with_capacity(p.len())).collect();
                    for (p, lp) in lps.iter().enumerate() {
                        for (bi, ((f, passes), design)) in items.iter().zip(&designs).enumerate() {
                            if let Some((seq, _)) = passes.get(p) {
                                let lp = lp[bi * l * VOCAB..][..f.len() * VOCAB].to_vec();
                                let s =
                                    Scores { score: score(&lp, seq, design), global_score: score(&lp, seq, &f.mask) };
                                out[bi].push((s, lp));
                            }
                        }
                    }
                    return Ok(out);
                }
                Err(e) => eprintln!("warning: {e}; running this batch on the CPU"),
            }
        }
        let (l, enc, designs) = self.encode_many(items, pad_to, ws)?;
        let mut out: Vec<Vec<Scored>> = items.iter().map(|(_, p)| Vec::with_capacity(p.len())).collect();
        let most = items.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
        for p in 0..most {
            // Items without a pass `p` decode their native sequence in index order (discarded).
            ws.seq.clear();
            ws.order.clear();
            for ((f, passes), design) in items.iter().zip(&designs) {
                let n = f.len();
                match passes.get(p) {
                    Some((seq, randn)) => {
                        ws.seq.extend_from_slice(seq);
                        ws.order.extend(decoding_order(design, randn));
                    }
                    None => {
                        ws.seq.extend_from_slice(&f.s);
                        ws.order.extend(0..n);
                    }
                }
                ws.seq.resize(ws.seq.len() + l - n, 0);
                ws.order.extend(n..l);
            }
            let lp = self.model.forward(&enc, &ws.seq, &ws.order);
            for (bi, ((f, passes), design)) in items.iter().zip(&designs).enumerate() {
                if let Some((seq, _)) = passes.get(p) {
                    let lp = lp[bi * l * VOCAB..][..f.len() * VOCAB].to_vec();
                    let s = Scores { score: score(&lp, seq, design), global_score: score(&lp, seq, &f.mask) };
                    out[bi].push((s, lp));
                }
            }
        }
        Ok(out)
    }

    /// [`Engine::unconditional`] for several structures at once (see [`Engine::score_many`]).
    pub fn unconditional_many(
        &self,
        items: &[&Features],
        pad_to: Option<usize>,
        ws: &mut Workspace,
    ) -> Result<Vec<Vec<f32>>, BatchError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let checked: Vec<(&Features, &[Pass])> = items.iter().map(|f| (*f, &[][..])).collect();
        let l = self.check_batch(&checked, pad_to)?;
        let batch = ws.fill(items, l);
        #[cfg(feature = "gpu")]
        let lp = self.try_gpu(|g| g.unconditional(&self.model, batch));
        #[cfg(not(feature = "gpu"))]
        let lp: Option<Vec<f32>> = None;
        #[cfg_attr(not(feature = "gpu"), allow(clippy::unnecessary_literal_unwrap))]
        let lp = lp.unwrap_or_else(|| self.model.unconditional(&self.model.encode(batch)));
        Ok(items.iter().enumerate().map(|(bi, f)| lp[bi * l * VOCAB..][..f.len() * VOCAB].to_vec()).collect())
    }

    /// [`Engine::conditional`] for several structures at once: per structure, one result per
    /// pass `(sequence, randn)`, each what [`Engine::conditional`] returns for it alone.
    pub fn conditional_many(
        &self,
        items: &[(&Features, &[Pass])],
        backbone_only: bool,
        pad_to: Option<usize>,
        ws: &mut Workspace,
    ) -> Result<Vec<Vec<Vec<f32>>>, BatchError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        #[cfg(feature = "gpu")]
        let (l, enc, designs) = if self.gpu.is_some() {
            let l = self.check_batch(items, pad_to)?;
            let feats: Vec<&Features> = items.iter().map(|(f, _)| *f).collect();
            ws.fill(&feats, l);
            (l, None, feats.iter().map(|f| f.design_mask()).collect::<Vec<_>>())
        } else {
            let (l, enc, designs) = self.encode_many(items, pad_to, ws)?;
            (l, Some(enc), designs)
        };
        #[cfg(not(feature = "gpu"))]
        let (l, enc, designs) = {
            let (l, enc, designs) = self.encode_many(items, pad_to, ws)?;
            (l, Some(enc), designs)
        };
        let mut out: Vec<Vec<Vec<f32>>> = items.iter().map(|(_, p)| Vec::with_capacity(p.len())).collect();
        let most = items.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
        for p in 0..most {
            // Items without a pass `p` get no designed positions, hence no work.
            let (seq, design, randn) = (&mut ws.seq, &mut ws.design, &mut ws.randn);
            seq.clear();
            design.clear();
            randn.clear();
            for ((f, passes), d) in items.iter().zip(&designs) {
                let n = f.len();
                match passes.get(p) {
                    Some((s, r)) => {
                        seq.extend_from_slice(s);
                        design.extend_from_slice(d);
                        randn.extend_from_slice(r);
                    }
                    None => {
                        seq.extend_from_slice(&f.s);
                        design.resize(design.len() + n, 0.0);
                        randn.resize(randn.len() + n, 0.0);
                    }
                }
                seq.resize(seq.len() + l - n, 0);
                design.resize(design.len() + l - n, 0.0);
                randn.resize(randn.len() + l - n, 0.0);
            }
            let cpu = |enc: &Encoded| self.model.conditional(enc, &ws.seq, &ws.design, &ws.randn, backbone_only);
            let lp = match &enc {
                Some(enc) => cpu(enc),
                #[cfg(feature = "gpu")]
                None => {
                    let batch = ws.batch.as_ref().expect("filled above");
                    self.try_gpu(|g| g.conditional(&self.model, batch, &ws.seq, &ws.design, &ws.randn, backbone_only))
                        .unwrap_or_else(|| cpu(&self.model.encode(batch)))
                }
                #[cfg(not(feature = "gpu"))]
                None => unreachable!("the CPU path always encodes"),
            };
            for (bi, (f, passes)) in items.iter().enumerate() {
                if passes.len() > p {
                    out[bi].push(lp[bi * l * VOCAB..][..f.len() * VOCAB].to_vec());
                }
            }
        }
        Ok(out)
    }
}

/// Mean and (population) standard deviation, as numpy computes them for the printed summary.
pub fn mean_std(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (f32::NAN, f32::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, var.sqrt() as f32)
}

/// numpy's `format_float_positional(np.float32(x), unique=False, precision=4)`: 4 decimals.
pub fn fmt4(x: f32) -> String {
    format!("{:.4}", x)
}
