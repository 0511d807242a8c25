//! The two `.pt` files of the LigandMPNN scripts, with the official keys, types, shapes and
//! dtypes:
//!
//! - `run.py --save_stats 1` → `stats/NAME.pt`: a dict of torch tensors (`generated_sequences`
//!   int64 [N, L], `sampling_probs` float32 [N, L, 20], `log_probs` float32 [N, L, 21],
//!   `decoding_order` int64 [N, L], `native_sequence` / `mask` int32 [L], `chain_mask` int32 [L]
//!   or int64 [L] when fixed or redesigned residues were given), `seed` int, `temperature` float.
//! - `score.py` → `NAME.pt`: numpy arrays (`logits`, `probs`, `log_probs` float32 [N, L, 21];
//!   `decoding_order` int64 [N, L] for `--autoregressive_score 1`, float32 [N, L, L] for
//!   `--single_aa_score 1`; `native_sequence`, `mask` int32 [L]; `chain_mask` as above), `seed`,
//!   `alphabet` (21 letters), `residue_names` {index: name}, `sequence` (native letters),
//!   `mean_of_probs` / `std_of_probs` {name: {letter: numpy float32}} over the N passes.
//!
//! `N` = batch_size × number_of_batches.

use super::torch_save::{str_dict, Array, Dtype, PyValue};
use crate::alphabet::ALPHABET;

/// Integer type of `chain_mask` in the official files: int32 when the chain mask came from
/// `--chains_to_design` alone, int64 once it was multiplied by the fixed / redesigned positions.
pub fn chain_mask_array(chain_mask: &[f32], dtype: Dtype) -> Array {
    let l = chain_mask.len();
    match dtype {
        Dtype::I64 => Array::i64(&[l], &chain_mask.iter().map(|&v| v as i64).collect::<Vec<_>>()),
        _ => Array::i32(&[l], &chain_mask.iter().map(|&v| v as i32).collect::<Vec<_>>()),
    }
}

/// Everything `run.py` saves in `stats/NAME.pt`.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// [N][L] designed sequences (alphabet indices).
    pub generated_sequences: Vec<Vec<u8>>,
    /// [N][L·20]
    pub sampling_probs: Vec<Vec<f32>>,
    /// [N][L·21]
    pub log_probs: Vec<Vec<f32>>,
    /// [N][L]
    pub decoding_order: Vec<Vec<usize>>,
    pub native_sequence: Vec<u8>,
    pub mask: Vec<f32>,
    pub chain_mask: Vec<f32>,
    pub chain_mask_dtype: Dtype,
    pub seed: i64,
    pub temperature: f64,
}

impl RunStats {
    pub fn to_py(&self) -> PyValue {
        let n = self.generated_sequences.len();
        let l = self.native_sequence.len();
        let cat_f32 = |rows: &[Vec<f32>]| rows.iter().flatten().copied().collect::<Vec<f32>>();
        str_dict(vec![
            (
                "generated_sequences",
                PyValue::Tensor(Array::i64(
                    &[n, l],
                    &self.generated_sequences.iter().flatten().map(|&v| v as i64).collect::<Vec<_>>(),
                )),
            ),
            ("sampling_probs", PyValue::Tensor(Array::f32(&[n, l, 20], &cat_f32(&self.sampling_probs)))),
            ("log_probs", PyValue::Tensor(Array::f32(&[n, l, 21], &cat_f32(&self.log_probs)))),
            (
                "decoding_order",
                PyValue::Tensor(Array::i64(
                    &[n, l],
                    &self.decoding_order.iter().flatten().map(|&v| v as i64).collect::<Vec<_>>(),
                )),
            ),
            (
                "native_sequence",
                PyValue::Tensor(Array::i32(&[l], &self.native_sequence.iter().map(|&v| v as i32).collect::<Vec<_>>())),
            ),
            ("mask", PyValue::Tensor(Array::i32(&[l], &self.mask.iter().map(|&v| v as i32).collect::<Vec<_>>()))),
            ("chain_mask", PyValue::Tensor(chain_mask_array(&self.chain_mask, self.chain_mask_dtype))),
            ("seed", PyValue::Int(self.seed)),
            ("temperature", PyValue::Float(self.temperature)),
        ])
    }
}

/// The decoding orders `score.py` saves.
#[derive(Debug, Clone)]
pub enum ScoreOrders {
    /// `--autoregressive_score 1`: one order per pass, [N][L].
    Autoregressive(Vec<Vec<usize>>),
    /// `--single_aa_score 1`: per pass, per position i, the order used for i: [N][L][L]
    /// (saved as float32, as the official code builds it).
    SingleAa(Vec<Vec<Vec<usize>>>),
}

/// Everything `score.py` saves in `NAME.pt`.
#[derive(Debug, Clone)]
pub struct ScoreStats {
    /// [N][L·21]
    pub logits: Vec<Vec<f32>>,
    /// [N][L·21]
    pub log_probs: Vec<Vec<f32>>,
    pub decoding_order: ScoreOrders,
    pub native_sequence: Vec<u8>,
    pub mask: Vec<f32>,
    pub chain_mask: Vec<f32>,
    pub chain_mask_dtype: Dtype,
    pub seed: i64,
    /// `run.py` residue names (chain + number + insertion code), one per residue.
    pub residue_names: Vec<String>,
}

/// numpy's float32 `mean` and `std` over the first axis (sequential float32 sums).
fn mean_std(rows: &[&[f32]], j: usize) -> (f32, f32) {
    let n = rows.len() as f32;
    let mut sum = 0.0f32;
    for r in rows {
        sum += r[j];
    }
    let mean = sum / n;
    let mut sq = 0.0f32;
    for r in rows {
        let d = r[j] - mean;
        sq += d * d;
    }
    (mean, (sq / n).sqrt())
}

impl ScoreStats {
    pub fn to_py(&self) -> PyValue {
        let n = self.log_probs.len();
        let l = self.native_sequence.len();
        let cat = |rows: &[Vec<f32>]| rows.iter().flatten().copied().collect::<Vec<f32>>();
        let probs: Vec<Vec<f32>> = self.log_probs.iter().map(|r| r.iter().map(|v| v.exp()).collect()).collect();
        let order = match &self.decoding_order {
            ScoreOrders::Autoregressive(o) => {
                Array::i64(&[o.len(), l], &o.iter().flatten().map(|&v| v as i64).collect::<Vec<_>>())
            }
            ScoreOrders::SingleAa(o) => {
                Array::f32(&[o.len(), l, l], &o.iter().flatten().flatten().map(|&v| v as f32).collect::<Vec<_>>())
            }
        };
        let letters: Vec<String> = ALPHABET.chars().map(|c| c.to_string()).collect();
        let rows: Vec<&[f32]> = probs.iter().map(|r| r.as_slice()).collect();
        let mut mean_d = Vec::with_capacity(l);
        let mut std_d = Vec::with_capacity(l);
        for (i, name) in self.residue_names.iter().enumerate() {
            let mut m = Vec::with_capacity(21);
            let mut s = Vec::with_capacity(21);
            for (a, letter) in letters.iter().enumerate() {
                let (mean, std) = if rows.is_empty() { (f32::NAN, f32::NAN) } else { mean_std(&rows, i * 21 + a) };
                m.push((PyValue::str(letter.clone()), PyValue::NpF32(mean)));
                s.push((PyValue::str(letter.clone()), PyValue::NpF32(std)));
            }
            mean_d.push((PyValue::str(name.clone()), PyValue::Dict(m)));
            std_d.push((PyValue::str(name.clone()), PyValue::Dict(s)));
        }
        str_dict(vec![
            ("logits", PyValue::NdArray(Array::f32(&[n, l, 21], &cat(&self.logits)))),
            ("probs", PyValue::NdArray(Array::f32(&[n, l, 21], &cat(&probs)))),
            ("log_probs", PyValue::NdArray(Array::f32(&[n, l, 21], &cat(&self.log_probs)))),
            ("decoding_order", PyValue::NdArray(order)),
            (
                "native_sequence",
                PyValue::NdArray(Array::i32(&[l], &self.native_sequence.iter().map(|&v| v as i32).collect::<Vec<_>>())),
            ),
            ("mask", PyValue::NdArray(Array::i32(&[l], &self.mask.iter().map(|&v| v as i32).collect::<Vec<_>>()))),
            ("chain_mask", PyValue::NdArray(chain_mask_array(&self.chain_mask, self.chain_mask_dtype))),
            ("seed", PyValue::Int(self.seed)),
            ("alphabet", PyValue::List(letters.iter().map(|c| PyValue::str(c.clone())).collect())),
            (
                "residue_names",
                PyValue::Dict(
                    self.residue_names
                        .iter()
                        .enumerate()
                        .map(|(i, r)| (PyValue::Int(i as i64), PyValue::str(r.clone())))
                        .collect(),
                ),
            ),
            (
                "sequence",
                PyValue::List(
                    self.native_sequence
                        .iter()
                        .map(|&s| PyValue::str(crate::alphabet::letter_of(s).to_string()))
                        .collect(),
                ),
            ),
            ("mean_of_probs", PyValue::Dict(mean_d)),
            ("std_of_probs", PyValue::Dict(std_d)),
        ])
    }
}
