/*
 * fsutil.c — small file-system and string helpers every module may use:
 * printf into a new string, mkdir -p, rm -r, fsync of a directory, the clock.
 *
 * Invariants: returned strings are malloc'd (NULL when out of memory);
 * sl_mkdir_p reports one line naming the directory; sl_rm_rf never follows a
 * symbolic link (lstat), so it removes the link, not what it points to.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/fsutil.h"

char *sl_strdup0(const char *s) { return s ? strdup(s) : NULL; }

char *sl_fmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

double sl_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

int sl_mkdir_p(const char *path, sl_error *err) {
    char *p = strdup(path);
    if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return sl_errorf(err, SL_EIO, "%s: cannot create directory: %s", path, strerror(e));
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = sl_errorf(err, SL_EIO, "%s: cannot create directory: %s", path, strerror(errno));
    free(p);
    return rc;
}

void sl_rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char *c = sl_fmt("%s/%s", path, e->d_name);
                if (c) sl_rm_rf(c);
                free(c);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

int sl_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}
