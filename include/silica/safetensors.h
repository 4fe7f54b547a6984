/*
 * silica/safetensors.h — safetensors extras beyond the generic reader/writer
 * (sl_safetensors_read in checkpoint.h, SL_FMT_SAFETENSORS in writer.h).
 */
#ifndef SILICA_SAFETENSORS_H
#define SILICA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Write DIR/model.safetensors.index.json for a sharded checkpoint, atomically,
 * the way transformers does (json.dumps(indent=2, sort_keys=True) + "\n"):
 *   {"metadata": {"total_parameters": P, "total_size": S}, "weight_map": {name: file, ...}}
 * names[i] lives in shard files[i] (a bare file name in DIR); weight_map is
 * sorted by name; duplicate names are an error.  total_parameters < 0 omits it. */
SL_API int sl_safetensors_write_index(const char *dir, const char *const *names, const char *const *files, size_t n,
                                      uint64_t total_size, int64_t total_parameters, sl_error *err);
/* The same document at any path (e.g. pytorch_model.bin.index.json, which
 * transformers writes in the same form). */
SL_API int sl_shard_index_write(const char *path, const char *const *names, const char *const *files, size_t n,
                                uint64_t total_size, int64_t total_parameters, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
