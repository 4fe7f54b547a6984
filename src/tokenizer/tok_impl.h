/*
 * tok_impl.h — internals of the tokenizer module (src/tokenizer/).
 *
 * Pipeline (as HF tokenizers): split out non-normalized added tokens ->
 * normalize each remaining segment -> split out normalized added tokens ->
 * pre-tokenize into pieces -> BPE each piece (word cache) -> post-process.
 *
 * Invariants:
 *  - Every string is (pointer, byte length), UTF-8 valid; NUL bytes allowed.
 *  - Pieces produced during one encode live in a tok_arena whose blocks are
 *    never moved, so piece pointers stay valid until the arena is reset.
 *  - All sizes from tokenizer.json are validated at load; ids < n_ids.
 */
#ifndef SILICA_TOK_IMPL_H
#define SILICA_TOK_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/error.h"
#include "silica/tokenizer.h"
#include "silica/utf8.h"   /* sl_utf8_encode */

/* ---- growable byte buffer ---- */
typedef struct tok_buf {
    char *p;
    size_t n, cap;
} tok_buf;
int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_put(tok_buf *b, const void *s, size_t n);
static inline int tok_buf_putc(tok_buf *b, char c) { return tok_buf_put(b, &c, 1); }
void tok_buf_free(tok_buf *b);

/* ---- stable arena (blocks never move) ---- */
typedef struct tok_arena_block tok_arena_block;
typedef struct tok_arena {
    tok_arena_block *head;
} tok_arena;
char *tok_arena_alloc(tok_arena *a, size_t n);
void tok_arena_reset(tok_arena *a);   /* keeps the first block */
void tok_arena_free(tok_arena *a);

/* ---- UTF-8 / Unicode helpers (tok_utf8.c) ---- */
/* Decode one code point at s[0..n); returns its byte length (>=1); *cp = -1 if invalid. */
int tok_utf8_dec(const char *s, size_t n, int32_t *cp);
/* Length of valid UTF-8 char at s or 0 if invalid (strict, like Rust). */
size_t tok_utf8_valid_len(const char *s, size_t n);
bool tok_utf8_valid(const char *s, size_t n);
/* Repair like String::from_utf8_lossy into b. */
int tok_utf8_lossy(const char *s, size_t n, tok_buf *b);
bool tok_is_whitespace(int32_t cp);     /* Rust char::is_whitespace */
bool tok_is_alnum(int32_t cp);          /* Rust char::is_alphanumeric */
bool tok_is_numeric(int32_t cp);        /* Rust char::is_numeric */
bool tok_is_punct(int32_t cp);          /* ASCII punctuation or Unicode P* */
bool tok_is_word_char(int32_t cp);      /* regex \w */
/* GPT-2 byte <-> unicode table */
extern const uint16_t tok_byte_to_cp[256];
int tok_cp_to_byte(int32_t cp);         /* -1 if not in the table */

/* ---- JSON scanning of model.vocab / model.merges (tok_json.c) ---- */
typedef struct tok_span {
    const char *p; /* NULL when absent */
    size_t n;
} tok_span;
typedef struct tok_jscan {
    const char *p, *end;
} tok_jscan;
/* Locate model.vocab / model.merges; *rest = malloc'd copy of the JSON with
 * both blanked to {} / []; on a syntax error *err_off is the byte offset. */
int tok_json_split(const char *json, size_t n, tok_span *vocab, tok_span *merges, char **rest, size_t *err_off);
bool tok_jscan_char(tok_jscan *s, char c);  /* skip whitespace, consume c if next */
bool tok_jscan_peek(tok_jscan *s, char c);
int tok_jscan_string(tok_jscan *s, tok_buf *out);  /* append the decoded string; -1 on error */
int tok_jscan_uint(tok_jscan *s, uint64_t max, uint64_t *v);

/* ---- patterns: literal string or Oniguruma regex (tok_pattern.c) ---- */
typedef struct tok_pattern {
    bool is_regex;
    char *lit;
    size_t lit_n;
    void *re;      /* OnigRegex */
    void *region;  /* OnigRegion */
} tok_pattern;
/* From {"String": s} or {"Regex": r}; `what` names the component for messages. */
int tok_pattern_from_json(tok_pattern *p, const cJSON *j, const char *what, sl_error *err);
int tok_pattern_init_regex(tok_pattern *p, const char *re, size_t n, const char *what, sl_error *err);
void tok_pattern_free(tok_pattern *p);
/* Next match at or after `from` in s[0..n): returns true and [*ms,*me). Empty
 * matches follow Rust onig's FindMatches rules via `last_end`. */
typedef struct tok_match_iter {
    const tok_pattern *p;
    const char *s;
    size_t n, pos;
    bool has_last;
    size_t last_end;
} tok_match_iter;
void tok_match_iter_init(tok_match_iter *it, const tok_pattern *p, const char *s, size_t n);
bool tok_match_next(tok_match_iter *it, size_t *ms, size_t *me);

/* ---- pieces ---- */
typedef struct tok_piece {
    const char *s;
    size_t n;
    int64_t added_id;   /* >=0: already a token (added token) */
    bool at_origin;     /* starts at original offset 0 (Metaspace prepend_scheme "first") */
} tok_piece;
typedef struct tok_pieces {
    tok_piece *v;
    size_t n, cap;
} tok_pieces;
int tok_pieces_push(tok_pieces *p, const char *s, size_t n, int64_t added_id, bool at_origin);

/* ---- split behaviour (NormalizedString::split) ---- */
enum { TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS };
int tok_split_behavior_from_json(const cJSON *j, const char *what, int *out, sl_error *err);
/* segments: (start,end,is_match) covering s; applies behaviour, pushes non-empty parts. */
typedef struct tok_seg {
    size_t a, b;
    bool m;
} tok_seg;
int tok_split_apply(tok_seg *segs, size_t nseg, int behavior, const char *s, bool at_origin, tok_pieces *out);

/* ---- normalizers (tok_norm.c) ---- */
enum { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWER, NORM_STRIP, NORM_PREPEND, NORM_REPLACE, NORM_SEQ };
typedef struct tok_norm {
    int kind;
    bool left, right;
    tok_pattern pat;
    char *content;
    size_t content_n;
    struct tok_norm *items;
    size_t n_items;
} tok_norm;
int tok_norm_from_json(tok_norm *n, const cJSON *j, sl_error *err);
void tok_norm_free(tok_norm *n);
/* Normalize s into out (out is reset). */
int tok_norm_apply(const tok_norm *n, const char *s, size_t len, tok_buf *out, tok_buf *tmp);

/* ---- pre-tokenizers (tok_pretok.c) ---- */
enum { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE, PRE_DIGITS, PRE_PUNCT, PRE_WHITESPACE, PRE_WSSPLIT, PRE_SEQ };
enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
typedef struct tok_pretok {
    int kind;
    tok_pattern pat;
    int behavior;
    bool invert;
    bool add_prefix_space, use_regex;
    bool individual_digits;
    char repl[4];
    int repl_n;
    int32_t repl_cp;
    int prepend_scheme;
    bool split;
    struct tok_pretok *items;
    size_t n_items;
} tok_pretok;
int tok_pretok_from_json(tok_pretok *p, const cJSON *j, sl_error *err);
void tok_pretok_free(tok_pretok *p);
/* Replace *pieces with the pre-tokenized pieces; `swap` is scratch. */
int tok_pretok_apply(const tok_pretok *p, tok_pieces *pieces, tok_pieces *swap, tok_arena *arena);

/* ---- string -> id hash map over the token table ---- */
typedef struct tok_slot {
    uint32_t tag;      /* high half of the hash */
    uint32_t id1;      /* id + 1, 0 = empty */
    uint32_t off, len; /* the string: strs->p + off, len bytes */
} tok_slot;
typedef struct tok_strmap {
    tok_slot *slots;
    size_t mask;
    const tok_buf *strs;
} tok_strmap;
/* Index ids[0..n) (duplicate strings: the later id wins). */
int tok_strmap_build(tok_strmap *m, const tok_buf *strs, const uint32_t *off, const uint32_t *len,
                     const uint32_t *ids, size_t n);
int64_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n);
int64_t tok_strmap_get_h(const tok_strmap *m, const char *s, size_t n, uint64_t h);
/* Batch helpers for loading: prefetch the home slot; find the first
 * tag-matching slot (prefetching its string) for a later tok_strmap_verify. */
static inline void tok_strmap_prefetch(const tok_strmap *m, uint64_t h) {
    __builtin_prefetch(&m->slots[(size_t)h & m->mask]);
}
const tok_slot *tok_strmap_peek(const tok_strmap *m, uint64_t h);
void tok_strmap_free(tok_strmap *m);
uint64_t tok_hash(const char *s, size_t n);

/* ---- BPE model (tok_bpe.c) ---- */
typedef struct tok_merge_val {
    uint32_t rank, new_id;
} tok_merge_val;
typedef struct tok_bpe {
    tok_strmap vocab;        /* model vocab only */
    uint32_t *mod_off, *mod_len; /* model token strings in the tokenizer's strs */
    uint32_t n_mod;          /* 1 + highest model id */
    uint64_t *mkeys;         /* (a<<32|b), UINT64_MAX = empty */
    tok_merge_val *mvals;
    size_t mmask, n_merges;
    int64_t unk_id;
    char *unk_token;
    char *prefix, *suffix;   /* continuing_subword_prefix / end_of_word_suffix (NULL = None) */
    size_t prefix_n, suffix_n;
    bool fuse_unk, byte_fallback, ignore_merges;
    int64_t byte_ids[256];   /* <0xXX> ids or -1 */
    /* word cache: open addressing, cleared when half full */
    struct tok_cache_ent {
        uint64_t hash;
        uint32_t koff, klen, ioff, nids;
    } *cache;
    size_t cache_mask, cache_n;
    tok_buf cache_keys;
    uint32_t *cache_ids;
    size_t cache_ids_n, cache_ids_cap;
    /* merge scratch */
    struct tok_sym {
        uint32_t c;
        int32_t prev, next;
        uint32_t len;
    } *syms;
    size_t syms_cap;
    struct tok_heap_ent {
        uint32_t rank, pos, new_id;
    } *heap;
    size_t heap_cap;
    tok_buf word;
} tok_bpe;

/* ---- added tokens (tok_added.c) ---- */
typedef struct tok_added {
    uint32_t id;
    char *content;
    size_t n;
    bool lstrip, rstrip, single_word, normalized, special;
} tok_added;
typedef struct tok_trie {
    int32_t *term;          /* node -> index into tok_added or -1 */
    uint64_t *ekeys;        /* edge (node<<8|byte)+1, 0 empty */
    uint32_t *evals;
    size_t emask, n_nodes, cap_nodes;
    uint8_t first[32];      /* bitmap of first bytes */
} tok_trie;
int tok_trie_build(tok_trie *t, const tok_added *toks, size_t n, bool normalized, const tok_norm *norm,
                   sl_error *err);
void tok_trie_free(tok_trie *t);
/* Split s by the trie's tokens into out (added pieces carry added_id). */
int tok_added_split(const tok_trie *t, const tok_added *toks, const char *s, size_t n, bool at_origin,
                    bool special_as_text, tok_pieces *out);

/* ---- post-processor ---- */
typedef struct tok_post {
    bool present;
    uint64_t *single;     /* template: low 32 bits id (UINT32_MAX = sequence A), high 32 bits name ref */
    size_t n_single;
} tok_post;

/* ---- decoders (tok_decode.c) ---- */
enum { DEC_BYTELEVEL, DEC_METASPACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE, DEC_SEQ, DEC_BPE,
       DEC_WORDPIECE };
typedef struct tok_dec {
    int kind;
    int32_t repl_cp;     /* Metaspace replacement / Strip content */
    int prepend_scheme;
    size_t start, stop;
    tok_pattern pat;
    char *content;
    size_t content_n;
    char *suffix;
    size_t suffix_n;
    bool cleanup;
    struct tok_dec *items;
    size_t n_items;
} tok_dec;
int tok_dec_from_json(tok_dec *d, const cJSON *j, sl_error *err);
void tok_dec_free(tok_dec *d);

/* ---- the tokenizer ---- */
struct sl_tokenizer {
    char *name;
    tok_buf strs;            /* all token strings */
    uint32_t *tok_off, *tok_len;   /* per id; tok_len == UINT32_MAX = no token */
    uint8_t *tok_special;          /* per id: 1 if a special added token */
    uint32_t *add_off, *add_len;   /* per added id: original content (token_to_id) */
    uint32_t n_ids;
    tok_bpe bpe;
    tok_added *added;
    size_t n_added;
    tok_strmap added_map;          /* content -> id over added tokens */
    tok_trie trie_raw, trie_norm;
    bool has_norm, has_pre, has_dec;
    tok_norm norm;
    tok_pretok pre;
    tok_dec dec;
    tok_post post;
    sl_tok_info info;
    char *bos_s, *eos_s;
    /* scratch (one encode at a time) */
    tok_arena arena;
    tok_buf nbuf, ntmp, lossy;
    tok_pieces pa, pb, pc;
    sl_tok_ids seq;
    uint32_t *ovr;                 /* per seq id: 1 + offset in ovr_buf of its token text, 0 = vocab string */
    size_t ovr_cap, ovr_n;
    bool want_strs;
    tok_buf ovr_buf;
    struct tok_fastdec *fast;      /* decode fast path (tok_fastdec.c), NULL if the chain has none */
};

/* internal helpers shared between files */
static inline const char *tok_str(const sl_tokenizer *t, uint32_t id) { return t->strs.p + t->tok_off[id]; }

/* Reads model.vocab / merges / options; fills the model token table in t->strs. */
int tok_bpe_from_json(sl_tokenizer *t, const cJSON *model, tok_span vocab, tok_span merges, sl_error *err);
void tok_bpe_free(tok_bpe *b);
/* Append ids for one piece. */
int tok_bpe_encode(sl_tokenizer *t, const char *s, size_t n, sl_tok_ids *out);
int tok_ids_push(sl_tok_ids *ids, uint32_t id);

int tok_dec_run(const sl_tokenizer *t, const uint32_t *ids, size_t n, bool skip_special, tok_buf *out);
/* Decode fast path: set up at load when the decoder chain allows it. */
int tok_fastdec_init(sl_tokenizer *t);
void tok_fastdec_free(struct tok_fastdec *f);
/* Returns 1 when handled (0/SL_ENOMEM in *rc), 0 to use the generic path. */
int tok_fastdec_run(const sl_tokenizer *t, const uint32_t *ids, size_t n, bool skip_special, tok_buf *out, int *rc);

/* SentencePiece tokenizer.model -> equivalent tokenizer.json (tok_spm.c); *json malloc'd. */
int tok_spm_to_json(const char *buf, size_t n, const char *name, char **json, size_t *json_n, sl_error *err);

/* A SentencePiece-style vocabulary (tok_spm.c): pieces by id with their
 * SentencePiece / GGUF token types (1 normal, 2 unknown, 3 control,
 * 4 user-defined, 5 unused, 6 byte) and scores (higher merges first). */
typedef struct tok_spm_vocab {
    uint32_t *off, *len; /* piece strings in strs */
    uint8_t *type;
    float *score;
    uint32_t n, cap;
    tok_buf strs;
} tok_spm_vocab;
typedef struct tok_spm_opts {
    bool legacy;     /* normalizer [Prepend ▁ (add_prefix), Replace ' '->▁] (llama.cpp's SPM and HF's legacy
                        Llama tokenizer) instead of a Metaspace pre-tokenizer (transformers 5) */
    bool add_prefix; /* legacy: prepend ▁ to each segment and strip it on decode */
} tok_spm_opts;
int tok_spm_vocab_push(tok_spm_vocab *m, const char *s, size_t n, uint8_t type, float score, const char *name,
                       sl_error *err);
void tok_spm_vocab_free(tok_spm_vocab *m);
/* The equivalent tokenizer.json, appended to o. */
int tok_spm_vocab_json(const tok_spm_vocab *m, const tok_spm_opts *opt, tok_buf *o, const char *name, sl_error *err);
/* s[0..n) as a JSON string literal, appended to o. */
int tok_json_put_str(tok_buf *o, const char *s, size_t n);

/* BOS/EOS as a tokenizer's configuration says (ids -1: none): sets the
 * info and, when the tokenizer.json had no post-processor, the template
 * that adds them (tok_load.c). */
int tok_set_bos_eos(sl_tokenizer *t, int64_t bos_id, int64_t eos_id, bool add_bos, bool add_eos, sl_error *err);

#endif
