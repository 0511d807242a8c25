//! bfloat16 on Intel AMX tiles (`tdpbf16ps`), with a plain twin: a software tile emulator that
//! runs the same packing, staging and tile walk.
//!
//! # The instruction, and why the tiles are off unless the hardware proves otherwise
//!
//! `tdpbf16ps C, A, B` multiplies a 16 × 32 bfloat16 tile `A` (16 rows of 16 `k` pairs) by a
//! 16 × 16-pair tile `B` in *VNNI layout* (row `j` holds, for each of 16 columns `n`, the pair
//! `(B[2j, n], B[2j+1, n])`) and adds the products into a 16 × 16 float32 tile `C` (FMAs with
//! DAZ on inputs, FTZ on outputs, round to nearest even, MXCSR ignored). Intel has published two
//! definitions of the order:
//!
//! - **one chain, even element first** (the Intrinsics Guide's `_tile_dpbf16ps`, earlier SDMs):
//!   `C[m,n] = ftz(fma(A[m,2j], B[2j,n], C[m,n]))`, then the odd element, pair by pair
//!   ([`emulate_tdpbf16ps_chain`]);
//! - **two partial sums** (the current SDM): per instruction, the even products are summed in
//!   one float32 chain from 0, the odd products in another, then
//!   `C[m,n] = C[m,n] + (even + odd)` ([`emulate_tdpbf16ps`]).
//!
//! The bf16 contract ([`super`]) is one chain, **odd** element first, as `vdpbf16ps` computes it.
//! Under the first definition, storing every pair **swapped** — slot 0 holds element `2j+1`,
//! slot 1 element `2j` — in the weights (once, `pack`) and in the inputs (per call,
//! `stage_a`) makes the hardware's even-first walk the contract's chain, product for product:
//! that is what this module does, and its tests prove it through the emulator of that
//! definition. Under the second (current SDM), no packing can: the instruction re-associates
//! the sum (e.g. start 1, products −1 and 2⁻³⁰: the contract gives 2⁻³⁰, the partial sums
//! `1 + (−1 + 2⁻³⁰)` give 0). Which one the silicon does could not be checked here (no AMX on
//! this machine), so the kernel runs only after [`self_test`] has seen the contract's bits from
//! the hardware; otherwise bf16 stays on `vdpbf16ps`, and the self-test's message says whether
//! the hardware matched the current SDM's form instead.
//!
//! # Tiles, staging and padding
//!
//! One kernel call covers 32 rows × every output column: four accumulator tiles `tmm0..tmm3`
//! (rows 0-15 / 16-31 × panels `2q`, `2q+1` of 16 columns), two `A` tiles (`tmm4`, `tmm5`: the
//! two row halves) and two `B` tiles (`tmm6`, `tmm7`: the two panels) per block of 16 pairs. Every
//! tile is 16 rows × 64 bytes. Buffers, all padded so that every tile is whole:
//!
//! - `B` (`pack`, once per layer): `[panel][pair][column][2]`, panels padded to an even count,
//!   pairs to a multiple of 16. A tile is 16 consecutive pairs of one panel (1 KiB, stride 64).
//! - `A` (`stage_a`, per 32 rows): `[32 rows][pairs][2]`, row stride `4·kpad` bytes; rows past
//!   the last are zero.
//! - `C` (`stage_c`, per 32 rows): `[32 rows][columns]` float32: the contract's start value
//!   (bias, 0, or out + bias), flushed (`daz`) here rather than trusting the hardware's DAZ on `C`.
//!
//! Padded columns and rows compute garbage that is never written back. Padded **pairs** reach
//! real outputs, so they must not change a bit: `A` is `+0` there and `B` is `-0`, and the
//! product `+0 · -0 = -0` is the exact identity of round-to-nearest addition (`acc + -0 = acc`
//! for every `acc`, `-0` and NaN included; `+0` would turn a `-0` sum into `+0`). The contract's
//! own padding of an odd input width (a `+0` pair element, [`super::Bf16Weights::bits`]) is kept
//! as it is: the twin multiplies it too. With no pairs at all (`n_in = 0`) the outputs are the
//! start values untouched (no DAZ), so that case goes to the twin.
//!
//! # Permission, self-test, fallback
//!
//! [`detect`] checks CPUID (leaf 7: AMX-TILE, AMX-BF16; leaf 1: OSXSAVE), XCR0 bits 17-18 (the OS
//! saves tile state) and, on Linux, asks the kernel once per process for the tile data state
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; without it the first tile instruction
//! kills the process). Other systems: reported unavailable. [`in_use`] then runs [`self_test`]
//! once: products of awkward values (subnormals, huge and tiny products, cancellations, `-0`)
//! through the hardware and the twin; any difference (the current SDM's partial sums, or any
//! other rounding) is logged once and bf16 stays on `vdpbf16ps`. The kernel itself is one `asm!` block
//! (stable Rust has no AMX intrinsics) that configures, uses and releases the tiles, so no tile
//! state lives outside it.

use super::{flush, from_bf16, reference, Bf16Weights, Init};
use crate::kernels::gemm::{start_row, NR};
use std::cell::RefCell;
use std::sync::OnceLock;

/// Rows of a tile, pairs per tile row, columns of an accumulator tile (= one panel, [`NR`]).
const T: usize = 16;
/// Rows per kernel call (two row tiles).
const MB: usize = 2 * T;
/// `-0` in bfloat16: the weights of padded pairs (see the module docs).
const NEG_ZERO: u16 = 0x8000;

/// The weights as `B` tiles: `[panel (even count)][pair (multiple of 16)][column][2]` bfloat16,
/// each pair swapped (slot 0: element `2j+1`, slot 1: `2j`); padded pairs `-0`, padded columns 0.
pub(super) fn pack(w: &Bf16Weights) -> Vec<u16> {
    let (kp, n_out) = (w.k_pairs(), w.n_out);
    let (kpad, panels) = (kp.div_ceil(T) * T, n_out.div_ceil(2 * T) * 2);
    let mut b = vec![0u16; panels * kpad * T * 2];
    for (i, d) in b.chunks_exact_mut(2).enumerate() {
        let (n, j, p) = (i % T, i / T % kpad, i / (T * kpad));
        let o = p * T + n;
        if j >= kp {
            d.fill(NEG_ZERO);
        } else if o < n_out {
            d[0] = w.bits[o * kp * 2 + 2 * j + 1];
            d[1] = w.bits[o * kp * 2 + 2 * j];
        }
    }
    b
}

/// Where the kernel reads and writes, in bytes and counts (the asm block and the emulator both
/// walk it the same way).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    /// Bytes between rows of `A` (`4·kpad`).
    a_stride: usize,
    /// Bytes between panels of `B` (`64·kpad`).
    b_panel: usize,
    /// Bytes between rows of `C` (`4·columns`).
    c_stride: usize,
    /// Blocks of 16 pairs (≥ 1).
    k_blocks: usize,
    /// Panel pairs (≥ 1).
    pairs: usize,
}

impl Geometry {
    /// Panics unless every tile the walk touches lies inside the buffers (lengths in elements).
    fn check(&self, a: usize, b: usize, c: usize) {
        let g = self;
        assert!(g.k_blocks >= 1 && g.pairs >= 1 && g.a_stride >= 64 && g.c_stride >= 128 * g.pairs);
        assert!(2 * a >= (MB - 1) * g.a_stride + g.k_blocks * 64, "AMX: A staging too small");
        assert!(g.b_panel >= g.k_blocks * 1024, "AMX: B panels overlap");
        assert!(2 * b >= (2 * g.pairs - 1) * g.b_panel + g.k_blocks * 1024, "AMX: B too small");
        assert!(4 * c >= (MB - 1) * g.c_stride + g.pairs * 128, "AMX: C staging too small");
    }
}

thread_local! {
    /// Per-thread `A` and `C` staging (no allocation after warm-up).
    static STAGING: RefCell<(Vec<u16>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `A` for rows `m0..m0 + mr` of `x` (`[rows][2·kp]` bfloat16 bits): pairs swapped, `+0` past the
/// last pair and in rows past `mr`.
fn stage_a(x: &[u16], m0: usize, mr: usize, kp: usize, a: &mut [u16]) {
    let width = a.len() / MB;
    for (r, d) in a.chunks_exact_mut(width).enumerate() {
        d.fill(0);
        if r < mr {
            let s = &x[(m0 + r) * kp * 2..(m0 + r + 1) * kp * 2];
            for (d, s) in d.chunks_exact_mut(2).zip(s.chunks_exact(2)) {
                d[0] = s[1];
                d[1] = s[0];
            }
        }
    }
}

/// `C` for rows `m0..m0 + mr`: each output's start value, flushed (the contract's `daz`); 0 in
/// padded rows and columns.
fn stage_c(init: Init, out: &[f32], m0: usize, mr: usize, n_out: usize, c: &mut [f32]) {
    let width = c.len() / MB;
    for (r, d) in c.chunks_exact_mut(width).enumerate() {
        d.fill(0.0);
        if r < mr {
            for c0 in (0..n_out).step_by(NR) {
                let cols = (n_out - c0).min(NR);
                let mut s = [0f32; NR];
                start_row(init, out, m0 + r, c0, cols, n_out, &mut s);
                for (d, &s) in d[c0..c0 + cols].iter_mut().zip(&s[..cols]) {
                    *d = flush(s);
                }
            }
        }
    }
}

/// `out = init + x · Wᵀ` through `kernel` (the asm block or the emulator, on the staged
/// buffers): the tiling, packing and staging both share.
fn gemm_tiles(
    x: &[u16],
    rows: usize,
    w: &Bf16Weights,
    init: Init,
    out: &mut [f32],
    kernel: impl Fn(&Geometry, &[u16], &[u16], &mut [f32]),
) {
    let (kp, n_out) = (w.k_pairs(), w.n_out);
    assert!(x.len() >= rows * kp * 2 && out.len() >= rows * n_out);
    if rows == 0 || n_out == 0 {
        return;
    }
    if kp == 0 {
        return reference(x, rows, w, init, out);
    }
    let b = w.amx_tiles();
    let (k_blocks, pairs) = (kp.div_ceil(T), n_out.div_ceil(2 * T));
    let (kpad, cols) = (k_blocks * T, pairs * 2 * T);
    let g = Geometry { a_stride: 4 * kpad, b_panel: 64 * kpad, c_stride: 4 * cols, k_blocks, pairs };
    STAGING.with_borrow_mut(|(a, c)| {
        a.resize(a.len().max(MB * 2 * kpad), 0);
        c.resize(c.len().max(MB * cols), 0.0);
        let (a, c) = (&mut a[..MB * 2 * kpad], &mut c[..MB * cols]);
        for m0 in (0..rows).step_by(MB) {
            let mr = (rows - m0).min(MB);
            stage_a(x, m0, mr, kp, a);
            stage_c(init, out, m0, mr, n_out, c);
            kernel(&g, a, b, c);
            for r in 0..mr {
                out[(m0 + r) * n_out..(m0 + r + 1) * n_out].copy_from_slice(&c[r * cols..r * cols + n_out]);
            }
        }
    });
}

/// `out[m, :] = init + x[m, :] · Wᵀ` on the AMX tiles (`x`: [`super::Inputs::bits`]): the same
/// bits as [`super::reference()`] where [`self_test`] passed (see the module docs). Panics where
/// [`detect`] fails.
pub fn gemm(x: &[u16], rows: usize, w: &Bf16Weights, init: Init, out: &mut [f32]) {
    if let Err(e) = detect() {
        panic!("bf16 AMX kernel: {e}");
    }
    gemm_tiles(x, rows, w, init, out, tiles_asm);
}

/// [`gemm`] with `op` ([`emulate_tdpbf16ps_chain`] or [`emulate_tdpbf16ps`]) in place of the
/// instruction: the same packing, staging and tile walk, on every CPU.
pub fn gemm_emulated(x: &[u16], rows: usize, w: &Bf16Weights, init: Init, out: &mut [f32], op: TileOp) {
    gemm_tiles(x, rows, w, init, out, |g, a, b, c| tiles_emulated(op, g, a, b, c));
}

// ---------------------------------------------------------------------------------------------
// The software tiles: Intel's two definitions of `tdpbf16ps`, and the asm block's walk in plain Rust.

/// A float32 tile (16 rows × 16 columns).
pub type TileF32 = [[f32; T]; T];
/// A bfloat16 tile (16 rows × 32 elements = 16 pairs).
pub type TileBf16 = [[u16; 2 * T]; T];

/// One `tdpbf16ps` on software tiles.
pub type TileOp = fn(&mut TileF32, &TileBf16, &TileBf16);

/// `tdpbf16ps c, a, b` as the current Intel SDM writes it: per row `m`, the even products of all
/// pairs summed in one float32 FMA chain from 0 and the odd ones in another (`2n`, `2n+1` of
/// `temp1`), then `c[m,n] + (even + odd)`; DAZ on inputs, FTZ on results, round to nearest even.
pub fn emulate_tdpbf16ps(c: &mut TileF32, a: &TileBf16, b: &TileBf16) {
    let v = |h: u16| flush(from_bf16(h));
    for (cm, am) in c.iter_mut().zip(a) {
        let mut temp = [[0f32; 2]; T];
        for (k, bk) in b.iter().enumerate() {
            for (n, t) in temp.iter_mut().enumerate() {
                t[0] = flush(v(am[2 * k]).mul_add(v(bk[2 * n]), t[0]));
                t[1] = flush(v(am[2 * k + 1]).mul_add(v(bk[2 * n + 1]), t[1]));
            }
        }
        for (cmn, t) in cm.iter_mut().zip(&temp) {
            *cmn = flush(flush(*cmn) + flush(t[0] + t[1]));
        }
    }
}

/// `tdpbf16ps c, a, b` as the Intrinsics Guide (and earlier SDMs) write it: per row `m`, pair
/// `k`, column `n`, the even element's product and then the odd one's, each one float32 FMA on
/// `c` with DAZ on inputs and FTZ on the result.
pub fn emulate_tdpbf16ps_chain(c: &mut TileF32, a: &TileBf16, b: &TileBf16) {
    let v = |h: u16| flush(from_bf16(h));
    for (cm, am) in c.iter_mut().zip(a) {
        for (k, bk) in b.iter().enumerate() {
            for (n, cmn) in cm.iter_mut().enumerate() {
                let acc = flush(v(am[2 * k]).mul_add(v(bk[2 * n]), flush(*cmn)));
                *cmn = flush(v(am[2 * k + 1]).mul_add(v(bk[2 * n + 1]), acc));
            }
        }
    }
}

/// `tileloadd` of a bfloat16 tile: 16 rows of 64 bytes, `stride` bytes apart, from byte `at`.
fn load_bf16(mem: &[u16], at: usize, stride: usize) -> TileBf16 {
    std::array::from_fn(|r| mem[(at + r * stride) / 2..][..2 * T].try_into().unwrap())
}

/// `tileloadd` of a float32 tile.
fn load_f32(mem: &[f32], at: usize, stride: usize) -> TileF32 {
    std::array::from_fn(|r| mem[(at + r * stride) / 4..][..T].try_into().unwrap())
}

/// `tilestored` of a float32 tile.
fn store_f32(mem: &mut [f32], at: usize, stride: usize, t: &TileF32) {
    for (r, row) in t.iter().enumerate() {
        mem[(at + r * stride) / 4..][..T].copy_from_slice(row);
    }
}

/// The asm block of [`tiles_asm`], line for line, on software tiles, `op` for `tdpbf16ps`.
fn tiles_emulated(op: TileOp, g: &Geometry, a: &[u16], b: &[u16], c: &mut [f32]) {
    g.check(a.len(), b.len(), c.len());
    let (cs, as_) = (g.c_stride, g.a_stride);
    let (mut pc, mut pbase) = (0, 0); // byte offsets of C tile (rows 0-15, panel 2q) and B panel 2q
    for _ in 0..g.pairs {
        let mut acc = [
            load_f32(c, pc, cs),                // tmm0: rows 0-15, panel 2q
            load_f32(c, pc + 64, cs),           // tmm1: rows 0-15, panel 2q+1
            load_f32(c, pc + 16 * cs, cs),      // tmm2: rows 16-31, panel 2q
            load_f32(c, pc + 16 * cs + 64, cs), // tmm3: rows 16-31, panel 2q+1
        ];
        let (mut pa, mut pb) = (0, pbase);
        for _ in 0..g.k_blocks {
            let a0 = load_bf16(a, pa, as_); // tmm4
            let a1 = load_bf16(a, pa + 16 * as_, as_); // tmm5
            let b0 = load_bf16(b, pb, 64); // tmm6
            let b1 = load_bf16(b, pb + g.b_panel, 64); // tmm7
            op(&mut acc[0], &a0, &b0);
            op(&mut acc[1], &a0, &b1);
            op(&mut acc[2], &a1, &b0);
            op(&mut acc[3], &a1, &b1);
            pa += 64;
            pb += 1024;
        }
        store_f32(c, pc, cs, &acc[0]);
        store_f32(c, pc + 64, cs, &acc[1]);
        store_f32(c, pc + 16 * cs, cs, &acc[2]);
        store_f32(c, pc + 16 * cs + 64, cs, &acc[3]);
        pc += 128;
        pbase += 2 * g.b_panel;
    }
}

// ---------------------------------------------------------------------------------------------
// The hardware.

/// The 64-byte tile configuration: palette 1, `tmm0..tmm7` each 16 rows × 64 bytes.
#[cfg(target_arch = "x86_64")]
fn config() -> [u8; 64] {
    let mut cfg = [0u8; 64];
    cfg[0] = 1;
    for t in 0..8 {
        cfg[16 + 2 * t..18 + 2 * t].copy_from_slice(&64u16.to_le_bytes());
        cfg[48 + t] = T as u8;
    }
    cfg
}

/// What the asm block reads through one pointer (offsets by `offset_of!`).
#[cfg(target_arch = "x86_64")]
#[repr(C)]
struct Args {
    cfg: [u8; 64],
    a: *const u16,
    a_stride: usize,
    b: *const u16,
    b_panel: usize,
    c: *mut f32,
    c_stride: usize,
    k_blocks: usize,
    pairs: usize,
}

#[cfg(target_arch = "x86_64")]
fn tiles_asm(g: &Geometry, a: &[u16], b: &[u16], c: &mut [f32]) {
    use std::mem::offset_of;
    g.check(a.len(), b.len(), c.len());
    assert!(detect().is_ok(), "AMX unavailable");
    let args = Args {
        cfg: config(),
        a: a.as_ptr(),
        a_stride: g.a_stride,
        b: b.as_ptr(),
        b_panel: g.b_panel,
        c: c.as_mut_ptr(),
        c_stride: g.c_stride,
        k_blocks: g.k_blocks,
        pairs: g.pairs,
    };
    // SAFETY: the CPU has AMX-TILE/AMX-BF16 and the process may use tile data (`detect`); every
    // tile read or written lies inside `a`, `b`, `c` (`check`: the same walk as the emulator);
    // the tiles are configured, used and released inside this one block.
    unsafe {
        std::arch::asm!(
            "ldtilecfg [{p}]",
            "mov {c}, qword ptr [{p} + {C}]",
            "mov {b}, qword ptr [{p} + {B}]",
            "mov {n}, qword ptr [{p} + {PAIRS}]",
            "mov {cs}, qword ptr [{p} + {CS}]",
            "mov {ast}, qword ptr [{p} + {AS}]",
            "mov {s64}, 64",
            "2:", // per panel pair q: C rows 0-15 at c (panel 2q) and c + 64 (2q+1), rows 16-31 at + 16·cs
            "tileloadd tmm0, [{c} + {cs}*1]",
            "lea {t}, [{c} + 64]",
            "tileloadd tmm1, [{t} + {cs}*1]",
            "mov {t}, {cs}",
            "shl {t}, 4",
            "add {t}, {c}",
            "tileloadd tmm2, [{t} + {cs}*1]",
            "add {t}, 64",
            "tileloadd tmm3, [{t} + {cs}*1]",
            "mov {pa}, qword ptr [{p} + {A}]",
            "mov {pb}, {b}",
            "mov {k}, qword ptr [{p} + {KB}]",
            "3:", // per block of 16 pairs: A rows 0-15, 16-31; B panels 2q, 2q+1
            "tileloadd tmm4, [{pa} + {ast}*1]",
            "mov {t}, {ast}",
            "shl {t}, 4",
            "add {t}, {pa}",
            "tileloadd tmm5, [{t} + {ast}*1]",
            "tileloadd tmm6, [{pb} + {s64}*1]",
            "mov {t}, {pb}",
            "add {t}, qword ptr [{p} + {BP}]",
            "tileloadd tmm7, [{t} + {s64}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {pa}, 64",
            "add {pb}, 1024",
            "dec {k}",
            "jnz 3b",
            "tilestored [{c} + {cs}*1], tmm0",
            "lea {t}, [{c} + 64]",
            "tilestored [{t} + {cs}*1], tmm1",
            "mov {t}, {cs}",
            "shl {t}, 4",
            "add {t}, {c}",
            "tilestored [{t} + {cs}*1], tmm2",
            "add {t}, 64",
            "tilestored [{t} + {cs}*1], tmm3",
            "add {c}, 128",
            "add {b}, qword ptr [{p} + {BP}]",
            "add {b}, qword ptr [{p} + {BP}]",
            "dec {n}",
            "jnz 2b",
            "tilerelease",
            p = in(reg) &args,
            c = out(reg) _,
            b = out(reg) _,
            n = out(reg) _,
            cs = out(reg) _,
            ast = out(reg) _,
            s64 = out(reg) _,
            t = out(reg) _,
            pa = out(reg) _,
            pb = out(reg) _,
            k = out(reg) _,
            A = const offset_of!(Args, a),
            AS = const offset_of!(Args, a_stride),
            B = const offset_of!(Args, b),
            BP = const offset_of!(Args, b_panel),
            C = const offset_of!(Args, c),
            CS = const offset_of!(Args, c_stride),
            KB = const offset_of!(Args, k_blocks),
            PAIRS = const offset_of!(Args, pairs),
            out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
            out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
            options(nostack),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn tiles_asm(_: &Geometry, _: &[u16], _: &[u16], _: &mut [f32]) {
    unreachable!("AMX is x86-64 only")
}

/// Whether this process can run the tile instructions: the CPU has them, the OS saves their
/// state, and (Linux) the kernel granted the tile data permission. Checked once; the reason
/// otherwise.
pub fn detect() -> Result<(), &'static str> {
    static R: OnceLock<Result<(), &'static str>> = OnceLock::new();
    *R.get_or_init(probe)
}

#[cfg(not(target_arch = "x86_64"))]
fn probe() -> Result<(), &'static str> {
    Err("not x86-64")
}

#[cfg(target_arch = "x86_64")]
#[allow(unused_unsafe)] // `__cpuid` is a safe function in newer Rust
fn probe() -> Result<(), &'static str> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID exists on every x86-64 CPU.
    if unsafe { __cpuid(0) }.eax < 7 {
        return Err("CPUID has no leaf 7");
    }
    let edx = unsafe { __cpuid_count(7, 0) }.edx;
    if edx >> 24 & 1 == 0 {
        return Err("CPU lacks amx-tile");
    }
    if edx >> 22 & 1 == 0 {
        return Err("CPU lacks amx-bf16");
    }
    if unsafe { __cpuid(1) }.ecx >> 27 & 1 == 0 {
        return Err("OS has not enabled XSAVE (OSXSAVE)");
    }
    let (lo, _hi): (u32, u32);
    // SAFETY: XGETBV exists when CPUID says OSXSAVE (checked); XCR0 is readable.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") _hi, options(nomem, nostack, preserves_flags))
    };
    if lo >> 17 & 3 != 3 {
        return Err("OS does not save tile state (XCR0 bits 17-18)");
    }
    permission()
}

/// Linux: `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, then `ARCH_GET_XCOMP_PERM` to
/// confirm (the permission is per process and covers every thread). The kernel refuses it when
/// an existing thread's alternate signal stack is too small for the tile state (std sizes its
/// own from `AT_MINSIGSTKSZ`, rust-lang/rust#113525); then AMX is reported unavailable. The
/// command line asks early ([`super::kernel_name`] at start-up), before the worker threads exist.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn permission() -> Result<(), &'static str> {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_GET_XCOMP_PERM: i64 = 0x1022;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let syscall = |op: i64, arg: i64| -> i64 {
        let ret: i64;
        // SAFETY: arch_prctl with these operations reads its arguments and, for GET, writes
        // one u64 through `arg` (a live local); rcx and r11 are clobbered by `syscall`.
        unsafe {
            std::arch::asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret, in("rdi") op, in("rsi") arg,
                lateout("rcx") _, lateout("r11") _, options(nostack))
        };
        ret
    };
    if syscall(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0 {
        return Err("the kernel refused tile data (arch_prctl ARCH_REQ_XCOMP_PERM)");
    }
    let mut mask = 0u64;
    if syscall(ARCH_GET_XCOMP_PERM, &mut mask as *mut u64 as i64) != 0 || mask >> XFEATURE_XTILEDATA & 1 == 0 {
        return Err("tile data not permitted after arch_prctl");
    }
    Ok(())
}

#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn permission() -> Result<(), &'static str> {
    Err("AMX permission is only requested on Linux")
}

/// Whether bf16 may run on the tiles: [`detect`] passed and [`self_test`] gave the twin's bits
/// (run once; a failure is logged once).
pub fn in_use() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        detect().is_ok()
            && match self_test() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("bf16: the AMX self-test failed ({e}); using vdpbf16ps instead");
                    false
                }
            }
    })
}

/// Runs awkward products through [`gemm`] and [`reference()`] and reports the first difference.
/// Panics where [`detect`] fails.
pub fn self_test() -> Result<(), String> {
    self_test_with(gemm)
}

/// [`self_test`] of `kernel` (the hardware, or an emulator in tests).
pub(super) fn self_test_with(kernel: fn(&[u16], usize, &Bf16Weights, Init, &mut [f32])) -> Result<(), String> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    // Ordinary values, wide exponents, tiny and huge products, subnormals, ±0, near 2⁻¹²⁶.
    let mut value = || {
        let r = next();
        let v = (r >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        let e = (r >> 8 & 0xff) as i32;
        match r % 16 {
            0..=6 => v,
            7 | 8 => v * 2f32.powi(e % 64 - 32),
            9 => v * 2f32.powi(-126 + e % 70),
            10 => f32::from_bits(r as u32 >> 9) * if r & 1 == 0 { 1.0 } else { -1.0 },
            11 => v * 2f32.powi(60 + e % 60),
            12 => [0.0, -0.0][(r >> 5 & 1) as usize],
            _ => 2f32.powi(-126) * (1.0 + v),
        }
    };
    for &(rows, n_in, n_out) in &[(33, 35, 40), (5, 64, 16), (17, 3, 1)] {
        let x: Vec<f32> = (0..rows * n_in).map(|_| value()).collect();
        let w = Bf16Weights::new(&(0..n_out * n_in).map(|_| value()).collect::<Vec<_>>(), n_out, n_in);
        let bias: Vec<f32> = (0..n_out).map(|_| value()).collect();
        let mut start: Vec<f32> = (0..rows * n_out).map(|_| value()).collect();
        start[0] = -0.0;
        let mut xb = super::Inputs::default();
        xb.convert(&x, rows, n_in, true);
        for init in [Init::Zero, Init::Bias(&bias), Init::Accumulate(Some(&bias)), Init::Accumulate(None)] {
            let (mut got, mut want) = (start.clone(), start.clone());
            kernel(&xb.bits, rows, &w, init, &mut got);
            reference(&xb.bits, rows, &w, init, &mut want);
            if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits() && !got[i].is_nan()) {
                // Which definition did the hardware follow? (See the module docs.)
                let mut sdm = start.clone();
                gemm_emulated(&xb.bits, rows, &w, init, &mut sdm, emulate_tdpbf16ps);
                let same_as_sdm =
                    sdm.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan());
                return Err(format!(
                    "{rows}x{n_in}x{n_out} {init:?}: output {i}: {:e} instead of {:e}; the hardware {} the \
                     current SDM's two partial sums",
                    got[i],
                    want[i],
                    if same_as_sdm { "matches" } else { "does not match either" }
                ));
            }
        }
    }
    Ok(())
}

/// `mpnn bench --peak`: `n` iterations of 4 independent `tdpbf16ps` (16 × 16 × 32 products each)
/// on tiles `ldtilecfg` zeroed. Panics where [`detect`] fails.
#[cfg(target_arch = "x86_64")]
pub fn peak(n: u64) -> f32 {
    if let Err(e) = detect() {
        panic!("AMX peak: {e}");
    }
    let cfg = config();
    let mut out = [0f32; T * T];
    // SAFETY: AMX usable (`detect`); the store writes one 16 × 64-byte tile into `out`.
    unsafe {
        std::arch::asm!(
            "ldtilecfg [{cfg}]",
            "2:",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "dec {n}",
            "jnz 2b",
            "tilestored [{o} + {s}*1], tmm0",
            "tilerelease",
            cfg = in(reg) cfg.as_ptr(),
            n = inout(reg) n.max(1) => _,
            o = in(reg) out.as_mut_ptr(),
            s = in(reg) 64usize,
            out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
            out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
            options(nostack),
        );
    }
    out[0]
}
