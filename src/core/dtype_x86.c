/*
 * dtype_x86.c — x86-64 f16/bf16 conversion kernels: F16C+AVX2 (8 lanes) and
 * AVX-512F (16 lanes), compiled with per-function target attributes so the
 * library itself needs no -m flags; dtype_simd.c calls them only after
 * sl_cpu() reports the features.
 *
 * Bit-exactness with the scalar code in dtype.c:
 *  - f16->f32: vcvtph2ps is exact for normals, subnormals, zeros and Inf,
 *    but quietens signalling NaNs; the scalar code keeps the payload as is,
 *    so NaN lanes are rebuilt from the integer bits (sign|0x7f800000|m<<13).
 *  - f32->f16: vcvtps2ph with the RNE immediate rounds like the scalar code,
 *    overflows to Inf and quietens NaN keeping the top 9 payload bits, which
 *    is what the scalar code does (sign|0x7e00|m>>13).
 *  - f32->bf16: integer RNE (u + 0x7fff + lsb) >> 16, NaN -> (u>>16)|0x40;
 *    the AVX512-BF16 instruction is not used because it flushes subnormals.
 * Loads and stores are unaligned; nothing reads past n.
 */
#include "core/dtype_kernels.h"

#if defined(SL_HAVE_X86_KERNELS)
#include <immintrin.h>

#define SL_T_AVX2 __attribute__((target("avx2,f16c")))
#define SL_T_AVX512 __attribute__((target("avx512f,avx2,f16c")))

/* ---- F16C + AVX2 ---- */

SL_T_AVX2 static inline __m256i nan_bits_avx2(__m256i h32) {
    __m256i sign = _mm256_slli_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x8000)), 16);
    __m256i em = _mm256_slli_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x7fff)), 13);
    return _mm256_or_si256(_mm256_or_si256(sign, em), _mm256_set1_epi32(0x7f800000));
}

SL_T_AVX2 size_t sl_k_avx2_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    const __m256i k7fff = _mm256_set1_epi32(0x7fff), k7c00 = _mm256_set1_epi32(0x7c00);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        __m256 f = _mm256_cvtph_ps(h);
        __m256i h32 = _mm256_cvtepu16_epi32(h);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(h32, k7fff), k7c00);
        f = _mm256_blendv_ps(f, _mm256_castsi256_ps(nan_bits_avx2(h32)), _mm256_castsi256_ps(nan));
        _mm256_storeu_ps(dst + i, f);
    }
    return i;
}

SL_T_AVX2 size_t sl_k_avx2_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
    return i;
}

SL_T_AVX2 static inline __m256i bf16_avx2(__m256i u) {
    __m256i hi = _mm256_srli_epi32(u, 16);
    __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, _mm256_set1_epi32(1)));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                     _mm256_set1_epi32(0x7f800000));
    __m256i q = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(r, q, nan);
}

SL_T_AVX2 size_t sl_k_avx2_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = bf16_avx2(_mm256_loadu_si256((const __m256i *)(const void *)(src + i)));
        __m256i b = bf16_avx2(_mm256_loadu_si256((const __m256i *)(const void *)(src + i + 8)));
        /* values are <= 0xffff, so unsigned saturation is a plain narrowing;
         * packus interleaves 128-bit lanes, the permute restores order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), p);
    }
    return i;
}

/* ---- AVX-512F ---- */

SL_T_AVX512 size_t sl_k_avx512_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    const __m512i k7fff = _mm512_set1_epi32(0x7fff), k7c00 = _mm512_set1_epi32(0x7c00);
    const __m512i k8000 = _mm512_set1_epi32(0x8000), kinf = _mm512_set1_epi32(0x7f800000);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
        __m512 f = _mm512_cvtph_ps(h);
        __m512i h32 = _mm512_cvtepu16_epi32(h);
        __m512i em = _mm512_and_si512(h32, k7fff);
        __mmask16 nan = _mm512_cmpgt_epi32_mask(em, k7c00);
        __m512i bits = _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(h32, k8000), 16),
                                                       _mm512_slli_epi32(em, 13)), kinf);
        f = _mm512_mask_mov_ps(f, nan, _mm512_castsi512_ps(bits));
        _mm512_storeu_ps(dst + i, f);
    }
    return i;
}

SL_T_AVX512 size_t sl_k_avx512_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), h);
    }
    return i;
}

SL_T_AVX512 size_t sl_k_avx512_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    const __m512i one = _mm512_set1_epi32(1), k7fff = _mm512_set1_epi32(0x7fff);
    const __m512i kabs = _mm512_set1_epi32(0x7fffffff), kinf = _mm512_set1_epi32(0x7f800000);
    const __m512i kq = _mm512_set1_epi32(0x40);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512((const void *)(src + i));
        __m512i hi = _mm512_srli_epi32(u, 16);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(k7fff, _mm512_and_si512(hi, one))), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, kabs), kinf);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, kq));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm512_cvtepi32_epi16(r));
    }
    return i;
}

#else
typedef int sl_dtype_x86_unused; /* ISO C forbids an empty translation unit */
#endif
