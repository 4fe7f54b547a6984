/*
 * qamx_x86.c — the "amx" kernel set: the AVX-512 set (qdot_x86.c) with
 * GGUF Q4_0 / Q8_0 / Q4_K / Q6_K prompts on AMX int8 tiles (tdpbssd), and
 * its own Q4_0 / Q8_0 one-token dots that add the f32 block terms in an
 * order the tiles can keep (the K-quant GEMM keeps the portable order: see
 * its section); MLX affine 4/8-bit (24-bit activations) likewise, with its
 * own dots and GEMM in qamx_affine_x86.c.
 *
 * The order (dots and GEMM alike): for a (row, token) pair, the exact int32
 * sum of each 32-element block b (Q4_0: (q - 8) . y; Q8_0: w . y) is added
 * in f32 as acc[b % 16] = fma(float(sum_b), d_w * d_y, acc[b % 16]) for
 * b = 0, 1, ..., nb - 1 (d_w the block's f16 scale widened, d_y the
 * activation block's f32 scale, one f32 product; acc starts at +0), then
 * the 16 lanes are halved: (l, l + 8), then (l, l + 4), (l, l + 2),
 * (l, l + 1) (red16).  The AVX-512 set's dots convert each block's eight
 * 4-product partial sums separately; a tile gives whole-block sums only,
 * hence this set's own dots (bit-identical to its GEMM; tolerance-identical
 * to the other sets, like any two sets).  Integer sums are exact: |(q-8) y|,
 * |w y| <= 128 * 127 per product, 32 per block.
 *
 * GEMM (sl_qd_q8_gemm_fn): one tile product is 16 tokens x 16 weight rows
 * with K = one block (32 bytes): A = the 16 tokens' q8 bytes, loaded in
 * place from the shared activations (row stride: a token's bytes; the
 * caller pads the tokens to 16), B = a panel of 16 rows' block b in the
 * VNNI layout (4 bytes of each row per 64-byte tile row), unpacked once
 * per panel and call into the thread's scratch by gathers (Q4_0: nibbles
 * minus 8; Q8_0: the bytes as they are) — the weights stay mmap'd views,
 * nothing is repacked at load — and C = int32 [token][row].  The f32 side
 * walks lane by lane: for lane l the blocks l, l + 16, ... in order, the 16
 * tokens' 16-row accumulators in registers (two tile products in flight),
 * each lane's registers parked in scratch, then the halving over lanes as
 * vector adds: every pair gets its dot's operations in its dot's order.
 *
 * Probe (once): CPUID AMX-TILE + AMX-INT8 and the tile state enabled in
 * XCR0 (sl_cpu), Linux's permission (arch_prctl ARCH_REQ_XCOMP_PERM for
 * XTILEDATA), then a trial product under a SIGILL / SIGSEGV / SIGBUS guard
 * (some VMs report AMX and fault on the first tile instruction) checked
 * against integer sums; SILICA_NO_AMX=1 turns the set off.  Tile state is
 * per thread: every GEMM call loads its configuration and releases the
 * tiles before it returns, so pool threads need no set-up or tear-down.
 * Built only for x86-64 Linux with gcc >= 11 or clang >= 12 (per-function
 * target attributes, no -m flags); elsewhere sl_qd_amx says why not.
 */
#include "kernels/qamx_x86.h"
#include "kernels/qk_x86.h"

#if defined(SL_QD_X86)
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "silica/cpu.h"

#if defined(SL_QD_AMX)
#include <sys/syscall.h>
#include <unistd.h>

/* Partial sums of blocks at w, y (two, or one: then lanes 8-15 are 0). */
T_512 static inline __m512i q8_0_part(const uint8_t *w, const sl_q8b *y, int two) {
    if (two) return dot_i8_512(q8_0_pair(w), y_pair(y));
    return dot_i8_512(_mm512_maskz_loadu_epi8(0xffffffffull, w + 2), _mm512_maskz_loadu_epi8(0xffffffffull, y->qs));
}
T_512 static inline __m512i q4_0_part(const uint8_t *w, const sl_q8b *y, int two) {
    __m512i qv, yv, z = _mm512_setzero_si512();
    if (two) qv = q4_0_pair(w), yv = y_pair(y);
    else {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
        __m128i lo = _mm_and_si128(b, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15));
        qv = _mm512_inserti64x4(z, _mm256_set_m128i(hi, lo), 0);
        yv = _mm512_maskz_loadu_epi8(0xffffffffull, y->qs);
    }
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(z, qv, yv), _mm512_dpbusd_epi32(z, _mm512_set1_epi8(8), yv));
}

/* One step of the one-token dots: n <= 16 blocks at w, y into acc, lane i
 * = block i (pairs through PART, the scales one at a time, a masked fma). */
#define AMX_GROUP(NAME, BB, PART)                                                                  \
    T_512 static inline __m512 NAME(const uint8_t *w, const sl_q8b *y, int n, __m512 acc) {        \
        __m512i p[8];                                                                             \
        float dw[16] = {0}, dy[16] = {0};                                                         \
        for (int i = 0; i < 8; i++)                                                               \
            p[i] = 2 * i < n ? PART(w + 2 * (size_t)i * BB, y + 2 * i, 2 * i + 1 < n) : _mm512_setzero_si512(); \
        for (int i = 0; i < n; i++) dw[i] = f16s(w + (size_t)i * BB), dy[i] = y[i].d;            \
        __m512 sc = _mm512_mul_ps(_mm512_loadu_ps(dw), _mm512_loadu_ps(dy));                      \
        return _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(fold16(p)), sc, acc, (__mmask16)((1u << n) - 1u)); \
    }
AMX_GROUP(amx_q8_0_group, 34, q8_0_part)
AMX_GROUP(amx_q4_0_group, 18, q4_0_part)

/* The one-token dots: 16 blocks per step. */
#define AMX_DOT(NAME, BB, GROUP)                                                                  \
    T_512 static float NAME(const uint8_t *w, const sl_q8b *y, size_t nb) {                     \
        __m512 acc = _mm512_setzero_ps();                                                         \
        for (size_t b0 = 0; b0 < nb; b0 += 16)                                                    \
            acc = GROUP(w + b0 * BB, y + b0, nb - b0 < 16 ? (int)(nb - b0) : 16, acc);            \
        return red16(acc);                                                                        \
    }
AMX_DOT(amx_q8_0, 34, amx_q8_0_group)
AMX_DOT(amx_q4_0, 18, amx_q4_0_group)

/* Generation rows (sl_qd_q40_rows_fn): every row gets exactly its dot's
 * operations on the f32 side — the same exact int32 block sums, the same
 * products d_w * d_y, the same fma per group of 16 blocks, the same halving
 * — so out[r] is bit for bit the dot, with less work per whole group: the
 * activations are prepared once per call (amx_prep: each pair's bytes, the
 * dpbusd accumulator -kc . y that turns unsigned codes into the signed sum,
 * and the d_y), the codes go through one vpdpbusd per pair as unsigned
 * bytes (Q8_0: w xor 0x80, kc = 128; Q4_0: the nibbles placed by two word
 * permutes per four blocks, kc = 8), and the 16 f16 scales come from one
 * gather and one conversion (the dot converts them one by one through
 * memory).  A last partial group runs the dot's own step. */
typedef struct amx_g16 {
    int8_t q[8][64];     /* pair i: blocks 2i and 2i + 1's activation bytes (y_pair) */
    int32_t nc[8][16];   /* -kc . y per lane */
    float d[16];         /* d_y */
} amx_g16;               /* 1088 bytes per 16 blocks: within SL_QD_Q40_PREP_BYTES */

T_512 static inline void amx_prep(const sl_q8b *y, size_t nb, void *prep, char kc) {
    amx_g16 *g = prep;
    const __m512i k = _mm512_set1_epi8(kc), z = _mm512_setzero_si512();
    for (size_t b = 0; b + 16 <= nb; b += 16, g++) {
        for (int i = 0; i < 8; i++) {
            __m512i v = y_pair(y + b + 2 * i);
            _mm512_store_si512((void *)g->q[i], v);
            _mm512_store_si512((void *)g->nc[i], _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, k, v)));
        }
        for (int i = 0; i < 16; i++) g->d[i] = y[b + i].d;
    }
}
T_512 static void amx_q4_0_prep(const sl_q8b *y, size_t nb, void *prep) { amx_prep(y, nb, prep, 8); }
T_512 static void amx_q8_0_prep(const sl_q8b *y, size_t nb, void *prep) { amx_prep(y, nb, prep, (char)0x80); }

/* The f16 scales of 16 blocks bb bytes apart (each at its block's start), widened: one gather. */
T_512 static inline __m512 scales16(const uint8_t *wb, int bb) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(bb));
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(idx, (const void *)wb, 1)));
}

/* The codes of 16 blocks of one row as the 8 pair vectors one vpdpbusd
 * takes (unsigned; Q8_0: w xor 0x80), and their d_w (f16 widened). */
T_512 static inline __m512 amx_q8_0_codes(const uint8_t *wb, __m512i wv[8]) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    for (int i = 0; i < 8; i++) wv[i] = _mm512_xor_si512(q8_0_pair(wb + 68 * i), k80);
    return scales16(wb, 34);
}

/* Q4_0: two pairs per four blocks (q4_0_quad). */
T_512 static inline __m512 amx_q4_0_codes(const uint8_t *wb, __m512i wv[8]) {
    for (int k = 0; k < 4; k++) {
        __m512i A;
        q4_0_quad(wb + 72 * k, &A, &wv[2 * k], &wv[2 * k + 1]);
    }
    return scales16(wb, 18);
}

/* One token's step over a whole group: the dot's int32 block sums, d_w * d_y, one fma. */
T_512 static inline __m512 amx_group_step(const __m512i wv[8], __m512 dw, const amx_g16 *g, __m512 acc) {
    __m512i p[8];
    for (int i = 0; i < 8; i++)
        p[i] = _mm512_dpbusd_epi32(_mm512_load_si512((const void *)g->nc[i]), wv[i],
                                   _mm512_load_si512((const void *)g->q[i]));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold16(p)), _mm512_mul_ps(dw, _mm512_load_ps(g->d)), acc);
}

/* Rows x nt tokens (nt = 1: the generation rows; up to SL_QD_ROWS_MAX_TOKENS:
 * sl_qd_q40_rowsn_fn): each row's codes and scales are decoded once per
 * group for all the tokens. */
#define AMX_ROWS_FN(NAME, NAME_N, BB, CODES, GROUP)                                                        \
    T_512 static void NAME_N(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, size_t ldy, int nt,   \
                             const void *prep, size_t nb, float *out, size_t ldo) {                         \
        size_t ng = nb / 16, pstride = SL_QD_Q40_PREP_BYTES(nb); /* bytes, a multiple of 64 */              \
        for (size_t r = 0; r < nr; r++) {                                                                   \
            const uint8_t *wb = w + r * ldw;                                                                \
            __m512 acc[SL_QD_ROWS_MAX_TOKENS];                                                              \
            for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();                                      \
            for (size_t g = 0; g < ng; g++, wb += 16 * BB) {                                                \
                __m512i wv[8];                                                                              \
                __m512 dw = CODES(wb, wv);                                                                  \
                for (int t = 0; t < nt; t++)                                                                \
                    acc[t] = amx_group_step(wv, dw, (const amx_g16 *)((const uint8_t *)prep + t * pstride) + g, acc[t]); \
            }                                                                                               \
            for (int t = 0; t < nt; t++) {                                                                  \
                const sl_q8b *yt = y + (size_t)t * ldy;                                                     \
                if (ng * 16 < nb) acc[t] = GROUP(wb, yt + ng * 16, (int)(nb - ng * 16), acc[t]);            \
                out[(size_t)t * ldo + r] = red16(acc[t]);                                                   \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    T_512 static void NAME(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, const void *prep,      \
                           size_t nb, float *out) {                                                         \
        NAME_N(w, ldw, nr, y, 0, 1, prep, nb, out, 0);                                                      \
    }
AMX_ROWS_FN(amx_q8_0_rows, amx_q8_0_rows_n, 34, amx_q8_0_codes, amx_q8_0_group)
AMX_ROWS_FN(amx_q4_0_rows, amx_q4_0_rows_n, 18, amx_q4_0_codes, amx_q4_0_group)

/* ---- the GEMM ---- */

/* Tiles 0, 1: C (16 tokens x 16 rows int32); 2, 3: A (16 tokens x 32
 * bytes); 4, 5: B (8 x 64 bytes: 16 rows x 4 bytes per K step). */
T_AMX static void tiles_on(void) {
    _Alignas(64) sl_amx_tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 6; i++) {
        c.rows[i] = i >= 4 ? 8 : 16;
        c.colsb[i] = i == 2 || i == 3 ? 32 : 64;
    }
    MEM_BARRIER();
    _tile_loadconfig(&c);
}

/* A panel of nr <= 16 rows (w, ldw, ldw < 2^27): bp[b * 512 + k * 64 +
 * r * 4 + j] = element 4k + j of row r's block b, dwp[b * 16 + r] its
 * scale; rows >= nr hold zeros (their outputs are dropped). */
T_512 static void panel(int q4, const uint8_t *w, size_t ldw, int nr, size_t nb, int8_t *bp, float *dwp) {
    const __mmask16 m = (__mmask16)((1u << nr) - 1u);
    const __m512i z = _mm512_setzero_si512(), m4 = _mm512_set1_epi8(15), k8 = _mm512_set1_epi8(8);
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32((int)ldw));
    size_t bb = q4 ? 18 : 34;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * bb;
        int8_t *o = bp + b * 512;
        if (q4)
            for (int k = 0; k < 4; k++) {
                __m512i g = _mm512_mask_i32gather_epi32(z, m, idx, (const void *)(wb + 2 + 4 * k), 1);
                _mm512_store_si512((void *)(o + 64 * k), _mm512_sub_epi8(_mm512_and_si512(g, m4), k8));
                _mm512_store_si512((void *)(o + 64 * (k + 4)),
                                   _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi32(g, 4), m4), k8));
            }
        else
            for (int k = 0; k < 8; k++)
                _mm512_store_si512((void *)(o + 64 * k), _mm512_mask_i32gather_epi32(z, m, idx, (const void *)(wb + 2 + 4 * k), 1));
        for (int r = 0; r < 16; r++) dwp[b * 16 + r] = r < nr ? f16s(wb + (size_t)r * ldw) : 0.0f;
    }
}

/* One tile product's f32 terms: acc[t] (16 rows) += C[t] * (d_w * d_y(t)). */
T_512 static inline void post(__m512 *acc, const int32_t *c, const float *dwb, const sl_q8b *yb, size_t ldy) {
    __m512 dw = _mm512_load_ps(dwb);
    UNROLL_ALL
    for (int t = 0; t < 16; t++)
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((const void *)(c + 16 * t))),
                                 _mm512_mul_ps(dw, _mm512_set1_ps(yb[(size_t)t * ldy].d)), acc[t]);
}

T_AMX static void amx_gemm(int q4, const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt,
                           size_t nb, float *out, size_t ldo, void *scratch) {
    int8_t *bp = scratch;
    float *dwp = (float *)(void *)(bp + nb * 512), *accb = dwp + nb * 16;   /* accb: [lane][token][row] */
    int32_t *cb = (int32_t *)(void *)(accb + 16 * 256);
    long sy = (long)(ldy * sizeof(sl_q8b));
    tiles_on();
    for (int r0 = 0; r0 < nr; r0 += 16) {
        int pr = nr - r0 < 16 ? nr - r0 : 16;
        panel(q4, w + (size_t)r0 * ldw, ldw, pr, nb, bp, dwp);
        MEM_BARRIER();
        for (int t0 = 0; t0 < nt; t0 += 16) {
            const sl_q8b *yt = y + (size_t)t0 * ldy;
            for (size_t l = 0; l < 16; l++) {
                __m512 acc[16];
                UNROLL_ALL
                for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
                size_t b = l;
                for (; b + 16 < nb; b += 32) {   /* blocks b and b + 16 (same lane) in flight */
                    _tile_loadd(2, yt[b].qs, sy);
                    _tile_loadd(4, bp + b * 512, 64);
                    _tile_zero(0);
                    _tile_dpbssd(0, 2, 4);
                    _tile_loadd(3, yt[b + 16].qs, sy);
                    _tile_loadd(5, bp + (b + 16) * 512, 64);
                    _tile_zero(1);
                    _tile_dpbssd(1, 3, 5);
                    _tile_stored(0, cb, 64);
                    _tile_stored(1, cb + 256, 64);
                    MEM_BARRIER();
                    post(acc, cb, dwp + b * 16, yt + b, ldy);
                    post(acc, cb + 256, dwp + (b + 16) * 16, yt + b + 16, ldy);
                }
                if (b < nb) {
                    _tile_loadd(2, yt[b].qs, sy);
                    _tile_loadd(4, bp + b * 512, 64);
                    _tile_zero(0);
                    _tile_dpbssd(0, 2, 4);
                    _tile_stored(0, cb, 64);
                    MEM_BARRIER();
                    post(acc, cb, dwp + b * 16, yt + b, ldy);
                }
                UNROLL_ALL
                for (int t = 0; t < 16; t++) _mm512_store_ps(accb + l * 256 + 16 * (size_t)t, acc[t]);
            }
            int tn = nt - t0 < 16 ? nt - t0 : 16;
            for (int t = 0; t < tn; t++) {   /* red16 over the lanes, 16 rows at a time */
                _mm512_mask_storeu_ps(out + (size_t)(t0 + t) * ldo + r0, (__mmask16)((1u << pr) - 1u),
                                      red16_lanes(accb + 16 * (size_t)t, 256));
            }
        }
    }
    _tile_release();
}

T_AMX static void amx_q4_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                                float *out, size_t ldo, void *scratch) {
    amx_gemm(1, w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch);
}
T_AMX static void amx_q8_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                                float *out, size_t ldo, void *scratch) {
    amx_gemm(0, w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch);
}

/* ---- the K-quant GEMM (Q4_K / Q6_K; sl_qd_q8k_gemm_fn) ----
 * These keep the portable dot's order as it is: a block's integer sum
 * sumi = sum over sub-blocks j of sc_j * S_j (S_j: the exact sum of code x
 * activation byte over sub-block j; Q6_K minus 32 * sc_j * bsum_j) is an
 * exact int32 in any order, and the block's f32 term is the dot's
 * expression, added block after block.  One tile product is 16 tokens x 16
 * rows with K = one sub-block (Q4_K 32 bytes, Q6_K 16): A = the tokens' q8_K
 * bytes in place (stride: a token's blocks; the caller pads the tokens to
 * 16), B = a panel of 16 rows' sub-block in the VNNI layout, C = int32
 * [token][row].  Two products in flight; each C is stored and multiplied by
 * its 16 rows' scales (vpmulld) into 16 int32 accumulators (one per token,
 * lanes = rows); per block the mins (Q4_K) or the -32 terms (Q6_K) come
 * from vpdpwssd on 16-bit pairs of row scales and token bsums, then the f32
 * term lane-wise: Q4_K y.d * (d * sumi - dmin * summ), Q6_K (d * y.d) *
 * sumi.  The panel (codes decoded once per call and panel: a row's block is
 * 64 code dwords, gathered into 64 VNNI rows of 16 rows' dwords, sub-block
 * j at dword row 8j (Q4_K) or 4j (Q6_K)) lives in the thread's scratch;
 * the weights stay mmap'd views. */
typedef struct kmeta {
    int32_t sc[16][16];   /* [sub-block][row] scale */
    int32_t pr[8][16];    /* [pair][row], 16-bit halves: Q4_K mins 2p, 2p+1 (p < 4), scales 2p', 2p'+1
                             (p = 4 + p'); Q6_K scales 2p, 2p+1 */
    float d[16], dm[16];
} kmeta;                  /* 1664 bytes: a multiple of 64 */

/* Tiles 0, 1: C (16 tokens x 16 rows int32); 2, 3: A (16 tokens x kb
 * bytes); 4, 5: B (kb / 4 x 64 bytes). */
T_AMX static void tiles_on_k(int kb) {
    _Alignas(64) sl_amx_tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 6; i++) {
        c.rows[i] = (uint8_t)(i >= 4 ? kb / 4 : 16);
        c.colsb[i] = (uint16_t)(i == 2 || i == 3 ? kb : 64);
    }
    MEM_BARRIER();
    _tile_loadconfig(&c);
}

/* Rows [0, nr) of the panel at w (nr <= 16; the others zero): block b's B at
 * bp + 4096 b, its scales, pairs and f16 factors at km[b]; dec: 4096 bytes. */
T_512 static void kpanel(int q4, const uint8_t *w, size_t ldw, int nr, size_t nb, int8_t *bp, kmeta *km, int8_t *dec) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(256));
    size_t bb = q4 ? 144 : 210;
    for (size_t b = 0; b < nb; b++) {
        kmeta *m = km + b;
        memset(m, 0, sizeof *m);
        for (int r = 0; r < 16; r++) {
            __m512i c[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
            if (r < nr) {
                const uint8_t *wb = w + (size_t)r * ldw + b * bb;
                if (q4) {
                    uint8_t sm[16];
                    q4_k_codes(wb, c);
                    for (int k = 0; k < 4; k++) c[k] = _mm512_sub_epi8(c[k], _mm512_set1_epi8(8));
                    _mm_storeu_si128((__m128i *)(void *)sm, q4_k_scales_mins(wb + 4));
                    for (int j = 0; j < 8; j++) m->sc[j][r] = sm[j];
                    for (int p = 0; p < 4; p++) {
                        m->pr[p][r] = (int32_t)((uint32_t)sm[8 + 2 * p] | (uint32_t)sm[9 + 2 * p] << 16);
                        m->pr[4 + p][r] = (int32_t)((uint32_t)sm[2 * p] | (uint32_t)sm[1 + 2 * p] << 16);
                    }
                    m->d[r] = f16s(wb), m->dm[r] = f16s(wb + 2);
                } else {
                    q6_k_codes(wb, c);
                    for (int j = 0; j < 16; j++) m->sc[j][r] = (int8_t)wb[192 + j];
                    for (int p = 0; p < 8; p++)
                        m->pr[p][r] = (int32_t)((uint32_t)(uint16_t)(int8_t)wb[192 + 2 * p] |
                                                (uint32_t)(uint16_t)(int8_t)wb[193 + 2 * p] << 16);
                    m->d[r] = f16s(wb + 208);
                }
            }
            for (int k = 0; k < 4; k++) _mm512_store_si512((void *)(dec + 256 * r + 64 * k), c[k]);
        }
        MEM_BARRIER();
        int8_t *o = bp + b * 4096;
        for (int kk = 0; kk < 64; kk++)
            _mm512_store_si512((void *)(o + 64 * kk), _mm512_i32gather_epi32(idx, (const void *)(dec + 4 * kk), 1));
    }
}

/* The 32-bit broadcast of two 16-bit values. */
T_512 static inline __m512i pair16(int a, int b) {
    return _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16));
}

/* One block b of 16 tokens (yt, stride ldy blocks) by the panel: the f32 terms added to facc[t] (16 rows each). */
T_AMX static inline void k_block(int q4, const int8_t *bb, const kmeta *m, const sl_q8kb *yt, size_t ldy, size_t b,
                                 int32_t *cb, float *facc) {
    const int kb = q4 ? 32 : 16, ns = 256 / kb;
    const long sy = (long)(ldy * sizeof(sl_q8kb));
    __m512i isum[16];
    UNROLL_ALL
    for (int t = 0; t < 16; t++) isum[t] = _mm512_setzero_si512();
    for (int j = 0; j < ns; j += 2) {
        _tile_loadd(2, yt[b].qs + kb * j, sy);
        _tile_loadd(4, bb + 16 * kb * j, 64);
        _tile_zero(0);
        _tile_dpbssd(0, 2, 4);
        _tile_loadd(3, yt[b].qs + kb * (j + 1), sy);
        _tile_loadd(5, bb + 16 * kb * (j + 1), 64);
        _tile_zero(1);
        _tile_dpbssd(1, 3, 5);
        _tile_stored(0, cb, 64);
        _tile_stored(1, cb + 256, 64);
        MEM_BARRIER();
        if (q4) {   /* |C| <= 32 * 8 * 127 < 2^15: sub-blocks j, j + 1 as 16-bit pairs, one vpdpwssd */
            __m512i sp = _mm512_load_si512((const void *)m->pr[4 + j / 2]);
            UNROLL_ALL
            for (int t = 0; t < 16; t++) {
                __m512i c2 = _mm512_mask_blend_epi16(0xAAAAAAAAu, _mm512_load_si512((const void *)(cb + 16 * t)),
                                                     _mm512_slli_epi32(_mm512_load_si512((const void *)(cb + 256 + 16 * t)), 16));
                isum[t] = _mm512_dpwssd_epi32(isum[t], c2, sp);
            }
            continue;
        }
        __m512i s0 = _mm512_load_si512((const void *)m->sc[j]), s1 = _mm512_load_si512((const void *)m->sc[j + 1]);
        UNROLL_ALL
        for (int t = 0; t < 16; t++)
            isum[t] = _mm512_add_epi32(isum[t],
                                       _mm512_add_epi32(_mm512_mullo_epi32(_mm512_load_si512((const void *)(cb + 16 * t)), s0),
                                                        _mm512_mullo_epi32(_mm512_load_si512((const void *)(cb + 256 + 16 * t)), s1)));
    }
    __m512 d = _mm512_load_ps(m->d), dm = _mm512_load_ps(m->dm);
    for (int t = 0; t < 16; t++) {
        const sl_q8kb *y = yt + (size_t)t * ldy + b;
        __m512 yd = _mm512_set1_ps(y->d), term;
        __m512i a = _mm512_setzero_si512();
        if (q4) {   /* a: mins . bsums; e: scales . bsums, the +8 the centred codes took off */
            __m512i e = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++) {
                __m512i bs = pair16(y->bsums[4 * p] + y->bsums[4 * p + 1], y->bsums[4 * p + 2] + y->bsums[4 * p + 3]);
                a = _mm512_dpwssd_epi32(a, _mm512_load_si512((const void *)m->pr[p]), bs);
                e = _mm512_dpwssd_epi32(e, _mm512_load_si512((const void *)m->pr[4 + p]), bs);
            }
            __m512i sumi = _mm512_add_epi32(isum[t], _mm512_slli_epi32(e, 3));
            term = _mm512_mul_ps(yd, _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi)),
                                                   _mm512_mul_ps(dm, _mm512_cvtepi32_ps(a))));
        } else {
            for (int p = 0; p < 8; p++)
                a = _mm512_dpwssd_epi32(a, _mm512_load_si512((const void *)m->pr[p]), pair16(y->bsums[2 * p], y->bsums[2 * p + 1]));
            term = _mm512_mul_ps(_mm512_mul_ps(d, yd), _mm512_cvtepi32_ps(_mm512_sub_epi32(isum[t], _mm512_slli_epi32(a, 5))));
        }
        _mm512_store_ps(facc + 16 * t, _mm512_add_ps(_mm512_load_ps(facc + 16 * t), term));
    }
}

T_AMX static void amx_k_gemm(int q4, const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt,
                             size_t nb, float *out, size_t ldo, void *scratch) {
    int8_t *bp = scratch;
    kmeta *km = (kmeta *)(void *)(bp + nb * 4096);
    int8_t *dec = (int8_t *)(km + nb);
    int32_t *cb = (int32_t *)(void *)(dec + 4096);
    float *facc = (float *)(cb + 512);
    tiles_on_k(q4 ? 32 : 16);
    for (int r0 = 0; r0 < nr; r0 += 16) {
        int pr = nr - r0 < 16 ? nr - r0 : 16;
        kpanel(q4, w + (size_t)r0 * ldw, ldw, pr, nb, bp, km, dec);
        MEM_BARRIER();
        for (int t0 = 0; t0 < nt; t0 += 16) {
            const sl_q8kb *yt = y + (size_t)t0 * ldy;
            memset(facc, 0, 256 * sizeof(float));
            for (size_t b = 0; b < nb; b++) k_block(q4, bp + b * 4096, km + b, yt, ldy, b, cb, facc);
            int tn = nt - t0 < 16 ? nt - t0 : 16;
            for (int t = 0; t < tn; t++)
                _mm512_mask_storeu_ps(out + (size_t)(t0 + t) * ldo + r0, (__mmask16)((1u << pr) - 1u),
                                      _mm512_load_ps(facc + 16 * t));
        }
    }
    _tile_release();
}
T_AMX static void amx_q4_k_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, size_t nb,
                                float *out, size_t ldo, void *scratch) {
    amx_k_gemm(1, w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch);
}
T_AMX static void amx_q6_k_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, size_t nb,
                                float *out, size_t ldo, void *scratch) {
    amx_k_gemm(0, w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch);
}

/* ---- the probe ---- */

static sigjmp_buf g_trial_jmp;
static void trial_fault(int sig) { siglongjmp(g_trial_jmp, sig); }

/* One 16 x 16 x 32 product against its integer sums: 1 right, 0 wrong. */
T_AMX static int trial_product(void) {
    _Alignas(64) int8_t a[16 * 32], b[8 * 64];
    _Alignas(64) int32_t c[256];
    for (int i = 0; i < 512; i++) a[i] = (int8_t)(i * 7 % 255 - 127), b[i] = (int8_t)(i * 13 % 251 - 125);
    tiles_on();
    _tile_loadd(2, a, 32);
    _tile_loadd(4, b, 64);
    _tile_zero(0);
    _tile_dpbssd(0, 2, 4);
    _tile_stored(0, c, 64);
    _tile_release();
    MEM_BARRIER();
    for (int t = 0; t < 16; t++)
        for (int r = 0; r < 16; r++) {
            int32_t s = 0;
            for (int k = 0; k < 32; k++) s += a[t * 32 + k] * b[(k / 4) * 64 + r * 4 + k % 4];
            if (s != c[t * 16 + r]) return 0;
        }
    return 1;
}

static const char *probe_amx(void) {
    const char *off = getenv("SILICA_NO_AMX");
    if (off && *off && strcmp(off, "0") != 0) return "off: SILICA_NO_AMX is set";
    const sl_cpu_features *c = sl_cpu();
    if (!c->amx_tile || !c->amx_int8) return "off: this CPU has no AMX-TILE / AMX-INT8";
    if (!c->avx512f || !c->avx512bw || !c->avx512vl || !c->avx512vnni) return "off: AMX needs the AVX-512 set too";
    if (!c->amx_os) return "off: the OS does not enable AMX tile state (XCR0)";
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) != 0)
        return "off: the kernel refused AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)";
    struct sigaction sa, old[3];
    const int sigs[3] = {SIGILL, SIGSEGV, SIGBUS};
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = trial_fault;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);
    volatile int ok = -1;
    if (sigsetjmp(g_trial_jmp, 1) == 0) ok = trial_product();
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
    if (ok < 0) return "off: a trial tile instruction faulted (the CPU reports AMX but does not run it)";
    if (!ok) return "off: a trial tile product gave wrong sums";
    return NULL;
}

static const char *g_why;
static sl_qd_kernels g_amx_set;
static void init_amx(void) {
    g_why = probe_amx();
    if (g_why) return;
    g_amx_set = sl_qd_avx512;
    g_amx_set.name = "amx";
    g_amx_set.q4_0 = amx_q4_0;
    g_amx_set.q8_0 = amx_q8_0;
    g_amx_set.q4_0_mm = g_amx_set.q8_0_mm = NULL;   /* the GEMM covers prompts; the dots the rest */
    g_amx_set.q4_0_prep = amx_q4_0_prep;
    g_amx_set.q8_0_prep = amx_q8_0_prep;
    g_amx_set.q4_0_rows = amx_q4_0_rows;
    g_amx_set.q8_0_rows = amx_q8_0_rows;
    g_amx_set.q4_0_rows_n = amx_q4_0_rows_n;
    g_amx_set.q8_0_rows_n = amx_q8_0_rows_n;
    g_amx_set.q4_0_gemm = amx_q4_0_gemm;
    g_amx_set.q8_0_gemm = amx_q8_0_gemm;
    g_amx_set.q4_k_gemm = amx_q4_k_gemm;
    g_amx_set.q6_k_gemm = amx_q6_k_gemm;
    g_amx_set.affine4_x24 = sl_amx_affine4_x24;   /* MLX affine: the order the tiles keep (qamx_affine_x86.c) */
    g_amx_set.affine8_x24 = sl_amx_affine8_x24;
    g_amx_set.affine4_x24_mm = sl_amx_affine4_x24_mm;   /* generation: the same dots, rows in pairs */
    g_amx_set.affine8_x24_mm = sl_amx_affine8_x24_mm;
    g_amx_set.affine4_x24_gemm = sl_amx_affine4_x24_gemm;
    g_amx_set.affine8_x24_gemm = sl_amx_affine8_x24_gemm;
    g_amx_set.affine_x24_tiles = sl_amx_x24_tiles;
    g_amx_set.affine_gemm_min = 0;   /* prompts only: its dots and rows pairs for fewer tokens */
    g_why = "in use: int8 tiles for GGUF Q4_0 / Q8_0 / Q4_K / Q6_K and MLX affine 4/8-bit prompts";
}

const sl_qd_kernels *sl_qd_amx(const char **why) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_amx);
    if (why) *why = g_why;
    return g_amx_set.name ? &g_amx_set : NULL;
}
#else
const sl_qd_kernels *sl_qd_amx(const char **why) {
    if (why) *why = "off: this build has no AMX kernels (x86-64 Linux, gcc >= 11 or clang >= 12)";
    return NULL;
}
#endif
#endif
