// matmul_tiled3.comp — the prompt (matrix-matrix) kernel's third variant
// (SILICA_GPU_TILE=3, vk_device.c), for the GGUF formats with int8
// activations alone (fmt_quant: Q8_0, Q4_0, Q4_1, Q4_K, Q6_K; vk_session.c's
// mm_dispatch sends the others to matmul_tiled.comp): matmul_tiled.comp's
// product and push constants, tiled.glsl's loads, and per output the same
// integer block sums and the same f32 operations in the same order, so the
// same bits (tests/py/test_gpu_tiled.py).  Written against what bounds tiles
// 1 and 2 on an NVIDIA card (H100: ~10 T int8 MAC/s in gate/up, against a
// dp4a-class peak several times that), not timed yet.
//
// Tiling.  A workgroup of 128 invocations (4 warps) computes BM x BN = 128
// rows x 64 tokens (dispatched as matmul_tiled.comp's: tokens on x, rows on
// y + 65535 z), walking the columns a GGUF block (BK = 32) a step.
// Invocation i = 16 ty + tx holds an 8 x 8 register block: rows 4 tx .. + 3
// and 64 + 4 tx .. + 3, tokens 4 ty .. + 3 and 32 + 4 ty .. + 3 of the
// tile, as 64 int32 block sums (si) and 64 f32 accumulators (acc).
// Shared memory keeps the codes packed (4 signed bytes a word, in every
// build: TL_PACK_ALL; without SILICA_INT_DOT intdot.glsl's portable dot4,
// the same integers), k-major: plane kw (word kw of the step's block) holds
// the word of every row (stride WS = 132 words) or token (XS = 68); planes 8
// and 9 of the weights hold the two 16-column halves' integer scales (the
// K-quants'; 1 otherwise).  Per word kw an invocation reads 2 uvec4 of rows
// and 2 of tokens (4 shared loads, 128 bits each) and runs 64 dot4s: 16
// packed dots a shared load, against tile 1's 8 (4 x 4 block) — and a
// warp's row loads cover 64 consecutive words (16 distinct uvec4: 2
// wavefronts, no bank conflict), its token loads 2 uvec4 (broadcast).
// Double-buffered shared memory, register prefetch, one barrier a step: the
// next step's items (tiled.glsl: a quarter of a row's or token's block, 2
// code words and the scales) are fetched into registers before this step's
// math and stored into the other buffer after it, so the global loads have a
// whole step (512 dot4s an invocation) to arrive, and a step needs one
// barrier (the buffer written at step s was last read at step s - 1, before
// that step's barrier).  Loads are coalesced: invocation i takes quarter
// i % 4 of rows i / 4 + 32 j (j < 4) and tokens i / 4 + 32 j (j < 2), so 4
// neighbours read one block as consecutive words; their stores (planes 2 kq,
// 2 kq + 1, word m) hit banks 8 kq + m: distinct in a warp (8 rows x 4
// quarters), hence the strides 132 = 4 * 33 and 68 = 4 * 17 (16-byte
// aligned planes for the uvec4 reads, and 2 kq * stride = 8 kq mod 32).
// Shared: 2 x (10 x 132 + 8 x 68) words + the scales 2 x (128 + 128 + 64)
// floats = 17472 bytes (VK_TILED3_SHARED_BYTES, checked against
// maxComputeSharedMemorySize).
// Per step and output (tile 1's order): s = the block's exact integer sum
// (Q4_K / Q6_K: isc_0 * (first 16 columns) + isc_1 * (last 16): here the
// first half's sums times isc_0, then the second's dots each times isc_1,
// the same integer), then acc += (d_w * d_x) * float(s) and, with mins (Q4_1,
// Q4_K), acc += (m * d_x) * float(sum of the token's codes).  float(s) is
// exact both ways: I2F for Q6_K, elsewhere |s| < 2^22 (Q4_K: 32 * 945 *
// 127 < 2^22; Q8_0: 32 * 128 * 127) and float(s) = bits(s + 0x4B400000) -
// 1.5 * 2^23 exactly, two full-rate ops where I2F runs at a quarter rate; the
// formats with unit scales (Q8_0, Q4_0, Q4_1) sum all 8 words without tile
// 1's integer scale multiplies.
//
// Why ~2x tile 1 on an H100 (132 SMs at ~1.7 GHz; integer dot 64 a clock an
// SM, other ALU ops 128 (FP32) / 64 (INT), 4 warp-instructions issued a
// clock an SM).  Per invocation and step, tile 3 runs 512 dot4s, 32
// shared 128-bit loads, 64 x ~4 scale ops (conversion, d_w * d_x, FMA), ~60
// for 6 items' loads, stores and addresses: ~860 instructions for 2048 MACs
// (0.42 a MAC, 60 % of them dots), so the dot pipe bounds it at ~256 MAC a
// clock an SM (~57 T MAC/s).  Tile 1 issues per step 128 dot4s, 16 + 2
// shared loads, 16 x (2 integer-scale multiplies + an I2F at a quarter rate,
// 4 issue slots' worth, + 3) ~ 140, ~30 for its 2 items: ~320 for 512 MACs
// (0.62 a MAC), with two barriers a step and its global loads exposed (no
// prefetch: each step waits a full L2 / DRAM latency, ~600+ clocks, which a
// step's 128 dots a warp cannot cover) — measured at ~10 T MAC/s, a fifth of
// its own issue bound.  Tile 3 removes that stall (loads a step ahead, one
// barrier), takes 1.5x fewer instructions and 4x fewer shared loads a MAC,
// so at tile 1's fraction of its bound it is already ~1.5x, and at the ~40 %
// of the dot bound that llama.cpp's plain shaders reach (~15000 tok/s
// pp512) ~2x tile 1.  Registers: 64 + 64 accumulators, 16 operands, ~26 of
// prefetched items, ~20 of addresses: ~190 an invocation, 2 workgroups (8
// warps) an SM — few warps, but each has 64 independent dot chains and its
// loads issued a step ahead; 17 KiB of shared memory does not limit.
// Workgroups at pp512: gate / up (8192 rows) 64 x 8 = 512, wo / down 128:
// about one an SM for the small ones (tile 1: 4x the workgroups of 1/4 the
// work).  Accumulators are fixed arrays under constant loop bounds
// (registers, not local memory).  Built twice (CMakeLists.txt), as
// matmul_tiled.comp.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "intdot.glsl"   // dot4 (packed dot products in the SILICA_INT_DOT build), INT_DOT
layout(local_size_x = 128) in;
#include "weights.glsl"
#define TL_PACK_ALL true   // tiled.glsl's items keep the codes packed in both builds
#include "tiled.glsl"      // bindings, push constants, the loads (TItem), the output

#define BM 128u
#define BN 64u
#define BK 32u
#define WS 132u   // words a plane of ws (128 rows + 4: see above)
#define XS 68u    // words a plane of xs (64 tokens + 4)
#define WP 10u    // planes of ws: 8 code words, the 2 halves' integer scales (PK_ISC)
#define XP 8u     // planes of xs
#define MAGIC 0x4B400000   // 1.5 * 2^23's bits: float(v) = bits(v + MAGIC) - 1.5 * 2^23 for |v| < 2^22

shared uvec4 ws[2u * WP * WS / 4u];   // buffer b, plane k, row m: word (b * WP + k) * WS + m
shared uvec4 xs[2u * XP * XS / 4u];   // buffer b, plane k, token t: word (b * XP + k) * XS + t
shared vec4 dws[2u * BM / 4u], dms[2u * BM / 4u], dxs[2u * BN / 4u];   // buffer b's d, m of rows, d_x of tokens

uint sbuf;   // the buffer tiled.glsl's stores (put_*) write

void put_wu(uint k, uint m, uint v) {
    uint w = (sbuf * WP + k) * WS + m;
    ws[w >> 2][w & 3u] = v;
}
void put4_w(uint k, uint m, uvec4 v) {   // (f32 items: not this kernel's formats)
    for (uint j = 0u; j < 4u; j++) put_wu(k + j, m, v[j]);
}
void put_xu(uint k, uint t, uint v) {
    uint w = (sbuf * XP + k) * XS + t;
    xs[w >> 2][w & 3u] = v;
}
void put4_x(uint k, uint t, uvec4 v) {
    for (uint j = 0u; j < 4u; j++) put_xu(k + j, t, v[j]);
}
void put_dm(uint m, vec2 dm) {
    dws[sbuf * (BM / 4u) + (m >> 2)][m & 3u] = dm.x;
    dms[sbuf * (BM / 4u) + (m >> 2)][m & 3u] = dm.y;
}
void put_dx(uint t, float d) { dxs[sbuf * (BN / 4u) + (t >> 2)][t & 3u] = d; }

// The 4 words of plane k of buffer b at rows (tokens) 4 q .. + 3.
uvec4 w_at(uint b, uint k, uint q) { return ws[(b * WP + k) * (WS / 4u) + q]; }
uvec4 x_at(uint b, uint k, uint q) { return xs[(b * XP + k) * (XS / 4u) + q]; }

// The items of step k0 an invocation loads (quarter kq of rows m + 32 j and tokens m + 32 j), and their
// stores into buffer b.
void fetch(uint r0, uint t0, uint m, uint kq, uint k0, inout TItem wi[4], inout TItem xi[2]) {
    for (uint j = 0u; j < 4u; j++) {
        uint r = r0 + m + 32u * j;
        wi[j] = r < p.rows ? tl_fetch_gguf(r * p.row_bytes, k0, kq) : tl_zero();
    }
    for (uint j = 0u; j < 2u; j++) xi[j] = tl_fetch_x(t0 + m + 32u * j, k0, kq);
}
void store(uint b, uint m, uint kq, TItem wi[4], TItem xi[2]) {
    sbuf = b;
    for (uint j = 0u; j < 4u; j++) tl_store_w(wi[j], m + 32u * j, kq);
    for (uint j = 0u; j < 2u; j++) tl_store_x(xi[j], m + 32u * j, kq);
}

// Word kw's dots into the block sums: si[2 a + g][c] += (scaled: sc[a] *) dot(row a's word, token 4 g + c's),
// row a = 4 tx + a (a < 4) or 64 + 4 tx + a - 4, token 4 g + c = 4 ty + c + 32 g; mins: sx[g] += the codes' sums.
void word_dots(uint b, uint kw, uint tx, uint ty, bool scaled, int sc[8], bool mins, inout ivec4 si[16],
               inout ivec4 sx[2]) {
    uvec4 wv[2] = uvec4[2](w_at(b, kw, tx), w_at(b, kw, 16u + tx));
    uvec4 xv[2] = uvec4[2](x_at(b, kw, ty), x_at(b, kw, 8u + ty));
    for (uint a = 0u; a < 8u; a++) {
        uint w = wv[a >> 2][a & 3u];
        for (uint g = 0u; g < 2u; g++) {
            ivec4 d = ivec4(dot4(w, xv[g].x), dot4(w, xv[g].y), dot4(w, xv[g].z), dot4(w, xv[g].w));
            si[2u * a + g] += scaled ? sc[a] * d : d;
        }
    }
    if (mins)
        for (uint g = 0u; g < 2u; g++)
            sx[g] += ivec4(dot4(0x01010101u, xv[g].x), dot4(0x01010101u, xv[g].y), dot4(0x01010101u, xv[g].z),
                           dot4(0x01010101u, xv[g].w));
}

// The integer scales of half h of the invocation's 8 rows.
void half_scales(uint b, uint h, uint tx, out int sc[8]) {
    ivec4 lo = ivec4(w_at(b, PK_ISC + h, tx)), hi = ivec4(w_at(b, PK_ISC + h, 16u + tx));
    for (uint a = 0u; a < 4u; a++) {
        sc[a] = lo[a];
        sc[a + 4u] = hi[a];
    }
}

// A step's exact block sums (see above; scaled: the K-quants' half scales, else sums of all 8 words).
void block_sums(uint b, uint tx, uint ty, bool scaled, bool mins, out ivec4 si[16], out ivec4 sx[2]) {
    for (uint j = 0u; j < 16u; j++) si[j] = ivec4(0);
    sx[0] = sx[1] = ivec4(0);
    int sc[8];
    for (uint a = 0u; a < 8u; a++) sc[a] = 1;
    for (uint kw = 0u; kw < 4u; kw++) word_dots(b, kw, tx, ty, false, sc, mins, si, sx);
    if (scaled) {
        half_scales(b, 0u, tx, sc);
        for (uint j = 0u; j < 16u; j++) si[j] *= sc[j >> 1];
        half_scales(b, 1u, tx, sc);
    }
    for (uint kw = 4u; kw < 8u; kw++) word_dots(b, kw, tx, ty, scaled, sc, mins, si, sx);
}

// acc += (d_w * d_x) * float(s) (+ (m * d_x) * float(sx)) with buffer b's scales; magic: float() as MAGIC's
// two ops (|s| < 2^22), else the conversion instruction: the same value.
void scale_add(uint b, uint tx, uint ty, bool magic, bool mins, ivec4 si[16], ivec4 sx[2], inout vec4 acc[16]) {
    vec4 dw[2] = vec4[2](dws[b * (BM / 4u) + tx], dws[b * (BM / 4u) + 16u + tx]);
    vec4 dx[2] = vec4[2](dxs[b * (BN / 4u) + ty], dxs[b * (BN / 4u) + 8u + ty]);
    for (uint a = 0u; a < 8u; a++)
        for (uint g = 0u; g < 2u; g++) {
            uint j = 2u * a + g;
            vec4 s = magic ? intBitsToFloat(si[j] + MAGIC) - 12582912.0 : vec4(si[j]);
            acc[j] += (dw[a >> 2][a & 3u] * dx[g]) * s;
        }
    if (mins) {
        vec4 dm[2] = vec4[2](dms[b * (BM / 4u) + tx], dms[b * (BM / 4u) + 16u + tx]);
        for (uint a = 0u; a < 8u; a++)
            for (uint g = 0u; g < 2u; g++) acc[2u * a + g] += (dm[a >> 2][a & 3u] * dx[g]) * vec4(sx[g]);
    }
}

// Step b's math: the branches on the format (uniform) outside the loops, so each path is straight code.
void step(uint b, uint tx, uint ty, inout vec4 acc[16]) {
    ivec4 si[16], sx[2];
    if (p.fmt == FMT_Q6_K) {
        block_sums(b, tx, ty, true, false, si, sx);
        scale_add(b, tx, ty, false, false, si, sx, acc);
    } else if (p.fmt == FMT_Q4_K) {
        block_sums(b, tx, ty, true, true, si, sx);
        scale_add(b, tx, ty, true, true, si, sx, acc);
    } else if (p.fmt == FMT_Q4_1) {
        block_sums(b, tx, ty, false, true, si, sx);
        scale_add(b, tx, ty, true, true, si, sx, acc);
    } else {   // Q8_0, Q4_0
        block_sums(b, tx, ty, false, false, si, sx);
        scale_add(b, tx, ty, true, false, si, sx, acc);
    }
}

void main() {
    uint i = gl_LocalInvocationID.x, tx = i % 16u, ty = i / 16u, kq = i % 4u, m = i / 4u;
    uint r0 = (gl_WorkGroupID.y + gl_WorkGroupID.z * 65535u) * BM, t0 = gl_WorkGroupID.x * BN;
    vec4 acc[16];   // acc[2 a + g][c]: row a, token 4 g + c of the block (word_dots)
    for (uint j = 0u; j < 16u; j++) acc[j] = vec4(0.0);
    TItem wi[4], xi[2];
    if (p.cols > 0u) {
        fetch(r0, t0, m, kq, 0u, wi, xi);
        store(0u, m, kq, wi, xi);
    }
    barrier();
    uint b = 0u;
    for (uint k0 = 0u; k0 < p.cols; k0 += BK) {
        bool more = k0 + BK < p.cols;
        if (more) fetch(r0, t0, m, kq, k0 + BK, wi, xi);   // in flight during this step's math
        step(b, tx, ty, acc);
        b ^= 1u;
        if (more) store(b, m, kq, wi, xi);   // the other buffer: last read before the previous barrier
        barrier();
    }
    for (uint a = 0u; a < 8u; a++) {
        uint r = r0 + 4u * tx + (a & 3u) + 64u * (a >> 2);
        for (uint g = 0u; g < 2u; g++)
            for (uint c = 0u; c < 4u; c++) {
                uint t = t0 + 4u * ty + 32u * g + c;
                if (r < p.rows && t < p.n) tl_out(r, t, acc[2u * a + g][c]);
            }
    }
}
