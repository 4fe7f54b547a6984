/*
 * builtins.c — what chat templates call: jinja2's filters and tests (with
 * transformers' tojson), the Python str/dict/list methods the sandbox lets
 * through, and the globals (range, namespace, dict, raise_exception,
 * strftime_now; those live in globals.c).  Messages copy Python's / jinja2's wording so a template
 * that fails in transformers fails the same way here.
 *
 * Invariants: arguments are looked up positionally or by keyword with
 * jinja2's parameter names; jinja2 filters that silica does not implement
 * exist (so compile succeeds) but fail at run time naming the filter.
 * Case mapping (upper/lower/title/capitalize) covers ASCII only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/tmpl_impl.h"

#define FAIL(line, ...) tp_fail_arena(c->a, line, SL_EINVAL, __VA_ARGS__)
#define UNSUP(line, ...) tp_fail_arena(c->a, line, SL_EUNSUPPORTED, __VA_ARGS__)

/* ---------------------------------------------------------------- helpers */

const tp_val *tp_arg(const tp_args *a, size_t i, const char *name) {
    if (i < a->npos) return a->pos[i];
    for (size_t k = 0; k < a->nkw; k++)
        if (name && !strcmp(a->kwn[k], name)) return a->kwv[k];
    return NULL;
}

static const tp_val *sv(tp_ctx *c, const tp_val *v) { return tp_as_str(c->a, v); }
static const tp_val *mkstr(tp_ctx *c, tp_buf *b) { return tp_str_ref(c->a, b->p ? b->p : "", b->n); }

const tp_val *tp_need_str(tp_ctx *c, int line, const tp_val *v, const char *what) {
    if (!v || v->kind != TV_STR) FAIL(line, "%s must be str, not %s", what, v ? tp_type_name(v) : "nothing");
    return v;
}

int64_t tp_need_int(tp_ctx *c, int line, const tp_val *v, const char *what) {
    if (v->kind == TV_INT) return v->u.i;
    if (v->kind == TV_BOOL) return v->u.b;
    FAIL(line, "'%s' object cannot be interpreted as an integer (%s)", tp_type_name(v), what);
}

/* env.getitem-based attribute path "a.b.0" used by map/selectattr/sort/... */
static const tp_val *attr_path(tp_ctx *c, int line, const tp_val *v, const tp_val *path) {
    const char *s = path->u.s.s;
    size_t n = path->u.s.n, i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != '.') j++;
        const tp_val *key;
        char *end;
        char *part = tp_strndup(c->a, s + i, j - i);
        long long iv = strtoll(part, &end, 10);
        if (j > i && *end == 0 && part[0] != '+' && part[0] != ' ') key = tp_int(c->a, iv);
        else key = tp_str_ref(c->a, part, j - i);
        if (v->kind == TV_UNDEF) return v;
        v = tp_getitem(c, line, v, key);
        i = j + 1;
    }
    return v;
}

static const tp_val *lowered(tp_ctx *c, const tp_val *v, bool cs) {
    return (!cs && v->kind == TV_STR) ? tp_casemap(c, v, 0) : v;
}

/* ---------------------------------------------------------------- sort */

typedef struct sort_item {
    const tp_val *key, *val;
    size_t idx;
} sort_item;

typedef struct sort_env {
    tp_ctx *c;
    int line;
} sort_env;

static void merge_sort(sort_env *e, sort_item *v, sort_item *tmp, size_t n, bool rev) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(e, v, tmp, h, rev);
    merge_sort(e, v + h, tmp, n - h, rev);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int r = tp_compare(e->c->a, e->line, v[j].key, v[i].key, "<");
        bool take_right = rev ? r > 0 : r < 0;
        tmp[k++] = take_right ? v[j++] : v[i++];
    }
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static sort_item *sorted(tp_ctx *c, int line, const tp_list *l, const tp_val *attr, bool cs, bool rev, int by) {
    sort_item *v = tp_alloc(c->a, (l->n + 1) * sizeof *v), *tmp = tp_alloc(c->a, (l->n + 1) * sizeof *tmp);
    for (size_t i = 0; i < l->n; i++) {
        const tp_val *k = l->v[i];
        if (by >= 0) k = k->u.l->v[by];
        else if (attr) k = attr_path(c, line, k, attr);
        v[i].key = lowered(c, k, cs);
        v[i].val = l->v[i];
        v[i].idx = i;
    }
    sort_env e = {c, line};
    merge_sort(&e, v, tmp, l->n, rev);
    return v;
}

/* ---------------------------------------------------------------- tojson */

static const tp_val *tojson(tp_ctx *c, int line, const tp_val *v, const tp_args *a, size_t off) {
    const tp_val *ea = tp_arg(a, off, "ensure_ascii"), *ind = tp_arg(a, off + 1, "indent"), *seps = tp_arg(a, off + 2, "separators"),
                 *sk = tp_arg(a, off + 3, "sort_keys");
    const char *indent = NULL;
    if (ind && ind->kind != TV_NONE) {
        if (ind->kind == TV_STR) indent = tp_strndup(c->a, ind->u.s.s, ind->u.s.n);
        else {
            int64_t w = tp_need_int(c, line, ind, "indent");
            if (w < 0) w = 0;
            if (w > 1000) FAIL(line, "tojson indent %lld is too large", (long long)w);
            char *s = tp_alloc(c->a, (size_t)w + 1);
            memset(s, ' ', (size_t)w);
            indent = s;
        }
    }
    const char *isep = indent ? "," : ", ", *ksep = ": ";
    if (seps && seps->kind != TV_NONE) {
        if (seps->kind != TV_LIST || seps->u.l->n != 2 || seps->u.l->v[0]->kind != TV_STR || seps->u.l->v[1]->kind != TV_STR)
            FAIL(line, "tojson separators must be a pair of strings");
        isep = tp_strndup(c->a, seps->u.l->v[0]->u.s.s, seps->u.l->v[0]->u.s.n);
        ksep = tp_strndup(c->a, seps->u.l->v[1]->u.s.s, seps->u.l->v[1]->u.s.n);
    }
    tp_buf b = {0};
    tp_json(c->a, line, &b, v, ea && tp_truthy(ea), indent, isep, ksep, sk && tp_truthy(sk));
    return mkstr(c, &b);
}

/* ---------------------------------------------------------------- filters */

static const char *const k_filters[] = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last",
    "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace", "reverse",
    "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim",
    "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"};

bool tp_filter_exists(const char *name) {
    for (size_t i = 0; i < sizeof k_filters / sizeof *k_filters; i++)
        if (!strcmp(k_filters[i], name)) return true;
    return false;
}

static size_t seq_len(tp_ctx *c, int line, const tp_val *v) {
    switch (v->kind) {
    case TV_UNDEF: return 0;
    case TV_STR: return tp_utf8_len(v->u.s.s, v->u.s.n);
    case TV_LIST:
        if (v->u.l->gen && !v->u.l->view) FAIL(line, "object of type '%s' has no len()", v->u.l->gen);
        return v->u.l->n;
    case TV_DICT: return v->u.d->n;
    default: FAIL(line, "object of type '%s' has no len()", tp_type_name(v));
    }
}

static const tp_val *parse_int_str(tp_ctx *c, const tp_val *s, int64_t base, bool *ok) {
    const tp_val *t = tp_strip(c, s, NULL, true, true);
    char *p = tp_strndup(c->a, t->u.s.s, t->u.s.n), *q = p;
    for (char *r = p; *r; r++)
        if (*r != '_') *q++ = *r;
    *q = 0;
    char *end;
    if (!*p) { *ok = false; return NULL; }
    long long v = strtoll(p, &end, (int)base);
    *ok = *end == 0;
    return tp_int(c->a, v);
}

static const tp_val *select_impl(tp_ctx *c, int line, const tp_val *seq, const tp_args *a, bool attr, bool keep) {
    const tp_list *l = tp_truthy(seq) ? tp_iterate(c, line, seq) : tp_list_new(c->a, 0);
    tp_list *out = tp_list_new(c->a, 0);
    size_t first = 0;
    const tp_val *path = NULL;
    if (attr) {
        path = tp_need_str(c, line, tp_arg(a, 0, NULL), "attribute");
        first = 1;
    }
    const tp_val *test = tp_arg(a, first, NULL);
    tp_args targs = {a->npos > first + 1 ? a->pos + first + 1 : NULL, a->npos > first + 1 ? a->npos - first - 1 : 0,
                     a->kwn, a->kwv, a->nkw};
    for (size_t i = 0; i < l->n; i++) {
        const tp_val *v = attr ? attr_path(c, line, l->v[i], path) : l->v[i];
        bool r;
        if (test) {
            tp_need_str(c, line, test, "test name");
            char *tn = tp_strndup(c->a, test->u.s.s, test->u.s.n);
            if (!tp_test_exists(tn)) FAIL(line, "No test named '%s'.", tn);
            r = tp_apply_test(c, line, tn, v, &targs);
        } else r = tp_truthy(v);
        if (r == keep) tp_list_push(c->a, out, l->v[i]);
    }
    return tp_gen_val(c->a, out, "generator", false);
}

static const tp_val *indent(tp_ctx *c, int line, const tp_val *s, const tp_args *a) {
    const tp_val *w = tp_arg(a, 0, "width"), *first = tp_arg(a, 1, "first"), *blank = tp_arg(a, 2, "blank");
    tp_buf ind = {0};
    if (w && w->kind == TV_STR) tp_buf_put(c->a, &ind, w->u.s.s, w->u.s.n);
    else {
        int64_t n = w ? tp_need_int(c, line, w, "width") : 4;
        for (int64_t i = 0; i < n && i < 1000; i++) tp_buf_putc(c->a, &ind, ' ');
    }
    /* lines = (s + "\n").splitlines() */
    tp_list *lines = tp_list_new(c->a, 0);
    const char *p = s->u.s.s;
    size_t n = s->u.s.n, st = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t j = tp_utf8_next(p, n, i, &cp);
        bool br = cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 ||
                  cp == 0x2028 || cp == 0x2029;
        if (br) {
            tp_list_push(c->a, lines, tp_str_ref(c->a, p + st, i - st));
            if (cp == '\r' && j < n && p[j] == '\n') j++;
            st = j;
        }
        i = j;
    }
    tp_list_push(c->a, lines, tp_str_ref(c->a, p + st, n - st));   /* the appended "\n" ends this line */
    tp_buf b = {0};
    if (first && tp_truthy(first)) tp_buf_put(c->a, &b, ind.p, ind.n);
    for (size_t i = 0; i < lines->n; i++) {
        const tp_val *ln = lines->v[i];
        if (i) {
            tp_buf_putc(c->a, &b, '\n');
            if (ln->u.s.n || (blank && tp_truthy(blank))) tp_buf_put(c->a, &b, ind.p, ind.n);
        }
        tp_buf_put(c->a, &b, ln->u.s.s, ln->u.s.n);
    }
    return mkstr(c, &b);
}

/* the items filter (a generator) or dict.items() (a dict_items view) */
static const tp_val *dict_items(tp_ctx *c, int line, const tp_val *v, bool view) {
    if (v->kind == TV_UNDEF) return tp_gen_val(c->a, tp_list_new(c->a, 0), "generator", false);
    if (v->kind != TV_DICT) FAIL(line, "Can only get item pairs from a mapping.");
    tp_list *l = tp_list_new(c->a, v->u.d->n);
    for (size_t i = 0; i < v->u.d->n; i++) {
        tp_list *p = tp_list_new(c->a, 2);
        p->tuple = true;
        tp_list_push(c->a, p, v->u.d->k[i]);
        tp_list_push(c->a, p, v->u.d->v[i]);
        tp_list_push(c->a, l, tp_list_val(c->a, p));
    }
    return tp_gen_val(c->a, l, view ? "dict_items" : "generator", view);
}

/* the filters an undefined value may reach (any other fails on it, as on jinja2's Undefined) */
static bool takes_undefined(const char *f) {
    static const char *const k[] = {
        "list", "first", "join", "trim", "lower", "upper", "replace", "title", "capitalize", "indent", "int", "float",
        "selectattr", "rejectattr", "select", "reject", "map", "unique", "sort", "escape", "e", "wordcount", "dictsort",
        "reverse"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(f, k[i])) return true;
    return false;
}

/* the string filters (trim, case maps, replace, join, indent, escape, format, wordcount); NULL: f is not one */
static const tp_val *string_filter(tp_ctx *c, int line, const char *f, const tp_val *v, const tp_args *a) {
    bool mk = v->kind == TV_STR && v->markup;
    if (!strcmp(f, "trim")) {
        const tp_val *ch = tp_arg(a, 0, "chars");
        const tp_val *r = tp_strip(c, sv(c, v), ch && ch->kind != TV_NONE ? tp_need_str(c, line, ch, "chars") : NULL, true, true);
        return mk ? tp_markup(c->a, r) : r;
    }
    if (!strcmp(f, "lower") || !strcmp(f, "upper") || !strcmp(f, "capitalize") || !strcmp(f, "title")) {
        const tp_val *r = tp_casemap(c, sv(c, v), f[0] == 'l' ? 0 : f[0] == 'u' ? 1 : f[0] == 'c' ? 2 : 3);
        return mk ? tp_markup(c->a, r) : r;
    }
    if (!strcmp(f, "replace")) {
        const tp_val *o = tp_arg(a, 0, "old"), *n = tp_arg(a, 1, "new"), *k = tp_arg(a, 2, "count");
        if (!o || !n) FAIL(line, "replace() needs old and new");
        return tp_replace(c, sv(c, v), sv(c, o), sv(c, n), k && k->kind != TV_NONE ? tp_need_int(c, line, k, "count") : -1);
    }
    if (!strcmp(f, "join")) {
        const tp_val *d = tp_arg(a, 0, "d"), *at = tp_arg(a, 1, "attribute");
        const tp_list *l = tp_iterate(c, line, v);
        tp_buf b = {0};
        const tp_val *sep = d ? sv(c, d) : NULL;
        for (size_t i = 0; i < l->n; i++) {
            if (i && sep) tp_buf_put(c->a, &b, sep->u.s.s, sep->u.s.n);
            const tp_val *x = at && at->kind != TV_NONE ? attr_path(c, line, l->v[i], sv(c, at)) : l->v[i];
            tp_to_str(c->a, &b, x);
        }
        return mkstr(c, &b);
    }
    if (!strcmp(f, "indent")) {
        const tp_val *r = indent(c, line, sv(c, v), a);
        return mk ? tp_markup(c->a, r) : r;
    }
    if (!strcmp(f, "escape") || !strcmp(f, "e") || !strcmp(f, "forceescape")) {
        if (mk && f[0] != 'f') return v;
        const tp_val *s = sv(c, v);
        tp_buf b = {0};
        tp_html_escape(c->a, &b, s->u.s.s, s->u.s.n);
        return tp_markup(c->a, mkstr(c, &b));
    }
    if (!strcmp(f, "format")) {
        if (a->npos && a->nkw) FAIL(line, "can't handle positional and keyword arguments at the same time");
        if (a->nkw) UNSUP(line, "unsupported construct: format filter with keyword arguments");
        tp_list *t = tp_list_new(c->a, a->npos);
        t->tuple = true;
        for (size_t i = 0; i < a->npos; i++) tp_list_push(c->a, t, a->pos[i]);
        return tp_percent_format(c, line, sv(c, v), tp_list_val(c->a, t));
    }
    if (!strcmp(f, "wordcount")) {
        const tp_val *s = sv(c, v);
        int64_t n = 0;
        bool in = false;
        for (size_t i = 0; i < s->u.s.n; i++) {
            char ch = s->u.s.s[i];
            bool w = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
                     (unsigned char)ch >= 0x80;
            if (w && !in) n++;
            in = w;
        }
        return tp_int(c->a, n);
    }
    return NULL;
}

/* the number filters (int, float, abs, round); NULL: f is not one */
static const tp_val *number_filter(tp_ctx *c, int line, const char *f, const tp_val *v, const tp_args *a) {
    if (!strcmp(f, "int")) {
        const tp_val *d = tp_arg(a, 0, "default"), *bs = tp_arg(a, 1, "base");
        int64_t base = bs ? tp_need_int(c, line, bs, "base") : 10;
        if (v->kind == TV_INT) return v;
        if (v->kind == TV_BOOL) return tp_int(c->a, v->u.b);
        if (v->kind == TV_FLOAT && isfinite(v->u.f) && fabs(v->u.f) < 9.2e18) return tp_int(c->a, (int64_t)v->u.f);
        if (v->kind == TV_STR) {
            bool ok;
            const tp_val *r = parse_int_str(c, v, base, &ok);
            if (ok) return r;
            char *s = tp_strndup(c->a, v->u.s.s, v->u.s.n), *end;
            double fv = strtod(s, &end);
            while (*end == ' ' || *end == '\t' || *end == '\n') end++;
            if (*s && *end == 0 && isfinite(fv) && fabs(fv) < 9.2e18) return tp_int(c->a, (int64_t)fv);
        }
        return d ? d : tp_int(c->a, 0);
    }
    if (!strcmp(f, "float")) {
        const tp_val *d = tp_arg(a, 0, "default");
        if (v->kind == TV_FLOAT) return v;
        if (v->kind == TV_INT || v->kind == TV_BOOL) return tp_float(c->a, v->kind == TV_INT ? (double)v->u.i : v->u.b);
        if (v->kind == TV_STR) {
            const tp_val *t = tp_strip(c, v, NULL, true, true);
            char *s = tp_strndup(c->a, t->u.s.s, t->u.s.n), *end;
            double fv = strtod(s, &end);
            if (*s && *end == 0) return tp_float(c->a, fv);
        }
        return d ? d : tp_float(c->a, 0.0);
    }
    if (!strcmp(f, "abs")) {
        if (v->kind == TV_INT) {
            if (v->u.i == INT64_MIN) FAIL(line, "integer overflow");
            return tp_int(c->a, v->u.i < 0 ? -v->u.i : v->u.i);
        }
        if (v->kind == TV_BOOL) return tp_int(c->a, v->u.b);
        if (v->kind == TV_FLOAT) return tp_float(c->a, fabs(v->u.f));
        FAIL(line, "bad operand type for abs(): '%s'", tp_type_name(v));
    }
    if (!strcmp(f, "round")) {
        const tp_val *pr = tp_arg(a, 0, "precision"), *me = tp_arg(a, 1, "method");
        int64_t p = pr ? tp_need_int(c, line, pr, "precision") : 0;
        const char *m = me ? tp_need_str(c, line, me, "method")->u.s.s : "common";
        if (v->kind != TV_INT && v->kind != TV_FLOAT && v->kind != TV_BOOL)
            FAIL(line, "type %s doesn't define __round__ method", tp_type_name(v));
        if (p < -300 || p > 300) FAIL(line, "round precision out of range");
        double x = v->kind == TV_FLOAT ? v->u.f : v->kind == TV_INT ? (double)v->u.i : v->u.b, sc = pow(10.0, (double)p);
        if (!strcmp(m, "common")) {
            if (v->kind != TV_FLOAT) return p >= 0 ? tp_int(c->a, v->kind == TV_INT ? v->u.i : v->u.b) : tp_int(c->a, (int64_t)(nearbyint(x * sc) / sc));
            return tp_float(c->a, nearbyint(x * sc) / sc);
        }
        if (!strcmp(m, "ceil")) return tp_float(c->a, ceil(x * sc) / sc);
        if (!strcmp(m, "floor")) return tp_float(c->a, floor(x * sc) / sc);
        FAIL(line, "method must be common, ceil or floor");
    }
    return NULL;
}

/* the filters that walk a sequence (list, first, last, reverse, select/reject[attr], map, batch); NULL: f is
 * not one */
static const tp_val *collection_filter(tp_ctx *c, int line, const char *f, const tp_val *v, const tp_args *a) {
    if (!strcmp(f, "list")) {
        const tp_list *l = tp_iterate(c, line, v);
        tp_list *r = tp_list_new(c->a, l->n);
        for (size_t i = 0; i < l->n; i++) tp_list_push(c->a, r, l->v[i]);
        return tp_list_val(c->a, r);
    }
    if (!strcmp(f, "first")) {
        const tp_list *l = tp_iterate(c, line, v);
        return l->n ? l->v[0] : tp_undef_msg(c->a, "No first item, sequence was empty.");
    }
    if (!strcmp(f, "last")) {
        const tp_list *l = tp_iterate(c, line, v);
        return l->n ? l->v[l->n - 1] : tp_undef_msg(c->a, "No last item, sequence was empty.");
    }
    if (!strcmp(f, "reverse")) {
        if (v->kind == TV_STR) {
            const tp_list *l = tp_iterate(c, line, v);
            tp_buf b = {0};
            for (size_t i = l->n; i-- > 0;) tp_buf_put(c->a, &b, l->v[i]->u.s.s, l->v[i]->u.s.n);
            return mkstr(c, &b);
        }
        const char *type = v->kind == TV_DICT ? "dict_reversekeyiterator" : v->kind == TV_LIST && !v->u.l->gen
                           ? (v->u.l->tuple ? "reversed" : "list_reverseiterator") : NULL;
        const tp_list *l = tp_iterate(c, line, v);
        tp_list *r = tp_list_new(c->a, l->n);
        for (size_t i = l->n; i-- > 0;) tp_list_push(c->a, r, l->v[i]);
        return type ? tp_gen_val(c->a, r, type, false) : tp_list_val(c->a, r);
    }
    if (!strcmp(f, "select") || !strcmp(f, "reject") || !strcmp(f, "selectattr") || !strcmp(f, "rejectattr"))
        return select_impl(c, line, v, a, strstr(f, "attr") != NULL, f[0] == 's');
    if (!strcmp(f, "map")) {
        const tp_list *l = tp_truthy(v) ? tp_iterate(c, line, v) : tp_list_new(c->a, 0);
        tp_list *out = tp_list_new(c->a, l->n);
        const tp_val *at = NULL, *def = NULL;
        for (size_t k = 0; k < a->nkw; k++) {
            if (!strcmp(a->kwn[k], "attribute")) at = a->kwv[k];
            else if (!strcmp(a->kwn[k], "default")) def = a->kwv[k];
        }
        if (at) {
            for (size_t i = 0; i < l->n; i++) {
                const tp_val *x = attr_path(c, line, l->v[i], sv(c, at));
                tp_list_push(c->a, out, (x->kind == TV_UNDEF && def) ? def : x);
            }
            return tp_gen_val(c->a, out, "generator", false);
        }
        const tp_val *fn = tp_need_str(c, line, tp_arg(a, 0, NULL), "map filter name");
        char *fname = tp_strndup(c->a, fn->u.s.s, fn->u.s.n);
        if (!tp_filter_exists(fname)) FAIL(line, "No filter named '%s'.", fname);
        tp_args sub = {a->npos > 1 ? a->pos + 1 : NULL, a->npos > 1 ? a->npos - 1 : 0, a->kwn, a->kwv, a->nkw};
        for (size_t i = 0; i < l->n; i++) tp_list_push(c->a, out, tp_apply_filter(c, line, fname, l->v[i], &sub));
        return tp_gen_val(c->a, out, "generator", false);
    }
    if (!strcmp(f, "batch")) {
        int64_t size = tp_need_int(c, line, tp_arg(a, 0, "linecount") ? tp_arg(a, 0, "linecount") : &tp_none, "linecount");
        const tp_val *fill = tp_arg(a, 1, "fill_with");
        if (size <= 0) FAIL(line, "batch size must be positive");
        const tp_list *l = tp_iterate(c, line, v);
        tp_list *out = tp_list_new(c->a, 0), *cur = NULL;
        for (size_t i = 0; i < l->n; i++) {
            if (!cur || cur->n == (size_t)size) {
                cur = tp_list_new(c->a, 0);
                tp_list_push(c->a, out, tp_list_val(c->a, cur));
            }
            tp_list_push(c->a, cur, l->v[i]);
        }
        while (cur && fill && fill->kind != TV_NONE && cur->n < (size_t)size) tp_list_push(c->a, cur, fill);
        return tp_gen_val(c->a, out, "generator", false);
    }
    return NULL;
}

/* the filters that compare or accumulate items (sort, dictsort, unique, min, max, sum); NULL: f is not one */
static const tp_val *aggregate_filter(tp_ctx *c, int line, const char *f, const tp_val *v, const tp_args *a) {
    if (!strcmp(f, "sort")) {
        const tp_val *rv = tp_arg(a, 0, "reverse"), *cs = tp_arg(a, 1, "case_sensitive"), *at = tp_arg(a, 2, "attribute");
        const tp_list *l = tp_iterate(c, line, v);
        sort_item *s = sorted(c, line, l, at && at->kind != TV_NONE ? sv(c, at) : NULL, cs && tp_truthy(cs),
                              rv && tp_truthy(rv), -1);
        tp_list *out = tp_list_new(c->a, l->n);
        for (size_t i = 0; i < l->n; i++) tp_list_push(c->a, out, s[i].val);
        return tp_list_val(c->a, out);
    }
    if (!strcmp(f, "dictsort")) {
        const tp_val *cs = tp_arg(a, 0, "case_sensitive"), *by = tp_arg(a, 1, "by"), *rv = tp_arg(a, 2, "reverse");
        const tp_val *items = dict_items(c, line, v, false);
        int pos = 0;
        if (by) {
            tp_need_str(c, line, by, "by");
            if (!strcmp(by->u.s.s, "value")) pos = 1;
            else if (strcmp(by->u.s.s, "key")) FAIL(line, "You can only sort by either \"key\" or \"value\"");
        }
        sort_item *s = sorted(c, line, items->u.l, NULL, cs && tp_truthy(cs), rv && tp_truthy(rv), pos);
        tp_list *out = tp_list_new(c->a, items->u.l->n);
        for (size_t i = 0; i < items->u.l->n; i++) tp_list_push(c->a, out, s[i].val);
        return tp_list_val(c->a, out);
    }
    if (!strcmp(f, "unique")) {
        const tp_val *cs = tp_arg(a, 0, "case_sensitive"), *at = tp_arg(a, 1, "attribute");
        const tp_list *l = tp_iterate(c, line, v);
        tp_list *out = tp_list_new(c->a, 0), *seen = tp_list_new(c->a, 0);
        for (size_t i = 0; i < l->n; i++) {
            const tp_val *k = at && at->kind != TV_NONE ? attr_path(c, line, l->v[i], sv(c, at)) : l->v[i];
            k = lowered(c, k, cs && tp_truthy(cs));
            bool dup = false;
            for (size_t j = 0; j < seen->n && !dup; j++) dup = tp_equal(seen->v[j], k);
            if (!dup) {
                tp_list_push(c->a, seen, k);
                tp_list_push(c->a, out, l->v[i]);
            }
        }
        return tp_gen_val(c->a, out, "generator", false);
    }
    if (!strcmp(f, "min") || !strcmp(f, "max")) {
        const tp_val *cs = tp_arg(a, 0, "case_sensitive"), *at = tp_arg(a, 1, "attribute");
        const tp_list *l = tp_iterate(c, line, v);
        if (!l->n) return tp_undef_msg(c->a, "No aggregated item, sequence was empty.");
        size_t best = 0;
        const tp_val *bk = NULL;
        for (size_t i = 0; i < l->n; i++) {
            const tp_val *k = at && at->kind != TV_NONE ? attr_path(c, line, l->v[i], sv(c, at)) : l->v[i];
            k = lowered(c, k, cs && tp_truthy(cs));
            if (!bk) { bk = k; best = i; continue; }
            int r = tp_compare(c->a, line, k, bk, "<");
            if ((f[1] == 'i' && r < 0) || (f[1] == 'a' && r > 0)) { bk = k; best = i; }
        }
        return l->v[best];
    }
    if (!strcmp(f, "sum")) {
        const tp_val *at = tp_arg(a, 0, "attribute"), *st = tp_arg(a, 1, "start");
        const tp_list *l = tp_iterate(c, line, v);
        const tp_val *acc = st ? st : tp_int(c->a, 0);
        if (acc->kind == TV_STR) FAIL(line, "sum() can't sum strings [use ''.join(seq) instead]");
        for (size_t i = 0; i < l->n; i++) {
            const tp_val *x = at && at->kind != TV_NONE ? attr_path(c, line, l->v[i], sv(c, at)) : l->v[i];
            acc = tp_binop(c, line, OP_ADD, acc, x);
        }
        return acc;
    }
    return NULL;
}

const tp_val *tp_apply_filter(tp_ctx *c, int line, const char *f, const tp_val *v, const tp_args *a) {
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        const tp_val *dv = tp_arg(a, 0, "default_value"), *bo = tp_arg(a, 1, "boolean");
        bool use = v->kind == TV_UNDEF || (bo && tp_truthy(bo) && !tp_truthy(v));
        return use ? (dv ? dv : tp_str_ref(c->a, "", 0)) : v;
    }
    if (!strcmp(f, "tojson")) return tojson(c, line, v, a, 0);
    if (!strcmp(f, "safe")) return tp_markup(c->a, sv(c, v));
    if (!strcmp(f, "string")) return sv(c, v);
    if (!strcmp(f, "length") || !strcmp(f, "count")) return tp_int(c->a, (int64_t)seq_len(c, line, v));
    if (!strcmp(f, "items")) return dict_items(c, line, v, false);
    if (v->kind == TV_UNDEF && !takes_undefined(f)) tp_undef_fail(c->a, line, v);
    const tp_val *r;
    if ((r = string_filter(c, line, f, v, a)) || (r = number_filter(c, line, f, v, a)) ||
        (r = collection_filter(c, line, f, v, a)) || (r = aggregate_filter(c, line, f, v, a)))
        return r;
    UNSUP(line, "unsupported construct: filter '%s'", f);
}

/* ---------------------------------------------------------------- tests */

static const char *const k_tests[] = {"boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped",
                                      "even", "false", "filter", "float", "ge", "gt", "greaterthan", "in", "integer",
                                      "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number",
                                      "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper"};

bool tp_test_exists(const char *name) {
    for (size_t i = 0; i < sizeof k_tests / sizeof *k_tests; i++)
        if (!strcmp(k_tests[i], name)) return true;
    return false;
}

bool tp_apply_test(tp_ctx *c, int line, const char *t, const tp_val *v, const tp_args *a) {
    tp_kind k = v->kind;
    const tp_val *o = tp_arg(a, 0, NULL);
    if (!strcmp(t, "defined")) return k != TV_UNDEF;
    if (!strcmp(t, "undefined")) return k == TV_UNDEF;
    if (!strcmp(t, "none")) return k == TV_NONE;
    if (!strcmp(t, "string")) return k == TV_STR;
    if (!strcmp(t, "mapping")) return k == TV_DICT;
    if (!strcmp(t, "boolean")) return k == TV_BOOL;
    if (!strcmp(t, "true")) return k == TV_BOOL && v->u.b;
    if (!strcmp(t, "false")) return k == TV_BOOL && !v->u.b;
    if (!strcmp(t, "number")) return k == TV_INT || k == TV_FLOAT || k == TV_BOOL;
    if (!strcmp(t, "integer")) return k == TV_INT;
    if (!strcmp(t, "float")) return k == TV_FLOAT;
    if (!strcmp(t, "iterable")) return k == TV_LIST || k == TV_DICT || k == TV_STR || k == TV_UNDEF;
    if (!strcmp(t, "sequence")) return (k == TV_LIST && !v->u.l->gen) || k == TV_DICT || k == TV_STR || k == TV_UNDEF;
    if (!strcmp(t, "callable")) return k == TV_MACRO || k == TV_FUNC || k == TV_CYCLER;
    if (!strcmp(t, "escaped")) return false;
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        const tp_val *s = sv(c, v);
        bool cased = false;
        for (size_t i = 0; i < s->u.s.n; i++) {
            char ch = s->u.s.s[i];
            if (t[0] == 'l' && ch >= 'A' && ch <= 'Z') return false;
            if (t[0] == 'u' && ch >= 'a' && ch <= 'z') return false;
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) cased = true;
        }
        return cased;
    }
    if (!strcmp(t, "filter")) return k == TV_STR && tp_filter_exists(tp_strndup(c->a, v->u.s.s, v->u.s.n));
    if (!strcmp(t, "test")) return k == TV_STR && tp_test_exists(tp_strndup(c->a, v->u.s.s, v->u.s.n));
    if (!strcmp(t, "odd") || !strcmp(t, "even")) {
        if (v->kind == TV_UNDEF) tp_undef_fail(c->a, line, v);
        int64_t x = tp_need_int(c, line, v, t);
        return (x % 2 != 0) == (t[0] == 'o');
    }
    if (!o) FAIL(line, "test '%s' needs an argument", t);
    if (!strcmp(t, "eq") || !strcmp(t, "equalto")) return tp_equal(v, o);
    if (!strcmp(t, "ne")) return !tp_equal(v, o);
    if (!strcmp(t, "sameas")) {
        if (k == TV_NONE || k == TV_BOOL) return tp_equal(v, o) && o->kind == k;
        if (k == TV_INT && o->kind == TV_INT && v->u.i >= -5 && v->u.i <= 256) return v->u.i == o->u.i;   /* CPython caches these */
        return v == o;
    }
    if (!strcmp(t, "lt") || !strcmp(t, "lessthan")) return tp_compare(c->a, line, v, o, "<") < 0;
    if (!strcmp(t, "le")) return tp_compare(c->a, line, v, o, "<=") <= 0;
    if (!strcmp(t, "gt") || !strcmp(t, "greaterthan")) return tp_compare(c->a, line, v, o, ">") > 0;
    if (!strcmp(t, "ge")) return tp_compare(c->a, line, v, o, ">=") >= 0;
    if (!strcmp(t, "in")) {
        tp_args none = {0};
        (void)none;
        if (o->kind == TV_STR) {
            if (k != TV_STR) FAIL(line, "'in <string>' requires string as left operand, not %s", tp_type_name(v));
            return tp_find_sub(o->u.s.s, o->u.s.n, v->u.s.s, v->u.s.n) != NULL;
        }
        const tp_list *l = tp_iterate(c, line, o);
        for (size_t i = 0; i < l->n; i++)
            if (tp_equal(l->v[i], v)) return true;
        return false;
    }
    if (!strcmp(t, "divisibleby")) {
        if (v->kind == TV_UNDEF) tp_undef_fail(c->a, line, v);
        int64_t x = tp_need_int(c, line, v, t);
        int64_t d = tp_need_int(c, line, o, t);
        if (d == 0) FAIL(line, "integer modulo by zero");
        return x % d == 0;
    }
    UNSUP(line, "unsupported construct: test '%s'", t);
}

/* ---------------------------------------------------------------- methods */

static const char *const k_str_methods[] = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map",
    "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
    "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition",
    "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
    "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"};

int tp_method_kind(const tp_val *obj, const char *name) {
    if (name[0] == '_' && name[1] == '_') return 2;
    static const char *const dict_ok[] = {"get", "items", "keys", "values", "copy", "fromkeys"};
    static const char *const dict_bad[] = {"clear", "pop", "popitem", "setdefault", "update"};
    static const char *const list_ok[] = {"index", "count", "copy"};
    static const char *const list_bad[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};
#define IN(arr) for (size_t i_ = 0; i_ < sizeof arr / sizeof *arr; i_++) if (!strcmp(arr[i_], name))
    switch (obj->kind) {
    case TV_DICT:
        IN(dict_ok) return 1;
        IN(dict_bad) return 2;
        return 0;
    case TV_LIST:
        if (obj->u.l->tuple) {
            if (!strcmp(name, "index") || !strcmp(name, "count")) return 1;
            return 0;
        }
        IN(list_ok) return 1;
        IN(list_bad) return 2;
        return 0;
    case TV_STR:
        IN(k_str_methods) return 1;
        return 0;
    default: return 0;
    }
#undef IN
}

static bool affix(const tp_val *s, const tp_val *p, bool end) {
    if (p->u.s.n > s->u.s.n) return false;
    return !memcmp(s->u.s.s + (end ? s->u.s.n - p->u.s.n : 0), p->u.s.s, p->u.s.n);
}

static const tp_val *str_format(tp_ctx *c, int line, const tp_val *fmt, const tp_args *a) {
    tp_buf b = {0};
    const char *s = fmt->u.s.s;
    size_t n = fmt->u.s.n, autoi = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '}' ) {
            if (i + 1 < n && s[i + 1] == '}') { tp_buf_putc(c->a, &b, '}'); i++; continue; }
            FAIL(line, "Single '}' encountered in format string");
        }
        if (ch != '{') { tp_buf_putc(c->a, &b, ch); continue; }
        if (i + 1 < n && s[i + 1] == '{') { tp_buf_putc(c->a, &b, '{'); i++; continue; }
        size_t j = i + 1;
        while (j < n && s[j] != '}') j++;
        if (j >= n) FAIL(line, "Single '{' encountered in format string");
        const char *field = s + i + 1;
        size_t fl = j - i - 1;
        for (size_t k = 0; k < fl; k++)
            if (field[k] == ':' || field[k] == '!' || field[k] == '.' || field[k] == '[')
                UNSUP(line, "unsupported construct: format field '{%.*s}'", (int)fl, field);
        const tp_val *v = NULL;
        if (fl == 0) v = tp_arg(a, autoi++, NULL);
        else if (field[0] >= '0' && field[0] <= '9') v = tp_arg(a, (size_t)atoi(field), NULL);
        else {
            char *nm = tp_strndup(c->a, field, fl);
            for (size_t k = 0; k < a->nkw && !v; k++)
                if (!strcmp(a->kwn[k], nm)) v = a->kwv[k];
            if (!v) FAIL(line, "'%s'", nm);
        }
        if (!v) FAIL(line, "tuple index out of range");
        tp_to_str(c->a, &b, v);
        i = j;
    }
    return mkstr(c, &b);
}

static const tp_val *str_method(tp_ctx *c, int line, const tp_val *s, const char *m, const tp_args *a) {
    const tp_val *a0 = tp_arg(a, 0, NULL), *a1 = tp_arg(a, 1, NULL);
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        const tp_val *ch = a0 && a0->kind != TV_NONE ? tp_need_str(c, line, a0, "strip arg") : NULL;
        return tp_strip(c, s, ch, m[0] != 'r', m[0] != 'l');
    }
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        const tp_val *sep = tp_arg(a, 0, "sep"), *mx = tp_arg(a, 1, "maxsplit");
        return tp_split(c, line, s, sep, mx ? tp_need_int(c, line, mx, "maxsplit") : -1, m[0] == 'r');
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        if (!a0) FAIL(line, "%s() takes at least 1 argument (0 given)", m);
        if (a->npos > 1) UNSUP(line, "unsupported construct: %s() with start/end", m);
        if (a0->kind == TV_LIST && a0->u.l->tuple) {
            for (size_t i = 0; i < a0->u.l->n; i++)
                if (affix(s, tp_need_str(c, line, a0->u.l->v[i], "tuple for startswith"), m[0] == 'e')) return &tp_true;
            return &tp_false;
        }
        if (a0->kind != TV_STR)
            FAIL(line, "%s first arg must be str or a tuple of str, not %s", m, tp_type_name(a0));
        return tp_bool(affix(s, a0, m[0] == 'e'));
    }
    if (!strcmp(m, "upper")) return tp_casemap(c, s, 1);
    if (!strcmp(m, "lower") || !strcmp(m, "casefold")) return tp_casemap(c, s, 0);
    if (!strcmp(m, "capitalize")) return tp_casemap(c, s, 2);
    if (!strcmp(m, "title")) return tp_casemap(c, s, 4);
    if (!strcmp(m, "replace")) {
        if (!a0 || !a1) FAIL(line, "replace expected at least 2 arguments");
        const tp_val *k = tp_arg(a, 2, "count");
        return tp_replace(c, s, tp_need_str(c, line, a0, "replace arg 1"), tp_need_str(c, line, a1, "replace arg 2"),
                       k ? tp_need_int(c, line, k, "count") : -1);
    }
    if (!strcmp(m, "format")) return str_format(c, line, s, a);
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "rindex") || !strcmp(m, "count")) {
        const tp_val *t = tp_need_str(c, line, a0, m);
        if (a->npos > 1) UNSUP(line, "unsupported construct: %s() with start/end", m);
        if (m[0] == 'c') {
            if (t->u.s.n == 0) return tp_int(c->a, (int64_t)tp_utf8_len(s->u.s.s, s->u.s.n) + 1);
            int64_t k = 0;
            for (size_t i = 0; i + t->u.s.n <= s->u.s.n;)
                if (!memcmp(s->u.s.s + i, t->u.s.s, t->u.s.n)) { k++; i += t->u.s.n; }
                else i++;
            return tp_int(c->a, k);
        }
        int64_t pos = -1;
        if (m[0] == 'r') {
            for (size_t i = s->u.s.n + 1 >= t->u.s.n + 1 ? s->u.s.n - t->u.s.n + 1 : 0; i-- > 0;)
                if (!memcmp(s->u.s.s + i, t->u.s.s, t->u.s.n)) { pos = (int64_t)i; break; }
        } else {
            const char *q = tp_find_sub(s->u.s.s, s->u.s.n, t->u.s.s, t->u.s.n);
            if (q) pos = (int64_t)(q - s->u.s.s);
        }
        if (pos >= 0) pos = (int64_t)tp_utf8_len(s->u.s.s, (size_t)pos);
        if (pos < 0 && strstr(m, "index")) FAIL(line, "substring not found");
        return tp_int(c->a, pos);
    }
    if (!strcmp(m, "join")) {
        const tp_list *l = tp_iterate(c, line, a0 ? a0 : &tp_undef);
        tp_buf b = {0};
        for (size_t i = 0; i < l->n; i++) {
            if (l->v[i]->kind != TV_STR)
                FAIL(line, "sequence item %zu: expected str instance, %s found", i, tp_type_name(l->v[i]));
            if (i) tp_buf_put(c->a, &b, s->u.s.s, s->u.s.n);
            tp_buf_put(c->a, &b, l->v[i]->u.s.s, l->v[i]->u.s.n);
        }
        return mkstr(c, &b);
    }
    if (!strcmp(m, "splitlines")) {
        tp_list *l = tp_list_new(c->a, 0);
        size_t st = 0, n = s->u.s.n;
        const char *p = s->u.s.s;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t j = tp_utf8_next(p, n, i, &cp);
            if (cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 ||
                cp == 0x2028 || cp == 0x2029) {
                if (cp == '\r' && j < n && p[j] == '\n') j++;
                tp_list_push(c->a, l, tp_str_ref(c->a, p + st, (a0 && tp_truthy(a0) ? j : i) - st));
                st = j;
            }
            i = j;
        }
        if (st < n) tp_list_push(c->a, l, tp_str_ref(c->a, p + st, n - st));
        return tp_list_val(c->a, l);
    }
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        const tp_val *t = tp_need_str(c, line, a0, m);
        bool end = m[6] == 's';
        if (!affix(s, t, end)) return s;
        return tp_str_ref(c->a, s->u.s.s + (end ? 0 : t->u.s.n), s->u.s.n - t->u.s.n);
    }
    if (!strcmp(m, "isdigit") || !strcmp(m, "isdecimal") || !strcmp(m, "isnumeric") || !strcmp(m, "isalpha") ||
        !strcmp(m, "isalnum") || !strcmp(m, "isspace") || !strcmp(m, "isupper") || !strcmp(m, "islower")) {
        if (!strcmp(m, "isupper") || !strcmp(m, "islower")) {
            tp_args none = {0};
            return tp_bool(tp_apply_test(c, line, m + 2, s, &none));
        }
        if (s->u.s.n == 0) return &tp_false;
        for (size_t i = 0; i < s->u.s.n;) {
            uint32_t cp;
            i = tp_utf8_next(s->u.s.s, s->u.s.n, i, &cp);
            bool d = cp >= '0' && cp <= '9', al = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
            if (cp >= 0x80 && strcmp(m, "isspace")) UNSUP(line, "unsupported construct: str.%s() on non-ASCII text", m);
            bool ok = m[2] == 'd' || m[2] == 'n' ? d : !strcmp(m, "isalpha") ? al : !strcmp(m, "isalnum") ? (d || al) : tp_py_isspace(cp);
            if (!ok) return &tp_false;
        }
        return &tp_true;
    }
    UNSUP(line, "unsupported construct: method str.%s()", m);
}

const tp_val *tp_call_method(tp_ctx *c, int line, const tp_val *obj, const char *m, const tp_args *a, bool *found) {
    *found = true;
    if (obj->kind == TV_STR) return str_method(c, line, obj, m, a);
    if (obj->kind == TV_DICT) {
        const tp_dict *d = obj->u.d;
        if (!strcmp(m, "get")) {
            const tp_val *k = tp_arg(a, 0, NULL), *dv = tp_arg(a, 1, NULL);
            if (!k) FAIL(line, "get expected at least 1 argument, got 0");
            const tp_val *v = tp_dict_get(d, k);
            return v ? v : dv ? dv : &tp_none;
        }
        if (!strcmp(m, "items")) return dict_items(c, line, obj, true);
        if (!strcmp(m, "keys") || !strcmp(m, "values")) {
            tp_list *l = tp_list_new(c->a, d->n);
            for (size_t i = 0; i < d->n; i++) tp_list_push(c->a, l, m[0] == 'k' ? d->k[i] : d->v[i]);
            return tp_gen_val(c->a, l, m[0] == 'k' ? "dict_keys" : "dict_values", true);
        }
        if (!strcmp(m, "copy")) {
            tp_dict *n = tp_dict_new(c->a);
            for (size_t i = 0; i < d->n; i++) tp_dict_set(c->a, n, d->k[i], d->v[i]);
            return tp_dict_val(c->a, n);
        }
    }
    if (obj->kind == TV_LIST) {
        const tp_list *l = obj->u.l;
        const tp_val *x = tp_arg(a, 0, NULL);
        if (!strcmp(m, "copy")) {
            tp_list *n = tp_list_new(c->a, l->n);
            for (size_t i = 0; i < l->n; i++) tp_list_push(c->a, n, l->v[i]);
            return tp_list_val(c->a, n);
        }
        if (!x) FAIL(line, "%s() takes exactly one argument (0 given)", m);
        int64_t k = 0;
        for (size_t i = 0; i < l->n; i++)
            if (tp_equal(l->v[i], x)) {
                if (m[0] == 'i') return tp_int(c->a, (int64_t)i);
                k++;
            }
        if (m[0] == 'i') FAIL(line, "list.index(x): x not in list");
        return tp_int(c->a, k);
    }
    *found = false;
    return NULL;
}
