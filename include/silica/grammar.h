/*
 * silica/grammar.h — structured output: a JSON Schema (or "any JSON
 * object") compiled to a byte-level pushdown recognizer, and the set of
 * tokens of a vocabulary that keep it alive, so generation can be
 * constrained to text that parses and validates (generate.h's
 * sl_gen_params.grammar; `silica run --json-schema`, the server's
 * response_format / Ollama format).
 *
 * Invariants:
 *  - Soundness over completeness: every byte string the recognizer calls
 *    complete is one JSON value that validates against the schema (JSON
 *    Schema 2020-12 semantics, as Python's `jsonschema` checks them).  It
 *    accepts a canonical subset where the schema would allow more:
 *    whitespace is at most one space, or a newline and up to 20 spaces or
 *    tabs, between tokens and none after the value; enum/const values are
 *    written compactly as given; object keys appear at most once; an object
 *    with "properties" and no "additionalProperties" takes only those keys
 *    (as OpenAI's strict mode); an array with "prefixItems" and no "items"
 *    only those items; numbers have at most 15 digits per part; \u
 *    escapes never name a surrogate.
 *  - Supported keywords: type (a name or an array of names), properties,
 *    required, additionalProperties (true, false or a schema), items (a
 *    schema or false), prefixItems, minItems, maxItems, minLength,
 *    maxLength, enum, const, anyOf, oneOf (as anyOf: the alternatives are
 *    expected to be disjoint), allOf with one schema, $ref to
 *    #/$defs/NAME or #/definitions/NAME (recursion allowed; any local JSON
 *    pointer), nullable (OpenAPI's: accepted, adds no null — JSON Schema
 *    validators ignore it, so type [..., "null"] is the way to allow null),
 *    and the annotations title, description, default, examples,
 *    $comment, $schema, $id, deprecated, readOnly, writeOnly, strict.  Any
 *    other keyword is an error naming it and where it is (never ignored).
 *  - Limits (errors, not crashes): 4096 compiled nodes, 64 properties per
 *    object, 1000 enum values, schema nesting 64, value nesting 32 at run
 *    time (deeper values are not generated), 16 live alternatives.
 *  - A matcher's state depends only on the bytes fed to it, so a
 *    sequence's mask never depends on other sequences (generate.h's
 *    exactness rule).
 */
#ifndef SILICA_GRAMMAR_H
#define SILICA_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/api.h"
#include "silica/error.h"
#include "silica/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A compiled grammar: immutable, may be shared by any number of matchers
 * and threads. */
typedef struct sl_grammar sl_grammar;

/* Compile a JSON Schema.  Errors name the keyword and its JSON pointer
 * ("schema: /properties/a: unsupported keyword 'pattern'"). */
SL_API int sl_grammar_from_schema(const cJSON *schema, sl_grammar **out, sl_error *err);
/* The same from JSON text (parse errors name the byte). */
SL_API int sl_grammar_from_schema_text(const char *text, size_t len, sl_grammar **out, sl_error *err);
/* Any JSON object (OpenAI's json_object, Ollama's "json", llama.cpp's
 * grammars/json.gbnf root). */
SL_API int sl_grammar_json_object(sl_grammar **out, sl_error *err);
SL_API void sl_grammar_free(sl_grammar *g);

/* A recognizer run over one output. */
typedef struct sl_grammar_matcher sl_grammar_matcher;
SL_API int sl_grammar_matcher_new(const sl_grammar *g, sl_grammar_matcher **out, sl_error *err);
SL_API void sl_grammar_matcher_free(sl_grammar_matcher *m);
/* Back to the start (no bytes seen). */
SL_API void sl_grammar_matcher_reset(sl_grammar_matcher *m);
/* Feed bytes: true when they keep the recognizer alive (the state then
 * includes them); false leaves the state as it was. */
SL_API bool sl_grammar_accept_bytes(sl_grammar_matcher *m, const char *s, size_t n);
/* The bytes so far form one complete valid value. */
SL_API bool sl_grammar_complete(const sl_grammar_matcher *m);
/* Complete, and no further byte can be accepted. */
SL_API bool sl_grammar_finished(const sl_grammar_matcher *m);

/* A vocabulary's tokens as bytes (tokenizer.h's sl_tok_token_bytes) in a
 * byte trie, shared by every matcher of a model.  Ids >= the tokenizer's
 * vocabulary and special tokens are never allowed. */
typedef struct sl_grammar_vocab sl_grammar_vocab;
SL_API int sl_grammar_vocab_new(const sl_tokenizer *t, int n_vocab, sl_grammar_vocab **out, sl_error *err);
SL_API void sl_grammar_vocab_free(sl_grammar_vocab *v);
SL_API int sl_grammar_vocab_size(const sl_grammar_vocab *v);

/* allowed[id] (n_vocab bytes) = 1 when all of id's bytes keep m alive,
 * else 0.  End-of-sequence ids are the caller's: allow them when
 * sl_grammar_complete.  Returns how many ids are allowed. */
SL_API int sl_grammar_mask(sl_grammar_matcher *m, const sl_grammar_vocab *v, uint8_t *allowed);
/* Feed token id's bytes (sl_grammar_accept_bytes). */
SL_API bool sl_grammar_accept_token(sl_grammar_matcher *m, const sl_grammar_vocab *v, int32_t id);

#ifdef __cplusplus
}
#endif
#endif
