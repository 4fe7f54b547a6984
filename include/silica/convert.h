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
 */
#ifndef SILICA_CONVERT_H
#define SILICA_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "silica/checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*sl_progress_fn)(void *ctx, uint64_t done_bytes, uint64_t total_bytes, const char *what);

typedef struct sl_convert_opts {
    sl_format to;                /* SL_FMT_SAFETENSORS, SL_FMT_TORCH, SL_FMT_NPZ, SL_FMT_GGUF */
    sl_dtype dtype;              /* float tensors become this (F32/F16/BF16); INVALID = keep */
    bool force;                  /* replace an existing DST */
    uint64_t max_shard_bytes;    /* directories: split weights into shards of at most this (0 = 5 GB) */
    sl_progress_fn progress;     /* may be NULL */
    void *progress_ctx;
} sl_convert_opts;

typedef struct sl_convert_stats {
    uint64_t tensors;
    uint64_t bytes_written;      /* tensor bytes */
    uint32_t files_written;      /* weight files */
    uint32_t files_copied;       /* config / tokenizer files */
} sl_convert_stats;

/* Parse "safetensors" | "torch" | "pt" | "npz" | "gguf" (INVALID/UNKNOWN when unknown). */
sl_format sl_format_from_name(const char *name);
/* Parse "f32" | "f16" | "bf16" (also "float32", "float16", "bfloat16"). */
sl_dtype sl_dtype_from_user(const char *name);

/* SRC: a file or a model directory; DST: a file (when SRC is a file) or a directory. */
int sl_convert_path(const char *src, const char *dst, const sl_convert_opts *opts, sl_convert_stats *stats,
                    sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
