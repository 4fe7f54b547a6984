/*
 * lfs.c — recognising Git LFS pointer files (spec v1) where weights should be.
 * A pointer is a small text file (< 1024 bytes) whose first line is
 * "version https://git-lfs.github.com/spec/v1" (or the older hawser URL).
 */
#include <string.h>

#include "silica/checkpoint.h"

bool sl_lfs_is_pointer(const uint8_t *buf, size_t len) {
    static const char v1[] = "version https://git-lfs.github.com/spec/v1";
    static const char hawser[] = "version https://hawser.github.com/spec/v1";
    if (len >= sizeof v1 - 1 && memcmp(buf, v1, sizeof v1 - 1) == 0) return true;
    if (len >= sizeof hawser - 1 && memcmp(buf, hawser, sizeof hawser - 1) == 0) return true;
    return false;
}
