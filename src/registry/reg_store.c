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
 *   tmp/                          temporaries (removed by gc)
 *   quarantine/                   corrupt blobs moved aside by verify
 * Invariants: a blob appears only by rename() of a complete, fsync'd file whose
 * sha256 was checked; a snapshot directory appears only by rename() of a
 * fully built temporary directory.
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
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "reg_impl.h"

char *sl_strdup0(const char *s) { return s ? strdup(s) : NULL; }

char *sl_fmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

double sl_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

int sl_mkdir_p(const char *path, sl_error *err) {
    char *p = strdup(path);
    if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return sl_errorf(err, SL_EIO, "%s: cannot create directory: %s", path, strerror(e));
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = sl_errorf(err, SL_EIO, "%s: cannot create directory: %s", path, strerror(errno));
    free(p);
    return rc;
}

void sl_rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char *c = sl_fmt("%s/%s", path, e->d_name);
                if (c) sl_rm_rf(c);
                free(c);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

int sl_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

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

static int copy_hashing(const char *src, const char *dst, char sha256[65], uint64_t *size, sl_error *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return sl_errorf(err, SL_EIO, "%s: cannot open: %s", src, strerror(errno));
    int outfd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (outfd < 0) {
        close(in);
        return sl_errorf(err, SL_EIO, "%s: cannot create: %s", dst, strerror(errno));
    }
    sl_hasher *h = sl_hasher_new(false, 0);
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    int rc = (!h || !buf) ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
    uint64_t total = 0;
    while (!rc) {
        ssize_t n = read(in, buf, BUF);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { rc = sl_errorf(err, SL_EIO, "%s: read failed: %s", src, strerror(errno)); break; }
        if (n == 0) break;
        sl_hasher_update(h, buf, (size_t)n);
        for (ssize_t off = 0; off < n && !rc;) {
            ssize_t w = write(outfd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) rc = sl_errorf(err, SL_EIO, "%s: write failed: %s", dst, strerror(errno));
            else off += w;
        }
        total += (uint64_t)n;
    }
    if (!rc && fsync(outfd) != 0) rc = sl_errorf(err, SL_EIO, "%s: fsync failed: %s", dst, strerror(errno));
    free(buf);
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

int reg_blob_put_file(sl_reg *r, const char *src, char sha256[65], uint64_t *size, sl_error *err) {
    char *tmp = sl_fmt("%s/tmp/import-%d-%lx", r->home, (int)getpid(), (unsigned long)random());
    if (!tmp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc;
    if (linkat(AT_FDCWD, src, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) {
        rc = sl_hash_file(tmp, sha256, size, err);
    } else {
        rc = copy_hashing(src, tmp, sha256, size, err);
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
