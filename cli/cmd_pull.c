/*
 * cmd_pull.c — `silica pull ORG/NAME[@REV]`: download a model from a Hugging
 * Face protocol hub into the store, resuming interrupted downloads and
 * verifying every file's digest; per-file and total progress bars on a TTY
 * (stderr, through progress.c), quiet otherwise; --dry-run lists the plan.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"
#include "silica/registry.h"

static const char *k_help =
    "usage: silica pull ORG/NAME[@REV] [--endpoint URL] [--include GLOB]... [--exclude GLOB]...\n"
    "                   [--jobs N] [--hf-cache] [--offline] [--dry-run] [--json]\n\n"
    "Download a model from a Hugging Face protocol hub into the store ($SILICA_HOME).\n"
    "REV is a branch, tag or commit (default main).  By default config, tokenizer and\n"
    "chat-template files plus the weights of one format are fetched (safetensors, else\n"
    "pytorch_model*.bin, else the single .gguf).  Interrupted pulls resume where they\n"
    "stopped (also after kill -9 or a reboot); every file's sha256 (git sha1 for small\n"
    "files) is checked before it enters the store.  Free space is checked before the\n"
    "first byte is fetched.  On a terminal, stderr shows one progress bar per file in\n"
    "flight (bytes, rate) and a total line (rate, ETA); a summary line ends the pull.\n\n"
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
    "  --dry-run        list the files a pull would fetch (size, stored/partial) and the\n"
    "                   space needed; downloads nothing\n"
    "  --json           print a JSON summary (with --dry-run: the file list)\n"
    "  --help           this text\n";

/* sl_reg_progress_fn -> one bar per file in flight plus a total line */
static void on_progress(void *ctx, const sl_reg_pull_progress *pr) {
    cli_progress *pg = ctx;
    cli_progress_row rows[32];
    size_t n = pr->n_active < 32 ? pr->n_active : 32;
    for (size_t i = 0; i < n; i++)
        rows[i] = (cli_progress_row){.name = pr->active[i].path, .done = pr->active[i].done, .total = pr->active[i].size};
    char extra[64];
    snprintf(extra, sizeof extra, "%zu/%zu files", pr->files_done, pr->files);
    cli_progress_rows(pg, rows, pr->finished ? 0 : n, pr->done, pr->total, extra, pr->finished);
}

static void print_plan(const sl_reg_pull_opts *o, const sl_reg_pull_result *res, bool json) {
    char a[32], b[32], c[32];
    if (json) {
        cJSON *j = cJSON_CreateObject(), *fs = cJSON_AddArrayToObject(j, "files");
        cJSON_AddStringToObject(j, "name", o->repo);
        cJSON_AddStringToObject(j, "revision", res->revision);
        cJSON_AddNumberToObject(j, "bytes_total", (double)res->bytes_total);
        cJSON_AddNumberToObject(j, "bytes_needed", (double)res->bytes_needed);
        cJSON_AddNumberToObject(j, "bytes_free", (double)res->bytes_free);
        for (size_t i = 0; i < res->n_plan; i++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "path", res->plan[i].path);
            cJSON_AddNumberToObject(f, "size", (double)res->plan[i].size);
            cJSON_AddNumberToObject(f, "present", (double)res->plan[i].done);
            cJSON_AddStringToObject(f, strlen(res->plan[i].digest) == 64 ? "sha256" : "git_sha1", res->plan[i].digest);
            cJSON_AddItemToArray(fs, f);
        }
        cli_print_json(j);
        return;
    }
    printf("%s@%.12s: %zu files, %s, %s to download (%s free in the store)\n", o->repo, res->revision, res->n_plan,
           cli_human_bytes(res->bytes_total, a, sizeof a), cli_human_bytes(res->bytes_needed, b, sizeof b),
           res->bytes_free ? cli_human_bytes(res->bytes_free, c, sizeof c) : "?");
    for (size_t i = 0; i < res->n_plan; i++) {
        const sl_reg_pull_file *f = &res->plan[i];
        const char *state = f->size && f->done == f->size ? "stored" : f->done ? "partial" : "";
        printf("  %12" PRIu64 "  %-8s %s\n", f->size, state, f->path);
    }
    if (res->bytes_free && res->bytes_needed > res->bytes_free) printf("not enough disk space: a pull would stop before downloading\n");
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
        else if (!strcmp(argv[i], "--dry-run")) o.dry_run = true;
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
    cli_progress pg;
    cli_progress_init(&pg, "total");
    if (!rc) {
        if (pg.enabled && !json && !o.dry_run) {
            o.progress = on_progress;
            o.progress_ctx = &pg;
        }
        if (o.dry_run && (o.offline || sl_reg_offline_env()))
            rc = cli_usage("pull", "--dry-run asks the hub; it cannot run offline");
    }
    if (!rc) {
        sl_reg_pull_result res;
        int prc = sl_reg_pull(r, &o, &res, &err);
        cli_progress_done(&pg);
        if (prc) rc = cli_fail(&err);
        else if (o.dry_run) print_plan(&o, &res, json);
        else if (json) {
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
        sl_reg_pull_result_free(&res);
    }
    sl_reg_close(r);
    free(repo);
    free(inc);
    free(exc);
    return rc;
}
