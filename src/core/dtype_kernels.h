/*
 * core/dtype_kernels.h — architecture-specific f16/bf16 conversion kernels
 * (internal; selected by src/core/dtype_simd.c).  Same contract as
 * dtype_simd.h: convert a leading multiple of the vector width, return the
 * count, produce exactly the scalar converters' bits.  Only the kernels for
 * the architecture being compiled exist; callers check the CPU first.
 */
#ifndef SILICA_CORE_DTYPE_KERNELS_H
#define SILICA_CORE_DTYPE_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* 1 when SILICA_SIMD lets a family use the set named set ("scalar",
 * "portable", "avx2", "avx512", "neon", "neondot"; simd_cap.c): the one
 * rule every dispatcher applies, so one variable caps every family alike. */
int sl_k_simd_allows(const char *set);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SL_HAVE_X86_KERNELS 1
/* F16C + AVX2 (8 lanes) */
size_t sl_k_avx2_f16_to_f32(const uint16_t *src, float *dst, size_t n);
size_t sl_k_avx2_f32_to_f16(const float *src, uint16_t *dst, size_t n);
size_t sl_k_avx2_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
/* AVX-512F (16 lanes) */
size_t sl_k_avx512_f16_to_f32(const uint16_t *src, float *dst, size_t n);
size_t sl_k_avx512_f32_to_f16(const float *src, uint16_t *dst, size_t n);
size_t sl_k_avx512_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
#endif

#if defined(__aarch64__)
#define SL_HAVE_NEON_KERNELS 1
size_t sl_k_neon_f16_to_f32(const uint16_t *src, float *dst, size_t n);
size_t sl_k_neon_f32_to_f16(const float *src, uint16_t *dst, size_t n);
size_t sl_k_neon_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
#endif

#endif
