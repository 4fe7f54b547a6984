/*
 * qdot_neon.h — what the arm64 Advanced SIMD kernel files share (internal):
 * the 8-lane dense loads (f32 / f16 / bf16 bytes at any alignment widened
 * exactly to two f32x4) and the dense dot, rows and GEMM entries of
 * qdense_neon.c that qdot_neon.c puts in its sets.
 *
 * Invariant: every dense result (dot, rows, GEMM) for a (row, token) pair
 * is one chain: two f32x4 accumulators, a0 over lanes 0..3 and a1 over
 * lanes 4..7 of each 8-column step in column order (vfmaq_f32), a last
 * step zero-padded to 8 on both sides, then vaddvq_f32(a0 + a1) — so the
 * three give the same bits whatever rows and tokens share a call.
 */
#ifndef SILICA_KERNELS_QDOT_NEON_H
#define SILICA_KERNELS_QDOT_NEON_H

#include "kernels/qdot.h"

#if defined(SL_QD_NEON)
#include <arm_neon.h>

static inline void ld8_f32(const uint8_t *p, float32x4_t *a, float32x4_t *b) {
    *a = vld1q_f32((const float *)(const void *)p);
    *b = vld1q_f32((const float *)(const void *)(p + 16));
}
static inline void ld8_f16(const uint8_t *p, float32x4_t *a, float32x4_t *b) {
    float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(p));
    *a = vcvt_f32_f16(vget_low_f16(h));
    *b = vcvt_high_f32_f16(h);
}
static inline void ld8_bf16(const uint8_t *p, float32x4_t *a, float32x4_t *b) {
    uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(p));
    *a = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    *b = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
}

/* The one-row dense dots (qdot.h sl_qd_dense_fn). */
float sl_neon_dense_f32(const uint8_t *w, const float *x, size_t n);
float sl_neon_dense_f16(const uint8_t *w, const float *x, size_t n);
float sl_neon_dense_bf16(const uint8_t *w, const float *x, size_t n);
/* qdot.h sl_qd_dense_mm_fn, sl_qd_dense_pack_fn, sl_qd_dense_rows_fn. */
void sl_neon_dense_mm(const uint8_t *w, size_t ldw, sl_dtype dt, int nr, const float *x, size_t ldx, const float *xp,
                      int nt, size_t n, float *out, size_t ldo, float *scratch);
void sl_neon_dense_pack(const float *x, size_t ldx, size_t n, int nt, int t0, int t1, float *xp);
void sl_neon_dense_rows(const uint8_t *w, size_t ldw, sl_dtype dt, size_t nr, const float *x, size_t n, float *out);
#endif

#endif
