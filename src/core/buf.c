/*
 * buf.c — growable byte buffer (see buf.h).
 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

void sl_buf_put(sl_buf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (n + 1 > b->cap - b->n || !b->p) {
        size_t need = b->n + n + 1, nc = b->cap ? b->cap : 256;
        if (need < n) { b->oom = true; return; }
        while (nc < need) nc *= 2;
        uint8_t *p = realloc(b->p, nc);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sl_buf_putc(sl_buf *b, uint8_t c) { sl_buf_put(b, &c, 1); }
void sl_buf_puts(sl_buf *b, const char *s) { sl_buf_put(b, s, strlen(s)); }

void sl_buf_u16le(sl_buf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    sl_buf_put(b, x, 2);
}
void sl_buf_u32le(sl_buf *b, uint32_t v) {
    sl_buf_u16le(b, (uint16_t)v);
    sl_buf_u16le(b, (uint16_t)(v >> 16));
}
void sl_buf_u64le(sl_buf *b, uint64_t v) {
    sl_buf_u32le(b, (uint32_t)v);
    sl_buf_u32le(b, (uint32_t)(v >> 32));
}

void sl_buf_free(sl_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
