/*
 * model_q.c — quantized weights and GGUF models for sl_model_open.
 *
 *  - MLX (mlx-lm directories): a module `P` is quantized when `P.weight` is
 *    uint32 and `P.scales` exists; bits / group size / mode come from
 *    config.json "quantization" (or "quantization_config"), with per-module
 *    overrides keyed by `P` (mlx-lm's rule: mode defaults to affine, a null
 *    group_size means 64).  Affine needs `P.biases` with the scales' dtype
 *    (F32/F16/BF16); mxfp4/mxfp8/nvfp4 have uint8 scales and no biases.
 *  - GGUF: general.architecture llama, qwen2, qwen3, gemma, gemma2, gemma3
 *    or phi3; the <arch>.* keys become a config.json object that the
 *    ordinary parser checks, with llama.cpp's semantics where they differ
 *    from transformers' (gemma2/3: 1/sqrt(head_dim) attention scale, sliding
 *    layers by period 2 / 6 or attention.sliding_window_pattern; phi3:
 *    rope_factors_long/short + rope.scaling.*, long factors whenever the
 *    context padded to 256 exceeds the original); tensor names (token_embd,
 *    blk.N.attn_q, post_attention_norm, attn_qkv...) map to transformers'
 *    names; a missing output.weight means tied embeddings; rope_freqs.weight
 *    (Llama 3 RoPE factors) becomes per-dimension frequency divisors.  Only
 *    llama's Q/K rows were permuted by convert_hf_to_gguf: they are used as
 *    stored, with RoPE rotating adjacent pairs (cfg.rope_adjacent), which is
 *    the permutation undone.  Gemma norms are stored with the +1 already
 *    added, so cfg.norm_plus_one is cleared (model.c).
 * Invariants: every quantized weight is checked (shapes of codes, scales,
 * biases against the config, dtypes, contiguity) before it is bound as a
 * view; nothing is dequantized here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/model_impl.h"
#include "silica/quant.h"

/* ---- MLX ---- */

static const cJSON *qfield(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int qparams(const sl_model *m, const char *module, int *bits, int *gs, sl_q_mode *mode, sl_error *err) {
    const cJSON *cfg = m->ck->config;
    const cJSON *qc = cfg ? qfield(cfg, "quantization") : NULL;
    if (!qc && cfg) qc = qfield(cfg, "quantization_config");
    if (!cJSON_IsObject(qc))
        return sl_errorf(err, SL_EINVAL, "%s: '%s.weight' is quantized (it has '%s.scales'), but config.json has no "
                         "\"quantization\" object", m->ck->path, module, module);
    const cJSON *e = qfield(qc, module);
    const cJSON *base = cJSON_IsObject(e) ? e : qc;
    const cJSON *b = qfield(base, "bits");
    if (!b) b = qfield(qc, "bits");
    const cJSON *g = qfield(base, "group_size");
    if (!g && base != qc && !cJSON_GetObjectItemCaseSensitive(base, "group_size")) g = qfield(qc, "group_size");
    const cJSON *md = qfield(base, "mode");
    if (!md) md = qfield(qc, "mode");
    if ((b && !cJSON_IsNumber(b)) || (g && !cJSON_IsNumber(g)) || (md && !cJSON_IsString(md)))
        return sl_errorf(err, SL_EINVAL, "%s: config.json \"quantization\" for '%s': bits and group_size must be "
                         "integers, mode a string", m->ck->path, module);
    *bits = b ? b->valueint : 4;
    *gs = g ? g->valueint : 64;
    *mode = SL_Q_AFFINE;
    if (md && sl_q_mode_from_name(md->valuestring, mode))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: '%s': unknown quantization mode '%s' (affine, mxfp4, mxfp8, nvfp4)",
                         m->ck->path, module, md->valuestring);
    sl_error e2;
    if (sl_q_check(*mode, *bits, *gs, &e2))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: '%s': %s", m->ck->path, module, e2.msg);
    return 0;
}

static int check_view(const sl_model *m, const sl_tensor *t, sl_error *err) {
    if (!t->contiguous || t->big_endian)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s; the engine needs contiguous little-endian weights",
                         m->ck->path, t->name, t->big_endian ? "big-endian" : "strided");
    return 0;
}

int sl_model_bind_mlx(sl_model *m, const sl_tensor *t, int64_t rows, int64_t cols, const char *why, sl_weight *w,
                      sl_error *err) {
    char module[256], sn[300], bn[300];
    size_t len = strlen(t->name);
    if (len < 8 || len >= sizeof module + 7 || strcmp(t->name + len - 7, ".weight") != 0)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' is uint32 but not a quantized '.weight'", m->ck->path, t->name);
    memcpy(module, t->name, len - 7);
    module[len - 7] = 0;
    snprintf(sn, sizeof sn, "%s.scales", module);
    snprintf(bn, sizeof bn, "%s.biases", module);
    const sl_tensor *s = sl_checkpoint_find(m->ck, sn), *b = sl_checkpoint_find(m->ck, bn);
    if (!s)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' is uint32 but '%s' is missing (not an MLX-quantized weight)",
                         m->ck->path, t->name, sn);
    int bits = 0, gs = 0, rc;
    sl_q_mode mode = SL_Q_AFFINE;
    if ((rc = qparams(m, module, &bits, &gs, &mode, err))) return rc;
    if (cols % gs)
        return sl_errorf(err, SL_EINVAL, "%s: '%s': %lld columns are not a multiple of group_size %d", m->ck->path,
                         module, (long long)cols, gs);
    int64_t words = cols * bits / 32, groups = cols / gs;
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != words)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must be [%lld, %lld] uint32 for a [%lld, %lld] matrix (%s) "
                         "at %d bits", m->ck->path, t->name, (long long)rows, (long long)words, (long long)rows,
                         (long long)cols, why, bits);
    if (s->ndim != 2 || s->shape[0] != rows || s->shape[1] != groups)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must be [%lld, %lld] (group_size %d)", m->ck->path, sn,
                         (long long)rows, (long long)groups, gs);
    if (mode == SL_Q_AFFINE) {
        if (!b) return sl_errorf(err, SL_EINVAL, "%s: affine-quantized '%s' has no '%s'", m->ck->path, module, bn);
        if (s->dtype != SL_F32 && s->dtype != SL_F16 && s->dtype != SL_BF16)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s, expected F32, F16 or BF16", m->ck->path, sn,
                             sl_dtype_name(s->dtype));
        if (b->dtype != s->dtype || b->ndim != 2 || b->shape[0] != rows || b->shape[1] != groups)
            return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must match '%s' in shape and dtype", m->ck->path, bn, sn);
        if ((rc = check_view(m, b, err))) return rc;
    } else {
        if (b) return sl_errorf(err, SL_EINVAL, "%s: %s-quantized '%s' must not have '%s'", m->ck->path,
                                sl_q_mode_name(mode), module, bn);
        if (s->dtype != SL_U8 && s->dtype != SL_F8_E8M0 && s->dtype != SL_F8_E4M3)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s, expected uint8 %s scales", m->ck->path, sn,
                             sl_dtype_name(s->dtype), sl_q_mode_name(mode));
    }
    if ((rc = check_view(m, t, err)) || (rc = check_view(m, s, err))) return rc;
    memset(w, 0, sizeof *w);
    w->fmt = mode == SL_Q_AFFINE ? SL_WF_MLX_AFFINE : SL_WF_MLX_FP;
    w->dtype = SL_U32;
    w->rows = rows;
    w->cols = cols;
    w->data = t->data;
    w->row_bytes = (size_t)words * 4;
    w->scales = s->data;
    w->biases = b && mode == SL_Q_AFFINE ? b->data : NULL;
    w->scale_dtype = mode == SL_Q_AFFINE ? s->dtype : SL_U8;
    w->bits = bits;
    w->group_size = gs;
    w->qmode = (int)mode;
    w->name = t->name;
    m->weight_bytes += t->nbytes + s->nbytes + (w->biases ? b->nbytes : 0);
    return 0;
}

int sl_model_bind_gguf(sl_model *m, const sl_tensor *t, int64_t rows, int64_t cols, const char *why, sl_weight *w,
                       sl_error *err) {
    const sl_dtype_info *di = sl_dtype_get(t->dtype);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must be [%lld, %lld] (%s)", m->ck->path, t->name,
                         (long long)rows, (long long)cols, why);
    memset(w, 0, sizeof *w);
    w->fmt = SL_WF_GGUF;
    w->dtype = t->dtype;
    w->rows = rows;
    w->cols = cols;
    if (!di || cols % di->block_elems || !sl_matmul_for(w))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s; the engine multiplies F32, F16, BF16, Q4_0, Q4_1, "
                         "Q5_0, Q5_1, Q8_0, Q2_K..Q6_K and IQ4_NL", m->ck->path, t->name, sl_dtype_name(t->dtype));
    int rc = check_view(m, t, err);
    if (rc) return rc;
    w->data = t->data;
    w->row_bytes = (size_t)(cols / di->block_elems) * di->block_bytes;
    w->name = t->name;
    m->weight_bytes += t->nbytes;
    return 0;
}

/* ---- GGUF ---- */

const char *sl_model_gguf_name(bool sandwich, const char *hf, char *buf, size_t len) {
    static const char *const map[][2] = {
        {"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"},  {"self_attn.v_proj", "attn_v"},
        {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
        {"mlp.down_proj", "ffn_down"},     {"input_layernorm", "attn_norm"}, {"post_attention_layernorm", "ffn_norm"},
        {"self_attn.q_norm", "attn_q_norm"}, {"self_attn.k_norm", "attn_k_norm"},
        {"self_attn.qkv_proj", "attn_qkv"}, {"mlp.gate_up_proj", "ffn_up"},   /* phi3 */
    };
    static const char *const sand[][2] = {   /* gemma2 / gemma3 */
        {"post_attention_layernorm", "post_attention_norm"}, {"pre_feedforward_layernorm", "ffn_norm"},
        {"post_feedforward_layernorm", "post_ffw_norm"},
    };
    if (strcmp(hf, "model.embed_tokens.weight") == 0) return "token_embd.weight";
    if (strcmp(hf, "lm_head.weight") == 0) return "output.weight";
    if (strcmp(hf, "model.norm.weight") == 0) return "output_norm.weight";
    int layer, off = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &off) == 1 && off > 0) {
        const char *rest = hf + off;
        for (size_t i = 0; sandwich && i < sizeof sand / sizeof sand[0]; i++) {
            size_t k = strlen(sand[i][0]);
            if (strncmp(rest, sand[i][0], k) == 0 && rest[k] == '.') {
                snprintf(buf, len, "blk.%d.%s%s", layer, sand[i][1], rest + k);
                return buf;
            }
        }
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            size_t k = strlen(map[i][0]);
            if (strncmp(rest, map[i][0], k) == 0 && rest[k] == '.') {
                snprintf(buf, len, "blk.%d.%s%s", layer, map[i][1], rest + k);
                return buf;
            }
        }
    }
    return hf;   /* no GGUF spelling: looked up as is (and reported missing) */
}

static const cJSON *meta(const sl_checkpoint *ck, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(ck->metadata, k);
}

static int put_num(cJSON *cfg, const char *to, const sl_checkpoint *ck, const char *from) {
    const cJSON *v = meta(ck, from);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return -1;
    cJSON_AddNumberToObject(cfg, to, v->valuedouble);
    return 0;
}

/* GGUF general.architecture -> transformers model_type */
static const char *const k_gguf_arch[][2] = {
    {"llama", "llama"}, {"qwen2", "qwen2"}, {"qwen3", "qwen3"}, {"gemma", "gemma"},
    {"gemma2", "gemma2"}, {"gemma3", "gemma3_text"}, {"phi3", "phi3"},
};

static const cJSON *akey(const sl_checkpoint *ck, const char *arch, const char *k) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, k);
    return meta(ck, full);
}

static double anum(const sl_checkpoint *ck, const char *arch, const char *k, double dflt) {
    const cJSON *v = akey(ck, arch, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Read an F32 vector tensor (rope factors) into a JSON array. */
static cJSON *factor_array(const sl_tensor *t) {
    int n = (int)t->numel;
    float *f = t->ndim == 1 && n > 0 && n <= SL_ROPE_MAX_FACTORS ? malloc((size_t)n * sizeof *f) : NULL;
    sl_error e2;
    cJSON *a = NULL;
    if (f && !sl_tensor_read(t, 0, (uint64_t)n, SL_F32, f, &e2)) a = cJSON_CreateFloatArray(f, n);
    free(f);
    return a;
}

/* gemma2 / gemma3: layer_types from attention.sliding_window_pattern (a
 * period, or one bool per layer) with llama.cpp's defaults 2 and 6. */
static int gemma_layers(cJSON *cfg, const sl_checkpoint *ck, const char *arch, sl_error *err) {
    const cJSON *sw = akey(ck, arch, "attention.sliding_window");
    bool g3 = strcmp(arch, "gemma3") == 0;
    if (g3 && !(cJSON_IsNumber(sw) && sw->valuedouble > 0)) return 0;   /* no sliding layers */
    int n = (int)anum(ck, arch, "block_count", 0), period = g3 ? 6 : 2;
    cJSON_AddNumberToObject(cfg, "sliding_window", cJSON_IsNumber(sw) ? sw->valuedouble : 4096);
    const cJSON *pat = akey(ck, arch, "attention.sliding_window_pattern");
    if (cJSON_IsNumber(pat)) period = (int)pat->valuedouble;
    else if (pat && (!cJSON_IsArray(pat) || cJSON_GetArraySize(pat) != n))
        return sl_errorf(err, SL_EINVAL, "%s: GGUF key %s.attention.sliding_window_pattern must be a number or %d bools",
                         ck->path, arch, n);
    cJSON *lt = cJSON_AddArrayToObject(cfg, "layer_types");
    for (int l = 0; l < n && n < 100000; l++) {
        bool s = cJSON_IsArray(pat) ? cJSON_IsTrue(cJSON_GetArrayItem(pat, l)) : period == 0 || l % period < period - 1;
        cJSON_AddItemToArray(lt, cJSON_CreateString(s ? "sliding_attention" : "full_attention"));
    }
    return 0;
}

int sl_model_gguf_config(sl_checkpoint *ck, sl_error *err) {
    const cJSON *archv = meta(ck, "general.architecture");
    if (!cJSON_IsString(archv))
        return sl_errorf(err, SL_EINVAL, "%s: GGUF metadata has no general.architecture string", ck->path);
    const char *arch = archv->valuestring, *model_type = NULL;
    for (size_t i = 0; i < sizeof k_gguf_arch / sizeof k_gguf_arch[0]; i++)
        if (strcmp(arch, k_gguf_arch[i][0]) == 0) model_type = k_gguf_arch[i][1];
    if (!model_type)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF architecture '%s' is not supported (GGUF models: llama, qwen2, "
                         "qwen3, gemma, gemma2, gemma3, phi3)", ck->path, arch);
    bool gemma = strncmp(arch, "gemma", 5) == 0, phi3 = strcmp(arch, "phi3") == 0;
    cJSON *cfg = cJSON_CreateObject();
    if (!cfg) return sl_errorf(err, SL_ENOMEM, "out of memory");
    cJSON_AddStringToObject(cfg, "model_type", model_type);
    static const char *const keys[][2] = {
        {"hidden_size", "embedding_length"},       {"intermediate_size", "feed_forward_length"},
        {"num_hidden_layers", "block_count"},      {"num_attention_heads", "attention.head_count"},
        {"num_key_value_heads", "attention.head_count_kv"},
        {"rms_norm_eps", "attention.layer_norm_rms_epsilon"}, {"rope_theta", "rope.freq_base"},
        {"max_position_embeddings", "context_length"}, {"head_dim", "attention.key_length"},
        {"vocab_size", "vocab_size"},
    };
    char full[128];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(full, sizeof full, "%s.%s", arch, keys[i][1]);
        if (put_num(cfg, keys[i][0], ck, full)) {
            cJSON_Delete(cfg);
            return sl_errorf(err, SL_EINVAL, "%s: GGUF key %s must be a number", ck->path, full);
        }
    }
    if (put_num(cfg, "bos_token_id", ck, "tokenizer.ggml.bos_token_id") ||
        put_num(cfg, "eos_token_id", ck, "tokenizer.ggml.eos_token_id")) {
        cJSON_Delete(cfg);
        return sl_errorf(err, SL_EINVAL, "%s: GGUF tokenizer.ggml.bos/eos_token_id must be numbers", ck->path);
    }
    const sl_tensor *emb = sl_checkpoint_find(ck, "token_embd.weight");
    if (!cJSON_GetObjectItemCaseSensitive(cfg, "vocab_size") && emb && emb->ndim == 2)
        cJSON_AddNumberToObject(cfg, "vocab_size", (double)emb->shape[0]);
    cJSON_AddBoolToObject(cfg, "tie_word_embeddings", sl_checkpoint_find(ck, "output.weight") == NULL);
    double hidden = anum(ck, arch, "embedding_length", 0), nh = anum(ck, arch, "attention.head_count", 0);
    double head = anum(ck, arch, "attention.key_length", nh > 0 ? hidden / nh : 0);
    double rd = anum(ck, arch, "rope.dimension_count", head);
    if (head > 0 && rd != head) {
        if (!phi3) {
            cJSON_Delete(cfg);
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: %s.rope.dimension_count %g differs from the head size %g "
                             "(partial rotary GGUF models: phi3 only)", ck->path, arch, rd, head);
        }
        cJSON_AddNumberToObject(cfg, "partial_rotary_factor", rd / head);
    }
    if (gemma && strcmp(arch, "gemma") != 0) {
        /* llama.cpp has no query_pre_attn_scalar: 1/sqrt(head_dim), or hidden/heads for 27B (46 / 62 layers) */
        int nl = (int)anum(ck, arch, "block_count", 0);
        bool big = (strcmp(arch, "gemma2") == 0 && nl == 46) || (strcmp(arch, "gemma3") == 0 && nl == 62);
        cJSON_AddNumberToObject(cfg, "query_pre_attn_scalar", big && nh > 0 ? hidden / nh : head);
        cJSON_AddNumberToObject(cfg, "attn_logit_softcapping", anum(ck, arch, "attn_logit_softcapping", 0));
        cJSON_AddNumberToObject(cfg, "final_logit_softcapping", anum(ck, arch, "final_logit_softcapping", 0));
        int rc = gemma_layers(cfg, ck, arch, err);
        if (rc) { cJSON_Delete(cfg); return rc; }
    }
    const cJSON *st = akey(ck, arch, "rope.scaling.type"), *sf = akey(ck, arch, "rope.scaling.factor");
    const sl_tensor *rf = sl_checkpoint_find(ck, "rope_freqs.weight");
    const sl_tensor *rl = sl_checkpoint_find(ck, "rope_factors_long.weight"), *rs = sl_checkpoint_find(ck, "rope_factors_short.weight");
    cJSON *rope = NULL;
    if (strcmp(arch, "gemma3") == 0) {   /* full / sliding RoPE (sliding: llama.cpp's default base 10000) */
        rope = cJSON_AddObjectToObject(cfg, "rope_parameters");
        cJSON *fa = cJSON_AddObjectToObject(rope, "full_attention"), *swa = cJSON_AddObjectToObject(rope, "sliding_attention");
        cJSON_AddNumberToObject(fa, "rope_theta", anum(ck, arch, "rope.freq_base", 1e6));
        bool lin = cJSON_IsString(st) && strcmp(st->valuestring, "linear") == 0 && cJSON_IsNumber(sf);
        cJSON_AddStringToObject(fa, "rope_type", lin ? "linear" : "default");
        if (lin) cJSON_AddNumberToObject(fa, "factor", sf->valuedouble);
        cJSON_AddNumberToObject(swa, "rope_theta", anum(ck, arch, "rope.freq_base_swa", 10000));
        cJSON_AddStringToObject(swa, "rope_type", "default");
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "rope_theta");
    } else if (rl && rs && phi3) {   /* LongRoPE as llama.cpp runs it */
        cJSON *a = factor_array(rl), *b = factor_array(rs);
        if (!a || !b) {
            cJSON_Delete(a);
            cJSON_Delete(b);
            cJSON_Delete(cfg);
            return sl_errorf(err, SL_EINVAL, "%s: tensors rope_factors_long/short must be small float vectors", ck->path);
        }
        /* llama.cpp takes the long factors when its context, padded to a multiple
         * of 256, exceeds the original one; silica compares its own context
         * size: the same choice with the threshold rounded down to 256 (below
         * 256 the short factors are never used). */
        double orig = anum(ck, arch, "rope.scaling.original_context_length", anum(ck, arch, "context_length", 4096));
        double thr = 256.0 * floor(orig / 256.0);
        if (thr < 256) {
            cJSON_Delete(b);
            b = cJSON_Duplicate(a, 1);
            thr = orig > 0 ? orig : 1;
        }
        rope = cJSON_AddObjectToObject(cfg, "rope_scaling");
        cJSON_AddStringToObject(rope, "rope_type", "longrope");
        cJSON_AddItemToObject(rope, "long_factor", a);
        cJSON_AddItemToObject(rope, "short_factor", b);
        cJSON_AddNumberToObject(rope, "original_max_position_embeddings", thr);
        cJSON_AddNumberToObject(rope, "attention_factor", anum(ck, arch, "rope.scaling.attn_factor", 1));
    } else if (rf) {   /* Llama 3 factors: inv_freq[i] / f[i] == longrope with short = long = f, attention factor 1 */
        cJSON *a = factor_array(rf), *b = factor_array(rf);
        if (!a || !b) {
            cJSON_Delete(a);
            cJSON_Delete(b);
            cJSON_Delete(cfg);
            return sl_errorf(err, SL_EINVAL, "%s: tensor 'rope_freqs.weight' must be a small float vector", ck->path);
        }
        rope = cJSON_AddObjectToObject(cfg, "rope_scaling");
        cJSON_AddStringToObject(rope, "rope_type", "longrope");
        cJSON_AddItemToObject(rope, "short_factor", a);
        cJSON_AddItemToObject(rope, "long_factor", b);
        cJSON_AddNumberToObject(rope, "attention_factor", 1.0);
    } else if (cJSON_IsString(st) && strcmp(st->valuestring, "none") != 0) {
        if (strcmp(st->valuestring, "linear") != 0 || !cJSON_IsNumber(sf)) {
            cJSON_Delete(cfg);
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: %s.rope.scaling.type '%s' is not supported (linear)", ck->path,
                             arch, st->valuestring);
        }
        rope = cJSON_AddObjectToObject(cfg, "rope_scaling");
        cJSON_AddStringToObject(rope, "rope_type", "linear");
        cJSON_AddNumberToObject(rope, "factor", sf->valuedouble);
    }
    ck->config = cfg;
    return 0;
}
