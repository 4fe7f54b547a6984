/*
 * test_pyjson.c — the Python-exact JSON printer behind config.json /
 * index.json: expected strings are what CPython 3.11's json.dumps(obj,
 * indent=4) prints for the same values (float repr, ensure_ascii, int text).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "convert/convert_impl.h"

static void roundtrip(const char *in, int indent, const char *want) {
    pj *v = NULL;
    sl_error err = {0};
    assert_int_equal(pj_parse(in, strlen(in), "t", &v, &err), 0);
    char *out = pj_dump(v, indent, NULL);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
    pj_free(v);
}

static void test_floats(void **state) {
    (void)state;
    /* repr(): shortest round trip, exponent iff decpt <= -4 or > 16 */
    roundtrip("[1e-5, 1e-6, 0.0001, 10000.0, 1e16, 1e17, 0.1, 1.5e-07, 123456789.125, -0.0, 2.5E+3, 1e308]", -1,
              "[1e-05, 1e-06, 0.0001, 10000.0, 1e+16, 1e+17, 0.1, 1.5e-07, 123456789.125, -0.0, 2500.0, 1e+308]");
    roundtrip("[0.30000000000000004, 5e-324, 1234567890123456.7]", -1,
              "[0.30000000000000004, 5e-324, 1234567890123456.8]");
}

static void test_ints_strings(void **state) {
    (void)state;
    /* ints keep their digits (Python ints are unbounded); -0 is 0 */
    roundtrip("[1000000000000000019884624838656, -0, 7]", -1, "[1000000000000000019884624838656, 0, 7]");
    /* ensure_ascii: \\uXXXX lower-case, surrogate pairs; '/' unescaped; DEL kept */
    roundtrip("[\"a/b\\u00e9\\ud83d\\ude00\\n\\t\\u0001\x7f\"]", -1, "[\"a/b\\u00e9\\ud83d\\ude00\\n\\t\\u0001\x7f\"]");
    roundtrip("[\"caf\xc3\xa9\"]", -1, "[\"caf\\u00e9\"]");
}

static void test_indent_and_dupes(void **state) {
    (void)state;
    roundtrip("{\"b\": [1, {}], \"a\": {\"x\": []}, \"b\": 2}", 4,
              "{\n    \"b\": 2,\n    \"a\": {\n        \"x\": []\n    }\n}");
    pj *v = NULL;
    const char *zam = "{\"z\":1,\"a\":true,\"m\":null}";
    assert_int_equal(pj_parse(zam, strlen(zam), "t", &v, NULL), 0);
    pj_sort_keys(v);
    char *out = pj_dump(v, 4, NULL);
    assert_string_equal(out, "{\n    \"a\": true,\n    \"m\": null,\n    \"z\": 1\n}");
    free(out);
    pj_free(v);
}

static void test_rejects(void **state) {
    (void)state;
    static const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "[\"\\x\"]", "01x", "{\"a\":1}x", "[-]", NULL};
    for (int i = 0; bad[i]; i++) {
        pj *v = NULL;
        sl_error err = {0};
        assert_int_not_equal(pj_parse(bad[i], strlen(bad[i]), "t", &v, &err), 0);
        assert_null(v);
        assert_non_null(strstr(err.msg, "t: "));
    }
    char deep[600];
    memset(deep, '[', sizeof deep);
    pj *v = NULL;
    assert_int_not_equal(pj_parse(deep, sizeof deep, "t", &v, NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_ints_strings),
        cmocka_unit_test(test_indent_and_dupes),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
