/*
 * quant_simd.h — the optional SIMD kernels of the quantization library
 * (internal).  Same contract as the portable loops in quant_affine.c: every
 * kernel yields exactly the scalar bits; callers check sl_qi_use_avx2() first.
 */
#ifndef SILICA_QUANT_SIMD_H
#define SILICA_QUANT_SIMD_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SL_QI_X86 1
void sl_qi_avx2_dq4_f32(const uint32_t *w, size_t nwords, float s, float b, float *out);
void sl_qi_avx2_dq8_f32(const uint32_t *w, size_t nwords, float s, float b, float *out);
void sl_qi_avx2_minmax(const float *x, int gs, float *mn, float *mx);
void sl_qi_avx2_codes(const float *x, int gs, float s, float b, float n, uint8_t *codes);
#endif

/* 1 when the AVX2 kernels may run (CPU has them and SILICA_SIMD allows). */
int sl_qi_use_avx2(void);

#endif
