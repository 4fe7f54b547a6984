/*
 * fuzz_spm.c — libFuzzer target for the SentencePiece tokenizer.model
 * reader (src/tokenizer/tok_spm.c): any bytes as a ModelProto; when they
 * convert, the resulting tokenizer.json must load and encode/decode a fixed
 * text.  Invariant checked: no crash, no leak, no out-of-bounds read, and a
 * successful conversion always yields a loadable tokenizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "silica/tokenizer.h"
#include "tokenizer/tok_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_error err = {0};
    char *json = NULL;
    size_t n = 0;
    if (tok_spm_to_json((const char *)data, size, "tokenizer.model", &json, &n, &err)) return 0;
    sl_tokenizer *t = NULL;
    if (sl_tok_load_json(json, n, "tokenizer.model", &t, &err)) {
        /* a converted model always loads: anything else is a converter bug */
        abort();
    }
    static const char text[] = " Hello  wörld 😀 a\n";
    sl_tok_ids ids = {0};
    if (sl_tok_encode(t, text, sizeof text - 1, SL_TOK_ADD_SPECIAL, &ids, &err) == 0) {
        char *out = NULL;
        size_t len = 0;
        if (sl_tok_decode(t, ids.ids, ids.n, 0, &out, &len, &err) == 0) free(out);
    }
    sl_tok_ids_free(&ids);
    sl_tok_free(t);
    free(json);
    return 0;
}
