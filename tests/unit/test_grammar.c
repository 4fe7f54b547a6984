/*
 * test_grammar.c — the structured-output recognizer (silica/grammar.h):
 *  - every text of tests/data/grammar/cases.json is accepted exactly when
 *    the case list says; the list is written by tests/unit/grammar_cases.py,
 *    whose verdicts come from the real `jsonschema` validator (accepted
 *    texts always validate; "subset" ones are valid JSON left out on
 *    purpose);
 *  - unsupported keywords, bad values and limits are one error naming the
 *    keyword and where it is; recursive and huge schemas end in time;
 *  - a vocabulary mask (byte trie walk, free-string shortcut) allows exactly
 *    the tokens whose bytes a direct feed accepts, on the demo model's
 *    byte-level tokenizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "silica/grammar.h"
#include "silica/io.h"
#include "silica/tokenizer.h"

static char *src_path(const char *rel) {
    const char *root = getenv("SILICA_SRC");
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

static bool accepts(const sl_grammar *g, const char *text) {
    sl_grammar_matcher *m;
    sl_error err;
    assert_int_equal(sl_grammar_matcher_new(g, &m, &err), 0);
    bool ok = sl_grammar_accept_bytes(m, text, strlen(text)) && sl_grammar_complete(m);
    sl_grammar_matcher_free(m);
    return ok;
}

static void test_cases(void **state) {
    (void)state;
    char *buf;
    size_t len;
    sl_error err;
    assert_int_equal(sl_read_file(src_path("tests/data/grammar/cases.json"), 1 << 24, &buf, &len, &err), 0);
    cJSON *cases = cJSON_Parse(buf);
    free(buf);
    assert_non_null(cases);
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        sl_grammar *g;
        char *sch = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "schema"));
        if (sl_grammar_from_schema(cJSON_GetObjectItem(c, "schema"), &g, &err)) fail_msg("%s: %s", sch, err.msg);
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "texts")) {
            const char *text = cJSON_GetObjectItem(t, "text")->valuestring;
            bool want = cJSON_IsTrue(cJSON_GetObjectItem(t, "accept"));
            if (accepts(g, text) != want) fail_msg("%s: '%s' should be %s", sch, text, want ? "accepted" : "rejected");
            n++;
        }
        free(sch);
        sl_grammar_free(g);
    }
    cJSON_Delete(cases);
    assert_true(n >= 100);
}

/* The error for schema text names needle. */
static void refused(const char *schema, const char *needle) {
    sl_grammar *g = NULL;
    sl_error err;
    sl_error_clear(&err);
    assert_int_not_equal(sl_grammar_from_schema_text(schema, strlen(schema), &g, &err), 0);
    assert_null(g);
    if (!strstr(err.msg, needle)) fail_msg("'%s' not in '%s'", needle, err.msg);
    assert_null(strchr(err.msg, '\n'));
}

static void test_errors(void **state) {
    (void)state;
    refused("{\"type\":\"string\",\"pattern\":\"a+\"}", "unsupported keyword 'pattern'");
    refused("{\"properties\":{\"a\":{\"format\":\"email\"}}}", "schema /properties/a: unsupported keyword 'format'");
    refused("{\"type\":\"integer\",\"minimum\":3}", "'minimum'");
    refused("{\"type\":\"strin\"}", "'type' must be");
    refused("{\"$ref\":\"http://x/y\"}", "only local ones");
    refused("{\"$ref\":\"#/$defs/missing\"}", "points to nothing");
    refused("{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}}}",
            "$ref cycle");
    refused("{\"type\":\"object\",\"required\":[\"x\"],\"properties\":{}}", "'x' is not in 'properties'");
    refused("{\"enum\":[1,2],\"type\":\"string\"}", "no value of 'enum'");
    refused("{\"type\":\"array\",\"minItems\":3,\"maxItems\":1}", "'maxItems' is below");
    refused("{\"allOf\":[{},{}]}", "'allOf' is supported with exactly one");
    refused("{\"anyOf\":[{\"type\":\"string\"}],\"type\":\"string\"}", "'type' next to 'anyOf'");
    refused("{\"type\":\"string\"", "not valid JSON");
    refused("{\"minLength\":-1}", "'minLength' must be a non-negative integer");
    refused("3", "a schema must be an object or a boolean");
}

static void test_limits(void **state) {
    (void)state;
    /* 200 nested objects: the schema nesting limit */
    char *deep = malloc(1 << 16);
    size_t k = 0;
    for (int i = 0; i < 200; i++) k += (size_t)sprintf(deep + k, "{\"properties\":{\"a\":");
    k += (size_t)sprintf(deep + k, "{}");
    for (int i = 0; i < 200; i++) k += (size_t)sprintf(deep + k, "}}");
    refused(deep, "nested deeper than 64");
    /* 65 properties */
    k = (size_t)sprintf(deep, "{\"properties\":{");
    for (int i = 0; i < 65; i++) k += (size_t)sprintf(deep + k, "%s\"p%d\":{}", i ? "," : "", i);
    sprintf(deep + k, "}}");
    refused(deep, "more than 64 properties");
    free(deep);
    /* a recursive schema compiles and stops nesting at the run-time depth limit */
    sl_grammar *g;
    sl_error err;
    const char *rec = "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}";
    assert_int_equal(sl_grammar_from_schema_text(rec, strlen(rec), &g, &err), 0);
    assert_true(accepts(g, "[[],[[]]]"));
    char br[200];
    memset(br, '[', 100);
    br[100] = 0;
    sl_grammar_matcher *m;
    assert_int_equal(sl_grammar_matcher_new(g, &m, &err), 0);
    assert_false(sl_grammar_accept_bytes(m, br, 100));
    sl_grammar_matcher_free(m);
    sl_grammar_free(g);
}

static void test_finished(void **state) {
    (void)state;
    sl_grammar *g;
    sl_error err;
    assert_int_equal(sl_grammar_json_object(&g, &err), 0);
    sl_grammar_matcher *m;
    assert_int_equal(sl_grammar_matcher_new(g, &m, &err), 0);
    assert_true(sl_grammar_accept_bytes(m, "{\"a\":[1", 7));
    assert_false(sl_grammar_complete(m));
    assert_false(sl_grammar_accept_bytes(m, "}", 1));   /* rejected bytes leave the state as it was */
    assert_true(sl_grammar_accept_bytes(m, "]}", 2));
    assert_true(sl_grammar_complete(m) && sl_grammar_finished(m));
    sl_grammar_matcher_free(m);
    sl_grammar_free(g);
    /* a number at the root is complete but may go on */
    assert_int_equal(sl_grammar_from_schema_text("{\"type\":\"integer\"}", 18, &g, &err), 0);
    assert_int_equal(sl_grammar_matcher_new(g, &m, &err), 0);
    assert_true(sl_grammar_accept_bytes(m, "12", 2));
    assert_true(sl_grammar_complete(m) && !sl_grammar_finished(m));
    sl_grammar_matcher_free(m);
    sl_grammar_free(g);
    /* a key prefix that only names properties already given is a dead end */
    const char *two = "{\"properties\":{\"ab\":{},\"ac\":{}},\"additionalProperties\":false}";
    assert_int_equal(sl_grammar_from_schema_text(two, strlen(two), &g, &err), 0);
    assert_int_equal(sl_grammar_matcher_new(g, &m, &err), 0);
    assert_true(sl_grammar_accept_bytes(m, "{\"ab\":1,\"a", 10));
    assert_false(sl_grammar_accept_bytes(m, "b", 1));
    assert_true(sl_grammar_accept_bytes(m, "c\":2}", 5));
    sl_grammar_matcher_free(m);
    sl_grammar_free(g);
}

/* mask == direct feed, for every token, after each prefix of texts */
static void check_mask(const sl_grammar *g, const sl_grammar_vocab *v, const char *text) {
    int V = sl_grammar_vocab_size(v);
    uint8_t *allowed = malloc((size_t)V);
    sl_grammar_matcher *m, *probe;
    sl_error err;
    assert_int_equal(sl_grammar_matcher_new(g, &m, &err), 0);
    assert_int_equal(sl_grammar_matcher_new(g, &probe, &err), 0);
    for (size_t cut = 0; cut <= strlen(text); cut++) {
        sl_grammar_matcher_reset(m);
        assert_true(sl_grammar_accept_bytes(m, text, cut));
        int n = sl_grammar_mask(m, v, allowed), count = 0;
        for (int id = 0; id < V; id++) {
            sl_grammar_matcher_reset(probe);
            bool ok = sl_grammar_accept_bytes(probe, text, cut) && sl_grammar_accept_token(probe, v, id);
            if (ok != (allowed[id] != 0)) fail_msg("'%.*s' + token %d: mask %d, feed %d", (int)cut, text, id, allowed[id], ok);
            count += ok;
        }
        assert_int_equal(n, count);
        assert_true(n > 0 || sl_grammar_finished(m));   /* a live prefix always has a way on */
    }
    sl_grammar_matcher_free(m);
    sl_grammar_matcher_free(probe);
    free(allowed);
}

static void test_mask(void **state) {
    (void)state;
    sl_tokenizer *t;
    sl_error err;
    if (sl_tok_load(src_path("models/demo"), &t, &err)) fail_msg("%s", err.msg);
    sl_grammar_vocab *v;
    assert_int_equal(sl_grammar_vocab_new(t, (int)sl_tok_vocab_size(t) + 3, &v, &err), 0);
    const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":6},\"tags\":{\"type\":"
                         "\"array\",\"items\":{\"enum\":[\"x\",\"yz\"]},\"maxItems\":2},\"n\":{\"type\":\"number\"}},"
                         "\"required\":[\"name\"],\"additionalProperties\":false}";
    sl_grammar *g;
    assert_int_equal(sl_grammar_from_schema_text(schema, strlen(schema), &g, &err), 0);
    check_mask(g, v, "{\"name\": \"h\\u00e9 \xc3\xa9\",\"tags\":[\"yz\"], \"n\":-1.5e3}");
    sl_grammar_free(g);
    assert_int_equal(sl_grammar_json_object(&g, &err), 0);
    check_mask(g, v, "{\n  \"k\": [true, null, \"\xe6\x97\xa5\"]}");
    sl_grammar_free(g);
    sl_grammar_vocab_free(v);
    sl_tok_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),  cmocka_unit_test(test_errors), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_finished), cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
