/*
 * qk_x86.c — AVX-512 (BW/VL + VNNI) GEMM tiles for the GGUF K-quants Q4_K and
 * Q6_K (qdot.h's sl_qd_q8k_mm_fn): prompts take 4 weight rows x 4 tokens per
 * register tile instead of one (row, token) dot at a time.
 *
 * A 256-element block of 4 rows is decoded once per 64 tokens (16 tiles,
 * whose f32 sums advance block by block together): its codes become
 * four 64-byte vectors in the activations' element order (Q4_K: the low and
 * high nibbles of 32 code bytes; Q6_K: 4 low bits from ql, 2 high from qh)
 * and its sub-block scales four vectors of 16-bit lanes (one scale per 32 or
 * 16 elements).  Each token then costs, per 64 elements, one vpmaddubsw
 * (unsigned codes x signed activations -> 16-bit pairs: |pair| <= 2 * 63 *
 * 128 = 16128, no saturation) and one vpdpwssd (pairs x scales into 32-bit
 * lanes).  The 16 accumulators of a tile are summed lane-wise by one
 * transpose-and-add tree into one vector whose lane 4r + t is (row r,
 * token t); the min / offset terms (sum of scale x bsum over the block's
 * sub-blocks) come from four or eight more vpdpwssd on permuted scales and
 * bsums, lane for lane.
 *
 * Invariant: bit for bit the portable dot (qdot.c p_q4_k / p_q6_k), for any
 * rows and tokens.  Integer block sums are exact in any order (|sum| < 2^31:
 * 256 * 63 * 128 * 63 for Q6_K); the f32 block update is the dot's own
 * expression, evaluated lane-wise with the same operations in the same order
 * (no FMA: the build has -ffp-contract=off), blocks in order.  Tiles with
 * fewer than 4 rows or tokens repeat row 0 / token 0 in the empty places and
 * drop their results.
 */
#include "kernels/qk_x86.h"

#if defined(SL_QD_X86)

/* lane i = 4r + t: the transpose-and-add tree below leaves hsum(acc[i]) in lane i. */
T_512 static inline __m512i pair_sum32(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
T_512 static inline __m512i pair_sum64(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}
T_512 static inline __m512i pair_sum128(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
T_512 static inline __m512i reduce16(const __m512i *acc) {
    __m512i z[4];
    for (int k = 0; k < 4; k++)   /* 128-bit lane q of z[k]: partial sums of acc[4k .. 4k+3] */
        z[k] = pair_sum64(pair_sum32(acc[4 * k], acc[4 * k + 1]), pair_sum32(acc[4 * k + 2], acc[4 * k + 3]));
    return pair_sum128(pair_sum128(z[0], z[1]), pair_sum128(z[2], z[3]));
}

/* Lane 4r + t: sum over the 16 pairs j of s16[r][j] * b16[t][j], where s16 are
 * the 4 rows' 16 scales (16-bit, rows 0-1 in s01, 2-3 in s23) and b16 the 4
 * tokens' 16 bsums (t01, t23): 8 vpdpwssd, each taking pair p (32-bit element
 * p of a row or token) for every lane. */
T_512 static inline __m512i scale_bsum16(__m512i s01, __m512i s23, __m512i t01, __m512i t23) {
    const __m512i rsel = _mm512_set_epi32(24, 24, 24, 24, 16, 16, 16, 16, 8, 8, 8, 8, 0, 0, 0, 0);
    const __m512i tsel = _mm512_set_epi32(24, 16, 8, 0, 24, 16, 8, 0, 24, 16, 8, 0, 24, 16, 8, 0);
    __m512i acc = _mm512_setzero_si512();
    for (int p = 0; p < 8; p++) {
        const __m512i pv = _mm512_set1_epi32(p);
        __m512i a = _mm512_permutex2var_epi32(s01, _mm512_add_epi32(rsel, pv), s23);
        __m512i b = _mm512_permutex2var_epi32(t01, _mm512_add_epi32(tsel, pv), t23);
        acc = _mm512_dpwssd_epi32(acc, a, b);
    }
    return acc;
}

T_512 static inline __m512i bsums2(const sl_q8kb *a, const sl_q8kb *b) {
    return join256(_mm256_loadu_si256((const __m256i *)(const void *)a->bsums),
                   _mm256_loadu_si256((const __m256i *)(const void *)b->bsums));
}
/* The tile's per-lane f32 factors: lane 4r + t takes row r's v[r] or token t's v[t]. */
T_512 static inline __m512 by_row(const float *v) {
    return _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(_mm_loadu_ps(v)));
}
T_512 static inline __m512 by_token(const float *v) {
    return _mm512_broadcast_f32x4(_mm_loadu_ps(v));
}

/* 16 accumulators (row r, token t at 4r + t) += codes . activations of one
 * row's decoded block (c[k]: 64 codes, s[k]: their 16-bit scales) for the 4 tokens. */
T_512 static inline void dot_row(__m512i *acc, const __m512i *c, const __m512i *s, const sl_q8kb *const *yb) {
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < 4; k++) {
            __m512i y = _mm512_loadu_si512((const void *)(yb[t]->qs + 64 * k));
            acc[t] = _mm512_dpwssd_epi32(acc[t], _mm512_maddubs_epi16(c[k], y), s[k]);
        }
}

/* ---- Q4_K: 144-byte blocks: d, dmin (f16), 12 bytes of 6-bit scales and
 * mins, 128 code bytes (32 per 64 elements: low nibbles first) ---- */

/* One Q4_K block: its 256 codes as four 64-byte vectors in the activations'
 * order (per 32 code bytes: low nibbles, then high ones), their 16-bit
 * sub-block scales, and the 16 16-bit lanes m0 m0 m1 m1 .. m7 m7 (the mins,
 * each paired with the two bsums of its 32 values). */
T_512 static inline __m256i q4_k_decode(const uint8_t *w, __m512i *c, __m512i *s) {
    __m128i sm = q4_k_scales_mins(w + 4);
    __m512i s16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sm));   /* scales 0-7, mins 8-15 */
    q4_k_codes(w, c);
    for (int k = 0; k < 4; k++) s[k] = _mm512_permutexvar_epi16(halves16((short)(2 * k), (short)(2 * k + 1)), s16);
    return _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
}

/* The tile's 16 results (lane 4r + t) to out, the filled places only. */
T_512 static inline void tile_store(__m512 acc, float *out, size_t ldo, int nr, int nt) {
    float o[16];
    _mm512_storeu_ps(o, acc);
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) out[(size_t)t * ldo + (size_t)r] = o[4 * r + t];
}

/* ---- Q6_K: 210-byte blocks: ql[128] (low 4 bits), qh[64] (high 2 bits),
 * 16 signed 8-bit scales (one per 16 elements), d (f16); value = code - 32 ---- */

/* 64 elements k = 4 groups of 16: the 16-bit lanes of scales 4k .. 4k+3, 8 lanes each. */
T_512 static inline __m512i q6_k_scale_idx(int k) {
    short g = (short)(4 * k);
    return _mm512_set_epi16(g + 3, g + 3, g + 3, g + 3, g + 3, g + 3, g + 3, g + 3, g + 2, g + 2, g + 2, g + 2, g + 2,
                            g + 2, g + 2, g + 2, g + 1, g + 1, g + 1, g + 1, g + 1, g + 1, g + 1, g + 1, g, g, g, g,
                            g, g, g, g);
}

/* One Q6_K block: its 256 codes (0..63) as four 64-byte vectors in the
 * activations' order, their 16-bit scales (one per 16 values); returns the
 * 16 scales as 16-bit lanes. */
T_512 static inline __m256i q6_k_decode(const uint8_t *w, __m512i *c, __m512i *s) {
    __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 192)));
    q6_k_codes(w, c);
    for (int k = 0; k < 4; k++) s[k] = _mm512_permutexvar_epi16(q6_k_scale_idx(k), _mm512_castsi256_si512(s16));
    return s16;
}

/* ---- the GEMM: rows x tokens ----
 * Four rows' block b is decoded once (k_dec, in L1) and multiplied by every
 * 4-token tile of up to K_GROUP_TILES tiles, whose f32 sums (one vector per
 * tile, lane 4r + t) stay in acc[]: the tiles advance block by block
 * together, so each output still adds its block terms in block order. */
typedef struct {
    __m512i c[4][4], s[4][4];   /* row r: codes and 16-bit scales, 64 elements per vector */
    __m256i sm[4];              /* Q4_K: the mins (m0 m0 m1 m1 ...); Q6_K: the 16 scales */
    float d[4], dm[4];
} k_dec;

T_512 static inline void k_decode4(int q4, const uint8_t *const *wr, size_t b, k_dec *kd) {
    for (int r = 0; r < 4; r++) {
        if (q4) {
            const uint8_t *w = wr[r] + b * 144;
            kd->d[r] = f16s(w);
            kd->dm[r] = f16s(w + 2);
            kd->sm[r] = q4_k_decode(w, kd->c[r], kd->s[r]);
        } else {
            const uint8_t *w = wr[r] + b * 210;
            kd->d[r] = f16s(w + 208);
            kd->sm[r] = q6_k_decode(w, kd->c[r], kd->s[r]);
        }
    }
}

/* One decoded block of the 4 rows times block b of 4 tokens: the f32 term of
 * each (row, token) lane, formed as the portable dot forms it.
 * Q4_K: y.d * (d * sumi - dmin * (mins . bsums));
 * Q6_K: (d * y.d) * (sumi - 32 * (scales . bsums)). */
T_512 static inline __m512 k_term(int q4, const k_dec *kd, const sl_q8kb *const *yb) {
    __m512i iacc[16];
    for (int i = 0; i < 16; i++) iacc[i] = _mm512_setzero_si512();
    for (int r = 0; r < 4; r++) dot_row(iacc + 4 * r, kd->c[r], kd->s[r], yb);
    __m512i corr = scale_bsum16(join256(kd->sm[0], kd->sm[1]), join256(kd->sm[2], kd->sm[3]), bsums2(yb[0], yb[1]),
                                bsums2(yb[2], yb[3]));
    float yd[4];
    for (int t = 0; t < 4; t++) yd[t] = yb[t]->d;
    if (q4) {
        __m512 x = _mm512_sub_ps(_mm512_mul_ps(by_row(kd->d), _mm512_cvtepi32_ps(reduce16(iacc))),
                                 _mm512_mul_ps(by_row(kd->dm), _mm512_cvtepi32_ps(corr)));
        return _mm512_mul_ps(by_token(yd), x);
    }
    __m512i sumi = _mm512_sub_epi32(reduce16(iacc), _mm512_slli_epi32(corr, 5));
    return _mm512_mul_ps(_mm512_mul_ps(by_row(kd->d), by_token(yd)), _mm512_cvtepi32_ps(sumi));
}

#define K_GROUP_TILES 16   /* 4-token tiles per decode of a block: 64 tokens */

/* Rows x tokens in 4 x 4 tiles; the last tiles repeat row / token 0 of the
 * tile in their empty places (their results are dropped). */
T_512 static void k_mm(int q4, const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, size_t nb,
                       float *out, size_t ldo) {
    k_dec kd;
    for (int r0 = 0; r0 < nr; r0 += 4) {
        int rn = nr - r0 < 4 ? nr - r0 : 4;
        const uint8_t *wr[4];
        for (int i = 0; i < 4; i++) wr[i] = w + (size_t)(r0 + (i < rn ? i : 0)) * ldw;
        for (int g0 = 0; g0 < nt; g0 += 4 * K_GROUP_TILES) {
            int gn = nt - g0 < 4 * K_GROUP_TILES ? nt - g0 : 4 * K_GROUP_TILES, ntl = (gn + 3) / 4;
            const sl_q8kb *yr[K_GROUP_TILES][4];
            __m512 acc[K_GROUP_TILES];
            for (int tl = 0; tl < ntl; tl++) {
                int tn = gn - 4 * tl < 4 ? gn - 4 * tl : 4;
                for (int i = 0; i < 4; i++) yr[tl][i] = y + (size_t)(g0 + 4 * tl + (i < tn ? i : 0)) * ldy;
                acc[tl] = _mm512_setzero_ps();
            }
            for (size_t b = 0; b < nb; b++) {
                k_decode4(q4, wr, b, &kd);
                for (int tl = 0; tl < ntl; tl++) {
                    const sl_q8kb *yb[4];
                    for (int i = 0; i < 4; i++) yb[i] = yr[tl][i] + b;
                    acc[tl] = _mm512_add_ps(acc[tl], k_term(q4, &kd, yb));
                }
            }
            for (int tl = 0; tl < ntl; tl++) {
                int t0 = g0 + 4 * tl, tn = nt - t0 < 4 ? nt - t0 : 4;
                tile_store(acc[tl], out + (size_t)t0 * ldo + (size_t)r0, ldo, rn, tn);
            }
        }
    }
}

void sl_v512_q4_k_mm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, size_t nb,
                     float *out, size_t ldo) {
    k_mm(1, w, ldw, nr, y, ldy, nt, nb, out, ldo);
}
void sl_v512_q6_k_mm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, size_t nb,
                     float *out, size_t ldo) {
    k_mm(0, w, ldw, nr, y, ldy, nt, nb, out, ldo);
}
/* ---- generation: one token, a contiguous range of rows ----
 * The rows are one sequence of nr * nb blocks in memory (one stream for the
 * prefetcher); 16 blocks at a time, whatever rows they belong to, become the
 * 16 accumulators of the tree, so lane i holds block i's integer sums.  Each
 * lane's f32 term is formed as the dot forms it, then added to its row's sum
 * in block order: the dot's bits. */
typedef struct {
    __m512i acc[16], aux[16];   /* aux: Q4_K's mins . bsums lanes (summed by the same tree) */
    uint16_t d[16], dm[16];     /* the blocks' f16 scales */
    float yd[16];
    int n;
} k_chunk;

T_512 static void k_chunk_flush(k_chunk *c, int q4, size_t *row, size_t *b, size_t nb, float *acc, float *out) {
    for (int i = c->n; i < 16; i++) c->acc[i] = c->aux[i] = _mm512_setzero_si512();
    __m512i sumi = reduce16(c->acc);
    __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)c->d));
    __m512 yd = _mm512_loadu_ps(c->yd), x;
    if (q4) {
        __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)c->dm));
        __m512i summ = reduce16(c->aux);
        x = _mm512_mul_ps(yd, _mm512_sub_ps(_mm512_mul_ps(dw, _mm512_cvtepi32_ps(sumi)),
                                            _mm512_mul_ps(dm, _mm512_cvtepi32_ps(summ))));
    } else {
        x = _mm512_mul_ps(_mm512_mul_ps(dw, yd), _mm512_cvtepi32_ps(sumi));
    }
    float term[16];
    _mm512_storeu_ps(term, x);
    for (int i = 0; i < c->n; i++) {   /* the dot's chain: acc += term, block after block */
        *acc += term[i];
        if (++*b == nb) out[(*row)++] = *acc, *acc = 0.0f, *b = 0;
    }
    c->n = 0;
}

T_512 static void k_rows(int q4, const uint8_t *w, size_t nr, const sl_q8kb *y, size_t nb, float *out) {
    k_chunk c;
    c.n = 0;
    size_t row = 0, fb = 0, bb = q4 ? 144 : 210;
    float acc = 0.0f;
    for (size_t s = 0, b = 0; s < nr * nb; s++, w += bb, b = b + 1 == nb ? 0 : b + 1) {
        const sl_q8kb *yb = y + b;
        __m512i codes[4], sc[4];
        __m256i bsums = _mm256_loadu_si256((const __m256i *)(const void *)yb->bsums);
        /* Q4_K: mins . bsums, summed by their own tree; Q6_K: scales . bsums, whose 32 times is the -32
         * offset, folded into the block's integer lanes */
        __m256i sums = _mm256_madd_epi16(q4 ? q4_k_decode(w, codes, sc) : q6_k_decode(w, codes, sc), bsums);
        __m512i a = _mm512_setzero_si512();
        for (int k = 0; k < 4; k++)
            a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(codes[k], _mm512_loadu_si512((const void *)(yb->qs + 64 * k))), sc[k]);
        if (q4) {
            c.acc[c.n] = a;
            c.aux[c.n] = _mm512_zextsi256_si512(sums);
            memcpy(&c.d[c.n], w, 2);
            memcpy(&c.dm[c.n], w + 2, 2);
        } else {
            c.acc[c.n] = _mm512_sub_epi32(a, _mm512_zextsi256_si512(_mm256_slli_epi32(sums, 5)));
            memcpy(&c.d[c.n], w + 208, 2);
        }
        c.yd[c.n] = yb->d;
        if (++c.n == 16) k_chunk_flush(&c, q4, &row, &fb, nb, &acc, out);
    }
    if (c.n) k_chunk_flush(&c, q4, &row, &fb, nb, &acc, out);
}

void sl_v512_q4_k_rows(const uint8_t *w, size_t nr, const sl_q8kb *y, size_t nb, float *out) {
    k_rows(1, w, nr, y, nb, out);
}
void sl_v512_q6_k_rows(const uint8_t *w, size_t nr, const sl_q8kb *y, size_t nb, float *out) {
    k_rows(0, w, nr, y, nb, out);
}
#else
typedef int sl_qk_x86_unused; /* ISO C forbids an empty translation unit */
#endif
