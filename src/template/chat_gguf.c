/*
 * chat_gguf.c — the chat template of a GGUF model: tokenizer.chat_template
 * (llama.cpp's key, the tokenizer_config.json "chat_template" that
 * convert_hf_to_gguf.py copies), named ones under
 * tokenizer.chat_template.NAME, and the special-token strings a template
 * uses (bos_token, eos_token, unk_token, pad_token, sep_token) looked up in
 * tokenizer.ggml.tokens by tokenizer.ggml.<x>_token_id.
 *
 * Invariants: the template is valid UTF-8 without NUL bytes (else one error
 * line naming the key); a special-token id outside tokenizer.ggml.tokens is
 * left out, as HF leaves an unknown token out of the template context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "silica/checkpoint.h"
#include "silica/gguf.h"
#include "template/tmpl_impl.h"

static void add_specials(const sl_gguf *g, cJSON *sp) {
    static const char *const names[] = {"bos", "eos", "unk", "pad", "sep"};
    sl_gguf_value toks, e;
    if (sl_gguf_find(g, "tokenizer.ggml.tokens") < 0 || sl_gguf_get_array(g, "tokenizer.ggml.tokens", &toks, NULL)) return;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char key[64], field[32];
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", names[i]);
        snprintf(field, sizeof field, "%s_token", names[i]);
        uint64_t id;
        if (sl_gguf_find(g, key) < 0 || sl_gguf_get_u64(g, key, &id, NULL)) continue;
        if (sl_gguf_array_get(&toks, id, &e) || e.type != SL_GGUF_STRING || memchr(e.data, 0, (size_t)e.len)) continue;
        char *s = malloc((size_t)e.len + 1);
        if (!s) continue;
        memcpy(s, e.data, (size_t)e.len);
        s[e.len] = 0;
        cJSON_AddItemToObject(sp, field, cJSON_CreateString(s));
        free(s);
    }
}

static int template_key(const sl_gguf *g, const char *which, int has_tools, char *key, size_t cap) {
    if (which && strcmp(which, "default") != 0) snprintf(key, cap, "tokenizer.chat_template.%s", which);
    else snprintf(key, cap, "tokenizer.chat_template");
    if (!which && has_tools && sl_gguf_find(g, "tokenizer.chat_template.tool_use") >= 0)
        snprintf(key, cap, "tokenizer.chat_template.tool_use");
    return sl_gguf_find(g, key) >= 0;
}

int sl_tmpl__gguf_chat_template(const char *path, const char *which, int has_tools, char **src, cJSON **special,
                                sl_error *err) {
    *src = NULL;
    char *first = NULL;
    int rc = sl_checkpoint_gguf_path(path, &first, err);
    if (rc) return rc;
    sl_gguf *g = NULL;
    if ((rc = sl_gguf_open(first ? first : path, &g, err))) {
        free(first);
        return rc;
    }
    char key[160];
    const char *s;
    size_t n;
    if (!template_key(g, which, has_tools, key, sizeof key))
        rc = sl_errorf(err, SL_EINVAL, "%s: no chat template (no %s in the GGUF metadata)", path, key);
    else if (sl_gguf_get_str(g, key, &s, &n, err))
        rc = SL_EINVAL;
    else if (memchr(s, 0, n) || !(*src = malloc(n + 1)))
        rc = memchr(s, 0, n) ? sl_errorf(err, SL_EINVAL, "%s: %s contains a NUL byte", path, key)
                             : sl_errorf(err, SL_ENOMEM, "out of memory");
    else {
        memcpy(*src, s, n);
        (*src)[n] = 0;
    }
    if (!rc && special) add_specials(g, *special);
    sl_gguf_close(g);
    free(first);
    return rc;
}

int sl_tmpl_gguf_has_chat_template(const char *gguf_path) {
    sl_gguf *g = NULL;
    if (sl_gguf_open(gguf_path, &g, NULL)) return 0;
    int yes = sl_gguf_find(g, "tokenizer.chat_template") >= 0;
    sl_gguf_close(g);
    return yes;
}
