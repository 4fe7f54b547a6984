/*
 * reg_store.c — the store's directory: opening it, its lock, content-addressed
 * blobs and the per-version snapshot directories of relative symlinks.
 *
 * Layout of $SILICA_HOME:
 *   index.db                      SQLite index (reg_index.c)
 *   lock                          flock: shared while adding, exclusive while deleting
 *   locks/<key>.lock              per-model / per-download exclusive locks
 *   blobs/<aa>/<sha256>           read-only blobs, named by their sha256
 *   snapshots/<org>/<name>/<rev>/ relative symlinks -> ../../../../blobs/..
 *   partial/<digest>-<size>.part  resumable downloads (kept across restarts)
 *   tmp/                          temporaries (removed by gc, except the scratch
 *                                 directory of a convert whose process is alive)
 *   quarantine/                   corrupt blobs moved aside by verify (emptied by gc)
 * Invariants: a blob appears only by rename() of a complete, fsync'd file whose
 * sha256 was checked; a snapshot directory appears only by rename() of a
 * fully built temporary directory.  A user's files (import, convert output)
 * are never modified: they are copied (reflinked where the filesystem can),
 * never hard-linked, so their mode, times and later edits stay the user's;
 * only the HF cache, which the store shares, is hard-linked.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/fs.h>   /* FICLONE */
#endif

#include "registry/reg_impl.h"

char *sl_reg_default_home(void) {
    const char *h = getenv("SILICA_HOME");
    if (h && *h) return strdup(h);
#ifdef __APPLE__
    const char *home = getenv("HOME");
    return sl_fmt("%s/Library/Caches/silica", home ? home : "/tmp");
#else
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x) return sl_fmt("%s/silica", x);
    const char *home = getenv("HOME");
    return sl_fmt("%s/.cache/silica", home && *home ? home : "/tmp");
#endif
}

int sl_reg_open(const char *home, sl_reg **out, sl_error *err) {
    *out = NULL;
    sl_reg *r = calloc(1, sizeof *r);
    if (!r) return sl_errorf(err, SL_ENOMEM, "out of memory");
    r->lock_fd = -1;
    r->home = home ? strdup(home) : sl_reg_default_home();
    int rc = 0;
    static const char *dirs[] = {"blobs", "snapshots", "partial", "tmp", "quarantine", "locks"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && !rc; i++) {
        char *d = sl_fmt("%s/%s", r->home, dirs[i]);
        rc = sl_mkdir_p(d, err);
        free(d);
    }
    if (!rc) {
        char *lp = sl_fmt("%s/lock", r->home);
        r->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (r->lock_fd < 0) rc = sl_errorf(err, SL_EIO, "%s: cannot open the store lock: %s", lp, strerror(errno));
        free(lp);
    }
    if (!rc) rc = reg_db_open(r, err);
    if (rc) {
        sl_reg_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void sl_reg_close(sl_reg *r) {
    if (!r) return;
    if (r->db) sqlite3_close(r->db);
    if (r->lock_fd >= 0) close(r->lock_fd);
    free(r->home);
    free(r);
}

const char *sl_reg_home(const sl_reg *r) { return r->home; }

void sl_reg_set_progress(sl_reg *r, sl_progress_fn fn, void *ctx) {
    r->progress = fn;
    r->progress_ctx = ctx;
}

int reg_lock(sl_reg *r, int how, sl_error *err) {
    if (r->lock_depth++ > 0) return 0;
    while (flock(r->lock_fd, how) != 0) {
        if (errno == EINTR) continue;
        r->lock_depth = 0;
        return sl_errorf(err, SL_EIO, "%s/lock: cannot lock the store: %s", r->home, strerror(errno));
    }
    return 0;
}

void reg_unlock(sl_reg *r) {
    if (r->lock_depth > 0 && --r->lock_depth == 0) flock(r->lock_fd, LOCK_UN);
}

int reg_lock_key(sl_reg *r, const char *key, sl_error *err) {
    char *k = strdup(key);
    if (!k) return sl_errorf(err, SL_ENOMEM, "out of memory"), -1;
    for (char *s = k; *s; s++)
        if (*s == '/') *s = '~';
    char *p = sl_fmt("%s/locks/%s.lock", r->home, k);
    free(k);
    int fd = p ? open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (fd < 0) {
        sl_errorf(err, SL_EIO, "%s: cannot open lock: %s", p ? p : key, strerror(errno));
    } else {
        while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {}
    }
    free(p);
    return fd;
}

void reg_unlock_key(int fd) {
    if (fd >= 0) close(fd);   /* releases the flock */
}

char *reg_blob_path(const sl_reg *r, const char *sha256) {
    return sl_fmt("%s/blobs/%.2s/%s", r->home, sha256, sha256);
}

char *reg_snapshot_path(const sl_reg *r, const char *model, const char *revision) {
    return sl_fmt("%s/snapshots/%s/%s", r->home, model, revision);
}

bool reg_blob_exists(const sl_reg *r, const char *sha256, uint64_t size) {
    char *p = reg_blob_path(r, sha256);
    struct stat st;
    bool ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
    free(p);
    return ok;
}

int reg_blob_adopt(sl_reg *r, const char *tmp, const char *sha256, sl_error *err) {
    char *dst = reg_blob_path(r, sha256);
    if (!dst) return sl_errorf(err, SL_ENOMEM, "out of memory");
    char *dir = sl_fmt("%s/blobs/%.2s", r->home, sha256);
    int rc = sl_mkdir_p(dir, err);
    if (!rc) {
        chmod(tmp, 0444);
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        if (rename(tmp, dst) != 0) {
            rc = sl_errorf(err, SL_EIO, "%s: cannot move into the store: %s", dst, strerror(errno));
            unlink(tmp);
        } else {
            sl_fsync_dir(dir);
        }
    }
    free(dir);
    free(dst);
    return rc;
}

char *reg_tmp_path(const sl_reg *r, const char *prefix) {
    return sl_fmt("%s/tmp/%s-%d-%lx%lx", r->home, prefix, (int)getpid(), (unsigned long)random(),
                  (unsigned long)random());
}

/* Write all of buf[0..n) to fd. */
static int write_all(int fd, const unsigned char *buf, size_t n, const char *what, sl_error *err) {
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return sl_errorf(err, SL_EIO, "%s: write failed: %s", what, w < 0 ? strerror(errno) : "no space");
        off += (size_t)w;
    }
    return 0;
}

/* A reflink of in into out (FICLONE: btrfs, XFS, bcachefs...); false where
 * the filesystem (or the platform) cannot, and out is then still empty. */
static bool reflink(int in, int out) {
#if defined(__linux__) && defined(FICLONE)
    return ioctl(out, FICLONE, in) == 0;
#else
    (void)in;
    (void)out;
    return false;
#endif
}

/* dst (created, 0644) becomes a private copy of src, hashed as it is read:
 * a reflink when possible (then the clone is hashed), else a byte copy.
 * src is only read. */
static int copy_hashing(const char *src, const char *dst, char sha256[65], uint64_t *size, reg_meter *m,
                        sl_error *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return sl_errorf(err, SL_EIO, "%s: cannot open: %s", src, strerror(errno));
    int outfd = open(dst, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (outfd < 0) {
        close(in);
        return sl_errorf(err, SL_EIO, "%s: cannot create: %s", dst, strerror(errno));
    }
    sl_hasher *h = sl_hasher_new(false, 0);
    int rc = !h ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
    uint64_t total = 0;
    if (!rc && reflink(in, outfd)) {
        rc = sl_hash_fd_meter(outfd, h, &total, dst, m, err);   /* the clone's bytes are what the blob holds */
    } else if (!rc) {
        enum { BUF = 1 << 20 };
        unsigned char *buf = malloc(BUF);
        if (!buf) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        while (!rc) {
            ssize_t n = read(in, buf, BUF);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) { rc = sl_errorf(err, SL_EIO, "%s: read failed: %s", src, strerror(errno)); break; }
            if (n == 0) break;
            sl_hasher_update(h, buf, (size_t)n);
            rc = write_all(outfd, buf, (size_t)n, dst, err);
            total += (uint64_t)n;
            reg_meter_add(m, (uint64_t)n);
        }
        free(buf);
    }
    if (!rc && fsync(outfd) != 0) rc = sl_errorf(err, SL_EIO, "%s: fsync failed: %s", dst, strerror(errno));
    close(in);
    close(outfd);
    if (rc) {
        sl_hasher_free(h);
        unlink(dst);
        return rc;
    }
    sl_hasher_final(h, sha256, NULL);
    *size = total;
    return 0;
}

int reg_blob_put_file(sl_reg *r, const char *src, reg_put_mode mode, char sha256[65], uint64_t *size, reg_meter *m,
                      sl_error *err) {
    char *tmp = reg_tmp_path(r, "import");
    if (!tmp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc;
    if ((mode == REG_LINK && linkat(AT_FDCWD, src, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) ||
        (mode == REG_MOVE && rename(src, tmp) == 0)) {
        rc = sl_hash_file_meter(tmp, sha256, size, m, err);
    } else {
        rc = copy_hashing(src, tmp, sha256, size, m, err);
    }
    if (!rc) {
        if (reg_blob_exists(r, sha256, *size)) unlink(tmp);
        else rc = reg_blob_adopt(r, tmp, sha256, err);
    } else {
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

int reg_blob_restore(sl_reg *r, const char *src, const char *want, uint64_t size, sl_error *err) {
    struct stat st;
    if (stat(src, &st) != 0) return sl_errorf(err, SL_EINVAL, "%s: %s", src, strerror(errno));
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
        return sl_errorf(err, SL_EINVAL, "%s: changed since it was stored (%llu bytes, expected %llu)", src,
                         (unsigned long long)st.st_size, (unsigned long long)size);
    char *tmp = reg_tmp_path(r, "repair");
    if (!tmp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    char got[65];
    uint64_t n = 0;
    int rc = copy_hashing(src, tmp, got, &n, NULL, err);
    if (!rc && (n != size || strcmp(got, want) != 0)) {
        rc = sl_errorf(err, SL_EINVAL, "%s: changed since it was stored (sha256 %.12s..., expected %.12s...)", src, got,
                       want);
        unlink(tmp);
    }
    if (!rc) rc = reg_blob_adopt(r, tmp, want, err);
    free(tmp);
    return rc;
}

int reg_build_snapshot(sl_reg *r, const sl_reg_version *v, sl_error *err) {
    char *final = reg_snapshot_path(r, v->model, v->revision);
    char *parent = sl_fmt("%s/snapshots/%s", r->home, v->model);
    char *tmpl = sl_fmt("%s/.tmp-XXXXXX", parent ? parent : "");
    int rc = (!final || !parent || !tmpl) ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
    if (!rc) rc = sl_mkdir_p(parent, err);
    if (!rc && !mkdtemp(tmpl)) rc = sl_errorf(err, SL_EIO, "%s: cannot create a temporary directory: %s", parent, strerror(errno));
    for (size_t i = 0; !rc && i < v->n_files; i++) {
        const char *fp = v->files[i].path;
        char *link_path = sl_fmt("%s/%s", tmpl, fp);
        int depth = 4;  /* snapshots/<org>/<name>/<rev>/ */
        for (const char *c = fp; *c; c++) depth += *c == '/';
        size_t tl = (size_t)depth * 3 + 80;
        char *target = malloc(tl);
        if (!link_path || !target) { free(link_path); free(target); rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
        target[0] = 0;
        for (int d = 0; d < depth; d++) strcat(target, "../");
        snprintf(target + strlen(target), tl - strlen(target), "blobs/%.2s/%s", v->files[i].sha256, v->files[i].sha256);
        char *slash = strrchr(link_path, '/');
        if (slash && slash > link_path + strlen(tmpl)) {
            *slash = 0;
            rc = sl_mkdir_p(link_path, err);
            *slash = '/';
        }
        if (!rc && symlink(target, link_path) != 0)
            rc = sl_errorf(err, SL_EIO, "%s: cannot create symlink: %s", link_path, strerror(errno));
        free(link_path);
        free(target);
    }
    if (!rc) {
        if (rename(tmpl, final) != 0) {
            if (errno == ENOTEMPTY || errno == EEXIST) sl_rm_rf(tmpl);  /* another process built it */
            else rc = sl_errorf(err, SL_EIO, "%s: cannot create snapshot: %s", final, strerror(errno));
        } else {
            sl_fsync_dir(parent);
        }
    }
    if (rc && tmpl) sl_rm_rf(tmpl);
    free(final);
    free(parent);
    free(tmpl);
    return rc;
}
