/*
 * memguard.c — memory options of `run` and `chat` (see memguard.h): the
 * pre-load guard, weight prefetch / --mlock, --monitor and the status line.
 *
 * The guard is memory.h's sl_fit_guard (src/estimate/guard.c): it estimates
 * exactly as `silica fit MODEL --ctx N --kv T` does and refuses when total >
 * budget, the budget being --max-memory or this machine's.
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

int cli_mem_guard(const char *path, const sl_session_opts *so, const cli_mem_opts *o) {
    sl_error err = {0};
    if (o->force || !sl_fit_guard(path, so, o->max_memory, &err)) return 0;
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

int cli_mem_loaded(cli_mem_run *r, const sl_model *m, const sl_session *s, const sl_session_opts *so,
                   const cli_mem_opts *o) {
    r->s = s;
    r->kv_alloc = sl_session_kv_bytes(s);
    r->kv_slots = so->max_kv > 0 ? so->max_kv : so->n_ctx;
    sl_error err = {0};
    /* prefetch only what RAM can hold (a forced oversized model would thrash) */
    sl_mem_host host;
    sl_mem_host_probe(&host);
    uint64_t mapped = sl_mem_model_mapped_bytes(m);
    bool prefetch = host.available_bytes == 0 || mapped <= host.available_bytes;
    if (sl_mem_pin_model(m, prefetch, o->mlock, NULL, &err)) return cli_fail(&err);
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
