/* roofline.c — part 9: the generation-speed ceiling of a model on a memory bandwidth.
 * Generating one token reads every weight matrix once; an embedding table that is not
 * also the output head is only gathered (one row per token).  So
 *     bytes per token = Σ tensor bytes − untied embedding + one embedding row
 *     ceiling (tok/s) = bandwidth / bytes per token
 * (the KV cache adds to the bytes as the context grows; `silica fit` includes it).
 *   roofline MODEL GBPS      e.g. roofline models/demo 30
 * Also prints the kernel set this CPU runs (as `silica doctor`).  Bad input: one line
 * on stderr, exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "silica/silica.h"

static int is_embedding(const char *name) {
    const char *s = strstr(name, "embed_tokens.");
    return s != NULL || strcmp(name, "token_embd.weight") == 0;
}

int main(int argc, char **argv) {
    sl_error err = {0};
    sl_checkpoint *ck;
    char *end = NULL;
    double gbps = argc == 3 ? strtod(argv[2], &end) : 0;
    if (argc != 3 || !end || *end || !(gbps > 0)) {
        fprintf(stderr, "usage: roofline MODEL GBPS\n");
        return 2;
    }
    if (sl_checkpoint_open(argv[1], &ck, &err)) {
        fprintf(stderr, "roofline: error: %s\n", err.msg);
        return 2;
    }
    int tied = !sl_checkpoint_find(ck, "lm_head.weight") && !sl_checkpoint_find(ck, "output.weight");
    uint64_t total = 0, embed = 0, rows = 1;
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        total += t->nbytes;
        if (is_embedding(t->name)) {
            embed += t->nbytes;
            /* the gathered row's share: bytes / rows (weight, scales and biases alike) */
            if (t->ndim == 2 && strstr(t->name, ".weight")) rows = (uint64_t)t->shape[0];
        }
    }
    uint64_t per_token = tied ? total : total - embed + embed / rows;
    printf("weights %llu bytes, embedding %s (%llu bytes)\n", (unsigned long long)total,
           tied ? "tied to the head: read every token" : "untied: one row per token", (unsigned long long)embed);
    printf("bytes per token %llu\n", (unsigned long long)per_token);
    printf("ceiling at %g GB/s: %.1f tok/s\n", gbps, gbps * 1e9 / (double)per_token);
    printf("kernels %s\n", sl_engine_kernels());
    sl_checkpoint_close(ck);
    return 0;
}
