//! The table GELU of a message MLP's hidden rows and their W8A8 codes in one pass: what the
//! next W8A8 layer reads ([`super::w8a8::Rows`]).
//!
//! The plain sequence ([`gelu_codes_unfused`], the twin) takes three trips through memory per
//! row: the GELU reads and writes the row, then the quantizer reads it twice (once for its
//! extremes, once for the codes); the encoder's edge messages add their node projections
//! (`x + (self_i + nbr_j)`) in a fourth. On AVX-512 ([`gelu_codes`] on rows of at most 128
//! values, a multiple of 16) a row is loaded once into registers, where its addends, GELU,
//! extremes and codes are computed; only the 1-byte codes are stored. Every float32 operation
//! is the twin's, in its order (the addition, [`crate::kernels::gelu_fast`]'s, the quantizer's
//! of [`super::avx512`]), so the codes, scales, zero points and sums are the same bytes
//! (tested); rows with a NaN or an infinity take the twin's row quantizer as the twin does.

use super::w8a8::RowsMut;

/// The addends of the encoder's edge messages: row `r` of the input becomes
/// `x[r] + (own[r / group] + nbr[index[r]])` before its GELU (`n` values each), exactly
/// `crate::model::encoder::edge_pre`'s sum.
#[derive(Debug, Clone, Copy)]
pub struct EdgeAdd<'a> {
    /// `[rows / group, n]`: each node's own projection (the first row of the run is node 0).
    pub own: &'a [f32],
    /// `[*, n]`: every node's neighbour projection, indexed by `index`.
    pub nbr: &'a [f32],
    /// Per row, its neighbour's row of `nbr`.
    pub index: &'a [u32],
    pub group: usize,
}

/// `out ← codes(gelu(x[r] (+ add)))` for the rows of `x` (`n` values each, as many as `out`
/// has scales), the table GELU ([`crate::kernels::gelu_fast`]) and
/// [`super::w8a8::quantize_rows_into`]'s codes; `x` is left holding scratch values. Fused on
/// the AVX-512 VNNI path for `n ≤ 128`, a multiple of 16; elsewhere [`gelu_codes_unfused`]
/// (the same bytes).
pub fn gelu_codes(x: &mut [f32], n: usize, add: Option<EdgeAdd>, out: RowsMut) {
    let rows = out.scale.len();
    assert!(x.len() >= rows * n && out.q.len() >= rows * out.width && out.width >= n);
    assert!(out.zero.len() == rows && out.sum.len() == rows);
    if let Some(a) = add {
        assert!(a.group > 0 && a.index.len() >= rows && a.own.len() >= rows.div_ceil(a.group) * n);
        assert!(a.index[..rows].iter().all(|&j| (j as usize + 1) * n <= a.nbr.len()));
    }
    #[cfg(target_arch = "x86_64")]
    if super::w8a8::vnni() && n.is_multiple_of(16) && (16..=128).contains(&n) {
        // SAFETY: the CPU has AVX-512F/BW (checked by `vnni`); the sizes are asserted above.
        unsafe {
            match n / 16 {
                1 => avx512::<1>(x, add, out),
                2 => avx512::<2>(x, add, out),
                3 => avx512::<3>(x, add, out),
                4 => avx512::<4>(x, add, out),
                5 => avx512::<5>(x, add, out),
                6 => avx512::<6>(x, add, out),
                7 => avx512::<7>(x, add, out),
                _ => avx512::<8>(x, add, out),
            }
        }
        return;
    }
    gelu_codes_unfused(x, n, add, out);
}

/// The plain sequence [`gelu_codes`] fuses: the addends, then per four rows the table GELU in
/// place and [`super::w8a8::quantize_rows_into`].
pub fn gelu_codes_unfused(x: &mut [f32], n: usize, add: Option<EdgeAdd>, out: RowsMut) {
    let rows = out.scale.len();
    let x = &mut x[..rows * n];
    if let Some(a) = add {
        for (r, p) in x.chunks_exact_mut(n).enumerate() {
            let si = &a.own[r / a.group * n..][..n];
            let sj = &a.nbr[a.index[r] as usize * n..][..n];
            for t in 0..n {
                p[t] += si[t] + sj[t];
            }
        }
    }
    let RowsMut { q, scale, zero, sum, width } = out;
    let runs = x.chunks_mut(4 * n).zip(q.chunks_mut(4 * width)).zip(scale.chunks_mut(4));
    for (((x, q), scale), (zero, sum)) in runs.zip(zero.chunks_mut(4).zip(sum.chunks_mut(4))) {
        crate::kernels::gelu_fast::gelu_fast_inplace(x);
        super::w8a8::quantize_rows_into(x, n, RowsMut { q, scale, zero, sum, width });
    }
}

/// [`gelu_codes`] on zmm for rows of `16·V` values: per row, its `V` vectors loaded (and their
/// addends added) once, then the GELU, extremes, codes and code sum in registers (the
/// operations of `super::avx512::block8`, whose rows are whole vectors here). The rare rows
/// that need the twin's row quantizer (a NaN or an infinity; a zero range) leave the loop
/// through [`cold_row`].
///
/// # Safety
/// The CPU must have AVX-512F/BW; the sizes must be as [`gelu_codes`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn avx512<const V: usize>(x: &mut [f32], add: Option<EdgeAdd>, out: RowsMut) {
    use std::arch::x86_64::*;

    use super::w8a8::row_params;
    let n = 16 * V;
    let g = crate::kernels::gelu_fast::Avx512::new();
    let (w, rows) = (out.width, out.scale.len());
    let (q, scale, zero, sum) =
        (out.q.as_mut_ptr(), out.scale.as_mut_ptr(), out.zero.as_mut_ptr(), out.sum.as_mut_ptr());
    let top = _mm512_set1_epi32(127);
    for r in 0..rows {
        let src = x.as_mut_ptr().add(r * n);
        let mut v = [_mm512_setzero_ps(); V];
        for (i, v) in v.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(src.add(16 * i));
        }
        if let Some(a) = add {
            let si = a.own.as_ptr().add(r / a.group * n);
            let sj = a.nbr.as_ptr().add(*a.index.get_unchecked(r) as usize * n);
            for (i, v) in v.iter_mut().enumerate() {
                *v = _mm512_add_ps(*v, _mm512_add_ps(_mm512_loadu_ps(si.add(16 * i)), _mm512_loadu_ps(sj.add(16 * i))));
            }
        }
        let (mut lo, mut hi, mut fin) = (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps());
        for v in v.iter_mut() {
            *v = g.apply(*v);
            lo = _mm512_min_ps(lo, *v);
            hi = _mm512_max_ps(hi, *v);
            fin = _mm512_add_ps(fin, *v);
        }
        let codes = q.add(r * w);
        let z = _mm512_mul_ps(fin, _mm512_setzero_ps());
        let params = if _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(z, z) == 0 {
            let (l, h) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
            row_params(l, h, false).map(|p| (p, (h - l) / 255.0))
        } else {
            None
        };
        let Some(((inv, zp), s)) = params else {
            for (i, v) in v.iter().enumerate() {
                _mm512_storeu_ps(src.add(16 * i), *v);
            }
            let vals = std::slice::from_raw_parts(src, n);
            let row = std::slice::from_raw_parts_mut(codes, w);
            (*scale.add(r), *zero.add(r), *sum.add(r)) = cold_row(vals, row);
            continue;
        };
        (*scale.add(r), *zero.add(r)) = (s, zp as i32);
        let (vinv, offset) = (_mm512_set1_ps(inv), _mm512_set1_epi32(zp as i32 - 128));
        let mut acc = _mm512_setzero_si512();
        for (i, v) in v.iter().enumerate() {
            let t =
                _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(*v, vinv));
            let c = _mm512_min_epi32(_mm512_add_epi32(t, offset), top);
            acc = _mm512_add_epi32(acc, c);
            _mm_storeu_si128(codes.add(16 * i) as *mut __m128i, _mm512_cvtepi32_epi8(c));
        }
        for i in n..w {
            *codes.add(i) = 0;
        }
        *sum.add(r) = _mm512_reduce_add_epi32(acc);
    }
}

/// A row [`avx512`] leaves to the twin's row quantizer (values with a NaN or an infinity, or a
/// zero range): its codes (padding 0) and `(scale, zero, sum)`, as `quantize_rows_into` gives.
#[cold]
#[inline(never)]
fn cold_row(x: &[f32], codes: &mut [i8]) -> (f32, i32, i32) {
    codes[x.len()..].fill(0);
    super::w8a8::quantize_row_portable(x, &mut codes[..x.len()])
}

#[cfg(test)]
mod tests {
    use super::super::w8a8::Rows;
    use super::*;
    use rand::{Rng, SeedableRng};

    fn run(f: fn(&mut [f32], usize, Option<EdgeAdd>, RowsMut), x: &[f32], n: usize, add: Option<EdgeAdd>) -> Rows {
        let rows = x.len() / n;
        let mut q = Rows::default();
        q.reset(rows, n);
        let mut x = x.to_vec();
        let out = q.chunks_mut(rows.max(1)).pop().unwrap();
        f(&mut x, n, add, out);
        q
    }

    /// The fused pass gives the unfused sequence's bytes for every row width it takes (and the
    /// widths it leaves to the twin), with and without the edge addends, on rows with NaNs,
    /// infinities, all zeros and large values.
    #[test]
    fn fused_equals_the_unfused_sequence() {
        #[cfg(target_arch = "x86_64")]
        if !super::super::w8a8::vnni() {
            eprintln!("skipped: CPU lacks avx512_vnni (fused GELU codes; the twin runs everywhere else)");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for n in [16, 32, 48, 64, 80, 96, 112, 128, 20, 136] {
            let (group, nodes) = (6, 5);
            let rows = group * nodes;
            let mut x: Vec<f32> = (0..rows * n).map(|_| rng.gen_range(-3.0..3.0)).collect();
            x[2 * n + 3] = f32::NAN;
            x[5 * n + 1] = f32::INFINITY;
            x[7 * n..8 * n].fill(0.0);
            x[9 * n..10 * n].iter_mut().for_each(|v| *v *= 1e4);
            let own: Vec<f32> = (0..nodes * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let nbr: Vec<f32> = (0..11 * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let index: Vec<u32> = (0..rows).map(|_| rng.gen_range(0..11)).collect();
            let add = EdgeAdd { own: &own, nbr: &nbr, index: &index, group };
            for add in [None, Some(add)] {
                let (a, b) = (run(gelu_codes, &x, n, add), run(gelu_codes_unfused, &x, n, add));
                assert_eq!(a.q, b.q, "codes, n = {n}, add = {}", add.is_some());
                assert_eq!(a.zero, b.zero);
                assert_eq!(a.sum, b.sum);
                let bits = |r: &Rows| r.scale.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b));
                if add.is_none() {
                    assert_eq!((a.scale[7], a.zero[7], a.sum[7]), (0.0, 128, 0), "an all-zero row");
                }
            }
        }
    }
}
