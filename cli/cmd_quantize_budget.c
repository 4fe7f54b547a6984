/*
 * cmd_quantize_budget.c — `silica quantize SRC DST --budget SIZE [--ctx N]
 * [--calib FILE] [--format mlx|gguf] [--json]`: make every
 * candidate recipe of the format from SRC, keep those whose fit total
 * (weights + KV cache at --ctx + overhead: memory.h's estimator, exactly
 * what `silica run --max-memory SIZE --ctx N` checks) is within SIZE,
 * measure their KL divergence to SRC on the calibration text with the
 * comparison machinery (compare.h), and write the least-KLD one to DST.
 *
 * Invariants: candidates are built in DST.candidates (removed at the end
 * and on Ctrl-C); DST appears only by rename of the chosen candidate; when
 * nothing fits, nothing is written and the smallest need is reported.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gen.h"
#include "silica/compare.h"
#include "silica/memory.h"

static const char *k_help =
    "usage: silica quantize SRC DST --budget SIZE [--ctx N] [--calib FILE] [--format mlx|gguf] [--json]\n\n"
    "Pick the quantization that fits a memory budget with the least damage: every recipe of the\n"
    "format is made from SRC; those whose fit total (weights + KV cache at --ctx + overhead, as\n"
    "`silica fit` and `silica run --max-memory` estimate it) is within SIZE are run on the\n"
    "calibration text next to SRC (silica compare's KL divergence); the one with the least mean KL\n"
    "divergence is written to DST, and the table it was chosen from is printed.\n"
    "  mlx recipes:  q8, q6, q5, q4, mixed_4_6, mixed_3_6, q3, mixed_3_4, mixed_2_6, q2\n"
    "  gguf types:   Q8_0, Q6_K, Q4_K, Q4_1, Q4_0\n\n"
    "options:\n"
    "  --budget SIZE     memory budget (512M, 8G, 1.5GiB)\n"
    "  --ctx N           context the model must fit with (default 4096)\n"
    "  --calib FILE      calibration text in the model's domain (required), scored in windows of\n"
    "                    512 tokens as `silica ppl` does\n"
    "  --format F        mlx (default for a model directory) or gguf (default for a GGUF file)\n"
    "  --json            {\"budget\", \"ctx\", \"chosen\", \"candidates\": [...]}\n"
    "DST must not exist.\n";

static const char *const k_mlx[] = {"q8", "q6", "q5", "q4", "mixed_4_6", "mixed_3_6", "q3", "mixed_3_4", "mixed_2_6", "q2"};
static const char *const k_gguf[] = {"Q8_0", "Q6_K", "Q4_K", "Q4_1", "Q4_0"};

typedef struct cand {
    const char *recipe;
    char *path;
    uint64_t file_bytes, total;
    double bpw;
    bool fits;
    const sl_cmp_row *row;   /* measured (fits only) */
} cand;

static int usage(const char *fmt, const char *v) { return cli_usage("quantize", fmt, v); }

/* The calibration windows: [BOS] + encode(text), windows of 512 tokens (as ppl). */
static int calib_prompts(const char *src, const char *file, sl_cmp_prompt **out, int32_t **all, int *n_out,
                         int *vocab, sl_error *err) {
    sl_gen_model *g = NULL;
    char *text = NULL;
    size_t len = 0;
    sl_tok_ids t = {0};
    int rc = sl_gen_model_open(src, NULL, &g, err);
    sl_tokenizer *tok = rc ? NULL : sl_gen_model_tokenizer(g);
    const sl_model_config *c = rc ? NULL : sl_gen_model_config(g);
    int32_t bos = rc ? -1 : sl_gen_model_bos(g);
    if (!rc && !tok) rc = sl_errorf(err, SL_EINVAL, "%s: no tokenizer (no tokenizer.json beside the model, no tokenizer.ggml.* in a GGUF): --budget encodes --calib", src);
    if (!rc) rc = sl_read_file(file, (uint64_t)1 << 30, &text, &len, err);
    if (!rc && bos >= 0 && bos < c->vocab_size) {
        t.ids = malloc(sizeof *t.ids);
        if (!t.ids) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else t.ids[0] = (uint32_t)bos, t.n = t.cap = 1;
    }
    if (!rc && (rc = sl_tok_encode(tok, text, len, 0, &t, err))) sl_error_prefix(err, "%s: ", file);
    if (!rc && (t.n < 2 || t.n > (1u << 24))) rc = sl_errorf(err, SL_EINVAL, "%s: %zu tokens (2 to 2^24 needed)", file, t.n);
    int n = (int)t.n, W = 512, np = (n + W - 1) / W;
    if (!rc && (!(*all = malloc((size_t)n * sizeof **all)) || !(*out = calloc((size_t)np, sizeof **out))))
        rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc) {
        *vocab = c->vocab_size;
        for (int k = 0; k < n; k++) (*all)[k] = (int32_t)t.ids[k];
        *n_out = 0;
        for (int s = 0; s < n; s += W)
            if (s == 0 || n - s >= 2) (*out)[(*n_out)++] = (sl_cmp_prompt){*all + s, n - s < W ? n - s : W};
    }
    sl_tok_ids_free(&t);
    free(text);
    sl_gen_model_close(g);
    return rc;
}

static void print_table(const cand *c, int n, uint64_t budget, int64_t ctx, const char *chosen, bool json) {
    if (json) {
        cJSON *j = cJSON_CreateObject(), *arr;
        cJSON_AddNumberToObject(j, "budget", (double)budget);
        cJSON_AddNumberToObject(j, "ctx", (double)ctx);
        if (chosen) cJSON_AddStringToObject(j, "chosen", chosen);
        else cJSON_AddNullToObject(j, "chosen");
        arr = cJSON_AddArrayToObject(j, "candidates");
        for (int k = 0; k < n; k++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "recipe", c[k].recipe);
            cJSON_AddNumberToObject(o, "file_bytes", (double)c[k].file_bytes);
            cJSON_AddNumberToObject(o, "bits_per_weight", c[k].bpw);
            cJSON_AddNumberToObject(o, "fit_total_bytes", (double)c[k].total);
            cJSON_AddBoolToObject(o, "fits", c[k].fits);
            const sl_cmp_row *r = c[k].row && !c[k].row->error ? c[k].row : NULL;
            if (r) {
                cJSON_AddNumberToObject(o, "kld_mean", r->st.kld_mean);
                cJSON_AddNumberToObject(o, "kld_p99", r->st.kld_p99);
                cJSON_AddNumberToObject(o, "top1", r->st.top1);
                cJSON_AddNumberToObject(o, "ppl", r->st.ppl);
            } else {
                cJSON_AddNullToObject(o, "kld_mean");
            }
            cJSON_AddItemToArray(arr, o);
        }
        cli_print_json(j);
        return;
    }
    char b[32], t[32];
    printf("budget %s at --ctx %lld\n%-10s %6s %10s %10s %5s %10s %10s %7s %10s\n", cli_human_bytes(budget, b, sizeof b),
           (long long)ctx, "recipe", "bpw", "size", "fit total", "fits", "KLD mean", "KLD p99", "top1%", "ppl");
    for (int k = 0; k < n; k++) {
        const sl_cmp_row *r = c[k].row && !c[k].row->error ? c[k].row : NULL;
        printf("%-10s %6.2f %10s %10s %5s", c[k].recipe, c[k].bpw, cli_human_bytes(c[k].file_bytes, b, sizeof b),
               cli_human_bytes(c[k].total, t, sizeof t), c[k].fits ? "yes" : "no");
        if (r) printf(" %10.4g %10.4g %7.2f %10.4f%s\n", r->st.kld_mean, r->st.kld_p99, r->st.top1, r->st.ppl,
                      chosen && !strcmp(chosen, c[k].recipe) ? "  <- chosen" : "");
        else printf(" %10s %10s %7s %10s\n", "-", "-", "-", "-");
    }
}

/* Build every recipe in dir, with its fit total at ctx. */
static int build(const char *src, const char *const *recipes, int n, const char *dir, int64_t ctx, uint64_t budget,
                 cand *c, sl_error *err) {
    for (int k = 0; k < n; k++) {
        c[k].recipe = recipes[k];
        if (isatty(2)) fprintf(stderr, "\r\033[Kquantizing %s...", recipes[k]), fflush(stderr);
        if (sl_cmp_make_candidate(src, recipes[k], dir, &c[k].path, NULL, err)) return SL_EINVAL;
        sl_cmp_model_size(c[k].path, &c[k].file_bytes, &c[k].bpw);
        sl_fit_model *m = NULL;
        sl_fit_kv kv = {.type = SL_KV_F16};
        sl_fit_estimate e;
        if (sl_fit_model_load(c[k].path, &m, err) || sl_fit_estimate_ex(m, ctx, &kv, &e, err)) {
            sl_fit_model_free(m);
            return SL_EINVAL;
        }
        sl_fit_model_free(m);
        c[k].total = e.total_bytes;
        c[k].fits = e.total_bytes <= budget;
    }
    if (isatty(2)) fprintf(stderr, "\r\033[K");
    return 0;
}

int cmd_quantize_budget(int argc, char **argv) {
    const char *src = NULL, *dst = NULL, *calib = NULL, *format = NULL;
    uint64_t budget = 0;
    long ctx = 4096;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        if ((v = cli_opt_value(argc, argv, &i, "--budget", &missing))) {
            if (sl_mem_parse_size(v, &budget) || budget < (1u << 20)) return usage("--budget '%s': expected a size such as 512M or 8G", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--ctx", &missing))) {
            char *end;
            ctx = strtol(v, &end, 10);
            if (end == v || *end || ctx < 1 || ctx > SL_FIT_MAX_CTX) return usage("--ctx '%s': expected 1..16777216", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--calib", &missing))) calib = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--format", &missing))) {
            if (strcmp(v, "mlx") && strcmp(v, "gguf")) return usage("--format '%s': expected mlx or gguf", v);
            format = v;
        } else if (missing) return usage("%s needs a value", argv[i]);
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (argv[i][0] == '-' && argv[i][1]) return usage("unknown option '%s' (with --budget)", argv[i]);
        else if (!src) src = argv[i];
        else if (!dst) dst = argv[i];
        else return usage("unexpected argument '%s'", argv[i]);
    }
    if (!src || !dst) return cli_usage("quantize", "expected SRC and DST");
    if (!calib) return cli_usage("quantize", "--budget needs --calib FILE (text to measure the damage on)");
    if (cli_resolve_store(&src, NULL)) return 2;
    bool dir = sl_path_is_dir(src);
    if (!format) format = dir ? "mlx" : "gguf";
    if (!strcmp(format, "mlx") && !dir) return usage("%s: --format mlx needs a model directory", src);
    if (sl_path_exists(dst)) return usage("%s exists: remove it first", dst);
    bool gguf = !strcmp(format, "gguf");
    const char *const *recipes = gguf ? k_gguf : k_mlx;
    int n = gguf ? 5 : 10;
    cand c[10] = {{0}};
    sl_error err = {0};
    sl_outdir work = {0};
    sl_cmp_prompt *prompts = NULL;
    int32_t *all = NULL;
    int n_prompts = 0, vocab = 0, rc = 0, best = -1;
    sl_cmp_report *rep = NULL;
    char wpath[4096];
    snprintf(wpath, sizeof wpath, "%s.candidates", dst);
    if (calib_prompts(src, calib, &prompts, &all, &n_prompts, &vocab, &err)) goto fail;
    if (sl_outdir_open(&work, wpath, true, &err)) goto fail;
    if (build(src, recipes, n, work.tmp_path, ctx, budget, c, &err)) goto fail;
    const char *paths[10], *labels[10];
    int n_fit = 0, idx[10];
    for (int k = 0; k < n; k++)
        if (c[k].fits) idx[n_fit] = k, paths[n_fit] = c[k].path, labels[n_fit++] = c[k].recipe;
    if (n_fit) {
        const char *engines[] = {"silica"};
        int W = 0;
        for (int k = 0; k < n_prompts; k++) W = prompts[k].n > W ? prompts[k].n : W;
        sl_cmp_opts o = {.ref = src, .cands = paths, .cand_labels = labels, .n_cands = n_fit, .engines = engines,
                         .n_engines = 1, .prompts = prompts, .n_prompts = n_prompts, .n_ctx = W, .vocab = vocab};
        if (sl_cmp_run(&o, &rep, &err)) goto fail;
        for (int r = 1; r < rep->n_rows; r++) {   /* row 0: SRC itself */
            sl_cmp_row *row = &rep->rows[r];
            c[idx[r - 1]].row = row;
            if (!row->error && (best < 0 || row->st.kld_mean < c[best].row->st.kld_mean)) best = idx[r - 1];
        }
    }
    print_table(c, n, budget, ctx, best >= 0 ? c[best].recipe : NULL, json);
    if (best < 0) {
        uint64_t need = c[0].total;
        for (int k = 1; k < n; k++) need = c[k].total < need ? c[k].total : need;
        char b[32], t[32];
        sl_errorf(&err, SL_EINVAL, "no %s recipe fits %s at --ctx %ld (the smallest needs %s): raise --budget or lower --ctx",
                  format, cli_human_bytes(budget, b, sizeof b), ctx, cli_human_bytes(need, t, sizeof t));
        goto fail;
    }
    if (rename(c[best].path, dst) != 0) {
        sl_errorf(&err, SL_EIO, "%s: cannot move the chosen model into place", dst);
        goto fail;
    }
    if (!json) printf("wrote %s (%s, %.2f bits per weight)\n", dst, c[best].recipe, c[best].bpw);
    goto out;
fail:
    rc = err.code == SL_EINTR ? 130 : cli_fail(&err);
out:
    if (work.tmp_path) sl_outdir_abort(&work);
    for (int k = 0; k < n; k++) free(c[k].path);
    sl_cmp_report_free(rep);
    free(prompts);
    free(all);
    return rc;
}
