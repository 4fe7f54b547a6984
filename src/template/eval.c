/*
 * eval.c — chat-template evaluator: executes statements (output, if, for
 * with loop.* and break/continue, set, macros and call blocks, filter and
 * set blocks) and evaluates expressions with jinja2's sandboxed semantics:
 * attribute lookup tries the Python attribute first then the item, item
 * lookup the reverse; missing ones are Undefined, which prints as "" and
 * fails (UndefinedError text) when used further.
 *
 * Invariants: loop iterations, macro depth and output size are bounded by
 * tp_ctx.lim; every failure longjmps through tp_fail_arena with the line.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "template/tmpl_impl.h"

#define FAIL(line, ...) tp_fail_arena(c->a, line, SL_EINVAL, __VA_ARGS__)

static void exec_list(tp_ctx *c, tp_node *const *list, size_t n);

/* ---------------------------------------------------------------- scopes */

static tp_scope *scope_new(tp_ctx *c, tp_scope *parent) {
    tp_scope *s = tp_alloc(c->a, sizeof *s);
    s->parent = parent;
    return s;
}

static void scope_set(tp_ctx *c, tp_scope *s, const char *name, const tp_val *v) {
    size_t n = strlen(name);
    for (size_t i = 0; i < s->vars.n; i++)   /* rebinding allocates nothing (loops rebind every iteration) */
        if (s->vars.k[i]->u.s.n == n && memcmp(s->vars.k[i]->u.s.s, name, n) == 0) {
            s->vars.v[i] = v;
            return;
        }
    tp_dict_set(c->a, &s->vars, tp_str_ref(c->a, name, n), v);
}

const tp_val *tp_lookup(tp_ctx *c, tp_scope *s, const char *name) {
    size_t n = strlen(name);
    for (; s; s = s->parent) {
        const tp_val *v = tp_dict_gets(&s->vars, name, n);
        if (v) return v;
    }
    const tp_val *g = tp_global(name);
    if (g) return g;
    tp_val *u = tp_alloc(c->a, sizeof *u);
    u->kind = TV_UNDEF;
    u->uname = name;
    return u;
}

void tp_check_output(tp_ctx *c, int line) {
    if (c->out->n > c->lim.max_output)
        tp_fail_arena(c->a, line, SL_EINVAL, "rendered output exceeds %llu bytes (limit)",
                      (unsigned long long)c->lim.max_output);
}

static void emit(tp_ctx *c, int line, const char *s, size_t n) {
    tp_buf_put(c->a, c->out, s, n);
    tp_check_output(c, line);
}

/* ---------------------------------------------------------------- lookup */

static const char *obj_repr(const tp_val *v) {
    switch (v->kind) {
    case TV_NONE: return "None";
    case TV_NS: return "transformers.utils.chat_template_utils.TemplateNamespace object";
    case TV_LOOP: return "jinja2.runtime.LoopContext object";
    case TV_MACRO: return "jinja2.runtime.Macro object";
    case TV_STR: return "str object";
    case TV_INT: return "int object";
    case TV_FLOAT: return "float object";
    case TV_BOOL: return "bool object";
    case TV_LIST: return v->u.l->tuple ? "tuple object" : "list object";
    case TV_DICT: return "dict object";
    default: return "object";
    }
}

static const tp_val *no_attr(tp_ctx *c, const tp_val *obj, const char *name) {
    return tp_undef_msg(c->a, "'%s' has no attribute '%s'", obj_repr(obj), name);
}

static const tp_val *loop_attr(tp_ctx *c, const tp_loop *L, const char *name) {
    size_t n = L->items->n, i = L->i;
    if (!strcmp(name, "index")) return tp_int(c->a, (int64_t)i + 1);
    if (!strcmp(name, "index0")) return tp_int(c->a, (int64_t)i);
    if (!strcmp(name, "revindex")) return tp_int(c->a, (int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return tp_int(c->a, (int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return tp_bool(i == 0);
    if (!strcmp(name, "last")) return tp_bool(i + 1 == n);
    if (!strcmp(name, "length")) return tp_int(c->a, (int64_t)n);
    if (!strcmp(name, "depth")) return tp_int(c->a, L->depth);
    if (!strcmp(name, "depth0")) return tp_int(c->a, L->depth - 1);
    if (!strcmp(name, "previtem"))
        return i > 0 ? L->items->v[i - 1] : tp_undef_msg(c->a, "there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? L->items->v[i + 1] : tp_undef_msg(c->a, "there is no next item");
    return NULL;
}

static const tp_val *bound(tp_ctx *c, const tp_val *obj, const char *name) {
    tp_val *f = tp_alloc(c->a, sizeof *f);
    f->kind = TV_FUNC;
    f->u.fn = FN_METHOD;
    f->uname = name;
    f->self = obj;
    return f;
}

static const tp_val *unsafe(tp_ctx *c, const tp_val *obj, const char *name) {
    return tp_undef_msg(c->a, "access to attribute '%s' of '%s' object is unsafe.", name, tp_type_name(obj));
}

const tp_val *tp_getattr(tp_ctx *c, int line, const tp_val *obj, const char *name) {
    if (obj->kind == TV_UNDEF) tp_undef_fail(c->a, line, obj);
    int mk = tp_method_kind(obj, name);
    if (mk == 2) return unsafe(c, obj, name);
    if (mk == 1) return bound(c, obj, name);
    switch (obj->kind) {
    case TV_DICT: {
        const tp_val *v = tp_dict_gets(obj->u.d, name, strlen(name));
        return v ? v : no_attr(c, obj, name);
    }
    case TV_NS: {
        const tp_val *v = tp_dict_gets(obj->u.d, name, strlen(name));
        return v ? v : no_attr(c, obj, name);
    }
    case TV_LOOP: {
        const tp_val *v = loop_attr(c, obj->u.loop, name);
        return v ? v : no_attr(c, obj, name);
    }
    default: return no_attr(c, obj, name);
    }
}

static bool as_index(const tp_val *k, int64_t *i) {
    if (k->kind == TV_INT) { *i = k->u.i; return true; }
    if (k->kind == TV_BOOL) { *i = k->u.b; return true; }
    return false;
}

const tp_val *tp_getitem(tp_ctx *c, int line, const tp_val *obj, const tp_val *key) {
    if (obj->kind == TV_UNDEF) tp_undef_fail(c->a, line, obj);
    if (obj->kind == TV_LIST && obj->u.l->gen) FAIL(line, "'%s' object is not subscriptable", obj->u.l->gen);
    int64_t i;
    if (obj->kind == TV_DICT) {
        const tp_val *v = tp_dict_get(obj->u.d, key);
        if (v) return v;
    } else if ((obj->kind == TV_LIST || obj->kind == TV_STR) && as_index(key, &i)) {
        if (obj->kind == TV_LIST) {
            int64_t n = (int64_t)obj->u.l->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) return obj->u.l->v[i];
        } else {
            const char *s = obj->u.s.s;
            size_t n = obj->u.s.n, len = tp_utf8_len(s, n);
            if (i < 0) i += (int64_t)len;
            if (i >= 0 && (uint64_t)i < len) {
                size_t p = 0;
                for (int64_t k = 0; k < i; k++) p = tp_utf8_next(s, n, p, NULL);
                size_t q = tp_utf8_next(s, n, p, NULL);
                return tp_str_ref(c->a, s + p, q - p);
            }
        }
    }
    if (key->kind == TV_STR) {
        char *nm = tp_strndup(c->a, key->u.s.s, key->u.s.n);
        if (strlen(nm) == key->u.s.n) return tp_getattr(c, line, obj, nm);
    }
    tp_buf b = {0};
    tp_repr(c->a, &b, key);
    const char *r = obj_repr(obj);
    return tp_undef_msg(c->a, "%s has no element %.*s", r, (int)(b.n > 200 ? 200 : b.n), b.p ? b.p : "");
}

const tp_list *tp_iterate(tp_ctx *c, int line, const tp_val *v) {
    switch (v->kind) {
    case TV_UNDEF: return tp_list_new(c->a, 0);
    case TV_LIST:
        if (v->u.l->gen && !v->u.l->view) {
            if (v->u.l->consumed) return tp_list_new(c->a, 0);
            v->u.l->consumed = true;
        }
        return v->u.l;
    case TV_DICT: {
        tp_list *l = tp_list_new(c->a, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++) tp_list_push(c->a, l, v->u.d->k[i]);
        return l;
    }
    case TV_STR: {
        tp_list *l = tp_list_new(c->a, 0);
        for (size_t i = 0; i < v->u.s.n;) {
            size_t j = tp_utf8_next(v->u.s.s, v->u.s.n, i, NULL);
            tp_list_push(c->a, l, tp_str_ref(c->a, v->u.s.s + i, j - i));
            i = j;
        }
        return l;
    }
    default: FAIL(line, "'%s' object is not iterable", tp_type_name(v));
    }
}

/* ---------------------------------------------------------------- operators */

static bool isnum(const tp_val *v) { return v->kind == TV_INT || v->kind == TV_FLOAT || v->kind == TV_BOOL; }
static double fval(const tp_val *v) { return v->kind == TV_FLOAT ? v->u.f : v->kind == TV_INT ? (double)v->u.i : v->u.b; }
static int64_t ival(const tp_val *v) { return v->kind == TV_INT ? v->u.i : v->u.b; }

static const char *op_sym(int op) {
    static const char *const s[] = {"+", "-", "*", "/", "//", "%", "**", "~"};
    return op >= 0 && op <= OP_CONCAT ? s[op] : "?";
}

_Noreturn static void bad_operands(tp_ctx *c, int line, int op, const tp_val *x, const tp_val *y) {
    if (op == OP_ADD && x->kind == TV_STR)
        FAIL(line, "can only concatenate str (not \"%s\") to str", tp_type_name(y));
    if (op == OP_ADD && x->kind == TV_LIST)
        FAIL(line, "can only concatenate %s (not \"%s\") to %s", tp_type_name(x), tp_type_name(y), tp_type_name(x));
    FAIL(line, "unsupported operand type(s) for %s: '%s' and '%s'", op == OP_POW ? "** or pow()" : op_sym(op),
         tp_type_name(x), tp_type_name(y));
}

static const tp_val *repeat(tp_ctx *c, int line, const tp_val *seq, int64_t k) {
    if (k < 0) k = 0;
    if (seq->kind == TV_STR) {
        if (seq->u.s.n && (uint64_t)k > c->lim.max_output / seq->u.s.n) FAIL(line, "repeated string too long");
        tp_buf b = {0};
        for (int64_t i = 0; i < k; i++) tp_buf_put(c->a, &b, seq->u.s.s, seq->u.s.n);
        return tp_str_ref(c->a, b.p ? b.p : "", b.n);
    }
    if (seq->u.l->n && (uint64_t)k > c->lim.max_iterations / seq->u.l->n) FAIL(line, "repeated list too long");
    tp_list *l = tp_list_new(c->a, 0);
    l->tuple = seq->u.l->tuple;
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq->u.l->n; j++) tp_list_push(c->a, l, seq->u.l->v[j]);
    return tp_list_val(c->a, l);
}

/* printf-style `str % args` with Python's conversions (s r d i u x X o f F e E g G c %). */
const tp_val *tp_percent_format(tp_ctx *c, int line, const tp_val *fmt, const tp_val *arg) {
    const tp_list *args;
    if (arg->kind == TV_LIST && arg->u.l->tuple) args = arg->u.l;
    else {
        tp_list *l = tp_list_new(c->a, 1);
        tp_list_push(c->a, l, arg);
        args = l;
    }
    tp_buf b = {0};
    size_t ai = 0;
    const char *s = fmt->u.s.s;
    size_t n = fmt->u.s.n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') { tp_buf_putc(c->a, &b, s[i]); continue; }
        char flags[8] = "";
        size_t nf = 0;
        int width = -1, prec = -1;
        i++;
        if (i < n && s[i] == '(') tp_fail_arena(c->a, line, SL_EUNSUPPORTED, "unsupported construct: %%(name) formatting");
        while (i < n && strchr("-+ #0", s[i]) && nf < sizeof flags - 1) flags[nf++] = s[i++];
        while (i < n && s[i] >= '0' && s[i] <= '9') { width = (width < 0 ? 0 : width) * 10 + (s[i++] - '0'); if (width > 1000) FAIL(line, "format width too large"); }
        if (i < n && s[i] == '.') {
            prec = 0;
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9') { prec = prec * 10 + (s[i++] - '0'); if (prec > 1000) FAIL(line, "format precision too large"); }
        }
        while (i < n && (s[i] == 'h' || s[i] == 'l' || s[i] == 'L')) i++;
        if (i >= n) FAIL(line, "incomplete format");
        char k = s[i];
        if (k == '%') { tp_buf_putc(c->a, &b, '%'); continue; }
        if (ai >= args->n) FAIL(line, "not enough arguments for format string");
        const tp_val *v = args->v[ai++];
        char cf[64], tmp[2200];
        if (k == 's' || k == 'r' || k == 'a' || k == 'c') {
            tp_buf t = {0};
            if (k == 's') tp_to_str(c->a, &t, v);
            else if (k == 'c') {
                if (v->kind == TV_STR && tp_utf8_len(v->u.s.s, v->u.s.n) == 1) tp_buf_put(c->a, &t, v->u.s.s, v->u.s.n);
                else if (v->kind == TV_INT && v->u.i >= 0 && v->u.i <= 0x10ffff) tp_put_cp(c->a, &t, (uint32_t)v->u.i);
                else FAIL(line, "%%c requires an int or a unicode character, not %s", tp_type_name(v));
            } else tp_repr(c->a, &t, v);
            size_t cut = t.n, chars = tp_utf8_len(t.p ? t.p : "", t.n);
            if (prec >= 0 && (size_t)prec < chars) {
                cut = 0;
                for (int q = 0; q < prec; q++) cut = tp_utf8_next(t.p, t.n, cut, NULL);
                chars = (size_t)prec;
            }
            bool left = strchr(flags, '-') != NULL;
            for (size_t q = chars; !left && (int)q < width; q++) tp_buf_putc(c->a, &b, ' ');
            tp_buf_put(c->a, &b, t.p ? t.p : "", cut);
            for (size_t q = chars; left && (int)q < width; q++) tp_buf_putc(c->a, &b, ' ');
            continue;
        }
        if (!strchr("diuxXofFeEgG", k))
            tp_fail_arena(c->a, line, SL_EUNSUPPORTED, "unsupported construct: '%%%c' in %% formatting", k);
        if (v->kind == TV_UNDEF) tp_undef_fail(c->a, line, v);
        if (!isnum(v)) FAIL(line, "%%%c format: a real number is required, not %s", k, tp_type_name(v));
        char wbuf[12] = "", pbuf[12] = "";
        if (width >= 0) snprintf(wbuf, sizeof wbuf, "%d", width);
        if (prec >= 0) snprintf(pbuf, sizeof pbuf, ".%d", prec);
        if (strchr("diuxXo", k)) {
            if (v->kind == TV_FLOAT && (k == 'x' || k == 'X' || k == 'o'))
                FAIL(line, "%%%c format: an integer is required, not float", k);
            int64_t iv = v->kind == TV_FLOAT ? (int64_t)v->u.f : ival(v);
            snprintf(cf, sizeof cf, "%%%s%s%sll%c", flags, wbuf, pbuf, k == 'i' || k == 'u' ? 'd' : k);
            if (iv < 0 && strchr("xXo", k))   /* Python prints -1f where C prints two's complement */
                tp_fail_arena(c->a, line, SL_EUNSUPPORTED, "unsupported construct: negative number with %%%c", k);
            snprintf(tmp, sizeof tmp, cf, (long long)iv);
        } else {
            snprintf(cf, sizeof cf, "%%%s%s%s%c", flags, wbuf, pbuf, k);
            snprintf(tmp, sizeof tmp, cf, fval(v));
        }
        tp_buf_puts(c->a, &b, tmp);
    }
    if (ai < args->n) FAIL(line, "not all arguments converted during string formatting");
    return tp_str_ref(c->a, b.p ? b.p : "", b.n);
}

const tp_val *tp_binop(tp_ctx *c, int line, int op, const tp_val *x, const tp_val *y) {
    if (op == OP_CONCAT) {
        tp_buf b = {0};
        tp_to_str(c->a, &b, x);
        tp_to_str(c->a, &b, y);
        return tp_str_ref(c->a, b.p ? b.p : "", b.n);
    }
    if (x->kind == TV_UNDEF) tp_undef_fail(c->a, line, x);
    if (y->kind == TV_UNDEF) tp_undef_fail(c->a, line, y);
    if (isnum(x) && isnum(y)) {
        bool flt = x->kind == TV_FLOAT || y->kind == TV_FLOAT;
        if (!flt) {
            int64_t p = ival(x), q = ival(y), r;
            switch (op) {
            case OP_ADD: if (__builtin_add_overflow(p, q, &r)) FAIL(line, "integer overflow"); return tp_int(c->a, r);
            case OP_SUB: if (__builtin_sub_overflow(p, q, &r)) FAIL(line, "integer overflow"); return tp_int(c->a, r);
            case OP_MUL: if (__builtin_mul_overflow(p, q, &r)) FAIL(line, "integer overflow"); return tp_int(c->a, r);
            case OP_DIV:
                if (q == 0) FAIL(line, "division by zero");
                return tp_float(c->a, (double)p / (double)q);
            case OP_FLOORDIV: case OP_MOD: {
                if (q == 0) FAIL(line, op == OP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
                if (p == INT64_MIN && q == -1) FAIL(line, "integer overflow");
                int64_t d = p / q, m = p % q;
                if (m != 0 && ((m < 0) != (q < 0))) { d--; m += q; }
                return tp_int(c->a, op == OP_MOD ? m : d);
            }
            case OP_POW: {
                if (q < 0) return tp_float(c->a, pow((double)p, (double)q));
                int64_t acc = 1;
                for (int64_t k = 0; k < q; k++) {
                    if (__builtin_mul_overflow(acc, p, &acc)) FAIL(line, "integer overflow");
                    if (acc == 0 || acc == 1) break;
                }
                return tp_int(c->a, acc);
            }
            }
        } else {
            double p = fval(x), q = fval(y);
            switch (op) {
            case OP_ADD: return tp_float(c->a, p + q);
            case OP_SUB: return tp_float(c->a, p - q);
            case OP_MUL: return tp_float(c->a, p * q);
            case OP_DIV: if (q == 0) FAIL(line, "float division by zero"); return tp_float(c->a, p / q);
            case OP_FLOORDIV: if (q == 0) FAIL(line, "float floor division by zero"); return tp_float(c->a, floor(p / q));
            case OP_MOD: {
                if (q == 0) FAIL(line, "float modulo");
                double m = fmod(p, q);
                if (m != 0 && ((m < 0) != (q < 0))) m += q;
                return tp_float(c->a, m);
            }
            case OP_POW: return tp_float(c->a, pow(p, q));
            }
        }
    }
    if (op == OP_ADD && x->kind == TV_STR && y->kind == TV_STR) {
        tp_buf b = {0};
        bool mk = x->markup || y->markup;
        if (mk && !x->markup) tp_html_escape(c->a, &b, x->u.s.s, x->u.s.n);
        else tp_buf_put(c->a, &b, x->u.s.s, x->u.s.n);
        if (mk && !y->markup) tp_html_escape(c->a, &b, y->u.s.s, y->u.s.n);
        else tp_buf_put(c->a, &b, y->u.s.s, y->u.s.n);
        const tp_val *r = tp_str_ref(c->a, b.p ? b.p : "", b.n);
        return mk ? tp_markup(c->a, r) : r;
    }
    if (op == OP_ADD && x->kind == TV_LIST && y->kind == TV_LIST && x->u.l->tuple == y->u.l->tuple && !x->u.l->gen &&
        !y->u.l->gen) {
        tp_list *l = tp_list_new(c->a, x->u.l->n + y->u.l->n);
        l->tuple = x->u.l->tuple;
        for (size_t i = 0; i < x->u.l->n; i++) tp_list_push(c->a, l, x->u.l->v[i]);
        for (size_t i = 0; i < y->u.l->n; i++) tp_list_push(c->a, l, y->u.l->v[i]);
        return tp_list_val(c->a, l);
    }
    if (op == OP_MUL && (x->kind == TV_STR || (x->kind == TV_LIST && !x->u.l->gen)) && (y->kind == TV_INT || y->kind == TV_BOOL))
        return repeat(c, line, x, ival(y));
    if (op == OP_MUL && (y->kind == TV_STR || (y->kind == TV_LIST && !y->u.l->gen)) && (x->kind == TV_INT || x->kind == TV_BOOL))
        return repeat(c, line, y, ival(x));
    if (op == OP_MOD && x->kind == TV_STR) return tp_percent_format(c, line, x, y);
    bad_operands(c, line, op, x, y);
}

static bool contains(tp_ctx *c, int line, const tp_val *item, const tp_val *seq) {
    switch (seq->kind) {
    case TV_UNDEF: return false;
    case TV_STR:
        if (item->kind == TV_UNDEF) tp_undef_fail(c->a, line, item);
        if (item->kind != TV_STR) FAIL(line, "'in <string>' requires string as left operand, not %s", tp_type_name(item));
        if (item->u.s.n == 0) return true;
        for (size_t i = 0; i + item->u.s.n <= seq->u.s.n; i++)
            if (!memcmp(seq->u.s.s + i, item->u.s.s, item->u.s.n)) return true;
        return false;
    case TV_LIST: {
        const tp_list *l = tp_iterate(c, line, seq);
        for (size_t i = 0; i < l->n; i++)
            if (tp_equal(l->v[i], item)) return true;
        return false;
    }
    case TV_DICT: return tp_dict_get(seq->u.d, item) != NULL;
    default: FAIL(line, "argument of type '%s' is not iterable", tp_type_name(seq));
    }
}

static bool compare(tp_ctx *c, int line, int op, const tp_val *x, const tp_val *y) {
    switch (op) {
    case OP_EQ: return tp_equal(x, y);
    case OP_NE: return !tp_equal(x, y);
    case OP_IN: return contains(c, line, x, y);
    case OP_NOTIN: return !contains(c, line, x, y);
    case OP_LT: return tp_compare(c->a, line, x, y, "<") < 0;
    case OP_LE: return tp_compare(c->a, line, x, y, "<=") <= 0;
    case OP_GT: return tp_compare(c->a, line, x, y, ">") > 0;
    default: return tp_compare(c->a, line, x, y, ">=") >= 0;
    }
}

static const tp_val *slice(tp_ctx *c, int line, const tp_val *obj, const tp_val *a, const tp_val *b, const tp_val *st) {
    if (obj->kind == TV_UNDEF) tp_undef_fail(c->a, line, obj);
    if ((obj->kind != TV_LIST && obj->kind != TV_STR) || (obj->kind == TV_LIST && obj->u.l->gen))
        FAIL(line, "'%s' object is not subscriptable", tp_type_name(obj));
    int64_t step = 1, lo, hi, n;
    if (st && st->kind != TV_NONE) {
        if (!as_index(st, &step)) FAIL(line, "slice indices must be integers or None or have an __index__ method");
        if (step == 0) FAIL(line, "slice step cannot be zero");
    }
    const char *s = NULL;
    size_t sn = 0;
    size_t *offs = NULL;
    if (obj->kind == TV_LIST) n = (int64_t)obj->u.l->n;
    else {
        s = obj->u.s.s;
        sn = obj->u.s.n;
        n = (int64_t)tp_utf8_len(s, sn);
        offs = tp_alloc(c->a, ((size_t)n + 1) * sizeof *offs);
        size_t p = 0;
        for (int64_t i = 0; i < n; i++) { offs[i] = p; p = tp_utf8_next(s, sn, p, NULL); }
        offs[n] = sn;
    }
    int64_t def_lo = step > 0 ? 0 : n - 1, def_hi = step > 0 ? n : -1;
    const tp_val *ends[2] = {a, b};
    int64_t v[2] = {def_lo, def_hi};
    for (int k = 0; k < 2; k++) {
        if (!ends[k] || ends[k]->kind == TV_NONE) continue;
        int64_t x;
        if (!as_index(ends[k], &x)) FAIL(line, "slice indices must be integers or None or have an __index__ method");
        if (x < 0) {
            x += n;
            if (x < 0) x = step > 0 ? 0 : -1;
        } else if (x >= n) x = step > 0 ? n : n - 1;
        v[k] = x;
    }
    lo = v[0];
    hi = v[1];
    if (obj->kind == TV_LIST) {
        tp_list *l = tp_list_new(c->a, 0);
        l->tuple = obj->u.l->tuple;
        for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) tp_list_push(c->a, l, obj->u.l->v[i]);
        return tp_list_val(c->a, l);
    }
    tp_buf out = {0};
    for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) tp_buf_put(c->a, &out, s + offs[i], offs[i + 1] - offs[i]);
    return tp_str_ref(c->a, out.p ? out.p : "", out.n);
}

/* ---------------------------------------------------------------- calls */

static void eval_args(tp_ctx *c, const tp_node *e, tp_args *args, const tp_val *first) {
    size_t extra = first ? 1 : 0;
    args->npos = e->n + extra;
    args->pos = tp_alloc(c->a, (args->npos + 1) * sizeof *args->pos);
    if (first) args->pos[0] = first;
    for (size_t i = 0; i < e->n; i++) args->pos[i + extra] = tp_eval(c, e->list[i]);
    args->nkw = e->n2;
    args->kwn = e->names;
    args->kwv = tp_alloc(c->a, (e->n2 + 1) * sizeof *args->kwv);
    for (size_t i = 0; i < e->n2; i++) args->kwv[i] = tp_eval(c, e->list2[i]);
}

const tp_val *tp_call_macro(tp_ctx *c, int line, const tp_val *mv, const tp_val **pos, size_t npos,
                            const char **kwn, const tp_val **kwv, size_t nkw) {
    const tp_macro *m = mv->u.m;
    const tp_node *def = m->node;
    const char *mname = def->kind == N_MACRO ? def->name : "caller";
    if (c->depth >= c->lim.max_depth) FAIL(line, "macro calls nested deeper than %u (limit)", c->lim.max_depth);
    if (npos > def->nnames) FAIL(line, "macro '%s' takes not more than %zu argument(s)", mname, def->nnames);
    tp_scope *s = scope_new(c, m->scope);
    tp_scope *saved_scope = c->scope;
    c->scope = s;
    for (size_t k = 0; k < nkw; k++) {
        size_t j;
        for (j = 0; j < def->nnames; j++)
            if (!strcmp(def->names[j], kwn[k])) break;
        if (j == def->nnames) FAIL(line, "macro '%s' takes no keyword argument '%s'", mname, kwn[k]);
        if (j < npos) FAIL(line, "macro '%s' got multiple values for argument '%s'", mname, kwn[k]);
    }
    for (size_t j = 0; j < def->nnames; j++) {
        const tp_val *v = NULL;
        if (j < npos) v = pos[j];
        for (size_t k = 0; k < nkw && !v; k++)
            if (!strcmp(def->names[j], kwn[k])) v = kwv[k];
        if (!v && def->list2[j]) v = tp_eval(c, def->list2[j]);
        if (!v) {
            tp_val *u = (tp_val *)tp_undef_msg(c->a, "parameter '%s' was not provided", def->names[j]);
            u->uname = def->names[j];
            v = u;
        }
        scope_set(c, s, def->names[j], v);
    }
    if (m->caller) scope_set(c, s, "caller", m->caller);
    tp_buf buf = {0}, *saved_out = c->out;
    c->out = &buf;
    c->depth++;
    exec_list(c, def->list, def->n);
    c->depth--;
    c->out = saved_out;
    c->scope = saved_scope;
    c->ctrl = CTRL_NONE;
    return tp_str_ref(c->a, buf.p ? buf.p : "", buf.n);
}

static const tp_val *call_value(tp_ctx *c, int line, const tp_val *f, tp_args *args) {
    switch (f->kind) {
    case TV_UNDEF: tp_undef_fail(c->a, line, f);
    case TV_MACRO: return tp_call_macro(c, line, f, args->pos, args->npos, args->kwn, args->kwv, args->nkw);
    case TV_FUNC:
        if (f->u.fn == FN_METHOD) {
            bool found = false;
            const tp_val *r = tp_call_method(c, line, f->self, f->uname, args, &found);
            if (!found)
                tp_fail_arena(c->a, line, SL_EUNSUPPORTED, "unsupported construct: method %s.%s()", tp_type_name(f->self),
                              f->uname);
            return r;
        }
        return tp_call_func(c, line, f->u.fn, args);
    case TV_CYCLER: {
        const tp_list *items = f->u.l;
        return items->n ? items->v[0] : &tp_none;
    }
    default: FAIL(line, "'%s' object is not callable", tp_type_name(f));
    }
}

static const tp_val *eval_call(tp_ctx *c, const tp_node *e) {
    tp_args args;
    const tp_node *callee = e->a;
    if (callee->kind == E_ATTR) {
        const tp_val *obj = tp_eval(c, callee->a);
        if (obj->kind == TV_UNDEF) tp_undef_fail(c->a, e->line, obj);
        if (obj->kind == TV_LOOP && !strcmp(callee->name, "changed")) {
        eval_args(c, e, &args, NULL);
        tp_list *now = tp_list_new(c->a, args.npos);
        for (size_t i = 0; i < args.npos; i++) tp_list_push(c->a, now, args.pos[i]);
        const tp_val *nv = tp_list_val(c->a, now);
        tp_loop *L = obj->u.loop;
        bool changed = !L->last || !tp_equal(L->last, nv);
        L->last = nv;
        return tp_bool(changed);
    }
    if (obj->kind == TV_LOOP && !strcmp(callee->name, "cycle")) {
            eval_args(c, e, &args, NULL);
            if (!args.npos) FAIL(e->line, "no items for cycling given");
            return args.pos[obj->u.loop->i % args.npos];
        }
        const tp_val *f = tp_getattr(c, e->line, obj, callee->name);
        eval_args(c, e, &args, NULL);
        return call_value(c, e->line, f, &args);
    }
    const tp_val *f = tp_eval(c, callee);
    eval_args(c, e, &args, NULL);
    return call_value(c, e->line, f, &args);
}

/* ---------------------------------------------------------------- expressions */

/* Bound on nested evaluation frames: long filter/attribute/operator chains and
 * recursive macros all recurse here, and the C stack must not overflow. */
#define MAX_EVAL_DEPTH 1500

static const tp_val *eval_inner(tp_ctx *c, const tp_node *e);

const tp_val *tp_eval(tp_ctx *c, const tp_node *e) {
    if (++c->edepth > MAX_EVAL_DEPTH) FAIL(e->line, "expression evaluation nested too deeply (limit %d)", MAX_EVAL_DEPTH);
    const tp_val *v = eval_inner(c, e);
    c->edepth--;
    return v;
}

static const tp_val *eval_inner(tp_ctx *c, const tp_node *e) {
    switch (e->kind) {
    case E_LIT: return e->val;
    case E_NAME: return tp_lookup(c, c->scope, e->name);
    case E_ATTR: return tp_getattr(c, e->line, tp_eval(c, e->a), e->name);
    case E_ITEM: {
        const tp_val *o = tp_eval(c, e->a);
        return tp_getitem(c, e->line, o, tp_eval(c, e->b));
    }
    case E_SLICE: {
        const tp_val *o = tp_eval(c, e->a);
        const tp_val *p = e->b ? tp_eval(c, e->b) : NULL, *q = e->c ? tp_eval(c, e->c) : NULL,
                     *r = e->d ? tp_eval(c, e->d) : NULL;
        return slice(c, e->line, o, p, q, r);
    }
    case E_CALL: return eval_call(c, e);
    case E_FILTER: {
        const tp_val *v = tp_eval(c, e->a);
        if (e->op) FAIL(e->line, "No filter named '%s' found.", e->name);
        tp_args args;
        eval_args(c, e, &args, NULL);
        return tp_apply_filter(c, e->line, e->name, v, &args);
    }
    case E_TEST: {
        const tp_val *v = tp_eval(c, e->a);
        if (e->op) FAIL(e->line, "No test named '%s' found.", e->name);
        tp_args args;
        eval_args(c, e, &args, NULL);
        bool r = tp_apply_test(c, e->line, e->name, v, &args);
        return tp_bool(e->flag ? !r : r);
    }
    case E_NEG: case E_POS: {
        const tp_val *v = tp_eval(c, e->a);
        if (v->kind == TV_UNDEF) tp_undef_fail(c->a, e->line, v);
        if (v->kind == TV_FLOAT) return tp_float(c->a, e->kind == E_NEG ? -v->u.f : v->u.f);
        if (v->kind == TV_INT || v->kind == TV_BOOL) {
            int64_t i = ival(v);
            if (e->kind == E_NEG && i == INT64_MIN) FAIL(e->line, "integer overflow");
            return tp_int(c->a, e->kind == E_NEG ? -i : i);
        }
        FAIL(e->line, "bad operand type for unary %c: '%s'", e->kind == E_NEG ? '-' : '+', tp_type_name(v));
    }
    case E_NOT: return tp_bool(!tp_truthy(tp_eval(c, e->a)));
    case E_AND: {
        const tp_val *x = tp_eval(c, e->a);
        return tp_truthy(x) ? tp_eval(c, e->b) : x;
    }
    case E_OR: {
        const tp_val *x = tp_eval(c, e->a);
        return tp_truthy(x) ? x : tp_eval(c, e->b);
    }
    case E_BIN: {
        const tp_val *x = tp_eval(c, e->a);
        return tp_binop(c, e->line, e->op, x, tp_eval(c, e->b));
    }
    case E_CMP: {
        const tp_val *x = tp_eval(c, e->a);
        for (size_t i = 0; i < e->n2; i++) {
            const tp_val *y = tp_eval(c, e->list2[i]);
            if (!compare(c, e->line, e->ops[i], x, y)) return &tp_false;
            x = y;
        }
        return &tp_true;
    }
    case E_COND:
        if (tp_truthy(tp_eval(c, e->b))) return tp_eval(c, e->a);
        return e->c ? tp_eval(c, e->c)
                    : tp_undef_msg(c->a, "the inline if-expression on line %d evaluated to false and no else section "
                                         "was defined.", e->line);
    case E_LIST: case E_TUPLE: {
        tp_list *l = tp_list_new(c->a, e->n);
        l->tuple = e->kind == E_TUPLE;
        for (size_t i = 0; i < e->n; i++) tp_list_push(c->a, l, tp_eval(c, e->list[i]));
        return tp_list_val(c->a, l);
    }
    case E_DICT: {
        tp_dict *d = tp_dict_new(c->a);
        for (size_t i = 0; i < e->n; i++) {
            const tp_val *k = tp_eval(c, e->list[i]);
            if (k->kind == TV_LIST && !k->u.l->tuple) FAIL(e->line, "unhashable type: 'list'");
            if (k->kind == TV_DICT) FAIL(e->line, "unhashable type: 'dict'");
            tp_dict_set(c->a, d, k, tp_eval(c, e->list2[i]));
        }
        return tp_dict_val(c->a, d);
    }
    default: FAIL(e->line, "internal error: statement used as expression");
    }
}

/* ---------------------------------------------------------------- statements */

static void assign(tp_ctx *c, int line, tp_scope *s, const char *const *names, size_t n, const tp_val *v) {
    if (n == 1) {
        scope_set(c, s, names[0], v);
        return;
    }
    const tp_list *items = tp_iterate(c, line, v);
    if (items->n > n) FAIL(line, "too many values to unpack (expected %zu)", n);
    if (items->n < n) FAIL(line, "not enough values to unpack (expected %zu, got %zu)", n, items->n);
    for (size_t i = 0; i < n; i++) scope_set(c, s, names[i], items->v[i]);
}

static const tp_val *apply_chain(tp_ctx *c, const tp_node *f, const tp_val *input) {
    const tp_val *v = f->a ? apply_chain(c, f->a, input) : input;
    if (f->op) FAIL(f->line, "No filter named '%s' found.", f->name);
    tp_args args;
    eval_args(c, f, &args, NULL);
    return tp_apply_filter(c, f->line, f->name, v, &args);
}

static const tp_val *capture(tp_ctx *c, tp_node *const *list, size_t n) {
    tp_buf buf = {0}, *saved = c->out;
    c->out = &buf;
    exec_list(c, list, n);
    c->out = saved;
    return tp_str_ref(c->a, buf.p ? buf.p : "", buf.n);
}

static void set_target(tp_ctx *c, const tp_node *x, const tp_val *v) {
    if (!x->flag) {
        assign(c, x->line, c->scope, (const char *const *)x->names, x->nnames, v);
        return;
    }
    const tp_val *ns = tp_lookup(c, c->scope, x->name);
    if (ns->kind != TV_NS) FAIL(x->line, "cannot assign attribute on non-namespace object");
    if (x->name2[0] == '_')
        FAIL(x->line, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'. "
                      "Please rename the attribute.", x->name2);
    tp_dict_set(c->a, ns->u.d, tp_str_ref(c->a, x->name2, strlen(x->name2)), v);
}

static void exec_for(tp_ctx *c, const tp_node *x) {
    const tp_val *seq = tp_eval(c, x->a);
    const tp_list *items = tp_iterate(c, x->line, seq);
    tp_scope *s = scope_new(c, c->scope), *saved = c->scope;
    c->scope = s;
    if (x->b) {
        tp_list *kept = tp_list_new(c->a, 0);
        for (size_t i = 0; i < items->n; i++) {
            if (++c->iterations > c->lim.max_iterations)
                FAIL(x->line, "more than %llu loop iterations (limit)", (unsigned long long)c->lim.max_iterations);
            assign(c, x->line, s, (const char *const *)x->names, x->nnames, items->v[i]);
            if (tp_truthy(tp_eval(c, x->b))) tp_list_push(c->a, kept, items->v[i]);
        }
        items = kept;
    }
    /* one loop object, updated in place, as jinja2's LoopContext is; loop.depth grows only in
     * recursive loops, which are outside the subset */
    tp_loop *L = tp_alloc(c->a, sizeof *L);
    L->items = items;
    L->depth = 1;
    tp_val *lv = tp_alloc(c->a, sizeof *lv);
    lv->kind = TV_LOOP;
    lv->u.loop = L;
    /* every iteration starts afresh: what the body set in the previous one is forgotten (jinja2
     * re-resolves such names from the enclosing scope), so drop all bindings after the targets */
    size_t fixed = SIZE_MAX;
    for (size_t i = 0; i < items->n; i++) {
        if (++c->iterations > c->lim.max_iterations)
            FAIL(x->line, "more than %llu loop iterations (limit)", (unsigned long long)c->lim.max_iterations);
        if (fixed != SIZE_MAX) s->vars.n = fixed;
        assign(c, x->line, s, (const char *const *)x->names, x->nnames, items->v[i]);
        L->i = i;
        scope_set(c, s, "loop", lv);
        if (fixed == SIZE_MAX) fixed = s->vars.n;
        exec_list(c, x->list, x->n);
        if (c->ctrl == CTRL_BREAK) {
            c->ctrl = CTRL_NONE;
            break;
        }
        c->ctrl = CTRL_NONE;
    }
    c->scope = saved;
    if (items->n == 0 && x->flag) exec_list(c, x->list2, x->n2);
}

static void exec_one(tp_ctx *c, const tp_node *x) {
    switch (x->kind) {
    case N_DATA: emit(c, x->line, x->val->u.s.s, x->val->u.s.n); return;
    case N_OUTPUT: {
        const tp_val *v = tp_eval(c, x->a);
        if (v->kind == TV_STR) emit(c, x->line, v->u.s.s, v->u.s.n);
        else {
            tp_to_str(c->a, c->out, v);
            tp_check_output(c, x->line);
        }
        return;
    }
    case N_BODY: exec_list(c, x->list, x->n); return;
    case N_IF:
        if (tp_truthy(tp_eval(c, x->a))) exec_list(c, x->list, x->n);
        else exec_list(c, x->list2, x->n2);
        return;
    case N_FOR: exec_for(c, x); return;
    case N_SET: set_target(c, x, tp_eval(c, x->a)); return;
    case N_SETBLOCK: {
        const tp_val *v = capture(c, x->list, x->n);
        if (x->b) v = apply_chain(c, x->b, v);
        set_target(c, x, v);
        return;
    }
    case N_FILTERBLOCK: {
        const tp_val *v = apply_chain(c, x->b, capture(c, x->list, x->n));
        const tp_val *s = tp_as_str(c->a, v);
        emit(c, x->line, s->u.s.s, s->u.s.n);
        return;
    }
    case N_MACRO: {
        tp_macro *m = tp_alloc(c->a, sizeof *m);
        m->node = x;
        m->scope = c->scope;
        tp_val *v = tp_alloc(c->a, sizeof *v);
        v->kind = TV_MACRO;
        v->u.m = m;
        scope_set(c, c->scope, x->name, v);
        return;
    }
    case N_CALLBLOCK: {
        tp_macro *cm = tp_alloc(c->a, sizeof *cm);
        cm->node = x;
        cm->scope = c->scope;
        tp_val *cv = tp_alloc(c->a, sizeof *cv);
        cv->kind = TV_MACRO;
        cv->u.m = cm;
        const tp_node *call = x->a;
        const tp_val *f = tp_eval(c, call->a);
        if (f->kind != TV_MACRO) FAIL(x->line, "{%% call %%} needs a macro, got '%s'", tp_type_name(f));
        tp_macro *bm = tp_alloc(c->a, sizeof *bm);
        *bm = *f->u.m;
        bm->caller = cv;
        tp_val *b = tp_alloc(c->a, sizeof *b);
        b->kind = TV_MACRO;
        b->u.m = bm;
        tp_args args;
        eval_args(c, call, &args, NULL);
        const tp_val *r = tp_call_macro(c, x->line, b, args.pos, args.npos, args.kwn, args.kwv, args.nkw);
        emit(c, x->line, r->u.s.s, r->u.s.n);
        return;
    }
    case N_BREAK: c->ctrl = CTRL_BREAK; return;
    case N_CONTINUE: c->ctrl = CTRL_CONTINUE; return;
    default: FAIL(x->line, "internal error: expression used as statement");
    }
}

static void exec_list(tp_ctx *c, tp_node *const *list, size_t n) {
    if (++c->edepth > MAX_EVAL_DEPTH)
        FAIL(n ? list[0]->line : 0, "statements nested too deeply (limit %d)", MAX_EVAL_DEPTH);
    for (size_t i = 0; i < n && c->ctrl == CTRL_NONE; i++) exec_one(c, list[i]);
    c->edepth--;
}

void tp_exec_root(tp_ctx *c, const tp_node *root) { exec_list(c, root->list, root->n); }
