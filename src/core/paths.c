/*
 * paths.c — where the running program and its installed data are: the
 * executable's directory, and <prefix>/share/silica/... next to it, as
 * `make install` lays them out (CMakeLists.txt's install section: bin/silica,
 * share/silica/models/demo, share/silica/data/models).
 *
 * Invariant: nothing is read but the executable's own link and the paths
 * derived from it; a failure is "not found", never an error.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include "silica/io.h"

#ifndef SILICA_SHARE_FROM_BIN
#define SILICA_SHARE_FROM_BIN "../share/silica"   /* CMake passes the relative path bin -> datadir/silica */
#endif

bool sl_exe_dir(char *buf, size_t cap) {
    char exe[PATH_MAX];
    exe[0] = 0;
#ifdef __APPLE__
    uint32_t sz = sizeof exe;
    if (_NSGetExecutablePath(exe, &sz) != 0) exe[0] = 0;
#else
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
#endif
    char *slash = strrchr(exe, '/');
    if (!exe[0] || !slash) return false;
    int n = snprintf(buf, cap, "%.*s", slash == exe ? 1 : (int)(slash - exe), exe);
    return n > 0 && (size_t)n < cap;
}

bool sl_installed_path(const char *rel, char *buf, size_t cap) {
    char d[PATH_MAX];
    if (!sl_exe_dir(d, sizeof d)) return false;
    int n = snprintf(buf, cap, "%s/%s/%s", d, SILICA_SHARE_FROM_BIN, rel);
    return n > 0 && (size_t)n < cap && sl_path_exists(buf);
}
