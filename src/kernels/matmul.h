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
 *    quantizes x itself inside its kernel (scratch is per thread), or, for
 *    prompts, once per call into a buffer every thread reads (act_prep +
 *    matmul_act below): the prepared form of a token depends on that token
 *    alone, so both ways give the same bits.
 */
#ifndef SILICA_KERNELS_MATMUL_H
#define SILICA_KERNELS_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "silica/dtype.h"

typedef enum sl_wformat {
    SL_WF_DENSE = 0,     /* F32 / F16 / BF16 rows */
    SL_WF_MLX_AFFINE,    /* MLX affine: uint32 codes (dtype U32) + scales + biases, bits 2..8 */
    SL_WF_GGUF,          /* ggml blocks; dtype is the block type (Q4_0, Q6_K, ...) */
    SL_WF_MLX_FP,        /* MLX mxfp4 / mxfp8 / nvfp4: uint32 codes (dtype U32) + uint8 scales */
    SL_WF_COUNT
} sl_wformat;

typedef struct sl_weight {
    sl_wformat fmt;
    sl_dtype dtype;         /* element / block type of data */
    int64_t rows, cols;
    const uint8_t *data;
    size_t row_bytes;
    const void *scales;     /* MLX formats: rows x (cols / group_size) scales */
    const void *biases;     /* MLX affine: like scales */
    sl_dtype scale_dtype;   /* F32 / F16 / BF16 (affine), U8 (fp modes) */
    int bits, group_size;
    int qmode;              /* MLX: sl_q_mode (affine, mxfp4, mxfp8, nvfp4) */
    const char *name;       /* tensor name, for messages */
} sl_weight;

/* Multiply rows [r0, r1) of w by n activation rows.  scratch holds at least
 * sl_matmul_scratch_floats(w) floats and is private to the calling thread. */
typedef void (*sl_matmul_fn)(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy,
                             int64_t r0, int64_t r1, float *scratch);
/* Decode row r of w into out[cols] as f32 (embedding lookup). */
typedef void (*sl_rowdec_fn)(const sl_weight *w, int64_t r, float *out);

/* Shared activations (optional, NULL when a format has none): act_bytes is
 * the buffer size for n tokens (0: this weight has no prepared form under
 * the active kernel set); act_prep writes tokens [t0, t1) of the n tokens
 * of x into act, each token at places fixed by (n, t), so threads may
 * prepare disjoint token ranges of one buffer; matmul_act multiplies rows [r0, r1) by the n
 * prepared tokens (x, ldx: the f32 activations, for formats that also read
 * them).  matmul(x) == act_prep(all tokens) + matmul_act, bit for bit;
 * matmul_act needs at most sl_matmul_scratch_floats(w, 1) floats of scratch. */
typedef size_t (*sl_act_bytes_fn)(const sl_weight *w, int n);
typedef void (*sl_act_prep_fn)(const sl_weight *w, const float *x, size_t ldx, int n, int t0, int t1, void *act);
typedef void (*sl_matmul_act_fn)(const sl_weight *w, const float *x, size_t ldx, const void *act, int n, float *y,
                                 size_t ldy, int64_t r0, int64_t r1, float *scratch);

typedef struct sl_matmul_kernel {
    sl_matmul_fn matmul;
    sl_rowdec_fn row;
    const char *name;
    sl_act_bytes_fn act_bytes;
    sl_act_prep_fn act_prep;
    sl_matmul_act_fn matmul_act;
} sl_matmul_kernel;

/* Batches of at least this many tokens take the shared-activation path in
 * the engine (one quantization per call, rows claimed in chunks); smaller
 * ones (generation) quantize per thread, which costs no synchronisation. */
#define SL_MM_SHARED_MIN 8

/* The registered kernel for (format, dtype): the dense table, plus whatever
 * sl_matmul_register added; NULL otherwise. */
const sl_matmul_kernel *sl_matmul_lookup(sl_wformat fmt, sl_dtype dtype);
/* The kernel for a weight of any format (dense table or qmatmul.c); NULL if
 * none multiplies it. */
const sl_matmul_kernel *sl_matmul_for(const sl_weight *w);
/* Add or replace a kernel (called once at start-up by a format module). */
void sl_matmul_register(sl_wformat fmt, sl_dtype dtype, const sl_matmul_kernel *k);
/* Per-thread scratch (floats) a kernel needs for a batch of up to n rows. */
size_t sl_matmul_scratch_floats(const sl_weight *w, int n);
/* Scale-row stride helpers: groups per row of an MLX weight. */
static inline int64_t sl_weight_groups(const sl_weight *w) { return w->group_size ? w->cols / w->group_size : 0; }

/* Rows [r0, r1) of w times n tokens: rows decoded with dec (NULL: f32 rows,
 * used in place when 4-byte aligned) 4 at a time into scratch, multiplied
 * by 4 tokens at a time with the active set's tile (see matmul.c). */
void sl_matmul_tiled(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                     int64_t r1, float *scratch, sl_rowdec_fn dec);

/* Dense f32 dot product (the inner loop every dense kernel uses). */
float sl_dot_f32(const float *a, const float *b, size_t n);
/* Attention over an f16 KV row (the cache's default) without widening it
 * first: q . x by the active set's fused dot (its dense_f16; else widened
 * and sl_dot_f32), and y += a * x element by element (a product, then a
 * sum: the same bits in every set).  n <= 1024. */
float sl_dot_f16(const uint16_t *x, const float *q, size_t n);
void sl_axpy_f16(float *y, float a, const uint16_t *x, size_t n);
/* The same over n rows at once (row i at k + i * stride bytes, d <= 1024
 * values): out[i] = q . row i (sl_dot_f16's bits); out += p[i] * row i in
 * order (sl_axpy_f16's bits). */
void sl_att_scores_f16(const float *q, const uint16_t *k, size_t stride, int n, size_t d, float *out);
void sl_att_values_f16(float *out, const float *p, const uint16_t *v, size_t stride, int n, size_t d);
/* Both for g queries (or outputs) at once, over the same rows, in slices of
 * grp (grp divides g): query j at q + j * ldq reads the d values d * (j / grp)
 * past each row's start (KV head j / grp of a cache row; grp = g: one
 * slice), its scores at out + j * ldo; output j at out + j * ldout with its
 * p at p + j * ldp.  Each one has the bits of the single calls. */
void sl_att_scores_f16_g(const float *q, size_t ldq, int g, int grp, const uint16_t *k, size_t stride, int n,
                         size_t d, float *out, size_t ldo);
void sl_att_values_f16_g(float *out, size_t ldout, const float *p, size_t ldp, int g, int grp, const uint16_t *v,
                         size_t stride, int n, size_t d);
/* Softmax's numerator: x[i] = exp(x[i] - mx) for i < n; returns their sum.
 * The active set's vector exp where it has one (within 2 ulp of expf;
 * lanes summed in a fixed order), else expf and a sum in index order:
 * deterministic either way. */
float sl_exp_sum(float *x, int n, float mx);
/* x[i] *= s for i < n; returns the largest x[i] (-inf when n = 0 or all are
 * NaN), the value `if (x[i] > mx) mx = x[i]` finds: the same in every set. */
float sl_scale_max(float *x, int n, float s);

/* Quantized formats (qmatmul.c): the kernel for a quantized weight, or NULL.
 * sl_matmul_lookup consults it for every format other than SL_WF_DENSE. */
const sl_matmul_kernel *sl_qmatmul_lookup(const sl_weight *w);
/* Which kernel set the matmul kernels use: "avx512" (with VNNI), "avx2",
 * "neondot", "neon" or "portable" (SILICA_SIMD caps it like the dtype
 * converters). */
const char *sl_qmatmul_isa(void);

#endif
