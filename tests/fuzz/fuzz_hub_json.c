/*
 * fuzz_hub_json.c — libFuzzer target for the hub's JSON answers as `silica
 * pull` reads them: the input is split at the first NUL into the revision
 * answer and the tree answer; entries are validated (paths, sizes, oids),
 * selected and deduplicated exactly as a pull does, with no network.
 */
#include <stdint.h>
#include <string.h>

#include "registry/reg_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t rl = nul ? (size_t)(nul - data) : size;
    const char *tree = nul ? (const char *)nul + 1 : "";
    size_t tl = nul ? size - rl - 1 : 0;
    size_t n = 0;
    sl_error err = {0};
    (void)reg_pull_parse_answers("acme/fuzz", (const char *)data, rl, tree, tl, &n, &err);
    return 0;
}
