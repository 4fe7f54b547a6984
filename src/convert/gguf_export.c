/*
 * gguf_export.c — model directory (HF or mlx-lm, quantized or not) -> a
 * llama.cpp GGUF file, and GGUF -> GGUF requantization (`silica quantize`).
 *
 * What is written (key names: llama.cpp gguf-py/gguf/constants.py; tensor names and
 * layouts: llama.cpp src/llama-arch.cpp and convert_hf_to_gguf.py):
 *  - general.architecture / name / file_type / quantization_version and the
 *    architecture's hyper-parameters from config.json (<arch>.context_length,
 *    embedding_length, block_count, feed_forward_length, attention.head_count,
 *    head_count_kv, layer_norm_rms_epsilon, rope.freq_base,
 *    rope.dimension_count, key/value_length when head_dim is explicit);
 *  - tokenizer metadata parsed from tokenizer.json (+ tokenizer_config.json):
 *    model "gpt2" (byte-level BPE: tokens, token_type, merges, pre) or
 *    "llama" (BPE with byte fallback: tokens, scores, token_type), bos / eos /
 *    pad ids, add_bos_token, chat_template;
 *  - tensors renamed to llama.cpp's names; llama-family q_proj / k_proj rows
 *    permuted (HF rotate-half -> adjacent pairs); norms and biases in F32;
 *    matrices in F16 (or --dtype), except MLX affine 4-bit weights, which
 *    become Q4_1 losslessly (same codes, scales and biases); with --q-type
 *    a llama-quantize mix (src/quant/quant_mix.c) picks each matrix's type,
 *    rows that do not fit falling back as llama.cpp's do (counted in the
 *    stats for the caller to report).
 *
 * The hyper-parameters are config.json as the engine parses it
 * (sl_model_config_parse); the family's row of the architecture table
 * (src/model/arch.c) gives the GGUF architecture, tensor names, Q/K
 * permutation, norm +1, softcapping, sliding pattern and key order.  RoPE:
 * linear and yarn as rope.scaling.* keys, Llama 3 as rope_freqs.weight (the
 * factors convert_hf_to_gguf computes), LongRoPE as rope_factors_long/short,
 * dynamic NTK (which llama.cpp does not run) under silica.rope.dynamic.*;
 * GGUF cannot carry a llama sliding window (Mistral) or a sliding-layer RoPE
 * other than plain.
 *
 * Per architecture, as llama.cpp's convert_hf_to_gguf.py writes it (facts
 * from its conversion/ python modules and src/models/ sources):
 *  - llama, mistral (as llama), qwen2, qwen3: the keys above;
 *  - gemma: no rope.freq_base unless theta != 10000 (llama.cpp's default),
 *    key/value_length; every `*norm.weight` gets +1 (Gemma's RMSNorm scales
 *    by 1 + w; the sum is rounded to the source dtype as torch does); the
 *    head is always tied (lm_head dropped);
 *  - gemma2: + attn_logit_softcapping, final_logit_softcapping,
 *    attention.sliding_window; post_attention_layernorm ->
 *    post_attention_norm, pre_feedforward_layernorm -> ffn_norm,
 *    post_feedforward_layernorm -> post_ffw_norm;
 *  - gemma3 (model_type gemma3_text): general keys + rope.freq_base (full
 *    attention), rope.freq_base_swa, rope.scaling.type/factor (linear),
 *    final_logit_softcapping when set, attention.sliding_window; q/k norms
 *    are shifted too.  llama.cpp assumes sliding layers follow period 6 (2
 *    for gemma2); when config.json's layer_types has another period, silica
 *    also writes attention.sliding_window_pattern (the converter does not,
 *    and llama.cpp would then run a different model);
 *  - phi3: fused attn_qkv and ffn_up (= gate_up), rope.dimension_count from
 *    partial_rotary_factor, rope.scaling.original_context_length,
 *    attention.sliding_window (0 when null), and for LongRoPE the F32
 *    tensors rope_factors_long / rope_factors_short plus
 *    rope.scaling.attn_factor = sqrt(1 + ln(s) / ln(orig)), s = ctx / orig.
 * Not done: gemma3's trimming of embedding rows beyond the tokenizer.
 *
 * Invariants: streaming, one tensor row at a time for requantization; the
 * output file is written under a temporary name and renamed at the end.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"
#include "silica/gguf.h"

/* ---- metadata helpers (typed values for the GGUF writer) ---- */

static int kv_typed(cJSON *m, const char *key, const char *type, cJSON *value) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !value) {
        cJSON_Delete(o);
        cJSON_Delete(value);
        return -1;
    }
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddItemToObject(o, "value", value);
    cJSON_DeleteItemFromObjectCaseSensitive(m, key);
    cJSON_AddItemToObject(m, key, o);
    return 0;
}

static int kv_u32(cJSON *m, const char *key, long long v) { return kv_typed(m, key, "uint32", cJSON_CreateNumber((double)v)); }
static int kv_f32(cJSON *m, const char *key, double v) { return kv_typed(m, key, "float32", cJSON_CreateNumber(v)); }
static int kv_str(cJSON *m, const char *key, const char *v) { return kv_typed(m, key, "string", cJSON_CreateString(v)); }
static int kv_bool(cJSON *m, const char *key, bool v) { return kv_typed(m, key, "bool", cJSON_CreateBool(v)); }

static int kv_array(cJSON *m, const char *key, const char *elem, cJSON *arr) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !arr) {
        cJSON_Delete(o);
        cJSON_Delete(arr);
        return -1;
    }
    cJSON_AddStringToObject(o, "type", "array");
    cJSON_AddStringToObject(o, "elem_type", elem);
    cJSON_AddItemToObject(o, "value", arr);
    cJSON_AddItemToObject(m, key, o);
    return 0;
}

/* llama_ftype of the dominant tensor type */
static int ftype_of(sl_dtype t) {
    switch (t) {
    case SL_F32: return 0;
    case SL_F16: return 1;
    case SL_Q4_0: return 2;
    case SL_Q4_1: return 3;
    case SL_Q8_0: return 7;
    case SL_Q4_K: return 15;
    case SL_Q6_K: return 18;
    case SL_BF16: return 32;
    default: return 1;
    }
}

static double cfg_num(const pj *cfg, const char *key, double dflt) {
    const pj *v = pj_get(cfg, key);
    if (!v) return dflt;
    if (v->type == PJ_INT) return (double)strtoll(v->s, NULL, 10);
    if (v->type == PJ_FLOAT) return v->d;
    return dflt;
}

/* config.json's RoPE object for full attention: rope_parameters (v5, maybe
 * split into full_attention / sliding_attention) or the older rope_scaling. */
static const pj *rope_obj(const pj *cfg, const char *which) {
    const pj *rp = pj_get(cfg, "rope_parameters");
    if (rp && rp->type == PJ_OBJ) {
        const pj *sub = pj_get(rp, which);
        if (sub && sub->type == PJ_OBJ) return sub;
        return !strcmp(which, "full_attention") ? rp : NULL;
    }
    rp = pj_get(cfg, "rope_scaling");
    return rp && rp->type == PJ_OBJ && !strcmp(which, "full_attention") ? rp : NULL;
}

/* The period P of the sliding layers when they are exactly those with
 * l % P < P - 1 (llama.cpp's set_swa_pattern); 0 when they have no such form. */
static int swa_period(const sl_model_config *c) {
    for (int P = 1; P <= c->n_layers; P++) {
        bool ok = true;
        for (int l = 0; ok && l < c->n_layers; l++) ok = c->layer_sliding[l] == (l % P < P - 1);
        if (ok) return P;
    }
    return 0;
}

/* RoPE scaling keys for the full-attention RoPE (llama.cpp gguf-py constants
 * Keys.Rope); Llama 3 and LongRoPE go as factor tensors (rope_tensors).
 * Dynamic NTK, which llama.cpp does not run (it is plain RoPE within the
 * trained context), is kept under silica.rope.dynamic.*. */
static int rope_keys(cJSON *m, const char *arch, const sl_model_config *c, sl_error *err) {
    const sl_rope_config *r = &c->rope;
    char k[128];
    int rc = 0;
#define K(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    switch (r->type) {
    case SL_ROPE_DEFAULT:
    case SL_ROPE_LLAMA3:
    case SL_ROPE_LONGROPE: break;
    case SL_ROPE_LINEAR:
        rc |= kv_str(m, K("rope.scaling.type"), "linear");
        rc |= kv_f32(m, K("rope.scaling.factor"), r->factor);
        break;
    case SL_ROPE_YARN:
        if (r->mscale > 0 || r->mscale_all_dim > 0 || r->attention_factor > 0 || !r->truncate)
            return sl_errorf(err, SL_EUNSUPPORTED, "config.json: yarn RoPE with mscale, attention_factor or truncate "
                                                   "false has no GGUF form");
        rc |= kv_str(m, K("rope.scaling.type"), "yarn");
        rc |= kv_f32(m, K("rope.scaling.factor"), r->factor);
        if (r->original_max_pos) rc |= kv_u32(m, K("rope.scaling.original_context_length"), r->original_max_pos);
        if (r->beta_fast != 32.0) rc |= kv_f32(m, K("rope.scaling.yarn_beta_fast"), r->beta_fast);
        if (r->beta_slow != 1.0) rc |= kv_f32(m, K("rope.scaling.yarn_beta_slow"), r->beta_slow);
        break;
    case SL_ROPE_DYNAMIC:
        rc |= kv_f32(m, "silica.rope.dynamic.factor", r->factor);
        if (r->original_max_pos) rc |= kv_u32(m, "silica.rope.dynamic.original_context_length", r->original_max_pos);
        break;
    }
#undef K
    return rc ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
}

/* LongRoPE's attention factor as config.json gives it or transformers derives it. */
static double longrope_attn(const sl_model_config *c) {
    const sl_rope_config *r = &c->rope;
    if (r->attention_factor > 0) return r->attention_factor;
    int64_t orig = r->original_max_pos > 0 ? r->original_max_pos : c->max_position_embeddings;
    double scale = (double)c->max_position_embeddings / (double)(orig > 0 ? orig : 1);
    return scale > 1.0 ? sqrt(1 + log(scale) / log((double)orig)) : 1.0;
}

static int arch_metadata(cJSON *m, const sl_arch_info *a, const pj *cfg, const sl_model_config *c, const char *name,
                         int ftype, bool quantized, sl_error *err) {
    char k[128];
    const char *arch = a->gguf_arch;
    if (a->rope_local_theta > 0 && (c->rope_local.type != SL_ROPE_DEFAULT || c->rope.type == SL_ROPE_LLAMA3))
        return sl_errorf(err, SL_EUNSUPPORTED, "config.json: %s RoPE of the sliding layers has no GGUF form",
                         c->rope.type == SL_ROPE_LLAMA3 ? "llama3" : "scaled");
    int rc = kv_str(m, "general.architecture", arch);
    rc |= kv_str(m, "general.name", name);
    rc |= kv_u32(m, "general.file_type", ftype);
    if (quantized) rc |= kv_u32(m, "general.quantization_version", 2);
#define K(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    int64_t ctx = c->max_position_embeddings;
    rc |= kv_u32(m, K("context_length"), ctx);
    rc |= kv_u32(m, K("embedding_length"), c->hidden_size);
    rc |= kv_u32(m, K("block_count"), c->n_layers);
    rc |= kv_u32(m, K("feed_forward_length"), c->intermediate_size);
    rc |= kv_u32(m, K("attention.head_count"), c->n_heads);
    rc |= kv_u32(m, K("attention.head_count_kv"), c->n_kv_heads);
    rc |= kv_f32(m, K("attention.layer_norm_rms_epsilon"), c->norm_eps);
    if (!rc) switch (a->gguf_rope) {
    case SL_GGUF_ROPE_LLAMA:
        rc |= kv_f32(m, K("rope.freq_base"), c->rope.theta);
        rc |= kv_u32(m, K("rope.dimension_count"), c->rotary_dim);
        if (!rc) rc = rope_keys(m, arch, c, err);
        break;
    case SL_GGUF_ROPE_PHI3: {
        int64_t orig = c->rope.original_max_pos > 0 ? c->rope.original_max_pos : ctx;
        rc |= kv_u32(m, K("rope.scaling.original_context_length"), orig);
        rc |= kv_u32(m, K("rope.dimension_count"), c->rotary_dim);
        rc |= kv_f32(m, K("rope.freq_base"), c->rope.theta);
        rc |= kv_u32(m, K("attention.sliding_window"), c->sliding_window);
        if (c->rope.type == SL_ROPE_LONGROPE) rc |= kv_f32(m, K("rope.scaling.attn_factor"), longrope_attn(c));
        else if (!rc) rc = rope_keys(m, arch, c, err);
        break;
    }
    case SL_GGUF_ROPE_GEMMA3:
        if (!rc) rc = rope_keys(m, arch, c, err);
        rc |= kv_f32(m, K("rope.freq_base"), c->rope.theta);
        {
            const pj *sw = rope_obj(cfg, "sliding_attention");
            if ((sw && pj_get(sw, "rope_theta")) || pj_get(cfg, "rope_local_base_freq"))
                rc |= kv_f32(m, K("rope.freq_base_swa"), c->rope_local.theta);
        }
        break;
    case SL_GGUF_ROPE_GEMMA:
        if (c->rope.theta != 10000) rc |= kv_f32(m, K("rope.freq_base"), c->rope.theta);   /* llama.cpp's default */
        if (!rc) rc = rope_keys(m, arch, c, err);
        break;
    }
    if (rc) return rc == SL_ENOMEM || rc == SL_EUNSUPPORTED ? rc : sl_errorf(err, SL_ENOMEM, "out of memory");
    if (a->gemma || pj_get(cfg, "head_dim")) {
        rc |= kv_u32(m, K("attention.key_length"), c->head_dim);
        rc |= kv_u32(m, K("attention.value_length"), c->head_dim);
    }
    if (a->softcap && a->attn_softcap > 0) {   /* convert_hf_to_gguf Gemma2Model: both, always */
        rc |= kv_f32(m, K("attn_logit_softcapping"), c->attn_softcap);
        rc |= kv_f32(m, K("final_logit_softcapping"), c->final_softcap);
    } else if (a->softcap && c->final_softcap != 0) {   /* Gemma3Model: final when set */
        rc |= kv_f32(m, K("final_logit_softcapping"), c->final_softcap);
    }
    if (a->swa == SL_SWA_PERIOD) {
        rc |= kv_u32(m, K("attention.sliding_window"), c->sliding_window > 0 ? c->sliding_window : a->sliding_window);
        int P = swa_period(c);
        if (P && P != a->swa_period) rc |= kv_u32(m, K("attention.sliding_window_pattern"), P);
    }
    rc |= kv_u32(m, K("vocab_size"), c->vocab_size);
#undef K
    return rc ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
}

/* ---- tokenizer.json -> tokenizer.ggml.* ---- */

static cJSON *load_json(const char *dir, const char *name, sl_error *err) {
    char *p = sl_path_join(dir, name);
    char *text = NULL;
    size_t len = 0;
    cJSON *j = NULL;
    if (p && sl_path_exists(p) && sl_read_file(p, 1u << 30, &text, &len, err) == 0) {
        j = cJSON_ParseWithLength(text, len);
        if (!j) sl_errorf(err, SL_EINVAL, "%s: invalid JSON", p);
    }
    free(text);
    free(p);
    return j;
}

/* llama.cpp's name for the pre-tokenizer (its regex set): from
 * tokenizer.json's pre_tokenizer where it is recognizable — a plain
 * ByteLevel with use_regex is GPT-2's regex ("gpt-2"); a Split with Llama 3's
 * or Qwen2's regex — else guessed from the model type. */
static const char *pre_tokenizer_name(const cJSON *tj, const char *model_type) {
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(tj, "pre_tokenizer");
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pt, "type"));
    if (type && !strcmp(type, "ByteLevel") && !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pt, "use_regex")))
        return "gpt-2";
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(e, "pattern");
        const char *re = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pat, "Regex"));
        if (!re || !strstr(re, "(?i:'s|'t|'re|'ve|'m|'ll|'d)")) continue;
        if (strstr(re, "\\p{N}{1,3}")) return "llama-bpe";
        if (strstr(re, "\\p{N}|")) return "qwen2";
    }
    return !strcmp(model_type, "llama") || !strcmp(model_type, "mistral") ? "llama-bpe"
           : !strncmp(model_type, "qwen", 4)                              ? "qwen2"
                                                                          : "default";
}

/* Without add_bos_token in tokenizer_config.json, gguf-py's SpecialVocab
 * reads tokenizer.json's post_processor: RobertaProcessing adds BOS; a
 * TemplateProcessing whose single template has more than one item and starts
 * with a special token adds BOS when that token is the configured bos_token
 * (or none is configured).  1 / 0, or -1 when it says nothing. */
static int template_adds_bos(const cJSON *tj, const cJSON *tc) {
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(tj, "post_processor");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pp, "processors"), *e;
    const cJSON *bt = cJSON_GetObjectItemCaseSensitive(tc, "bos_token");
    const char *bos = cJSON_IsString(bt) ? bt->valuestring
                                          : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bt, "content"));
    int r = -1;
    for (e = list ? list->child : pp; e; e = list ? e->next : NULL) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));
        if (type && !strcmp(type, "RobertaProcessing")) r = 1;
        if (!type || strcmp(type, "TemplateProcessing")) continue;
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(e, "single");
        if (cJSON_GetArraySize(single) < 2) continue;
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, 0), "SpecialToken");
        const char *first = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "id"));
        if (first) r = !bos || !strcmp(first, bos);
    }
    return r;
}

/* An added token that is not flagged special but is a control token all the
 * same, by llama.cpp converter's rule: <|...|>, <｜...｜>, <unused...>, and a
 * few exact names. */
static bool looks_special(const char *t) {
    static const char *const exact[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(t, exact[i])) return true;
    return (!strncmp(t, "<|", 2) && sl_str_ends_with(t, "|>")) ||
           (!strncmp(t, "<\xef\xbd\x9c", 4) && sl_str_ends_with(t, "\xef\xbd\x9c>")) ||
           (!strncmp(t, "<unused", 7) && sl_str_ends_with(t, ">"));
}

static int tokenizer_metadata(cJSON *m, const char *dir, const char *model_type, const pj *cfg, long long n_vocab,
                              sl_error *err) {
    sl_error e2 = {0};
    cJSON *tj = load_json(dir, "tokenizer.json", &e2);
    if (!tj) {
        if (e2.code) { *err = e2; return e2.code; }
        return 0; /* no tokenizer: weights only */
    }
    cJSON *tc = load_json(dir, "tokenizer_config.json", &e2);
    int rc = 0;
    cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const char *mtype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(model, "type"));
    if (!cJSON_IsObject(vocab) || !mtype || strcmp(mtype, "BPE")) {
        rc = sl_errorf(err, SL_EUNSUPPORTED, "%s/tokenizer.json: only BPE tokenizers can be exported to GGUF (got %s)", dir,
                       mtype ? mtype : "no model type");
        goto done;
    }
    bool byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    long long n = n_vocab;
    char **tok = calloc((size_t)(n > 0 ? n : 1), sizeof *tok);
    int *type = calloc((size_t)(n > 0 ? n : 1), sizeof *type);
    if (!tok || !type) {
        free(tok);
        free(type);
        rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        goto done;
    }
    for (cJSON *v = vocab->child; v; v = v->next) {
        long long id = (long long)cJSON_GetNumberValue(v);
        if (id >= 0 && id < n && v->string) {
            tok[id] = v->string;
            type[id] = 1;
            if (byte_fallback && strlen(v->string) == 6 && !strncmp(v->string, "<0x", 3) && v->string[5] == '>') type[id] = 6;
        }
    }
    cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    cJSON *a;
    cJSON_ArrayForEach(a, added) {
        long long id = (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(a, "id"));
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "content"));
        if (id >= 0 && id < n && c) {
            tok[id] = (char *)c;
            type[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special")) || looks_special(c) ? 3 : 4;
        }
    }
    cJSON *tokens = cJSON_CreateArray(), *types = cJSON_CreateArray(), *scores = byte_fallback ? cJSON_CreateArray() : NULL;
    char pad[32];
    for (long long i = 0; i < n; i++) {
        const char *s = tok[i];
        int t = type[i];
        if (!s) { /* vocab_size larger than the tokenizer: padding, as convert_hf_to_gguf does */
            snprintf(pad, sizeof pad, "[PAD%lld]", i);
            s = pad;
            t = 5;   /* UNUSED */
        }
        cJSON_AddItemToArray(tokens, cJSON_CreateString(s));
        cJSON_AddItemToArray(types, cJSON_CreateNumber(t));
        if (scores) cJSON_AddItemToArray(scores, cJSON_CreateNumber(t == 1 ? -(double)i : 0.0));
    }
    free(tok);
    free(type);
    rc |= kv_str(m, "tokenizer.ggml.model", byte_fallback ? "llama" : "gpt2");
    if (byte_fallback && !strncmp(model_type, "gemma", 5))   /* as the converter: Gemma's SentencePiece adds no space */
        rc |= kv_bool(m, "tokenizer.ggml.add_space_prefix", false);
    if (!byte_fallback) rc |= kv_str(m, "tokenizer.ggml.pre", pre_tokenizer_name(tj, model_type));
    rc |= kv_array(m, "tokenizer.ggml.tokens", "string", tokens);
    if (scores) rc |= kv_array(m, "tokenizer.ggml.scores", "float32", scores);
    rc |= kv_array(m, "tokenizer.ggml.token_type", "int32", types);
    if (!byte_fallback) {
        cJSON *merges = cJSON_CreateArray(), *mg;
        cJSON_ArrayForEach(mg, cJSON_GetObjectItemCaseSensitive(model, "merges")) {
            if (cJSON_IsString(mg)) cJSON_AddItemToArray(merges, cJSON_CreateString(mg->valuestring));
            else if (cJSON_IsArray(mg) && cJSON_GetArraySize(mg) == 2) {
                const char *x = cJSON_GetStringValue(cJSON_GetArrayItem(mg, 0)), *y = cJSON_GetStringValue(cJSON_GetArrayItem(mg, 1));
                if (!x || !y) continue;
                size_t l = strlen(x) + strlen(y) + 2;
                char *s = malloc(l);
                if (!s) continue;
                snprintf(s, l, "%s %s", x, y);
                cJSON_AddItemToArray(merges, cJSON_CreateString(s));
                free(s);
            }
        }
        rc |= kv_array(m, "tokenizer.ggml.merges", "string", merges);
    }
    /* Special ids as gguf-py's SpecialVocab finds them: tokenizer_config.json's
     * "<typ>_token" (a string or {"content"}) looked up among the added tokens
     * first, else an integer "<typ>_token_id" in config.json (a list counts as
     * absent); ids at or past the vocabulary are dropped. */
    static const struct { const char *typ, *key; } k_special[] = {
            {"bos", "bos_token_id"}, {"eos", "eos_token_id"}, {"unk", "unknown_token_id"},
            {"sep", "seperator_token_id"}, {"pad", "padding_token_id"}, {"mask", "mask_token_id"}};
    for (size_t i = 0; i < sizeof k_special / sizeof k_special[0]; i++) {
        char f[32];
        snprintf(f, sizeof f, "%s_token", k_special[i].typ);
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(tc, f);
        const char *content = cJSON_IsString(entry) ? entry->valuestring
                              : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "content"));
        long long id = -1;
        if (content)
            cJSON_ArrayForEach(a, added) {
                const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "content"));
                const cJSON *aid = cJSON_GetObjectItemCaseSensitive(a, "id");
                if (c && !strcmp(c, content) && cJSON_IsNumber(aid)) { id = (long long)aid->valuedouble; break; }
            }
        if (id < 0) {
            snprintf(f, sizeof f, "%s_token_id", k_special[i].typ);
            const pj *v = pj_get(cfg, f);
            if (v && v->type != PJ_ARR) id = pj_int(v, -1);
        }
        char key[64];
        snprintf(key, sizeof key, "tokenizer.ggml.%s", k_special[i].key);
        if (id >= 0 && id < n) rc |= kv_u32(m, key, id);
    }
    cJSON *ab = cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token");
    if (cJSON_IsBool(ab)) rc |= kv_bool(m, "tokenizer.ggml.add_bos_token", cJSON_IsTrue(ab));
    else {
        int tb = template_adds_bos(tj, tc);
        if (tb >= 0) rc |= kv_bool(m, "tokenizer.ggml.add_bos_token", tb == 1);
    }
    cJSON *ae = cJSON_GetObjectItemCaseSensitive(tc, "add_eos_token");
    if (cJSON_IsBool(ae)) rc |= kv_bool(m, "tokenizer.ggml.add_eos_token", cJSON_IsTrue(ae));
    const char *tmpl = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(tc, "chat_template"));
    if (tmpl) rc |= kv_str(m, "tokenizer.chat_template", tmpl);
    if (rc) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
done:
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    return rc;
}

static int cmp_out(const void *a, const void *b) {
    return sl_arch_cmp_names(((const sl_out_tensor *)a)->src->name, ((const sl_out_tensor *)b)->src->name);
}

static bool fits_blocks(sl_dtype t, uint64_t K) {
    const sl_dtype_info *d = sl_dtype_get(t);
    return d && K % d->block_elems == 0;
}

/* ---- llama-quantize's mixes (src/quant/quant_mix.c) ---- */

/* The mix the options ask for, or NULL (no mix: the per-tensor types the
 * pipeline picks).  A bare gguf_type is that type everywhere (--pure);
 * quantizing with nothing named is the Q4_0 mix. */
static const sl_gguf_mix *opts_mix(const sl_convert_opts *o, bool *pure) {
    *pure = o->q.gguf_pure;
    if (o->q.gguf_mix) return o->q.gguf_mix;
    if (o->q.gguf_type != SL_DTYPE_INVALID) {
        *pure = true;
        return sl_gguf_mix_find(sl_dtype_name(o->q.gguf_type));
    }
    return o->q.enabled ? sl_gguf_mix_find("Q4_0") : NULL;
}

static int note_fallback(sl_convert_stats *st, sl_dtype wanted, sl_dtype used, int64_t row, sl_error *err) {
    if (!st) return 0;
    for (size_t i = 0; i < st->n_fallbacks; i++) {
        sl_type_fallback *f = &st->fallbacks[i];
        if (f->wanted == wanted && f->used == used && f->row == row) {
            f->count++;
            return 0;
        }
    }
    sl_type_fallback *f = realloc(st->fallbacks, (st->n_fallbacks + 1) * sizeof *f);
    if (!f) return sl_errorf(err, SL_ENOMEM, "out of memory");
    st->fallbacks = f;
    f[st->n_fallbacks++] = (sl_type_fallback){wanted, used, row, 1};
    return 0;
}

/* The mix's type for every planned tensor (ch[i] for p->t[i]; caller frees). */
static int plan_mix(sl_plan *p, const sl_gguf_mix *mix, bool pure, const sl_gguf_mix_model *m,
                    sl_gguf_mix_choice **out, sl_error *err) {
    sl_gguf_mix_tensor *t = calloc(p->n ? p->n : 1, sizeof *t);
    sl_gguf_mix_choice *ch = calloc(p->n ? p->n : 1, sizeof *ch);
    int rc = t && ch ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < p->n; i++) {
        const sl_out_tensor *o = &p->t[i];
        int nd = o->ndim < 4 ? o->ndim : 4;
        t[i] = (sl_gguf_mix_tensor){.name = o->name, .ndim = nd, .type = o->dtype};
        memcpy(t[i].shape, o->shape + (o->ndim - nd), (size_t)nd * sizeof *t[i].shape);
    }
    if (!rc) rc = sl_gguf_mix_plan(mix, pure, m, t, p->n, ch, err);
    for (size_t i = 0; !rc && i < p->n; i++)
        if (ch[i].quantize && ch[i].type != ch[i].wanted)
            rc = note_fallback(p->st, ch[i].wanted, ch[i].type, p->t[i].shape[p->t[i].ndim - 1], err);
    free(t);
    if (rc) {
        free(ch);
        ch = NULL;
    }
    *out = ch;
    return rc;
}

/* <arch>.<key> of typed GGUF metadata as an integer (first element of an array), or 0. */
static int meta_int(const cJSON *meta, const char *arch, const char *key) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch ? arch : "", key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, k), "value");
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e9 ? (int)v->valuedouble : 0;
}

/* GGUF stats: parameters, bytes, bits per weight over every tensor (llama-quantize's BPW). */
static void gguf_totals(const sl_plan *p, sl_convert_stats *st) {
    if (!st) return;
    uint64_t elems = 0, bytes = 0;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t e = 1;
        for (int d = 0; d < p->t[i].ndim; d++) e *= (uint64_t)p->t[i].shape[d];
        elems += e;
        bytes += sl_plan_nbytes(&p->t[i]);
    }
    st->params = elems;
    st->model_bytes = bytes;
    st->bits_per_weight = elems ? (double)bytes * 8.0 / (double)elems : 0;
}

static int layer_num(const char *name) {
    int l = -1;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

static int cmp_report_gguf(const void *a, const void *b) {
    const sl_tensor_report *x = a, *y = b;
    int lx = layer_num(x->name), ly = layer_num(y->name);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->name, y->name);
}

/* --report: a line for every tensor not quantized on the way (copies, Q4_1
 * repacks), then all in llama.cpp's order (block, name). */
static int finish_report(sl_plan *p, sl_error *err) {
    if (!p->st || !p->o->report) return 0;
    for (size_t i = 0; i < p->n; i++) {
        const sl_out_tensor *o = &p->t[i];
        if (o->kind == SL_OUT_GGUF_Q && o->report) continue;   /* produce_gguf_q reported it */
        int rc = sl_plan_report_gguf(p, o, NULL, err);
        if (rc) return rc;
    }
    qsort(p->st->report, p->st->n_report, sizeof *p->st->report, cmp_report_gguf);
    return 0;
}

static int write_gguf(sl_plan *p, const char *dst, cJSON *meta, sl_error *err) {
    for (size_t i = 0; i < p->n; i++) p->total += sl_plan_nbytes(&p->t[i]);
    int rc = sl_plan_write_file(p, 0, SL_FMT_GGUF, dst, meta, err);
    if (!rc) gguf_totals(p, p->st);
    if (!rc) rc = finish_report(p, err);
    return rc;
}

/* GGUF -> GGUF with llama-quantize's mix (silica quantize model.gguf out.gguf). */
static int requantize_gguf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                           sl_error *err) {
    sl_checkpoint *ck = NULL;
    int rc = sl_checkpoint_open(src, &ck, err);
    if (rc) return rc;
    if (ck->format != SL_FMT_GGUF) {
        sl_checkpoint_close(ck);
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: quantize expects a model directory or a GGUF file", src);
    }
    bool pure = false;
    const sl_gguf_mix *mix = opts_mix(o, &pure);
    if (!mix) mix = sl_gguf_mix_find("Q4_0");
    sl_plan p = {.o = o, .st = st, .ck = ck};
    cJSON *meta = NULL;
    sl_gguf_mix_choice *ch = NULL;
    rc = sl_gguf_checkpoint_metadata(ck, &meta, err);
    for (size_t i = 0; !rc && i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        sl_out_tensor ot = {.name = t->name, .ndim = t->ndim, .src = t, .dtype = t->dtype, .kind = SL_OUT_COPY,
                            .params = t->numel};
        memcpy(ot.shape, t->shape, sizeof ot.shape);
        rc = sl_plan_add(&p, &ot, err);
    }
    if (!rc) {
        const char *arch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(meta, "general.architecture"), "value"));
        sl_gguf_mix_model m = {.arch = arch, .n_layer = meta_int(meta, arch, "block_count"),
                               .n_head = meta_int(meta, arch, "attention.head_count"),
                               .n_head_kv = meta_int(meta, arch, "attention.head_count_kv"),
                               .n_expert = meta_int(meta, arch, "expert_count")};
        rc = plan_mix(&p, mix, pure, &m, &ch, err);
    }
    for (size_t i = 0; !rc && i < p.n; i++) {
        sl_out_tensor *ot = &p.t[i];
        const sl_tensor *t = ot->src;
        bool can_read = sl_dtype_get(t->dtype)->is_float || sl_q_gguf_can_dequantize(t->dtype);
        if (ch[i].quantize && ch[i].type != t->dtype && can_read) {
            ot->kind = SL_OUT_GGUF_Q;
            ot->dtype = ch[i].type;
            ot->gguf_wanted = ch[i].wanted;
            ot->report = o->report;
        }
    }
    if (!rc && meta) {
        rc = kv_u32(meta, "general.file_type", mix->ftype);
        if (!rc && sl_dtype_get(mix->base)->is_quant) rc = kv_u32(meta, "general.quantization_version", 2);
        if (rc) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (!rc) {
        if (sl_path_exists(dst) && !o->force) rc = sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
        else rc = write_gguf(&p, dst, meta, err);
    }
    if (st) st->bytes_written = p.done;
    free(ch);
    cJSON_Delete(meta);
    sl_plan_free(&p);
    sl_checkpoint_close(ck);
    return rc;
}

/* RoPE factor tensors (F32 [rotary_dim/2], owned arrays f[i] viewed by t[i]):
 * LongRoPE's rope_factors_long / rope_factors_short, Llama 3's rope_freqs
 * (convert_hf_to_gguf's factors, which llama.cpp divides the frequencies by). */
static int rope_tensors(sl_plan *p, const sl_model_config *c, sl_tensor t[2], float *f[2], sl_error *err) {
    const sl_rope_config *r = &c->rope;
    static const char *const longrope[2] = {"rope_factors_long.weight", "rope_factors_short.weight"};
    const char *name[2] = {NULL, NULL};
    size_t n = (size_t)c->rotary_dim / 2;
    if (r->type == SL_ROPE_LONGROPE) {
        name[0] = longrope[0];
        name[1] = longrope[1];
    } else if (r->type == SL_ROPE_LLAMA3) {
        name[0] = "rope_freqs.weight";
    }
    for (int i = 0; i < 2 && name[i]; i++) {
        if (!(f[i] = malloc(n * sizeof *f[i]))) return sl_errorf(err, SL_ENOMEM, "out of memory");
        if (r->type == SL_ROPE_LLAMA3) sl_arch_llama3_factors(r, c->rotary_dim, f[i]);
        else memcpy(f[i], i ? r->short_factor : r->long_factor, n * sizeof *f[i]);
        t[i] = (sl_tensor){.name = (char *)name[i], .dtype = SL_F32, .ndim = 1, .shape = {(int64_t)n},
                           .strides = {1}, .contiguous = true, .data = (const uint8_t *)f[i],
                           .nbytes = n * 4, .numel = n};
        sl_out_tensor ot = {.name = (char *)name[i], .ndim = 1, .shape = {(int64_t)n}, .src = &t[i],
                            .kind = SL_OUT_GGUF_Q, .dtype = SL_F32};
        int rc = sl_plan_add(p, &ot, err);
        if (rc) return rc;
    }
    return 0;
}

/* Export: the mix's type for every matrix (MLX affine 4-bit stays a lossless Q4_1 repack where the
 * mix says Q4_1). */
static int export_mix(sl_plan *p, const sl_gguf_mix *mix, bool pure, const sl_arch_info *arch,
                      const sl_model_config *mc, sl_error *err) {
    sl_gguf_mix_model m = {.arch = arch->gguf_arch, .n_layer = mc->n_layers, .n_head = mc->n_heads,
                           .n_head_kv = mc->n_kv_heads};
    sl_gguf_mix_choice *ch = NULL;
    int rc = plan_mix(p, mix, pure, &m, &ch, err);
    for (size_t i = 0; !rc && i < p->n; i++) {
        sl_out_tensor *ot = &p->t[i];
        if (!ch[i].quantize || (ot->kind != SL_OUT_GGUF_Q && ot->kind != SL_OUT_Q4_1_FROM_AFFINE)) continue;
        bool lossless = ot->src_scales && ot->q.bits == 4 && ch[i].type == SL_Q4_1;
        ot->kind = lossless ? SL_OUT_Q4_1_FROM_AFFINE : SL_OUT_GGUF_Q;
        ot->dtype = ch[i].type;
        ot->gguf_wanted = ch[i].wanted;
    }
    free(ch);
    return rc;
}

/* config.json parsed as the engine parses it (the GGUF's hyper-parameters). */
static int parse_config(const pj *cfg, const char *src, sl_model_config *c, sl_error *err) {
    size_t len = 0;
    char *text = pj_dump(cfg, -1, &len);
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    if (!j) return sl_errorf(err, SL_ENOMEM, "out of memory");
    char where[600];
    snprintf(where, sizeof where, "%s/config.json", src);
    int rc = sl_model_config_parse(j, where, c, err);
    cJSON_Delete(j);
    return rc;
}

int sl_convert_to_gguf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                       sl_error *err) {
    if (!sl_path_is_dir(src)) return requantize_gguf(src, dst, o, st, err);
    if (sl_path_exists(dst) && !o->force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
    pj *cfg = NULL;
    sl_checkpoint *ck = NULL;
    const sl_arch_info *arch = NULL;
    cJSON *meta = NULL;
    sl_plan p = {.o = o, .st = st};
    char *cpath = sl_path_join(src, "config.json");
    int rc = pj_load(cpath, &cfg, err);
    free(cpath);
    if (!rc && cfg->type != PJ_OBJ) rc = sl_errorf(err, SL_EINVAL, "%s/config.json: not a JSON object", src);
    if (!rc && !(arch = sl_convert_arch_gguf(pj_str(pj_get(cfg, "model_type")), src, err))) rc = SL_EUNSUPPORTED;
    sl_model_config mc = {0};
    if (!rc) rc = parse_config(cfg, src, &mc, err);
    if (!rc) rc = sl_checkpoint_open(src, &ck, err);
    sl_dtype want = o->q.gguf_type != SL_DTYPE_INVALID ? o->q.gguf_type
                    : o->dtype != SL_DTYPE_INVALID   ? o->dtype
                    : o->q.enabled                    ? SL_Q4_0
                                                      : SL_F16;
    bool permute = arch && arch->gguf_permute_qk;
    uint32_t heads = (uint32_t)mc.n_heads, kv_heads = (uint32_t)mc.n_kv_heads;
    bool tied = arch && sl_convert_tied(arch, cfg);
    p.ck = ck;
    sl_tensor rope_t[2];
    float *rope_f[2] = {NULL, NULL};
    if (!rc) rc = rope_tensors(&p, &mc, rope_t, rope_f, err);
    for (size_t i = 0; !rc && i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        if (strstr(t->name, "rotary_emb.inv_freq")) continue;
        if (tied && !strcmp(t->name, "lm_head.weight")) continue;
        size_t len = strlen(t->name);
        if (len > 7 && (sl_str_ends_with(t->name, ".scales") || sl_str_ends_with(t->name, ".biases"))) {
            char wn[560];
            snprintf(wn, sizeof wn, "%.*s.weight", (int)(len - 7), t->name);
            const sl_tensor *w = sl_checkpoint_find(ck, wn);
            if (w && w->dtype == SL_U32) continue;
        }
        char name[128];
        if (!sl_arch_gguf_name(arch, t->name, name, sizeof name)) {
            rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' has no llama.cpp name", src, t->name);
            break;
        }
        sl_out_tensor ot = {.name = name, .ndim = t->ndim, .src = t, .params = t->numel};
        memcpy(ot.shape, t->shape, sizeof ot.shape);
        if (arch->gemma && sl_str_ends_with(t->name, "norm.weight")) ot.add = 1.0f;   /* RMSNorm scales by 1 + w */
        bool is_q = strstr(t->name, "self_attn.q_proj") != NULL, is_k = strstr(t->name, "self_attn.k_proj") != NULL;
        if (permute && (is_q || is_k)) ot.permute_heads = is_q ? heads : kv_heads;
        if (t->dtype == SL_U32) { /* MLX quantized matrix */
            char module[512], sn[560], bn[560];
            snprintf(module, sizeof module, "%.*s", (int)(len - 7), t->name);
            snprintf(sn, sizeof sn, "%s.scales", module);
            snprintf(bn, sizeof bn, "%s.biases", module);
            const sl_tensor *s = sl_checkpoint_find(ck, sn), *b = sl_checkpoint_find(ck, bn);
            const pj *qc = pj_get(cfg, "quantization");
            const pj *e = pj_get(qc, module);
            const pj *base = e && e->type == PJ_OBJ ? e : qc;
            sl_qparams q = {.mode = SL_Q_AFFINE, .bits = (int)pj_int(pj_get(base, "bits"), 4),
                            .group_size = (int)pj_int(pj_get(base, "group_size"), 64)};
            const char *mode = pj_str(pj_get(base, "mode"));
            if (!s || !b || !qc || (mode && strcmp(mode, "affine"))) {
                rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: '%s': only affine MLX quantization (weight+scales+biases) "
                                                     "can be exported to GGUF", src, module);
                break;
            }
            uint64_t words = (uint64_t)t->shape[1], K = words * 32 / (uint64_t)q.bits;
            if ((rc = sl_q_check(q.mode, q.bits, q.group_size, err))) break;
            if (t->ndim != 2 || s->ndim != 2 || b->ndim != 2 || s->shape[0] != t->shape[0] || b->shape[0] != t->shape[0] ||
                (uint64_t)s->shape[1] * (uint64_t)q.group_size != K || b->shape[1] != s->shape[1] || b->dtype != s->dtype) {
                rc = sl_errorf(err, SL_EINVAL, "%s: '%s': weight, scales and biases shapes do not match %d-bit group %d",
                               src, module, q.bits, q.group_size);
                break;
            }
            ot.shape[1] = (int64_t)K;
            ot.src_scales = s;
            ot.src_biases = b;
            ot.q = q;
            ot.params = (uint64_t)t->shape[0] * K;
            if (q.bits == 4 && (o->q.gguf_type == SL_DTYPE_INVALID || o->q.gguf_type == SL_Q4_1)) {
                ot.kind = SL_OUT_Q4_1_FROM_AFFINE;
                ot.dtype = SL_Q4_1;
            } else {
                ot.kind = SL_OUT_GGUF_Q;
                ot.dtype = o->q.gguf_type != SL_DTYPE_INVALID && fits_blocks(o->q.gguf_type, K) ? o->q.gguf_type : SL_F16;
            }
        } else if (t->ndim == 2 && sl_dtype_get(t->dtype)->is_float) {
            ot.kind = SL_OUT_GGUF_Q;
            ot.dtype = fits_blocks(want, (uint64_t)t->shape[1]) ? want : SL_F16;
        } else if (sl_dtype_get(t->dtype)->is_float) {
            ot.kind = SL_OUT_GGUF_Q;   /* norms, biases: F32 as llama.cpp keeps them */
            ot.dtype = SL_F32;
            if (t->ndim != 1) ot.dtype = t->dtype;
        } else {
            ot.kind = SL_OUT_COPY;
            ot.dtype = t->dtype;
        }
        rc = sl_plan_add(&p, &ot, err);
    }
    bool pure = false;
    const sl_gguf_mix *mix = opts_mix(o, &pure);
    if (!rc && mix) rc = export_mix(&p, mix, pure, arch, &mc, err);
    for (size_t i = 0; !rc && i < p.n; i++) p.t[i].report = o->report && p.t[i].kind == SL_OUT_GGUF_Q;
    if (!rc) qsort(p.t, p.n, sizeof *p.t, cmp_out);
    if (!rc) {
        meta = cJSON_CreateObject();
        if (!meta) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (!rc) {
        const char *base = sl_path_basename(src);
        rc = arch_metadata(meta, arch, cfg, &mc, base && *base ? base : "model", mix ? mix->ftype : ftype_of(want),
                           sl_dtype_get(mix ? mix->base : want)->is_quant, err);
    }
    if (!rc) rc = tokenizer_metadata(meta, src, arch->model_type, cfg, (long long)cfg_num(cfg, "vocab_size", 0), err);
    if (!rc) rc = write_gguf(&p, dst, meta, err);
    if (st) st->bytes_written = p.done;
    cJSON_Delete(meta);
    sl_plan_free(&p);
    pj_free(cfg);
    sl_model_config_free(&mc);
    sl_checkpoint_close(ck);
    free(rope_f[0]);
    free(rope_f[1]);
    return rc;
}
