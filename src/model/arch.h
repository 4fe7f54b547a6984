/*
 * arch.h — the architecture table: everything silica knows per model family,
 * in one place, for every reader, writer, the estimator and the engine.
 * Private to libsilica (src/model, src/convert, src/estimate).
 *
 * Per family: config.json's model_type and architectures[0]; llama.cpp's
 * general.architecture; mlx-lm's module; transformers' defaults the engine
 * needs (RoPE base, activation, tied head, softcapping, sliding window and its
 * layer pattern); the layout quirks (norm x(1 + w), Q/K row permutation in
 * GGUF, q/k norms, sandwich norms, fused qkv / gate_up, qkv biases).  Then the
 * two maps every GGUF path shares: tensor names (transformers <-> llama.cpp)
 * and GGUF metadata -> config.json (sl_arch_gguf_config), so `run`, `fit`
 * and `convert` read one GGUF one way.
 *
 * Sources of the facts: transformers' models/<family>/configuration_*.py
 * (defaults), llama.cpp's convert_hf_to_gguf.py, gguf-py/gguf/constants.py
 * and src/llama-model.cpp (GGUF keys, tensor names, llama.cpp's defaults).
 *
 * Invariants: the table is static and complete for sl_arch (one row per
 * enum value, in enum order); lookups never allocate.
 */
#ifndef SILICA_MODEL_ARCH_H
#define SILICA_MODEL_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "silica/checkpoint.h"
#include "silica/model.h"

struct cJSON;

/* Which layers attend through a sliding window when config.json has no layer_types. */
typedef enum sl_swa_rule {
    SL_SWA_NONE = 0,     /* none */
    SL_SWA_ALL,          /* every layer once sliding_window is set (mistral) */
    SL_SWA_PERIOD,       /* layer l slides unless (l + 1) % period == 0 (gemma2: 2, gemma3: 6) */
    SL_SWA_QWEN,         /* use_sliding_window and l >= max_window_layers */
} sl_swa_rule;

/* How the GGUF writer orders the RoPE keys (convert_hf_to_gguf's per-class order). */
typedef enum sl_gguf_rope_layout {
    SL_GGUF_ROPE_LLAMA = 0,  /* rope.freq_base, rope.dimension_count, scaling */
    SL_GGUF_ROPE_GEMMA,      /* rope.freq_base only when it is not llama.cpp's 10000 */
    SL_GGUF_ROPE_GEMMA3,     /* scaling, rope.freq_base, rope.freq_base_swa */
    SL_GGUF_ROPE_PHI3,       /* original_context_length, dimension_count, freq_base, sliding_window, attn_factor */
} sl_gguf_rope_layout;

typedef struct sl_arch_info {
    sl_arch id;
    const char *model_type;      /* config.json model_type */
    const char *hf_class;        /* config.json architectures[0] */
    const char *gguf_arch;       /* llama.cpp general.architecture (mistral is written as llama) */
    const char *mlx_module;      /* mlx-lm module converting it; NULL = no MLX conversion rules here */
    int tied_default;            /* mlx-lm: tie_word_embeddings when absent: 1, 0; -1 = always tied (no lm_head) */
    bool tied_hf;                /* transformers: tie_word_embeddings when absent */
    bool drop_inv_freq;          /* mlx-lm's sanitize drops *self_attn.rotary_emb.inv_freq */
    double rope_theta;           /* default RoPE base */
    double rope_local_theta;     /* sliding layers' own base (gemma3); 0 = the same RoPE as full layers */
    const char *act;             /* default activation */
    bool gemma;                  /* hidden_activation key, embeddings x sqrt(hidden), norms x(1 + w) */
    bool qkv_bias;               /* q/k/v biases always (qwen2), else attention_bias */
    bool mlp_bias_key;           /* mlp_bias read from config.json (llama) */
    bool attn_bias_key;          /* attention_bias read from config.json */
    bool qk_norm;                /* RMSNorm over head_dim on q and k */
    bool sandwich_norms;         /* post-attention and pre/post feed-forward norms */
    bool fused_qkv;              /* qkv_proj and gate_up_proj (phi3) */
    bool gguf_permute_qk;        /* convert_hf_to_gguf permutes Q/K rows to adjacent pairs */
    bool softcap;                /* attn/final_logit_softcapping and query_pre_attn_scalar are read */
    double attn_softcap, final_softcap;   /* their defaults (0 = none) */
    sl_swa_rule swa;
    int swa_period;              /* SL_SWA_PERIOD: default period (config sliding_window_pattern overrides) */
    int sliding_window;          /* default window when layers slide and config has none (0 = required) */
    sl_gguf_rope_layout gguf_rope;
} sl_arch_info;

/* Row of an arch (NULL for an invalid value). */
const sl_arch_info *sl_arch_get(sl_arch a);
/* By config.json model_type / GGUF general.architecture; NULL when unknown. */
const sl_arch_info *sl_arch_by_model_type(const char *model_type);
const sl_arch_info *sl_arch_by_gguf(const char *gguf_arch);
/* "llama, mistral, ..." (every model_type), and the GGUF architectures. */
const char *sl_arch_gguf_supported(void);

/* transformers tensor name -> llama.cpp's (into buf); NULL when it has none. */
const char *sl_arch_gguf_name(const sl_arch_info *a, const char *hf, char *buf, size_t len);
/* llama.cpp tensor name -> transformers' (into buf); NULL when it has none. */
const char *sl_arch_hf_name(const sl_arch_info *a, const char *gguf, char *buf, size_t len);

/* The config.json (a new cJSON object) a GGUF stands for: <arch>.* keys with
 * llama.cpp's defaults and semantics, tied head from the tensors, RoPE factor
 * tensors (rope_freqs, rope_factors_long/short) as RoPE settings.  f32 keys
 * become the shortest decimal that reads back as that f32 (1e-05).  *arch is
 * the table row. */
int sl_arch_gguf_config(const sl_checkpoint *ck, const sl_arch_info **arch, struct cJSON **out, sl_error *err);

/* The plain key map only (model_type = general.architecture), for tools that
 * size models of families the table does not know; NULL without an architecture. */
struct cJSON *sl_arch_gguf_keys(const sl_checkpoint *ck);

/* Sliding layers for a family without layer_types: out[l] for l < n. */
int sl_arch_sliding_layers(const sl_arch_info *a, const struct cJSON *cfg, const char *where, int n, bool *out,
                           sl_error *err);

/* Llama 3 RoPE as per-dimension frequency divisors (convert_hf_to_gguf's
 * rope_freqs.weight): out[i] for i < rotary_dim / 2. */
void sl_arch_llama3_factors(const sl_rope_config *r, int rotary_dim, float *out);

#endif
