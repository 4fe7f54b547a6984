/*
 * silica/convert.h — streaming conversion of unquantized checkpoints between
 * safetensors, PyTorch (zip), NumPy .npz and GGUF, for files and model
 * directories.
 *
 * Memory: tensors are streamed in bounded chunks from the mmap'd source into
 * the writer; source pages are released after each tensor, so peak RSS stays
 * around one chunk + bookkeeping whatever the model size.
 * Safety: outputs are built under temporary names and renamed at the end;
 * any error or Ctrl-C leaves no partial file or directory behind.
 *
 * Model conversion (layout != SL_LAYOUT_PLAIN): a model directory (HF
 * safetensors / .bin shards, an mlx-lm directory, or a GGUF file) becomes
 *  - SL_LAYOUT_MLX: the directory mlx_lm.convert writes for the same flags
 *    (sanitized names, config.json with "quantization", index.json, shards
 *    of at most 5 GiB), optionally quantized (sl_quant_opts) or dequantized;
 *  - SL_LAYOUT_HF: a transformers directory (model.safetensors or
 *    pytorch_model.bin shards + index), quantized weights dequantized;
 *  - to == SL_FMT_GGUF with a model directory: a llama.cpp GGUF.
 * Quantized tensors are computed one tensor at a time: peak memory is
 * about one source tensor plus its quantized form.
 */
#ifndef SILICA_CONVERT_H
#define SILICA_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/checkpoint.h"
#include "silica/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sl_progress_fn (bytes done / total of long work) is declared in silica/io.h. */

typedef enum sl_layout {
    SL_LAYOUT_PLAIN = 0,   /* same tensors, another container (sl_convert_opts.to) */
    SL_LAYOUT_MLX,         /* mlx-lm directory */
    SL_LAYOUT_HF           /* transformers directory (to = SAFETENSORS or TORCH) */
} sl_layout;

/* Quantization requested by `convert -q` / `quantize`. */
typedef struct sl_quant_opts {
    bool enabled;
    sl_q_mode mode;          /* affine (default), mxfp4, mxfp8, nvfp4 */
    int bits;                /* 0 = the mode's default */
    int group_size;          /* 0 = the mode's default */
    const char *recipe;      /* "mixed_2_6" | "mixed_3_4" | "mixed_3_6" | "mixed_4_6" | NULL */
    const char *keep_float;  /* comma-separated name substrings kept in float, or NULL */
    sl_q_variant variant;    /* CPU (default) or GPU rounding of MLX affine */
    sl_dtype gguf_type;      /* GGUF export: one type for every quantizable tensor (INVALID = auto) */
    const sl_gguf_mix *gguf_mix; /* GGUF export: llama-quantize's mix (wins over gguf_type), or NULL */
    bool gguf_pure;          /* with gguf_mix: llama-quantize --pure (the mix's base type everywhere) */
} sl_quant_opts;

/* One line of --report: a tensor that was (or could not be) quantized. */
typedef struct sl_tensor_report {
    char *name;              /* module path, e.g. model.layers.0.mlp.down_proj (GGUF: the tensor name) */
    char status[48];         /* "quantized", "float (in 96 % group 64 != 0)", "float (--keep-float)", ...
                                GGUF: the type, "Q5_0 (Q4_K: row 320)" after a fallback */
    int bits, group_size;
    double bpw;              /* GGUF: bits per weight of the tensor's type (bits is 0) */
    char mode[8];
    uint64_t n;              /* elements */
    double rmse, max_abs, rel;
} sl_tensor_report;

typedef struct sl_convert_opts {
    sl_format to;                /* SL_FMT_SAFETENSORS, SL_FMT_TORCH, SL_FMT_NPZ, SL_FMT_GGUF */
    sl_dtype dtype;              /* float tensors become this (F32/F16/BF16); INVALID = keep */
    bool force;                  /* replace an existing DST */
    uint64_t max_shard_bytes;    /* directories: split weights into shards of at most this (0 = 5 GB) */
    sl_progress_fn progress;     /* may be NULL */
    void *progress_ctx;
    sl_layout layout;            /* model conversion flavour (see above) */
    sl_quant_opts q;             /* quantize (model conversion only) */
    bool dequantize;             /* mlx / GGUF quantized weights -> float */
    bool report;                 /* collect per-tensor quantization error into stats */
} sl_convert_opts;

/* GGUF: `count` tensors wanted `wanted` but got `used` (row length `row` not a multiple of its block). */
typedef struct sl_type_fallback {
    sl_dtype wanted, used;
    int64_t row;
    uint32_t count;
} sl_type_fallback;

typedef struct sl_convert_stats {
    uint64_t tensors;
    uint64_t bytes_written;      /* tensor bytes */
    uint32_t files_written;      /* weight files */
    uint32_t files_copied;       /* config / tokenizer files */
    uint64_t params;             /* parameters (quantized tensors counted as their float size) */
    uint64_t model_bytes;        /* total_size written to index.json */
    double bits_per_weight;      /* model_bytes * 8 / params */
    uint64_t inexact;            /* repacks that were not exact (e.g. scale not representable in f16) */
    sl_tensor_report *report;    /* opts.report: one entry per quantizable tensor */
    size_t n_report;
    sl_type_fallback *fallbacks; /* GGUF: tensors whose row length did not fit the chosen type, by kind */
    size_t n_fallbacks;
} sl_convert_stats;

SL_API void sl_convert_stats_free(sl_convert_stats *st);

/* Parse "safetensors" | "torch" | "pt" | "npz" | "gguf" (INVALID/UNKNOWN when unknown).
 * ("mlx" and "hf" are layouts: the CLI maps them to SAFETENSORS + SL_LAYOUT_*.) */
SL_API sl_format sl_format_from_name(const char *name);
/* Parse "f32" | "f16" | "bf16" (also "float32", "float16", "bfloat16"). */
SL_API sl_dtype sl_dtype_from_user(const char *name);

/* A model directory whose config.json has mlx-lm's "quantization". */
SL_API bool sl_convert_dir_is_quantized(const char *dir);

/* SRC: a file or a model directory; DST: a file (when SRC is a file) or a directory. */
SL_API int sl_convert_path(const char *src, const char *dst, const sl_convert_opts *opts, sl_convert_stats *stats,
                           sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
