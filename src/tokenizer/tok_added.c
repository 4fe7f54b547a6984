/*
 * tok_added.c — added/special tokens matched as HF's AddedVocabulary does:
 * two byte tries (tokens with normalized=false, matched on the raw text;
 * tokens with normalized=true, matched on normalized text after their own
 * content is normalized), leftmost-longest non-overlapping matches
 * (aho-corasick LeftmostLongest), then per match: skipped when it is a
 * special token and special tokens are plain text, or when single_word and
 * a word character touches it (the scan resumes after the skipped match,
 * as aho-corasick's iterator does); lstrip/rstrip swallow neighbouring
 * whitespace.
 *
 * Invariants: trie edges live in one open-addressing table keyed by
 * (node, byte); node 0 is the root; term[node] indexes the tok_added array.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

static int trie_grow_nodes(tok_trie *t) {
    size_t cap = t->cap_nodes ? t->cap_nodes * 2 : 256;
    int32_t *v = realloc(t->term, cap * sizeof *v);
    if (!v) return SL_ENOMEM;
    for (size_t i = t->cap_nodes; i < cap; i++) v[i] = -1;
    t->term = v;
    t->cap_nodes = cap;
    return 0;
}

static inline size_t edge_slot(const tok_trie *t, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & t->emask;
}

static inline int64_t trie_child(const tok_trie *t, uint32_t node, unsigned char c) {
    uint64_t key = (((uint64_t)node << 8) | c) + 1;
    size_t h = edge_slot(t, key);
    for (;;) {
        uint64_t k = t->ekeys[h];
        if (k == key) return t->evals[h];
        if (!k) return -1;
        h = (h + 1) & t->emask;
    }
}

static int trie_insert(tok_trie *t, const char *s, size_t n, int32_t idx) {
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 0) t->first[c >> 3] |= (uint8_t)(1u << (c & 7));
        int64_t ch = trie_child(t, node, c);
        if (ch < 0) {
            if (t->n_nodes + 1 >= t->cap_nodes && trie_grow_nodes(t)) return SL_ENOMEM;
            uint32_t nn = (uint32_t)t->n_nodes++;
            uint64_t key = (((uint64_t)node << 8) | c) + 1;
            size_t h = edge_slot(t, key);
            while (t->ekeys[h]) h = (h + 1) & t->emask;
            t->ekeys[h] = key;
            t->evals[h] = nn;
            ch = nn;
        }
        node = (uint32_t)ch;
    }
    if (t->term[node] < 0) t->term[node] = idx; /* first registration wins */
    return 0;
}

int tok_trie_build(tok_trie *t, const tok_added *toks, size_t n, bool normalized, const tok_norm *norm,
                   sl_error *err) {
    memset(t, 0, sizeof *t);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        if (toks[i].normalized == normalized) total += toks[i].n * 4 + 8; /* normalization may grow text */
    size_t cap = 16;
    while (cap < total * 2) cap *= 2;
    t->ekeys = calloc(cap, sizeof *t->ekeys);
    t->evals = calloc(cap, sizeof *t->evals);
    if (!t->ekeys || !t->evals || trie_grow_nodes(t)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    t->emask = cap - 1;
    t->n_nodes = 1;
    tok_buf nb = {0}, tmp = {0};
    int rc = 0;
    /* HF: special tokens are registered before the others */
    for (int pass = 0; pass < 2 && !rc; pass++)
        for (size_t i = 0; i < n && !rc; i++) {
            const tok_added *a = &toks[i];
            if (a->normalized != normalized || a->special != (pass == 0) || a->n == 0) continue;
            const char *s = a->content;
            size_t sl = a->n;
            if (normalized && norm) {
                if (tok_norm_apply(norm, s, sl, &nb, &tmp)) { rc = SL_ENOMEM; break; }
                s = nb.p;
                sl = nb.n;
                if (sl * 1 > a->n * 4 + 8) continue; /* cannot happen with the supported normalizers */
            }
            if (sl == 0) continue;
            if (trie_insert(t, s, sl, (int32_t)i)) rc = SL_ENOMEM;
        }
    tok_buf_free(&nb);
    tok_buf_free(&tmp);
    if (rc) return sl_errorf(err, SL_ENOMEM, "out of memory");
    return 0;
}

void tok_trie_free(tok_trie *t) {
    free(t->term);
    free(t->ekeys);
    free(t->evals);
    memset(t, 0, sizeof *t);
}

static size_t prev_char_start(const char *s, size_t i) {
    size_t st = i - 1;
    while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
    return st;
}

int tok_added_split(const tok_trie *t, const tok_added *toks, const char *s, size_t n, bool at_origin,
                    bool special_as_text, tok_pieces *out) {
    size_t start_off = 0, i = 0;
    if (t->n_nodes > 1) {
        while (i < n) {
            unsigned char c0 = (unsigned char)s[i];
            if (!(t->first[c0 >> 3] & (1u << (c0 & 7)))) {
                i++;
                continue;
            }
            /* longest match starting at i */
            uint32_t node = 0;
            int32_t best = -1;
            size_t best_end = 0;
            for (size_t k = i; k < n; k++) {
                int64_t ch = trie_child(t, node, (unsigned char)s[k]);
                if (ch < 0) break;
                node = (uint32_t)ch;
                if (t->term[node] >= 0) {
                    best = t->term[node];
                    best_end = k + 1;
                }
            }
            if (best < 0) {
                i++;
                continue;
            }
            const tok_added *a = &toks[best];
            size_t ms = i, me = best_end;
            i = best_end; /* the scan resumes after this match either way */
            if (special_as_text && a->special) continue;
            if (a->single_word) {
                bool sspace = true, espace = true;
                if (ms > 0) {
                    int32_t cp;
                    size_t ps = prev_char_start(s, ms);
                    tok_utf8_dec(s + ps, ms - ps, &cp);
                    sspace = !tok_is_word_char(cp);
                }
                if (me < n) {
                    int32_t cp;
                    tok_utf8_dec(s + me, n - me, &cp);
                    espace = !tok_is_word_char(cp);
                }
                if (!sspace || !espace) continue;
            }
            if (a->lstrip) {
                while (ms > start_off) {
                    size_t ps = prev_char_start(s, ms);
                    int32_t cp;
                    tok_utf8_dec(s + ps, ms - ps, &cp);
                    if (!tok_is_whitespace(cp)) break;
                    ms = ps;
                }
            }
            if (a->rstrip) {
                while (me < n) {
                    int32_t cp;
                    int l = tok_utf8_dec(s + me, n - me, &cp);
                    if (!tok_is_whitespace(cp)) break;
                    me += (size_t)l;
                }
                i = me;
            }
            if (start_off < ms && tok_pieces_push(out, s + start_off, ms - start_off, -1, at_origin && start_off == 0))
                return SL_ENOMEM;
            if (tok_pieces_push(out, s + ms, me - ms, a->id, false)) return SL_ENOMEM;
            start_off = me;
        }
    }
    if (start_off < n && tok_pieces_push(out, s + start_off, n - start_off, -1, at_origin && start_off == 0))
        return SL_ENOMEM;
    return 0;
}
