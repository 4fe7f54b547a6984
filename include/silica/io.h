/*
 * silica/io.h — files: read-only mappings, atomic output, checked arithmetic.
 *
 * Invariants:
 *  - Input files are mmap'd read-only; tensors are views into the mapping and
 *    are never copied unless a conversion is requested.
 *  - Output is written to a temporary name in the destination directory,
 *    fsync'd and renamed into place; a failure or Ctrl-C (SIGINT/SIGTERM)
 *    removes the temporary, so no half-written output is ever left behind.
 */
#ifndef SILICA_IO_H
#define SILICA_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress of long work on files (convert, the store's hashing): bytes done
 * of total, and what is being worked on (may be NULL). */
typedef void (*sl_progress_fn)(void *ctx, uint64_t done_bytes, uint64_t total_bytes, const char *what);

/* ---- overflow-checked arithmetic ---- */
static inline bool sl_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool sl_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* ---- read-only mappings ---- */
typedef struct sl_mapping {
    const uint8_t *data;  /* NULL when size == 0 */
    uint64_t size;
    char *path;
} sl_mapping;

SL_API int sl_map_file(const char *path, sl_mapping **out, sl_error *err);
SL_API void sl_unmap(sl_mapping *m);
/* Hint that [off, off+len) will be read soon / is no longer needed. */
SL_API void sl_mapping_willneed(const sl_mapping *m, uint64_t off, uint64_t len);
SL_API void sl_mapping_dontneed(const sl_mapping *m, uint64_t off, uint64_t len);

/* Read a whole (small) file into a NUL-terminated heap buffer, at most max bytes. */
SL_API int sl_read_file(const char *path, uint64_t max, char **out, size_t *len, sl_error *err);

/* ---- atomic output files ---- */
typedef struct sl_outfile {
    int fd;
    char *path;      /* final name */
    char *tmp_path;  /* where bytes go until commit */
    uint64_t pos;
} sl_outfile;

SL_API int sl_outfile_open(sl_outfile *f, const char *path, sl_error *err);
SL_API int sl_outfile_write(sl_outfile *f, const void *buf, size_t n, sl_error *err);
SL_API int sl_outfile_pwrite(sl_outfile *f, const void *buf, size_t n, uint64_t off, sl_error *err);
SL_API int sl_outfile_pad(sl_outfile *f, uint64_t align, uint8_t byte, sl_error *err); /* pad pos to a multiple */
SL_API int sl_outfile_commit(sl_outfile *f, sl_error *err); /* fsync, rename, fsync dir; frees */
SL_API void sl_outfile_abort(sl_outfile *f);                /* unlink temp; frees; safe to call twice */

/* Atomic output directories: build in DST.tmp-XXXXXX, rename to DST at commit. */
typedef struct sl_outdir {
    char *path;
    char *tmp_path;
} sl_outdir;
SL_API int sl_outdir_open(sl_outdir *d, const char *path, bool force, sl_error *err);
SL_API int sl_outdir_commit(sl_outdir *d, sl_error *err);
SL_API void sl_outdir_abort(sl_outdir *d);   /* rm -r the temp dir */

/* Install SIGINT/SIGTERM handlers that remove registered temporaries and
 * exit(130/143).  Called once by the CLI; harmless if never called. */
SL_API void sl_install_cleanup_handlers(void);
/* Set by the signal handler; long loops may poll it. */
SL_API bool sl_interrupted(void);

/* Small path helpers. */
SL_API bool sl_path_is_dir(const char *path);
SL_API bool sl_path_exists(const char *path);
SL_API char *sl_path_join(const char *a, const char *b);  /* malloc'd */
SL_API const char *sl_path_basename(const char *p);
SL_API bool sl_str_ends_with(const char *s, const char *suffix);
/* The running executable's directory (no trailing slash); false if unknown. */
SL_API bool sl_exe_dir(char *buf, size_t cap);
/* <exe dir>/../share/silica/<rel> as `make install` lays it out (the
 * relative part follows the install's bin and data directories); true when
 * it exists. */
SL_API bool sl_installed_path(const char *rel, char *buf, size_t cap);
/* Copy a small file (config/tokenizer) atomically. */
SL_API int sl_copy_file(const char *src, const char *dst, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
