/*
 * qdense_neon.c — arm64 Advanced SIMD kernels for dense f32 / f16 / bf16
 * weights (qdot.h sl_qd_dense_fn, sl_qd_dense_mm_fn, sl_qd_dense_pack_fn,
 * sl_qd_dense_rows_fn), the NEON counterpart of qdense_x86.c:
 *
 *  - the one-row dot and the generation rows come from one macro: NR rows
 *    against one token, each row its own chain (qdot_neon.h), the token's
 *    8 values loaded once per step for all NR; the dot is NR = 1, the rows
 *    kernel takes 4 rows per pass (8 chains in flight) and the rest 1 by 1.
 *  - the prompt GEMM: rows in panels of DN_R, columns in blocks of DN_KC.
 *    A panel's block is widened to f32 once into the thread's scratch
 *    (8 KB, stays in L1), then every token of the chunk goes by it DN_T at
 *    a time in a DN_R x DN_T register tile.  Each (row, token) pair has the
 *    dot's two f32x4 chains (a0 over lanes 0..3 of every 8-column step, a1
 *    over lanes 4..7), which meet only in the final add: a tile runs the
 *    block's a0 chains, then its a1 chains, 16 accumulators + 4 row + 4
 *    token vectors of the 32 registers (a 4 x 3 tile holding both chains,
 *    24 accumulators, spilled under gcc), 8 loads per 16 FMAs.  The
 *    accumulators are saved to scratch at the end of a block and resumed at
 *    the next, so each chain sees the columns in order (DN_KC is a multiple
 *    of 8: blocks split no step), the zero-padded last step and the same
 *    vaddvq_f32(a0 + a1).  Tokens come in place (x, ldx) or packed once per
 *    matmul (sl_qd_dense_pack_blocks, the x86 GEMM's form with this file's
 *    block and chunk sizes).
 *
 * Invariant: out has the bits of sl_neon_dense_f32 / f16 / bf16 for every
 * (row, token) pair whatever nr, nt, chunking and alignment (tested in
 * tests/unit/test_kernels.c under qemu-aarch64); nothing is read past a
 * row's or a token's n values (tails copied to zero-padded stack buffers),
 * nothing written outside out[t * ldo + r], r < nr, t < nt.
 */
#include "kernels/qdot_neon.h"

#if defined(SL_QD_NEON)
#include <string.h>

#define DN_R 4       /* rows per panel and register tile */
#define DN_T 4       /* tokens per register tile (4 x 4 pairs, one chain of each at a time) */
#define DN_KC 512    /* columns per block (a multiple of 8): a panel's block is 8 KB of f32 */
#define DN_TC 60     /* most tokens per chunk (a multiple of DN_T; accumulators 7.5 KB) */
#define DN_XBYTES (1024 * 1024)   /* a chunk's f32 tokens stay in L2 */
_Static_assert(DN_KC % 8 == 0 && DN_TC % DN_T == 0, "dense GEMM blocks");
_Static_assert(16 + DN_R * DN_KC + DN_TC * DN_R * 8 <= SL_QD_DENSE_MM_SCRATCH, "dense GEMM scratch");

/* ---- one token: NR rows (row r at w + r * ldw) of ES-byte values . x ---- */
#define DN_ROWS(NR, SUF, ES, LD)                                                                  \
    static inline void dn_rows_##NR##_##SUF(const uint8_t *w, size_t ldw, const float *x, size_t n, float *out) { \
        float32x4_t a0[NR], a1[NR], wa, wb;                                                       \
        for (int r = 0; r < NR; r++) a0[r] = a1[r] = vdupq_n_f32(0.0f);                           \
        size_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) {                                                              \
            float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);                         \
            for (int r = 0; r < NR; r++) {                                                        \
                LD(w + (size_t)r * ldw + ES * i, &wa, &wb);                                       \
                a0[r] = vfmaq_f32(a0[r], wa, x0);                                                 \
                a1[r] = vfmaq_f32(a1[r], wb, x1);                                                 \
            }                                                                                     \
        }                                                                                         \
        if (i < n) {   /* the tails copied first: the chains' loop below unrolls (no spills) */  \
            float tx[8] = {0};                                                                    \
            uint8_t tw[NR][8 * 4] = {{0}};                                                        \
            memcpy(tx, x + i, 4 * (n - i));                                                       \
            for (int r = 0; r < NR; r++) memcpy(tw[r], w + (size_t)r * ldw + ES * i, ES * (n - i)); \
            float32x4_t x0 = vld1q_f32(tx), x1 = vld1q_f32(tx + 4);                               \
            for (int r = 0; r < NR; r++) {                                                        \
                LD(tw[r], &wa, &wb);                                                              \
                a0[r] = vfmaq_f32(a0[r], wa, x0);                                                 \
                a1[r] = vfmaq_f32(a1[r], wb, x1);                                                 \
            }                                                                                     \
        }                                                                                         \
        for (int r = 0; r < NR; r++) out[r] = vaddvq_f32(vaddq_f32(a0[r], a1[r]));               \
    }
#define DN_DT(SUF, ES, LD)                                                                        \
    DN_ROWS(1, SUF, ES, LD)                                                                       \
    DN_ROWS(4, SUF, ES, LD)                                                                       \
    float sl_neon_dense_##SUF(const uint8_t *w, const float *x, size_t n) {                       \
        float o;                                                                                  \
        dn_rows_1_##SUF(w, 0, x, n, &o);                                                          \
        return o;                                                                                 \
    }                                                                                             \
    static void dn_rows_##SUF(const uint8_t *w, size_t ldw, size_t nr, const float *x, size_t n, float *out) { \
        size_t r = 0;                                                                             \
        for (; r + 4 <= nr; r += 4) dn_rows_4_##SUF(w + r * ldw, ldw, x, n, out + r);             \
        for (; r < nr; r++) dn_rows_1_##SUF(w + r * ldw, ldw, x, n, out + r);                     \
    }                                                                                             \
    /* columns [c0, c0 + cn) of nr rows as f32 (row i at pan + i * DN_KC), +0 to whole steps */   \
    static void dn_pack_##SUF(const uint8_t *w, size_t ldw, int nr, size_t c0, size_t cn, float *pan) { \
        float32x4_t wa, wb;                                                                       \
        for (int i = 0; i < nr; i++) {                                                            \
            const uint8_t *p = w + (size_t)i * ldw + ES * c0;                                     \
            float *q = pan + (size_t)i * DN_KC;                                                   \
            size_t c = 0;                                                                         \
            for (; c + 8 <= cn; c += 8) {                                                         \
                LD(p + ES * c, &wa, &wb);                                                         \
                vst1q_f32(q + c, wa);                                                             \
                vst1q_f32(q + c + 4, wb);                                                         \
            }                                                                                     \
            if (c < cn) {                                                                         \
                uint8_t tw[8 * 4] = {0};                                                          \
                memcpy(tw, p + ES * c, ES * (cn - c));                                            \
                LD(tw, &wa, &wb);                                                                 \
                vst1q_f32(q + c, wa);                                                             \
                vst1q_f32(q + c + 4, wb);                                                         \
            }                                                                                     \
        }                                                                                         \
    }
DN_DT(f32, 4, ld8_f32)
DN_DT(f16, 2, ld8_f16)
DN_DT(bf16, 2, ld8_bf16)

void sl_neon_dense_rows(const uint8_t *w, size_t ldw, sl_dtype dt, size_t nr, const float *x, size_t n, float *out) {
    if (dt == SL_F32) dn_rows_f32(w, ldw, nr, x, n, out);
    else if (dt == SL_F16) dn_rows_f16(w, ldw, nr, x, n, out);
    else dn_rows_bf16(w, ldw, nr, x, n, out);
}

/* ---- prompts: the K-blocked GEMM ---- */

/* Lanes 4h..4h+3 of one 8-column step (h: the offset already in PAN and
 * XS) for the tile's pairs: row vectors from the panel, token vectors from
 * XS (token j at XS + j * LDX). */
#define DN_HALF(NR, NT, PAN, XS, LDX)                                                             \
    do {                                                                                          \
        float32x4_t xv[NT];                                                                       \
        for (int j = 0; j < NT; j++) xv[j] = vld1q_f32((XS) + (size_t)j * (LDX));                 \
        for (int i = 0; i < NR; i++) {                                                            \
            float32x4_t wv = vld1q_f32((PAN) + (size_t)i * DN_KC);                                \
            for (int j = 0; j < NT; j++) a[i][j] = vfmaq_f32(a[i][j], wv, xv[j]);                 \
        }                                                                                         \
    } while (0)

/* One register tile: NR rows of the panel x NT tokens (token j at
 * x + j * ldx, already offset to the block), steps whole 8-column steps and
 * a last one of tail (< 8) columns when tail != 0.  The pair (i, j)'s two
 * chains (a0: lanes 0..3 of each step, a1: lanes 4..7) live at
 * acc + (j * DN_R + i) * 8 + 4 * h, zero when first.  The chains of one
 * pair never meet before the final add, so the block runs in two passes, a0
 * then a1, each over NR x NT accumulators (4 x 4: 16 chains, 16 + 4 + 4 of
 * the 32 registers): each chain sees its FMAs in column order either way. */
#define DN_TILE(NR, NT)                                                                           \
    static void dn_tile_##NR##_##NT(const float *pan, const float *x, size_t ldx, size_t steps, size_t tail, \
                                    float *acc, int first) {                                      \
        float tx[NT * 8] = {0};   /* the tail's tokens, zero-padded */                            \
        for (int j = 0; tail && j < NT; j++) memcpy(tx + 8 * j, x + (size_t)j * ldx + 8 * steps, 4 * tail); \
        for (int h = 0; h < 2; h++) {                                                             \
            float32x4_t a[NR][NT];                                                                \
            for (int i = 0; i < NR; i++)                                                          \
                for (int j = 0; j < NT; j++)                                                      \
                    a[i][j] = first ? vdupq_n_f32(0.0f) : vld1q_f32(acc + (j * DN_R + i) * 8 + 4 * h); \
            for (size_t s = 0; s < steps; s++) DN_HALF(NR, NT, pan + 8 * s + 4 * h, x + 8 * s + 4 * h, ldx); \
            if (tail) DN_HALF(NR, NT, pan + 8 * steps + 4 * h, tx + 4 * h, 8);                    \
            for (int i = 0; i < NR; i++)                                                          \
                for (int j = 0; j < NT; j++) vst1q_f32(acc + (j * DN_R + i) * 8 + 4 * h, a[i][j]); \
        }                                                                                         \
    }
#define DN_TILES(NR) DN_TILE(NR, 1) DN_TILE(NR, 2) DN_TILE(NR, 3) DN_TILE(NR, 4)
DN_TILES(1) DN_TILES(2) DN_TILES(3) DN_TILES(4)

typedef void (*dn_tile_fn)(const float *pan, const float *x, size_t ldx, size_t steps, size_t tail, float *acc,
                           int first);
#define DN_ROW(NR) {dn_tile_##NR##_1, dn_tile_##NR##_2, dn_tile_##NR##_3, dn_tile_##NR##_4}
static const dn_tile_fn dn_tiles[DN_R][DN_T] = {DN_ROW(1), DN_ROW(2), DN_ROW(3), DN_ROW(4)};

static int dn_chunk(size_t n) { return sl_qd_dense_chunk(n, DN_XBYTES, DN_T, DN_TC); }

void sl_neon_dense_pack(const float *x, size_t ldx, size_t n, int nt, int t0, int t1, float *xp) {
    sl_qd_dense_pack_blocks(x, ldx, n, nt, t0, t1, xp, dn_chunk(n), DN_KC);
}

void sl_neon_dense_mm(const uint8_t *w, size_t ldw, sl_dtype dt, int nr, const float *x, size_t ldx, const float *xp,
                      int nt, size_t n, float *out, size_t ldo, float *scratch) {
    float *pan = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *acc = pan + DN_R * DN_KC;
    void (*pack)(const uint8_t *, size_t, int, size_t, size_t, float *) =
        dt == SL_F32 ? dn_pack_f32 : dt == SL_F16 ? dn_pack_f16 : dn_pack_bf16;
    int tc = dn_chunk(n);
    for (int t0 = 0; t0 < nt; t0 += tc) {
        int tn = nt - t0 < tc ? nt - t0 : tc;
        for (int r0 = 0; r0 < nr; r0 += DN_R) {
            int rn = nr - r0 < DN_R ? nr - r0 : DN_R;
            for (size_t c0 = 0; c0 < n || c0 == 0; c0 += DN_KC) {
                size_t cn = n - c0 < DN_KC ? n - c0 : DN_KC;
                /* the chunk's tokens in this block: packed runs, or the rows in place */
                const float *xb = xp ? xp + (size_t)t0 * n + c0 * (size_t)tn : x + (size_t)t0 * ldx + c0;
                size_t ldb = xp ? cn : ldx;
                pack(w + (size_t)r0 * ldw, ldw, rn, c0, cn, pan);
                for (int t = 0; t < tn; t += DN_T) {
                    int tt = tn - t < DN_T ? tn - t : DN_T;
                    dn_tiles[rn - 1][tt - 1](pan, xb + (size_t)t * ldb, ldb, cn / 8, cn % 8, acc + (size_t)t * DN_R * 8,
                                             c0 == 0);
                }
                if (cn < DN_KC) break;
            }
            for (int t = 0; t < tn; t++)
                for (int i = 0; i < rn; i++) {
                    const float *p = acc + ((size_t)t * DN_R + (size_t)i) * 8;
                    out[(size_t)(t0 + t) * ldo + (size_t)(r0 + i)] = vaddvq_f32(vaddq_f32(vld1q_f32(p), vld1q_f32(p + 4)));
                }
        }
    }
}

#endif
