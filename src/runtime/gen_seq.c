/*
 * gen_seq.c — sequences (generate.h): a session's KV cache with the ids it
 * holds, a sampler, and the text streamed so far; sl_gen_begin evaluates a
 * prompt (reusing the cached prefix), sl_gen_step decodes one token for
 * every active sequence through one batched forward pass
 * (sl_session_eval_multi).
 *
 * Invariants:
 *  - seq->ids mirrors the ids whose keys/values are in the session, in
 *    order; a new prompt keeps their longest common prefix (at least one
 *    token is evaluated, for fresh logits).
 *  - Streamed text never contains a stop string nor a split UTF-8 sequence:
 *    the tokenizer's DecodeStream gives whole characters, and text that may
 *    begin a stop string is held back until decided; when the sequence stops
 *    for another reason the held-back text goes out with the last token.
 *  - Structured output (p.grammar) masks the logits before sampling with
 *    this sequence's own recognizer state only; the logprobs reported stay
 *    the model's (taken before the mask).
 *  - One token's work (sample, EOS, decode, stops, stop reason) is the same
 *    code whether the sequence steps alone or with others; the logits are
 *    bit-identical either way (sl_session_eval_multi), so is everything else.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/gen_impl.h"

#define GEN_MAX_TOP 20

typedef struct textbuf {
    char *p;
    size_t n, cap, emitted;
} textbuf;

struct sl_gen_seq {
    sl_gen_model *g;
    sl_session *s;
    sl_sampler *smp;
    sl_sampler_params smp_p;   /* what smp was made with */
    int32_t *ids;              /* held by the session */
    int n_ids, cap_ids;
    /* the current (or last) generation */
    bool active;
    sl_gen_params p;
    char **stops;              /* copies of p.stops */
    sl_gen_token_fn fn;
    void *ud;
    int32_t *hist;             /* prompt + generated: the penalties' history */
    int nh;
    int32_t *gen;
    int ngen;
    textbuf tb;
    sl_tok_stream *ts;
    float *logits, *raw;       /* vocab floats each: the next token's logits, and a copy before sampling */
    sl_gen_alt top[GEN_MAX_TOP];
    sl_gen_stats st;
    double t0, tf;             /* begin; first token (or the end of the prompt) */
    int32_t pending;           /* the last token, sampled but not yet evaluated */
    /* structured output (p.grammar): the recognizer, the model's token bytes, the mask */
    sl_grammar_matcher *gm;
    const sl_grammar_vocab *gv;
    uint8_t *allowed;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sl_gen_seq_new(sl_gen_model *g, const sl_session_opts *so, sl_gen_seq **out, sl_error *err) {
    *out = NULL;
    sl_gen_seq *s = calloc(1, sizeof *s);
    size_t V = (size_t)g->c->vocab_size;
    if (!s || !(s->logits = malloc(V * sizeof(float))) || !(s->raw = malloc(V * sizeof(float)))) {
        sl_gen_seq_free(s);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    s->g = g;
    int rc = sl_session_new(g->m, so, &s->s, err);
    if (rc) {
        sl_gen_seq_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void gen_clear(sl_gen_seq *s) {
    for (int k = 0; s->stops && k < s->p.n_stops; k++) free(s->stops[k]);
    free(s->stops);
    s->stops = NULL;
    s->p.n_stops = 0;
    sl_tok_stream_free(s->ts);
    s->ts = NULL;
    free(s->tb.p);
    memset(&s->tb, 0, sizeof s->tb);
    free(s->hist);
    free(s->gen);
    s->hist = s->gen = NULL;
    sl_grammar_matcher_free(s->gm);
    s->gm = NULL;
    s->nh = s->ngen = 0;
    s->active = false;
}

void sl_gen_seq_free(sl_gen_seq *s) {
    if (!s) return;
    gen_clear(s);
    sl_sampler_free(s->smp);
    sl_session_free(s->s);
    free(s->ids);
    free(s->logits);
    free(s->raw);
    free(s->allowed);
    free(s);
}

sl_session *sl_gen_seq_session(sl_gen_seq *s) { return s->s; }
const int32_t *sl_gen_seq_ids(const sl_gen_seq *s, int *n) {
    *n = s->n_ids;
    return s->ids;
}
bool sl_gen_active(const sl_gen_seq *s) { return s->active; }
const sl_gen_stats *sl_gen_seq_stats(const sl_gen_seq *s) { return &s->st; }
const char *sl_gen_text(const sl_gen_seq *s, size_t *len) {
    *len = s->tb.n;
    return s->tb.p;
}
const int32_t *sl_gen_generated(const sl_gen_seq *s, int *n) {
    *n = s->ngen;
    return s->gen;
}

static int ids_push(sl_gen_seq *s, const int32_t *ids, int n, sl_error *err) {
    if (s->n_ids + n > s->cap_ids) {
        int cap = s->cap_ids ? s->cap_ids : 256;
        while (cap < s->n_ids + n) cap *= 2;
        int32_t *p = realloc(s->ids, (size_t)cap * sizeof *p);
        if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
        s->ids = p;
        s->cap_ids = cap;
    }
    memcpy(s->ids + s->n_ids, ids, (size_t)n * sizeof *ids);
    s->n_ids += n;
    return 0;
}

/* ---- text and stop strings ---- */

static int tb_append(textbuf *t, const char *s, size_t n, sl_error *err) {
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n + 1) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) return sl_errorf(err, SL_ENOMEM, "out of memory");
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = 0;
    return 0;
}

/* After `added` new bytes: true when a stop string was found (the text is
 * cut before it).  *safe: the bytes that may be released. */
static bool tb_stops(textbuf *t, char *const *stops, int n_stops, size_t added, size_t *safe) {
    size_t maxl = 0;
    for (int k = 0; k < n_stops; k++) maxl = strlen(stops[k]) > maxl ? strlen(stops[k]) : maxl;
    size_t from = t->n - added;
    from = from > maxl ? from - maxl : 0;
    size_t best = SIZE_MAX;
    for (int k = 0; k < n_stops; k++) {
        size_t L = strlen(stops[k]);
        if (!L) continue;
        for (size_t i = from; i + L <= t->n && i < best; i++)
            if (memcmp(t->p + i, stops[k], L) == 0) { best = i; break; }
    }
    if (best != SIZE_MAX) {
        t->n = best;
        t->p[best] = 0;
        *safe = best;
        return true;
    }
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t hold = 0;
    for (int k = 0; k < n_stops; k++) {
        size_t L = strlen(stops[k]), h = L ? L - 1 : 0;
        if (h > t->n) h = t->n;
        for (; h > hold; h--)
            if (memcmp(t->p + t->n - h, stops[k], h) == 0) { hold = h; break; }
    }
    *safe = t->n - hold;
    return false;
}

/* ---- one token ---- */

/* log softmax of the raw logits at id, and the top alternatives. */
static void logprobs(sl_gen_seq *s, sl_gen_token *t) {
    int V = s->g->c->vocab_size;
    const float *l = s->raw;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)l[i] - (double)mx);
    double lse = (double)mx + log(sum);
    t->logprob = (float)((double)l[t->id] - lse);
    int k = s->p.top_logprobs;
    for (int j = 0; j < k; j++) s->top[j] = (sl_gen_alt){-1, -INFINITY};
    for (int i = 0; i < V && k > 0; i++) {
        if (s->top[k - 1].id >= 0 && !(l[i] > s->top[k - 1].logprob)) continue;
        int j = k - 1;
        while (j > 0 && (s->top[j - 1].id < 0 || l[i] > s->top[j - 1].logprob)) {
            s->top[j] = s->top[j - 1];
            j--;
        }
        s->top[j] = (sl_gen_alt){i, l[i]};
    }
    int n = 0;
    for (; n < k && s->top[n].id >= 0; n++) s->top[n].logprob = (float)((double)s->top[n].logprob - lse);
    t->top = s->top;
    t->n_top = n;
}

/* Structured output: every token the grammar rejects gets -inf, EOS too
 * until the value is complete.  Depends only on this sequence's state. */
static int apply_grammar(sl_gen_seq *s, sl_error *err) {
    int V = s->g->c->vocab_size;
    int n = sl_grammar_mask(s->gm, s->gv, s->allowed);
    if (n < 0) return sl_errorf(err, SL_ENOMEM, "out of memory");
    bool eos_ok = sl_grammar_complete(s->gm);
    for (int k = 0; k < s->g->n_eos; k++)
        if (s->g->eos[k] >= 0 && s->g->eos[k] < V && !s->allowed[s->g->eos[k]]) {
            s->allowed[s->g->eos[k]] = eos_ok;
            n += eos_ok;
        }
    if (n == 0)
        return sl_errorf(err, SL_EINVAL, "%s: no token of the vocabulary continues the structured output", s->g->path);
    for (int i = 0; i < V; i++)
        if (!s->allowed[i]) s->logits[i] = -INFINITY;
    return 0;
}

static bool is_eos(const sl_gen_model *g, int32_t id) {
    for (int k = 0; k < g->n_eos; k++)
        if (g->eos[k] == id) return true;
    return false;
}

static void finish(sl_gen_seq *s, const char *reason) {
    s->st.stop_reason = reason;
    s->st.gen_s = now_s() - s->tf;
    s->active = false;
}

/* Sample the next token from s->logits, decide whether it ends the
 * generation, release its text and report it. */
static int next_token(sl_gen_seq *s, sl_error *err) {
    if (s->ngen >= s->p.max_tokens) {
        finish(s, "length");
        return 0;
    }
    size_t V = (size_t)s->g->c->vocab_size;
    bool want_lp = s->fn && (s->p.logprobs || s->p.top_logprobs > 0);
    if (want_lp) memcpy(s->raw, s->logits, V * sizeof(float));
    int rc = s->gm ? apply_grammar(s, err) : 0;
    if (rc) {
        s->active = false;
        return rc;
    }
    if (s->p.ignore_eos && !s->gm)   /* as llama-server: EOS never sampled (a grammar decides its own end) */
        for (int k = 0; k < s->g->n_eos; k++)
            if (s->g->eos[k] >= 0 && (size_t)s->g->eos[k] < V) s->logits[s->g->eos[k]] = -INFINITY;
    int32_t id = sl_sampler_sample(s->smp, s->logits, s->hist, s->nh);
    if (s->gm && !is_eos(s->g, id) && !sl_grammar_accept_token(s->gm, s->gv, id)) {
        s->active = false;
        return sl_errorf(err, SL_EINVAL, "%s: sampled token %d outside the structured output's mask", s->g->path,
                         (int)id);
    }
    if (s->ngen == 0) {
        s->tf = now_s();
        s->st.ttft_s = s->tf - s->t0;
    }
    s->hist[s->nh++] = id;
    s->gen[s->ngen++] = id;
    s->st.generated = s->ngen;
    const char *reason = is_eos(s->g, id) ? "eos" : NULL;
    size_t safe = s->tb.emitted;
    if (!reason && s->ts) {
        const char *piece;
        size_t plen;
        rc = sl_tok_stream_step(s->ts, (uint32_t)id, &piece, &plen, err);
        if (!rc) rc = tb_append(&s->tb, piece, plen, err);
        if (rc) {
            s->active = false;
            return rc;
        }
        safe = s->tb.n;
        if (s->p.n_stops && tb_stops(&s->tb, s->stops, s->p.n_stops, plen, &safe)) reason = "stop";
    }
    if (!reason && s->gm && sl_grammar_finished(s->gm)) reason = "grammar";   /* the value is whole */
    if (!reason && s->ngen == s->p.max_tokens) reason = "length";
    if (!reason && sl_session_pos(s->s) >= sl_session_ctx(s->s)) reason = "length";   /* context full */
    if (reason && s->ts) safe = s->tb.n;   /* held-back text that never became a stop string */
    sl_gen_token t = {.id = id, .logprob = NAN, .text = s->tb.p ? s->tb.p + s->tb.emitted : "", .len = 0};
    if (safe > s->tb.emitted) {
        t.len = safe - s->tb.emitted;
        s->tb.emitted = safe;
    }
    if (s->fn) {
        if (want_lp) logprobs(s, &t);
        if (s->fn(s->ud, &t) && !reason) reason = "cancelled";
    }
    if (reason) finish(s, reason);
    else s->pending = id;
    return 0;
}

/* ---- begin, step ---- */

static bool same_sampling(const sl_sampler_params *a, const sl_sampler_params *b) {
    return a->temperature == b->temperature && a->top_k == b->top_k && a->top_p == b->top_p &&
           a->min_p == b->min_p && a->repeat_penalty == b->repeat_penalty &&
           a->presence_penalty == b->presence_penalty && a->frequency_penalty == b->frequency_penalty &&
           a->penalty_window == b->penalty_window && a->bias == b->bias && a->n_bias == b->n_bias &&
           a->seed == b->seed;
}

static int check_begin(const sl_gen_seq *s, int n, const sl_gen_params *p, sl_error *err) {
    const char *path = s->g->path;
    if (n <= 0) return sl_errorf(err, SL_EINVAL, "%s: the prompt is empty (no tokens)", path);
    if (n > sl_session_ctx(s->s))
        return sl_errorf(err, SL_EINVAL, "%s: the prompt has %d tokens, longer than the context of %d (--ctx)", path, n,
                         sl_session_ctx(s->s));
    if (p->n_stops && !s->g->tok)
        return sl_errorf(err, SL_EINVAL, "%s: stop strings need the model's tokenizer.json", path);
    if (p->max_tokens < 0 || p->max_tokens > (1 << 30))
        return sl_errorf(err, SL_EINVAL, "%s: max_tokens %d out of range (0..2^30)", path, p->max_tokens);
    if (p->top_logprobs < 0 || p->top_logprobs > GEN_MAX_TOP)
        return sl_errorf(err, SL_EINVAL, "%s: top_logprobs %d out of range (0..%d)", path, p->top_logprobs, GEN_MAX_TOP);
    if (p->n_stops < 0 || (p->n_stops && !p->stops))
        return sl_errorf(err, SL_EINVAL, "%s: %d stop strings but no list", path, p->n_stops);
    return 0;
}

/* The generation's own state: sampler, stop strings, history, text stream. */
static int setup(sl_gen_seq *s, const int32_t *prompt, int n, const sl_gen_params *p, sl_error *err) {
    int rc;
    if (!s->smp || !p->continue_rng || !same_sampling(&s->smp_p, &p->sampling)) {
        sl_sampler_free(s->smp);
        s->smp = NULL;
        if ((rc = sl_sampler_new(&p->sampling, s->g->c->vocab_size, &s->smp, err))) return rc;
        s->smp_p = p->sampling;
    }
    s->p = *p;
    s->p.n_stops = 0;
    if (p->n_stops && !(s->stops = calloc((size_t)p->n_stops, sizeof *s->stops)))
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (int k = 0; k < p->n_stops; k++, s->p.n_stops++)
        if (!(s->stops[k] = strdup(p->stops[k] ? p->stops[k] : ""))) return sl_errorf(err, SL_ENOMEM, "out of memory");
    s->p.stops = (const char *const *)s->stops;
    s->hist = malloc(((size_t)n + (size_t)p->max_tokens + 1) * sizeof *s->hist);
    s->gen = malloc(((size_t)p->max_tokens + 1) * sizeof *s->gen);
    if (!s->hist || !s->gen) return sl_errorf(err, SL_ENOMEM, "out of memory");
    memcpy(s->hist, prompt, (size_t)n * sizeof *s->hist);
    s->nh = n;
    if (s->g->tok && ((rc = sl_tok_stream_new(s->g->tok, 0, &s->ts, err)) || (rc = tb_append(&s->tb, "", 0, err))))
        return rc;
    if (p->grammar) {
        if (!s->allowed && !(s->allowed = malloc((size_t)s->g->c->vocab_size)))
            return sl_errorf(err, SL_ENOMEM, "out of memory");
        if ((rc = gen_grammar_vocab(s->g, &s->gv, err)) || (rc = sl_grammar_matcher_new(p->grammar, &s->gm, err)))
            return rc;
    }
    return 0;
}

int sl_gen_begin(sl_gen_seq *s, const int32_t *prompt, int n, const sl_gen_params *p, sl_gen_token_fn fn, void *ud,
                 sl_error *err) {
    gen_clear(s);
    memset(&s->st, 0, sizeof s->st);
    s->st.prompt_tokens = n;
    int rc = check_begin(s, n, p, err);
    if (!rc) rc = setup(s, prompt, n, p, err);
    if (rc) {
        gen_clear(s);
        return rc;
    }
    s->fn = fn;
    s->ud = ud;
    int keep = 0;
    while (keep < s->n_ids && keep < n - 1 && s->ids[keep] == prompt[keep]) keep++;
    if (keep > sl_session_pos(s->s)) keep = sl_session_pos(s->s);
    keep = sl_session_truncate(s->s, keep);   /* 0 when a rotating cache already evicted what the prefix needs */
    s->n_ids = keep;
    s->st.cached_tokens = keep;
    s->t0 = now_s();
    if (p->progress) p->progress(p->progress_ud, "prompt", sl_session_pos(s->s));
    if ((rc = sl_session_eval(s->s, prompt + keep, n - keep, false, s->logits, err))) {
        sl_error_prefix(err, "%s: ", s->g->path);
        gen_clear(s);
        return rc;
    }
    if (p->progress) p->progress(p->progress_ud, "generate", sl_session_pos(s->s));
    if ((rc = ids_push(s, prompt + keep, n - keep, err))) {
        gen_clear(s);
        return rc;
    }
    s->tf = now_s();
    s->st.prompt_s = s->tf - s->t0;
    s->active = true;
    return next_token(s, err);
}

/* The decoding step proper: m active sequences (same model), their pending tokens. */
static int step_active(sl_gen_seq **act, int m, sl_error *err) {
    const sl_gen_model *g = act[0]->g;
    int rc = 0;
    if (m == 1) {
        rc = sl_session_eval(act[0]->s, &act[0]->pending, 1, false, act[0]->logits, err);
    } else {
        size_t V = (size_t)g->c->vocab_size;
        sl_session **ss = malloc((size_t)m * sizeof *ss);
        int32_t *ids = malloc((size_t)m * sizeof *ids);
        float *lg = malloc((size_t)m * V * sizeof *lg);
        if (!ss || !ids || !lg) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        for (int k = 0; !rc && k < m; k++) {
            ss[k] = act[k]->s;
            ids[k] = act[k]->pending;
        }
        if (!rc) rc = sl_session_eval_multi(ss, ids, m, lg, err);
        for (int k = 0; !rc && k < m; k++) memcpy(act[k]->logits, lg + (size_t)k * V, V * sizeof *lg);
        free(ss);
        free(ids);
        free(lg);
    }
    if (rc) {
        sl_error_prefix(err, "%s: ", g->path);
        return rc;
    }
    for (int k = 0; k < m; k++) {
        sl_gen_seq *s = act[k];
        if (s->p.progress) s->p.progress(s->p.progress_ud, "generate", sl_session_pos(s->s));
        if ((rc = ids_push(s, &s->pending, 1, err)) || (rc = next_token(s, err))) return rc;
    }
    return 0;
}

int sl_gen_step(sl_gen_seq *const *seqs, int n, sl_error *err) {
    if (n <= 0) return 0;
    sl_gen_seq **act = malloc((size_t)n * sizeof *act);
    if (!act) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int m = 0, rc = 0;
    for (int k = 0; k < n; k++) {
        if (!seqs[k] || !seqs[k]->active) continue;
        if (m && seqs[k]->g != act[0]->g) {
            rc = sl_errorf(err, SL_EINVAL, "sl_gen_step: sequences of different models (%s, %s)", act[0]->g->path,
                           seqs[k]->g->path);
            break;
        }
        act[m++] = seqs[k];
    }
    if (!rc && m) rc = step_active(act, m, err);
    free(act);
    return rc;
}

int sl_generate(sl_gen_seq *s, const int32_t *prompt, int n, const sl_gen_params *p, sl_gen_token_fn fn, void *ud,
                sl_error *err) {
    int rc = sl_gen_begin(s, prompt, n, p, fn, ud, err);
    while (!rc && s->active) rc = sl_gen_step(&s, 1, err);
    return rc;
}
