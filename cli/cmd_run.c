/*
 * cmd_run.c — `silica run [MODEL] [PROMPT] [options]`: generate text (or ids).
 * The prompt comes from the argument or stdin; the chat template is applied
 * when the model has one (messages: optional system + user), as
 * mlx_lm.generate does; --ids feeds token ids directly (no template, no BOS).
 * Inputs are checked before the model is read (inputs.c): a MODEL word that
 * looks like a path or store name must exist, prompts are UTF-8 without NUL
 * (--any-bytes: anything), the context is checked against the model's.
 * Text streams to stdout as generated (UTF-8 safe, stop strings held back
 * until decided); --json prints one object at the end instead.
 * Stops at an EOS id (config.json, generation_config.json, tokenizer), a stop
 * string, max-tokens or a full context.  The loop itself is library behaviour
 * (silica/generate.h: sl_gen_model_open, sl_gen_prompt, sl_generate).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "gen.h"
#include "inputs.h"
#include "memguard.h"
#include "silica/model.h"
#include "silica/registry.h"
#include "silica/runtime.h"


static const char *k_help =
    "usage: silica run [MODEL] [PROMPT] [--max-tokens N] [--temp T] [--top-p P] [--top-k K] [--min-p P]\n"
    "                  [--repeat-penalty R] [--repeat-last-n N] [--seed S] [--system TEXT] [--no-chat-template]\n"
    "                  [--stop S]... [-j SCHEMA | -jf FILE | --grammar json]\n"
    "                  [--ids 1,2,3 | -f FILE] [--any-bytes] [--ctx N] [--stats] [--json] [--max-memory SIZE]\n"
    "                  [--force] [--mlock] [--monitor FILE [--monitor-interval MS]]\n\n"
    "Generate text with a model on the CPU, streaming it to stdout.\n\n"
    "MODEL is a model directory, a weights/GGUF file or a store name (org/name[@rev][:tag]).  With one\n"
    "argument: it is MODEL if it exists or looks like a path or store name (contains '/', starts with\n"
    "'.' or '~', ends in .safetensors/.gguf/.bin/.pt/.pth/.ckpt/.npz; whitespace makes it a sentence),\n"
    "and such a MODEL that does not exist is an error; else it is the PROMPT.  With no MODEL argument\n"
    "the demo model is used (said on stderr): $SILICA_DEFAULT_MODEL, else <silica's dir>/../models/demo,\n"
    "else models/demo in the source tree.  No PROMPT (and no --ids or -f): the prompt is read from stdin.\n"
    "A prompt must be UTF-8 without NUL bytes (else: the byte offset, from 0, and exit 2).\n"
    "A named model decodes greedily unless told otherwise (exact, reproducible); the demo model, a\n"
    "small completer that loops when greedy, samples by default with\n"
    "  " GEN_DEMO_SAMPLING_HELP " --seed 0\n"
    "(reproducible too; any of these options given replaces its default, --temp 0 is greedy).\n\n"
    "options:\n"
    "  --max-tokens N        tokens to generate at most, 0..16777216 (default 256)\n"
    "  --temp T              temperature >= 0; 0 (default) is greedy\n"
    "  --top-k K, --top-p P, --min-p P   filters: K >= 0, P in (0, 1], P in [0, 1] (off: 0, 1, 0)\n"
    "  --repeat-penalty R    R > 0: divide positive / multiply non-positive logits of the ids seen in the\n"
    "                        last --repeat-last-n tokens, once per id (default 1: off); llama.cpp's\n"
    "                        definition, the same as transformers' and mlx_lm's repetition penalty\n"
    "  --presence-penalty X, --frequency-penalty X   subtract count x F + X for those ids (llama.cpp)\n"
    "  --repeat-last-n N     how many recent ids (prompt included) the penalties look at (default 64;\n"
    "                        -1: all, 0: none); --penalty-window N is the same\n"
    "  --seed S              random seed, 0..2^64-1 (default 0); same seed, same output\n"
    "  --system TEXT         system message (chat template only)\n"
    "  --no-chat-template    encode the prompt as plain text (BOS added as the tokenizer says)\n"
    "  --stop S              stop before the text S (repeatable); not part of the output\n"
    "  -j, --json-schema SCHEMA   structured output: the answer is JSON valid under the JSON Schema\n"
    "                        SCHEMA (inline JSON, or a file name when it does not start with '{'), by\n"
    "                        grammar-constrained decoding (as llama.cpp's --json-schema); unsupported\n"
    "                        keywords are an error naming them (part8/README.md, structured output)\n"
    "  -jf, --json-schema-file FILE   the same, the schema read from FILE\n"
    "  --grammar json        structured output: any JSON object (llama.cpp's grammars/json.gbnf);\n"
    "                        GBNF grammar text is not supported\n"
    GEN_TOKENIZER_HELP
    "  --ids LIST            prompt token ids, comma-separated (no template, no BOS added)\n"
    "  -f, --prompt-file F   read the prompt from file F ('-': stdin), as llama.cpp's --file\n"
    "  --any-bytes           take a prompt that is not UTF-8 text as it is: invalid sequences become\n"
    "                        U+FFFD (as Python's errors='replace'), NUL is kept (not through a chat\n"
    "                        template: add --no-chat-template)\n"
    "  --prompt-ids          print the prompt's token ids as a JSON list and exit (no generation)\n"
    "  --ctx N               context size, 1..16777216 (default: prompt + max-tokens, at most the model's\n"
    "                        max_position_embeddings).  Past that length: a warning when the model's\n"
    "                        RoPE scaling covers it, else refused without --force (plain RoPE cannot\n"
    "                        extrapolate; part5/engine.md)\n"
    GEN_KV_HELP
    GEN_DEVICE_HELP
    "  --threads N           worker threads (default: physical cores)\n"
    "  --stats               prompt and generation tok/s, time to first token, peak RSS and KV cache\n"
    "                        (MiB) on stderr\n"
    CLI_MEM_HELP
    "  --json                print one object at the end instead of streaming:\n"
    "                        {\"ids\": [generated ids], \"text\", \"prompt_tokens\", \"generated_tokens\",\n"
    "                         \"prompt_tps\", \"gen_tps\", \"ttft_ms\", \"peak_rss_bytes\",\n"
    "                         \"stop_reason\": \"eos|length|stop\", \"kv_bytes\": KV cache allocated,\n"
    "                         \"device\": \"cpu\" or the GPU's name}\n"
    "                        (text is null without a tokenizer)\n"
    "  --help                this text\n";

/* -j/--json-schema SCHEMA|FILE, -jf/--json-schema-file FILE, --grammar json:
 * which one (*opt, the canonical long name) and its value; the last wins. */
static int structured_opt(int argc, char **argv, int *i, const char **opt, const char **val, bool *matched) {
    static const char *const names[][2] = {{"--json-schema-file", "-jf"}, {"--json-schema", "-j"}, {"--grammar", NULL}};
    const char *arg = argv[*i];
    *matched = false;
    for (int k = 0; k < 3 && !*matched; k++)
        for (int a = 0; a < 2 && names[k][a] && !*matched; a++) {
            bool missing = false;
            const char *v = cli_opt_value(argc, argv, i, names[k][a], &missing);
            if (missing) return cli_usage("run", "%s needs a value", arg);
            if (!v) continue;
            if (k == 2 && strcmp(v, "json") != 0)
                return cli_usage("run", "--grammar takes only 'json' (GBNF text is not supported; use --json-schema)");
            *opt = names[k][0];
            *val = v;
            *matched = true;
        }
    return 0;
}

/* The grammar structured_opt named (NULL opt: none).  Errors name the option or file. */
static int structured_grammar(const char *opt, const char *val, sl_grammar **g, sl_error *err) {
    *g = NULL;
    if (!opt) return 0;
    if (strcmp(opt, "--grammar") == 0) return sl_grammar_json_object(g, err);
    const char *p = val;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    bool file = strcmp(opt, "--json-schema-file") == 0 || *p != '{';
    char *buf = NULL;
    size_t len = 0;
    int rc = file ? sl_read_file(val, 64u << 20, &buf, &len, err) : 0;
    if (!rc && (rc = sl_grammar_from_schema_text(file ? buf : val, file ? len : strlen(val), g, err)))
        sl_error_prefix(err, "%s: ", file ? val : opt);
    free(buf);
    return rc;
}

/* sl_gen_token_fn: stream the text (ud non-NULL) unless --json; stop on an interrupt. */
static int on_token(void *ud, const sl_gen_token *t) {
    if (ud && t->len) {
        fwrite(t->text, 1, t->len, stdout);
        fflush(stdout);
    }
    return sl_interrupted();
}

int cli_generation_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *so, cli_mem_opts *mo,
                       sl_sampler_params *sp, long min_tokens, long *max_tokens, bool *matched) {
    int rc = cli_engine_opt(argc, argv, i, cmd, so, matched);
    if (rc || *matched) return rc;
    if ((rc = cli_mem_opt(argc, argv, i, cmd, mo, matched)) || *matched) return rc;
    if ((rc = cli_sampler_opt(argc, argv, i, cmd, sp, matched)) || *matched) return rc;
    return cli_max_tokens_opt(argc, argv, i, cmd, min_tokens, max_tokens, matched);
}

/* Shared with cmd_chat.c: the sampling options of run and chat.  *matched
 * tells whether argv[*i] was one of them.  Every value is checked here, with
 * the range in the message, before a model is read. */
int cli_max_tokens_opt(int argc, char **argv, int *i, const char *cmd, long min, long *out, bool *matched) {
    bool missing = false;
    const char *v = cli_opt_value(argc, argv, i, "--max-tokens", &missing);
    *matched = v != NULL;
    if (missing) return cli_usage(cmd, "--max-tokens needs a value");
    if (!v) return 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < min || x > (1 << 24))
        return cli_usage(cmd, "--max-tokens must be an integer in %ld..%d, got '%s'", min, 1 << 24, v);
    *out = (long)x;
    return 0;
}

/* A float option: finite, and lo < x (lo_open) or lo <= x, x <= hi. */
typedef struct float_opt {
    const char *name;
    double lo, hi;
    bool lo_open;
    const char *range;   /* for the message */
} float_opt;

static int parse_float(const char *cmd, const float_opt *f, const char *v, float *out) {
    char *end;
    double x = strtod(v, &end);
    bool ok = *v && !*end && isfinite(x) && (f->lo_open ? x > f->lo : x >= f->lo) && x <= f->hi;
    if (!ok) return cli_usage(cmd, "%s must be a number %s, got '%s'", f->name, f->range, v);
    *out = (float)x;
    return 0;
}

int cli_sampler_opt(int argc, char **argv, int *i, const char *cmd, sl_sampler_params *sp, bool *matched) {
    bool missing = false;
    const char *v;
    *matched = true;
    static const float_opt fopts[] = {
        {"--temp", 0, 1e6, false, ">= 0 (0: greedy)"},
        {"--top-p", 0, 1, true, "in (0, 1] (1: off)"},
        {"--min-p", 0, 1, false, "in [0, 1] (0: off)"},
        {"--repeat-penalty", 0, 1e6, true, "> 0 (1: off)"},
        {"--presence-penalty", -1e6, 1e6, false, "(0: off)"},
        {"--frequency-penalty", -1e6, 1e6, false, "(0: off)"},
    };
    float *fdst[] = {&sp->temperature, &sp->top_p, &sp->min_p, &sp->repeat_penalty, &sp->presence_penalty,
                     &sp->frequency_penalty};
    for (int k = 0; k < 6; k++) {
        if ((v = cli_opt_value(argc, argv, i, fopts[k].name, &missing))) return parse_float(cmd, &fopts[k], v, fdst[k]);
        if (missing) return cli_usage(cmd, "%s needs a value", fopts[k].name);
    }
    if ((v = cli_opt_value(argc, argv, i, "--seed", &missing))) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno == ERANGE || strchr(v, '-'))
            return cli_usage(cmd, "--seed must be an integer in 0..18446744073709551615 (2^64-1), got '%s'", v);
        sp->seed = (uint64_t)x;
        return 0;
    }
    if (missing) return cli_usage(cmd, "--seed needs a value");
    static const char *const iopts[] = {"--top-k", "--penalty-window", "--repeat-last-n"};
    for (int k = 0; k < 3; k++) {
        if ((v = cli_opt_value(argc, argv, i, iopts[k], &missing))) {
            char *end;
            long long x = strtoll(v, &end, 10);
            bool all = k >= 1 && strcmp(v, "-1") == 0;   /* the window: -1 = the whole history, as llama.cpp */
            if (!all && (!*v || *end || x < 0 || x > (1 << 30)))
                return cli_usage(cmd, "%s must be an integer in 0..%d (0: off)%s, got '%s'", iopts[k], 1 << 30,
                                 k >= 1 ? " or -1 (all)" : "", v);
            if (k == 0) sp->top_k = (int)x;
            else sp->penalty_window = (int)x;
            return 0;
        }
        if (missing) return cli_usage(cmd, "%s needs a value", iopts[k]);
    }
    *matched = false;
    return 0;
}

/* The prompt text: the argument, -f FILE or stdin, checked as UTF-8 without
 * NUL, or with --any-bytes repaired to UTF-8 (NUL kept).  *text (malloc'd,
 * *len bytes) and *what (its name in messages).  0 or 2 (printed). */
static int prompt_text(const char *arg, const char *file, bool any_bytes, char **text, size_t *len, const char **what) {
    char *raw = NULL;
    size_t n = 0;
    *what = arg ? "the prompt argument" : file && strcmp(file, "-") ? file : "stdin";
    if (arg) raw = strdup(arg), n = raw ? strlen(raw) : 0;
    else if (cli_read_text(file, &raw, &n)) return 2;
    sl_error err = {0};
    if (!raw) return cli_fail((sl_errorf(&err, SL_ENOMEM, "out of memory"), &err));
    if (!any_bytes) {
        if (cli_check_text(*what, raw, n, " (not text? --any-bytes takes it as it is)")) {
            free(raw);
            return 2;
        }
        *text = raw;
        *len = n;
        return 0;
    }
    *text = sl_utf8_lossy(raw, n, len);
    free(raw);
    if (!*text) return cli_fail((sl_errorf(&err, SL_ENOMEM, "out of memory"), &err));
    return 0;
}

/* The session's context: --ctx, else exactly what this run can use (prompt +
 * max-tokens), but generation ends where the model's RoPE stops covering
 * positions (max_position_embeddings for plain RoPE) unless --force; then
 * checked against the model (inputs.h).  0 or 2. */
static int run_context(const char *path, const sl_model_config *c, int n, long max_tokens, bool force,
                       sl_session_opts *so) {
    char what[96], how[160];
    int64_t maxpos = c->max_position_embeddings, covered = cli_ctx_covered(c, how, sizeof how);
    if (so->n_ctx > 0) {
        if (n > so->n_ctx) {
            sl_error err = {0};
            sl_errorf(&err, SL_EINVAL, "%s: the prompt has %d tokens, longer than the context of %d (--ctx)", path, n,
                      so->n_ctx);
            return cli_fail(&err);
        }
        snprintf(what, sizeof what, "--ctx %d", so->n_ctx);
    } else {
        long want = (long)n + (max_tokens > 0 ? max_tokens : 1);
        if (!force && covered > 0 && want > covered) want = n > covered ? n : (long)covered;
        so->n_ctx = (int)(want > (1L << 24) ? 1L << 24 : want);
        if (n > maxpos) snprintf(what, sizeof what, "the prompt (%d tokens)", n);
        else snprintf(what, sizeof what, "prompt + --max-tokens (%d tokens)", so->n_ctx);
    }
    return cli_check_ctx(path, c, so->n_ctx, what, force);
}

static cJSON *run_messages(const char *system, const char *text) {
    cJSON *msgs = cJSON_CreateArray();
    if (system) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", system);
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(msgs, m);
    return msgs;
}

/* The answer (streamed already unless --json or no tokenizer) and --stats:
 * JSON keeps bytes, the text line shows MiB as chat does (cli_mib). */
static void print_result(const sl_gen_seq *q, bool json, bool stats) {
    const sl_gen_stats *st = sl_gen_seq_stats(q);
    const sl_session *s = sl_gen_seq_session((sl_gen_seq *)q);
    int n = st->prompt_tokens, ng;
    const int32_t *gen = sl_gen_generated(q, &ng);
    size_t tlen;
    const char *text = sl_gen_text(q, &tlen);
    double prompt_tps = st->prompt_s > 0 ? n / st->prompt_s : 0;
    double gen_tps = ng > 1 && st->gen_s > 0 ? (ng - 1) / st->gen_s : 0;
    if (json) {
        cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "ids");
        for (int k = 0; k < ng; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(gen[k]));
        if (text) cJSON_AddStringToObject(j, "text", text);
        else cJSON_AddNullToObject(j, "text");
        cJSON_AddNumberToObject(j, "prompt_tokens", n);
        cJSON_AddNumberToObject(j, "generated_tokens", ng);
        cJSON_AddNumberToObject(j, "prompt_tps", round(prompt_tps * 1e3) / 1e3);
        cJSON_AddNumberToObject(j, "gen_tps", round(gen_tps * 1e3) / 1e3);
        cJSON_AddNumberToObject(j, "ttft_ms", round(st->ttft_s * 1e6) / 1e3);
        cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)sl_mem_peak_rss());
        cJSON_AddStringToObject(j, "stop_reason", st->stop_reason ? st->stop_reason : "length");
        cJSON_AddNumberToObject(j, "kv_bytes", (double)sl_session_kv_bytes(s));   /* allocated KV cache */
        cJSON_AddStringToObject(j, "device", sl_session_device(s, NULL));
        cli_print_json(j);
    } else if (!text) {
        for (int k = 0; k < ng; k++) printf(k ? " %d" : "%d", (int)gen[k]);
        printf("\n");
    } else {
        printf("\n");
    }
    fflush(stdout);
    char rss[32], kv[32];
    if (stats)
        fprintf(stderr, "prompt: %d tokens, %.1f tok/s; generation: %d tokens, %.1f tok/s; ttft %.1f ms; peak RSS %s MiB; "
                "KV cache %s MiB\n", n, prompt_tps, ng, gen_tps, st->ttft_s * 1e3,
                cli_mib(sl_mem_peak_rss(), rss, sizeof rss), cli_mib(sl_session_kv_bytes(s), kv, sizeof kv));
}

int cmd_run(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *ids_s = NULL, *system = NULL, *prompt_file = NULL;
    const char *stops[16];
    int n_pos = 0, n_stops = 0;
    bool json = false, stats = false, use_template = true, prompt_only = false, any_bytes = false;
    long max_tokens = 256;
    sl_gen_model_opts gmo = {0};
    sl_session_opts so = {0};
    cli_mem_opts mo = {0};
    sl_sampler_params sp;
    sl_grammar *grammar = NULL;
    const char *sopt = NULL, *sval = NULL;   /* structured output option */
    gen_sampling_unset(&sp);   /* defaults after parsing: they depend on the model (the demo samples) */
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        int rc = cli_generation_opt(argc, argv, &i, "run", &so, &mo, &sp, 0, &max_tokens, &matched);
        if (!rc && !matched) rc = structured_opt(argc, argv, &i, &sopt, &sval, &matched);
        if (rc) return rc;
        if (matched) continue;
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--stats") == 0) stats = true;
        else if (strcmp(argv[i], "--no-chat-template") == 0) use_template = false;
        else if (strcmp(argv[i], "--prompt-ids") == 0) prompt_only = true;
        else if (strcmp(argv[i], "--any-bytes") == 0) any_bytes = true;
        else if ((v = cli_opt_value(argc, argv, &i, "--ids", &missing))) ids_s = v;
        else if (missing) return cli_usage("run", "--ids needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--system", &missing))) system = v;
        else if (missing) return cli_usage("run", "--system needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--tokenizer", &missing))) gmo.tokenizer = v;
        else if (missing) return cli_usage("run", "--tokenizer needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--prompt-file", &missing)) ||
                 (!missing && (v = cli_opt_value(argc, argv, &i, "-f", &missing)))) {
            if (!*v) return cli_usage("run", "--prompt-file needs a file name ('-': stdin)");
            prompt_file = v;
        } else if (missing) return cli_usage("run", "%s needs a file name ('-': stdin)", argv[i]);
        else if ((v = cli_opt_value(argc, argv, &i, "--stop", &missing))) {
            if (!*v) return cli_usage("run", "--stop needs a non-empty string");
            if (n_stops == 16) return cli_usage("run", "at most 16 --stop strings");
            stops[n_stops++] = v;
        } else if (missing) return cli_usage("run", "--stop needs a value");
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("run", "unknown option '%s'", argv[i]);
        else if (n_pos < 2) pos[n_pos++] = argv[i];
        else return cli_usage("run", "unexpected argument '%s' (quote the prompt)", argv[i]);
    }
    /* MODEL: two words, or one that names a model (inputs.h); no MODEL word: the demo model */
    const char *path = NULL, *prompt_arg = NULL;
    if (n_pos == 2) path = pos[0], prompt_arg = pos[1];
    else if (n_pos == 1 && (ids_s || prompt_file || cli_looks_like_model(pos[0]))) path = pos[0];
    else prompt_arg = n_pos ? pos[0] : NULL;
    gen_sampling_finish(&sp, !path);
    if (ids_s && (prompt_arg || prompt_file)) return cli_usage("run", "give one of PROMPT, --ids or --prompt-file");
    if (prompt_arg && prompt_file) return cli_usage("run", "give either a PROMPT or --prompt-file, not both");
    if (system && cli_check_text("--system", system, strlen(system), NULL)) return 2;
    if (path ? cli_check_model(path) : !(path = cli_demo_model("run"))) return 2;
    if (cli_resolve_store(&path, NULL)) return 2;
    sl_error err = {0};
    int32_t *ids = NULL;
    int n = 0, rc = 0;
    char *text = NULL;
    size_t tlen = 0;
    const char *what = NULL;
    sl_gen_model *g = NULL;
    sl_gen_seq *q = NULL;
    cJSON *msgs = NULL;
    cli_mem_run mr = {0};
    if (ids_s && sl_parse_ids(ids_s, &ids, &n, &err)) return cli_fail(&err);
    if (!ids_s && prompt_text(prompt_arg, prompt_file, any_bytes, &text, &tlen, &what)) return 2;
    if (structured_grammar(sopt, sval, &grammar, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    if ((rc = cli_mem_begin(&mr, &mo))) goto out;
    if (sl_gen_model_open(path, &gmo, &g, &err)) { rc = cli_fail(&err); goto out; }
    const sl_model_config *c = sl_gen_model_config(g);
    bool has_tok = sl_gen_model_tokenizer(g) != NULL;
    if (!ids_s) {
        const char *nul = memchr(text, 0, tlen);
        if (!has_tok) {
            sl_errorf(&err, SL_EINVAL, "%s: no tokenizer (no tokenizer.json beside the model, no tokenizer.ggml.* in a GGUF): pass token ids with --ids or a tokenizer with --tokenizer", path);
        } else if (nul && use_template && sl_gen_model_has_template(g)) {
            sl_errorf(&err, SL_EINVAL, "%s: NUL byte at byte %zu cannot go into a chat template message "
                      "(--no-chat-template encodes it as text)", what, (size_t)(nul - text));
        } else {
            msgs = run_messages(system, text);
            sl_gen_prompt_opts po = {.messages = msgs, .text = text, .text_len = tlen, .no_template = !use_template};
            sl_gen_prompt(g, &po, &ids, &n, &err);
        }
        if (err.code) { rc = cli_fail(&err); goto out; }
    }
    if (prompt_only) {   /* debug: the ids the prompt became, as a JSON list; no forward pass */
        cJSON *a = cJSON_CreateArray();
        for (int k = 0; k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[k]));
        cli_print_json(a);
        goto out;
    }
    if ((rc = run_context(path, c, n, max_tokens, mo.force, &so))) goto out;
    /* the memory guard: before the KV cache exists or a weight page is read */
    if ((rc = cli_mem_guard(path, &so, &mo))) goto out;
    if (sl_gen_seq_new(g, &so, &q, &err)) {
        rc = cli_fail(&err);
        goto out;
    }
    cli_device_note(sl_gen_seq_session(q));
    if ((rc = cli_mem_loaded(&mr, sl_gen_model_get(g), sl_gen_seq_session(q), &so, &mo))) goto out;
    sl_gen_params gp = {.sampling = sp, .max_tokens = (int)max_tokens, .stops = stops, .n_stops = n_stops,
                        .grammar = grammar, .progress = cli_mem_progress, .progress_ud = &mr};
    if (sl_generate(q, ids, n, &gp, on_token, json || !has_tok ? NULL : stdout, &err)) { rc = cli_fail(&err); goto out; }
    print_result(q, json, stats);
out:
    if (mr.mon) {
        int mrc = cli_mem_end(&mr, rc == 0);
        if (!rc) rc = mrc;
    }
    cJSON_Delete(msgs);
    sl_gen_seq_free(q);
    sl_gen_model_close(g);
    sl_grammar_free(grammar);
    free(text);
    free(ids);
    return rc;
}
