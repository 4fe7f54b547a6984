/*
 * tok_fastdec.c — fast decode for the decoder chains real tokenizers use:
 *   ByteLevel                                   (GPT-2 style)
 *   Replace* [ByteFallback] [Fuse [Strip...]]   (SentencePiece style)
 * Each token's per-token work (Replace steps, byte-level unmapping, the
 * <0xXX> byte value) is memoised per id on first use, so a decode is a
 * concatenation plus one UTF-8 repair pass.  Output is byte-identical to
 * the generic chain in tok_decode.c (which the tests compare with HF).
 *
 * sl_tok_token_bytes gives the same per-token bytes without the memo (it
 * only reads the tokenizer, so any thread may call it).
 *
 * Invariants: the memo only grows; it makes decode non-reentrant, which the
 * tokenizer's one-thread-at-a-time rule already covers.  Any other chain
 * (Metaspace, Strip before Fuse, BPEDecoder...) uses the generic path.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

enum { FAST_BYTELEVEL = 1, FAST_SPM = 2 };
#define MAX_STEPS 16

struct tok_fastdec {
    int mode;
    const tok_dec *repl[MAX_STEPS];
    size_t n_repl;
    bool byte_fallback, fuse;
    const tok_dec *strip[MAX_STEPS];
    size_t n_strip;
    /* memo per id */
    uint32_t *off, *len; /* len UINT32_MAX = not computed */
    int16_t *byteval;    /* -1: not a <0xXX> token */
    tok_buf data;
};

static size_t flatten(const tok_dec *d, const tok_dec **out, size_t n) {
    if (d->kind != DEC_SEQ) {
        if (n < MAX_STEPS * 2) out[n] = d;
        return n + 1;
    }
    for (size_t i = 0; i < d->n_items; i++) n = flatten(&d->items[i], out, n);
    return n;
}

int tok_fastdec_init(sl_tokenizer *t) {
    if (!t->has_dec) return 0;
    const tok_dec *steps[MAX_STEPS * 2];
    size_t n = flatten(&t->dec, steps, 0);
    if (n > MAX_STEPS * 2) return 0;
    struct tok_fastdec f = {0};
    size_t i = 0;
    while (i < n && steps[i]->kind == DEC_REPLACE && f.n_repl < MAX_STEPS) f.repl[f.n_repl++] = steps[i++];
    if (i < n && steps[i]->kind == DEC_BYTELEVEL) {
        if (i + 1 != n) return 0;
        f.mode = FAST_BYTELEVEL;
    } else {
        f.mode = FAST_SPM;
        if (i < n && steps[i]->kind == DEC_BYTEFALLBACK) f.byte_fallback = true, i++;
        if (i < n && steps[i]->kind == DEC_FUSE) f.fuse = true, i++;
        while (f.fuse && i < n && steps[i]->kind == DEC_STRIP && f.n_strip < MAX_STEPS) f.strip[f.n_strip++] = steps[i++];
        if (i != n) return 0;
    }
    struct tok_fastdec *p = calloc(1, sizeof *p);
    if (!p) return SL_ENOMEM;
    *p = f;
    p->off = malloc(((size_t)t->n_ids + 1) * sizeof *p->off);
    p->len = malloc(((size_t)t->n_ids + 1) * sizeof *p->len);
    p->byteval = malloc(((size_t)t->n_ids + 1) * sizeof *p->byteval);
    if (!p->off || !p->len || !p->byteval) {
        tok_fastdec_free(p);
        return SL_ENOMEM;
    }
    memset(p->len, 0xFF, ((size_t)t->n_ids + 1) * sizeof *p->len);
    t->fast = p;
    return 0;
}

void tok_fastdec_free(struct tok_fastdec *f) {
    if (!f) return;
    free(f->off);
    free(f->len);
    free(f->byteval);
    tok_buf_free(&f->data);
    free(f);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int replace_into(const tok_dec *d, const char *s, size_t n, tok_buf *out) {
    tok_match_iter it;
    tok_match_iter_init(&it, &d->pat, s, n);
    size_t prev = 0, ms, me;
    out->n = 0;
    while (tok_match_next(&it, &ms, &me)) {
        if (tok_buf_put(out, s + prev, ms - prev) || tok_buf_put(out, d->content, d->content_n)) return SL_ENOMEM;
        prev = me;
    }
    return tok_buf_put(out, s + prev, n - prev);
}

/* The bytes id contributes to decoded text, appended to out: Replace steps,
 * then byte-level unmapping (ByteLevel) or the token string as is (SPM);
 * *bv: the byte of a <0xXX> byte-fallback token, else -1. */
static int token_bytes(const struct tok_fastdec *f, const sl_tokenizer *t, uint32_t id, tok_buf *out, int16_t *bv) {
    const char *s = tok_str(t, id);
    size_t n = t->tok_len[id];
    tok_buf a = {0}, b = {0};
    int rc = 0;
    for (size_t k = 0; k < f->n_repl && !rc; k++) {
        rc = replace_into(f->repl[k], s, n, &a);
        tok_buf sw = a;
        a = b;
        b = sw;
        s = b.p;
        n = b.n;
    }
    size_t off = out->n;
    *bv = -1;
    if (!rc && f->mode == FAST_BYTELEVEL) {
        size_t k = 0;
        bool ok = true;
        while (k < n && !rc) {
            int32_t cp;
            k += (size_t)tok_utf8_dec(s + k, n - k, &cp);
            int by = tok_cp_to_byte(cp);
            if (by < 0) {
                ok = false;
                break;
            }
            char c = (char)by;
            rc = tok_buf_put(out, &c, 1);
        }
        if (!rc && !ok) {
            out->n = off;
            rc = tok_buf_put(out, s, n);
        }
    } else if (!rc) {
        int hi, lo;
        if (f->byte_fallback && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && (hi = hexval(s[3])) >= 0 &&
            (lo = hexval(s[4])) >= 0)
            *bv = (int16_t)(hi * 16 + lo);
        rc = tok_buf_put(out, s, n);
    }
    tok_buf_free(&a);
    tok_buf_free(&b);
    return rc;
}

/* Compute the memo entry of id. */
static int memo(struct tok_fastdec *f, const sl_tokenizer *t, uint32_t id) {
    size_t off = f->data.n;
    int16_t bv = -1;
    int rc = token_bytes(f, t, id, &f->data, &bv);
    if (rc) return rc;
    if (f->data.n - off >= UINT32_MAX || f->data.n >= UINT32_MAX) return SL_ENOMEM;
    f->off[id] = (uint32_t)off;
    f->len[id] = (uint32_t)(f->data.n - off);
    f->byteval[id] = bv;
    return 0;
}

int sl_tok_token_bytes(const sl_tokenizer *t, uint32_t id, char **bytes, size_t *len, sl_error *err) {
    *bytes = NULL;
    *len = 0;
    if (!t->fast)
        return sl_errorf(err, SL_EUNSUPPORTED,
                         "%s: the decoder has no per-token bytes (only ByteLevel and SentencePiece byte-fallback "
                         "chains do)", t->name);
    if (id >= t->n_ids || t->tok_len[id] == UINT32_MAX)
        return sl_errorf(err, SL_EINVAL, "%s: token id %u is not in the vocabulary", t->name, id);
    tok_buf out = {0};
    int16_t bv = -1;
    int rc = token_bytes(t->fast, t, id, &out, &bv);
    if (!rc && bv >= 0) {
        out.n = 0;
        rc = tok_buf_putc(&out, (char)bv);
    }
    if (!rc) rc = tok_buf_reserve(&out, 1);
    if (rc) {
        tok_buf_free(&out);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    out.p[out.n] = 0;
    *bytes = out.p;
    *len = out.n;
    return 0;
}

static int flush_bytes(tok_buf *out, const char *bytes, size_t n) {
    if (!n) return 0;
    if (tok_utf8_valid(bytes, n)) return tok_buf_put(out, bytes, n);
    for (size_t k = 0; k < n; k++)
        if (tok_buf_put(out, "\xEF\xBF\xBD", 3)) return SL_ENOMEM;
    return 0;
}

int tok_fastdec_run(const sl_tokenizer *t, const uint32_t *ids, size_t n, bool skip_special, tok_buf *out, int *rc) {
    struct tok_fastdec *f = t->fast;
    if (!f) return 0;
    out->n = 0;
    *rc = 0;
    tok_buf raw = {0}, pend = {0};
    tok_buf *dst = f->mode == FAST_BYTELEVEL ? &raw : out;
    for (size_t i = 0; i < n && !*rc; i++) {
        uint32_t id = ids[i];
        if (skip_special && t->tok_special[id]) continue;
        if (f->len[id] == UINT32_MAX && (*rc = memo(f, t, id))) break;
        if (f->byteval[id] >= 0) {
            char c = (char)f->byteval[id];
            *rc = tok_buf_put(&pend, &c, 1);
            continue;
        }
        if (pend.n) {
            *rc = flush_bytes(out, pend.p, pend.n);
            pend.n = 0;
            if (*rc) break;
        }
        *rc = tok_buf_put(dst, f->data.p + f->off[id], f->len[id]);
    }
    if (!*rc && f->mode == FAST_BYTELEVEL) *rc = tok_utf8_lossy(raw.p ? raw.p : "", raw.n, out);
    else if (!*rc && pend.n) *rc = flush_bytes(out, pend.p, pend.n);
    tok_buf_free(&raw);
    tok_buf_free(&pend);
    if (*rc) return 1;
    /* Strip steps after Fuse act on the single fused string */
    for (size_t k = 0; k < f->n_strip; k++) {
        const tok_dec *d = f->strip[k];
        size_t a = 0, b = out->n;
        for (size_t c = 0; c < d->start && a < b; c++) {
            int32_t cp;
            int l = tok_utf8_dec(out->p + a, b - a, &cp);
            if (cp != d->repl_cp) break;
            a += (size_t)l;
        }
        for (size_t c = 0; c < d->stop && b > a; c++) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)out->p[st] & 0xC0) == 0x80) st--;
            int32_t cp;
            tok_utf8_dec(out->p + st, b - st, &cp);
            if (cp != d->repl_cp) break;
            b = st;
        }
        if (a && b > a) memmove(out->p, out->p + a, b - a);
        out->n = b - a;
    }
    if ((*rc = tok_buf_reserve(out, 1))) return 1;
    out->p[out->n] = 0;
    return 1;
}
