/*
 * parse.c — chat-template parser: tokens -> AST (tp_node), following
 * jinja2's grammar and operator precedence (condexpr < or < and < not <
 * compare < + - < ~ < * / // % < ** < unary < postfix/filter/test).
 *
 * Invariants: recursion depth is bounded (deeply nested input fails cleanly);
 * unknown filters/tests fail at compile time like jinja2 ("No filter named
 * 'x'."); tags outside the subset fail naming the construct and line.
 */
#include <stdio.h>
#include <string.h>

#include "template/tmpl_impl.h"

#define MAX_NEST 200

typedef struct parser {
    tp_arena *a;
    tp_toks *t;
    size_t i;
    int nest;
    const char *tags[MAX_NEST + 1];   /* open block tags, innermost last (for messages) */
    int ntags;
} parser;

typedef struct vec {
    tp_node **v;
    size_t n, cap;
} vec;

typedef struct svec {
    const char **v;
    size_t n, cap;
} svec;

static void vpush(parser *P, vec *v, tp_node *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        tp_node **p = tp_alloc(P->a, cap * sizeof *p);
        if (v->n) memcpy(p, v->v, v->n * sizeof *p);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static void spush(parser *P, svec *v, const char *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        const char **p = tp_alloc(P->a, cap * sizeof *p);
        if (v->n) memcpy(p, v->v, v->n * sizeof *p);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static tp_tok *cur(parser *P) { return &P->t->v[P->i]; }
static tp_tok *peek(parser *P, size_t k) {
    size_t j = P->i + k;
    return j < P->t->n ? &P->t->v[j] : &P->t->v[P->t->n - 1];
}
static void next(parser *P) {
    if (P->i + 1 < P->t->n) P->i++;
}

static tp_node *nn(parser *P, tp_node_kind k, int line) {
    tp_node *x = tp_alloc(P->a, sizeof *x);
    x->kind = k;
    x->line = line;
    return x;
}

static const char *tok_desc(parser *P, const tp_tok *k, char *buf, size_t cap) {
    (void)P;
    switch (k->kind) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_BLOCK_END: return "end of statement block";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    default: snprintf(buf, cap, "%.*s", (int)(k->n > 40 ? 40 : k->n), k->s); return buf;
    }
}

_Noreturn static void fail_expected(parser *P, const char *what) {
    char b[64];
    tp_fail_arena(P->a, cur(P)->line, SL_EINVAL, "expected token '%s', got '%s'", what, tok_desc(P, cur(P), b, sizeof b));
}

static bool is_op(parser *P, const char *op) {
    tp_tok *k = cur(P);
    return k->kind == TK_OP && k->n == strlen(op) && memcmp(k->s, op, k->n) == 0;
}
static bool is_name(parser *P, const char *nm) {
    tp_tok *k = cur(P);
    return k->kind == TK_NAME && k->n == strlen(nm) && memcmp(k->s, nm, k->n) == 0;
}
static void expect_op(parser *P, const char *op) {
    if (!is_op(P, op)) {
        fail_expected(P, op);
    }
    next(P);
}
static const char *expect_name(parser *P) {
    if (cur(P)->kind != TK_NAME) fail_expected(P, "name");
    const char *s = tp_strndup(P->a, cur(P)->s, cur(P)->n);
    next(P);
    return s;
}
static void expect_block_end(parser *P) {
    if (cur(P)->kind != TK_BLOCK_END) fail_expected(P, "end of statement block");
    next(P);
}

static tp_node *parse_expr(parser *P);
static tp_node *parse_or(parser *P);
static tp_node *parse_unary(parser *P, bool with_filter);
static tp_node *parse_postfix(parser *P, tp_node *x);
static tp_node *parse_primary(parser *P);

static void enter(parser *P) {
    if (++P->nest > MAX_NEST) tp_fail_arena(P->a, cur(P)->line, SL_EINVAL, "expression nested too deeply (limit %d)", MAX_NEST);
}

/* call arguments after '(' up to ')'; fills list/list2/names of x */
static void parse_args(parser *P, tp_node *x) {
    vec pos = {0}, kwv = {0};
    svec kwn = {0};
    expect_op(P, "(");
    while (!is_op(P, ")")) {
        if (pos.n + kwv.n) expect_op(P, ",");
        if (is_op(P, ")")) break;
        if (is_op(P, "*") || is_op(P, "**"))
            tp_fail_arena(P->a, cur(P)->line, SL_EUNSUPPORTED, "unsupported construct: *args / **kwargs in a call");
        if (cur(P)->kind == TK_NAME && peek(P, 1)->kind == TK_OP && peek(P, 1)->n == 1 && peek(P, 1)->s[0] == '=') {
            spush(P, &kwn, expect_name(P));
            next(P);
            vpush(P, &kwv, parse_expr(P));
        } else {
            if (kwv.n) tp_fail_arena(P->a, cur(P)->line, SL_EINVAL, "positional argument follows keyword argument");
            vpush(P, &pos, parse_expr(P));
        }
    }
    next(P);
    x->list = pos.v;
    x->n = pos.n;
    x->list2 = kwv.v;
    x->n2 = kwv.n;
    x->names = kwn.v;
    x->nnames = kwn.n;
}

static tp_node *parse_filter_one(parser *P, tp_node *input) {
    int line = cur(P)->line;
    const char *name = expect_name(P);
    while (is_op(P, ".")) {   /* dotted filter names: join them */
        next(P);
        const char *more = expect_name(P);
        char *j = tp_alloc(P->a, strlen(name) + strlen(more) + 2);
        sprintf(j, "%s.%s", name, more);
        name = j;
    }
    tp_node *f = nn(P, E_FILTER, line);
    f->op = !tp_filter_exists(name);   /* unknown: an error at compile time unless in a soft frame */
    f->a = input;
    f->name = name;
    if (is_op(P, "(")) parse_args(P, f);
    return f;
}

static tp_node *parse_test(parser *P, tp_node *x) {
    int line = cur(P)->line;
    next(P);   /* 'is' */
    bool neg = false;
    if (is_name(P, "not")) { neg = true; next(P); }
    const char *name = expect_name(P);
    tp_node *t = nn(P, E_TEST, line);
    t->op = !tp_test_exists(name);
    t->a = x;
    t->name = name;
    t->flag = neg;
    tp_tok *k = cur(P);
    if (is_op(P, "(")) parse_args(P, t);
    else if ((k->kind == TK_NAME || k->kind == TK_STRING || k->kind == TK_INT || k->kind == TK_FLOAT || is_op(P, "[") ||
              is_op(P, "{")) &&
             !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and")) {
        if (is_name(P, "is")) tp_fail_arena(P->a, line, SL_EINVAL, "You cannot chain multiple tests with is");
        tp_node *arg = parse_postfix(P, parse_primary(P));
        t->list = tp_alloc(P->a, sizeof(tp_node *));
        t->list[0] = arg;
        t->n = 1;
    }
    return t;
}

static tp_node *parse_filter_expr(parser *P, tp_node *x) {
    for (;;) {
        if (is_op(P, "|")) {
            next(P);
            x = parse_filter_one(P, x);
        } else if (is_name(P, "is")) x = parse_test(P, x);
        else if (is_op(P, "(")) {
            tp_node *c = nn(P, E_CALL, cur(P)->line);
            c->a = x;
            parse_args(P, c);
            x = c;
        } else return x;
    }
}

static tp_node *parse_subscript(parser *P, tp_node *obj) {
    int line = cur(P)->line;
    next(P);   /* '[' */
    tp_node *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    if (!is_op(P, ":")) parts[0] = parse_expr(P);
    while (is_op(P, ":")) {
        slice = true;
        next(P);
        if (++k > 2) fail_expected(P, "]");
        if (!is_op(P, ":") && !is_op(P, "]")) parts[k] = parse_expr(P);
    }
    expect_op(P, "]");
    tp_node *x = nn(P, slice ? E_SLICE : E_ITEM, line);
    x->a = obj;
    x->b = parts[0];
    x->c = parts[1];
    x->d = parts[2];
    return x;
}

static tp_node *parse_postfix(parser *P, tp_node *x) {
    for (;;) {
        if (is_op(P, ".")) {
            int line = cur(P)->line;
            next(P);
            if (cur(P)->kind == TK_INT) {
                tp_node *it = nn(P, E_ITEM, line), *lit = nn(P, E_LIT, line);
                lit->val = tp_int(P->a, cur(P)->i);
                next(P);
                it->a = x;
                it->b = lit;
                x = it;
                continue;
            }
            tp_node *at = nn(P, E_ATTR, line);
            at->a = x;
            at->name = expect_name(P);
            x = at;
        } else if (is_op(P, "[")) x = parse_subscript(P, x);
        else if (is_op(P, "(")) {
            tp_node *c = nn(P, E_CALL, cur(P)->line);
            c->a = x;
            parse_args(P, c);
            x = c;
        } else return x;
    }
}

/* after '(' / '[': comma-separated expressions up to `close` */
static void parse_items(parser *P, vec *v, const char *close, bool *trailing_comma) {
    *trailing_comma = false;
    while (!is_op(P, close)) {
        if (v->n) {
            expect_op(P, ",");
            if (is_op(P, close)) { *trailing_comma = true; break; }
        }
        vpush(P, v, parse_expr(P));
    }
    next(P);
}

static tp_node *parse_primary(parser *P) {
    tp_tok *k = cur(P);
    int line = k->line;
    enter(P);
    tp_node *x;
    if (k->kind == TK_NAME) {
        x = nn(P, E_LIT, line);
        if ((k->n == 4 && (!memcmp(k->s, "true", 4) || !memcmp(k->s, "True", 4)))) x->val = &tp_true;
        else if (k->n == 5 && (!memcmp(k->s, "false", 5) || !memcmp(k->s, "False", 5))) x->val = &tp_false;
        else if (k->n == 4 && (!memcmp(k->s, "none", 4) || !memcmp(k->s, "None", 4))) x->val = &tp_none;
        else {
            x->kind = E_NAME;
            x->name = tp_strndup(P->a, k->s, k->n);
        }
        next(P);
    } else if (k->kind == TK_STRING) {
        tp_buf b = {0};
        while (cur(P)->kind == TK_STRING) {
            tp_buf_put(P->a, &b, cur(P)->s, cur(P)->n);
            next(P);
        }
        x = nn(P, E_LIT, line);
        x->val = tp_str_ref(P->a, b.p ? b.p : "", b.n);
    } else if (k->kind == TK_INT || k->kind == TK_FLOAT) {
        x = nn(P, E_LIT, line);
        x->val = k->kind == TK_INT ? tp_int(P->a, k->i) : tp_float(P->a, k->f);
        next(P);
    } else if (is_op(P, "(")) {
        next(P);
        vec v = {0};
        bool tc;
        parse_items(P, &v, ")", &tc);
        if (v.n == 1 && !tc) x = v.v[0];
        else {
            x = nn(P, E_TUPLE, line);
            x->list = v.v;
            x->n = v.n;
        }
    } else if (is_op(P, "[")) {
        next(P);
        vec v = {0};
        bool tc;
        parse_items(P, &v, "]", &tc);
        x = nn(P, E_LIST, line);
        x->list = v.v;
        x->n = v.n;
    } else if (is_op(P, "{")) {
        next(P);
        vec ks = {0}, vs = {0};
        while (!is_op(P, "}")) {
            if (ks.n) {
                expect_op(P, ",");
                if (is_op(P, "}")) break;
            }
            vpush(P, &ks, parse_expr(P));
            expect_op(P, ":");
            vpush(P, &vs, parse_expr(P));
        }
        next(P);
        x = nn(P, E_DICT, line);
        x->list = ks.v;
        x->n = ks.n;
        x->list2 = vs.v;
        x->n2 = vs.n;
    } else {
        char b[64];
        tp_tok_kind kk = cur(P)->kind;
        if (kk == TK_BLOCK_END || kk == TK_VAR_END || kk == TK_EOF)
            tp_fail_arena(P->a, line, SL_EINVAL, "Expected an expression, got '%s'", tok_desc(P, cur(P), b, sizeof b));
        tp_fail_arena(P->a, line, SL_EINVAL, "unexpected '%s'", tok_desc(P, cur(P), b, sizeof b));
    }
    P->nest--;
    return x;
}

static tp_node *parse_unary(parser *P, bool with_filter) {
    int line = cur(P)->line;
    tp_node *x;
    enter(P);
    if (is_op(P, "-") || is_op(P, "+")) {
        x = nn(P, is_op(P, "-") ? E_NEG : E_POS, line);
        next(P);
        x->a = parse_unary(P, false);
    } else x = parse_primary(P);
    x = parse_postfix(P, x);
    if (with_filter) x = parse_filter_expr(P, x);
    P->nest--;
    return x;
}

static tp_node *bin(parser *P, int op, tp_node *l, tp_node *r, int line) {
    tp_node *x = nn(P, E_BIN, line);
    x->op = op;
    x->a = l;
    x->b = r;
    return x;
}

static tp_node *parse_pow(parser *P) {
    tp_node *x = parse_unary(P, true);
    while (is_op(P, "**")) {
        int line = cur(P)->line;
        next(P);
        x = bin(P, OP_POW, x, parse_unary(P, true), line);
    }
    return x;
}

static tp_node *parse_math2(parser *P) {
    tp_node *x = parse_pow(P);
    for (;;) {
        int op = is_op(P, "*") ? OP_MUL : is_op(P, "/") ? OP_DIV : is_op(P, "//") ? OP_FLOORDIV : is_op(P, "%") ? OP_MOD : -1;
        if (op < 0) return x;
        int line = cur(P)->line;
        next(P);
        x = bin(P, op, x, parse_pow(P), line);
    }
}

static tp_node *parse_concat(parser *P) {
    tp_node *x = parse_math2(P);
    while (is_op(P, "~")) {
        int line = cur(P)->line;
        next(P);
        x = bin(P, OP_CONCAT, x, parse_math2(P), line);
    }
    return x;
}

static tp_node *parse_math1(parser *P) {
    tp_node *x = parse_concat(P);
    for (;;) {
        int op = is_op(P, "+") ? OP_ADD : is_op(P, "-") ? OP_SUB : -1;
        if (op < 0) return x;
        int line = cur(P)->line;
        next(P);
        x = bin(P, op, x, parse_concat(P), line);
    }
}

static tp_node *parse_compare(parser *P) {
    int line = cur(P)->line;
    tp_node *x = parse_math1(P);
    vec ops = {0};
    int opv[64];
    size_t nop = 0;
    for (;;) {
        int op = is_op(P, "==") ? OP_EQ : is_op(P, "!=") ? OP_NE : is_op(P, "<") ? OP_LT : is_op(P, "<=") ? OP_LE
                 : is_op(P, ">") ? OP_GT : is_op(P, ">=") ? OP_GE : is_name(P, "in") ? OP_IN : -1;
        if (op < 0 && is_name(P, "not") && peek(P, 1)->kind == TK_NAME && peek(P, 1)->n == 2 &&
            !memcmp(peek(P, 1)->s, "in", 2)) {
            next(P);
            op = OP_NOTIN;
        }
        if (op < 0) break;
        if (nop == 64) tp_fail_arena(P->a, line, SL_EINVAL, "comparison chain too long");
        next(P);
        opv[nop++] = op;
        vpush(P, &ops, parse_math1(P));
    }
    if (!nop) return x;
    tp_node *c = nn(P, E_CMP, line);
    c->a = x;
    c->list2 = ops.v;
    c->n2 = ops.n;
    c->ops = tp_alloc(P->a, nop * sizeof(int));
    memcpy(c->ops, opv, nop * sizeof(int));
    return c;
}

static tp_node *parse_not(parser *P) {
    if (is_name(P, "not")) {
        tp_node *x = nn(P, E_NOT, cur(P)->line);
        next(P);
        enter(P);
        x->a = parse_not(P);
        P->nest--;
        return x;
    }
    return parse_compare(P);
}

static tp_node *parse_and(parser *P) {
    tp_node *x = parse_not(P);
    while (is_name(P, "and")) {
        tp_node *y = nn(P, E_AND, cur(P)->line);
        next(P);
        y->a = x;
        y->b = parse_not(P);
        x = y;
    }
    return x;
}

static tp_node *parse_or(parser *P) {
    tp_node *x = parse_and(P);
    while (is_name(P, "or")) {
        tp_node *y = nn(P, E_OR, cur(P)->line);
        next(P);
        y->a = x;
        y->b = parse_and(P);
        x = y;
    }
    return x;
}

static tp_node *parse_expr(parser *P) {
    enter(P);
    tp_node *x = parse_or(P);
    while (is_name(P, "if")) {
        tp_node *c = nn(P, E_COND, cur(P)->line);
        next(P);
        c->a = x;
        c->b = parse_or(P);
        if (is_name(P, "else")) {
            next(P);
            c->c = parse_expr(P);
        }
        x = c;
    }
    P->nest--;
    return x;
}

/* expression that may be an implicit tuple: `a, b` */
static tp_node *parse_tuple_expr(parser *P) {
    int line = cur(P)->line;
    tp_node *x = parse_expr(P);
    if (!is_op(P, ",")) return x;
    vec v = {0};
    vpush(P, &v, x);
    while (is_op(P, ",")) {
        next(P);
        if (cur(P)->kind == TK_BLOCK_END || cur(P)->kind == TK_VAR_END) break;
        vpush(P, &v, parse_expr(P));
    }
    tp_node *t = nn(P, E_TUPLE, line);
    t->list = v.v;
    t->n = v.n;
    return t;
}

/* ---------------------------------------------------------------- statements */

static tp_node *parse_body(parser *P, const char *const *ends, size_t nends);

static void body_into(parser *P, tp_node *x, bool second, const char *const *ends, size_t nends) {
    tp_node *b = parse_body(P, ends, nends);
    if (second) { x->list2 = b->list; x->n2 = b->n; }
    else { x->list = b->list; x->n = b->n; }
}

/* after the body: at BLOCK_BEGIN NAME; returns the name and consumes it */
static const char *end_name(parser *P) {
    next(P);   /* BLOCK_BEGIN */
    return expect_name(P);
}

static void parse_targets(parser *P, svec *names, const char **attr, bool allow_attr) {
    bool paren = false;
    if (is_op(P, "(")) { paren = true; next(P); }
    for (;;) {
        spush(P, names, expect_name(P));
        if (allow_attr && names->n == 1 && is_op(P, ".")) {
            next(P);
            *attr = expect_name(P);
            return;
        }
        if (!is_op(P, ",")) break;
        next(P);
        if (paren && is_op(P, ")")) break;
    }
    if (paren) expect_op(P, ")");
}

static tp_node *parse_filter_chain(parser *P) {
    tp_node *f = parse_filter_one(P, NULL);
    while (is_op(P, "|")) {
        next(P);
        f = parse_filter_one(P, f);
    }
    return f;
}

static void parse_params(parser *P, tp_node *x) {
    svec names = {0};
    vec defs = {0};
    expect_op(P, "(");
    while (!is_op(P, ")")) {
        if (names.n) expect_op(P, ",");
        if (is_op(P, ")")) break;
        spush(P, &names, expect_name(P));
        tp_node *d = NULL;
        if (is_op(P, "=")) {
            next(P);
            d = parse_expr(P);
        }
        vpush(P, &defs, d);
    }
    next(P);
    x->names = names.v;
    x->nnames = names.n;
    x->list2 = defs.v;
    x->n2 = defs.n;
}

static tp_node *parse_statement_in(parser *P, const char *tag, int line);

static tp_node *parse_statement(parser *P) {
    int line = cur(P)->line;
    next(P);   /* BLOCK_BEGIN */
    if (cur(P)->kind != TK_NAME) fail_expected(P, "name");
    char *tag = tp_strndup(P->a, cur(P)->s, cur(P)->n > 31 ? 31 : cur(P)->n);
    next(P);
    if (P->ntags >= MAX_NEST) tp_fail_arena(P->a, line, SL_EINVAL, "blocks nested too deeply (limit %d)", MAX_NEST);
    P->tags[P->ntags++] = tag;
    tp_node *x = parse_statement_in(P, tag, line);
    P->ntags--;
    return x;
}

static tp_node *parse_statement_in(parser *P, const char *tag, int line) {
    tp_node *x;
    if (!strcmp(tag, "if")) {
        x = nn(P, N_IF, line);
        x->a = parse_expr(P);
        expect_block_end(P);
        static const char *const ends[] = {"elif", "else", "endif"};
        body_into(P, x, false, ends, 3);
        tp_node *tail = x;
        for (;;) {
            const char *e = end_name(P);
            if (!strcmp(e, "elif")) {
                tp_node *y = nn(P, N_IF, cur(P)->line);
                y->a = parse_expr(P);
                expect_block_end(P);
                body_into(P, y, false, ends, 3);
                tail->list2 = tp_alloc(P->a, sizeof(tp_node *));
                tail->list2[0] = y;
                tail->n2 = 1;
                tail = y;
            } else if (!strcmp(e, "else")) {
                expect_block_end(P);
                static const char *const ends2[] = {"endif"};
                body_into(P, tail, true, ends2, 1);
                end_name(P);
                expect_block_end(P);
                break;
            } else {
                expect_block_end(P);
                break;
            }
        }
        return x;
    }
    if (!strcmp(tag, "for")) {
        x = nn(P, N_FOR, line);
        svec names = {0};
        parse_targets(P, &names, NULL, false);
        x->names = names.v;
        x->nnames = names.n;
        if (!is_name(P, "in")) fail_expected(P, "in");
        next(P);
        x->a = parse_or(P);
        if (is_op(P, ",")) tp_fail_arena(P->a, line, SL_EUNSUPPORTED, "unsupported construct: for over a bare tuple");
        if (is_name(P, "if")) {
            next(P);
            x->b = parse_expr(P);
        }
        if (is_name(P, "recursive"))
            tp_fail_arena(P->a, line, SL_EUNSUPPORTED, "unsupported construct: recursive for loop");
        expect_block_end(P);
        static const char *const ends[] = {"endfor", "else"};
        body_into(P, x, false, ends, 2);
        if (!strcmp(end_name(P), "else")) {
            expect_block_end(P);
            x->flag = true;
            static const char *const ends2[] = {"endfor"};
            body_into(P, x, true, ends2, 1);
            end_name(P);
        }
        expect_block_end(P);
        return x;
    }
    if (!strcmp(tag, "set")) {
        svec names = {0};
        const char *attr = NULL;
        parse_targets(P, &names, &attr, true);
        if (is_op(P, "=")) {
            next(P);
            x = nn(P, N_SET, line);
            x->a = parse_tuple_expr(P);
            expect_block_end(P);
        } else {
            x = nn(P, N_SETBLOCK, line);
            if (is_op(P, "|")) {
                next(P);
                x->b = parse_filter_chain(P);
            }
            expect_block_end(P);
            static const char *const ends[] = {"endset"};
            body_into(P, x, false, ends, 1);
            end_name(P);
            expect_block_end(P);
        }
        x->names = names.v;
        x->nnames = names.n;
        x->name = names.v[0];
        x->name2 = attr;
        x->flag = attr != NULL;
        return x;
    }
    if (!strcmp(tag, "macro")) {
        x = nn(P, N_MACRO, line);
        x->name = expect_name(P);
        parse_params(P, x);
        expect_block_end(P);
        static const char *const ends[] = {"endmacro"};
        body_into(P, x, false, ends, 1);
        end_name(P);
        if (cur(P)->kind == TK_NAME) next(P);
        expect_block_end(P);
        return x;
    }
    if (!strcmp(tag, "call")) {
        x = nn(P, N_CALLBLOCK, line);
        if (is_op(P, "(")) parse_params(P, x);
        x->a = parse_expr(P);
        if (x->a->kind != E_CALL) tp_fail_arena(P->a, line, SL_EINVAL, "expected call");
        expect_block_end(P);
        static const char *const ends[] = {"endcall"};
        body_into(P, x, false, ends, 1);
        end_name(P);
        expect_block_end(P);
        return x;
    }
    if (!strcmp(tag, "filter")) {
        x = nn(P, N_FILTERBLOCK, line);
        x->b = parse_filter_chain(P);
        expect_block_end(P);
        static const char *const ends[] = {"endfilter"};
        body_into(P, x, false, ends, 1);
        end_name(P);
        expect_block_end(P);
        return x;
    }
    if (!strcmp(tag, "generation")) {
        expect_block_end(P);
        static const char *const ends[] = {"endgeneration"};
        x = parse_body(P, ends, 1);
        end_name(P);
        expect_block_end(P);
        return x;
    }
    if (!strcmp(tag, "break") || !strcmp(tag, "continue")) {
        x = nn(P, tag[0] == 'b' ? N_BREAK : N_CONTINUE, line);
        expect_block_end(P);
        return x;
    }
    static const char *const jinja_tags[] = {"include", "import", "from", "extends", "block", "with", "autoescape",
                                             "do", "trans", "pluralize", "debug"};
    for (size_t i = 0; i < sizeof jinja_tags / sizeof *jinja_tags; i++)
        if (!strcmp(tag, jinja_tags[i]))
            tp_fail_arena(P->a, line, SL_EUNSUPPORTED, "unsupported construct: {%% %s %%}", tag);
    tp_fail_arena(P->a, line, SL_EINVAL, "Encountered unknown tag '%s'.", tag);
}

static tp_node *parse_body(parser *P, const char *const *ends, size_t nends) {
    tp_node *body = nn(P, N_BODY, cur(P)->line);
    vec v = {0};
    for (;;) {
        tp_tok *k = cur(P);
        if (k->kind == TK_EOF) {
            if (nends) {
                char want[160] = "";
                for (size_t i = 0; i < nends; i++) {
                    size_t l = strlen(want);
                    snprintf(want + l, sizeof want - l, "%s'%s'", i ? " or " : "", ends[i]);
                }
                tp_fail_arena(P->a, k->line, SL_EINVAL,
                              "Unexpected end of template. Jinja was looking for the following tags: %s. The innermost "
                              "block that needs to be closed is '%s'.", want, P->ntags ? P->tags[P->ntags - 1] : "?");
            }
            break;
        }
        if (k->kind == TK_DATA) {
            tp_node *d = nn(P, N_DATA, k->line);
            d->val = tp_str_ref(P->a, k->s, k->n);
            vpush(P, &v, d);
            next(P);
        } else if (k->kind == TK_VAR_BEGIN) {
            next(P);
            tp_node *o = nn(P, N_OUTPUT, k->line);
            o->a = parse_tuple_expr(P);
            if (cur(P)->kind != TK_VAR_END) fail_expected(P, "end of print statement");
            next(P);
            vpush(P, &v, o);
        } else if (k->kind == TK_BLOCK_BEGIN) {
            tp_tok *nm = peek(P, 1);
            if (nm->kind == TK_NAME) {
                for (size_t i = 0; i < nends; i++)
                    if (nm->n == strlen(ends[i]) && !memcmp(nm->s, ends[i], nm->n)) {
                        body->list = v.v;
                        body->n = v.n;
                        return body;
                    }
                if ((nm->n >= 3 && !memcmp(nm->s, "end", 3)) || (nm->n == 4 && !memcmp(nm->s, "elif", 4)) ||
                    (nm->n == 4 && !memcmp(nm->s, "else", 4)))
                    tp_fail_arena(P->a, k->line, SL_EINVAL, "Encountered unknown tag '%.*s'.", (int)nm->n, nm->s);
            }
            enter(P);
            vpush(P, &v, parse_statement(P));
            P->nest--;
        } else fail_expected(P, "template data or a tag");
    }
    body->list = v.v;
    body->n = v.n;
    return body;
}

/* jinja2 reports an unknown filter/test at compile time unless it sits in a
 * "soft" frame (an if statement's test and branches, or an inline if),
 * where the error is deferred until the filter runs. */
static void check_unknown(parser *P, const tp_node *x, bool soft, int depth) {
    if (!x) return;
    if (depth > 1000) tp_fail_arena(P->a, x->line, SL_EINVAL, "template nested too deeply (limit 1000 levels)");
    if ((x->kind == E_FILTER || x->kind == E_TEST) && x->op && !soft)
        tp_fail_arena(P->a, x->line, SL_EINVAL, "No %s named '%s'.", x->kind == E_FILTER ? "filter" : "test", x->name);
    bool s_kids = soft, s_body = soft;
    if (x->kind == N_IF || x->kind == E_COND) s_kids = s_body = true;
    else if (x->kind == N_FOR || x->kind == N_MACRO || x->kind == N_CALLBLOCK || x->kind == N_FILTERBLOCK ||
             x->kind == N_SETBLOCK)
        s_body = false;
    check_unknown(P, x->a, s_kids, depth + 1);
    check_unknown(P, x->b, x->kind == N_FOR || x->kind == N_FILTERBLOCK || x->kind == N_SETBLOCK ? false : s_kids, depth + 1);
    check_unknown(P, x->c, s_kids, depth + 1);
    check_unknown(P, x->d, s_kids, depth + 1);
    bool stmt = x->kind <= N_BODY;
    for (size_t i = 0; i < x->n; i++) check_unknown(P, x->list[i], stmt ? s_body : s_kids, depth + 1);
    for (size_t i = 0; i < x->n2; i++)
        check_unknown(P, x->list2[i], stmt && x->kind != N_MACRO && x->kind != N_CALLBLOCK ? s_body : s_kids, depth + 1);
}

tp_node *tp_parse(tp_arena *a, tp_toks *toks) {
    parser P = {.a = a, .t = toks};
    tp_node *root = parse_body(&P, NULL, 0);
    check_unknown(&P, root, false, 0);
    return root;
}
