/*
 * core/checkpoint_build.h — building a checkpoint: what the format readers
 * (src/formats/) use to fill an sl_checkpoint.  Not public: a checkpoint is
 * made by sl_checkpoint_open (or the readers, in the fuzzers).
 *
 * Invariants: the checkpoint owns what is given to it (mappings, buffers);
 * sl_checkpoint_add_tensor recomputes numel/nbytes, rejects duplicate names and
 * overflow, so a reader cannot add an inconsistent view.
 */
#ifndef SILICA_CORE_CHECKPOINT_BUILD_H
#define SILICA_CORE_CHECKPOINT_BUILD_H

#include "silica/checkpoint.h"

sl_checkpoint *sl_checkpoint_new(sl_format fmt, const char *path);
int sl_checkpoint_add_file(sl_checkpoint *ck, const char *path, uint32_t *index, sl_error *err);
int sl_checkpoint_add_map(sl_checkpoint *ck, sl_mapping *m, sl_error *err);   /* takes ownership */
int sl_checkpoint_own(sl_checkpoint *ck, void *ptr, sl_error *err);          /* free()d at close */
/* Append a tensor; copies name; computes numel/nbytes and, if t->contiguous,
 * row-major strides.  Rejects duplicate names and overflow. */
int sl_checkpoint_add_tensor(sl_checkpoint *ck, const sl_tensor *t, sl_error *err);

#endif
