/*
 * format.c — the bodies the server sends: OpenAI chat.completion(.chunk)
 * and text_completion objects (server-sent events ending in "data: [DONE]"
 * when streamed), Ollama chat/generate objects (one JSON object per line
 * when streamed), error objects and usage.  Field names and shapes follow
 * the OpenAI API reference and Ollama's docs/api.md.
 *
 * Invariants: every function is called with r->mu held; a streamed piece
 * is appended to r->out whole (a client never sees half an event); token
 * text is the stop-safe, UTF-8-safe text generate.h releases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "silica/version.h"
#include "serve/srv_impl.h"

#define FINGERPRINT "silica-" SILICA_VERSION

static bool is_ollama(const srv_req *r) { return r->p.api == SRV_OLLAMA_CHAT || r->p.api == SRV_OLLAMA_GENERATE; }

void srv_rfc3339(char *buf, size_t n) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t t = tv.tv_sec;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%06ldZ", base, (long)tv.tv_usec);
}

char *srv_fmt_error(srv_api api, const srv_error *e) {
    cJSON *j = cJSON_CreateObject();
    if (api == SRV_OLLAMA_CHAT || api == SRV_OLLAMA_GENERATE) {
        cJSON_AddStringToObject(j, "error", e->msg);
    } else {
        cJSON *o = cJSON_AddObjectToObject(j, "error");
        cJSON_AddStringToObject(o, "message", e->msg);
        cJSON_AddStringToObject(o, "type", e->type ? e->type : "server_error");
        if (e->param[0]) cJSON_AddStringToObject(o, "param", e->param);
        else cJSON_AddNullToObject(o, "param");
        cJSON_AddNullToObject(o, "code");
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* Append j as one event: "data: J\n\n" (SSE) or "J\n" (NDJSON); frees j. */
static int emit(srv_req *r, cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return -1;
    int rc = 0;
    if (is_ollama(r)) {
        rc |= srv_buf_str(&r->out, s);
        rc |= srv_buf_str(&r->out, "\n");
    } else {
        rc |= srv_buf_str(&r->out, "data: ");
        rc |= srv_buf_str(&r->out, s);
        rc |= srv_buf_str(&r->out, "\n\n");
    }
    free(s);
    return rc;
}

static cJSON *oai_base(const srv_req *r, const char *object) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", r->id);
    cJSON_AddStringToObject(j, "object", object);
    cJSON_AddNumberToObject(j, "created", (double)r->created);
    cJSON_AddStringToObject(j, "model", r->model->id);
    cJSON_AddStringToObject(j, "system_fingerprint", FINGERPRINT);
    return j;
}

static cJSON *ollama_base(const srv_req *r) {
    cJSON *j = cJSON_CreateObject();
    char ts[64];
    srv_rfc3339(ts, sizeof ts);
    cJSON_AddStringToObject(j, "model", r->model->id);
    cJSON_AddStringToObject(j, "created_at", ts);
    return j;
}

/* The text of one token (invalid UTF-8 pieces as U+FFFD, as the decoder
 * writes them) and its bytes. */
static cJSON *token_text(const sl_tokenizer *tok, int32_t id, cJSON **bytes) {
    char *s = NULL;
    size_t len = 0;
    uint32_t u = (uint32_t)id;
    if (!tok || sl_tok_decode(tok, &u, 1, 0, &s, &len, NULL)) {
        char buf[32];
        snprintf(buf, sizeof buf, "<%d>", (int)id);
        s = strdup(buf);
        len = s ? strlen(s) : 0;
    }
    if (bytes) {
        *bytes = cJSON_CreateArray();
        for (size_t i = 0; i < len; i++) cJSON_AddItemToArray(*bytes, cJSON_CreateNumber((unsigned char)s[i]));
    }
    cJSON *j = cJSON_CreateString(s ? s : "");
    free(s);
    return j;
}

/* chat logprobs entry: {token, logprob, bytes, top_logprobs: [...], id} */
static cJSON *chat_logprob(const sl_gen_token *t, const sl_tokenizer *tok) {
    cJSON *e = cJSON_CreateObject(), *bytes;
    cJSON_AddItemToObject(e, "token", token_text(tok, t->id, &bytes));
    cJSON_AddNumberToObject(e, "logprob", t->logprob);
    cJSON_AddItemToObject(e, "bytes", bytes);
    cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
    for (int i = 0; i < t->n_top; i++) {
        cJSON *a = cJSON_CreateObject(), *ab;
        cJSON_AddItemToObject(a, "token", token_text(tok, t->top[i].id, &ab));
        cJSON_AddNumberToObject(a, "logprob", t->top[i].logprob);
        cJSON_AddItemToObject(a, "bytes", ab);
        cJSON_AddNumberToObject(a, "id", t->top[i].id);
        cJSON_AddItemToArray(top, a);
    }
    cJSON_AddNumberToObject(e, "id", t->id);
    return e;
}

/* legacy completions logprobs: parallel arrays */
static cJSON *legacy_logprobs_new(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddArrayToObject(o, "tokens");
    cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON_AddArrayToObject(o, "top_logprobs");
    cJSON_AddArrayToObject(o, "text_offset");
    return o;
}

static void legacy_logprobs_add(cJSON *o, const sl_gen_token *t, const sl_tokenizer *tok, size_t offset) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "tokens"), token_text(tok, t->id, NULL));
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "token_logprobs"), cJSON_CreateNumber(t->logprob));
    cJSON *top = cJSON_CreateObject();
    for (int i = 0; i < t->n_top; i++) {
        cJSON *k = token_text(tok, t->top[i].id, NULL);
        if (!cJSON_GetObjectItemCaseSensitive(top, k->valuestring))
            cJSON_AddNumberToObject(top, k->valuestring, t->top[i].logprob);
        cJSON_Delete(k);
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "top_logprobs"), top);
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "text_offset"), cJSON_CreateNumber((double)offset));
}

/* A JSON string of s[0..len); NUL bytes (a byte-fallback <0x00> token) are
 * left out, as cJSON strings cannot hold them — streamed and whole answers
 * alike. */
static cJSON *text_item(const char *s, size_t len) {
    char *z = malloc(len + 1);
    if (!z) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i]) z[k++] = s[i];
    z[k] = 0;
    cJSON *j = cJSON_CreateString(z);
    free(z);
    return j;
}

int srv_fmt_token(srv_req *r, srv_choice *c, const sl_gen_token *t, const sl_tokenizer *tok) {
    bool first = !c->started;
    c->started = true;
    const srv_params *p = &r->p;
    const char *txt = t->text;
    size_t tl = t->len;
    /* with tool calls, text that may begin a call is held back until the answer ends */
    if (p->stream && r->tool_format) tl = srv_tools_stream_piece(c, r->tool_format, r->tool_prefix, t->text, t->len, &txt);
    if (!p->stream) {
        if (p->logprobs) {
            if (p->api == SRV_OAI_CHAT) {
                if (!c->logprobs) c->logprobs = cJSON_CreateArray();
                cJSON_AddItemToArray(c->logprobs, chat_logprob(t, tok));
            } else {
                if (!c->logprobs) c->logprobs = legacy_logprobs_new();
                legacy_logprobs_add(c->logprobs, t, tok, c->text_offset);
            }
        }
        c->text_offset += t->len;
        return 0;
    }
    if (tl == 0 && !p->logprobs && !(first && p->api == SRV_OAI_CHAT)) return 0;
    cJSON *j;
    if (p->api == SRV_OLLAMA_CHAT || p->api == SRV_OLLAMA_GENERATE) {
        j = ollama_base(r);
        if (p->api == SRV_OLLAMA_CHAT) {
            cJSON *msg = cJSON_AddObjectToObject(j, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddItemToObject(msg, "content", text_item(txt, tl));
        } else {
            cJSON_AddItemToObject(j, "response", text_item(txt, tl));
        }
        cJSON_AddFalseToObject(j, "done");
        return emit(r, j);
    }
    bool chat = p->api == SRV_OAI_CHAT;
    j = oai_base(r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(j, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    if (chat) {
        cJSON_AddNumberToObject(ch, "index", c->index);
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (first) cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddItemToObject(delta, "content", text_item(txt, tl));
        if (p->logprobs) {
            cJSON *lp = cJSON_AddObjectToObject(ch, "logprobs");
            cJSON *content = cJSON_AddArrayToObject(lp, "content");
            cJSON_AddItemToArray(content, chat_logprob(t, tok));
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    } else {
        cJSON_AddItemToObject(ch, "text", text_item(txt, tl));
        cJSON_AddNumberToObject(ch, "index", c->index);
        if (p->logprobs) {
            cJSON *lp = legacy_logprobs_new();
            legacy_logprobs_add(lp, t, tok, c->text_offset);
            cJSON_AddItemToObject(ch, "logprobs", lp);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    }
    c->text_offset += t->len;
    cJSON_AddNullToObject(ch, "finish_reason");
    if (p->include_usage) cJSON_AddNullToObject(j, "usage");
    return emit(r, j);
}

static const char *finish_reason(const char *stop) {
    return stop && strcmp(stop, "length") == 0 ? "length" : "stop";
}

/* A streamed answer with tool calls ends: the calls, or the text held back
 * (text[c->sent..len)), as one more chunk. */
static int stream_tools_tail(srv_req *r, srv_choice *c, const char *text, size_t len) {
    bool calls = c->calls.n_calls > 0;
    if (!calls && len <= c->sent) return 0;
    cJSON *j, *msg;
    if (is_ollama(r)) {
        j = ollama_base(r);
        msg = cJSON_AddObjectToObject(j, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", calls ? cJSON_CreateString("") : text_item(text + c->sent, len - c->sent));
        if (calls) cJSON_AddItemToObject(msg, "tool_calls", srv_fmt_tool_calls(r, c, true, false));
        cJSON_AddFalseToObject(j, "done");
        return emit(r, j);
    }
    j = oai_base(r, "chat.completion.chunk");
    cJSON *choices = cJSON_AddArrayToObject(j, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", c->index);
    msg = cJSON_AddObjectToObject(ch, "delta");
    if (calls) cJSON_AddItemToObject(msg, "tool_calls", srv_fmt_tool_calls(r, c, false, true));
    else cJSON_AddItemToObject(msg, "content", text_item(text + c->sent, len - c->sent));
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddNullToObject(ch, "finish_reason");
    if (r->p.include_usage) cJSON_AddNullToObject(j, "usage");
    return emit(r, j);
}

int srv_fmt_choice_end(srv_req *r, srv_choice *c, const sl_gen_stats *st, const char *text, size_t len,
                       const int32_t *ids, int n_ids) {
    c->finish = finish_reason(st->stop_reason);
    if (r->tool_format) {
        /* a forced call's opening is in the prompt, not in the generated text */
        srv_buf all = {0};
        if (r->tool_prefix && r->tool_prefix[0]) {
            if (srv_buf_str(&all, r->tool_prefix) || srv_buf_add(&all, text ? text : "", text ? len : 0)) {
                free(all.p);
                return -1;
            }
            text = all.p;
            len = all.len;
        }
        int rc = sl_tool_calls_parse(r->tool_format, text ? text : "", text ? len : 0, &c->calls, NULL);
        free(all.p);
        if (rc) return -1;
        if (c->calls.n_calls > 0) c->finish = "tool_calls";
        text = c->calls.content;   /* the text outside the calls (all of it when there are none) */
        len = c->calls.content_len;
        if (r->p.stream && stream_tools_tail(r, c, text, len)) return -1;
    }
    c->generated = st->generated;
    const srv_params *p = &r->p;
    if (p->api == SRV_OLLAMA_GENERATE) {
        c->context = cJSON_CreateArray();
        for (int i = 0; i < r->n_prompt; i++) cJSON_AddItemToArray(c->context, cJSON_CreateNumber(r->prompt[i]));
        for (int i = 0; i < n_ids; i++) cJSON_AddItemToArray(c->context, cJSON_CreateNumber(ids[i]));
    }
    if (!p->stream) {
        c->text.len = 0;
        return text && len ? srv_buf_add(&c->text, text, len) : 0;
    }
    if (is_ollama(r)) return 0;   /* the final line carries it */
    bool chat = p->api == SRV_OAI_CHAT;
    cJSON *j = oai_base(r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(j, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    if (chat) {
        cJSON_AddNumberToObject(ch, "index", c->index);
        cJSON_AddObjectToObject(ch, "delta");
    } else {
        cJSON_AddStringToObject(ch, "text", "");
        cJSON_AddNumberToObject(ch, "index", c->index);
    }
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", c->finish);
    if (p->include_usage) cJSON_AddNullToObject(j, "usage");
    return emit(r, j);
}

static cJSON *usage(const srv_req *r) {
    int gen = 0;
    for (int i = 0; i < r->p.n; i++) gen += r->choices[i].generated;
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", gen);
    cJSON_AddNumberToObject(u, "total_tokens", r->n_prompt + gen);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", r->cached);
    return u;
}

static cJSON *ollama_final(const srv_req *r) {
    const srv_choice *c = &r->choices[0];
    cJSON *j = ollama_base(r);
    bool stream = r->p.stream;
    if (r->p.api == SRV_OLLAMA_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(j, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", stream ? cJSON_CreateString("") : text_item(c->text.p, c->text.len));
        if (!stream && c->calls.n_calls > 0) cJSON_AddItemToObject(msg, "tool_calls", srv_fmt_tool_calls(r, c, true, false));
    } else {
        cJSON_AddItemToObject(j, "response", stream ? cJSON_CreateString("") : text_item(c->text.p, c->text.len));
    }
    cJSON_AddTrueToObject(j, "done");
    /* ollama ends a tool-calling answer with "stop" */
    cJSON_AddStringToObject(j, "done_reason", c->finish && strcmp(c->finish, "length") == 0 ? "length" : "stop");
    if (c->context) cJSON_AddItemReferenceToObject(j, "context", c->context);
    double now = srv_now(), first = r->t_first ? r->t_first : now;
    cJSON_AddNumberToObject(j, "total_duration", (double)(long long)((now - r->t0) * 1e9));
    cJSON_AddNumberToObject(j, "load_duration", 0);
    cJSON_AddNumberToObject(j, "prompt_eval_count", r->n_prompt);
    cJSON_AddNumberToObject(j, "prompt_eval_duration", (double)(long long)(r->t_prompt_s * 1e9));
    cJSON_AddNumberToObject(j, "eval_count", c->generated);
    cJSON_AddNumberToObject(j, "eval_duration", (double)(long long)((now - first) * 1e9));
    return j;
}

int srv_fmt_done(srv_req *r, const sl_gen_stats *st0) {
    (void)st0;
    const srv_params *p = &r->p;
    if (is_ollama(r)) {
        cJSON *j = ollama_final(r);
        if (p->stream) return emit(r, j);
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        r->out.len = 0;
        int rc = s ? srv_buf_str(&r->out, s) : -1;
        free(s);
        return rc;
    }
    if (p->stream) {
        int rc = 0;
        if (p->include_usage) {
            cJSON *j = oai_base(r, p->api == SRV_OAI_CHAT ? "chat.completion.chunk" : "text_completion");
            cJSON_AddArrayToObject(j, "choices");
            cJSON_AddItemToObject(j, "usage", usage(r));
            rc = emit(r, j);
        }
        return rc | srv_buf_str(&r->out, "data: [DONE]\n\n");
    }
    bool chat = p->api == SRV_OAI_CHAT;
    cJSON *j = oai_base(r, chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(j, "choices");
    for (int i = 0; i < p->n; i++) {
        srv_choice *c = &r->choices[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddNumberToObject(ch, "index", i);
        if (chat) {
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            if (c->calls.n_calls > 0 && c->text.len == 0) cJSON_AddNullToObject(msg, "content");
            else cJSON_AddItemToObject(msg, "content", text_item(c->text.p ? c->text.p : "", c->text.len));
            if (c->calls.n_calls > 0) cJSON_AddItemToObject(msg, "tool_calls", srv_fmt_tool_calls(r, c, false, false));
        } else {
            cJSON_AddItemToObject(ch, "text", text_item(c->text.p ? c->text.p : "", c->text.len));
        }
        if (p->logprobs) {
            cJSON *lp = c->logprobs;
            c->logprobs = NULL;
            if (chat) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddItemToObject(o, "content", lp ? lp : cJSON_CreateArray());
                lp = o;
            }
            cJSON_AddItemToObject(ch, "logprobs", lp ? lp : legacy_logprobs_new());
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
        cJSON_AddStringToObject(ch, "finish_reason", c->finish ? c->finish : "stop");
    }
    cJSON_AddItemToObject(j, "usage", usage(r));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    r->out.len = 0;
    int rc = s ? srv_buf_str(&r->out, s) : -1;
    free(s);
    return rc;
}

int srv_fmt_stream_error(srv_req *r, const srv_error *e) {
    char *s = srv_fmt_error(r->p.api, e);
    if (!s) return -1;
    int rc;
    if (is_ollama(r)) rc = srv_buf_str(&r->out, s) | srv_buf_str(&r->out, "\n");
    else rc = srv_buf_str(&r->out, "data: ") | srv_buf_str(&r->out, s) | srv_buf_str(&r->out, "\n\n");
    free(s);
    return rc;
}
