/*
 * io.c — read-only file mappings, atomic output files/directories, and the
 * Ctrl-C cleanup that guarantees no half-written output survives.
 *
 * Invariants:
 *  - A temporary path is registered in `g_temps` from creation until commit
 *    or abort; the signal handler unlinks (files) every registered path using
 *    only async-signal-safe calls, then _exit()s.  Temporary directories are
 *    removed file by file by the handler's best effort (unlink of each entry
 *    is not signal-safe to enumerate, so outdir registers each file it makes).
 */
#define _GNU_SOURCE
#include "silica/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* temp registry for signal cleanup                                     */

#define MAX_TEMPS 256
static char *volatile g_temps[MAX_TEMPS];
static char *volatile g_tempdirs[16];
static volatile sig_atomic_t g_interrupted;

static void temp_register(char *p) {
    for (int i = 0; i < MAX_TEMPS; i++)
        if (!g_temps[i]) { g_temps[i] = p; return; }
}
static void temp_unregister(const char *p) {
    for (int i = 0; i < MAX_TEMPS; i++)
        if (g_temps[i] == p) { g_temps[i] = NULL; return; }
}
static void tempdir_register(char *p) {
    for (int i = 0; i < 16; i++)
        if (!g_tempdirs[i]) { g_tempdirs[i] = p; return; }
}
static void tempdir_unregister(const char *p) {
    for (int i = 0; i < 16; i++)
        if (g_tempdirs[i] == p) { g_tempdirs[i] = NULL; return; }
}

static void rm_tree(const char *path);

static void on_signal(int sig) {
    g_interrupted = 1;
    for (int i = 0; i < MAX_TEMPS; i++)
        if (g_temps[i]) unlink(g_temps[i]);
    for (int i = 0; i < 16; i++)
        if (g_tempdirs[i]) rm_tree(g_tempdirs[i]);   /* best effort: files already unlinked above */
    static const char msg[] = "\nsilica: interrupted; partial output removed\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(128 + sig);
}

void sl_install_cleanup_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

bool sl_interrupted(void) { return g_interrupted != 0; }

/* ------------------------------------------------------------------ */
/* mappings                                                             */

int sl_map_file(const char *path, sl_mapping **out, sl_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sl_errorf(err, SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sl_errorf(err, SL_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sl_errorf(err, SL_EINVAL, "%s: not a regular file", path);
    }
    sl_mapping *m = calloc(1, sizeof *m);
    if (!m) { close(fd); return sl_errorf(err, SL_ENOMEM, "%s: out of memory", path); }
    m->path = strdup(path);
    m->size = (uint64_t)st.st_size;
    if (m->size > 0) {
        void *p = mmap(NULL, (size_t)m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(m->path);
            free(m);
            return sl_errorf(err, SL_EIO, "%s: cannot mmap: %s", path, strerror(e));
        }
        m->data = p;
    }
    close(fd);
    *out = m;
    return 0;
}

void sl_unmap(sl_mapping *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, (size_t)m->size);
    free(m->path);
    free(m);
}

static void advise(const sl_mapping *m, uint64_t off, uint64_t len, int how) {
    if (!m || !m->data || off >= m->size) return;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t start = off & ~(uint64_t)(pg - 1);
    uint64_t end = off + len > m->size ? m->size : off + len;
    madvise((void *)(m->data + start), (size_t)(end - start), how);
}

void sl_mapping_willneed(const sl_mapping *m, uint64_t off, uint64_t len) { advise(m, off, len, MADV_WILLNEED); }
void sl_mapping_dontneed(const sl_mapping *m, uint64_t off, uint64_t len) { advise(m, off, len, MADV_DONTNEED); }

int sl_read_file(const char *path, uint64_t max, char **out, size_t *len, sl_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sl_errorf(err, SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sl_errorf(err, SL_EINVAL, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return sl_errorf(err, SL_EINVAL, "%s: %lld bytes, more than the %llu allowed", path, (long long)st.st_size,
                         (unsigned long long)max);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { fclose(f); return sl_errorf(err, SL_ENOMEM, "%s: out of memory", path); }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return sl_errorf(err, SL_EIO, "%s: read failed", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* atomic output files                                                  */

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int fsync_dir(const char *path) {
    char *d = dir_of(path);
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(d);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int sl_outfile_open(sl_outfile *f, const char *path, sl_error *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", path);
    char *d = dir_of(path);
    snprintf(tmp, n, "%s/.%s.tmp-XXXXXX", d, sl_path_basename(path));
    free(d);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return sl_errorf(err, SL_EIO, "%s: cannot create output: %s", path, strerror(e));
    }
    fchmod(fd, 0644);
    f->fd = fd;
    f->tmp_path = tmp;
    f->path = strdup(path);
    temp_register(tmp);
    return 0;
}

int sl_outfile_write(sl_outfile *f, const void *buf, size_t n, sl_error *err) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(f->fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return sl_errorf(err, SL_EIO, "%s: write failed: %s", f->path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        f->pos += (uint64_t)w;
    }
    return 0;
}

int sl_outfile_pwrite(sl_outfile *f, const void *buf, size_t n, uint64_t off, sl_error *err) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = pwrite(f->fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return sl_errorf(err, SL_EIO, "%s: write failed: %s", f->path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int sl_outfile_pad(sl_outfile *f, uint64_t align, uint8_t byte, sl_error *err) {
    static uint8_t buf[4096];
    if (align <= 1) return 0;
    uint64_t rem = f->pos % align;
    if (!rem) return 0;
    uint64_t need = align - rem;
    uint8_t local[256];
    uint8_t *src = buf;
    if (byte != 0) { memset(local, byte, sizeof local); src = local; }
    size_t chunk = byte ? sizeof local : sizeof buf;
    while (need) {
        size_t k = need > chunk ? chunk : (size_t)need;
        int r = sl_outfile_write(f, src, k, err);
        if (r) return r;
        need -= k;
    }
    return 0;
}

static void outfile_free(sl_outfile *f) {
    if (f->tmp_path) temp_unregister(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = f->path = NULL;
    f->fd = -1;
}

int sl_outfile_commit(sl_outfile *f, sl_error *err) {
    if (f->fd < 0) return sl_errorf(err, SL_EIO, "output already closed");
    if (fsync(f->fd) != 0) {
        int e = errno;
        sl_outfile_abort(f);
        return sl_errorf(err, SL_EIO, "%s: fsync failed: %s", f->path ? f->path : "?", strerror(e));
    }
    if (close(f->fd) != 0) {
        int e = errno;
        f->fd = -1;
        unlink(f->tmp_path);
        sl_errorf(err, SL_EIO, "%s: close failed: %s", f->path, strerror(e));
        outfile_free(f);
        return SL_EIO;
    }
    f->fd = -1;
    if (rename(f->tmp_path, f->path) != 0) {
        int e = errno;
        unlink(f->tmp_path);
        sl_errorf(err, SL_EIO, "%s: cannot rename into place: %s", f->path, strerror(e));
        outfile_free(f);
        return SL_EIO;
    }
    fsync_dir(f->path);
    outfile_free(f);
    return 0;
}

void sl_outfile_abort(sl_outfile *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    if (f->tmp_path) unlink(f->tmp_path);
    outfile_free(f);
}

/* ------------------------------------------------------------------ */
/* atomic output directories                                            */

static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char buf[PATH_MAX];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(buf, sizeof buf, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(buf, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(buf);
            else unlink(buf);
        }
        closedir(d);
    }
    rmdir(path);
}

int sl_outdir_open(sl_outdir *d, const char *path, bool force, sl_error *err) {
    memset(d, 0, sizeof *d);
    if (sl_path_exists(path) && !force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", path);
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    char *parent = dir_of(path);
    snprintf(tmp, n, "%s/.%s.tmp-XXXXXX", parent, sl_path_basename(path));
    free(parent);
    if (!mkdtemp(tmp)) {
        int e = errno;
        free(tmp);
        return sl_errorf(err, SL_EIO, "%s: cannot create output directory: %s", path, strerror(e));
    }
    chmod(tmp, 0755);
    d->tmp_path = tmp;
    d->path = strdup(path);
    tempdir_register(tmp);
    return 0;
}

int sl_outdir_commit(sl_outdir *d, sl_error *err) {
    int rc = 0;
    if (sl_path_exists(d->path)) {
        /* --force: move the old one aside, then remove it after the rename */
        size_t n = strlen(d->path) + 16;
        char *old = malloc(n);
        snprintf(old, n, "%s.old-%d", d->path, (int)getpid());
        if (rename(d->path, old) != 0) {
            rc = sl_errorf(err, SL_EIO, "%s: cannot replace: %s", d->path, strerror(errno));
            free(old);
            sl_outdir_abort(d);
            return rc;
        }
        if (rename(d->tmp_path, d->path) != 0) {
            rc = sl_errorf(err, SL_EIO, "%s: cannot rename into place: %s", d->path, strerror(errno));
            rename(old, d->path);
            free(old);
            sl_outdir_abort(d);
            return rc;
        }
        rm_tree(old);
        free(old);
    } else if (rename(d->tmp_path, d->path) != 0) {
        rc = sl_errorf(err, SL_EIO, "%s: cannot rename into place: %s", d->path, strerror(errno));
        sl_outdir_abort(d);
        return rc;
    }
    fsync_dir(d->path);
    tempdir_unregister(d->tmp_path);
    free(d->tmp_path);
    free(d->path);
    d->tmp_path = d->path = NULL;
    return 0;
}

void sl_outdir_abort(sl_outdir *d) {
    if (!d || !d->tmp_path) return;
    rm_tree(d->tmp_path);
    tempdir_unregister(d->tmp_path);
    free(d->tmp_path);
    free(d->path);
    d->tmp_path = d->path = NULL;
}

/* ------------------------------------------------------------------ */
/* paths                                                                */

bool sl_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool sl_path_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

char *sl_path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 2);
    if (!r) return NULL;
    memcpy(r, a, la);
    size_t k = la;
    if (la && a[la - 1] != '/') r[k++] = '/';
    memcpy(r + k, b, lb + 1);
    return r;
}

const char *sl_path_basename(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

bool sl_str_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int sl_copy_file(const char *src, const char *dst, sl_error *err) {
    sl_mapping *m;
    int rc = sl_map_file(src, &m, err);
    if (rc) return rc;
    sl_outfile o;
    rc = sl_outfile_open(&o, dst, err);
    if (!rc && m->size) rc = sl_outfile_write(&o, m->data, (size_t)m->size, err);
    if (!rc) rc = sl_outfile_commit(&o, err);
    else sl_outfile_abort(&o);
    sl_unmap(m);
    return rc;
}
