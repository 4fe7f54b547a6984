/*
 * reg_hash.c — streaming SHA-256 (and the git blob SHA-1 the hub uses as the
 * ETag of small, non-LFS files) over OpenSSL's EVP interface.
 *
 * Invariants: a hasher is fed bytes in order exactly once; the git SHA-1
 * covers "blob <size>\0" followed by the bytes, as git computes blob ids.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "registry/reg_impl.h"

struct sl_hasher {
    EVP_MD_CTX *sha256;
    EVP_MD_CTX *sha1;   /* NULL unless git blob id wanted */
};

sl_hasher *sl_hasher_new(bool git_sha1, uint64_t git_size) {
    sl_hasher *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->sha256 = EVP_MD_CTX_new();
    if (!h->sha256 || !EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL)) goto fail;
    if (git_sha1) {
        h->sha1 = EVP_MD_CTX_new();
        if (!h->sha1 || !EVP_DigestInit_ex(h->sha1, EVP_sha1(), NULL)) goto fail;
        char hdr[40];
        int n = snprintf(hdr, sizeof hdr, "blob %llu", (unsigned long long)git_size);
        EVP_DigestUpdate(h->sha1, hdr, (size_t)n + 1);   /* includes the NUL */
    }
    return h;
fail:
    sl_hasher_free(h);
    return NULL;
}

void sl_hasher_update(sl_hasher *h, const void *p, size_t n) {
    if (!n) return;
    EVP_DigestUpdate(h->sha256, p, n);
    if (h->sha1) EVP_DigestUpdate(h->sha1, p, n);
}

static void hex(const unsigned char *d, unsigned n, char *out) {
    static const char k[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = k[d[i] >> 4];
        out[2 * i + 1] = k[d[i] & 15];
    }
    out[2 * n] = 0;
}

void sl_hasher_final(sl_hasher *h, char sha256[65], char sha1[41]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(h->sha256, d, &n);
    hex(d, n, sha256);
    if (sha1) {
        sha1[0] = 0;
        if (h->sha1) {
            EVP_DigestFinal_ex(h->sha1, d, &n);
            hex(d, n, sha1);
        }
    }
    sl_hasher_free(h);
}

void sl_hasher_free(sl_hasher *h) {
    if (!h) return;
    EVP_MD_CTX_free(h->sha256);
    EVP_MD_CTX_free(h->sha1);
    free(h);
}

void reg_meter_add(reg_meter *m, uint64_t n) {
    if (!m) return;
    m->done += n;
    if (m->fn) m->fn(m->ctx, m->done, m->total, m->what);
}

int sl_hash_fd_meter(int fd, sl_hasher *h, uint64_t *size, const char *what, reg_meter *m, sl_error *err) {
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    if (!buf) return sl_errorf(err, SL_ENOMEM, "%s: out of memory while hashing", what);
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0) {
            if (errno == EINTR) continue;
            free(buf);
            return sl_errorf(err, SL_EIO, "%s: read failed: %s", what, strerror(errno));
        }
        if (n == 0) break;
        sl_hasher_update(h, buf, (size_t)n);
        total += (uint64_t)n;
        reg_meter_add(m, (uint64_t)n);
    }
    free(buf);
    if (size) *size = total;
    return 0;
}

static void dl_hash_data(void *ctx, const void *p, size_t n) { sl_hasher_update(((reg_dl_hash *)ctx)->h, p, n); }

static bool dl_hash_restart(void *ctx) {
    reg_dl_hash *dh = ctx;
    sl_hasher_free(dh->h);
    dh->h = sl_hasher_new(dh->git_sha1, dh->size);
    return dh->h != NULL;
}

bool reg_dl_hash_attach(sl_dl *d, reg_dl_hash *dh, bool git_sha1, uint64_t git_size) {
    *dh = (reg_dl_hash){.h = sl_hasher_new(git_sha1, git_size), .git_sha1 = git_sha1, .size = d->expect_size};
    d->sink_data = dl_hash_data;
    d->sink_restart = dl_hash_restart;
    d->sink_ctx = dh;
    return dh->h != NULL;
}

int sl_hash_fd(int fd, sl_hasher *h, uint64_t *size, const char *what, sl_error *err) {
    return sl_hash_fd_meter(fd, h, size, what, NULL, err);
}

int sl_hash_file_meter(const char *path, char sha256[65], uint64_t *size, reg_meter *m, sl_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sl_errorf(err, SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    sl_hasher *h = sl_hasher_new(false, 0);
    if (!h) {
        close(fd);
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory", path);
    }
    int rc = sl_hash_fd_meter(fd, h, size, path, m, err);
    close(fd);
    if (rc) {
        sl_hasher_free(h);
        return rc;
    }
    sl_hasher_final(h, sha256, NULL);
    return 0;
}

int sl_hash_file(const char *path, char sha256[65], uint64_t *size, sl_error *err) {
    return sl_hash_file_meter(path, sha256, size, NULL, err);
}

bool sl_is_hex(const char *s, size_t n) {
    if (!s || strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}
