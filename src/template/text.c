/*
 * text.c — Python str operations the chat-template builtins share: case
 * mapping (lower/upper/capitalize, jinja2's title filter, str.title()),
 * strip with optional character set, replace with count, split/rsplit
 * with Python's whitespace and separator rules, substring search.
 *
 * Invariants: strings are UTF-8 with explicit lengths; results are new
 * arena strings or slices of the input; case mapping covers Latin (Basic,
 * Latin-1, Extended-A), Greek and Cyrillic and leaves other scripts as is.
 */
#include <string.h>

#include "template/tmpl_impl.h"

#define FAIL(line, ...) tp_fail_arena(c->a, line, SL_EINVAL, __VA_ARGS__)
#define UNSUP(line, ...) tp_fail_arena(c->a, line, SL_EUNSUPPORTED, __VA_ARGS__)

static const tp_val *mkstr(tp_ctx *c, tp_buf *b) { return tp_str_ref(c->a, b->p ? b->p : "", b->n); }

/* Case mapping for Latin (Basic, Latin-1, Extended-A), Greek and Cyrillic; other scripts are caseless here. */
static uint32_t cp_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
    if (c == 0xff) return 0x178;
    if (c == 0xb5) return 0x39c;
    if (c >= 0x100 && c <= 0x17f) {
        bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
        if (c == 0x131) return 'I';
        if (c == 0x138 || c == 0x149 || c == 0x17f) return c == 0x17f ? 'S' : c;
        return odd_upper ? ((c & 1) ? c : c - 1) : ((c & 1) ? c - 1 : c);
    }
    if (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) return c - 32;
    if (c == 0x3c2) return 0x3a3;
    if (c >= 0x430 && c <= 0x44f) return c - 32;
    if (c >= 0x450 && c <= 0x45f) return c - 80;
    return c;
}

static uint32_t cp_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
    if (c == 0x178) return 0xff;
    if (c >= 0x100 && c <= 0x17f) {
        bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f || c == 0x178) return c;
        return odd_upper ? ((c & 1) ? c + 1 : c) : ((c & 1) ? c : c + 1);
    }
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;
    if (c >= 0x410 && c <= 0x42f) return c + 32;
    if (c >= 0x400 && c <= 0x40f) return c + 80;
    return c;
}

static bool cp_cased(uint32_t c) { return cp_upper(c) != c || cp_lower(c) != c || c == 0xdf; }

static void put_upper(tp_ctx *c, tp_buf *b, uint32_t cp) {
    if (cp == 0xdf) tp_buf_puts(c->a, b, "SS");   /* Python: 'ß'.upper() == 'SS' */
    else tp_put_cp(c->a, b, cp_upper(cp));
}

/* mode 0 lower, 1 upper, 2 capitalize, 3 jinja2's title filter, 4 str.title() */
const tp_val *tp_casemap(tp_ctx *c, const tp_val *s, int mode) {
    tp_buf b = {0};
    const char *p = s->u.s.s;
    size_t n = s->u.s.n;
    bool start = true, prev_cased = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t j = tp_utf8_next(p, n, i, &cp);
        bool up;
        if (mode == 0) up = false;
        else if (mode == 1) up = true;
        else if (mode == 2) up = i == 0;
        else if (mode == 3) {
            bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || tp_py_isspace(cp);
            up = start && !sep;
            start = sep;
        } else {
            up = !prev_cased;
            prev_cased = cp_cased(cp);
        }
        if (cp_upper(cp) == cp && cp_lower(cp) == cp && cp != 0xdf) tp_buf_put(c->a, &b, p + i, j - i);
        else if (up) put_upper(c, &b, cp);
        else tp_put_cp(c->a, &b, cp_lower(cp));
        i = j;
    }
    return mkstr(c, &b);
}

static bool in_chars(uint32_t cp, const tp_val *chars) {
    if (!chars) return tp_py_isspace(cp);
    for (size_t i = 0; i < chars->u.s.n;) {
        uint32_t d;
        i = tp_utf8_next(chars->u.s.s, chars->u.s.n, i, &d);
        if (d == cp) return true;
    }
    return false;
}

const tp_val *tp_strip(tp_ctx *c, const tp_val *s, const tp_val *chars, bool left, bool right) {
    const char *p = s->u.s.s;
    size_t lo = 0, hi = s->u.s.n;
    if (left)
        while (lo < hi) {
            uint32_t cp;
            size_t j = tp_utf8_next(p, hi, lo, &cp);
            if (!in_chars(cp, chars)) break;
            lo = j;
        }
    if (right)
        while (hi > lo) {
            size_t st = hi - 1;
            while (st > lo && ((unsigned char)p[st] & 0xc0) == 0x80) st--;
            uint32_t cp;
            tp_utf8_next(p, hi, st, &cp);
            if (!in_chars(cp, chars)) break;
            hi = st;
        }
    return tp_str_ref(c->a, p + lo, hi - lo);
}

const char *tp_find_sub(const char *s, size_t n, const char *t, size_t m) {
    if (m == 0) return s;
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, t, m)) return s + i;
    return NULL;
}

const tp_val *tp_replace(tp_ctx *c, const tp_val *s, const tp_val *old, const tp_val *new, int64_t count) {
    tp_buf b = {0};
    const char *p = s->u.s.s, *end = p + s->u.s.n;
    if (old->u.s.n == 0) {
        int64_t k = 0;
        for (size_t i = 0; i <= s->u.s.n;) {
            if (count < 0 || k < count) { tp_buf_put(c->a, &b, new->u.s.s, new->u.s.n); k++; }
            if (i == s->u.s.n) break;
            size_t j = tp_utf8_next(p, s->u.s.n, i, NULL);
            tp_buf_put(c->a, &b, p + i, j - i);
            i = j;
        }
        return mkstr(c, &b);
    }
    int64_t k = 0;
    while (p < end) {
        const char *q = (count < 0 || k < count) ? tp_find_sub(p, (size_t)(end - p), old->u.s.s, old->u.s.n) : NULL;
        if (!q) break;
        tp_buf_put(c->a, &b, p, (size_t)(q - p));
        tp_buf_put(c->a, &b, new->u.s.s, new->u.s.n);
        p = q + old->u.s.n;
        k++;
    }
    tp_buf_put(c->a, &b, p, (size_t)(end - p));
    return mkstr(c, &b);
}

const tp_val *tp_split(tp_ctx *c, int line, const tp_val *s, const tp_val *sep, int64_t maxsplit, bool right) {
    tp_list *l = tp_list_new(c->a, 0);
    const char *p = s->u.s.s;
    size_t n = s->u.s.n;
    if (sep && sep->kind != TV_NONE) {
        tp_need_str(c, line, sep, "separator");
        if (sep->u.s.n == 0) FAIL(line, "empty separator");
        size_t m = sep->u.s.n;
        if (!right) {
            size_t i = 0;
            int64_t k = 0;
            for (;;) {
                const char *q = (maxsplit < 0 || k < maxsplit) ? tp_find_sub(p + i, n - i, sep->u.s.s, m) : NULL;
                if (!q) break;
                tp_list_push(c->a, l, tp_str_ref(c->a, p + i, (size_t)(q - p) - i));
                i = (size_t)(q - p) + m;
                k++;
            }
            tp_list_push(c->a, l, tp_str_ref(c->a, p + i, n - i));
            return tp_list_val(c->a, l);
        }
        /* rsplit: collect from the right, then reverse */
        tp_list *r = tp_list_new(c->a, 0);
        size_t hi = n;
        int64_t k = 0;
        while (maxsplit < 0 || k < maxsplit) {
            size_t found = SIZE_MAX;
            for (size_t i = hi >= m ? hi - m + 1 : 0; i-- > 0;)
                if (!memcmp(p + i, sep->u.s.s, m)) { found = i; break; }
            if (found == SIZE_MAX) break;
            tp_list_push(c->a, r, tp_str_ref(c->a, p + found + m, hi - found - m));
            hi = found;
            k++;
        }
        tp_list_push(c->a, r, tp_str_ref(c->a, p, hi));
        for (size_t i = r->n; i-- > 0;) tp_list_push(c->a, l, r->v[i]);
        return tp_list_val(c->a, l);
    }
    if (right && maxsplit >= 0) UNSUP(line, "unsupported construct: rsplit() on whitespace with maxsplit");
    size_t i = 0;
    int64_t k = 0;
    for (;;) {
        while (i < n) {
            uint32_t cp;
            size_t j = tp_utf8_next(p, n, i, &cp);
            if (!tp_py_isspace(cp)) break;
            i = j;
        }
        if (i >= n) break;
        if (maxsplit >= 0 && k >= maxsplit) {
            size_t hi = n;
            tp_list_push(c->a, l, tp_strip(c, tp_str_ref(c->a, p + i, hi - i), NULL, false, true));
            break;
        }
        size_t st = i;
        while (i < n) {
            uint32_t cp;
            size_t j = tp_utf8_next(p, n, i, &cp);
            if (tp_py_isspace(cp)) break;
            i = j;
        }
        tp_list_push(c->a, l, tp_str_ref(c->a, p + st, i - st));
        k++;
    }
    return tp_list_val(c->a, l);
}
