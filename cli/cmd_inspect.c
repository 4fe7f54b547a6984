/*
 * cmd_inspect.c — `silica inspect PATH [--json]`: what a checkpoint holds.
 * Reads headers only (tensors are views into mappings, never touched).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *k_help =
    "usage: silica inspect PATH [--json]\n\n"
    "List the tensors (name, dtype, shape, bytes, file), metadata and totals of a\n"
    "checkpoint: a safetensors, PyTorch (.bin/.pt/.pth), NumPy (.npy/.npz) or GGUF\n"
    "file, or a model directory (sharded with an index.json, config.json summarised).\n\n"
    "options:\n"
    "  --json   one JSON object: {\"format\", \"tensors\": [{\"name\", \"dtype\", \"shape\",\n"
    "           \"nbytes\", \"file\"}], \"metadata\", \"total_bytes\", \"total_params\"}\n"
    "           total_params counts logical parameters: MLX quantized weights unpacked\n"
    "           (cols x 32 / bits), their scales and biases not at all (as mlx-lm counts)\n"
    "  --help   this text\n";

static const char *k_config_keys[] = {"model_type", "architectures", "hidden_size", "num_hidden_layers",
                                      "num_attention_heads", "num_key_value_heads", "intermediate_size",
                                      "vocab_size", "max_position_embeddings", "torch_dtype", "dtype",
                                      "tie_word_embeddings", "quantization", NULL};

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("inspect", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("inspect", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage("inspect", "missing PATH");
    if (cli_resolve_store(&path, NULL)) return 2;   /* registry: PATH may be a store name */
    sl_error err = {0};
    sl_checkpoint *ck;
    if (sl_checkpoint_open(path, &ck, &err)) return cli_fail(&err);

    uint64_t total_bytes = 0, total_params = sl_checkpoint_params(ck);   /* logical: quantized words unpacked */
    for (size_t i = 0; i < ck->n_tensors; i++) total_bytes += ck->tensors[i].nbytes;
    cJSON *summary = NULL;
    if (ck->config) {
        summary = cJSON_CreateObject();
        for (int k = 0; k_config_keys[k]; k++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(ck->config, k_config_keys[k]);
            if (v) cJSON_AddItemToObject(summary, k_config_keys[k], cJSON_Duplicate(v, 1));
        }
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "format", sl_format_name(ck->format));
        cJSON_AddStringToObject(o, "path", path);
        cJSON *arr = cJSON_AddArrayToObject(o, "tensors");
        for (size_t i = 0; i < ck->n_tensors; i++) {
            const sl_tensor *t = &ck->tensors[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", t->name);
            cJSON_AddStringToObject(e, "dtype", sl_dtype_name(t->dtype));
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
            cJSON_AddNumberToObject(e, "nbytes", (double)t->nbytes);
            cJSON_AddStringToObject(e, "file", sl_path_basename(ck->files[t->file]));
            cJSON_AddItemToArray(arr, e);
        }
        cJSON_AddItemToObject(o, "metadata", cJSON_Duplicate(ck->metadata, 1));
        if (summary) cJSON_AddItemToObject(o, "config", summary);
        cJSON_AddNumberToObject(o, "total_bytes", (double)total_bytes);
        cJSON_AddNumberToObject(o, "total_params", (double)total_params);
        cli_print_json(o);
    } else {
        char hb[32], hp[40] = "";
        if (total_params >= 1000) {   /* "23077376 (23.1 M)" */
            char c[32];
            sl_format_count(total_params, c, sizeof c);
            snprintf(hp, sizeof hp, " (%s)", c);
        }
        printf("path:    %s\nformat:  %s\nfiles:   %zu\ntensors: %zu\nparams:  %" PRIu64 "%s\nbytes:   %" PRIu64
               " (%s)\n",
               path, sl_format_name(ck->format), ck->n_files, ck->n_tensors, total_params, hp, total_bytes,
               cli_human_bytes(total_bytes, hb, sizeof hb));
        if (summary && summary->child) {
            printf("config:\n");
            for (cJSON *v = summary->child; v; v = v->next) {
                char *s = cJSON_PrintUnformatted(v);
                printf("  %-24s %s\n", v->string, s ? s : "");
                cJSON_free(s);
            }
        }
        if (ck->metadata->child) {
            printf("metadata:\n");
            for (cJSON *v = ck->metadata->child; v; v = v->next) {
                char *s = cJSON_PrintUnformatted(v);
                size_t l = s ? strlen(s) : 0;
                printf("  %-32s %.*s%s\n", v->string, l > 96 ? 96 : (int)l, s ? s : "", l > 96 ? "..." : "");
                cJSON_free(s);
            }
        }
        cJSON_Delete(summary);
        printf("\n%-56s %-8s %-22s %14s  %s\n", "NAME", "DTYPE", "SHAPE", "BYTES", "FILE");
        for (size_t i = 0; i < ck->n_tensors; i++) {
            const sl_tensor *t = &ck->tensors[i];
            char shape[128];
            int o = snprintf(shape, sizeof shape, "[");
            for (int d = 0; d < t->ndim && o < (int)sizeof shape - 24; d++)
                o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%" PRId64, d ? ", " : "", t->shape[d]);
            snprintf(shape + o, sizeof shape - (size_t)o, "]");
            printf("%-56s %-8s %-22s %14" PRIu64 "  %s\n", t->name, sl_dtype_name(t->dtype), shape, t->nbytes,
                   sl_path_basename(ck->files[t->file]));
        }
    }
    sl_checkpoint_close(ck);
    return 0;
}
