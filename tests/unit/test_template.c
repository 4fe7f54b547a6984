/*
 * test_template.c — the sl_tmpl_* API in C: compile once / render many,
 * contexts from cJSON, error codes and "NAME:LINE: message" texts, limits
 * (output, iterations, depth, memory), messages normalisation.  Template
 * semantics against jinja2/transformers are tested in tests/py/test_templates.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "silica/template.h"

static char *render(const char *src, const char *ctx_json, const sl_tmpl_limits *lim, int *rc, sl_error *err) {
    sl_tmpl *t = NULL;
    *rc = sl_tmpl_compile(src, strlen(src), "t.jinja", &t, err);
    if (*rc) return NULL;
    cJSON *ctx = ctx_json ? cJSON_Parse(ctx_json) : NULL;
    char *out = NULL;
    size_t n = 0;
    *rc = sl_tmpl_render(t, ctx, lim, &out, &n, err);
    if (!*rc) assert_int_equal(n, strlen(out));
    cJSON_Delete(ctx);
    sl_tmpl_free(t);
    return out;
}

static void expect(const char *src, const char *ctx, const char *want) {
    int rc;
    sl_error err = {0};
    char *out = render(src, ctx, NULL, &rc, &err);
    if (rc) fail_msg("render failed: %s", err.msg);
    assert_string_equal(out, want);
    free(out);
}

static void expect_err(const char *src, const char *ctx, const sl_tmpl_limits *lim, int code, const char *needle) {
    int rc;
    sl_error err = {0};
    char *out = render(src, ctx, lim, &rc, &err);
    assert_null(out);
    assert_int_equal(rc, code);
    if (!strstr(err.msg, needle)) fail_msg("'%s' not in '%s'", needle, err.msg);
}

static void test_render_basics(void **state) {
    (void)state;
    expect("Hello {{ name }}!\n", "{\"name\": \"W\\u00f6rld\"}", "Hello W\xc3\xb6rld!");
    expect("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}",
           "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}",
           "user:a;assistant:b;");
    expect("{{ x }}|{{ y }}|{{ z }}", "{\"x\": 3, \"y\": 2.5, \"z\": null}", "3|2.5|None");
    expect("{{ missing }}.", NULL, ".");
}

static void test_compile_once_render_many(void **state) {
    (void)state;
    sl_error err;
    sl_tmpl *t;
    const char *src = "{{ n * 2 }}";
    assert_int_equal(sl_tmpl_compile(src, strlen(src), "t", &t, &err), 0);
    for (int i = 0; i < 3; i++) {
        char js[32], want[16], *out;
        snprintf(js, sizeof js, "{\"n\": %d}", i);
        snprintf(want, sizeof want, "%d", i * 2);
        cJSON *ctx = cJSON_Parse(js);
        assert_int_equal(sl_tmpl_render(t, ctx, NULL, &out, NULL, &err), 0);
        assert_string_equal(out, want);
        free(out);
        cJSON_Delete(ctx);
    }
    sl_tmpl_free(t);
}

static void test_errors(void **state) {
    (void)state;
    expect_err("a\n{% if %}", NULL, NULL, SL_EINVAL, "t.jinja:2: Expected an expression");
    expect_err("{% include 'x' %}", NULL, NULL, SL_EUNSUPPORTED, "unsupported construct");
    expect_err("\n\n{{ raise_exception('nope: ' ~ 1) }}", NULL, NULL, SL_EINVAL, "t.jinja:3: nope: 1");
    expect_err("{{ a.b }}", NULL, NULL, SL_EINVAL, "'a' is undefined");
    expect_err("{{ 1 }}", "[1]", NULL, SL_EINVAL, "JSON object");
}

static void test_limits(void **state) {
    (void)state;
    sl_tmpl_limits lim = {.max_output = 100, .max_iterations = 50, .max_depth = 5, .max_memory = 1u << 20};
    expect_err("{% for i in range(200) %}x{% endfor %}", NULL, &lim, SL_EINVAL, "loop iterations");
    expect_err("{% for i in range(40) %}xxxxx{% endfor %}", NULL, &lim, SL_EINVAL, "output exceeds");
    expect_err("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}", NULL, &lim, SL_EINVAL, "nested deeper");
    expect_err("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL, &lim,
               SL_ENOMEM, "memory");
}

static void test_normalize_messages(void **state) {
    (void)state;
    sl_error err;
    cJSON *in = cJSON_Parse("[{\"role\": \"assistant\", \"content\": \"a\", \"x\": null, \"reasoning\": \"r\"}]");
    cJSON *out = sl_tmpl_normalize_messages(in, &err);
    assert_non_null(out);
    char *s = cJSON_PrintUnformatted(out);
    assert_string_equal(s, "[{\"thinking\":\"r\",\"role\":\"assistant\",\"content\":\"a\",\"reasoning\":\"r\","
                           "\"reasoning_content\":\"r\"}]");
    free(s);
    cJSON_Delete(out);
    cJSON_Delete(in);
    in = cJSON_Parse("[1]");
    assert_null(sl_tmpl_normalize_messages(in, &err));
    assert_non_null(strstr(err.msg, "message 0"));
    cJSON_Delete(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_basics), cmocka_unit_test(test_compile_once_render_many),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_limits), cmocka_unit_test(test_normalize_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
