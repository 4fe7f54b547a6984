/*
 * vk_upload.c — a GPU session's device memory: which weights the device
 * engine runs (vk_check_supported, before any allocation), their upload in
 * their stored layout (separate q/k/v and gate/up of one format stacked into
 * one buffer each, MLX scales and biases after the codes), the norms and
 * biases in one buffer, the KV cache and the activations (vk_upload_model),
 * the layer count that fits a device's budget (vk_layers_that_fit), and
 * their release (vk_session_free_buffers).  The state: vk_state.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/vk_state.h"
#include "model/weights.h"

/* ---- what the device engine runs ---- */

static int dense_fmt(sl_dtype t) { return t == SL_F32 ? FMT_F32 : t == SL_F16 ? FMT_F16 : t == SL_BF16 ? FMT_BF16 : -1; }

static int wfmt(const sl_weight *w) {
    if (w->fmt == SL_WF_DENSE) return dense_fmt(w->dtype);
    if (w->fmt == SL_WF_GGUF) {   /* blocks as stored (K-quants: cols % 256 == 0, checked when the model loads) */
        static const struct { sl_dtype t; int f; } g[] = {{SL_Q8_0, FMT_Q8_0}, {SL_Q4_0, FMT_Q4_0}, {SL_Q4_1, FMT_Q4_1},
            {SL_Q5_0, FMT_Q5_0}, {SL_Q5_1, FMT_Q5_1}, {SL_Q4_K, FMT_Q4_K}, {SL_Q5_K, FMT_Q5_K}, {SL_Q6_K, FMT_Q6_K}};
        for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
            if (w->dtype == g[i].t) return g[i].f;
        return -1;
    }
    /* MLX affine: codes of 2..8 bits in whole 32-element chunks (group sizes are multiples of 32) */
    if (w->fmt == SL_WF_MLX_AFFINE && w->biases && dense_fmt(w->scale_dtype) >= 0 && w->bits >= 2 && w->bits <= 8 &&
        w->group_size % 32 == 0 && w->cols % w->group_size == 0)
        return FMT_AFFINE;
    /* MLX mxfp4 / mxfp8 (qmode: silica/quant.h's sl_q_mode, 1 and 2): groups of 32, E8M0 scales; nvfp4's
     * groups of 16 are not read (a 32-element chunk is one group's in the kernels) */
    if (w->fmt == SL_WF_MLX_FP && w->group_size == 32 && w->qmode == 1 && w->bits == 4) return FMT_MXFP4;
    if (w->fmt == SL_WF_MLX_FP && w->group_size == 32 && w->qmode == 2 && w->bits == 8) return FMT_MXFP8;
    return -1;
}

static const char *wdesc(const sl_weight *w, char *buf, size_t n) {
    if (w->fmt == SL_WF_MLX_AFFINE) snprintf(buf, n, "MLX affine %d-bit", w->bits);
    else if (w->fmt == SL_WF_MLX_FP)   /* qmode: silica/quant.h's sl_q_mode (1 mxfp4, 2 mxfp8, 3 nvfp4) */
        snprintf(buf, n, "MLX %s", w->qmode == 1 ? "mxfp4" : w->qmode == 2 ? "mxfp8" : "nvfp4");
    else snprintf(buf, n, "%s", sl_dtype_name(w->dtype));
    return buf;
}

/* The byte offsets of a weight's parts in its device buffer: rows (codes) at 0, then (MLX) scales at *sc
 * and (affine) biases at *bi, each 16-byte aligned, *sbytes bytes each; returns the buffer's bytes in use. */
static uint64_t wlayout(const sl_weight *w, uint64_t *sc, uint64_t *bi, uint64_t *sbytes) {
    uint64_t bytes = (uint64_t)w->rows * w->row_bytes;
    *sc = *bi = *sbytes = 0;
    if (w->fmt != SL_WF_MLX_AFFINE && w->fmt != SL_WF_MLX_FP) return bytes;
    *sbytes = (uint64_t)w->rows * (uint64_t)sl_weight_groups(w) * sl_dtype_size(w->scale_dtype);
    *sc = (bytes + 15) & ~15ull;
    if (w->fmt == SL_WF_MLX_FP) return *sc + *sbytes;
    *bi = (*sc + *sbytes + 15) & ~15ull;
    return *bi + *sbytes;
}
static uint64_t wbytes(const sl_weight *w) {
    uint64_t sc, bi, sb;
    return wlayout(w, &sc, &bi, &sb);
}

/* 0, or an SL_EUNSUPPORTED error naming what the device engine cannot run. */
int vk_check_supported(const sl_model *m, const sl_gpu_session_opts *o, sl_error *err) {
    int first = o->first_layer;
    const sl_model_config *c = &m->cfg;
    if (c->head_dim > 512 || c->head_dim % 2)
        return sl_errorf(err, SL_EUNSUPPORTED, "the GPU engine runs head_dim up to 512 and even, not %d", c->head_dim);
    if (o->kv_bits && kv_unit(c->head_dim, o->kv_group_size) > 1024)
        return sl_errorf(err, SL_EUNSUPPORTED, "the GPU engine quantizes a KV cache where head_dim and the group size have "
                         "a least common multiple of at most 1024, not head_dim %d with groups of %d", c->head_dim,
                         o->kv_group_size);
    if (c->fused_qkv && (c->attn_qkv_bias || c->mlp_bias))
        return sl_errorf(err, SL_EUNSUPPORTED, "the GPU engine has no biases on fused qkv / gate_up projections");
    const sl_weight *ws[2 + 9];
    ws[0] = &m->embed, ws[1] = &m->lm_head;
    for (int l = first; l < c->n_layers; l++) {   /* the embedding only where it runs here */
        const sl_layer_weights *L = &m->layers[l];
        const sl_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_gate_up, &L->w_down};
        memcpy(ws + 2, lw, sizeof lw);
        for (int i = l > first ? 2 : first ? 1 : 0; i < 11; i++) {
            const sl_weight *w = ws[i];
            if (!w->rows) continue;
            char d[64];
            if (wfmt(w) < 0)
                return sl_errorf(err, SL_EUNSUPPORTED,
                                 "the GPU engine runs f32/f16/bf16, MLX affine/mxfp4/mxfp8 and GGUF "
                                 "Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K weights; %s is %s", w->name,
                                 wdesc(w, d, sizeof d));
            if (wbytes(w) >= (1ull << 32))
                return sl_errorf(err, SL_EUNSUPPORTED, "%s is 4 GiB or more: too large for one GPU buffer", w->name);
        }
    }
    return 0;
}

/* ---- upload ---- */

typedef struct vecs {
    float *p;
    size_t n, cap;
} vecs;

/* Append n floats (v may be NULL: -1); returns the offset. */
static int vec_add(vecs *v, const float *x, int n) {
    if (!x) return -1;
    if (v->n + (size_t)n > v->cap) {
        size_t cap = (v->cap + (size_t)n) * 2;
        float *p = realloc(v->p, cap * sizeof *p);
        if (!p) return -2;
        v->p = p, v->cap = cap;
    }
    memcpy(v->p + v->n, x, (size_t)n * sizeof *x);
    v->n += (size_t)n;
    return (int)(v->n - (size_t)n);
}

static int upload_weight(sl_gpu_session *g, const sl_weight *w, gw *out, sl_error *err) {
    memset(out, 0, sizeof *out);
    if (!w->rows) return 0;
    out->fmt = (uint32_t)wfmt(w);
    out->row_bytes = (uint32_t)w->row_bytes;
    out->rows = (uint32_t)w->rows;
    out->cols = (uint32_t)w->cols;
    uint64_t sc, bi, sbytes, bytes = (uint64_t)w->rows * w->row_bytes, total = wlayout(w, &sc, &bi, &sbytes);
    /* 16 bytes of padding: the shaders read GGUF codes as the whole 32-bit words that cover them, up to
     * a word past a block's last byte (weights.glsl's w_u32, w_u64) */
    int rc = vk_buf_new(&g->c, ((total + 3) & ~3ull) + 16, false, w->name, &out->b, err);
    if (!rc) rc = vk_upload(&g->c, &g->staging, &out->b, 0, w->data, bytes, err);
    if (!rc && out->fmt >= FMT_AFFINE && out->fmt <= FMT_MXFP8) {   /* MLX: scales (and biases) after the codes, as stored */
        out->bits = (uint32_t)w->bits, out->gs = (uint32_t)w->group_size;
        out->sfmt = out->fmt == FMT_AFFINE ? (uint32_t)dense_fmt(w->scale_dtype) : 0;
        out->sc_off = (uint32_t)sc, out->bi_off = (uint32_t)bi;
        rc = vk_upload(&g->c, &g->staging, &out->b, sc, w->scales, sbytes, err);
        if (!rc && out->fmt == FMT_AFFINE) rc = vk_upload(&g->c, &g->staging, &out->b, bi, w->biases, sbytes, err);
    }
    return rc;
}

/* Whether the k weights w[] can be stacked by rows into one buffer (one matmul over their concatenated
 * outputs): the same format and row layout, and their biases all there (then consecutive in vec: vec_add
 * keeps the order) or none. */
static bool stackable(const sl_weight *const *w, const float *const *bias, int k) {
    uint64_t rows = 0;
    for (int i = 0; i < k; i++) {
        const sl_weight *a = w[i], *b = w[0];
        if (!a->rows || wfmt(a) < 0 || wfmt(a) != wfmt(b) || a->fmt != b->fmt || a->dtype != b->dtype ||
            a->row_bytes != b->row_bytes || a->cols != b->cols || a->bits != b->bits || a->group_size != b->group_size ||
            a->scale_dtype != b->scale_dtype || a->qmode != b->qmode || !bias[i] != !bias[0])
            return false;
        rows += (uint64_t)a->rows;
    }
    sl_weight t = *w[0];
    t.rows = (int64_t)rows;
    return wbytes(&t) < (1ull << 32) - 64;
}

/* w[0..k) stacked by rows into out, each part where the weights' own layout (wlayout) of all the rows puts
 * it: codes, then (MLX) every weight's scales, then every weight's biases. */
static int upload_stacked(sl_gpu_session *g, const sl_weight *const *w, int k, gw *out, sl_error *err) {
    sl_weight t = *w[0];
    t.rows = 0;
    for (int i = 0; i < k; i++) t.rows += w[i]->rows;
    uint64_t sc, bi, sbytes, total = wlayout(&t, &sc, &bi, &sbytes), row = 0;
    memset(out, 0, sizeof *out);
    out->fmt = (uint32_t)wfmt(&t), out->row_bytes = (uint32_t)t.row_bytes, out->rows = (uint32_t)t.rows;
    out->cols = (uint32_t)t.cols;
    if (out->fmt >= FMT_AFFINE) {
        out->bits = (uint32_t)t.bits, out->gs = (uint32_t)t.group_size;
        out->sfmt = out->fmt == FMT_AFFINE ? (uint32_t)dense_fmt(t.scale_dtype) : 0;
        out->sc_off = (uint32_t)sc, out->bi_off = (uint32_t)bi;
    }
    int rc = vk_buf_new(&g->c, ((total + 3) & ~3ull) + 16, false, w[0]->name, &out->b, err);   /* + upload_weight's pad */
    for (int i = 0; i < k && !rc; i++) {
        uint64_t s_row = (uint64_t)sl_weight_groups(w[i]) * sl_dtype_size(w[i]->scale_dtype), n = (uint64_t)w[i]->rows;
        rc = vk_upload(&g->c, &g->staging, &out->b, row * t.row_bytes, w[i]->data, n * w[i]->row_bytes, err);
        if (!rc && out->fmt >= FMT_AFFINE) rc = vk_upload(&g->c, &g->staging, &out->b, sc + row * s_row, w[i]->scales, n * s_row, err);
        if (!rc && out->fmt == FMT_AFFINE) rc = vk_upload(&g->c, &g->staging, &out->b, bi + row * s_row, w[i]->biases, n * s_row, err);
        row += n;
    }
    return rc;
}

static int upload_layer(sl_gpu_session *g, int l, vecs *v, sl_error *err) {
    const sl_model_config *c = g->cfg;
    const sl_layer_weights *L = &g->m->layers[l];
    glayer *G = &g->L[l];
    int Hd = c->hidden_size, D = c->head_dim, HD = c->n_heads * D, KD = c->n_kv_heads * D, I = c->intermediate_size;
    const sl_weight *src[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_gate_up, &L->w_down};
    gw *dst[] = {&G->wq, &G->wk, &G->wv, &G->wqkv, &G->wo, &G->wg, &G->wu, &G->wgu, &G->wd};
    /* separate q/k/v and gate/up of one format: stacked, one matmul each (as fused_qkv models store them) */
    const float *qkv_b[] = {L->bq, L->bk, L->bv}, *gu_b[] = {L->b_gate, L->b_up};
    bool st_qkv = !L->wqkv.rows && stackable(src, qkv_b, 3), st_gu = !L->w_gate_up.rows && stackable(src + 5, gu_b, 2);
    int rc = st_qkv ? upload_stacked(g, src, 3, &G->wqkv, err) : 0;
    if (!rc && st_gu) rc = upload_stacked(g, src + 5, 2, &G->wgu, err);
    for (int i = 0; i < 9 && !rc; i++)
        if (!(st_qkv && i <= 3) && !(st_gu && i >= 5 && i <= 7)) rc = upload_weight(g, src[i], dst[i], err);
    if (rc) return rc;
    int *off[] = {&G->attn_norm, &G->mlp_norm, &G->post_attn, &G->post_mlp, &G->qn, &G->kn,
                  &G->bq, &G->bk, &G->bv, &G->bo, &G->bg, &G->bu, &G->bd};
    const float *vs[] = {L->attn_norm, L->mlp_norm, L->post_attn_norm, L->post_mlp_norm, c->qk_norm ? L->q_norm : NULL,
                         c->qk_norm ? L->k_norm : NULL, L->bq, L->bk, L->bv, L->bo, L->b_gate, L->b_up, L->b_down};
    int ns[] = {Hd, Hd, Hd, Hd, D, D, HD, KD, KD, Hd, I, I, Hd};
    for (int i = 0; i < 13; i++)
        if ((*off[i] = vec_add(v, vs[i], ns[i])) == -2) return sl_errorf(err, SL_ENOMEM, "out of memory");
    G->bqkv = st_qkv ? G->bq : -1;   /* bk, bv follow bq (stackable: all three or none) */
    G->bgu = st_gu ? G->bg : -1;
    return 0;
}

typedef struct act_buf { vk_buf *b; uint64_t n; bool host; const char *what; } act_buf;
enum { N_ACT = 13 };

/* The N_ACT activation buffers of a session of g->batch rows (their count returned). */
static int act_bufs(sl_gpu_session *g, act_buf *bufs) {
    const sl_model_config *c = g->cfg;
    size_t B = (size_t)g->batch, Hd = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    size_t half = (size_t)c->rotary_dim / 2, HD = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t xq_cols = Hd > I ? Hd : I;   /* the widest matmul input: hidden, ffn or attention output */
    xq_cols = xq_cols > HD ? xq_cols : HD;
    act_buf t[] = {
        {&g->x, B * Hd, false, "activations"},   {&g->xb, B * Hd + 1, false, "activations"},   /* + norm_cnt */
        {&g->xo, B * Hd, false, "activations"},  {&g->qkv, B * (size_t)g->qkv_w, false, "activations"},
        {&g->att, B * HD, false, "activations"}, {&g->gu, B * 2 * I, false, "activations"},
        {&g->hid, B * I, false, "activations"},  {&g->ids, B, true, "token ids"},
        {&g->xq, B * (xq_cols / 32 + 1) * 9, false, "activations"},
        {&g->rope, 4 * B * half, true, "RoPE tables"}, {&g->logits, B * (size_t)c->vocab_size, true, "logits"},
        {&g->step, 4, true, "positions"},
        {&g->part, (size_t)ATTN_SPLIT_TOKENS * (size_t)c->n_heads * g->attn_nc_max * ((size_t)c->head_dim + 2), false,
         "attention partials"},
    };
    _Static_assert(sizeof t / sizeof t[0] == N_ACT, "act_bufs: N_ACT buffers");
    memcpy(bufs, t, sizeof t);
    return (int)(sizeof t / sizeof t[0]);
}

static int alloc_all(sl_gpu_session *g, sl_error *err) {
    const sl_model_config *c = g->cfg;
    vk_ctx *x = &g->c;
    act_buf bufs[N_ACT];
    int rc = 0, nb = act_bufs(g, bufs);
    for (int i = 0; i < nb && !rc; i++) rc = vk_buf_new(x, bufs[i].n * 4, bufs[i].host, bufs[i].what, bufs[i].b, err);
    if (rc) return rc;
    for (int l = g->first; l < c->n_layers && !rc; l++) {   /* K, V: codes, then (quantized) scales and biases */
        uint64_t half = kv_layer_bytes(g, l) / 2;
        rc = vk_buf_new(x, half, false, "the KV cache", &g->kc[l], err);
        if (!rc) rc = vk_buf_new(x, half, false, "the KV cache", &g->vc[l], err);
        g->kv_bytes += 2 * half;
    }
    return rc;
}

int vk_upload_model(sl_gpu_session *g, sl_error *err) {
    const sl_model *m = g->m;
    const sl_model_config *c = g->cfg;
    uint64_t stage = 64ull << 20;
    if (stage > m->weight_bytes + 4096) stage = (m->weight_bytes + 4096 + 3) & ~3ull;
    int rc = vk_buf_new(&g->c, stage, true, "staging", &g->staging, err);
    if (rc) return rc;
    uint32_t zero = 0;
    g->norm_cnt = (uint32_t)((size_t)g->batch * (size_t)c->hidden_size);   /* the fused norms' counter, after xb */
    if ((rc = alloc_all(g, err)) || (rc = vk_upload(&g->c, &g->staging, &g->xb, 4ull * g->norm_cnt, &zero, 4, err)))
        return rc;
    if (!g->first && (rc = upload_weight(g, &m->embed, &g->embed, err))) return rc;
    if (!g->first && m->lm_head.data == m->embed.data && m->lm_head.fmt == m->embed.fmt) {
        g->lm_head = g->embed;
        g->lm_head.shared = true;
    } else if ((rc = upload_weight(g, &m->lm_head, &g->lm_head, err))) {
        return rc;
    }
    vecs v = {0};
    for (int l = g->first; l < c->n_layers && !rc; l++) rc = upload_layer(g, l, &v, err);
    if (!rc && (g->final_norm = vec_add(&v, m->final_norm, c->hidden_size)) == -2) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc) rc = vk_buf_new(&g->c, v.n * 4, false, "norms and biases", &g->vec, err);
    if (!rc) rc = vk_upload(&g->c, &g->staging, &g->vec, 0, v.p, v.n * 4, err);
    free(v.p);
    return rc;
}

static void gw_free(vk_ctx *c, gw *w) {
    if (!w->shared) vk_buf_free(c, &w->b);
}

/* The session's device buffers (weights, KV cache, activations). */
void vk_session_free_buffers(sl_gpu_session *g) {
    vk_ctx *c = &g->c;
    gw_free(c, &g->lm_head);
    gw_free(c, &g->embed);
    for (int l = g->first; g->L && l < g->cfg->n_layers; l++) {
        gw *ws[] = {&g->L[l].wq, &g->L[l].wk, &g->L[l].wv, &g->L[l].wqkv, &g->L[l].wo,
                    &g->L[l].wg, &g->L[l].wu, &g->L[l].wgu, &g->L[l].wd};
        for (int i = 0; i < 9; i++) gw_free(c, ws[i]);
    }
    for (int l = g->first; g->kc && l < g->cfg->n_layers; l++) vk_buf_free(c, &g->kc[l]), vk_buf_free(c, &g->vc[l]);
    vk_buf *bs[] = {&g->vec, &g->x, &g->xb, &g->xo, &g->qkv, &g->att, &g->gu, &g->hid, &g->xq,
                    &g->ids, &g->rope, &g->logits, &g->staging, &g->step, &g->part};
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) vk_buf_free(c, bs[i]);
}

/* How many of the last layers (with the head) fit the device's budget, from
 * the bytes each layer takes (weights, padding, KV cache) and those any
 * split takes (lm_head, activations); for the "out of device memory" error. */
int vk_layers_that_fit(sl_gpu_session *g) {
    const sl_model_config *c = g->cfg;
    act_buf bufs[N_ACT];
    int nb = act_bufs(g, bufs);
    uint64_t fixed = wbytes(&g->m->lm_head) + 16, per = 0;   /* staging, ids, RoPE, logits: host memory */
    if (!g->kvp) return 0;
    for (int i = 0; i < nb; i++) fixed += bufs[i].host ? 0 : bufs[i].n * 4;
    for (int l = 0; l < c->n_layers; l++) {
        const sl_layer_weights *L = &g->m->layers[l];
        const sl_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_gate_up, &L->w_down};
        uint64_t b = kv_layer_bytes(g, l) + 64ull * c->hidden_size;   /* norms and biases: a generous bound */
        for (int i = 0; i < 9; i++) b += lw[i]->rows ? wbytes(lw[i]) + 20 : 0;
        if (b > per) per = b;
    }
    if (fixed >= g->c.budget || !per) return 0;
    uint64_t n = (g->c.budget - fixed) / per;
    return n < (uint64_t)c->n_layers ? (int)n : c->n_layers;
}
