/*
 * core/buf.h — a growable byte buffer for building headers in memory (core and
 * the format writers).
 *
 * Invariants: after any append, p[n] == 0 (room for a terminator is always
 * kept, so text built here is a C string); on allocation failure `oom` is
 * set, later appends are ignored, and the caller checks `oom` once at the end.
 */
#ifndef SILICA_BUF_H
#define SILICA_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} sl_buf;

void sl_buf_put(sl_buf *b, const void *d, size_t n);
void sl_buf_putc(sl_buf *b, uint8_t c);
void sl_buf_puts(sl_buf *b, const char *s);
void sl_buf_u16le(sl_buf *b, uint16_t v);
void sl_buf_u32le(sl_buf *b, uint32_t v);
void sl_buf_u64le(sl_buf *b, uint64_t v);
void sl_buf_free(sl_buf *b);

#endif
