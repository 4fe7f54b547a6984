/*
 * quant_gguf.c — GGUF (ggml) block formats: dequantize Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL to f32, and quantize
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL (the K-quants live in quant_kquant.c).
 *
 * Block layouts: llama.cpp ggml/src/ggml-common.h.  Every f32 result is
 * computed with the same operations, in the same order, as gguf-py's
 * quants.py (the bit-exact oracle of tests/py/test_quant.py), e.g. Q4_1 is
 * (d*q)+m with two roundings, K-quants first form d*sc and dmin*m, then
 * (d*sc)*q - dmin*m.  The quantizers follow gguf-py's (== llama.cpp's
 * reference) arithmetic: Q4_0 d = max/-8, q = trunc(x*(1/d) + 8.5) clipped
 * to 15; Q8_0 q = roundf(x*(1/d)), d = amax/127; ...  IQ4_NL follows
 * llama.cpp's quantize_iq4_nl without an importance matrix (what
 * llama-quantize runs): weights x^2, the scale -max/-127 refined over 15
 * candidates (itry -7..7), codes the nearest of the 16 non-linear values.
 *
 * Invariants: n is a multiple of the block size (checked); each block is
 * read and written through memcpy at fixed offsets inside its
 * block_bytes, so no access leaves the caller's buffers.
 */
#include <math.h>
#include <string.h>

#include "quant/quant_impl.h"

int sl_qi_quantize_q2_k(const float *x, size_t nb, uint8_t *out);
int sl_qi_quantize_q3_k(const float *x, size_t nb, uint8_t *out);
int sl_qi_quantize_q4_k(const float *x, size_t nb, uint8_t *out);
int sl_qi_quantize_q5_k(const float *x, size_t nb, uint8_t *out);
int sl_qi_quantize_q6_k(const float *x, size_t nb, uint8_t *out);

static const int8_t k_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return sl_f16_to_f32(h);
}
static inline void f2h(uint8_t *p, float f) {
    uint16_t h = sl_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* ---- dequantize: one block each ---- */

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 15) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    for (int j = 0; j < 16; j++) {
        float lo = d * (float)(b[4 + j] & 15), hi = d * (float)(b[4 + j] >> 4);
        y[j] = lo + m;
        y[j + 16] = hi + m;
    }
}

static void q5_codes(const uint8_t *qh4, const uint8_t *qs, int *q) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
        q[j + 16] = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    int q[32];
    q5_codes(b + 2, b + 6, q);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(q[j] - 16);
}

static void dq_q5_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    int q[32];
    q5_codes(b + 4, b + 8, q);
    for (int j = 0; j < 32; j++) {
        float t = d * (float)q[j];
        y[j] = t + m;
    }
}

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void dq_iq4_nl(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)k_iq4nl[b[2 + j] & 15];
        y[j + 16] = d * (float)k_iq4nl[b[2 + j] >> 4];
    }
}

/* Q2_K: scales[16] qs[64] d dmin (84 B) */
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = h2f(b + 80), dmin = h2f(b + 82);
    for (int e = 0; e < 256; e++) {
        int c = e / 128, j = (e % 128) / 32, l = e % 32, sub = e / 16;
        float q = (float)((qs[c * 32 + l] >> (2 * j)) & 3);
        float dl = d * (float)(sc[sub] & 15), ml = dmin * (float)(sc[sub] >> 4);
        float t = dl * q;
        y[e] = t - ml;
    }
}

/* Q3_K: hmask[32] qs[64] scales[12] d (110 B) */
static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *s = b + 96;
    float d = h2f(b + 108);
    float dl[16];
    for (int i = 0; i < 16; i++) {
        int lo = (s[i % 8] >> (4 * (i / 8))) & 15, hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        dl[i] = d * (float)((int8_t)(uint8_t)(lo | hi << 4) - 32);
    }
    for (int e = 0; e < 256; e++) {
        int c = e / 128, j = (e % 128) / 32, l = e % 32;
        int ql = (qs[c * 32 + l] >> (2 * j)) & 3;
        int h = ((hm[l] >> (e / 32)) & 1) ^ 1;
        y[e] = dl[e / 16] * (float)(ql - (h << 2));
    }
}

/* the 6-bit scales/mins of Q4_K / Q5_K (12 bytes) */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K: d dmin scales[12] qs[128] (144 B); Q5_K: d dmin scales[12] qh[32] qs[128] (176 B) */
static void dq_q45_k(const uint8_t *b, float *y, int five) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *s = b + 4, *qh = b + 16, *qs = five ? b + 48 : b + 16;
    float ds[8], dm[8];
    for (int j = 0; j < 8; j++) {
        int sc, m;
        k4_scale_min(s, j, &sc, &m);
        ds[j] = d * (float)sc;
        dm[j] = dmin * (float)m;
    }
    for (int e = 0; e < 256; e++) {
        int c = e / 64, h = (e % 64) / 32, l = e % 32, sub = e / 32;
        int q = (qs[c * 32 + l] >> (4 * h)) & 15;
        if (five) q |= ((qh[l] >> sub) & 1) << 4;
        float t = ds[sub] * (float)q;
        y[e] = t - dm[sub];
    }
}

/* Q6_K: ql[128] qh[64] scales[16] (i8) d (210 B) */
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    float d = h2f(b + 208);
    for (int e = 0; e < 256; e++) {
        int half = e / 128, r = e % 128;
        int lo = (ql[half * 64 + r % 64] >> (4 * (r / 64))) & 15;
        int hi = (qh[half * 32 + r % 32] >> (2 * (r / 32))) & 3;
        float ds = d * (float)(int8_t)b[192 + e / 16];
        y[e] = ds * (float)((int8_t)(uint8_t)(lo | hi << 4) - 32);
    }
}

typedef void (*dq_fn)(const uint8_t *, float *);
static void dq_q4_k(const uint8_t *b, float *y) { dq_q45_k(b, y, 0); }
static void dq_q5_k(const uint8_t *b, float *y) { dq_q45_k(b, y, 1); }

static dq_fn dq_for(sl_dtype t) {
    switch (t) {
    case SL_Q4_0: return dq_q4_0;
    case SL_Q4_1: return dq_q4_1;
    case SL_Q5_0: return dq_q5_0;
    case SL_Q5_1: return dq_q5_1;
    case SL_Q8_0: return dq_q8_0;
    case SL_Q2_K: return dq_q2_k;
    case SL_Q3_K: return dq_q3_k;
    case SL_Q4_K: return dq_q4_k;
    case SL_Q5_K: return dq_q5_k;
    case SL_Q6_K: return dq_q6_k;
    case SL_IQ4_NL: return dq_iq4_nl;
    default: return NULL;
    }
}

int sl_q_gguf_can_dequantize(sl_dtype t) { return dq_for(t) != NULL; }

int sl_q_gguf_can_quantize(sl_dtype t) { return dq_for(t) != NULL; }   /* every readable type is writable */

int sl_q_gguf_dequantize(sl_dtype type, const void *blocks, size_t n, float *out, sl_error *err) {
    dq_fn f = dq_for(type);
    if (!f)
        return sl_errorf(err, SL_EUNSUPPORTED,
                         "GGUF dequantization of %s is not supported (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K "
                         "Q6_K IQ4_NL)",
                         sl_dtype_name(type));
    const sl_dtype_info *inf = sl_dtype_get(type);
    int rc = sl_qi_check_n(inf->name, n, inf->block_elems, err);
    if (rc) return rc;
    if (n && (!blocks || !out)) return sl_errorf(err, SL_EINVAL, "%s dequantization: NULL buffer", inf->name);
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / inf->block_elems; i++) f(b + i * inf->block_bytes, out + i * inf->block_elems);
    return 0;
}

/* ---- quantize (gguf-py / llama.cpp reference arithmetic) ---- */

static float recip_or_zero(float d) { return d == 0.0f ? 0.0f : 1.0f / d; }

static uint8_t clip_u8(float t, int hi) {
    int v = t < 0.0f ? 0 : (int)t; /* t already truncated */
    return (uint8_t)(v > hi ? hi : v);
}

/* value of largest magnitude (first one on ties) */
static float signed_absmax(const float *x) {
    float amax = -1.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

static void min_max(const float *x, float *mn, float *mx) {
    float a = x[0], b = x[0];
    for (int j = 1; j < 32; j++) {
        a = x[j] < a ? x[j] : a;
        b = x[j] > b ? x[j] : b;
    }
    *mn = a;
    *mx = b;
}

static void q_q4_0(const float *x, uint8_t *b) {
    float d = signed_absmax(x) / -8.0f, id = recip_or_zero(d);
    uint8_t q[32];
    for (int j = 0; j < 32; j++) {
        float t = x[j] * id;
        q[j] = clip_u8(truncf(t + 8.5f), 15);
    }
    f2h(b, d);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void q_q4_1(const float *x, uint8_t *b) {
    float mn, mx;
    min_max(x, &mn, &mx);
    float d = (mx - mn) / 15.0f, id = recip_or_zero(d);
    uint8_t q[32];
    for (int j = 0; j < 32; j++) {
        float t = (x[j] - mn) * id;
        q[j] = clip_u8(truncf(t + 0.5f), 15);
    }
    f2h(b, d);
    f2h(b + 2, mn);
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void put_q5(const uint8_t *q, uint8_t *qh4, uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < 32; j++) qh |= (uint32_t)(q[j] >> 4) << j;
    memcpy(qh4, &qh, 4);
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] << 4));
}

static void q_q5_0(const float *x, uint8_t *b) {
    float d = signed_absmax(x) / -16.0f, id = recip_or_zero(d);
    uint8_t q[32];
    for (int j = 0; j < 32; j++) {
        float t = x[j] * id;
        q[j] = clip_u8(truncf(t + 16.5f), 31);
    }
    f2h(b, d);
    put_q5(q, b + 2, b + 6);
}

static void q_q5_1(const float *x, uint8_t *b) {
    float mn, mx;
    min_max(x, &mn, &mx);
    float d = (mx - mn) / 31.0f, id = recip_or_zero(d);
    uint8_t q[32];
    for (int j = 0; j < 32; j++) {
        float t = (x[j] - mn) * id;
        q[j] = clip_u8(truncf(t + 0.5f), 31);
    }
    f2h(b, d);
    f2h(b + 2, mn);
    put_q5(q, b + 4, b + 8);
}

static void q_q8_0(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    float d = amax / 127.0f, id = recip_or_zero(d);
    f2h(b, d);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

/* nearest of the 16 sorted IQ4_NL values (ties to the upper one, as ggml's best_index_int8) */
static int iq4nl_index(float x) {
    if (x <= (float)k_iq4nl[0]) return 0;
    if (x >= (float)k_iq4nl[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (x < (float)k_iq4nl[mid]) hi = mid;
        else lo = mid;
    }
    float a = x - (float)k_iq4nl[hi - 1], b = (float)k_iq4nl[hi] - x;
    return a < b ? hi - 1 : hi;
}

/* one IQ4_NL block: d (f16) qs[16] */
static void q_iq4_nl(const float *x, uint8_t *b) {
    float w[32], amax = 0, max = 0, d = 0;
    for (int j = 0; j < 32; j++) {
        w[j] = x[j] * x[j];
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (!(amax < 1e-15f)) {
        d = -max / (float)k_iq4nl[0];
        float id = 1 / d, sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            float q = (float)k_iq4nl[iq4nl_index(id * x[j])];
            float wq = w[j] * q;
            float t = wq * x[j];
            sumqx += t;
            float t2 = wq * q;
            sumq2 += t2;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
        float best = d * sumqx;
        for (int itry = -7; itry <= 7; itry++) {
            id = (float)(itry + k_iq4nl[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                float q = (float)k_iq4nl[iq4nl_index(id * x[j])];
                float wq = w[j] * q;
                float t = wq * x[j];
                sumqx += t;
                float t2 = wq * q;
                sumq2 += t2;
            }
            float lhs = sumqx * sumqx, rhs = best * sumq2;
            if (sumq2 > 0 && lhs > rhs) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
    }
    f2h(b, d);
    float id = d != 0.0f ? 1 / d : 0.0f;
    uint8_t L[32];
    for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4nl_index(id * x[j]);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(L[j] | (L[16 + j] << 4));
}

int sl_q_gguf_quantize(sl_dtype type, const float *src, size_t n, void *blocks, sl_error *err) {
    void (*f)(const float *, uint8_t *) = NULL;
    switch (type) {
    case SL_Q4_0: f = q_q4_0; break;
    case SL_Q4_1: f = q_q4_1; break;
    case SL_Q5_0: f = q_q5_0; break;
    case SL_Q5_1: f = q_q5_1; break;
    case SL_Q8_0: f = q_q8_0; break;
    case SL_IQ4_NL: f = q_iq4_nl; break;
    case SL_Q2_K:
    case SL_Q3_K:
    case SL_Q4_K:
    case SL_Q5_K:
    case SL_Q6_K: break;
    default:
        return sl_errorf(err, SL_EUNSUPPORTED,
                         "GGUF quantization to %s is not supported (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K "
                         "Q6_K IQ4_NL)",
                         sl_dtype_name(type));
    }
    const sl_dtype_info *inf = sl_dtype_get(type);
    int rc = sl_qi_check_n(inf->name, n, inf->block_elems, err);
    if (rc) return rc;
    if (n && (!src || !blocks)) return sl_errorf(err, SL_EINVAL, "%s quantization: NULL buffer", inf->name);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return sl_errorf(err, SL_EINVAL, "%s quantization: element %zu is not finite (%g)", inf->name, i,
                             (double)src[i]);
    uint8_t *b = blocks;
    size_t nb = n / inf->block_elems;
    if (type == SL_Q2_K) return sl_qi_quantize_q2_k(src, nb, b);
    if (type == SL_Q3_K) return sl_qi_quantize_q3_k(src, nb, b);
    if (type == SL_Q4_K) return sl_qi_quantize_q4_k(src, nb, b);
    if (type == SL_Q5_K) return sl_qi_quantize_q5_k(src, nb, b);
    if (type == SL_Q6_K) return sl_qi_quantize_q6_k(src, nb, b);
    for (size_t i = 0; i < nb; i++) f(src + i * 32, b + i * inf->block_bytes);
    return 0;
}
