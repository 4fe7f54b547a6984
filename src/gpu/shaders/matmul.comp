// matmul.comp — the matrix-vector kernel, for up to 8 tokens (generation; a
// longer batch takes matmul_tiled.comp): y[t][r] (+)= sum_c x[t][c] * W[r][c]
// (+ bias[r]), then an optional softcap: cap * tanh(y / cap).
//
// A team of p.team invocations (whole subgroups: at least one) takes one
// row for up to 8 tokens: subgroupAdd sums each subgroup's lanes, and where
// a team has several subgroups their sums meet in shared memory, added in
// subgroup order (so every output's sum has one fixed order).  The host
// picks the team's width from the row's length (wide rows: more lanes, so
// each lane walks a few steps and the device has more loads in flight).
// Two pipelines: WIDE (WG = 256 invocations, or the device's limit: teams
// of several subgroups) and narrow (WG = 64, a subgroup a row, no shared
// memory and no barrier: what CPU drivers such as lavapipe run best);
// specialization constants, with NR (rows a team) and NT (tokens a
// workgroup: 1 for generation's single token, else 8).  A workgroup takes
// WG / p.team teams of NR neighbouring rows (x + 65535 z), NT tokens (y).
// A team's rows are summed
// side by side where x can be read once for all of them (GGUF Q8_0 / Q4_0,
// 16-byte dense rows, MLX 4- / 8-bit codes: more loads in flight, fewer x loads and fewer sums per
// row), else one after the other; a lane's part of each row is the same as
// with one row a team, so the row count never changes a bit.
// Reads are coalesced: lane i of a team reads the i-th 16 bytes (dense
// rows), the i-th block (GGUF Q8_0 / Q4_0, K-quants: sub-block) or quarter
// sub-block (the other GGUF formats) of a stretch, the next stretch SG
// (the team's width) later.
//  - dense rows (p.vec = 1: row_bytes a multiple of 16, cols of 8 (f16/bf16)
//    or 4 (f32), x_off and ldx of 4): one uvec4 of weights (8 f16/bf16 or 4
//    f32) and vec4s of x per step; otherwise (p.vec = 0) a lane takes a
//    32-element block at a time through w_block, element by element.
//  - GGUF Q8_0 / Q4_0 multiply as the CPU engine does (src/kernels/qdot.c):
//    each 32-element block of x is quantized to int8 with d = max|x| / 127,
//    q = roundEven(x / d) (once per matmul, by quantx.comp, into xq), and a
//    block adds (d_w * d_x) * sum(q_w * q_x): a lane a whole block
//    (row_qblock), its code bytes, 2-byte aligned, read as the whole words
//    that cover them shifted into place, neighbouring lanes neighbouring
//    blocks (four lanes a block read them at two thirds of the speed on an
//    H100).
//    Built twice (CMakeLists.txt): intdot.glsl's dot4 by byte extracts, and
//    with SILICA_INT_DOT as SPIR-V's packed 4x8-bit dot products (OpSDot,
//    OpSUDot), which vk_device.c takes where the device has
//    shaderIntegerDotProduct: the integer sums are exact, so both give the
//    same bits.
//  - GGUF Q4_K / Q6_K (row_k): a lane a whole 32-element sub-block, its
//    codes and scales read as whole words (Q4_K's 16-byte head and code
//    bytes as uvec4s), the team's rows side by side against x's words read
//    once; against int8 x with one d per 256 (the CPU's q8_K), adding
//    (d * d_x) * isc * sum(q * q_x) + (m * d_x) * sum(q_x).  (Four lanes a
//    sub-block, as below, read them at a third of the speed on an H100.)
//  - GGUF Q4_1 / Q5_0 / Q5_1 / Q5_K (row_sub): four lanes a 32-element
//    sub-block, each its 8 codes (two words, weights.glsl's w_sub_codes)
//    with the sub-block's (d, m) and integer scale: Q4_1 against
//    quantx.comp's int8 x, adding (d * d_x) * isc * sum(q * q_x) + (m *
//    d_x) * sum(q_x); Q5_* (the CPU decodes them to f32) against f32 x,
//    adding d * sum(isc * q * x) + m * sum(x).
//  - MLX affine / mxfp4 / mxfp8 rows: a lane a 32-element chunk (one
//    group's), f32 math (row_mlx).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "intdot.glsl"   // dot4, dot4u (packed dot products in the SILICA_INT_DOT build)
layout(local_size_x_id = 0) in;   // WG
layout(constant_id = 0) const uint WG = 256u;
layout(constant_id = 1) const bool WIDE = true;
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
    uint team;      // invocations per row: a power of two, at most WG
    uint vec;       // 1: dense rows and x read 16 bytes at a time (see above; MLX: x alone)
    uint bits, gs, sfmt, sc_off, bi_off;   // MLX formats (weights.glsl)
    uint norm;      // 1: the last workgroup norms y's rows into zb (and xq): fused_norm
    uint norm_w, norm_quant, norm_plus_one;   // the norm's weights (into vec), xq's d per (0: none), gemma's 1 + w
    float norm_eps;
    uint norm_cnt;  // the finished workgroups' counter, a word of binding 5 (0 between dispatches)
} p;

// The fused norm (p.norm): its input, the rows every workgroup wrote (read past this workgroup's L1),
// its outputs and the counter of finished workgroups.
layout(std430, set = 0, binding = 2) coherent readonly buffer YC { float yc[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQW { uint xqw[]; };
layout(std430, set = 0, binding = 5) writeonly buffer ZB { float zb[]; };
layout(std430, set = 0, binding = 5) coherent buffer Cnt { uint cnt[]; };

#define TN 8u          // tokens a workgroup at most (NT: this pipeline's)
#define MR 4u          // rows a team at most (NR: this pipeline's)
layout(constant_id = 2) const uint NR = 2u;   // rows a team takes (1 .. MR)
layout(constant_id = 3) const uint NT = 8u;   // tokens a workgroup takes (1: generation's pipeline, or TN)
#define MU 4u          // a lane's steps along a row in flight at most (NU: this pipeline's)
layout(constant_id = 4) const uint NU = 1u;   // a lane's steps (16 bytes, a GGUF block) loaded before their sums
// A lane's sums, row k of its team and token t at acc[k * TN + t].  Every loop
// over k and t is bounded by the pipeline's constants NR and NT, so the
// driver can unroll it and keep acc in registers (with the row count a push
// constant and acc passed by value, NVIDIA's driver made the kernel 2-3x
// slower: part9); a shorter batch (nt < NT) and a team's rows past p.rows
// are masked, and a row past p.rows reads the last row instead of branching.
float acc[MR * TN];
// A row's lanes: the team's width (main), what the row readers stride by.
uint team_width;
#define SG team_width
shared float part[2048];   // the subgroups' sums, [subgroup][row of the team][token] (VK_MV_SUMS)

#define QX xqw
#include "quantize.glsl"
#define NORM_WG WG
shared float norm_red[256];
shared float norm_bmax[256];
float norm_in(uint mode, uint i) { return yc[i]; }
void norm_out(uint mode, uint i, float h) { zb[i] = h; }
#include "norm.glsl"
shared bool norm_last;

// The fused norm: after its rows, each workgroup counts itself done; the last one (every other
// workgroup's y written and made visible before its count) norms the p.n tokens' rows of y into zb at
// the same offsets (and xq: the next matmul's input), as rmsnorm.comp would in a dispatch of its own
// (the same bits: norm.glsl), and resets the counter for the next dispatch.
void fused_norm() {
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationID.x == 0u) {
        uint total = gl_NumWorkGroups.x * gl_NumWorkGroups.y * gl_NumWorkGroups.z;
        norm_last = atomicAdd(cnt[p.norm_cnt], 1u) == total - 1u;
    }
    barrier();
    if (!norm_last) return;
    memoryBarrierBuffer();
    for (uint t = 0u; t < p.n; t++) {
        uint b = p.y_off + t * p.ldy;
        norm_row(0u, b, b, t, p.rows, p.norm_eps, p.norm_w, p.norm_quant, p.norm_plus_one);
    }
    if (gl_LocalInvocationID.x == 0u) cnt[p.norm_cnt] = 0u;
}

// Dense row k of the team (row r), its 16-byte step s (u), against tokens t0 .. t0 + nt - 1.
void step_vec(uvec4 u, uint k, uint s, uint t0, uint nt) {
    vec4 a, b;
    w_vec(p.fmt, u, a, b);
    uint per = p.fmt == FMT_F32 ? 4u : 8u, xc = (p.x_off + t0 * p.ldx + s * per) >> 2, xs = p.ldx >> 2;
    for (uint t = 0u; t < NT; t++) {
        if (t >= nt) break;
        float v = dot(a, x4[xc + t * xs]);
        if (per == 8u) v += dot(b, x4[xc + t * xs + 1u]);
        acc[k * TN + t] += v;
    }
}

// Dense rows, p.vec: lane takes 16-byte steps lane, lane + SG, ... of each
// of the team's rows, NU steps' loads of every row in flight at a time (a
// step past the row's end reads its last step again, and is not summed).
void row_vec(uint r0, uint t0, uint nt, uint lane) {
    uint steps = p.row_bytes >> 4, rs = steps, last = p.rows - 1u;
    if (p.fmt == FMT_F32) steps = min(steps, p.cols / 4u);   // rows may be padded past cols
    else steps = min(steps, p.cols / 8u);
    uvec4 u[MR * MU];
    for (uint s = lane; s < steps; s += NU * SG) {
        for (uint j = 0u; j < NU; j++) {
            uint sj = min(s + j * SG, steps - 1u);
            for (uint k = 0u; k < NR; k++) u[j * MR + k] = wd4[min(r0 + k, last) * rs + sj];
        }
        for (uint j = 0u; j < NU; j++) {
            if (s + j * SG >= steps) break;
            for (uint k = 0u; k < NR; k++) step_vec(u[j * MR + k], k, s + j * SG, t0, nt);
        }
    }
}

// GGUF Q8_0 / Q4_0 rows a lane a block (lane, lane + SG, ...): the block's
// 32 / 16 code bytes (2-byte aligned, after d) read as the 9 / 5 words that
// cover them, shifted into place (q_words), for each of the team's rows
// against x's 8 code words read once; the lane adds (d_w * d_x) * its
// integer sum (Q4_0: codes as unsigned nibbles, sum((q - 8) x) = sum(q x) -
// 8 sum(x), the second once for all the rows).
void q_words(uint a, uint n, out uint w[8]) {   // n <= 8 words from byte a (a even)
    uint i = a >> 2, sh = (a & 2u) << 3, prev = wd[i];
    for (uint k = 0u; k < 8u; k++) {
        if (k >= n) break;
        uint next = wd[i + k + 1u];
        w[k] = sh == 0u ? prev : (prev >> 16) | (next << 16);
        prev = next;
    }
}

void row_qblock(uint r0, uint t0, uint nt, uint lane) {
    bool q8 = p.fmt == FMT_Q8_0;
    uint nb = p.cols / 32u, bs = q8 ? 34u : 18u, last = p.rows - 1u;
    for (uint b = lane; b < nb; b += SG) {
        uint c[MR][8];
        float dw[MR];
        for (uint k = 0u; k < NR; k++) {
            uint a = min(r0 + k, last) * p.row_bytes + b * bs;
            dw[k] = w_f16(a);
            q_words(a + 2u, q8 ? 8u : 4u, c[k]);
        }
        for (uint t = 0u; t < NT; t++) {
            if (t >= nt) break;
            uint o = ((t0 + t) * nb + b) * 9u, xw[8];
            float dx = uintBitsToFloat(xq[o]);
            for (uint i = 0u; i < 8u; i++) xw[i] = xq[o + 1u + i];
            int x8 = 0;
            if (!q8)
                for (uint i = 0u; i < 8u; i++) x8 += dot4(0x01010101u, xw[i]);
            for (uint k = 0u; k < NR; k++) {
                int sum = 0;
                if (q8) {
                    for (uint i = 0u; i < 8u; i++) sum += dot4(c[k][i], xw[i]);
                } else {
                    for (uint i = 0u; i < 4u; i++)
                        sum += dot4u(xw[i], c[k][i] & 0x0F0F0F0Fu) + dot4u(xw[4u + i], (c[k][i] >> 4) & 0x0F0F0F0Fu);
                    sum -= 8 * x8;
                }
                acc[k * TN + t] += (dw[k] * dx) * float(sum);
            }
        }
    }
}

// Q4_K / Q6_K rows (256-element blocks, x as int8 blocks of 32): a lane
// takes a whole 32-element sub-block (lane, lane + SG, ...: neighbouring
// lanes neighbouring sub-blocks), its codes and scales read as whole words
// (Q4_K: the block's 16-byte head and its 32 code bytes as uvec4s; Q6_K, a
// 2-byte aligned 210-byte block: the words covering its 32 low and 32 high
// code bytes, shifted into place), for each of the team's rows against x's
// words read once.  Sub-block j adds (d * d_x) * (isc * sum(q x)) (Q6_K:
// isc_0 sum over its first 16 + isc_1 over the last 16) + (m * d_x) * sum(x)
// (Q4_K: m = -dmin * its 6-bit min), as row_sub's four lanes did.
uint k_byte(uvec4 h, uint i) { return (h[i >> 2] >> ((i & 3u) << 3)) & 0xFFu; }

// Q4_K sub-block j of the block at byte a (16-aligned): (d, m), the integer scale, codes 4k .. 4k + 3 in c[k].
void k4_sub(uint a, uint j, out vec2 dm, out int isc, out uint c[8]) {
    uvec4 h = wd4[a >> 4];
    vec2 dd = unpackHalf2x16(h.x);
    uint sc, mn;
    if (j < 4u) {
        sc = k_byte(h, 4u + j) & 63u;
        mn = k_byte(h, 8u + j) & 63u;
    } else {
        uint b = k_byte(h, 8u + j);
        sc = (b & 15u) | ((k_byte(h, j) >> 6) << 4);
        mn = (b >> 4) | ((k_byte(h, 4u + j) >> 6) << 4);
    }
    dm = vec2(dd.x, -dd.y * float(mn));
    isc = int(sc);
    uint q = ((a + 16u) >> 4) + 2u * (j >> 1), sh = 4u * (j & 1u);
    uvec4 c0 = wd4[q], c1 = wd4[q + 1u];
    for (uint k = 0u; k < 4u; k++) {
        c[k] = (c0[k] >> sh) & 0x0F0F0F0Fu;
        c[4u + k] = (c1[k] >> sh) & 0x0F0F0F0Fu;
    }
}

// The 8 words of the 32 bytes at byte a (a even), shifted into place.
void k_words32(uint a, out uint w[8]) {
    uint i = a >> 2, sh = (a & 2u) << 3, prev = wd[i];
    for (uint k = 0u; k < 8u; k++) {
        uint next = wd[i + k + 1u];
        w[k] = sh == 0u ? prev : (prev >> 16) | (next << 16);
        prev = next;
    }
}

// Q6_K sub-block j of the block at byte a: d, the integer scales of its halves, signed codes 4k .. 4k + 3 in c[k].
void k6_sub(uint a, uint j, out float d, out ivec2 isc, out uint c[8]) {
    uint h = j >> 2, g = j & 3u, lo[8], hi[8];
    k_words32(a + 64u * h + 32u * (g & 1u), lo);
    k_words32(a + 128u + 32u * h, hi);
    for (uint k = 0u; k < 8u; k++)
        c[k] = w_bytes_minus(((lo[k] >> (4u * (g >> 1))) & 0x0F0F0F0Fu) | (((hi[k] >> (2u * g)) & 0x03030303u) << 4), 32u);
    uint sw = w_u32(a + 192u + 2u * j);   // scales 2j, 2j + 1 (int8)
    isc = ivec2(bitfieldExtract(int(sw), 0, 8), bitfieldExtract(int(sw), 8, 8));
    d = w_f16(a + 208u);
}

void row_k(uint r0, uint t0, uint nt, uint lane) {
    bool q4 = p.fmt == FMT_Q4_K;
    uint nb = p.cols / 32u, bs = q4 ? 144u : 210u, last = p.rows - 1u;
    for (uint b = lane; b < nb; b += SG) {
        vec2 dm[MR];
        ivec2 isc[MR];
        uint c[MR][8];
        for (uint k = 0u; k < NR; k++) {   // the rows' loads first
            uint a = min(r0 + k, last) * p.row_bytes + (b >> 3) * bs;
            if (q4) {
                int s;
                k4_sub(a, b & 7u, dm[k], s, c[k]);
                isc[k] = ivec2(s);
            } else {
                float d;
                k6_sub(a, b & 7u, d, isc[k], c[k]);
                dm[k] = vec2(d, 0.0);
            }
        }
        for (uint t = 0u; t < NT; t++) {
            if (t >= nt) break;
            uint o = ((t0 + t) * nb + b) * 9u, xw[8];
            float dx = uintBitsToFloat(xq[o]);
            for (uint i = 0u; i < 8u; i++) xw[i] = xq[o + 1u + i];
            int xs = 0;
            if (q4)
                for (uint i = 0u; i < 8u; i++) xs += dot4(0x01010101u, xw[i]);
            for (uint k = 0u; k < NR; k++) {
                int s0 = 0, s1 = 0;
                for (uint i = 0u; i < 4u; i++) {
                    s0 += dot4(c[k][i], xw[i]);
                    s1 += dot4(c[k][4u + i], xw[4u + i]);
                }
                float v = (dm[k].x * dx) * float(isc[k].x * s0 + isc[k].y * s1);
                if (q4) v += (dm[k].y * dx) * float(xs);
                acc[k * TN + t] += v;
            }
        }
    }
}

// Sub-block formats (see above): 4 lanes a sub-block; lane
// quarter qt takes elements 8 qt .. + 7 (code words 2 qt, 2 qt + 1, in
// one 16-element half: integer scale isc[qt / 2]).
void row_sub(uint r, uint t0, uint nt, uint lane, inout float sums[TN]) {
    uint rb = r * p.row_bytes, nb = p.cols / 32u, qt = lane & 3u, step = SG / 4u;
    bool q8 = fmt_quant(p.fmt), mins = fmt_min(p.fmt);
    vec2 dms[MU];
    int iscs[MU];
    uvec2 cs[MU];
    for (uint b0 = lane >> 2; b0 < nb; b0 += NU * step) {
        for (uint j = 0u; j < NU; j++) {   // NU sub-blocks' loads first (past the row's end: its last, not summed)
            uint bj = min(b0 + j * step, nb - 1u);
            dms[j] = w_sub_dm(p.fmt, rb, bj);
            iscs[j] = w_sub_isc(p.fmt, rb, bj)[qt >> 1];
            cs[j] = uvec2(w_sub_codes(p.fmt, rb, bj, 2u * qt), w_sub_codes(p.fmt, rb, bj, 2u * qt + 1u));
        }
        for (uint j = 0u; j < NU; j++) {
            uint b = b0 + j * step;
            if (b >= nb) break;
            vec2 dm = dms[j];
            int isc = iscs[j];
            uint c0 = cs[j].x, c1 = cs[j].y;
            if (q8) {
                for (uint t = 0u; t < NT; t++) {
                    if (t >= nt) break;
                    uint o = ((t0 + t) * nb + b) * 9u, x0 = xq[o + 1u + 2u * qt], x1 = xq[o + 2u + 2u * qt];
                    float dx = uintBitsToFloat(xq[o]), v = (dm.x * dx) * float(isc * (dot4(c0, x0) + dot4(c1, x1)));
                    if (mins) v += (dm.y * dx) * float(dot4(0x01010101u, x0) + dot4(0x01010101u, x1));
                    sums[t] += v;
                }
            } else {
                vec4 w0 = vec4(float(isc * bitfieldExtract(int(c0), 0, 8)), float(isc * bitfieldExtract(int(c0), 8, 8)),
                               float(isc * bitfieldExtract(int(c0), 16, 8)), float(isc * bitfieldExtract(int(c0), 24, 8)));
                vec4 w1 = vec4(float(isc * bitfieldExtract(int(c1), 0, 8)), float(isc * bitfieldExtract(int(c1), 8, 8)),
                               float(isc * bitfieldExtract(int(c1), 16, 8)), float(isc * bitfieldExtract(int(c1), 24, 8)));
                for (uint t = 0u; t < NT; t++) {
                    if (t >= nt) break;
                    uint xb = p.x_off + (t0 + t) * p.ldx + b * 32u + 8u * qt;
                    vec4 xa, xc;
                    if (p.vec != 0u) {   // x 16-byte aligned
                        xa = x4[xb >> 2];
                        xc = x4[(xb >> 2) + 1u];
                    } else {
                        xa = vec4(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]);
                        xc = vec4(x[xb + 4u], x[xb + 5u], x[xb + 6u], x[xb + 7u]);
                    }
                    sums[t] += dm.x * (dot(w0, xa) + dot(w1, xc)) + dm.y * dot(xa + xc, vec4(1.0));
                }
            }
        }
    }
}

// MLX rows: a lane takes 32-element chunks lane, lane + SG, ... (4-bit: 16
// bytes of codes, 8-bit: 32, neighbouring lanes neighbouring chunks), each
// within one group: it adds s * sum(q x) + b * sum(x) (fp modes: q the
// code's float, b 0), in f32, as the CPU engine's fused dot
// (src/kernels/qmatmul.c) does.
void row_mlx(uint r, uint t0, uint nt, uint lane, inout float sums[TN]) {
    uint nb = p.cols / 32u, G = p.cols / p.gs, rw = r * p.row_bytes >> 2;
    float q[32];
    for (uint b = lane; b < nb; b += SG) {
        vec2 sb = w_group(p.fmt, p.sfmt, p.sc_off, p.bi_off, r, G, b * 32u / p.gs);
        float s = sb.x, bi = sb.y;
        w_codes32(p.fmt, rw, b, p.bits, q);
        for (uint t = 0u; t < TN; t++) {
            if (t >= nt) break;
            uint xb = p.x_off + (t0 + t) * p.ldx + b * 32u;
            float qx = 0.0, xs = 0.0;
            if (p.vec != 0u) {   // x 16-byte aligned: vec4 reads
                for (uint k = 0u; k < 8u; k++) {
                    vec4 xv = x4[(xb >> 2) + k];
                    qx += dot(vec4(q[4u * k], q[4u * k + 1u], q[4u * k + 2u], q[4u * k + 3u]), xv);
                    xs += dot(xv, vec4(1.0));
                }
            } else {
                for (uint j = 0u; j < 32u; j++) {
                    float xv = x[xb + j];
                    qx += q[j] * xv;
                    xs += xv;
                }
            }
            sums[t] += s * qx + bi * xs;
        }
    }
}

// Codes 4j .. 4j + 3 of a 32-element MLX chunk held as words (4-bit: u0;
// 8-bit: u0 then u1), as f32 (fp modes: their values), as w_codes32 reads them.
vec4 mlx_codes4(uvec4 u0, uvec4 u1, uint j) {
    uvec4 q;
    if (p.bits == 4u) q = (uvec4(u0[j >> 1]) >> (4u * (4u * (j & 1u)) + uvec4(0u, 4u, 8u, 12u))) & 15u;
    else q = (uvec4(j < 4u ? u0[j & 3u] : u1[j & 3u]) >> uvec4(0u, 8u, 16u, 24u)) & 255u;
    if (p.fmt == FMT_AFFINE) return vec4(q);
    return vec4(w_mlx_value(p.fmt, q.x), w_mlx_value(p.fmt, q.y), w_mlx_value(p.fmt, q.z), w_mlx_value(p.fmt, q.w));
}

// MLX rows r0 .. r0 + NR - 1 of 4- or 8-bit codes, x 16-byte aligned: as
// row_mlx (the same sums in the same order), each token's 32 x values and
// their sum read once for all the rows.
void row_mlx_rows(uint r0, uint t0, uint nt, uint lane) {
    uint nb = p.cols / 32u, G = p.cols / p.gs, last = p.rows - 1u;
    for (uint b = lane; b < nb; b += SG) {
        uvec4 c0[MR], c1[MR];
        vec2 sb[MR];
        for (uint k = 0u; k < NR; k++) {   // the rows' loads first
            uint rk = min(r0 + k, last), rq = (rk * p.row_bytes) >> 4;   // rows of cols / 8 or cols / 4 words: 16-byte aligned
            sb[k] = w_group(p.fmt, p.sfmt, p.sc_off, p.bi_off, rk, G, b * 32u / p.gs);
            c0[k] = wd4[rq + (p.bits == 4u ? b : 2u * b)];
            c1[k] = p.bits == 4u ? uvec4(0u) : wd4[rq + 2u * b + 1u];
        }
        for (uint t = 0u; t < NT; t++) {
            if (t >= nt) break;
            uint xb = (p.x_off + (t0 + t) * p.ldx + b * 32u) >> 2;
            vec4 xv[8];
            for (uint j = 0u; j < 8u; j++) xv[j] = x4[xb + j];
            for (uint k = 0u; k < NR; k++) {
                float qx = 0.0, xs = 0.0;
                for (uint j = 0u; j < 8u; j++) {
                    qx += dot(mlx_codes4(c0[k], c1[k], j), xv[j]);
                    xs += dot(xv[j], vec4(1.0));
                }
                acc[k * TN + t] += sb[k].x * qx + sb[k].y * xs;
            }
        }
    }
}

// Dense rows of any alignment: a 32-element block at a time.
void row_any(uint r, uint t0, uint nt, uint lane, inout float acc[TN]) {
    uint rb = r * p.row_bytes, nb = (p.cols + 31u) / 32u;
    float v[32];
    for (uint b = lane; b < nb; b += SG) {
        w_block(p.fmt, rb, b, p.cols, v);
        for (uint t = 0u; t < nt; t++) {
            uint xb = p.x_off + (t0 + t) * p.ldx + b * 32u;
            float s = 0.0;
            for (uint j = 0u; j < 32u && b * 32u + j < p.cols; j++) s += v[j] * x[xb + j];
            acc[t] += s;
        }
    }
}

// Lane `lane` of a row's team: its part of row r for tokens t0 .. t0 + nt - 1.
void row(uint r, uint t0, uint nt, uint lane, inout float acc[TN]) {
    if (fmt_sub(p.fmt)) row_sub(r, t0, nt, lane, acc);
    else if (fmt_mlx(p.fmt)) row_mlx(r, t0, nt, lane, acc);
    else row_any(r, t0, nt, lane, acc);
}

// The team's rows r0 .. r0 + NR - 1: GGUF Q8_0 / Q4_0, 16-byte dense rows and
// MLX 4- / 8-bit codes (x 16-byte aligned) all at once (x read once for
// them), the others one after the other (a row's sums in sums, then copied
// to acc at constant indices).
void rows(uint r0, uint t0, uint nt, uint lane) {
    if (p.fmt == FMT_Q4_K || p.fmt == FMT_Q6_K) {
        row_k(r0, t0, nt, lane);
    } else if (fmt_quant(p.fmt) && !fmt_sub(p.fmt)) {
        row_qblock(r0, t0, nt, lane);
    } else if (!fmt_quant(p.fmt) && !fmt_sub(p.fmt) && !fmt_mlx(p.fmt) && p.vec != 0u) {
        row_vec(r0, t0, nt, lane);
    } else if (fmt_mlx(p.fmt) && p.vec != 0u && (p.bits == 4u || p.bits == 8u)) {
        row_mlx_rows(r0, t0, nt, lane);
    } else {
        for (uint k = 0u; k < NR; k++) {
            if (r0 + k >= p.rows) break;
            float sums[TN];
            for (uint t = 0u; t < TN; t++) sums[t] = 0.0;
            row(r0 + k, t0, nt, lane, sums);
            for (uint j = 0u; j < NR; j++)
                if (j == k)
                    for (uint t = 0u; t < NT; t++) acc[j * TN + t] = sums[t];
        }
    }
}

void main() {
    uint sgs = min(gl_SubgroupSize, WG);
    team_width = WIDE ? max(p.team, sgs) : sgs;   // whole subgroups (the host's width may be narrower than this device's)
    uint per = team_width / sgs, teams = gl_NumSubgroups / per, me = gl_SubgroupID / per;
    uint lane = (gl_SubgroupID % per) * sgs + gl_SubgroupInvocationID;
    uint tpw = WG / p.team, wg = gl_WorkGroupID.x + gl_WorkGroupID.z * 65535u;   // team slots a workgroup
    uint t0 = gl_WorkGroupID.y * NT, nt = min(NT, p.n - t0);
    for (uint i = 0u; i < tpw; i += teams) {   // the same count for every invocation: barriers below
        uint r0 = (wg * tpw + i + me) * NR;
        for (uint j = 0u; j < MR * TN; j++) acc[j] = 0.0;
        bool mine = r0 < p.rows && i + me < tpw;   // (more teams than the host's slots a workgroup: the rest idle)
        if (mine) rows(r0, t0, nt, lane);
        for (uint k = 0u; k < NR; k++)   // (nt is uniform: every lane of the subgroup adds)
            for (uint t = 0u; t < NT; t++)
                if (t < nt) acc[k * TN + t] = subgroupAdd(acc[k * TN + t]);
        if (WIDE && per > 1u) {
            if (gl_SubgroupInvocationID == 0u)
                for (uint k = 0u; k < NR; k++)
                    for (uint t = 0u; t < NT; t++)
                        if (t < nt) part[(gl_SubgroupID * NR + k) * NT + t] = acc[k * TN + t];
            barrier();
            if (lane == 0u)
                for (uint k = 0u; k < NR; k++)
                    for (uint t = 0u; t < NT; t++) {
                        if (t >= nt) continue;
                        float s = 0.0;
                        for (uint q = 0u; q < per; q++) s += part[((me * per + q) * NR + k) * NT + t];
                        acc[k * TN + t] = s;
                    }
            barrier();
        }
        // the epilogue of each row: bias, residual add, softcap
        if (lane == 0u && mine)
            for (uint k = 0u; k < NR; k++) {
                uint r = r0 + k;
                if (r >= p.rows) break;
                for (uint t = 0u; t < NT; t++) {
                    if (t >= nt) break;
                    uint o = p.y_off + (t0 + t) * p.ldy + r;
                    float s = acc[k * TN + t];
                    if (p.bias_off >= 0) s += vec[uint(p.bias_off) + r];
                    if (p.accumulate != 0u) s += y[o];
                    if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
                    y[o] = s;
                }
            }
    }
    if (p.norm != 0u) fused_norm();
}
