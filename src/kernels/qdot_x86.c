/*
 * qdot_x86.c — x86-64 quantized dot products (qdot.h): AVX2+FMA+F16C, and
 * AVX-512 (BW/VL + VNNI: vpdpbusd for the int8 dots, 16-lane f32 for MLX
 * affine).  Per-function target attributes, so the library needs no -m
 * flags; qdot.c picks a set only after sl_cpu() reports the features.
 *
 * Integer block sums are exact and equal the portable ones; Q4_K and Q6_K
 * even add the f32 block terms in the portable order (bit-identical);
 * Q4_0 / Q8_0 / affine accumulate f32 in vector lanes (tolerance-identical).
 * The maddubs products cannot saturate: |w| <= 128 (sign trick) or <= 63
 * (unsigned K-quant codes) times |y| <= 127, pairs <= 32512.
 */
#include "kernels/qdot.h"

#if defined(SL_QD_X86)
#include <immintrin.h>
#include <string.h>

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

T_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
T_AVX2 static inline int hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

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
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sl_qd_f16(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum8(acc);
}

T_AVX2 static float avx2_q8_0(const uint8_t *w, const sl_q8b *y, size_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++, w += 34) {
        __m256i p = dot_i8_avx2(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2)),
                                _mm256_loadu_si256((const __m256i *)(const void *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sl_qd_f16(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
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
        acc += y[b].d * (sl_qd_f16(w) * (float)sumi - sl_qd_f16(w + 2) * (float)summ);
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
        acc += sl_qd_f16(w + 208) * y[b].d * (float)sumi;
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

T_AVX2 static float avx2_affine4(const uint8_t *words, const float *sc, const float *bi, const float *x,
                                 const float *xsum, size_t groups, int gs) {
    __m256 acc = _mm256_setzero_ps();
    float bacc = 0.0f;
    for (size_t g = 0; g < groups; g++) {
        __m256 p0 = _mm256_setzero_ps(), p1 = _mm256_setzero_ps();
        const uint8_t *wg = words + g * (size_t)gs / 2;
        const float *xg = x + g * (size_t)gs;
        for (int k = 0; k < gs; k += 32, wg += 16, xg += 32) {
            __m128i e0, e1;
            nib_unpack(wg, &e0, &e1);
            p0 = _mm256_fmadd_ps(u8x8_ps(e0), _mm256_loadu_ps(xg), p0);
            p1 = _mm256_fmadd_ps(u8x8_ps(_mm_srli_si128(e0, 8)), _mm256_loadu_ps(xg + 8), p1);
            p0 = _mm256_fmadd_ps(u8x8_ps(e1), _mm256_loadu_ps(xg + 16), p0);
            p1 = _mm256_fmadd_ps(u8x8_ps(_mm_srli_si128(e1, 8)), _mm256_loadu_ps(xg + 24), p1);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sc[g]), _mm256_add_ps(p0, p1), acc);
        bacc += bi[g] * xsum[g];
    }
    return hsum8(acc) + bacc;
}

T_AVX2 static float avx2_affine8(const uint8_t *words, const float *sc, const float *bi, const float *x,
                                 const float *xsum, size_t groups, int gs) {
    __m256 acc = _mm256_setzero_ps();
    float bacc = 0.0f;
    for (size_t g = 0; g < groups; g++) {
        __m256 p0 = _mm256_setzero_ps(), p1 = _mm256_setzero_ps();
        const uint8_t *wg = words + g * (size_t)gs;
        const float *xg = x + g * (size_t)gs;
        for (int k = 0; k < gs; k += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(wg + k));
            p0 = _mm256_fmadd_ps(u8x8_ps(b), _mm256_loadu_ps(xg + k), p0);
            p1 = _mm256_fmadd_ps(u8x8_ps(_mm_srli_si128(b, 8)), _mm256_loadu_ps(xg + k + 8), p1);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sc[g]), _mm256_add_ps(p0, p1), acc);
        bacc += bi[g] * xsum[g];
    }
    return hsum8(acc) + bacc;
}

const sl_qd_kernels sl_qd_avx2 = {"avx2", avx2_q4_0, avx2_q8_0, avx2_q4_k, avx2_q6_k, avx2_affine4, avx2_affine8};

/* ---- AVX-512 ---- */

T_512 static inline __m256i dot_i8_vnni(__m256i x, __m256i y) {
    __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy);
}

T_512 static float v512_q4_0(const uint8_t *w, const sl_q8b *y, size_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++, w += 18) {
        __m128i bb = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
        __m128i lo = _mm_and_si128(bb, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(bb, 4), _mm_set1_epi8(15));
        __m256i q = _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
        __m256i p = dot_i8_vnni(q, _mm256_loadu_si256((const __m256i *)(const void *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sl_qd_f16(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

T_512 static float v512_q8_0(const uint8_t *w, const sl_q8b *y, size_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++, w += 34) {
        __m256i p = dot_i8_vnni(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2)),
                                _mm256_loadu_si256((const __m256i *)(const void *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sl_qd_f16(w) * y[b].d), _mm256_cvtepi32_ps(p), acc);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

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

const sl_qd_kernels sl_qd_avx512 = {"avx512", v512_q4_0, v512_q8_0, avx2_q4_k, avx2_q6_k, v512_affine4, v512_affine8};
#endif
