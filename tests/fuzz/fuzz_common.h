/*
 * fuzz_common.h — libFuzzer helpers: readers take paths (they mmap), so each
 * input is written to an in-memory file (memfd) and opened by its /proc path.
 */
#ifndef SILICA_FUZZ_COMMON_H
#define SILICA_FUZZ_COMMON_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Write data to a fresh memfd; fill `path` with a name readers can open.
 * Returns the fd (close it after use) or -1. `suffix` is ignored by the
 * kernel but lets extension-based detection see e.g. ".npz". */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) { close(fd); return -1; }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}
#endif
