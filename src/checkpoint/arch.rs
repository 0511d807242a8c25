//! Architecture inference and strict layout validation.
//!
//! The architecture is read off the tensor shapes; then every expected tensor of the official
//! ProteinMPNN (or CA-ProteinMPNN) state dict is checked for presence and exact shape.
//! Extra tensors are an error too: a state dict with parameters mpnn does not know is a
//! different model, and silently ignoring weights would give wrong numbers.

use std::collections::BTreeSet;

use super::{Architecture, Checkpoint, CheckpointError};

/// Positional-encoding width (`num_positional_embeddings`).
pub const POS_EMBEDDINGS: usize = 16;
/// `2 * max_relative_feature + 1 + 1` with `max_relative_feature = 32`.
pub const POS_CLASSES: usize = 66;
/// Output letters of every official model.
pub const VOCAB: usize = 21;
/// Edge-feature input width of the full-backbone model: 16 + 25 RBF pairs × 16.
pub const EDGE_IN_FULL: usize = POS_EMBEDDINGS + 25 * 16;
/// Edge-feature input width of the CA-only model: 16 + 16 × 9 + 7.
pub const EDGE_IN_CA: usize = POS_EMBEDDINGS + 16 * 9 + 7;

/// The expected `(name, shape)` list of the official state dict for an architecture.
pub fn expected_tensors(a: &Architecture) -> Vec<(String, Vec<usize>)> {
    let h = a.hidden;
    let mut v: Vec<(String, Vec<usize>)> = Vec::new();
    let mut add = |n: String, s: Vec<usize>| v.push((n, s));
    add("features.embeddings.linear.weight".into(), vec![POS_EMBEDDINGS, POS_CLASSES]);
    add("features.embeddings.linear.bias".into(), vec![POS_EMBEDDINGS]);
    let edge_in = if a.ca_only { EDGE_IN_CA } else { EDGE_IN_FULL };
    add("features.edge_embedding.weight".into(), vec![h, edge_in]);
    add("features.norm_edges.weight".into(), vec![h]);
    add("features.norm_edges.bias".into(), vec![h]);
    if a.ca_only {
        add("features.node_embedding.weight".into(), vec![h, 3]);
        add("features.norm_nodes.weight".into(), vec![h]);
        add("features.norm_nodes.bias".into(), vec![h]);
        add("W_v.weight".into(), vec![h, h]);
        add("W_v.bias".into(), vec![h]);
    }
    add("W_e.weight".into(), vec![h, h]);
    add("W_e.bias".into(), vec![h]);
    add("W_s.weight".into(), vec![a.vocab, h]);
    let lin = |add: &mut dyn FnMut(String, Vec<usize>), p: &str, out: usize, inp: usize| {
        add(format!("{p}.weight"), vec![out, inp]);
        add(format!("{p}.bias"), vec![out]);
    };
    for i in 0..a.encoder_layers {
        let p = format!("encoder_layers.{i}");
        lin(&mut add, &format!("{p}.W1"), h, 3 * h);
        lin(&mut add, &format!("{p}.W2"), h, h);
        lin(&mut add, &format!("{p}.W3"), h, h);
        lin(&mut add, &format!("{p}.W11"), h, 3 * h);
        lin(&mut add, &format!("{p}.W12"), h, h);
        lin(&mut add, &format!("{p}.W13"), h, h);
        for n in ["norm1", "norm2", "norm3"] {
            lin(&mut add, &format!("{p}.{n}"), h, 0);
        }
        lin(&mut add, &format!("{p}.dense.W_in"), 4 * h, h);
        lin(&mut add, &format!("{p}.dense.W_out"), h, 4 * h);
    }
    for i in 0..a.decoder_layers {
        let p = format!("decoder_layers.{i}");
        lin(&mut add, &format!("{p}.W1"), h, 4 * h);
        lin(&mut add, &format!("{p}.W2"), h, h);
        lin(&mut add, &format!("{p}.W3"), h, h);
        for n in ["norm1", "norm2"] {
            lin(&mut add, &format!("{p}.{n}"), h, 0);
        }
        lin(&mut add, &format!("{p}.dense.W_in"), 4 * h, h);
        lin(&mut add, &format!("{p}.dense.W_out"), h, 4 * h);
    }
    lin(&mut add, "W_out", a.vocab, h);
    // LayerNorm weights are 1-D: `lin(.., h, 0)` produced [h, 0]; fix those up.
    for (n, s) in v.iter_mut() {
        if s.len() == 2 && s[1] == 0 && n.ends_with(".weight") {
            *s = vec![s[0]];
        }
    }
    v
}

fn shape_str(s: Option<&Vec<usize>>) -> String {
    match s {
        Some(s) => format!("{s:?}"),
        None => "missing".into(),
    }
}

impl Checkpoint {
    /// Infer the architecture from the tensor shapes, then validate every tensor's presence and
    /// shape against the official layout. Errors name the file, the tensor, and expected vs
    /// found shape. Unexpected extra tensors are an error as well.
    pub fn architecture(&self) -> Result<Architecture, CheckpointError> {
        let lerr = |problem: String| CheckpointError::Layout { path: self.source.clone(), problem };
        let shape = |n: &str| self.tensors.get(n).map(|t| &t.shape);

        let hidden = match shape("W_e.weight") {
            Some(s) if s.len() == 2 && s[0] > 0 => s[0],
            s => {
                return Err(lerr(format!(
                    "tensor `W_e.weight` (which gives the hidden width): expected shape [H, H], \
                     found {}",
                    shape_str(s)
                )))
            }
        };
        let count =
            |stem: &str| (0..).take_while(|i| self.tensors.contains_key(&format!("{stem}.{i}.W1.weight"))).count();
        let encoder_layers = count("encoder_layers");
        let decoder_layers = count("decoder_layers");
        if encoder_layers == 0 || decoder_layers == 0 {
            return Err(lerr(format!(
                "found {encoder_layers} encoder and {decoder_layers} decoder layers \
                 (tensors `encoder_layers.0.W1.weight` / `decoder_layers.0.W1.weight`); \
                 at least one of each is needed"
            )));
        }
        let vocab = match shape("W_out.weight") {
            Some(s) if s.len() == 2 && s[0] == VOCAB => s[0],
            s => {
                return Err(lerr(format!(
                    "tensor `W_out.weight`: expected shape [{VOCAB}, {hidden}], found {}",
                    shape_str(s)
                )))
            }
        };
        if self.num_edges == 0 {
            return Err(lerr("num_edges is 0; the model needs k ≥ 1 neighbours".into()));
        }
        let arch = Architecture {
            hidden,
            encoder_layers,
            decoder_layers,
            k: self.num_edges,
            ca_only: self.tensors.contains_key("W_v.weight"),
            vocab,
        };

        let expected = expected_tensors(&arch);
        for (name, exp) in &expected {
            let found = shape(name);
            let elems_ok = self.tensors.get(name).is_some_and(|t| t.data.len() == t.shape.iter().product::<usize>());
            if found != Some(exp) || !elems_ok {
                let kind = if arch.ca_only { "CA-only" } else { "full-backbone" };
                return Err(lerr(format!(
                    "tensor `{name}`: expected shape {exp:?} for a {kind} model with hidden \
                     width {hidden}, {encoder_layers}+{decoder_layers} layers, found {}",
                    if found.is_some() && !elems_ok {
                        "a tensor whose data length does not match its shape".to_string()
                    } else {
                        shape_str(found)
                    }
                )));
            }
        }
        let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        let extra: Vec<&str> = self.tensors.keys().map(String::as_str).filter(|n| !known.contains(n)).collect();
        if !extra.is_empty() {
            let shown: Vec<&str> = extra.iter().take(8).copied().collect();
            return Err(lerr(format!(
                "{} unexpected tensor(s) not part of the inferred model (hidden {hidden}, \
                 {encoder_layers}+{decoder_layers} layers, {}): {}{}",
                extra.len(),
                if arch.ca_only { "CA-only" } else { "full-backbone" },
                shown.join(", "),
                if extra.len() > shown.len() { ", …" } else { "" }
            )));
        }
        Ok(arch)
    }
}
