/*
 * fuzz_pyjson.c — libFuzzer target for the Python-exact JSON parser/printer
 * (src/convert/pyjson.c): parse, print, re-parse, print again; the two
 * printings must be identical (printing is a fixed point).
 */
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pj *v = NULL;
    if (pj_parse((const char *)data, size, "fuzz", &v, NULL)) return 0;
    size_t n1 = 0, n2 = 0;
    char *a = pj_dump(v, 4, &n1);
    pj *w = NULL;
    if (a && pj_parse(a, n1, "again", &w, NULL) == 0) {
        char *b = pj_dump(w, 4, &n2);
        if (b && (n1 != n2 || memcmp(a, b, n1))) abort();
        free(b);
        pj_free(w);
    }
    free(a);
    pj_free(v);
    return 0;
}
