/*
 * test_gemm.c — the tile GEMMs (the "amx" set, src/kernels/qamx_x86.c; the
 * avx512 set's Q4_0 / Q8_0 GEMM, src/kernels/qgemm_x86.c) against their
 * dots, bit for bit: Q4_0 / Q8_0 and MLX affine 4/8-bit
 * against the set's own dots (their block / group order), Q4_K / Q6_K
 * against the portable dot; directly at
 * every row split and partial tile, and through the engine's entry points.
 * Where the probe finds no working tiles the tests check that it says why
 * and that the set stays out.
 */
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
#include "test_kernels_util.h"

/* One of a set's tile GEMMs called directly (Q4_0 / Q8_0 on q8 blocks, Q4_K /
 * Q6_K on q8_K blocks; y padded to whole 16-token tiles) on rows [0, split)
 * and [split, rows) of w, against ref's dot per (row, token), bit for bit,
 * for every rows x tokens pair given; nothing written outside. */
typedef struct gemm_case {
    sl_dtype dt;
    const sl_qd_kernels *k, *ref;
    const uint8_t *w;
    size_t ldw, nb;
    const void *y;
    void *scratch;
} gemm_case;
static void gemm_call(const gemm_case *c, const uint8_t *w, int nr, int n, float *out, size_t ldo) {
    if (c->dt == SL_Q4_K || c->dt == SL_Q6_K)
        (c->dt == SL_Q4_K ? c->k->q4_k_gemm : c->k->q6_k_gemm)(w, c->ldw, nr, c->y, c->nb, n, c->nb, out, ldo, c->scratch);
    else
        (c->dt == SL_Q4_0 ? c->k->q4_0_gemm : c->k->q8_0_gemm)(w, c->ldw, nr, c->y, c->nb, n, c->nb, out, ldo, c->scratch);
}
static float gemm_ref(const gemm_case *c, int r, int t) {
    const uint8_t *wr = c->w + (size_t)r * c->ldw;
    const sl_q8b *y8 = (const sl_q8b *)c->y + (size_t)t * c->nb;
    const sl_q8kb *yk = (const sl_q8kb *)c->y + (size_t)t * c->nb;
    switch (c->dt) {
    case SL_Q4_K: return c->ref->q4_k(wr, yk, c->nb);
    case SL_Q6_K: return c->ref->q6_k(wr, yk, c->nb);
    case SL_Q4_0: return c->ref->q4_0(wr, y8, c->nb);
    default: return c->ref->q8_0(wr, y8, c->nb);
    }
}
static void check_gemm_splits(const gemm_case *c, const int *rowss, size_t nrs, const int *ns, size_t nns, float *out,
                              float *ref) {
    for (size_t ri = 0; ri < nrs; ri++)
        for (size_t ni = 0; ni < nns; ni++) {
            int rows = rowss[ri], n = ns[ni], split = rows / 2 + (int)ni % 3;
            if (split > rows) split = rows;
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) ref[t * rows + r] = gemm_ref(c, r, t);
            memset(out, 0xff, sizeof(float) * (size_t)(n * rows + 1));
            if (split > 0) gemm_call(c, c->w, split, n, out, (size_t)rows);
            if (split < rows) gemm_call(c, c->w + (size_t)split * c->ldw, rows - split, n, out + split, (size_t)rows);
            assert_same_floats(out, ref, (size_t)(n * rows));
            uint32_t guard;
            memcpy(&guard, out + n * rows, 4);
            assert_true(guard == 0xffffffffu);   /* nothing written past the last output */
        }
}

/* A GEMM through the engine's entry points (the active set): 1280 columns
 * of dt, 37 rows, a 33-token prompt prepared in two ranges (its buffer
 * padded to whole 16-token tiles) and its rows in two ranges, against
 * one-token calls, bit for bit.  ab: bytes of one activation block. */
static void check_gemm_entry(sl_dtype dt, size_t ab) {
    enum { COLS = 1280, ROWS = 37, N = 33 };
    static uint8_t wd[ROWS * COLS / 32 * 34];
    static float x[N * COLS], out[N * ROWS], ref[N * ROWS], scr[1 << 17];
    static uint8_t act[48 * COLS / 32 * sizeof(sl_q8b)];
    const sl_dtype_info *di = sl_dtype_get(dt);
    size_t nb = COLS / di->block_elems;
    rand_blocks(dt, wd, ROWS * nb);
    for (size_t i = 0; i < N * COLS; i++) x[i] = rndf();
    sl_weight w = {.fmt = SL_WF_GGUF, .dtype = dt, .rows = ROWS, .cols = COLS, .data = wd,
                   .row_bytes = nb * di->block_bytes, .name = "w"};
    const sl_matmul_kernel *mk = sl_matmul_for(&w);
    assert_true(mk->act_bytes(&w, N) == 48 * nb * ab);   /* padded to whole tiles */
    assert_true(mk->act_bytes(&w, N) <= sizeof act);
    assert_true(sl_matmul_scratch_floats(&w, 1) <= sizeof scr / sizeof scr[0]);
    mk->act_prep(&w, x, COLS, N, 0, 20, act);
    mk->act_prep(&w, x, COLS, N, 20, N, act);
    mk->matmul_act(&w, x, COLS, act, N, out, ROWS, 0, 16, scr);
    mk->matmul_act(&w, x, COLS, act, N, out, ROWS, 16, ROWS, scr);
    for (int t = 0; t < N; t++) mk->matmul(&w, x + (size_t)t * COLS, 1, COLS, ref + t * ROWS, ROWS, 0, ROWS, scr);
    assert_same_floats(out, ref, N * ROWS);
}

/* The AMX K-quant GEMM (Q4_K / Q6_K prompts): each output bit for bit the
 * portable dot, for row panels split at every place (1-33 rows, two calls),
 * 8-49 tokens (partial token tiles read the padding), 1-9 blocks, extreme
 * activations; then through the engine's entry points (padded activations,
 * two row ranges) against one-token calls.  Skipped where the probe finds
 * no working tiles (test_amx_gemm_matches_dot checks the probe says why). */
static void test_amx_k_gemm_matches_dot(void **state) {
    (void)state;
    const sl_qd_kernels *k = sl_qd_by_name("amx"), *p = sl_qd_by_name("portable");
    if (!k) return;
    assert_non_null(k->q4_k_gemm);
    assert_non_null(k->q6_k_gemm);
    enum { MAXR = 33, MAXN = 49, MAXB = 9 };
    static uint8_t wd[MAXR * MAXB * 210];
    static float x[MAXN * MAXB * 256], out[MAXN * MAXR + 1], ref[MAXN * MAXR];   /* out: a guard after the last place */
    static sl_q8kb q8[64 * MAXB];   /* MAXN tokens padded to 64 */
    static _Alignas(64) uint8_t scratch[SL_QD_K_GEMM_SCRATCH(MAXB)];
    const int rowss[] = {1, 7, 16, 17, 33}, ns[] = {8, 15, 16, 17, 49}, nbs[] = {1, 2, 9};
    for (int q6 = 0; q6 < 2; q6++)
        for (size_t bi = 0; bi < sizeof nbs / sizeof nbs[0]; bi++) {
            size_t nb = (size_t)nbs[bi], ldw = nb * (q6 ? 210 : 144);
            for (size_t i = 0; i < MAXN * nb * 256; i++)
                x[i] = i % 263 == 0 ? 100.0f : (i / 256) % 5 == 3 ? 0.0f : rndf();
            for (int t = 0; t < MAXN; t++) sl_qd_quantize_q8k(x + (size_t)t * nb * 256, nb * 256, q8 + (size_t)t * nb);
            rand_blocks(q6 ? SL_Q6_K : SL_Q4_K, wd, MAXR * nb);
            gemm_case c = {q6 ? SL_Q6_K : SL_Q4_K, k, p, wd, ldw, nb, q8, scratch};
            check_gemm_splits(&c, rowss, sizeof rowss / sizeof rowss[0], ns, sizeof ns / sizeof ns[0], out, ref);
        }
    sl_qd_force(k);
    check_gemm_entry(SL_Q4_K, sizeof(sl_q8kb));
    check_gemm_entry(SL_Q6_K, sizeof(sl_q8kb));
    sl_qd_force(NULL);
}

/* A set's Q4_0 / Q8_0 tile GEMM against its own one-token dot, bit for
 * bit: rows and tokens on and off whole tiles (1..40 rows, 8..49 tokens),
 * block counts on and off the 16 f32 lanes and the two chains (1..257), the
 * rows split in two "threads" at every offset class, and through the
 * engine's prompt entry points (act_prep + matmul_act). */
static void check_q8_gemm_set(const sl_qd_kernels *k) {
    assert_non_null(k->q4_0_gemm);
    assert_non_null(k->q8_0_gemm);
    enum { MAXR = 40, MAXN = 49, MAXB = 257 };
    static uint8_t wd[MAXR * MAXB * 34];
    static float x[MAXN * MAXB * 32], out[MAXN * MAXR + 1], ref[MAXN * MAXR];   /* out: a guard after the last place */
    static sl_q8b q8[64 * MAXB];   /* MAXN tokens padded to 64 */
    static _Alignas(64) uint8_t scratch[SL_QD_GEMM_SCRATCH(MAXB)];
    const int rowss[] = {1, 7, 16, 17, 33, 40}, ns[] = {8, 15, 16, 17, 31, 49}, nbs[] = {1, 2, 15, 16, 17, 33, 72, 257};   /* 257: packs of fewer rows (qgemm_x86.c) */
    for (int q8w = 0; q8w < 2; q8w++)
        for (size_t bi = 0; bi < sizeof nbs / sizeof nbs[0]; bi++) {
            size_t nb = (size_t)nbs[bi], bb = q8w ? 34 : 18, ldw = nb * bb;
            for (size_t i = 0; i < MAXN * nb * 32; i++) x[i] = rndf() * (i % 29 == 0 ? 7.0f : 1.0f);
            for (int t = 0; t < MAXN; t++) sl_qd_quantize_q8(x + (size_t)t * nb * 32, nb * 32, q8 + (size_t)t * nb);
            rand_blocks(q8w ? SL_Q8_0 : SL_Q4_0, wd, MAXR * nb);
            gemm_case c = {q8w ? SL_Q8_0 : SL_Q4_0, k, k, wd, ldw, nb, q8, scratch};
            check_gemm_splits(&c, rowss, sizeof rowss / sizeof rowss[0], ns, sizeof ns / sizeof ns[0], out, ref);
        }
    /* the engine's entry points choose the GEMM for a prompt: compare with one-token calls */
    sl_qd_force(k);
    check_gemm_entry(SL_Q4_0, sizeof(sl_q8b));
    check_gemm_entry(SL_Q8_0, sizeof(sl_q8b));
    sl_qd_force(NULL);
}

/* The AMX tile GEMM (where this CPU runs it) against its set's one-token
 * dot (check_q8_gemm_set); with SILICA_NO_AMX the set is off. */
static void test_amx_gemm_matches_dot(void **state) {
    (void)state;
    const char *why = NULL;
    const sl_qd_kernels *k = sl_qd_by_name("amx");
#if defined(SL_QD_X86)
    sl_qd_amx(&why);
#endif
    if (!k) {   /* a CPU, OS or VM without working tiles: the probe must say why, and the set stays out */
        print_message("amx: %s\n", why ? why : "not an x86-64 build");
        assert_true(sl_qd_active() == NULL || strcmp(sl_qd_active()->name, "amx") != 0);
        return;
    }
    check_q8_gemm_set(k);
}

/* The avx512 set's GEMM (qgemm_x86.c: rows packed per call, 4 x 4
 * register tiles), where this CPU runs the set: the same checks. */
static void test_avx512_gemm_matches_dot(void **state) {
    (void)state;
    const sl_qd_kernels *k = sl_qd_by_name("avx512");
    if (!k) return;
    check_q8_gemm_set(k);
}

/* The first n tokens of the one-token form (act, tb bytes each: xsum[G],
 * d[G], planes) in the GEMM's form (qdot.h sl_qd_affine24_gemm_fn), the
 * planes handed to the set's affine_x24_tiles in pieces of up to 1024
 * columns as the engine does (copied from the whole row's planes: a piece
 * of 128 columns is that part of them). */
static void x24_gemm_form(const sl_qd_kernels *k, const uint8_t *act, size_t tb, int n, size_t cols, int gs, int bits,
                          uint8_t *ga) {
    static int8_t piece[3 * 1024];
    size_t G = cols / (size_t)gs;
    for (int t = 0; t < n; t++) {
        int b0 = t / 16 * 16, tn = n - b0 < 16 ? n - b0 : 16;
        uint8_t *blk = ga + (size_t)b0 * tb;
        const int8_t *pl = (const int8_t *)(act + (size_t)t * tb + 8 * G);
        memcpy(blk + (size_t)tn * 3 * cols + (size_t)(t - b0) * 8 * G, act + (size_t)t * tb, 8 * G);
        for (size_t c0 = 0; c0 < cols; c0 += 1024) {
            size_t cc = cols - c0 < 1024 ? cols - c0 : 1024;
            for (int p = 0; p < 3; p++) memcpy(piece + (size_t)p * cc, pl + (size_t)p * cols + c0, cc);
            k->affine_x24_tiles(piece, c0, cc, cols, gs, bits, t - b0, tn, (int8_t *)blk);
        }
    }
}

/* A set's MLX affine GEMMs (4 / 8-bit where it has them, 24-bit activations) against the
 * set's one-token dot, bit for bit, for every (row, token): group sizes 32,
 * 64, 128; columns with a last 4-bit block of 64 (cols % 128 == 64) and
 * group counts below, at and past the 16 f32 lanes (1 ... 72), planes
 * written to the GEMM's form in one piece and in several (1088, 2304
 * columns); 1-33 rows split in two calls at uneven places, 1-49 tokens
 * (partial token tiles); f32, f16 and bf16 scales at odd addresses;
 * extreme activations (zero groups, large values).  Nothing is written
 * outside the outputs. */
static void check_affine_gemm_set(const sl_qd_kernels *k) {
    enum { MAXR = 33, MAXN = 49, MAXC = 2304, MAXG = MAXC / 32 };
    static uint8_t codes[MAXR * MAXC], sraw[MAXR * MAXG * 4 + 8], braw[MAXR * MAXG * 4 + 8];
    static uint8_t act[MAXN * (8 * MAXG + 3 * MAXC)];
    static _Alignas(64) uint8_t gact[MAXN * (8 * MAXG + 3 * MAXC)];
    static float x[MAXC], out[MAXN * MAXR + 1], ref[MAXN * MAXR];
    static _Alignas(64) uint8_t scratch[SL_QD_X24_GEMM_SCRATCH(MAXC, 32)];
    const int colss[] = {64, 192, 1088, 2304}, rowss[] = {1, 7, 16, 17, 33}, ns[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 49};
    for (int bits = 4; bits <= 8; bits += 4)
        for (int gs = 32; gs <= 128; gs *= 2)
            for (size_t ci = 0; ci < sizeof colss / sizeof colss[0]; ci++) {
                size_t cols = (size_t)colss[ci], G = cols / (size_t)gs, tb = 8 * G + 3 * cols;
                if (cols % (size_t)gs || !(bits == 4 ? k->affine4_x24_gemm : k->affine8_x24_gemm)) continue;
                for (int t = 0; t < MAXN; t++) {   /* token t: xsum[G], d[G], planes */
                    float *xs = (float *)(void *)(act + (size_t)t * tb);
                    for (size_t i = 0; i < cols; i++)
                        x[i] = (i / (size_t)gs) % 7 == 3 ? 0.0f : rndf() * (i % 53 == 0 ? 3e4f : 1.0f);
                    for (size_t g = 0; g < G; g++) xs[g] = rndf() * 10.0f;
                    sl_qd_prep_x24(x, cols, gs, bits, (int8_t *)(void *)(xs + 2 * G), xs + G);
                }
                for (size_t i = 0; i < MAXR * cols * (size_t)bits / 8; i++) codes[i] = (uint8_t)rndu32();
                for (int di = 0; di < 3; di++) {
                    sl_dtype sdt = di == 0 ? SL_F32 : di == 1 ? SL_F16 : SL_BF16;
                    size_t ss = di == 0 ? 4 : 2, lds = G * ss, ldc = cols * (size_t)bits / 8;
                    for (size_t i = 0; i < MAXR * G; i++) {
                        float sv = rndf() * 0.05f, bv = rndf() * 0.1f;
                        uint16_t hs = di == 1 ? sl_f32_to_f16(sv) : sl_f32_to_bf16(sv);
                        uint16_t hb = di == 1 ? sl_f32_to_f16(bv) : sl_f32_to_bf16(bv);
                        memcpy(sraw + 1 + ss * i, ss == 4 ? (const void *)&sv : (const void *)&hs, ss);
                        memcpy(braw + 3 + ss * i, ss == 4 ? (const void *)&bv : (const void *)&hb, ss);
                    }
                    sl_qd_affine24_gemm_fn gm = bits == 4 ? k->affine4_x24_gemm : k->affine8_x24_gemm;
                    sl_qd_affine24_fn dot = bits == 4 ? k->affine4_x24 : k->affine8_x24;
                    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                        int n = ns[ni];
                        x24_gemm_form(k, act, tb, n, cols, gs, bits, gact);
                        for (size_t ri = 0; ri < sizeof rowss / sizeof rowss[0]; ri++) {
                            int rows = rowss[ri], split = rows / 2 + (int)ni % 3;
                            if (split > rows) split = rows;
                            for (int t = 0; t < n; t++) {
                                const float *xs = (const float *)(const void *)(act + (size_t)t * tb);
                                for (int r = 0; r < rows; r++)
                                    ref[t * rows + r] = dot(codes + (size_t)r * ldc, sraw + 1 + (size_t)r * lds,
                                                            braw + 3 + (size_t)r * lds, sdt, xs + G, xs,
                                                            (const int8_t *)(const void *)(xs + 2 * G), cols, gs);
                            }
                            memset(out, 0xff, sizeof(float) * (size_t)(n * rows + 1));
                            if (split > 0)
                                gm(codes, ldc, sraw + 1, braw + 3, lds, sdt, split, gact, n, cols, gs, out,
                                   (size_t)rows, scratch);
                            if (split < rows)
                                gm(codes + (size_t)split * ldc, ldc, sraw + 1 + (size_t)split * lds,
                                   braw + 3 + (size_t)split * lds, lds, sdt, rows - split, gact, n, cols, gs,
                                   out + split, (size_t)rows, scratch);
                            assert_same_floats(out, ref, (size_t)(n * rows));
                            uint32_t guard;
                            memcpy(&guard, out + n * rows, 4);
                            assert_true(guard == 0xffffffffu);
                        }
                    }
                }
            }
}

static void test_amx_affine_gemm_matches_dot(void **state) {
    (void)state;
    const sl_qd_kernels *k = sl_qd_by_name("amx");
    if (!k) return;   /* test_amx_gemm_matches_dot checks the probe says why */
    assert_non_null(k->affine4_x24_gemm);
    assert_non_null(k->affine8_x24_gemm);
    assert_non_null(k->affine_x24_tiles);
    check_affine_gemm_set(k);
}

/* The avx512 set's 8-bit MLX affine GEMM (qaffine8_x86.c: group lanes,
 * rows packed per call, tokens in the set's own form) where this CPU runs
 * the set: the same checks against that set's one-token dot. */
static void test_avx512_affine_gemm_matches_dot(void **state) {
    (void)state;
    const sl_qd_kernels *k = sl_qd_by_name("avx512");
    if (!k) return;
    assert_non_null(k->affine8_x24_gemm);
    assert_non_null(k->affine_x24_tiles);
    check_affine_gemm_set(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amx_gemm_matches_dot),
        cmocka_unit_test(test_avx512_gemm_matches_dot),
        cmocka_unit_test(test_amx_k_gemm_matches_dot),
        cmocka_unit_test(test_amx_affine_gemm_matches_dot),
        cmocka_unit_test(test_avx512_affine_gemm_matches_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
