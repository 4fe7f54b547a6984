/*
 * dtype_conv.c — test tool: `dtype_conv SRC DST` reads raw little-endian
 * SRC elements on stdin and writes them converted to DST on stdout with
 * sl_convert (the run-time dispatched vector path; SILICA_SIMD=scalar forces
 * the scalar one).  tests/py/test_dtype.py compares its output with numpy
 * and ml_dtypes.  Exit 2 with one line on stderr on bad usage or input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype_simd.h"
#include "silica/dtype.h"

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--kernels") == 0) {
        printf("%s\n", sl_simd_active()->name);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: dtype_conv SRC DST < in > out (dtypes F64 F32 F16 BF16 F8_*)\n");
        return 2;
    }
    sl_dtype s = sl_dtype_from_name(argv[1]), d = sl_dtype_from_name(argv[2]);
    if (!sl_convert_supported(s, d)) {
        fprintf(stderr, "dtype_conv: conversion %s -> %s is not supported\n", argv[1], argv[2]);
        return 2;
    }
    size_t ss = sl_dtype_size(s), ds = sl_dtype_size(d), cap = 1 << 20, len = 0;
    unsigned char *in = malloc(cap);
    if (!in) return 2;
    for (;;) {
        if (len == cap) {
            unsigned char *p = realloc(in, cap * 2);
            if (!p) { free(in); fprintf(stderr, "dtype_conv: out of memory\n"); return 2; }
            in = p;
            cap *= 2;
        }
        size_t got = fread(in + len, 1, cap - len, stdin);
        if (got == 0) break;
        len += got;
    }
    if (len % ss) {
        free(in);
        fprintf(stderr, "dtype_conv: stdin holds %zu bytes, not a whole number of %s elements\n", len, argv[1]);
        return 2;
    }
    size_t n = len / ss;
    unsigned char *out = malloc(n * ds + 1);
    int rc = 0;
    if (!out || !sl_convert(s, in, d, out, n) || fwrite(out, ds, n, stdout) != n) {
        fprintf(stderr, "dtype_conv: conversion of %zu elements failed\n", n);
        rc = 2;
    }
    free(out);
    free(in);
    return rc;
}
