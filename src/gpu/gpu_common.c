/*
 * gpu_common.c — what every build has, with or without the GPU engine:
 * parsing a --device value, and which device it picks.
 */
#include <stdlib.h>
#include <string.h>

#include "silica/gpu.h"

int sl_device_parse(const char *s, sl_device_sel *out, sl_error *err) {
    out->kind = SL_DEVICE_CPU;
    out->index = -1;
    if (strcmp(s, "cpu") == 0) return 0;
    if (strcmp(s, "auto") == 0) {
        out->kind = SL_DEVICE_AUTO;
        return 0;
    }
    if (strncmp(s, "gpu", 3) == 0 && (s[3] == 0 || s[3] == ':')) {
        out->kind = SL_DEVICE_GPU;
        if (!s[3]) return 0;
        char *end;
        long v = strtol(s + 4, &end, 10);
        if (s[4] >= '0' && s[4] <= '9' && !*end && v <= 1024) {
            out->index = (int)v;
            return 0;
        }
    }
    return sl_errorf(err, SL_EINVAL, "--device must be auto, cpu, gpu or gpu:N (N a device index from `silica doctor`), got '%s'", s);
}

/* A device auto may take: a discrete or integrated GPU (SILICA_VULKAN_CPU_DEVICES=1:
 * CPU drivers such as lavapipe too, so tests can drive auto's GPU path). */
static bool is_gpu(const sl_gpu_device_info *d) {
    const char *any = getenv("SILICA_VULKAN_CPU_DEVICES");
    return strcmp(d->type, "discrete") == 0 || strcmp(d->type, "integrated") == 0 ||
           (any && strcmp(any, "1") == 0 && strcmp(d->type, "cpu") == 0);
}

int sl_gpu_choose(const sl_gpu_device_info *d, int n, sl_device_sel sel, sl_error *err) {
    if (sel.kind == SL_DEVICE_GPU && sel.index >= 0) {
        if (sel.index >= n)
            return sl_errorf(err, SL_EINVAL, "device index %d: there %s %d Vulkan device%s (see `silica doctor`)",
                             sel.index, n == 1 ? "is" : "are", n, n == 1 ? "" : "s"), -1;
        if (!d[sel.index].usable)
            return sl_errorf(err, SL_EUNSUPPORTED, "device %d, %s, has no Vulkan 1.1 compute queue with subgroup arithmetic", sel.index,
                             d[sel.index].name), -1;
        return sel.index;
    }
    for (int i = 0; i < n; i++)
        if (d[i].usable && is_gpu(&d[i])) return i;
    if (sel.kind == SL_DEVICE_GPU)
        for (int i = 0; i < n; i++)
            if (d[i].usable) return i;
    if (n == 0) sl_errorf(err, SL_EUNSUPPORTED, "no Vulkan device (the loader found no driver's device)");
    else if (sel.kind == SL_DEVICE_AUTO)
        sl_errorf(err, SL_EUNSUPPORTED, "no Vulkan GPU (%d device%s, none discrete or integrated: %s%s)", n,
                  n == 1 ? "" : "s", d[0].name, n > 1 ? ", ..." : "");
    else sl_errorf(err, SL_EUNSUPPORTED, "no usable Vulkan device (none has a Vulkan 1.1 compute queue with subgroup arithmetic)");
    return -1;
}
