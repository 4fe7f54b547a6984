/*
 * tok_decode.c — ids -> text as HF's Tokenizer::decode: ids become token
 * strings (added tokens first, then the model vocab; special ones dropped
 * on request), the decoder chain rewrites the token list (ByteLevel,
 * Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence) and
 * the result is the concatenation (no decoder: tokens joined by " ").  The
 * streaming decoder follows tokenizers' DecodeStream step for step.
 *
 * Invariants: output is valid UTF-8 (ByteLevel and ByteFallback repair
 * invalid bytes with U+FFFD exactly as HF); ids are checked against the
 * table before use.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

/* ---- decoder config ---- */
static bool get_bool(const cJSON *j, const char *k, bool def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int one_char(const cJSON *j, const char *what, int32_t def, int32_t *out, sl_error *err) {
    if (!j) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsString(j)) return sl_errorf(err, SL_EINVAL, "%s must be a one-character string", what);
    size_t l = strlen(j->valuestring);
    int32_t cp;
    if (l == 0 || (size_t)tok_utf8_dec(j->valuestring, l, &cp) != l || cp < 0)
        return sl_errorf(err, SL_EINVAL, "%s must be a one-character string", what);
    *out = cp;
    return 0;
}

static char *dup_s(const char *s, size_t *n) {
    size_t l = strlen(s);
    char *d = malloc(l + 1);
    if (d) memcpy(d, s, l + 1);
    *n = l;
    return d;
}

int tok_dec_from_json(tok_dec *d, const cJSON *j, sl_error *err) {
    memset(d, 0, sizeof *d);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(ty)) return sl_errorf(err, SL_EINVAL, "decoder: missing \"type\"");
    const char *t = ty->valuestring;
    int rc;
    if (!strcmp(t, "ByteLevel")) d->kind = DEC_BYTELEVEL;
    else if (!strcmp(t, "ByteFallback")) d->kind = DEC_BYTEFALLBACK;
    else if (!strcmp(t, "Fuse")) d->kind = DEC_FUSE;
    else if (!strcmp(t, "Metaspace")) {
        d->kind = DEC_METASPACE;
        if ((rc = one_char(cJSON_GetObjectItemCaseSensitive(j, "replacement"), "decoder Metaspace: \"replacement\"",
                           0x2581, &d->repl_cp, err)))
            return rc;
        d->prepend_scheme = PREPEND_ALWAYS;
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
        if (cJSON_IsString(ps)) {
            if (!strcmp(ps->valuestring, "never")) d->prepend_scheme = PREPEND_NEVER;
            else if (!strcmp(ps->valuestring, "first")) d->prepend_scheme = PREPEND_FIRST;
            else if (strcmp(ps->valuestring, "always"))
                return sl_errorf(err, SL_EUNSUPPORTED, "decoder Metaspace: unsupported prepend_scheme \"%s\"",
                                 ps->valuestring);
        } else if (!get_bool(j, "add_prefix_space", true)) d->prepend_scheme = PREPEND_NEVER;
    } else if (!strcmp(t, "Strip")) {
        d->kind = DEC_STRIP;
        if ((rc = one_char(cJSON_GetObjectItemCaseSensitive(j, "content"), "decoder Strip: \"content\"", ' ',
                           &d->repl_cp, err)))
            return rc;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "start"), *b = cJSON_GetObjectItemCaseSensitive(j, "stop");
        if ((a && (!cJSON_IsNumber(a) || a->valuedouble < 0 || a->valuedouble > 1e6)) ||
            (b && (!cJSON_IsNumber(b) || b->valuedouble < 0 || b->valuedouble > 1e6)))
            return sl_errorf(err, SL_EINVAL, "decoder Strip: \"start\"/\"stop\" must be small non-negative integers");
        d->start = a ? (size_t)a->valuedouble : 0;
        d->stop = b ? (size_t)b->valuedouble : 0;
    } else if (!strcmp(t, "Replace")) {
        d->kind = DEC_REPLACE;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (!cJSON_IsString(c)) return sl_errorf(err, SL_EINVAL, "decoder Replace: \"content\" must be a string");
        if (!(d->content = dup_s(c->valuestring, &d->content_n))) return sl_errorf(err, SL_ENOMEM, "out of memory");
        if ((rc = tok_pattern_from_json(&d->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), "decoder Replace",
                                        err)))
            return rc;
    } else if (!strcmp(t, "BPEDecoder")) {
        d->kind = DEC_BPE;
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "suffix");
        if (!(d->suffix = dup_s(cJSON_IsString(s) ? s->valuestring : "</w>", &d->suffix_n)))
            return sl_errorf(err, SL_ENOMEM, "out of memory");
    } else if (!strcmp(t, "Sequence")) {
        d->kind = DEC_SEQ;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "decoders");
        if (!cJSON_IsArray(a)) return sl_errorf(err, SL_EINVAL, "decoder Sequence: \"decoders\" must be an array");
        int cnt = cJSON_GetArraySize(a);
        if (cnt > 0 && !(d->items = calloc((size_t)cnt, sizeof *d->items)))
            return sl_errorf(err, SL_ENOMEM, "out of memory");
        const cJSON *it;
        cJSON_ArrayForEach(it, a) {
            if ((rc = tok_dec_from_json(&d->items[d->n_items++], it, err))) return rc;
        }
    } else {
        return sl_errorf(err, SL_EUNSUPPORTED, "unsupported decoder \"%s\"", t);
    }
    return 0;
}

void tok_dec_free(tok_dec *d) {
    for (size_t i = 0; i < d->n_items; i++) tok_dec_free(&d->items[i]);
    free(d->items);
    free(d->content);
    free(d->suffix);
    tok_pattern_free(&d->pat);
    memset(d, 0, sizeof *d);
}

/* ---- token lists ---- */
typedef struct strlist {
    tok_buf data;
    size_t *off, *len;
    size_t n, cap;
} strlist;

static int sl_push(strlist *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *o = realloc(l->off, cap * sizeof *o);
        if (!o) return SL_ENOMEM;
        l->off = o;
        size_t *g = realloc(l->len, cap * sizeof *g);
        if (!g) return SL_ENOMEM;
        l->len = g;
        l->cap = cap;
    }
    l->off[l->n] = l->data.n;
    l->len[l->n] = n;
    l->n++;
    return tok_buf_put(&l->data, s, n);
}
/* Start a new (empty) token; append to it with tok_buf_put(&l->data, ...) then sl_end(). */
static int sl_begin(strlist *l) { return sl_push(l, "", 0); }
static void sl_end(strlist *l) { l->len[l->n - 1] = l->data.n - l->off[l->n - 1]; }
static void sl_clear(strlist *l) {
    l->n = 0;
    l->data.n = 0;
}
static void sl_free(strlist *l) {
    tok_buf_free(&l->data);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}
#define TOK(l, i) ((l)->data.p + (l)->off[i])

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int flush_bytes(strlist *out, tok_buf *bytes) {
    if (!bytes->n) return 0;
    int rc;
    if (tok_utf8_valid(bytes->p, bytes->n)) rc = sl_push(out, bytes->p, bytes->n);
    else {
        rc = 0;
        for (size_t k = 0; k < bytes->n && !rc; k++) rc = sl_push(out, "\xEF\xBF\xBD", 3);
    }
    bytes->n = 0;
    return rc;
}

/* in -> out (out cleared); returns 0 or SL_ENOMEM */
static int dec_step(const tok_dec *d, const strlist *in, strlist *out, tok_buf *scratch) {
    sl_clear(out);
    int rc = 0;
    switch (d->kind) {
    case DEC_BYTELEVEL: {
        tok_buf raw = {0};
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = TOK(in, i);
            size_t n = in->len[i], k = 0, mark = raw.n;
            bool ok = true;
            while (k < n) {
                int32_t cp;
                k += (size_t)tok_utf8_dec(s + k, n - k, &cp);
                int b = tok_cp_to_byte(cp);
                if (b < 0) {
                    ok = false;
                    break;
                }
                char c = (char)b;
                if ((rc = tok_buf_put(&raw, &c, 1))) break;
            }
            if (!ok) {
                raw.n = mark;
                rc = tok_buf_put(&raw, s, n);
            }
        }
        if (!rc) rc = tok_utf8_lossy(raw.p ? raw.p : "", raw.n, scratch);
        if (!rc) rc = sl_push(out, scratch->p, scratch->n);
        tok_buf_free(&raw);
        return rc;
    }
    case DEC_BYTEFALLBACK: {
        scratch->n = 0;
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = TOK(in, i);
            size_t n = in->len[i];
            int hi, lo;
            if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && (hi = hexval(s[3])) >= 0 && (lo = hexval(s[4])) >= 0) {
                char c = (char)(hi * 16 + lo);
                rc = tok_buf_put(scratch, &c, 1);
                continue;
            }
            if ((rc = flush_bytes(out, scratch))) break;
            rc = sl_push(out, s, n);
        }
        if (!rc) rc = flush_bytes(out, scratch);
        return rc;
    }
    case DEC_FUSE:
        if ((rc = sl_begin(out))) return rc;
        for (size_t i = 0; i < in->n && !rc; i++) rc = tok_buf_put(&out->data, TOK(in, i), in->len[i]);
        sl_end(out);
        return rc;
    case DEC_STRIP:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = TOK(in, i);
            size_t n = in->len[i], a = 0, b = n;
            for (size_t k = 0; k < d->start && a < n; k++) {
                int32_t cp;
                int l = tok_utf8_dec(s + a, n - a, &cp);
                if (cp != d->repl_cp) break;
                a += (size_t)l;
            }
            for (size_t k = 0; k < d->stop && b > a; k++) {
                size_t st = b - 1;
                while (st > a && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
                int32_t cp;
                tok_utf8_dec(s + st, b - st, &cp);
                if (cp != d->repl_cp) break;
                b = st;
            }
            rc = sl_push(out, s + a, b - a);
        }
        return rc;
    case DEC_REPLACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = TOK(in, i);
            size_t n = in->len[i], prev = 0, ms, me;
            tok_match_iter it;
            tok_match_iter_init(&it, &d->pat, s, n);
            if ((rc = sl_begin(out))) break;
            while (!rc && tok_match_next(&it, &ms, &me)) {
                rc = tok_buf_put(&out->data, s + prev, ms - prev);
                if (!rc) rc = tok_buf_put(&out->data, d->content, d->content_n);
                prev = me;
            }
            if (!rc) rc = tok_buf_put(&out->data, s + prev, n - prev);
            sl_end(out);
        }
        return rc;
    case DEC_METASPACE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = TOK(in, i);
            size_t n = in->len[i], k = 0;
            if ((rc = sl_begin(out))) break;
            while (k < n && !rc) {
                int32_t cp;
                int l = tok_utf8_dec(s + k, n - k, &cp);
                if (cp == d->repl_cp) {
                    if (!(i == 0 && d->prepend_scheme != PREPEND_NEVER)) rc = tok_buf_putc(&out->data, ' ');
                } else rc = tok_buf_put(&out->data, s + k, (size_t)l);
                k += (size_t)l;
            }
            sl_end(out);
        }
        return rc;
    case DEC_BPE:
        for (size_t i = 0; i < in->n && !rc; i++) {
            const char *s = TOK(in, i);
            size_t n = in->len[i], prev = 0, ms, me;
            tok_pattern lit = {0};
            lit.lit = d->suffix;
            lit.lit_n = d->suffix_n;
            if ((rc = sl_begin(out))) break;
            if (d->suffix_n) {
                tok_match_iter it;
                tok_match_iter_init(&it, &lit, s, n);
                while (!rc && tok_match_next(&it, &ms, &me)) {
                    rc = tok_buf_put(&out->data, s + prev, ms - prev);
                    if (!rc && i + 1 != in->n) rc = tok_buf_putc(&out->data, ' ');
                    prev = me;
                }
            }
            if (!rc) rc = tok_buf_put(&out->data, s + prev, n - prev);
            sl_end(out);
        }
        return rc;
    default: return SL_EINVAL;
    }
}

static int dec_chain(const tok_dec *d, strlist **cur, strlist **other, tok_buf *scratch) {
    if (d->kind == DEC_SEQ) {
        for (size_t i = 0; i < d->n_items; i++) {
            int rc = dec_chain(&d->items[i], cur, other, scratch);
            if (rc) return rc;
        }
        return 0;
    }
    int rc = dec_step(d, *cur, *other, scratch);
    if (rc) return rc;
    strlist *t = *cur;
    *cur = *other;
    *other = t;
    return 0;
}

/* SILICA_TOK_GENERIC_DECODE=1 forces the generic chain (tests compare both paths). */
static bool getenv_generic(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("SILICA_TOK_GENERIC_DECODE");
        v = e && *e == '1';
    }
    return v == 1;
}

int tok_dec_run(const sl_tokenizer *t, const uint32_t *ids, size_t n, bool skip_special, tok_buf *out) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= t->n_ids || t->tok_len[ids[i]] == UINT32_MAX) return SL_EINVAL;
    int frc;
    if (!getenv_generic() && tok_fastdec_run(t, ids, n, skip_special, out, &frc)) return frc;
    strlist a = {0}, b = {0};
    tok_buf scratch = {0};
    int rc = 0;
    out->n = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        uint32_t id = ids[i];
        if (skip_special && t->tok_special[id]) continue;
        rc = sl_push(&a, tok_str(t, id), t->tok_len[id]);
    }
    strlist *cur = &a, *other = &b;
    if (!rc && t->has_dec) rc = dec_chain(&t->dec, &cur, &other, &scratch);
    for (size_t i = 0; i < cur->n && !rc; i++) {
        if (!t->has_dec && i > 0) rc = tok_buf_putc(out, ' ');
        if (!rc) rc = tok_buf_put(out, TOK(cur, i), cur->len[i]);
    }
    if (!rc) rc = tok_buf_reserve(out, 1);
    if (!rc) out->p[out->n] = 0;
    sl_free(&a);
    sl_free(&b);
    tok_buf_free(&scratch);
    return rc;
}

/* ---- public decode + stream ---- */
int sl_tok_decode(const sl_tokenizer *t, const uint32_t *ids, size_t n, unsigned flags, char **text, size_t *len,
                  sl_error *err) {
    *text = NULL;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= t->n_ids || t->tok_len[ids[i]] == UINT32_MAX)
            return sl_errorf(err, SL_EINVAL, "%s: token id %u is not in the vocabulary (%u ids)", t->name, ids[i],
                             t->n_ids);
    tok_buf out = {0};
    int rc = tok_dec_run(t, ids, n, (flags & SL_TOK_SKIP_SPECIAL) != 0, &out);
    if (rc) {
        tok_buf_free(&out);
        return sl_errorf(err, rc, "%s: decode failed: out of memory", t->name);
    }
    if (!out.p && tok_buf_put(&out, "", 0)) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    *text = out.p;
    if (len) *len = out.n;
    return 0;
}

struct sl_tok_stream {
    const sl_tokenizer *t;
    bool skip;
    sl_tok_ids ids;
    tok_buf prefix, cur, out;
    size_t prefix_index;
};

int sl_tok_stream_new(const sl_tokenizer *t, unsigned flags, sl_tok_stream **out, sl_error *err) {
    sl_tok_stream *s = calloc(1, sizeof *s);
    if (!s) return sl_errorf(err, SL_ENOMEM, "out of memory");
    s->t = t;
    s->skip = (flags & SL_TOK_SKIP_SPECIAL) != 0;
    *out = s;
    return 0;
}

int sl_tok_stream_step(sl_tok_stream *s, uint32_t id, const char **text, size_t *len, sl_error *err) {
    const sl_tokenizer *t = s->t;
    *text = "";
    *len = 0;
    if (id >= t->n_ids || t->tok_len[id] == UINT32_MAX)
        return sl_errorf(err, SL_EINVAL, "%s: token id %u is not in the vocabulary (%u ids)", t->name, id, t->n_ids);
    if (tok_ids_push(&s->ids, id)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    if (tok_dec_run(t, s->ids.ids, s->ids.n, s->skip, &s->cur)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    size_t pn = s->prefix.n;
    bool ends_bad = s->cur.n >= 3 && !memcmp(s->cur.p + s->cur.n - 3, "\xEF\xBF\xBD", 3);
    if (!(s->cur.n > pn && !ends_bad)) return 0;
    if (pn && memcmp(s->cur.p, s->prefix.p, pn) != 0)
        return sl_errorf(err, SL_EINVAL, "%s: stream decode: the decoded text no longer starts with its prefix",
                         t->name);
    s->out.n = 0;
    if (tok_buf_put(&s->out, s->cur.p + pn, s->cur.n - pn)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    size_t new_prefix_index = s->ids.n - s->prefix_index;
    memmove(s->ids.ids, s->ids.ids + s->prefix_index, (s->ids.n - s->prefix_index) * sizeof *s->ids.ids);
    s->ids.n -= s->prefix_index;
    if (tok_dec_run(t, s->ids.ids, s->ids.n, s->skip, &s->prefix)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    s->prefix_index = new_prefix_index;
    *text = s->out.p;
    *len = s->out.n;
    return 0;
}

void sl_tok_stream_free(sl_tok_stream *s) {
    if (!s) return;
    free(s->ids.ids);
    tok_buf_free(&s->prefix);
    tok_buf_free(&s->cur);
    tok_buf_free(&s->out);
    free(s);
}
