/*
 * zip.h — ZIP archives as torch.save and numpy.savez write them (internal).
 *
 * Reader: the central directory is the truth (zip64 aware); each entry's
 * local header is re-checked (signature, same name, not encrypted); data
 * offsets are bounds-checked against the mapping and must end before the
 * central directory.  STORED entries are viewed in place; DEFLATE entries are
 * inflated with zlib into a buffer no larger than the declared uncompressed
 * size.  Rejected at open: multi-disk archives, encrypted entries, methods
 * other than STORED/DEFLATE, names that are empty, contain NUL, start with
 * '/' or have a ".." component, and duplicate names.
 *
 * CRC-32: sl_zip_read() checks it (it touches every byte anyway);
 * sl_zip_view() does not (a view must not fault in gigabytes) —
 * call sl_zip_verify() for that.
 *
 * Writer: STORED entries streamed into an sl_outfile, each data start
 * aligned (torch uses 64 bytes) via a local-header extra field 0x4246 ("FB")
 * padded with 'Z'; CRC-32 is computed while streaming and patched into the
 * local header; zip64 extras/records are used when sizes or offsets need them.
 */
#ifndef SILICA_ZIP_H
#define SILICA_ZIP_H

#include <stdint.h>

#include "silica/io.h"

typedef struct sl_zip_entry {
    char *name;
    uint16_t method;        /* 0 STORED, 8 DEFLATE */
    uint16_t flags;
    uint32_t crc32;
    uint64_t comp_size;
    uint64_t size;
    uint64_t local_offset;  /* local header */
    uint64_t data_offset;   /* first byte of (compressed) data */
} sl_zip_entry;

typedef struct sl_zip {
    const char *path;
    const uint8_t *data;
    uint64_t size;
    sl_zip_entry *entries;  /* central-directory order */
    size_t n;
    size_t *by_name;        /* entry indices sorted by name (for sl_zip_find) */
} sl_zip;

/* Parse the archive in data[0..size) (usually a mapping); path is used in
 * messages and must outlive z.  On failure z is left closed (safe to close). */
int sl_zip_open(sl_zip *z, const char *path, const uint8_t *data, uint64_t size, sl_error *err);
void sl_zip_close(sl_zip *z);
const sl_zip_entry *sl_zip_find(const sl_zip *z, const char *name);
/* A view of a STORED entry's bytes (no copy, no CRC check). */
int sl_zip_view(const sl_zip *z, const sl_zip_entry *e, const uint8_t **data, sl_error *err);
/* Bytes of any entry: a view for STORED, a malloc'd inflated copy (caller
 * frees *owned) for DEFLATE; refuses entries larger than max; checks CRC. */
int sl_zip_read(const sl_zip *z, const sl_zip_entry *e, uint64_t max, const uint8_t **data, uint8_t **owned,
                sl_error *err);
/* Check a STORED entry's CRC-32 against its bytes. */
int sl_zip_verify(const sl_zip *z, const sl_zip_entry *e, sl_error *err);

typedef struct sl_zip_writer sl_zip_writer;
int sl_zipw_new(sl_zip_writer **zw, sl_outfile *out, sl_error *err);
/* Start a STORED entry of exactly `size` bytes whose data starts at a multiple of `align`. */
int sl_zipw_begin(sl_zip_writer *zw, const char *name, uint64_t size, uint32_t align, sl_error *err);
int sl_zipw_data(sl_zip_writer *zw, const void *buf, size_t n, sl_error *err);
int sl_zipw_end(sl_zip_writer *zw, sl_error *err);
/* Whole small entry in one call. */
int sl_zipw_add(sl_zip_writer *zw, const char *name, const void *buf, size_t n, uint32_t align, sl_error *err);
int sl_zipw_finish(sl_zip_writer *zw, sl_error *err);   /* central directory; frees zw */
void sl_zipw_free(sl_zip_writer *zw);                    /* NULL ok */

#endif
