/*
 * test_kernels.c — the engine's building blocks in isolation: dense matmul
 * kernels (F32/F16/BF16 against a double-precision reference, every row
 * split, every batch size, tails of the unrolled dot product), the dispatch
 * table, and the quantized kernels: every SIMD set against the portable one, fused 8-bit
 * activation dots within their rounding bound of the f32 row decoder, and
 * every set this CPU runs (NEON ones under qemu) batch- and
 * thread-independent bit for bit for every weight format.  The thread pool,
 * RoPE, config parsing and the sampler are test_runtime.c.
 * Agreement with transformers end to end is tests/py/test_engine.py.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/matmul.h"
#include "kernels/qdot.h"
#include "silica/quant.h"
#include "silica/cpu.h"
#include "test_kernels_util.h"

/* ---- matmul ---- */

static void check_dtype(sl_dtype dt) {
    for (int cols = 1; cols <= 70; cols += 23) {
        int rows = 7, n = 5;
        float *wf = malloc((size_t)rows * cols * sizeof *wf), *x = malloc((size_t)n * cols * sizeof *x);
        uint8_t *wd = malloc((size_t)rows * cols * 4);
        float y[5 * 7], *scratch = malloc(sizeof(float) * sl_matmul_scratch_floats(&(sl_weight){.fmt = SL_WF_DENSE, .dtype = dt, .rows = rows, .cols = cols}, n));
        for (int i = 0; i < rows * cols; i++) wf[i] = rndf();
        for (int i = 0; i < n * cols; i++) x[i] = rndf();
        /* store in dt, then use the decoded values as the reference weights */
        assert_true(sl_convert(SL_F32, wf, dt, wd, (size_t)rows * cols));
        assert_true(sl_convert(dt, wd, SL_F32, wf, (size_t)rows * cols));
        sl_weight w = {.fmt = SL_WF_DENSE, .dtype = dt, .rows = rows, .cols = cols, .data = wd,
                       .row_bytes = (size_t)cols * sl_dtype_size(dt), .name = "w"};
        const sl_matmul_kernel *k = sl_matmul_lookup(SL_WF_DENSE, dt);
        assert_non_null(k);
        for (int split = 0; split <= rows; split++) {   /* any row split gives the same numbers */
            memset(y, 0, sizeof y);
            k->matmul(&w, x, n, (size_t)cols, y, rows, 0, split, scratch);
            k->matmul(&w, x, n, (size_t)cols, y, rows, split, rows, scratch);
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) {
                    double ref = 0;
                    for (int c = 0; c < cols; c++) ref += (double)wf[r * cols + c] * x[t * cols + c];
                    assert_true(fabs(y[t * rows + r] - ref) <= 1e-5 * (1 + fabs(ref)) * sqrt(cols));
                }
        }
        float row[70];
        k->row(&w, 3, row);
        assert_memory_equal(row, wf + 3 * cols, (size_t)cols * sizeof(float));
        free(wf); free(x); free(wd); free(scratch);
    }
}

static void test_matmul_dense(void **state) {
    (void)state;
    check_dtype(SL_F32);
    check_dtype(SL_F16);
    check_dtype(SL_BF16);
    assert_null(sl_matmul_lookup(SL_WF_DENSE, SL_Q4_0));
    assert_null(sl_matmul_lookup(SL_WF_GGUF, SL_Q4_0));
    assert_null(sl_matmul_lookup((sl_wformat)99, SL_F32));
}

static void fake_mm(const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy, int64_t r0,
                    int64_t r1, float *scratch) {
    (void)w; (void)x; (void)ldx; (void)scratch;
    for (int t = 0; t < n; t++)
        for (int64_t r = r0; r < r1; r++) y[(size_t)t * ldy + (size_t)r] = 42.0f;
}

static void test_matmul_register(void **state) {
    (void)state;
    sl_matmul_kernel k = {fake_mm, NULL, "fake", NULL, NULL, NULL};
    sl_matmul_register(SL_WF_GGUF, SL_Q8_0, &k);
    const sl_matmul_kernel *got = sl_matmul_lookup(SL_WF_GGUF, SL_Q8_0);
    assert_non_null(got);
    assert_string_equal(got->name, "fake");
}

static void test_dot_tails(void **state) {
    (void)state;
    float a[67], b[67];
    for (int i = 0; i < 67; i++) { a[i] = (float)(i + 1); b[i] = 1.0f; }
    for (size_t n = 0; n <= 67; n++) assert_true(sl_dot_f32(a, b, n) == (float)(n * (n + 1) / 2));
}

/* Dense dots and the f32 tile of every SIMD set against the portable sums,
 * every length 0..300 (all unroll and tail remainders), weight rows at odd
 * byte addresses (mlx files), f16 subnormals / Inf.  Both sides are f32
 * sums of the same products in different orders: each is within
 * (n/16 + 16) ulp-of-1 of the sum of |products| of the exact value
 * (pairwise/blocked summation), so twice that bounds their difference. */
static void test_dense_sets(void **state) {
    (void)state;
    enum { N = 300 };
    static float x[4 * N], wf[4 * N], out[16];
    static uint8_t raw[4 * N * 4 + 8];
    static float aligned[N];
    const char *names[] = {"avx2", "avx512", "amx", "neon", "neondot"};
    const sl_dtype dts[] = {SL_F32, SL_F16, SL_BF16};
    for (int i = 0; i < 4 * N; i++) x[i] = rndf() * (i % 13 == 0 ? 30.0f : 1.0f);
    const sl_qd_kernels *pk = sl_qd_by_name("portable");
    assert_null(pk->dense_f16);   /* the portable path widens rows (matmul.c) */
#if defined(__aarch64__)
    assert_non_null(sl_qd_by_name("neon"));   /* Advanced SIMD is baseline arm64 */
#endif
    for (size_t s = 0; s < sizeof names / sizeof names[0]; s++) {
        const sl_qd_kernels *k = sl_qd_by_name(names[s]);
        if (!k) continue;
        print_message("kernel set %s\n", k->name);
        for (int di = 0; di < 3; di++) {
            sl_dtype dt = dts[di];
            sl_qd_dense_fn f = dt == SL_F32 ? k->dense_f32 : dt == SL_F16 ? k->dense_f16 : k->dense_bf16;
            assert_non_null(f);
            for (size_t n = 0; n <= N; n += n < 80 ? 1 : 37) {
                for (size_t i = 0; i < n; i++) wf[i] = rndf() * (i % 7 == 0 ? 1e-6f : 1.0f);
                if (n > 3 && dt == SL_F16) wf[2] = 70000.0f;   /* overflows to Inf in f16 */
                uint8_t *wp = raw + 1 + (n & 1);              /* odd and even addresses */
                assert_true(sl_convert(SL_F32, wf, dt, aligned, n));
                assert_true(sl_convert(dt, aligned, SL_F32, wf, n));   /* reference weights = stored values */
                memcpy(wp, aligned, n * sl_dtype_size(dt));
                double sabs = 0;
                for (size_t i = 0; i < n; i++) sabs += fabs((double)wf[i] * x[i]);
                float ref = sl_dot_f32(wf, x, n), got = f(wp, x, n), tiled;
                k->tile(wf, n, 1, x, n, 1, n, &tiled);   /* fused dot == tile on the widened row, bit for bit */
                assert_true(memcmp(&got, &tiled, sizeof got) == 0 || (isnan(got) && isnan(tiled)));
                if (isinf(ref)) { assert_true(isinf(got) && (ref > 0) == (got > 0)); continue; }
                assert_true(fabs((double)got - ref) <= 2.0 * ((double)n / 16 + 16) * 0x1p-24 * sabs);
            }
        }
        /* the tile: every (nr, nt) shape, f32 rows with a padded stride */
        for (size_t n = 1; n <= N; n += n < 40 ? 1 : 53) {
            size_t ldw = n + 3, ldx = n + 5;
            for (size_t i = 0; i < 4 * ldw && i < 4 * N; i++) wf[i] = rndf();
            for (int nr = 1; nr <= 4; nr++)
                for (int nt = 1; nt <= 4; nt++) {
                    if ((size_t)(nr - 1) * ldw + n > 4 * N || (size_t)(nt - 1) * ldx + n > 4 * N) continue;
                    k->tile(wf, ldw, nr, x, ldx, nt, n, out);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < nr; r++) {
                            const float *wr = wf + (size_t)r * ldw, *xt = x + (size_t)t * ldx;
                            double sabs = 0;
                            for (size_t i = 0; i < n; i++) sabs += fabs((double)wr[i] * xt[i]);
                            float ref = sl_dot_f32(wr, xt, n), got = out[t * nr + r];
                            assert_true(fabs((double)got - ref) <= 2.0 * ((double)n / 16 + 16) * 0x1p-24 * sabs);
                            /* the same pair alone gives the same bits (thread-split invariance) */
                            float one;
                            k->tile(wr, ldw, 1, xt, ldx, 1, n, &one);
                            assert_true(memcmp(&one, &got, sizeof one) == 0);
                        }
                }
        }
    }
}

/* ---- quantized kernels (qdot.h, qmatmul.c) ---- */

/* Every SIMD set gives the portable results (integer sums exact; f32 block
 * accumulation order may differ: 1e-5 of the sum of |terms|). */
static void test_qdot_sets_match_portable(void **state) {
    (void)state;
    const char *names[] = {"avx2", "avx512", "amx", "neon", "neondot"};
    enum { COLS = 1024 };
    static uint8_t w[COLS / 32 * 210];
    static float x[COLS], xs[COLS / 32];
    static sl_q8b q8[COLS / 32];
    static sl_q8kb q8k[COLS / 256];
    for (int i = 0; i < COLS; i++) x[i] = rndf() * 3.0f;
    sl_qd_quantize_q8(x, COLS, q8);
    sl_qd_quantize_q8k(x, COLS, q8k);
    const sl_qd_kernels *p = sl_qd_by_name("portable");
    for (size_t s = 0; s < sizeof names / sizeof names[0]; s++) {
        const sl_qd_kernels *k = sl_qd_by_name(names[s]);
        if (!k) continue;
        if (k->quantize_q8) {   /* a set's activation quantizer is the portable one, bit for bit */
            static float xq[COLS];
            static sl_q8b a8[COLS / 32], b8[COLS / 32];
            for (int rep = 0; rep < 50; rep++) {
                for (int i = 0; i < COLS; i++) {   /* ties (k + 1/2 steps), zero blocks, signed zeros, large values */
                    int kind = (i / 32 + rep) % 5;
                    xq[i] = kind == 0 ? 0.0f : kind == 1 ? (float)((i * 7 + rep) % 255 - 127) * 0.5f
                          : kind == 2 ? -0.0f * rndf() : kind == 3 ? rndf() * 1e30f : rndf() * 3.0f;
                }
                memset(a8, 0x55, sizeof a8);
                memset(b8, 0xAA, sizeof b8);
                sl_qd_quantize_q8(xq, COLS, a8);
                k->quantize_q8(xq, COLS, b8);
                assert_memory_equal(a8, b8, sizeof a8);
                if (k->quantize_q8k) {   /* the 256-value blocks likewise (d, bsums, bytes) */
                    static sl_q8kb ak[COLS / 256], bk[COLS / 256];
                    memset(ak, 0x55, sizeof ak);
                    memset(bk, 0xAA, sizeof bk);
                    for (int i = 0; i < COLS; i++)   /* whole blocks of one kind too */
                        if (rep % 3 == 0) xq[i] = xq[i - i % 256 + (i * 31) % 256];
                    sl_qd_quantize_q8k(xq, COLS, ak);
                    k->quantize_q8k(xq, COLS, bk);
                    for (int b = 0; b < COLS / 256; b++) {
                        assert_true(memcmp(&ak[b].d, &bk[b].d, sizeof ak[b].d) == 0);
                        assert_memory_equal(ak[b].bsums, bk[b].bsums, sizeof ak[b].bsums);
                        assert_memory_equal(ak[b].qs, bk[b].qs, sizeof ak[b].qs);
                    }
                }
            }
        }
        for (int rep = 0; rep < 20; rep++) {
            float a, b;
            for (size_t nb = 1; nb <= COLS / 32; nb += nb < 9 ? 1 : 23) {   /* every unroll remainder */
                const sl_dtype t32[] = {SL_Q4_0, SL_Q4_1, SL_Q8_0};
                for (int ti = 0; ti < 3; ti++) {
                    sl_qd_q8_fn pf = ti == 0 ? p->q4_0 : ti == 1 ? p->q4_1 : p->q8_0;
                    sl_qd_q8_fn kf = ti == 0 ? k->q4_0 : ti == 1 ? k->q4_1 : k->q8_0;
                    rand_blocks(t32[ti], w, nb);
                    a = pf(w, q8, nb), b = kf(w, q8, nb);
                    assert_true(fabsf(a - b) <= 1e-5f * (1.0f + fabsf(a)) * 30);
                }
            }
            rand_blocks(SL_Q4_K, w, COLS / 256);
            assert_true(p->q4_k(w, q8k, COLS / 256) == k->q4_k(w, q8k, COLS / 256));   /* same order: bit-equal */
            rand_blocks(SL_Q6_K, w, COLS / 256);
            assert_true(p->q6_k(w, q8k, COLS / 256) == k->q6_k(w, q8k, COLS / 256));
            float sc[COLS / 32], bi[COLS / 32];
            for (int g = 0; g < COLS / 32; g++) {
                sc[g] = rndf() * 0.1f;
                bi[g] = rndf() * 0.1f;
                xs[g] = 0;
                for (int i = 0; i < 32; i++) xs[g] += x[g * 32 + i];
            }
            for (int i = 0; i < COLS; i++) w[i] = (uint8_t)(rndf() * 128.0f + 128.0f);
            for (int gs = 32; gs <= 128; gs *= 2) {
                float xsg[COLS / 32] = {0};
                for (int g = 0; g < COLS / gs; g++)
                    for (int i = 0; i < gs; i++) xsg[g] += x[g * gs + i];
                for (int bits = 4; bits <= 8; bits += 4) {
                    sl_qd_affine_fn pf = bits == 4 ? p->affine4 : p->affine8, kf = bits == 4 ? k->affine4 : k->affine8;
                    a = pf(w, sc, bi, x, xsg, (size_t)(COLS / gs), gs);
                    b = kf(w, sc, bi, x, xsg, (size_t)(COLS / gs), gs);
                    assert_true(fabsf(a - b) <= 1e-5f * (1.0f + fabsf(a)) * 30);
                }
            }
        }
    }
}

/* Fused GGUF kernels (8-bit activations) against the row decoder (f32):
 * the difference is bounded by the activation rounding, d/2 per element. */
/* The Q4_K / Q6_K rows x tokens tiles and generation rows kernels (where a
 * set has them) give the portable dot bit for bit for every (row, token)
 * pair: 1-6 rows and 1-9 or 67-70 tokens (every partial tile, two 64-token decode groups), 1-3 blocks, rows and
 * tokens at odd strides, 1-40 back-to-back rows for the rows kernels,
 * activations with extreme values (amax blocks, zero blocks). */
static void test_k_quant_tiles_match_dot(void **state) {
    (void)state;
    static const char *names[] = {"avx2", "avx512", "amx", "neon", "neondot"};
    enum { MAXR = 6, MAXT = 70, MAXB = 3, LDW = MAXB * 210 + 7, LDY = MAXB + 1 };   /* > 64 tokens: two decode groups */
    static uint8_t w[MAXR * LDW];
    static sl_q8kb y[MAXT * LDY];
    static float x[MAXB * 256], out[MAXT * MAXR + 5];
    const sl_qd_kernels *p = sl_qd_by_name("portable");
    int tested = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *k = sl_qd_by_name(names[si]);
        if (!k || !k->q4_k_mm) continue;
        assert_non_null(k->q6_k_mm);
        tested++;
        for (int rep = 0; rep < 12; rep++)
            for (int ti = 0; ti < 2; ti++) {
                sl_dtype dt = ti ? SL_Q6_K : SL_Q4_K;
                sl_qd_q8k_fn dot = ti ? p->q6_k : p->q4_k;
                sl_qd_q8k_mm_fn mm = ti ? k->q6_k_mm : k->q4_k_mm;
                size_t nb = (size_t)(1 + rep % MAXB);
                for (int r = 0; r < MAXR; r++) rand_blocks(dt, w + (size_t)r * LDW, nb);
                for (int t = 0; t < MAXT; t++) {
                    for (int i = 0; i < MAXB * 256; i++)
                        x[i] = (t + i / 256 + rep) % 7 == 0 ? 0.0f : (i % 97 == 0 ? 100.0f : rndf());
                    sl_qd_quantize_q8k(x, nb * 256, y + (size_t)t * LDY);
                }
                int nr = 1 + rep % MAXR, nt = rep >= 10 ? 64 + 3 * (rep - 9) : 1 + (rep * 5 + ti) % 9;
                for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) out[i] = -1234.5f;
                mm(w, LDW, nr, y, LDY, nt, nb, out, MAXR);
                for (int t = 0; t < MAXT; t++)
                    for (int r = 0; r < MAXR; r++) {
                        float o = out[t * MAXR + r];
                        if (r >= nr || t >= nt) assert_true(o == -1234.5f);   /* nothing written outside */
                        else assert_true(o == dot(w + (size_t)r * LDW, y + (size_t)t * LDY, nb));
                    }
                /* generation rows: 1-40 rows stored back to back (chunks of 16 blocks span rows) */
                sl_qd_q8k_rows_fn rows = ti ? k->q6_k_rows : k->q4_k_rows;
                if (!rows) continue;
                static uint8_t wc[40 * MAXB * 210];
                size_t bb = ti ? 210 : 144, nrr = (size_t)(1 + (rep * 7 + ti * 3) % 40);
                rand_blocks(dt, wc, nrr * nb);
                static float outr[41];
                for (size_t i = 0; i < 41; i++) outr[i] = -1234.5f;
                rows(wc, nrr, y, nb, outr);
                for (size_t r = 0; r < 41; r++)
                    assert_true(r < nrr ? outr[r] == dot(wc + r * nb * bb, y, nb) : outr[r] == -1234.5f);
            }
    }
#if defined(SL_QD_X86)
    if (sl_cpu()->avx512vnni) assert_true(tested >= 1);
#endif
}

static void test_qmatmul_fused_vs_rowdec(void **state) {
    (void)state;
    const sl_dtype types[] = {SL_Q4_0, SL_Q4_1, SL_Q8_0, SL_Q4_K, SL_Q6_K};
    enum { ROWS = 5, COLS = 512, N = 3 };
    static uint8_t wd[ROWS * COLS / 32 * 210];
    static float x[N * COLS], y[N * ROWS], row[COLS], scratch[N * COLS * 2 + 16384];
    for (int i = 0; i < N * COLS; i++) x[i] = rndf() * 2.0f;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const sl_dtype_info *di = sl_dtype_get(types[ti]);
        size_t rb = COLS / di->block_elems * di->block_bytes;
        rand_blocks(types[ti], wd, ROWS * COLS / di->block_elems);
        sl_weight w = {.fmt = SL_WF_GGUF, .dtype = types[ti], .rows = ROWS, .cols = COLS, .data = wd, .row_bytes = rb};
        const sl_matmul_kernel *k = sl_qmatmul_lookup(&w);
        assert_non_null(k);
        assert_true(sl_matmul_scratch_floats(&w, N) <= sizeof scratch / sizeof scratch[0]);
        k->matmul(&w, x, N, COLS, y, ROWS, 0, 2, scratch);
        k->matmul(&w, x, N, COLS, y, ROWS, 2, ROWS, scratch);
        for (int r = 0; r < ROWS; r++) {
            k->row(&w, r, row);
            for (int t = 0; t < N; t++) {
                const float *xt = x + t * COLS;
                double ref = 0, bound = 0;
                int be = di->block_elems == 256 ? 256 : 32;
                for (int b0 = 0; b0 < COLS; b0 += be) {
                    float amax = 0;
                    for (int c = b0; c < b0 + be; c++) amax = fmaxf(amax, fabsf(xt[c]));
                    for (int c = b0; c < b0 + be; c++) {
                        ref += (double)row[c] * xt[c];
                        bound += fabs(row[c]) * amax / 254.0;
                    }
                }
                assert_true(fabs(y[t * ROWS + r] - ref) <= bound * 1.01 + 1e-5);
            }
        }
    }
}

/* MLX affine: the fused dots (every batch size; bit widths without one
 * decode rows) agree with the row decoder's f32 weights in double precision:
 * within f32 rounding, plus on the 24-bit activation path (AVX-512 VNNI) the
 * activation rounding, |s_g q_i| * amax_g / (2 * SL_QD_X24_MAX) per element.
 * One-token and batched calls agree bit for bit (test below). */
static void test_affine_fused_vs_rowdec(void **state) {
    (void)state;
    enum { ROWS = 4, COLS = 256, G = 64 };
    static uint32_t codes[ROWS * COLS / 4];
    static float sc[ROWS * COLS / G], bi[ROWS * COLS / G], x[8 * COLS], y1[8 * ROWS], y2[8 * ROWS], scratch[65536];
    static float row[COLS];
    for (int bits = 2; bits <= 8; bits++) {
        if (bits == 7) continue;
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) codes[i] = rndu32();
        for (int i = 0; i < ROWS * COLS / G; i++) { sc[i] = rndf() * 0.05f; bi[i] = rndf() * 0.1f; }
        for (int i = 0; i < 8 * COLS; i++) x[i] = rndf();
        sl_weight w = {.fmt = SL_WF_MLX_AFFINE, .dtype = SL_U32, .rows = ROWS, .cols = COLS,
                       .data = (const uint8_t *)codes, .row_bytes = (size_t)COLS * bits / 8, .scales = sc,
                       .biases = bi, .scale_dtype = SL_F32, .bits = bits, .group_size = G, .qmode = SL_Q_AFFINE};
        const sl_matmul_kernel *k = sl_qmatmul_lookup(&w);
        assert_non_null(k);
        assert_true(sl_matmul_scratch_floats(&w, 8) <= sizeof scratch / sizeof scratch[0]);
        for (int t = 0; t < 8; t++) k->matmul(&w, x + t * COLS, 1, COLS, y1 + t * ROWS, ROWS, 0, ROWS, scratch);
        k->matmul(&w, x, 8, COLS, y2, ROWS, 0, ROWS, scratch);
        for (int r = 0; r < ROWS; r++) {
            k->row(&w, r, row);
            for (int t = 0; t < 8; t++) {
                double bound = 0, ref = 0, mag = 0;
                for (int g = 0; g < COLS / G; g++) {
                    float amax = 0, b = bi[r * COLS / G + g];
                    for (int c = g * G; c < (g + 1) * G; c++) amax = fmaxf(amax, fabsf(x[t * COLS + c]));
                    for (int c = g * G; c < (g + 1) * G; c++) {
                        double xc = x[t * COLS + c];
                        bound += fabs(row[c] - b) * amax / (2.0 * SL_QD_X24_MAX);
                        ref += (double)row[c] * xc;
                        mag += fabs(row[c] - b) * fabs(xc) + fabs(b * xc);
                    }
                }
                int i = t * ROWS + r;
                assert_memory_equal(&y1[i], &y2[i], sizeof(float));
                assert_true(fabs(y2[i] - ref) <= bound * 1.01 + 1e-5 * (1.0 + mag));
            }
        }
    }
}

/* Every kernel set this CPU runs (portable, avx2, avx512 / portable, neon,
 * neondot under qemu): for every weight format the engine multiplies, a
 * batch of N tokens gives bit for bit what one-token calls (generation)
 * give, and any split of the rows (threads) the same bits: the engine's
 * batch and thread independence, proved per set, not only for the set the
 * CI machine picks.  Results are compared as bytes (memcmp). */
static void check_independent(const sl_weight *w, const float *x, int n, float *scratch) {
    enum { MAXR = 6, MAXN = 7 };
    const sl_matmul_kernel *k = sl_matmul_for(w);
    assert_non_null(k);
    size_t cols = (size_t)w->cols;
    int rows = (int)w->rows;
    float yb[MAXN * MAXR], y1[MAXN * MAXR], ys[MAXN * MAXR];
    k->matmul(w, x, n, cols, yb, (size_t)rows, 0, rows, scratch);
    for (int t = 0; t < n; t++) k->matmul(w, x + (size_t)t * cols, 1, cols, y1 + t * rows, (size_t)rows, 0, rows, scratch);
    assert_same_floats(yb, y1, (size_t)(n * rows));
    for (int split = 1; split < rows; split += 2) {   /* two "threads", uneven rows; tokens 3 + rest */
        k->matmul(w, x, 3, cols, ys, (size_t)rows, 0, split, scratch);
        k->matmul(w, x, 3, cols, ys, (size_t)rows, split, rows, scratch);
        k->matmul(w, x + 3 * cols, n - 3, cols, ys + 3 * rows, (size_t)rows, 0, split, scratch);
        k->matmul(w, x + 3 * cols, n - 3, cols, ys + 3 * rows, (size_t)rows, split, rows, scratch);
        assert_same_floats(yb, ys, (size_t)(n * rows));
    }
}

static void test_sets_batch_thread_independent(void **state) {
    (void)state;
    static const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    enum { ROWS = 6, COLS = 512, N = 7 };
    static uint8_t wd[ROWS * COLS * 4];
    static uint16_t sc16[ROWS * COLS / 32], bi16[ROWS * COLS / 32];
    static float scf[ROWS * COLS / 32], bif[ROWS * COLS / 32], x[N * COLS], scratch[1 << 15];
    static uint8_t sc8[ROWS * COLS / 16];
    for (int i = 0; i < N * COLS; i++) x[i] = rndf();
    for (int i = 0; i < ROWS * COLS / 32; i++) {
        scf[i] = rndf() * 0.05f;
        bif[i] = rndf() * 0.1f;
        sc16[i] = sl_f32_to_f16(scf[i]);
        bi16[i] = sl_f32_to_f16(bif[i]);
    }
    for (int i = 0; i < ROWS * COLS / 16; i++) sc8[i] = (uint8_t)(120 + (rndu32() % 10));   /* e8m0 / e4m3 */
    int tested = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *set = sl_qd_by_name(names[si]);
        if (!set) continue;
        sl_qd_force(set);
        tested++;
        print_message("batch/thread independence: kernel set %s\n", set->name);
        const sl_dtype dense[] = {SL_F32, SL_F16, SL_BF16};
        for (size_t di = 0; di < 3; di++) {
            rand_dense(dense[di], wd, ROWS * COLS);
            for (int cols = COLS - 3; cols <= COLS; cols += 3) {   /* a tail, and whole vectors */
                sl_weight w = {.fmt = SL_WF_DENSE, .dtype = dense[di], .rows = ROWS, .cols = cols, .data = wd,
                               .row_bytes = (size_t)cols * sl_dtype_size(dense[di]), .name = "w"};
                check_independent(&w, x, N, scratch);
            }
        }
        for (int bits = 2; bits <= 8; bits++) {
            if (bits == 7) continue;
            for (size_t i = 0; i < ROWS * COLS * (size_t)bits / 8; i++) wd[i] = (uint8_t)rndu32();
            for (int gs = 32; gs <= 128; gs *= 2)
                for (int half = 0; half < 2; half++) {
                    sl_weight w = {.fmt = SL_WF_MLX_AFFINE, .dtype = SL_U32, .rows = ROWS, .cols = COLS, .data = wd,
                                   .row_bytes = (size_t)COLS * bits / 8, .scales = half ? (const void *)sc16 : scf,
                                   .biases = half ? (const void *)bi16 : bif, .scale_dtype = half ? SL_F16 : SL_F32,
                                   .bits = bits, .group_size = gs, .qmode = SL_Q_AFFINE, .name = "w"};
                    check_independent(&w, x, N, scratch);
                }
        }
        const sl_q_mode fp[] = {SL_Q_MXFP4, SL_Q_MXFP8, SL_Q_NVFP4};
        for (size_t fi = 0; fi < 3; fi++) {
            int bits = fp[fi] == SL_Q_MXFP8 ? 8 : 4, gs = fp[fi] == SL_Q_NVFP4 ? 16 : 32;
            for (size_t i = 0; i < ROWS * COLS * (size_t)bits / 8; i++) wd[i] = (uint8_t)rndu32();
            sl_weight w = {.fmt = SL_WF_MLX_FP, .dtype = SL_U32, .rows = ROWS, .cols = COLS, .data = wd,
                           .row_bytes = (size_t)COLS * bits / 8, .scales = sc8, .scale_dtype = SL_U8, .bits = bits,
                           .group_size = gs, .qmode = fp[fi], .name = "w"};
            check_independent(&w, x, N, scratch);
        }
        const sl_dtype gg[] = {SL_Q4_0, SL_Q4_1, SL_Q8_0, SL_Q4_K, SL_Q6_K};
        for (size_t gi = 0; gi < sizeof gg / sizeof gg[0]; gi++) {
            const sl_dtype_info *di = sl_dtype_get(gg[gi]);
            rand_blocks(gg[gi], wd, ROWS * COLS / di->block_elems);
            sl_weight w = {.fmt = SL_WF_GGUF, .dtype = gg[gi], .rows = ROWS, .cols = COLS, .data = wd,
                           .row_bytes = COLS / di->block_elems * di->block_bytes, .name = "w"};
            check_independent(&w, x, N, scratch);
        }
    }
    sl_qd_force(NULL);
    assert_true(tested >= 2);   /* portable and at least this CPU's SIMD set */
}

/* Dense rows wide enough that sl_matmul_tiled takes the tokens in several
 * L2-sized chunks (cols 16389: the tile path takes 4 tokens a chunk, the
 * AVX-512 GEMM 12, so 32 tokens are 8 x 4 or 12 + 12 + 8) give each token the
 * one-token call's bits, in every set, for f32 / f16 / bf16 rows (a tail of
 * 5 values; 11 rows: a whole 6-row panel and 5 more). */
static void test_dense_token_chunks(void **state) {
    (void)state;
    static const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    enum { ROWS = 11, COLS = 16389, N = 32 };
    uint8_t *wd = malloc((size_t)ROWS * COLS * 4);
    float *x = malloc(sizeof(float) * N * COLS), yb[N * ROWS], y1[N * ROWS];
    assert_non_null(wd);
    assert_non_null(x);
    for (int i = 0; i < N * COLS; i++) x[i] = rndf();
    int tested = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *set = sl_qd_by_name(names[si]);
        if (!set) continue;
        sl_qd_force(set);
        tested++;
        const sl_dtype dense[] = {SL_F32, SL_F16, SL_BF16};
        for (size_t di = 0; di < 3; di++) {
            rand_dense(dense[di], wd, ROWS * COLS);
            sl_weight w = {.fmt = SL_WF_DENSE, .dtype = dense[di], .rows = ROWS, .cols = COLS, .data = wd,
                           .row_bytes = (size_t)COLS * sl_dtype_size(dense[di]), .name = "w"};
            const sl_matmul_kernel *k = sl_matmul_for(&w);
            float *scratch = malloc(sizeof(float) * sl_matmul_scratch_floats(&w, N));
            assert_non_null(scratch);
            k->matmul(&w, x, N, COLS, yb, ROWS, 0, ROWS, scratch);
            for (int t = 0; t < N; t++) k->matmul(&w, x + (size_t)t * COLS, 1, COLS, y1 + t * ROWS, ROWS, 0, ROWS, scratch);
            assert_same_floats(yb, y1, (size_t)N * ROWS);
            free(scratch);
        }
    }
    sl_qd_force(NULL);
    free(wd), free(x);
    assert_true(tested >= 2);
}

/* Dense batches through each set's GEMM (where it has one: AVX-512's
 * K-blocked 6-row panels, NEON's 4-row ones) and one-token calls through
 * its rows kernel give the set's one-token dot bit for bit: f32 / f16 /
 * bf16 rows at an odd address, 1..49 tokens (every register tile
 * remainder), row counts around the 6- and 4-row panels and 4-row
 * generation groups split into two uneven ranges (two "threads"), columns
 * around the 16- and 8-lane steps (tails of 1, 6 and 7) and the 512-column
 * blocks, tokens and outputs at strides wider than a row; the outputs'
 * padding and every row outside the range stay untouched. */
static void test_dense_gemm_matches_dot(void **state) {
    (void)state;
    static const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    enum { MAXR = 19, MAXC = 1041, MAXN = 49, LDX = MAXC + 3, LDY = MAXR + 2 };
    static const int colss[] = {1, 7, 17, 512, 518, 529, 1041}, rowss[] = {1, 3, 8, 13, 19};
    static uint8_t raw[MAXR * MAXC * 4 + 1];
    static float x[MAXN * LDX], yb[MAXN * LDY], y1[MAXN * LDY];
    for (int i = 0; i < MAXN * LDX; i++) x[i] = rndf() * (i % 37 == 0 ? 16.0f : 1.0f);
    const sl_dtype dts[] = {SL_F32, SL_F16, SL_BF16};
    int tested = 0, gemms = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *set = sl_qd_by_name(names[si]);
        if (!set) continue;
        sl_qd_force(set);
        tested++;
        gemms += set->dense_mm != NULL;
        for (int di = 0; di < 3; di++)
            for (int ci = 0; ci < 7; ci++)
                for (int ri = 0; ri < 5; ri++) {
                    int cols = colss[ci], rows = rowss[ri];
                    uint8_t *wd = raw + 1;   /* odd address */
                    rand_dense(dts[di], wd, (size_t)rows * cols);
                    sl_weight w = {.fmt = SL_WF_DENSE, .dtype = dts[di], .rows = rows, .cols = cols, .data = wd,
                                   .row_bytes = (size_t)cols * sl_dtype_size(dts[di]), .name = "w"};
                    const sl_matmul_kernel *k = sl_matmul_for(&w);
                    float *scratch = malloc(sizeof(float) * sl_matmul_scratch_floats(&w, MAXN));
                    assert_non_null(scratch);
                    sl_qd_dense_fn dot = di == 0 ? set->dense_f32 : di == 1 ? set->dense_f16 : set->dense_bf16;
                    for (int n = 1; n <= MAXN; n += n < 12 ? 1 : 6) {
                        int lo = rows / 3, hi = rows - rows / 4;   /* rows [lo, hi) of the outputs */
                        for (int i = 0; i < MAXN * LDY; i++) yb[i] = y1[i] = -7.0f;
                        k->matmul(&w, x, n, LDX, yb, LDY, lo, lo + (hi - lo) / 2, scratch);
                        k->matmul(&w, x, n, LDX, yb, LDY, lo + (hi - lo) / 2, hi, scratch);
                        for (int t = 0; t < n; t++) {
                            k->matmul(&w, x + (size_t)t * LDX, 1, LDX, y1 + (size_t)t * LDY, LDY, lo, hi, scratch);
                            for (int r = lo; dot && r < hi; r++) {
                                float d = dot(wd + (size_t)r * w.row_bytes, x + (size_t)t * LDX, (size_t)cols);
                                assert_same_floats(&d, &y1[(size_t)t * LDY + (size_t)r], 1);
                            }
                        }
                        assert_same_floats(yb, y1, (size_t)MAXN * LDY);   /* the untouched -7s included */
                        for (int t = 0; t < MAXN; t++)
                            for (int r = 0; r < LDY; r++)
                                if (t >= n || r < lo || r >= hi) assert_true(yb[t * LDY + r] == -7.0f);
                    }
                    free(scratch);
                }
    }
    sl_qd_force(NULL);
    assert_true(tested >= 2);
#if defined(SL_QD_X86)
    if (sl_qd_by_name("avx512")) assert_true(gemms >= 1);
#endif
#if defined(SL_QD_NEON)
    assert_true(gemms >= 1);   /* neon (and neondot where the CPU or qemu has it) */
#endif
}

/* The prompt path (activations prepared once per call into a buffer every
 * thread reads, rows through the set's GEMM tiles) against one-token calls,
 * bit for bit, for every set this CPU (or qemu) runs: GGUF Q4_0 / Q4_1 /
 * Q8_0 / Q4_K / Q6_K at block counts covering every tile and unroll
 * remainder, MLX affine 4/8-bit at every group size with f32, f16 and bf16
 * scales (halves at odd addresses; batches of 2-7 tokens too, which the
 * avx512 set's GEMM takes), dense f32 / f16 / bf16 rows (sets with
 * a dense GEMM: tokens packed once, in two L2 chunks at 2304 columns), with the tokens
 * prepared in two ranges and the rows split unevenly (two "threads"), and
 * more tokens than one activation chunk; then prepared one token at a time
 * and claimed 3 rows at a time (other "threads"), the same bits. */
static void check_act_path(const sl_weight *w, const float *x, int n, float *scratch, uint8_t *act) {
    enum { MAXR = 11, MAXN = 70 };
    static float yb[MAXN * MAXR], y1[MAXN * MAXR];
    const sl_matmul_kernel *k = sl_matmul_for(w);
    assert_non_null(k);
    size_t cols = (size_t)w->cols, rows = (size_t)w->rows;
    assert_non_null(k->act_prep);
    assert_true(k->act_bytes(w, n) > 0);
    assert_true(sl_matmul_scratch_floats(w, 1) <= (size_t)1 << 19);
    k->act_prep(w, x, cols, n, 0, n / 3, act);
    k->act_prep(w, x, cols, n, n / 3, n, act);
    int split = (int)rows / 2 + 1;
    k->matmul_act(w, x, cols, act, n, yb, rows, 0, split, scratch);
    k->matmul_act(w, x, cols, act, n, yb, rows, split, (int64_t)rows, scratch);
    for (int t = 0; t < n; t++) k->matmul(w, x + (size_t)t * cols, 1, cols, y1 + (size_t)t * rows, rows, 0, (int64_t)rows, scratch);
    assert_same_floats(yb, y1, (size_t)n * rows);
    /* other claims (3 rows each) of tokens prepared one by one, last first: the same bits */
    for (int t = n - 1; t >= 0; t--) k->act_prep(w, x, cols, n, t, t + 1, act);
    for (int64_t r0 = 0; r0 < (int64_t)rows; r0 += 3)
        k->matmul_act(w, x, cols, act, n, y1, rows, r0, r0 + 3 < (int64_t)rows ? r0 + 3 : (int64_t)rows, scratch);
    assert_same_floats(yb, y1, (size_t)n * rows);
}

static void test_prompt_path_matches_one_token(void **state) {
    (void)state;
    static const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    enum { ROWS = 11, N = 70, MAXC = 2304 };
    static uint8_t wd[ROWS * MAXC * 2 + 1], act[N * (MAXC * 5 + 64)];
    static float x[N * MAXC], scratch[1 << 19], sc[ROWS * MAXC / 32], bi[ROWS * MAXC / 32];
    for (int i = 0; i < N * MAXC; i++) x[i] = rndf() * (i % 41 == 0 ? 8.0f : 1.0f);
    static uint8_t sc16[ROWS * MAXC / 32 * 2 + 2], bi16[ROWS * MAXC / 32 * 2 + 2];
    static uint8_t sb16[ROWS * MAXC / 32 * 2 + 2], bb16[ROWS * MAXC / 32 * 2 + 2];
    for (int i = 0; i < ROWS * MAXC / 32; i++) {
        sc[i] = rndf() * 0.05f, bi[i] = rndf() * 0.1f;
        uint16_t h[4] = {sl_f32_to_f16(sc[i]), sl_f32_to_f16(bi[i]), sl_f32_to_bf16(sc[i]), sl_f32_to_bf16(bi[i])};
        memcpy(sc16 + 1 + 2 * i, &h[0], 2);
        memcpy(bi16 + 1 + 2 * i, &h[1], 2);
        memcpy(sb16 + 1 + 2 * i, &h[2], 2);
        memcpy(bb16 + 1 + 2 * i, &h[3], 2);
    }
    int tested = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *set = sl_qd_by_name(names[si]);
        if (!set) continue;
        sl_qd_force(set);
        tested++;
        const sl_dtype gg[] = {SL_Q4_0, SL_Q4_1, SL_Q8_0, SL_Q4_K, SL_Q6_K};
        const int nbs[] = {1, 2, 3, 4, 5, 6, 7, 9, 13, 72};   /* blocks of 32: every remainder mod 4 */
        for (size_t gi = 0; gi < sizeof gg / sizeof gg[0]; gi++) {
            const sl_dtype_info *di = sl_dtype_get(gg[gi]);
            for (size_t ni = 0; ni < sizeof nbs / sizeof nbs[0]; ni++) {
                int cols = di->block_elems == 256 ? 256 * (1 + (int)ni % 3) : 32 * nbs[ni];
                rand_blocks(gg[gi], wd, (size_t)(ROWS * cols / di->block_elems));
                sl_weight w = {.fmt = SL_WF_GGUF, .dtype = gg[gi], .rows = ROWS, .cols = cols, .data = wd,
                               .row_bytes = (size_t)cols / di->block_elems * di->block_bytes, .name = "w"};
                check_act_path(&w, x, ni == 9 ? N : 37, scratch, act);
            }
        }
        const int colss[] = {64, 192, 320, 2048};
        const sl_dtype sdts[] = {SL_F32, SL_F16, SL_BF16};
        for (int bits = 4; bits <= 8; bits += 4)
            for (int gs = 32; gs <= 128; gs *= 2)
                for (int ci = 0; ci < 4; ci++) {
                    if (colss[ci] % gs) continue;
                    for (size_t i = 0; i < (size_t)(ROWS * colss[ci] * bits / 8); i++) wd[i] = (uint8_t)rndu32();
                    for (int di = 0; di < 3; di++) {   /* halves read at an odd address */
                        const void *ps = di == 0 ? (const void *)sc : di == 1 ? (const void *)(sc16 + 1) : (const void *)(sb16 + 1);
                        const void *pb = di == 0 ? (const void *)bi : di == 1 ? (const void *)(bi16 + 1) : (const void *)(bb16 + 1);
                        sl_weight w = {.fmt = SL_WF_MLX_AFFINE, .dtype = SL_U32, .rows = ROWS, .cols = colss[ci],
                                       .data = wd, .row_bytes = (size_t)colss[ci] * bits / 8, .scales = ps, .biases = pb,
                                       .scale_dtype = sdts[di], .bits = bits, .group_size = gs, .qmode = SL_Q_AFFINE,
                                       .name = "w"};
                        check_act_path(&w, x, ci == 3 ? 21 - 4 * di : 37 - 9 * di, scratch, act);
                        check_act_path(&w, x, 2 + (ci + 2 * di + gs / 32) % 6, scratch, act);   /* 2-7 tokens */
                    }
                }
        /* dense rows at an odd address, through a set's GEMM on packed tokens (sets with one) */
        const sl_dtype dts[] = {SL_F32, SL_F16, SL_BF16};
        const int dcols[] = {17, 529, 1041, 2304};
        for (int di = 0; set->dense_mm && di < 3; di++)
            for (int ci = 0; ci < 4; ci++) {
                if (dts[di] == SL_F32 && dcols[ci] > 1041) continue;   /* wd's size */
                rand_dense(dts[di], wd + 1, (size_t)ROWS * dcols[ci]);
                sl_weight w = {.fmt = SL_WF_DENSE, .dtype = dts[di], .rows = ROWS, .cols = dcols[ci], .data = wd + 1,
                               .row_bytes = (size_t)dcols[ci] * sl_dtype_size(dts[di]), .name = "w"};
                check_act_path(&w, x, ci == 3 ? N : 37 - 7 * ci, scratch, act);   /* 70 tokens: two chunks */
            }
    }
    sl_qd_force(NULL);
    assert_true(tested >= 2);
}

/* The Q4_0 / Q8_0 generation rows kernels (where a set has them) give their
 * set's one-token dot bit for bit, for every block count remainder mod 4
 * and whole groups of 16 blocks. */
static void test_rows_kernels_match_dot(void **state) {
    (void)state;
    static const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    enum { ROWS = 7, MAXB = 72 };
    static uint8_t wd[ROWS * MAXB * 34];
    static float x[MAXB * 32], out[ROWS];
    static sl_q8b q8[MAXB];
    static _Alignas(64) uint8_t prep[SL_QD_Q40_PREP_BYTES(MAXB)];
    int tested = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *k = sl_qd_by_name(names[si]);
        for (int q8w = 0; k && q8w < 2; q8w++) {
            sl_qd_q40_prep_fn pf = q8w ? k->q8_0_prep : k->q4_0_prep;
            sl_qd_q40_rows_fn rf = q8w ? k->q8_0_rows : k->q4_0_rows;
            sl_qd_q8_fn dot = q8w ? k->q8_0 : k->q4_0;
            size_t bb = q8w ? 34 : 18;
            if (!rf) continue;
            tested++;
            /* 1..14, then whole groups of 16 blocks (the amx rows' shared path) and between */
            static const size_t more[] = {16, 32, 43, 64, 72};
            for (int rep = 0; rep < 5; rep++)
                for (size_t ni = 0; ni < 14 + sizeof more / sizeof more[0]; ni++) {
                    size_t nb = ni < 14 ? ni + 1 : more[ni - 14];
                    for (size_t i = 0; i < nb * 32; i++) x[i] = rndf() * (i % 37 == 0 ? 9.0f : 1.0f);
                    sl_qd_quantize_q8(x, nb * 32, q8);
                    rand_blocks(q8w ? SL_Q8_0 : SL_Q4_0, wd, ROWS * nb);
                    pf(q8, nb, prep);
                    rf(wd, nb * bb, ROWS, q8, prep, nb, out);
                    for (int r = 0; r < ROWS; r++) assert_true(out[r] == dot(wd + (size_t)r * nb * bb, q8, nb));
                }
        }
    }
    if (sl_qd_by_name("avx512")) assert_true(tested >= 2);
}

/* The few-token rows kernels (where a set has them): every (row, token) is
 * the set's one-token dot bit for bit, for 1..SL_QD_ROWS_MAX_TOKENS tokens
 * and block counts on and off whole groups of 16. */
static void test_rows_n_kernels_match_dot(void **state) {
    (void)state;
    static const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    enum { ROWS = 5, MAXB = 72, NT = SL_QD_ROWS_MAX_TOKENS };
    static uint8_t wd[ROWS * MAXB * 34];
    static float x[MAXB * 32], out[NT * ROWS];
    static sl_q8b q8[NT * MAXB];
    static _Alignas(64) uint8_t prep[NT * SL_QD_Q40_PREP_BYTES(MAXB)];
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *k = sl_qd_by_name(names[si]);
        for (int q8w = 0; k && q8w < 2; q8w++) {
            sl_qd_q40_prep_fn pf = q8w ? k->q8_0_prep : k->q4_0_prep;
            sl_qd_q40_rowsn_fn rn = q8w ? k->q8_0_rows_n : k->q4_0_rows_n;
            sl_qd_q8_fn dot = q8w ? k->q8_0 : k->q4_0;
            size_t bb = q8w ? 34 : 18;
            if (!rn) continue;
            static const size_t nbs[] = {4, 9, 16, 23, 32, 48, 72};
            for (size_t ni = 0; ni < sizeof nbs / sizeof nbs[0]; ni++)
                for (int nt = 1; nt <= NT; nt++) {
                    size_t nb = nbs[ni];
                    for (int t = 0; t < nt; t++) {
                        for (size_t i = 0; i < nb * 32; i++) x[i] = rndf() * (i % 41 == 0 ? 7.0f : 1.0f);
                        sl_qd_quantize_q8(x, nb * 32, q8 + (size_t)t * nb);
                        pf(q8 + (size_t)t * nb, nb, prep + (size_t)t * SL_QD_Q40_PREP_BYTES(nb));
                    }
                    rand_blocks(q8w ? SL_Q8_0 : SL_Q4_0, wd, ROWS * nb);
                    rn(wd, nb * bb, ROWS, q8, nb, nt, prep, nb, out, ROWS);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < ROWS; r++)
                            assert_true(out[t * ROWS + r] == dot(wd + (size_t)r * nb * bb, q8 + (size_t)t * nb, nb));
                }
        }
    }
}

/* Attention kernels over f16 rows, in every set that has them: the run
 * forms are the per-row dot and axpy bit for bit (head sizes on and off 8 /
 * 16 lanes), scale_max is the scalar loop's products and maximum, and
 * exp_sum is within 2 ulp of expf per element with a sum
 * within 1e-6 of the exact one. */
/* The grouped attention kernels (the heads of a GQA group over the same
 * rows): each query's scores and each output bit for bit the single-head
 * kernels', for 1-20 heads (column blocks, more heads than accumulators),
 * head sizes with tails, unaligned rows, through the sets and the wrappers;
 * and several groups at once (m slices of a row, one KV head each, read as
 * one span in blocks of rows: 1-3 slices, 29 rows and 131, past two blocks
 * and the prefetch distance with a tail), each query against its own slice. */
static void test_attention_group_kernels(void **state) {
    (void)state;
    static const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    enum { MAXN = 131, MAXD = 256, MAXG = 20, MAXM = 3 };
    static uint8_t rows[MAXN * (MAXM * MAXD * 2 + 6)];
    static float q[MAXM * MAXG * MAXD], sa[MAXM * MAXG * MAXN], sb[MAXM * MAXG * MAXN], oa[MAXM * MAXG * MAXD],
        ob[MAXM * MAXG * MAXD];
    int tested = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *k = sl_qd_by_name(names[si]);
        if (!k) continue;
        sl_qd_force(k);
        static const size_t ds[] = {8, 40, 64, 72, 128, 256};
        static const int gs[] = {1, 2, 4, 5, 8, 20}, ns[] = {29, MAXN};
        for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++)
            for (size_t gi = 0; gi < sizeof gs / sizeof gs[0]; gi++)
                for (int m = 1; m <= MAXM; m++)
                    for (int ni = 0; ni < 2; ni++) {
                        size_t d = ds[di], stride = (size_t)m * d * 2 + 6;
                        int g = gs[gi], G = m * g, N = ns[ni];
                        if (m > 1 && g == 20) continue;   /* 60 heads: as 20 of one slice */
                        for (size_t i = 0; i < (size_t)N * stride; i += 2) put_f16(rows + i, rndf());
                        for (size_t i = 0; i < (size_t)G * d; i++) q[i] = rndf(), oa[i] = ob[i] = rndf();
                        const uint16_t *kr = (const uint16_t *)(const void *)rows;
                        sl_att_scores_f16_g(q, d, G, g, kr, stride, N, d, sa, (size_t)N);
                        for (int j = 0; j < G; j++)
                            sl_att_scores_f16(q + (size_t)j * d, kr + (size_t)(j / g) * d, stride, N, d, sb + (size_t)j * N);
                        assert_memory_equal(sa, sb, (size_t)G * (size_t)N * sizeof(float));
                        sl_att_values_f16_g(oa, d, sa, (size_t)N, G, g, kr, stride, N, d);
                        for (int j = 0; j < G; j++)
                            sl_att_values_f16(ob + (size_t)j * d, sa + (size_t)j * N, kr + (size_t)(j / g) * d, stride, N, d);
                        assert_memory_equal(oa, ob, (size_t)G * d * sizeof(float));
                    }
        tested++;
    }
    sl_qd_force(NULL);
    assert_true(tested >= 2);
}

static void test_attention_kernels(void **state) {
    (void)state;
    static const char *names[] = {"avx2", "avx512", "amx", "neon", "neondot"};
    enum { N = 37, MAXD = 256 };
    static uint8_t rows[N * (MAXD * 2 + 6)];
    static float q[MAXD], a[N], b[N], oa[MAXD], ob[MAXD], xa[1000], xb[1000];
    int tested = 0;
    for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {
        const sl_qd_kernels *k = sl_qd_by_name(names[si]);
        if (!k) continue;
        static const size_t ds[] = {8, 40, 64, 72, 100, 128, 256};
        for (size_t di = 0; di < sizeof ds / sizeof ds[0] && k->att_scores_f16; di++) {
            size_t d = ds[di], stride = d * 2 + 6;   /* rows not 32-byte aligned */
            for (size_t i = 0; i < N * stride; i += 2) put_f16(rows + i, rndf());
            for (size_t i = 0; i < d; i++) q[i] = rndf(), oa[i] = ob[i] = rndf();
            k->att_scores_f16(q, rows, stride, N, d, a);
            for (int i = 0; i < N; i++) {
                b[i] = k->dense_f16(rows + (size_t)i * stride, q, d);
                assert_true(a[i] == b[i]);
            }
            tested++;
            if (!k->att_values_f16) continue;
            k->att_values_f16(oa, a, rows, stride, N, d);
            for (int i = 0; i < N; i++) k->axpy_f16(ob, a[i], rows + (size_t)i * stride, d);
            assert_memory_equal(oa, ob, d * sizeof(float));
        }
        if (k->scale_max) /* scale_max: the products and the loop's maximum, bit for bit (NaN, -inf, zeros, tails) */
            for (int n = 0; n <= 1000; n += n < 40 ? 1 : 97) {
                float mb = -INFINITY, sc = 0.125f + rndf() * rndf();
                for (int i = 0; i < n; i++) {
                    xa[i] = xb[i] = rndf() * (i % 7 == 0 ? 120.0f : 8.0f);
                    if (i % 11 == 3) xa[i] = xb[i] = i % 2 ? NAN : -INFINITY;
                    if (n % 5 == 1) xa[i] = xb[i] = i % 3 ? -fabsf(xa[i]) : (i % 2 ? -0.0f : 0.0f);   /* max a zero */
                    if (n % 5 == 2) xa[i] = xb[i] = -1.0f - fabsf(xa[i]);   /* all below the tail's masked lanes */
                }
                for (int i = 0; i < n; i++) {
                    xb[i] *= sc;
                    if (xb[i] > mb) mb = xb[i];
                }
                float ma = k->scale_max(xa, n, sc);
                assert_memory_equal(xa, xb, (size_t)n * sizeof(float));
                assert_true(ma == mb || (ma != ma && mb != mb));
            }
        if (!k->exp_sum) continue;
        for (int n = 1; n <= 1000; n += n < 40 ? 1 : 97) {
            float mx = -1e30f;
            for (int i = 0; i < n; i++) {
                xa[i] = xb[i] = rndf() * (i % 7 == 0 ? 120.0f : 8.0f);
                if (xa[i] > mx) mx = xa[i];
            }
            double exact = 0;
            for (int i = 0; i < n; i++) exact += exp((double)xb[i] - (double)mx);
            float sa = k->exp_sum(xa, n, mx);
            for (int i = 0; i < n; i++) {
                float want = expf(xb[i] - mx);
                assert_true(fabsf(xa[i] - want) <= 2.5e-7f * want + 1.2e-38f);   /* 0 where expf is subnormal */
            }
            assert_true(fabs((double)sa - exact) <= 1e-6 * exact);
        }
        /* the underflow edge: expf is normal down to ln(FLT_MIN) = -87.3365, subnormal below */
        static const float edge[] = {0.0f, -0.0f, -87.2f, -87.31f, -87.3365f, -87.34f, -87.5f, -87.59f, -87.61f,
                                     -88.0f, -103.0f, -200.0f};
        int ne = (int)(sizeof edge / sizeof edge[0]);
        memcpy(xa, edge, sizeof edge);
        k->exp_sum(xa, ne, 0.0f);
        for (int i = 0; i < ne; i++) assert_true(fabsf(xa[i] - expf(edge[i])) <= 2.5e-7f * expf(edge[i]) + 1.2e-38f);
        tested++;
    }
    if (sl_qd_by_name("avx512")) assert_true(tested >= 2);
}

/* The 24-bit activation affine dots (where this CPU has them) against the
 * portable definition, every supported (bits, group size); and the split
 * v = 65536 h + 256 m + l of sl_qd_prep_x24 is exact and within range. */
static void test_affine_x24(void **state) {
    (void)state;
    enum { MAXC = 1024 };
    static uint8_t codes[MAXC];
    static int8_t planes[3 * MAXC];
    static float x[MAXC], d[MAXC / 32], xs[MAXC / 32];
    static uint8_t sraw[MAXC / 32 * 4 + 8], braw[MAXC / 32 * 4 + 8];   /* unaligned scales / biases */
    const char *names[] = {"portable", "avx2", "avx512", "amx", "neon", "neondot"};
    for (int i = 0; i < MAXC; i++) x[i] = rndf() * (i % 97 == 0 ? 50.0f : 1.0f);
    x[5] = 0.0f;
    x[7] = -0.0f;
    for (int i = 64; i < 128; i++) x[i] = 0.0f;   /* an all-zero group: d = 0 */
    for (int i = 128; i < 160; i++) x[i] = (float)(i - 144) * 0.5f;   /* halves: rounding ties after scaling */
    for (int i = 160; i < 192; i++) x[i] = (i & 1 ? 1e-30f : -3e20f) * rndf();
    const int colss[] = {1024, 960, 64};         /* 960, 64: a last 4-bit block of 64 */
    for (int ci = 0; ci < 3; ci++)
        for (int bits = 4; bits <= 8; bits += 4)
            for (int gs = 32; gs <= 128 && gs <= colss[ci]; gs *= 2) {
                const int COLS = colss[ci];
                if (COLS % gs) continue;
                assert_true(sl_qd_x24_ok(bits, gs, (size_t)COLS));
                sl_qd_prep_x24(x, (size_t)COLS, gs, bits, planes, d);
                for (size_t si = 0; si < sizeof names / sizeof names[0]; si++) {   /* a set's own prep: the same bytes */
                    const sl_qd_kernels *k = sl_qd_by_name(names[si]);
                    if (!k || !k->prep_x24) continue;
                    static int8_t planes2[3 * MAXC];
                    static float d2[MAXC / 32];
                    memset(planes2, 0x5a, sizeof planes2);
                    k->prep_x24(x, (size_t)COLS, gs, bits, planes2, d2);
                    assert_memory_equal(planes, planes2, 3 * (size_t)COLS);
                    assert_memory_equal(d, d2, (size_t)(COLS / gs) * sizeof(float));
                }
                for (int e = 0; e < COLS; e++) {   /* reconstruct element e from its plane position */
                    int blk = e & ~127, half = COLS - blk >= 128 ? 64 : 32;
                    int p = bits == 8 ? e : blk + (e & 1) * half + (e & 127) / 2;
                    int v = 65536 * planes[p] + 256 * planes[COLS + p] + planes[2 * COLS + p];
                    assert_true(v >= -SL_QD_X24_MAX && v <= SL_QD_X24_MAX);
                    assert_true(fabsf(v * d[e / gs] - x[e]) <= d[e / gs] * 0.5f + 1e-6f * fabsf(x[e]));
                }
                for (int rep = 0; rep < 6; rep++) {
                    for (int i = 0; i < COLS; i++) codes[i] = (uint8_t)rndu32();
                    double sabs = 0;   /* sum of |terms|: the f32 accumulation error scale */
                    sl_dtype sdt = rep % 3 == 0 ? SL_F32 : rep % 3 == 1 ? SL_F16 : SL_BF16;
                    for (int g = 0; g < COLS / gs; g++) {
                        float sv = rndf() * 0.05f, bv = rndf() * 0.1f;
                        xs[g] = rndf() * 10.0f;
                        uint16_t hs = sdt == SL_F16 ? sl_f32_to_f16(sv) : sl_f32_to_bf16(sv);
                        uint16_t hb = sdt == SL_F16 ? sl_f32_to_f16(bv) : sl_f32_to_bf16(bv);
                        if (sdt == SL_F32) { memcpy(sraw + 1 + 4 * g, &sv, 4); memcpy(braw + 3 + 4 * g, &bv, 4); }
                        else { memcpy(sraw + 1 + 2 * g, &hs, 2); memcpy(braw + 3 + 2 * g, &hb, 2); }
                        sabs += fabs(sv * d[g] * (double)SL_QD_X24_MAX * 255.0) * gs + fabs(bv * xs[g]);
                    }
                    float ref = sl_qd_affine_x24_ref(codes, sraw + 1, braw + 3, sdt, d, xs, planes, (size_t)COLS, gs, bits);
                    for (size_t s = 0; s < sizeof names / sizeof names[0]; s++) {
                        const sl_qd_kernels *k = sl_qd_by_name(names[s]);
                        sl_qd_affine24_fn f = k ? (bits == 4 ? k->affine4_x24 : k->affine8_x24) : NULL;
                        if (!f) continue;
                        float got = f(codes, sraw + 1, braw + 3, sdt, d, xs, planes, (size_t)COLS, gs);
                        assert_true(fabs((double)got - ref) <= 1e-6 * sabs);
                    }
                }
            }
    assert_false(sl_qd_x24_ok(4, 32, 96));
    assert_false(sl_qd_x24_ok(8, 16, 1024));
    assert_false(sl_qd_x24_ok(3, 64, 1024));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_dense),
        cmocka_unit_test(test_dense_sets),
        cmocka_unit_test(test_dense_token_chunks),
        cmocka_unit_test(test_dense_gemm_matches_dot),
        cmocka_unit_test(test_qdot_sets_match_portable),
        cmocka_unit_test(test_k_quant_tiles_match_dot),
        cmocka_unit_test(test_qmatmul_fused_vs_rowdec),
        cmocka_unit_test(test_affine_fused_vs_rowdec),
        cmocka_unit_test(test_affine_x24),
        cmocka_unit_test(test_sets_batch_thread_independent),
        cmocka_unit_test(test_prompt_path_matches_one_token),
        cmocka_unit_test(test_rows_kernels_match_dot),
        cmocka_unit_test(test_rows_n_kernels_match_dot),
        cmocka_unit_test(test_attention_kernels),
        cmocka_unit_test(test_attention_group_kernels),
        cmocka_unit_test(test_matmul_register),
        cmocka_unit_test(test_dot_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
