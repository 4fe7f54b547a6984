/*
 * rope.c — rotary position embedding frequencies for every RoPE variant
 * (default, linear, dynamic NTK, llama3, yarn, longrope), computed as
 * transformers computes them (modeling_rope_utils), including the attention
 * factor that multiplies cos and sin (yarn, longrope).
 *
 * Invariants: inv_freq has rotary_dim/2 entries, rotation pairs are NeoX
 * style (i, i + rotary_dim/2).  Variants that depend on the sequence length
 * (dynamic, longrope) take seq_len = highest position of the forward pass + 1,
 * exactly as transformers' dynamic_rope_update does per forward call.
 */
#include <math.h>

#include "model/model_impl.h"

static double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

static double yarn_corr_dim(double rot, int dim, double base, double maxp) {
    return (dim * log(maxp / (rot * 2.0 * M_PI))) / (2.0 * log(base));
}

void sl_rope_inv_freq(const sl_rope_config *r, int dim, int64_t max_pos, int64_t seq_len, float *inv, float *attn) {
    int half = dim / 2;
    double base = r->theta;
    *attn = 1.0f;
    int64_t orig = r->original_max_pos > 0 ? r->original_max_pos : max_pos;
    if (r->type == SL_ROPE_DYNAMIC) {
        int64_t mp = r->original_max_pos > 0 ? r->original_max_pos : max_pos;
        double s = (double)(seq_len > mp ? seq_len : mp);
        base = base * pow(r->factor * s / (double)mp - (r->factor - 1.0), (double)dim / (double)(dim - 2));
    }
    for (int i = 0; i < half; i++) inv[i] = (float)(1.0 / pow(base, (double)(2 * i) / (double)dim));
    switch (r->type) {
    case SL_ROPE_DEFAULT:
    case SL_ROPE_DYNAMIC: break;
    case SL_ROPE_LINEAR:
        for (int i = 0; i < half; i++) inv[i] = (float)(inv[i] / r->factor);
        break;
    case SL_ROPE_LLAMA3: {
        double lo_wl = (double)orig / r->low_freq_factor, hi_wl = (double)orig / r->high_freq_factor;
        for (int i = 0; i < half; i++) {
            double f = inv[i], wl = 2.0 * M_PI / f;
            if (wl > lo_wl) f = f / r->factor;
            else if (wl >= hi_wl) {
                double smooth = ((double)orig / wl - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
                f = (1.0 - smooth) * f / r->factor + smooth * f;
            }
            inv[i] = (float)f;
        }
        break;
    }
    case SL_ROPE_YARN: {
        double factor = r->factor;
        if (r->original_max_pos > 0) factor = (double)max_pos / (double)r->original_max_pos;
        double af = r->attention_factor;
        if (af <= 0) {
            if (r->mscale > 0 && r->mscale_all_dim > 0)
                af = yarn_mscale(factor, r->mscale) / yarn_mscale(factor, r->mscale_all_dim);
            else
                af = yarn_mscale(factor, 1.0);
        }
        double lo = yarn_corr_dim(r->beta_fast, dim, base, (double)orig);
        double hi = yarn_corr_dim(r->beta_slow, dim, base, (double)orig);
        if (r->truncate) { lo = floor(lo); hi = ceil(hi); }
        if (lo < 0) lo = 0;
        if (hi > dim - 1) hi = dim - 1;
        if (lo == hi) hi += 0.001;
        for (int i = 0; i < half; i++) {
            double ramp = ((double)i - lo) / (hi - lo);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            double extrap = 1.0 - ramp;
            double fe = 1.0 / pow(base, (double)(2 * i) / (double)dim);
            double fi = fe / factor;
            inv[i] = (float)(fi * (1.0 - extrap) + fe * extrap);
        }
        *attn = (float)af;
        break;
    }
    case SL_ROPE_LONGROPE: {
        const float *ext = seq_len > orig ? r->long_factor : r->short_factor;
        for (int i = 0; i < half && i < r->n_factors; i++)
            inv[i] = (float)(1.0 / ((double)ext[i] * pow(base, (double)(2 * i) / (double)dim)));
        double af = r->attention_factor;
        if (af <= 0) {
            double factor = r->original_max_pos > 0 ? (double)max_pos / (double)r->original_max_pos : r->factor;
            af = factor <= 1.0 ? 1.0 : sqrt(1.0 + log(factor) / log((double)orig));
        }
        *attn = (float)af;
        break;
    }
    }
}
