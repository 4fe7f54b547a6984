/*
 * qdot_x86.h — what the x86-64 kernel files share (internal): the target
 * attributes (no -m flags: each function names the features it uses), the
 * scalar helpers every dot ends with, and the MLX affine 24-bit kernels that
 * qaffine_x86.c defines for the AVX-512 set of qdot_x86.c.
 * Invariant: included only where SL_QD_X86 holds (qdot.h).
 */
#ifndef SILICA_KERNELS_QDOT_X86_H
#define SILICA_KERNELS_QDOT_X86_H

#include "kernels/qdot.h"

#if defined(SL_QD_X86)
#include <immintrin.h>
#include <string.h>

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* f16 scale at p (unaligned) to f32 with F16C; exact, like sl_f16_to_f32 for every non-NaN. */
T_AVX2 static inline float f16s(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

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

/* MLX affine, 24-bit activations (qaffine_x86.c): the one-token dots
 * (sl_qd_affine24_fn) and their GEMM tiles (sl_qd_affine24_mm_fn). */
float sl_v512_affine4_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                          const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs);
float sl_v512_affine8_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                          const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs);
void sl_v512_affine4_x24_mm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                            size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols,
                            int gs, float *out, size_t ldo);
void sl_v512_affine8_x24_mm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                            size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols,
                            int gs, float *out, size_t ldo);
#endif

#endif
