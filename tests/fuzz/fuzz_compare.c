/*
 * fuzz_compare.c — libFuzzer target for the adapter protocol's parsers
 * (src/compare/): the first input byte picks silica's request loop
 * sl_cmp_serve (even: the rest is the request lines; answers go to
 * /dev/null) or the logits' base64 decoder (odd: the rest is the text, the
 * expected length is derived from it).
 */
#include "fuzz_common.h"   /* first: it defines _GNU_SOURCE */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        char *s = malloc(size);
        if (!s) return 0;
        memcpy(s, data + 1, size - 1);
        s[size - 1] = 0;
        size_t len = strlen(s), want = len / 4 * 3 - (data[0] >> 1 & 3) % 3;
        void *out = NULL;
        sl_error err;
        if (sl_cmp_b64_decode(s, &out, len >= 4 ? want : 0, &err) == 0) free(out);
        free(s);
        return 0;
    }
    FILE *in = fmemopen((void *)(data + 1), size - 1, "r"), *out = fopen("/dev/null", "w");
    if (in && out) (void)sl_cmp_serve(in, out);
    if (in) fclose(in);
    if (out) fclose(out);
    return 0;
}
