/*
 * dtype_simd.h — SIMD kernels behind the bulk converters (internal).
 *
 * Each kernel returns how many leading elements it converted (a multiple of
 * its vector width, 0 when the CPU lacks the feature); the caller finishes
 * the tail with the scalar code in dtype.c.  Invariant: every kernel gives
 * the same bits as the scalar converter for every input (NaN payloads, Inf,
 * subnormals, signed zeros), so results never depend on the machine.
 *
 * The sl_simd_* entry points use the best kernel set for this CPU, chosen
 * once from sl_cpu().  SILICA_SIMD=scalar|avx2|avx512|neon in the
 * environment caps the choice (tests and benchmarks compare paths).
 */
#ifndef SILICA_DTYPE_SIMD_H
#define SILICA_DTYPE_SIMD_H
#include <stddef.h>
#include <stdint.h>

size_t sl_simd_f16_to_f32(const uint16_t *src, float *dst, size_t n);
size_t sl_simd_f32_to_f16(const float *src, uint16_t *dst, size_t n);
size_t sl_simd_f32_to_bf16(const float *src, uint16_t *dst, size_t n);

/* One kernel set; a NULL kernel means "scalar for this conversion". */
typedef struct sl_simd_kernels {
    const char *name; /* "scalar", "avx2", "avx512", "neon" */
    size_t (*f16_to_f32)(const uint16_t *src, float *dst, size_t n);
    size_t (*f32_to_f16)(const float *src, uint16_t *dst, size_t n);
    size_t (*f32_to_bf16)(const float *src, uint16_t *dst, size_t n);
} sl_simd_kernels;

/* Kernel sets this CPU can run, worst ("scalar", all NULL) to best. */
const sl_simd_kernels *sl_simd_available(size_t *count);
/* The set the sl_simd_* entry points use (honours SILICA_SIMD). */
const sl_simd_kernels *sl_simd_active(void);

#endif
