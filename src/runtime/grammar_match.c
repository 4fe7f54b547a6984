/*
 * grammar_match.c — the byte-level pushdown recognizer of grammar.h: a set
 * of stacks of frames (grammar_impl.h), advanced one byte at a time.
 *
 * Frames and their fields:
 *  - FR_ROOT   phase R_VALUE (the value is on top) or R_DONE (nothing more).
 *  - FR_VALUE  a value of `node` not started yet; leading whitespace in ws.
 *              Its first byte turns it into the frame of the value's kind
 *              (an anyOf forks one stack per alternative).
 *  - FR_OBJ    phase OB_*; a: the property whose value comes (-1: an
 *              additional one); seen: properties given.
 *  - FR_ARR    phase AR_*; a: items so far.
 *  - FR_STR    phase SP_* (body, escape, \u digits); sub: UTF-8 state;
 *              a: code points so far.
 *  - FR_KEY    an object key (node = the object's): as FR_STR, with a: the
 *              position in the object's name trie (-1: off it).
 *  - FR_NUM    phase N_*; b: digits in the current part.
 *  - FR_LIT    a: position in the literal trie.
 * A frame that completes pops itself and tells its parent (child_done);
 * numbers and literals that may go on complete at the first byte that is
 * not theirs, which is then fed to the parent ("refeed").
 *
 * Invariants: a stack always holds FR_ROOT at the bottom; frames are
 * written whole (mkframe), so equal states are equal bytes (dedup by
 * memcmp); stacks never exceed GR_MAX_DEPTH (a deeper value is rejected).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/grammar_impl.h"

enum { R_VALUE, R_DONE };
enum { OB_START, OB_KEY, OB_COLON, OB_VALUE, OB_AFTER, OB_NEXT };
enum { AR_START, AR_VALUE, AR_AFTER, AR_NEXT };
enum { SP_BODY, SP_ESC, SP_U1, SP_U2, SP_U3, SP_U4 };
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

typedef struct stk {
    int n;
    gr_frame f[GR_MAX_DEPTH];
} stk;

static gr_frame mkframe(gr_fkind kind, int node) {
    gr_frame f;
    memset(&f, 0, sizeof f);
    f.kind = (uint8_t)kind;
    f.node = node;
    return f;
}

static bool push(stk *s, gr_frame f) {
    if (s->n >= GR_MAX_DEPTH) return false;
    s->f[s->n++] = f;
    return true;
}

static void child_done(stk *s) {
    gr_frame *p = &s->f[s->n - 1];
    p->ws = 0;
    if (p->kind == FR_ROOT) p->phase = R_DONE;
    else if (p->kind == FR_OBJ) p->phase = p->phase == OB_KEY ? OB_COLON : OB_AFTER;
    else if (p->kind == FR_ARR) {
        p->a++;
        p->phase = AR_AFTER;
    }
}

static void pop_done(stk *s) {
    s->n--;
    child_done(s);
}

/* Whitespace between tokens: "" | " " | "\n" [ \t]{0,20}. */
static bool is_ws(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
static bool ws_step(gr_frame *f, uint8_t c) {
    if (c == '\r') return false;
    if (f->ws == 0) {
        if (c == '\t') return false;
        f->ws = c == ' ' ? 1 : 2;
        return true;
    }
    if (f->ws == 1 || c == '\n' || f->ws >= 2 + GR_MAX_WS) return false;
    f->ws++;
    return true;
}

static bool hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* UTF-8 (strict): sub 0 at a boundary; 1..3 continuation bytes left; 4..7
 * the restricted second byte after E0, ED, F0, F4. */
static int utf8_lead(uint8_t c) {
    if (c >= 0xC2 && c <= 0xDF) return 1;
    if (c == 0xE0) return 4;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return 2;
    if (c == 0xED) return 5;
    if (c == 0xF0) return 6;
    if (c >= 0xF1 && c <= 0xF3) return 3;
    if (c == 0xF4) return 7;
    return -1;
}
static int utf8_cont(int sub, uint8_t c) {
    static const uint8_t lo[8] = {0, 0x80, 0x80, 0x80, 0xA0, 0x80, 0x90, 0x80};
    static const uint8_t hi[8] = {0, 0xBF, 0xBF, 0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
    static const int8_t nx[8] = {0, 0, 1, 2, 1, 1, 2, 2};
    if (c < lo[sub] || c > hi[sub]) return -1;
    return nx[sub];
}

enum { S_REJECT, S_OK, S_CLOSE };

/* One byte of a string body (FR_STR or FR_KEY).  *newchar: a code point began. */
static int str_byte(gr_frame *f, uint8_t c, bool *newchar) {
    *newchar = false;
    switch (f->phase) {
    case SP_BODY:
        if (f->sub) {
            int nx = utf8_cont(f->sub, c);
            if (nx < 0) return S_REJECT;
            f->sub = (uint8_t)nx;
            return S_OK;
        }
        if (c == '"') return S_CLOSE;
        if (c < 0x20) return S_REJECT;
        *newchar = true;
        if (c == '\\') f->phase = SP_ESC;
        else if (c >= 0x80) {
            int l = utf8_lead(c);
            if (l < 0) return S_REJECT;
            f->sub = (uint8_t)l;
        }
        return S_OK;
    case SP_ESC:
        if (c == 'u') f->phase = SP_U1;
        else if (strchr("\"\\/bfnrt", c) && c) f->phase = SP_BODY;
        else return S_REJECT;
        return S_OK;
    case SP_U1:
        if (!hex(c)) return S_REJECT;
        f->sub = c == 'd' || c == 'D';   /* a surrogate if the next digit is 8..f */
        f->phase = SP_U2;
        return S_OK;
    case SP_U2:
        if (!hex(c) || (f->sub && !(c >= '0' && c <= '7'))) return S_REJECT;
        f->sub = 0;
        f->phase = SP_U3;
        return S_OK;
    case SP_U3:
        if (!hex(c)) return S_REJECT;
        f->phase = SP_U4;
        return S_OK;
    default:
        if (!hex(c)) return S_REJECT;
        f->phase = SP_BODY;
        return S_OK;
    }
}

static bool string_byte(const sl_grammar *g, stk *s, uint8_t c) {
    gr_frame *f = &s->f[s->n - 1];
    const gr_node *nd = &g->nodes[f->node];
    bool nc;
    int r = str_byte(f, c, &nc);
    if (r == S_REJECT) return false;
    if (r == S_CLOSE) {
        if (f->a < nd->min_len) return false;
        pop_done(s);
        return true;
    }
    if (nc) {
        if (nd->max_len >= 0 && f->a >= nd->max_len) return false;
        f->a++;
    }
    return true;
}

/* Object keys follow the name trie; off it (an additional key) only the
 * canonical escapes \" \\ \b \f \n \r \t, so that a key off the trie never
 * decodes to a known name. */
static bool key_byte(const sl_grammar *g, stk *s, uint8_t c) {
    gr_frame *f = &s->f[s->n - 1];
    const gr_node *nd = &g->nodes[f->node];
    bool was_esc = f->phase == SP_ESC, nc;
    int r = str_byte(f, c, &nc);
    if (r == S_REJECT) return false;
    if (r == S_CLOSE) {
        int prop = f->a >= 0 ? g->lits[f->a].value : -1;
        if (prop < 0 && nd->additional < 0) return false;
        gr_frame *obj = &s->f[s->n - 2];
        if (prop >= 0 && (obj->seen >> prop & 1)) return false;
        obj->a = prop;
        if (prop >= 0) obj->seen |= 1ull << prop;
        pop_done(s);
        return true;
    }
    if (f->a >= 0) f->a = gr_lit_child(g, f->a, c);
    /* without additional keys, a prefix only of names already given is a dead end */
    if (f->a >= 0 && nd->additional < 0 && !(g->lits[f->a].below & ~s->f[s->n - 2].seen)) return false;
    if (f->a < 0) {
        if (nd->additional < 0) return false;
        if (f->phase >= SP_U1 || (was_esc && !strchr("\"\\bfnrt", c))) return false;
    }
    return true;
}

static bool obj_can_add(const gr_node *nd, const gr_frame *f) {
    if (nd->additional >= 0) return true;
    uint64_t all = nd->n_props >= 64 ? ~0ull : ((1ull << nd->n_props) - 1);
    return (f->seen & all) != all;
}

static bool obj_can_close(const gr_node *nd, const gr_frame *f) { return (nd->required & ~f->seen) == 0; }

static bool obj_byte(const sl_grammar *g, stk *s, uint8_t c) {
    gr_frame *f = &s->f[s->n - 1];
    const gr_node *nd = &g->nodes[f->node];
    if (is_ws(c)) return ws_step(f, c);
    switch (f->phase) {
    case OB_START:
    case OB_NEXT:
        if (c == '"' && obj_can_add(nd, f)) {
            gr_frame k = mkframe(FR_KEY, f->node);
            k.a = nd->key_trie;
            f->phase = OB_KEY;
            f->ws = 0;
            return push(s, k);
        }
        if (c == '}' && f->phase == OB_START && obj_can_close(nd, f)) {
            pop_done(s);
            return true;
        }
        return false;
    case OB_COLON: {
        if (c != ':') return false;
        int vn = f->a >= 0 ? g->list[nd->props + f->a] : nd->additional;
        f->phase = OB_VALUE;
        f->ws = 0;
        return push(s, mkframe(FR_VALUE, vn));
    }
    case OB_AFTER:
        if (c == ',' && obj_can_add(nd, f)) {
            f->phase = OB_NEXT;
            f->ws = 0;
            return true;
        }
        if (c == '}' && obj_can_close(nd, f)) {
            pop_done(s);
            return true;
        }
        return false;
    default:
        return false;
    }
}

static int arr_item(const sl_grammar *g, const gr_node *nd, int i) {
    if (nd->max_items >= 0 && i >= nd->max_items) return -1;
    if (i < nd->n_prefix) return g->list[nd->prefix + i];
    return nd->items;
}

/* 1: consumed, 0: rejected, 2: a value was pushed, feed c to it. */
static int arr_byte(const sl_grammar *g, stk *s, uint8_t c) {
    gr_frame *f = &s->f[s->n - 1];
    const gr_node *nd = &g->nodes[f->node];
    if (is_ws(c)) return ws_step(f, c);
    if (f->phase == AR_AFTER) {
        if (c == ',' && arr_item(g, nd, f->a) >= 0) {
            f->phase = AR_NEXT;
            f->ws = 0;
            return 1;
        }
        if (c == ']' && f->a >= nd->min_items) {
            pop_done(s);
            return 1;
        }
        return 0;
    }
    if (c == ']' && f->phase == AR_START && nd->min_items <= 0) {
        pop_done(s);
        return 1;
    }
    int it = arr_item(g, nd, f->a);
    if (it < 0) return 0;
    f->phase = AR_VALUE;
    f->ws = 0;
    return push(s, mkframe(FR_VALUE, it)) ? 2 : 0;
}

static bool digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* 1: consumed, 0: rejected, 2: the number ended before c (refeed). */
static int num_byte(const sl_grammar *g, stk *s, uint8_t c) {
    gr_frame *f = &s->f[s->n - 1];
    bool frac_ok = g->nodes[f->node].kind == GK_NUMBER;
    switch (f->phase) {
    case N_MINUS:
        if (!digit(c)) return 0;
        f->phase = c == '0' ? N_ZERO : N_INT;
        f->b = 1;
        return 1;
    case N_ZERO:
    case N_INT:
    case N_FRAC:
        if (digit(c) && f->phase != N_ZERO) {
            if (f->b >= GR_MAX_DIGITS) return 0;
            f->b++;
            return 1;
        }
        if (c == '.' && frac_ok && f->phase != N_FRAC) {
            f->phase = N_DOT;
            return 1;
        }
        if ((c == 'e' || c == 'E') && frac_ok) {
            f->phase = N_E;
            return 1;
        }
        break;
    case N_DOT:
    case N_ESIGN:
        if (!digit(c)) return 0;
        f->phase = f->phase == N_DOT ? N_FRAC : N_EXP;
        f->b = 1;
        return 1;
    case N_E:
        if (c == '+' || c == '-') {
            f->phase = N_ESIGN;
            return 1;
        }
        if (!digit(c)) return 0;
        f->phase = N_EXP;
        f->b = 1;
        return 1;
    case N_EXP:
        if (digit(c)) {
            if (f->b >= 2) return 0;
            f->b++;
            return 1;
        }
        break;
    }
    return 2;   /* accepting phases only reach here */
}

/* A literal frame at trie position a: completed with no way to go on. */
static bool lit_closed(const sl_grammar *g, int a) { return g->lits[a].value >= 0 && g->lits[a].child < 0; }

static void step(const sl_grammar *g, stk *s, uint8_t c, gr_state *out, int forks);

static void emit(stk *s, gr_state *out) {
    int n = s->n;
    for (int k = 0; k < out->n; k++)
        if (out->start[k + 1] - out->start[k] == n && !memcmp(&out->f[out->start[k]], s->f, sizeof *s->f * (size_t)n))
            return;
    if (out->n >= GR_MAX_STACKS || out->nf + n > GR_MAX_FRAMES) return;   /* dropped: a restriction, still sound */
    memcpy(&out->f[out->nf], s->f, sizeof *s->f * (size_t)n);
    out->nf += n;
    out->n++;
    out->start[out->n] = out->nf;
}

/* The first byte of a value: the frame becomes its kind's. 1 ok, 0 reject, -1 forked (done). */
static int value_start(const sl_grammar *g, stk *s, uint8_t c, gr_state *out, int forks) {
    gr_frame *f = &s->f[s->n - 1];
    const gr_node *nd = &g->nodes[f->node];
    if (is_ws(c)) return ws_step(f, c);
    int node = f->node;
    switch (nd->kind) {
    case GK_UNION:
        if (forks > 16) return 0;
        for (int i = 0; i < nd->n_alts; i++) {
            stk t;
            t.n = s->n;
            memcpy(t.f, s->f, sizeof *s->f * (size_t)s->n);
            t.f[t.n - 1].node = g->list[nd->alts + i];
            step(g, &t, c, out, forks + 1);
        }
        return -1;
    case GK_OBJECT:
        if (c != '{') return 0;
        *f = mkframe(FR_OBJ, node);
        f->a = -1;
        return 1;
    case GK_ARRAY:
        if (c != '[') return 0;
        *f = mkframe(FR_ARR, node);
        return 1;
    case GK_STRING:
        if (c != '"') return 0;
        *f = mkframe(FR_STR, node);
        return 1;
    case GK_NUMBER:
    case GK_INTEGER:
        if (c != '-' && !digit(c)) return 0;
        *f = mkframe(FR_NUM, node);
        f->phase = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
        f->b = c == '-' ? 0 : 1;
        return 1;
    case GK_LITERAL: {
        int a = gr_lit_child(g, nd->lit, c);
        if (a < 0) return 0;
        *f = mkframe(FR_LIT, node);
        f->a = a;
        if (lit_closed(g, a)) pop_done(s);
        return 1;
    }
    default:
        return 0;
    }
}

/* Advance one stack by c; the stacks it becomes go to out. */
static void step(const sl_grammar *g, stk *s, uint8_t c, gr_state *out, int forks) {
    for (;;) {
        gr_frame *f = &s->f[s->n - 1];
        int r = 0;
        switch (f->kind) {
        case FR_ROOT: return;   /* R_DONE: nothing may follow */
        case FR_VALUE:
            r = value_start(g, s, c, out, forks);
            if (r < 0) return;
            break;
        case FR_OBJ: r = obj_byte(g, s, c); break;
        case FR_ARR:
            r = arr_byte(g, s, c);
            if (r == 2) continue;
            break;
        case FR_STR: r = string_byte(g, s, c); break;
        case FR_KEY: r = key_byte(g, s, c); break;
        case FR_NUM:
            r = num_byte(g, s, c);
            if (r == 2) {
                pop_done(s);
                continue;
            }
            break;
        case FR_LIT: {
            int a = gr_lit_child(g, f->a, c);
            if (a >= 0) {
                f->a = a;
                if (lit_closed(g, a)) pop_done(s);
                r = 1;
            } else if (g->lits[f->a].value >= 0) {
                pop_done(s);
                continue;
            }
            break;
        }
        }
        if (r) emit(s, out);
        return;
    }
}

static void state_from(gr_state *s, const gr_frame *f, int n) {
    s->n = 1;
    s->nf = n;
    s->start[0] = 0;
    s->start[1] = n;
    memcpy(s->f, f, sizeof *f * (size_t)n);
}

void gr_state_init_node(const sl_grammar *g, int node, gr_state *s) {
    (void)g;
    gr_frame f[2] = {mkframe(FR_ROOT, -1), mkframe(FR_VALUE, node)};
    state_from(s, f, 2);
}

void gr_state_init(const sl_grammar *g, gr_state *s) { gr_state_init_node(g, g->root, s); }

static void load(const gr_state *s, int k, stk *t) {
    t->n = s->start[k + 1] - s->start[k];
    memcpy(t->f, &s->f[s->start[k]], sizeof *t->f * (size_t)t->n);
}

void gr_state_feed(const sl_grammar *g, const gr_state *s, uint8_t c, gr_state *next) {
    next->n = 0;
    next->nf = 0;
    next->start[0] = 0;
    stk t;
    for (int k = 0; k < s->n; k++) {
        load(s, k, &t);
        step(g, &t, c, next, 0);
    }
}

/* Would the stack be complete at the end of the input? */
static bool stack_complete(const sl_grammar *g, stk *t) {
    for (;;) {
        gr_frame *f = &t->f[t->n - 1];
        if (f->kind == FR_ROOT) return f->phase == R_DONE;
        bool ends = (f->kind == FR_NUM && (f->phase == N_ZERO || f->phase == N_INT || f->phase == N_FRAC ||
                                           f->phase == N_EXP)) ||
                    (f->kind == FR_LIT && g->lits[f->a].value >= 0);
        if (!ends) return false;
        pop_done(t);
    }
}

bool gr_state_complete(const sl_grammar *g, const gr_state *s) {
    stk t;
    for (int k = 0; k < s->n; k++) {
        load(s, k, &t);
        if (stack_complete(g, &t)) return true;
    }
    return false;
}

bool gr_state_finished(const sl_grammar *g, const gr_state *s) {
    (void)g;
    for (int k = 0; k < s->n; k++) {
        const gr_frame *top = &s->f[s->start[k + 1] - 1];
        if (top->kind != FR_ROOT || top->phase != R_DONE) return false;
    }
    return s->n > 0;
}

int gr_state_string_room(const sl_grammar *g, const gr_state *s) {
    if (s->n != 1) return -1;
    const gr_frame *f = &s->f[s->nf - 1];
    if (f->kind != FR_STR || f->phase != SP_BODY || f->sub) return -1;
    const gr_node *nd = &g->nodes[f->node];
    return nd->max_len < 0 ? INT32_MAX : nd->max_len - f->a;
}

int gr_state_string_chars(const gr_state *s) { return s->n == 1 && s->f[s->nf - 1].kind == FR_STR ? s->f[s->nf - 1].a : -1; }

/* ---- the public matcher ---- */

struct sl_grammar_matcher {
    const sl_grammar *g;
    gr_state cur, tmp, save;
    gr_state **levels;   /* the vocabulary walk's state per trie depth (grammar_vocab.c) */
    int n_levels;
};

int sl_grammar_matcher_new(const sl_grammar *g, sl_grammar_matcher **out, sl_error *err) {
    *out = NULL;
    sl_grammar_matcher *m = calloc(1, sizeof *m);
    if (!m) return sl_errorf(err, SL_ENOMEM, "out of memory");
    m->g = g;
    gr_state_init(g, &m->cur);
    *out = m;
    return 0;
}

void sl_grammar_matcher_free(sl_grammar_matcher *m) {
    if (!m) return;
    for (int i = 0; i < m->n_levels; i++) free(m->levels[i]);
    free(m->levels);
    free(m);
}

void sl_grammar_matcher_reset(sl_grammar_matcher *m) { gr_state_init(m->g, &m->cur); }

/* dst = src, copying only what is used. */
static void state_copy(gr_state *dst, const gr_state *src) {
    dst->n = src->n;
    dst->nf = src->nf;
    memcpy(dst->start, src->start, sizeof *src->start * (size_t)(src->n + 1));
    memcpy(dst->f, src->f, sizeof *src->f * (size_t)src->nf);
}

bool sl_grammar_accept_bytes(sl_grammar_matcher *m, const char *s, size_t n) {
    if (n == 0) return true;
    /* feed alternately into tmp and cur's copy in save; the live state ends in cur */
    gr_state *bufs[2] = {&m->tmp, &m->save};
    state_copy(&m->save, &m->cur);
    const gr_state *from = &m->cur;
    for (size_t i = 0; i < n; i++) {
        gr_state *to = bufs[i % 2];
        if (to == from) to = bufs[(i + 1) % 2];
        gr_state_feed(m->g, from, (uint8_t)s[i], to);
        if (to->n == 0) return false;   /* cur untouched */
        from = to;
    }
    state_copy(&m->cur, from);
    return true;
}

bool sl_grammar_complete(const sl_grammar_matcher *m) { return gr_state_complete(m->g, &m->cur); }
bool sl_grammar_finished(const sl_grammar_matcher *m) { return gr_state_finished(m->g, &m->cur); }

/* For grammar_vocab.c: the current state, the grammar, and level buffers. */
const gr_state *gr_matcher_state(const sl_grammar_matcher *m) { return &m->cur; }
const sl_grammar *gr_matcher_grammar(const sl_grammar_matcher *m) { return m->g; }
gr_state *gr_matcher_level(sl_grammar_matcher *m, int depth) {
    if (depth >= m->n_levels) {
        gr_state **lv = realloc(m->levels, sizeof *lv * (size_t)(depth + 1));
        if (!lv) return NULL;
        m->levels = lv;
        for (int i = m->n_levels; i <= depth; i++) lv[i] = NULL;
        m->n_levels = depth + 1;
    }
    if (!m->levels[depth]) m->levels[depth] = malloc(sizeof **m->levels);
    return m->levels[depth];
}
