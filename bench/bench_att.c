/*
 * bench_att.c — one generated token's attention over a filled f16 KV cache,
 * the engine's layout (a position's row holds every KV head: 8 heads x 64
 * values, 1 KiB; each layer's K then V), without the model: for every layer,
 * each thread takes its share of the KV heads and runs the grouped kernels
 * on PER of them at a time (sl_att_scores_f16_g over their 4 query heads each, the softmax's
 * sl_exp_sum, sl_att_values_f16_g), a barrier between layers as the engine's
 * pool has.  The cache spans LAYERS layers (default 16: 512 MiB at 16384
 * keys, far past L3, as in `silica bench -d 16384`), so the figures are the
 * cache's memory traffic as a token sees it.  Prints the best of REPS tokens
 * in ms and in GB/s of K/V read.
 * Usage: bench_att [KEYS LAYERS THREADS REPS PER]   defaults 16384 16 1 5, PER
 * (KV heads a call, the engine's work item) 8 / THREADS; HUGE=1 in the
 * environment puts the cache on transparent huge pages.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "kernels/matmul.h"
#include "silica/dtype.h"

enum { KVH = 8, GRP = 4, HD = 64, ROW = KVH * HD };

typedef struct bench {
    uint16_t *mem;
    float *q;
    int n, layers, nt, per;
    pthread_barrier_t bar;
} bench;
typedef struct worker {
    bench *b;
    int tid;
    float *scores, *out;
} worker;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run(void *arg) {
    worker *w = arg;
    bench *b = w->b;
    size_t n = (size_t)b->n, layer = 2 * n * ROW;
    int h0 = w->tid * KVH / b->nt, h1 = (w->tid + 1) * KVH / b->nt;
    for (int l = 0; l < b->layers; l++) {
        const uint16_t *k = b->mem + (size_t)l * layer, *v = k + n * ROW;
        for (int h = h0; h < h1; h += b->per) {
            int g = GRP * (h1 - h < b->per ? h1 - h : b->per);
            sl_att_scores_f16_g(b->q + (size_t)h * GRP * HD, HD, g, GRP, k + h * HD, ROW * 2, b->n, HD, w->scores, n);
            for (int j = 0; j < g; j++) {
                float *s = w->scores + (size_t)j * n, mx = -INFINITY;
                for (size_t i = 0; i < n; i++) mx = s[i] > mx ? s[i] : mx;
                float inv = 1.0f / sl_exp_sum(s, b->n, mx);
                for (size_t i = 0; i < n; i++) s[i] *= inv;
            }
            memset(w->out, 0, (size_t)g * HD * sizeof(float));
            sl_att_values_f16_g(w->out, HD, w->scores, n, g, GRP, v + h * HD, ROW * 2, b->n, HD);
        }
        pthread_barrier_wait(&b->bar);
    }
    return NULL;
}

int main(int argc, char **argv) {
    bench b = {0};
    b.n = argc > 1 ? atoi(argv[1]) : 16384;
    b.layers = argc > 2 ? atoi(argv[2]) : 16;
    b.nt = argc > 3 ? atoi(argv[3]) : 1;
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    b.per = argc > 5 ? atoi(argv[5]) : KVH / b.nt;
    if (b.n < 1 || b.layers < 1 || b.nt < 1 || b.nt > KVH || reps < 1 || b.per < 1) return 2;
    size_t elems = (size_t)b.layers * 2 * (size_t)b.n * ROW;
    if (getenv("HUGE")) {
        void *m = NULL;
        if (posix_memalign(&m, 1 << 21, elems * sizeof *b.mem)) return 1;
        madvise(m, elems * sizeof *b.mem, MADV_HUGEPAGE);
        b.mem = m;
    } else
        b.mem = malloc(elems * sizeof *b.mem);
    b.q = malloc(KVH * GRP * HD * sizeof *b.q);
    if (!b.mem || !b.q) return 1;
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < elems; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        b.mem[i] = sl_f32_to_f16((float)(r >> 40) / 16777216.0f - 0.5f);
    }
    for (int i = 0; i < KVH * GRP * HD; i++) b.q[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    pthread_barrier_init(&b.bar, NULL, (unsigned)b.nt);
    worker ws[KVH];
    for (int t = 0; t < b.nt; t++) {
        ws[t] = (worker){&b, t, malloc((size_t)KVH * GRP * (size_t)b.n * sizeof(float)), malloc(KVH * GRP * HD * sizeof(float))};
        if (!ws[t].scores || !ws[t].out) return 1;
    }
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        pthread_t th[KVH];
        double t0 = now();
        for (int t = 1; t < b.nt; t++) pthread_create(&th[t], NULL, run, &ws[t]);
        run(&ws[0]);
        for (int t = 1; t < b.nt; t++) pthread_join(th[t], NULL);
        double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    double bytes = (double)elems * 2;
    printf("keys %d layers %d threads %d, %d KV heads a call: best %.2f ms a token, %.1f GB/s of K/V\n", b.n, b.layers, b.nt, b.per, best * 1e3,
           bytes / best * 1e-9);
    for (int t = 0; t < b.nt; t++) free(ws[t].scores), free(ws[t].out);
    free(b.mem);
    free(b.q);
    return 0;
}
