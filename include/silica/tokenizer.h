/*
 * silica/tokenizer.h — text <-> token ids, identical to Hugging Face
 * `tokenizers` for the BPE tokenizers LLMs ship in tokenizer.json
 * (byte-level: Llama 3, Qwen, DeepSeek, gpt-oss; SentencePiece-style with
 * byte fallback: Llama 2, Mistral, Gemma).
 *
 * Invariants:
 *  - A loaded tokenizer is immutable except for its private word cache, so
 *    one sl_tokenizer must be used by one thread at a time (load one per
 *    thread for parallel work).
 *  - Encode input that is not valid UTF-8 is first repaired the way
 *    Python's bytes.decode("utf-8", "replace") and Rust's
 *    String::from_utf8_lossy do (each maximal invalid subpart becomes
 *    U+FFFD); HF tokenizers itself only accepts valid strings.
 *  - Decode output is always valid UTF-8 (invalid byte runs become U+FFFD
 *    exactly as HF's decoders produce them).  Ids outside the vocabulary are
 *    an error (HF silently drops them).
 *  - An unsupported tokenizer.json component is a load error naming it.
 */
#ifndef SILICA_TOKENIZER_H
#define SILICA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/api.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_tokenizer sl_tokenizer;

/* Load from a model directory (tokenizer.json, or a SentencePiece BPE
 * tokenizer.model converted as transformers' LlamaTokenizerFast does, plus
 * optional tokenizer_config.json; else the directory's one GGUF model), from
 * a tokenizer.json path, or from a GGUF file (its tokenizer.ggml.* metadata,
 * as sl_tok_load_gguf; a split part reads the set's first part). */
SL_API int sl_tok_load(const char *path, sl_tokenizer **out, sl_error *err);
/* The tokenizer a model runs with.  `model` is what sl_model_open takes.
 * `override` (may be NULL) is a tokenizer the user named (sl_tok_load's
 * path), which wins.  Else: a GGUF model's own tokenizer.ggml.* metadata
 * (a tokenizer.json beside it is used only when the GGUF has none), else
 * the tokenizer.json / tokenizer.model in the model's directory.  No
 * tokenizer at all: 0 with *out NULL. */
SL_API int sl_tok_load_for_model(const char *model, const char *override, sl_tokenizer **out, sl_error *err);
/* From a GGUF file's tokenizer.ggml.* metadata (model "llama":
 * SentencePiece-style with byte fallback; "gpt2": byte-level BPE with the
 * pre-tokenizer tokenizer.ggml.pre names), built as the equivalent
 * tokenizer.json; bos/eos ids and add_bos_token/add_eos_token as the file
 * says (llama.cpp's defaults when absent).  `name` labels messages. */
struct sl_gguf;
SL_API int sl_tok_load_gguf(const struct sl_gguf *g, const char *name, sl_tokenizer **out, sl_error *err);
SL_API int sl_tok_load_gguf_file(const char *path, sl_tokenizer **out, sl_error *err);
/* Load from an in-memory tokenizer.json (name is used in messages). */
SL_API int sl_tok_load_json(const char *json, size_t len, const char *name, sl_tokenizer **out, sl_error *err);
SL_API void sl_tok_free(sl_tokenizer *t);

/* Encode flags */
enum {
    SL_TOK_ADD_SPECIAL = 1u,     /* apply the post-processor (BOS/EOS as configured) */
    SL_TOK_SPECIAL_AS_TEXT = 2u, /* special-token text in the input is plain text */
    SL_TOK_SKIP_SPECIAL = 4u     /* decode: leave special tokens out */
};

typedef struct sl_tok_ids {
    uint32_t *ids;
    size_t n, cap;
} sl_tok_ids;

/* Bytes of the longest valid UTF-8 prefix of s[0..n) (the strict rules the
 * encoder's repair uses: no overlongs, surrogates or code points past
 * U+10FFFF): n when all of it is valid.  U+0000 counts as valid. */
SL_API size_t sl_utf8_valid_prefix(const char *s, size_t n);
/* s[0..n) repaired as encode does (each maximal invalid subpart -> U+FFFD):
 * malloc'd, NUL-terminated, its length in *out_len (may be NULL); NULL when
 * out of memory. */
SL_API char *sl_utf8_lossy(const char *s, size_t n, size_t *out_len);

/* Append the ids of text[0..len) to *out (out->n is not reset). */
SL_API int sl_tok_encode(sl_tokenizer *t, const char *text, size_t len, unsigned flags, sl_tok_ids *out, sl_error *err);
SL_API void sl_tok_ids_free(sl_tok_ids *ids);

/* Token strings as HF's Encoding.tokens shows them: the vocab token for
 * model tokens, the text an added token matched (with what lstrip/rstrip
 * swallowed), the post-processor's own name for BOS/EOS.  String i is
 * data + off[i], len[i] bytes, NUL-terminated. */
typedef struct sl_tok_strs {
    char *data;
    size_t size, cap;
    size_t *off, *len;
    size_t n, ncap;
} sl_tok_strs;
/* sl_tok_encode that also appends each token's string to *strs. */
SL_API int sl_tok_encode_strs(sl_tokenizer *t, const char *text, size_t len, unsigned flags, sl_tok_ids *out,
                              sl_tok_strs *strs, sl_error *err);
SL_API void sl_tok_strs_free(sl_tok_strs *s);

/* Decode ids into a malloc'd NUL-terminated UTF-8 string. */
SL_API int sl_tok_decode(const sl_tokenizer *t, const uint32_t *ids, size_t n, unsigned flags, char **text, size_t *len,
                         sl_error *err);

/* Streaming decode for generation: each step returns the text that became
 * final (possibly empty, never a broken UTF-8 sequence); same algorithm and
 * results as HF's tokenizers.decoders.DecodeStream. */
typedef struct sl_tok_stream sl_tok_stream;
SL_API int sl_tok_stream_new(const sl_tokenizer *t, unsigned flags, sl_tok_stream **out, sl_error *err);
/* *text is borrowed, valid until the next call; *len == 0 when nothing new. */
SL_API int sl_tok_stream_step(sl_tok_stream *s, uint32_t id, const char **text, size_t *len, sl_error *err);
SL_API void sl_tok_stream_free(sl_tok_stream *s);

/* Vocabulary */
SL_API uint32_t sl_tok_vocab_size(const sl_tokenizer *t);   /* 1 + highest id */
/* Token string of id (model vocab or added token); NULL if none. */
SL_API const char *sl_tok_id_to_token(const sl_tokenizer *t, uint32_t id, size_t *len);
/* Id of a token string; -1 if absent. */
SL_API int64_t sl_tok_token_to_id(const sl_tokenizer *t, const char *tok, size_t len);
SL_API bool sl_tok_is_special(const sl_tokenizer *t, uint32_t id);
/* The raw bytes id adds to decoded text (what constrained decoding checks):
 * the decoder's per-token steps — Replace, byte-level unmapping, a <0xXX>
 * byte-fallback token's single byte — without the whole-text ones (Strip of
 * a leading space, UTF-8 repair), so a character split across tokens shows
 * as its partial bytes.  *bytes malloc'd (NUL-terminated, caller frees).
 * SL_EUNSUPPORTED for decoder chains other than ByteLevel or SentencePiece
 * style.  Reads the tokenizer only: safe from any thread. */
SL_API int sl_tok_token_bytes(const sl_tokenizer *t, uint32_t id, char **bytes, size_t *len, sl_error *err);

/* What tokenizer_config.json (or a GGUF's tokenizer.ggml.*) says (ids -1
 * when absent). */
typedef struct sl_tok_info {
    int64_t bos_id, eos_id;
    const char *bos_token, *eos_token; /* NULL when absent */
    bool add_bos, add_eos;             /* as configured (false when absent) */
    const char *model_type;            /* "BPE" */
    int64_t eot_id, pad_id, unk_id;    /* GGUF: tokenizer.ggml.eot/padding/unknown_token_id (end of turn:
                                          generation stops there too, as llama.cpp does) */
} sl_tok_info;
SL_API const sl_tok_info *sl_tok_get_info(const sl_tokenizer *t);

#ifdef __cplusplus
}
#endif
#endif
