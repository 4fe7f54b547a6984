/*
 * cmd_ppl.c — `silica ppl MODEL --file F [--ctx N] [--json]`: perplexity,
 * defined as (part5/README.md):
 *   ids = [BOS] + encode(text, no special tokens added)   (BOS left out when
 *         the model has none);
 *   for s = 0, N, 2N, ...: inputs ids[s:s+N], targets ids[s+1:s+N+1] (the
 *         last window may be shorter), each window on its own, fresh cache;
 *   nll = mean over all targets of -log softmax(logits)[target],
 *   ppl = exp(nll), tokens = number of targets.
 * Logits are produced a batch at a time within a window (memory: batch x
 * vocab floats), log-softmax and sums in double.
 * The text must be UTF-8 without NUL (--any-bytes: any bytes, repaired as the
 * tokenizer repairs them); the window is checked against the model's length
 * (inputs.c).  On a terminal a progress bar (targets done / total, tok/s,
 * ETA) is drawn on stderr; nothing when stderr is not a terminal.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "gen.h"
#include "inputs.h"
#include "progress.h"


static const char *k_help =
    "usage: silica ppl MODEL --file F [--ctx N] [--json] [--any-bytes] [--force] [--kv f16|f32|q8|q4] [--kv-bits B]\n"
    "                [--max-kv-size N] [--threads N] [--batch N]\n\n"
    "Perplexity of a model on a text file: ids = [BOS] + encode(text, no special tokens); windows of\n"
    "N tokens (inputs ids[s:s+N], targets ids[s+1:s+N+1]), each with a fresh cache; nll = mean over\n"
    "all targets; ppl = exp(nll).  On a terminal, progress (tokens, tok/s, ETA) is shown on stderr.\n\n"
    "options:\n"
    "  --file F       the text: UTF-8 without NUL bytes, else refused with the byte offset ('-': stdin)\n"
    "  --any-bytes    take any bytes: invalid UTF-8 becomes U+FFFD, NUL is kept\n"
    "  --ctx N        window size N (default 512, at most the model's max_position_embeddings; past it:\n"
    "                 refused without --force unless RoPE scaling covers it, see `silica run --help`)\n"
    "  --force        a window past the model's length even when its RoPE cannot extrapolate\n"
    "  --json         {\"ppl\": x, \"nll\": x, \"tokens\": N}\n"
    GEN_TOKENIZER_HELP
    GEN_KV_HELP
    GEN_DEVICE_HELP
    "  --threads N    worker threads (default: physical cores)\n"
    "  --batch N      positions per forward batch (default 64)\n"
    "  --help         this text\n";

/* -log softmax(row)[target] in double. */
static double nll_of(const float *row, int V, int32_t target) {
    double mx = row[0];
    for (int k = 1; k < V; k++) mx = row[k] > mx ? row[k] : mx;
    double sum = 0;
    for (int k = 0; k < V; k++) sum += exp((double)row[k] - mx);
    return mx + log(sum) - (double)row[target];
}

/* Sum of the nll over all targets, window by window (see the top);
 * progress on a terminal.  0, or an error (interrupted included). */
static int ppl_eval(sl_session *s, const int32_t *ids, int n, int N, int B, int V, float *logits, double *total,
                    long long *targets, sl_error *err) {
    cli_progress bar;
    cli_progress_init_count(&bar, "ppl", "tok");
    *total = 0;
    *targets = 0;
    int rc = 0;
    for (int st = 0; st + 1 < n && !rc; st += N) {
        int w = n - 1 - st < N ? n - 1 - st : N;   /* inputs that have a target */
        sl_session_reset(s);
        for (int b = 0; b < w && !rc; b += B) {
            if (sl_interrupted()) {
                rc = sl_errorf(err, SL_EINTR, "interrupted");
                break;
            }
            int m = w - b < B ? w - b : B;
            if ((rc = sl_session_eval(s, ids + st + b, m, true, logits, err))) break;
            for (int k = 0; k < m; k++) *total += nll_of(logits + (size_t)k * V, V, ids[st + b + k + 1]);
            *targets += m;
            cli_progress_cb(&bar, (uint64_t)*targets, (uint64_t)(n - 1), NULL);
        }
    }
    cli_progress_done(&bar);
    return rc;
}

int cmd_ppl(int argc, char **argv) {
    const char *path = NULL, *file = NULL;
    sl_gen_model_opts gmo = {0};
    bool json = false, any_bytes = false, force = false;
    sl_session_opts so = {0};
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        int rc = cli_engine_opt(argc, argv, &i, "ppl", &so, &matched);
        if (rc) return rc;
        if (matched) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--file", &missing))) file = v;
        else if (missing) return cli_usage("ppl", "--file needs a value");
        else if ((v = cli_opt_value(argc, argv, &i, "--tokenizer", &missing))) gmo.tokenizer = v;
        else if (missing) return cli_usage("ppl", "--tokenizer needs a value");
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--any-bytes") == 0) any_bytes = true;
        else if (strcmp(argv[i], "--force") == 0) force = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("ppl", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("ppl", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage("ppl", "missing MODEL");
    if (!file) return cli_usage("ppl", "missing --file");
    if (cli_check_model(path) || cli_resolve_store(&path, NULL)) return 2;
    int B = so.batch > 0 ? so.batch : 64;
    const char *fname = strcmp(file, "-") ? file : "stdin";
    sl_error err = {0};
    sl_gen_model *g = NULL;
    sl_session *s = NULL;
    char *text = NULL;
    size_t tlen = 0;
    sl_tok_ids t = {0};
    float *logits = NULL;
    int32_t *ids = NULL;
    int rc = 0;
    if (cli_read_text(file, &text, &tlen)) return 2;
    if (!any_bytes && cli_check_text(fname, text, tlen, " (not text? --any-bytes takes it as it is)")) {
        free(text);
        return 2;
    }
    if (sl_gen_model_open(path, &gmo, &g, &err)) goto fail;
    const sl_model_config *c = sl_gen_model_config(g);
    sl_tokenizer *tok = sl_gen_model_tokenizer(g);
    int32_t bos = sl_gen_model_bos(g);
    if (!tok) {
        sl_errorf(&err, SL_EINVAL, "%s: no tokenizer (no tokenizer.json beside the model, no tokenizer.ggml.* in a GGUF): ppl encodes text; name one with --tokenizer", path);
        goto fail;
    }
    if ((rc = cli_ctx_or_default(path, c, force, 512, &so))) goto out;
    int N = so.n_ctx;
    if (bos >= 0 && bos < c->vocab_size) {
        uint32_t b = (uint32_t)bos;
        t.ids = malloc(sizeof *t.ids);
        if (!t.ids) { sl_errorf(&err, SL_ENOMEM, "out of memory"); goto fail; }
        t.ids[0] = b;
        t.n = t.cap = 1;
    }
    if (sl_tok_encode(tok, text, tlen, 0, &t, &err)) {
        sl_error_prefix(&err, "%s: ", fname);
        goto fail;
    }
    if (t.n < 2) {
        sl_errorf(&err, SL_EINVAL, "%s: too little text: %zu token(s), perplexity needs at least 2", fname, t.n);
        goto fail;
    }
    if (t.n > (size_t)INT32_MAX) { sl_errorf(&err, SL_EINVAL, "%s: too many tokens", fname); goto fail; }
    int V = c->vocab_size, n = (int)t.n;
    ids = malloc((size_t)n * sizeof *ids);
    logits = malloc((size_t)B * (size_t)V * sizeof *logits);
    if (!ids || !logits) { sl_errorf(&err, SL_ENOMEM, "out of memory"); goto fail; }
    for (int k = 0; k < n; k++) {
        if (t.ids[k] >= (uint32_t)V) {
            sl_errorf(&err, SL_EINVAL, "%s: token id %u is outside the model's vocabulary (vocab_size %d)", path,
                      t.ids[k], V);
            goto fail;
        }
        ids[k] = (int32_t)t.ids[k];
    }
    if (sl_session_new(sl_gen_model_get(g), &so, &s, &err)) goto fail;
    cli_device_note(s);
    double total;
    long long targets;
    if (ppl_eval(s, ids, n, N, B, V, logits, &total, &targets, &err)) {
        if (err.code != SL_EINTR) sl_error_prefix(&err, "%s: ", path);
        goto fail;
    }
    double nll = total / (double)targets;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "ppl", exp(nll));
        cJSON_AddNumberToObject(j, "nll", nll);
        cJSON_AddNumberToObject(j, "tokens", (double)targets);
        cli_print_json(j);
    } else {
        printf("ppl %.4f  nll %.6f  tokens %lld  (windows of %d)\n", exp(nll), nll, targets, N);
    }
    goto out;
fail:
    rc = cli_fail(&err);
out:
    free(ids);
    free(logits);
    sl_tok_ids_free(&t);
    free(text);
    sl_session_free(s);
    sl_gen_model_close(g);
    return rc;
}
