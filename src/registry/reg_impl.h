/*
 * reg_impl.h — internals shared by the registry modules (store, index,
 * maintenance, HF cache, hub client, pull, LFS).
 *
 * Invariants: every path built here is malloc'd; every function returns 0 or
 * an SL_E* code with a one-line message; the lock protocol is the one stated
 * in silica/registry.h.
 */
#ifndef SILICA_REG_IMPL_H
#define SILICA_REG_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "core/fsutil.h"
#include "net/http.h"
#include "silica/error.h"
#include "silica/io.h"
#include "silica/registry.h"

struct sl_reg {
    char *home;
    sqlite3 *db;
    int lock_fd;
    int lock_depth;   /* nested shared/exclusive holds */
    sl_progress_fn progress;   /* sl_reg_set_progress: import / verify hashing */
    void *progress_ctx;
};

/* Bytes of one long operation (an import, a verify) as they are hashed. */
typedef struct reg_meter {
    sl_progress_fn fn;   /* NULL: nothing reported */
    void *ctx;
    uint64_t done, total;
    const char *what;
} reg_meter;
void reg_meter_add(reg_meter *m, uint64_t n);   /* NULL-safe */

/* ---- hashing (reg_hash.c) ---- */
typedef struct sl_hasher sl_hasher;
sl_hasher *sl_hasher_new(bool git_sha1, uint64_t git_size);  /* git_sha1: also "blob <size>\0"+data sha1 */
void sl_hasher_update(sl_hasher *h, const void *p, size_t n);
void sl_hasher_final(sl_hasher *h, char sha256[65], char sha1[41]); /* frees h; sha1 may be NULL */
void sl_hasher_free(sl_hasher *h);
int sl_hash_file(const char *path, char sha256[65], uint64_t *size, sl_error *err);
/* A download's sink (net/http.h) that hashes what it receives, starting over
 * with the file.  reg_dl_hash_attach creates dh->h (false: out of memory). */
typedef struct reg_dl_hash {
    sl_hasher *h;
    bool git_sha1;
    uint64_t size;
} reg_dl_hash;
bool reg_dl_hash_attach(sl_dl *d, reg_dl_hash *dh, bool git_sha1, uint64_t git_size);
int sl_hash_fd(int fd, sl_hasher *h, uint64_t *size, const char *what, sl_error *err);
int sl_hash_fd_meter(int fd, sl_hasher *h, uint64_t *size, const char *what, reg_meter *m, sl_error *err);
int sl_hash_file_meter(const char *path, char sha256[65], uint64_t *size, reg_meter *m, sl_error *err);
bool sl_is_hex(const char *s, size_t n);

/* ---- store layout (reg_store.c) ---- */
char *reg_blob_path(const sl_reg *r, const char *sha256);
char *reg_snapshot_path(const sl_reg *r, const char *model, const char *revision);
bool reg_blob_exists(const sl_reg *r, const char *sha256, uint64_t size);
/* Move a verified temporary file (same filesystem) into blobs/; chmod 0444, fsync. */
int reg_blob_adopt(sl_reg *r, const char *tmp, const char *sha256, sl_error *err);
/* How a file enters blobs/: REG_COPY never touches it (a private copy, a
 * reflink where the filesystem can); REG_LINK may hard-link it (caches the
 * store shares, such as the HF cache); REG_MOVE renames it in (the store's
 * own scratch output, same filesystem; copied if rename fails). */
typedef enum reg_put_mode { REG_COPY, REG_LINK, REG_MOVE } reg_put_mode;
/* Hash a file into blobs/; m (optional) counts the bytes hashed. */
int reg_blob_put_file(sl_reg *r, const char *src, reg_put_mode mode, char sha256[65], uint64_t *size, reg_meter *m,
                      sl_error *err);
/* Copy src into blob `want` (size bytes) if its bytes hash to it: 0 done,
 * SL_EINVAL with a reason (changed, missing...) when they do not. */
int reg_blob_restore(sl_reg *r, const char *src, const char *want, uint64_t size, sl_error *err);
/* Prefix of sl_reg_scratch_dir's directories under tmp/ (gc spares a live owner's). */
#define REG_SCRATCH "scratch"
/* A fresh temporary path under tmp/ (prefix-pid-random), malloc'd. */
char *reg_tmp_path(const sl_reg *r, const char *prefix);
/* Build snapshots/<model>/<revision>/ with relative symlinks (atomic rename). */
int reg_build_snapshot(sl_reg *r, const sl_reg_version *v, sl_error *err);
/* Lock: LOCK_SH or LOCK_EX on $HOME/lock (re-entrant by depth). */
int reg_lock(sl_reg *r, int how, sl_error *err);
void reg_unlock(sl_reg *r);
/* A per-key exclusive lock file under locks/ (returns fd, -1 on error). */
int reg_lock_key(sl_reg *r, const char *key, sl_error *err);
void reg_unlock_key(int fd);

/* ---- index (reg_index.c) ---- */
int reg_db_open(sl_reg *r, sl_error *err);
int reg_db_insert_version(sl_reg *r, sl_reg_version *v, sl_error *err);  /* sets v->id; idempotent on (model,revision) */
int reg_db_find(sl_reg *r, const sl_reg_name *n, sl_reg_version **out, sl_error *err);
int reg_db_load_by_id(sl_reg *r, int64_t id, bool files, sl_reg_version **out, sl_error *err);
int reg_db_blob_refs(sl_reg *r, const char *sha256, int64_t *count, sl_error *err);
int reg_db_exec(sl_reg *r, const char *sql, sl_error *err);
bool reg_db_known_snapshot(sl_reg *r, const char *model, const char *revision);
char *reg_content_revision(const sl_reg_file *files, size_t n);   /* 40 hex */

/* ---- metadata (reg_meta.c) ---- */
/* Fill v->format, quant, params, config from the files in dir. */
void reg_describe(sl_reg_version *v, const char *dir, bool deep);  /* deep: open the checkpoint for params */

/* ---- HF cache (reg_hfcache.c) ---- */
int reg_hf_list(sl_reg_version ***out, size_t *n, size_t *cap, sl_error *err);
int reg_hf_write(const char *cache, const char *repo, const char *ref, const char *commit, const sl_reg *r,
                 const sl_reg_version *v, char *const *etags, sl_error *err);

/* ---- pull (reg_pull.c) ---- */
/* Fetch {endpoint}/{repo}/resolve/{commit}/{path} into blob sha256 (size
 * bytes), checked before it enters blobs/ (verify --repair). */
int reg_pull_blob(sl_reg *r, const char *endpoint, const char *repo, const char *commit, const char *path,
                  const char *sha256, uint64_t size, sl_error *err);
int reg_pull_parse_answers(const char *repo, const char *revision_json, size_t rlen, const char *tree_json, size_t tlen,
                           size_t *n_files, sl_error *err);

/* ---- import (reg_maint.c) ---- */
int reg_import(sl_reg *r, const char *dir, const char *model, const char *revision, const char *ref,
               const sl_reg_lineage *lin, reg_put_mode mode, sl_reg_version **out, sl_error *err);

/* ---- strings ---- */
bool reg_glob_match(const char *pat, const char *path);

#endif
