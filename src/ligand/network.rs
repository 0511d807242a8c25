//! [`LigandMpnn`]: the five LigandMPNN model types as one network: ProteinMPNN's features,
//! encoder and decoder ([`crate::model::ProteinMpnn`]) plus a node stage per type (none, the
//! membrane label embedding, or the ligand atom context, [`super::context`]).
//!
//! Jobs on one structure ([`LigandFeatures`] + the `randn` vector of the decoding order):
//! [`LigandMpnn::encode`], [`LigandMpnn::score`] and [`LigandMpnn::single_aa_score`] (the
//! official `score()` and `single_aa_score()`), sampling in [`super::sample`].

use std::path::Path;

use super::checkpoint::{architecture, LigandArchitecture, LigandModelError, ModelType, MEMBRANE_CLASSES};
use super::context::{AtomContext, ContextTrace};
use super::features::LigandFeatures;
use crate::alphabet::VOCAB;
use crate::checkpoint::{self, Checkpoint};
use crate::featurize::Batch;
use crate::kernels::{LayerNorm, Linear};
use crate::model::decoder::{decoding_order, order_positions, NeighbourInput};
use crate::model::encoder::Encoded;
use crate::model::features::backbone_atoms;
use crate::model::graph::Graph;
use crate::model::layers::EdgeSetLayer;
use crate::model::{Loader, ProteinMpnn};
use crate::sampler::decoding_steps;

/// The membrane models' node stage: `W_v(norm_nodes(node_embedding(one-hot(label))))`.
#[derive(Debug, Clone)]
pub struct MembraneStage {
    /// `features.node_embedding` (3 → H, no bias).
    pub node_embedding: Linear,
    pub norm_nodes: LayerNorm,
    pub w_v: Linear,
}

/// What a model type adds to ProteinMPNN's node states.
#[derive(Debug, Clone)]
pub enum NodeStage {
    /// `protein_mpnn`, `soluble_mpnn`: nodes start at 0.
    Protein,
    /// The membrane models: nodes start from the label embedding.
    Membrane(Box<MembraneStage>),
    /// `ligand_mpnn`: the atom context is added after the encoder.
    Ligand(Box<AtomContext>),
}

/// A LigandMPNN-family model.
#[derive(Debug, Clone)]
pub struct LigandMpnn {
    pub arch: LigandArchitecture,
    /// Features (`ProteinFeatures`, the same in every type), encoder, decoder, `W_s`, `W_out`.
    pub protein: ProteinMpnn,
    pub stage: NodeStage,
    /// `--ligand_mpnn_use_side_chain_context` (ligand_mpnn only; off by default).
    pub side_chain_context: bool,
}

/// The encoder's outputs for one structure.
#[derive(Debug, Clone)]
pub struct LigandEncoded {
    /// Graph, mask, final node states `h_V` (with the atom context for ligand_mpnn) and edge
    /// states `h_E`: what the decoder reads.
    pub enc: Encoded,
    /// Node states after the protein encoder layers `[L, H]` (before the atom context).
    pub h_v_encoder: Vec<f32>,
    /// ligand_mpnn: the context stage's outputs.
    pub context: Option<ContextOutputs>,
}

/// The atom-context stage's outputs (ligand_mpnn).
#[derive(Debug, Clone)]
pub struct ContextOutputs {
    /// Atom masks the context layers used `[L, M]` (the features' `Y_m`, or with side-chain
    /// context the mask of the atoms chosen again).
    pub atom_mask: Vec<f32>,
    /// `h_V_C` after each context layer `[layers][L·H]`.
    pub layers: Vec<Vec<f32>>,
    /// `V_C_norm(V_C(h_V_C))`, what was added to the encoder's node states `[L·H]`.
    pub added: Vec<f32>,
}

/// `score()` / `single_aa_score()` outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOutput {
    /// `[L, 21]` log-probabilities.
    pub log_probs: Vec<f32>,
    /// `[L, 21]` logits (`W_out` of the final decoder states).
    pub logits: Vec<f32>,
    /// `score()`: the decoding order used (regrouped by symmetry groups). `single_aa_score()`:
    /// empty (position `i`'s order is [`single_aa_order`]).
    pub decoding_order: Vec<usize>,
}

/// The decoding order `single_aa_score()` uses for position `i`:
/// `argsort((m + 1e-4)·|randn|)` with `m` = ones except `m[i] = 0` (`use_sequence`) or zeros
/// except `m[i] = 1` (not `use_sequence`).
pub fn single_aa_order(i: usize, randn: &[f32], use_sequence: bool) -> Vec<usize> {
    let (others, own) = if use_sequence { (1.0, 0.0) } else { (0.0, 1.0) };
    let mut m = vec![others; randn.len()];
    m[i] = own;
    decoding_order(&m, randn)
}

/// The decoding order of `score()` and `sample()`: `argsort((mask·chain_mask + 1e-4)·|randn|)`,
/// regrouped by the symmetry groups (walking the order, the first member met of a group brings
/// the whole group in its listed order). Returned as steps (one position, or one group).
pub fn decoding_steps_for(f: &LigandFeatures, randn: &[f32], symmetry: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let design: Vec<f32> = f.mask.iter().zip(&f.chain_mask).map(|(m, c)| m * c).collect();
    let order = decoding_order(&design, randn);
    decoding_steps(&order, symmetry)
}

impl LigandMpnn {
    /// Loads a checkpoint file as `model_type` (see [`LigandMpnn::from_checkpoint`]).
    pub fn load(path: &Path, model_type: ModelType) -> Result<LigandMpnn, LigandModelError> {
        let ckpt = checkpoint::load(path)?;
        Self::from_checkpoint(&ckpt, model_type)
    }

    /// Builds a `model_type` model from a checkpoint in LigandMPNN's layout (hidden width,
    /// layer counts, k and `atom_context_num` read off the file; every tensor checked).
    pub fn from_checkpoint(ckpt: &Checkpoint, model_type: ModelType) -> Result<LigandMpnn, LigandModelError> {
        let arch = architecture(ckpt, model_type)?;
        let protein = ProteinMpnn::new(ckpt, arch.base)?;
        let ld = Loader { ckpt };
        let h = arch.base.hidden;
        let stage = match model_type {
            ModelType::LigandMpnn => {
                let layer = |stem: &str, i: usize, edge_in: usize| -> Result<EdgeSetLayer, LigandModelError> {
                    let p = format!("{stem}.{i}");
                    Ok(EdgeSetLayer::new(
                        ld.linear(&format!("{p}.W1"), h, h + edge_in, true)?,
                        ld.linear(&format!("{p}.W2"), h, h, true)?,
                        ld.linear(&format!("{p}.W3"), h, h, true)?,
                        ld.norm(&format!("{p}.norm1"), h)?,
                        ld.norm(&format!("{p}.norm2"), h)?,
                        ld.ffn(&format!("{p}.dense"), h)?,
                    ))
                };
                let context_layers = (0..arch.context_layers)
                    .map(|i| layer("context_encoder_layers", i, 2 * h))
                    .collect::<Result<_, _>>()?;
                let y_context_layers = (0..arch.context_layers)
                    .map(|i| layer("y_context_encoder_layers", i, h))
                    .collect::<Result<_, _>>()?;
                use super::checkpoint::{ATOM_TYPE_FEATURES, ATOM_TYPE_ONE_HOT, NODE_PROJECT_IN};
                NodeStage::Ligand(Box::new(AtomContext::new(
                    ld.linear("features.node_project_down", h, NODE_PROJECT_IN, true)?,
                    ld.norm("features.norm_nodes", h)?,
                    ld.linear("features.type_linear", ATOM_TYPE_FEATURES, ATOM_TYPE_ONE_HOT, true)?,
                    ld.linear("features.y_nodes", h, ATOM_TYPE_ONE_HOT, false)?,
                    ld.linear("features.y_edges", h, crate::model::NUM_RBF, false)?,
                    ld.norm("features.norm_y_edges", h)?,
                    ld.norm("features.norm_y_nodes", h)?,
                    ld.linear("W_v", h, h, true)?,
                    ld.linear("W_c", h, h, true)?,
                    ld.linear("W_nodes_y", h, h, true)?,
                    ld.linear("W_edges_y", h, h, true)?,
                    ld.linear("V_C", h, h, false)?,
                    ld.norm("V_C_norm", h)?,
                    context_layers,
                    y_context_layers,
                )))
            }
            t if t.is_membrane() => NodeStage::Membrane(Box::new(MembraneStage {
                node_embedding: ld.linear("features.node_embedding", h, MEMBRANE_CLASSES, false)?,
                norm_nodes: ld.norm("features.norm_nodes", h)?,
                w_v: ld.linear("W_v", h, h, true)?,
            })),
            _ => NodeStage::Protein,
        };
        Ok(LigandMpnn { arch, protein, stage, side_chain_context: false })
    }

    /// The same model with `--ligand_mpnn_use_side_chain_context` on or off (ligand_mpnn).
    pub fn with_side_chain_context(mut self, on: bool) -> LigandMpnn {
        self.side_chain_context = on;
        self
    }

    pub fn model_type(&self) -> ModelType {
        self.arch.model_type
    }

    pub fn hidden(&self) -> usize {
        self.arch.base.hidden
    }

    /// Neighbours per residue (`num_edges`).
    pub fn k(&self) -> usize {
        self.arch.base.k
    }

    /// `atom_context_num` (ligand_mpnn; 0 for the others).
    pub fn atom_context_num(&self) -> usize {
        self.arch.atom_context_num
    }

    /// Checks that `f` has what this model reads.
    pub fn check_features(&self, f: &LigandFeatures) -> Result<(), LigandModelError> {
        let bad = |m: String| Err(LigandModelError::Features(m));
        let l = f.len();
        if l == 0 {
            return bad("the structure has no residues".into());
        }
        for (name, n) in [
            ("X", f.x.len()),
            ("mask", f.mask.len()),
            ("R_idx", f.r_idx.len()),
            ("chain_labels", f.chain_labels.len()),
            ("chain_mask", f.chain_mask.len()),
            ("bias", f.bias.len()),
        ] {
            if n != l {
                return bad(format!("`{name}` has {n} rows for {l} residues"));
            }
        }
        if let Some(&s) = f.s.iter().find(|&&s| s as usize >= VOCAB) {
            return bad(format!("`S` holds letter index {s}; the alphabet has {VOCAB}"));
        }
        match &self.stage {
            NodeStage::Ligand(_) => {
                let m = self.atom_context_num();
                if f.atom_context_num != m {
                    return bad(format!(
                        "the features hold {} context atoms per residue, the model reads atom_context_num = {m}",
                        f.atom_context_num
                    ));
                }
                if f.y.len() != l * m || f.y_t.len() != l * m || f.y_m.len() != l * m || f.mask_xy.len() != l {
                    return bad(format!("`Y`, `Y_t`, `Y_m` must be [L = {l}, M = {m}], `mask_XY` [L]"));
                }
                if let Some(&t) = f.y_t.iter().find(|&&t| !(0..=super::context::MAX_ELEMENT as i32).contains(&t)) {
                    return bad(format!("`Y_t` holds element {t}; the model knows 0 to 118"));
                }
                if self.side_chain_context && (f.xyz_37.len() != l || f.xyz_37_m.len() != l) {
                    return bad("side-chain context needs `xyz_37` and `xyz_37_m` for every residue".into());
                }
            }
            NodeStage::Membrane(_) => match &f.membrane_labels {
                Some(v) if v.len() == l => {
                    if let Some(&c) = v.iter().find(|&&c| !(0..MEMBRANE_CLASSES as i32).contains(&c)) {
                        return bad(format!("membrane label {c}; the classes are 0, 1, 2"));
                    }
                }
                _ => {
                    return bad(format!("{} needs `membrane_per_residue_labels` for every residue", self.model_type()))
                }
            },
            NodeStage::Protein => {}
        }
        Ok(())
    }

    /// The structure as a batch of one for the protein features.
    fn batch(f: &LigandFeatures) -> Batch {
        let l = f.len();
        Batch {
            b: 1,
            l,
            ca_only: false,
            x: f.x.iter().flat_map(|r| r.iter().flatten().copied()).collect(),
            mask: f.mask.clone(),
            residue_idx: f.r_idx.iter().map(|&r| r as i64).collect(),
            chain_encoding: f.chain_labels.iter().map(|&c| c as i64).collect(),
            lengths: vec![l],
        }
    }

    /// The graph and edge features `E` (after `edge_embedding` and `norm_edges`, `[L·K, H]`).
    pub fn edge_features(&self, f: &LigandFeatures) -> Result<(Graph, Vec<f32>), LigandModelError> {
        self.check_features(f)?;
        Ok(self.protein.edge_features(&Self::batch(f)))
    }

    /// Membrane models: the label embedding after `norm_nodes` `[L, H]` (the official `V`).
    pub fn membrane_nodes(&self, f: &LigandFeatures) -> Option<Vec<f32>> {
        let NodeStage::Membrane(m) = &self.stage else { return None };
        let labels = f.membrane_labels.as_ref()?;
        let l = labels.len();
        let mut one_hot = vec![0f32; l * MEMBRANE_CLASSES];
        for (i, &c) in labels.iter().enumerate() {
            one_hot[i * MEMBRANE_CLASSES + c as usize] = 1.0;
        }
        let mut v = vec![0f32; l * self.hidden()];
        m.node_embedding.forward(&one_hot, l, &mut v);
        m.norm_nodes.forward_inplace(&mut v);
        Some(v)
    }

    /// The official `encode()`: graph, edge features, encoder (from the membrane label
    /// embedding for the membrane models) and, for ligand_mpnn, the atom context added to the
    /// node states.
    pub fn encode(&self, f: &LigandFeatures) -> Result<LigandEncoded, LigandModelError> {
        self.encode_with_pair_groups(f, Some(crate::ligand::context::DEFAULT_PAIR_GROUP))
    }

    /// [`Self::encode`] with the atom-context stage's sharing of atom-pair work set by hand
    /// (tests: every setting gives the same bits). `None`: every residue computes its own atom
    /// pairs (the plain form); `Some(n)`: residues are grouped so that a group holds about `n`
    /// distinct atom pairs at most (always at least one residue), the pair work done once per
    /// group.
    pub fn encode_with_pair_groups(
        &self,
        f: &LigandFeatures,
        max_pairs: Option<usize>,
    ) -> Result<LigandEncoded, LigandModelError> {
        self.check_features(f)?;
        let _span = tracing::debug_span!("ligand_encode", l = f.len()).entered();
        let batch = Self::batch(f);
        let (graph, e) = self.protein.edge_features(&batch);
        let l = f.len();
        let h = self.hidden();
        let h0 = match (&self.stage, self.membrane_nodes(f)) {
            (NodeStage::Membrane(m), Some(v)) => {
                let mut h0 = vec![0f32; l * h];
                m.w_v.forward(&v, l, &mut h0);
                h0
            }
            _ => vec![0f32; l * h],
        };
        let mut enc = self.protein.encode_edges_from(&batch, graph, &e, h0);
        let h_v_encoder = enc.h_v.clone();
        let context = match &self.stage {
            NodeStage::Ligand(ctx) => {
                let bb = backbone_atoms(&batch.x, l);
                let (layers, added, atom_mask) =
                    ctx.run(f, &enc.graph, &bb, &h_v_encoder, self.side_chain_context, max_pairs);
                for (v, a) in enc.h_v.iter_mut().zip(&added) {
                    *v += a;
                }
                Some(ContextOutputs { atom_mask, layers, added })
            }
            _ => None,
        };
        Ok(LigandEncoded { enc, h_v_encoder, context })
    }

    /// ligand_mpnn: the context stage's intermediates for residues `rows` (parity tests; see
    /// [`ContextTrace`]). `None` for the other model types.
    pub fn context_trace(
        &self,
        f: &LigandFeatures,
        encoded: &LigandEncoded,
        rows: &[usize],
    ) -> Option<Vec<ContextTrace>> {
        let NodeStage::Ligand(ctx) = &self.stage else { return None };
        let x: Vec<f32> = f.x.iter().flat_map(|r| r.iter().flatten().copied()).collect();
        let bb = backbone_atoms(&x, f.len());
        Some(ctx.trace(f, &encoded.enc.graph, &bb, &encoded.h_v_encoder, self.side_chain_context, rows))
    }

    /// `single_aa_score(use_sequence)` for a position `i` that is not first in its order
    /// ([`single_aa_order`]): the final decoder state of `i` when only the positions before it
    /// (those whose `|randn|` is so small that their key still sorts below `1e-4·|randn_i|`,
    /// usually a single one) are decoded. Only `i` and those positions are computed, layer by
    /// layer: every other position comes after them, so it enters their inputs through its
    /// encoder state alone. The same arithmetic, row for row, as the general conditional pass
    /// ([`ProteinMpnn::conditional_logits`]) without its extra full decoder pass (7v11 with
    /// seed 111 has 43 such positions).
    fn decode_after_predecessors(
        &self,
        enc: &Encoded,
        ctx: &crate::model::decoder::DecoderContext,
        seq: &[u8],
        randn: &[f32],
        i: usize,
    ) -> Vec<f32> {
        let l = randn.len();
        let h = self.hidden();
        let order = single_aa_order(i, randn, true);
        let at = order.iter().position(|&o| o == i).expect("the order holds every position");
        let rows: Vec<usize> = order[..=at].to_vec();
        let pos = order_positions(&order, l);
        let backward = |a: usize, b: usize| pos[b] < pos[a];
        let mut scratch = crate::model::decoder::DecoderScratch::default();
        let n_layers = self.protein.decoder_layers.len();
        // Full-size buffers of which only `rows` are written and read.
        let mut h_prev = enc.h_v.clone();
        let mut nbr_prev = ctx.enc_nbr[0].clone();
        let mut out = vec![0f32; rows.len() * h];
        for layer in 0..n_layers {
            self.protein.decoder_rows(ctx, layer, &rows, &h_prev, &nbr_prev, seq, &backward, &mut scratch, &mut out);
            if layer + 1 < n_layers {
                let mut proj = vec![0f32; rows.len() * h];
                self.protein.decoder_layers[layer + 1].w1_nbr.forward(&out, rows.len(), &mut proj);
                for (r, &row) in rows.iter().enumerate() {
                    h_prev[row * h..(row + 1) * h].copy_from_slice(&out[r * h..(r + 1) * h]);
                    nbr_prev[row * h..(row + 1) * h].copy_from_slice(&proj[r * h..(r + 1) * h]);
                }
            }
        }
        out[at * h..(at + 1) * h].to_vec()
    }

    fn outputs(&self, states: &[f32], rows: usize) -> (Vec<f32>, Vec<f32>) {
        let mut logits = vec![0f32; rows * VOCAB];
        self.protein.w_out.forward(states, rows, &mut logits);
        let mut lp = logits.clone();
        lp.chunks_exact_mut(VOCAB).for_each(crate::kernels::log_softmax_inplace);
        (lp, logits)
    }

    /// The official `score(use_sequence)`: one decoder pass in the order of
    /// [`decoding_steps_for`]. With `use_sequence` every position sees the native letters and
    /// decoder states of the neighbours decoded before it; without, those neighbours contribute
    /// nothing at all (the official `mask_fw`-only input), the others their encoder states.
    pub fn score(
        &self,
        encoded: &LigandEncoded,
        f: &LigandFeatures,
        randn: &[f32],
        symmetry: &[Vec<usize>],
        use_sequence: bool,
    ) -> Result<ScoreOutput, LigandModelError> {
        let l = f.len();
        if randn.len() != l {
            return Err(LigandModelError::Features(format!("randn has {} values for {l} residues", randn.len())));
        }
        super::sample::check_symmetry(l, symmetry, None)?;
        let order: Vec<usize> = decoding_steps_for(f, randn, symmetry).into_iter().flatten().collect();
        let pos = order_positions(&order, l);
        let ctx = self.protein.decoder_context(&encoded.enc);
        let before = if use_sequence { NeighbourInput::Decoded } else { NeighbourInput::Hidden };
        let states = self.protein.decode_all_with(&ctx, &f.s, &|i, j| {
            if pos[j] < pos[i] {
                before
            } else {
                NeighbourInput::Encoder
            }
        });
        let (log_probs, logits) = self.outputs(&states, l);
        Ok(ScoreOutput { log_probs, logits, decoding_order: order })
    }

    /// The official `single_aa_score(use_sequence)`: for each position `i`, its
    /// log-probabilities when the structure is decoded in [`single_aa_order`]`(i)`.
    ///
    /// `use_sequence`: `i` comes first, so it sees no letter and only encoder states of its
    /// neighbours: one decoder pass in which no neighbour counts as decoded gives every position
    /// (positions whose `|randn|` is so small that another position still precedes them are
    /// recomputed exactly). Not `use_sequence`: `i` comes last and sees every other native
    /// letter, while its neighbours' states depend on `i` being undecoded for them: one base
    /// pass, then per position only the decoder rows that change
    /// ([`ProteinMpnn::conditional`]).
    pub fn single_aa_score(
        &self,
        encoded: &LigandEncoded,
        f: &LigandFeatures,
        randn: &[f32],
        use_sequence: bool,
    ) -> ScoreOutput {
        let l = f.len();
        assert_eq!(randn.len(), l, "randn must have one value per residue");
        let enc = &encoded.enc;
        let states_logits = if use_sequence {
            let ctx = self.protein.decoder_context(enc);
            let states = self.protein.decode_all_with(&ctx, &f.s, &|_, _| NeighbourInput::Encoder);
            let mut logits = vec![0f32; l * VOCAB];
            self.protein.w_out.forward(&states, l, &mut logits);
            // Position i is first unless some (1 + 1e-4)·|randn_j| is not above 1e-4·|randn_i|;
            // those positions are recomputed in their own order.
            let mut sorted: Vec<f32> = randn.iter().map(|r| (1.0f32 + 1e-4) * r.abs()).collect();
            sorted.sort_by(f32::total_cmp);
            let irregular: Vec<usize> = (0..l)
                .filter(|&i| {
                    let own = (1.0f32 + 1e-4) * randn[i].abs();
                    // smallest key among the others
                    let other = if sorted[0] == own && l > 1 { sorted[1] } else { sorted[0] };
                    let first = l == 1 || 1e-4f32 * randn[i].abs() < other;
                    !first
                })
                .collect();
            for i in irregular {
                let row = self.decode_after_predecessors(enc, &ctx, &f.s, randn, i);
                self.protein.w_out.forward(&row, 1, &mut logits[i * VOCAB..(i + 1) * VOCAB]);
            }
            logits
        } else {
            self.protein.conditional_logits(enc, &f.s, &vec![1.0f32; l], randn, false)
        };
        let mut log_probs = states_logits.clone();
        log_probs.chunks_exact_mut(VOCAB).for_each(crate::kernels::log_softmax_inplace);
        ScoreOutput { log_probs, logits: states_logits, decoding_order: Vec::new() }
    }
}
