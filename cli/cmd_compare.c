/*
 * cmd_compare.c — `silica compare REF CAND... [options]`: one model through
 * several engines (silica and, where installed, MLX, PyTorch, llama.cpp
 * through part8/adapters), every candidate judged against REF on the
 * reference engine: KL divergence, top-1, perplexity, greedy agreement,
 * speed and memory.  The work is libsilica's (silica/compare.h); this file
 * parses options, builds the token ids with REF's tokenizer, makes
 * --quantize candidates in a temporary directory and prints the reports.
 *
 * Invariants: every model gets the same ids (REF's tokenizer); a candidate
 * that is not a model, or whose vocabulary differs from REF's, is bad input
 * (one line, exit 2) before anything runs; --quantize's temporary models are
 * removed at the end and on Ctrl-C.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gen.h"
#include "silica/compare.h"
#include "silica/gpu.h"
#include "silica/memory.h"

static const char *k_help =
    "usage: silica compare REF CAND... [--text FILE | --prompts FILE | --ids LIST...] [--ctx N]\n"
    "                      [--max-tokens N] [--engines LIST] [--ref-engine E] [--quantize LIST]\n"
    "                      [--device D] [--gpu-layers N] [--json] [--html OUT] [--svg OUT]\n"
    "       silica compare --serve\n\n"
    "Run REF and every CAND (model directories, files or store names) through each engine on the\n"
    "same token ids (REF's tokenizer) and judge each against REF on the reference engine:\n"
    "mean / p99 / max per-token KL divergence, top-1 agreement %, perplexity and its change,\n"
    "identical greedy prefix (mean over prompts), prompt and generation tok/s, time to first\n"
    "token, the engine process's peak RSS, size on disk and bits per weight.\n"
    "Engines are processes speaking one JSON-lines protocol (part8/adapters/PROTOCOL.md):\n"
    "silica's own, and mlx (mlx_lm), torch (transformers), llama.cpp (its libllama) run by\n"
    "$SILICA_PYTHON (default python3); one whose framework is missing gives rows saying\n"
    "\"not installed\".\n\n"
    "options:\n"
    "  --text FILE       ids = [BOS] + encode(text), in windows of --ctx tokens (as `silica ppl`)\n"
    "  --prompts FILE    one prompt per line, each encoded with special tokens (as mlx_lm.generate)\n"
    "  --ids LIST        a prompt of token ids, e.g. 1,17,42 (repeatable; no BOS added)\n"
    "  --ctx N           window size for --text (default 512)\n"
    "  --max-tokens N    greedy tokens generated after each prompt (default 16; 0: none)\n"
    "  --engines LIST    comma-separated: silica, mlx, torch, llama.cpp (default: all of them)\n"
    "  --ref-engine E    engine that runs REF for the reference logits (default silica)\n"
    "  --device D        where silica's engine runs: cpu (default), gpu, gpu:N or auto, as for\n"
    "                    `silica run`; the other engines keep their own device\n"
    "  --gpu-layers N    with a GPU: only silica's last N layers run there, as for `silica run`\n"
    "  --quantize LIST   make candidates from REF first: q2..q8, mxfp4, mxfp8, nvfp4, mixed_3_6...\n"
    "                    (MLX) and Q8_0, Q6_K, Q4_K, Q4_1, Q4_0 (GGUF), into a temporary directory\n"
    "  --json            {\"reference\": {...}, \"rows\": [{\"model\", \"engine\", \"kld_mean\", ...}]}\n"
    "  --html OUT        a self-contained report with inline SVG charts (KLD vs size, speed vs\n"
    "                    memory, per-position KLD)\n"
    "  --svg OUT         the main chart alone (KLD vs bits per weight)\n"
    "  --serve           be silica's engine: answer the adapter protocol on stdin/stdout\n"
    "  --help            this text\n";

#define MAX_MODELS 64
#define MAX_PROMPTS 4096

typedef struct cmp_args {
    const char *models[MAX_MODELS];   /* [0] = REF */
    int n_models;
    const char *text, *prompts;
    const char *ids[MAX_PROMPTS];
    int n_ids;
    long ctx, max_tokens;
    char *engines_s, *quantize_s;
    const char *ref_engine, *html, *svg, *device;
    int gpu_layers;
    bool json, serve;
} cmp_args;

static int parse_long(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return cli_usage(cmd, "%s must be an integer %ld..%ld, got '%s'", opt, lo, hi, v);
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, cmp_args *a) {
    a->ctx = 512;
    a->max_tokens = 16;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        int rc = 0;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 1; }
        if ((v = cli_opt_value(argc, argv, &i, "--text", &missing))) a->text = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--prompts", &missing))) a->prompts = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--ids", &missing))) {
            if (a->n_ids == MAX_PROMPTS) return cli_usage("compare", "at most %d --ids", MAX_PROMPTS);
            a->ids[a->n_ids++] = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--ctx", &missing))) rc = parse_long("compare", "--ctx", v, 2, 1 << 20, &a->ctx);
        else if ((v = cli_opt_value(argc, argv, &i, "--max-tokens", &missing)))
            rc = parse_long("compare", "--max-tokens", v, 0, 1 << 16, &a->max_tokens);
        else if ((v = cli_opt_value(argc, argv, &i, "--engines", &missing))) a->engines_s = strdup(v);
        else if ((v = cli_opt_value(argc, argv, &i, "--quantize", &missing))) a->quantize_s = strdup(v);
        else if ((v = cli_opt_value(argc, argv, &i, "--ref-engine", &missing))) a->ref_engine = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--device", &missing))) {
            sl_device_sel sel;
            sl_error e = {0};
            if (sl_device_parse(v, &sel, &e)) return cli_usage("compare", "%s", e.msg);
            a->device = v;
        }
        else if ((v = cli_opt_value(argc, argv, &i, "--gpu-layers", &missing))) rc = cli_gpu_layers("compare", v, &a->gpu_layers);
        else if ((v = cli_opt_value(argc, argv, &i, "--html", &missing))) a->html = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--svg", &missing))) a->svg = v;
        else if (missing) return cli_usage("compare", "%s needs a value", argv[i]);
        else if (strcmp(argv[i], "--json") == 0) a->json = true;
        else if (strcmp(argv[i], "--serve") == 0) a->serve = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("compare", "unknown option '%s'", argv[i]);
        else if (a->n_models == MAX_MODELS) return cli_usage("compare", "at most %d models", MAX_MODELS);
        else a->models[a->n_models++] = argv[i];
        if (rc) return rc;
    }
    if (a->serve) return 0;
    if (a->n_models < 1) return cli_usage("compare", "missing REF");
    if (a->n_models < 2 && !a->quantize_s && !a->engines_s)
        return cli_usage("compare", "nothing to compare: give CAND models, --quantize or --engines");
    if (!!a->text + !!a->prompts + !!a->n_ids != 1)
        return cli_usage("compare", "give exactly one of --text FILE, --prompts FILE or --ids LIST");
    return 0;
}

/* Split a comma list in place into items[] (empty items are an error). */
static int split(const char *opt, char *s, const char **items, int cap, int *n) {
    *n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (!*t) continue;
        if (*n == cap) return cli_usage("compare", "%s: at most %d items", opt, cap);
        items[(*n)++] = t;
    }
    if (!*n) return cli_usage("compare", "%s: empty list", opt);
    return 0;
}

typedef struct prompt_set {
    sl_cmp_prompt *p;
    int32_t **own;   /* the ids arrays, freed at the end */
    int n, max_len;
    char **texts;    /* --prompts lines (for the tokenizer check), or the --text file as one */
    int n_texts;
} prompt_set;

static void prompts_free(prompt_set *ps) {
    for (int k = 0; k < ps->n; k++) free(ps->own[k]);
    for (int k = 0; k < ps->n_texts; k++) free(ps->texts[k]);
    free(ps->own);
    free(ps->p);
    free(ps->texts);
}

static int add_prompt(prompt_set *ps, int32_t *ids, int n, sl_error *err) {
    if (ps->n == MAX_PROMPTS) {
        free(ids);
        return sl_errorf(err, SL_EINVAL, "more than %d prompts", MAX_PROMPTS);
    }
    if (!ps->p) {
        ps->p = calloc(MAX_PROMPTS, sizeof *ps->p);
        ps->own = calloc(MAX_PROMPTS, sizeof *ps->own);
        if (!ps->p || !ps->own) {
            free(ids);
            return sl_errorf(err, SL_ENOMEM, "out of memory");
        }
    }
    ps->own[ps->n] = ids;
    ps->p[ps->n++] = (sl_cmp_prompt){ids, n};
    if (n > ps->max_len) ps->max_len = n;
    return 0;
}

/* The reference model's text side (silica/generate.h): tokenizer, BOS, config. */
typedef struct ref_model {
    sl_gen_model *gm;
    sl_tokenizer *tok;   /* NULL: no tokenizer (prompts as --ids only) */
    const char *path;
    int32_t bos;
    const sl_model_config *c;
} ref_model;

static int ref_open(const char *path, ref_model *g, sl_error *err) {
    memset(g, 0, sizeof *g);
    int rc = sl_gen_model_open(path, NULL, &g->gm, err);
    if (rc) return rc;
    g->tok = sl_gen_model_tokenizer(g->gm);
    g->path = sl_gen_model_path(g->gm);
    g->bos = sl_gen_model_bos(g->gm);
    g->c = sl_gen_model_config(g->gm);
    return 0;
}

static void ref_close(ref_model *g) {
    sl_gen_model_close(g->gm);
    memset(g, 0, sizeof *g);
}

/* text -> ids with REF's tokenizer; bos >= 0 is put first. */
static int encode(ref_model *g, const char *what, const char *text, size_t len, unsigned flags, int32_t bos,
                  int32_t **ids, int *n, sl_error *err) {
    if (!g->tok) return sl_errorf(err, SL_EINVAL, "%s: the reference has no tokenizer (no tokenizer.json beside it, no tokenizer.ggml.* in a GGUF): use --ids", g->path);
    sl_tok_ids t = {0};
    int rc = 0;
    if (bos >= 0) {
        t.ids = malloc(sizeof *t.ids);
        if (!t.ids) return sl_errorf(err, SL_ENOMEM, "out of memory");
        t.ids[0] = (uint32_t)bos;
        t.n = t.cap = 1;
    }
    if ((rc = sl_tok_encode(g->tok, text, len, flags, &t, err))) sl_error_prefix(err, "%s: ", what);
    else if (t.n > (1u << 24)) rc = sl_errorf(err, SL_EINVAL, "%s: too many tokens", what);
    else if (!(*ids = malloc((t.n ? t.n : 1) * sizeof **ids))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t k = 0; !rc && k < t.n; k++) (*ids)[k] = (int32_t)t.ids[k];
    *n = (int)t.n;
    sl_tok_ids_free(&t);
    return rc;
}

static int build_prompts(const cmp_args *a, ref_model *g, prompt_set *ps, sl_error *err) {
    for (int k = 0; k < a->n_ids; k++) {
        int32_t *ids;
        int n;
        if (sl_parse_ids(a->ids[k], &ids, &n, err)) return SL_EINVAL;
        if (add_prompt(ps, ids, n, err)) return SL_EINVAL;
    }
    const char *file = a->text ? a->text : a->prompts;
    if (!file) return 0;
    char *text;
    size_t len;
    if (sl_read_file(file, (uint64_t)1 << 30, &text, &len, err)) return SL_EIO;
    ps->texts = calloc(a->prompts ? len + 1 : 1, sizeof *ps->texts);
    if (!ps->texts) { free(text); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
    int rc = 0;
    if (a->text) {   /* [BOS] + encode(text), windows of ctx (as silica ppl) */
        int32_t *all;
        int n;
        if (!(rc = encode(g, file, text, len, 0, g->bos >= 0 && g->bos < g->c->vocab_size ? g->bos : -1, &all, &n, err))) {
            if (n < 2) rc = sl_errorf(err, SL_EINVAL, "%s: too little text (%d token(s); at least 2)", file, n);
            for (int s = 0; !rc && s < n; s += (int)a->ctx) {
                int w = n - s < a->ctx ? n - s : (int)a->ctx;
                if (w < 2 && s > 0) break;
                int32_t *ids = malloc((size_t)w * sizeof *ids);
                if (!ids) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
                memcpy(ids, all + s, (size_t)w * sizeof *ids);
                rc = add_prompt(ps, ids, w, err);
            }
            free(all);
            ps->texts[ps->n_texts++] = text;
            text = NULL;
        }
    } else {   /* one prompt per non-empty line */
        for (char *line = text, *next; !rc && line && line < text + len; line = next) {
            next = memchr(line, '\n', (size_t)(text + len - line));
            size_t l = next ? (size_t)(next - line) : (size_t)(text + len - line);
            if (next) next++;
            if (l && line[l - 1] == '\r') l--;
            if (!l) continue;
            int32_t *ids;
            int n;
            if ((rc = encode(g, file, line, l, SL_TOK_ADD_SPECIAL, -1, &ids, &n, err))) break;
            if (n < 1) { free(ids); continue; }
            if (n > a->ctx) { free(ids); rc = sl_errorf(err, SL_EINVAL, "%s: a prompt of %d tokens exceeds --ctx %ld", file, n, a->ctx); break; }
            rc = add_prompt(ps, ids, n, err);
            if (!rc && !(ps->texts[ps->n_texts++] = strndup(line, l))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        }
        if (!rc && !ps->n) rc = sl_errorf(err, SL_EINVAL, "%s: no prompt (one per line)", file);
    }
    free(text);
    return rc;
}

/* Each candidate is a model with REF's vocabulary (bad input otherwise). */
static int check_candidate(const char *path, int vocab, sl_error *err) {
    sl_fit_model *m = NULL;
    if (sl_fit_model_load(path, &m, err)) {
        sl_error e2 = *err;
        return sl_errorf(err, SL_EINVAL, "%s: not a model (%s)", path, e2.msg);
    }
    int v = m->vocab;
    sl_fit_model_free(m);
    if (v != vocab)
        return sl_errorf(err, SL_EINVAL, "%s: vocabulary of %d tokens, the reference has %d: mismatched vocabularies "
                         "cannot be compared token for token", path, v, vocab);
    return 0;
}

/* Whether tokenizer t encodes text exactly as ref does. */
static bool same_ids(sl_tokenizer *ref, sl_tokenizer *t, const char *text, unsigned flags) {
    sl_tok_ids x = {0}, y = {0};
    bool same = sl_tok_encode(ref, text, strlen(text), flags, &x, NULL) == 0 &&
                sl_tok_encode(t, text, strlen(text), flags, &y, NULL) == 0 && x.n == y.n &&
                (x.n == 0 || memcmp(x.ids, y.ids, x.n * sizeof *x.ids) == 0);
    sl_tok_ids_free(&x);
    sl_tok_ids_free(&y);
    return same;
}

/* Labels of candidates whose own tokenizer.json encodes the prompt texts
 * differently from REF's (the comparison still feeds REF's ids to all). */
static cJSON *tokenizer_mismatches(const cmp_args *a, ref_model *g, const char *const *cands,
                                   const char *const *labels, int n, const prompt_set *ps) {
    cJSON *out = cJSON_CreateArray();
    for (int c = 0; c < n && ps->n_texts && g->tok; c++) {
        char *tj = sl_path_join(cands[c], "tokenizer.json");
        sl_tokenizer *t = NULL;
        bool differs = false;
        if (tj && sl_path_is_dir(cands[c]) && sl_path_exists(tj) && sl_tok_load(cands[c], &t, NULL) == 0) {
            for (int k = 0; k < ps->n_texts && !differs; k++)
                differs = !same_ids(g->tok, t, ps->texts[k], a->prompts ? SL_TOK_ADD_SPECIAL : 0);
            sl_tok_free(t);
        }
        free(tj);
        if (differs) cJSON_AddItemToArray(out, cJSON_CreateString(labels[c]));
    }
    return out;
}

static void on_progress(void *ud, int done, int total, const char *model, const char *engine) {
    (void)ud;
    if (!isatty(2)) return;
    if (done >= total) fprintf(stderr, "\r\033[K");
    else fprintf(stderr, "\r\033[K[%d/%d] %s on %s...", done + 1, total, model, engine);
    fflush(stderr);
}

int cmd_compare(int argc, char **argv) {
    cmp_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        free(a.engines_s);
        free(a.quantize_s);
        return rc == 1 ? 0 : rc;
    }
    if (a.serve) return sl_cmp_serve(stdin, stdout);
    const char *engines[16], *specs[32], *cands[MAX_MODELS + 32], *labels[MAX_MODELS + 32];
    int n_eng = 0, n_specs = 0, n_cands = 0;
    static char all_engines[] = "silica,mlx,torch,llama.cpp";
    char *eng_s = a.engines_s ? a.engines_s : all_engines;
    sl_error err = {0};
    ref_model g = {0};
    prompt_set ps = {0};
    sl_outdir work = {0};
    sl_cmp_report *rep = NULL;
    cJSON *mismatch = NULL;
    if ((rc = split("--engines", eng_s, engines, 16, &n_eng))) goto out;
    if (a.quantize_s && (rc = split("--quantize", a.quantize_s, specs, 32, &n_specs))) goto out;
    for (int k = 0; k < n_specs; k++)
        if (!sl_cmp_recipe_known(specs[k], NULL)) {
            rc = cli_usage("compare", "unknown --quantize '%s' (%s)", specs[k], sl_cmp_recipes_supported());
            goto out;
        }
    for (int k = 0; k < n_eng; k++)
        if (!sl_cmp_engine_known(engines[k])) {
            sl_errorf(&err, SL_EINVAL, "unknown engine '%s' (silica, or an adapter NAME_adapter.py in %s)", engines[k],
                      sl_cmp_adapter_dir() ? sl_cmp_adapter_dir() : "part8/adapters");
            goto fail;
        }
    for (int k = 0; k < a.n_models; k++) {
        const char *name = NULL;
        if (cli_resolve_store(&a.models[k], &name)) { rc = 2; goto out; }
        if (k) cands[n_cands] = a.models[k], labels[n_cands++] = name ? name : a.models[k];
    }
    if (ref_open(a.models[0], &g, &err)) {
        sl_error e2 = err;
        sl_errorf(&err, SL_EINVAL, "%s: the reference is not a model silica runs (%s)", a.models[0], e2.msg);
        goto fail;
    }
    int vocab = g.c->vocab_size;
    for (int k = 0; k < n_cands; k++)
        if (check_candidate(cands[k], vocab, &err)) goto fail;
    if (build_prompts(&a, &g, &ps, &err)) goto fail;
    if (n_specs) {
        const char *td = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/silica-compare-%ld", td && *td ? td : "/tmp", (long)getpid());
        if (sl_outdir_open(&work, path, true, &err)) goto fail;
        for (int k = 0; k < n_specs; k++) {
            char *p;
            if (isatty(2)) fprintf(stderr, "\r\033[Kquantizing %s...", specs[k]), fflush(stderr);
            if (sl_cmp_make_candidate(a.models[0], specs[k], work.tmp_path, &p, NULL, &err)) goto fail;
            cands[n_cands] = p;
            labels[n_cands++] = specs[k];
        }
    }
    mismatch = tokenizer_mismatches(&a, &g, cands, labels, n_cands, &ps);
    for (int k = 0; k < cJSON_GetArraySize(mismatch); k++)
        fprintf(stderr, "silica: warning: %s: its tokenizer encodes the prompts differently from the reference's; "
                        "the reference's ids are used\n", cJSON_GetArrayItem(mismatch, k)->valuestring);
    sl_cmp_opts o = {.ref = a.models[0], .ref_engine = a.ref_engine, .cands = cands, .cand_labels = labels,
                     .n_cands = n_cands, .engines = engines, .n_engines = n_eng, .prompts = ps.p,
                     .n_prompts = ps.n, .n_ctx = ps.max_len + (int)a.max_tokens, .max_tokens = (int)a.max_tokens,
                     .vocab = vocab, .device = a.device, .gpu_layers = a.gpu_layers, .progress = on_progress};
    if (sl_cmp_run(&o, &rep, &err)) goto fail;
    if (a.svg && sl_cmp_report_svg(rep, a.svg, &err)) goto fail;
    if (a.html && sl_cmp_report_html(rep, a.html, &err)) goto fail;
    if (a.json) {
        cJSON *j = sl_cmp_report_json(rep);
        cJSON_AddItemToObject(cJSON_GetObjectItem(j, "reference"), "tokenizer_mismatch", mismatch);
        mismatch = NULL;
        cli_print_json(j);
    } else {
        sl_cmp_report_table(rep, stdout);
    }
    goto out;
fail:
    rc = err.code == SL_EINTR ? 130 : cli_fail(&err);
out:
    if (work.tmp_path) sl_outdir_abort(&work);
    for (int k = a.n_models - 1; k < n_cands; k++) free((char *)cands[k]);   /* the --quantize ones */
    cJSON_Delete(mismatch);
    sl_cmp_report_free(rep);
    prompts_free(&ps);
    ref_close(&g);
    free(a.engines_s);
    free(a.quantize_s);
    return rc;
}
