/*
 * gguf.c — GGUF v2/v3 reader: header parse and validation, the typed
 * metadata API of silica/gguf.h, and sl_gguf_read() (tensors as views).
 *
 * Layout (all little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 * n_kv x {string key, i32 type, value}, n_tensors x {string name, u32 n_dims,
 * i64 ne[n_dims], i32 ggml_type, u64 offset}, zero padding to `alignment`,
 * tensor data.  A string is u64 length + bytes (no NUL).
 *
 * Invariants:
 *  - Every read goes through the cursor (need()), which checks the remaining
 *    length before touching a byte; counts and lengths are checked against the
 *    bytes left BEFORE anything is allocated, so a tiny file cannot make us
 *    allocate much (tables are at most proportional to the file size).
 *  - Nested arrays are walked recursively with a depth limit.
 *  - After parse, values are trusted (validated once) and decoded without
 *    further checks; tensor ranges are aligned, in bounds and disjoint.
 */
#include "silica/gguf.h"
#include "formats/formats_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf_impl.h"

#define MAX_NEST 8

/* ---- type tables ---- */

static const char *const k_type_names[SL_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64"};

const char *sl_gguf_type_name(sl_gguf_type t) {
    return ((unsigned)t < SL_GGUF_TYPE_COUNT) ? k_type_names[t] : "?";
}

int sl_gguf_type_from_name(const char *name) {
    for (int t = 0; name && t < SL_GGUF_TYPE_COUNT; t++)
        if (strcmp(k_type_names[t], name) == 0) return t;
    return -1;
}

/* size of a fixed-size scalar, 0 for string/array */
uint32_t sl_gguf__scalar_size(sl_gguf_type t) {
    switch (t) {
    case SL_GGUF_UINT8: case SL_GGUF_INT8: case SL_GGUF_BOOL: return 1;
    case SL_GGUF_UINT16: case SL_GGUF_INT16: return 2;
    case SL_GGUF_UINT32: case SL_GGUF_INT32: case SL_GGUF_FLOAT32: return 4;
    case SL_GGUF_UINT64: case SL_GGUF_INT64: case SL_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

typedef struct ggml_type_row {
    const char *name;
    sl_dtype dtype;   /* SL_DTYPE_INVALID: known to ggml, not to silica */
} ggml_type_row;

static const ggml_type_row k_ggml[] = {
    [0] = {"F32", SL_F32}, [1] = {"F16", SL_F16}, [2] = {"Q4_0", SL_Q4_0}, [3] = {"Q4_1", SL_Q4_1},
    [4] = {"Q4_2(removed)", SL_DTYPE_INVALID}, [5] = {"Q4_3(removed)", SL_DTYPE_INVALID},
    [6] = {"Q5_0", SL_Q5_0}, [7] = {"Q5_1", SL_Q5_1}, [8] = {"Q8_0", SL_Q8_0}, [9] = {"Q8_1", SL_Q8_1},
    [10] = {"Q2_K", SL_Q2_K}, [11] = {"Q3_K", SL_Q3_K}, [12] = {"Q4_K", SL_Q4_K}, [13] = {"Q5_K", SL_Q5_K},
    [14] = {"Q6_K", SL_Q6_K}, [15] = {"Q8_K", SL_Q8_K}, [16] = {"IQ2_XXS", SL_IQ2_XXS},
    [17] = {"IQ2_XS", SL_IQ2_XS}, [18] = {"IQ3_XXS", SL_IQ3_XXS}, [19] = {"IQ1_S", SL_IQ1_S},
    [20] = {"IQ4_NL", SL_IQ4_NL}, [21] = {"IQ3_S", SL_IQ3_S}, [22] = {"IQ2_S", SL_IQ2_S},
    [23] = {"IQ4_XS", SL_IQ4_XS}, [24] = {"I8", SL_I8}, [25] = {"I16", SL_I16}, [26] = {"I32", SL_I32},
    [27] = {"I64", SL_I64}, [28] = {"F64", SL_F64}, [29] = {"IQ1_M", SL_IQ1_M}, [30] = {"BF16", SL_BF16},
    [31] = {"Q4_0_4_4(removed)", SL_DTYPE_INVALID}, [32] = {"Q4_0_4_8(removed)", SL_DTYPE_INVALID},
    [33] = {"Q4_0_8_8(removed)", SL_DTYPE_INVALID}, [34] = {"TQ1_0", SL_TQ1_0}, [35] = {"TQ2_0", SL_TQ2_0},
    [36] = {"IQ4_NL_4_4(removed)", SL_DTYPE_INVALID}, [37] = {"IQ4_NL_4_8(removed)", SL_DTYPE_INVALID},
    [38] = {"IQ4_NL_8_8(removed)", SL_DTYPE_INVALID}, [39] = {"MXFP4", SL_MXFP4},
    [40] = {"NVFP4", SL_DTYPE_INVALID}, [41] = {"Q1_0", SL_DTYPE_INVALID}, [42] = {"Q2_0", SL_DTYPE_INVALID},
};
#define N_GGML (sizeof k_ggml / sizeof k_ggml[0])

sl_dtype sl_gguf_dtype_from_ggml(uint32_t id) { return id < N_GGML ? k_ggml[id].dtype : SL_DTYPE_INVALID; }
const char *sl_gguf_ggml_type_name(uint32_t id) { return id < N_GGML ? k_ggml[id].name : NULL; }
int sl_gguf_ggml_from_dtype(sl_dtype t) {
    if (t == SL_DTYPE_INVALID) return -1;
    for (uint32_t i = 0; i < N_GGML; i++)
        if (k_ggml[i].dtype == t) return (int)i;
    return -1;
}

/* ---- little-endian loads (unaligned) ---- */
static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* ---- the parse ---- */

typedef struct gg_kv {
    char *key;
    sl_gguf_value v;
    uint64_t *index;    /* string arrays: element offsets from v.data */
} gg_kv;

struct sl_gguf {
    char *name;
    sl_mapping *map;            /* owned when opened by path */
    const uint8_t *data;
    uint64_t size;
    uint32_t version, alignment;
    uint64_t data_offset;
    size_t n_kv, n_tensors;
    gg_kv *kv;
    sl_gguf_tensor_info *ti;
};

typedef struct cursor {
    const uint8_t *p;
    uint64_t pos, size;
    const char *name;
    sl_error *err;
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

static int need(cursor *c, uint64_t n, const char *what, const char *ctx) {
    if (n <= left(c)) return 0;
    return sl_errorf(c->err, SL_EINVAL, "%s: %s%s%s truncated: needs %llu bytes at offset %llu, only %llu left",
                     c->name, ctx, *ctx ? ": " : "", what, (unsigned long long)n, (unsigned long long)c->pos,
                     (unsigned long long)left(c));
}

static int rd32(cursor *c, uint32_t *v, const char *what, const char *ctx) {
    int rc = need(c, 4, what, ctx);
    if (rc) return rc;
    *v = ld32(c->p + c->pos);
    c->pos += 4;
    return 0;
}

static int rd64(cursor *c, uint64_t *v, const char *what, const char *ctx) {
    int rc = need(c, 8, what, ctx);
    if (rc) return rc;
    *v = ld64(c->p + c->pos);
    c->pos += 8;
    return 0;
}

/* a string: returns a view (s, len) and advances */
static int rd_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what, const char *ctx) {
    int rc = rd64(c, len, what, ctx);
    if (rc) return rc;
    if (*len > left(c))
        return sl_errorf(c->err, SL_EINVAL, "%s: %s%s%s length %llu runs past the end of the file (%llu bytes left)",
                         c->name, ctx, *ctx ? ": " : "", what, (unsigned long long)*len,
                         (unsigned long long)left(c));
    *s = c->p + c->pos;
    c->pos += *len;
    return 0;
}

/* validate one value of type t at the cursor and advance past it */
static int skip_value(cursor *c, uint32_t t, int depth, const char *ctx) {
    if (t >= SL_GGUF_TYPE_COUNT)
        return sl_errorf(c->err, SL_EINVAL, "%s: %s: unknown value type %u (expected 0..12)", c->name, ctx, t);
    uint32_t sz = sl_gguf__scalar_size((sl_gguf_type)t);
    if (sz) {
        int rc = need(c, sz, "value", ctx);
        if (rc) return rc;
        if (t == SL_GGUF_BOOL && c->p[c->pos] > 1)
            return sl_errorf(c->err, SL_EINVAL, "%s: %s: bool value %u at offset %llu is not 0 or 1", c->name, ctx,
                             c->p[c->pos], (unsigned long long)c->pos);
        c->pos += sz;
        return 0;
    }
    if (t == SL_GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        return rd_str(c, &s, &len, "string", ctx);
    }
    /* array */
    if (depth >= MAX_NEST)
        return sl_errorf(c->err, SL_EINVAL, "%s: %s: arrays nested deeper than %d levels", c->name, ctx, MAX_NEST);
    uint32_t et;
    uint64_t n;
    int rc = rd32(c, &et, "array element type", ctx);
    if (!rc) rc = rd64(c, &n, "array length", ctx);
    if (rc) return rc;
    if (et >= SL_GGUF_TYPE_COUNT)
        return sl_errorf(c->err, SL_EINVAL, "%s: %s: unknown array element type %u (expected 0..12)", c->name, ctx, et);
    uint32_t esz = sl_gguf__scalar_size((sl_gguf_type)et);
    uint64_t min = esz ? esz : (et == SL_GGUF_STRING ? 8 : 12), total;
    if (!sl_mul_u64(n, min, &total) || total > left(c))
        return sl_errorf(c->err, SL_EINVAL, "%s: %s: array of %llu %s elements cannot fit in the %llu bytes left",
                         c->name, ctx, (unsigned long long)n, k_type_names[et], (unsigned long long)left(c));
    if (esz && et != SL_GGUF_BOOL) {
        c->pos += total;
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        rc = skip_value(c, et, depth + 1, ctx);
        if (rc) return rc;
    }
    return 0;
}

/* fill a value view for type t starting at p (already validated) */
static void view_value(const uint8_t *p, sl_gguf_type t, const uint8_t *end, sl_gguf_value *v) {
    memset(v, 0, sizeof *v);
    v->type = t;
    uint32_t sz = sl_gguf__scalar_size(t);
    if (sz) {
        v->len = 1;
        v->data = p;
        v->nbytes = sz;
    } else if (t == SL_GGUF_STRING) {
        v->len = ld64(p);
        v->data = p + 8;
        v->nbytes = v->len;
    } else {
        v->elem_type = (sl_gguf_type)ld32(p);
        v->len = ld64(p + 4);
        v->data = p + 12;
        v->nbytes = (uint64_t)(end - v->data);
    }
}

/* bytes an already-validated encoded element of type t at p occupies */
static uint64_t elem_size(const uint8_t *p, sl_gguf_type t) {
    uint32_t sz = sl_gguf__scalar_size(t);
    if (sz) return sz;
    if (t == SL_GGUF_STRING) return 8 + ld64(p);
    sl_gguf_type et = (sl_gguf_type)ld32(p);
    uint64_t n = ld64(p + 4), off = 12;
    uint32_t esz = sl_gguf__scalar_size(et);
    if (esz) return off + n * esz;
    for (uint64_t i = 0; i < n; i++) off += elem_size(p + off, et);
    return off;
}

static int dup_name(cursor *c, const uint8_t *s, uint64_t len, char **out, const char *what, const char *ctx) {
    if (len == 0) return sl_errorf(c->err, SL_EINVAL, "%s: %s: empty %s", c->name, ctx, what);
    if (memchr(s, 0, (size_t)len))
        return sl_errorf(c->err, SL_EINVAL, "%s: %s: %s contains a NUL byte", c->name, ctx, what);
    *out = malloc((size_t)len + 1);
    if (!*out) return sl_errorf(c->err, SL_ENOMEM, "%s: out of memory", c->name);
    memcpy(*out, s, (size_t)len);
    (*out)[len] = 0;
    return 0;
}

/* string-keyed open-addressing set used only to detect duplicates at parse time */
static int check_unique(cursor *c, char **names, size_t n, const char *what) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    size_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return sl_errorf(c->err, SL_ENOMEM, "%s: out of memory", c->name);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t h = 1469598103934665603ull;
        for (const char *s = names[i]; *s; s++) { h ^= (uint8_t)*s; h *= 1099511628211ull; }
        size_t k = (size_t)h & (cap - 1);
        while (slot[k] && !rc) {
            if (strcmp(names[slot[k] - 1], names[i]) == 0)
                rc = sl_errorf(c->err, SL_EINVAL, "%s: duplicate %s '%s'", c->name, what, names[i]);
            k = (k + 1) & (cap - 1);
        }
        slot[k] = i + 1;
    }
    free(slot);
    return rc;
}

static int parse_kv(cursor *c, sl_gguf *g) {
    char ctx[96];
    for (size_t i = 0; i < g->n_kv; i++) {
        gg_kv *kv = &g->kv[i];
        snprintf(ctx, sizeof ctx, "KV #%zu", i);
        const uint8_t *s = NULL;
        uint64_t len = 0;
        uint32_t t;
        int rc = rd_str(c, &s, &len, "key", ctx);
        if (!rc) rc = dup_name(c, s, len, &kv->key, "key", ctx);
        if (rc) return rc;
        snprintf(ctx, sizeof ctx, "key '%.60s'", kv->key);
        if ((rc = rd32(c, &t, "value type", ctx))) return rc;
        const uint8_t *start = c->p + c->pos;
        if ((rc = skip_value(c, t, 0, ctx))) return rc;
        view_value(start, (sl_gguf_type)t, c->p + c->pos, &kv->v);
        if (t == SL_GGUF_ARRAY && kv->v.elem_type == SL_GGUF_STRING && kv->v.len) {
            /* len <= bytes/8 was checked, so the table is bounded by the file size */
            kv->index = malloc((size_t)kv->v.len * sizeof *kv->index);
            if (!kv->index) return sl_errorf(c->err, SL_ENOMEM, "%s: out of memory", c->name);
            uint64_t off = 0;
            for (uint64_t k = 0; k < kv->v.len; k++) {
                kv->index[k] = off;
                off += 8 + ld64(kv->v.data + off);
            }
            kv->v.index = kv->index;
        }
    }
    char **keys = malloc((g->n_kv ? g->n_kv : 1) * sizeof *keys);
    if (!keys) return sl_errorf(c->err, SL_ENOMEM, "%s: out of memory", c->name);
    for (size_t i = 0; i < g->n_kv; i++) keys[i] = g->kv[i].key;
    int rc = check_unique(c, keys, g->n_kv, "key");
    free(keys);
    return rc;
}

static int parse_alignment(cursor *c, sl_gguf *g) {
    g->alignment = SL_GGUF_DEFAULT_ALIGNMENT;
    long i = sl_gguf_find(g, "general.alignment");
    if (i < 0) return 0;
    const sl_gguf_value *v = &g->kv[i].v;
    if (v->type != SL_GGUF_UINT32)
        return sl_errorf(c->err, SL_EINVAL, "%s: key 'general.alignment': type %s, expected uint32", c->name,
                         sl_gguf_type_name(v->type));
    uint32_t a = ld32(v->data);
    if (a == 0 || (a & (a - 1)))
        return sl_errorf(c->err, SL_EINVAL, "%s: key 'general.alignment': %u is not a power of two", c->name, a);
    g->alignment = a;
    return 0;
}

static int parse_tensor_infos(cursor *c, sl_gguf *g) {
    char ctx[96];
    for (size_t i = 0; i < g->n_tensors; i++) {
        sl_gguf_tensor_info *ti = &g->ti[i];
        snprintf(ctx, sizeof ctx, "tensor info #%zu", i);
        const uint8_t *s;
        uint64_t len;
        int rc = rd_str(c, &s, &len, "name", ctx);
        if (!rc) rc = dup_name(c, s, len, (char **)&ti->name, "tensor name", ctx);
        if (rc) return rc;
        snprintf(ctx, sizeof ctx, "tensor '%.60s'", ti->name);
        if ((rc = rd32(c, &ti->n_dims, "n_dims", ctx))) return rc;
        if (ti->n_dims > SL_GGUF_MAX_DIMS)
            return sl_errorf(c->err, SL_EINVAL, "%s: %s: n_dims %u exceeds %d", c->name, ctx, ti->n_dims,
                             SL_GGUF_MAX_DIMS);
        uint64_t numel = 1;
        for (int d = 0; d < SL_GGUF_MAX_DIMS; d++) ti->ne[d] = 1;
        for (uint32_t d = 0; d < ti->n_dims; d++) {
            uint64_t ne;
            if ((rc = rd64(c, &ne, "dimension", ctx))) return rc;
            if (ne > (uint64_t)INT64_MAX)
                return sl_errorf(c->err, SL_EINVAL, "%s: %s: dimension ne[%u] is negative (%lld)", c->name, ctx, d,
                                 (long long)ne);
            ti->ne[d] = (int64_t)ne;
            if (!sl_mul_u64(numel, ne, &numel) || numel > (uint64_t)INT64_MAX)
                return sl_errorf(c->err, SL_EINVAL, "%s: %s: element count overflows 64 bits", c->name, ctx);
        }
        uint32_t type;
        if ((rc = rd32(c, &type, "ggml type", ctx)) || (rc = rd64(c, &ti->offset, "data offset", ctx))) return rc;
        ti->ggml_type = type;
        ti->dtype = sl_gguf_dtype_from_ggml(type);
        if (ti->dtype == SL_DTYPE_INVALID) {
            const char *nm = sl_gguf_ggml_type_name(type);
            if (nm)
                return sl_errorf(c->err, SL_EUNSUPPORTED, "%s: %s: ggml type %u (%s) is not supported", c->name, ctx,
                                 type, nm);
            return sl_errorf(c->err, SL_EINVAL, "%s: %s: unknown ggml type %u", c->name, ctx, type);
        }
        const sl_dtype_info *in = sl_dtype_get(ti->dtype);
        if ((uint64_t)ti->ne[0] % in->block_elems)
            return sl_errorf(c->err, SL_EINVAL, "%s: %s: ne[0]=%lld is not a multiple of the %s block size %u",
                             c->name, ctx, (long long)ti->ne[0], in->name, in->block_elems);
        if (!sl_dtype_nbytes(ti->dtype, numel, &ti->nbytes))
            return sl_errorf(c->err, SL_EINVAL, "%s: %s: byte size overflows 64 bits", c->name, ctx);
    }
    char **names = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *names);
    if (!names) return sl_errorf(c->err, SL_ENOMEM, "%s: out of memory", c->name);
    for (size_t i = 0; i < g->n_tensors; i++) names[i] = (char *)g->ti[i].name;
    int rc = check_unique(c, names, g->n_tensors, "tensor name");
    free(names);
    return rc;
}

typedef struct span {
    uint64_t off, len;
    size_t i;
} span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* offsets aligned, ranges inside the file, no two ranges overlapping */
static int check_ranges(cursor *c, sl_gguf *g) {
    uint64_t pad = g->alignment - 1, off;
    if (!sl_add_u64(c->pos, pad, &off))
        return sl_errorf(c->err, SL_EINVAL, "%s: data offset overflows", c->name);
    g->data_offset = off / g->alignment * g->alignment;
    if (g->n_tensors == 0) return 0;
    if (g->data_offset > c->size)
        return sl_errorf(c->err, SL_EINVAL, "%s: tensor data section starts at %llu, past the end of the file (%llu bytes)",
                         c->name, (unsigned long long)g->data_offset, (unsigned long long)c->size);
    uint64_t room = c->size - g->data_offset;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor_info *ti = &g->ti[i];
        uint64_t end;
        if (ti->offset % g->alignment)
            return sl_errorf(c->err, SL_EINVAL, "%s: tensor '%s': data offset %llu is not a multiple of the alignment %u",
                             c->name, ti->name, (unsigned long long)ti->offset, g->alignment);
        if (!sl_add_u64(ti->offset, ti->nbytes, &end) || end > room)
            return sl_errorf(c->err, SL_EINVAL,
                             "%s: tensor '%s': data [%llu, +%llu) lies outside the %llu-byte data section", c->name,
                             ti->name, (unsigned long long)ti->offset, (unsigned long long)ti->nbytes,
                             (unsigned long long)room);
    }
    /* non-empty ranges sorted by start: each must end before the next begins */
    span *sp = malloc(g->n_tensors * sizeof *sp);
    if (!sp) return sl_errorf(c->err, SL_ENOMEM, "%s: out of memory", c->name);
    size_t n = 0;
    for (size_t i = 0; i < g->n_tensors; i++)
        if (g->ti[i].nbytes) sp[n++] = (span){g->ti[i].offset, g->ti[i].nbytes, i};
    qsort(sp, n, sizeof *sp, cmp_span);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (sp[i - 1].off + sp[i - 1].len > sp[i].off)
            rc = sl_errorf(c->err, SL_EINVAL, "%s: tensors '%s' and '%s' overlap in the data section", c->name,
                           g->ti[sp[i - 1].i].name, g->ti[sp[i].i].name);
    free(sp);
    return rc;
}

int sl_gguf_parse(const uint8_t *data, uint64_t size, const char *name, sl_gguf **out, sl_error *err) {
    *out = NULL;
    cursor c = {data, 0, size, name, err};
    if (size < 4 || memcmp(data, "GGUF", 4) != 0)
        return sl_errorf(err, SL_EINVAL, "%s: bad magic, expected \"GGUF\"", name);
    c.pos = 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    int rc = rd32(&c, &version, "version", "header");
    if (rc) return rc;
    if ((version & 0xffff) == 0 && version)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: big-endian GGUF (version field 0x%08x) is not supported", name,
                         version);
    if (version == 1)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF version 1 is not supported (only versions 2 and 3)", name);
    if (version != 2 && version != 3)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF version %u is not supported (only versions 2 and 3)", name,
                         version);
    if ((rc = rd64(&c, &n_tensors, "n_tensors", "header")) || (rc = rd64(&c, &n_kv, "n_kv", "header"))) return rc;
    /* smallest KV: key len 1 (9 B) + type (4) + 1-byte value; smallest tensor info: name (9) + n_dims + type + offset */
    if (n_kv > left(&c) / 14)
        return sl_errorf(err, SL_EINVAL, "%s: n_kv %llu is impossible in a %llu-byte file", name,
                         (unsigned long long)n_kv, (unsigned long long)size);
    if (n_tensors > left(&c) / 25)
        return sl_errorf(err, SL_EINVAL, "%s: n_tensors %llu is impossible in a %llu-byte file", name,
                         (unsigned long long)n_tensors, (unsigned long long)size);
    sl_gguf *g = calloc(1, sizeof *g);
    if (!g) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    g->name = strdup(name);
    g->data = data;
    g->size = size;
    g->version = version;
    g->n_kv = (size_t)n_kv;
    g->n_tensors = (size_t)n_tensors;
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->ti = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->ti);
    if (!g->name || !g->kv || !g->ti) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    if (!rc) rc = parse_kv(&c, g);
    if (!rc) rc = parse_alignment(&c, g);
    if (!rc) rc = parse_tensor_infos(&c, g);
    if (!rc) rc = check_ranges(&c, g);
    if (rc) {
        sl_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int sl_gguf_open(const char *path, sl_gguf **out, sl_error *err) {
    sl_mapping *m;
    *out = NULL;
    int rc = sl_map_file(path, &m, err);
    if (rc) return rc;
    rc = sl_gguf_parse(m->data, m->size, path, out, err);
    if (rc) {
        sl_unmap(m);
        return rc;
    }
    (*out)->map = m;
    return 0;
}

int sl_gguf_from_checkpoint(const sl_checkpoint *ck, sl_gguf **out, sl_error *err) {
    *out = NULL;
    if (ck->format != SL_FMT_GGUF || ck->n_files == 0)
        return sl_errorf(err, SL_EINVAL, "%s: not a GGUF checkpoint", ck->path);
    for (size_t i = 0; i < ck->n_maps; i++)
        if (ck->maps[i]->path && strcmp(ck->maps[i]->path, ck->files[0]) == 0)
            return sl_gguf_parse(ck->maps[i]->data, ck->maps[i]->size, ck->files[0], out, err);
    return sl_gguf_open(ck->files[0], out, err);
}

void sl_gguf_close(sl_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].index);
    }
    for (size_t i = 0; i < g->n_tensors; i++) free((char *)g->ti[i].name);
    free(g->kv);
    free(g->ti);
    free(g->name);
    sl_unmap(g->map);
    free(g);
}

uint32_t sl_gguf_version(const sl_gguf *g) { return g->version; }
uint32_t sl_gguf_alignment(const sl_gguf *g) { return g->alignment; }
uint64_t sl_gguf_data_offset(const sl_gguf *g) { return g->data_offset; }
size_t sl_gguf_n_kv(const sl_gguf *g) { return g->n_kv; }
size_t sl_gguf_n_tensors(const sl_gguf *g) { return g->n_tensors; }
const char *sl_gguf_key(const sl_gguf *g, size_t i) { return i < g->n_kv ? g->kv[i].key : NULL; }
const sl_gguf_tensor_info *sl_gguf_tensor(const sl_gguf *g, size_t i) { return i < g->n_tensors ? &g->ti[i] : NULL; }

int sl_gguf_kv_value(const sl_gguf *g, size_t i, sl_gguf_value *out) {
    if (i >= g->n_kv) return SL_EINVAL;
    *out = g->kv[i].v;
    return 0;
}

long sl_gguf_find(const sl_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return (long)i;
    return -1;
}

/* ---- value access ---- */

int sl_gguf_array_get(const sl_gguf_value *arr, uint64_t i, sl_gguf_value *out) {
    if (arr->type != SL_GGUF_ARRAY || i >= arr->len) return SL_EINVAL;
    uint32_t esz = sl_gguf__scalar_size(arr->elem_type);
    const uint8_t *p;
    if (esz) p = arr->data + i * esz;
    else if (arr->index) p = arr->data + arr->index[i];
    else {
        p = arr->data;
        for (uint64_t k = 0; k < i; k++) p += elem_size(p, arr->elem_type);
    }
    const uint8_t *end = p + elem_size(p, arr->elem_type);
    view_value(p, arr->elem_type, end, out);
    return 0;
}

bool sl_gguf_value_i64(const sl_gguf_value *v, int64_t *out) {
    const uint8_t *p = v->data;
    switch (v->type) {
    case SL_GGUF_UINT8: case SL_GGUF_BOOL: *out = p[0]; return true;
    case SL_GGUF_INT8: *out = (int8_t)p[0]; return true;
    case SL_GGUF_UINT16: *out = ld16(p); return true;
    case SL_GGUF_INT16: *out = (int16_t)ld16(p); return true;
    case SL_GGUF_UINT32: *out = ld32(p); return true;
    case SL_GGUF_INT32: *out = (int32_t)ld32(p); return true;
    case SL_GGUF_INT64: *out = (int64_t)ld64(p); return true;
    case SL_GGUF_UINT64: if (ld64(p) > (uint64_t)INT64_MAX) return false; *out = (int64_t)ld64(p); return true;
    default: return false;
    }
}

bool sl_gguf_value_u64(const sl_gguf_value *v, uint64_t *out) {
    if (v->type == SL_GGUF_UINT64) { *out = ld64(v->data); return true; }
    int64_t x;
    if (!sl_gguf_value_i64(v, &x) || x < 0) return false;
    *out = (uint64_t)x;
    return true;
}

bool sl_gguf_value_f64(const sl_gguf_value *v, double *out) {
    if (v->type == SL_GGUF_FLOAT32) {
        uint32_t u = ld32(v->data);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
        return true;
    }
    if (v->type == SL_GGUF_FLOAT64) {
        uint64_t u = ld64(v->data);
        memcpy(out, &u, 8);
        return true;
    }
    if (v->type == SL_GGUF_UINT64) { *out = (double)ld64(v->data); return true; }
    int64_t x;
    if (!sl_gguf_value_i64(v, &x)) return false;
    *out = (double)x;
    return true;
}

static int get_kv(const sl_gguf *g, const char *key, sl_gguf_value *v, sl_error *err) {
    long i = sl_gguf_find(g, key);
    if (i < 0) return sl_errorf(err, SL_EINVAL, "%s: key '%s' missing", g->name, key);
    *v = g->kv[i].v;
    return 0;
}

static int bad_type(const sl_gguf *g, const char *key, const sl_gguf_value *v, const char *want, sl_error *err) {
    return sl_errorf(err, SL_EINVAL, "%s: key '%s': %s value does not fit %s", g->name, key,
                     sl_gguf_type_name(v->type), want);
}

#define INT_GETTER(fn, T, lo, hi, want)                                                                 \
    int fn(const sl_gguf *g, const char *key, T *out, sl_error *err) {                                 \
        sl_gguf_value v = {0};                                                                          \
        int rc = get_kv(g, key, &v, err);                                                               \
        if (rc) return rc;                                                                              \
        int64_t x;                                                                                      \
        if (!sl_gguf_value_i64(&v, &x) || x < (int64_t)(lo) || x > (int64_t)(hi))                       \
            return bad_type(g, key, &v, want, err);                                                     \
        *out = (T)x;                                                                                    \
        return 0;                                                                                       \
    }
INT_GETTER(sl_gguf_get_u32, uint32_t, 0, UINT32_MAX, "uint32")
INT_GETTER(sl_gguf_get_i32, int32_t, INT32_MIN, INT32_MAX, "int32")
INT_GETTER(sl_gguf_get_i64, int64_t, INT64_MIN, INT64_MAX, "int64")

int sl_gguf_get_u64(const sl_gguf *g, const char *key, uint64_t *out, sl_error *err) {
    sl_gguf_value v = {0};
    int rc = get_kv(g, key, &v, err);
    if (rc) return rc;
    return sl_gguf_value_u64(&v, out) ? 0 : bad_type(g, key, &v, "uint64", err);
}

int sl_gguf_get_f64(const sl_gguf *g, const char *key, double *out, sl_error *err) {
    sl_gguf_value v = {0};
    int rc = get_kv(g, key, &v, err);
    if (rc) return rc;
    return sl_gguf_value_f64(&v, out) ? 0 : bad_type(g, key, &v, "a number", err);
}

int sl_gguf_get_f32(const sl_gguf *g, const char *key, float *out, sl_error *err) {
    double d;
    int rc = sl_gguf_get_f64(g, key, &d, err);
    if (!rc) *out = (float)d;
    return rc;
}

int sl_gguf_get_bool(const sl_gguf *g, const char *key, bool *out, sl_error *err) {
    sl_gguf_value v = {0};
    int rc = get_kv(g, key, &v, err);
    if (rc) return rc;
    if (v.type != SL_GGUF_BOOL) return bad_type(g, key, &v, "bool", err);
    *out = v.data[0] != 0;
    return 0;
}

int sl_gguf_get_str(const sl_gguf *g, const char *key, const char **s, size_t *len, sl_error *err) {
    sl_gguf_value v = {0};
    int rc = get_kv(g, key, &v, err);
    if (rc) return rc;
    if (v.type != SL_GGUF_STRING) return bad_type(g, key, &v, "string", err);
    *s = (const char *)v.data;
    *len = (size_t)v.len;
    return 0;
}

int sl_gguf_get_array(const sl_gguf *g, const char *key, sl_gguf_value *out, sl_error *err) {
    int rc = get_kv(g, key, out, err);
    if (rc) return rc;
    return out->type == SL_GGUF_ARRAY ? 0 : bad_type(g, key, out, "array", err);
}

/* ---- JSON views ---- */

static cJSON *str_json(const sl_gguf_value *v) {
    char *s = malloc((size_t)v->len + 1);
    if (!s) return NULL;
    memcpy(s, v->data, (size_t)v->len);
    s[v->len] = 0;
    cJSON *j = cJSON_CreateString(s);
    free(s);
    return j;
}

/* JSON of a scalar or string.  Integers beyond 2^53 stay exact: typed -> decimal string, plain -> cJSON raw
 * number (printed digit for digit).  Typed non-finite floats -> "nan"/"inf"/"-inf" (plain: null). */
static cJSON *scalar_json(const sl_gguf_value *v, bool typed) {
    if (v->type == SL_GGUF_STRING) return str_json(v);
    if (v->type == SL_GGUF_BOOL) return cJSON_CreateBool(v->data[0] != 0);
    char buf[32];
    if (v->type == SL_GGUF_FLOAT32 || v->type == SL_GGUF_FLOAT64) {
        double d;
        sl_gguf_value_f64(v, &d);
        if (typed && !isfinite(d)) return cJSON_CreateString(isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
        return cJSON_CreateNumber(d);
    }
    if (v->type == SL_GGUF_UINT64) {
        uint64_t u = ld64(v->data);
        if (u > (1ull << 53)) {   /* exact: a decimal string (typed) or a raw JSON number (plain) */
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)u);
            return typed ? cJSON_CreateString(buf) : cJSON_CreateRaw(buf);
        }
        return cJSON_CreateNumber((double)u);
    }
    int64_t x;
    sl_gguf_value_i64(v, &x);
    if (x > (1ll << 53) || x < -(1ll << 53)) {
        snprintf(buf, sizeof buf, "%lld", (long long)x);
        return typed ? cJSON_CreateString(buf) : cJSON_CreateRaw(buf);
    }
    return cJSON_CreateNumber((double)x);
}

static cJSON *value_json(const sl_gguf_value *v, bool typed, bool wrap);

static cJSON *array_json(const sl_gguf_value *v, bool typed) {
    cJSON *a = cJSON_CreateArray();
    if (!a) return NULL;
    const uint8_t *p = v->data;
    for (uint64_t i = 0; i < v->len; i++) {
        sl_gguf_value e;
        uint64_t n = elem_size(p, v->elem_type);
        view_value(p, v->elem_type, p + n, &e);
        p += n;
        /* in the typed form, nested arrays are typed objects so inner element types survive */
        cJSON *j = value_json(&e, typed, typed && e.type == SL_GGUF_ARRAY);
        if (!j) { cJSON_Delete(a); return NULL; }
        cJSON_AddItemToArray(a, j);
    }
    return a;
}

static cJSON *value_json(const sl_gguf_value *v, bool typed, bool wrap) {
    cJSON *j = v->type == SL_GGUF_ARRAY ? array_json(v, typed) : scalar_json(v, typed);
    if (!j || !wrap) return j;
    cJSON *o = cJSON_CreateObject();
    if (!o) { cJSON_Delete(j); return NULL; }
    cJSON_AddStringToObject(o, "type", sl_gguf_type_name(v->type));
    if (v->type == SL_GGUF_ARRAY) cJSON_AddStringToObject(o, "elem_type", sl_gguf_type_name(v->elem_type));
    cJSON_AddItemToObject(o, "value", j);
    return o;
}

cJSON *sl_gguf_metadata_json(const sl_gguf *g, bool typed) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < g->n_kv; i++) {
        cJSON *j = value_json(&g->kv[i].v, typed, typed);
        if (!j) { cJSON_Delete(o); return NULL; }
        cJSON_AddItemToObject(o, g->kv[i].key, j);
    }
    return o;
}

int sl_gguf_checkpoint_metadata(const sl_checkpoint *ck, cJSON **typed, sl_error *err) {
    sl_gguf *g;
    *typed = NULL;
    int rc = sl_gguf_from_checkpoint(ck, &g, err);
    if (rc) return rc;
    *typed = sl_gguf_metadata_json(g, true);
    sl_gguf_close(g);
    return *typed ? 0 : sl_errorf(err, SL_ENOMEM, "%s: out of memory", ck->path);
}

/* ---- the checkpoint reader ---- */

int sl_gguf_read(sl_checkpoint *ck, const char *path, sl_error *err) {
    sl_mapping *m;
    int rc = sl_map_file(path, &m, err);
    if (rc) return rc;
    if ((rc = sl_checkpoint_add_map(ck, m, err))) return rc;   /* the checkpoint owns m now */
    uint32_t file;
    if ((rc = sl_checkpoint_add_file(ck, path, &file, err))) return rc;
    sl_gguf *g;
    if ((rc = sl_gguf_parse(m->data, m->size, path, &g, err))) return rc;
    for (size_t i = 0; i < g->n_tensors && !rc; i++) {
        const sl_gguf_tensor_info *ti = &g->ti[i];
        sl_tensor t;
        memset(&t, 0, sizeof t);
        t.name = (char *)ti->name;
        t.dtype = ti->dtype;
        t.ndim = (int)ti->n_dims;
        for (uint32_t d = 0; d < ti->n_dims; d++) t.shape[d] = ti->ne[ti->n_dims - 1 - d];   /* row-major */
        t.contiguous = true;
        t.offset = g->data_offset + ti->offset;
        t.data = m->data + t.offset;
        t.file = file;
        rc = sl_checkpoint_add_tensor(ck, &t, err);
    }
    for (size_t i = 0; i < g->n_kv && !rc; i++) {
        if (cJSON_GetObjectItemCaseSensitive(ck->metadata, g->kv[i].key)) continue;   /* shards: first wins */
        cJSON *j = value_json(&g->kv[i].v, false, false);
        if (!j) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", path);
        else cJSON_AddItemToObject(ck->metadata, g->kv[i].key, j);
    }
    sl_gguf_close(g);
    return rc;
}
