/*
 * kvcache.c — the session's KV cache: f16 / f32 rows or MLX affine 4/8-bit
 * codes (group-wise, like mlx_lm's QuantizedKVCache), with sliding-window
 * rings and the bounded rotating cache with attention sinks (mlx_lm's
 * RotatingKVCache(max_size, keep)); and the size formulas and layer plan
 * (sl_kv_layer_plan) the estimator (src/estimate, `silica fit`) and the GPU
 * engine's device cache (src/gpu) share, so all three always agree.  Layout and
 * visibility rules: kvcache.h.
 *
 * Quantization goes through src/quant's affine quantizer (byte-identical to
 * mx.quantize): with the default f16 cache each position's K (V) row is
 * rounded to f16 first, then quantized with f16 scales and biases — exactly
 * mx.quantize of the f16 row; an f32 cache quantizes the f32 row with f32
 * scales and biases (mx.quantize of an f32 model's keys).
 * When head_dim is a multiple of the group (every real model) the groups are
 * mlx_lm's per-head groups; with smaller heads (test models: head_dim 16) a
 * group spans neighbouring heads of the same position, which MLX cannot do.
 *
 * Invariants: every size is overflow-checked before allocation; nothing is
 * allocated after sl_kvcache_init (memory stays flat however long a rotating
 * session runs).
 */
#include "runtime/kvcache.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "silica/io.h"
#include "silica/quant.h"

/* ---- shared size formulas (runtime.h) ---- */

int sl_kv_group_size(int n_kv_heads, int head_dim, int bits, int requested, int *out, sl_error *err) {
    *out = 0;
    if (bits == 0) return 0;
    if (bits != 4 && bits != 8) return sl_errorf(err, SL_EINVAL, "KV cache bits must be 4 or 8 (got %d)", bits);
    int64_t row = (int64_t)n_kv_heads * head_dim;
    if (requested) {
        if (requested != 32 && requested != 64 && requested != 128)
            return sl_errorf(err, SL_EINVAL, "KV cache group size must be 32, 64 or 128 (got %d)", requested);
        if (row % requested)
            return sl_errorf(err, SL_EINVAL,
                             "KV cache group size %d does not divide a KV row of %lld values (%d KV heads x head_dim %d)",
                             requested, (long long)row, n_kv_heads, head_dim);
        *out = requested;
        return 0;
    }
    /* mlx_lm's 64 where heads allow it, else per-head 32 (phi3: 96), else spanning heads */
    static const int pref[] = {64, 32};
    for (int i = 0; i < 2; i++)
        if (head_dim % pref[i] == 0) return *out = pref[i], 0;
    for (int i = 0; i < 2; i++)
        if (row % pref[i] == 0) return *out = pref[i], 0;
    return sl_errorf(err, SL_EUNSUPPORTED,
                     "a quantized KV cache needs n_kv_heads x head_dim (%lld) to be a multiple of 32", (long long)row);
}

int sl_kv_pos_bytes(int n_kv_heads, int head_dim, sl_dtype dtype, int bits, int group_size, uint64_t *out,
                    sl_error *err) {
    uint64_t row = (uint64_t)n_kv_heads * (uint64_t)head_dim, b, esz = dtype == SL_F32 ? 4 : 2;
    if (bits) {
        if (!group_size || row % (uint64_t)group_size)
            return sl_errorf(err, SL_EINVAL, "KV cache group size %d does not divide a row of %llu values", group_size,
                             (unsigned long long)row);
        b = row * (uint64_t)bits / 8 + 2 * esz * (row / (uint64_t)group_size);   /* codes + scale and bias */
    } else {
        b = row * esz;
    }
    *out = 2 * b;   /* K and V */
    return 0;
}

int sl_kv_batch(int batch, int64_t n_ctx, int64_t max_kv) {
    int64_t b = batch > 0 ? batch : 64;
    if (b > n_ctx) b = n_ctx;
    if (max_kv > 0 && b > max_kv) b = max_kv;
    return (int)(b > 0 ? b : 1);
}

/* One layer's visibility and ring (kvcache.h).  window: 0 = full attention. */
sl_kv_plan sl_kv_layer_plan(int64_t n_ctx, int batch, int64_t max_kv, int keep, int window) {
    const int64_t inf = INT_MAX;
    int64_t W = window > 0 ? window : inf;
    sl_kv_plan p = {0, W, W, 0};
    if (max_kv > 0 && max_kv - keep < W) {
        p.sink = keep;
        p.span = max_kv - keep;
    }
    if (p.span >= inf) p.ring = n_ctx;
    else if (max_kv > 0) p.ring = p.span + batch - 1;
    else p.ring = p.span + batch - 1 < n_ctx ? p.span + batch - 1 : n_ctx;
    return p;
}

int64_t sl_kv_layer_slots(int64_t n_ctx, int batch, int64_t max_kv, int keep, int window) {
    sl_kv_plan p = sl_kv_layer_plan(n_ctx, batch, max_kv, keep, window);
    return p.sink + p.ring;
}

/* ---- the cache ---- */

/* The attention sinks a rotating cache keeps (opts' kv_keep, defaults applied). */
static int kvcache_keep(const sl_session_opts *o) { return o->kv_keep < 0 ? 0 : o->kv_keep ? o->kv_keep : SL_KV_KEEP; }

int sl_kvcache_plan(sl_kvcache *kv, const sl_model_config *c, const sl_session_opts *o, int batch, sl_error *err) {
    memset(kv, 0, sizeof *kv);
    int rc, keep = kvcache_keep(o);
    if (o->kv_bits && o->kv_bits != 4 && o->kv_bits != 8)
        return sl_errorf(err, SL_EINVAL, "KV cache bits must be 4 or 8 (got %d)", o->kv_bits);
    if (o->kv_group_size && !o->kv_bits)
        return sl_errorf(err, SL_EINVAL, "a KV group size (%d) needs a quantized KV cache (4 or 8 bits)", o->kv_group_size);
    if (o->max_kv < 0 || o->max_kv > SL_KV_MAX_SIZE)
        return sl_errorf(err, SL_EINVAL, "max KV size must be in 1..%d (got %d)", SL_KV_MAX_SIZE, o->max_kv);
    if (o->max_kv > 0 && o->max_kv <= keep)
        return sl_errorf(err, SL_EINVAL, "max KV size %d must exceed the %d attention-sink tokens kept", o->max_kv, keep);
    if (keep > SL_KV_MAX_SIZE) return sl_errorf(err, SL_EINVAL, "KV keep %d is too large", keep);
    kv->n_layers = c->n_layers;
    kv->n_kv_heads = c->n_kv_heads;
    kv->head_dim = c->head_dim;
    kv->row = c->n_kv_heads * c->head_dim;
    kv->dtype = o->kv_dtype ? o->kv_dtype : SL_F16;
    kv->bits = o->kv_bits;
    if ((rc = sl_kv_group_size(c->n_kv_heads, c->head_dim, o->kv_bits, o->kv_group_size, &kv->group, err))) return rc;
    kv->groups = kv->bits ? kv->row / kv->group : 0;
    kv->row_bytes = kv->bits ? (size_t)kv->row * (size_t)kv->bits / 8 : (size_t)kv->row * sl_dtype_size(kv->dtype);
    kv->limit = o->max_kv > 0 ? SL_KV_MAX_POS : o->n_ctx;
    size_t sdsz = sl_dtype_size(kv->dtype), per_row = kv->row_bytes + 2 * sdsz * (size_t)kv->groups;
    kv->layers = calloc((size_t)c->n_layers, sizeof *kv->layers);
    if (!kv->layers) return sl_errorf(err, SL_ENOMEM, "out of memory");
    uint64_t total = 0;
    for (int l = 0; l < c->n_layers; l++) {
        int window = c->layer_sliding[l] && c->sliding_window > 0 ? c->sliding_window : 0;
        sl_kv_plan lp = sl_kv_layer_plan(o->n_ctx, batch, o->max_kv, keep, window);
        int64_t sink = lp.sink, span = lp.span, win = lp.win, ring = lp.ring, slots = sink + ring;
        uint64_t b;
        if (slots > INT_MAX / 2 || !sl_mul_u64((uint64_t)slots, 2 * (uint64_t)per_row, &b) ||
            !sl_add_u64(total, b, &total) || total > (uint64_t)SIZE_MAX / 2) {
            sl_kvcache_free(kv);
            return sl_errorf(err, SL_EINVAL, "KV cache for a context of %d tokens is too large", o->n_ctx);
        }
        sl_kv_layer *L = &kv->layers[l];
        L->sink = (int)sink;
        L->span = (int)span;
        L->win = (int)win;
        L->ring = (int)ring;
        int vis = (int)(sink + (span < ring ? span : ring));
        if (vis > kv->max_visible) kv->max_visible = vis;
    }
    kv->bytes = total;
    return 0;
}

int sl_kvcache_init(sl_kvcache *kv, const sl_model_config *c, const sl_session_opts *o, int batch, sl_error *err) {
    int rc = sl_kvcache_plan(kv, c, o, batch, err);
    if (rc) return rc;
    uint64_t total = kv->bytes;
    size_t sdsz = sl_dtype_size(kv->dtype);
    kv->mem = malloc(total ? (size_t)total : 1);
    kv->half = malloc((size_t)kv->row * sizeof *kv->half);
    if (!kv->mem || !kv->half) {
        sl_kvcache_free(kv);
        return sl_errorf(err, SL_ENOMEM, "out of memory for a KV cache of %llu bytes", (unsigned long long)total);
    }
    uint8_t *p = kv->mem;   /* row_bytes is a multiple of 4 (row is a multiple of 32 when quantized) */
    for (int l = 0; l < c->n_layers; l++) {
        sl_kv_layer *L = &kv->layers[l];
        size_t slots = (size_t)L->sink + (size_t)L->ring, codes = slots * kv->row_bytes;
        size_t sc = slots * (size_t)kv->groups * sdsz;
        L->k = p, p += codes;
        L->v = p, p += codes;
        if (kv->bits) {
            L->ks = p, p += sc;
            L->kb = p, p += sc;
            L->vs = p, p += sc;
            L->vb = p, p += sc;
        }
    }
    return 0;
}

void sl_kvcache_free(sl_kvcache *kv) {
    free(kv->mem);
    free(kv->layers);
    free(kv->half);
    memset(kv, 0, sizeof *kv);
}

static size_t slot_of(const sl_kv_layer *L, int64_t pos) {
    if (pos < L->sink) return (size_t)pos;
    return (size_t)L->sink + (size_t)((pos - L->sink) % L->ring);
}

static void store_row(sl_kvcache *kv, uint8_t *dst, uint8_t *sc, uint8_t *bi, const float *x) {
    if (kv->bits) {
        const void *src = x;
        if (kv->dtype == SL_F16) {
            sl_f32_to_f16_n(x, kv->half, (size_t)kv->row);
            src = kv->half;
        }
        /* arguments were validated at init: cannot fail */
        (void)sl_q_affine_quantize(src, kv->dtype, (size_t)kv->row, kv->bits, kv->group, kv->dtype, SL_Q_VARIANT_CPU,
                                   (uint32_t *)(void *)dst, sc, bi, NULL);
    } else if (kv->dtype == SL_F32) {
        memcpy(dst, x, (size_t)kv->row * sizeof(float));
    } else {
        sl_f32_to_f16_n(x, (uint16_t *)(void *)dst, (size_t)kv->row);
    }
}

void sl_kvcache_store(sl_kvcache *kv, int l, int64_t pos, const float *k, const float *v) {
    sl_kv_layer *L = &kv->layers[l];
    size_t s = slot_of(L, pos), g = s * (size_t)kv->groups * sl_dtype_size(kv->dtype);
    store_row(kv, L->k + s * kv->row_bytes, L->ks ? L->ks + g : NULL, L->kb ? L->kb + g : NULL, k);
    store_row(kv, L->v + s * kv->row_bytes, L->vs ? L->vs + g : NULL, L->vb ? L->vb + g : NULL, v);
}

size_t sl_kvcache_tmp_floats(const sl_kvcache *kv) { return (size_t)kv->head_dim + 2 * (size_t)kv->group; }

int sl_kvcache_runs_f16(const sl_kvcache *kv, int l, int64_t p, int h, sl_kv_run runs[3]) {
    if (kv->bits || kv->dtype != SL_F16) return 0;
    const sl_kv_layer *L = &kv->layers[l];
    int64_t s0, s1, r0;
    sl_kvcache_visible(kv, l, p, &s0, &s1, &r0);
    size_t off = (size_t)h * (size_t)kv->head_dim * sizeof(uint16_t);
    int nr = 0;
    for (int part = 0; part < 2; part++) {   /* [s0, s1) at slots s0.., then [r0, p] around the ring */
        int64_t a = part ? r0 : s0, b = part ? p + 1 : s1;
        while (a < b) {
            size_t slot = slot_of(L, a);
            int64_t room = part ? (int64_t)(L->sink + L->ring - slot) : b - a;
            int64_t c = b - a < room ? b - a : room;
            runs[nr].k = (const uint16_t *)(const void *)(L->k + slot * kv->row_bytes + off);
            runs[nr].v = (const uint16_t *)(const void *)(L->v + slot * kv->row_bytes + off);
            runs[nr++].n = (int)c;
            a += c;
        }
    }
    return nr;
}

const float *sl_kvcache_row(const sl_kvcache *kv, int l, int64_t pos, int h, bool value, float *tmp) {
    const sl_kv_layer *L = &kv->layers[l];
    size_t s = slot_of(L, pos), D = (size_t)kv->head_dim, e0 = (size_t)h * D;
    const uint8_t *row = (value ? L->v : L->k) + s * kv->row_bytes;
    if (!kv->bits) {
        if (kv->dtype == SL_F32) return (const float *)(const void *)row + e0;
        sl_f16_to_f32_n((const uint16_t *)(const void *)row + e0, tmp, D);
        return tmp;
    }
    /* the whole groups covering elements [e0, e0 + D) of the row */
    size_t G = (size_t)kv->group, g0 = e0 / G, g1 = (e0 + D + G - 1) / G;
    size_t sg = (s * (size_t)kv->groups + g0) * sl_dtype_size(kv->dtype);
    const uint8_t *sc = (value ? L->vs : L->ks) + sg, *bi = (value ? L->vb : L->kb) + sg;
    const uint32_t *w = (const uint32_t *)(const void *)(row + g0 * G * (size_t)kv->bits / 8);
    (void)sl_q_affine_dequantize(w, sc, bi, kv->dtype, (g1 - g0) * G, kv->bits, kv->group, SL_F32, tmp, NULL);
    return tmp + (e0 - g0 * G);
}

bool sl_kvcache_can_keep(const sl_kvcache *kv, int64_t pos, int64_t keep) {
    for (int l = 0; l < kv->n_layers; l++) {
        const sl_kv_layer *L = &kv->layers[l];
        int64_t need = keep - (int64_t)L->span + 1;   /* oldest ring position the next query sees */
        if (need < L->sink) need = L->sink;
        if (need < keep && need < pos - (int64_t)L->ring) return false;
    }
    return true;
}
