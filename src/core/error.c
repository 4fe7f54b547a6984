/*
 * error.c — sl_error helpers: one line per failure, with context prefixes.
 */
#include "silica/error.h"

#include <stdio.h>
#include <string.h>

int sl_verrorf(sl_error *err, int code, const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        /* one line: fold any newline a caller let slip in */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return code;
}

int sl_errorf(sl_error *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sl_verrorf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void sl_error_prefix(sl_error *err, const char *fmt, ...) {
    if (!err) return;
    char pre[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t lp = strlen(pre), lm = strlen(err->msg);
    if (lp >= sizeof err->msg) lp = sizeof err->msg - 1;
    if (lp + lm >= sizeof err->msg) lm = sizeof err->msg - 1 - lp;
    memmove(err->msg + lp, err->msg, lm);
    memcpy(err->msg, pre, lp);
    err->msg[lp + lm] = 0;
}

void sl_error_clear(sl_error *err) {
    if (!err) return;
    err->code = 0;
    err->msg[0] = 0;
}
