//! The encoder: `EncLayer`s over the k-NN graph, starting from `h_V = 0` and `h_E = W_e(E)`.
//!
//! Each message MLP's first layer is split: the node parts `W1h·h_i` and `W1v·h_j` are
//! projected once per node and gathered, so only `W1e·e_ij` runs per edge. The node update's
//! last layer `W3` is linear, so it runs once per node on the masked sum of the hidden messages
//! (`Σ_j att_ij·(W3·g_ij + b3) = W3·Σ_j att_ij·g_ij + b3·Σ_j att_ij`) instead of once per edge,
//! and `W2`, the GELU after it and that attended sum run as one fused kernel
//! ([`crate::kernels::Linear::forward_gelu_sum`]): the hidden messages `g_ij` are never written.

use rayon::prelude::*;

use super::graph::Graph;
use super::layers::EncLayer;
use super::{forward_par, ProteinMpnn, MESSAGE_SCALE, NODE_CHUNK};
use crate::featurize::Batch;
use crate::kernels::gemm::GeluSum;
use crate::kernels::int8::gelu_codes::{gelu_codes, EdgeAdd};
use crate::kernels::int8::w8a8::{quantize_rows_into, Rows, RowsMut, RowsRef};
use crate::kernels::int8::{quantize_rows16_into, Rows16, Rows16Mut};
use crate::kernels::{gelu_quantize, Linear};

/// Nodes per parallel work item.
pub(crate) const CHUNK: usize = 8;

/// The encoder's outputs for a batch.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub graph: Graph,
    /// `[B·L]`
    pub mask: Vec<f32>,
    /// Node embeddings `[B·L, H]`.
    pub h_v: Vec<f32>,
    /// Edge embeddings `[B·L·K, H]`.
    pub h_e: Vec<f32>,
    /// `h_e` quantized for W8A8 decoder layers (int8 models on the W8A8 algorithm only).
    pub h_e_q: Option<Rows>,
    pub hidden: usize,
}

/// A run of edges `h_e` as the first layer of a message MLP reads them: float32, and the codes
/// its writer quantized them to (W8A8, or int16 to a range `qmax`), where it did.
#[derive(Clone, Copy)]
pub(crate) struct EdgeRun<'a> {
    pub f32: &'a [f32],
    pub w8: Option<RowsRef<'a>>,
    /// Codes, scales and `qmax`.
    pub w16: Option<(&'a [i16], &'a [f32], f32)>,
}

/// The first layer of the message MLP for the edges of `n` nodes starting at global row
/// `start`, before its GELU: `self_i + W1e·e_ij + nbr_j` into `scratch` (`[n·K, H]`, returned).
#[allow(clippy::too_many_arguments)]
pub(crate) fn edge_pre<'s>(
    graph: &Graph,
    start: usize,
    n: usize,
    self_proj: &[f32],
    nbr_proj: &[f32],
    edges: EdgeRun,
    w1_edge: &Linear,
    scratch: &'s mut Vec<f32>,
) -> &'s mut [f32] {
    let h = w1_edge.n_out;
    let k = graph.k;
    let pre = edge_products(k, n, edges, w1_edge, scratch);
    for r in 0..n {
        let row = start + r;
        let si = &self_proj[row * h..][..h];
        for nb in 0..k {
            let j = graph.neighbor_row(row, nb);
            let sj = &nbr_proj[j * h..][..h];
            let p = &mut pre[(r * k + nb) * h..][..h];
            for t in 0..h {
                p[t] += si[t] + sj[t];
            }
        }
    }
    pre
}

/// `W1e·e_ij` alone for the `n·k` edges of `n` nodes ([`edge_pre`] before the node
/// projections) into `scratch` (returned): from the edges' codes where the writer made the
/// ones this layer takes (the same bits as quantizing them here), else from float32.
fn edge_products<'s>(k: usize, n: usize, edges: EdgeRun, w1_edge: &Linear, scratch: &'s mut Vec<f32>) -> &'s mut [f32] {
    let m = n * k;
    let h = w1_edge.n_out;
    scratch.resize(m * h, 0.0);
    let pre = &mut scratch[..m * h];
    match (edges.w8, edges.w16) {
        (Some(eq), _) if w1_edge.is_w8a8() => w1_edge.forward_quantized(eq, m, k, pre, false),
        (_, Some((q, scales, qmax))) if w1_edge.codes16_qmax() == Some(qmax) => {
            w1_edge.forward_codes16(q, scales, m, pre)
        }
        _ => w1_edge.forward_edges(edges.f32, m, k, pre),
    }
    pre
}

/// Scratch of [`edge_messages`], one per worker.
#[derive(Default)]
pub(crate) struct MessageScratch {
    pre: Vec<f32>,
    q: Rows,
    nbr: Vec<u32>,
}

/// Runs the edge update's message MLP for the edges of `n` nodes starting at global row
/// `start`: `W3·gelu(W2·gelu(self_i + W1e·e_ij + nbr_j))`, writing `[n·K, H]` messages to
/// `out`. W8A8 layers take their inputs quantized as the GELU before them writes them; before
/// a W8A8 `W2` the node projections are added in that same pass ([`gelu_codes`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn edge_messages(
    graph: &Graph,
    start: usize,
    n: usize,
    self_proj: &[f32],
    nbr_proj: &[f32],
    edges: EdgeRun,
    w1_edge: &Linear,
    w2: &Linear,
    w3: &Linear,
    s: &mut MessageScratch,
    out: &mut [f32],
) {
    let h = w2.n_out;
    let k = graph.k;
    let m = n * k;
    let MessageScratch { pre, q, nbr } = s;
    let pre = if w2.is_w8a8() {
        let pre = edge_products(k, n, edges, w1_edge, pre);
        nbr.clear();
        nbr.extend((0..m).map(|e| graph.neighbor_row(start + e / k, e % k) as u32));
        let own = &self_proj[start * h..(start + n) * h];
        q.reset(m, h);
        gelu_codes(pre, h, Some(EdgeAdd { own, nbr: nbr_proj, index: nbr, group: k }), q.rows_mut(0, m));
        w2.forward_quantized(q.view(), m, k, out, false);
        pre
    } else {
        let pre = edge_pre(graph, start, n, self_proj, nbr_proj, edges, w1_edge, pre);
        w2.forward_gelu(pre, m, out);
        pre
    };
    if w3.is_w8a8() {
        gelu_quantize(&mut out[..m * h], h, q);
        w3.forward_quantized(q.view(), m, k, out, false);
    } else {
        // W3 needs a separate output buffer: its (GELU'd) input is a copy of `out`.
        pre.copy_from_slice(&out[..m * h]);
        w3.forward_gelu(pre, m, out);
    }
}

/// Per run of `chunk` rows (of `rows`), where that run's codes go: `codes` sized and split when
/// given, else `None` for each run.
fn code_chunks(codes: Option<&mut Rows>, rows: usize, h: usize, chunk: usize) -> Vec<Option<RowsMut<'_>>> {
    match codes {
        Some(c) => {
            c.reset(rows, h);
            c.chunks_mut(chunk).into_iter().map(Some).collect()
        }
        None => (0..rows.div_ceil(chunk.max(1))).map(|_| None).collect(),
    }
}

/// [`code_chunks`] for int16 codes to the range `qmax` given with them.
fn code_chunks16(codes: Option<(&mut Rows16, f32)>, rows: usize, h: usize, chunk: usize) -> Vec<Option<Rows16Mut<'_>>> {
    match codes {
        Some((c, qmax)) => {
            c.reset(rows, h, qmax);
            c.chunks_mut(chunk).into_iter().map(Some).collect()
        }
        None => (0..rows.div_ceil(chunk.max(1))).map(|_| None).collect(),
    }
}

/// `h_e` quantized for a layer's edge blocks by whoever wrote it ([`EncLayer::forward`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct EdgeCodes<'a> {
    /// W8A8 codes: given exactly when [`EncLayer::reads_edge_codes`].
    pub w8: Option<&'a Rows>,
    /// int16 codes, given when [`EncLayer::edge_codes16_qmax`] says which (optional).
    pub w16: Option<&'a Rows16>,
}

impl<'a> EdgeCodes<'a> {
    /// The edges `f` (rows `first..first + rows` of `h_e`) with their codes.
    fn run<'b>(&self, f: &'b [f32], first: usize, rows: usize) -> EdgeRun<'b>
    where
        'a: 'b,
    {
        EdgeRun {
            f32: f,
            w8: self.w8.map(|q| q.rows(first, rows)),
            w16: self.w16.map(|c| {
                let (q, s) = c.rows(first, rows);
                (q, s, c.qmax)
            }),
        }
    }
}

/// Where a layer quantizes the `h_e` it writes, chunk by chunk while the rows are in cache, for
/// the next layer or the decoder ([`EncLayer::forward`]).
#[derive(Debug, Default)]
pub struct NextCodes<'a> {
    pub w8: Option<&'a mut Rows>,
    /// int16 codes and the range to quantize them to (the next layer's
    /// [`EncLayer::edge_codes16_qmax`]).
    pub w16: Option<(&'a mut Rows16, f32)>,
}

impl EncLayer {
    /// The range of the int16 codes the layer's node-message edge block `W1e` takes (a 12-bit
    /// or W8A16 block; the edge message's `W11e` reads them too when it takes the same), or
    /// `None`.
    pub fn edge_codes16_qmax(&self) -> Option<f32> {
        self.w1_blocks[1].codes16_qmax()
    }

    /// Whether the layer's W8A8 edge blocks read `h_e` as W8A8 codes
    /// ([`EncLayer::forward`]'s `codes`).
    pub fn reads_edge_codes(&self) -> bool {
        self.w1_blocks[1].is_w8a8() || self.w11_blocks[1].is_w8a8()
    }

    /// One encoder layer, updating `h_v` and `h_e` in place. `codes` holds `h_e` quantized
    /// for the edge blocks; into `next`, the updated `h_e` is quantized as each chunk of edges
    /// is written (for the next layer or the decoder), while the rows are still in cache.
    pub fn forward(
        &self,
        graph: &Graph,
        mask: &[f32],
        h_v: &mut [f32],
        h_e: &mut [f32],
        codes: EdgeCodes,
        next: NextCodes,
    ) {
        let h = self.w2.n_out;
        let k = graph.k;
        let rows = graph.b * graph.l;
        // Node update.
        let [w1_self, w1_edge, w1_nbr] = &self.w1_blocks;
        let mut self_proj = vec![0f32; rows * h];
        let mut nbr_proj = vec![0f32; rows * h];
        forward_par(w1_self, h_v, &mut self_proj);
        forward_par(w1_nbr, h_v, &mut nbr_proj);
        assert_eq!(codes.w8.is_some(), self.reads_edge_codes(), "edge codes given exactly when read");
        let mut dh = vec![0f32; rows * h];
        dh.par_chunks_mut(CHUNK * h).enumerate().for_each_init(
            || (Vec::new(), vec![0f32; CHUNK * h], vec![0f32; CHUNK * k]),
            |(scratch, sums, att), (c, dh_chunk)| {
                let start = c * CHUNK;
                let n = dh_chunk.len() / h;
                let m = n * k;
                let edges = codes.run(&h_e[start * k * h..(start + n) * k * h], start * k, n * k);
                let pre = edge_pre(graph, start, n, &self_proj, &nbr_proj, edges, w1_edge, scratch);
                // Each message's attention `mask_i · mask_j`, and per node their sum.
                let mut counts = [0f32; CHUNK];
                for r in 0..n {
                    let row = start + r;
                    for nb in 0..k {
                        let a = mask[row] * mask[graph.neighbor_row(row, nb)];
                        att[r * k + nb] = a;
                        counts[r] += a;
                    }
                }
                // W2, its GELU and the attended sum of the hidden messages per node in one pass
                // (fused for a float32 W2; a W8A8 W2 quantizes its inputs as their GELU is
                // taken); then W3 once per node and the bias once per attended neighbour.
                let sums = &mut sums[..n * h];
                sums.fill(0.0);
                self.w2.forward_gelu_sum(pre, m, GeluSum { group: k, weights: Some(&att[..m]) }, sums);
                self.w3_sum.forward(sums, n, dh_chunk);
                if let Some(b3) = &self.w3.bias {
                    for (r, &c) in counts[..n].iter().enumerate() {
                        for (d, &b) in dh_chunk[r * h..][..h].iter_mut().zip(b3) {
                            *d += c * b;
                        }
                    }
                }
            },
        );
        // The node states' update, then the edge update's node projections of the new states,
        // in parallel over runs of nodes (every step is row by row: the same bits for any
        // split).
        let [w11_self, w11_edge, w11_nbr] = &self.w11_blocks;
        let nc = NODE_CHUNK * h;
        h_v.par_chunks_mut(nc)
            .zip(dh.par_chunks(nc))
            .zip(mask.par_chunks(NODE_CHUNK))
            .zip(self_proj.par_chunks_mut(nc).zip(nbr_proj.par_chunks_mut(nc)))
            .for_each_init(Vec::new, |scratch, (((v, d), m), (sp, np))| {
                for (v, d) in v.iter_mut().zip(d) {
                    *v += d / MESSAGE_SCALE;
                }
                self.norm1.forward_inplace(v);
                self.dense.residual_norm(v, m.len(), &self.norm2, scratch);
                for (row, m) in v.chunks_exact_mut(h).zip(m) {
                    row.iter_mut().for_each(|v| *v *= m);
                }
                w11_self.forward(v, m.len(), sp);
                w11_nbr.forward(v, m.len(), np);
            });
        let next8 = code_chunks(next.w8, rows * k, h, CHUNK * k);
        let next16 = code_chunks16(next.w16, rows * k, h, CHUNK * k);
        h_e.par_chunks_mut(CHUNK * k * h).zip(next8.into_par_iter().zip(next16)).enumerate().for_each_init(
            || (MessageScratch::default(), vec![0f32; CHUNK * k * h]),
            |(scratch, msg), (c, (e_chunk, (next8, next16)))| {
                let start = c * CHUNK;
                let n = e_chunk.len() / (k * h);
                edge_messages(
                    graph,
                    start,
                    n,
                    &self_proj,
                    &nbr_proj,
                    codes.run(e_chunk, start * k, n * k),
                    w11_edge,
                    &self.w12,
                    &self.w13,
                    scratch,
                    msg,
                );
                let len = e_chunk.len();
                self.norm3.add_forward_inplace(e_chunk, &msg[..len]);
                if let Some(out) = next8 {
                    quantize_rows_into(e_chunk, h, out);
                }
                if let Some(out) = next16 {
                    quantize_rows16_into(e_chunk, h, out);
                }
            },
        );
    }
}

impl ProteinMpnn {
    /// Features + encoder for a batch. `h_E` is written over the edge features `E` (no second
    /// `[B·L·K, H]` array).
    pub fn encode(&self, batch: &Batch) -> Encoded {
        let (graph, e) = self.edge_features(batch);
        let rows = batch.b * batch.l;
        self.encode_owned(batch, graph, e, vec![0f32; rows * self.hidden()])
    }

    /// Encoder from precomputed edge features `E` (after the norm).
    pub fn encode_edges(&self, batch: &Batch, graph: Graph, e: &[f32]) -> Encoded {
        let rows = batch.b * batch.l;
        self.encode_edges_from(batch, graph, e, vec![0f32; rows * self.hidden()])
    }

    /// [`Self::encode_edges`] from given initial node states `h_v` `[B·L, H]` instead of zeros
    /// (LigandMPNN's membrane models start from `W_v(V)`).
    pub fn encode_edges_from(&self, batch: &Batch, graph: Graph, e: &[f32], h_v: Vec<f32>) -> Encoded {
        self.encode_owned(batch, graph, e.to_vec(), h_v)
    }

    /// [`Self::encode_edges_from`] taking the edge features `E`, whose array becomes `h_E`:
    /// `W_e` runs chunk by chunk, each chunk's `E` copied aside (in cache) and its `h_E`
    /// written in its place.
    fn encode_owned(&self, batch: &Batch, graph: Graph, e: Vec<f32>, mut h_v: Vec<f32>) -> Encoded {
        let _span = tracing::debug_span!("encoder", b = batch.b, l = batch.l).entered();
        let h = self.hidden();
        assert_eq!(h_v.len(), batch.b * batch.l * h, "initial node states");
        let layers = &self.encoder_layers;
        // Whether layer `i` (the decoder after the last) reads the edges as W8A8 codes: they
        // are then quantized as the layer before writes them.
        let reads_codes = |i: usize| match layers.get(i) {
            Some(layer) => layer.reads_edge_codes(),
            None => self.decoder_layers.first().is_some_and(|d| d.w1_edge.is_w8a8()),
        };
        // The range of the int16 codes layer `i` reads the edges as (12-bit or W8A16 edge
        // blocks), quantized the same way.
        let reads16 = |i: usize| layers.get(i).and_then(|l| l.edge_codes16_qmax());
        let (chunk, edge_rows) = (CHUNK * graph.k.max(1), e.len() / h.max(1));
        let (mut codes, mut spare) = (Rows::default(), Rows::default());
        let (mut codes16, mut spare16) = (Rows16::default(), Rows16::default());
        let first = code_chunks(reads_codes(0).then_some(&mut codes), edge_rows, h, chunk);
        let first16 = code_chunks16(reads16(0).map(|qmax| (&mut codes16, qmax)), edge_rows, h, chunk);
        let mut h_e = e;
        h_e.par_chunks_mut(chunk * h).zip(first.into_par_iter().zip(first16)).for_each_init(
            Vec::new,
            |inp, (out, (q, q16))| {
                inp.clear();
                inp.extend_from_slice(out);
                self.w_e.forward_edges(inp, inp.len() / h, graph.k, out);
                if let Some(q) = q {
                    quantize_rows_into(out, h, q);
                }
                if let Some(q) = q16 {
                    quantize_rows16_into(out, h, q);
                }
            },
        );
        for (i, layer) in layers.iter().enumerate() {
            let next = reads_codes(i + 1);
            let next16 = reads16(i + 1);
            let mine16 = reads16(i).is_some();
            layer.forward(
                &graph,
                &batch.mask,
                &mut h_v,
                &mut h_e,
                EdgeCodes { w8: reads_codes(i).then_some(&codes), w16: mine16.then_some(&codes16) },
                NextCodes { w8: next.then_some(&mut spare), w16: next16.map(|qmax| (&mut spare16, qmax)) },
            );
            if next {
                std::mem::swap(&mut codes, &mut spare);
            }
            if next16.is_some() {
                std::mem::swap(&mut codes16, &mut spare16);
            }
        }
        let h_e_q = reads_codes(layers.len()).then_some(codes);
        Encoded { graph, mask: batch.mask.clone(), h_v, h_e, h_e_q, hidden: h }
    }
}
