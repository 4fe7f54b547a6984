/*
 * fuzz_lfs_pointer.c — libFuzzer target for the Git LFS pointer parser, plus
 * the round trip: whatever parses must re-encode to a pointer that parses to
 * the same oid/size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "silica/checkpoint.h"
#include "silica/lfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_lfs_pointer p, q;
    sl_error err = {0};
    (void)sl_lfs_is_pointer(data, size);
    if (sl_lfs_pointer_parse(data, size, "fuzz", &p, &err) != 0) return 0;
    char out[SL_LFS_POINTER_MAX + 512];
    size_t n = sl_lfs_pointer_format(&p, out, sizeof out);
    if (n == 0) return 0;   /* size 0 encodes as "" */
    if (sl_lfs_pointer_parse((const uint8_t *)out, n, "fuzz", &q, &err) != 0 || strcmp(p.oid, q.oid) || p.size != q.size)
        abort();
    return 0;
}
