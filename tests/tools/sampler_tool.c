/*
 * sampler_tool.c — test tool: runs the sampler (silica/runtime.h) on logits
 * from stdin, so tests/py/test_penalties.py can compare its penalties with
 * real peers' logits processors (mlx_lm.sample_utils) on the same numbers.
 *
 *   sampler_tool IDS REPEAT WINDOW PRESENCE FREQUENCY  < logits (f32 LE)  > logits after the penalties (f32 LE)
 *
 * IDS: the history, comma-separated (sl_parse_ids).  Greedy (temperature 0),
 * so the logits the sampler modified in place are exactly the penalised
 * ones; the chosen id goes to stderr as "id=N".  Exit 2 with one stderr line
 * on bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/runtime.h"

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: sampler_tool IDS REPEAT WINDOW PRESENCE FREQUENCY < logits > logits\n");
        return 2;
    }
    sl_error err = {0};
    int32_t *ids = NULL;
    int n = 0;
    if (sl_parse_ids(argv[1], &ids, &n, &err)) {
        fprintf(stderr, "sampler_tool: error: %s\n", err.msg);
        return 2;
    }
    sl_sampler_params p;
    sl_sampler_defaults(&p);
    p.repeat_penalty = strtof(argv[2], NULL);
    p.penalty_window = atoi(argv[3]);
    p.presence_penalty = strtof(argv[4], NULL);
    p.frequency_penalty = strtof(argv[5], NULL);
    size_t cap = 1 << 16, len = 0, k;
    float *l = malloc(cap * sizeof *l);
    while (l && (k = fread(l + len, sizeof *l, cap - len, stdin)) > 0) {
        len += k;
        if (len == cap) {
            float *q = realloc(l, 2 * cap * sizeof *l);
            if (!q) break;
            l = q;
            cap *= 2;
        }
    }
    sl_sampler *s = NULL;
    int rc = 0;
    if (!l || !len || len > 1u << 30) rc = sl_errorf(&err, SL_EINVAL, "expected f32 logits on stdin");
    if (!rc) rc = sl_sampler_new(&p, (int)len, &s, &err);
    if (rc) {
        fprintf(stderr, "sampler_tool: error: %s\n", err.msg);
        free(l);
        free(ids);
        return 2;
    }
    int32_t id = sl_sampler_sample(s, l, ids, n);
    fwrite(l, sizeof *l, len, stdout);
    fprintf(stderr, "id=%d\n", (int)id);
    sl_sampler_free(s);
    free(l);
    free(ids);
    return 0;
}
