/*
 * reg_index.c — the SQLite index: models, versions (revisions), files, tags
 * and lineage.
 *
 * Invariants:
 *  - WAL journal, synchronous=FULL, a 60 s busy timeout: concurrent silica
 *    processes serialise their writes and never see a half-added version.
 *  - A version row, its files, tags and lineage are inserted in ONE
 *    transaction; (model, revision) is unique, so two processes adding the
 *    same version end with one row.
 *  - files.sha256 is indexed: "is this blob still referenced" is one lookup.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/reg_impl.h"

static const char *k_schema =
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS models(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);"
    "CREATE TABLE IF NOT EXISTS versions(id INTEGER PRIMARY KEY,"
    " model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE, revision TEXT NOT NULL, ref TEXT,"
    " format TEXT, quant TEXT, params INTEGER, size INTEGER NOT NULL, created REAL NOT NULL, config TEXT,"
    " verified REAL, UNIQUE(model_id, revision));"
    "CREATE INDEX IF NOT EXISTS versions_created ON versions(created);"
    "CREATE TABLE IF NOT EXISTS files(version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    " path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY(version_id, path)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);"
    "CREATE TABLE IF NOT EXISTS tags(model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
    " tag TEXT NOT NULL, version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,"
    " PRIMARY KEY(model_id, tag));"
    "CREATE TABLE IF NOT EXISTS lineage(version_id INTEGER PRIMARY KEY REFERENCES versions(id) ON DELETE CASCADE,"
    " kind TEXT, endpoint TEXT, repo TEXT, [commit] TEXT, parent TEXT,"
    " parent_id INTEGER REFERENCES versions(id) ON DELETE SET NULL, command TEXT);";

static int db_err(sl_reg *r, sl_error *err, const char *what) {
    return sl_errorf(err, SL_EIO, "%s/index.db: %s: %s", r->home, what, sqlite3_errmsg(r->db));
}

int reg_db_exec(sl_reg *r, const char *sql, sl_error *err) {
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = sl_errorf(err, SL_EIO, "%s/index.db: %s", r->home, msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int reg_db_open(sl_reg *r, sl_error *err) {
    char *p = sl_fmt("%s/index.db", r->home);
    if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = sqlite3_open_v2(p, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    free(p);
    if (rc != SQLITE_OK) return db_err(r, err, "cannot open");
    sqlite3_busy_timeout(r->db, 60000);
    /* Switching a fresh index to WAL and creating the schema can meet another
     * process doing the same; SQLite then answers SQLITE_BUSY at once instead
     * of calling the busy handler, so retry here for up to 60 s. */
    for (int attempt = 0;; attempt++) {
        rc = sqlite3_exec(r->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(r->db, k_schema, NULL, NULL, NULL);
        if (rc == SQLITE_OK) return 0;
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) break;
        if (attempt >= 600) break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return sl_errorf(err, SL_EIO, "%s/index.db: %s", r->home, sqlite3_errmsg(r->db));
}

static void bind_text(sqlite3_stmt *s, int i, const char *t) {
    if (t) sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

static char *col_text(sqlite3_stmt *s, int i) {
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

static int64_t model_id(sl_reg *r, const char *name, bool create) {
    sqlite3_stmt *s;
    if (create) {
        if (sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO models(name) VALUES(?)", -1, &s, NULL) != SQLITE_OK) return -1;
        bind_text(s, 1, name);
        sqlite3_step(s);
        sqlite3_finalize(s);
    }
    if (sqlite3_prepare_v2(r->db, "SELECT id FROM models WHERE name=?", -1, &s, NULL) != SQLITE_OK) return -1;
    bind_text(s, 1, name);
    int64_t id = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return id;
}

static int cmp_idx_path(const void *a, const void *b) {
    const sl_reg_file *x = *(const sl_reg_file *const *)a, *y = *(const sl_reg_file *const *)b;
    return strcmp(x->path, y->path);
}

char *reg_content_revision(const sl_reg_file *files, size_t n) {
    const sl_reg_file **idx = malloc((n ? n : 1) * sizeof *idx);
    sl_hasher *h = sl_hasher_new(false, 0);
    if (!idx || !h) { free(idx); sl_hasher_free(h); return NULL; }
    for (size_t i = 0; i < n; i++) idx[i] = &files[i];
    qsort(idx, n, sizeof *idx, cmp_idx_path);
    for (size_t i = 0; i < n; i++) {
        sl_hasher_update(h, idx[i]->path, strlen(idx[i]->path) + 1);
        sl_hasher_update(h, idx[i]->sha256, 64);
    }
    free(idx);
    char hex[65];
    sl_hasher_final(h, hex, NULL);
    hex[40] = 0;
    return strdup(hex);
}

int reg_db_insert_version(sl_reg *r, sl_reg_version *v, sl_error *err) {
    int rc = reg_db_exec(r, "BEGIN IMMEDIATE", err);
    if (rc) return rc;
    sqlite3_stmt *s = NULL;
    int64_t mid = model_id(r, v->model, true);
    if (mid <= 0) { rc = db_err(r, err, "adding model"); goto out; }
    if (sqlite3_prepare_v2(r->db, "SELECT id FROM versions WHERE model_id=? AND revision=?", -1, &s, NULL)) { rc = db_err(r, err, "query"); goto out; }
    sqlite3_bind_int64(s, 1, mid);
    bind_text(s, 2, v->revision);
    v->id = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    s = NULL;
    if (!v->id) {
        if (!v->created) v->created = sl_now();
        if (sqlite3_prepare_v2(r->db, "INSERT INTO versions(model_id,revision,ref,format,quant,params,size,created,config) VALUES(?,?,?,?,?,?,?,?,?)", -1, &s, NULL)) { rc = db_err(r, err, "insert"); goto out; }
        sqlite3_bind_int64(s, 1, mid);
        bind_text(s, 2, v->revision);
        bind_text(s, 3, v->ref);
        bind_text(s, 4, v->format);
        bind_text(s, 5, v->quant);
        sqlite3_bind_int64(s, 6, v->params);
        sqlite3_bind_int64(s, 7, (int64_t)v->size);
        sqlite3_bind_double(s, 8, v->created);
        bind_text(s, 9, v->config);
        if (sqlite3_step(s) != SQLITE_DONE) { rc = db_err(r, err, "insert version"); goto out; }
        sqlite3_finalize(s);
        s = NULL;
        v->id = sqlite3_last_insert_rowid(r->db);
        if (sqlite3_prepare_v2(r->db, "INSERT INTO files(version_id,path,size,sha256) VALUES(?,?,?,?)", -1, &s, NULL)) { rc = db_err(r, err, "insert"); goto out; }
        for (size_t i = 0; i < v->n_files; i++) {
            sqlite3_reset(s);
            sqlite3_bind_int64(s, 1, v->id);
            bind_text(s, 2, v->files[i].path);
            sqlite3_bind_int64(s, 3, (int64_t)v->files[i].size);
            bind_text(s, 4, v->files[i].sha256);
            if (sqlite3_step(s) != SQLITE_DONE) { rc = db_err(r, err, "insert file"); goto out; }
        }
        sqlite3_finalize(s);
        s = NULL;
        const sl_reg_lineage *l = &v->lineage;
        if (sqlite3_prepare_v2(r->db, "INSERT INTO lineage(version_id,kind,endpoint,repo,[commit],parent,parent_id,command) VALUES(?,?,?,?,?,?,?,?)", -1, &s, NULL)) { rc = db_err(r, err, "insert"); goto out; }
        sqlite3_bind_int64(s, 1, v->id);
        bind_text(s, 2, l->kind);
        bind_text(s, 3, l->endpoint);
        bind_text(s, 4, l->repo);
        bind_text(s, 5, l->commit);
        bind_text(s, 6, l->parent);
        int64_t pid = 0;
        if (l->parent) {
            sl_reg_name pn;
            if (!sl_reg_parse_name(l->parent, &pn, NULL)) {
                sl_reg_version *pv = NULL;
                if (!reg_db_find(r, &pn, &pv, NULL) && pv) pid = pv->id;
                sl_reg_version_free(pv);
                sl_reg_name_free(&pn);
            }
        }
        if (pid) sqlite3_bind_int64(s, 7, pid);
        else sqlite3_bind_null(s, 7);
        bind_text(s, 8, l->command);
        if (sqlite3_step(s) != SQLITE_DONE) { rc = db_err(r, err, "insert lineage"); goto out; }
        sqlite3_finalize(s);
        s = NULL;
    }
    if (v->ref) {
        if (sqlite3_prepare_v2(r->db, "UPDATE versions SET ref=CASE WHEN id=?1 THEN ?2 ELSE NULL END WHERE model_id=?3 AND (id=?1 OR ref=?2)", -1, &s, NULL)) { rc = db_err(r, err, "update"); goto out; }
        sqlite3_bind_int64(s, 1, v->id);
        bind_text(s, 2, v->ref);
        sqlite3_bind_int64(s, 3, mid);
        if (sqlite3_step(s) != SQLITE_DONE) { rc = db_err(r, err, "update ref"); goto out; }
        sqlite3_finalize(s);
        s = NULL;
    }
    for (size_t i = 0; i < v->n_tags; i++) {
        if (sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO tags(model_id,tag,version_id) VALUES(?,?,?)", -1, &s, NULL)) { rc = db_err(r, err, "tag"); goto out; }
        sqlite3_bind_int64(s, 1, mid);
        bind_text(s, 2, v->tags[i]);
        sqlite3_bind_int64(s, 3, v->id);
        if (sqlite3_step(s) != SQLITE_DONE) { rc = db_err(r, err, "insert tag"); goto out; }
        sqlite3_finalize(s);
        s = NULL;
    }
out:
    if (s) sqlite3_finalize(s);
    if (rc) reg_db_exec(r, "ROLLBACK", NULL);
    else rc = reg_db_exec(r, "COMMIT", err);
    return rc;
}

static const char *k_select =
    "SELECT v.id, m.name, v.revision, v.ref, v.format, v.quant, v.params, v.size, v.created, v.config,"
    " (SELECT group_concat(tag, ',') FROM tags t WHERE t.version_id=v.id),"
    " l.kind, l.endpoint, l.repo, l.[commit], l.parent, l.command"
    " FROM versions v JOIN models m ON m.id=v.model_id LEFT JOIN lineage l ON l.version_id=v.id";

static sl_reg_version *row_version(sl_reg *r, sqlite3_stmt *s) {
    sl_reg_version *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->id = sqlite3_column_int64(s, 0);
    v->model = col_text(s, 1);
    v->revision = col_text(s, 2);
    v->ref = col_text(s, 3);
    v->format = col_text(s, 4);
    v->quant = col_text(s, 5);
    v->params = sqlite3_column_int64(s, 6);
    v->size = (uint64_t)sqlite3_column_int64(s, 7);
    v->created = sqlite3_column_double(s, 8);
    v->config = col_text(s, 9);
    char *tags = col_text(s, 10);
    if (tags) {
        size_t n = 1;
        for (char *c = tags; *c; c++) n += *c == ',';
        v->tags = calloc(n, sizeof *v->tags);
        char *save = NULL;
        for (char *t = strtok_r(tags, ",", &save); t && v->tags; t = strtok_r(NULL, ",", &save))
            v->tags[v->n_tags++] = strdup(t);
        free(tags);
    }
    v->lineage.kind = col_text(s, 11);
    v->lineage.endpoint = col_text(s, 12);
    v->lineage.repo = col_text(s, 13);
    v->lineage.commit = col_text(s, 14);
    v->lineage.parent = col_text(s, 15);
    v->lineage.command = col_text(s, 16);
    v->source = strdup("store");
    v->path = reg_snapshot_path(r, v->model, v->revision);
    return v;
}

static int load_files(sl_reg *r, sl_reg_version *v, sl_error *err) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(r->db, "SELECT path,size,sha256 FROM files WHERE version_id=? ORDER BY path", -1, &s, NULL)) return db_err(r, err, "files");
    sqlite3_bind_int64(s, 1, v->id);
    size_t cap = 0;
    int rc = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (v->n_files == cap) {
            cap = cap ? cap * 2 : 8;
            sl_reg_file *nf = realloc(v->files, cap * sizeof *nf);
            if (!nf) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
            v->files = nf;
        }
        sl_reg_file *f = &v->files[v->n_files++];
        memset(f, 0, sizeof *f);
        f->path = col_text(s, 0);
        f->size = (uint64_t)sqlite3_column_int64(s, 1);
        const unsigned char *h = sqlite3_column_text(s, 2);
        snprintf(f->sha256, sizeof f->sha256, "%s", h ? (const char *)h : "");
    }
    sqlite3_finalize(s);
    return rc;
}

int reg_db_load_by_id(sl_reg *r, int64_t id, bool files, sl_reg_version **out, sl_error *err) {
    *out = NULL;
    char *sql = sl_fmt("%s WHERE v.id=?", k_select);
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &s, NULL);
    free(sql);
    if (rc) return db_err(r, err, "query");
    sqlite3_bind_int64(s, 1, id);
    sl_reg_version *v = sqlite3_step(s) == SQLITE_ROW ? row_version(r, s) : NULL;
    sqlite3_finalize(s);
    if (!v) return sl_errorf(err, SL_EINVAL, "version %lld is not in the store", (long long)id);
    if (files && (rc = load_files(r, v, err))) {
        sl_reg_version_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

int reg_db_find(sl_reg *r, const sl_reg_name *n, sl_reg_version **out, sl_error *err) {
    *out = NULL;
    sqlite3_stmt *s;
    int64_t id = 0;
    const char *q;
    if (n->tag)
        q = "SELECT t.version_id FROM tags t JOIN models m ON m.id=t.model_id WHERE m.name=?1 AND t.tag=?2";
    else if (n->revision)
        q = "SELECT v.id FROM versions v JOIN models m ON m.id=v.model_id WHERE m.name=?1 AND"
            " (v.ref=?2 OR v.revision=?2 OR (length(?2)>=4 AND substr(v.revision,1,length(?2))=?2))"
            " ORDER BY (v.ref=?2) DESC, (v.revision=?2) DESC, v.created DESC";
    else
        q = "SELECT v.id FROM versions v JOIN models m ON m.id=v.model_id WHERE m.name=?1 ORDER BY v.created DESC, v.id DESC LIMIT 1";
    if (sqlite3_prepare_v2(r->db, q, -1, &s, NULL)) return db_err(r, err, "query");
    bind_text(s, 1, n->model);
    if (n->tag) bind_text(s, 2, n->tag);
    else if (n->revision) bind_text(s, 2, n->revision);
    if (sqlite3_step(s) == SQLITE_ROW) id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (!id) return sl_errorf(err, SL_EINVAL, "%s%s%s%s%s: not in the store %s (see `silica list`)", n->model,
                              n->revision ? "@" : "", n->revision ? n->revision : "", n->tag ? ":" : "",
                              n->tag ? n->tag : "", r->home);
    return reg_db_load_by_id(r, id, true, out, err);
}

int sl_reg_find(sl_reg *r, const char *name, sl_reg_version **out, sl_error *err) {
    sl_reg_name n;
    int rc = sl_reg_parse_name(name, &n, err);
    if (rc) return rc;
    rc = reg_db_find(r, &n, out, err);
    sl_reg_name_free(&n);
    return rc;
}

int sl_reg_list(sl_reg *r, bool with_hf, sl_reg_version ***out, size_t *n, sl_error *err) {
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    char *sql = sl_fmt("%s ORDER BY v.created DESC, v.id DESC", k_select);
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &s, NULL);
    free(sql);
    if (rc) return db_err(r, err, "list");
    sl_reg_version **arr = NULL;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            sl_reg_version **na = realloc(arr, cap * sizeof *na);
            if (!na) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
            arr = na;
        }
        sl_reg_version *v = row_version(r, s);
        if (!v) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
        arr[(*n)++] = v;
    }
    sqlite3_finalize(s);
    *out = arr;
    if (!rc && with_hf) rc = reg_hf_list(out, n, &cap, err);
    if (rc) {
        sl_reg_versions_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int reg_db_blob_refs(sl_reg *r, const char *sha256, int64_t *count, sl_error *err) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM files WHERE sha256=?", -1, &s, NULL)) return db_err(r, err, "query");
    bind_text(s, 1, sha256);
    *count = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return 0;
}

bool reg_db_known_snapshot(sl_reg *r, const char *model, const char *revision) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM versions v JOIN models m ON m.id=v.model_id WHERE m.name=? AND v.revision=?", -1, &s, NULL)) return true;
    bind_text(s, 1, model);
    bind_text(s, 2, revision);
    bool known = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return known;
}

int sl_reg_lineage_chain(sl_reg *r, const sl_reg_version *v, sl_reg_version ***out, size_t *n, sl_error *err) {
    *out = NULL;
    *n = 0;
    int64_t id = v->id;
    int rc = 0;
    for (int depth = 0; depth < 64; depth++) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(r->db, "SELECT parent_id FROM lineage WHERE version_id=?", -1, &s, NULL)) return db_err(r, err, "lineage");
        sqlite3_bind_int64(s, 1, id);
        int64_t pid = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_finalize(s);
        if (!pid) break;
        sl_reg_version *pv;
        if ((rc = reg_db_load_by_id(r, pid, false, &pv, err))) break;
        sl_reg_version **na = realloc(*out, (*n + 1) * sizeof *na);
        if (!na) { sl_reg_version_free(pv); rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
        *out = na;
        (*out)[(*n)++] = pv;
        id = pid;
    }
    return rc;
}

void sl_reg_version_free(sl_reg_version *v) {
    if (!v) return;
    free(v->model);
    free(v->revision);
    free(v->ref);
    free(v->format);
    free(v->quant);
    free(v->config);
    for (size_t i = 0; i < v->n_tags; i++) free(v->tags[i]);
    free(v->tags);
    for (size_t i = 0; i < v->n_files; i++) free(v->files[i].path);
    free(v->files);
    sl_reg_lineage *l = &v->lineage;
    free(l->kind);
    free(l->endpoint);
    free(l->repo);
    free(l->commit);
    free(l->parent);
    free(l->command);
    free(v->source);
    free(v->path);
    free(v);
}

void sl_reg_versions_free(sl_reg_version **v, size_t n) {
    for (size_t i = 0; i < n; i++) sl_reg_version_free(v[i]);
    free(v);
}
