/*
 * silica/serve.h — an HTTP server for text generation: the OpenAI API
 * (/v1/chat/completions, /v1/completions, /v1/models), the Ollama API
 * (/api/chat, /api/generate, /api/tags, /api/show), /health, /metrics
 * (Prometheus text), /tokenize, /detokenize and a web chat page at /.
 *
 * Invariants:
 *  - HTTP is libmicrohttpd's; this module never parses HTTP itself.
 *  - Requests decode together by continuous batching (generate.h's
 *    sl_gen_step): at most `parallel` sequences per model, the others wait
 *    in a FIFO queue; a request's tokens depend only on its own prompt,
 *    parameters and seed, never on the other requests in flight.
 *  - A finished sequence keeps its KV cache in its slot; a new request goes
 *    to the idle slot whose cached ids share the longest prefix with its
 *    prompt (multi-turn chat re-evaluates only the new turn).
 *  - Every request either gets a response or is cancelled because its
 *    client went away (its slot is freed between two decoding steps); bad
 *    input is a 4xx with an OpenAI-style error object naming the field.
 *  - sl_serve_stop is async-signal-safe: in-flight requests finish, new
 *    ones get 503, then sl_serve_run returns.
 */
#ifndef SILICA_SERVE_H
#define SILICA_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"
#include "silica/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_serve_model_spec {
    const char *path;   /* what sl_gen_model_open accepts (store names already resolved) */
    const char *name;   /* the id clients use ("model": ...); NULL: the path's last component */
} sl_serve_model_spec;

typedef enum sl_serve_log { SL_SERVE_LOG_TEXT = 0, SL_SERVE_LOG_JSON = 1, SL_SERVE_LOG_NONE = 2 } sl_serve_log;

typedef struct sl_serve_opts {
    const sl_serve_model_spec *models;   /* the first is the default model */
    int n_models;
    const char *host;         /* NULL: 127.0.0.1 */
    int port;                 /* 0: 8080; -1: any free port (see ready_fn) */
    const char *api_key;      /* NULL: none; else "Authorization: Bearer KEY" on every API route */
    int parallel;             /* sequences decoded together per model (0: 4) */
    sl_session_opts session;  /* per sequence; n_ctx 0: min(model's positions, 4096) */
    const char *cors;         /* NULL: no CORS headers; else Access-Control-Allow-Origin */
    sl_serve_log log;         /* one line per request on stderr */
    size_t max_body;          /* request body limit in bytes (0: 8 MiB) */
    int timeout_s;            /* idle connection / body upload timeout (0: 30) */
    int max_queue;            /* waiting requests per model before 503 (0: 1024) */
    uint64_t max_memory;      /* budget for the models loaded together (0: this machine's, as `silica fit`) */
    bool force;               /* load models without asking the fit advisor */
    /* Called once listening, with the port (useful with port -1). */
    void (*ready_fn)(void *ud, const char *host, int port);
    void *ready_ud;
} sl_serve_opts;

/* Load the first model, listen, serve until sl_serve_stop; then drain the
 * requests in flight and return 0 (or an error: bind failure, first model
 * that does not load).  Every other model loads on its first use when the
 * fit advisor says it fits next to those loaded (weights + one KV cache of
 * session.n_ctx per slot each, within max_memory), else that request gets
 * 503 with the memory breakdown. */
SL_API int sl_serve_run(const sl_serve_opts *o, sl_error *err);

/* Ask the running server to drain and stop (async-signal-safe). */
SL_API void sl_serve_stop(void);

#ifdef __cplusplus
}
#endif
#endif
