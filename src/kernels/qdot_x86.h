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

/* Q4_0 / Q8_0 block pairs for 512-bit integer dots (qgemm_x86.c, qamx_x86.c):
 * two blocks' codes or activations in one vector (lanes 0-7 the first block's
 * bytes in 4-byte groups, lanes 8-15 the second's). */
T_512 static inline __m512i q4_0_pair(const uint8_t *w) {   /* blocks at w and w + 18: codes as bytes, y order */
    __m256i v = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(const void *)(w + 20)),
                                 _mm_loadu_si128((const __m128i *)(const void *)(w + 2)));
    const __m256i m4 = _mm256_set1_epi8(15);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m4)),
                                   _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), 1);   /* lo0 lo1 hi0 hi1 */
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));                            /* lo0 hi0 lo1 hi1 */
}
/* Four Q4_0 blocks (72 bytes: a 64-byte load, *A, and an 8-byte one) as two
 * pair vectors in q4_0_pair's layout: every block's 16 code bytes start at
 * an even offset (2 + 18 k), so word permutes place them (low nibbles in the
 * first 16 bytes of a block's 32, high in the next, split by a per-word
 * shift).  Inlined into loops, the constants are built once. */
T_512 static inline void q4_0_quad(const uint8_t *w, __m512i *A, __m512i *c0, __m512i *c1) {
    const __m512i i0 = _mm512_set_epi16(17, 16, 15, 14, 13, 12, 11, 10, 17, 16, 15, 14, 13, 12, 11, 10,
                                        8, 7, 6, 5, 4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1);
    const __m512i i1 = _mm512_set_epi16(35, 34, 33, 32, 31, 30, 29, 28, 35, 34, 33, 32, 31, 30, 29, 28,
                                        26, 25, 24, 23, 22, 21, 20, 19, 26, 25, 24, 23, 22, 21, 20, 19);
    const __m512i sh = _mm512_set_epi16(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0,
                                        4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(15);
    *A = _mm512_loadu_si512((const void *)w);
    __m512i B = _mm512_maskz_loadu_epi16(0xf, (const void *)(w + 64));
    *c0 = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi16(i0, *A), sh), m4);
    *c1 = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutex2var_epi16(*A, i1, B), sh), m4);
}
T_512 static inline __m512i y_pair(const sl_q8b *y) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)y[0].qs)),
                              _mm256_loadu_si256((const __m256i *)(const void *)y[1].qs), 1);
}
T_512 static inline __m512i q8_0_pair(const uint8_t *w) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2))),
                              _mm256_loadu_si256((const __m256i *)(const void *)(w + 36)), 1);
}
/* Signed x signed bytes with vpdpbusd: |w| times y with w's sign moved onto y
 * (y is in [-127, 127], so negating it cannot overflow). */
T_512 static inline __m512i dot_i8_512(__m512i wv, __m512i yv) {
    __mmask64 neg = _mm512_movepi8_mask(wv);
    __m512i sy = _mm512_mask_sub_epi8(yv, neg, _mm512_setzero_si512(), yv);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wv), sy);
}

/* MLX affine (qaffine_x86.c, qamx_affine_x86.c): 16 scales of type t from p (any alignment), lanes past m zero. */
T_512 static inline __m512 ld_scales(const uint8_t *p, sl_dtype t, __mmask16 m) {
    if (t == SL_F32) return _mm512_maskz_loadu_ps(m, (const void *)p);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const void *)p);
    if (t == SL_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
T_512 static inline __mmask16 mask_upto(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* f16 values widened to f32: 8 (AVX2) or 16 under a mask (AVX-512). */
T_AVX2 static inline __m256 ld8_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
T_512 static inline __m512 ld16_f16(const uint8_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const void *)p));
}

/* sl_qd_prep_x24 with 16 lanes, bit for bit (qaffine_x86.c). */
void sl_v512_prep_x24(const float *x, size_t cols, int gs, int bits, int8_t *planes, float *d);

/* GGUF Q4_0 / Q8_0 in block lanes (qgemm_x86.c): the avx512 set's dots, generation rows (with their
 * per-token prep, SL_QD_Q40_PREP_BYTES) and prompt GEMM, one f32 order. */
float sl_v512_q4_0(const uint8_t *w, const sl_q8b *y, size_t nb);
float sl_v512_q8_0(const uint8_t *w, const sl_q8b *y, size_t nb);
void sl_v512_q4_0_prep(const sl_q8b *y, size_t nb, void *prep);
void sl_v512_q8_0_prep(const sl_q8b *y, size_t nb, void *prep);
void sl_v512_q4_0_rows(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, const void *prep, size_t nb,
                       float *out);
void sl_v512_q8_0_rows(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, const void *prep, size_t nb,
                       float *out);
void sl_v512_q4_0_rows_n(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, size_t ldy, int nt,
                         const void *prep, size_t nb, float *out, size_t ldo);
void sl_v512_q8_0_rows_n(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, size_t ldy, int nt,
                         const void *prep, size_t nb, float *out, size_t ldo);
void sl_v512_q4_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                       float *out, size_t ldo, void *scratch);
void sl_v512_q8_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                       float *out, size_t ldo, void *scratch);
/* Q4_K / Q6_K prompt tiles (qk_x86.c), sl_qd_q8k_mm_fn. */
void sl_v512_q4_k_mm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, size_t nb,
                     float *out, size_t ldo);
void sl_v512_q6_k_mm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, size_t nb,
                     float *out, size_t ldo);

void sl_v512_q4_k_rows(const uint8_t *w, size_t nr, const sl_q8kb *y, size_t nb, float *out);
void sl_v512_q6_k_rows(const uint8_t *w, size_t nr, const sl_q8kb *y, size_t nb, float *out);

/* MLX affine, 24-bit activations, in group lanes (qaffine_gl_x86.c): the
 * one-token dots (sl_qd_affine24_fn), their rows x tokens entries
 * (sl_qd_affine24_mm_fn), the prompt GEMMs (sl_qd_affine24_gemm_fn) and
 * their token form (sl_qd_x24_tiles_fn). */
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
void sl_v512_affine4_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                              size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                              float *out, size_t ldo, void *scratch);
void sl_v512_affine8_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                              size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                              float *out, size_t ldo, void *scratch);
void sl_v512_x24_tiles(const int8_t *planes, size_t c0, size_t cc, size_t cols, int gs, int bits, int i, int tn,
                       int8_t *tiles);
/* Dense f32 / f16 / bf16 prompt GEMM and generation rows (qdense_x86.c; qdot.h). */
void sl_v512_dense_mm(const uint8_t *w, size_t ldw, sl_dtype dt, int nr, const float *x, size_t ldx, const float *xp,
                      int nt, size_t n, float *out, size_t ldo, float *scratch);
void sl_v512_dense_pack(const float *x, size_t ldx, size_t n, int nt, int t0, int t1, float *xp);
void sl_v512_dense_rows(const uint8_t *w, size_t ldw, sl_dtype dt, size_t nr, const float *x, size_t n, float *out);

/* One token's attention rows and the softmax's exp-sum (qattn_x86.c; qdot.h
 * axpy_f16, att_scores_f16(_g), att_values_f16(_g), exp_sum, scale_max). */
void sl_avx2_axpy_f16(float *y, float a, const uint8_t *x, size_t n);
void sl_v512_att_values_f16(float *out, const float *p, const uint8_t *v, size_t stride, int n, size_t d);
void sl_v512_att_scores_f16_g(const float *q, size_t ldq, int g, int grp, const uint8_t *k, size_t stride, int n,
                              size_t d, float *out, size_t ldo);
void sl_v512_att_scores_f16_1(const float *q, const uint8_t *k, size_t stride, int n, size_t d, float *out);
void sl_v512_att_values_f16_g(float *out, size_t ldout, const float *p, size_t ldp, int g, int grp,
                              const uint8_t *v, size_t stride, int n, size_t d);
float sl_v512_exp_sum(float *x, int n, float mx);
float sl_v512_scale_max(float *x, int n, float s);

#endif

#endif
