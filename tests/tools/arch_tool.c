/*
 * arch_tool.c — test tool for tests/py/test_arch_table.py: what the engine
 * and the estimator each derive from one model (a model directory or a GGUF
 * file), printed as one JSON object so a test can compare them field by field
 * across the readers (HF directory, GGUF, GGUF imported to mlx / hf):
 *   arch_tool config PATH   {"engine": every sl_model_config field,
 *                            "fit": the sl_fit_model shape fields}
 * Floats print with %.9g (float) / %.17g (double): equal text is equal bits.
 * Exit 0, or 2 with one line on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "silica/memory.h"
#include "silica/model.h"

static void rope(const char *key, const sl_rope_config *r) {
    printf("\"%s\": {\"type\": %d, \"theta\": %.17g, \"factor\": %.17g, \"low_freq_factor\": %.17g, "
           "\"high_freq_factor\": %.17g, \"original_max_pos\": %lld, \"beta_fast\": %.17g, \"beta_slow\": %.17g, "
           "\"mscale\": %.17g, \"mscale_all_dim\": %.17g, \"attention_factor\": %.17g, \"truncate\": %s, "
           "\"n_factors\": %d, \"short_factor\": [",
           key, (int)r->type, r->theta, r->factor, r->low_freq_factor, r->high_freq_factor,
           (long long)r->original_max_pos, r->beta_fast, r->beta_slow, r->mscale, r->mscale_all_dim,
           r->attention_factor, r->truncate ? "true" : "false", r->n_factors);
    for (int i = 0; i < r->n_factors; i++) printf("%s%.9g", i ? ", " : "", (double)r->short_factor[i]);
    printf("], \"long_factor\": [");
    for (int i = 0; i < r->n_factors; i++) printf("%s%.9g", i ? ", " : "", (double)r->long_factor[i]);
    printf("]}");
}

static void engine(const sl_model_config *c) {
    printf("{\"arch\": \"%s\", \"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d, \"n_layers\": %d, "
           "\"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, \"rotary_dim\": %d, \"max_position_embeddings\": %lld, "
           "\"norm_eps\": %.9g, \"act\": %d, \"tie_embeddings\": %s, \"attn_qkv_bias\": %s, \"attn_o_bias\": %s, "
           "\"mlp_bias\": %s, \"qk_norm\": %s, \"norm_plus_one\": %s, \"sandwich_norms\": %s, \"fused_qkv\": %s, "
           "\"rope_adjacent\": %s, \"embed_scale\": %.9g, \"attn_scale\": %.9g, \"attn_softcap\": %.9g, "
           "\"final_softcap\": %.9g, \"sliding_window\": %d, \"layer_sliding\": [",
           sl_arch_name(c->arch), c->vocab_size, c->hidden_size, c->intermediate_size, c->n_layers, c->n_heads,
           c->n_kv_heads, c->head_dim, c->rotary_dim, (long long)c->max_position_embeddings, (double)c->norm_eps,
           (int)c->act, c->tie_embeddings ? "true" : "false", c->attn_qkv_bias ? "true" : "false",
           c->attn_o_bias ? "true" : "false", c->mlp_bias ? "true" : "false", c->qk_norm ? "true" : "false",
           c->norm_plus_one ? "true" : "false", c->sandwich_norms ? "true" : "false", c->fused_qkv ? "true" : "false",
           c->rope_adjacent ? "true" : "false", (double)c->embed_scale, (double)c->attn_scale,
           (double)c->attn_softcap, (double)c->final_softcap, c->sliding_window);
    for (int i = 0; i < c->n_layers; i++) printf("%s%s", i ? ", " : "", c->layer_sliding[i] ? "true" : "false");
    printf("], ");
    rope("rope", &c->rope);
    printf(", ");
    rope("rope_local", &c->rope_local);
    printf(", \"eos_ids\": [");
    for (int i = 0; i < c->n_eos; i++) printf("%s%d", i ? ", " : "", (int)c->eos_ids[i]);
    printf("], \"bos_id\": %d}", (int)c->bos_id);
}

static void fit(const sl_fit_model *m) {
    printf("{\"arch\": \"%s\", \"n_layers\": %d, \"hidden\": %d, \"intermediate\": %d, \"n_heads\": %d, "
           "\"n_kv_heads\": %d, \"head_dim\": %d, \"vocab\": %d, \"sliding_window\": %d, \"n_sliding_layers\": %d, "
           "\"max_ctx\": %lld, \"tied\": %s}",
           m->arch, m->n_layers, m->hidden, m->intermediate, m->n_heads, m->n_kv_heads, m->head_dim, m->vocab,
           m->sliding_window, m->n_sliding_layers, (long long)m->max_ctx, m->tied ? "true" : "false");
}

int main(int argc, char **argv) {
    if (argc != 3 || strcmp(argv[1], "config") != 0) {
        fprintf(stderr, "usage: arch_tool config PATH\n");
        return 2;
    }
    sl_error err = {0};
    sl_model *m = NULL;
    sl_fit_model *f = NULL;
    if (sl_model_open(argv[2], &m, &err) || sl_fit_model_load(argv[2], &f, &err)) {
        fprintf(stderr, "arch_tool: error: %s\n", err.msg);
        sl_model_close(m);
        return 2;
    }
    printf("{\"engine\": ");
    engine(sl_model_get_config(m));
    printf(", \"fit\": ");
    fit(f);
    printf("}\n");
    sl_fit_model_free(f);
    sl_model_close(m);
    return 0;
}
