/*
 * fuzz_serve_request.c — libFuzzer target for the server's request
 * validation (src/serve/request.c): the first byte picks the endpoint
 * (OpenAI chat / completions, Ollama chat / generate, /tokenize,
 * /detokenize, /api/show), the rest is the JSON body.  Every input must be
 * accepted or refused with a 4xx naming a field, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/srv_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int kind = data[0] % 7;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    srv_error e;
    if (kind < 4) {
        srv_params p;
        if (srv_parse_request((srv_api)kind, body, len, &p, &e) == 0) srv_params_free(&p);
        else if (e.status < 400 || e.status > 599 || !e.msg[0]) abort();
    } else if (kind < 6) {
        srv_tok_params t;
        if (srv_parse_tokenize(body, len, kind == 5, &t, &e) == 0) srv_tok_params_free(&t);
        else if (e.status != 400 || !e.msg[0]) abort();
    } else {
        char *model = NULL;
        if (srv_parse_show(body, len, &model, &e) == 0) free(model);
        else if (e.status != 400 || !e.msg[0]) abort();
    }
    return 0;
}
