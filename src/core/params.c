/*
 * params.c — the logical parameter count of a checkpoint: how many numbers
 * the unquantized model holds, whatever the storage.  One definition for
 * `inspect`, `fit`, the store's metadata and the part1 example.
 *
 * The rule is mlx-lm's (mlx_lm/utils.py get_total_parameters): a quantized
 * module counts weight.size * 32 / bits (its packed uint32 words unpacked)
 * plus its bias; the quantization constants (".scales", ".biases") are not
 * parameters.  GGUF block-quantized tensors already carry their logical
 * shape (gguf-py's ReaderTensor.n_elements), so their element count is it.
 *
 * Invariants: headers only (no tensor byte is read); the count of an MLX
 * quantized weight uses config.json's bits for its module (a per-module
 * {"bits"} object overrides the top-level one, as mlx-lm writes mixed
 * recipes), 4 when config.json says nothing (reported through *assumed).
 */
#include <stdio.h>
#include <string.h>

#include "silica/checkpoint.h"

static const cJSON *quant_cfg(const cJSON *config) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(config, "quantization");
    if (!cJSON_IsObject(q)) q = cJSON_GetObjectItemCaseSensitive(config, "quantization_config");
    return cJSON_IsObject(q) ? q : NULL;
}

static int valid_bits(const cJSON *b) {
    return cJSON_IsNumber(b) && b->valuedouble >= 1 && b->valuedouble <= 8 ? b->valueint : 0;
}

int sl_mlx_quant_bits(const cJSON *config, const char *tensor_name) {
    const cJSON *q = quant_cfg(config);
    if (!q) return 0;
    char mod[512];
    snprintf(mod, sizeof mod, "%s", tensor_name ? tensor_name : "");
    char *dot = strrchr(mod, '.');
    if (dot) *dot = 0;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(q, mod);
    int bits = cJSON_IsObject(e) ? valid_bits(cJSON_GetObjectItemCaseSensitive(e, "bits")) : 0;
    return bits ? bits : valid_bits(cJSON_GetObjectItemCaseSensitive(q, "bits"));
}

/* "<module>.<from>" -> does "<module>.<to>" exist in ck? */
static bool has_sibling(const sl_checkpoint *ck, const char *name, const char *from, const char *to) {
    size_t n = strlen(name), f = strlen(from);
    if (n < f || strcmp(name + n - f, from) != 0) return false;
    char sib[1024];
    if (n - f + strlen(to) >= sizeof sib) return false;
    snprintf(sib, sizeof sib, "%.*s%s", (int)(n - f), name, to);
    return sl_checkpoint_find(ck, sib) != NULL;
}

uint64_t sl_tensor_params(const sl_checkpoint *ck, const sl_tensor *t, int *bits, bool *assumed) {
    if (bits) *bits = 0;
    if (assumed) *assumed = false;
    if (has_sibling(ck, t->name, ".scales", ".weight") || has_sibling(ck, t->name, ".biases", ".weight"))
        return 0;   /* quantization constants of "<m>.weight" */
    if ((t->dtype == SL_U32 || t->dtype == SL_I32) && t->ndim >= 2 && has_sibling(ck, t->name, ".weight", ".scales")) {
        int b = sl_mlx_quant_bits(ck->config, t->name);
        if (!b) {
            b = 4;
            if (assumed) *assumed = true;
        }
        if (bits) *bits = b;
        return t->numel * 32 / (uint64_t)b;
    }
    return t->numel;
}

uint64_t sl_checkpoint_params(const sl_checkpoint *ck) {
    uint64_t n = 0;
    for (size_t i = 0; i < ck->n_tensors; i++) n += sl_tensor_params(ck, &ck->tensors[i], NULL, NULL);
    return n;
}

void sl_format_count(uint64_t n, char *buf, size_t cap) {
    static const char *const unit[] = {"K", "M", "B", "T"};
    if (n < 1000) {
        snprintf(buf, cap, "%llu", (unsigned long long)n);
        return;
    }
    double x = (double)n;
    int u = -1;
    while (x >= 999.5 && u < 3) {
        x /= 1000;
        u++;
    }
    snprintf(buf, cap, "%.*f %s", x < 9.995 ? 2 : x < 99.95 ? 1 : 0, x, unit[u]);
}
