/*
 * dtype_simd.c — run-time dispatched f16/bf16 conversion kernels.
 * Portable build: no kernels (the scalar loops in dtype_vec.c do the work).
 */
#include "dtype_simd.h"

size_t sl_simd_f16_to_f32(const uint16_t *src, float *dst, size_t n) { (void)src; (void)dst; (void)n; return 0; }
size_t sl_simd_f32_to_f16(const float *src, uint16_t *dst, size_t n) { (void)src; (void)dst; (void)n; return 0; }
size_t sl_simd_f32_to_bf16(const float *src, uint16_t *dst, size_t n) { (void)src; (void)dst; (void)n; return 0; }
