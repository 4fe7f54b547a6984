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
 * the quant library calls cannot fail here.  Activations are prepared
 * (quantized, summed) per token, the same bits whoever prepares them: by
 * each thread for itself (matmul: generation), or once per call into a
 * buffer all threads read (act_prep + matmul_act: prompts, matmul.h).
 * Prompts of GGUF Q4_0 / Q8_0, and of MLX affine 4/8-bit on the 24-bit
 * path, go through the set's GEMM tiles (rows x tokens in registers,
 * qdot.h), each output with its one-token dot's bits, so neither threads
 * nor batching change a result; one-token Q4_0 / Q8_0 calls take the set's
 * rows kernel where it has one (same bits as the dot).  Where the set has
 * a tile GEMM (amx: qamx_x86.c), Q4_0 / Q8_0 / Q4_K / Q6_K prompts take it instead, with
 * the tokens' buffer padded to whole tiles (q8_padded), and MLX affine
 * 4/8-bit prompts on the 24-bit path likewise (qamx_affine_x86.c, and the
 * avx512 set's group-lane GEMM, qaffine_gl_x86.c: all the tokens in one
 * call, no padding, in the GEMM's own token form, which the shared
 * preparation writes once per matmul; it takes batches from 2 tokens,
 * sl_qd_kernels.affine_gemm_min, so sequences decoding together share
 * each weight load too); its outputs have that set's one-token dot's bits
 * too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul.h"
#include "kernels/qdot.h"
#include "silica/quant.h"
#include "silica/runtime.h"   /* sl_engine_kernels, defined here */

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

/* Prepared activations, one token at a time at a fixed stride (act_prep):
 *  - 24-bit integer path (AVX-512 VNNI, sl_qd_x24_ok): the token's group
 *    sums xsum[G] and scales d[G] (f32), then its three int8 planes
 *    (3 * cols bytes; cols % 64 == 0 keeps the stride a multiple of 4);
 *    a batch the set's GEMM takes (affine_gemm: prompts, and from the
 *    set's affine_gemm_min tokens) takes that GEMM's token form instead (qdot.h: the same bytes per token, in blocks of 16
 *    tokens laid out for its tiles), made here once per matmul;
 *  - f32 path (the set's fused dot): xsum[G]; the dot reads x itself.
 * Both paths serve every batch size, so a token's result is the same
 * whatever the batching; bit widths without a fused dot decode rows
 * (sl_matmul_tiled: batch-independent too) and have no prepared form. */
static sl_qd_affine24_fn affine_f24(const sl_weight *w) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_affine24_fn f24 = w->bits == 4 ? k->affine4_x24 : w->bits == 8 ? k->affine8_x24 : NULL;
    return f24 && sl_qd_x24_ok(w->bits, w->group_size, (size_t)w->cols) ? f24 : NULL;
}
static sl_qd_affine24_gemm_fn affine_gemm(const sl_weight *w, int n) {
    const sl_qd_kernels *k = sl_qd_active();
    if (n < (k->affine_gemm_min ? k->affine_gemm_min : SL_MM_SHARED_MIN) || !k->affine_x24_tiles || !affine_f24(w))
        return NULL;
    return w->bits == 4 ? k->affine4_x24_gemm : k->affine8_x24_gemm;
}
static int affine_fused(const sl_weight *w) {
    const sl_qd_kernels *k = sl_qd_active();
    return (w->bits == 4 ? k->affine4 : w->bits == 8 ? k->affine8 : NULL) != NULL;
}
static size_t affine_token_bytes(const sl_weight *w) {
    size_t G = (size_t)sl_weight_groups(w);
    return affine_f24(w) ? 8 * G + 3 * (size_t)w->cols : 4 * G;
}
static size_t affine_act_bytes(const sl_weight *w, int n) {
    return affine_fused(w) ? (size_t)n * affine_token_bytes(w) : 0;
}
/* xsum[g]: the group's elements added in index order; eight groups' chains
 * interleaved (independent sums, each in its own order: the same bits as
 * one group after another, without waiting on one add at a time). */
#define XSUM_WAYS 8
static void group_sums(const sl_weight *w, const float *xt, float *xsum) {
    size_t G = (size_t)sl_weight_groups(w), gs = (size_t)w->group_size, g = 0;
    for (; g + XSUM_WAYS <= G; g += XSUM_WAYS) {
        float s[XSUM_WAYS] = {0};
        for (size_t i = 0; i < gs; i++)
            for (int j = 0; j < XSUM_WAYS; j++) s[j] += xt[(g + (size_t)j) * gs + i];
        for (int j = 0; j < XSUM_WAYS; j++) xsum[g + (size_t)j] = s[j];
    }
    for (; g < G; g++) {
        float s = 0.0f;
        for (size_t i = 0; i < gs; i++) s += xt[g * gs + i];
        xsum[g] = s;
    }
}
/* Token t of n in the GEMM's form: its xsum, d and planes (the planes made
 * X24_COLS columns at a time, a multiple of 128: each piece that part of
 * the row's planes, qdot.h) in the block of 16 that holds it. */
#define X24_COLS 1024
typedef void (*x24_prep_fn)(const float *, size_t, int, int, int8_t *, float *);
static void affine_gemm_token(const sl_weight *w, x24_prep_fn prep, const float *xt, int n, int t, void *act) {
    size_t G = (size_t)sl_weight_groups(w), cols = (size_t)w->cols, gs = (size_t)w->group_size;
    int tn = n - t / 16 * 16 < 16 ? n - t / 16 * 16 : 16;
    uint8_t *blk = (uint8_t *)act + (size_t)(t / 16 * 16) * affine_token_bytes(w);
    float *xsum = (float *)(void *)(blk + (size_t)tn * 3 * cols + (size_t)(t % 16) * 8 * G);
    int8_t planes[3 * X24_COLS];
    group_sums(w, xt, xsum);
    for (size_t c0 = 0; c0 < cols; c0 += X24_COLS) {
        size_t cc = cols - c0 < X24_COLS ? cols - c0 : X24_COLS;
        prep(xt + c0, cc, w->group_size, w->bits, planes, xsum + G + c0 / gs);
        sl_qd_active()->affine_x24_tiles(planes, c0, cc, cols, w->group_size, w->bits, t % 16, tn, (int8_t *)blk);
    }
}
static void affine_act_prep(const sl_weight *w, const float *x, size_t ldx, int n, int t0, int t1, void *act) {
    size_t G = (size_t)sl_weight_groups(w), tb = affine_token_bytes(w);
    int x24 = affine_f24(w) != NULL, tiles = affine_gemm(w, n) != NULL;
    x24_prep_fn prep = sl_qd_active()->prep_x24;
    if (!prep) prep = sl_qd_prep_x24;
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (size_t)t * ldx;
        if (tiles) {
            affine_gemm_token(w, prep, xt, n, t, act);
            continue;
        }
        float *xsum = (float *)(void *)((uint8_t *)act + (size_t)t * tb);
        group_sums(w, xt, xsum);
        if (x24) prep(xt, (size_t)w->cols, w->group_size, w->bits, (int8_t *)(void *)(xsum + 2 * G), xsum + G);
    }
}

/* Tokens are taken AFFINE_CHUNK at a time (their prepared activations stay
 * in L2 while the rows stream through).  24-bit: the set's GEMM where
 * affine_gemm takes the batch, else its rows x tokens kernel for any
 * batch, one token included (several rows share each load
 * of the planes and keep several memory streams), else one integer dot per
 * (row, token).  f32: SL_QD_TILE tokens per pass over a row's decoded codes, each
 * with the one-token dot's bits; scratch holds the row's widened sc, bi. */
#define AFFINE_CHUNK 16
static void affine_mm_act(const sl_weight *w, const float *x, size_t ldx, const void *act, int n, float *y, size_t ldy,
                          int64_t r0, int64_t r1, float *scratch) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_affine24_fn f24 = affine_f24(w);
    size_t G = (size_t)sl_weight_groups(w), cols = (size_t)w->cols, tb = affine_token_bytes(w);
    const uint8_t *a = act;
    sl_qd_affine24_gemm_fn gm = affine_gemm(w, n);
    if (gm) {   /* a batch on the set's GEMM: all tokens in one call, in the GEMM's form (affine_act_prep) */
        gm(w->data + (size_t)r0 * w->row_bytes, w->row_bytes, row_scales(w, w->scales, r0), row_scales(w, w->biases, r0),
           G * sl_dtype_size(w->scale_dtype), w->scale_dtype, (int)(r1 - r0), a, n, cols, w->group_size,
           y + (size_t)r0, ldy, (void *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63));
        return;
    }
    for (int t0 = 0; t0 < n; t0 += AFFINE_CHUNK) {
        int nc = n - t0 < AFFINE_CHUNK ? n - t0 : AFFINE_CHUNK;
        sl_qd_affine24_mm_fn mm = w->bits == 4 ? k->affine4_x24_mm : k->affine8_x24_mm;
        if (f24 && mm) {   /* the set's tile, any batch (one token: rows X24_MR at a time) */
            size_t lds = G * sl_dtype_size(w->scale_dtype);
            mm(w->data + (size_t)r0 * w->row_bytes, w->row_bytes, row_scales(w, w->scales, r0),
               row_scales(w, w->biases, r0), lds, w->scale_dtype, (int)(r1 - r0), a + (size_t)t0 * tb, tb, nc, cols,
               w->group_size, y + (size_t)t0 * ldy + (size_t)r0, ldy);
            continue;
        }
        if (f24) {
            for (int64_t r = r0; r < r1; r++) {
                const uint8_t *codes = w->data + (size_t)r * w->row_bytes;
                const uint8_t *rs = row_scales(w, w->scales, r), *rb = row_scales(w, w->biases, r);
                for (int j = 0; j < nc; j++) {
                    const float *xs = (const float *)(const void *)(a + (size_t)(t0 + j) * tb);
                    y[(size_t)(t0 + j) * ldy + (size_t)r] = f24(codes, rs, rb, w->scale_dtype, xs + G, xs,
                                                                (const int8_t *)(const void *)(xs + 2 * G), cols,
                                                                w->group_size);
                }
            }
            continue;
        }
        sl_qd_affine_fn fn = w->bits == 4 ? k->affine4 : k->affine8;
        sl_qd_affine_nt_fn fnt = w->bits == 4 ? k->affine4_nt : k->affine8_nt;
        const float *xc = x + (size_t)t0 * ldx, *xsum = (const float *)(const void *)(a + (size_t)t0 * tb);
        float *sc = scratch, *bi = sc + G;
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

/* Per-thread path: each chunk of tokens prepared at the start of the
 * thread's scratch (64-byte aligned), then affine_mm_act on it with the
 * rest of the scratch (sl_matmul_scratch_floats: room for min(n,
 * AFFINE_CHUNK) tokens). */
static void mm_affine(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                      int64_t r1, float *scratch) {
    if (!affine_fused(w)) {
        mm_rowdec(w, x, n, ldx, y, ldy, r0, r1, scratch, dec_mlx);
        return;
    }
    int chunk = n < AFFINE_CHUNK ? n : AFFINE_CHUNK;
    float *act = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);   /* a GEMM's tile rows in one line */
    float *rest = act + (size_t)chunk * ((affine_token_bytes(w) + 3) / 4);
    for (int t0 = 0; t0 < n; t0 += chunk) {
        int nc = n - t0 < chunk ? n - t0 : chunk;
        const float *xc = x + (size_t)t0 * ldx;
        affine_act_prep(w, xc, ldx, nc, 0, nc, act);
        affine_mm_act(w, xc, ldx, act, nc, y + (size_t)t0 * ldy, ldy, r0, r1, rest);
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

/* Quantized activations: n tokens of cols/32 q8 blocks (cols/256 q8_K
 * blocks), token t at t * nb. */
static int is_q8k(const sl_weight *w) { return w->dtype == SL_Q4_K || w->dtype == SL_Q6_K; }
static size_t q8_token_bytes(const sl_weight *w) {
    return is_q8k(w) ? (size_t)w->cols / 256 * sizeof(sl_q8kb) : (size_t)w->cols / 32 * sizeof(sl_q8b);
}
/* The set's tile GEMM for this weight (NULL: none), used for batches of at
 * least SL_MM_SHARED_MIN tokens; it reads the tokens padded to
 * SL_QD_GEMM_TOKENS, so the buffer for such a batch is padded too. */
static sl_qd_q8_gemm_fn q8_gemm(const sl_weight *w) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_q8_gemm_fn g = w->dtype == SL_Q4_0 ? k->q4_0_gemm : w->dtype == SL_Q8_0 ? k->q8_0_gemm : NULL;
    return w->row_bytes < ((size_t)1 << 27) ? g : NULL;
}
static sl_qd_q8k_gemm_fn q8k_gemm(const sl_weight *w) {
    const sl_qd_kernels *k = sl_qd_active();
    sl_qd_q8k_gemm_fn g = w->dtype == SL_Q4_K ? k->q4_k_gemm : w->dtype == SL_Q6_K ? k->q6_k_gemm : NULL;
    return w->row_bytes < ((size_t)1 << 27) ? g : NULL;
}
static size_t q8_padded(const sl_weight *w, int n) {
    if (n < SL_MM_SHARED_MIN || (!q8_gemm(w) && !q8k_gemm(w))) return (size_t)n;
    return ((size_t)n + SL_QD_GEMM_TOKENS - 1) / SL_QD_GEMM_TOKENS * SL_QD_GEMM_TOKENS;
}
static size_t q8_act_bytes(const sl_weight *w, int n) { return q8_padded(w, n) * q8_token_bytes(w); }
static void q8_act_prep(const sl_weight *w, const float *x, size_t ldx, int n, int t0, int t1, void *act) {
    (void)n;
    size_t cols = (size_t)w->cols, tb = q8_token_bytes(w);
    void (*quantize)(const float *, size_t, sl_q8b *) = sl_qd_active()->quantize_q8;
    void (*quantize_k)(const float *, size_t, sl_q8kb *) = sl_qd_active()->quantize_q8k;
    if (!quantize) quantize = sl_qd_quantize_q8;
    if (!quantize_k) quantize_k = sl_qd_quantize_q8k;
    for (int t = t0; t < t1; t++) {
        void *o = (uint8_t *)act + (size_t)t * tb;
        if (is_q8k(w)) quantize_k(x + (size_t)t * ldx, cols, o);
        else quantize(x + (size_t)t * ldx, cols, o);
    }
}

/* Tokens per pass: their quantized activations (about ACT_CHUNK_BYTES) stay
 * in L2 while the thread's rows go by; a multiple of the 4-token tiles. */
#define ACT_CHUNK_BYTES (192 * 1024)
static int tok_chunk(size_t token_bytes) {
    size_t c = ACT_CHUNK_BYTES / (token_bytes ? token_bytes : 1);
    c = c > 64 ? 64 : c & ~(size_t)3;
    return c < 4 ? 4 : (int)c;
}
#define MM_ROWS 4   /* rows per GEMM tile call */

/* Rows [r0, r1) x n prepared tokens.  A few tokens (generation): one row
 * streamed at a time, every token dotted with it (one memory stream per
 * thread: see part9 on interleaved rows).  A prompt: tokens in chunks, rows
 * MM_ROWS at a time through the set's GEMM tile (or the dot per pair); the
 * same bits either way (qdot.h). */
static void q8_mm_act(const sl_weight *w, const float *x, size_t ldx, const void *act, int n, float *y, size_t ldy,
                      int64_t r0, int64_t r1, float *scratch) {
    (void)x, (void)ldx;
    const sl_qd_kernels *k = sl_qd_active();
    size_t rb = w->row_bytes;
    if (is_q8k(w)) {
        sl_qd_q8k_fn fn = w->dtype == SL_Q4_K ? k->q4_k : k->q6_k;
        sl_qd_q8k_mm_fn kmm = w->dtype == SL_Q4_K ? k->q4_k_mm : k->q6_k_mm;
        size_t nb = (size_t)w->cols / 256;
        const sl_q8kb *qa = act;
        sl_qd_q8k_rows_fn krows = w->dtype == SL_Q4_K ? k->q4_k_rows : k->q6_k_rows;
        if (n == 1 && krows && rb == nb * sl_dtype_get(w->dtype)->block_bytes) {   /* generation: one stream of blocks */
            krows(w->data + (size_t)r0 * rb, (size_t)(r1 - r0), qa, nb, y + r0);
            return;
        }
        sl_qd_q8k_gemm_fn kg = q8k_gemm(w);
        if (kg && n >= SL_MM_SHARED_MIN && scratch) {   /* a prompt on matrix tiles (padded tokens: q8_padded) */
            kg(w->data + (size_t)r0 * rb, rb, (int)(r1 - r0), qa, nb, n, nb, y + r0, ldy,
               (void *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63));
            return;
        }
        int tc = n < SL_MM_SHARED_MIN ? n : tok_chunk(nb * sizeof(sl_q8kb));
        for (int t0 = 0; t0 < n; t0 += tc) {
            int nt = n - t0 < tc ? n - t0 : tc;
            if (kmm && nt > 1) {   /* rows x tokens tiles, the dot's bits */
                for (int64_t r = r0; r < r1; r += MM_ROWS) {
                    int nr = r1 - r < MM_ROWS ? (int)(r1 - r) : MM_ROWS;
                    kmm(w->data + (size_t)r * rb, rb, nr, qa + (size_t)t0 * nb, nb, nt, nb,
                        y + (size_t)t0 * ldy + (size_t)r, ldy);
                }
                continue;
            }
            for (int64_t r = r0; r < r1; r++)
                for (int t = t0; t < t0 + nt; t++)
                    y[(size_t)t * ldy + (size_t)r] = fn(w->data + (size_t)r * rb, qa + (size_t)t * nb, nb);
        }
        return;
    }
    sl_qd_q8_fn fn = w->dtype == SL_Q4_0 ? k->q4_0 : w->dtype == SL_Q4_1 ? k->q4_1 : k->q8_0;
    sl_qd_q8_mm_fn mm = w->dtype == SL_Q4_0 ? k->q4_0_mm : w->dtype == SL_Q4_1 ? k->q4_1_mm : k->q8_0_mm;
    size_t nb = (size_t)w->cols / 32;
    const sl_q8b *qa = act;
    sl_qd_q40_prep_fn rprep = w->dtype == SL_Q4_0 ? k->q4_0_prep : w->dtype == SL_Q8_0 ? k->q8_0_prep : NULL;
    sl_qd_q40_rows_fn rows = w->dtype == SL_Q4_0 ? k->q4_0_rows : w->dtype == SL_Q8_0 ? k->q8_0_rows : NULL;
    if (n == 1 && rows && rprep && scratch && nb >= 4) {   /* generation: rows kernel */
        void *prep = (void *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        rprep(qa, nb, prep);
        rows(w->data + (size_t)r0 * rb, rb, (size_t)(r1 - r0), qa, prep, nb, y + r0);
        return;
    }
    sl_qd_q40_rowsn_fn rows_n = w->dtype == SL_Q4_0 ? k->q4_0_rows_n : w->dtype == SL_Q8_0 ? k->q8_0_rows_n : NULL;
    if (n > 1 && n < SL_QD_GEMM_TOKENS && rows_n && rprep && scratch && nb >= 4) {
        /* a few sequences decoding together: each row read once per SL_QD_ROWS_MAX_TOKENS tokens */
        uint8_t *prep = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        for (int t0 = 0; t0 < n; t0 += SL_QD_ROWS_MAX_TOKENS) {
            int nt = n - t0 < SL_QD_ROWS_MAX_TOKENS ? n - t0 : SL_QD_ROWS_MAX_TOKENS;
            for (int t = 0; t < nt; t++) rprep(qa + (size_t)(t0 + t) * nb, nb, prep + (size_t)t * SL_QD_Q40_PREP_BYTES(nb));
            rows_n(w->data + (size_t)r0 * rb, rb, (size_t)(r1 - r0), qa + (size_t)t0 * nb, nb, nt, prep, nb,
                   y + (size_t)t0 * ldy + r0, ldy);
        }
        return;
    }
    sl_qd_q8_gemm_fn gemm = q8_gemm(w);
    if (gemm && n >= SL_MM_SHARED_MIN && scratch) {   /* a prompt on matrix tiles (padded tokens: q8_padded) */
        void *gs = (void *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
        gemm(w->data + (size_t)r0 * rb, rb, (int)(r1 - r0), qa, nb, n, nb, y + r0, ldy, gs);
        return;
    }
    if (n < SL_MM_SHARED_MIN) {
        for (int64_t r = r0; r < r1; r++)
            for (int t = 0; t < n; t++) y[(size_t)t * ldy + (size_t)r] = fn(w->data + (size_t)r * rb, qa + (size_t)t * nb, nb);
        return;
    }
    int tc = tok_chunk(nb * sizeof(sl_q8b));
    for (int t0 = 0; t0 < n; t0 += tc) {
        int nt = n - t0 < tc ? n - t0 : tc;
        for (int64_t r = r0; r < r1; r += MM_ROWS) {
            int nr = r1 - r < MM_ROWS ? (int)(r1 - r) : MM_ROWS;
            const uint8_t *wr = w->data + (size_t)r * rb;
            float *yo = y + (size_t)t0 * ldy + (size_t)r;
            if (mm) {
                mm(wr, rb, nr, qa + (size_t)t0 * nb, nb, nt, nb, yo, ldy);
                continue;
            }
            for (int t = 0; t < nt; t++)
                for (int i = 0; i < nr; i++) yo[(size_t)t * ldy + (size_t)i] = fn(wr + (size_t)i * rb, qa + (size_t)(t0 + t) * nb, nb);
        }
    }
}

/* Per-thread path: the whole batch quantized in the thread's scratch, the
 * rest of the scratch left to q8_mm_act (the Q4_0 rows kernel's token form). */
static void mm_gguf_q8(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                       int64_t r1, float *scratch) {
    q8_act_prep(w, x, ldx, n, 0, n, scratch);
    q8_mm_act(w, x, ldx, scratch, n, y, ldy, r0, r1, scratch + q8_act_bytes(w, n) / sizeof(float) + 1);
}

static const sl_matmul_kernel k_affine = {mm_affine, dec_mlx, "mlx-affine", affine_act_bytes, affine_act_prep,
                                          affine_mm_act};
static const sl_matmul_kernel k_fp = {mm_fp, dec_mlx, "mlx-fp", NULL, NULL, NULL};
static const sl_matmul_kernel k_gguf = {mm_gguf, dec_gguf, "gguf-rowdec", NULL, NULL, NULL};
static const sl_matmul_kernel k_gguf_q8 = {mm_gguf_q8, dec_gguf, "gguf-q8dot", q8_act_bytes, q8_act_prep, q8_mm_act};

const sl_matmul_kernel *sl_qmatmul_lookup(const sl_weight *w) {
    switch (w->fmt) {
    case SL_WF_MLX_AFFINE:
        return w->dtype == SL_U32 ? &k_affine : NULL;
    case SL_WF_MLX_FP:
        return w->dtype == SL_U32 ? &k_fp : NULL;
    case SL_WF_GGUF:
        switch (w->dtype) {
        case SL_Q4_0: case SL_Q4_1: case SL_Q8_0: case SL_Q4_K: case SL_Q6_K: return &k_gguf_q8;
                default: return sl_q_gguf_can_dequantize(w->dtype) ? &k_gguf : NULL;
        }
    default:
        return NULL;
    }
}

size_t sl_matmul_scratch_floats(const sl_weight *w, int n) {
    /* the tiled row decoder (sl_matmul_tiled) holds SL_QD_TILE padded rows */
    size_t cols = (size_t)w->cols, nn = n > 0 ? (size_t)n : 1, need = SL_QD_TILE * ((cols + 15) & ~(size_t)15);
    if (w->fmt == SL_WF_DENSE && need < SL_QD_DENSE_MM_SCRATCH)
        need = SL_QD_DENSE_MM_SCRATCH;   /* whatever set runs: a dense GEMM's panel and accumulators (any n: matmul_act) */
    if (w->fmt == SL_WF_MLX_AFFINE) {   /* one chunk of prepared tokens (either path), then sc, bi or a tile GEMM's scratch */
        size_t G = (size_t)sl_weight_groups(w), c = nn < AFFINE_CHUNK ? nn : AFFINE_CHUNK, rest = 2 * G;
        size_t gm = 0;
#if defined(SL_QD_X86)   /* whatever x86 set runs: room for the amx set's tile GEMM */
        if (sl_qd_x24_ok(w->bits, w->group_size, cols)) gm = SL_QD_X24_GEMM_SCRATCH(cols, (size_t)w->group_size) / 4 + 16;
#endif
        size_t a = 16 + c * (2 * G + (3 * cols + 3) / 4) + (gm > rest ? gm : rest);
        if (a > need) need = a;
    } else if (w->fmt == SL_WF_GGUF) {
        /* whatever set runs: room for the tile GEMM's padded tokens and scratch (Q4_0 / Q8_0) */
        int tiles = w->dtype == SL_Q4_0 || w->dtype == SL_Q8_0, ktiles = w->dtype == SL_Q4_K || w->dtype == SL_Q6_K;
        size_t np = (tiles || ktiles) && nn >= SL_MM_SHARED_MIN
                        ? (nn + SL_QD_GEMM_TOKENS - 1) / SL_QD_GEMM_TOKENS * SL_QD_GEMM_TOKENS
                        : nn;
        size_t q8 = np * (cols / 32) * sizeof(sl_q8b), q8k = np * (cols / 256) * sizeof(sl_q8kb);
        size_t extra = (size_t)(tiles ? SL_QD_ROWS_MAX_TOKENS : 1) * SL_QD_Q40_PREP_BYTES(cols / 32);
        size_t g = tiles ? SL_QD_GEMM_SCRATCH(cols / 32) : ktiles ? SL_QD_K_GEMM_SCRATCH(cols / 256) : 0;
        size_t b = ((q8 > q8k ? q8 : q8k) + (g > extra ? g : extra) + 64) / sizeof(float) + 2;
        if (b > need) need = b;
    }
    return need + 16;
}

const char *sl_qmatmul_isa(void) { return sl_qd_active()->name; }
const char *sl_engine_kernels(void) { return sl_qmatmul_isa(); }
int sl_engine_amx(const char **why) {
    const char *w = "off: not an x86-64 build";
#if defined(SL_QD_X86)
    const sl_qd_kernels *amx = sl_qd_amx(&w);
    if (amx && sl_qd_active() != amx) w = "off: the kernel set is capped below amx (SILICA_SIMD)";
    if (why) *why = w;
    return amx && sl_qd_active() == amx;
#else
    if (why) *why = w;
    return 0;
#endif
}
