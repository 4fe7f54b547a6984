/*
 * fuzz_mem_series.c — libFuzzer target for the memory time-series reader
 * (`silica plot` input): arbitrary bytes -> sl_mem_series_parse.  Errors are
 * fine; crashes, leaks, UB and out-of-bounds reads are bugs.
 */
#include <stdint.h>
#include <stdlib.h>

#include "silica/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_mem_sample *s = NULL;
    size_t n = 0;
    sl_error err;
    if (sl_mem_series_parse((const char *)data, size, "fuzz.jsonl", &s, &n, &err) == 0) free(s);
    return 0;
}
