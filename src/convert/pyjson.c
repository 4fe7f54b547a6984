/*
 * pyjson.c — a small JSON tree that prints exactly like Python's
 * json.dump(obj, f, indent=N) (ensure_ascii, float repr, int text kept),
 * so silica can write config.json / index.json byte-identical to mlx-lm
 * and transformers.  See convert_impl.h.
 *
 * Invariants:
 *  - Integers keep their source digits (Python ints are unbounded; cJSON's
 *    doubles are not); floats are printed as Python's repr() prints them
 *    (shortest round-trip digits, exponent form iff decpt <= -4 or > 16).
 *  - Objects keep insertion order; a duplicate key replaces the value in
 *    place (Python's dict semantics when loading JSON).
 *  - The parser never reads past `len` and refuses nesting deeper than 256.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"
#include "silica/utf8.h"

#define PJ_MAX_DEPTH 256

static pj *pj_alloc(pj_type t) {
    pj *v = calloc(1, sizeof *v);
    if (v) v->type = t;
    return v;
}

pj *pj_new_obj(void) { return pj_alloc(PJ_OBJ); }
pj *pj_new_arr(void) { return pj_alloc(PJ_ARR); }
pj *pj_new_null(void) { return pj_alloc(PJ_NULL); }
pj *pj_new_bool(bool b) { return pj_alloc(b ? PJ_TRUE : PJ_FALSE); }

pj *pj_new_int(long long i) {
    pj *v = pj_alloc(PJ_INT);
    char b[32];
    snprintf(b, sizeof b, "%lld", i);
    if (v && !(v->s = strdup(b))) { free(v); return NULL; }
    return v;
}

pj *pj_new_float(double d) {
    pj *v = pj_alloc(PJ_FLOAT);
    if (v) v->d = d;
    return v;
}

pj *pj_new_str(const char *s) {
    pj *v = pj_alloc(PJ_STR);
    if (v && !(v->s = strdup(s))) { free(v); return NULL; }
    return v;
}

void pj_free(pj *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys) free(v->keys[i]);
        pj_free(v->vals[i]);
    }
    free(v->keys);
    free(v->vals);
    free(v->s);
    free(v);
}

pj *pj_copy(const pj *v) {
    if (!v) return NULL;
    pj *c = pj_alloc(v->type);
    if (!c) return NULL;
    c->d = v->d;
    if (v->s && !(c->s = strdup(v->s))) goto fail;
    for (size_t i = 0; i < v->n; i++) {
        pj *e = pj_copy(v->vals[i]);
        if (!e) goto fail;
        if (v->type == PJ_OBJ ? pj_set(c, v->keys[i], e) : pj_push(c, e)) { pj_free(e); goto fail; }
    }
    return c;
fail:
    pj_free(c);
    return NULL;
}

static int grow(pj *o) {
    if (o->n < o->cap) return 0;
    size_t cap = o->cap ? o->cap * 2 : 8;
    pj **nv = realloc(o->vals, cap * sizeof *nv);
    if (!nv) return -1;
    o->vals = nv;
    if (o->type == PJ_OBJ) {
        char **nk = realloc(o->keys, cap * sizeof *nk);
        if (!nk) return -1;
        o->keys = nk;
    }
    o->cap = cap;
    return 0;
}

int pj_push(pj *arr, pj *v) {
    if (grow(arr)) return -1;
    arr->vals[arr->n++] = v;
    return 0;
}

pj *pj_get(const pj *o, const char *key) {
    if (!o || o->type != PJ_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return o->vals[i];
    return NULL;
}

int pj_set(pj *o, const char *key, pj *v) {
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) {
            pj_free(o->vals[i]);
            o->vals[i] = v;
            return 0;
        }
    if (grow(o)) return -1;
    char *k = strdup(key);
    if (!k) return -1;
    o->keys[o->n] = k;
    o->vals[o->n++] = v;
    return 0;
}

void pj_remove(pj *o, const char *key) {
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) {
            free(o->keys[i]);
            pj_free(o->vals[i]);
            memmove(o->keys + i, o->keys + i + 1, (o->n - i - 1) * sizeof *o->keys);
            memmove(o->vals + i, o->vals + i + 1, (o->n - i - 1) * sizeof *o->vals);
            o->n--;
            return;
        }
}

static int cmp_keys(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    return strcmp(x[0], y[0]);
}

void pj_sort_keys(pj *o) {
    /* Python sorts str keys by code point; UTF-8 byte order is the same. */
    if (o->type != PJ_OBJ || o->n < 2) return;
    struct kv { char *k; pj *v; } *t = malloc(o->n * sizeof *t);
    if (!t) return;
    for (size_t i = 0; i < o->n; i++) t[i] = (struct kv){o->keys[i], o->vals[i]};
    qsort(t, o->n, sizeof *t, cmp_keys);
    for (size_t i = 0; i < o->n; i++) {
        o->keys[i] = t[i].k;
        o->vals[i] = t[i].v;
    }
    free(t);
}

bool pj_truthy(const pj *v) {
    if (!v) return false;
    switch (v->type) {
    case PJ_TRUE: return true;
    case PJ_INT: return strcmp(v->s, "0") != 0 && strcmp(v->s, "-0") != 0;
    case PJ_FLOAT: return v->d != 0;
    case PJ_STR: return v->s[0] != 0;
    case PJ_ARR: case PJ_OBJ: return v->n > 0;
    default: return false;
    }
}

long long pj_int(const pj *v, long long dflt) {
    if (!v) return dflt;
    if (v->type == PJ_INT) return strtoll(v->s, NULL, 10);
    if (v->type == PJ_FLOAT) return (long long)v->d;
    return dflt;
}

const char *pj_str(const pj *v) { return v && v->type == PJ_STR ? v->s : NULL; }

/* ---- parser ---- */

typedef struct parser {
    const char *start, *p, *end;
    const char *path;
    sl_error *err;
} parser;

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int perr(parser *ps, const char *what) {
    return sl_errorf(ps->err, SL_EINVAL, "%s: invalid JSON at byte %ld: %s", ps->path,
                     (long)(ps->p - ps->start), what);
}

static int parse_string(parser *ps, char **out) {
    char *b = NULL;
    size_t n = 0, cap = 0;
    const char *stop, *why;
    int rc = sl_json_string_decode(ps->p, ps->end, SL_JSON_SURROGATE_KEEP, true, &b, &n, &cap, &stop, &why);
    ps->p = stop;
    if (rc) {
        free(b);
        return rc == SL_ENOMEM ? sl_errorf(ps->err, SL_ENOMEM, "out of memory") : perr(ps, why);
    }
    *out = b;
    return 0;
}

static int parse_value(parser *ps, pj **out, int depth);

static int parse_number(parser *ps, pj **out) {
    const char *s = ps->p;
    bool isf = false;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c >= '0' && c <= '9') ps->p++;
        else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { isf = true; ps->p++; }
        else break;
    }
    size_t len = (size_t)(ps->p - s);
    if (len == 0 || (len == 1 && *s == '-')) return perr(ps, "bad number");
    char *t = strndup(s, len);
    if (!t) return sl_errorf(ps->err, SL_ENOMEM, "out of memory");
    pj *v = pj_alloc(isf ? PJ_FLOAT : PJ_INT);
    if (!v) { free(t); return sl_errorf(ps->err, SL_ENOMEM, "out of memory"); }
    if (isf) {
        char *end;
        v->d = strtod(t, &end);
        bool bad = *end != 0;
        free(t);
        if (bad) { free(v); return perr(ps, "bad number"); }
    } else {
        /* Python's int(): "-0" is 0; keep the digits otherwise */
        if (!strcmp(t, "-0")) { t[0] = '0'; t[1] = 0; }
        v->s = t;
    }
    *out = v;
    return 0;
}

static int parse_value(parser *ps, pj **out, int depth) {
    if (depth > PJ_MAX_DEPTH) return perr(ps, "nested too deeply");
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end");
    char c = *ps->p;
    int rc;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        pj *v = obj ? pj_new_obj() : pj_new_arr();
        if (!v) return sl_errorf(ps->err, SL_ENOMEM, "out of memory");
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) { ps->p++; *out = v; return 0; }
        for (;;) {
            char *key = NULL;
            skip_ws(ps);
            if (obj) {
                if (ps->p >= ps->end || *ps->p != '"') { pj_free(v); return perr(ps, "expected a key"); }
                if ((rc = parse_string(ps, &key))) { pj_free(v); return rc; }
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') { free(key); pj_free(v); return perr(ps, "expected ':'"); }
                ps->p++;
            }
            pj *e = NULL;
            if ((rc = parse_value(ps, &e, depth + 1))) { free(key); pj_free(v); return rc; }
            int r2 = obj ? pj_set(v, key, e) : pj_push(v, e);
            free(key);
            if (r2) { pj_free(e); pj_free(v); return sl_errorf(ps->err, SL_ENOMEM, "out of memory"); }
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
            if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) { ps->p++; break; }
            pj_free(v);
            return perr(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        *out = v;
        return 0;
    }
    if (c == '"') {
        char *s;
        if ((rc = parse_string(ps, &s))) return rc;
        pj *v = pj_alloc(PJ_STR);
        if (!v) { free(s); return sl_errorf(ps->err, SL_ENOMEM, "out of memory"); }
        v->s = s;
        *out = v;
        return 0;
    }
    static const struct { const char *lit; pj_type t; double d; } lits[] = {
        {"true", PJ_TRUE, 0}, {"false", PJ_FALSE, 0}, {"null", PJ_NULL, 0},
        {"NaN", PJ_FLOAT, NAN}, {"Infinity", PJ_FLOAT, INFINITY}, {"-Infinity", PJ_FLOAT, -INFINITY}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        size_t l = strlen(lits[i].lit);
        if ((size_t)(ps->end - ps->p) >= l && !memcmp(ps->p, lits[i].lit, l)) {
            ps->p += l;
            pj *v = pj_alloc(lits[i].t);
            if (!v) return sl_errorf(ps->err, SL_ENOMEM, "out of memory");
            v->d = lits[i].d;
            *out = v;
            return 0;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps, out);
    return perr(ps, "unexpected character");
}

int pj_parse(const char *text, size_t len, const char *path, pj **out, sl_error *err) {
    parser ps = {text, text, text + len, path, err};
    pj *v = NULL;
    int rc = parse_value(&ps, &v, 0);
    if (rc) return rc;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        pj_free(v);
        return sl_errorf(err, SL_EINVAL, "%s: invalid JSON: trailing data", path);
    }
    *out = v;
    return 0;
}

int pj_load(const char *path, pj **out, sl_error *err) {
    char *text;
    size_t len;
    int rc = sl_read_file(path, 64u << 20, &text, &len, err);
    if (rc) return rc;
    rc = pj_parse(text, len, path, out, err);
    free(text);
    return rc;
}

/* ---- printer ---- */

/* Python's float repr: shortest digits that round-trip. */
static void float_repr(double d, char *out, size_t cap) {
    if (isnan(d)) { snprintf(out, cap, "NaN"); return; }
    if (isinf(d)) { snprintf(out, cap, d > 0 ? "Infinity" : "-Infinity"); return; }
    char buf[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    /* buf = [-]d.ddde[+-]XX: extract digits and exponent */
    bool neg = buf[0] == '-';
    const char *p = buf + neg;
    char digits[32];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = exp10 + 1; /* value = 0.digits x 10^decpt */
    char *o = out;
    size_t left = cap;
#define PUT(...) do { int w_ = snprintf(o, left, __VA_ARGS__); if (w_ > 0 && (size_t)w_ < left) { o += w_; left -= (size_t)w_; } } while (0)
    if (neg) PUT("-");
    if (decpt <= -4 || decpt > 16) {
        PUT("%c", digits[0]);
        if (nd > 1) PUT(".%s", digits + 1);
        PUT("e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
    } else if (decpt <= 0) {
        PUT("0.");
        for (int i = 0; i < -decpt; i++) PUT("0");
        PUT("%s", digits);
    } else if (decpt >= nd) {
        PUT("%s", digits);
        for (int i = nd; i < decpt; i++) PUT("0");
        PUT(".0");
    } else {
        PUT("%.*s.%s", decpt, digits, digits + decpt);
    }
#undef PUT
}

static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, cp;
        int k;
        if (c < 0x80) { cp = c; k = 1; }
        else if ((c & 0xE0) == 0xC0 && p[1]) { cp = (c & 31u) << 6 | (p[1] & 63u); k = 2; }
        else if ((c & 0xF0) == 0xE0 && p[1] && p[2]) { cp = (c & 15u) << 12 | (p[1] & 63u) << 6 | (p[2] & 63u); k = 3; }
        else if ((c & 0xF8) == 0xF0 && p[1] && p[2] && p[3]) {
            cp = (c & 7u) << 18 | (p[1] & 63u) << 12 | (p[2] & 63u) << 6 | (p[3] & 63u);
            k = 4;
        } else { cp = 0xFFFD; k = 1; }
        p += k;
        switch (cp) {
        case '"': fputs("\\\"", f); continue;
        case '\\': fputs("\\\\", f); continue;
        case '\n': fputs("\\n", f); continue;
        case '\r': fputs("\\r", f); continue;
        case '\t': fputs("\\t", f); continue;
        case 8: fputs("\\b", f); continue;
        case 12: fputs("\\f", f); continue;
        default: break;
        }
        if (cp < 0x20 || (cp >= 0x7F && cp < 0x10000)) {
            if (cp == 0x7F) { fputc(0x7F, f); continue; }   /* Python leaves DEL as is */
            fprintf(f, "\\u%04x", cp);
        } else if (cp >= 0x10000) {
            unsigned v = cp - 0x10000;
            fprintf(f, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
        } else {
            fputc((int)cp, f);
        }
    }
    fputc('"', f);
}

static void indent_to(FILE *f, int indent, int level) {
    fputc('\n', f);
    for (int i = 0; i < indent * level; i++) fputc(' ', f);
}

static void dump(FILE *f, const pj *v, int indent, int level) {
    char b[64];
    switch (v->type) {
    case PJ_NULL: fputs("null", f); break;
    case PJ_TRUE: fputs("true", f); break;
    case PJ_FALSE: fputs("false", f); break;
    case PJ_INT: fputs(v->s, f); break;
    case PJ_FLOAT: float_repr(v->d, b, sizeof b); fputs(b, f); break;
    case PJ_STR: put_str(f, v->s); break;
    case PJ_ARR:
    case PJ_OBJ: {
        bool obj = v->type == PJ_OBJ;
        if (v->n == 0) { fputs(obj ? "{}" : "[]", f); break; }
        fputc(obj ? '{' : '[', f);
        for (size_t i = 0; i < v->n; i++) {
            if (i) fputc(',', f);
            if (indent >= 0) indent_to(f, indent, level + 1);
            else if (i) fputc(' ', f);
            if (obj) {
                put_str(f, v->keys[i]);
                fputs(": ", f);
            }
            dump(f, v->vals[i], indent, level + 1);
        }
        if (indent >= 0) indent_to(f, indent, level);
        fputc(obj ? '}' : ']', f);
        break;
    }
    }
}

char *pj_dump(const pj *v, int indent, size_t *len) {
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f) return NULL;
    dump(f, v, indent, 0);
    if (fclose(f)) { free(text); return NULL; }
    if (len) *len = n;
    return text;
}

int pj_write(const pj *v, int indent, bool newline, const char *path, sl_error *err) {
    size_t n;
    char *text = pj_dump(v, indent, &n);
    if (!text) return sl_errorf(err, SL_ENOMEM, "out of memory");
    sl_outfile o;
    int rc = sl_outfile_open(&o, path, err);
    if (!rc) rc = sl_outfile_write(&o, text, n, err);
    if (!rc && newline) rc = sl_outfile_write(&o, "\n", 1, err);
    if (!rc) rc = sl_outfile_commit(&o, err);
    else sl_outfile_abort(&o);
    free(text);
    return rc;
}
