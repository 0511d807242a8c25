//! The rows a per-target conditional pass must recompute.
//!
//! `conditional_probs()` decodes the whole structure once per target position, each time in an
//! order that differs from one shared base order only in where the target stands. The target's
//! final state depends on few rows (its backward neighbours, theirs, ... one hop per layer), and
//! of those only the rows whose inputs differ from the base pass need new states; every other
//! state is the base pass's. [`Cone::of`] lists both per layer; the CPU
//! ([`ProteinMpnn::conditional`](super::ProteinMpnn::conditional)) and the GPU backend compute
//! exactly these rows.

use super::graph::Graph;

/// Per-target row sets of one conditional pass (rows are global row ids).
#[derive(Debug, Clone, Default)]
pub struct Cone {
    /// `needed[l]` for `l = 1..=layers`: rows whose layer-`l` state the target's final state
    /// depends on (`needed[layers]` is the target alone; `needed[0]` is empty).
    pub needed: Vec<Vec<usize>>,
    /// `compute[l]` for `l = 0..layers`: rows whose layer-`l + 1` state is recomputed: the
    /// needed ones whose inputs differ from the base pass (the last layer: the target).
    pub compute: Vec<Vec<usize>>,
}

/// Reusable marks for [`Cone::of`] (stamps instead of clearing `O(rows)` arrays per target).
#[derive(Debug, Clone, Default)]
pub struct ConeMarks {
    seen: Vec<u64>,
    /// `dirty[l][row] == stamp`: the row's layer-`l` state differs from the base pass.
    dirty: Vec<Vec<u64>>,
    stamp: u64,
}

impl Cone {
    /// The rows for `target` decoded in the order whose positions are `pos` (by global row),
    /// against a base pass with positions `base_pos` that differs at most in where the target
    /// stands, through `layers` decoder layers of graph `g`.
    pub fn of(
        g: &Graph,
        layers: usize,
        base_pos: &[usize],
        pos: &[usize],
        target: usize,
        marks: &mut ConeMarks,
    ) -> Cone {
        let rows = g.b * g.l;
        if marks.seen.len() != rows || marks.dirty.len() != layers + 1 {
            *marks = ConeMarks { seen: vec![0; rows], dirty: vec![vec![0; rows]; layers + 1], stamp: 0 };
        }
        let backward = |i: usize, j: usize| pos[j] < pos[i];
        let neighbours = |i: usize| (0..g.k).map(move |nb| g.neighbor_row(i, nb));
        let mut needed: Vec<Vec<usize>> = vec![Vec::new(); layers + 1];
        needed[layers].push(target);
        for l in (1..layers).rev() {
            marks.stamp += 1;
            let stamp = marks.stamp;
            let mut set = Vec::new();
            for &i in &needed[l + 1] {
                for j in std::iter::once(i).chain(neighbours(i).filter(|&j| backward(i, j))) {
                    if marks.seen[j] != stamp {
                        marks.seen[j] = stamp;
                        set.push(j);
                    }
                }
            }
            needed[l] = set;
        }
        marks.stamp += 1;
        let stamp = marks.stamp;
        // A row's own relation to the target changed if the two orders disagree on it.
        let relation_changed =
            |j: usize| neighbours(j).any(|n| n == target && (base_pos[target] < base_pos[j]) != (pos[target] < pos[j]));
        let mut compute: Vec<Vec<usize>> = vec![Vec::new(); layers];
        for l in 0..layers {
            let rows: Vec<usize> = if l + 1 == layers {
                needed[layers].clone()
            } else {
                needed[l + 1]
                    .iter()
                    .copied()
                    .filter(|&j| {
                        j == target
                            || relation_changed(j)
                            || (l > 0
                                && neighbours(j).any(|n| (n == j || backward(j, n)) && marks.dirty[l][n] == stamp))
                    })
                    .collect()
            };
            if l + 1 < layers {
                for &row in &rows {
                    marks.dirty[l + 1][row] = stamp;
                }
            }
            compute[l] = rows;
        }
        Cone { needed, compute }
    }
}
