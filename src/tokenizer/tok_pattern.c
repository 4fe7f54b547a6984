/*
 * tok_pattern.c — the patterns of Split/Replace components: a literal
 * string or an Oniguruma regex compiled exactly as HF's SysRegex does
 * (UTF-8, default syntax, no options), the find-iterator rules of Rust's
 * `onig` crate (an empty match right after the previous match is skipped,
 * the search then advances one char), and NormalizedString::split's
 * delimiter behaviours (Removed, Isolated, MergedWithPrevious,
 * MergedWithNext, Contiguous).
 *
 * Invariants: a literal never matches empty; every match lies within the
 * searched string; oniguruma is initialised once (pthread_once).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <oniguruma.h>

#include "tokenizer/tok_impl.h"

static pthread_once_t g_onig_once = PTHREAD_ONCE_INIT;
static void onig_init_once(void) {
    OnigEncoding enc[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(enc, 1);
}

int tok_pattern_init_regex(tok_pattern *p, const char *re, size_t n, const char *what, sl_error *err) {
    pthread_once(&g_onig_once, onig_init_once);
    OnigRegex r = NULL;
    OnigErrorInfo einfo;
    int rc = onig_new(&r, (const OnigUChar *)re, (const OnigUChar *)re + n, ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                      ONIG_SYNTAX_DEFAULT, &einfo);
    if (rc != ONIG_NORMAL) {
        OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, rc, &einfo);
        return sl_errorf(err, SL_EINVAL, "%s: bad regex: %s", what, (const char *)msg);
    }
    p->is_regex = true;
    p->re = r;
    p->region = onig_region_new();
    if (!p->region) {
        onig_free(r);
        p->re = NULL;
        return sl_errorf(err, SL_ENOMEM, "%s: out of memory", what);
    }
    return 0;
}

int tok_pattern_from_json(tok_pattern *p, const cJSON *j, const char *what, sl_error *err) {
    memset(p, 0, sizeof *p);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "String");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "Regex");
    if (cJSON_IsString(s)) {
        size_t n = strlen(s->valuestring);
        if (n == 0) return sl_errorf(err, SL_EINVAL, "%s: empty pattern string", what);
        p->lit = malloc(n + 1);
        if (!p->lit) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", what);
        memcpy(p->lit, s->valuestring, n + 1);
        p->lit_n = n;
        return 0;
    }
    if (cJSON_IsString(r)) return tok_pattern_init_regex(p, r->valuestring, strlen(r->valuestring), what, err);
    return sl_errorf(err, SL_EINVAL, "%s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", what);
}

void tok_pattern_free(tok_pattern *p) {
    if (p->re) onig_free((OnigRegex)p->re);
    if (p->region) onig_region_free((OnigRegion *)p->region, 1);
    free(p->lit);
    memset(p, 0, sizeof *p);
}

void tok_match_iter_init(tok_match_iter *it, const tok_pattern *p, const char *s, size_t n) {
    it->p = p;
    it->s = s;
    it->n = n;
    it->pos = 0;
    it->has_last = false;
    it->last_end = 0;
}

bool tok_match_next(tok_match_iter *it, size_t *ms, size_t *me) {
    const tok_pattern *p = it->p;
    for (;;) {
        if (it->pos > it->n) return false;
        if (!p->is_regex) {
            if (p->lit_n > it->n - it->pos) return false;
            const char *f = NULL;
            const char *h = it->s + it->pos;
            size_t hn = it->n - it->pos;
            /* memmem is GNU; do a simple first-byte scan */
            while (hn >= p->lit_n) {
                const char *c = memchr(h, (unsigned char)p->lit[0], hn - p->lit_n + 1);
                if (!c) break;
                if (memcmp(c, p->lit, p->lit_n) == 0) { f = c; break; }
                hn -= (size_t)(c + 1 - h);
                h = c + 1;
            }
            if (!f) return false;
            *ms = (size_t)(f - it->s);
            *me = *ms + p->lit_n;
            it->pos = *me;
            return true;
        }
        OnigRegion *rg = (OnigRegion *)p->region;
        const OnigUChar *st = (const OnigUChar *)it->s, *end = st + it->n;
        int r = onig_search((OnigRegex)p->re, st, end, st + it->pos, end, rg, ONIG_OPTION_NONE);
        if (r < 0) return false;
        size_t s0 = (size_t)rg->beg[0], e0 = (size_t)rg->end[0];
        if (s0 == e0) {
            size_t step = 1;
            if (it->pos < it->n) {
                int32_t cp;
                step = (size_t)tok_utf8_dec(it->s + it->pos, it->n - it->pos, &cp);
            }
            it->pos += step;
            if (it->has_last && it->last_end == e0) continue;
        } else {
            it->pos = e0;
        }
        it->has_last = true;
        it->last_end = e0;
        *ms = s0;
        *me = e0;
        return true;
    }
}

int tok_split_behavior_from_json(const cJSON *j, const char *what, int *out, sl_error *err) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    if (!cJSON_IsString(j)) return sl_errorf(err, SL_EINVAL, "%s: \"behavior\" must be a string", what);
    for (int i = 0; i < 5; i++)
        if (strcmp(j->valuestring, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return sl_errorf(err, SL_EUNSUPPORTED, "%s: unsupported behavior \"%s\"", what, j->valuestring);
}

int tok_split_apply(tok_seg *segs, size_t nseg, int behavior, const char *s, bool at_origin, tok_pieces *out) {
    size_t k = 0; /* compacted segments, in place */
    bool prev_match = false;
    switch (behavior) {
    case TOK_SPLIT_REMOVED:
    case TOK_SPLIT_ISOLATED: k = nseg; break;
    case TOK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < nseg; i++) {
            tok_seg g = segs[i];
            if (g.m && !prev_match && k > 0) segs[k - 1].b = g.b;
            else segs[k++] = (tok_seg){g.a, g.b, false};
            prev_match = g.m;
        }
        break;
    case TOK_SPLIT_MERGED_NEXT: {
        /* walk backwards, building from the end of the array */
        size_t w = nseg;
        for (size_t i = nseg; i-- > 0;) {
            tok_seg g = segs[i];
            if (g.m && !prev_match && w < nseg) segs[w].a = g.a;
            else segs[--w] = (tok_seg){g.a, g.b, false};
            prev_match = g.m;
        }
        memmove(segs, segs + w, (nseg - w) * sizeof *segs);
        k = nseg - w;
        break;
    }
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < nseg; i++) {
            tok_seg g = segs[i];
            if (g.m == prev_match && k > 0) segs[k - 1].b = g.b;
            else segs[k++] = (tok_seg){g.a, g.b, false};
            prev_match = g.m;
        }
        break;
    default: return SL_EINVAL;
    }
    for (size_t i = 0; i < k; i++) {
        if (behavior == TOK_SPLIT_REMOVED && segs[i].m) continue;
        if (segs[i].b <= segs[i].a) continue;
        if (tok_pieces_push(out, s + segs[i].a, segs[i].b - segs[i].a, -1, at_origin && segs[i].a == 0))
            return SL_ENOMEM;
    }
    return 0;
}
