/*
 * grammar_impl.h — the insides of grammar.h, shared by the schema compiler
 * (grammar_schema.c), the recognizer (grammar_match.c) and the vocabulary
 * masks (grammar_vocab.c).  Private to src/runtime.
 *
 * A grammar is a table of nodes, one per schema (value kind + its
 * constraints), plus byte tries for literal sets (enum/const/true/false/
 * null) and property names.  The recognizer keeps a set of stacks of
 * frames (several only while anyOf alternatives are undecided); each frame
 * is a fixed-size record compared with memcmp, so every field is always
 * written.
 */
#ifndef SILICA_RUNTIME_GRAMMAR_IMPL_H
#define SILICA_RUNTIME_GRAMMAR_IMPL_H

#include "silica/grammar.h"

#define GR_MAX_NODES 4096
#define GR_MAX_PROPS 64
#define GR_MAX_ENUM 1000
#define GR_MAX_SCHEMA_DEPTH 64
#define GR_MAX_DEPTH 32      /* frames per stack */
#define GR_MAX_STACKS 16
#define GR_MAX_FRAMES (GR_MAX_DEPTH * GR_MAX_STACKS)
#define GR_MAX_LIT_NODES (1 << 20)
#define GR_MAX_DIGITS 15
#define GR_MAX_WS 20

typedef enum gr_kind {
    GK_OBJECT, GK_ARRAY, GK_STRING, GK_NUMBER, GK_INTEGER, GK_LITERAL, GK_UNION, GK_NEVER
} gr_kind;

typedef struct gr_node {
    uint8_t kind;
    /* object */
    int32_t props;       /* first of n_props node ids in g->list */
    int32_t n_props;
    int32_t key_trie;    /* literal trie of the escaped names; terminal value = property index */
    uint64_t required;
    int32_t additional;  /* node id, or -1: no other keys */
    /* array */
    int32_t prefix, n_prefix;   /* node ids in g->list */
    int32_t items;              /* node id, or -1: no items past the prefix */
    int32_t min_items, max_items;   /* max -1: unbounded */
    /* string */
    int32_t min_len, max_len;   /* code points; max -1: unbounded */
    /* literal set */
    int32_t lit;                /* trie root */
    /* union */
    int32_t alts, n_alts;       /* node ids in g->list */
} gr_node;

/* Literal tries: children as sibling lists; value >= 0 marks a terminal;
 * below: bit v for each value v < 64 at or under this node (object keys:
 * the properties a key with this prefix can still become). */
typedef struct gr_lit {
    uint64_t below;
    int32_t child, next;
    int32_t value;
    uint8_t byte;
} gr_lit;

struct sl_grammar {
    gr_node *nodes;
    int n_nodes, cap_nodes;
    int32_t *list;
    int n_list, cap_list;
    gr_lit *lits;
    int n_lits, cap_lits;
    int root;
};

int gr_lit_new(sl_grammar *g);                       /* a fresh trie root (or -1: out of memory / too big) */
/* Add s[0..n) to the trie at root with value; 0, or -1 on a limit. */
int gr_lit_add(sl_grammar *g, int root, const char *s, size_t n, int32_t value);
static inline int gr_lit_child(const sl_grammar *g, int at, uint8_t b) {
    for (int c = g->lits[at].child; c >= 0; c = g->lits[c].next)
        if (g->lits[c].byte == b) return c;
    return -1;
}

/* ---- recognizer state ---- */

typedef enum gr_fkind { FR_ROOT, FR_VALUE, FR_OBJ, FR_ARR, FR_STR, FR_KEY, FR_NUM, FR_LIT } gr_fkind;

typedef struct gr_frame {
    uint8_t kind, phase, ws, sub;   /* sub: strings' UTF-8 state */
    int32_t node;
    int32_t a, b;                   /* per kind: see grammar_match.c */
    uint64_t seen;                  /* objects: properties given */
} gr_frame;

typedef struct gr_state {
    int n;                          /* stacks */
    int nf;                         /* frames used */
    int start[GR_MAX_STACKS + 1];   /* stack k is f[start[k] .. start[k+1]) (bottom first) */
    gr_frame f[GR_MAX_FRAMES];
} gr_state;

void gr_state_init(const sl_grammar *g, gr_state *s);
void gr_state_init_node(const sl_grammar *g, int node, gr_state *s);   /* a value of node at the root */
/* next = s after byte c (may have no stacks: rejected). */
void gr_state_feed(const sl_grammar *g, const gr_state *s, uint8_t c, gr_state *next);
bool gr_state_complete(const sl_grammar *g, const gr_state *s);
bool gr_state_finished(const sl_grammar *g, const gr_state *s);
/* Inside free text: one stack whose top is a string body at a character
 * boundary.  The code points it may still take (INT32_MAX: unbounded), or
 * -1 when s is not in that mode. */
int gr_state_string_room(const sl_grammar *g, const gr_state *s);
/* The code points of the open string on top of a one-stack state, else -1. */
int gr_state_string_chars(const gr_state *s);

/* The matcher's insides for the vocabulary walk (grammar_vocab.c). */
const gr_state *gr_matcher_state(const sl_grammar_matcher *m);
const sl_grammar *gr_matcher_grammar(const sl_grammar_matcher *m);
gr_state *gr_matcher_level(sl_grammar_matcher *m, int depth);   /* scratch per trie depth; NULL: out of memory */

#endif
