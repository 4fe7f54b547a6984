/*
 * bench_qmm.c — one thread, one quantized weight: the engine's prompt path
 * (activations prepared once, then matmul_act over every row) and its
 * generation path (matmul, one token), for GGUF Q4_0 / Q8_0 / Q4_K / Q6_K, MLX affine
 * 4/8-bit and dense f32 / f16 / bf16 rows (whose prompt path is the tiled row
 * decoder), with the kernel set SILICA_SIMD leaves (qdot.h).  Weights are
 * random (valid f16 scales); figures are the best of REPS calls, in ms and
 * in multiply-adds per ns.  Made for before / after comparisons of kernels
 * under `valgrind --tool=callgrind` (instruction counts: a fixed amount of
 * work per run, REPS=1) or on a quiet machine (times).
 * Usage: bench_qmm FORMAT [ROWS COLS TOKENS GROUP REPS CLAIM]
 *   FORMAT: q4_0 | q8_0 | q4_k | q6_k | mlx4 | mlx8 | f32 | f16 | bf16;  defaults 1024 2048 64 64 5 ROWS;
 *   TOKENS 1 measures the generation path, more the prompt path; CLAIM: rows
 *   per matmul_act call on the prompt path, as the engine's threads claim
 *   them (session.c: about ROWS / (4 threads) rounded up to 16); the prep's
 *   share of the best time is printed too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/matmul.h"
#include "kernels/qdot.h"
#include "silica/dtype.h"
#include "silica/quant.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}
static float rndf(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; }
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static void put_f16(uint8_t *p, float v) {
    uint16_t h = sl_f32_to_f16(v);
    memcpy(p, &h, 2);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_qmm q4_0|q8_0|q4_k|q6_k|mlx4|mlx8|f32|f16|bf16 [ROWS COLS TOKENS GROUP REPS CLAIM]\n");
        return 2;
    }
    const char *fmt = argv[1];
    int64_t rows = argc > 2 ? atol(argv[2]) : 1024, cols = argc > 3 ? atol(argv[3]) : 2048;
    int n = argc > 4 ? atoi(argv[4]) : 64, gs = argc > 5 ? atoi(argv[5]) : 64, reps = argc > 6 ? atoi(argv[6]) : 5;
    int64_t claim = argc > 7 ? atol(argv[7]) : rows;
    if (claim < 1) claim = rows;
    sl_weight w = {.rows = rows, .cols = cols, .name = "w"};
    size_t wbytes, sbytes = 0;
    uint8_t *sc = NULL, *bi = NULL;
    /* GGUF: a block type, its size and where its f16 scales sit (Q4_K: d and dmin) */
    static const struct { const char *name; sl_dtype dt; int elems, bytes, d_at, dmin_at; float d; } gguf[] = {
        {"q4_0", SL_Q4_0, 32, 18, 0, -1, 0.01f}, {"q8_0", SL_Q8_0, 32, 34, 0, -1, 0.01f},
        {"q4_k", SL_Q4_K, 256, 144, 0, 2, 0.001f}, {"q6_k", SL_Q6_K, 256, 210, 208, -1, 0.001f}};
    int gi = -1;
    for (int k = 0; k < 4; k++)
        if (strcmp(fmt, gguf[k].name) == 0) gi = k;
    if (gi >= 0) {
        size_t bb = (size_t)gguf[gi].bytes;
        w.fmt = SL_WF_GGUF, w.dtype = gguf[gi].dt, w.row_bytes = (size_t)cols / (size_t)gguf[gi].elems * bb;
        wbytes = w.row_bytes * (size_t)rows;
        uint8_t *d = malloc(wbytes);
        for (size_t i = 0; i < wbytes; i++) d[i] = (uint8_t)rnd();
        for (size_t b = 0; b < wbytes / bb; b++) {
            put_f16(d + b * bb + gguf[gi].d_at, gguf[gi].d * (1.0f + 0.5f * rndf()));
            if (gguf[gi].dmin_at >= 0) put_f16(d + b * bb + gguf[gi].dmin_at, gguf[gi].d * (1.0f + 0.5f * rndf()));
        }
        w.data = d;
    } else if (strcmp(fmt, "mlx4") == 0 || strcmp(fmt, "mlx8") == 0) {
        int bits = fmt[3] - '0';
        w.fmt = SL_WF_MLX_AFFINE, w.dtype = SL_U32, w.bits = bits, w.group_size = gs, w.qmode = SL_Q_AFFINE;
        w.scale_dtype = SL_F16, w.row_bytes = (size_t)cols * (size_t)bits / 8;
        wbytes = w.row_bytes * (size_t)rows;
        uint8_t *d = malloc(wbytes);
        for (size_t i = 0; i < wbytes; i++) d[i] = (uint8_t)rnd();
        sbytes = (size_t)rows * (size_t)(cols / gs) * 2;
        sc = malloc(sbytes), bi = malloc(sbytes);
        for (size_t i = 0; i < sbytes / 2; i++) put_f16(sc + 2 * i, 0.05f * rndf()), put_f16(bi + 2 * i, 0.1f * rndf());
        w.data = d, w.scales = sc, w.biases = bi;
    } else if (strcmp(fmt, "f32") == 0 || strcmp(fmt, "f16") == 0 || strcmp(fmt, "bf16") == 0) {
        sl_dtype dt = fmt[0] == 'b' ? SL_BF16 : fmt[1] == '1' ? SL_F16 : SL_F32;
        size_t es = sl_dtype_size(dt);
        w.fmt = SL_WF_DENSE, w.dtype = dt, w.row_bytes = (size_t)cols * es;
        wbytes = w.row_bytes * (size_t)rows;
        uint8_t *d = malloc(wbytes);
        for (size_t i = 0; i < wbytes / es; i++) {
            float v = 0.05f * rndf();
            if (dt == SL_F32) memcpy(d + 4 * i, &v, 4);
            else if (dt == SL_F16) put_f16(d + 2 * i, v);
            else {
                uint16_t h = sl_f32_to_bf16(v);
                memcpy(d + 2 * i, &h, 2);
            }
        }
        w.data = d;
    } else {
        fprintf(stderr, "bench_qmm: unknown format %s\n", fmt);
        return 2;
    }
    const sl_matmul_kernel *k = sl_matmul_for(&w);
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)cols), *y = malloc(sizeof(float) * (size_t)n * (size_t)rows);
    float *scratch = malloc(sizeof(float) * sl_matmul_scratch_floats(&w, n));
    for (size_t i = 0; i < (size_t)n * (size_t)cols; i++) x[i] = rndf();
    void *act = NULL;
    int shared = n >= SL_MM_SHARED_MIN && k->act_bytes && k->act_bytes(&w, n) > 0;
    if (shared) act = aligned_alloc(64, (k->act_bytes(&w, n) + 63) & ~(size_t)63);   /* as the engine's */
    double best = 1e30, best_prep = 0, sum = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), tp = t0;
        if (shared) {
            k->act_prep(&w, x, (size_t)cols, n, 0, n, act);
            tp = now();
            for (int64_t r0 = 0; r0 < rows; r0 += claim)
                k->matmul_act(&w, x, (size_t)cols, act, n, y, (size_t)rows, r0, rows - r0 < claim ? rows : r0 + claim,
                              scratch);
        } else {
            k->matmul(&w, x, n, (size_t)cols, y, (size_t)rows, 0, rows, scratch);
        }
        double t = now() - t0;
        if (t < best) best = t, best_prep = tp - t0;
        for (int64_t i = 0; i < rows; i++) sum += y[i];
    }
    printf("%s %s rows %lld cols %lld tokens %d%s: best %.3f ms (prep %.3f ms, claims of %lld rows), %.2f MAC/ns "
           "(checksum %.6g)\n",
           fmt, sl_qmatmul_isa(), (long long)rows, (long long)cols, n, shared ? " (prompt path)" : "", best * 1e3,
           best_prep * 1e3, (long long)claim, (double)rows * (double)cols * n / best * 1e-9, sum);
    free(x), free(y), free(scratch), free(act), free((void *)w.data), free(sc), free(bi);
    return 0;
}
