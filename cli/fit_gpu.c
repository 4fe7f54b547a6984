/*
 * fit_gpu.c — the GPU part of `silica fit` (fit_gpu.h): which device,
 * how much memory it has of its own, and how many layers it holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fit_gpu.h"

static double gib(uint64_t b) { return (double)b / (double)SL_GIB; }

/* The largest device-local heap (0: none). */
static uint64_t local_heap(const sl_gpu_device_info *d) {
    uint64_t best = 0;
    for (int i = 0; i < d->n_heaps; i++)
        if (d->heap_device_local[i] && d->heap_bytes[i] > best) best = d->heap_bytes[i];
    return best;
}

int fit_gpu_probe(const char *device, uint64_t device_memory, fit_gpu *g) {
    memset(g, 0, sizeof *g);
    g->index = -1;
    sl_device_sel sel = {SL_DEVICE_CPU, -1};
    sl_error e = {0};
    if (device && sl_device_parse(device, &sel, &e)) return cli_usage("fit", "%s", e.msg);
    if (device_memory) {   /* a GPU planned for: no probe */
        g->asked = g->found = true;
        g->type = "discrete";
        snprintf(g->name, sizeof g->name, "a planned GPU (--device-memory)");
        g->plan.device_bytes = device_memory;
        return 0;
    }
    if (sel.kind == SL_DEVICE_CPU) return 0;
    g->asked = true;
    sl_gpu_device_info *devs = NULL;
    int n = 0, i = -1;
    if (sl_gpu_devices(&devs, &n, &e) == 0) i = sl_gpu_choose(devs, n, sel, &e);   /* as the engine picks */
    if (i < 0) {
        free(devs);
        sl_error_prefix(&e, "--device %s: ", device);
        if (sel.kind == SL_DEVICE_GPU) return cli_fail(&e);
        snprintf(g->note, sizeof g->note, "%.200s; judged for the CPU", e.msg);
        return 0;
    }
    const sl_gpu_device_info *d = &devs[i];
    g->found = true;
    g->index = i;
    g->type = d->type;   /* a string literal (vk_loader.c) */
    snprintf(g->name, sizeof g->name, "%s", d->name);
    g->shared = strcmp(d->type, "discrete") != 0;
    g->plan.device_bytes = local_heap(d);
    if (!g->shared && !g->plan.device_bytes) g->shared = true;   /* no device-local heap: host memory */
    free(devs);
    return 0;
}

int fit_gpu_plan(fit_gpu *g, const sl_fit_model *m, const sl_fit_estimate *e, const sl_fit_kv *kv) {
    if (!g->found || g->shared) return 0;
    sl_error err = {0};
    if (sl_fit_offload_plan(m, e, kv, g->plan.device_bytes, &g->plan, &err)) return cli_fail(&err);
    g->planned = true;
    return 0;
}

void fit_gpu_print(const fit_gpu *g, const char *model_arg) {
    if (g->note[0]) printf("device:   %s\n", g->note);
    if (!g->found) return;
    const sl_fit_offload *p = &g->plan;
    if (g->index >= 0) printf("device:   gpu:%d %s (%s)", g->index, g->name, g->type);
    else printf("device:   %s", g->name);
    if (g->shared) {
        printf(": shares system memory, the budget above applies\n");
        return;
    }
    printf(", %.2f GiB device-local, margin %.2f GiB\n", gib(p->device_bytes), gib(p->margin_bytes));
    char h[4][32];
    printf("  on the GPU  %12s  every layer (%d x %s) + output head %s + compute; the embedding stays on the CPU\n",
           cli_human_bytes(p->gpu_total_bytes, h[0], 32), p->n_layers,
           cli_human_bytes(p->n_layers ? p->layer_bytes[p->n_layers - 1] : 0, h[1], 32),
           cli_human_bytes(p->head_bytes, h[2], 32));
    printf("gpu:      %s\n", sl_fit_verdict_name(p->verdict));
    if (p->layers_fit == p->n_layers) {
        printf("          all %d layers fit: `silica run %s --device gpu`\n", p->n_layers, model_arg);
    } else if (p->layers_fit > 0) {
        printf("          %d of %d layers fit (GPU %s, RAM for the rest %s):\n"
               "          `silica run %s --device gpu --gpu-layers %d`\n",
               p->layers_fit, p->n_layers, cli_human_bytes(p->gpu_bytes, h[0], 32),
               cli_human_bytes(p->cpu_bytes, h[1], 32), model_arg, p->layers_fit);
    } else {
        printf("          not even one layer fits with the output head and compute buffers: run on the CPU\n");
    }
}

void fit_gpu_json(const fit_gpu *g, cJSON *o) {
    if (!g->asked) return;
    cJSON *j = cJSON_AddObjectToObject(o, "gpu");
    cJSON_AddBoolToObject(j, "found", g->found);
    if (g->note[0]) cJSON_AddStringToObject(j, "note", g->note);
    if (!g->found) return;
    cJSON_AddStringToObject(j, "device", g->name);
    if (g->index >= 0) cJSON_AddNumberToObject(j, "index", g->index);
    cJSON_AddStringToObject(j, "type", g->type);
    cJSON_AddBoolToObject(j, "shares_system_memory", g->shared);
    if (!g->planned) return;
    const sl_fit_offload *p = &g->plan;
    cJSON_AddNumberToObject(j, "device_bytes", (double)p->device_bytes);
    cJSON_AddNumberToObject(j, "margin_bytes", (double)p->margin_bytes);
    cJSON_AddStringToObject(j, "verdict", sl_fit_verdict_name(p->verdict));
    cJSON_AddNumberToObject(j, "total_bytes", (double)p->gpu_total_bytes);
    cJSON_AddNumberToObject(j, "n_layers", p->n_layers);
    cJSON_AddNumberToObject(j, "layers_fit", p->layers_fit);
    cJSON_AddNumberToObject(j, "gpu_layers_suggestion", p->layers_fit);   /* --gpu-layers K */
    cJSON_AddNumberToObject(j, "gpu_bytes", (double)p->gpu_bytes);
    cJSON_AddNumberToObject(j, "cpu_bytes", (double)p->cpu_bytes);
    cJSON_AddNumberToObject(j, "fixed_bytes", (double)p->fixed_bytes);
    cJSON_AddNumberToObject(j, "head_bytes", (double)p->head_bytes);
    cJSON_AddNumberToObject(j, "embed_bytes", (double)p->embed_bytes);
    cJSON_AddNumberToObject(j, "layer_kv_bytes", (double)p->layer_kv_bytes);
    cJSON *lb = cJSON_AddArrayToObject(j, "layer_bytes");
    cJSON *lw = cJSON_AddArrayToObject(j, "layer_weights_bytes");
    for (int i = 0; i < p->n_layers; i++) {
        cJSON_AddItemToArray(lb, cJSON_CreateNumber((double)p->layer_bytes[i]));
        cJSON_AddItemToArray(lw, cJSON_CreateNumber((double)p->layer_weights_bytes[i]));
    }
}

void fit_gpu_free(fit_gpu *g) {
    if (g->planned) sl_fit_offload_free(&g->plan);
}
