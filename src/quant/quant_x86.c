/*
 * quant_x86.c — AVX2 kernels of the quantization library, compiled with a
 * per-function target attribute (the library needs no -m flags) and called
 * only when the dtype kernel set in use is avx2 or avx512 (sl_dtype_kernels,
 * which honours SILICA_SIMD=scalar for comparisons).
 *
 * Bit-exactness with the portable loops: the same IEEE operations in the
 * same order (a multiply, then an add: never a fused multiply-add), so every
 * output bit equals the scalar path's (tests/unit/test_quant.c and
 * test_quant.py run both).
 */
#include "quant/quant_simd.h"

#include <string.h>

#include "silica/dtype.h"

int sl_qi_use_avx2(void) {
#if defined(SL_QI_X86)
    const char *k = sl_dtype_kernels();
    return strcmp(k, "avx2") == 0 || strcmp(k, "avx512") == 0;
#else
    return 0;
#endif
}

#if defined(SL_QI_X86)
#include <immintrin.h>

/* 4-bit codes -> q*s + b, 8 floats per packed word */
__attribute__((target("avx2"))) void sl_qi_avx2_dq4_f32(const uint32_t *w, size_t nwords, float s, float b,
                                                         float *out) {
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), m15 = _mm256_set1_epi32(15);
    const __m256 vs = _mm256_set1_ps(s), vb = _mm256_set1_ps(b);
    for (size_t i = 0; i < nwords; i++) {
        __m256i q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w[i]), shifts), m15);
        __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(q), vs);
        _mm256_storeu_ps(out + 8 * i, _mm256_add_ps(t, vb));
    }
}

/* 8-bit codes -> q*s + b, 4 words (16 floats) per step, nwords % 2 == 0 */
__attribute__((target("avx2"))) void sl_qi_avx2_dq8_f32(const uint32_t *w, size_t nwords, float s, float b,
                                                         float *out) {
    const __m256 vs = _mm256_set1_ps(s), vb = _mm256_set1_ps(b);
    for (size_t i = 0; i + 2 <= nwords; i += 2) {
        __m128i bytes = _mm_loadl_epi64((const __m128i *)(const void *)(w + i));
        __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), vs);
        _mm256_storeu_ps(out + 4 * i, _mm256_add_ps(t, vb));
    }
}

/* running min/max over gs (multiple of 8) values, NaN skipped: minps(w, m)
 * returns m when w is NaN, like the scalar `w < m ? w : m`.  The sign of a
 * zero min/max may differ from the sequential scan; it never reaches the
 * output (a zero edge gives q0 = 0 and bias +0). */
__attribute__((target("avx2"))) void sl_qi_avx2_minmax(const float *x, int gs, float *mn, float *mx) {
    __m256 a = _mm256_set1_ps(*mn), b = _mm256_set1_ps(*mx);
    for (int i = 0; i < gs; i += 8) {
        __m256 w = _mm256_loadu_ps(x + i);
        a = _mm256_min_ps(w, a);
        b = _mm256_max_ps(w, b);
    }
    float la[8], lb[8];
    _mm256_storeu_ps(la, a);
    _mm256_storeu_ps(lb, b);
    float m0 = la[0], m1 = lb[0];
    for (int i = 1; i < 8; i++) {
        m0 = la[i] < m0 ? la[i] : m0;
        m1 = lb[i] > m1 ? lb[i] : m1;
    }
    *mn = m0;
    *mx = m1;
}

/* codes = clamp(rint(clamp((x-b)/s, -1, n+1)), 0, n), rint by 1.5*2^23 */
__attribute__((target("avx2"))) void sl_qi_avx2_codes(const float *x, int gs, float s, float b, float n,
                                                       uint8_t *codes) {
    const __m256 vs = _mm256_set1_ps(s), vb = _mm256_set1_ps(b), lo = _mm256_set1_ps(-1.0f),
                 hi = _mm256_set1_ps(n + 1.0f), magic = _mm256_set1_ps(12582912.0f);
    const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32((int)n);
    for (int i = 0; i < gs; i += 8) {
        __m256 t = _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vb), vs);
        t = _mm256_max_ps(t, lo); /* NaN -> -1 */
        t = _mm256_min_ps(t, hi);
        t = _mm256_sub_ps(_mm256_add_ps(t, magic), magic);
        __m256i q = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(t), zero), top);
        __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(void *)(codes + i), _mm_packus_epi16(q16, q16));
    }
}
#endif
