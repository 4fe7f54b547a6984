/*
 * session.c — the forward pass, top to bottom, and the KV cache.
 *
 * One call of sl_session_eval feeds tokens in batches of up to `batch`
 * positions.  For each batch (n tokens at positions p0..p0+n-1):
 *
 *   x = embed[ids] * embed_scale                           (gemma: sqrt(hidden))
 *   for each layer:
 *     h = norm(x)                                          (input_layernorm)
 *     q, k, v = h Wq^T + bq, h Wk^T + bk, h Wv^T + bv      (phi3: one fused qkv)
 *     q, k = norm_head(q), norm_head(k)                    (qwen3, gemma3)
 *     q, k = rope(q), rope(k)                              (layer's RoPE: local or global)
 *     cache[p] = k, v                                      (f16, f32 or 8/4-bit: kvcache.c)
 *     a = softmax(softcap(q K^T * scale) over the visible keys) V
 *     o = a Wo^T + bo;  o = norm(o) (gemma2/3 post-attention norm)
 *     x = x + o
 *     h = norm(x)                                          (llama: post_attention_layernorm;
 *                                                           gemma2/3: pre_feedforward_layernorm)
 *     m = (act(h Wg^T) * (h Wu^T)) Wd^T;  m = norm(m)      (gemma2/3 post-feedforward norm)
 *     x = x + m
 *   logits = softcap(norm(x) Wlm^T)                        (gemma2: final softcap)
 *
 * Invariants: all arithmetic is f32 (weights are widened on the fly by the
 * matmul kernels, the KV cache is widened when read); nothing in the model
 * is written.  A key at position j is visible from position p iff j <= p and,
 * on sliding layers, p - j < sliding_window (transformers' rule); with
 * max_kv, iff j < keep or p - j < max_kv - keep (kvcache.h).  Visible keys
 * are summed in ascending position order, so a cache that evicted nothing
 * gives the same numbers as an unbounded one.  Dynamic
 * NTK RoPE uses this batch's last
 * position + 1, like transformers' per-forward update (dynamic NTK); longrope
 * picks its factors once per session from the context size.
 *
 * Devices: with --device gpu the whole pass and the KV cache live in the GPU
 * engine (src/gpu, through gpu/gpu_session.h).  Partial offload
 * (--gpu-layers N < n_layers): the embedding and layers 0..n_layers-N-1 run
 * here, bit for bit as above, with a KV cache of those layers only; x (n rows
 * of hidden floats) then goes to the GPU session, which holds the other
 * layers' weights and cache and computes the logits.  Both engines lay
 * their layers' caches out by the same plan (sl_kv_layer_plan); the session
 * keeps that plan for all layers (no rows) to check the KV options before a
 * GPU opens and to tell, on truncation, whether a ring evicted a key.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_session.h"
#include "model/weights.h"
#include "runtime/kvcache.h"
#include "runtime/pool.h"
#include "silica/cpu.h"
#include "silica/runtime.h"

/* Phases of the forward pass, for SILICA_PROFILE (wall time of the caller,
 * which also runs its share of every parallel job). */
enum { PH_SERIAL, PH_QKV, PH_ATT, PH_WO, PH_FFN_UP, PH_FFN_DOWN, PH_HEAD, PH_COUNT };
static const char *const ph_names[PH_COUNT] = {"serial", "qkv", "attention", "wo", "gate+up", "down", "head"};

struct sl_session {
    const sl_model *m;
    const sl_model_config *c;
    int n_ctx, pos, batch, nth;
    sl_kvcache kv;
    sl_kvcache plan;               /* every layer's cache layout, no rows (both engines' layers): the KV
                                      options checked before a GPU opens, what a ring overwrote */
    sl_pool *pool;
    int qkv_w;                     /* (H + 2 KV) * D */
    float *x, *xb, *xo, *qkv, *att, *gu, *hid;
    float *scratch;                /* per thread: scratch_stride floats */
    size_t scratch_stride;
    void *act;                     /* prompts' prepared activations, shared (act_bytes) */
    size_t act_bytes;
    float *cos_g, *sin_g, *cos_l, *sin_l;  /* [batch][rotary_dim/2] */
    bool prof;                     /* SILICA_PROFILE: wall time per phase, printed by sl_session_free */
    uint64_t prof_t, prof_ns[PH_COUNT], prof_tokens;
    sl_gpu_session *gpu;           /* --device gpu: the forward pass and KV cache live there (src/gpu) */
    int n_cpu;                     /* layers 0..n_cpu-1 run here (and the embedding), the rest on gpu
                                      (--gpu-layers): n_layers without a GPU, 0 with all of it there */
    char device_note[512];         /* why --device auto runs on the CPU, or the layer split */
    /* sl_session_eval_multi: a workspace session (buffers for many rows,
     * sharing m, c and this pool) whose row t is token t of another session:
     * row_kv[t] its cache, row_pos[t] its position.  NULL: rows are this
     * session's positions pos.. in its own cache. */
    sl_session *multi;
    sl_kvcache **row_kv;
    int64_t *row_pos;
    int multi_rows;
};

/* ---- small vector ops ---- */

static void rmsnorm(float *out, const float *x, const float *w, int d, float eps, bool plus_one) {
    float ss = 0.0f;
    for (int i = 0; i < d; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss / (float)d + eps);
    if (plus_one)
        for (int i = 0; i < d; i++) out[i] = (x[i] * r) * (1.0f + w[i]);
    else
        for (int i = 0; i < d; i++) out[i] = w[i] * (x[i] * r);
}

static float act(sl_act a, float x) {
    switch (a) {
    case SL_ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case SL_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    default: return x / (1.0f + expf(-x));
    }
}

static void add_bias(float *y, size_t ldy, int n, const float *b, int d) {
    if (!b) return;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < d; i++) y[(size_t)t * ldy + (size_t)i] += b[i];
}

/* ---- parallel matmul ----
 * Generation (n < SL_MM_SHARED_MIN): rows split evenly, each thread
 * quantizes the few activation rows itself (no extra synchronisation).
 * Prompts, for formats with prepared activations (matmul.h): the tokens are
 * prepared once, split between threads, into s->act; then threads claim
 * chunks of rows from an atomic counter, so a slow or descheduled thread
 * holds back the rest by one chunk, not by its whole share.  An output is
 * computed by the same kernel from the same data whichever thread claims it,
 * so neither split changes a bit. */

typedef struct mm_job {
    sl_session *s;
    const sl_weight *w;
    const sl_matmul_kernel *k;
    const float *x;
    int n;
    size_t ldx, ldy;
    float *y;
    long next, chunk;              /* shared path: the next unclaimed row, rows per claim */
} mm_job;

static float *thread_scratch(sl_session *s, int tid) { return s->scratch + (size_t)tid * s->scratch_stride; }

static uint64_t prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* Charge the time since the last mark to phase ph. */
static void prof_mark(sl_session *s, int ph) {
    if (!s->prof) return;
    uint64_t t = prof_now();
    s->prof_ns[ph] += t - s->prof_t;
    s->prof_t = t;
}

static void mm_worker(void *arg, int tid, int nt) {
    mm_job *j = arg;
    long lo, hi;
    sl_split((long)j->w->rows, tid, nt, &lo, &hi);
    if (lo >= hi) return;
    j->k->matmul(j->w, j->x, j->n, j->ldx, j->y, j->ldy, lo, hi, thread_scratch(j->s, tid));
}

static void prep_worker(void *arg, int tid, int nt) {
    mm_job *j = arg;
    long lo, hi;
    sl_split((long)j->n, tid, nt, &lo, &hi);
    if (lo < hi) j->k->act_prep(j->w, j->x, j->ldx, j->n, (int)lo, (int)hi, j->s->act);
}

static void mm_act_worker(void *arg, int tid, int nt) {
    mm_job *j = arg;
    (void)nt;
    long rows = (long)j->w->rows, r0;
    while ((r0 = sl_claim(&j->next, j->chunk)) < rows) {
        long r1 = r0 + j->chunk < rows ? r0 + j->chunk : rows;
        j->k->matmul_act(j->w, j->x, j->ldx, j->s->act, j->n, j->y, j->ldy, r0, r1, thread_scratch(j->s, tid));
    }
}

/* Rows per claim: about four claims per thread, a multiple of 16 rows (whole GEMM tiles). */
static long claim_chunk(long rows, int nt) {
    long c = (rows + 4L * nt - 1) / (4L * nt);
    c = (c + 15) & ~15L;
    return c > 0 ? c : 16;
}

static void matmul(sl_session *s, const sl_weight *w, const float *x, int n, size_t ldx, float *y, size_t ldy) {
    const sl_matmul_kernel *k = sl_matmul_for(w);
    mm_job j = {s, w, k, x, n, ldx, ldy, y, 0, 0};
    size_t ab = n >= SL_MM_SHARED_MIN && k->act_bytes ? k->act_bytes(w, n) : 0;
    if (ab == 0) {
        sl_pool_run(s->pool, mm_worker, &j);
        return;
    }
    if (ab > s->act_bytes) {   /* the kernel set changed since the session began (tests): pieces the scratch holds */
        for (int t = 0; t < n; t += SL_MM_SHARED_MIN - 1) {
            mm_job p = {s, w, k, x + (size_t)t * ldx, n - t < SL_MM_SHARED_MIN - 1 ? n - t : SL_MM_SHARED_MIN - 1,
                        ldx, ldy, y + (size_t)t * ldy, 0, 0};
            sl_pool_run(s->pool, mm_worker, &p);
        }
        return;
    }
    sl_pool_run(s->pool, prep_worker, &j);
    j.chunk = claim_chunk((long)w->rows, sl_pool_size(s->pool));
    sl_pool_run(s->pool, mm_act_worker, &j);
}

/* Whether a matmul of n tokens by w goes through the shared-activation path. */
static bool shared_path(const sl_weight *w, int n) {
    const sl_matmul_kernel *k = sl_matmul_for(w);
    return n >= SL_MM_SHARED_MIN && k->act_bytes && k->act_bytes(w, n) > 0;
}

/* Several weights multiplied by the same activations in one pool job (q, k
 * and v; gate and up): one hand-out and one wait instead of one per weight.
 * Each weight's rows are split evenly as in mm_worker, so every output comes
 * from the same kernel call on the same rows as before.  With glu, parts 0
 * and 1 are gate and up (I rows each, split alike) and the thread finishes
 * its own rows: biases, then hid = act(gate) * up, so SwiGLU needs no pass
 * of its own. */
typedef struct mm_part {
    const sl_weight *w;
    float *y;
    const float *bias;
} mm_part;
typedef struct multi_job {
    sl_session *s;
    const float *x;
    int n, np;
    size_t ldx, ldy;
    mm_part p[3];
    float *hid;                    /* glu output, [n][I] */
} multi_job;

static void multi_worker(void *arg, int tid, int nt) {
    multi_job *j = arg;
    long lo = 0, hi = 0;
    for (int i = 0; i < j->np; i++) {
        const sl_weight *w = j->p[i].w;
        sl_split((long)w->rows, tid, nt, &lo, &hi);
        if (lo < hi)
            sl_matmul_for(w)->matmul(w, j->x, j->n, j->ldx, j->p[i].y, j->ldy, lo, hi, thread_scratch(j->s, tid));
    }
    if (!j->hid) return;
    const sl_model_config *c = j->s->c;
    int I = c->intermediate_size;
    const float *bg = j->p[0].bias, *bu = j->p[1].bias;
    for (int t = 0; t < j->n; t++) {
        float *g = j->p[0].y + (size_t)t * j->ldy, *u = j->p[1].y + (size_t)t * j->ldy;
        float *hd = j->hid + (size_t)t * I;
        for (long i = lo; i < hi; i++) {
            if (bg) g[i] += bg[i];
            if (bu) u[i] += bu[i];
            hd[i] = act(c->act, g[i]) * u[i];
        }
    }
}

/* q, k, v (or gate, up) of n tokens: one job when no part takes the shared
 * path, else one matmul per part.  Biases: the caller adds them (glu: the
 * job does, and the caller computes hid when the parts went one by one). */
static bool matmul_multi(sl_session *s, const mm_part *p, int np, const float *x, int n, size_t ldx, size_t ldy,
                         float *hid) {
    for (int i = 0; i < np; i++)
        if (shared_path(p[i].w, n)) {
            for (int k = 0; k < np; k++) matmul(s, p[k].w, x, n, ldx, p[k].y, ldy);
            return false;
        }
    multi_job j = {s, x, n, np, ldx, ldy, {{0}}, hid};
    for (int i = 0; i < np; i++) j.p[i] = p[i];
    sl_pool_run(s->pool, multi_worker, &j);
    return true;
}

/* ---- attention ---- */

typedef struct att_job {
    sl_session *s;
    int layer, n, p0;
} att_job;

/* Scores (already q . k) to probabilities: scale, softcap, max, exp, normalise. */
static void att_softmax(const sl_model_config *c, float *scores, int n) {
    float mx = -INFINITY;
    if (c->attn_softcap > 0)
        for (int i = 0; i < n; i++) {
            float sc = c->attn_softcap * tanhf(scores[i] * c->attn_scale / c->attn_softcap);
            scores[i] = sc;
            if (sc > mx) mx = sc;
        }
    else
        mx = sl_scale_max(scores, n, c->attn_scale);
    float inv = 1.0f / sl_exp_sum(scores, n, mx);
    for (int i = 0; i < n; i++) scores[i] *= inv;
}

/* Token t's attention output for query heads [h0, h0 + g): one KV head's
 * (g <= the group) or whole groups' (g a multiple of it; KV heads h0 / grp
 * on, adjacent in a cache row).  An f16 cache is read in whole runs of rows,
 * each row's slice widened once for its group's heads, several groups' slices
 * as one span per position (sl_att_*_g: every head keeps the single-head
 * chains, so grouping changes no bit); other caches go row by row, one head
 * at a time.  scores: g * vis floats, then tmp. */
static void att_heads(const att_job *j, int t, int h0, int g, float *scores, size_t vis, float *tmp) {
    sl_session *s = j->s;
    const sl_model_config *c = s->c;
    int H = c->n_heads, D = c->head_dim, grp = c->n_heads / c->n_kv_heads;
    sl_kvcache *kv = s->row_kv ? s->row_kv[t] : &s->kv;
    int64_t p = s->row_pos ? s->row_pos[t] : (int64_t)j->p0 + t, s0, s1, r0;
    sl_kvcache_visible(kv, j->layer, p, &s0, &s1, &r0);
    const float *q = s->qkv + (size_t)t * s->qkv_w + (size_t)h0 * D;
    float *out = s->att + (size_t)t * H * D + (size_t)h0 * D;
    sl_kv_run runs[3];
    int nr = sl_kvcache_runs_f16(kv, j->layer, p, h0 / grp, runs);   /* f16 cache: whole runs of rows; visible keys:
                                                                  sinks [s0, s1), then [r0, p], in position order */
    if (nr) {
        int n = 0, sl = g < grp ? g : grp;
        for (int r = 0; r < nr; r++) {
            sl_att_scores_f16_g(q, (size_t)D, g, sl, runs[r].k, kv->row_bytes, runs[r].n, (size_t)D, scores + n, vis);
            n += runs[r].n;
        }
        for (int h = 0; h < g; h++) att_softmax(c, scores + (size_t)h * vis, n);
        memset(out, 0, (size_t)g * (size_t)D * sizeof *out);
        n = 0;
        for (int r = 0; r < nr; r++) {
            sl_att_values_f16_g(out, (size_t)D, scores + n, vis, g, sl, runs[r].v, kv->row_bytes, runs[r].n, (size_t)D);
            n += runs[r].n;
        }
        return;
    }
    for (int h = 0; h < g; h++, q += D, out += D) {
        int n = 0, kvh = (h0 + h) / grp;
        for (int64_t k = s0 < s1 ? s0 : r0; k <= p; k = k + 1 == s1 ? r0 : k + 1, n++)
            scores[n] = sl_dot_f32(q, sl_kvcache_row(kv, j->layer, k, kvh, false, tmp), (size_t)D);
        att_softmax(c, scores, n);
        memset(out, 0, (size_t)D * sizeof *out);
        n = 0;
        for (int64_t k = s0 < s1 ? s0 : r0; k <= p; k = k + 1 == s1 ? r0 : k + 1, n++) {
            const float *row = sl_kvcache_row(kv, j->layer, k, kvh, true, tmp);
            for (int d = 0; d < D; d++) out[d] += scores[n] * row[d];
        }
    }
}

/* The most heads a work item may take: whole GQA groups (a divisor of the
 * KV heads) whose scores for vis keys fit ATT_ITEM_BYTES (a core's L2, as
 * the one-group runs of long contexts had), at least one group. */
#define ATT_ITEM_BYTES ((size_t)2 << 20)
static int att_heads_max(const sl_model_config *c, size_t vis) {
    int grp = c->n_heads / c->n_kv_heads, KV = c->n_kv_heads;
    for (int m = KV; m > 1; m--)
        if (KV % m == 0 && (size_t)(m * grp) * vis * sizeof(float) <= ATT_ITEM_BYTES) return m * grp;
    return grp;
}

/* Heads per work item.  Whole groups, as many as att_heads_max allows while
 * the items still split evenly between the threads, so a thread reads its
 * KV heads' slices of each cache row as one span (one token on 2 threads: 4
 * of 8 KV heads an item); else the most heads of one GQA group (a divisor of
 * the group) that still leaves every thread an item (one token on many
 * threads: halves or single heads).  Grouping changes no bit (att_heads), so
 * the thread count may choose it. */
static int att_heads_per_item(int n, int H, int grp, int nt, int hmax) {
    int KV = H / grp;
    for (int m = KV; m > 1; m--)
        if (KV % m == 0 && m * grp <= hmax && (long)n * (KV / m) >= nt && (long)n * (KV / m) % nt == 0) return m * grp;
    for (int d = grp; d > 1; d--)
        if (grp % d == 0 && (long)n * (H / d) >= nt) return d;
    return 1;
}

/* Work items: (token, run of heads), split evenly between threads. */
static void att_worker(void *arg, int tid, int nt) {
    att_job *j = arg;
    sl_session *s = j->s;
    const sl_model_config *c = s->c;
    size_t vis = (size_t)s->kv.max_visible;
    int H = c->n_heads, grp = c->n_heads / c->n_kv_heads;
    int sub = att_heads_per_item(j->n, H, grp, nt, att_heads_max(c, vis)), per = H / sub;
    float *scores = thread_scratch(s, tid), *tmp = scores + (size_t)sub * vis;
    long lo, hi;
    sl_split((long)j->n * per, tid, nt, &lo, &hi);
    for (long it = lo; it < hi; it++) {
        int t = (int)(it / per), h0 = (int)(it % per) * sub;
        att_heads(j, t, h0, sub, scores, vis, tmp);
    }
}

/* Floats of a thread's attention scratch: the scores of a work item's heads, then the cache's row buffer. */
static size_t att_scratch_floats(const sl_model_config *c, size_t vis, size_t tmp) {
    return (size_t)att_heads_max(c, vis) * vis + tmp;
}

/* ---- RoPE ---- */

static void rope_tables(sl_session *s, const sl_rope_config *r, int p0, int n, float *cs, float *sn) {
    const sl_model_config *c = s->c;
    int half = c->rotary_dim / 2;
    float inv[1024], af;   /* rotary_dim <= 2048, checked in sl_session_new */
    /* longrope: short or long factors for the whole session, chosen by the context
     * size (transformers picks by sequence length per forward, and its Phi-3
     * generate() drops the KV cache when a sequence crosses the switch point);
     * dynamic: per batch, as transformers' per-forward update. */
    int64_t seq = r->type == SL_ROPE_LONGROPE ? (int64_t)s->n_ctx : (int64_t)p0 + n;
    sl_rope_inv_freq(r, c->rotary_dim, c->max_position_embeddings, seq, inv, &af);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            float th = (float)(p0 + t) * inv[i];
            cs[(size_t)t * half + i] = (float)cos((double)th) * af;
            sn[(size_t)t * half + i] = (float)sin((double)th) * af;
        }
}

static void rope_apply(float *v, int rd, const float *cs, const float *sn, bool adjacent) {
    int half = rd / 2;
    if (adjacent) {   /* GGUF's permuted Q/K rows: HF pair (i, i + d/2) is stored at (2i, 2i + 1) */
        for (int i = 0; i < half; i++) {
            float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * cs[i] - b * sn[i];
            v[2 * i + 1] = b * cs[i] + a * sn[i];
        }
        return;
    }
    for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
    }
}

/* ---- one layer ---- */

static void layer_forward(sl_session *s, int l, int n, int p0) {
    const sl_model_config *c = s->c;
    const sl_layer_weights *L = &s->m->layers[l];
    int Hd = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, I = c->intermediate_size;
    size_t W = (size_t)s->qkv_w;
    bool sliding = c->layer_sliding[l];

    for (int t = 0; t < n; t++)
        rmsnorm(s->xb + (size_t)t * Hd, s->x + (size_t)t * Hd, L->attn_norm, Hd, c->norm_eps, c->norm_plus_one);
    prof_mark(s, PH_SERIAL);
    if (c->fused_qkv) {
        matmul(s, &L->wqkv, s->xb, n, Hd, s->qkv, W);
    } else {
        mm_part p[3] = {{&L->wq, s->qkv, NULL}, {&L->wk, s->qkv + (size_t)H * D, NULL},
                        {&L->wv, s->qkv + (size_t)(H + KV) * D, NULL}};
        matmul_multi(s, p, 3, s->xb, n, Hd, W, NULL);
    }
    prof_mark(s, PH_QKV);
    add_bias(s->qkv, W, n, L->bq, H * D);
    add_bias(s->qkv + (size_t)H * D, W, n, L->bk, KV * D);
    add_bias(s->qkv + (size_t)(H + KV) * D, W, n, L->bv, KV * D);

    const float *cs = sliding ? s->cos_l : s->cos_g, *sn = sliding ? s->sin_l : s->sin_g;
    int half = c->rotary_dim / 2;
    for (int t = 0; t < n; t++) {
        float *q = s->qkv + (size_t)t * W, *k = q + (size_t)H * D, *v = k + (size_t)KV * D;
        for (int h = 0; h < H + KV; h++) {   /* q heads then k heads: contiguous */
            float *hv = q + (size_t)h * D;
            if (c->qk_norm) rmsnorm(hv, hv, h < H ? L->q_norm : L->k_norm, D, c->norm_eps, c->norm_plus_one);
            rope_apply(hv, c->rotary_dim, cs + (size_t)t * half, sn + (size_t)t * half, c->rope_adjacent);
        }
        if (s->row_kv) sl_kvcache_store(s->row_kv[t], l, s->row_pos[t], k, v);
        else sl_kvcache_store(&s->kv, l, (int64_t)p0 + t, k, v);
    }
    prof_mark(s, PH_SERIAL);
    att_job aj = {s, l, n, p0};
    sl_pool_run(s->pool, att_worker, &aj);
    prof_mark(s, PH_ATT);

    matmul(s, &L->wo, s->att, n, (size_t)H * D, s->xo, Hd);
    prof_mark(s, PH_WO);
    add_bias(s->xo, Hd, n, L->bo, Hd);
    for (int t = 0; t < n; t++) {
        float *o = s->xo + (size_t)t * Hd, *x = s->x + (size_t)t * Hd;
        if (L->post_attn_norm) rmsnorm(o, o, L->post_attn_norm, Hd, c->norm_eps, c->norm_plus_one);
        for (int i = 0; i < Hd; i++) x[i] += o[i];
        rmsnorm(s->xb + (size_t)t * Hd, x, L->mlp_norm, Hd, c->norm_eps, c->norm_plus_one);
    }

    size_t G = 2 * (size_t)I;
    prof_mark(s, PH_SERIAL);
    bool glu_done = false;
    if (c->fused_qkv) {
        matmul(s, &L->w_gate_up, s->xb, n, Hd, s->gu, G);
    } else {
        mm_part p[2] = {{&L->w_gate, s->gu, L->b_gate}, {&L->w_up, s->gu + I, L->b_up}};
        glu_done = matmul_multi(s, p, 2, s->xb, n, Hd, G, s->hid);
    }
    if (!glu_done) {
        add_bias(s->gu, G, n, L->b_gate, I);
        add_bias(s->gu + I, G, n, L->b_up, I);
        for (int t = 0; t < n; t++) {
            const float *g = s->gu + (size_t)t * G, *u = g + I;
            float *hd = s->hid + (size_t)t * I;
            for (int i = 0; i < I; i++) hd[i] = act(c->act, g[i]) * u[i];
        }
    }
    prof_mark(s, PH_FFN_UP);
    matmul(s, &L->w_down, s->hid, n, (size_t)I, s->xo, Hd);
    prof_mark(s, PH_FFN_DOWN);
    add_bias(s->xo, Hd, n, L->b_down, Hd);
    for (int t = 0; t < n; t++) {
        float *o = s->xo + (size_t)t * Hd, *x = s->x + (size_t)t * Hd;
        if (L->post_mlp_norm) rmsnorm(o, o, L->post_mlp_norm, Hd, c->norm_eps, c->norm_plus_one);
        for (int i = 0; i < Hd; i++) x[i] += o[i];
    }
}

static void embed_rows(sl_session *s, const int32_t *ids, int n) {
    const sl_model_config *c = s->c;
    int Hd = c->hidden_size;
    const sl_matmul_kernel *ek = sl_matmul_for(&s->m->embed);
    for (int t = 0; t < n; t++) {
        float *x = s->x + (size_t)t * Hd;
        ek->row(&s->m->embed, ids[t], x);
        if (c->embed_scale != 1.0f)
            for (int i = 0; i < Hd; i++) x[i] *= c->embed_scale;
    }
}

/* logits of rows first..n-1 (one row of vocab_size floats each). */
static void logits_rows(sl_session *s, int first, int n, float *logits) {
    const sl_model_config *c = s->c;
    int Hd = c->hidden_size, rows = n - first;
    for (int t = first; t < n; t++)
        rmsnorm(s->xb + (size_t)t * Hd, s->x + (size_t)t * Hd, s->m->final_norm, Hd, c->norm_eps, c->norm_plus_one);
    prof_mark(s, PH_SERIAL);
    matmul(s, &s->m->lm_head, s->xb + (size_t)first * Hd, rows, Hd, logits, (size_t)c->vocab_size);
    prof_mark(s, PH_HEAD);
    if (c->final_softcap > 0) {
        float cap = c->final_softcap;
        for (size_t i = 0; i < (size_t)rows * (size_t)c->vocab_size; i++) logits[i] = cap * tanhf(logits[i] / cap);
    }
}

/* One batch: n tokens at s->pos.  logits: n rows (all) or 1 row (last).
 * Partial offload: the hidden states after layer n_cpu - 1 go to the GPU,
 * which runs the other layers and the head. */
static int forward_batch(sl_session *s, const int32_t *ids, int n, bool all, float *logits, sl_error *err) {
    const sl_model_config *c = s->c;
    int p0 = s->pos;
    embed_rows(s, ids, n);
    rope_tables(s, &c->rope, p0, n, s->cos_g, s->sin_g);
    rope_tables(s, &c->rope_local, p0, n, s->cos_l, s->sin_l);
    if (s->prof) s->prof_t = prof_now(), s->prof_tokens += (uint64_t)n;
    for (int l = 0; l < s->n_cpu; l++) layer_forward(s, l, n, p0);
    prof_mark(s, PH_SERIAL);
    if (s->gpu) {
        int rc = sl_gpu_session_eval_hidden(s->gpu, s->x, n, p0, all, logits, err);
        prof_mark(s, PH_HEAD);
        if (rc) return rc;
    } else if (logits) {
        logits_rows(s, all ? 0 : n - 1, n, logits);
    }
    s->pos += n;
    return 0;
}

int sl_session_eval(sl_session *s, const int32_t *ids, int n, bool all_logits, float *logits, sl_error *err) {
    const sl_model_config *c = s->c;
    if (n <= 0) return sl_errorf(err, SL_EINVAL, "no tokens to evaluate");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return sl_errorf(err, SL_EINVAL, "token id %d at position %d is out of range (vocab_size %d)", (int)ids[i],
                             s->pos + i, c->vocab_size);
    if ((int64_t)n > s->kv.limit - s->pos)
        return s->kv.limit == SL_KV_MAX_POS
                   ? sl_errorf(err, SL_EINVAL, "%d tokens at position %d pass the rotating cache's limit of %d positions",
                               n, s->pos, SL_KV_MAX_POS)
                   : sl_errorf(err, SL_EINVAL, "%d tokens at position %d do not fit the context of %d tokens (raise --ctx)",
                               n, s->pos, s->n_ctx);
    if (s->gpu && !s->n_cpu) {
        int rc = sl_gpu_session_eval(s->gpu, ids, n, s->pos, all_logits, logits, err);
        if (!rc) s->pos += n;
        return rc;
    }
    for (int i = 0; i < n; i += s->batch) {
        int b = n - i < s->batch ? n - i : s->batch;
        bool last = i + b == n;
        float *out = NULL;
        if (logits && all_logits) out = logits + (size_t)i * (size_t)c->vocab_size;
        else if (logits && last) out = logits;
        int rc = forward_batch(s, ids + i, b, all_logits, out, err);
        if (rc) return rc;
    }
    return 0;
}

/* ---- lifetime ---- */

/* Largest per-thread scratch any weight's kernel needs for a batch (a weight
 * with prepared activations runs batches of SL_MM_SHARED_MIN or more through
 * the shared buffer, whose size goes to *act). */
static size_t weight_scratch(const sl_weight *w, int batch, size_t *act) {
    const sl_matmul_kernel *k = sl_matmul_for(w);
    size_t ab = k && k->act_bytes && batch >= SL_MM_SHARED_MIN ? k->act_bytes(w, batch) : 0;
    if (ab > *act) *act = ab;
    return sl_matmul_scratch_floats(w, ab ? SL_MM_SHARED_MIN - 1 : batch);
}
static size_t weights_scratch(const sl_model *m, int n_cpu, int batch, size_t *act) {
    size_t need = sl_matmul_scratch_floats(&m->embed, 1);
    size_t v = n_cpu == m->cfg.n_layers ? weight_scratch(&m->lm_head, batch, act) : 0;   /* else the GPU's */
    if (v > need) need = v;
    for (int l = 0; l < n_cpu; l++) {
        const sl_layer_weights *L = &m->layers[l];
        const sl_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_gate_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->rows && (v = weight_scratch(ws[i], batch, act)) > need) need = v;
    }
    return need;
}

/* The model's compute dtype, read from its token embedding (what mlx_lm's
 * activations, hence its KV cache, take: the embedding's dtype, or the
 * scales' of a quantized one; transformers: the weights' dtype). */
sl_dtype sl_session_default_kv_dtype(const sl_model *m) {
    const sl_weight *e = &m->embed;
    bool f32 = e->fmt == SL_WF_DENSE ? e->dtype == SL_F32 : e->fmt == SL_WF_MLX_AFFINE && e->scale_dtype == SL_F32;
    return f32 ? SL_F32 : SL_F16;
}

static int alloc_rows(sl_session *s, size_t B);

/* Where the layers run (d: the options with defaults applied): s->gpu and
 * s->n_cpu set, s->device_note the fallback or the split. */
static int open_gpu(const sl_model *m, const sl_session_opts *d, sl_session *s, sl_error *err) {
    int nl = m->cfg.n_layers, ng = d->gpu_layers == 0 || d->gpu_layers > nl ? nl : d->gpu_layers < 0 ? 0 : d->gpu_layers;
    s->n_cpu = nl;
    if (d->gpu_layers < SL_GPU_LAYERS_NONE)
        return sl_errorf(err, SL_EINVAL, "GPU layers must be 0 or more (got %d)", d->gpu_layers);
    if (d->gpu_layers && d->device.kind == SL_DEVICE_CPU)
        return sl_errorf(err, SL_EINVAL, "--gpu-layers needs --device gpu, gpu:N or auto (the device is the CPU)");
    if (!ng) {
        snprintf(s->device_note, sizeof s->device_note, "--gpu-layers 0: running on the CPU");
        return 0;
    }
    const sl_kvcache *kp = &s->plan;   /* the GPU lays its layers' caches out by the session's plan */
    sl_kv_plan *lp = malloc((size_t)nl * sizeof *lp);
    uint64_t pos_bytes = 0;
    if (!lp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (int l = 0; l < nl; l++)
        lp[l] = (sl_kv_plan){kp->layers[l].sink, kp->layers[l].span, kp->layers[l].win, kp->layers[l].ring};
    int rc = sl_kv_pos_bytes(kp->n_kv_heads, kp->head_dim, kp->dtype, kp->bits, kp->group, &pos_bytes, err);
    sl_gpu_session_opts go = {.n_ctx = d->n_ctx, .kv_dtype = d->kv_dtype, .kv_bits = d->kv_bits,
                              .kv_group_size = kp->group, .kv_plan = lp, .kv_pos_bytes = pos_bytes, .device = d->device, .first_layer = nl - ng,
                              .fit_layers = d->gpu_layers == 0};
    if (!rc) rc = sl_gpu_session_open(m, &go, d->batch, &s->gpu, s->device_note, sizeof s->device_note, err);
    free(lp);
    if (rc || !s->gpu) return rc;
    s->n_cpu = sl_gpu_session_first_layer(s->gpu);
    if (s->n_cpu)
        snprintf(s->device_note, sizeof s->device_note, "%s runs %d of %d layers (the last ones and the head), the CPU %d%s",
                 sl_gpu_session_device(s->gpu), nl - s->n_cpu, nl, s->n_cpu,
                 s->n_cpu > nl - ng ? ": the rest do not fit its memory" : "");
    return 0;
}

int sl_session_new(const sl_model *m, const sl_session_opts *o, sl_session **out, sl_error *err) {
    *out = NULL;
    const sl_model_config *c = sl_model_get_config(m);
    sl_session_opts d = {0};
    if (o) d = *o;
    if (d.n_ctx <= 0) return sl_errorf(err, SL_EINVAL, "context size must be positive (got %d)", d.n_ctx);
    if (!d.kv_dtype) d.kv_dtype = sl_session_default_kv_dtype(m);
    if (d.kv_dtype != SL_F16 && d.kv_dtype != SL_F32)
        return sl_errorf(err, SL_EUNSUPPORTED, "KV cache dtype %s not supported (F16 or F32)", sl_dtype_name(d.kv_dtype));
    d.batch = sl_kv_batch(d.batch, d.n_ctx, d.max_kv > 0 ? d.max_kv : 0);
    if (d.n_threads <= 0) {
        const sl_cpu_features *cpu = sl_cpu();
        d.n_threads = cpu->cores_physical > 0 ? cpu->cores_physical : cpu->cores_logical;
    }
    if (d.n_threads > 256) d.n_threads = 256;
    if (c->rotary_dim > 2048) return sl_errorf(err, SL_EUNSUPPORTED, "rotary dimension %d too large (at most 2048)", c->rotary_dim);
    sl_session *s = calloc(1, sizeof *s);
    if (!s) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = sl_kvcache_plan(&s->plan, c, &d, d.batch, err);
    if (!rc) rc = open_gpu(m, &d, s, err);
    if (rc || (s->gpu && !s->n_cpu)) {   /* a GPU session needs none of the CPU's buffers */
        if (rc) sl_kvcache_free(&s->plan), free(s);
        else s->m = m, s->c = c, s->n_ctx = d.n_ctx, s->batch = d.batch, s->kv.limit = s->plan.limit, *out = s;
        return rc;
    }
    s->m = m;
    s->c = c;
    s->n_ctx = d.n_ctx;
    s->batch = d.batch;
    s->nth = d.n_threads;
    const char *pe = getenv("SILICA_PROFILE");
    s->prof = pe && *pe && *pe != '0';
    int H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim;
    s->qkv_w = (H + 2 * KV) * D;
    sl_model_config kc = *c;   /* the cache of the CPU's layers only */
    kc.n_layers = s->n_cpu;
    rc = sl_kvcache_init(&s->kv, &kc, &d, d.batch, err);
    if (rc) {
        sl_gpu_session_free(s->gpu);
        sl_kvcache_free(&s->plan);
        free(s);
        return rc;
    }
    size_t maxcols = weights_scratch(m, s->n_cpu, d.batch, &s->act_bytes);
    size_t att = att_scratch_floats(c, (size_t)s->kv.max_visible, sl_kvcache_tmp_floats(&s->kv));
    s->scratch_stride = maxcols > att ? maxcols : att;
    s->scratch_stride = (s->scratch_stride + 15) & ~(size_t)15;
    s->pool = sl_pool_new(d.n_threads);
    if (!s->pool || alloc_rows(s, (size_t)d.batch)) {
        sl_session_free(s);
        return sl_errorf(err, SL_ENOMEM, "out of memory for a session of %d tokens", d.n_ctx);
    }
    *out = s;
    return 0;
}

/* The row buffers for B rows (s->scratch_stride, s->nth and s->act_bytes set). */
static int alloc_rows(sl_session *s, size_t B) {
    const sl_model_config *c = s->c;
    size_t H = (size_t)c->n_heads, D = (size_t)c->head_dim, I = (size_t)c->intermediate_size, Hd = (size_t)c->hidden_size;
    size_t half = (size_t)c->rotary_dim / 2;
    s->x = malloc(B * Hd * sizeof(float));
    s->xb = malloc(B * Hd * sizeof(float));
    s->xo = malloc(B * Hd * sizeof(float));
    s->qkv = malloc(B * (size_t)s->qkv_w * sizeof(float));
    s->att = malloc(B * (size_t)H * D * sizeof(float));
    s->gu = malloc(B * 2 * (size_t)I * sizeof(float));
    s->hid = malloc(B * (size_t)I * sizeof(float));
    s->scratch = malloc((size_t)s->nth * s->scratch_stride * sizeof(float));
    s->cos_g = malloc(B * half * sizeof(float));
    s->sin_g = malloc(B * half * sizeof(float));
    s->cos_l = malloc(B * half * sizeof(float));
    s->sin_l = malloc(B * half * sizeof(float));
    s->act = s->act_bytes ? aligned_alloc(64, (s->act_bytes + 63) & ~(size_t)63) : NULL;   /* tile rows in one line */
    bool ok = s->x && s->xb && s->xo && s->qkv && s->att && s->gu && s->hid && s->scratch && s->cos_g && s->sin_g &&
              s->cos_l && s->sin_l && (!s->act_bytes || s->act);
    return ok ? 0 : -1;
}

/* SILICA_PROFILE: one line per session on stderr, time per phase. */
static void prof_print(const sl_session *s) {
    uint64_t tot = 0;
    for (int i = 0; i < PH_COUNT; i++) tot += s->prof_ns[i];
    if (!tot) return;
    fprintf(stderr, "silica: profile: %d threads, %llu tokens, %.3f ms/token:", sl_pool_size(s->pool),
            (unsigned long long)s->prof_tokens, (double)tot / 1e6 / (double)s->prof_tokens);
    for (int i = 0; i < PH_COUNT; i++)
        fprintf(stderr, " %s %.1f%%", ph_names[i], 100.0 * (double)s->prof_ns[i] / (double)tot);
    fprintf(stderr, "; pool sleeps %lu\n", sl_pool_sleeps(s->pool));
}

static void free_rows(sl_session *s) {
    free(s->x);
    free(s->xb);
    free(s->xo);
    free(s->qkv);
    free(s->att);
    free(s->gu);
    free(s->hid);
    free(s->scratch);
    free(s->act);
    free(s->cos_g);
    free(s->sin_g);
    free(s->cos_l);
    free(s->sin_l);
}

/* A workspace of sl_session_eval_multi: row buffers only (m, c and the pool are the owner's). */
static void multi_free(sl_session *w) {
    if (!w) return;
    free_rows(w);
    free(w->row_kv);
    free(w->row_pos);
    free(w);
}

void sl_session_free(sl_session *s) {
    if (!s) return;
    if (s->prof) prof_print(s);
    sl_gpu_session_free(s->gpu);
    multi_free(s->multi);
    sl_pool_free(s->pool);
    sl_kvcache_free(&s->kv);
    sl_kvcache_free(&s->plan);
    free_rows(s);
    free(s);
}

void sl_session_reset(sl_session *s) { s->pos = 0; }
/* Keys/values below pos stay valid unless a ring overwrote them; those above
 * are overwritten by later evals. */
int sl_session_truncate(sl_session *s, int pos) {
    if (pos < 0) pos = 0;
    if (pos < s->pos) s->pos = sl_kvcache_can_keep(&s->plan, s->pos, pos) ? pos : 0;
    return s->pos;
}
int sl_session_pos(const sl_session *s) { return s->pos; }
int sl_session_ctx(const sl_session *s) { return (int)s->kv.limit; }
uint64_t sl_session_kv_bytes(const sl_session *s) { return (s->gpu ? sl_gpu_session_kv_bytes(s->gpu) : 0) + s->kv.bytes; }
int sl_session_gpu_layers(const sl_session *s) { return s->gpu ? s->c->n_layers - s->n_cpu : 0; }
const char *sl_session_device(const sl_session *s, const char **note) {
    if (note) *note = s->device_note[0] ? s->device_note : NULL;
    return s->gpu ? sl_gpu_session_device(s->gpu) : "cpu";
}

/* ---- several sessions, one token each ----
 * Row t of the workspace is session ss[t]'s next token: the matmuls see all
 * n rows (each weight read once), norms and RoPE work per row (RoPE at the
 * row's own position, from its own session's tables rule), the key/value go
 * to that session's cache and its attention reads only that cache.  Every
 * row's arithmetic is the one sl_session_eval does for that token alone:
 * the matmul kernels give each (row, token) output from that token's data
 * only (part9/README.md), so the logits are bit-identical. */

static sl_session *multi_workspace(sl_session *d, sl_session *const *ss, int n);

/* GPU sessions (src/gpu, all layers or the last ones) take their tokens one
 * at a time through sl_session_eval (the same bits as alone, trivially); on
 * an error the sessions already stepped are taken back (pos only: the slot
 * is rewritten by the next token; a ring slot it overwrote held a key no
 * later query sees, the ring being longer than the span). */
static int gpu_eval_multi(sl_session *const *ss, const int32_t *ids, int n, float *logits, sl_error *err) {
    size_t V = (size_t)ss[0]->c->vocab_size;
    for (int t = 0; t < n; t++) {
        int rc = sl_session_eval(ss[t], ids + t, 1, false, logits ? logits + (size_t)t * V : NULL, err);
        if (rc) {
            for (int u = 0; u < t; u++) ss[u]->pos--;
            return rc;
        }
    }
    return 0;
}

int sl_session_eval_multi(sl_session *const *ss, const int32_t *ids, int n, float *logits, sl_error *err) {
    if (n <= 0 || !ss) return sl_errorf(err, SL_EINVAL, "no sessions to evaluate");
    for (int t = 0; t < n; t++) {
        const sl_session *s = ss[t];
        if (!s) return sl_errorf(err, SL_EINVAL, "session %d is NULL", t);
        if (s->m != ss[0]->m) return sl_errorf(err, SL_EINVAL, "session %d runs another model than session 0", t);
        if (!s->gpu != !ss[0]->gpu)
            return sl_errorf(err, SL_EINVAL, "session %d runs on %s and session 0 on %s: a batched step needs one device", t,
                             sl_session_device(s, NULL), sl_session_device(ss[0], NULL));
        for (int u = 0; u < t; u++)
            if (ss[u] == s) return sl_errorf(err, SL_EINVAL, "session %d appears twice (%d and %d)", t, u, t);
        if (ids[t] < 0 || ids[t] >= s->c->vocab_size)
            return sl_errorf(err, SL_EINVAL, "token id %d of session %d is out of range (vocab_size %d)", (int)ids[t], t,
                             s->c->vocab_size);
        if (s->pos >= s->kv.limit)
            return sl_errorf(err, SL_EINVAL, "session %d: position %d does not fit the context of %d tokens (raise --ctx)",
                             t, s->pos, s->n_ctx);
    }
    if (ss[0]->gpu) return gpu_eval_multi(ss, ids, n, logits, err);
    if (n == 1) return sl_session_eval(ss[0], ids, 1, false, logits, err);
    sl_session *w = multi_workspace(ss[0], ss, n);
    if (!w) return sl_errorf(err, SL_ENOMEM, "out of memory for a batched step of %d sequences", n);
    const sl_model_config *c = w->c;
    size_t half = (size_t)c->rotary_dim / 2;
    embed_rows(w, ids, n);
    for (int t = 0; t < n; t++) {
        w->row_kv[t] = &ss[t]->kv;
        w->row_pos[t] = ss[t]->pos;
        rope_tables(ss[t], &c->rope, ss[t]->pos, 1, w->cos_g + t * half, w->sin_g + t * half);
        rope_tables(ss[t], &c->rope_local, ss[t]->pos, 1, w->cos_l + t * half, w->sin_l + t * half);
    }
    for (int l = 0; l < c->n_layers; l++) layer_forward(w, l, n, 0);
    for (int t = 0; t < n; t++) ss[t]->pos++;
    if (logits) logits_rows(w, 0, n, logits);
    return 0;
}

/* d's workspace for these n sessions, grown when they need more rows or
 * scratch than it has; NULL when out of memory. */
static sl_session *multi_workspace(sl_session *d, sl_session *const *ss, int n) {
    size_t vis = 0, tmp = 0, act = 0;
    for (int t = 0; t < n; t++) {
        if ((size_t)ss[t]->kv.max_visible > vis) vis = (size_t)ss[t]->kv.max_visible;
        if (sl_kvcache_tmp_floats(&ss[t]->kv) > tmp) tmp = sl_kvcache_tmp_floats(&ss[t]->kv);
    }
    size_t stride = weights_scratch(d->m, d->n_cpu, n, &act);
    if (att_scratch_floats(d->c, vis, tmp) > stride) stride = att_scratch_floats(d->c, vis, tmp);
    stride = (stride + 15) & ~(size_t)15;
    sl_session *w = d->multi;
    if (w && w->multi_rows >= n && w->scratch_stride >= stride && (size_t)w->kv.max_visible >= vis &&
        w->act_bytes >= act)
        return w;
    multi_free(w);
    d->multi = w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->m = d->m;
    w->c = d->c;
    w->pool = d->pool;   /* borrowed */
    w->nth = d->nth;
    w->qkv_w = d->qkv_w;
    w->n_ctx = d->n_ctx;
    w->batch = w->multi_rows = n;
    w->kv.max_visible = (int)vis;   /* att_worker's scores, then its dequantization buffer */
    w->scratch_stride = stride;
    w->act_bytes = act;
    w->row_kv = calloc((size_t)n, sizeof *w->row_kv);
    w->row_pos = calloc((size_t)n, sizeof *w->row_pos);
    if (!w->row_kv || !w->row_pos || alloc_rows(w, (size_t)n)) {
        multi_free(w);
        d->multi = NULL;
        return NULL;
    }
    return w;
}
