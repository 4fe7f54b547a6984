/*
 * reg_verify.c — the store's integrity: `verify` (rehash every blob, move
 * bad ones to quarantine/, and with repair restore them from where their
 * bytes came from) and the first-use digest check of a version.
 *
 * Invariants:
 *  - verify holds the store lock exclusive; it never deletes: a bad blob is
 *    renamed to quarantine/<sha256> (gc empties the quarantine).
 *  - A blob is restored only by reg_blob_adopt of a temporary whose bytes
 *    hashed to the blob's sha256 and size, so repair can never put wrong
 *    bytes in the store, whatever the source holds now.
 *  - Repair sources, in order, for every version that references the blob:
 *    the absolute path it was imported or converted from (the file must be
 *    unchanged), the HF-cache snapshot it came from, then the hub commit it
 *    was pulled from.  A problem left unrepaired says why.
 *  - Each distinct blob is hashed (and repaired) once per run.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "registry/reg_impl.h"

enum { BLOB_OK, BLOB_MISSING, BLOB_SIZE, BLOB_CORRUPT };
static const char *k_problem[] = {"ok", "missing", "wrong size", "corrupt (sha256 mismatch)"};

static int check_blob(sl_reg *r, const sl_reg_file *f, reg_meter *m) {
    char *p = reg_blob_path(r, f->sha256);
    struct stat st;
    int res = BLOB_OK;
    if (!p || stat(p, &st) != 0) res = BLOB_MISSING;
    else if ((uint64_t)st.st_size != f->size) res = BLOB_SIZE;
    else {
        char got[65];
        uint64_t sz;
        if (sl_hash_file_meter(p, got, &sz, m, NULL) || strcmp(got, f->sha256) != 0) res = BLOB_CORRUPT;
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

/* ---- repair ---- */

typedef struct why {
    char text[600];
} why;

/* Append "; msg" (cut to the room left); a repeated reason is not repeated. */
static void why_add(why *w, const char *msg) {
    size_t n = strlen(w->text);
    if (n + 8 >= sizeof w->text || strstr(w->text, msg)) return;
    if (n) {
        memcpy(w->text + n, "; ", 2);
        n += 2;
    }
    size_t m = strlen(msg), room = sizeof w->text - 1 - n;
    if (m > room) m = room;
    memcpy(w->text + n, msg, m);
    w->text[n + m] = 0;
}

/* The local file holding version v's `path` as it was stored, or NULL. */
static char *local_source(const sl_reg_version *v, const char *path) {
    const sl_reg_lineage *l = &v->lineage;
    if (!l->kind || !l->endpoint) return NULL;
    if (!strcmp(l->kind, "hf-cache")) {
        char *snap = l->repo && l->commit ? sl_reg_hf_snapshot(l->endpoint, l->repo, l->commit, NULL) : NULL;
        char *p = snap ? sl_fmt("%s/%s", snap, path) : NULL;
        free(snap);
        return p;
    }
    if (strcmp(l->kind, "import") != 0 && strcmp(l->kind, "derived") != 0) return NULL;
    if (l->endpoint[0] != '/') return NULL;   /* only absolute origins are trusted to mean the same place */
    if (sl_path_is_dir(l->endpoint)) return sl_fmt("%s/%s", l->endpoint, path);
    if (!strcmp(sl_path_basename(l->endpoint), path)) return strdup(l->endpoint);   /* a one-file import */
    return NULL;
}

/* Restore blob f from the sources of version v; 0 when restored (*from set). */
static int repair_from(sl_reg *r, const sl_reg_version *v, const char *path, const sl_reg_file *f, char **from,
                       why *w) {
    sl_error e = {0};
    char *src = local_source(v, path);
    if (src) {
        if (!reg_blob_restore(r, src, f->sha256, f->size, &e)) {
            *from = src;
            return 0;
        }
        why_add(w, e.msg);
        free(src);
    }
    const sl_reg_lineage *l = &v->lineage;
    if (l->kind && !strcmp(l->kind, "hub") && l->endpoint && l->repo && l->commit) {
        if (!reg_pull_blob(r, l->endpoint, l->repo, l->commit, path, f->sha256, f->size, &e)) {
            *from = sl_fmt("%s/%s/resolve/%s/%s", l->endpoint, l->repo, l->commit, path);
            return 0;
        }
        why_add(w, e.msg);
    }
    return SL_EINVAL;
}

/* Try every version that references blob f; *from (restored) or *reason. */
static bool repair_blob(sl_reg *r, const sl_reg_file *f, char **from, char **reason) {
    *from = *reason = NULL;
    sqlite3_stmt *s;
    why w = {{0}};
    bool any = false, ok = false;
    if (sqlite3_prepare_v2(r->db, "SELECT version_id, path FROM files WHERE sha256=? ORDER BY version_id", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, f->sha256, -1, SQLITE_TRANSIENT);
        while (!ok && sqlite3_step(s) == SQLITE_ROW) {
            sl_reg_version *v = NULL;
            const unsigned char *path = sqlite3_column_text(s, 1);
            if (!path || reg_db_load_by_id(r, sqlite3_column_int64(s, 0), false, &v, NULL)) continue;
            const char *k = v->lineage.kind ? v->lineage.kind : "";
            any |= (!strcmp(k, "hub") || !strcmp(k, "hf-cache") || ((!strcmp(k, "import") || !strcmp(k, "derived")) &&
                                                                    v->lineage.endpoint));
            ok = repair_from(r, v, (const char *)path, f, from, &w) == 0;
            sl_reg_version_free(v);
        }
        sqlite3_finalize(s);
    }
    if (!ok) {
        if (!any) why_add(&w, "no source recorded to restore it from (pull or import it again)");
        *reason = strdup(w.text);
    }
    return ok;
}

/* ---- verify ---- */

typedef struct blob_state {
    char sha256[65];
    uint64_t size;
    int res;          /* BLOB_* (-1: not checked yet) */
    bool repaired;
    char *repair;     /* source used, or why not */
} blob_state;

typedef struct vrun {
    sl_reg *r;
    bool repair;
    blob_state *b;
    size_t n, cap;
    reg_meter m;
} vrun;

static blob_state *state_of(vrun *x, const sl_reg_file *f) {
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->b[i].sha256, f->sha256)) return &x->b[i];
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 32;
        blob_state *nb = realloc(x->b, cap * sizeof *nb);
        if (!nb) return NULL;
        x->b = nb;
        x->cap = cap;
    }
    blob_state *b = &x->b[x->n++];
    memset(b, 0, sizeof *b);
    memcpy(b->sha256, f->sha256, 65);
    b->size = f->size;
    b->res = -1;
    x->m.total += f->size;
    return b;
}

static void check_state(vrun *x, blob_state *b, const sl_reg_file *f) {
    b->res = check_blob(x->r, f, &x->m);
    if (b->res == BLOB_SIZE || b->res == BLOB_CORRUPT) quarantine(x->r, f->sha256);
    if (b->res == BLOB_OK) return;
    if (!x->repair) return;
    char *from = NULL, *reason = NULL;
    b->repaired = repair_blob(x->r, f, &from, &reason);
    b->repair = b->repaired ? from : reason;
    if (b->repaired) free(reason);
    else free(from);
}

/* The versions to check (with files): `name`, or every version. */
static int load_targets(sl_reg *r, const char *name, sl_reg_version ***vs, size_t *n, sl_error *err) {
    *vs = NULL;
    *n = 0;
    int rc;
    if (name) {
        sl_reg_version *v;
        if ((rc = sl_reg_find(r, name, &v, err))) return rc;
        if (!(*vs = malloc(sizeof **vs))) { sl_reg_version_free(v); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
        (*vs)[0] = v;
        *n = 1;
        return 0;
    }
    if ((rc = sl_reg_list(r, false, vs, n, err))) return rc;
    for (size_t i = 0; i < *n && !rc; i++) {
        sl_reg_version *full;
        if (!(rc = reg_db_load_by_id(r, (*vs)[i]->id, true, &full, err))) {
            sl_reg_version_free((*vs)[i]);
            (*vs)[i] = full;
        }
    }
    return rc;
}

static void mark_verified(sl_reg *r, const sl_reg_version *v, double when) {
    char *sql = sl_fmt("UPDATE versions SET verified=%.6f WHERE id=%lld", when, (long long)v->id);
    if (sql) reg_db_exec(r, sql, NULL);
    free(sql);
}

int sl_reg_verify(sl_reg *r, const char *name, bool repair, sl_reg_report_fn cb, void *ctx, uint64_t *bad,
                  sl_error *err) {
    *bad = 0;
    int rc = reg_lock(r, LOCK_EX, err);
    if (rc) return rc;
    sl_reg_version **vs = NULL;
    size_t n = 0;
    vrun x = {.r = r, .repair = repair, .m = {.fn = r->progress, .ctx = r->progress_ctx, .what = "verify"}};
    rc = load_targets(r, name, &vs, &n, err);
    for (size_t i = 0; i < n && !rc; i++)   /* distinct blobs first: the progress total */
        for (size_t k = 0; k < vs[i]->n_files && !rc; k++)
            if (!state_of(&x, &vs[i]->files[k])) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        sl_reg_version *v = vs[i];
        int vbad = 0;
        char *label = sl_fmt("%s@%s", v->model, v->revision);
        for (size_t k = 0; k < v->n_files; k++) {
            const sl_reg_file *f = &v->files[k];
            blob_state *b = state_of(&x, f);
            if (b->res < 0) check_state(&x, b, f);
            if (b->res == BLOB_OK) continue;
            vbad += !b->repaired;
            *bad += !b->repaired;
            sl_reg_problem p = {.version = label ? label : v->model, .path = f->path, .sha256 = f->sha256,
                                .problem = k_problem[b->res], .quarantined = b->res >= BLOB_SIZE,
                                .repaired = b->repaired, .repair = b->repair};
            if (cb) cb(ctx, &p);
        }
        free(label);
        if (!vbad) {
            if (!sl_path_is_dir(v->path)) reg_build_snapshot(r, v, NULL);   /* repair a lost snapshot */
            mark_verified(r, v, sl_now());
        }
    }
    for (size_t j = 0; j < x.n; j++) free(x.b[j].repair);
    free(x.b);
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
        if (ctime_s < 0 || ctime_s >= verified || (uint64_t)st.st_size != v->files[i].size) need = true;
        free(p);
    }
    if (!need) return 0;
    double start = sl_now();
    for (size_t i = 0; i < v->n_files; i++) {
        int res = check_blob(r, &v->files[i], NULL);
        if (res)
            return sl_errorf(err, SL_EINVAL, "%s@%.12s: %s is %s (blob %s); run `silica verify --repair %s`", v->model,
                             v->revision, v->files[i].path, k_problem[res], v->files[i].sha256, v->model);
    }
    mark_verified(r, v, start);
    return 0;
}
