/*
 * core/writer_ops.h — what a format writer implements: the interface between
 * the generic driver (core/writer.c) and the formats (src/formats/), which
 * pick the ops for a format in sl_writer_open.
 *
 * The generic driver (writer.c) owns the spec copy, the stream position and
 * the atomic output file; a format supplies hooks.  Call sequence:
 *   begin -> { tensor_begin(i) -> data... -> tensor_end(i) } for i in order -> end
 * `order` may be set by begin() (default: declaration order).
 */
#ifndef SILICA_CORE_WRITER_OPS_H
#define SILICA_CORE_WRITER_OPS_H

#include "silica/writer.h"

typedef struct sl_writer_ops {
    int (*begin)(sl_writer *w, sl_error *err);
    int (*tensor_begin)(sl_writer *w, size_t spec, sl_error *err);          /* may be NULL */
    int (*tensor_data)(sl_writer *w, const void *d, size_t n, sl_error *err); /* NULL: append to file */
    int (*tensor_end)(sl_writer *w, size_t spec, sl_error *err);            /* may be NULL */
    int (*end)(sl_writer *w, sl_error *err);                                /* may be NULL */
    void (*free_state)(sl_writer *w);                                       /* may be NULL */
} sl_writer_ops;

struct sl_writer {
    const sl_writer_ops *ops;
    sl_format fmt;
    sl_outfile out;
    sl_tensor_spec *specs;   /* deep copy (names owned) */
    uint64_t *nbytes;        /* per spec */
    size_t n;
    size_t *order;           /* order[k] = spec index */
    size_t k;                /* position in order */
    uint64_t written;        /* bytes written of the current tensor */
    bool in_tensor;
    cJSON *metadata;         /* deep copy or NULL */
    void *state;             /* the format's */
};

/* sl_writer_open with the format's ops chosen (formats/writers.c chooses them). */
int sl_writer_open_ops(sl_writer **out, sl_format fmt, const sl_writer_ops *ops, const char *path,
                       const sl_tensor_spec *specs, size_t n, const cJSON *metadata, sl_error *err);

#endif
