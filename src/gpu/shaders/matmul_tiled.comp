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
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(std430, set = 0, binding = 3) readonly buffer Vec { float vec[]; };
layout(std430, set = 0, binding = 4) readonly buffer XQ { uint xq[]; };   // quantx.comp's blocks
layout(push_constant) uniform P {
    uint fmt, rows, cols, row_bytes, n, x_off, ldx, y_off, ldy;
    int bias_off;   // into vec, -1: none
    uint accumulate;
    float softcap;  // 0: none
    uint team;      // unused here (matmul.comp's)
    uint vec;       // 1: dense rows and x rows 16-byte aligned (see matmul.comp; MLX: x rows alone)
    uint bits, gs, sfmt, sc_off, bi_off;   // MLX formats (weights.glsl)
} p;

#define BM 64u
#define BN 64u
#define BK 32u

// f32 as bits (uintBitsToFloat): ws[k * BM / 4 + m / 4][m % 4]: weight (row r0 + m, column k0 + k);
// packed codes: word kw (columns k0 + 4 kw ..) at k = kw, the integer scale of half h at k = PK_ISC + h
shared uvec4 ws[BK * BM / 4];
shared uvec4 xs[BK * BN / 4];   // the same for activations (token t0 + t): f32, or word kw at k = kw
shared vec4 dws[BM / 4], dxs[BN / 4];   // GGUF: the step's block scales of rows and tokens (ws, xs: codes)
shared vec4 dms[BM / 4];                 // sub-block formats with mins: the step's m of rows

#define PK_ISC 8u

void put_wu(uint k, uint m, uint v) { ws[k * (BM / 4u) + (m >> 2)][m & 3u] = v; }
void put_xu(uint k, uint t, uint v) { xs[k * (BN / 4u) + (t >> 2)][t & 3u] = v; }
void put_w(uint k, uint m, float v) { put_wu(k, m, floatBitsToUint(v)); }
void put_x(uint k, uint t, float v) { put_xu(k, t, floatBitsToUint(v)); }

// This build and format keep the codes packed (see above).
bool packed_codes() { return INT_DOT && fmt_quant(p.fmt); }

// The packed codes of load_w: words 2 kq, 2 kq + 1 of row m's step (at byte rb + the block), signed bytes.
void load_w_packed(uint rb, uint k0, uint m, uint kq) {
    uint s = k0 / 32u;
    uvec2 c;
    int isc = 1;
    if (fmt_sub(p.fmt)) {
        if (kq == 0u) {
            vec2 dm = w_sub_dm(p.fmt, rb, s);
            dws[m >> 2][m & 3u] = dm.x;
            dms[m >> 2][m & 3u] = dm.y;
        }
        isc = w_sub_isc(p.fmt, rb, s)[kq >> 1];
        c = uvec2(w_sub_codes(p.fmt, rb, s, 2u * kq), w_sub_codes(p.fmt, rb, s, 2u * kq + 1u));
    } else if (p.fmt == FMT_Q8_0) {
        uint a = rb + s * 34u;
        if (kq == 0u) dws[m >> 2][m & 3u] = w_f16(a);
        c = w_u64(a + 2u + kq * 8u);
    } else {   // Q4_0: elements 8 kq .. + 7 are the low (kq < 2) or high nibbles of bytes 8 (kq & 1) .. + 7
        uint a = rb + s * 18u;
        if (kq == 0u) dws[m >> 2][m & 3u] = w_f16(a);
        c = (w_u64(a + 2u + 8u * (kq & 1u)) >> (4u * (kq >> 1))) & 0x0F0F0F0Fu;
        c = uvec2(w_bytes_minus(c.x, 8u), w_bytes_minus(c.y, 8u));
    }
    put_wu(2u * kq, m, c.x);
    put_wu(2u * kq + 1u, m, c.y);
    if ((kq & 1u) == 0u) put_wu(PK_ISC + (kq >> 1), m, uint(isc));
}

// Invocation i loads row r0 + i % 64, columns k0 + 8 (i / 64) .. + 7 (Q4_0:
// the 4 bytes at 4 (i / 64), i.e. 4 low and 4 high nibbles).
void load_w(uint r0, uint k0, uint i) {
    uint m = i % BM, kq = i / BM, r = r0 + m, c0 = k0 + kq * 8u;
    if (r >= p.rows) {   // (the 4 kq's zero all 32 k's: the packed words and scales too)
        for (uint j = 0u; j < 8u; j++) put_w(kq * 8u + j, m, 0.0);
        if (kq == 0u) dws[m >> 2][m & 3u] = dms[m >> 2][m & 3u] = 0.0;
        return;
    }
    uint rb = r * p.row_bytes;
    if (packed_codes()) {
        load_w_packed(rb, k0, m, kq);
    } else if (fmt_sub(p.fmt)) {   // code words 2 kq, 2 kq + 1 of sub-block k0 / 32: one 16-element half
        uint s = k0 / 32u;
        if (kq == 0u) {
            vec2 dm = w_sub_dm(p.fmt, rb, s);
            dws[m >> 2][m & 3u] = dm.x;
            dms[m >> 2][m & 3u] = dm.y;
        }
        int isc = w_sub_isc(p.fmt, rb, s)[kq >> 1];
        uvec2 c = uvec2(w_sub_codes(p.fmt, rb, s, 2u * kq), w_sub_codes(p.fmt, rb, s, 2u * kq + 1u));
        for (int j = 0; j < 4; j++) {
            put_w(kq * 8u + uint(j), m, float(isc * bitfieldExtract(int(c.x), 8 * j, 8)));
            put_w(kq * 8u + 4u + uint(j), m, float(isc * bitfieldExtract(int(c.y), 8 * j, 8)));
        }
    } else if (p.fmt == FMT_Q8_0) {
        uint a = rb + (k0 / 32u) * 34u;
        if (kq == 0u) dws[m >> 2][m & 3u] = w_f16(a);
        uvec2 c = w_u64(a + 2u + kq * 8u);
        for (int j = 0; j < 4; j++) {
            put_w(kq * 8u + uint(j), m, float(bitfieldExtract(int(c.x), 8 * j, 8)));
            put_w(kq * 8u + 4u + uint(j), m, float(bitfieldExtract(int(c.y), 8 * j, 8)));
        }
    } else if (p.fmt == FMT_Q4_0) {
        uint a = rb + (k0 / 32u) * 18u;
        if (kq == 0u) dws[m >> 2][m & 3u] = w_f16(a);
        uint w = w_u32(a + 2u + kq * 4u);
        for (uint j = 0u; j < 4u; j++) {
            put_w(kq * 4u + j, m, float(int(bitfieldExtract(w, int(8u * j), 4)) - 8));
            put_w(16u + kq * 4u + j, m, float(int(bitfieldExtract(w, int(8u * j + 4u), 4)) - 8));
        }
    } else if (fmt_mlx(p.fmt)) {   // cols: whole groups, so c0 < cols; 8 codes of one group
        vec2 sb = w_group(p.fmt, p.sfmt, p.sc_off, p.bi_off, r, p.cols / p.gs, c0 / p.gs);
        for (uint j = 0u; j < 8u; j++)
            put_w(kq * 8u + j, m, sb.x * w_mlx_value(p.fmt, w_code(rb >> 2, c0 + j, p.bits)) + sb.y);
    } else if (p.vec != 0u && c0 < p.cols) {   // p.vec: cols a multiple of 8 (f16 / bf16) or 4 (f32)
        vec4 a, b;
        if (p.fmt == FMT_F32) {
            uint q = (rb >> 4) + c0 / 4u;
            w_vec(p.fmt, wd4[q], a, b);
            b = c0 + 4u < p.cols ? uintBitsToFloat(wd4[q + 1u]) : vec4(0.0);
        } else {
            w_vec(p.fmt, wd4[(rb >> 4) + c0 / 8u], a, b);
        }
        for (uint j = 0u; j < 4u; j++) {
            put_w(kq * 8u + j, m, a[j]);
            put_w(kq * 8u + 4u + j, m, b[j]);
        }
    } else {
        for (uint j = 0u; j < 8u; j++) put_w(kq * 8u + j, m, c0 + j < p.cols ? w_dense(p.fmt, rb, c0 + j) : 0.0);
    }
}

// Invocation i loads token t0 + i % 64, columns k0 + 8 (i / 64) .. + 7.
void load_x(uint t0, uint k0, uint i) {
    uint t = i % BN, kq = i / BN, tt = t0 + t, c0 = k0 + kq * 8u;
    if (tt >= p.n) {
        for (uint j = 0u; j < 8u; j++) put_x(kq * 8u + j, t, 0.0);
        if (kq == 0u) dxs[t >> 2][t & 3u] = 0.0;
    } else if (fmt_quant(p.fmt)) {
        uint o = (tt * (p.cols / 32u) + k0 / 32u) * 9u;
        if (kq == 0u) dxs[t >> 2][t & 3u] = uintBitsToFloat(xq[o]);
        uint lo = xq[o + 1u + 2u * kq], hi = xq[o + 2u + 2u * kq];
        if (packed_codes()) {
            put_xu(2u * kq, t, lo);
            put_xu(2u * kq + 1u, t, hi);
        } else for (int j = 0; j < 4; j++) {
            put_x(kq * 8u + uint(j), t, float(bitfieldExtract(int(lo), 8 * j, 8)));
            put_x(kq * 8u + 4u + uint(j), t, float(bitfieldExtract(int(hi), 8 * j, 8)));
        }
    } else if (p.vec != 0u && c0 < p.cols) {
        uint q = (p.x_off + tt * p.ldx + c0) >> 2;
        vec4 a = x4[q], b = c0 + 4u < p.cols ? x4[q + 1u] : vec4(0.0);
        for (uint j = 0u; j < 4u; j++) {
            put_x(kq * 8u + j, t, a[j]);
            put_x(kq * 8u + 4u + j, t, b[j]);
        }
    } else {
        uint xb = p.x_off + tt * p.ldx;
        for (uint j = 0u; j < 8u; j++) put_x(kq * 8u + j, t, c0 + j < p.cols ? x[xb + c0 + j] : 0.0);
    }
}

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
        load_w(r0, k0, i);
        load_x(t0, k0, i);
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
            uint o = p.y_off + t * p.ldy + r;
            float s = acc[a][b];
            if (p.bias_off >= 0) s += vec[uint(p.bias_off) + r];
            if (p.accumulate != 0u) s += y[o];
            if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
            y[o] = s;
        }
    }
}
