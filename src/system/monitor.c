/*
 * monitor.c — the memory time series a running engine writes (`--monitor
 * FILE`): JSON lines, one object per sample,
 *     {"t": 0.512, "rss_bytes": 123456789, "peak_rss_bytes": 130000000,
 *      "kv_bytes": 4194304, "tokens": 17, "phase": "generate"}
 * t is seconds since sl_mem_monitor_open (monotonic clock); sizes in bytes;
 * phase is what the engine is doing ("load", "prompt", "generate", "idle",
 * "done"; "" until the first sl_mem_monitor_phase).  Samples come from
 * explicit sl_mem_monitor_sample calls, from a background thread every
 * interval (sl_mem_monitor_start) reading the counters the engine publishes
 * with sl_mem_monitor_set, and one line at every phase change.
 * `silica plot FILE -o mem.svg` draws it (older files that say "rss" and
 * "peak_rss" read back the same).
 *
 * Invariants: each sample is one complete line, flushed, so a file cut by a
 * crash is still readable up to its last sample; lines are written under one
 * mutex (thread and caller never interleave) and t never decreases (taken
 * under that mutex); the first write error is kept and returned by close.
 * Writing goes to the named file directly (a log, not an atomic artefact).
 * Reading back checks every field (numbers, >= 0, time non-decreasing) and
 * names FILE:LINE on error.
 */
#include "silica/memory.h"

#include <errno.h>
#include <pthread.h>
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
    pthread_mutex_t mu;      /* guards everything below and the file */
    pthread_cond_t cv;
    pthread_t th;
    bool running, stop;
    int interval_ms;
    uint64_t kv_bytes, tokens;
    char phase[16];
    int werr;                /* first write errno (0: none) */
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
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->t0 = mono_s();
    *out = m;
    return 0;
}

/* One line from the current counters; the caller holds m->mu. */
static void write_line(sl_mem_monitor *m) {
    if (m->werr) return;
    double t = mono_s() - m->t0;
    uint64_t rss = sl_mem_rss(), peak = sl_mem_peak_rss();
    if (peak < rss) peak = rss;   /* the kernel updates its high-water mark lazily */
    if (fprintf(m->f,
                "{\"t\": %.3f, \"rss_bytes\": %llu, \"peak_rss_bytes\": %llu, \"kv_bytes\": %llu, \"tokens\": %llu, "
                "\"phase\": \"%s\"}\n",
                t < 0 ? 0.0 : t, (unsigned long long)rss, (unsigned long long)peak,
                (unsigned long long)m->kv_bytes, (unsigned long long)m->tokens, m->phase) < 0 ||
        fflush(m->f) != 0)
        m->werr = errno ? errno : EIO;
}

static int write_error(const sl_mem_monitor *m, sl_error *err) {
    return sl_errorf(err, SL_EIO, "%s: cannot write the monitor file (%s)", m->path, strerror(m->werr));
}

int sl_mem_monitor_sample(sl_mem_monitor *m, uint64_t kv_bytes, uint64_t tokens, sl_error *err) {
    if (!m) return sl_errorf(err, SL_EINVAL, "monitor: not open");
    pthread_mutex_lock(&m->mu);
    m->kv_bytes = kv_bytes;
    m->tokens = tokens;
    write_line(m);
    int rc = m->werr ? write_error(m, err) : 0;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void sl_mem_monitor_set(sl_mem_monitor *m, uint64_t kv_bytes, uint64_t tokens) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->kv_bytes = kv_bytes;
    m->tokens = tokens;
    pthread_mutex_unlock(&m->mu);
}

int sl_mem_monitor_phase(sl_mem_monitor *m, const char *phase, sl_error *err) {
    if (!m) return 0;
    pthread_mutex_lock(&m->mu);
    if (strncmp(m->phase, phase, sizeof m->phase) != 0) {
        snprintf(m->phase, sizeof m->phase, "%s", phase);
        write_line(m);
    }
    int rc = m->werr ? write_error(m, err) : 0;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void *sampler(void *arg) {
    sl_mem_monitor *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long long ns = (long long)dl.tv_nsec + (long long)m->interval_ms * 1000000LL;
        dl.tv_sec += (time_t)(ns / 1000000000LL);
        dl.tv_nsec = (long)(ns % 1000000000LL);
        int w = 0;
        while (!m->stop && w != ETIMEDOUT) w = pthread_cond_timedwait(&m->cv, &m->mu, &dl);
        if (!m->stop) write_line(m);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int sl_mem_monitor_start(sl_mem_monitor *m, int interval_ms, sl_error *err) {
    if (!m) return sl_errorf(err, SL_EINVAL, "monitor: not open");
    if (interval_ms < SL_MONITOR_MIN_MS || interval_ms > SL_MONITOR_MAX_MS)
        return sl_errorf(err, SL_EINVAL, "%s: monitor interval %d ms outside %d..%d", m->path, interval_ms,
                         SL_MONITOR_MIN_MS, SL_MONITOR_MAX_MS);
    if (m->running) return 0;
    m->interval_ms = interval_ms;
    int e = pthread_create(&m->th, NULL, sampler, m);
    if (e) return sl_errorf(err, SL_EIO, "%s: cannot start the monitor thread (%s)", m->path, strerror(e));
    m->running = true;
    return 0;
}

int sl_mem_monitor_close(sl_mem_monitor *m, sl_error *err) {
    if (!m) return 0;
    if (m->running) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->th, NULL);
    }
    int rc = m->werr ? write_error(m, err) : 0;
    if (fclose(m->f) != 0 && !rc) rc = sl_errorf(err, SL_EIO, "%s: close failed (%s)", m->path, strerror(errno));
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
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
        memset(&x, 0, sizeof x);
        bool new_names = cJSON_GetObjectItemCaseSensitive(o, "rss_bytes") != NULL;
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(o, "phase");
        if (ph && !cJSON_IsString(ph))
            rc = sl_errorf(err, SL_EINVAL, "%s:%zu: field 'phase' must be a string", name, line);
        else if (ph)
            snprintf(x.phase, sizeof x.phase, "%s", ph->valuestring);
        if (!rc && !(rc = num_field(o, "t", true, &x.t, name, line, err)) &&
            !(rc = num_field(o, new_names ? "rss_bytes" : "rss", true, &x.rss, name, line, err)) &&
            !(rc = num_field(o, new_names ? "peak_rss_bytes" : "peak_rss", false, &x.peak_rss, name, line, err)) &&
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
    if (!rc && *n == 0) rc = sl_errorf(err, SL_EINVAL, "%s: no samples (expected JSON lines with \"t\" and \"rss_bytes\")", name);
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
