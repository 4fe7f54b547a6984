/*
 * silica/gpu.h — the GPU engine (Vulkan compute): which device a session
 * runs on, and what the Vulkan devices of this machine are.
 *
 * Invariants:
 *  - The CPU engine is the reference; the GPU engine computes the same
 *    forward pass (f32 arithmetic, an f16 or f32 KV cache on the device) and
 *    is tested against it (logits within 1e-3 relative).
 *  - The Vulkan loader is opened at run time: a build with the GPU engine
 *    runs where no loader or no device exists; asking for the GPU there is
 *    an error (SL_EUNSUPPORTED, one line), `auto` falls back to the CPU.
 *  - A build without the GPU engine (SILICA_VULKAN=OFF) answers every call
 *    here: no devices, sl_gpu_built() false.
 *  - Device indices are the order vkEnumeratePhysicalDevices gives, the
 *    order `silica doctor` lists them in.
 */
#ifndef SILICA_GPU_H
#define SILICA_GPU_H

#include <stdbool.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_device_kind {
    SL_DEVICE_CPU = 0,   /* the CPU engine (the default) */
    SL_DEVICE_AUTO,      /* the first discrete or integrated GPU, else the CPU */
    SL_DEVICE_GPU        /* a Vulkan device (index, or the first GPU, else any device, e.g. lavapipe) */
} sl_device_kind;

typedef struct sl_device_sel {
    sl_device_kind kind;
    int index;           /* SL_DEVICE_GPU: the device index, -1 = choose */
} sl_device_sel;

/* "auto", "cpu", "gpu" or "gpu:N" (N >= 0).  Message names the value. */
SL_API int sl_device_parse(const char *s, sl_device_sel *out, sl_error *err);

/* Whether this build has the GPU engine. */
SL_API bool sl_gpu_built(void);

#define SL_GPU_MAX_HEAPS 16

typedef struct sl_gpu_device_info {
    int index;
    char name[256];
    const char *type;            /* "discrete", "integrated", "virtual", "cpu" or "other" */
    uint32_t vendor_id, device_id;
    char api_version[16];        /* "1.3.230" */
    char driver[128];            /* driver name and info, when the driver tells */
    int n_heaps;
    uint64_t heap_bytes[SL_GPU_MAX_HEAPS];
    bool heap_device_local[SL_GPU_MAX_HEAPS];
    uint32_t subgroup_size;      /* 0: unknown (Vulkan 1.0 device) */
    bool fp16;                   /* shaderFloat16 (arithmetic) */
    bool int8;                   /* shaderInt8 (arithmetic) */
    bool int_dot;                /* shaderIntegerDotProduct (VK_KHR_shader_integer_dot_product): packed int8 dots */
    bool storage16;              /* 16-bit storage buffers */
    bool storage8;               /* 8-bit storage buffers */
    bool usable;                 /* Vulkan 1.1, a compute queue, subgroup arithmetic: the GPU engine runs */
} sl_gpu_device_info;

/* The Vulkan devices (malloc'd array, *n may be 0).  Fails (one line) when the
 * GPU engine is not built, no Vulkan loader can be opened, or the loader
 * cannot create an instance (no driver installed). */
SL_API int sl_gpu_devices(sl_gpu_device_info **out, int *n, sl_error *err);

/* The index of the device sel picks among d[0..n) as the GPU engine does
 * (gpu:N; else the first usable discrete or integrated GPU, CPU devices
 * such as lavapipe too with SILICA_VULKAN_CPU_DEVICES=1; gpu also takes any
 * usable device), or -1 with err set (one line). */
SL_API int sl_gpu_choose(const sl_gpu_device_info *d, int n, sl_device_sel sel, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
