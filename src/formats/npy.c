/*
 * npy.c — NumPy .npy and .npz: readers and writers.
 *
 * .npy: "\x93NUMPY", major, minor (1.0: u16 header length; 2.0/3.0: u32),
 * then a Python dict literal with exactly 'descr', 'fortran_order', 'shape',
 * padded with spaces and ended by '\n', then the raw data.
 *
 * Reader invariants:
 *  - The dict is parsed by a tiny grammar (never evaluated): each key once,
 *    string/bool/tuple-of-ints values, trailing spaces then '\n'.  Any amount
 *    of padding is accepted (MLX does not align to 64).
 *  - descr comes from a whitelist: |b1 |u1 |i1 <i2..<i8 <u2..<u8 <f2 <f4 <f8
 *    <c8 <c16, their '>' forms (marked big_endian) and '<V2' = bfloat16 (the
 *    MLX / ml_dtypes convention).  '|O', structured and other void dtypes are
 *    refused.
 *  - header end + numel x itemsize (overflow-checked) must equal the file
 *    (or npz member) size exactly.
 *  - fortran_order=True gives a strided view (column-major strides,
 *    contiguous=false) unless at most one dimension exceeds 1.
 *  - .npz: every member must be "<name>.npy"; STORED members are views into
 *    the mapping, DEFLATE members are inflated (bounded by the declared size,
 *    CRC checked) into a buffer the checkpoint owns (tensor.offset is 0 then).
 *
 * Writer invariants: headers are byte-identical to numpy.save (sorted keys,
 * 21 spare spaces for shape growth, padded to 64 with ' ' and '\n', v1.0
 * unless the header needs v2.0); npz members are STORED "<name>.npy" whose
 * data start is 64-aligned, so the array data is too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/checkpoint.h"
#include "formats/formats_impl.h"
#include "core/writer_ops.h"
#include "formats/zip.h"

#define NPY_MAX_HEADER 10000u   /* numpy's default max_header_size */

/* ------------------------------------------------------------------ */
/* descr <-> dtype                                                      */

typedef struct npy_code {
    const char *code;   /* without the byte-order char */
    sl_dtype dtype;
} npy_code;

static const npy_code k_codes[] = {
    {"b1", SL_BOOL}, {"u1", SL_U8},  {"i1", SL_I8},  {"i2", SL_I16}, {"i4", SL_I32}, {"i8", SL_I64},
    {"u2", SL_U16},  {"u4", SL_U32}, {"u8", SL_U64}, {"f2", SL_F16}, {"f4", SL_F32}, {"f8", SL_F64},
    {"c8", SL_C64},  {"c16", SL_C128}, {"V2", SL_BF16},
};

/* Map a descr to a dtype; false if not on the whitelist. */
static bool descr_to_dtype(const char *d, sl_dtype *dt, bool *big) {
    char bo = d[0];
    if (bo != '<' && bo != '>' && bo != '|') return false;
    for (size_t i = 0; i < sizeof k_codes / sizeof k_codes[0]; i++) {
        if (strcmp(d + 1, k_codes[i].code) != 0) continue;
        size_t sz = sl_dtype_size(k_codes[i].dtype);
        if (k_codes[i].dtype == SL_BF16 && bo != '<') return false;   /* '|V2' is plain void */
        if (sz > 1 && bo == '|') return false;
        *dt = k_codes[i].dtype;
        *big = bo == '>' && sz > 1;
        return true;
    }
    return false;
}

static const char *dtype_to_descr(sl_dtype t) {
    switch (t) {
    case SL_BOOL: return "|b1";
    case SL_U8: return "|u1";
    case SL_I8: return "|i1";
    case SL_I16: return "<i2";
    case SL_I32: return "<i4";
    case SL_I64: return "<i8";
    case SL_U16: return "<u2";
    case SL_U32: return "<u4";
    case SL_U64: return "<u8";
    case SL_F16: return "<f2";
    case SL_F32: return "<f4";
    case SL_F64: return "<f8";
    case SL_C64: return "<c8";
    case SL_C128: return "<c16";
    case SL_BF16: return "<V2";
    default: return NULL;
    }
}

/* ------------------------------------------------------------------ */
/* header grammar                                                       */

typedef struct hp {
    const char *p, *end;
    const char *what;   /* "file.npy" or "file.npz: member 'x.npy'" for messages */
    sl_error *err;
} hp;

static void ws(hp *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t')) h->p++;
}
static bool eat(hp *h, char c) {
    ws(h);
    if (h->p < h->end && *h->p == c) { h->p++; return true; }
    return false;
}
/* Python string literal with no escapes, into out (cap bytes). */
static bool pystr(hp *h, char *out, size_t cap) {
    ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || (unsigned char)*h->p < 0x20 || n + 1 >= cap) return false;
        out[n++] = *h->p++;
    }
    if (h->p >= h->end) return false;
    h->p++;
    out[n] = 0;
    return true;
}

static bool pyint(hp *h, int64_t *v) {
    ws(h);
    const char *s = h->p;
    uint64_t x = 0;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
        if (!sl_mul_u64(x, 10, &x) || !sl_add_u64(x, (uint64_t)(*h->p - '0'), &x) || x > (uint64_t)INT64_MAX) return false;
        h->p++;
    }
    if (h->p == s) return false;
    if (h->p < h->end && *h->p == 'L') h->p++;   /* Python 2 longs */
    *v = (int64_t)x;
    return true;
}

typedef struct npy_hdr {
    char descr[16];
    bool fortran;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
} npy_hdr;

static int parse_dict(hp *h, npy_hdr *o) {
    bool have[3] = {false, false, false};
    if (!eat(h, '{')) return sl_errorf(h->err, SL_EINVAL, "%s: npy header is not a dict literal", h->what);
    for (;;) {
        if (eat(h, '}')) break;
        char key[32];
        if (!pystr(h, key, sizeof key)) return sl_errorf(h->err, SL_EINVAL, "%s: npy header: expected a quoted key", h->what);
        int k = !strcmp(key, "descr") ? 0 : !strcmp(key, "fortran_order") ? 1 : !strcmp(key, "shape") ? 2 : -1;
        if (k < 0) return sl_errorf(h->err, SL_EINVAL, "%s: npy header: unexpected key '%s'", h->what, key);
        if (have[k]) return sl_errorf(h->err, SL_EINVAL, "%s: npy header: key '%s' repeated", h->what, key);
        have[k] = true;
        if (!eat(h, ':')) return sl_errorf(h->err, SL_EINVAL, "%s: npy header: expected ':' after '%s'", h->what, key);
        if (k == 0) {
            if (!pystr(h, o->descr, sizeof o->descr))
                return sl_errorf(h->err, SL_EINVAL,
                                 "%s: npy header: 'descr' is not a simple type string (structured or object arrays are not supported)",
                                 h->what);
        } else if (k == 1) {
            ws(h);
            if ((size_t)(h->end - h->p) >= 4 && !memcmp(h->p, "True", 4)) { o->fortran = true; h->p += 4; }
            else if ((size_t)(h->end - h->p) >= 5 && !memcmp(h->p, "False", 5)) { o->fortran = false; h->p += 5; }
            else return sl_errorf(h->err, SL_EINVAL, "%s: npy header: 'fortran_order' must be True or False", h->what);
        } else {
            if (!eat(h, '(')) return sl_errorf(h->err, SL_EINVAL, "%s: npy header: 'shape' must be a tuple", h->what);
            o->ndim = 0;
            bool comma = false;
            while (!eat(h, ')')) {
                if (o->ndim == SL_MAX_DIMS)
                    return sl_errorf(h->err, SL_EUNSUPPORTED, "%s: npy shape has more than %d dimensions", h->what,
                                     SL_MAX_DIMS);
                if (o->ndim && !comma)
                    return sl_errorf(h->err, SL_EINVAL, "%s: npy header: expected ',' in shape", h->what);
                if (!pyint(h, &o->shape[o->ndim]))
                    return sl_errorf(h->err, SL_EINVAL, "%s: npy header: shape entries must be non-negative integers",
                                     h->what);
                o->ndim++;
                comma = eat(h, ',');
            }
            if (o->ndim == 1 && !comma)
                return sl_errorf(h->err, SL_EINVAL, "%s: npy header: shape '(n)' is not a tuple (expected '(n,)')", h->what);
        }
        if (eat(h, ',')) continue;
        if (eat(h, '}')) break;
        return sl_errorf(h->err, SL_EINVAL, "%s: npy header: expected ',' or '}'", h->what);
    }
    if (!have[0] || !have[1] || !have[2])
        return sl_errorf(h->err, SL_EINVAL, "%s: npy header: missing key '%s'", h->what,
                         !have[0] ? "descr" : !have[1] ? "fortran_order" : "shape");
    while (h->p < h->end && *h->p == ' ') h->p++;
    if (h->p != h->end - 1 || *h->p != '\n')
        return sl_errorf(h->err, SL_EINVAL, "%s: npy header: expected space padding and a final newline after the dict",
                         h->what);
    return 0;
}

/* Parse a whole .npy image p[0..n) into t (data/offset relative to p). */
static int npy_parse(const char *what, const uint8_t *p, uint64_t n, sl_tensor *t, sl_error *err) {
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
        return sl_errorf(err, SL_EINVAL, "%s: not a .npy array (bad magic)", what);
    uint8_t major = p[6], minor = p[7];
    if (minor != 0 || major < 1 || major > 3)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: npy format version %u.%u not supported (1.0, 2.0, 3.0)", what, major,
                         minor);
    uint64_t pre = major == 1 ? 10 : 12;
    if (n < pre) return sl_errorf(err, SL_EINVAL, "%s: truncated npy preamble", what);
    uint64_t hlen = major == 1 ? (uint64_t)(p[8] | p[9] << 8)
                               : (uint64_t)p[8] | (uint64_t)p[9] << 8 | (uint64_t)p[10] << 16 | (uint64_t)p[11] << 24;
    if (hlen > NPY_MAX_HEADER)
        return sl_errorf(err, SL_EINVAL, "%s: npy header length %llu exceeds %u", what, (unsigned long long)hlen,
                         NPY_MAX_HEADER);
    if (pre + hlen > n)
        return sl_errorf(err, SL_EINVAL, "%s: npy header length %llu runs past the %llu-byte file", what,
                         (unsigned long long)hlen, (unsigned long long)n);
    npy_hdr hd;
    memset(&hd, 0, sizeof hd);
    hp h = {(const char *)p + pre, (const char *)p + pre + hlen, what, err};
    if (memchr(h.p, 0, (size_t)hlen)) return sl_errorf(err, SL_EINVAL, "%s: npy header contains a NUL byte", what);
    int rc = parse_dict(&h, &hd);
    if (rc) return rc;
    bool big = false;
    sl_dtype dt;
    if (!descr_to_dtype(hd.descr, &dt, &big))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: npy descr '%s' not supported", what, hd.descr);
    uint64_t numel = 1, nbytes;
    for (int d = 0; d < hd.ndim; d++)
        if (!sl_mul_u64(numel, (uint64_t)hd.shape[d], &numel))
            return sl_errorf(err, SL_EINVAL, "%s: npy shape overflows 64 bits", what);
    if (!sl_dtype_nbytes(dt, numel, &nbytes)) return sl_errorf(err, SL_EINVAL, "%s: npy data size overflows", what);
    uint64_t data_off = pre + hlen;
    if (n - data_off != nbytes)
        return sl_errorf(err, SL_EINVAL, "%s: npy data is %llu bytes, shape and descr '%s' need %llu (%s)", what,
                         (unsigned long long)(n - data_off), hd.descr, (unsigned long long)nbytes,
                         n - data_off < nbytes ? "truncated" : "trailing data");
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->big_endian = big;
    t->ndim = hd.ndim;
    memcpy(t->shape, hd.shape, sizeof t->shape);
    int nontrivial = 0;
    for (int d = 0; d < hd.ndim; d++) nontrivial += hd.shape[d] > 1;
    t->contiguous = !hd.fortran || nontrivial <= 1;
    if (!t->contiguous) {
        int64_t s = 1;
        for (int d = 0; d < hd.ndim; d++) {
            t->strides[d] = s;
            s *= hd.shape[d];   /* no overflow: product checked above */
        }
    }
    t->offset = data_off;
    t->data = p + data_off;
    return 0;
}

static int map_into(sl_checkpoint *ck, const char *path, sl_mapping **m, uint32_t *file, sl_error *err) {
    int rc = sl_map_file(path, m, err);
    if (rc) return rc;
    rc = sl_checkpoint_add_map(ck, *m, err);   /* owns *m from here */
    if (rc) return rc;
    return sl_checkpoint_add_file(ck, path, file, err);
}

int sl_npy_read(sl_checkpoint *ck, const char *path, sl_error *err) {
    sl_mapping *m;
    uint32_t file;
    int rc = map_into(ck, path, &m, &file, err);
    if (rc) return rc;
    sl_tensor t;
    rc = npy_parse(path, m->data, m->size, &t, err);
    if (rc) return rc;
    /* tensor name: the file name without ".npy" */
    const char *base = sl_path_basename(path);
    size_t bl = strlen(base);
    char *name = strndup(base, sl_str_ends_with(base, ".npy") && bl > 4 ? bl - 4 : bl);
    if (!name) return sl_errorf(err, SL_ENOMEM, "out of memory");
    t.name = name;
    t.file = file;
    rc = sl_checkpoint_add_tensor(ck, &t, err);
    free(name);
    return rc;
}

int sl_npz_read(sl_checkpoint *ck, const char *path, sl_error *err) {
    sl_mapping *m;
    uint32_t file;
    int rc = map_into(ck, path, &m, &file, err);
    if (rc) return rc;
    sl_zip z;
    rc = sl_zip_open(&z, path, m->data, m->size, err);
    if (rc) return rc;
    for (size_t i = 0; i < z.n && !rc; i++) {
        const sl_zip_entry *e = &z.entries[i];
        size_t nl = strlen(e->name);
        if (nl <= 4 || !sl_str_ends_with(e->name, ".npy")) {
            rc = sl_errorf(err, SL_EINVAL, "%s: member '%s' is not a .npy array", path, e->name);
            break;
        }
        char what[1200];
        snprintf(what, sizeof what, "%s: member '%s'", path, e->name);
        const uint8_t *data;
        uint8_t *owned = NULL;
        if (e->method == 0) rc = sl_zip_view(&z, e, &data, err);
        else rc = sl_zip_read(&z, e, UINT64_MAX, &data, &owned, err);
        if (!rc && owned) rc = sl_checkpoint_own(ck, owned, err);   /* frees it on failure */
        sl_tensor t;
        if (!rc) rc = npy_parse(what, data, e->size, &t, err);
        if (rc) break;
        char *name = strndup(e->name, nl - 4);
        if (!name) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
        t.name = name;
        t.file = file;
        t.offset = owned ? 0 : e->data_offset + t.offset;
        rc = sl_checkpoint_add_tensor(ck, &t, err);
        free(name);
    }
    sl_zip_close(&z);
    return rc;
}

/* ------------------------------------------------------------------ */
/* writers                                                              */

/* numpy.save's header for spec s into buf (>= 512 bytes); returns its length or 0. */
static size_t npy_header(const sl_tensor_spec *s, uint8_t *buf, size_t cap) {
    const char *descr = dtype_to_descr(s->dtype);
    if (!descr) return 0;
    char dict[400];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < s->ndim; d++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%s%lld", d ? ", " : "", (long long)s->shape[d]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", s->ndim == 1 ? "," : "");
    if (s->ndim > 0) {   /* room for the shape to grow (GROWTH_AXIS_MAX_DIGITS = 21) */
        int digits = snprintf(NULL, 0, "%lld", (long long)s->shape[0]);
        for (int i = digits; i < 21; i++) dict[k++] = ' ';
    }
    size_t hl = (size_t)k + 1;               /* + '\n' */
    size_t pad = 64 - (10 + hl) % 64;        /* numpy pads 1..64 */
    size_t total = 10 + (size_t)k + pad + 1;
    if (total > cap || (size_t)k + pad + 1 > 0xFFFF) return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)((k + pad + 1) & 0xFF);
    buf[9] = (uint8_t)((k + pad + 1) >> 8);
    memcpy(buf + 10, dict, (size_t)k);
    memset(buf + 10 + k, ' ', pad);
    buf[total - 1] = '\n';
    return total;
}

static int unsupported(sl_writer *w, size_t i, sl_error *err) {
    return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': dtype %s has no NumPy equivalent", w->out.path,
                     w->specs[i].name, sl_dtype_name(w->specs[i].dtype));
}

static int npy_begin(sl_writer *w, sl_error *err) {
    if (w->n != 1)
        return sl_errorf(err, SL_EINVAL, "%s: a .npy file holds exactly one tensor, got %zu (use npz)", w->out.path, w->n);
    uint8_t h[512];
    size_t hl = npy_header(&w->specs[0], h, sizeof h);
    if (!hl) return unsupported(w, 0, err);
    return sl_outfile_write(&w->out, h, hl, err);
}

static const sl_writer_ops k_npy_ops = {.begin = npy_begin};
const sl_writer_ops *sl_npy_writer_ops(void) { return &k_npy_ops; }

static int npz_begin(sl_writer *w, sl_error *err) {
    for (size_t i = 0; i < w->n; i++)
        if (!dtype_to_descr(w->specs[i].dtype)) return unsupported(w, i, err);
    sl_zip_writer *zw;
    int rc = sl_zipw_new(&zw, &w->out, err);
    if (!rc) w->state = zw;
    return rc;
}

static int npz_tensor_begin(sl_writer *w, size_t i, sl_error *err) {
    uint8_t h[512];
    size_t hl = npy_header(&w->specs[i], h, sizeof h);
    if (!hl) return unsupported(w, i, err);
    size_t nl = strlen(w->specs[i].name);
    char *member = malloc(nl + 5);
    if (!member) return sl_errorf(err, SL_ENOMEM, "out of memory");
    memcpy(member, w->specs[i].name, nl);
    memcpy(member + nl, ".npy", 5);
    uint64_t size;
    int rc = sl_add_u64(hl, w->nbytes[i], &size) ? 0 : sl_errorf(err, SL_EINVAL, "%s: size overflow", w->out.path);
    if (!rc) rc = sl_zipw_begin(w->state, member, size, 64, err);
    free(member);
    if (!rc) rc = sl_zipw_data(w->state, h, hl, err);
    return rc;
}

static int npz_tensor_data(sl_writer *w, const void *d, size_t n, sl_error *err) {
    return sl_zipw_data(w->state, d, n, err);
}

static int npz_tensor_end(sl_writer *w, size_t i, sl_error *err) {
    (void)i;
    return sl_zipw_end(w->state, err);
}

static int npz_end(sl_writer *w, sl_error *err) {
    sl_zip_writer *zw = w->state;
    w->state = NULL;
    return sl_zipw_finish(zw, err);
}

static void npz_free(sl_writer *w) {
    sl_zipw_free(w->state);
    w->state = NULL;
}

static const sl_writer_ops k_npz_ops = {
    .begin = npz_begin,
    .tensor_begin = npz_tensor_begin,
    .tensor_data = npz_tensor_data,
    .tensor_end = npz_tensor_end,
    .end = npz_end,
    .free_state = npz_free,
};
const sl_writer_ops *sl_npz_writer_ops(void) { return &k_npz_ops; }
