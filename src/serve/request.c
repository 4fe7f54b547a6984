/*
 * request.c — parsing and validation of the generation endpoints' JSON
 * bodies (srv_request.h).  One table names every field each API accepts
 * and how its value is read; fields inside an Ollama "options" object go
 * through the same table.  Defaults are each API's: OpenAI temperature 1,
 * top_p 1; Ollama temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1
 * over the last 64 tokens (ollama's documented defaults).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/srv_request.h"

int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status == 404 ? "not_found_error" : status == 413 ? "request_too_large" : "invalid_request_error";
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_parse_object(const char *body, size_t len, cJSON **out, srv_error *e) {
    *out = NULL;
    if (!body || len == 0) return srv_fail(e, 400, NULL, "the request body is empty; expected a JSON object");
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!j) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return srv_fail(e, 400, NULL, "the request body is not valid JSON (parse error at byte %zu)", at);
    }
    /* only whitespace may follow the value */
    for (const char *q = end; q && q < body + len; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            cJSON_Delete(j);
            return srv_fail(e, 400, NULL, "the request body has data after the JSON value (byte %zu)",
                            (size_t)(q - body));
        }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return srv_fail(e, 400, NULL, "the request body must be a JSON object");
    }
    *out = j;
    return 0;
}

/* ---- value readers: each names the field when it fails ---- */

static int get_number(const cJSON *v, const char *name, double lo, double hi, double *out, srv_error *e) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return srv_fail(e, 400, name, "'%s' must be a number", name);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return srv_fail(e, 400, name, "'%s' must be between %g and %g, got %g", name, lo, hi, v->valuedouble);
    *out = v->valuedouble;
    return 0;
}

static int get_int(const cJSON *v, const char *name, double lo, double hi, long long *out, srv_error *e) {
    double d = 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return srv_fail(e, 400, name, "'%s' must be an integer", name);
    if (get_number(v, name, lo, hi, &d, e)) return -1;
    *out = (long long)d;
    return 0;
}

static int get_bool(const cJSON *v, const char *name, bool *out, srv_error *e) {
    if (!cJSON_IsBool(v)) return srv_fail(e, 400, name, "'%s' must be true or false", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_string(const cJSON *v, const char *name, char **out, srv_error *e) {
    if (!cJSON_IsString(v)) return srv_fail(e, 400, name, "'%s' must be a string", name);
    char *s = strdup(v->valuestring);
    if (!s) return srv_fail(e, 500, name, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

/* ids: a JSON array of non-negative integers below 2^31. */
static int get_ids(const cJSON *v, const char *name, bool allow_empty, int32_t **out, int *n, srv_error *e) {
    if (!cJSON_IsArray(v)) return srv_fail(e, 400, name, "'%s' must be an array of token ids", name);
    int k = cJSON_GetArraySize(v);
    if (k == 0 && !allow_empty) return srv_fail(e, 400, name, "'%s' must not be empty", name);
    int32_t *ids = malloc(sizeof *ids * (size_t)(k > 0 ? k : 1));
    if (!ids) return srv_fail(e, 500, name, "out of memory");
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 0 ||
            x->valuedouble > 2147483647.0) {
            free(ids);
            return srv_fail(e, 400, name, "'%s[%d]' must be a token id (a non-negative integer)", name, i);
        }
        ids[i++] = (int32_t)x->valuedouble;
    }
    free(*out);
    *out = ids;
    *n = k;
    return 0;
}

static int add_stop(srv_params *p, const cJSON *v, const char *name, srv_error *e) {
    if (!cJSON_IsString(v)) return srv_fail(e, 400, name, "'%s' must be a string or an array of strings", name);
    if (!v->valuestring[0]) return srv_fail(e, 400, name, "'%s' must not contain an empty string", name);
    if (p->n_stops >= SRV_MAX_STOPS) return srv_fail(e, 400, name, "'%s' has more than %d strings", name, SRV_MAX_STOPS);
    char **s = realloc(p->stops, sizeof *s * (size_t)(p->n_stops + 1));
    if (!s) return srv_fail(e, 500, name, "out of memory");
    p->stops = s;
    if (!(s[p->n_stops] = strdup(v->valuestring))) return srv_fail(e, 500, name, "out of memory");
    p->n_stops++;
    return 0;
}

static int get_stops(srv_params *p, const cJSON *v, const char *name, srv_error *e) {
    for (int i = 0; i < p->n_stops; i++) free(p->stops[i]);
    p->n_stops = 0;
    if (!cJSON_IsArray(v)) return add_stop(p, v, name, e);
    const cJSON *x;
    cJSON_ArrayForEach(x, v) if (add_stop(p, x, name, e)) return -1;
    return 0;
}

/* logit_bias {"id": bias}: ids as decimal strings, bias in [-100, 100]. */
static int get_bias(srv_params *p, const cJSON *v, srv_error *e) {
    if (!cJSON_IsObject(v)) return srv_fail(e, 400, "logit_bias", "'logit_bias' must be an object {\"token id\": bias}");
    int k = cJSON_GetArraySize(v), i = 0;
    sl_logit_bias *b = calloc((size_t)(k > 0 ? k : 1), sizeof *b);
    if (!b) return srv_fail(e, 500, "logit_bias", "out of memory");
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        char *end;
        long id = strtol(x->string, &end, 10);
        if (!x->string[0] || *end || id < 0 || id > 2147483647L) {
            free(b);
            return srv_fail(e, 400, "logit_bias", "'logit_bias' key '%.40s' must be a token id", x->string);
        }
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < -100 || x->valuedouble > 100) {
            free(b);
            return srv_fail(e, 400, "logit_bias", "'logit_bias' values must be numbers between -100 and 100");
        }
        b[i].id = (int32_t)id;
        b[i].bias = (float)x->valuedouble;
        i++;
    }
    free(p->bias);
    p->bias = b;
    p->sampling.bias = b;
    p->sampling.n_bias = i;
    return 0;
}

/* ---- messages: [{role, content}] with content a string or text parts ---- */

static int norm_content(const cJSON *c, const char *where, cJSON *msg, srv_error *e) {
    if (cJSON_IsNull(c)) return cJSON_AddStringToObject(msg, "content", "") ? 0 : srv_fail(e, 500, where, "out of memory");
    if (cJSON_IsString(c))
        return cJSON_AddStringToObject(msg, "content", c->valuestring) ? 0 : srv_fail(e, 500, where, "out of memory");
    if (!cJSON_IsArray(c)) return srv_fail(e, 400, where, "'%s' must be a string or an array of content parts", where);
    size_t len = 0;
    const cJSON *part;
    int j = 0;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type))
            return srv_fail(e, 400, where, "'%s[%d]' must be an object with a \"type\"", where, j);
        if (strcmp(type->valuestring, "text") != 0)
            return srv_fail(e, 400, where, "'%s[%d].type' \"%.40s\" is not supported (only \"text\")", where, j,
                            type->valuestring);
        if (!cJSON_IsString(text)) return srv_fail(e, 400, where, "'%s[%d].text' must be a string", where, j);
        len += strlen(text->valuestring);
        j++;
    }
    char *s = malloc(len + 1), *q = s;
    if (!s) return srv_fail(e, 500, where, "out of memory");
    cJSON_ArrayForEach(part, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        size_t l = strlen(t);
        memcpy(q, t, l);
        q += l;
    }
    *q = 0;
    cJSON *str = cJSON_CreateString(s);
    free(s);
    if (!str) return srv_fail(e, 500, where, "out of memory");
    cJSON_AddItemToObject(msg, "content", str);
    return 0;
}

static int norm_message(const cJSON *m, int i, bool ollama, cJSON *out, srv_error *e) {
    char where[64];
    snprintf(where, sizeof where, "messages[%d]", i);
    if (!cJSON_IsObject(m)) return srv_fail(e, 400, where, "'%s' must be an object {\"role\", \"content\"}", where);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role)) return srv_fail(e, 400, where, "'%s.role' must be a string", where);
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    bool ok = false;
    for (size_t r = 0; r < sizeof roles / sizeof *roles; r++) ok |= strcmp(role->valuestring, roles[r]) == 0;
    if (!ok)
        return srv_fail(e, 400, where, "'%s.role' must be system, developer, user, assistant or tool, got \"%.40s\"",
                        where, role->valuestring);
    cJSON *msg = cJSON_CreateObject();
    if (!msg) return srv_fail(e, 500, where, "out of memory");
    cJSON_AddItemToArray(out, msg);
    /* templates know "system"; OpenAI's newer name for it is "developer" */
    cJSON_AddStringToObject(msg, "role", strcmp(role->valuestring, "developer") == 0 ? "system" : role->valuestring);
    bool has_content = false;
    const cJSON *f, *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    bool with_calls = cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0;
    cJSON_ArrayForEach(f, m) {
        char fw[128];
        snprintf(fw, sizeof fw, "%s.%.40s", where, f->string);
        if (strcmp(f->string, "role") == 0) continue;
        if (strcmp(f->string, "content") == 0) {
            /* a tool-calling turn without text has no content, as in transformers */
            if (with_calls && cJSON_IsNull(f)) continue;
            if (norm_content(f, fw, msg, e)) return -1;
            has_content = true;
        } else if (strcmp(f->string, "name") == 0 || strcmp(f->string, "tool_call_id") == 0 ||
                   (ollama && strcmp(f->string, "tool_name") == 0)) {
            if (!cJSON_IsString(f) && !cJSON_IsNull(f)) return srv_fail(e, 400, fw, "'%s' must be a string", fw);
            /* ollama names a tool result's function "tool_name"; templates read "name" */
            const char *key = strcmp(f->string, "tool_name") == 0 ? "name" : f->string;
            if (cJSON_IsString(f) && !cJSON_GetObjectItemCaseSensitive(msg, key))
                cJSON_AddItemToObject(msg, key, cJSON_Duplicate(f, true));
        } else if (strcmp(f->string, "tool_calls") == 0) {
            if (!cJSON_IsArray(f) && !cJSON_IsNull(f)) return srv_fail(e, 400, fw, "'%s' must be an array", fw);
            cJSON *k = NULL;
            if (cJSON_IsArray(f) && srv_norm_tool_calls(f, fw, &k, e)) return -1;
            if (k) cJSON_AddItemToObject(msg, f->string, k);
        } else if (ollama && strcmp(f->string, "images") == 0) {
            if (!cJSON_IsNull(f) && !(cJSON_IsArray(f) && cJSON_GetArraySize(f) == 0))
                return srv_fail(e, 400, fw, "'%s': images are not supported (text models only)", fw);
        } else if (ollama && strcmp(f->string, "thinking") == 0) {
            if (!cJSON_IsString(f) && !cJSON_IsNull(f)) return srv_fail(e, 400, fw, "'%s' must be a string", fw);
        } else if (!ollama && strcmp(f->string, "refusal") == 0) {
            continue;
        } else {
            return srv_fail(e, 400, fw, "unknown field '%s'", fw);
        }
    }
    if (!has_content && !with_calls) return srv_fail(e, 400, where, "'%s.content' is missing", where);
    return 0;
}

static int get_messages(srv_params *p, const cJSON *v, srv_error *e) {
    if (!cJSON_IsArray(v)) return srv_fail(e, 400, "messages", "'messages' must be an array of messages");
    if (cJSON_GetArraySize(v) == 0) return srv_fail(e, 400, "messages", "'messages' must not be empty");
    cJSON *out = cJSON_CreateArray();
    if (!out) return srv_fail(e, 500, "messages", "out of memory");
    int i = 0;
    const cJSON *m;
    bool ollama = p->api == SRV_OLLAMA_CHAT;
    cJSON_ArrayForEach(m, v) {
        if (norm_message(m, i++, ollama, out, e)) {
            cJSON_Delete(out);
            return -1;
        }
    }
    cJSON_Delete(p->messages);
    p->messages = out;
    return 0;
}

/* OpenAI completions prompt: a string, [string], [ids] or [[ids]]. */
static int get_prompt(srv_params *p, const cJSON *v, srv_error *e) {
    if (cJSON_IsString(v)) return get_string(v, "prompt", &p->prompt, e);
    if (!cJSON_IsArray(v)) return srv_fail(e, 400, "prompt", "'prompt' must be a string, or an array of token ids");
    const cJSON *first = v->child;
    if (first && (cJSON_IsString(first) || cJSON_IsArray(first))) {
        if (cJSON_GetArraySize(v) != 1)
            return srv_fail(e, 400, "prompt", "'prompt' with several prompts is not supported; send one per request");
        return cJSON_IsString(first) ? get_string(first, "prompt", &p->prompt, e)
                                     : get_ids(first, "prompt", false, &p->prompt_ids, &p->n_prompt_ids, e);
    }
    return get_ids(v, "prompt", false, &p->prompt_ids, &p->n_prompt_ids, e);
}

/* ---- the field table ---- */

enum { A_CHAT = 1, A_CMPL = 2, A_OCHAT = 4, A_OGEN = 8, A_OPT = 16 };
#define A_OAI (A_CHAT | A_CMPL)
#define A_OLL (A_OCHAT | A_OGEN)

typedef enum fkind {
    F_MODEL, F_MESSAGES, F_PROMPT, F_OPROMPT, F_STREAM, F_STREAM_OPTIONS, F_MAX_TOKENS, F_NUM_PREDICT, F_STOP,
    F_TEMPERATURE, F_TOP_P, F_TOP_K, F_MIN_P, F_SEED, F_PRESENCE, F_FREQUENCY, F_REPEAT_PENALTY, F_REPEAT_LAST_N,
    F_LOGPROBS, F_TOP_LOGPROBS, F_LEGACY_LOGPROBS, F_N, F_LOGIT_BIAS, F_IGNORE_EOS, F_TOOLS, F_TOOL_CHOICE,
    F_RESPONSE_FORMAT, F_FORMAT, F_OPTIONS, F_SYSTEM, F_RAW, F_CONTEXT, F_EMPTY_OK, F_FALSE_OK, F_ONE_OK, F_ZERO_OK,
    F_IGNORED
} fkind;

typedef struct field {
    const char *name;
    fkind kind;
    unsigned apis;
} field;

/* F_EMPTY_OK: must be absent, null, "" or [] (else "not supported yet");
 * F_FALSE_OK: null or false; F_ONE_OK: null or 1; F_ZERO_OK: null or 0;
 * F_IGNORED: any value, no effect on generation (documented in part8). */
static const field k_fields[] = {
    {"model", F_MODEL, A_OAI | A_OLL},
    {"messages", F_MESSAGES, A_CHAT | A_OCHAT},
    {"prompt", F_PROMPT, A_CMPL},
    {"prompt", F_OPROMPT, A_OGEN},
    {"stream", F_STREAM, A_OAI | A_OLL},
    {"stream_options", F_STREAM_OPTIONS, A_OAI},
    {"max_tokens", F_MAX_TOKENS, A_OAI},
    {"max_completion_tokens", F_MAX_TOKENS, A_CHAT},
    {"num_predict", F_NUM_PREDICT, A_OPT},
    {"stop", F_STOP, A_OAI | A_OPT},
    {"temperature", F_TEMPERATURE, A_OAI | A_OPT},
    {"top_p", F_TOP_P, A_OAI | A_OPT},
    {"top_k", F_TOP_K, A_OAI | A_OPT},
    {"min_p", F_MIN_P, A_OAI | A_OPT},
    {"seed", F_SEED, A_OAI | A_OPT},
    {"presence_penalty", F_PRESENCE, A_OAI | A_OPT},
    {"frequency_penalty", F_FREQUENCY, A_OAI | A_OPT},
    {"repeat_penalty", F_REPEAT_PENALTY, A_OAI | A_OPT},
    {"repeat_last_n", F_REPEAT_LAST_N, A_OAI | A_OPT},
    {"logprobs", F_LOGPROBS, A_CHAT},
    {"top_logprobs", F_TOP_LOGPROBS, A_CHAT},
    {"logprobs", F_LEGACY_LOGPROBS, A_CMPL},
    {"n", F_N, A_OAI},
    {"logit_bias", F_LOGIT_BIAS, A_OAI},
    {"ignore_eos", F_IGNORE_EOS, A_OAI},
    {"tools", F_TOOLS, A_CHAT | A_OCHAT},
    {"tool_choice", F_TOOL_CHOICE, A_CHAT},
    {"response_format", F_RESPONSE_FORMAT, A_OAI},
    {"format", F_FORMAT, A_OLL},
    {"options", F_OPTIONS, A_OLL},
    {"system", F_SYSTEM, A_OGEN},
    {"raw", F_RAW, A_OGEN},
    {"context", F_CONTEXT, A_OGEN},
    {"suffix", F_EMPTY_OK, A_CMPL | A_OGEN},
    {"template", F_EMPTY_OK, A_OGEN},
    {"images", F_EMPTY_OK, A_OGEN},
    {"functions", F_EMPTY_OK, A_CHAT},
    {"function_call", F_EMPTY_OK, A_CHAT},
    {"echo", F_FALSE_OK, A_CMPL},
    {"think", F_FALSE_OK, A_OLL},
    {"best_of", F_ONE_OK, A_CMPL},
    {"mirostat", F_ZERO_OK, A_OPT},
    {"user", F_IGNORED, A_OAI},
    {"store", F_IGNORED, A_CHAT},
    {"metadata", F_IGNORED, A_CHAT},
    {"service_tier", F_IGNORED, A_CHAT},
    {"parallel_tool_calls", F_IGNORED, A_CHAT},
    {"keep_alive", F_IGNORED, A_OLL},
    {"num_ctx", F_IGNORED, A_OPT},
    {"num_keep", F_IGNORED, A_OPT},
    {"num_batch", F_IGNORED, A_OPT},
    {"num_gpu", F_IGNORED, A_OPT},
    {"main_gpu", F_IGNORED, A_OPT},
    {"num_thread", F_IGNORED, A_OPT},
    {"use_mmap", F_IGNORED, A_OPT},
    {"use_mlock", F_IGNORED, A_OPT},
    {"numa", F_IGNORED, A_OPT},
    {"low_vram", F_IGNORED, A_OPT},
    {"vocab_only", F_IGNORED, A_OPT},
    {"penalize_newline", F_IGNORED, A_OPT},
    {"typical_p", F_IGNORED, A_OPT},
    {"tfs_z", F_IGNORED, A_OPT},
    {"mirostat_tau", F_IGNORED, A_OPT},
    {"mirostat_eta", F_IGNORED, A_OPT},
};

static bool is_empty_value(const cJSON *v) {
    return cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]) ||
           (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0) || (cJSON_IsObject(v) && cJSON_GetArraySize(v) == 0);
}

static int parse_fields(srv_params *p, const cJSON *obj, unsigned api_bit, const char *prefix, srv_error *e);

/* Structured output (grammar.h): OpenAI's response_format {"type": "text" |
 * "json_object" | "json_schema", "json_schema": {"name", "schema", "strict",
 * "description"}} or Ollama's format ("json" or a JSON Schema object). */
static int set_grammar(srv_params *p, const cJSON *schema, const char *name, srv_error *e) {
    sl_error err;
    sl_error_clear(&err);
    sl_grammar *g = NULL;
    int rc = schema ? sl_grammar_from_schema(schema, &g, &err) : sl_grammar_json_object(&g, &err);
    if (rc) return srv_fail(e, rc == SL_ENOMEM ? 500 : 400, name, "'%s': %s", name, err.msg);
    sl_grammar_free(p->grammar);
    p->grammar = g;
    return 0;
}

static int get_json_schema(srv_params *p, const cJSON *js, srv_error *e) {
    const char *name = "response_format.json_schema";
    if (!cJSON_IsObject(js)) return srv_fail(e, 400, name, "'%s' must be an object {\"name\", \"schema\"}", name);
    const cJSON *x, *schema = NULL;
    cJSON_ArrayForEach(x, js) {
        if (strcmp(x->string, "schema") == 0) schema = x;
        else if (strcmp(x->string, "strict") == 0) {
            if (!cJSON_IsBool(x) && !cJSON_IsNull(x)) return srv_fail(e, 400, name, "'%s.strict' must be true or false", name);
        } else if (strcmp(x->string, "name") == 0 || strcmp(x->string, "description") == 0) {
            if (!cJSON_IsString(x)) return srv_fail(e, 400, name, "'%s.%s' must be a string", name, x->string);
        } else {
            return srv_fail(e, 400, name, "unknown field '%s.%.40s'", name, x->string);
        }
    }
    return set_grammar(p, schema, "response_format.json_schema.schema", e);
}

static int get_format(srv_params *p, const cJSON *v, const char *name, bool openai, srv_error *e) {
    if (!openai) {
        if (is_empty_value(v)) return 0;
        if (cJSON_IsString(v) && strcmp(v->valuestring, "json") == 0) return set_grammar(p, NULL, name, e);
        if (cJSON_IsObject(v)) return set_grammar(p, v, name, e);
        return srv_fail(e, 400, name, "'%s' must be \"json\" or a JSON Schema object", name);
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!cJSON_IsObject(v) || !cJSON_IsString(t))
        return srv_fail(e, 400, name, "'%s' must be an object with a \"type\"", name);
    const cJSON *x;
    cJSON_ArrayForEach(x, v) if (strcmp(x->string, "type") != 0 &&
                                 !(strcmp(x->string, "json_schema") == 0 && strcmp(t->valuestring, "json_schema") == 0))
        return srv_fail(e, 400, name, "unknown field '%s.%.40s'", name, x->string);
    if (strcmp(t->valuestring, "text") == 0) return 0;
    if (strcmp(t->valuestring, "json_object") == 0) return set_grammar(p, NULL, name, e);
    if (strcmp(t->valuestring, "json_schema") == 0) {
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(v, "json_schema");
        if (!js) return srv_fail(e, 400, name, "'%s.json_schema' is missing", name);
        return get_json_schema(p, js, e);
    }
    return srv_fail(e, 400, name, "'%s.type' must be \"text\", \"json_object\" or \"json_schema\", got \"%.40s\"",
                    name, t->valuestring);
}

static int parse_field(srv_params *p, const field *f, const cJSON *v, const char *name, srv_error *e) {
    double d = 0;
    long long k = 0;
    bool b = false;
    sl_sampler_params *s = &p->sampling;
    if (cJSON_IsNull(v) && f->kind != F_MESSAGES && f->kind != F_PROMPT && f->kind != F_OPROMPT) return 0;
    switch (f->kind) {
    case F_MODEL: return get_string(v, name, &p->model, e);
    case F_MESSAGES: return get_messages(p, v, e);
    case F_PROMPT: return get_prompt(p, v, e);
    case F_OPROMPT: return get_string(v, name, &p->prompt, e);
    case F_SYSTEM: return get_string(v, name, &p->system, e);
    case F_STREAM: return get_bool(v, name, &p->stream, e);
    case F_RAW: return get_bool(v, name, &p->raw, e);
    case F_IGNORE_EOS: return get_bool(v, name, &p->ignore_eos, e);
    case F_STREAM_OPTIONS: {
        if (!cJSON_IsObject(v)) return srv_fail(e, 400, name, "'%s' must be an object", name);
        const cJSON *x;
        cJSON_ArrayForEach(x, v) {
            if (strcmp(x->string, "include_usage") != 0)
                return srv_fail(e, 400, "stream_options", "unknown field 'stream_options.%.40s'", x->string);
            if (!cJSON_IsNull(x) && get_bool(x, "stream_options.include_usage", &p->include_usage, e)) return -1;
        }
        return 0;
    }
    case F_MAX_TOKENS:
        if (get_int(v, name, 1, SRV_MAX_TOKENS, &k, e)) return -1;
        p->max_tokens = (int)k;
        return 0;
    case F_NUM_PREDICT: /* -1: no limit, -2: fill the context (the same here) */
        if (get_int(v, name, -2, SRV_MAX_TOKENS, &k, e)) return -1;
        if (k == 0) return srv_fail(e, 400, name, "'%s' must be -1, -2 or a positive count", name);
        p->max_tokens = k < 0 ? 0 : (int)k;
        return 0;
    case F_STOP: return get_stops(p, v, name, e);
    case F_TEMPERATURE:
        if (get_number(v, name, 0, 100, &d, e)) return -1;
        s->temperature = (float)d;
        return 0;
    case F_TOP_P:
        if (get_number(v, name, 0, 1, &d, e)) return -1;
        s->top_p = d > 0 ? (float)d : 1.0f;
        return 0;
    case F_TOP_K:
        if (get_int(v, name, -1, 1 << 30, &k, e)) return -1;
        s->top_k = k < 0 ? 0 : (int)k;
        return 0;
    case F_MIN_P:
        if (get_number(v, name, 0, 1, &d, e)) return -1;
        s->min_p = (float)d;
        return 0;
    case F_SEED:
        if (get_int(v, name, -9.2e18, 9.2e18, &k, e)) return -1;
        s->seed = (uint64_t)k;
        p->seed_set = true;
        return 0;
    case F_PRESENCE:
        if (get_number(v, name, -2, 2, &d, e)) return -1;
        s->presence_penalty = (float)d;
        return 0;
    case F_FREQUENCY:
        if (get_number(v, name, -2, 2, &d, e)) return -1;
        s->frequency_penalty = (float)d;
        return 0;
    case F_REPEAT_PENALTY:
        if (get_number(v, name, 0, 100, &d, e)) return -1;
        s->repeat_penalty = d > 0 ? (float)d : 1.0f;
        return 0;
    case F_REPEAT_LAST_N:
        if (get_int(v, name, -1, 1 << 24, &k, e)) return -1;
        s->penalty_window = (int)k;
        return 0;
    case F_LOGPROBS: return get_bool(v, name, &p->logprobs, e);
    case F_TOP_LOGPROBS:
        if (get_int(v, name, 0, 20, &k, e)) return -1;
        p->top_logprobs = (int)k;
        return 0;
    case F_LEGACY_LOGPROBS:
        if (get_int(v, name, 0, 5, &k, e)) return -1;
        p->logprobs = true;
        p->top_logprobs = (int)k;
        return 0;
    case F_N:
        if (get_int(v, name, 1, SRV_MAX_N, &k, e)) return -1;
        p->n = (int)k;
        return 0;
    case F_LOGIT_BIAS: return get_bias(p, v, e);
    case F_TOOLS: return srv_parse_tools(v, &p->tools, e);
    case F_TOOL_CHOICE: return srv_parse_tool_choice(v, p, e);
    case F_RESPONSE_FORMAT: return get_format(p, v, name, true, e);
    case F_FORMAT: return get_format(p, v, name, false, e);
    case F_OPTIONS:
        if (!cJSON_IsObject(v)) return srv_fail(e, 400, name, "'%s' must be an object", name);
        return parse_fields(p, v, A_OPT, "options.", e);
    case F_CONTEXT: return get_ids(v, name, true, &p->prompt_ids, &p->n_prompt_ids, e);
    case F_EMPTY_OK:
        return is_empty_value(v) ? 0 : srv_fail(e, 400, name, "'%s' is not supported yet", name);
    case F_FALSE_OK:
        if (get_bool(v, name, &b, e)) return -1;
        return b ? srv_fail(e, 400, name, "'%s': true is not supported yet", name) : 0;
    case F_ONE_OK:
        if (get_int(v, name, 1, 1, &k, e)) return srv_fail(e, 400, name, "'%s' other than 1 is not supported", name);
        return 0;
    case F_ZERO_OK:
        if (get_int(v, name, 0, 0, &k, e)) return srv_fail(e, 400, name, "'%s' other than 0 is not supported", name);
        return 0;
    case F_IGNORED: return 0;
    }
    return 0;
}

static int parse_fields(srv_params *p, const cJSON *obj, unsigned api_bit, const char *prefix, srv_error *e) {
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        const field *f = NULL;
        for (size_t i = 0; i < sizeof k_fields / sizeof *k_fields && !f; i++)
            if ((k_fields[i].apis & api_bit) && strcmp(k_fields[i].name, v->string) == 0) f = &k_fields[i];
        char name[96];
        snprintf(name, sizeof name, "%s%.60s", prefix, v->string);
        if (!f) return srv_fail(e, 400, name, "unknown field '%s'", name);
        if (parse_field(p, f, v, name, e)) return -1;
    }
    return 0;
}

static void set_defaults(srv_params *p, srv_api api) {
    memset(p, 0, sizeof *p);
    p->api = api;
    p->n = 1;
    sl_sampler_defaults(&p->sampling);
    p->sampling.penalty_window = 64;
    if (api == SRV_OLLAMA_CHAT || api == SRV_OLLAMA_GENERATE) {
        p->stream = true;   /* ollama streams unless told not to */
        p->sampling.temperature = 0.8f;
        p->sampling.top_k = 40;
        p->sampling.top_p = 0.9f;
        p->sampling.repeat_penalty = 1.1f;
    } else {
        p->sampling.temperature = 1.0f;
        p->sampling.top_p = 1.0f;
    }
}

int srv_parse_request(srv_api api, const char *body, size_t len, srv_params *p, srv_error *e) {
    static const unsigned bits[] = {A_CHAT, A_CMPL, A_OCHAT, A_OGEN};
    set_defaults(p, api);
    cJSON *j;
    if (srv_parse_object(body, len, &j, e)) return -1;
    int rc = parse_fields(p, j, bits[api], "", e);
    cJSON_Delete(j);
    if (rc == 0 && (api == SRV_OAI_CHAT || api == SRV_OLLAMA_CHAT) && !p->messages)
        rc = srv_fail(e, 400, "messages", "'messages' is missing");
    if (rc == 0 && api == SRV_OAI_COMPLETION && !p->prompt && !p->prompt_ids)
        rc = srv_fail(e, 400, "prompt", "'prompt' is missing");
    if (rc == 0 && api == SRV_OLLAMA_GENERATE && !p->prompt && !p->raw && !p->prompt_ids)
        rc = srv_fail(e, 400, "prompt", "'prompt' is missing");
    if (rc == 0 && p->top_logprobs > 0 && !p->logprobs)
        rc = srv_fail(e, 400, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    if (rc == 0) rc = srv_check_tool_choice(p, e);
    if (rc == 0 && p->include_usage && !p->stream)
        rc = srv_fail(e, 400, "stream_options", "'stream_options' is only allowed with 'stream': true");
    if (rc) srv_params_free(p);
    return rc;
}

void srv_params_free(srv_params *p) {
    free(p->model);
    cJSON_Delete(p->messages);
    free(p->prompt);
    free(p->prompt_ids);
    free(p->system);
    for (int i = 0; i < p->n_stops; i++) free(p->stops[i]);
    free(p->stops);
    free(p->bias);
    cJSON_Delete(p->tools);
    free(p->tool_name);
    sl_grammar_free(p->grammar);
    memset(p, 0, sizeof *p);
}

/* ---- /tokenize, /detokenize, /api/show ---- */

int srv_parse_tokenize(const char *body, size_t len, bool detokenize, srv_tok_params *p, srv_error *e) {
    memset(p, 0, sizeof *p);
    p->add_special = true;
    cJSON *j;
    if (srv_parse_object(body, len, &j, e)) return -1;
    int rc = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, j) {
        const char *k = v->string;
        if (strcmp(k, "model") == 0) rc = cJSON_IsNull(v) ? 0 : get_string(v, k, &p->model, e);
        else if (!detokenize && strcmp(k, "content") == 0) {
            rc = get_string(v, k, &p->content, e);
            if (!rc) p->content_len = strlen(p->content);
        } else if (!detokenize && strcmp(k, "add_special") == 0) rc = get_bool(v, k, &p->add_special, e);
        else if (!detokenize && strcmp(k, "with_pieces") == 0) rc = get_bool(v, k, &p->with_pieces, e);
        else if (detokenize && strcmp(k, "tokens") == 0) rc = get_ids(v, k, true, &p->tokens, &p->n_tokens, e);
        else rc = srv_fail(e, 400, k, "unknown field '%.60s'", k);
        if (rc) break;
    }
    cJSON_Delete(j);
    if (!rc && !detokenize && !p->content) rc = srv_fail(e, 400, "content", "'content' is missing");
    if (!rc && detokenize && !p->tokens) rc = srv_fail(e, 400, "tokens", "'tokens' is missing");
    if (rc) srv_tok_params_free(p);
    return rc;
}

void srv_tok_params_free(srv_tok_params *p) {
    free(p->model);
    free(p->content);
    free(p->tokens);
    memset(p, 0, sizeof *p);
}

int srv_parse_show(const char *body, size_t len, char **model, srv_error *e) {
    *model = NULL;
    cJSON *j;
    if (srv_parse_object(body, len, &j, e)) return -1;
    int rc = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, j) {
        if (strcmp(v->string, "model") == 0 || strcmp(v->string, "name") == 0) rc = get_string(v, v->string, model, e);
        else if (strcmp(v->string, "verbose") != 0) rc = srv_fail(e, 400, v->string, "unknown field '%.60s'", v->string);
        if (rc) break;
    }
    cJSON_Delete(j);
    if (!rc && !*model) rc = srv_fail(e, 400, "model", "'model' is missing");
    if (rc) {
        free(*model);
        *model = NULL;
    }
    return rc;
}
