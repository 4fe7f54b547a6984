/*
 * reg_lfs.c — the store meets Git LFS: a checkout of pointer files plus its
 * LFS remote becomes a store version (sl_reg_lfs_fetch), and a store version
 * becomes LFS objects on a remote plus the pointer files to commit
 * (sl_reg_lfs_push).
 *
 * Invariants: objects are verified (sha256 + size) by lfs_client.c before
 * they are linked into the staging tree; the staging tree lives under the
 * store's tmp/ and is removed afterwards (gc removes it after a crash); the
 * version is registered by sl_reg_import_dir, which hashes every file again.
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
#include "silica/checkpoint.h"
#include "silica/lfs.h"

int sl_lfs_pointer_for_file(const char *path, sl_lfs_pointer *p, sl_error *err) {
    memset(p, 0, sizeof *p);
    return sl_hash_file(path, p->oid, &p->size, err);
}

static const char *const k_weights[] = {".safetensors", ".gguf", ".bin", ".npz", ".pt", ".pth", ".npy", NULL};

static bool is_weight(const char *p) {
    for (int i = 0; k_weights[i]; i++)
        if (sl_str_ends_with(p, k_weights[i])) return true;
    return false;
}

static int read_pointer(const char *file, sl_lfs_pointer *p, bool *is_ptr, sl_error *err) {
    *is_ptr = false;
    struct stat st;
    if (stat(file, &st) != 0) return sl_errorf(err, SL_EIO, "%s: %s", file, strerror(errno));
    if (st.st_size >= SL_LFS_POINTER_MAX || st.st_size == 0) return 0;
    char *buf = NULL;
    size_t len = 0;
    int rc = sl_read_file(file, SL_LFS_POINTER_MAX, &buf, &len, err);
    if (rc) return rc;
    if (sl_lfs_is_pointer((const uint8_t *)buf, len)) {
        rc = sl_lfs_pointer_parse((const uint8_t *)buf, len, file, p, err);
        *is_ptr = rc == 0;
    }
    free(buf);
    return rc;
}

/* ---- fetch ---- */
typedef struct ptrs {
    char **rel;
    sl_lfs_pointer *p;
    bool *is_ptr;
    size_t n, cap;
} ptrs;

static int walk(const char *root, const char *rel, ptrs *ps, sl_error *err) {
    char *dir = rel[0] ? sl_path_join(root, rel) : strdup(root);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        int rc = sl_errorf(err, SL_EIO, "%s: cannot read directory", dir ? dir : root);
        free(dir);
        return rc;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git")) continue;
        char *r = rel[0] ? sl_path_join(rel, e->d_name) : strdup(e->d_name);
        char *full = sl_path_join(root, r);
        struct stat st;
        if (full && stat(full, &st) == 0 && S_ISDIR(st.st_mode)) rc = walk(root, r, ps, err);
        else if (full && S_ISREG(st.st_mode)) {
            if (ps->n == ps->cap) {
                ps->cap = ps->cap ? ps->cap * 2 : 16;
                ps->rel = realloc(ps->rel, ps->cap * sizeof *ps->rel);
                ps->p = realloc(ps->p, ps->cap * sizeof *ps->p);
                ps->is_ptr = realloc(ps->is_ptr, ps->cap * sizeof *ps->is_ptr);
                if (!ps->rel || !ps->p || !ps->is_ptr) { free(r); free(full); closedir(d); free(dir); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
            }
            rc = read_pointer(full, &ps->p[ps->n], &ps->is_ptr[ps->n], err);
            if (!rc) { ps->rel[ps->n++] = r; r = NULL; }
        }
        free(r);
        free(full);
    }
    closedir(d);
    free(dir);
    return rc;
}

static int mkparent(const char *path, sl_error *err) {
    char *d = strdup(path);
    char *s = d ? strrchr(d, '/') : NULL;
    int rc = 0;
    if (s) {
        *s = 0;
        rc = sl_mkdir_p(d, err);
    }
    free(d);
    return rc;
}

int sl_reg_lfs_fetch(sl_reg *r, const char *remote, const char *dir, const char *name, sl_reg_version **out,
                     size_t *n_objects, sl_error *err) {
    *out = NULL;
    *n_objects = 0;
    ptrs ps = {0};
    int rc = walk(dir, "", &ps, err);
    size_t nobj = 0;
    sl_lfs_object *objs = calloc(ps.n ? ps.n : 1, sizeof *objs);
    for (size_t i = 0; i < ps.n; i++)
        if (ps.is_ptr[i]) {
            memcpy(objs[nobj].oid, ps.p[i].oid, 65);
            objs[nobj++].size = ps.p[i].size;
        }
    char *work = sl_path_join(sl_reg_home(r), "tmp");
    char *base = NULL, *objdir = NULL, *tree = NULL;
    if (work) {
        char tmpl[64];
        snprintf(tmpl, sizeof tmpl, "lfs-%d", (int)getpid());
        base = sl_path_join(work, tmpl);
        objdir = base ? sl_path_join(base, "objects") : NULL;
        tree = base ? sl_path_join(base, "tree") : NULL;
    }
    if (!rc && !nobj) rc = sl_errorf(err, SL_EINVAL, "%s: no Git LFS pointer files found", dir);
    if (!rc) rc = sl_lfs_fetch(remote, objs, nobj, objdir, err);
    for (size_t i = 0; !rc && i < ps.n; i++) {
        char *dst = sl_path_join(tree, ps.rel[i]);
        char *src = ps.is_ptr[i] ? sl_path_join(objdir, ps.p[i].oid) : sl_path_join(dir, ps.rel[i]);
        rc = mkparent(dst, err);
        if (!rc && link(src, dst) != 0) rc = sl_copy_file(src, dst, err);
        free(dst);
        free(src);
    }
    if (!rc) {
        sl_reg_lineage lin = {.kind = "lfs", .endpoint = (char *)remote};
        rc = sl_reg_import_dir(r, tree, name, NULL, NULL, &lin, out, err);
        *n_objects = nobj;
    }
    if (base) sl_rm_rf(base);
    for (size_t i = 0; i < ps.n; i++) free(ps.rel[i]);
    free(ps.rel);
    free(ps.p);
    free(ps.is_ptr);
    free(objs);
    free(work);
    free(base);
    free(objdir);
    free(tree);
    return rc;
}

/* ---- push ---- */
typedef struct push_ctx {
    const sl_reg_version *v;
    char **paths;
} push_ctx;

static const char *push_src(void *ctx, size_t i) { return ((push_ctx *)ctx)->paths[i]; }

static int write_pointers(const sl_reg_version *v, const char *dir, sl_error *err) {
    int rc = 0;
    bool ext_used[8] = {false};
    for (size_t i = 0; !rc && i < v->n_files; i++) {
        const sl_reg_file *f = &v->files[i];
        char *dst = sl_path_join(dir, f->path);
        char *src = sl_path_join(v->path, f->path);
        rc = mkparent(dst, err);
        if (!rc && is_weight(f->path)) {
            sl_lfs_pointer p = {0};
            memcpy(p.oid, f->sha256, 65);
            p.size = f->size;
            char buf[SL_LFS_POINTER_MAX];
            size_t n = sl_lfs_pointer_format(&p, buf, sizeof buf);
            FILE *o = fopen(dst, "wb");
            if (!o || fwrite(buf, 1, n, o) != n) rc = sl_errorf(err, SL_EIO, "%s: cannot write pointer", dst);
            if (o) fclose(o);
            for (int k = 0; k_weights[k]; k++)
                if (sl_str_ends_with(f->path, k_weights[k])) ext_used[k] = true;
        } else if (!rc) {
            rc = sl_copy_file(src, dst, err);
        }
        free(dst);
        free(src);
    }
    char *ga = sl_path_join(dir, ".gitattributes");
    char *old = NULL;
    size_t ol = 0;
    if (sl_path_exists(ga)) sl_read_file(ga, 1 << 20, &old, &ol, NULL);
    FILE *o = !rc ? fopen(ga, "ab") : NULL;
    for (int k = 0; o && k_weights[k]; k++) {
        char line[96];
        snprintf(line, sizeof line, "*%s filter=lfs diff=lfs merge=lfs -text\n", k_weights[k]);
        if (ext_used[k] && (!old || !strstr(old, line))) fputs(line, o);
    }
    if (o) fclose(o);
    free(old);
    free(ga);
    return rc;
}

int sl_reg_lfs_push(sl_reg *r, const char *name, const char *remote, const char *pointers, sl_reg_version **out,
                    sl_error *err) {
    *out = NULL;
    sl_reg_version *v = NULL;
    int rc = sl_reg_find(r, name, &v, err);
    if (!rc) rc = sl_reg_check_version(r, v, err);
    push_ctx pc = {.v = v};
    sl_lfs_object *objs = NULL;
    if (!rc) {
        objs = calloc(v->n_files ? v->n_files : 1, sizeof *objs);
        pc.paths = calloc(v->n_files ? v->n_files : 1, sizeof *pc.paths);
        for (size_t i = 0; objs && pc.paths && i < v->n_files; i++) {
            memcpy(objs[i].oid, v->files[i].sha256, 65);
            objs[i].size = v->files[i].size;
            pc.paths[i] = sl_path_join(v->path, v->files[i].path);
        }
        rc = sl_lfs_push(remote, objs, v->n_files, push_src, &pc, err);
    }
    if (!rc && pointers) rc = write_pointers(v, pointers, err);
    for (size_t i = 0; v && pc.paths && i < v->n_files; i++) free(pc.paths[i]);
    free(pc.paths);
    free(objs);
    if (rc) sl_reg_version_free(v);
    else *out = v;
    return rc;
}

