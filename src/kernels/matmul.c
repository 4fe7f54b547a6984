/*
 * matmul.c — dense kernels (F32, F16, BF16 weights x f32 activations), the
 * tiled row-decode driver every batched path shares, and the (format,
 * dtype) dispatch table.
 *
 * One token (generation, matrix-vector): the active kernel set's fused dot
 * (qdot.h: AVX2 / AVX-512 / NEON) converts the stored f16/bf16 lanes in
 * registers and streams each row once (AVX-512 and NEON: 4 rows at a time,
 * each its own chain).  A batch (prompt, matrix-matrix): the set's dense
 * GEMM where it has one (K-blocked: AVX-512 6-row panels, qdense_x86.c;
 * NEON 4-row panels, qdense_neon.c; from
 * SL_MM_SHARED_MIN tokens the engine packs the tokens once per matmul for
 * every thread: act_prep / matmul_act below), else up to 4
 * rows are widened to f32 in the thread's scratch and multiplied by 4
 * tokens at a time (sl_matmul_tiled), so each weight is read once per
 * batch.  The portable set has no fused dot: rows are widened with the
 * dtype.h converters and dotted with sl_dot_f32, whose 16 partial sums
 * vectorise without -ffast-math and fix the summation order.
 * Quantized formats live in qmatmul.c; sl_matmul_for picks for any weight.
 */
#include "kernels/matmul.h"

#include "kernels/qdot.h"

#include <math.h>
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

float sl_dot_f16(const uint16_t *x, const float *q, size_t n) {
    const sl_qd_kernels *k = sl_qd_active();
    if (k->dense_f16) return k->dense_f16((const uint8_t *)x, q, n);
    float t[1024];
    sl_f16_to_f32_n(x, t, n);
    return sl_dot_f32(q, t, n);
}

void sl_axpy_f16(float *y, float a, const uint16_t *x, size_t n) {
    const sl_qd_kernels *k = sl_qd_active();
    if (k->axpy_f16) {
        k->axpy_f16(y, a, (const uint8_t *)x, n);
        return;
    }
    float t[1024];
    sl_f16_to_f32_n(x, t, n);
    for (size_t i = 0; i < n; i++) y[i] += a * t[i];
}

void sl_att_scores_f16(const float *q, const uint16_t *k, size_t stride, int n, size_t d, float *out) {
    const sl_qd_kernels *ks = sl_qd_active();
    if (ks->att_scores_f16 && d <= 256) {
        ks->att_scores_f16(q, (const uint8_t *)k, stride, n, d, out);
        return;
    }
    for (int i = 0; i < n; i++) out[i] = sl_dot_f16((const uint16_t *)(const void *)((const uint8_t *)k + (size_t)i * stride), q, d);
}

void sl_att_values_f16(float *out, const float *p, const uint16_t *v, size_t stride, int n, size_t d) {
    const sl_qd_kernels *ks = sl_qd_active();
    if (ks->att_values_f16 && d <= 256) {
        ks->att_values_f16(out, p, (const uint8_t *)v, stride, n, d);
        return;
    }
    for (int i = 0; i < n; i++) sl_axpy_f16(out, p[i], (const uint16_t *)(const void *)((const uint8_t *)v + (size_t)i * stride), d);
}

void sl_att_scores_f16_g(const float *q, size_t ldq, int g, int grp, const uint16_t *k, size_t stride, int n,
                         size_t d, float *out, size_t ldo) {
    const sl_qd_kernels *ks = sl_qd_active();
    if (ks->att_scores_f16_g && d <= 256 && g > 1) {
        ks->att_scores_f16_g(q, ldq, g, grp, (const uint8_t *)k, stride, n, d, out, ldo);
        return;
    }
    for (int j = 0; j < g; j++)
        sl_att_scores_f16(q + (size_t)j * ldq, k + (size_t)(j / grp) * d, stride, n, d, out + (size_t)j * ldo);
}

void sl_att_values_f16_g(float *out, size_t ldout, const float *p, size_t ldp, int g, int grp, const uint16_t *v,
                         size_t stride, int n, size_t d) {
    const sl_qd_kernels *ks = sl_qd_active();
    if (ks->att_values_f16_g && d <= 256 && g > 1) {
        ks->att_values_f16_g(out, ldout, p, ldp, g, grp, (const uint8_t *)v, stride, n, d);
        return;
    }
    for (int j = 0; j < g; j++)
        sl_att_values_f16(out + (size_t)j * ldout, p + (size_t)j * ldp, v + (size_t)(j / grp) * d, stride, n, d);
}

float sl_scale_max(float *x, int n, float s) {
    const sl_qd_kernels *ks = sl_qd_active();
    if (ks->scale_max) return ks->scale_max(x, n, s);
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        x[i] *= s;
        if (x[i] > mx) mx = x[i];
    }
    return mx;
}

float sl_exp_sum(float *x, int n, float mx) {
    const sl_qd_kernels *ks = sl_qd_active();
    if (ks->exp_sum) return ks->exp_sum(x, n, mx);
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    return sum;
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

/* Tokens per pass of sl_matmul_tiled: their f32 activations (about
 * TILED_CHUNK_BYTES) stay in L2 while the rows go by; a multiple of the
 * tile's tokens.  Without it a 512-token prompt streamed its 4 MB (cols
 * 2048) to 16 MB (8192) of activations from L3 once per SL_QD_TILE rows. */
#define TILED_CHUNK_BYTES (512 * 1024)
static int tiled_chunk(size_t cols) {
    size_t c = TILED_CHUNK_BYTES / (cols * sizeof(float) + 1);
    c &= ~(size_t)(SL_QD_TILE - 1);
    return c < SL_QD_TILE ? SL_QD_TILE : c > 256 ? 256 : (int)c;
}

/* Rows [r0, r1) x n tokens through the thread's f32 scratch: tokens in
 * chunks that fit L2; per chunk, decode up to SL_QD_TILE rows (or point at
 * aligned f32 rows in place), then multiply them by SL_QD_TILE tokens at a
 * time with the active set's tile.  A row is decoded once per chunk (a
 * small cost next to the chunk's multiply-adds); every output comes from
 * the same tile call whatever the chunking, so its bits do not change. */
void sl_matmul_tiled(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                     int64_t r1, float *scratch, sl_rowdec_fn dec) {
    const sl_qd_kernels *k = sl_qd_active();
    size_t cols = (size_t)w->cols, ld = (cols + 15) & ~(size_t)15;
    bool in_place = !dec && (((uintptr_t)w->data | w->row_bytes) & 3u) == 0;
    float out[SL_QD_TILE * SL_QD_TILE];
    int tc = tiled_chunk(cols);
    for (int t0 = 0; t0 < n; t0 += tc) {
        int t1 = n - t0 < tc ? n : t0 + tc;
        for (int64_t r = r0; r < r1; r += SL_QD_TILE) {
            int nr = r1 - r < SL_QD_TILE ? (int)(r1 - r) : SL_QD_TILE;
            const float *wr = scratch;
            size_t ldw = ld;
            if (in_place) {
                wr = (const float *)(const void *)(w->data + (size_t)r * w->row_bytes);
                ldw = w->row_bytes / sizeof(float);
            } else {
                for (int i = 0; i < nr; i++) (dec ? dec : row_f32)(w, r + i, scratch + (size_t)i * ld);
            }
            for (int t = t0; t < t1; t += SL_QD_TILE) {
                int nt = t1 - t < SL_QD_TILE ? t1 - t : SL_QD_TILE;
                k->tile(wr, ldw, nr, x + (size_t)t * ldx, ldx, nt, cols, out);
                for (int jj = 0; jj < nt; jj++)
                    for (int ii = 0; ii < nr; ii++) y[(size_t)(t + jj) * ldy + (size_t)(r + ii)] = out[jj * nr + ii];
            }
        }
    }
}

/* The set's fused dot for a dense dtype (NULL: the set has none). */
static sl_qd_dense_fn dense_dot(const sl_qd_kernels *k, sl_dtype dt) {
    return dt == SL_F32 ? k->dense_f32 : dt == SL_F16 ? k->dense_f16 : k->dense_bf16;
}

/* One token (generation): the set's rows kernel or fused dot streams the
 * stored rows (no widening pass); a batch: the set's dense GEMM, else the
 * tile; a set without a fused dot goes through the tile for both. */
static void mm_dense(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                     int64_t r1, float *scratch) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_dense_fn dot = dense_dot(k, w->dtype);
    const uint8_t *w0 = w->data + (size_t)r0 * w->row_bytes;
    if (n == 1 && dot && k->dense_rows) {
        k->dense_rows(w0, w->row_bytes, w->dtype, (size_t)(r1 - r0), x, (size_t)w->cols, y + r0);
        return;
    }
    if (n == 1 && dot) {
        for (int64_t r = r0; r < r1; r++) y[r] = dot(w->data + (size_t)r * w->row_bytes, x, (size_t)w->cols);
        return;
    }
    if (dot && k->dense_mm && r1 > r0) {
        k->dense_mm(w0, w->row_bytes, w->dtype, (int)(r1 - r0), x, ldx, NULL, n, (size_t)w->cols, y + r0, ldy,
                    scratch);
        return;
    }
    sl_rowdec_fn dec = w->dtype == SL_F16 ? row_f16 : w->dtype == SL_BF16 ? row_bf16 : NULL;
    sl_matmul_tiled(w, x, n, ldx, y, ldy, r0, r1, scratch, dec);
}

/* Prompts with a set's dense GEMM: the tokens packed once per matmul into
 * the buffer every thread reads (its dense_pack form: each block of columns
 * of a chunk of tokens one contiguous run), then rows claimed by threads;
 * the same GEMM as mm_dense on the same values, so the same bits. */
static size_t dense_act_bytes(const sl_weight *w, int n) {
    const sl_qd_kernels *k = sl_qd_active();
    return dense_dot(k, w->dtype) && k->dense_mm && k->dense_pack && n > 0 ? (size_t)n * (size_t)w->cols * sizeof(float)
                                                                            : 0;
}
static void dense_act_prep(const sl_weight *w, const float *x, size_t ldx, int n, int t0, int t1, void *act) {
    sl_qd_active()->dense_pack(x, ldx, (size_t)w->cols, n, t0, t1, act);
}
static void dense_matmul_act(const sl_weight *w, const float *x, size_t ldx, const void *act, int n, float *y,
                             size_t ldy, int64_t r0, int64_t r1, float *scratch) {
    if (r1 <= r0) return;
    sl_qd_active()->dense_mm(w->data + (size_t)r0 * w->row_bytes, w->row_bytes, w->dtype, (int)(r1 - r0), x, ldx, act, n,
                             (size_t)w->cols, y + r0, ldy, scratch);
}

static sl_matmul_kernel g_table[SL_WF_COUNT][SL_DTYPE_COUNT] = {
    [SL_WF_DENSE] = {
        [SL_F32] = {mm_dense, row_f32, "dense-f32", dense_act_bytes, dense_act_prep, dense_matmul_act},
        [SL_F16] = {mm_dense, row_f16, "dense-f16", dense_act_bytes, dense_act_prep, dense_matmul_act},
        [SL_BF16] = {mm_dense, row_bf16, "dense-bf16", dense_act_bytes, dense_act_prep, dense_matmul_act},
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
