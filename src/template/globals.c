/*
 * globals.c — the functions a chat template can call by name: range (capped
 * at the sandbox's MAX_RANGE), namespace (transformers' TemplateNamespace:
 * no underscore names), dict, raise_exception (its message becomes the
 * error, verbatim), strftime_now (local time, like datetime.now()).
 *
 * Invariants: arguments are checked before use; range() refuses more than
 * 100000 items before allocating anything.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "template/tmpl_impl.h"

#define FAIL(line, ...) tp_fail_arena(c->a, line, SL_EINVAL, __VA_ARGS__)
#define UNSUP(line, ...) tp_fail_arena(c->a, line, SL_EUNSUPPORTED, __VA_ARGS__)

/* ---------------------------------------------------------------- globals */

static const tp_val k_globals[] = {
    {.kind = TV_FUNC, .u.fn = FN_RANGE}, {.kind = TV_FUNC, .u.fn = FN_NAMESPACE}, {.kind = TV_FUNC, .u.fn = FN_DICT},
    {.kind = TV_FUNC, .u.fn = FN_RAISE}, {.kind = TV_FUNC, .u.fn = FN_STRFTIME}, {.kind = TV_FUNC, .u.fn = FN_CYCLER},
    {.kind = TV_FUNC, .u.fn = FN_JOINER}};
static const char *const k_global_names[] = {"range", "namespace", "dict", "raise_exception", "strftime_now", "cycler",
                                             "joiner"};

const tp_val *tp_global(const char *name) {
    for (size_t i = 0; i < sizeof k_global_names / sizeof *k_global_names; i++)
        if (!strcmp(k_global_names[i], name)) return &k_globals[i];
    return NULL;
}

static void check_ns_name(tp_ctx *c, int line, const tp_val *k) {
    if (k->kind == TV_STR && k->u.s.n && k->u.s.s[0] == '_') {
        tp_buf b = {0};
        tp_repr(c->a, &b, k);
        FAIL(line, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got %s. "
                   "Please rename the attribute.", b.p);
    }
}

static tp_dict *dict_from_args(tp_ctx *c, int line, const tp_args *a, bool ns) {
    tp_dict *d = tp_dict_new(c->a);
    if (a->npos > 1) FAIL(line, "%s expected at most 1 argument, got %zu", ns ? "namespace" : "dict", a->npos);
    if (a->npos == 1) {
        const tp_val *src = a->pos[0];
        if (src->kind == TV_DICT) {
            for (size_t i = 0; i < src->u.d->n; i++) tp_dict_set(c->a, d, src->u.d->k[i], src->u.d->v[i]);
        } else {
            const tp_list *l = tp_iterate(c, line, src);
            for (size_t i = 0; i < l->n; i++) {
                const tp_list *p = tp_iterate(c, line, l->v[i]);
                if (p->n != 2) FAIL(line, "dictionary update sequence element #%zu has length %zu; 2 is required", i, p->n);
                tp_dict_set(c->a, d, p->v[0], p->v[1]);
            }
        }
    }
    for (size_t i = 0; i < a->nkw; i++) tp_dict_set(c->a, d, tp_str_ref(c->a, a->kwn[i], strlen(a->kwn[i])), a->kwv[i]);
    if (ns)
        for (size_t i = 0; i < d->n; i++) check_ns_name(c, line, d->k[i]);
    return d;
}

const tp_val *tp_call_func(tp_ctx *c, int line, int fn, const tp_args *a) {
    switch (fn) {
    case FN_RANGE: {
        int64_t lo = 0, hi, st = 1;
        if (a->npos == 1) hi = tp_need_int(c, line, a->pos[0], "range");
        else if (a->npos == 2 || a->npos == 3) {
            lo = tp_need_int(c, line, a->pos[0], "range");
            hi = tp_need_int(c, line, a->pos[1], "range");
            if (a->npos == 3) st = tp_need_int(c, line, a->pos[2], "range");
        } else FAIL(line, "range expected 1 to 3 arguments, got %zu", a->npos);
        if (st == 0) FAIL(line, "range() arg 3 must not be zero");
        double cnt = st > 0 ? ceil(((double)hi - (double)lo) / (double)st) : ceil(((double)lo - (double)hi) / (double)-st);
        if (cnt > 100000)
            FAIL(line, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        tp_list *l = tp_list_new(c->a, 0);
        for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) tp_list_push(c->a, l, tp_int(c->a, i));
        return tp_list_val(c->a, l);
    }
    case FN_NAMESPACE: case FN_DICT: {
        tp_dict *d = dict_from_args(c, line, a, fn == FN_NAMESPACE);
        tp_val *v = tp_alloc(c->a, sizeof *v);
        v->kind = fn == FN_NAMESPACE ? TV_NS : TV_DICT;
        v->u.d = d;
        return v;
    }
    case FN_RAISE: {
        const tp_val *m = tp_arg(a, 0, "message");
        if (!m) FAIL(line, "raise_exception() missing 1 required positional argument: 'message'");
        const tp_val *s = tp_as_str(c->a, m);
        FAIL(line, "%.*s", (int)(s->u.s.n > 800 ? 800 : s->u.s.n), s->u.s.s);
    }
    case FN_STRFTIME: {
        const tp_val *f = tp_need_str(c, line, tp_arg(a, 0, "format"), "strftime format");
        char *fmt = tp_strndup(c->a, f->u.s.s, f->u.s.n), out[512];
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        size_t k = fmt[0] ? strftime(out, sizeof out, fmt, &tmv) : 0;
        return tp_str(c->a, out, k);
    }
    default: UNSUP(line, "unsupported construct: %s()", fn == FN_CYCLER ? "cycler" : "joiner");
    }
}
