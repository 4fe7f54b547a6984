/*
 * tok_encode.c — text -> ids, the pipeline of HF's Tokenizer::encode for a
 * single sequence: repair invalid UTF-8 (from_utf8_lossy), split out
 * non-normalized added tokens, normalize each remaining segment (empty
 * results dropped), split out normalized added tokens, pre-tokenize, BPE
 * each piece, then apply the flattened post-processor template when
 * SL_TOK_ADD_SPECIAL is set.
 *
 * Invariants: uses the tokenizer's scratch (arena, piece lists), so one
 * encode at a time per tokenizer; appends to `out` and on failure leaves
 * out->n as it was.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

/* Token text overrides, aligned with t->seq: added tokens show the text they
 * matched (HF's Encoding.tokens), model tokens their vocab string. */
static int ovr_sync(sl_tokenizer *t, const char *s, size_t n) {
    size_t need = t->seq.n;
    if (need > t->ovr_cap) {
        size_t cap = t->ovr_cap ? t->ovr_cap : 256;
        while (cap < need) cap *= 2;
        uint32_t *v = realloc(t->ovr, cap * sizeof *v);
        if (!v) return SL_ENOMEM;
        t->ovr = v;
        t->ovr_cap = cap;
    }
    for (size_t i = t->ovr_n; i < need; i++) t->ovr[i] = 0;
    t->ovr_n = need;
    if (s) {
        if (t->ovr_buf.n + n + 1 >= UINT32_MAX) return SL_ENOMEM;
        t->ovr[need - 1] = (uint32_t)t->ovr_buf.n + 1;
        if (tok_buf_put(&t->ovr_buf, s, n) || tok_buf_putc(&t->ovr_buf, 0)) return SL_ENOMEM;
    }
    return 0;
}

static int encode_seq(sl_tokenizer *t, const char *text, size_t len, unsigned flags, sl_tok_ids *seq) {
    bool as_text = (flags & SL_TOK_SPECIAL_AS_TEXT) != 0;
    tok_arena_reset(&t->arena);
    t->pa.n = t->pb.n = 0;
    int rc = tok_added_split(&t->trie_raw, t->added, text, len, true, as_text, &t->pa);
    if (rc) return rc;
    for (size_t i = 0; i < t->pa.n; i++) {
        tok_piece pc = t->pa.v[i];
        if (pc.added_id >= 0) {
            if ((rc = tok_pieces_push(&t->pb, pc.s, pc.n, pc.added_id, false))) return rc;
            continue;
        }
        const char *s = pc.s;
        size_t n = pc.n;
        if (t->has_norm) {
            if ((rc = tok_norm_apply(&t->norm, pc.s, pc.n, &t->nbuf, &t->ntmp))) return rc;
            if (t->nbuf.n == 0) continue;
            char *d = tok_arena_alloc(&t->arena, t->nbuf.n);
            if (!d) return SL_ENOMEM;
            memcpy(d, t->nbuf.p, t->nbuf.n);
            s = d;
            n = t->nbuf.n;
        }
        if ((rc = tok_added_split(&t->trie_norm, t->added, s, n, pc.at_origin, as_text, &t->pb))) return rc;
    }
    if (t->has_pre && (rc = tok_pretok_apply(&t->pre, &t->pb, &t->pc, &t->arena))) return rc;
    for (size_t i = 0; i < t->pb.n; i++) {
        const tok_piece *pc = &t->pb.v[i];
        if (pc->added_id >= 0) {
            rc = tok_ids_push(seq, (uint32_t)pc->added_id);
            if (!rc && t->want_strs) rc = ovr_sync(t, pc->s, pc->n);
        } else {
            rc = tok_bpe_encode(t, pc->s, pc->n, seq);
            if (!rc && t->want_strs) rc = ovr_sync(t, NULL, 0);
        }
        if (rc) return rc;
    }
    return 0;
}

static int strs_push(sl_tok_strs *o, const char *s, size_t n) {
    if (o->n == o->ncap) {
        size_t cap = o->ncap ? o->ncap * 2 : 256;
        size_t *a = realloc(o->off, cap * sizeof *a);
        if (!a) return SL_ENOMEM;
        o->off = a;
        size_t *b = realloc(o->len, cap * sizeof *b);
        if (!b) return SL_ENOMEM;
        o->len = b;
        o->ncap = cap;
    }
    if (o->size + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->size + n + 1) cap *= 2;
        char *d = realloc(o->data, cap);
        if (!d) return SL_ENOMEM;
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->size, s, n);
    o->data[o->size + n] = 0;
    o->off[o->n] = o->size;
    o->len[o->n++] = n;
    o->size += n + 1;
    return 0;
}

static int seq_str(sl_tokenizer *t, size_t i, sl_tok_strs *o) {
    if (t->ovr[i]) {
        const char *s = t->ovr_buf.p + t->ovr[i] - 1;
        return strs_push(o, s, strlen(s));
    }
    uint32_t id = t->seq.ids[i];
    return strs_push(o, tok_str(t, id), t->tok_len[id]);
}

int sl_tok_encode(sl_tokenizer *t, const char *text, size_t len, unsigned flags, sl_tok_ids *out, sl_error *err) {
    return sl_tok_encode_strs(t, text, len, flags, out, NULL, err);
}

int sl_tok_encode_strs(sl_tokenizer *t, const char *text, size_t len, unsigned flags, sl_tok_ids *out,
                       sl_tok_strs *strs, sl_error *err) {
    if (!text && len) return sl_errorf(err, SL_EINVAL, "%s: encode: NULL text", t->name);
    if (!text) text = "";
    if (!tok_utf8_valid(text, len)) {
        if (tok_utf8_lossy(text, len, &t->lossy)) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
        text = t->lossy.p;
        len = t->lossy.n;
    }
    t->seq.n = 0;
    t->ovr_n = 0;
    t->ovr_buf.n = 0;
    t->want_strs = strs != NULL;
    int rc = encode_seq(t, text, len, flags, &t->seq);
    if (rc == SL_EINVAL && t->bpe.unk_token && t->bpe.unk_id < 0)
        return sl_errorf(err, SL_EINVAL, "%s: unk_token \"%.60s\" is not in the vocabulary", t->name,
                         t->bpe.unk_token);
    if (rc) return sl_errorf(err, rc, "%s: encode failed: out of memory", t->name);
    size_t before = out->n, sbefore = strs ? strs->n : 0, sbytes = strs ? strs->size : 0;
    if (!(flags & SL_TOK_ADD_SPECIAL) || !t->post.present) {
        for (size_t i = 0; i < t->seq.n && !rc; i++) {
            rc = tok_ids_push(out, t->seq.ids[i]);
            if (!rc && strs) rc = seq_str(t, i, strs);
        }
    } else {
        for (size_t k = 0; k < t->post.n_single && !rc; k++) {
            uint32_t id = (uint32_t)t->post.single[k];
            uint32_t name = (uint32_t)(t->post.single[k] >> 32);
            if (id != UINT32_MAX) {
                rc = tok_ids_push(out, id);
                if (!rc && strs) {
                    const char *nm = name ? t->strs.p + name - 1 : tok_str(t, id);
                    rc = strs_push(strs, nm, name ? strlen(nm) : t->tok_len[id]);
                }
            } else
                for (size_t i = 0; i < t->seq.n && !rc; i++) {
                    rc = tok_ids_push(out, t->seq.ids[i]);
                    if (!rc && strs) rc = seq_str(t, i, strs);
                }
        }
    }
    if (rc && strs) {
        strs->n = sbefore;
        strs->size = sbytes;
    }
    if (rc) {
        out->n = before;
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    }
    return 0;
}

void sl_tok_strs_free(sl_tok_strs *s) {
    free(s->data);
    free(s->off);
    free(s->len);
    memset(s, 0, sizeof *s);
}

void sl_tok_ids_free(sl_tok_ids *ids) {
    free(ids->ids);
    ids->ids = NULL;
    ids->n = ids->cap = 0;
}
