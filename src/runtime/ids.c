/*
 * ids.c — parsing token-id lists given on the command line ("1,2,3").
 * Invariant: every item is a decimal integer in [0, 2^31); the message
 * names the offending item and its index.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "silica/runtime.h"

int sl_parse_ids(const char *s, int32_t **ids, int *n, sl_error *err) {
    *ids = NULL;
    *n = 0;
    size_t cap = 16, cnt = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return sl_errorf(err, SL_ENOMEM, "out of memory");
    const char *q = s;
    for (;;) {
        while (*q == ' ' || *q == ',' || *q == '\t' || *q == '\n') q++;
        if (!*q) break;
        if (!isdigit((unsigned char)*q)) {
            free(v);
            return sl_errorf(err, SL_EINVAL, "--ids: item %zu ('%.20s') is not a non-negative integer", cnt, q);
        }
        errno = 0;
        char *end;
        long x = strtol(q, &end, 10);
        if (errno || x > INT32_MAX || (*end && *end != ',' && *end != ' ' && *end != '\t' && *end != '\n')) {
            free(v);
            return sl_errorf(err, SL_EINVAL, "--ids: item %zu ('%.20s') is not a token id", cnt, q);
        }
        if (cnt == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) { free(v); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
            v = nv;
        }
        v[cnt++] = (int32_t)x;
        q = end;
    }
    if (cnt == 0) {
        free(v);
        return sl_errorf(err, SL_EINVAL, "--ids: no token ids given");
    }
    if (cnt > INT32_MAX) { free(v); return sl_errorf(err, SL_EINVAL, "--ids: too many ids"); }
    *ids = v;
    *n = (int)cnt;
    return 0;
}
