/*
 * silica/generate.h — text generation as library behaviour: a model opened
 * with its tokenizer, chat template and end-of-sequence ids; prompts built as
 * mlx_lm.generate builds them; sequences (a session's KV cache + sampler +
 * streamed text) that generate alone or decode together in one batched
 * forward pass.  `silica run`, `chat`, `ppl`, `logits`, `serve` and
 * `compare` are thin users of this header.
 *
 * Invariants:
 *  - Prompt building follows mlx_lm.generate: with a chat template the
 *    rendered string is encoded without special tokens (the template writes
 *    BOS itself); without one the text is encoded with them (BOS as the
 *    tokenizer says).  EOS ids as mlx_lm: generation_config.json's
 *    eos_token_id (int or list), else config.json's, plus the tokenizer's
 *    eos_token (for a GGUF: tokenizer.ggml.eos_token_id / eot_token_id).
 *  - A sequence remembers the ids whose keys/values its session holds;
 *    sl_gen_begin reuses the longest common prefix with a new prompt and
 *    evaluates only the rest (at least one token, for fresh logits).
 *  - Streamed text never contains a stop string nor a split UTF-8 sequence;
 *    text that may begin a stop string is held back until decided.
 *  - Exactness: a sequence's tokens, logits and text depend only on its own
 *    prompt, parameters and seed — never on the thread count nor on which
 *    other sequences share a batched step (sl_gen_step).  This is what lets
 *    a server promise identical answers under load.
 *  - Peak RSS everywhere is memory.h's sl_mem_peak_rss (one definition).
 *
 * Refinements made while implementing (names and meanings above unchanged):
 *  - sl_gen_prompt: text wins over messages when there is no template (or
 *    no_template); messages alone then become the plain transcript.
 *  - sl_gen_params.max_tokens may be 0 (the prompt is evaluated, nothing is
 *    generated: `silica run --max-tokens 0`).
 *  - sl_gen_params gained continue_rng (chat keeps one random stream across
 *    turns) and progress/progress_ud (the --monitor phases).
 *  - SL_GEN_PLAIN_STOP: the stop string of the plain transcript.
 *  - sl_gen_model_tokenizer returns a non-const tokenizer (sl_tok_encode
 *    needs one; see there).
 *  - sl_gen_params.grammar (structured output) and the stop reason
 *    "grammar".
 *  - A token callback's non-zero return ends the generation with
 *    "cancelled" after that token (its text is released with it; text held
 *    back for a possible stop string stays in sl_gen_text only).
 */
#ifndef SILICA_GENERATE_H
#define SILICA_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/api.h"
#include "silica/error.h"
#include "silica/grammar.h"
#include "silica/model.h"
#include "silica/runtime.h"
#include "silica/tokenizer.h"
#include "silica/toolcall.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a model ready to generate ---- */

typedef struct sl_gen_model sl_gen_model;

typedef struct sl_gen_model_opts {
    const char *tokenizer;   /* NULL: the model's own (tokenizer.json beside it, or a GGUF's metadata);
                                else a tokenizer.json file or folder that wins */
} sl_gen_model_opts;

/* path: a model directory, a checkpoint file (GGUF, safetensors...) or
 * anything sl_model_open accepts (store names are resolved by the caller). */
SL_API int sl_gen_model_open(const char *path, const sl_gen_model_opts *opts, sl_gen_model **out, sl_error *err);
SL_API void sl_gen_model_close(sl_gen_model *g);

SL_API const sl_model *sl_gen_model_get(const sl_gen_model *g);
SL_API const sl_model_config *sl_gen_model_config(const sl_gen_model *g);
SL_API const char *sl_gen_model_path(const sl_gen_model *g);
/* NULL: the model has no tokenizer (only token ids can be generated).  Not
 * const: sl_tok_encode keeps scratch in it, so encoding (sl_gen_prompt,
 * sl_gen_render included) on one model is not thread-safe; a server
 * serialises it.  Decoding streams (the sequences' text) only read it. */
SL_API sl_tokenizer *sl_gen_model_tokenizer(const sl_gen_model *g);
SL_API bool sl_gen_model_has_template(const sl_gen_model *g);
/* The tool-call format the chat template (its "tool_use" variant when it
 * has one, rendered when tools are given) shows: toolcall.h. */
SL_API sl_tool_format sl_gen_model_tool_format(const sl_gen_model *g);
/* End-of-sequence ids (see the invariants); *n receives their number. */
SL_API const int32_t *sl_gen_model_eos(const sl_gen_model *g, int *n);
SL_API int32_t sl_gen_model_bos(const sl_gen_model *g);   /* -1: none */

/* The model `silica run` uses without MODEL: $SILICA_DEFAULT_MODEL, else the
 * installed share/silica/models/demo, else <exe dir>/../models/demo, else the
 * source tree's models/demo.  NULL if none exists. */
SL_API const char *sl_gen_default_model(void);

/* ---- prompts ---- */

typedef struct sl_gen_prompt_opts {
    const cJSON *messages;       /* chat messages [{role, content, ...}], or NULL for text */
    const char *text;            /* raw text (used when messages is NULL or there is no template) */
    size_t text_len;
    const cJSON *tools;          /* OpenAI-style tools for the template, or NULL */
    const cJSON *template_vars;  /* extra template variables (object), or NULL */
    bool no_template;            /* encode text as plain text even when the model has a template */
    bool no_generation_prompt;   /* render without add_generation_prompt (default: with it) */
    const char *answer_prefix;   /* text the answer starts with, appended to the prompt (prefill:
                                    a forced tool call's opening); NULL: none */
} sl_gen_prompt_opts;

/* Prompt ids into *ids (malloc'd, caller frees), *n their number.  With a
 * template (and messages, and not no_template): the rendered messages,
 * encoded without special tokens.  Otherwise text (when not NULL) is encoded
 * with special tokens; messages alone are rendered as a plain
 * "User:/Assistant:" transcript ("System: " first for a system message),
 * ending with "Assistant:" — the dialogue format of llama.cpp's interactive
 * mode; the answer then stops at SL_GEN_PLAIN_STOP. */
#define SL_GEN_PLAIN_STOP "\nUser:"
SL_API int sl_gen_prompt(const sl_gen_model *g, const sl_gen_prompt_opts *o, int32_t **ids, int *n, sl_error *err);
/* The rendered prompt text (malloc'd), for `template` and debugging. */
SL_API int sl_gen_render(const sl_gen_model *g, const sl_gen_prompt_opts *o, char **text, size_t *len, sl_error *err);

/* ---- sequences ---- */

typedef struct sl_gen_params {
    sl_sampler_params sampling;   /* sl_sampler_defaults: greedy */
    int max_tokens;               /* >= 0 (0: evaluate the prompt only) */
    const char *const *stops;     /* stop strings (need a tokenizer) */
    int n_stops;
    bool ignore_eos;              /* EOS ids get -inf before sampling (llama-server's ignore_eos); not with a grammar */
    bool logprobs;                /* report each token's logprob (a log softmax over the vocabulary per token;
                                     false: logprob is NAN) */
    int top_logprobs;             /* 0..20: alternatives reported per token (implies logprobs) */
    const sl_grammar *grammar;    /* structured output (grammar.h), or NULL: before each token is sampled,
                                     tokens whose bytes the grammar rejects get -inf, EOS too until the
                                     value is complete; the generation ends with "grammar" once nothing
                                     more can follow.  Needs the model's tokenizer. */
    bool continue_rng;            /* keep the sampler (and its random state) of this sequence's previous
                                     generation when the sampling parameters are unchanged (chat turns);
                                     default: a fresh sampler seeded with sampling.seed */
    /* Memory-monitor hook (may be NULL): "prompt" (tokens cached) before the
     * prompt is evaluated, "generate" (session position) after it and after
     * each decoding step. */
    void (*progress)(void *ud, const char *phase, int tokens);
    void *progress_ud;
} sl_gen_params;

typedef struct sl_gen_alt {
    int32_t id;
    float logprob;
} sl_gen_alt;

typedef struct sl_gen_token {
    int32_t id;
    float logprob;               /* log softmax of the raw logits (before sampling transforms); NAN unless
                                    sl_gen_params.logprobs or top_logprobs */
    const sl_gen_alt *top;       /* top_logprobs alternatives, most likely first */
    int n_top;
    const char *text;            /* the text this token releases (may be empty: held back or partial UTF-8) */
    size_t len;
} sl_gen_token;

/* Called for every generated token; return non-zero to stop ("cancelled"). */
typedef int (*sl_gen_token_fn)(void *ud, const sl_gen_token *t);

typedef struct sl_gen_stats {
    int prompt_tokens;           /* prompt length */
    int cached_tokens;           /* of them, reused from the previous prompt */
    int generated;               /* tokens generated (EOS included when it ended the answer) */
    double prompt_s, ttft_s, gen_s;   /* prompt eval; start -> first token; first -> last token */
    const char *stop_reason;     /* NULL while running; "eos", "length", "stop", "cancelled", "grammar"
                                    (the structured output is complete) */
} sl_gen_stats;

typedef struct sl_gen_seq sl_gen_seq;

/* A sequence owns a session (its KV cache, opts as sl_session_new) and a sampler. */
SL_API int sl_gen_seq_new(sl_gen_model *g, const sl_session_opts *so, sl_gen_seq **out, sl_error *err);
SL_API void sl_gen_seq_free(sl_gen_seq *s);
SL_API sl_session *sl_gen_seq_session(sl_gen_seq *s);
/* The ids the session holds now (prompt + generated so far). */
SL_API const int32_t *sl_gen_seq_ids(const sl_gen_seq *s, int *n);

/* Start a generation: evaluate the prompt (reusing the cached prefix), then
 * sample the first token and report it through fn.  Afterwards the sequence
 * is active until a stop condition (stats->stop_reason set). */
SL_API int sl_gen_begin(sl_gen_seq *s, const int32_t *prompt, int n, const sl_gen_params *p, sl_gen_token_fn fn,
                        void *ud, sl_error *err);
SL_API bool sl_gen_active(const sl_gen_seq *s);
SL_API const sl_gen_stats *sl_gen_seq_stats(const sl_gen_seq *s);
/* The whole text generated so far (stop string cut off), and the ids. */
SL_API const char *sl_gen_text(const sl_gen_seq *s, size_t *len);
SL_API const int32_t *sl_gen_generated(const sl_gen_seq *s, int *n);

/* One decoding step for every active sequence in seqs (inactive ones are
 * skipped): their last tokens go through ONE batched forward pass (the
 * matmuls see all of them; attention is per sequence), then each samples its
 * next token and reports it through the fn given to sl_gen_begin.  All seqs
 * must belong to the same sl_gen_model.  Results are bit-identical to
 * stepping each sequence alone.  The first active sequence's session lends
 * its threads and keeps the batch's workspace (runtime.h's
 * sl_session_eval_multi); a sequence may be in only one step at a time. */
SL_API int sl_gen_step(sl_gen_seq *const *seqs, int n, sl_error *err);

/* Convenience: begin, then step this one sequence until it stops. */
SL_API int sl_generate(sl_gen_seq *s, const int32_t *prompt, int n, const sl_gen_params *p, sl_gen_token_fn fn,
                       void *ud, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
