/*
 * monitor.c — the memory time series a running engine writes (`--monitor
 * FILE`): JSON lines, one object per sample,
 *     {"t": 0.512, "rss": 123456789, "peak_rss": 130000000, "kv_bytes": 4194304, "tokens": 17}
 * t is seconds since sl_mem_monitor_open (monotonic clock); sizes in bytes.
 * `silica plot FILE -o mem.svg` draws it.
 *
 * Invariants: each sample is one complete line, flushed, so a file cut by a
 * crash is still readable up to its last sample; writing goes to the named
 * file directly (a log, not an atomic artefact).  Reading back checks every
 * field (numbers, >= 0, time non-decreasing) and names FILE:LINE on error.
 */
#include "silica/memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "silica/io.h"

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

/* ---- reading a series back ---- */

#define MAX_SAMPLES (1u << 22)

static int num_field(const cJSON *o, const char *k, bool required, double *out, const char *name, size_t line,
                     sl_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) {
        *out = -1;
        return required ? sl_errorf(err, SL_EINVAL, "%s:%zu: field '%s' missing (expected a number)", name, line, k) : 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e18)
        return sl_errorf(err, SL_EINVAL, "%s:%zu: field '%s' must be a non-negative number", name, line, k);
    *out = v->valuedouble;
    return 0;
}

int sl_mem_series_parse(const char *text, size_t len, const char *name, sl_mem_sample **out, size_t *n,
                        sl_error *err) {
    *out = NULL;
    *n = 0;
    size_t cap = 0, line = 0;
    sl_mem_sample *s = NULL;
    const char *p = text, *end = text + len;
    int rc = 0;
    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *next = nl ? nl + 1 : end;
        line++;
        size_t k = 0;
        while (k < l && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k == l) {
            p = next;
            continue;
        }
        cJSON *o = cJSON_ParseWithLength(p, l);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            rc = sl_errorf(err, SL_EINVAL, "%s:%zu: not a JSON object (expected one sample per line)", name, line);
            break;
        }
        sl_mem_sample x;
        if (!(rc = num_field(o, "t", true, &x.t, name, line, err)) &&
            !(rc = num_field(o, "rss", true, &x.rss, name, line, err)) &&
            !(rc = num_field(o, "peak_rss", false, &x.peak_rss, name, line, err)) &&
            !(rc = num_field(o, "kv_bytes", false, &x.kv_bytes, name, line, err)))
            rc = num_field(o, "tokens", false, &x.tokens, name, line, err);
        cJSON_Delete(o);
        if (rc) break;
        if (*n && x.t < s[*n - 1].t) {
            rc = sl_errorf(err, SL_EINVAL, "%s:%zu: time %g goes backwards (previous sample %g)", name, line, x.t,
                           s[*n - 1].t);
            break;
        }
        if (*n == MAX_SAMPLES) {
            rc = sl_errorf(err, SL_EINVAL, "%s:%zu: more than %u samples", name, line, MAX_SAMPLES);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            sl_mem_sample *ns = realloc(s, cap * sizeof *ns);
            if (!ns) {
                rc = sl_errorf(err, SL_ENOMEM, "out of memory");
                break;
            }
            s = ns;
        }
        s[(*n)++] = x;
        p = next;
    }
    if (!rc && *n == 0) rc = sl_errorf(err, SL_EINVAL, "%s: no samples (expected JSON lines with \"t\" and \"rss\")", name);
    if (rc) {
        free(s);
        *n = 0;
        return rc;
    }
    *out = s;
    return 0;
}

int sl_mem_series_load(const char *path, sl_mem_sample **out, size_t *n, sl_error *err) {
    char *buf;
    size_t len;
    *out = NULL;
    *n = 0;
    int rc = sl_read_file(path, 512u << 20, &buf, &len, err);
    if (rc) return rc;
    rc = sl_mem_series_parse(buf, len, path, out, n, err);
    free(buf);
    return rc;
}
