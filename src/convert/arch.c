/*
 * arch.c — the architecture table (src/model/arch.c) as model conversion
 * uses it: lookups with conversion's messages, the tied head of a source
 * config, and mlx-lm's module order (the order of
 * tree_flatten(model.parameters()), which decides shard boundaries and the
 * order of per-layer entries in config.json's "quantization").
 *
 * Invariants: names are compared segment by segment with a fixed rank per
 * segment name (unknown segments sort after known ones, then by strcmp;
 * numeric segments by value), so the order is total.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"

/* Model types with mlx-lm conversion rules (model_type, comma-separated). */
static const char *mlx_supported(void) {
    static char buf[160];
    if (!buf[0]) {
        size_t o = 0;
        for (int i = 0; i < SL_ARCH_COUNT; i++) {
            const sl_arch_info *a = sl_arch_get((sl_arch)i);
            if (a->mlx_module) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", o ? ", " : "", a->model_type);
        }
    }
    return buf;
}

const sl_arch_info *sl_convert_arch(const char *model_type, const char *path, sl_error *err) {
    const sl_arch_info *a = sl_arch_by_model_type(model_type);
    if (a && a->mlx_module) return a;
    sl_errorf(err, SL_EUNSUPPORTED, "%s: %s model_type '%s' (supported: %s)", path,
              model_type ? "unsupported" : "config.json has no", model_type ? model_type : "", mlx_supported());
    return NULL;
}

const sl_arch_info *sl_convert_arch_gguf(const char *model_type, const char *path, sl_error *err) {
    const sl_arch_info *a = sl_arch_by_model_type(model_type);
    if (!a)
        sl_errorf(err, SL_EUNSUPPORTED, "%s: %s model_type '%s' (GGUF export supports: %s)", path,
                  model_type ? "unsupported" : "config.json has no", model_type ? model_type : "", sl_arch_supported());
    return a;
}

bool sl_convert_tied(const sl_arch_info *a, const pj *config) {
    if (a->tied_default < 0) return true;
    const pj *t = pj_get(config, "tie_word_embeddings");
    if (!t || t->type == PJ_NULL) return a->tied_default == 1;
    return pj_truthy(t);
}

/* Rank of a name segment in mlx-lm's module definitions (attribute order). */
static int seg_rank(const char *s, size_t n) {
    static const struct { const char *name; int rank; } k[] = {
        {"model", 0}, {"lm_head", 1},
        {"embed_tokens", 0}, {"layers", 1}, {"norm", 2},
        {"self_attn", 0}, {"mlp", 1}, {"input_layernorm", 2}, {"pre_feedforward_layernorm", 3},
        {"post_feedforward_layernorm", 4}, {"post_attention_layernorm", 5},
        {"q_proj", 0}, {"qkv_proj", 0}, {"k_proj", 1}, {"v_proj", 2}, {"o_proj", 3}, {"q_norm", 4}, {"k_norm", 5},
        {"gate_proj", 0}, {"gate_up_proj", 0}, {"down_proj", 1}, {"up_proj", 2},
        {"weight", 0}, {"scales", 1}, {"biases", 2}, {"bias", 3},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strlen(k[i].name) == n && !memcmp(k[i].name, s, n)) return k[i].rank;
    return 100;
}

static bool all_digits(const char *s, size_t n) {
    if (!n) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

int sl_arch_cmp_names(const char *a, const char *b) {
    while (*a && *b) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        int c = 0;
        if (all_digits(a, na) && all_digits(b, nb)) {
            unsigned long long x = strtoull(a, NULL, 10), y = strtoull(b, NULL, 10);
            c = x < y ? -1 : x > y;
        } else {
            int ra = seg_rank(a, na), rb = seg_rank(b, nb);
            if (ra != rb) c = ra < rb ? -1 : 1;
            else {
                size_t m = na < nb ? na : nb;
                c = memcmp(a, b, m);
                if (!c && na != nb) c = na < nb ? -1 : 1;
            }
        }
        if (c) return c;
        a += na + (a[na] == '.');
        b += nb + (b[nb] == '.');
    }
    return *a ? 1 : *b ? -1 : 0;
}
