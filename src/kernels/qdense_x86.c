/*
 * qdense_x86.c — AVX-512 kernels for dense f32 / f16 / bf16 weights beyond
 * the one-row dot of qdot_x86.c (qdot.h sl_qd_dense_mm_fn, sl_qd_dense_rows_fn):
 *
 *  - the prompt GEMM: rows in panels of DM_R, columns in blocks of DM_KC.
 *    A panel's block is widened to f32 once into the thread's scratch (a
 *    few KB that stay in L1; never a copy of the whole weight), then every
 *    token of the chunk goes by it DM_T at a time in a DM_R x DM_T register
 *    tile of 16-lane accumulators.  The accumulators are saved to scratch
 *    at the end of a block and resumed at the next, so each (row, token)
 *    pair keeps one 16-lane chain over the columns in order, a masked last
 *    step and one _mm512_reduce_add_ps: the chain of qdot_x86.c's
 *    v512_dense_* dot.  The 4 x 4 tile it replaces read 4 whole rows and 4
 *    whole tokens (32 KB at 2048 columns) from L2 per call; here the 6
 *    rows' block sits in L1 while the tokens go by, and a token's 16 values
 *    read from L2 feed 6 rows.  (6 x 4 measured ahead of 8 x 3, 12 x 2, 5 x 5
 *    and a K-blocked 4 x 4 on one Sapphire Rapids core; part9/README.md.)
 *    The tokens come in place (x, ldx) or packed once per matmul for every
 *    thread (sl_qd_dense_pack_blocks: per chunk and block, the chunk's
 *    tokens back to back), the same values in the same order either way.
 *  - generation rows: 4 rows at once against one token, each row its
 *    own chain (the same dot's), so the chains' FMA latencies overlap and
 *    the token is loaded once per 4 rows.
 *
 * Invariant: out has the bits of v512_dense_f32 / f16 / bf16 for every
 * (row, token) pair whatever nr, nt, chunking and alignment (tested against
 * the one-token path in tests/unit/test_kernels.c); nothing is read past a
 * row's n values or a token's n values (masked loads), nothing written
 * outside out[t * ldo + r], r < nr, t < nt.
 */
#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)

#define DM_R 6       /* rows per panel and register tile */
#define DM_T 4       /* tokens per register tile (6 x 4 = 24 accumulators) */
#define DM_KC 512    /* columns per block: a panel's block is 12 KB of f32 */
#define DM_TC 60     /* most tokens per chunk (their accumulators: 22.5 KB) */
#define DM_XBYTES (1024 * 1024)   /* a chunk's f32 tokens stay in L2 */
_Static_assert(16 + DM_R * DM_KC + DM_TC * DM_R * 16 <= SL_QD_DENSE_MM_SCRATCH, "dense GEMM scratch");

/* 16 stored values (those in m; the rest +0, as the dot's masked loads give) as f32. */
T_512 static inline __attribute__((always_inline)) __m512 dm_ld(const uint8_t *p, sl_dtype dt, __mmask16 m) {
    if (dt == SL_F32) return _mm512_maskz_loadu_ps(m, (const float *)(const void *)p);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const void *)p);
    if (dt == SL_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Columns [c0, c0 + cn) of nr rows as f32, row i at pan + i * DM_KC, padded
 * with +0 to whole 16-lane steps. */
T_512 static inline __attribute__((always_inline)) void dm_pack_dt(const uint8_t *w, size_t ldw, sl_dtype dt, int nr,
                                                                   size_t c0, size_t cn, float *pan) {
    size_t es = dt == SL_F32 ? 4 : 2;
    for (int i = 0; i < nr; i++) {
        const uint8_t *p = w + (size_t)i * ldw + es * c0;
        float *q = pan + (size_t)i * DM_KC;
        size_t c = 0;
        for (; c + 16 <= cn; c += 16) _mm512_store_ps(q + c, dm_ld(p + es * c, dt, 0xffff));
        if (c < cn) _mm512_store_ps(q + c, dm_ld(p + es * c, dt, (__mmask16)((1u << (cn - c)) - 1u)));
    }
}

T_512 static void dm_pack(const uint8_t *w, size_t ldw, sl_dtype dt, int nr, size_t c0, size_t cn, float *pan) {
    if (dt == SL_F32) dm_pack_dt(w, ldw, SL_F32, nr, c0, cn, pan);
    else if (dt == SL_F16) dm_pack_dt(w, ldw, SL_F16, nr, c0, cn, pan);
    else dm_pack_dt(w, ldw, SL_BF16, nr, c0, cn, pan);
}

/* One register tile: NR rows of the panel x NT tokens (token j at
 * x + j * ldx, already offset to the block), steps whole 16-lane steps and
 * a last masked one when tm != 0; accumulators at acc + (j * DM_R + i) * 16,
 * zero when first. */
#define DM_TILE(NR, NT)                                                                                \
    T_512 static void dm_tile_##NR##_##NT(const float *pan, const float *x, size_t ldx, size_t steps,   \
                                          __mmask16 tm, float *acc, int first) {                        \
        __m512 a[NR][NT];                                                                             \
        for (int i = 0; i < NR; i++)                                                                  \
            for (int j = 0; j < NT; j++)                                                              \
                a[i][j] = first ? _mm512_setzero_ps() : _mm512_load_ps(acc + (j * DM_R + i) * 16);     \
        for (size_t s = 0; s < steps; s++) {                                                          \
            __m512 xv[NT];                                                                            \
            for (int j = 0; j < NT; j++) xv[j] = _mm512_loadu_ps(x + (size_t)j * ldx + 16 * s);       \
            for (int i = 0; i < NR; i++) {                                                            \
                __m512 wv = _mm512_load_ps(pan + (size_t)i * DM_KC + 16 * s);                         \
                for (int j = 0; j < NT; j++) a[i][j] = _mm512_fmadd_ps(wv, xv[j], a[i][j]);           \
            }                                                                                         \
        }                                                                                             \
        if (tm) {                                                                                     \
            __m512 xv[NT];                                                                            \
            for (int j = 0; j < NT; j++) xv[j] = _mm512_maskz_loadu_ps(tm, x + (size_t)j * ldx + 16 * steps); \
            for (int i = 0; i < NR; i++) {                                                            \
                __m512 wv = _mm512_load_ps(pan + (size_t)i * DM_KC + 16 * steps);                     \
                for (int j = 0; j < NT; j++) a[i][j] = _mm512_fmadd_ps(wv, xv[j], a[i][j]);           \
            }                                                                                         \
        }                                                                                             \
        for (int i = 0; i < NR; i++)                                                                  \
            for (int j = 0; j < NT; j++) _mm512_store_ps(acc + (j * DM_R + i) * 16, a[i][j]);          \
    }
#define DM_TILES(NR) DM_TILE(NR, 1) DM_TILE(NR, 2) DM_TILE(NR, 3) DM_TILE(NR, 4)
DM_TILES(1) DM_TILES(2) DM_TILES(3) DM_TILES(4) DM_TILES(5) DM_TILES(6)

typedef void (*dm_tile_fn)(const float *pan, const float *x, size_t ldx, size_t steps, __mmask16 tm, float *acc,
                           int first);
#define DM_ROW(NR) {dm_tile_##NR##_1, dm_tile_##NR##_2, dm_tile_##NR##_3, dm_tile_##NR##_4}
static const dm_tile_fn dm_tiles[DM_R][DM_T] = {DM_ROW(1), DM_ROW(2), DM_ROW(3), DM_ROW(4), DM_ROW(5), DM_ROW(6)};

static int dm_chunk(size_t n) { return sl_qd_dense_chunk(n, DM_XBYTES, DM_T, DM_TC); }

/* The packed tokens: qdot.h sl_qd_dense_pack_blocks with DM_KC blocks. */
T_512 void sl_v512_dense_pack(const float *x, size_t ldx, size_t n, int nt, int t0, int t1, float *xp) {
    sl_qd_dense_pack_blocks(x, ldx, n, nt, t0, t1, xp, dm_chunk(n), DM_KC);
}

T_512 void sl_v512_dense_mm(const uint8_t *w, size_t ldw, sl_dtype dt, int nr, const float *x, size_t ldx,
                            const float *xp, int nt, size_t n, float *out, size_t ldo, float *scratch) {
    float *pan = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *acc = pan + DM_R * DM_KC;
    int tc = dm_chunk(n);
    for (int t0 = 0; t0 < nt; t0 += tc) {
        int tn = nt - t0 < tc ? nt - t0 : tc;
        for (int r0 = 0; r0 < nr; r0 += DM_R) {
            int rn = nr - r0 < DM_R ? nr - r0 : DM_R;
            const uint8_t *wr = w + (size_t)r0 * ldw;
            for (size_t c0 = 0; c0 < n || c0 == 0; c0 += DM_KC) {
                size_t cn = n - c0 < DM_KC ? n - c0 : DM_KC;
                __mmask16 tm = (__mmask16)(cn % 16 ? (1u << (cn % 16)) - 1u : 0u);
                /* the chunk's tokens in this block: packed runs, or the rows in place */
                const float *xb = xp ? xp + (size_t)t0 * n + c0 * (size_t)tn : x + (size_t)t0 * ldx + c0;
                size_t ldb = xp ? cn : ldx;
                dm_pack(wr, ldw, dt, rn, c0, cn, pan);
                for (int t = 0; t < tn; t += DM_T) {
                    int tt = tn - t < DM_T ? tn - t : DM_T;
                    dm_tiles[rn - 1][tt - 1](pan, xb + (size_t)t * ldb, ldb, cn / 16, tm, acc + (size_t)t * DM_R * 16,
                                             c0 == 0);
                }
                if (cn < DM_KC) break;
            }
            for (int t = 0; t < tn; t++)
                for (int i = 0; i < rn; i++)
                    out[(size_t)(t0 + t) * ldo + (size_t)(r0 + i)] = _mm512_reduce_add_ps(_mm512_load_ps(acc + ((size_t)t * DM_R + (size_t)i) * 16));
        }
    }
}

/* Generation: NR rows (row i at w + i * ldw) of type DT . x, each its own chain. */
#define DM_ROWS_N(NR, DT, SUF)                                                                         \
    T_512 static void dm_rows_##NR##_##SUF(const uint8_t *w, size_t ldw, const float *x, size_t n, float *out) { \
        size_t es = DT == SL_F32 ? 4 : 2, i = 0;                                                       \
        __m512 a[NR];                                                                                  \
        for (int r = 0; r < NR; r++) a[r] = _mm512_setzero_ps();                                      \
        for (; i + 16 <= n; i += 16) {                                                                 \
            __m512 xv = _mm512_loadu_ps(x + i);                                                        \
            for (int r = 0; r < NR; r++) a[r] = _mm512_fmadd_ps(dm_ld(w + (size_t)r * ldw + es * i, DT, 0xffff), xv, a[r]); \
        }                                                                                              \
        if (i < n) {                                                                                   \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                           \
            __m512 xv = _mm512_maskz_loadu_ps(m, x + i);                                               \
            for (int r = 0; r < NR; r++) a[r] = _mm512_fmadd_ps(dm_ld(w + (size_t)r * ldw + es * i, DT, m), xv, a[r]); \
        }                                                                                              \
        for (int r = 0; r < NR; r++) out[r] = _mm512_reduce_add_ps(a[r]);                            \
    }
#define DM_ROWS_DT(DT, SUF)                                                                            \
    DM_ROWS_N(1, DT, SUF)                                                                              \
    DM_ROWS_N(4, DT, SUF)                                                                              \
    T_512 static void dm_rows_##SUF(const uint8_t *w, size_t ldw, size_t nr, const float *x, size_t n, float *out) { \
        size_t r = 0;                                                                                  \
        for (; r + 4 <= nr; r += 4) dm_rows_4_##SUF(w + r * ldw, ldw, x, n, out + r);                  \
        for (; r < nr; r++) dm_rows_1_##SUF(w + r * ldw, ldw, x, n, out + r);                          \
    }
DM_ROWS_DT(SL_F32, f32)
DM_ROWS_DT(SL_F16, f16)
DM_ROWS_DT(SL_BF16, bf16)

T_512 void sl_v512_dense_rows(const uint8_t *w, size_t ldw, sl_dtype dt, size_t nr, const float *x, size_t n,
                              float *out) {
    if (dt == SL_F32) dm_rows_f32(w, ldw, nr, x, n, out);
    else if (dt == SL_F16) dm_rows_f16(w, ldw, nr, x, n, out);
    else dm_rows_bf16(w, ldw, nr, x, n, out);
}

#endif
