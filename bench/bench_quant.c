/*
 * bench_quant.c — single-thread throughput of the quantization library:
 * MLX affine 4-bit group 64 quantize (f16 in, f16 scales) and dequantize
 * (to f32 and to f16), GGUF Q4_0 / Q8_0 / Q4_K dequantize and Q8_0 quantize.
 * Figures are MB/s of f16 weights (2 bytes per element) in or out, the unit
 * of the targets (quantize >= 500 MB/s, dequantize >= 2 GB/s per core); the
 * best of 5 runs over a buffer larger than the caches.
 * Usage: bench_quant [MiB of f16 input, default 64]   (SILICA_SIMD=scalar
 * forces the portable loops).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "silica/dtype.h"
#include "silica/quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(const char *what, size_t n, double best) {
    printf("%-34s %8.0f MB/s of f16 weights  (%.1f Melem/s)\n", what, (double)n * 2 / best / 1e6,
           (double)n / best / 1e6);
}

#define BEST_OF(expr)                                                                                          \
    do {                                                                                                       \
        best = 1e30;                                                                                           \
        for (int r_ = 0; r_ < 5; r_++) {                                                                       \
            double t0_ = now();                                                                                \
            if ((expr) != 0) {                                                                                 \
                fprintf(stderr, "bench_quant: %s\n", err.msg);                                                 \
                return 2;                                                                                      \
            }                                                                                                  \
            double t_ = now() - t0_;                                                                           \
            best = t_ < best ? t_ : best;                                                                      \
        }                                                                                                      \
    } while (0)

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
    size_t n = mib * 1024 * 1024 / 2;
    n -= n % 256;
    if (n == 0) return 2;
    uint16_t *w = malloc(n * 2), *s = malloc(n / 64 * 2), *b = malloc(n / 64 * 2), *o16 = malloc(n * 2);
    uint32_t *wq = malloc(n); /* room for 8-bit codes */
    float *f = malloc(n * 4), *o32 = malloc(n * 4);
    uint8_t *blk = malloc(n / 32 * 34 + n / 256 * 144);
    if (!w || !s || !b || !o16 || !wq || !f || !o32 || !blk) return 2;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        f[i] = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * 0.1f;
    }
    sl_f32_to_f16_n(f, w, n);
    sl_error err = {0};
    double best;
    printf("silica quantization benchmark: %zu MiB of f16 (%zu elements), kernels: %s\n", mib, n,
           sl_dtype_kernels());
    BEST_OF(sl_q_affine_quantize(w, SL_F16, n, 4, 64, SL_F16, SL_Q_VARIANT_CPU, wq, s, b, &err));
    report("affine q4 g64 quantize (f16)", n, best);
    BEST_OF(sl_q_affine_dequantize(wq, s, b, SL_F16, n, 4, 64, SL_F32, o32, &err));
    report("affine q4 g64 dequantize -> f32", n, best);
    BEST_OF(sl_q_affine_dequantize(wq, s, b, SL_F16, n, 4, 64, SL_F16, o16, &err));
    report("affine q4 g64 dequantize -> f16", n, best);
    BEST_OF(sl_q_affine_quantize(w, SL_F16, n, 8, 64, SL_F16, SL_Q_VARIANT_CPU, wq, s, b, &err));
    report("affine q8 g64 quantize (f16)", n, best);
    BEST_OF(sl_q_gguf_quantize(SL_Q8_0, f, n, blk, &err));
    report("gguf Q8_0 quantize (f32 in)", n, best);
    BEST_OF(sl_q_gguf_dequantize(SL_Q8_0, blk, n, o32, &err));
    report("gguf Q8_0 dequantize -> f32", n, best);
    BEST_OF(sl_q_gguf_quantize(SL_Q4_0, f, n, blk, &err));
    BEST_OF(sl_q_gguf_dequantize(SL_Q4_0, blk, n, o32, &err));
    report("gguf Q4_0 dequantize -> f32", n, best);
    size_t nk = n / 16; /* the K-quant search is slow: a smaller slice */
    nk -= nk % 256;
    BEST_OF(sl_q_gguf_quantize(SL_Q4_K, f, nk, blk, &err));
    report("gguf Q4_K quantize (f32 in)", nk, best);
    BEST_OF(sl_q_gguf_dequantize(SL_Q4_K, blk, nk, o32, &err));
    report("gguf Q4_K dequantize -> f32", nk, best);
    free(w), free(s), free(b), free(o16), free(wq), free(f), free(o32), free(blk);
    return 0;
}
