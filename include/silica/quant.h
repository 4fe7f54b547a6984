/*
 * silica/quant.h — quantization formats: MLX affine / mxfp4 / mxfp8 / nvfp4,
 * GGUF (ggml) blocks, lossless repacking between them, and error statistics.
 *
 * Every function works on ONE chunk of a row-major tensor at a time: `n`
 * elements that form a whole number of groups (MLX) or blocks (GGUF), so a
 * streaming converter can call them tensor by tensor, chunk by chunk.  The
 * packed outputs of consecutive chunks simply concatenate: an MLX chunk of
 * n elements writes n*bits/32 uint32 words and n/group_size scales (and
 * biases); a GGUF chunk writes n/block_elems blocks.  Nothing is allocated;
 * the caller owns every buffer.  All multi-byte values are little-endian
 * host values (libsilica targets little-endian machines).
 *
 * Exactness (checked by tests/py/test_quant.py against the real peers):
 *  - sl_q_affine_quantize(variant CPU) is byte-identical to mx.quantize of
 *    MLX's CPU backend when scale_type == src_type (MLX stores scales and
 *    biases in the input dtype); VARIANT_GPU follows MLX's Metal kernel as
 *    in ml-explore/mlx mlx/backend/metal/kernels/quantized.h (running max starts at 0, halves
 *    round away from zero).
 *  - sl_q_affine_dequantize with out_type == scale_type is byte-identical
 *    to mx.dequantize on the CPU: (T)((T)(q*s) + b); with out_type F32 it
 *    computes float(s)*q + float(b) in f32 (MLX's quantized-matmul order).
 *  - sl_q_fp_quantize / sl_q_fp_dequantize match mx.quantize/mx.dequantize
 *    (mode mxfp4, mxfp8, nvfp4) of MLX 0.32.4's CPU backend on finite
 *    inputs (groups holding NaN/Inf are not matched).
 *  - sl_q_gguf_dequantize is bit-identical to gguf-py quants.dequantize;
 *    sl_q_gguf_quantize to gguf-py quants.quantize for Q4_0, Q4_1, Q5_0,
 *    Q5_1, Q8_0.  gguf-py has no K-quant / IQ4_NL quantizer: Q2_K..Q6_K
 *    follow llama.cpp's quantize_row_qN_K_ref, IQ4_NL its quantize_iq4_nl
 *    (ntry 7, no imatrix), and match llama-quantize's output byte for byte
 *    (tools/llama_cpp_check.result.json; ggml's reference has no FMA
 *    contraction, nor has silica).
 *
 * Errors: SL_EINVAL for bad sizes / NULL buffers, SL_EUNSUPPORTED for a
 * bits / group size / mode / dtype combination that the format does not
 * define; the message names the combination and lists what is allowed.
 */
#ifndef SILICA_QUANT_H
#define SILICA_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/dtype.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_q_mode { SL_Q_AFFINE = 0, SL_Q_MXFP4, SL_Q_MXFP8, SL_Q_NVFP4 } sl_q_mode;

/* Which MLX backend's affine quantizer to reproduce. */
typedef enum sl_q_variant {
    SL_Q_VARIANT_CPU = 0, /* mlx CPU: min/max of the group, rint (half to even) */
    SL_Q_VARIANT_GPU = 1  /* mlx Metal: max starts at 0, min at +max, round half away */
} sl_q_variant;

SL_API const char *sl_q_mode_name(sl_q_mode m);                /* "affine", "mxfp4", ... */
SL_API int sl_q_mode_from_name(const char *name, sl_q_mode *out); /* 0 or SL_EUNSUPPORTED */

/* Validate a (mode, bits, group_size) triple like mx.quantize does:
 * affine: bits {2,3,4,5,6,8} x group {32,64,128}; mxfp4: 4/32; mxfp8: 8/32;
 * nvfp4: 4/16.  0 or SL_EUNSUPPORTED with a message listing what is allowed. */
SL_API int sl_q_check(sl_q_mode mode, int bits, int group_size, sl_error *err);

/* Layout of one row of k elements: uint32 words of packed codes and number of
 * groups (= scales per row).  SL_EINVAL when k is not a multiple of the group
 * size (MLX's rule), SL_EUNSUPPORTED for a bad triple. */
SL_API int sl_q_row_layout(sl_q_mode mode, int bits, int group_size, uint64_t k, uint64_t *words,
                           uint64_t *groups, sl_error *err);

/* ---- MLX affine ------------------------------------------------------ */

/* Quantize n elements of src (F32, F16 or BF16) into codes wq[n*bits/32],
 * scales[n/group_size] and biases[n/group_size] of scale_type (F32, F16,
 * BF16).  n must be a multiple of group_size. */
SL_API int sl_q_affine_quantize(const void *src, sl_dtype src_type, size_t n, int bits, int group_size,
                                sl_dtype scale_type, sl_q_variant variant, uint32_t *wq, void *scales,
                                void *biases, sl_error *err);

/* Dequantize n elements.  out_type F32 (f32 arithmetic, no intermediate
 * rounding) or the scale_type (MLX's CPU mx.dequantize, two roundings). */
SL_API int sl_q_affine_dequantize(const uint32_t *wq, const void *scales, const void *biases,
                                  sl_dtype scale_type, size_t n, int bits, int group_size,
                                  sl_dtype out_type, void *out, sl_error *err);

/* The raw bitstream: codes[i] (each < 2^bits) <-> words, element i at stream
 * bits [i*bits, (i+1)*bits) of the little-endian word stream.  n*bits must be
 * a multiple of 32.  Exposed for tests and repackers. */
SL_API int sl_q_pack(const uint8_t *codes, size_t n, int bits, uint32_t *words, sl_error *err);
SL_API int sl_q_unpack(const uint32_t *words, size_t n, int bits, uint8_t *codes, sl_error *err);

/* ---- MLX microscaling float modes (no biases) ------------------------- */

/* mode mxfp4 (group 32, E2M1 + E8M0 scale), mxfp8 (group 32, E4M3 + E8M0),
 * nvfp4 (group 16, E2M1 + E4M3 scale; global_scale may be NULL).
 * src F32/F16/BF16; wq[n*bits/32], scales[n/group] (uint8). */
SL_API int sl_q_fp_quantize(sl_q_mode mode, const void *src, sl_dtype src_type, size_t n,
                            const float *global_scale, uint32_t *wq, uint8_t *scales, sl_error *err);
/* out_type F32, F16 or BF16 (mx.dequantize's default for these modes is BF16). */
SL_API int sl_q_fp_dequantize(sl_q_mode mode, const uint32_t *wq, const uint8_t *scales, size_t n,
                              const float *global_scale, sl_dtype out_type, void *out, sl_error *err);

/* ---- GGUF blocks -------------------------------------------------------- */

/* Dequantize n elements (a multiple of the block size) of Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or IQ4_NL to f32. */
SL_API int sl_q_gguf_dequantize(sl_dtype type, const void *blocks, size_t n, float *out, sl_error *err);
/* Quantize n f32 elements to Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K,
 * Q5_K, Q6_K or IQ4_NL (llama.cpp's quantizers without importance matrix:
 * what llama-quantize writes, byte for byte). */
SL_API int sl_q_gguf_quantize(sl_dtype type, const float *src, size_t n, void *blocks, sl_error *err);
SL_API int sl_q_gguf_can_dequantize(sl_dtype type);
SL_API int sl_q_gguf_can_quantize(sl_dtype type);

/* ---- llama-quantize's named mixes (llama.cpp src/llama-quant.cpp) ------- */

typedef struct sl_gguf_mix {
    const char *name;       /* "Q4_K_M", as llama-quantize spells it */
    int ftype;              /* llama_ftype (general.file_type) */
    sl_dtype base;          /* the type most tensors get */
    const char *alias_of;   /* "Q4_K" -> "Q4_K_M" (llama-quantize's aliases), else NULL */
} sl_gguf_mix;

/* The i-th mix (NULL past the end); a mix by name (case-insensitive) or NULL. */
SL_API const sl_gguf_mix *sl_gguf_mix_at(size_t i);
SL_API const sl_gguf_mix *sl_gguf_mix_find(const char *name);

/* What the rules need from the model (GGUF <arch>.block_count, head_count,
 * head_count_kv, expert_count). */
typedef struct sl_gguf_mix_model {
    const char *arch;       /* general.architecture */
    int n_layer, n_head, n_head_kv, n_expert;
} sl_gguf_mix_model;

typedef struct sl_gguf_mix_tensor {
    const char *name;       /* GGUF tensor name (blk.N.attn_v.weight) */
    int ndim;
    int64_t shape[4];       /* row-major: shape[ndim-1] is the row length */
    sl_dtype type;          /* what the tensor is kept as when not quantized */
} sl_gguf_mix_tensor;

typedef struct sl_gguf_mix_choice {
    sl_dtype type;          /* the type written */
    sl_dtype wanted;        /* the rules' choice before the row-length fallback (== type: none) */
    bool quantize;          /* llama.cpp quantizes this tensor at all (else: kept as .type) */
} sl_gguf_mix_choice;

/* llama-quantize's choice for every tensor (out[i] for t[i]); pure = --pure
 * (the base type everywhere, fallback kept). */
SL_API int sl_gguf_mix_plan(const sl_gguf_mix *mix, bool pure, const sl_gguf_mix_model *m,
                            const sl_gguf_mix_tensor *t, size_t n, sl_gguf_mix_choice *out, sl_error *err);
/* Does llama.cpp quantize a tensor of this name and shape (2+ dims, *weight, no norm...)? */
SL_API bool sl_gguf_mix_quantizable(const char *name, int ndim, const int64_t *shape);
/* Bits per weight of the mix on Llama-3-8B's shapes (what --help quotes). */
SL_API double sl_gguf_mix_reference_bpw(const sl_gguf_mix *mix);

/* ---- lossless repacking ------------------------------------------------- */

/* GGUF Q4_0 / Q4_1 / Q8_0 -> MLX affine exactly as mlx's GGUF loader does:
 * group 32, bits 4 (Q4_*) or 8 (Q8_0), scales and biases F16; Q4_0 bias =
 * -8*d, Q8_0 bias = -128*d with codes q+128.  *bits_out gets the bit width.
 * *overflow (may be NULL) counts blocks whose bias overflowed f16 (|d| too
 * large: the result is no longer exact). */
SL_API int sl_q_gguf_to_affine(sl_dtype type, const void *blocks, size_t n, uint32_t *wq,
                               uint16_t *scales, uint16_t *biases, int *bits_out, uint64_t *overflow, sl_error *err);

/* MLX affine 4-bit (group 32, 64 or 128; scales/biases F16, BF16 or F32) ->
 * GGUF Q4_1, each group becoming group_size/32 blocks with the same scale and
 * bias rounded to f16.  *inexact (may be NULL) counts groups whose scale or
 * bias is not exactly representable in f16 (0 means the repack is lossless). */
SL_API int sl_q_affine_to_q4_1(const uint32_t *wq, const void *scales, const void *biases,
                               sl_dtype scale_type, size_t n, int group_size, void *blocks,
                               uint64_t *inexact, sl_error *err);

/* ---- error statistics (for convert --report) ---------------------------- */

typedef struct sl_q_stats {
    uint64_t n;          /* elements compared */
    uint64_t nonfinite;  /* pairs where either value is NaN/Inf (excluded) */
    double sum_sq_err;   /* sum (approx - ref)^2 */
    double sum_sq_ref;   /* sum ref^2 */
    double max_abs;      /* max |approx - ref| */
} sl_q_stats;

/* Accumulate n pairs into *acc (zero-initialise it first); call per chunk. */
SL_API void sl_q_error_stats(sl_q_stats *acc, const float *ref, const float *approx, size_t n);
SL_API double sl_q_stats_rmse(const sl_q_stats *s);     /* sqrt(sum_sq_err / n) */
SL_API double sl_q_stats_rel(const sl_q_stats *s);      /* sqrt(sum_sq_err / sum_sq_ref), 0 if ref is 0 */

#ifdef __cplusplus
}
#endif
#endif
