/*
 * monitor.c — the memory time series a running engine writes (`--monitor
 * FILE`): JSON lines, one object per sample,
 *     {"t": 0.512, "rss": 123456789, "peak_rss": 130000000, "kv_bytes": 4194304, "tokens": 17}
 * t is seconds since sl_mem_monitor_open (monotonic clock); sizes in bytes.
 * `silica plot FILE -o mem.svg` draws it.
 *
 * Invariants: each sample is one complete line, flushed, so a file cut by a
 * crash is still readable up to its last sample; writing goes to the named
 * file directly (a log, not an atomic artefact).
 */
#include "silica/memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sl_mem_monitor {
    FILE *f;
    char *path;
    double t0;
};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sl_mem_monitor_open(const char *path, sl_mem_monitor **out, sl_error *err) {
    *out = NULL;
    sl_mem_monitor *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (!(m->f = fopen(path, "w"))) {
        int e = errno;
        free(m->path);
        free(m);
        return sl_errorf(err, SL_EIO, "%s: cannot create the monitor file (%s)", path, strerror(e));
    }
    m->t0 = mono_s();
    *out = m;
    return 0;
}

int sl_mem_monitor_sample(sl_mem_monitor *m, uint64_t kv_bytes, uint64_t tokens, sl_error *err) {
    if (!m) return sl_errorf(err, SL_EINVAL, "monitor: not open");
    double t = mono_s() - m->t0;
    if (fprintf(m->f, "{\"t\": %.3f, \"rss\": %llu, \"peak_rss\": %llu, \"kv_bytes\": %llu, \"tokens\": %llu}\n", t,
                (unsigned long long)sl_mem_rss(), (unsigned long long)sl_mem_peak_rss(), (unsigned long long)kv_bytes,
                (unsigned long long)tokens) < 0 ||
        fflush(m->f) != 0)
        return sl_errorf(err, SL_EIO, "%s: write failed (%s)", m->path, strerror(errno));
    return 0;
}

int sl_mem_monitor_close(sl_mem_monitor *m, sl_error *err) {
    if (!m) return 0;
    int rc = 0;
    if (fclose(m->f) != 0) rc = sl_errorf(err, SL_EIO, "%s: close failed (%s)", m->path, strerror(errno));
    free(m->path);
    free(m);
    return rc;
}
