/*
 * cmd_pull.c — `silica pull ORG/NAME[@REV]`: download a model from a Hugging
 * Face protocol hub into the store, resuming interrupted downloads and
 * verifying every file's digest; progress bar on a TTY (stderr).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "silica/registry.h"

static const char *k_help =
    "usage: silica pull ORG/NAME[@REV] [--endpoint URL] [--include GLOB]... [--exclude GLOB]...\n"
    "                   [--jobs N] [--hf-cache] [--offline] [--json]\n\n"
    "Download a model from a Hugging Face protocol hub into the store ($SILICA_HOME).\n"
    "REV is a branch, tag or commit (default main).  By default config, tokenizer and\n"
    "chat-template files plus the weights of one format are fetched (safetensors, else\n"
    "pytorch_model*.bin, else the single .gguf).  Interrupted pulls resume where they\n"
    "stopped (also after kill -9 or a reboot); every file's sha256 (git sha1 for small\n"
    "files) is checked before it enters the store.\n\n"
    "options:\n"
    "  --endpoint URL   hub to use (default $HF_ENDPOINT, else https://huggingface.co);\n"
    "                   $HF_TOKEN is sent as a bearer token\n"
    "  --include GLOB   fetch only matching files (repeatable; '*' matches '/')\n"
    "  --exclude GLOB   skip matching files (repeatable)\n"
    "  --jobs N         parallel downloads (default 4)\n"
    "  --hf-cache       also write the Hugging Face cache layout ($HF_HUB_CACHE or\n"
    "                   $HF_HOME/hub) so huggingface_hub / mlx-lm / transformers reuse it\n"
    "  --offline        no network (also SILICA_OFFLINE=1 or HF_HUB_OFFLINE=1): succeed\n"
    "                   quietly if the model is stored (or import it from the HF cache)\n"
    "  --json           print a JSON summary\n"
    "  --help           this text\n";

typedef struct bar {
    double start;
    int drawn;
} bar;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void draw(void *ctx, const char *file, uint64_t fdone, uint64_t ftotal, uint64_t done, uint64_t total) {
    bar *b = ctx;
    double el = now_s() - b->start;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    int w = 30, fill = total ? (int)((double)done / (double)total * w) : w;
    char bar_s[64];
    for (int i = 0; i < w; i++) bar_s[i] = i < fill ? '#' : '.';
    bar_s[w] = 0;
    char hd[32], ht[32];
    char fpart[80] = "done";
    if (file && *file)
        snprintf(fpart, sizeof fpart, "%.40s %3.0f%%", sl_path_basename(file),
                 ftotal ? 100.0 * (double)fdone / (double)ftotal : 100.0);
    else if (file) snprintf(fpart, sizeof fpart, "verifying");
    fprintf(stderr, "\r\033[K[%s] %5.1f%% %s/%s %7.1f MB/s ETA %4.0fs | %s", bar_s,
            total ? 100.0 * (double)done / (double)total : 100.0, cli_human_bytes(done, hd, sizeof hd),
            cli_human_bytes(total, ht, sizeof ht), rate / 1e6, eta, fpart);
    if (!file) fputc('\n', stderr);
    b->drawn = 1;
}

int cmd_pull(int argc, char **argv) {
    const char *name = NULL, *v;
    const char **inc = calloc((size_t)argc, sizeof *inc), **exc = calloc((size_t)argc, sizeof *exc);
    sl_reg_pull_opts o = {0};
    bool json = false;
    int rc = 0;
    if (!inc || !exc) { free(inc); free(exc); return 2; }
    for (int i = 1; i < argc && !rc; i++) {
        bool missing = false;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); free(inc); free(exc); return 0; }
        if ((v = cli_opt_value(argc, argv, &i, "--endpoint", &missing))) o.endpoint = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--include", &missing))) inc[o.n_include++] = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--exclude", &missing))) exc[o.n_exclude++] = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--jobs", &missing))) {
            o.jobs = atoi(v);
            if (o.jobs < 1 || o.jobs > 32) rc = cli_usage("pull", "--jobs expects 1..32, got '%s'", v);
        } else if (missing) rc = cli_usage("pull", "option '%s' needs a value", argv[i]);
        else if (!strcmp(argv[i], "--hf-cache")) o.hf_cache = true;
        else if (!strcmp(argv[i], "--offline")) o.offline = true;
        else if (!strcmp(argv[i], "--json")) json = true;
        else if (argv[i][0] == '-' && argv[i][1]) rc = cli_usage("pull", "unknown option '%s'", argv[i]);
        else if (!name) name = argv[i];
        else rc = cli_usage("pull", "unexpected argument '%s'", argv[i]);
    }
    if (!rc && !name) rc = cli_usage("pull", "missing ORG/NAME");
    char *repo = NULL;
    sl_reg *r = NULL;
    sl_error err = {0};
    if (!rc) {
        repo = strdup(name);
        char *at = repo ? strchr(repo, '@') : NULL;
        if (at) {
            *at = 0;
            o.revision = at + 1;
        }
        o.repo = repo;
        o.include = inc;
        o.exclude = exc;
        if (sl_reg_open(NULL, &r, &err)) rc = cli_fail(&err);
    }
    bar b = {.start = now_s()};
    if (!rc) {
        if (isatty(2) && !json) {
            o.progress = draw;
            o.progress_ctx = &b;
        }
        sl_reg_pull_result res;
        if (sl_reg_pull(r, &o, &res, &err)) {
            if (b.drawn) fputc('\n', stderr);
            rc = cli_fail(&err);
        } else if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "name", o.repo);
            cJSON_AddStringToObject(j, "revision", res.revision);
            cJSON_AddBoolToObject(j, "already", res.already);
            cJSON_AddNumberToObject(j, "files", (double)res.files);
            cJSON_AddNumberToObject(j, "bytes_total", (double)res.bytes_total);
            cJSON_AddNumberToObject(j, "bytes_fetched", (double)res.bytes_fetched);
            cJSON_AddNumberToObject(j, "seconds", res.seconds);
            cli_print_json(j);
        } else if (!(res.already && (o.offline || sl_reg_offline_env()))) {
            char hb[32];
            if (res.already) printf("%s@%.12s: up to date\n", o.repo, res.revision);
            else
                printf("pulled %s@%.12s: %" PRIu64 " files, %s fetched in %.2fs (%.1f MB/s)\n", o.repo, res.revision,
                       res.files, cli_human_bytes(res.bytes_fetched, hb, sizeof hb), res.seconds,
                       res.seconds > 0 ? (double)res.bytes_fetched / res.seconds / 1e6 : 0.0);
        }
    }
    sl_reg_close(r);
    free(repo);
    free(inc);
    free(exc);
    return rc;
}
