/*
 * config.c — config.json -> sl_model_config for every supported family.
 *
 * Both spellings of RoPE settings are accepted:
 *   transformers 5:  "rope_parameters": {"rope_type", "rope_theta", "factor", ...}
 *                    or, for gemma3, {"full_attention": {...}, "sliding_attention": {...}}
 *   older:           "rope_theta" + "rope_scaling": {"rope_type" | "type", ...}
 *                    (+ gemma3 "rope_local_base_freq")
 * Invariants: every field read is type-checked; a missing required field, a
 * wrong type or two fields that contradict each other give ONE line naming
 * the field.  Defaults and per-family rules come from the architecture table
 * (arch.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/arch.h"
#include "model/model_impl.h"

#define SL_MAX_LAYERS 4096

static const cJSON *field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Positive integer field. */
static int get_int(const cJSON *o, const char *where, const char *k, bool required, long dflt, long *out,
                   sl_error *err) {
    const cJSON *v = field(o, k);
    if (!v) {
        if (required) return sl_errorf(err, SL_EINVAL, "%s: field '%s' missing (expected a positive integer)", where, k);
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > 1e9)
        return sl_errorf(err, SL_EINVAL, "%s: field '%s' must be a positive integer", where, k);
    *out = (long)v->valuedouble;
    return 0;
}

static int get_num(const cJSON *o, const char *where, const char *k, double dflt, double *out, sl_error *err) {
    const cJSON *v = field(o, k);
    if (!v) { *out = dflt; return 0; }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return sl_errorf(err, SL_EINVAL, "%s: field '%s' must be a number", where, k);
    *out = v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *o, const char *where, const char *k, bool dflt, bool *out, sl_error *err) {
    const cJSON *v = field(o, k);
    if (!v) { *out = dflt; return 0; }
    if (!cJSON_IsBool(v)) return sl_errorf(err, SL_EINVAL, "%s: field '%s' must be true or false", where, k);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_factors(const cJSON *o, const char *where, const char *path, const char *k, int want, float *out,
                       sl_error *err) {
    const cJSON *v = field(o, k);
    if (!cJSON_IsArray(v))
        return sl_errorf(err, SL_EINVAL, "%s: field '%s.%s' missing (longrope needs %d numbers)", where, path, k, want);
    int n = cJSON_GetArraySize(v);
    if (n != want)
        return sl_errorf(err, SL_EINVAL, "%s: field '%s.%s' has %d numbers, expected rotary_dim/2 = %d", where, path,
                         k, n, want);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble > 0))
            return sl_errorf(err, SL_EINVAL, "%s: field '%s.%s[%d]' must be a positive number", where, path, k, i);
        out[i++] = (float)e->valuedouble;
    }
    return 0;
}

/* One RoPE description from a flat object (v5 rope_parameters entry or the
 * older rope_scaling; NULL = default RoPE), with theta given separately. */
static int parse_rope(const cJSON *o, const char *where, const char *path, double theta, const cJSON *cfg,
                      int rotary_dim, sl_rope_config *r, sl_error *err) {
    memset(r, 0, sizeof *r);
    r->theta = theta;
    r->factor = 1.0;
    r->beta_fast = 32.0;
    r->beta_slow = 1.0;
    r->truncate = true;
    if (!o) return 0;
    if (!cJSON_IsObject(o)) return sl_errorf(err, SL_EINVAL, "%s: field '%s' must be an object", where, path);
    const cJSON *t = field(o, "rope_type");
    if (!t) t = field(o, "type");
    const char *ty = cJSON_IsString(t) ? t->valuestring : (t ? NULL : "default");
    if (!ty) return sl_errorf(err, SL_EINVAL, "%s: field '%s.rope_type' must be a string", where, path);
    const cJSON *t2 = field(o, "type");
    if (t && t2 && t != t2 && cJSON_IsString(t2) && strcmp(t2->valuestring, ty) != 0 &&
        !(strcmp(ty, "longrope") == 0 && strcmp(t2->valuestring, "su") == 0))
        return sl_errorf(err, SL_EINVAL, "%s: '%s.rope_type' (%s) contradicts '%s.type' (%s)", where, path, ty, path,
                         t2->valuestring);
    if (strcmp(ty, "default") == 0) r->type = SL_ROPE_DEFAULT;
    else if (strcmp(ty, "linear") == 0) r->type = SL_ROPE_LINEAR;
    else if (strcmp(ty, "dynamic") == 0) r->type = SL_ROPE_DYNAMIC;
    else if (strcmp(ty, "llama3") == 0) r->type = SL_ROPE_LLAMA3;
    else if (strcmp(ty, "yarn") == 0) r->type = SL_ROPE_YARN;
    else if (strcmp(ty, "longrope") == 0 || strcmp(ty, "su") == 0) r->type = SL_ROPE_LONGROPE;
    else
        return sl_errorf(err, SL_EUNSUPPORTED,
                         "%s: field '%s.rope_type' is '%s'; supported: default, linear, dynamic, llama3, yarn, longrope",
                         where, path, ty);
    int rc;
    if ((rc = get_num(o, where, "factor", 1.0, &r->factor, err))) return rc;
    if (r->type != SL_ROPE_DEFAULT && r->type != SL_ROPE_LONGROPE && !field(o, "factor"))
        return sl_errorf(err, SL_EINVAL, "%s: field '%s.factor' missing (needed by rope_type %s)", where, path, ty);
    if (!(r->factor > 0)) return sl_errorf(err, SL_EINVAL, "%s: field '%s.factor' must be positive", where, path);
    long orig = 0;
    if (field(o, "original_max_position_embeddings")) {
        if ((rc = get_int(o, where, "original_max_position_embeddings", false, 0, &orig, err))) return rc;
    } else if (field(cfg, "original_max_position_embeddings")) {
        if ((rc = get_int(cfg, where, "original_max_position_embeddings", false, 0, &orig, err))) return rc;
    }
    r->original_max_pos = orig;
    if ((rc = get_num(o, where, "low_freq_factor", 1.0, &r->low_freq_factor, err))) return rc;
    if ((rc = get_num(o, where, "high_freq_factor", 4.0, &r->high_freq_factor, err))) return rc;
    if ((rc = get_num(o, where, "beta_fast", 32.0, &r->beta_fast, err))) return rc;
    if ((rc = get_num(o, where, "beta_slow", 1.0, &r->beta_slow, err))) return rc;
    if ((rc = get_num(o, where, "mscale", 0.0, &r->mscale, err))) return rc;
    if ((rc = get_num(o, where, "mscale_all_dim", 0.0, &r->mscale_all_dim, err))) return rc;
    if ((rc = get_num(o, where, "attention_factor", 0.0, &r->attention_factor, err))) return rc;
    if ((rc = get_bool(o, where, "truncate", true, &r->truncate, err))) return rc;
    if (r->type == SL_ROPE_LLAMA3) {
        if (!orig) return sl_errorf(err, SL_EINVAL, "%s: field '%s.original_max_position_embeddings' missing (llama3 rope)", where, path);
        if (!(r->high_freq_factor > r->low_freq_factor))
            return sl_errorf(err, SL_EINVAL, "%s: '%s.high_freq_factor' must exceed '%s.low_freq_factor'", where, path, path);
    }
    if (r->type == SL_ROPE_LONGROPE) {
        int want = rotary_dim / 2;
        if (want > SL_ROPE_MAX_FACTORS)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: rotary_dim %d too large for longrope", where, rotary_dim);
        r->n_factors = want;
        if ((rc = get_factors(o, where, path, "short_factor", want, r->short_factor, err))) return rc;
        if ((rc = get_factors(o, where, path, "long_factor", want, r->long_factor, err))) return rc;
    }
    return 0;
}

static int parse_theta(const cJSON *o, const char *where, const char *k, double dflt, double *out, sl_error *err) {
    int rc = get_num(o, where, k, dflt, out, err);
    if (!rc && !(*out > 1.0)) rc = sl_errorf(err, SL_EINVAL, "%s: field '%s' must be greater than 1", where, k);
    return rc;
}

static int parse_ropes(const cJSON *cfg, const char *where, const sl_arch_info *a, sl_model_config *c,
                       sl_error *err) {
    double dflt = a->rope_theta, local = a->rope_local_theta;
    const cJSON *rp = field(cfg, "rope_parameters");
    int rc;
    double top_theta = 0;
    if ((rc = get_num(cfg, where, "rope_theta", 0.0, &top_theta, err))) return rc;
    if (rp) {
        if (!cJSON_IsObject(rp)) return sl_errorf(err, SL_EINVAL, "%s: field 'rope_parameters' must be an object", where);
        if (field(cfg, "rope_scaling") && cJSON_IsObject(field(cfg, "rope_scaling")))
            return sl_errorf(err, SL_EINVAL, "%s: both 'rope_parameters' and 'rope_scaling' are set; keep one", where);
        const cJSON *full = field(rp, "full_attention"), *slide = field(rp, "sliding_attention");
        const cJSON *g = full ? full : rp;
        double theta = 0;
        if ((rc = parse_theta(g, where, "rope_theta", top_theta > 0 ? top_theta : dflt, &theta, err))) return rc;
        if (top_theta > 0 && field(g, "rope_theta") && top_theta != theta)
            return sl_errorf(err, SL_EINVAL, "%s: field 'rope_theta' (%g) contradicts 'rope_parameters.rope_theta' (%g)",
                             where, top_theta, theta);
        if ((rc = parse_rope(g, where, full ? "rope_parameters.full_attention" : "rope_parameters", theta, cfg,
                             c->rotary_dim, &c->rope, err)))
            return rc;
        if (slide) {
            double lt = 0;
            if ((rc = parse_theta(slide, where, "rope_theta", local > 0 ? local : dflt, &lt, err))) return rc;
            if ((rc = parse_rope(slide, where, "rope_parameters.sliding_attention", lt, cfg, c->rotary_dim,
                                 &c->rope_local, err)))
                return rc;
        } else if (full && local > 0) {
            return sl_errorf(err, SL_EINVAL, "%s: field 'rope_parameters.sliding_attention' missing (gemma3 local layers)", where);
        } else {
            c->rope_local = c->rope;
        }
        return 0;
    }
    double theta = 0;
    if ((rc = parse_theta(cfg, where, "rope_theta", dflt, &theta, err))) return rc;
    if ((rc = parse_rope(field(cfg, "rope_scaling"), where, "rope_scaling", theta, cfg, c->rotary_dim, &c->rope, err)))
        return rc;
    if (local > 0) {
        double lt = 0;
        if ((rc = parse_theta(cfg, where, "rope_local_base_freq", local, &lt, err))) return rc;
        return parse_rope(NULL, where, "rope_local", lt, cfg, c->rotary_dim, &c->rope_local, err);
    }
    c->rope_local = c->rope;
    return 0;
}

static int parse_act(const cJSON *cfg, const char *where, const sl_arch_info *arch, sl_model_config *c,
                     sl_error *err) {
    const char *key = "hidden_act";
    const cJSON *v = NULL;
    if (arch->gemma && (v = field(cfg, "hidden_activation"))) key = "hidden_activation";
    else v = field(cfg, "hidden_act");
    const char *a = arch->act;
    if (v) {
        if (!cJSON_IsString(v)) return sl_errorf(err, SL_EINVAL, "%s: field '%s' must be a string", where, key);
        a = v->valuestring;
    }
    if (strcmp(a, "silu") == 0 || strcmp(a, "swish") == 0) c->act = SL_ACT_SILU;
    else if (strcmp(a, "gelu_pytorch_tanh") == 0 || strcmp(a, "gelu_new") == 0 || strcmp(a, "gelu_fast") == 0 ||
             strcmp(a, "gelu_tanh") == 0)
        c->act = SL_ACT_GELU_TANH;
    else if (strcmp(a, "gelu") == 0) c->act = SL_ACT_GELU;
    else
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: field '%s' is '%s'; supported: silu, gelu, gelu_pytorch_tanh",
                         where, key, a);
    return 0;
}

static int parse_layers(const cJSON *cfg, const char *where, const sl_arch_info *a, sl_model_config *c,
                        sl_error *err) {
    long sw = 0;
    int rc;
    const cJSON *swv = field(cfg, "sliding_window");
    if (swv && (rc = get_int(cfg, where, "sliding_window", false, 0, &sw, err))) return rc;
    c->sliding_window = (int)sw;
    c->layer_sliding = calloc((size_t)c->n_layers, sizeof *c->layer_sliding);
    if (!c->layer_sliding) return sl_errorf(err, SL_ENOMEM, "out of memory");
    const cJSON *lt = field(cfg, "layer_types");
    if (lt) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
            return sl_errorf(err, SL_EINVAL, "%s: field 'layer_types' must list num_hidden_layers (%d) entries", where,
                             c->n_layers);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, lt) {
            if (!cJSON_IsString(e))
                return sl_errorf(err, SL_EINVAL, "%s: field 'layer_types[%d]' must be a string", where, i);
            if (strcmp(e->valuestring, "sliding_attention") == 0) c->layer_sliding[i] = true;
            else if (strcmp(e->valuestring, "full_attention") != 0)
                return sl_errorf(err, SL_EUNSUPPORTED,
                                 "%s: field 'layer_types[%d]' is '%s'; supported: full_attention, sliding_attention",
                                 where, i, e->valuestring);
            i++;
        }
    } else if ((rc = sl_arch_sliding_layers(a, cfg, where, c->n_layers, c->layer_sliding, err))) {
        return rc;
    }
    for (int i = 0; i < c->n_layers; i++) {
        if (!c->layer_sliding[i] || c->sliding_window > 0) continue;
        if (!swv && a->sliding_window > 0) {   /* transformers' default window */
            c->sliding_window = a->sliding_window;
            continue;
        }
        return sl_errorf(err, SL_EINVAL, "%s: layer %d uses sliding attention but field 'sliding_window' is not set",
                         where, i);
    }
    return 0;
}

/* A token id: an integer that fits int32 (range against the vocabulary is the caller's business). */
static bool token_id(const cJSON *v, int32_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < -2147483648.0 ||
        v->valuedouble > 2147483647.0)
        return false;
    *out = (int32_t)v->valuedouble;
    return true;
}

static int parse_eos(const cJSON *cfg, const char *where, sl_model_config *c, sl_error *err) {
    const cJSON *v = field(cfg, "eos_token_id");
    c->n_eos = 0;
    if (v) {
        const cJSON *e;
        int32_t id;
        if (cJSON_IsNumber(v)) {
            if (!token_id(v, &id)) return sl_errorf(err, SL_EINVAL, "%s: field 'eos_token_id' must be an integer", where);
            c->eos_ids[c->n_eos++] = id;
        } else if (cJSON_IsArray(v)) {
            cJSON_ArrayForEach(e, v) {
                if (!token_id(e, &id)) return sl_errorf(err, SL_EINVAL, "%s: field 'eos_token_id' must hold integers", where);
                if (c->n_eos < 8) c->eos_ids[c->n_eos++] = id;
            }
        } else {
            return sl_errorf(err, SL_EINVAL, "%s: field 'eos_token_id' must be an integer or a list", where);
        }
    }
    const cJSON *b = field(cfg, "bos_token_id");
    c->bos_id = -1;
    if (b && !cJSON_IsNull(b) && !token_id(b, &c->bos_id))
        return sl_errorf(err, SL_EINVAL, "%s: field 'bos_token_id' must be an integer", where);
    return 0;
}

static int parse_all(const cJSON *cfg, const char *where, sl_model_config *c, sl_error *err) {
    if (!cJSON_IsObject(cfg)) return sl_errorf(err, SL_EINVAL, "%s: expected a JSON object", where);
    const cJSON *mt = field(cfg, "model_type");
    if (!cJSON_IsString(mt))
        return sl_errorf(err, SL_EINVAL, "%s: field 'model_type' missing (supported: %s)", where, sl_arch_supported());
    const sl_arch_info *a = sl_arch_by_model_type(mt->valuestring);
    if (!a)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: unsupported architecture '%s' (model_type); supported: %s", where,
                         mt->valuestring, sl_arch_supported());
    c->arch = a->id;
    long v[5] = {0}, kv = 0, hd = 0, mp = 0;
    static const char *const req[5] = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                       "num_attention_heads"};
    int rc;
    for (int i = 0; i < 5; i++)
        if ((rc = get_int(cfg, where, req[i], true, 0, &v[i], err))) return rc;
    c->vocab_size = (int)v[0];
    c->hidden_size = (int)v[1];
    c->intermediate_size = (int)v[2];
    c->n_layers = (int)v[3];
    c->n_heads = (int)v[4];
    if (c->n_layers > SL_MAX_LAYERS)   /* the largest released models have a few hundred */
        return sl_errorf(err, SL_EINVAL, "%s: field 'num_hidden_layers' (%d) is implausible (at most %d)", where,
                         c->n_layers, SL_MAX_LAYERS);
    if ((rc = get_int(cfg, where, "num_key_value_heads", false, c->n_heads, &kv, err))) return rc;
    if (c->n_heads % kv)
        return sl_errorf(err, SL_EINVAL, "%s: field 'num_attention_heads' (%d) must be a multiple of 'num_key_value_heads' (%ld)",
                         where, c->n_heads, kv);
    c->n_kv_heads = (int)kv;
    if (!field(cfg, "head_dim") && c->hidden_size % c->n_heads)
        return sl_errorf(err, SL_EINVAL, "%s: field 'head_dim' missing and hidden_size %d is not a multiple of num_attention_heads %d",
                         where, c->hidden_size, c->n_heads);
    if ((rc = get_int(cfg, where, "head_dim", false, c->hidden_size / c->n_heads, &hd, err))) return rc;
    if (hd % 2) return sl_errorf(err, SL_EINVAL, "%s: field 'head_dim' (%ld) must be even", where, hd);
    c->head_dim = (int)hd;
    if ((rc = get_int(cfg, where, "max_position_embeddings", false, 4096, &mp, err))) return rc;
    c->max_position_embeddings = mp;
    double eps = 0, prf = 1;
    if ((rc = get_num(cfg, where, "rms_norm_eps", 1e-6, &eps, err))) return rc;
    if (!(eps > 0)) return sl_errorf(err, SL_EINVAL, "%s: field 'rms_norm_eps' must be positive", where);
    c->norm_eps = (float)eps;
    const cJSON *rp = field(cfg, "rope_parameters");
    double prf_top = 1;
    if ((rc = get_num(cfg, where, "partial_rotary_factor", 1.0, &prf_top, err))) return rc;
    prf = prf_top;
    if (cJSON_IsObject(rp) && field(rp, "partial_rotary_factor")) {
        if ((rc = get_num(rp, where, "partial_rotary_factor", 1.0, &prf, err))) return rc;
        if (field(cfg, "partial_rotary_factor") && prf != prf_top)
            return sl_errorf(err, SL_EINVAL, "%s: field 'partial_rotary_factor' (%g) contradicts 'rope_parameters.partial_rotary_factor' (%g)",
                             where, prf_top, prf);
    }
    c->rotary_dim = prf > 0 && prf <= 1 ? (int)(c->head_dim * prf) : 0;
    if (!(prf > 0 && prf <= 1) || c->rotary_dim < 2 || c->rotary_dim % 2)
        return sl_errorf(err, SL_EINVAL, "%s: field 'partial_rotary_factor' (%g) must give an even rotary dimension in [2, head_dim %d]",
                         where, prf, c->head_dim);
    if ((rc = parse_act(cfg, where, a, c, err))) return rc;

    bool ab = false, mb = false;
    if (a->attn_bias_key && (rc = get_bool(cfg, where, "attention_bias", false, &ab, err))) return rc;
    if (a->mlp_bias_key && (rc = get_bool(cfg, where, "mlp_bias", false, &mb, err))) return rc;
    c->attn_qkv_bias = a->qkv_bias || ab;
    c->attn_o_bias = ab;
    c->mlp_bias = mb;
    c->qk_norm = a->qk_norm;
    c->norm_plus_one = a->gemma;
    c->sandwich_norms = a->sandwich_norms;
    c->fused_qkv = a->fused_qkv;
    c->embed_scale = a->gemma ? (float)sqrt((double)c->hidden_size) : 1.0f;
    if ((rc = get_bool(cfg, where, "tie_word_embeddings", a->tied_hf, &c->tie_embeddings, err))) return rc;
    c->attn_scale = (float)(1.0 / sqrt((double)c->head_dim));
    if (a->softcap) {
        double q = 0;
        if ((rc = get_num(cfg, where, "query_pre_attn_scalar", 256.0, &q, err))) return rc;
        if (!(q > 0)) return sl_errorf(err, SL_EINVAL, "%s: field 'query_pre_attn_scalar' must be positive", where);
        c->attn_scale = (float)(1.0 / sqrt(q));
        double s1 = 0, s2 = 0;
        /* absent: transformers' default; null: none */
        bool n1 = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "attn_logit_softcapping"));
        bool n2 = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "final_logit_softcapping"));
        if ((rc = get_num(cfg, where, "attn_logit_softcapping", n1 ? 0.0 : a->attn_softcap, &s1, err)) ||
            (rc = get_num(cfg, where, "final_logit_softcapping", n2 ? 0.0 : a->final_softcap, &s2, err)))
            return rc;
        if (s1 < 0 || s2 < 0) return sl_errorf(err, SL_EINVAL, "%s: softcapping values must be positive", where);
        c->attn_softcap = (float)s1;
        c->final_softcap = (float)s2;
    }
    if ((rc = parse_ropes(cfg, where, a, c, err))) return rc;
    if ((rc = parse_layers(cfg, where, a, c, err))) return rc;
    return parse_eos(cfg, where, c, err);
}

int sl_model_config_parse(const cJSON *cfg, const char *where, sl_model_config *c, sl_error *err) {
    memset(c, 0, sizeof *c);
    int rc = parse_all(cfg, where, c, err);
    if (rc) sl_model_config_free(c);
    return rc;
}

void sl_model_config_free(sl_model_config *c) {
    if (!c) return;
    free(c->layer_sliding);
    c->layer_sliding = NULL;
}
