/*
 * memguard.c — memory options of `run` and `chat` (see memguard.h): the
 * pre-load guard, weight prefetch / --mlock, --monitor and the status line.
 *
 * The guard estimates with src/estimate exactly as `silica fit MODEL --ctx N
 * --kv T` does and refuses when total > budget, the budget being
 * --max-memory or this machine's (cli_host_budget, shared with cmd_fit.c).
 * When the estimator cannot read the model, the guard stays out of the way:
 * opening the model reports the real problem.
 *
 * KV bytes in the monitor and the status line: sl_session_kv_bytes (what
 * the session allocated up front, quantized or rotating caches included) x
 * the share of its positions filled (cached positions / n_ctx, or / max_kv
 * for a rotating cache, at most 1).
 */
#include "memguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_mem_opt(int argc, char **argv, int *i, const char *cmd, cli_mem_opts *o, bool *matched) {
    bool missing = false;
    const char *v;
    *matched = true;
    if (!strcmp(argv[*i], "--force")) { o->force = true; return 0; }
    if (!strcmp(argv[*i], "--mlock")) { o->mlock = true; return 0; }
    if ((v = cli_opt_value(argc, argv, i, "--max-memory", &missing))) {
        uint64_t x;
        if (sl_mem_parse_size(v, &x)) return cli_usage(cmd, "--max-memory '%s': expected a size such as 512M or 8G", v);
        if (x < SL_MIB || x > 64ull * 1024 * SL_GIB)
            return cli_usage(cmd, "--max-memory '%s': impossible budget (expected 1 MiB to 64 TiB)", v);
        o->max_memory = x;
        return 0;
    }
    if (missing) return cli_usage(cmd, "--max-memory needs a value");
    if ((v = cli_opt_value(argc, argv, i, "--monitor", &missing))) {
        if (!*v) return cli_usage(cmd, "--monitor needs a file name");
        o->monitor = v;
        return 0;
    }
    if (missing) return cli_usage(cmd, "--monitor needs a value");
    if ((v = cli_opt_value(argc, argv, i, "--monitor-interval", &missing))) {
        char *end;
        long x = strtol(v, &end, 10);
        if (!*v || *end || x < SL_MONITOR_MIN_MS || x > SL_MONITOR_MAX_MS)
            return cli_usage(cmd, "--monitor-interval '%s': expected milliseconds in %d..%d", v, SL_MONITOR_MIN_MS,
                             SL_MONITOR_MAX_MS);
        o->monitor_ms = (int)x;
        return 0;
    }
    if (missing) return cli_usage(cmd, "--monitor-interval needs a value");
    *matched = false;
    return 0;
}

bool cli_host_budget(sl_mem_host *host, sl_fit_budget *b, char *target, size_t cap) {
    sl_mem_host_probe(host);
    *b = (sl_fit_budget){host->total_bytes, host->budget_bytes, host->apple, false};
    if (!host->apple && host->cgroup_limit_bytes && host->cgroup_limit_bytes < host->total_bytes) {
        b->ram_bytes = host->cgroup_limit_bytes;
        b->whole_ram = true;
    }
    snprintf(target, cap, "this machine (%s)", host->budget_source);
    return b->budget_bytes != 0;
}

/* x in the unit of `ref` (GiB when ref >= 1 GiB, else MiB), 2 decimals. */
static const char *in_unit(uint64_t x, uint64_t ref, char *buf, size_t cap) {
    double u = ref >= SL_GIB ? (double)SL_GIB : (double)SL_MIB;
    snprintf(buf, cap, "%.2f", (double)x / u);
    return buf;
}

sl_fit_kv cli_mem_fit_kv(const sl_session_opts *so, const sl_fit_model *m) {
    bool f32 = so->kv_dtype ? so->kv_dtype == SL_F32 : m->f32_compute;
    sl_fit_kv k = {so->kv_bits == 8 ? SL_KV_Q8 : so->kv_bits == 4 ? SL_KV_Q4 : f32 ? SL_KV_F32 : SL_KV_F16,
                   so->kv_group_size, so->max_kv, so->kv_keep, f32};
    return k;
}

int cli_mem_guard(const char *path, const sl_session_opts *so, const cli_mem_opts *o) {
    if (o->force) return 0;
    int64_t ctx = so->n_ctx;
    sl_fit_budget b;
    char target[160];
    if (o->max_memory) {
        b = (sl_fit_budget){o->max_memory, o->max_memory, false, true};
        snprintf(target, sizeof target, "--max-memory");
    } else {
        sl_mem_host host;
        if (!cli_host_budget(&host, &b, target, sizeof target)) return 0;   /* unknown machine: nothing to compare */
    }
    sl_error err = {0};
    sl_fit_model *m = NULL;
    if (sl_fit_model_load(path, &m, &err)) return 0;   /* gen_open reports what is wrong with the model */
    sl_fit_kv fk = cli_mem_fit_kv(so, m);
    sl_kv_type kv = fk.type;
    sl_fit_estimate e;
    if (ctx > SL_FIT_MAX_CTX) ctx = SL_FIT_MAX_CTX;
    if (sl_fit_estimate_ex(m, ctx, &fk, &e, &err)) {
        sl_fit_model_free(m);
        return 0;
    }
    if (e.total_bytes <= b.budget_bytes) {
        sl_fit_model_free(m);
        return 0;
    }
    sl_fit_rec recs[8];
    size_t nrec = 0;
    char tries[2048] = "";
    if (!sl_fit_recommend(m, &b, ctx, kv, recs, 8, &nrec, &err)) {
        bool quant = false, shorter = false;
        for (size_t k = 0; k < nrec; k++) {
            const sl_fit_rec *r = &recs[k];
            if (r->verdict == SL_FIT_NO || (r->kind == SL_REC_QUANT && quant) || (r->kind == SL_REC_CTX && shorter))
                continue;
            if (r->kind != SL_REC_QUANT && r->kind != SL_REC_CTX) continue;   /* KV types and sysctls: see `silica fit` */
            size_t l = strlen(tries);
            snprintf(tries + l, sizeof tries - l, "%s%s", l ? ", or " : "; try: ",
                     r->kind == SL_REC_QUANT ? r->command : r->what);
            quant |= r->kind == SL_REC_QUANT;
            shorter |= r->kind == SL_REC_CTX;
        }
    }
    if (!tries[0]) snprintf(tries, sizeof tries, "; no quantization or shorter context makes it fit");
    uint64_t ref = e.total_bytes > b.budget_bytes ? e.total_bytes : b.budget_bytes;
    const char *unit = ref >= SL_GIB ? "GiB" : "MiB";
    char t[32], w[32], k[32], ov[32], bud[32], kvs[64] = "";
    snprintf(kvs, sizeof kvs, " --kv %s", sl_kv_type_name(kv));   /* the cache it would use (default: the model's dtype) */
    if (fk.max_kv > 0)
        snprintf(kvs + strlen(kvs), sizeof kvs - strlen(kvs), " --max-kv-size %lld", (long long)fk.max_kv);
    sl_errorf(&err, SL_EINVAL,
              "%s: needs %s %s at --ctx %lld%s (weights %s + KV %s + overhead %s) but the budget is %s %s (%s)%s; "
              "--force runs it anyway",
              path, in_unit(e.total_bytes, ref, t, sizeof t), unit, (long long)ctx, kvs,
              in_unit(e.weights_resident_bytes, ref, w, sizeof w), in_unit(e.kv_bytes, ref, k, sizeof k),
              in_unit(e.compute_bytes + e.overhead_bytes, ref, ov, sizeof ov), in_unit(b.budget_bytes, ref, bud, sizeof bud),
              unit, target, tries);
    sl_fit_model_free(m);
    return cli_fail(&err);
}

int cli_mem_begin(cli_mem_run *r, const cli_mem_opts *o) {
    memset(r, 0, sizeof *r);
    sl_error err = {0};
    if (!o->monitor && o->monitor_ms) {
        sl_errorf(&err, SL_EINVAL, "--monitor-interval %d: needs --monitor FILE", o->monitor_ms);
        return cli_fail(&err);
    }
    if (!o->monitor) return 0;
    if (sl_mem_monitor_open(o->monitor, &r->mon, &err) || sl_mem_monitor_phase(r->mon, "load", &err) ||
        sl_mem_monitor_start(r->mon, o->monitor_ms ? o->monitor_ms : 100, &err)) {
        sl_mem_monitor_close(r->mon, NULL);
        r->mon = NULL;
        return cli_fail(&err);
    }
    return 0;
}

int cli_mem_loaded(cli_mem_run *r, const gen_model *g, const sl_session *s, const sl_session_opts *so,
                   const cli_mem_opts *o) {
    r->s = s;
    r->kv_alloc = sl_session_kv_bytes(s);
    r->kv_slots = so->max_kv > 0 ? so->max_kv : so->n_ctx;
    sl_error err = {0};
    /* prefetch only what RAM can hold (a forced oversized model would thrash) */
    sl_mem_host host;
    sl_mem_host_probe(&host);
    uint64_t mapped = sl_mem_model_mapped_bytes(g->m);
    bool prefetch = host.available_bytes == 0 || mapped <= host.available_bytes;
    if (sl_mem_pin_model(g->m, prefetch, o->mlock, NULL, &err)) return cli_fail(&err);
    sl_mem_monitor_set(r->mon, 0, (uint64_t)sl_session_pos(s));
    return 0;
}

void cli_mem_kv(const cli_mem_run *r, uint64_t *used, uint64_t *cap) {
    *cap = r->kv_alloc;
    *used = 0;
    if (!r->s || r->kv_slots <= 0) return;
    int64_t pos = sl_session_pos(r->s);
    if (pos >= r->kv_slots) *used = r->kv_alloc;
    else if (pos > 0) *used = (uint64_t)((double)r->kv_alloc * (double)pos / (double)r->kv_slots + 0.5);
}

void cli_mem_progress(void *ud, const char *phase, int tokens) {
    cli_mem_run *r = ud;
    if (!r->mon) return;
    uint64_t used, cap;
    cli_mem_kv(r, &used, &cap);
    sl_mem_monitor_set(r->mon, used, (uint64_t)(tokens < 0 ? 0 : tokens));
    sl_mem_monitor_phase(r->mon, phase, NULL);   /* a write error surfaces at cli_mem_end */
}

void cli_mem_phase(cli_mem_run *r, const char *phase) {
    if (r->s) cli_mem_progress(r, phase, sl_session_pos(r->s));
    else sl_mem_monitor_phase(r->mon, phase, NULL);
}

const char *cli_mib(uint64_t b, char *buf, size_t cap) {
    double m = (double)b / (double)SL_MIB;
    if (m >= 100) snprintf(buf, cap, "%.0f", m);
    else if (m >= 1 || m == 0) snprintf(buf, cap, "%.1f", m);
    else snprintf(buf, cap, "%.2f", m);   /* a short prompt's KV: 0.04 MiB, not 0.0 */
    return buf;
}

void cli_mem_status(const cli_mem_run *r, double tok_s, FILE *f) {
    uint64_t used, cap;
    cli_mem_kv(r, &used, &cap);
    uint64_t rss = sl_mem_rss(), peak = sl_mem_peak_rss();
    if (peak < rss) peak = rss;
    char a[32], b[32], c[32], d[32];
    fprintf(f, "RSS %s MiB \xc2\xb7 peak %s MiB \xc2\xb7 KV %s/%s MiB \xc2\xb7 %.1f tok/s\n", cli_mib(rss, a, 32),
            cli_mib(peak, b, 32), cli_mib(used, c, 32), cli_mib(cap, d, 32), tok_s);
    fflush(f);
}

int cli_mem_end(cli_mem_run *r, bool report) {
    if (!r->mon) return 0;
    cli_mem_phase(r, "done");
    sl_error err = {0};
    int rc = sl_mem_monitor_close(r->mon, &err);
    r->mon = NULL;
    if (!rc) return 0;
    return report ? cli_fail(&err) : 2;
}
