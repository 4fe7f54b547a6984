/*
 * reg_maint.c — adding versions (import, commit, tag) and keeping the store
 * sound (rm, gc, du, verify, the first-use digest check, name resolution).
 *
 * Invariants:
 *  - Adding holds the store lock shared; rm, gc and verify hold it exclusive,
 *    so a blob is deleted only when no process can be about to reference it.
 *  - rm deletes index rows first (one transaction), then the snapshot, then
 *    blobs no longer referenced by any file row: a crash in between leaves
 *    only unreferenced blobs, which gc removes.
 *  - verify never deletes: corrupt blobs move to quarantine/<sha256>.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reg_impl.h"

/* ------------------------------------------------------------------ */
/* import                                                               */

typedef struct walk {
    sl_reg *r;
    sl_reg_file *files;
    size_t n, cap;
    uint64_t size;
} walk;

static int walk_dir(walk *w, const char *root, const char *rel, sl_error *err) {
    char *dpath = rel[0] ? sl_fmt("%s/%s", root, rel) : strdup(root);
    DIR *d = dpath ? opendir(dpath) : NULL;
    if (!d) {
        int rc = sl_errorf(err, SL_EIO, "%s: cannot read directory: %s", dpath ? dpath : root, strerror(errno));
        free(dpath);
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        const char *nm = e->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..") || !strcmp(nm, ".git") || !strcmp(nm, ".cache")) continue;
        char *r = rel[0] ? sl_fmt("%s/%s", rel, nm) : strdup(nm);
        char *full = sl_fmt("%s/%s", dpath, nm);
        struct stat st;
        if (!r || !full) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else if (stat(full, &st) != 0) rc = sl_errorf(err, SL_EIO, "%s: %s", full, strerror(errno));
        else if (S_ISDIR(st.st_mode)) rc = walk_dir(w, root, r, err);
        else if (S_ISREG(st.st_mode)) {
            if (w->n == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 16;
                sl_reg_file *nf = realloc(w->files, w->cap * sizeof *nf);
                if (!nf) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
                w->files = nf;
            }
            sl_reg_file *f = &w->files[w->n];
            memset(f, 0, sizeof *f);
            rc = reg_blob_put_file(w->r, full, f->sha256, &f->size, err);
            if (!rc) {
                f->path = r;
                r = NULL;
                w->size += f->size;
                w->n++;
            }
        }
        free(r);
        free(full);
    }
    closedir(d);
    free(dpath);
    return rc;
}

int sl_reg_commit_version(sl_reg *r, sl_reg_version *v, sl_error *err) {
    int rc = reg_lock(r, LOCK_SH, err);
    if (rc) return rc;
    for (size_t i = 0; i < v->n_files && !rc; i++)
        if (!reg_blob_exists(r, v->files[i].sha256, v->files[i].size))
            rc = sl_errorf(err, SL_EIO, "%s: blob %s of %s is missing from the store", v->model, v->files[i].sha256,
                           v->files[i].path);
    if (!rc) rc = reg_build_snapshot(r, v, err);
    if (!rc) rc = reg_db_insert_version(r, v, err);
    reg_unlock(r);
    return rc;
}

int sl_reg_import_dir(sl_reg *r, const char *dir, const char *model, const char *revision, const char *ref,
                      const sl_reg_lineage *lin, sl_reg_version **out, sl_error *err) {
    if (out) *out = NULL;
    sl_reg_name nm;
    int rc = sl_reg_parse_name(model, &nm, err);
    if (rc) return rc;
    if ((rc = reg_lock(r, LOCK_SH, err))) { sl_reg_name_free(&nm); return rc; }
    walk w = {.r = r};
    struct stat st;
    if (stat(dir, &st) != 0) rc = sl_errorf(err, SL_EIO, "%s: %s", dir, strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = walk_dir(&w, dir, "", err);
    else {
        w.files = calloc(1, sizeof *w.files);
        if (!w.files) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else if (!(rc = reg_blob_put_file(r, dir, w.files[0].sha256, &w.files[0].size, err))) {
            w.files[0].path = strdup(sl_path_basename(dir));
            w.size = w.files[0].size;
            w.n = 1;
        }
    }
    if (!rc && w.n == 0) rc = sl_errorf(err, SL_EINVAL, "%s: no files to import", dir);
    sl_reg_version *v = calloc(1, sizeof *v);
    if (!rc && !v) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (v) {
        v->model = strdup(nm.model);
        v->files = w.files;
        v->n_files = w.n;
        w.files = NULL;
        w.n = 0;
        v->size = w.size;
    }
    if (!rc) {
        v->revision = revision ? strdup(revision) : reg_content_revision(v->files, v->n_files);
        v->ref = sl_strdup0(ref);
        if (nm.tag) {
            v->tags = calloc(1, sizeof *v->tags);
            if (v->tags) v->tags[v->n_tags++] = strdup(nm.tag);
        }
        if (lin) {
            v->lineage.kind = sl_strdup0(lin->kind);
            v->lineage.endpoint = sl_strdup0(lin->endpoint);
            v->lineage.repo = sl_strdup0(lin->repo);
            v->lineage.commit = sl_strdup0(lin->commit);
            v->lineage.parent = sl_strdup0(lin->parent);
            v->lineage.command = sl_strdup0(lin->command);
        }
        reg_describe(v, dir, true);
        rc = sl_reg_commit_version(r, v, err);
    }
    for (size_t i = 0; i < w.n; i++) free(w.files[i].path);
    free(w.files);
    reg_unlock(r);
    sl_reg_name_free(&nm);
    if (!rc && out) *out = v;
    else sl_reg_version_free(v);
    return rc;
}

int sl_reg_tag(sl_reg *r, const char *src, const char *dst, sl_error *err) {
    sl_reg_version *v = NULL;
    sl_reg_name dn;
    int rc = sl_reg_parse_name(dst, &dn, err);
    if (rc) return rc;
    if (dn.revision) {
        sl_reg_name_free(&dn);
        return sl_errorf(err, SL_EINVAL, "'%s': a new name takes no @revision (it keeps the source's)", dst);
    }
    if ((rc = sl_reg_find(r, src, &v, err))) { sl_reg_name_free(&dn); return rc; }
    if (!dn.tag && !strcmp(dn.model, v->model)) {
        rc = sl_errorf(err, SL_EINVAL, "'%s': already the name of %s; add a :tag", dst, src);
    } else {
        for (size_t i = 0; i < v->n_tags; i++) free(v->tags[i]);
        free(v->tags);
        v->tags = NULL;
        v->n_tags = 0;
        if (dn.tag) {
            v->tags = calloc(1, sizeof *v->tags);
            if (v->tags) v->tags[v->n_tags++] = strdup(dn.tag);
        }
        if (strcmp(dn.model, v->model) != 0) {
            char *parent = sl_fmt("%s@%s", v->model, v->revision);
            free(v->model);
            v->model = strdup(dn.model);
            sl_reg_lineage *l = &v->lineage;
            free(l->kind);
            free(l->endpoint);
            free(l->repo);
            free(l->commit);
            free(l->parent);
            free(l->command);
            memset(l, 0, sizeof *l);
            v->lineage.kind = strdup("tag");
            v->lineage.parent = parent;
            v->lineage.command = sl_fmt("silica tag %s %s", src, dst);
            free(v->ref);
            v->ref = NULL;
            v->id = 0;
            v->created = 0;
        }
        rc = sl_reg_commit_version(r, v, err);
    }
    sl_reg_version_free(v);
    sl_reg_name_free(&dn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* rm / gc / du                                                         */

static int drop_blob_if_unused(sl_reg *r, const char *sha, uint64_t *bytes, sl_error *err) {
    int64_t refs = 0;
    int rc = reg_db_blob_refs(r, sha, &refs, err);
    if (rc || refs > 0) return rc;
    char *p = reg_blob_path(r, sha);
    struct stat st;
    if (p && lstat(p, &st) == 0 && unlink(p) == 0 && bytes) *bytes += (uint64_t)st.st_size;
    free(p);
    return 0;
}

int sl_reg_rm(sl_reg *r, const char *name, sl_reg_stats *st, sl_error *err) {
    memset(st, 0, sizeof *st);
    int rc = reg_lock(r, LOCK_EX, err);
    if (rc) return rc;
    sl_reg_version *v = NULL;
    if (!(rc = sl_reg_find(r, name, &v, err))) {
        char *sql = sl_fmt("BEGIN IMMEDIATE; DELETE FROM versions WHERE id=%lld;"
                           " DELETE FROM models WHERE id NOT IN (SELECT model_id FROM versions); COMMIT;",
                           (long long)v->id);
        rc = reg_db_exec(r, sql, err);
        free(sql);
        if (rc) reg_db_exec(r, "ROLLBACK", NULL);
        if (!rc) {
            sl_rm_rf(v->path);
            st->versions = 1;
            for (size_t i = 0; i < v->n_files && !rc; i++) {
                uint64_t before = st->bytes;
                rc = drop_blob_if_unused(r, v->files[i].sha256, &st->bytes, err);
                if (st->bytes != before) st->blobs++;
            }
        }
    }
    sl_reg_version_free(v);
    reg_unlock(r);
    return rc;
}

typedef int (*entry_fn)(sl_reg *r, const char *dir, const char *name, void *ctx, sl_error *err);

static int for_each(sl_reg *r, const char *dir, entry_fn fn, void *ctx, sl_error *err) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) rc = fn(r, dir, e->d_name, ctx, err);
    closedir(d);
    return rc;
}

typedef struct scan {
    sl_reg_stats *st;
    bool collect;
    sl_reg_report_fn cb;
    void *cbctx;
    uint64_t bad;
} scan;

static int blob_entry(sl_reg *r, const char *dir, const char *name, void *ctx, sl_error *err) {
    scan *s = ctx;
    char *p = sl_fmt("%s/%s", dir, name);
    struct stat st;
    int rc = 0;
    if (p && lstat(p, &st) == 0) {
        if (s->collect && !sl_is_hex(name, 64)) {
            unlink(p);   /* not a blob name: a stray file */
        } else if (s->collect) {
            uint64_t gone = 0;
            rc = drop_blob_if_unused(r, name, &gone, err);
            if (gone) { s->st->blobs++; s->st->bytes += gone; }
        } else {
            s->st->blobs++;
            s->st->bytes += (uint64_t)st.st_size;
        }
    }
    free(p);
    return rc;
}

static int blob_dir_entry(sl_reg *r, const char *dir, const char *name, void *ctx, sl_error *err) {
    char *p = sl_fmt("%s/%s", dir, name);
    int rc = p ? for_each(r, p, blob_entry, ctx, err) : 0;
    if (p && ((scan *)ctx)->collect) rmdir(p);  /* only succeeds when empty */
    free(p);
    return rc;
}

static int count_entry(sl_reg *r, const char *dir, const char *name, void *ctx, sl_error *err) {
    uint64_t *c = ctx;
    char *p = sl_fmt("%s/%s", dir, name);
    struct stat st;
    if (p && lstat(p, &st) == 0) { c[0]++; c[1] += (uint64_t)st.st_size; }
    free(p);
    return 0;
}

static int rm_entry(sl_reg *r, const char *dir, const char *name, void *ctx, sl_error *err) {
    char *p = sl_fmt("%s/%s", dir, name);
    if (p) sl_rm_rf(p);
    if (ctx) (*(uint64_t *)ctx)++;
    free(p);
    return 0;
}

typedef struct snap_ctx {
    const char *org;
    const char *name;
    uint64_t removed;
} snap_ctx;

static int snap_rev_entry(sl_reg *r, const char *dir, const char *rev, void *ctx, sl_error *err) {
    snap_ctx *c = ctx;
    char *model = sl_fmt("%s/%s", c->org, c->name);
    if (model && (rev[0] == '.' || !reg_db_known_snapshot(r, model, rev))) {
        char *p = sl_fmt("%s/%s", dir, rev);
        if (p) sl_rm_rf(p);
        free(p);
        c->removed++;
    }
    free(model);
    return 0;
}

static int snap_name_entry(sl_reg *r, const char *dir, const char *name, void *ctx, sl_error *err) {
    snap_ctx *c = ctx;
    c->name = name;
    char *p = sl_fmt("%s/%s", dir, name);
    int rc = p ? for_each(r, p, snap_rev_entry, c, err) : 0;
    if (p) rmdir(p);
    free(p);
    return rc;
}

static int snap_org_entry(sl_reg *r, const char *dir, const char *org, void *ctx, sl_error *err) {
    snap_ctx *c = ctx;
    c->org = org;
    char *p = sl_fmt("%s/%s", dir, org);
    int rc = p ? for_each(r, p, snap_name_entry, c, err) : 0;
    if (p) rmdir(p);
    free(p);
    return rc;
}

int sl_reg_gc(sl_reg *r, sl_reg_stats *st, sl_error *err) {
    memset(st, 0, sizeof *st);
    int rc = reg_lock(r, LOCK_EX, err);
    if (rc) return rc;
    scan s = {.st = st, .collect = true};
    char *blobs = sl_fmt("%s/blobs", r->home), *tmp = sl_fmt("%s/tmp", r->home), *snaps = sl_fmt("%s/snapshots", r->home);
    snap_ctx sc = {0};
    rc = for_each(r, snaps, snap_org_entry, &sc, err);
    st->versions = sc.removed;
    if (!rc) rc = for_each(r, blobs, blob_dir_entry, &s, err);
    if (!rc) rc = for_each(r, tmp, rm_entry, &st->tmp, err);
    uint64_t pc[2] = {0, 0};
    char *part = sl_fmt("%s/partial", r->home);
    if (!rc) for_each(r, part, count_entry, pc, err);
    st->partials = pc[0];
    st->partial_bytes = pc[1];
    if (!rc) reg_db_exec(r, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
    free(part);
    free(blobs);
    free(tmp);
    free(snaps);
    reg_unlock(r);
    return rc;
}

int sl_reg_du(sl_reg *r, sl_reg_stats *st, sl_error *err) {
    memset(st, 0, sizeof *st);
    scan s = {.st = st};
    char *blobs = sl_fmt("%s/blobs", r->home);
    int rc = for_each(r, blobs, blob_dir_entry, &s, err);
    free(blobs);
    uint64_t pc[2] = {0, 0}, tc[2] = {0, 0}, qc[2] = {0, 0};
    char *part = sl_fmt("%s/partial", r->home), *tmp = sl_fmt("%s/tmp", r->home), *q = sl_fmt("%s/quarantine", r->home);
    for_each(r, part, count_entry, pc, err);
    for_each(r, tmp, count_entry, tc, err);
    for_each(r, q, count_entry, qc, err);
    free(part);
    free(tmp);
    free(q);
    st->partials = pc[0];
    st->partial_bytes = pc[1];
    st->tmp = tc[0];
    st->quarantined = qc[0];
    sqlite3_stmt *stmt;
    if (!rc && sqlite3_prepare_v2(r->db, "SELECT count(*) FROM versions", -1, &stmt, NULL) == SQLITE_OK) {
        if (sqlite3_step(stmt) == SQLITE_ROW) st->versions = (uint64_t)sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* verify                                                               */

/* 0 ok, 1 missing, 2 wrong size, 3 wrong digest */
static int check_blob(sl_reg *r, const sl_reg_file *f, sl_error *err) {
    char *p = reg_blob_path(r, f->sha256);
    struct stat st;
    int res = 0;
    if (!p || stat(p, &st) != 0) res = 1;
    else if ((uint64_t)st.st_size != f->size) res = 2;
    else {
        char got[65];
        uint64_t sz;
        if (sl_hash_file(p, got, &sz, err) || strcmp(got, f->sha256) != 0) res = 3;
    }
    free(p);
    return res;
}

static void quarantine(sl_reg *r, const char *sha) {
    char *p = reg_blob_path(r, sha), *q = sl_fmt("%s/quarantine/%s", r->home, sha);
    if (p && q) rename(p, q);
    free(p);
    free(q);
}

static const char *k_problem[] = {"ok", "missing", "wrong size, moved to quarantine/", "corrupt (sha256 mismatch), moved to quarantine/"};

int sl_reg_verify(sl_reg *r, const char *name, sl_reg_report_fn cb, void *ctx, uint64_t *bad, sl_error *err) {
    *bad = 0;
    int rc = reg_lock(r, LOCK_EX, err);
    if (rc) return rc;
    sl_reg_version **vs = NULL;
    size_t n = 0;
    if (name) {
        sl_reg_version *v;
        if (!(rc = sl_reg_find(r, name, &v, err))) {
            vs = malloc(sizeof *vs);
            if (vs) { vs[0] = v; n = 1; }
        }
    } else if (!(rc = sl_reg_list(r, false, &vs, &n, err))) {
        for (size_t i = 0; i < n && !rc; i++) {
            sl_reg_version *full;
            if (!(rc = reg_db_load_by_id(r, vs[i]->id, true, &full, err))) {
                sl_reg_version_free(vs[i]);
                vs[i] = full;
            }
        }
    }
    /* each distinct blob is hashed once; results remembered by sha */
    char **seen = NULL;
    int *seen_res = NULL;
    size_t n_seen = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        sl_reg_version *v = vs[i];
        int vbad = 0;
        for (size_t k = 0; k < v->n_files; k++) {
            const sl_reg_file *f = &v->files[k];
            int res = -1;
            for (size_t j = 0; j < n_seen; j++)
                if (!strcmp(seen[j], f->sha256)) { res = seen_res[j]; break; }
            if (res < 0) {
                res = check_blob(r, f, NULL);
                if (res >= 2) quarantine(r, f->sha256);
                char **ns = realloc(seen, (n_seen + 1) * sizeof *ns);
                int *nr = realloc(seen_res, (n_seen + 1) * sizeof *nr);
                if (ns) seen = ns;
                if (nr) seen_res = nr;
                if (ns && nr) { seen[n_seen] = strdup(f->sha256); seen_res[n_seen++] = res; }
            }
            if (res) {
                vbad++;
                (*bad)++;
                char *what = sl_fmt("%s@%.12s/%s", v->model, v->revision, f->path);
                if (cb) cb(ctx, what ? what : f->path, k_problem[res]);
                free(what);
            }
        }
        if (!vbad) {
            if (!sl_path_is_dir(v->path)) reg_build_snapshot(r, v, NULL);   /* repair a lost snapshot */
            char *sql = sl_fmt("UPDATE versions SET verified=%.6f WHERE id=%lld", sl_now(), (long long)v->id);
            if (sql) reg_db_exec(r, sql, NULL);
            free(sql);
        }
    }
    for (size_t j = 0; j < n_seen; j++) free(seen[j]);
    free(seen);
    free(seen_res);
    sl_reg_versions_free(vs, n);
    reg_unlock(r);
    return rc;
}

int sl_reg_check_version(sl_reg *r, const sl_reg_version *v, sl_error *err) {
    sqlite3_stmt *s;
    double verified = 0;
    if (sqlite3_prepare_v2(r->db, "SELECT verified FROM versions WHERE id=?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, v->id);
        if (sqlite3_step(s) == SQLITE_ROW) verified = sqlite3_column_double(s, 0);
        sqlite3_finalize(s);
    }
    bool need = verified <= 0;
    for (size_t i = 0; i < v->n_files && !need; i++) {
        char *p = reg_blob_path(r, v->files[i].sha256);
        struct stat st;
        /* a changed blob (write, chmod, relink) has a newer ctime: rehash */
#ifdef __APPLE__
        double ctime_s = p && stat(p, &st) == 0 ? (double)st.st_ctimespec.tv_sec + st.st_ctimespec.tv_nsec / 1e9 : -1;
#else
        double ctime_s = p && stat(p, &st) == 0 ? (double)st.st_ctim.tv_sec + st.st_ctim.tv_nsec / 1e9 : -1;
#endif
        if (ctime_s < 0 || ctime_s >= verified || (uint64_t)st.st_size != v->files[i].size)
            need = true;
        free(p);
    }
    if (!need) return 0;
    double start = sl_now();
    for (size_t i = 0; i < v->n_files; i++) {
        int res = check_blob(r, &v->files[i], NULL);
        if (res)
            return sl_errorf(err, SL_EINVAL, "%s@%.12s: %s is %s (blob %s); run `silica verify` and pull again",
                             v->model, v->revision, v->files[i].path, res == 3 ? "corrupt (sha256 mismatch)" : k_problem[res],
                             v->files[i].sha256);
    }
    char *sql = sl_fmt("UPDATE versions SET verified=%.6f WHERE id=%lld", start, (long long)v->id);
    if (sql) reg_db_exec(r, sql, NULL);
    free(sql);
    return 0;
}

/* ------------------------------------------------------------------ */
/* names -> paths                                                       */

int sl_reg_resolve(const char *name, char **out, sl_error *err) {
    *out = NULL;
    sl_reg_name nm;
    int rc = sl_reg_parse_name(name, &nm, err);
    if (rc) return rc;
    sl_reg *r = NULL;
    if ((rc = sl_reg_open(NULL, &r, err))) { sl_reg_name_free(&nm); return rc; }
    sl_reg_version *v = NULL;
    sl_error ferr = {0};
    if (!reg_db_find(r, &nm, &v, &ferr)) {
        rc = sl_reg_check_version(r, v, err);
        if (!rc) *out = strdup(v->path);
        sl_reg_version_free(v);
    } else {
        char *cache = sl_reg_hf_cache_dir();
        char *snap = (cache && !nm.tag) ? sl_reg_hf_snapshot(cache, nm.model, nm.revision ? nm.revision : "main", NULL) : NULL;
        if (snap) *out = snap;
        else rc = sl_errorf(err, SL_EINVAL, "%s", ferr.msg);
        free(cache);
    }
    sl_reg_close(r);
    sl_reg_name_free(&nm);
    return rc;
}

int sl_reg_register_derived(const char *src_name, const char *dst_dir, const char *dst_model, const char *command,
                            sl_error *err) {
    sl_reg *r = NULL;
    int rc = sl_reg_open(NULL, &r, err);
    if (rc) return rc;
    sl_reg_version *src = NULL;
    if (!(rc = sl_reg_find(r, src_name, &src, err))) {
        sl_reg_lineage lin = {.kind = "derived", .command = (char *)command};
        char *parent = sl_fmt("%s@%s", src->model, src->revision);
        lin.parent = parent;
        rc = sl_reg_import_dir(r, dst_dir, dst_model ? dst_model : src->model, NULL, NULL, &lin, NULL, err);
        free(parent);
    }
    sl_reg_version_free(src);
    sl_reg_close(r);
    return rc;
}
