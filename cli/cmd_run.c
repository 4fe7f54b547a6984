/*
 * cmd_run.c — `silica run MODEL --ids 1,2,3 --max-tokens N [sampling] [--json]`:
 * generate token ids.  The prompt is processed in batches, then one token
 * per step; ids stream to stdout as they are produced (or one JSON object at
 * the end with --json).  Prompt text and chat templates arrive with the
 * tokenizer wiring; for now --ids is required.
 * Stops at an EOS id (config.json / generation_config.json) or max-tokens.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "silica/model.h"
#include "silica/runtime.h"

int cli_engine_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *o, bool *matched);

static const char *k_help =
    "usage: silica run MODEL --ids 1,2,3 [--max-tokens N] [--temp T] [--top-k K] [--top-p P]\n"
    "                  [--min-p P] [--repeat-penalty R] [--presence-penalty X] [--frequency-penalty X]\n"
    "                  [--penalty-window N] [--seed S] [--ctx N] [--kv f16|f32] [--threads N] [--stats] [--json]\n\n"
    "Generate token ids from a prompt of token ids (no template, no BOS added).\n\n"
    "options:\n"
    "  --ids LIST            prompt token ids, comma-separated\n"
    "  --max-tokens N        tokens to generate at most (default 100)\n"
    "  --temp T              temperature; 0 (default) is greedy\n"
    "  --top-k K, --top-p P, --min-p P   filters (off: 0, 1, 0)\n"
    "  --repeat-penalty R    divide positive / multiply negative logits of recent ids (default 1: off)\n"
    "  --presence-penalty X, --frequency-penalty X   subtract X (x count) for recent ids\n"
    "  --penalty-window N    how many recent ids the penalties look at (default 64)\n"
    "  --seed S              random seed (default 0); same seed, same output\n"
    "  --ctx N               context size (default: prompt + max-tokens)\n"
    "  --kv TYPE             KV cache f16 (default) or f32\n"
    "  --threads N           worker threads (default: physical cores)\n"
    "  --stats               timings on stderr\n"
    "  --json                {\"ids\", \"text\", \"prompt_tokens\", \"generated_tokens\", \"prompt_tps\",\n"
    "                         \"gen_tps\", \"ttft_ms\", \"peak_rss_bytes\", \"stop_reason\"}\n"
    "  --help                this text\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long long peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#ifdef __APPLE__
    return (long long)ru.ru_maxrss;
#else
    return (long long)ru.ru_maxrss * 1024;
#endif
}

static int parse_float(const char *cmd, const char *opt, const char *v, float *out) {
    char *end;
    double x = strtod(v, &end);
    if (*end || !isfinite(x)) return cli_usage(cmd, "%s must be a number, got '%s'", opt, v);
    *out = (float)x;
    return 0;
}

/* EOS ids from generation_config.json beside config.json (added to the config's). */
static void eos_from_generation_config(const char *path, int32_t *eos, int *n) {
    char *gp = sl_path_join(path, "generation_config.json");
    char *txt = NULL;
    size_t len;
    if (gp && sl_path_is_dir(path) && sl_path_exists(gp) && sl_read_file(gp, 1 << 20, &txt, &len, NULL) == 0) {
        cJSON *j = cJSON_ParseWithLength(txt, len);
        cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id"), *x;
        if (cJSON_IsNumber(e) && *n < 16) eos[(*n)++] = (int32_t)e->valuedouble;
        else if (cJSON_IsArray(e))
            cJSON_ArrayForEach(x, e) if (cJSON_IsNumber(x) && *n < 16) eos[(*n)++] = (int32_t)x->valuedouble;
        cJSON_Delete(j);
    }
    free(txt);
    free(gp);
}

int cmd_run(int argc, char **argv) {
    const char *path = NULL, *ids_s = NULL;
    bool json = false, stats = false;
    long max_tokens = 100;
    sl_session_opts so = {0};
    sl_sampler_params sp;
    sl_sampler_defaults(&sp);
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        int rc = cli_engine_opt(argc, argv, &i, "run", &so, &matched);
        if (rc) return rc;
        if (matched) continue;
        static const char *const fopts[] = {"--temp", "--top-p", "--min-p", "--repeat-penalty", "--presence-penalty",
                                            "--frequency-penalty"};
        float *fdst[] = {&sp.temperature, &sp.top_p, &sp.min_p, &sp.repeat_penalty, &sp.presence_penalty,
                         &sp.frequency_penalty};
        bool done = false;
        for (int k = 0; k < 6 && !done; k++) {
            if ((v = cli_opt_value(argc, argv, &i, fopts[k], &missing))) {
                if ((rc = parse_float("run", fopts[k], v, fdst[k]))) return rc;
                done = true;
            } else if (missing) {
                return cli_usage("run", "%s needs a value", fopts[k]);
            }
        }
        if (done) continue;
        static const char *const iopts[] = {"--max-tokens", "--top-k", "--seed", "--penalty-window"};
        for (int k = 0; k < 4 && !done; k++) {
            if ((v = cli_opt_value(argc, argv, &i, iopts[k], &missing))) {
                char *end;
                long long x = strtoll(v, &end, 10);
                if (*end || x < 0 || (k != 2 && x > (1 << 30)))
                    return cli_usage("run", "%s must be a non-negative integer, got '%s'", iopts[k], v);
                if (k == 0) max_tokens = (long)x;
                else if (k == 1) sp.top_k = (int)x;
                else if (k == 2) sp.seed = (uint64_t)x;
                else sp.penalty_window = (int)x;
                done = true;
            } else if (missing) {
                return cli_usage("run", "%s needs a value", iopts[k]);
            }
        }
        if (done) continue;
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--stats") == 0) stats = true;
        else if ((v = cli_opt_value(argc, argv, &i, "--ids", &missing))) ids_s = v;
        else if (missing) return cli_usage("run", "--ids needs a value");
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("run", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("run", "text prompts need the tokenizer, not wired in yet: pass --ids");
    }
    if (!path) return cli_usage("run", "missing MODEL");
    if (!ids_s) return cli_usage("run", "missing --ids (text prompts come with the tokenizer)");
    sl_error err = {0};
    int32_t *ids = NULL, *hist = NULL;
    int n = 0, rc = 0;
    if (sl_parse_ids(ids_s, &ids, &n, &err)) return cli_fail(&err);
    sl_model *m = NULL;
    sl_session *s = NULL;
    sl_sampler *smp = NULL;
    float *logits = NULL;
    bool ctx_given = so.n_ctx > 0;
    if (sl_model_open(path, &m, &err)) { rc = cli_fail(&err); goto out; }
    const sl_model_config *c = sl_model_get_config(m);
    if (!ctx_given) {
        long want = (long)n + (max_tokens > 0 ? max_tokens : 1);
        if (want > (1L << 24)) want = 1L << 24;
        so.n_ctx = (int)want;   /* exactly what this run can use */
    } else if (n > so.n_ctx) {
        sl_errorf(&err, SL_EINVAL, "%s: the prompt has %d tokens, longer than the context of %d (--ctx)", path, n, so.n_ctx);
        rc = cli_fail(&err);
        goto out;
    }
    if (sl_session_new(m, &so, &s, &err) || sl_sampler_new(&sp, c->vocab_size, &smp, &err)) { rc = cli_fail(&err); goto out; }
    int32_t eos[16];
    int n_eos = 0;
    for (int k = 0; k < c->n_eos; k++) eos[n_eos++] = c->eos_ids[k];
    eos_from_generation_config(path, eos, &n_eos);
    logits = malloc((size_t)c->vocab_size * sizeof *logits);
    hist = malloc(((size_t)n + (size_t)max_tokens + 1) * sizeof *hist);
    if (!logits || !hist) { sl_errorf(&err, SL_ENOMEM, "out of memory"); rc = cli_fail(&err); goto out; }
    memcpy(hist, ids, (size_t)n * sizeof *hist);
    double t0 = now_s();
    if (sl_session_eval(s, ids, n, false, logits, &err)) {
        sl_error_prefix(&err, "%s: ", path);
        rc = cli_fail(&err);
        goto out;
    }
    double t1 = now_s(), t_first = t1;
    int nh = n, gen = 0;
    const char *stop = "length";
    while (gen < max_tokens) {
        int32_t id = sl_sampler_sample(smp, logits, hist, nh);
        if (gen == 0) t_first = now_s();
        hist[nh++] = id;
        gen++;
        if (!json) { printf(gen > 1 ? " %d" : "%d", (int)id); fflush(stdout); }
        bool is_eos = false;
        for (int k = 0; k < n_eos; k++) is_eos |= eos[k] == id;
        if (is_eos) { stop = "eos"; break; }
        if (gen == max_tokens) break;
        if (sl_session_pos(s) >= sl_session_ctx(s)) break;   /* context full: stop_reason length */
        if (sl_interrupted()) break;
        if (sl_session_eval(s, &id, 1, false, logits, &err)) { rc = cli_fail(&err); goto out; }
    }
    double t2 = now_s();
    double prompt_tps = t1 > t0 ? n / (t1 - t0) : 0, gen_tps = gen > 1 && t2 > t_first ? (gen - 1) / (t2 - t_first) : 0;
    if (json) {
        printf("{\"ids\": [");
        for (int k = 0; k < gen; k++) printf(k ? ", %d" : "%d", (int)hist[n + k]);
        printf("], \"text\": null, \"prompt_tokens\": %d, \"generated_tokens\": %d, \"prompt_tps\": %.3f, "
               "\"gen_tps\": %.3f, \"ttft_ms\": %.3f, \"peak_rss_bytes\": %lld, \"stop_reason\": \"%s\"}\n",
               n, gen, prompt_tps, gen_tps, (t_first - t0) * 1e3, peak_rss(), stop);
    } else {
        printf("\n");
    }
    if (stats)
        fprintf(stderr, "prompt: %d tokens, %.1f tok/s; generation: %d tokens, %.1f tok/s; ttft %.1f ms; peak RSS %lld bytes\n",
                n, prompt_tps, gen, gen_tps, (t_first - t0) * 1e3, peak_rss());
out:
    free(hist);
    free(logits);
    sl_sampler_free(smp);
    sl_session_free(s);
    sl_model_close(m);
    free(ids);
    return rc;
}
