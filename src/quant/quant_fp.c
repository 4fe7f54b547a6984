/*
 * quant_fp.c — MLX microscaling float quantization: mxfp4 (E2M1 codes, E8M0
 * scale, group 32), mxfp8 (E4M3 codes, E8M0 scale, group 32) and nvfp4
 * (E2M1 codes, E4M3 scale, group 16, optional global scale).
 *
 * MLX's CPU backend runs the graph fallback of mlx/ops.cpp fp_quantize, whose
 * arithmetic happens in the INPUT dtype T (each op rounds to T); this file
 * mirrors it op by op (mlx/ops.cpp fp_quantize; mlx/backend/metal/kernels/fp_quantized.h):
 *   sc  = T(amax / 6|448)
 *   mx*: e = sc == 0 ? 0 : ceil(log2(sc)) (f32);  y = T(w / 2^e);  scale = u8(e+127)
 *        (mlx 0.32.4 takes the ceiling; the spec, from an older commit, says round)
 *   nv:  enc = global ? f32(2688/global) : 1;  s8 = E4M3(f32(sc) * enc);
 *        y = f32(T(w / e4m3(s8))) * enc                       (f32 from here)
 *   E2M1 code = argmin_k |y - lut[k]| (difference rounded to y's type; ties go
 *   to the lower index, lut = +0 .5 1 1.5 2 3 4 6 -0 -.5 ... -6);
 *   E4M3 code (mxfp8) = PyTorch-style RNE, saturating to 0x7E.
 * Non-finite groups (mlx 0.32.4 on x86-64, checked against mx.quantize):
 * the group maximum propagates NaN.  nvfp4: a NaN maximum gives scale 0x7E
 * and all codes 0 (the elements become NaN); an Inf maximum is ordinary
 * (scale saturates to 0x7E = 448).  mxfp4/mxfp8: a NaN or Inf maximum gives
 * scale 128 (F32 input) or 0 (F16/BF16) and elements w / 0 with x86
 * semantics: mxfp4 codes are all 0; mxfp8 codes are 0x7E with the sign of
 * w / 0 (0/0 is the x86 default NaN, negative; NaN keeps its sign), except
 * that BF16 rounding makes every NaN positive.  Written out explicitly, so
 * the result does not depend on the host's NaN rules.
 * Packing: 4-bit codes 8 per uint32, element i in bits [4i, 4i+4); 8-bit
 * codes 4 per uint32, element i in byte i.
 * Dequantize (MLX CPU): out = T(lut[q] * scale_T), scale_T = T(2^(e-127))
 * or T(e4m3(s) * global/2688).
 *
 * Invariants: chunks are whole groups; codes are always < 16 (4-bit) or
 * < 256; nothing outside the given buffers is touched.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "quant/quant_impl.h"

static const float k_e2m1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                 -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

uint8_t sl_qi_f32_to_e4m3(float x) {
    uint32_t u = sl_qi_bits_f32(x), sign = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
    if (a >= (543u << 21)) return (uint8_t)(sign | 0x7eu); /* >= 448, Inf, NaN */
    if (a < (121u << 23)) {                                 /* below 2^-6: subnormal codes */
        float r = rintf(sl_qi_f32_bits(a) * 512.0f);        /* exact scaling, RNE */
        return (uint8_t)(sign | (uint32_t)r);
    }
    uint32_t r = a + ((uint32_t)(7 - 127) << 23) + 0x7ffffu + ((a >> 20) & 1u);
    return (uint8_t)(sign | (r >> 20));
}

static float e4m3_to_f32(uint8_t v) { return sl_f8_e4m3_to_f32(v); }

static int fp_params(sl_q_mode mode, int *gs, int *bits, sl_error *err, const char *what) {
    if (mode != SL_Q_MXFP4 && mode != SL_Q_MXFP8 && mode != SL_Q_NVFP4)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: mode %s is not a float mode (mxfp4, mxfp8, nvfp4)", what,
                         sl_q_mode_name(mode));
    *gs = mode == SL_Q_NVFP4 ? 16 : 32;
    *bits = mode == SL_Q_MXFP8 ? 8 : 4;
    return 0;
}

/* argmin over the E2M1 table of |y - lut|, the difference rounded to t */
static uint8_t e2m1_argmin(float y, sl_dtype t) {
    uint8_t best = 0;
    float bd = 0.0f;
    for (int k = 0; k < 16; k++) {
        float d = fabsf(sl_qi_round_to(t, y - k_e2m1[k]));
        if (k == 0 || d < bd) {
            bd = d;
            best = (uint8_t)k;
        }
    }
    return best;
}

/* mxfp8 code of w / 0 (a group whose maximum is NaN or Inf), see above */
static uint8_t nonfinite_e4m3(float w, sl_dtype t) {
    bool neg;
    if (isnan(w)) neg = t != SL_BF16 && signbit(w);
    else if (w == 0.0f) neg = t != SL_BF16;   /* 0/0: x86 default NaN */
    else neg = signbit(w);
    return neg ? 0xfe : 0x7e;
}

int sl_q_fp_quantize(sl_q_mode mode, const void *src, sl_dtype src_type, size_t n, const float *global_scale,
                     uint32_t *wq, uint8_t *scales, sl_error *err) {
    int gs = 32, bits = 4, rc;
    if ((rc = fp_params(mode, &gs, &bits, err, "float quantization"))) return rc;
    if (!sl_qi_is_float3(src_type))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s quantization: input dtype %s is not supported (F32, F16, BF16)",
                         sl_q_mode_name(mode), sl_dtype_name(src_type));
    if (global_scale && mode != SL_Q_NVFP4)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s quantization: a global scale is only supported for nvfp4",
                         sl_q_mode_name(mode));
    if ((rc = sl_qi_check_n("float quantization", n, (size_t)gs, err))) return rc;
    if (n && (!src || !wq || !scales)) return sl_errorf(err, SL_EINVAL, "float quantization: NULL buffer");
    const sl_dtype T = src_type;
    const float maxval = bits == 4 ? 6.0f : 448.0f;
    const float enc = global_scale ? 2688.0f / *global_scale : 1.0f;
    uint8_t codes[32];
    for (size_t g = 0; g < n / (size_t)gs; g++) {
        const size_t off = g * (size_t)gs;
        float amax = 0.0f;
        for (int i = 0; i < gs; i++) {
            float a = fabsf(sl_qi_load(src, T, off + (size_t)i));
            amax = (a > amax || isnan(a)) && !isnan(amax) ? a : amax;   /* NaN propagates, as mx.max */
        }
        float sc = sl_qi_round_to(T, amax / maxval);
        if (mode == SL_Q_NVFP4 && isnan(amax)) {
            memset(codes, 0, sizeof codes);
            scales[g] = 0x7e;
        } else if (mode != SL_Q_NVFP4 && !isfinite(amax)) {
            for (int i = 0; i < gs; i++) codes[i] = bits == 4 ? 0 : nonfinite_e4m3(sl_qi_load(src, T, off + (size_t)i), T);
            scales[g] = T == SL_F32 ? 128 : 0;
        } else if (mode == SL_Q_NVFP4) {
            uint8_t s8 = sl_qi_f32_to_e4m3(sc * enc);
            float d = e4m3_to_f32(s8); /* exact in every T */
            for (int i = 0; i < gs; i++) {
                float y = sl_qi_round_to(T, sl_qi_load(src, T, off + (size_t)i) / d) * enc;
                codes[i] = e2m1_argmin(y, SL_F32);
            }
            scales[g] = s8;
        } else {
            int e = 0;
            if (sc != 0.0f) e = (int)ceilf(log2f(sc));
            float p = sl_qi_round_to(T, ldexpf(1.0f, e));
            for (int i = 0; i < gs; i++) {
                float y = sl_qi_round_to(T, sl_qi_load(src, T, off + (size_t)i) / p);
                codes[i] = bits == 4 ? e2m1_argmin(y, T) : sl_qi_f32_to_e4m3(y);
            }
            scales[g] = (uint8_t)(unsigned)(e + 127);
        }
        sl_qi_pack(codes, (size_t)gs, bits, wq + off * (size_t)bits / 32);
    }
    return 0;
}

int sl_q_fp_dequantize(sl_q_mode mode, const uint32_t *wq, const uint8_t *scales, size_t n,
                       const float *global_scale, sl_dtype out_type, void *out, sl_error *err) {
    int gs = 32, bits = 4, rc;
    if ((rc = fp_params(mode, &gs, &bits, err, "float dequantization"))) return rc;
    if (!sl_qi_is_float3(out_type))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s dequantization: output dtype %s is not supported (F32, F16, BF16)",
                         sl_q_mode_name(mode), sl_dtype_name(out_type));
    if (global_scale && mode != SL_Q_NVFP4)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s dequantization: a global scale is only supported for nvfp4",
                         sl_q_mode_name(mode));
    if ((rc = sl_qi_check_n("float dequantization", n, (size_t)gs, err))) return rc;
    if (n && (!wq || !scales || !out)) return sl_errorf(err, SL_EINVAL, "float dequantization: NULL buffer");
    const sl_dtype T = out_type;
    uint8_t codes[32];
    for (size_t g = 0; g < n / (size_t)gs; g++) {
        const size_t off = g * (size_t)gs;
        float s;
        if (mode == SL_Q_NVFP4) {
            float inv = global_scale ? sl_qi_round_to(T, *global_scale / 2688.0f) : 1.0f;
            s = sl_qi_round_to(T, e4m3_to_f32(scales[g]) * inv);
        } else {
            s = sl_qi_round_to(T, ldexpf(1.0f, (int)scales[g] - 127));
        }
        sl_qi_unpack(wq + off * (size_t)bits / 32, (size_t)gs, bits, codes);
        for (int i = 0; i < gs; i++) {
            float v = bits == 4 ? k_e2m1[codes[i]] : e4m3_to_f32(codes[i]);
            sl_qi_store(out, T, off + (size_t)i, v * s);
        }
    }
    return 0;
}
