/*
 * arch_gguf.c — GGUF metadata -> config.json (sl_arch_gguf_config), the one
 * reading of a GGUF that the engine (sl_model_open), the estimator (`fit`)
 * and GGUF import (`convert x.gguf --to mlx|hf`) share.
 *
 * llama.cpp's semantics where they differ from transformers' (facts from
 * llama.cpp src/llama-model.cpp and convert_hf_to_gguf.py):
 *  - keys absent take llama.cpp's defaults: rope.freq_base 10000 (gemma3's
 *    full attention 1e6, sliding 10000), gemma2 softcapping 50 / 30;
 *  - gemma2/3: attention scale 1/sqrt(head_dim) (hidden/heads for the 27B
 *    models, 46 / 62 layers), sliding layers by period 2 / 6 or
 *    attention.sliding_window_pattern (a period or one bool per layer);
 *  - RoPE: rope_factors_long/short.weight are LongRoPE with llama.cpp's choice
 *    (long factors once the context padded to 256 exceeds the original one);
 *    rope_freqs.weight (Llama 3) are per-dimension frequency divisors, i.e.
 *    LongRoPE with short = long and attention factor 1; rope.scaling.type
 *    linear / yarn; silica.rope.dynamic.* for dynamic NTK, which llama.cpp
 *    does not run (it is plain RoPE within the trained context).
 * Numbers stored as f32 become the shortest decimal that reads back as that
 * f32 (1e-05, not 9.99999974e-06), so a config written from them is what a
 * person would write, and re-reading it gives the same f32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/arch.h"

/* GGUF key (after "<arch>.") -> config.json key */
static const char *const k_keys[][2] = {
    {"embedding_length", "hidden_size"},
    {"feed_forward_length", "intermediate_size"},
    {"block_count", "num_hidden_layers"},
    {"attention.head_count", "num_attention_heads"},
    {"attention.head_count_kv", "num_key_value_heads"},
    {"attention.layer_norm_rms_epsilon", "rms_norm_eps"},
    {"rope.freq_base", "rope_theta"},
    {"context_length", "max_position_embeddings"},
    {"attention.key_length", "head_dim"},
    {"vocab_size", "vocab_size"},
};

/* An f32 value as the shortest decimal that reads back as it; other doubles as they are. */
static double short_decimal(double d) {
    float f = (float)d;
    if ((double)f != d || !isfinite(d) || d == floor(d)) return d;
    char b[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)f);
        if (strtof(b, NULL) == f) break;
    }
    return strtod(b, NULL);
}

typedef struct gctx {
    const sl_checkpoint *ck;
    const sl_arch_info *a;
    cJSON *cfg;
} gctx;

static const cJSON *akey(const gctx *g, const char *k) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", g->a->gguf_arch, k);
    return cJSON_GetObjectItemCaseSensitive(g->ck->metadata, full);
}

static double anum(const gctx *g, const char *k, double dflt) {
    const cJSON *v = akey(g, k);
    return cJSON_IsNumber(v) ? short_decimal(v->valuedouble) : dflt;
}

static void add_num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, short_decimal(v)); }

/* Read an F32 vector tensor (RoPE factors) into a JSON array of short decimals. */
static cJSON *factor_array(const sl_tensor *t) {
    int n = (int)t->numel;
    float *f = t->ndim == 1 && n > 0 && n <= SL_ROPE_MAX_FACTORS ? malloc((size_t)n * sizeof *f) : NULL;
    sl_error e2;
    cJSON *a = NULL;
    if (f && !sl_tensor_read(t, 0, (uint64_t)n, SL_F32, f, &e2) && (a = cJSON_CreateArray()))
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(short_decimal(f[i])));
    free(f);
    return a;
}

/* Sliding layers of gemma2 / gemma3 as layer_types (llama.cpp's periods or the pattern key). */
static int period_layers(gctx *g, sl_error *err) {
    const cJSON *sw = akey(g, "attention.sliding_window");
    int n = (int)anum(g, "block_count", 0), period = g->a->swa_period;
    double win = cJSON_IsNumber(sw) ? sw->valuedouble : g->a->sliding_window;
    const cJSON *pat = akey(g, "attention.sliding_window_pattern");
    if (cJSON_IsNumber(pat) && pat->valuedouble >= 0 && pat->valuedouble <= 1e6) period = (int)pat->valuedouble;
    else if (pat && (!cJSON_IsArray(pat) || cJSON_GetArraySize(pat) != n))
        return sl_errorf(err, SL_EINVAL, "%s: GGUF key %s.attention.sliding_window_pattern must be a number or %d bools",
                         g->ck->path, g->a->gguf_arch, n);
    if (win > 0) add_num(g->cfg, "sliding_window", win);
    if (!cJSON_IsArray(pat) && period > 0) add_num(g->cfg, "sliding_window_pattern", period);   /* for mlx-lm */
    cJSON *lt = cJSON_AddArrayToObject(g->cfg, "layer_types");
    for (int l = 0; lt && l < n && n < 100000; l++) {
        bool s = win > 0 && (cJSON_IsArray(pat) ? cJSON_IsTrue(cJSON_GetArrayItem(pat, l))
                                                : period == 0 || l % period < period - 1);
        cJSON_AddItemToArray(lt, cJSON_CreateString(s ? "sliding_attention" : "full_attention"));
    }
    return 0;
}

static int factors_of(gctx *g, const sl_tensor *t, cJSON **out, sl_error *err) {
    if (!(*out = factor_array(t)))
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must be a float vector of at most %d numbers", g->ck->path,
                         t->name, SL_ROPE_MAX_FACTORS);
    return 0;
}

/* The full-attention RoPE object (rope_scaling form) or NULL for plain RoPE. */
static int rope_scaling(gctx *g, cJSON **out, sl_error *err) {
    const sl_checkpoint *ck = g->ck;
    const cJSON *st = akey(g, "rope.scaling.type");
    const cJSON *dyn = cJSON_GetObjectItemCaseSensitive(ck->metadata, "silica.rope.dynamic.factor");
    const sl_tensor *rf = sl_checkpoint_find(ck, "rope_freqs.weight");
    const sl_tensor *rl = sl_checkpoint_find(ck, "rope_factors_long.weight");
    const sl_tensor *rs = sl_checkpoint_find(ck, "rope_factors_short.weight");
    double ctx = anum(g, "context_length", 4096);
    cJSON *r = *out = NULL;
    cJSON *a = NULL, *b = NULL;
    int rc = 0;
    if (rl && rs) {   /* LongRoPE as llama.cpp runs it */
        if ((rc = factors_of(g, rl, &a, err)) || (rc = factors_of(g, rs, &b, err))) goto fail;
        /* llama.cpp takes the long factors when its context, padded to a multiple of 256, exceeds the
         * original one; silica compares its own context size: the same choice with the threshold rounded
         * down to 256 (below 256 the short factors are never used). */
        double orig = anum(g, "rope.scaling.original_context_length", ctx), thr = 256.0 * floor(orig / 256.0);
        if (thr < 256) {
            cJSON_Delete(b);
            b = cJSON_Duplicate(a, 1);
            thr = orig > 0 ? orig : 1;
        }
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "rope_type", "longrope");
        cJSON_AddStringToObject(r, "type", "longrope");   /* the older spelling mlx-lm's phi3 requires */
        cJSON_AddItemToObject(r, "long_factor", a);
        cJSON_AddItemToObject(r, "short_factor", b);
        add_num(r, "original_max_position_embeddings", thr);
        add_num(r, "attention_factor", anum(g, "rope.scaling.attn_factor", 1));
    } else if (rf) {   /* Llama 3: inv_freq[i] / f[i] == longrope with short = long = f, attention factor 1 */
        if ((rc = factors_of(g, rf, &a, err))) goto fail;
        b = cJSON_Duplicate(a, 1);
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "rope_type", "longrope");
        cJSON_AddItemToObject(r, "short_factor", a);
        cJSON_AddItemToObject(r, "long_factor", b);
        add_num(r, "original_max_position_embeddings", ctx);
        add_num(r, "attention_factor", 1.0);
    } else if (cJSON_IsNumber(dyn)) {
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "rope_type", "dynamic");
        add_num(r, "factor", dyn->valuedouble);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(ck->metadata, "silica.rope.dynamic.original_context_length");
        if (cJSON_IsNumber(o)) add_num(r, "original_max_position_embeddings", o->valuedouble);
    } else if (cJSON_IsString(st) && strcmp(st->valuestring, "none") != 0) {
        const cJSON *sf = akey(g, "rope.scaling.factor");
        bool lin = !strcmp(st->valuestring, "linear"), yarn = !strcmp(st->valuestring, "yarn");
        if (!(lin || yarn) || !cJSON_IsNumber(sf))
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: %s.rope.scaling.type '%s' is not supported (linear, yarn with "
                             "rope.scaling.factor)", ck->path, g->a->gguf_arch, st->valuestring);
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "rope_type", st->valuestring);
        add_num(r, "factor", sf->valuedouble);
        if (yarn) {
            const cJSON *o = akey(g, "rope.scaling.original_context_length");
            if (cJSON_IsNumber(o)) add_num(r, "original_max_position_embeddings", o->valuedouble);
            if (akey(g, "rope.scaling.yarn_beta_fast")) add_num(r, "beta_fast", anum(g, "rope.scaling.yarn_beta_fast", 32));
            if (akey(g, "rope.scaling.yarn_beta_slow")) add_num(r, "beta_slow", anum(g, "rope.scaling.yarn_beta_slow", 1));
        }
    }
    *out = r;
    return 0;
fail:
    cJSON_Delete(a);
    cJSON_Delete(b);
    return rc;
}

/* RoPE in the older config.json spelling (rope_theta, rope_scaling, gemma3's
 * rope_local_base_freq), which transformers, mlx-lm and the engine all read;
 * LongRoPE's original context also at the top level, where phi3 models look. */
static int ropes(gctx *g, sl_error *err) {
    cJSON *r = NULL;
    int rc = rope_scaling(g, &r, err);
    if (rc) return rc;
    add_num(g->cfg, "rope_theta", anum(g, "rope.freq_base", g->a->rope_theta));
    if (g->a->rope_local_theta)   /* sliding layers: llama.cpp's default base 10000 */
        add_num(g->cfg, "rope_local_base_freq", anum(g, "rope.freq_base_swa", g->a->rope_local_theta));
    if (!r) return 0;
    const cJSON *orig = cJSON_GetObjectItemCaseSensitive(r, "original_max_position_embeddings");
    if (orig && cJSON_GetObjectItemCaseSensitive(r, "long_factor"))
        add_num(g->cfg, "original_max_position_embeddings", orig->valuedouble);
    cJSON_AddItemToObject(g->cfg, "rope_scaling", r);
    return 0;
}

static int build(gctx *g, sl_error *err) {
    const sl_checkpoint *ck = g->ck;
    const sl_arch_info *a = g->a;
    cJSON *cfg = g->cfg;
    cJSON_AddStringToObject(cfg, "model_type", a->model_type);
    char full[128];
    for (size_t i = 0; i < sizeof k_keys / sizeof k_keys[0]; i++) {
        if (!strcmp(k_keys[i][1], "rope_theta")) continue;   /* ropes() */
        snprintf(full, sizeof full, "%s.%s", a->gguf_arch, k_keys[i][0]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ck->metadata, full);
        if (!v) continue;
        if (!cJSON_IsNumber(v)) return sl_errorf(err, SL_EINVAL, "%s: GGUF key %s must be a number", ck->path, full);
        add_num(cfg, k_keys[i][1], v->valuedouble);
    }
    static const char *const ids[][2] = {{"bos_token_id", "tokenizer.ggml.bos_token_id"},
                                         {"eos_token_id", "tokenizer.ggml.eos_token_id"}};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ck->metadata, ids[i][1]);
        if (v && !cJSON_IsNumber(v))
            return sl_errorf(err, SL_EINVAL, "%s: GGUF tokenizer.ggml.bos/eos_token_id must be numbers", ck->path);
        if (v) add_num(cfg, ids[i][0], v->valuedouble);
    }
    const sl_tensor *emb = sl_checkpoint_find(ck, "token_embd.weight");
    if (!cJSON_GetObjectItemCaseSensitive(cfg, "vocab_size") && emb && emb->ndim == 2)
        add_num(cfg, "vocab_size", (double)emb->shape[0]);
    cJSON_AddBoolToObject(cfg, "tie_word_embeddings", sl_checkpoint_find(ck, "output.weight") == NULL);
    /* optional biases, as llama.cpp loads them: present or not */
    if (a->attn_bias_key && sl_checkpoint_find(ck, "blk.0.attn_q.bias"))
        cJSON_AddBoolToObject(cfg, "attention_bias", true);
    if (a->mlp_bias_key && sl_checkpoint_find(ck, "blk.0.ffn_down.bias")) cJSON_AddBoolToObject(cfg, "mlp_bias", true);
    double hidden = anum(g, "embedding_length", 0), nh = anum(g, "attention.head_count", 0);
    double head = anum(g, "attention.key_length", nh > 0 ? hidden / nh : 0);
    double rd = anum(g, "rope.dimension_count", head);
    if (head > 0 && rd != head) {
        if (a->gguf_permute_qk)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: %s.rope.dimension_count %g differs from the head size %g "
                             "(partial rotary needs unpermuted Q/K rows)", ck->path, a->gguf_arch, rd, head);
        add_num(cfg, "partial_rotary_factor", rd / head);
    }
    if (a->sliding_window == 0 && a->swa != SL_SWA_PERIOD && anum(g, "attention.sliding_window", 0) > 0)
        add_num(cfg, "sliding_window", anum(g, "attention.sliding_window", 0));
    if (a->softcap) {
        /* llama.cpp has no query_pre_attn_scalar: 1/sqrt(head_dim), or hidden/heads for 27B (46 / 62 layers) */
        int nl = (int)anum(g, "block_count", 0);
        bool big = (a->id == SL_ARCH_GEMMA2 && nl == 46) || (a->id == SL_ARCH_GEMMA3 && nl == 62);
        add_num(cfg, "query_pre_attn_scalar", big && nh > 0 ? hidden / nh : head);
        add_num(cfg, "attn_logit_softcapping", anum(g, "attn_logit_softcapping", a->attn_softcap));
        add_num(cfg, "final_logit_softcapping", anum(g, "final_logit_softcapping", a->final_softcap));
    }
    int rc = a->swa == SL_SWA_PERIOD ? period_layers(g, err) : 0;
    return rc ? rc : ropes(g, err);
}

cJSON *sl_arch_gguf_keys(const sl_checkpoint *ck) {
    const cJSON *archv = cJSON_GetObjectItemCaseSensitive(ck->metadata, "general.architecture");
    cJSON *c = cJSON_IsString(archv) ? cJSON_CreateObject() : NULL;
    if (!c) return NULL;
    cJSON_AddStringToObject(c, "model_type", archv->valuestring);
    char full[160];
    for (size_t i = 0; i <= sizeof k_keys / sizeof k_keys[0]; i++) {
        bool sw = i == sizeof k_keys / sizeof k_keys[0];
        snprintf(full, sizeof full, "%s.%s", archv->valuestring, sw ? "attention.sliding_window" : k_keys[i][0]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ck->metadata, full);
        if (cJSON_IsNumber(v)) add_num(c, sw ? "sliding_window" : k_keys[i][1], v->valuedouble);
    }
    return c;
}

int sl_arch_gguf_config(const sl_checkpoint *ck, const sl_arch_info **arch, cJSON **out, sl_error *err) {
    *out = NULL;
    const cJSON *archv = cJSON_GetObjectItemCaseSensitive(ck->metadata, "general.architecture");
    if (!cJSON_IsString(archv))
        return sl_errorf(err, SL_EINVAL, "%s: GGUF metadata has no general.architecture string", ck->path);
    gctx g = {.ck = ck, .a = sl_arch_by_gguf(archv->valuestring)};
    if (!g.a)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF architecture '%s' is not supported (GGUF models: %s)", ck->path,
                         archv->valuestring, sl_arch_gguf_supported());
    if (!(g.cfg = cJSON_CreateObject())) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = build(&g, err);
    if (rc) {
        cJSON_Delete(g.cfg);
        return rc;
    }
    if (arch) *arch = g.a;
    *out = g.cfg;
    return 0;
}
