// mpnn's compute kernels. Every kernel sees the same four bindings:
//   p  : 32 u32 parameters (offsets, sizes, flags; f32 values as bit patterns), one record per dispatch
//   wt : the model's weights (read-only f32)
//   a  : the activation arena (f32): inputs, states, scratch and results, addressed by offsets
//   iv : the integer arena (u32): neighbour lists, row lists, positions, sequences, sampling records
// Offsets are in elements. NONE marks an absent operand.

@group(0) @binding(0) var<uniform> p: array<vec4<u32>, 8>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> iv: array<u32>;

const NONE: u32 = 0xffffffffu;
const VOCAB: u32 = 21u;
const MESSAGE_SCALE: f32 = 30.0;
const EPS: f32 = 1e-5;

fn P(i: u32) -> u32 {
    return p[i >> 2u][i & 3u];
}

fn PF(i: u32) -> f32 {
    return bitcast<f32>(P(i));
}

// Grid-stride loops: dispatches are (min(groups, 65535), 1, 1) workgroups of 256 (or 64) threads.
fn stride(nw: vec3<u32>, size: u32) -> u32 {
    return nw.x * size;
}

// erf(x) in f32 as a rational polynomial on [-4, 4] (±1 beyond): the same form and coefficients
// as the CPU kernel (WGSL has no erf).
fn erf32(x0: f32) -> f32 {
    let x = clamp(x0, -4.0, 4.0);
    let x2 = x * x;
    var q = -2.72614225801306e-10;
    q = q * x2 + 2.77068142495902e-08;
    q = q * x2 + -2.10102402082508e-06;
    q = q * x2 + -5.69250639462346e-05;
    q = q * x2 + -7.34990630326855e-04;
    q = q * x2 + -2.95459980854025e-03;
    q = q * x2 + -1.60960333262415e-02;
    let num = x * q;
    var d = -1.45660718464996e-05;
    d = d * x2 + -2.13374055278905e-04;
    d = d * x2 + -1.68282697438203e-03;
    d = d * x2 + -7.37332916720468e-03;
    d = d * x2 + -1.42647390514189e-02;
    return num / d;
}

fn gelu1(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf32(x * 0.70710678118654752));
}

// ---- dense layer -------------------------------------------------------------------------
// Y[m, n] = Σ_k X[m, k]·W[n, k] (+ b[n]) (+ Y[m, n] when accumulating); W is [N, K] row-major
// stored transposed, [K, N] row-major. P0 M, P1 N, P2 K, P3 x, P4 w, P5 b (NONE), P6 y, P7 accumulate.
// A 64×64 tile per workgroup of 16×16 threads, 4×4 outputs per thread, K in steps of 16.
var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let M = P(0u);
    let N = P(1u);
    let K = P(2u);
    let xo = P(3u);
    let wo = P(4u);
    let bo = P(5u);
    let yo = P(6u);
    let row0 = (wg.y + wg.z * 65535u) * 64u;
    let col0 = wg.x * 64u;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < K; k0 += 16u) {
        for (var e = 0u; e < 4u; e++) {
            let idx = li + e * 256u;
            let r = idx / 16u;
            let kk = idx % 16u;
            let gk = k0 + kk;
            var xv = 0.0;
            if (row0 + r < M && gk < K) {
                xv = a[xo + (row0 + r) * K + gk];
            }
            xs[kk * 64u + r] = xv;
            // the weight tile: 16 k-rows of 64 contiguous columns
            let wk = k0 + idx / 64u;
            let wc = col0 + idx % 64u;
            var wv = 0.0;
            if (wc < N && wk < K) {
                wv = wt[wo + wk * N + wc];
            }
            ws[(idx / 64u) * 64u + idx % 64u] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var xr: array<f32, 4>;
            var wr: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                xr[i] = xs[kk * 64u + lid.y + 16u * i];
                wr[i] = ws[kk * 64u + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += xr[i] * wr[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x + 16u * j;
            if (r < M && c < N) {
                var v = acc[i * 4u + j];
                if (bo != NONE) {
                    v += wt[bo + c];
                }
                if (P(7u) != 0u) {
                    v += a[yo + r * N + c];
                }
                a[yo + r * N + c] = v;
            }
        }
    }
}

// ---- elementwise ---------------------------------------------------------------------------
// P0 n, P1 offset.
@compute @workgroup_size(256)
fn gelu(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let n = P(0u);
    let o = P(1u);
    for (var i = g.x; i < n; i += stride(nw, 256u)) {
        a[o + i] = gelu1(a[o + i]);
    }
}

// a[o + i] = value. P0 n, P1 offset, P2 value bits.
@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let n = P(0u);
    for (var i = g.x; i < n; i += stride(nw, 256u)) {
        a[P(1u) + i] = PF(2u);
    }
}

// iv[o + i] = value. P0 n, P1 offset, P2 value.
@compute @workgroup_size(256)
fn fill_int(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let n = P(0u);
    for (var i = g.x; i < n; i += stride(nw, 256u)) {
        iv[P(1u) + i] = P(2u);
    }
}

// a[dst + i] = a[src + i % period]. P0 n, P1 src, P2 dst, P3 period.
@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let n = P(0u);
    for (var i = g.x; i < n; i += stride(nw, 256u)) {
        a[P(2u) + i] = a[P(1u) + i % P(3u)];
    }
}

// out[r] = src[rows[r]] (row `rows[r] % R` when P6 is set), rows of H.
// P0 n, P1 H, P2 rows (iv), P3 src, P4 out, P5 R, P6 shared.
@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    let n = P(0u) * H;
    for (var i = g.x; i < n; i += stride(nw, 256u)) {
        let r = i / H;
        var src = iv[P(2u) + r];
        if (P(6u) != 0u) {
            src = src % P(5u);
        }
        a[P(4u) + i] = a[P(3u) + src * H + i % H];
    }
}

// dst[rows[r]] = src[r]. P0 n, P1 H, P2 rows (iv), P3 src, P4 dst.
@compute @workgroup_size(256)
fn scatter(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    let n = P(0u) * H;
    for (var i = g.x; i < n; i += stride(nw, 256u)) {
        let r = i / H;
        a[P(4u) + iv[P(2u) + r] * H + i % H] = a[P(3u) + i];
    }
}

// ---- rows: one thread per row, sums in order (as the CPU does) ------------------------------
fn layer_norm_row(o: u32, H: u32, go: u32, bo: u32) {
    var s = 0.0;
    for (var t = 0u; t < H; t++) {
        s += a[o + t];
    }
    let mean = s / f32(H);
    var v = 0.0;
    for (var t = 0u; t < H; t++) {
        let d = a[o + t] - mean;
        v += d * d;
    }
    let inv = 1.0 / sqrt(v / f32(H) + EPS);
    for (var t = 0u; t < H; t++) {
        a[o + t] = (a[o + t] - mean) * inv * wt[go + t] + wt[bo + t];
    }
}

// x[r] = LN(x[r] + f[r]) · mask[rows[r] % R]. P0 n, P1 H, P2 x, P3 f (NONE: no add),
// P4 gamma, P5 beta, P6 mask (NONE: no mask), P7 rows (iv, NONE: identity), P8 R.
@compute @workgroup_size(64)
fn add_norm(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    for (var r = g.x; r < P(0u); r += stride(nw, 64u)) {
        let o = P(2u) + r * H;
        if (P(3u) != NONE) {
            for (var t = 0u; t < H; t++) {
                a[o + t] = a[o + t] + a[P(3u) + r * H + t];
            }
        }
        layer_norm_row(o, H, P(4u), P(5u));
        if (P(6u) != NONE) {
            var row = r;
            if (P(7u) != NONE) {
                row = iv[P(7u) + r];
            }
            let m = a[P(6u) + row % P(8u)];
            for (var t = 0u; t < H; t++) {
                a[o + t] = a[o + t] * m;
            }
        }
    }
}

// The node update after the messages: x[r] = LN(x[r] + (dh[r] + count_r·b3) / 30).
// P0 n, P1 H, P2 x, P3 dh, P4 counts (NONE: P5), P5 count bits, P6 b3 (NONE), P7 gamma, P8 beta.
@compute @workgroup_size(64)
fn node_update(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    for (var r = g.x; r < P(0u); r += stride(nw, 64u)) {
        var c = PF(5u);
        if (P(4u) != NONE) {
            c = a[P(4u) + r];
        }
        let o = P(2u) + r * H;
        for (var t = 0u; t < H; t++) {
            var d = a[P(3u) + r * H + t];
            if (P(6u) != NONE) {
                d += c * wt[P(6u) + t];
            }
            a[o + t] = a[o + t] + d / MESSAGE_SCALE;
        }
        layer_norm_row(o, H, P(7u), P(8u));
    }
}

// log_softmax of rows of width W. P0 n, P1 W, P2 in, P3 out.
@compute @workgroup_size(64)
fn log_softmax(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let W = P(1u);
    for (var r = g.x; r < P(0u); r += stride(nw, 64u)) {
        let i = P(2u) + r * W;
        var m = a[i];
        for (var t = 1u; t < W; t++) {
            m = max(m, a[i + t]);
        }
        var s = 0.0;
        for (var t = 0u; t < W; t++) {
            s += exp(a[i + t] - m);
        }
        let lse = m + log(s);
        for (var t = 0u; t < W; t++) {
            a[P(3u) + r * W + t] = a[i + t] - lse;
        }
    }
}

// ---- encoder -------------------------------------------------------------------------------
// pre[e] += self[i] + nbr[j] for every edge e = i·K + nb. P0 edges, P1 H, P2 K, P3 pre,
// P4 self, P5 nbr, P6 e_idx (iv), P7 L.
@compute @workgroup_size(256)
fn enc_pre(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    let K = P(2u);
    let L = P(7u);
    let n = P(0u) * H;
    for (var x = g.x; x < n; x += stride(nw, 256u)) {
        let e = x / H;
        let t = x % H;
        let i = e / K;
        let j = (i / L) * L + iv[P(6u) + e];
        a[P(3u) + x] = a[P(3u) + x] + (a[P(4u) + i * H + t] + a[P(5u) + j * H + t]);
    }
}

// Masked neighbour sums: out[i] = Σ_nb att·msg[i, nb], att = mask_i·mask_j; counts[i] = Σ att.
// P0 rows, P1 H, P2 K, P3 msg, P4 mask, P5 e_idx (iv), P6 L, P7 out, P8 counts.
@compute @workgroup_size(256)
fn enc_sum(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    let K = P(2u);
    let L = P(6u);
    let n = P(0u) * H;
    for (var x = g.x; x < n; x += stride(nw, 256u)) {
        let i = x / H;
        let t = x % H;
        var acc = 0.0;
        var cnt = 0.0;
        for (var nb = 0u; nb < K; nb++) {
            let j = (i / L) * L + iv[P(5u) + i * K + nb];
            let att = a[P(4u) + i] * a[P(4u) + j];
            if (att != 0.0) {
                cnt += att;
                acc += att * a[P(3u) + (i * K + nb) * H + t];
            }
        }
        a[P(7u) + x] = acc;
        if (t == 0u) {
            a[P(8u) + i] = cnt;
        }
    }
}

// ---- decoder -------------------------------------------------------------------------------
// The first layer's input of every edge of the rows `rows` (virtual rows v = c·R + r, copy c of
// encoded row r): own_i + mask_i·(W1e·e_ij + W1s·s_j + W1v·h_j) when j is decoded before i, else
// own_i + mask_i·(W1e·e_ij + W1v·h_enc_j).
// P0 n, P1 H, P2 K, P3 R, P4 L, P5 rows (iv), P6 own, P7 edge projections [R·K, H],
// P8 sequence table (wt, [22, H]), P9 nbr_prev, P10 prev shared (index by r, not v),
// P11 enc_nbr [R, H], P12 mask [R], P13 pos (iv, by v), P14 seq (iv, by v), P15 e_idx (iv),
// P16 out [n·K, H].
@compute @workgroup_size(256)
fn dec_pre(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    let K = P(2u);
    let R = P(3u);
    let L = P(4u);
    let n = P(0u) * K * H;
    for (var x = g.x; x < n; x += stride(nw, 256u)) {
        let t = x % H;
        let e = x / H;
        let nb = e % K;
        let r = e / K;
        let v = iv[P(5u) + r];
        let local = v % R;
        let base = v - local;
        let mi = a[P(12u) + local];
        let jl = (local / L) * L + iv[P(15u) + local * K + nb];
        let j = base + jl;
        let own = a[P(6u) + r * H + t];
        var out = own;
        if (mi != 0.0) {
            let ed = a[P(7u) + (local * K + nb) * H + t];
            if (iv[P(13u) + j] < iv[P(13u) + v]) {
                let st = wt[P(8u) + iv[P(14u) + j] * H + t];
                var jp = j;
                if (P(10u) != 0u) {
                    jp = jl;
                }
                let hv = a[P(9u) + jp * H + t];
                out = own + (mi * ed + (mi * st + mi * hv));
            } else {
                out = own + (mi * ed + mi * a[P(11u) + jl * H + t]);
            }
        }
        a[P(16u) + x] = out;
    }
}

// out[r] = Σ_nb msg[r, nb]. P0 n, P1 H, P2 K, P3 msg, P4 out.
@compute @workgroup_size(256)
fn dec_sum(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let H = P(1u);
    let K = P(2u);
    let n = P(0u) * H;
    for (var x = g.x; x < n; x += stride(nw, 256u)) {
        let r = x / H;
        let t = x % H;
        var acc = 0.0;
        for (var nb = 0u; nb < K; nb++) {
            acc += a[P(3u) + (r * K + nb) * H + t];
        }
        a[P(4u) + x] = acc;
    }
}

// ---- sampler -------------------------------------------------------------------------------
// Logits of the rows decoded at this sub-step into each sequence's accumulator.
// P0 n, P1 rows (iv, v = s·L + t), P2 meta (iv, 3 per row: flags, beta bits, members bits;
// flags: 1 first member of the step, 2 store log-probabilities, 4 tied), P3 raw logits [n, 21],
// P4 acc [N, 21], P5 log_probs [N·L, 21], P6 L, P7 temperature bits.
@compute @workgroup_size(64)
fn samp_accum(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let L = P(6u);
    let temp = PF(7u);
    for (var r = g.x; r < P(0u); r += stride(nw, 64u)) {
        let v = iv[P(1u) + r];
        let s = v / L;
        let flags = iv[P(2u) + r * 3u];
        let beta = bitcast<f32>(iv[P(2u) + r * 3u + 1u]);
        let members = bitcast<f32>(iv[P(2u) + r * 3u + 2u]);
        let raw = P(3u) + r * VOCAB;
        let acc = P(4u) + s * VOCAB;
        for (var c = 0u; c < VOCAB; c++) {
            let lg = a[raw + c] / temp;
            if ((flags & 4u) != 0u) {
                var prev = 0.0;
                if ((flags & 1u) == 0u) {
                    prev = a[acc + c];
                }
                a[acc + c] = prev + beta * lg / members;
            } else {
                a[acc + c] = lg;
            }
        }
        if ((flags & 2u) != 0u) {
            var m = a[raw];
            for (var c = 1u; c < VOCAB; c++) {
                m = max(m, a[raw + c]);
            }
            var sum = 0.0;
            for (var c = 0u; c < VOCAB; c++) {
                sum += exp(a[raw + c] - m);
            }
            let lse = m + log(sum);
            for (var c = 0u; c < VOCAB; c++) {
                a[P(5u) + v * VOCAB + c] = a[raw + c] - lse;
            }
        }
    }
}

// The end of a step: constraints, the choice, the letter written to the step's members.
// One thread per sequence; its record (iv, 8 per sequence at P2): kind (0 nothing, 1 choose,
// 2 native letter of a missing residue), last position, members offset (iv), member count,
// uniform bits, forced letter / native letter, mode (0 inverse-CDF draw, 1 argmax, 2 forced),
// the row offset of the sequence's structure in the per-residue arrays below (b·L when several
// structures, padded to L, are sampled together; positions stay 0..L within the structure).
// P0 N, P1 L, P2 records, P3 acc [N, 21], P4 seq (iv [N·L]), P5 probs [N·L, 21], P7 temperature bits, P8 omit_aas [21], P9 bias_aa [21],
// P10 bias_by_res [L, 21], P11 pssm flags (1 bias, 2 log-odds), P12 pssm_multi bits,
// P13 pssm_coef [L], P14 pssm_bias [L, 21], P15 log-odds mask [L, 21], P16 omit mask [L, 21],
// P17 design [L], P18 native (iv [L]), P19 tied.
@compute @workgroup_size(64)
fn samp_final(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let L = P(1u);
    for (var s = g.x; s < P(0u); s += stride(nw, 64u)) {
        let rec = P(2u) + s * 8u;
        let kind = iv[rec];
        if (kind == 0u) {
            continue;
        }
        let soff = iv[rec + 7u];
        let last = iv[rec + 1u];
        let at = soff + last;
        let moff = iv[rec + 2u];
        let mcnt = iv[rec + 3u];
        if (kind == 2u) {
            for (var m = 0u; m < mcnt; m++) {
                iv[P(4u) + s * L + iv[moff + m]] = iv[rec + 5u];
            }
            continue;
        }
        let temp = PF(7u);
        var pr: array<f32, 21>;
        for (var c = 0u; c < VOCAB; c++) {
            pr[c] = a[P(3u) + s * VOCAB + c] - a[P(8u) + c] * 1e8 + a[P(9u) + c] / temp
                + a[P(10u) + at * VOCAB + c] / temp;
        }
        var mx = pr[0];
        for (var c = 1u; c < VOCAB; c++) {
            mx = max(mx, pr[c]);
        }
        var sum = 0.0;
        for (var c = 0u; c < VOCAB; c++) {
            pr[c] = exp(pr[c] - mx);
            sum += pr[c];
        }
        for (var c = 0u; c < VOCAB; c++) {
            pr[c] = pr[c] / sum;
        }
        if ((P(11u) & 1u) != 0u) {
            let k = PF(12u) * a[P(13u) + at];
            for (var c = 0u; c < VOCAB; c++) {
                pr[c] = (1.0 - k) * pr[c] + k * a[P(14u) + at * VOCAB + c];
            }
        }
        if ((P(11u) & 2u) != 0u) {
            var pm: array<f32, 21>;
            var total = 0.0;
            for (var c = 0u; c < VOCAB; c++) {
                pm[c] = pr[c] * a[P(15u) + at * VOCAB + c];
                pm[c] += pr[c] * 0.001;
                total += pm[c];
            }
            for (var c = 0u; c < VOCAB; c++) {
                pr[c] = pm[c] / total;
            }
        }
        var total2 = 0.0;
        var pm2: array<f32, 21>;
        for (var c = 0u; c < VOCAB; c++) {
            pm2[c] = pr[c] * (1.0 - a[P(16u) + at * VOCAB + c]);
            total2 += pm2[c];
        }
        for (var c = 0u; c < VOCAB; c++) {
            pr[c] = pm2[c] / total2;
        }
        var letter = 0u;
        let mode = iv[rec + 6u];
        if (mode == 0u) {
            let u = bitcast<f32>(iv[rec + 4u]);
            var cum = 0.0;
            var found = false;
            for (var c = 0u; c < VOCAB; c++) {
                if (!found && pr[c] > 0.0) {
                    cum += pr[c];
                    letter = c;
                    if (u < cum) {
                        found = true;
                    }
                }
            }
        } else if (mode == 1u) {
            for (var c = 1u; c < VOCAB; c++) {
                if (pr[c] > pr[letter]) {
                    letter = c;
                }
            }
        } else {
            letter = iv[rec + 5u];
        }
        if (a[P(17u) + at] != 1.0) {
            letter = iv[P(18u) + at];
        }
        for (var m = 0u; m < mcnt; m++) {
            let pos = iv[moff + m];
            iv[P(4u) + s * L + pos] = letter;
            var c_m = 1.0;
            if (P(19u) == 0u) {
                c_m = a[P(17u) + soff + pos];
            }
            for (var c = 0u; c < VOCAB; c++) {
                a[P(5u) + (s * L + pos) * VOCAB + c] = c_m * pr[c];
            }
        }
    }
}
