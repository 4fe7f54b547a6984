/*
 * silica/torch.h — PyTorch-specific API: listing the pickle imports of a
 * torch.save file without executing anything (what `silica scan` prints).
 *
 * Reading and writing torch files goes through the generic checkpoint/writer
 * API (sl_checkpoint_open, sl_writer_open with SL_FMT_TORCH).
 */
#ifndef SILICA_TORCH_H
#define SILICA_TORCH_H

#include <stdbool.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_pickle_import {
    const char *file;    /* the path scanned */
    const char *pickle;  /* "data.pkl" (zip record, prefix folder stripped), "pickle 4" (legacy), "pickle 1" */
    const char *module;  /* "collections", "posix" ("?" when a STACK_GLOBAL operand is not a known string) */
    const char *name;    /* "OrderedDict", "system" */
    const char *via;     /* "GLOBAL", "INST" or "STACK_GLOBAL" */
    uint64_t offset;     /* byte offset of the opcode within that pickle */
    bool allowed;        /* silica's loader would resolve it (only via GLOBAL) */
} sl_pickle_import;

typedef int (*sl_pickle_import_fn)(void *ud, const sl_pickle_import *imp);   /* non-zero stops the scan */

/* Walk every pickle in a torch.save zip (every *.pkl record), a legacy
 * torch.save stream (its five pickles) or a raw pickle file, calling fn for
 * each import.  Fails (one line, SL_EINVAL...) only when the file cannot be
 * parsed; unsafe imports are reported, not errors. */
SL_API int sl_torch_scan(const char *path, sl_pickle_import_fn fn, void *ud, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
