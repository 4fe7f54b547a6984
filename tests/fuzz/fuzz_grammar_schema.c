/*
 * fuzz_grammar_schema.c — libFuzzer target for the JSON Schema compiler and
 * recognizer of silica/grammar.h: the input up to its first NUL is a
 * schema (any JSON text), the rest is output fed to a matcher byte by byte.
 * Every schema compiles or is refused with a one-line message; the matcher
 * never crashes, a rejected byte leaves its verdicts unchanged, and nothing
 * leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "silica/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    sl_grammar *g = NULL;
    sl_error err;
    sl_error_clear(&err);
    if (sl_grammar_from_schema_text((const char *)data, slen, &g, &err)) {
        if (g || !err.msg[0] || strchr(err.msg, '\n')) abort();
        return 0;
    }
    sl_grammar_matcher *m;
    if (sl_grammar_matcher_new(g, &m, &err)) abort();
    for (size_t i = slen + 1; i < size; i++) {
        bool was = sl_grammar_complete(m);
        if (!sl_grammar_accept_bytes(m, (const char *)data + i, 1) && sl_grammar_complete(m) != was) abort();
        if (sl_grammar_finished(m) && !sl_grammar_complete(m)) abort();
    }
    sl_grammar_matcher_free(m);
    sl_grammar_free(g);
    return 0;
}
