/*
 * dtype_neon.c — arm64 NEON f16/bf16 conversion kernels (compiled only for
 * aarch64, where Advanced SIMD and the FCVTL/FCVTN half-precision
 * conversions are part of the base ISA; tested under qemu-aarch64).
 *
 * Bit-exactness with the scalar code in dtype.c, given the default FPCR
 * (round to nearest even, no flush-to-zero, no default-NaN):
 *  - f16->f32: FCVTL is exact except that it quietens signalling NaNs, so
 *    NaN lanes are rebuilt from the integer bits (sign|0x7f800000|m<<13).
 *  - f32->f16: FCVTN rounds RNE, overflows to Inf and quietens NaN keeping
 *    the top payload bits, as the scalar code does.
 *  - f32->bf16: integer RNE (u + 0x7fff + lsb) >> 16, NaN -> (u>>16)|0x40.
 */
#include "core/dtype_kernels.h"

#if defined(SL_HAVE_NEON_KERNELS)
#include <arm_neon.h>

static inline float32x4_t fix_nan4(float32x4_t f, uint32x4_t h32) {
    uint32x4_t em = vandq_u32(h32, vdupq_n_u32(0x7fff));
    uint32x4_t nan = vcgtq_u32(em, vdupq_n_u32(0x7c00));
    uint32x4_t bits = vorrq_u32(vorrq_u32(vshlq_n_u32(vandq_u32(h32, vdupq_n_u32(0x8000)), 16), vshlq_n_u32(em, 13)),
                                vdupq_n_u32(0x7f800000));
    return vbslq_f32(nan, vreinterpretq_f32_u32(bits), f);
}

size_t sl_k_neon_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t h = vld1q_u16(src + i);
        float32x4_t lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
        float32x4_t hi = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
        vst1q_f32(dst + i, fix_nan4(lo, vmovl_u16(vget_low_u16(h))));
        vst1q_f32(dst + i + 4, fix_nan4(hi, vmovl_high_u16(h)));
    }
    return i;
}

size_t sl_k_neon_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x4_t lo = vcvt_f16_f32(vld1q_f32(src + i));
        float16x8_t h = vcvt_high_f16_f32(lo, vld1q_f32(src + i + 4));
        vst1q_u16(dst + i, vreinterpretq_u16_f16(h));
    }
    return i;
}

static inline uint16x4_t bf16_4(uint32x4_t u) {
    uint32x4_t hi = vshrq_n_u32(u, 16);
    uint32x4_t bias = vaddq_u32(vdupq_n_u32(0x7fff), vandq_u32(hi, vdupq_n_u32(1)));
    uint32x4_t r = vshrq_n_u32(vaddq_u32(u, bias), 16);
    uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
    return vmovn_u32(vbslq_u32(nan, vorrq_u32(hi, vdupq_n_u32(0x40)), r));
}

size_t sl_k_neon_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x4_t a = bf16_4(vreinterpretq_u32_f32(vld1q_f32(src + i)));
        uint16x4_t b = bf16_4(vreinterpretq_u32_f32(vld1q_f32(src + i + 4)));
        vst1q_u16(dst + i, vcombine_u16(a, b));
    }
    return i;
}

#else
typedef int sl_dtype_neon_unused; /* ISO C forbids an empty translation unit */
#endif
