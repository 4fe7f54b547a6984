/*
 * b64.c — base64 (RFC 4648, standard alphabet, '=' padding) for the logits
 * of the adapter protocol.  Invariant: decoding accepts only canonical
 * padded input of exactly the expected length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare_impl.h"

static const char k_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sl_cmp_b64_encode(const void *data, size_t n) {
    const uint8_t *p = data;
    char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
    if (!s) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = k_alpha[v >> 18], *o++ = k_alpha[(v >> 12) & 63], *o++ = k_alpha[(v >> 6) & 63], *o++ = k_alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = k_alpha[v >> 18], *o++ = k_alpha[(v >> 12) & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = k_alpha[v >> 18], *o++ = k_alpha[(v >> 12) & 63], *o++ = k_alpha[(v >> 6) & 63], *o++ = '=';
    }
    *o = 0;
    return s;
}

static int val(char c) {
    const char *p = c ? strchr(k_alpha, c) : NULL;
    return p ? (int)(p - k_alpha) : -1;
}

int sl_cmp_b64_decode(const char *s, void **out, size_t want, sl_error *err) {
    *out = NULL;
    size_t len = strlen(s);
    if (len != (want + 2) / 3 * 4)
        return sl_errorf(err, SL_EINVAL, "%zu base64 characters, expected %zu (%zu bytes)", len,
                         (want + 2) / 3 * 4, want);
    uint8_t *b = malloc(want ? want : 1);
    if (!b) return sl_errorf(err, SL_ENOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) v[k] = s[i + k] == '=' && i + 4 == len && k >= 2 ? 0 : val(s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
            free(b);
            return sl_errorf(err, SL_EINVAL, "not base64 near character %zu", i);
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t t[3] = {(uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
        for (int k = 0; k < 3 && o < want; k++) b[o++] = t[k];
    }
    *out = b;
    return 0;
}
