/*
 * quant_impl.h — internals shared by the src/quant files: scalar load/store of the
 * float dtypes quantizers read and write (F32/F16/BF16), rounding helpers
 * and the argument checks every entry point starts with.
 *
 * Invariants: sl_qi_load/sl_qi_store only see F32, F16 or BF16 (callers
 * check with sl_qi_is_float3 first); rounding to F16/BF16 is round to
 * nearest even via the dtype module's converters, so a value stored here is
 * the same value numpy/ml_dtypes/MLX would store; NaN is stored the way MLX
 * converts it (f16: sign|0x7d00, bf16: 0x7fc0).
 */
#ifndef SILICA_QUANT_IMPL_H
#define SILICA_QUANT_IMPL_H

#include <stdint.h>
#include <string.h>

#include "silica/dtype.h"
#include "silica/error.h"
#include "silica/quant.h"

static inline int sl_qi_is_float3(sl_dtype t) { return t == SL_F32 || t == SL_F16 || t == SL_BF16; }

static inline uint32_t sl_qi_bits_f32_(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float sl_qi_load(const void *p, sl_dtype t, size_t i) {
    if (t == SL_F32) {
        float f;
        memcpy(&f, (const char *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return t == SL_F16 ? sl_f16_to_f32(h) : sl_bf16_to_f32(h);
}

static inline void sl_qi_store(void *p, sl_dtype t, size_t i, float v) {
    if (t == SL_F32) {
        memcpy((char *)p + 4 * i, &v, 4);
        return;
    }
    uint16_t h;
    if (v != v) /* MLX's NaN encodings: f16 sign|0x7d00, bf16 0x7fc0 */
        h = t == SL_F16 ? (uint16_t)(((sl_qi_bits_f32_(v) >> 16) & 0x8000u) | 0x7d00u) : 0x7fc0u;
    else
        h = t == SL_F16 ? sl_f32_to_f16(v) : sl_f32_to_bf16(v);
    memcpy((char *)p + 2 * i, &h, 2);
}

/* Round a float to dtype t and back (the value T would hold). */
static inline float sl_qi_round_to(sl_dtype t, float v) {
    if (t == SL_F16) return sl_f16_to_f32(sl_f32_to_f16(v));
    if (t == SL_BF16) return sl_bf16_to_f32(sl_f32_to_bf16(v));
    return v;
}

static inline float sl_qi_f32_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t sl_qi_bits_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* E4M3 "fn" encoder as MLX/PyTorch: RNE, subnormals, |x| >= 448 (and
 * Inf/NaN) saturate to 0x7E with the sign kept. */
uint8_t sl_qi_f32_to_e4m3(float x);

/* Element codes of one chunk, shared by affine quantize and the repackers. */
void sl_qi_pack(const uint8_t *codes, size_t n, int bits, uint32_t *words);
void sl_qi_unpack(const uint32_t *words, size_t n, int bits, uint8_t *codes);

/* Common checks: non-NULL pointers and n a multiple of `unit`. */
int sl_qi_check_n(const char *fn, size_t n, size_t unit, sl_error *err);

#endif
