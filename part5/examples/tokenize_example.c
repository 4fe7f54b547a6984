/*
 * tokenize_example.c — part 5: text -> ids -> text with libsilica's
 * tokenizer, the way an inference loop uses it.
 *
 *   tokenize_example MODEL_DIR "some text"
 *
 * Prints the ids (with BOS/EOS as the model's post-processor configures),
 * then decodes them one id at a time with the streaming decoder, as a
 * generation loop would print tokens, and finally the one-shot decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/tokenizer.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR|tokenizer.json TEXT\n", argv[0]);
        return 2;
    }
    sl_error err = {0};
    sl_tokenizer *tok = NULL;
    if (sl_tok_load(argv[1], &tok, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 2;
    }
    sl_tok_ids ids = {0};
    if (sl_tok_encode(tok, argv[2], strlen(argv[2]), SL_TOK_ADD_SPECIAL, &ids, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        sl_tok_free(tok);
        return 2;
    }
    printf("%zu ids:", ids.n);
    for (size_t i = 0; i < ids.n; i++) {
        size_t len;
        const char *piece = sl_tok_id_to_token(tok, ids.ids[i], &len);
        printf(" %u(%.*s)", ids.ids[i], (int)len, piece);
    }
    printf("\nstream:");
    sl_tok_stream *st = NULL;
    int rc = sl_tok_stream_new(tok, SL_TOK_SKIP_SPECIAL, &st, &err);
    for (size_t i = 0; !rc && i < ids.n; i++) {
        const char *chunk;
        size_t len;
        rc = sl_tok_stream_step(st, ids.ids[i], &chunk, &len, &err);
        if (!rc && len) printf(" [%.*s]", (int)len, chunk);
    }
    sl_tok_stream_free(st);
    char *text = NULL;
    size_t tl = 0;
    if (!rc) rc = sl_tok_decode(tok, ids.ids, ids.n, SL_TOK_SKIP_SPECIAL, &text, &tl, &err);
    if (!rc) printf("\ndecoded: %s\n", text);
    else fprintf(stderr, "\nerror: %s\n", err.msg);
    free(text);
    sl_tok_ids_free(&ids);
    sl_tok_free(tok);
    return rc ? 2 : 0;
}
