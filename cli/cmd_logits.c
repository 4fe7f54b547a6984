/*
 * cmd_logits.c — `silica logits MODEL --ids 1,2,3 [--json]`: the model's
 * logits for every input position, {"logits": [[vocab floats] per position]}.
 * One forward pass (batched); KV cache in the model's dtype unless --kv says.  The context is
 * the number of ids unless --ctx says otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gen.h"
#include "silica/model.h"
#include "silica/runtime.h"

static const char *k_help =
    "usage: silica logits MODEL --ids 1,2,3 [--json] [--kv f16|f32|q8|q4] [--kv-bits B] [--kv-group-size G]\n"
    "                    [--max-kv-size N] [--ctx N] [--threads N] [--batch N]\n"
    "                    [--device cpu|gpu|gpu:N|auto] [--gpu-layers N]\n\n"
    "Run the model on the given token ids and print the logits of every position.\n\n"
    "options:\n"
    "  --ids LIST     comma-separated token ids (no BOS is added)\n"
    "  --json         {\"device\": \"cpu\" or the GPU's name, \"logits\": [[...vocab floats...] per position]}\n"
    GEN_KV_HELP
    GEN_DEVICE_HELP
    "  --ctx N        context size (default: the number of ids)\n"
    "  --threads N    worker threads (default: physical cores)\n"
    "  --batch N      positions per forward batch (default 64)\n"
    "  --help         this text\n";

/* Shared by cmd_run.c: parse the KV options (gen.c), "--device", "--gpu-layers", "--threads", "--ctx", "--batch". */
int cli_engine_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *o, bool *matched) {
    bool missing = false;
    const char *v;
    int rc = cli_kv_opt(argc, argv, i, cmd, o, matched);   /* --kv, --kv-bits, --kv-group-size, --max-kv-size */
    if (rc || *matched) return rc;
    *matched = true;
    if ((v = cli_opt_value(argc, argv, i, "--device", &missing))) {
        sl_error e = {0};
        return sl_device_parse(v, &o->device, &e) ? cli_usage(cmd, "%s", e.msg) : 0;
    }
    if (missing) return cli_usage(cmd, "--device needs a value");
    if ((v = cli_opt_value(argc, argv, i, "--gpu-layers", &missing))) return cli_gpu_layers(cmd, v, &o->gpu_layers);
    if (missing) return cli_usage(cmd, "--gpu-layers needs a value");
    static const char *const ints[] = {"--threads", "--ctx", "--batch"};
    static const long max[] = {1024, 1 << 24, 1 << 24};
    static const char *const why[] = {"", (" (2^24 positions, the engine's largest context; `silica fit MODEL --ctx N` "
                                           "tells what fits this machine's memory)"), ""};
    int *dst[] = {&o->n_threads, &o->n_ctx, &o->batch};
    for (int k = 0; k < 3; k++) {
        if ((v = cli_opt_value(argc, argv, i, ints[k], &missing))) {
            char *end;
            errno = 0;
            long x = strtol(v, &end, 10);
            if (!*v || *end || errno == ERANGE || x < 1 || x > max[k])
                return cli_usage(cmd, "%s must be an integer in 1..%ld%s, got '%s'", ints[k], max[k], why[k], v);
            *dst[k] = (int)x;
            return 0;
        }
        if (missing) return cli_usage(cmd, "%s needs a value", ints[k]);
    }
    *matched = false;
    return 0;
}

int cmd_logits(int argc, char **argv) {
    const char *path = NULL, *ids_s = NULL;
    bool json = false;
    sl_session_opts so = {0};
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        int rc = cli_engine_opt(argc, argv, &i, "logits", &so, &matched);
        if (rc) return rc;
        if (matched) continue;
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if ((v = cli_opt_value(argc, argv, &i, "--ids", &missing))) ids_s = v;
        else if (missing) return cli_usage("logits", "--ids needs a value");
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("logits", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("logits", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage("logits", "missing MODEL");
    if (!ids_s) return cli_usage("logits", "missing --ids");
    sl_error err = {0};
    int32_t *ids = NULL;
    int n = 0;
    if (sl_parse_ids(ids_s, &ids, &n, &err)) return cli_fail(&err);
    sl_model *m = NULL;
    sl_session *s = NULL;
    float *logits = NULL;
    int rc = 0;
    if (sl_model_open(path, &m, &err)) { rc = cli_fail(&err); goto out; }
    const sl_model_config *c = sl_model_get_config(m);
    if (!so.n_ctx) so.n_ctx = n;
    if (sl_session_new(m, &so, &s, &err)) { rc = cli_fail(&err); goto out; }
    cli_device_note(s);
    logits = malloc((size_t)n * (size_t)c->vocab_size * sizeof *logits);
    if (!logits) { sl_errorf(&err, SL_ENOMEM, "out of memory"); rc = cli_fail(&err); goto out; }
    if (sl_session_eval(s, ids, n, true, logits, &err)) {
        sl_error_prefix(&err, "%s: ", path);
        rc = cli_fail(&err);
        goto out;
    }
    if (json) {
        printf("{\"device\": \"%s\", \"logits\": [", sl_session_device(s, NULL));
        for (int t = 0; t < n; t++) {
            fputs(t ? ", [" : "[", stdout);
            const float *row = logits + (size_t)t * c->vocab_size;
            for (int k = 0; k < c->vocab_size; k++) printf(k ? ", %.9g" : "%.9g", (double)row[k]);
            fputc(']', stdout);
        }
        fputs("]}\n", stdout);
    } else {
        for (int t = 0; t < n; t++) {
            const float *row = logits + (size_t)t * c->vocab_size;
            int best = 0;
            for (int k = 1; k < c->vocab_size; k++)
                if (row[k] > row[best]) best = k;
            printf("position %d  id %d  ->  argmax %d  (logit %.6g)\n", t, (int)ids[t], best, (double)row[best]);
        }
    }
out:
    free(logits);
    sl_session_free(s);
    sl_model_close(m);
    free(ids);
    return rc;
}
