/*
 * estimate.c — resident memory of a model at a context length: weights
 * (exact from headers), KV cache, the engine's compute buffers and runtime
 * overhead; the decode-speed ceiling's bytes per token; budgets, margins and
 * the comfortable / tight / no verdict; quantization-size prediction.
 *
 * Formulas (bits per weight: llama.cpp ggml/src/ggml-common.h block sizes and MLX
 * affine groups; KV and buffers as the session allocates them; docs/ARCHITECTURE.md):
 *   KV  = Σ_layers positions · sl_kv_pos_bytes (runtime.h: the session's own
 *         formulas, so estimate and allocation agree byte for byte)
 *         pos_bytes = 2 · n_kv_heads · row, row: f16 2·D, f32 4·D; q8/q4 MLX
 *         group-wise (group 64, or 32 when head_dim is not a multiple of 64 —
 *         phi3's 96; f16 scale + bias per group): D·bits/8 + 4·D/group
 *         positions = sl_kv_layer_slots: ctx; sliding layers
 *         min(ctx, window + batch - 1); --max-kv-size N: N + batch - 1
 *   compute = the f32 activation buffers session.c allocates for a batch of
 *         SL_FIT_BATCH tokens and SL_FIT_THREADS threads, plus logits
 *   overhead = SL_FIT_BASE_OVERHEAD + 128 B per vocabulary entry (tokenizer)
 *   resident weights = weights, except that an untied embedding counts only
 *         the pages of ctx rows (weights are mmap'd; lookups touch rows)
 * Calibrated with part6/scripts/fit_vs_rss.py against silica run's peak RSS.
 *   budget (Mac) = recommendedMaxWorkingSetSize rule; margin = max(1 GiB, 5 %)
 * Invariants: all sums overflow-checked; ctx in 1..SL_FIT_MAX_CTX.
 */
#include <stdio.h>
#include <string.h>

#include "estimate/estimate_impl.h"
#include "silica/io.h"
#include "silica/runtime.h"

static const char *const k_kv_names[] = {"f16", "f32", "q8", "q4"};

const char *sl_kv_type_name(sl_kv_type t) { return (unsigned)t < 4 ? k_kv_names[t] : "?"; }

int sl_kv_type_parse(const char *s, sl_kv_type *out) {
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, k_kv_names[i]) == 0) {
            *out = (sl_kv_type)i;
            return 0;
        }
    return SL_EINVAL;
}

static int check_ctx(const sl_fit_model *m, int64_t ctx, sl_error *err) {
    if (ctx < 1 || ctx > SL_FIT_MAX_CTX)
        return sl_errorf(err, SL_EINVAL, "%s: context length %lld is outside 1..%d", m->name, (long long)ctx,
                         SL_FIT_MAX_CTX);
    return 0;
}

int sl_fit_kv_bytes_ex(const sl_fit_model *m, int64_t ctx, const sl_fit_kv *kv, uint64_t *out, sl_error *err) {
    int rc = check_ctx(m, ctx, err);
    if (rc) return rc;
    if (kv->max_kv < 0 || kv->max_kv > SL_KV_MAX_SIZE)
        return sl_errorf(err, SL_EINVAL, "%s: max KV size %lld is outside 1..%d", m->name, (long long)kv->max_kv,
                         SL_KV_MAX_SIZE);
    int bits = kv->type == SL_KV_Q8 ? 8 : kv->type == SL_KV_Q4 ? 4 : 0, group;
    int keep = kv->keep < 0 ? 0 : kv->keep ? kv->keep : SL_KV_KEEP;   /* as sl_session_opts.kv_keep */
    uint64_t per_pos, a, b, total;
    if ((rc = sl_kv_group_size(m->n_kv_heads, m->head_dim, bits, kv->group_size, &group, err)) ||
        (rc = sl_kv_pos_bytes(m->n_kv_heads, m->head_dim,
                              kv->type == SL_KV_F32 || (bits && kv->f32_scales) ? SL_F32 : SL_F16, bits, group,
                              &per_pos, err))) {
        sl_error_prefix(err, "%s: ", m->name);
        return rc;
    }
    int batch = sl_kv_batch(SL_FIT_BATCH, ctx, kv->max_kv);
    uint64_t full = (uint64_t)sl_kv_layer_slots(ctx, batch, kv->max_kv, keep, 0);
    uint64_t slide = (uint64_t)sl_kv_layer_slots(ctx, batch, kv->max_kv, keep, m->sliding_window);
    uint64_t n_slide = (uint64_t)m->n_sliding_layers, n_full = (uint64_t)m->n_layers - n_slide;
    if (!sl_mul_u64(per_pos, full, &a) || !sl_mul_u64(a, n_full, &a) || !sl_mul_u64(per_pos, slide, &b) ||
        !sl_mul_u64(b, n_slide, &b) || !sl_add_u64(a, b, &total))
        return sl_errorf(err, SL_EINVAL, "%s: KV cache for %lld tokens overflows", m->name, (long long)ctx);
    *out = total;
    return 0;
}

int sl_fit_kv_bytes(const sl_fit_model *m, int64_t ctx, sl_kv_type kv, uint64_t *out, sl_error *err) {
    sl_fit_kv k = {kv, 0, 0, 0, false};
    return sl_fit_kv_bytes_ex(m, ctx, &k, out, err);
}

/* f32 buffers of src/runtime/session.c for one batch + per-thread scratch + logits.
 * ctx: the most positions one query sees. */
static uint64_t compute_bytes(const sl_fit_model *m, int64_t ctx) {
    uint64_t B = SL_FIT_BATCH, Hd = (uint64_t)m->hidden, I = (uint64_t)m->intermediate;
    uint64_t H = (uint64_t)m->n_heads, KV = (uint64_t)m->n_kv_heads, D = (uint64_t)m->head_dim;
    uint64_t per_tok = 3 * Hd + (H + 2 * KV) * D + H * D + 3 * I + 2 * D;
    uint64_t maxcols = Hd;
    if (I > maxcols) maxcols = I;
    if (H * D > maxcols) maxcols = H * D;
    if ((uint64_t)ctx + D > maxcols) maxcols = (uint64_t)ctx + D;
    maxcols = (maxcols + 15) & ~(uint64_t)15;
    return 4 * (B * per_tok + SL_FIT_THREADS * maxcols + 2 * (uint64_t)m->vocab);
}

int sl_fit_estimate_model(const sl_fit_model *m, int64_t ctx, sl_kv_type kv, sl_fit_estimate *e, sl_error *err) {
    sl_fit_kv k = {kv, 0, 0, 0, false};
    return sl_fit_estimate_ex(m, ctx, &k, e, err);
}

int sl_fit_estimate_ex(const sl_fit_model *m, int64_t ctx, const sl_fit_kv *kv, sl_fit_estimate *e, sl_error *err) {
    memset(e, 0, sizeof *e);
    e->ctx = ctx;
    e->kv = kv->type;
    int rc = sl_fit_kv_bytes_ex(m, ctx, kv, &e->kv_bytes, err);
    if (rc) return rc;
    e->weights_bytes = m->weights_bytes;
    /* weights are mmap'd: an untied embedding only has the pages of the rows
     * looked up resident — at most ctx rows, a page each */
    e->weights_resident_bytes = m->weights_bytes;
    if (!m->tied && m->vocab > 0 && m->embed_bytes <= m->weights_bytes) {
        uint64_t row = m->embed_bytes / (uint64_t)m->vocab, touched;
        row = (row + 4095) / 4096 * 4096;
        if (sl_mul_u64(row, (uint64_t)ctx, &touched) && touched < m->embed_bytes)
            e->weights_resident_bytes = m->weights_bytes - m->embed_bytes + touched;
    }
    e->compute_bytes = compute_bytes(m, kv->max_kv > 0 && kv->max_kv < ctx ? kv->max_kv : ctx);
    e->overhead_bytes = SL_FIT_BASE_OVERHEAD + 128ull * (uint64_t)m->vocab;
    uint64_t t;
    if (!sl_add_u64(e->weights_resident_bytes, e->kv_bytes, &t) || !sl_add_u64(t, e->compute_bytes, &t) ||
        !sl_add_u64(t, e->overhead_bytes, &t))
        return sl_errorf(err, SL_EINVAL, "%s: total size overflows", m->name);
    e->total_bytes = t;
    /* per generated token: every weight once, except that an untied
     * embedding contributes one row; then the whole KV cache */
    uint64_t w = m->weights_bytes;
    if (!m->tied && m->embed_bytes <= w && m->vocab > 0) w = w - m->embed_bytes + m->embed_bytes / (uint64_t)m->vocab;
    e->read_per_token_bytes = w + e->kv_bytes;
    return 0;
}

uint64_t fit_total_with_weights(const sl_fit_estimate *e, uint64_t w) {
    uint64_t res = w;
    if (e->weights_bytes && e->weights_resident_bytes < e->weights_bytes)
        res = (uint64_t)((double)w * ((double)e->weights_resident_bytes / (double)e->weights_bytes));
    return e->total_bytes - e->weights_resident_bytes + res;
}

/* ---- budgets and verdicts ---- */

const char *sl_fit_verdict_name(sl_fit_verdict v) {
    return v == SL_FIT_COMFORTABLE ? "comfortable" : v == SL_FIT_TIGHT ? "tight" : "no";
}

sl_fit_budget sl_fit_budget_apple(uint64_t ram, uint64_t wired_limit_mb) {
    sl_fit_budget b = {ram, sl_mem_apple_budget(ram, wired_limit_mb), true, false};
    return b;
}

uint64_t sl_fit_margin(const sl_fit_budget *b) {
    uint64_t five = b->budget_bytes / 20;
    return five > SL_GIB ? five : SL_GIB;
}

static bool le_sum(uint64_t a, uint64_t b, uint64_t limit) {
    uint64_t s;
    return sl_add_u64(a, b, &s) && s <= limit;
}

sl_fit_verdict sl_fit_judge(const sl_fit_budget *b, uint64_t total) {
    uint64_t m = sl_fit_margin(b);
    bool os_ok = b->whole_ram || le_sum(total, SL_FIT_OS_RESERVE, b->ram_bytes);
    if (le_sum(total, m, b->budget_bytes) && os_ok) return SL_FIT_COMFORTABLE;
    if (total <= b->budget_bytes) return SL_FIT_TIGHT;
    if (b->apple && b->ram_bytes > SL_FIT_OS_RESERVE && le_sum(total, m, b->ram_bytes - SL_FIT_OS_RESERVE))
        return SL_FIT_TIGHT;
    return SL_FIT_NO;
}

uint64_t sl_fit_sysctl_mb(const sl_fit_budget *b, uint64_t total) {
    if (!b->apple || b->ram_bytes <= SL_FIT_OS_RESERVE) return 0;
    uint64_t need, m = sl_fit_margin(b);
    if (!sl_add_u64(total, m, &need) || need <= b->budget_bytes) return 0;
    uint64_t cap = b->ram_bytes - SL_FIT_OS_RESERVE;
    if (need > cap) return 0;
    uint64_t mb = (need + SL_MIB - 1) / SL_MIB;
    mb = (mb + 255) / 256 * 256;
    if (mb * SL_MIB > cap) mb = cap / SL_MIB;
    return mb;
}

/* ---- quantization ---- */

/* Published quality costs: llama.cpp tools/perplexity/README.md (LLaMA-3-8B
 * scoreboard, wikitext-2) and mlx-lm's quantization notes; part4/README.md. */
static const sl_fit_recipe k_recipes[] = {
    {"q8", 8, 64, 0,
     "~lossless: llama.cpp q8_0 on Llama-3-8B dPPL +0.04%, KLD 0.0014; MLX Qwen3-4B MMLU-Pro 63.85 vs 64.05 bf16"},
    {"q6", 6, 64, 0, "very small: llama.cpp q6_K dPPL +0.35%, KLD 0.0055; MLX Qwen3-4B MMLU-Pro 63.53 vs 64.05"},
    {"q5", 5, 64, 0, "small: llama.cpp q5_K_M dPPL +0.9%, KLD 0.011; MLX Qwen3-4B MMLU-Pro 62.38 vs 64.05"},
    {"mixed_4_6", 4, 64, 6,
     "moderate: mlx-lm#202 Qwen3-8B mixed 4/6-bit PPL +7.5% vs bf16 (plain 4-bit g64: +24%); llama.cpp q4_K_M +2.8%"},
    {"q4g32", 4, 32, 0, "moderate: mlx-lm#202 Qwen3-8B 4-bit g32 PPL +16% vs bf16; MLX Qwen3-4B MMLU-Pro 61.46 vs 64.05"},
    {"q4", 4, 64, 0, "noticeable: mlx-lm#202 Qwen3-8B 4-bit g64 PPL +24% vs bf16; MLX Qwen3-4B MMLU-Pro 60.72 (-3.3)"},
    {"mixed_3_6", 3, 64, 6, "large: between 3- and 4-bit; llama.cpp q3_K_M dPPL +10.5%, KLD 0.10 on Llama-3-8B"},
    {"q3", 3, 64, 0, "large: llama.cpp q3_K_M dPPL +10.5%, KLD 0.10 on Llama-3-8B; check with a KLD spot test"},
    {"mixed_2_6", 2, 64, 6, "severe: llama.cpp q2_K dPPL +56%, KLD 0.45 on Llama-3-8B; often unusable"},
};

const sl_fit_recipe *sl_fit_recipes(size_t *n) {
    *n = sizeof k_recipes / sizeof k_recipes[0];
    return k_recipes;
}

int fit_weight_bytes(const sl_fit_weight *w, const sl_fit_recipe *r, uint32_t fb, uint64_t *out, sl_error *err) {
    uint64_t p;
    if (!sl_mul_u64(w->rows, w->cols, &p)) return sl_errorf(err, SL_EINVAL, "%s: size overflows", w->name);
    if (!p) {   /* scales/biases of an already-quantized source: replaced */
        *out = 0;
        return 0;
    }
    int bits = r->high_bits && w->high_bits ? r->high_bits : r->bits;
    if (!w->linear || w->rows < 2 || w->cols % (uint64_t)r->group != 0) {
        if (!sl_mul_u64(p, fb, out)) return sl_errorf(err, SL_EINVAL, "%s: size overflows", w->name);
        return 0;
    }
    uint64_t packed, groups, sb;
    if (!sl_mul_u64(p, (uint64_t)bits, &packed) || !sl_mul_u64(w->rows, w->cols / (uint64_t)r->group, &groups) ||
        !sl_mul_u64(groups, 2 * (uint64_t)fb, &sb) || !sl_add_u64(packed / 8, sb, out))
        return sl_errorf(err, SL_EINVAL, "%s: size overflows", w->name);
    return 0;
}

int sl_fit_predict_weights(const sl_fit_model *m, const sl_fit_recipe *r, uint64_t *out, sl_error *err) {
    uint64_t total = 0;
    for (size_t i = 0; i < m->n_weights; i++) {
        uint64_t b = 0;
        int rc = fit_weight_bytes(&m->weights[i], r, m->float_bytes, &b, err);
        if (rc) return rc;
        if (!sl_add_u64(total, b, &total)) return sl_errorf(err, SL_EINVAL, "%s: size overflows", m->name);
    }
    *out = total;
    return 0;
}
