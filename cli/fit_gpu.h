/*
 * fit_gpu.h — `silica fit --device gpu[:N]|auto [--device-memory SIZE]`
 * (fit_gpu.c): the device's memory and what of the model it holds.
 *
 * Invariants: a discrete GPU (or --device-memory SIZE, a GPU planned for)
 * is judged on its largest device-local heap with fit's margin, and the
 * number of layers that fit is sl_fit_offload_plan's; an integrated GPU or
 * a "cpu" Vulkan device (lavapipe) shares system memory, so the host budget
 * stands.  No loader / no device / an index out of range: one line, exit 2,
 * for an explicit gpu; `auto` falls back to the CPU budget with a note.
 */
#ifndef SILICA_CLI_FIT_GPU_H
#define SILICA_CLI_FIT_GPU_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "silica/gpu.h"
#include "silica/memory.h"

typedef struct fit_gpu {
    bool asked;              /* --device other than cpu, or --device-memory */
    bool found;              /* a device to report (or --device-memory) */
    bool shared;             /* integrated / cpu type: shares system memory */
    int index;               /* Vulkan device index, -1 for --device-memory */
    char name[256];
    const char *type;        /* "discrete", "integrated", "cpu", ... */
    char note[256];          /* auto's fallback, when it fell back */
    bool planned;            /* plan filled (a device with its own memory) */
    sl_fit_offload plan;
} fit_gpu;

/* Resolve --device (NULL: none) and --device-memory (0: none) into *g.
 * 0, or the exit status after one line. */
int fit_gpu_probe(const char *device, uint64_t device_memory, fit_gpu *g);
/* Plan the offload of m at e (its KV options kv).  0 or the exit status. */
int fit_gpu_plan(fit_gpu *g, const sl_fit_model *m, const sl_fit_estimate *e, const sl_fit_kv *kv);
/* The report's GPU lines; model_arg is MODEL as given, for the command. */
void fit_gpu_print(const fit_gpu *g, const char *model_arg);
/* The "gpu" object of --json (nothing when not asked). */
void fit_gpu_json(const fit_gpu *g, cJSON *o);
void fit_gpu_free(fit_gpu *g);

#endif
