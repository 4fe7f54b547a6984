/*
 * reg_meta.c — what a stored version is: its format (hf / mlx / torch /
 * gguf / npz), quantization, parameter count and a config summary.
 *
 * Invariants: reads headers only (sl_checkpoint_open maps, never copies);
 * a model that cannot be opened still gets a format from its file names and
 * leaves params at 0 — describing never fails a pull or an import.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "registry/reg_impl.h"
#include "silica/checkpoint.h"

static const char *k_cfg_keys[] = {"model_type", "architectures", "hidden_size", "num_hidden_layers",
                                   "num_attention_heads", "num_key_value_heads", "vocab_size", "torch_dtype",
                                   "quantization", NULL};

static const char *dtype_short(const char *torch_dtype) {
    if (!torch_dtype) return NULL;
    if (!strcmp(torch_dtype, "bfloat16")) return "bf16";
    if (!strcmp(torch_dtype, "float16")) return "f16";
    if (!strcmp(torch_dtype, "float32")) return "f32";
    return torch_dtype;
}

void reg_describe(sl_reg_version *v, const char *dir, bool deep) {
    bool st = false, gguf = false, torch = false, npz = false;
    for (size_t i = 0; i < v->n_files; i++) {
        const char *p = v->files[i].path;
        st |= sl_str_ends_with(p, ".safetensors");
        gguf |= sl_str_ends_with(p, ".gguf");
        torch |= sl_str_ends_with(p, ".bin") || sl_str_ends_with(p, ".pt") || sl_str_ends_with(p, ".pth");
        npz |= sl_str_ends_with(p, ".npz");
    }
    int bits = 0, group = 0;
    cJSON *cfg = NULL;
    char *cpath = (dir && sl_path_is_dir(dir)) ? sl_fmt("%s/config.json", dir) : NULL;
    char *text = NULL;
    size_t len = 0;
    if (cpath && sl_path_exists(cpath) && !sl_read_file(cpath, 16u << 20, &text, &len, NULL)) cfg = cJSON_Parse(text);
    free(text);
    free(cpath);
    const char *tdt = NULL;
    if (cJSON_IsObject(cfg)) {
        cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization");
        if (!q) q = cJSON_GetObjectItemCaseSensitive(cfg, "quantization_config");
        cJSON *b = cJSON_GetObjectItemCaseSensitive(q, "bits"), *g = cJSON_GetObjectItemCaseSensitive(q, "group_size");
        if (cJSON_IsNumber(b)) bits = b->valueint;
        if (cJSON_IsNumber(g)) group = g->valueint;
        cJSON *d = cJSON_GetObjectItemCaseSensitive(cfg, "torch_dtype");
        if (!cJSON_IsString(d)) d = cJSON_GetObjectItemCaseSensitive(cfg, "dtype");
        if (cJSON_IsString(d)) tdt = d->valuestring;
        cJSON *sum = cJSON_CreateObject();
        for (int k = 0; k_cfg_keys[k]; k++) {
            cJSON *x = cJSON_GetObjectItemCaseSensitive(cfg, k_cfg_keys[k]);
            if (x) cJSON_AddItemToObject(sum, k_cfg_keys[k], cJSON_Duplicate(x, 1));
        }
        free(v->config);
        v->config = cJSON_PrintUnformatted(sum);
        cJSON_Delete(sum);
    }
    bool mlx_quant = cJSON_IsObject(cfg) && cJSON_GetObjectItemCaseSensitive(cfg, "quantization") && bits > 0;
    free(v->format);
    v->format = strdup(gguf ? "gguf" : st ? (mlx_quant ? "mlx" : "hf") : torch ? "torch" : npz ? "npz" : "other");
    char qbuf[48] = "";
    if (bits > 0) snprintf(qbuf, sizeof qbuf, "%dbit%s%.0d", bits, group ? "-g" : "", group);
    else if (tdt) snprintf(qbuf, sizeof qbuf, "%s", dtype_short(tdt));

    /* parameters (and the dominant dtype when the config does not say) */
    sl_checkpoint *ck = NULL;
    if (deep && dir && (st || gguf || torch || npz)) {
        if (sl_checkpoint_open(dir, &ck, NULL)) ck = NULL;
    }
    if (ck) {
        uint64_t params = 0, best_bytes = 0;
        uint64_t by_dtype[SL_DTYPE_COUNT] = {0};
        for (size_t i = 0; i < ck->n_tensors; i++) {
            const sl_tensor *t = &ck->tensors[i];
            params += sl_tensor_params(ck, t, NULL, NULL);   /* logical, as mlx-lm counts */
            if ((unsigned)t->dtype < SL_DTYPE_COUNT) by_dtype[t->dtype] += t->nbytes;
        }
        v->params = (int64_t)params;
        if (!qbuf[0] || gguf) {
            int best = -1;
            for (int d = 1; d < SL_DTYPE_COUNT; d++)
                if (by_dtype[d] > best_bytes) { best_bytes = by_dtype[d]; best = d; }
            if (best >= 0) snprintf(qbuf, sizeof qbuf, "%s", sl_dtype_name((sl_dtype)best));
        }
        sl_checkpoint_close(ck);
    }
    cJSON_Delete(cfg);
    free(v->quant);
    v->quant = qbuf[0] ? strdup(qbuf) : NULL;
}
