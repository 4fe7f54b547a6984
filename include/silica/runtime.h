/*
 * silica/runtime.h — running a model: sessions (KV cache + forward pass),
 * the sampler, and small helpers the CLI shares.
 *
 * Invariants:
 *  - A session owns its KV cache (f16, f32, or MLX-style affine 4/8-bit
 *    codes; by default the model's compute dtype: f32 for f32 weights, else
 *    f16) sized at creation; nothing grows later.  Without
 *    max_kv, evaluating past n_ctx is an error, never a reallocation or an
 *    overwrite; sliding-window layers hold only a window-sized ring.  With
 *    max_kv (a rotating cache, mlx_lm's RotatingKVCache) positions grow
 *    without limit: each query sees the kv_keep first positions (attention
 *    sinks) and the most recent max_kv - kv_keep, the oldest others being
 *    overwritten.
 *  - sl_session_eval processes tokens in batches (matrix-matrix work, one
 *    pass over each weight per batch); generation is one token per call, or
 *    one token of each of several sessions per call (sl_session_eval_multi),
 *    with the same bits as alone.
 *  - Work is spread over the session's thread pool (pthreads); results do
 *    not depend on the number of threads (each output element is computed
 *    by exactly one thread in a fixed order).
 *  - The sampler is deterministic for a given seed.
 */
#ifndef SILICA_RUNTIME_H
#define SILICA_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/dtype.h"
#include "silica/error.h"
#include "silica/gpu.h"
#include "silica/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_session sl_session;

typedef struct sl_session_opts {
    int n_ctx;          /* positions the KV cache holds (> 0); with max_kv only
                           longrope's factor choice uses it */
    sl_dtype kv_dtype;  /* SL_F16 or SL_F32 (0: sl_session_default_kv_dtype); with kv_bits: scale/bias dtype */
    int n_threads;      /* 0 = physical cores */
    int batch;          /* prompt tokens per forward batch (0 = 64) */
    int kv_bits;        /* 0: kv_dtype; 4 or 8: MLX affine codes, scale + bias per group */
    int kv_group_size;  /* 32, 64 or 128 (0: 64, or 32 when head_dim is not a multiple of 64) */
    int max_kv;         /* 0: unbounded; N > kv_keep: rotating cache of N positions per layer */
    int kv_keep;        /* attention sinks kept with max_kv (0: SL_KV_KEEP; < 0: none) */
    sl_device_sel device; /* CPU (zero, the default), AUTO or a GPU (silica/gpu.h) */
    int gpu_layers;     /* with a GPU: the last N layers and the head run there, the embedding and the
                           rest on the CPU, each engine holding its layers' KV cache (0: all layers, or
                           as many of the last ones as fit when the device's memory is short, the
                           device note says so; N > 0: exactly N, an error naming a count that fits
                           when they do not; >= n_layers: all; SL_GPU_LAYERS_NONE: none, the CPU runs
                           the model); with the CPU device anything but 0 is an error */
} sl_session_opts;

#define SL_GPU_LAYERS_NONE (-1)    /* sl_session_opts.gpu_layers: no layer on the GPU (--gpu-layers 0) */

#define SL_KV_KEEP 4               /* mlx_lm's RotatingKVCache keep */
#define SL_KV_MAX_SIZE (1 << 24)   /* largest max_kv */
#define SL_KV_MAX_POS (1 << 30)    /* position limit of a rotating session */

SL_API int sl_session_new(const sl_model *m, const sl_session_opts *opts, sl_session **out, sl_error *err);
/* The KV dtype a session uses when kv_dtype is 0: the model's compute dtype,
 * as mlx_lm and transformers cache keys and values in it — SL_F32 when the
 * token embedding is f32 (or a quantized one has f32 scales), else SL_F16
 * (f16 and bf16 weights, GGUF block types). */
SL_API sl_dtype sl_session_default_kv_dtype(const sl_model *m);
SL_API void sl_session_free(sl_session *s);
/* Forget the cache (position back to 0). */
SL_API void sl_session_reset(sl_session *s);
/* Keep the first pos cached positions (prefix reuse); no-op if pos >= the
 * current one.  When a ring already overwrote keys a later query would need,
 * the cache is reset instead.  Returns the position kept (pos or 0). */
SL_API int sl_session_truncate(sl_session *s, int pos);
SL_API int sl_session_pos(const sl_session *s);
/* Positions the session may reach: n_ctx, or SL_KV_MAX_POS with max_kv. */
SL_API int sl_session_ctx(const sl_session *s);
/* Bytes allocated for the KV cache (K and V, scales and biases included). */
SL_API uint64_t sl_session_kv_bytes(const sl_session *s);
/* Where the session runs: "cpu" or the GPU's name.  note (may be NULL)
 * gets why a --device auto session fell back to the CPU, how a partial
 * offload splits the layers, or NULL. */
SL_API const char *sl_session_device(const sl_session *s, const char **note);
/* Layers that run on the GPU (the last ones, with the head): 0 on the CPU,
 * n_layers with a full offload, fewer with sl_session_opts.gpu_layers. */
SL_API int sl_session_gpu_layers(const sl_session *s);

/* Feed n token ids at the current position.  logits (may be NULL) receives
 * vocab_size floats per position when all_logits, else only the last
 * position's.  Fails (nothing changed) if an id is out of range or the
 * tokens do not fit the context. */
SL_API int sl_session_eval(sl_session *s, const int32_t *ids, int n, bool all_logits, float *logits, sl_error *err);

/* One decoding step for several sessions of the same model: ids[t] is fed
 * to ss[t] at its own position, all n tokens through ONE forward pass (the
 * matmuls see n rows, each weight is read once; norms and RoPE per row;
 * attention per session over its own KV cache).  logits (may be NULL)
 * receives n rows of vocab_size floats, row t bit-identical to what
 * sl_session_eval(ss[t], &ids[t], 1, ...) gives.  The first session's
 * threads do the work (its workspace grows to n rows, kept for the next
 * call).  Sessions on the GPU (silica/gpu.h) each take their token alone
 * through the GPU engine (same contract; n forward passes).  Fails (nothing
 * changed) on a NULL, repeated or foreign session, sessions on different
 * engines (CPU and GPU), an id out of range or a full context. */
SL_API int sl_session_eval_multi(sl_session *const *ss, const int32_t *ids, int n, float *logits, sl_error *err);

/* ---- KV cache sizes: one formula for the session and the estimator ---- */

/* Group size of a quantized KV row (n_kv_heads * head_dim values, groups may
 * span heads when head_dim is smaller than the group); requested 0 picks
 * the default.  bits 0: *out = 0.  Errors name the value and what is allowed. */
SL_API int sl_kv_group_size(int n_kv_heads, int head_dim, int bits, int requested, int *out, sl_error *err);
/* Bytes one position of one layer takes, K and V: 2 * n_kv_heads * head_dim
 * elements of dtype (F16/F32), or with bits: codes + a dtype scale and bias per group. */
SL_API int sl_kv_pos_bytes(int n_kv_heads, int head_dim, sl_dtype dtype, int bits, int group_size, uint64_t *out,
                           sl_error *err);
/* The batch a session uses: requested (0: 64), at most n_ctx, and with
 * max_kv at most max_kv (a rotating ring is max_kv + batch - 1 positions). */
SL_API int sl_kv_batch(int batch, int64_t n_ctx, int64_t max_kv);
/* Positions one layer holds.  window: the layer's sliding window (0: full
 * attention); batch: from sl_kv_batch; keep: sinks (max_kv > 0).
 * Full layer: n_ctx, or max_kv + batch - 1 rotating; sliding layer:
 * min(n_ctx, window + batch - 1) (no n_ctx cap when rotating), or the
 * rotating size when max_kv - keep < window. */
SL_API int64_t sl_kv_layer_slots(int64_t n_ctx, int batch, int64_t max_kv, int keep, int window);
/* One layer's cache plan (same arguments): the positions a query at p sees
 * are j < sink with p - j < win, and sink <= j with p - span < j <= p
 * (span, win INT_MAX: unbounded); position j >= sink lives in slot
 * sink + (j - sink) % ring.  sink + ring = sl_kv_layer_slots.  Both engines
 * (CPU and GPU) lay their caches out by it. */
typedef struct sl_kv_plan {
    int64_t sink, span, win, ring;
} sl_kv_plan;
SL_API sl_kv_plan sl_kv_layer_plan(int64_t n_ctx, int batch, int64_t max_kv, int keep, int window);

/* ---- sampling ---- */

typedef struct sl_logit_bias {
    int32_t id;
    float bias;
} sl_logit_bias;

typedef struct sl_sampler_params {
    float temperature;        /* <= 0: greedy (argmax) */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off (relative to the most likely token) */
    float repeat_penalty;     /* 1: off; over the last penalty_window tokens: l <= 0 ? l * r : l / r
                                 once per distinct id (llama.cpp, transformers, mlx_lm) */
    float presence_penalty;   /* 0: off */
    float frequency_penalty;  /* 0: off */
    int penalty_window;       /* tokens looked back (default 64; -1: the whole history; 0: none) —
                                 llama.cpp's --repeat-last-n */
    const sl_logit_bias *bias;
    int n_bias;
    uint64_t seed;
} sl_sampler_params;

SL_API void sl_sampler_defaults(sl_sampler_params *p);

typedef struct sl_sampler sl_sampler;
SL_API int sl_sampler_new(const sl_sampler_params *p, int vocab_size, sl_sampler **out, sl_error *err);
SL_API void sl_sampler_free(sl_sampler *s);
/* Pick the next id from logits[vocab] (modified in place by bias and
 * penalties).  history/n_history: the tokens so far (prompt + generated). */
SL_API int32_t sl_sampler_sample(sl_sampler *s, float *logits, const int32_t *history, int n_history);
/* Uniform double in [0, 1) from the sampler's generator (exposed for tests). */
SL_API double sl_sampler_uniform(sl_sampler *s);

/* ---- helpers ---- */

/* "1,2,3" (commas and/or spaces) -> malloc'd ids.  Message names the bad item. */
SL_API int sl_parse_ids(const char *s, int32_t **ids, int *n, sl_error *err);
/* Kernel set the engine's matmuls use on this CPU: "amx", "avx512", "avx2",
 * "neondot", "neon" or "portable" (SILICA_SIMD=<name> caps it, like the
 * dtype converters: sl_dtype_kernels). */
SL_API const char *sl_engine_kernels(void);
/* Whether the engine's prompt matmuls run on AMX tiles (x86-64 Linux; the
 * "amx" set: GGUF Q4_0 / Q8_0): 1 in use, 0 not; *why (may be NULL) says
 * what they cover or why not (no AMX, the OS or a VM refusing it, a trial
 * instruction that faulted, SILICA_NO_AMX=1, a SILICA_SIMD cap). */
SL_API int sl_engine_amx(const char **why);

#ifdef __cplusplus
}
#endif
#endif
