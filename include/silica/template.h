/*
 * silica/template.h — chat templates: a Jinja2-subset interpreter that renders
 * Hugging Face chat templates byte-for-byte like transformers'
 * apply_chat_template (sandboxed jinja2, trim_blocks, lstrip_blocks, loop
 * controls, transformers' tojson / raise_exception / strftime_now).
 *
 * A compiled template is immutable and may be rendered many times (also from
 * several threads at once: rendering allocates its own arena).  The context
 * is a cJSON object whose members become template variables (messages,
 * tools, add_generation_prompt, bos_token, ...).  JSON numbers that are
 * integral and within +-2^53 are ints, others floats.
 *
 * Errors: "NAME:LINE: message" in sl_error.  A template's own
 * raise_exception(msg) gives exactly "NAME:LINE: msg" with SL_EINVAL;
 * constructs outside the subset give SL_EUNSUPPORTED naming the construct.
 */
#ifndef SILICA_TEMPLATE_H
#define SILICA_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;
typedef struct sl_tmpl sl_tmpl;

/* Bounds on one render; zero fields mean the defaults shown. */
typedef struct sl_tmpl_limits {
    uint64_t max_output;      /* bytes of rendered text (16 MiB) */
    uint64_t max_iterations;  /* for-loop iterations, all loops together (1,000,000) */
    uint32_t max_depth;       /* nested macro calls (200) */
    uint64_t max_memory;      /* bytes of working memory (256 MiB) */
} sl_tmpl_limits;

/* Compile `src` (len bytes, UTF-8).  `name` labels error messages. */
SL_API int sl_tmpl_compile(const char *src, size_t len, const char *name, sl_tmpl **out, sl_error *err);
SL_API void sl_tmpl_free(sl_tmpl *t);

/* Render with the members of the JSON object `ctx` as variables.  On success
 * *out is a malloc'd NUL-terminated string (free it) and *out_len its length
 * (the text may itself contain NUL bytes). `limits` may be NULL. */
SL_API int sl_tmpl_render(const sl_tmpl *t, const struct cJSON *ctx, const sl_tmpl_limits *limits, char **out,
                          size_t *out_len, sl_error *err);

/* The chat template of a model: `path` is a model directory
 * (chat_template.jinja, else chat_template.json, else tokenizer_config.json's
 * "chat_template", a string or a list of {name, template}), a template
 * file, or a GGUF model (a .gguf file, or a directory whose weights are one
 * GGUF model and that has tokenizer.chat_template: tokenizer.chat_template,
 * named ones under tokenizer.chat_template.NAME; special tokens from
 * tokenizer.ggml.<bos|eos|unk|pad|sep>_token_id).  `which` picks a named template (NULL: "tool_use" when has_tools and
 * present, else "default").  On success *src is malloc'd and, when non-NULL
 * pointers are given, *special receives a malloc'd cJSON object with the
 * special tokens (bos_token, eos_token, unk_token, pad_token, ...) found in
 * tokenizer_config.json / special_tokens_map.json (empty for a file). */
SL_API int sl_tmpl_load_chat_template(const char *path, const char *which, int has_tools, char **src,
                                      struct cJSON **special, sl_error *err);

/* Whether sl_tmpl_load_chat_template(path, ...) finds a template: a GGUF
 * model with tokenizer.chat_template, or a model directory with one of the
 * files named above. */
SL_API bool sl_tmpl_has_chat_template(const char *path);

/* Prepare messages as transformers does before rendering: drop keys whose
 * value is null, and alias reasoning ("reasoning_content"/"thinking"/
 * "reasoning") under "thinking" and "reasoning_content".  Returns a new
 * cJSON array (caller deletes) or NULL on a malformed list (err filled). */
SL_API struct cJSON *sl_tmpl_normalize_messages(const struct cJSON *messages, sl_error *err);

#ifdef __cplusplus
}
#endif
#endif
