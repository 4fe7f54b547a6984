/*
 * pickle.c — the allowlist unpickler and the opcode scanner (see pickle.h).
 *
 * Invariants:
 *  - Nothing is ever called or imported: GLOBAL maps (module, name) through a
 *    static table to an enum, or fails with SL_EUNSAFE naming module.name.
 *  - Only the opcodes of torch's weights_only loader that torch.save needs are
 *    accepted; any other opcode fails naming it.  REDUCE/BUILD/SETITEM(S)/
 *    APPEND(S)/BINPERSID type-check their operands before building anything.
 *  - Every read of the input goes through need(), which checks the bytes left;
 *    lengths from the input are compared with what is left before use.
 *  - The stack, MARK depth, memo and total object count are capped; values are
 *    allocated in chunks owned by the doc, so error paths just free the doc.
 */
#include "formats/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PK_MAX_STACK (1u << 20)
#define PK_MAX_MARKS 4096u
#define PK_MAX_MEMO (1u << 22)
#define PK_MAX_VALUES (1u << 23)
#define PK_MAX_LINE 256u
#define PK_CHUNK 1024u

/* ------------------------------------------------------------------ */
/* opcode table                                                         */

enum arg { A_NONE, A_U1, A_U2, A_I4, A_U4, A_U8, A_F8, A_LINE, A_LINE2, A_LEN1, A_LEN4, A_LEN8, A_LONG1, A_LONG4 };

typedef struct opinfo { const char *name; uint8_t arg; } opinfo;

static const opinfo k_ops[256] = {
    ['('] = {"MARK", A_NONE},          ['.'] = {"STOP", A_NONE},         ['0'] = {"POP", A_NONE},
    ['1'] = {"POP_MARK", A_NONE},      ['2'] = {"DUP", A_NONE},          ['F'] = {"FLOAT", A_LINE},
    ['I'] = {"INT", A_LINE},           ['J'] = {"BININT", A_I4},         ['K'] = {"BININT1", A_U1},
    ['L'] = {"LONG", A_LINE},          ['M'] = {"BININT2", A_U2},        ['N'] = {"NONE", A_NONE},
    ['P'] = {"PERSID", A_LINE},        ['Q'] = {"BINPERSID", A_NONE},    ['R'] = {"REDUCE", A_NONE},
    ['S'] = {"STRING", A_LINE},        ['T'] = {"BINSTRING", A_LEN4},    ['U'] = {"SHORT_BINSTRING", A_LEN1},
    ['V'] = {"UNICODE", A_LINE},       ['X'] = {"BINUNICODE", A_LEN4},   ['a'] = {"APPEND", A_NONE},
    ['b'] = {"BUILD", A_NONE},         ['c'] = {"GLOBAL", A_LINE2},      ['d'] = {"DICT", A_NONE},
    ['}'] = {"EMPTY_DICT", A_NONE},    ['e'] = {"APPENDS", A_NONE},      ['g'] = {"GET", A_LINE},
    ['h'] = {"BINGET", A_U1},          ['i'] = {"INST", A_LINE2},        ['j'] = {"LONG_BINGET", A_U4},
    ['l'] = {"LIST", A_NONE},          [']'] = {"EMPTY_LIST", A_NONE},   ['o'] = {"OBJ", A_NONE},
    ['p'] = {"PUT", A_LINE},           ['q'] = {"BINPUT", A_U1},         ['r'] = {"LONG_BINPUT", A_U4},
    ['s'] = {"SETITEM", A_NONE},       ['t'] = {"TUPLE", A_NONE},        [')'] = {"EMPTY_TUPLE", A_NONE},
    ['u'] = {"SETITEMS", A_NONE},      ['G'] = {"BINFLOAT", A_F8},       [0x80] = {"PROTO", A_U1},
    [0x81] = {"NEWOBJ", A_NONE},       [0x82] = {"EXT1", A_U1},          [0x83] = {"EXT2", A_U2},
    [0x84] = {"EXT4", A_U4},           [0x85] = {"TUPLE1", A_NONE},      [0x86] = {"TUPLE2", A_NONE},
    [0x87] = {"TUPLE3", A_NONE},       [0x88] = {"NEWTRUE", A_NONE},     [0x89] = {"NEWFALSE", A_NONE},
    [0x8a] = {"LONG1", A_LONG1},       [0x8b] = {"LONG4", A_LONG4},      ['B'] = {"BINBYTES", A_LEN4},
    ['C'] = {"SHORT_BINBYTES", A_LEN1}, [0x8c] = {"SHORT_BINUNICODE", A_LEN1}, [0x8d] = {"BINUNICODE8", A_LEN8},
    [0x8e] = {"BINBYTES8", A_LEN8},    [0x8f] = {"EMPTY_SET", A_NONE},   [0x90] = {"ADDITEMS", A_NONE},
    [0x91] = {"FROZENSET", A_NONE},    [0x92] = {"NEWOBJ_EX", A_NONE},   [0x93] = {"STACK_GLOBAL", A_NONE},
    [0x94] = {"MEMOIZE", A_NONE},      [0x95] = {"FRAME", A_U8},         [0x96] = {"BYTEARRAY8", A_LEN8},
    [0x97] = {"NEXT_BUFFER", A_NONE},  [0x98] = {"READONLY_BUFFER", A_NONE},
};

const char *sl_pk_opcode_name(uint8_t op) { return k_ops[op].name ? k_ops[op].name : "?"; }

const char *sl_pk_kind_name(sl_pk_kind k) {
    static const char *const n[] = {"None", "bool", "int", "float", "str", "tuple", "list",
                                    "set", "dict", "OrderedDict", "global", "storage", "tensor"};
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

/* ------------------------------------------------------------------ */
/* the allowlist                                                        */

typedef struct allowed { const char *module, *name, *full; sl_pk_global g; sl_dtype dtype; } allowed;

#define TS(n, d) {"torch", #n, "torch." #n, SL_PKG_TYPED_STORAGE, d}
#define DT(n, d) {"torch", #n, "torch." #n, SL_PKG_DTYPE, d}
static const allowed k_allowed[] = {
    {"collections", "OrderedDict", "collections.OrderedDict", SL_PKG_ORDERED_DICT, SL_DTYPE_INVALID},
    {"torch._utils", "_rebuild_tensor_v2", "torch._utils._rebuild_tensor_v2", SL_PKG_REBUILD_V2, SL_DTYPE_INVALID},
    {"torch._utils", "_rebuild_tensor_v3", "torch._utils._rebuild_tensor_v3", SL_PKG_REBUILD_V3, SL_DTYPE_INVALID},
    {"torch._utils", "_rebuild_parameter", "torch._utils._rebuild_parameter", SL_PKG_REBUILD_PARAM, SL_DTYPE_INVALID},
    {"torch.storage", "UntypedStorage", "torch.storage.UntypedStorage", SL_PKG_UNTYPED_STORAGE, SL_DTYPE_INVALID},
    TS(DoubleStorage, SL_F64), TS(FloatStorage, SL_F32), TS(HalfStorage, SL_F16), TS(BFloat16Storage, SL_BF16),
    TS(LongStorage, SL_I64), TS(IntStorage, SL_I32), TS(ShortStorage, SL_I16), TS(CharStorage, SL_I8),
    TS(ByteStorage, SL_U8), TS(BoolStorage, SL_BOOL), TS(ComplexFloatStorage, SL_C64),
    TS(ComplexDoubleStorage, SL_C128), TS(QInt8Storage, SL_DTYPE_INVALID), TS(QUInt8Storage, SL_DTYPE_INVALID),
    TS(QInt32Storage, SL_DTYPE_INVALID), TS(QUInt4x2Storage, SL_DTYPE_INVALID), TS(QUInt2x4Storage, SL_DTYPE_INVALID),
    DT(float64, SL_F64), DT(double, SL_F64), DT(float32, SL_F32), DT(float, SL_F32), DT(float16, SL_F16),
    DT(half, SL_F16), DT(bfloat16, SL_BF16), DT(int64, SL_I64), DT(long, SL_I64), DT(int32, SL_I32),
    DT(int, SL_I32), DT(int16, SL_I16), DT(short, SL_I16), DT(int8, SL_I8), DT(uint8, SL_U8), DT(bool, SL_BOOL),
    DT(uint16, SL_U16), DT(uint32, SL_U32), DT(uint64, SL_U64), DT(complex64, SL_C64), DT(cfloat, SL_C64),
    DT(complex128, SL_C128), DT(cdouble, SL_C128), DT(float8_e4m3fn, SL_F8_E4M3), DT(float8_e5m2, SL_F8_E5M2),
    DT(float8_e4m3fnuz, SL_F8_E4M3FNUZ), DT(float8_e5m2fnuz, SL_F8_E5M2FNUZ), DT(float8_e8m0fnu, SL_F8_E8M0),
    DT(float4_e2m1fn_x2, SL_F4), DT(complex32, SL_DTYPE_INVALID), DT(chalf, SL_DTYPE_INVALID),
    DT(bits8, SL_DTYPE_INVALID), DT(bits16, SL_DTYPE_INVALID), DT(bits1x8, SL_DTYPE_INVALID),
    DT(bits2x4, SL_DTYPE_INVALID), DT(bits4x2, SL_DTYPE_INVALID),
};
#undef TS
#undef DT

static const allowed *allow_find(const char *module, size_t ml, const char *name, size_t nl) {
    for (size_t i = 0; i < sizeof k_allowed / sizeof k_allowed[0]; i++) {
        const allowed *a = &k_allowed[i];
        if (strlen(a->module) == ml && strlen(a->name) == nl && memcmp(a->module, module, ml) == 0 &&
            memcmp(a->name, name, nl) == 0)
            return a;
    }
    return NULL;
}

bool sl_pk_global_allowed(const char *module, const char *name) {
    return allow_find(module, strlen(module), name, strlen(name)) != NULL;
}

/* ------------------------------------------------------------------ */
/* reading primitives shared by the loader and the scanner              */

typedef struct cursor {
    const uint8_t *p;
    size_t len, pos;
    const char *where;
    sl_error *err;
} cursor;

static int fail(cursor *c, int code, size_t at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int fail(cursor *c, int code, size_t at, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sl_errorf(c->err, code, "%s: byte %zu: %s", c->where, at, msg);
}

static int need(cursor *c, size_t n, size_t at, const char *what) {
    if (n > c->len - c->pos)
        return fail(c, SL_EINVAL, at, "%s needs %zu bytes but only %zu remain (truncated pickle)", what, n,
                    c->len - c->pos);
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A newline-terminated line (GLOBAL operands etc.): [*s, *s+*n) without '\n'. */
static int rd_line(cursor *c, size_t at, const char *what, const char **s, size_t *n) {
    const uint8_t *start = c->p + c->pos;
    size_t room = c->len - c->pos, max = room < PK_MAX_LINE ? room : PK_MAX_LINE;
    const uint8_t *nl = memchr(start, '\n', max);
    if (!nl) return fail(c, SL_EINVAL, at, "%s: line not terminated within %u bytes", what, PK_MAX_LINE);
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    c->pos += *n + 1;
    return 0;
}

/* Length-prefixed payload: returns the payload range after checking it fits. */
static int rd_counted(cursor *c, int lenbytes, size_t at, const char *op, const uint8_t **s, uint64_t *n) {
    int rc = need(c, (size_t)lenbytes, at, op);
    if (rc) return rc;
    *n = rd_le(c->p + c->pos, lenbytes);
    c->pos += (size_t)lenbytes;
    if (*n > c->len - c->pos)
        return fail(c, SL_EINVAL, at, "%s length %llu exceeds the %zu bytes left", op, (unsigned long long)*n,
                    c->len - c->pos);
    *s = c->p + c->pos;
    c->pos += (size_t)*n;
    return 0;
}

static bool utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (b == 0) return false;
        if (b < 0x80) { i++; continue; }
        size_t k = (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : 0;
        if (k == 0 || b == 0xC0 || b == 0xC1 || k >= n - i) return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return false;
        i += k + 1;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* the loader                                                           */

typedef struct chunk { struct chunk *next; size_t used; sl_pkv v[PK_CHUNK]; } chunk;

struct sl_pk_doc {
    chunk *chunks;
    size_t n_values;
    sl_pkv **storages;
    size_t n_storages, cap_storages;
};

typedef struct loader {
    cursor c;
    sl_pk_doc *doc;
    sl_pkv **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    sl_pkv **memo;
    size_t cap_memo;
    size_t op_at;   /* offset of the opcode being run */
    uint8_t op;
} loader;

static void value_free(sl_pkv *v) {
    switch (v->kind) {
    case SL_PK_STR: free(v->u.str.s); break;
    case SL_PK_TUPLE: case SL_PK_LIST: case SL_PK_SET: case SL_PK_DICT: case SL_PK_ODICT: free(v->u.seq.v); break;
    case SL_PK_STORAGE: free(v->u.storage.key); free(v->u.storage.location); break;
    case SL_PK_TENSOR: free(v->u.tensor.size); free(v->u.tensor.stride); break;
    default: break;
    }
}

void sl_pk_free(sl_pk_doc *doc) {
    if (!doc) return;
    for (chunk *ch = doc->chunks, *next; ch; ch = next) {
        next = ch->next;
        for (size_t i = 0; i < ch->used; i++) value_free(&ch->v[i]);
        free(ch);
    }
    free(doc->storages);
    free(doc);
}

size_t sl_pk_storages(const sl_pk_doc *doc, sl_pkv ***out) {
    *out = doc->storages;
    return doc->n_storages;
}

static int lfail(loader *L, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int lfail(loader *L, int code, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sl_errorf(L->c.err, code, "%s: byte %zu: %s: %s", L->c.where, L->op_at, sl_pk_opcode_name(L->op), msg);
}

static int oom(loader *L) { return sl_errorf(L->c.err, SL_ENOMEM, "%s: out of memory", L->c.where); }

static sl_pkv *new_value(loader *L, sl_pk_kind k) {
    sl_pk_doc *d = L->doc;
    if (d->n_values >= PK_MAX_VALUES) return NULL;
    if (!d->chunks || d->chunks->used == PK_CHUNK) {
        chunk *ch = malloc(sizeof *ch);
        if (!ch) return NULL;
        ch->used = 0;
        ch->next = d->chunks;
        d->chunks = ch;
    }
    sl_pkv *v = &d->chunks->v[d->chunks->used++];
    memset(v, 0, sizeof *v);
    v->kind = k;
    d->n_values++;
    return v;
}

static int mk(loader *L, sl_pk_kind k, sl_pkv **out) {
    *out = new_value(L, k);
    if (*out) return 0;
    if (L->doc->n_values >= PK_MAX_VALUES) return lfail(L, SL_EINVAL, "more than %u objects", PK_MAX_VALUES);
    return oom(L);
}

static int push(loader *L, sl_pkv *v) {
    if (L->sp == L->cap_stack) {
        if (L->cap_stack >= PK_MAX_STACK) return lfail(L, SL_EINVAL, "stack deeper than %u", PK_MAX_STACK);
        size_t nc = L->cap_stack ? L->cap_stack * 2 : 64;
        sl_pkv **ns = realloc(L->stack, nc * sizeof *ns);
        if (!ns) return oom(L);
        L->stack = ns;
        L->cap_stack = nc;
    }
    L->stack[L->sp++] = v;
    return 0;
}

/* Items above the innermost MARK must not be touched by plain pops. */
static size_t floor_sp(const loader *L) { return L->n_marks ? L->marks[L->n_marks - 1] : 0; }

static int pop(loader *L, sl_pkv **out) {
    if (L->sp <= floor_sp(L)) return lfail(L, SL_EINVAL, "stack underflow");
    *out = L->stack[--L->sp];
    return 0;
}

static int top(loader *L, sl_pkv **out) {
    if (L->sp <= floor_sp(L)) return lfail(L, SL_EINVAL, "stack underflow");
    *out = L->stack[L->sp - 1];
    return 0;
}

/* Pop back to the innermost MARK: items are stack[*first .. sp). */
static int pop_mark(loader *L, size_t *first) {
    if (!L->n_marks) return lfail(L, SL_EINVAL, "no MARK on the stack");
    *first = L->marks[--L->n_marks];
    return 0;
}

static int seq_reserve(loader *L, sl_pkv *s, size_t add) {
    size_t want = s->u.seq.n + add;
    if (want < s->u.seq.n) return oom(L);
    if (want <= s->u.seq.cap) return 0;
    size_t nc = s->u.seq.cap ? s->u.seq.cap : 4;
    while (nc < want) nc *= 2;
    sl_pkv **nv = realloc(s->u.seq.v, nc * sizeof *nv);
    if (!nv) return oom(L);
    s->u.seq.v = nv;
    s->u.seq.cap = nc;
    return 0;
}

static int make_seq(loader *L, sl_pk_kind k, sl_pkv **items, size_t n, sl_pkv **out) {
    int rc = mk(L, k, out);
    if (!rc) rc = seq_reserve(L, *out, n);
    if (rc) return rc;
    if (n) memcpy((*out)->u.seq.v, items, n * sizeof *items);
    (*out)->u.seq.n = n;
    return 0;
}

static int memo_set(loader *L, uint64_t idx, sl_pkv *v) {
    if (idx >= PK_MAX_MEMO) return lfail(L, SL_EINVAL, "memo index %llu over the limit %u", (unsigned long long)idx,
                                         PK_MAX_MEMO);
    if (idx >= L->cap_memo) {
        size_t nc = L->cap_memo ? L->cap_memo : 64;
        while (nc <= idx) nc *= 2;
        sl_pkv **nm = realloc(L->memo, nc * sizeof *nm);
        if (!nm) return oom(L);
        memset(nm + L->cap_memo, 0, (nc - L->cap_memo) * sizeof *nm);
        L->memo = nm;
        L->cap_memo = nc;
    }
    L->memo[idx] = v;
    return 0;
}

static int memo_get(loader *L, uint64_t idx) {
    if (idx >= L->cap_memo || !L->memo[idx])
        return lfail(L, SL_EINVAL, "memo index %llu was never set", (unsigned long long)idx);
    return push(L, L->memo[idx]);
}

static int new_str(loader *L, const uint8_t *s, size_t n, bool latin) {
    if (!utf8_valid(s, n) && !latin) return lfail(L, SL_EINVAL, "string is not valid UTF-8 (or holds a NUL)");
    if (latin)
        for (size_t i = 0; i < n; i++)
            if (s[i] == 0 || s[i] >= 0x80) return lfail(L, SL_EINVAL, "byte string holds a non-ASCII byte");
    sl_pkv *v;
    int rc = mk(L, SL_PK_STR, &v);
    if (rc) return rc;
    v->u.str.s = malloc(n + 1);
    if (!v->u.str.s) return oom(L);
    memcpy(v->u.str.s, s, n);
    v->u.str.s[n] = 0;
    v->u.str.len = n;
    return push(L, v);
}

static int new_int(loader *L, int64_t i) {
    sl_pkv *v;
    int rc = mk(L, SL_PK_INT, &v);
    if (rc) return rc;
    v->u.i = i;
    return push(L, v);
}

static bool is_str(const sl_pkv *v, const char *s) { return v->kind == SL_PK_STR && strcmp(v->u.str.s, s) == 0; }
static bool is_empty_odict(const sl_pkv *v) { return v->kind == SL_PK_ODICT && v->u.seq.n == 0 && !v->state; }

static int op_global(loader *L) {
    const char *m = NULL, *n = NULL;
    size_t ml = 0, nl = 0;
    int rc = rd_line(&L->c, L->op_at, "GLOBAL module", &m, &ml);
    if (!rc) rc = rd_line(&L->c, L->op_at, "GLOBAL name", &n, &nl);
    if (rc) return rc;
    const allowed *a = allow_find(m, ml, n, nl);
    if (!a) {
        char mm[PK_MAX_LINE + 1], nn[PK_MAX_LINE + 1];
        size_t j = 0;
        for (size_t i = 0; i < ml; i++) mm[j++] = (m[i] >= 0x20 && m[i] < 0x7f) ? m[i] : '?';
        mm[j] = 0;
        j = 0;
        for (size_t i = 0; i < nl; i++) nn[j++] = (n[i] >= 0x20 && n[i] < 0x7f) ? n[i] : '?';
        nn[j] = 0;
        return sl_errorf(L->c.err, SL_EUNSAFE, "%s: global '%s.%s' is not allowed", L->c.where, mm, nn);
    }
    sl_pkv *v;
    rc = mk(L, SL_PK_GLOBAL, &v);
    if (rc) return rc;
    v->u.glob.g = a->g;
    v->u.glob.dtype = a->dtype;
    v->u.glob.name = a->full;
    return push(L, v);
}

/* BINPERSID: ('storage', StorageType, key, location, numel[, None]) -> storage */
static int op_persid(loader *L) {
    sl_pkv *pid = NULL, *v = NULL;
    int rc = pop(L, &pid);
    if (rc) return rc;
    if (pid->kind != SL_PK_TUPLE || (pid->u.seq.n != 5 && pid->u.seq.n != 6))
        return lfail(L, SL_EINVAL, "persistent id must be a 5-tuple ('storage', type, key, location, numel), got %s",
                     sl_pk_kind_name(pid->kind));
    sl_pkv **e = pid->u.seq.v;
    if (!is_str(e[0], "storage")) return lfail(L, SL_EINVAL, "persistent id does not start with 'storage'");
    if (e[1]->kind != SL_PK_GLOBAL ||
        (e[1]->u.glob.g != SL_PKG_TYPED_STORAGE && e[1]->u.glob.g != SL_PKG_UNTYPED_STORAGE))
        return lfail(L, SL_EINVAL, "persistent id type is not a storage class");
    if (e[2]->kind != SL_PK_STR || e[2]->u.str.len == 0 || e[2]->u.str.len > 64)
        return lfail(L, SL_EINVAL, "storage key must be a non-empty string of at most 64 characters");
    for (size_t i = 0; i < e[2]->u.str.len; i++) {
        char ch = e[2]->u.str.s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'))
            return lfail(L, SL_EINVAL, "storage key '%.64s' has a character outside [A-Za-z0-9_]", e[2]->u.str.s);
    }
    if (e[3]->kind != SL_PK_STR) return lfail(L, SL_EINVAL, "storage location must be a string");
    if (e[4]->kind != SL_PK_INT || e[4]->u.i < 0) return lfail(L, SL_EINVAL, "storage numel must be an int >= 0");
    if (pid->u.seq.n == 6 && e[5]->kind != SL_PK_NONE)
        return lfail(L, SL_EUNSUPPORTED, "legacy storage views (view_metadata) are not supported");
    rc = mk(L, SL_PK_STORAGE, &v);
    if (rc) return rc;
    v->u.storage.untyped = e[1]->u.glob.g == SL_PKG_UNTYPED_STORAGE;
    v->u.storage.dtype = e[1]->u.glob.dtype;
    v->u.storage.type_name = e[1]->u.glob.name;
    v->u.storage.key = strdup(e[2]->u.str.s);
    v->u.storage.location = strdup(e[3]->u.str.s);
    v->u.storage.numel = e[4]->u.i;
    if (!v->u.storage.key || !v->u.storage.location) return oom(L);
    sl_pk_doc *d = L->doc;
    if (d->n_storages == d->cap_storages) {
        size_t nc = d->cap_storages ? d->cap_storages * 2 : 16;
        sl_pkv **ns = realloc(d->storages, nc * sizeof *ns);
        if (!ns) return oom(L);
        d->storages = ns;
        d->cap_storages = nc;
    }
    d->storages[d->n_storages++] = v;
    return push(L, v);
}

static int int_tuple(loader *L, const sl_pkv *t, const char *what, int64_t **out, int *n) {
    if (t->kind != SL_PK_TUPLE) return lfail(L, SL_EINVAL, "%s must be a tuple of ints, got %s", what,
                                             sl_pk_kind_name(t->kind));
    if (t->u.seq.n > SL_MAX_DIMS)
        return lfail(L, SL_EUNSUPPORTED, "%s has %zu dimensions (at most %d supported)", what, t->u.seq.n,
                     SL_MAX_DIMS);
    *n = (int)t->u.seq.n;
    *out = malloc((t->u.seq.n ? t->u.seq.n : 1) * sizeof **out);
    if (!*out) return oom(L);
    for (size_t i = 0; i < t->u.seq.n; i++) {
        const sl_pkv *e = t->u.seq.v[i];
        if (e->kind != SL_PK_INT || e->u.i < 0) {
            free(*out);
            *out = NULL;
            return lfail(L, SL_EINVAL, "%s[%zu] must be an int >= 0", what, i);
        }
        (*out)[i] = e->u.i;
    }
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
 * _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata]) */
static int rebuild_tensor(loader *L, bool v3, const sl_pkv *args) {
    const char *fn = v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2";
    size_t n = args->u.seq.n, base = v3 ? 7 : 6;
    if (n != base && n != base + 1) return lfail(L, SL_EINVAL, "%s takes %zu or %zu arguments, got %zu", fn, base,
                                                 base + 1, n);
    sl_pkv **a = args->u.seq.v;
    if (a[0]->kind != SL_PK_STORAGE) return lfail(L, SL_EINVAL, "%s: argument 1 must be a storage", fn);
    if (a[0]->u.storage.untyped != v3)
        return lfail(L, SL_EINVAL, "%s: storage '%s' must be %s", fn, a[0]->u.storage.key,
                     v3 ? "torch.storage.UntypedStorage" : "a typed storage");
    if (a[1]->kind != SL_PK_INT || a[1]->u.i < 0) return lfail(L, SL_EINVAL, "%s: storage offset must be an int >= 0", fn);
    if (a[4]->kind != SL_PK_BOOL) return lfail(L, SL_EINVAL, "%s: requires_grad must be a bool", fn);
    if (!is_empty_odict(a[5])) return lfail(L, SL_EINVAL, "%s: backward_hooks must be an empty OrderedDict", fn);
    if (v3 && (a[6]->kind != SL_PK_GLOBAL || a[6]->u.glob.g != SL_PKG_DTYPE))
        return lfail(L, SL_EINVAL, "%s: argument 7 must be a torch dtype", fn);
    if (n == base + 1) {
        const sl_pkv *md = a[base];
        if ((md->kind != SL_PK_DICT && md->kind != SL_PK_ODICT) || md->u.seq.n != 0)
            return lfail(L, SL_EUNSUPPORTED, "%s: tensor metadata (conj/neg bits) is not supported", fn);
    }
    sl_pkv *t;
    int rc = mk(L, SL_PK_TENSOR, &t);
    if (rc) return rc;
    sl_pk_tensor *T = &t->u.tensor;
    T->storage = a[0];
    T->dtype = v3 ? a[6]->u.glob.dtype : a[0]->u.storage.dtype;
    T->dtype_name = v3 ? a[6]->u.glob.name : a[0]->u.storage.type_name;
    T->offset = a[1]->u.i;
    T->requires_grad = a[4]->u.b;
    int nd_size, nd_stride;
    rc = int_tuple(L, a[2], "size", &T->size, &nd_size);
    if (!rc) rc = int_tuple(L, a[3], "stride", &T->stride, &nd_stride);
    if (rc) return rc;
    if (nd_size != nd_stride)
        return lfail(L, SL_EINVAL, "%s: size has %d dimensions but stride has %d", fn, nd_size, nd_stride);
    T->ndim = nd_size;
    return push(L, t);
}

static int op_reduce(loader *L) {
    sl_pkv *args = NULL, *fn = NULL;
    int rc = pop(L, &args);
    if (!rc) rc = pop(L, &fn);
    if (rc) return rc;
    if (fn->kind != SL_PK_GLOBAL) return lfail(L, SL_EINVAL, "callable is a %s, not an allowed global",
                                               sl_pk_kind_name(fn->kind));
    if (args->kind != SL_PK_TUPLE) return lfail(L, SL_EINVAL, "arguments must be a tuple");
    switch (fn->u.glob.g) {
    case SL_PKG_ORDERED_DICT: {
        if (args->u.seq.n != 0) return lfail(L, SL_EINVAL, "OrderedDict() must be called without arguments");
        sl_pkv *d;
        rc = mk(L, SL_PK_ODICT, &d);
        return rc ? rc : push(L, d);
    }
    case SL_PKG_REBUILD_V2: return rebuild_tensor(L, false, args);
    case SL_PKG_REBUILD_V3: return rebuild_tensor(L, true, args);
    case SL_PKG_REBUILD_PARAM: {
        sl_pkv **a = args->u.seq.v;
        if (args->u.seq.n != 3 || a[0]->kind != SL_PK_TENSOR || a[1]->kind != SL_PK_BOOL || !is_empty_odict(a[2]))
            return lfail(L, SL_EINVAL, "_rebuild_parameter takes (tensor, bool, OrderedDict())");
        sl_pkv *p;
        rc = mk(L, SL_PK_TENSOR, &p);
        if (rc) return rc;
        p->u.tensor = a[0]->u.tensor;
        size_t nd = (size_t)(a[0]->u.tensor.ndim ? a[0]->u.tensor.ndim : 1);
        p->u.tensor.size = malloc(nd * sizeof(int64_t));
        p->u.tensor.stride = malloc(nd * sizeof(int64_t));
        if (!p->u.tensor.size || !p->u.tensor.stride) return oom(L);
        memcpy(p->u.tensor.size, a[0]->u.tensor.size, nd * sizeof(int64_t));
        memcpy(p->u.tensor.stride, a[0]->u.tensor.stride, nd * sizeof(int64_t));
        p->u.tensor.requires_grad = a[1]->u.b;
        p->u.tensor.parameter = true;
        return push(L, p);
    }
    default: return lfail(L, SL_EUNSAFE, "calling '%s' is not allowed", fn->u.glob.name);
    }
}

static int op_build(loader *L) {
    sl_pkv *state = NULL, *target = NULL;
    int rc = pop(L, &state);
    if (!rc) rc = top(L, &target);
    if (rc) return rc;
    if (target->kind != SL_PK_ODICT || target->state)
        return lfail(L, SL_EINVAL, "BUILD is only allowed once on an OrderedDict, not on a %s",
                     sl_pk_kind_name(target->kind));
    if (state->kind != SL_PK_DICT || state->u.seq.n != 2 || !is_str(state->u.seq.v[0], "_metadata"))
        return lfail(L, SL_EINVAL, "OrderedDict state must be {'_metadata': ...}");
    target->state = state;
    return 0;
}

/* Move stack[first..sp) into the container at stack[first-1] (SETITEM(S), APPEND(S)). */
static int extend_below(loader *L, size_t first, bool dict) {
    if (first == 0 || first <= floor_sp(L)) return lfail(L, SL_EINVAL, "stack underflow (no container below the items)");
    sl_pkv *d = L->stack[first - 1];
    size_t n = L->sp - first;
    if (dict && d->kind != SL_PK_DICT && d->kind != SL_PK_ODICT)
        return lfail(L, SL_EINVAL, "target is a %s, not a dict", sl_pk_kind_name(d->kind));
    if (!dict && d->kind != SL_PK_LIST)
        return lfail(L, SL_EINVAL, "target is a %s, not a list", sl_pk_kind_name(d->kind));
    if (dict && n % 2) return lfail(L, SL_EINVAL, "odd number of items (%zu) for a dict", n);
    int rc = seq_reserve(L, d, n);
    if (rc) return rc;
    if (n) memcpy(d->u.seq.v + d->u.seq.n, L->stack + first, n * sizeof *L->stack);
    d->u.seq.n += n;
    L->sp = first;
    return 0;
}

static int run(loader *L, sl_pkv **root) {
    cursor *c = &L->c;
    bool first = true;
    for (;;) {
        if (c->pos >= c->len) return fail(c, SL_EINVAL, c->pos, "pickle ends without STOP");
        L->op_at = c->pos;
        L->op = c->p[c->pos++];
        uint8_t op = L->op;
        int rc = 0;
        if (first && op != 0x80) return lfail(L, SL_EINVAL, "expected PROTO 2 at the start of the pickle");
        first = false;
        switch (op) {
        case 0x80: {   /* PROTO */
            if ((rc = need(c, 1, L->op_at, "PROTO"))) return rc;
            uint8_t v = c->p[c->pos++];
            if (v < 2 || v > 5) return lfail(L, SL_EUNSUPPORTED, "pickle protocol %u (expected 2)", v);
            break;
        }
        case '.': {   /* STOP */
            if (L->n_marks) return lfail(L, SL_EINVAL, "unbalanced MARK at STOP");
            if (L->sp != 1) return lfail(L, SL_EINVAL, "%zu objects on the stack at STOP (expected 1)", L->sp);
            *root = L->stack[0];
            return 0;
        }
        case '(':
            if (L->n_marks >= PK_MAX_MARKS) return lfail(L, SL_EINVAL, "MARKs nested deeper than %u", PK_MAX_MARKS);
            if (L->n_marks == L->cap_marks) {
                size_t nc = L->cap_marks ? L->cap_marks * 2 : 16;
                size_t *nm = realloc(L->marks, nc * sizeof *nm);
                if (!nm) return oom(L);
                L->marks = nm;
                L->cap_marks = nc;
            }
            L->marks[L->n_marks++] = L->sp;
            break;
        case '}': case ']': case 0x8f: case ')': {
            sl_pkv *v;
            rc = mk(L, op == '}' ? SL_PK_DICT : op == ']' ? SL_PK_LIST : op == 0x8f ? SL_PK_SET : SL_PK_TUPLE, &v);
            if (!rc) rc = push(L, v);
            break;
        }
        case 't': {
            size_t f = 0;
            sl_pkv *v;
            if (!(rc = pop_mark(L, &f)) && !(rc = make_seq(L, SL_PK_TUPLE, L->sp > f ? L->stack + f : NULL, L->sp - f, &v))) {
                L->sp = f;
                rc = push(L, v);
            }
            break;
        }
        case 0x85: case 0x86: case 0x87: {
            size_t k = (size_t)(op - 0x84);
            sl_pkv *v;
            if (L->sp < floor_sp(L) + k) return lfail(L, SL_EINVAL, "stack underflow");
            if (!(rc = make_seq(L, SL_PK_TUPLE, L->stack + L->sp - k, k, &v))) {
                L->sp -= k;
                rc = push(L, v);
            }
            break;
        }
        case 'u': case 'e': {
            size_t f = 0;
            if (!(rc = pop_mark(L, &f))) rc = extend_below(L, f, op == 'u');
            break;
        }
        case 's': case 'a': {
            size_t k = op == 's' ? 2 : 1;
            if (L->sp < floor_sp(L) + k) return lfail(L, SL_EINVAL, "stack underflow");
            rc = extend_below(L, L->sp - k, op == 's');
            break;
        }
        case 'X': case 'U': {
            const uint8_t *s = NULL;
            uint64_t n = 0;
            if (!(rc = rd_counted(c, op == 'X' ? 4 : 1, L->op_at, sl_pk_opcode_name(op), &s, &n)))
                rc = new_str(L, s, (size_t)n, op == 'U');
            break;
        }
        case 'J':
            if (!(rc = need(c, 4, L->op_at, "BININT"))) {
                rc = new_int(L, (int32_t)(uint32_t)rd_le(c->p + c->pos, 4));
                c->pos += 4;
            }
            break;
        case 'K':
            if (!(rc = need(c, 1, L->op_at, "BININT1"))) rc = new_int(L, c->p[c->pos++]);
            break;
        case 'M':
            if (!(rc = need(c, 2, L->op_at, "BININT2"))) {
                rc = new_int(L, (int64_t)rd_le(c->p + c->pos, 2));
                c->pos += 2;
            }
            break;
        case 0x8a: {
            if ((rc = need(c, 1, L->op_at, "LONG1"))) break;
            uint8_t n = c->p[c->pos++];
            if (n > 8) return lfail(L, SL_EUNSUPPORTED, "integer of %u bytes does not fit 64 bits", n);
            if ((rc = need(c, n, L->op_at, "LONG1"))) break;
            uint64_t v = n ? rd_le(c->p + c->pos, n) : 0;
            if (n && n < 8 && (c->p[c->pos + n - 1] & 0x80)) v |= ~0ull << (8 * n);   /* sign-extend */
            c->pos += n;
            rc = new_int(L, (int64_t)v);
            break;
        }
        case 'G': {
            if ((rc = need(c, 8, L->op_at, "BINFLOAT"))) break;
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++) bits = bits << 8 | c->p[c->pos + (size_t)i];
            c->pos += 8;
            sl_pkv *v;
            if (!(rc = mk(L, SL_PK_FLOAT, &v))) {
                memcpy(&v->u.f, &bits, 8);
                rc = push(L, v);
            }
            break;
        }
        case 'N': case 0x88: case 0x89: {
            sl_pkv *v;
            if (!(rc = mk(L, op == 'N' ? SL_PK_NONE : SL_PK_BOOL, &v))) {
                v->u.b = op == 0x88;
                rc = push(L, v);
            }
            break;
        }
        case 'q': case 'r': {
            int nb = op == 'q' ? 1 : 4;
            sl_pkv *t = NULL;
            if ((rc = need(c, (size_t)nb, L->op_at, sl_pk_opcode_name(op)))) break;
            uint64_t idx = rd_le(c->p + c->pos, nb);
            c->pos += (size_t)nb;
            if (!(rc = top(L, &t))) rc = memo_set(L, idx, t);
            break;
        }
        case 'h': case 'j': {
            int nb = op == 'h' ? 1 : 4;
            if ((rc = need(c, (size_t)nb, L->op_at, sl_pk_opcode_name(op)))) break;
            uint64_t idx = rd_le(c->p + c->pos, nb);
            c->pos += (size_t)nb;
            rc = memo_get(L, idx);
            break;
        }
        case 'c': rc = op_global(L); break;
        case 'R': rc = op_reduce(L); break;
        case 'Q': rc = op_persid(L); break;
        case 'b': rc = op_build(L); break;
        default:
            if (k_ops[op].name)
                return sl_errorf(c->err, SL_EUNSAFE, "%s: byte %zu: opcode %s (0x%02x) is not allowed", c->where,
                                 L->op_at, k_ops[op].name, op);
            return sl_errorf(c->err, SL_EINVAL, "%s: byte %zu: unknown opcode 0x%02x", c->where, L->op_at, op);
        }
        if (rc) return rc;
    }
}

int sl_pk_load(const uint8_t *data, size_t len, const char *where, sl_pk_doc **doc, sl_pkv **root, size_t *consumed,
               sl_error *err) {
    *doc = NULL;
    *root = NULL;
    loader L;
    memset(&L, 0, sizeof L);
    L.c = (cursor){.p = data, .len = len, .pos = 0, .where = where, .err = err};
    L.doc = calloc(1, sizeof *L.doc);
    if (!L.doc) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", where);
    int rc = run(&L, root);
    free(L.stack);
    free(L.marks);
    free(L.memo);
    if (rc) {
        sl_pk_free(L.doc);
        *root = NULL;
        return rc;
    }
    *doc = L.doc;
    if (consumed) *consumed = L.c.pos;
    return 0;
}

/* ------------------------------------------------------------------ */
/* the scanner                                                          */

typedef struct strref { const uint8_t *s; size_t n; } strref;

typedef struct scanner {
    strref last[2];        /* the two most recent string pushes (for STACK_GLOBAL) */
    strref *memo;          /* memo index -> string (n == SIZE_MAX: not a string) */
    size_t cap_memo, n_memo;
} scanner;

static void sc_push_str(scanner *S, const uint8_t *s, size_t n) {
    S->last[0] = S->last[1];
    S->last[1] = (strref){s, n};
}

static void sc_memo(scanner *S, uint64_t idx, strref v) {
    if (idx >= PK_MAX_MEMO) return;
    if (idx >= S->cap_memo) {
        size_t nc = S->cap_memo ? S->cap_memo : 64;
        while (nc <= idx) nc *= 2;
        strref *nm = realloc(S->memo, nc * sizeof *nm);
        if (!nm) return;
        for (size_t i = S->cap_memo; i < nc; i++) nm[i] = (strref){NULL, 0};
        S->memo = nm;
        S->cap_memo = nc;
    }
    S->memo[idx] = v;
    if (idx + 1 > S->n_memo) S->n_memo = idx + 1;
}

static void fmt_name(char *dst, size_t cap, const uint8_t *s, size_t n) {
    size_t j = 0;
    if (!s) { snprintf(dst, cap, "?"); return; }
    for (size_t i = 0; i < n && j + 1 < cap; i++) dst[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    dst[j] = 0;
}

int sl_pk_scan(const uint8_t *data, size_t len, const char *where, sl_pk_import_cb cb, void *ud, size_t *consumed,
               sl_error *err) {
    cursor C = {.p = data, .len = len, .pos = 0, .where = where, .err = err};
    cursor *c = &C;
    scanner S;
    memset(&S, 0, sizeof S);
    int rc = 0;
    bool last_was_str = false;
    for (;;) {
        if (c->pos >= c->len) { rc = fail(c, SL_EINVAL, c->pos, "pickle ends without STOP"); break; }
        size_t at = c->pos;
        uint8_t op = c->p[c->pos++];
        const opinfo *oi = &k_ops[op];
        if (!oi->name) { rc = fail(c, SL_EINVAL, at, "unknown opcode 0x%02x", op); break; }
        bool was_str = last_was_str;
        strref prev = S.last[1];
        last_was_str = false;
        const char *s1 = NULL, *s2 = NULL;
        size_t n1 = 0, n2 = 0;
        const uint8_t *b = NULL;
        uint64_t n = 0;
        switch (oi->arg) {
        case A_NONE: break;
        case A_U1: case A_U2: case A_I4: case A_U4: case A_U8: case A_F8: {
            static const uint8_t sz[] = {[A_U1] = 1, [A_U2] = 2, [A_I4] = 4, [A_U4] = 4, [A_U8] = 8, [A_F8] = 8};
            if ((rc = need(c, sz[oi->arg], at, oi->name))) break;
            uint64_t v = rd_le(c->p + c->pos, sz[oi->arg]);
            c->pos += sz[oi->arg];
            if (op == 'q' || op == 'r') { if (was_str) sc_memo(&S, v, prev); else sc_memo(&S, v, (strref){NULL, 0}); }
            if ((op == 'h' || op == 'j') && v < S.cap_memo && S.memo[v].s) {
                sc_push_str(&S, S.memo[v].s, S.memo[v].n);
                last_was_str = true;
            }
            break;
        }
        case A_LINE:
            if ((rc = rd_line(c, at, oi->name, &s1, &n1))) break;
            if (op == 'V' || op == 'S') { sc_push_str(&S, (const uint8_t *)s1, n1); last_was_str = true; }
            break;
        case A_LINE2:
            if ((rc = rd_line(c, at, oi->name, &s1, &n1)) || (rc = rd_line(c, at, oi->name, &s2, &n2))) break;
            {
                char m[PK_MAX_LINE + 1], nm[PK_MAX_LINE + 1];
                fmt_name(m, sizeof m, (const uint8_t *)s1, n1);
                fmt_name(nm, sizeof nm, (const uint8_t *)s2, n2);
                rc = cb(ud, m, nm, oi->name, at);
            }
            break;
        case A_LEN1: case A_LEN4: case A_LEN8: case A_LONG1: case A_LONG4: {
            int lb = (oi->arg == A_LEN1 || oi->arg == A_LONG1) ? 1 : (oi->arg == A_LEN8) ? 8 : 4;
            if ((rc = rd_counted(c, lb, at, oi->name, &b, &n))) break;
            if (op == 'X' || op == 0x8c || op == 0x8d || op == 'U' || op == 'T') {
                sc_push_str(&S, b, (size_t)n);
                last_was_str = true;
            }
            break;
        }
        }
        if (rc) break;
        if (op == 0x94) {   /* MEMOIZE */
            sc_memo(&S, S.n_memo, was_str ? prev : (strref){NULL, 0});
            last_was_str = was_str;
        }
        if (op == 0x95) last_was_str = was_str;   /* FRAME is transparent */
        if (op == 0x93) {
            char m[PK_MAX_LINE + 1], nm[PK_MAX_LINE + 1];
            fmt_name(m, sizeof m, S.last[0].s, S.last[0].n < PK_MAX_LINE ? S.last[0].n : PK_MAX_LINE);
            fmt_name(nm, sizeof nm, S.last[1].s, S.last[1].n < PK_MAX_LINE ? S.last[1].n : PK_MAX_LINE);
            rc = cb(ud, m, nm, oi->name, at);
            if (rc) break;
        }
        if (op == '.') break;
    }
    free(S.memo);
    if (!rc && consumed) *consumed = c->pos;
    return rc;
}
