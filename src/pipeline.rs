//! The engine's whole-structure operations, shared by the command line and the tests: scoring
//! sequences, unconditional and conditional probabilities. Interfaces take several sequences of
//! one structure at once; the encoder runs once and is shared by all of them.

use crate::checkpoint::{Architecture, Checkpoint};
use crate::featurize::{Batch, Features};
use crate::kernels::precision::Precision;
use crate::model::decoder::{decoding_order, score};
use crate::model::{ModelError, ProteinMpnn};

/// A loaded model plus where it came from.
#[derive(Debug, Clone)]
pub struct Engine {
    pub model: ProteinMpnn,
    pub source: String,
    pub noise_level: f64,
}

/// Scores of one sequence, the official `score` (designed positions) and `global_score` (all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub score: f32,
    pub global_score: f32,
}

impl Engine {
    /// Builds the model from a checkpoint, inferring its architecture.
    pub fn new(ckpt: &Checkpoint, arch: Architecture) -> Result<Engine, ModelError> {
        Ok(Engine { model: ProteinMpnn::new(ckpt, arch)?, source: ckpt.source.clone(), noise_level: ckpt.noise_level })
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
        Engine { model, source: self.source.clone(), noise_level: self.noise_level }
    }

    /// Official scoring passes: for each `(sequence, randn)` pair, `forward()` with the decoding
    /// order from `randn` over the designed positions, then `score` and `global_score`.
    /// Returns the scores and the log-probabilities `[L, 21]` of each pass.
    pub fn score(&self, f: &Features, passes: &[(Vec<u8>, Vec<f32>)]) -> Vec<(Scores, Vec<f32>)> {
        let batch = Batch::new(&[f], None);
        let enc = self.model.encode(&batch);
        let design = f.design_mask();
        passes
            .iter()
            .map(|(seq, randn)| {
                let order = decoding_order(&design, randn);
                let lp = self.model.forward(&enc, seq, &order);
                let s = Scores { score: score(&lp, seq, &design), global_score: score(&lp, seq, &f.mask) };
                (s, lp)
            })
            .collect()
    }

    /// Official `unconditional_probs()` log-probabilities `[L, 21]`.
    pub fn unconditional(&self, f: &Features) -> Vec<f32> {
        let batch = Batch::new(&[f], None);
        let enc = self.model.encode(&batch);
        self.model.unconditional(&enc)
    }

    /// Official `conditional_probs()` log-probabilities `[L, 21]` (0 outside designed positions).
    pub fn conditional(&self, f: &Features, seq: &[u8], randn: &[f32], backbone_only: bool) -> Vec<f32> {
        let batch = Batch::new(&[f], None);
        let enc = self.model.encode(&batch);
        self.model.conditional(&enc, seq, &f.design_mask(), randn, backbone_only)
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
