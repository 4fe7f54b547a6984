/*
 * silica/memory.h — memory: what this machine offers (RAM, swap, cgroup
 * limits, the Apple GPU working-set budget, measured read bandwidth), what a
 * model needs (weights + KV cache + compute buffers + overhead, from its
 * config and its real tensor headers), whether it fits (`silica fit`), and a
 * JSON-lines time series of a running process's memory (`--monitor`).
 *
 * Invariants:
 *  - Estimates never read tensor data: only headers (mmap'd, lazily paged)
 *    and config.json.  weights_bytes of a local checkpoint is the exact sum
 *    of its tensors' byte sizes.
 *  - Every size is computed with overflow-checked arithmetic; a config whose
 *    numbers overflow, or a context outside 1..SL_FIT_MAX_CTX, is an error.
 *  - Missing config fields never crash: each assumption made is recorded as
 *    one line in sl_fit_model.notes (and printed by the CLI).
 */
#ifndef SILICA_MEMORY_H
#define SILICA_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_GIB (1024ull * 1024ull * 1024ull)
#define SL_MIB (1024ull * 1024ull)
#define SL_FIT_MAX_CTX (1 << 24)     /* 16M positions: beyond any published model */
#define SL_FIT_MAX_NOTES 8

/* ---- this process ---- */
SL_API uint64_t sl_mem_rss(void);        /* resident set size now, bytes (0 if unknown) */
SL_API uint64_t sl_mem_peak_rss(void);   /* peak resident set size, bytes (0 if unknown) */

/* ---- this machine ---- */
typedef struct sl_mem_host {
    uint64_t total_bytes, available_bytes, swap_total_bytes, swap_free_bytes;
    /* Linux cgroups (0 = no limit / not found) */
    int cgroup_version;               /* 1, 2 or 0 when no memory controller was found */
    char cgroup_path[1024];           /* the memory cgroup directory that was read */
    uint64_t cgroup_limit_bytes;      /* memory.max / memory.limit_in_bytes */
    uint64_t cgroup_usage_bytes;      /* memory.current / memory.usage_in_bytes */
    uint64_t cgroup_swap_limit_bytes; /* memory.swap.max / memsw.limit - limit */
    char cgroup_note[256];            /* an unreadable or malformed file, else "" */
    /* macOS */
    bool apple;                       /* Apple Silicon (unified memory) */
    uint64_t hw_memsize;              /* sysctl hw.memsize */
    uint64_t wired_limit_mb;          /* sysctl iogpu.wired_limit_mb (0 = OS default) */
    char chip[64];                    /* machdep.cpu.brand_string, e.g. "Apple M2 Pro" */
    /* the budget a model must fit in */
    uint64_t budget_bytes;            /* GPU working set (Apple) or min(RAM, cgroup limit) */
    char budget_source[96];           /* how budget_bytes was derived */
} sl_mem_host;

/* Probe; never fails (unknown values stay 0 and notes say why).  Linux
 * paths can be redirected for tests: SILICA_CGROUP_ROOT (default
 * /sys/fs/cgroup) and SILICA_PROC_CGROUP (default /proc/self/cgroup). */
SL_API void sl_mem_host_probe(sl_mem_host *h);

/* Metal's recommendedMaxWorkingSetSize by the published rule: 2/3 of RAM up
 * to 36 GiB, 3/4 above; a non-zero iogpu.wired_limit_mb replaces it. */
SL_API uint64_t sl_mem_apple_budget(uint64_t ram_bytes, uint64_t wired_limit_mb);

/* Multi-threaded sequential read bandwidth over a `bytes` buffer for about
 * `seconds`; best pass, in GB/s (1e9 bytes/s).  threads <= 0: all cores. */
SL_API int sl_mem_bandwidth(int threads, uint64_t bytes, double seconds, double *gbps, sl_error *err);

/* The figure `silica doctor --bandwidth` measured, kept for `silica fit`
 * (src/estimate/bandwidth_saved.c): <home>/bandwidth.json, home NULL = the
 * store's directory (sl_reg_default_home: $SILICA_HOME, else the cache
 * directory).  A saved figure is returned only on the machine that measured
 * it (same CPU model, logical cores and RAM); false when there is none. */
SL_API int sl_mem_bandwidth_save(const char *home, double gbps, int threads, sl_error *err);
SL_API bool sl_mem_bandwidth_saved(const char *home, double *gbps, int64_t *measured_unix);

/* "16G", "16GB", "16GiB", "1.5T", "512M", "2048" (bytes); binary units. */
SL_API int sl_mem_parse_size(const char *s, uint64_t *out);

/* ---- monitoring: JSON lines {"t":s,"rss_bytes":B,"peak_rss_bytes":B,"kv_bytes":B,"tokens":N,"phase":S} ---- */
#define SL_MONITOR_MIN_MS 1
#define SL_MONITOR_MAX_MS 60000
typedef struct sl_mem_monitor sl_mem_monitor;
SL_API int sl_mem_monitor_open(const char *path, sl_mem_monitor **out, sl_error *err);
/* One line now with these counters (they become the published ones). */
SL_API int sl_mem_monitor_sample(sl_mem_monitor *m, uint64_t kv_bytes, uint64_t tokens, sl_error *err);
/* Publish the counters the background thread samples (no line written). */
SL_API void sl_mem_monitor_set(sl_mem_monitor *m, uint64_t kv_bytes, uint64_t tokens);
/* Enter a phase ("load", "prompt", "generate", "idle", "done"; at most 15
 * bytes): one line when it differs from the current one.  NULL m: no-op. */
SL_API int sl_mem_monitor_phase(sl_mem_monitor *m, const char *phase, sl_error *err);
/* A background thread writes a line every interval_ms (SL_MONITOR_MIN_MS..MAX). */
SL_API int sl_mem_monitor_start(sl_mem_monitor *m, int interval_ms, sl_error *err);
/* Stops the thread, flushes; returns the first write error.  NULL ok. */
SL_API int sl_mem_monitor_close(sl_mem_monitor *m, sl_error *err);

/* Read a series back: every non-blank line a JSON object with numeric "t"
 * and "rss_bytes" (or "rss"; peak_rss_bytes / peak_rss, kv_bytes, tokens
 * optional: -1 when absent; phase optional, "" when absent), all >= 0,
 * t non-decreasing; the first bad line is an error naming FILE:LINE. */
typedef struct sl_mem_sample {
    double t, rss, peak_rss, kv_bytes, tokens;
    char phase[16];
} sl_mem_sample;
SL_API int sl_mem_series_parse(const char *text, size_t len, const char *name, sl_mem_sample **out, size_t *n,
                               sl_error *err);
SL_API int sl_mem_series_load(const char *path, sl_mem_sample **out, size_t *n, sl_error *err);   /* free(*out) */

/* ---- weight mappings of a loaded model (src/model/model_pin.c) ---- */
struct sl_model;
/* madvise(MADV_WILLNEED) every mapping of m's weights when `prefetch`
 * (readahead starts in the background; MADV_RANDOM and MADV_SEQUENTIAL are
 * never used: every token reads each matrix front to back, so readahead
 * helps and early reclaim hurts), then mlock them all when `lock`.
 * *locked (may be NULL) receives the bytes locked.  An mlock refused by
 * RLIMIT_MEMLOCK is one line naming the limit and the bytes needed. */
SL_API int sl_mem_pin_model(const struct sl_model *m, bool prefetch, bool lock, uint64_t *locked, sl_error *err);
/* Bytes of m's mapped weight files (what prefetch/mlock cover). */
SL_API uint64_t sl_mem_model_mapped_bytes(const struct sl_model *m);

/* ---- a model, as the estimator sees it ---- */
typedef enum sl_kv_type { SL_KV_F16 = 0, SL_KV_F32, SL_KV_Q8, SL_KV_Q4 } sl_kv_type;
SL_API const char *sl_kv_type_name(sl_kv_type t);              /* "f16", "f32", "q8", "q4" */
SL_API int sl_kv_type_parse(const char *s, sl_kv_type *out);   /* 0 or SL_EINVAL */

typedef struct sl_fit_weight {   /* one weight tensor, logical (unquantized) shape */
    char *name;
    uint64_t rows, cols;         /* 1-D: rows = 1 */
    uint64_t bytes;              /* stored bytes (0 for config-only models) */
    int layer;                   /* -1 outside the layer stack */
    bool linear;                 /* a Linear/Embedding matrix mlx would quantize */
    bool high_bits;              /* mixed recipes: v_proj/down_proj in the chosen layers, lm_head */
} sl_fit_weight;

typedef struct sl_fit_model {
    char *name;                  /* path or catalog name */
    char arch[32];               /* config model_type */
    int n_layers, hidden, intermediate, n_heads, n_kv_heads, head_dim, vocab;
    int sliding_window, n_sliding_layers;   /* sliding layers hold min(ctx, window) positions */
    int64_t max_ctx;             /* max_position_embeddings (0 = unknown) */
    bool tied;
    uint32_t float_bytes;        /* bytes of a float parameter (torch_dtype) */
    bool f32_compute;            /* the token embedding (or its quantization scales) is f32: a session's
                                    KV cache defaults to f32 (sl_session_default_kv_dtype), else f16 */
    sl_fit_weight *weights;
    size_t n_weights;
    uint64_t weights_bytes;      /* exact (headers) or predicted (config only) */
    uint64_t params;             /* logical parameters */
    uint64_t embed_bytes;        /* stored bytes of the token embedding */
    bool from_headers;           /* weights_bytes summed from real tensor headers */
    char weights_desc[64];       /* "BF16", "mlx affine 4-bit g64", "GGUF Q4_K" */
    char repo[128];              /* catalog models: the hub repo (org/name) the config comes from */
    int n_notes;
    char notes[SL_FIT_MAX_NOTES][200];
} sl_fit_model;

/* MODEL: a model directory / file (headers only), a config.json, or a
 * catalog name (data/models/NAME.json; SILICA_DATA_DIR overrides). */
SL_API int sl_fit_model_load(const char *model, sl_fit_model **out, sl_error *err);
/* From a parsed config.json object only (weights predicted from it). */
struct cJSON;
SL_API int sl_fit_model_from_config(const struct cJSON *cfg, const char *name, sl_fit_model **out, sl_error *err);
SL_API void sl_fit_model_free(sl_fit_model *m);
/* A hub repository before download (src/estimate/remote.c): the files a
 * pull would select, config.json, and each safetensors/GGUF header read with
 * HTTP Range requests; the estimate equals the local one of the same files.
 * *bytes_read (may be NULL): answer bytes received. */
typedef struct sl_fit_remote_opts {
    const char *repo;                 /* org/name */
    const char *revision;             /* NULL: main */
    const char *endpoint;             /* NULL: $HF_ENDPOINT or https://huggingface.co */
    const char *token;                /* NULL: $HF_TOKEN */
    const char *const *include;       /* file globs (e.g. "*Q4_K_M.gguf"); as `silica pull --include` */
    size_t n_include;
} sl_fit_remote_opts;
SL_API int sl_fit_model_remote(const sl_fit_remote_opts *o, sl_fit_model **out, uint64_t *bytes_read, sl_error *err);
/* Catalog: data/models directory and the names in it (sorted, malloc'd). */
SL_API const char *sl_fit_catalog_dir(void);
SL_API int sl_fit_catalog_list(char ***names, size_t *n, sl_error *err);

/* ---- estimate ---- */
typedef struct sl_fit_estimate {
    int64_t ctx;
    sl_kv_type kv;
    uint64_t weights_bytes, kv_bytes, compute_bytes, overhead_bytes, total_bytes;
    uint64_t weights_resident_bytes; /* weights minus the rows of an untied embedding a
                                        context of ctx tokens cannot touch (mmap'd pages) */
    uint64_t read_per_token_bytes;   /* weights read per generated token + KV at full ctx */
} sl_fit_estimate;

/* KV bytes: 2 (K,V) x layers x kv_heads x positions x bytes per head row,
 * positions = min(ctx, window) on sliding layers; q8/q4 are MLX-style
 * group-wise (group 64, or 32 when head_dim is not a multiple of 64; f16
 * scale + bias per group). */
SL_API int sl_fit_kv_bytes(const sl_fit_model *m, int64_t ctx, sl_kv_type kv, uint64_t *out, sl_error *err);
SL_API int sl_fit_estimate_model(const sl_fit_model *m, int64_t ctx, sl_kv_type kv, sl_fit_estimate *out,
                                 sl_error *err);
/* The KV cache exactly as a session with these options allocates it (both
 * use runtime.h's sl_kv_* formulas): sliding layers hold a ring of
 * window + batch - 1 positions (capped by ctx); max_kv > 0, a rotating cache
 * (--max-kv-size): max_kv + batch - 1 positions per layer whatever ctx is. */
typedef struct sl_fit_kv {
    sl_kv_type type;
    int group_size;              /* q8/q4 group (0: 64, or 32 when head_dim is not a multiple of 64) */
    int64_t max_kv;              /* 0: unbounded */
    int keep;                    /* attention sinks with max_kv (0: SL_KV_KEEP, < 0: none) */
    bool f32_scales;             /* q8/q4 with f32 scales and biases (--kv f32 --kv-bits B) */
} sl_fit_kv;
SL_API int sl_fit_kv_bytes_ex(const sl_fit_model *m, int64_t ctx, const sl_fit_kv *kv, uint64_t *out, sl_error *err);
SL_API int sl_fit_estimate_ex(const sl_fit_model *m, int64_t ctx, const sl_fit_kv *kv, sl_fit_estimate *out,
                              sl_error *err);

/* ---- verdicts ---- */
typedef enum sl_fit_verdict { SL_FIT_COMFORTABLE = 0, SL_FIT_TIGHT, SL_FIT_NO } sl_fit_verdict;
SL_API const char *sl_fit_verdict_name(sl_fit_verdict v);

typedef struct sl_fit_budget {
    uint64_t ram_bytes;          /* physical memory (or cgroup limit) */
    uint64_t budget_bytes;       /* working-set budget */
    bool apple;                  /* a Mac: the sysctl can raise the budget */
    bool whole_ram;              /* budget is the RAM itself (cgroup) — no OS reserve */
} sl_fit_budget;

/* An Apple Silicon Mac with ram_bytes of unified memory. */
SL_API sl_fit_budget sl_fit_budget_apple(uint64_t ram_bytes, uint64_t wired_limit_mb);
/* Safety margin: max(1 GiB, 5 % of the budget).  OS reserve: 3 GiB. */
SL_API uint64_t sl_fit_margin(const sl_fit_budget *b);
#define SL_FIT_OS_RESERVE (3ull * SL_GIB)
/* comfortable: total + margin <= budget and (Mac) RAM - total >= OS reserve;
 * tight: total <= budget, or total + margin fits under the wired limit the
 * sysctl could set (RAM - OS reserve); no: otherwise. */
SL_API sl_fit_verdict sl_fit_judge(const sl_fit_budget *b, uint64_t total_bytes);
/* The iogpu.wired_limit_mb (MiB, rounded up to 256) that would make total +
 * margin fit, or 0 when it is not needed or would eat the OS reserve. */
SL_API uint64_t sl_fit_sysctl_mb(const sl_fit_budget *b, uint64_t total_bytes);

/* ---- quantization recipes and recommendations ---- */
typedef struct sl_fit_recipe {
    const char *id;              /* "q8", "q4g32", "mixed_4_6", ... */
    int bits, group, high_bits;  /* high_bits: mixed recipes (0 = uniform) */
    const char *quality;         /* expected cost with its source */
} sl_fit_recipe;
SL_API const sl_fit_recipe *sl_fit_recipes(size_t *n);   /* best quality first */
/* Weight bytes after quantizing m with r the way mlx_lm.convert does. */
SL_API int sl_fit_predict_weights(const sl_fit_model *m, const sl_fit_recipe *r, uint64_t *out, sl_error *err);

typedef enum sl_fit_rec_kind { SL_REC_QUANT = 0, SL_REC_CTX, SL_REC_KV, SL_REC_SYSCTL } sl_fit_rec_kind;
typedef struct sl_fit_rec {
    sl_fit_rec_kind kind;
    char what[96];               /* "4-bit, group 32", "--ctx 4096", "--kv q8" */
    uint64_t total_bytes;        /* predicted total resident */
    uint64_t weights_bytes;      /* predicted weights */
    sl_fit_verdict verdict;
    char quality[200];           /* expected quality cost + source */
    char command[1024];          /* exact command to run */
} sl_fit_rec;

/* Recommendations that would make m fit b (best first, at most cap). */
SL_API int sl_fit_recommend(const sl_fit_model *m, const sl_fit_budget *b, int64_t ctx, sl_kv_type kv, sl_fit_rec *out,
                            size_t cap, size_t *n, sl_error *err);

/* The guide-table cell: as-is if comfortable, else the best-quality recipe
 * that is comfortable (else tight), and the largest power-of-two context
 * (512..max_position_embeddings) that keeps that verdict. */
typedef struct sl_fit_setup {
    const sl_fit_recipe *recipe;  /* NULL: the model as it is */
    uint64_t weights_bytes, total_bytes;
    sl_fit_verdict verdict;
    int64_t max_ctx;              /* 0 when even 512 does not reach the verdict */
} sl_fit_setup;
SL_API int sl_fit_best_setup(const sl_fit_model *m, const sl_fit_budget *b, int64_t ctx, sl_kv_type kv,
                             sl_fit_setup *out, sl_error *err);

/* ---- a GPU of device_bytes (src/estimate/offload.c) ---- */
/* Which part of m goes where with `--device gpu` (all layers) or a partial
 * offload of the last K layers (`--gpu-layers K`, as llama.cpp's -ngl): the
 * token embedding stays on the CPU; the compute buffers, the output head and
 * the final norm (a tied head: a copy of the embedding) go with the GPU part
 * whenever K >= 1.  Layer i costs its weights + its KV cache at e->ctx
 * (where only some layers slide, each counts as a full-context one). */
typedef struct sl_fit_offload {
    uint64_t device_bytes, margin_bytes;  /* margin: fit's rule, max(1 GiB, 5 %) */
    int n_layers;
    uint64_t *layer_bytes;               /* n_layers: weights + KV of layer i */
    uint64_t *layer_weights_bytes;       /* n_layers */
    uint64_t layer_kv_bytes;             /* KV cache of one layer */
    uint64_t embed_bytes;                /* the token embedding (CPU) */
    uint64_t head_bytes;                 /* output head + final norm on the GPU */
    uint64_t fixed_bytes;                /* compute + head: the GPU part's cost besides its layers */
    uint64_t gpu_total_bytes;            /* fixed + every layer */
    sl_fit_verdict verdict;              /* gpu_total_bytes against device_bytes (sl_fit_judge) */
    int layers_fit;                      /* largest K: fixed + last K layers + margin <= device_bytes */
    uint64_t gpu_bytes;                  /* the GPU part with layers_fit layers (0 when none) */
    uint64_t cpu_bytes;                  /* RAM the rest needs: e's total less what moved to the GPU */
} sl_fit_offload;
SL_API int sl_fit_offload_plan(const sl_fit_model *m, const sl_fit_estimate *e, const sl_fit_kv *kv,
                               uint64_t device_bytes, sl_fit_offload *out, sl_error *err);
SL_API void sl_fit_offload_free(sl_fit_offload *o);

/* ---- the guard of the generating commands (src/estimate/guard.c) ---- */
/* The budget `silica fit` uses for this machine (doctor's probe: the Apple
 * GPU working set, else RAM or the cgroup limit, the cgroup limit counting
 * as the whole RAM); *host filled, target says which ("this machine (...)").
 * False when the machine's memory size is unknown. */
SL_API bool sl_fit_host_budget(sl_mem_host *host, sl_fit_budget *b, char *target, size_t cap);
/* The estimator's view of the KV cache a session with these options
 * allocates for model m (runtime.h's sl_session_opts: kv_dtype 0 takes the
 * model's compute dtype, m->f32_compute, as sl_session_new does). */
struct sl_session_opts;
SL_API sl_fit_kv sl_fit_kv_for_session(const struct sl_session_opts *so, const sl_fit_model *m);
/* Will the model at path, with a session of these options (so->n_ctx
 * positions), fit max_memory bytes (0: this machine's budget)?  0 when it
 * fits or nothing can be estimated (unknown machine, unreadable model);
 * SL_EINVAL with one line — the numbers, the budget and what would make it
 * fit — when it does not. */
SL_API int sl_fit_guard(const char *path, const struct sl_session_opts *so, uint64_t max_memory, sl_error *err);
/* The same for a model that would run beside others already holding
 * in_use bytes of the budget (in_use_what lists them for the message, e.g.
 * "demo 12.00 MiB"): it fits when in_use + its estimate <= budget.
 * *needs (may be NULL) receives its estimate, 0 when none was made. */
SL_API int sl_fit_guard_beside(const char *path, const struct sl_session_opts *so, uint64_t max_memory, uint64_t in_use,
                        const char *in_use_what, uint64_t *needs, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
