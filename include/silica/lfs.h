/*
 * silica/lfs.h — Git LFS: pointer files (spec v1) parsed and written
 * byte-identically to git-lfs, and a client for LFS remotes (file:// object
 * directories and the HTTP batch API with basic transfers).
 *
 * Invariants:
 *  - A pointer is < 1024 bytes: "version <url>\n", optional "ext-N-name v\n"
 *    lines, "oid sha256:<64 lowercase hex>\n", "size <decimal>\n", in that
 *    order; the writer emits exactly what git-lfs emits.
 *  - Objects fetched from a remote are written to a temporary, their sha256
 *    and size checked, and only then renamed into place.
 */
#ifndef SILICA_LFS_H
#define SILICA_LFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_LFS_POINTER_MAX 1024
#define SL_LFS_MAX_EXT 10

typedef struct sl_lfs_pointer {
    char oid[65];        /* sha256 lowercase hex */
    uint64_t size;
    int n_ext;
    char ext[SL_LFS_MAX_EXT][160];   /* "ext-0-foo sha256:..." lines, verbatim without '\n' */
} sl_lfs_pointer;

/* Parse a pointer; `what` names the file in error messages. */
SL_API int sl_lfs_pointer_parse(const uint8_t *buf, size_t len, const char *what, sl_lfs_pointer *p, sl_error *err);
/* Write the canonical encoding into out (cap >= SL_LFS_POINTER_MAX); returns length. */
SL_API size_t sl_lfs_pointer_format(const sl_lfs_pointer *p, char *out, size_t cap);

/* The pointer of a file's content (sha256 streamed). */
SL_API int sl_lfs_pointer_for_file(const char *path, sl_lfs_pointer *p, sl_error *err);

/* Remote: "file:///path/repo.git", "/path/repo.git" or "http(s)://host/repo.git"
 * (LFS URL <remote>/info/lfs unless it already ends in /info/lfs). */
typedef struct sl_lfs_object {
    char oid[65];
    uint64_t size;
} sl_lfs_object;

/* Download objects into dst_dir/<oid> (verified); existing files are kept. */
SL_API int sl_lfs_fetch(const char *remote, const sl_lfs_object *objs, size_t n, const char *dst_dir, sl_error *err);
/* Upload objects; src_path(i) gives each object's local file. */
typedef const char *(*sl_lfs_src_fn)(void *ctx, size_t i);
SL_API int sl_lfs_push(const char *remote, const sl_lfs_object *objs, size_t n, sl_lfs_src_fn src, void *ctx,
                       sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
