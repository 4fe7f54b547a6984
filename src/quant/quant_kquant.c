/*
 * quant_kquant.c — GGUF K-quant quantizers Q4_K and Q6_K (256-element
 * super-blocks).  gguf-py has no quantizer for them, so these follow the
 * algorithm of llama.cpp's reference quantize_row_q4_K_ref /
 * quantize_row_q6_K_ref (no importance matrix), written from its
 * description:
 *
 *  Q4_K: per sub-block of 32, weights w = sqrt(mean x^2) + |x|; a weighted
 *   least-squares search over 21 candidate inverse scales
 *   (nmax - 1 + 0.1*is)/(max - min) for a scale and (non-positive) min;
 *   the 8 scales and 8 mins are then requantized to 6 bits against the
 *   block maxima (d = max_scale/63, dmin = max_min/63 in f16) and the codes
 *   recomputed as nearest((x + dmin*m)/(d*sc)) clamped to 0..15.
 *  Q6_K: per sub-block of 16, make_qx_quants(nmax 32, weights x^2) with 18
 *   perturbed scales; the 16 scales go to int8 against -128/max_scale
 *   (d = 1/iscale in f16), codes nearest(x/(d*sc)) clamped to -32..31, +32.
 * Rounding is nearest_int: x + 1.5*2^23, i.e. round half to even.
 * The arithmetic is kept in the reference's order, separate statements, so
 * no fused multiply-add changes a bit (the reference built with
 * -ffp-contract=off; a llama-quantize built with FMA contraction may differ
 * in rare last-bit ties).
 *
 * Invariants: callers (sl_q_gguf_quantize) pass whole super-blocks of finite
 * values; every code written is within its field's width.
 */
#include <math.h>
#include <string.h>

#include "quant/quant_impl.h"

static inline int nearest_int(float f) {
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* scale/min search for one sub-block (n values, codes 0..nmax) */
static float qkx2(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min, uint8_t *Laux,
                  float rmin, float rdelta, int nstep, int use_mad) {
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        float t = w[i] * x[i];
        sum_w += w[i];
        sum_x += t;
    }
    if (mn > 0) mn = 0;
    if (mx == mn) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -mn;
        return 0.0f;
    }
    float iscale = (float)nmax / (mx - mn), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - mn));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float a = scale * (float)L[i];
        float b = a + mn;
        float diff = b - x[i];
        float dd = use_mad ? fabsf(diff) : diff * diff;
        best += w[i] * dd;
    }
    for (int is = 0; is <= nstep; is++) {
        float num = rmin + rdelta * (float)is;
        num = num + (float)nmax;
        iscale = num / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - mn))));
            Laux[i] = (uint8_t)l;
            float wl = w[i] * (float)l;
            sum_l += wl;
            float wll = wl * (float)l;
            sum_l2 += wll;
            float wlx = wl * x[i];
            sum_xl += wlx;
        }
        float p1 = sum_w * sum_l2, p2 = sum_l * sum_l;
        float D = p1 - p2;
        if (D > 0) {
            float a1 = sum_w * sum_xl, a2 = sum_x * sum_l;
            float this_scale = (a1 - a2) / D;
            float b1 = sum_l2 * sum_x, b2 = sum_l * sum_xl;
            float this_min = (b1 - b2) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur = 0;
            for (int i = 0; i < n; i++) {
                float a = this_scale * (float)Laux[i];
                float b = a + this_min;
                float diff = b - x[i];
                float dd = use_mad ? fabsf(diff) : diff * diff;
                cur += w[i] * dd;
            }
            if (cur < best) {
                memcpy(L, Laux, (size_t)n);
                best = cur;
                scale = this_scale;
                mn = this_min;
            }
        }
    }
    *the_min = -mn;
    return scale;
}

static float h16(float f) { return sl_f16_to_f32(sl_f32_to_f16(f)); }

/* Q4_K / Q5_K common part: per sub-block of 32 a qkx2 search (codes
 * 0..nmax), 6-bit scales and mins against the block maxima, d and dmin in
 * f16 (out[0..3]), the 12 packed scale bytes (out[4..15]), then the codes
 * recomputed from the stored scales into L. */
static void q45_block(const float *x, int nmax, float rmin, int nstep, uint8_t *out, uint8_t *L) {
    uint8_t Laux[32], *sc12 = out + 4;
    float w[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) {
            float sq = x[32 * j + l] * x[32 * j + l];
            sum_x2 += sq;
        }
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = qkx2(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    memset(sc12, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            sc12[j] = ls;
            sc12[j + 4] = lm;
        } else {
            sc12[j + 4] = (uint8_t)((ls & 15) | ((lm & 15) << 4));
            sc12[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc12[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    uint16_t dh = sl_f32_to_f16(max_scale / 63.0f), mh = sl_f32_to_f16(max_min / 63.0f);
    memcpy(out, &dh, 2);
    memcpy(out + 2, &mh, 2);
    float dd = sl_f16_to_f32(dh), dmn = sl_f16_to_f32(mh);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        if (j < 4) {
            sc = sc12[j] & 63;
            m = sc12[j + 4] & 63;
        } else {
            sc = (sc12[j + 4] & 15) | ((sc12[j - 4] >> 6) << 4);
            m = (sc12[j + 4] >> 4) | ((sc12[j] >> 6) << 4);
        }
        float d = dd * (float)sc;
        if (!(d != 0.0f)) continue;
        float dm = dmn * (float)m;
        for (int i = 0; i < 32; i++) {
            float t = x[32 * j + i] + dm;
            L[32 * j + i] = (uint8_t)imax(0, imin(nmax, nearest_int(t / d)));
        }
    }
}

int sl_qi_quantize_q4_k(const float *x, size_t nb, uint8_t *out) {
    for (size_t ib = 0; ib < nb; ib++, x += 256, out += 144) {
        uint8_t L[256], *qs = out + 16;
        q45_block(x, 15, -1.0f, 20, out, L);
        for (int j = 0; j < 256; j += 64)
            for (int l = 0; l < 32; l++) qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
    return 0;
}

/* Q5_K: d dmin scales[12] qh[32] qs[128]; bit 4 of code 64c+32h+l goes to
 * qh[l] bit 2c+h. */
int sl_qi_quantize_q5_k(const float *x, size_t nb, uint8_t *out) {
    for (size_t ib = 0; ib < nb; ib++, x += 256, out += 176) {
        uint8_t L[256], *qh = out + 16, *ql = out + 48;
        q45_block(x, 31, -0.5f, 15, out, L);
        memset(qh, 0, 32);
        for (int c = 0; c < 4; c++, ql += 32)
            for (int j = 0; j < 32; j++) {
                int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
                if (l1 > 15) l1 -= 16, qh[j] |= (uint8_t)(1u << (2 * c));
                if (l2 > 15) l2 -= 16, qh[j] |= (uint8_t)(2u << (2 * c));
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
    }
    return 0;
}

/* Q2_K: scales[16] qs[64] d dmin (84 B).  Per sub-block of 16: qkx2 with
 * weights |x|, codes 0..3, mean absolute error (rmin -0.5, 15 steps); 4-bit
 * scales and mins against max/15. */
int sl_qi_quantize_q2_k(const float *x, size_t nb, uint8_t *out) {
    for (size_t ib = 0; ib < nb; ib++, x += 256, out += 84) {
        uint8_t L[256], Laux[16], *sc = out, *qs = out + 16;
        float w[16], mins[16], scales[16], max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = qkx2(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        uint16_t dh = 0, mh = 0;   /* f16 zero */
        memset(sc, 0, 16);
        if (max_scale > 0) {
            float iscale = 15.0f / max_scale;
            for (int j = 0; j < 16; j++) sc[j] = (uint8_t)nearest_int(iscale * scales[j]);
            dh = sl_f32_to_f16(max_scale / 15.0f);
        }
        if (max_min > 0) {
            float iscale = 15.0f / max_min;
            for (int j = 0; j < 16; j++) sc[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            mh = sl_f32_to_f16(max_min / 15.0f);
        }
        memcpy(out + 80, &dh, 2);
        memcpy(out + 82, &mh, 2);
        float dd = sl_f16_to_f32(dh), dmn = sl_f16_to_f32(mh);
        for (int j = 0; j < 16; j++) {
            float d = dd * (float)(sc[j] & 15);
            if (!(d != 0.0f)) continue;
            float dm = dmn * (float)(sc[j] >> 4);
            for (int i = 0; i < 16; i++) {
                float t = x[16 * j + i] + dm;
                L[16 * j + i] = (uint8_t)imax(0, imin(3, nearest_int(t / d)));
            }
        }
        for (int j = 0; j < 256; j += 128)
            for (int l = 0; l < 32; l++)
                qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
    return 0;
}

/* make_qx_quants(n, nmax, x, L, rmse_type = 1 (weights x^2)) */
static float qx(int n, int nmax, const float *x, int8_t *L) {
    float mx = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            mx = x[i];
        }
    }
    if (amax < 1e-15f) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)-nmax / mx, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        float wx = w * x[i];
        float t = wx * (float)l;
        sumlx += t;
        float wl = w * (float)l;
        float wll = wl * (float)l;
        suml2 += wll;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        float num = 0.1f * (float)is;
        num = (float)nmax + num;
        iscale = -num / mx;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            float w = x[i] * x[i];
            float wx = w * x[i];
            float t = wx * (float)l;
            sumlx += t;
            float wl = w * (float)l;
            float wll = wl * (float)l;
            suml2 += wll;
        }
        float lhs = sumlx * sumlx, rhs = best * suml2;
        if (suml2 > 0 && lhs > rhs) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

int sl_qi_quantize_q6_k(const float *x, size_t nb, uint8_t *out) {
    for (size_t ib = 0; ib < nb; ib++, x += 256, out += 210) {
        int8_t L[256];
        float scales[16], max_scale = 0, max_abs = 0;
        uint8_t *ql = out, *qh = out + 128;
        int8_t *sc = (int8_t *)(void *)(out + 192);
        for (int b = 0; b < 16; b++) {
            scales[b] = qx(16, 32, x + 16 * b, L + 16 * b);
            if (fabsf(scales[b]) > max_abs) {
                max_abs = fabsf(scales[b]);
                max_scale = scales[b];
            }
        }
        if (max_abs < 1e-15f) {
            memset(out, 0, 210);
            continue;
        }
        float iscale = -128.0f / max_scale;
        uint16_t dh = sl_f32_to_f16(1 / iscale);
        memcpy(out + 208, &dh, 2);
        for (int b = 0; b < 16; b++) sc[b] = (int8_t)imin(127, nearest_int(iscale * scales[b]));
        float dd = h16(1 / iscale);
        for (int j = 0; j < 16; j++) {
            float d = dd * (float)sc[j];
            if (!(d != 0.0f)) continue;
            for (int i = 0; i < 16; i++) {
                int l = imax(-32, imin(31, nearest_int(x[16 * j + i] / d)));
                L[16 * j + i] = (int8_t)(l + 32);
            }
        }
        for (int j = 0; j < 256; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t *u = (const uint8_t *)L + j + l;
                ql[l] = (uint8_t)((u[0] & 15) | ((u[64] & 15) << 4));
                ql[l + 32] = (uint8_t)((u[32] & 15) | ((u[96] & 15) << 4));
                qh[l] = (uint8_t)((u[0] >> 4) | ((u[32] >> 4) << 2) | ((u[64] >> 4) << 4) | ((u[96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
    return 0;
}

/* make_q3_quants(n, nmax, x, L, do_rmse = true): codes -nmax..nmax-1 from
 * -nmax/max, then up to 5 passes moving single codes while the weighted
 * (x^2) fit improves; L gets code + nmax. */
static float q3(int n, int nmax, const float *x, int8_t *L) {
    float mx = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            mx = x[i];
        }
    }
    if (amax < 1e-15f) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)-nmax / mx, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        float wx = w * x[i];
        float t = wx * (float)l;
        sumlx += t;
        float wl = w * (float)l;
        float wll = wl * (float)l;
        suml2 += wll;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float wx = w * x[i];
            float t = wx * (float)L[i];
            float slx = sumlx - t;
            if (slx > 0) {
                float wl = w * (float)L[i];
                float wll = wl * (float)L[i];
                float sl2 = suml2 - wll;
                float xs = x[i] * sl2;
                int new_l = imax(-nmax, imin(nmax - 1, nearest_int(xs / slx)));
                if (new_l != L[i]) {
                    float tn = wx * (float)new_l;
                    slx += tn;
                    float wn = w * (float)new_l;
                    float wnn = wn * (float)new_l;
                    sl2 += wnn;
                    float s2 = slx * slx, lhs = s2 * suml2;
                    float b2 = sumlx * sumlx, rhs = b2 * sl2;
                    if (sl2 > 0 && lhs > rhs) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Q3_K: hmask[32] qs[64] scales[12] d (110 B).  Per sub-block of 16 a q3
 * search (codes -4..3); 6-bit signed scales against -32/max_scale packed
 * low nibbles in scales[0..7], high 2 bits in scales[8..11]; bit 2 of code j
 * goes to hmask[j % 32] bit j / 32. */
int sl_qi_quantize_q3_k(const float *x, size_t nb, uint8_t *out) {
    for (size_t ib = 0; ib < nb; ib++, x += 256, out += 110) {
        int8_t L[256];
        uint8_t *hm = out, *qs = out + 32, *s = out + 96;
        float scales[16], max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = q3(16, 4, x + 16 * j, L + 16 * j);
            float a = fabsf(scales[j]);
            if (a > amax) {
                amax = a;
                max_scale = scales[j];
            }
        }
        memset(s, 0, 12);
        uint16_t dh = 0;
        if (max_scale != 0.0f) {
            float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = (int8_t)nearest_int(iscale * scales[j]);
                l = imax(-32, imin(31, l)) + 32;
                if (j < 8) s[j] = (uint8_t)(l & 15);
                else s[j - 8] |= (uint8_t)((l & 15) << 4);
                s[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            dh = sl_f32_to_f16(1 / iscale);
        }
        memcpy(out + 108, &dh, 2);
        float dd = sl_f16_to_f32(dh);
        for (int j = 0; j < 16; j++) {
            int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
            int sc = (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            float d = dd * (float)sc;
            if (!(d != 0.0f)) continue;
            for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(imax(-4, imin(3, nearest_int(x[16 * j + i] / d))) + 4);
        }
        memset(hm, 0, 32);
        for (int j = 0; j < 256; j++)
            if (L[j] > 3) {
                hm[j % 32] |= (uint8_t)(1u << (j / 32));
                L[j] = (int8_t)(L[j] - 4);
            }
        for (int j = 0; j < 256; j += 128)
            for (int l = 0; l < 32; l++)
                qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
    return 0;
}
