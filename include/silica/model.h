/*
 * silica/model.h — a decoder-only language model: its configuration (parsed
 * from config.json, transformers 5 `rope_parameters` form or the older
 * `rope_theta` / `rope_scaling` form) and its weights, bound in place to the
 * tensors of an open checkpoint.
 *
 * Invariants:
 *  - Weight matrices are never copied: each is a view (sl_weight, see
 *    src/kernels/matmul.h) into the mmap'd checkpoint, in its stored dtype.
 *    Only 1-D vectors (norm weights, biases: a few KB) are decoded to f32 once.
 *  - Every tensor the architecture needs was found, has the shape the config
 *    implies and a dtype the engine can multiply; otherwise sl_model_open
 *    fails with one line naming the tensor or config field.
 *  - A model is immutable after open: any number of sessions (runtime.h) may
 *    share it.
 */
#ifndef SILICA_MODEL_H
#define SILICA_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_arch {
    SL_ARCH_LLAMA = 0,
    SL_ARCH_MISTRAL,
    SL_ARCH_QWEN2,
    SL_ARCH_QWEN3,
    SL_ARCH_GEMMA,
    SL_ARCH_GEMMA2,
    SL_ARCH_GEMMA3,
    SL_ARCH_PHI3,
    SL_ARCH_COUNT
} sl_arch;

/* "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3" */
SL_API const char *sl_arch_name(sl_arch a);
/* Comma-separated list of the model_type values the engine runs. */
SL_API const char *sl_arch_supported(void);

typedef enum sl_rope_type {
    SL_ROPE_DEFAULT = 0,
    SL_ROPE_LINEAR,
    SL_ROPE_DYNAMIC,
    SL_ROPE_LLAMA3,
    SL_ROPE_YARN,
    SL_ROPE_LONGROPE
} sl_rope_type;

typedef enum sl_act { SL_ACT_SILU = 0, SL_ACT_GELU_TANH, SL_ACT_GELU } sl_act;

#define SL_ROPE_MAX_FACTORS 512

typedef struct sl_rope_config {
    sl_rope_type type;
    double theta;                 /* base */
    double factor;                /* linear / dynamic / llama3 / yarn */
    double low_freq_factor;       /* llama3 */
    double high_freq_factor;      /* llama3 */
    int64_t original_max_pos;     /* llama3 / yarn / longrope / dynamic (0 = max_position_embeddings) */
    double beta_fast, beta_slow;  /* yarn */
    double mscale, mscale_all_dim;/* yarn (0 = absent) */
    double attention_factor;      /* yarn / longrope (0 = derive as transformers does) */
    bool truncate;                /* yarn */
    int n_factors;                /* longrope: rotary_dim / 2 */
    float short_factor[SL_ROPE_MAX_FACTORS];
    float long_factor[SL_ROPE_MAX_FACTORS];
} sl_rope_config;

typedef struct sl_model_config {
    sl_arch arch;
    int vocab_size, hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim;
    int rotary_dim;               /* head_dim * partial_rotary_factor */
    int64_t max_position_embeddings;
    float norm_eps;
    sl_act act;
    bool tie_embeddings;
    bool attn_qkv_bias;           /* biases on q, k, v */
    bool attn_o_bias;             /* bias on o */
    bool mlp_bias;
    bool qk_norm;                 /* qwen3, gemma3: RMSNorm over head_dim before RoPE */
    bool norm_plus_one;           /* gemma family: x * (1 + w) */
    bool sandwich_norms;          /* gemma2/3: post-attention and pre/post feed-forward norms */
    bool fused_qkv;               /* phi3: qkv_proj and gate_up_proj */
    bool rope_adjacent;           /* GGUF llama: rotate pairs (2i, 2i+1); convert_hf_to_gguf permuted the
                                     Q/K rows so that pair holds HF's (i, i + d/2): same result, no copy */
    float embed_scale;            /* gemma: sqrt(hidden); else 1 */
    float attn_scale;             /* score multiplier */
    float attn_softcap;           /* 0 = none */
    float final_softcap;          /* 0 = none */
    int sliding_window;           /* 0 = none */
    bool *layer_sliding;          /* [n_layers] */
    sl_rope_config rope;          /* full-attention layers */
    sl_rope_config rope_local;    /* sliding layers (gemma3: own base); == rope elsewhere */
    int32_t eos_ids[8];
    int n_eos;
    int32_t bos_id;               /* -1 if none */
} sl_model_config;

typedef struct sl_model sl_model;

/* Parse config.json (a cJSON object) for the architecture.  `where` names the
 * file in messages.  The caller frees with sl_model_config_free. */
struct cJSON;
SL_API int sl_model_config_parse(const struct cJSON *config, const char *where, sl_model_config *out, sl_error *err);
SL_API void sl_model_config_free(sl_model_config *c);

/* Open a model directory (config.json + weights in any supported container,
 * an mlx-lm directory with quantized weights included), a weights file whose
 * directory holds config.json, or a llama-architecture GGUF file (its
 * metadata is the config). */
SL_API int sl_model_open(const char *path, sl_model **out, sl_error *err);
SL_API void sl_model_close(sl_model *m);
SL_API const sl_model_config *sl_model_get_config(const sl_model *m);
/* Bytes of weights mapped (the sum of the bound tensors). */
SL_API uint64_t sl_model_weight_bytes(const sl_model *m);

#ifdef __cplusplus
}
#endif
#endif
