/*
 * writer.c — the generic streaming writer driver (see silica/writer.h).
 *
 * Invariants: bytes arrive for exactly one tensor at a time, in order[];
 * a tensor is complete when `written == nbytes[spec]`; sl_writer_finish()
 * refuses to commit unless every tensor was completed.  Any error aborts
 * the output file, so a failed write never leaves a file behind.
 */
#include <stdlib.h>
#include <string.h>

#include "core/writer_ops.h"

static void writer_free(sl_writer *w) {
    if (!w) return;
    if (w->ops && w->ops->free_state) w->ops->free_state(w);
    for (size_t i = 0; i < w->n; i++) free((char *)w->specs[i].name);
    free(w->specs);
    free(w->nbytes);
    free(w->order);
    cJSON_Delete(w->metadata);
    free(w);
}

int sl_writer_open_ops(sl_writer **out, sl_format fmt, const sl_writer_ops *ops, const char *path,
                       const sl_tensor_spec *specs, size_t n, const cJSON *metadata, sl_error *err) {
    *out = NULL;
    sl_writer *w = calloc(1, sizeof *w);
    if (!w) return sl_errorf(err, SL_ENOMEM, "out of memory");
    w->ops = ops;
    w->fmt = fmt;
    w->out.fd = -1;
    w->n = n;
    w->specs = calloc(n ? n : 1, sizeof *w->specs);
    w->nbytes = calloc(n ? n : 1, sizeof *w->nbytes);
    w->order = calloc(n ? n : 1, sizeof *w->order);
    if (!w->specs || !w->nbytes || !w->order) { writer_free(w); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        w->specs[i] = specs[i];
        w->specs[i].name = strdup(specs[i].name ? specs[i].name : "");
        w->order[i] = i;
        if (specs[i].ndim < 0 || specs[i].ndim > SL_MAX_DIMS) {
            rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s': bad rank %d", path, w->specs[i].name, specs[i].ndim);
            break;
        }
        uint64_t numel = 1;
        for (int d = 0; d < specs[i].ndim && !rc; d++)
            if (specs[i].shape[d] < 0 || !sl_mul_u64(numel, (uint64_t)specs[i].shape[d], &numel))
                rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s': bad shape", path, w->specs[i].name);
        if (!rc && !sl_dtype_nbytes(specs[i].dtype, numel, &w->nbytes[i]))
            rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s': %llu elements do not fit dtype %s", path,
                           w->specs[i].name, (unsigned long long)numel, sl_dtype_name(specs[i].dtype));
        for (size_t j = 0; j < i && !rc; j++)
            if (strcmp(w->specs[j].name, w->specs[i].name) == 0)
                rc = sl_errorf(err, SL_EINVAL, "%s: duplicate tensor name '%s'", path, w->specs[i].name);
        if (rc) break;
    }
    if (!rc && metadata) {
        w->metadata = cJSON_Duplicate(metadata, 1);
        if (!w->metadata) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (!rc) rc = sl_outfile_open(&w->out, path, err);
    if (!rc) rc = ops->begin(w, err);
    if (rc) {
        sl_writer_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

const size_t *sl_writer_order(const sl_writer *w) { return w->order; }

/* finish the current tensor if complete, and open the next ones (zero-size ones close at once) */
static int advance(sl_writer *w, sl_error *err) {
    for (;;) {
        if (w->k >= w->n) return 0;
        size_t s = w->order[w->k];
        if (!w->in_tensor) {
            if (w->ops->tensor_begin) {
                int rc = w->ops->tensor_begin(w, s, err);
                if (rc) return rc;
            }
            w->in_tensor = true;
            w->written = 0;
        }
        if (w->written < w->nbytes[s]) return 0;
        if (w->ops->tensor_end) {
            int rc = w->ops->tensor_end(w, s, err);
            if (rc) return rc;
        }
        w->in_tensor = false;
        w->k++;
    }
}

int sl_writer_write(sl_writer *w, const void *data, size_t nbytes, sl_error *err) {
    const uint8_t *p = data;
    int rc = advance(w, err);
    while (!rc && nbytes) {
        if (w->k >= w->n) {
            rc = sl_errorf(err, SL_EINVAL, "%s: more bytes written than the declared tensors hold", w->out.path);
            break;
        }
        size_t s = w->order[w->k];
        uint64_t room = w->nbytes[s] - w->written;
        size_t take = nbytes < room ? nbytes : (size_t)room;
        rc = w->ops->tensor_data ? w->ops->tensor_data(w, p, take, err) : sl_outfile_write(&w->out, p, take, err);
        if (rc) break;
        w->written += take;
        p += take;
        nbytes -= take;
        rc = advance(w, err);
    }
    return rc;
}

int sl_writer_finish(sl_writer *w, sl_error *err) {
    int rc = advance(w, err);
    if (!rc && w->k < w->n)
        rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s' incomplete (%llu of %llu bytes written)", w->out.path,
                       w->specs[w->order[w->k]].name, (unsigned long long)w->written,
                       (unsigned long long)w->nbytes[w->order[w->k]]);
    if (!rc && w->ops->end) rc = w->ops->end(w, err);
    if (!rc) rc = sl_outfile_commit(&w->out, err);
    else sl_outfile_abort(&w->out);
    writer_free(w);
    return rc;
}

void sl_writer_abort(sl_writer *w) {
    if (!w) return;
    sl_outfile_abort(&w->out);
    writer_free(w);
}
