/*
 * gpu_stub.c — the GPU engine's entry points in a build without it
 * (SILICA_VULKAN=OFF, or AUTO without Vulkan headers or glslc): no devices;
 * `auto` runs on the CPU, `gpu` is an error naming the build option.
 */
#include <stdio.h>

#include "gpu/gpu_session.h"

#define NOT_BUILT "this silica was built without the GPU engine (cmake -DSILICA_VULKAN=ON needs the Vulkan headers and glslc)"

bool sl_gpu_built(void) { return false; }

int sl_gpu_devices(sl_gpu_device_info **out, int *n, sl_error *err) {
    *out = NULL;
    *n = 0;
    return sl_errorf(err, SL_EUNSUPPORTED, NOT_BUILT);
}

int sl_gpu_session_open(const sl_model *m, const sl_gpu_session_opts *o, int batch, sl_gpu_session **out, char *note,
                        size_t note_cap, sl_error *err) {
    (void)m, (void)batch;
    *out = NULL;
    if (o->device.kind == SL_DEVICE_GPU) return sl_errorf(err, SL_EUNSUPPORTED, "--device gpu: " NOT_BUILT);
    if (o->device.kind == SL_DEVICE_AUTO) snprintf(note, note_cap, "--device auto: %s; running on the CPU", NOT_BUILT);
    return 0;
}

int sl_gpu_session_eval(sl_gpu_session *g, const int32_t *ids, int n, int pos, bool all_logits, float *logits,
                        sl_error *err) {
    (void)g, (void)ids, (void)n, (void)pos, (void)all_logits, (void)logits;
    return sl_errorf(err, SL_EUNSUPPORTED, NOT_BUILT);
}
int sl_gpu_session_eval_hidden(sl_gpu_session *g, const float *x, int n, int pos, bool all_logits, float *logits,
                               sl_error *err) {
    (void)g, (void)x, (void)n, (void)pos, (void)all_logits, (void)logits;
    return sl_errorf(err, SL_EUNSUPPORTED, NOT_BUILT);
}
void sl_gpu_session_free(sl_gpu_session *g) { (void)g; }
const char *sl_gpu_session_device(const sl_gpu_session *g) { (void)g; return "cpu"; }
uint64_t sl_gpu_session_kv_bytes(const sl_gpu_session *g) { (void)g; return 0; }
int sl_gpu_session_first_layer(const sl_gpu_session *g) { (void)g; return 0; }
