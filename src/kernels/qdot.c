/*
 * qdot.c — portable quantized dot products (see qdot.h), activation
 * quantizers, and the run-time choice among portable / AVX2 / AVX-512 / NEON.
 *
 * The portable loops are plain integer arithmetic over one block at a time
 * (written so the compiler vectorises the inner loops) and define the
 * results: every SIMD set must give the same integer block sums and differ
 * only in how the f32 block terms are added (tests/unit/test_kernels.c).
 */
#include "kernels/qdot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype_kernels.h"
#include "kernels/matmul.h"
#include "silica/cpu.h"

/* ---- activation quantizers ---- */

static int8_t q8_round(float v) {
    float r = nearbyintf(v);
    if (r > 127.0f) r = 127.0f;
    if (r < -127.0f) r = -127.0f;
    return (int8_t)r;
}

void sl_qd_quantize_q8(const float *x, size_t n, sl_q8b *out) {
    for (size_t b = 0; b < n / 32; b++) {
        const float *v = x + b * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        int32_t s = 0;
        for (int j = 0; j < 32; j++) {
            out[b].qs[j] = q8_round(v[j] * id);
            s += out[b].qs[j];
        }
        out[b].d = d;
        out[b].s = s;
    }
}

void sl_qd_quantize_q8k(const float *x, size_t n, sl_q8kb *out) {
    for (size_t b = 0; b < n / 256; b++) {
        const float *v = x + b * 256;
        float amax = 0.0f;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(v[j]));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 256; j++) out[b].qs[j] = q8_round(v[j] * id);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += out[b].qs[g * 16 + j];
            out[b].bsums[g] = (int16_t)s;
        }
        out[b].d = d;
    }
}

/* ---- portable dots ---- */

static float p_q4_0(const uint8_t *w, const sl_q8b *y, size_t nb) {
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += 18) {
        const uint8_t *qs = w + 2;
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += (int32_t)(qs[j] & 15) * y[b].qs[j] + (int32_t)(qs[j] >> 4) * y[b].qs[j + 16];
        sumi -= 8 * y[b].s;
        acc += sl_qd_f16(w) * y[b].d * (float)sumi;
    }
    return acc;
}

static float p_q8_0(const uint8_t *w, const sl_q8b *y, size_t nb) {
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += 34) {
        const int8_t *qs = (const int8_t *)(w + 2);
        int32_t sumi = 0;
        for (int j = 0; j < 32; j++) sumi += (int32_t)qs[j] * y[b].qs[j];
        acc += sl_qd_f16(w) * y[b].d * (float)sumi;
    }
    return acc;
}

/* Q4_1: d, m (f16), 16 bytes of codes; w_i = d*q_i + m, so
 * w . x = d*dy*sum(q*qy) + m*dy*sum(qy). */
static float p_q4_1(const uint8_t *w, const sl_q8b *y, size_t nb) {
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += 20) {
        const uint8_t *qs = w + 4;
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += (int32_t)(qs[j] & 15) * y[b].qs[j] + (int32_t)(qs[j] >> 4) * y[b].qs[j + 16];
        acc += sl_qd_f16(w) * y[b].d * (float)sumi + sl_qd_f16(w + 2) * y[b].d * (float)y[b].s;
    }
    return acc;
}

static float p_q4_k(const uint8_t *w, const sl_q8kb *y, size_t nb) {
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += 144) {
        const uint8_t *scales = w + 4, *qs = w + 16;
        const int8_t *q8 = y[b].qs;
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            sl_qd_k4_scale(scales, 2 * c, &sc0, &m0);
            sl_qd_k4_scale(scales, 2 * c + 1, &sc1, &m1);
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo += (int32_t)(qs[32 * c + l] & 15) * q8[64 * c + l];
                hi += (int32_t)(qs[32 * c + l] >> 4) * q8[64 * c + 32 + l];
            }
            sumi += sc0 * lo + sc1 * hi;
            summ += m0 * (y[b].bsums[4 * c] + y[b].bsums[4 * c + 1]) + m1 * (y[b].bsums[4 * c + 2] + y[b].bsums[4 * c + 3]);
        }
        acc += y[b].d * (sl_qd_f16(w) * (float)sumi - sl_qd_f16(w + 2) * (float)summ);
    }
    return acc;
}

static float p_q6_k(const uint8_t *w, const sl_q8kb *y, size_t nb) {
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += 210) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192), *q8 = y[b].qs;
        int32_t sumi = 0;
        for (int half = 0; half < 2; half++) {
            int32_t g[8] = {0};
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int v1 = (ql[l] & 15) | (((qh[l] >> 0) & 3) << 4);
                int v2 = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
                int v3 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                int v4 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                g[is] += (v1 - 32) * q8[l];
                g[is + 2] += (v2 - 32) * q8[l + 32];
                g[is + 4] += (v3 - 32) * q8[l + 64];
                g[is + 6] += (v4 - 32) * q8[l + 96];
            }
            for (int k = 0; k < 8; k++) sumi += sc[k] * g[k];
            ql += 64;
            qh += 32;
            sc += 8;
            q8 += 128;
        }
        acc += sl_qd_f16(w + 208) * y[b].d * (float)sumi;
    }
    return acc;
}

static uint32_t load_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* MLX affine, nt tokens per pass: each word's codes are converted once,
 * then every token keeps its own partial sums in the one-token order, so
 * out[t] equals the nt = 1 result bit for bit (BITS is a constant after
 * inlining: 8 lanes of 4 bits or 4 of 8 bits per word). */
__attribute__((always_inline)) static inline void p_affine_nt(int bits, const uint8_t *words, const float *sc, const float *bi, const float *x,
                               size_t ldx, const float *xsum, int nt, size_t groups, int gs, float *out) {
    const int lanes = 32 / bits;
    const uint32_t mask = (1u << bits) - 1u;
    size_t wpg = (size_t)gs / (size_t)lanes;
    float acc[SL_QD_TILE] = {0};
    for (size_t g = 0; g < groups; g++) {
        float part[SL_QD_TILE][8] = {{0}};
        const uint8_t *wg = words + 4 * g * wpg;
        const float *xg = x + g * (size_t)gs;
        for (size_t k = 0; k < wpg; k++) {
            uint32_t v = load_u32(wg + 4 * k);
            float q[8];
            for (int j = 0; j < lanes; j++) q[j] = (float)((v >> (bits * j)) & mask);
            for (int t = 0; t < nt; t++) {
                const float *xt = xg + (size_t)t * ldx + (size_t)lanes * k;
                for (int j = 0; j < lanes; j++) part[t][j] += q[j] * xt[j];
            }
        }
        for (int t = 0; t < nt; t++) {
            const float *p = part[t];
            float qd = bits == 4 ? ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
                                 : (p[0] + p[1]) + (p[2] + p[3]);
            acc[t] += sc[g] * qd + bi[g] * xsum[(size_t)t * groups + g];
        }
    }
    for (int t = 0; t < nt; t++) out[t] = acc[t];
}

SL_QD_AFFINE_FROM_CORE(p, p_affine_nt)   /* constant trip counts of 4 vectorise */

/* ---- MLX affine, 24-bit activations (see qdot.h) ---- */

int sl_qd_x24_ok(int bits, int gs, size_t cols) {
    if ((gs != 32 && gs != 64 && gs != 128) || cols / (size_t)gs > SL_QD_X24_GROUPS) return 0;
    return (bits == 4 || bits == 8) && cols % 64 == 0;
}

/* Position of element e of cols in the planes (the codes' byte order):
 * 4-bit blocks of 128 elements (64 code bytes), the last one 64 when
 * cols % 128 == 64. */
static size_t x24_pos(size_t e, size_t cols, int bits) {
    if (bits == 8) return e;
    size_t c = e & ~(size_t)127, j = e & 127, half = cols - c >= 128 ? 64 : 32;
    return c + (j & 1) * half + j / 2;
}

/* v - 256 * floor((v + 128) / 256): the low signed byte (v >= -2^24). */
static int32_t low_s8(int32_t v) { return v - 256 * (((v + 128 + (1 << 24)) >> 8) - (1 << 16)); }

void sl_qd_prep_x24(const float *x, size_t cols, int gs, int bits, int8_t *planes, float *d) {
    int8_t *ph = planes, *pm = planes + cols, *pl = planes + 2 * cols;
    for (size_t g = 0; g < cols / (size_t)gs; g++) {
        const float *v = x + g * (size_t)gs;
        float amax = 0.0f;
        for (int j = 0; j < gs; j++) amax = fmaxf(amax, fabsf(v[j]));
        float dg = amax / (float)SL_QD_X24_MAX, id = dg > 0.0f ? 1.0f / dg : 0.0f;
        for (int j = 0; j < gs; j++) {
            float r = nearbyintf(v[j] * id);
            if (r > (float)SL_QD_X24_MAX) r = (float)SL_QD_X24_MAX;
            if (r < -(float)SL_QD_X24_MAX) r = -(float)SL_QD_X24_MAX;
            int32_t q = (int32_t)r, l = low_s8(q), q1 = (q - l) / 256, m = low_s8(q1), h = (q1 - m) / 256;
            size_t p = x24_pos(g * (size_t)gs + (size_t)j, cols, bits);
            ph[p] = (int8_t)h;
            pm[p] = (int8_t)m;
            pl[p] = (int8_t)l;
        }
        d[g] = dg;
    }
}

static float scale_at(const uint8_t *p, sl_dtype t, size_t g) {
    if (t == SL_F32) {
        float f;
        memcpy(&f, p + 4 * g, 4);
        return f;
    }
    uint16_t h = (uint16_t)(p[2 * g] | p[2 * g + 1] << 8);
    return t == SL_F16 ? sl_f16_to_f32(h) : sl_bf16_to_f32(h);
}

float sl_qd_affine_x24_ref(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                           const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs, int bits) {
    float acc = 0.0f, bacc = 0.0f;
    for (size_t g = 0; g < cols / (size_t)gs; g++) {
        int64_t s = 0;
        for (size_t e = g * (size_t)gs; e < (g + 1) * (size_t)gs; e++) {
            int32_t q = bits == 8 ? codes[e] : (codes[e / 2] >> (4 * (e & 1))) & 15;
            size_t p = x24_pos(e, cols, bits);
            s += (int64_t)q * (65536 * planes[p] + 256 * planes[cols + p] + planes[2 * cols + p]);
        }
        acc += scale_at(scales, sdt, g) * d[g] * (float)s;
        bacc += scale_at(biases, sdt, g) * xsum[g];
    }
    return acc + bacc;
}

/* ---- the dense GEMMs' token chunks and packed form (qdot.h) ---- */
int sl_qd_dense_chunk(size_t n, size_t xbytes, int mult, int max) {
    size_t c = xbytes / (n * sizeof(float) + 1);
    c -= c % (size_t)mult;
    return c < (size_t)mult ? mult : c > (size_t)max ? max : (int)c;
}

void sl_qd_dense_pack_blocks(const float *x, size_t ldx, size_t n, int nt, int t0, int t1, float *xp, int tc,
                             size_t kc) {
    for (int t = t0; t < t1; t++) {
        int ch = t / tc, i = t % tc, tn = nt - ch * tc < tc ? nt - ch * tc : tc;
        float *base = xp + (size_t)ch * (size_t)tc * n;
        for (size_t c0 = 0; c0 < n; c0 += kc) {
            size_t cn = n - c0 < kc ? n - c0 : kc;
            memcpy(base + c0 * (size_t)tn + (size_t)i * cn, x + (size_t)t * ldx + c0, cn * sizeof(float));
        }
    }
}

/* The tile as independent dots (matmul.c's reference order). */
static void p_tile(const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nt, size_t n, float *out) {
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) out[t * nr + r] = sl_dot_f32(w + (size_t)r * ldw, x + (size_t)t * ldx, n);
}

const sl_qd_kernels sl_qd_portable = {
    .name = "portable", .q4_0 = p_q4_0, .q8_0 = p_q8_0, .q4_1 = p_q4_1, .q4_k = p_q4_k, .q6_k = p_q6_k,
    .affine4 = p_affine4, .affine8 = p_affine8, .affine4_nt = p_affine4_nt,
    .affine8_nt = p_affine8_nt, .tile = p_tile};

/* ---- dispatch ---- */

const sl_qd_kernels *sl_qd_by_name(const char *name) {
    if (!name || strcmp(name, "portable") == 0 || strcmp(name, "scalar") == 0) return &sl_qd_portable;
    const sl_cpu_features *c = sl_cpu();
    (void)c;
#if defined(SL_QD_X86)
    if (strcmp(name, "avx2") == 0 && c->avx2 && c->fma && c->f16c) return &sl_qd_avx2;
    if (strcmp(name, "avx512") == 0 && c->avx512f && c->avx512bw && c->avx512vl && c->avx512vnni && c->avx2 &&
        c->fma && c->f16c)
        return &sl_qd_avx512;
    if (strcmp(name, "amx") == 0 && sl_qd_by_name("avx512")) return sl_qd_amx(NULL);
#endif
#if defined(SL_QD_NEON)
    if (strcmp(name, "neon") == 0 && c->neon) return &sl_qd_neon;
#if defined(SL_QD_NEON_DOT)
    if (strcmp(name, "neondot") == 0 && c->neon && c->dotprod) return &sl_qd_neon_dot;
#endif
#endif
    return NULL;
}

static const sl_qd_kernels *g_active;

void sl_qd_force(const sl_qd_kernels *k) { __atomic_store_n(&g_active, k, __ATOMIC_RELEASE); }

const sl_qd_kernels *sl_qd_active(void) {
    const sl_qd_kernels *k = __atomic_load_n(&g_active, __ATOMIC_ACQUIRE);
    if (k) return k;
    static const char *const order[] = {"amx", "avx512", "avx2", "neondot", "neon"};
    k = &sl_qd_portable;   /* the best set this CPU runs and SILICA_SIMD allows (simd_cap.c) */
    for (int i = 0; i < 5; i++) {
        const sl_qd_kernels *c = sl_qd_by_name(order[i]);
        if (c && sl_k_simd_allows(order[i])) { k = c; break; }
    }
    __atomic_store_n(&g_active, k, __ATOMIC_RELEASE);
    return k;
}
