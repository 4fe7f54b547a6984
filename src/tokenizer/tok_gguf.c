/*
 * tok_gguf.c — a tokenizer from a GGUF file's tokenizer.ggml.* metadata.
 *
 * Like tok_spm.c, it writes the tokenizer.json that Hugging Face tokenizers
 * loads for the same model and hands it to the JSON loader, so encode,
 * decode and streaming decode are the shared code.  Keys read (names and
 * meanings as llama.cpp's src/llama-vocab.cpp and gguf-py's constants.py):
 *   model       "llama" (SentencePiece-style BPE over raw UTF-8 with <0xNN>
 *               byte fallback; merges from the vocabulary ordered by score,
 *               then merged id) or "gpt2" (byte-level BPE with merges)
 *   tokens, token_type (1 normal, 2 unknown, 3 control, 4 user-defined,
 *               5 unused, 6 byte; absent = normal), scores, merges ("a b")
 *   pre         gpt2 only: the pre-tokenizer family, mapped to the Split
 *               regexes of the family's tokenizer.json (table below)
 *   bos/eos/eot/padding/unknown_token_id, add_bos_token, add_eos_token,
 *   add_space_prefix
 * Built tokenizer:
 *   llama: as tok_spm.c's legacy form — normalizer [Prepend ▁ when
 *     add_space_prefix (default true), Replace ' ' -> ▁], decoder Replace +
 *     ByteFallback + Fuse (+ Strip of the prepended space).
 *   gpt2: model vocab = the tokens that are not control/user-defined/unknown
 *     (those are added tokens: special unless user-defined, not normalized);
 *     pre-tokenizer Split(regex, Isolated) per family regex + ByteLevel
 *     without regex; ByteLevel decoder; NFC normalizer for the Qwen2 family
 *     (its tokenizer.json has one; GGUF does not record normalizers).
 *   gpt2 with a raw family (gemma4's pre-tokenizer; gemma3 converted from
 *     tokenizer.json gets it): SentencePiece-style BPE on raw UTF-8 — Replace
 *     ' ' -> ▁ normalizer, newline-run splits, <0xNN> byte fallback, decoder
 *     Replace + ByteFallback + Fuse.
 *   ignore_merges (a piece that is a token is not merged further, as
 *     tiktoken does) for the families whose tokenizer.json sets it: Llama 3
 *     (and smaug-bpe / dbrx, whose converter hash a Llama 3 base model also
 *     gives), tekken, o200k (gpt-4o, llama4).
 *   BOS/EOS added as add_bos_token/add_eos_token say; absent, llama.cpp's
 *   defaults: BOS for "llama" and the llama3/tekken/chameleon families.
 * Invariants: every GGUF value is type-checked and bounds-checked (token
 * strings non-empty UTF-8 without NUL, ids < n_tokens); an unknown model or
 * pre-tokenizer is one error line naming the key and the value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/gguf.h"
#include "tokenizer/tok_impl.h"

#define K_MODEL "tokenizer.ggml.model"
#define K_TOKENS "tokenizer.ggml.tokens"
#define K_TYPES "tokenizer.ggml.token_type"
#define K_SCORES "tokenizer.ggml.scores"
#define K_MERGES "tokenizer.ggml.merges"
#define K_PRE "tokenizer.ggml.pre"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* ---- pre-tokenizer families (regexes as the families' tokenizer.json
 * files write them; names as llama.cpp's llama-vocab.cpp accepts them) ---- */
#define RE_CONTR "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3 RE_CONTR "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 RE_CONTR "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN35                                                                                              \
    RE_CONTR "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|" \
             "\\s+"
#define RE_O200K_WORD "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_O200K_LOW "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_GPT4O                                                                                                   \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_O200K_WORD "*" RE_O200K_LOW "+" RE_CONTR "?|[^\\r\\n\\p{L}\\p{N}]?" RE_O200K_WORD   \
    "+" RE_O200K_LOW "*" RE_CONTR "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_TEKKEN                                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_O200K_WORD "*" RE_O200K_LOW "+|[^\\r\\n\\p{L}\\p{N}]?" RE_O200K_WORD "+" RE_O200K_LOW \
    "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_DSV3_PUNCT                                                                                         \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+" \
    "[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
#define RE_SEED_CODER                                                                                      \
    RE_CONTR "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|" \
             "\\s+"
#define RE_BAILING                                                                                                  \
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|" \
    "\\s+"

typedef struct pre_family {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *re[6]; /* applied in order, each Split(Isolated) */
    bool ignore_merges, nfc, add_bos;
    bool raw; /* SentencePiece-style BPE over raw UTF-8: ' ' -> ▁, <0xNN> byte fallback, no byte-level map */
} pre_family;

static const pre_family k_pre[] = {
    {"default|", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false, false, false},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano", {RE_LLAMA3}, true, false, true, false},
    {"dbrx|smaug-bpe", {RE_LLAMA3}, true, false, false, false},
    {"chatglm-bpe|glm4", {RE_LLAMA3}, false, false, false, false},
    {"qwen2|deepseek-r1-qwen|megrez", {RE_QWEN2}, false, true, false, false},
    {"kormo|f2llmv2|stablelm2|hunyuan|solar-open|grok-2", {RE_QWEN2}, false, false, false, false},
    {"qwen35", {RE_QWEN35}, false, true, false, false},
    {"deepseek-v3|hunyuan-dense|joyai-llm", {"\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+", RE_DSV3_PUNCT}, false, false, false, false},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+", "\\p{N}"}, false, false, false, false},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|mpt|olmo|jais|trillion|"
     "granite-docling|exaone4|jina-v1-en|jina-v2-code|roberta-bpe",
     {RE_GPT2}, false, false, false, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b|mellum2", {"\\p{N}", RE_GPT2}, false, false, false, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, false, false, false},
    {"gpt-4o|llama4|kanana2|talkie|minimax-m2", {RE_GPT4O}, true, false, false, false},
    {"tekken", {RE_TEKKEN}, true, false, true, false},
    {"seed-coder", {RE_SEED_CODER}, false, false, false, false},
    {"bailingmoe|bailingmoe2|llada-moe", {RE_BAILING}, false, false, false, false},
    {"gemma4|granite-embed-multi-311m|sarvam-moe", {"[^\\n]+|[\\n]+"}, false, false, false, true},
    {"poro-chat|bloom|gpt3-finnish", {" ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"}, false, false, false, false},
};

static const pre_family *find_pre(const char *s, size_t n) {
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++) {
        const char *p = k_pre[i].names;
        for (;;) {
            const char *e = strchr(p, '|');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            if (l == n && !memcmp(p, s, n)) return &k_pre[i];
            if (!e) break;
            p = e + 1;
        }
    }
    return NULL;
}

/* ---- reading the metadata ---- */
typedef struct gguf_vocab {
    const char *name;
    sl_gguf_value tokens, types, scores;
    bool has_types, has_scores;
    uint64_t n;
} gguf_vocab;

static int get_token(const gguf_vocab *v, uint64_t i, const char **s, size_t *n, uint8_t *type, float *score,
                     sl_error *err) {
    sl_gguf_value e;
    if (sl_gguf_array_get(&v->tokens, i, &e) || e.type != SL_GGUF_STRING)
        return sl_errorf(err, SL_EINVAL, "%s: %s[%llu]: expected a string", v->name, K_TOKENS, (unsigned long long)i);
    *s = (const char *)e.data;
    *n = (size_t)e.len;
    if (e.len == 0 || e.len >= UINT32_MAX / 4 || memchr(*s, 0, *n) || !tok_utf8_valid(*s, *n))
        return sl_errorf(err, SL_EINVAL, "%s: %s[%llu]: a token must be non-empty UTF-8 without NUL", v->name, K_TOKENS,
                         (unsigned long long)i);
    int64_t ty = TT_NORMAL;
    if (v->has_types && (sl_gguf_array_get(&v->types, i, &e) || !sl_gguf_value_i64(&e, &ty) || ty < 0 || ty > 6))
        return sl_errorf(err, SL_EINVAL, "%s: %s[%llu]: expected a token type 0..6", v->name, K_TYPES, (unsigned long long)i);
    *type = ty == 0 ? TT_NORMAL : (uint8_t)ty; /* 0: llama.cpp's "undefined", treated as normal */
    double sc = 0;
    if (v->has_scores && (sl_gguf_array_get(&v->scores, i, &e) || !sl_gguf_value_f64(&e, &sc)))
        return sl_errorf(err, SL_EINVAL, "%s: %s[%llu]: expected a number", v->name, K_SCORES, (unsigned long long)i);
    *score = (float)sc;
    return 0;
}

static int opt_array(const sl_gguf *g, const char *key, sl_gguf_value *v, bool *has, uint64_t n, const char *name,
                     sl_error *err) {
    *has = sl_gguf_find(g, key) >= 0;
    if (!*has) return 0;
    if (sl_gguf_get_array(g, key, v, err)) return SL_EINVAL;
    if (v->len != n)
        return sl_errorf(err, SL_EINVAL, "%s: %s has %llu entries, %s has %llu", name, key, (unsigned long long)v->len,
                         K_TOKENS, (unsigned long long)n);
    return 0;
}

/* -1 when absent; an error when present and not a token id. */
static int opt_id(const sl_gguf *g, const char *key, uint64_t n, int64_t *id, const char *name, sl_error *err) {
    *id = -1;
    if (sl_gguf_find(g, key) < 0) return 0;
    int64_t v;
    if (sl_gguf_get_i64(g, key, &v, err)) return SL_EINVAL;
    if (v < 0 || (uint64_t)v >= n)
        return sl_errorf(err, SL_EINVAL, "%s: %s is %lld, not a token id (the vocabulary has %llu)", name, key, (long long)v,
                         (unsigned long long)n);
    *id = v;
    return 0;
}

static int opt_bool(const sl_gguf *g, const char *key, bool def, bool *out, sl_error *err) {
    *out = def;
    return sl_gguf_find(g, key) < 0 ? 0 : sl_gguf_get_bool(g, key, out, err);
}

static int put_s(tok_buf *o, const char *s) { return tok_buf_put(o, s, strlen(s)); }

/* ---- "llama": through tok_spm.c ---- */
static int llama_json(const sl_gguf *g, const gguf_vocab *v, tok_buf *o, sl_error *err) {
    tok_spm_vocab m = {0};
    int rc = 0;
    for (uint64_t i = 0; i < v->n && !rc; i++) {
        const char *s;
        size_t n;
        uint8_t ty;
        float sc;
        if (!(rc = get_token(v, i, &s, &n, &ty, &sc, err))) rc = tok_spm_vocab_push(&m, s, n, ty, sc, v->name, err);
    }
    tok_spm_opts opt = {.legacy = true, .add_prefix = true};
    if (!rc) rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", true, &opt.add_prefix, err);
    if (!rc) rc = tok_spm_vocab_json(&m, &opt, o, v->name, err);
    tok_spm_vocab_free(&m);
    return rc;
}

/* ---- "gpt2": byte-level BPE ---- */
static int gpt2_head(const gguf_vocab *v, const pre_family *pf, tok_buf *o, sl_error *err) {
    int rc = put_s(o, "{\"added_tokens\":[");
    bool first = true;
    for (uint64_t i = 0; i < v->n && !rc; i++) {
        const char *s;
        size_t n;
        uint8_t ty;
        float sc;
        if ((rc = get_token(v, i, &s, &n, &ty, &sc, err))) return rc;
        if (ty != TT_CONTROL && ty != TT_USER && ty != TT_UNKNOWN) continue;
        char head[48];
        snprintf(head, sizeof head, "%s{\"id\":%llu,\"content\":", first ? "" : ",", (unsigned long long)i);
        first = false;
        rc = put_s(o, head);
        if (!rc) rc = tok_json_put_str(o, s, n);
        if (!rc) rc = put_s(o, ty == TT_USER ? ",\"special\":false,\"normalized\":false}" : ",\"special\":true,\"normalized\":false}");
    }
    if (!rc)
        rc = put_s(o, pf->raw   ? "],\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"},"
                      : pf->nfc ? "],\"normalizer\":{\"type\":\"NFC\"},"
                                : "],\"normalizer\":null,");
    if (!rc) rc = put_s(o, "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[");
    for (int k = 0; k < 6 && pf->re[k] && !rc; k++) {
        rc = put_s(o, "{\"type\":\"Split\",\"pattern\":{\"Regex\":");
        if (!rc) rc = tok_json_put_str(o, pf->re[k], strlen(pf->re[k]));
        if (!rc) rc = put_s(o, "},\"behavior\":\"Isolated\",\"invert\":false},");
    }
    if (!rc && pf->raw)
        rc = put_s(o, "{\"type\":\"Sequence\",\"pretokenizers\":[]}]},\"post_processor\":null,"
                      "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
                      "\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},"
                      "\"model\":{\"type\":\"BPE\",\"unk_token\":null,\"fuse_unk\":true,\"byte_fallback\":true,");
    else if (!rc)
        rc = put_s(o, "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]},"
                      "\"post_processor\":null,"
                      "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false},"
                      "\"model\":{\"type\":\"BPE\",\"unk_token\":null,\"fuse_unk\":false,\"byte_fallback\":false,");
    if (!rc) rc = put_s(o, pf->ignore_merges ? "\"ignore_merges\":true,\"vocab\":{" : "\"ignore_merges\":false,\"vocab\":{");
    first = true;
    for (uint64_t i = 0; i < v->n && !rc; i++) {
        const char *s;
        size_t n;
        uint8_t ty;
        float sc;
        if ((rc = get_token(v, i, &s, &n, &ty, &sc, err))) return rc;
        if (ty == TT_CONTROL || ty == TT_USER || ty == TT_UNKNOWN) continue;
        char num[32];
        snprintf(num, sizeof num, ":%llu", (unsigned long long)i);
        if (!first) rc = tok_buf_putc(o, ',');
        first = false;
        if (!rc) rc = tok_json_put_str(o, s, n);
        if (!rc) rc = put_s(o, num);
    }
    return rc ? (rc == SL_ENOMEM ? sl_errorf(err, SL_ENOMEM, "%s: out of memory", v->name) : rc) : 0;
}

/* The model vocabulary's strings, for checking merges. */
typedef struct vocab_map {
    tok_buf strs;
    uint32_t *off, *len, *ids;
    tok_strmap map;
} vocab_map;

static int vocab_map_build(vocab_map *vm, const gguf_vocab *v, sl_error *err) {
    size_t n = 0;
    vm->off = malloc(v->n * sizeof *vm->off);
    vm->len = malloc(v->n * sizeof *vm->len);
    vm->ids = malloc(v->n * sizeof *vm->ids);
    if (!vm->off || !vm->len || !vm->ids) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", v->name);
    for (uint64_t i = 0; i < v->n; i++) {
        const char *s = NULL;
        size_t l = 0;
        uint8_t ty = 0;
        float sc = 0;
        int rc = get_token(v, i, &s, &l, &ty, &sc, err);
        if (rc) return rc;
        if (ty == TT_CONTROL || ty == TT_USER || ty == TT_UNKNOWN) continue;
        if (vm->strs.n + l >= UINT32_MAX / 2 || tok_buf_put(&vm->strs, s, l) || tok_buf_putc(&vm->strs, 0))
            return sl_errorf(err, SL_ENOMEM, "%s: out of memory", v->name);
        vm->off[n] = (uint32_t)(vm->strs.n - l - 1);
        vm->len[n] = (uint32_t)l;
        vm->ids[n] = (uint32_t)n; /* tok_strmap_build indexes off/len by these */
        n++;
    }
    if (tok_strmap_build(&vm->map, &vm->strs, vm->off, vm->len, vm->ids, n))
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory", v->name);
    return 0;
}

static void vocab_map_free(vocab_map *vm) {
    tok_strmap_free(&vm->map);
    tok_buf_free(&vm->strs);
    free(vm->off);
    free(vm->len);
    free(vm->ids);
}

/* Merges whose parts or result are not model tokens are left out (a GGUF
 * whose vocabulary was cut to the model's rows keeps all merges). */
static int put_gguf_merges(const sl_gguf *g, const gguf_vocab *v, const vocab_map *vm, tok_buf *o, sl_error *err) {
    sl_gguf_value mg, e;
    if (sl_gguf_get_array(g, K_MERGES, &mg, err)) return SL_EINVAL;
    tok_buf cat = {0};
    int rc = 0;
    bool first = true;
    for (uint64_t i = 0; i < mg.len && !rc; i++) {
        if (sl_gguf_array_get(&mg, i, &e) || e.type != SL_GGUF_STRING) {
            rc = sl_errorf(err, SL_EINVAL, "%s: %s[%llu]: expected a string", v->name, K_MERGES, (unsigned long long)i);
            break;
        }
        const char *s = (const char *)e.data;
        size_t n = (size_t)e.len;
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL; /* as llama.cpp: the first space after byte 0 */
        if (!sp || sp + 1 == s + n || memchr(s, 0, n) || !tok_utf8_valid(s, n)) {
            rc = sl_errorf(err, SL_EINVAL, "%s: %s[%llu]: expected \"LEFT RIGHT\"", v->name, K_MERGES, (unsigned long long)i);
            break;
        }
        size_t ln = (size_t)(sp - s), rn = (size_t)(s + n - sp - 1);
        cat.n = 0;
        if (tok_buf_put(&cat, s, ln) || tok_buf_put(&cat, sp + 1, rn)) rc = SL_ENOMEM;
        else if (tok_strmap_get(&vm->map, s, ln) < 0 || tok_strmap_get(&vm->map, sp + 1, rn) < 0 ||
                 tok_strmap_get(&vm->map, cat.p, cat.n) < 0)
            continue;
        if (!rc) rc = put_s(o, first ? "[" : ",[");
        first = false;
        if (!rc) rc = tok_json_put_str(o, s, ln);
        if (!rc) rc = tok_buf_putc(o, ',');
        if (!rc) rc = tok_json_put_str(o, sp + 1, rn);
        if (!rc) rc = tok_buf_putc(o, ']');
    }
    tok_buf_free(&cat);
    return rc == SL_ENOMEM ? sl_errorf(err, SL_ENOMEM, "%s: out of memory", v->name) : rc;
}

static int gpt2_json(const sl_gguf *g, const gguf_vocab *v, const pre_family *pf, tok_buf *o, sl_error *err) {
    vocab_map vm = {0};
    int rc = vocab_map_build(&vm, v, err);
    if (!rc) rc = gpt2_head(v, pf, o, err);
    if (!rc && put_s(o, "},\"merges\":[")) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", v->name);
    if (!rc) rc = put_gguf_merges(g, v, &vm, o, err);
    if (!rc && put_s(o, "]}}")) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", v->name);
    vocab_map_free(&vm);
    return rc;
}

static char *token_dup(const sl_tokenizer *t, int64_t id) {
    size_t n;
    const char *s = id >= 0 ? sl_tok_id_to_token(t, (uint32_t)id, &n) : NULL;
    char *d = s ? malloc(n + 1) : NULL;
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

int sl_tok_load_gguf(const sl_gguf *g, const char *name, sl_tokenizer **out, sl_error *err) {
    *out = NULL;
    if (!name) name = "GGUF";
    const char *ms;
    size_t mn;
    if (sl_gguf_find(g, K_MODEL) < 0)
        return sl_errorf(err, SL_EINVAL, "%s: no tokenizer in this GGUF (no %s)", name, K_MODEL);
    if (sl_gguf_get_str(g, K_MODEL, &ms, &mn, err)) return SL_EINVAL;
    bool llama = mn == 5 && !memcmp(ms, "llama", 5), gpt2 = mn == 4 && !memcmp(ms, "gpt2", 4);
    if (!llama && !gpt2)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: %s \"%.*s\" is not supported (only \"llama\" and \"gpt2\")", name, K_MODEL,
                         (int)(mn > 40 ? 40 : mn), ms);
    gguf_vocab v = {.name = name};
    if (sl_gguf_get_array(g, K_TOKENS, &v.tokens, err)) return SL_EINVAL;
    v.n = v.tokens.len;
    if (v.n == 0 || v.n > 16777216)
        return sl_errorf(err, SL_EINVAL, "%s: %s must hold 1 to 2^24 tokens", name, K_TOKENS);
    int rc = opt_array(g, K_TYPES, &v.types, &v.has_types, v.n, name, err);
    if (!rc) rc = opt_array(g, K_SCORES, &v.scores, &v.has_scores, v.n, name, err);
    const pre_family *pf = NULL;
    if (!rc && gpt2) {
        const char *ps = "";
        size_t pn = 0;
        if (sl_gguf_find(g, K_PRE) >= 0 && sl_gguf_get_str(g, K_PRE, &ps, &pn, err)) return SL_EINVAL;
        if (!(pf = find_pre(ps, pn)))
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: %s \"%.*s\" is not a supported pre-tokenizer", name, K_PRE,
                             (int)(pn > 40 ? 40 : pn), ps);
    }
    int64_t bos, eos;
    bool add_bos, add_eos;
    if (!rc) rc = opt_id(g, "tokenizer.ggml.bos_token_id", v.n, &bos, name, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.eos_token_id", v.n, &eos, name, err);
    if (!rc) rc = opt_bool(g, "tokenizer.ggml.add_bos_token", llama || pf->add_bos, &add_bos, err);
    if (!rc) rc = opt_bool(g, "tokenizer.ggml.add_eos_token", false, &add_eos, err);
    if (!rc && ((add_bos && bos < 0) || (add_eos && eos < 0)))
        rc = sl_errorf(err, SL_EINVAL, "%s: tokenizer.ggml.add_%s_token is true but there is no %s_token_id", name,
                       add_bos && bos < 0 ? "bos" : "eos", add_bos && bos < 0 ? "bos" : "eos");
    if (rc) return rc;
    tok_buf o = {0};
    rc = llama ? llama_json(g, &v, &o, err) : gpt2_json(g, &v, pf, &o, err);
    if (!rc) rc = sl_tok_load_json(o.p, o.n, name, out, err);
    tok_buf_free(&o);
    if (rc) return rc;
    sl_tokenizer *t = *out;
    t->bos_s = token_dup(t, bos);
    t->eos_s = token_dup(t, eos);
    t->info.bos_token = t->bos_s;
    t->info.eos_token = t->eos_s;
    if ((bos >= 0 && !t->bos_s) || (eos >= 0 && !t->eos_s)) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    if (!rc) rc = tok_set_bos_eos(t, bos, eos, add_bos, add_eos, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.eot_token_id", v.n, &t->info.eot_id, name, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.padding_token_id", v.n, &t->info.pad_id, name, err);
    if (!rc) rc = opt_id(g, "tokenizer.ggml.unknown_token_id", v.n, &t->info.unk_id, name, err);
    if (rc) {
        sl_tok_free(t);
        *out = NULL;
    }
    return rc;
}

int sl_tok_load_gguf_file(const char *path, sl_tokenizer **out, sl_error *err) {
    sl_gguf *g = NULL;
    *out = NULL;
    int rc = sl_gguf_open(path, &g, err);
    if (!rc) rc = sl_tok_load_gguf(g, path, out, err);
    sl_gguf_close(g);
    return rc;
}
