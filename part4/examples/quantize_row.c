/* quantize_row.c — part 4: one row of 256 weights through four quantizers.
 * The row is x[i] = ((37·i mod 101) − 50) / 1000 (exact in f32, so any tool can
 * rebuild it).  For MLX affine 4-bit g64, GGUF Q4_0, Q8_0 and Q4_K it prints the
 * bits per weight (codes + scales), the relative RMS error of the round trip, and
 * the start of what is stored: MLX's first scale, bias and 8 codes; the first GGUF
 * block's bytes in hex.  tests/py/test_course.py compares them with mx.quantize and
 * gguf-py.  Usage: quantize_row (no arguments). */
#include <math.h>
#include <stdio.h>
#include "silica/silica.h"

#define N 256

static double rel_error(const float *x, const float *y) {
    sl_q_stats st = {0};
    sl_q_error_stats(&st, x, y, N);
    return 100.0 * sl_q_stats_rel(&st);
}

static int gguf(sl_dtype type, const char *name, size_t block_bytes, size_t block_len, const float *x) {
    unsigned char blocks[N / 32 * 34];
    float y[N];
    sl_error err = {0};
    if (sl_q_gguf_quantize(type, x, N, blocks, &err) || sl_q_gguf_dequantize(type, blocks, N, y, &err)) {
        fprintf(stderr, "quantize_row: error: %s\n", err.msg);
        return 2;
    }
    printf("%-20s %6.4f bits/weight  error %6.3f %%  block 0:", name, 8.0 * block_bytes / block_len, rel_error(x, y));
    for (size_t i = 0; i < block_bytes && i < 12; i++) printf(" %02x", blocks[i]);
    printf("%s\n", block_bytes > 12 ? " …" : "");
    return 0;
}

int main(void) {
    float x[N], y[N], scales[N / 64], biases[N / 64];
    uint32_t wq[N * 4 / 32];
    uint8_t codes[8];
    sl_error err = {0};
    for (int i = 0; i < N; i++) x[i] = (float)((37 * i) % 101 - 50) / 1000.0f;
    if (sl_q_affine_quantize(x, SL_F32, N, 4, 64, SL_F32, SL_Q_VARIANT_CPU, wq, scales, biases, &err) ||
        sl_q_affine_dequantize(wq, scales, biases, SL_F32, N, 4, 64, SL_F32, y, &err) ||
        sl_q_unpack(wq, 8, 4, codes, &err)) {
        fprintf(stderr, "quantize_row: error: %s\n", err.msg);
        return 2;
    }
    /* f32 scales and biases here: 4 + 2·32/64 = 5 bits per weight (f16 ones: 4.5) */
    printf("%-20s %6.4f bits/weight  error %6.3f %%  group 0: scale %.9g bias %.9g codes", "MLX affine 4-bit g64",
           4.0 + 2.0 * 32 / 64, rel_error(x, y), scales[0], biases[0]);
    for (int i = 0; i < 8; i++) printf(" %u", codes[i]);
    printf("\n");
    if (gguf(SL_Q4_0, "GGUF Q4_0", 18, 32, x) || gguf(SL_Q8_0, "GGUF Q8_0", 34, 32, x) ||
        gguf(SL_Q4_K, "GGUF Q4_K", 144, 256, x))
        return 2;
    return 0;
}
