/*
 * test_kernels_util.h — what the kernel tests share (test_kernels.c,
 * test_gemm.c): one xorshift stream per test binary, random valid GGUF
 * blocks, f16 stores and the bit-for-bit float comparison.
 */
#ifndef SILICA_TEST_KERNELS_UTIL_H
#define SILICA_TEST_KERNELS_UTIL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "silica/dtype.h"

static uint64_t g_rng = 0x243f6a8885a308d3ull;
static inline float rndf(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}
static inline uint32_t rndu32(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

static inline void put_f16(uint8_t *p, float v) {
    uint16_t h = sl_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* Random valid blocks: random bytes, then sane f16 scales at the type's offsets. */
static inline void rand_blocks(sl_dtype t, uint8_t *w, size_t nblocks) {
    const sl_dtype_info *di = sl_dtype_get(t);
    for (size_t i = 0; i < nblocks * di->block_bytes; i++) w[i] = (uint8_t)(rndf() * 128.0f + 128.0f);
    for (size_t b = 0; b < nblocks; b++) {
        uint8_t *p = w + b * di->block_bytes;
        switch (t) {
        case SL_Q4_0: case SL_Q8_0: put_f16(p, 0.01f + 0.005f * rndf()); break;
        case SL_Q4_1: put_f16(p, 0.01f + 0.005f * rndf()); put_f16(p + 2, 0.05f * rndf()); break;
        case SL_Q4_K: put_f16(p, 1e-3f + 5e-4f * rndf()); put_f16(p + 2, 1e-3f + 5e-4f * rndf()); break;
        case SL_Q6_K: put_f16(p + 208, 1e-3f + 5e-4f * rndf()); break;
        default: break;
        }
    }
}

/* Bit-identical, except that a NaN may come out with either sign bit (random
 * mxfp8 codes include E4M3's NaN; x86 makes the "default NaN" 0xffc00000 in
 * some orders of the same operations and propagates 0x7fc00000 in others). */
static inline void assert_same_floats(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            fail_msg("element %zu differs: %.9g vs %.9g", i, (double)a[i], (double)b[i]);
    }
}

/* n random values in [-1, 1) stored as f32, f16 or bf16 rows at w. */
static inline void rand_dense(sl_dtype t, uint8_t *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = rndf();
        if (t == SL_F32) memcpy(w + 4 * i, &v, 4);
        else {
            uint16_t h = t == SL_F16 ? sl_f32_to_f16(v) : sl_f32_to_bf16(v);
            memcpy(w + 2 * i, &h, 2);
        }
    }
}

#endif
