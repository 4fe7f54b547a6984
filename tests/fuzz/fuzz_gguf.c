/*
 * fuzz_gguf.c — libFuzzer target for the GGUF reader: each input is parsed
 * as a checkpoint (sl_gguf_read via sl_checkpoint_open) and through the typed
 * API (sl_gguf_parse), whose metadata is then rendered as plain and typed
 * JSON and every array element visited, so any out-of-bounds read in the
 * parse or in the value walkers shows up under ASan/UBSan.
 */
#include "fuzz_common.h"   /* first: it defines _GNU_SOURCE for memfd_create */

#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"

static void visit(const sl_gguf_value *v, int depth) {
    if (v->type != SL_GGUF_ARRAY || depth > 3) return;
    uint64_t n = v->len < 64 ? v->len : 64;
    for (uint64_t i = 0; i < n; i++) {
        sl_gguf_value e;
        if (sl_gguf_array_get(v, i, &e) == 0) {
            double d;
            (void)sl_gguf_value_f64(&e, &d);
            visit(&e, depth + 1);
        }
    }
    if (v->len) {   /* last element: longest walk */
        sl_gguf_value e;
        (void)sl_gguf_array_get(v, v->len - 1, &e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_error err;
    sl_gguf *g = NULL;
    if (sl_gguf_parse(data, size, "fuzz", &g, &err) == 0) {
        for (size_t i = 0; i < sl_gguf_n_kv(g); i++) {
            sl_gguf_value v;
            sl_gguf_kv_value(g, i, &v);
            visit(&v, 0);
            uint32_t u; float f; const char *s; size_t l;
            (void)sl_gguf_get_u32(g, sl_gguf_key(g, i), &u, &err);
            (void)sl_gguf_get_f32(g, sl_gguf_key(g, i), &f, &err);
            (void)sl_gguf_get_str(g, sl_gguf_key(g, i), &s, &l, &err);
        }
        cJSON *a = sl_gguf_metadata_json(g, false), *b = sl_gguf_metadata_json(g, true);
        char *t = b ? cJSON_PrintUnformatted(b) : NULL;
        free(t);
        cJSON_Delete(a);
        cJSON_Delete(b);
        sl_gguf_close(g);
    }
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    sl_checkpoint *ck = NULL;
    if (sl_checkpoint_open(path, &ck, &err) == 0) {
        for (size_t i = 0; i < ck->n_tensors; i++) {   /* touch first and last byte of every view */
            const sl_tensor *t = &ck->tensors[i];
            volatile uint8_t x = 0;
            if (t->nbytes) x ^= t->data[0] ^ t->data[t->nbytes - 1];
            (void)x;
        }
        sl_checkpoint_close(ck);
    }
    close(fd);
    return 0;
}
