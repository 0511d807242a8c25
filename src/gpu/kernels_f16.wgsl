// The float16 dense layer (`--precision f16`), compiled only on devices with SHADER_F16.
// Same bindings as kernels.wgsl, but the weights viewed as u32 words: an f16 layer's matrix is
// stored as IEEE halves, two per word (element e in the low half of word e/2 when e is even,
// the high half when odd); biases stay float32 words.
//
// Semantics of the CPU's `--precision f16` (src/kernels/precision.rs): the layer input is
// rounded to the f16 grid (round to nearest even, in integer arithmetic here so that it does not
// depend on the driver's conversion rounding mode), the weights are halves, every product is
// exact in f32 and summed in f32 (the same tiles and order as `gemm` in kernels.wgsl).
enable f16;

@group(0) @binding(0) var<uniform> p: array<vec4<u32>, 8>;
@group(0) @binding(1) var<storage, read> wt: array<u32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;

const NONE: u32 = 0xffffffffu;

fn P(i: u32) -> u32 {
    return p[i >> 2u][i & 3u];
}

// x rounded to the nearest IEEE half (ties to even), as an f32; ±inf beyond 65504, NaN kept.
fn round_half(x: f32) -> f32 {
    let b = bitcast<u32>(x);
    let mag = b & 0x7fffffffu;
    if (mag >= 0x7f800000u) {
        return x;
    }
    if (mag < 0x38800000u) {
        // below 2^-14: the subnormal halves, multiples of 2^-24 (round() ties to even)
        return round(x * 16777216.0) / 16777216.0;
    }
    let r = (b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u;
    if ((r & 0x7fffffffu) > 0x477fe000u) {
        return bitcast<f32>((b & 0x80000000u) | 0x7f800000u);
    }
    return bitcast<f32>(r);
}

// Y[m, n] = Σ_k half(X[m, k])·W[n, k] (+ b[n]) (+ Y[m, n] when accumulating). P0 M, P1 N, P2 K,
// P3 x, P4 w (in halves), P5 b (in words, NONE), P6 y, P7 accumulate. Tiles as in `gemm`.
var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<f16, 1024>;

@compute @workgroup_size(16, 16)
fn gemm_f16(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
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
                xv = round_half(a[xo + (row0 + r) * K + gk]);
            }
            xs[kk * 64u + r] = xv;
            let wk = k0 + idx / 64u;
            let wc = col0 + idx % 64u;
            var wv = f16(0.0);
            if (wc < N && wk < K) {
                let el = wo + wk * N + wc;
                let pair = unpack2x16float(wt[el >> 1u]);
                wv = f16(select(pair.x, pair.y, (el & 1u) == 1u));
            }
            ws[(idx / 64u) * 64u + idx % 64u] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var xr: array<f32, 4>;
            var wr: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                xr[i] = xs[kk * 64u + lid.y + 16u * i];
                wr[i] = f32(ws[kk * 64u + lid.x + 16u * i]);
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
                    v += bitcast<f32>(wt[bo + c]);
                }
                if (P(7u) != 0u) {
                    v += a[yo + r * N + c];
                }
                a[yo + r * N + c] = v;
            }
        }
    }
}
