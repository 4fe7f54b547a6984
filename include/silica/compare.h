/*
 * silica/compare.h — one model through several engines, side by side:
 * divergence statistics over logits (KL divergence, top-1 agreement,
 * perplexity), engines as adapter processes speaking one JSON-lines
 * protocol (part8/adapters/PROTOCOL.md; silica's own engine speaks it too),
 * the comparison run itself, and its reports (table, JSON, SVG, HTML).
 *
 * Invariants:
 *  - Every statistic is computed here, in double, from raw logits: an
 *    adapter only returns logits (float32), greedy ids and timings, so all
 *    engines are judged by the same arithmetic.
 *  - KL(P_ref || P_cand) per position = sum_v p_ref(v) (log p_ref(v) -
 *    log p_cand(v)), log p = log softmax of the logits; p99 is numpy's
 *    default (linear) percentile of the per-position values; top-1 counts
 *    positions whose argmax (first index on ties) agree; perplexity is
 *    exp(mean -log p(next id)) over every position that has a next id.
 *  - Every model gets the same token ids (the caller encodes them once).
 *  - An engine that is not installed, or that fails on a model, yields a
 *    row with an error: rows are never silently dropped.
 *  - Interrupted (sl_interrupted) between requests: SL_EINTR, adapter
 *    processes are always reaped.
 */
#ifndef SILICA_COMPARE_H
#define SILICA_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- statistics ---- */

/* log softmax of logits[V] into out[V] (double); returns the log-sum-exp. */
SL_API double sl_cmp_log_softmax(const float *logits, int V, double *out);
/* The k (<= V) largest logits of row[V] into vals[k] and their ids into ids[k],
 * largest first, equal values by lower id first (numpy's stable argsort of
 * -row); NaN is never taken before a number. */
SL_API void sl_cmp_topk(const float *row, int V, int k, int32_t *ids, float *vals);
/* numpy.percentile(v, q) with linear interpolation (v is not modified). */
SL_API double sl_cmp_percentile(const double *v, size_t n, double q);
/* Length of the common prefix of a and b. */
SL_API int sl_cmp_common_prefix(const int32_t *a, int na, const int32_t *b, int nb);

typedef struct sl_cmp_acc sl_cmp_acc;   /* per-position statistics of one (model, engine) */
SL_API int sl_cmp_acc_new(sl_cmp_acc **out, sl_error *err);
SL_API void sl_cmp_acc_free(sl_cmp_acc *a);
/* One window of n positions: ref and cand logits [n x V]; ids[0..n) are the
 * window's inputs, so ids[k + 1] is the target of position k (n - 1 targets). */
SL_API int sl_cmp_acc_add(sl_cmp_acc *a, const float *ref, const float *cand, const int32_t *ids, int n, int V,
                          sl_error *err);

typedef struct sl_cmp_stats {
    double kld_mean, kld_p99, kld_max;
    double top1;          /* percent of positions whose argmax agree */
    double ppl, ppl_ref;  /* candidate's and reference's perplexity */
    int64_t positions, targets;
} sl_cmp_stats;
SL_API void sl_cmp_acc_stats(const sl_cmp_acc *a, sl_cmp_stats *out);
/* The per-position KL divergences in order (windows concatenated). */
SL_API const double *sl_cmp_acc_klds(const sl_cmp_acc *a, size_t *n);

/* ---- engines ---- */

/* Where adapters live: $SILICA_ADAPTERS, else <exe dir>/../share/silica/adapters,
 * else the source tree's part8/adapters.  NULL if none exists. */
SL_API const char *sl_cmp_adapter_dir(void);
/* "silica", or NAME with an adapter NAME_adapter.py ('.' -> '_') in the adapter dir. */
SL_API bool sl_cmp_engine_known(const char *name);

typedef struct sl_cmp_engine sl_cmp_engine;
/* Start an engine process (silica: a fork running sl_cmp_serve; others:
 * $SILICA_PYTHON, else python3, running the adapter) and read its hello.
 * An engine whose framework is missing fails with SL_EUNSUPPORTED and
 * "not installed: ..." */
SL_API int sl_cmp_engine_start(const char *name, sl_cmp_engine **out, sl_error *err);
SL_API const char *sl_cmp_engine_name(const sl_cmp_engine *e);
SL_API const char *sl_cmp_engine_version(const sl_cmp_engine *e);
/* The device the last load ran on, as the engine's answer named it ("" if it did not). */
SL_API const char *sl_cmp_engine_device(const sl_cmp_engine *e);
/* Whether the engine reads models of this format ("hf", "mlx", "gguf"). */
SL_API bool sl_cmp_engine_reads(const sl_cmp_engine *e, const char *format);
/* Load a model (replacing the previous one); n_ctx: positions a request may span;
 * device: where the engine runs it (silica: `--device`'s syntax, silica/gpu.h;
 * NULL: the engine's default, silica's CPU); gpu_layers: silica's
 * sl_session_opts.gpu_layers (0: all; sent only when not 0). */
SL_API int sl_cmp_engine_load(sl_cmp_engine *e, const char *model, int n_ctx, const char *device, int gpu_layers,
                              sl_error *err);

typedef struct sl_cmp_result {
    float *logits;        /* [n x vocab] */
    int n, vocab;
    int32_t *greedy;      /* greedy continuation of the ids */
    int n_greedy;
    double prompt_s, ttft_s, gen_s;   /* ids evaluated; start -> first generated id; first -> last */
    uint64_t peak_rss;    /* the engine process's peak RSS so far */
} sl_cmp_result;
SL_API int sl_cmp_engine_eval(sl_cmp_engine *e, const int32_t *ids, int n, int max_tokens, sl_cmp_result *r,
                              sl_error *err);
SL_API void sl_cmp_result_free(sl_cmp_result *r);
SL_API void sl_cmp_engine_close(sl_cmp_engine *e);   /* quit, wait; NULL ok */

/* silica's engine side of the protocol: answer requests from in on out until
 * EOF or {"op": "quit"}.  Returns 0, or 2 when out could not be written. */
SL_API int sl_cmp_serve(FILE *in, FILE *out);

/* "hf", "mlx" or "gguf" (a .gguf file / GGUF magic; a directory whose
 * config.json has "quantization"; anything else). */
SL_API const char *sl_cmp_model_format(const char *path);

/* ---- a comparison ---- */

typedef struct sl_cmp_prompt {
    const int32_t *ids;
    int n;
} sl_cmp_prompt;

typedef struct sl_cmp_opts {
    const char *ref;                  /* reference model */
    const char *ref_label;            /* shown name (NULL: ref) */
    const char *ref_engine;           /* NULL: "silica" */
    const char *const *cands;         /* candidate models */
    const char *const *cand_labels;   /* NULL or per candidate (NULL entries: the path) */
    int n_cands;
    const char *const *engines;       /* engines run on every model (NULL: "silica") */
    int n_engines;
    const sl_cmp_prompt *prompts;     /* windows of ids (each <= n_ctx) */
    int n_prompts;
    int n_ctx;                        /* largest window + max_tokens at most */
    int max_tokens;                   /* greedy tokens generated after each prompt (0: none) */
    int vocab;                        /* REF's vocabulary (ids must be below it) */
    const char *device;               /* where silica's engine runs (cpu, gpu, gpu:N, auto; NULL: cpu);
                                         the other engines keep their own device */
    int gpu_layers;                   /* silica's engine on a GPU: sl_session_opts.gpu_layers (0: all) */
    /* progress: called before each (model, engine) with done / total pairs */
    void (*progress)(void *ud, int done, int total, const char *model, const char *engine);
    void *progress_ud;
} sl_cmp_opts;

typedef struct sl_cmp_row {
    char *model;          /* label */
    char *path;
    char engine[32];
    char *error;          /* NULL: the figures are valid */
    sl_cmp_stats st;
    double greedy_prefix; /* mean over prompts of the identical greedy prefix length */
    double prompt_tps, gen_tps, ttft_ms;
    uint64_t peak_rss, file_bytes;
    double bits_per_weight;   /* 0: unknown */
    double *klds;         /* per-position KL divergence (klds_n values) */
    size_t klds_n;
} sl_cmp_row;

typedef struct sl_cmp_report {
    char *ref_model, *ref_path, *ref_engine, *ref_version;
    char *device;         /* where silica's engine ran the reference: the device's name ("cpu" or
                             the GPU's), else --device as given */
    uint64_t ref_file_bytes;
    double ref_bits_per_weight, ref_ppl;
    int64_t tokens;       /* positions compared per model */
    int n_prompts, max_tokens, n_ctx;
    char **engine_status; /* per opts.engines: "<version>" or "not installed: ..." */
    int n_engines;
    char **engine_names;
    sl_cmp_row *rows;
    int n_rows;
} sl_cmp_report;

/* Run the comparison.  Errors: the reference engine failing on REF, bad
 * options, or SL_EINTR; failures of other (model, engine) pairs are rows. */
SL_API int sl_cmp_run(const sl_cmp_opts *o, sl_cmp_report **out, sl_error *err);
SL_API void sl_cmp_report_free(sl_cmp_report *r);

/* Size on disk (a file, or the regular files of a directory) and bits per
 * weight (weight bytes * 8 / logical parameters, from tensor headers; 0 when unknown). */
SL_API void sl_cmp_model_size(const char *path, uint64_t *file_bytes, double *bits_per_weight);

/* ---- candidates made from the reference (src/compare/recipe.c) ---- */

/* Quantizations a candidate can be made with, through the conversion
 * library (convert.h): MLX (from a model directory) "q2".."q8" (affine,
 * group 64), "mxfp4", "mxfp8", "nvfp4", "mixed_2_6", "mixed_3_4",
 * "mixed_3_6", "mixed_4_6"; GGUF "Q8_0", "Q6_K", "Q4_K", "Q4_1", "Q4_0",
 * "F16", "F32".  *gguf (may be NULL) tells which family. */
SL_API bool sl_cmp_recipe_known(const char *spec, bool *gguf);
SL_API const char *sl_cmp_recipes_supported(void);   /* the list above, comma-separated */
/* Quantize src with spec into dir/<basename(src)>-<spec>[.gguf]; *out gets
 * that path (malloc'd).  bits_per_weight (may be NULL) from the writer. */
SL_API int sl_cmp_make_candidate(const char *src, const char *spec, const char *dir, char **out,
                                 double *bits_per_weight, sl_error *err);

/* ---- reports (src/compare/report.c) ---- */

/* {"reference": {...}, "rows": [{"model", "engine", "kld_mean", ...}]} */
struct cJSON;
SL_API struct cJSON *sl_cmp_report_json(const sl_cmp_report *r);
SL_API void sl_cmp_report_table(const sl_cmp_report *r, FILE *f);
/* The main chart (KLD vs bits per weight), a standalone SVG document. */
SL_API int sl_cmp_report_svg(const sl_cmp_report *r, const char *path, sl_error *err);
/* A self-contained HTML page: table + inline SVG charts (KLD vs size,
 * speed vs memory, per-position KLD); no script. */
SL_API int sl_cmp_report_html(const sl_cmp_report *r, const char *path, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
