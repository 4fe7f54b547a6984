/*
 * qdot.h — the quantized dot products behind qmatmul.c (internal): one
 * weight row against one activation row, for the formats with a fused
 * kernel, in a portable version and (where built) SIMD versions picked at
 * run time.
 *
 * Activation blocks (what "quantize the activations" produces, as llama.cpp
 * does for its integer dots, but with an f32 scale instead of f16):
 *   sl_q8b  — 32 values: d = amax/127, qs = round(x/d), s = sum(qs)
 *             (for Q4_0 / Q8_0 weights);
 *   sl_q8kb — 256 values: d, qs, and bsums = sums of each 16 qs
 *             (for Q4_K / Q6_K weights: the min term needs them).
 * Invariants: every dot reads exactly cols/32 (cols/256) weight blocks and
 * activation blocks; integer parts are exact, so SIMD and portable results
 * differ only in the order of the f32 block accumulation.  Weight blocks are
 * read with unaligned loads (GGUF blocks of 18/34/210 bytes are unaligned).
 */
#ifndef SILICA_KERNELS_QDOT_H
#define SILICA_KERNELS_QDOT_H

#include <stddef.h>
#include <stdint.h>

#include "silica/dtype.h"

typedef struct sl_q8b {
    float d;
    int32_t s;
    int8_t qs[32];
} sl_q8b;

typedef struct sl_q8kb {
    float d;
    int16_t bsums[16];
    int8_t qs[256];
} sl_q8kb;

/* Quantize n floats (a multiple of 32 / 256). */
void sl_qd_quantize_q8(const float *x, size_t n, sl_q8b *out);
void sl_qd_quantize_q8k(const float *x, size_t n, sl_q8kb *out);

/* Weight row (nb blocks) . activation row. */
typedef float (*sl_qd_q8_fn)(const uint8_t *w, const sl_q8b *y, size_t nb);
typedef float (*sl_qd_q8k_fn)(const uint8_t *w, const sl_q8kb *y, size_t nb);
/* MLX affine, one row of `groups` groups of gs: sum_g s_g*(q_g . x_g) + b_g*xsum_g
 * with f32 scales/biases already widened (sc, bi); codes = the row's packed
 * little-endian uint32 words, read bytewise (mlx files leave them unaligned). */
typedef float (*sl_qd_affine_fn)(const uint8_t *codes, const float *sc, const float *bi, const float *x,
                                 const float *xsum, size_t groups, int gs);

typedef struct sl_qd_kernels {
    const char *name;
    sl_qd_q8_fn q4_0, q8_0;
    sl_qd_q8k_fn q4_k, q6_k;
    sl_qd_affine_fn affine4, affine8;
} sl_qd_kernels;

extern const sl_qd_kernels sl_qd_portable;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SL_QD_X86 1
extern const sl_qd_kernels sl_qd_avx2;
extern const sl_qd_kernels sl_qd_avx512;   /* AVX-512 BW/VL + VNNI */
#endif
/* arm64 has no hand-written quantized dot kernels yet: it runs the portable
 * set (auto-vectorised to NEON by the compiler).  A NEON set would define
 * SL_QD_NEON and sl_qd_neon here. */

/* The set in use (SILICA_SIMD=scalar|avx2|avx512|neon caps it). */
const sl_qd_kernels *sl_qd_active(void);
/* A set by name for tests ("portable", "avx2", "avx512", "neon"), NULL if
 * this build or CPU lacks it. */
const sl_qd_kernels *sl_qd_by_name(const char *name);

/* Q4_K 6-bit scale/min j (0..7) of the 12 packed bytes. */
static inline void sl_qd_k4_scale(const uint8_t *q, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 15) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static inline float sl_qd_f16(const uint8_t *p) {
    return sl_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

#endif
