//! The ProteinMPNN network, one struct per reference module, loaded by the checkpoint's own
//! parameter names.
//!
//! - [`features`]: `ProteinFeatures` / `CA_ProteinFeatures` (k-NN graph, RBFs, positional
//!   encodings, orientations) → edge features `E` and neighbour lists `E_idx`.
//! - [`encoder`]: `EncLayer` stack → node and edge embeddings.
//! - [`decoder`]: `DecLayer` stack with a decoding order → log-probabilities; incremental
//!   decoding for the sampler; [`cone`]: the rows a per-target conditional pass recomputes.

pub mod cone;
pub mod decoder;
pub mod encoder;
pub mod features;
pub mod graph;
pub mod layers;
pub mod reference;
pub mod topk;
pub mod torch_order;

use crate::checkpoint::{Architecture, Checkpoint, Tensor};
use crate::kernels::int8;
use crate::kernels::precision::Precision;
use crate::kernels::{LayerNorm, Linear};
use layers::{DecLayer, EncLayer, FeedForward};

/// Errors building a model from tensors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{source_name}: tensor `{name}` is missing; this is not a ProteinMPNN checkpoint layout mpnn supports")]
    Missing { source_name: String, name: String },
    #[error("{source_name}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { source_name: String, name: String, found: Vec<usize>, expected: Vec<usize> },
}

/// Model weights.
#[derive(Debug, Clone)]
pub struct ProteinMpnn {
    pub arch: Architecture,
    /// `features.embeddings.linear` (66 → 16)
    pub pos_embedding: Linear,
    /// `features.edge_embedding` (416 or 167 → H, no bias)
    pub edge_embedding: Linear,
    pub norm_edges: LayerNorm,
    pub w_e: Linear,
    /// `W_s` embedding table `[21, H]`
    pub w_s: Vec<f32>,
    pub encoder_layers: Vec<EncLayer>,
    pub decoder_layers: Vec<DecLayer>,
    pub w_out: Linear,
    /// Number format of the dense layers (f32 unless [`ProteinMpnn::with_precision`] changed it).
    pub precision: Precision,
}

/// Number of positional-encoding features.
pub const NUM_POSITIONAL: usize = 16;
/// Maximum relative offset of the positional encoding.
pub const MAX_RELATIVE: i64 = 32;
/// RBFs per atom pair.
pub const NUM_RBF: usize = 16;
/// The official code divides message sums by this constant (not by k).
pub const MESSAGE_SCALE: f32 = 30.0;

/// Node rows per parallel work item of the per-node layers ([`forward_par`]).
pub(crate) const NODE_CHUNK: usize = 32;

/// `out = layer(x)` for node rows `x` (`[rows, n_in]`), in parallel over runs of
/// [`NODE_CHUNK`] rows: every form of [`Linear`] computes each row from that row alone, so the
/// result is the bits of [`Linear::forward`] for any thread count.
pub(crate) fn forward_par(layer: &Linear, x: &[f32], out: &mut [f32]) {
    use rayon::prelude::*;
    let (n_in, n_out) = (layer.n_in, layer.n_out);
    let rows = x.len() / n_in.max(1);
    out[..rows * n_out]
        .par_chunks_mut(NODE_CHUNK * n_out)
        .zip(x.par_chunks(NODE_CHUNK * n_in))
        .for_each(|(o, x)| layer.forward(x, x.len() / n_in, o));
}

/// Reads named tensors of a checkpoint into layers, checking shapes.
pub(crate) struct Loader<'a> {
    pub(crate) ckpt: &'a Checkpoint,
}

impl Loader<'_> {
    pub(crate) fn tensor(&self, name: &str, shape: &[usize]) -> Result<&Tensor, ModelError> {
        let t = self
            .ckpt
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::Missing { source_name: self.ckpt.source.clone(), name: name.to_string() })?;
        if t.shape != shape {
            return Err(ModelError::Shape {
                source_name: self.ckpt.source.clone(),
                name: name.to_string(),
                found: t.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        Ok(t)
    }
    pub(crate) fn linear(&self, prefix: &str, n_out: usize, n_in: usize, bias: bool) -> Result<Linear, ModelError> {
        let w = self.tensor(&format!("{prefix}.weight"), &[n_out, n_in])?.data.clone();
        let b = if bias { Some(self.tensor(&format!("{prefix}.bias"), &[n_out])?.data.clone()) } else { None };
        Ok(Linear::new(w, b, n_out, n_in))
    }
    pub(crate) fn norm(&self, prefix: &str, d: usize) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm {
            gamma: self.tensor(&format!("{prefix}.weight"), &[d])?.data.clone(),
            beta: self.tensor(&format!("{prefix}.bias"), &[d])?.data.clone(),
        })
    }
    pub(crate) fn ffn(&self, prefix: &str, h: usize) -> Result<FeedForward, ModelError> {
        Ok(FeedForward {
            w_in: self.linear(&format!("{prefix}.W_in"), 4 * h, h, true)?,
            w_out: self.linear(&format!("{prefix}.W_out"), h, 4 * h, true)?,
        })
    }
}

impl ProteinMpnn {
    /// Builds the model from a checkpoint with the given architecture.
    pub fn new(ckpt: &Checkpoint, arch: Architecture) -> Result<Self, ModelError> {
        let ld = Loader { ckpt };
        let h = arch.hidden;
        let edge_in = if arch.ca_only { NUM_POSITIONAL + NUM_RBF * 9 + 7 } else { NUM_POSITIONAL + NUM_RBF * 25 };
        let encoder_layers = (0..arch.encoder_layers)
            .map(|i| {
                let p = format!("encoder_layers.{i}");
                Ok(EncLayer::new(
                    ld.linear(&format!("{p}.W1"), h, 3 * h, true)?,
                    ld.linear(&format!("{p}.W2"), h, h, true)?,
                    ld.linear(&format!("{p}.W3"), h, h, true)?,
                    ld.linear(&format!("{p}.W11"), h, 3 * h, true)?,
                    ld.linear(&format!("{p}.W12"), h, h, true)?,
                    ld.linear(&format!("{p}.W13"), h, h, true)?,
                    ld.norm(&format!("{p}.norm1"), h)?,
                    ld.norm(&format!("{p}.norm2"), h)?,
                    ld.norm(&format!("{p}.norm3"), h)?,
                    ld.ffn(&format!("{p}.dense"), h)?,
                ))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let decoder_layers = (0..arch.decoder_layers)
            .map(|i| {
                let p = format!("decoder_layers.{i}");
                Ok(DecLayer::new(
                    ld.linear(&format!("{p}.W1"), h, 4 * h, true)?,
                    ld.linear(&format!("{p}.W2"), h, h, true)?,
                    ld.linear(&format!("{p}.W3"), h, h, true)?,
                    ld.norm(&format!("{p}.norm1"), h)?,
                    ld.norm(&format!("{p}.norm2"), h)?,
                    ld.ffn(&format!("{p}.dense"), h)?,
                ))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(ProteinMpnn {
            arch,
            pos_embedding: ld.linear(
                "features.embeddings.linear",
                NUM_POSITIONAL,
                2 * MAX_RELATIVE as usize + 2,
                true,
            )?,
            edge_embedding: ld.linear("features.edge_embedding", h, edge_in, false)?,
            norm_edges: ld.norm("features.norm_edges", h)?,
            w_e: ld.linear("W_e", h, h, true)?,
            w_s: ld.tensor("W_s.weight", &[arch.vocab, h])?.data.clone(),
            encoder_layers,
            decoder_layers,
            w_out: ld.linear("W_out", arch.vocab, h, true)?,
            precision: Precision::F32,
        })
    }

    pub fn hidden(&self) -> usize {
        self.arch.hidden
    }

    /// The same weights with `k` neighbours per residue at inference time. Below the
    /// checkpoint's own k this is an approximation (the message sums are divided by a fixed
    /// 30, and the model never saw fewer neighbours); its accuracy cost must be measured.
    pub fn with_k(&self, k: usize) -> ProteinMpnn {
        let mut m = self.clone();
        m.arch.k = k;
        m
    }

    /// The same weights with every dense layer after the featurization computed in `precision`
    /// (see [`crate::kernels::precision`]). The featurization (`ProteinFeatures`: coordinates,
    /// neighbours, RBFs, positional encodings and the edge embedding that reads them) stays
    /// float32; for bf16/f16 the sequence embedding table is rounded too. From f32 weights, `F32`
    /// gives back the exact model.
    pub fn with_precision(&self, precision: Precision) -> ProteinMpnn {
        let p = |l: &Linear| l.with_precision(precision);
        // W8A8 quantizes the per-edge layers (the [L·K, H] products, ~95 % of the arithmetic)
        // and the feed-forwards as the plan says; the other per-node layers stay float32 (see
        // `crate::kernels::int8::w8a8`).
        let w8a8 = precision == Precision::Int8 && int8::algorithm() == int8::Algorithm::W8A8;
        let node_precision = if w8a8 { Precision::F32 } else { precision };
        let n = |l: &Linear| l.with_precision(node_precision);
        let plan = int8_plan();
        // A per-edge layer's form under W8A8: the first plan entry naming it (see `INT8_PLAN`),
        // else `default`.
        let g = |group: &str, i: usize, l: &Linear, default: Option<&Linear>| {
            let (group, part) = group.split_once('.').unwrap_or((group, ""));
            let named = |k: &str| k == group || k == format!("{group}{i}") || k == format!("{group}{i}.{part}");
            let entry = plan.iter().find_map(|e| {
                let (form, name) = e.split_once(':').unwrap_or(("f32", e));
                named(name).then_some(form)
            });
            match entry {
                _ if !w8a8 => p(l),
                None => default.cloned().unwrap_or_else(|| p(l)),
                Some("f32") => l.with_precision(Precision::F32),
                Some("x2") => p(l).with_residual_weights(),
                Some("a16") => l.with_precision_algorithm(precision, int8::Algorithm::W8A16),
                Some("w12") => l.with_wide_int8(),
                Some(_) => p(l), // `w8a8` (`check_int8_plan` admits no other form)
            }
        };
        // A layer's position-wise feed-forward (per node) as the plan says (`enc_ffn`,
        // `dec_ffn`), float32 when it names none.
        let ffn = |group: &str, i: usize, f: &FeedForward| FeedForward {
            w_in: g(&format!("{group}.w_in"), i, &f.w_in, Some(&n(&f.w_in))),
            w_out: g(&format!("{group}.w_out"), i, &f.w_out, Some(&n(&f.w_out))),
        };
        ProteinMpnn {
            arch: self.arch,
            pos_embedding: self.pos_embedding.clone(),
            // Under W8A8 as the plan says (float32 by default: quantizing its 416 raw inputs
            // with one-pass int8 weights costs 1-2 points of top-1 agreement).
            edge_embedding: if w8a8 {
                g("edge_emb", 0, &self.edge_embedding, Some(&self.edge_embedding))
            } else {
                self.edge_embedding.with_precision(Precision::F32)
            },
            norm_edges: self.norm_edges.clone(),
            w_e: g("w_e", 0, &self.w_e, Some(&n(&self.w_e))),
            w_s: self.w_s.iter().map(|&v| precision.round(v)).collect(),
            encoder_layers: self
                .encoder_layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    // The first layers stay float32 as a whole (only the reference code reads
                    // them) and are split there; each block then takes its own form, so no
                    // weights are quantized only to be thrown away.
                    let mut e = EncLayer::new(
                        l.w1.clone(),
                        g("enc_node.w2", i, &l.w2, None),
                        n(&l.w3),
                        l.w11.clone(),
                        g("enc_edge.w12", i, &l.w12, None),
                        g("enc_edge.w13", i, &l.w13, None),
                        l.norm1.clone(),
                        l.norm2.clone(),
                        l.norm3.clone(),
                        ffn("enc_ffn", i, &l.dense),
                    );
                    e.w1_blocks[1] = g("enc_node.w1", i, &e.w1_blocks[1], None);
                    e.w11_blocks[1] = g("enc_edge.w11", i, &e.w11_blocks[1], None);
                    for i in [0, 2] {
                        e.w1_blocks[i] = n(&e.w1_blocks[i]);
                        e.w11_blocks[i] = n(&e.w11_blocks[i]);
                    }
                    e
                })
                .collect(),
            decoder_layers: self
                .decoder_layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut d = DecLayer::new(
                        l.w1.clone(),
                        g("dec.w2", i, &l.w2, None),
                        n(&l.w3),
                        l.norm1.clone(),
                        l.norm2.clone(),
                        ffn("dec_ffn", i, &l.dense),
                    );
                    d.w1_edge = g("dec.w1", i, &d.w1_edge, None);
                    d.w1_self = n(&d.w1_self);
                    d.w1_nbr = n(&d.w1_nbr);
                    d.w1_seq = n(&d.w1_seq);
                    d
                })
                .collect(),
            // bf16 keeps the output layer (h → 21 logits, < 0.1 % of the arithmetic) in float32:
            // its rounding lands on the logits undamped (see kernels::bf16, "Agreement"); W8A8
            // keeps it in float32 like every per-node layer.
            w_out: if precision == Precision::Bf16 { self.w_out.clone() } else { n(&self.w_out) },
            precision,
        }
    }
}

/// The variable that replaces [`INT8_PLAN`]: `MPNN_INT8_PLAN=entries` (same syntax), or a named
/// plan: `fast` ([`INT8_PLAN_FAST`]: every message layer one-pass and corrected, the edge
/// embedding, `W_e` and the feed-forwards 12-bit: ≈ 5 % faster than the default; ≥ 99.06 % worst-case agreement
/// with the full and Cα checkpoints, but 96.2 % with the pruned `small_h64_l2_k16` on 5L33) or
/// `accurate` ([`INT8_PLAN_ACCURATE`]: every per-edge layer 12-bit, 99.9 %, ≈ 7 % slower).
pub const INT8_PLAN_ENV: &str = "MPNN_INT8_PLAN";

/// Which layers W8A8 (`--precision int8` on CPUs with VNNI) computes how. Comma-separated
/// entries `FORM:NAME` (a bare `NAME` means `f32:NAME`); the first entry naming a layer wins.
/// Names: `enc_node` (the encoder's node-message `W1·e`, `W2`), `enc_edge` (its edge-message
/// `W11·e`, `W12`, `W13`), `dec` (the decoder's `W1·e`, `W2`), each optionally followed by the
/// layer index (`enc_node0`) and one layer of the group (`enc_node0.w2`; `w1`, `w2`, `w11`,
/// `w12`, `w13`), `enc_ffn` and `dec_ffn` (each encoder or decoder layer's position-wise
/// feed-forward, per node: `enc_ffn1.w_in`, `.w_out`), and `edge_emb` (the 416 → H edge
/// embedding), `w_e`. Forms: `f32`,
/// `w8a8` (one int8 pass), `x2` (two int8 passes: the weights' quantization residual
/// quantized again, ≈ 15-bit weights for twice the products, [`Linear::with_residual_weights`]),
/// `w12` (12-bit weights and 13-bit inputs through `vpdpwssd`,
/// [`crate::kernels::int8::QuantWeights::wide`]: the cost of `x2` with finer weights *and*
/// inputs), `a16` (W8A16). Unnamed message layers are `w8a8`; unnamed feed-forwards,
/// `edge_emb` and `w_e` `f32`. Every other per-node layer (the node projections, `W3`, `W_out`)
/// stays float32.
///
/// One-pass layers (`w8a8`) on per-edge rows carry the per-node mean correction of their
/// weights' rounding ([`crate::kernels::int8::w8a8::gemm_node_corrected`]): one-pass int8
/// weights shift the logits systematically (the mean of the error, not its spread, flips the
/// close calls), and the correction removes that shift per node for `1/k` of the layer's products.
///
/// The default keeps ≥ 99 % top-1 agreement with float32 on the unconditional probabilities of
/// all 11 parity cases (worst 99.53 %, `cargo run --release --example agree`; largest
/// |Δ log-prob| 0.027) with the decoder and the encoder's edge messages one-pass and corrected,
/// the encoder's node messages, the edge embedding, `W_e` and the feed-forwards 12-bit
/// (BENCHMARKS.md, "Per-node mean correction" and "Cheaper int8 GELU …"). Before the
/// correction the decoder needed 12-bit layers for the same worst case
/// (`w12:enc_node,w12:dec,w12:edge_emb,w12:w_e`: 99.53 %, |Δ log-prob| up to 0.049, ≈ 3-5 %
/// slower). The 12-bit feed-forwards cost no agreement (the same worst case and largest
/// |Δ log-prob| as float32 ones) and run on twice the float32 rate.
pub const INT8_PLAN: &str = "w12:enc_node,w12:edge_emb,w12:w_e,w12:enc_ffn,w12:dec_ffn";

/// The `fast` named plan (see [`INT8_PLAN_ENV`]).
pub const INT8_PLAN_FAST: &str = "w12:edge_emb,w12:w_e,w12:enc_ffn,w12:dec_ffn";

/// The `accurate` named plan: every per-edge layer 12-bit (worst-case agreement 99.90 % on the
/// parity cases).
pub const INT8_PLAN_ACCURATE: &str = "w12:enc_node,w12:enc_edge,w12:dec,w12:edge_emb,w12:w_e";

fn int8_plan() -> Vec<String> {
    let plan = match std::env::var(INT8_PLAN_ENV) {
        Ok(v) => match check_int8_plan(&v) {
            Ok(()) => v,
            Err(e) => {
                tracing::warn!("{e}; using the default plan");
                INT8_PLAN.to_string()
            }
        },
        Err(_) => INT8_PLAN.to_string(),
    };
    let plan = match plan.trim() {
        "fast" => INT8_PLAN_FAST.to_string(),
        "accurate" => INT8_PLAN_ACCURATE.to_string(),
        _ => plan,
    };
    plan.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Checks an int8 layer plan ([`INT8_PLAN`]'s syntax, or `fast`, `accurate`): every entry names a known form
/// and a layer that exists in the syntax (`enc_node`, `enc_node0`, `enc_node0.w2`, `edge_emb`, …).
pub fn check_int8_plan(plan: &str) -> Result<(), String> {
    if matches!(plan.trim(), "fast" | "accurate") {
        return Ok(());
    }
    const GROUPS: [(&str, &[&str]); 7] = [
        ("enc_node", &["w1", "w2"]),
        ("enc_edge", &["w11", "w12", "w13"]),
        ("dec", &["w1", "w2"]),
        ("enc_ffn", &["w_in", "w_out"]),
        ("dec_ffn", &["w_in", "w_out"]),
        ("edge_emb", &[]),
        ("w_e", &[]),
    ];
    for entry in plan.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (form, name) = entry.split_once(':').unwrap_or(("f32", entry));
        if !["f32", "x2", "a16", "w12", "w8a8"].contains(&form) {
            return Err(format!("{INT8_PLAN_ENV}: `{entry}`: unknown form `{form}` (use f32, x2, a16, w12 or w8a8)"));
        }
        let (layer, part) = name.split_once('.').map_or((name, None), |(l, p)| (l, Some(p)));
        let known = GROUPS.iter().any(|(group, parts)| {
            let Some(index) = layer.strip_prefix(group) else { return false };
            let indexed = !index.is_empty();
            (index.is_empty() || index.bytes().all(|b| b.is_ascii_digit()))
                && match part {
                    None => true,
                    Some(p) => indexed && parts.contains(&p),
                }
        });
        if !known {
            return Err(format!(
                "{INT8_PLAN_ENV}: `{entry}`: no layer is called `{name}` (enc_node, enc_edge, dec, enc_ffn or \
                 dec_ffn, optionally with a layer index and one matrix, e.g. enc_node0.w2, dec_ffn1.w_in; or \
                 edge_emb, w_e)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_plans_are_checked() {
        assert!(check_int8_plan(INT8_PLAN).is_ok());
        assert!(check_int8_plan("fast").is_ok() && check_int8_plan(INT8_PLAN_FAST).is_ok());
        assert!(check_int8_plan("accurate").is_ok() && check_int8_plan(INT8_PLAN_ACCURATE).is_ok());
        assert!(check_int8_plan("w12:dec1.w2,w12:edge_emb").is_ok());
        assert!(check_int8_plan("w13:dec").unwrap_err().contains("unknown form `w13`"));
        assert!(check_int8_plan("x2:dec1, a16:enc_edge0.w12, enc_node").is_ok());
        let e = check_int8_plan("x3:dec").unwrap_err();
        assert!(e.contains("unknown form `x3`"), "{e}");
        let e = check_int8_plan("enc_nod0").unwrap_err();
        assert!(e.contains("no layer is called `enc_nod0`"), "{e}");
        assert!(check_int8_plan("dec.w3").is_err());
        assert!(check_int8_plan("enc_node.w1").is_err(), "a matrix needs a layer index");
        assert!(check_int8_plan("edge_emb0.w1").is_err());
        assert!(check_int8_plan("w12:enc_ffn2.w_out,f32:dec_ffn").is_ok());
        assert!(check_int8_plan("w12:enc_ffn.w_in").is_err(), "a matrix needs a layer index");
        assert!(check_int8_plan("w12:dec_ffn0.w1").is_err());
    }
}
