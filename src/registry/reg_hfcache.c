/*
 * reg_hfcache.c — the Hugging Face hub cache ($HF_HUB_CACHE): models already
 * there are listed and resolvable without copying, and `pull --hf-cache`
 * writes the exact layout huggingface_hub / mlx-lm / transformers read:
 *   models--<org>--<name>/blobs/<etag>        (git sha1, or sha256 for LFS files)
 *   models--<org>--<name>/refs/<ref>          (40 hex commit, no newline)
 *   models--<org>--<name>/snapshots/<commit>/<path> -> ../../blobs/<etag>  (relative)
 * Invariants: blobs appear by link/rename of complete files; refs are written
 * to a temporary and renamed; symlink targets are relative.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/reg_impl.h"

char *sl_reg_hf_cache_dir(void) {
    const char *c = getenv("HF_HUB_CACHE");
    if (c && *c) return strdup(c);
    c = getenv("HUGGINGFACE_HUB_CACHE");
    if (c && *c) return strdup(c);
    c = getenv("HF_HOME");
    if (c && *c) return sl_fmt("%s/hub", c);
    c = getenv("XDG_CACHE_HOME");
    if (c && *c) return sl_fmt("%s/huggingface/hub", c);
    c = getenv("HOME");
    return sl_fmt("%s/.cache/huggingface/hub", c && *c ? c : "/tmp");
}

static char *repo_folder(const char *cache, const char *repo) {
    const char *slash = strchr(repo, '/');
    if (!slash) return NULL;
    return sl_fmt("%s/models--%.*s--%s", cache, (int)(slash - repo), repo, slash + 1);
}

static bool read_ref(const char *path, char commit[41]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 40) return false;
    buf[40] = 0;
    if (!sl_is_hex(buf, 40)) return false;
    memcpy(commit, buf, 41);
    return true;
}

char *sl_reg_hf_snapshot(const char *cache, const char *repo, const char *rev, char **commit_out) {
    if (commit_out) *commit_out = NULL;
    if (!rev || strstr(rev, "..")) return NULL;
    char *folder = repo_folder(cache, repo);
    if (!folder) return NULL;
    char commit[41] = "";
    if (sl_is_hex(rev, 40)) memcpy(commit, rev, 41);
    else {
        char *ref = sl_fmt("%s/refs/%s", folder, rev);
        bool ok = ref && read_ref(ref, commit);
        free(ref);
        if (!ok) { free(folder); return NULL; }
    }
    char *snap = sl_fmt("%s/snapshots/%s", folder, commit);
    free(folder);
    if (!snap || !sl_path_is_dir(snap)) { free(snap); return NULL; }
    if (commit_out) *commit_out = strdup(commit);
    return snap;
}

/* list the files of a snapshot (names and sizes; nothing is hashed) */
static void snapshot_files(const char *root, const char *rel, sl_reg_version *v, size_t *cap) {
    char *d = rel[0] ? sl_fmt("%s/%s", root, rel) : strdup(root);
    DIR *dir = d ? opendir(d) : NULL;
    if (!dir) { free(d); return; }
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        char *full = sl_fmt("%s/%s", d, e->d_name);
        char *r = rel[0] ? sl_fmt("%s/%s", rel, e->d_name) : strdup(e->d_name);
        struct stat st;
        if (full && r && stat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode)) snapshot_files(root, r, v, cap);
            else if (S_ISREG(st.st_mode)) {
                if (v->n_files == *cap) {
                    *cap = *cap ? *cap * 2 : 8;
                    sl_reg_file *nf = realloc(v->files, *cap * sizeof *nf);
                    if (!nf) { free(full); free(r); break; }
                    v->files = nf;
                }
                sl_reg_file *f = &v->files[v->n_files++];
                memset(f, 0, sizeof *f);
                f->path = r;
                r = NULL;
                f->size = (uint64_t)st.st_size;
                v->size += f->size;
            }
        }
        free(full);
        free(r);
    }
    closedir(dir);
    free(d);
}

int reg_hf_list(sl_reg_version ***out, size_t *n, size_t *cap, sl_error *err) {
    char *cache = sl_reg_hf_cache_dir();
    DIR *d = cache ? opendir(cache) : NULL;
    if (!d) { free(cache); return 0; }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (strncmp(e->d_name, "models--", 8) != 0) continue;
        const char *rest = e->d_name + 8, *sep = strstr(rest, "--");
        if (!sep) continue;
        char *model = sl_fmt("%.*s/%s", (int)(sep - rest), rest, sep + 2);
        char *refs = sl_fmt("%s/%s/refs", cache, e->d_name);
        DIR *rd = refs ? opendir(refs) : NULL;
        struct dirent *re;
        while (rd && model && (re = readdir(rd))) {
            if (re->d_name[0] == '.') continue;
            char *refp = sl_fmt("%s/%s", refs, re->d_name);
            char commit[41];
            struct stat st;
            if (refp && read_ref(refp, commit) && stat(refp, &st) == 0) {
                char *snap = sl_fmt("%s/%s/snapshots/%s", cache, e->d_name, commit);
                if (snap && sl_path_is_dir(snap)) {
                    sl_reg_version *v = calloc(1, sizeof *v);
                    if (!v) { free(snap); free(refp); rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
                    v->model = strdup(model);
                    v->revision = strdup(commit);
                    v->ref = strdup(re->d_name);
                    v->created = (double)st.st_mtime;
                    v->source = strdup("hf-cache");
                    v->path = snap;
                    snap = NULL;
                    size_t fcap = 0;
                    snapshot_files(v->path, "", v, &fcap);
                    reg_describe(v, v->path, false);
                    if (*n == *cap) {
                        *cap = *cap ? *cap * 2 : 16;
                        sl_reg_version **na = realloc(*out, *cap * sizeof *na);
                        if (!na) { sl_reg_version_free(v); free(refp); rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
                        *out = na;
                    }
                    (*out)[(*n)++] = v;
                }
                free(snap);
            }
            free(refp);
        }
        if (rd) closedir(rd);
        free(refs);
        free(model);
    }
    closedir(d);
    free(cache);
    return rc;
}

static int write_small_atomic(const char *path, const char *data, sl_error *err) {
    char *tmp = sl_fmt("%s.tmp-%d", path, (int)getpid());
    int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    if (fd < 0) { free(tmp); return sl_errorf(err, SL_EIO, "%s: cannot write: %s", path, strerror(errno)); }
    size_t len = strlen(data);
    bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        return sl_errorf(err, SL_EIO, "%s: cannot write: %s", path, strerror(errno));
    }
    free(tmp);
    return 0;
}

int reg_hf_write(const char *cache, const char *repo, const char *ref, const char *commit, const sl_reg *r,
                 const sl_reg_version *v, char *const *etags, sl_error *err) {
    char *folder = repo_folder(cache, repo);
    if (!folder) return sl_errorf(err, SL_EINVAL, "%s: not an org/name repo id", repo);
    char *blobs = sl_fmt("%s/blobs", folder), *refs = sl_fmt("%s/refs", folder),
         *snap = sl_fmt("%s/snapshots/%s", folder, commit);
    int rc = sl_mkdir_p(blobs, err);
    if (!rc) rc = sl_mkdir_p(refs, err);
    if (!rc) rc = sl_mkdir_p(snap, err);
    for (size_t i = 0; !rc && i < v->n_files; i++) {
        const sl_reg_file *f = &v->files[i];
        char *dst = sl_fmt("%s/%s", blobs, etags[i]);
        char *src = reg_blob_path(r, f->sha256);
        struct stat st;
        if (dst && src && stat(dst, &st) != 0) {
            char *tmp = sl_fmt("%s.silica-%d.incomplete", dst, (int)getpid());
            if (link(src, tmp) != 0) {
                sl_error e2 = {0};
                if (sl_copy_file(src, tmp, &e2)) rc = sl_errorf(err, SL_EIO, "%s: %s", dst, e2.msg);
            }
            if (!rc && rename(tmp, dst) != 0) rc = sl_errorf(err, SL_EIO, "%s: cannot write blob: %s", dst, strerror(errno));
            if (rc) unlink(tmp);
            free(tmp);
        }
        char *lp = sl_fmt("%s/%s", snap, f->path);
        int depth = 2;
        for (const char *c = f->path; *c; c++) depth += *c == '/';
        char target[512] = "";
        for (int k = 0; k < depth && strlen(target) < 400; k++) strcat(target, "../");
        snprintf(target + strlen(target), sizeof target - strlen(target), "blobs/%s", etags[i]);
        if (!rc && lp) {
            char *slash = strrchr(lp, '/');
            if (slash && slash > lp + strlen(snap)) { *slash = 0; rc = sl_mkdir_p(lp, err); *slash = '/'; }
            char *tmpl = sl_fmt("%s.tmp-%d", lp, (int)getpid());
            unlink(tmpl);
            if (!rc && (symlink(target, tmpl) != 0 || rename(tmpl, lp) != 0))
                rc = sl_errorf(err, SL_EIO, "%s: cannot create symlink: %s", lp, strerror(errno));
            if (rc && tmpl) unlink(tmpl);
            free(tmpl);
        }
        free(lp);
        free(dst);
        free(src);
    }
    if (!rc && ref) {
        char *rp = sl_fmt("%s/%s", refs, ref);
        char *slash = rp ? strrchr(rp, '/') : NULL;
        if (slash && slash > rp + strlen(refs)) { *slash = 0; rc = sl_mkdir_p(rp, err); *slash = '/'; }
        if (!rc) rc = write_small_atomic(rp, commit, err);
        free(rp);
    }
    free(folder);
    free(blobs);
    free(refs);
    free(snap);
    return rc;
}
