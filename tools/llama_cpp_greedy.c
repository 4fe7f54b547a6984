/*
 * llama_cpp_greedy.c — greedy decoding with llama.cpp's C API, for
 * tools/llama_cpp_check.sh (not part of silica's build: the script compiles
 * it against the llama.cpp named by LLAMA_CPP).
 *
 *   llama_cpp_greedy MODEL.gguf N_PREDICT N_CTX (--ids 1,2,3 | --text TEXT)
 *
 * Prints one JSON object: {"prompt_ids": [...], "ids": [...], "text_hex": "..."}
 * where ids are the generated tokens (argmax of the last position's logits,
 * first index on ties, no sampler), stopping after N_PREDICT tokens or at an
 * end-of-generation token (which is included, as `silica run` reports it),
 * and text_hex is the generated pieces' bytes in hex.  --text is tokenized by
 * llama.cpp (special tokens added as the GGUF says).
 *
 * Invariants: exits 1 with a message on stderr on any llama.cpp failure;
 * the CPU backend only (no GPU layers), one sequence, KV cache F16 (default).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int fail(const char *what) {
    fprintf(stderr, "llama_cpp_greedy: %s\n", what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) return fail("usage: llama_cpp_greedy MODEL.gguf N_PREDICT N_CTX (--ids 1,2,3 | --text TEXT)");
    int n_predict = atoi(argv[2]), n_ctx = atoi(argv[3]);
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) return fail("cannot load the model");
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    llama_token *prompt = malloc(sizeof *prompt * 4096);
    int n_prompt = 0;
    if (!strcmp(argv[4], "--ids")) {
        for (char *s = argv[5]; *s && n_prompt < 4096;) {
            prompt[n_prompt++] = (llama_token)strtol(s, &s, 10);
            if (*s == ',') s++;
        }
    } else {
        n_prompt = llama_tokenize(vocab, argv[5], (int32_t)strlen(argv[5]), prompt, 4096, true, true);
        if (n_prompt < 0) return fail("cannot tokenize the prompt");
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_ctx;
    cp.n_ubatch = (uint32_t)n_ctx;
    cp.n_seq_max = 1;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return fail("cannot create a context");
    printf("{\"prompt_ids\": [");
    for (int i = 0; i < n_prompt; i++) printf("%s%d", i ? ", " : "", prompt[i]);
    printf("], \"ids\": [");
    char hex[65536] = {0};
    size_t hl = 0;
    struct llama_batch batch = llama_batch_get_one(prompt, n_prompt);
    llama_token tok = 0;
    for (int n = 0; n < n_predict; n++) {
        if (llama_decode(ctx, batch)) return fail("llama_decode failed");
        const float *logits = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int v = 1; v < n_vocab; v++)
            if (logits[v] > logits[best]) best = v;
        tok = best;
        printf("%s%d", n ? ", " : "", tok);
        char piece[256];
        int pl = llama_token_to_piece(vocab, tok, piece, sizeof piece, 0, false);
        for (int i = 0; i < pl && hl + 3 < sizeof hex; i++) hl += (size_t)snprintf(hex + hl, 3, "%02x", (unsigned char)piece[i]);
        if (llama_vocab_is_eog(vocab, tok)) break;
        batch = llama_batch_get_one(&tok, 1);
    }
    printf("], \"text_hex\": \"%s\"}\n", hex);
    llama_free(ctx);
    llama_model_free(model);
    free(prompt);
    llama_backend_free();
    return 0;
}
