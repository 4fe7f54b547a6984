/*
 * tok_spm.c — SentencePiece tokenizer.model (protobuf ModelProto) -> the
 * tokenizer.json that transformers builds from it (LlamaTokenizerFast over a
 * directory with only tokenizer.model), which the JSON loader then loads.
 *
 * Wire format read here: varint (0), fixed64 (1), length-delimited (2) and
 * fixed32 (5) fields; groups (3/4) are rejected.  Fields used:
 *   ModelProto: 1 pieces {1 piece, 3 type}, 2 trainer_spec {3 model_type
 *   (default UNIGRAM)}; 3 normalizer_spec is only checked for well-formedness.
 * Only model_type BPE is supported (UNIGRAM/WORD/CHAR: one error line).
 * transformers 5 builds the same tokenizer whatever trainer_spec.byte_fallback,
 * normalizer_spec.add_dummy_prefix and remove_extra_whitespaces say (the
 * tests train models with each setting), so those fields are not read; nor
 * are scores (merge order comes from piece ids) or the unk/bos/eos ids
 * (the UNKNOWN/CONTROL piece types and tokenizer_config.json decide).
 *
 * Built tokenizer (as transformers 5 does for Llama): BPE with vocab =
 * pieces by id, merges derived from the vocab (every split of a piece into
 * two vocab pieces; ordered by the merged piece's id, then the code-point
 * lengths of left and right, then the left and right ids), byte_fallback,
 * fuse_unk, no unk_token; no normalizer; Metaspace pre-tokenizer
 * (prepend_scheme first, no split); decoders Replace(▁→' ') + ByteFallback
 * + Fuse + Strip(1 leading space); UNKNOWN/CONTROL pieces become special
 * added tokens and USER_DEFINED pieces non-special ones (normalized=false).
 * BOS/EOS come from tokenizer_config.json, as for tokenizer.json.
 *
 * Invariants: every read is bounds-checked against the message end; piece
 * strings must be valid UTF-8, non-empty and unique; sizes are capped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

#define SPM_MAX_PIECES (1u << 24)

typedef struct spm_rd {
    const uint8_t *p, *end;
} spm_rd;

static int rd_varint(spm_rd *r, uint64_t *v) {
    uint64_t x = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Next field: *tag, *wt; for wire type 2 *sub is the payload, for 0 *v the
 * value, for 5 *v the 32 bits.  Returns 1 at the end, 0 ok, -1 malformed. */
static int rd_field(spm_rd *r, uint32_t *tag, int *wt, uint64_t *v, spm_rd *sub) {
    if (r->p >= r->end) return 1;
    uint64_t k;
    if (rd_varint(r, &k) || (k >> 3) == 0 || (k >> 3) > UINT32_MAX) return -1;
    *tag = (uint32_t)(k >> 3);
    *wt = (int)(k & 7);
    size_t left = (size_t)(r->end - r->p);
    switch (*wt) {
    case 0: return rd_varint(r, v);
    case 1:
        if (left < 8) return -1;
        r->p += 8;
        return 0;
    case 5:
        if (left < 4) return -1;
        *v = (uint64_t)r->p[0] | (uint64_t)r->p[1] << 8 | (uint64_t)r->p[2] << 16 | (uint64_t)r->p[3] << 24;
        r->p += 4;
        return 0;
    case 2:
        if (rd_varint(r, v) || *v > (uint64_t)(r->end - r->p)) return -1;
        sub->p = r->p;
        sub->end = r->p + *v;
        r->p += *v;
        return 0;
    default: return -1;
    }
}

typedef struct spm_model {
    tok_spm_vocab v;
    uint64_t model_type;
} spm_model;

int tok_spm_vocab_push(tok_spm_vocab *m, const char *s, size_t n, uint8_t type, float score, const char *name,
                       sl_error *err) {
    if (m->strs.n + n >= UINT32_MAX / 2 || tok_buf_put(&m->strs, s, n) || tok_buf_putc(&m->strs, 0))
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    if (m->n == m->cap) {
        if (m->n >= SPM_MAX_PIECES) return sl_errorf(err, SL_EINVAL, "%s: more than %u pieces", name, SPM_MAX_PIECES);
        uint32_t c = m->cap ? m->cap * 2 : 256;
        uint32_t *no = realloc(m->off, c * sizeof *no);
        if (no) m->off = no;
        uint32_t *nl = realloc(m->len, c * sizeof *nl);
        if (nl) m->len = nl;
        uint8_t *nt = realloc(m->type, c);
        if (nt) m->type = nt;
        float *ns = realloc(m->score, c * sizeof *ns);
        if (ns) m->score = ns;
        if (!no || !nl || !nt || !ns) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
        m->cap = c;
    }
    m->off[m->n] = (uint32_t)(m->strs.n - n - 1);
    m->len[m->n] = (uint32_t)n;
    m->score[m->n] = score;
    m->type[m->n++] = type;
    return 0;
}

void tok_spm_vocab_free(tok_spm_vocab *m) {
    free(m->off);
    free(m->len);
    free(m->type);
    free(m->score);
    tok_buf_free(&m->strs);
    memset(m, 0, sizeof *m);
}

static int parse_piece(spm_model *m, spm_rd r, const char *name, sl_error *err) {
    uint32_t tag;
    int wt, rc;
    uint64_t v;
    spm_rd sub = {0}, piece = {0};
    bool have = false;
    uint8_t type = 1;
    while ((rc = rd_field(&r, &tag, &wt, &v, &sub)) == 0) {
        if (tag == 1 && wt == 2) {
            size_t n = (size_t)(sub.end - sub.p);
            if (n == 0 || !tok_utf8_valid((const char *)sub.p, n) || memchr(sub.p, 0, n))
                return sl_errorf(err, SL_EINVAL, "%s: pieces[%u]: piece must be non-empty UTF-8 without NUL", name, m->v.n);
            piece = sub;
            have = true;
        } else if (tag == 3 && wt == 0) {
            if (v < 1 || v > 6) return sl_errorf(err, SL_EINVAL, "%s: pieces[%u]: type %llu is not 1..6", name, m->v.n, (unsigned long long)v);
            type = (uint8_t)v;
        }
    }
    if (rc < 0) return sl_errorf(err, SL_EINVAL, "%s: pieces[%u]: malformed protobuf", name, m->v.n);
    if (!have) return sl_errorf(err, SL_EINVAL, "%s: pieces[%u]: missing \"piece\"", name, m->v.n);
    /* scores are not read: merge order comes from piece ids */
    return tok_spm_vocab_push(&m->v, (const char *)piece.p, (size_t)(piece.end - piece.p), type, 0.0f, name, err);
}

static int parse_model(spm_model *m, const char *buf, size_t n, const char *name, sl_error *err) {
    spm_rd r = {(const uint8_t *)buf, (const uint8_t *)buf + n}, sub = {0};
    uint32_t tag;
    int wt, rc;
    uint64_t v;
    m->model_type = 1; /* proto default: UNIGRAM */
    while ((rc = rd_field(&r, &tag, &wt, &v, &sub)) == 0) {
        if (tag == 1 && wt == 2) {
            if ((rc = parse_piece(m, sub, name, err))) return rc;
        } else if (tag == 2 && wt == 2) {
            spm_rd t = sub, s2;
            while ((rc = rd_field(&t, &tag, &wt, &v, &s2)) == 0) {
                if (tag == 3 && wt == 0) m->model_type = v;
            }
            if (rc < 0) return sl_errorf(err, SL_EINVAL, "%s: trainer_spec: malformed protobuf", name);
        } else if (tag == 3 && wt == 2) {
            spm_rd t = sub, s2;
            while ((rc = rd_field(&t, &tag, &wt, &v, &s2)) == 0) {}
            if (rc < 0) return sl_errorf(err, SL_EINVAL, "%s: normalizer_spec: malformed protobuf", name);
        }
    }
    if (rc < 0) return sl_errorf(err, SL_EINVAL, "%s: not a SentencePiece model (malformed protobuf)", name);
    if (m->v.n == 0) return sl_errorf(err, SL_EINVAL, "%s: not a SentencePiece model (no pieces)", name);
    if (m->model_type != 2) {
        static const char *names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: unsupported SentencePiece model_type %s (only BPE)", name,
                         m->model_type <= 4 ? names[m->model_type] : "?");
    }
    return 0;
}

/* ---- JSON output ---- */
int tok_json_put_str(tok_buf *o, const char *s, size_t n) {
    int rc = tok_buf_putc(o, '"');
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = tok_buf_put(o, e, 2);
        } else if (c < 0x20) {
            static const char hx[] = "0123456789abcdef";
            char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
            rc = tok_buf_put(o, e, 6);
        } else {
            rc = tok_buf_putc(o, (char)c);
        }
    }
    return rc ? rc : tok_buf_putc(o, '"');
}

static int put_s(tok_buf *o, const char *s) { return tok_buf_put(o, s, strlen(s)); }

typedef struct spm_merge {
    float score;              /* of the merged piece: higher merges first */
    uint32_t m, ll, lr, l, r; /* merged id, code-point lengths, left/right ids */
} spm_merge;

static int merge_cmp(const void *pa, const void *pb) {
    const spm_merge *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    const uint32_t ka[5] = {a->m, a->ll, a->lr, a->l, a->r}, kb[5] = {b->m, b->ll, b->lr, b->l, b->r};
    for (int i = 0; i < 5; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

static size_t cp_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Merges derived from the vocab, appended to o as JSON pairs. */
static int put_merges(const tok_spm_vocab *m, const tok_strmap *map, tok_buf *o, const char *name, sl_error *err) {
    spm_merge *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (uint32_t id = 0; id < m->n && !rc; id++) {
        const char *s = m->strs.p + m->off[id];
        size_t len = m->len[id], total = cp_count(s, len), lcp = 0;
        for (size_t i = 1; i < len; i++) {
            if (((unsigned char)s[i] & 0xC0) == 0x80) continue;
            lcp++;
            int64_t l = tok_strmap_get(map, s, i), r = tok_strmap_get(map, s + i, len - i);
            if (l < 0 || r < 0) continue;
            if (n == cap) {
                size_t c = cap ? cap * 2 : 1024;
                spm_merge *nv = c < (SIZE_MAX / sizeof *nv) ? realloc(v, c * sizeof *nv) : NULL;
                if (!nv) {
                    rc = SL_ENOMEM;
                    break;
                }
                v = nv;
                cap = c;
            }
            v[n++] = (spm_merge){m->score[id], id, (uint32_t)lcp, (uint32_t)(total - lcp), (uint32_t)l, (uint32_t)r};
        }
    }
    if (n) qsort(v, n, sizeof *v, merge_cmp);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = put_s(o, i ? ",[" : "[");
        if (!rc) rc = tok_json_put_str(o, m->strs.p + m->off[v[i].l], m->len[v[i].l]);
        if (!rc) rc = tok_buf_putc(o, ',');
        if (!rc) rc = tok_json_put_str(o, m->strs.p + m->off[v[i].r], m->len[v[i].r]);
        if (!rc) rc = tok_buf_putc(o, ']');
    }
    free(v);
    return rc ? sl_errorf(err, SL_ENOMEM, "%s: out of memory", name) : 0;
}

int tok_spm_vocab_json(const tok_spm_vocab *m, const tok_spm_opts *opt, tok_buf *o, const char *name, sl_error *err) {
    tok_strmap map = {0};
    uint32_t *ids = malloc((size_t)m->n * sizeof *ids);
    if (!ids) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    for (uint32_t i = 0; i < m->n; i++) ids[i] = i;
    int rc = tok_strmap_build(&map, &m->strs, m->off, m->len, ids, m->n);
    free(ids);
    if (rc) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    for (uint32_t i = 0; i < m->n; i++)
        if (tok_strmap_get(&map, m->strs.p + m->off[i], m->len[i]) != (int64_t)i) {
            tok_strmap_free(&map);
            return sl_errorf(err, SL_EINVAL, "%s: pieces[%u]: duplicate piece \"%.60s\"", name, i, m->strs.p + m->off[i]);
        }
    rc = put_s(o, "{\"added_tokens\":[");
    bool first = true;
    for (uint32_t i = 0; !rc && i < m->n; i++) {
        uint8_t ty = m->type[i];
        if (ty != 2 && ty != 3 && ty != 4) continue;
        char head[48];
        snprintf(head, sizeof head, "%s{\"id\":%u,\"content\":", first ? "" : ",", i);
        first = false;
        rc = put_s(o, head);
        if (!rc) rc = tok_json_put_str(o, m->strs.p + m->off[i], m->len[i]);
        if (!rc) rc = put_s(o, ty == 4 ? ",\"special\":false,\"normalized\":false" : ",\"special\":true,\"normalized\":false");
        if (!rc) rc = put_s(o, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false}");
    }
    if (!rc && !opt->legacy)   /* tokenizer.model: as transformers 5 builds it */
        rc = put_s(o, "],\"normalizer\":null,"
                      "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\","
                      "\"split\":false},");
    else if (!rc)   /* the legacy normalizer: ▁ before every segment (add_prefix) and for every space */
        rc = put_s(o, opt->add_prefix ? "],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
                                        "\"prepend\":\"\\u2581\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
                                        "\"content\":\"\\u2581\"}]},\"pre_tokenizer\":null,"
                                      : "],\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
                                        "\"content\":\"\\u2581\"},\"pre_tokenizer\":null,");
    if (!rc)
        rc = put_s(o, "\"post_processor\":null,"
                      "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
                      "\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}");
    if (!rc && (!opt->legacy || opt->add_prefix))
        rc = put_s(o, ",{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}");
    if (!rc)
        rc = put_s(o, "]},\"model\":{\"type\":\"BPE\",\"unk_token\":null,\"fuse_unk\":true,\"byte_fallback\":true,"
                      "\"ignore_merges\":false,\"vocab\":{");
    for (uint32_t i = 0; !rc && i < m->n; i++) {
        char num[16];
        snprintf(num, sizeof num, ":%u", i);
        if (i) rc = tok_buf_putc(o, ',');
        if (!rc) rc = tok_json_put_str(o, m->strs.p + m->off[i], m->len[i]);
        if (!rc) rc = put_s(o, num);
    }
    if (!rc) rc = put_s(o, "},\"merges\":[");
    if (rc) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    if (!rc) rc = put_merges(m, &map, o, name, err);
    if (!rc && put_s(o, "]}}")) rc = sl_errorf(err, SL_ENOMEM, "%s: out of memory", name);
    tok_strmap_free(&map);
    return rc;
}

int tok_spm_to_json(const char *buf, size_t n, const char *name, char **json, size_t *json_n, sl_error *err) {
    spm_model m = {0};
    tok_buf o = {0};
    *json = NULL;
    *json_n = 0;
    int rc = parse_model(&m, buf, n, name, err);
    if (!rc) rc = tok_spm_vocab_json(&m.v, &(tok_spm_opts){0}, &o, name, err);
    tok_spm_vocab_free(&m.v);
    if (rc) {
        tok_buf_free(&o);
        return rc;
    }
    *json = o.p;
    *json_n = o.n;
    return 0;
}
