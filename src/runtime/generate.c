/*
 * generate.c — a model ready to generate (generate.h): the checkpoint, its
 * tokenizer, chat template and end-of-sequence ids, the default (demo)
 * model, and prompt building as mlx_lm.generate does it.
 * Sequences, stop strings and the batched step: gen_seq.c.
 *
 * Invariants:
 *  - The tokenizer is found in one place (sl_tok_load_for_model): the one
 *    the user named, else a GGUF's own tokenizer.ggml.* metadata, else the
 *    tokenizer.json / tokenizer.model beside the model; the chat template
 *    comes from the same source (template_source).
 *  - EOS ids as mlx_lm.load: generation_config.json's eos_token_id (int or
 *    list), else config.json's, plus the tokenizer's eos_token; no duplicates,
 *    first seen first.
 *  - With a chat template the rendered string is encoded with
 *    add_special_tokens=False (the template writes BOS itself); plain text is
 *    encoded with add_special_tokens=True (mlx_lm.generate).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gen_impl.h"
#include "silica/io.h"

/* dirname of p into buf (no trailing slash); "." for a bare name. */
static void dir_of(const char *p, char *buf, size_t cap) {
    const char *s = strrchr(p, '/');
    if (!s) snprintf(buf, cap, ".");
    else if (s == p) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(s - p), p);
}

const char *sl_gen_default_model(void) {
    static char buf[PATH_MAX + 32];
    const char *env = getenv("SILICA_DEFAULT_MODEL");
    if (env && *env) return env;
    if (sl_installed_path("models/demo", buf, sizeof buf) && sl_path_is_dir(buf)) return buf;
    char d[PATH_MAX];
    if (sl_exe_dir(d, sizeof d)) {
        snprintf(buf, sizeof buf, "%s/../models/demo", d);
        if (sl_path_is_dir(buf)) return buf;
    }
    /* The source tree: this file is <root>/src/runtime/generate.c (absolute in CMake builds). */
    char a[PATH_MAX], b[PATH_MAX];
    dir_of(__FILE__, a, sizeof a);
    dir_of(a, b, sizeof b);
    dir_of(b, a, sizeof a);
    snprintf(buf, sizeof buf, "%s/models/demo", a);
    return sl_path_is_dir(buf) ? buf : NULL;
}

static void add_eos(sl_gen_model *g, double v) {
    if (!(v >= 0 && v <= INT32_MAX) || v != (double)(int32_t)v) return;
    int32_t id = (int32_t)v;
    for (int k = 0; k < g->n_eos; k++)
        if (g->eos[k] == (int32_t)id) return;
    if (g->n_eos < SL_GEN_MAX_EOS) g->eos[g->n_eos++] = (int32_t)id;
}

static cJSON *read_json(const char *path) {
    char *txt = NULL;
    size_t len;
    if (!sl_path_exists(path) || sl_read_file(path, 16u << 20, &txt, &len, NULL)) return NULL;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    return j;
}

/* Where the chat template comes from: the tokenizer the user named (a GGUF
 * or folder itself, a tokenizer.json's folder), else the model: a GGUF with
 * tokenizer.chat_template, else the model's folder. */
static void template_source(const char *model, const char *tokenizer, char *buf, size_t cap) {
    const char *p = tokenizer ? tokenizer : model;
    if (sl_path_is_dir(p) || sl_str_ends_with(p, ".gguf") || !tokenizer) snprintf(buf, cap, "%s", p);
    else dir_of(p, buf, cap);
    if (!tokenizer && !sl_path_is_dir(p) && !sl_tmpl_has_chat_template(buf)) dir_of(p, buf, cap);
}

/* EOS ids from generation_config.json, else config.json, then the tokenizer. */
static void collect_eos(sl_gen_model *g, const char *dir) {
    char *gp = sl_path_join(dir, "generation_config.json");
    cJSON *j = gp ? read_json(gp) : NULL, *x;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
    if (cJSON_IsNumber(e)) add_eos(g, e->valuedouble);
    else if (cJSON_IsArray(e))
        cJSON_ArrayForEach(x, e) if (cJSON_IsNumber(x)) add_eos(g, x->valuedouble);
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
}

/* With tools, transformers renders the named "tool_use" template when the
 * model has one; the tool-call format is read from the template used with
 * tools.  *src (the default template's source) may be replaced. */
static int load_tool_template(sl_gen_model *g, const char *tdir, char **src, sl_error *err) {
    char *tsrc = NULL;
    int rc = sl_tmpl_load_chat_template(tdir, NULL, 1, &tsrc, NULL, err);
    if (rc) return rc;
    if (strcmp(tsrc, *src) != 0) {
        rc = sl_tmpl_compile(tsrc, strlen(tsrc), tdir, &g->tmpl_tools, err);
        free(*src);
        *src = tsrc;
        tsrc = NULL;
    }
    free(tsrc);
    g->tool_format = sl_tool_format_of_template(*src, strlen(*src));
    return rc;
}

int sl_gen_model_open(const char *path, const sl_gen_model_opts *opts, sl_gen_model **out, sl_error *err) {
    *out = NULL;
    sl_gen_model *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&g->gvocab_mu, NULL);
    g->bos = -1;
    int rc = sl_model_open(path, &g->m, err);
    if (rc) {
        sl_gen_model_close(g);
        return rc;
    }
    g->c = sl_model_get_config(g->m);
    char dir[PATH_MAX], tdir[PATH_MAX];
    if (sl_path_is_dir(path)) snprintf(dir, sizeof dir, "%s", path);
    else dir_of(path, dir, sizeof dir);
    const char *explicit = opts ? opts->tokenizer : NULL;
    /* the one place a model's tokenizer is chosen (tokenizer.h: a GGUF's own metadata, tokenizer.json...) */
    if ((rc = sl_tok_load_for_model(path, explicit, &g->tok, err))) {
        sl_gen_model_close(g);
        return rc;
    }
    template_source(path, explicit, tdir, sizeof tdir);
    if (g->tok && sl_tmpl_has_chat_template(tdir)) {
        char *src = NULL;
        if ((rc = sl_tmpl_load_chat_template(tdir, NULL, 0, &src, &g->special, err)) ||
            (rc = sl_tmpl_compile(src, strlen(src), tdir, &g->tmpl, err)) || (rc = load_tool_template(g, tdir, &src, err))) {
            free(src);
            sl_gen_model_close(g);
            return rc;
        }
        free(src);
    }
    collect_eos(g, dir);
    *out = g;
    return 0;
}

void sl_gen_model_close(sl_gen_model *g) {
    if (!g) return;
    sl_tmpl_free(g->tmpl);
    sl_tmpl_free(g->tmpl_tools);
    cJSON_Delete(g->special);
    sl_tok_free(g->tok);
    sl_model_close(g->m);
    sl_grammar_vocab_free(g->gvocab);
    pthread_mutex_destroy(&g->gvocab_mu);
    free(g->path);
    free(g);
}

int gen_grammar_vocab(sl_gen_model *g, const sl_grammar_vocab **out, sl_error *err) {
    *out = NULL;
    if (!g->tok) return sl_errorf(err, SL_EINVAL, "%s: structured output needs the model's tokenizer", g->path);
    pthread_mutex_lock(&g->gvocab_mu);
    int rc = g->gvocab ? 0 : sl_grammar_vocab_new(g->tok, g->c->vocab_size, &g->gvocab, err);
    pthread_mutex_unlock(&g->gvocab_mu);
    if (rc) sl_error_prefix(err, "%s: ", g->path);
    *out = g->gvocab;
    return rc;
}

const sl_model *sl_gen_model_get(const sl_gen_model *g) { return g->m; }
const sl_model_config *sl_gen_model_config(const sl_gen_model *g) { return g->c; }
const char *sl_gen_model_path(const sl_gen_model *g) { return g->path; }
sl_tokenizer *sl_gen_model_tokenizer(const sl_gen_model *g) { return g->tok; }
bool sl_gen_model_has_template(const sl_gen_model *g) { return g->tmpl != NULL; }
sl_tool_format sl_gen_model_tool_format(const sl_gen_model *g) { return g->tool_format; }
int32_t sl_gen_model_bos(const sl_gen_model *g) { return g->bos; }
const int32_t *sl_gen_model_eos(const sl_gen_model *g, int *n) {
    *n = g->n_eos;
    return g->eos;
}

/* ---- prompts ---- */

static int append(char **s, size_t *n, const char *t, size_t k, bool nl) {
    char *p = realloc(*s, *n + k + 2);
    if (!p) return -1;
    memcpy(p + *n, t, k);
    *n += k;
    if (nl) p[(*n)++] = '\n';
    p[*n] = 0;
    *s = p;
    return 0;
}

/* The plain transcript: "System: s\nUser: u\nAssistant: a\nUser: u2\nAssistant:".
 * An answer's leading spaces (the one the model wrote after "Assistant:")
 * are dropped, so it is not doubled. */
static int plain_transcript(const cJSON *msgs, char **out, size_t *len, sl_error *err) {
    char *s = calloc(1, 1);
    size_t n = 0;
    const cJSON *m;
    bool bad = !s;
    cJSON_ArrayForEach(m, msgs) {
        if (bad) break;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role"), *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c)) continue;
        const char *who = !strcmp(r->valuestring, "system") ? "System: "
                          : !strcmp(r->valuestring, "assistant") ? "Assistant: " : "User: ";
        const char *t = c->valuestring;
        while (*t == ' ') t++;
        bad = append(&s, &n, who, strlen(who), false) || append(&s, &n, t, strlen(t), true);
    }
    if (bad || append(&s, &n, "Assistant:", 10, false)) {
        free(s);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    *out = s;
    *len = n;
    return 0;
}

/* The template's context: special tokens, messages, tools, extra variables. */
static int render_template(const sl_gen_model *g, const sl_gen_prompt_opts *o, char **text, size_t *len, sl_error *err) {
    cJSON *ctx = cJSON_Duplicate(g->special, 1);
    cJSON *norm = sl_tmpl_normalize_messages(o->messages, err);
    if (!ctx || !norm) {
        cJSON_Delete(ctx);
        cJSON_Delete(norm);
        return norm ? sl_errorf(err, SL_ENOMEM, "out of memory") : SL_EINVAL;
    }
    const cJSON *v;
    if (cJSON_IsObject(o->template_vars))
        cJSON_ArrayForEach(v, o->template_vars) {
            cJSON_DeleteItemFromObjectCaseSensitive(ctx, v->string);
            cJSON_AddItemToObject(ctx, v->string, cJSON_Duplicate(v, 1));
        }
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, "messages");
    cJSON_AddItemToObject(ctx, "messages", norm);
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, "tools");
    cJSON_AddItemToObject(ctx, "tools", o->tools ? cJSON_Duplicate(o->tools, 1) : cJSON_CreateNull());
    if (!cJSON_GetObjectItemCaseSensitive(ctx, "documents")) cJSON_AddItemToObject(ctx, "documents", cJSON_CreateNull());
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, "add_generation_prompt");
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", !o->no_generation_prompt);
    int rc = sl_tmpl_render(o->tools && g->tmpl_tools ? g->tmpl_tools : g->tmpl, ctx, NULL, text, len, err);
    cJSON_Delete(ctx);
    return rc;
}

/* What the prompt is: *templated when the model's template rendered it. */
static int prompt_text(const sl_gen_model *g, const sl_gen_prompt_opts *o, char **text, size_t *len, bool *templated,
                       sl_error *err) {
    *text = NULL;
    *len = 0;
    *templated = false;
    if (!g->tok) return sl_errorf(err, SL_EINVAL, "%s: no tokenizer.json beside the model: pass token ids with --ids", g->path);
    if (o->messages && g->tmpl && !o->no_template) {
        *templated = true;
        return render_template(g, o, text, len, err);
    }
    if (o->text) {
        if (!(*text = malloc(o->text_len + 1))) return sl_errorf(err, SL_ENOMEM, "out of memory");
        memcpy(*text, o->text, o->text_len);
        (*text)[o->text_len] = 0;
        *len = o->text_len;
        return 0;
    }
    if (o->messages) return plain_transcript(o->messages, text, len, err);
    return sl_errorf(err, SL_EINVAL, "%s: no prompt (neither messages nor text)", g->path);
}

/* The prompt text, then the answer's forced opening when there is one. */
static int full_prompt(const sl_gen_model *g, const sl_gen_prompt_opts *o, char **text, size_t *len, bool *templated,
                       sl_error *err) {
    int rc = prompt_text(g, o, text, len, templated, err);
    if (rc || !o->answer_prefix || !o->answer_prefix[0]) return rc;
    size_t k = strlen(o->answer_prefix);
    char *t = realloc(*text, *len + k + 1);
    if (!t) {
        free(*text);
        *text = NULL;
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    memcpy(t + *len, o->answer_prefix, k + 1);
    *text = t;
    *len += k;
    return 0;
}

int sl_gen_render(const sl_gen_model *g, const sl_gen_prompt_opts *o, char **text, size_t *len, sl_error *err) {
    bool templated;
    return full_prompt(g, o, text, len, &templated, err);
}

int sl_gen_prompt(const sl_gen_model *g, const sl_gen_prompt_opts *o, int32_t **ids, int *n, sl_error *err) {
    *ids = NULL;
    *n = 0;
    char *text = NULL;
    size_t len = 0;
    bool templated;
    int rc = full_prompt(g, o, &text, &len, &templated, err);
    if (rc) return rc;
    sl_tok_ids t = {0};
    rc = sl_tok_encode(g->tok, text, len, templated ? 0 : SL_TOK_ADD_SPECIAL, &t, err);
    free(text);
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
