//! The k-nearest-neighbour graph over Cα atoms, with the official masking and tie-breaking.
//!
//! The official `_dist` computes `D = mask_i·mask_j·sqrt(|X_j − X_i|² + 1e-6)`, replaces masked
//! pairs by the row maximum, and takes the `min(k, L)` smallest with `topk`. We select the same
//! values; among exactly equal values the lower index comes first (`topk` leaves that order
//! unspecified, and it only matters for rows of missing residues, whose outputs are masked).

use rayon::prelude::*;

/// Neighbour lists of a batch: `e_idx[b, i, k]` (indices within item `b`) and the adjusted
/// distances `d_neighbors[b, i, k]` that the Cα–Cα RBF is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub b: usize,
    pub l: usize,
    pub k: usize,
    pub e_idx: Vec<u32>,
    pub d_neighbors: Vec<f32>,
}

/// `sqrt(|a − b|² + 1e-6)` in the official float32 operation order.
#[inline]
pub fn dist_eps(a: &[f32], b: &[f32]) -> f32 {
    let dx = b[0] - a[0];
    let dy = b[1] - a[1];
    let dz = b[2] - a[2];
    (dx * dx + dy * dy + dz * dz + 1e-6).sqrt()
}

impl Graph {
    /// Builds the graph from Cα coordinates `ca[b, l, 3]` and `mask[b, l]`.
    pub fn build(ca: &[f32], mask: &[f32], b: usize, l: usize, top_k: usize) -> Graph {
        let k = top_k.min(l);
        let mut e_idx = vec![0u32; b * l * k];
        let mut d_neighbors = vec![0f32; b * l * k];
        e_idx
            .par_chunks_mut(k.max(1))
            .zip(d_neighbors.par_chunks_mut(k.max(1)))
            .enumerate()
            .for_each_init(
                || Vec::with_capacity(l),
                |row, (ri, (idx_out, d_out))| {
                    if k == 0 {
                        return;
                    }
                    let (bi, i) = (ri / l, ri % l);
                    let base = bi * l;
                    let mi = mask[base + i];
                    row.clear();
                    let mut d_max = 0f32;
                    for j in 0..l {
                        let m2 = mi * mask[base + j];
                        let d = m2 * dist_eps(&ca[(base + i) * 3..][..3], &ca[(base + j) * 3..][..3]);
                        d_max = d_max.max(d);
                        row.push((d, m2, j as u32));
                    }
                    for e in row.iter_mut() {
                        e.0 += (1.0 - e.1) * d_max;
                    }
                    let cmp = |a: &(f32, f32, u32), b: &(f32, f32, u32)| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2));
                    if k < l {
                        row.select_nth_unstable_by(k - 1, cmp);
                    }
                    let top = &mut row[..k];
                    top.sort_unstable_by(cmp);
                    for (n, e) in top.iter().enumerate() {
                        idx_out[n] = e.2;
                        d_out[n] = e.0;
                    }
                },
            );
        Graph { b, l, k, e_idx, d_neighbors }
    }

    /// Global row (over the batch) of neighbour `n` of node `row`.
    #[inline]
    pub fn neighbor_row(&self, row: usize, n: usize) -> usize {
        (row / self.l) * self.l + self.e_idx[row * self.k + n] as usize
    }
}
