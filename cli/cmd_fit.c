/*
 * cmd_fit.c — `silica fit MODEL [--ctx N] [--kv f16|f32|q8|q4] [--ram SIZE |
 * --profile 8G|16G|24G|32G|64G|128G | --all-profiles] [--bandwidth GB/s]
 * [--device gpu[:N]|auto] [--device-memory SIZE] [--json]`: will this model
 * fit, and how fast can it be?
 *
 * MODEL is a local model directory or file (headers only are read), a
 * config.json, a catalog name (data/models/NAME.json, `--list`), a
 * store name (registry: org/name[@rev][:tag]) or, when no store version
 * exists (or --endpoint / --revision / --include is given), a hub
 * repository estimated before download (src/estimate/remote.c: file list,
 * config.json and Range-read headers only).  The
 * target budget is this machine (doctor's probe), --ram SIZE (a machine of
 * this kind with that much memory) or a Mac --profile; JSON always carries
 * every profile.  --device / --device-memory add the GPU's own memory and
 * how many layers it holds (fit_gpu.c).  Exit 0 whatever the verdict; 2 on
 * bad input (and on --device gpu with no such Vulkan device).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli.h"
#include "fit_gpu.h"
#include "memguard.h"
#include "silica/memory.h"

static const char *k_help =
    "usage: silica fit MODEL [--ctx N] [--kv f16|f32|q8|q4] [--kv-bits B] [--kv-group-size G] [--max-kv-size N]\n"
    "                  [--ram SIZE | --profile 8G|16G|24G|32G|64G|128G | --all-profiles]\n"
    "                  [--device gpu|gpu:N|auto] [--device-memory SIZE]\n"
    "                  [--bandwidth GB/s] [--json] [--endpoint URL] [--revision R] [--include GLOB]\n"
    "       silica fit --list\n\n"
    "Estimate the memory a model needs (weights from its real tensor headers, KV cache,\n"
    "compute buffers, runtime overhead), judge it against a memory budget\n"
    "(comfortable | tight | no) and recommend what would make it fit: a quantization\n"
    "recipe with its predicted size, quality cost and `silica convert` command, a KV-cache\n"
    "type, a shorter context, or on a Mac the `sudo sysctl iogpu.wired_limit_mb=...` to run.\n\n"
    "MODEL: a model directory or weights file, a config.json, a store name (org/name),\n"
    "or a catalog name (`silica fit --list`) for an estimate before download.  An org/name\n"
    "that is not in the store is estimated from the hub before download: the file list,\n"
    "config.json and each safetensors/GGUF header (HTTP Range requests; no weights are\n"
    "fetched; PyTorch .bin files count by size).\n\n"
    "options:\n"
    "  --ctx N           context length in tokens (default 4096)\n"
    "  --kv T            KV-cache type: f16, f32, q8, q4 (group-wise, group 64); default: the model's\n"
    "                    dtype as `silica run` uses it (f32 for f32 weights, else f16)\n"
    "  --kv-bits B, --kv-group-size G, --max-kv-size N   the KV cache as `silica run` takes them\n"
    "                    (--max-kv-size: a rotating cache of N + batch - 1 positions per layer)\n"
    "  --ram SIZE        budget for a machine like this one with SIZE of memory (16G, 24GB)\n"
    "  --profile P       an Apple Silicon Mac with P of unified memory\n"
    "  --all-profiles    the guide table for 8/16/24/32/64/128 GB Macs\n"
    "  --device D        also judge the GPU as run/chat --device D would use it: gpu (the first GPU),\n"
    "                    gpu:N (`silica doctor` lists them) or auto (cpu: no GPU part).  A discrete GPU\n"
    "                    is judged on its largest device-local heap, with the margin below: weights\n"
    "                    (less the token embedding, which stays on the CPU) + KV cache + compute, and\n"
    "                    how many layers fit for `--gpu-layers K` (a layer: its weights + its KV cache;\n"
    "                    the output head and final norm go with the GPU part), with the RAM the rest\n"
    "                    needs.  An integrated GPU or a cpu-type device shares system memory: the budget\n"
    "                    above applies.  No such device: an error for gpu, the CPU for auto\n"
    "  --device-memory SIZE  plan for a discrete GPU with SIZE of memory (24G), present or not\n"
    "  --bandwidth GBPS  memory bandwidth for the speed ceiling; `measure`: measure this machine's\n"
    "                    now (about 1 s, as `silica doctor --bandwidth`, and keep it).  Default: the\n"
    "                    figure `silica doctor --bandwidth` kept for this machine, if any; published\n"
    "                    Apple Silicon figures are shown for comparison (for --profile: instead)\n"
    "  --list            the catalog's model names\n"
    "  --endpoint URL    hub to ask (default $HF_ENDPOINT or https://huggingface.co)\n"
    "  --revision R      hub branch, tag or commit (default main; or org/name@R)\n"
    "  --include GLOB    hub files to consider (repeatable), e.g. '*Q4_K_M.gguf'\n"
    "  --json            machine-readable output\n"
    "  --help            this text\n\n"
    "Budget on a Mac: Metal's recommended working set (2/3 of RAM up to 36 GiB, 3/4 above,\n"
    "or iogpu.wired_limit_mb); margin max(1 GiB, 5 %); comfortable also leaves 3 GiB of RAM\n"
    "for macOS and apps.  Elsewhere: RAM or the cgroup limit.\n";

static const struct { const char *name; uint64_t gib; } k_profiles[] = {
    {"8G", 8}, {"16G", 16}, {"24G", 24}, {"32G", 32}, {"64G", 64}, {"128G", 128},
};
#define N_PROFILES (sizeof k_profiles / sizeof k_profiles[0])

/* Published unified-memory bandwidths (Apple's chip specifications). */
static const struct { const char *chip; double gbps; } k_chips[] = {
    {"M1", 68.25}, {"M2/M3", 100}, {"M4", 120}, {"M4 Pro", 273}, {"M4 Max", 546}, {"M3 Ultra", 819},
};

static double gib(uint64_t b) { return (double)b / (double)SL_GIB; }


static int list_catalog(bool json) {
    char **names;
    size_t n;
    sl_error err = {0};
    if (sl_fit_catalog_list(&names, &n, &err)) return cli_fail(&err);
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (json) cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
        else printf("%s\n", names[i]);
        free(names[i]);
    }
    free(names);
    if (json) cli_print_json(arr);
    return 0;
}

static const char *setup_name(const sl_fit_setup *s, const sl_fit_model *m, char *buf, size_t cap) {
    if (!s->recipe) snprintf(buf, cap, "as is");
    else if (s->recipe->high_bits)
        snprintf(buf, cap, "%s (%d/%d-bit)", s->recipe->id, s->recipe->bits, s->recipe->high_bits);
    else snprintf(buf, cap, "%d-bit g%d", s->recipe->bits, s->recipe->group);
    return buf;
}

static cJSON *rec_json(const sl_fit_rec *r) {
    static const char *kinds[] = {"quantize", "context", "kv_cache", "sysctl"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kinds[r->kind]);
    cJSON_AddStringToObject(o, "what", r->what);
    cJSON_AddNumberToObject(o, "weights_bytes", (double)r->weights_bytes);
    cJSON_AddNumberToObject(o, "total_bytes", (double)r->total_bytes);
    cJSON_AddStringToObject(o, "verdict", sl_fit_verdict_name(r->verdict));
    cJSON_AddStringToObject(o, "quality", r->quality);
    cJSON_AddStringToObject(o, "command", r->command);
    return o;
}

static int profile_json(cJSON *profiles, const sl_fit_model *m, const sl_fit_estimate *e, int64_t ctx, sl_kv_type kv,
                        sl_error *err) {
    for (size_t i = 0; i < N_PROFILES; i++) {
        sl_fit_budget b = sl_fit_budget_apple(k_profiles[i].gib * SL_GIB, 0);
        sl_fit_setup s;
        int rc = sl_fit_best_setup(m, &b, ctx, kv, &s, err);
        if (rc) return rc;
        cJSON *p = cJSON_AddObjectToObject(profiles, k_profiles[i].name);
        cJSON_AddNumberToObject(p, "ram_bytes", (double)b.ram_bytes);
        cJSON_AddNumberToObject(p, "budget_bytes", (double)b.budget_bytes);
        cJSON_AddNumberToObject(p, "margin_bytes", (double)sl_fit_margin(&b));
        cJSON_AddStringToObject(p, "verdict", sl_fit_verdict_name(sl_fit_judge(&b, e->total_bytes)));
        cJSON *best = cJSON_AddObjectToObject(p, "best");
        cJSON_AddStringToObject(best, "setup", s.recipe ? s.recipe->id : "as-is");
        cJSON_AddStringToObject(best, "verdict", sl_fit_verdict_name(s.verdict));
        cJSON_AddNumberToObject(best, "weights_bytes", (double)s.weights_bytes);
        cJSON_AddNumberToObject(best, "total_bytes", (double)s.total_bytes);
        cJSON_AddNumberToObject(best, "max_ctx", (double)s.max_ctx);
        uint64_t mb = sl_fit_sysctl_mb(&b, e->total_bytes);
        if (mb) cJSON_AddNumberToObject(p, "sysctl_wired_limit_mb", (double)mb);
    }
    return 0;
}

static void print_table(const sl_fit_model *m, const sl_fit_estimate *e, int64_t ctx, sl_kv_type kv) {
    printf("\nguide for Apple Silicon Macs (ctx %lld, KV %s):\n", (long long)ctx, sl_kv_type_name(kv));
    printf("  %-6s %-11s %-12s %-26s %-11s %s\n", "RAM", "GPU budget", "as is", "best setup", "total", "max ctx");
    for (size_t i = 0; i < N_PROFILES; i++) {
        sl_fit_budget b = sl_fit_budget_apple(k_profiles[i].gib * SL_GIB, 0);
        sl_fit_setup s;
        sl_error err;
        if (sl_fit_best_setup(m, &b, ctx, kv, &s, &err)) continue;
        char name[96], bud[32], tot[32], mc[32];
        snprintf(bud, sizeof bud, "%.2f GiB", gib(b.budget_bytes));
        if (s.verdict == SL_FIT_NO) {
            snprintf(name, sizeof name, "-");
            snprintf(tot, sizeof tot, "-");
            snprintf(mc, sizeof mc, "-");
        } else {
            setup_name(&s, m, name, sizeof name);
            if (s.verdict == SL_FIT_TIGHT) strncat(name, " (tight)", sizeof name - strlen(name) - 1);
            snprintf(tot, sizeof tot, "%.2f GiB", gib(s.total_bytes));
            snprintf(mc, sizeof mc, "%lld", (long long)s.max_ctx);
        }
        printf("  %-6s %-11s %-12s %-26s %-11s %s\n", k_profiles[i].name, bud,
               sl_fit_verdict_name(sl_fit_judge(&b, e->total_bytes)), name, tot, mc);
    }
}

/* The bandwidth of the speed ceiling: --bandwidth GBPS; `measure` (now, kept
 * like doctor's); else, unless the target is another machine (a Mac
 * profile), the figure `silica doctor --bandwidth` kept for this one.
 * *src: "--bandwidth", "measured now", "measured" or NULL (none). */
static int fit_bandwidth(double *bw, bool other_machine, const char **src, int64_t *when, sl_error *err) {
    *src = NULL;
    *when = 0;
    if (*bw > 0) {
        *src = "--bandwidth";
    } else if (*bw < 0) {
        int rc = sl_mem_bandwidth(0, 512 * SL_MIB, 1.0, bw, err);
        if (rc) return rc;
        sl_error e2;
        if (sl_mem_bandwidth_save(NULL, *bw, 0, &e2))
            fprintf(stderr, "silica: warning: bandwidth not kept for later fits: %s\n", e2.msg);
        *src = "measured now";
    } else if (!other_machine && sl_mem_bandwidth_saved(NULL, bw, when)) {
        *src = "measured";
    }
    return 0;
}

/* The decode-speed ceiling, bandwidth / bytes read per token, naming the
 * machine each figure is for. */
static void print_speed(const sl_fit_estimate *e, double bw, const char *src, int64_t when, bool mac_target) {
    double gb = (double)e->read_per_token_bytes / 1e9;
    const char *lead = "speed:    ";
    if (src && !strcmp(src, "--bandwidth")) {
        printf("%sat most %.1f tok/s at %.0f GB/s (--bandwidth)\n", lead, bw / gb, bw);
        lead = "          ";
    } else if (src) {
        char day[32] = "";
        time_t t = (time_t)when;
        struct tm tm;
        if (when > 0 && localtime_r(&t, &tm)) strftime(day, sizeof day, " on %Y-%m-%d", &tm);
        printf("%sthis machine: at most %.1f tok/s at %.1f GB/s (%s%s)\n", lead, bw / gb, bw,
               !strcmp(src, "measured") ? "measured by `silica doctor --bandwidth`" : "measured now", day);
        lead = "          ";
    } else if (!mac_target) {
        printf("%sthis machine: bandwidth not measured (`silica doctor --bandwidth`, about 1 s, is kept for\n"
               "          later fits; or --bandwidth GBPS)\n", lead);
        lead = "          ";
    }
    printf("%s%s at most", lead, mac_target ? "Apple Silicon Macs:" : "Apple Silicon, for comparison:");
    for (size_t i = 0; i < sizeof k_chips / sizeof k_chips[0]; i++)
        printf("%s %.0f (%s %.0f GB/s)", i ? "," : "", k_chips[i].gbps / gb, k_chips[i].chip, k_chips[i].gbps);
    printf(" tok/s\n          ceiling = memory bandwidth / %.3f GB read per token (every weight once + the KV cache)\n",
           gb);
}

/* What `fit` was asked. */
typedef struct fit_args {
    const char *model, *profile;
    int64_t ctx;
    sl_session_opts kso;   /* the KV options as run/chat take them (gen.c) */
    uint64_t ram, device_memory;
    const char *device;     /* --device */
    double bw;
    bool json, all, list;
    const char *endpoint, *revision, *include[8];
    size_t n_include;
} fit_args;

/* Parse the command line into *o: 0 to go on, else the exit status (*done:
 * --help was printed or the line was refused). */
static int parse_fit_args(int argc, char **argv, fit_args *o, bool *done) {
    *o = (fit_args){.ctx = 4096};
    *done = true;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        bool kvm;
        int krc = cli_kv_opt(argc, argv, &i, "fit", &o->kso, &kvm);   /* --kv, --kv-bits, --kv-group-size, --max-kv-size */
        if (krc || kvm) {
            if (krc) return krc;
            continue;
        }
        if ((v = cli_opt_value(argc, argv, &i, "--ctx", &missing))) {
            char *end;
            double d = strtod(v, &end);
            if (*end || end == v || !(d >= 1) || d != floor(d) || d > SL_FIT_MAX_CTX)
                return cli_usage("fit", "--ctx '%s': expected a whole number of tokens in 1..%d", v, SL_FIT_MAX_CTX);
            o->ctx = (int64_t)d;
        } else if ((v = cli_opt_value(argc, argv, &i, "--ram", &missing))) {
            if (sl_mem_parse_size(v, &o->ram)) return cli_usage("fit", "--ram '%s': expected a size such as 16G or 24GB", v);
            if (o->ram < SL_GIB || o->ram > 64ull * 1024 * SL_GIB)
                return cli_usage("fit", "--ram '%s': impossible budget (expected 1 GiB to 64 TiB)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--device-memory", &missing))) {
            if (sl_mem_parse_size(v, &o->device_memory))
                return cli_usage("fit", "--device-memory '%s': expected a size such as 8G or 24GB", v);
            if (o->device_memory < SL_MIB * 64 || o->device_memory > 64ull * 1024 * SL_GIB)
                return cli_usage("fit", "--device-memory '%s': impossible size (expected 64 MiB to 64 TiB)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--device", &missing))) {
            o->device = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--profile", &missing))) {
            o->profile = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--bandwidth", &missing))) {
            char *end;
            o->bw = strcmp(v, "measure") == 0 ? -1 : strtod(v, &end);
            if (o->bw != -1 && (*end || end == v || !(o->bw > 0) || o->bw > 100000))
                return cli_usage("fit", "--bandwidth '%s': expected GB/s, e.g. 100, or 'measure'", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--endpoint", &missing))) {
            if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
                return cli_usage("fit", "--endpoint '%s': expected an http:// or https:// URL", v);
            o->endpoint = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--revision", &missing))) {
            if (!*v) return cli_usage("fit", "--revision needs a branch, tag or commit");
            o->revision = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--include", &missing))) {
            if (o->n_include == 8) return cli_usage("fit", "at most 8 --include patterns");
            o->include[o->n_include++] = v;
        } else if (missing) {
            return cli_usage("fit", "%s needs a value", argv[i]);
        } else if (!strcmp(argv[i], "--all-profiles")) {
            o->all = true;
        } else if (!strcmp(argv[i], "--json")) {
            o->json = true;
        } else if (!strcmp(argv[i], "--list")) {
            o->list = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("fit", "unknown option '%s'", argv[i]);
        } else if (!o->model) {
            o->model = argv[i];
        } else {
            return cli_usage("fit", "unexpected argument '%s'", argv[i]);
        }
    }
    *done = false;
    return 0;
}

/* The memory budget fit judges against: a Mac profile, --ram, else this
 * machine's (as the memory guard of run/chat computes it).  0 or the exit status. */
static int fit_budget(const fit_args *o, sl_fit_budget *b, char *target, size_t cap, sl_mem_host *host) {
    if (o->profile || o->ram) sl_mem_host_probe(host);
    if (o->profile) {
        size_t i = 0;
        while (i < N_PROFILES && strcasecmp(o->profile, k_profiles[i].name) != 0) i++;
        if (i == N_PROFILES)
            return cli_usage("fit", "--profile '%s': expected 8G, 16G, 24G, 32G, 64G or 128G", o->profile);
        *b = sl_fit_budget_apple(k_profiles[i].gib * SL_GIB, 0);
        snprintf(target, cap, "%s Mac", k_profiles[i].name);
    } else if (o->ram) {
        if (host->apple) *b = sl_fit_budget_apple(o->ram, 0);
        else *b = (sl_fit_budget){o->ram, o->ram, false, false};
        snprintf(target, cap, "%.1f GiB %s", gib(o->ram), host->apple ? "Mac" : "machine (CPU)");
    } else {
        if (!sl_fit_host_budget(host, b, target, cap)) {
            sl_error e;
            sl_errorf(&e, SL_EIO, "cannot read this machine's memory size; pass --ram SIZE or --profile");
            return cli_fail(&e);
        }
    }
    return 0;
}

/* The model to estimate: a path, a catalog name, a store name, else a hub
 * repository read before download (*hub, *hub_bytes).  0 or the exit status. */
static int fit_load(const fit_args *o, sl_fit_model **out, bool *hub, uint64_t *hub_bytes) {
    const char *model = o->model;
    *hub = false;
    *hub_bytes = 0;
    char *local = NULL;   /* a store version's directory */
    if (!sl_path_exists(model)) {   /* not a path: a catalog name, a store name (org/name[@rev]), else the hub */
        char cat[1200];
        snprintf(cat, sizeof cat, "%s/%s.json", sl_fit_catalog_dir(), model);
        if (strchr(model, '/') || !sl_path_exists(cat)) {
            bool hub_opts = o->endpoint || o->revision || o->n_include;
            sl_error e = {0};
            if (sl_reg_looks_like_name(model) && !hub_opts && sl_reg_resolve(model, &local, &e) == 0) model = local;
            else if (sl_reg_looks_like_name(model)) *hub = true;
            else if (hub_opts) return cli_usage("fit", "--endpoint, --revision and --include need MODEL as org/name");
            else if (cli_resolve_store(&model, NULL)) return 2;
        }
    }
    sl_error err = {0};
    if (*hub) {
        sl_reg_name nm;
        if (sl_reg_parse_name(model, &nm, &err)) return cli_fail(&err);
        if (nm.tag || (nm.revision && o->revision)) {
            sl_reg_name_free(&nm);
            return cli_usage("fit", "'%s': a hub estimate takes org/name[@revision] (a :tag names a store version)", model);
        }
        sl_fit_remote_opts ro = {.repo = nm.model, .revision = o->revision ? o->revision : nm.revision,
                                 .endpoint = o->endpoint, .include = o->include, .n_include = o->n_include};
        int hrc = sl_fit_model_remote(&ro, out, hub_bytes, &err);
        sl_reg_name_free(&nm);
        if (hrc) return cli_fail(&err);
    } else {
        int lrc = sl_fit_model_load(model, out, &err);   /* copies the name */
        free(local);
        if (lrc) return cli_fail(&err);
    }
    return 0;
}

/* Everything fit found, for the two printers. */
typedef struct fit_report {
    const fit_args *o;
    sl_fit_model *m;
    sl_kv_type kv;
    const sl_fit_budget *b;
    const char *target;
    bool hub;
    uint64_t hub_bytes;
    const char *bw_src;
    int64_t bw_when;
    sl_fit_estimate e;
    sl_fit_verdict v;
    sl_fit_rec recs[8];
    size_t nrec;
    fit_gpu gpu;            /* --device / --device-memory */
} fit_report;

/* fit --json.  0 or the exit status. */
static int print_fit_json(const fit_report *r) {
    const fit_args *fo = r->o;
    const sl_fit_model *m = r->m;
    const sl_fit_estimate e = r->e;
    sl_error err = {0};
    int rc = 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->name);
    if (m->repo[0]) cJSON_AddStringToObject(o, "repo", m->repo);
    cJSON_AddStringToObject(o, "verdict", sl_fit_verdict_name(r->v));
    cJSON_AddNumberToObject(o, "weights_bytes", (double)e.weights_bytes);
    cJSON_AddNumberToObject(o, "weights_resident_bytes", (double)e.weights_resident_bytes);
    cJSON_AddNumberToObject(o, "kv_bytes", (double)e.kv_bytes);
    cJSON_AddNumberToObject(o, "compute_bytes", (double)e.compute_bytes);
    cJSON_AddNumberToObject(o, "overhead_bytes", (double)(e.compute_bytes + e.overhead_bytes));
    cJSON_AddNumberToObject(o, "runtime_overhead_bytes", (double)e.overhead_bytes);
    cJSON_AddNumberToObject(o, "total_bytes", (double)e.total_bytes);
    cJSON_AddNumberToObject(o, "budget_bytes", (double)r->b->budget_bytes);
    cJSON_AddNumberToObject(o, "margin_bytes", (double)sl_fit_margin(r->b));
    cJSON_AddStringToObject(o, "target", r->target);
    cJSON_AddNumberToObject(o, "ctx", (double)fo->ctx);
    cJSON_AddStringToObject(o, "kv", sl_kv_type_name(r->kv));
    cJSON_AddNumberToObject(o, "params", (double)m->params);
    cJSON_AddStringToObject(o, "weights", m->weights_desc);
    cJSON_AddBoolToObject(o, "weights_exact", m->from_headers);
    if (r->hub) cJSON_AddNumberToObject(o, "hub_bytes_read", (double)r->hub_bytes);
    cJSON_AddNumberToObject(o, "bytes_per_token", (double)e.read_per_token_bytes);
    if (fo->bw > 0) {
        cJSON_AddNumberToObject(o, "tokens_per_s_ceiling", fo->bw * 1e9 / (double)e.read_per_token_bytes);
        cJSON_AddNumberToObject(o, "bandwidth_gbps", fo->bw);
        cJSON_AddStringToObject(o, "bandwidth_source", r->bw_src);   /* --bandwidth, measured (doctor), measured now */
    }
    cJSON *chips = cJSON_AddObjectToObject(o, "tokens_per_s_ceiling_apple");   /* published chip bandwidths */
    for (size_t i = 0; i < sizeof k_chips / sizeof k_chips[0]; i++)
        cJSON_AddNumberToObject(chips, k_chips[i].chip, k_chips[i].gbps * 1e9 / (double)e.read_per_token_bytes);
    cJSON *cfg = cJSON_AddObjectToObject(o, "config");
    cJSON_AddStringToObject(cfg, "model_type", m->arch);
    cJSON_AddNumberToObject(cfg, "layers", m->n_layers);
    cJSON_AddNumberToObject(cfg, "hidden", m->hidden);
    cJSON_AddNumberToObject(cfg, "heads", m->n_heads);
    cJSON_AddNumberToObject(cfg, "kv_heads", m->n_kv_heads);
    cJSON_AddNumberToObject(cfg, "head_dim", m->head_dim);
    cJSON_AddNumberToObject(cfg, "vocab", m->vocab);
    cJSON_AddNumberToObject(cfg, "sliding_window", m->sliding_window);
    cJSON_AddNumberToObject(cfg, "sliding_layers", m->n_sliding_layers);
    cJSON *pred = cJSON_AddObjectToObject(o, "quantized_weights_bytes");   /* as mlx_lm.convert -q would write */
    size_t nr;
    const sl_fit_recipe *rs = sl_fit_recipes(&nr);
    for (size_t i = 0; i < nr && !rc; i++) {
        uint64_t w;
        if (!(rc = sl_fit_predict_weights(m, &rs[i], &w, &err))) cJSON_AddNumberToObject(pred, rs[i].id, (double)w);
    }
    cJSON *profiles = cJSON_AddObjectToObject(o, "profiles");
    if (rc) {
        cJSON_Delete(o);
        return cli_fail(&err);
    }
    if ((rc = profile_json(profiles, m, &e, fo->ctx, r->kv, &err))) {
        cJSON_Delete(o);
        return cli_fail(&err);
    }
    cJSON *ra = cJSON_AddArrayToObject(o, "recommendations");
    for (size_t i = 0; i < r->nrec; i++) cJSON_AddItemToArray(ra, rec_json(&r->recs[i]));
    fit_gpu_json(&r->gpu, o);
    cJSON *na = cJSON_AddArrayToObject(o, "notes");
    for (int i = 0; i < m->n_notes; i++) cJSON_AddItemToArray(na, cJSON_CreateString(m->notes[i]));
    cli_print_json(o);
    return 0;
}

/* fit's text report. */
static void print_fit_text(const fit_report *r) {
    const fit_args *fo = r->o;
    const sl_fit_model *m = r->m;
    const sl_fit_estimate e = r->e;
    printf("model:    %s (%s, %d layers, %d KV heads x %d, vocab %d)\n", m->name, m->arch, m->n_layers, m->n_kv_heads,
           m->head_dim, m->vocab);
    if (r->hub) {
        char hb[32];
        printf("source:   %s on the hub, before download: %s of config and headers read (`silica pull %s`)\n",
               m->repo, cli_human_bytes(r->hub_bytes, hb, 32), m->repo);
    } else if (m->repo[0]) printf("source:   %s (`silica pull %s` to download)\n", m->repo, m->repo);
    char pc[32];
    sl_format_count(m->params, pc, sizeof pc);   /* logical parameters (quantized weights unpacked) */
    printf("weights:  %s, %s parameters, %s\n", m->weights_desc, pc,
           m->from_headers ? "exact from tensor headers" : "predicted from the config");
    if (m->n_sliding_layers)
        printf("sliding:  %d of %d layers keep %d positions\n", m->n_sliding_layers, m->n_layers, m->sliding_window);
    printf("context:  %lld tokens, KV %s\n", (long long)fo->ctx, sl_kv_type_name(r->kv));
    char h[5][32];
    /* the lines add up to the total: weights count what becomes resident */
    printf("  weights     %12s", cli_human_bytes(e.weights_resident_bytes, h[0], 32));
    if (e.weights_resident_bytes < e.weights_bytes)
        printf("  resident (%s mapped; of an untied embedding only the rows of %lld tokens)",
               cli_human_bytes(e.weights_bytes, h[1], 32), (long long)fo->ctx);
    printf("\n  KV cache    %12s\n  compute     %12s\n  overhead    %12s\n  total       %12s  = the lines above\n",
           cli_human_bytes(e.kv_bytes, h[1], 32), cli_human_bytes(e.compute_bytes, h[2], 32),
           cli_human_bytes(e.overhead_bytes, h[3], 32), cli_human_bytes(e.total_bytes, h[4], 32));
    if (!fo->all) {
        printf("budget:   %s: %.2f GiB%s, margin %.2f GiB\n", r->target, gib(r->b->budget_bytes),
               r->b->apple ? " GPU working set" : "", gib(sl_fit_margin(r->b)));
        printf("verdict:  %s\n", sl_fit_verdict_name(r->v));
    }
    fit_gpu_print(&r->gpu, fo->model);
    print_speed(&e, fo->bw, r->bw_src, r->bw_when, fo->profile || fo->all);
    for (int i = 0; i < m->n_notes; i++) printf("note:     %s\n", m->notes[i]);
    if (fo->all) print_table(m, &e, fo->ctx, r->kv);
    else if (r->nrec) {
        printf("\nto make it fit:\n");
        for (size_t i = 0; i < r->nrec; i++) {
            printf("  %zu. %s: total %.2f GiB (%s)", i + 1, r->recs[i].what, gib(r->recs[i].total_bytes),
                   sl_fit_verdict_name(r->recs[i].verdict));
            if (r->recs[i].kind == SL_REC_QUANT) printf(", weights %.2f GiB", gib(r->recs[i].weights_bytes));
            printf("\n     quality: %s\n     $ %s\n", r->recs[i].quality, r->recs[i].command);
        }
    }
}

int cmd_fit(int argc, char **argv) {
    fit_args o;
    bool done;
    int rc = parse_fit_args(argc, argv, &o, &done);
    if (done) return rc;
    if (o.list) return list_catalog(o.json);
    if (!o.model) return cli_usage("fit", "missing MODEL");
    if ((o.ram != 0) + (o.profile != NULL) + o.all > 1)
        return cli_usage("fit", "--ram, --profile and --all-profiles exclude each other");
    sl_fit_budget b;
    char target[160];
    sl_mem_host host;
    if ((rc = fit_budget(&o, &b, target, sizeof target, &host))) return rc;
    fit_report r = {.o = &o, .b = &b, .target = target};
    if ((rc = fit_gpu_probe(o.device, o.device_memory, &r.gpu))) return rc;
    sl_error berr = {0};
    if (fit_bandwidth(&o.bw, o.profile || o.all, &r.bw_src, &r.bw_when, &berr)) return cli_fail(&berr);
    if ((rc = fit_load(&o, &r.m, &r.hub, &r.hub_bytes))) return rc;
    sl_fit_model *m = r.m;
    if (m->max_ctx > 0 && o.ctx > m->max_ctx && m->n_notes < SL_FIT_MAX_NOTES)
        snprintf(m->notes[m->n_notes++], sizeof m->notes[0], "--ctx %lld exceeds the model's max_position_embeddings %lld",
                 (long long)o.ctx, (long long)m->max_ctx);
    if (!b.apple && host.cgroup_note[0] && !o.ram && !o.profile && m->n_notes < SL_FIT_MAX_NOTES)
        snprintf(m->notes[m->n_notes++], sizeof m->notes[0], "%.180s", host.cgroup_note);
    sl_error err = {0};
    sl_fit_kv fk = sl_fit_kv_for_session(&o.kso, m);   /* exactly the session's KV cache */
    r.kv = fk.type;
    rc = sl_fit_estimate_ex(m, o.ctx, &fk, &r.e, &err);
    if (!rc) rc = sl_fit_recommend(m, &b, o.ctx, r.kv, r.recs, 8, &r.nrec, &err);
    if (rc) {
        sl_fit_model_free(m);
        return cli_fail(&err);
    }
    r.v = sl_fit_judge(&b, r.e.total_bytes);
    if (!(rc = fit_gpu_plan(&r.gpu, m, &r.e, &fk))) {
        if (o.json) rc = print_fit_json(&r);
        else print_fit_text(&r);
    }
    fit_gpu_free(&r.gpu);
    sl_fit_model_free(m);
    return rc;
}
