/*
 * sampler.c — next-token choice from logits: logit bias, repetition /
 * presence / frequency penalties over a window of recent tokens, then greedy
 * or top-k -> top-p -> min-p -> temperature -> one seeded draw.
 *
 * Order and semantics:
 *  - bias: logits[id] += bias (-inf bans a token).
 *  - penalties look at the last penalty_window ids of the history (-1: all
 *    of it; 0: none); each distinct id seen there, count times, gets
 *    llama.cpp's penalties sampler (src/llama-sampling.cpp):
 *    l = l <= 0 ? l * repeat : l / repeat, then
 *    l -= count * frequency + presence — the repeat part is also
 *    transformers' RepetitionPenaltyLogitsProcessor and mlx_lm's
 *    make_repetition_penalty (sign-aware, once per distinct id).
 *  - temperature <= 0: argmax (lowest id among equal maxima).
 *  - filters see temperature-1 probabilities (as mlx-lm): candidates sorted
 *    by logit (ties: lower id first); top_k keeps k; top_p keeps the smallest
 *    prefix whose mass reaches top_p; min_p keeps p >= min_p * p_max.  At
 *    least one candidate always survives.
 *  - the survivors are re-normalised at the temperature and one uniform draw
 *    (xoshiro256** seeded by splitmix64(seed)) picks by inverse CDF.
 * Invariants: same params + seed + inputs -> same output; no allocation per
 * call (buffers sized to the vocabulary at creation).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "silica/runtime.h"

struct sl_sampler {
    sl_sampler_params p;
    sl_logit_bias *bias;
    int vocab;
    uint64_t rng[4];
    struct cand { float l; int32_t id; } *cand;
    float *prob;
    int32_t *count;
};

void sl_sampler_defaults(sl_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.0f;
    p->top_p = 1.0f;
    p->repeat_penalty = 1.0f;
    p->penalty_window = 64;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

double sl_sampler_uniform(sl_sampler *s) { return (double)(next_u64(s->rng) >> 11) * 0x1.0p-53; }

int sl_sampler_new(const sl_sampler_params *p, int vocab, sl_sampler **out, sl_error *err) {
    *out = NULL;
    if (vocab <= 0) return sl_errorf(err, SL_EINVAL, "sampler: vocabulary size must be positive");
    if (!(p->top_p > 0 && p->top_p <= 1)) return sl_errorf(err, SL_EINVAL, "--top-p must be in (0, 1], got %g", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1)) return sl_errorf(err, SL_EINVAL, "--min-p must be in [0, 1], got %g", p->min_p);
    if (p->top_k < 0) return sl_errorf(err, SL_EINVAL, "--top-k must be >= 0, got %d", p->top_k);
    if (!(p->repeat_penalty > 0)) return sl_errorf(err, SL_EINVAL, "--repeat-penalty must be positive, got %g", p->repeat_penalty);
    if (p->penalty_window < -1) return sl_errorf(err, SL_EINVAL, "--repeat-last-n must be -1 (all), 0 (off) or more, got %d", p->penalty_window);
    if (!isfinite(p->temperature)) return sl_errorf(err, SL_EINVAL, "--temp must be finite");
    for (int i = 0; i < p->n_bias; i++)
        if (p->bias[i].id < 0 || p->bias[i].id >= vocab)
            return sl_errorf(err, SL_EINVAL, "logit bias: token id %d is out of range (vocab_size %d)", (int)p->bias[i].id, vocab);
    sl_sampler *s = calloc(1, sizeof *s);
    if (!s) return sl_errorf(err, SL_ENOMEM, "out of memory");
    s->p = *p;
    s->vocab = vocab;
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    s->prob = malloc((size_t)vocab * sizeof *s->prob);
    s->count = calloc((size_t)vocab, sizeof *s->count);
    s->bias = p->n_bias ? malloc((size_t)p->n_bias * sizeof *s->bias) : NULL;
    if (!s->cand || !s->prob || !s->count || (p->n_bias && !s->bias)) {
        sl_sampler_free(s);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (p->n_bias) memcpy(s->bias, p->bias, (size_t)p->n_bias * sizeof *s->bias);
    s->p.bias = s->bias;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    *out = s;
    return 0;
}

void sl_sampler_free(sl_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->prob);
    free(s->count);
    free(s->bias);
    free(s);
}

static void penalize(sl_sampler *s, float *logits, const int32_t *hist, int nh) {
    const sl_sampler_params *p = &s->p;
    if (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f) return;
    int from = p->penalty_window >= 0 && nh > p->penalty_window ? nh - p->penalty_window : 0;
    for (int i = from; i < nh; i++)
        if (hist[i] >= 0 && hist[i] < s->vocab) s->count[hist[i]]++;
    for (int i = from; i < nh; i++) {
        int32_t id = hist[i];
        if (id < 0 || id >= s->vocab || s->count[id] == 0) continue;
        float l = logits[id];
        if (p->repeat_penalty != 1.0f) l = l <= 0 ? l * p->repeat_penalty : l / p->repeat_penalty;
        l -= (float)s->count[id] * p->frequency_penalty + p->presence_penalty;   /* llama.cpp's one expression */
        logits[id] = l;
        s->count[id] = 0;   /* once per distinct id; also leaves the table clean */
    }
}

static int cmp_desc(const void *a, const void *b) {
    const struct cand *x = a, *y = b;
    if (x->l > y->l) return -1;
    if (x->l < y->l) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

int32_t sl_sampler_sample(sl_sampler *s, float *logits, const int32_t *hist, int nh) {
    const sl_sampler_params *p = &s->p;
    for (int i = 0; i < p->n_bias; i++) logits[p->bias[i].id] += p->bias[i].bias;
    penalize(s, logits, hist, nh);
    if (p->temperature <= 0) {
        int32_t best = 0;
        float bv = -INFINITY;
        for (int i = 0; i < s->vocab; i++)
            if (logits[i] > bv) { bv = logits[i]; best = i; }
        return best;
    }
    int n = 0;
    for (int i = 0; i < s->vocab; i++)
        if (logits[i] > -INFINITY && !isnan(logits[i])) s->cand[n++] = (struct cand){logits[i], i};
    if (n == 0) return 0;
    qsort(s->cand, (size_t)n, sizeof *s->cand, cmp_desc);
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    float mx = s->cand[0].l;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (s->prob[i] = expf(s->cand[i].l - mx));
    if (p->top_p < 1.0f) {
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i] / sum;
            if (cum >= p->top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        int keep = 1;   /* prob[0] is the maximum (1 before normalising) */
        while (keep < n && s->prob[keep] >= p->min_p * s->prob[0]) keep++;
        n = keep;
    }
    sum = 0;
    for (int i = 0; i < n; i++) sum += (s->prob[i] = expf((s->cand[i].l - mx) / p->temperature));
    double u = sl_sampler_uniform(s) * sum, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->prob[i];
        if (u < cum) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}
