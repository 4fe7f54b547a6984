/*
 * gpu_common.c — what every build has, with or without the GPU engine:
 * parsing a --device value.
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
