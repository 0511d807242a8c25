//! Numeric kernels behind one small interface: dense layers, GELU, LayerNorm, softmax.
//!
//! Every kernel here has a plain twin in [`naive`] that computes the same thing the obvious
//! way; tests compare the two on random shapes.
//!
//! The dense layers ([`gemm`], [`int8`], [`bf16`]) have one implementation per instruction set
//! (AVX-512, AVX2, portable; bf16 adds AVX-512 BF16's `vdpbf16ps` and emulates it elsewhere),
//! chosen once per process by [`isa`] (`MPNN_ISA` forces one); every path gives the same bits. GELU, LayerNorm and the softmaxes are plain Rust compiled for the
//! baseline target, with no instruction-set-specific code and sequential sums, so they are the
//! same on every path too.

pub mod bf16;
pub mod gelu_fast;
pub mod gemm;
pub mod int8;
pub mod isa;
pub mod naive;
pub mod precision;

use precision::Precision;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static FLOPS: AtomicU64 = AtomicU64::new(0);

/// Starts (or stops) counting the floating-point operations of dense layers
/// (`2 · rows · n_in · n_out` per [`Linear::forward`]), and resets the count when starting.
/// For benchmarks; when off the cost is one relaxed load per layer call.
pub fn count_flops(on: bool) {
    if on {
        FLOPS.store(0, Ordering::Relaxed);
    }
    COUNTING.store(on, Ordering::Relaxed);
}

/// Operations counted since [`count_flops`]`(true)`.
pub fn counted_flops() -> u64 {
    FLOPS.load(Ordering::Relaxed)
}

/// A dense layer `y = x · Wᵀ + b` with the weight kept in PyTorch's `[out, in]` layout.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[n_out, n_in]`, row-major (PyTorch layout).
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub n_in: usize,
    pub n_out: usize,
    /// Number format of the products (f32 unless [`Linear::with_precision`] said otherwise).
    precision: Precision,
    /// The weights packed for [`gemm::gemm`] (rounded to the format for f16; empty for bf16, int8).
    packed: Vec<f32>,
    /// The int8 weights, for [`Precision::Int8`] with the W8A16 algorithm.
    quant: Option<int8::QuantWeights>,
    /// The bfloat16 weights, for [`Precision::Bf16`].
    bf16: Option<bf16::Bf16Weights>,
    /// The int8 weights, for [`Precision::Int8`] with the W8A8 algorithm ([`int8::algorithm`]).
    quant8: Option<int8::w8a8::Weights>,
    /// W8A8 with a second int8 pass: the weights' quantization residual, quantized again per
    /// output channel (about 15-bit weights for twice the products); see
    /// [`Linear::with_residual_weights`].
    quant8_residual: Option<int8::w8a8::Weights>,
    /// One-pass W8A8: the weights' rounding residual, quantized, for the per-node mean
    /// correction ([`int8::w8a8::gemm_node_corrected`]) of per-edge calls.
    quant8_bc: Option<int8::w8a8::Weights>,
}

/// Per-thread staging of rounded or quantized layer inputs (no allocation after warm-up).
#[derive(Default)]
struct Staging {
    rounded: Vec<f32>,
    q16: Vec<i16>,
    scales: Vec<f32>,
    q8: int8::w8a8::Rows,
}

thread_local! {
    static STAGING: RefCell<Staging> = RefCell::new(Staging::default());
    static CORRECTION: RefCell<int8::w8a8::Correction> = RefCell::new(int8::w8a8::Correction::default());
    /// [`Linear::forward_gelu_sum`]'s unfused forms: a W8A8 layer's quantized inputs, and the
    /// layer's outputs before their GELU and sum.
    static GELU_CODES: RefCell<int8::w8a8::Rows> = RefCell::new(int8::w8a8::Rows::default());
    static OUTPUTS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Linear {
    pub fn new(weight: Vec<f32>, bias: Option<Vec<f32>>, n_out: usize, n_in: usize) -> Self {
        assert_eq!(weight.len(), n_out * n_in);
        if let Some(b) = &bias {
            assert_eq!(b.len(), n_out);
        }
        let packed = gemm::pack(&weight, n_out, n_in);
        Linear {
            weight,
            bias,
            n_in,
            n_out,
            precision: Precision::F32,
            packed,
            quant: None,
            bf16: None,
            quant8: None,
            quant8_residual: None,
            quant8_bc: None,
        }
    }

    /// The same layer computed in `precision` (see [`precision`]); `weight` keeps the original
    /// float32 values, so converting back to f32 is exact.
    pub fn with_precision(&self, precision: Precision) -> Linear {
        self.with_precision_algorithm(precision, int8::algorithm())
    }

    /// [`Linear::with_precision`] with the int8 algorithm given (for [`Precision::Int8`]) instead
    /// of the process's (the layer plan [`crate::model::INT8_PLAN`] can name W8A16 layers).
    pub fn with_precision_algorithm(&self, precision: Precision, algorithm: int8::Algorithm) -> Linear {
        let (packed, quant, quant8) = match precision {
            Precision::F32 => (gemm::pack(&self.weight, self.n_out, self.n_in), None, None),
            Precision::F16 => {
                let rounded: Vec<f32> = self.weight.iter().map(|&w| precision.round(w)).collect();
                (gemm::pack(&rounded, self.n_out, self.n_in), None, None)
            }
            Precision::Bf16 => (Vec::new(), None, None),
            Precision::Int8 => match algorithm {
                int8::Algorithm::W8A16 => {
                    (Vec::new(), Some(int8::QuantWeights::new(&self.weight, self.n_out, self.n_in)), None)
                }
                int8::Algorithm::W8A8 => {
                    (Vec::new(), None, Some(int8::w8a8::Weights::new(&self.weight, self.n_out, self.n_in)))
                }
            },
        };
        let bf16 = (precision == Precision::Bf16).then(|| bf16::Bf16Weights::new(&self.weight, self.n_out, self.n_in));
        Linear {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            n_in: self.n_in,
            n_out: self.n_out,
            precision,
            packed,
            quant,
            bf16,
            quant8_bc: quant8.as_ref().map(|q| q.correction(&self.weight)),
            quant8,
            quant8_residual: None,
        }
    }

    /// A W8A8 layer with a second int8 pass over the same quantized inputs: `W ≈ s₁·q₁ + s₂·q₂`,
    /// `q₂` the residual `W − s₁·q₁` quantized per output channel. Other layers are returned as
    /// they are.
    pub fn with_residual_weights(mut self) -> Linear {
        if let Some(q) = &self.quant8 {
            let residual = q.residual(&self.weight);
            self.quant8_residual = Some(int8::w8a8::Weights::new(&residual, self.n_out, self.n_in));
        }
        self
    }

    /// The same layer in int8 precision with 12-bit weights and int16 inputs
    /// ([`int8::QuantWeights::wide`]: the W8A16 kernels, `vpdpwssd` on VNNI CPUs), whatever
    /// the process's int8 algorithm: the layer plan's `w12` form.
    pub fn with_wide_int8(&self) -> Linear {
        Linear {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            n_in: self.n_in,
            n_out: self.n_out,
            precision: Precision::Int8,
            packed: Vec::new(),
            quant: Some(int8::QuantWeights::wide(&self.weight, self.n_out, self.n_in)),
            bf16: None,
            quant8: None,
            quant8_residual: None,
            quant8_bc: None,
        }
    }

    /// Whether the layer runs two int8 passes ([`Linear::with_residual_weights`]).
    pub fn has_residual_weights(&self) -> bool {
        self.quant8_residual.is_some()
    }

    /// Whether the GELUs around this layer are the int8 table GELU
    /// ([`gelu_fast`]): W8A8 and 12-bit (`w12`) layers, whose own rounding is far coarser than
    /// the table's error (< 1e-4).
    pub fn uses_table_gelu(&self) -> bool {
        self.quant8.is_some() || self.quant.as_ref().is_some_and(|q| q.is_wide())
    }

    /// Whether the layer runs the W8A8 algorithm (takes [`int8::w8a8::Rows`] inputs, see
    /// [`Linear::forward_quantized`]).
    pub fn is_w8a8(&self) -> bool {
        self.quant8.is_some()
    }

    /// [`Linear::forward_edges`] (or, with `accumulate`, its accumulating form) from inputs
    /// already quantized to W8A8's uint8 rows (producers that quantize as they write); a W8A8
    /// layer only.
    pub fn forward_quantized(
        &self,
        x: int8::w8a8::RowsRef,
        rows: usize,
        group: usize,
        out: &mut [f32],
        accumulate: bool,
    ) {
        let q = self.quant8.as_ref().expect("forward_quantized needs a W8A8 layer");
        if rows == 0 {
            return;
        }
        self.add_flops(rows);
        self.w8a8_products(q, x, rows, group, out, accumulate);
    }

    /// The W8A8 products of quantized rows: two passes for the `x2` form, else one pass with
    /// the per-node mean correction when the rows come in node groups (`group > 0`).
    fn w8a8_products(
        &self,
        q: &int8::w8a8::Weights,
        x: int8::w8a8::RowsRef,
        rows: usize,
        group: usize,
        out: &mut [f32],
        accumulate: bool,
    ) {
        match (&self.quant8_residual, &self.quant8_bc) {
            (Some(r), _) => {
                int8::w8a8::gemm(x, rows, q, self.init(accumulate), out);
                int8::w8a8::gemm(x, rows, r, gemm::Init::Accumulate(None), out);
            }
            (None, Some(bc)) if group > 0 => CORRECTION.with_borrow_mut(|st| {
                let bias = self.bias.as_deref();
                int8::w8a8::gemm_node_corrected(x, rows, group, q, bc, bias, accumulate, st, out)
            }),
            _ => int8::w8a8::gemm(x, rows, q, self.init(accumulate), out),
        }
    }

    /// The code range of the int16 inputs this layer takes ([`Linear::forward_codes16`]): a
    /// 12-bit or W8A16 int8 layer's; `None` for every other form.
    pub fn codes16_qmax(&self) -> Option<f32> {
        match (&self.quant, self.precision) {
            (Some(q), Precision::Int8) if self.quant8.is_none() && self.bf16.is_none() => Some(q.input_qmax()),
            _ => None,
        }
    }

    /// [`Linear::forward_edges`] of rows already quantized to this layer's int16 codes
    /// ([`int8::Rows16`], quantized to [`Linear::codes16_qmax`]): the same bits, as the layer
    /// quantizes its float32 inputs with the same quantizer.
    pub fn forward_codes16(&self, q: &[i16], scales: &[f32], rows: usize, out: &mut [f32]) {
        let w = self.quant.as_ref().filter(|_| self.codes16_qmax().is_some());
        let w = w.expect("forward_codes16 needs a 12-bit or W8A16 int8 layer");
        if rows == 0 {
            return;
        }
        self.add_flops(rows);
        int8::gemm(q, scales, rows, w, self.init(false), out);
    }

    /// Adds this layer's `2 · rows · n_in · n_out` operations to the count ([`count_flops`]).
    #[inline]
    fn add_flops(&self, rows: usize) {
        if COUNTING.load(Ordering::Relaxed) {
            FLOPS.fetch_add(2 * (rows * self.n_in * self.n_out) as u64, Ordering::Relaxed);
        }
    }

    fn init(&self, accumulate: bool) -> gemm::Init<'_> {
        match (accumulate, &self.bias) {
            (false, Some(b)) => gemm::Init::Bias(b),
            (false, None) => gemm::Init::Zero,
            (true, b) => gemm::Init::Accumulate(b.as_deref()),
        }
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Columns `[start, start + width)` of the input dimension as a layer of their own
    /// (no bias): `W · [a; b; c] = W_a·a + W_b·b + W_c·c`.
    pub fn column_block(&self, start: usize, width: usize) -> Linear {
        assert!(start + width <= self.n_in);
        let mut w = Vec::with_capacity(self.n_out * width);
        for o in 0..self.n_out {
            w.extend_from_slice(&self.weight[o * self.n_in + start..o * self.n_in + start + width]);
        }
        let block = Linear::new(w, None, self.n_out, width);
        match (self.precision, &self.quant) {
            (Precision::F32, _) => block,
            (Precision::Int8, Some(q)) if q.is_wide() => block.with_wide_int8(),
            (Precision::Int8, Some(_)) => block.with_precision_algorithm(self.precision, int8::Algorithm::W8A16),
            (Precision::Int8, None) if self.has_residual_weights() => {
                block.with_precision_algorithm(self.precision, int8::Algorithm::W8A8).with_residual_weights()
            }
            (Precision::Int8, None) => block.with_precision_algorithm(self.precision, int8::Algorithm::W8A8),
            (p, _) => block.with_precision(p),
        }
    }

    /// `out = gelu(x) · Wᵀ + b`, leaving `gelu(x)` in `x`: the table GELU ([`gelu_fast`]) where
    /// [`Linear::uses_table_gelu`], else the exact one. A 12-bit layer quantizes its inputs in
    /// the same pass ([`int8::quantize_rows_gelu_for`]); the result is the same as the GELU
    /// followed by [`Linear::forward`].
    pub fn forward_gelu(&self, x: &mut [f32], rows: usize, out: &mut [f32]) {
        match &self.quant {
            Some(q) if q.is_wide() && rows > 0 => {
                self.add_flops(rows);
                STAGING.with_borrow_mut(|st| {
                    int8::quantize_rows_gelu_for(x, rows, self.n_in, q.input_qmax(), &mut st.q16, &mut st.scales);
                    int8::gemm(&st.q16, &st.scales, rows, q, self.init(false), out);
                })
            }
            _ => {
                if self.uses_table_gelu() {
                    gelu_fast::gelu_fast_inplace(&mut x[..rows * self.n_in]);
                } else {
                    gelu_inplace(&mut x[..rows * self.n_in]);
                }
                self.forward(x, rows, out);
            }
        }
    }

    /// A message MLP's second layer with the GELU after it and the sum over each node's
    /// neighbours: `sums[r / group, :] += w_r · gelu(gelu(x_r) · Wᵀ + b)` (leaving `gelu(x)` in
    /// `x`, as [`Linear::forward_gelu`] does; both GELUs are the table one where
    /// [`Linear::uses_table_gelu`]). A float32 layer runs the fused kernel
    /// ([`gemm::gemm_gelu_sum`]: the `[rows, n_out]` product is never written); every form
    /// gives the bits of [`Linear::forward_gelu`], the GELU and [`gemm::add_rows`] in turn.
    pub fn forward_gelu_sum(&self, x: &mut [f32], rows: usize, epi: gemm::GeluSum, sums: &mut [f32]) {
        if rows == 0 {
            return;
        }
        if self.precision == Precision::F32 {
            self.add_flops(rows);
            gelu_inplace(&mut x[..rows * self.n_in]);
            let bias = self.bias.as_deref();
            return gemm::gemm_gelu_sum(x, rows, self.n_in, &self.packed, self.n_out, bias, epi, sums);
        }
        if self.is_w8a8() {
            return GELU_CODES.with_borrow_mut(|q| {
                gelu_quantize(&mut x[..rows * self.n_in], self.n_in, q);
                self.forward_quantized_gelu_sum(q.view(), rows, epi, sums)
            });
        }
        OUTPUTS.with_borrow_mut(|out| {
            out.resize(rows * self.n_out, 0.0);
            self.forward_gelu(x, rows, out);
            self.gelu_sum(out, rows, epi, sums);
        })
    }

    /// [`Linear::forward_gelu_sum`] of inputs already GELU'd and quantized for a W8A8 layer
    /// (the one-pass correction per `epi.group`).
    pub fn forward_quantized_gelu_sum(
        &self,
        x: int8::w8a8::RowsRef,
        rows: usize,
        epi: gemm::GeluSum,
        sums: &mut [f32],
    ) {
        OUTPUTS.with_borrow_mut(|out| {
            out.resize(rows * self.n_out, 0.0);
            self.forward_quantized(x, rows, epi.group, out, false);
            self.gelu_sum(out, rows, epi, sums);
        })
    }

    /// The GELU of this layer's form over `out` (`[rows, n_out]`), then the neighbour sums.
    fn gelu_sum(&self, out: &mut [f32], rows: usize, epi: gemm::GeluSum, sums: &mut [f32]) {
        let out = &mut out[..rows * self.n_out];
        if self.uses_table_gelu() {
            gelu_fast::gelu_fast_inplace(out);
        } else {
            gelu_inplace(out);
        }
        gemm::add_rows(out, rows, self.n_out, epi, sums);
    }

    /// `out[r, :] = x[r, :] · Wᵀ + b` for `rows` rows (`x` is `[rows, n_in]`, `out` `[rows, n_out]`).
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.forward_impl(x, rows, 0, out, false);
    }

    /// [`Linear::forward`] for per-edge rows that come in groups of `group` (one node's `k`
    /// edges, `rows` a multiple of it): one-pass W8A8 layers then apply the per-node mean
    /// correction ([`int8::w8a8::gemm_node_corrected`]); every other form computes exactly
    /// what [`Linear::forward`] does.
    pub fn forward_edges(&self, x: &[f32], rows: usize, group: usize, out: &mut [f32]) {
        self.forward_impl(x, rows, group, out, false);
    }

    /// `out[r, :] += x[r, :] · Wᵀ (+ b)`.
    pub fn forward_add(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.forward_impl(x, rows, 0, out, true);
    }

    fn forward_impl(&self, x: &[f32], rows: usize, group: usize, out: &mut [f32], accumulate: bool) {
        if rows == 0 {
            return;
        }
        self.add_flops(rows);
        let init = self.init(accumulate);
        if let Some(w) = &self.bf16 {
            return bf16::forward(x, rows, w, init, out);
        }
        if let Some(q) = &self.quant8 {
            return STAGING.with_borrow_mut(|st| {
                st.q8.quantize(x, rows, self.n_in);
                self.w8a8_products(q, st.q8.view(), rows, group, out, accumulate);
            });
        }
        match (self.precision, &self.quant) {
            (Precision::Int8, Some(q)) => STAGING.with_borrow_mut(|st| {
                int8::quantize_rows_for(x, rows, self.n_in, q.input_qmax(), &mut st.q16, &mut st.scales);
                int8::gemm(&st.q16, &st.scales, rows, q, init, out);
            }),
            (p, _) if p.is_half() => STAGING.with_borrow_mut(|st| {
                p.round_into(&x[..rows * self.n_in], &mut st.rounded);
                gemm::gemm(&st.rounded, rows, self.n_in, &self.packed, self.n_out, init, out);
            }),
            _ => gemm::gemm(x, rows, self.n_in, &self.packed, self.n_out, init, out),
        }
    }
}

/// `LayerNorm` over the last dimension (`eps = 1e-5`), PyTorch semantics (biased variance).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

pub const LAYER_NORM_EPS: f32 = 1e-5;

impl LayerNorm {
    pub fn dim(&self) -> usize {
        self.gamma.len()
    }

    /// Normalizes every row of `x` (rows of width `dim`) in place, on the process's
    /// instruction-set path ([`isa::active`]).
    pub fn forward_inplace(&self, x: &mut [f32]) {
        self.forward_inplace_with(isa::active(), x);
    }

    /// `x ← norm(x + d)` row by row (`d` the same shape as `x`): the residual addition and the
    /// norm in one pass over each row, the same bits as the addition followed by
    /// [`LayerNorm::forward_inplace`].
    pub fn add_forward_inplace(&self, x: &mut [f32], d: &[f32]) {
        assert_eq!(x.len(), d.len(), "residual of another shape");
        self.rows_on(isa::active(), x, Some(d));
    }

    /// [`LayerNorm::forward_inplace`] on the path `p` (which the CPU must support: panics
    /// otherwise). [`layer_norm_row`] is the same source on each path, compiled for its vector
    /// width: its sums run in 16 fixed lanes and Rust never fuses a multiply and an add, so
    /// every path gives the same bits (tested).
    pub fn forward_inplace_with(&self, p: isa::Isa, x: &mut [f32]) {
        self.rows_on(p, x, None);
    }

    fn rows_on(&self, p: isa::Isa, x: &mut [f32], d: Option<&[f32]>) {
        if let Some(missing) = p.missing_feature() {
            panic!("layer norm on path {p}: this CPU lacks {missing}");
        }
        #[cfg(target_arch = "x86_64")]
        match p {
            // SAFETY: the CPU has the features (checked above); the body is safe code.
            isa::Isa::Avx512 => return unsafe { layer_norm_rows_avx512(x, d, &self.gamma, &self.beta) },
            isa::Isa::Avx2 => return unsafe { layer_norm_rows_avx2(x, d, &self.gamma, &self.beta) },
            isa::Isa::Portable => {}
        }
        layer_norm_rows(x, d, &self.gamma, &self.beta);
    }
}

/// Every row of `x` (plus the same row of `d`, when given) through [`layer_norm_row`].
#[inline(always)]
fn layer_norm_rows(x: &mut [f32], d: Option<&[f32]>, gamma: &[f32], beta: &[f32]) {
    let n = gamma.len();
    match d {
        Some(d) => {
            for (row, dr) in x.chunks_exact_mut(n).zip(d.chunks_exact(n)) {
                row.iter_mut().zip(dr).for_each(|(v, a)| *v += a);
                layer_norm_row(row, gamma, beta);
            }
        }
        None => x.chunks_exact_mut(n).for_each(|row| layer_norm_row(row, gamma, beta)),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn layer_norm_rows_avx512(x: &mut [f32], d: Option<&[f32]>, gamma: &[f32], beta: &[f32]) {
    layer_norm_rows(x, d, gamma, beta);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn layer_norm_rows_avx2(x: &mut [f32], d: Option<&[f32]>, gamma: &[f32], beta: &[f32]) {
    layer_norm_rows(x, d, gamma, beta);
}

/// `Σ row` in 16 lanes, then the lanes in order.
#[inline(always)]
fn sum_lanes(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v);
    }
    acc.iter().sum()
}

/// One row of LayerNorm in float32: a two-pass mean and (biased) variance, each sum split over
/// 16 lanes and the lanes then added in order. The lanes let LLVM vectorize the sums (a single
/// running sum is a chain of dependent additions: a 128-wide row took ~4× longer); the order
/// is fixed in plain Rust, so every CPU path gives the same bits.
#[inline(always)]
pub fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32]) {
    let n = row.len() as f32;
    let mean = sum_lanes(row, |v| v) / n;
    let var = sum_lanes(row, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// `erf(x)` in float32 as a rational polynomial on `[-4, 4]` (±1 beyond), accurate to a few
/// ulp — the form Eigen and XNNPACK use for float GELU. Branch-free so loops over it vectorize;
/// [`naive::gelu`] (float64 `erf`) is its reference twin.
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.72614225801306e-10f32;
    p = p * x2 + 2.77068142495902e-08;
    p = p * x2 + -2.10102402082508e-06;
    p = p * x2 + -5.69250639462346e-05;
    p = p * x2 + -7.34990630326855e-04;
    p = p * x2 + -2.95459980854025e-03;
    p = p * x2 + -1.60960333262415e-02;
    let p = x * p;
    let mut q = -1.45660718464996e-05f32;
    q = q * x2 + -2.13374055278905e-04;
    q = q * x2 + -1.68282697438203e-03;
    q = q * x2 + -7.37332916720468e-03;
    q = q * x2 + -1.42647390514189e-02;
    p / q
}

/// Exact (erf-form) GELU: `x · ½ · (1 + erf(x / √2))` (not the tanh approximation).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// [`gelu`] over a slice, on the process's instruction-set path ([`isa::active`]): the same
/// source compiled for AVX-512 (16 lanes), AVX2 (8) or the baseline. The function uses only
/// IEEE operations that vectorize exactly (multiply, add, divide, min/max; Rust never fuses a
/// multiply and an add on its own), so every path gives the same bits (tested).
pub fn gelu_inplace(x: &mut [f32]) {
    gelu_inplace_with(isa::active(), x);
}

/// `x ← gelu(x)` row by row (rows of `n`), each row then quantized into `q` for a W8A8 layer
/// while it is in cache.
/// (The int8 models' GELU, [`gelu_fast::gelu_fast_inplace`].)
pub fn gelu_quantize(x: &mut [f32], n: usize, q: &mut int8::w8a8::Rows) {
    q.reset(x.len() / n, n);
    gelu_quantize_at(x, n, q, 0);
}

/// [`gelu_quantize`] into rows `start..` of `q` (already sized for them): one pass per row on
/// AVX-512 VNNI ([`int8::gelu_codes`]); `x` is left holding scratch values.
pub fn gelu_quantize_at(x: &mut [f32], n: usize, q: &mut int8::w8a8::Rows, start: usize) {
    let rows = x.len() / n.max(1);
    int8::gelu_codes::gelu_codes(x, n, None, q.rows_mut(start, rows));
}

/// [`gelu_inplace`] on the path `p` (which the CPU must support: panics otherwise).
pub fn gelu_inplace_with(p: isa::Isa, x: &mut [f32]) {
    if let Some(missing) = p.missing_feature() {
        panic!("gelu on path {p}: this CPU lacks {missing}");
    }
    #[cfg(target_arch = "x86_64")]
    match p {
        // SAFETY: the CPU has the features (checked above); the body is safe code.
        isa::Isa::Avx512 => return unsafe { gelu_avx512(x) },
        isa::Isa::Avx2 => return unsafe { gelu_avx2(x) },
        isa::Isa::Portable => {}
    }
    gelu_slice(x);
}

#[inline(always)]
fn gelu_slice(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = gelu(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gelu_avx512(x: &mut [f32]) {
    gelu_slice(x);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_avx2(x: &mut [f32]) {
    gelu_slice(x);
}

/// `log_softmax` of one row, in place.
pub fn log_softmax_inplace(row: &mut [f32]) {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
    let lse = max + sum.ln();
    row.iter_mut().for_each(|v| *v -= lse);
}

/// `softmax` of one row, in place.
pub fn softmax_inplace(row: &mut [f32]) {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, rng: &mut impl Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    #[test]
    fn linear_matches_naive_on_random_shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for &(rows, n_in, n_out) in &[(1, 1, 1), (3, 5, 7), (17, 128, 128), (64, 416, 128), (5, 512, 21)] {
            let w = random(n_in * n_out, &mut rng);
            let b = random(n_out, &mut rng);
            let x = random(rows * n_in, &mut rng);
            let lin = Linear::new(w, Some(b), n_out, n_in);
            let mut fast = vec![0.0; rows * n_out];
            lin.forward(&x, rows, &mut fast);
            let slow = naive::linear(&lin, &x, rows);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
            // accumulate form
            let mut acc = fast.clone();
            lin.column_block(0, n_in).forward_add(&x, rows, &mut acc);
            for (i, (a, f)) in acc.iter().zip(&fast).enumerate() {
                let expected = f + (slow[i] - lin.bias.as_ref().unwrap()[i % n_out]);
                assert!((a - expected).abs() < 1e-3 * (1.0 + expected.abs()));
            }
        }
    }

    /// GELU gives the same bits on every path, over a dense sweep, the clamp edges and
    /// specials (lengths that leave vector tails).
    #[test]
    fn gelu_is_identical_on_every_path() {
        for p in isa::Isa::ALL {
            if let Some(msg) = isa::skip_message(p) {
                eprintln!("{msg}");
            }
        }
        let mut xs: Vec<f32> = (-300_001..=300_001).map(|i| i as f32 * 2e-5).collect();
        xs.extend(
            (0..2000).map(|i| f32::from_bits(0x3f80_0000u32.wrapping_add((i as u32).wrapping_mul(2_654_435_761)))),
        );
        xs.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            f32::MIN_POSITIVE,
            1e-40,
            4.0 * std::f32::consts::SQRT_2,
            -4.0 * std::f32::consts::SQRT_2,
            f32::MAX,
            f32::MIN,
        ]);
        let mut want = xs.clone();
        want.iter_mut().for_each(|v| *v = gelu(*v));
        for p in isa::Isa::available() {
            for len in [xs.len(), 1, 7, 15, 17, 33] {
                let mut got = xs[..len].to_vec();
                gelu_inplace_with(p, &mut got);
                let (g, w): (Vec<u32>, Vec<u32>) =
                    (got.iter().map(|v| v.to_bits()).collect(), want[..len].iter().map(|v| v.to_bits()).collect());
                assert!(g == w, "gelu on {p} differs from the scalar form (len {len})");
            }
        }
    }

    #[test]
    fn split_columns_sum_to_whole() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (n_in, n_out) = (12, 5);
        let lin = Linear::new(random(n_in * n_out, &mut rng), None, n_out, n_in);
        let x = random(n_in, &mut rng);
        let whole = naive::linear(&lin, &x, 1);
        let mut parts = vec![0.0; n_out];
        for s in [0, 4, 8] {
            lin.column_block(s, 4).forward_add(&x[s..s + 4], 1, &mut parts);
        }
        for (a, b) in parts.iter().zip(&whole) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn layer_norm_and_gelu_match_naive() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let d = 64;
        let ln = LayerNorm { gamma: random(d, &mut rng), beta: random(d, &mut rng) };
        let x: Vec<f32> = random(3 * d, &mut rng).iter().map(|v| v * 10.0).collect();
        let mut fast = x.clone();
        ln.forward_inplace(&mut fast);
        let slow = naive::layer_norm(&ln, &x);
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() < 1e-5);
        }
        for d in [64, 70, 128] {
            let x: Vec<f32> = random(3 * d, &mut rng).iter().map(|v| v * 10.0 + 3.0).collect();
            let ln = LayerNorm { gamma: random(d, &mut rng), beta: random(d, &mut rng) };
            let mut lanes = x.clone();
            ln.forward_inplace(&mut lanes);
            for (a, b) in lanes.iter().zip(&naive::layer_norm(&ln, &x)) {
                assert!((a - b).abs() < 1e-5, "{d}: {a} vs {b}");
            }
        }
        // Every path the CPU has gives the portable path's bits, with and without the
        // residual addition.
        let x: Vec<f32> = random(37 * 128, &mut rng).iter().map(|v| v * 7.0 - 1.5).collect();
        let d_res = random(37 * 128, &mut rng);
        let ln = LayerNorm { gamma: random(128, &mut rng), beta: random(128, &mut rng) };
        let mut plain = x.clone();
        ln.forward_inplace_with(isa::Isa::Portable, &mut plain);
        let mut added: Vec<f32> = x.iter().zip(&d_res).map(|(a, b)| a + b).collect();
        ln.forward_inplace_with(isa::Isa::Portable, &mut added);
        for p in isa::Isa::ALL {
            if let Some(missing) = p.missing_feature() {
                println!("skipped: CPU lacks {missing} (layer norm on path {p})");
                continue;
            }
            let mut y = x.clone();
            ln.forward_inplace_with(p, &mut y);
            assert!(y.iter().zip(&plain).all(|(a, b)| a.to_bits() == b.to_bits()), "path {p}");
            let mut y = x.clone();
            ln.rows_on(p, &mut y, Some(&d_res));
            assert!(y.iter().zip(&added).all(|(a, b)| a.to_bits() == b.to_bits()), "path {p}, residual");
        }
        let mut worst = 0f32;
        for i in -200_000..=200_000 {
            let v = i as f32 * 1e-4;
            let d = (gelu(v) - naive::gelu(v)).abs() / (1.0 + v.abs());
            worst = worst.max(d);
            assert!((erf(v) - libm::erf(v as f64) as f32).abs() < 5e-7, "erf({v})");
        }
        assert!(worst < 5e-7, "gelu relative error {worst}");
        assert_eq!(gelu(0.0), 0.0);
    }
}
