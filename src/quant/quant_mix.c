/*
 * quant_mix.c — llama-quantize's named quantization mixes (Q4_K_M, Q5_K_S,
 * Q3_K_L, ...): which GGUF type each tensor of a model gets.
 *
 * The rules are llama.cpp's src/llama-quant.cpp (llama_tensor_get_type and
 * tensor_type_fallback, no importance matrix, no overrides), restated:
 *  - only tensors of 2+ dimensions whose name ends in "weight" are
 *    quantized, never norms, expert gates, position / token-type embeddings
 *    or the small conv / RWKV / multimodal tensors listed in k_never;
 *  - output.weight (and token_embd.weight when the head is tied, i.e. there
 *    is no output.weight) becomes Q6_K, or Q8_0 when the mix is Q8_0 or its
 *    rows do not fit the mix's block (or the model is a Falcon);
 *  - attn_v (and fused attn_qkv / attn_kv_b) and ffn_down get more bits by
 *    layer position: use_more_bits(i, n) = i < n/8 || i >= 7n/8 ||
 *    (i - n/8) % 3 == 2 picks the first and last eighth and every third
 *    layer between (Q4_K_M / Q5_K_M -> Q6_K); Q3_K_M, Q3_K_L, Q4_K_S, Q2_K
 *    and IQ4_NL have their own bumps (attn_output too), with GQA >= 4,
 *    70B-class and 8-expert models treated apart;
 *  - a type whose block does not divide the row length falls back
 *    (Q2_K, Q3_K -> Q4_0; Q4_K -> Q5_0; Q5_K -> Q5_1; Q6_K -> Q8_0), and to
 *    F16 when even that does not fit.  llama.cpp stops with an error for a
 *    32-element type whose row is not a multiple of 32; silica writes F16
 *    and reports it like any other fallback.
 * Layer order is llama.cpp's: tensors sorted by block number, then name
 * (its weights_map), and the attn_v / ffn_down counters advance in that
 * order.  --pure skips the mix rules (every quantizable tensor gets the
 * base type) but keeps the fallback.
 *
 * Invariants: no allocation beyond one index array; every choice is a
 * type sl_q_gguf_quantize can write (or F16/BF16/F32).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "quant/quant_impl.h"

/* name, llama_ftype, base type, alias target (llama-quantize's QUANT_OPTIONS) */
static const sl_gguf_mix k_mixes[] = {
    {"Q4_0", 2, SL_Q4_0, NULL},     {"Q4_1", 3, SL_Q4_1, NULL},     {"Q5_0", 8, SL_Q5_0, NULL},
    {"Q5_1", 9, SL_Q5_1, NULL},     {"Q2_K", 10, SL_Q2_K, NULL},    {"Q3_K", 12, SL_Q3_K, "Q3_K_M"},
    {"Q3_K_S", 11, SL_Q3_K, NULL},  {"Q3_K_M", 12, SL_Q3_K, NULL},  {"Q3_K_L", 13, SL_Q3_K, NULL},
    {"IQ4_NL", 25, SL_IQ4_NL, NULL}, {"Q4_K", 15, SL_Q4_K, "Q4_K_M"}, {"Q4_K_S", 14, SL_Q4_K, NULL},
    {"Q4_K_M", 15, SL_Q4_K, NULL},  {"Q5_K", 17, SL_Q5_K, "Q5_K_M"}, {"Q5_K_S", 16, SL_Q5_K, NULL},
    {"Q5_K_M", 17, SL_Q5_K, NULL},  {"Q6_K", 18, SL_Q6_K, NULL},    {"Q8_0", 7, SL_Q8_0, NULL},
    {"F16", 1, SL_F16, NULL},       {"BF16", 32, SL_BF16, NULL},    {"F32", 0, SL_F32, NULL},
};
enum { F_Q4_0 = 2, F_Q4_1 = 3, F_Q8_0 = 7, F_Q5_0 = 8, F_Q5_1 = 9, F_Q2_K = 10, F_Q3_K_S = 11, F_Q3_K_M = 12,
       F_Q3_K_L = 13, F_Q4_K_S = 14, F_Q4_K_M = 15, F_Q5_K_S = 16, F_Q5_K_M = 17, F_Q6_K = 18, F_IQ4_NL = 25 };

const sl_gguf_mix *sl_gguf_mix_at(size_t i) { return i < sizeof k_mixes / sizeof *k_mixes ? &k_mixes[i] : NULL; }

const sl_gguf_mix *sl_gguf_mix_find(const char *name) {
    for (size_t i = 0; name && i < sizeof k_mixes / sizeof *k_mixes; i++)
        if (!strcasecmp(k_mixes[i].name, name)) return &k_mixes[i];
    return NULL;
}

/* ---- which tensors are quantized, and their category ---- */

typedef enum { C_TOKEN_EMBD, C_ATTN_Q, C_ATTN_V, C_ATTN_K, C_ATTN_QKV, C_ATTN_KV_B, C_ATTN_OUT, C_FFN_UP,
               C_FFN_GATE, C_FFN_DOWN, C_OUTPUT, C_OTHER } category;

static bool has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static category category_of(const char *n) {
    if (!strcmp(n, "output.weight")) return C_OUTPUT;
    if (!strcmp(n, "token_embd.weight") || !strcmp(n, "per_layer_token_embd.weight")) return C_TOKEN_EMBD;
    static const struct { const char *sub; category c; } k[] = {
        {"attn_qkv.weight", C_ATTN_QKV}, {"attn_kv_b.weight", C_ATTN_KV_B}, {"attn_v.weight", C_ATTN_V},
        {"attn_k.weight", C_ATTN_K},     {"attn_q.weight", C_ATTN_Q},       {"attn_output.weight", C_ATTN_OUT},
        {"ffn_up", C_FFN_UP},            {"ffn_gate", C_FFN_GATE},          {"ffn_down", C_FFN_DOWN},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        if (has(n, k[i].sub)) return k[i].c;
    return C_OTHER;
}

static bool is_attn_v(category c) { return c == C_ATTN_V || c == C_ATTN_QKV || c == C_ATTN_KV_B; }

/* substrings llama.cpp never quantizes (tensor_allows_quantization) */
static const char *const k_never[] = {
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
    "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd",
    "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
    "mm.a.code_embd",
};

bool sl_gguf_mix_quantizable(const char *name, int ndim, const int64_t *shape) {
    int nd = 0;   /* ggml_n_dims: trailing (here: leading) dimensions of 1 do not count */
    for (int d = 0; d < ndim; d++)
        if (shape[d] > 1) {
            nd = ndim - d;
            break;
        }
    size_t len = strlen(name);
    if (nd < 2 || len < 6 || strcmp(name + len - 6, "weight") != 0) return false;
    if (!strcmp(name, "position_embd.weight") || !strcmp(name, "token_types.weight")) return false;
    for (size_t i = 0; i < sizeof k_never / sizeof *k_never; i++)
        if (has(name, k_never[i])) return false;
    return true;
}

/* ---- the mix rules ---- */

typedef struct mix_state {
    const sl_gguf_mix_model *m;
    int ftype;
    bool falcon, is70b;
    int n_gqa, n_attn_v, i_attn_v, i_ffn_down, n_layer;
} mix_state;

static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static sl_dtype attn_v_type(mix_state *s, sl_dtype t) {
    int f = s->ftype;
    if (f == F_Q2_K) t = s->n_gqa >= 4 ? SL_Q4_K : SL_Q3_K;
    else if (f == F_Q3_K_M) t = s->i_attn_v < 2 ? SL_Q5_K : SL_Q4_K;
    else if (f == F_Q3_K_L) t = SL_Q5_K;
    else if (f == F_IQ4_NL && s->n_gqa >= 4) t = SL_Q5_K;
    else if ((f == F_Q4_K_M || f == F_Q5_K_M) && more_bits(s->i_attn_v, s->n_attn_v)) t = SL_Q6_K;
    else if (f == F_Q4_K_S && s->i_attn_v < 4) t = SL_Q5_K;
    if (s->is70b && (t == SL_Q3_K || t == SL_Q4_K)) t = SL_Q5_K;   /* 8 heads share attn_v: a cheap boost */
    if (s->m->n_expert == 8) t = SL_Q8_0;
    s->i_attn_v++;
    return t;
}

static sl_dtype ffn_down_type(mix_state *s, const char *name, sl_dtype t) {
    int f = s->ftype, i = s->i_ffn_down, n = s->n_layer;
    if (s->m->n_expert > 1 && sscanf(name, "blk.%d.", &i) != 1) i = s->i_ffn_down;   /* experts: layer from the name */
    bool umb = more_bits(i, n);
    if (f == F_Q2_K) t = SL_Q3_K;
    else if (f == F_Q3_K_M) t = i < n / 16 ? SL_Q5_K : !s->falcon || umb ? SL_Q4_K : SL_Q3_K;
    else if (f == F_Q3_K_L) t = s->falcon ? SL_Q4_K : SL_Q5_K;
    else if (f == F_Q4_K_M) {
        if (s->falcon) t = i < n / 16 ? SL_Q6_K : umb ? SL_Q5_K : SL_Q4_K;
        else if (umb) t = SL_Q6_K;
    } else if (i < n / 8 && f == F_IQ4_NL) t = SL_Q5_K;
    else if (f == F_Q5_K_M && umb) t = SL_Q6_K;
    else if (f == F_Q4_K_S && !s->falcon && i < n / 8) t = SL_Q5_K;
    s->i_ffn_down++;
    return t;
}

static sl_dtype attn_output_type(const mix_state *s, sl_dtype t) {
    int f = s->ftype;
    if (s->falcon) return f == F_Q3_K_L ? SL_Q4_K : t;
    if (s->m->n_expert == 8)
        return f == F_Q2_K || f == F_Q3_K_S || f == F_Q3_K_M || f == F_IQ4_NL || f == F_Q4_K_S || f == F_Q4_K_M
                   ? SL_Q5_K : t;
    if (f == F_Q2_K) return SL_Q3_K;
    if (f == F_Q3_K_M) return SL_Q4_K;
    if (f == F_Q3_K_L) return SL_Q5_K;
    return t;
}

static sl_dtype rule_type(mix_state *s, const char *name, int64_t ne0, bool tied, sl_dtype t) {
    category c = category_of(name);
    if (c == C_OUTPUT || (tied && c == C_TOKEN_EMBD)) {
        if (s->falcon || ne0 % (int64_t)sl_dtype_get(t)->block_elems != 0) return SL_Q8_0;
        return t != SL_Q8_0 ? SL_Q6_K : t;
    }
    if (c == C_TOKEN_EMBD) return t;
    if (is_attn_v(c)) return attn_v_type(s, t);
    if (c == C_ATTN_K) return s->m->n_expert == 8 ? SL_Q8_0 : t;
    if (c == C_FFN_DOWN) return ffn_down_type(s, name, t);
    if (c == C_ATTN_OUT) return attn_output_type(s, t);
    return t;
}

static sl_dtype fallback_of(sl_dtype t) {
    switch (t) {
    case SL_Q2_K:
    case SL_Q3_K: return SL_Q4_0;
    case SL_Q4_K: return SL_Q5_0;
    case SL_Q5_K: return SL_Q5_1;
    case SL_Q6_K: return SL_Q8_0;
    default: return SL_F16;   /* llama.cpp: "no tensor type fallback is defined" (an error there) */
    }
}

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) l = -1;
    return l;
}

typedef struct ordered { int layer; const char *name; size_t i; } ordered;

static int cmp_llama_order(const void *a, const void *b) {
    const ordered *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool is_70b(const char *arch, const sl_gguf_mix_model *m) {
    if (!arch) return false;
    if (!strcmp(arch, "llama")) return m->n_layer == 80 && m->n_head != m->n_head_kv;
    if (!strcmp(arch, "qwen2") || !strcmp(arch, "deci") || !strcmp(arch, "olmo")) return m->n_layer == 80;
    if (!strcmp(arch, "jais2")) return m->n_layer == 68;
    return false;
}

int sl_gguf_mix_plan(const sl_gguf_mix *mix, bool pure, const sl_gguf_mix_model *m, const sl_gguf_mix_tensor *t,
                     size_t n, sl_gguf_mix_choice *out, sl_error *err) {
    ordered *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) order[i] = (ordered){layer_of(t[i].name), t[i].name, i};
    qsort(order, n, sizeof *order, cmp_llama_order);
    mix_state s = {.m = m, .ftype = mix->ftype, .n_layer = m->n_layer};
    s.falcon = m->arch && !strcmp(m->arch, "falcon");
    s.is70b = is_70b(m->arch, m);
    s.n_gqa = m->n_head_kv > 0 ? m->n_head / m->n_head_kv : 0;
    bool tied = true;
    for (size_t i = 0; i < n; i++) {
        category c = category_of(t[i].name);
        if (is_attn_v(c)) s.n_attn_v++;
        if (c == C_OUTPUT) tied = false;
    }
    const sl_dtype_info *base = sl_dtype_get(mix->base);
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k].i;
        const sl_gguf_mix_tensor *x = &t[i];
        sl_gguf_mix_choice *o = &out[i];
        o->type = o->wanted = x->type;
        o->quantize = sl_gguf_mix_quantizable(x->name, x->ndim, x->shape);
        if (!o->quantize) continue;
        int64_t ne0 = x->ndim ? x->shape[x->ndim - 1] : 0;
        sl_dtype ty = mix->base;
        if (base->is_quant) {
            if (!pure) ty = rule_type(&s, x->name, ne0, tied, ty);
            o->wanted = ty;
            if (ne0 % (int64_t)sl_dtype_get(ty)->block_elems != 0) {
                ty = fallback_of(ty);
                if (ne0 % (int64_t)sl_dtype_get(ty)->block_elems != 0) ty = SL_F16;
            }
        } else {
            o->wanted = ty;
        }
        o->type = ty;
    }
    free(order);
    return 0;
}

/* Llama-3-8B's tensor shapes (32 layers, 4096 wide, GQA 4, FFN 14336,
 * vocab 128256, untied head): the model llama-quantize's own table quotes. */
double sl_gguf_mix_reference_bpw(const sl_gguf_mix *mix) {
    enum { L = 32 };
    static const struct { const char *name; int64_t rows, cols; } k_layer[] = {
        {"attn_k.weight", 1024, 4096},     {"attn_norm.weight", 1, 4096},     {"attn_output.weight", 4096, 4096},
        {"attn_q.weight", 4096, 4096},     {"attn_v.weight", 1024, 4096},     {"ffn_down.weight", 4096, 14336},
        {"ffn_gate.weight", 14336, 4096},  {"ffn_norm.weight", 1, 4096},      {"ffn_up.weight", 14336, 4096},
    };
    enum { PER = sizeof k_layer / sizeof *k_layer, N = 3 + L * PER };
    static char names[N][40];
    sl_gguf_mix_tensor t[N];
    sl_gguf_mix_choice c[N];
    size_t n = 0;
    const struct { const char *name; int64_t rows, cols; } top[3] = {
        {"token_embd.weight", 128256, 4096}, {"output.weight", 128256, 4096}, {"output_norm.weight", 1, 4096}};
    for (int i = 0; i < 3; i++, n++) {
        snprintf(names[n], sizeof names[n], "%s", top[i].name);
        t[n] = (sl_gguf_mix_tensor){names[n], 2, {top[i].rows, top[i].cols}, SL_F16};
    }
    for (int l = 0; l < L; l++)
        for (int j = 0; j < PER; j++, n++) {
            snprintf(names[n], sizeof names[n], "blk.%d.%s", l, k_layer[j].name);
            t[n] = (sl_gguf_mix_tensor){names[n], 2, {k_layer[j].rows, k_layer[j].cols}, SL_F16};
        }
    for (size_t i = 0; i < n; i++)
        if (t[i].shape[0] == 1) t[i].ndim = 1, t[i].shape[0] = t[i].shape[1], t[i].type = SL_F32;
    sl_gguf_mix_model m = {.arch = "llama", .n_layer = L, .n_head = 32, .n_head_kv = 8};
    if (sl_gguf_mix_plan(mix, false, &m, t, n, c, NULL)) return 0;
    double bits = 0, elems = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)t[i].shape[0] * (t[i].ndim == 2 ? (double)t[i].shape[1] : 1.0);
        const sl_dtype_info *d = sl_dtype_get(c[i].type);
        bits += e / d->block_elems * d->block_bytes * 8.0;
        elems += e;
    }
    return bits / elems;
}
