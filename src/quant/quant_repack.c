/*
 * quant_repack.c — lossless repacking between GGUF blocks and MLX affine
 * groups, and quantization error statistics.
 *
 * GGUF -> MLX follows mlx/io/gguf_quants.cpp (what mx.load does with a GGUF):
 *   Q4_0: group 32, 4 bits, scale = d, bias = f16(-8*d), codes = nibbles
 *         (element j < 16: low nibble of qs[j]; j >= 16: high nibble of qs[j-16]);
 *   Q4_1: scale = d, bias = m;
 *   Q8_0: 8 bits, scale = d, bias = f16(-128*d), code = (uint8)(q + 128).
 *   q*d + (-8d) equals (q-8)*d exactly in f32 unless -8d overflows f16,
 *   which is counted.
 * MLX affine 4-bit -> Q4_1: each group of 32/64/128 becomes 1/2/4 blocks with
 *   d = f16(scale), m = f16(bias), the same codes; exact iff scale and bias
 *   are representable in f16 (always for F16 scales; counted otherwise).
 *   Note MLX scales may be negative; Q4_1 dequantizes d*q + m for any sign.
 *
 * Invariants: n is a whole number of blocks/groups; codes are copied, never
 * recomputed.
 */
#include <math.h>
#include <string.h>

#include "quant/quant_impl.h"

int sl_q_gguf_to_affine(sl_dtype type, const void *blocks, size_t n, uint32_t *wq, uint16_t *scales,
                        uint16_t *biases, int *bits_out, uint64_t *overflow, sl_error *err) {
    if (type != SL_Q4_0 && type != SL_Q4_1 && type != SL_Q8_0)
        return sl_errorf(err, SL_EUNSUPPORTED, "GGUF -> MLX repacking of %s is not supported (Q4_0, Q4_1, Q8_0)",
                         sl_dtype_name(type));
    int rc = sl_qi_check_n("GGUF -> MLX repacking", n, 32, err);
    if (rc) return rc;
    if (n && (!blocks || !wq || !scales || !biases))
        return sl_errorf(err, SL_EINVAL, "GGUF -> MLX repacking: NULL buffer");
    const uint8_t *b = blocks;
    const size_t bb = sl_dtype_get(type)->block_bytes;
    const int bits = type == SL_Q8_0 ? 8 : 4;
    uint64_t ovf = 0;
    uint8_t codes[32];
    for (size_t i = 0; i < n / 32; i++, b += bb) {
        uint16_t dh, mh;
        memcpy(&dh, b, 2);
        float d = sl_f16_to_f32(dh);
        if (type == SL_Q4_1) {
            memcpy(&mh, b + 2, 2);
        } else {
            float m = (type == SL_Q4_0 ? -8.0f : -128.0f) * d;
            mh = sl_f32_to_f16(m);
            if (isfinite(m) && !isfinite(sl_f16_to_f32(mh))) ovf++;
        }
        if (bits == 4) {
            const uint8_t *qs = b + (type == SL_Q4_1 ? 4 : 2);
            for (int j = 0; j < 16; j++) {
                codes[j] = qs[j] & 15;
                codes[j + 16] = qs[j] >> 4;
            }
        } else {
            for (int j = 0; j < 32; j++) codes[j] = b[2 + j] ^ 0x80u;
        }
        sl_qi_pack(codes, 32, bits, wq + i * (size_t)bits);
        scales[i] = dh;
        biases[i] = mh;
    }
    if (bits_out) *bits_out = bits;
    if (overflow) *overflow = ovf;
    return 0;
}

int sl_q_affine_to_q4_1(const uint32_t *wq, const void *scales, const void *biases, sl_dtype scale_type, size_t n,
                        int group_size, void *blocks, uint64_t *inexact, sl_error *err) {
    int rc = sl_q_check(SL_Q_AFFINE, 4, group_size, err);
    if (rc) return rc;
    if (!sl_qi_is_float3(scale_type))
        return sl_errorf(err, SL_EUNSUPPORTED, "MLX -> Q4_1 repacking: scale dtype %s is not supported (F32, F16, BF16)",
                         sl_dtype_name(scale_type));
    if ((rc = sl_qi_check_n("MLX -> Q4_1 repacking", n, (size_t)group_size, err))) return rc;
    if (n && (!wq || !scales || !biases || !blocks))
        return sl_errorf(err, SL_EINVAL, "MLX -> Q4_1 repacking: NULL buffer");
    uint8_t *out = blocks, codes[32];
    uint64_t bad = 0;
    const size_t per = (size_t)group_size / 32;
    for (size_t g = 0; g < n / (size_t)group_size; g++) {
        float s = sl_qi_load(scales, scale_type, g), m = sl_qi_load(biases, scale_type, g);
        uint16_t dh = sl_f32_to_f16(s), mh = sl_f32_to_f16(m);
        float sb = sl_f16_to_f32(dh), mb = sl_f16_to_f32(mh);
        /* exact iff the f16 values equal the originals (NaN counts as inexact) */
        if (!(sb == s && mb == m && signbit(sb) == signbit(s) && signbit(mb) == signbit(m))) bad++;
        for (size_t k = 0; k < per; k++) {
            size_t blk = g * per + k;
            sl_qi_unpack(wq + blk * 4, 32, 4, codes);
            uint8_t *o = out + blk * 20;
            memcpy(o, &dh, 2);
            memcpy(o + 2, &mh, 2);
            for (int j = 0; j < 16; j++) o[4 + j] = (uint8_t)(codes[j] | codes[j + 16] << 4);
        }
    }
    if (inexact) *inexact = bad;
    return 0;
}

/* ---- error statistics ---- */

void sl_q_error_stats(sl_q_stats *acc, const float *ref, const float *approx, size_t n) {
    if (!acc || !ref || !approx) return;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ref[i]) || !isfinite(approx[i])) {
            acc->nonfinite++;
            continue;
        }
        double e = (double)approx[i] - (double)ref[i];
        acc->sum_sq_err += e * e;
        acc->sum_sq_ref += (double)ref[i] * (double)ref[i];
        if (fabs(e) > acc->max_abs) acc->max_abs = fabs(e);
        acc->n++;
    }
}

double sl_q_stats_rmse(const sl_q_stats *s) { return s && s->n ? sqrt(s->sum_sq_err / (double)s->n) : 0.0; }

double sl_q_stats_rel(const sl_q_stats *s) {
    return s && s->sum_sq_ref > 0 ? sqrt(s->sum_sq_err / s->sum_sq_ref) : 0.0;
}
