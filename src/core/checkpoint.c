/*
 * checkpoint.c — the in-memory checkpoint: tensors (views into mappings),
 * source files, metadata; building helpers used by every format reader;
 * strided / byte-swapped / dtype-converting reads.
 *
 * Invariants:
 *  - A tensor is only added after its byte range was checked to lie inside
 *    its mapping (the readers do this) and its numel/nbytes computed with
 *    overflow checks (done here).
 *  - Names are unique: a hash set over the names rejects duplicates.
 */
#include "silica/checkpoint.h"
#include "core/checkpoint_build.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- name hash set (open addressing over tensor indices) ---- */
typedef struct name_index {
    size_t cap;      /* power of two */
    uint32_t *slot;  /* tensor index + 1; 0 = empty */
} name_index;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    while (*s) { h ^= (uint8_t)*s++; h *= 1099511628211ull; }
    return h;
}

static int index_rebuild(sl_checkpoint *ck, size_t want) {
    name_index *ix = ck->name_index;
    if (!ix) {
        ix = calloc(1, sizeof *ix);
        if (!ix) return -1;
        ck->name_index = ix;
    }
    size_t cap = 64;
    while (cap < want * 2) cap <<= 1;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        size_t h = (size_t)hash_str(ck->tensors[i].name) & (cap - 1);
        while (slot[h]) h = (h + 1) & (cap - 1);
        slot[h] = (uint32_t)(i + 1);
    }
    return 0;
}

static long index_find(const sl_checkpoint *ck, const char *name) {
    const name_index *ix = ck->name_index;
    if (!ix || !ix->cap) return -1;
    size_t h = (size_t)hash_str(name) & (ix->cap - 1);
    while (ix->slot[h]) {
        uint32_t i = ix->slot[h] - 1;
        if (strcmp(ck->tensors[i].name, name) == 0) return (long)i;
        h = (h + 1) & (ix->cap - 1);
    }
    return -1;
}

/* ---- lifecycle ---- */

const char *sl_format_name(sl_format f) {
    switch (f) {
    case SL_FMT_SAFETENSORS: return "safetensors";
    case SL_FMT_TORCH: return "torch";
    case SL_FMT_TORCH_LEGACY: return "torch-legacy";
    case SL_FMT_NPY: return "npy";
    case SL_FMT_NPZ: return "npz";
    case SL_FMT_GGUF: return "gguf";
    default: return "unknown";
    }
}

sl_checkpoint *sl_checkpoint_new(sl_format fmt, const char *path) {
    sl_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck) return NULL;
    ck->format = fmt;
    ck->path = strdup(path ? path : "");
    ck->metadata = cJSON_CreateObject();
    if (!ck->path || !ck->metadata) {
        sl_checkpoint_close(ck);
        return NULL;
    }
    return ck;
}

void sl_checkpoint_close(sl_checkpoint *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->n_tensors; i++) free(ck->tensors[i].name);
    free(ck->tensors);
    for (size_t i = 0; i < ck->n_files; i++) free(ck->files[i]);
    free(ck->files);
    for (size_t i = 0; i < ck->n_maps; i++) sl_unmap(ck->maps[i]);
    free(ck->maps);
    for (size_t i = 0; i < ck->n_owned; i++) free(ck->owned[i]);
    free(ck->owned);
    cJSON_Delete(ck->metadata);
    cJSON_Delete(ck->config);
    if (ck->name_index) free(((name_index *)ck->name_index)->slot);
    free(ck->name_index);
    free(ck->path);
    free(ck);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, nc * elem);
    if (!p) return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

int sl_checkpoint_add_file(sl_checkpoint *ck, const char *path, uint32_t *index, sl_error *err) {
    for (size_t i = 0; i < ck->n_files; i++)
        if (strcmp(ck->files[i], path) == 0) { *index = (uint32_t)i; return 0; }
    if (grow((void **)&ck->files, &ck->cap_files, ck->n_files, sizeof(char *)))
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    ck->files[ck->n_files] = strdup(path);
    *index = (uint32_t)ck->n_files++;
    return 0;
}

int sl_checkpoint_add_map(sl_checkpoint *ck, sl_mapping *m, sl_error *err) {
    if (grow((void **)&ck->maps, &ck->cap_maps, ck->n_maps, sizeof(sl_mapping *))) {
        sl_unmap(m);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    ck->maps[ck->n_maps++] = m;
    return 0;
}

int sl_checkpoint_own(sl_checkpoint *ck, void *ptr, sl_error *err) {
    if (grow((void **)&ck->owned, &ck->cap_owned, ck->n_owned, sizeof(void *))) {
        free(ptr);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    ck->owned[ck->n_owned++] = ptr;
    return 0;
}

int sl_checkpoint_add_tensor(sl_checkpoint *ck, const sl_tensor *t, sl_error *err) {
    const char *file = t->file < ck->n_files ? ck->files[t->file] : ck->path;
    if (!t->name) return sl_errorf(err, SL_EINVAL, "%s: tensor without a name", file);
    if (!sl_dtype_get(t->dtype)) return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': invalid dtype", file, t->name);
    if (t->ndim < 0 || t->ndim > SL_MAX_DIMS)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d supported)", file, t->name,
                         t->ndim, SL_MAX_DIMS);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': negative dimension %lld", file, t->name,
                             (long long)t->shape[d]);
        if (!sl_mul_u64(numel, (uint64_t)t->shape[d], &numel))
            return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': shape overflows 64 bits", file, t->name);
    }
    uint64_t nbytes;
    if (!sl_dtype_nbytes(t->dtype, numel, &nbytes))
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s': %llu elements is not a whole number of %s blocks or overflows",
                         file, t->name, (unsigned long long)numel, sl_dtype_name(t->dtype));
    if (index_find(ck, t->name) >= 0)
        return sl_errorf(err, SL_EINVAL, "%s: duplicate tensor name '%s'", file, t->name);
    if (grow((void **)&ck->tensors, &ck->cap_tensors, ck->n_tensors, sizeof(sl_tensor)))
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    sl_tensor *d = &ck->tensors[ck->n_tensors];
    *d = *t;
    d->name = strdup(t->name);
    if (!d->name) return sl_errorf(err, SL_ENOMEM, "out of memory");
    d->numel = numel;
    d->nbytes = nbytes;
    if (d->contiguous) {
        int64_t s = 1;
        for (int k = d->ndim - 1; k >= 0; k--) {
            d->strides[k] = s;
            s *= d->shape[k] ? d->shape[k] : 1;
        }
    }
    ck->n_tensors++;
    name_index *ix = ck->name_index;
    if (!ix || ck->n_tensors * 2 > ix->cap) {
        if (index_rebuild(ck, ck->n_tensors)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    } else {
        size_t h = (size_t)hash_str(d->name) & (ix->cap - 1);
        while (ix->slot[h]) h = (h + 1) & (ix->cap - 1);
        ix->slot[h] = (uint32_t)ck->n_tensors;
    }
    return 0;
}

const sl_tensor *sl_checkpoint_find(const sl_checkpoint *ck, const char *name) {
    long i = index_find(ck, name);
    return i < 0 ? NULL : &ck->tensors[i];
}

void sl_checkpoint_release(const sl_checkpoint *ck, const sl_tensor *t) {
    for (size_t i = 0; i < ck->n_maps; i++) {
        const sl_mapping *m = ck->maps[i];
        if (m->data && t->data >= m->data && t->data < m->data + m->size) {
            uint64_t off = (uint64_t)(t->data - m->data);
            uint64_t len = t->contiguous ? t->nbytes : m->size - off;
            sl_mapping_dontneed(m, off, len);
            return;
        }
    }
}

uint64_t sl_tensor_numel(const sl_tensor *t) { return t->numel; }

/* ---- reading elements ---- */

static void bswap_elems(uint8_t *p, size_t n, size_t esz) {
    for (size_t i = 0; i < n; i++, p += esz)
        for (size_t a = 0, b = esz - 1; a < b; a++, b--) {
            uint8_t x = p[a];
            p[a] = p[b];
            p[b] = x;
        }
}

int sl_tensor_read(const sl_tensor *t, uint64_t first, uint64_t count, sl_dtype dst_dtype, void *dst, sl_error *err) {
    if (first > t->numel || count > t->numel - first)
        return sl_errorf(err, SL_EINVAL, "tensor '%s': read of [%llu,+%llu) past %llu elements", t->name,
                         (unsigned long long)first, (unsigned long long)count, (unsigned long long)t->numel);
    if (count == 0) return 0;
    size_t esz = sl_dtype_size(t->dtype);
    if (esz == 0) {
        /* packed / quantized: raw bytes only, whole blocks */
        const sl_dtype_info *in = sl_dtype_get(t->dtype);
        if (dst_dtype != t->dtype || !t->contiguous || t->big_endian || first % in->block_elems ||
            count % in->block_elems)
            return sl_errorf(err, SL_EUNSUPPORTED, "tensor '%s': %s can only be copied as whole raw blocks", t->name,
                             in->name);
        memcpy(dst, t->data + first / in->block_elems * in->block_bytes, count / in->block_elems * in->block_bytes);
        return 0;
    }
    if (!sl_convert_supported(t->dtype, dst_dtype))
        return sl_errorf(err, SL_EUNSUPPORTED, "tensor '%s': cannot convert %s to %s", t->name,
                         sl_dtype_name(t->dtype), sl_dtype_name(dst_dtype));
    size_t dsz = sl_dtype_size(dst_dtype);
    uint8_t *out = dst;
    /* In place only when aligned for the element type: safetensors written by
     * MLX (no header padding) and npz members put data at any byte offset, and
     * the bulk converters read whole elements.  Otherwise gather below (memcpy). */
    if (t->contiguous && !t->big_endian && (uintptr_t)(t->data + first * esz) % esz == 0) {
        sl_convert(t->dtype, t->data + first * esz, dst_dtype, out, (size_t)count);
        return 0;
    }
    /* gather in chunks of source elements, swap bytes if needed, convert */
    enum { CHUNK = 16384 };
    uint8_t *tmp = malloc(CHUNK * esz);
    if (!tmp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int64_t idx[SL_MAX_DIMS] = {0};
    uint64_t rem = first;
    for (int d = t->ndim - 1; d >= 0; d--) {
        uint64_t s = (uint64_t)(t->shape[d] ? t->shape[d] : 1);
        idx[d] = (int64_t)(rem % s);
        rem /= s;
    }
    uint64_t done = 0;
    while (done < count) {
        size_t n = count - done > CHUNK ? CHUNK : (size_t)(count - done);
        if (t->contiguous) {
            memcpy(tmp, t->data + (first + done) * esz, n * esz);
        } else {
            for (size_t k = 0; k < n; k++) {
                int64_t off = 0;
                for (int d = 0; d < t->ndim; d++) off += idx[d] * t->strides[d];
                memcpy(tmp + k * esz, t->data + off * (int64_t)esz, esz);
                for (int d = t->ndim - 1; d >= 0; d--) {
                    if (++idx[d] < t->shape[d]) break;
                    idx[d] = 0;
                }
            }
        }
        if (t->big_endian && esz > 1) {
            size_t part = (t->dtype == SL_C64 || t->dtype == SL_C128) ? esz / 2 : esz;
            bswap_elems(tmp, n * (esz / part), part);
        }
        sl_convert(t->dtype, tmp, dst_dtype, out + done * dsz, n);
        done += n;
    }
    free(tmp);
    return 0;
}
