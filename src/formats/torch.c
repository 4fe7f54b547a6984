/*
 * torch.c — PyTorch torch.save files: the zip format (>= 1.6) and the legacy
 * stream format, read into tensor views; plus sl_torch_scan() for `silica scan`.
 * (The writer lives in torch_write.c.)
 *
 * Invariants:
 *  - data.pkl / the legacy object pickle is interpreted only by the allowlist
 *    unpickler (pickle.c); nothing is ever executed.
 *  - Storages are keyed by their opaque string key; every reference to a key
 *    must agree on type and numel; a storage's bytes (zip record or legacy
 *    blob) must be exactly numel x element size (checked arithmetic).
 *  - A tensor view (offset, size, stride in elements) is accepted only when
 *    offset + sum((size_i - 1) * stride_i) + 1 <= storage elements; tensors
 *    point into the mapping, nothing is copied.
 *  - Compressed or encrypted zip records are refused (torch.save writes STORED).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/checkpoint.h"
#include "formats/formats_impl.h"
#include "silica/torch.h"
#include "formats/pickle.h"
#include "formats/zip.h"

#define MAX_PKL_BYTES (64ull << 20)
#define MAX_DEPTH 64
#define MAX_VISITS (1u << 23)
#define MAX_NAME 4096

/* ------------------------------------------------------------------ */
/* storages                                                             */

typedef struct storage {
    const char *key;
    const sl_pkv *first;    /* the first reference (type, numel) */
    uint64_t esize;         /* bytes per storage element (1 for untyped) */
    uint64_t nbytes;
    const uint8_t *data;    /* NULL until resolved */
    uint64_t offset;        /* in the file */
    bool listed;            /* legacy: seen in the key list */
} storage;

typedef struct reader {
    sl_checkpoint *ck;
    const char *path;
    uint32_t file;
    const uint8_t *base;    /* the mapping */
    bool big_endian;
    storage *st;            /* sorted by key */
    size_t n_st;
    size_t visits;
    sl_error *err;
} reader;

/* torch element size of a dtype: float4_e2m1fn_x2 packs two values in one byte */
static uint64_t torch_esize(sl_dtype d) { return d == SL_F4 ? 1 : sl_dtype_size(d); }

static int cmp_pk_key(const void *a, const void *b) {
    const sl_pkv *x = *(sl_pkv *const *)a, *y = *(sl_pkv *const *)b;
    return strcmp(x->u.storage.key, y->u.storage.key);
}

static int build_storages(reader *R, const sl_pk_doc *doc, const char *where) {
    sl_pkv **refs;
    size_t n = sl_pk_storages(doc, &refs);
    if (!n) return 0;
    sl_pkv **sorted = malloc(n * sizeof *sorted);
    R->st = calloc(n, sizeof *R->st);
    if (!sorted || !R->st) { free(sorted); return sl_errorf(R->err, SL_ENOMEM, "out of memory"); }
    memcpy(sorted, refs, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_pk_key);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const sl_pkv *s = sorted[i];
        if (R->n_st && strcmp(R->st[R->n_st - 1].key, s->u.storage.key) == 0) {
            const sl_pkv *f = R->st[R->n_st - 1].first;
            if (f->u.storage.type_name != s->u.storage.type_name || f->u.storage.numel != s->u.storage.numel)
                rc = sl_errorf(R->err, SL_EINVAL,
                               "%s: storage '%s' is referenced both as %s of %lld and as %s of %lld elements", where,
                               s->u.storage.key, f->u.storage.type_name, (long long)f->u.storage.numel,
                               s->u.storage.type_name, (long long)s->u.storage.numel);
            continue;
        }
        storage *d = &R->st[R->n_st++];
        d->key = s->u.storage.key;
        d->first = s;
        if (s->u.storage.untyped) d->esize = 1;
        else if (s->u.storage.dtype == SL_DTYPE_INVALID)
            rc = sl_errorf(R->err, SL_EUNSUPPORTED, "%s: storage '%s': %s (quantized) is not supported", where,
                           d->key, s->u.storage.type_name);
        else d->esize = torch_esize(s->u.storage.dtype);
        if (!rc && !sl_mul_u64((uint64_t)s->u.storage.numel, d->esize, &d->nbytes))
            rc = sl_errorf(R->err, SL_EINVAL, "%s: storage '%s': numel %lld overflows", where, d->key,
                           (long long)s->u.storage.numel);
    }
    free(sorted);
    return rc;
}

static storage *find_storage(reader *R, const char *key) {
    size_t lo = 0, hi = R->n_st;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(R->st[mid].key, key);
        if (c == 0) return &R->st[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* object tree -> tensors (dotted names) and metadata                   */

static cJSON *to_json(reader *R, const sl_pkv *v, int depth, int *rc);

static int key_text(reader *R, const sl_pkv *k, const char *name, char *buf, size_t cap, const char **out) {
    switch (k->kind) {
    case SL_PK_STR: *out = k->u.str.s; return 0;
    case SL_PK_INT: snprintf(buf, cap, "%lld", (long long)k->u.i); *out = buf; return 0;
    case SL_PK_BOOL: *out = k->u.b ? "True" : "False"; return 0;
    case SL_PK_NONE: *out = "None"; return 0;
    default:
        return sl_errorf(R->err, SL_EUNSUPPORTED, "%s: dict key of type %s under '%s' is not supported", R->path,
                         sl_pk_kind_name(k->kind), name);
    }
}

static int visit(reader *R, int depth) {
    if (depth > MAX_DEPTH)
        return sl_errorf(R->err, SL_EINVAL, "%s: objects nested deeper than %d (cyclic?)", R->path, MAX_DEPTH);
    if (++R->visits > MAX_VISITS)
        return sl_errorf(R->err, SL_EINVAL, "%s: object graph larger than %u nodes", R->path, MAX_VISITS);
    return 0;
}

static cJSON *to_json(reader *R, const sl_pkv *v, int depth, int *rc) {
    if ((*rc = visit(R, depth))) return NULL;
    char kb[32];
    const char *ks = NULL;
    switch (v->kind) {
    case SL_PK_NONE: return cJSON_CreateNull();
    case SL_PK_BOOL: return cJSON_CreateBool(v->u.b);
    case SL_PK_INT: return cJSON_CreateNumber((double)v->u.i);
    case SL_PK_FLOAT: return cJSON_CreateNumber(v->u.f);
    case SL_PK_STR: return cJSON_CreateString(v->u.str.s);
    case SL_PK_GLOBAL: return cJSON_CreateString(v->u.glob.name);
    case SL_PK_STORAGE: return cJSON_CreateString(v->u.storage.type_name);
    case SL_PK_TENSOR: return cJSON_CreateString("<tensor>");
    case SL_PK_TUPLE: case SL_PK_LIST: case SL_PK_SET: {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < v->u.seq.n; i++) {
            cJSON *e = to_json(R, v->u.seq.v[i], depth + 1, rc);
            if (!e) { cJSON_Delete(a); return NULL; }
            cJSON_AddItemToArray(a, e);
        }
        return a;
    }
    case SL_PK_DICT: case SL_PK_ODICT: {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; o && i + 1 < v->u.seq.n; i += 2) {
            if ((*rc = key_text(R, v->u.seq.v[i], "metadata", kb, sizeof kb, &ks))) { cJSON_Delete(o); return NULL; }
            cJSON *e = to_json(R, v->u.seq.v[i + 1], depth + 1, rc);
            if (!e) { cJSON_Delete(o); return NULL; }
            cJSON_DeleteItemFromObjectCaseSensitive(o, ks);
            cJSON_AddItemToObject(o, ks, e);
        }
        return o;
    }
    }
    return NULL;
}

static int put_meta(reader *R, const char *name, const sl_pkv *v, int depth) {
    int rc = 0;
    cJSON *j = to_json(R, v, depth, &rc);
    if (!j) return rc ? rc : sl_errorf(R->err, SL_ENOMEM, "out of memory");
    const char *k = name[0] ? name : "value";
    cJSON_DeleteItemFromObjectCaseSensitive(R->ck->metadata, k);
    cJSON_AddItemToObject(R->ck->metadata, k, j);
    return 0;
}

static bool has_tensor(reader *R, const sl_pkv *v, int depth, int *rc) {
    if ((*rc = visit(R, depth))) return false;
    if (v->kind == SL_PK_TENSOR) return true;
    if (v->kind == SL_PK_TUPLE || v->kind == SL_PK_LIST || v->kind == SL_PK_DICT || v->kind == SL_PK_ODICT)
        for (size_t i = 0; i < v->u.seq.n; i++)
            if (has_tensor(R, v->u.seq.v[i], depth + 1, rc) || *rc) return !*rc;
    return false;
}

static int add_tensor(reader *R, const char *name, const sl_pk_tensor *T) {
    const char *nm = name[0] ? name : "tensor";
    if (T->dtype == SL_DTYPE_INVALID)
        return sl_errorf(R->err, SL_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not supported", R->path, nm,
                         T->dtype_name);
    storage *s = find_storage(R, T->storage->u.storage.key);
    if (!s || !s->data)
        return sl_errorf(R->err, SL_EINVAL, "%s: tensor '%s': storage '%s' has no data", R->path, nm,
                         T->storage->u.storage.key);
    uint64_t esz = torch_esize(T->dtype), elems = s->nbytes / esz;
    if (!s->first->u.storage.untyped && esz != s->esize)
        return sl_errorf(R->err, SL_EINVAL, "%s: tensor '%s': dtype %s does not match storage '%s' (%s)", R->path, nm,
                         T->dtype_name, s->key, s->first->u.storage.type_name);
    /* geometry: the furthest element must lie inside the storage */
    uint64_t numel = 1, extent = (uint64_t)T->offset, span;
    bool ok = true;
    for (int d = 0; d < T->ndim; d++) ok = ok && sl_mul_u64(numel, (uint64_t)T->size[d], &numel);
    if (ok && numel) {
        for (int d = 0; d < T->ndim && ok; d++)
            ok = sl_mul_u64((uint64_t)(T->size[d] - 1), (uint64_t)T->stride[d], &span) &&
                 sl_add_u64(extent, span, &extent);
        ok = ok && sl_add_u64(extent, 1, &extent);
    }
    if (!ok || extent > elems)
        return sl_errorf(R->err, SL_EINVAL,
                         "%s: tensor '%s': view (offset %lld, %d dims) reaches element %llu of storage '%s' which holds %llu",
                         R->path, nm, (long long)T->offset, T->ndim, (unsigned long long)extent, s->key,
                         (unsigned long long)elems);
    sl_tensor t;
    memset(&t, 0, sizeof t);
    t.name = (char *)nm;
    t.dtype = T->dtype;
    t.ndim = T->ndim;
    t.big_endian = R->big_endian && esz > 1;
    t.file = R->file;
    t.data = s->data + (uint64_t)T->offset * esz;   /* offset <= elems, so in range */
    t.offset = s->offset + (uint64_t)T->offset * esz;
    bool contiguous = true;
    int64_t expect = 1;
    for (int d = T->ndim - 1; d >= 0; d--) {
        t.shape[d] = T->size[d];
        t.strides[d] = T->stride[d];
        if (T->size[d] != 1 && T->stride[d] != expect) contiguous = false;
        expect *= T->size[d];
    }
    t.contiguous = contiguous || numel == 0;
    if (T->dtype == SL_F4) {   /* float4_e2m1fn_x2: one byte = two values along the last dim */
        if (!t.contiguous || T->ndim == 0)
            return sl_errorf(R->err, SL_EUNSUPPORTED, "%s: tensor '%s': strided or 0-d float4_e2m1fn_x2 views are not supported",
                             R->path, nm);
        t.shape[T->ndim - 1] *= 2;
    }
    return sl_checkpoint_add_tensor(R->ck, &t, R->err);
}

static int walk(reader *R, const sl_pkv *v, char *name, size_t len, int depth) {
    int rc = visit(R, depth);
    if (rc) return rc;
    char kb[32];
    const char *ks = NULL;
    switch (v->kind) {
    case SL_PK_TENSOR: return add_tensor(R, name, &v->u.tensor);
    case SL_PK_DICT: case SL_PK_ODICT:
        for (size_t i = 0; i + 1 < v->u.seq.n && !rc; i += 2) {
            if ((rc = key_text(R, v->u.seq.v[i], name, kb, sizeof kb, &ks))) break;
            size_t kl = strlen(ks), nl = len + (len ? 1 : 0) + kl;
            if (nl >= MAX_NAME)
                return sl_errorf(R->err, SL_EINVAL, "%s: tensor name under '%.64s' longer than %d", R->path, name,
                                 MAX_NAME);
            if (len) name[len] = '.';
            memcpy(name + nl - kl, ks, kl + 1);
            rc = walk(R, v->u.seq.v[i + 1], name, nl, depth + 1);
            name[len] = 0;
        }
        if (!rc && v->kind == SL_PK_ODICT && v->state) {
            size_t nl = len + (len ? 1 : 0) + 9;
            if (nl >= MAX_NAME) return sl_errorf(R->err, SL_EINVAL, "%s: name too long", R->path);
            snprintf(name + len, MAX_NAME - len, "%s_metadata", len ? "." : "");
            rc = put_meta(R, name, v->state->u.seq.v[1], depth + 1);
            name[len] = 0;
        }
        return rc;
    case SL_PK_TUPLE: case SL_PK_LIST: {
        bool any = has_tensor(R, v, depth, &rc);
        if (rc) return rc;
        if (!any) return put_meta(R, name, v, depth);
        for (size_t i = 0; i < v->u.seq.n && !rc; i++) {
            int w = snprintf(kb, sizeof kb, "%zu", i);
            size_t nl = len + (len ? 1 : 0) + (size_t)w;
            if (nl >= MAX_NAME) return sl_errorf(R->err, SL_EINVAL, "%s: name too long", R->path);
            if (len) name[len] = '.';
            memcpy(name + nl - (size_t)w, kb, (size_t)w + 1);
            rc = walk(R, v->u.seq.v[i], name, nl, depth + 1);
            name[len] = 0;
        }
        return rc;
    }
    default: return put_meta(R, name, v, depth);
    }
}

static int emit(reader *R, const sl_pkv *root) {
    char *name = calloc(1, MAX_NAME + 1);
    if (!name) return sl_errorf(R->err, SL_ENOMEM, "out of memory");
    int rc = walk(R, root, name, 0, 0);
    free(name);
    return rc;
}

/* ------------------------------------------------------------------ */
/* zip format                                                           */

static int small_record(reader *R, const sl_zip *z, const char *name, char *buf, size_t cap, bool *found) {
    const sl_zip_entry *e = sl_zip_find(z, name);
    *found = e != NULL;
    if (!e) return 0;
    const uint8_t *p;
    if (e->size >= cap)
        return sl_errorf(R->err, SL_EINVAL, "%s: record '%s' is %llu bytes, expected a short text", R->path, name,
                         (unsigned long long)e->size);
    int rc = sl_zip_view(z, e, &p, R->err);
    if (rc) return rc;
    memcpy(buf, p, (size_t)e->size);
    buf[e->size] = 0;
    return 0;
}

static int read_zip(reader *R, const sl_mapping *m) {
    sl_zip z;
    int rc = sl_zip_open(&z, R->path, m->data, m->size, R->err);
    if (rc) return rc;
    sl_pk_doc *doc = NULL;
    char *rec = NULL;
    char buf[64];
    if (z.n == 0) { rc = sl_errorf(R->err, SL_EINVAL, "%s: empty zip archive, expected a torch.save file", R->path); goto out; }
    const char *slash = strchr(z.entries[0].name, '/');
    if (!slash || slash == z.entries[0].name) {
        rc = sl_errorf(R->err, SL_EINVAL, "%s: zip entry '%s' is not in an archive folder (expected '<name>/data.pkl')",
                       R->path, z.entries[0].name);
        goto out;
    }
    size_t pl = (size_t)(slash - z.entries[0].name) + 1;   /* prefix incl. '/' */
    rec = malloc(pl + 96);
    if (!rec) { rc = sl_errorf(R->err, SL_ENOMEM, "out of memory"); goto out; }
    memcpy(rec, z.entries[0].name, pl);
    for (size_t i = 0; i < z.n; i++) {
        const sl_zip_entry *e = &z.entries[i];
        if (strncmp(e->name, rec, pl) != 0) {
            rc = sl_errorf(R->err, SL_EINVAL, "%s: zip entry '%s' is outside the archive folder '%.*s'", R->path, e->name,
                           (int)pl, rec);
            goto out;
        }
        if (e->method != 0) {
            rc = sl_errorf(R->err, SL_EUNSUPPORTED, "%s: record '%s' is compressed (method %u); torch.save writes only STORED records",
                           R->path, e->name, e->method);
            goto out;
        }
        if (strcmp(e->name + pl, "constants.pkl") == 0 || strncmp(e->name + pl, "code/", 5) == 0) {
            rc = sl_errorf(R->err, SL_EUNSUPPORTED, "%s: a TorchScript archive (record '%s'), not a torch.save checkpoint",
                           R->path, e->name);
            goto out;
        }
    }
    bool found;
    strcpy(rec + pl, ".data/version");
    if ((rc = small_record(R, &z, rec, buf, sizeof buf, &found))) goto out;
    if (!found) {
        strcpy(rec + pl, "version");
        if ((rc = small_record(R, &z, rec, buf, sizeof buf, &found))) goto out;
    }
    if (!found) { rc = sl_errorf(R->err, SL_EINVAL, "%s: record '%.*sversion' is missing", R->path, (int)pl, rec); goto out; }
    {
        char *end;
        long v = strtol(buf, &end, 10);
        if (end == buf || buf[0] < '0' || buf[0] > '9' || (*end && strcmp(end, "\n") != 0) || v < 1 || v > 10) {
            rc = sl_errorf(R->err, SL_EUNSUPPORTED, "%s: record '%s' holds '%.16s', expected a version 1..10", R->path, rec,
                           buf);
            goto out;
        }
    }
    strcpy(rec + pl, "byteorder");
    if ((rc = small_record(R, &z, rec, buf, sizeof buf, &found))) goto out;
    if (found) {
        if (strcmp(buf, "little") == 0) R->big_endian = false;
        else if (strcmp(buf, "big") == 0) R->big_endian = true;
        else {
            rc = sl_errorf(R->err, SL_EINVAL, "%s: record '%s' holds '%.16s', expected 'little' or 'big'", R->path, rec, buf);
            goto out;
        }
    }
    strcpy(rec + pl, "data.pkl");
    const sl_zip_entry *pe = sl_zip_find(&z, rec);
    if (!pe) { rc = sl_errorf(R->err, SL_EINVAL, "%s: record '%s' is missing", R->path, rec); goto out; }
    if (pe->size > MAX_PKL_BYTES) {
        rc = sl_errorf(R->err, SL_EINVAL, "%s: record '%s' is %llu bytes (limit %llu)", R->path, rec,
                       (unsigned long long)pe->size, MAX_PKL_BYTES);
        goto out;
    }
    const uint8_t *pk;
    if ((rc = sl_zip_view(&z, pe, &pk, R->err))) goto out;
    char *wh = malloc(strlen(R->path) + 16);
    if (!wh) { rc = sl_errorf(R->err, SL_ENOMEM, "out of memory"); goto out; }
    sprintf(wh, "%s: data.pkl", R->path);
    sl_pkv *root;
    size_t used;
    rc = sl_pk_load(pk, (size_t)pe->size, wh, &doc, &root, &used, R->err);
    if (!rc && used != pe->size)
        rc = sl_errorf(R->err, SL_EINVAL, "%s: %llu trailing bytes after STOP", wh, (unsigned long long)(pe->size - used));
    if (!rc) rc = build_storages(R, doc, wh);
    free(wh);
    if (rc) goto out;
    for (size_t i = 0; i < R->n_st; i++) {
        storage *s = &R->st[i];
        snprintf(rec + pl, 96, "data/%s", s->key);
        const sl_zip_entry *e = sl_zip_find(&z, rec);
        if (!e) { rc = sl_errorf(R->err, SL_EINVAL, "%s: record '%s' for storage '%s' is missing", R->path, rec, s->key); goto out; }
        if (e->size != s->nbytes) {
            rc = sl_errorf(R->err, SL_EINVAL, "%s: record '%s' is %llu bytes but storage '%s' (%s x %lld) needs %llu",
                           R->path, rec, (unsigned long long)e->size, s->key, s->first->u.storage.type_name,
                           (long long)s->first->u.storage.numel, (unsigned long long)s->nbytes);
            goto out;
        }
        if ((rc = sl_zip_view(&z, e, &s->data, R->err))) goto out;
        s->offset = e->data_offset;
    }
    rc = emit(R, root);
out:
    sl_pk_free(doc);
    free(rec);
    sl_zip_close(&z);
    return rc;
}

/* ------------------------------------------------------------------ */
/* legacy format                                                        */

static const uint8_t k_legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                         0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

static const sl_pkv *dict_get(const sl_pkv *d, const char *key) {
    if (d->kind != SL_PK_DICT && d->kind != SL_PK_ODICT) return NULL;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2)
        if (d->u.seq.v[i]->kind == SL_PK_STR && strcmp(d->u.seq.v[i]->u.str.s, key) == 0) return d->u.seq.v[i + 1];
    return NULL;
}

/* Load the next small pickle of the legacy stream at *pos. */
static int next_pickle(reader *R, const sl_mapping *m, uint64_t *pos, int idx, sl_pk_doc **doc, sl_pkv **root) {
    char where[64 + 512];
    snprintf(where, sizeof where, "%.512s: pickle %d", R->path, idx);
    size_t used;
    int rc = sl_pk_load(m->data + *pos, (size_t)(m->size - *pos), where, doc, root, &used, R->err);
    if (!rc) *pos += used;
    return rc;
}

static int read_legacy(reader *R, const sl_mapping *m) {
    if (m->size < sizeof k_legacy_magic || memcmp(m->data, k_legacy_magic, sizeof k_legacy_magic) != 0)
        return sl_errorf(R->err, SL_EINVAL, "%s: not a torch.save file (no zip signature and no legacy magic number)",
                         R->path);
    uint64_t pos = sizeof k_legacy_magic;
    sl_pk_doc *d2 = NULL, *d3 = NULL, *obj = NULL, *d5 = NULL;
    sl_pkv *v, *root, *keys;
    int rc = next_pickle(R, m, &pos, 2, &d2, &v);
    if (!rc && (v->kind != SL_PK_INT || v->u.i != 1001))
        rc = sl_errorf(R->err, SL_EUNSUPPORTED, "%s: legacy protocol version is not 1001", R->path);
    if (!rc) rc = next_pickle(R, m, &pos, 3, &d3, &v);
    if (!rc) {
        const sl_pkv *le = dict_get(v, "little_endian");
        if (!le || le->kind != SL_PK_BOOL)
            rc = sl_errorf(R->err, SL_EINVAL, "%s: legacy sys_info has no boolean 'little_endian'", R->path);
        else R->big_endian = !le->u.b;
    }
    if (!rc) rc = next_pickle(R, m, &pos, 4, &obj, &root);
    if (!rc) rc = build_storages(R, obj, R->path);
    if (!rc) rc = next_pickle(R, m, &pos, 5, &d5, &keys);
    if (!rc && keys->kind != SL_PK_LIST)
        rc = sl_errorf(R->err, SL_EINVAL, "%s: legacy storage key list is a %s, expected a list", R->path,
                       sl_pk_kind_name(keys->kind));
    for (size_t i = 0; !rc && i < keys->u.seq.n; i++) {
        const sl_pkv *k = keys->u.seq.v[i];
        storage *s = k->kind == SL_PK_STR ? find_storage(R, k->u.str.s) : NULL;
        if (!s || s->listed) {
            rc = sl_errorf(R->err, SL_EINVAL, "%s: legacy storage key list entry %zu is %s", R->path, i,
                           s ? "a duplicate" : "not a storage the object references");
            break;
        }
        s->listed = true;
        if (m->size - pos < 8) { rc = sl_errorf(R->err, SL_EINVAL, "%s: storage '%s': truncated before its size", R->path, s->key); break; }
        uint64_t n = 0;
        for (int b = 0; b < 8; b++)
            n |= (uint64_t)m->data[pos + (uint64_t)(R->big_endian ? 7 - b : b)] << (8 * b);
        pos += 8;
        if (n != (uint64_t)s->first->u.storage.numel) {
            rc = sl_errorf(R->err, SL_EINVAL, "%s: storage '%s': stored numel %llu, but the pickle declares %lld", R->path,
                           s->key, (unsigned long long)n, (long long)s->first->u.storage.numel);
            break;
        }
        if (s->nbytes > m->size - pos) {
            rc = sl_errorf(R->err, SL_EINVAL, "%s: storage '%s': %llu bytes run past the end of the file", R->path, s->key,
                           (unsigned long long)s->nbytes);
            break;
        }
        s->data = m->data + pos;
        s->offset = pos;
        pos += s->nbytes;
    }
    for (size_t i = 0; !rc && i < R->n_st; i++)
        if (!R->st[i].listed)
            rc = sl_errorf(R->err, SL_EINVAL, "%s: storage '%s' is missing from the legacy key list", R->path, R->st[i].key);
    if (!rc && pos != m->size)
        rc = sl_errorf(R->err, SL_EINVAL, "%s: %llu trailing bytes after the last storage", R->path,
                       (unsigned long long)(m->size - pos));
    if (!rc) rc = emit(R, root);
    sl_pk_free(d2);
    sl_pk_free(d3);
    sl_pk_free(obj);
    sl_pk_free(d5);
    return rc;
}

int sl_torch_read(sl_checkpoint *ck, const char *path, sl_error *err) {
    sl_mapping *m;
    int rc = sl_map_file(path, &m, err);
    if (rc) return rc;
    if ((rc = sl_checkpoint_add_map(ck, m, err))) return rc;
    reader R = {.ck = ck, .path = path, .base = m->data, .err = err};
    if ((rc = sl_checkpoint_add_file(ck, path, &R.file, err))) return rc;
    if (m->size >= 4 && (memcmp(m->data, "PK\x03\x04", 4) == 0 || memcmp(m->data, "PK\x05\x06", 4) == 0))
        rc = read_zip(&R, m);
    else
        rc = read_legacy(&R, m);
    free(R.st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* scan                                                                 */

typedef struct scan_ctx {
    sl_pickle_import imp;
    sl_pickle_import_fn fn;
    void *ud;
} scan_ctx;

static int scan_cb(void *ud, const char *module, const char *name, const char *via, size_t offset) {
    scan_ctx *S = ud;
    S->imp.module = module;
    S->imp.name = name;
    S->imp.via = via;
    S->imp.offset = offset;
    S->imp.allowed = strcmp(via, "GLOBAL") == 0 && sl_pk_global_allowed(module, name);
    return S->fn(S->ud, &S->imp);
}

/* Scan pickles back to back from data; legacy: at most `max` of them. */
static int scan_stream(scan_ctx *S, const uint8_t *data, uint64_t size, int max, const char *label, sl_error *err) {
    uint64_t pos = 0;
    char where[600], pname[64];
    for (int k = 1; pos < size && (max == 0 || k <= max); k++) {
        if (label[0]) snprintf(pname, sizeof pname, "%s", label);
        else snprintf(pname, sizeof pname, "pickle %d", k);
        snprintf(where, sizeof where, "%.500s: %s", S->imp.file, pname);
        S->imp.pickle = pname;
        size_t used;
        int rc = sl_pk_scan(data + pos, (size_t)(size - pos), where, scan_cb, S, &used, err);
        if (rc) return rc;
        pos += used;
    }
    return 0;
}

int sl_torch_scan(const char *path, sl_pickle_import_fn fn, void *ud, sl_error *err) {
    sl_mapping *m;
    int rc = sl_map_file(path, &m, err);
    if (rc) return rc;
    scan_ctx S = {.fn = fn, .ud = ud};
    S.imp.file = path;
    if (m->size >= 4 && (memcmp(m->data, "PK\x03\x04", 4) == 0 || memcmp(m->data, "PK\x05\x06", 4) == 0)) {
        sl_zip z;
        rc = sl_zip_open(&z, path, m->data, m->size, err);
        for (size_t i = 0; !rc && i < z.n; i++) {
            const sl_zip_entry *e = &z.entries[i];
            if (!sl_str_ends_with(e->name, ".pkl")) continue;
            const uint8_t *p;
            uint8_t *owned = NULL;
            rc = sl_zip_read(&z, e, MAX_PKL_BYTES, &p, &owned, err);
            if (!rc) {
                const char *label = strchr(e->name, '/') ? strchr(e->name, '/') + 1 : e->name;
                rc = scan_stream(&S, p, e->size, 0, label, err);
            }
            free(owned);
        }
        sl_zip_close(&z);
    } else if (m->size >= sizeof k_legacy_magic && memcmp(m->data, k_legacy_magic, sizeof k_legacy_magic) == 0) {
        rc = scan_stream(&S, m->data, m->size, 5, "", err);
    } else if (m->size >= 2 && m->data[0] == 0x80) {
        rc = scan_stream(&S, m->data, m->size, 0, "", err);
    } else {
        rc = sl_errorf(err, SL_EINVAL, "%s: not a torch.save file or pickle (no zip signature, no PROTO opcode)", path);
    }
    sl_unmap(m);
    return rc;
}
