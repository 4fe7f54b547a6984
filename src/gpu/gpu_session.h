/*
 * gpu_session.h — the GPU engine as the session (src/runtime/session.c)
 * sees it: a backend that takes over the forward pass and the KV cache.
 * The interface of src/gpu for src/runtime (which depends on it, not the
 * other way round: the session's options arrive as sl_gpu_session_opts).
 *
 * Invariants:
 *  - sl_gpu_session_open decides where a session runs: *out set = the GPU;
 *    *out NULL and 0 returned = the CPU (SL_DEVICE_AUTO found no usable GPU,
 *    or the GPU engine cannot run this model or these options: note says
 *    why, one line); an error = an explicit GPU request that cannot be met.
 *  - sl_gpu_session_eval has the contract of sl_session_eval for ids the
 *    caller already checked (range, context): tokens at pos.., logits of all
 *    positions or the last one; the KV cache lives on the device.
 *  - With fit_layers, a model whose layers do not all fit the device's memory
 *    opens with fewer (the last ones that fit): sl_gpu_session_first_layer
 *    says where the device's part starts, the caller runs the rest.
 *  - With first_layer > 0 (partial offload, --gpu-layers) the device holds
 *    the weights and KV cache of layers first_layer.. only (no embedding):
 *    sl_gpu_session_eval_hidden takes the hidden states the CPU computed
 *    for layers 0..first_layer-1 (n <= batch rows of hidden_size floats).
 */
#ifndef SILICA_GPU_SESSION_H
#define SILICA_GPU_SESSION_H

#include <stddef.h>

#include "silica/dtype.h"
#include "silica/gpu.h"
#include "silica/model.h"
#include "silica/runtime.h"

typedef struct sl_gpu_session sl_gpu_session;

/* What the GPU engine needs of a session's options (sl_session_opts, with
 * the session's defaults applied): the engine refuses what it cannot run. */
typedef struct sl_gpu_session_opts {
    int n_ctx;
    sl_dtype kv_dtype;   /* SL_F16 or SL_F32: the elements, or with kv_bits the scales and biases */
    int kv_bits;         /* 0, or 4 / 8: MLX affine codes as the CPU engine's cache stores them */
    int kv_group_size;   /* with kv_bits: the group size, resolved (sl_kv_group_size) */
    const sl_kv_plan *kv_plan;   /* per layer (all n_layers): its slots (sinks and a ring with a rotating
                                    cache), the session's plan (sl_kv_layer_plan) */
    uint64_t kv_pos_bytes;       /* one position of one layer, K and V, scales included (sl_kv_pos_bytes) */
    sl_device_sel device;
    int first_layer;     /* partial offload: layers first_layer.. and the head run here, the
                            hidden states arrive from the CPU (sl_gpu_session_eval_hidden); 0: all */
    bool fit_layers;     /* too little device memory for layers first_layer..: run as many of the
                            last layers as fit (at least one) instead of failing */
} sl_gpu_session_opts;

int sl_gpu_session_open(const sl_model *m, const sl_gpu_session_opts *o, int batch, sl_gpu_session **out, char *note,
                        size_t note_cap, sl_error *err);
int sl_gpu_session_eval(sl_gpu_session *g, const int32_t *ids, int n, int pos, bool all_logits, float *logits,
                        sl_error *err);
/* Partial offload: n (<= batch) rows of hidden states x, the output of layer
 * first_layer - 1 at positions pos.., through the rest of the model. */
int sl_gpu_session_eval_hidden(sl_gpu_session *g, const float *x, int n, int pos, bool all_logits, float *logits,
                               sl_error *err);
void sl_gpu_session_free(sl_gpu_session *g);
/* The device's name ("llvmpipe (LLVM 15.0.6, 256 bits)"). */
const char *sl_gpu_session_device(const sl_gpu_session *g);
/* The first layer the device runs (0: all; more than asked with fit_layers). */
int sl_gpu_session_first_layer(const sl_gpu_session *g);
/* Bytes of the KV cache on the device. */
uint64_t sl_gpu_session_kv_bytes(const sl_gpu_session *g);

#endif
