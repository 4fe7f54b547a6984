/*
 * test_dtype.c — dtype table and conversion tests.
 *
 * The SIMD kernel sets (dtype_simd.h) must give the scalar converters'
 * bits for every input: all 65536 f16 patterns, f32 edge cases (zeros,
 * subnormals, rounding ties, overflow boundaries, NaN payloads) and a few
 * million structured + random f32 patterns, at every start offset mod the
 * vector width so tails and unaligned pointers are covered.  Known values
 * pin the scalar code itself; numpy/ml_dtypes agreement is tests/py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dtype_simd.h"
#include "silica/dtype.h"

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

/* ---- table ---- */

static void test_table(void **state) {
    (void)state;
    assert_int_equal(sl_dtype_from_name("BF16"), SL_BF16);
    assert_int_equal(sl_dtype_from_name("bf16"), SL_DTYPE_INVALID);
    assert_string_equal(sl_dtype_name(SL_Q4_K), "Q4_K");
    assert_string_equal(sl_dtype_name((sl_dtype)999), "?");
    uint64_t nb = 0;
    assert_true(sl_dtype_nbytes(SL_Q4_0, 64, &nb));
    assert_int_equal(nb, 36);
    assert_false(sl_dtype_nbytes(SL_F4, 3, &nb));
    assert_false(sl_dtype_nbytes(SL_F64, UINT64_MAX / 4, &nb));
    assert_int_equal(sl_dtype_size(SL_F6_E2M3), 0);
    assert_int_equal(sl_dtype_size(SL_C128), 16);
}

/* ---- scalar known values ---- */

static void test_scalar_known(void **state) {
    (void)state;
    assert_int_equal(sl_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(sl_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(sl_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(sl_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(sl_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(sl_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(sl_f32_to_f16(0x1p-25f), 0x0000);      /* tie to even: 0 */
    assert_int_equal(sl_f32_to_f16(0x1.8p-24f), 0x0002);    /* tie to even: 2 */
    assert_int_equal(sl_f32_to_f16(u2f(0x7fc00000)), 0x7e00);
    assert_int_equal(sl_f32_to_f16(u2f(0xff800001)), 0xfe00);
    assert_int_equal(f2u(sl_f16_to_f32(0x0001)), f2u(0x1p-24f));
    assert_int_equal(f2u(sl_f16_to_f32(0x8000)), 0x80000000u);
    assert_int_equal(f2u(sl_f16_to_f32(0x7c01)), 0x7f802000u); /* sNaN payload kept */
    assert_int_equal(sl_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(sl_f32_to_bf16(u2f(0x3f808000)), 0x3f80); /* tie to even */
    assert_int_equal(sl_f32_to_bf16(u2f(0x3f818000)), 0x3f82);
    assert_int_equal(sl_f32_to_bf16(u2f(0x7f7fffff)), 0x7f80); /* max rounds to inf */
    assert_int_equal(sl_f32_to_bf16(u2f(0x7f800001)), 0x7fc0); /* sNaN quieted */
    assert_int_equal(sl_f32_to_bf16(u2f(0xffffffff)), 0xffff);
    assert_int_equal(f2u(sl_bf16_to_f32(0xc2f7)), 0xc2f70000u);
}

/* ---- SIMD == scalar ---- */

/* Compare every kernel set on src[0..n) at start offsets 0..16. */
static void check_f32_batch(const float *src, size_t n, uint16_t *out, float *outf) {
    size_t nsets = 0;
    const sl_simd_kernels *sets = sl_simd_available(&nsets);
    assert_true(nsets >= 1);
    for (size_t s = 0; s < nsets; s++) {
        for (size_t off = 0; off <= 16 && off < n; off += (n > 64 ? 5 : 1)) {
            size_t m = n - off;
            size_t done = sets[s].f32_to_f16 ? sets[s].f32_to_f16(src + off, out, m) : 0;
            assert_true(done <= m);
            for (size_t i = 0; i < done; i++)
                if (out[i] != sl_f32_to_f16(src[off + i]))
                    fail_msg("%s f32->f16 of 0x%08x: got 0x%04x want 0x%04x", sets[s].name, f2u(src[off + i]),
                             out[i], sl_f32_to_f16(src[off + i]));
            done = sets[s].f32_to_bf16 ? sets[s].f32_to_bf16(src + off, out, m) : 0;
            assert_true(done <= m);
            for (size_t i = 0; i < done; i++)
                if (out[i] != sl_f32_to_bf16(src[off + i]))
                    fail_msg("%s f32->bf16 of 0x%08x: got 0x%04x want 0x%04x", sets[s].name, f2u(src[off + i]),
                             out[i], sl_f32_to_bf16(src[off + i]));
        }
    }
    /* and the public entry points (active set + scalar tail) */
    sl_f32_to_f16_n(src, out, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(out[i], sl_f32_to_f16(src[i]));
    sl_f32_to_bf16_n(src, out, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(out[i], sl_f32_to_bf16(src[i]));
    assert_true(sl_convert(SL_F32, src, SL_F16, out, n));
    for (size_t i = 0; i < n; i++) assert_int_equal(out[i], sl_f32_to_f16(src[i]));
    (void)outf;
}

static void test_simd_f16_all(void **state) {
    (void)state;
    enum { N = 65536 + 17 };
    uint16_t *src = malloc(N * sizeof *src);
    float *out = malloc(N * sizeof *out);
    assert_non_null(src);
    assert_non_null(out);
    for (size_t i = 0; i < N; i++) src[i] = (uint16_t)i;
    size_t nsets = 0;
    const sl_simd_kernels *sets = sl_simd_available(&nsets);
    for (size_t s = 0; s < nsets; s++) {
        if (!sets[s].f16_to_f32) continue;
        for (size_t off = 0; off <= 16; off++) {
            size_t m = N - off;
            size_t done = sets[s].f16_to_f32(src + off, out, m);
            assert_true(done <= m && done + 16 >= m);
            for (size_t i = 0; i < done; i++)
                if (f2u(out[i]) != f2u(sl_f16_to_f32(src[off + i])))
                    fail_msg("%s f16->f32 of 0x%04x: got 0x%08x want 0x%08x", sets[s].name, src[off + i],
                             f2u(out[i]), f2u(sl_f16_to_f32(src[off + i])));
        }
    }
    sl_f16_to_f32_n(src, out, N);
    for (size_t i = 0; i < N; i++) assert_int_equal(f2u(out[i]), f2u(sl_f16_to_f32(src[i])));
    /* round trip f16 -> f32 -> f16 is the identity except NaN quieting */
    uint16_t *back = malloc(N * sizeof *back);
    assert_non_null(back);
    sl_f32_to_f16_n(out, back, N);
    for (size_t i = 0; i < N; i++) {
        uint16_t h = src[i];
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        assert_int_equal(back[i], nan ? (h | 0x200) : h);
    }
    /* bf16 -> f32 is a shift */
    sl_bf16_to_f32_n(src, out, N);
    for (size_t i = 0; i < N; i++) assert_int_equal(f2u(out[i]), (uint32_t)src[i] << 16);
    free(back);
    free(out);
    free(src);
}

static void test_simd_f32_edges(void **state) {
    (void)state;
    static const uint32_t k_edge[] = {
        0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x33000000, 0x33000001, 0x337fffff,
        0x33800000, 0x33c00000, 0x387fc000, 0x387fe000, 0x387ff000, 0x38800000, 0x38801000, 0x38802000,
        0x3f800000, 0x3f801000, 0x3f803000, 0x3f808000, 0x3f818000, 0x3f7fffff, 0x477fe000, 0x477fefff,
        0x477ff000, 0x477ff001, 0x47800000, 0x7f7fffff, 0x7f7f8000, 0x7f800000, 0xff800000, 0x7f800001,
        0x7fbfffff, 0x7fc00000, 0x7fffffff, 0xff800001, 0xffc00001, 0xffffffff, 0x7f802000, 0x7f801fff,
        0xc77ff000, 0xb3000000, 0xb3000001, 0x0000ffff, 0x00008000, 0x00018000, 0x3effffff, 0x4b800000,
    };
    size_t n = sizeof k_edge / sizeof k_edge[0];
    float src[64];
    uint16_t out[64];
    for (size_t i = 0; i < n; i++) src[i] = u2f(k_edge[i]);
    check_f32_batch(src, n, out, NULL);
}

static void test_simd_f32_structured(void **state) {
    (void)state;
    /* every sign/exponent/top-mantissa prefix (19 bits) with low bits that
     * sit on and around both rounding points (13 bits for f16, 16 for bf16) */
    static const uint32_t k_low[] = {0x0000, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x7fff, 0x8000, 0x8001, 0xffff};
    size_t nlow = sizeof k_low / sizeof k_low[0];
    size_t n = ((size_t)1 << 16) * nlow, cap = ((size_t)1 << 19) * 3;
    float *src = malloc(cap * sizeof *src);
    uint16_t *out = malloc(cap * sizeof *out);
    assert_non_null(src);
    assert_non_null(out);
    size_t k = 0;
    for (uint32_t hi = 0; hi < (1u << 16); hi++)
        for (size_t l = 0; l < nlow; l++) src[k++] = u2f((hi << 16) | k_low[l]);
    check_f32_batch(src, n, out, NULL);
    /* f16 rounding points: 13 low bits around the tie, all 2^19 prefixes */
    k = 0;
    static const uint32_t k_low13[] = {0x0fff, 0x1000, 0x1001};
    for (uint32_t hi = 0; hi < (1u << 19); hi++)
        for (size_t l = 0; l < 3; l++) src[k++] = u2f((hi << 13) | k_low13[l]);
    check_f32_batch(src, k, out, NULL);
    free(out);
    free(src);
}

static void test_simd_f32_random(void **state) {
    (void)state;
    size_t n = (size_t)1 << 21; /* 2M patterns per round, two rounds */
    float *src = malloc(n * sizeof *src);
    uint16_t *out = malloc(n * sizeof *out);
    assert_non_null(src);
    assert_non_null(out);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) src[i] = u2f(rnd32());
        check_f32_batch(src, n, out, NULL);
    }
    free(out);
    free(src);
}

static void test_convert_pairs(void **state) {
    (void)state;
    double d[4] = {1.0, 65520.0, 1.0 + 0x1p-11 + 0x1p-40, -0.0};
    uint16_t h[4];
    assert_true(sl_convert(SL_F64, d, SL_F16, h, 4));
    assert_int_equal(h[0], 0x3c00);
    assert_int_equal(h[1], 0x7c00);
    assert_int_equal(h[2], 0x3c01); /* just above the tie: single rounding goes up */
    assert_int_equal(h[3], 0x8000);
    assert_false(sl_convert(SL_F32, d, SL_I32, h, 1));
    assert_false(sl_convert_supported(SL_Q4_0, SL_F32));
    assert_true(sl_convert_supported(SL_F8_E4M3, SL_BF16));
}

int main(void) {
    size_t nsets = 0;
    const sl_simd_kernels *sets = sl_simd_available(&nsets);
    printf("# kernel sets:");
    for (size_t s = 0; s < nsets; s++) printf(" %s", sets[s].name);
    printf(" (active: %s)\n", sl_simd_active()->name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_scalar_known),
        cmocka_unit_test(test_simd_f16_all),
        cmocka_unit_test(test_simd_f32_edges),
        cmocka_unit_test(test_simd_f32_structured),
        cmocka_unit_test(test_simd_f32_random),
        cmocka_unit_test(test_convert_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
