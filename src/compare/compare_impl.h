/*
 * compare_impl.h — helpers shared inside src/compare/: base64 of the
 * float32 logits the adapter protocol carries (RFC 4648, padded).
 */
#ifndef SILICA_COMPARE_IMPL_H
#define SILICA_COMPARE_IMPL_H

#include <stddef.h>

#include "silica/compare.h"

/* base64 of n bytes, malloc'd and NUL-terminated (NULL: out of memory). */
char *sl_cmp_b64_encode(const void *data, size_t n);
/* Decode s into *out (malloc'd); it must hold exactly want bytes.  The
 * message says what is wrong (bad character, length). */
int sl_cmp_b64_decode(const char *s, void **out, size_t want, sl_error *err);

#endif
