/*
 * silica/runtime.h — running a model: sessions (KV cache + forward pass),
 * the sampler, and small helpers the CLI shares.
 *
 * Invariants:
 *  - A session owns its KV cache (f16 by default, or f32) sized to n_ctx
 *    positions at creation; nothing grows later.  Evaluating past n_ctx is
 *    an error, never a reallocation or an overwrite.
 *  - sl_session_eval processes tokens in batches (matrix-matrix work, one
 *    pass over each weight per batch); generation is one token per call.
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

#include "silica/dtype.h"
#include "silica/error.h"
#include "silica/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_session sl_session;

typedef struct sl_session_opts {
    int n_ctx;          /* positions the KV cache holds (> 0) */
    sl_dtype kv_dtype;  /* SL_F16 (default when 0) or SL_F32 */
    int n_threads;      /* 0 = physical cores */
    int batch;          /* prompt tokens per forward batch (0 = 64) */
} sl_session_opts;

int sl_session_new(const sl_model *m, const sl_session_opts *opts, sl_session **out, sl_error *err);
void sl_session_free(sl_session *s);
/* Forget the cache (position back to 0). */
void sl_session_reset(sl_session *s);
/* Keep the first pos cached positions (prefix reuse); no-op if pos >= the current one. */
void sl_session_truncate(sl_session *s, int pos);
int sl_session_pos(const sl_session *s);
int sl_session_ctx(const sl_session *s);

/* Feed n token ids at the current position.  logits (may be NULL) receives
 * vocab_size floats per position when all_logits, else only the last
 * position's.  Fails (nothing changed) if an id is out of range or the
 * tokens do not fit the context. */
int sl_session_eval(sl_session *s, const int32_t *ids, int n, bool all_logits, float *logits, sl_error *err);

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
    float repeat_penalty;     /* 1: off; over the last penalty_window tokens */
    float presence_penalty;   /* 0: off */
    float frequency_penalty;  /* 0: off */
    int penalty_window;       /* tokens looked back (default 64) */
    const sl_logit_bias *bias;
    int n_bias;
    uint64_t seed;
} sl_sampler_params;

void sl_sampler_defaults(sl_sampler_params *p);

typedef struct sl_sampler sl_sampler;
int sl_sampler_new(const sl_sampler_params *p, int vocab_size, sl_sampler **out, sl_error *err);
void sl_sampler_free(sl_sampler *s);
/* Pick the next id from logits[vocab] (modified in place by bias and
 * penalties).  history/n_history: the tokens so far (prompt + generated). */
int32_t sl_sampler_sample(sl_sampler *s, float *logits, const int32_t *history, int n_history);
/* Uniform double in [0, 1) from the sampler's generator (exposed for tests). */
double sl_sampler_uniform(sl_sampler *s);

/* ---- helpers ---- */

/* "1,2,3" (commas and/or spaces) -> malloc'd ids.  Message names the bad item. */
int sl_parse_ids(const char *s, int32_t **ids, int *n, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
