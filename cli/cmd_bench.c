/*
 * cmd_bench.c — `silica bench [MODEL] [-p 512] [-n 128] [-t 2,8,16]
 * [-d 0,4096] [-r 3] [--json|--md]`: the engine's speed on this machine, as
 * llama-bench measures it: prompt processing (ppP: P prompt tokens in one
 * eval, batches of -b) and text generation (tgN: N one-token evals), each
 * after D tokens already in the KV cache (-d), for every thread count (-t),
 * repeated -r times (mean and standard deviation of tokens per second, and
 * the fastest and slowest run), plus peak RSS, the kernel set in use (or,
 * with --device gpu, the GPU's name, and with --gpu-layers the split) and,
 * for generation, the share of the memory-bandwidth roofline (measured read
 * bandwidth / bytes of weights mapped: an upper bound on what one token
 * reads, exact when the embedding is tied to the output head).
 *
 * Invariants: token ids are a fixed pseudo-random sequence (no tokenizer
 * needed), so runs are comparable between machines and builds; the context
 * filled for -d is not timed; only the public headers (include/silica) are called.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gen.h"

static const char k_help[] =
    "usage: silica bench [MODEL] [options]\n\n"
    "Prompt processing (ppP) and generation (tgN) speed in tokens per second, like llama-bench.\n"
    "Without MODEL the demo model is used (as `silica run`).\n\n"
    "options:\n"
    "  -p, --n-prompt N      prompt tokens per pp test (default 512; 0: no pp test)\n"
    "  -n, --n-gen N         generated tokens per tg test (default 128; 0: no tg test)\n"
    "  -t, --threads LIST    comma-separated thread counts (default: physical cores)\n"
    "  -d, --n-depth LIST    tokens already in the KV cache before each test (default 0)\n"
    "  -r, --repetitions N   runs per test (default 3)\n"
    "  -b, --batch N         prompt tokens per forward batch (default 512)\n"
    GEN_DEVICE_HELP
    "  --no-bandwidth        skip the read-bandwidth measurement (no roofline column)\n"
    "  --md                  markdown table (default)\n"
    "  --json                one JSON object\n"
    "  --help                this text\n";

#define MAX_LIST 16

typedef struct bench_cfg {
    int n_prompt, n_gen, reps, batch;
    int threads[MAX_LIST], n_threads;
    int depth[MAX_LIST], n_depth;
    sl_device_sel device;   /* --device: CPU (zero) unless asked */
    int gpu_layers;         /* --gpu-layers (sl_session_opts.gpu_layers) */
    int gpu_layers_run;     /* layers the first session runs on the GPU (0: none) */
    char engine[160];       /* the kernel set, or the GPU's name (from the first session) */
} bench_cfg;

typedef struct bench_result {
    int threads, depth, tokens;
    bool prompt;
    double avg, sd, lo, hi;   /* tokens per second */
} bench_result;

/* "2,8,16" -> values in [lo, hi]; 0 or 2 (printed). */
static int parse_list(const char *opt, const char *s, int lo, int hi, int *out, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < lo || v > hi || (*end && *end != ',') || *n == MAX_LIST)
            return cli_usage("bench", "%s takes up to %d comma-separated integers in [%d, %d], got '%s'", opt, MAX_LIST,
                             lo, hi, s);
        out[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return *n ? 0 : cli_usage("bench", "%s needs a value", opt);
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out) {
    int v[MAX_LIST], n;
    if (parse_list(opt, s, lo, hi, v, &n)) return 2;
    if (n != 1) return cli_usage("bench", "%s takes one integer, got '%s'", opt, s);
    *out = v[0];
    return 0;
}

/* A fixed pseudo-random id sequence over the vocabulary. */
static void fill_ids(int32_t *ids, int n, int vocab) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)vocab);
    }
}

static void stats(const double *v, int n, bench_result *r) {
    double s = 0, q = 0;
    r->lo = r->hi = v[0];
    for (int i = 0; i < n; i++) {
        s += v[i];
        r->lo = v[i] < r->lo ? v[i] : r->lo;
        r->hi = v[i] > r->hi ? v[i] : r->hi;
    }
    r->avg = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - r->avg) * (v[i] - r->avg);
    r->sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* One (threads, depth) pair: its pp and tg tests into out (count in *nr). */
static int run_pair(const sl_model *m, bench_cfg *b, int threads, int depth, const int32_t *ids, float *logits,
                    bench_result *out, int *nr, sl_error *err) {
    int need = depth + (b->n_prompt > b->n_gen ? b->n_prompt : b->n_gen) + 1;
    sl_session_opts so = {
        .n_ctx = need, .n_threads = threads, .batch = b->batch, .device = b->device, .gpu_layers = b->gpu_layers};
    sl_session *s = NULL;
    int rc = sl_session_new(m, &so, &s, err);
    if (rc) return rc;
    if (!b->engine[0]) {
        cli_device_note(s);
        const char *dev = sl_session_device(s, NULL);
        int ng = b->gpu_layers_run = sl_session_gpu_layers(s), nl = sl_model_get_config(m)->n_layers;
        if (ng && ng < nl) snprintf(b->engine, sizeof b->engine, "%s (%d of %d layers)", dev, ng, nl);
        else snprintf(b->engine, sizeof b->engine, "%s", strcmp(dev, "cpu") == 0 ? sl_engine_kernels() : dev);
    }
    double v[64];
    for (int test = 0; test < 2 && !rc; test++) {
        int tokens = test == 0 ? b->n_prompt : b->n_gen;
        if (tokens == 0) continue;
        for (int r = 0; r < b->reps && !rc; r++) {
            sl_session_reset(s);
            if (depth && (rc = sl_session_eval(s, ids, depth, false, logits, err))) break;
            double t0 = gen_now();
            if (test == 0) rc = sl_session_eval(s, ids + depth, tokens, false, logits, err);
            else
                for (int i = 0; i < tokens && !rc; i++) rc = sl_session_eval(s, ids + depth + i, 1, false, logits, err);
            v[r] = tokens / (gen_now() - t0);
        }
        if (rc) break;
        bench_result *o = &out[(*nr)++];
        *o = (bench_result){.threads = threads, .depth = depth, .tokens = tokens, .prompt = test == 0};
        stats(v, b->reps, o);
    }
    sl_session_free(s);
    return rc;
}

static const char *test_name(const bench_result *r, char *buf, size_t cap) {
    if (r->depth) snprintf(buf, cap, "%s%d @ d%d", r->prompt ? "pp" : "tg", r->tokens, r->depth);
    else snprintf(buf, cap, "%s%d", r->prompt ? "pp" : "tg", r->tokens);
    return buf;
}

/* tg share of the roofline (bandwidth / weight bytes); < 0: not measured. */
static double roofline_pct(const bench_result *r, double gbps, uint64_t wbytes) {
    if (r->prompt || gbps <= 0 || !wbytes) return -1;
    return 100.0 * r->avg / (gbps * 1e9 / (double)wbytes);
}

static void print_md(const char *path, uint64_t wbytes, const char *kernels, double gbps, long long rss,
                     const bench_result *res, int nr) {
    char sz[32], rs[32], name[64];
    printf("| model | size | kernels | threads | test | t/s | min – max | roofline |\n");
    printf("|---|---:|---|---:|---|---:|---:|---:|\n");
    for (int i = 0; i < nr; i++) {
        const bench_result *r = &res[i];
        double pct = roofline_pct(r, gbps, wbytes);
        char roof[16] = "";
        if (pct >= 0) snprintf(roof, sizeof roof, "%.0f %%", pct);
        printf("| %s | %s | %s | %d | %s | %.2f ± %.2f | %.2f – %.2f | %s |\n", path,
               cli_human_bytes(wbytes, sz, sizeof sz), kernels, r->threads, test_name(r, name, sizeof name), r->avg,
               r->sd, r->lo, r->hi, roof);
    }
    printf("\npeak RSS %s", cli_human_bytes((unsigned long long)rss, rs, sizeof rs));
    if (gbps > 0) printf("; read bandwidth %.1f GB/s, roofline tg %.2f tok/s", gbps, gbps * 1e9 / (double)wbytes);
    printf("\n");
}

static void print_json(const char *path, uint64_t wbytes, const char *kernels, double gbps, long long rss,
                       const bench_cfg *b, const bench_result *res, int nr) {
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    char name[64];
    cJSON_AddStringToObject(j, "model", path);
    cJSON_AddNumberToObject(j, "weight_bytes", (double)wbytes);
    cJSON_AddStringToObject(j, "kernels", kernels);
    cJSON_AddNumberToObject(j, "gpu_layers", b->gpu_layers_run);
    cJSON_AddNumberToObject(j, "batch", b->batch);
    cJSON_AddNumberToObject(j, "repetitions", b->reps);
    if (gbps > 0) {
        cJSON_AddNumberToObject(j, "read_bandwidth_gbps", gbps);
        cJSON_AddNumberToObject(j, "roofline_tg_tps", gbps * 1e9 / (double)wbytes);
    }
    cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)rss);
    for (int i = 0; i < nr; i++) {
        const bench_result *r = &res[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "test", test_name(r, name, sizeof name));
        cJSON_AddNumberToObject(o, "threads", r->threads);
        cJSON_AddNumberToObject(o, "n_prompt", r->prompt ? r->tokens : 0);
        cJSON_AddNumberToObject(o, "n_gen", r->prompt ? 0 : r->tokens);
        cJSON_AddNumberToObject(o, "n_depth", r->depth);
        cJSON_AddNumberToObject(o, "avg_ts", r->avg);
        cJSON_AddNumberToObject(o, "stddev_ts", r->sd);
        cJSON_AddNumberToObject(o, "min_ts", r->lo);
        cJSON_AddNumberToObject(o, "max_ts", r->hi);
        double pct = roofline_pct(r, gbps, wbytes);
        if (pct >= 0) cJSON_AddNumberToObject(o, "roofline_pct", pct);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddItemToObject(j, "results", arr);
    cli_print_json(j);
}

static int parse_args(int argc, char **argv, bench_cfg *b, const char **path, bool *json, bool *bw, bool *help) {
    const char *const names[][2] = {{"-p", "--n-prompt"}, {"-n", "--n-gen"}, {"-t", "--threads"},
                                    {"-d", "--n-depth"}, {"-r", "--repetitions"}, {"-b", "--batch"},
                                    {"-dev", "--device"}, {"-ngl", "--gpu-layers"}};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { *help = true; return 0; }
        if (strcmp(argv[i], "--json") == 0) { *json = true; continue; }
        if (strcmp(argv[i], "--md") == 0) { *json = false; continue; }
        if (strcmp(argv[i], "--no-bandwidth") == 0) { *bw = false; continue; }
        int k = -1;
        const char *v = NULL;
        bool missing = false;
        for (int o = 0; o < (int)(sizeof names / sizeof names[0]) && k < 0; o++)
            for (int a = 0; a < 2 && k < 0; a++)
                if ((v = cli_opt_value(argc, argv, &i, names[o][a], &missing)) || missing) k = o;
        if (missing) return cli_usage("bench", "%s needs a value", argv[i]);
        int rc = 0;
        switch (k) {
        case 0: rc = parse_int("-p", v, 0, 1 << 20, &b->n_prompt); break;
        case 1: rc = parse_int("-n", v, 0, 1 << 20, &b->n_gen); break;
        case 2: rc = parse_list("-t", v, 1, 256, b->threads, &b->n_threads); break;
        case 3: rc = parse_list("-d", v, 0, 1 << 22, b->depth, &b->n_depth); break;
        case 4: rc = parse_int("-r", v, 1, 64, &b->reps); break;
        case 5: rc = parse_int("-b", v, 1, 1 << 16, &b->batch); break;
        case 6: {
            sl_error e = {0};
            rc = sl_device_parse(v, &b->device, &e) ? cli_usage("bench", "%s", e.msg) : 0;
            break;
        }
        case 7: rc = cli_gpu_layers("bench", v, &b->gpu_layers); break;
        default:
            if (argv[i][0] == '-' && argv[i][1]) return cli_usage("bench", "unknown option '%s'", argv[i]);
            if (*path) return cli_usage("bench", "unexpected argument '%s'", argv[i]);
            *path = argv[i];
        }
        if (rc) return rc;
    }
    if (!b->n_prompt && !b->n_gen) return cli_usage("bench", "-p and -n are both 0: nothing to measure");
    return 0;
}

int cmd_bench(int argc, char **argv) {
    bench_cfg b = {.n_prompt = 512, .n_gen = 128, .reps = 3, .batch = 512, .n_depth = 1};
    const char *path = NULL;
    bool json = false, bw = true, help = false;
    int rc = parse_args(argc, argv, &b, &path, &json, &bw, &help);
    if (rc) return rc;
    if (help) { fputs(k_help, stdout); return 0; }
    if (!path && !(path = sl_gen_default_model()))
        return cli_usage("bench", "no MODEL given and no demo model found (set SILICA_DEFAULT_MODEL)");
    if (cli_resolve_store(&path, NULL)) return 2;
    if (!b.n_threads) {   /* the engine's default: physical cores */
        const sl_cpu_features *cpu = sl_cpu();
        b.threads[b.n_threads++] = cpu->cores_physical > 0 ? cpu->cores_physical : cpu->cores_logical > 0 ? cpu->cores_logical : 1;
    }
    sl_error err = {0};
    sl_model *m = NULL;
    if (sl_model_open(path, &m, &err)) return cli_fail(&err);
    const sl_model_config *c = sl_model_get_config(m);
    int maxd = 0;
    for (int i = 0; i < b.n_depth; i++) maxd = b.depth[i] > maxd ? b.depth[i] : maxd;
    int nids = maxd + (b.n_prompt > b.n_gen ? b.n_prompt : b.n_gen);
    int32_t *ids = malloc((size_t)nids * sizeof *ids);
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    bench_result *res = calloc((size_t)(2 * b.n_threads * b.n_depth), sizeof *res);
    int nr = 0;
    if (!ids || !logits || !res) {
        sl_errorf(&err, SL_ENOMEM, "out of memory");
        rc = cli_fail(&err);
        goto out;
    }
    fill_ids(ids, nids, c->vocab_size);
    for (int ti = 0; ti < b.n_threads; ti++)
        for (int di = 0; di < b.n_depth; di++)
            if (run_pair(m, &b, b.threads[ti], b.depth[di], ids, logits, res, &nr, &err)) {
                rc = cli_fail(&err);
                goto out;
            }
    long long rss = (long long)sl_mem_peak_rss();   /* before the bandwidth test's buffer */
    double gbps = 0;
    if (bw && sl_mem_bandwidth(0, 512ull << 20, 1.0, &gbps, &err)) { rc = cli_fail(&err); goto out; }
    const char *base = strrchr(path, '/') && strrchr(path, '/')[1] ? strrchr(path, '/') + 1 : path;
    if (json) print_json(base, sl_model_weight_bytes(m), b.engine, gbps, rss, &b, res, nr);
    else print_md(base, sl_model_weight_bytes(m), b.engine, gbps, rss, res, nr);
out:
    free(ids);
    free(logits);
    free(res);
    sl_model_close(m);
    return rc;
}
