/*
 * silica/registry.h — the local model store: content-addressed blobs, an
 * SQLite index of models / versions / files / tags / lineage, pulls from
 * Hugging Face protocol hubs, and reuse of the Hugging Face cache.
 *
 * Invariants:
 *  - Blobs live at $SILICA_HOME/blobs/<aa>/<sha256>, are read-only (0444) and
 *    are only ever created by rename() of a fully written, fsync'd, verified
 *    temporary; a blob's name is the sha256 of its bytes.
 *  - A version is visible (list/show/resolve) only once its index row is
 *    committed, which happens after all its blobs and its snapshot directory
 *    (symlinks into blobs/) exist.  Nothing partial is ever listed.
 *  - Mutating commands hold $SILICA_HOME/lock: shared while adding (pull,
 *    import), exclusive while deleting (rm, gc, verify's quarantine), so a
 *    blob is never removed while another process is about to reference it.
 *  - Names: org/name[@revision][:tag].  A bare org/name means the most recent
 *    version; @rev matches a revision prefix (>= 4 hex) or a hub ref (main);
 *    :tag matches a tag.
 */
#ifndef SILICA_REGISTRY_H
#define SILICA_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"
#include "silica/io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_reg sl_reg;

/* $SILICA_HOME, else $XDG_CACHE_HOME/silica, else ~/.cache/silica (malloc'd). */
SL_API char *sl_reg_default_home(void);
/* Open (creating if needed) the store at `home` (NULL: default). */
SL_API int sl_reg_open(const char *home, sl_reg **out, sl_error *err);
SL_API void sl_reg_close(sl_reg *r);
SL_API const char *sl_reg_home(const sl_reg *r);
/* Long hashing work (import, verify) reports bytes done / total through fn,
 * from the calling thread (NULL: nothing). */
SL_API void sl_reg_set_progress(sl_reg *r, sl_progress_fn fn, void *ctx);

/* ---- names ---- */
typedef struct sl_reg_name {
    char *model;     /* "org/name" */
    char *revision;  /* after '@', or NULL */
    char *tag;       /* after ':', or NULL */
} sl_reg_name;
SL_API int sl_reg_parse_name(const char *s, sl_reg_name *out, sl_error *err);
SL_API void sl_reg_name_free(sl_reg_name *n);
SL_API bool sl_reg_looks_like_name(const char *s);  /* org/name shape and not an existing path */

/* ---- versions ---- */
typedef struct sl_reg_file {
    char *path;          /* relative path inside the model, '/' separated */
    uint64_t size;
    char sha256[65];
} sl_reg_file;

typedef struct sl_reg_lineage {
    char *kind;      /* "hub", "lfs", "import", "derived", "tag", "hf-cache" */
    char *endpoint;  /* hub endpoint or LFS remote */
    char *repo;      /* hub repo id */
    char *commit;    /* hub commit */
    char *parent;    /* "org/name@revision" it was derived from */
    char *command;   /* exact command line that produced it */
} sl_reg_lineage;

typedef struct sl_reg_version {
    int64_t id;
    char *model;
    char *revision;    /* hub commit, or a content digest (40 hex) for local versions */
    char *ref;         /* hub ref it was pulled as ("main"), or NULL */
    char *format;      /* hf, mlx, torch, gguf, npz */
    char *quant;       /* e.g. "bf16", "4bit-g64", "Q4_K" */
    int64_t params;
    uint64_t size;
    double created;    /* unix seconds */
    char *config;      /* config summary JSON (compact) or NULL */
    char **tags;
    size_t n_tags;
    sl_reg_file *files;
    size_t n_files;
    sl_reg_lineage lineage;
    char *source;      /* "store" or "hf-cache" */
    char *path;        /* local directory holding the files (snapshot) */
} sl_reg_version;

SL_API void sl_reg_version_free(sl_reg_version *v);   /* frees members and v */
SL_API void sl_reg_versions_free(sl_reg_version **v, size_t n);

/* Resolve a name to the version it designates (with files and lineage). */
SL_API int sl_reg_find(sl_reg *r, const char *name, sl_reg_version **out, sl_error *err);
/* All versions, newest first (files not loaded); with_hf adds HF-cache entries. */
SL_API int sl_reg_list(sl_reg *r, bool with_hf, sl_reg_version ***out, size_t *n, sl_error *err);
/* Parents chain of a version: [v's parent, grandparent, ...]. */
SL_API int sl_reg_lineage_chain(sl_reg *r, const sl_reg_version *v, sl_reg_version ***out, size_t *n, sl_error *err);

/* Add every regular file under `dir` (recursively, skipping .git), or the
 * one file `dir`, as a new version of `model`.  Each file is copied into
 * blobs/ (a reflink where the filesystem can: FICLONE) and hashed; the
 * user's files are only read — never linked, chmod'ed or moved — so editing
 * them later cannot touch the store.  Returns the version (NULL out allowed). */
SL_API int sl_reg_import_dir(sl_reg *r, const char *dir, const char *model, const char *revision, const char *ref,
                             const sl_reg_lineage *lin, sl_reg_version **out, sl_error *err);
/* Register a version whose blobs are already in the store (files[].sha256). */
SL_API int sl_reg_commit_version(sl_reg *r, sl_reg_version *v, sl_error *err);

SL_API int sl_reg_tag(sl_reg *r, const char *src, const char *dst, sl_error *err);

typedef struct sl_reg_stats {
    uint64_t versions, blobs, bytes, partials, partial_bytes, tmp, quarantined, quarantined_bytes;
} sl_reg_stats;

/* rm: the version NAME designates (a bare org/name: the newest), or with
 * `all` every version of the model (NAME then has no @revision or :tag). */
typedef struct sl_reg_rm_result {
    sl_reg_version **removed;   /* the versions removed (files not loaded) */
    size_t n_removed;
    size_t remaining;           /* versions the model still has */
    sl_reg_stats st;            /* blobs and bytes freed */
} sl_reg_rm_result;
SL_API int sl_reg_rm(sl_reg *r, const char *name, bool all, sl_reg_rm_result *res, sl_error *err);
SL_API void sl_reg_rm_result_free(sl_reg_rm_result *res);
/* gc: unreferenced blobs, orphan snapshots, temporaries and the quarantine
 * (st->quarantined / quarantined_bytes: what was freed there). */
SL_API int sl_reg_gc(sl_reg *r, sl_reg_stats *st, sl_error *err);
SL_API int sl_reg_du(sl_reg *r, sl_reg_stats *st, sl_error *err);

/* verify: rehash every blob of `name` (NULL: all); corrupt blobs move to
 * quarantine/ and each problem is reported through cb.  With repair, a
 * missing or corrupt blob is restored from where its bytes came from when
 * they still hash right: the path it was imported (or converted) from, the
 * HF-cache snapshot, or the hub commit it was pulled from.  *bad = problems
 * left (not repaired). */
typedef struct sl_reg_problem {
    const char *version;   /* org/name@revision */
    const char *path;      /* the file inside the version */
    const char *sha256;    /* its blob */
    const char *problem;   /* "missing", "wrong size", "corrupt (sha256 mismatch)" */
    bool quarantined;      /* the bad blob was moved to quarantine/ */
    bool repaired;
    const char *repair;    /* repaired: the source used; else why not (NULL: no repair asked) */
} sl_reg_problem;
typedef void (*sl_reg_report_fn)(void *ctx, const sl_reg_problem *p);
SL_API int sl_reg_verify(sl_reg *r, const char *name, bool repair, sl_reg_report_fn cb, void *ctx, uint64_t *bad,
                         sl_error *err);
/* Check the blobs of a version once (digest check on first use); cached in the index. */
SL_API int sl_reg_check_version(sl_reg *r, const sl_reg_version *v, sl_error *err);

/* A store name (or HF-cache repo) -> local directory.  *out malloc'd. */
SL_API int sl_reg_resolve(const char *name, char **out, sl_error *err);
/* A model made from another (convert, quantize) as a version of its own
 * name, with lineage: kind "derived", parent (the source's org/name@revision,
 * or its absolute path), the command line, and the output's absolute path
 * as endpoint when it stays outside the store (verify --repair reads it). */
typedef struct sl_reg_derived {
    const char *src_name;   /* the store name it was made from, or NULL */
    const char *src_path;   /* else the local file or directory it was made from */
    const char *path;       /* the output: a directory or one file */
    const char *name;       /* org/name[:tag] to register it as */
    const char *command;    /* the exact command line */
    bool move;              /* path lies in sl_reg_scratch_dir: its files are moved in, not copied */
} sl_reg_derived;
SL_API int sl_reg_register_derived(const sl_reg_derived *d, sl_reg_version **out, sl_error *err);
/* A new private directory under the default store's tmp/ for output bound
 * for the store (same filesystem: moved in without a copy); gc leaves it
 * alone while this process lives.  *out malloc'd. */
SL_API int sl_reg_scratch_dir(char **out, sl_error *err);

/* ---- Hugging Face cache ---- */
SL_API char *sl_reg_hf_cache_dir(void);   /* HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, ... */
/* Snapshot dir of repo at rev (ref name or commit) in the HF cache, or NULL. */
SL_API char *sl_reg_hf_snapshot(const char *cache, const char *repo, const char *rev, char **commit_out);

/* ---- pull ---- */
typedef struct sl_reg_pull_file {
    char *path;                /* path inside the repo */
    uint64_t done, size;       /* bytes present (progress: so far; plan: stored or partial) */
    char digest[65];           /* plan: LFS sha256, else git blob sha1 (40 hex) */
} sl_reg_pull_file;
typedef struct sl_reg_pull_progress {
    const sl_reg_pull_file *active;   /* files being fetched now, in path order */
    size_t n_active;
    size_t files_done, files;         /* files finished / selected */
    uint64_t done, total;             /* bytes of all selected files */
    bool finished;                    /* last call: the downloads are over */
} sl_reg_pull_progress;
typedef void (*sl_reg_progress_fn)(void *ctx, const sl_reg_pull_progress *p);
typedef struct sl_reg_pull_opts {
    const char *repo;          /* org/name */
    const char *revision;      /* NULL: main */
    const char *endpoint;      /* NULL: $HF_ENDPOINT or https://huggingface.co */
    const char *token;         /* NULL: $HF_TOKEN */
    const char *const *include;
    size_t n_include;
    const char *const *exclude;
    size_t n_exclude;
    int jobs;                  /* parallel downloads (default 4) */
    bool hf_cache;             /* also write the HF cache layout */
    bool offline;              /* no network at all */
    bool dry_run;              /* resolve + list the selection into res->plan; download nothing */
    sl_reg_progress_fn progress;   /* called ~10 times a second from another thread */
    void *progress_ctx;
} sl_reg_pull_opts;
typedef struct sl_reg_pull_result {
    bool already;              /* nothing fetched: in the store already */
    uint64_t files, bytes_fetched, bytes_total;
    double seconds;
    char revision[64];
    /* dry run: the selection, and what a pull would need */
    sl_reg_pull_file *plan;
    size_t n_plan;
    uint64_t bytes_needed;     /* bytes still to download */
    uint64_t bytes_free;       /* free space in the store (0: unknown) */
} sl_reg_pull_result;
SL_API void sl_reg_pull_result_free(sl_reg_pull_result *res);   /* frees plan */
SL_API bool sl_reg_offline_env(void);   /* SILICA_OFFLINE=1 or HF_HUB_OFFLINE in 1/ON/YES/TRUE */
SL_API int sl_reg_pull(sl_reg *r, const sl_reg_pull_opts *o, sl_reg_pull_result *res, sl_error *err);

/* ---- Git LFS (reg_lfs.c) ---- */
/* A checkout DIR whose weights are LFS pointer files + its remote -> version NAME. */
SL_API int sl_reg_lfs_fetch(sl_reg *r, const char *remote, const char *dir, const char *name, sl_reg_version **out,
                            size_t *n_objects, sl_error *err);
/* Upload version NAME's files as LFS objects; pointers_dir (optional) gets the
 * pointer files (weights), plain files and .gitattributes to commit. */
SL_API int sl_reg_lfs_push(sl_reg *r, const char *name, const char *remote, const char *pointers_dir,
                           sl_reg_version **out, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
