/*
 * silica/error.h — how every libsilica function reports failure.
 *
 * Convention: functions return 0 on success or a non-zero SL_E* code, and on
 * failure fill the caller's sl_error with ONE human-readable line that names
 * the file / tensor / field at fault and what was expected.  The CLI prints
 * that line and exits 2.  Passing a NULL sl_error is allowed (message dropped).
 */
#ifndef SILICA_ERROR_H
#define SILICA_ERROR_H

#include <stdarg.h>

#include "silica/api.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SL_OK = 0,
    SL_EINVAL = 1,       /* malformed input: corrupt file, bad field, bad shape */
    SL_EIO = 2,          /* operating-system I/O failure (open, read, write, rename, disk full) */
    SL_ENOMEM = 3,       /* allocation failed */
    SL_EUNSUPPORTED = 4, /* well-formed but not supported (unknown dtype, version) */
    SL_EUNSAFE = 5,      /* refused for safety: pickle global outside the allowlist */
    SL_ELFS = 6,         /* a Git LFS pointer sits where data was expected */
    SL_EINTR = 7         /* interrupted (Ctrl-C) */
};

typedef struct sl_error {
    int code;
    char msg[1024];
} sl_error;

/* Record an error (printf-style) and return `code` so callers can write
 * `return sl_errorf(err, SL_EINVAL, "%s: ...", path);` */
SL_API int sl_errorf(sl_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
SL_API int sl_verrorf(sl_error *err, int code, const char *fmt, va_list ap);

/* Prefix an existing message with context ("model.safetensors: " + msg). */
SL_API void sl_error_prefix(sl_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

SL_API void sl_error_clear(sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
