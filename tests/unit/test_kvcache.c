/*
 * test_kvcache.c — the session's KV cache (src/runtime/kvcache.c) without a
 * model: the shared size formulas, which positions a query sees in every
 * kind of layer, what survives a truncation, and that stored rows read back
 * as f16 / f32 / mx.quantize'd-and-dequantized values.  The behaviour with
 * real models and mlx_lm is in tests/py/test_kvcache.py.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/kvcache.h"
#include "silica/quant.h"

/* A config with the fields the cache reads. */
static sl_model_config cfg(int layers, int kv_heads, int head_dim, int window, bool *sliding) {
    sl_model_config c;
    memset(&c, 0, sizeof c);
    c.n_layers = layers;
    c.n_kv_heads = kv_heads;
    c.head_dim = head_dim;
    c.sliding_window = window;
    c.layer_sliding = sliding;
    return c;
}

static void test_formulas(void **state) {
    (void)state;
    sl_error err;
    int g;
    assert_int_equal(sl_kv_group_size(8, 128, 8, 0, &g, &err), 0);
    assert_int_equal(g, 64);
    assert_int_equal(sl_kv_group_size(32, 96, 4, 0, &g, &err), 0);   /* phi3: per-head 32 */
    assert_int_equal(g, 32);
    assert_int_equal(sl_kv_group_size(4, 16, 8, 0, &g, &err), 0);    /* spans heads */
    assert_int_equal(g, 64);
    assert_int_equal(sl_kv_group_size(1, 16, 8, 0, &g, &err), SL_EUNSUPPORTED);
    assert_int_equal(sl_kv_group_size(4, 16, 8, 128, &g, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "group size 128"));
    assert_int_equal(sl_kv_group_size(8, 128, 3, 0, &g, &err), SL_EINVAL);
    assert_int_equal(sl_kv_group_size(8, 128, 0, 0, &g, &err), 0);
    assert_int_equal(g, 0);
    uint64_t b;
    /* llama 8B: 8 KV heads x 128; f16 4 KiB per layer-position; q8 2 x (1024 + 16 groups x 4) */
    assert_int_equal(sl_kv_pos_bytes(8, 128, SL_F16, 0, 0, &b, &err), 0);
    assert_int_equal(b, 4096);
    assert_int_equal(sl_kv_pos_bytes(8, 128, SL_F16, 8, 64, &b, &err), 0);
    assert_int_equal(b, 2 * (1024 + 16 * 4));
    assert_int_equal(sl_kv_pos_bytes(8, 128, SL_F32, 4, 64, &b, &err), 0);
    assert_int_equal(b, 2 * (512 + 16 * 8));
    /* slots: full, sliding ring, rotating */
    assert_int_equal(sl_kv_layer_slots(1000, 64, 0, 4, 0), 1000);
    assert_int_equal(sl_kv_layer_slots(1000, 64, 0, 4, 128), 128 + 63);
    assert_int_equal(sl_kv_layer_slots(100, 64, 0, 4, 128), 100);
    assert_int_equal(sl_kv_layer_slots(1000, 16, 32, 4, 0), 32 + 15);
    assert_int_equal(sl_kv_layer_slots(1000, 16, 32, 4, 8), 8 + 15);      /* window smaller than the ring */
    assert_int_equal(sl_kv_batch(0, 1000, 0), 64);
    assert_int_equal(sl_kv_batch(0, 10, 0), 10);
    assert_int_equal(sl_kv_batch(64, 1000, 16), 16);
}

/* Positions query p sees on layer l, as a bitmask (p < 64). */
static uint64_t seen(const sl_kvcache *kv, int l, int64_t p) {
    int64_t s0, s1, r0;
    sl_kvcache_visible(kv, l, p, &s0, &s1, &r0);
    uint64_t m = 0;
    for (int64_t k = s0 < s1 ? s0 : r0; k <= p; k = k + 1 == s1 ? r0 : k + 1) m |= 1ull << k;
    return m;
}

static uint64_t range_mask(int64_t a, int64_t b) {   /* [a, b] */
    uint64_t m = 0;
    for (int64_t k = a < 0 ? 0 : a; k <= b; k++) m |= 1ull << k;
    return m;
}

static void test_visibility(void **state) {
    (void)state;
    bool sl[3] = {false, true, false};
    sl_model_config c = cfg(3, 1, 32, 5, sl);
    sl_kvcache kv;
    sl_error err;
    /* unbounded: full layers see [0, p], the sliding one (p - 5, p] */
    sl_session_opts o = {.n_ctx = 60};
    assert_int_equal(sl_kvcache_init(&kv, &c, &o, 4, &err), 0);
    for (int64_t p = 0; p < 60; p++) {
        assert_true(seen(&kv, 0, p) == range_mask(0, p));
        assert_true(seen(&kv, 1, p) == range_mask(p - 4, p));
    }
    assert_int_equal(kv.layers[1].sink + kv.layers[1].ring, 5 + 4 - 1);
    assert_int_equal(kv.limit, 60);
    sl_kvcache_free(&kv);
    /* rotating 12, keep 4: sinks [0, 4) + the last 8; the sliding layer keeps its window (5 <= 12 - 4) */
    o.max_kv = 12;
    assert_int_equal(sl_kvcache_init(&kv, &c, &o, 4, &err), 0);
    for (int64_t p = 0; p < 60; p++) {
        assert_true(seen(&kv, 0, p) == (range_mask(0, p < 3 ? p : 3) | range_mask(p - 7, p)));
        assert_true(seen(&kv, 1, p) == range_mask(p - 4, p));
    }
    assert_int_equal(kv.limit, SL_KV_MAX_POS);
    assert_int_equal(kv.max_visible, 12);
    sl_kvcache_free(&kv);
    /* no sinks: a plain window of 12 */
    o.kv_keep = -1;
    assert_int_equal(sl_kvcache_init(&kv, &c, &o, 4, &err), 0);
    for (int64_t p = 0; p < 60; p++) assert_true(seen(&kv, 2, p) == range_mask(p - 11, p));
    sl_kvcache_free(&kv);
    /* bad options: one line each */
    sl_session_opts bad[] = {{.n_ctx = 8, .kv_bits = 3},
                             {.n_ctx = 8, .kv_group_size = 64},
                             {.n_ctx = 8, .max_kv = 4},
                             {.n_ctx = 8, .max_kv = -3},
                             {.n_ctx = 8, .max_kv = SL_KV_MAX_SIZE + 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(sl_kvcache_init(&kv, &c, &bad[i], 4, &err), 0);
        assert_null(strchr(err.msg, '\n'));
    }
}

static void test_truncate(void **state) {
    (void)state;
    bool sl[1] = {false};
    sl_model_config c = cfg(1, 1, 32, 0, sl);
    sl_kvcache kv;
    sl_error err;
    sl_session_opts o = {.n_ctx = 100, .max_kv = 12};   /* keep 4, span 8, ring 8 + 4 - 1 = 11 */
    assert_int_equal(sl_kvcache_init(&kv, &c, &o, 4, &err), 0);
    assert_int_equal(kv.layers[0].ring, 11);
    assert_true(sl_kvcache_can_keep(&kv, 10, 5));    /* nothing evicted yet */
    assert_true(sl_kvcache_can_keep(&kv, 30, 29));   /* needs [22, 29): held ([19, 30)) */
    assert_true(sl_kvcache_can_keep(&kv, 30, 26));   /* needs [19, 26) */
    assert_false(sl_kvcache_can_keep(&kv, 30, 25));  /* needs [18, 25): 18 was overwritten */
    assert_true(sl_kvcache_can_keep(&kv, 30, 3));    /* only sinks */
    assert_true(sl_kvcache_can_keep(&kv, 30, 0));
    sl_kvcache_free(&kv);
    o.max_kv = 0;   /* unbounded: always */
    assert_int_equal(sl_kvcache_init(&kv, &c, &o, 4, &err), 0);
    assert_true(sl_kvcache_can_keep(&kv, 99, 1));
    sl_kvcache_free(&kv);
}

static void test_rows(void **state) {
    (void)state;
    bool sl[2] = {false, true};
    enum { KV = 2, D = 32, ROW = KV * D };
    sl_model_config c = cfg(2, KV, D, 3, sl);
    float k[ROW], v[ROW], tmp[D + 2 * 128], deq[ROW];
    sl_error err;
    struct { sl_dtype dt; int bits, group; } kinds[] = {{SL_F32, 0, 0}, {SL_F16, 0, 0}, {SL_F16, 8, 64},
                                                        {SL_F32, 4, 32}, {SL_F16, 4, 64}};
    for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
        sl_session_opts o = {.n_ctx = 20, .kv_dtype = kinds[ki].dt, .kv_bits = kinds[ki].bits,
                             .kv_group_size = kinds[ki].group, .max_kv = 9};
        sl_kvcache kv;
        assert_int_equal(sl_kvcache_init(&kv, &c, &o, 2, &err), 0);
        for (int64_t p = 0; p < 40; p++) {
            for (int l = 0; l < 2; l++) {
                for (int i = 0; i < ROW; i++) {
                    k[i] = sinf((float)(p * 7 + i + l)) * 3.0f;
                    v[i] = cosf((float)(p * 5 + i - l)) * 0.5f;
                }
                sl_kvcache_store(&kv, l, p, k, v);
                /* what the row must read back as */
                for (int which = 0; which < 2; which++) {
                    const float *x = which ? v : k;
                    if (kinds[ki].bits) {
                        int G = kv.group;
                        uint32_t wq[ROW];
                        float sc[ROW], bi[ROW];
                        uint16_t h[ROW];
                        const void *src = x;
                        if (kinds[ki].dt == SL_F16) {
                            for (int i = 0; i < ROW; i++) h[i] = sl_f32_to_f16(x[i]);
                            src = h;
                        }
                        uint16_t sc16[ROW], bi16[ROW];
                        void *s_ = kinds[ki].dt == SL_F16 ? (void *)sc16 : (void *)sc;
                        void *b_ = kinds[ki].dt == SL_F16 ? (void *)bi16 : (void *)bi;
                        assert_int_equal(sl_q_affine_quantize(src, kinds[ki].dt, ROW, kinds[ki].bits, G, kinds[ki].dt,
                                                              SL_Q_VARIANT_CPU, wq, s_, b_, &err), 0);
                        assert_int_equal(sl_q_affine_dequantize(wq, s_, b_, kinds[ki].dt, ROW, kinds[ki].bits, G,
                                                                SL_F32, deq, &err), 0);
                    } else {
                        for (int i = 0; i < ROW; i++)
                            deq[i] = kinds[ki].dt == SL_F32 ? x[i] : sl_f16_to_f32(sl_f32_to_f16(x[i]));
                    }
                    for (int h = 0; h < KV; h++) {
                        const float *r = sl_kvcache_row(&kv, l, p, h, which, tmp);
                        assert_memory_equal(r, deq + h * D, D * sizeof(float));
                    }
                }
            }
        }
        sl_kvcache_free(&kv);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formulas),
        cmocka_unit_test(test_visibility),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
