/*
 * torch_write.c — the torch.save zip writer (sl_torch_writer_ops).
 *
 * Layout, as torch 2.x writes it: every record under one folder named after
 * the output file (basename minus its extension), in this order: data.pkl,
 * .format_version, .storage_alignment, byteorder, data/<k> per tensor,
 * version, .data/serialization_id.  Every record is STORED with its data on a
 * 64-byte boundary (zip.c pads via the 0x4246 extra field).
 *
 * Invariants:
 *  - data.pkl is a protocol-2 OrderedDict of _rebuild_tensor_v2 calls (v3 with
 *    an UntypedStorage for dtypes that have no legacy storage class), built
 *    entirely from the declared specs before any tensor byte is written, so
 *    tensors stream straight into their data/<k> records.
 *  - Tensor k owns storage key "k" alone, offset 0, row-major strides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/writer_ops.h"
#include "formats/zip.h"

typedef struct tw_state {
    sl_zip_writer *zw;
    char *prefix;        /* "model/" */
    uint64_t name_hash;  /* FNV-1a over record names (for .data/serialization_id) */
    uLong crc;           /* CRC-32 over all tensor bytes */
} tw_state;

typedef sl_buf pbuf;

static void pb_put(pbuf *b, const void *d, size_t n) { sl_buf_put(b, d, n); }

static void pb_op(pbuf *b, uint8_t op) { pb_put(b, &op, 1); }

static void pb_int(pbuf *b, int64_t v) {
    uint8_t t[9];
    if (v >= 0 && v < 256) { t[0] = 'K'; t[1] = (uint8_t)v; pb_put(b, t, 2); }
    else if (v >= 0 && v < 65536) { t[0] = 'M'; t[1] = (uint8_t)v; t[2] = (uint8_t)(v >> 8); pb_put(b, t, 3); }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        t[0] = 'J';
        for (int i = 0; i < 4; i++) t[1 + i] = (uint8_t)(u >> (8 * i));
        pb_put(b, t, 5);
    } else {
        uint64_t u = (uint64_t)v;
        uint8_t l[10] = {0x8a, 8};
        for (int i = 0; i < 8; i++) l[2 + i] = (uint8_t)(u >> (8 * i));
        pb_put(b, l, 10);
    }
}

static void pb_str(pbuf *b, const char *s) {
    size_t n = strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    pb_put(b, h, 5);
    pb_put(b, s, n);
}

static void pb_global(pbuf *b, const char *module, const char *name) {
    pb_op(b, 'c');
    pb_put(b, module, strlen(module));
    pb_op(b, '\n');
    pb_put(b, name, strlen(name));
    pb_op(b, '\n');
}

static void pb_tuple(pbuf *b, const int64_t *v, int n) {
    if (n == 0) { pb_op(b, ')'); return; }
    if (n > 3) pb_op(b, '(');
    for (int i = 0; i < n; i++) pb_int(b, v[i]);
    pb_op(b, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
}

/* How torch names a dtype: a legacy storage class (v2), or a dtype (v3). */
static bool torch_names(sl_dtype d, const char **storage, const char **dtype) {
    *storage = NULL;
    *dtype = NULL;
    switch (d) {
    case SL_F64: *storage = "DoubleStorage"; return true;
    case SL_F32: *storage = "FloatStorage"; return true;
    case SL_F16: *storage = "HalfStorage"; return true;
    case SL_BF16: *storage = "BFloat16Storage"; return true;
    case SL_I64: *storage = "LongStorage"; return true;
    case SL_I32: *storage = "IntStorage"; return true;
    case SL_I16: *storage = "ShortStorage"; return true;
    case SL_I8: *storage = "CharStorage"; return true;
    case SL_U8: *storage = "ByteStorage"; return true;
    case SL_BOOL: *storage = "BoolStorage"; return true;
    case SL_C64: *storage = "ComplexFloatStorage"; return true;
    case SL_C128: *storage = "ComplexDoubleStorage"; return true;
    case SL_U16: *dtype = "uint16"; return true;
    case SL_U32: *dtype = "uint32"; return true;
    case SL_U64: *dtype = "uint64"; return true;
    case SL_F8_E4M3: *dtype = "float8_e4m3fn"; return true;
    case SL_F8_E5M2: *dtype = "float8_e5m2"; return true;
    case SL_F8_E4M3FNUZ: *dtype = "float8_e4m3fnuz"; return true;
    case SL_F8_E5M2FNUZ: *dtype = "float8_e5m2fnuz"; return true;
    case SL_F8_E8M0: *dtype = "float8_e8m0fnu"; return true;
    case SL_F4: *dtype = "float4_e2m1fn_x2"; return true;
    default: return false;
    }
}

static int build_pickle(sl_writer *w, pbuf *b, sl_error *err) {
    static const uint8_t head[] = {0x80, 0x02};
    pb_put(b, head, 2);
    pb_global(b, "collections", "OrderedDict");
    pb_op(b, ')');
    pb_op(b, 'R');
    for (size_t k = 0; k < w->n; k++) {
        const sl_tensor_spec *s = &w->specs[w->order[k]];
        const char *stype, *dname;
        if (!torch_names(s->dtype, &stype, &dname))
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': dtype %s has no PyTorch equivalent", w->out.path,
                             s->name, sl_dtype_name(s->dtype));
        int64_t shape[SL_MAX_DIMS], stride[SL_MAX_DIMS];
        memcpy(shape, s->shape, sizeof shape);
        if (s->dtype == SL_F4) {   /* torch counts bytes (pairs of values) along the last dim */
            if (s->ndim == 0 || shape[s->ndim - 1] % 2)
                return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': F4 needs an even last dimension for torch",
                                 w->out.path, s->name);
            shape[s->ndim - 1] /= 2;
        }
        int64_t st = 1;
        for (int d = s->ndim - 1; d >= 0; d--) {
            stride[d] = st;
            st *= shape[d] ? shape[d] : 1;
        }
        uint64_t nbytes = w->nbytes[w->order[k]];
        uint64_t esz = dname ? 1 : sl_dtype_size(s->dtype);
        char key[24];
        snprintf(key, sizeof key, "%zu", k);
        if (k % 1000 == 0) pb_op(b, '(');
        pb_str(b, s->name);
        pb_global(b, "torch._utils", stype ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
        pb_op(b, '(');
        pb_op(b, '(');
        pb_str(b, "storage");
        if (stype) pb_global(b, "torch", stype);
        else pb_global(b, "torch.storage", "UntypedStorage");
        pb_str(b, key);
        pb_str(b, "cpu");
        pb_int(b, (int64_t)(nbytes / esz));
        pb_op(b, 't');
        pb_op(b, 'Q');
        pb_int(b, 0);
        pb_tuple(b, shape, s->ndim);
        pb_tuple(b, stride, s->ndim);
        pb_op(b, 0x89);
        pb_global(b, "collections", "OrderedDict");
        pb_op(b, ')');
        pb_op(b, 'R');
        if (dname) pb_global(b, "torch", dname);
        pb_op(b, 't');
        pb_op(b, 'R');
        if (k % 1000 == 999 || k + 1 == w->n) pb_op(b, 'u');
    }
    pb_op(b, '.');
    if (b->oom) return sl_errorf(err, SL_ENOMEM, "out of memory");
    return 0;
}

static void hash_name(tw_state *S, const char *name) {
    for (const char *p = name; *p; p++) { S->name_hash ^= (uint8_t)*p; S->name_hash *= 1099511628211ull; }
}

static int add_record(sl_writer *w, const char *rec, const void *buf, size_t n, sl_error *err) {
    tw_state *S = w->state;
    char *name = malloc(strlen(S->prefix) + strlen(rec) + 1);
    if (!name) return sl_errorf(err, SL_ENOMEM, "out of memory");
    sprintf(name, "%s%s", S->prefix, rec);
    hash_name(S, name);
    int rc = sl_zipw_add(S->zw, name, buf, n, 64, err);
    free(name);
    return rc;
}

static int tw_begin(sl_writer *w, sl_error *err) {
    tw_state *S = calloc(1, sizeof *S);
    if (!S) return sl_errorf(err, SL_ENOMEM, "out of memory");
    w->state = S;
    S->name_hash = 1469598103934665603ull;
    S->crc = crc32(0L, Z_NULL, 0);
    const char *base = sl_path_basename(w->out.path);
    const char *dot = strrchr(base, '.');
    size_t bl = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    S->prefix = malloc(bl + 9);
    if (!S->prefix) return sl_errorf(err, SL_ENOMEM, "out of memory");
    if (bl) sprintf(S->prefix, "%.*s/", (int)bl, base);
    else strcpy(S->prefix, "archive/");
    int rc = sl_zipw_new(&S->zw, &w->out, err);
    if (rc) return rc;
    pbuf b = {0};
    rc = build_pickle(w, &b, err);
    if (!rc) rc = add_record(w, "data.pkl", b.p, b.n, err);
    free(b.p);
    if (!rc) rc = add_record(w, ".format_version", "1", 1, err);
    if (!rc) rc = add_record(w, ".storage_alignment", "64", 2, err);
    if (!rc) rc = add_record(w, "byteorder", "little", 6, err);
    return rc;
}

static int tw_tensor_begin(sl_writer *w, size_t spec, sl_error *err) {
    tw_state *S = w->state;
    char rec[48];
    snprintf(rec, sizeof rec, "data/%zu", w->k);
    char *name = malloc(strlen(S->prefix) + sizeof rec);
    if (!name) return sl_errorf(err, SL_ENOMEM, "out of memory");
    sprintf(name, "%s%s", S->prefix, rec);
    hash_name(S, name);
    int rc = sl_zipw_begin(S->zw, name, w->nbytes[spec], 64, err);
    free(name);
    return rc;
}

static int tw_tensor_data(sl_writer *w, const void *d, size_t n, sl_error *err) {
    tw_state *S = w->state;
    const Bytef *p = d;
    for (size_t left = n; left;) {   /* zlib takes uInt lengths */
        uInt c = left > (1u << 30) ? (1u << 30) : (uInt)left;
        S->crc = crc32(S->crc, p, c);
        p += c;
        left -= c;
    }
    return sl_zipw_data(S->zw, d, n, err);
}

static int tw_tensor_end(sl_writer *w, size_t spec, sl_error *err) {
    (void)spec;
    return sl_zipw_end(((tw_state *)w->state)->zw, err);
}

static int tw_end(sl_writer *w, sl_error *err) {
    tw_state *S = w->state;
    int rc = add_record(w, "version", "3\n", 2, err);
    char id[48];
    snprintf(id, sizeof id, "%020llu%020llu", (unsigned long long)S->name_hash,
             (unsigned long long)S->crc);
    if (!rc) rc = add_record(w, ".data/serialization_id", id, 40, err);
    if (!rc) {
        rc = sl_zipw_finish(S->zw, err);
        S->zw = NULL;
    }
    return rc;
}

static void tw_free(sl_writer *w) {
    tw_state *S = w->state;
    if (!S) return;
    sl_zipw_free(S->zw);
    free(S->prefix);
    free(S);
    w->state = NULL;
}

static const sl_writer_ops k_ops = {
    .begin = tw_begin,
    .tensor_begin = tw_tensor_begin,
    .tensor_data = tw_tensor_data,
    .tensor_end = tw_tensor_end,
    .end = tw_end,
    .free_state = tw_free,
};

const sl_writer_ops *sl_torch_writer_ops(void) { return &k_ops; }
