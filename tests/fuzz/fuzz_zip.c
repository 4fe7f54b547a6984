/*
 * fuzz_zip.c — libFuzzer target for the ZIP reader: each input is opened as
 * an archive in memory; every entry is looked up by name and read (STORED
 * view + CRC, or bounded inflate up to 1 MiB), so any out-of-bounds header
 * or data access shows up under ASan/UBSan.
 */
#include <stdint.h>
#include <stdlib.h>

#include "formats/zip.h"

static volatile uint8_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_zip z;
    sl_error err;
    if (sl_zip_open(&z, "fuzz.zip", data, size, &err) != 0) return 0;
    for (size_t i = 0; i < z.n; i++) {
        const sl_zip_entry *e = sl_zip_find(&z, z.entries[i].name);
        if (e != &z.entries[i]) __builtin_trap();   /* names are unique: find must return this entry */
        const uint8_t *p;
        uint8_t *owned;
        if (sl_zip_read(&z, e, 1u << 20, &p, &owned, &err) == 0) {
            if (e->size) g_sink ^= p[0] ^ p[e->size - 1];
            free(owned);
        }
    }
    sl_zip_close(&z);
    return 0;
}
