/*
 * kld_of_two.c — part 8: the comparison's core in a few lines of libsilica.
 * Two models, the same token ids, every position's logits from each
 * (runtime.h), and compare.h's statistics: mean / p99 / max KL divergence,
 * top-1 agreement, both perplexities.
 *
 *   kld_of_two REF CAND 1,17,42,99,...
 */
#include <stdio.h>
#include <stdlib.h>

#include "silica/compare.h"
#include "silica/model.h"
#include "silica/runtime.h"

/* Every position's logits of ids under the model at path (malloc'd); *V its vocabulary. */
static float *all_logits(const char *path, const int32_t *ids, int n, int *V, sl_error *err) {
    sl_model *m = NULL;
    sl_session *s = NULL;
    float *out = NULL;
    sl_session_opts so = {.n_ctx = n, .kv_dtype = SL_F32};
    if (sl_model_open(path, &m, err) == 0 && sl_session_new(m, &so, &s, err) == 0) {
        *V = sl_model_get_config(m)->vocab_size;
        out = malloc((size_t)n * (size_t)*V * sizeof *out);
        if (out && sl_session_eval(s, ids, n, true, out, err)) {
            free(out);
            out = NULL;
        }
    }
    sl_session_free(s);
    sl_model_close(m);
    return out;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: kld_of_two REF CAND 1,17,42,...\n");
        return 2;
    }
    sl_error err = {0};
    int32_t *ids = NULL;
    int n = 0, V1 = 0, V2 = 0;
    if (sl_parse_ids(argv[3], &ids, &n, &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    float *ref = all_logits(argv[1], ids, n, &V1, &err);
    float *cand = ref ? all_logits(argv[2], ids, n, &V2, &err) : NULL;
    sl_cmp_acc *acc = NULL;
    int rc = 2;
    if (cand && V1 != V2) fprintf(stderr, "vocabularies differ: %d vs %d\n", V1, V2);
    else if (!cand) fprintf(stderr, "%s\n", err.msg);
    else if (sl_cmp_acc_new(&acc, &err) == 0 && sl_cmp_acc_add(acc, ref, cand, ids, n, V1, &err) == 0) {
        sl_cmp_stats st;
        sl_cmp_acc_stats(acc, &st);
        printf("positions %lld  KLD mean %.6f  p99 %.6f  max %.6f  top-1 %.2f %%  ppl %.4f (ref %.4f)\n",
               (long long)st.positions, st.kld_mean, st.kld_p99, st.kld_max, st.top1, st.ppl, st.ppl_ref);
        rc = 0;
    }
    sl_cmp_acc_free(acc);
    free(ref);
    free(cand);
    free(ids);
    return rc;
}
