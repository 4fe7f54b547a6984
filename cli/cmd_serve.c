/*
 * cmd_serve.c — `silica serve [MODEL|STORE_NAME ...] [options]`: the HTTP
 * server of silica/serve.h (OpenAI and Ollama APIs, web chat).  This file
 * only parses options, resolves store names, runs the memory guard for
 * every model (weights + one KV cache per slot) and handles signals: the
 * first SIGINT/SIGTERM drains the requests in flight, a second one exits.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "memguard.h"
#include "silica/generate.h"
#include "silica/serve.h"

static const char *k_help =
    "usage: silica serve [MODEL|STORE_NAME ...] [--host ADDR] [--port N] [--api-key KEY] [--parallel N]\n"
    "                    [--ctx N] [--kv TYPE] [--max-memory SIZE] [--force] [--cors ORIGIN]\n"
    "                    [--log-format text|json] [--threads N] [--device D] [--timeout S] [--max-body SIZE]\n"
    "                    [--gpu-layers N] [--json]\n\n"
    "Serve models over HTTP: the OpenAI API (POST /v1/chat/completions, /v1/completions, GET /v1/models),\n"
    "the Ollama API (POST /api/chat, /api/generate, /api/show, GET /api/tags), GET /health, GET /metrics\n"
    "(Prometheus), POST /tokenize, /detokenize, /apply-template (the prompt a chat body renders to), and\n"
    "a web chat at http://HOST:PORT/.\n\n"
    "Tool calling: \"tools\" (OpenAI and Ollama) are rendered by the model's chat template; the calls the\n"
    "model writes in its family's format (Llama 3 JSON, Qwen/Hermes <tool_call>, Mistral [TOOL_CALLS])\n"
    "come back as message.tool_calls (streamed as delta.tool_calls) with finish_reason \"tool_calls\".\n"
    "tool_choice: \"auto\" (default), \"none\" (the text comes back as content), \"required\" or\n"
    "{\"type\": \"function\", \"function\": {\"name\": F}}: exactly one call, generated under the grammar of\n"
    "the tools' parameters (grammar.h), so it always parses and validates.\n\n"
    "Requests decode together (continuous batching, --parallel sequences per model); a request's tokens\n"
    "are the same whether it runs alone or among others (same seed and parameters).  A new request reuses\n"
    "the KV cache of a finished one that shares its prompt's beginning (multi-turn chat).\n"
    "Without MODEL the demo model is served.  A model's id (the \"model\" of requests) is its store name\n"
    "or its directory's name; requests without \"model\" go to the first.  The first model loads at start;\n"
    "each other one loads on its first request if the fit advisor says it fits next to those loaded\n"
    "(--max-memory), else that request gets 503 with the memory breakdown.\n\n"
    "options:\n"
    "  --host ADDR           address to listen on (default 127.0.0.1: this machine only); another\n"
    "                        address without --api-key prints a warning\n"
    "  --port N              port (default 8080; 0: any free port, printed when listening)\n"
    "  --api-key KEY         require \"Authorization: Bearer KEY\" on every route but / and /health\n"
    "                        (also read from $SILICA_API_KEY)\n"
    "  --parallel N          sequences decoded together per model (default 4); more requests wait\n"
    "  --ctx N               context per sequence (default: the model's, at most 4096)\n"
    GEN_KV_HELP
    GEN_DEVICE_HELP
    "  --threads N           worker threads (default: physical cores)\n"
    "  --max-memory SIZE     memory budget (512M, 8G) for the models loaded together, each counted as\n"
    "                        weights + --parallel KV caches of --ctx; a model that does not fit alone is\n"
    "                        refused at start, one that does not fit beside those loaded gets 503 on use\n"
    "                        (default: this machine's budget, as `silica fit`)\n"
    "  --force               start and load models even when the estimate exceeds the budget\n"
    "  --cors ORIGIN         allow browser pages from ORIGIN (\"*\" for any) to call the API\n"
    "  --log-format F        one line per request on stderr: text (default), json or none\n"
    "  --timeout S           idle connection and request upload limit in seconds (default 30)\n"
    "  --max-body SIZE       largest request body (default 8M); larger ones get 413\n"
    "  --json                print the listening line as JSON: {\"url\", \"host\", \"port\", \"models\"}\n"
    "  --help                this text\n\n"
    "The first SIGINT or SIGTERM stops accepting requests, finishes those in flight, then exits 0.\n";

static void on_stop_signal(int sig) {
    static volatile sig_atomic_t seen;
    if (seen++) _exit(128 + sig);
    sl_serve_stop();
}

typedef struct ready_ctx {
    bool json;
    const sl_serve_model_spec *models;
    int n;
    char **ids;
} ready_ctx;

static void on_ready(void *ud, const char *host, int port) {
    const ready_ctx *c = ud;
    char url[300];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(url, sizeof url, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (c->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "url", url);
        cJSON_AddStringToObject(j, "host", host);
        cJSON_AddNumberToObject(j, "port", port);
        cJSON *m = cJSON_AddArrayToObject(j, "models");
        for (int i = 0; i < c->n; i++) cJSON_AddItemToArray(m, cJSON_CreateString(c->ids[i]));
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (s) printf("%s\n", s);
        free(s);
    } else {
        printf("silica serve: listening on %s (", url);
        for (int i = 0; i < c->n; i++) printf("%s%s", i ? ", " : "", c->ids[i]);
        printf(")\n");
    }
    fflush(stdout);
}

static bool is_loopback(const char *h) {
    return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

static int parse_int(const char *v, long lo, long hi, long *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* The model's id: the store name as given, else the path's last component. */
static char *model_id(const char *arg, const char *store_name) {
    if (store_name) return strdup(store_name);
    size_t n = strlen(arg);
    while (n > 1 && arg[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && arg[b - 1] != '/') b--;
    return strndup(arg + b, n - b);
}

int cmd_serve(int argc, char **argv) {
    sl_serve_opts o;
    memset(&o, 0, sizeof o);
    cli_mem_opts mo;
    memset(&mo, 0, sizeof mo);
    const char *args[64];
    int n_args = 0;
    bool json = false;
    long x;
    o.api_key = getenv("SILICA_API_KEY");
    if (o.api_key && !o.api_key[0]) o.api_key = NULL;
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched = false;
        const char *v;
        if (cli_is_help(argv[i])) {
            fputs(k_help, stdout);
            return 0;
        }
        int rc = cli_engine_opt(argc, argv, &i, "serve", &o.session, &matched);
        if (!rc && !matched) rc = cli_mem_opt(argc, argv, &i, "serve", &mo, &matched);
        if (rc) return rc;
        if (matched) continue;
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if ((v = cli_opt_value(argc, argv, &i, "--host", &missing))) o.host = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--port", &missing))) {
            if (parse_int(v, 0, 65535, &x)) return cli_usage("serve", "--port must be 0..65535, got '%s'", v);
            o.port = x == 0 ? -1 : (int)x;
        } else if ((v = cli_opt_value(argc, argv, &i, "--api-key", &missing))) o.api_key = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--parallel", &missing))) {
            if (parse_int(v, 1, 256, &x)) return cli_usage("serve", "--parallel must be 1..256, got '%s'", v);
            o.parallel = (int)x;
        } else if ((v = cli_opt_value(argc, argv, &i, "--cors", &missing))) o.cors = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--log-format", &missing))) {
            if (strcmp(v, "text") == 0) o.log = SL_SERVE_LOG_TEXT;
            else if (strcmp(v, "json") == 0) o.log = SL_SERVE_LOG_JSON;
            else if (strcmp(v, "none") == 0) o.log = SL_SERVE_LOG_NONE;
            else return cli_usage("serve", "--log-format must be text, json or none, got '%s'", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--timeout", &missing))) {
            if (parse_int(v, 1, 86400, &x)) return cli_usage("serve", "--timeout must be 1..86400 seconds, got '%s'", v);
            o.timeout_s = (int)x;
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-body", &missing))) {
            uint64_t sz;
            if (sl_mem_parse_size(v, &sz) || sz < 1024 || sz > ((uint64_t)1 << 32))
                return cli_usage("serve", "--max-body must be a size from 1K to 4G, got '%s'", v);
            o.max_body = (size_t)sz;
        } else if (missing) return cli_usage("serve", "%s needs a value", argv[i]);
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("serve", "unknown option '%s'", argv[i]);
        else if (n_args < 64) args[n_args++] = argv[i];
        else return cli_usage("serve", "at most 64 models");
    }
    if (n_args == 0) {
        const char *d = sl_gen_default_model();
        if (!d) return cli_usage("serve", "no MODEL given and no demo model found");
        args[n_args++] = d;
    }
    sl_serve_model_spec specs[64];
    char *paths[64] = {0}, *ids[64] = {0};
    int rc = 0;
    for (int i = 0; i < n_args && !rc; i++) {
        const char *path = args[i], *store = NULL;
        if (!sl_path_exists(path) && (rc = cli_resolve_store(&path, &store))) break;
        paths[i] = strdup(path);
        ids[i] = model_id(args[i], store);
        specs[i].path = paths[i];
        specs[i].name = ids[i];
        /* the guard: weights + one KV cache of --ctx per slot */
        sl_session_opts so = o.session;
        int par = o.parallel > 0 ? o.parallel : 4;
        so.n_ctx = (so.n_ctx > 0 ? so.n_ctx : 4096) * par;
        rc = cli_mem_guard(paths[i], &so, &mo);
    }
    if (!rc) {
        const char *host = o.host ? o.host : "127.0.0.1";
        if (!is_loopback(host) && !o.api_key)
            fprintf(stderr, "silica serve: warning: listening on %s without --api-key: anyone who can reach this "
                            "address can use the models\n", host);
        ready_ctx rcx = {json, specs, n_args, ids};
        o.max_memory = mo.max_memory;
        o.force = mo.force;
        o.models = specs;
        o.n_models = n_args;
        o.ready_fn = on_ready;
        o.ready_ud = &rcx;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        sl_error err = {0};
        if (sl_serve_run(&o, &err)) rc = cli_fail(&err);
    }
    for (int i = 0; i < n_args; i++) {
        free(paths[i]);
        free(ids[i]);
    }
    return rc;
}
