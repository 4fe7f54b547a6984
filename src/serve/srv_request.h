/*
 * srv_request.h — request bodies of the server's generation endpoints
 * (OpenAI chat/completions, Ollama chat/generate), parsed and validated into
 * one srv_params.  No model is needed: checks that need one (token ids in
 * range, prompt length) happen when the request is scheduled.
 *
 * Invariants:
 *  - Every field of the body is known (handled, or accepted and ignored as
 *    documented in part8); anything else is a 400 naming the field.
 *  - A wrong type or out-of-range value is a 400 naming the field and what
 *    was expected; null counts as "not given" for optional fields.
 *  - On success every pointer in srv_params is owned by it
 *    (srv_params_free); on failure nothing is left allocated.
 */
#ifndef SILICA_SRV_REQUEST_H
#define SILICA_SRV_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/grammar.h"
#include "silica/runtime.h"

typedef enum srv_api {
    SRV_OAI_CHAT = 0,       /* POST /v1/chat/completions */
    SRV_OAI_COMPLETION = 1, /* POST /v1/completions */
    SRV_OLLAMA_CHAT = 2,    /* POST /api/chat */
    SRV_OLLAMA_GENERATE = 3 /* POST /api/generate */
} srv_api;

#define SRV_MAX_STOPS 16
#define SRV_MAX_N 16
#define SRV_MAX_TOKENS (1 << 24)

/* What a 4xx says: HTTP status, OpenAI error type, the field at fault. */
typedef struct srv_error {
    int status;
    const char *type;   /* "invalid_request_error", "not_found_error", ... */
    char param[96];     /* "" when not about one field */
    char msg[1100];   /* room for the fit advisor's breakdown */
} srv_error;

int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* auto: the model decides; none: no calls parsed; required / named: the
 * answer is constrained to a call (of tool_name when named). */
typedef enum srv_tool_choice { SRV_TOOLS_AUTO = 0, SRV_TOOLS_NONE, SRV_TOOLS_REQUIRED, SRV_TOOLS_NAMED } srv_tool_choice;

typedef struct srv_params {
    srv_api api;
    char *model;              /* NULL: the default model */
    cJSON *messages;          /* chat: [{role, content: string, ...}] (content parts joined) */
    char *prompt;             /* completion / generate text (NULL with prompt_ids) */
    int32_t *prompt_ids;      /* completion given as token ids; generate's context ids (prefix) */
    int n_prompt_ids;
    char *system;             /* generate: system message */
    bool raw;                 /* generate: no template */
    bool stream, include_usage;
    int max_tokens;           /* 0: until the context is full */
    char **stops;
    int n_stops;
    sl_sampler_params sampling;
    sl_logit_bias *bias;      /* sampling.bias points here */
    bool seed_set;
    bool logprobs;
    int top_logprobs;
    int n;                    /* choices (OpenAI n) */
    bool ignore_eos;
    cJSON *tools;             /* validated tools list for the template; NULL: none */
    srv_tool_choice tool_choice;
    char *tool_name;          /* SRV_TOOLS_NAMED: the function */
    sl_grammar *grammar;      /* structured output (response_format / format), or NULL */
} srv_params;

/* Parse and validate body[0..len) for api.  0, or -1 with *e filled. */
int srv_parse_request(srv_api api, const char *body, size_t len, srv_params *p, srv_error *e);
void srv_params_free(srv_params *p);

/* tools.c: "tools" (validated, duplicated into *out; [] leaves NULL),
 * "tool_choice", and an assistant message's "tool_calls" at `where`
 * (copied, string arguments holding a JSON object parsed).  0 or -1 with *e. */
int srv_parse_tools(const cJSON *v, cJSON **out, srv_error *e);
int srv_parse_tool_choice(const cJSON *v, srv_params *p, srv_error *e);
/* After all fields: tool_choice against tools and response_format. */
int srv_check_tool_choice(const srv_params *p, srv_error *e);
int srv_norm_tool_calls(const cJSON *v, const char *where, cJSON **out, srv_error *e);

/* Parse a JSON object body (any endpoint): 0 and *out (caller deletes), or
 * -1 with a 400 naming the byte where parsing stopped. */
int srv_parse_object(const char *body, size_t len, cJSON **out, srv_error *e);

/* /tokenize {"content": str, "add_special": bool, "with_pieces": bool, "model": str}
 * and /detokenize {"tokens": [ids], "model": str}: the fields, validated. */
typedef struct srv_tok_params {
    char *model;
    char *content;
    size_t content_len;
    bool add_special, with_pieces;
    int32_t *tokens;
    int n_tokens;
} srv_tok_params;
int srv_parse_tokenize(const char *body, size_t len, bool detokenize, srv_tok_params *p, srv_error *e);
void srv_tok_params_free(srv_tok_params *p);

/* /api/show {"model": str} (or the older "name"). */
int srv_parse_show(const char *body, size_t len, char **model, srv_error *e);

#endif
