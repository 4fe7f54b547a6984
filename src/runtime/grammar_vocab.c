/*
 * grammar_vocab.c — which tokens keep a grammar matcher alive.  The
 * vocabulary's byte strings (tokenizer.h's sl_tok_token_bytes) sit in a
 * byte trie; a mask walks it depth-first with the recognizer state, one
 * byte per trie edge, so a shared prefix is checked once and a dead prefix
 * prunes its whole subtree.
 *
 * Inside free text (a JSON string, at a character boundary) almost every
 * token is allowed: the "plain" tokens — those that such a string accepts
 * without closing — are allowed in one pass over a list sorted by the code
 * points they add (a maxLength bound takes a prefix of it), and only the
 * rest (quotes, control bytes, partial UTF-8 starts) are walked, in a
 * second trie.
 *
 * Invariants: a mask depends only on the matcher's state; special tokens,
 * empty tokens and ids past the tokenizer's vocabulary are never allowed.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/grammar_impl.h"

typedef struct vt_node {
    int32_t child, next;
    int32_t tok;   /* first id whose bytes end here, -1: none */
    uint8_t byte;
} vt_node;

typedef struct vtrie {
    vt_node *n;
    int count, cap;
} vtrie;

struct sl_grammar_vocab {
    int n_vocab;
    size_t *off;
    uint32_t *len;       /* 0: never allowed */
    char *data;
    int32_t *tok_next;   /* the next id with the same bytes */
    vtrie all, rest;     /* every token; the non-plain ones */
    int32_t *plain;      /* plain ids, fewest code points first */
    int32_t *plain_chars;
    int n_plain;
};

static int vt_add(vtrie *t, int parent, uint8_t b) {
    if (t->count == t->cap) {
        int cap = t->cap ? t->cap * 2 : 4096;
        vt_node *p = realloc(t->n, sizeof *p * (size_t)cap);
        if (!p) return -1;
        t->n = p;
        t->cap = cap;
    }
    int id = t->count++;
    t->n[id] = (vt_node){-1, -1, -1, b};
    if (parent >= 0) {
        t->n[id].next = t->n[parent].child;
        t->n[parent].child = id;
    }
    return id;
}

/* Insert token id (bytes s[0..n)); tokens with equal bytes chain through tok_next. */
static int vt_insert(vtrie *t, int32_t *tok_next, const char *s, size_t n, int32_t id) {
    if (t->count == 0 && vt_add(t, -1, 0) < 0) return -1;
    int at = 0;
    for (size_t i = 0; i < n; i++) {
        int c = t->n[at].child;
        while (c >= 0 && t->n[c].byte != (uint8_t)s[i]) c = t->n[c].next;
        if (c < 0 && (c = vt_add(t, at, (uint8_t)s[i])) < 0) return -1;
        at = c;
    }
    if (t->n[at].tok < 0) t->n[at].tok = id;
    else {
        int32_t k = t->n[at].tok;
        while (tok_next[k] >= 0) k = tok_next[k];
        tok_next[k] = id;
    }
    return 0;
}

void sl_grammar_vocab_free(sl_grammar_vocab *v) {
    if (!v) return;
    free(v->off);
    free(v->len);
    free(v->data);
    free(v->tok_next);
    free(v->all.n);
    free(v->rest.n);
    free(v->plain);
    free(v->plain_chars);
    free(v);
}

int sl_grammar_vocab_size(const sl_grammar_vocab *v) { return v->n_vocab; }

/* Plain: accepted inside an open JSON string, at a character boundary,
 * which stays open.  The code points it adds, or -1 when not plain. */
static int plain_chars(sl_grammar_matcher *str, const char *s, size_t n) {
    sl_grammar_matcher_reset(str);
    if (!sl_grammar_accept_bytes(str, "\"", 1) || !sl_grammar_accept_bytes(str, s, n)) return -1;
    return gr_state_string_chars(gr_matcher_state(str));
}

static int by_chars(const void *a, const void *b) {
    const int32_t *x = a, *y = b;   /* (chars, id) pairs */
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* Sort the plain ids by the code points they add (chars[i]: plain[i]'s) into plain / plain_chars. */
static int sort_plain(sl_grammar_vocab *v, const int32_t *chars, sl_error *err) {
    int32_t *pairs = malloc(sizeof *pairs * 2 * (size_t)(v->n_plain + 1));
    if (!pairs || !(v->plain_chars = malloc(sizeof *v->plain_chars * (size_t)(v->n_plain + 1)))) {
        free(pairs);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (int i = 0; i < v->n_plain; i++) {
        pairs[2 * i] = chars[i];
        pairs[2 * i + 1] = v->plain[i];
    }
    qsort(pairs, (size_t)v->n_plain, 2 * sizeof *pairs, by_chars);
    for (int i = 0; i < v->n_plain; i++) {
        v->plain_chars[i] = pairs[2 * i];
        v->plain[i] = pairs[2 * i + 1];
    }
    free(pairs);
    return 0;
}

/* The bytes of every id into v->data / off / len. */
static int load_bytes(sl_grammar_vocab *v, const sl_tokenizer *t, sl_error *err) {
    size_t cap = 1 << 20, used = 0;
    if (!(v->data = malloc(cap))) return sl_errorf(err, SL_ENOMEM, "out of memory");
    uint32_t nt = sl_tok_vocab_size(t);
    for (int id = 0; id < v->n_vocab; id++) {
        v->off[id] = used;
        size_t tl = 0;
        if ((uint32_t)id >= nt || sl_tok_is_special(t, (uint32_t)id) || !sl_tok_id_to_token(t, (uint32_t)id, &tl))
            continue;
        char *b;
        size_t n;
        int rc = sl_tok_token_bytes(t, (uint32_t)id, &b, &n, err);
        if (rc) return rc;
        if (used + n > cap) {
            while (used + n > cap) cap *= 2;
            char *p = realloc(v->data, cap);
            if (!p) {
                free(b);
                return sl_errorf(err, SL_ENOMEM, "out of memory");
            }
            v->data = p;
        }
        memcpy(v->data + used, b, n);
        free(b);
        used += n;
        v->len[id] = (uint32_t)n;
    }
    return 0;
}

/* The tries and the plain list. */
static int index_tokens(sl_grammar_vocab *v, sl_error *err) {
    sl_grammar *gs = NULL;
    sl_grammar_matcher *str = NULL;
    int rc = sl_grammar_from_schema_text("{\"type\":\"string\"}", 17, &gs, err);
    if (!rc) rc = sl_grammar_matcher_new(gs, &str, err);
    int32_t *chars = NULL;
    if (!rc && (!(v->plain = malloc(sizeof *v->plain * (size_t)(v->n_vocab + 1))) ||
                !(chars = malloc(sizeof *chars * (size_t)(v->n_vocab + 1)))))
        rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (int id = 0; !rc && id < v->n_vocab; id++) {
        if (!v->len[id]) continue;
        const char *s = v->data + v->off[id];
        int nc;
        if (vt_insert(&v->all, v->tok_next, s, v->len[id], id)) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else if ((nc = plain_chars(str, s, v->len[id])) >= 0) {
            chars[v->n_plain] = nc;
            v->plain[v->n_plain++] = id;
        } else if (vt_insert(&v->rest, v->tok_next, s, v->len[id], id))
            rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (!rc) rc = sort_plain(v, chars, err);
    free(chars);
    if (!rc && (v->rest.count == 0 && vt_add(&v->rest, -1, 0) < 0)) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc && (v->all.count == 0 && vt_add(&v->all, -1, 0) < 0)) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    sl_grammar_matcher_free(str);
    sl_grammar_free(gs);
    return rc;
}

int sl_grammar_vocab_new(const sl_tokenizer *t, int n_vocab, sl_grammar_vocab **out, sl_error *err) {
    *out = NULL;
    if (n_vocab <= 0) return sl_errorf(err, SL_EINVAL, "grammar: the vocabulary is empty");
    sl_grammar_vocab *v = calloc(1, sizeof *v);
    if (!v) return sl_errorf(err, SL_ENOMEM, "out of memory");
    v->n_vocab = n_vocab;
    v->off = calloc((size_t)n_vocab, sizeof *v->off);
    v->len = calloc((size_t)n_vocab, sizeof *v->len);
    v->tok_next = malloc(sizeof *v->tok_next * (size_t)n_vocab);
    int rc = 0;
    if (!v->off || !v->len || !v->tok_next) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    else memset(v->tok_next, 0xFF, sizeof *v->tok_next * (size_t)n_vocab);
    if (!rc) rc = load_bytes(v, t, err);
    if (!rc) rc = index_tokens(v, err);
    if (rc) {
        sl_grammar_vocab_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

typedef struct walk_ctx {
    sl_grammar_matcher *m;
    const sl_grammar *g;
    const sl_grammar_vocab *v;
    const vtrie *t;
    uint8_t *allowed;
    int count;
    bool oom;
} walk_ctx;

static void walk(walk_ctx *w, int node, const gr_state *st, int depth) {
    gr_state *nx = gr_matcher_level(w->m, depth);
    if (!nx) {
        w->oom = true;
        return;
    }
    for (int c = w->t->n[node].child; c >= 0; c = w->t->n[c].next) {
        gr_state_feed(w->g, st, w->t->n[c].byte, nx);
        if (nx->n == 0) continue;
        for (int32_t id = w->t->n[c].tok; id >= 0; id = w->v->tok_next[id])
            if (!w->allowed[id]) {
                w->allowed[id] = 1;
                w->count++;
            }
        if (w->t->n[c].child >= 0) walk(w, c, nx, depth + 1);
    }
}

int sl_grammar_mask(sl_grammar_matcher *m, const sl_grammar_vocab *v, uint8_t *allowed) {
    walk_ctx w = {m, gr_matcher_grammar(m), v, &v->all, allowed, 0, false};
    const gr_state *st = gr_matcher_state(m);
    memset(allowed, 0, (size_t)v->n_vocab);
    int room = gr_state_string_room(w.g, st);
    if (room >= 0) {
        int i = 0;
        for (; i < v->n_plain && v->plain_chars[i] <= room; i++) allowed[v->plain[i]] = 1;
        w.count = i;
        w.t = &v->rest;
    }
    walk(&w, 0, st, 0);
    return w.oom ? -1 : w.count;
}

bool sl_grammar_accept_token(sl_grammar_matcher *m, const sl_grammar_vocab *v, int32_t id) {
    if (id < 0 || id >= v->n_vocab || !v->len[id]) return false;
    return sl_grammar_accept_bytes(m, v->data + v->off[id], v->len[id]);
}
