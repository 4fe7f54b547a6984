/*
 * model/weights.h — what an open model holds: the checkpoint (owner of the
 * mappings), the parsed config and, per layer, views of every weight; and the
 * RoPE frequencies.  The interface of src/model for the engines that run it
 * (src/runtime's CPU forward pass, src/gpu's Vulkan one).
 *
 * Invariants: every sl_weight is a view into the checkpoint's mappings,
 * checked against the config when bound; 1-D norms and biases are f32
 * copies the model owns (freed by sl_model_close).
 */
#ifndef SILICA_MODEL_WEIGHTS_H
#define SILICA_MODEL_WEIGHTS_H

#include "kernels/matmul.h"
#include "silica/checkpoint.h"
#include "silica/model.h"

typedef struct sl_layer_weights {
    /* attention: separate q/k/v, or fused qkv (phi3) */
    sl_weight wq, wk, wv, wqkv, wo;
    float *bq, *bk, *bv, *bo;          /* f32 copies, NULL if absent */
    float *q_norm, *k_norm;            /* [head_dim] (qk_norm) */
    /* MLP: separate gate/up, or fused gate_up (phi3) */
    sl_weight w_gate, w_up, w_gate_up, w_down;
    float *b_gate, *b_up, *b_down;
    float *attn_norm;                  /* input_layernorm */
    float *post_attn_norm;             /* gemma2/3: post_attention_layernorm (on the attention output) */
    float *mlp_norm;                   /* llama: post_attention_layernorm; gemma2/3: pre_feedforward_layernorm */
    float *post_mlp_norm;              /* gemma2/3: post_feedforward_layernorm */
} sl_layer_weights;

struct sl_model {
    sl_checkpoint *ck;
    sl_model_config cfg;
    sl_weight embed;
    sl_weight lm_head;                 /* == embed when tied */
    float *final_norm;
    sl_layer_weights *layers;
    void **owned;                      /* f32 vectors to free */
    size_t n_owned, cap_owned;
    uint64_t weight_bytes;
    bool gguf;                         /* tensor names are GGUF's (sl_arch_gguf_name) */
};

/* RoPE: inverse frequencies (rotary_dim/2 floats) and the cos/sin multiplier
 * for a forward pass whose highest position is seq_len - 1 (dynamic and
 * longrope depend on it, as in transformers). */
void sl_rope_inv_freq(const sl_rope_config *r, int rotary_dim, int64_t max_pos, int64_t seq_len, float *inv_freq,
                      float *attn_factor);

#endif
