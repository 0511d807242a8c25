//! `torch.topk(x, k, largest=False)` on the CPU, tie for tie.
//!
//! The official k-NN graph is `torch.topk(D_adjust, k, largest=False)`. When several columns
//! share the k-th smallest distance (a structure with at most k usable residues plus masked ones:
//! every masked column sits exactly at the row maximum, next to the farthest valid residue),
//! *which* tied columns are kept is decided by the selection algorithm, not by the values, and it
//! changes the graph of valid residues (one such row moved log-probabilities by 0.37).
//!
//! PyTorch's CPU kernel (`topk_impl_loop`) fills a queue of `(value, index)` pairs and orders it
//! with a comparator that looks at the values only (NaN largest):
//! - `k · 64 ≤ n`: `std::partial_sort(begin, begin + k, end)` (a heap select, then a heap sort);
//! - otherwise `std::nth_element(begin, begin + k − 1, end)`, then `std::sort` of the first
//!   `k − 1` entries.
//!
//! The functions below re-implement those GNU libstdc++ algorithms step by step (introselect
//! with median-of-three pivots, introsort with a final insertion sort, binary heaps), so that
//! tied values end up in the same places as in the official builds (GCC). With distinct values
//! any correct selection agrees; only ties depend on this. `tests` checks the port against
//! `select_nth_unstable` + sort on the values, and `tests/stress_parity.rs` against the official
//! graphs of structures with ties.

/// A queue entry: value, then its column.
pub type Entry = (f32, u32);

/// libstdc++'s comparator for `largest=False`: NaN sorts last.
#[inline]
fn less(x: &Entry, y: &Entry) -> bool {
    (!x.0.is_nan() && y.0.is_nan()) || x.0 < y.0
}

/// The `k` smallest of `values` (ascending, ties as torch orders them) as `(value, column)`,
/// left in `queue[..k]` (the rest of `queue` is scratch and truncated away).
pub fn smallest(values: impl IntoIterator<Item = f32>, k: usize, queue: &mut Vec<Entry>) {
    queue.clear();
    queue.extend(values.into_iter().enumerate().map(|(j, v)| (v, j as u32)));
    select_queue(queue, k);
}

/// [`smallest`] on a queue the caller filled (`(value, column)` in column order).
pub fn select_queue(queue: &mut Vec<Entry>, k: usize) {
    let n = queue.len();
    let k = k.min(n);
    if k == 0 {
        queue.clear();
        return;
    }
    if k * 64 <= n {
        partial_sort(queue, 0, k, n);
    } else {
        nth_element(queue, k - 1);
        sort(&mut queue[..k - 1]);
    }
    queue.truncate(k);
}

/// `floor(log2(n))` for `n ≥ 1` (libstdc++ `__lg`).
#[inline]
fn lg(n: usize) -> usize {
    (usize::BITS - 1 - n.leading_zeros()) as usize
}

/// `std::nth_element(v.begin(), v.begin() + nth, v.end())`.
fn nth_element(v: &mut [Entry], nth: usize) {
    let n = v.len();
    if n == 0 || nth == n {
        return;
    }
    let (mut first, mut last) = (0, n);
    let mut depth = lg(n) * 2;
    while last - first > 3 {
        if depth == 0 {
            heap_select(v, first, nth + 1, last);
            v.swap(first, nth); // the nth element to its final place
            return;
        }
        depth -= 1;
        let cut = unguarded_partition_pivot(v, first, last);
        if cut <= nth {
            first = cut;
        } else {
            last = cut;
        }
    }
    insertion_sort(v, first, last);
}

/// `std::sort(v.begin(), v.end())`: introsort, then a final insertion sort.
fn sort(v: &mut [Entry]) {
    let n = v.len();
    if n == 0 {
        return;
    }
    introsort_loop(v, 0, n, lg(n) * 2);
    final_insertion_sort(v, 0, n);
}

/// libstdc++'s `_S_threshold`: ranges up to this size are left to the insertion sort.
const THRESHOLD: usize = 16;

fn introsort_loop(v: &mut [Entry], first: usize, mut last: usize, mut depth: usize) {
    while last - first > THRESHOLD {
        if depth == 0 {
            partial_sort(v, first, last, last); // heapsort
            return;
        }
        depth -= 1;
        let cut = unguarded_partition_pivot(v, first, last);
        introsort_loop(v, cut, last, depth);
        last = cut;
    }
}

fn final_insertion_sort(v: &mut [Entry], first: usize, last: usize) {
    if last - first > THRESHOLD {
        insertion_sort(v, first, first + THRESHOLD);
        for i in first + THRESHOLD..last {
            unguarded_linear_insert(v, i);
        }
    } else {
        insertion_sort(v, first, last);
    }
}

/// Median of `v[first+1]`, `v[mid]`, `v[last-1]` swapped to `v[first]`, then a Hoare partition
/// of `v[first+1..last]` around it; returns the cut.
fn unguarded_partition_pivot(v: &mut [Entry], first: usize, last: usize) -> usize {
    let mid = first + (last - first) / 2;
    move_median_to_first(v, first, first + 1, mid, last - 1);
    unguarded_partition(v, first + 1, last, first)
}

fn move_median_to_first(v: &mut [Entry], result: usize, a: usize, b: usize, c: usize) {
    let pick = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(result, pick);
}

fn unguarded_partition(v: &mut [Entry], mut first: usize, mut last: usize, pivot: usize) -> usize {
    loop {
        while less(&v[first], &v[pivot]) {
            first += 1;
        }
        last -= 1;
        while less(&v[pivot], &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

fn insertion_sort(v: &mut [Entry], first: usize, last: usize) {
    if first == last {
        return;
    }
    for i in first + 1..last {
        if less(&v[i], &v[first]) {
            let val = v[i];
            v.copy_within(first..i, first + 1);
            v[first] = val;
        } else {
            unguarded_linear_insert(v, i);
        }
    }
}

/// Moves `v[last]` down past every larger entry; an entry not larger than it lies before it.
fn unguarded_linear_insert(v: &mut [Entry], mut last: usize) {
    let val = v[last];
    while last > 0 && less(&val, &v[last - 1]) {
        v[last] = v[last - 1];
        last -= 1;
    }
    v[last] = val;
}

/// `std::__partial_sort`: the `middle − first` smallest of `v[first..last]`, sorted, first.
fn partial_sort(v: &mut [Entry], first: usize, middle: usize, last: usize) {
    heap_select(v, first, middle, last);
    sort_heap(v, first, middle);
}

fn heap_select(v: &mut [Entry], first: usize, middle: usize, last: usize) {
    make_heap(v, first, middle);
    for i in middle..last {
        if less(&v[i], &v[first]) {
            pop_heap(v, first, middle, i);
        }
    }
}

fn make_heap(v: &mut [Entry], first: usize, last: usize) {
    let len = last - first;
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = v[first + parent];
        adjust_heap(v, first, parent, len, value);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// Moves the heap top to `result` and re-heaps `v[first..last]` with `v[result]`'s old entry.
fn pop_heap(v: &mut [Entry], first: usize, last: usize, result: usize) {
    let value = v[result];
    v[result] = v[first];
    adjust_heap(v, first, 0, last - first, value);
}

fn sort_heap(v: &mut [Entry], first: usize, mut last: usize) {
    while last - first > 1 {
        last -= 1;
        pop_heap(v, first, last, last);
    }
}

/// Sifts the hole at `hole` down to a leaf along the larger children, then `value` back up.
fn adjust_heap(v: &mut [Entry], first: usize, mut hole: usize, len: usize, value: Entry) {
    let top = hole;
    let mut second = hole;
    while second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if less(&v[first + second], &v[first + second - 1]) {
            second -= 1;
        }
        v[first + hole] = v[first + second];
        hole = second;
    }
    if len & 1 == 0 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        v[first + hole] = v[first + second - 1];
        hole = second - 1;
    }
    // __push_heap
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(&v[first + parent], &value) {
            break;
        }
        v[first + hole] = v[first + parent];
        hole = parent;
    }
    v[first + hole] = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The selected values are the k smallest in ascending order, whatever the ties.
    #[test]
    fn selects_the_k_smallest_sorted() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut q = Vec::new();
        for _ in 0..2000 {
            let n = rng.gen_range(1..4000);
            let k = rng.gen_range(1..=64.min(n));
            let distinct = rng.gen_range(1..50);
            let v: Vec<f32> = (0..n).map(|_| rng.gen_range(0..distinct) as f32).collect();
            smallest(v.iter().copied(), k, &mut q);
            let mut want = v.clone();
            want.sort_by(f32::total_cmp);
            let got: Vec<f32> = q.iter().map(|e| e.0).collect();
            assert_eq!(got, want[..k], "n={n} k={k}");
            let mut cols: Vec<u32> = q.iter().map(|e| e.1).collect();
            cols.sort_unstable();
            cols.dedup();
            assert_eq!(cols.len(), k, "each column at most once");
            assert!(q.iter().all(|&(x, j)| v[j as usize] == x));
        }
    }

    /// Both of torch's paths (nth_element + sort, partial_sort) and the sort's heapsort fallback.
    #[test]
    fn std_sort_and_nth_element_order() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        for n in [1usize, 2, 3, 4, 5, 16, 17, 100, 1000] {
            let mut v: Vec<Entry> = (0..n).map(|j| (rng.gen_range(0..7) as f32, j as u32)).collect();
            sort(&mut v);
            assert!(v.windows(2).all(|w| w[0].0 <= w[1].0));
            let mut w: Vec<Entry> = (0..n).map(|j| (rng.gen_range(0..7) as f32, j as u32)).collect();
            let nth = n / 2;
            nth_element(&mut w, nth);
            assert!(w[..nth].iter().all(|e| e.0 <= w[nth].0));
            assert!(w[nth..].iter().all(|e| e.0 >= w[nth].0));
        }
    }

    /// NaN sorts after every number.
    #[test]
    fn nan_last() {
        let mut q = Vec::new();
        smallest([f32::NAN, 1.0, f32::NAN, 0.5], 3, &mut q);
        assert_eq!(q[0], (0.5, 3));
        assert_eq!(q[1], (1.0, 1));
        assert!(q[2].0.is_nan());
    }
}

/// torch's own choices: `tests/data/torch_topk.json` (written by `scripts/torch_topk_cases.py`
/// with PyTorch 2.15) holds, for tie-heavy rows made by a hash mirrored here, the indices
/// `torch.topk(largest=False)` returned, over both of its paths.
#[cfg(test)]
mod torch_choices {
    fn splitmix(x: u64) -> u64 {
        let x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn row(n: u64, distinct: u64, masked: u64, seed: u64) -> Vec<f32> {
        let h: Vec<u64> = (0..n).map(|j| splitmix(seed * 1_000_003 + j)).collect();
        if distinct > 0 {
            return h.iter().map(|x| (x % distinct) as f32).collect();
        }
        let v: Vec<f32> = h.iter().map(|x| ((x % 100_000) as f64 / 100.0) as f32).collect();
        let top = v.iter().copied().fold(f32::MIN, f32::max);
        h.iter().zip(&v).map(|(x, &y)| if (x >> 40) % masked == 0 { top } else { y }).collect()
    }

    #[test]
    fn same_indices_as_torch() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/torch_topk.json");
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = data["cases"].as_array().unwrap();
        assert!(cases.len() > 400);
        let mut q = Vec::new();
        let (mut partial, mut nth) = (0, 0);
        for c in cases {
            let get = |key: &str| c[key].as_u64().unwrap();
            let (n, k) = (get("n"), get("k") as usize);
            let v = row(n, get("distinct"), get("masked"), get("seed"));
            super::smallest(v.iter().copied(), k, &mut q);
            let got: Vec<u64> = q.iter().map(|e| e.1 as u64).collect();
            let want: Vec<u64> = c["idx"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            assert_eq!(got, want, "n={n} k={k} case {c}");
            if k * 64 <= n as usize {
                partial += 1;
            } else {
                nth += 1;
            }
        }
        assert!(partial > 20 && nth > 200, "both of torch's paths are covered");
    }
}
