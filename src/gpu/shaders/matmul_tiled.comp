// matmul_tiled.comp — the matrix-matrix kernel, for batches of more than 8
// tokens (prompts): the same product and push constants as matmul.comp,
// y[t][r] (+)= sum_c x[t][c] * W[r][c] (+ bias[r]), then the optional softcap.
//
// A workgroup of 256 invocations computes a BM x BN = 64 rows x 64 tokens
// tile of y (tokens: x, rows: y + 65535 z: the token tiles of one row tile
// are neighbours in dispatch order, so they meet its weights while they are
// in the cache; the order never changes a sum), walking the columns in steps of
// BK = 32 (one GGUF block).  Each step every invocation loads 8 weights of
// one row and 8 activations of one token, converted to f32, into shared
// memory (ws: [k][row], xs: [k][token], 16 KiB together, + 768 bytes of
// GGUF block scales and mins: VK_TILED_SHARED_BYTES in vk_impl.h, checked against the
// device's limit), then after a barrier multiplies a 4-row x 4-token
// register block over the 32 k's (one vec4 of ws and one of xs per k: 16
// FMAs for 2 shared loads).  Only
// barriers and shared memory: no subgroup operation, so any subgroup size
// works (lavapipe's as a GPU's).
//
// Weights: dense rows in 16-byte steps (wd4) when p.vec says rows and x are
// 16-byte aligned, else element by element, as f32; MLX rows dequantized
// to f32 (s * q + b, fp modes s * float(q)) as they are loaded.  GGUF Q8_0 / Q4_0: the
// weight codes (q, Q4_0: q - 8) and quantx.comp's int8 activation codes go
// into shared memory as f32 integers with their blocks' scales beside them,
// and a block adds (d_w * d_x) * sum(q_w * q_x), the sum exact in f32: the
// engine's quantized product (matmul.comp, the CPU's qdot.c) with the same
// rounding per block.  GGUF Q4_1 / Q5_0 / Q5_1 / Q4_K / Q5_K / Q6_K (a
// step is one 32-element sub-block): the codes times their integer
// sub-block scales (weights.glsl's w_sub_*: |isc * q| <= 4064, so a step's
// sum against int8 codes stays exact in f32) go into ws with the
// sub-block's d in dws and m in dms; Q4_1 / Q4_K / Q6_K take quantx.comp's
// int8 activations (as Q8_0 / Q4_0, K-quants with one d per 256), Q5_*
// f32 activations (dxs read as 1), and a step adds (d * d_x) * sum(isc q
// q_x) + (m * d_x) * sum(q_x) (the CPU engine's products: src/kernels/
// qdot.c for the first, a decoded row for Q5_*).  Rows, tokens and columns
// past the matrix read as 0 and are not written.
// Built twice (CMakeLists.txt), as matmul.comp: with SILICA_INT_DOT (the
// device has packed int8 dot products: vk_device.c) the formats with int8
// activations (fmt_quant: Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) keep their codes
// packed, 4 signed bytes a word, in ws and xs instead (the step's 8 words of
// a row or token, Q4_0 as q - 8; a row's two integer half scales beside
// them, 1 but for the K-quants) and a step's sums are intdot.glsl's dot4s:
// isc_0 * (sum over the first 16 k's) + isc_1 * (the last 16), exact in
// int, so the same integers the f32 path sums exactly (|sum| < 2^24) and
// the same bits after.  Without it, and for the other formats, the codes
// go in as f32 (above).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "intdot.glsl"   // dot4 (packed dot products in the SILICA_INT_DOT build), INT_DOT
layout(local_size_x = 256) in;
#include "weights.glsl"
#include "tiled.glsl"    // bindings, push constants, the loads (TItem), the output

#define BM 64u
#define BN 64u
#define BK 32u

// f32 as bits (uintBitsToFloat): ws[k * BM / 4 + m / 4][m % 4]: weight (row r0 + m, column k0 + k);
// packed codes: word kw (columns k0 + 4 kw ..) at k = kw, the integer scale of half h at k = PK_ISC + h
shared uvec4 ws[BK * BM / 4];
shared uvec4 xs[BK * BN / 4];   // the same for activations (token t0 + t): f32, or word kw at k = kw
shared vec4 dws[BM / 4], dxs[BN / 4];   // GGUF: the step's block scales of rows and tokens (ws, xs: codes)
shared vec4 dms[BM / 4];                 // sub-block formats with mins: the step's m of rows

void put_wu(uint k, uint m, uint v) { ws[k * (BM / 4u) + (m >> 2)][m & 3u] = v; }
void put_xu(uint k, uint t, uint v) { xs[k * (BN / 4u) + (t >> 2)][t & 3u] = v; }
void put4_w(uint k, uint m, uvec4 v) {
    for (uint j = 0u; j < 4u; j++) put_wu(k + j, m, v[j]);
}
void put4_x(uint k, uint t, uvec4 v) {
    for (uint j = 0u; j < 4u; j++) put_xu(k + j, t, v[j]);
}
void put_dm(uint m, vec2 dm) {
    dws[m >> 2][m & 3u] = dm.x;
    dms[m >> 2][m & 3u] = dm.y;
}
void put_dx(uint t, float d) { dxs[t >> 2][t & 3u] = d; }

// A step's sums, f32 (weights and activations as f32 in ws, xs): s[a][b] = sum over k of row 4 tx + a's
// times token 4 ty + b's; mins: sx[b] = sum over k of token 4 ty + b's.
void step_f32(uint tx, uint ty, bool mins, inout vec4 s[4], inout vec4 sx) {
    if (mins) {
        for (uint k = 0u; k < BK; k++) {
            vec4 w = uintBitsToFloat(ws[k * (BM / 4u) + tx]), xv = uintBitsToFloat(xs[k * (BN / 4u) + ty]);
            s[0] += w.x * xv;
            s[1] += w.y * xv;
            s[2] += w.z * xv;
            s[3] += w.w * xv;
            sx += xv;
        }
    } else {
        for (uint k = 0u; k < BK; k++) {
            vec4 w = uintBitsToFloat(ws[k * (BM / 4u) + tx]), xv = uintBitsToFloat(xs[k * (BN / 4u) + ty]);
            s[0] += w.x * xv;
            s[1] += w.y * xv;
            s[2] += w.z * xv;
            s[3] += w.w * xv;
        }
    }
}

// The same sums from the packed codes, in int (each half's by its integer scale), then as f32: exact.
void step_packed(uint tx, uint ty, bool mins, inout vec4 s[4], inout vec4 sx) {
    ivec4 si[4], sxi = ivec4(0);
    for (uint a = 0u; a < 4u; a++) si[a] = ivec4(0);
    for (uint h = 0u; h < 2u; h++) {
        ivec4 hs[4];
        for (uint a = 0u; a < 4u; a++) hs[a] = ivec4(0);
        for (uint kw = 4u * h; kw < 4u * h + 4u; kw++) {
            uvec4 w = ws[kw * (BM / 4u) + tx], xv = xs[kw * (BN / 4u) + ty];
            for (uint a = 0u; a < 4u; a++)
                hs[a] += ivec4(dot4(w[a], xv.x), dot4(w[a], xv.y), dot4(w[a], xv.z), dot4(w[a], xv.w));
            if (mins)
                sxi += ivec4(dot4(0x01010101u, xv.x), dot4(0x01010101u, xv.y), dot4(0x01010101u, xv.z),
                             dot4(0x01010101u, xv.w));
        }
        ivec4 isc = ivec4(ws[(PK_ISC + h) * (BM / 4u) + tx]);
        for (uint a = 0u; a < 4u; a++) si[a] += isc[a] * hs[a];
    }
    for (uint a = 0u; a < 4u; a++) s[a] = vec4(si[a]);
    sx = vec4(sxi);
}

void main() {
    uint i = gl_LocalInvocationID.x, tx = i % 16u, ty = i / 16u;
    uint r0 = (gl_WorkGroupID.y + gl_WorkGroupID.z * 65535u) * BM, t0 = gl_WorkGroupID.x * BN;
    vec4 acc[4], s[4];   // acc[a][b]: row r0 + 4 tx + a, token t0 + 4 ty + b; s: this step's (GGUF: integer) sums
    for (uint a = 0u; a < 4u; a++) acc[a] = vec4(0.0);
    bool q = fmt_quant(p.fmt) || fmt_sub(p.fmt), xq8 = fmt_quant(p.fmt), mins = fmt_min(p.fmt), pk = packed_codes();
    for (uint k0 = 0u; k0 < p.cols; k0 += BK) {
        // invocation i: row r0 + i % 64 and token t0 + i % 64, quarter i / 64 of the step
        tl_store_w(tl_fetch_w(r0 + i % BM, k0, i / BM), i % BM, i / BM);
        tl_store_x(tl_fetch_x(t0 + i % BN, k0, i / BN), i % BN, i / BN);
        barrier();
        for (uint a = 0u; a < 4u; a++) s[a] = vec4(0.0);
        vec4 sx = vec4(0.0);   // mins: the step's sum of x (codes) per token
        if (pk) step_packed(tx, ty, mins, s, sx);
        else step_f32(tx, ty, mins, s, sx);
        if (q) {   // a block adds (d_w * d_x) * sum(q_w * q_x), the sum exact in f32 (|sum| < 2^24)
            vec4 dw = dws[tx], dx = xq8 ? dxs[ty] : vec4(1.0);
            for (uint a = 0u; a < 4u; a++) acc[a] += (dw[a] * dx) * s[a];
            if (mins) {
                vec4 dm = dms[tx];
                for (uint a = 0u; a < 4u; a++) acc[a] += (dm[a] * dx) * sx;
            }
        } else {
            for (uint a = 0u; a < 4u; a++) acc[a] += s[a];
        }
        barrier();
    }
    for (uint a = 0u; a < 4u; a++) {
        uint r = r0 + 4u * tx + a;
        if (r >= p.rows) break;
        for (uint b = 0u; b < 4u; b++) {
            uint t = t0 + 4u * ty + b;
            if (t >= p.n) break;
            tl_out(r, t, acc[a][b]);
        }
    }
}
