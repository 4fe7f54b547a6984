/*
 * gen_batch_tool.c — checks that decoding several sequences together gives
 * each one the bits it gets alone (tests/py/test_gen_batch.py drives it).
 *
 *   gen_batch_tool MODEL THREADS STEPS KV IDS [IDS...]
 *
 * IDS: one prompt per argument ("1,2,3").  KV: default, f16, f32, q8, q4,
 * rot (a rotating cache of 24 positions), or gpu (the default cache, every
 * session on the GPU engine: --device gpu).  Contexts are 256 positions.
 * 1. Runtime: each prompt alone (sl_session_eval, then STEPS greedy tokens
 *    one at a time), then all together (prompts alone, then
 *    sl_session_eval_multi over the sequences still running; sequence k
 *    stops k steps early (at least one step), so the batch shrinks).  Every step's logits are
 *    compared bit for bit.
 * 2. Generation API: each prompt sampled (temperature 0.8, seed k) with
 *    sl_generate alone, then all begun and stepped with sl_gen_step; the
 *    generated ids and texts must be equal.
 * Prints one JSON object: {"logits_equal", "compared", "rows_max", "hash",
 * "api_equal", "generated"}; hash is FNV-1a over the alone logits (equal
 * across thread counts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"

#define MAXSEQ 16

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int argmax(const float *l, int V) {
    int b = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

/* Steps of sequence k: S - k, at least 1 (the batch shrinks as they stop). */
static int steps_of(int S, int k) { return S - k > 1 ? S - k : 1; }

static int die(sl_error *err) {
    fprintf(stderr, "gen_batch_tool: %s\n", err->msg);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: gen_batch_tool MODEL THREADS STEPS KV IDS...\n");
        return 2;
    }
    sl_error err = {0};
    int T = atoi(argv[2]), S = atoi(argv[3]), n = argc - 5;
    if (n > MAXSEQ) return 2;
    sl_session_opts so = {.n_ctx = 256, .n_threads = T};
    if (!strcmp(argv[4], "f16")) so.kv_dtype = SL_F16;
    else if (!strcmp(argv[4], "f32")) so.kv_dtype = SL_F32;
    else if (!strcmp(argv[4], "q8")) so.kv_bits = 8;
    else if (!strcmp(argv[4], "q4")) so.kv_bits = 4;
    else if (!strcmp(argv[4], "rot")) so.max_kv = 24;   /* rotating cache: 4 sinks + 20 recent positions */
    else if (!strcmp(argv[4], "gpu")) so.device = (sl_device_sel){SL_DEVICE_GPU, -1};
    int32_t *p[MAXSEQ];
    int np[MAXSEQ];
    for (int k = 0; k < n; k++)
        if (sl_parse_ids(argv[5 + k], &p[k], &np[k], &err)) return die(&err);
    sl_gen_model *g = NULL;
    if (sl_gen_model_open(argv[1], NULL, &g, &err)) return die(&err);
    int V = sl_gen_model_config(g)->vocab_size;
    const sl_model *m = sl_gen_model_get(g);
    float *alone = malloc((size_t)n * (S + 1) * V * sizeof(float)), *lg = malloc((size_t)n * V * sizeof(float));
    int32_t *tok = malloc((size_t)n * (S + 1) * sizeof(int32_t));
    uint64_t hash = 1469598103934665603ull;
    /* 1. alone */
    for (int k = 0; k < n; k++) {
        sl_session *s;
        if (sl_session_new(m, &so, &s, &err)) return die(&err);
        float *row = alone + (size_t)k * (S + 1) * V;
        if (sl_session_eval(s, p[k], np[k], false, row, &err)) return die(&err);
        for (int t = 0; t < steps_of(S, k); t++) {
            tok[k * (S + 1) + t] = argmax(row + (size_t)t * V, V);
            if (sl_session_eval(s, &tok[k * (S + 1) + t], 1, false, row + (size_t)(t + 1) * V, &err)) return die(&err);
        }
        hash = fnv(hash, row, (size_t)(steps_of(S, k) + 1) * V * sizeof(float));
        sl_session_free(s);
    }
    /* 1. together */
    sl_session *ss[MAXSEQ];
    int compared = 0, equal = 1, rows_max = 0;
    for (int k = 0; k < n; k++) {
        if (sl_session_new(m, &so, &ss[k], &err) || sl_session_eval(ss[k], p[k], np[k], false, lg, &err)) return die(&err);
        equal &= !memcmp(lg, alone + (size_t)k * (S + 1) * V, (size_t)V * sizeof(float));
    }
    for (int t = 0; t < S; t++) {
        sl_session *run[MAXSEQ];
        int32_t ids[MAXSEQ];
        int who[MAXSEQ], r = 0;
        for (int k = 0; k < n; k++)
            if (t < steps_of(S, k)) run[r] = ss[k], ids[r] = tok[k * (S + 1) + t], who[r++] = k;
        if (!r) break;
        if (sl_session_eval_multi(run, ids, r, lg, &err)) return die(&err);
        rows_max = r > rows_max ? r : rows_max;
        for (int j = 0; j < r; j++, compared++)
            equal &= !memcmp(lg + (size_t)j * V, alone + ((size_t)who[j] * (S + 1) + t + 1) * V, (size_t)V * sizeof(float));
    }
    for (int k = 0; k < n; k++) sl_session_free(ss[k]);
    /* 2. the generation API, sampled */
    sl_gen_seq *q[MAXSEQ];
    int32_t *gen_alone[MAXSEQ];
    int ng_alone[MAXSEQ], api_equal = 1, generated = 0;
    char *txt_alone[MAXSEQ];
    for (int k = 0; k < n; k++) {
        sl_gen_params gp = {.max_tokens = steps_of(S, k)};
        sl_sampler_defaults(&gp.sampling);
        gp.sampling.temperature = 0.8f;
        gp.sampling.seed = (uint64_t)k;
        if (sl_gen_seq_new(g, &so, &q[k], &err) || sl_generate(q[k], p[k], np[k], &gp, NULL, NULL, &err)) return die(&err);
        const int32_t *ids = sl_gen_generated(q[k], &ng_alone[k]);
        gen_alone[k] = malloc((size_t)(ng_alone[k] + 1) * sizeof(int32_t));
        memcpy(gen_alone[k], ids, (size_t)ng_alone[k] * sizeof(int32_t));
        size_t tl;
        const char *tx = sl_gen_text(q[k], &tl);
        txt_alone[k] = tx ? strndup(tx, tl) : NULL;
        sl_gen_seq_free(q[k]);
    }
    for (int k = 0; k < n; k++) {
        sl_gen_params gp = {.max_tokens = steps_of(S, k)};
        sl_sampler_defaults(&gp.sampling);
        gp.sampling.temperature = 0.8f;
        gp.sampling.seed = (uint64_t)k;
        if (sl_gen_seq_new(g, &so, &q[k], &err) || sl_gen_begin(q[k], p[k], np[k], &gp, NULL, NULL, &err)) return die(&err);
    }
    for (int guard = 0; guard < S + 2; guard++)
        if (sl_gen_step(q, n, &err)) return die(&err);
    for (int k = 0; k < n; k++) {
        int ng;
        size_t tl;
        const int32_t *ids = sl_gen_generated(q[k], &ng);
        const char *tx = sl_gen_text(q[k], &tl);
        api_equal &= !sl_gen_active(q[k]) && ng == ng_alone[k] && !memcmp(ids, gen_alone[k], (size_t)ng * sizeof *ids);
        api_equal &= (!tx && !txt_alone[k]) || (tx && txt_alone[k] && strlen(txt_alone[k]) == tl && !memcmp(tx, txt_alone[k], tl));
        generated += ng;
        sl_gen_seq_free(q[k]);
        free(gen_alone[k]);
        free(txt_alone[k]);
        free(p[k]);
    }
    printf("{\"logits_equal\": %s, \"compared\": %d, \"rows_max\": %d, \"hash\": \"%016llx\", \"api_equal\": %s, "
           "\"generated\": %d}\n", equal ? "true" : "false", compared, rows_max, (unsigned long long)hash,
           api_equal ? "true" : "false", generated);
    free(alone);
    free(lg);
    free(tok);
    sl_gen_model_close(g);
    return 0;
}
