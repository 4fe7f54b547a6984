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
 */
#ifndef SILICA_GPU_SESSION_H
#define SILICA_GPU_SESSION_H

#include <stddef.h>

#include "silica/dtype.h"
#include "silica/gpu.h"
#include "silica/model.h"

typedef struct sl_gpu_session sl_gpu_session;

/* What the GPU engine needs of a session's options (sl_session_opts, with
 * the session's defaults applied): the engine refuses what it cannot run. */
typedef struct sl_gpu_session_opts {
    int n_ctx;
    sl_dtype kv_dtype;   /* SL_F16 or SL_F32 */
    int kv_bits;         /* 0, or quantized KV (refused) */
    int max_kv;          /* 0, or a rotating KV cache (refused) */
    sl_device_sel device;
} sl_gpu_session_opts;

int sl_gpu_session_open(const sl_model *m, const sl_gpu_session_opts *o, int batch, sl_gpu_session **out, char *note,
                        size_t note_cap, sl_error *err);
int sl_gpu_session_eval(sl_gpu_session *g, const int32_t *ids, int n, int pos, bool all_logits, float *logits,
                        sl_error *err);
void sl_gpu_session_free(sl_gpu_session *g);
/* The device's name ("llvmpipe (LLVM 15.0.6, 256 bits)"). */
const char *sl_gpu_session_device(const sl_gpu_session *g);
/* Bytes of the KV cache on the device. */
uint64_t sl_gpu_session_kv_bytes(const sl_gpu_session *g);

#endif
