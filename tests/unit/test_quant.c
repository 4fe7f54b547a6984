/*
 * test_quant.c — unit tests of the quantization library (silica/quant.h):
 * bitstream packing edge cases (3/5/6-bit codes crossing word boundaries,
 * known words), hand-computed affine groups (edge snap, .5 ties, constant /
 * zero groups, negative scales, GPU variant), E4M3 encoder corner values,
 * chunking (two half-chunks == one call), GGUF block round trips, repack
 * flags, error statistics, and clear errors for every unsupported
 * bits / group / mode / dtype / size.  Agreement with the real peers (mlx,
 * gguf-py) is tests/py/test_quant.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "quant/quant_impl.h"
#include "silica/quant.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rndf(void) { return ((float)(rnd32() & 0xffffff) / 16777216.0f - 0.5f) * 4.0f; }

/* ---- bitstream ---- */

static void test_pack_known_words(void **st) {
    (void)st;
    uint8_t c[32];
    uint32_t w[8];
    sl_error err = {0};
    /* 3 bits: element 10 occupies stream bits 30..32 -> crosses word 0/1 */
    memset(c, 0, sizeof c);
    c[10] = 7;
    assert_int_equal(sl_q_pack(c, 32, 3, w, &err), 0);
    assert_int_equal(w[0], 0xC0000000u);
    assert_int_equal(w[1], 0x1u);
    assert_int_equal(w[2], 0u);
    /* 5 bits: element 6 at bits 30..34 */
    memset(c, 0, sizeof c);
    c[6] = 31;
    assert_int_equal(sl_q_pack(c, 32, 5, w, &err), 0);
    assert_int_equal(w[0], 0xC0000000u);
    assert_int_equal(w[1], 0x7u);
    /* 6 bits: element 5 at bits 30..35 */
    memset(c, 0, sizeof c);
    c[5] = 63;
    assert_int_equal(sl_q_pack(c, 32, 6, w, &err), 0);
    assert_int_equal(w[0], 0xC0000000u);
    assert_int_equal(w[1], 0xFu);
    /* 4 bits: LSB first */
    for (int i = 0; i < 8; i++) c[i] = (uint8_t)i;
    assert_int_equal(sl_q_pack(c, 8, 4, w, &err), 0);
    assert_int_equal(w[0], 0x76543210u);
    /* 2 and 8 bits */
    for (int i = 0; i < 16; i++) c[i] = (uint8_t)(i & 3);
    assert_int_equal(sl_q_pack(c, 16, 2, w, &err), 0);
    assert_int_equal(w[0], 0xE4E4E4E4u);
    for (int i = 0; i < 4; i++) c[i] = (uint8_t)(0x10 * i + 1);
    assert_int_equal(sl_q_pack(c, 4, 8, w, &err), 0);
    assert_int_equal(w[0], 0x31211101u);
}

static void test_pack_roundtrip_all_bits(void **st) {
    (void)st;
    sl_error err = {0};
    for (int bits = 1; bits <= 8; bits++) {
        uint8_t c[256], back[256];
        uint32_t w[64];
        for (int i = 0; i < 256; i++) c[i] = (uint8_t)(rnd32() & ((1u << bits) - 1));
        assert_int_equal(sl_q_pack(c, 256, bits, w, &err), 0);
        assert_int_equal(sl_q_unpack(w, 256, bits, back, &err), 0);
        assert_memory_equal(c, back, 256);
        /* all-ones codes fill every bit of the stream */
        memset(c, (1 << bits) - 1, 256);
        assert_int_equal(sl_q_pack(c, 256, bits, w, &err), 0);
        for (int i = 0; i < bits * 256 / 32; i++) assert_int_equal(w[i], 0xffffffffu);
    }
}

static void test_pack_bad_args(void **st) {
    (void)st;
    sl_error err = {0};
    uint8_t c[32] = {0};
    uint32_t w[8];
    assert_int_equal(sl_q_pack(c, 31, 4, w, &err), SL_EINVAL); /* 124 bits: not whole words */
    assert_non_null(strstr(err.msg, "whole uint32 words"));
    assert_int_equal(sl_q_pack(c, 32, 9, w, &err), SL_EUNSUPPORTED);
    c[3] = 16;
    assert_int_equal(sl_q_pack(c, 32, 4, w, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "index 3"));
}

/* ---- affine ---- */

static void test_affine_hand_group(void **st) {
    (void)st;
    /* group 0..31 as floats: mn 0, mx 31, 4 bits: s = 31/15, side false -> s<0,
     * edge 31, q0 = rint(31/-2.0667) = -15 -> s = 31/-15, bias 31 */
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)i;
    uint32_t w[4];
    float s, b;
    sl_error err = {0};
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 32, 4, 32, SL_F32, SL_Q_VARIANT_CPU, w, &s, &b, &err), 0);
    assert_true(s == 31.0f / -15.0f);
    assert_true(b == 31.0f);
    uint8_t c[32];
    sl_qi_unpack(w, 32, 4, c);
    assert_int_equal(c[31], 0);
    assert_int_equal(c[0], 15);
    /* dequantize f32 = q*s + b */
    float y[32];
    assert_int_equal(sl_q_affine_dequantize(w, &s, &b, SL_F32, 32, 4, 32, SL_F32, y, &err), 0);
    for (int i = 0; i < 32; i++) assert_true(fabsf(y[i] - x[i]) <= fabsf(s) / 2 + 1e-5f);
}

static void test_affine_degenerate_groups(void **st) {
    (void)st;
    float z[32] = {0}, k[32], y[32];
    uint32_t w[4];
    float s, b;
    sl_error err = {0};
    assert_int_equal(sl_q_affine_quantize(z, SL_F32, 32, 4, 32, SL_F32, SL_Q_VARIANT_CPU, w, &s, &b, &err), 0);
    assert_true(s == -1e-7f && b == 0.0f && !signbit(b));
    for (int i = 0; i < 4; i++) assert_int_equal(w[i], 0);
    for (int i = 0; i < 32; i++) k[i] = -2.5f;
    assert_int_equal(sl_q_affine_quantize(k, SL_F32, 32, 4, 32, SL_F32, SL_Q_VARIANT_CPU, w, &s, &b, &err), 0);
    /* |mn| > |mx| is false for equal values: s = -eps, edge = mx, q0 = 2.5e7,
     * s = -2.5/q0 (about -1e-7), bias = the value, codes 0 */
    assert_true(b == -2.5f && s < 0 && fabsf(s + 1e-7f) < 1e-9f);
    for (int i = 0; i < 4; i++) assert_int_equal(w[i], 0);
    assert_int_equal(sl_q_affine_dequantize(w, &s, &b, SL_F32, 32, 4, 32, SL_F32, y, &err), 0);
    for (int i = 0; i < 32; i++) assert_true(y[i] == -2.5f);
}

static void test_affine_gpu_all_negative(void **st) {
    (void)st;
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = -1.0f - (float)i / 31.0f; /* -2 .. -1 */
    uint32_t wc[4], wg[4];
    float sc, bc, sg, bg;
    sl_error err = {0};
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 32, 4, 32, SL_F32, SL_Q_VARIANT_CPU, wc, &sc, &bc, &err), 0);
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 32, 4, 32, SL_F32, SL_Q_VARIANT_GPU, wg, &sg, &bg, &err), 0);
    assert_true(bc == -2.0f && bg == -2.0f);
    /* GPU widens the range to [min, 0]: a larger scale */
    assert_true(fabsf(sg) > fabsf(sc) * 1.9f);
}

static void test_affine_chunks_concatenate(void **st) {
    (void)st;
    enum { N = 1024 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = rndf();
    sl_error err = {0};
    for (int bits = 2; bits <= 8; bits++) {
        if (bits == 7) continue;
        uint32_t a[N], b[N];
        uint16_t sa[N / 32], ba[N / 32], sb[N / 32], bb[N / 32];
        assert_int_equal(sl_q_affine_quantize(x, SL_F32, N, bits, 64, SL_BF16, SL_Q_VARIANT_CPU, a, sa, ba, &err), 0);
        size_t h = N / 2, hw = h * (size_t)bits / 32;
        assert_int_equal(sl_q_affine_quantize(x, SL_F32, h, bits, 64, SL_BF16, SL_Q_VARIANT_CPU, b, sb, bb, &err), 0);
        assert_int_equal(
            sl_q_affine_quantize(x + h, SL_F32, h, bits, 64, SL_BF16, SL_Q_VARIANT_CPU, b + hw, sb + 8, bb + 8, &err), 0);
        assert_memory_equal(a, b, N * (size_t)bits / 8);
        assert_memory_equal(sa, sb, (N / 64) * sizeof sa[0]);   /* group 64: N/64 scales written */
        assert_memory_equal(ba, bb, (N / 64) * sizeof ba[0]);
    }
}

static void test_affine_bad_args(void **st) {
    (void)st;
    float x[128] = {0};
    uint32_t w[64];
    float s[4], b[4];
    sl_error err = {0};
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 128, 7, 64, SL_F32, 0, w, s, b, &err), SL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "7 bits"));
    assert_non_null(strstr(err.msg, "2, 3, 4, 5, 6 or 8"));
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 128, 4, 16, SL_F32, 0, w, s, b, &err), SL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "group size 16"));
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 96, 4, 64, SL_F32, 0, w, s, b, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "96"));
    assert_int_equal(sl_q_affine_quantize(x, SL_I32, 128, 4, 64, SL_F32, 0, w, s, b, &err), SL_EUNSUPPORTED);
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 128, 4, 64, SL_F64, 0, w, s, b, &err), SL_EUNSUPPORTED);
    assert_int_equal(sl_q_affine_quantize(x, SL_F32, 128, 4, 64, SL_F32, (sl_q_variant)5, w, s, b, &err),
                     SL_EUNSUPPORTED);
    assert_int_equal(sl_q_affine_quantize(NULL, SL_F32, 128, 4, 64, SL_F32, 0, w, s, b, &err), SL_EINVAL);
    assert_int_equal(sl_q_affine_dequantize(w, s, b, SL_F32, 128, 4, 64, SL_F16, x, &err), SL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "output dtype F16"));
    /* mode checks */
    assert_int_equal(sl_q_check(SL_Q_MXFP4, 4, 64, &err), SL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "mxfp4"));
    assert_int_equal(sl_q_check(SL_Q_NVFP4, 4, 16, &err), 0);
    assert_int_equal(sl_q_check(SL_Q_MXFP8, 8, 32, &err), 0);
    assert_int_equal(sl_q_check((sl_q_mode)9, 4, 32, &err), SL_EUNSUPPORTED);
    sl_q_mode m;
    assert_int_equal(sl_q_mode_from_name("nvfp4", &m), 0);
    assert_int_equal(m, SL_Q_NVFP4);
    assert_int_equal(sl_q_mode_from_name("int4", &m), SL_EUNSUPPORTED);
    uint64_t words, groups;
    assert_int_equal(sl_q_row_layout(SL_Q_AFFINE, 3, 64, 4096, &words, &groups, &err), 0);
    assert_int_equal(words, 384);
    assert_int_equal(groups, 64);
    assert_int_equal(sl_q_row_layout(SL_Q_NVFP4, 4, 16, 48, &words, &groups, &err), 0);
    assert_int_equal(words, 6);
    assert_int_equal(sl_q_row_layout(SL_Q_AFFINE, 4, 64, 100, &words, &groups, &err), SL_EINVAL);
    assert_int_equal(sl_q_fp_quantize(SL_Q_AFFINE, x, SL_F32, 32, NULL, w, (uint8_t *)s, &err), SL_EUNSUPPORTED);
    float g = 2.0f;
    assert_int_equal(sl_q_fp_quantize(SL_Q_MXFP8, x, SL_F32, 32, &g, w, (uint8_t *)s, &err), SL_EUNSUPPORTED);
}

/* ---- fp ---- */

static void test_e4m3_encoder(void **st) {
    (void)st;
    assert_int_equal(sl_qi_f32_to_e4m3(448.0f), 0x7e);
    assert_int_equal(sl_qi_f32_to_e4m3(1e9f), 0x7e);
    assert_int_equal(sl_qi_f32_to_e4m3(-INFINITY), 0xfe);
    assert_int_equal(sl_qi_f32_to_e4m3(NAN), 0x7e);
    assert_int_equal(sl_qi_f32_to_e4m3(1.0f), 0x38);
    assert_int_equal(sl_qi_f32_to_e4m3(0x1p-9f), 0x01);   /* smallest subnormal */
    assert_int_equal(sl_qi_f32_to_e4m3(0x1p-10f), 0x00);  /* tie to even -> 0 */
    assert_int_equal(sl_qi_f32_to_e4m3(0x3p-10f), 0x02);  /* 1.5 * 2^-9 -> 2 (even) */
    assert_int_equal(sl_qi_f32_to_e4m3(-0.0f), 0x80);
    /* every e4m3 value encodes to itself */
    for (int v = 0; v < 256; v++) {
        if ((v & 0x7f) == 0x7f) continue;
        assert_int_equal(sl_qi_f32_to_e4m3(sl_f8_e4m3_to_f32((uint8_t)v)), v);
    }
}

static void test_fp_roundtrip(void **st) {
    (void)st;
    float x[64], y[64];
    uint32_t w[16];
    uint8_t s[4];
    sl_error err = {0};
    for (int i = 0; i < 64; i++) x[i] = (float)((i % 8) - 4) * 0.5f; /* exactly representable in E2M1 */
    assert_int_equal(sl_q_fp_quantize(SL_Q_MXFP4, x, SL_F32, 64, NULL, w, s, &err), 0);
    assert_int_equal(sl_q_fp_dequantize(SL_Q_MXFP4, w, s, 64, NULL, SL_F32, y, &err), 0);
    for (int i = 0; i < 64; i++) assert_true(y[i] == x[i]);
    assert_int_equal(sl_q_fp_quantize(SL_Q_NVFP4, x, SL_F32, 64, NULL, w, s, &err), 0);
    assert_int_equal(sl_q_fp_dequantize(SL_Q_NVFP4, w, s, 64, NULL, SL_F32, y, &err), 0);
    for (int i = 0; i < 64; i++) assert_true(fabsf(y[i] - x[i]) <= 0.25f);
}

/* ---- GGUF ---- */

static void test_gguf_roundtrips(void **st) {
    (void)st;
    enum { N = 512 };
    static const sl_dtype types[] = {SL_Q4_0, SL_Q4_1, SL_Q5_0, SL_Q5_1, SL_Q8_0, SL_Q4_K, SL_Q6_K,
                                     SL_Q2_K, SL_Q3_K, SL_Q5_K, SL_IQ4_NL};
    static const float tol[] = {0.15f, 0.12f, 0.07f, 0.06f, 0.01f, 0.12f, 0.04f, 0.45f, 0.25f, 0.06f, 0.12f};
    float x[N], y[N];
    static uint8_t blk[N / 32 * 34 + 512];
    sl_error err = {0};
    for (int i = 0; i < N; i++) x[i] = rndf();
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        assert_true(sl_q_gguf_can_quantize(types[t]) && sl_q_gguf_can_dequantize(types[t]));
        assert_int_equal(sl_q_gguf_quantize(types[t], x, N, blk, &err), 0);
        assert_int_equal(sl_q_gguf_dequantize(types[t], blk, N, y, &err), 0);
        double se = 0, sr = 0;
        for (int i = 0; i < N; i++) se += (double)(y[i] - x[i]) * (y[i] - x[i]), sr += (double)x[i] * x[i];
        if (!(sqrt(se / sr) < tol[t])) fail_msg("%s relative error %g", sl_dtype_name(types[t]), sqrt(se / sr));
    }
    /* zeros stay zeros */
    memset(x, 0, sizeof x);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        assert_int_equal(sl_q_gguf_quantize(types[t], x, 256, blk, &err), 0);
        assert_int_equal(sl_q_gguf_dequantize(types[t], blk, 256, y, &err), 0);
        for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    }
}

static void test_gguf_bad_args(void **st) {
    (void)st;
    float x[256] = {0}, y[256];
    uint8_t blk[512];
    sl_error err = {0};
    assert_int_equal(sl_q_gguf_quantize(SL_IQ2_XS, x, 256, blk, &err), SL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "IQ2_XS"));
    assert_int_equal(sl_q_gguf_quantize(SL_Q4_K, x, 32, blk, &err), SL_EINVAL);
    assert_int_equal(sl_q_gguf_dequantize(SL_IQ2_XS, blk, 256, y, &err), SL_EUNSUPPORTED);
    assert_int_equal(sl_q_gguf_dequantize(SL_F32, blk, 256, y, &err), SL_EUNSUPPORTED);
    assert_int_equal(sl_q_gguf_dequantize(SL_Q8_0, blk, 33, y, &err), SL_EINVAL);
    x[7] = NAN;
    assert_int_equal(sl_q_gguf_quantize(SL_Q8_0, x, 32, blk, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "element 7"));
}

/* ---- repack + stats ---- */

static void test_repack_flags(void **st) {
    (void)st;
    /* Q4_0 block with d = 60000: -8*d overflows f16 -> counted */
    uint8_t blk[18] = {0};
    uint16_t d = sl_f32_to_f16(60000.0f);
    memcpy(blk, &d, 2);
    uint32_t w[4];
    uint16_t s, b;
    int bits = 0;
    uint64_t ovf = 0;
    sl_error err = {0};
    assert_int_equal(sl_q_gguf_to_affine(SL_Q4_0, blk, 32, w, &s, &b, &bits, &ovf, &err), 0);
    assert_int_equal(bits, 4);
    assert_int_equal(ovf, 1);
    assert_int_equal(sl_q_gguf_to_affine(SL_Q4_K, blk, 32, w, &s, &b, &bits, &ovf, &err), SL_EUNSUPPORTED);
    /* f32 scale 0.1 is not an f16 value -> inexact; 0.5 is */
    float sc[2] = {0.1f, 0.5f}, bi[2] = {0.25f, -1.0f};
    uint32_t wq[16] = {0};
    uint8_t out[80];
    uint64_t inexact = 0;
    assert_int_equal(sl_q_affine_to_q4_1(wq, sc, bi, SL_F32, 128, 64, out, &inexact, &err), 0);
    assert_int_equal(inexact, 1);
    assert_int_equal(sl_q_affine_to_q4_1(wq, sc, bi, SL_F32, 128, 48, out, &inexact, &err), SL_EUNSUPPORTED);
}

static void test_error_stats(void **st) {
    (void)st;
    float a[4] = {1, 2, 3, NAN}, b[4] = {1, 2, 5, 0};
    sl_q_stats s = {0};
    sl_q_error_stats(&s, a, b, 4);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.nonfinite, 1);
    assert_true(s.max_abs == 2.0);
    assert_true(fabs(sl_q_stats_rmse(&s) - sqrt(4.0 / 3.0)) < 1e-12);
    assert_true(fabs(sl_q_stats_rel(&s) - sqrt(4.0 / 14.0)) < 1e-12);
    sl_q_stats z = {0};
    assert_true(sl_q_stats_rmse(&z) == 0.0 && sl_q_stats_rel(&z) == 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_known_words),   cmocka_unit_test(test_pack_roundtrip_all_bits),
        cmocka_unit_test(test_pack_bad_args),      cmocka_unit_test(test_affine_hand_group),
        cmocka_unit_test(test_affine_degenerate_groups), cmocka_unit_test(test_affine_gpu_all_negative),
        cmocka_unit_test(test_affine_chunks_concatenate), cmocka_unit_test(test_affine_bad_args),
        cmocka_unit_test(test_e4m3_encoder),       cmocka_unit_test(test_fp_roundtrip),
        cmocka_unit_test(test_gguf_roundtrips),    cmocka_unit_test(test_gguf_bad_args),
        cmocka_unit_test(test_repack_flags),       cmocka_unit_test(test_error_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
