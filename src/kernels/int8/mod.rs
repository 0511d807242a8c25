//! int8 dense layers (`--precision int8`). Two algorithms, chosen once per process by the CPU
//! ([`algorithm`]):
//!
//! - **W8A8** ([`w8a8`]) where the CPU has VNNI (AVX-512 VNNI; or AVX-VNNI, the 256-bit form
//!   on AVX2 CPUs, [`avx_vnni`]): int8 weights per output channel × uint8 activations per row
//!   (with a zero point), `vpdpbusd` (4 byte products per 32-bit lane, 4× a float32 FMA's
//!   products per instruction), exact int32 sums. Only per-edge layers (the
//!   `[L·K, H]` products: the message MLPs, the edge embedding, `W_e`) are quantized, each in
//!   the form the layer plan [`crate::model::INT8_PLAN`] gives it: one int8 pass (with the
//!   per-node mean correction of the weights' rounding, [`w8a8::gemm_node_corrected`]), two passes
//!   (`W ≈ s₁·q₁ + s₂·q₂`, the second pass the first one's residual quantized again, over the
//!   same quantized inputs: [`crate::kernels::Linear::with_residual_weights`]), 12-bit weights
//!   and 13-bit inputs through this module's `vpdpwssd` kernel ([`QuantWeights::wide`]) or
//!   float32. The default plan keeps ≥ 99.5 % top-1 agreement with float32 on every parity case; it
//!   puts the per-node feed-forwards at 12 bits too, and the other per-node layers and `W_out`
//!   stay float32 (see
//!   [`crate::model::ProteinMpnn::with_precision`]). Its plain-Rust twin gives the same bits and
//!   runs wherever `MPNN_ISA` forces another path.
//! - **W8A16** (this module's [`gemm`]) elsewhere: int8 weights × int16 activations, below.
//!
//! The algorithm depends on the CPU, not on `MPNN_ISA`: on one machine every forced path gives
//! the same bits, but a VNNI and a non-VNNI machine give different int8 results (both far
//! inside int8's error) unless `MPNN_INT8=w8a8|w8a16` pins the algorithm. W8A8 also uses the
//! int8-only helpers [`crate::kernels::gelu_fast`] (a table GELU) and the cheaper
//! [`crate::model::features::exp_fast`] in the RBFs; both are identical on every path too.
//!
//! ## W8A16
//!
//! For an output `o` and an input row `x` (`Q = 32767` for layers up to 512 inputs):
//!
//! ```text
//! s_w[o] = max_k |W[o,k]| / 127      q_w[o,k] = round(W[o,k] / s_w[o])      (once, at load)
//! s_x    = max_k |x[k]|   / Q        q_x[k]   = round(x[k]   / s_x)         (per row, per call)
//! y[o]   = init[o] + (Σ_k q_w[o,k]·q_x[k]) · (s_x · s_w[o])
//! ```
//!
//! Why int16 inputs: AVX2's only dot-product instructions are `vpmaddubsw` (u8 × i8, saturating
//! int16 pair sums) and `vpmaddwd` (i16 × i16 → i32). Both run at the same rate on this CPU kind,
//! and `vpmaddubsw` also needs a widening step, so 8-bit inputs would cost the same and lose
//! accuracy: measured on the parity structures (with the clipped weight scales below), int8
//! inputs keep 96.8 % top-1 agreement with f32 on the unconditional probabilities and int16
//! inputs 97.6 %. Quantizing the inputs to int16 leaves the weights the only coarse factor. (AVX-512 VNNI's `vpdpbusd` would make 8-bit inputs pay; that CPU kind
//! is not available to test here.)
//!
//! The sum is exact integer arithmetic (`Q` is chosen so that |Σ| ≤ n_in·127·Q < 2³¹), so the
//! result of a row never depends on how rows are blocked, batched or threaded, and [`gemm`]
//! equals its plain twin [`reference`] bit for bit. Weights are packed in panels of 16 output
//! columns holding pairs of `k`: `packed[panel][k / 2][column][k % 2]`.
//!
//! One implementation per instruction set ([`super::isa`]): [`avx512`] (AVX-512BW `vpmaddwd`
//! on 16 columns per zmm, or AVX-512 VNNI's `vpdpwssd`, which multiplies and accumulates in one
//! instruction), [`avx2`] (`vpmaddwd` on ymm, or 256-bit `vpdpwssd` where the CPU has AVX-VNNI
//! or AVX-512 VNNI + VL), and [`portable`] (plain Rust that LLVM vectorizes). The integer sums are exact, and the final rescale `fma(Σ, s_x·s_w, start)` is
//! the same float32 expression on every path, so every path gives the same bits.

use super::gemm::{Init, NR};
use super::isa::{self, Isa};

/// Rows per register block of the AVX2 and portable kernels.
const MR: usize = 6;

/// The largest quantized weight magnitude (symmetric range, -128 unused).
pub const QMAX: f32 = 127.0;

/// The largest weight magnitude of the wide (12-bit) weights of [`QuantWeights::wide`].
pub const WIDE_QMAX: f32 = 2047.0;

/// The largest quantized input magnitude for a layer of `n_in` inputs with int8 weights
/// ([`input_qmax_for`] with [`QMAX`]).
pub fn input_qmax(n_in: usize) -> f32 {
    input_qmax_for(n_in, QMAX)
}

/// The largest quantized input magnitude for a layer of `n_in` inputs whose weights reach
/// `w_qmax`: int16's range, reduced when needed so that no int32 sum can overflow
/// (`2·⌈n_in/2⌉ · w_qmax · qmax ≤ 2³¹ − 1`). With 12-bit weights that is 8,196 (13 bits and a
/// sign) for 128 inputs and 2,521 for the 416 inputs of the edge embedding.
pub fn input_qmax_for(n_in: usize, w_qmax: f32) -> f32 {
    let width = n_in.div_ceil(2) as i64 * 2;
    (i32::MAX as i64 / (width.max(1) * w_qmax as i64)).min(i16::MAX as i64) as f32
}

/// A layer's weights in int8 form (or, [`QuantWeights::wide`], 12-bit integers in the same
/// int16 lanes).
#[derive(Debug, Clone)]
pub struct QuantWeights {
    /// `[panels][k_pairs][NR][2]`, the quantized values as int16.
    pub packed: Vec<i16>,
    /// Per-output-channel scales `s_w`.
    pub scales: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
    /// The largest weight magnitude: [`QMAX`] or [`WIDE_QMAX`]. The inputs' range follows it
    /// ([`QuantWeights::input_qmax`]).
    pub qmax: f32,
}

impl QuantWeights {
    /// Quantizes `weight` (`[n_out, n_in]`, row-major) per output channel to int8, with the
    /// MSE-clipped scale (the clip in `[0.6, 1.0]·max|w|` with the least squared error).
    pub fn new(weight: &[f32], n_out: usize, n_in: usize) -> QuantWeights {
        Self::pack(weight, n_out, n_in, QMAX, weight_scale)
    }

    /// Quantizes `weight` per output channel to 12-bit integers (`|q| ≤ 2047`, max-abs scale):
    /// 16× finer steps than int8 for the same `vpdpwssd` products (the inputs get 13 bits for
    /// 128-wide layers, [`input_qmax_for`]). On AVX-512 VNNI an int16 product runs at half of
    /// `vpdpbusd`'s multiply-add rate (`mpnn bench --peak`), so a wide layer costs what two
    /// int8 passes ([`super::Linear::with_residual_weights`]) cost, with finer weights and
    /// finer inputs; the layer plan's `w12` form ([`crate::model::INT8_PLAN`]).
    pub fn wide(weight: &[f32], n_out: usize, n_in: usize) -> QuantWeights {
        Self::pack(weight, n_out, n_in, WIDE_QMAX, |row| scale_of(row, WIDE_QMAX))
    }

    fn pack(
        weight: &[f32],
        n_out: usize,
        n_in: usize,
        qmax: f32,
        scale: impl Fn(&[f32]) -> (f32, f32),
    ) -> QuantWeights {
        assert_eq!(weight.len(), n_out * n_in);
        let kp = n_in.div_ceil(2);
        let panels = n_out.div_ceil(NR);
        let mut packed = vec![0i16; panels * kp * NR * 2];
        let mut scales = vec![0f32; n_out];
        for o in 0..n_out {
            let row = &weight[o * n_in..(o + 1) * n_in];
            let (s, inv) = scale(row);
            scales[o] = s;
            let (p, c) = (o / NR, o % NR);
            for (k, &w) in row.iter().enumerate() {
                packed[((p * kp + k / 2) * NR + c) * 2 + k % 2] = quantize(w, inv, qmax);
            }
        }
        QuantWeights { packed, scales, n_in, n_out, qmax }
    }

    /// Whether these are the 12-bit weights of [`QuantWeights::wide`].
    pub fn is_wide(&self) -> bool {
        self.qmax > QMAX
    }

    /// The largest quantized input magnitude for this layer ([`input_qmax_for`]).
    pub fn input_qmax(&self) -> f32 {
        input_qmax_for(self.n_in, self.qmax)
    }

    /// Number of `k` pairs (the packed input width is twice this).
    pub fn k_pairs(&self) -> usize {
        self.n_in.div_ceil(2)
    }
}

/// `(scale, 1 / scale)` for a symmetric range `[-qmax, qmax]` over `values`; a zero row gets
/// scale 0 (and all its quantized values are 0).
#[inline(always)]
pub(super) fn scale_of(values: &[f32], qmax: f32) -> (f32, f32) {
    scale_from_max(max_abs(values), qmax)
}

/// [`scale_of`] from the row's `max |v|`.
#[inline(always)]
pub(super) fn scale_from_max(max: f32, qmax: f32) -> (f32, f32) {
    if max > 0.0 && max.is_finite() {
        (max / qmax, qmax / max)
    } else {
        (0.0, 0.0)
    }
}

/// The weight scale of one output channel: the clipping range in `[0.6, 1.0]·max|w|` (steps of
/// 0.01) with the least squared quantization error. Clipping a few large weights buys a finer
/// step for all the others; measured on the parity structures it raises int8's top-1 agreement
/// with f32 on the unconditional probabilities from 96.7 % (plain max-abs) to 97.6 %.
fn weight_scale(row: &[f32]) -> (f32, f32) {
    // The same arithmetic compiled for the process's path (no contraction, one chain per
    // clip), so the same scales on every path; the wider vectors only make loading faster.
    #[cfg(target_arch = "x86_64")]
    match isa::active() {
        // SAFETY: the process's path is one the CPU has.
        Isa::Avx512 => return unsafe { weight_scale_avx512(row) },
        Isa::Avx2 => return unsafe { weight_scale_avx2(row) },
        Isa::Portable => {}
    }
    weight_scale_body(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn weight_scale_avx512(row: &[f32]) -> (f32, f32) {
    weight_scale_body(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weight_scale_avx2(row: &[f32]) -> (f32, f32) {
    weight_scale_body(row)
}

#[inline(always)]
fn weight_scale_body(row: &[f32]) -> (f32, f32) {
    const CLIPS: usize = 41;
    let max = max_abs(row);
    if !(max > 0.0 && max.is_finite()) {
        return (0.0, 0.0);
    }
    let clip: [f32; CLIPS] = std::array::from_fn(|i| max * (0.6 + 0.01 * i as f32));
    let scale = clip.map(|c| c / QMAX);
    let inv = clip.map(|c| QMAX / c);
    // Each clip's squared error summed over the row in order (one float64 chain per clip, as a
    // plain per-clip loop would), the 41 chains side by side so that they vectorize: a model's
    // int8 weights took longer to prepare than several scoring passes with one chain at a time.
    let mut err = [0f64; CLIPS];
    for &w in row {
        for ((e, &s), &i) in err.iter_mut().zip(&scale).zip(&inv) {
            let d = (quantize(w, i, QMAX) as f32 * s - w) as f64;
            *e += d * d;
        }
    }
    let mut best = (f64::MAX, max);
    for (&e, &c) in err.iter().zip(&clip) {
        if e < best.0 {
            best = (e, c);
        }
    }
    (best.1 / QMAX, QMAX / best.1)
}

/// `max |v|` over `values` (0 for none), in 16 lanes so that it vectorizes; a maximum does not
/// depend on the order it is taken in, so every path gives the same value. (A NaN is skipped
/// by `f32::max`, as in the sequential fold this replaces.)
#[inline(always)]
pub(crate) fn max_abs(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for c in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = m.max(v.abs());
        }
    }
    for (m, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *m = m.max(v.abs());
    }
    lanes.iter().fold(0f32, |m, &v| m.max(v))
}

/// `v·inv` rounded to the nearest integer (ties to even) within `[-qmax, qmax]` (NaN gives 0).
/// Adding 1.5·2²³ to a float32 of magnitude below 2²² rounds it to an integer held in the low
/// mantissa bits, read off as an integer: plain float32 and int32 arithmetic that vectorizes on
/// every path, where `f32::round` is a library call per element and a float-to-int16 cast a
/// saturating sequence.
#[inline(always)]
fn quantize(v: f32, inv: f32, qmax: f32) -> i16 {
    const MAGIC: f32 = 12_582_912.0;
    let t = v * inv;
    let t = if t.is_nan() { 0.0 } else { t.max(-qmax).min(qmax) };
    ((t + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) as i16
}

/// Quantizes `rows` rows of `x` (`[rows, n_in]`) to int16 ([`input_qmax`], for int8 weights)
/// into `q` (`[rows, 2·k_pairs]`, odd tails padded with 0) and their scales into `scales`.
pub fn quantize_rows(x: &[f32], rows: usize, n_in: usize, q: &mut Vec<i16>, scales: &mut Vec<f32>) {
    quantize_rows_for(x, rows, n_in, input_qmax(n_in), q, scales)
}

/// [`quantize_rows`] to the range `[-qmax, qmax]` (a layer's [`QuantWeights::input_qmax`]).
pub fn quantize_rows_for(x: &[f32], rows: usize, n_in: usize, qmax: f32, q: &mut Vec<i16>, scales: &mut Vec<f32>) {
    let width = n_in.div_ceil(2) * 2;
    assert!(x.len() >= rows * n_in);
    size_rows(q, scales, rows, width);
    quantize_rows_slices(x, n_in, width, qmax, q, scales);
}

/// The quantizer of [`quantize_rows_for`] into buffers already sized: as many rows as `scales`
/// holds, `q` holding them `width` apart.
fn quantize_rows_slices(x: &[f32], n_in: usize, width: usize, qmax: f32, q: &mut [i16], scales: &mut [f32]) {
    assert!(x.len() >= scales.len() * n_in && q.len() >= scales.len() * width && width >= n_in);
    // The same float32 and integer operations on every path (no contraction, order-free maxima),
    // so the same codes: AVX-512 by hand (`avx512::quantize_rows16`), AVX2 and the rest as one
    // body compiled for the path (the baseline build has SSE2's 4 lanes and no 16-bit narrowing).
    #[cfg(target_arch = "x86_64")]
    match isa::active() {
        // SAFETY: the process's path is one the CPU has.
        Isa::Avx512 => return unsafe { avx512::quantize_rows16(x, n_in, width, qmax, q, scales) },
        Isa::Avx2 => return unsafe { quantize_rows_avx2(x, n_in, width, qmax, q, scales) },
        Isa::Portable => {}
    }
    quantize_rows_body(x, n_in, width, qmax, q, scales);
}

/// Rows quantized to int16 for a layer of [`QuantWeights`] (a 12-bit or W8A16 layer): the codes
/// and scales [`quantize_rows_for`] gives, kept in a buffer of their own so that whoever writes
/// the rows can quantize them while they are in cache, for a later layer to read
/// ([`crate::kernels::Linear::forward_codes16`]).
#[derive(Debug, Clone, Default)]
pub struct Rows16 {
    /// `[rows, width]` codes (padding 0).
    pub q: Vec<i16>,
    pub scales: Vec<f32>,
    pub width: usize,
    /// The code range the rows were quantized to (the reading layer's
    /// [`QuantWeights::input_qmax`]).
    pub qmax: f32,
}

/// A run of [`Rows16`] to write (from [`Rows16::chunks_mut`]).
#[derive(Debug)]
pub struct Rows16Mut<'a> {
    pub q: &'a mut [i16],
    pub scales: &'a mut [f32],
    pub width: usize,
    pub qmax: f32,
}

impl Rows16 {
    /// Room for `rows` rows of `n_in` values quantized to `[-qmax, qmax]` (the contents are
    /// left to [`quantize_rows16_into`]).
    pub fn reset(&mut self, rows: usize, n_in: usize, qmax: f32) {
        self.width = n_in.div_ceil(2) * 2;
        self.qmax = qmax;
        size_rows(&mut self.q, &mut self.scales, rows, self.width);
    }

    /// The rows split into runs of `chunk` rows (the last may be shorter).
    pub fn chunks_mut(&mut self, chunk: usize) -> Vec<Rows16Mut<'_>> {
        let (w, qmax, chunk) = (self.width, self.qmax, chunk.max(1));
        self.q
            .chunks_mut(chunk * w)
            .zip(self.scales.chunks_mut(chunk))
            .map(|(q, scales)| Rows16Mut { q, scales, width: w, qmax })
            .collect()
    }

    /// Codes and scales of rows `start..start + n`.
    pub fn rows(&self, start: usize, n: usize) -> (&[i16], &[f32]) {
        (&self.q[start * self.width..(start + n) * self.width], &self.scales[start..start + n])
    }
}

/// Quantizes the rows of `x` (`n_in` values each, as many as `out` has scales) into `out`: the
/// codes and scales [`quantize_rows_for`] gives.
pub fn quantize_rows16_into(x: &[f32], n_in: usize, out: Rows16Mut) {
    quantize_rows_slices(x, n_in, out.width, out.qmax, out.q, out.scales);
}

/// [`quantize_rows_for`] of `gelu(x)` with the int8 table GELU ([`super::gelu_fast`]), leaving
/// `gelu(x)` in `x`: the same codes as [`super::gelu_fast::gelu_fast_inplace`] followed by
/// [`quantize_rows_for`], in fewer passes over memory on AVX-512.
pub fn quantize_rows_gelu_for(
    x: &mut [f32],
    rows: usize,
    n_in: usize,
    qmax: f32,
    q: &mut Vec<i16>,
    scales: &mut Vec<f32>,
) {
    assert!(x.len() >= rows * n_in);
    #[cfg(target_arch = "x86_64")]
    if isa::active() == Isa::Avx512 {
        let width = n_in.div_ceil(2) * 2;
        size_rows(q, scales, rows, width);
        // SAFETY: the process's path is one the CPU has (AVX-512F).
        return unsafe { avx512::quantize_rows16_gelu(x, n_in, width, qmax, q, scales) };
    }
    super::gelu_fast::gelu_fast_inplace(&mut x[..rows * n_in]);
    quantize_rows_for(x, rows, n_in, qmax, q, scales);
}

/// Sizes the code and scale buffers for `rows` rows of `width`. Every code and scale is written
/// by the quantizers (padding included), so the buffers are only resized: clearing them first
/// cost a `memset` of the whole batch per layer.
fn size_rows(q: &mut Vec<i16>, scales: &mut Vec<f32>, rows: usize, width: usize) {
    q.resize(rows * width, 0);
    q.truncate(rows * width);
    scales.resize(rows, 0.0);
    scales.truncate(rows);
}

#[inline(always)]
fn quantize_rows_body(x: &[f32], n_in: usize, width: usize, qmax: f32, q: &mut [i16], scales: &mut [f32]) {
    for (r, s) in scales.iter_mut().enumerate() {
        *s = quantize_rows_row(&x[r * n_in..(r + 1) * n_in], qmax, &mut q[r * width..(r + 1) * width]);
    }
}

/// One row of [`quantize_rows_body`]: its codes into `codes` (the padding after the row set to
/// 0), its scale returned.
#[inline(always)]
pub(super) fn quantize_rows_row(row: &[f32], qmax: f32, codes: &mut [i16]) -> f32 {
    let (scale, inv) = scale_of(row, qmax);
    for (d, &v) in codes.iter_mut().zip(row) {
        *d = quantize(v, inv, qmax);
    }
    codes[row.len()..].fill(0);
    scale
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_rows_avx2(x: &[f32], n_in: usize, width: usize, qmax: f32, q: &mut [i16], scales: &mut [f32]) {
    quantize_rows_body(x, n_in, width, qmax, q, scales)
}

/// The starting value of output `(m, o)`.
#[inline]
fn start(init: Init, out: &[f32], m: usize, o: usize, n_out: usize) -> f32 {
    match init {
        Init::Zero => 0.0,
        Init::Bias(b) => b[o],
        Init::Accumulate(b) => out[m * n_out + o] + b.map_or(0.0, |b| b[o]),
    }
}

/// `out[m, o] = init + (Σ_k q_x[m,k]·q_w[o,k]) · (s_x[m]·s_w[o])` for `m < rows`, on the
/// process's path ([`isa::active`]).
pub fn gemm(xq: &[i16], xs: &[f32], rows: usize, w: &QuantWeights, init: Init, out: &mut [f32]) {
    gemm_with(isa::active(), xq, xs, rows, w, init, out);
}

/// [`gemm`] on the path `isa` (which the CPU must support: panics otherwise).
pub fn gemm_with(isa: Isa, xq: &[i16], xs: &[f32], rows: usize, w: &QuantWeights, init: Init, out: &mut [f32]) {
    let kp = w.k_pairs();
    assert!(xq.len() >= rows * kp * 2 && xs.len() >= rows && out.len() >= rows * w.n_out);
    if let Init::Bias(b) | Init::Accumulate(Some(b)) = init {
        assert!(b.len() >= w.n_out);
    }
    if let Some(missing) = isa.missing_feature() {
        panic!("int8 gemm on path {isa}: this CPU lacks {missing}");
    }
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY (all): the CPU has the features each kernel enables (checked), and the
        // asserts above bound every access.
        Isa::Avx512 if isa::cpu_has("avx512_vnni") && isa::cpu_has("avx512bw") => {
            return unsafe { avx512::gemm_vnni(xq, xs, rows, w, init, out) }
        }
        Isa::Avx512 if isa::cpu_has("avx512bw") => return unsafe { avx512::gemm_bw(xq, xs, rows, w, init, out) },
        Isa::Avx2 => match w8a8::ymm_vnni() {
            Some(w8a8::YmmVnni::Vex) => return unsafe { avx2::gemm_vnni_vex(xq, xs, rows, w, init, out) },
            Some(w8a8::YmmVnni::Evex) => return unsafe { avx2::gemm_vnni_evex(xq, xs, rows, w, init, out) },
            None => return unsafe { avx2::gemm(xq, xs, rows, w, init, out) },
        },
        Isa::Avx512 => return unsafe { avx2::gemm(xq, xs, rows, w, init, out) },
        Isa::Portable => {}
    }
    portable::gemm(xq, xs, rows, w, init, out);
}

/// The plain twin of [`gemm`]: one exact integer dot product per output.
pub fn reference(xq: &[i16], xs: &[f32], rows: usize, w: &QuantWeights, init: Init, out: &mut [f32]) {
    let kp = w.k_pairs();
    for m in 0..rows {
        for o in 0..w.n_out {
            let (p, c) = (o / NR, o % NR);
            let mut acc = 0i32;
            for k in 0..kp * 2 {
                let wq = w.packed[((p * kp + k / 2) * NR + c) * 2 + k % 2];
                acc += xq[m * kp * 2 + k] as i32 * wq as i32;
            }
            let s = start(init, out, m, o, w.n_out);
            out[m * w.n_out + o] = (acc as f32).mul_add(xs[m] * w.scales[o], s);
        }
    }
}

/// Which int8 algorithm `--precision int8` runs in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// int8 weights × int16 activations ([`QuantWeights`], [`gemm`]): CPUs without VNNI.
    W8A16,
    /// int8 weights × uint8 activations ([`w8a8`]): the default where the CPU has VNNI (AVX-512
    /// VNNI, or AVX-VNNI with AVX2).
    W8A8,
}

/// The variable that forces the int8 algorithm: `MPNN_INT8=w8a8|w8a16`.
pub const ALGORITHM_ENV: &str = "MPNN_INT8";

/// The int8 algorithm of this process, decided once: `MPNN_INT8` when set, else W8A8 where the
/// CPU has VNNI (AVX-512 VNNI, or AVX-VNNI with AVX2 and FMA) and W8A16 elsewhere. It depends on
/// the CPU, not on `MPNN_ISA`: on one machine every forced path runs the same algorithm and
/// gives the same bits (the AVX2 path's ymm VNNI kernels and W8A8's portable twin stand in for
/// the AVX-512 kernel), but a VNNI and a non-VNNI machine differ unless `MPNN_INT8` pins the
/// algorithm.
pub fn algorithm() -> Algorithm {
    static ALGO: std::sync::OnceLock<Algorithm> = std::sync::OnceLock::new();
    *ALGO.get_or_init(|| match std::env::var(ALGORITHM_ENV).ok().as_deref().map(str::trim) {
        None | Some("") => {
            if w8a8::has_vnni() || w8a8::ymm_vnni().is_some() {
                Algorithm::W8A8
            } else {
                Algorithm::W8A16
            }
        }
        Some(v) if v.eq_ignore_ascii_case("w8a8") => Algorithm::W8A8,
        Some(v) if v.eq_ignore_ascii_case("w8a16") => Algorithm::W8A16,
        Some(v) => panic!("{ALGORITHM_ENV}={v}: not an int8 algorithm; use w8a8 or w8a16"),
    })
}

/// The int8 kernels `--precision int8` runs on the path `p` (for `mpnn bench`'s header): the
/// algorithm ([`algorithm`]) and the instruction of its per-edge products.
pub fn kernel_name(p: Isa) -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let ymm = w8a8::ymm_vnni();
        let vnni512 = isa::cpu_has("avx512_vnni") && isa::cpu_has("avx512bw");
        match (algorithm(), p) {
            (Algorithm::W8A8, Isa::Avx512) if w8a8::has_vnni() => "W8A8, vpdpbusd zmm",
            (Algorithm::W8A8, Isa::Avx2) if ymm == Some(w8a8::YmmVnni::Vex) => "W8A8, vpdpbusd ymm (VEX)",
            (Algorithm::W8A8, Isa::Avx2) if ymm == Some(w8a8::YmmVnni::Evex) => "W8A8, vpdpbusd ymm (EVEX)",
            (Algorithm::W8A8, _) => "W8A8, plain twin",
            (Algorithm::W8A16, Isa::Avx512) if vnni512 => "W8A16, vpdpwssd zmm",
            (Algorithm::W8A16, Isa::Avx512) if isa::cpu_has("avx512bw") => "W8A16, vpmaddwd zmm",
            (Algorithm::W8A16, Isa::Avx2) if ymm.is_some() => "W8A16, vpdpwssd ymm",
            (Algorithm::W8A16, Isa::Avx512 | Isa::Avx2) => "W8A16, vpmaddwd ymm",
            (Algorithm::W8A16, Isa::Portable) => "W8A16, plain Rust",
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
        match algorithm() {
            Algorithm::W8A8 => "W8A8, plain twin",
            Algorithm::W8A16 => "W8A16, plain Rust",
        }
    }
}

/// `block::<R>(args)` for a register block of `mr` rows, `R` one of 1..=6 (`mr` ≥ 6 runs 6):
/// the row-count dispatch of the AVX2-width kernels.
#[cfg(target_arch = "x86_64")]
macro_rules! by_rows_6 {
    ($mr:expr, $block:ident($($arg:expr),*)) => {
        match $mr {
            6.. => $block::<6>($($arg),*),
            5 => $block::<5>($($arg),*),
            4 => $block::<4>($($arg),*),
            3 => $block::<3>($($arg),*),
            2 => $block::<2>($($arg),*),
            _ => $block::<1>($($arg),*),
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod avx_vnni;
pub mod gelu_codes;
pub mod portable;
pub mod w8a8;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `kernel_name` names the process's algorithm and, where the CPU has VNNI, the VNNI
    /// instruction of the path.
    #[test]
    fn kernel_names_follow_the_algorithm_and_the_cpu() {
        for p in Isa::available() {
            let name = kernel_name(p);
            let algo = match algorithm() {
                Algorithm::W8A8 => "W8A8",
                Algorithm::W8A16 => "W8A16",
            };
            assert!(name.starts_with(algo), "{p}: {name}");
            #[cfg(target_arch = "x86_64")]
            if p == Isa::Avx2 && algorithm() == Algorithm::W8A8 {
                assert_eq!(name.contains("vpdpbusd ymm"), w8a8::ymm_vnni().is_some(), "{name}");
            }
        }
    }

    #[test]
    fn every_path_equals_reference_bit_for_bit() {
        for isa in Isa::ALL {
            if let Some(msg) = isa::skip_message(isa) {
                eprintln!("{msg}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        for f in ["avx512bw", "avx512_vnni"] {
            if !isa::cpu_has(f) {
                eprintln!("skipped: CPU lacks {f} (int8 AVX-512 kernel)");
            }
        }
        #[cfg(target_arch = "x86_64")]
        for (f, what) in [("avx_vnni", "VEX"), ("avx512vl", "EVEX"), ("avx512_vnni", "EVEX")] {
            if !isa::cpu_has(f) {
                eprintln!("skipped: CPU lacks {f} (int16 ymm VNNI kernel, {what} encoding)");
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        let mut shapes = vec![(1, 1, 1), (5, 7, 3), (6, 128, 128), (13, 127, 21), (48, 512, 128), (7, 416, 130)];
        for _ in 0..30 {
            shapes.push((rng.gen_range(1..=30), rng.gen_range(1..=300), rng.gen_range(1..=70)));
        }
        for &(rows, n_in, n_out) in &shapes {
            let x: Vec<f32> = (0..rows * n_in).map(|_| rng.gen_range(-3.0..3.0)).collect();
            let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..n_out).map(|_| rng.gen_range(-1.0..1.0)).collect();
            for w in [QuantWeights::new(&wt, n_out, n_in), QuantWeights::wide(&wt, n_out, n_in)] {
                let (mut q, mut s) = (Vec::new(), Vec::new());
                quantize_rows_for(&x, rows, n_in, w.input_qmax(), &mut q, &mut s);
                for init in [Init::Zero, Init::Bias(&b), Init::Accumulate(Some(&b)), Init::Accumulate(None)] {
                    let begin: Vec<f32> = (0..rows * n_out).map(|i| i as f32 * 0.01).collect();
                    let mut slow = begin.clone();
                    reference(&q, &s, rows, &w, init, &mut slow);
                    for isa in Isa::available() {
                        let mut fast = begin.clone();
                        gemm_with(isa, &q, &s, rows, &w, init, &mut fast);
                        assert_eq!(fast, slow, "{isa} {rows}x{n_in}x{n_out} {init:?}");
                    }
                    #[cfg(target_arch = "x86_64")]
                    {
                        let mut kernels: Vec<(&str, Kernel)> = vec![("portable", portable::gemm)];
                        if isa::cpu_has("avx2") && isa::cpu_has("fma") {
                            kernels.push(("avx2", |a, b, c, d, e, f| unsafe { avx2::gemm(a, b, c, d, e, f) }));
                            if isa::cpu_has("avx_vnni") {
                                kernels.push(("avx2 vnni vex", |a, b, c, d, e, f| unsafe {
                                    avx2::gemm_vnni_vex(a, b, c, d, e, f)
                                }));
                            }
                            if isa::cpu_has("avx512f") && isa::cpu_has("avx512vl") && isa::cpu_has("avx512_vnni") {
                                kernels.push(("avx2 vnni evex", |a, b, c, d, e, f| unsafe {
                                    avx2::gemm_vnni_evex(a, b, c, d, e, f)
                                }));
                            }
                        }
                        if isa::cpu_has("avx512bw") && isa::cpu_has("avx2") && isa::cpu_has("fma") {
                            kernels.push(("avx512bw", |a, b, c, d, e, f| unsafe { avx512::gemm_bw(a, b, c, d, e, f) }));
                            if isa::cpu_has("avx512_vnni") {
                                kernels.push(("avx512vnni", |a, b, c, d, e, f| unsafe {
                                    avx512::gemm_vnni(a, b, c, d, e, f)
                                }));
                            }
                        }
                        for (name, k) in kernels {
                            let mut fast = begin.clone();
                            k(&q, &s, rows, &w, init, &mut fast);
                            assert_eq!(fast, slow, "{name} {rows}x{n_in}x{n_out} {init:?}");
                        }
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    type Kernel = fn(&[i16], &[f32], usize, &QuantWeights, Init, &mut [f32]);

    #[test]
    fn quantized_product_is_close_to_float() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(22);
        let (rows, n_in, n_out) = (9, 128, 40);
        let x: Vec<f32> = (0..rows * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-0.2..0.2)).collect();
        let w = QuantWeights::new(&wt, n_out, n_in);
        let (mut q, mut s) = (Vec::new(), Vec::new());
        quantize_rows(&x, rows, n_in, &mut q, &mut s);
        let mut y = vec![0f32; rows * n_out];
        gemm(&q, &s, rows, &w, Init::Zero, &mut y);
        let mut worst = 0f32;
        for m in 0..rows {
            for o in 0..n_out {
                let exact: f32 = (0..n_in).map(|k| x[m * n_in + k] * wt[o * n_in + k]).sum();
                worst = worst.max((y[m * n_out + o] - exact).abs());
            }
        }
        // Each weight carries at most half a step (1/254 of its row's range); over 128 terms the
        // error is a small fraction of the typical |y| ≈ 0.7.
        assert!(worst < 0.02, "worst int8 error {worst}");
        assert!(worst > 0.0, "int8 should not be exact on random data");
        // A zero row stays zero (scale 0, no NaN).
        quantize_rows(&vec![0.0; n_in], 1, n_in, &mut q, &mut s);
        let mut z = vec![1f32; n_out];
        gemm(&q, &s, 1, &w, Init::Zero, &mut z);
        assert!(z.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn wide_weights_are_sixteen_times_finer() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(24);
        let (rows, n_in, n_out) = (9, 128, 40);
        let x: Vec<f32> = (0..rows * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-0.2..0.2)).collect();
        let worst = |w: &QuantWeights| {
            let (mut q, mut s) = (Vec::new(), Vec::new());
            quantize_rows_for(&x, rows, n_in, w.input_qmax(), &mut q, &mut s);
            let mut y = vec![0f32; rows * n_out];
            gemm(&q, &s, rows, w, Init::Zero, &mut y);
            let mut worst = 0f32;
            for m in 0..rows {
                for o in 0..n_out {
                    let exact: f32 = (0..n_in).map(|k| x[m * n_in + k] * wt[o * n_in + k]).sum();
                    worst = worst.max((y[m * n_out + o] - exact).abs());
                }
            }
            worst
        };
        let (narrow, wide) =
            (worst(&QuantWeights::new(&wt, n_out, n_in)), worst(&QuantWeights::wide(&wt, n_out, n_in)));
        let w = QuantWeights::wide(&wt, n_out, n_in);
        assert!(w.is_wide() && w.packed.iter().all(|&q| q.abs() <= 2047) && w.packed.iter().any(|&q| q.abs() > 1000));
        assert_eq!(w.input_qmax(), 8196.0);
        assert!(wide > 0.0 && wide * 8.0 < narrow, "wide {wide} narrow {narrow}");
    }

    #[test]
    fn weight_scales_and_row_codes_are_the_same_on_every_path() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(25);
        #[cfg(target_arch = "x86_64")]
        for (f, what) in [("avx512f", "AVX-512 kernel"), ("avx2", "AVX2 build")] {
            if !isa::cpu_has(f) {
                eprintln!("skipped: CPU lacks {f} (int8 quantization helpers, {what})");
            }
        }
        for n in [1usize, 7, 16, 127, 128, 416] {
            let rows = 9;
            let width = n.div_ceil(2) * 2;
            let mut x: Vec<f32> = (0..rows * n).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
            x[0] = f32::NAN; // a NaN input codes as 0 everywhere
            x[2 * n] = f32::INFINITY; // an infinite row gets scale 0 and codes 0
            x[3 * n + n / 2] = -0.0;
            // Ties: with the row's max at qmax, `inv` is 1 and every `x.5` rounds to even.
            for (j, v) in x[4 * n..5 * n].iter_mut().enumerate() {
                *v = if j == 0 { 8196.0 } else { j as f32 - (n / 2) as f32 + 0.5 };
            }
            x[5 * n..6 * n].fill(3e38); // finite values whose sum overflows
            #[cfg(target_arch = "x86_64")]
            let plain_scales: Vec<(f32, f32)> = x.chunks(n).map(weight_scale_body).collect();
            let (mut q0, mut s0) = (vec![0i16; rows * width], vec![0f32; rows]);
            quantize_rows_body(&x, n, width, 8196.0, &mut q0, &mut s0);
            assert_eq!(q0[0], 0);
            #[cfg(target_arch = "x86_64")]
            {
                type Paths = [(&'static str, unsafe fn(&[f32]) -> (f32, f32), QuantizeRows); 2];
                let paths: Paths = [
                    ("avx512f", weight_scale_avx512, avx512::quantize_rows16),
                    ("avx2", weight_scale_avx2, quantize_rows_avx2),
                ];
                for (f, scale, rows_fn) in paths {
                    if !isa::cpu_has(f) {
                        continue;
                    }
                    // SAFETY: the CPU has the path's features (checked above).
                    let scales: Vec<(f32, f32)> = x.chunks(n).map(|r| unsafe { scale(r) }).collect();
                    assert_eq!(scales, plain_scales, "{f} n={n}");
                    let (mut q, mut s) = (vec![0i16; rows * width], vec![0f32; rows]);
                    unsafe { rows_fn(&x, n, width, 8196.0, &mut q, &mut s) };
                    assert_eq!((&q, &s), (&q0, &s0), "{f} n={n}");
                }
            }
        }
    }

    #[test]
    fn gelu_then_codes_equal_the_fused_form() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(26);
        for n in [1usize, 7, 16, 128, 416] {
            let rows = 7;
            let mut x: Vec<f32> = (0..rows * n).map(|_| rng.gen_range(-6.0f32..6.0)).collect();
            x[0] = f32::NAN;
            let mut g = x.clone();
            crate::kernels::gelu_fast::portable(&mut g);
            let (mut q0, mut s0) = (Vec::new(), Vec::new());
            quantize_rows_for(&g, rows, n, 8196.0, &mut q0, &mut s0);
            let (mut q, mut s) = (Vec::new(), Vec::new());
            quantize_rows_gelu_for(&mut x, rows, n, 8196.0, &mut q, &mut s);
            assert_eq!((&q, &s), (&q0, &s0), "n={n}");
            assert!(x.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()), "n={n}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    type QuantizeRows = unsafe fn(&[f32], usize, usize, f32, &mut [i16], &mut [f32]);

    #[test]
    fn quantize_rounds_to_nearest_even_within_range() {
        assert_eq!(quantize(2.5, 1.0, 127.0), 2);
        assert_eq!(quantize(3.5, 1.0, 127.0), 4);
        assert_eq!(quantize(-2.5, 1.0, 127.0), -2);
        assert_eq!(quantize(-2.6, 1.0, 127.0), -3);
        assert_eq!(quantize(1e9, 1.0, 127.0), 127);
        assert_eq!(quantize(-1e9, 1.0, 2047.0), -2047);
        assert_eq!(quantize(0.49, 1.0, 127.0), 0);
        assert_eq!(max_abs(&[]), 0.0);
        let v: Vec<f32> = (0..37).map(|i| (i as f32 - 20.0) * 0.5).collect();
        assert_eq!(max_abs(&v), 10.0);
    }

    #[test]
    fn int32_sums_cannot_overflow() {
        for n_in in [1, 2, 127, 128, 416, 512, 513, 1000, 4096] {
            let q = input_qmax_for(n_in, WIDE_QMAX);
            assert!((1.0..=32767.0).contains(&q));
            assert!((n_in.div_ceil(2) * 2) as f64 * WIDE_QMAX as f64 * q as f64 <= i32::MAX as f64, "{n_in}");
        }
        let n_in = 416;
        let w = QuantWeights::wide(&vec![-1.0; n_in], 1, n_in);
        let (mut q, mut s) = (Vec::new(), Vec::new());
        quantize_rows_for(&vec![1.0; n_in], 1, n_in, w.input_qmax(), &mut q, &mut s);
        let mut y = [0f32];
        gemm(&q, &s, 1, &w, Init::Zero, &mut y);
        assert!((y[0] + n_in as f32).abs() < 1e-3 * n_in as f32, "{}", y[0]);
        for n_in in [1, 2, 127, 128, 512, 513, 1000, 4096] {
            let q = input_qmax(n_in);
            assert!((1.0..=32767.0).contains(&q));
            assert!((n_in.div_ceil(2) * 2) as f64 * 127.0 * q as f64 <= i32::MAX as f64, "{n_in}");
        }
        assert_eq!(input_qmax(512), 32767.0);
        // The extreme case: every product at its largest magnitude.
        let n_in = 1000;
        let w = QuantWeights::new(&vec![-1.0; n_in], 1, n_in);
        let (mut q, mut s) = (Vec::new(), Vec::new());
        quantize_rows(&vec![1.0; n_in], 1, n_in, &mut q, &mut s);
        let mut y = [0f32];
        gemm(&q, &s, 1, &w, Init::Zero, &mut y);
        assert!((y[0] + n_in as f32).abs() < 1e-2 * n_in as f32, "{}", y[0]);
    }

    #[test]
    fn rows_do_not_depend_on_the_batch() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
        let (n_in, n_out) = (128, 128);
        let x: Vec<f32> = (0..20 * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let wt: Vec<f32> = (0..n_out * n_in).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let w = QuantWeights::new(&wt, n_out, n_in);
        let (mut q, mut s) = (Vec::new(), Vec::new());
        quantize_rows(&x, 20, n_in, &mut q, &mut s);
        let mut all = vec![0f32; 20 * n_out];
        gemm(&q, &s, 20, &w, Init::Zero, &mut all);
        for r in [0, 6, 13, 19] {
            quantize_rows(&x[r * n_in..(r + 1) * n_in], 1, n_in, &mut q, &mut s);
            let mut one = vec![0f32; n_out];
            gemm(&q, &s, 1, &w, Init::Zero, &mut one);
            assert_eq!(one, all[r * n_out..(r + 1) * n_out]);
        }
    }
}
