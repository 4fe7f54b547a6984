/*
 * dtype_vec.c — bulk dtype conversions with run-time CPU dispatch.
 *
 * The portable loops here are written so compilers auto-vectorise them; the
 * f16/bf16 paths switch to F16C/AVX-512 (x86) or NEON fp16 (arm64) kernels
 * chosen once, at first use, from sl_cpu_features().  Every path produces the
 * same bits as the scalar converters in dtype.c (tested).
 */
#include <string.h>

#include "silica/dtype.h"
#include "core/dtype_simd.h"

void sl_f16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
    size_t done = sl_simd_f16_to_f32(src, dst, n);
    for (size_t i = done; i < n; i++) dst[i] = sl_f16_to_f32(src[i]);
}

void sl_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
    size_t done = sl_simd_f32_to_f16(src, dst, n);
    for (size_t i = done; i < n; i++) dst[i] = sl_f32_to_f16(src[i]);
}

void sl_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, 4);
    }
}

void sl_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n) {
    size_t done = sl_simd_f32_to_bf16(src, dst, n);
    for (size_t i = done; i < n; i++) dst[i] = sl_f32_to_bf16(src[i]);
}

static bool is_conv_float(sl_dtype t) {
    return t == SL_F32 || t == SL_F16 || t == SL_BF16 || t == SL_F64 || t == SL_F8_E4M3 || t == SL_F8_E5M2 ||
           t == SL_F8_E8M0;
}

static bool is_conv_dst(sl_dtype t) { return t == SL_F32 || t == SL_F16 || t == SL_BF16 || t == SL_F64; }

bool sl_convert_supported(sl_dtype s, sl_dtype d) {
    if (s == d) return sl_dtype_size(s) != 0;
    return is_conv_float(s) && is_conv_dst(d);
}

/* decode one element of a float dtype into f64 (exact for every source) */
static double load_one(sl_dtype t, const uint8_t *p, size_t i) {
    uint16_t h;
    switch (t) {
    case SL_F32: { float f; memcpy(&f, p + 4 * i, 4); return f; }
    case SL_F64: { double d; memcpy(&d, p + 8 * i, 8); return d; }
    case SL_F16: memcpy(&h, p + 2 * i, 2); return sl_f16_to_f32(h);
    case SL_BF16: memcpy(&h, p + 2 * i, 2); return sl_bf16_to_f32(h);
    case SL_F8_E4M3: return sl_f8_e4m3_to_f32(p[i]);
    case SL_F8_E5M2: return sl_f8_e5m2_to_f32(p[i]);
    case SL_F8_E8M0: return sl_f8_e8m0_to_f32(p[i]);
    default: return 0;
    }
}

bool sl_convert(sl_dtype s, const void *src, sl_dtype d, void *dst, size_t n) {
    if (!sl_convert_supported(s, d)) return false;
    if (s == d) { memcpy(dst, src, n * sl_dtype_size(s)); return true; }
    if (s == SL_F16 && d == SL_F32) { sl_f16_to_f32_n(src, dst, n); return true; }
    if (s == SL_BF16 && d == SL_F32) { sl_bf16_to_f32_n(src, dst, n); return true; }
    if (s == SL_F32 && d == SL_F16) { sl_f32_to_f16_n(src, dst, n); return true; }
    if (s == SL_F32 && d == SL_BF16) { sl_f32_to_bf16_n(src, dst, n); return true; }
    const uint8_t *sp = src;
    uint8_t *dp = dst;
    /* Narrowing from f64 must round once (f64 -> f16 directly), as numpy does:
     * f64 -> f32 -> f16 can double-round.  We go through f32 only when the
     * source is at most f32-precise, which makes the f32 step exact. */
    for (size_t i = 0; i < n; i++) {
        double v = load_one(s, sp, i);
        switch (d) {
        case SL_F64: memcpy(dp + 8 * i, &v, 8); break;
        case SL_F32: { float f = (float)v; memcpy(dp + 4 * i, &f, 4); break; }
        case SL_F16: {
            uint16_t h = (s == SL_F64) ? sl_f64_to_f16(v) : sl_f32_to_f16((float)v);
            memcpy(dp + 2 * i, &h, 2);
            break;
        }
        case SL_BF16: {
            uint16_t h = (s == SL_F64) ? sl_f64_to_bf16(v) : sl_f32_to_bf16((float)v);
            memcpy(dp + 2 * i, &h, 2);
            break;
        }
        default: return false;
        }
    }
    return true;
}
