//! The dense-layer kernel: `C[M, N] = A[M, K] · Wᵀ (+ C) (+ b)` with `W` pre-packed in panels of
//! 16 output columns (`packed[panel][k][16]`, the same packing on every path).
//!
//! One implementation per instruction set, picked at run time by [`super::isa`]:
//!
//! - [`avx512`]: 12 rows × 32 columns (two panels) per register block, 24 zmm accumulators;
//! - [`avx2`]: 6 rows × 16 columns per register block, 12 ymm accumulators;
//! - [`portable`]: plain Rust over `[f32; 16]` lanes that LLVM vectorizes (NEON on aarch64).
//!
//! [`gemm_gelu_sum`] is the message MLPs' second layer with its epilogue fused: each register
//! block goes through GELU and into its node's neighbour sum instead of being stored (AVX-512;
//! the other paths run the unfused twin [`gemm_gelu_sum_unfused`], which gives the same bits).
//!
//! **Every path computes the same bits.** Each output element is one fused multiply-add chain
//! `acc = fma(a[m, k], w[o, k], acc)` over `k = 0..K` in order, started from [`start_row`]'s
//! value: the bias, 0, or the existing output plus the bias (one float32 addition). Vector lanes
//! run across output columns, never across `k`, so no path reassociates a sum; and the result of
//! a row never depends on how many rows are computed with it, so batching and threading cannot
//! change a number either. [`reference`] (the plain twin, [`super::naive::gemm_packed`]) is the
//! same chain one element at a time; the tests compare every path the CPU has against it and
//! against each other bit for bit.

use super::isa::{self, Isa};

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod portable;

pub use super::naive::gemm_packed as reference;

/// Output columns per panel.
pub const NR: usize = 16;

/// Packs `weight` (`[n_out, n_in]`, row-major) into panels of [`NR`] output columns.
pub fn pack(weight: &[f32], n_out: usize, n_in: usize) -> Vec<f32> {
    let panels = n_out.div_ceil(NR);
    let mut packed = vec![0f32; panels * n_in * NR];
    for o in 0..n_out {
        let (p, c) = (o / NR, o % NR);
        for k in 0..n_in {
            packed[(p * n_in + k) * NR + c] = weight[o * n_in + k];
        }
    }
    packed
}

/// How each output starts before the products are added.
#[derive(Debug, Clone, Copy)]
pub enum Init<'a> {
    Zero,
    Bias(&'a [f32]),
    /// Keep the existing output (and add `bias` when given).
    Accumulate(Option<&'a [f32]>),
}

/// The starting value of outputs `row, c0..c0 + cols` (the first `cols` entries of `dst`, which
/// the caller zeroes): what every path's FMA chain starts from.
#[inline(always)]
pub fn start_row(init: Init, out: &[f32], row: usize, c0: usize, cols: usize, n_out: usize, dst: &mut [f32; NR]) {
    match init {
        Init::Zero => {}
        Init::Bias(b) => dst[..cols].copy_from_slice(&b[c0..c0 + cols]),
        Init::Accumulate(b) => {
            dst[..cols].copy_from_slice(&out[row * n_out + c0..row * n_out + c0 + cols]);
            if let Some(b) = b {
                for (s, &bv) in dst[..cols].iter_mut().zip(&b[c0..c0 + cols]) {
                    *s += bv;
                }
            }
        }
    }
}

/// `out[m, :] = init + a[m, :] · Wᵀ` for `m < rows`, on the process's path ([`isa::active`]).
#[inline]
pub fn gemm(a: &[f32], rows: usize, n_in: usize, packed: &[f32], n_out: usize, init: Init, out: &mut [f32]) {
    gemm_with(isa::active(), a, rows, n_in, packed, n_out, init, out);
}

/// [`gemm`] on the path `isa` (which the CPU must support: panics otherwise).
#[allow(clippy::too_many_arguments)]
pub fn gemm_with(
    isa: Isa,
    a: &[f32],
    rows: usize,
    n_in: usize,
    packed: &[f32],
    n_out: usize,
    init: Init,
    out: &mut [f32],
) {
    assert!(a.len() >= rows * n_in && out.len() >= rows * n_out);
    assert_eq!(packed.len(), n_out.div_ceil(NR) * n_in * NR);
    if let Init::Bias(b) | Init::Accumulate(Some(b)) = init {
        assert!(b.len() >= n_out);
    }
    if rows == 0 || n_out == 0 {
        return;
    }
    if let Some(missing) = isa.missing_feature() {
        panic!("gemm on path {isa}: this CPU lacks {missing}");
    }
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: the CPU has the path's features (checked above) and the asserts bound every
        // access the kernels make.
        Isa::Avx512 => return unsafe { avx512::gemm(a, rows, n_in, packed, n_out, init, out) },
        Isa::Avx2 => return unsafe { avx2::gemm(a, rows, n_in, packed, n_out, init, out) },
        Isa::Portable => {}
    }
    portable::gemm(a, rows, n_in, packed, n_out, init, out);
}

/// Where [`gemm_gelu_sum`] adds each row: row `r` goes to group `r / group` (one node's `k`
/// edge rows), scaled by `weights[r]` when given (rows of weight 0 are skipped).
#[derive(Debug, Clone, Copy)]
pub struct GeluSum<'a> {
    pub group: usize,
    pub weights: Option<&'a [f32]>,
}

/// The message MLP's second layer with its GELU and the neighbour sum fused:
/// `sums[r / group, :] += w_r · gelu(bias + a[r, :] · Wᵀ)` for `r < rows` in row order, on
/// the process's path. The `[rows, n_out]` product is never written: on AVX-512 each register
/// block goes through GELU and into its node's sum before the next one starts.
///
/// Each output is the same FMA chain as [`gemm`]'s, the GELU is [`super::gelu`], and every
/// node's sum adds its rows in order starting from what `sums` holds, so the result is the
/// bits of the unfused twin [`gemm_gelu_sum_unfused`] (the product, [`super::gelu_inplace`],
/// then the sums; tested) on every path.
#[allow(clippy::too_many_arguments)]
pub fn gemm_gelu_sum(
    a: &[f32],
    rows: usize,
    n_in: usize,
    packed: &[f32],
    n_out: usize,
    bias: Option<&[f32]>,
    epi: GeluSum,
    sums: &mut [f32],
) {
    gemm_gelu_sum_with(isa::active(), a, rows, n_in, packed, n_out, bias, epi, sums)
}

/// [`gemm_gelu_sum`] on the path `isa` (which the CPU must support: panics otherwise).
#[allow(clippy::too_many_arguments)]
pub fn gemm_gelu_sum_with(
    isa: Isa,
    a: &[f32],
    rows: usize,
    n_in: usize,
    packed: &[f32],
    n_out: usize,
    bias: Option<&[f32]>,
    epi: GeluSum,
    sums: &mut [f32],
) {
    assert!(epi.group > 0 && rows.is_multiple_of(epi.group), "{rows} rows are not whole groups of {}", epi.group);
    assert!(a.len() >= rows * n_in && sums.len() >= rows / epi.group * n_out);
    assert_eq!(packed.len(), n_out.div_ceil(NR) * n_in * NR);
    assert!(bias.is_none_or(|b| b.len() >= n_out) && epi.weights.is_none_or(|w| w.len() >= rows));
    if rows == 0 || n_out == 0 {
        return;
    }
    if let Some(missing) = isa.missing_feature() {
        panic!("gemm on path {isa}: this CPU lacks {missing}");
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: the CPU has the path's features (checked above) and the asserts bound every
        // access the kernel makes.
        return unsafe { avx512::gemm_gelu_sum(a, rows, n_in, packed, n_out, bias, epi, sums) };
    }
    gemm_gelu_sum_unfused(isa, a, rows, n_in, packed, n_out, bias, epi, sums)
}

/// The plain twin of [`gemm_gelu_sum`] (and what the AVX2 and portable paths run): the
/// product into a buffer, [`super::gelu_inplace_with`], then [`add_rows`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_gelu_sum_unfused(
    isa: Isa,
    a: &[f32],
    rows: usize,
    n_in: usize,
    packed: &[f32],
    n_out: usize,
    bias: Option<&[f32]>,
    epi: GeluSum,
    sums: &mut [f32],
) {
    thread_local! {
        // The products before their GELU (every element is written by the product: no zeroing
        // and no allocation per call on the paths that run this form).
        static OUT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    OUT.with_borrow_mut(|out| {
        out.resize(rows * n_out, 0.0);
        gemm_with(isa, a, rows, n_in, packed, n_out, bias.map_or(Init::Zero, Init::Bias), out);
        super::gelu_inplace_with(isa, out);
        add_rows(out, rows, n_out, epi, sums);
    })
}

/// `sums[r / group, :] += w_r · x[r, :]` for `r < rows` in row order (`x[r, :]` alone when no
/// weights are given; rows of weight 0 skipped): the neighbour sum of the message MLPs.
pub fn add_rows(x: &[f32], rows: usize, n: usize, epi: GeluSum, sums: &mut [f32]) {
    for r in 0..rows {
        let src = &x[r * n..(r + 1) * n];
        let dst = &mut sums[r / epi.group * n..][..n];
        match epi.weights.map(|w| w[r]) {
            Some(0.0) => {}
            Some(w) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d += w * v),
            None => dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every path this CPU has, with a `skipped:` line for each one it lacks.
    fn paths() -> Vec<Isa> {
        for isa in Isa::ALL {
            if let Some(msg) = isa::skip_message(isa) {
                eprintln!("{msg}");
            }
        }
        Isa::available()
    }

    fn random(n: usize, rng: &mut impl Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Every path equals the plain FMA chain bit for bit, on fixed and random shapes (odd sizes,
    /// `n_out` not a multiple of 16 or 32, 1 to 40 rows), for every way an output can start.
    #[test]
    fn every_path_equals_reference_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut shapes = vec![(1, 1, 1), (5, 7, 3), (6, 128, 128), (13, 128, 21), (48, 512, 128), (7, 416, 130)];
        for _ in 0..40 {
            shapes.push((rng.gen_range(1..=40), rng.gen_range(1..=300), rng.gen_range(1..=70)));
        }
        let paths = paths();
        for &(rows, n_in, n_out) in &shapes {
            let a = random(rows * n_in, &mut rng);
            let w = random(n_out * n_in, &mut rng);
            let b = random(n_out, &mut rng);
            let packed = pack(&w, n_out, n_in);
            let start = random(rows * n_out, &mut rng);
            for init in [Init::Zero, Init::Bias(&b), Init::Accumulate(Some(&b)), Init::Accumulate(None)] {
                let mut slow = start.clone();
                reference(&a, rows, n_in, &packed, n_out, init, &mut slow);
                for &isa in &paths {
                    let mut fast = start.clone();
                    gemm_with(isa, &a, rows, n_in, &packed, n_out, init, &mut fast);
                    let (fb, sb): (Vec<u32>, Vec<u32>) =
                        (fast.iter().map(|v| v.to_bits()).collect(), slow.iter().map(|v| v.to_bits()).collect());
                    assert_eq!(fb, sb, "{isa}: {rows}x{n_in}x{n_out} {init:?}");
                }
            }
        }
    }

    /// Large magnitudes and cancellations, where a different summation order would show: the
    /// paths still agree bit for bit (and so do zeros' signs).
    #[test]
    fn paths_agree_on_ill_conditioned_sums() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let (rows, n_in, n_out) = (25, 257, 45);
        let a: Vec<f32> =
            (0..rows * n_in).map(|_| rng.gen_range(-1.0f32..1.0) * 10f32.powi(rng.gen_range(-6..7))).collect();
        let w: Vec<f32> =
            (0..n_out * n_in).map(|_| rng.gen_range(-1.0f32..1.0) * 10f32.powi(rng.gen_range(-6..7))).collect();
        let packed = pack(&w, n_out, n_in);
        let mut results = Vec::new();
        for isa in paths() {
            let mut out = vec![0f32; rows * n_out];
            gemm_with(isa, &a, rows, n_in, &packed, n_out, Init::Zero, &mut out);
            results.push((isa, out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()));
        }
        for (isa, r) in &results[1..] {
            assert_eq!(r, &results[0].1, "{isa} vs {}", results[0].0);
        }
    }

    /// The fused product → GELU → neighbour sum equals its unfused twin bit for bit on every
    /// path: group sizes that do and do not divide the 12-row register blocks, partial panels,
    /// with and without bias and row weights (0, 1 and fractional), over existing sums, and
    /// with infinities (NaN stays NaN).
    #[test]
    fn fused_gelu_sum_equals_the_unfused_twin() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
        let mut cases = vec![(48, 48, 128, 128), (4, 16, 128, 128), (3, 7, 37, 21), (2, 13, 64, 130), (1, 1, 5, 3)];
        for _ in 0..20 {
            cases.push((rng.gen_range(1..=4), rng.gen_range(1..=30), rng.gen_range(1..=140), rng.gen_range(1..=70)));
        }
        let paths = paths();
        for (groups, group, n_in, n_out) in cases {
            let rows = groups * group;
            let mut a = random(rows * n_in, &mut rng);
            if rows * n_in > 10 {
                a[3] = f32::INFINITY;
                a[7] = f32::NAN;
            }
            let w = random(n_out * n_in, &mut rng);
            let b = random(n_out, &mut rng);
            let packed = pack(&w, n_out, n_in);
            let weights: Vec<f32> = (0..rows).map(|r| [0.0, 1.0, 0.5, 1.0][r % 4]).collect();
            let start = random(groups * n_out, &mut rng);
            for (bias, wts) in [(None, None), (Some(&b[..]), None), (Some(&b[..]), Some(&weights[..]))] {
                let epi = GeluSum { group, weights: wts };
                let mut want = start.clone();
                gemm_gelu_sum_unfused(Isa::Portable, &a, rows, n_in, &packed, n_out, bias, epi, &mut want);
                for &isa in &paths {
                    let mut got = start.clone();
                    gemm_gelu_sum_with(isa, &a, rows, n_in, &packed, n_out, bias, epi, &mut got);
                    let same =
                        got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
                    assert!(
                        same,
                        "{isa}: {groups}x{group} rows, {n_in} -> {n_out}, bias {} weights {}",
                        bias.is_some(),
                        wts.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn rows_do_not_depend_on_the_batch() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let (n_in, n_out) = (128, 128);
        let a = random(50 * n_in, &mut rng);
        let w = random(n_out * n_in, &mut rng);
        let packed = pack(&w, n_out, n_in);
        for isa in paths() {
            let mut all = vec![0f32; 50 * n_out];
            gemm_with(isa, &a, 50, n_in, &packed, n_out, Init::Zero, &mut all);
            for r in [0, 5, 6, 11, 12, 37, 49] {
                let mut one = vec![0f32; n_out];
                gemm_with(isa, &a[r * n_in..(r + 1) * n_in], 1, n_in, &packed, n_out, Init::Zero, &mut one);
                assert_eq!(one, all[r * n_out..(r + 1) * n_out], "{isa} row {r}");
            }
        }
    }
}
