/*
 * dtype_simd.h — SIMD kernels behind the bulk converters (internal).
 * Each returns how many leading elements it converted (a multiple of its
 * vector width, 0 when the CPU lacks the feature); the caller finishes the
 * tail with the scalar code, so results are identical on every path.
 */
#ifndef SILICA_DTYPE_SIMD_H
#define SILICA_DTYPE_SIMD_H
#include <stddef.h>
#include <stdint.h>

size_t sl_simd_f16_to_f32(const uint16_t *src, float *dst, size_t n);
size_t sl_simd_f32_to_f16(const float *src, uint16_t *dst, size_t n);
size_t sl_simd_f32_to_bf16(const float *src, uint16_t *dst, size_t n);

#endif
