/*
 * silica/utf8.h — UTF-8 encoding and JSON string literals, the one
 * implementation the tokenizer (tokenizer.json), the Python-exact JSON of
 * conversion and the CLI's JSON-lines inputs share.
 *
 * Invariants: sl_json_string_decode never reads past `end`, appends only
 * whole decoded pieces, keeps the output NUL-terminated (one byte is always
 * reserved), and on failure says where (*stop) and what (*why) without
 * freeing what the caller owns.
 */
#ifndef SILICA_UTF8_H
#define SILICA_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The UTF-8 bytes of code point cp (< 0x110000) into out; returns 1..4.  A
 * surrogate code point gets its 3-byte form (Python's "surrogatepass"). */
SL_API int sl_utf8_encode(uint32_t cp, char out[4]);

/* What a \uD800-\uDFFF escape that is not half of a surrogate pair becomes. */
typedef enum sl_json_lone_surrogate {
    SL_JSON_SURROGATE_ERROR = 0,   /* malformed input (HF tokenizers' serde_json) */
    SL_JSON_SURROGATE_FFFD,        /* U+FFFD */
    SL_JSON_SURROGATE_KEEP         /* the code point itself, 3 bytes (Python's json) */
} sl_json_lone_surrogate;

/* Decode the JSON string literal whose opening quote is at s, reading at most
 * up to end.  The bytes are appended to the malloc'd buffer *out (*olen bytes
 * used, *ocap allocated; all three may start 0/NULL), which grows with
 * realloc and stays NUL-terminated.  Raw bytes >= 0x80 are copied as they
 * are, or with strict_utf8 checked as Python's strict UTF-8 decoder does.
 * Returns 0 with *stop just past the closing quote; SL_EINVAL with *stop at
 * the fault and *why one of "bad \u escape", "bad escape", "control character
 * in string", "invalid UTF-8", "lone surrogate", "unterminated string",
 * "expected a string"; SL_ENOMEM (*why "out of memory"). */
SL_API int sl_json_string_decode(const char *s, const char *end, sl_json_lone_surrogate lone, bool strict_utf8,
                                 char **out, size_t *olen, size_t *ocap, const char **stop, const char **why);

#ifdef __cplusplus
}
#endif
#endif
