/*
 * gguf_write.c — the GGUF v3 writer (sl_gguf_writer_ops): header, KV
 * metadata from the writer's JSON (plain or typed values, the rule in
 * silica/gguf.h), tensor infos, alignment padding, streamed tensor bytes.
 *
 * Layout produced (what gguf-py's GGUFWriter produces): KVs in JSON object
 * order; tensor infos in declaration order with offsets = running sum of
 * each tensor's size padded to the alignment; zero padding after the infos
 * and after every tensor.  Tensor bytes are raw (F32/F16/BF16/ints little
 * endian, quantized types as ggml blocks) and pass straight through.
 *
 * Invariants: the whole header is built in memory and validated before a
 * byte is written; every type/range error names the key or tensor.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/writer_ops.h"
#include "formats/gguf_impl.h"

#define MAX_NEST 8

typedef sl_buf gbuf;

static void put(gbuf *b, const void *d, size_t n) { sl_buf_put(b, d, n); }
static void put8(gbuf *b, uint8_t v) { sl_buf_putc(b, v); }
static void put16(gbuf *b, uint16_t v) { sl_buf_u16le(b, v); }
static void put32(gbuf *b, uint32_t v) { sl_buf_u32le(b, v); }
static void put64(gbuf *b, uint64_t v) { sl_buf_u64le(b, v); }
static void put_str(gbuf *b, const char *s) { size_t l = strlen(s); put64(b, l); put(b, s, l); }

typedef struct enc {
    gbuf b;
    const char *path;
    const char *key;   /* for messages */
    sl_error *err;
} enc;

static int fail(enc *e, const char *what) {
    return sl_errorf(e->err, SL_EINVAL, "%s: metadata key '%s': %s", e->path, e->key, what);
}

static bool integral(double d) { return isfinite(d) && d == trunc(d); }

/* type of a plain JSON value (gguf-py's inference); -1 if it has none */
static int infer_plain(const cJSON *j) {
    if (cJSON_IsBool(j)) return SL_GGUF_BOOL;
    if (cJSON_IsString(j)) return SL_GGUF_STRING;
    if (cJSON_IsArray(j)) return SL_GGUF_ARRAY;
    if (cJSON_IsRaw(j)) {   /* an exact big integer from the reader's plain view */
        const char *s = j->valuestring;
        return (s[0] == '-' || strtoull(s, NULL, 10) <= (uint64_t)INT64_MAX) ? SL_GGUF_INT64 : SL_GGUF_UINT64;
    }
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (!integral(d)) return SL_GGUF_FLOAT32;
        return (d >= INT32_MIN && d <= INT32_MAX) ? SL_GGUF_INT32 : SL_GGUF_INT64;
    }
    return -1;
}

static bool is_typed(const cJSON *j) { return cJSON_IsObject(j); }

/* element type of a plain array: one type for all elements, else -1 */
static int infer_elem(const cJSON *arr) {
    int t = -1;
    bool frac = false, wide = false, huge = false, neg = false;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        int u = is_typed(x) ? SL_GGUF_ARRAY : infer_plain(x);
        if (cJSON_IsNumber(x) && x->valuedouble < 0) neg = true;
        if (cJSON_IsRaw(x) && x->valuestring[0] == '-') neg = true;
        if (u == SL_GGUF_FLOAT32 || u == SL_GGUF_INT32 || u == SL_GGUF_INT64) {
            frac |= u == SL_GGUF_FLOAT32;
            wide |= u == SL_GGUF_INT64;
            u = SL_GGUF_INT32;   /* numbers: decided below */
        }
        if (u == SL_GGUF_UINT64) { huge = true; u = SL_GGUF_INT32; }   /* raw ints beyond int64 */
        if (u < 0 || (t >= 0 && u != t)) return -1;
        t = u;
    }
    if (t < 0) return SL_GGUF_INT32;   /* empty */
    if (t == SL_GGUF_INT32)
        return frac ? SL_GGUF_FLOAT32 : (huge && !neg) ? SL_GGUF_UINT64 : (wide || huge) ? SL_GGUF_INT64 : SL_GGUF_INT32;
    return t;
}

static int get_int(enc *e, const cJSON *j, sl_gguf_type t, int64_t *si, uint64_t *ui) {
    bool is_unsigned = t == SL_GGUF_UINT8 || t == SL_GGUF_UINT16 || t == SL_GGUF_UINT32 || t == SL_GGUF_UINT64;
    if (cJSON_IsString(j) || cJSON_IsRaw(j)) {
        const char *s = j->valuestring;
        char *end;
        errno = 0;
        if (is_unsigned) {
            if (*s == '-') return fail(e, "negative value for an unsigned type");
            *ui = strtoull(s, &end, 10);
        } else {
            *si = strtoll(s, &end, 10);
        }
        if (errno || end == s || *end) return fail(e, "integer string is not a decimal number in range");
    } else if (cJSON_IsNumber(j) && integral(j->valuedouble)) {
        double d = j->valuedouble;
        if (is_unsigned) {
            if (d < 0 || d >= 18446744073709551616.0) return fail(e, "value out of range");
            *ui = (uint64_t)d;
        } else {
            if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) return fail(e, "value out of range");
            *si = (int64_t)d;
        }
    } else if (cJSON_IsBool(j)) {
        *si = cJSON_IsTrue(j);
        *ui = (uint64_t)*si;
    } else {
        return fail(e, "expected an integer");
    }
    uint64_t umax = t == SL_GGUF_UINT8 ? UINT8_MAX : t == SL_GGUF_UINT16 ? UINT16_MAX : t == SL_GGUF_UINT32 ? UINT32_MAX : UINT64_MAX;
    int64_t lo = t == SL_GGUF_INT8 ? INT8_MIN : t == SL_GGUF_INT16 ? INT16_MIN : t == SL_GGUF_INT32 ? INT32_MIN : INT64_MIN;
    int64_t hi = t == SL_GGUF_INT8 ? INT8_MAX : t == SL_GGUF_INT16 ? INT16_MAX : t == SL_GGUF_INT32 ? INT32_MAX : INT64_MAX;
    if (is_unsigned ? *ui > umax : (*si < lo || *si > hi))
        return sl_errorf(e->err, SL_EINVAL, "%s: metadata key '%s': value out of range for %s", e->path, e->key,
                         sl_gguf_type_name(t));
    return 0;
}

static int get_float(enc *e, const cJSON *j, double *d) {
    if (cJSON_IsNumber(j)) { *d = j->valuedouble; return 0; }
    if (cJSON_IsString(j)) {
        if (strcmp(j->valuestring, "nan") == 0) { *d = NAN; return 0; }
        if (strcmp(j->valuestring, "inf") == 0) { *d = INFINITY; return 0; }
        if (strcmp(j->valuestring, "-inf") == 0) { *d = -INFINITY; return 0; }
    }
    return fail(e, "expected a number");
}

static int put_scalar(enc *e, sl_gguf_type t, const cJSON *j) {
    int64_t si = 0;
    uint64_t ui = 0;
    double d = 0;
    int rc;
    switch (t) {
    case SL_GGUF_STRING:
        if (!cJSON_IsString(j)) return fail(e, "expected a string");
        put_str(&e->b, j->valuestring);
        return 0;
    case SL_GGUF_BOOL:
        if (cJSON_IsBool(j)) put8(&e->b, cJSON_IsTrue(j) ? 1 : 0);
        else if (cJSON_IsNumber(j) && (j->valuedouble == 0 || j->valuedouble == 1)) put8(&e->b, (uint8_t)j->valuedouble);
        else return fail(e, "expected true or false");
        return 0;
    case SL_GGUF_FLOAT32:
    case SL_GGUF_FLOAT64:
        if ((rc = get_float(e, j, &d))) return rc;
        if (t == SL_GGUF_FLOAT64) {
            uint64_t u;
            memcpy(&u, &d, 8);
            put64(&e->b, u);
        } else {
            float f = (float)d;
            uint32_t u;
            memcpy(&u, &f, 4);
            put32(&e->b, u);
        }
        return 0;
    default:
        if ((rc = get_int(e, j, t, &si, &ui))) return rc;
        switch (t) {
        case SL_GGUF_UINT8: put8(&e->b, (uint8_t)ui); break;
        case SL_GGUF_INT8: put8(&e->b, (uint8_t)si); break;
        case SL_GGUF_UINT16: put16(&e->b, (uint16_t)ui); break;
        case SL_GGUF_INT16: put16(&e->b, (uint16_t)si); break;
        case SL_GGUF_UINT32: put32(&e->b, (uint32_t)ui); break;
        case SL_GGUF_INT32: put32(&e->b, (uint32_t)si); break;
        case SL_GGUF_UINT64: put64(&e->b, ui); break;
        default: put64(&e->b, (uint64_t)si); break;
        }
        return 0;
    }
}

/* split j into (type, value, elem_type or -1); forced >= 0 types a plain value */
static int resolve(enc *e, const cJSON *j, int forced, int *t, const cJSON **val, int *et) {
    *et = -1;
    if (!is_typed(j)) {
        *t = forced >= 0 ? forced : infer_plain(j);
        *val = j;
        if (*t < 0) return fail(e, "value must be a bool, number, string, array or {\"type\",\"value\"} object");
        return 0;
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    *val = cJSON_GetObjectItemCaseSensitive(j, "value");
    *t = cJSON_IsString(ty) ? sl_gguf_type_from_name(ty->valuestring) : -1;
    if (*t < 0) return fail(e, "typed value needs \"type\": uint8|int8|uint16|int16|uint32|int32|float32|bool|string|array|uint64|int64|float64");
    if (!*val) return fail(e, "typed value needs a \"value\"");
    const cJSON *ety = cJSON_GetObjectItemCaseSensitive(j, "elem_type");
    if (ety) {
        *et = cJSON_IsString(ety) ? sl_gguf_type_from_name(ety->valuestring) : -1;
        if (*et < 0 || *t != SL_GGUF_ARRAY) return fail(e, "bad \"elem_type\" (only arrays have one, named like \"type\")");
    }
    return 0;
}

static int put_array(enc *e, const cJSON *val, int et, int depth) {
    if (!cJSON_IsArray(val)) return fail(e, "array value must be a JSON array");
    if (depth >= MAX_NEST) return fail(e, "arrays nested too deeply");
    if (et < 0 && (et = infer_elem(val)) < 0) return fail(e, "array elements must all have one type");
    put32(&e->b, (uint32_t)et);
    put64(&e->b, (uint64_t)cJSON_GetArraySize(val));
    const cJSON *x;
    cJSON_ArrayForEach(x, val) {
        int rc;
        if (et == SL_GGUF_ARRAY) {
            int t, iet;
            const cJSON *iv;
            if ((rc = resolve(e, x, -1, &t, &iv, &iet))) return rc;
            if (t != SL_GGUF_ARRAY) return fail(e, "elements of an array of arrays must be arrays");
            rc = put_array(e, iv, iet, depth + 1);
        } else {
            if (is_typed(x)) return fail(e, "typed objects are only allowed as elements of an array of arrays");
            rc = put_scalar(e, (sl_gguf_type)et, x);
        }
        if (rc) return rc;
    }
    return 0;
}

/* one KV pair; sets *alignment when the key is general.alignment */
static int put_kv(enc *e, const cJSON *j, uint32_t *alignment) {
    bool is_align = strcmp(e->key, "general.alignment") == 0;
    int t, et;
    const cJSON *val;
    int rc = resolve(e, j, is_align && !is_typed(j) ? SL_GGUF_UINT32 : -1, &t, &val, &et);
    if (rc) return rc;
    if (!*e->key) return sl_errorf(e->err, SL_EINVAL, "%s: empty metadata key", e->path);
    put_str(&e->b, e->key);
    put32(&e->b, (uint32_t)t);
    if (t == SL_GGUF_ARRAY) return put_array(e, val, et, 0);
    size_t at = e->b.n;
    if ((rc = put_scalar(e, (sl_gguf_type)t, val))) return rc;
    if (is_align) {
        if (t != SL_GGUF_UINT32) return fail(e, "must be uint32");
        if (e->b.oom) return 0;
        uint32_t a = (uint32_t)e->b.p[at] | (uint32_t)e->b.p[at + 1] << 8 | (uint32_t)e->b.p[at + 2] << 16 |
                     (uint32_t)e->b.p[at + 3] << 24;
        if (a == 0 || (a & (a - 1))) return fail(e, "alignment must be a power of two");
        *alignment = a;
    }
    return 0;
}

typedef struct gguf_wstate {
    uint32_t alignment;
} gguf_wstate;

static int put_tensor_infos(enc *e, sl_writer *w, uint32_t alignment) {
    uint64_t off = 0;
    for (size_t k = 0; k < w->n; k++) {
        const sl_tensor_spec *s = &w->specs[w->order[k]];
        int gt = sl_gguf_ggml_from_dtype(s->dtype);
        if (gt < 0)
            return sl_errorf(e->err, SL_EUNSUPPORTED, "%s: tensor '%s': dtype %s cannot be stored in GGUF", e->path,
                             s->name, sl_dtype_name(s->dtype));
        if (s->ndim > SL_GGUF_MAX_DIMS)
            return sl_errorf(e->err, SL_EUNSUPPORTED, "%s: tensor '%s': %d dimensions (GGUF holds at most %d)",
                             e->path, s->name, s->ndim, SL_GGUF_MAX_DIMS);
        size_t nl = strlen(s->name);
        if (nl == 0 || nl >= SL_GGUF_MAX_NAME)
            return sl_errorf(e->err, SL_EINVAL, "%s: tensor '%s': GGUF names must be 1..%d bytes", e->path, s->name,
                             SL_GGUF_MAX_NAME - 1);
        const sl_dtype_info *in = sl_dtype_get(s->dtype);
        int64_t ne0 = s->ndim ? s->shape[s->ndim - 1] : 1;
        if ((uint64_t)ne0 % in->block_elems)
            return sl_errorf(e->err, SL_EINVAL, "%s: tensor '%s': last dimension %lld is not a multiple of the %s block size %u",
                             e->path, s->name, (long long)ne0, in->name, in->block_elems);
        put_str(&e->b, s->name);
        put32(&e->b, (uint32_t)s->ndim);
        for (int d = s->ndim - 1; d >= 0; d--) put64(&e->b, (uint64_t)s->shape[d]);   /* ggml order */
        put32(&e->b, (uint32_t)gt);
        put64(&e->b, off);
        uint64_t padded, nb = w->nbytes[w->order[k]];
        if (!sl_add_u64(nb, alignment - 1, &padded) || !sl_add_u64(off, padded / alignment * alignment, &off))
            return sl_errorf(e->err, SL_EINVAL, "%s: tensor '%s': data offsets overflow", e->path, s->name);
    }
    return 0;
}

static int gguf_begin(sl_writer *w, sl_error *err) {
    gguf_wstate *st = calloc(1, sizeof *st);
    if (!st) return sl_errorf(err, SL_ENOMEM, "out of memory");
    w->state = st;
    st->alignment = SL_GGUF_DEFAULT_ALIGNMENT;
    enc e = {{0}, w->out.path, "", err};
    const cJSON *md = w->metadata;
    if (md && !cJSON_IsObject(md)) return sl_errorf(err, SL_EINVAL, "%s: GGUF metadata must be a JSON object", w->out.path);
    size_t n_kv = 0;
    for (const cJSON *j = md ? md->child : NULL; j; j = j->next) n_kv++;
    put(&e.b, "GGUF", 4);
    put32(&e.b, 3);
    put64(&e.b, (uint64_t)w->n);
    put64(&e.b, (uint64_t)n_kv);
    int rc = 0;
    for (const cJSON *j = md ? md->child : NULL; j && !rc; j = j->next) {
        e.key = j->string ? j->string : "";
        for (const cJSON *p = md->child; p != j && !rc; p = p->next)
            if (strcmp(p->string, e.key) == 0) rc = fail(&e, "duplicate key");
        if (!rc) rc = put_kv(&e, j, &st->alignment);
    }
    if (!rc) rc = put_tensor_infos(&e, w, st->alignment);
    if (!rc && e.b.oom) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", w->out.path);
    if (!rc) rc = sl_outfile_write(&w->out, e.b.p, e.b.n, err);
    if (!rc) rc = sl_outfile_pad(&w->out, st->alignment, 0, err);
    free(e.b.p);
    return rc;
}

static int gguf_tensor_end(sl_writer *w, size_t spec, sl_error *err) {
    (void)spec;
    return sl_outfile_pad(&w->out, ((gguf_wstate *)w->state)->alignment, 0, err);
}

static void gguf_free_state(sl_writer *w) {
    free(w->state);
    w->state = NULL;
}

static const sl_writer_ops k_ops = {
    .begin = gguf_begin, .tensor_end = gguf_tensor_end, .free_state = gguf_free_state};

const sl_writer_ops *sl_gguf_writer_ops(void) { return &k_ops; }
