/* generate.c — text from a model through silica/generate.h: open it (tokenizer, chat template,
 * EOS ids), build the prompt as mlx_lm.generate does, stream the tokens.  Prints what
 * `silica run MODEL PROMPT --temp 0.7 --seed SEED --max-tokens N` prints.
 * usage: generate MODEL PROMPT [N [SEED]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"

static int print_token(void *ud, const sl_gen_token *t) {
    fwrite(t->text, 1, t->len, ud);
    fflush(ud);
    return 0;   /* non-zero would stop the generation */
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: generate MODEL PROMPT [N [SEED]]\n"), 2;
    sl_gen_params p = {.max_tokens = argc > 3 ? atoi(argv[3]) : 64};
    sl_sampler_defaults(&p.sampling);
    p.sampling.temperature = 0.7f;
    p.sampling.seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    sl_error err = {0};
    sl_gen_model *g = NULL;
    sl_gen_seq *seq = NULL;
    int32_t *ids = NULL;
    int n = 0;
    cJSON *msgs = cJSON_CreateArray(), *m = cJSON_CreateObject();   /* [{"role": "user", "content": PROMPT}] */
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", argv[2]);
    cJSON_AddItemToArray(msgs, m);
    sl_gen_prompt_opts po = {.messages = msgs, .text = argv[2], .text_len = strlen(argv[2])};   /* text: no template */
    int rc = sl_gen_model_open(argv[1], NULL, &g, &err) || sl_gen_prompt(g, &po, &ids, &n, &err);
    sl_session_opts so = {.n_ctx = n + p.max_tokens};   /* KV cache in the model's dtype, all cores */
    rc = rc || sl_gen_seq_new(g, &so, &seq, &err) || sl_generate(seq, ids, n, &p, print_token, stdout, &err);
    if (rc) fprintf(stderr, "generate: %s\n", err.msg);
    else printf("\n");
    free(ids);
    cJSON_Delete(msgs);
    sl_gen_seq_free(seq);
    sl_gen_model_close(g);
    return rc ? 2 : 0;
}
