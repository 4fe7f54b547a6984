/*
 * bandwidth.c — a short STREAM-like measurement of memory read bandwidth:
 * N threads each sum their slice of one large buffer, passes are repeated
 * for about `seconds`, and the best pass counts (the figure the decode-speed
 * ceiling, bandwidth / bytes read per token, needs).
 *
 * Invariants: the buffer is touched (written) before timing so page faults
 * are not measured; the sums are kept live so the reads cannot be elided;
 * the buffer size is capped at 1/4 of RAM and 4 GiB.
 */
#include "silica/memory.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "silica/cpu.h"

typedef struct bw_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} bw_job;

static void *bw_read(void *arg) {
    bw_job *j = arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= j->n; i += 4) {
        s0 += j->p[i];
        s1 += j->p[i + 1];
        s2 += j->p[i + 2];
        s3 += j->p[i + 3];
    }
    for (; i < j->n; i++) s0 += j->p[i];
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static volatile uint64_t g_sink;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sl_mem_bandwidth(int threads, uint64_t bytes, double seconds, double *gbps, sl_error *err) {
    *gbps = 0;
    if (threads <= 0) threads = sl_cpu()->cores_logical;
    if (threads > 256) threads = 256;
    sl_mem_info mi;
    sl_mem_probe(&mi);
    uint64_t cap = 4 * SL_GIB;
    if (mi.total_bytes && mi.total_bytes / 4 < cap) cap = mi.total_bytes / 4;
    if (bytes > cap) bytes = cap;
    if (bytes < SL_MIB) bytes = SL_MIB;
    if (!(seconds > 0) || seconds > 60) seconds = 0.5;
    size_t n = (size_t)(bytes / sizeof(uint64_t));
    uint64_t *buf = malloc(n * sizeof *buf);
    bw_job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!buf || !jobs || !tid) {
        free(buf);
        free(jobs);
        free(tid);
        return sl_errorf(err, SL_ENOMEM, "bandwidth test: cannot allocate %llu bytes", (unsigned long long)bytes);
    }
    for (size_t i = 0; i < n; i++) buf[i] = i;
    size_t per = n / (size_t)threads;
    double best = 0, start = now_s();
    uint64_t keep = 0;
    int passes = 0;
    do {
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            jobs[t].p = buf + (size_t)t * per;
            jobs[t].n = t == threads - 1 ? n - (size_t)t * per : per;
            if (t > 0 && pthread_create(&tid[t], NULL, bw_read, &jobs[t]) != 0)
                jobs[t].n = 0;   /* thread failed: slice skipped, bytes not counted */
        }
        bw_read(&jobs[0]);
        for (int t = 1; t < threads; t++)
            if (jobs[t].n) pthread_join(tid[t], NULL);
        double dt = now_s() - t0;
        uint64_t done = 0;
        for (int t = 0; t < threads; t++) {
            done += jobs[t].n * sizeof(uint64_t);
            keep += jobs[t].sum;
        }
        if (dt > 0 && (double)done / dt > best) best = (double)done / dt;
        passes++;
    } while (passes < 3 || (now_s() - start < seconds && passes < 1000));
    free(buf);
    free(jobs);
    free(tid);
    g_sink = keep;   /* keeps the sums observable so the reads cannot be elided */
    *gbps = best / 1e9;
    return 0;
}
