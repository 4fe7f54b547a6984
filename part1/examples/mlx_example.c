/*
 * mlx_example.c — part 1 example: open an MLX model directory (what mlx-lm
 * writes: model*.safetensors, model.safetensors.index.json, config.json) with
 * libsilica and print every tensor plus a summary of config.json.
 *
 *     usage: mlx_example MODEL_DIR
 *
 * Output (one item per line, easy to grep or parse):
 *     format safetensors
 *     tensor <name> <dtype> [<d0>,<d1>,...] <nbytes>
 *     config <key> <json value>          (only the keys present)
 *     metadata <key> <json value>
 *     total <n_tensors> tensors <params> params <bytes> bytes
 *
 * <params> is the logical parameter count (sl_checkpoint_params): a 4-bit
 * MLX weight's packed uint32 words count 8 parameters each and its scales
 * and biases none, as mlx-lm counts them.
 *
 * Invariants: opening maps the files read-only; nothing here touches tensor
 * bytes.  On any failure it prints libsilica's one-line message to stderr and
 * exits 2, like the silica CLI.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "silica/silica.h"

/* The config.json keys worth showing for a language model (mlx-lm keeps the
 * Hugging Face names and adds "quantization" for quantized models). */
static const char *const k_config_keys[] = {
    "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "vocab_size", "tie_word_embeddings", "quantization", NULL};

static void print_json_line(const char *kind, const char *key, const cJSON *v) {
    char *s = cJSON_PrintUnformatted(v);
    printf("%s %s %s\n", kind, key, s ? s : "?");
    cJSON_free(s);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    sl_error err = {0};
    sl_checkpoint *ck = NULL;
    if (sl_checkpoint_open(argv[1], &ck, &err) != SL_OK) {
        fprintf(stderr, "mlx_example: error: %s\n", err.msg);
        return 2;
    }

    printf("format %s\n", sl_format_name(ck->format));
    uint64_t params = sl_checkpoint_params(ck), bytes = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        printf("tensor %s %s [", t->name, sl_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf("%s%" PRId64, d ? "," : "", t->shape[d]);
        printf("] %" PRIu64 "\n", t->nbytes);
        bytes += t->nbytes;
    }
    if (ck->config) {
        for (int k = 0; k_config_keys[k]; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(ck->config, k_config_keys[k]);
            if (v) print_json_line("config", k_config_keys[k], v);
        }
    }
    for (const cJSON *v = ck->metadata->child; v; v = v->next) print_json_line("metadata", v->string, v);
    printf("total %zu tensors %" PRIu64 " params %" PRIu64 " bytes\n", ck->n_tensors, params, bytes);

    sl_checkpoint_close(ck);
    return 0;
}
