/*
 * core/fsutil.h — file-system and string helpers shared by the modules
 * (the store, the estimator, the saved bandwidth figure...).  Not public.
 */
#ifndef SILICA_CORE_FSUTIL_H
#define SILICA_CORE_FSUTIL_H

#include "silica/error.h"

char *sl_strdup0(const char *s);   /* NULL-safe strdup */
char *sl_fmt(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
int sl_mkdir_p(const char *path, sl_error *err);
void sl_rm_rf(const char *path);
int sl_fsync_dir(const char *dir);
double sl_now(void);

#endif
