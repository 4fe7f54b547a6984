/*
 * lfs_pointer.c — Git LFS pointer files (spec v1), parsed and written
 * byte-identically to git-lfs.
 *
 *   version https://git-lfs.github.com/spec/v1\n
 *   ext-<N>-<name> <value>\n      (0..10, N ascending, optional)
 *   oid sha256:<64 lowercase hex>\n
 *   size <decimal>\n
 *
 * Invariants: input is bounded (< 1024 bytes, git-lfs's BlobSizeCutoff);
 * keys appear in exactly that order, each "key value" with one space; the
 * older version URLs (hawser, git-media) are accepted on read, the writer
 * always emits the v1 URL; a zero-size object encodes as the empty string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/lfs.h"

static const char k_v1[] = "https://git-lfs.github.com/spec/v1";

static bool known_version(const char *v, size_t n) {
    static const char *ok[] = {"https://git-lfs.github.com/spec/v1", "https://hawser.github.com/spec/v1",
                               "http://git-media.io/v/2"};
    for (int i = 0; i < 3; i++)
        if (strlen(ok[i]) == n && !memcmp(ok[i], v, n)) return true;
    return false;
}

int sl_lfs_pointer_parse(const uint8_t *buf, size_t len, const char *what, sl_lfs_pointer *p, sl_error *err) {
    memset(p, 0, sizeof *p);
    if (len == 0) return sl_errorf(err, SL_EINVAL, "%s: empty file, not a Git LFS pointer", what);
    if (len >= SL_LFS_POINTER_MAX)
        return sl_errorf(err, SL_EINVAL, "%s: %zu bytes, a Git LFS pointer is under %d bytes", what, len, SL_LFS_POINTER_MAX);
    enum { VERSION, EXT, OID, SIZE, DONE } want = VERSION;
    int last_ext = -1;
    size_t pos = 0, line_no = 0;
    while (pos < len) {
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *l = (const char *)buf + pos;
        size_t n = end - pos;
        line_no++;
        pos = end + (nl ? 1 : 0);
        if (n == 0 && pos >= len) break;   /* nothing after the final newline */
        const char *sp = memchr(l, ' ', n);
        if (!sp || sp == l) return sl_errorf(err, SL_EINVAL, "%s: line %zu of the LFS pointer is not 'key value'", what, line_no);
        size_t kl = (size_t)(sp - l);
        const char *v = sp + 1;
        size_t vl = n - kl - 1;
        for (size_t i = 0; i < kl; i++) {
            char c = l[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
                return sl_errorf(err, SL_EINVAL, "%s: LFS pointer key on line %zu has characters outside [a-z0-9.-]", what, line_no);
        }
        if (memchr(v, '\r', vl) || memchr(v, 0, vl))
            return sl_errorf(err, SL_EINVAL, "%s: LFS pointer line %zu has a control character", what, line_no);
#define KEY(k) (kl == sizeof(k) - 1 && !memcmp(l, k, kl))
        if (want == VERSION) {
            if (!KEY("version") || !known_version(v, vl))
                return sl_errorf(err, SL_EINVAL, "%s: not a Git LFS pointer (first line must be 'version %s')", what, k_v1);
            want = EXT;
        } else if (want == EXT && kl > 6 && !memcmp(l, "ext-", 4) && l[4] >= '0' && l[4] <= '9' && l[5] == '-') {
            int prio = l[4] - '0';
            if (prio <= last_ext) return sl_errorf(err, SL_EINVAL, "%s: LFS pointer extensions are not in ascending order", what);
            if (p->n_ext >= SL_LFS_MAX_EXT || n >= sizeof p->ext[0])
                return sl_errorf(err, SL_EINVAL, "%s: LFS pointer extension line %zu too long", what, line_no);
            last_ext = prio;
            memcpy(p->ext[p->n_ext], l, n);
            p->ext[p->n_ext++][n] = 0;
        } else if ((want == EXT || want == OID) && KEY("oid")) {
            if (vl != 71 || memcmp(v, "sha256:", 7) != 0)
                return sl_errorf(err, SL_EINVAL, "%s: LFS pointer oid must be 'sha256:<64 hex>'", what);
            for (size_t i = 7; i < 71; i++) {
                char c = v[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                    return sl_errorf(err, SL_EINVAL, "%s: LFS pointer oid is not 64 lowercase hex digits", what);
            }
            memcpy(p->oid, v + 7, 64);
            p->oid[64] = 0;
            want = SIZE;
        } else if (want == SIZE && KEY("size")) {
            if (vl == 0 || vl > 19) return sl_errorf(err, SL_EINVAL, "%s: LFS pointer size is not a decimal number", what);
            uint64_t s = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') return sl_errorf(err, SL_EINVAL, "%s: LFS pointer size is not a decimal number", what);
                s = s * 10 + (uint64_t)(v[i] - '0');
            }
            if (s > (uint64_t)INT64_MAX) return sl_errorf(err, SL_EINVAL, "%s: LFS pointer size out of range", what);
            p->size = s;
            want = DONE;
        } else {
            return sl_errorf(err, SL_EINVAL, "%s: unexpected key '%.*s' on line %zu of the LFS pointer (expected %s)", what,
                             (int)(kl > 40 ? 40 : kl), l, line_no,
                             want == DONE ? "nothing after size" : want == SIZE ? "size" : "oid");
        }
#undef KEY
    }
    if (want != DONE)
        return sl_errorf(err, SL_EINVAL, "%s: LFS pointer is missing its %s line", what, want == SIZE ? "size" : "oid");
    return 0;
}

size_t sl_lfs_pointer_format(const sl_lfs_pointer *p, char *out, size_t cap) {
    if (cap) out[0] = 0;
    if (p->size == 0 && p->n_ext == 0) return 0;   /* git-lfs: an empty file's pointer is empty */
    int o = snprintf(out, cap, "version %s\n", k_v1);
    for (int i = 0; i < p->n_ext && o >= 0 && (size_t)o < cap; i++) o += snprintf(out + o, cap - (size_t)o, "%s\n", p->ext[i]);
    if (o >= 0 && (size_t)o < cap)
        o += snprintf(out + o, cap - (size_t)o, "oid sha256:%s\nsize %llu\n", p->oid, (unsigned long long)p->size);
    return o < 0 || (size_t)o >= cap ? 0 : (size_t)o;
}
