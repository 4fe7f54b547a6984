/*
 * routes.c — the routes that do not generate: GET /health, GET /metrics
 * (Prometheus text exposition format 0.0.4), GET /v1/models (OpenAI),
 * GET /api/tags, GET /api/ps, POST /api/show, GET /api/version (Ollama),
 * POST /tokenize, POST /detokenize and POST /apply-template (llama-server's
 * shapes).
 *
 * Invariants: answers are built from state read under the models' locks
 * (queue, slots) or atomics (counters); tokenizer encoding takes the
 * model's tok_mu like the scheduler does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "silica/memory.h"
#include "silica/version.h"
#include "serve/srv_impl.h"

static void reply_json(srv_reply *out, int status, cJSON *j) {
    out->status = status;
    out->type = "application/json";
    out->body = cJSON_PrintUnformatted(j);
    out->len = out->body ? strlen(out->body) : 0;
    cJSON_Delete(j);
}

void srv_reply_error(srv_reply *out, srv_api api, const srv_error *e) {
    out->status = e->status;
    out->type = "application/json";
    out->body = srv_fmt_error(api, e);
    out->len = out->body ? strlen(out->body) : 0;
}

static bool model_error(srv_reply *out, srv_api api, const char *name) {
    srv_error e;
    srv_fail(&e, 404, "model", "model '%.200s' is not served here", name ? name : "");
    srv_reply_error(out, api, &e);
    return true;
}

/* The model a request names, loaded (on first use); NULL with the error
 * reply (404, or 503/500 from srv_model_ensure) written. */
static srv_model *use_model(srv_server *s, const char *name, srv_api api, srv_reply *out) {
    srv_model *m = srv_find_model(s, name);
    srv_error e;
    if (!m) model_error(out, api, name);
    else if (srv_model_ensure(s, m, &e)) srv_reply_error(out, api, &e);
    else return m;
    return NULL;
}

/* "23.4M", "7.2B" */
static void param_size(uint64_t n, char *buf, size_t cap) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.1fB", (double)n / 1e9);
    else snprintf(buf, cap, "%.1fM", (double)n / 1e6);
}

static uint64_t model_params(const sl_model_config *c) {
    /* embeddings + per-layer attention and MLP weights (an estimate for display) */
    uint64_t h = (uint64_t)c->hidden_size, q = (uint64_t)c->n_heads * (uint64_t)c->head_dim;
    uint64_t kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim, f = (uint64_t)c->intermediate_size;
    uint64_t layer = h * q * 2 + h * kv * 2 + 3 * h * f;
    return (uint64_t)c->vocab_size * h * (c->tie_embeddings ? 1 : 2) + (uint64_t)c->n_layers * layer;
}

static bool is_gguf(const char *path) {
    size_t n = strlen(path);
    return n > 5 && strcmp(path + n - 5, ".gguf") == 0;
}

static cJSON *ollama_details(const srv_model *m) {
    const sl_model_config *c = m->g ? sl_gen_model_config(m->g) : NULL;   /* NULL: not loaded yet */
    cJSON *d = cJSON_CreateObject();
    char ps[32] = "";
    if (c) param_size(model_params(c), ps, sizeof ps);
    cJSON_AddStringToObject(d, "parent_model", "");
    cJSON_AddStringToObject(d, "format", is_gguf(m->path) ? "gguf" : "safetensors");
    cJSON_AddStringToObject(d, "family", c ? sl_arch_name(c->arch) : "");
    cJSON *fam = cJSON_AddArrayToObject(d, "families");
    if (c) cJSON_AddItemToArray(fam, cJSON_CreateString(sl_arch_name(c->arch)));
    cJSON_AddStringToObject(d, "parameter_size", ps);
    cJSON_AddStringToObject(d, "quantization_level", "");
    return d;
}

static cJSON *ollama_entry(const srv_model *m, bool running) {
    cJSON *e = cJSON_CreateObject();
    char ts[64];
    srv_rfc3339(ts, sizeof ts);
    cJSON_AddStringToObject(e, "name", m->id);
    cJSON_AddStringToObject(e, "model", m->id);
    if (!running) cJSON_AddStringToObject(e, "modified_at", ts);
    cJSON_AddNumberToObject(e, "size", m->g ? (double)sl_model_weight_bytes(sl_gen_model_get(m->g)) : 0);
    cJSON_AddStringToObject(e, "digest", "");
    cJSON_AddItemToObject(e, "details", ollama_details(m));
    if (running) {
        cJSON_AddStringToObject(e, "expires_at", "2999-12-31T00:00:00Z");
        cJSON_AddNumberToObject(e, "size_vram", 0);
    }
    return e;
}

static void route_models(srv_server *s, srv_reply *out) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(j, "data");
    for (int i = 0; i < s->n_models; i++) {
        const srv_model *m = &s->models[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", m->id);
        cJSON_AddStringToObject(e, "object", "model");
        cJSON_AddNumberToObject(e, "created", (double)time(NULL));
        cJSON_AddStringToObject(e, "owned_by", "silica");
        cJSON *meta = cJSON_AddObjectToObject(e, "meta");
        cJSON_AddBoolToObject(meta, "loaded", m->g != NULL);   /* the others load on first use */
        if (m->g) {
            cJSON_AddNumberToObject(meta, "n_ctx", m->n_ctx);
            cJSON_AddNumberToObject(meta, "n_vocab", sl_gen_model_config(m->g)->vocab_size);
            cJSON_AddNumberToObject(meta, "parallel", m->n_slots);
        }
        cJSON_AddItemToArray(data, e);
    }
    reply_json(out, 200, j);
}

static void route_tags(srv_server *s, bool running, srv_reply *out) {
    cJSON *j = cJSON_CreateObject();
    cJSON *models = cJSON_AddArrayToObject(j, "models");
    /* /api/ps: the models in memory; /api/tags: all of them */
    for (int i = 0; i < s->n_models; i++)
        if (!running || s->models[i].g) cJSON_AddItemToArray(models, ollama_entry(&s->models[i], running));
    reply_json(out, 200, j);
}

static void route_show(srv_server *s, const char *body, size_t len, srv_reply *out) {
    srv_error e;
    char *name = NULL;
    if (srv_parse_show(body, len, &name, &e)) {
        srv_reply_error(out, SRV_OLLAMA_CHAT, &e);
        return;
    }
    srv_model *m = use_model(s, name, SRV_OLLAMA_CHAT, out);
    free(name);
    if (!m) return;
    const sl_model_config *c = sl_gen_model_config(m->g);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "modelfile", "");
    cJSON_AddStringToObject(j, "parameters", "");
    cJSON_AddStringToObject(j, "template", "");
    cJSON_AddItemToObject(j, "details", ollama_details(m));
    cJSON *info = cJSON_AddObjectToObject(j, "model_info");
    const char *arch = sl_arch_name(c->arch);
    char key[96];
    cJSON_AddStringToObject(info, "general.architecture", arch);
    cJSON_AddNumberToObject(info, "general.parameter_count", (double)model_params(c));
    snprintf(key, sizeof key, "%s.context_length", arch);
    cJSON_AddNumberToObject(info, key, (double)c->max_position_embeddings);
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    cJSON_AddNumberToObject(info, key, c->hidden_size);
    snprintf(key, sizeof key, "%s.block_count", arch);
    cJSON_AddNumberToObject(info, key, c->n_layers);
    cJSON *caps = cJSON_AddArrayToObject(j, "capabilities");
    cJSON_AddItemToArray(caps, cJSON_CreateString("completion"));
    char ts[64];
    srv_rfc3339(ts, sizeof ts);
    cJSON_AddStringToObject(j, "modified_at", ts);
    reply_json(out, 200, j);
}

static void route_tokenize(srv_server *s, const char *body, size_t len, bool detok, srv_reply *out) {
    srv_tok_params p;
    srv_error e;
    if (srv_parse_tokenize(body, len, detok, &p, &e)) {
        srv_reply_error(out, SRV_OAI_CHAT, &e);
        return;
    }
    srv_model *m = use_model(s, p.model, SRV_OAI_CHAT, out);
    const sl_tokenizer *tok = m ? sl_gen_model_tokenizer(m->g) : NULL;
    if (!m) {
        /* the reply says why */
    } else if (!tok) {
        srv_fail(&e, 400, "model", "model '%s' has no tokenizer", m->id);
        srv_reply_error(out, SRV_OAI_CHAT, &e);
    } else if (!detok) {
        sl_tok_ids ids = {0};
        sl_error err;
        pthread_mutex_lock(&m->tok_mu);
        int rc = sl_tok_encode((sl_tokenizer *)tok, p.content, p.content_len, p.add_special ? SL_TOK_ADD_SPECIAL : 0,
                               &ids, &err);
        pthread_mutex_unlock(&m->tok_mu);
        if (rc) {
            srv_fail(&e, 400, "content", "%s", err.msg);
            srv_reply_error(out, SRV_OAI_CHAT, &e);
        } else {
            cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "tokens");
            for (size_t i = 0; i < ids.n; i++) {
                if (!p.with_pieces) {
                    cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids.ids[i]));
                    continue;
                }
                char *piece = NULL;
                size_t pl = 0;
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "id", ids.ids[i]);
                if (sl_tok_decode(tok, &ids.ids[i], 1, 0, &piece, &pl, NULL) == 0)
                    cJSON_AddStringToObject(o, "piece", piece);
                free(piece);
                cJSON_AddItemToArray(arr, o);
            }
            reply_json(out, 200, j);
        }
        sl_tok_ids_free(&ids);
    } else {
        char *text = NULL;
        size_t tl = 0;
        sl_error err;
        if (sl_tok_decode(tok, (const uint32_t *)p.tokens, (size_t)p.n_tokens, 0, &text, &tl, &err)) {
            srv_fail(&e, 400, "tokens", "%s", err.msg);
            srv_reply_error(out, SRV_OAI_CHAT, &e);
        } else {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "content", text);
            reply_json(out, 200, j);
        }
        free(text);
    }
    srv_tok_params_free(&p);
}

/* POST /apply-template: a /v1/chat/completions body rendered with the
 * model's chat template (tools included) -> {"prompt": text}, the text the
 * chat endpoint would encode. */
static void route_apply_template(srv_server *s, const char *body, size_t len, srv_reply *out) {
    srv_params p;
    srv_error e;
    if (srv_parse_request(SRV_OAI_CHAT, body, len, &p, &e)) {
        srv_reply_error(out, SRV_OAI_CHAT, &e);
        return;
    }
    srv_model *m = use_model(s, p.model, SRV_OAI_CHAT, out);
    if (!m) {
        srv_params_free(&p);
        return;
    }
    sl_gen_prompt_opts po;
    memset(&po, 0, sizeof po);
    po.messages = p.messages;
    po.tools = p.tools;
    char *text = NULL;
    size_t tl = 0;
    sl_error err;
    sl_error_clear(&err);
    if (sl_gen_render(m->g, &po, &text, &tl, &err)) {
        srv_fail(&e, 400, "messages", "%s", err.msg);
        srv_reply_error(out, SRV_OAI_CHAT, &e);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "prompt", text);
        reply_json(out, 200, j);
    }
    free(text);
    srv_params_free(&p);
}

static void metric(srv_buf *b, const char *name, const char *type, const char *help, double v) {
    char line[512];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
    srv_buf_str(b, line);
}

static void route_metrics(srv_server *s, srv_reply *out) {
    srv_buf b = {0};
    int queued = 0, active = 0, slots = 0;
    uint64_t kv_bytes = 0, kv_tokens = 0;
    for (int i = 0; i < s->n_models; i++) {
        int q, a;
        uint64_t kb, kt;
        srv_model_usage(&s->models[i], &q, &a, &kb, &kt);
        queued += q;
        active += a;
        kv_bytes += kb;
        kv_tokens += kt;
        slots += s->models[i].n_slots;
    }
    metric(&b, "silica_requests_total", "counter", "HTTP requests routed", (double)atomic_load(&s->n_requests));
    metric(&b, "silica_request_errors_total", "counter", "requests answered with an error",
           (double)atomic_load(&s->n_errors));
    metric(&b, "silica_requests_cancelled_total", "counter", "generations stopped because the client left",
           (double)atomic_load(&s->n_cancelled));
    metric(&b, "silica_prompt_tokens_total", "counter", "prompt tokens of started generations",
           (double)atomic_load(&s->n_prompt_tokens));
    metric(&b, "silica_prompt_tokens_cached_total", "counter", "prompt tokens reused from a slot's KV cache",
           (double)atomic_load(&s->n_cached_tokens));
    metric(&b, "silica_generated_tokens_total", "counter", "tokens generated",
           (double)atomic_load(&s->n_gen_tokens));
    metric(&b, "silica_queue_depth", "gauge", "sequences waiting for a slot", queued);
    metric(&b, "silica_slots_active", "gauge", "slots generating now", active);
    metric(&b, "silica_slots_total", "gauge", "slots (--parallel per model)", slots);
    metric(&b, "silica_kv_cache_bytes", "gauge", "bytes allocated for KV caches", (double)kv_bytes);
    metric(&b, "silica_kv_cache_tokens", "gauge", "positions held in KV caches", (double)kv_tokens);
    metric(&b, "silica_resident_memory_bytes", "gauge", "resident set size", (double)sl_mem_rss());
    metric(&b, "silica_peak_resident_memory_bytes", "gauge", "peak resident set size", (double)sl_mem_peak_rss());
    out->status = 200;
    out->type = "text/plain; version=0.0.4; charset=utf-8";
    out->body = b.p;
    out->len = b.len;
}

static void route_health(srv_server *s, srv_reply *out) {
    bool draining = atomic_load(&s->draining);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", draining ? "draining" : "ok");
    reply_json(out, draining ? 503 : 200, j);
}

bool srv_route_info(srv_server *s, const char *method, const char *path, const char *body, size_t len,
                    srv_reply *out) {
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0, post = strcmp(method, "POST") == 0;
    static const struct {
        const char *path;
        bool post;
    } known[] = {{"/health", false},   {"/metrics", false},  {"/v1/models", false}, {"/api/tags", false},
                 {"/api/ps", false},   {"/api/version", false}, {"/api/show", true}, {"/tokenize", true},
                 {"/detokenize", true}, {"/apply-template", true}};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (strcmp(path, known[i].path) != 0) continue;
        if (known[i].post ? !post : !get) {
            srv_error e;
            srv_fail(&e, 405, NULL, "%s needs %s", path, known[i].post ? "POST" : "GET");
            srv_reply_error(out, strncmp(path, "/api/", 5) == 0 ? SRV_OLLAMA_CHAT : SRV_OAI_CHAT, &e);
            return true;
        }
        if (strcmp(path, "/health") == 0) route_health(s, out);
        else if (strcmp(path, "/metrics") == 0) route_metrics(s, out);
        else if (strcmp(path, "/v1/models") == 0) route_models(s, out);
        else if (strcmp(path, "/api/tags") == 0) route_tags(s, false, out);
        else if (strcmp(path, "/api/ps") == 0) route_tags(s, true, out);
        else if (strcmp(path, "/api/version") == 0) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "version", SILICA_VERSION);
            reply_json(out, 200, j);
        } else if (strcmp(path, "/api/show") == 0) route_show(s, body, len, out);
        else if (strcmp(path, "/apply-template") == 0) route_apply_template(s, body, len, out);
        else route_tokenize(s, body, len, strcmp(path, "/detokenize") == 0, out);
        return true;
    }
    return false;
}
