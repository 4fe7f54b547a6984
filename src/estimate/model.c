/*
 * model.c — a model as the memory estimator sees it (sl_fit_model): its
 * shape (layers, heads, KV heads, head_dim, sliding layers) from config.json
 * (or GGUF metadata read as the engine reads it, src/model/arch_gguf.c), and
 * its weight tensors with their logical shapes and
 * stored bytes, from the real headers of a local checkpoint or, before
 * download, synthesized from the config of a catalog model
 * (data/models/NAME.json; load.c finds and opens them).
 *
 * Invariants:
 *  - Only headers are read (sl_checkpoint_open maps files; no tensor byte is
 *    touched), so weights_bytes of a checkpoint is exactly Σ tensor nbytes.
 *  - Tolerant by design: a missing field is inferred from the tensors when
 *    possible, else a documented default is assumed; either way one note
 *    names the field and the assumption.  A field needed for sizing that can
 *    be neither read nor inferred is an error naming it.
 *  - Every product is overflow-checked (sl_mul_u64/sl_add_u64).
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "estimate/estimate_impl.h"
#include "model/arch.h"
#include "silica/checkpoint.h"
#include "silica/io.h"
#include "silica/memory.h"

void fit_note(sl_fit_model *m, const char *fmt, ...) {
    if (m->n_notes >= SL_FIT_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->notes[m->n_notes++], sizeof m->notes[0], fmt, ap);
    va_end(ap);
}

void sl_fit_model_free(sl_fit_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_weights; i++) free(m->weights[i].name);
    free(m->weights);
    free(m->name);
    free(m);
}

static sl_fit_model *model_new(const char *name) {
    sl_fit_model *m = calloc(1, sizeof *m);
    if (m && !(m->name = strdup(name))) {
        free(m);
        m = NULL;
    }
    return m;
}

static int add_weight(sl_fit_model *m, size_t *cap, const char *name, uint64_t rows, uint64_t cols, uint64_t bytes,
                      bool linear, sl_error *err) {
    if (m->n_weights == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        sl_fit_weight *w = realloc(m->weights, nc * sizeof *w);
        if (!w) return sl_errorf(err, SL_ENOMEM, "out of memory");
        m->weights = w;
        *cap = nc;
    }
    sl_fit_weight *w = &m->weights[m->n_weights];
    memset(w, 0, sizeof *w);
    if (!(w->name = strdup(name))) return sl_errorf(err, SL_ENOMEM, "out of memory");
    m->n_weights++;
    w->rows = rows;
    w->cols = cols;
    w->bytes = bytes;
    w->linear = linear;
    w->layer = -1;
    const char *p = strstr(name, "layers.");
    if (p) p += 7;
    else if ((p = strstr(name, "blk."))) p += 4;
    if (p && isdigit((unsigned char)*p)) w->layer = atoi(p);
    return 0;
}

/* ---- config fields ---- */

static const cJSON *cfg_item(const cJSON *cfg, const cJSON *text, const char *k) {
    const cJSON *v = text ? cJSON_GetObjectItemCaseSensitive(text, k) : NULL;
    if (!v || cJSON_IsNull(v)) v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* First present of the names (NULL-terminated).  1 found, 0 absent, error < 0. */
static int cfg_int(const cJSON *cfg, const cJSON *text, const char *where, const char *const *names, long *out,
                   sl_error *err) {
    for (int i = 0; names[i]; i++) {
        const cJSON *v = cfg_item(cfg, text, names[i]);
        if (!v) continue;
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
            v->valuedouble > 1e9)
            return -sl_errorf(err, SL_EINVAL, "%s: field '%s' must be a positive integer", where, names[i]);
        *out = (long)v->valuedouble;
        return 1;
    }
    return 0;
}

static const char *cfg_str(const cJSON *cfg, const cJSON *text, const char *k) {
    const cJSON *v = cfg_item(cfg, text, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint32_t dtype_bytes(const char *s) {
    if (!s) return 0;
    if (!strcmp(s, "float32") || !strcmp(s, "F32")) return 4;
    if (!strcmp(s, "bfloat16") || !strcmp(s, "float16") || !strcmp(s, "BF16") || !strcmp(s, "F16")) return 2;
    return 0;
}

/* MLX "quantization" (or "quantization_config") defaults. */
static void cfg_quant(const cJSON *cfg, const cJSON *text, int *bits, int *group) {
    *bits = *group = 0;
    const cJSON *q = cfg_item(cfg, text, "quantization");
    if (!cJSON_IsObject(q)) q = cfg_item(cfg, text, "quantization_config");
    if (!cJSON_IsObject(q)) return;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(q, "bits");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(q, "group_size");
    if (cJSON_IsNumber(b) && b->valueint >= 1 && b->valueint <= 8) *bits = b->valueint;
    *group = cJSON_IsNumber(g) && g->valueint >= 1 && g->valueint <= 4096 ? g->valueint : 64;
}

/* Per-module setting: quantization["<module>"][key] (bits, group_size),
 * else the default. */
static int module_q(const cJSON *cfg, const char *tensor, const char *key, int lo, int hi, int dflt) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
    if (!cJSON_IsObject(q)) return dflt;
    char mod[512];
    snprintf(mod, sizeof mod, "%s", tensor);
    char *dot = strrchr(mod, '.');
    if (dot) *dot = 0;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(q, mod);
    const cJSON *b = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, key) : NULL;
    return cJSON_IsNumber(b) && b->valueint >= lo && b->valueint <= hi ? b->valueint : dflt;
}

static int module_bits(const cJSON *cfg, const char *tensor, int dflt) {
    return module_q(cfg, tensor, "bits", 1, 8, dflt);
}

/* Layers that hold only `sliding_window` positions: the engine's rules
 * (architecture table) for the families it runs, else every layer once a
 * window is set. */
static void count_sliding(sl_fit_model *m, const cJSON *cfg, const cJSON *text) {
    m->n_sliding_layers = 0;
    const sl_arch_info *a = sl_arch_by_model_type(m->arch);
    if (!a && !strncmp(m->arch, "gemma3", 6)) a = sl_arch_get(SL_ARCH_GEMMA3);   /* multimodal wrapper */
    long win = 0;
    static const char *const k_win[] = {"sliding_window", NULL};
    sl_error e;
    if (cfg_int(cfg, text, "", k_win, &win, &e) <= 0) {
        if (!a || cfg_item(cfg, text, "sliding_window")) return;   /* absent: the family's default, if any */
        win = a->sliding_window;
    }
    if (win <= 0) return;
    m->sliding_window = (int)win;
    const cJSON *lt = cfg_item(cfg, text, "layer_types");
    if (cJSON_IsArray(lt)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, lt) if (cJSON_IsString(x) && !strcmp(x->valuestring, "sliding_attention"))
            m->n_sliding_layers++;
        return;
    }
    bool *slide = a ? calloc((size_t)m->n_layers + 1, sizeof *slide) : NULL;
    if (!a || !slide || sl_arch_sliding_layers(a, text ? text : cfg, "", m->n_layers, slide, &e)) {
        m->n_sliding_layers = a ? 0 : m->n_layers;
        free(slide);
        return;
    }
    for (int i = 0; i < m->n_layers; i++) m->n_sliding_layers += slide[i];
    free(slide);
}

/* Fill the shape fields from config (cfg may be NULL) and, where fields
 * are missing, from the tensors already in m->weights. */
static int read_shape(sl_fit_model *m, const cJSON *cfg, const char *where, sl_error *err) {
    const cJSON *text = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "text_config") : NULL;
    if (!cJSON_IsObject(text)) text = NULL;
    cJSON *empty = NULL;
    if (!cfg) cfg = empty = cJSON_CreateObject();
    if (!cfg) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = 0;
    const char *mt = cfg_str(cfg, text, "model_type");
    snprintf(m->arch, sizeof m->arch, "%s", mt ? mt : "unknown");
    static const char *const k_hidden[] = {"hidden_size", "n_embd", "d_model", NULL};
    static const char *const k_layers[] = {"num_hidden_layers", "n_layer", "num_layers", NULL};
    static const char *const k_heads[] = {"num_attention_heads", "n_head", NULL};
    static const char *const k_kv[] = {"num_key_value_heads", NULL};
    static const char *const k_hd[] = {"head_dim", NULL};
    static const char *const k_inter[] = {"intermediate_size", "n_inner", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL};
    static const char *const k_maxpos[] = {"max_position_embeddings", "n_positions", NULL};
    long hidden = 0, layers = 0, heads = 0, kv = 0, hd = 0, inter = 0, vocab = 0, maxpos = 0;
    int r;
    if ((r = cfg_int(cfg, text, where, k_hidden, &hidden, err)) < 0 ||
        (r = cfg_int(cfg, text, where, k_layers, &layers, err)) < 0 ||
        (r = cfg_int(cfg, text, where, k_heads, &heads, err)) < 0 ||
        (r = cfg_int(cfg, text, where, k_kv, &kv, err)) < 0 || (r = cfg_int(cfg, text, where, k_hd, &hd, err)) < 0 ||
        (r = cfg_int(cfg, text, where, k_inter, &inter, err)) < 0 ||
        (r = cfg_int(cfg, text, where, k_vocab, &vocab, err)) < 0 ||
        (r = cfg_int(cfg, text, where, k_maxpos, &maxpos, err)) < 0) {
        rc = -r;
        goto out;
    }
    /* what the tensors say */
    long t_layers = 0, t_vocab = 0, t_hidden = 0, t_q = 0, t_k = 0, t_inter = 0;
    bool has_head = false, has_embed = false;
    for (size_t i = 0; i < m->n_weights; i++) {
        const sl_fit_weight *w = &m->weights[i];
        if (w->layer >= t_layers) t_layers = w->layer + 1;
        const char *n = w->name;
        if (!w->rows || !w->cols || !sl_str_ends_with(n, ".weight")) continue;
        if (fit_is_embedding(n)) {
            has_embed = true;
            t_vocab = (long)w->rows;
            t_hidden = (long)w->cols;
        }
        if (strstr(n, "lm_head") || !strcmp(n, "output.weight")) has_head = true;
        if (w->layer == 0 && (strstr(n, "q_proj") || strstr(n, "attn_q.")) && w->rows > 1) t_q = (long)w->rows;
        if (w->layer == 0 && (strstr(n, "k_proj") || strstr(n, "attn_k.")) && w->rows > 1) t_k = (long)w->rows;
        if (w->layer == 0 && (strstr(n, "up_proj") || strstr(n, "ffn_up.")) && w->rows > 1) t_inter = (long)w->rows;
    }
    bool tensors = m->n_weights > 0;
    if (!mt) fit_note(m, "%s: field 'model_type' missing: assumed a llama-style decoder", where);
#define INFER(var, tv, field, why)                                                                                  \
    if (!var) {                                                                                                     \
        if (tensors && tv > 0) {                                                                                    \
            var = tv;                                                                                               \
            fit_note(m, "%s: field '%s' missing: took %ld from %s", where, field, var, why);                     \
        } else {                                                                                                    \
            rc = sl_errorf(err, SL_EINVAL, "%s: field '%s' missing (needed to size the model; no tensor shows it)", \
                           where, field);                                                                           \
            goto out;                                                                                               \
        }                                                                                                           \
    }
    INFER(layers, t_layers, "num_hidden_layers", "the tensor names");
    INFER(hidden, t_hidden, "hidden_size", "the embedding shape");
    INFER(vocab, t_vocab, "vocab_size", "the embedding shape");
    if (!heads) {
        long guess = t_q > 0 && t_q % 128 == 0 ? t_q / 128 : (hidden % 128 == 0 ? hidden / 128 : 0);
        if (!guess) {
            rc = sl_errorf(err, SL_EINVAL, "%s: field 'num_attention_heads' missing (needed to size the KV cache)", where);
            goto out;
        }
        heads = guess;
        fit_note(m, "%s: field 'num_attention_heads' missing: assumed %ld (head_dim 128)", where, heads);
    }
    if (heads <= 0) {
        rc = sl_errorf(err, SL_EINVAL, "%s: num_attention_heads %ld must be positive", where, heads);
        goto out;
    }
    if (!hd) hd = t_q > 0 && t_q % heads == 0 ? t_q / heads : hidden / heads;
    if (hd <= 0) {   /* e.g. hidden_size smaller than num_attention_heads */
        rc = sl_errorf(err, SL_EINVAL, "%s: head_dim %ld must be positive (hidden_size %ld, num_attention_heads %ld)",
                       where, hd, hidden, heads);
        goto out;
    }
    if (!kv) {
        if (t_k > 0 && t_k % hd == 0) {
            kv = t_k / hd;
            if (kv != heads) fit_note(m, "%s: field 'num_key_value_heads' missing: took %ld from k_proj", where, kv);
        } else {
            kv = heads;
            fit_note(m, "%s: field 'num_key_value_heads' missing: assumed %ld (= num_attention_heads, no GQA)", where, kv);
        }
    }
    if (!inter) {
        if (t_inter > 0) inter = t_inter;
        else {
            inter = 4 * hidden;
            fit_note(m, "%s: field 'intermediate_size' missing: assumed 4 x hidden_size = %ld", where, inter);
        }
    }
    if (layers > 16384) {
        rc = sl_errorf(err, SL_EINVAL, "%s: num_hidden_layers %ld is implausible (at most 16384)", where, layers);
        goto out;
    }
    if (kv > heads || heads % kv) {
        rc = sl_errorf(err, SL_EINVAL, "%s: num_key_value_heads %ld must divide num_attention_heads %ld", where, kv, heads);
        goto out;
    }
    m->n_layers = (int)layers;
    m->hidden = (int)hidden;
    m->n_heads = (int)heads;
    m->n_kv_heads = (int)kv;
    m->head_dim = (int)hd;
    m->intermediate = (int)inter;
    m->vocab = (int)vocab;
    m->max_ctx = maxpos;
    const cJSON *tie = cfg_item(cfg, text, "tie_word_embeddings");
    if (tensors && has_embed) m->tied = !has_head;
    else if (cJSON_IsBool(tie)) m->tied = cJSON_IsTrue(tie);
    else m->tied = !strncmp(m->arch, "gemma", 5);
    const char *dt = cfg_str(cfg, text, "torch_dtype");
    if (!dt) dt = cfg_str(cfg, text, "dtype");
    m->float_bytes = dtype_bytes(dt);
    if (!m->float_bytes) {
        m->float_bytes = 2;
        if (!tensors)
            fit_note(m, "%s: field 'torch_dtype' %s: assumed bfloat16 weights", where, dt ? "not a float type" : "missing");
    }
    m->f32_compute = m->float_bytes == 4;   /* config only; a checkpoint's embedding decides below */
    count_sliding(m, cfg, text);
out:
    cJSON_Delete(empty);
    return rc;
}

/* Mark the tensors mlx-lm's mixed recipes give the high bits:
 * v_proj and down_proj in layers i < L/8, i >= 7L/8, (i - L/8) % 3 == 2;
 * lm_head always (mlx-lm mlx_lm/utils.py, the mixed_* quant predicates). */
static void mark_high_bits(sl_fit_model *m) {
    int L = m->n_layers;
    for (size_t i = 0; i < m->n_weights; i++) {
        sl_fit_weight *w = &m->weights[i];
        const char *n = w->name;
        if (strstr(n, "lm_head") || !strcmp(n, "output.weight")) {
            w->high_bits = true;
            continue;
        }
        if (w->layer < 0 || !(strstr(n, "v_proj") || strstr(n, "down_proj") || strstr(n, "attn_v.") ||
                              strstr(n, "ffn_down.")))
            continue;
        int li = w->layer, a = L / 8;
        w->high_bits = li < a || li >= 7 * L / 8 || (li - a) % 3 == 2;
    }
}

static int totals(sl_fit_model *m, sl_error *err) {
    m->params = m->weights_bytes = m->embed_bytes = 0;
    for (size_t i = 0; i < m->n_weights; i++) {
        const sl_fit_weight *w = &m->weights[i];
        uint64_t p;
        if (!sl_mul_u64(w->rows, w->cols, &p) || !sl_add_u64(m->params, p, &m->params) ||
            !sl_add_u64(m->weights_bytes, w->bytes, &m->weights_bytes))
            return sl_errorf(err, SL_EINVAL, "%s: model size overflows", m->name);
        if (fit_is_embedding(w->name)) m->embed_bytes += w->bytes;
    }
    return 0;
}

/* ---- from a checkpoint's headers ---- */

bool fit_is_embedding(const char *n) {
    return strstr(n, "embed_tokens") || strstr(n, "token_embd") || strstr(n, "wte.");
}

static bool is_linear_name(const char *n, int ndim) {
    return ndim >= 2 && sl_str_ends_with(n, ".weight") && !strstr(n, "norm");
}

int fit_model_from_checkpoint(sl_checkpoint *ck, const char *name, sl_fit_model **out, sl_error *err) {
    sl_fit_model *m = model_new(name);
    if (!m) return sl_errorf(err, SL_ENOMEM, "out of memory");
    const cJSON *cfg = ck->config;
    cJSON *owned = NULL;
    if (!cfg && ck->format == SL_FMT_GGUF) {   /* as the engine reads it; unknown families: the plain keys */
        sl_error e2;
        if (sl_arch_gguf_config(ck, NULL, &owned, &e2)) owned = sl_arch_gguf_keys(ck);
        cfg = owned;
    }
    const char *where = cfg ? (ck->config ? "config.json" : "GGUF metadata") : "(no config.json)";
    int qbits = 0, qgroup = 0;
    if (ck->config) cfg_quant(ck->config, NULL, &qbits, &qgroup);
    size_t cap = 0;
    int rc = 0;
    bool mlx_quant = false, assumed_bits = false;
    uint64_t by_dtype[SL_DTYPE_COUNT] = {0};
    int emb_dt = -1, emb_scale_dt = -1;
    for (size_t i = 0; i < ck->n_tensors && !rc; i++) {
        const sl_tensor *t = &ck->tensors[i];
        uint64_t rows = 1, cols = t->numel;
        if (t->ndim >= 2 && t->shape[t->ndim - 1] > 0) {
            cols = (uint64_t)t->shape[t->ndim - 1];
            rows = t->numel / cols;
        }
        if ((unsigned)t->dtype < SL_DTYPE_COUNT) by_dtype[t->dtype] += t->nbytes;
        if (fit_is_embedding(t->name)) {   /* the compute dtype, as sl_session_default_kv_dtype reads it */
            if (sl_str_ends_with(t->name, ".weight")) emb_dt = (int)t->dtype;
            else if (sl_str_ends_with(t->name, ".scales")) emb_scale_dt = (int)t->dtype;
        }
        bool linear = is_linear_name(t->name, t->ndim);
        int bits;
        bool assumed;
        uint64_t params = sl_tensor_params(ck, t, &bits, &assumed);   /* logical, as mlx-lm counts */
        if (!params && t->numel) {   /* MLX quantization constants: bytes, no parameters */
            rc = add_weight(m, &cap, t->name, 0, 0, t->nbytes, false, err);
            continue;
        }
        if (bits) {
            cols = cols * 32 / (uint64_t)bits;
            assumed_bits |= assumed;
            mlx_quant = true;
        }
        rc = add_weight(m, &cap, t->name, rows, cols, t->nbytes, linear, err);
    }
    if (!rc && assumed_bits) fit_note(m, "config.json: field 'quantization.bits' missing: assumed 4-bit MLX weights");
    if (!rc) rc = read_shape(m, cfg, where, err);
    if (!rc) {
        int best = 0;
        for (int d = 1; d < SL_DTYPE_COUNT; d++)
            if (by_dtype[d] > by_dtype[best]) best = d;
        if (mlx_quant) {
            const cJSON *q = ck->config ? cJSON_GetObjectItemCaseSensitive(ck->config, "quantization") : NULL;
            bool mixed = false;
            const cJSON *e;
            if (cJSON_IsObject(q)) cJSON_ArrayForEach(e, q) mixed |= cJSON_IsObject(e);
            snprintf(m->weights_desc, sizeof m->weights_desc, "mlx affine %d-bit g%d%s", qbits ? qbits : 4,
                     qgroup ? qgroup : 64, mixed ? " (mixed)" : "");
        } else {
            snprintf(m->weights_desc, sizeof m->weights_desc, "%s%s", ck->format == SL_FMT_GGUF ? "GGUF " : "",
                     sl_dtype_name((sl_dtype)best));
            if (best == SL_F32) m->float_bytes = 4;
        }
        if (emb_dt >= 0)
            m->f32_compute = emb_dt == SL_F32 || ((emb_dt == SL_U32 || emb_dt == SL_I32) && emb_scale_dt == SL_F32);
        m->from_headers = true;
        mark_high_bits(m);
        rc = totals(m, err);
    }
    cJSON_Delete(owned);
    if (rc) {
        sl_fit_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- from config.json only: the tensors transformers would create ---- */

typedef struct synth_t {
    const char *s;
    uint64_t r, c;
    bool lin;
} synth_t;

int sl_fit_model_from_config(const cJSON *cfg, const char *name, sl_fit_model **out, sl_error *err) {
    *out = NULL;
    if (!cJSON_IsObject(cfg)) return sl_errorf(err, SL_EINVAL, "%s: config is not a JSON object", name);
    sl_fit_model *m = model_new(name);
    if (!m) return sl_errorf(err, SL_ENOMEM, "out of memory");
    const char *where = name;
    int rc = read_shape(m, cfg, where, err);
    size_t cap = 0;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
    if (!cJSON_IsObject(text)) text = NULL;
    const char *a = m->arch;
    bool qkv_bias = !strcmp(a, "qwen2");
    if (cJSON_IsBool(cfg_item(cfg, text, "attention_bias"))) qkv_bias = cJSON_IsTrue(cfg_item(cfg, text, "attention_bias"));
    bool qk_norm = !strcmp(a, "qwen3") || !strncmp(a, "gemma3", 6);
    bool sandwich = !strcmp(a, "gemma2") || !strncmp(a, "gemma3", 6);
    bool fused = !strcmp(a, "phi3");
    uint64_t H = (uint64_t)m->n_heads, KV = (uint64_t)m->n_kv_heads, D = (uint64_t)m->head_dim;
    uint64_t Hd = (uint64_t)m->hidden, I = (uint64_t)m->intermediate, fb = m->float_bytes;
    char n[160];
#define W(rows_, cols_, lin_)                                                                          \
    do {                                                                                               \
        uint64_t p_, b_;                                                                               \
        if (!sl_mul_u64((rows_), (cols_), &p_) || !sl_mul_u64(p_, fb, &b_))                            \
            rc = sl_errorf(err, SL_EINVAL, "%s: tensor %s: size overflows", where, n);                 \
        else                                                                                           \
            rc = add_weight(m, &cap, n, (rows_), (cols_), b_, (lin_), err);                            \
    } while (0)
    if (!rc) {
        snprintf(n, sizeof n, "model.embed_tokens.weight");
        W((uint64_t)m->vocab, Hd, true);
    }
    for (int l = 0; l < m->n_layers && !rc; l++) {
        synth_t t[16];
        int k = 0;
        if (fused) {
            t[k++] = (synth_t){"self_attn.qkv_proj.weight", (H + 2 * KV) * D, Hd, true};
            t[k++] = (synth_t){"mlp.gate_up_proj.weight", 2 * I, Hd, true};
        } else {
            t[k++] = (synth_t){"self_attn.q_proj.weight", H * D, Hd, true};
            t[k++] = (synth_t){"self_attn.k_proj.weight", KV * D, Hd, true};
            t[k++] = (synth_t){"self_attn.v_proj.weight", KV * D, Hd, true};
            t[k++] = (synth_t){"mlp.gate_proj.weight", I, Hd, true};
            t[k++] = (synth_t){"mlp.up_proj.weight", I, Hd, true};
        }
        t[k++] = (synth_t){"self_attn.o_proj.weight", Hd, H * D, true};
        t[k++] = (synth_t){"mlp.down_proj.weight", Hd, I, true};
        t[k++] = (synth_t){"input_layernorm.weight", 1, Hd, false};
        t[k++] = (synth_t){"post_attention_layernorm.weight", 1, Hd, false};
        if (sandwich) {
            t[k++] = (synth_t){"pre_feedforward_layernorm.weight", 1, Hd, false};
            t[k++] = (synth_t){"post_feedforward_layernorm.weight", 1, Hd, false};
        }
        if (qk_norm) {
            t[k++] = (synth_t){"self_attn.q_norm.weight", 1, D, false};
            t[k++] = (synth_t){"self_attn.k_norm.weight", 1, D, false};
        }
        if (qkv_bias && !fused) {
            t[k++] = (synth_t){"self_attn.q_proj.bias", 1, H * D, false};
            t[k++] = (synth_t){"self_attn.k_proj.bias", 1, KV * D, false};
            t[k++] = (synth_t){"self_attn.v_proj.bias", 1, KV * D, false};
        }
        for (int j = 0; j < k && !rc; j++) {
            snprintf(n, sizeof n, "model.layers.%d.%s", l, t[j].s);
            W(t[j].r, t[j].c, t[j].lin);
        }
    }
    if (!rc) {
        snprintf(n, sizeof n, "model.norm.weight");
        W(1, Hd, false);
    }
    if (!rc && !m->tied) {
        snprintf(n, sizeof n, "lm_head.weight");
        W((uint64_t)m->vocab, Hd, true);
    }
#undef W
    if (!rc) {
        mark_high_bits(m);
        int qb, qg;
        cfg_quant(cfg, text, &qb, &qg);
        if (qb) {   /* an mlx-lm config: predict the quantized sizes */
            for (size_t i = 0; i < m->n_weights && !rc; i++) {   /* per-module overrides (mixed recipes) */
                sl_fit_weight *w = &m->weights[i];
                sl_fit_recipe r = {"config", module_bits(cfg, w->name, qb),
                                   module_q(cfg, w->name, "group_size", 1, 4096, qg), 0, NULL};
                rc = fit_weight_bytes(w, &r, fb, &w->bytes, err);
            }
            snprintf(m->weights_desc, sizeof m->weights_desc, "mlx affine %d-bit g%d (predicted)", qb, qg);
        } else {
            snprintf(m->weights_desc, sizeof m->weights_desc, "%s (from config)", fb == 4 ? "F32" : "BF16/F16");
        }
    }
    if (!rc) rc = totals(m, err);
    if (rc) {
        sl_fit_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
