/*
 * qmatmul.c — matmul kernels for quantized weights used in place: MLX affine
 * (2..8 bits, any group size, f32/f16/bf16 scales), MLX mxfp4/mxfp8/nvfp4
 * and GGUF blocks (Q4_0 ... Q6_K, IQ4_NL).
 *
 * Three strategies, chosen per (format, dtype, batch):
 *  - fused integer dots (GGUF Q4_0, Q4_1, Q8_0, Q4_K, Q6_K): the activations are
 *    quantized once per call to 8-bit blocks (q8 for 32-blocks, q8_K for
 *    256-blocks, as llama.cpp does), then every weight block is dotted
 *    with integer arithmetic and one f32 scale multiply (qdot.h);
 *  - fused affine dots (MLX affine 4 and 8 bits):
 *    y = sum_g s_g (q_g . x_g) + b_g sum(x_g).  With AVX-512 VNNI the
 *    activations are quantized per group to 24-bit integers (qdot.h: error
 *    <= 6e-8 of the group's amax, f32 rounding size; 8-bit activations as
 *    llama.cpp uses would cost ~1e-3 of the logits' agreement with mlx_lm)
 *    and the dots are integer (vpdpbusd), for every batch size; other sets
 *    keep f32 activations and FMA the dequantized lanes, also for every
 *    batch size (up to 4 tokens per pass over a row, each token with the
 *    one-token dot's bits);
 *  - row decode (everything else): up to 4 weight
 *    rows are dequantized to f32 in the thread's scratch by the quant
 *    library and multiplied by 4 tokens at a time (sl_matmul_tiled), so
 *    prompt processing decodes each row once per batch.
 * Invariants: nothing is written outside y[t*ldy + r] for r in [r0, r1); no
 * weight is copied beyond one row (or one row's scales) in scratch (mlx
 * files leave uint32 codes unaligned: the fused kernels read bytes, the
 * row decoders copy each chunk's words to an aligned stack buffer first); every
 * shape was validated when the weight was bound (src/model/model_q.c), so
 * the quant library calls cannot fail here.  Each thread quantizes the
 * activations itself (identically), so results do not depend on threads.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul.h"
#include "kernels/qdot.h"
#include "silica/quant.h"
#include "silica/runtime.h"

/* ---- row decoders ---- */

static size_t scale_size(const sl_weight *w) { return w->qmode == SL_Q_AFFINE ? sl_dtype_size(w->scale_dtype) : 1; }

/* Row decoding goes in chunks of DEC_CHUNK elements (a multiple of every
 * MLX group size), each chunk's codes first copied to an aligned stack
 * buffer: mlx files leave uint32 data unaligned and the quant library reads
 * whole words. */
#define DEC_CHUNK 512
static const uint8_t *row_codes(const sl_weight *w, int64_t r) { return w->data + (size_t)r * w->row_bytes; }

/* Widen n scales/biases (F32/F16/BF16, possibly unaligned) to f32: halves
 * go through an aligned stack copy into the SIMD converters of dtype.h. */
static void widen(sl_dtype t, const uint8_t *p, float *out, size_t n) {
    if (t == SL_F32) {
        memcpy(out, p, 4 * n);
        return;
    }
    uint16_t buf[256];
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t m = n - i0 < 256 ? n - i0 : 256;
        memcpy(buf, p + 2 * i0, 2 * m);
        if (t == SL_F16) sl_f16_to_f32_n(buf, out + i0, m);
        else sl_bf16_to_f32_n(buf, out + i0, m);
    }
}
static const uint8_t *row_scales(const sl_weight *w, const void *base, int64_t r) {
    return (const uint8_t *)base + (size_t)r * (size_t)sl_weight_groups(w) * scale_size(w);
}

static void dec_mlx(const sl_weight *w, int64_t r, float *out) {
    uint32_t buf[DEC_CHUNK * 8 / 32];
    sl_error e;
    const uint8_t *codes = row_codes(w, r), *sc = row_scales(w, w->scales, r);
    const uint8_t *bi = w->biases ? row_scales(w, w->biases, r) : NULL;
    size_t ss = scale_size(w), gs = (size_t)w->group_size;
    for (size_t c0 = 0; c0 < (size_t)w->cols; c0 += DEC_CHUNK) {
        size_t n = (size_t)w->cols - c0 < DEC_CHUNK ? (size_t)w->cols - c0 : DEC_CHUNK, g0 = c0 / gs;
        memcpy(buf, codes + c0 * (size_t)w->bits / 8, n * (size_t)w->bits / 8);
        if (w->fmt == SL_WF_MLX_AFFINE)
            sl_q_affine_dequantize(buf, sc + g0 * ss, bi + g0 * ss, w->scale_dtype, n, w->bits, w->group_size, SL_F32,
                                   out + c0, &e);
        else
            sl_q_fp_dequantize((sl_q_mode)w->qmode, buf, sc + g0, n, NULL, SL_F32, out + c0, &e);
    }
}
static void dec_gguf(const sl_weight *w, int64_t r, float *out) {
    sl_error e;
    sl_q_gguf_dequantize(w->dtype, w->data + (size_t)r * w->row_bytes, (size_t)w->cols, out, &e);
}

static void mm_rowdec(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                      int64_t r1, float *scratch, sl_rowdec_fn dec) {
    sl_matmul_tiled(w, x, n, ldx, y, ldy, r0, r1, scratch, dec);
}

/* ---- MLX affine ---- */

/* The 24-bit integer path (AVX-512 VNNI) serves every batch size, tokens
 * taken X24_CHUNK at a time (their planes stay in L2 while the rows stream
 * through): a token's result is then the same whatever the batching.
 * Scratch (floats): per chunk token xsum and d (G each), then the three
 * int8 planes (cols bytes each). */
#define X24_CHUNK 16
static void mm_affine_x24(const sl_weight *w, sl_qd_affine24_fn f24, const float *x, int n, size_t ldx, float *y,
                          size_t ldy, int64_t r0, int64_t r1, float *scratch) {
    size_t G = (size_t)sl_weight_groups(w), gs = (size_t)w->group_size, cols = (size_t)w->cols;
    float *xsum = scratch, *xd = xsum + X24_CHUNK * G;
    int8_t *planes = (int8_t *)(void *)(xd + X24_CHUNK * G);   /* token j of the chunk: 3 planes at 3 * j * cols */
    for (int t0 = 0; t0 < n; t0 += X24_CHUNK) {
        int nc = n - t0 < X24_CHUNK ? n - t0 : X24_CHUNK;
        for (int j = 0; j < nc; j++) {
            const float *xt = x + (size_t)(t0 + j) * ldx;
            for (size_t g = 0; g < G; g++) {
                float s = 0.0f;
                for (size_t i = 0; i < gs; i++) s += xt[g * gs + i];
                xsum[(size_t)j * G + g] = s;
            }
            sl_qd_prep_x24(xt, cols, w->group_size, w->bits, planes + 3 * (size_t)j * cols, xd + (size_t)j * G);
        }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *codes = w->data + (size_t)r * w->row_bytes;
            const uint8_t *rs = row_scales(w, w->scales, r), *rb = row_scales(w, w->biases, r);
            for (int j = 0; j < nc; j++)
                y[(size_t)(t0 + j) * ldy + (size_t)r] = f24(codes, rs, rb, w->scale_dtype, xd + (size_t)j * G,
                                                            xsum + (size_t)j * G, planes + 3 * (size_t)j * cols, cols,
                                                            w->group_size);
        }
    }
}

/* f32 activations: the set's fused dot for every batch size, tokens taken
 * AFFINE_CHUNK at a time (their activations stay in L2 while the rows
 * stream) and SL_QD_TILE per pass over a row; each (row, token) result has
 * the one-token dot's bits, so batching changes nothing.  Scratch (floats):
 * sc, bi (G each), then per chunk token xsum (G each).  Bit widths without
 * a fused dot decode rows (sl_matmul_tiled: batch-independent too). */
#define AFFINE_CHUNK 16
static void mm_affine(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                      int64_t r1, float *scratch) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_affine24_fn f24 = w->bits == 4 ? k->affine4_x24 : w->bits == 8 ? k->affine8_x24 : NULL;
    if (f24 && sl_qd_x24_ok(w->bits, w->group_size, (size_t)w->cols)) {
        mm_affine_x24(w, f24, x, n, ldx, y, ldy, r0, r1, scratch);
        return;
    }
    sl_qd_affine_fn fn = w->bits == 4 ? k->affine4 : w->bits == 8 ? k->affine8 : NULL;
    sl_qd_affine_nt_fn fnt = w->bits == 4 ? k->affine4_nt : w->bits == 8 ? k->affine8_nt : NULL;
    if (!fn) {
        mm_rowdec(w, x, n, ldx, y, ldy, r0, r1, scratch, dec_mlx);
        return;
    }
    size_t G = (size_t)sl_weight_groups(w), gs = (size_t)w->group_size;
    float *sc = scratch, *bi = sc + G, *xsum = bi + G;
    for (int t0 = 0; t0 < n; t0 += AFFINE_CHUNK) {
        int nc = n - t0 < AFFINE_CHUNK ? n - t0 : AFFINE_CHUNK;
        const float *xc = x + (size_t)t0 * ldx;
        for (int t = 0; t < nc; t++)
            for (size_t g = 0; g < G; g++) {
                const float *xg = xc + (size_t)t * ldx + g * gs;
                float s = 0.0f;
                for (size_t i = 0; i < gs; i++) s += xg[i];
                xsum[(size_t)t * G + g] = s;
            }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *codes = w->data + (size_t)r * w->row_bytes;
            widen(w->scale_dtype, row_scales(w, w->scales, r), sc, G);
            widen(w->scale_dtype, row_scales(w, w->biases, r), bi, G);
            for (int t = 0; t < nc; t += SL_QD_TILE) {
                int nt = nc - t < SL_QD_TILE ? nc - t : SL_QD_TILE;
                float out[SL_QD_TILE];
                if (fnt) fnt(codes, sc, bi, xc + (size_t)t * ldx, ldx, xsum + (size_t)t * G, nt, G, w->group_size, out);
                else
                    for (int j = 0; j < nt; j++)
                        out[j] = fn(codes, sc, bi, xc + (size_t)(t + j) * ldx, xsum + (size_t)(t + j) * G, G,
                                    w->group_size);
                for (int j = 0; j < nt; j++) y[(size_t)(t0 + t + j) * ldy + (size_t)r] = out[j];
            }
        }
    }
}

/* ---- MLX fp modes ---- */

static void mm_fp(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0, int64_t r1,
                  float *scratch) {
    mm_rowdec(w, x, n, ldx, y, ldy, r0, r1, scratch, dec_mlx);
}

/* ---- GGUF ---- */

static void mm_gguf(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                    int64_t r1, float *scratch) {
    mm_rowdec(w, x, n, ldx, y, ldy, r0, r1, scratch, dec_gguf);
}

static void mm_gguf_q8(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                       int64_t r1, float *scratch) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_q8_fn fn = w->dtype == SL_Q4_0 ? k->q4_0 : w->dtype == SL_Q4_1 ? k->q4_1 : k->q8_0;
    size_t nb = (size_t)w->cols / 32;
    sl_q8b *qa = (sl_q8b *)(void *)scratch;
    for (int t = 0; t < n; t++) sl_qd_quantize_q8(x + (size_t)t * ldx, (size_t)w->cols, qa + (size_t)t * nb);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < n; t++) y[(size_t)t * ldy + (size_t)r] = fn(wr, qa + (size_t)t * nb, nb);
    }
}

static void mm_gguf_q8k(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                        int64_t r1, float *scratch) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_q8k_fn fn = w->dtype == SL_Q4_K ? k->q4_k : k->q6_k;
    size_t nb = (size_t)w->cols / 256;
    sl_q8kb *qa = (sl_q8kb *)(void *)scratch;
    for (int t = 0; t < n; t++) sl_qd_quantize_q8k(x + (size_t)t * ldx, (size_t)w->cols, qa + (size_t)t * nb);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < n; t++) y[(size_t)t * ldy + (size_t)r] = fn(wr, qa + (size_t)t * nb, nb);
    }
}

static const sl_matmul_kernel k_affine = {mm_affine, dec_mlx, "mlx-affine"};
static const sl_matmul_kernel k_fp = {mm_fp, dec_mlx, "mlx-fp"};
static const sl_matmul_kernel k_gguf = {mm_gguf, dec_gguf, "gguf-rowdec"};
static const sl_matmul_kernel k_gguf_q8 = {mm_gguf_q8, dec_gguf, "gguf-q8dot"};
static const sl_matmul_kernel k_gguf_q8k = {mm_gguf_q8k, dec_gguf, "gguf-q8kdot"};

const sl_matmul_kernel *sl_qmatmul_lookup(const sl_weight *w) {
    switch (w->fmt) {
    case SL_WF_MLX_AFFINE:
        return w->dtype == SL_U32 ? &k_affine : NULL;
    case SL_WF_MLX_FP:
        return w->dtype == SL_U32 ? &k_fp : NULL;
    case SL_WF_GGUF:
        switch (w->dtype) {
        case SL_Q4_0: case SL_Q4_1: case SL_Q8_0: return &k_gguf_q8;
        case SL_Q4_K: case SL_Q6_K: return &k_gguf_q8k;
        default: return sl_q_gguf_can_dequantize(w->dtype) ? &k_gguf : NULL;
        }
    default:
        return NULL;
    }
}

size_t sl_matmul_scratch_floats(const sl_weight *w, int n) {
    /* the tiled row decoder (sl_matmul_tiled) holds SL_QD_TILE padded rows */
    size_t cols = (size_t)w->cols, nn = n > 0 ? (size_t)n : 1, need = SL_QD_TILE * ((cols + 15) & ~(size_t)15);
    if (w->fmt == SL_WF_MLX_AFFINE) {
        size_t G = (size_t)sl_weight_groups(w);
        size_t a = 2 * G + (nn < AFFINE_CHUNK ? nn : AFFINE_CHUNK) * G, x24 = 2 * X24_CHUNK * G + (3 * X24_CHUNK * cols + 3) / 4;   /* f32; 24-bit */
        if (x24 > a) a = x24;
        if (a > need) need = a;
    } else if (w->fmt == SL_WF_GGUF) {
        size_t q8 = nn * (cols / 32) * sizeof(sl_q8b), q8k = nn * (cols / 256) * sizeof(sl_q8kb);
        size_t b = (q8 > q8k ? q8 : q8k) / sizeof(float) + 1;
        if (b > need) need = b;
    }
    return need + 16;
}

const char *sl_qmatmul_isa(void) { return sl_qd_active()->name; }
const char *sl_engine_kernels(void) { return sl_qmatmul_isa(); }
