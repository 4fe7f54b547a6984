/*
 * sched.c — the scheduler of one model: a thread that admits queued
 * choices into free slots between decoding steps (continuous batching),
 * evaluates their prompts (reusing the KV rows of the idle slot that shares
 * the longest prefix), then advances every active sequence with one
 * sl_gen_step per iteration.
 *
 * Invariants:
 *  - A slot's sequence outlives its jobs: a finished choice leaves its
 *    session (and the ids it holds) for the next request's prefix reuse.
 *  - A choice's tokens come only from its own sequence, seed and params
 *    (generate.h's exactness rule), so batching never changes an answer.
 *  - Clients that went away are noticed between steps (closed flag from the
 *    HTTP layer, or the suspended socket read as closed); their token
 *    callback then answers "cancel" and the slot is freed.
 *  - After a failed step every sequence of that step is replaced by a fresh
 *    one (nothing half-evaluated is reused) and its request gets a 500.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "silica/memory.h"
#include "serve/srv_impl.h"

typedef struct srv_slot {
    sl_gen_seq *seq;
    srv_choice *job;   /* NULL: idle */
} srv_slot;

/* ---- prompt ---- */

/* tool_choice "required" / a function: the answer opens with the format's
 * call marker (appended to the prompt) and the rest is generated under the
 * grammar of a call (toolcall.h's sl_tool_call_schema). */
static int force_tool_call(srv_model *m, srv_req *r, sl_gen_prompt_opts *po, srv_error *e) {
    sl_tool_format f = sl_gen_model_tool_format(m->g);
    const char *prefix = "";
    cJSON *schema = NULL;
    sl_error err;
    sl_error_clear(&err);
    const char *name = r->p.tool_choice == SRV_TOOLS_NAMED ? r->p.tool_name : NULL;
    if (sl_tool_call_schema(f, r->p.tools, name, &prefix, &schema, &err))
        return srv_fail(e, 400, "tool_choice", "'tool_choice': %s: %s", m->id, err.msg);
    int rc = sl_grammar_from_schema(schema, &r->p.grammar, &err);
    cJSON_Delete(schema);
    if (rc) return srv_fail(e, 400, "tools", "'tools': %s", err.msg);
    r->tool_format = f;
    r->tool_prefix = prefix;
    po->answer_prefix = prefix;
    return 0;
}

/* The ids of r's prompt (once per request; every choice shares them). */
static int build_prompt(srv_model *m, srv_req *r, srv_error *e) {
    const srv_params *p = &r->p;
    sl_gen_prompt_opts po;
    memset(&po, 0, sizeof po);
    cJSON *msgs = NULL;
    int32_t *ids = NULL;
    int n = 0, rc = 0;
    sl_error err;
    sl_error_clear(&err);
    if (p->api == SRV_OAI_COMPLETION && p->prompt_ids) {
        ids = malloc(sizeof *ids * (size_t)p->n_prompt_ids);
        if (!ids) return srv_fail(e, 500, NULL, "out of memory");
        memcpy(ids, p->prompt_ids, sizeof *ids * (size_t)p->n_prompt_ids);
        n = p->n_prompt_ids;
    } else {
        if (p->messages) {
            po.messages = p->messages;
        } else if (p->api == SRV_OLLAMA_GENERATE && !p->raw) {
            /* ollama renders generate's prompt (and system) through the template */
            msgs = cJSON_CreateArray();
            cJSON *sys = p->system ? cJSON_CreateObject() : NULL, *usr = cJSON_CreateObject();
            if (sys) {
                cJSON_AddStringToObject(sys, "role", "system");
                cJSON_AddStringToObject(sys, "content", p->system);
                cJSON_AddItemToArray(msgs, sys);
            }
            cJSON_AddStringToObject(usr, "role", "user");
            cJSON_AddStringToObject(usr, "content", p->prompt ? p->prompt : "");
            cJSON_AddItemToArray(msgs, usr);
            po.messages = msgs;
        }
        /* text only for the completion APIs: with messages and no template,
         * generate.h renders the plain transcript */
        po.no_template = p->api == SRV_OAI_COMPLETION || (p->api == SRV_OLLAMA_GENERATE && p->raw);
        if (po.no_template) {
            po.messages = NULL;
            po.text = p->prompt ? p->prompt : "";
            po.text_len = strlen(po.text);
        }
        r->plain_transcript = po.messages && !sl_gen_model_has_template(m->g);
        po.tools = po.messages ? p->tools : NULL;
        if (po.tools && p->tool_choice == SRV_TOOLS_AUTO) r->tool_format = sl_gen_model_tool_format(m->g);
        if (po.tools && (p->tool_choice == SRV_TOOLS_REQUIRED || p->tool_choice == SRV_TOOLS_NAMED) &&
            force_tool_call(m, r, &po, e)) {
            cJSON_Delete(msgs);
            return -1;
        }
        pthread_mutex_lock(&m->tok_mu);
        rc = sl_gen_prompt(m->g, &po, &ids, &n, &err);
        pthread_mutex_unlock(&m->tok_mu);
        cJSON_Delete(msgs);
        if (rc) return srv_fail(e, 400, p->messages ? "messages" : "prompt", "%s", err.msg);
        /* ollama's context: the ids of the previous exchange come first */
        if (p->api == SRV_OLLAMA_GENERATE && p->n_prompt_ids > 0) {
            int32_t *all = malloc(sizeof *all * (size_t)(p->n_prompt_ids + n));
            if (!all) {
                free(ids);
                return srv_fail(e, 500, NULL, "out of memory");
            }
            memcpy(all, p->prompt_ids, sizeof *all * (size_t)p->n_prompt_ids);
            memcpy(all + p->n_prompt_ids, ids, sizeof *all * (size_t)n);
            free(ids);
            ids = all;
            n += p->n_prompt_ids;
        }
    }
    int vocab = sl_gen_model_config(m->g)->vocab_size;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) {
            int bad = (int)ids[i];
            free(ids);
            return srv_fail(e, 400, p->api == SRV_OLLAMA_GENERATE ? "context" : "prompt",
                            "token id %d is outside the vocabulary (%d ids)", bad, vocab);
        }
    for (int i = 0; i < p->sampling.n_bias; i++)
        if (p->bias[i].id >= vocab) {
            free(ids);
            return srv_fail(e, 400, "logit_bias", "token id %d is outside the vocabulary (%d ids)",
                            (int)p->bias[i].id, vocab);
        }
    if (n == 0) {
        free(ids);
        return srv_fail(e, 400, "prompt", "the prompt is empty");
    }
    if (n >= m->n_ctx) {
        free(ids);
        return srv_fail(e, 400, p->messages ? "messages" : "prompt",
                        "the prompt is %d tokens; the context holds %d (serve --ctx)", n, m->n_ctx);
    }
    r->prompt = ids;
    r->n_prompt = n;
    int room = m->n_ctx - n;
    r->max_tokens = p->max_tokens > 0 && p->max_tokens < room ? p->max_tokens : room;
    return 0;
}

/* ---- request completion ---- */

static void fail_request(srv_req *r, const srv_error *e) {
    pthread_mutex_lock(&r->mu);
    if (!r->done) {
        if (r->started) {
            srv_fmt_stream_error(r, e);
        } else {
            r->status = e->status;
            char *body = srv_fmt_error(r->p.api, e);
            r->out.len = 0;
            if (body) srv_buf_str(&r->out, body);
            free(body);
        }
        r->done = true;
        atomic_fetch_add(&r->srv->n_errors, 1);
        srv_req_wake(r);
    }
    pthread_mutex_unlock(&r->mu);
}

/* Choice c left its slot (finished, cancelled or failed); the last one out
 * drops the scheduler's reference. */
static void choice_out(srv_model *m, srv_choice *c) {
    srv_req *r = c->req;
    c->finished = true;
    pthread_mutex_lock(&r->mu);
    bool last = ++r->n_done == r->p.n;
    pthread_mutex_unlock(&r->mu);
    if (last) srv_req_release(r);
    pthread_mutex_lock(&m->mu);
    m->active--;
    pthread_mutex_unlock(&m->mu);
}

static void finish_choice(srv_model *m, srv_slot *sl) {
    srv_choice *c = sl->job;
    srv_req *r = c->req;
    const sl_gen_stats *st = sl_gen_seq_stats(sl->seq);
    size_t len = 0;
    const char *text = sl_gen_text(sl->seq, &len);
    int n_ids = 0;
    const int32_t *ids = sl_gen_generated(sl->seq, &n_ids);
    sl->job = NULL;
    atomic_fetch_add(&r->srv->n_gen_tokens, (unsigned long long)st->generated);
    pthread_mutex_lock(&r->mu);
    if (!r->closed && !r->done && st->stop_reason && strcmp(st->stop_reason, "cancelled") != 0) {
        r->t_last = srv_now();
        srv_fmt_choice_end(r, c, st, text, len, ids, n_ids);
        if (r->n_done + 1 == r->p.n) {
            srv_fmt_done(r, st);
            r->done = true;
            r->status = r->status ? r->status : 200;
        }
        srv_req_wake(r);
    } else if (st->stop_reason && strcmp(st->stop_reason, "cancelled") == 0) {
        atomic_fetch_add(&r->srv->n_cancelled, 1);
    }
    pthread_mutex_unlock(&r->mu);
    choice_out(m, c);
}

/* ---- the token callback ---- */

static int on_token(void *ud, const sl_gen_token *t) {
    srv_choice *c = ud;
    srv_req *r = c->req;
    pthread_mutex_lock(&r->mu);
    if (r->closed) {
        pthread_mutex_unlock(&r->mu);
        return 1;
    }
    double now = srv_now();
    if (!r->t_first) r->t_first = now;
    r->t_last = now;
    c->generated++;
    int rc = srv_fmt_token(r, c, t, sl_gen_model_tokenizer(r->model->g));
    if (r->p.stream && !r->started) {
        r->started = true;
        r->status = 200;
    }
    if (r->p.stream) srv_req_wake(r);
    pthread_mutex_unlock(&r->mu);
    return rc ? 1 : 0;
}

/* ---- slots ---- */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* The idle slot to run a prompt in: the longest common prefix with what it
 * holds; on a tie the one holding fewest ids (least cache thrown away). */
static int pick_slot(srv_model *m, const int32_t *ids, int n) {
    int best = -1, best_lcp = -1, best_held = 0;
    for (int i = 0; i < m->n_slots; i++) {
        if (m->slots[i].job) continue;
        int held = 0;
        const int32_t *h = sl_gen_seq_ids(m->slots[i].seq, &held);
        int lcp = common_prefix(h, held, ids, n);
        if (lcp > best_lcp || (lcp == best_lcp && held < best_held)) {
            best = i;
            best_lcp = lcp;
            best_held = held;
        }
    }
    return best;
}

static int renew_seq(srv_model *m, srv_slot *sl) {
    sl_error err;
    sl_gen_seq_free(sl->seq);
    sl->seq = NULL;
    return sl_gen_seq_new(m->g, &m->so, &sl->seq, &err);
}

/* Start choice c: prompt (once per request), slot, prefill, first token. */
static void start_choice(srv_model *m, srv_choice *c) {
    srv_req *r = c->req;
    srv_error e;
    memset(&e, 0, sizeof e);
    pthread_mutex_lock(&r->mu);
    bool gone = r->closed || r->done;
    pthread_mutex_unlock(&r->mu);
    if (gone) {
        choice_out(m, c);
        return;
    }
    if (!r->prompt && build_prompt(m, r, &e)) {
        fail_request(r, &e);
        choice_out(m, c);
        return;
    }
    int s = pick_slot(m, r->prompt, r->n_prompt);
    srv_slot *sl = &m->slots[s];
    sl->job = c;
    c->slot = s;
    sl_gen_params gp;
    memset(&gp, 0, sizeof gp);
    gp.sampling = r->p.sampling;
    gp.sampling.seed = r->p.sampling.seed + (uint64_t)c->index;
    gp.max_tokens = r->max_tokens;
    /* the plain transcript (chat without a template) ends its answer at the next "User:" */
    const char *stops[SRV_MAX_STOPS + 1];
    int n_stops = 0;
    for (int i = 0; i < r->p.n_stops; i++) stops[n_stops++] = r->p.stops[i];
    if (r->plain_transcript) stops[n_stops++] = SL_GEN_PLAIN_STOP;
    gp.stops = stops;
    gp.n_stops = n_stops;
    gp.ignore_eos = r->p.ignore_eos;
    gp.grammar = r->p.grammar;
    gp.logprobs = r->p.logprobs;
    gp.top_logprobs = r->p.logprobs ? r->p.top_logprobs : 0;
    sl_error err;
    sl_error_clear(&err);
    if (sl_gen_begin(sl->seq, r->prompt, r->n_prompt, &gp, on_token, c, &err)) {
        sl->job = NULL;
        renew_seq(m, sl);
        srv_fail(&e, err.code == SL_EINVAL ? 400 : 500, NULL, "%s", err.msg);
        fail_request(r, &e);
        choice_out(m, c);
        return;
    }
    const sl_gen_stats *st = sl_gen_seq_stats(sl->seq);
    if (c->index == 0) {
        pthread_mutex_lock(&r->mu);
        r->cached = st->cached_tokens;
        r->t_prompt_s = st->prompt_s;
        pthread_mutex_unlock(&r->mu);
        atomic_fetch_add(&m->srv->n_prompt_tokens, (unsigned long long)st->prompt_tokens);
        atomic_fetch_add(&m->srv->n_cached_tokens, (unsigned long long)st->cached_tokens);
    }
    if (!sl_gen_active(sl->seq)) finish_choice(m, sl);
}

/* Was the client of a suspended request seen closing its socket? */
static bool socket_closed(int fd) {
    char ch;
    ssize_t k = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* A client gone while its connection is suspended: mark the request closed
 * and resume the connection so that libmicrohttpd closes it too. */
static void check_client(srv_req *r) {
    pthread_mutex_lock(&r->mu);
    if (!r->closed && !r->done && r->suspended && r->fd >= 0 && socket_closed(r->fd)) {
        r->closed = true;
        srv_req_resume_closed(r);
    }
    pthread_mutex_unlock(&r->mu);
}

static void step_active(srv_model *m) {
    sl_gen_seq *seqs[m->n_slots];
    int idx[m->n_slots], n = 0;
    for (int i = 0; i < m->n_slots; i++)
        if (m->slots[i].job) {
            check_client(m->slots[i].job->req);
            if (sl_gen_active(m->slots[i].seq)) {
                idx[n] = i;
                seqs[n++] = m->slots[i].seq;
            }
        }
    if (n == 0) return;
    sl_error err;
    sl_error_clear(&err);
    if (sl_gen_step(seqs, n, &err)) {
        srv_error e;
        srv_fail(&e, 500, NULL, "generation failed: %s", err.msg);
        for (int k = 0; k < n; k++) {
            srv_slot *sl = &m->slots[idx[k]];
            srv_choice *c = sl->job;
            sl->job = NULL;
            renew_seq(m, sl);
            fail_request(c->req, &e);
            choice_out(m, c);
        }
        return;
    }
    for (int k = 0; k < n; k++)
        if (!sl_gen_active(m->slots[idx[k]].seq)) finish_choice(m, &m->slots[idx[k]]);
}

/* The positions the slots' caches hold now (read by /metrics). */
static void count_kv(srv_model *m) {
    uint64_t t = 0;
    for (int i = 0; i < m->n_slots; i++) {
        int n = 0;
        sl_gen_seq_ids(m->slots[i].seq, &n);
        t += (uint64_t)n;
    }
    atomic_store(&m->kv_tokens, t);
}

static void *sched_main(void *arg) {
    srv_model *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        int busy = 0;
        for (int i = 0; i < m->n_slots; i++) busy += m->slots[i].job != NULL;
        while (!m->stop && !m->qhead && busy == 0) pthread_cond_wait(&m->cv, &m->mu);
        if (m->stop && !m->qhead && busy == 0) {
            pthread_mutex_unlock(&m->mu);
            break;
        }
        /* admit as many queued choices as there are free slots */
        srv_choice *admit = NULL, **tail = &admit;
        int free_slots = m->n_slots - busy;
        while (m->qhead && free_slots > 0) {
            srv_choice *c = m->qhead;
            m->qhead = c->next;
            if (!m->qhead) m->qtail = NULL;
            m->queued--;
            m->active++;
            c->next = NULL;
            *tail = c;
            tail = &c->next;
            free_slots--;
        }
        /* queued requests whose clients left: noticed here, dropped at admission */
        for (srv_choice *c = m->qhead; c; c = c->next) check_client(c->req);
        pthread_mutex_unlock(&m->mu);
        while (admit) {
            srv_choice *c = admit;
            admit = c->next;
            c->next = NULL;
            start_choice(m, c);
        }
        step_active(m);
        count_kv(m);
    }
    return NULL;
}

int srv_sched_submit(srv_model *m, srv_req *r, srv_error *e) {
    pthread_mutex_lock(&m->mu);
    int max_queue = m->srv->o.max_queue > 0 ? m->srv->o.max_queue : 1024;
    if (m->stop || atomic_load(&m->srv->draining)) {
        pthread_mutex_unlock(&m->mu);
        return srv_fail(e, 503, NULL, "the server is shutting down");
    }
    if (m->queued + r->p.n > max_queue) {
        pthread_mutex_unlock(&m->mu);
        return srv_fail(e, 503, NULL, "too many requests waiting (%d); try again later", m->queued);
    }
    srv_req_retain(r);
    for (int i = 0; i < r->p.n; i++) {
        srv_choice *c = &r->choices[i];
        c->next = NULL;
        if (m->qtail) m->qtail->next = c;
        else m->qhead = c;
        m->qtail = c;
        m->queued++;
    }
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

bool srv_model_idle(srv_model *m) {
    pthread_mutex_lock(&m->mu);
    bool idle = m->queued == 0 && m->active == 0;
    pthread_mutex_unlock(&m->mu);
    return idle;
}

void srv_model_usage(srv_model *m, int *queued, int *active, uint64_t *kv_bytes, uint64_t *kv_tokens) {
    pthread_mutex_lock(&m->mu);
    *queued = m->queued;
    *active = m->active;
    pthread_mutex_unlock(&m->mu);
    *kv_bytes = m->kv_bytes;
    *kv_tokens = atomic_load(&m->kv_tokens);
}


/* The last component of path (trailing slashes ignored) into buf. */
static const char *base_name(const char *path, char *buf, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    snprintf(buf, cap, "%.*s", (int)(n - b), path + b);
    return buf;
}

int srv_model_init(srv_server *s, srv_model *m, const sl_serve_model_spec *spec, sl_error *err) {
    memset(m, 0, sizeof *m);
    m->srv = s;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->tok_mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->path = strdup(spec->path);
    char name[256];
    m->id = strdup(spec->name ? spec->name : base_name(spec->path, name, sizeof name));
    if (!m->path || !m->id) return sl_errorf(err, SL_ENOMEM, "out of memory");
    return 0;
}

/* Open the model, its slots' sequences and its scheduler thread. */
static int model_load(srv_server *s, srv_model *m, sl_error *err) {
    if (sl_gen_model_open(m->path, NULL, &m->g, err)) return err->code ? err->code : SL_EINVAL;
    m->so = s->o.session;
    int64_t maxpos = sl_gen_model_config(m->g)->max_position_embeddings;
    if (m->so.n_ctx <= 0) m->so.n_ctx = maxpos > 0 && maxpos < 4096 ? (int)maxpos : 4096;
    m->n_ctx = m->so.n_ctx;
    m->n_slots = s->o.parallel > 0 ? s->o.parallel : 4;
    m->slots = calloc((size_t)m->n_slots, sizeof *m->slots);
    if (!m->slots) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_slots; i++) {
        int rc = sl_gen_seq_new(m->g, &m->so, &m->slots[i].seq, err);
        if (rc) return rc;
        m->kv_bytes += sl_session_kv_bytes(sl_gen_seq_session(m->slots[i].seq));
    }
    if (pthread_create(&m->thread, NULL, sched_main, m) != 0)
        return sl_errorf(err, SL_ENOMEM, "%s: cannot start the scheduler thread", m->id);
    m->thread_started = true;
    return 0;
}

/* Back to "not loaded": the thread joined, sequences and model freed. */
static void model_unload(srv_model *m) {
    if (m->thread_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    for (int i = 0; m->slots && i < m->n_slots; i++) sl_gen_seq_free(m->slots[i].seq);
    free(m->slots);
    sl_gen_model_close(m->g);
    m->slots = NULL;
    m->g = NULL;
    m->thread_started = m->stop = false;
    m->n_slots = m->n_ctx = 0;
    m->kv_bytes = 0;
}

int srv_model_ensure(srv_server *s, srv_model *m, srv_error *e) {
    if (m->g) return 0;
    sl_error err;
    sl_error_clear(&err);
    /* the fit advisor's estimate beside the models loaded, as serve's start-up guard counts
       one model: weights + one KV cache of --ctx per slot */
    sl_session_opts so = s->o.session;
    int par = s->o.parallel > 0 ? s->o.parallel : 4;
    so.n_ctx = (so.n_ctx > 0 ? so.n_ctx : 4096) * par;
    uint64_t in_use = 0, need = 0;
    char what[320] = "";
    for (int i = 0; i < s->n_models; i++) {
        const srv_model *k = &s->models[i];
        if (!k->g) continue;
        in_use += k->fit_bytes;
        size_t l = strlen(what);
        snprintf(what + l, sizeof what - l, "%s%.60s %.2f MiB", l ? ", " : "", k->id, (double)k->fit_bytes / (1 << 20));
    }
    if (!s->o.force && sl_fit_guard_beside(m->path, &so, s->o.max_memory, in_use, what, &need, &err)) {
        srv_fail(e, 503, "model", "model '%.60s' does not fit next to the loaded models: %s", m->id, err.msg);
        e->type = "server_error";
        return -1;
    }
    if (model_load(s, m, &err)) {
        model_unload(m);
        srv_fail(e, 500, "model", "model '%.60s' failed to load: %s", m->id, err.msg);
        e->type = "server_error";
        return -1;
    }
    m->fit_bytes = need;
    return 0;
}

void srv_model_stop(srv_model *m) {
    model_unload(m);
    free(m->id);
    free(m->path);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->tok_mu);
    pthread_cond_destroy(&m->cv);
    memset(m, 0, sizeof *m);
}
