/*
 * safetensors.c — safetensors reader, streaming writer and index.json writer.
 *
 * Layout: u64 LE N, N bytes of UTF-8 JSON header, then the byte buffer;
 * tensor bytes are [8+N+begin, 8+N+end).
 *
 * Reader invariants (at least as strict as safetensors 0.8, stricter where
 * the reference is lax):
 *  - N <= 100,000,000 and 8+N <= file size; header is valid UTF-8, a JSON
 *    object (leading/trailing JSON whitespace allowed), no control bytes,
 *    no "\u0000" escapes, every number a plain non-negative integer < 2^53,
 *    no duplicate keys in any object (cJSON keeps duplicates; we reject).
 *  - Each tensor: exact dtype string, shape of non-negative ints (<= 8 dims),
 *    data_offsets [begin,end], end-begin == numel x dtype size computed with
 *    overflow checks (sub-byte F4/F6: numel x bits a multiple of 8).
 *  - Sorted by (begin,end) the ranges tile [0, last_end) with no gap or
 *    overlap, and 8+N+last_end == file size (no truncation, no trailing data).
 *  - __metadata__ is null or a string->string map; it goes into ck->metadata.
 *  - Tensors are views into the mapping, added in file (offset) order.
 *
 * Writer invariants (byte-identical to safetensors.serialize):
 *  - Order: dtype rank descending (the reference's Dtype enum order), then
 *    name (bytewise); offsets contiguous from 0.
 *  - Compact JSON, __metadata__ first (omitted when empty), fields dtype,
 *    shape, data_offsets; header padded with spaces to a multiple of 8.
 */
#include <stdlib.h>
#include <string.h>

#include "silica/checkpoint.h"
#include "formats/formats_impl.h"
#include "silica/safetensors.h"
#include "core/buf.h"
#include "core/writer_ops.h"

#define ST_MAX_HEADER 100000000ull
#define ST_MAX_INT 9007199254740992.0   /* 2^53: larger JSON integers lose precision in cJSON */

/* Rank in the reference's Dtype enum (sort key of its writer); 0 = not a
 * safetensors dtype. */
static int st_rank(sl_dtype t) {
    switch (t) {
    case SL_BOOL: return 1;
    case SL_F4: return 2;
    case SL_F6_E2M3: return 3;
    case SL_F6_E3M2: return 4;
    case SL_U8: return 5;
    case SL_I8: return 6;
    case SL_F8_E5M2: return 7;
    case SL_F8_E4M3: return 8;
    case SL_F8_E8M0: return 9;
    case SL_F8_E4M3FNUZ: return 10;
    case SL_F8_E5M2FNUZ: return 11;
    case SL_I16: return 12;
    case SL_U16: return 13;
    case SL_F16: return 14;
    case SL_BF16: return 15;
    case SL_I32: return 16;
    case SL_U32: return 17;
    case SL_F32: return 18;
    case SL_C64: return 19;
    case SL_F64: return 20;
    case SL_I64: return 21;
    case SL_U64: return 22;
    default: return 0;
    }
}

/* ------------------------------------------------------------------ */
/* small string builder + JSON string escaping                         */

typedef sl_buf sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) { sl_buf_put(b, s, n); }
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_u64(sbuf *b, uint64_t v) {
    char t[24];
    int k = 23;
    t[k] = 0;
    do { t[--k] = (char)('0' + v % 10); v /= 10; } while (v);
    sb_str(b, t + k);
}

/* Decode one UTF-8 sequence at s[0..n); returns its length (0 if invalid). */
static size_t utf8_dec(const unsigned char *s, size_t n, uint32_t *cp) {
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xE0) == 0xC0) { len = 2; c = s[0] & 0x1F; min = 0x80; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; c = s[0] & 0x0F; min = 0x800; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; c = s[0] & 0x07; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* JSON string literal: serde_json style (ascii=false) or Python json.dumps
 * style (ascii=true: everything outside ' '..'~' as \uXXXX).  s is UTF-8. */
static void sb_json_str(sbuf *b, const char *s, bool ascii) {
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        unsigned char c = *p;
        char e[16];
        size_t adv = 1;
        if (c == '"') sb_put(b, "\\\"", 2);
        else if (c == '\\') sb_put(b, "\\\\", 2);
        else if (c == '\n') sb_put(b, "\\n", 2);
        else if (c == '\r') sb_put(b, "\\r", 2);
        else if (c == '\t') sb_put(b, "\\t", 2);
        else if (c == '\b') sb_put(b, "\\b", 2);
        else if (c == '\f') sb_put(b, "\\f", 2);
        else if (c < 0x20 || (ascii && c == 0x7F)) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            sb_put(b, e, 6);
        } else if (c < 0x80 || !ascii) sb_put(b, (const char *)p, 1);
        else {
            uint32_t cp = 0xFFFD;
            adv = utf8_dec(p, n, &cp);
            if (!adv) { adv = 1; cp = 0xFFFD; }
            uint32_t units[2];
            int nu = 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[0] = 0xD800 | (cp >> 10);
                units[1] = 0xDC00 | (cp & 0x3FF);
                nu = 2;
            } else units[0] = cp;
            for (int i = 0; i < nu; i++) {
                e[0] = '\\';
                e[1] = 'u';
                for (int k = 0; k < 4; k++) e[2 + k] = hex[(units[i] >> (12 - 4 * k)) & 15];
                sb_put(b, e, 6);
            }
        }
        p += adv;
        n -= adv;
    }
    sb_put(b, "\"", 1);
}

/* ------------------------------------------------------------------ */
/* reader                                                               */

/* Lexical checks cJSON does not do: UTF-8, control bytes, \u0000, number
 * syntax (plain non-negative integers only, no leading zeros). */
static int header_lex(const char *path, const unsigned char *h, size_t n, sl_error *err) {
    bool in_str = false;
    size_t i = 0;
    while (i < n) {
        unsigned char c = h[i];
        if (c >= 0x80) {
            uint32_t cp;
            size_t k = utf8_dec(h + i, n - i, &cp);
            if (!k) return sl_errorf(err, SL_EINVAL, "%s: header is not valid UTF-8 (byte %zu)", path, i);
            i += k;
            continue;
        }
        if (c < 0x20 && !(!in_str && (c == ' ' || c == '\t' || c == '\n' || c == '\r')))
            return sl_errorf(err, SL_EINVAL, "%s: header has control byte 0x%02x at byte %zu (invalid JSON)", path, c, i);
        if (in_str) {
            if (c == '"') in_str = false;
            else if (c == '\\') {
                if (i + 1 < n && h[i + 1] == 'u' && i + 6 <= n && memcmp(h + i + 2, "0000", 4) == 0)
                    return sl_errorf(err, SL_EINVAL, "%s: header has a \\u0000 escape at byte %zu", path, i);
                i++;   /* skip the escaped char (validated by cJSON) */
            }
            i++;
            continue;
        }
        if (c == '"') { in_str = true; i++; continue; }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < n && strchr("0123456789+-.eE", h[j]) && h[j]) j++;
            for (size_t k = i; k < j; k++)
                if (h[k] < '0' || h[k] > '9')
                    return sl_errorf(err, SL_EINVAL, "%s: header number '%.*s' at byte %zu is not a non-negative integer",
                                     path, (int)(j - i > 32 ? 32 : j - i), (const char *)h + i, i);
            if (j - i > 1 && h[i] == '0')
                return sl_errorf(err, SL_EINVAL, "%s: header number at byte %zu has a leading zero", path, i);
            i = j;
            continue;
        }
        i++;
    }
    return 0;
}

typedef struct key_ref {
    const char *k;
} key_ref;
static int cmp_key(const void *a, const void *b) { return strcmp(((const key_ref *)a)->k, ((const key_ref *)b)->k); }

/* Reject duplicate keys in any object of the tree. */
static int no_dup_keys(const char *path, const cJSON *o, int depth, sl_error *err) {
    if (depth > 64) return sl_errorf(err, SL_EINVAL, "%s: header JSON nested too deeply", path);
    size_t n = 0;
    for (const cJSON *c = o->child; c; c = c->next) n++;
    if (cJSON_IsObject(o) && n > 1) {
        key_ref *ks = malloc(n * sizeof *ks);
        if (!ks) return sl_errorf(err, SL_ENOMEM, "out of memory");
        size_t i = 0;
        for (const cJSON *c = o->child; c; c = c->next) ks[i++].k = c->string;
        qsort(ks, n, sizeof *ks, cmp_key);
        for (i = 1; i < n; i++)
            if (strcmp(ks[i - 1].k, ks[i].k) == 0) {
                int rc = depth == 0 ? sl_errorf(err, SL_EINVAL, "%s: duplicate tensor name '%s' in header", path, ks[i].k)
                                    : sl_errorf(err, SL_EINVAL, "%s: duplicate key '%s' in header", path, ks[i].k);
                free(ks);
                return rc;
            }
        free(ks);
    }
    for (const cJSON *c = o->child; c; c = c->next)
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            int rc = no_dup_keys(path, c, depth + 1, err);
            if (rc) return rc;
        }
    return 0;
}

static bool json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= ST_MAX_INT) return false;
    *out = (uint64_t)v->valuedouble;
    return (double)*out == v->valuedouble;
}

typedef struct st_info {
    const char *name;
    sl_dtype dtype;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    uint64_t begin, end;
} st_info;

static int cmp_info(const void *a, const void *b) {
    const st_info *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int parse_tensor(const char *path, const cJSON *e, st_info *ti, sl_error *err) {
    const char *nm = e->string;
    ti->name = nm;
    if (!cJSON_IsObject(e))
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': header entry is not an object", path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': field 'dtype' missing or not a string", path, nm);
    ti->dtype = sl_dtype_from_name(dt->valuestring);
    if (!st_rank(ti->dtype))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': unknown dtype '%s'", path, nm, dt->valuestring);
    if (!cJSON_IsArray(sh)) return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': field 'shape' missing or not an array", path, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > SL_MAX_DIMS)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d supported)", path, nm, nd,
                         SL_MAX_DIMS);
    ti->ndim = nd;
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        if (!json_u64(x, &v))
            return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': shape[%d] is not a non-negative integer below 2^53", path,
                             nm, d);
        ti->shape[d] = (int64_t)v;
        if (!sl_mul_u64(numel, v, &numel))
            return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': shape overflows 64 bits", path, nm);
    }
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_u64(of->child, &ti->begin) ||
        !json_u64(of->child->next, &ti->end))
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': data_offsets must be [begin, end] non-negative integers", path, nm);
    if (ti->end < ti->begin)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': data_offsets end %llu < begin %llu", path, nm,
                         (unsigned long long)ti->end, (unsigned long long)ti->begin);
    uint64_t nbytes;
    if (!sl_dtype_nbytes(ti->dtype, numel, &nbytes))
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': %llu elements of %s is not a whole number of bytes or overflows",
                         path, nm, (unsigned long long)numel, sl_dtype_name(ti->dtype));
    if (ti->end - ti->begin != nbytes)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': data_offsets span %llu bytes, shape and dtype %s need %llu",
                         path, nm, (unsigned long long)(ti->end - ti->begin), sl_dtype_name(ti->dtype),
                         (unsigned long long)nbytes);
    return 0;
}

static int take_metadata(sl_checkpoint *ck, const char *path, const cJSON *md, sl_error *err) {
    if (cJSON_IsNull(md)) return 0;
    if (!cJSON_IsObject(md)) return sl_errorf(err, SL_EINVAL, "%s: __metadata__ must be an object of strings", path);
    for (const cJSON *c = md->child; c; c = c->next)
        if (!cJSON_IsString(c))
            return sl_errorf(err, SL_EINVAL, "%s: __metadata__['%s'] must be a string", path, c->string);
    for (const cJSON *c = md->child; c; c = c->next) {
        cJSON *v = cJSON_CreateString(c->valuestring);
        if (!v) return sl_errorf(err, SL_ENOMEM, "out of memory");
        if (cJSON_GetObjectItemCaseSensitive(ck->metadata, c->string))
            cJSON_ReplaceItemInObjectCaseSensitive(ck->metadata, c->string, v);
        else
            cJSON_AddItemToObject(ck->metadata, c->string, v);
    }
    return 0;
}

static int st_parse(sl_checkpoint *ck, const char *path, const sl_mapping *m, uint32_t file, sl_error *err) {
    if (m->size < 8)
        return sl_errorf(err, SL_EINVAL, "%s: %llu bytes, too small for a safetensors header (8-byte length)", path,
                         (unsigned long long)m->size);
    const uint8_t *d = m->data;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | d[i];
    if (n > ST_MAX_HEADER)
        return sl_errorf(err, SL_EINVAL, "%s: header length %llu exceeds the 100,000,000-byte limit", path,
                         (unsigned long long)n);
    if (n == 0 || 8 + n > m->size)
        return sl_errorf(err, SL_EINVAL, "%s: header length %llu does not fit the %llu-byte file", path,
                         (unsigned long long)n, (unsigned long long)m->size);
    const char *h = (const char *)d + 8;
    int rc = header_lex(path, (const unsigned char *)h, (size_t)n, err);
    if (rc) return rc;
    size_t lead = 0;
    while (lead < n && (h[lead] == ' ' || h[lead] == '\t' || h[lead] == '\n' || h[lead] == '\r')) lead++;
    if (lead == n || h[lead] != '{') return sl_errorf(err, SL_EINVAL, "%s: header is not a JSON object", path);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(h, (size_t)n, &end, 0);
    if (!j) {
        long off = end ? (long)(end - h) : -1;
        return sl_errorf(err, SL_EINVAL, "%s: header is invalid JSON near byte %ld", path, off);
    }
    for (const char *p = end; p < h + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(j);
            return sl_errorf(err, SL_EINVAL, "%s: header has trailing bytes after the JSON object (byte %ld)", path,
                             (long)(p - h));
        }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return sl_errorf(err, SL_EINVAL, "%s: header is not a JSON object", path);
    }
    rc = no_dup_keys(path, j, 0, err);
    size_t cnt = 0;
    for (const cJSON *c = j->child; c; c = c->next) cnt++;
    st_info *ti = calloc(cnt ? cnt : 1, sizeof *ti);
    if (!rc && !ti) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    size_t nt = 0;
    for (const cJSON *c = j->child; c && !rc; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) rc = take_metadata(ck, path, c, err);
        else rc = parse_tensor(path, c, &ti[nt++], err);
    }
    if (!rc) {
        qsort(ti, nt, sizeof *ti, cmp_info);
        uint64_t pos = 0;
        for (size_t i = 0; i < nt && !rc; i++) {
            if (ti[i].begin != pos)
                rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s': data_offsets begin at %llu, expected %llu (%s)", path,
                               ti[i].name, (unsigned long long)ti[i].begin, (unsigned long long)pos,
                               ti[i].begin > pos ? "gap" : "overlap");
            pos = ti[i].end;
        }
        uint64_t total;
        if (!rc && (!sl_add_u64(8 + n, pos, &total) || total != m->size))
            rc = sl_errorf(err, SL_EINVAL, "%s: tensors end at byte %llu but the file has %llu bytes (%s)", path,
                           (unsigned long long)(8 + n + pos), (unsigned long long)m->size,
                           8 + n + pos > m->size ? "truncated" : "trailing data");
    }
    for (size_t i = 0; i < nt && !rc; i++) {
        sl_tensor t;
        memset(&t, 0, sizeof t);
        t.name = (char *)ti[i].name;
        t.dtype = ti[i].dtype;
        t.ndim = ti[i].ndim;
        memcpy(t.shape, ti[i].shape, sizeof t.shape);
        t.contiguous = true;
        t.file = file;
        t.offset = 8 + n + ti[i].begin;
        t.data = d + t.offset;
        rc = sl_checkpoint_add_tensor(ck, &t, err);
    }
    free(ti);
    cJSON_Delete(j);
    return rc;
}

int sl_safetensors_read(sl_checkpoint *ck, const char *path, sl_error *err) {
    sl_mapping *m;
    int rc = sl_map_file(path, &m, err);
    if (rc) return rc;
    rc = sl_checkpoint_add_map(ck, m, err);   /* owns m from here, even on failure */
    if (rc) return rc;
    uint32_t file;
    rc = sl_checkpoint_add_file(ck, path, &file, err);
    if (rc) return rc;
    return st_parse(ck, path, m, file, err);
}

/* ------------------------------------------------------------------ */
/* writer                                                               */

typedef struct ord_ref {
    int rank;
    const char *name;
    size_t idx;
} ord_ref;

static int cmp_order(const void *a, const void *b) {
    const ord_ref *x = a, *y = b;
    if (x->rank != y->rank) return x->rank > y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int st_begin(sl_writer *w, sl_error *err) {
    const char *path = w->out.path;
    for (size_t i = 0; i < w->n; i++)
        if (!st_rank(w->specs[i].dtype))
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': dtype %s cannot be stored in safetensors", path,
                             w->specs[i].name, sl_dtype_name(w->specs[i].dtype));
    const cJSON *md = w->metadata;
    if (md && !cJSON_IsObject(md)) return sl_errorf(err, SL_EINVAL, "%s: safetensors metadata must be a JSON object", path);
    if (md)
        for (const cJSON *c = md->child; c; c = c->next)
            if (!cJSON_IsString(c))
                return sl_errorf(err, SL_EINVAL, "%s: metadata '%s' must be a string (safetensors __metadata__ is str->str)",
                                 path, c->string);
    ord_ref *refs = calloc(w->n ? w->n : 1, sizeof *refs);
    if (!refs) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < w->n; i++) refs[i] = (ord_ref){st_rank(w->specs[i].dtype), w->specs[i].name, i};
    qsort(refs, w->n, sizeof *refs, cmp_order);
    for (size_t i = 0; i < w->n; i++) w->order[i] = refs[i].idx;
    free(refs);

    sbuf b = {0};
    sb_put(&b, "{", 1);
    bool first = true;
    if (md && md->child) {
        sb_str(&b, "\"__metadata__\":{");
        for (const cJSON *c = md->child; c; c = c->next) {
            if (c != md->child) sb_put(&b, ",", 1);
            sb_json_str(&b, c->string, false);
            sb_put(&b, ":", 1);
            sb_json_str(&b, c->valuestring, false);
        }
        sb_put(&b, "}", 1);
        first = false;
    }
    uint64_t off = 0;
    for (size_t k = 0; k < w->n; k++) {
        size_t i = w->order[k];
        const sl_tensor_spec *s = &w->specs[i];
        if (!first) sb_put(&b, ",", 1);
        first = false;
        sb_json_str(&b, s->name, false);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, sl_dtype_name(s->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < s->ndim; d++) {
            if (d) sb_put(&b, ",", 1);
            sb_u64(&b, (uint64_t)s->shape[d]);
        }
        sb_str(&b, "],\"data_offsets\":[");
        sb_u64(&b, off);
        sb_put(&b, ",", 1);
        if (!sl_add_u64(off, w->nbytes[i], &off)) { free(b.p); return sl_errorf(err, SL_EINVAL, "%s: total size overflows", path); }
        sb_u64(&b, off);
        sb_str(&b, "]}");
    }
    sb_put(&b, "}", 1);
    while (!b.oom && b.n % 8) sb_put(&b, " ", 1);
    if (b.oom) { free(b.p); return sl_errorf(err, SL_ENOMEM, "%s: out of memory building the header", path); }
    if (b.n > ST_MAX_HEADER) {
        free(b.p);
        return sl_errorf(err, SL_EINVAL, "%s: header of %zu bytes exceeds the 100,000,000-byte limit", path, b.n);
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)b.n >> (8 * i));
    int rc = sl_outfile_write(&w->out, len, 8, err);
    if (!rc) rc = sl_outfile_write(&w->out, b.p, b.n, err);
    free(b.p);
    return rc;
}

static const sl_writer_ops k_ops = {.begin = st_begin};
const sl_writer_ops *sl_safetensors_writer_ops(void) { return &k_ops; }

/* ------------------------------------------------------------------ */
/* model.safetensors.index.json                                        */

typedef struct wm_pair {
    const char *name, *file;
} wm_pair;
static int cmp_pair(const void *a, const void *b) { return strcmp(((const wm_pair *)a)->name, ((const wm_pair *)b)->name); }

int sl_safetensors_write_index(const char *dir, const char *const *names, const char *const *files, size_t n,
                               uint64_t total_size, int64_t total_parameters, sl_error *err) {
    char *path = sl_path_join(dir, "model.safetensors.index.json");
    if (!path) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = sl_shard_index_write(path, names, files, n, total_size, total_parameters, err);
    free(path);
    return rc;
}

int sl_shard_index_write(const char *path, const char *const *names, const char *const *files, size_t n,
                         uint64_t total_size, int64_t total_parameters, sl_error *err) {
    wm_pair *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        p[i] = (wm_pair){names[i], files[i]};
        if (!files[i][0] || strchr(files[i], '/') || strcmp(files[i], "..") == 0 || strcmp(files[i], ".") == 0)
            rc = sl_errorf(err, SL_EINVAL, "%s: shard '%s' of tensor '%s' must be a file name in the same directory", path,
                           files[i], names[i]);
    }
    if (!rc) qsort(p, n, sizeof *p, cmp_pair);
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(p[i - 1].name, p[i].name) == 0)
            rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s' listed twice in weight_map", path, p[i].name);
    sbuf b = {0};
    if (!rc) {
        sb_str(&b, "{\n  \"metadata\": {\n");
        if (total_parameters >= 0) {
            sb_str(&b, "    \"total_parameters\": ");
            sb_u64(&b, (uint64_t)total_parameters);
            sb_str(&b, ",\n");
        }
        sb_str(&b, "    \"total_size\": ");
        sb_u64(&b, total_size);
        sb_str(&b, "\n  },\n  \"weight_map\": {");
        for (size_t i = 0; i < n; i++) {
            sb_str(&b, i ? ",\n    " : "\n    ");
            sb_json_str(&b, p[i].name, true);
            sb_str(&b, ": ");
            sb_json_str(&b, p[i].file, true);
        }
        sb_str(&b, n ? "\n  }\n}\n" : "}\n}\n");
        if (b.oom) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (!rc) {
        sl_outfile o;
        rc = sl_outfile_open(&o, path, err);
        if (!rc) {
            rc = sl_outfile_write(&o, b.p, b.n, err);
            if (!rc) rc = sl_outfile_commit(&o, err);
            else sl_outfile_abort(&o);
        }
    }
    free(b.p);
    free(p);
    return rc;
}
