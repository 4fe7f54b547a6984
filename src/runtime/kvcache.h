/*
 * kvcache.h — the session's KV cache (kvcache.c), private to src/runtime.
 *
 * Per layer, one K and one V array of `slots` rows; a row holds one
 * position's keys (values) of all KV heads: n_kv_heads * head_dim elements,
 * stored as f16, f32, or MLX affine codes (4/8 bits, little-endian uint32
 * words) with one scale and bias per group of the row, in the cache dtype
 * (f16 by default; f32 = what MLX stores for an f32 model).
 *
 * Which positions a query at position p sees on layer l (ascending order):
 *   sinks: j < sink and p - j < win        (slots 0..sink-1, never overwritten)
 *   ring:  sink <= j, p - span < j <= p    (slot sink + (j - sink) % ring)
 * A full-attention layer without --max-kv-size: sink 0, span = win = inf,
 * ring = n_ctx (slot = position, as before).  A sliding layer: span = win =
 * sliding_window.  A rotating (--max-kv-size N) layer: sink = keep, span =
 * N - keep.  ring = span + batch - 1 (capped by n_ctx when the position
 * limit is n_ctx): a batch writes all its keys before its attention, and
 * the batch's first query still needs span - 1 older keys.
 *
 * Invariants: rows are written exactly once per position (rewritten after
 * sl_kvcache_can_keep allowed a truncation); what a query sees is a function
 * of (layer, p) only, never of the batch size or thread count; all sizes come
 * from runtime.h's sl_kv_* formulas (the estimator uses the same ones).
 */
#ifndef SILICA_RUNTIME_KVCACHE_H
#define SILICA_RUNTIME_KVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/model.h"
#include "silica/runtime.h"

typedef struct sl_kv_layer {
    int sink, span, win;         /* visibility (see above); span/win INT_MAX = unbounded */
    int ring;                    /* slots after the sinks */
    uint8_t *k, *v;              /* [sink + ring] rows of row_bytes */
    uint8_t *ks, *kb, *vs, *vb;  /* quantized: [sink + ring][groups] scales, biases (dtype) */
} sl_kv_layer;

typedef struct sl_kvcache {
    int n_layers, n_kv_heads, head_dim, row;   /* row = n_kv_heads * head_dim elements */
    sl_dtype dtype;              /* F16 / F32: elements (bits 0) or scales and biases */
    int bits, group, groups;     /* quantized: bits 4/8, group size, groups per row */
    size_t row_bytes;            /* bytes of one row's elements (codes when quantized) */
    int64_t limit;               /* positions a session may reach (n_ctx, or SL_KV_MAX_POS) */
    int max_visible;             /* most positions one query sees */
    uint64_t bytes;              /* allocated K + V bytes (scales and biases included) */
    uint8_t *mem;                /* one allocation holding every layer's arrays */
    sl_kv_layer *layers;
    uint16_t *half;              /* [row] f16 staging for quantization (dtype F16) */
} sl_kvcache;

/* Validate opts against the model and allocate.  batch: the session's batch
 * (already capped by n_ctx).  opts fields as in sl_session_opts. */
int sl_kvcache_init(sl_kvcache *kv, const sl_model_config *c, const sl_session_opts *o, int batch, sl_error *err);
/* The same without the memory: options validated, layers, bytes and limit
 * set, no rows (for the layers another engine holds; sl_kvcache_free it). */
int sl_kvcache_plan(sl_kvcache *kv, const sl_model_config *c, const sl_session_opts *o, int batch, sl_error *err);
void sl_kvcache_free(sl_kvcache *kv);

/* Store position pos of layer l: k and v are `row` floats each. */
void sl_kvcache_store(sl_kvcache *kv, int l, int64_t pos, const float *k, const float *v);

/* Head h of position pos's K (value false) or V row as f32: a pointer into
 * the cache (f32) or into tmp, which holds sl_kvcache_tmp_floats floats. */
const float *sl_kvcache_row(const sl_kvcache *kv, int l, int64_t pos, int h, bool value, float *tmp);
size_t sl_kvcache_tmp_floats(const sl_kvcache *kv);
/* The f16 K and V rows of head h that query p sees on layer l, as runs of
 * consecutive slots (row_bytes apart) in position order: the sinks, then
 * the window, which may wrap around the ring — at most 3 runs.  Returns
 * their number; 0 for a cache that is not plain f16. */
typedef struct sl_kv_run {
    const uint16_t *k, *v;
    int n;
} sl_kv_run;
int sl_kvcache_runs_f16(const sl_kvcache *kv, int l, int64_t p, int h, sl_kv_run runs[3]);

/* The positions query p sees on layer l: [*s0, *s1) sinks, then [*r0, p]. */
static inline void sl_kvcache_visible(const sl_kvcache *kv, int l, int64_t p, int64_t *s0, int64_t *s1, int64_t *r0) {
    const sl_kv_layer *L = &kv->layers[l];
    int64_t a = p - (int64_t)L->win + 1, b = p - (int64_t)L->span + 1;
    *s0 = a > 0 ? a : 0;
    *s1 = (int64_t)L->sink < p + 1 ? (int64_t)L->sink : p + 1;
    if (*s0 > *s1) *s0 = *s1;
    *r0 = b > (int64_t)L->sink ? b : (int64_t)L->sink;
}

/* Whether truncating a cache filled up to position `pos` (exclusive) back to
 * `keep` positions leaves every key later queries need (none evicted). */
bool sl_kvcache_can_keep(const sl_kvcache *kv, int64_t pos, int64_t keep);

#endif
