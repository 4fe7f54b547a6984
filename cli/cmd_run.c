/*
 * cmd_run.c — `silica run [MODEL] [PROMPT] [options]`: generate text (or ids).
 * The prompt comes from the argument or stdin; the chat template is applied
 * when the model has one (messages: optional system + user), as
 * mlx_lm.generate does; --ids feeds token ids directly (no template, no BOS).
 * Text streams to stdout as generated (UTF-8 safe, stop strings held back
 * until decided); --json prints one object at the end instead.
 * Stops at an EOS id (config.json, generation_config.json, tokenizer), a stop
 * string, max-tokens or a full context.  The loop itself lives in gen.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "gen.h"
#include "memguard.h"
#include "silica/model.h"
#include "silica/registry.h"
#include "silica/runtime.h"


static const char *k_help =
    "usage: silica run [MODEL] [PROMPT] [--max-tokens N] [--temp T] [--top-p P] [--top-k K] [--min-p P]\n"
    "                  [--repeat-penalty R] [--repeat-last-n N] [--seed S] [--system TEXT] [--no-chat-template]\n"
    "                  [--stop S]...\n"
    "                  [--ids 1,2,3] [--ctx N] [--stats] [--json] [--max-memory SIZE] [--force] [--mlock]\n"
    "                  [--monitor FILE [--monitor-interval MS]]\n\n"
    "Generate text with a model on the CPU, streaming it to stdout.\n\n"
    "MODEL is a model directory, a weights/GGUF file or a store name (org/name[@rev][:tag]).  Without\n"
    "MODEL the demo model is used: $SILICA_DEFAULT_MODEL, else <silica's dir>/../models/demo, else\n"
    "models/demo in the source tree.  With one argument: it is MODEL if such a path or store name\n"
    "exists, else it is the PROMPT.  No PROMPT (and no --ids): the prompt is read from stdin.\n"
    "A named model decodes greedily unless told otherwise (exact, reproducible); the demo model, a\n"
    "small completer that loops when greedy, samples by default with\n"
    "  " GEN_DEMO_SAMPLING_HELP " --seed 0\n"
    "(reproducible too; any of these options given replaces its default, --temp 0 is greedy).\n\n"
    "options:\n"
    "  --max-tokens N        tokens to generate at most (default 256)\n"
    "  --temp T              temperature; 0 (default) is greedy\n"
    "  --top-k K, --top-p P, --min-p P   filters (off: 0, 1, 0)\n"
    "  --repeat-penalty R    divide positive / multiply non-positive logits of the ids seen in the\n"
    "                        last --repeat-last-n tokens, once per id (default 1: off); llama.cpp's\n"
    "                        definition, the same as transformers' and mlx_lm's repetition penalty\n"
    "  --presence-penalty X, --frequency-penalty X   subtract count x F + X for those ids (llama.cpp)\n"
    "  --repeat-last-n N     how many recent ids (prompt included) the penalties look at (default 64;\n"
    "                        -1: all, 0: none); --penalty-window N is the same\n"
    "  --seed S              random seed (default 0); same seed, same output\n"
    "  --system TEXT         system message (chat template only)\n"
    "  --no-chat-template    encode the prompt as plain text (BOS added as the tokenizer says)\n"
    "  --stop S              stop before the text S (repeatable); not part of the output\n"
    GEN_TOKENIZER_HELP
    "  --ids LIST            prompt token ids, comma-separated (no template, no BOS added)\n"
    "  --prompt-ids          print the prompt's token ids as a JSON list and exit (no generation)\n"
    "  --ctx N               context size (default: prompt + max-tokens)\n"
    GEN_KV_HELP
    GEN_DEVICE_HELP
    "  --threads N           worker threads (default: physical cores)\n"
    "  --stats               prompt and generation tok/s, time to first token, peak RSS on stderr\n"
    CLI_MEM_HELP
    "  --json                print one object at the end instead of streaming:\n"
    "                        {\"ids\": [generated ids], \"text\", \"prompt_tokens\", \"generated_tokens\",\n"
    "                         \"prompt_tps\", \"gen_tps\", \"ttft_ms\", \"peak_rss_bytes\",\n"
    "                         \"stop_reason\": \"eos|length|stop\", \"kv_bytes\": KV cache allocated,\n"
    "                         \"device\": \"cpu\" or the GPU's name}\n"
    "                        (text is null without a tokenizer)\n"
    "  --help                this text\n";

static int parse_float(const char *cmd, const char *opt, const char *v, float *out) {
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x)) return cli_usage(cmd, "%s must be a number, got '%s'", opt, v);
    *out = (float)x;
    return 0;
}

/* Read all of stdin into a malloc'd string. */
static char *read_stdin(void) {
    size_t n = 0, cap = 4096;
    char *p = malloc(cap);
    if (!p) return NULL;
    size_t k;
    while ((k = fread(p + n, 1, cap - n - 1, stdin)) > 0) {
        n += k;
        if (cap - n - 1 == 0) {
            char *q = realloc(p, cap * 2);
            if (!q) { free(p); return NULL; }
            p = q;
            cap *= 2;
        }
    }
    p[n] = 0;
    return p;
}

static void emit_stdout(const char *s, size_t n, void *ud) {
    (void)ud;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
}

static bool run_cancelled(void) { return sl_interrupted(); }

int cli_generation_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *so, cli_mem_opts *mo,
                       sl_sampler_params *sp, long min_tokens, long *max_tokens, bool *matched) {
    int rc = cli_engine_opt(argc, argv, i, cmd, so, matched);
    if (rc || *matched) return rc;
    if ((rc = cli_mem_opt(argc, argv, i, cmd, mo, matched)) || *matched) return rc;
    if ((rc = cli_sampler_opt(argc, argv, i, cmd, sp, matched)) || *matched) return rc;
    return cli_max_tokens_opt(argc, argv, i, cmd, min_tokens, max_tokens, matched);
}

/* Shared with cmd_chat.c: the sampling options of run and chat.  *matched
 * tells whether argv[*i] was one of them. */
int cli_max_tokens_opt(int argc, char **argv, int *i, const char *cmd, long min, long *out, bool *matched) {
    bool missing = false;
    const char *v = cli_opt_value(argc, argv, i, "--max-tokens", &missing);
    *matched = v != NULL;
    if (missing) return cli_usage(cmd, "--max-tokens needs a value");
    if (!v) return 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < min || x > (1 << 24))
        return cli_usage(cmd, "--max-tokens must be an integer >= %ld, got '%s'", min, v);
    *out = (long)x;
    return 0;
}

int cli_sampler_opt(int argc, char **argv, int *i, const char *cmd, sl_sampler_params *sp, bool *matched) {
    bool missing = false;
    const char *v;
    *matched = true;
    static const char *const fopts[] = {"--temp", "--top-p", "--min-p", "--repeat-penalty", "--presence-penalty",
                                        "--frequency-penalty"};
    float *fdst[] = {&sp->temperature, &sp->top_p, &sp->min_p, &sp->repeat_penalty, &sp->presence_penalty,
                     &sp->frequency_penalty};
    for (int k = 0; k < 6; k++) {
        if ((v = cli_opt_value(argc, argv, i, fopts[k], &missing))) return parse_float(cmd, fopts[k], v, fdst[k]);
        if (missing) return cli_usage(cmd, "%s needs a value", fopts[k]);
    }
    static const char *const iopts[] = {"--top-k", "--seed", "--penalty-window", "--repeat-last-n"};
    for (int k = 0; k < 4; k++) {
        if ((v = cli_opt_value(argc, argv, i, iopts[k], &missing))) {
            char *end;
            long long x = strtoll(v, &end, 10);
            bool all = k >= 2 && strcmp(v, "-1") == 0;   /* the window: -1 = the whole history, as llama.cpp */
            if (!all && (!*v || *end || x < 0 || (k != 1 && x > (1 << 30))))
                return cli_usage(cmd, "%s must be a non-negative integer%s, got '%s'", iopts[k],
                                 k >= 2 ? " or -1 (all)" : "", v);
            if (k == 0) sp->top_k = (int)x;
            else if (k == 1) sp->seed = (uint64_t)x;
            else sp->penalty_window = (int)x;
            return 0;
        }
        if (missing) return cli_usage(cmd, "%s needs a value", iopts[k]);
    }
    *matched = false;
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *ids_s = NULL, *system = NULL;
    const char *stops[16];
    int n_pos = 0, n_stops = 0;
    bool json = false, stats = false, use_template = true, prompt_only = false;
    long max_tokens = 256;
    sl_session_opts so = {0};
    cli_mem_opts mo = {0};
    const char *tokenizer = NULL;
    sl_sampler_params sp;
    gen_sampling_unset(&sp);   /* defaults after parsing: they depend on the model (the demo samples) */
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        int rc = cli_generation_opt(argc, argv, &i, "run", &so, &mo, &sp, 0, &max_tokens, &matched);
        if (rc) return rc;
        if (matched) continue;
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--stats") == 0) stats = true;
        else if (strcmp(argv[i], "--no-chat-template") == 0) use_template = false;
        else if (strcmp(argv[i], "--prompt-ids") == 0) prompt_only = true;
        else if ((v = cli_opt_value(argc, argv, &i, "--ids", &missing))) ids_s = v;
        else if (missing) return cli_usage("run", "--ids needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--system", &missing))) system = v;
        else if (missing) return cli_usage("run", "--system needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--tokenizer", &missing))) tokenizer = v;
        else if (missing) return cli_usage("run", "--tokenizer needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--stop", &missing))) {
            if (!*v) return cli_usage("run", "--stop needs a non-empty string");
            if (n_stops == 16) return cli_usage("run", "at most 16 --stop strings");
            stops[n_stops++] = v;
        } else if (missing) return cli_usage("run", "--stop needs a value");
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("run", "unknown option '%s'", argv[i]);
        else if (n_pos < 2) pos[n_pos++] = argv[i];
        else return cli_usage("run", "unexpected argument '%s' (quote the prompt)", argv[i]);
    }
    const char *path = NULL, *prompt_arg = NULL;
    bool demo = false;
    if (n_pos == 2) {
        path = pos[0];
        prompt_arg = pos[1];
    } else if (n_pos == 1 && (sl_path_exists(pos[0]) || ids_s || sl_reg_looks_like_name(pos[0]))) {
        path = pos[0];
    } else {
        prompt_arg = n_pos ? pos[0] : NULL;
        if (!(path = gen_default_model()))
            return cli_usage("run", "no MODEL given and no demo model found (set SILICA_DEFAULT_MODEL)");
        demo = true;
    }
    gen_sampling_finish(&sp, demo);
    if (ids_s && prompt_arg) return cli_usage("run", "give either a PROMPT or --ids, not both");
    if (cli_resolve_store(&path, NULL)) return 2;
    sl_error err = {0};
    int32_t *ids = NULL;
    int n = 0, rc = 0;
    char *stdin_text = NULL;
    gen_model g = {0};
    gen_cache cache = {0};
    gen_result res = {0};
    sl_session *s = NULL;
    sl_sampler *smp = NULL;
    cJSON *msgs = NULL;
    cli_mem_run mr = {0};
    if (ids_s && sl_parse_ids(ids_s, &ids, &n, &err)) return cli_fail(&err);
    if ((rc = cli_mem_begin(&mr, &mo))) goto out;
    if (gen_open_tok(path, tokenizer, &g, &err)) { rc = cli_fail(&err); goto out; }
    if (!ids_s) {
        if (!g.tok) {
            sl_errorf(&err, SL_EINVAL, "%s: no tokenizer (no tokenizer.json beside the model, no tokenizer.ggml.* in a GGUF): pass token ids with --ids or a tokenizer with --tokenizer", path);
            rc = cli_fail(&err);
            goto out;
        }
        if (!prompt_arg) {
            if (!(stdin_text = read_stdin())) { sl_errorf(&err, SL_ENOMEM, "out of memory"); rc = cli_fail(&err); goto out; }
            prompt_arg = stdin_text;
        }
        msgs = cJSON_CreateArray();
        if (system) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "system");
            cJSON_AddStringToObject(m, "content", system);
            cJSON_AddItemToArray(msgs, m);
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", prompt_arg);
        cJSON_AddItemToArray(msgs, m);
        if (gen_prompt(&g, msgs, prompt_arg, use_template, &ids, &n, &err)) { rc = cli_fail(&err); goto out; }
    }
    if (prompt_only) {   /* debug: the ids the prompt became, as a JSON list; no forward pass */
        cJSON *a = cJSON_CreateArray();
        for (int k = 0; k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[k]));
        cli_print_json(a);
        goto out;
    }
    if (so.n_ctx <= 0) {
        long want = (long)n + (max_tokens > 0 ? max_tokens : 1);
        so.n_ctx = (int)(want > (1L << 24) ? 1L << 24 : want);   /* exactly what this run can use */
    } else if (n > so.n_ctx) {
        sl_errorf(&err, SL_EINVAL, "%s: the prompt has %d tokens, longer than the context of %d (--ctx)", path, n,
                  so.n_ctx);
        rc = cli_fail(&err);
        goto out;
    }
    /* the memory guard: before the KV cache exists or a weight page is read */
    if ((rc = cli_mem_guard(path, &so, &mo))) goto out;
    if (sl_session_new(g.m, &so, &s, &err) || sl_sampler_new(&sp, g.c->vocab_size, &smp, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    cli_device_note(s);
    if ((rc = cli_mem_loaded(&mr, &g, s, &so, &mo))) goto out;
    gen_opts o = {.max_tokens = (int)max_tokens, .stops = stops, .n_stops = n_stops,
                  .emit = json || !g.tok ? NULL : emit_stdout, .cancelled = run_cancelled,
                  .progress = cli_mem_progress, .progress_ud = &mr};
    if (gen_generate(&g, s, &cache, smp, ids, n, &o, &res, &err)) { rc = cli_fail(&err); goto out; }
    double prompt_tps = res.prompt_s > 0 ? n / res.prompt_s : 0;
    double gen_tps = res.n > 1 && res.gen_s > 0 ? (res.n - 1) / res.gen_s : 0;
    if (json) {
        cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "ids");
        for (int k = 0; k < res.n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(res.ids[k]));
        if (res.text) cJSON_AddStringToObject(j, "text", res.text);
        else cJSON_AddNullToObject(j, "text");
        cJSON_AddNumberToObject(j, "prompt_tokens", n);
        cJSON_AddNumberToObject(j, "generated_tokens", res.n);
        cJSON_AddNumberToObject(j, "prompt_tps", round(prompt_tps * 1e3) / 1e3);
        cJSON_AddNumberToObject(j, "gen_tps", round(gen_tps * 1e3) / 1e3);
        cJSON_AddNumberToObject(j, "ttft_ms", round(res.ttft_s * 1e6) / 1e3);
        cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)gen_peak_rss());
        cJSON_AddStringToObject(j, "stop_reason", res.stop_reason);
        cJSON_AddNumberToObject(j, "kv_bytes", (double)sl_session_kv_bytes(s));   /* allocated KV cache */
        cJSON_AddStringToObject(j, "device", sl_session_device(s, NULL));
        cli_print_json(j);
    } else if (!g.tok) {
        for (int k = 0; k < res.n; k++) printf(k ? " %d" : "%d", (int)res.ids[k]);
        printf("\n");
    } else {
        printf("\n");
    }
    fflush(stdout);
    if (stats)
        fprintf(stderr, "prompt: %d tokens, %.1f tok/s; generation: %d tokens, %.1f tok/s; ttft %.1f ms; peak RSS %lld bytes; "
                "KV cache %llu bytes\n", n, prompt_tps, res.n, gen_tps, res.ttft_s * 1e3, gen_peak_rss(),
                (unsigned long long)sl_session_kv_bytes(s));
out:
    if (mr.mon) {
        int mrc = cli_mem_end(&mr, rc == 0);
        if (!rc) rc = mrc;
    }
    gen_result_free(&res);
    gen_cache_free(&cache);
    cJSON_Delete(msgs);
    sl_sampler_free(smp);
    sl_session_free(s);
    gen_close(&g);
    free(stdin_text);
    free(ids);
    return rc;
}
