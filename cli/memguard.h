/*
 * memguard.h — memory options shared by `run` and `chat` (memguard.c): the
 * pre-load guard (--max-memory, --force), weight prefetch and --mlock, the
 * --monitor time series and the status line (RSS, peak, KV, tok/s).
 *
 * Invariants: the guard (src/estimate/guard.c) uses the estimator exactly
 * as `silica fit` does (same model reading, same numbers, same budget rule)
 * and runs before the KV cache is allocated or any weight page is read; a
 * refusal is one line with the numbers and what would make it fit, exit 2;
 * --force skips it.
 */
#ifndef SILICA_CLI_MEMGUARD_H
#define SILICA_CLI_MEMGUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gen.h"
#include "silica/memory.h"

typedef struct cli_mem_opts {
    uint64_t max_memory;   /* --max-memory SIZE (0: this machine's budget, as `silica fit`) */
    bool force;            /* --force: skip the guard */
    bool mlock;            /* --mlock: lock the weight mappings in RAM */
    const char *monitor;   /* --monitor FILE */
    int monitor_ms;        /* --monitor-interval MS (0: 100) */
} cli_mem_opts;

#define CLI_MEM_HELP                                                                                   \
    "  --max-memory SIZE     memory budget for the guard (512M, 8G; default: this machine's, as\n"   \
    "                        `silica fit` computes it); a model that will not fit is refused\n"      \
    "  --force               run even when the estimate exceeds the budget\n"                        \
    "  --mlock               lock the weights in RAM (fails clearly if RLIMIT_MEMLOCK is too low)\n" \
    "  --monitor FILE        write a JSON-lines memory time series (t, rss_bytes, peak_rss_bytes,\n" \
    "                        kv_bytes, tokens, phase) for `silica plot FILE -o mem.svg`\n"           \
    "  --monitor-interval MS sampling interval of --monitor (default 100)\n"

/* Consume argv[*i] (and its value) when it is one of the options above. */
int cli_mem_opt(int argc, char **argv, int *i, const char *cmd, cli_mem_opts *o, bool *matched);

/* The guard (memory.h's sl_fit_guard, skipped by --force): 0 (fits, forced,
 * or nothing to estimate from) or 2 (refused, printed); so->n_ctx is the
 * context the session will be created with. */
int cli_mem_guard(const char *path, const sl_session_opts *so, const cli_mem_opts *o);

/* Memory bookkeeping of one run/chat process. */
typedef struct cli_mem_run {
    sl_mem_monitor *mon;
    const sl_session *s;
    uint64_t kv_alloc;     /* sl_session_kv_bytes */
    int64_t kv_slots;      /* positions that allocation is for (n_ctx, or max_kv) */
} cli_mem_run;

/* Open the monitor (before loading: phase "load"); 0 or 2 (printed). */
int cli_mem_begin(cli_mem_run *r, const cli_mem_opts *o);
/* After the session exists: prefetch advice + --mlock on the weights; 0 or 2. */
int cli_mem_loaded(cli_mem_run *r, const sl_model *m, const sl_session *s, const sl_session_opts *so,
                   const cli_mem_opts *o);
/* sl_gen_params.progress (ud: the cli_mem_run). */
void cli_mem_progress(void *ud, const char *phase, int tokens);
void cli_mem_phase(cli_mem_run *r, const char *phase);
/* KV bytes allocated, and the share of them positions filled so far. */
void cli_mem_kv(const cli_mem_run *r, uint64_t *used, uint64_t *cap);
/* bytes in MiB as every human-readable memory figure of run and chat shows
 * it: "812" (>= 100), "12.5" (>= 1, or 0), "0.04" (a short prompt's KV). */
const char *cli_mib(uint64_t bytes, char *buf, size_t cap);
/* "RSS 812 MiB · peak 901 MiB · KV 12.5/128 MiB · 23.4 tok/s" + newline. */
void cli_mem_status(const cli_mem_run *r, double tok_s, FILE *f);
/* Phase "done", stop and close the monitor; 0, or 2 when it failed (the
 * error printed only when `report`: the command has not failed already). */
int cli_mem_end(cli_mem_run *r, bool report);

#endif
