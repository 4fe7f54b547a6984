/*
 * vk_session.c — the forward pass on a Vulkan device: weights uploaded once,
 * the KV cache and every activation on the device, one command buffer per
 * batch of tokens.  The same pass as src/runtime/session.c, op for op:
 *
 *   x = embed[ids] * embed_scale                       embed.comp
 *   per layer: xb = norm(x)                            rmsnorm.comp
 *     qkv = xb W{q,k,v}^T + b  (one stacked matrix)    matmul.comp, or matmul_tiled.comp for more than
 *                                                      8 tokens (GGUF: x quantized, by rmsnorm.comp)
 *     q, k = rope(norm_head(q, k)); cache[p] = k, v    qkrope.comp
 *     att = softmax(q K^T * scale) V                   attn_split.comp (online softmax, GQA, window, softcap;
 *                                                      generation: over chunks of keys, attn_merge.comp
 *                                                      merging them; GGUF: quantizing att too)
 *     x += att Wo^T + bo   (gemma2/3: x += norm(.))    matmul.comp accumulating (rmsnorm.comp add;
 *                                                      GGUF: att quantized by quantx.comp)
 *     xb = norm(x); gu = xb W{gate,up}^T + b           rmsnorm.comp (generation: in wo's matmul.comp,
 *                                                      its last workgroup), matmul.comp (one stacked)
 *     hid = act(gate) * up; x += hid Wd^T + bd         glu.comp (GGUF: quantizing hid too), matmul.comp
 *                                                      (generation: the next layer's xb = norm(x) too)
 *   logits = softcap(norm(x) Wlm^T)                    rmsnorm.comp, matmul.comp
 *
 * Separate q/k/v (gate/up) weights of one format and layout are stacked by
 * rows into one buffer at upload (phi3's fused layout: outputs [q | k | v]),
 * their biases consecutive in vec; weights of different formats stay apart
 * and run as one dispatch group (vk_join: no barrier between them).  A
 * barrier separates every other pair of consecutive dispatches.
 *
 * A generated token's command buffer is recorded once and submitted again
 * for the next tokens (vk_begin_kept): what changes from token to token
 * lives in host-visible buffers written before each submission (the id,
 * the RoPE rows, the position in `step`), the push constants do not change;
 * it is recorded again when the shape does (a layer's count of key chunks,
 * logits wanted or not, hidden states from the CPU) or another recording
 * rewrote its descriptor sets.  SILICA_GPU_REUSE=0 records every token.
 * SILICA_GPU_FUSE=0: quantx.comp quantizes every GGUF matmul input, not the
 * norm / GLU / attention before it (fused_qk), and rmsnorm.comp runs every
 * norm (norm_fuses; the same bits, for the tests).
 *
 * Invariants: f32 activations; the KV cache has the CPU engine's layout and
 * bytes (shaders/kvcache.glsl): per layer the slots of sl_kv_layer_plan
 * (n_ctx positions, a ring of window + batch - 1 on sliding layers, sinks
 * and a ring with --max-kv-size), rows of f16, f32 or MLX affine 8/4-bit
 * codes with an f16/f32 scale and bias per group, quantized as the CPU
 * engine quantizes (qkrope.comp);
 * the RoPE cos/sin tables are computed on the host by sl_rope_inv_freq, as
 * the CPU engine does, so every RoPE variant is exact.  Weights stay in their
 * stored layout (MLX: codes, then scales (and affine biases), in one buffer;
 * GGUF Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q4_K / Q5_K / Q6_K blocks as in the
 * file).  Weights the engine cannot multiply on the device (MLX nvfp4, GGUF
 * Q2_K / Q3_K / IQ4_NL, ...) are refused with one line naming them, before
 * any device memory is allocated.  Partial offload (first_layer > 0,
 * --gpu-layers): only layers first_layer.. (weights, norms, KV cache) and
 * the head are on the device, no embedding (a tied head gets its own copy);
 * x arrives from the CPU engine through the staging buffer.  Too little
 * device memory names a layer count that fits (vk_upload.c's
 * vk_layers_that_fit).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/vk_state.h"
#include "model/weights.h"
#include "silica/runtime.h"

/* What SILICA_PROFILE counts a dispatch group as (vk_stats' tags). */
enum { T_EMBED, T_NORM, T_QUANTX, T_QKV, T_ROPE, T_ATTN, T_WO, T_GATE_UP, T_GLU, T_DOWN, T_HEAD, T_UPLOAD, T_MERGE,
       T_COUNT };
static const char *const tag_names[T_COUNT] = {"embed", "norm", "quantx", "qkv",  "rope_kv", "attn",   "wo",
                                               "gate_up", "glu", "down",  "head", "upload",  "attn_merge"};
_Static_assert(T_COUNT <= VK_PROF_TAGS, "tags: VK_PROF_TAGS");
static void tag(sl_gpu_session *g, int t) { g->c.tag = t; }

/* ---- the forward pass ---- */

typedef struct mm_push {
    uint32_t fmt, rows, cols, row_bytes, n, x_off, ldx, y_off, ldy;
    int32_t bias_off;
    uint32_t accumulate;
    float softcap;
    uint32_t team, vec;
    uint32_t bits, gs, sfmt, sc_off, bi_off;
    uint32_t norm, norm_w, norm_quant, norm_plus_one;   /* matmul.comp's fused norm (mm_norm) */
    float norm_eps;
    uint32_t norm_cnt;
} mm_push;

/* A norm of y's rows that the matrix-vector kernel's last workgroup runs after them (matmul.comp's
 * fused_norm): by the weights at w_off into g->xb, and xq with a d per qk (0: none). */
typedef struct mm_norm {
    int w_off;
    uint32_t qk;
} mm_norm;

#define MAX_GROUPS 65535u   /* maxComputeWorkGroupCount[0..2] every device has */
#define MV_STEPS 4           /* matmul.comp: steps a lane takes along a row, at least (mv_team) */
#define MV_TEAM_MAX 64u      /* and its widest team by default: wider ones were slower on an H200 (mv_team) */

static bool gguf(const gw *w) { return w->fmt == FMT_Q8_0 || w->fmt == FMT_Q4_0 || w->fmt >= FMT_Q4_1; }
/* Elements per activation scale d of a GGUF matmul's int8 input (xq): 32, 256 (K-quants, the CPU's
 * q8_K), 0: the matmul reads f32 x (not GGUF, or Q5_*: the CPU decodes them to f32). */
static uint32_t xq_group(const gw *w) {
    if (w->fmt == FMT_Q4_K || w->fmt == FMT_Q6_K) return 256;
    return w->fmt == FMT_Q8_0 || w->fmt == FMT_Q4_0 || w->fmt == FMT_Q4_1 ? 32 : 0;
}
/* The xq group (32, 256) a kernel writing a matmul's input of cols writes itself (quantize.glsl) for
 * matmuls reading xq of group q (xq_group; -1: groups that differ): the norms and the GLU any, the attention
 * (a head's blocks, its kernels) 32 alone (any256 false); 0: quantx.comp quantizes (also with
 * SILICA_GPU_FUSE=0: the tests' reference, the same bits). */
static uint32_t fused_qk(const sl_gpu_session *g, int q, uint32_t cols, bool any256) {
    bool ok = g->fuse && (q == 32 || (q == 256 && any256)) && cols % (uint32_t)q == 0;
    return ok ? (uint32_t)q : 0;
}

/* xq = x[t][x_off .. + cols] quantized in 32-element int8 blocks, one d per qk elements (quantx.comp), for
 * n tokens: the input of the GGUF matmuls that follow, quantized once for all their rows. */
static void quantize_x(sl_gpu_session *g, uint32_t cols, const vk_buf *x, uint32_t x_off, uint32_t ldx, int n,
                       uint32_t qk) {
    struct { uint32_t cols, n, x_off, ldx, qk; } q = {cols, (uint32_t)n, x_off, ldx, qk};
    const vk_buf *qb[VK_BINDINGS] = {NULL, x, NULL, NULL, &g->xq, NULL};
    int t = g->c.tag;
    tag(g, T_QUANTX);
    vk_dispatch(&g->c, VK_QUANTX, qb, &q, sizeof q, (cols + 255) / 256, (uint32_t)n, 1);   /* 256 values a workgroup */
    tag(g, t);
}

/* The matrix-vector kernel's team for a row of `steps` lane steps (16-byte
 * dense steps, GGUF quarter blocks, 32-element chunks): the widest power of
 * two that leaves each lane MV_STEPS steps or more, between the subgroup
 * and MV_TEAM_MAX (H200, Vulkan, 1B shapes, tg128 with every row's team
 * fixed: 32 / 64 / 128 / 256 lanes gave Q4_0 282 / 295 / 265 / 219 tok/s,
 * F16 at 64 / 128 338 / 297, by the row (up to 256) 280 and 325); one subgroup on a CPU driver (lavapipe: its lanes are
 * one thread's SIMD lanes, its barriers costly); SILICA_GPU_ROW_THREADS
 * fixes it (tuning, and the tests' wide teams on lavapipe). */
static uint32_t mv_team(const sl_gpu_session *g, uint32_t steps) {
    uint32_t sg = g->c.info.subgroup_size ? g->c.info.subgroup_size : 1, wg = g->c.mv_wg, t = wg;
    if (g->row_threads) t = g->row_threads;
    else if (g->c.info.type && !strcmp(g->c.info.type, "cpu")) t = sg;
    else
        while (t > sg && (t > MV_TEAM_MAX || t * MV_STEPS > steps)) t /= 2;
    return t < sg ? sg : t > wg ? wg : t;
}

/* y[t][y_off + r] (+)= x[t][x_off ..] . W[r] (+ bias) for n tokens: up to
 * VK_MV_TOKENS by the matrix-vector kernel (a team of lanes per row), more by
 * the tiled one (a 64 x 64 tile of rows x tokens per workgroup, shared
 * memory; SILICA_GPU_TILE=2: 128 x 64, matmul_tiled2.comp; SILICA_GPU_TILE=3:
 * 128 x 64, matmul_tiled3.comp, for the int8-activation formats, xq_group)
 * where the device's limits allow it (c.tile), else by the first.
 * GGUF weights read x from xq (quantize_x, or the kernel that wrote x).  nm (the matrix-vector kernel
 * alone): the norm its last workgroup runs. */
static void mm_dispatch(sl_gpu_session *g, const gw *w, const vk_buf *x, uint32_t x_off, uint32_t ldx, vk_buf *y,
                        uint32_t y_off, uint32_t ldy, int n, int bias, bool acc, float softcap, const mm_norm *nm) {
    /* dense rows and x in 16-byte steps (row_vec, load_w / load_x) when every row and x row is 16-byte aligned */
    uint32_t per = w->fmt == FMT_F32 ? 4 : 8;
    bool xvec = x_off % 4 == 0 && ldx % 4 == 0;   /* quantized formats: x alone (MLX, GGUF Q5_*: f32 x reads) */
    bool vec = xvec && (w->fmt > FMT_BF16 || (w->row_bytes % 16 == 0 && w->cols % per == 0));
    uint32_t steps = gguf(w) ? w->cols / 8 : w->fmt >= FMT_AFFINE || !vec ? (w->cols + 31) / 32 : w->cols / per;
    uint32_t team = mv_team(g, steps);
    mm_push p = {w->fmt, w->rows, w->cols, w->row_bytes, (uint32_t)n, x_off, ldx, y_off, ldy, bias, acc, softcap,
                 team, vec, w->bits, w->gs, w->sfmt, w->sc_off, w->bi_off,
                 nm != NULL, nm ? (uint32_t)nm->w_off : 0, nm ? nm->qk : 0, g->cfg->norm_plus_one, g->cfg->norm_eps,
                 g->norm_cnt};
    const vk_buf *b[VK_BINDINGS] = {&w->b, x, y, &g->vec, &g->xq, nm ? &g->xb : NULL};
    bool tiled = (uint32_t)n > VK_MV_TOKENS && g->c.tile, wide = team > g->c.info.subgroup_size || team > VK_MV_NARROW;
    /* matmul.comp: teams of c.mv_rows rows, VK_MV_TOKENS tokens a workgroup (the one-token pipelines: 1) */
    bool one = n == 1;
    bool three = tiled && g->c.tile == 3 && xq_group(w);   /* else tile 1 (g->c.tile 3) */
    uint32_t tile_rows = three ? VK_TILED3_ROWS : g->c.tile == 2 ? VK_TILED2_ROWS : VK_TILED_ROWS;
    uint32_t per_group = tiled ? tile_rows : (wide ? g->c.mv_wg : VK_MV_NARROW) / team * g->c.mv_rows;
    uint32_t tok = tiled ? VK_TILED_TOKENS : one ? 1 : VK_MV_TOKENS;
    uint32_t groups = (w->rows + per_group - 1) / per_group, gr = groups < MAX_GROUPS ? groups : MAX_GROUPS;
    uint32_t gt = ((uint32_t)n + tok - 1) / tok, gz = (groups + MAX_GROUPS - 1) / MAX_GROUPS;
    if (tiled)   /* token tiles x: a row tile's neighbours in dispatch order share its weights (read once, hot) */
        vk_dispatch(&g->c, three ? VK_MATMUL_TILED3 : VK_MATMUL_TILED, b, &p, sizeof p, gt, gr, gz);
    else
        vk_dispatch(&g->c, wide ? (one ? VK_MATMUL_WIDE_1 : VK_MATMUL_WIDE) : one ? VK_MATMUL_1 : VK_MATMUL, b, &p,
                    sizeof p, gr, gt, gz);
}

/* One output of a group of matmuls over the same x: weight, column offset in y, bias (-1: none). */
typedef struct mm_out {
    const gw *w;
    uint32_t y_off;
    int bias;
} mm_out;

/* The xq group size the outputs share (xq_group), 0 when none reads xq, -1 when they differ. */
static int group_xq(const mm_out *o, int k) {
    int q = 0;
    for (int i = 0; i < k; i++) {
        int qi = (int)xq_group(o[i].w);
        if (qi && q && qi != q) return -1;
        if (qi) q = qi;
    }
    return q;
}

/* The k matmuls o[] of the same x (q/k/v, gate/up: disjoint columns of y), with the activations quantized
 * once for all of them where one is GGUF (unless the kernel that wrote x wrote xq too, with their group:
 * xq_ready, fused_qk), run side by side as one dispatch group (no barrier between them: none reads what another writes);
 * outputs whose int8 inputs differ (a d per 32 and per 256) run one after the other, each quantizing.
 * nm: a single output's fused norm (residual_norm). */
static void matmuls(sl_gpu_session *g, const mm_out *o, int k, const vk_buf *x, uint32_t x_off, uint32_t ldx, vk_buf *y,
                    uint32_t ldy, int n, bool acc, float softcap, uint32_t xq_ready, const mm_norm *nm) {
    int q = group_xq(o, k);
    if (q > 0 && (uint32_t)q != xq_ready) quantize_x(g, o[0].w->cols, x, x_off, ldx, n, (uint32_t)q);
    for (int i = 0; i < k; i++) {
        uint32_t qi = xq_group(o[i].w);
        if (q < 0 && qi) quantize_x(g, o[i].w->cols, x, x_off, ldx, n, qi);
        else if (i && q >= 0) vk_join(&g->c);
        mm_dispatch(g, o[i].w, x, x_off, ldx, y, o[i].y_off, ldy, n, o[i].bias, acc, softcap, k == 1 ? nm : NULL);
    }
}

/* y[t] = norm(x[t]) * w (add: y[t] += ...) for n tokens; qk (not with add; fused_qk): xq too, the input
 * of the GGUF matmuls that follow (as quantize_x would write it from y). */
static void rmsnorm(sl_gpu_session *g, const vk_buf *x, uint32_t x_off, vk_buf *y, uint32_t y_off, int w_off, int n,
                    bool add, uint32_t qk) {
    const sl_model_config *c = g->cfg;
    uint32_t d = (uint32_t)c->hidden_size;
    struct { uint32_t d, x_off, ldx, y_off, ldy, w_off, plus_one, add; float eps; uint32_t quant, then, w2_off; } p = {
        d, x_off, d, y_off, d, (uint32_t)w_off, c->norm_plus_one, add, c->norm_eps, add ? 0 : qk, 0, 0};
    const vk_buf *b[VK_BINDINGS] = {x, y, &g->vec, NULL, &g->xq, NULL};
    vk_dispatch(&g->c, VK_RMSNORM, b, &p, sizeof p, (uint32_t)n, 1, 1);
}

/* g->x[t] += norm(g->xo[t]) * w, then g->xb[t] = norm(g->x[t]) * w2 (qk: xq too) in one dispatch: a
 * post-norm (gemma2/3) and the norm after it. */
static void rmsnorm_add_norm(sl_gpu_session *g, int w_off, int w2_off, int n, uint32_t qk) {
    const sl_model_config *c = g->cfg;
    uint32_t d = (uint32_t)c->hidden_size;
    struct { uint32_t d, x_off, ldx, y_off, ldy, w_off, plus_one, add; float eps; uint32_t quant, then, w2_off; } p = {
        d, 0, d, 0, d, (uint32_t)w_off, c->norm_plus_one, 1, c->norm_eps, qk, 1, (uint32_t)w2_off};
    const vk_buf *b[VK_BINDINGS] = {&g->xo, &g->x, &g->vec, &g->xb, &g->xq, NULL};
    tag(g, T_NORM);
    vk_dispatch(&g->c, VK_RMSNORM, b, &p, sizeof p, (uint32_t)n, 1, 1);
}

/* The batch's cos/sin tables (as the CPU engine's rope_tables: same
 * sl_rope_inv_freq, same double-precision cos/sin), global then local. */
static void rope_tables(sl_gpu_session *g, int p0, int n) {
    const sl_model_config *c = g->cfg;
    int half = c->rotary_dim / 2;
    float *t = g->rope.map, inv[1024], af;
    for (int k = 0; k < 2; k++) {
        const sl_rope_config *r = k ? &c->rope_local : &c->rope;
        int64_t seq = r->type == SL_ROPE_LONGROPE ? (int64_t)g->n_ctx : (int64_t)p0 + n;
        sl_rope_inv_freq(r, c->rotary_dim, c->max_position_embeddings, seq, inv, &af);
        float *cs = t + (size_t)(2 * k) * g->batch * half, *sn = cs + (size_t)g->batch * half;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < half; j++) {
                float th = (float)(p0 + i) * inv[j];
                cs[(size_t)i * half + j] = (float)cos((double)th) * af;
                sn[(size_t)i * half + j] = (float)sin((double)th) * af;
            }
    }
}

/* The keys position pos sees on layer l (kvcache.glsl's kv_visible: the sinks within the window, then the
 * window or the span up to pos). */
static uint64_t attn_keys(const sl_gpu_session *g, int l, uint64_t pos) {
    const sl_kv_plan *kp = &g->kvp[l];
    uint64_t sink = (uint64_t)kp->sink, span = (uint64_t)kp->span, win = (uint64_t)kp->win;
    uint64_t s1 = sink < pos + 1 ? sink : pos + 1, s0 = pos + 1 > win ? pos + 1 - win : 0;
    uint64_t r0 = pos + 1 > span ? pos + 1 - span : 0;
    s0 = s0 < s1 ? s0 : s1, r0 = r0 > sink ? r0 : sink;
    return s1 - s0 + (pos + 1 > r0 ? pos + 1 - r0 : 0);
}

#define ATTN_CHUNK 64u          /* keys a chunk of attn_split.comp at least (one tile) */
#define ATTN_DIRECT_KEYS 512u   /* a generated token's keys up to this many: one chunk, one head a workgroup */
#define ATTN_CHUNKS 64u         /* past them: about this many chunks a token, a GQA group's heads a workgroup */
#define ATTN_HEADS_PROMPT 8u    /* prompts' query heads a workgroup (a GQA group's heads share each K/V load) */
#define ATTN_GROUP_TOKENS 16    /* ... of this many tokens at least (fewer: workgroups enough only a head each) */
#define ATTN_MAX_CHUNKS 256u    /* chunks a token at most (attn_merge.comp's) */

/* How attn_split.comp takes a generated token at position last on layer l, a function of its keys alone
 * (never of the device or the batch: every GPU sums the same chunks).  Up to attn_direct keys (512) one
 * chunk, written direct (no merge), one query head a workgroup: enough workgroups in the heads; past them
 * chunks of ATTN_CHUNK keys, doubled until at most ATTN_CHUNKS a token, and a GQA group's heads a
 * workgroup (up to 8), reading each K/V row once.  H100, 16-layer 1B Q4_0: tg128 694 tok/s direct against
 * 675 in 64-key chunks; 4096 keys 537 (64-key chunks, heads together) against 492 (a head each) and 522
 * (256-key chunks).  SILICA_GPU_ATTN_CHUNK / _HEADS fix either, SILICA_GPU_ATTN_DIRECT the threshold. */
static attn_shape attn_shape_at(const sl_gpu_session *g, int l, int last) {
    uint64_t keys = attn_keys(g, l, (uint64_t)last), chunk = g->attn_chunk;
    bool past = keys > g->attn_direct;
    if (!chunk) {
        chunk = past ? ATTN_CHUNK : g->attn_direct;
        while (past && chunk * ATTN_CHUNKS < keys) chunk *= 2;
    }
    attn_shape s = {(uint32_t)chunk, (uint32_t)((keys + chunk - 1) / chunk), g->attn_heads ? g->attn_heads : past ? 8 : 1};
    return s;
}

static bool attn_shape_eq(attn_shape a, attn_shape b) { return a.chunk == b.chunk && a.nc == b.nc && a.hpg == b.hpg; }

/* The session's attention limits: the chunks a token at most (attn_merge.comp's, and the partials'
 * buffer), from the largest cache (its slots bound every layer's visible keys). */
static void attn_plan(sl_gpu_session *g) {
    uint64_t keys = 1;
    for (int l = g->first; l < g->cfg->n_layers; l++) keys = kv_slots(g, l) > keys ? kv_slots(g, l) : keys;
    const char *e = getenv("SILICA_GPU_ATTN_CHUNK");   /* tests: many chunks on a short context */
    uint64_t v = e ? strtoull(e, NULL, 10) : 0;
    g->attn_chunk = v && v <= 0x7fffffffu && (keys + v - 1) / v <= ATTN_MAX_CHUNKS ? (uint32_t)v : 0;
    e = getenv("SILICA_GPU_ATTN_DIRECT");              /* tests: chunks past a few keys */
    v = e ? strtoull(e, NULL, 10) : 0;
    g->attn_direct = v && v <= 0x7fffffffu ? (uint32_t)v : ATTN_DIRECT_KEYS;
    if (g->attn_chunk) g->attn_nc_max = (uint32_t)((keys + g->attn_chunk - 1) / g->attn_chunk);
    else g->attn_nc_max = keys <= g->attn_direct ? 1 : (uint32_t)((keys + ATTN_CHUNK - 1) / ATTN_CHUNK);
    if (!g->attn_chunk && g->attn_nc_max > ATTN_CHUNKS) g->attn_nc_max = ATTN_CHUNKS;
}

/* q/k norm, RoPE and the KV store of n tokens at p0 (step[0]), then their attention: one workgroup per
 * (token, head) over all its keys (prompts), or for a few tokens (generation) split over chunks of keys,
 * the heads of a GQA group together, and merged (flash-decoding; a single chunk needs no merge).  Returns whether the output was also
 * written quantized for the GGUF matmul after it (quant asks: a d per 32, D a multiple of 32). */
static bool attention(sl_gpu_session *g, int l, int n, int p0, bool quant) {
    const sl_model_config *c = g->cfg;
    const glayer *G = &g->L[l];
    uint32_t H = (uint32_t)c->n_heads, KV = (uint32_t)c->n_kv_heads, D = (uint32_t)c->head_dim;
    uint32_t half = (uint32_t)c->rotary_dim / 2, B = (uint32_t)g->batch;
    bool sliding = c->layer_sliding[l];
    const sl_kv_plan *kp = &g->kvp[l];   /* (span, win: at most INT_MAX) */
    uint32_t sink = (uint32_t)kp->sink, ring = (uint32_t)kp->ring, bits = (uint32_t)g->kv_bits, gs = (uint32_t)g->kv_group;
    uint32_t sb_off = (uint32_t)(kv_slots(g, l) * kv_row_bytes(g) / 4), unit = g->kv_unit;   /* words */
    struct { uint32_t H, KV, D, half_rot, adjacent, qk_norm, qn_off, kn_off, plus_one, qkv_w, cs_off, sn_off, kv_f32;
             float eps; uint32_t sink, ring, bits, group, unit, sb_off; } rp = {
        H, KV, D, half, c->rope_adjacent, c->qk_norm, (uint32_t)(G->qn < 0 ? 0 : G->qn), (uint32_t)(G->kn < 0 ? 0 : G->kn),
        c->norm_plus_one, (uint32_t)g->qkv_w, (sliding ? 2 : 0) * B * half, (sliding ? 3 : 1) * B * half,
        g->kv_f32, c->norm_eps, sink, ring, bits, gs, unit, sb_off};
    const vk_buf *b1[VK_BINDINGS] = {&g->qkv, &g->vec, &g->rope, &g->kc[l], &g->vc[l], &g->step};
    tag(g, T_ROPE);
    vk_dispatch(&g->c, VK_QKROPE, b1, &rp, sizeof rp, (uint32_t)n, H + KV * D / unit, 1);
    tag(g, T_ATTN);
    /* generation: chunks of keys (merged), g->attn_heads query heads a workgroup; prompts (enough workgroups
     * in their tokens): one chunk a token (the output direct), from 16 tokens a GQA group's heads sharing
     * each K/V load */
    bool prompt = n > ATTN_SPLIT_TOKENS;
    attn_shape as = prompt ? (attn_shape){0x7fffffffu, 1, n >= ATTN_GROUP_TOKENS ? g->attn_heads_prompt
                                                    : g->attn_heads ? g->attn_heads : 1}
                           : attn_shape_at(g, l, p0 + n - 1);
    uint32_t grp = H / KV, cap = 2048 / D < 8 ? 2048 / D : 8;
    uint32_t hpg = cap < as.hpg ? cap : as.hpg, nc = as.nc, chunk = as.chunk;
    hpg = grp < hpg ? grp : hpg;
    quant = quant && D % 32 == 0;
    bool direct = nc == 1;   /* one chunk (short contexts): the split kernel writes the output, no merge */
    struct { uint32_t H, KV, D, qkv_w, kv_f32; float scale, softcap;
             uint32_t sink, span, win, ring, bits, group, sb_off, chunk, nc_max, hpg, direct, ldo, quant; } sp = {
        H, KV, D, (uint32_t)g->qkv_w, g->kv_f32, c->attn_scale, c->attn_softcap, sink, (uint32_t)kp->span,
        (uint32_t)kp->win, ring, bits, gs, sb_off, chunk, g->attn_nc_max, hpg, direct, H * D, quant};
    const vk_buf *b2[VK_BINDINGS] = {&g->qkv, &g->kc[l], &g->vc[l], direct ? &g->att : &g->part, &g->xq, &g->step};
    vk_dispatch(&g->c, VK_ATTN_SPLIT, b2, &sp, sizeof sp, nc, KV * ((grp + hpg - 1) / hpg), (uint32_t)n);
    if (direct) return quant;
    struct { uint32_t H, D, ldo, nc, nc_max, quant; } mp = {H, D, H * D, nc, g->attn_nc_max, quant};
    const vk_buf *b3[VK_BINDINGS] = {&g->part, NULL, NULL, &g->att, &g->xq, NULL};
    tag(g, T_MERGE);
    vk_dispatch(&g->c, VK_ATTN_MERGE, b3, &mp, sizeof mp, H, (uint32_t)n, 1);
    return quant;
}

/* Layer l's q/k/v matmuls (stacked: one) into o; returns their count, *q the group of the xq that the norm
 * before them writes for them (fused_qk; 0: none). */
static int qkv_outs(const sl_gpu_session *g, int l, mm_out o[3], uint32_t *q) {
    const sl_model_config *c = g->cfg;
    const glayer *G = &g->L[l];
    uint32_t H = (uint32_t)c->n_heads, KV = (uint32_t)c->n_kv_heads, D = (uint32_t)c->head_dim;
    o[0] = (mm_out){&G->wq, 0, G->bq}, o[1] = (mm_out){&G->wk, H * D, G->bk}, o[2] = (mm_out){&G->wv, (H + KV) * D, G->bv};
    if (G->wqkv.rows) o[0] = (mm_out){&G->wqkv, 0, G->bqkv};
    int nq = G->wqkv.rows ? 1 : 3;
    *q = fused_qk(g, group_xq(o, nq), (uint32_t)c->hidden_size, true);
    return nq;
}

/* hid[t] = act(gate[t]) * up[t] for n tokens, from gu[t] = [gate | up]; qk (fused_qk): xq too, the down
 * matmul's input (a d per 32 or per 256), 256 values a workgroup. */
static void glu(sl_gpu_session *g, int n, uint32_t qk) {
    const sl_model_config *c = g->cfg;
    uint32_t I = (uint32_t)c->intermediate_size;
    struct { uint32_t I, n, act, quant; } gp = {I, (uint32_t)n,
                                               c->act == SL_ACT_GELU_TANH ? 1u : c->act == SL_ACT_GELU ? 2u : 0u, qk};
    const vk_buf *gb[VK_BINDINGS] = {&g->gu, &g->hid, NULL, NULL, &g->xq, NULL};
    tag(g, T_GLU);
    if (qk) vk_dispatch(&g->c, VK_GLU, gb, &gp, sizeof gp, (I + 255) / 256, (uint32_t)n, 1);
    else vk_dispatch(&g->c, VK_GLU, gb, &gp, sizeof gp, (I * (uint32_t)n + 63) / 64, 1, 1);
}

/* Whether a batch of n tokens has its residual's norms fused into the matmul before them (the matrix-vector
 * kernel's batches; not with SILICA_GPU_FUSE=0, the tests' reference). */
static bool norm_fuses(const sl_gpu_session *g, int n) { return g->fuse && (uint32_t)n <= VK_MV_TOKENS; }

/* g->x += x . W^T (o: a single output, the residual's matmul), then g->xb = norm(g->x) * w (w_off; qk: xq
 * too), the norm in the matmul's last workgroup where it fuses (norm_fuses), else a dispatch of its own.
 * Returns true: the norm is written. */
static bool residual_norm(sl_gpu_session *g, const mm_out *o, const vk_buf *x, uint32_t ldx, int n, uint32_t xq_ready,
                          int w_off, uint32_t qk) {
    uint32_t Hd = (uint32_t)g->cfg->hidden_size;
    mm_norm nm = {w_off, qk};
    bool fuse = norm_fuses(g, n);
    matmuls(g, o, 1, x, 0, ldx, &g->x, Hd, n, true, 0, xq_ready, fuse ? &nm : NULL);
    if (!fuse) {
        tag(g, T_NORM);
        rmsnorm(g, &g->x, 0, &g->xb, 0, w_off, n, false, qk);
    }
    return true;
}

/* Layer l for n tokens at p0; normed: its input norm was written with the last one's post-norm or by its
 * down matmul's fused norm (xb, and xq where its q/k/v read it).  Returns whether this one wrote the next
 * layer's that way. */
static bool layer(sl_gpu_session *g, int l, int n, int p0, bool normed) {
    const sl_model_config *c = g->cfg;
    const glayer *G = &g->L[l];
    uint32_t Hd = (uint32_t)c->hidden_size, H = (uint32_t)c->n_heads, D = (uint32_t)c->head_dim;
    uint32_t I = (uint32_t)c->intermediate_size, W = (uint32_t)g->qkv_w;
    /* GGUF: the norms, the attention (a d per 32) and the GLU write the next matmuls' quantized input themselves */
    mm_out qkv[3];
    uint32_t q;
    int nq = qkv_outs(g, l, qkv, &q);
    if (!normed) {
        tag(g, T_NORM);
        rmsnorm(g, &g->x, 0, &g->xb, 0, G->attn_norm, n, false, q);
    }
    tag(g, T_QKV);
    matmuls(g, qkv, nq, &g->xb, 0, Hd, &g->qkv, W, n, false, 0, q, NULL);
    mm_out wo = {&G->wo, 0, G->bo};
    mm_out gu[2] = {{&G->wg, 0, G->bg}, {&G->wu, I, G->bu}};
    if (G->wgu.rows) gu[0] = (mm_out){&G->wgu, 0, G->bgu};
    int ng = G->wgu.rows ? 1 : 2;
    uint32_t q_gu = fused_qk(g, group_xq(gu, ng), Hd, true);
    q = attention(g, l, n, p0, fused_qk(g, (int)xq_group(&G->wo), H * D, false) == 32) ? 32 : 0;
    tag(g, T_WO);
    if (G->post_attn >= 0) {
        matmuls(g, &wo, 1, &g->att, 0, H * D, &g->xo, Hd, n, false, 0, q, NULL);
        rmsnorm_add_norm(g, G->post_attn, G->mlp_norm, n, q_gu);
    } else {
        residual_norm(g, &wo, &g->att, H * D, n, q, G->mlp_norm, q_gu);
    }
    tag(g, T_GATE_UP);
    matmuls(g, gu, ng, &g->xb, 0, Hd, &g->gu, 2 * I, n, false, 0, q_gu, NULL);
    q = fused_qk(g, (int)xq_group(&G->wd), I, true);
    glu(g, n, q);
    tag(g, T_DOWN);
    bool post = G->post_mlp >= 0;
    mm_out down = {&G->wd, 0, G->bd};
    bool next = l + 1 < c->n_layers;
    mm_out next_qkv[3];
    uint32_t q_next = 0;
    if (next) qkv_outs(g, l + 1, next_qkv, &q_next);
    if (!post) {   /* the next layer's input norm with this residual add, where it fuses */
        if (next && norm_fuses(g, n)) return residual_norm(g, &down, &g->hid, I, n, q, g->L[l + 1].attn_norm, q_next);
        matmuls(g, &down, 1, &g->hid, 0, I, &g->x, Hd, n, true, 0, q, NULL);
        return false;
    }
    matmuls(g, &down, 1, &g->hid, 0, I, &g->xo, Hd, n, false, 0, q, NULL);
    if (next) {   /* the next layer's input norm with this post-norm */
        rmsnorm_add_norm(g, G->post_mlp, g->L[l + 1].attn_norm, n, q_next);
        return true;
    }
    tag(g, T_NORM);
    rmsnorm(g, &g->xo, 0, &g->x, 0, G->post_mlp, n, true, 0);
    return false;
}

/* The commands of a batch of n tokens (the embedding from ids unless hidden states came), its layers and
 * (logits) the head of rows from first. */
static void record_pass(sl_gpu_session *g, bool embed, int n, int p0, bool logits, int first) {
    const sl_model_config *c = g->cfg;
    uint32_t Hd = (uint32_t)c->hidden_size;
    if (embed) {
        const gw *e = &g->embed;
        struct { uint32_t fmt, cols, row_bytes, ld; float scale; uint32_t bits, gs, sfmt, sc_off, bi_off; } ep = {
            e->fmt, Hd, e->row_bytes, Hd, c->embed_scale, e->bits, e->gs, e->sfmt, e->sc_off, e->bi_off};
        const vk_buf *eb[VK_BINDINGS] = {&g->embed.b, &g->ids, &g->x, NULL, NULL, NULL};
        tag(g, T_EMBED);
        vk_dispatch(&g->c, VK_EMBED, eb, &ep, sizeof ep, (uint32_t)n, 1, 1);
    }
    bool normed = false;
    for (int l = g->first; l < c->n_layers; l++) normed = layer(g, l, n, p0, normed);
    if (logits) {
        int rows = n - first;
        uint32_t q = fused_qk(g, (int)xq_group(&g->lm_head), Hd, true);
        tag(g, T_NORM);
        rmsnorm(g, &g->x, (uint32_t)first * Hd, &g->xb, (uint32_t)first * Hd, g->final_norm, rows, false, q);
        tag(g, T_HEAD);
        mm_out head = {&g->lm_head, 0, -1};
        matmuls(g, &head, 1, &g->xb, (uint32_t)first * Hd, Hd, &g->logits, (uint32_t)c->vocab_size, rows, false,
                c->final_softcap, q, NULL);
    }
}

/* Whether the kept recording runs a token at p0 as asked (hidden states in or not, logits or not): the
 * same chunk count on every layer, none of its descriptor sets rewritten since. */
static bool kept_fits(const sl_gpu_session *g, bool hx, int p0, bool logits) {
    if (!vk_kept_ok(&g->c) || g->kept_hx != hx || g->kept_logits != logits) return false;
    for (int l = g->first; l < g->cfg->n_layers; l++)
        if (!attn_shape_eq(g->kept_attn[l], attn_shape_at(g, l, p0))) return false;
    return true;
}

/* n tokens at p0, from their ids (first == 0) or from the hidden states hx
 * of layer first - 1 (partial offload, uploaded first); logits: NULL, n rows
 * (all) or the last row.  One token: the kept recording where it fits. */
static int forward_batch(sl_gpu_session *g, const int32_t *ids, const float *hx, int n, int p0, bool all, float *logits,
                         sl_error *err) {
    const sl_model_config *c = g->cfg;
    uint32_t Hd = (uint32_t)c->hidden_size;
    int ph = n == 1 ? VK_PHASE_TG : VK_PHASE_PP;
    vk_host_stats *hs = &g->host[ph];
    uint64_t t0 = g->prof ? vk_now_ns() : 0;
    g->c.phase = ph;
    tag(g, T_UPLOAD);
    int rc = hx ? vk_upload(&g->c, &g->staging, &g->x, 0, hx, (uint64_t)n * Hd * sizeof *hx, err) : 0;
    if (rc) return g->c.phase = VK_PHASE_NONE, rc;
    rope_tables(g, p0, n);
    *(uint32_t *)g->step.map = (uint32_t)p0;
    bool embed = !hx && ids;   /* (ids is set whenever hx is not: the test keeps gcc's -Wnonnull from guessing) */
    if (embed) memcpy(g->ids.map, ids, (size_t)n * sizeof *ids);
    int first = all ? 0 : n - 1, rows = n - first;
    bool keep = n == 1 && g->reuse, reuse = keep && kept_fits(g, hx != NULL, p0, logits != NULL);
    uint64_t t1 = t0;
    if (reuse) {
        t1 = g->prof ? vk_now_ns() : 0;
        rc = vk_submit_kept(&g->c, err);
    } else {
        rc = keep ? vk_begin_kept(&g->c, err) : vk_begin(&g->c, err);
        if (!rc) {
            record_pass(g, embed, n, p0, logits != NULL, first);
            t1 = g->prof ? vk_now_ns() : 0;
            rc = vk_submit_wait(&g->c, err);
        }
        if (keep) {   /* the shape it was recorded for */
            g->kept_hx = hx != NULL, g->kept_logits = logits != NULL;
            for (int l = g->first; l < c->n_layers; l++) g->kept_attn[l] = attn_shape_at(g, l, p0);
        }
    }
    g->c.phase = VK_PHASE_NONE;
    if (rc) return rc;
    uint64_t t2 = g->prof ? vk_now_ns() : 0;
    if (logits) memcpy(logits, g->logits.map, (size_t)rows * (size_t)c->vocab_size * sizeof *logits);
    if (g->prof) {
        uint64_t t3 = vk_now_ns();
        hs->tokens += (uint64_t)n, hs->batches++;
        hs->wall_ns += t3 - t0, hs->record_ns += t1 - t0, hs->wait_ns += t2 - t1, hs->copy_ns += t3 - t2;
    }
    return 0;
}

int sl_gpu_session_eval(sl_gpu_session *g, const int32_t *ids, int n, int pos, bool all_logits, float *logits,
                        sl_error *err) {
    size_t V = (size_t)g->cfg->vocab_size;
    for (int i = 0; i < n; i += g->batch) {
        int b = n - i < g->batch ? n - i : g->batch;
        float *out = NULL;
        if (logits && all_logits) out = logits + (size_t)i * V;
        else if (logits && i + b == n) out = logits;
        int rc = forward_batch(g, ids + i, NULL, b, pos + i, all_logits, out, err);
        if (rc) return rc;
    }
    return 0;
}

int sl_gpu_session_eval_hidden(sl_gpu_session *g, const float *x, int n, int pos, bool all_logits, float *logits,
                               sl_error *err) {
    if (n <= 0 || n > g->batch) return sl_errorf(err, SL_EINVAL, "%d hidden-state rows for a batch of %d", n, g->batch);
    return forward_batch(g, NULL, x, n, pos, all_logits, logits, err);
}

/* ---- lifetime ---- */

void sl_gpu_session_free(sl_gpu_session *g) {
    if (!g) return;
    vk_ctx *c = &g->c;
    if (g->prof && c->dev) {
        vk_profile_print(c, g->host, tag_names, T_COUNT);
        if (g->attn_chunk)
            fprintf(stderr, "silica: profile: gpu %s, split attention: chunks of %u keys, at most %u a token\n",
                    c->info.name, g->attn_chunk, g->attn_nc_max);
        else
            fprintf(stderr, "silica: profile: gpu %s, split attention: one chunk up to %u keys, past them chunks of "
                    "%u keys, at most %u a token (longer past %u keys)\n", c->info.name, g->attn_direct, ATTN_CHUNK,
                    g->attn_nc_max, ATTN_CHUNK * ATTN_CHUNKS);
    }
    if (c->dev) vk_session_free_buffers(g);
    vk_ctx_close(c);
    free(g->L);
    free(g->kc);
    free(g->vc);
    free(g->kvp);
    free(g->kept_attn);
    free(g);
}

/* One attempt: the device's session for layers first.. (g NULL when the
 * engine refuses or no device opened; else g as far as it got). */
static int open_layers(const sl_model *m, const sl_gpu_session_opts *o, int first, int batch, sl_gpu_session **gp,
                       sl_error *e) {
    bool none = false;
    int rc = vk_check_supported(m, o, e);
    sl_gpu_session *g = *gp = rc ? NULL : calloc(1, sizeof *g);
    if (!rc && !g) rc = sl_errorf(e, SL_ENOMEM, "out of memory");
    if (!rc && (rc = vk_ctx_open(&g->c, o->device, &none, e)) == 0 && none) rc = SL_EUNSUPPORTED;
    if (rc) return rc;
    const sl_model_config *c = sl_model_get_config(m);
    g->m = m, g->cfg = c, g->n_ctx = o->n_ctx, g->batch = batch, g->kv_f32 = o->kv_dtype == SL_F32;
    g->kv_bits = o->kv_bits, g->kv_group = o->kv_bits ? o->kv_group_size : 0;
    g->kv_unit = kv_unit(c->head_dim, g->kv_group);
    g->first = first;
    g->qkv_w = (c->n_heads + 2 * c->n_kv_heads) * c->head_dim;
    const char *pe = getenv("SILICA_PROFILE");
    g->prof = g->c.prof = pe && *pe && *pe != '0';
    const char *rt = getenv("SILICA_GPU_ROW_THREADS");   /* tuning: a power of two (others: by the row) */
    uint32_t v = rt ? (uint32_t)strtoul(rt, NULL, 10) : 0;
    g->row_threads = v && !(v & (v - 1)) ? v : 0;
    const char *ah = getenv("SILICA_GPU_ATTN_HEADS");   /* tuning: 1 .. 8 (each head's sums alike: the same bits) */
    v = ah ? (uint32_t)strtoul(ah, NULL, 10) : 0;
    g->attn_heads = v >= 1 && v <= 8 ? v : 0;
    g->attn_heads_prompt = v >= 1 && v <= 8 ? v : ATTN_HEADS_PROMPT;
    g->L = calloc((size_t)c->n_layers, sizeof *g->L);
    g->kc = calloc((size_t)c->n_layers, sizeof *g->kc);
    g->vc = calloc((size_t)c->n_layers, sizeof *g->vc);
    g->kvp = calloc((size_t)c->n_layers, sizeof *g->kvp);
    g->kept_attn = calloc((size_t)c->n_layers, sizeof *g->kept_attn);
    if (g->kvp) memcpy(g->kvp, o->kv_plan, (size_t)c->n_layers * sizeof *g->kvp);
    g->kv_pos = o->kv_pos_bytes;
    const char *ru = getenv("SILICA_GPU_REUSE");   /* 0: record every token (tests: the reuse against it) */
    g->reuse = !(ru && !strcmp(ru, "0"));
    const char *fu = getenv("SILICA_GPU_FUSE");   /* 0: quantx.comp quantizes every GGUF matmul's input (tests) */
    g->fuse = !(fu && !strcmp(fu, "0"));
    if (g->kvp) attn_plan(g);
    return !g->L || !g->kc || !g->vc || !g->kvp || !g->kept_attn ? sl_errorf(e, SL_ENOMEM, "out of memory")
                                                                 : vk_upload_model(g, e);
}

int sl_gpu_session_open(const sl_model *m, const sl_gpu_session_opts *o, int batch, sl_gpu_session **out, char *note,
                        size_t note_cap, sl_error *err) {
    *out = NULL;
    if (o->device.kind == SL_DEVICE_CPU) return 0;
    bool autosel = o->device.kind == SL_DEVICE_AUTO;
    sl_error e = {0};
    sl_gpu_session *g = NULL;
    int rc = open_layers(m, o, o->first_layer, batch, &g, &e);
    /* fit_layers: the layers that fit the budget, fewer while the allocator still says no */
    int nl = m->cfg.n_layers, fit = rc == SL_ENOMEM && g && g->c.budget && g->cfg ? vk_layers_that_fit(g) : -1;
    for (int k = fit < nl - o->first_layer ? fit : nl - o->first_layer - 1; o->fit_layers && rc == SL_ENOMEM && k > 0; k--) {
        sl_gpu_session_free(g);
        sl_error e2 = {0};
        if ((rc = open_layers(m, o, nl - k, batch, &g, &e2)) != SL_ENOMEM) e = e2;
    }
    if (!rc) {
        *out = g;
        return 0;
    }
    if (rc == SL_ENOMEM && fit >= 0) {   /* suggest a partial offload that fits */
        size_t k = strlen(e.msg);
        if (fit > 0 && fit < nl - o->first_layer)
            snprintf(e.msg + k, sizeof e.msg - k, "; --gpu-layers %d (of %d) fits", fit, nl);
        else if (fit == 0)
            snprintf(e.msg + k, sizeof e.msg - k, "; not one layer fits: --device cpu");
    }
    sl_gpu_session_free(g);
    if (autosel) {
        snprintf(note, note_cap, "--device auto: %s; running on the CPU", e.msg);
        return 0;
    }
    char dev[32] = "gpu";
    if (o->device.index >= 0) snprintf(dev, sizeof dev, "gpu:%d", o->device.index);
    return sl_errorf(err, rc, "--device %s: %s", dev, e.msg);
}

int sl_gpu_session_first_layer(const sl_gpu_session *g) { return g->first; }
const char *sl_gpu_session_device(const sl_gpu_session *g) { return g->c.info.name; }
uint64_t sl_gpu_session_kv_bytes(const sl_gpu_session *g) { return g->kv_bytes; }
