/*
 * tok_pretok.c — tokenizer.json pre-tokenizers: Split (literal or regex,
 * every behaviour, invert), ByteLevel (add_prefix_space, use_regex with the
 * GPT-2 regex, byte->unicode mapping), Metaspace (replacement,
 * prepend_scheme always/first/never, split), Digits, Punctuation,
 * Whitespace, WhitespaceSplit and Sequence — each as HF's
 * PreTokenizedString::split applies it: only to pieces that are not yet
 * tokens, dropping empty pieces.
 *
 * Invariants: new text (byte mapping, prefixes) goes to the arena; pieces
 * only ever point into the input text or the arena.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

static const char k_gpt2_re[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/* HF's Whitespace uses the Rust regex crate, whose \w also has Join_Control */
static const char k_ws_re[] = "[\\w\\x{200C}\\x{200D}]+|[^\\w\\s\\x{200C}\\x{200D}]+";

static bool get_bool(const cJSON *j, const char *k, bool def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

int tok_pretok_from_json(tok_pretok *p, const cJSON *j, sl_error *err) {
    memset(p, 0, sizeof *p);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(ty)) return sl_errorf(err, SL_EINVAL, "pre_tokenizer: missing \"type\"");
    const char *t = ty->valuestring;
    int rc;
    if (!strcmp(t, "Split")) {
        p->kind = PRE_SPLIT;
        if ((rc = tok_pattern_from_json(&p->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), "pre_tokenizer Split",
                                        err)))
            return rc;
        if ((rc = tok_split_behavior_from_json(cJSON_GetObjectItemCaseSensitive(j, "behavior"), "pre_tokenizer Split",
                                               &p->behavior, err)))
            return rc;
        p->invert = get_bool(j, "invert", false);
    } else if (!strcmp(t, "ByteLevel")) {
        p->kind = PRE_BYTELEVEL;
        p->add_prefix_space = get_bool(j, "add_prefix_space", true);
        p->use_regex = get_bool(j, "use_regex", true);
        if (p->use_regex &&
            (rc = tok_pattern_init_regex(&p->pat, k_gpt2_re, sizeof k_gpt2_re - 1, "pre_tokenizer ByteLevel", err)))
            return rc;
    } else if (!strcmp(t, "Metaspace")) {
        p->kind = PRE_METASPACE;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "replacement");
        const char *rs = cJSON_IsString(r) ? r->valuestring : "\xE2\x96\x81";
        size_t rl = strlen(rs);
        int32_t cp;
        if (rl == 0 || (size_t)tok_utf8_dec(rs, rl, &cp) != rl || cp < 0)
            return sl_errorf(err, SL_EINVAL, "pre_tokenizer Metaspace: \"replacement\" must be one character");
        p->repl_cp = cp;
        p->repl_n = sl_utf8_encode((uint32_t)cp, p->repl);
        p->prepend_scheme = PREPEND_ALWAYS;
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
        if (cJSON_IsString(ps)) {
            if (!strcmp(ps->valuestring, "always")) p->prepend_scheme = PREPEND_ALWAYS;
            else if (!strcmp(ps->valuestring, "first")) p->prepend_scheme = PREPEND_FIRST;
            else if (!strcmp(ps->valuestring, "never")) p->prepend_scheme = PREPEND_NEVER;
            else
                return sl_errorf(err, SL_EUNSUPPORTED, "pre_tokenizer Metaspace: unsupported prepend_scheme \"%s\"",
                                 ps->valuestring);
        } else if (!get_bool(j, "add_prefix_space", true)) {
            p->prepend_scheme = PREPEND_NEVER;
        }
        p->split = get_bool(j, "split", true);
    } else if (!strcmp(t, "Digits")) {
        p->kind = PRE_DIGITS;
        p->individual_digits = get_bool(j, "individual_digits", false);
    } else if (!strcmp(t, "Punctuation")) {
        p->kind = PRE_PUNCT;
        p->behavior = TOK_SPLIT_ISOLATED;
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "behavior");
        if (b && (rc = tok_split_behavior_from_json(b, "pre_tokenizer Punctuation", &p->behavior, err))) return rc;
    } else if (!strcmp(t, "Whitespace")) {
        p->kind = PRE_WHITESPACE;
        if ((rc = tok_pattern_init_regex(&p->pat, k_ws_re, sizeof k_ws_re - 1, "pre_tokenizer Whitespace", err)))
            return rc;
    } else if (!strcmp(t, "WhitespaceSplit")) {
        p->kind = PRE_WSSPLIT;
    } else if (!strcmp(t, "Sequence")) {
        p->kind = PRE_SEQ;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(a))
            return sl_errorf(err, SL_EINVAL, "pre_tokenizer Sequence: \"pretokenizers\" must be an array");
        int cnt = cJSON_GetArraySize(a);
        if (cnt > 0 && !(p->items = calloc((size_t)cnt, sizeof *p->items)))
            return sl_errorf(err, SL_ENOMEM, "out of memory");
        const cJSON *it;
        cJSON_ArrayForEach(it, a) {
            if ((rc = tok_pretok_from_json(&p->items[p->n_items++], it, err))) return rc;
        }
    } else {
        return sl_errorf(err, SL_EUNSUPPORTED, "unsupported pre_tokenizer \"%s\"", t);
    }
    return 0;
}

void tok_pretok_free(tok_pretok *p) {
    for (size_t i = 0; i < p->n_items; i++) tok_pretok_free(&p->items[i]);
    free(p->items);
    tok_pattern_free(&p->pat);
    memset(p, 0, sizeof *p);
}

/* ---- segment vector ---- */
typedef struct segv {
    tok_seg *v;
    size_t n, cap;
} segv;
static int seg_push(segv *s, size_t a, size_t b, bool m) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        tok_seg *v = realloc(s->v, cap * sizeof *v);
        if (!v) return SL_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (tok_seg){a, b, m};
    return 0;
}

/* Pattern::find_matches for a regex / literal */
static int find_pattern(const tok_pattern *pat, const char *s, size_t n, segv *sv) {
    sv->n = 0;
    if (n == 0) return seg_push(sv, 0, 0, false);
    tok_match_iter it;
    tok_match_iter_init(&it, pat, s, n);
    size_t prev = 0, ms, me;
    while (tok_match_next(&it, &ms, &me)) {
        if (prev != ms && seg_push(sv, prev, ms, false)) return SL_ENOMEM;
        if (seg_push(sv, ms, me, true)) return SL_ENOMEM;
        prev = me;
    }
    if (prev != n && seg_push(sv, prev, n, false)) return SL_ENOMEM;
    return 0;
}

/* Pattern::find_matches for a char predicate: every matching char alone */
static int find_chars(bool (*pred)(int32_t), const char *s, size_t n, segv *sv) {
    sv->n = 0;
    if (n == 0) return seg_push(sv, 0, 0, false);
    size_t last = 0, i = 0;
    while (i < n) {
        int32_t cp;
        int l = tok_utf8_dec(s + i, n - i, &cp);
        if (pred(cp)) {
            if (last < i && seg_push(sv, last, i, false)) return SL_ENOMEM;
            if (seg_push(sv, i, i + (size_t)l, true)) return SL_ENOMEM;
            last = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (n > last && seg_push(sv, last, n, false)) return SL_ENOMEM;
    return 0;
}

static int byte_map(const tok_piece *pc, tok_arena *arena, tok_pieces *out) {
    char *d = tok_arena_alloc(arena, pc->n * 2 + 1);
    if (!d) return SL_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < pc->n; i++) {
        unsigned cp = tok_byte_to_cp[(unsigned char)pc->s[i]];
        if (cp < 0x80) d[k++] = (char)cp;
        else {
            d[k++] = (char)(0xC0 | (cp >> 6));
            d[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return tok_pieces_push(out, d, k, -1, pc->at_origin);
}

static int apply_one(const tok_pretok *p, const tok_piece *pc, tok_pieces *out, tok_arena *arena, segv *sv) {
    int rc = 0;
    switch (p->kind) {
    case PRE_SPLIT:
    case PRE_WHITESPACE:
        if ((rc = find_pattern(&p->pat, pc->s, pc->n, sv))) return rc;
        if (p->kind == PRE_WHITESPACE || p->invert)
            for (size_t i = 0; i < sv->n; i++) sv->v[i].m = !sv->v[i].m;
        return tok_split_apply(sv->v, sv->n, p->kind == PRE_WHITESPACE ? TOK_SPLIT_REMOVED : p->behavior, pc->s,
                               pc->at_origin, out);
    case PRE_DIGITS:
        if ((rc = find_chars(tok_is_numeric, pc->s, pc->n, sv))) return rc;
        return tok_split_apply(sv->v, sv->n, p->individual_digits ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS, pc->s,
                               pc->at_origin, out);
    case PRE_PUNCT:
        if ((rc = find_chars(tok_is_punct, pc->s, pc->n, sv))) return rc;
        return tok_split_apply(sv->v, sv->n, p->behavior, pc->s, pc->at_origin, out);
    case PRE_WSSPLIT:
        if ((rc = find_chars(tok_is_whitespace, pc->s, pc->n, sv))) return rc;
        return tok_split_apply(sv->v, sv->n, TOK_SPLIT_REMOVED, pc->s, pc->at_origin, out);
    case PRE_BYTELEVEL: {
        tok_piece cur = *pc;
        if (p->add_prefix_space && (cur.n == 0 || cur.s[0] != ' ')) {
            char *d = tok_arena_alloc(arena, cur.n + 1);
            if (!d) return SL_ENOMEM;
            d[0] = ' ';
            memcpy(d + 1, cur.s, cur.n);
            cur.s = d;
            cur.n++;
        }
        if (!p->use_regex) return cur.n ? byte_map(&cur, arena, out) : 0;
        if ((rc = find_pattern(&p->pat, cur.s, cur.n, sv))) return rc;
        tok_pieces tmp = {0};
        rc = tok_split_apply(sv->v, sv->n, TOK_SPLIT_ISOLATED, cur.s, cur.at_origin, &tmp);
        for (size_t i = 0; !rc && i < tmp.n; i++) rc = byte_map(&tmp.v[i], arena, out);
        free(tmp.v);
        return rc;
    }
    case PRE_METASPACE: {
        /* replace ' ' by the replacement, maybe prepend it */
        size_t spaces = 0;
        for (size_t i = 0; i < pc->n; i++) spaces += pc->s[i] == ' ';
        size_t cap = pc->n + (spaces + 1) * (size_t)p->repl_n;
        char *d = tok_arena_alloc(arena, cap);
        if (!d) return SL_ENOMEM;
        size_t k = 0;
        bool starts = pc->n > 0 && (pc->s[0] == ' ' || ((size_t)p->repl_n <= pc->n && !memcmp(pc->s, p->repl, (size_t)p->repl_n)));
        bool pre = (p->prepend_scheme == PREPEND_ALWAYS && !starts) ||
                   (p->prepend_scheme == PREPEND_FIRST && !starts && pc->at_origin);
        if (pre) {
            memcpy(d, p->repl, (size_t)p->repl_n);
            k += (size_t)p->repl_n;
        }
        for (size_t i = 0; i < pc->n; i++) {
            if (pc->s[i] == ' ') {
                memcpy(d + k, p->repl, (size_t)p->repl_n);
                k += (size_t)p->repl_n;
            } else d[k++] = pc->s[i];
        }
        if (!p->split) return k ? tok_pieces_push(out, d, k, -1, pc->at_origin) : 0;
        tok_pattern lit = {0};
        lit.lit = (char *)p->repl;
        lit.lit_n = (size_t)p->repl_n;
        if ((rc = find_pattern(&lit, d, k, sv))) return rc;
        return tok_split_apply(sv->v, sv->n, TOK_SPLIT_MERGED_NEXT, d, pc->at_origin, out);
    }
    default: return SL_EINVAL;
    }
}

int tok_pretok_apply(const tok_pretok *p, tok_pieces *pieces, tok_pieces *swap, tok_arena *arena) {
    if (p->kind == PRE_SEQ) {
        for (size_t i = 0; i < p->n_items; i++) {
            int rc = tok_pretok_apply(&p->items[i], pieces, swap, arena);
            if (rc) return rc;
        }
        return 0;
    }
    segv sv = {0};
    swap->n = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < pieces->n; i++) {
        const tok_piece *pc = &pieces->v[i];
        if (pc->added_id >= 0) rc = tok_pieces_push(swap, pc->s, pc->n, pc->added_id, pc->at_origin);
        else rc = apply_one(p, pc, swap, arena, &sv);
    }
    free(sv.v);
    if (rc) return rc;
    tok_pieces t = *pieces;
    *pieces = *swap;
    *swap = t;
    return 0;
}
