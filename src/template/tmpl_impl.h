/*
 * tmpl_impl.h — internals of the chat-template interpreter (src/template/).
 *
 * Pipeline: lex.c turns source into tokens (whitespace control, trim_blocks
 * and lstrip_blocks are applied there, so DATA tokens hold the final text),
 * parse.c builds an AST of tp_node, eval.c walks it with values (tp_val)
 * from value.c; builtins.c holds filters, tests, methods and globals.
 *
 * Invariants:
 *  - All memory of a compile or of a render comes from one tp_arena, freed in
 *    one go; nothing is freed piecemeal.  Values are immutable once built,
 *    except namespaces (tp_dict mutated by `set ns.x = ...`), so values are
 *    shared freely.
 *  - Errors longjmp to the entry point (tp_fail); the arena is then freed by
 *    the entry point, so no code path leaks.  The arena enforces a byte cap.
 *  - Strings are UTF-8 with explicit length (may hold NUL); `len` is bytes.
 */
#ifndef SILICA_TMPL_IMPL_H
#define SILICA_TMPL_IMPL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/error.h"
#include "silica/template.h"

/* ---- arena ---- */
typedef struct tp_block {
    struct tp_block *next;
    size_t used, cap;
    max_align_t data[];
} tp_block;

typedef struct tp_arena {
    tp_block *head;
    size_t total, limit;
    jmp_buf *jb;          /* where to jump when out of memory */
    sl_error *err;
    const char *name;
} tp_arena;

void *tp_alloc(tp_arena *a, size_t n);             /* zeroed; longjmps on failure */
char *tp_strndup(tp_arena *a, const char *s, size_t n);
void tp_arena_free(tp_arena *a);
_Noreturn void tp_fail_arena(tp_arena *a, int line, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ---- growable byte buffer in the arena ---- */
typedef struct tp_buf {
    char *p;
    size_t n, cap;
} tp_buf;
void tp_buf_put(tp_arena *a, tp_buf *b, const char *s, size_t n);
void tp_buf_puts(tp_arena *a, tp_buf *b, const char *s);
void tp_buf_putc(tp_arena *a, tp_buf *b, char c);
void tp_buf_printf(tp_arena *a, tp_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- values ---- */
typedef enum {
    TV_UNDEF, TV_NONE, TV_BOOL, TV_INT, TV_FLOAT, TV_STR, TV_LIST, TV_DICT, TV_NS, TV_MACRO, TV_FUNC, TV_LOOP,
    TV_CYCLER
} tp_kind;

typedef struct tp_val tp_val;
typedef struct tp_list {
    size_t n, cap;
    const tp_val **v;
    bool tuple;
    /* Python iterators the filters return (select, map, items, ...): gen names the type ("generator",
     * "dict_items", ...).  Generators are truthy, have no len(), are consumed by one iteration and
     * are not JSON serializable; views (view=true: dict.items()/keys()/values()) keep len(). */
    const char *gen;
    bool view, consumed;
} tp_list;
typedef struct tp_dict {
    size_t n, cap;
    const tp_val **k, **v;
} tp_dict;
struct tp_node;
struct tp_scope;
typedef struct tp_loop {
    const tp_list *items;
    size_t i;
    int depth;
    const tp_val *last;   /* loop.changed(): the previous arguments */
} tp_loop;
typedef struct tp_macro {
    const struct tp_node *node;   /* N_MACRO (or N_CALLBLOCK for `caller`) */
    struct tp_scope *scope;       /* defining scope */
    const struct tp_val *caller;  /* `caller` bound for this call, may be NULL */
} tp_macro;

struct tp_val {
    tp_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *s; size_t n; } s;   /* TV_STR; TV_UNDEF: message (n==0: none) */
        tp_list *l;
        tp_dict *d;                                /* TV_DICT, TV_NS */
        tp_macro *m;
        int fn;                                    /* TV_FUNC: builtin id */
        tp_loop *loop;
    } u;
    const char *uname;   /* TV_UNDEF: the undefined name; TV_FUNC bound method: its name */
    const tp_val *self;  /* TV_FUNC bound method (fn == FN_METHOD): the object */
    bool markup;         /* TV_STR: a markupsafe.Markup (from |safe, |escape): `+` escapes plain operands */
};

extern const tp_val tp_none, tp_true, tp_false, tp_undef;

const tp_val *tp_int(tp_arena *a, int64_t i);
const tp_val *tp_float(tp_arena *a, double f);
const tp_val *tp_bool(bool b);
const tp_val *tp_str(tp_arena *a, const char *s, size_t n);   /* copies */
const tp_val *tp_str_ref(tp_arena *a, const char *s, size_t n); /* no copy: s must outlive the render */
const tp_val *tp_undef_msg(tp_arena *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
tp_list *tp_list_new(tp_arena *a, size_t cap);
void tp_list_push(tp_arena *a, tp_list *l, const tp_val *v);
const tp_val *tp_list_val(tp_arena *a, tp_list *l);
const tp_val *tp_gen_val(tp_arena *a, tp_list *l, const char *type, bool view);
tp_dict *tp_dict_new(tp_arena *a);
void tp_dict_set(tp_arena *a, tp_dict *d, const tp_val *k, const tp_val *v);   /* replace or append */
const tp_val *tp_dict_get(const tp_dict *d, const tp_val *k);                 /* NULL when absent */
const tp_val *tp_dict_gets(const tp_dict *d, const char *k, size_t n);
const tp_val *tp_dict_val(tp_arena *a, tp_dict *d);

bool tp_truthy(const tp_val *v);
bool tp_equal(const tp_val *x, const tp_val *y);
/* Python ordering; returns -1/0/1, or fails (TypeError text) for unorderable types */
int tp_compare(tp_arena *a, int line, const tp_val *x, const tp_val *y, const char *op);
const char *tp_type_name(const tp_val *v);   /* Python type name: "str", "int", "dict", ... */
_Noreturn void tp_undef_fail(tp_arena *a, int line, const tp_val *u);

/* Python str() / repr() appended to b. */
void tp_to_str(tp_arena *a, tp_buf *b, const tp_val *v);
void tp_repr(tp_arena *a, tp_buf *b, const tp_val *v);
const tp_val *tp_as_str(tp_arena *a, const tp_val *v);   /* str(v) as a TV_STR value */
const tp_val *tp_markup(tp_arena *a, const tp_val *s);   /* the same text as a Markup string */
void tp_html_escape(tp_arena *a, tp_buf *b, const char *s, size_t n);   /* markupsafe.escape */
void tp_float_repr(double f, char *out, size_t cap);
/* json.dumps(v, ensure_ascii, indent (NULL: none), item_sep, key_sep, sort_keys) */
void tp_json(tp_arena *a, int line, tp_buf *b, const tp_val *v, bool ensure_ascii, const char *indent,
             const char *item_sep, const char *key_sep, bool sort_keys);
const tp_val *tp_from_cjson(tp_arena *a, const struct cJSON *j, int depth);

/* UTF-8 helpers */
size_t tp_utf8_len(const char *s, size_t n);                 /* code points */
size_t tp_utf8_next(const char *s, size_t n, size_t i, uint32_t *cp);   /* returns next index */
bool tp_py_isspace(uint32_t cp);
void tp_put_cp(tp_arena *a, tp_buf *b, uint32_t cp);

/* ---- tokens ---- */
typedef enum {
    TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END, TK_NAME, TK_STRING, TK_INT, TK_FLOAT,
    TK_OP
} tp_tok_kind;

typedef struct tp_tok {
    tp_tok_kind kind;
    int line;
    const char *s;   /* DATA/NAME/STRING (decoded)/OP text */
    size_t n;
    int64_t i;
    double f;
} tp_tok;

typedef struct tp_toks {
    tp_tok *v;
    size_t n, cap;
} tp_toks;

void tp_lex(tp_arena *a, const char *src, size_t len, tp_toks *out);

/* ---- AST ---- */
typedef enum {
    /* statements */
    N_DATA, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK, N_BREAK, N_CONTINUE,
    N_BODY,
    /* expressions */
    E_LIT, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NEG, E_POS, E_NOT, E_AND, E_OR, E_BIN,
    E_CMP, E_COND, E_LIST, E_TUPLE, E_DICT
} tp_node_kind;

/* binary operators (E_BIN op) and comparison operators (E_CMP ops) */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
       OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

typedef struct tp_node tp_node;
struct tp_node {
    tp_node_kind kind;
    int line;
    int op;
    bool flag;               /* E_TEST: negated; N_SET: ns-attribute target; N_FOR: has else */
    const char *name;        /* names: variable, attribute, filter, test, macro, set target */
    const char *name2;       /* N_SET attribute of a namespace target */
    const tp_val *val;       /* E_LIT */
    tp_node *a, *b, *c, *d;  /* children (meaning per kind) */
    tp_node **list;          /* body / items / positional args */
    size_t n;
    tp_node **list2;         /* else body / kw values / defaults / cmp operands */
    size_t n2;
    const char **names;      /* kw names / params / for targets */
    size_t nnames;
    int *ops;                /* E_CMP operators */
};

struct sl_tmpl {
    tp_arena arena;
    tp_node *root;          /* N_BODY */
    char *name;
};

/* parse.c */
tp_node *tp_parse(tp_arena *a, tp_toks *toks);

/* ---- evaluation ---- */
typedef struct tp_scope {
    struct tp_scope *parent;
    tp_dict vars;
} tp_scope;

enum { CTRL_NONE, CTRL_BREAK, CTRL_CONTINUE };

typedef struct tp_ctx {
    tp_arena *a;
    tp_scope *root;
    tp_scope *scope;       /* current scope */
    tp_buf *out;           /* current output buffer */
    int ctrl;
    uint64_t iterations;
    uint32_t depth;        /* active macro calls */
    uint32_t edepth;       /* active tp_eval / statement frames (C stack guard) */
    sl_tmpl_limits lim;
} tp_ctx;

const tp_val *tp_eval(tp_ctx *c, const tp_node *e);
const tp_val *tp_lookup(tp_ctx *c, tp_scope *s, const char *name);
const tp_val *tp_getattr(tp_ctx *c, int line, const tp_val *obj, const char *name);
const tp_val *tp_getitem(tp_ctx *c, int line, const tp_val *obj, const tp_val *key);
const tp_list *tp_iterate(tp_ctx *c, int line, const tp_val *v);
const tp_val *tp_call_macro(tp_ctx *c, int line, const tp_val *m, const tp_val **args, size_t nargs,
                            const char **kwn, const tp_val **kwv, size_t nkw);
void tp_check_output(tp_ctx *c, int line);
/* Python `fmt % arg` (arg a tuple: several values) */
/* Python binary operator (OP_ADD ...) on two values */
const tp_val *tp_binop(tp_ctx *c, int line, int op, const tp_val *x, const tp_val *y);
const tp_val *tp_percent_format(tp_ctx *c, int line, const tp_val *fmt, const tp_val *arg);
void tp_exec_root(tp_ctx *c, const tp_node *root);

/* builtins.c: argument bundle for filters, tests, methods and functions */
typedef struct tp_args {
    const tp_val **pos;
    size_t npos;
    const char **kwn;
    const tp_val **kwv;
    size_t nkw;
} tp_args;

enum { FN_METHOD = 1, FN_RANGE, FN_NAMESPACE, FN_DICT, FN_RAISE, FN_STRFTIME, FN_CYCLER, FN_JOINER };

/* text.c: Python str operations (mode: 0 lower, 1 upper, 2 capitalize, 3 jinja2 title filter, 4 str.title) */
const tp_val *tp_casemap(tp_ctx *c, const tp_val *s, int mode);
const tp_val *tp_strip(tp_ctx *c, const tp_val *s, const tp_val *chars, bool left, bool right);
const char *tp_find_sub(const char *s, size_t n, const char *t, size_t m);
const tp_val *tp_replace(tp_ctx *c, const tp_val *s, const tp_val *old, const tp_val *new_, int64_t count);
const tp_val *tp_split(tp_ctx *c, int line, const tp_val *s, const tp_val *sep, int64_t maxsplit, bool right);

/* argument i (positional) or `name` (keyword), NULL if absent; typed variants fail with a TypeError text */
const tp_val *tp_arg(const tp_args *a, size_t i, const char *name);
const tp_val *tp_need_str(tp_ctx *c, int line, const tp_val *v, const char *what);
int64_t tp_need_int(tp_ctx *c, int line, const tp_val *v, const char *what);
bool tp_filter_exists(const char *name);
bool tp_test_exists(const char *name);
const tp_val *tp_apply_filter(tp_ctx *c, int line, const char *name, const tp_val *v, const tp_args *args);
bool tp_apply_test(tp_ctx *c, int line, const char *name, const tp_val *v, const tp_args *args);
/* Method call obj.name(args); sets *found=false when obj has no such method. */
const tp_val *tp_call_method(tp_ctx *c, int line, const tp_val *obj, const char *name, const tp_args *args,
                             bool *found);
const tp_val *tp_call_func(tp_ctx *c, int line, int fn, const tp_args *args);
const tp_val *tp_global(const char *name);   /* builtin global or NULL */
/* Is `name` a Python attribute of obj's type? 0: no, 1: a method silica may call, 2: one the sandbox
 * refuses (mutates a list/dict, or starts with '_'). */
int tp_method_kind(const tp_val *obj, const char *name);

/* chat_gguf.c: the chat template and special tokens of a GGUF model
 * (a GGUF file, or a directory whose weights are one GGUF model). */
int sl_tmpl__gguf_chat_template(const char *path, const char *which, int has_tools, char **src, struct cJSON **special,
                                sl_error *err);
int sl_tmpl_gguf_has_chat_template(const char *gguf_path);

#endif
