/*
 * stats.c — divergence statistics between two engines' logits
 * (silica/compare.h): per-position KL divergence, top-1 agreement and
 * both sides' perplexity, in double.
 *
 * Invariants: the accumulator keeps every position's KL divergence (for the
 * p99, the maximum and the per-position chart); sums are in double; a
 * position's argmax is its first maximal index (numpy's argmax).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "silica/compare.h"

struct sl_cmp_acc {
    double *kld;
    size_t n, cap;
    int64_t top1;
    double nll, nll_ref;
    int64_t targets;
};

double sl_cmp_log_softmax(const float *logits, int V, double *out) {
    double mx = logits[0];
    for (int k = 1; k < V; k++) mx = logits[k] > mx ? logits[k] : mx;
    double sum = 0;
    for (int k = 0; k < V; k++) sum += exp((double)logits[k] - mx);
    double lse = mx + log(sum);
    if (out)
        for (int k = 0; k < V; k++) out[k] = (double)logits[k] - lse;
    return lse;
}

/* x sorts before y in top-k order: larger, and a number before NaN. */
static int topk_before(float x, float y) {
    return x > y || (isnan(y) && !isnan(x));
}

void sl_cmp_topk(const float *row, int V, int k, int32_t *ids, float *vals) {
    int n = 0;
    for (int i = 0; i < V; i++) {
        float x = row[i];
        if (n == k && !topk_before(x, vals[k - 1])) continue;
        int p = n < k ? n : k - 1;   /* shift the later-ordered values up, dropping the last when full */
        while (p > 0 && topk_before(x, vals[p - 1])) {
            ids[p] = ids[p - 1], vals[p] = vals[p - 1];
            p--;
        }
        ids[p] = i, vals[p] = x;
        if (n < k) n++;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double sl_cmp_percentile(const double *v, size_t n, double q) {
    if (n == 0) return 0;
    double *s = malloc(n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double pos = q / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    double r = s[lo] + (s[hi] - s[lo]) * (pos - (double)lo);
    free(s);
    return r;
}

int sl_cmp_common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

int sl_cmp_acc_new(sl_cmp_acc **out, sl_error *err) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
}

void sl_cmp_acc_free(sl_cmp_acc *a) {
    if (!a) return;
    free(a->kld);
    free(a);
}

static int argmax(const float *row, int V) {
    int best = 0;
    for (int k = 1; k < V; k++)
        if (row[k] > row[best]) best = k;
    return best;
}

int sl_cmp_acc_add(sl_cmp_acc *a, const float *ref, const float *cand, const int32_t *ids, int n, int V,
                   sl_error *err) {
    if (a->n + (size_t)n > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < a->n + (size_t)n) cap *= 2;
        double *k = realloc(a->kld, cap * sizeof *k);
        if (!k) return sl_errorf(err, SL_ENOMEM, "out of memory");
        a->kld = k;
        a->cap = cap;
    }
    double *lp = malloc(2 * (size_t)V * sizeof *lp);
    if (!lp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    double *lq = lp + V;
    for (int t = 0; t < n; t++) {
        const float *r = ref + (size_t)t * V, *c = cand + (size_t)t * V;
        sl_cmp_log_softmax(r, V, lp);
        sl_cmp_log_softmax(c, V, lq);
        double kl = 0;
        for (int k = 0; k < V; k++) kl += exp(lp[k]) * (lp[k] - lq[k]);
        a->kld[a->n++] = kl > 0 ? kl : 0;   /* rounding can make an exact match a hair negative */
        a->top1 += argmax(r, V) == argmax(c, V);
        if (ids && t + 1 < n) {
            a->nll -= lq[ids[t + 1]];
            a->nll_ref -= lp[ids[t + 1]];
            a->targets++;
        }
    }
    free(lp);
    return 0;
}

void sl_cmp_acc_stats(const sl_cmp_acc *a, sl_cmp_stats *s) {
    memset(s, 0, sizeof *s);
    s->positions = (int64_t)a->n;
    s->targets = a->targets;
    if (!a->n) return;
    double sum = 0, mx = 0;
    for (size_t k = 0; k < a->n; k++) {
        sum += a->kld[k];
        mx = a->kld[k] > mx ? a->kld[k] : mx;
    }
    s->kld_mean = sum / (double)a->n;
    s->kld_max = mx;
    s->kld_p99 = sl_cmp_percentile(a->kld, a->n, 99.0);
    s->top1 = 100.0 * (double)a->top1 / (double)a->n;
    if (a->targets) {
        s->ppl = exp(a->nll / (double)a->targets);
        s->ppl_ref = exp(a->nll_ref / (double)a->targets);
    }
}

const double *sl_cmp_acc_klds(const sl_cmp_acc *a, size_t *n) {
    *n = a->n;
    return a->kld;
}
