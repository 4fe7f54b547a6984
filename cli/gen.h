/*
 * gen.h — text generation shared by `run`, `chat` and `ppl` (gen.c): a model
 * with its tokenizer, chat template and EOS ids; prompt building exactly as
 * mlx_lm.generate does it; the generation loop with streaming UTF-8-safe
 * text, stop strings, EOS and KV-cache prefix reuse.
 *
 * Invariants:
 *  - gen_cache mirrors the ids whose keys/values are in the session, in
 *    order; gen_generate reuses its longest common prefix with the new prompt
 *    and evaluates only the rest (at least one token, for fresh logits).
 *  - Emitted text never contains a stop string nor a split UTF-8 sequence;
 *    text that may begin a stop string is held back until decided.
 */
#ifndef SILICA_CLI_GEN_H
#define SILICA_CLI_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/model.h"
#include "silica/runtime.h"
#include "silica/template.h"
#include "silica/tokenizer.h"

#define GEN_MAX_EOS 32

/* Options shared by the model commands (each: consumes argv[*i] and its value
 * when it is that option and sets *matched; returns 2 after printing a usage
 * error).  cli_engine_opt: cmd_logits.c; cli_sampler_opt, cli_max_tokens_opt:
 * cmd_run.c. */
int cli_engine_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *o, bool *matched);
int cli_sampler_opt(int argc, char **argv, int *i, const char *cmd, sl_sampler_params *sp, bool *matched);
/* --max-tokens N with min <= N <= 2^24 */
int cli_max_tokens_opt(int argc, char **argv, int *i, const char *cmd, long min, long *out, bool *matched);
/* All of the above plus the memory-guard options (memguard.h): what the
 * generating commands run and chat accept before their own options. */
struct cli_mem_opts;
int cli_generation_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *so, struct cli_mem_opts *mo,
                       sl_sampler_params *sp, long min_tokens, long *max_tokens, bool *matched);
/* KV-cache options (gen.c), parsed by cli_engine_opt for run/chat/ppl/logits:
 * --kv f16|f32|q8|q4, --kv-bits 4|8, --kv-group-size 32|64|128,
 * --max-kv-size N (N > the 4 attention-sink tokens, <= 2^24). */
int cli_kv_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *o, bool *matched);
#define GEN_DEVICE_HELP                                                                                  \
    "  --device D            where the model runs: cpu (default), gpu, gpu:N (a Vulkan device index from\n" \
    "                        `silica doctor`) or auto (the first discrete or integrated GPU, else the CPU)\n"
/* After sl_session_new: the one-line note of a --device auto that fell back to the CPU. */
void cli_device_note(const sl_session *s);

#define GEN_KV_HELP                                                                                      \
    "  --kv TYPE             KV cache f16 (default) or f32 (with --kv-bits: the scale dtype); q8, q4:\n" \
    "                        = --kv-bits 8, 4\n"                                                        \
    "  --kv-bits B           quantize the KV cache to 4 or 8 bits (MLX affine, f16 scale and bias per\n" \
    "                        group, as mlx_lm's --kv-bits); attention reads it dequantized\n"          \
    "  --kv-group-size G     KV quantization group: 32, 64 (default) or 128\n"                         \
    "  --max-kv-size N       rotating KV cache of N positions per layer (mlx_lm's name): the first 4\n" \
    "                        tokens stay (attention sinks), the oldest others are overwritten, so\n"   \
    "                        generation goes on past N with flat memory; combines with --kv-bits\n"

typedef struct gen_model {
    const char *path;
    sl_model *m;
    const sl_model_config *c;
    sl_tokenizer *tok;   /* NULL: the model has no tokenizer */
    sl_tmpl *tmpl;       /* NULL: no chat template */
    cJSON *special;      /* special tokens for the template context */
    int32_t eos[GEN_MAX_EOS];
    int n_eos;
    int32_t bos;         /* -1: none */
} gen_model;

/* The model `silica run` uses without MODEL: $SILICA_DEFAULT_MODEL, else
 * <exe dir>/../models/demo, else the source tree's models/demo.  NULL if none
 * exists. */
const char *gen_default_model(void);

/* Sampling of run and chat.  gen_sampling_unset marks every sampling option
 * unset (before parsing); gen_sampling_finish gives those still unset their
 * default: greedy for a model the user named (exactness), and for the demo
 * model — a 23 M-parameter completer that loops when greedy — llama.cpp's
 * sampling chain (temperature 0.7, top-k 40, top-p 0.95, min-p 0.05) with the
 * repeat penalty 1.1 over the last 64 tokens of llama.cpp's and ollama's
 * defaults; seed 0 either way, so the output is reproducible. */
#define GEN_DEMO_SAMPLING_HELP "--temp 0.7 --top-k 40 --top-p 0.95 --min-p 0.05 --repeat-penalty 1.1 --repeat-last-n 64"
void gen_sampling_unset(sl_sampler_params *sp);
void gen_sampling_finish(sl_sampler_params *sp, bool demo);

int gen_open(const char *path, gen_model *g, sl_error *err);
/* gen_open with the tokenizer the user named (--tokenizer; NULL: the
 * model's own, see sl_tok_load_for_model). */
int gen_open_tok(const char *path, const char *tokenizer, gen_model *g, sl_error *err);
#define GEN_TOKENIZER_HELP                                                                                  \
    "  --tokenizer PATH      the tokenizer to use: a tokenizer.json, a model folder or a GGUF (default:\n" \
    "                        a GGUF model's own, else the tokenizer.json beside the model)\n"
void gen_close(gen_model *g);

/* Prompt ids.  With the template (and one present): render messages with
 * add_generation_prompt and encode without special tokens added; otherwise
 * encode `text` with special tokens added (BOS as the tokenizer says) —
 * as mlx_lm.generate. */
int gen_prompt(gen_model *g, const cJSON *messages, const char *text, bool use_template, int32_t **ids, int *n,
               sl_error *err);

typedef struct gen_cache {
    int32_t *ids;
    int n, cap;
} gen_cache;
void gen_cache_free(gen_cache *c);

typedef struct gen_opts {
    int max_tokens;
    const char *const *stops;
    int n_stops;
    void (*emit)(const char *s, size_t n, void *ud);  /* streamed text; may be NULL */
    void *ud;
    bool (*cancelled)(void);                           /* polled between tokens; may be NULL */
    /* "prompt" (tokens cached) before the prompt is evaluated, "generate"
     * (session position) after it and after each generated token; may be NULL */
    void (*progress)(void *ud, const char *phase, int tokens);
    void *progress_ud;
} gen_opts;

typedef struct gen_result {
    int32_t *ids;            /* generated (EOS included when it ended the answer) */
    int n;
    char *text;              /* NULL without a tokenizer */
    size_t len;
    int prompt_tokens;
    double prompt_s, ttft_s, gen_s;   /* prompt eval time; start -> first token; first -> last token */
    const char *stop_reason; /* "eos", "length", "stop" */
} gen_result;
void gen_result_free(gen_result *r);

int gen_generate(gen_model *g, sl_session *s, gen_cache *cache, sl_sampler *smp, const int32_t *prompt, int n,
                 const gen_opts *o, gen_result *r, sl_error *err);

/* Peak resident set size of this process in bytes. */
long long gen_peak_rss(void);
double gen_now(void);

#endif
