//! The reference modules' weights: `EncLayer`, `DecLayer`, `PositionWiseFeedForward`.

use crate::kernels::{gelu_inplace, LayerNorm, Linear};

/// `PositionWiseFeedForward`: `W_out(gelu(W_in(h)))`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    pub w_in: Linear,
    pub w_out: Linear,
}

impl FeedForward {
    /// `h ← norm(h + FFN(h))` for `rows` rows, using `scratch` (≥ rows·4H) and `tmp` (≥ rows·H).
    pub fn residual_norm(&self, h: &mut [f32], rows: usize, norm: &LayerNorm, scratch: &mut Vec<f32>) {
        let hd = self.w_out.n_out;
        let ff = self.w_in.n_out;
        scratch.resize(rows * (ff + hd), 0.0);
        let (inner, out) = scratch.split_at_mut(rows * ff);
        self.w_in.forward(h, rows, inner);
        gelu_inplace(inner);
        self.w_out.forward(inner, rows, out);
        for (v, d) in h[..rows * hd].iter_mut().zip(out.iter()) {
            *v += d;
        }
        norm.forward_inplace(&mut h[..rows * hd]);
    }
}

/// `EncLayer`: node update from messages over `[h_i, e_ij, h_j]`, then edge update.
#[derive(Debug, Clone)]
pub struct EncLayer {
    pub w1: Linear,
    pub w2: Linear,
    pub w3: Linear,
    pub w11: Linear,
    pub w12: Linear,
    pub w13: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    pub dense: FeedForward,
    /// `W1` split into the blocks for `h_i` (with W1's bias), `e_ij` and `h_j`.
    pub w1_blocks: [Linear; 3],
    /// `W11` split the same way.
    pub w11_blocks: [Linear; 3],
    /// `W3` without its bias: applied once per node to the masked sum of the hidden messages
    /// (`Σ_j W3·g_ij + b3 = W3·Σ_j g_ij + count·b3`, W3 being linear).
    pub w3_sum: Linear,
}

/// `W · [h_i; e_ij; h_j]` as three blocks (the first one carries the bias).
fn node_edge_node_blocks(w: &Linear) -> [Linear; 3] {
    let h = w.n_in / 3;
    let mut own = w.column_block(0, h);
    own.bias = w.bias.clone();
    [own, w.column_block(h, h), w.column_block(2 * h, h)]
}

impl EncLayer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w1: Linear,
        w2: Linear,
        w3: Linear,
        w11: Linear,
        w12: Linear,
        w13: Linear,
        norm1: LayerNorm,
        norm2: LayerNorm,
        norm3: LayerNorm,
        dense: FeedForward,
    ) -> Self {
        let w1_blocks = node_edge_node_blocks(&w1);
        let w11_blocks = node_edge_node_blocks(&w11);
        let w3_sum = w3.column_block(0, w3.n_in);
        EncLayer { w1, w2, w3, w11, w12, w13, norm1, norm2, norm3, dense, w1_blocks, w11_blocks, w3_sum }
    }
}

/// `DecLayer`, with its first layer split into the blocks that multiply `h_i`, `e_ij`, `s_j`
/// and `h_j` (`W1·[h_i; e; s; h_j] = W1h·h_i + W1e·e + W1s·s + W1v·h_j`).
#[derive(Debug, Clone)]
pub struct DecLayer {
    pub w1: Linear,
    pub w2: Linear,
    pub w3: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dense: FeedForward,
    /// Block of `W1` for the node's own state (with W1's bias).
    pub w1_self: Linear,
    pub w1_edge: Linear,
    pub w1_seq: Linear,
    pub w1_nbr: Linear,
    /// `W3` without its bias, applied once per node to the sum of the hidden messages.
    pub w3_sum: Linear,
}

impl DecLayer {
    pub fn new(w1: Linear, w2: Linear, w3: Linear, norm1: LayerNorm, norm2: LayerNorm, dense: FeedForward) -> Self {
        let h = w2.n_out;
        let mut w1_self = w1.column_block(0, h);
        w1_self.bias = w1.bias.clone();
        let w1_edge = w1.column_block(h, h);
        let w1_seq = w1.column_block(2 * h, h);
        let w1_nbr = w1.column_block(3 * h, h);
        let w3_sum = w3.column_block(0, w3.n_in);
        DecLayer { w1, w2, w3, norm1, norm2, dense, w1_self, w1_edge, w1_seq, w1_nbr, w3_sum }
    }
}
