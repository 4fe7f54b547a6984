/*
 * offload.c — how much of a model a GPU of a given memory holds: the bytes
 * of each transformer layer (its weights + its KV cache at the requested
 * context), the part that goes with the GPU whatever the count (compute
 * buffers, the output head and final norm, as llama.cpp's -ngl places them)
 * and the embedding that stays on the CPU; the largest count of layers
 * whose bytes fit the device with fit's margin, and the RAM the CPU part
 * then needs.
 */
#include <stdlib.h>
#include <string.h>

#include "estimate/estimate_impl.h"
#include "silica/io.h"
#include "silica/runtime.h"

/* KV bytes of one layer: the estimator's formula for a one-layer model.
 * Where only some layers slide (their order is not kept), every layer
 * counts as a full-context one: the plan errs on the safe side. */
static int layer_kv_bytes(const sl_fit_model *m, int64_t ctx, const sl_fit_kv *kv, uint64_t *out, sl_error *err) {
    sl_fit_model one = *m;
    one.n_layers = 1;
    one.n_sliding_layers = m->n_sliding_layers == m->n_layers && m->n_layers > 0 ? 1 : 0;
    return sl_fit_kv_bytes_ex(&one, ctx, kv, out, err);
}

static int overflow(const sl_fit_model *m, sl_error *err) {
    return sl_errorf(err, SL_EINVAL, "%s: offload sizes overflow", m->name);
}

/* Weights per layer, the embedding and the head (+ final norm). */
static int split_weights(const sl_fit_model *m, sl_fit_offload *o, uint64_t *head_host, sl_error *err) {
    *head_host = 0;
    for (size_t i = 0; i < m->n_weights; i++) {
        const sl_fit_weight *w = &m->weights[i];
        uint64_t b = w->bytes, *dst;   /* a config-only model's weights carry their float size (model.c) */
        if (w->layer >= 0 && w->layer < m->n_layers) dst = &o->layer_weights_bytes[w->layer];
        else if (w->layer < 0 && fit_is_embedding(w->name)) dst = &o->embed_bytes;   /* stays on the CPU */
        else dst = head_host;   /* lm_head, final norm, anything else outside the stack */
        if (!sl_add_u64(*dst, b, dst)) return overflow(m, err);
    }
    o->head_bytes = *head_host;
    /* a tied head: the GPU holds its own copy of the embedding */
    if (m->tied && !sl_add_u64(o->head_bytes, o->embed_bytes, &o->head_bytes)) return overflow(m, err);
    return 0;
}

/* GPU bytes with the last k layers there (0 for k = 0); UINT64_MAX on overflow. */
static uint64_t gpu_bytes(const sl_fit_offload *o, int k) {
    if (k == 0) return 0;
    uint64_t t = o->fixed_bytes;
    for (int i = o->n_layers - k; i < o->n_layers; i++)
        if (!sl_add_u64(t, o->layer_bytes[i], &t)) return UINT64_MAX;
    return t;
}

int sl_fit_offload_plan(const sl_fit_model *m, const sl_fit_estimate *e, const sl_fit_kv *kv, uint64_t device_bytes,
                        sl_fit_offload *o, sl_error *err) {
    memset(o, 0, sizeof *o);
    int n = m->n_layers > 0 ? m->n_layers : 0, rc;
    o->n_layers = n;
    o->device_bytes = device_bytes;
    sl_fit_budget b = {device_bytes, device_bytes, false, true};
    o->margin_bytes = sl_fit_margin(&b);
    o->layer_bytes = calloc((size_t)n + 1, sizeof *o->layer_bytes);
    o->layer_weights_bytes = calloc((size_t)n + 1, sizeof *o->layer_weights_bytes);
    if (!o->layer_bytes || !o->layer_weights_bytes) {
        sl_fit_offload_free(o);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    uint64_t head_host, moved_w = 0, moved_kv = 0;
    if ((rc = split_weights(m, o, &head_host, err)) || (rc = layer_kv_bytes(m, e->ctx, kv, &o->layer_kv_bytes, err))) {
        sl_fit_offload_free(o);
        return rc;
    }
    for (int i = 0; i < n; i++)
        if (!sl_add_u64(o->layer_weights_bytes[i], o->layer_kv_bytes, &o->layer_bytes[i])) {
            sl_fit_offload_free(o);
            return overflow(m, err);
        }
    if (!sl_add_u64(e->compute_bytes, o->head_bytes, &o->fixed_bytes)) {
        sl_fit_offload_free(o);
        return overflow(m, err);
    }
    uint64_t all = gpu_bytes(o, n);
    o->verdict = n ? sl_fit_judge(&b, all) : SL_FIT_NO;
    o->gpu_total_bytes = all;
    for (int k = n; k >= 1 && !o->layers_fit; k--) {
        uint64_t g = gpu_bytes(o, k), need;
        if (g != UINT64_MAX && sl_add_u64(g, o->margin_bytes, &need) && need <= device_bytes) o->layers_fit = k;
    }
    o->gpu_bytes = gpu_bytes(o, o->layers_fit);
    for (int i = n - o->layers_fit; i < n; i++) {
        moved_w += o->layer_weights_bytes[i];
        moved_kv += o->layer_kv_bytes;
    }
    if (o->layers_fit) moved_w += head_host;
    /* what stays on the host: the resident weights and KV not moved, compute, overhead */
    uint64_t w = e->weights_resident_bytes > moved_w ? e->weights_resident_bytes - moved_w : 0;
    uint64_t k = e->kv_bytes > moved_kv ? e->kv_bytes - moved_kv : 0;
    o->cpu_bytes = w + k + e->compute_bytes + e->overhead_bytes;
    return 0;
}

void sl_fit_offload_free(sl_fit_offload *o) {
    if (!o) return;
    free(o->layer_bytes);
    free(o->layer_weights_bytes);
    o->layer_bytes = o->layer_weights_bytes = NULL;
}
