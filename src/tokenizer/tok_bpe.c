/*
 * tok_bpe.c — the BPE model of tokenizer.json, with HF's exact semantics:
 * vocab and merges (strings "a b" or pairs ["a","b"]; a repeated pair keeps
 * the later rank), ignore_merges (a piece found whole in the vocab is one
 * token), continuing_subword_prefix / end_of_word_suffix, byte_fallback to
 * <0xXX> tokens, unk_token with fuse_unk, and the merge loop of
 * tokenizers' Word::merge_all (lowest rank first, leftmost on ties, via a
 * binary heap with lazy invalidation).  A word cache maps pieces to ids.
 *
 * Invariants: every merge's a, b and a+b are vocab tokens (checked at load,
 * as HF does); ids in the cache and output are < n_mod; all string offsets
 * fit uint32 (load fails beyond 4 GiB of token text).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

uint64_t tok_hash(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    if (n) memcpy(&v, s, n);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int tok_strmap_build(tok_strmap *m, const tok_buf *strs, const uint32_t *off, const uint32_t *len,
                     const uint32_t *ids, size_t n) {
    memset(m, 0, sizeof *m);
    size_t cap = pow2_at_least(n * 2 + 1);
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) return SL_ENOMEM;
    m->mask = cap - 1;
    m->strs = strs;
    uint64_t *hs = malloc((n + 1) * sizeof *hs);
    if (!hs) {
        free(m->slots);
        m->slots = NULL;
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) hs[i] = tok_hash(strs->p + off[ids[i]], len[ids[i]]);
    enum { AHEAD = 16 };
    for (size_t i = 0; i < n && i < AHEAD; i++) __builtin_prefetch(&m->slots[(size_t)hs[i] & m->mask], 1);
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n) __builtin_prefetch(&m->slots[(size_t)hs[i + AHEAD] & m->mask], 1);
        uint32_t id = ids[i];
        const char *s = strs->p + off[id];
        size_t l = len[id];
        uint64_t hh = hs[i];
        uint32_t tag = (uint32_t)(hh >> 32);
        size_t h = (size_t)hh & m->mask;
        for (;;) {
            tok_slot *v = &m->slots[h];
            if (!v->id1 || (v->tag == tag && v->len == l && !memcmp(strs->p + v->off, s, l))) {
                *v = (tok_slot){tag, id + 1, off[id], (uint32_t)l};
                break;
            }
            h = (h + 1) & m->mask;
        }
    }
    free(hs);
    return 0;
}

int64_t tok_strmap_get_h(const tok_strmap *m, const char *s, size_t n, uint64_t hh) {
    if (!m->slots) return -1;
    uint32_t tag = (uint32_t)(hh >> 32);
    size_t h = (size_t)hh & m->mask;
    const char *base = m->strs->p;
    for (;;) {
        const tok_slot *v = &m->slots[h];
        if (!v->id1) return -1;
        if (v->tag == tag && v->len == n && !memcmp(base + v->off, s, n)) return (int64_t)v->id1 - 1;
        h = (h + 1) & m->mask;
    }
}

int64_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n) {
    return tok_strmap_get_h(m, s, n, tok_hash(s, n));
}

const tok_slot *tok_strmap_peek(const tok_strmap *m, uint64_t hh) {
    uint32_t tag = (uint32_t)(hh >> 32);
    size_t h = (size_t)hh & m->mask;
    for (;;) {
        const tok_slot *v = &m->slots[h];
        if (!v->id1) return NULL;
        if (v->tag == tag) {
            __builtin_prefetch(m->strs->p + v->off);
            return v;
        }
        h = (h + 1) & m->mask;
    }
}

void tok_strmap_free(tok_strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- merges map ---- */
static inline size_t merge_slot(const tok_bpe *b, uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    k ^= k >> 32;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 29;
    return (size_t)k & b->mmask;
}

static void merge_put(tok_bpe *b, uint32_t a, uint32_t c, uint32_t rank, uint32_t new_id) {
    uint64_t k = ((uint64_t)a << 32) | c;
    size_t h = merge_slot(b, k);
    while (b->mkeys[h] != UINT64_MAX && b->mkeys[h] != k) h = (h + 1) & b->mmask;
    b->mkeys[h] = k;
    b->mvals[h] = (tok_merge_val){rank, new_id};
}

static inline const tok_merge_val *merge_get(const tok_bpe *b, uint32_t a, uint32_t c) {
    uint64_t k = ((uint64_t)a << 32) | c;
    size_t h = merge_slot(b, k);
    for (;;) {
        uint64_t x = b->mkeys[h];
        if (x == k) return &b->mvals[h];
        if (x == UINT64_MAX) return NULL;
        h = (h + 1) & b->mmask;
    }
}

static char *dup_opt(const cJSON *j, size_t *n) {
    if (!cJSON_IsString(j)) return NULL;
    size_t l = strlen(j->valuestring);
    char *s = malloc(l + 1);
    if (s) memcpy(s, j->valuestring, l + 1);
    *n = l;
    return s;
}

static bool get_bool(const cJSON *j, const char *k, bool def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int load_vocab(sl_tokenizer *t, tok_span span, sl_error *err) {
    tok_bpe *b = &t->bpe;
    tok_jscan sc = {span.p, span.p ? span.p + span.n : NULL};
    if (!span.p || !tok_jscan_char(&sc, '{'))
        return sl_errorf(err, SL_EINVAL, "%s: model.vocab must be an object", t->name);
    /* entries: (offset in strs, length, id) */
    uint32_t *ent = NULL;
    size_t n = 0, cap = 0;
    uint64_t maxid = 0;
    int rc = 0;
    if (!tok_jscan_char(&sc, '}')) {
        for (;;) {
            if (n == cap) {
                cap = cap ? cap * 2 : 65536;
                uint32_t *v = realloc(ent, cap * 3 * sizeof *v);
                if (!v) {
                    rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
                    break;
                }
                ent = v;
            }
            size_t off = t->strs.n;
            uint64_t id;
            if (tok_jscan_string(&sc, &t->strs) || !tok_jscan_char(&sc, ':')) {
                rc = sl_errorf(err, SL_EINVAL, "%s: model.vocab: bad JSON near byte %zu of the vocab", t->name,
                               (size_t)(sc.p - span.p));
                break;
            }
            size_t l = t->strs.n - off;
            if (tok_jscan_uint(&sc, 16777215, &id)) {
                rc = sl_errorf(err, SL_EINVAL, "%s: model.vocab[\"%.*s\"]: id must be an integer in [0, 2^24)", t->name,
                               (int)(l > 60 ? 60 : l), t->strs.p + off);
                break;
            }
            if (tok_buf_putc(&t->strs, 0) || t->strs.n >= UINT32_MAX) {
                rc = sl_errorf(err, SL_ENOMEM, "%s: vocabulary too large", t->name);
                break;
            }
            ent[3 * n] = (uint32_t)off;
            ent[3 * n + 1] = (uint32_t)l;
            ent[3 * n + 2] = (uint32_t)id;
            if (id > maxid) maxid = id;
            n++;
            if (tok_jscan_char(&sc, '}')) break;
            if (!tok_jscan_char(&sc, ',')) {
                rc = sl_errorf(err, SL_EINVAL, "%s: model.vocab: bad JSON near byte %zu of the vocab", t->name,
                               (size_t)(sc.p - span.p));
                break;
            }
        }
    }
    if (!rc) {
        b->n_mod = n ? (uint32_t)maxid + 1 : 0;
        b->mod_off = malloc(((size_t)b->n_mod + 1) * sizeof *b->mod_off);
        b->mod_len = malloc(((size_t)b->n_mod + 1) * sizeof *b->mod_len);
        uint32_t *ids = malloc((n + 1) * sizeof *ids);
        if (!b->mod_off || !b->mod_len || !ids) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
        else {
            for (uint32_t i = 0; i < b->n_mod; i++) b->mod_len[i] = UINT32_MAX, b->mod_off[i] = 0;
            for (size_t i = 0; i < n; i++) {
                uint32_t id = ent[3 * i + 2];
                b->mod_off[id] = ent[3 * i];
                b->mod_len[id] = ent[3 * i + 1];
                ids[i] = id;
            }
            if (tok_strmap_build(&b->vocab, &t->strs, b->mod_off, b->mod_len, ids, n))
                rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
        }
        free(ids);
    }
    free(ent);
    return rc;
}

/* One merge being resolved; merges are resolved in batches so that the
 * hash-table and string cache misses of a batch overlap (prefetching).
 * Strings live in the batch buffer: a, c, then a+c' (the merged token). */
typedef struct merge_item {
    size_t aoff, an, coff, cn, noff, nn;
    uint64_t ha, hc, hn;
    const tok_slot *pa, *pc, *pn;
} merge_item;

static int64_t resolve(const tok_bpe *b, const tok_slot *p, const char *s, size_t n, uint64_t h) {
    if (p && p->len == n && !memcmp(b->vocab.strs->p + p->off, s, n)) return (int64_t)p->id1 - 1;
    return tok_strmap_get_h(&b->vocab, s, n, h);
}

static int merge_batch(sl_tokenizer *t, merge_item *it, size_t n, const tok_buf *bb, uint32_t rank0, sl_error *err) {
    tok_bpe *b = &t->bpe;
    const char *base = bb->p;
    for (size_t i = 0; i < n; i++) {
        it[i].ha = tok_hash(base + it[i].aoff, it[i].an);
        it[i].hc = tok_hash(base + it[i].coff, it[i].cn);
        it[i].hn = tok_hash(base + it[i].noff, it[i].nn);
        tok_strmap_prefetch(&b->vocab, it[i].ha);
        tok_strmap_prefetch(&b->vocab, it[i].hc);
        tok_strmap_prefetch(&b->vocab, it[i].hn);
    }
    for (size_t i = 0; i < n; i++) {
        it[i].pa = tok_strmap_peek(&b->vocab, it[i].ha);
        it[i].pc = tok_strmap_peek(&b->vocab, it[i].hc);
        it[i].pn = tok_strmap_peek(&b->vocab, it[i].hn);
    }
    uint32_t ids[3 * 64];
    if (n > 64) return SL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        merge_item *m = &it[i];
        uint32_t rank = rank0 + (uint32_t)i;
        const char *a = base + m->aoff, *c = base + m->coff;
        int64_t ia = resolve(b, m->pa, a, m->an, m->ha), ic = resolve(b, m->pc, c, m->cn, m->hc);
        if (ia < 0 || ic < 0)
            return sl_errorf(err, SL_EINVAL, "%s: model.merges[%u]: token \"%.*s\" is not in the vocab", t->name, rank,
                             (int)(ia < 0 ? (m->an > 60 ? 60 : m->an) : (m->cn > 60 ? 60 : m->cn)), ia < 0 ? a : c);
        int64_t in = resolve(b, m->pn, base + m->noff, m->nn, m->hn);
        if (in < 0)
            return sl_errorf(err, SL_EINVAL, "%s: model.merges[%u]: merged token \"%.*s\" is not in the vocab", t->name,
                             rank, (int)(m->nn > 60 ? 60 : m->nn), base + m->noff);
        ids[3 * i] = (uint32_t)ia;
        ids[3 * i + 1] = (uint32_t)ic;
        ids[3 * i + 2] = (uint32_t)in;
        __builtin_prefetch(&b->mkeys[merge_slot(b, ((uint64_t)ia << 32) | (uint32_t)ic)], 1);
    }
    for (size_t i = 0; i < n; i++) merge_put(b, ids[3 * i], ids[3 * i + 1], rank0 + (uint32_t)i, ids[3 * i + 2]);
    return 0;
}

/* Parse one merge ("a b" or ["a", "b"]) into the batch buffer. */
static int parse_merge(tok_jscan *sc, tok_buf *bb, merge_item *m, size_t skip_max) {
    if (tok_jscan_peek(sc, '[')) {
        sc->p++;
        m->aoff = bb->n;
        if (tok_jscan_string(sc, bb)) return -1;
        m->an = bb->n - m->aoff;
        if (!tok_jscan_char(sc, ',')) return -1;
        m->coff = bb->n;
        if (tok_jscan_string(sc, bb)) return -1;
        m->cn = bb->n - m->coff;
        if (!tok_jscan_char(sc, ']')) return -1;
    } else {
        size_t st = bb->n;
        if (tok_jscan_string(sc, bb)) return -1;
        const char *sp = memchr(bb->p + st, ' ', bb->n - st);
        if (!sp) return -2;
        m->aoff = st;
        m->an = (size_t)(sp - (bb->p + st));
        m->coff = st + m->an + 1;
        m->cn = bb->n - m->coff;
        if (memchr(bb->p + m->coff, ' ', m->cn)) return -2;
    }
    size_t skip = skip_max > m->cn ? m->cn : skip_max;
    m->noff = bb->n;
    m->nn = m->an + m->cn - skip;
    if (tok_buf_reserve(bb, m->nn + 1)) return -3;
    memcpy(bb->p + bb->n, bb->p + m->aoff, m->an);
    memcpy(bb->p + bb->n + m->an, bb->p + m->coff + skip, m->cn - skip);
    bb->n += m->nn;
    return 0;
}

static int load_merges(sl_tokenizer *t, tok_span span, sl_error *err) {
    tok_bpe *b = &t->bpe;
    tok_jscan sc = {span.p, span.p ? span.p + span.n : NULL};
    if (span.p && !tok_jscan_char(&sc, '['))
        return sl_errorf(err, SL_EINVAL, "%s: model.merges must be an array", t->name);
    /* rough count for the table size: one merge per 6 bytes at most is plenty */
    size_t est = 0;
    if (span.p)
        for (size_t i = 0; i < span.n; i++) est += span.p[i] == ',';
    size_t cap = pow2_at_least(est * 2 + 16);
    b->mkeys = malloc(cap * sizeof *b->mkeys);
    b->mvals = malloc(cap * sizeof *b->mvals);
    if (!b->mkeys || !b->mvals) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    memset(b->mkeys, 0xFF, cap * sizeof *b->mkeys);
    b->mmask = cap - 1;
    if (!span.p || tok_jscan_char(&sc, ']')) return 0;
    enum { BATCH = 32 };
    merge_item items[BATCH];
    size_t ni = 0;
    tok_buf bb = {0};
    uint32_t rank = 0;
    int rc = 0;
    size_t skip_max = b->prefix ? b->prefix_n : 0;
    for (;;) {
        int pr = parse_merge(&sc, &bb, &items[ni], skip_max);
        if (pr) {
            rc = pr == -3 ? sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name)
                 : pr == -2 ? sl_errorf(err, SL_EINVAL, "%s: model.merges[%u]: expected \"left right\" (one space)",
                                        t->name, rank + (uint32_t)ni)
                            : sl_errorf(err, SL_EINVAL, "%s: model.merges[%u]: expected a string or a pair of strings",
                                        t->name, rank + (uint32_t)ni);
            break;
        }
        bool last = tok_jscan_char(&sc, ']');
        if (!last && !tok_jscan_char(&sc, ',')) {
            rc = sl_errorf(err, SL_EINVAL, "%s: model.merges[%u]: expected ',' or ']'", t->name, rank + (uint32_t)ni);
            break;
        }
        if (++ni == BATCH || last) {
            if ((rc = merge_batch(t, items, ni, &bb, rank, err))) break;
            rank += (uint32_t)ni;
            ni = 0;
            bb.n = 0;
        }
        if (last) break;
        if (rank >= UINT32_MAX - BATCH) {
            rc = sl_errorf(err, SL_EINVAL, "%s: model.merges: too many merges", t->name);
            break;
        }
    }
    b->n_merges = rank;
    tok_buf_free(&bb);
    return rc;
}

int tok_bpe_from_json(sl_tokenizer *t, const cJSON *model, tok_span vocab, tok_span merges, sl_error *err) {
    tok_bpe *b = &t->bpe;
    b->unk_id = -1;
    for (int i = 0; i < 256; i++) b->byte_ids[i] = -1;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (cJSON_IsString(ty) && strcmp(ty->valuestring, "BPE") != 0)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: unsupported model \"%s\" (only BPE)", t->name, ty->valuestring);
    if (!ty && !merges.p)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: model without \"type\" or \"merges\" (only BPE)", t->name);
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dr) && dr->valuedouble > 0.0)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: BPE dropout is not supported", t->name);
    b->prefix = dup_opt(cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix"), &b->prefix_n);
    b->suffix = dup_opt(cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix"), &b->suffix_n);
    size_t un = 0;
    b->unk_token = dup_opt(cJSON_GetObjectItemCaseSensitive(model, "unk_token"), &un);
    b->fuse_unk = get_bool(model, "fuse_unk", false);
    b->byte_fallback = get_bool(model, "byte_fallback", false);
    b->ignore_merges = get_bool(model, "ignore_merges", false);
    int rc = load_vocab(t, vocab, err);
    if (rc) return rc;
    if ((rc = load_merges(t, merges, err))) return rc;
    if (b->unk_token) b->unk_id = tok_strmap_get(&b->vocab, b->unk_token, un);
    for (int i = 0; i < 256; i++) {
        static const char hx[] = "0123456789ABCDEF";
        char s[6] = {'<', '0', 'x', hx[i >> 4], hx[i & 15], '>'};
        b->byte_ids[i] = tok_strmap_get(&b->vocab, s, 6);
    }
    return 0; /* the word cache is allocated on first use */
}

void tok_bpe_free(tok_bpe *b) {
    tok_strmap_free(&b->vocab);
    free(b->mod_off);
    free(b->mod_len);
    free(b->mkeys);
    free(b->mvals);
    free(b->unk_token);
    free(b->prefix);
    free(b->suffix);
    free(b->cache);
    tok_buf_free(&b->cache_keys);
    free(b->cache_ids);
    free(b->syms);
    free(b->heap);
    tok_buf_free(&b->word);
    memset(b, 0, sizeof *b);
}

int tok_ids_push(sl_tok_ids *ids, uint32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        if (cap > SIZE_MAX / sizeof *ids->ids) return SL_ENOMEM;
        uint32_t *v = realloc(ids->ids, cap * sizeof *v);
        if (!v) return SL_ENOMEM;
        ids->ids = v;
        ids->cap = cap;
    }
    ids->ids[ids->n++] = id;
    return 0;
}

/* ---- heap of candidate merges: (rank, pos) ascending ---- */
static inline bool heap_less(const struct tok_heap_ent *x, const struct tok_heap_ent *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}
static void heap_push(struct tok_heap_ent *h, size_t *n, struct tok_heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}
static struct tok_heap_ent heap_pop(struct tok_heap_ent *h, size_t *n) {
    struct tok_heap_ent top = h[0], last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = (l + 1 < m && heap_less(&h[l + 1], &h[l])) ? l + 1 : l;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static int add_sym(tok_bpe *b, size_t *ns, uint32_t id, size_t len) {
    if (*ns == b->syms_cap) {
        size_t cap = b->syms_cap ? b->syms_cap * 2 : 64;
        struct tok_sym *v = realloc(b->syms, cap * sizeof *v);
        if (!v) return SL_ENOMEM;
        b->syms = v;
        b->syms_cap = cap;
    }
    int32_t i = (int32_t)*ns;
    b->syms[i] = (struct tok_sym){id, i - 1, i + 1, (uint32_t)len};
    (*ns)++;
    return 0;
}

/* Word::merge_word + merge_all; appends the resulting ids to out */
static int merge_word(tok_bpe *b, const char *w, size_t n, sl_tok_ids *out) {
    size_t ns = 0;
    bool have_unk = false;
    uint32_t unk_id = 0;
    size_t unk_len = 0;
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        size_t l = (size_t)tok_utf8_dec(w + i, n - i, &cp);
        bool first = i == 0, last = i + l >= n;
        const char *s = w + i;
        size_t sl = l;
        if ((!first && b->prefix) || (last && b->suffix)) {
            b->word.n = 0;
            if ((!first && b->prefix && tok_buf_put(&b->word, b->prefix, b->prefix_n)) ||
                tok_buf_put(&b->word, w + i, l) || (last && b->suffix && tok_buf_put(&b->word, b->suffix, b->suffix_n)))
                return SL_ENOMEM;
            s = b->word.p;
            sl = b->word.n;
        }
        i += l;
        int64_t id = tok_strmap_get(&b->vocab, s, sl);
        if (id >= 0) {
            if (have_unk) {
                if (add_sym(b, &ns, unk_id, unk_len)) return SL_ENOMEM;
                have_unk = false;
            }
            if (add_sym(b, &ns, (uint32_t)id, l)) return SL_ENOMEM;
            continue;
        }
        if (b->byte_fallback) {
            bool all = true;
            for (size_t k = 0; k < sl; k++)
                if (b->byte_ids[(unsigned char)s[k]] < 0) all = false;
            if (all) {
                for (size_t k = 0; k < sl; k++)
                    if (add_sym(b, &ns, (uint32_t)b->byte_ids[(unsigned char)s[k]], 1)) return SL_ENOMEM;
                continue;
            }
        }
        if (b->unk_token) {
            if (b->unk_id < 0) return SL_EINVAL;
            if (have_unk && b->fuse_unk) unk_len += l;
            else {
                if (have_unk && add_sym(b, &ns, unk_id, unk_len)) return SL_ENOMEM;
                have_unk = true;
                unk_id = (uint32_t)b->unk_id;
                unk_len = l;
            }
        }
    }
    if (have_unk && add_sym(b, &ns, unk_id, unk_len)) return SL_ENOMEM;
    if (ns == 0) return 0;
    b->syms[ns - 1].next = -1;
    struct tok_sym *sy = b->syms;
    if (b->heap_cap < ns * 2 + 8) {
        size_t cap = ns * 2 + 8;
        struct tok_heap_ent *h = realloc(b->heap, cap * sizeof *h);
        if (!h) return SL_ENOMEM;
        b->heap = h;
        b->heap_cap = cap;
    }
    size_t hn = 0;
    for (size_t k = 0; k + 1 < ns; k++) {
        const tok_merge_val *m = merge_get(b, sy[k].c, sy[k + 1].c);
        if (m) heap_push(b->heap, &hn, (struct tok_heap_ent){m->rank, (uint32_t)k, m->new_id});
    }
    while (hn) {
        struct tok_heap_ent top = heap_pop(b->heap, &hn);
        struct tok_sym *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t nx = cur->next;
        const tok_merge_val *m = merge_get(b, cur->c, sy[nx].c);
        if (!m || m->new_id != top.new_id) continue;
        cur->c = top.new_id;
        cur->len += sy[nx].len;
        cur->next = sy[nx].next;
        sy[nx].len = 0;
        if (cur->next >= 0) sy[cur->next].prev = (int32_t)top.pos;
        if (hn + 2 > b->heap_cap) {
            size_t cap = b->heap_cap * 2;
            struct tok_heap_ent *h = realloc(b->heap, cap * sizeof *h);
            if (!h) return SL_ENOMEM;
            b->heap = h;
            b->heap_cap = cap;
            cur = &sy[top.pos];
        }
        if (cur->prev >= 0) {
            const tok_merge_val *pm = merge_get(b, sy[cur->prev].c, cur->c);
            if (pm) heap_push(b->heap, &hn, (struct tok_heap_ent){pm->rank, (uint32_t)cur->prev, pm->new_id});
        }
        if (cur->next >= 0) {
            const tok_merge_val *nm = merge_get(b, cur->c, sy[cur->next].c);
            if (nm) heap_push(b->heap, &hn, (struct tok_heap_ent){nm->rank, top.pos, nm->new_id});
        }
    }
    for (size_t k = 0; k < ns; k++)
        if (sy[k].len && tok_ids_push(out, sy[k].c)) return SL_ENOMEM;
    return 0;
}

#define CACHE_MAX_SLOTS 65536

static void cache_clear(tok_bpe *b) {
    memset(b->cache, 0, (b->cache_mask + 1) * sizeof *b->cache);
    b->cache_n = 0;
    b->cache_keys.n = 0;
    b->cache_ids_n = 0;
}

/* Make room for one more entry: allocate, double (rehash) or clear. */
static int cache_make_room(tok_bpe *b) {
    if (!b->cache) {
        b->cache = calloc(1024, sizeof *b->cache);
        if (!b->cache) return SL_ENOMEM;
        b->cache_mask = 1023;
        return 0;
    }
    if (b->cache_keys.n > (1u << 24) || b->cache_ids_n > (1u << 22)) {
        cache_clear(b);
        return 0;
    }
    if ((b->cache_n + 1) * 2 <= b->cache_mask) return 0;
    if (b->cache_mask + 1 >= CACHE_MAX_SLOTS) {
        cache_clear(b);
        return 0;
    }
    size_t cap = (b->cache_mask + 1) * 2;
    struct tok_cache_ent *nc = calloc(cap, sizeof *nc);
    if (!nc) {
        cache_clear(b);
        return 0;
    }
    for (size_t i = 0; i <= b->cache_mask; i++) {
        if (!b->cache[i].nids) continue;
        size_t h = (size_t)b->cache[i].hash & (cap - 1);
        while (nc[h].nids) h = (h + 1) & (cap - 1);
        nc[h] = b->cache[i];
    }
    free(b->cache);
    b->cache = nc;
    b->cache_mask = cap - 1;
    return 0;
}

int tok_bpe_encode(sl_tokenizer *t, const char *s, size_t n, sl_tok_ids *out) {
    tok_bpe *b = &t->bpe;
    if (n == 0) return 0;
    if (b->ignore_merges) {
        int64_t id = tok_strmap_get(&b->vocab, s, n);
        if (id >= 0) return tok_ids_push(out, (uint32_t)id);
    }
    bool cacheable = n <= 256;
    uint64_t h = cacheable ? tok_hash(s, n) : 0;
    size_t slot = 0;
    if (cacheable && b->cache) {
        slot = (size_t)h & b->cache_mask;
        for (;;) {
            struct tok_cache_ent *e = &b->cache[slot];
            if (!e->nids) break;
            if (e->hash == h && e->klen == n && !memcmp(b->cache_keys.p + e->koff, s, n)) {
                for (uint32_t k = 0; k < e->nids; k++)
                    if (tok_ids_push(out, b->cache_ids[e->ioff + k])) return SL_ENOMEM;
                return 0;
            }
            slot = (slot + 1) & b->cache_mask;
        }
    }
    size_t before = out->n;
    int rc = merge_word(b, s, n, out);
    if (rc || !cacheable || out->n == before) return rc;
    size_t nids = out->n - before;
    if (cache_make_room(b)) return 0; /* the cache is optional */
    slot = (size_t)h & b->cache_mask;
    while (b->cache[slot].nids) slot = (slot + 1) & b->cache_mask;
    if (b->cache_ids_n + nids > b->cache_ids_cap) {
        size_t cap = b->cache_ids_cap ? b->cache_ids_cap : 4096;
        while (cap < b->cache_ids_n + nids) cap *= 2;
        uint32_t *v = realloc(b->cache_ids, cap * sizeof *v);
        if (!v) return 0; /* cache is optional */
        b->cache_ids = v;
        b->cache_ids_cap = cap;
    }
    size_t koff = b->cache_keys.n;
    if (tok_buf_put(&b->cache_keys, s, n)) return 0;
    memcpy(b->cache_ids + b->cache_ids_n, out->ids + before, nids * sizeof(uint32_t));
    b->cache[slot] = (struct tok_cache_ent){h, (uint32_t)koff, (uint32_t)n, (uint32_t)b->cache_ids_n, (uint32_t)nids};
    b->cache_ids_n += nids;
    b->cache_n++;
    return 0;
}
