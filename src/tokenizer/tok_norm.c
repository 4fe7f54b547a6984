/*
 * tok_norm.c — tokenizer.json normalizers: NFC, NFD, NFKC, NFKD (utf8proc),
 * Lowercase (Rust char::to_lowercase), Strip (Rust whitespace), Prepend
 * (only on non-empty text, as HF), Replace (literal or regex, all
 * non-overlapping matches) and Sequence.
 *
 * Invariants: input and output are valid UTF-8; `out` is reset on entry;
 * any other normalizer type is a load error naming it.
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tokenizer/tok_impl.h"

static int dup_str(const cJSON *j, char **out, size_t *n) {
    size_t l = strlen(j->valuestring);
    *out = malloc(l + 1);
    if (!*out) return SL_ENOMEM;
    memcpy(*out, j->valuestring, l + 1);
    *n = l;
    return 0;
}

static bool get_bool(const cJSON *j, const char *k, bool def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

int tok_norm_from_json(tok_norm *n, const cJSON *j, sl_error *err) {
    memset(n, 0, sizeof *n);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(ty)) return sl_errorf(err, SL_EINVAL, "normalizer: missing \"type\"");
    const char *t = ty->valuestring;
    if (!strcmp(t, "NFC")) n->kind = NORM_NFC;
    else if (!strcmp(t, "NFD")) n->kind = NORM_NFD;
    else if (!strcmp(t, "NFKC")) n->kind = NORM_NFKC;
    else if (!strcmp(t, "NFKD")) n->kind = NORM_NFKD;
    else if (!strcmp(t, "Lowercase")) n->kind = NORM_LOWER;
    else if (!strcmp(t, "Strip")) {
        n->kind = NORM_STRIP;
        n->left = get_bool(j, "strip_left", true);
        n->right = get_bool(j, "strip_right", true);
    } else if (!strcmp(t, "Prepend")) {
        n->kind = NORM_PREPEND;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prepend");
        if (!cJSON_IsString(p)) return sl_errorf(err, SL_EINVAL, "normalizer Prepend: \"prepend\" must be a string");
        if (dup_str(p, &n->content, &n->content_n)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    } else if (!strcmp(t, "Replace")) {
        n->kind = NORM_REPLACE;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (!cJSON_IsString(c)) return sl_errorf(err, SL_EINVAL, "normalizer Replace: \"content\" must be a string");
        if (dup_str(c, &n->content, &n->content_n)) return sl_errorf(err, SL_ENOMEM, "out of memory");
        int rc = tok_pattern_from_json(&n->pat, cJSON_GetObjectItemCaseSensitive(j, "pattern"), "normalizer Replace",
                                       err);
        if (rc) return rc;
    } else if (!strcmp(t, "Sequence")) {
        n->kind = NORM_SEQ;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(a)) return sl_errorf(err, SL_EINVAL, "normalizer Sequence: \"normalizers\" must be an array");
        int cnt = cJSON_GetArraySize(a);
        if (cnt > 0) {
            n->items = calloc((size_t)cnt, sizeof *n->items);
            if (!n->items) return sl_errorf(err, SL_ENOMEM, "out of memory");
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, a) {
            int rc = tok_norm_from_json(&n->items[n->n_items++], it, err);
            if (rc) return rc;
        }
    } else {
        return sl_errorf(err, SL_EUNSUPPORTED, "unsupported normalizer \"%s\"", t);
    }
    return 0;
}

void tok_norm_free(tok_norm *n) {
    for (size_t i = 0; i < n->n_items; i++) tok_norm_free(&n->items[i]);
    free(n->items);
    free(n->content);
    tok_pattern_free(&n->pat);
    memset(n, 0, sizeof *n);
}

static bool all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

static int unicode_form(int kind, const char *s, size_t n, tok_buf *out) {
    out->n = 0;
    if (all_ascii(s, n)) return tok_buf_put(out, s, n);
    int opt = UTF8PROC_STABLE;
    switch (kind) {
    case NORM_NFC: opt |= UTF8PROC_COMPOSE; break;
    case NORM_NFD: opt |= UTF8PROC_DECOMPOSE; break;
    case NORM_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opt);
    if (r < 0) {
        free(dst);
        return tok_buf_put(out, s, n); /* cannot happen on valid UTF-8 */
    }
    int rc = tok_buf_put(out, dst, (size_t)r);
    free(dst);
    return rc;
}

static int lowercase(const char *s, size_t n, tok_buf *out) {
    out->n = 0;
    if (tok_buf_reserve(out, n + 1)) return SL_ENOMEM;
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        int l = tok_utf8_dec(s + i, n - i, &cp);
        i += (size_t)l;
        if (cp == 0x130) { /* full mapping: i + combining dot above */
            if (tok_buf_put(out, "i\xCC\x87", 3)) return SL_ENOMEM;
            continue;
        }
        int32_t lc = cp < 0 ? 0xFFFD : utf8proc_tolower(cp);
        char b[4];
        if (tok_buf_put(out, b, (size_t)sl_utf8_encode((uint32_t)lc, b))) return SL_ENOMEM;
    }
    return 0;
}

static int strip(const tok_norm *nm, const char *s, size_t n, tok_buf *out) {
    size_t a = 0, b = n;
    if (nm->left)
        while (a < b) {
            int32_t cp;
            int l = tok_utf8_dec(s + a, b - a, &cp);
            if (!tok_is_whitespace(cp)) break;
            a += (size_t)l;
        }
    if (nm->right)
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
            int32_t cp;
            tok_utf8_dec(s + st, b - st, &cp);
            if (!tok_is_whitespace(cp)) break;
            b = st;
        }
    out->n = 0;
    return tok_buf_put(out, s + a, b - a);
}

static int replace(const tok_norm *nm, const char *s, size_t n, tok_buf *out) {
    out->n = 0;
    if (tok_buf_reserve(out, n + 1)) return SL_ENOMEM;
    tok_match_iter it;
    tok_match_iter_init(&it, &nm->pat, s, n);
    size_t prev = 0, ms, me;
    while (tok_match_next(&it, &ms, &me)) {
        if (tok_buf_put(out, s + prev, ms - prev) || tok_buf_put(out, nm->content, nm->content_n)) return SL_ENOMEM;
        prev = me;
    }
    return tok_buf_put(out, s + prev, n - prev);
}

static int apply_one(const tok_norm *nm, const char *s, size_t n, tok_buf *out, tok_buf *tmp) {
    switch (nm->kind) {
    case NORM_NFC:
    case NORM_NFD:
    case NORM_NFKC:
    case NORM_NFKD: return unicode_form(nm->kind, s, n, out);
    case NORM_LOWER: return lowercase(s, n, out);
    case NORM_STRIP: return strip(nm, s, n, out);
    case NORM_PREPEND:
        out->n = 0;
        if (n == 0) return tok_buf_put(out, s, 0);
        if (tok_buf_put(out, nm->content, nm->content_n)) return SL_ENOMEM;
        return tok_buf_put(out, s, n);
    case NORM_REPLACE: return replace(nm, s, n, out);
    case NORM_SEQ: {
        out->n = 0;
        if (tok_buf_put(out, s, n)) return SL_ENOMEM;
        for (size_t i = 0; i < nm->n_items; i++) {
            /* out holds the current text; produce into tmp then swap */
            tok_buf t2 = {0};
            int rc = apply_one(&nm->items[i], out->p, out->n, tmp, &t2);
            tok_buf_free(&t2);
            if (rc) return rc;
            tok_buf sw = *out;
            *out = *tmp;
            *tmp = sw;
        }
        return 0;
    }
    default: return SL_EINVAL;
    }
}

int tok_norm_apply(const tok_norm *n, const char *s, size_t len, tok_buf *out, tok_buf *tmp) {
    return apply_one(n, s, len, out, tmp);
}
