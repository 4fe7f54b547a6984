// matmul_tiled2.comp — the prompt (matrix-matrix) kernel's second variant
// (SILICA_GPU_TILE=2, vk_device.c): matmul_tiled.comp's product, push
// constants, loads (tiled.glsl) and arithmetic per output, in bigger tiles
// with coalesced loads issued a step ahead.
//
// A workgroup of 256 invocations computes a BM x BN = 128 rows x 64 tokens
// tile of y (dispatched as matmul_tiled.comp's: tokens on x, rows on
// y + 65535 z), walking the columns in steps of BK = 32 (one GGUF block).
// Invocation i = 16 ty + tx holds an 8 x 4 register block: rows r0 + tx +
// 16 a (a < 8), tokens t0 + ty + 16 b (b < 4), so a warp's 16 rows are
// neighbours (conflict-free shared reads, coalesced writes of y).
// Loads: invocation i takes quarter kq = i % 4 of the step (tiled.glsl's
// item: 8 columns) of rows r0 + i / 4 and r0 + 64 + i / 4 and of token
// t0 + i / 4, so 4 neighbouring invocations read one row's step (a GGUF
// block, 64 / 128 bytes of a dense row) as consecutive words.  The next
// step's items are fetched into registers after the barrier that publishes
// this step's shared memory and before its math, so the global loads are
// in flight while it multiplies; they go into shared memory after the
// second barrier.
// Shared memory (VK_TILED2_SHARED_BYTES in vk_impl.h, checked against the
// device's limit, else matmul_tiled.comp runs): ws[m][k], xs[t][k] as rows
// of RS = 9 uvec4 (36 words: 32 columns + 4 of padding, so the 128-bit
// stores and reads of 8 neighbouring invocations hit distinct banks; packed
// codes: words 0..7, the halves' integer scales at words PK_ISC, + 1),
// 18 + 9 KiB, and the block scales dws, dms (rows), dxs (tokens), 1.25 KiB.
// A step's sums per output are matmul_tiled.comp's in the same order (f32:
// over k ascending, then added to the accumulator; GGUF: the exact integer
// sums, then (d_w * d_x) * s and (m * d_x) * sx), so both kernels give the
// same bits for every format (tests/py/test_gpu_tiled.py).  Accumulators
// are fixed-size arrays indexed by constant-bounded loops only (registers,
// not local memory).  Built twice (CMakeLists.txt), as matmul_tiled.comp.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "intdot.glsl"   // dot4 (packed dot products in the SILICA_INT_DOT build), INT_DOT
layout(local_size_x = 256) in;
#include "weights.glsl"
#include "tiled.glsl"    // bindings, push constants, the loads (TItem), the output

#define BM 128u
#define BN 64u
#define BK 32u
#define RS 9u   // uvec4 a row of ws / xs

shared uvec4 ws[BM * RS];   // f32 bits (columns k0 + k: word k) or packed codes (word kw), row r0 + m
shared uvec4 xs[BN * RS];   // the same for tokens t0 + t
shared float dws[BM], dms[BM], dxs[BN];   // GGUF: the step's d, m of rows, d_x of tokens

void put4_w(uint k, uint m, uvec4 v) { ws[m * RS + (k >> 2)] = v; }
void put_wu(uint k, uint m, uint v) { ws[m * RS + (k >> 2)][k & 3u] = v; }
void put_dm(uint m, vec2 dm) {
    dws[m] = dm.x;
    dms[m] = dm.y;
}
void put4_x(uint k, uint t, uvec4 v) { xs[t * RS + (k >> 2)] = v; }
void put_xu(uint k, uint t, uint v) { xs[t * RS + (k >> 2)][k & 3u] = v; }
void put_dx(uint t, float d) { dxs[t] = d; }

// A step's sums, f32: s[a][b] = sum over k (ascending) of row tx + 16 a's times token ty + 16 b's;
// mins: sx[b] = sum over k of token ty + 16 b's.
void step_f32(uint tx, uint ty, bool mins, inout vec4 s[8], inout vec4 sx) {
    for (uint k4 = 0u; k4 < BK / 4u; k4++) {
        vec4 xv[4], xk[4];   // xk[kk][b]: token b at column 4 k4 + kk
        for (uint b = 0u; b < 4u; b++) xv[b] = uintBitsToFloat(xs[(ty + 16u * b) * RS + k4]);
        for (uint kk = 0u; kk < 4u; kk++) xk[kk] = vec4(xv[0][kk], xv[1][kk], xv[2][kk], xv[3][kk]);
        for (uint a = 0u; a < 8u; a++) {
            vec4 w = uintBitsToFloat(ws[(tx + 16u * a) * RS + k4]);
            for (uint kk = 0u; kk < 4u; kk++) s[a] += w[kk] * xk[kk];
        }
        if (mins)
            for (uint kk = 0u; kk < 4u; kk++) sx += xk[kk];
    }
}

// The same sums from the packed codes, in int (each half's by its integer scale), then as f32: exact.
void step_packed(uint tx, uint ty, bool mins, inout vec4 s[8], inout vec4 sx) {
    ivec4 si[8], sxi = ivec4(0);
    for (uint a = 0u; a < 8u; a++) si[a] = ivec4(0);
    for (uint h = 0u; h < 2u; h++) {
        uvec4 xv[4];   // words 4 h .. 4 h + 3 of token b
        for (uint b = 0u; b < 4u; b++) xv[b] = xs[(ty + 16u * b) * RS + h];
        for (uint a = 0u; a < 8u; a++) {
            uint m = tx + 16u * a;
            uvec4 w = ws[m * RS + h];
            ivec4 hs = ivec4(0);
            for (uint kw = 0u; kw < 4u; kw++)
                hs += ivec4(dot4(w[kw], xv[0][kw]), dot4(w[kw], xv[1][kw]), dot4(w[kw], xv[2][kw]),
                            dot4(w[kw], xv[3][kw]));
            si[a] += int(ws[m * RS + PK_ISC / 4u][h]) * hs;
        }
        if (mins)
            for (uint kw = 0u; kw < 4u; kw++)
                sxi += ivec4(dot4(0x01010101u, xv[0][kw]), dot4(0x01010101u, xv[1][kw]),
                             dot4(0x01010101u, xv[2][kw]), dot4(0x01010101u, xv[3][kw]));
    }
    for (uint a = 0u; a < 8u; a++) s[a] = vec4(si[a]);
    sx = vec4(sxi);
}

void main() {
    uint i = gl_LocalInvocationID.x, tx = i % 16u, ty = i / 16u, kq = i % 4u, m = i / 4u;
    uint r0 = (gl_WorkGroupID.y + gl_WorkGroupID.z * 65535u) * BM, t0 = gl_WorkGroupID.x * BN;
    vec4 acc[8], s[8];   // acc[a][b]: row r0 + tx + 16 a, token t0 + ty + 16 b; s: this step's (GGUF: integer) sums
    for (uint a = 0u; a < 8u; a++) acc[a] = vec4(0.0);
    bool q = fmt_quant(p.fmt) || fmt_sub(p.fmt), xq8 = fmt_quant(p.fmt), mins = fmt_min(p.fmt), pk = packed_codes();
    TItem w0 = tl_zero(), w1 = tl_zero(), xi = tl_zero();   // the step's items (rows m, m + 64, token m)
    if (p.cols > 0u) {
        w0 = tl_fetch_w(r0 + m, 0u, kq);
        w1 = tl_fetch_w(r0 + m + 64u, 0u, kq);
        xi = tl_fetch_x(t0 + m, 0u, kq);
    }
    for (uint k0 = 0u; k0 < p.cols; k0 += BK) {
        tl_store_w(w0, m, kq);
        tl_store_w(w1, m + 64u, kq);
        tl_store_x(xi, m, kq);
        barrier();
        if (k0 + BK < p.cols) {   // the next step's loads, in flight during this step's math
            w0 = tl_fetch_w(r0 + m, k0 + BK, kq);
            w1 = tl_fetch_w(r0 + m + 64u, k0 + BK, kq);
            xi = tl_fetch_x(t0 + m, k0 + BK, kq);
        }
        for (uint a = 0u; a < 8u; a++) s[a] = vec4(0.0);
        vec4 sx = vec4(0.0);   // mins: the step's sum of x (codes) per token
        if (pk) step_packed(tx, ty, mins, s, sx);
        else step_f32(tx, ty, mins, s, sx);
        if (q) {   // a block adds (d_w * d_x) * sum(q_w * q_x), the sum exact in f32 (|sum| < 2^24)
            vec4 dx = xq8 ? vec4(dxs[ty], dxs[ty + 16u], dxs[ty + 32u], dxs[ty + 48u]) : vec4(1.0);
            for (uint a = 0u; a < 8u; a++) acc[a] += (dws[tx + 16u * a] * dx) * s[a];
            if (mins)
                for (uint a = 0u; a < 8u; a++) acc[a] += (dms[tx + 16u * a] * dx) * sx;
        } else {
            for (uint a = 0u; a < 8u; a++) acc[a] += s[a];
        }
        barrier();
    }
    for (uint a = 0u; a < 8u; a++) {
        uint r = r0 + tx + 16u * a;
        for (uint b = 0u; b < 4u; b++) {
            uint t = t0 + ty + 16u * b;
            if (r < p.rows && t < p.n) tl_out(r, t, acc[a][b]);
        }
    }
}
