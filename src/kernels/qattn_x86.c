/*
 * qattn_x86.c — x86-64 kernels for one token's attention over the f16 KV
 * cache (qdot.h axpy_f16, att_scores_f16(_g), att_values_f16(_g), exp_sum,
 * scale_max),
 * used by the AVX2 and AVX-512 sets of qdot_x86.c.
 *
 * Invariants: each key's score is the chain of the set's dense f16 dot (a
 * 16-lane FMA chain over the head's values, masked tail, one reduce in
 * _mm512_reduce_add_ps's pairing), each value row's contribution a product
 * then a sum per lane (axpy_f16's, no fma), so the grouped (_g) kernels give
 * the one-head kernels' bits and those give the portable loops' (tested in
 * tests/unit/test_kernels.c); nothing is read past n rows of d values.
 */
#include "kernels/qdot_x86.h"

#include <math.h>
#include <string.h>

#if defined(SL_QD_X86)

/* y += a * x for f16 x: a product, then a sum (no fma), as the portable loop. */
T_AVX2 void sl_avx2_axpy_f16(float *y, float a, const uint8_t *x, size_t n) {
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, ld8_f16(x + 2 * i))));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, x + 2 * i, 2);
        y[i] += a * _cvtsh_ss(h);
    }
}


/* Attention rows (qdot.h att_scores_f16 / att_values_f16): q's lanes and
 * the output's stay in registers for the whole run; each key's score is
 * v512_dense_f16's chain (fmadd over 16-lane chunks, masked tail, one
 * reduce_add) and each value's product then sum is axpy_f16's. */
T_512 void sl_v512_att_values_f16(float *out, const float *p, const uint8_t *v, size_t stride, int n, size_t d) {
    if (d % 8) {   /* axpy_f16's 8-lane body and scalar tail, row by row */
        for (int i = 0; i < n; i++) sl_avx2_axpy_f16(out, p[i], v + (size_t)i * stride, d);
        return;
    }
    __m512 acc[16];
    int nc = (int)(d / 16);
    bool half = d % 16 != 0;   /* a last 8 values */
    for (int c = 0; c < nc; c++) acc[c] = _mm512_loadu_ps(out + 16 * c);
    __m256 ah = half ? _mm256_loadu_ps(out + 16 * nc) : _mm256_setzero_ps();
    for (int i = 0; i < n; i++, v += stride) {
        for (size_t o = 0; o < 2 * d; o += 64) _mm_prefetch((const char *)(v + 16 * stride + o), _MM_HINT_T0);
        __m512 pv = _mm512_set1_ps(p[i]);
        for (int c = 0; c < nc; c++) acc[c] = _mm512_add_ps(acc[c], _mm512_mul_ps(pv, ld16_f16(v + 32 * c, 0xffff)));
        if (half)
            ah = _mm256_add_ps(ah, _mm256_mul_ps(_mm512_castps512_ps256(pv),
                                                 _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(v + 32 * nc)))));
    }
    for (int c = 0; c < nc; c++) _mm512_storeu_ps(out + 16 * c, acc[c]);
    if (half) _mm256_storeu_ps(out + 16 * nc, ah);
}

/* Sixteen lane vectors reduced at once, v[i]'s 16 lanes to lane i of the
 * result, with _mm512_reduce_add_ps's pairing (l, l + 8), (l, l + 4),
 * (l, l + 2), (l, l + 1) for every vector: float addition commutes, so each
 * lane is bit for bit the reduce_add of its vector.  Shuffles move the halves
 * to be added beside each other; after the four levels lane 4q + j holds
 * vector q + 4j, and one permute puts vector i in lane i. */
T_512 static inline __m512 v512_reduce16(__m512 *v) {
    __m512 w[8], x[4], y[2];
    for (int p = 0; p < 8; p++)   /* (l, l + 8): 256-bit halves of vectors 2p, 2p + 1 */
        w[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44), _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
    for (int p = 0; p < 4; p++)   /* (l, l + 4): quarter 0 + 1 of each vector's pair */
        x[p] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * p], w[2 * p + 1], 0x88), _mm512_shuffle_f32x4(w[2 * p], w[2 * p + 1], 0xDD));
    for (int p = 0; p < 2; p++)   /* (l, l + 2) inside each quarter */
        y[p] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * p], x[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(x[2 * p], x[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 z = _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i back = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(back, z);
}

/* Rows ahead of the one in use that a single-slice run prefetches (16: the
 * next score block), and a multi-slice pass's rows a block with how far
 * ahead it prefetches them (whole spans of the slices, into L2). */
#ifndef SL_ATT_PF
#define SL_ATT_PF 64
#endif
enum { ATT_BLOCK = 32 };

/* One slice's g queries / outputs over the same rows: each row's 16-value
 * chunks widened once, then every query's chain (or every output's lanes)
 * exactly as above.  Scores go 16 keys at a time (one v512_reduce16 per head
 * instead of 16 reduce_adds: the same bits), the next block's rows
 * prefetched when pf (a cache row per position holds every KV head, so one
 * head's rows are strided); the last n % 16 keys one by one.  Outputs go in
 * column blocks of at most 16 accumulators (the lanes' chains do not depend
 * on the blocking); d % 16 == 8 takes the single calls. */
T_512 static void v512_scores_run(const float *q, size_t ldq, int g, const uint8_t *k, size_t stride, int n, size_t d,
                                  float *out, size_t ldo, bool pf) {
    int nc = (int)((d + 15) / 16), i = 0;
    __mmask16 tm = (__mmask16)(d % 16 ? (1u << (d % 16)) - 1u : 0xffffu);
    __m512 kf[16 * 16];   /* the block's 16 rows widened once: row r's chunk c at kf[16 * c + r] */
    for (; i + 16 <= n; i += 16) {
        const uint8_t *kb = k + (size_t)i * stride;
        if (pf && i + 32 <= n)
            for (int r = 16; r < 32; r++)
                for (size_t o = 0; o < 2 * d; o += 64) _mm_prefetch((const char *)(kb + (size_t)r * stride + o), _MM_HINT_T0);
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < 16; r++) kf[16 * c + r] = ld16_f16(kb + (size_t)r * stride + 32 * c, c == nc - 1 ? tm : 0xffff);
        for (int j = 0; j < g; j++) {
            const float *qj = q + (size_t)j * ldq;
            __m512 acc[16];
            for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
            for (int c = 0; c < nc; c++) {
                __m512 qc = _mm512_maskz_loadu_ps(c == nc - 1 ? tm : 0xffff, qj + 16 * c);
                for (int r = 0; r < 16; r++) acc[r] = _mm512_fmadd_ps(kf[16 * c + r], qc, acc[r]);
            }
            _mm512_storeu_ps(out + (size_t)j * ldo + (size_t)i, v512_reduce16(acc));
        }
    }
    for (k += (size_t)i * stride; i < n; i++, k += stride) {
        __m512 kc[16];
        for (int c = 0; c < nc; c++) kc[c] = ld16_f16(k + 32 * c, c == nc - 1 ? tm : 0xffff);
        for (int j = 0; j < g; j++) {
            const float *qj = q + (size_t)j * ldq;
            __m512 acc = _mm512_setzero_ps();
            for (int c = 0; c < nc; c++)
                acc = _mm512_fmadd_ps(kc[c], _mm512_maskz_loadu_ps(c == nc - 1 ? tm : 0xffff, qj + 16 * c), acc);
            out[(size_t)j * ldo + (size_t)i] = _mm512_reduce_add_ps(acc);
        }
    }
}

/* gj outputs' column chunks [c0, c0 + cw) over n rows, gj * cw <= 16
 * accumulators; called with constant gj and cw (values_tile_k), so they
 * stay in registers: with run-time counts the compiler kept them on the
 * stack, a load and a store a row each (round 18). */
T_512 static inline __attribute__((always_inline)) void values_tile(float *out, size_t ldout, const float *p, size_t ldp,
                                                                    const uint8_t *v, size_t stride, int n, size_t d,
                                                                    int c0, bool pf, const int gj, const int cw) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int j = 0; j < gj; j++)
#pragma GCC unroll 16
        for (int c = 0; c < cw; c++) acc[j * cw + c] = _mm512_loadu_ps(out + (size_t)j * ldout + 16 * (size_t)(c0 + c));
    for (int i = 0; i < n; i++, v += stride) {
        if (pf)
            for (size_t o = 0; o < 2 * d; o += 64) _mm_prefetch((const char *)(v + 16 * stride + o), _MM_HINT_T0);
        __m512 vc[16];
#pragma GCC unroll 16
        for (int c = 0; c < cw; c++) vc[c] = ld16_f16(v + 32 * (c0 + c), 0xffff);
#pragma GCC unroll 16
        for (int j = 0; j < gj; j++) {
            __m512 pv = _mm512_set1_ps(p[(size_t)j * ldp + (size_t)i]);
#pragma GCC unroll 16
            for (int c = 0; c < cw; c++) acc[j * cw + c] = _mm512_add_ps(acc[j * cw + c], _mm512_mul_ps(pv, vc[c]));
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < gj; j++)
#pragma GCC unroll 16
        for (int c = 0; c < cw; c++) _mm512_storeu_ps(out + (size_t)j * ldout + 16 * (size_t)(c0 + c), acc[j * cw + c]);
}

/* values_tile with gj, cw constant: gj of 1, 2, 4 or 8 and cw a power of
 * two, gj * cw <= 16; one function each (inlined into one switch, the
 * copies shared their arrays on the stack again). */
#define VT_FN(G, C)                                                                                                   \
    T_512 __attribute__((noinline)) static void values_tile_##G##_##C(float *out, size_t ldout, const float *p,      \
                                                                      size_t ldp, const uint8_t *v, size_t stride, \
                                                                      int n, size_t d, int c0, bool pf) {          \
        values_tile(out, ldout, p, ldp, v, stride, n, d, c0, pf, G, C);                                             \
    }
VT_FN(1, 1) VT_FN(1, 2) VT_FN(1, 4) VT_FN(1, 8) VT_FN(1, 16) VT_FN(2, 1) VT_FN(2, 2) VT_FN(2, 4) VT_FN(2, 8)
VT_FN(4, 1) VT_FN(4, 2) VT_FN(4, 4) VT_FN(8, 1) VT_FN(8, 2)
#undef VT_FN

T_512 static void values_tile_k(float *out, size_t ldout, const float *p, size_t ldp, const uint8_t *v, size_t stride,
                                int n, size_t d, int c0, bool pf, int gj, int cw) {
#define VT(G, C) \
    case G * 32 + C: values_tile_##G##_##C(out, ldout, p, ldp, v, stride, n, d, c0, pf); break;
    switch (gj * 32 + cw) {
        VT(1, 1) VT(1, 2) VT(1, 4) VT(1, 8) VT(1, 16) VT(2, 1) VT(2, 2) VT(2, 4) VT(2, 8)
        VT(4, 1) VT(4, 2) VT(4, 4) VT(8, 1) VT(8, 2)
        default: break;
    }
#undef VT
}

/* Outputs in column blocks: g of 1, 2, 4 or 8 through values_tile_k, with
 * as many chunks a block as 16 accumulators hold (a power of two, fewer at
 * the end), the next 16 rows prefetched in the first block when pf; other g
 * in blocks of at most 16 accumulators by run-time counts.  The lanes'
 * chains do not depend on the blocking. */
T_512 static void v512_values_run(float *out, size_t ldout, const float *p, size_t ldp, int g, const uint8_t *v,
                                  size_t stride, int n, size_t d, bool pf) {
    if (d % 16) {
        for (int j = 0; j < g; j++) sl_v512_att_values_f16(out + (size_t)j * ldout, p + (size_t)j * ldp, v, stride, n, d);
        return;
    }
    int nc = (int)(d / 16), w = 16 / g < 1 ? 1 : 16 / g;   /* chunks per block: g * w <= 16 accumulators */
    if (g == 1 || g == 2 || g == 4 || g == 8) {
        for (int c0 = 0; c0 < nc;) {
            int cw = w;
            while (cw > nc - c0) cw /= 2;
            values_tile_k(out, ldout, p, ldp, v, stride, n, d, c0, pf && c0 == 0, g, cw);
            c0 += cw;
        }
        return;
    }
    for (int c0 = 0; c0 < nc; c0 += w) {
        int cw = nc - c0 < w ? nc - c0 : w;
        for (int jb = 0; jb < g; jb += 16) {   /* g > 16: heads in groups of 16 (one chunk each) */
            int gj = g - jb < 16 ? g - jb : 16;
            __m512 acc[16];
            for (int j = 0; j < gj; j++)
                for (int c = 0; c < cw; c++) acc[j * cw + c] = _mm512_loadu_ps(out + (size_t)(jb + j) * ldout + 16 * (size_t)(c0 + c));
            const uint8_t *vr = v;
            for (int i = 0; i < n; i++, vr += stride) {
                if (pf && c0 == 0 && jb == 0)
                    for (size_t o = 0; o < 2 * d; o += 64) _mm_prefetch((const char *)(vr + 16 * stride + o), _MM_HINT_T0);
                __m512 vc[16];
                for (int c = 0; c < cw; c++) vc[c] = ld16_f16(vr + 32 * (c0 + c), 0xffff);
                for (int j = 0; j < gj; j++) {
                    __m512 pv = _mm512_set1_ps(p[(size_t)(jb + j) * ldp + (size_t)i]);
                    for (int c = 0; c < cw; c++) acc[j * cw + c] = _mm512_add_ps(acc[j * cw + c], _mm512_mul_ps(pv, vc[c]));
                }
            }
            for (int j = 0; j < gj; j++)
                for (int c = 0; c < cw; c++) _mm512_storeu_ps(out + (size_t)(jb + j) * ldout + 16 * (size_t)(c0 + c), acc[j * cw + c]);
        }
    }
}

/* Rows [i, i + nb) of a multi-slice pass, SL_ATT_PF rows ahead: the slices'
 * whole span (g / grp slices of d values, adjacent in the row) into L2. */
T_512 static inline void att_prefetch_span(const uint8_t *k, size_t stride, int i, int nb, int n, size_t span) {
    for (int r = i + SL_ATT_PF; r < i + SL_ATT_PF + nb && r < n; r++)
        for (size_t o = 0; o < span; o += 64) _mm_prefetch((const char *)(k + (size_t)r * stride + o), _MM_HINT_T1);
}

/* The blocked walk of both kernels below (slices of grp queries, ATT_BLOCK rows at a time, every slice
 * over the block before the next): scores (in: queries, out: scores at column i) or values (in: weights at
 * column i, out: outputs). */
T_512 static void att_slices(bool values, const float *in, size_t ldin, float *out, size_t ldout, int g, int grp,
                             const uint8_t *kv, size_t stride, int n, size_t d) {
    size_t span = (size_t)(g / grp) * 2 * d;
    for (int i = 0; i < n; i += ATT_BLOCK) {
        int nb = n - i < ATT_BLOCK ? n - i : ATT_BLOCK;
        att_prefetch_span(kv, stride, i, nb, n, span);
        for (int j = 0; j < g; j += grp) {
            const uint8_t *rows = kv + (size_t)i * stride + (size_t)(j / grp) * 2 * d;
            if (values)
                v512_values_run(out + (size_t)j * ldout, ldout, in + (size_t)j * ldin + (size_t)i, ldin, grp, rows,
                                stride, nb, d, false);
            else
                v512_scores_run(in + (size_t)j * ldin, ldin, grp, rows, stride, nb, d, out + (size_t)j * ldout + (size_t)i,
                                ldout, false);
        }
    }
}

/* g queries in slices of grp (qdot.h att_scores_f16_g): one slice runs
 * alone; several go ATT_BLOCK rows at a time, every slice over the block
 * before the next block, so the rows are read as one span per position
 * (in order through memory: the hardware's stream, not one stride a slice).
 * Each query's chain is the same whatever the blocking (per key: one dot). */
T_512 void sl_v512_att_scores_f16_g(const float *q, size_t ldq, int g, int grp, const uint8_t *k, size_t stride, int n,
                                    size_t d, float *out, size_t ldo) {
    if (grp >= g) {
        v512_scores_run(q, ldq, g, k, stride, n, d, out, ldo, true);
        return;
    }
    att_slices(false, q, ldq, out, ldo, g, grp, k, stride, n, d);
}

T_512 void sl_v512_att_scores_f16_1(const float *q, const uint8_t *k, size_t stride, int n, size_t d, float *out) {
    v512_scores_run(q, 0, 1, k, stride, n, d, out, 0, true);
}

/* Outputs in slices of grp (qdot.h att_values_f16_g), blocked as the scores:
 * each output lane still adds its rows' products in row order. */
T_512 void sl_v512_att_values_f16_g(float *out, size_t ldout, const float *p, size_t ldp, int g, int grp,
                                    const uint8_t *v, size_t stride, int n, size_t d) {
    if (grp >= g) {
        v512_values_run(out, ldout, p, ldp, g, v, stride, n, d, true);
        return;
    }
    att_slices(true, p, ldp, out, ldout, g, grp, v, stride, n, d);
}

/* exp(x) for x <= 0, 0 below -87.6 (where expf < 9.5e-39, subnormal; down to
 * there k >= -126 and y * 2^k is the subnormal product expf gives):
 * x = k ln2 + r with k = round(x log2 e) and r by a two-part ln 2, e^r by
 * Cephes' expf polynomial, 2^k built in the exponent field. */
T_512 static inline __m512 v512_exp_neg(__m512 x) {
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.6f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.6f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mov_ps(keep, _mm512_mul_ps(y, _mm512_castsi512_ps(e)));
}

T_512 float sl_v512_exp_sum(float *x, int n, float mx) {
    __m512 m = _mm512_set1_ps(mx), s = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = v512_exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
        _mm512_mask_storeu_ps(x + i, k, e);
        s = _mm512_mask_add_ps(s, k, s, e);
    }
    return _mm512_reduce_add_ps(s);
}

/* x *= s and the largest x: a product per element (the scalar loop's), and
 * vmaxps(x, m), which keeps m unless x > m (NaN never taken), per lane then
 * across lanes.  The maximum's value is order-free; only which zero of +0 /
 * -0 could differ, and exp(x - mx) is the same for both. */
T_512 float sl_v512_scale_max(float *x, int n, float s) {
    __m512 sv = _mm512_set1_ps(s), m = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), sv);
        _mm512_mask_storeu_ps(x + i, k, v);
        m = _mm512_mask_max_ps(m, k, v, m);
    }
    float l[16], mx = -INFINITY;
    _mm512_storeu_ps(l, m);
    for (int j = 0; j < 16; j++)
        if (l[j] > mx) mx = l[j];
    return mx;
}

#endif
