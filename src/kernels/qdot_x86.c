/*
 * qdot_x86.c — x86-64 quantized dot products (qdot.h): AVX2+FMA+F16C, and
 * AVX-512 (BW/VL + VNNI: vpdpbusd for the int8 dots, 16-lane f32 for MLX
 * affine).  Per-function target attributes, so the library needs no -m
 * flags; qdot.c picks a set only after sl_cpu() reports the features.
 *
 * Integer block sums are exact and equal the portable ones; Q4_K and Q6_K
 * even add the f32 block terms in the portable order (bit-identical);
 * Q4_0 / Q8_0 / affine accumulate f32 in vector lanes (tolerance-identical;
 * the AVX-512 Q4_0 / Q8_0 dots, rows and prompt GEMM are in qgemm_x86.c).
 * The maddubs products cannot saturate: |w| <= 128 (sign trick) or <= 63
 * (unsigned K-quant codes) times |y| <= 127, pairs <= 32512.
 */
#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)
/* 32 signed bytes x 32 signed bytes -> 8 x i32 partial sums. */
T_AVX2 static inline __m256i dot_i8_avx2(__m256i x, __m256i y) {
    __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}
T_AVX2 static inline __m256i q4_0_bytes(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

T_AVX2 static float avx2_q4_0(const uint8_t *w, const sl_q8b *y, size_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++, w += 18) {
        __m256i p = dot_i8_avx2(q4_0_bytes(w + 2), _mm256_loadu_si256((const __m256i *)(const void *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum8(acc);
}

T_AVX2 static float avx2_q8_0(const uint8_t *w, const sl_q8b *y, size_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++, w += 34) {
        __m256i p = dot_i8_avx2(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2)),
                                _mm256_loadu_si256((const __m256i *)(const void *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum8(acc);
}

T_AVX2 static float avx2_q4_k(const uint8_t *w, const sl_q8kb *y, size_t nb) {
    float acc = 0.0f;
    const __m256i m4 = _mm256_set1_epi8(15);
    for (size_t b = 0; b < nb; b++, w += 144) {
        const uint8_t *scales = w + 4, *qs = w + 16;
        const int8_t *q8 = y[b].qs;
        __m256i sumv = _mm256_setzero_si256();
        int32_t summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            sl_qd_k4_scale(scales, 2 * c, &sc0, &m0);
            sl_qd_k4_scale(scales, 2 * c + 1, &sc1, &m1);
            __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * c)));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * c + 32)));
            sumv = _mm256_add_epi32(sumv, _mm256_madd_epi16(plo, _mm256_set1_epi16((short)sc0)));
            sumv = _mm256_add_epi32(sumv, _mm256_madd_epi16(phi, _mm256_set1_epi16((short)sc1)));
            summ += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) + m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
        }
        int32_t sumi = hsum8i(sumv);
        acc += y[b].d * (f16s(w) * (float)sumi - f16s(w + 2) * (float)summ);
    }
    return acc;
}

T_AVX2 static float avx2_q6_k(const uint8_t *w, const sl_q8kb *y, size_t nb) {
    float acc = 0.0f;
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    for (size_t b = 0; b < nb; b++, w += 210) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192), *q8 = y[b].qs;
        __m256i sumv = _mm256_setzero_si256();
        int32_t corr = 0;
        for (int g = 0; g < 16; g++) corr += sc[g] * y[b].bsums[g];
        for (int half = 0; half < 2; half++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 32 * k)));
                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                sumv = _mm256_add_epi32(sumv, _mm256_madd_epi16(p, s));
            }
            ql += 64;
            qh += 32;
            sc += 8;
            q8 += 128;
        }
        int32_t sumi = hsum8i(sumv) - 32 * corr;
        acc += f16s(w + 208) * y[b].d * (float)sumi;
    }
    return acc;
}

/* 16 bytes of 4-bit codes (32 elements, element 2j = low nibble of byte j) -> 32 bytes in element order. */
T_AVX2 static inline void nib_unpack(const uint8_t *wp, __m128i *e0, __m128i *e1) {
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)wp);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15));
    *e0 = _mm_unpacklo_epi8(lo, hi);
    *e1 = _mm_unpackhi_epi8(lo, hi);
}
T_AVX2 static inline __m256 u8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }

/* MLX affine, f32 activations, NT tokens per pass over the row: every token
 * keeps its own chains (p0, p1 per group, acc across groups, bacc), in the
 * one-token order, so out[t] is bit-identical to the NT = 1 dot. */
#define AFF_BEGIN(NT)                                                                            \
    __m256 acc[NT];                                                                              \
    float bacc[NT];                                                                              \
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps(), bacc[t] = 0.0f;                   \
    for (size_t g = 0; g < groups; g++) {                                                        \
        __m256 p0[NT], p1[NT];                                                                   \
        for (int t = 0; t < NT; t++) p0[t] = _mm256_setzero_ps(), p1[t] = _mm256_setzero_ps();   \
        const float *xg = x + g * (size_t)gs;
#define AFF_FMA(NT, PA, Q, OFF)                                                                  \
    for (int t = 0; t < NT; t++) PA[t] = _mm256_fmadd_ps(Q, _mm256_loadu_ps(xg + (size_t)t * ldx + (OFF)), PA[t]);
#define AFF_END(NT)                                                                              \
        for (int t = 0; t < NT; t++) {                                                           \
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(sc[g]), _mm256_add_ps(p0[t], p1[t]), acc[t]); \
            bacc[t] += bi[g] * xsum[(size_t)t * groups + g];                                     \
        }                                                                                        \
    }                                                                                            \
    for (int t = 0; t < NT; t++) out[t] = hsum8(acc[t]) + bacc[t];

#define AVX2_AFFINE4(NAME, NT)                                                                   \
    T_AVX2 static void NAME(const uint8_t *words, const float *sc, const float *bi, const float *x, size_t ldx, \
                            const float *xsum, size_t groups, int gs, float *out) {              \
        AFF_BEGIN(NT)                                                                            \
        const uint8_t *wg = words + g * (size_t)gs / 2;                                          \
        for (int k = 0; k < gs; k += 32, wg += 16) {                                             \
            __m128i e0, e1;                                                                      \
            nib_unpack(wg, &e0, &e1);                                                            \
            __m256 q0 = u8x8_ps(e0), q1 = u8x8_ps(_mm_srli_si128(e0, 8));                        \
            __m256 q2 = u8x8_ps(e1), q3 = u8x8_ps(_mm_srli_si128(e1, 8));                        \
            AFF_FMA(NT, p0, q0, k) AFF_FMA(NT, p1, q1, k + 8)                                    \
            AFF_FMA(NT, p0, q2, k + 16) AFF_FMA(NT, p1, q3, k + 24)                              \
        }                                                                                        \
        AFF_END(NT)                                                                              \
    }
#define AVX2_AFFINE8(NAME, NT)                                                                   \
    T_AVX2 static void NAME(const uint8_t *words, const float *sc, const float *bi, const float *x, size_t ldx, \
                            const float *xsum, size_t groups, int gs, float *out) {              \
        AFF_BEGIN(NT)                                                                            \
        const uint8_t *wg = words + g * (size_t)gs;                                              \
        for (int k = 0; k < gs; k += 16) {                                                       \
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(wg + k));                \
            __m256 q0 = u8x8_ps(b), q1 = u8x8_ps(_mm_srli_si128(b, 8));                          \
            AFF_FMA(NT, p0, q0, k) AFF_FMA(NT, p1, q1, k + 8)                                    \
        }                                                                                        \
        AFF_END(NT)                                                                              \
    }
AVX2_AFFINE4(avx2_affine4_1, 1)
AVX2_AFFINE4(avx2_affine4_2, 2)
AVX2_AFFINE4(avx2_affine4_4, 4)
AVX2_AFFINE8(avx2_affine8_1, 1)
AVX2_AFFINE8(avx2_affine8_2, 2)
AVX2_AFFINE8(avx2_affine8_4, 4)

T_AVX2 static float avx2_affine4(const uint8_t *words, const float *sc, const float *bi, const float *x,
                                 const float *xsum, size_t groups, int gs) {
    float out;
    avx2_affine4_1(words, sc, bi, x, 0, xsum, groups, gs, &out);
    return out;
}
T_AVX2 static float avx2_affine8(const uint8_t *words, const float *sc, const float *bi, const float *x,
                                 const float *xsum, size_t groups, int gs) {
    float out;
    avx2_affine8_1(words, sc, bi, x, 0, xsum, groups, gs, &out);
    return out;
}
/* nt tokens: 4 (or 2) per pass, the rest one by one. */
#define AVX2_AFFINE_NT(NAME, F4, F2, F1)                                                         \
    T_AVX2 static void NAME(const uint8_t *codes, const float *sc, const float *bi, const float *x, size_t ldx, \
                            const float *xsum, int nt, size_t groups, int gs, float *out) {      \
        int t = 0;                                                                               \
        for (; t + 4 <= nt; t += 4) F4(codes, sc, bi, x + (size_t)t * ldx, ldx, xsum + (size_t)t * groups, groups, gs, out + t); \
        for (; t + 2 <= nt; t += 2) F2(codes, sc, bi, x + (size_t)t * ldx, ldx, xsum + (size_t)t * groups, groups, gs, out + t); \
        for (; t < nt; t++) F1(codes, sc, bi, x + (size_t)t * ldx, ldx, xsum + (size_t)t * groups, groups, gs, out + t); \
    }
AVX2_AFFINE_NT(avx2_affine4_nt, avx2_affine4_4, avx2_affine4_2, avx2_affine4_1)
AVX2_AFFINE_NT(avx2_affine8_nt, avx2_affine8_4, avx2_affine8_2, avx2_affine8_1)

/* Q4_1: unsigned codes x signed activations go straight into maddubs. */
T_AVX2 static float avx2_q4_1(const uint8_t *w, const sl_q8b *y, size_t nb) {
    __m256 acc = _mm256_setzero_ps();
    float macc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += 20) {
        __m128i bb = _mm_loadu_si128((const __m128i *)(const void *)(w + 4));
        __m128i lo = _mm_and_si128(bb, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(bb, 4), _mm_set1_epi8(15));
        __m256i p = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_set_m128i(hi, lo), _mm256_loadu_si256((const __m256i *)(const void *)y[b].qs)),
            _mm256_set1_epi16(1));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
        macc += f16s(w + 2) * y[b].d * (float)y[b].s;
    }
    return hsum8(acc) + macc;
}

/* ---- dense rows and the f32 tile (AVX2) ----
 * 8 lanes; a tail of n % 8 values is copied to a zero-padded stack vector
 * (no read past n).  Each (row, token) pair has one accumulator chain, the
 * same in the fused dot (generation) and the tile (prompt batches), so a
 * position's logits do not depend on how the prompt was batched. */
T_AVX2 static inline __m256 ld8_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)(const void *)p); }
T_AVX2 static inline __m256 ld8_bf16(const uint8_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
#define AVX2_DENSE(NAME, ES, LD)                                                                  \
    T_AVX2 static float NAME(const uint8_t *w, const float *x, size_t n) {                      \
        __m256 acc = _mm256_setzero_ps();                                                         \
        size_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(LD(w + ES * i), _mm256_loadu_ps(x + i), acc); \
        if (i < n) {                                                                              \
            uint8_t tw[8 * 4] = {0};                                                              \
            float tx[8] = {0};                                                                    \
            memcpy(tw, w + ES * i, ES * (n - i));                                                 \
            memcpy(tx, x + i, 4 * (n - i));                                                       \
            acc = _mm256_fmadd_ps(LD(tw), _mm256_loadu_ps(tx), acc);                              \
        }                                                                                         \
        return hsum8(acc);                                                                        \
    }
AVX2_DENSE(avx2_dense_f32, 4, ld8_f32)
AVX2_DENSE(avx2_dense_f16, 2, ld8_f16)
AVX2_DENSE(avx2_dense_bf16, 2, ld8_bf16)

/* NR rows x NT tokens (NT <= 2: 8 accumulators + 4 rows fit the 16 ymm registers). */
#define TILE8(NR, NT)                                                                             \
    do {                                                                                          \
        __m256 acc[NR][NT];                                                                       \
        for (int r = 0; r < NR; r++)                                                              \
            for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();                         \
        size_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) {                                                              \
            __m256 wv[NR];                                                                        \
            for (int r = 0; r < NR; r++) wv[r] = _mm256_loadu_ps(w + (size_t)r * ldw + i);        \
            for (int t = 0; t < NT; t++) {                                                        \
                __m256 xv = _mm256_loadu_ps(x + (size_t)t * ldx + i);                             \
                for (int r = 0; r < NR; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);   \
            }                                                                                     \
        }                                                                                         \
        if (i < n) {                                                                              \
            for (int r = 0; r < NR; r++)                                                          \
                for (int t = 0; t < NT; t++) {                                                    \
                    float tw[8] = {0}, tx[8] = {0};                                               \
                    memcpy(tw, w + (size_t)r * ldw + i, 4 * (n - i));                             \
                    memcpy(tx, x + (size_t)t * ldx + i, 4 * (n - i));                             \
                    acc[r][t] = _mm256_fmadd_ps(_mm256_loadu_ps(tw), _mm256_loadu_ps(tx), acc[r][t]); \
                }                                                                                 \
        }                                                                                         \
        for (int t = 0; t < NT; t++)                                                              \
            for (int r = 0; r < NR; r++) out[(size_t)t * (size_t)onr + (size_t)r] = hsum8(acc[r][t]); \
    } while (0)

T_AVX2 static void avx2_tile_4x2(const float *w, size_t ldw, const float *x, size_t ldx, size_t n, float *out,
                                 int onr) {
    TILE8(4, 2);
}
T_AVX2 static void avx2_tile_1x1(const float *w, size_t ldw, const float *x, size_t ldx, size_t n, float *out,
                                 int onr) {
    TILE8(1, 1);
}
T_AVX2 static void avx2_tile(const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nt, size_t n,
                             float *out) {
    int t = 0;
    if (nr == 4)
        for (; t + 2 <= nt; t += 2) avx2_tile_4x2(w, ldw, x + (size_t)t * ldx, ldx, n, out + t * nr, nr);
    for (; t < nt; t++)
        for (int r = 0; r < nr; r++)
            avx2_tile_1x1(w + (size_t)r * ldw, ldw, x + (size_t)t * ldx, ldx, n, out + t * nr + r, nr);
}

/* ---- GGUF GEMM tiles (AVX2; qdot.h sl_qd_q8_mm_fn) ----
 * The dots above keep one 8-lane f32 chain per (row, token): acc +=
 * (d_w * d_y) * lanes(block).  A tile of NR rows x NT tokens runs the same
 * chain per pair with the weight bytes, |w| and d_w loaded once per row and
 * y, d_y once per token (d_w * d_y is the same single f32 product, as a
 * vector multiply), so every output has the dot's bits. */
#define AVX2_MM_TILE(NAME, NR, NT, BB, WBYTES)                                                    \
    T_AVX2 static void NAME(const uint8_t *w, size_t ldw, const sl_q8b *y, size_t ldy, size_t nb, float *out, \
                            size_t ldo) {                                                         \
        __m256 acc[NR][NT];                                                                       \
        for (int r = 0; r < NR; r++)                                                              \
            for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();                         \
        const __m256i one = _mm256_set1_epi16(1);                                                 \
        for (size_t b = 0; b < nb; b++) {                                                         \
            __m256i yv[NT];                                                                       \
            __m256 dy[NT];                                                                        \
            for (int t = 0; t < NT; t++) {                                                        \
                const sl_q8b *yb = y + (size_t)t * ldy + b;                                       \
                yv[t] = _mm256_loadu_si256((const __m256i *)(const void *)yb->qs);                \
                dy[t] = _mm256_set1_ps(yb->d);                                                    \
            }                                                                                     \
            for (int r = 0; r < NR; r++) {                                                        \
                const uint8_t *wb = w + (size_t)r * ldw + b * BB;                                 \
                __m256i wq = WBYTES(wb), aw = _mm256_sign_epi8(wq, wq);                           \
                __m256 dw = _mm256_set1_ps(f16s(wb));                                             \
                for (int t = 0; t < NT; t++) {                                                    \
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(yv[t], wq)), one); \
                    acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dy[t]), _mm256_cvtepi32_ps(p), acc[r][t]); \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        for (int t = 0; t < NT; t++)                                                              \
            for (int r = 0; r < NR; r++) out[(size_t)t * ldo + (size_t)r] = hsum8(acc[r][t]);   \
    }
T_AVX2 static inline __m256i q8_0_bytes(const uint8_t *w) { return _mm256_loadu_si256((const __m256i *)(const void *)(w + 2)); }
T_AVX2 static inline __m256i q4_0_wbytes(const uint8_t *w) { return q4_0_bytes(w + 2); }
AVX2_MM_TILE(avx2_q8_0_mm42, 4, 2, 34, q8_0_bytes)
AVX2_MM_TILE(avx2_q8_0_mm41, 4, 1, 34, q8_0_bytes)
AVX2_MM_TILE(avx2_q8_0_mm12, 1, 2, 34, q8_0_bytes)
AVX2_MM_TILE(avx2_q8_0_mm11, 1, 1, 34, q8_0_bytes)
AVX2_MM_TILE(avx2_q4_0_mm42, 4, 2, 18, q4_0_wbytes)
AVX2_MM_TILE(avx2_q4_0_mm41, 4, 1, 18, q4_0_wbytes)
AVX2_MM_TILE(avx2_q4_0_mm12, 1, 2, 18, q4_0_wbytes)
AVX2_MM_TILE(avx2_q4_0_mm11, 1, 1, 18, q4_0_wbytes)

/* Rows MR at a time (the rest one by one), tokens MT at a time (likewise). */
#define X86_MM_DRIVER(ATTR, NAME, MR, MT, TRT, TR1, T1T, T11)                                     \
    ATTR static void NAME(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb, \
                          float *out, size_t ldo) {                                               \
        int r = 0;                                                                                \
        for (; r + MR <= nr; r += MR) {                                                           \
            int t = 0;                                                                            \
            for (; t + MT <= nt; t += MT) TRT(w + (size_t)r * ldw, ldw, y + (size_t)t * ldy, ldy, nb, out + (size_t)t * ldo + r, ldo); \
            for (; t < nt; t++) TR1(w + (size_t)r * ldw, ldw, y + (size_t)t * ldy, ldy, nb, out + (size_t)t * ldo + r, ldo); \
        }                                                                                         \
        for (; r < nr; r++) {                                                                     \
            int t = 0;                                                                            \
            for (; t + MT <= nt; t += MT) T1T(w + (size_t)r * ldw, ldw, y + (size_t)t * ldy, ldy, nb, out + (size_t)t * ldo + r, ldo); \
            for (; t < nt; t++) T11(w + (size_t)r * ldw, ldw, y + (size_t)t * ldy, ldy, nb, out + (size_t)t * ldo + r, ldo); \
        }                                                                                         \
    }
X86_MM_DRIVER(T_AVX2, avx2_q8_0_mm, 4, 2, avx2_q8_0_mm42, avx2_q8_0_mm41, avx2_q8_0_mm12, avx2_q8_0_mm11)
X86_MM_DRIVER(T_AVX2, avx2_q4_0_mm, 4, 2, avx2_q4_0_mm42, avx2_q4_0_mm41, avx2_q4_0_mm12, avx2_q4_0_mm11)

/* sl_qd_quantize_q8 in 256-bit lanes, bit for bit: max |x| is exact in any
 * order (a NaN element is skipped, as fmaxf skips it), d and 1/d are the
 * same scalar divisions, and vroundps with round-to-nearest-even is
 * nearbyintf in the default rounding mode. */
/* The activation quantizers (sl_qd_quantize_q8 / _q8k) with 8 lanes, bit
 * for bit: per block the same amax (a NaN skipped, as fmaxf skips it),
 * d = amax / 127, 1 / d, rounding and clamp; the block sums are exact
 * integer sums of the stored bytes. */

/* The largest |x| of n values (a multiple of 8) as d = amax / 127; *id = 1 / d (0 when d is 0). */
T_AVX2 static inline float q8_scale(const float *v, int n, float *id) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < n; k += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(v + k)), m);   /* NaN: m */
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float d = _mm_cvtss_f32(m4) / 127.0f;
    *id = d > 0.0f ? 1.0f / d : 0.0f;
    return d;
}
/* 32 values times id, rounded and clamped, stored as 32 bytes at q in element
 * order; returns their eight sums of 4 (lanes 0-3: bytes 0-15, 4-7: 16-31). */
T_AVX2 static inline __m256i q8_bytes32(const float *v, __m256 id, int8_t *q) {
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    __m256i r[4];
    for (int k = 0; k < 4; k++) {
        __m256 x = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(v + 8 * k), id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r[k] = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(x, hi), lo));
    }
    /* 32 x i32 -> 32 x i8 in element order (the packs work per 128-bit lane) */
    __m256i p8 = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)q, p8);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), p8), _mm256_set1_epi16(1));
}

T_AVX2 static void avx2_quantize_q8k(const float *x, size_t n, sl_q8kb *out) {
    for (size_t b = 0; b < n / 256; b++) {
        const float *v = x + b * 256;
        float id;
        out[b].d = q8_scale(v, 256, &id);
        __m256 vid = _mm256_set1_ps(id);
        for (int c = 0; c < 8; c++) {   /* 32 values: 32 bytes and two bsums */
            __m256i s = q8_bytes32(v + 32 * c, vid, out[b].qs + 32 * c);
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);   /* lane 0 of each half: the sum of its 16 bytes */
            out[b].bsums[2 * c] = (int16_t)_mm256_cvtsi256_si32(s);
            out[b].bsums[2 * c + 1] = (int16_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(s, 1));
        }
    }
}

T_AVX2 static void avx2_quantize_q8(const float *x, size_t n, sl_q8b *out) {
    for (size_t b = 0; b < n / 32; b++) {
        float id;
        out[b].d = q8_scale(x + b * 32, 32, &id);
        out[b].s = hsum8i(q8_bytes32(x + b * 32, _mm256_set1_ps(id), out[b].qs));
    }
}

const sl_qd_kernels sl_qd_avx2 = {
    .name = "avx2", .q4_0 = avx2_q4_0, .q8_0 = avx2_q8_0, .q4_1 = avx2_q4_1, .q4_k = avx2_q4_k, .q6_k = avx2_q6_k,
    .q4_0_mm = avx2_q4_0_mm, .q8_0_mm = avx2_q8_0_mm,
    .affine4 = avx2_affine4, .affine8 = avx2_affine8, .affine4_nt = avx2_affine4_nt,
    .affine8_nt = avx2_affine8_nt, .dense_f32 = avx2_dense_f32, .dense_f16 = avx2_dense_f16,
    .dense_bf16 = avx2_dense_bf16, .tile = avx2_tile, .quantize_q8 = avx2_quantize_q8, .quantize_q8k = avx2_quantize_q8k,
    .axpy_f16 = sl_avx2_axpy_f16};

/* ---- AVX-512 ---- */


T_512 static inline __m512 u8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

T_512 static float v512_affine4(const uint8_t *words, const float *sc, const float *bi, const float *x,
                                const float *xsum, size_t groups, int gs) {
    __m512 acc = _mm512_setzero_ps();
    float bacc = 0.0f;
    for (size_t g = 0; g < groups; g++) {
        __m512 p0 = _mm512_setzero_ps(), p1 = _mm512_setzero_ps();
        const uint8_t *wg = words + g * (size_t)gs / 2;
        const float *xg = x + g * (size_t)gs;
        for (int k = 0; k < gs; k += 32, wg += 16, xg += 32) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)wg);
            __m128i lo = _mm_and_si128(b, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15));
            p0 = _mm512_fmadd_ps(u8x16_ps(_mm_unpacklo_epi8(lo, hi)), _mm512_loadu_ps(xg), p0);
            p1 = _mm512_fmadd_ps(u8x16_ps(_mm_unpackhi_epi8(lo, hi)), _mm512_loadu_ps(xg + 16), p1);
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(sc[g]), _mm512_add_ps(p0, p1), acc);
        bacc += bi[g] * xsum[g];
    }
    return _mm512_reduce_add_ps(acc) + bacc;
}

T_512 static float v512_affine8(const uint8_t *words, const float *sc, const float *bi, const float *x,
                                const float *xsum, size_t groups, int gs) {
    __m512 acc = _mm512_setzero_ps();
    float bacc = 0.0f;
    for (size_t g = 0; g < groups; g++) {
        __m512 p0 = _mm512_setzero_ps(), p1 = _mm512_setzero_ps();
        const uint8_t *wg = words + g * (size_t)gs;
        const float *xg = x + g * (size_t)gs;
        for (int k = 0; k < gs; k += 32) {
            p0 = _mm512_fmadd_ps(u8x16_ps(_mm_loadu_si128((const __m128i *)(const void *)(wg + k))),
                                 _mm512_loadu_ps(xg + k), p0);
            p1 = _mm512_fmadd_ps(u8x16_ps(_mm_loadu_si128((const __m128i *)(const void *)(wg + k + 16))),
                                 _mm512_loadu_ps(xg + k + 16), p1);
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(sc[g]), _mm512_add_ps(p0, p1), acc);
        bacc += bi[g] * xsum[g];
    }
    return _mm512_reduce_add_ps(acc) + bacc;
}

T_512 static float v512_q4_1(const uint8_t *w, const sl_q8b *y, size_t nb) {
    __m256 acc = _mm256_setzero_ps();
    float macc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += 20) {
        __m128i bb = _mm_loadu_si128((const __m128i *)(const void *)(w + 4));
        __m128i lo = _mm_and_si128(bb, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(bb, 4), _mm_set1_epi8(15));
        __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set_m128i(hi, lo),
                                        _mm256_loadu_si256((const __m256i *)(const void *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
        macc += f16s(w + 2) * y[b].d * (float)y[b].s;
    }
    return hsum8(acc) + macc;
}

/* ---- dense rows and the f32 tile (AVX-512) ----
 * 16 lanes; the tail of n % 16 values uses masked loads (no fault, no read
 * past n).  Each (row, token) pair has one accumulator chain, the same in
 * the fused dot and the tile (bit-identical: batching changes nothing). */
T_512 static inline __m512 ld16_f32(const uint8_t *p, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, (const float *)(const void *)p);
}
T_512 static inline __m512 ld16_bf16(const uint8_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const void *)p)), 16));
}
#define V512_DENSE(NAME, ES, LD)                                                                  \
    T_512 static float NAME(const uint8_t *w, const float *x, size_t n) {                       \
        __m512 acc = _mm512_setzero_ps();                                                         \
        size_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(LD(w + ES * i, 0xffff), _mm512_loadu_ps(x + i), acc); \
        if (i < n) {                                                                              \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                      \
            acc = _mm512_fmadd_ps(LD(w + ES * i, m), _mm512_maskz_loadu_ps(m, x + i), acc);       \
        }                                                                                         \
        return _mm512_reduce_add_ps(acc);                                                         \
    }
V512_DENSE(v512_dense_f32, 4, ld16_f32)
V512_DENSE(v512_dense_f16, 2, ld16_f16)
V512_DENSE(v512_dense_bf16, 2, ld16_bf16)

#define TILE16(NR, NT)                                                                            \
    do {                                                                                          \
        __m512 acc[NR][NT];                                                                       \
        for (int r = 0; r < NR; r++)                                                              \
            for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();                         \
        size_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16) {                                                            \
            __m512 wv[NR];                                                                        \
            for (int r = 0; r < NR; r++) wv[r] = _mm512_loadu_ps(w + (size_t)r * ldw + i);        \
            for (int t = 0; t < NT; t++) {                                                        \
                __m512 xv = _mm512_loadu_ps(x + (size_t)t * ldx + i);                             \
                for (int r = 0; r < NR; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);   \
            }                                                                                     \
        }                                                                                         \
        if (i < n) {                                                                              \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                      \
            for (int r = 0; r < NR; r++)                                                          \
                for (int t = 0; t < NT; t++)                                                      \
                    acc[r][t] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + (size_t)r * ldw + i),  \
                                                _mm512_maskz_loadu_ps(m, x + (size_t)t * ldx + i), acc[r][t]); \
        }                                                                                         \
        for (int t = 0; t < NT; t++)                                                              \
            for (int r = 0; r < NR; r++) out[(size_t)t * (size_t)onr + (size_t)r] = _mm512_reduce_add_ps(acc[r][t]); \
    } while (0)

T_512 static void v512_tile_4x4(const float *w, size_t ldw, const float *x, size_t ldx, size_t n, float *out, int onr) {
    TILE16(4, 4);
}
T_512 static void v512_tile_4x1(const float *w, size_t ldw, const float *x, size_t ldx, size_t n, float *out, int onr) {
    TILE16(4, 1);
}
T_512 static void v512_tile_1x1(const float *w, size_t ldw, const float *x, size_t ldx, size_t n, float *out, int onr) {
    TILE16(1, 1);
}
T_512 static void v512_tile(const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nt, size_t n,
                            float *out) {
    int t = 0;
    if (nr == 4) {
        if (nt == 4) {
            v512_tile_4x4(w, ldw, x, ldx, n, out, nr);
            return;
        }
        for (; t < nt; t++) v512_tile_4x1(w, ldw, x + (size_t)t * ldx, ldx, n, out + t * nr, nr);
        return;
    }
    for (; t < nt; t++)
        for (int r = 0; r < nr; r++)
            v512_tile_1x1(w + (size_t)r * ldw, ldw, x + (size_t)t * ldx, ldx, n, out + t * nr + r, nr);
}

const sl_qd_kernels sl_qd_avx512 = {
    .name = "avx512", .q4_0 = sl_v512_q4_0, .q8_0 = sl_v512_q8_0, .q4_1 = v512_q4_1, .q4_k = avx2_q4_k, .q6_k = avx2_q6_k,
    .q4_0_gemm = sl_v512_q4_0_gemm, .q8_0_gemm = sl_v512_q8_0_gemm,
    .q4_k_mm = sl_v512_q4_k_mm, .q6_k_mm = sl_v512_q6_k_mm,
    .q4_k_rows = sl_v512_q4_k_rows, .q6_k_rows = sl_v512_q6_k_rows,
    .affine4 = v512_affine4, .affine8 = v512_affine8, .affine4_x24 = sl_v512_affine4_x24,
    .affine8_x24 = sl_v512_affine8_x24,
    .affine4_x24_mm = sl_v512_affine4_x24_mm, .affine8_x24_mm = sl_v512_affine8_x24_mm,
    .affine4_x24_gemm = sl_v512_affine4_x24_gemm, .affine8_x24_gemm = sl_v512_affine8_x24_gemm,
    .affine_x24_tiles = sl_v512_x24_tiles, .affine_gemm_min = 2, .dense_f32 = v512_dense_f32, .dense_f16 = v512_dense_f16,
    .dense_bf16 = v512_dense_bf16, .tile = v512_tile, .dense_mm = sl_v512_dense_mm, .dense_pack = sl_v512_dense_pack,
    .dense_rows = sl_v512_dense_rows,
    .q4_0_prep = sl_v512_q4_0_prep, .q4_0_rows = sl_v512_q4_0_rows,
    .q8_0_prep = sl_v512_q8_0_prep, .q8_0_rows = sl_v512_q8_0_rows,
    .q4_0_rows_n = sl_v512_q4_0_rows_n, .q8_0_rows_n = sl_v512_q8_0_rows_n, .quantize_q8 = avx2_quantize_q8,
    .quantize_q8k = avx2_quantize_q8k, .prep_x24 = sl_v512_prep_x24, .axpy_f16 = sl_avx2_axpy_f16, .att_scores_f16 = sl_v512_att_scores_f16_1, .att_values_f16 = sl_v512_att_values_f16,
    .att_scores_f16_g = sl_v512_att_scores_f16_g, .att_values_f16_g = sl_v512_att_values_f16_g,
    .exp_sum = sl_v512_exp_sum, .scale_max = sl_v512_scale_max};
#endif
