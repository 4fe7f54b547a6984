/*
 * gen.c — text generation shared by `run`, `chat` and `ppl` (see gen.h).
 *
 * Prompt building follows mlx_lm.generate: with a chat template the rendered
 * string is encoded with add_special_tokens=False (the template writes BOS
 * itself), without one the text is encoded with add_special_tokens=True.
 * EOS ids as mlx_lm: generation_config.json's eos_token_id (int or list),
 * else config.json's, plus the tokenizer's eos_token.
 * Stop strings are matched on the decoded text; the text is cut before the
 * first match and nothing from the match on is ever emitted.
 */
#include "gen.h"

#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include "silica/io.h"

double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long long gen_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#ifdef __APPLE__
    return (long long)ru.ru_maxrss;
#else
    return (long long)ru.ru_maxrss * 1024;
#endif
}

/* dirname of p into buf (no trailing slash); "." for a bare name. */
static void dir_of(const char *p, char *buf, size_t cap) {
    const char *s = strrchr(p, '/');
    if (!s) snprintf(buf, cap, ".");
    else if (s == p) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(s - p), p);
}

const char *gen_default_model(void) {
    static char buf[PATH_MAX + 32];
    const char *env = getenv("SILICA_DEFAULT_MODEL");
    if (env && *env) return env;
    char exe[PATH_MAX];
    exe[0] = 0;
#ifdef __APPLE__
    uint32_t sz = sizeof exe;
    if (_NSGetExecutablePath(exe, &sz) != 0) exe[0] = 0;
#else
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
#endif
    if (exe[0]) {
        char d[PATH_MAX];
        dir_of(exe, d, sizeof d);
        snprintf(buf, sizeof buf, "%s/../models/demo", d);
        if (sl_path_is_dir(buf)) return buf;
    }
    /* The source tree: this file is <root>/cli/gen.c (absolute in CMake builds). */
    char d[PATH_MAX], root[PATH_MAX];
    dir_of(__FILE__, d, sizeof d);
    dir_of(d, root, sizeof root);
    snprintf(buf, sizeof buf, "%s/models/demo", root);
    return sl_path_is_dir(buf) ? buf : NULL;
}

void gen_sampling_unset(sl_sampler_params *sp) {
    sl_sampler_defaults(sp);
    sp->temperature = sp->top_p = sp->min_p = sp->repeat_penalty = NAN;
    sp->top_k = sp->penalty_window = INT_MIN;
}

void gen_sampling_finish(sl_sampler_params *sp, bool demo) {
    sl_sampler_params d;
    sl_sampler_defaults(&d);
    if (demo) {
        d.temperature = 0.7f;
        d.top_k = 40;
        d.top_p = 0.95f;
        d.min_p = 0.05f;
        d.repeat_penalty = 1.1f;
        d.penalty_window = 64;
    }
    if (isnan(sp->temperature)) sp->temperature = d.temperature;
    if (isnan(sp->top_p)) sp->top_p = d.top_p;
    if (isnan(sp->min_p)) sp->min_p = d.min_p;
    if (isnan(sp->repeat_penalty)) sp->repeat_penalty = d.repeat_penalty;
    if (sp->top_k == INT_MIN) sp->top_k = d.top_k;
    if (sp->penalty_window == INT_MIN) sp->penalty_window = d.penalty_window;
}

static void add_eos(gen_model *g, int64_t id) {
    if (id < 0 || id > INT32_MAX) return;
    for (int k = 0; k < g->n_eos; k++)
        if (g->eos[k] == (int32_t)id) return;
    if (g->n_eos < GEN_MAX_EOS) g->eos[g->n_eos++] = (int32_t)id;
}

static cJSON *read_json(const char *path) {
    char *txt = NULL;
    size_t len;
    if (!sl_path_exists(path) || sl_read_file(path, 16u << 20, &txt, &len, NULL)) return NULL;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    return j;
}

int gen_open(const char *path, gen_model *g, sl_error *err) { return gen_open_tok(path, NULL, g, err); }

/* Where the chat template comes from: the tokenizer the user named (its
 * directory for a tokenizer.json), else the model itself (a GGUF model's
 * metadata or the model directory). */
static void template_source(const char *model, const char *tokenizer, char *buf, size_t cap) {
    const char *p = tokenizer ? tokenizer : model;
    if (sl_path_is_dir(p) || sl_str_ends_with(p, ".gguf") || !tokenizer) snprintf(buf, cap, "%s", p);
    else dir_of(p, buf, cap);
    if (!tokenizer && !sl_path_is_dir(p) && !sl_tmpl_has_chat_template(buf)) dir_of(p, buf, cap);
}

int gen_open_tok(const char *path, const char *tokenizer, gen_model *g, sl_error *err) {
    memset(g, 0, sizeof *g);
    g->path = path;
    g->bos = -1;
    int rc = sl_model_open(path, &g->m, err);
    if (rc) return rc;
    g->c = sl_model_get_config(g->m);
    char dir[PATH_MAX], tsrc[PATH_MAX];
    if (sl_path_is_dir(path)) snprintf(dir, sizeof dir, "%s", path);
    else dir_of(path, dir, sizeof dir);
    if ((rc = sl_tok_load_for_model(path, tokenizer, &g->tok, err))) {
        gen_close(g);
        return rc;
    }
    template_source(path, tokenizer, tsrc, sizeof tsrc);
    if (g->tok && sl_tmpl_has_chat_template(tsrc)) {
        char *src = NULL;
        if ((rc = sl_tmpl_load_chat_template(tsrc, NULL, 0, &src, &g->special, err)) ||
            (rc = sl_tmpl_compile(src, strlen(src), tsrc, &g->tmpl, err))) {
            free(src);
            gen_close(g);
            return rc;
        }
        free(src);
    }
    /* as mlx_lm.load: generation_config.json's eos_token_id replaces config.json's */
    char *gp = sl_path_join(dir, "generation_config.json");
    cJSON *j = gp ? read_json(gp) : NULL, *x;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
    if (cJSON_IsNumber(e)) add_eos(g, (int64_t)e->valuedouble);
    else if (cJSON_IsArray(e))
        cJSON_ArrayForEach(x, e) if (cJSON_IsNumber(x)) add_eos(g, (int64_t)x->valuedouble);
    if (!g->n_eos)
        for (int k = 0; k < g->c->n_eos; k++) add_eos(g, g->c->eos_ids[k]);
    cJSON_Delete(j);
    free(gp);
    g->bos = g->c->bos_id;
    if (g->tok) {
        const sl_tok_info *ti = sl_tok_get_info(g->tok);
        add_eos(g, ti->eos_id);
        add_eos(g, ti->eot_id);
        if (ti->bos_id >= 0 && ti->bos_id <= INT32_MAX) g->bos = (int32_t)ti->bos_id;
    }
    return 0;
}

void gen_close(gen_model *g) {
    sl_tmpl_free(g->tmpl);
    cJSON_Delete(g->special);
    sl_tok_free(g->tok);
    sl_model_close(g->m);
    memset(g, 0, sizeof *g);
}

int gen_prompt(gen_model *g, const cJSON *messages, const char *text, bool use_template, int32_t **ids, int *n,
               sl_error *err) {
    *ids = NULL;
    *n = 0;
    if (!g->tok) return sl_errorf(err, SL_EINVAL, "%s: no tokenizer (no tokenizer.json beside the model, no tokenizer.ggml.* in a GGUF): pass token ids with --ids or a tokenizer with --tokenizer", g->path);
    char *rendered = NULL;
    size_t rlen = 0;
    unsigned flags = SL_TOK_ADD_SPECIAL;
    int rc = 0;
    if (use_template && g->tmpl) {
        cJSON *ctx = cJSON_Duplicate(g->special, 1);
        cJSON *norm = sl_tmpl_normalize_messages(messages, err);
        if (!ctx || !norm) {
            cJSON_Delete(ctx);
            cJSON_Delete(norm);
            return norm ? sl_errorf(err, SL_ENOMEM, "out of memory") : SL_EINVAL;
        }
        cJSON_AddItemToObject(ctx, "messages", norm);
        cJSON_AddItemToObject(ctx, "tools", cJSON_CreateNull());
        cJSON_AddItemToObject(ctx, "documents", cJSON_CreateNull());
        cJSON_AddBoolToObject(ctx, "add_generation_prompt", 1);
        rc = sl_tmpl_render(g->tmpl, ctx, NULL, &rendered, &rlen, err);
        cJSON_Delete(ctx);
        if (rc) return rc;
        text = rendered;
        flags = 0;
    } else {
        rlen = strlen(text);
    }
    sl_tok_ids t = {0};
    rc = sl_tok_encode(g->tok, text, rlen, flags, &t, err);
    free(rendered);
    if (rc) return rc;
    if (t.n > INT32_MAX / 2) {
        sl_tok_ids_free(&t);
        return sl_errorf(err, SL_EINVAL, "prompt too long");
    }
    *ids = malloc((t.n ? t.n : 1) * sizeof **ids);
    if (!*ids) {
        sl_tok_ids_free(&t);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < t.n; k++) (*ids)[k] = (int32_t)t.ids[k];
    *n = (int)t.n;
    sl_tok_ids_free(&t);
    return 0;
}

void gen_cache_free(gen_cache *c) {
    free(c->ids);
    memset(c, 0, sizeof *c);
}

void gen_result_free(gen_result *r) {
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static int cache_push(gen_cache *c, const int32_t *ids, int n, sl_error *err) {
    if (c->n + n > c->cap) {
        int cap = c->cap ? c->cap : 256;
        while (cap < c->n + n) cap *= 2;
        int32_t *p = realloc(c->ids, (size_t)cap * sizeof *p);
        if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
        c->ids = p;
        c->cap = cap;
    }
    memcpy(c->ids + c->n, ids, (size_t)n * sizeof *ids);
    c->n += n;
    return 0;
}

/* Text being generated: accumulated bytes, how much was emitted. */
typedef struct textbuf {
    char *p;
    size_t n, cap, emitted;
} textbuf;

static int tb_append(textbuf *t, const char *s, size_t n, sl_error *err) {
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n + 1) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = 0;
    return 0;
}

/* Check stops after new text arrived: returns true when a stop string was
 * found (text cut there).  *safe: bytes that may be emitted. */
static bool tb_stops(textbuf *t, const gen_opts *o, size_t added, size_t *safe) {
    size_t maxl = 0;
    for (int k = 0; k < o->n_stops; k++) maxl = strlen(o->stops[k]) > maxl ? strlen(o->stops[k]) : maxl;
    size_t from = t->n - added;
    from = from > maxl ? from - maxl : 0;
    size_t best = SIZE_MAX;
    for (int k = 0; k < o->n_stops; k++) {
        size_t L = strlen(o->stops[k]);
        if (!L) continue;
        for (size_t i = from; i + L <= t->n && i < best; i++)
            if (memcmp(t->p + i, o->stops[k], L) == 0) { best = i; break; }
    }
    if (best != SIZE_MAX) {
        t->n = best;
        t->p[best] = 0;
        *safe = best;
        return true;
    }
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t hold = 0;
    for (int k = 0; k < o->n_stops; k++) {
        size_t L = strlen(o->stops[k]), h = L ? L - 1 : 0;
        if (h > t->n) h = t->n;
        for (; h > hold; h--)
            if (memcmp(t->p + t->n - h, o->stops[k], h) == 0) { hold = h; break; }
    }
    *safe = t->n - hold;
    return false;
}

static void tb_emit(textbuf *t, const gen_opts *o, size_t upto) {
    if (upto > t->emitted && o->emit) o->emit(t->p + t->emitted, upto - t->emitted, o->ud);
    if (upto > t->emitted) t->emitted = upto;
}

int gen_generate(gen_model *g, sl_session *s, gen_cache *cache, sl_sampler *smp, const int32_t *prompt, int n,
                 const gen_opts *o, gen_result *r, sl_error *err) {
    memset(r, 0, sizeof *r);
    r->stop_reason = "length";
    r->prompt_tokens = n;
    if (n <= 0) return sl_errorf(err, SL_EINVAL, "%s: the prompt is empty (no tokens)", g->path);
    if (n > sl_session_ctx(s))
        return sl_errorf(err, SL_EINVAL, "%s: the prompt has %d tokens, longer than the context of %d (--ctx)", g->path,
                         n, sl_session_ctx(s));
    if (o->n_stops && !g->tok)
        return sl_errorf(err, SL_EINVAL, "%s: stop strings need the model's tokenizer.json", g->path);
    int V = g->c->vocab_size, rc = 0;
    int keep = 0;
    while (keep < cache->n && keep < n - 1 && cache->ids[keep] == prompt[keep]) keep++;
    if (keep > sl_session_pos(s)) keep = sl_session_pos(s);
    keep = sl_session_truncate(s, keep);   /* 0 when a rotating cache already evicted what the prefix needs */
    cache->n = keep;
    float *logits = malloc((size_t)V * sizeof *logits);
    int32_t *hist = malloc(((size_t)n + (size_t)o->max_tokens + 1) * sizeof *hist);
    r->ids = malloc(((size_t)o->max_tokens + 1) * sizeof *r->ids);
    textbuf tb = {0};
    sl_tok_stream *ts = NULL;
    if (!logits || !hist || !r->ids) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); goto out; }
    if (g->tok && (rc = sl_tok_stream_new(g->tok, 0, &ts, err))) goto out;
    if (g->tok && (rc = tb_append(&tb, "", 0, err))) goto out;
    memcpy(hist, prompt, (size_t)n * sizeof *hist);
    double t0 = gen_now();
    if (o->progress) o->progress(o->progress_ud, "prompt", sl_session_pos(s));
    if ((rc = sl_session_eval(s, prompt + keep, n - keep, false, logits, err))) {
        sl_error_prefix(err, "%s: ", g->path);
        goto out;
    }
    if (o->progress) o->progress(o->progress_ud, "generate", sl_session_pos(s));
    if ((rc = cache_push(cache, prompt + keep, n - keep, err))) goto out;
    double t1 = gen_now(), tf = t1;
    r->prompt_s = t1 - t0;
    r->ttft_s = 0;
    int nh = n;
    while (r->n < o->max_tokens) {
        if (o->cancelled && o->cancelled()) break;
        int32_t id = sl_sampler_sample(smp, logits, hist, nh);
        if (r->n == 0) {
            tf = gen_now();
            r->ttft_s = tf - t0;
        }
        hist[nh++] = id;
        r->ids[r->n++] = id;
        bool is_eos = false;
        for (int k = 0; k < g->n_eos; k++) is_eos |= g->eos[k] == id;
        if (is_eos) {
            r->stop_reason = "eos";
            break;
        }
        if (ts) {
            const char *piece;
            size_t plen;
            if ((rc = sl_tok_stream_step(ts, (uint32_t)id, &piece, &plen, err))) goto out;
            if ((rc = tb_append(&tb, piece, plen, err))) goto out;
            size_t safe = tb.n;
            bool hit = o->n_stops && tb_stops(&tb, o, plen, &safe);
            tb_emit(&tb, o, safe);
            if (hit) {
                r->stop_reason = "stop";
                break;
            }
        }
        if (r->n == o->max_tokens) break;
        if (sl_session_pos(s) >= sl_session_ctx(s)) break;   /* context full: "length" */
        if (o->cancelled && o->cancelled()) break;
        if ((rc = sl_session_eval(s, &id, 1, false, logits, err))) {
            sl_error_prefix(err, "%s: ", g->path);
            goto out;
        }
        if (o->progress) o->progress(o->progress_ud, "generate", sl_session_pos(s));
        if ((rc = cache_push(cache, &id, 1, err))) goto out;
    }
    if (ts) tb_emit(&tb, o, tb.n);   /* held-back text that never became a stop string */
    r->gen_s = gen_now() - tf;
    if (ts) {
        r->text = tb.p;
        r->len = tb.n;
        tb.p = NULL;
    }
out:
    sl_tok_stream_free(ts);
    free(tb.p);
    free(hist);
    free(logits);
    return rc;
}

void cli_device_note(const sl_session *s) {
    const char *note;
    sl_session_device(s, &note);
    if (note) fprintf(stderr, "silica: note: %s\n", note);
}

/* ---- KV-cache options ---- */

int cli_kv_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *o, bool *matched) {
    bool missing = false;
    const char *v;
    *matched = true;
    if ((v = cli_opt_value(argc, argv, i, "--kv", &missing))) {
        if (strcmp(v, "f16") == 0) o->kv_dtype = SL_F16;
        else if (strcmp(v, "f32") == 0) o->kv_dtype = SL_F32;
        else if (strcmp(v, "q8") == 0) o->kv_bits = 8;
        else if (strcmp(v, "q4") == 0) o->kv_bits = 4;
        else return cli_usage(cmd, "--kv must be f16, f32, q8 or q4, got '%s'", v);
        return 0;
    }
    if (missing) return cli_usage(cmd, "--kv needs a value");
    static const char *const names[] = {"--kv-bits", "--kv-group-size", "--max-kv-size"};
    for (int k = 0; k < 3; k++) {
        if (!(v = cli_opt_value(argc, argv, i, names[k], &missing))) {
            if (missing) return cli_usage(cmd, "%s needs a value", names[k]);
            continue;
        }
        char *end;
        long x = strtol(v, &end, 10);
        bool num = *v && !*end;
        if (k == 0) {
            if (!num || (x != 4 && x != 8)) return cli_usage(cmd, "--kv-bits must be 4 or 8, got '%s'", v);
            o->kv_bits = (int)x;
        } else if (k == 1) {
            if (!num || (x != 32 && x != 64 && x != 128))
                return cli_usage(cmd, "--kv-group-size must be 32, 64 or 128, got '%s'", v);
            o->kv_group_size = (int)x;
        } else {
            if (!num || x <= SL_KV_KEEP || x > SL_KV_MAX_SIZE)
                return cli_usage(cmd, "--max-kv-size must be an integer in %d..%d (more than the %d attention-sink "
                                      "tokens kept), got '%s'", SL_KV_KEEP + 1, SL_KV_MAX_SIZE, SL_KV_KEEP, v);
            o->max_kv = (int)x;
        }
        return 0;
    }
    *matched = false;
    return 0;
}
