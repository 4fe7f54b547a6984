/*
 * model.c — sl_model_open: checkpoint + config.json -> bound weights.
 *
 * Tensor names are transformers' (model.layers.N.self_attn.q_proj.weight,
 * ...).  Invariants: every matrix is checked for presence, rank, exact shape
 * against the config, a dtype with a matmul kernel, contiguity and byte
 * order before it is used; it is then a view into the mapping (no copy).
 * 1-D tensors (norms, biases) are decoded to f32 through sl_tensor_read,
 * which bounds-checks and handles strides / byte order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/arch.h"
#include "model/model_impl.h"

#define MAX_CONFIG_BYTES (16u << 20)

static int own(sl_model *m, void *p, sl_error *err) {
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **n = realloc(m->owned, cap * sizeof *n);
        if (!n) { free(p); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
        m->owned = n;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return 0;
}

static const char *path_of(const sl_model *m) { return m->ck->path; }

static void shape_str(const sl_tensor *t, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int d = 0; d < t->ndim && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

/* The stored name of a transformers tensor name (GGUF: llama.cpp's, when it has one). */
static const char *stored_name(const sl_model *m, const char *name, char *buf, size_t len) {
    const char *g = m->gguf ? sl_arch_gguf_name(sl_arch_get(m->cfg.arch), name, buf, len) : NULL;
    return g ? g : name;
}

static const sl_tensor *find(const sl_model *m, const char *name) {
    char buf[256];
    return sl_checkpoint_find(m->ck, stored_name(m, name, buf, sizeof buf));
}

static const sl_tensor *need(const sl_model *m, const char *name, bool optional, sl_error *err, int *rc) {
    const sl_tensor *t = find(m, name);
    char buf[256];
    name = stored_name(m, name, buf, sizeof buf);
    *rc = 0;
    if (!t && !optional)
        *rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s' missing (needed by %s)", path_of(m), name,
                        sl_arch_name(m->cfg.arch));
    return t;
}

/* Bind a [rows, cols] matrix; `why` says which config fields give its shape. */
static int bind_mat(sl_model *m, const char *name, int64_t rows, int64_t cols, const char *why, sl_weight *w,
                    sl_error *err) {
    int rc;
    const sl_tensor *t = need(m, name, false, err, &rc);
    if (!t) return rc;
    if (t->dtype == SL_U32) return sl_model_bind_mlx(m, t, rows, cols, why, w, err);
    if (sl_dtype_get(t->dtype) && sl_dtype_get(t->dtype)->is_quant) return sl_model_bind_gguf(m, t, rows, cols, why, w, err);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        char sh[96];
        shape_str(t, sh, sizeof sh);
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' has shape %s, but config.json implies [%lld, %lld] (%s)",
                         path_of(m), name, sh, (long long)rows, (long long)cols, why);
    }
    if (!sl_matmul_lookup(SL_WF_DENSE, t->dtype))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s; the engine multiplies F32, F16, BF16, MLX-quantized and GGUF-block weights",
                         path_of(m), name, sl_dtype_name(t->dtype));
    if (!t->contiguous || t->big_endian)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s; the engine needs contiguous little-endian weights",
                         path_of(m), name, t->big_endian ? "big-endian" : "strided");
    memset(w, 0, sizeof *w);
    w->fmt = SL_WF_DENSE;
    w->dtype = t->dtype;
    w->rows = rows;
    w->cols = cols;
    w->data = t->data;
    w->row_bytes = (size_t)cols * sl_dtype_size(t->dtype);
    w->name = t->name;
    m->weight_bytes += t->nbytes;
    return 0;
}

/* Bind a [n] vector as an owned f32 copy; optional ones may be absent (*out NULL). */
static int bind_vec(sl_model *m, const char *name, int64_t n, bool optional, float **out, sl_error *err) {
    int rc;
    *out = NULL;
    const sl_tensor *t = need(m, name, optional, err, &rc);
    if (!t) return rc;
    if (t->ndim != 1 || t->shape[0] != n) {
        char sh[96];
        shape_str(t, sh, sizeof sh);
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' has shape %s, but config.json implies [%lld]", path_of(m),
                         name, sh, (long long)n);
    }
    if (!sl_convert_supported(t->dtype, SL_F32))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s, expected a float type", path_of(m), name,
                         sl_dtype_name(t->dtype));
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return sl_errorf(err, SL_ENOMEM, "out of memory");
    if ((rc = own(m, v, err))) return rc;
    if ((rc = sl_tensor_read(t, 0, (uint64_t)n, SL_F32, v, err))) return rc;
    m->weight_bytes += t->nbytes;
    *out = v;
    return 0;
}

static int bind_layer(sl_model *m, int l, sl_error *err) {
    const sl_model_config *c = &m->cfg;
    sl_layer_weights *L = &m->layers[l];
    char n[256];
    int rc;
    int64_t H = c->hidden_size, qd = (int64_t)c->n_heads * c->head_dim, kd = (int64_t)c->n_kv_heads * c->head_dim,
            I = c->intermediate_size;
#define NM(s) (snprintf(n, sizeof n, "model.layers.%d.%s", l, s), n)
#define TRY(x) do { if ((rc = (x))) return rc; } while (0)
    if (c->fused_qkv) {
        TRY(bind_mat(m, NM("self_attn.qkv_proj.weight"), qd + 2 * kd, H,
                     "(num_attention_heads + 2 x num_key_value_heads) x head_dim, hidden_size", &L->wqkv, err));
        TRY(bind_mat(m, NM("mlp.gate_up_proj.weight"), 2 * I, H, "2 x intermediate_size, hidden_size", &L->w_gate_up, err));
    } else {
        TRY(bind_mat(m, NM("self_attn.q_proj.weight"), qd, H, "num_attention_heads x head_dim, hidden_size", &L->wq, err));
        TRY(bind_mat(m, NM("self_attn.k_proj.weight"), kd, H, "num_key_value_heads x head_dim, hidden_size", &L->wk, err));
        TRY(bind_mat(m, NM("self_attn.v_proj.weight"), kd, H, "num_key_value_heads x head_dim, hidden_size", &L->wv, err));
        TRY(bind_mat(m, NM("mlp.gate_proj.weight"), I, H, "intermediate_size, hidden_size", &L->w_gate, err));
        TRY(bind_mat(m, NM("mlp.up_proj.weight"), I, H, "intermediate_size, hidden_size", &L->w_up, err));
    }
    TRY(bind_mat(m, NM("self_attn.o_proj.weight"), H, qd, "hidden_size, num_attention_heads x head_dim", &L->wo, err));
    TRY(bind_mat(m, NM("mlp.down_proj.weight"), H, I, "hidden_size, intermediate_size", &L->w_down, err));
    if (c->attn_qkv_bias) {
        TRY(bind_vec(m, NM("self_attn.q_proj.bias"), qd, false, &L->bq, err));
        TRY(bind_vec(m, NM("self_attn.k_proj.bias"), kd, false, &L->bk, err));
        TRY(bind_vec(m, NM("self_attn.v_proj.bias"), kd, false, &L->bv, err));
    }
    if (c->attn_o_bias) TRY(bind_vec(m, NM("self_attn.o_proj.bias"), H, false, &L->bo, err));
    if (c->mlp_bias) {
        TRY(bind_vec(m, NM("mlp.gate_proj.bias"), I, false, &L->b_gate, err));
        TRY(bind_vec(m, NM("mlp.up_proj.bias"), I, false, &L->b_up, err));
        TRY(bind_vec(m, NM("mlp.down_proj.bias"), H, false, &L->b_down, err));
    }
    if (c->qk_norm) {
        TRY(bind_vec(m, NM("self_attn.q_norm.weight"), c->head_dim, false, &L->q_norm, err));
        TRY(bind_vec(m, NM("self_attn.k_norm.weight"), c->head_dim, false, &L->k_norm, err));
    }
    TRY(bind_vec(m, NM("input_layernorm.weight"), H, false, &L->attn_norm, err));
    if (c->sandwich_norms) {
        TRY(bind_vec(m, NM("post_attention_layernorm.weight"), H, false, &L->post_attn_norm, err));
        TRY(bind_vec(m, NM("pre_feedforward_layernorm.weight"), H, false, &L->mlp_norm, err));
        TRY(bind_vec(m, NM("post_feedforward_layernorm.weight"), H, false, &L->post_mlp_norm, err));
    } else {
        TRY(bind_vec(m, NM("post_attention_layernorm.weight"), H, false, &L->mlp_norm, err));
    }
#undef NM
#undef TRY
    return 0;
}

static int load_config(sl_model *m, const char *path, sl_error *err) {
    if (m->ck->config) return 0;
    if (m->ck->format == SL_FMT_GGUF) {
        m->gguf = true;
        return sl_arch_gguf_config(m->ck, NULL, &m->ck->config, err);
    }
    char *dir = strdup(path);
    if (!dir) return sl_errorf(err, SL_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    char *cp = sl_path_join(dir, "config.json");
    free(dir);
    if (!cp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!sl_path_exists(cp)) {
        int rc = sl_errorf(err, SL_EINVAL, "%s: no config.json beside the weights (a model directory is needed)", path);
        free(cp);
        return rc;
    }
    char *txt;
    size_t len;
    int rc = sl_read_file(cp, MAX_CONFIG_BYTES, &txt, &len, err);
    if (!rc) {
        m->ck->config = cJSON_ParseWithLength(txt, len);
        free(txt);
        if (!cJSON_IsObject(m->ck->config)) rc = sl_errorf(err, SL_EINVAL, "%s: invalid JSON, expected an object", cp);
    }
    free(cp);
    return rc;
}

int sl_model_open(const char *path, sl_model **out, sl_error *err) {
    *out = NULL;
    sl_model *m = calloc(1, sizeof *m);
    if (!m) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = sl_checkpoint_open(path, &m->ck, err);
    if (!rc) rc = load_config(m, path, err);
    if (rc) { sl_model_close(m); return rc; }
    char *where = sl_path_is_dir(path) ? sl_path_join(path, "config.json") : strdup("config.json");
    rc = sl_model_config_parse(m->ck->config, m->gguf ? path : where ? where : "config.json", &m->cfg, err);
    free(where);
    if (m->gguf && !rc) {   /* llama.cpp's layout: permuted Q/K rows (llama), gemma norms stored as 1 + w */
        m->cfg.rope_adjacent = sl_arch_get(m->cfg.arch)->gguf_permute_qk;
        m->cfg.norm_plus_one = false;
    }
    if (rc) { sl_model_close(m); return rc; }
    const sl_model_config *c = &m->cfg;
    if (!(rc = bind_mat(m, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, "vocab_size, hidden_size",
                        &m->embed, err))) {
        if (c->tie_embeddings) m->lm_head = m->embed;
        else rc = bind_mat(m, "lm_head.weight", c->vocab_size, c->hidden_size,
                           "vocab_size, hidden_size; tie_word_embeddings is false", &m->lm_head, err);
    }
    if (!rc) rc = bind_vec(m, "model.norm.weight", c->hidden_size, false, &m->final_norm, err);
    if (!rc) {
        m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
        if (!m->layers) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (int l = 0; !rc && l < c->n_layers; l++) rc = bind_layer(m, l, err);
    if (!rc) {   /* more layers in the weights than the config says? */
        char n[64];
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", c->n_layers);
        if (find(m, n))
            rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s' exists, but config.json says num_hidden_layers = %d", path, n,
                           c->n_layers);
    }
    if (rc) { sl_model_close(m); return rc; }
    *out = m;
    return 0;
}

void sl_model_close(sl_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    sl_model_config_free(&m->cfg);
    sl_checkpoint_close(m->ck);
    free(m);
}

const sl_model_config *sl_model_get_config(const sl_model *m) { return &m->cfg; }
uint64_t sl_model_weight_bytes(const sl_model *m) { return m->weight_bytes; }
