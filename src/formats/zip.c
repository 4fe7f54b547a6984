/*
 * zip.c — ZIP reader (central directory first, zip64 aware, bounded inflate)
 * and streaming STORED writer.  See zip.h for the contract.
 *
 * Invariants (reader):
 *  - Every field is read through rd16/rd32/rd64 at an offset that was checked
 *    to lie inside [0, size) with overflow-checked arithmetic first.
 *  - The central directory must end exactly where the (zip64) end record
 *    starts, and the end record must end at EOF (no prefix/trailing junk).
 *  - An entry's data [data_offset, data_offset+comp_size) lies before the
 *    central directory; STORED entries have comp_size == size.
 *  - Inflate writes at most `size` bytes; more output, less output or input
 *    past comp_size is an error (zip bombs stop at the declared size).
 * Invariants (writer):
 *  - Entries are written one at a time; sizes are known up front, so only the
 *    CRC is patched (pwrite) into the local header at sl_zipw_end().
 */
#include "formats/zip.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define U32_MAX_ 0xFFFFFFFFu

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* [off, off+len) inside [0, size)? */
static bool in_range(uint64_t size, uint64_t off, uint64_t len) {
    uint64_t end;
    return sl_add_u64(off, len, &end) && end <= size;
}

static uint32_t crc_of(const uint8_t *p, uint64_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

void sl_zip_close(sl_zip *z) {
    if (!z) return;
    for (size_t i = 0; i < z->n; i++) free(z->entries[i].name);
    free(z->entries);
    free(z->by_name);
    z->entries = NULL;
    z->by_name = NULL;
    z->n = 0;
}

static bool bad_name(const char *s, size_t len) {
    if (len == 0 || s[0] == '/' || s[0] == '\\' || memchr(s, 0, len)) return true;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != '/' && s[j] != '\\') j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') return true;
        i = j + 1;
    }
    return false;
}

/* qsort context-free: sort indices by name through a file-static pointer is not
 * reentrant, so sort an array of (name, index) pairs instead. */
typedef struct name_ref {
    const char *name;
    size_t idx;
} name_ref;
static int cmp_ref(const void *a, const void *b) {
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

/* Locate the end records; fill cd offset/size and entry count. */
static int find_end(const sl_zip *z, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count, sl_error *err) {
    const uint8_t *d = z->data;
    if (z->size < 22) return sl_errorf(err, SL_EINVAL, "%s: %llu bytes, too small to be a zip archive", z->path, (unsigned long long)z->size);
    uint64_t lo = z->size > 22 + 65535 ? z->size - 22 - 65535 : 0;
    uint64_t eocd = UINT64_MAX;
    for (uint64_t p = z->size - 22 + 1; p-- > lo;) {
        if (rd32(d + p) == SIG_EOCD && p + 22 + rd16(d + p + 20) == z->size) { eocd = p; break; }
    }
    if (eocd == UINT64_MAX)
        return sl_errorf(err, SL_EINVAL, "%s: zip end-of-central-directory record not found (truncated or not a zip)", z->path);
    const uint8_t *e = d + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: multi-disk zip archives are not supported", z->path);
    uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
    uint64_t size = rd32(e + 12), off = rd32(e + 16);
    uint64_t cd_end = eocd;   /* where the central directory must end */
    if (eocd >= 20 && rd32(d + eocd - 20) == SIG_LOC64) {
        const uint8_t *l = d + eocd - 20;
        uint64_t z64 = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: multi-disk zip64 archives are not supported", z->path);
        if (!in_range(eocd - 20, z64, 56) || rd32(d + z64) != SIG_EOCD64)
            return sl_errorf(err, SL_EINVAL, "%s: zip64 end record missing at offset %llu", z->path, (unsigned long long)z64);
        const uint8_t *r = d + z64;
        uint64_t rec = rd64(r + 4);
        if (rec < 44 || rec > z->size || !in_range(eocd - 20, z64, rec + 12) || z64 + 12 + rec != eocd - 20)
            return sl_errorf(err, SL_EINVAL, "%s: zip64 end record has a bad size %llu", z->path, (unsigned long long)rec);
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: multi-disk zip archives are not supported", z->path);
        n_disk = rd64(r + 24);
        n_total = rd64(r + 32);
        size = rd64(r + 40);
        off = rd64(r + 48);
        cd_end = z64;
    } else if (n_total == 0xFFFF || size == U32_MAX_ || off == U32_MAX_) {
        return sl_errorf(err, SL_EINVAL, "%s: zip end record needs zip64 but the zip64 locator is missing", z->path);
    }
    if (n_disk != n_total)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry counts disagree (%llu vs %llu)", z->path,
                         (unsigned long long)n_disk, (unsigned long long)n_total);
    uint64_t end;
    if (!sl_add_u64(off, size, &end) || end != cd_end)
        return sl_errorf(err, SL_EINVAL, "%s: zip central directory [%llu,+%llu) does not end at its end record (%llu)",
                         z->path, (unsigned long long)off, (unsigned long long)size, (unsigned long long)cd_end);
    if (n_total > size / 46)
        return sl_errorf(err, SL_EINVAL, "%s: zip claims %llu entries in a %llu-byte central directory", z->path,
                         (unsigned long long)n_total, (unsigned long long)size);
    *cd_off = off;
    *cd_size = size;
    *count = n_total;
    return 0;
}

/* Zip64 extra of a central entry: replaces the fields saturated at 0xFFFFFFFF. */
static int read_zip64_extra(const sl_zip *z, const char *name, const uint8_t *x, uint32_t xlen, uint64_t *usize,
                            uint64_t *csize, uint64_t *lh, bool need_disk, sl_error *err) {
    bool nu = *usize == U32_MAX_, nc = *csize == U32_MAX_, nl = *lh == U32_MAX_;
    uint32_t p = 0;
    while (p + 4 <= xlen) {
        uint16_t id = rd16(x + p), len = rd16(x + p + 2);
        if (p + 4 + (uint32_t)len > xlen) break;
        if (id == 0x0001) {
            uint32_t need = 8u * ((uint32_t)nu + nc + nl) + (need_disk ? 4u : 0u);
            if (len < need)
                return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': zip64 extra is %u bytes, %u needed", z->path, name,
                                 len, need);
            const uint8_t *q = x + p + 4;
            if (nu) { *usize = rd64(q); q += 8; }
            if (nc) { *csize = rd64(q); q += 8; }
            if (nl) { *lh = rd64(q); }
            return 0;
        }
        p += 4u + len;
    }
    if (nu || nc || nl || need_disk)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': saturated size/offset without a zip64 extra", z->path, name);
    return 0;
}

static int parse_entry(sl_zip *z, uint64_t *pos, uint64_t cd_end, sl_zip_entry *out, sl_error *err) {
    const uint8_t *d = z->data;
    uint64_t p = *pos;
    if (!in_range(cd_end, p, 46) || rd32(d + p) != SIG_CENTRAL)
        return sl_errorf(err, SL_EINVAL, "%s: zip central directory entry %zu is corrupt (offset %llu)", z->path, z->n,
                         (unsigned long long)p);
    const uint8_t *c = d + p;
    uint16_t flags = rd16(c + 8), method = rd16(c + 10);
    uint32_t crc = rd32(c + 16);
    uint64_t csize = rd32(c + 20), usize = rd32(c + 24);
    uint32_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    uint16_t disk = rd16(c + 34);
    uint64_t lh = rd32(c + 42);
    uint64_t total = 46ull + nlen + xlen + clen;
    if (!in_range(cd_end, p, total))
        return sl_errorf(err, SL_EINVAL, "%s: zip central directory entry %zu runs past the directory", z->path, z->n);
    const char *nm = (const char *)c + 46;
    char *name = malloc(nlen + 1u);
    if (!name) return sl_errorf(err, SL_ENOMEM, "out of memory");
    memcpy(name, nm, nlen);
    name[nlen] = 0;
    out->name = name;   /* owned by out from here (freed by the caller on error) */
    if (bad_name(nm, nlen))
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': unsafe or empty name (absolute, '..' or NUL)", z->path, name);
    int rc = read_zip64_extra(z, name, c + 46 + nlen, xlen, &usize, &csize, &lh, disk == 0xFFFF, err);
    if (rc) return rc;
    if (disk != 0 && disk != 0xFFFF)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: zip entry '%s' is on another disk", z->path, name);
    if (flags & 0x0041)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: zip entry '%s' is encrypted", z->path, name);
    if (method != 0 && method != 8)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: zip entry '%s': compression method %u not supported (only STORED, DEFLATE)",
                         z->path, name, method);
    if (method == 0 && csize != usize)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': STORED but compressed size %llu != size %llu", z->path, name,
                         (unsigned long long)csize, (unsigned long long)usize);
    /* local header */
    if (!in_range(z->size, lh, 30) || rd32(d + lh) != SIG_LOCAL)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': no local header at offset %llu", z->path, name,
                         (unsigned long long)lh);
    const uint8_t *l = d + lh;
    uint32_t lnlen = rd16(l + 26), lxlen = rd16(l + 28);
    if (rd16(l + 6) & 0x0041)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: zip entry '%s' is encrypted", z->path, name);
    if (rd16(l + 8) != method)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': local header method %u != central %u", z->path, name,
                         rd16(l + 8), method);
    if (lnlen != nlen || !in_range(z->size, lh + 30, lnlen) || memcmp(l + 30, nm, nlen) != 0)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': local header names a different file", z->path, name);
    uint64_t doff = lh + 30 + lnlen + lxlen, dend;
    if (!sl_add_u64(doff, csize, &dend) || dend > z->size)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': data [%llu,+%llu) runs past the archive", z->path, name,
                         (unsigned long long)doff, (unsigned long long)csize);
    out->method = method;
    out->flags = flags;
    out->crc32 = crc;
    out->comp_size = csize;
    out->size = usize;
    out->local_offset = lh;
    out->data_offset = doff;
    *pos = p + total;
    return 0;
}

int sl_zip_open(sl_zip *z, const char *path, const uint8_t *data, uint64_t size, sl_error *err) {
    memset(z, 0, sizeof *z);
    z->path = path;
    z->data = data;
    z->size = data ? size : 0;
    uint64_t cd_off = 0, cd_size = 0, count = 0;
    int rc = find_end(z, &cd_off, &cd_size, &count, err);
    if (rc) return rc;
    z->entries = calloc(count ? count : 1, sizeof *z->entries);
    z->by_name = calloc(count ? count : 1, sizeof *z->by_name);
    name_ref *refs = calloc(count ? count : 1, sizeof *refs);
    if (!z->entries || !z->by_name || !refs) {
        free(refs);
        sl_zip_close(z);
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory for %llu zip entries", path, (unsigned long long)count);
    }
    uint64_t pos = cd_off, cd_end = cd_off + cd_size;
    for (uint64_t i = 0; i < count && !rc; i++) {
        rc = parse_entry(z, &pos, cd_end, &z->entries[z->n], err);
        z->n++;   /* so a partly parsed entry's name is freed */
        if (!rc && z->entries[z->n - 1].data_offset + z->entries[z->n - 1].comp_size > cd_off)
            rc = sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': data overlaps the central directory", path,
                           z->entries[z->n - 1].name);
    }
    if (!rc && pos != cd_end)
        rc = sl_errorf(err, SL_EINVAL, "%s: zip central directory has %llu bytes after its %llu entries", path,
                       (unsigned long long)(cd_end - pos), (unsigned long long)count);
    if (!rc) {
        for (size_t i = 0; i < z->n; i++) refs[i] = (name_ref){z->entries[i].name, i};
        qsort(refs, z->n, sizeof *refs, cmp_ref);
        for (size_t i = 0; i < z->n; i++) {
            z->by_name[i] = refs[i].idx;
            if (i && strcmp(refs[i - 1].name, refs[i].name) == 0) {
                rc = sl_errorf(err, SL_EINVAL, "%s: duplicate zip entry '%s'", path, refs[i].name);
                break;
            }
        }
    }
    free(refs);
    if (rc) sl_zip_close(z);
    return rc;
}

const sl_zip_entry *sl_zip_find(const sl_zip *z, const char *name) {
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sl_zip_entry *e = &z->entries[z->by_name[mid]];
        int c = strcmp(e->name, name);
        if (c == 0) return e;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int sl_zip_view(const sl_zip *z, const sl_zip_entry *e, const uint8_t **data, sl_error *err) {
    if (e->method != 0)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: zip entry '%s' is compressed (method %u), expected STORED", z->path,
                         e->name, e->method);
    *data = z->data + e->data_offset;   /* range checked at open */
    return 0;
}

int sl_zip_verify(const sl_zip *z, const sl_zip_entry *e, sl_error *err) {
    const uint8_t *p = NULL;
    int rc = sl_zip_view(z, e, &p, err);
    if (rc) return rc;
    uint32_t c = crc_of(p, e->size);
    if (c != e->crc32)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': CRC-32 %08x, expected %08x (corrupt data)", z->path, e->name,
                         c, e->crc32);
    return 0;
}

static int inflate_entry(const sl_zip *z, const sl_zip_entry *e, uint8_t *out, sl_error *err) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return sl_errorf(err, SL_ENOMEM, "%s: zlib init failed", z->path);
    const uint8_t *in = z->data + e->data_offset;
    uint64_t in_left = e->comp_size, out_left = e->size;
    int zr = Z_OK;
    uint8_t spill;   /* one byte past the declared size catches bombs */
    bool over = false;
    while (zr == Z_OK) {
        if (s.avail_in == 0 && in_left) {
            s.next_in = (Bytef *)(uintptr_t)in;
            s.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            in += s.avail_in;
            in_left -= s.avail_in;
        }
        if (s.avail_out == 0) {
            if (out_left) {
                s.next_out = out;
                s.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
                out += s.avail_out;
                out_left -= s.avail_out;
            } else {
                if (over) break;
                s.next_out = &spill;
                s.avail_out = 1;
                over = true;
            }
        }
        zr = inflate(&s, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR && s.avail_in == 0 && in_left == 0) break;   /* input exhausted */
        if (zr == Z_BUF_ERROR) zr = Z_OK;
    }
    bool produced_extra = over && s.avail_out == 0;
    bool ended = zr == Z_STREAM_END;
    uint64_t got = s.total_out;
    const char *zmsg = s.msg ? s.msg : "zlib error";
    inflateEnd(&s);
    if (produced_extra)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s' inflates past its declared %llu bytes", z->path, e->name,
                         (unsigned long long)e->size);
    if (zr != Z_STREAM_END && zr != Z_OK && zr != Z_BUF_ERROR)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': corrupt DEFLATE data (%s)", z->path, e->name, zmsg);
    if (!ended || got != e->size)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': DEFLATE data ends after %llu of %llu bytes", z->path,
                         e->name, (unsigned long long)got, (unsigned long long)e->size);
    return 0;
}

int sl_zip_read(const sl_zip *z, const sl_zip_entry *e, uint64_t max, const uint8_t **data, uint8_t **owned,
                sl_error *err) {
    *data = NULL;
    *owned = NULL;
    if (e->size > max)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s' is %llu bytes, more than the %llu allowed", z->path,
                         e->name, (unsigned long long)e->size, (unsigned long long)max);
    if (e->method == 0) {
        int rc = sl_zip_verify(z, e, err);
        if (!rc) *data = z->data + e->data_offset;
        return rc;
    }
    /* DEFLATE cannot expand more than 1032:1; a bigger claim is a bomb or junk */
    uint64_t lim;
    if (!sl_mul_u64(e->comp_size, 1032, &lim) || !sl_add_u64(lim, 64, &lim)) lim = UINT64_MAX;
    if (e->size > lim)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s' claims %llu bytes from %llu compressed (impossible ratio)",
                         z->path, e->name, (unsigned long long)e->size, (unsigned long long)e->comp_size);
    if (e->size > SIZE_MAX - 1) return sl_errorf(err, SL_ENOMEM, "%s: zip entry '%s' too large", z->path, e->name);
    uint8_t *buf = malloc(e->size ? (size_t)e->size : 1);
    if (!buf)
        return sl_errorf(err, SL_ENOMEM, "%s: zip entry '%s': out of memory for %llu bytes", z->path, e->name,
                         (unsigned long long)e->size);
    int rc = inflate_entry(z, e, buf, err);
    if (!rc) {
        uint32_t c = crc_of(buf, e->size);
        if (c != e->crc32)
            rc = sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': CRC-32 %08x, expected %08x (corrupt data)", z->path,
                           e->name, c, e->crc32);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *owned = buf;
    return 0;
}

/* ------------------------------------------------------------------ */
/* writer                                                               */

typedef struct zw_entry {
    char *name;
    uint32_t crc;
    uint64_t size;
    uint64_t lh;
} zw_entry;

struct sl_zip_writer {
    sl_outfile *out;
    zw_entry *e;
    size_t n, cap;
    bool open;          /* an entry is being streamed */
    uint64_t written;   /* of the open entry */
    uLong crc;
};

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

#define DOS_DATE_1980 0x0021   /* 1980-01-01, 00:00 */

int sl_zipw_new(sl_zip_writer **zw, sl_outfile *out, sl_error *err) {
    *zw = calloc(1, sizeof **zw);
    if (!*zw) return sl_errorf(err, SL_ENOMEM, "out of memory");
    (*zw)->out = out;
    return 0;
}

void sl_zipw_free(sl_zip_writer *zw) {
    if (!zw) return;
    for (size_t i = 0; i < zw->n; i++) free(zw->e[i].name);
    free(zw->e);
    free(zw);
}

int sl_zipw_begin(sl_zip_writer *zw, const char *name, uint64_t size, uint32_t align, sl_error *err) {
    const char *path = zw->out->path;
    size_t nlen = strlen(name);
    if (zw->open) return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s' started before the previous one ended", path, name);
    if (bad_name(name, nlen) || nlen > 0xFFFF) return sl_errorf(err, SL_EINVAL, "%s: bad zip entry name '%s'", path, name);
    if (zw->n == zw->cap) {
        size_t nc = zw->cap ? zw->cap * 2 : 16;
        zw_entry *ne = realloc(zw->e, nc * sizeof *ne);
        if (!ne) return sl_errorf(err, SL_ENOMEM, "out of memory");
        zw->e = ne;
        zw->cap = nc;
    }
    uint64_t lh = zw->out->pos;
    bool z64 = size >= U32_MAX_;
    uint32_t x64 = z64 ? 20 : 0;
    uint32_t pad = 0, xpad = 0;
    if (align > 1) {
        uint64_t start = lh + 30 + nlen + x64 + 4;
        pad = (uint32_t)((align - start % align) % align);
        xpad = pad + 4;
    }
    if (x64 + xpad > 0xFFFF) return sl_errorf(err, SL_EINVAL, "%s: zip alignment %u too large", path, align);
    size_t hlen = 30 + nlen + x64 + xpad;
    uint8_t *h = calloc(1, hlen);
    char *nm = strdup(name);
    if (!h || !nm) { free(h); free(nm); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
    wr32(h, SIG_LOCAL);
    wr16(h + 4, z64 ? 45 : 20);
    wr16(h + 6, 0x0800);
    wr16(h + 8, 0);
    wr16(h + 10, 0);
    wr16(h + 12, DOS_DATE_1980);
    wr32(h + 14, 0);   /* CRC patched at end */
    wr32(h + 18, z64 ? U32_MAX_ : (uint32_t)size);
    wr32(h + 22, z64 ? U32_MAX_ : (uint32_t)size);
    wr16(h + 26, (uint16_t)nlen);
    wr16(h + 28, (uint16_t)(x64 + xpad));
    memcpy(h + 30, name, nlen);
    uint8_t *x = h + 30 + nlen;
    if (z64) {
        wr16(x, 1);
        wr16(x + 2, 16);
        wr64(x + 4, size);
        wr64(x + 12, size);
        x += 20;
    }
    if (xpad) {
        wr16(x, 0x4246);
        wr16(x + 2, (uint16_t)pad);
        memset(x + 4, 'Z', pad);
    }
    int rc = sl_outfile_write(zw->out, h, hlen, err);
    free(h);
    if (rc) { free(nm); return rc; }
    zw->e[zw->n++] = (zw_entry){nm, 0, size, lh};
    zw->open = true;
    zw->written = 0;
    zw->crc = crc32(0L, Z_NULL, 0);
    return 0;
}

int sl_zipw_data(sl_zip_writer *zw, const void *buf, size_t n, sl_error *err) {
    zw_entry *e = &zw->e[zw->n - 1];
    if (!zw->open || n > e->size - zw->written)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': more bytes than declared", zw->out->path,
                         zw->n ? e->name : "?");
    int rc = sl_outfile_write(zw->out, buf, n, err);
    if (rc) return rc;
    const uint8_t *p = buf;
    size_t left = n;
    while (left) {
        uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
        zw->crc = crc32(zw->crc, p, k);
        p += k;
        left -= k;
    }
    zw->written += n;
    return 0;
}

int sl_zipw_end(sl_zip_writer *zw, sl_error *err) {
    if (!zw->open) return sl_errorf(err, SL_EINVAL, "%s: no zip entry open", zw->out->path);
    zw_entry *e = &zw->e[zw->n - 1];
    if (zw->written != e->size)
        return sl_errorf(err, SL_EINVAL, "%s: zip entry '%s': %llu of %llu bytes written", zw->out->path, e->name,
                         (unsigned long long)zw->written, (unsigned long long)e->size);
    e->crc = (uint32_t)zw->crc;
    uint8_t b[4];
    wr32(b, e->crc);
    zw->open = false;
    return sl_outfile_pwrite(zw->out, b, 4, e->lh + 14, err);
}

int sl_zipw_add(sl_zip_writer *zw, const char *name, const void *buf, size_t n, uint32_t align, sl_error *err) {
    int rc = sl_zipw_begin(zw, name, n, align, err);
    if (!rc && n) rc = sl_zipw_data(zw, buf, n, err);
    if (!rc) rc = sl_zipw_end(zw, err);
    return rc;
}

int sl_zipw_finish(sl_zip_writer *zw, sl_error *err) {
    int rc = 0;
    if (zw->open) rc = sl_errorf(err, SL_EINVAL, "%s: zip entry '%s' not ended", zw->out->path, zw->e[zw->n - 1].name);
    uint64_t cd_off = zw->out->pos;
    for (size_t i = 0; i < zw->n && !rc; i++) {
        const zw_entry *e = &zw->e[i];
        size_t nlen = strlen(e->name);
        bool zs = e->size >= U32_MAX_, zo = e->lh >= U32_MAX_;
        uint32_t xl = (zs || zo) ? 4u + (zs ? 16u : 0u) + (zo ? 8u : 0u) : 0u;
        uint8_t h[46 + 28];
        memset(h, 0, sizeof h);
        wr32(h, SIG_CENTRAL);
        wr16(h + 4, 0x0300 | ((zs || zo) ? 45 : 20));   /* made by unix */
        wr16(h + 6, (zs || zo) ? 45 : 20);
        wr16(h + 8, 0x0800);
        wr16(h + 14, DOS_DATE_1980);
        wr32(h + 16, e->crc);
        wr32(h + 20, zs ? U32_MAX_ : (uint32_t)e->size);
        wr32(h + 24, zs ? U32_MAX_ : (uint32_t)e->size);
        wr16(h + 28, (uint16_t)nlen);
        wr16(h + 30, (uint16_t)xl);
        wr32(h + 38, 0644u << 16 | 0x8000u << 16);
        wr32(h + 42, zo ? U32_MAX_ : (uint32_t)e->lh);
        rc = sl_outfile_write(zw->out, h, 46, err);
        if (!rc) rc = sl_outfile_write(zw->out, e->name, nlen, err);
        if (!rc && xl) {
            uint8_t x[28];
            uint8_t *q = x + 4;
            wr16(x, 1);
            wr16(x + 2, (uint16_t)(xl - 4));
            if (zs) { wr64(q, e->size); wr64(q + 8, e->size); q += 16; }
            if (zo) wr64(q, e->lh);
            rc = sl_outfile_write(zw->out, x, xl, err);
        }
    }
    uint64_t cd_size = zw->out->pos - cd_off;
    bool z64 = zw->n >= 0xFFFF || cd_off >= U32_MAX_ || cd_size >= U32_MAX_;
    if (!rc && z64) {
        uint8_t r[56 + 20];
        uint64_t rec_off = zw->out->pos;
        wr32(r, SIG_EOCD64);
        wr64(r + 4, 44);
        wr16(r + 12, 0x032d);
        wr16(r + 14, 45);
        wr32(r + 16, 0);
        wr32(r + 20, 0);
        wr64(r + 24, zw->n);
        wr64(r + 32, zw->n);
        wr64(r + 40, cd_size);
        wr64(r + 48, cd_off);
        wr32(r + 56, SIG_LOC64);
        wr32(r + 60, 0);
        wr64(r + 64, rec_off);
        wr32(r + 72, 1);
        rc = sl_outfile_write(zw->out, r, sizeof r, err);
    }
    if (!rc) {
        uint8_t r[22];
        memset(r, 0, sizeof r);
        wr32(r, SIG_EOCD);
        uint16_t cnt = zw->n >= 0xFFFF ? 0xFFFF : (uint16_t)zw->n;
        wr16(r + 8, cnt);
        wr16(r + 10, cnt);
        wr32(r + 12, cd_size >= U32_MAX_ ? U32_MAX_ : (uint32_t)cd_size);
        wr32(r + 16, cd_off >= U32_MAX_ ? U32_MAX_ : (uint32_t)cd_off);
        rc = sl_outfile_write(zw->out, r, sizeof r, err);
    }
    sl_zipw_free(zw);
    return rc;
}
