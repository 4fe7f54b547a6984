/*
 * recommend.c — what would make a model fit a budget: a quantization recipe
 * (bits, group, mlx-lm mixed recipe) with its predicted size, published
 * quality cost and the exact `silica convert … -q …` command; a KV-cache
 * type; a shorter context; on a Mac, the `sudo sysctl iogpu.wired_limit_mb=…`
 * that raises the GPU working-set cap (recommended, never run).
 *
 * Invariants: every recommendation carries the total it predicts and the
 * verdict it reaches; only changes that improve on the current verdict are
 * listed; the list is ordered best quality first within each kind.
 */
#include <stdio.h>
#include <string.h>

#include "estimate/estimate_impl.h"
#include "silica/io.h"

static void src_and_dst(const sl_fit_model *m, const char *suffix, char *src, size_t scap, char *dst, size_t dcap) {
    const char *base = sl_path_basename(m->name);
    char stem[200];
    snprintf(stem, sizeof stem, "%s", base && *base ? base : "model");
    size_t l = strlen(stem);
    if (l > 5 && !strcmp(stem + l - 5, ".json")) stem[l - 5] = 0;
    if (!strcmp(stem, "config")) snprintf(stem, sizeof stem, "model");
    if (m->from_headers || sl_path_exists(m->name)) snprintf(src, scap, "%s", m->name);
    else if (m->repo[0]) snprintf(src, scap, "%s", m->repo);   /* a store name once `silica pull`ed */
    else snprintf(src, scap, "<%s, downloaded>", stem);
    snprintf(dst, dcap, "%s-%s", stem, suffix);
}

static int push(sl_fit_rec *out, size_t cap, size_t *n, const sl_fit_rec *r) {
    if (*n < cap) out[(*n)++] = *r;
    return 0;
}

int sl_fit_recommend(const sl_fit_model *m, const sl_fit_budget *b, int64_t ctx, sl_kv_type kv, sl_fit_rec *out,
                     size_t cap, size_t *n, sl_error *err) {
    *n = 0;
    sl_fit_estimate e;
    int rc = sl_fit_estimate_model(m, ctx, kv, &e, err);
    if (rc) return rc;
    sl_fit_verdict now = sl_fit_judge(b, e.total_bytes);
    if (now == SL_FIT_COMFORTABLE) return 0;
    char src[600], dst[200];
    /* 1. quantization: the best-quality recipe that is comfortable, else the best that is tight */
    size_t nr;
    const sl_fit_recipe *rs = sl_fit_recipes(&nr);
    size_t chosen = nr;
    sl_fit_verdict chosen_v = SL_FIT_NO;
    for (int want = SL_FIT_COMFORTABLE; want <= SL_FIT_TIGHT; want++) {
        bool found = false;
        for (size_t i = 0; i < nr && !found; i++) {
            uint64_t w;
            if ((rc = sl_fit_predict_weights(m, &rs[i], &w, err))) return rc;
            if (w >= m->weights_bytes) continue;
            uint64_t total = fit_total_with_weights(&e, w);
            sl_fit_verdict v = sl_fit_judge(b, total);
            if ((int)v > want) continue;
            found = true;
            chosen = i;
            chosen_v = v;
            sl_fit_rec r = {SL_REC_QUANT, "", total, w, v, "", ""};
            src_and_dst(m, rs[i].id, src, sizeof src, dst, sizeof dst);
            if (rs[i].high_bits) {
                snprintf(r.what, sizeof r.what, "mixed %d/%d-bit (%s), group %d", rs[i].bits, rs[i].high_bits, rs[i].id,
                         rs[i].group);
                snprintf(r.command, sizeof r.command, "silica convert %s %s --to mlx -q --quant-recipe %s", src, dst,
                         rs[i].id);
            } else {
                snprintf(r.what, sizeof r.what, "%d-bit, group %d", rs[i].bits, rs[i].group);
                snprintf(r.command, sizeof r.command, "silica convert %s %s --to mlx -q --q-bits %d --q-group-size %d",
                         src, dst, rs[i].bits, rs[i].group);
            }
            snprintf(r.quality, sizeof r.quality, "%s", rs[i].quality);
            push(out, cap, n, &r);
        }
        if (found) break;
    }
    /* 1b. no recipe of 4 bits or more fits alone: the best one combined with
     * an 8-bit KV cache and the largest context that then is comfortable */
    bool q4_or_better = chosen < nr && rs[chosen].bits >= 4 && chosen_v == SL_FIT_COMFORTABLE;
    for (size_t i = 0; i < nr && !q4_or_better && rs[i].bits >= 4; i++) {
        uint64_t w;
        if ((rc = sl_fit_predict_weights(m, &rs[i], &w, err))) return rc;
        if (w >= m->weights_bytes) continue;
        int64_t best_c = 0;
        uint64_t best_t = 0;
        sl_kv_type k2 = kv == SL_KV_F16 || kv == SL_KV_F32 ? SL_KV_Q8 : kv;
        for (int64_t c = 512; c <= ctx; c *= 2) {
            sl_fit_estimate e2;
            if ((rc = sl_fit_estimate_model(m, c, k2, &e2, err))) return rc;
            uint64_t total = fit_total_with_weights(&e2, w);
            if (sl_fit_judge(b, total) != SL_FIT_COMFORTABLE) break;
            best_c = c;
            best_t = total;
        }
        if (!best_c) continue;
        sl_fit_rec r = {SL_REC_QUANT, "", best_t, w, SL_FIT_COMFORTABLE, "", ""};
        src_and_dst(m, rs[i].id, src, sizeof src, dst, sizeof dst);
        snprintf(r.what, sizeof r.what, "%s + --kv %s + --ctx %lld", rs[i].id, sl_kv_type_name(k2), (long long)best_c);
        snprintf(r.quality, sizeof r.quality, "%s; context limited to %lld tokens", rs[i].quality, (long long)best_c);
        if (rs[i].high_bits)
            snprintf(r.command, sizeof r.command, "silica convert %s %s --to mlx -q --quant-recipe %s", src, dst, rs[i].id);
        else
            snprintf(r.command, sizeof r.command, "silica convert %s %s --to mlx -q --q-bits %d --q-group-size %d", src,
                     dst, rs[i].bits, rs[i].group);
        push(out, cap, n, &r);
        break;
    }
    /* 2. KV-cache quantization */
    if (kv == SL_KV_F16 || kv == SL_KV_F32) {
        for (sl_kv_type k = SL_KV_Q8; k <= SL_KV_Q4; k++) {
            sl_fit_estimate e2;
            if ((rc = sl_fit_estimate_model(m, ctx, k, &e2, err))) return rc;
            sl_fit_verdict v = sl_fit_judge(b, e2.total_bytes);
            if (v >= now) continue;
            sl_fit_rec r = {SL_REC_KV, "", e2.total_bytes, e2.weights_bytes, v, "", ""};
            snprintf(r.what, sizeof r.what, "--kv %s (KV cache %d-bit, group 64)", sl_kv_type_name(k),
                     k == SL_KV_Q8 ? 8 : 4);
            snprintf(r.quality, sizeof r.quality, "%s",
                     k == SL_KV_Q8 ? "small: 8-bit group-wise KV (MLX QuantizedKVCache layout); no published figure "
                                     "in the spec, check with silica logits"
                                   : "noticeable: 4-bit KV drifts from the f16 cache; measure before relying on it");
            snprintf(r.command, sizeof r.command, "silica run %s --ctx %lld --kv %s", m->name, (long long)ctx,
                     sl_kv_type_name(k));
            push(out, cap, n, &r);
            break;
        }
    }
    /* 3. a shorter context: the largest power of two (>= 512) that helps most */
    int64_t best_c = 0;
    sl_fit_verdict best_v = now;
    uint64_t best_t = 0;
    for (int64_t c = 512; c < ctx; c *= 2) {
        sl_fit_estimate e2;
        if ((rc = sl_fit_estimate_model(m, c, kv, &e2, err))) return rc;
        sl_fit_verdict v = sl_fit_judge(b, e2.total_bytes);
        if (v < now && (v <= best_v)) {
            best_c = c;
            best_v = v;
            best_t = e2.total_bytes;
        }
    }
    if (best_c) {
        sl_fit_rec r = {SL_REC_CTX, "", best_t, e.weights_bytes, best_v, "", ""};
        snprintf(r.what, sizeof r.what, "--ctx %lld", (long long)best_c);
        snprintf(r.quality, sizeof r.quality, "none per token; prompts + output limited to %lld tokens",
                 (long long)best_c);
        snprintf(r.command, sizeof r.command, "silica run %s --ctx %lld", m->name, (long long)best_c);
        push(out, cap, n, &r);
    }
    /* 4. macOS: raise the GPU wired limit (never run by silica) */
    uint64_t mb = sl_fit_sysctl_mb(b, e.total_bytes);
    if (mb) {
        sl_fit_budget b2 = *b;
        b2.budget_bytes = mb * SL_MIB;
        sl_fit_rec r = {SL_REC_SYSCTL, "", e.total_bytes, e.weights_bytes, sl_fit_judge(&b2, e.total_bytes), "", ""};
        snprintf(r.what, sizeof r.what, "raise the GPU working-set cap to %llu MiB", (unsigned long long)mb);
        snprintf(r.quality, sizeof r.quality,
                 "none; leaves %.1f GiB for macOS and apps; resets at reboot (Metal rMWSS follows it, llmfit#754)",
                 (double)(b->ram_bytes - mb * SL_MIB) / (double)SL_GIB);
        snprintf(r.command, sizeof r.command, "sudo sysctl iogpu.wired_limit_mb=%llu", (unsigned long long)mb);
        push(out, cap, n, &r);
    }
    return 0;
}

/* Largest power-of-two context in 512..limit whose total keeps verdict `v`
 * with weights w. */
static int max_ctx_for(const sl_fit_model *m, const sl_fit_budget *b, uint64_t w, sl_kv_type kv, sl_fit_verdict v,
                       int64_t *out, sl_error *err) {
    int64_t limit = m->max_ctx > 0 ? m->max_ctx : 131072;
    if (limit > SL_FIT_MAX_CTX) limit = SL_FIT_MAX_CTX;
    *out = 0;
    for (int64_t c = 512; c <= limit; c *= 2) {
        sl_fit_estimate e;
        int rc = sl_fit_estimate_model(m, c, kv, &e, err);
        if (rc) return rc;
        if (sl_fit_judge(b, fit_total_with_weights(&e, w)) > v) break;
        *out = c;
    }
    return 0;
}

int sl_fit_best_setup(const sl_fit_model *m, const sl_fit_budget *b, int64_t ctx, sl_kv_type kv, sl_fit_setup *out,
                      sl_error *err) {
    memset(out, 0, sizeof *out);
    out->verdict = SL_FIT_NO;
    sl_fit_estimate e;
    int rc = sl_fit_estimate_model(m, ctx, kv, &e, err);
    if (rc) return rc;
    size_t nr;
    const sl_fit_recipe *rs = sl_fit_recipes(&nr);
    for (int want = SL_FIT_COMFORTABLE; want <= SL_FIT_TIGHT; want++) {
        for (size_t i = 0; i <= nr; i++) {   /* i == 0: as is; then recipe i-1 */
            uint64_t w = m->weights_bytes;
            if (i > 0) {
                if ((rc = sl_fit_predict_weights(m, &rs[i - 1], &w, err))) return rc;
                if (w >= m->weights_bytes) continue;
            }
            uint64_t total = fit_total_with_weights(&e, w);
            if ((int)sl_fit_judge(b, total) > want) continue;
            out->recipe = i ? &rs[i - 1] : NULL;
            out->weights_bytes = w;
            out->total_bytes = total;
            out->verdict = (sl_fit_verdict)want;
            return max_ctx_for(m, b, w, kv, out->verdict, &out->max_ctx, err);
        }
    }
    out->weights_bytes = m->weights_bytes;
    out->total_bytes = e.total_bytes;
    return 0;
}
