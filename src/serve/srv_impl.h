/*
 * srv_impl.h — the server's internals shared by its files: the HTTP layer
 * (http.c, libmicrohttpd), the scheduler (sched.c, one thread per model),
 * response formatting (format.c), the informational routes (routes.c) and
 * the embedded web page (web.c).
 *
 * Invariants:
 *  - A srv_req is shared by its connection and the scheduler and freed when
 *    the last reference goes (srv_req_release); its mutex guards everything
 *    both sides touch: out, status, done, closed, suspended, conn.
 *  - The connection is suspended whenever it waits for the scheduler and
 *    resumed (srv_req_wake, under the mutex) only when something is new;
 *    a closed connection (client gone) is never touched again.
 *  - Only the scheduler thread of a model touches its slots and sequences;
 *    the model's queue and counters are guarded by model->mu; tokenizer
 *    encoding (not thread-safe) is guarded by model->tok_mu.
 */
#ifndef SILICA_SRV_IMPL_H
#define SILICA_SRV_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/generate.h"
#include "silica/serve.h"
#include "serve/srv_request.h"

struct MHD_Connection;
struct MHD_Daemon;

/* ---- growable byte buffer ---- */
typedef struct srv_buf {
    char *p;
    size_t len, cap;
} srv_buf;
int srv_buf_add(srv_buf *b, const void *s, size_t n);
int srv_buf_str(srv_buf *b, const char *s);
void srv_buf_free(srv_buf *b);

typedef struct srv_server srv_server;
typedef struct srv_model srv_model;
typedef struct srv_req srv_req;

/* One choice of a request = one sequence run in one slot. */
typedef struct srv_choice {
    srv_req *req;
    int index;
    int slot;                 /* -1: not started */
    bool started, finished;
    const char *finish;       /* OpenAI finish_reason once finished */
    srv_buf text;             /* non-stream: the answer */
    cJSON *logprobs;          /* non-stream with logprobs: entries (legacy completions: the object) */
    cJSON *context;           /* ollama generate: prompt + generated ids */
    size_t text_offset;       /* legacy completions: offset of the next token's text */
    int generated;
    srv_buf seen;             /* stream with tool calls: the text so far */
    size_t sent;              /* ... of which streamed as content */
    sl_tool_calls calls;      /* the answer's tool calls once finished */
    struct srv_choice *next;  /* model queue link */
} srv_choice;

struct srv_req {
    pthread_mutex_t mu;
    int refs;
    srv_server *srv;
    srv_model *model;
    srv_params p;
    char id[48];
    long long created;        /* unix seconds */
    double t0;                /* monotonic start */
    struct MHD_Connection *conn;
    int fd;                   /* the client socket (disconnect checks while suspended) */
    bool suspended, closed, started, done;
    int status;               /* response status once decided */
    srv_buf out;              /* stream: bytes not yet sent; else the whole body */
    int32_t *prompt;          /* ids, built by the scheduler */
    int n_prompt, cached;
    bool plain_transcript;    /* chat rendered without a template: stops at SL_GEN_PLAIN_STOP */
    sl_tool_format tool_format;   /* tool calls parsed from the answers (NONE: plain content) */
    const char *tool_prefix;  /* a forced call's opening (sl_tool_call_schema), already in the prompt; "" none */
    int max_tokens;           /* after the context clamp */
    double t_prompt_s;        /* prompt evaluation time of choice 0 */
    double t_first, t_last;   /* monotonic: first and last token */
    srv_choice *choices;
    int n_done;
};

struct srv_model {
    srv_server *srv;
    char *id;                 /* the name clients use */
    char *path;
    sl_gen_model *g;          /* NULL: not loaded yet (loads on first use, srv_model_ensure) */
    int n_ctx, n_slots;
    sl_session_opts so;
    struct srv_slot *slots;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;       /* queue, counters, stop */
    pthread_cond_t cv;
    srv_choice *qhead, *qtail;
    int queued, active;
    bool stop;
    pthread_mutex_t tok_mu;   /* tokenizer encode */
    uint64_t kv_bytes;        /* allocated for the slots' caches (fixed at load) */
    uint64_t fit_bytes;       /* the fit advisor's estimate for it once loaded (0: none made) */
    atomic_ullong kv_tokens;  /* positions they hold (updated after each step) */
};

struct srv_server {
    sl_serve_opts o;
    srv_model *models;
    int n_models;
    struct MHD_Daemon *d;
    int port;
    atomic_bool draining;
    atomic_int live;          /* requests not yet freed */
    atomic_ullong next_id;
    /* metrics */
    atomic_ullong n_requests, n_errors, n_prompt_tokens, n_cached_tokens, n_gen_tokens, n_cancelled;
};

double srv_now(void);
srv_model *srv_find_model(srv_server *s, const char *name);

/* ---- requests (http.c) ---- */
void srv_req_retain(srv_req *r);
void srv_req_release(srv_req *r);
/* Resume the connection if it is suspended (call with r->mu held). */
void srv_req_wake(srv_req *r);
/* The same for a request just marked closed: libmicrohttpd then ends the
 * connection (call with r->mu held). */
void srv_req_resume_closed(srv_req *r);

/* ---- scheduler (sched.c) ---- */
/* Name the model (nothing loaded yet); 0 or SL_ENOMEM. */
int srv_model_init(srv_server *s, srv_model *m, const sl_serve_model_spec *spec, sl_error *err);
/* Load it if it is not loaded: 0; or -1 with *e: 503 naming the memory
 * breakdown when the fit advisor says it does not fit beside the models
 * loaded (--max-memory, else this machine's budget; --force skips the
 * check), 500 when loading fails.  Models load only on the HTTP thread. */
int srv_model_ensure(srv_server *s, srv_model *m, srv_error *e);
/* Queue every choice of r (takes a reference); -1 with *e (503) when full or draining. */
int srv_sched_submit(srv_model *m, srv_req *r, srv_error *e);
void srv_model_stop(srv_model *m);   /* finish the queue, join the thread, free everything */
bool srv_model_idle(srv_model *m);
void srv_model_usage(srv_model *m, int *queued, int *active, uint64_t *kv_bytes, uint64_t *kv_tokens);

/* ---- formatting (format.c) ---- */
/* The error body of e for api (OpenAI object, or Ollama {"error"}). */
char *srv_fmt_error(srv_api api, const srv_error *e);
/* Stream pieces: the token t of choice c (appended to r->out, or kept in c). */
int srv_fmt_token(srv_req *r, srv_choice *c, const sl_gen_token *t, const sl_tokenizer *tok);
/* Choice c finished: its sequence's stats, text and generated ids. */
int srv_fmt_choice_end(srv_req *r, srv_choice *c, const sl_gen_stats *st, const char *text, size_t len,
                       const int32_t *ids, int n_ids);
/* Every choice finished: the stream's tail or the whole body. */
int srv_fmt_done(srv_req *r, const sl_gen_stats *st0);
/* A mid-stream error event. */
int srv_fmt_stream_error(srv_req *r, const srv_error *e);
/* RFC 3339 UTC time with microseconds ("2024-05-01T12:00:00.123456Z"). */
void srv_rfc3339(char *buf, size_t n);

/* ---- tool calls in answers (tools.c) ---- */
/* c's calls: OpenAI [{index?, id, type, function: {name, arguments: string}}]
 * or Ollama [{function: {name, arguments: object}}]. */
cJSON *srv_fmt_tool_calls(const srv_req *r, const srv_choice *c, bool ollama, bool with_index);
/* Streaming with tool calls: add a token's text (prefix, a forced call's
 * opening or NULL, goes first); *piece/return: the text that is certainly
 * content now (may be empty), valid until the next call. */
size_t srv_tools_stream_piece(srv_choice *c, sl_tool_format f, const char *prefix, const char *text, size_t len,
                              const char **piece);

/* ---- routes without generation (routes.c) ---- */
typedef struct srv_reply {
    int status;
    char *body;               /* malloc'd */
    size_t len;
    const char *type;         /* content type */
} srv_reply;
/* Handle GET/POST of the informational routes; false if path is not one. */
bool srv_route_info(srv_server *s, const char *method, const char *path, const char *body, size_t len,
                    srv_reply *out);
void srv_reply_error(srv_reply *out, srv_api api, const srv_error *e);

/* ---- the web page (web.c) ---- */
extern const unsigned char srv_web_index[];
extern const size_t srv_web_index_len;

#endif
