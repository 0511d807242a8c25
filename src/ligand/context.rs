//! LigandMPNN's atom-context stage (`ProteinFeaturesLigand` and the context layers of `encode`).
//!
//! Every residue's context is computed from its own `M` context atoms only, so the whole stage
//! runs residue by residue (in parallel), with no `[L, M, M, H]` tensor in memory:
//!
//! 1. atoms: the features' `Y`/`Y_t`/`Y_m`, or with side-chain context the side-chain atoms of
//!    the first 16 neighbours that are not designed, placed before them, and the `M` nearest to
//!    the virtual Cβ taken again (torch's `topk`, tie for tie);
//! 2. per atom: RBFs of its distances to N, Cα, C, O, Cβ, the type features
//!    (`type_linear` of element / group / period one-hots) and 4 angle features in the
//!    residue's frame → `node_project_down` → `norm_nodes` → `W_v` (the edge inputs `h_E_context`);
//!    `norm_y_nodes(y_nodes(one-hot))` → `W_nodes_y` (atom states);
//! 3. per atom pair: `norm_y_edges(y_edges(rbf(d)))` → `W_edges_y`;
//! 4. per context layer: the atom states through `y_context_encoder_layers[i]` (a `DecLayerJ`
//!    over the residue's atom pairs), then the residue state `h_V_C` (from `W_c(h_V)`) through
//!    `context_encoder_layers[i]` (a `DecLayer` over `[h_E_context, atom states]`);
//! 5. `h_V += V_C_norm(V_C(h_V_C))`.
//!
//! Dense layers, LayerNorm and GELU are the crate's kernels ([`crate::kernels`]); the two
//! context layer types are [`EdgeSetLayer`]s. Atoms and atom pairs whose mask is 0 contribute
//! nothing in the reference (their messages are multiplied by 0, their states by 0), so they are
//! left out here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::checkpoint::{ATOM_TYPE_FEATURES, ATOM_TYPE_ONE_HOT, NODE_PROJECT_IN};
use super::features::LigandFeatures;
use crate::kernels::{LayerNorm, Linear};
use crate::model::features::{push_rbf, rbf_centres};
use crate::model::graph::{dist_eps, Graph};
use crate::model::layers::{EdgeSetLayer, EdgeSetScratch};
use crate::model::topk;
use crate::model::NUM_RBF;

/// Element types `Y_t` the model knows: 0 (none) to 118.
pub const MAX_ELEMENT: usize = 118;

/// Neighbours whose side chains join the context (`E_idx[:, :, :16]`).
pub const SIDE_CHAIN_NEIGHBOURS: usize = 16;

/// The atom37 names after N, CA, C, CB, O: the side-chain atoms of the side-chain context.
pub const SIDE_CHAIN_ATOMS: [&str; 32] = [
    "CG", "CG1", "CG2", "OG", "OG1", "SG", "CD", "CD1", "CD2", "ND1", "ND2", "OD1", "OD2", "SD", "CE", "CE1", "CE2",
    "CE3", "NE", "NE1", "NE2", "OE1", "OE2", "CH2", "NH1", "NH2", "OH", "CZ", "CZ2", "CZ3", "NZ", "OXT",
];

/// The element number of a side-chain atom from its name (C, N, O or S).
pub fn side_chain_element(name: &str) -> i32 {
    match name.as_bytes()[0] {
        b'C' => 6,
        b'N' => 7,
        b'O' => 8,
        b'S' => 16,
        other => panic!("side-chain atom {name} of element {}", other as char),
    }
}

/// `(group, period)` of element `z` (1 to 118) in the periodic table, lanthanides and actinides
/// in group 3; `(0, 0)` for 0 (no atom).
pub fn group_period(z: usize) -> (usize, usize) {
    assert!(z <= MAX_ELEMENT, "element {z}");
    if z == 0 {
        return (0, 0);
    }
    // first element of each period
    const STARTS: [usize; 8] = [1, 3, 11, 19, 37, 55, 87, 119];
    let period = STARTS.iter().rposition(|&s| s <= z).unwrap() + 1;
    let start = STARTS[period - 1];
    let end = STARTS[period] - 1;
    let i = z - start; // position within the period
    let group = match period {
        1 => {
            if z == 1 {
                1
            } else {
                18
            }
        }
        2 | 3 => {
            if i < 2 {
                i + 1
            } else {
                18 - (end - z)
            }
        }
        4 | 5 => i + 1,
        _ => {
            if i < 2 {
                i + 1
            } else if i < 2 + 15 {
                3
            } else {
                18 - (end - z)
            }
        }
    };
    (group, period)
}

/// The 147-wide one-hot of element `z`: element (120), group (19), period (8).
fn type_one_hot(z: usize) -> [f32; ATOM_TYPE_ONE_HOT] {
    let mut v = [0f32; ATOM_TYPE_ONE_HOT];
    let (g, p) = group_period(z);
    v[z] = 1.0;
    v[120 + g] = 1.0;
    v[120 + 19 + p] = 1.0;
    v
}

/// The weights of the atom-context stage.
#[derive(Debug, Clone)]
pub struct AtomContext {
    /// `features.node_project_down` (148 → H).
    pub node_project_down: Linear,
    pub norm_nodes: LayerNorm,
    /// `features.type_linear` (147 → 64).
    pub type_linear: Linear,
    /// `features.y_nodes` (147 → H, no bias).
    pub y_nodes: Linear,
    /// `features.y_edges` (16 → H, no bias).
    pub y_edges: Linear,
    pub norm_y_edges: LayerNorm,
    pub norm_y_nodes: LayerNorm,
    pub w_v: Linear,
    pub w_c: Linear,
    pub w_nodes_y: Linear,
    pub w_edges_y: Linear,
    /// `V_C` (no bias).
    pub v_c: Linear,
    pub v_c_norm: LayerNorm,
    /// `context_encoder_layers` (`DecLayer(H, 2H)`).
    pub context_layers: Vec<EdgeSetLayer>,
    /// `y_context_encoder_layers` (`DecLayerJ(H, H)`).
    pub y_context_layers: Vec<EdgeSetLayer>,
    /// `type_linear(one-hot(z))` for every element `z` `[119, 64]`.
    type_table: Vec<f32>,
    /// `norm_y_nodes(y_nodes(one-hot(z)))` `[119, H]`.
    y_node_table: Vec<f32>,
    /// `W_nodes_y` of the above `[119, H]`: the atom states entering the first layer.
    y_state_table: Vec<f32>,
    /// The first `y_context_encoder_layers`' node block of the above `[119, H]`.
    y_own_table: Vec<f32>,
}

/// One residue's context atoms (`M` slots).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResidueAtoms {
    pub y: Vec<[f32; 3]>,
    pub t: Vec<i32>,
    pub m: Vec<f32>,
}

/// The intermediates of one residue's context (for parity tests): `[M, H]` per atom slot.
#[derive(Debug, Clone, Default)]
pub struct ContextTrace {
    pub row: usize,
    pub atoms: ResidueAtoms,
    /// Atom features `V` after `norm_nodes`.
    pub v: Vec<f32>,
    /// `Y_nodes` after `norm_y_nodes`.
    pub y_nodes: Vec<f32>,
    /// `Y_nodes` after each `y_context_encoder_layers[i]`.
    pub y_nodes_layers: Vec<Vec<f32>>,
    /// `Y_edges` after `norm_y_edges` `[M, M, H]`.
    pub y_edges: Vec<f32>,
}

/// Distinct atom pairs per group of residues whose pair work is shared ([`SharedPairs`]):
/// 32 MiB of shared rows with hidden width 128 and 2 context layers. Residues are grouped in
/// order (neighbours in sequence mostly see the same atoms); 7v11 (236 residues, 51 ligand
/// atoms) has 2,555 distinct pairs in all against 147,500 walked residue by residue, 1BC8 (93
/// residues next to DNA) 10,253 against 58,125.
pub const DEFAULT_PAIR_GROUP: usize = 1 << 15;

/// What the atom-context layers compute from an atom pair `(a, b)` alone, once per distinct
/// pair of a group of residues (neighbouring residues mostly see the same ligand atoms):
/// for the first `y_context_encoder_layers` the hidden messages (the atom states entering it
/// are the type table's rows, so the message depends on `a`'s type and both positions only),
/// for the later ones the edge block `W1e·Y_edges(a, b)`. Each row is what the per-residue
/// computation gives for that pair bit for bit (every kernel computes a row from its own
/// inputs only), so sharing changes no number.
pub(crate) struct SharedPairs {
    /// Rows per pair: one per `y_context_encoder_layers`.
    slots: usize,
    /// `[pairs, slots, H]`
    rows: Vec<f32>,
}

/// The distinct atoms and atom pairs of a group of residues. An atom is its position and type
/// (two atoms alike in both give the same numbers).
#[derive(Default)]
struct PairTable {
    atom_ids: HashMap<(u64, u64), u32, BuildHasherDefault<FxHasher>>,
    /// position and element of each distinct atom
    atoms: Vec<([f32; 3], u32)>,
    pair_ids: HashMap<u64, u32, BuildHasherDefault<FxHasher>>,
    /// `(a, b)` atom ids of each distinct pair
    pairs: Vec<(u32, u32)>,
}

impl PairTable {
    fn atom(&mut self, y: [f32; 3], t: i32) -> u32 {
        let key = (
            u64::from(y[0].to_bits()) | u64::from(y[1].to_bits()) << 32,
            u64::from(y[2].to_bits()) | u64::from(t as u32) << 32,
        );
        let next = self.atoms.len() as u32;
        *self.atom_ids.entry(key).or_insert_with(|| {
            self.atoms.push((y, t as u32));
            next
        })
    }

    /// Adds a residue's active atom pairs; returns the pair id of each, in the order
    /// [`AtomContext::residue_context`] walks them (atom `a`, then `b`, over the active atoms).
    fn add_residue(&mut self, atoms: &ResidueAtoms) -> Vec<u32> {
        let ids: Vec<u32> =
            (0..atoms.m.len()).filter(|&a| atoms.m[a] != 0.0).map(|a| self.atom(atoms.y[a], atoms.t[a])).collect();
        let mut rows = Vec::with_capacity(ids.len() * ids.len());
        for &a in &ids {
            for &b in &ids {
                let next = self.pairs.len() as u32;
                let id = *self.pair_ids.entry(u64::from(a) << 32 | u64::from(b)).or_insert_with(|| {
                    self.pairs.push((a, b));
                    next
                });
                rows.push(id);
            }
        }
        rows
    }
}

/// The Fx hash (rustc's): a multiply per word, plenty for small integer keys.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Per-thread buffers.
#[derive(Default)]
pub(crate) struct ContextScratch {
    layer: EdgeSetScratch,
    queue: Vec<topk::Entry>,
    rows: Vec<u32>,
}

impl AtomContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node_project_down: Linear,
        norm_nodes: LayerNorm,
        type_linear: Linear,
        y_nodes: Linear,
        y_edges: Linear,
        norm_y_edges: LayerNorm,
        norm_y_nodes: LayerNorm,
        w_v: Linear,
        w_c: Linear,
        w_nodes_y: Linear,
        w_edges_y: Linear,
        v_c: Linear,
        v_c_norm: LayerNorm,
        context_layers: Vec<EdgeSetLayer>,
        y_context_layers: Vec<EdgeSetLayer>,
    ) -> Self {
        assert_eq!(node_project_down.n_in, NODE_PROJECT_IN);
        assert_eq!(type_linear.n_out, ATOM_TYPE_FEATURES);
        let h = w_v.n_out;
        let types = MAX_ELEMENT + 1;
        let one_hots: Vec<f32> = (0..types).flat_map(type_one_hot).collect();
        let mut type_table = vec![0f32; types * ATOM_TYPE_FEATURES];
        type_linear.forward(&one_hots, types, &mut type_table);
        let mut y_node_table = vec![0f32; types * h];
        y_nodes.forward(&one_hots, types, &mut y_node_table);
        norm_y_nodes.forward_inplace(&mut y_node_table);
        let mut y_state_table = vec![0f32; types * h];
        w_nodes_y.forward(&y_node_table, types, &mut y_state_table);
        let mut y_own_table = Vec::new();
        if let Some(first) = y_context_layers.first() {
            first.node_own(&y_state_table, types, &mut y_own_table);
        }
        AtomContext {
            node_project_down,
            norm_nodes,
            type_linear,
            y_nodes,
            y_edges,
            norm_y_edges,
            norm_y_nodes,
            w_v,
            w_c,
            w_nodes_y,
            w_edges_y,
            v_c,
            v_c_norm,
            context_layers,
            y_context_layers,
            type_table,
            y_node_table,
            y_state_table,
            y_own_table,
        }
    }

    pub fn hidden(&self) -> usize {
        self.w_v.n_out
    }

    /// Residue `i`'s context atoms: the features' `Y`, or with `side_chains` the side-chain
    /// atoms of its first 16 neighbours that are not designed followed by `Y`, the `M` nearest
    /// to the virtual Cβ `cb` kept (`M` = `f.atom_context_num`).
    pub(crate) fn residue_atoms(
        f: &LigandFeatures,
        graph: &Graph,
        cb: [f32; 3],
        i: usize,
        side_chains: bool,
        queue: &mut Vec<topk::Entry>,
    ) -> ResidueAtoms {
        let m = f.atom_context_num;
        let own = ResidueAtoms {
            y: f.y[i * m..(i + 1) * m].to_vec(),
            t: f.y_t[i * m..(i + 1) * m].to_vec(),
            m: f.y_m[i * m..(i + 1) * m].to_vec(),
        };
        if !side_chains {
            return own;
        }
        let mut all = ResidueAtoms::default();
        let k = graph.k.min(SIDE_CHAIN_NEIGHBOURS);
        for nb in 0..k {
            let n = graph.e_idx[i * graph.k + nb] as usize;
            let keep = 1.0 - f.chain_mask[n];
            for (a, name) in SIDE_CHAIN_ATOMS.iter().enumerate() {
                all.y.push(f.xyz_37[n][5 + a]);
                all.m.push(f.xyz_37_m[n][5 + a] * keep);
                all.t.push(side_chain_element(name));
            }
        }
        all.y.extend_from_slice(&own.y);
        all.m.extend_from_slice(&own.m);
        all.t.extend_from_slice(&own.t);
        let mask_i = f.mask[i];
        let keys = all.y.iter().zip(&all.m).map(|(p, &am)| {
            let d = [cb[0] - p[0], cb[1] - p[1], cb[2] - p[2]];
            let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            let my = mask_i * am;
            d2 * my + (1.0 - my) * 10000.0
        });
        topk::smallest(keys, m, queue);
        let mut out = ResidueAtoms::default();
        for &(_, j) in queue.iter() {
            let j = j as usize;
            out.y.push(all.y[j]);
            out.t.push(all.t[j]);
            out.m.push(all.m[j]);
        }
        out
    }

    /// The 148 node inputs of atom `y` of type `t` for a residue with backbone `bb`
    /// (N, Cα, C, O, Cβ), the official `D_all` row.
    fn node_inputs(&self, bb: &[[f32; 3]; 5], y: [f32; 3], t: usize, mu: &[f32; NUM_RBF], out: &mut [f32]) {
        for (a, atom) in bb.iter().enumerate() {
            push_rbf(&mut out[a * NUM_RBF..(a + 1) * NUM_RBF], dist_eps(&y, atom), mu);
        }
        let off = 5 * NUM_RBF;
        out[off..off + ATOM_TYPE_FEATURES]
            .copy_from_slice(&self.type_table[t * ATOM_TYPE_FEATURES..(t + 1) * ATOM_TYPE_FEATURES]);
        out[off + ATOM_TYPE_FEATURES..off + ATOM_TYPE_FEATURES + 4].copy_from_slice(&angle_features(bb, y));
    }

    /// Runs the context stage of residue `i` (backbone `bb`, residue mask `mask_i`, atoms
    /// `atoms`) from `h_v_c = W_c(h_V_i)`, leaving in `layers_out[l]` the state after context
    /// layer `l`. With `trace`, also records every intermediate over all `M` atom slots. With
    /// `shared` (not with `trace`), the atom-pair work comes from a [`SharedPairs`] table
    /// (`rows`: the table row of each active atom pair, in the order walked here) instead of
    /// being computed for this residue: the same bits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn residue_context(
        &self,
        bb: &[[f32; 3]; 5],
        mask_i: f32,
        atoms: &ResidueAtoms,
        h_v_c: &mut [f32],
        layers_out: &mut [&mut [f32]],
        mut trace: Option<&mut ContextTrace>,
        shared: Option<(&SharedPairs, &[u32])>,
        scratch: &mut ContextScratch,
    ) {
        assert!(trace.is_none() || shared.is_none(), "a trace computes every atom pair itself");
        let h = self.hidden();
        let m_slots = atoms.m.len();
        if mask_i == 0.0 && trace.is_none() {
            // every context layer multiplies this residue's state by its mask
            h_v_c.fill(0.0);
            for out in layers_out.iter_mut() {
                out.fill(0.0);
            }
            return;
        }
        let mu = rbf_centres();
        // Slots whose node features are computed: the active atoms, or all of them for a trace.
        let active: Vec<usize> = (0..m_slots).filter(|&a| atoms.m[a] != 0.0).collect();
        let slots: Vec<usize> = if trace.is_some() { (0..m_slots).collect() } else { active.clone() };
        let n_slots = slots.len();
        let mut raw = vec![0f32; n_slots * NODE_PROJECT_IN];
        for (r, &a) in slots.iter().enumerate() {
            let t = atoms.t[a] as usize;
            self.node_inputs(bb, atoms.y[a], t, &mu, &mut raw[r * NODE_PROJECT_IN..(r + 1) * NODE_PROJECT_IN]);
        }
        let mut v = vec![0f32; n_slots * h];
        self.node_project_down.forward(&raw, n_slots, &mut v);
        self.norm_nodes.forward_inplace(&mut v);
        let mut h_e_ctx = vec![0f32; n_slots * h];
        self.w_v.forward(&v, n_slots, &mut h_e_ctx);
        // position of each active atom among the slots
        let act_slot: Vec<usize> = active.iter().map(|a| slots.iter().position(|s| s == a).unwrap()).collect();
        let n_act = active.len();
        // atom states of the active atoms
        let mut y_state = vec![0f32; n_act * h];
        for (r, &a) in active.iter().enumerate() {
            let t = atoms.t[a] as usize;
            y_state[r * h..(r + 1) * h].copy_from_slice(&self.y_state_table[t * h..(t + 1) * h]);
        }
        // atom pairs of active atoms (a, then b)
        let mut pair_node = Vec::with_capacity(n_act * n_act);
        let mut pair_att = Vec::with_capacity(n_act * n_act);
        for (ra, &a) in active.iter().enumerate() {
            for &b in &active {
                pair_node.push(ra as u32);
                pair_att.push(atoms.m[a] * atoms.m[b]);
            }
        }
        // `Y_edges` inputs, unless a shared table holds what the layers make of them
        let y_edge_in = match shared {
            Some(_) => Vec::new(),
            None => {
                let pos: Vec<[f32; 3]> = active.iter().map(|&a| atoms.y[a]).collect();
                self.pair_edge_inputs(pos.iter().flat_map(|ya| pos.iter().map(move |yb| (*ya, *yb))), &mu)
            }
        };
        let node_mask: Vec<f32> = active.iter().map(|&a| atoms.m[a]).collect();
        let ctx_node = vec![0u32; n_act];
        let mut ctx_in = vec![0f32; n_act * 2 * h];
        if let Some(tr) = trace.as_deref_mut() {
            tr.atoms = atoms.clone();
            tr.v = v.clone();
            tr.y_nodes = atoms
                .t
                .iter()
                .flat_map(|&t| self.y_node_table[t as usize * h..(t as usize + 1) * h].iter().copied())
                .collect();
            tr.y_edges = self.all_pair_edges(atoms, &mu);
            tr.y_nodes_layers.clear();
        }
        for (l, (y_layer, c_layer)) in self.y_context_layers.iter().zip(&self.context_layers).enumerate() {
            match shared {
                None => {
                    y_layer.forward(&mut y_state, &node_mask, &y_edge_in, &pair_node, &pair_att, &mut scratch.layer)
                }
                Some((table, rows)) => {
                    let at = &mut scratch.rows;
                    at.clear();
                    at.extend(rows.iter().map(|&r| r * table.slots as u32 + l as u32));
                    let s = &mut scratch.layer;
                    if l == 0 {
                        y_layer.forward_shared_messages(
                            &mut y_state,
                            &node_mask,
                            &table.rows,
                            at,
                            &pair_node,
                            &pair_att,
                            s,
                        );
                    } else {
                        y_layer.forward_shared_pre(&mut y_state, &node_mask, &table.rows, at, &pair_node, &pair_att, s);
                    }
                }
            }
            for (r, &s) in act_slot.iter().enumerate() {
                ctx_in[r * 2 * h..r * 2 * h + h].copy_from_slice(&h_e_ctx[s * h..(s + 1) * h]);
                ctx_in[r * 2 * h + h..(r + 1) * 2 * h].copy_from_slice(&y_state[r * h..(r + 1) * h]);
            }
            c_layer.forward(h_v_c, &[mask_i], &ctx_in, &ctx_node, &node_mask, &mut scratch.layer);
            layers_out[l].copy_from_slice(h_v_c);
            if let Some(tr) = trace.as_deref_mut() {
                let mut full = vec![0f32; m_slots * h];
                for (r, &a) in active.iter().enumerate() {
                    full[a * h..(a + 1) * h].copy_from_slice(&y_state[r * h..(r + 1) * h]);
                }
                tr.y_nodes_layers.push(full);
            }
        }
    }

    /// The `Y_edges` inputs of the layers, `W_edges_y(norm_y_edges(y_edges(rbf(|y_b − y_a|))))`,
    /// of atom pairs `(y_a, y_b)`, `[pairs, H]`.
    fn pair_edge_inputs(&self, pairs: impl Iterator<Item = ([f32; 3], [f32; 3])>, mu: &[f32; NUM_RBF]) -> Vec<f32> {
        let h = self.hidden();
        let mut rbf = Vec::new();
        for (ya, yb) in pairs {
            let e = rbf.len();
            rbf.resize(e + NUM_RBF, 0.0);
            push_rbf(&mut rbf[e..], dist_eps(&yb, &ya), mu);
        }
        let n_pairs = rbf.len() / NUM_RBF;
        let mut y_edges = vec![0f32; n_pairs * h];
        self.y_edges.forward(&rbf, n_pairs, &mut y_edges);
        self.norm_y_edges.forward_inplace(&mut y_edges);
        let mut y_edge_in = vec![0f32; n_pairs * h];
        self.w_edges_y.forward(&y_edges, n_pairs, &mut y_edge_in);
        y_edge_in
    }

    /// What the atom-context layers compute from an atom pair alone, for every pair of `table`
    /// (see [`SharedPairs`]), in parallel blocks of pairs.
    fn shared_pairs(&self, table: &PairTable) -> SharedPairs {
        const BLOCK: usize = 128;
        let h = self.hidden();
        let slots = self.y_context_layers.len();
        let mu = rbf_centres();
        let mut rows = vec![0f32; table.pairs.len() * slots * h];
        rows.par_chunks_mut(BLOCK * slots * h).enumerate().for_each(|(block, out)| {
            let pairs = &table.pairs[block * BLOCK..][..out.len() / (slots * h)];
            let at = |id: u32| &table.atoms[id as usize];
            let x = self.pair_edge_inputs(pairs.iter().map(|&(a, b)| (at(a).0, at(b).0)), &mu);
            let n = pairs.len();
            let mut pre = vec![0f32; n * h];
            let mut mid = vec![0f32; n * h];
            for (l, layer) in self.y_context_layers.iter().enumerate() {
                layer.edge_pre(&x, n, &mut pre);
                let src = if l == 0 {
                    // the first layer's atom states are the type table's rows
                    let types: Vec<u32> = pairs.iter().map(|&(a, _)| at(a).1).collect();
                    layer.hidden_messages(&self.y_own_table, &mut pre, &types, &mut mid);
                    &mid
                } else {
                    &pre
                };
                for (dst, row) in out.chunks_exact_mut(slots * h).zip(src.chunks_exact(h)) {
                    dst[l * h..(l + 1) * h].copy_from_slice(row);
                }
            }
        });
        SharedPairs { slots, rows }
    }

    /// `norm_y_edges(y_edges(rbf))` over every slot pair `[M, M, H]` (traces only).
    fn all_pair_edges(&self, atoms: &ResidueAtoms, mu: &[f32; NUM_RBF]) -> Vec<f32> {
        let m = atoms.y.len();
        let h = self.hidden();
        let mut rbf = vec![0f32; m * m * NUM_RBF];
        for a in 0..m {
            for b in 0..m {
                let e = a * m + b;
                push_rbf(&mut rbf[e * NUM_RBF..(e + 1) * NUM_RBF], dist_eps(&atoms.y[b], &atoms.y[a]), mu);
            }
        }
        let mut out = vec![0f32; m * m * h];
        self.y_edges.forward(&rbf, m * m, &mut out);
        self.norm_y_edges.forward_inplace(&mut out);
        out
    }

    /// The whole stage over a structure: from the encoder's node states `h_v` `[L, H]`, the
    /// states after each context layer (`[layers][L·H]`), the context actually added
    /// (`V_C_norm(V_C(h_V_C))`, `[L·H]`) and the atom masks used (`[L·M]`).
    ///
    /// Neighbouring residues mostly see the same ligand atoms, so the atom-pair work that does
    /// not depend on the residue (see [`SharedPairs`]) is done once per distinct pair of a group
    /// of residues holding about `max_pairs` distinct pairs at most. `None` computes every
    /// residue on its own (the plain form, for tests): the same bits either way.
    pub(crate) fn run(
        &self,
        f: &LigandFeatures,
        graph: &Graph,
        bb: &[[[f32; 3]; 5]],
        h_v: &[f32],
        side_chains: bool,
        max_pairs: Option<usize>,
    ) -> (Vec<Vec<f32>>, Vec<f32>, Vec<f32>) {
        let h = self.hidden();
        let l = f.len();
        let m = f.atom_context_num;
        let n_layers = self.context_layers.len();
        let mut h_v_c = vec![0f32; l * h];
        self.w_c.forward(h_v, l, &mut h_v_c);
        let atoms: Vec<ResidueAtoms> = (0..l)
            .into_par_iter()
            .map_init(Vec::new, |queue, i| Self::residue_atoms(f, graph, bb[i][4], i, side_chains, queue))
            .collect();
        // per residue: [h_V_C after each layer (n_layers·H) | atom mask (M)]
        let width = n_layers * h + m;
        let mut per_row = vec![0f32; l * width];
        for (row, a) in per_row.chunks_exact_mut(width).zip(&atoms) {
            row[n_layers * h..].copy_from_slice(&a.m);
        }
        let share_pairs = max_pairs.is_some() && !self.y_context_layers.is_empty();
        let pair_budget = max_pairs.unwrap_or(0);
        let mut start = 0;
        while start < l {
            let mut table = PairTable::default();
            let mut rows: Vec<Vec<u32>> = Vec::new();
            let mut end = start;
            while end < l && (!share_pairs || end == start || table.pairs.len() < pair_budget) {
                // a masked residue's context is 0 without any pair work
                let live = share_pairs && f.mask[end] != 0.0;
                rows.push(if live { table.add_residue(&atoms[end]) } else { Vec::new() });
                end += 1;
            }
            let shared = share_pairs.then(|| self.shared_pairs(&table));
            per_row[start * width..end * width]
                .par_chunks_mut(width)
                .zip(h_v_c[start * h..end * h].par_chunks_mut(h))
                .enumerate()
                .for_each_init(ContextScratch::default, |scratch, (k, (row, state))| {
                    let i = start + k;
                    let mut outs: Vec<&mut [f32]> = row[..n_layers * h].chunks_exact_mut(h).collect();
                    let shared = shared.as_ref().map(|t| (t, rows[k].as_slice()));
                    self.residue_context(&bb[i], f.mask[i], &atoms[i], state, &mut outs, None, shared, scratch);
                });
            start = end;
        }
        let layers: Vec<Vec<f32>> = (0..n_layers)
            .map(|li| per_row.chunks_exact(width).flat_map(|r| r[li * h..(li + 1) * h].iter().copied()).collect())
            .collect();
        let atom_mask: Vec<f32> = per_row.chunks_exact(width).flat_map(|r| r[n_layers * h..].iter().copied()).collect();
        let mut added = vec![0f32; l * h];
        self.v_c.forward(&h_v_c, l, &mut added);
        self.v_c_norm.forward_inplace(&mut added);
        (layers, added, atom_mask)
    }

    /// [`Self::run`]'s intermediates for residues `rows` (parity tests).
    pub(crate) fn trace(
        &self,
        f: &LigandFeatures,
        graph: &Graph,
        bb: &[[[f32; 3]; 5]],
        h_v: &[f32],
        side_chains: bool,
        rows: &[usize],
    ) -> Vec<ContextTrace> {
        let h = self.hidden();
        let mut scratch = ContextScratch::default();
        rows.iter()
            .map(|&i| {
                let atoms = Self::residue_atoms(f, graph, bb[i][4], i, side_chains, &mut scratch.queue);
                let mut state = vec![0f32; h];
                self.w_c.forward(&h_v[i * h..(i + 1) * h], 1, &mut state);
                let mut layer_bufs = vec![vec![0f32; h]; self.context_layers.len()];
                let mut outs: Vec<&mut [f32]> = layer_bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
                let mut tr = ContextTrace { row: i, ..Default::default() };
                self.residue_context(
                    &bb[i],
                    f.mask[i],
                    &atoms,
                    &mut state,
                    &mut outs,
                    Some(&mut tr),
                    None,
                    &mut scratch,
                );
                tr
            })
            .collect()
    }
}

/// The official `_make_angle_features(N, Cα, C, Y)`: the atom's direction in the residue's
/// frame (e1 along N − Cα, e2 the part of C − Cα orthogonal to it, e3 = e1 × e2), as
/// `[x/r_xy, y/r_xy, r_xy/r, z/r]`.
fn angle_features(bb: &[[f32; 3]; 5], y: [f32; 3]) -> [f32; 4] {
    let (n, ca, c) = (bb[0], bb[1], bb[2]);
    let sub = |a: [f32; 3], b: [f32; 3]| [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    use crate::model::torch_order::{norm3, normalize3 as normalize};
    let v1 = sub(n, ca);
    let v2 = sub(c, ca);
    let e1 = normalize(v1);
    let dot = e1[0] * v2[0] + e1[1] * v2[1] + e1[2] * v2[2];
    let u2 = [v2[0] - e1[0] * dot, v2[1] - e1[1] * dot, v2[2] - e1[2] * dot];
    let e2 = normalize(u2);
    let e3 = crate::model::torch_order::cross(e1, e2);
    let d = sub(y, ca);
    let local = [e1, e2, e3].map(|e| e[0] * d[0] + e[1] * d[1] + e[2] * d[2]);
    let rxy = (local[0] * local[0] + local[1] * local[1] + 1e-8).sqrt();
    let rxyz = norm3(local) + 1e-8;
    [local[0] / rxy, local[1] / rxy, rxy / rxyz, local[2] / rxyz]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_periods_follow_the_periodic_table() {
        // (z, group, period)
        for (z, g, p) in [
            (1, 1, 1),
            (2, 18, 1),
            (3, 1, 2),
            (6, 14, 2),
            (8, 16, 2),
            (10, 18, 2),
            (11, 1, 3),
            (15, 15, 3),
            (17, 17, 3),
            (20, 2, 4),
            (26, 8, 4),
            (30, 12, 4),
            (35, 17, 4),
            (42, 6, 5),
            (53, 17, 5),
            (56, 2, 6),
            (57, 3, 6),
            (71, 3, 6),
            (72, 4, 6),
            (79, 11, 6),
            (86, 18, 6),
            (88, 2, 7),
            (92, 3, 7),
            (103, 3, 7),
            (104, 4, 7),
            (118, 18, 7),
        ] {
            assert_eq!(group_period(z), (g, p), "element {z}");
        }
        assert_eq!(group_period(0), (0, 0));
    }

    #[test]
    fn side_chain_elements_come_from_atom_names() {
        let z: Vec<i32> = SIDE_CHAIN_ATOMS.iter().map(|n| side_chain_element(n)).collect();
        assert_eq!(&z[..6], &[6, 6, 6, 8, 8, 16]);
        assert_eq!(z[13], 16); // SD
        assert_eq!(z[31], 8); // OXT
        assert_eq!(z.iter().filter(|&&e| e == 7).count(), 8);
    }

    #[test]
    fn angle_features_are_unit_directions() {
        let bb = [[1.46, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.55, 1.42, 0.0], [0.0; 3], [0.0; 3]];
        let f = angle_features(&bb, [0.0, 0.0, 3.0]);
        // straight out of the N-CA-C plane: r_xy ~ 0, z/r = ±1
        assert!(f[2].abs() < 1e-3 && (f[3].abs() - 1.0).abs() < 1e-6, "{f:?}");
        let g = angle_features(&bb, [2.0, 0.0, 0.0]);
        // along e1 (towards N)
        assert!((g[0] - 1.0).abs() < 1e-6 && g[1].abs() < 1e-6 && (g[2] - 1.0).abs() < 1e-6, "{g:?}");
    }
}
