/*
 * bench_dtype.c — single-thread throughput of the bulk dtype converters
 * (f32->bf16, f32->f16, f16->f32, bf16->f32) in GB/s of source bytes read,
 * with the ratio to memcpy of the same number of bytes.  Usage:
 * bench_dtype [MiB of f32 input, default 64].  SILICA_SIMD picks the path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/dtype_simd.h"
#include "silica/dtype.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef void (*bench_fn)(const void *src, void *dst, size_t n);
static void b_f32_bf16(const void *s, void *d, size_t n) { sl_f32_to_bf16_n(s, d, n); }
static void b_f32_f16(const void *s, void *d, size_t n) { sl_f32_to_f16_n(s, d, n); }
static void b_f16_f32(const void *s, void *d, size_t n) { sl_f16_to_f32_n(s, d, n); }
static void b_bf16_f32(const void *s, void *d, size_t n) { sl_bf16_to_f32_n(s, d, n); }

/* best-of-N seconds for one call over n elements */
static double best_time(bench_fn f, const void *src, void *dst, size_t n, size_t bytes, int memcpy_mode) {
    double best = 1e30;
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now_s();
        if (memcpy_mode) memcpy(dst, src, bytes);
        else f(src, dst, n);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;
    if (mib == 0 || mib > 4096) { fprintf(stderr, "bench_dtype: MiB must be 1..4096\n"); return 2; }
    size_t n = mib * 1024 * 1024 / 4;
    float *f32 = malloc(n * 4), *f32b = malloc(n * 4), *scratch = malloc(n * 4);
    uint16_t *h16 = malloc(n * 2);
    if (!f32 || !f32b || !scratch || !h16) { fprintf(stderr, "bench_dtype: out of memory\n"); return 2; }
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        f32[i] = (float)(x >> 8) * 0x1p-20f - 8.0f;
    }
    memset(f32b, 1, n * 4);
    memset(scratch, 1, n * 4);
    sl_f32_to_f16_n(f32, h16, n); /* also warms pages */
    struct { const char *name; bench_fn f; const void *src; void *dst; size_t sbytes; size_t dbytes; } cases[] = {
        {"f32->bf16", b_f32_bf16, f32, h16, 4, 2},
        {"f32->f16", b_f32_f16, f32, h16, 4, 2},
        {"f16->f32", b_f16_f32, h16, f32b, 2, 4},
        {"bf16->f32", b_bf16_f32, h16, f32b, 2, 4},
    };
    printf("bench_dtype: %zu elements, kernels=%s, one thread\n", n, sl_simd_active()->name);
    printf("%-10s %10s %10s %12s %8s\n", "conversion", "GB/s(in)", "GB/s(out)", "memcpy GB/s", "ratio");
    int below = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t in_bytes = n * cases[c].sbytes;
        double t = best_time(cases[c].f, cases[c].src, cases[c].dst, n, in_bytes, 0);
        /* memcpy of the same bytes the conversion reads */
        double tm = best_time(NULL, cases[c].src, scratch, n, in_bytes, 1);
        double gbs = (double)in_bytes / t / 1e9, gbs_out = (double)(n * cases[c].dbytes) / t / 1e9;
        double mgbs = (double)in_bytes / tm / 1e9;
        printf("%-10s %10.2f %10.2f %12.2f %8.2f\n", cases[c].name, gbs, gbs_out, mgbs, gbs / mgbs);
        if (gbs < 2.0) below++;
    }
    free(h16);
    free(scratch);
    free(f32b);
    free(f32);
    if (below) printf("note: %d conversion(s) below the 2 GB/s target\n", below);
    return 0;
}
