//! The number format of the network's dense layers: `--precision f32|bf16|f16|int8`.
//!
//! The featurization is always float32: coordinates, distances, the k-NN graph, the RBF and
//! positional features and the edge embedding that reads them (half-precision distances reorder
//! neighbours). Only the dense layers of the encoder, decoder and output (their weights and the
//! activations fed to them) change format; LayerNorm, GELU, softmax and every sum over neighbours
//! stay float32.
//!
//! - `f32`: the default, exact (the official model's numbers).
//! - `bf16`: weights and layer inputs rounded to bfloat16 (round to nearest even, subnormals to
//!   zero), products summed pairwise in float32 with the semantics of AVX-512 BF16's `vdpbf16ps`
//!   ([`super::bf16`]): that instruction where the CPU has it (2 products per float32 lane per
//!   instruction, half the weight bytes), an exact emulation on the float32 kernel elsewhere;
//!   the same bits on every path.
//! - `f16`: weights and layer inputs rounded to IEEE half (round to nearest even), products
//!   accumulated in float32 — what mixed-precision autocast computes. No CPU here has f16
//!   arithmetic (AVX512-FP16), so the rounding is emulated on the float32 kernel: the accuracy is
//!   that of a real f16 deployment, the speed is float32's.
//! - `int8`: weights quantized to int8 per output channel (symmetric, MSE-clipped scale), integer
//!   dot products accumulated exactly in int32 and rescaled to float32. On CPUs with AVX-512
//!   VNNI the per-edge layers take uint8 inputs quantized per row with a zero point (W8A8,
//!   `vpdpbusd`, corrected per node for the weights' mean rounding error), or 12-bit weights
//!   with 13-bit inputs (`vpdpwssd`), as the layer plan
//!   [`crate::model::INT8_PLAN`] says (which also puts the feed-forwards at 12 bits); the other
//!   per-node layers stay float32. Elsewhere every dense
//!   layer takes int16 inputs (W8A16). [`super::int8`] describes both and how the algorithm is
//!   chosen.
//!
//! ```
//! use mpnn::kernels::precision::Precision;
//! let p: Precision = "bf16".parse().unwrap();
//! assert_eq!(p, Precision::Bf16);
//! assert_eq!(p.to_string(), "bf16");
//! assert!("fp8".parse::<Precision>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
    Int8,
}

impl Precision {
    pub const ALL: [Precision; 4] = [Precision::F32, Precision::Bf16, Precision::F16, Precision::Int8];

    /// Rounds one value to this format's grid (identity for f32 and int8, whose rounding is
    /// per row/channel and lives in [`super::int8`]).
    #[inline]
    pub fn round(self, x: f32) -> f32 {
        match self {
            Precision::F32 | Precision::Int8 => x,
            Precision::Bf16 => half::bf16::from_f32(x).to_f32(),
            Precision::F16 => half::f16::from_f32(x).to_f32(),
        }
    }

    /// Rounds `src` into `dst` (same as [`Precision::round`] on each element, faster: bf16 by
    /// integer rounding that vectorizes, f16 with the CPU's F16C conversions when present and
    /// the kernels' path is not the portable one; all give the same bits, tested).
    pub fn round_into(self, src: &[f32], dst: &mut Vec<f32>) {
        dst.clear();
        match self {
            Precision::Bf16 => dst.extend(src.iter().map(|&x| bf16_round(x))),
            Precision::F16 => {
                dst.resize(src.len(), 0.0);
                #[cfg(target_arch = "x86_64")]
                if super::isa::active() != super::isa::Isa::Portable
                    && super::isa::cpu_has("f16c")
                    && super::isa::cpu_has("avx")
                {
                    // SAFETY: F16C and AVX are present (checked); the slices have equal lengths.
                    unsafe { f16c::round(src, dst) };
                    return;
                }
                for (d, &x) in dst.iter_mut().zip(src) {
                    *d = self.round(x);
                }
            }
            Precision::F32 | Precision::Int8 => dst.extend_from_slice(src),
        }
    }

    /// Whether the format rounds layer inputs and weights element by element.
    pub fn is_half(self) -> bool {
        matches!(self, Precision::Bf16 | Precision::F16)
    }
}

/// bfloat16 rounding (to nearest, ties to even) by integer arithmetic on the bits; NaN stays NaN.
#[inline]
fn bf16_round(x: f32) -> f32 {
    let b = x.to_bits();
    let rounded = (b.wrapping_add(0x7FFF + ((b >> 16) & 1))) & 0xFFFF_0000;
    if x.is_nan() {
        x
    } else {
        f32::from_bits(rounded)
    }
}

#[cfg(target_arch = "x86_64")]
mod f16c {
    use std::arch::x86_64::*;

    /// Rounds through IEEE half with `vcvtps2ph` (round to nearest even) and back.
    #[target_feature(enable = "avx,f16c")]
    pub unsafe fn round(src: &[f32], dst: &mut [f32]) {
        let n = src.len() / 8 * 8;
        for i in (0..n).step_by(8) {
            let v = _mm256_loadu_ps(src.as_ptr().add(i));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
        for i in n..src.len() {
            dst[i] = half::f16::from_f32(src[i]).to_f32();
        }
    }
}

/// An unknown `--precision` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a precision; use one of f32, bf16, f16, int8")]
pub struct ParsePrecisionError(pub String);

impl FromStr for Precision {
    type Err = ParsePrecisionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            "int8" | "i8" => Ok(Precision::Int8),
            _ => Err(ParsePrecisionError(s.to_string())),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        let e = "fp8".parse::<Precision>().unwrap_err();
        assert!(e.to_string().contains("f32, bf16, f16, int8"));
    }

    #[test]
    fn fast_rounding_equals_the_reference() {
        let mut xs: Vec<f32> = (0..5000).map(|i| ((i as f32) * 0.7371).sin() * 10f32.powi(i % 9 - 4)).collect();
        xs.extend([0.0, -0.0, 1.0 + 1.0 / 256.0, 65504.0, 65520.0, 1e-8, f32::INFINITY, f32::MAX, f32::MIN_POSITIVE]);
        for p in [Precision::Bf16, Precision::F16] {
            let mut fast = Vec::new();
            p.round_into(&xs, &mut fast);
            for (x, f) in xs.iter().zip(&fast) {
                assert_eq!(f.to_bits(), p.round(*x).to_bits(), "{p} {x}");
            }
        }
        let mut nan = Vec::new();
        Precision::Bf16.round_into(&[f32::NAN], &mut nan);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn rounding_grids() {
        // bf16 keeps 8 significant bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7, ties to even (1).
        assert_eq!(Precision::Bf16.round(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(Precision::Bf16.round(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        // f16 keeps 11 significant bits and overflows past 65504.
        assert_eq!(Precision::F16.round(1.0 + 1.0 / 4096.0), 1.0);
        assert_eq!(Precision::F16.round(1.0 + 1.0 / 1024.0), 1.0 + 1.0 / 1024.0);
        assert!(Precision::F16.round(1e6).is_infinite());
        assert_eq!(Precision::F32.round(0.1), 0.1);
        for x in [0.3f32, -7.77, 1e-3] {
            let r = Precision::Bf16.round(x);
            assert!((r - x).abs() <= x.abs() / 256.0, "{x} -> {r}");
        }
    }
}
