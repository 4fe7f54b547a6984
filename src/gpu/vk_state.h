/*
 * vk_state.h — the GPU session's state, shared by vk_session.c (the forward
 * pass, the session's lifetime) and vk_upload.c (the model's weights, norms
 * and biases, the KV cache and the activations on the device).
 *
 * Invariants: a session's buffers are allocated once, at open (vk_upload_model),
 * and freed once (vk_session_free_buffers); weights keep their stored layout
 * (gw: format, row bytes, MLX scales / biases after the codes); every offset
 * into `vec` (norms, biases) is a float index, -1 for none.
 */
#ifndef SILICA_GPU_VK_STATE_H
#define SILICA_GPU_VK_STATE_H

#include "gpu/gpu_session.h"
#include "gpu/vk_impl.h"
#include "silica/runtime.h"

enum { FMT_F32, FMT_F16, FMT_BF16, FMT_Q8_0, FMT_Q4_0, FMT_AFFINE, FMT_MXFP4, FMT_MXFP8,   /* shaders/weights.glsl */
       FMT_Q4_1, FMT_Q5_0, FMT_Q5_1, FMT_Q4_K, FMT_Q5_K, FMT_Q6_K };

typedef struct gw {
    vk_buf b;
    uint32_t fmt, row_bytes, rows, cols;
    uint32_t bits, gs, sfmt, sc_off, bi_off;   /* MLX: scales (and biases) after the codes in b (bytes) */
    bool shared;                   /* the tied lm_head: embed's buffer */
} gw;

typedef struct glayer {
    gw wq, wk, wv, wqkv, wo, wg, wu, wgu, wd;
    int attn_norm, mlp_norm, post_attn, post_mlp, qn, kn;   /* offsets into vec, -1: none */
    int bq, bk, bv, bo, bg, bu, bd;
    int bqkv, bgu;                 /* the stacked wqkv / wgu's biases (bq / bg: theirs follow), -1: none */
} glayer;

/* How attn_split.comp takes a generated token on a layer: keys a chunk, chunks, query heads a workgroup. */
typedef struct { uint32_t chunk, nc, hpg; } attn_shape;

struct sl_gpu_session {
    vk_ctx c;
    const sl_model *m;
    const sl_model_config *cfg;
    int n_ctx, batch, qkv_w;
    int first;                     /* partial offload: layers first.. live here (0: all, with the embedding) */
    bool kv_f32;
    int kv_bits, kv_group;         /* quantized KV cache: 4 / 8 bits, group size; 0: f16 / f32 elements */
    uint32_t kv_unit;              /* KV row elements one qkrope workgroup stores (whole heads and groups) */
    sl_kv_plan *kvp;               /* per layer: sinks, spans and ring (sl_kv_layer_plan, as the CPU's cache) */
    uint64_t kv_pos;               /* one position of one layer, K and V with scales (sl_kv_pos_bytes) */
    gw embed, lm_head;
    glayer *L;
    int final_norm;
    vk_buf vec, *kc, *vc;
    vk_buf x, xb, xo, qkv, att, gu, hid;   /* device: [batch][...] */
    uint32_t norm_cnt;                     /* the word of xb after its rows: matmul.comp's fused norms' counter */
    vk_buf xq;                             /* device: a quantized matmul input, [batch][cols / 32][9 words] */
    vk_buf ids, rope, logits, staging;     /* host-visible */
    vk_buf step;                           /* host-visible: the batch's first position (shaders' step[0]) */
    vk_buf part;                           /* device: attn_split.comp's partials, [tokens][H][nc_max][D + 2] */
    uint32_t attn_chunk, attn_nc_max;      /* keys a chunk (0: by the keys, attn_shape_at), chunks a token at most (attn_plan) */
    uint32_t attn_direct;                  /* a generated token's keys up to this many: one chunk (ATTN_DIRECT_KEYS) */
    bool reuse;                            /* generation reuses its recording (SILICA_GPU_REUSE, default on) */
    bool fuse;                             /* norms / GLU / attention write xq (SILICA_GPU_FUSE, default on; fused_qk) */
    bool kept_hx, kept_logits;             /* the kept recording's shape: hidden states in, logits out, */
    attn_shape *kept_attn;                 /* and each layer's attention shape */
    uint64_t kv_bytes;
    bool prof;
    uint32_t row_threads;          /* SILICA_GPU_ROW_THREADS: matmul.comp's team width, fixed (0: by the row) */
    uint32_t attn_heads;           /* attn_split.comp's query heads a workgroup at most in generation (SILICA_GPU_ATTN_HEADS; 0: by the keys) */
    uint32_t attn_heads_prompt;    /* the same for prompts (ATTN_HEADS_PROMPT, or SILICA_GPU_ATTN_HEADS) */
    vk_host_stats host[VK_PHASES];
};

#define ATTN_SPLIT_TOKENS 1   /* batches of up to this many tokens (generation) split their keys into chunks */

/* The KV row elements one qkrope.comp workgroup stores: whole heads (head_dim
 * D) holding whole quantization groups (group: 0 without), lcm(D, group). */
static inline uint32_t kv_unit(int D, int group) {
    if (!group) return (uint32_t)D;
    uint32_t a = (uint32_t)D, b = (uint32_t)group;
    while (b) {
        uint32_t r = a % b;
        a = b, b = r;
    }
    return (uint32_t)D / a * (uint32_t)group;
}

/* Bytes of one position's K (or V) row elements (codes when quantized) on the device, of one position's K and V
 * with their groups' scales and biases (sl_kv_pos_bytes, as the CPU's cache), and of layer l's whole cache. */
static inline uint64_t kv_row_bytes(const sl_gpu_session *g) {
    uint64_t row = (uint64_t)g->cfg->n_kv_heads * (uint64_t)g->cfg->head_dim;
    return g->kv_bits ? row * (uint64_t)g->kv_bits / 8 : row * (g->kv_f32 ? 4 : 2);
}
static inline uint64_t kv_pos_bytes(const sl_gpu_session *g) { return g->kv_pos; }   /* the session's sl_kv_pos_bytes */
static inline uint64_t kv_slots(const sl_gpu_session *g, int l) { return (uint64_t)(g->kvp[l].sink + g->kvp[l].ring); }
static inline uint64_t kv_layer_bytes(const sl_gpu_session *g, int l) { return kv_pos_bytes(g) * kv_slots(g, l); }


/* vk_upload.c */
int vk_check_supported(const sl_model *m, const sl_gpu_session_opts *o, sl_error *err);
int vk_upload_model(sl_gpu_session *g, sl_error *err);
int vk_layers_that_fit(sl_gpu_session *g);
void vk_session_free_buffers(sl_gpu_session *g);

#endif
