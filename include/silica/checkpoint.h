/*
 * silica/checkpoint.h — a checkpoint is a set of named tensors plus metadata,
 * read from one file or a model directory in any supported format.
 *
 * Invariants:
 *  - sl_tensor.data points INTO a read-only mapping of the source file (or, for
 *    DEFLATE'd npz members only, into a buffer the checkpoint owns); nothing is
 *    copied at open time.  All views stay valid until sl_checkpoint_close().
 *  - Every offset/size was bounds-checked against the mapping with
 *    overflow-checked arithmetic before a tensor is added.
 *  - Tensor names are unique within a checkpoint.
 */
#ifndef SILICA_CHECKPOINT_H
#define SILICA_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/api.h"
#include "silica/dtype.h"
#include "silica/error.h"
#include "silica/io.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_MAX_DIMS 8

typedef enum sl_format {
    SL_FMT_UNKNOWN = 0,
    SL_FMT_SAFETENSORS,
    SL_FMT_TORCH,         /* torch.save zip (".bin", ".pt", ".pth") */
    SL_FMT_TORCH_LEGACY,  /* pre-1.6 torch.save (magic number + pickles) */
    SL_FMT_NPY,
    SL_FMT_NPZ,
    SL_FMT_GGUF
} sl_format;

SL_API const char *sl_format_name(sl_format f);   /* "safetensors", "torch", "torch-legacy", "npy", "npz", "gguf" */

typedef struct sl_tensor {
    char *name;
    sl_dtype dtype;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    int64_t strides[SL_MAX_DIMS];  /* in elements; row-major for contiguous tensors */
    bool contiguous;               /* row-major dense: data..data+nbytes holds it all */
    bool big_endian;               /* stored big-endian (legacy torch / '>f4' npy) */
    const uint8_t *data;           /* first element */
    uint64_t nbytes;               /* numel x dtype size (packed rule) */
    uint64_t numel;
    uint32_t file;                 /* index into sl_checkpoint.files */
    uint64_t offset;               /* byte offset of `data` within that file (when mapped) */
} sl_tensor;

typedef struct sl_checkpoint {
    sl_format format;
    char *path;                 /* what was opened (file or directory) */
    sl_tensor *tensors;
    size_t n_tensors;
    char **files;               /* source files, tensors refer to them by index */
    size_t n_files;
    cJSON *metadata;            /* JSON object, never NULL: format metadata (safetensors __metadata__, GGUF KV, torch extras) */
    cJSON *config;              /* config.json of a model directory, else NULL */
    /* private: owned resources */
    sl_mapping **maps;
    size_t n_maps;
    void **owned;
    size_t n_owned;
    size_t cap_tensors, cap_files, cap_maps, cap_owned;
    void *name_index;           /* hash of names, built lazily */
} sl_checkpoint;

/* Open a file or a model directory, detecting the format from magic bytes.
 * Directories: sharded safetensors / pytorch_model.bin with index.json, single
 * files, or an mlx-lm folder; config.json is loaded when present. */
SL_API int sl_checkpoint_open(const char *path, sl_checkpoint **out, sl_error *err);
SL_API void sl_checkpoint_close(sl_checkpoint *ck);

/* The GGUF file a model path stands for, for reading its metadata (the
 * tokenizer, the chat template): a GGUF file itself (for a part of a
 * llama.cpp split set, its first part, which holds the metadata), or the one
 * GGUF model of a directory whose weights are GGUF.  *gguf is malloc'd, or
 * NULL (and 0 returned) when the path is not a GGUF model.  A directory with
 * several GGUF models, or a split set with a part missing, is an error. */
SL_API int sl_checkpoint_gguf_path(const char *path, char **gguf, sl_error *err);

/* Detect a file's format from its first bytes (and name as a tie-break). */
SL_API sl_format sl_detect_format(const char *path, sl_error *err);

SL_API const sl_tensor *sl_checkpoint_find(const sl_checkpoint *ck, const char *name);
SL_API uint64_t sl_tensor_numel(const sl_tensor *t);

/* Copy elements [first, first+count) of t (logical row-major order, honouring
 * strides and byte order) into dst converted to dst_dtype.  Packed/quant
 * dtypes: only as themselves (dst_dtype == t->dtype) and contiguous. */
SL_API int sl_tensor_read(const sl_tensor *t, uint64_t first, uint64_t count, sl_dtype dst_dtype, void *dst,
                          sl_error *err);

/* Tell the OS the tensor's source pages are no longer needed (keeps RSS
 * bounded while streaming a large checkpoint). */
SL_API void sl_checkpoint_release(const sl_checkpoint *ck, const sl_tensor *t);

/* ---- logical parameters (src/core/params.c) ---- */
/* Numbers the unquantized model holds, counted as mlx-lm's
 * get_total_parameters does: an MLX quantized weight (a U32 "<m>.weight"
 * with a "<m>.scales" sibling) counts rows x cols x 32 / bits, its ".scales"
 * and ".biases" count 0; every other tensor, GGUF block types included (their
 * shape is logical), counts its elements.  *bits (may be NULL): the bits used
 * for an MLX quantized weight, else 0; *assumed (may be NULL): true when
 * config.json gave no bits and 4 was assumed. */
SL_API uint64_t sl_tensor_params(const sl_checkpoint *ck, const sl_tensor *t, int *bits, bool *assumed);
SL_API uint64_t sl_checkpoint_params(const sl_checkpoint *ck);
/* Bits config.json's "quantization" (or "quantization_config") gives the
 * module of tensor_name: its per-module {"bits"} object, else the top-level
 * "bits"; 0 when it says nothing. */
SL_API int sl_mlx_quant_bits(const cJSON *config, const char *tensor_name);
/* A count with 3 significant digits and a unit: "950", "23.1 M", "8.03 B". */
SL_API void sl_format_count(uint64_t n, char *buf, size_t cap);

/* Git LFS pointer: true if buf looks like a spec-v1 pointer file. */
SL_API bool sl_lfs_is_pointer(const uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
