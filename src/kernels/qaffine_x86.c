/*
 * qaffine_x86.c — the activations' 24-bit planes for MLX affine weights on
 * AVX-512 (sl_qd_prep_x24 with 16 lanes, bit for bit the portable planes),
 * for the "avx512" set of qdot_x86.c, whose dots and GEMMs on them are in
 * qaffine_gl_x86.c (one f32 lane per group).
 */
#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)

/* ---- the activations' 24-bit planes (sl_qd_prep_x24, 16 lanes) ----
 * Per group the same amax (max is exact in any order; a NaN element is
 * skipped as fmaxf skips it), d = amax / SL_QD_X24_MAX and 1 / d, then per
 * element the same product, round-to-nearest-even, clamp and byte split
 * (l = low signed byte, m the next, h the rest): bit for bit the portable
 * planes and d for finite inputs.  4-bit order: per 128 elements the even
 * ones, then the odd ones (64 / 64; a last 64 as 32 / 32), by two-source
 * permutes of the rounded integers. */
T_512 static inline void x24_store(int8_t *ph, int8_t *pm, int8_t *pl, size_t p, __m512i q) {
    const __m512i k128 = _mm512_set1_epi32(128), k255 = _mm512_set1_epi32(255);
    __m512i l = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(q, k128), k255), k128);
    __m512i q1 = _mm512_srai_epi32(_mm512_sub_epi32(q, l), 8);
    __m512i m = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(q1, k128), k255), k128);
    __m512i h = _mm512_srai_epi32(_mm512_sub_epi32(q1, m), 8);
    _mm_storeu_si128((__m128i *)(void *)(ph + p), _mm512_cvtepi32_epi8(h));
    _mm_storeu_si128((__m128i *)(void *)(pm + p), _mm512_cvtepi32_epi8(m));
    _mm_storeu_si128((__m128i *)(void *)(pl + p), _mm512_cvtepi32_epi8(l));
}

T_512 void sl_v512_prep_x24(const float *x, size_t cols, int gs, int bits, int8_t *planes, float *d) {
    int8_t *ph = planes, *pm = planes + cols, *pl = planes + 2 * cols;
    const __m512 hi = _mm512_set1_ps((float)SL_QD_X24_MAX), lo = _mm512_set1_ps(-(float)SL_QD_X24_MAX);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (size_t c = 0; c < cols; c += 128) {
        size_t len = cols - c >= 128 ? 128 : cols - c;   /* 128, or a last 64 (cols % 64 == 0) */
        int nv = (int)(len / 16);
        __m512i q[8];
        for (size_t g0 = 0; g0 < len; g0 += (size_t)gs) {
            int gv = gs / 16, v0 = (int)(g0 / 16);
            __m512 am = _mm512_setzero_ps();
            for (int i = 0; i < gv; i++)
                am = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + c + g0 + 16 * (size_t)i)), am);
            float amax = _mm512_reduce_max_ps(am);
            float dg = amax / (float)SL_QD_X24_MAX, id = dg > 0.0f ? 1.0f / dg : 0.0f;
            d[(c + g0) / (size_t)gs] = dg;
            __m512 idv = _mm512_set1_ps(id);
            for (int i = 0; i < gv; i++) {
                __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + c + g0 + 16 * (size_t)i), idv),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[v0 + i] = _mm512_cvtps_epi32(_mm512_max_ps(lo, _mm512_min_ps(hi, r)));
            }
        }
        if (bits == 8) {
            for (int i = 0; i < nv; i++) x24_store(ph, pm, pl, c + 16 * (size_t)i, q[i]);
            continue;
        }
        for (int i = 0; i < nv / 2; i++) {
            x24_store(ph, pm, pl, c + 16 * (size_t)i, _mm512_permutex2var_epi32(q[2 * i], even, q[2 * i + 1]));
            x24_store(ph, pm, pl, c + len / 2 + 16 * (size_t)i, _mm512_permutex2var_epi32(q[2 * i], odd, q[2 * i + 1]));
        }
    }
}
#else
typedef int sl_qaffine_x86_unused; /* ISO C forbids an empty translation unit */
#endif
