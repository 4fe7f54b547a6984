/*
 * test_tokenizer.c — cmocka unit tests of the tokenizer's C API on tiny
 * in-memory tokenizer.json files: encode/decode round trips, UTF-8 repair,
 * token strings, streaming decode never splitting a character, error
 * lines for bad ids and unsupported components.  (Exactness against HF is
 * tests/py/test_tokenizer.py's job.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "silica/tokenizer.h"

/* byte-level: every byte is a token (vocab = the 256 GPT-2 chars) plus merges "a b", "Ġ a" */
static char *bytelevel_json(void) {
    static char buf[16384];
    size_t k = 0;
    k += (size_t)snprintf(buf + k, sizeof buf - k,
                          "{\"added_tokens\":[{\"id\":259,\"content\":\"<s>\",\"special\":true,\"normalized\":false}],"
                          "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
                          "\"decoder\":{\"type\":\"ByteLevel\"},"
                          "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},"
                          "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[259],"
                          "\"tokens\":[\"<s>\"]}}},"
                          "\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (int b = 0; b < 256; b++) {
        /* GPT-2 byte -> code point */
        int cp;
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) cp = b;
        else if (b < 33) cp = 256 + b;
        else if (b < 161) cp = 256 + 33 + (b - 127);
        else cp = 256 + 67;
        k += (size_t)snprintf(buf + k, sizeof buf - k, "\"\\u%04x\":%d,", cp, b);
    }
    k += (size_t)snprintf(buf + k, sizeof buf - k, "\"ab\":256,\"\\u0120a\":257,\"\\u0120ab\":258},"
                                                   "\"merges\":[\"a b\",\"\\u0120 a\",[\"\\u0120a\",\"b\"]]}}");
    return buf;
}

static sl_tokenizer *load(const char *j) {
    sl_tokenizer *t = NULL;
    sl_error err = {0};
    int rc = sl_tok_load_json(j, strlen(j), "unit.json", &t, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return t;
}

static void test_encode_decode(void **state) {
    (void)state;
    sl_tokenizer *t = load(bytelevel_json());
    sl_tok_ids ids = {0};
    sl_error err;
    assert_int_equal(sl_tok_encode(t, "ab ab", 5, 0, &ids, &err), 0);
    /* "ab" + " ab": rank 0 (a b) wins over rank 1 (Ġ a), so " ab" -> Ġ, ab */
    assert_int_equal(ids.n, 3);
    assert_int_equal(ids.ids[0], 256);
    assert_int_equal(ids.ids[1], ' ');
    assert_int_equal(ids.ids[2], 256);
    ids.n = 0;
    assert_int_equal(sl_tok_encode(t, " a", 2, 0, &ids, &err), 0);
    assert_int_equal(ids.n, 1);
    assert_int_equal(ids.ids[0], 257);
    ids.n = 0;
    ids.n = 0;
    sl_tok_strs strs = {0};
    assert_int_equal(sl_tok_encode_strs(t, "<s>ab", 5, SL_TOK_ADD_SPECIAL, &ids, &strs, &err), 0);
    assert_int_equal(ids.n, 3); /* template <s>, then the added <s>, then ab */
    assert_int_equal(strs.n, 3);
    assert_string_equal(strs.data + strs.off[2], "ab");
    char *text;
    size_t tl;
    assert_int_equal(sl_tok_decode(t, ids.ids, ids.n, SL_TOK_SKIP_SPECIAL, &text, &tl, &err), 0);
    assert_string_equal(text, "ab");
    free(text);
    /* special as text: "<s>" becomes bytes */
    ids.n = 0;
    assert_int_equal(sl_tok_encode(t, "<s>", 3, SL_TOK_SPECIAL_AS_TEXT, &ids, &err), 0);
    assert_int_equal(ids.n, 3);
    assert_int_equal(ids.ids[0], '<');
    sl_tok_strs_free(&strs);
    sl_tok_ids_free(&ids);
    sl_tok_free(t);
}

static void test_invalid_utf8_is_repaired(void **state) {
    (void)state;
    sl_tokenizer *t = load(bytelevel_json());
    sl_tok_ids a = {0}, b = {0};
    sl_error err;
    assert_int_equal(sl_tok_encode(t, "x\xff\xe2\x82y", 5, 0, &a, &err), 0);
    assert_int_equal(sl_tok_encode(t, "x\xef\xbf\xbd\xef\xbf\xbdy", 8, 0, &b, &err), 0);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ids, b.ids, a.n * sizeof *a.ids);
    sl_tok_ids_free(&a);
    sl_tok_ids_free(&b);
    sl_tok_free(t);
}

static void test_stream_whole_chars(void **state) {
    (void)state;
    sl_tokenizer *t = load(bytelevel_json());
    const char *s = "h\xc3\xa9 \xf0\x9f\x98\x80!";
    sl_tok_ids ids = {0};
    sl_error err;
    assert_int_equal(sl_tok_encode(t, s, strlen(s), 0, &ids, &err), 0);
    sl_tok_stream *st;
    assert_int_equal(sl_tok_stream_new(t, 0, &st, &err), 0);
    char out[64] = {0};
    size_t n = 0;
    for (size_t i = 0; i < ids.n; i++) {
        const char *c;
        size_t cl;
        assert_int_equal(sl_tok_stream_step(st, ids.ids[i], &c, &cl, &err), 0);
        if (cl) assert_true(((unsigned char)c[0] & 0xC0) != 0x80); /* never starts mid-character */
        memcpy(out + n, c, cl);
        n += cl;
    }
    assert_string_equal(out, s);
    sl_tok_stream_free(st);
    sl_tok_ids_free(&ids);
    sl_tok_free(t);
}

static void test_errors(void **state) {
    (void)state;
    sl_tokenizer *t = load(bytelevel_json());
    uint32_t bad[] = {1, 5000};
    char *text = NULL;
    size_t tl;
    sl_error err = {0};
    assert_int_not_equal(sl_tok_decode(t, bad, 2, 0, &text, &tl, &err), 0);
    assert_non_null(strstr(err.msg, "token id 5000"));
    assert_int_equal(sl_tok_token_to_id(t, "<s>", 3), 259);
    assert_int_equal(sl_tok_token_to_id(t, "nope", 4), -1);
    assert_true(sl_tok_is_special(t, 259));
    assert_int_equal(sl_tok_vocab_size(t), 260);
    sl_tok_free(t);
    const char *uni = "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}";
    sl_tokenizer *u = NULL;
    assert_int_not_equal(sl_tok_load_json(uni, strlen(uni), "u.json", &u, &err), 0);
    assert_non_null(strstr(err.msg, "unsupported model \"Unigram\""));
    assert_null(u);
    const char *trunc = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,";
    assert_int_not_equal(sl_tok_load_json(trunc, strlen(trunc), "t.json", &u, &err), 0);
    assert_non_null(strstr(err.msg, "t.json"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_invalid_utf8_is_repaired),
        cmocka_unit_test(test_stream_whole_chars),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
