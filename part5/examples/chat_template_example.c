/*
 * chat_template_example.c — render a conversation with a model's chat
 * template through libsilica, as transformers' apply_chat_template(...,
 * tokenize=False, add_generation_prompt=True) would.
 *
 *   build/examples/part5/chat_template_example MODEL_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "silica/template.h"

static const char k_conversation[] =
    "[{\"role\": \"system\", \"content\": \"You are a concise assistant.\"},"
    " {\"role\": \"user\", \"content\": \"What is the capital of France?\"},"
    " {\"role\": \"assistant\", \"content\": \"Paris.\"},"
    " {\"role\": \"user\", \"content\": \"And of Italy?\"}]";

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    sl_error err = {0};
    char *src = NULL, *out = NULL;
    cJSON *ctx = NULL, *raw = cJSON_Parse(k_conversation), *msgs = NULL;
    sl_tmpl *t = NULL;
    int rc = 2;
    /* 1. the template and the special tokens (bos_token, eos_token, ...) of the model */
    if (sl_tmpl_load_chat_template(argv[1], NULL, 0, &src, &ctx, &err)) goto fail;
    /* 2. compile once; a compiled template can render any number of conversations */
    if (sl_tmpl_compile(src, strlen(src), argv[1], &t, &err)) goto fail;
    /* 3. the variables transformers passes: messages, tools, add_generation_prompt, ... */
    if (!(msgs = sl_tmpl_normalize_messages(raw, &err))) goto fail;
    cJSON_AddItemToObject(ctx, "messages", msgs);
    cJSON_AddNullToObject(ctx, "tools");
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", 1);
    size_t n;
    if (sl_tmpl_render(t, ctx, NULL, &out, &n, &err)) goto fail;
    fwrite(out, 1, n, stdout);
    putchar('\n');
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "error: %s\n", err.msg);
done:
    free(out);
    sl_tmpl_free(t);
    free(src);
    cJSON_Delete(ctx);
    cJSON_Delete(raw);
    return rc;
}
