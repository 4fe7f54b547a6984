/*
 * inputs.h — what the model commands (run, chat, ppl) take from the command
 * line and stdin, checked before any work is done (inputs.c):
 *  - MODEL: a word that looks like a path or a store name is the model, and
 *    must exist; only a command with no model word at all uses the demo
 *    model, and says so on stderr;
 *  - prompt texts (argument, stdin, --prompt-file, ppl's --file): UTF-8
 *    without NUL, else one error line with the byte offset — unless the
 *    command was told --any-bytes;
 *  - the context against the model's trained length (RoPE scaling may
 *    extend it; part5/engine.md "Context beyond the trained length").
 *
 * Invariant: every refusal is one line on stderr and the return value 2.
 */
#ifndef SILICA_CLI_INPUTS_H
#define SILICA_CLI_INPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/model.h"

/* True when `word` names a model rather than being text: an existing file
 * or folder, a store name (org/name), or something shaped like a path —
 * starting with '/', './', '../' or '~/', or (without whitespace, so not a
 * sentence) containing '/', starting with '.' or '~', or ending in a
 * model-file extension (.safetensors, .gguf, .bin, .pt, .pth, .ckpt, .npz). */
bool cli_looks_like_model(const char *word);
/* 0 when path is an existing file or folder or a store name; else prints
 * "PATH: no such model (not a file, folder or store name)" and returns 2. */
int cli_check_model(const char *path);
/* The demo model (sl_gen_default_model) after one line on stderr saying it is
 * used; NULL after a usage error (none found). */
const char *cli_demo_model(const char *cmd);

#define CLI_MAX_TEXT ((size_t)1 << 30)   /* 1 GiB of prompt or ppl text */

/* All of `file` ("-" or NULL: stdin) into *text (malloc'd, NUL-terminated,
 * *len bytes, which may include NULs).  0, or 2 after printing the error. */
int cli_read_text(const char *file, char **text, size_t *len);
/* 0 when s[0..n) is UTF-8 without NUL; else prints "WHAT: invalid UTF-8 at
 * byte N (0xXX)" or "WHAT: NUL byte at byte N" (N counted from 0) followed
 * by `hint` (may be NULL) and returns 2. */
int cli_check_text(const char *what, const char *s, size_t n, const char *hint);

/* Positions the model's RoPE is made for, and a word on why (into how):
 * max_position_embeddings for plain RoPE and longrope; for linear, yarn and
 * llama3 scaling, factor x the original length when that is larger;
 * INT64_MAX for dynamic NTK (it rescales with the length).  0: unknown. */
int64_t cli_ctx_covered(const sl_model_config *c, char *how, size_t cap);
/* Check a context of ctx positions (`what` names it: "--ctx 2048", "the
 * prompt (3000 tokens)") against the model: within max_position_embeddings,
 * nothing; beyond it but covered by RoPE scaling, a one-line warning;
 * beyond what the RoPE covers, refused (2, printed) unless `force`, then
 * warned.  `path` names the model. */
int cli_check_ctx(const char *path, const sl_model_config *c, int64_t ctx, const char *what, bool force);

#endif
