/*
 * dtype_simd.c — run-time dispatch of the f16/bf16 conversion kernels.
 *
 * The kernel sets that this CPU can run are listed worst to best: "scalar"
 * (no kernels) always, then "avx2" (F16C+AVX2) and "avx512" (AVX-512F) on
 * x86-64, or "neon" on arm64.  The best one is chosen once, at first use,
 * from sl_cpu(); SILICA_SIMD=<name> caps the choice at that set (an unknown
 * or unavailable name falls back to the best set below it, "scalar" at
 * worst; the same rule caps the matmul kernels: core/simd_cap.c), so
 * tests and benchmarks can compare paths in one binary.
 * Invariant: every set yields the scalar converters' bits (test_dtype.c).
 */
#include "core/dtype_simd.h"

#include <stdlib.h>
#include <string.h>

#include "core/dtype_kernels.h"
#include "silica/cpu.h"
#include "silica/dtype.h"

enum { SL_SIMD_MAX_SETS = 4 };

static sl_simd_kernels g_sets[SL_SIMD_MAX_SETS];
static size_t g_count;
static const sl_simd_kernels *g_active;
static int g_ready;

static void build_sets(void) {
    const sl_cpu_features *c = sl_cpu();
    size_t k = 0;
    g_sets[k++] = (sl_simd_kernels){"scalar", NULL, NULL, NULL};
#if defined(SL_HAVE_X86_KERNELS)
    if (c->avx2 && c->f16c)
        g_sets[k++] = (sl_simd_kernels){"avx2", sl_k_avx2_f16_to_f32, sl_k_avx2_f32_to_f16, sl_k_avx2_f32_to_bf16};
    if (c->avx512f && c->avx2 && c->f16c)
        g_sets[k++] = (sl_simd_kernels){"avx512", sl_k_avx512_f16_to_f32, sl_k_avx512_f32_to_f16,
                                        sl_k_avx512_f32_to_bf16};
#elif defined(SL_HAVE_NEON_KERNELS)
    if (c->neon)
        g_sets[k++] = (sl_simd_kernels){"neon", sl_k_neon_f16_to_f32, sl_k_neon_f32_to_f16, sl_k_neon_f32_to_bf16};
#else
    (void)c;
#endif
    g_count = k;
    size_t pick = 0;   /* best set SILICA_SIMD allows (the shared rule: core/simd_cap.c) */
    for (size_t s = 0; s < k; s++)
        if (sl_k_simd_allows(g_sets[s].name)) pick = s;
    g_active = &g_sets[pick];
}

static void ensure_ready(void) {
    if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE)) {
        /* idempotent: racing first callers compute the same table */
        build_sets();
        __atomic_store_n(&g_ready, 1, __ATOMIC_RELEASE);
    }
}

const sl_simd_kernels *sl_simd_available(size_t *count) {
    ensure_ready();
    *count = g_count;
    return g_sets;
}

const sl_simd_kernels *sl_simd_active(void) {
    ensure_ready();
    return g_active;
}

const char *sl_dtype_kernels(void) { return sl_simd_active()->name; }

size_t sl_simd_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    const sl_simd_kernels *k = sl_simd_active();
    return k->f16_to_f32 ? k->f16_to_f32(src, dst, n) : 0;
}

size_t sl_simd_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    const sl_simd_kernels *k = sl_simd_active();
    return k->f32_to_f16 ? k->f32_to_f16(src, dst, n) : 0;
}

size_t sl_simd_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    const sl_simd_kernels *k = sl_simd_active();
    return k->f32_to_bf16 ? k->f32_to_bf16(src, dst, n) : 0;
}
