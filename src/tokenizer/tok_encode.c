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
        if (pc->added_id >= 0) rc = tok_ids_push(seq, (uint32_t)pc->added_id);
        else rc = tok_bpe_encode(t, pc->s, pc->n, seq);
        if (rc) return rc;
    }
    return 0;
}

int sl_tok_encode(sl_tokenizer *t, const char *text, size_t len, unsigned flags, sl_tok_ids *out, sl_error *err) {
    if (!text && len) return sl_errorf(err, SL_EINVAL, "%s: encode: NULL text", t->name);
    if (!text) text = "";
    if (!tok_utf8_valid(text, len)) {
        if (tok_utf8_lossy(text, len, &t->lossy)) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
        text = t->lossy.p;
        len = t->lossy.n;
    }
    t->seq.n = 0;
    int rc = encode_seq(t, text, len, flags, &t->seq);
    if (rc == SL_EINVAL && t->bpe.unk_token && t->bpe.unk_id < 0)
        return sl_errorf(err, SL_EINVAL, "%s: unk_token \"%.60s\" is not in the vocabulary", t->name,
                         t->bpe.unk_token);
    if (rc) return sl_errorf(err, rc, "%s: encode failed: out of memory", t->name);
    size_t before = out->n;
    if (!(flags & SL_TOK_ADD_SPECIAL) || !t->post.present) {
        for (size_t i = 0; i < t->seq.n && !rc; i++) rc = tok_ids_push(out, t->seq.ids[i]);
    } else {
        for (size_t k = 0; k < t->post.n_single && !rc; k++) {
            if (t->post.single[k] != UINT32_MAX) rc = tok_ids_push(out, t->post.single[k]);
            else
                for (size_t i = 0; i < t->seq.n && !rc; i++) rc = tok_ids_push(out, t->seq.ids[i]);
        }
    }
    if (rc) {
        out->n = before;
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    }
    return 0;
}

void sl_tok_ids_free(sl_tok_ids *ids) {
    free(ids->ids);
    ids->ids = NULL;
    ids->n = ids->cap = 0;
}
