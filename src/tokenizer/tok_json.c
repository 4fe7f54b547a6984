/*
 * tok_json.c — fast path for the two huge members of tokenizer.json,
 * model.vocab and model.merges (up to ~1M entries): a strict, allocation-
 * free JSON scanner locates them, the rest of the document (small) goes to
 * cJSON with both members blanked to {} / [], and the BPE loader scans the
 * members directly instead of building a cJSON node per entry.
 *
 * Invariants: the scanner never reads past `end`; strings are decoded with
 * every JSON escape (surrogate pairs joined; a lone surrogate is an error,
 * as serde_json reports it); nesting is tracked with a counter, no
 * recursion, so deep input cannot exhaust the stack.
 */
#include <stdlib.h>
#include <string.h>

#include "silica/utf8.h"
#include "tokenizer/tok_impl.h"

static void skip_ws(tok_jscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

bool tok_jscan_char(tok_jscan *s, char c) {
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

bool tok_jscan_peek(tok_jscan *s, char c) {
    skip_ws(s);
    return s->p < s->end && *s->p == c;
}

int tok_jscan_string(tok_jscan *s, tok_buf *out) {
    skip_ws(s);
    const char *stop, *why;
    if (sl_json_string_decode(s->p, s->end, SL_JSON_SURROGATE_ERROR, false, &out->p, &out->n, &out->cap, &stop, &why))
        return -1;
    s->p = stop;
    return 0;
}

int tok_jscan_uint(tok_jscan *s, uint64_t max, uint64_t *v) {
    skip_ws(s);
    const char *p = s->p;
    if (p >= s->end || *p < '0' || *p > '9') return -1;
    uint64_t x = 0;
    while (p < s->end && *p >= '0' && *p <= '9') {
        x = x * 10 + (uint64_t)(*p - '0');
        if (x > max) return -1;
        p++;
    }
    if (p < s->end && (*p == '.' || *p == 'e' || *p == 'E')) return -1;
    s->p = p;
    *v = x;
    return 0;
}

/* Skip one raw string (no decoding). */
static int skip_string(tok_jscan *s) {
    const char *p = s->p + 1;
    while (p < s->end) {
        if (*p == '\\') {
            p += 2;
            continue;
        }
        if (*p == '"') {
            s->p = p + 1;
            return 0;
        }
        p++;
    }
    return -1;
}

/* Skip one value of any kind. */
static int skip_value(tok_jscan *s) {
    skip_ws(s);
    if (s->p >= s->end) return -1;
    char c = *s->p;
    if (c == '"') return skip_string(s);
    if (c == '{' || c == '[') {
        size_t depth = 0;
        while (s->p < s->end) {
            c = *s->p;
            if (c == '"') {
                if (skip_string(s)) return -1;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    s->p++;
                    return 0;
                }
            }
            s->p++;
        }
        return -1;
    }
    const char *st = s->p;
    while (s->p < s->end && !strchr(",}] \t\r\n", *s->p)) s->p++;
    return s->p > st ? 0 : -1;
}

/* Is the raw key at s (a string token) equal to `name`?  Advances past it. */
static int key_is(tok_jscan *s, const char *name, bool *eq) {
    skip_ws(s);
    if (s->p >= s->end || *s->p != '"') return -1;
    const char *st = s->p + 1;
    if (skip_string(s)) return -1;
    size_t l = (size_t)(s->p - 1 - st), nl = strlen(name);
    *eq = l == nl && !memcmp(st, name, l);
    return 0;
}

int tok_json_split(const char *json, size_t n, tok_span *vocab, tok_span *merges, char **rest, size_t *err_off) {
    tok_jscan s = {json, json + n};
    memset(vocab, 0, sizeof *vocab);
    memset(merges, 0, sizeof *merges);
    *rest = NULL;
    if (!tok_jscan_char(&s, '{')) goto bad;
    if (!tok_jscan_char(&s, '}')) {
        for (;;) {
            bool is_model;
            if (key_is(&s, "model", &is_model) || !tok_jscan_char(&s, ':')) goto bad;
            if (is_model && tok_jscan_peek(&s, '{') && !vocab->p) {
                s.p++;
                if (!tok_jscan_char(&s, '}')) {
                    for (;;) {
                        bool is_v, is_m;
                        tok_jscan k = s;
                        if (key_is(&s, "vocab", &is_v)) goto bad;
                        s = k;
                        if (key_is(&s, "merges", &is_m) || !tok_jscan_char(&s, ':')) goto bad;
                        skip_ws(&s);
                        const char *vs = s.p;
                        if (skip_value(&s)) goto bad;
                        tok_span *sp = is_v ? vocab : is_m ? merges : NULL;
                        if (sp && !sp->p) {
                            sp->p = vs;
                            sp->n = (size_t)(s.p - vs);
                        }
                        if (tok_jscan_char(&s, '}')) break;
                        if (!tok_jscan_char(&s, ',')) goto bad;
                    }
                }
            } else if (skip_value(&s)) goto bad;
            if (tok_jscan_char(&s, '}')) break;
            if (!tok_jscan_char(&s, ',')) goto bad;
        }
    }
    skip_ws(&s);
    if (s.p != s.end) goto bad;
    char *r = malloc(n + 1);
    if (!r) return SL_ENOMEM;
    memcpy(r, json, n);
    r[n] = 0;
    tok_span *sps[2] = {vocab, merges};
    for (int i = 0; i < 2; i++) {
        tok_span *sp = sps[i];
        if (!sp->p || (sp->p[0] != '{' && sp->p[0] != '[')) continue; /* wrong type: cJSON reports it */
        char *d = r + (sp->p - json);
        d[0] = sp->p[0];
        memset(d + 1, ' ', sp->n - 2);
        d[sp->n - 1] = sp->p[0] == '{' ? '}' : ']';
    }
    *rest = r;
    return 0;
bad:
    *err_off = (size_t)(s.p - json);
    return SL_EINVAL;
}
