/*
 * silica/dtype.h — element types and scalar/vector conversions.
 *
 * Every dtype is described by a block: `block_elems` elements stored in
 * `block_bytes` bytes.  Plain types have block_elems == 1; packed sub-byte
 * types (F4: 2 per byte, F6: 4 per 3 bytes) and GGUF quantized blocks
 * (Q4_0: 32 per 18 bytes, ...) use the same rule, so sizing code is uniform:
 *     nbytes = numel / block_elems * block_bytes   (numel % block_elems == 0)
 *
 * Names are the safetensors spellings (F32, BF16, F8_E4M3, ...) for the
 * safetensors types and ggml's spellings (Q4_0, Q6_K, ...) for GGUF blocks.
 */
#ifndef SILICA_DTYPE_H
#define SILICA_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_dtype {
    SL_DTYPE_INVALID = 0,
    SL_BOOL,
    SL_U8, SL_I8, SL_U16, SL_I16, SL_U32, SL_I32, SL_U64, SL_I64,
    SL_F16, SL_BF16, SL_F32, SL_F64,
    SL_C64,           /* complex64: two f32 */
    SL_C128,          /* complex128: two f64 (torch only) */
    SL_F8_E4M3,       /* float8_e4m3fn */
    SL_F8_E5M2,
    SL_F8_E8M0,       /* float8_e8m0fnu: exponent only (MX scales) */
    SL_F8_E4M3FNUZ,
    SL_F8_E5M2FNUZ,
    SL_F4,            /* float4_e2m1, two per byte, low nibble first */
    SL_F6_E2M3,       /* four per 3 bytes */
    SL_F6_E3M2,
    /* GGUF / ggml quantized blocks (raw blocks; decoding lives in quant/) */
    SL_Q4_0, SL_Q4_1, SL_Q5_0, SL_Q5_1, SL_Q8_0, SL_Q8_1,
    SL_Q2_K, SL_Q3_K, SL_Q4_K, SL_Q5_K, SL_Q6_K, SL_Q8_K,
    SL_IQ2_XXS, SL_IQ2_XS, SL_IQ3_XXS, SL_IQ1_S, SL_IQ4_NL, SL_IQ3_S,
    SL_IQ2_S, SL_IQ4_XS, SL_IQ1_M, SL_TQ1_0, SL_TQ2_0, SL_MXFP4,
    SL_DTYPE_COUNT
} sl_dtype;

typedef struct sl_dtype_info {
    const char *name;       /* "F32", "BF16", "Q4_K" */
    uint32_t block_elems;   /* elements per block */
    uint32_t block_bytes;   /* bytes per block */
    bool is_float;          /* real floating point (decodable to f32 by sl_convert) */
    bool is_quant;          /* GGUF quantized block type */
} sl_dtype_info;

SL_API const sl_dtype_info *sl_dtype_get(sl_dtype t);        /* NULL for invalid */
SL_API const char *sl_dtype_name(sl_dtype t);                 /* "?" for invalid */
SL_API sl_dtype sl_dtype_from_name(const char *name);         /* exact, case-sensitive; INVALID if unknown */

/* Bytes for `numel` elements; false on overflow or when numel is not a whole
 * number of blocks (e.g. an odd count of F4). */
SL_API bool sl_dtype_nbytes(sl_dtype t, uint64_t numel, uint64_t *out);

/* Size of one element in bytes for byte-addressable dtypes, 0 for packed. */
SL_API size_t sl_dtype_size(sl_dtype t);

/* ---- scalar conversions (round-to-nearest-even, NaN/Inf/subnormals kept) ---- */
SL_API float sl_f16_to_f32(uint16_t h);
SL_API uint16_t sl_f32_to_f16(float f);
SL_API float sl_bf16_to_f32(uint16_t b);
SL_API uint16_t sl_f32_to_bf16(float f);
SL_API uint16_t sl_f64_to_f16(double v);     /* single rounding, no f32 double-rounding */
SL_API uint16_t sl_f64_to_bf16(double v);
SL_API float sl_f8_e4m3_to_f32(uint8_t v);
SL_API float sl_f8_e5m2_to_f32(uint8_t v);
SL_API float sl_f8_e8m0_to_f32(uint8_t v);
SL_API float sl_f4_e2m1_to_f32(uint8_t nibble);

/* ---- vector conversions (run-time dispatched SIMD where available) ---- */
SL_API void sl_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
SL_API void sl_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
SL_API void sl_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);
SL_API void sl_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n);
/* Name of the kernel set the _n converters use on this CPU: "scalar",
 * "avx2" (F16C+AVX2), "avx512" or "neon" (SILICA_SIMD=<name> caps it). */
SL_API const char *sl_dtype_kernels(void);

/* Convert n elements between two float dtypes among F64/F32/F16/BF16 (and
 * decode F8_* into those).  Returns false if the pair is not supported. */
SL_API bool sl_convert(sl_dtype src_t, const void *src, sl_dtype dst_t, void *dst, size_t n);
SL_API bool sl_convert_supported(sl_dtype src_t, sl_dtype dst_t);

#ifdef __cplusplus
}
#endif
#endif
