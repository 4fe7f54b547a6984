/*
 * qamx_x86.h — what the AMX files share (internal): the build condition
 * (SL_QD_AMX: x86-64 Linux, gcc >= 11 or clang >= 12, per-function target
 * attributes), the tile configuration layout, the f32 lane order every AMX
 * set kernel ends with (red16: the 16 lanes halved (l, l + 8), (l, l + 4),
 * (l, l + 2), (l, l + 1)), the integer lane folding, and the MLX affine
 * entries that qamx_affine_x86.c defines for the "amx" set of qamx_x86.c.
 * Invariant: included only where SL_QD_X86 holds (qdot.h).
 */
#ifndef SILICA_KERNELS_QAMX_X86_H
#define SILICA_KERNELS_QAMX_X86_H

#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86) && defined(__linux__) && (defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11)
#define SL_QD_AMX 1

#define T_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
/* Tile loads and the configuration load are asm that names no (or too
 * little) memory: make the stores they read visible first. */
#define MEM_BARRIER() __asm__ volatile("" ::: "memory")
#if defined(__clang__)
#define UNROLL_ALL _Pragma("unroll")
#else
#define UNROLL_ALL _Pragma("GCC unroll 16")
#endif

typedef struct sl_amx_tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} sl_amx_tilecfg;

T_512 static inline float red16(__m512 v) {
    __m256 v8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}
/* The same halving for 16 lane vectors at a, a + stride, ... (lane l's
 * vector at a + l * stride floats), element-wise: 16 outputs at once. */
T_512 static inline __m512 red16_lanes(const float *a, size_t stride) {
    __m512 s[8];
    for (int l = 0; l < 8; l++) s[l] = _mm512_add_ps(_mm512_load_ps(a + stride * (size_t)l), _mm512_load_ps(a + stride * (size_t)(l + 8)));
    for (int l = 0; l < 4; l++) s[l] = _mm512_add_ps(s[l], s[l + 4]);
    for (int l = 0; l < 2; l++) s[l] = _mm512_add_ps(s[l], s[l + 2]);
    return _mm512_add_ps(s[0], s[1]);
}

/* Adjacent lanes added: lanes 0-7 from a, 8-15 from b. */
T_512 static inline __m512i fold(__m512i a, __m512i b) {
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_add_epi32(_mm512_permutex2var_epi32(a, ev, b), _mm512_permutex2var_epi32(a, od, b));
}
/* Eight block-pair vectors (8 partial lanes per block) -> lane i = block i's sum. */
T_512 static inline __m512i fold16(const __m512i *p) {
    return fold(fold(fold(p[0], p[1]), fold(p[2], p[3])), fold(fold(p[4], p[5]), fold(p[6], p[7])));
}

/* MLX affine 4/8-bit with 24-bit activations for the amx set
 * (qamx_affine_x86.c): its one-token dots (one row, or rows x tokens a
 * few rows per pass), their tile GEMMs and the GEMMs' token form. */
float sl_amx_affine4_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                         const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs);
float sl_amx_affine8_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                         const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs);
void sl_amx_affine4_x24_mm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases, size_t lds,
                           sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols, int gs,
                           float *out, size_t ldo);
void sl_amx_affine8_x24_mm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases, size_t lds,
                           sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols, int gs,
                           float *out, size_t ldo);
void sl_amx_affine4_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                             size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                             float *out, size_t ldo, void *scratch);
void sl_amx_affine8_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                             size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                             float *out, size_t ldo, void *scratch);
void sl_amx_x24_tiles(const int8_t *planes, size_t c0, size_t cc, size_t cols, int gs, int bits, int i, int tn,
                      int8_t *tiles);
#endif
#endif
