/*
 * value.c — the chat-template interpreter's memory and values: the arena
 * (one per compile / render, byte-capped, longjmp on exhaustion), growable
 * buffers, the value constructors, Python truthiness / equality / ordering,
 * Python str() and repr(), json.dumps as transformers' tojson calls it, and
 * cJSON -> value conversion.
 *
 * Invariants: every allocation goes through tp_alloc; every size computation
 * that could overflow is checked before allocating; formatting follows
 * CPython (float repr is the shortest round-trip form, str quoting as repr).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "silica/utf8.h"
#include "template/tmpl_impl.h"

/* ---------------------------------------------------------------- arena */

_Noreturn void tp_fail_arena(tp_arena *a, int line, int code, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (line > 0) sl_errorf(a->err, code, "%s:%d: %s", a->name ? a->name : "template", line, msg);
    else sl_errorf(a->err, code, "%s: %s", a->name ? a->name : "template", msg);
    longjmp(*a->jb, 1);
}

void *tp_alloc(tp_arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    tp_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total + cap > a->limit || cap > SIZE_MAX - sizeof(tp_block))
            tp_fail_arena(a, 0, SL_ENOMEM, "template needs more than %zu bytes of memory (limit)", a->limit);
        b = malloc(sizeof(tp_block) + cap);
        if (!b) tp_fail_arena(a, 0, SL_ENOMEM, "out of memory");
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
        a->total += cap;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *tp_strndup(tp_arena *a, const char *s, size_t n) {
    if (n == SIZE_MAX) tp_fail_arena(a, 0, SL_ENOMEM, "string too long");
    char *p = tp_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void tp_arena_free(tp_arena *a) {
    tp_block *b = a->head;
    while (b) {
        tp_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---------------------------------------------------------------- buffers */

void tp_buf_put(tp_arena *a, tp_buf *b, const char *s, size_t n) {
    if (n == 0) return;
    if (b->cap - b->n < n + 1) {
        size_t need = b->n + n + 1;
        if (need < b->n) tp_fail_arena(a, 0, SL_ENOMEM, "string too long");
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) tp_fail_arena(a, 0, SL_ENOMEM, "string too long");
            cap *= 2;
        }
        char *p = tp_alloc(a, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void tp_buf_puts(tp_arena *a, tp_buf *b, const char *s) { tp_buf_put(a, b, s, strlen(s)); }
void tp_buf_putc(tp_arena *a, tp_buf *b, char c) { tp_buf_put(a, b, &c, 1); }

void tp_buf_printf(tp_arena *a, tp_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    tp_buf_put(a, b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* ---------------------------------------------------------------- UTF-8 */

size_t tp_utf8_next(const char *s, size_t n, size_t i, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[i];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + k > n) k = 1;
    uint32_t v = c;
    if (k == 2) v = ((c & 0x1fu) << 6) | (u[i + 1] & 0x3fu);
    else if (k == 3) v = ((c & 0x0fu) << 12) | ((u[i + 1] & 0x3fu) << 6) | (u[i + 2] & 0x3fu);
    else if (k == 4) v = ((c & 0x07u) << 18) | ((u[i + 1] & 0x3fu) << 12) | ((u[i + 2] & 0x3fu) << 6) | (u[i + 3] & 0x3fu);
    if (cp) *cp = v;
    return i + k;
}

size_t tp_utf8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) k++;
    return k;
}

bool tp_py_isspace(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

void tp_put_cp(tp_arena *a, tp_buf *b, uint32_t c) {
    char t[4];
    tp_buf_put(a, b, t, (size_t)sl_utf8_encode(c, t));
}

/* ---------------------------------------------------------------- constructors */

const tp_val tp_none = {.kind = TV_NONE};
const tp_val tp_true = {.kind = TV_BOOL, .u.b = true};
const tp_val tp_false = {.kind = TV_BOOL, .u.b = false};
const tp_val tp_undef = {.kind = TV_UNDEF};

const tp_val *tp_bool(bool b) { return b ? &tp_true : &tp_false; }

const tp_val *tp_int(tp_arena *a, int64_t i) {
    tp_val *v = tp_alloc(a, sizeof *v);
    v->kind = TV_INT;
    v->u.i = i;
    return v;
}

const tp_val *tp_float(tp_arena *a, double f) {
    tp_val *v = tp_alloc(a, sizeof *v);
    v->kind = TV_FLOAT;
    v->u.f = f;
    return v;
}

const tp_val *tp_str_ref(tp_arena *a, const char *s, size_t n) {
    tp_val *v = tp_alloc(a, sizeof *v);
    v->kind = TV_STR;
    v->u.s.s = s;
    v->u.s.n = n;
    return v;
}

const tp_val *tp_str(tp_arena *a, const char *s, size_t n) { return tp_str_ref(a, tp_strndup(a, s, n), n); }

const tp_val *tp_undef_msg(tp_arena *a, const char *fmt, ...) {
    char tmp[600];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) k = 0;
    if ((size_t)k >= sizeof tmp) k = sizeof tmp - 1;
    tp_val *v = tp_alloc(a, sizeof *v);
    v->kind = TV_UNDEF;
    v->u.s.s = tp_strndup(a, tmp, (size_t)k);
    v->u.s.n = (size_t)k;
    return v;
}

tp_list *tp_list_new(tp_arena *a, size_t cap) {
    tp_list *l = tp_alloc(a, sizeof *l);
    if (cap) {
        if (cap > SIZE_MAX / sizeof(tp_val *)) tp_fail_arena(a, 0, SL_ENOMEM, "list too long");
        l->v = tp_alloc(a, cap * sizeof(tp_val *));
        l->cap = cap;
    }
    return l;
}

void tp_list_push(tp_arena *a, tp_list *l, const tp_val *v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof(tp_val *)) tp_fail_arena(a, 0, SL_ENOMEM, "list too long");
        const tp_val **p = tp_alloc(a, cap * sizeof *p);
        if (l->n) memcpy(p, l->v, l->n * sizeof *p);
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

const tp_val *tp_gen_val(tp_arena *a, tp_list *l, const char *type, bool view) {
    l->gen = type;
    l->view = view;
    return tp_list_val(a, l);
}

const tp_val *tp_list_val(tp_arena *a, tp_list *l) {
    tp_val *v = tp_alloc(a, sizeof *v);
    v->kind = TV_LIST;
    v->u.l = l;
    return v;
}

tp_dict *tp_dict_new(tp_arena *a) { return tp_alloc(a, sizeof(tp_dict)); }

const tp_val *tp_dict_get(const tp_dict *d, const tp_val *k) {
    for (size_t i = 0; i < d->n; i++)
        if (tp_equal(d->k[i], k)) return d->v[i];
    return NULL;
}

const tp_val *tp_dict_gets(const tp_dict *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i]->kind == TV_STR && d->k[i]->u.s.n == n && memcmp(d->k[i]->u.s.s, k, n) == 0) return d->v[i];
    return NULL;
}

void tp_dict_set(tp_arena *a, tp_dict *d, const tp_val *k, const tp_val *v) {
    for (size_t i = 0; i < d->n; i++)
        if (tp_equal(d->k[i], k)) {
            d->v[i] = v;
            return;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof(tp_val *)) tp_fail_arena(a, 0, SL_ENOMEM, "dict too large");
        const tp_val **nk = tp_alloc(a, cap * sizeof *nk), **nv = tp_alloc(a, cap * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
}

const tp_val *tp_dict_val(tp_arena *a, tp_dict *d) {
    tp_val *v = tp_alloc(a, sizeof *v);
    v->kind = TV_DICT;
    v->u.d = d;
    return v;
}

/* ---------------------------------------------------------------- semantics */

const char *tp_type_name(const tp_val *v) {
    switch (v->kind) {
    case TV_UNDEF: return "Undefined";
    case TV_NONE: return "NoneType";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STR: return "str";
    case TV_LIST: return v->u.l->gen ? v->u.l->gen : v->u.l->tuple ? "tuple" : "list";
    case TV_DICT: return "dict";
    case TV_NS: return "TemplateNamespace";
    case TV_MACRO: return "Macro";
    case TV_FUNC: return "function";
    case TV_LOOP: return "LoopContext";
    case TV_CYCLER: return "Cycler";
    }
    return "object";
}

_Noreturn void tp_undef_fail(tp_arena *a, int line, const tp_val *u) {
    if (u->u.s.n) tp_fail_arena(a, line, SL_EINVAL, "%.*s", (int)u->u.s.n, u->u.s.s);
    tp_fail_arena(a, line, SL_EINVAL, "'%s' is undefined", u->uname ? u->uname : "value");
}

bool tp_truthy(const tp_val *v) {
    switch (v->kind) {
    case TV_UNDEF: case TV_NONE: return false;
    case TV_BOOL: return v->u.b;
    case TV_INT: return v->u.i != 0;
    case TV_FLOAT: return v->u.f != 0.0;
    case TV_STR: return v->u.s.n != 0;
    case TV_LIST: return (v->u.l->gen && !v->u.l->view) || v->u.l->n != 0;
    case TV_DICT: return v->u.d->n != 0;
    default: return true;
    }
}

static bool is_num(const tp_val *v) { return v->kind == TV_BOOL || v->kind == TV_INT || v->kind == TV_FLOAT; }
static double num_f(const tp_val *v) {
    return v->kind == TV_FLOAT ? v->u.f : v->kind == TV_INT ? (double)v->u.i : (double)v->u.b;
}
static int64_t num_i(const tp_val *v) { return v->kind == TV_INT ? v->u.i : (int64_t)v->u.b; }

static bool equal_rec(const tp_val *x, const tp_val *y, int depth);

bool tp_equal(const tp_val *x, const tp_val *y) { return equal_rec(x, y, 0); }

/* Python would raise RecursionError on absurdly deep values; silica answers false. */
static bool equal_rec(const tp_val *x, const tp_val *y, int depth) {
    if (x == y && (x->kind == TV_LIST || x->kind == TV_DICT)) return true;   /* CPython's identity shortcut */
    if (depth > 400) return false;
    if (is_num(x) && is_num(y)) {
        if (x->kind == TV_FLOAT || y->kind == TV_FLOAT) return num_f(x) == num_f(y);
        return num_i(x) == num_i(y);
    }
    if (x->kind != y->kind) {
        return false;
    }
    switch (x->kind) {
    case TV_UNDEF: case TV_NONE: return true;
    case TV_STR: return x->u.s.n == y->u.s.n && memcmp(x->u.s.s, y->u.s.s, x->u.s.n) == 0;
    case TV_LIST:
        if (x->u.l->gen || y->u.l->gen) return x->u.l == y->u.l;
        if (x->u.l->n != y->u.l->n || x->u.l->tuple != y->u.l->tuple) return false;
        for (size_t i = 0; i < x->u.l->n; i++)
            if (!equal_rec(x->u.l->v[i], y->u.l->v[i], depth + 1)) return false;
        return true;
    case TV_DICT:
        if (x->u.d->n != y->u.d->n) return false;
        for (size_t i = 0; i < x->u.d->n; i++) {
            const tp_val *o = tp_dict_get(y->u.d, x->u.d->k[i]);
            if (!o || !equal_rec(x->u.d->v[i], o, depth + 1)) return false;
        }
        return true;
    case TV_NS: return x->u.d == y->u.d;
    case TV_MACRO: return x->u.m == y->u.m;
    case TV_FUNC: return x->u.fn == y->u.fn;
    default: return x == y;
    }
}

static int compare_rec(tp_arena *a, int line, const tp_val *x, const tp_val *y, const char *op, int depth);

int tp_compare(tp_arena *a, int line, const tp_val *x, const tp_val *y, const char *op) {
    return compare_rec(a, line, x, y, op, 0);
}

static int compare_rec(tp_arena *a, int line, const tp_val *x, const tp_val *y, const char *op, int depth) {
    if (depth > 400) tp_fail_arena(a, line, SL_EINVAL, "maximum recursion depth exceeded in comparison");
    if (x->kind == TV_UNDEF) tp_undef_fail(a, line, x);
    if (y->kind == TV_UNDEF) tp_undef_fail(a, line, y);
    if (is_num(x) && is_num(y)) {
        if (x->kind == TV_FLOAT || y->kind == TV_FLOAT) {
            double p = num_f(x), q = num_f(y);
            return p < q ? -1 : p > q ? 1 : 0;
        }
        int64_t p = num_i(x), q = num_i(y);
        return p < q ? -1 : p > q ? 1 : 0;
    }
    if (x->kind == TV_STR && y->kind == TV_STR) {
        size_t n = x->u.s.n < y->u.s.n ? x->u.s.n : y->u.s.n;
        int r = n ? memcmp(x->u.s.s, y->u.s.s, n) : 0;
        if (r) return r < 0 ? -1 : 1;
        return x->u.s.n < y->u.s.n ? -1 : x->u.s.n > y->u.s.n ? 1 : 0;
    }
    if (x->kind == TV_LIST && y->kind == TV_LIST && x->u.l->tuple == y->u.l->tuple && !x->u.l->gen && !y->u.l->gen) {
        size_t n = x->u.l->n < y->u.l->n ? x->u.l->n : y->u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (tp_equal(x->u.l->v[i], y->u.l->v[i])) continue;
            return compare_rec(a, line, x->u.l->v[i], y->u.l->v[i], op, depth + 1);
        }
        return x->u.l->n < y->u.l->n ? -1 : x->u.l->n > y->u.l->n ? 1 : 0;
    }
    tp_fail_arena(a, line, SL_EINVAL, "'%s' not supported between instances of '%s' and '%s'", op, tp_type_name(x),
                  tp_type_name(y));
}

/* ---------------------------------------------------------------- str / repr */

void tp_float_repr(double f, char *out, size_t cap) {
    if (isnan(f)) { snprintf(out, cap, "nan"); return; }
    if (isinf(f)) { snprintf(out, cap, f < 0 ? "-inf" : "inf"); return; }
    if (f == 0) { snprintf(out, cap, signbit(f) ? "-0.0" : "0.0"); return; }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp = [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') { neg = true; p++; }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof digits - 1) digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    char body[64];
    size_t bn = 0;
    if (exp < -4 || exp >= 16) {
        body[bn++] = digits[0];
        if (nd > 1) {
            body[bn++] = '.';
            for (size_t i = 1; i < nd; i++) body[bn++] = digits[i];
        }
        bn += (size_t)snprintf(body + bn, sizeof body - bn, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else {
        int decpt = exp + 1;
        if (decpt <= 0) {
            body[bn++] = '0';
            body[bn++] = '.';
            for (int i = 0; i < -decpt; i++) body[bn++] = '0';
            for (size_t i = 0; i < nd; i++) body[bn++] = digits[i];
        } else if ((size_t)decpt >= nd) {
            for (size_t i = 0; i < nd; i++) body[bn++] = digits[i];
            for (size_t i = nd; i < (size_t)decpt; i++) body[bn++] = '0';
            body[bn++] = '.';
            body[bn++] = '0';
        } else {
            for (size_t i = 0; i < nd; i++) {
                if ((int)i == decpt) body[bn++] = '.';
                body[bn++] = digits[i];
            }
        }
        body[bn] = 0;
    }
    body[bn] = 0;
    snprintf(out, cap, "%s%s", neg ? "-" : "", body);
}

static bool py_printable(uint32_t c) {
    if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) return false;
    if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x206f)) return false;
    if (c == 0x3000 || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || (c >= 0xe000 && c <= 0xf8ff)) return false;
    if (c == 0x1680 || c == 0x180e || (c >= 0xd800 && c <= 0xdfff) || c >= 0xf0000) return false;
    if (c >= 0xe0000 && c <= 0xe007f) return false;
    return true;
}

static void repr_str(tp_arena *a, tp_buf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    tp_buf_putc(a, b, q);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t j = tp_utf8_next(s, n, i, &c);
        if (c == (uint32_t)q || c == '\\') { tp_buf_putc(a, b, '\\'); tp_buf_putc(a, b, (char)c); }
        else if (c == '\n') tp_buf_puts(a, b, "\\n");
        else if (c == '\r') tp_buf_puts(a, b, "\\r");
        else if (c == '\t') tp_buf_puts(a, b, "\\t");
        else if (!py_printable(c)) {
            if (c < 0x100) tp_buf_printf(a, b, "\\x%02x", c);
            else if (c < 0x10000) tp_buf_printf(a, b, "\\u%04x", c);
            else tp_buf_printf(a, b, "\\U%08x", c);
        } else tp_buf_put(a, b, s + i, j - i);
        i = j;
    }
    tp_buf_putc(a, b, q);
}

static void to_str(tp_arena *a, tp_buf *b, const tp_val *v, bool repr, int depth) {
    if (depth > 200) tp_fail_arena(a, 0, SL_EINVAL, "maximum recursion depth exceeded while getting the repr of an object");
    char tmp[64];
    switch (v->kind) {
    case TV_UNDEF: return;
    case TV_NONE: tp_buf_puts(a, b, "None"); return;
    case TV_BOOL: tp_buf_puts(a, b, v->u.b ? "True" : "False"); return;
    case TV_INT: tp_buf_printf(a, b, "%lld", (long long)v->u.i); return;
    case TV_FLOAT: tp_float_repr(v->u.f, tmp, sizeof tmp); tp_buf_puts(a, b, tmp); return;
    case TV_STR:
        if (repr) repr_str(a, b, v->u.s.s, v->u.s.n);
        else tp_buf_put(a, b, v->u.s.s, v->u.s.n);
        return;
    case TV_LIST:
        if (v->u.l->gen && !v->u.l->view) {
            tp_buf_printf(a, b, "<%s object>", v->u.l->gen);
            return;
        }
        if (v->u.l->gen) tp_buf_printf(a, b, "%s(", v->u.l->gen);
        tp_buf_putc(a, b, v->u.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) tp_buf_puts(a, b, ", ");
            to_str(a, b, v->u.l->v[i], true, depth + 1);
        }
        if (v->u.l->tuple && v->u.l->n == 1) tp_buf_putc(a, b, ',');
        tp_buf_putc(a, b, v->u.l->tuple ? ')' : ']');
        if (v->u.l->gen) tp_buf_putc(a, b, ')');
        return;
    case TV_DICT: case TV_NS:
        tp_buf_puts(a, b, v->kind == TV_NS ? "<Namespace {" : "{");
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) tp_buf_puts(a, b, ", ");
            to_str(a, b, v->u.d->k[i], true, depth + 1);
            tp_buf_puts(a, b, ": ");
            to_str(a, b, v->u.d->v[i], true, depth + 1);
        }
        tp_buf_puts(a, b, v->kind == TV_NS ? "}>" : "}");
        return;
    case TV_MACRO: tp_buf_printf(a, b, "<Macro '%s'>", v->u.m->node->name ? v->u.m->node->name : "caller"); return;
    case TV_FUNC: tp_buf_puts(a, b, "<function>"); return;
    case TV_LOOP: tp_buf_puts(a, b, "<LoopContext>"); return;
    case TV_CYCLER: tp_buf_puts(a, b, "<Cycler>"); return;
    }
}

void tp_to_str(tp_arena *a, tp_buf *b, const tp_val *v) { to_str(a, b, v, false, 0); }
void tp_repr(tp_arena *a, tp_buf *b, const tp_val *v) { to_str(a, b, v, true, 0); }

const tp_val *tp_as_str(tp_arena *a, const tp_val *v) {
    if (v->kind == TV_STR) return v;
    tp_buf b = {0};
    tp_to_str(a, &b, v);
    return tp_str_ref(a, b.p ? b.p : "", b.n);
}

const tp_val *tp_markup(tp_arena *a, const tp_val *s) {
    if (s->markup) return s;
    tp_val *v = tp_alloc(a, sizeof *v);
    *v = *s;
    v->markup = true;
    return v;
}

void tp_html_escape(tp_arena *a, tp_buf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': tp_buf_puts(a, b, "&amp;"); break;
        case '<': tp_buf_puts(a, b, "&lt;"); break;
        case '>': tp_buf_puts(a, b, "&gt;"); break;
        case '"': tp_buf_puts(a, b, "&#34;"); break;
        case '\'': tp_buf_puts(a, b, "&#39;"); break;
        default: tp_buf_putc(a, b, s[i]);
        }
    }
}

/* ---------------------------------------------------------------- json.dumps */

static void json_str(tp_arena *a, tp_buf *b, const char *s, size_t n, bool ascii) {
    tp_buf_putc(a, b, '"');
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t j = tp_utf8_next(s, n, i, &c);
        switch (c) {
        case '"': tp_buf_puts(a, b, "\\\""); break;
        case '\\': tp_buf_puts(a, b, "\\\\"); break;
        case '\n': tp_buf_puts(a, b, "\\n"); break;
        case '\r': tp_buf_puts(a, b, "\\r"); break;
        case '\t': tp_buf_puts(a, b, "\\t"); break;
        case '\b': tp_buf_puts(a, b, "\\b"); break;
        case '\f': tp_buf_puts(a, b, "\\f"); break;
        default:
            if (c < 0x20) tp_buf_printf(a, b, "\\u%04x", c);
            else if (ascii && c >= 0x7f) {
                if (c >= 0x10000) {
                    uint32_t v = c - 0x10000;
                    tp_buf_printf(a, b, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
                } else tp_buf_printf(a, b, "\\u%04x", c);
            } else tp_buf_put(a, b, s + i, j - i);
        }
        i = j;
    }
    tp_buf_putc(a, b, '"');
}

typedef struct json_opts {
    bool ascii, sort;
    const char *indent, *isep, *ksep;
    int line;
} json_opts;

static void json_nl(tp_arena *a, tp_buf *b, const json_opts *o, int level) {
    tp_buf_putc(a, b, '\n');
    for (int i = 0; i < level; i++) tp_buf_puts(a, b, o->indent);
}

static int key_cmp(const void *x, const void *y) {
    const tp_val *p = **(const tp_val *const *const *)x, *q = **(const tp_val *const *const *)y;
    size_t n = p->u.s.n < q->u.s.n ? p->u.s.n : q->u.s.n;
    int r = n ? memcmp(p->u.s.s, q->u.s.s, n) : 0;
    if (r) return r;
    return p->u.s.n < q->u.s.n ? -1 : p->u.s.n > q->u.s.n;
}

static void json_key(tp_arena *a, tp_buf *b, const json_opts *o, const tp_val *k) {
    char tmp[64];
    switch (k->kind) {
    case TV_STR: json_str(a, b, k->u.s.s, k->u.s.n, o->ascii); return;
    case TV_INT: tp_buf_printf(a, b, "\"%lld\"", (long long)k->u.i); return;
    case TV_FLOAT: tp_float_repr(k->u.f, tmp, sizeof tmp); tp_buf_printf(a, b, "\"%s\"", tmp); return;
    case TV_BOOL: tp_buf_puts(a, b, k->u.b ? "\"true\"" : "\"false\""); return;
    case TV_NONE: tp_buf_puts(a, b, "\"null\""); return;
    default:
        tp_fail_arena(a, o->line, SL_EINVAL, "keys must be str, int, float, bool or None, not %s", tp_type_name(k));
    }
}

static void json_val(tp_arena *a, tp_buf *b, const json_opts *o, const tp_val *v, int level) {
    char tmp[64];
    if (level > 200) tp_fail_arena(a, o->line, SL_EINVAL, "maximum recursion depth exceeded while encoding a JSON object");
    switch (v->kind) {
    case TV_NONE: tp_buf_puts(a, b, "null"); return;
    case TV_BOOL: tp_buf_puts(a, b, v->u.b ? "true" : "false"); return;
    case TV_INT: tp_buf_printf(a, b, "%lld", (long long)v->u.i); return;
    case TV_FLOAT:
        if (isnan(v->u.f)) tp_buf_puts(a, b, "NaN");
        else if (isinf(v->u.f)) tp_buf_puts(a, b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else { tp_float_repr(v->u.f, tmp, sizeof tmp); tp_buf_puts(a, b, tmp); }
        return;
    case TV_STR: json_str(a, b, v->u.s.s, v->u.s.n, o->ascii); return;
    case TV_LIST: {
        const tp_list *l = v->u.l;
        if (l->gen) tp_fail_arena(a, o->line, SL_EINVAL, "Object of type %s is not JSON serializable", l->gen);
        if (!l->n) { tp_buf_puts(a, b, "[]"); return; }
        tp_buf_putc(a, b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) tp_buf_puts(a, b, o->isep);
            if (o->indent) json_nl(a, b, o, level + 1);
            json_val(a, b, o, l->v[i], level + 1);
        }
        if (o->indent) json_nl(a, b, o, level);
        tp_buf_putc(a, b, ']');
        return;
    }
    case TV_DICT: {
        const tp_dict *d = v->u.d;
        if (!d->n) { tp_buf_puts(a, b, "{}"); return; }
        const tp_val ***ord = tp_alloc(a, d->n * sizeof *ord);
        for (size_t i = 0; i < d->n; i++) ord[i] = &d->k[i];
        if (o->sort) {
            for (size_t i = 0; i < d->n; i++)
                if (d->k[i]->kind != TV_STR)
                    tp_fail_arena(a, o->line, SL_EINVAL, "'<' not supported between instances of '%s' and 'str'",
                                  tp_type_name(d->k[i]));
            qsort(ord, d->n, sizeof *ord, key_cmp);
        }
        tp_buf_putc(a, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            size_t idx = (size_t)(ord[i] - d->k);
            if (i) tp_buf_puts(a, b, o->isep);
            if (o->indent) json_nl(a, b, o, level + 1);
            json_key(a, b, o, d->k[idx]);
            tp_buf_puts(a, b, o->ksep);
            json_val(a, b, o, d->v[idx], level + 1);
        }
        if (o->indent) json_nl(a, b, o, level);
        tp_buf_putc(a, b, '}');
        return;
    }
    default:
        tp_fail_arena(a, o->line, SL_EINVAL, "Object of type %s is not JSON serializable", tp_type_name(v));
    }
}

void tp_json(tp_arena *a, int line, tp_buf *b, const tp_val *v, bool ensure_ascii, const char *indent,
             const char *item_sep, const char *key_sep, bool sort_keys) {
    json_opts o = {ensure_ascii, sort_keys, indent, item_sep, key_sep, line};
    json_val(a, b, &o, v, 0);
}

/* ---------------------------------------------------------------- cJSON */

const tp_val *tp_from_cjson(tp_arena *a, const cJSON *j, int depth) {
    if (depth > 500) tp_fail_arena(a, 0, SL_EINVAL, "context JSON nested too deeply");
    if (!j || cJSON_IsNull(j)) return &tp_none;
    if (cJSON_IsBool(j)) return tp_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) return tp_int(a, (int64_t)d);
        return tp_float(a, d);
    }
    if (cJSON_IsString(j)) return tp_str(a, j->valuestring, strlen(j->valuestring));
    if (cJSON_IsArray(j)) {
        tp_list *l = tp_list_new(a, 0);
        for (const cJSON *c = j->child; c; c = c->next) tp_list_push(a, l, tp_from_cjson(a, c, depth + 1));
        return tp_list_val(a, l);
    }
    if (cJSON_IsObject(j)) {
        tp_dict *d = tp_dict_new(a);
        for (const cJSON *c = j->child; c; c = c->next)
            tp_dict_set(a, d, tp_str(a, c->string, strlen(c->string)), tp_from_cjson(a, c, depth + 1));
        return tp_dict_val(a, d);
    }
    return &tp_none;
}
