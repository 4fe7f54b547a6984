/*
 * progress.c — a one-line progress bar on stderr (bytes, rate, ETA), drawn
 * only when stderr is a terminal and at most ten times a second.
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_init(cli_progress *p, const char *label) {
    memset(p, 0, sizeof *p);
    p->enabled = isatty(2);
    p->start = now_s();
    p->label = label;
}

void cli_progress_cb(void *ctx, uint64_t done, uint64_t total, const char *what) {
    cli_progress *p = ctx;
    (void)what;
    if (!p->enabled) return;
    double t = now_s();
    if (done < total && t - p->last < 0.1) return;
    p->last = t;
    double el = t - p->start, rate = el > 0 ? (double)done / el : 0;
    double frac = total ? (double)done / (double)total : 1.0;
    int width = 30, fill = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    char a[32], b[32], r[32];
    fprintf(stderr, "\r%s [%s] %3.0f%% %s/%s %s/s ETA %.0fs  ", p->label, bar, frac * 100,
            cli_human_bytes(done, a, sizeof a), cli_human_bytes(total, b, sizeof b),
            cli_human_bytes((unsigned long long)rate, r, sizeof r), eta);
    p->drawn = true;
}

void cli_progress_done(cli_progress *p) {
    if (p->enabled && p->drawn) fputc('\n', stderr);
}
