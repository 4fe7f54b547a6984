/*
 * silica/writer.h — streaming checkpoint writers (safetensors, torch, npz, npy, gguf).
 *
 * The caller declares every tensor up front (name, dtype, shape), then
 * streams the bytes of each tensor in the order sl_writer_order() gives
 * (formats such as safetensors impose their own deterministic order), in as
 * many chunks as it likes.  Nothing needs to hold more than one chunk.
 * Output goes to a temporary file that sl_writer_finish() fsyncs and renames;
 * sl_writer_abort() (or any error) removes it.
 */
#ifndef SILICA_WRITER_H
#define SILICA_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/api.h"
#include "silica/checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_tensor_spec {
    const char *name;
    sl_dtype dtype;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
} sl_tensor_spec;

typedef struct sl_writer sl_writer;

/* metadata: format-specific JSON object, may be NULL.
 *  safetensors: string->string map written as __metadata__ (e.g. {"format":"pt"}).
 *  gguf: {"key": value} with typed values as sl_gguf documents.
 *  torch/npz: ignored. */
SL_API int sl_writer_open(sl_writer **out, sl_format fmt, const char *path,
                          const sl_tensor_spec *specs, size_t n, const cJSON *metadata, sl_error *err);
/* The order in which tensors must be streamed: order[k] = spec index. */
SL_API const size_t *sl_writer_order(const sl_writer *w);
/* Append bytes of the current tensor (advances to the next when one is full). */
SL_API int sl_writer_write(sl_writer *w, const void *data, size_t nbytes, sl_error *err);
SL_API int sl_writer_finish(sl_writer *w, sl_error *err);   /* frees w */
SL_API void sl_writer_abort(sl_writer *w);                   /* frees w; NULL ok */

#ifdef __cplusplus
}
#endif
#endif
