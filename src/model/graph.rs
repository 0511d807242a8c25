//! The k-nearest-neighbour graph over Cα atoms, with the official masking and tie-breaking.
//!
//! The official `_dist` computes `D = mask_i·mask_j·sqrt(|X_j − X_i|² + 1e-6)`, replaces masked
//! pairs by the row maximum, and takes the `min(k, L)` smallest with `topk`. Ties are common:
//! every masked column of a valid row sits exactly at the row maximum, beside the farthest valid
//! residue, so a structure with at most k usable residues plus masked ones (gaps, waters written
//! as ATOM, residues missing atoms) has its k-th neighbour tied in every valid row. Which tied
//! columns torch keeps is decided by its selection algorithm; [`super::topk`] reproduces it, so
//! the plain scan gives torch's graph tie for tie. The cell list (long structures) is used only
//! for rows whose k-th distance is not tied; tied rows go to the scan.

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

/// One candidate neighbour: adjusted distance, then index.
type Candidate = super::topk::Entry;

#[inline]
fn before(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Structures at least this long use the cell list; shorter ones the plain scan (both exact).
/// Measured crossover with k = 48 (`cargo run --release --example knn_crossover`): the cell list
/// takes 1.9× the scan's time at 200 residues, 1.1× at 500, 0.9× at 700 and 0.45× at 1,500.
pub const CELL_LIST_MIN_LEN: usize = 600;

impl Graph {
    /// Builds the graph from Cα coordinates `ca[b, l, 3]` and `mask[b, l]` of items whose real
    /// lengths are `lengths` (`b = lengths.len()`), with a spatial cell list for long structures
    /// (no L×L work or memory), the plain scan otherwise.
    ///
    /// Each item's valid rows select among its own `lengths[b]` columns only, as the official
    /// code does on the unpadded structure: torch's choice among tied columns depends on the row
    /// length, so padding columns must not take part.
    pub fn build(ca: &[f32], mask: &[f32], l: usize, lengths: &[usize], top_k: usize) -> Graph {
        Self::build_with(ca, mask, l, lengths, top_k, l >= CELL_LIST_MIN_LEN)
    }

    /// [`Graph::build`] with the method chosen by the caller (tests compare the two).
    pub fn build_with(ca: &[f32], mask: &[f32], l: usize, lengths: &[usize], top_k: usize, cells: bool) -> Graph {
        let b = lengths.len();
        let k = top_k.min(l);
        let mut e_idx = vec![0u32; b * l * k];
        let mut d_neighbors = vec![0f32; b * l * k];
        if k == 0 {
            return Graph { b, l, k, e_idx, d_neighbors };
        }
        for (bi, &len) in lengths.iter().enumerate() {
            let ca_b = &ca[bi * l * 3..(bi + 1) * l * 3];
            let mask_b = &mask[bi * l..(bi + 1) * l];
            // the item's own columns (padding rows, masked anyway, scan the whole padded row)
            let len = len.min(l);
            let (ca_own, mask_own) = (&ca_b[..len * 3], &mask_b[..len]);
            let grid = if cells { CellGrid::new(ca_own, mask_own) } else { None };
            e_idx[bi * l * k..(bi + 1) * l * k]
                .par_chunks_mut(k)
                .zip(d_neighbors[bi * l * k..(bi + 1) * l * k].par_chunks_mut(k))
                .enumerate()
                .for_each_init(Vec::new, |row, (i, (idx_out, d_out))| {
                    row.clear();
                    if i < len {
                        let found = grid.as_ref().is_some_and(|g| g.nearest(ca_own, mask_own, i, k, row));
                        if !found {
                            scan_row(ca_own, mask_own, i, k, row);
                        }
                        // an item shorter than k (never padded in practice): padding columns last
                        let mut j = len as u32;
                        while row.len() < k {
                            row.push((0.0, j));
                            j += 1;
                        }
                    } else {
                        scan_row(ca_b, mask_b, i, k, row);
                    }
                    for (n, e) in row.iter().take(k).enumerate() {
                        idx_out[n] = e.1;
                        d_out[n] = e.0;
                    }
                });
        }
        Graph { b, l, k, e_idx, d_neighbors }
    }

    /// Global row (over the batch) of neighbour `n` of node `row`.
    #[inline]
    pub fn neighbor_row(&self, row: usize, n: usize) -> usize {
        (row / self.l) * self.l + self.e_idx[row * self.k + n] as usize
    }
}

/// The official computation for one row: every column, masked pairs at the row maximum.
fn scan_row(ca: &[f32], mask: &[f32], i: usize, k: usize, row: &mut Vec<Candidate>) {
    row.clear(); // the cell list may have left candidates of a row it could not certify
    let l = mask.len();
    let mi = mask[i];
    let mut d_max = 0f32;
    let mut m2s = Vec::with_capacity(l);
    for j in 0..l {
        let m2 = mi * mask[j];
        let d = m2 * dist_eps(&ca[i * 3..][..3], &ca[j * 3..][..3]);
        d_max = d_max.max(d);
        row.push((d, j as u32));
        m2s.push(m2);
    }
    for (e, m2) in row.iter_mut().zip(m2s) {
        e.0 += (1.0 - m2) * d_max;
    }
    super::topk::select_queue(row, k);
}

/// A uniform grid over the valid Cα atoms of one structure.
struct CellGrid {
    origin: [f32; 3],
    dims: [usize; 3],
    /// Atom indices sorted by cell, and each cell's start offset (`dims` product + 1 entries).
    atoms: Vec<u32>,
    starts: Vec<u32>,
    n_valid: usize,
}

const CELL: f32 = 6.0;

impl CellGrid {
    fn new(ca: &[f32], mask: &[f32]) -> Option<CellGrid> {
        let valid: Vec<usize> = (0..mask.len()).filter(|&j| mask[j] != 0.0).collect();
        if valid.is_empty() {
            return None;
        }
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for &j in &valid {
            for d in 0..3 {
                lo[d] = lo[d].min(ca[j * 3 + d]);
                hi[d] = hi[d].max(ca[j * 3 + d]);
            }
        }
        let mut dims = [1usize; 3];
        for d in 0..3 {
            let span = hi[d] - lo[d];
            if !span.is_finite() || span > 1e6 {
                return None;
            }
            dims[d] = ((span / CELL) as usize + 1).min(4096);
        }
        if dims.iter().product::<usize>() > 64 * valid.len() + 4096 {
            return None; // too sparse for a dense grid; the scan is fine
        }
        let grid = CellGrid { origin: lo, dims, atoms: Vec::new(), starts: Vec::new(), n_valid: valid.len() };
        let n_cells = dims.iter().product::<usize>();
        let mut counts = vec![0u32; n_cells + 1];
        let cell_of: Vec<usize> = valid.iter().map(|&j| grid.cell_index(grid.cell_coords(&ca[j * 3..][..3]))).collect();
        for &c in &cell_of {
            counts[c + 1] += 1;
        }
        for c in 0..n_cells {
            counts[c + 1] += counts[c];
        }
        let mut fill = counts.clone();
        let mut atoms = vec![0u32; valid.len()];
        for (&j, &c) in valid.iter().zip(&cell_of) {
            atoms[fill[c] as usize] = j as u32;
            fill[c] += 1;
        }
        Some(CellGrid { atoms, starts: counts, ..grid })
    }

    fn cell_coords(&self, p: &[f32]) -> [usize; 3] {
        let mut c = [0usize; 3];
        for d in 0..3 {
            let v = ((p[d] - self.origin[d]) / CELL).floor();
            c[d] = (v.max(0.0) as usize).min(self.dims[d] - 1);
        }
        c
    }

    fn cell_index(&self, c: [usize; 3]) -> usize {
        (c[0] * self.dims[1] + c[1]) * self.dims[2] + c[2]
    }

    /// The `k` nearest valid atoms of valid row `i`, in the official order, when they can be
    /// certified equal to the plain scan's; `false` sends the row to the scan.
    fn nearest(&self, ca: &[f32], mask: &[f32], i: usize, k: usize, out: &mut Vec<Candidate>) -> bool {
        if mask[i] == 0.0 || self.n_valid <= k {
            return false; // masked rows and tiny structures: the scan's tie rules apply
        }
        let p = &ca[i * 3..][..3];
        let c = self.cell_coords(p);
        let max_ring = *self.dims.iter().max().unwrap_or(&1);
        let mut kth = f32::INFINITY;
        let mut farthest_seen = 0f32;
        let mut nearest_dropped = f32::INFINITY;
        for ring in 0..=max_ring {
            let lo: Vec<isize> = (0..3).map(|d| c[d] as isize - ring as isize).collect();
            let hi: Vec<isize> = (0..3).map(|d| c[d] as isize + ring as isize).collect();
            for x in lo[0].max(0)..=hi[0].min(self.dims[0] as isize - 1) {
                for y in lo[1].max(0)..=hi[1].min(self.dims[1] as isize - 1) {
                    for z in lo[2].max(0)..=hi[2].min(self.dims[2] as isize - 1) {
                        let on_shell = x == lo[0] || x == hi[0] || y == lo[1] || y == hi[1] || z == lo[2] || z == hi[2];
                        if !on_shell {
                            continue;
                        }
                        let cell = self.cell_index([x as usize, y as usize, z as usize]);
                        for &j in &self.atoms[self.starts[cell] as usize..self.starts[cell + 1] as usize] {
                            let d = dist_eps(p, &ca[j as usize * 3..][..3]);
                            farthest_seen = farthest_seen.max(d);
                            out.push((d, j));
                        }
                    }
                }
            }
            if out.len() >= k {
                out.select_nth_unstable_by(k - 1, before);
                kth = out[k - 1].0;
                nearest_dropped = out[k..].iter().fold(nearest_dropped, |m, e| m.min(e.0));
                out.truncate(k);
            }
            // Everything within `ring · CELL` of p has been examined.
            let covered = ring as f32 * CELL;
            if out.len() >= k && kth + 1e-3 < covered {
                break;
            }
            if ring == max_ring && out.len() >= k {
                break; // the whole grid was examined
            }
        }
        if out.len() < k {
            return false;
        }
        // Masked columns sit at the row maximum; they cannot enter the top k if some valid atom
        // is strictly farther than the k-th (n_valid > k guarantees one exists).
        if farthest_seen <= kth {
            return false;
        }
        // A tie at the k-th distance, or among the kept ones, is ordered by torch's selection
        // algorithm: leave such rows to the scan, which reproduces it. Distinct values are
        // ordered the same by any correct selection.
        if nearest_dropped <= kth {
            return false;
        }
        out.sort_unstable_by(before);
        if out.windows(2).any(|w| w[0].0 == w[1].0) {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn cloud(l: usize, seed: u64, masked_every: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // a random walk with 3.8 Å steps, like a chain
        let mut ca = Vec::with_capacity(l * 3);
        let mut p = [0f32; 3];
        for _ in 0..l {
            for v in p.iter_mut() {
                *v += rng.gen_range(-2.2..2.2);
            }
            ca.extend_from_slice(&p);
        }
        let mask = (0..l).map(|i| if masked_every > 0 && i % masked_every == 3 { 0.0 } else { 1.0 }).collect();
        (ca, mask)
    }

    #[test]
    fn cell_list_equals_scan() {
        for &(l, k, every) in &[(300, 48, 0), (400, 48, 7), (250, 16, 5), (60, 48, 4), (200, 48, 0), (1000, 32, 11)] {
            let (ca, mask) = cloud(l, l as u64, every);
            let a = Graph::build_with(&ca, &mask, l, &[l], k, false);
            let b = Graph::build_with(&ca, &mask, l, &[l], k, true);
            assert_eq!(a, b, "l={l} k={k}");
        }
    }

    #[test]
    fn duplicate_coordinates_tie_by_index() {
        // every atom twice: exact ties everywhere
        let (mut ca, _) = cloud(150, 9, 0);
        let copy = ca.clone();
        ca.extend_from_slice(&copy);
        let l = 300;
        let mask = vec![1.0; l];
        let a = Graph::build_with(&ca, &mask, l, &[l], 48, false);
        let b = Graph::build_with(&ca, &mask, l, &[l], 48, true);
        assert_eq!(a, b);
        // own copy is at distance sqrt(1e-6) like self: the two tie for the first two places
        let mut first_two = [a.e_idx[0], a.e_idx[1]];
        first_two.sort_unstable();
        assert_eq!(first_two, [0, 150]);
    }

    #[test]
    fn masked_rows_and_padding() {
        let (ca, mut mask) = cloud(220, 3, 0);
        mask[5] = 0.0;
        let g = Graph::build(&ca, &mask, 220, &[220], 48);
        let mut row: Vec<u32> = g.e_idx[5 * 48..6 * 48].to_vec();
        row.sort_unstable();
        row.dedup();
        assert_eq!(row.len(), 48, "masked rows: 48 distinct neighbours");
        assert!(g.d_neighbors[5 * 48..6 * 48].iter().all(|&d| d == 0.0), "masked rows: all distances 0");
        assert!(!g.e_idx[..5 * 48].contains(&5), "a masked residue is never a neighbour of a valid one here");
    }
}
