/*
 * fuzz_pickle.c — libFuzzer target for the allowlist unpickler and the opcode
 * scanner on arbitrary bytes (no file involved): neither may crash, leak or
 * read out of bounds, whatever the input.
 */
#include <stddef.h>
#include <stdint.h>

#include "formats/pickle.h"

static int on_import(void *ud, const char *m, const char *n, const char *via, size_t off) {
    (void)ud; (void)m; (void)n; (void)via; (void)off;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_error err = {0};
    sl_pk_doc *doc = NULL;
    sl_pkv *root = NULL;
    size_t used = 0;
    if (sl_pk_load(data, size, "fuzz.pkl", &doc, &root, &used, &err) == 0) {
        sl_pkv **st;
        (void)sl_pk_storages(doc, &st);
        sl_pk_free(doc);
    }
    (void)sl_pk_scan(data, size, "fuzz.pkl", on_import, NULL, &used, &err);
    return 0;
}
