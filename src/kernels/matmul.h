/*
 * matmul.h — the engine's weight-matrix abstraction and its multiply
 * dispatch.  A weight is a view (never a copy) of a [rows x cols] matrix in
 * its stored format; kernels are looked up by (format, dtype) in a table that
 * quantized formats (MLX affine, GGUF blocks) extend with sl_matmul_register.
 *
 * Invariants:
 *  - sl_weight.data points into the checkpoint mapping; row r starts at
 *    data + r * row_bytes.  scales/biases (quantized formats) likewise.
 *  - A kernel computes y[t*ldy + r] = sum_c x[t*ldx + c] * W[r][c] for the
 *    rows [r0, r1) it is given and every t < n; it writes nothing else, so
 *    threads splitting rows never share outputs and results do not depend on
 *    the thread count.  Accumulation is f32, in a fixed order.
 *  - Activations arrive as f32; a format wanting quantized activations
 *    quantizes x itself inside its kernel (scratch is per thread).
 */
#ifndef SILICA_KERNELS_MATMUL_H
#define SILICA_KERNELS_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "silica/dtype.h"

typedef enum sl_wformat {
    SL_WF_DENSE = 0,     /* F32 / F16 / BF16 rows */
    SL_WF_MLX_AFFINE,    /* reserved: MLX affine (uint32 codes + scales + biases) */
    SL_WF_GGUF,          /* reserved: ggml blocks */
    SL_WF_COUNT
} sl_wformat;

typedef struct sl_weight {
    sl_wformat fmt;
    sl_dtype dtype;         /* element / block type of data */
    int64_t rows, cols;
    const uint8_t *data;
    size_t row_bytes;
    const void *scales;     /* quantized formats */
    const void *biases;
    sl_dtype scale_dtype;
    int bits, group_size;
    const char *name;       /* tensor name, for messages */
} sl_weight;

/* Multiply rows [r0, r1) of w by n activation rows.  scratch holds at least
 * sl_matmul_scratch_floats(w) floats and is private to the calling thread. */
typedef void (*sl_matmul_fn)(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy,
                             int64_t r0, int64_t r1, float *scratch);
/* Decode row r of w into out[cols] as f32 (embedding lookup). */
typedef void (*sl_rowdec_fn)(const sl_weight *w, int64_t r, float *out);

typedef struct sl_matmul_kernel {
    sl_matmul_fn matmul;
    sl_rowdec_fn row;
    const char *name;
} sl_matmul_kernel;

/* NULL if no kernel handles this (format, dtype). */
const sl_matmul_kernel *sl_matmul_lookup(sl_wformat fmt, sl_dtype dtype);
/* Add or replace a kernel (called once at start-up by a format module). */
void sl_matmul_register(sl_wformat fmt, sl_dtype dtype, const sl_matmul_kernel *k);
size_t sl_matmul_scratch_floats(const sl_weight *w);

/* Dense f32 dot product (the inner loop every dense kernel uses). */
float sl_dot_f32(const float *a, const float *b, size_t n);

#endif
