/*
 * arch.c — the architecture table (see arch.h): one row per family, the
 * tensor-name map transformers <-> llama.cpp, the sliding-layer rules and
 * Llama 3's RoPE factors as llama.cpp stores them.
 *
 * Invariants: k_arch[i].id == i for every sl_arch; the name map is the one
 * both directions use (GGUF -> HF takes the first row naming the GGUF
 * tensor, so a family's own rows — sandwich norms, fused ffn_up — come
 * before the shared ones for that family).
 */
#include "model/arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Defaults from transformers' configuration_<family>.py; GGUF names from llama.cpp. */
static const sl_arch_info k_arch[SL_ARCH_COUNT] = {
    {.id = SL_ARCH_LLAMA, .model_type = "llama", .hf_class = "LlamaForCausalLM", .gguf_arch = "llama",
     .mlx_module = "llama", .tied_default = 1, .drop_inv_freq = true, .rope_theta = 10000, .act = "silu",
     .mlp_bias_key = true, .attn_bias_key = true, .gguf_permute_qk = true, .gguf_rope = SL_GGUF_ROPE_LLAMA},
    {.id = SL_ARCH_MISTRAL, .model_type = "mistral", .hf_class = "MistralForCausalLM", .gguf_arch = "llama",
     .mlx_module = "llama", .tied_default = 1, .drop_inv_freq = true, .rope_theta = 10000, .act = "silu",
     .attn_bias_key = true, .gguf_permute_qk = true, .swa = SL_SWA_ALL, .gguf_rope = SL_GGUF_ROPE_LLAMA},
    {.id = SL_ARCH_QWEN2, .model_type = "qwen2", .hf_class = "Qwen2ForCausalLM", .gguf_arch = "qwen2",
     .mlx_module = "qwen2", .tied_default = 1, .drop_inv_freq = true, .rope_theta = 10000, .act = "silu",
     .qkv_bias = true, .swa = SL_SWA_QWEN, .gguf_rope = SL_GGUF_ROPE_LLAMA},
    {.id = SL_ARCH_QWEN3, .model_type = "qwen3", .hf_class = "Qwen3ForCausalLM", .gguf_arch = "qwen3",
     .mlx_module = "qwen3", .tied_default = 1, .rope_theta = 10000, .act = "silu", .attn_bias_key = true,
     .qk_norm = true, .swa = SL_SWA_QWEN, .gguf_rope = SL_GGUF_ROPE_LLAMA},
    {.id = SL_ARCH_GEMMA, .model_type = "gemma", .hf_class = "GemmaForCausalLM", .gguf_arch = "gemma",
     .mlx_module = "gemma", .tied_default = -1, .tied_hf = true, .rope_theta = 10000, .act = "gelu_pytorch_tanh", .gemma = true,
     .attn_bias_key = true, .gguf_rope = SL_GGUF_ROPE_GEMMA},
    {.id = SL_ARCH_GEMMA2, .model_type = "gemma2", .hf_class = "Gemma2ForCausalLM", .gguf_arch = "gemma2",
     .mlx_module = "gemma2", .tied_default = -1, .tied_hf = true, .rope_theta = 10000, .act = "gelu_pytorch_tanh", .gemma = true,
     .attn_bias_key = true, .sandwich_norms = true, .softcap = true, .attn_softcap = 50, .final_softcap = 30,
     .swa = SL_SWA_PERIOD, .swa_period = 2, .sliding_window = 4096, .gguf_rope = SL_GGUF_ROPE_GEMMA},
    {.id = SL_ARCH_GEMMA3, .model_type = "gemma3_text", .hf_class = "Gemma3ForCausalLM", .gguf_arch = "gemma3",
     .tied_default = 1, .tied_hf = true, .rope_theta = 1e6, .rope_local_theta = 10000, .act = "gelu_pytorch_tanh", .gemma = true,
     .attn_bias_key = true, .qk_norm = true, .sandwich_norms = true, .softcap = true, .swa = SL_SWA_PERIOD,
     .swa_period = 6, .sliding_window = 4096, .gguf_rope = SL_GGUF_ROPE_GEMMA3},
    {.id = SL_ARCH_PHI3, .model_type = "phi3", .hf_class = "Phi3ForCausalLM", .gguf_arch = "phi3",
     .mlx_module = "phi3", .tied_default = 0, .rope_theta = 10000, .act = "silu", .fused_qkv = true,
     .gguf_rope = SL_GGUF_ROPE_PHI3},
};

const sl_arch_info *sl_arch_get(sl_arch a) { return (unsigned)a < SL_ARCH_COUNT ? &k_arch[a] : NULL; }

const sl_arch_info *sl_arch_by_model_type(const char *model_type) {
    for (int i = 0; model_type && i < SL_ARCH_COUNT; i++)
        if (!strcmp(k_arch[i].model_type, model_type)) return &k_arch[i];
    return NULL;
}

const sl_arch_info *sl_arch_by_gguf(const char *gguf_arch) {
    for (int i = 0; gguf_arch && i < SL_ARCH_COUNT; i++)   /* first row: "llama" is llama, not mistral */
        if (!strcmp(k_arch[i].gguf_arch, gguf_arch)) return &k_arch[i];
    return NULL;
}

static const char *join(char *buf, size_t cap, bool gguf) {
    size_t o = 0;
    for (int i = 0; i < SL_ARCH_COUNT; i++) {
        const char *n = gguf ? k_arch[i].gguf_arch : k_arch[i].model_type;
        if (gguf && sl_arch_by_gguf(n) != &k_arch[i]) continue;
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", n);
    }
    return buf;
}

const char *sl_arch_name(sl_arch a) { return (unsigned)a < SL_ARCH_COUNT ? k_arch[a].model_type : "?"; }

const char *sl_arch_supported(void) {
    static char buf[160];
    return buf[0] ? buf : join(buf, sizeof buf, false);
}

const char *sl_arch_gguf_supported(void) {
    static char buf[160];
    return buf[0] ? buf : join(buf, sizeof buf, true);
}

/* ---- tensor names (llama.cpp src/llama-arch.cpp, LLM_TENSOR_NAMES) ---- */

typedef struct name_row {
    const char *hf, *gg;
    char only;   /* 's': sandwich-norm families only, 'x': others only, 'f': fused (phi3) only, 0: all */
} name_row;

static const name_row k_names[] = {
    {"post_attention_layernorm", "post_attention_norm", 's'},
    {"pre_feedforward_layernorm", "ffn_norm", 's'},
    {"post_feedforward_layernorm", "post_ffw_norm", 's'},
    {"post_attention_layernorm", "ffn_norm", 'x'},
    {"mlp.gate_up_proj", "ffn_up", 'f'},
    {"self_attn.qkv_proj", "attn_qkv", 0},
    {"self_attn.q_proj", "attn_q", 0},
    {"self_attn.k_proj", "attn_k", 0},
    {"self_attn.v_proj", "attn_v", 0},
    {"self_attn.o_proj", "attn_output", 0},
    {"self_attn.q_norm", "attn_q_norm", 0},
    {"self_attn.k_norm", "attn_k_norm", 0},
    {"input_layernorm", "attn_norm", 0},
    {"mlp.gate_proj", "ffn_gate", 0},
    {"mlp.up_proj", "ffn_up", 0},
    {"mlp.down_proj", "ffn_down", 0},
};
static const char *const k_top[][2] = {
    {"model.embed_tokens", "token_embd"}, {"model.norm", "output_norm"}, {"lm_head", "output"}};

static bool row_applies(const sl_arch_info *a, const name_row *r) {
    switch (r->only) {
    case 's': return a->sandwich_norms;
    case 'x': return !a->sandwich_norms;
    case 'f': return a->fused_qkv;
    default: return true;
    }
}

/* Map "<prefix>.<stem>.<suffix>" between the two spellings (to_gguf picks the direction). */
static const char *map_name(const sl_arch_info *a, const char *in, bool to_gguf, char *buf, size_t len) {
    const char *suffix = strrchr(in, '.');
    if (!suffix) return NULL;
    size_t stem = (size_t)(suffix - in);
    for (size_t i = 0; i < sizeof k_top / sizeof k_top[0]; i++) {
        const char *from = k_top[i][to_gguf ? 0 : 1], *to = k_top[i][to_gguf ? 1 : 0];
        if (strlen(from) == stem && !strncmp(in, from, stem))
            return snprintf(buf, len, "%s%s", to, suffix) < (int)len ? buf : NULL;
    }
    unsigned layer;
    int used = 0;
    if (sscanf(in, to_gguf ? "model.layers.%u.%n" : "blk.%u.%n", &layer, &used) != 1 || used == 0) return NULL;
    const char *rest = in + used;
    size_t rl = (size_t)(suffix - rest);
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++) {
        const name_row *r = &k_names[i];
        const char *from = to_gguf ? r->hf : r->gg, *to = to_gguf ? r->gg : r->hf;
        if (!row_applies(a, r) || strlen(from) != rl || strncmp(rest, from, rl)) continue;
        int n = to_gguf ? snprintf(buf, len, "blk.%u.%s%s", layer, to, suffix)
                        : snprintf(buf, len, "model.layers.%u.%s%s", layer, to, suffix);
        return n > 0 && n < (int)len ? buf : NULL;
    }
    return NULL;
}

const char *sl_arch_gguf_name(const sl_arch_info *a, const char *hf, char *buf, size_t len) {
    return map_name(a, hf, true, buf, len);
}

const char *sl_arch_hf_name(const sl_arch_info *a, const char *gguf, char *buf, size_t len) {
    return map_name(a, gguf, false, buf, len);
}

/* ---- sliding layers ---- */

static int cfg_int(const cJSON *cfg, const char *where, const char *k, long dflt, long *out, sl_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    *out = dflt;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e9)
        return sl_errorf(err, SL_EINVAL, "%s: field '%s' must be a non-negative integer", where, k);
    *out = (long)v->valuedouble;
    return 0;
}

int sl_arch_sliding_layers(const sl_arch_info *a, const cJSON *cfg, const char *where, int n, bool *out,
                           sl_error *err) {
    long sw = 0, pattern = a->swa_period, from = 0;
    int rc = cfg_int(cfg, where, "sliding_window", 0, &sw, err);
    if (rc) return rc;
    bool use = false;
    switch (a->swa) {
    case SL_SWA_NONE: break;
    case SL_SWA_ALL: use = sw > 0; break;
    case SL_SWA_PERIOD:
        if ((rc = cfg_int(cfg, where, "sliding_window_pattern", a->swa_period, &pattern, err))) return rc;
        if (pattern < 1) return sl_errorf(err, SL_EINVAL, "%s: field 'sliding_window_pattern' must be positive", where);
        use = true;
        break;
    case SL_SWA_QWEN: {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(cfg, "use_sliding_window");
        if (u && !cJSON_IsNull(u) && !cJSON_IsBool(u))
            return sl_errorf(err, SL_EINVAL, "%s: field 'use_sliding_window' must be true or false", where);
        use = cJSON_IsTrue(u);
        if ((rc = cfg_int(cfg, where, "max_window_layers", 0, &from, err))) return rc;
        break;
    }
    }
    for (int l = 0; l < n; l++)
        out[l] = use && (a->swa == SL_SWA_PERIOD ? (l + 1) % pattern != 0 : a->swa == SL_SWA_QWEN ? l >= from : true);
    return 0;
}

/* ---- Llama 3 RoPE factors (convert_hf_to_gguf LlamaModel.generate_extra_tensors) ---- */

void sl_arch_llama3_factors(const sl_rope_config *r, int dim, float *out) {
    double orig = (double)r->original_max_pos, lo_wl = orig / r->low_freq_factor, hi_wl = orig / r->high_freq_factor;
    for (int i = 0; i < dim / 2; i++) {
        float freq = (float)(1.0 / pow(r->theta, (double)(2 * i) / (double)dim));
        double wl = 2.0 * M_PI / freq;
        if (wl < hi_wl) out[i] = 1.0f;
        else if (wl > lo_wl) out[i] = (float)r->factor;
        else {
            double smooth = (orig / wl - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
            out[i] = (float)(1.0 / ((1.0 - smooth) / r->factor + smooth));
        }
    }
}
