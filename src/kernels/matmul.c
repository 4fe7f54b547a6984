/*
 * matmul.c — portable dense kernels (F32, F16, BF16 weights x f32
 * activations) and the (format, dtype) dispatch table.
 *
 * Loops are written for the compiler's auto-vectoriser: sl_dot_f32 keeps 16
 * independent partial sums (so it vectorises without -ffast-math and its
 * summation order is fixed), half-precision rows are widened to f32 once per
 * row with the run-time dispatched SIMD converters of dtype.h and then dotted
 * against every activation row of the batch — the matrix-matrix case reads
 * each weight once per batch.  Hand-written SIMD kernels register over these.
 * Quantized formats live in qmatmul.c; sl_matmul_for picks for any weight.
 */
#include "kernels/matmul.h"

#include <stdbool.h>
#include <string.h>

float sl_dot_f32(const float *a, const float *b, size_t n) {
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
    float tail = 0.0f;
    for (; i < n; i++) tail += a[i] * b[i];
    for (int j = 0; j < 8; j++) acc[j] += acc[j + 8];
    for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];
    return (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail;
}

static void row_f32(const sl_weight *w, int64_t r, float *out) {
    memcpy(out, w->data + (size_t)r * w->row_bytes, (size_t)w->cols * sizeof(float));
}
/* mlx-written safetensors do not align tensor data: odd addresses are read
 * element by element (rare; numpy/torch/safetensors files are aligned). */
static void row_f16(const sl_weight *w, int64_t r, float *out) {
    const uint8_t *p = w->data + (size_t)r * w->row_bytes;
    if (((uintptr_t)p & 1u) == 0) {
        sl_f16_to_f32_n((const uint16_t *)(const void *)p, out, (size_t)w->cols);
        return;
    }
    for (int64_t c = 0; c < w->cols; c++) out[c] = sl_f16_to_f32((uint16_t)(p[2 * c] | p[2 * c + 1] << 8));
}
static void row_bf16(const sl_weight *w, int64_t r, float *out) {
    const uint8_t *p = w->data + (size_t)r * w->row_bytes;
    if (((uintptr_t)p & 1u) == 0) {
        sl_bf16_to_f32_n((const uint16_t *)(const void *)p, out, (size_t)w->cols);
        return;
    }
    for (int64_t c = 0; c < w->cols; c++) out[c] = sl_bf16_to_f32((uint16_t)(p[2 * c] | p[2 * c + 1] << 8));
}

static void mm_f32(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                   int64_t r1, float *scratch) {
    bool aligned = (((uintptr_t)w->data | w->row_bytes) & 3u) == 0;
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = scratch;
        if (aligned) wr = (const float *)(const void *)(w->data + (size_t)r * w->row_bytes);
        else row_f32(w, r, scratch);
        for (int t = 0; t < n; t++) y[(size_t)t * ldy + (size_t)r] = sl_dot_f32(wr, x + (size_t)t * ldx, (size_t)w->cols);
    }
}

/* Half-precision rows: widen one row, use it for the whole batch. */
static void mm_half(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                    int64_t r1, float *scratch, sl_rowdec_fn dec) {
    for (int64_t r = r0; r < r1; r++) {
        dec(w, r, scratch);
        for (int t = 0; t < n; t++)
            y[(size_t)t * ldy + (size_t)r] = sl_dot_f32(scratch, x + (size_t)t * ldx, (size_t)w->cols);
    }
}
static void mm_f16(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                   int64_t r1, float *scratch) {
    mm_half(w, x, n, ldx, y, ldy, r0, r1, scratch, row_f16);
}
static void mm_bf16(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                    int64_t r1, float *scratch) {
    mm_half(w, x, n, ldx, y, ldy, r0, r1, scratch, row_bf16);
}

static sl_matmul_kernel g_table[SL_WF_COUNT][SL_DTYPE_COUNT] = {
    [SL_WF_DENSE] = {
        [SL_F32] = {mm_f32, row_f32, "dense-f32"},
        [SL_F16] = {mm_f16, row_f16, "dense-f16"},
        [SL_BF16] = {mm_bf16, row_bf16, "dense-bf16"},
    },
};

const sl_matmul_kernel *sl_matmul_lookup(sl_wformat fmt, sl_dtype dtype) {
    if ((unsigned)fmt >= SL_WF_COUNT || (unsigned)dtype >= SL_DTYPE_COUNT) return NULL;
    const sl_matmul_kernel *k = &g_table[fmt][dtype];
    return k->matmul ? k : NULL;
}

void sl_matmul_register(sl_wformat fmt, sl_dtype dtype, const sl_matmul_kernel *k) {
    if ((unsigned)fmt < SL_WF_COUNT && (unsigned)dtype < SL_DTYPE_COUNT && k) g_table[fmt][dtype] = *k;
}

const sl_matmul_kernel *sl_matmul_for(const sl_weight *w) {
    const sl_matmul_kernel *k = sl_matmul_lookup(w->fmt, w->dtype);
    if (k) return k;   /* the dense table, or a registered override */
    return w->fmt == SL_WF_DENSE ? NULL : sl_qmatmul_lookup(w);
}
