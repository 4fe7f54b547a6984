/*
 * api.c — public entry points of the chat-template interpreter
 * (include/silica/template.h): compile = lex + parse into the template's
 * own arena; render = evaluate into a fresh per-call arena, then copy the
 * output into one malloc'd string.
 *
 * Invariants: each entry point owns a jmp_buf that every failure below it
 * longjmps to; after a failure the arena is freed and *out left NULL, so
 * nothing leaks and a compiled template is never modified by a render.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "template/tmpl_impl.h"

#define DEFAULT_MAX_OUTPUT (16u << 20)
#define DEFAULT_MAX_ITER 1000000u
#define DEFAULT_MAX_DEPTH 200u
#define DEFAULT_MAX_MEMORY (256u << 20)

int sl_tmpl_compile(const char *src, size_t len, const char *name, sl_tmpl **out, sl_error *err) {
    *out = NULL;
    sl_tmpl *t = calloc(1, sizeof *t);
    if (!t) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", name ? name : "template");
    t->name = strdup(name ? name : "template");
    if (!t->name) {
        free(t);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    sl_error local;
    jmp_buf jb;
    t->arena.limit = DEFAULT_MAX_MEMORY;
    t->arena.jb = &jb;
    t->arena.err = err ? err : &local;
    t->arena.name = t->name;
    if (setjmp(jb)) {
        int code = t->arena.err->code;
        sl_tmpl_free(t);
        return code;
    }
    if (len > DEFAULT_MAX_MEMORY / 8) tp_fail_arena(&t->arena, 0, SL_EINVAL, "template larger than %u bytes", DEFAULT_MAX_MEMORY / 8);
    tp_toks toks = {0};
    tp_lex(&t->arena, src, len, &toks);
    t->root = tp_parse(&t->arena, &toks);
    t->arena.jb = NULL;
    t->arena.err = NULL;
    *out = t;
    return SL_OK;
}

void sl_tmpl_free(sl_tmpl *t) {
    if (!t) return;
    tp_arena_free(&t->arena);
    free(t->name);
    free(t);
}

int sl_tmpl_render(const sl_tmpl *t, const cJSON *ctx, const sl_tmpl_limits *limits, char **out, size_t *out_len,
                   sl_error *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    sl_error local;
    jmp_buf jb;
    /* heap-allocated so that their contents are well defined after longjmp */
    tp_arena *const a = calloc(1, sizeof *a);
    tp_ctx *const c = calloc(1, sizeof *c);
    if (!a || !c) {
        free(a);
        free(c);
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    }
    c->lim.max_output = limits && limits->max_output ? limits->max_output : DEFAULT_MAX_OUTPUT;
    c->lim.max_iterations = limits && limits->max_iterations ? limits->max_iterations : DEFAULT_MAX_ITER;
    c->lim.max_depth = limits && limits->max_depth ? limits->max_depth : DEFAULT_MAX_DEPTH;
    c->lim.max_memory = limits && limits->max_memory ? limits->max_memory : DEFAULT_MAX_MEMORY;
    a->limit = (size_t)c->lim.max_memory;
    a->jb = &jb;
    a->err = err ? err : &local;
    a->name = t->name;
    c->a = a;
    if (setjmp(jb)) {
        int code = a->err->code;
        tp_arena_free(a);
        free(a);
        free(c);
        return code;
    }
    if (ctx && !cJSON_IsObject(ctx)) tp_fail_arena(a, 0, SL_EINVAL, "render context must be a JSON object");
    tp_scope *vars = tp_alloc(a, sizeof *vars), *root = tp_alloc(a, sizeof *root);
    if (ctx)
        for (const cJSON *j = ctx->child; j; j = j->next)
            tp_dict_set(a, &vars->vars, tp_str(a, j->string, strlen(j->string)), tp_from_cjson(a, j, 0));
    root->parent = vars;
    c->root = root;
    c->scope = root;
    tp_buf *buf = tp_alloc(a, sizeof *buf);
    c->out = buf;
    tp_exec_root(c, t->root);
    char *s = malloc(buf->n + 1);
    if (!s) tp_fail_arena(a, 0, SL_ENOMEM, "out of memory");
    if (buf->n) memcpy(s, buf->p, buf->n);
    s[buf->n] = 0;
    if (out_len) *out_len = buf->n;
    *out = s;
    tp_arena_free(a);
    free(a);
    free(c);
    return SL_OK;
}
