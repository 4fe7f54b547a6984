/*
 * test_runtime.c — the engine's runtime pieces around the kernels: the
 * thread pool (every thread count, the spin budget's rule), RoPE frequency
 * variants (closed forms), config parsing edge cases, the sampler's support
 * and edge cases, and token-id parsing.  The kernels are test_kernels.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "model/model_impl.h"
#include "runtime/pool.h"
#include "silica/runtime.h"

/* ---- thread pool ---- */

typedef struct sum_job { long n; long *part; } sum_job;
static void sum_worker(void *arg, int tid, int nt) {
    sum_job *j = arg;
    long lo, hi, s = 0;
    sl_split(j->n, tid, nt, &lo, &hi);
    for (long i = lo; i < hi; i++) s += i;
    j->part[tid] = s;
}

/* The pool's spin budget: short waits grow it back to the maximum from any
 * value (0 included), whether they slept or not; long waits halve it.  (The
 * old rule halved after every sleep, and a budget below the gap between jobs
 * never grew again.) */
static void test_pool_spin_budget_adapts(void **state) {
    (void)state;
    const uint64_t max = 1000000;   /* 1 ms */
    uint64_t b = 0;
    int steps = 0;
    while (b < max && steps < 100) b = sl_pool_adapt_budget(b, 30000, max), steps++;   /* 30 us waits */
    assert_true(b == max && steps <= 12);
    assert_true(sl_pool_adapt_budget(max, 600000, max) == max / 2);    /* a 600 us wait: halve */
    assert_true(sl_pool_adapt_budget(max, 250000, max) == max);        /* a quarter of max: still short */
    assert_true(sl_pool_adapt_budget(1, 5000000, max) == 0);
    assert_true(sl_pool_adapt_budget(0, 0, 20000) == 1000);            /* oversubscribed pools: 20 us at most */
    assert_true(sl_pool_adapt_budget(15000, 1000, 20000) == 20000);
}

static void test_pool(void **state) {
    (void)state;
    for (int nt = 1; nt <= 5; nt++) {
        sl_pool *p = sl_pool_new(nt);
        assert_non_null(p);
        int cap = sl_pool_max_threads();
        assert_int_equal(sl_pool_size(p), cap && nt > cap ? cap : nt);
        for (int rep = 0; rep < 50; rep++) {
            long part[5] = {0};
            sum_job j = {1000 + rep, part};
            sl_pool_run(p, sum_worker, &j);
            long s = 0;
            for (int i = 0; i < sl_pool_size(p); i++) s += part[i];
            assert_int_equal(s, j.n * (j.n - 1) / 2);
        }
        sl_pool_free(p);
    }
}

/* ---- RoPE ---- */

static void test_rope_variants(void **state) {
    (void)state;
    sl_rope_config r = {.type = SL_ROPE_DEFAULT, .theta = 10000.0, .factor = 1.0};
    float inv[8], lin[8], af;
    sl_rope_inv_freq(&r, 16, 256, 16, inv, &af);
    for (int i = 0; i < 8; i++) assert_float_equal(inv[i], 1.0 / pow(10000.0, 2.0 * i / 16), 1e-7);
    assert_true(af == 1.0f);
    r.type = SL_ROPE_LINEAR;
    r.factor = 4.0;
    sl_rope_inv_freq(&r, 16, 256, 16, lin, &af);
    for (int i = 0; i < 8; i++) assert_float_equal(lin[i], inv[i] / 4.0, 1e-7);
    /* dynamic: no change up to max_position_embeddings, a larger base beyond */
    r.type = SL_ROPE_DYNAMIC;
    r.factor = 2.0;
    sl_rope_inv_freq(&r, 16, 8, 8, lin, &af);
    for (int i = 0; i < 8; i++) assert_float_equal(lin[i], inv[i], 1e-7);
    sl_rope_inv_freq(&r, 16, 8, 16, lin, &af);
    double base = 10000.0 * pow(2.0 * 16 / 8 - 1.0, 16.0 / 14.0);
    for (int i = 0; i < 8; i++) assert_float_equal(lin[i], 1.0 / pow(base, 2.0 * i / 16), 1e-7);
    /* llama3: high frequencies kept, low ones divided by factor */
    r = (sl_rope_config){.type = SL_ROPE_LLAMA3, .theta = 10000.0, .factor = 8.0, .low_freq_factor = 1.0,
                         .high_freq_factor = 4.0, .original_max_pos = 64};
    sl_rope_inv_freq(&r, 16, 256, 16, lin, &af);
    assert_float_equal(lin[0], inv[0], 1e-7);
    assert_float_equal(lin[7], inv[7] / 8.0, 1e-9);
    assert_true(lin[1] < inv[1] && lin[1] > inv[1] / 8.0);
    /* longrope: short factors up to the original length, long beyond; attention factor */
    r = (sl_rope_config){.type = SL_ROPE_LONGROPE, .theta = 10000.0, .factor = 1.0, .original_max_pos = 8,
                         .n_factors = 2, .short_factor = {1.0f, 2.0f}, .long_factor = {4.0f, 8.0f}};
    sl_rope_inv_freq(&r, 4, 32, 8, lin, &af);
    assert_float_equal(lin[1], 1.0 / (2.0 * 100.0), 1e-9);
    assert_float_equal(af, sqrt(1 + log(4.0) / log(8.0)), 1e-6);
    sl_rope_inv_freq(&r, 4, 32, 9, lin, &af);
    assert_float_equal(lin[1], 1.0 / (8.0 * 100.0), 1e-9);
    /* yarn: attention factor 0.1 ln(s) + 1 */
    r = (sl_rope_config){.type = SL_ROPE_YARN, .theta = 10000.0, .factor = 4.0, .beta_fast = 32, .beta_slow = 1,
                         .truncate = true};
    sl_rope_inv_freq(&r, 16, 128, 16, lin, &af);
    assert_float_equal(af, 0.1 * log(4.0) + 1.0, 1e-6);
    assert_float_equal(lin[0], inv[0], 1e-7);          /* extrapolated (high frequency) */
    assert_float_equal(lin[7], inv[7] / 4.0, 1e-9);    /* interpolated (low frequency) */
}

/* ---- config ---- */

static int parse(const char *json, sl_model_config *c, sl_error *err) {
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    int rc = sl_model_config_parse(j, "config.json", c, err);
    cJSON_Delete(j);
    return rc;
}

#define BASECFG "\"vocab_size\": 32, \"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4"

static void test_config(void **state) {
    (void)state;
    sl_model_config c;
    sl_error err = {0};
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG "}", &c, &err), 0);
    assert_int_equal(c.head_dim, 4);
    assert_int_equal(c.n_kv_heads, 4);
    assert_true(c.rope.theta == 10000.0);
    assert_false(c.tie_embeddings);
    sl_model_config_free(&c);
    assert_int_equal(parse("{\"model_type\": \"gemma3_text\", " BASECFG ", \"sliding_window\": 4}", &c, &err), 0);
    assert_true(c.layer_sliding[0] && c.layer_sliding[1]);   /* pattern 6: layers 0-4 local */
    assert_true(c.rope.theta == 1e6 && c.rope_local.theta == 10000.0);
    assert_true(c.tie_embeddings && c.norm_plus_one && c.qk_norm);
    sl_model_config_free(&c);
    assert_int_equal(parse("{\"model_type\": \"gemma2\", " BASECFG ", \"sliding_window\": 4}", &c, &err), 0);
    assert_true(c.layer_sliding[0] && !c.layer_sliding[1]);
    sl_model_config_free(&c);
    /* failures name the field */
    assert_int_equal(parse("{\"model_type\": \"bert\", " BASECFG "}", &c, &err), SL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "bert"));
    assert_non_null(strstr(err.msg, "qwen3"));
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG ", \"num_key_value_heads\": 3}", &c, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "num_key_value_heads"));
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG ", \"layer_types\": [\"full_attention\"]}", &c, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "layer_types"));
    assert_int_equal(parse("{\"model_type\": \"mistral\", " BASECFG ", \"layer_types\": [\"sliding_attention\", \"full_attention\"]}", &c, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "sliding_window"));
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG ", \"rope_scaling\": {\"rope_type\": \"linear\"}}", &c, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "rope_scaling.factor"));
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG ", \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1e4}, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}", &c, &err), SL_EINVAL);
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}}", &c, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "original_max_position_embeddings"));
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG ", \"partial_rotary_factor\": 0.1}", &c, &err), SL_EINVAL);
    assert_int_equal(parse("{\"model_type\": \"llama\", " BASECFG ", \"hidden_act\": \"relu2\"}", &c, &err), SL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "hidden_act"));
    assert_int_equal(parse("[1]", &c, &err), SL_EINVAL);
}

/* ---- sampler ---- */

static sl_sampler *mk(sl_sampler_params *p, int vocab) {
    sl_sampler *s = NULL;
    sl_error err = {0};
    assert_int_equal(sl_sampler_new(p, vocab, &s, &err), 0);
    return s;
}

static void fill(float *l, const float *v, int n) { memcpy(l, v, (size_t)n * sizeof *l); }

static void test_sampler_greedy_and_ties(void **state) {
    (void)state;
    sl_sampler_params p;
    sl_sampler_defaults(&p);
    sl_sampler *s = mk(&p, 5);
    float l[5], v[5] = {0.5f, 2.0f, -1.0f, 2.0f, NAN};
    fill(l, v, 5);
    assert_int_equal(sl_sampler_sample(s, l, NULL, 0), 1);   /* first of equal maxima; NaN ignored */
    sl_sampler_free(s);
    /* vocab of one */
    s = mk(&p, 1);
    float one = -5.0f;
    assert_int_equal(sl_sampler_sample(s, &one, NULL, 0), 0);
    sl_sampler_free(s);
}

static void test_sampler_support(void **state) {
    (void)state;
    float v[6] = {3.0f, 2.5f, 2.0f, 1.0f, 0.0f, -INFINITY};
    float l[6];
    int hits[6];
    /* top-k 3: only the three best ever come out, each of them does */
    sl_sampler_params p;
    sl_sampler_defaults(&p);
    p.temperature = 2.0f;
    p.top_k = 3;
    p.seed = 1;
    sl_sampler *s = mk(&p, 6);
    memset(hits, 0, sizeof hits);
    for (int i = 0; i < 3000; i++) { fill(l, v, 6); hits[sl_sampler_sample(s, l, NULL, 0)]++; }
    assert_true(hits[0] > 0 && hits[1] > 0 && hits[2] > 0);
    assert_int_equal(hits[3] + hits[4] + hits[5], 0);
    sl_sampler_free(s);
    /* top-p: p(0) = e^3/Z ~ 0.45 at temp 1 -> top_p 0.4 keeps only id 0 */
    sl_sampler_defaults(&p);
    p.temperature = 1.0f;
    p.top_p = 0.4f;
    s = mk(&p, 6);
    for (int i = 0; i < 200; i++) { fill(l, v, 6); assert_int_equal(sl_sampler_sample(s, l, NULL, 0), 0); }
    sl_sampler_free(s);
    /* min-p 0.5: keeps ids with p >= 0.5 p_max: e^-0.5 = 0.61 (id 1) yes, e^-1 = 0.37 (id 2) no */
    sl_sampler_defaults(&p);
    p.temperature = 1.0f;
    p.min_p = 0.5f;
    s = mk(&p, 6);
    memset(hits, 0, sizeof hits);
    for (int i = 0; i < 2000; i++) { fill(l, v, 6); hits[sl_sampler_sample(s, l, NULL, 0)]++; }
    assert_true(hits[0] > 0 && hits[1] > 0);
    assert_int_equal(hits[2] + hits[3] + hits[4] + hits[5], 0);
    sl_sampler_free(s);
    /* the empirical distribution follows softmax(l / T) */
    sl_sampler_defaults(&p);
    p.temperature = 1.0f;
    p.seed = 3;
    s = mk(&p, 6);
    memset(hits, 0, sizeof hits);
    int N = 20000;
    for (int i = 0; i < N; i++) { fill(l, v, 6); hits[sl_sampler_sample(s, l, NULL, 0)]++; }
    double z = 0;
    for (int i = 0; i < 5; i++) z += exp(v[i]);
    for (int i = 0; i < 5; i++) assert_true(fabs(hits[i] / (double)N - exp(v[i]) / z) < 0.015);
    assert_int_equal(hits[5], 0);   /* -inf never */
    sl_sampler_free(s);
}

static void test_sampler_seed(void **state) {
    (void)state;
    sl_sampler_params p;
    sl_sampler_defaults(&p);
    p.temperature = 1.0f;
    p.seed = 1234;
    float v[16], l[16];
    for (int i = 0; i < 16; i++) v[i] = (float)(i % 5);
    int a[50], b[50];
    sl_sampler *s = mk(&p, 16), *t = mk(&p, 16);
    for (int i = 0; i < 50; i++) {
        fill(l, v, 16); a[i] = sl_sampler_sample(s, l, NULL, 0);
        fill(l, v, 16); b[i] = sl_sampler_sample(t, l, NULL, 0);
    }
    assert_memory_equal(a, b, sizeof a);
    double u = sl_sampler_uniform(s);
    assert_true(u >= 0 && u < 1);
    sl_sampler_free(s);
    sl_sampler_free(t);
}

static void test_sampler_penalties_and_bias(void **state) {
    (void)state;
    sl_sampler_params p;
    sl_sampler_defaults(&p);
    float l[4];
    /* repetition penalty: positive logits divided, negative multiplied */
    p.repeat_penalty = 2.0f;
    sl_sampler *s = mk(&p, 4);
    float v[4] = {4.0f, 3.0f, -1.0f, 0.5f};
    int32_t hist[3] = {0, 2, 0};
    fill(l, v, 4);
    assert_int_equal(sl_sampler_sample(s, l, hist, 3), 1);
    assert_true(l[0] == 2.0f && l[2] == -2.0f && l[1] == 3.0f);
    sl_sampler_free(s);
    /* window: id 0 seen only outside the window is not penalised */
    p.penalty_window = 1;
    s = mk(&p, 4);
    int32_t h2[2] = {0, 3};
    fill(l, v, 4);
    assert_int_equal(sl_sampler_sample(s, l, h2, 2), 0);
    sl_sampler_free(s);
    /* presence / frequency */
    sl_sampler_defaults(&p);
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    s = mk(&p, 4);
    int32_t h3[3] = {1, 1, 3};
    fill(l, v, 4);
    sl_sampler_sample(s, l, h3, 3);
    assert_true(l[1] == 3.0f - 0.5f - 0.5f && l[3] == 0.5f - 0.5f - 0.25f && l[0] == 4.0f);
    sl_sampler_free(s);
    /* logit bias: -inf bans the best token */
    sl_sampler_defaults(&p);
    sl_logit_bias b = {0, -INFINITY};
    p.bias = &b;
    p.n_bias = 1;
    s = mk(&p, 4);
    fill(l, v, 4);
    assert_int_equal(sl_sampler_sample(s, l, NULL, 0), 1);
    sl_sampler_free(s);
    /* invalid parameters */
    sl_error err = {0};
    b.id = 4;
    assert_int_equal(sl_sampler_new(&p, 4, &s, &err), SL_EINVAL);
    sl_sampler_defaults(&p);
    p.top_p = 0.0f;
    assert_int_equal(sl_sampler_new(&p, 4, &s, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "top-p"));
    sl_sampler_defaults(&p);
    p.repeat_penalty = 0.0f;
    assert_int_equal(sl_sampler_new(&p, 4, &s, &err), SL_EINVAL);
}

static void test_parse_ids(void **state) {
    (void)state;
    int32_t *ids;
    int n;
    sl_error err = {0};
    assert_int_equal(sl_parse_ids("1, 2,3 ", &ids, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[2], 3);
    free(ids);
    assert_int_equal(sl_parse_ids("1,,x", &ids, &n, &err), SL_EINVAL);
    assert_int_equal(sl_parse_ids("", &ids, &n, &err), SL_EINVAL);
    assert_int_equal(sl_parse_ids("99999999999", &ids, &n, &err), SL_EINVAL);
    assert_int_equal(sl_parse_ids("1.5", &ids, &n, &err), SL_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_spin_budget_adapts),
        cmocka_unit_test(test_rope_variants),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_sampler_greedy_and_ties),
        cmocka_unit_test(test_sampler_support),
        cmocka_unit_test(test_sampler_seed),
        cmocka_unit_test(test_sampler_penalties_and_bias),
        cmocka_unit_test(test_parse_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
