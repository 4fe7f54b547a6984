/*
 * reg_maint.c — adding versions (import, commit, tag, derived) and keeping
 * the store lean (rm, gc, du, name resolution).  verify is reg_verify.c.
 *
 * Invariants:
 *  - Adding holds the store lock shared; rm and gc hold it exclusive, so a
 *    blob is deleted only when no process can be about to reference it.
 *  - import only reads the user's files (reg_blob_put_file, REG_COPY).
 *  - rm deletes index rows first (one transaction), then the snapshot, then
 *    blobs no longer referenced by any file row: a crash in between leaves
 *    only unreferenced blobs, which gc removes.
 *  - gc empties tmp/ (sparing a live process's scratch directory) and the
 *    quarantine verify filled; partial downloads are kept for resuming.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/reg_impl.h"

/* ------------------------------------------------------------------ */
/* import                                                               */

typedef struct walk {
    sl_reg_file *files;   /* path (relative) and size; sha256 filled when stored */
    size_t n, cap;
    uint64_t size;
} walk;

/* Collect every regular file under root/rel (skipping .git and .cache). */
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
            sl_reg_file *f = &w->files[w->n++];
            memset(f, 0, sizeof *f);
            f->path = r;
            f->size = (uint64_t)st.st_size;
            w->size += f->size;
            r = NULL;
        }
        free(r);
        free(full);
    }
    closedir(d);
    free(dpath);
    return rc;
}

/* Hash every collected file into blobs/ (the source path: root/path, or
 * root itself for a one-file import). */
static int store_files(sl_reg *r, walk *w, const char *root, bool single, reg_put_mode mode, sl_error *err) {
    reg_meter m = {.fn = r->progress, .ctx = r->progress_ctx, .total = w->size, .what = root};
    uint64_t size = 0;
    int rc = 0;
    for (size_t i = 0; i < w->n && !rc; i++) {
        sl_reg_file *f = &w->files[i];
        char *src = single ? strdup(root) : sl_fmt("%s/%s", root, f->path);
        if (!src) return sl_errorf(err, SL_ENOMEM, "out of memory");
        rc = reg_blob_put_file(r, src, mode, f->sha256, &f->size, &m, err);
        size += f->size;
        free(src);
    }
    w->size = size;   /* what was hashed, should a file have changed since the walk */
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

int reg_import(sl_reg *r, const char *dir, const char *model, const char *revision, const char *ref,
               const sl_reg_lineage *lin, reg_put_mode mode, sl_reg_version **out, sl_error *err) {
    if (out) *out = NULL;
    sl_reg_name nm;
    int rc = sl_reg_parse_name(model, &nm, err);
    if (rc) return rc;
    if ((rc = reg_lock(r, LOCK_SH, err))) { sl_reg_name_free(&nm); return rc; }
    walk w = {0};
    struct stat st;
    bool single = false;
    if (stat(dir, &st) != 0) rc = sl_errorf(err, SL_EIO, "%s: %s", dir, strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = walk_dir(&w, dir, "", err);
    else {
        single = true;
        w.files = calloc(1, sizeof *w.files);
        if (!w.files || !(w.files[0].path = strdup(sl_path_basename(dir)))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else {
            w.n = 1;
            w.cap = 1;
            w.files[0].size = w.size = (uint64_t)st.st_size;
        }
    }
    if (!rc) rc = store_files(r, &w, dir, single, mode, err);
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
        if (mode == REG_MOVE) {   /* the source is gone: describe the snapshot */
            rc = reg_build_snapshot(r, v, err);
            char *snap = rc ? NULL : reg_snapshot_path(r, v->model, v->revision);
            if (snap) reg_describe(v, snap, true);
            free(snap);
        } else {
            reg_describe(v, dir, true);
        }
        if (!rc) rc = sl_reg_commit_version(r, v, err);
    }
    for (size_t i = 0; i < w.n; i++) free(w.files[i].path);
    free(w.files);
    reg_unlock(r);
    sl_reg_name_free(&nm);
    if (!rc && out) *out = v;
    else sl_reg_version_free(v);
    return rc;
}

int sl_reg_import_dir(sl_reg *r, const char *dir, const char *model, const char *revision, const char *ref,
                      const sl_reg_lineage *lin, sl_reg_version **out, sl_error *err) {
    return reg_import(r, dir, model, revision, ref, lin, REG_COPY, out, err);
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

/* Delete one version (index rows first, then its snapshot, then its blobs no
 * other version uses); the caller holds the exclusive lock. */
static int rm_version(sl_reg *r, const sl_reg_version *v, sl_reg_stats *st, sl_error *err) {
    char *sql = sl_fmt("BEGIN IMMEDIATE; DELETE FROM versions WHERE id=%lld;"
                       " DELETE FROM models WHERE id NOT IN (SELECT model_id FROM versions); COMMIT;",
                       (long long)v->id);
    int rc = sql ? reg_db_exec(r, sql, err) : sl_errorf(err, SL_ENOMEM, "out of memory");
    free(sql);
    if (rc) {
        reg_db_exec(r, "ROLLBACK", NULL);
        return rc;
    }
    sl_rm_rf(v->path);
    st->versions++;
    for (size_t i = 0; i < v->n_files && !rc; i++) {
        uint64_t before = st->bytes;
        rc = drop_blob_if_unused(r, v->files[i].sha256, &st->bytes, err);
        if (st->bytes != before) st->blobs++;
    }
    return rc;
}

/* Versions of model (with files), newest first. */
static int model_versions(sl_reg *r, const char *model, bool files, sl_reg_version ***out, size_t *n, sl_error *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(r->db, "SELECT v.id FROM versions v JOIN models m ON m.id=v.model_id WHERE m.name=?"
                           " ORDER BY v.created DESC, v.id DESC", -1, &s, NULL) != SQLITE_OK)
        return sl_errorf(err, SL_EIO, "%s/index.db: %s", r->home, sqlite3_errmsg(r->db));
    sqlite3_bind_text(s, 1, model, -1, SQLITE_TRANSIENT);
    int rc = 0;
    while (!rc && sqlite3_step(s) == SQLITE_ROW) {
        sl_reg_version **na = realloc(*out, (*n + 1) * sizeof *na);
        if (!na) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
        *out = na;
        rc = reg_db_load_by_id(r, sqlite3_column_int64(s, 0), files, &na[*n], err);
        if (!rc) (*n)++;
    }
    sqlite3_finalize(s);
    return rc;
}

int sl_reg_rm(sl_reg *r, const char *name, bool all, sl_reg_rm_result *res, sl_error *err) {
    memset(res, 0, sizeof *res);
    sl_reg_name nm;
    int rc = sl_reg_parse_name(name, &nm, err);
    if (rc) return rc;
    if (all && (nm.revision || nm.tag)) {
        sl_reg_name_free(&nm);
        return sl_errorf(err, SL_EINVAL, "'%s': --all removes every version of a model; give org/name alone", name);
    }
    if ((rc = reg_lock(r, LOCK_EX, err))) { sl_reg_name_free(&nm); return rc; }
    sl_reg_version **vs = NULL;
    size_t n = 0;
    if (all) {
        rc = model_versions(r, nm.model, true, &vs, &n, err);
        if (!rc && !n) rc = sl_errorf(err, SL_EINVAL, "%s: not in the store %s (see `silica list`)", nm.model, r->home);
    } else {
        vs = calloc(1, sizeof *vs);
        if (!vs) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else if (!(rc = reg_db_find(r, &nm, &vs[0], err))) n = 1;
    }
    res->removed = calloc(n ? n : 1, sizeof *res->removed);
    if (!rc && !res->removed) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = rm_version(r, vs[i], &res->st, err);
        if (!rc) {   /* hand the removed version (without its files) to the caller */
            sl_reg_version *v = vs[i];
            for (size_t k = 0; k < v->n_files; k++) free(v->files[k].path);
            free(v->files);
            v->files = NULL;
            v->n_files = 0;
            res->removed[res->n_removed++] = v;
            vs[i] = NULL;
        }
    }
    sl_reg_versions_free(vs, n);
    sl_reg_version **left = NULL;
    size_t n_left = 0;
    if (!model_versions(r, nm.model, false, &left, &n_left, NULL)) res->remaining = n_left;
    sl_reg_versions_free(left, n_left);
    reg_unlock(r);
    sl_reg_name_free(&nm);
    return rc;
}

void sl_reg_rm_result_free(sl_reg_rm_result *res) {
    if (!res) return;
    sl_reg_versions_free(res->removed, res->n_removed);
    memset(res, 0, sizeof *res);
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
    struct stat st;
    uint64_t *c = ctx;   /* optional: [count, bytes] */
    if (c && p && lstat(p, &st) == 0) { c[0]++; c[1] += (uint64_t)st.st_size; }
    if (p) sl_rm_rf(p);
    free(p);
    return 0;
}

/* tmp/: everything goes, except the scratch directory of a convert whose
 * process still runs (REG_SCRATCH-<pid>-...: sl_reg_scratch_dir). */
static int tmp_entry(sl_reg *r, const char *dir, const char *name, void *ctx, sl_error *err) {
    size_t pl = strlen(REG_SCRATCH);
    if (!strncmp(name, REG_SCRATCH, pl) && name[pl] == '-') {
        long pid = strtol(name + pl + 1, NULL, 10);
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) return 0;
    }
    return rm_entry(r, dir, name, ctx, err);
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
    uint64_t tc[2] = {0, 0}, qc[2] = {0, 0};
    if (!rc) rc = for_each(r, tmp, tmp_entry, tc, err);
    st->tmp = tc[0];
    char *q = sl_fmt("%s/quarantine", r->home);   /* verify's evidence: kept until gc */
    if (!rc && q) rc = for_each(r, q, rm_entry, qc, err);
    free(q);
    st->quarantined = qc[0];
    st->quarantined_bytes = qc[1];
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
    st->quarantined_bytes = qc[1];
    sqlite3_stmt *stmt;
    if (!rc && sqlite3_prepare_v2(r->db, "SELECT count(*) FROM versions", -1, &stmt, NULL) == SQLITE_OK) {
        if (sqlite3_step(stmt) == SQLITE_ROW) st->versions = (uint64_t)sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
    }
    return rc;
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

int sl_reg_register_derived(const sl_reg_derived *d, sl_reg_version **out, sl_error *err) {
    if (out) *out = NULL;
    sl_reg *r = NULL;
    int rc = sl_reg_open(NULL, &r, err);
    if (rc) return rc;
    sl_reg_version *src = NULL;
    char *parent = NULL, *origin = NULL;
    if (d->src_name) {
        if (!(rc = sl_reg_find(r, d->src_name, &src, err))) parent = sl_fmt("%s@%s", src->model, src->revision);
    } else if (d->src_path) {
        parent = realpath(d->src_path, NULL);
    }
    if (!rc && !d->move) origin = realpath(d->path, NULL);
    if (!rc) {
        sl_reg_lineage lin = {.kind = "derived", .parent = parent, .endpoint = origin, .command = (char *)d->command};
        rc = reg_import(r, d->path, d->name, NULL, NULL, &lin, d->move ? REG_MOVE : REG_COPY, out, err);
    }
    if (d->move) sl_rm_rf(d->path);   /* what the move left: directories, or everything after a failure */
    free(parent);
    free(origin);
    sl_reg_version_free(src);
    sl_reg_close(r);
    return rc;
}

int sl_reg_scratch_dir(char **out, sl_error *err) {
    *out = NULL;
    sl_reg *r = NULL;
    int rc = sl_reg_open(NULL, &r, err);
    if (rc) return rc;
    char *p = sl_fmt("%s/tmp/%s-%d-XXXXXX", r->home, REG_SCRATCH, (int)getpid());
    if (!p) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    else if (!mkdtemp(p)) rc = sl_errorf(err, SL_EIO, "%s: cannot create a scratch directory: %s", p, strerror(errno));
    if (rc) free(p);
    else *out = p;
    sl_reg_close(r);
    return rc;
}
