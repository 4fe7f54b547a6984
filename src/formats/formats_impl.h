/*
 * formats/formats_impl.h — what each container file of src/formats/ offers the
 * module's two switches over formats: readers for sl_checkpoint_open (open.c)
 * and writer ops for sl_writer_open (writers.c).  A reader appends the tensors
 * of one file to ck (so the shards of a directory accumulate in one
 * checkpoint), every view bounds-checked against its mapping.  The fuzzers
 * call the readers directly.
 */
#ifndef SILICA_FORMATS_IMPL_H
#define SILICA_FORMATS_IMPL_H

#include "core/checkpoint_build.h"
#include "core/writer_ops.h"

int sl_safetensors_read(sl_checkpoint *ck, const char *path, sl_error *err);
int sl_torch_read(sl_checkpoint *ck, const char *path, sl_error *err);     /* zip or legacy */
int sl_npy_read(sl_checkpoint *ck, const char *path, sl_error *err);
int sl_npz_read(sl_checkpoint *ck, const char *path, sl_error *err);
int sl_gguf_read(sl_checkpoint *ck, const char *path, sl_error *err);

/* The writer ops of each format. */
const sl_writer_ops *sl_safetensors_writer_ops(void);
const sl_writer_ops *sl_torch_writer_ops(void);
const sl_writer_ops *sl_npz_writer_ops(void);
const sl_writer_ops *sl_npy_writer_ops(void);
const sl_writer_ops *sl_gguf_writer_ops(void);

#endif
