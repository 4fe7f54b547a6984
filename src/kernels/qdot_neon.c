/*
 * qdot_neon.c — arm64 Advanced SIMD dot products (qdot.h): two sets, "neon"
 * (armv8-a baseline: integer dots by vmull_s8 + pairwise accumulate) and
 * "neondot" (SDOT, armv8.2 dotprod, on every Apple Silicon core: enabled
 * per function with a target attribute under gcc, or when the compiler
 * targets it, e.g. Apple clang's default apple-m1; qdot.c picks it only
 * when sl_cpu() reports dotprod).
 *
 * Q4_0 / Q4_1 / Q8_0 add the f32 block terms in the portable order with the
 * same integer sums, so they are bit-identical to the portable kernels
 * (products of <= 8-bit values fit int16: |w| <= 128, |y| <= 127).  MLX
 * affine keeps f32 activations (FMA on dequantized lanes: 8-bit codes are
 * not signed bytes for SDOT), up to 4 tokens per pass over the converted
 * codes with the one-token chain per token, for every batch size.  Dense dots,
 * rows and GEMM (qdense_neon.c) and the tile use 8 lanes per step (two f32x4
 * accumulators) per (row, token) pair, the same chain in all (qdot_neon.h),
 * so batching and thread splits change no bits.  Q4_K / Q6_K are
 * bit-identical to portable too (same integer sums, same f32 order), in the
 * one-token dots and in the 4 x 4 prompt tiles (each block decoded once per
 * 64 tokens).  Loads are unaligned-safe (vld1 on byte pointers); tails are
 * copied to zero-padded stack buffers, never read past n.
 */
#include "kernels/qdot_neon.h"

#if defined(SL_QD_NEON)
#include <math.h>
#include <string.h>

static inline float f16v(const uint8_t *p) {   /* exact, like sl_f16_to_f32 (FCVT) */
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

/* ---- integer dots: 16 x int8 . 16 x int8 into 4 x int32 ---- */
static inline int32x4_t dot16_mull(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

#define Q8_KERNELS(SFX, ATTR, DOT)                                                                \
    ATTR static float q4_0_##SFX(const uint8_t *w, const sl_q8b *y, size_t nb) {                 \
        float acc = 0.0f;                                                                         \
        const uint8x16_t m4 = vdupq_n_u8(15);                                                     \
        const int8x16_t k8 = vdupq_n_s8(8);                                                       \
        for (size_t b = 0; b < nb; b++, w += 18) {                                                \
            uint8x16_t v = vld1q_u8(w + 2);                                                       \
            int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m4)), k8);                    \
            int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), k8);                   \
            int32x4_t s = DOT(DOT(vdupq_n_s32(0), lo, vld1q_s8(y[b].qs)), hi, vld1q_s8(y[b].qs + 16)); \
            acc = fmaf(f16v(w) * y[b].d, (float)vaddvq_s32(s), acc);                              \
        }                                                                                         \
        return acc;                                                                               \
    }                                                                                             \
    ATTR static float q4_1_##SFX(const uint8_t *w, const sl_q8b *y, size_t nb) {                 \
        float acc = 0.0f;                                                                         \
        const uint8x16_t m4 = vdupq_n_u8(15);                                                     \
        for (size_t b = 0; b < nb; b++, w += 20) {                                                \
            uint8x16_t v = vld1q_u8(w + 4);                                                       \
            int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, m4)), hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4)); \
            int32x4_t s = DOT(DOT(vdupq_n_s32(0), lo, vld1q_s8(y[b].qs)), hi, vld1q_s8(y[b].qs + 16)); \
            acc += f16v(w) * y[b].d * (float)vaddvq_s32(s) + f16v(w + 2) * y[b].d * (float)y[b].s;  \
        }                                                                                         \
        return acc;                                                                               \
    }                                                                                             \
    ATTR static float q8_0_##SFX(const uint8_t *w, const sl_q8b *y, size_t nb) {                 \
        float acc = 0.0f;                                                                         \
        for (size_t b = 0; b < nb; b++, w += 34) {                                                \
            const int8_t *q = (const int8_t *)(w + 2);                                            \
            int32x4_t s = DOT(DOT(vdupq_n_s32(0), vld1q_s8(q), vld1q_s8(y[b].qs)), vld1q_s8(q + 16), \
                              vld1q_s8(y[b].qs + 16));                                            \
            acc = fmaf(f16v(w) * y[b].d, (float)vaddvq_s32(s), acc);                              \
        }                                                                                         \
        return acc;                                                                               \
    }

Q8_KERNELS(neon, , dot16_mull)

/* Q4_K / Q6_K: the portable integer sums, 16 bytes per dot step, each
 * sub-block's lanes multiplied by its scale and summed across lanes once per
 * block (exact: the same integer); the f32 block terms in the portable order
 * (bit-identical). */
#define K_KERNELS(SFX, ATTR, DOT)                                                                 \
    ATTR static float q4_k_##SFX(const uint8_t *w, const sl_q8kb *y, size_t nb) {                \
        float acc = 0.0f;                                                                         \
        const uint8x16_t m4 = vdupq_n_u8(15);                                                     \
        for (size_t b = 0; b < nb; b++, w += 144) {                                               \
            const uint8_t *scales = w + 4, *qs = w + 16;                                          \
            const int8_t *q8 = y[b].qs;                                                           \
            int32_t summ = 0;                                                                     \
            int32x4_t a = vdupq_n_s32(0);                                                         \
            for (int c = 0; c < 4; c++) {                                                         \
                uint8_t sc0, m0, sc1, m1;                                                         \
                sl_qd_k4_scale(scales, 2 * c, &sc0, &m0);                                         \
                sl_qd_k4_scale(scales, 2 * c + 1, &sc1, &m1);                                     \
                uint8x16_t v0 = vld1q_u8(qs + 32 * c), v1 = vld1q_u8(qs + 32 * c + 16);           \
                int32x4_t lo = DOT(DOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(v0, m4)), vld1q_s8(q8 + 64 * c)), \
                                   vreinterpretq_s8_u8(vandq_u8(v1, m4)), vld1q_s8(q8 + 64 * c + 16)); \
                int32x4_t hi = DOT(DOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), vld1q_s8(q8 + 64 * c + 32)), \
                                   vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)), vld1q_s8(q8 + 64 * c + 48)); \
                a = vmlaq_n_s32(vmlaq_n_s32(a, lo, sc0), hi, sc1);                                \
                summ += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) +                        \
                        m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);                     \
            }                                                                                     \
            int32_t sumi = vaddvq_s32(a);                                                         \
            acc += y[b].d * (f16v(w) * (float)sumi - f16v(w + 2) * (float)summ);                  \
        }                                                                                         \
        return acc;                                                                               \
    }                                                                                             \
    ATTR static float q6_k_##SFX(const uint8_t *w, const sl_q8kb *y, size_t nb) {                \
        float acc = 0.0f;                                                                         \
        const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);                                 \
        const int8x16_t k32 = vdupq_n_s8(32);                                                     \
        for (size_t b = 0; b < nb; b++, w += 210) {                                               \
            const uint8_t *ql = w, *qh = w + 128;                                                 \
            const int8_t *sc = (const int8_t *)(w + 192), *q8 = y[b].qs;                          \
            int32x4_t a = vdupq_n_s32(0);                                                         \
            for (int half = 0; half < 2; half++) {                                                \
                for (int is = 0; is < 2; is++) {                                                  \
                    int l = 16 * is;                                                              \
                    uint8x16_t p = vld1q_u8(ql + l), c = vld1q_u8(ql + l + 32), h = vld1q_u8(qh + l); \
                    uint8x16_t v[4];                                                              \
                    v[0] = vorrq_u8(vandq_u8(p, m4), vshlq_n_u8(vandq_u8(h, m3), 4));             \
                    v[1] = vorrq_u8(vandq_u8(c, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m3), 4)); \
                    v[2] = vorrq_u8(vshrq_n_u8(p, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), m3), 4)); \
                    v[3] = vorrq_u8(vshrq_n_u8(c, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4));           \
                    for (int k = 0; k < 4; k++) {                                                 \
                        int8x16_t sv = vsubq_s8(vreinterpretq_s8_u8(v[k]), k32);                  \
                        a = vmlaq_n_s32(a, DOT(vdupq_n_s32(0), sv, vld1q_s8(q8 + l + 32 * k)), sc[is + 2 * k]); \
                    }                                                                             \
                }                                                                                 \
                ql += 64;                                                                         \
                qh += 32;                                                                         \
                sc += 8;                                                                          \
                q8 += 128;                                                                        \
            }                                                                                     \
            acc += f16v(w + 208) * y[b].d * (float)vaddvq_s32(a);                                 \
        }                                                                                         \
        return acc;                                                                               \
    }

K_KERNELS(neon, , dot16_mull)

/* ---- GGUF Q4_0 / Q8_0 GEMM tiles (qdot.h sl_qd_q8_mm_fn; SDOT or vmull) ----
 * The dots above add one fused term per block, acc = fma(d_w * d_y,
 * (float)sum_b, acc), in block order.  A tile of 4 rows x 4 tokens keeps
 * that chain per (row, token) pair in the lanes of one f32x4 per row
 * (lane t: token t): each row's block decoded once, each token's block
 * loaded once, the four tokens' integer sums folded into one vector by
 * pairwise adds (exact), d_w * d_y a vector multiply of the same two f32,
 * and one vfmaq per row and block: every output has its dot's bits.  Rows
 * and tokens past the last whole tile go through the dot. */
static inline void q4_0_dec(const uint8_t *b, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t v = vld1q_u8(b + 2);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
}
static inline void q8_0_dec(const uint8_t *b, int8x16_t *lo, int8x16_t *hi) {
    *lo = vld1q_s8((const int8_t *)(b + 2));
    *hi = vld1q_s8((const int8_t *)(b + 18));
}
#define Q8_MM(NAME, ATTR, DOT, BB, DEC, DOT1)                                                              \
    ATTR static void NAME##_44(const uint8_t *w, size_t ldw, const sl_q8b *y, size_t ldy, size_t nb, float *out, \
                                size_t ldo) {                                                     \
        float32x4_t acc[4];                                                                       \
        for (int r = 0; r < 4; r++) acc[r] = vdupq_n_f32(0.0f);                                   \
        for (size_t b = 0; b < nb; b++) {                                                         \
            int8x16_t y0[4], y1[4];                                                               \
            float dy[4];                                                                          \
            for (int t = 0; t < 4; t++) {                                                         \
                const sl_q8b *yb = y + (size_t)t * ldy + b;                                       \
                y0[t] = vld1q_s8(yb->qs), y1[t] = vld1q_s8(yb->qs + 16), dy[t] = yb->d;           \
            }                                                                                     \
            float32x4_t dyv = vld1q_f32(dy);                                                      \
            for (int r = 0; r < 4; r++) {                                                         \
                const uint8_t *wb = w + (size_t)r * ldw + b * BB;                                 \
                int8x16_t lo, hi;                                                                 \
                DEC(wb, &lo, &hi);                                                                \
                int32x4_t s[4];                                                                   \
                for (int t = 0; t < 4; t++) s[t] = DOT(DOT(vdupq_n_s32(0), lo, y0[t]), hi, y1[t]); \
                int32x4_t p = vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));        \
                acc[r] = vfmaq_f32(acc[r], vmulq_n_f32(dyv, f16v(wb)), vcvtq_f32_s32(p));        \
            }                                                                                     \
        }                                                                                         \
        for (int t = 0; t < 4; t++)                                                               \
            for (int r = 0; r < 4; r++) out[(size_t)t * ldo + (size_t)r] = vgetq_lane_f32_(acc[r], t); \
    }                                                                                             \
    ATTR static void NAME(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb, \
                           float *out, size_t ldo) {                                              \
        int r = 0;                                                                                \
        for (; r + 4 <= nr; r += 4) {                                                             \
            int t = 0;                                                                            \
            for (; t + 4 <= nt; t += 4)                                                           \
                NAME##_44(w + (size_t)r * ldw, ldw, y + (size_t)t * ldy, ldy, nb, out + (size_t)t * ldo + r, ldo); \
            for (; t < nt; t++)                                                                   \
                for (int i = r; i < r + 4; i++) out[(size_t)t * ldo + i] = DOT1(w + (size_t)i * ldw, y + (size_t)t * ldy, nb); \
        }                                                                                         \
        for (; r < nr; r++)                                                                       \
            for (int t = 0; t < nt; t++) out[(size_t)t * ldo + r] = DOT1(w + (size_t)r * ldw, y + (size_t)t * ldy, nb); \
    }
static inline float vgetq_lane_f32_(float32x4_t v, int i) {   /* a run-time lane index */
    float f[4];
    vst1q_f32(f, v);
    return f[i];
}
Q8_MM(q4_0_neon_mm, , dot16_mull, 18, q4_0_dec, q4_0_neon)
Q8_MM(q8_0_neon_mm, , dot16_mull, 34, q8_0_dec, q8_0_neon)

/* ---- GGUF Q4_K / Q6_K GEMM tiles (qdot.h sl_qd_q8k_mm_fn; SDOT or vmull) ----
 * The dots above add one f32 term per block in block order, formed from the
 * block's exact integer sums.  Here 4 rows' block b is decoded once (codes
 * as signed bytes in the activations' order, Q6_K's -32 applied, scales as
 * int32) for up to K_GROUP 4-token tiles, whose f32 sums advance block by
 * block together (lane t of a row's f32x4: token t).  Per (row, token) the
 * scale-weighted integer sum is one int32x4 (a DOT per 16 elements, one
 * multiply-add of the scale per sub-block: exact in any order), folded
 * across tokens by pairwise adds; the f32 term is the dot's expression
 * lane-wise with the same operations: every output has its dot's bits.
 * Q4_K's mins term pairs each min with its two bsums, per token. */
typedef struct {
    int8_t c[4][256];
    int32_t sc[4][16], mn[4][8];
    float d[4], dm[4];
} k_dec_n;

static inline void k_decode_q4k(const uint8_t *w, int8_t *c, int32_t *sc, int32_t *mn) {
    const uint8x16_t m4 = vdupq_n_u8(15);
    for (int k = 0; k < 4; k++) {
        uint8x16_t v0 = vld1q_u8(w + 16 + 32 * k), v1 = vld1q_u8(w + 32 + 32 * k);
        vst1q_s8(c + 64 * k, vreinterpretq_s8_u8(vandq_u8(v0, m4)));
        vst1q_s8(c + 64 * k + 16, vreinterpretq_s8_u8(vandq_u8(v1, m4)));
        vst1q_s8(c + 64 * k + 32, vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)));
        vst1q_s8(c + 64 * k + 48, vreinterpretq_s8_u8(vshrq_n_u8(v1, 4)));
    }
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        sl_qd_k4_scale(w + 4, j, &s, &m);
        sc[j] = s, mn[j] = m;
    }
}
static inline void k_decode_q6k(const uint8_t *w, int8_t *c, int32_t *sc) {
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t k32 = vdupq_n_s8(32);
    for (int h = 0; h < 2; h++)
        for (int is = 0; is < 2; is++) {
            const uint8_t *ql = w + 64 * h + 16 * is, *qh = w + 128 + 32 * h + 16 * is;
            uint8x16_t a = vld1q_u8(ql), b = vld1q_u8(ql + 32), q = vld1q_u8(qh);
            uint8x16_t v[4];
            v[0] = vorrq_u8(vandq_u8(a, m4), vshlq_n_u8(vandq_u8(q, m3), 4));
            v[1] = vorrq_u8(vandq_u8(b, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(q, 2), m3), 4));
            v[2] = vorrq_u8(vshrq_n_u8(a, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(q, 4), m3), 4));
            v[3] = vorrq_u8(vshrq_n_u8(b, 4), vshlq_n_u8(vshrq_n_u8(q, 6), 4));
            for (int k = 0; k < 4; k++) vst1q_s8(c + 128 * h + 16 * is + 32 * k, vsubq_s8(vreinterpretq_s8_u8(v[k]), k32));
        }
    for (int j = 0; j < 16; j++) sc[j] = (int8_t)w[192 + j];
}

#define K_GROUP 16   /* 4-token tiles per decode of a block: 64 tokens */
#define K_MM(NAME, ATTR, DOT)                                                                                   \
    ATTR static inline int32x4_t NAME##_sums(const int8_t *c, const int32_t *sc, int eps,                     \
                                              const int8_t *y) {                                               \
        int32x4_t a = vdupq_n_s32(0);                                                                          \
        for (int j = 0; j < 256 / eps; j++) {                                                                  \
            int32x4_t s = DOT(vdupq_n_s32(0), vld1q_s8(c + eps * j), vld1q_s8(y + eps * j));                   \
            if (eps == 32) s = DOT(s, vld1q_s8(c + eps * j + 16), vld1q_s8(y + eps * j + 16));                \
            a = vmlaq_n_s32(a, s, sc[j]);                                                                      \
        }                                                                                                      \
        return a;                                                                                              \
    }                                                                                                          \
    ATTR __attribute__((always_inline)) static inline void NAME##_k(int q4, const uint8_t *w, size_t ldw, int nr, \
                                                                    const sl_q8kb *y, size_t ldy, int nt,      \
                                                                    size_t nb, float *out, size_t ldo) {       \
        k_dec_n kd;                                                                                            \
        int eps = q4 ? 32 : 16;                                                                                \
        for (int r0 = 0; r0 < nr; r0 += 4) {                                                                   \
            int rn = nr - r0 < 4 ? nr - r0 : 4;                                                                \
            const uint8_t *wr[4];                                                                              \
            for (int i = 0; i < 4; i++) wr[i] = w + (size_t)(r0 + (i < rn ? i : 0)) * ldw;                   \
            for (int g0 = 0; g0 < nt; g0 += 4 * K_GROUP) {                                                     \
                int gn = nt - g0 < 4 * K_GROUP ? nt - g0 : 4 * K_GROUP, ntl = (gn + 3) / 4;                    \
                float32x4_t acc[K_GROUP][4];                                                                   \
                for (int tl = 0; tl < ntl; tl++)                                                               \
                    for (int r = 0; r < 4; r++) acc[tl][r] = vdupq_n_f32(0.0f);                                \
                for (size_t b = 0; b < nb; b++) {                                                              \
                    for (int r = 0; r < 4; r++) {                                                              \
                        const uint8_t *wb = wr[r] + b * (q4 ? 144 : 210);                                      \
                        if (q4) {                                                                              \
                            kd.d[r] = f16v(wb), kd.dm[r] = f16v(wb + 2);                                       \
                            k_decode_q4k(wb, kd.c[r], kd.sc[r], kd.mn[r]);                                     \
                        } else {                                                                               \
                            kd.d[r] = f16v(wb + 208);                                                          \
                            k_decode_q6k(wb, kd.c[r], kd.sc[r]);                                               \
                        }                                                                                      \
                    }                                                                                          \
                    for (int tl = 0; tl < ntl; tl++) {                                                         \
                        int tn = gn - 4 * tl < 4 ? gn - 4 * tl : 4;                                            \
                        const sl_q8kb *yb[4];                                                                  \
                        float yd[4];                                                                           \
                        for (int t = 0; t < 4; t++)                                                            \
                            yb[t] = y + (size_t)(g0 + 4 * tl + (t < tn ? t : 0)) * ldy + b, yd[t] = yb[t]->d;  \
                        float32x4_t ydv = vld1q_f32(yd);                                                       \
                        int32x4_t bs[8];                                                                       \
                        if (q4)                                                                                \
                            for (int j = 0; j < 8; j++) {                                                      \
                                int32_t v[4];                                                                  \
                                for (int t = 0; t < 4; t++) v[t] = yb[t]->bsums[2 * j] + yb[t]->bsums[2 * j + 1]; \
                                bs[j] = vld1q_s32(v);                                                          \
                            }                                                                                  \
                        for (int r = 0; r < 4; r++) {                                                          \
                            int32x4_t s[4];                                                                    \
                            for (int t = 0; t < 4; t++) s[t] = NAME##_sums(kd.c[r], kd.sc[r], eps, yb[t]->qs); \
                            float32x4_t sumi = vcvtq_f32_s32(vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]))); \
                            float32x4_t term;                                                                  \
                            if (q4) {                                                                          \
                                int32x4_t m = vdupq_n_s32(0);                                                  \
                                for (int j = 0; j < 8; j++) m = vmlaq_n_s32(m, bs[j], kd.mn[r][j]);            \
                                term = vmulq_f32(ydv, vsubq_f32(vmulq_n_f32(sumi, kd.d[r]),                    \
                                                                vmulq_n_f32(vcvtq_f32_s32(m), kd.dm[r])));     \
                            } else {                                                                           \
                                term = vmulq_f32(vmulq_n_f32(ydv, kd.d[r]), sumi);                             \
                            }                                                                                  \
                            acc[tl][r] = vaddq_f32(acc[tl][r], term);                                          \
                        }                                                                                      \
                    }                                                                                          \
                }                                                                                              \
                for (int tl = 0; tl < ntl; tl++) {                                                             \
                    int t0 = g0 + 4 * tl, tn = nt - t0 < 4 ? nt - t0 : 4;                                      \
                    for (int r = 0; r < rn; r++)                                                               \
                        for (int t = 0; t < tn; t++) out[(size_t)(t0 + t) * ldo + (size_t)(r0 + r)] = vgetq_lane_f32_(acc[tl][r], t); \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }                                                                                                          \
    ATTR static void NAME##_q4_k_mm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, \
                                    size_t nb, float *out, size_t ldo) {                                       \
        NAME##_k(1, w, ldw, nr, y, ldy, nt, nb, out, ldo);                                                     \
    }                                                                                                          \
    ATTR static void NAME##_q6_k_mm(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt, \
                                    size_t nb, float *out, size_t ldo) {                                       \
        NAME##_k(0, w, ldw, nr, y, ldy, nt, nb, out, ldo);                                                     \
    }
K_MM(kn, , dot16_mull)

#if defined(SL_QD_NEON_DOT)
#if defined(__ARM_FEATURE_DOTPROD)
#define T_DOT
#else
#define T_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
T_DOT static inline int32x4_t dot16_sdot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
Q8_KERNELS(sdot, T_DOT, dot16_sdot)
K_KERNELS(sdot, T_DOT, dot16_sdot)

Q8_MM(q4_0_sdot_mm, T_DOT, dot16_sdot, 18, q4_0_dec, q4_0_sdot)
Q8_MM(q8_0_sdot_mm, T_DOT, dot16_sdot, 34, q8_0_dec, q8_0_sdot)
K_MM(ks, T_DOT, dot16_sdot)
#endif

/* ---- MLX affine, f32 activations ---- */
static inline float32x4_t u8q_f32(uint16x8_t v, int hi) {
    return vcvtq_f32_u32(hi ? vmovl_high_u16(v) : vmovl_u16(vget_low_u16(v)));
}
/* 16 code bytes (element order) -> 4 f32x4 (converted once per pass). */
static inline void dec16(uint8x16_t e, float32x4_t q[4]) {
    uint16x8_t a = vmovl_u8(vget_low_u8(e)), b = vmovl_high_u8(e);
    q[0] = u8q_f32(a, 0);
    q[1] = u8q_f32(a, 1);
    q[2] = u8q_f32(b, 0);
    q[3] = u8q_f32(b, 1);
}
/* 16 decoded codes . 16 floats into two accumulators (the one-token order). */
static inline void fma16(const float32x4_t q[4], const float *x, float32x4_t *p0, float32x4_t *p1) {
    *p0 = vfmaq_f32(*p0, q[0], vld1q_f32(x));
    *p1 = vfmaq_f32(*p1, q[1], vld1q_f32(x + 4));
    *p0 = vfmaq_f32(*p0, q[2], vld1q_f32(x + 8));
    *p1 = vfmaq_f32(*p1, q[3], vld1q_f32(x + 12));
}

/* MLX affine, NT tokens per pass over the row: the codes are converted once,
 * every token keeps its own chains (p0, p1 per group, acc, bacc) in the
 * one-token order, so out[t] is bit-identical to the NT = 1 result. */
__attribute__((always_inline)) static inline void n_affine_nt(int bits, const uint8_t *words, const float *sc,
                                                              const float *bi, const float *x, size_t ldx,
                                                              const float *xsum, int NT, size_t groups, int gs,
                                                              float *out) {
    float32x4_t acc[4];
    float bacc[4];
    const uint8x16_t m4 = vdupq_n_u8(15);
    for (int t = 0; t < NT; t++) acc[t] = vdupq_n_f32(0.0f), bacc[t] = 0.0f;
    for (size_t g = 0; g < groups; g++) {
        float32x4_t p0[4], p1[4], q[4], r[4];
        for (int t = 0; t < NT; t++) p0[t] = vdupq_n_f32(0.0f), p1[t] = p0[t];
        const float *xg = x + g * (size_t)gs;
        if (bits == 4) {
            const uint8_t *wg = words + g * (size_t)gs / 2;
            for (int k = 0; k < gs; k += 32, wg += 16) {
                uint8x16_t v = vld1q_u8(wg), lo = vandq_u8(v, m4), hi = vshrq_n_u8(v, 4);
                dec16(vzip1q_u8(lo, hi), q);
                dec16(vzip2q_u8(lo, hi), r);
                for (int t = 0; t < NT; t++) {
                    fma16(q, xg + (size_t)t * ldx + k, &p0[t], &p1[t]);
                    fma16(r, xg + (size_t)t * ldx + k + 16, &p0[t], &p1[t]);
                }
            }
        } else {
            const uint8_t *wg = words + g * (size_t)gs;
            for (int k = 0; k < gs; k += 16) {
                dec16(vld1q_u8(wg + k), q);
                for (int t = 0; t < NT; t++) fma16(q, xg + (size_t)t * ldx + k, &p0[t], &p1[t]);
            }
        }
        for (int t = 0; t < NT; t++) {
            acc[t] = vfmaq_n_f32(acc[t], vaddq_f32(p0[t], p1[t]), sc[g]);
            bacc[t] += bi[g] * xsum[(size_t)t * groups + g];
        }
    }
    for (int t = 0; t < NT; t++) out[t] = vaddvq_f32(acc[t]) + bacc[t];
}

SL_QD_AFFINE_FROM_CORE(n, n_affine_nt)

/* ---- the tile: the dense dot's chain (qdot_neon.h) per (row, token) pair ---- */
/* NR rows x NT tokens (4 x 2: 16 accumulators + 8 row vectors + 2 x of 32 registers). */
#define TILE_N(NR, NT)                                                                            \
    do {                                                                                          \
        float32x4_t a[NR][NT][2];                                                                 \
        for (int r = 0; r < NR; r++)                                                              \
            for (int t = 0; t < NT; t++) a[r][t][0] = a[r][t][1] = vdupq_n_f32(0.0f);             \
        size_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) {                                                              \
            float32x4_t w0[NR], w1[NR];                                                           \
            for (int r = 0; r < NR; r++) {                                                        \
                w0[r] = vld1q_f32(w + (size_t)r * ldw + i);                                       \
                w1[r] = vld1q_f32(w + (size_t)r * ldw + i + 4);                                   \
            }                                                                                     \
            for (int t = 0; t < NT; t++) {                                                        \
                float32x4_t x0 = vld1q_f32(x + (size_t)t * ldx + i), x1 = vld1q_f32(x + (size_t)t * ldx + i + 4); \
                for (int r = 0; r < NR; r++) {                                                    \
                    a[r][t][0] = vfmaq_f32(a[r][t][0], w0[r], x0);                                \
                    a[r][t][1] = vfmaq_f32(a[r][t][1], w1[r], x1);                                \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        if (i < n) {                                                                              \
            for (int r = 0; r < NR; r++)                                                          \
                for (int t = 0; t < NT; t++) {                                                    \
                    float tw[8] = {0}, tx[8] = {0};                                               \
                    memcpy(tw, w + (size_t)r * ldw + i, 4 * (n - i));                             \
                    memcpy(tx, x + (size_t)t * ldx + i, 4 * (n - i));                             \
                    a[r][t][0] = vfmaq_f32(a[r][t][0], vld1q_f32(tw), vld1q_f32(tx));             \
                    a[r][t][1] = vfmaq_f32(a[r][t][1], vld1q_f32(tw + 4), vld1q_f32(tx + 4));     \
                }                                                                                 \
        }                                                                                         \
        for (int t = 0; t < NT; t++)                                                              \
            for (int r = 0; r < NR; r++)                                                          \
                out[(size_t)t * (size_t)onr + (size_t)r] = vaddvq_f32(vaddq_f32(a[r][t][0], a[r][t][1])); \
    } while (0)

static void n_tile_4x2(const float *w, size_t ldw, const float *x, size_t ldx, size_t n, float *out, int onr) {
    TILE_N(4, 2);
}
static void n_tile_1x1(const float *w, size_t ldw, const float *x, size_t ldx, size_t n, float *out, int onr) {
    TILE_N(1, 1);
}
static void n_tile(const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nt, size_t n, float *out) {
    int t = 0;
    if (nr == 4)
        for (; t + 2 <= nt; t += 2) n_tile_4x2(w, ldw, x + (size_t)t * ldx, ldx, n, out + t * nr, nr);
    for (; t < nt; t++)
        for (int r = 0; r < nr; r++)
            n_tile_1x1(w + (size_t)r * ldw, ldw, x + (size_t)t * ldx, ldx, n, out + t * nr + r, nr);
}

/* Attention scores over f16 rows (qdot.h att_scores_f16): sl_neon_dense_f16's two
 * fma chains per row with q read from L1 once per row, no call per row. */
static void n_att_scores_f16(const float *q, const uint8_t *k, size_t stride, int n, size_t d, float *out) {
    if (d % 8) {
        for (int i = 0; i < n; i++) out[i] = sl_neon_dense_f16(k + (size_t)i * stride, q, d);
        return;
    }
    for (int i = 0; i < n; i++, k += stride) {
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, wa, wb;
        for (size_t j = 0; j < d; j += 8) {
            ld8_f16(k + 2 * j, &wa, &wb);
            a0 = vfmaq_f32(a0, wa, vld1q_f32(q + j));
            a1 = vfmaq_f32(a1, wb, vld1q_f32(q + j + 4));
        }
        out[i] = vaddvq_f32(vaddq_f32(a0, a1));
    }
}

/* exp(x) for x <= 0, 0 below -87.6 (where expf < 9.5e-39): k = round(x
 * log2 e), r = x - k ln2 by a two-part ln 2, e^r by Cephes' expf
 * polynomial, 2^k built in the exponent field (the AVX-512 set's steps). */
static inline float32x4_t n_exp_neg(float32x4_t x) {
    uint32x4_t keep = vcgeq_f32(x, vdupq_n_f32(-87.6f));
    x = vmaxq_f32(x, vdupq_n_f32(-87.6f));
    float32x4_t k = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, k, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, k, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), vdupq_n_f32(1.9875691500e-4f), r);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
    y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
    float32x4_t res = vmulq_f32(y, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(res), keep));
}

static float n_exp_sum(float *x, int n, float mx) {
    float32x4_t m = vdupq_n_f32(mx), s = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = n_exp_neg(vsubq_f32(vld1q_f32(x + i), m));
        vst1q_f32(x + i, e);
        s = vaddq_f32(s, e);
    }
    if (i < n) {   /* the tail padded with -inf: those lanes give 0 */
        float t[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        float32x4_t e = n_exp_neg(vsubq_f32(vld1q_f32(t), m));
        vst1q_f32(t, e);
        memcpy(x + i, t, sizeof(float) * (size_t)(n - i));
        s = vaddq_f32(s, e);
    }
    return vaddvq_f32(s);
}

/* y += a * x for f16 x: a product, then a sum (vmulq, vaddq: no fma), as the portable loop. */
static void n_axpy_f16(float *y, float a, const uint8_t *x, size_t n) {
    float32x4_t av = vdupq_n_f32(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t lo, hi;
        ld8_f16(x + 2 * i, &lo, &hi);
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(av, lo)));
        vst1q_f32(y + i + 4, vaddq_f32(vld1q_f32(y + i + 4), vmulq_f32(av, hi)));
    }
    for (; i < n; i++) {
        __fp16 h;
        memcpy(&h, x + 2 * i, 2);
        y[i] += a * (float)h;
    }
}

/* ---- activation quantizers (sl_qd_quantize_q8 / _q8k, bit for bit) ----
 * amax by vmaxnmq (IEEE maxNum: a NaN is skipped, as fmaxf skips it), the
 * same d = amax / 127 and 1 / d, round to nearest even (vrndnq, what
 * nearbyintf does in the default mode), the same clamp; the block sums are
 * exact integer sums. */
static inline float n_amax(const float *v, int n) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int i = 0; i < n; i += 4) m = vmaxnmq_f32(vabsq_f32(vld1q_f32(v + i)), m);
    return vmaxnmvq_f32(m);
}
/* 16 values times id -> 16 bytes at q; returns their sum. */
static inline int32_t n_q16(const float *v, float32x4_t id, int8_t *q) {
    const float32x4_t hi = vdupq_n_f32(127.0f), lo = vdupq_n_f32(-127.0f);
    int32x4_t r[4];
    for (int k = 0; k < 4; k++)
        r[k] = vcvtq_s32_f32(vmaxq_f32(vminq_f32(vrndnq_f32(vmulq_f32(vld1q_f32(v + 4 * k), id)), hi), lo));
    int16x8_t a = vcombine_s16(vmovn_s32(r[0]), vmovn_s32(r[1])), b = vcombine_s16(vmovn_s32(r[2]), vmovn_s32(r[3]));
    vst1q_s8(q, vcombine_s8(vmovn_s16(a), vmovn_s16(b)));
    return vaddvq_s32(vaddq_s32(vaddq_s32(r[0], r[1]), vaddq_s32(r[2], r[3])));
}
static void n_quantize_q8(const float *x, size_t n, sl_q8b *out) {
    for (size_t b = 0; b < n / 32; b++) {
        const float *v = x + b * 32;
        float d = n_amax(v, 32) / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        float32x4_t idv = vdupq_n_f32(id);
        out[b].s = n_q16(v, idv, out[b].qs) + n_q16(v + 16, idv, out[b].qs + 16);
        out[b].d = d;
    }
}
static void n_quantize_q8k(const float *x, size_t n, sl_q8kb *out) {
    for (size_t b = 0; b < n / 256; b++) {
        const float *v = x + b * 256;
        float d = n_amax(v, 256) / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        float32x4_t idv = vdupq_n_f32(id);
        for (int g = 0; g < 16; g++) out[b].bsums[g] = (int16_t)n_q16(v + 16 * g, idv, out[b].qs + 16 * g);
        out[b].d = d;
    }
}

const sl_qd_kernels sl_qd_neon = {
    .name = "neon", .q4_0 = q4_0_neon, .q8_0 = q8_0_neon, .q4_1 = q4_1_neon, .q4_k = q4_k_neon,
    .q4_0_mm = q4_0_neon_mm, .q8_0_mm = q8_0_neon_mm, .q4_k_mm = kn_q4_k_mm, .q6_k_mm = kn_q6_k_mm,
    .q6_k = q6_k_neon, .affine4 = n_affine4, .affine8 = n_affine8, .affine4_nt = n_affine4_nt,
    .affine8_nt = n_affine8_nt, .dense_f32 = sl_neon_dense_f32,
    .dense_f16 = sl_neon_dense_f16, .dense_bf16 = sl_neon_dense_bf16, .tile = n_tile, .dense_mm = sl_neon_dense_mm,
    .dense_pack = sl_neon_dense_pack, .dense_rows = sl_neon_dense_rows, .axpy_f16 = n_axpy_f16,
    .att_scores_f16 = n_att_scores_f16, .exp_sum = n_exp_sum, .quantize_q8 = n_quantize_q8,
    .quantize_q8k = n_quantize_q8k};
#if defined(SL_QD_NEON_DOT)
const sl_qd_kernels sl_qd_neon_dot = {
    .name = "neondot", .q4_0 = q4_0_sdot, .q8_0 = q8_0_sdot, .q4_1 = q4_1_sdot, .q4_k = q4_k_sdot,
    .q4_0_mm = q4_0_sdot_mm, .q8_0_mm = q8_0_sdot_mm, .q4_k_mm = ks_q4_k_mm, .q6_k_mm = ks_q6_k_mm,
    .q6_k = q6_k_sdot, .affine4 = n_affine4, .affine8 = n_affine8, .affine4_nt = n_affine4_nt,
    .affine8_nt = n_affine8_nt, .dense_f32 = sl_neon_dense_f32,
    .dense_f16 = sl_neon_dense_f16, .dense_bf16 = sl_neon_dense_bf16, .tile = n_tile, .dense_mm = sl_neon_dense_mm,
    .dense_pack = sl_neon_dense_pack, .dense_rows = sl_neon_dense_rows, .axpy_f16 = n_axpy_f16,
    .att_scores_f16 = n_att_scores_f16, .exp_sum = n_exp_sum, .quantize_q8 = n_quantize_q8,
    .quantize_q8k = n_quantize_q8k};
#endif
#else
typedef int sl_qdot_neon_unused; /* ISO C forbids an empty translation unit */
#endif
