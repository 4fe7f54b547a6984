/*
 * qdot.h — the dot products behind matmul.c and qmatmul.c (internal): one
 * weight row against one activation row, for the formats with a fused
 * kernel (GGUF blocks, MLX affine 4/8-bit, dense f32/f16/bf16 rows), plus
 * the f32 row x token tile the batched (prompt) paths use, in a portable
 * version and (where built) SIMD versions picked at run time.
 *
 * Activation blocks (what "quantize the activations" produces, as llama.cpp
 * does for its integer dots, but with an f32 scale instead of f16):
 *   sl_q8b  — 32 values: d = amax/127, qs = round(x/d), s = sum(qs)
 *             (for Q4_0 / Q8_0 weights);
 *   sl_q8kb — 256 values: d, qs, and bsums = sums of each 16 qs
 *             (for Q4_K / Q6_K weights: the min term needs them).
 * Invariants: every dot reads exactly cols/32 (cols/256) weight blocks and
 * activation blocks; integer parts are exact, so SIMD and portable results
 * differ only in the order of the f32 block accumulation.  Weight blocks are
 * read with unaligned loads (GGUF blocks of 18/34/210 bytes are unaligned).
 * Dense dots, the tile and the dense GEMM (dense_mm, dense_rows) compute
 * each (row, token) pair with its own accumulators in an order that depends
 * only on n, never on which other rows or tokens share the call, so results do not depend on how rows are
 * split between threads; a dense dot gives the bits the tile gives for the
 * same pair, so results do not depend on batching either.  A set may leave
 * a dense dot NULL: matmul.c then widens the row and goes through the tile
 * (the portable path: sl_dot_f32).
 */
#ifndef SILICA_KERNELS_QDOT_H
#define SILICA_KERNELS_QDOT_H

#include <stddef.h>
#include <stdint.h>

#include "silica/dtype.h"

typedef struct sl_q8b {
    float d;
    int32_t s;
    int8_t qs[32];
} sl_q8b;

typedef struct sl_q8kb {
    float d;
    int16_t bsums[16];
    int8_t qs[256];
} sl_q8kb;

/* Quantize n floats (a multiple of 32 / 256). */
void sl_qd_quantize_q8(const float *x, size_t n, sl_q8b *out);
void sl_qd_quantize_q8k(const float *x, size_t n, sl_q8kb *out);

/* Weight row (nb blocks) . activation row. */
typedef float (*sl_qd_q8_fn)(const uint8_t *w, const sl_q8b *y, size_t nb);
typedef float (*sl_qd_q8k_fn)(const uint8_t *w, const sl_q8kb *y, size_t nb);
/* MLX affine, one row of `groups` groups of gs: sum_g s_g*(q_g . x_g) + b_g*xsum_g
 * with f32 scales/biases already widened (sc, bi); codes = the row's packed
 * little-endian uint32 words, read bytewise (mlx files leave them unaligned). */
typedef float (*sl_qd_affine_fn)(const uint8_t *codes, const float *sc, const float *bi, const float *x,
                                 const float *xsum, size_t groups, int gs);
/* The same dot for nt <= SL_QD_TILE tokens at once (token t: x + t * ldx,
 * xsum + t * groups, result out[t]), each decoded code used for every token;
 * out[t] has the bits the one-token dot gives for token t (same accumulator
 * chain per token), so batching does not change results.  NULL: the caller
 * loops the one-token dot. */
typedef void (*sl_qd_affine_nt_fn)(const uint8_t *codes, const float *sc, const float *bi, const float *x,
                                   size_t ldx, const float *xsum, int nt, size_t groups, int gs, float *out);

/* MLX affine with 24-bit integer activations (sets with an integer dot that
 * takes unsigned codes: AVX-512 VNNI vpdpbusd).  sl_qd_prep_x24 quantizes
 * one token per group of gs: d_g = amax_g / SL_QD_X24_MAX, v = round(x / d_g),
 * |v| <= SL_QD_X24_MAX, split exactly as v = 65536 h + 256 m + l with h, m,
 * l int8 (m, l in [-128, 127]) and stored as three planes in the codes' byte
 * order: 8-bit, element order; 4-bit, per 128 elements the 64 even elements
 * (low nibbles) then the 64 odd ones (high nibbles), a last block of 64
 * likewise split 32 / 32.  Needs cols % 64 == 0, gs in {32, 64, 128} and at most
 * SL_QD_X24_GROUPS groups.  The dot takes the row's raw scales and biases
 * (sdt: F32 / F16 / BF16, any alignment) and returns
 * sum_g s_g d_g sum_{i in g} q_i v_i + b_g xsum_g.  The activation error is
 * at most amax_g / (2 * SL_QD_X24_MAX) = 6e-8 amax_g per element, the size
 * of f32 rounding, so results match the f32 path to f32 accuracy (int8
 * activations, as llama.cpp uses, would be 2^16 times coarser). */
#define SL_QD_X24_MAX 8290176
#define SL_QD_X24_GROUPS 1024
int sl_qd_x24_ok(int bits, int gs, size_t cols);
/* planes: 3 * cols bytes (h, then m, then l) */
void sl_qd_prep_x24(const float *x, size_t cols, int gs, int bits, int8_t *planes, float *d);
typedef float (*sl_qd_affine24_fn)(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                                   const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs);
/* The same dot for rows x tokens (prompt tiles, and generation: nt = 1,
 * several rows per pass sharing the planes' loads): out[t * ldo + r] = the
 * dot of row r (codes + r * ldc; scales, biases + r * lds bytes) and token
 * t, the token prepared at act + t * lda as xsum[G], d[G] (f32), then its
 * planes, for r < nr, t < nt; bit for bit the set's one-token dot (each
 * pair keeps the dot's f32 chain; codes are unpacked once per row for all
 * tokens of a tile).  NULL: the caller loops the dot. */
typedef void (*sl_qd_affine24_mm_fn)(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                     size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt,
                                     size_t cols, int gs, float *out, size_t ldo);
/* The same as a whole-matmul GEMM (amx: qamx_affine_x86.c, on matrix
 * tiles; avx512: qaffine_gl_x86.c, in group lanes): out[t * ldo + r] for
 * r < nr, t < nt (any sizes, nt >= 1), bit for bit that set's one-token
 * dot, the nt tokens in the
 * GEMM's own form, made once per matmul for every caller (so a call for a
 * few rows reads the tokens in place): blocks of 16 tokens (the last of
 * tn = the rest), block b at act + 16 b (8 G + 3 cols) bytes (nt tokens
 * take what nt tokens of the one-token form take): its tn tokens' planes
 * as the tiles read them (tn * 3 cols bytes, written by affine_x24_tiles;
 * with act 64-byte aligned no tile row crosses a cache line), then their
 * xsum[G], d[G] (f32, 8 G bytes each).  scratch: SL_QD_X24_GEMM_SCRATCH(cols, gs)
 * bytes, 64-byte aligned, private to the calling thread (a 16-row panel).
 * NULL: affine4/8_x24_mm or the dot. */
typedef void (*sl_qd_affine24_gemm_fn)(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                       size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols,
                                       int gs, float *out, size_t ldo, void *scratch);
#define SL_QD_X24_GEMM_SCRATCH(cols, gs) (16 * (cols) + 128 * ((cols) / (gs)) + 16 * 1024 + 6 * 1024)
/* Columns [c0, c0 + cc) of a token's planes (planes: sl_qd_prep_x24 of
 * those columns alone, which are that part of the row's planes when
 * c0 % 128 == 0 and cc % 128 == 0 or c0 + cc = cols) written to their
 * places as token i of a block of tn in the GEMM's form (tiles: the
 * block's start; cols: the row's length). */
typedef void (*sl_qd_x24_tiles_fn)(const int8_t *planes, size_t c0, size_t cc, size_t cols, int gs, int bits, int i,
                                   int tn, int8_t *tiles);
/* The portable definition of the same sums (tests; exact integer group sums). */
float sl_qd_affine_x24_ref(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                           const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs, int bits);

/* GEMM tile for prompts: out[t * ldo + r] = q8 dot of weight row r (w + r *
 * ldw bytes) and token t (y + t * ldy blocks), nb blocks, for r < nr, t < nt
 * (any sizes); bit for bit the set's one-token dot (every (row, token) pair
 * keeps the dot's f32 accumulation order across blocks: only the integer
 * block sums, exact in any order, are formed differently), with weights and
 * activations loaded once per register tile of rows x tokens.  NULL: the
 * caller loops the one-token dot. */
typedef void (*sl_qd_q8_mm_fn)(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt,
                               size_t nb, float *out, size_t ldo);

/* The same tile for Q4_K / Q6_K weights (y: q8_K blocks, ldy in blocks):
 * bit for bit the portable dot (these dots add their f32 block terms in one
 * fixed order in every set).  NULL: the caller loops the dot. */
typedef void (*sl_qd_q8k_mm_fn)(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt,
                                size_t nb, float *out, size_t ldo);

/* Generation rows for Q4_K / Q6_K (one token): out[r] = the portable dot of
 * row r and y for r < nr, the rows stored back to back (row r at
 * w + r * nb * block bytes).  NULL: loop the dot. */
typedef void (*sl_qd_q8k_rows_fn)(const uint8_t *w, size_t nr, const sl_q8kb *y, size_t nb, float *out);

/* Whole-matmul GEMM for prompts (sets with matrix tiles: AMX):
 * out[t * ldo + r] for r < nr, t < nt (any sizes, nt >= 1), bit for bit the
 * set's one-token dot.  y holds the tokens at a stride of ldy blocks and
 * must be readable (any contents) up to the next multiple of
 * SL_QD_GEMM_TOKENS tokens: tiles take 16 tokens at a time and the padding's
 * results are dropped.  scratch: SL_QD_GEMM_SCRATCH(nb) bytes, 64-byte
 * aligned, private to the calling thread.  NULL: the rows x tokens tiles
 * (sl_qd_q8_mm_fn) or the dot. */
#define SL_QD_GEMM_TOKENS 16
#define SL_QD_GEMM_SCRATCH(nb) ((nb) * 576 + 16 * 16 * 64 + 2 * 1024 + 64)
typedef void (*sl_qd_q8_gemm_fn)(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt,
                                 size_t nb, float *out, size_t ldo, void *scratch);
/* The same for Q4_K / Q6_K weights (y: q8_K blocks, nb 256-element blocks):
 * each output bit for bit the portable dot (qamx_x86.c); scratch:
 * SL_QD_K_GEMM_SCRATCH(nb) bytes, 64-byte aligned; tokens padded to
 * SL_QD_GEMM_TOKENS as for sl_qd_q8_gemm_fn. */
typedef void (*sl_qd_q8k_gemm_fn)(const uint8_t *w, size_t ldw, int nr, const sl_q8kb *y, size_t ldy, int nt,
                                  size_t nb, float *out, size_t ldo, void *scratch);
#define SL_QD_K_GEMM_SCRATCH(nb) ((nb) * (4096 + 1664) + 4096 + 2048 + 1024 + 64)

/* Generation rows for Q4_0 (one token; Q8_0 likewise with q8_0_prep,
 * q8_0_rows and the same buffer size): out[r] = the set's q4_0 dot of row r
 * (w + r * ldw) with y, bit for bit, for r < nr, reading a per-token form
 * of y made once per call by q4_0_prep into prep (SL_QD_Q40_PREP_BYTES(nb)
 * bytes, 64-byte aligned): the activation bytes of each block pair in one
 * vector and the pair's lane corrections precomputed, so the row loop
 * spends its shuffle port on the weights only.  NULL: loop the dot. */
#define SL_QD_Q40_PREP_BYTES(nb) ((nb) / 4 * 320)
typedef void (*sl_qd_q40_prep_fn)(const sl_q8b *y, size_t nb, void *prep);
typedef void (*sl_qd_q40_rows_fn)(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, const void *prep,
                                  size_t nb, float *out);

/* The same for a few tokens at once (several sequences decoding together):
 * out[t * ldo + r] = the dot of row r with token t (y + t * ldy) for t < nt
 * <= SL_QD_ROWS_MAX_TOKENS, each row's weights read once for all of them;
 * prep: nt per-token forms (q4_0_prep / q8_0_prep) SL_QD_Q40_PREP_BYTES(nb)
 * apart.  NULL: the dots (or the GEMM). */
#define SL_QD_ROWS_MAX_TOKENS 7
typedef void (*sl_qd_q40_rowsn_fn)(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, size_t ldy, int nt,
                                   const void *prep, size_t nb, float *out, size_t ldo);

/* Dense: one weight row of n f32 / f16 / bf16 values (bytes, any alignment) . x[n]. */
typedef float (*sl_qd_dense_fn)(const uint8_t *w, const float *x, size_t n);
/* Tile: out[t * nr + r] = w_r . x_t for r < nr <= 4, t < nt <= 4, with f32
 * rows w_r = w + r * ldw and tokens x_t = x + t * ldx, n values each. */
typedef void (*sl_qd_tile_fn)(const float *w, size_t ldw, int nr, const float *x, size_t ldx, int nt, size_t n,
                              float *out);
#define SL_QD_TILE 4
/* Dense GEMM for prompts: out[t * ldo + r] = the set's dense dot (dense_f32
 * / f16 / bf16 by dt) of row r (w + r * ldw bytes, any alignment) and token
 * t (x + t * ldx, or, when xp is not NULL, the nt tokens packed there by
 * the set's dense_pack), n values, for r < nr, t < nt (any sizes), bit for
 * bit; scratch: SL_QD_DENSE_MM_SCRATCH floats private to the calling
 * thread.  NULL: matmul.c widens rows and runs the tile. */
typedef void (*sl_qd_dense_mm_fn)(const uint8_t *w, size_t ldw, sl_dtype dt, int nr, const float *x, size_t ldx,
                                  const float *xp, int nt, size_t n, float *out, size_t ldo, float *scratch);
/* Tokens [t0, t1) of nt (n values each, x + t * ldx) written to their
 * places in the packed form dense_mm reads (nt * n floats at xp, each
 * token's places fixed by (n, nt, t): threads may pack disjoint ranges). */
typedef void (*sl_qd_dense_pack_fn)(const float *x, size_t ldx, size_t n, int nt, int t0, int t1, float *xp);
#define SL_QD_DENSE_MM_SCRATCH 12288
/* What the sets' dense GEMMs share (qdot.c): tokens per chunk for rows of
 * n values, so that a chunk's f32 values fit about xbytes (a multiple of
 * mult, at least mult, at most max); and the packed form (a dense_pack):
 * chunk by chunk of tc tokens (the last one the rest), per kc-column block
 * the chunk's tokens back to back (token i of a chunk of tn at
 * c0 * tn + i * cn from the chunk's start), so a tile reads one run. */
int sl_qd_dense_chunk(size_t n, size_t xbytes, int mult, int max);
void sl_qd_dense_pack_blocks(const float *x, size_t ldx, size_t n, int nt, int t0, int t1, float *xp, int tc,
                             size_t kc);
/* Dense generation rows: out[r] = the set's dense dot of row r (w + r * ldw)
 * and x for r < nr, bit for bit.  NULL: loop the dot. */
typedef void (*sl_qd_dense_rows_fn)(const uint8_t *w, size_t ldw, sl_dtype dt, size_t nr, const float *x, size_t n,
                                    float *out);

typedef struct sl_qd_kernels {
    const char *name;
    sl_qd_q8_fn q4_0, q8_0, q4_1;
    sl_qd_q8_mm_fn q4_0_mm, q8_0_mm, q4_1_mm;          /* NULL: loop the dot */
    sl_qd_q8k_fn q4_k, q6_k;
    sl_qd_q8k_mm_fn q4_k_mm, q6_k_mm;                  /* NULL: loop the dot */
    sl_qd_q8k_rows_fn q4_k_rows, q6_k_rows;            /* NULL: loop the dot */
    sl_qd_q8k_gemm_fn q4_k_gemm, q6_k_gemm;            /* NULL: the tiles (q4_k_mm) or the dot */
    sl_qd_affine_fn affine4, affine8;
    sl_qd_affine_nt_fn affine4_nt, affine8_nt;          /* NULL: loop affine4/8 */
    sl_qd_affine24_fn affine4_x24, affine8_x24;        /* NULL: f32 activations (affine4/8) */
    sl_qd_affine24_mm_fn affine4_x24_mm, affine8_x24_mm; /* NULL: loop affine4/8_x24 */
    sl_qd_affine24_gemm_fn affine4_x24_gemm, affine8_x24_gemm; /* NULL: affine4/8_x24_mm */
    sl_qd_x24_tiles_fn affine_x24_tiles;               /* the GEMMs' token form (set with them) */
    int affine_gemm_min;                               /* fewest tokens the affine GEMMs take (0: matmul.h's SL_MM_SHARED_MIN) */
    sl_qd_dense_fn dense_f32, dense_f16, dense_bf16;   /* NULL: widen + sl_dot_f32 */
    sl_qd_tile_fn tile;
    sl_qd_dense_mm_fn dense_mm;                        /* NULL: rows widened, then tile */
    sl_qd_dense_pack_fn dense_pack;                    /* with dense_mm: its shared token form */
    sl_qd_dense_rows_fn dense_rows;                    /* NULL: loop the dense dot */
    sl_qd_q40_prep_fn q4_0_prep;                       /* NULL (both): loop q4_0 */
    sl_qd_q40_rows_fn q4_0_rows;
    sl_qd_q40_prep_fn q8_0_prep;                       /* the same for Q8_0 (same prep size) */
    sl_qd_q40_rows_fn q8_0_rows;
    sl_qd_q8_gemm_fn q4_0_gemm, q8_0_gemm;             /* NULL: q4_0_mm / q8_0_mm */
    sl_qd_q40_rowsn_fn q4_0_rows_n, q8_0_rows_n;       /* NULL: the dots / GEMM for 2..15 tokens */
    void (*quantize_q8)(const float *x, size_t n, sl_q8b *out);   /* NULL: sl_qd_quantize_q8 (bit-identical) */
    void (*quantize_q8k)(const float *x, size_t n, sl_q8kb *out);   /* NULL: sl_qd_quantize_q8k (bit-identical) */
    void (*prep_x24)(const float *x, size_t cols, int gs, int bits, int8_t *planes, float *d);  /* NULL: sl_qd_prep_x24 (bit-identical) */
    void (*axpy_f16)(float *y, float a, const uint8_t *x, size_t n);  /* y += a * x, f16 x: NULL: widen (bit-identical) */
    /* Attention over f16 K / V rows (row i at k + i * stride bytes, d <= 256
     * values): out[i] = the set's dense_f16 of q and row i (bit-identical);
     * out += p[i] * row i for i < n in order (axpy_f16's bits).  NULL: per row. */
    void (*att_scores_f16)(const float *q, const uint8_t *k, size_t stride, int n, size_t d, float *out);
    void (*att_values_f16)(float *out, const float *p, const uint8_t *v, size_t stride, int n, size_t d);
    /* The same for g queries in slices of grp sharing the rows (the heads
     * of grp-sized GQA groups; grp divides g; slice s's values at
     * d * s past the row's start, i.e. KV heads adjacent in the row; query
     * j at q + j * ldq reads slice j / grp, its scores at out + j * ldo;
     * output j at out + j * ldout, its p at p + j * ldp): each row widened
     * once for a slice's queries, every query's chain as above.  NULL: one
     * query at a time. */
    void (*att_scores_f16_g)(const float *q, size_t ldq, int g, int grp, const uint8_t *k, size_t stride, int n,
                             size_t d, float *out, size_t ldo);
    void (*att_values_f16_g)(float *out, size_t ldout, const float *p, size_t ldp, int g, int grp, const uint8_t *v,
                             size_t stride, int n, size_t d);
    /* x[i] = exp(x[i] - mx) for i < n, and their sum (the set's own exp and
     * lane order).  NULL: expf and a sum in index order. */
    float (*exp_sum)(float *x, int n, float mx);
    /* x[i] *= s for i < n, and the largest x[i] as `if (x[i] > mx) mx = x[i]`
     * from -inf finds it (NaN never taken).  NULL: that loop. */
    float (*scale_max)(float *x, int n, float s);
} sl_qd_kernels;

extern const sl_qd_kernels sl_qd_portable;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SL_QD_X86 1
extern const sl_qd_kernels sl_qd_avx2;
extern const sl_qd_kernels sl_qd_avx512;   /* AVX-512 BW/VL + VNNI */
/* AVX-512 + AMX int8 tiles for Q4_0 / Q8_0 / Q4_K / Q6_K prompts (qamx_x86.c): NULL where
 * this build, CPU or OS cannot run tiles, or SILICA_NO_AMX=1; *why (may be
 * NULL) then says why, else what the set covers. */
const sl_qd_kernels *sl_qd_amx(const char **why);
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define SL_QD_NEON 1
extern const sl_qd_kernels sl_qd_neon;       /* Advanced SIMD (armv8-a baseline) */
#if defined(__ARM_FEATURE_DOTPROD) || !defined(__clang__)
#define SL_QD_NEON_DOT 1                     /* gcc: target attribute; clang: when compiled for it */
extern const sl_qd_kernels sl_qd_neon_dot;   /* + SDOT (armv8.2 dotprod: every Apple Silicon core) */
#endif
#endif

/* The set in use (SILICA_SIMD=scalar|avx2|avx512|amx|neon|neondot caps it;
 * SILICA_NO_AMX=1 leaves amx out). */
const sl_qd_kernels *sl_qd_active(void);
/* Tests only (single-threaded, between engine calls): make k the set in
 * use; NULL chooses again from the CPU and SILICA_SIMD at next use. */
void sl_qd_force(const sl_qd_kernels *k);
/* A set by name for tests ("portable", "avx2", "avx512", "amx", "neon",
 * "neondot"), NULL if this build or CPU lacks it. */
const sl_qd_kernels *sl_qd_by_name(const char *name);

/* Q4_K 6-bit scale/min j (0..7) of the 12 packed bytes. */
static inline void sl_qd_k4_scale(const uint8_t *q, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 15) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The MLX affine entries of a kernel set built on one multi-token core
 * CORE(bits, words, sc, bi, x, ldx, xsum, nt, groups, gs, out) that keeps each
 * token's accumulation order whatever nt is: PFX##_affine{4,8}_nt take 4
 * tokens per pass and the rest one by one; PFX##_affine{4,8} are one token. */
#define SL_QD_AFFINE_FROM_CORE(PFX, CORE)                                                                   \
    SL_QD_AFFINE_NT_(PFX##_affine4_nt, CORE, 4)                                                             \
    SL_QD_AFFINE_NT_(PFX##_affine8_nt, CORE, 8)                                                             \
    SL_QD_AFFINE_1_(PFX##_affine4, PFX##_affine4_nt)                                                        \
    SL_QD_AFFINE_1_(PFX##_affine8, PFX##_affine8_nt)
#define SL_QD_AFFINE_NT_(NAME, CORE, BITS)                                                                  \
    static void NAME(const uint8_t *words, const float *sc, const float *bi, const float *x, size_t ldx,    \
                     const float *xsum, int nt, size_t groups, int gs, float *out) {                        \
        int t = 0;                                                                                          \
        for (; t + 4 <= nt; t += 4)                                                                         \
            CORE(BITS, words, sc, bi, x + (size_t)t * ldx, ldx, xsum + (size_t)t * groups, 4, groups, gs, out + t); \
        for (; t < nt; t++)                                                                                 \
            CORE(BITS, words, sc, bi, x + (size_t)t * ldx, ldx, xsum + (size_t)t * groups, 1, groups, gs, out + t); \
    }
#define SL_QD_AFFINE_1_(NAME, NT)                                                                           \
    static float NAME(const uint8_t *words, const float *sc, const float *bi, const float *x, const float *xsum, \
                      size_t groups, int gs) {                                                              \
        float out;                                                                                          \
        NT(words, sc, bi, x, 0, xsum, 1, groups, gs, &out);                                                 \
        return out;                                                                                         \
    }

static inline float sl_qd_f16(const uint8_t *p) {
    return sl_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

#endif
