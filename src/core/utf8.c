/*
 * utf8.c — the UTF-8 encoder and the JSON string-literal decoder (see
 * silica/utf8.h for the contract).
 *
 * Invariants: plain runs are copied in one piece; an escape is decoded whole
 * or not at all; a surrogate pair is joined only when the second escape is a
 * well-formed low surrogate, otherwise the first is handled by the caller's
 * lone-surrogate rule and the second escape is decoded on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "silica/error.h"
#include "silica/utf8.h"

int sl_utf8_encode(uint32_t cp, char out[4]) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

typedef struct outbuf {
    char **p;
    size_t *n, *cap;
} outbuf;

/* append n bytes, keeping one for the terminator; -1 when out of memory */
static int put(outbuf *b, const void *d, size_t n) {
    if (*b->n + n + 1 > *b->cap) {
        size_t nc = (*b->cap + n + 1) * 2;
        char *np = realloc(*b->p, nc);
        if (!np) return -1;
        *b->p = np;
        *b->cap = nc;
    }
    if (n) memcpy(*b->p + *b->n, d, n);
    *b->n += n;
    (*b->p)[*b->n] = 0;
    return 0;
}

/* four hex digits at p (p + 4 <= end checked by the caller) */
static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

/* length of the strict UTF-8 sequence led by p[0] (>= 0x80) within end, 0 if invalid */
static size_t utf8_strict_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    int k = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
    if (k < 0 || end - (p + 1) < k) return 0;
    unsigned c1 = p[1];
    bool ok = (c1 & 0xC0) == 0x80 && !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0) &&
              !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    for (int i = 2; ok && i <= k; i++) ok = (p[i] & 0xC0) == 0x80;
    return ok ? (size_t)k + 1 : 0;
}

/* the escape whose backslash is at q: *cp and the bytes it spans (*span), or
 * SL_EINVAL with *stop and *why set when it is malformed */
static int decode_escape(const char *q, const char *end, sl_json_lone_surrogate lone, uint32_t *cp, size_t *span,
                         const char **stop, const char **why) {
    if (end - q < 2) { *stop = end, *why = "unterminated string"; return SL_EINVAL; }
    *span = 2;
    switch (q[1]) {
    case '"': *cp = '"'; return 0;
    case '\\': *cp = '\\'; return 0;
    case '/': *cp = '/'; return 0;
    case 'b': *cp = '\b'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'u': break;
    default: *stop = q + 2, *why = "bad escape"; return SL_EINVAL;
    }
    uint32_t v, w;
    if (end - q < 6 || hex4(q + 2, &v)) { *stop = q + 2, *why = "bad \\u escape"; return SL_EINVAL; }
    *span = 6;
    if (v >= 0xD800 && v < 0xDC00 && end - q >= 12 && q[6] == '\\' && q[7] == 'u' && !hex4(q + 8, &w) && w >= 0xDC00 &&
        w < 0xE000) {
        *cp = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
        *span = 12;
        return 0;
    }
    if (v >= 0xD800 && v < 0xE000) {
        if (lone == SL_JSON_SURROGATE_ERROR) { *stop = q + 6, *why = "lone surrogate"; return SL_EINVAL; }
        if (lone == SL_JSON_SURROGATE_FFFD) v = 0xFFFD;
    }
    *cp = v;
    return 0;
}

int sl_json_string_decode(const char *s, const char *end, sl_json_lone_surrogate lone, bool strict_utf8, char **out,
                          size_t *olen, size_t *ocap, const char **stop, const char **why) {
    outbuf b = {out, olen, ocap};
    if (s >= end || *s != '"') { *stop = s, *why = "expected a string"; return SL_EINVAL; }
    if (put(&b, "", 0)) { *stop = s, *why = "out of memory"; return SL_ENOMEM; }
    const char *p = s + 1;
    for (;;) {
        const char *q = p;
        while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20 && (!strict_utf8 || (unsigned char)*q < 0x80))
            q++;
        if (q > p && put(&b, p, (size_t)(q - p))) { *stop = q, *why = "out of memory"; return SL_ENOMEM; }
        if (q >= end) { *stop = end, *why = "unterminated string"; return SL_EINVAL; }
        if (*q == '"') { *stop = q + 1; return 0; }
        if ((unsigned char)*q < 0x20) { *stop = q + 1, *why = "control character in string"; return SL_EINVAL; }
        if (*q != '\\') {   /* strict_utf8: a sequence of 2..4 bytes */
            size_t k = utf8_strict_len((const unsigned char *)q, (const unsigned char *)end);
            if (!k) { *stop = q + 1, *why = "invalid UTF-8"; return SL_EINVAL; }
            if (put(&b, q, k)) { *stop = q, *why = "out of memory"; return SL_ENOMEM; }
            p = q + k;
            continue;
        }
        uint32_t cp;
        size_t span;
        int rc = decode_escape(q, end, lone, &cp, &span, stop, why);
        if (rc) return rc;
        char u[4];
        if (put(&b, u, (size_t)sl_utf8_encode(cp, u))) { *stop = q, *why = "out of memory"; return SL_ENOMEM; }
        p = q + span;
    }
}
