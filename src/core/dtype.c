/*
 * dtype.c — the dtype table and scalar conversions.
 *
 * Conversions are bit-exact with IEEE-754 round-to-nearest-even, keep NaN
 * (quietened, sign kept) and Inf, and handle subnormals in both directions;
 * they match numpy's astype(float16) and torch's .to(bfloat16).  The vector
 * entry points in dtype_vec.c dispatch to F16C/AVX-512/NEON when present.
 */
#include "silica/dtype.h"

#include <math.h>
#include <string.h>

static const sl_dtype_info k_info[SL_DTYPE_COUNT] = {
    [SL_BOOL] = {"BOOL", 1, 1, false, false},
    [SL_U8] = {"U8", 1, 1, false, false},
    [SL_I8] = {"I8", 1, 1, false, false},
    [SL_U16] = {"U16", 1, 2, false, false},
    [SL_I16] = {"I16", 1, 2, false, false},
    [SL_U32] = {"U32", 1, 4, false, false},
    [SL_I32] = {"I32", 1, 4, false, false},
    [SL_U64] = {"U64", 1, 8, false, false},
    [SL_I64] = {"I64", 1, 8, false, false},
    [SL_F16] = {"F16", 1, 2, true, false},
    [SL_BF16] = {"BF16", 1, 2, true, false},
    [SL_F32] = {"F32", 1, 4, true, false},
    [SL_F64] = {"F64", 1, 8, true, false},
    [SL_C64] = {"C64", 1, 8, false, false},
    [SL_C128] = {"C128", 1, 16, false, false},
    [SL_F8_E4M3] = {"F8_E4M3", 1, 1, true, false},
    [SL_F8_E5M2] = {"F8_E5M2", 1, 1, true, false},
    [SL_F8_E8M0] = {"F8_E8M0", 1, 1, true, false},
    [SL_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 1, 1, false, false},
    [SL_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 1, 1, false, false},
    [SL_F4] = {"F4", 2, 1, false, false},
    [SL_F6_E2M3] = {"F6_E2M3", 4, 3, false, false},
    [SL_F6_E3M2] = {"F6_E3M2", 4, 3, false, false},
    /* ggml block sizes (ggml.c type_traits): elements per block, bytes per block */
    [SL_Q4_0] = {"Q4_0", 32, 18, false, true},
    [SL_Q4_1] = {"Q4_1", 32, 20, false, true},
    [SL_Q5_0] = {"Q5_0", 32, 22, false, true},
    [SL_Q5_1] = {"Q5_1", 32, 24, false, true},
    [SL_Q8_0] = {"Q8_0", 32, 34, false, true},
    [SL_Q8_1] = {"Q8_1", 32, 36, false, true},
    [SL_Q2_K] = {"Q2_K", 256, 84, false, true},
    [SL_Q3_K] = {"Q3_K", 256, 110, false, true},
    [SL_Q4_K] = {"Q4_K", 256, 144, false, true},
    [SL_Q5_K] = {"Q5_K", 256, 176, false, true},
    [SL_Q6_K] = {"Q6_K", 256, 210, false, true},
    [SL_Q8_K] = {"Q8_K", 256, 292, false, true},
    [SL_IQ2_XXS] = {"IQ2_XXS", 256, 66, false, true},
    [SL_IQ2_XS] = {"IQ2_XS", 256, 74, false, true},
    [SL_IQ3_XXS] = {"IQ3_XXS", 256, 98, false, true},
    [SL_IQ1_S] = {"IQ1_S", 256, 50, false, true},
    [SL_IQ4_NL] = {"IQ4_NL", 32, 18, false, true},
    [SL_IQ3_S] = {"IQ3_S", 256, 110, false, true},
    [SL_IQ2_S] = {"IQ2_S", 256, 82, false, true},
    [SL_IQ4_XS] = {"IQ4_XS", 256, 136, false, true},
    [SL_IQ1_M] = {"IQ1_M", 256, 56, false, true},
    [SL_TQ1_0] = {"TQ1_0", 256, 54, false, true},
    [SL_TQ2_0] = {"TQ2_0", 256, 66, false, true},
    [SL_MXFP4] = {"MXFP4", 32, 17, false, true},
};

const sl_dtype_info *sl_dtype_get(sl_dtype t) {
    if (t <= SL_DTYPE_INVALID || t >= SL_DTYPE_COUNT) return NULL;
    return &k_info[t];
}

const char *sl_dtype_name(sl_dtype t) {
    const sl_dtype_info *i = sl_dtype_get(t);
    return i ? i->name : "?";
}

sl_dtype sl_dtype_from_name(const char *name) {
    if (!name) return SL_DTYPE_INVALID;
    for (int t = 1; t < SL_DTYPE_COUNT; t++)
        if (strcmp(k_info[t].name, name) == 0) return (sl_dtype)t;
    return SL_DTYPE_INVALID;
}

bool sl_dtype_nbytes(sl_dtype t, uint64_t numel, uint64_t *out) {
    const sl_dtype_info *i = sl_dtype_get(t);
    if (!i || numel % i->block_elems) return false;
    return !__builtin_mul_overflow(numel / i->block_elems, (uint64_t)i->block_bytes, out);
}

size_t sl_dtype_size(sl_dtype t) {
    const sl_dtype_info *i = sl_dtype_get(t);
    return (i && i->block_elems == 1) ? i->block_bytes : 0;
}

/* ---- bit helpers ---- */
static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float sl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return u2f(sign | 0x7f800000u | (man << 13));          /* inf / nan (payload kept) */
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        /* subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t sl_f32_to_f16(float f) {
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff)); /* NaN, quiet */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {                                     /* below f16 min normal 2^-14 */
        /* subnormal or zero: round a * 2^24 to an integer, RNE */
        float v = u2f(a) * 0x1p24f;                            /* exact scaling */
        /* v < 1024; rint under default rounding mode is RNE */
        return (uint16_t)(sign | (uint16_t)rintf(v));
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);                /* RNE on the 13 dropped bits */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

float sl_bf16_to_f32(uint16_t b) { return u2f((uint32_t)b << 16); }

uint16_t sl_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float sl_f8_e4m3_to_f32(uint8_t v) {
    /* e4m3fn: bias 7, no inf, 0x7f/0xff = NaN, max 448 */
    uint32_t sign = v >> 7, exp = (v >> 3) & 0xf, man = v & 7;
    float r;
    if (exp == 0xf && man == 7) return sign ? -NAN : NAN;
    if (exp == 0) r = (float)man * 0x1p-9f;
    else r = ldexpf(1.0f + (float)man / 8.0f, (int)exp - 7);
    return sign ? -r : r;
}

float sl_f8_e5m2_to_f32(uint8_t v) { return sl_f16_to_f32((uint16_t)v << 8); }

float sl_f8_e8m0_to_f32(uint8_t v) {
    if (v == 0xff) return NAN;
    return ldexpf(1.0f, (int)v - 127);
}

float sl_f4_e2m1_to_f32(uint8_t nib) {
    static const float k[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float r = k[nib & 7];
    return (nib & 8) ? -r : r;
}


/* f64 -> f32 with round-to-odd: the f32 result keeps a sticky bit, so a
 * second RNE rounding to a format at least 2 bits narrower (f16, bf16) gives
 * the correctly rounded result of a single f64 -> f16/bf16 rounding. */
static float f64_to_f32_odd(double v) {
    float f = (float)v;
    if ((double)f == v || isnan(v)) return f;
    if (f2u(f) & 1u) return f;
    return nextafterf(f, (float)(v > (double)f ? INFINITY : -INFINITY));
}

uint16_t sl_f64_to_f16(double v) { return sl_f32_to_f16(f64_to_f32_odd(v)); }
uint16_t sl_f64_to_bf16(double v) { return sl_f32_to_bf16(f64_to_f32_odd(v)); }
