/*
 * silica/toolcall.h — tool calls in generated text: which format a model
 * family writes them in (found from its chat template) and the parser that
 * turns an answer into content + calls {name, arguments}.
 *
 * Formats (what each family's own chat template renders for an assistant
 * turn that calls tools, so what the model was trained to write):
 *  - llama3:  the whole answer is {"name": F, "parameters": {...}}
 *             (optionally after <|python_tag|>; several separated by ';'),
 *             Meta's Llama 3.1/3.2/3.3 JSON tool calling;
 *  - hermes:  <tool_call>{"name": F, "arguments": {...}}</tool_call>, one
 *             block per call after optional content (Qwen2.5/Qwen3/QwQ,
 *             NousResearch Hermes 2 Pro / Hermes 3, Granite 4);
 *  - mistral: [TOOL_CALLS][{"name": F, "arguments": {...}, "id": I}, ...]
 *             (Mistral Nemo, tokenizer v3) or [TOOL_CALLS]F[CALL_ID]I[ARGS]{...}
 *             per call (Mistral Small 3.2, Devstral, Ministral 3: v11+).
 *
 * Invariants:
 *  - Parsing never fails on model output: text that is not a well-formed
 *    call of the format is content (n_calls 0, content = the whole text).
 *  - arguments is always the compact JSON text of an object.
 *  - Text before sl_tool_calls_start's offset is content in every parse of
 *    any continuation of the text, so a server may stream it as it comes.
 */
#ifndef SILICA_TOOLCALL_H
#define SILICA_TOOLCALL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_tool_format {
    SL_TOOL_FORMAT_NONE = 0,   /* the template shows no tool-call format silica knows */
    SL_TOOL_FORMAT_LLAMA3,
    SL_TOOL_FORMAT_HERMES,
    SL_TOOL_FORMAT_MISTRAL
} sl_tool_format;

/* "none", "llama3", "hermes", "mistral". */
SL_API const char *sl_tool_format_name(sl_tool_format f);
/* The format named `name` (as above): 0, or SL_EINVAL naming the choices. */
SL_API int sl_tool_format_from_name(const char *name, sl_tool_format *out, sl_error *err);
/* The format a chat template's source renders tool calls in. */
SL_API sl_tool_format sl_tool_format_of_template(const char *src, size_t len);

/* Where tool calls begin, or may begin once more text comes, in
 * text[0..len): len when the text so far is content only. */
SL_API size_t sl_tool_calls_start(sl_tool_format f, const char *text, size_t len);

typedef struct sl_tool_call {
    char *name;
    char *arguments;   /* compact JSON object text */
    char *id;          /* the id the model wrote (Mistral [CALL_ID] / "id"), else NULL */
} sl_tool_call;

typedef struct sl_tool_calls {
    char *content;     /* text outside the calls (NUL-terminated; trailing whitespace trimmed when there are calls) */
    size_t content_len;
    sl_tool_call *calls;
    int n_calls;
} sl_tool_calls;

/* Split text[0..len) into content and calls.  0, or SL_ENOMEM. */
SL_API int sl_tool_calls_parse(sl_tool_format f, const char *text, size_t len, sl_tool_calls *out, sl_error *err);
SL_API void sl_tool_calls_free(sl_tool_calls *c);

/* What an answer that must call a tool is made of, for grammar-constrained
 * decoding (OpenAI's tool_choice "required" or a named function): *prefix,
 * the text the answer starts with (appended to the prompt: "<tool_call>\n"
 * for hermes, "[TOOL_CALLS]" for mistral, "" for llama3; static storage),
 * and *schema (caller frees), the JSON Schema of the rest: one call
 * {"name", "arguments"} ({"name", "parameters"} for llama3; an array of
 * that one call for mistral) whose arguments validate against the
 * tool's "parameters".  tools: OpenAI-style [{"type": "function",
 * "function": {name, parameters}}]; name: the only tool allowed, or NULL
 * for any.  Over 16 tools the arguments of "any" are only checked to be an
 * object (the recognizer follows at most 16 alternatives at once).
 * SL_EINVAL naming the problem: format NONE, no tools, name not among them. */
SL_API int sl_tool_call_schema(sl_tool_format f, const cJSON *tools, const char *name, const char **prefix,
                               cJSON **schema, sl_error *err);

/* An id for a call the model did not name: "call_" + 24 alphanumerics, or 9
 * alphanumerics for mistral (its templates require that length); a function
 * of `seed` only.  buf needs 32 bytes. */
SL_API void sl_tool_call_id(sl_tool_format f, uint64_t seed, char buf[32]);

#ifdef __cplusplus
}
#endif
#endif
