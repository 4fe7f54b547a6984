// attn_split.comp — the attention kernel: for a token (generation) split
// over the keys (flash-decoding), for prompts one chunk of all its keys a
// token (chunk 2^31 - 1, direct: enough workgroups in the tokens, and a
// GQA group's heads a workgroup).  Workgroup (c, y, t): token t (position step[0] + t),
// chunk c of its visible keys (kv_visible's order: keys c * chunk .. c *
// chunk + chunk - 1), and up to 8 query heads h0 .. h0 + nh - 1 of one GQA
// group (y = kvh * ngr + r: KV head kvh, the group's r-th run of hpg heads),
// which share every K and V load, in tiles of 64 keys.  Two paths; in both
// each head's sums run in an order fixed by D alone (any hpg: the same bits).
// Per tile:
//  - slots: thread i finds the cache slot of the tile's key i (slots[]);
//  - K: STAGED path (f16 caches, D a multiple of 8 and at most 128: the
//    default cache): the tile's K rows (this KV head's D halves, R = D / 8
//    16-byte words a row) loaded by all 64 threads at once, consecutive
//    threads reading consecutive words (R loads a thread, issued back to
//    back, with this thread's first 8 V words: one wait on memory a tile),
//    into ks4 (rows of R + 1 words: no bank conflicts), then thread i scores
//    key i from there; GENERIC path (8 / 4-bit or f32 caches, other D):
//    thread i reads key i's row itself (attn_kv.glsl's kv_at, element by
//    element).  A score is q . k * scale, optionally softcapped;
//  - softmax: each head's tile maximum and sum of exp(s - max) by subgroup
//    reductions, their subgroups' results combined in subgroup order, so
//    every thread holds each head's running maximum m and sum l (online
//    softmax: the tile's weights exp(s - m) in ps, the old sums rescaled by
//    exp(m_old - m_new));
//  - values: STAGED: thread (e, sl) = (tid % R, tid / R) owns dimensions
//    8e .. 8e + 7 (one 16-byte V word) of the nh heads for keys sl, sl + S,
//    .. of the tile (S = 64 / R slices), reading its V words straight from
//    memory 8 at a time (R consecutive threads read one head row); GENERIC:
//    the D / 2 pairs of a head's output dimensions (one f16 word of a V row)
//    are W threads' (W = D / 2 <= 64: S = 64 / W slices of the tile's keys,
//    thread tid taking pair tid % W of keys tid / W, + S, ...; W > 64: a
//    thread takes pairs tid, tid + 64, ..).  A V load serves all nh heads;
//    the slices' sums are added in slice order at the end.
// A thread's sums: nh <= 8 heads times 8 dimensions (STAGED) or ceil(W / 64)
// <= 4 pairs (GENERIC, D <= 512), held in registers (every index from a
// constant-bounded loop).
// Per head it writes the chunk's partial softmax to part[((t * H + h) *
// nc_max + c) * (D + 2)]: m (the chunk's maximum score), l = sum exp(s - m),
// then acc[d] = sum exp(s - m) v[d]; a chunk past the token's keys writes m =
// -inf, l = 0.  attn_merge.comp combines the chunks.  With direct (a single
// chunk: short contexts) it writes the output itself instead, acc / l at o[t
// * ldo + h * D + d] (binding 3 is then the output), and with quant (D a
// multiple of 32) its 32-value blocks quantized for the GGUF matmul after it
// (quantize.glsl), as attn_merge.comp would: no merge dispatch.  The chunk
// size is the session's (vk_session.c's attn_plan: fixed by the context size,
// not by the device).  nh * D <= 2048.  The push constants are filled by
// vk_session.c's attention().
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Part { float part[]; };   // (direct: the output)
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(std430, set = 0, binding = 5) readonly buffer Step { uint step[]; };   // step[0]: the batch's first position
layout(push_constant) uniform P {
    uint H, KV, D, qkv_w, kv_f32;
    float scale, softcap;
    uint sink, span, win, ring, bits, group, sb_off, chunk, nc_max, hpg, direct, ldo, quant;
} p;

#include "kvcache.glsl"
#include "attn_kv.glsl"
#include "quantize.glsl"
layout(std430, set = 0, binding = 1) readonly buffer K4 { uvec4 kc4[]; };   // K, 16 bytes a load
layout(std430, set = 0, binding = 2) readonly buffer V4 { uvec4 vc4[]; };   // V, 16 bytes a load

#define MP 32u                  // GENERIC: a thread's output pairs: head j's u-th at j * 4 + u (8 heads, 4 pairs a head)
#define RS_MAX 17u              // STAGED: a K row's 16-byte words in ks4 at most (R <= 16, + 1 of padding)
shared float qs[2048];          // the nh queries, head j at j * D; GENERIC: at the end the slices' sums, then the output
shared float ps[8 * 64];        // the tile's weights, head j at j * 64
shared uint slots[64];          // the tile's slots
shared float redm[8 * 64], reds[8 * 64];   // per head and subgroup: the tile's maximum, its sum
shared float hal[8], hls[8];    // per head: the tile's rescale; at the end the sum l
shared uvec4 ks4[64 * RS_MAX];  // STAGED: the tile's K rows (key i at i * (R + 1)); at the end the slices' sums

// This invocation's place (set once by main).
uint tid, kvh, e0, nh, nout, sg, nsg, g_s0, g_ns, g_r0;

// The cache slot of visible key ki.
uint key_slot(uint ki) { return kv_slot(ki < g_ns ? g_s0 + ki : g_r0 + (ki - g_ns), p.sink, p.ring); }

// GENERIC: a key's scores against the nh queries (unscaled dot products): f16 caches with D a
// multiple of 8 its row read 16 bytes a load, others element by element.
void score_generic(uint slot, inout float s[8]) {
    uint D = p.D;
    if (p.bits == 0u && p.kv_f32 == 0u && D % 8u == 0u) {
        uint q0 = (slot * p.KV * D + e0) / 8u;
        for (uint i = 0u; i < D / 8u; i++) {
            uvec4 w = kc4[q0 + i];
            vec2 f0 = unpackHalf2x16(w.x), f1 = unpackHalf2x16(w.y), f2 = unpackHalf2x16(w.z), f3 = unpackHalf2x16(w.w);
            for (uint j = 0u; j < 8u; j++) {
                if (j >= nh) break;
                uint b = j * D + 8u * i;
                s[j] += qs[b] * f0.x + qs[b + 1u] * f0.y + qs[b + 2u] * f1.x + qs[b + 3u] * f1.y
                      + qs[b + 4u] * f2.x + qs[b + 5u] * f2.y + qs[b + 6u] * f3.x + qs[b + 7u] * f3.y;
            }
        }
        return;
    }
    for (uint i = 0u; i < D; i++) {
        float kv = kv_at(0u, slot, e0 + i);
        for (uint j = 0u; j < 8u; j++) {
            if (j >= nh) break;
            s[j] += qs[j * D + i] * kv;
        }
    }
}

// STAGED: tile key `key`'s scores from its row in ks4 (R words).
void score_staged(uint key, uint R, inout float s[8]) {
    uint D = p.D;
    for (uint i = 0u; i < 16u; i++) {
        if (i >= R) break;
        uvec4 w = ks4[key * (R + 1u) + i];
        vec2 f0 = unpackHalf2x16(w.x), f1 = unpackHalf2x16(w.y), f2 = unpackHalf2x16(w.z), f3 = unpackHalf2x16(w.w);
        for (uint j = 0u; j < 8u; j++) {
            if (j >= nh) break;
            uint b = j * D + 8u * i;
            s[j] += qs[b] * f0.x + qs[b + 1u] * f0.y + qs[b + 2u] * f1.x + qs[b + 3u] * f1.y
                  + qs[b + 4u] * f2.x + qs[b + 5u] * f2.y + qs[b + 6u] * f3.x + qs[b + 7u] * f3.y;
        }
    }
}

// GENERIC: the V pair (dimensions 2 w, 2 w + 1 of the KV head at e0) of a slot.
vec2 v_pair(uint slot, uint w) {
    if (p.bits == 0u && p.kv_f32 == 0u) return unpackHalf2x16(vc[(slot * p.KV * p.D + e0) / 2u + w]);
    return vec2(kv_at(1u, slot, e0 + 2u * w), kv_at(1u, slot, e0 + 2u * w + 1u));
}

// The tile's online softmax: s holds this thread's key's raw scores (valid: it has a key).  Leaves
// the weights exp(s - m) in ps, each head's rescale of the old sums in hal, and the running maxima
// hm and sums hl updated in every thread.
void tile_softmax(inout float s[8], bool valid, inout float hm[8], inout float hl[8]) {
    for (uint j = 0u; j < 8u; j++) {
        if (j >= nh) break;
        s[j] = valid ? attn_score(s[j]) : -1.0 / 0.0;
        float m = subgroupMax(s[j]);
        if (subgroupElect()) redm[j * 64u + sg] = m;
    }
    barrier();
    for (uint j = 0u; j < 8u; j++) {
        if (j >= nh) break;
        float mt = hm[j];
        for (uint g = 0u; g < nsg; g++) mt = max(mt, redm[j * 64u + g]);
        float e = valid ? exp(s[j] - mt) : 0.0, al = exp(hm[j] - mt);
        ps[j * 64u + tid] = e;
        float l = subgroupAdd(e);
        if (subgroupElect()) reds[j * 64u + sg] = l;
        if (tid == 0u) hal[j] = al;
        hl[j] *= al;
        hm[j] = mt;
    }
    barrier();
    for (uint j = 0u; j < 8u; j++) {
        if (j >= nh) break;
        float lt = 0.0;
        for (uint g = 0u; g < nsg; g++) lt += reds[j * 64u + g];
        hl[j] += lt;
    }
}

// STAGED: keys kb .. ke - 1, their sums (per head and dimension, slices added in order) into acc
// (output o = tid + 64 k at acc[k]).
void tiles_staged(uint kb, uint ke, inout float hm[8], inout float hl[8], out float acc[32]) {
    uint D = p.D, R = D / 8u, rs = R + 1u, S = 64u / R, KP = (64u + S - 1u) / S;
    uint e = tid % R, sl = tid / R, row4 = p.KV * R, hb = kvh * R;
    bool vt = sl < S;   // (64 % R threads past the slices take no keys)
    float av[64];       // head j's dimension 8 e + i at j * 8 + i
    for (uint k = 0u; k < 64u; k++) av[k] = 0.0;
    for (uint k0 = kb; k0 < ke; k0 += 64u) {
        uint nk = min(64u, ke - k0);
        if (tid < nk) slots[tid] = key_slot(k0 + tid);
        barrier();
        uvec4 vr[8];
        for (uint b = 0u; b < 16u; b += 8u) {   // K words tid + 64 u: key (tid + 64 u) / R, word % R
            if (b >= R) break;
            uvec4 kr[8];
            for (uint u = 0u; u < 8u; u++) {
                uint i = tid + 64u * (b + u), key = i / R;
                kr[u] = b + u < R && key < nk ? kc4[slots[key] * row4 + hb + i % R] : uvec4(0u);
            }
            if (b == 0u)   // the first 8 V words, in the same wave
                for (uint u = 0u; u < 8u; u++) {
                    uint key = sl + S * u;
                    vr[u] = vt && u < KP && key < nk ? vc4[slots[key] * row4 + hb + e] : uvec4(0u);
                }
            for (uint u = 0u; u < 8u; u++) {
                uint i = tid + 64u * (b + u);
                if (b + u < R) ks4[(i / R) * rs + i % R] = kr[u];
            }
        }
        barrier();
        float s[8];
        for (uint j = 0u; j < 8u; j++) s[j] = 0.0;
        bool valid = tid < nk;
        if (valid) score_staged(tid, R, s);
        tile_softmax(s, valid, hm, hl);
        for (uint j = 0u; j < 8u; j++) {
            if (j >= nh) break;
            float al = hal[j];
            for (uint i = 0u; i < 8u; i++) av[j * 8u + i] *= al;
        }
        for (uint m0 = 0u; m0 < 16u; m0 += 8u) {
            if (m0 >= KP) break;
            if (m0 > 0u)
                for (uint u = 0u; u < 8u; u++) {
                    uint key = sl + S * (m0 + u);
                    vr[u] = vt && m0 + u < KP && key < nk ? vc4[slots[key] * row4 + hb + e] : uvec4(0u);
                }
            for (uint u = 0u; u < 8u; u++) {
                uint key = sl + S * (m0 + u);
                if (!vt || m0 + u >= KP || key >= nk) break;
                vec2 f0 = unpackHalf2x16(vr[u].x), f1 = unpackHalf2x16(vr[u].y);
                vec2 f2 = unpackHalf2x16(vr[u].z), f3 = unpackHalf2x16(vr[u].w);
                for (uint j = 0u; j < 8u; j++) {
                    if (j >= nh) break;
                    float w = ps[j * 64u + key];
                    uint a = j * 8u;
                    av[a] += w * f0.x; av[a + 1u] += w * f0.y; av[a + 2u] += w * f1.x; av[a + 3u] += w * f1.y;
                    av[a + 4u] += w * f2.x; av[a + 5u] += w * f2.y; av[a + 6u] += w * f3.x; av[a + 7u] += w * f3.y;
                }
            }
        }
        barrier();   // slots, ks4, ps, redm, reds and hal are rewritten by the next tile
    }
    // the slices' sums through ks4 (slice sl, head j, word e: two words at ((sl * nh + j) * R + e) * 2)
    if (vt)
        for (uint j = 0u; j < 8u; j++) {
            if (j >= nh) break;
            uint a = j * 8u, o = ((sl * nh + j) * R + e) * 2u;
            ks4[o] = floatBitsToUint(vec4(av[a], av[a + 1u], av[a + 2u], av[a + 3u]));
            ks4[o + 1u] = floatBitsToUint(vec4(av[a + 4u], av[a + 5u], av[a + 6u], av[a + 7u]));
        }
    barrier();
    for (uint k = 0u; k < 32u; k++) {
        uint o = tid + 64u * k, j = o / D, d = o % D;
        if (o >= nout) break;
        float a = 0.0;
        for (uint q = 0u; q < S; q++) a += uintBitsToFloat(ks4[((q * nh + j) * R + d / 8u) * 2u + (d % 8u) / 4u][d % 4u]);
        acc[k] = a;
    }
}

// GENERIC: the same for any cache (kv_at) and D.
void tiles_generic(uint kb, uint ke, inout float hm[8], inout float hl[8], out float acc[32]) {
    uint D = p.D;
    // the value pairs: W a head, S slices of keys, this thread's slice sl and pairs w0 + 64 u, u < wpt
    uint W = D / 2u, S = W >= 64u ? 1u : 64u / W, wpt = (W + 63u) / 64u;
    uint sl = W >= 64u ? 0u : tid / W, w0 = W >= 64u ? tid : tid % W;
    bool vt = sl < S && w0 < W;   // (64 % W threads past the slices take no pairs)
    vec2 av[MP];
    for (uint k = 0u; k < MP; k++) av[k] = vec2(0.0);
    for (uint k0 = kb; k0 < ke; k0 += 64u) {
        uint nk = min(64u, ke - k0);
        bool valid = tid < nk;
        float s[8];
        for (uint j = 0u; j < 8u; j++) s[j] = 0.0;
        if (valid) {
            uint slot = key_slot(k0 + tid);
            slots[tid] = slot;
            score_generic(slot, s);
        }
        tile_softmax(s, valid, hm, hl);
        if (vt) {
            for (uint j = 0u; j < 8u; j++) {
                if (j >= nh) break;
                float al = hal[j];
                for (uint u = 0u; u < 4u; u++) {
                    if (u >= wpt) break;
                    av[j * 4u + u] *= al;
                }
            }
            for (uint jj = sl; jj < nk; jj += S) {
                uint slot = slots[jj];
                vec2 vv[4];
                for (uint u = 0u; u < 4u; u++) {
                    if (u >= wpt) break;
                    uint w = w0 + 64u * u;
                    vv[u] = w < W ? v_pair(slot, w) : vec2(0.0);
                }
                for (uint j = 0u; j < 8u; j++) {
                    if (j >= nh) break;
                    float e = ps[j * 64u + jj];
                    for (uint u = 0u; u < 4u; u++) {
                        if (u >= wpt) break;
                        av[j * 4u + u] += e * vv[u];
                    }
                }
            }
        }
        barrier();   // ps, slots, redm, reds and hal are rewritten by the next tile
    }
    // the slices' sums into qs (slice sl, head j, dimension d at (sl * nh + j) * D + d), added in slice order
    if (vt)
        for (uint j = 0u; j < 8u; j++) {
            if (j >= nh) break;
            for (uint u = 0u; u < 4u; u++) {
                uint w = w0 + 64u * u;
                if (u >= wpt || w >= W) break;
                qs[(sl * nh + j) * D + 2u * w] = av[j * 4u + u].x;
                qs[(sl * nh + j) * D + 2u * w + 1u] = av[j * 4u + u].y;
            }
        }
    barrier();
    for (uint k = 0u; k < 32u; k++) {
        uint o = tid + 64u * k;
        if (o >= nout) break;
        float a = 0.0;
        for (uint q = 0u; q < S; q++) a += qs[q * nout + o];
        acc[k] = a;
    }
}

void main() {
    uint c = gl_WorkGroupID.x, y = gl_WorkGroupID.y, t = gl_WorkGroupID.z, D = p.D;
    tid = gl_LocalInvocationID.x;
    uint G = p.H / p.KV, ngr = (G + p.hpg - 1u) / p.hpg, r = y % ngr;
    kvh = y / ngr;
    uint h0 = kvh * G + r * p.hpg;
    nh = min(p.hpg, G - r * p.hpg);
    e0 = kvh * D;
    nout = nh * D;
    sg = gl_SubgroupID;
    nsg = gl_NumSubgroups;
    uint pos = step[0] + t, nv;
    kv_visible(pos, p.sink, p.span, p.win, g_s0, g_ns, g_r0, nv);
    uint kb = min(c * p.chunk, nv), ke = min(kb + p.chunk, nv);
    for (uint i = tid; i < nout; i += 64u) qs[i] = qkv[t * p.qkv_w + h0 * D + i];
    float hm[8], hl[8], acc[32];
    for (uint j = 0u; j < 8u; j++) hm[j] = -1.0 / 0.0, hl[j] = 0.0;
    barrier();
    if (p.bits == 0u && p.kv_f32 == 0u && D % 8u == 0u && D <= 128u) tiles_staged(kb, ke, hm, hl, acc);
    else tiles_generic(kb, ke, hm, hl, acc);
    if (tid < nh)
        for (uint j = 0u; j < 8u; j++)
            if (j == tid) hls[j] = hl[j];
    barrier();   // hls is read, qs rewritten below
    if (p.direct != 0u) {   // the only chunk: the heads' output (qs holds it for the blocks)
        for (uint k = 0u; k < 32u; k++) {
            uint o = tid + 64u * k, j = o / D, d = o % D;
            if (o >= nout) break;
            float a = acc[k] / hls[j];
            part[t * p.ldo + (h0 + j) * D + d] = a;
            qs[o] = a;
        }
        if (p.quant == 0u) return;
        barrier();
        for (uint b = tid; b < nout / 32u; b += 64u) {
            float v[32];
            for (uint i = 0u; i < 32u; i++) v[i] = qs[b * 32u + i];
            quantize_block(v, (t * (p.H * D / 32u) + h0 * D / 32u + b) * 9u);
        }
        return;
    }
    for (uint k = 0u; k < 32u; k++) {
        uint o = tid + 64u * k, j = o / D, d = o % D;
        if (o >= nout) break;
        part[((t * p.H + h0 + j) * p.nc_max + c) * (D + 2u) + 2u + d] = acc[k];
    }
    if (tid < nh) {
        uint b = ((t * p.H + h0 + tid) * p.nc_max + c) * (D + 2u);
        for (uint j = 0u; j < 8u; j++)
            if (j == tid) part[b] = hm[j], part[b + 1u] = hl[j];
    }
}
