/*
 * gen.h — the command-line side of generation shared by `run`, `chat`,
 * `ppl` and `logits` (gen.c): their engine, KV-cache and sampling options
 * and the sampling defaults (the demo model samples).  Generation itself —
 * model + tokenizer + template + EOS, prompts, the decoding loop, stop
 * strings, KV prefix reuse — is library behaviour: silica/generate.h.
 *
 * Invariant: every option value is checked here, with its range in the
 * message, before a model is read.
 */
#ifndef SILICA_CLI_GEN_H
#define SILICA_CLI_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/model.h"
#include "silica/runtime.h"
#include "silica/generate.h"

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
/* --tokenizer for run, chat and ppl (sl_gen_model_opts.tokenizer). */
#define GEN_TOKENIZER_HELP                                                                                  \
    "  --tokenizer PATH      the tokenizer to use: a tokenizer.json, a model folder or a GGUF (default:\n" \
    "                        a GGUF model's own, else the tokenizer.json beside the model)\n"
#define GEN_DEVICE_HELP                                                                                  \
    "  --device D            where the model runs: cpu (default), gpu, gpu:N (a Vulkan device index from\n" \
    "                        `silica doctor`) or auto (the first discrete or integrated GPU, else the CPU)\n" \
    "  --gpu-layers N        with a GPU: only the last N layers (and the output head) run there, the\n"   \
    "                        embedding and the others on the CPU, for a model too big for the GPU's\n"     \
    "                        memory (default auto: all, or as many of the last ones as its memory holds;\n" \
    "                        all: every layer, else an error; 0: none, the CPU runs the model)\n"
/* After sl_session_new: the one-line note of a --device auto that fell back to the CPU. */
void cli_device_note(const sl_session *s);
/* --gpu-layers V: auto (0), all (2^20) or an integer in 0..2^20 into *out (0 -> SL_GPU_LAYERS_NONE);
 * a usage error (2) else. */
int cli_gpu_layers(const char *cmd, const char *v, int *out);

#define GEN_KV_HELP                                                                                      \
    "  --kv TYPE             KV cache f16 or f32 (with --kv-bits: the scale dtype); q8, q4: = --kv-bits\n" \
    "                        8, 4; default: the model's dtype (f32 weights: f32, exact; else f16)\n"   \
    "  --kv-bits B           quantize the KV cache to 4 or 8 bits (MLX affine, f16 scale and bias per\n" \
    "                        group, as mlx_lm's --kv-bits); attention reads it dequantized\n"          \
    "  --kv-group-size G     KV quantization group: 32, 64 (default) or 128\n"                         \
    "  --max-kv-size N       rotating KV cache of N positions per layer (mlx_lm's name): the first 4\n" \
    "                        tokens stay (attention sinks), the oldest others are overwritten, so\n"   \
    "                        generation goes on past N with flat memory; combines with --kv-bits\n"

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

/* Monotonic seconds (bench's timings). */
double gen_now(void);

#endif
