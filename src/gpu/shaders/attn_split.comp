// attn_split.comp — the attention kernel: for a token (generation) split
// over the keys (flash-decoding), for prompts one chunk of all its keys a
// token (chunk 2^31 - 1, direct: enough workgroups in the tokens, and a
// GQA group's heads a workgroup).  Workgroup (c, y, t): token t (position step[0] + t),
// chunk c of its visible keys (kv_visible's order: keys c * chunk .. c *
// chunk + chunk - 1), and up to 8 query heads h0 .. h0 + nh - 1 of one GQA
// group (y = kvh * ngr + r: KV head kvh, the group's r-th run of hpg heads),
// which share every K and V load, in tiles of 64 keys:
//  - scores: thread i scores key i of the tile against the nh queries
//    (q . k * scale, optional softcap; f16 caches with D a multiple of 8:
//    its key's row read 16 bytes a load; else attn_kv.glsl's kv_at element
//    by element);
//  - softmax: each head's tile maximum and sum of exp(s - max) by subgroup
//    reductions, their subgroups' results combined in subgroup order, so
//    every thread holds each head's running maximum m and sum l (online
//    softmax: the tile's weights exp(s - m) in ps, the old sums rescaled by
//    exp(m_old - m_new));
//  - values: the D / 2 pairs of a head's output dimensions (one f16 word of
//    a V row) are W threads' (W = D / 2 <= 64: S = 64 / W slices of the
//    tile's keys, thread tid taking pair tid % W of keys tid / W, + S, ...;
//    W > 64: a thread takes pairs tid, tid + 64, ..), each for all nh
//    heads (a V load serves them all); the slices' sums are added in slice
//    order at the end.
// A thread's sums: nh <= 8 heads times ceil(W / 64) <= 4 pairs (D <= 512),
// held in registers (every index from a constant-bounded loop).
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

#define MP 32u                  // a thread's output pairs: head j's u-th at j * 4 + u (8 heads, 4 pairs a head)
shared float qs[2048];          // the nh queries, head j at j * D; at the end the slices' sums, then the output
shared float ps[8 * 64];        // the tile's weights, head j at j * 64
shared uint slots[64];          // the tile's slots
shared float redm[8 * 64], reds[8 * 64];   // per head and subgroup: the tile's maximum, its sum
shared float hal[8], hls[8];    // per head: the tile's rescale; at the end the sum l

// Key ki's scores against the nh queries (unscaled dot products).
void score_key(uint slot, uint e0, uint nh, inout float s[8]) {
    uint D = p.D, row = p.KV * D;
    if (p.bits == 0u && p.kv_f32 == 0u && D % 8u == 0u) {
        uint q0 = (slot * row + e0) / 8u;
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
    } else {
        for (uint i = 0u; i < D; i++) {
            float kv = kv_at(0u, slot, e0 + i);
            for (uint j = 0u; j < 8u; j++) {
                if (j >= nh) break;
                s[j] += qs[j * D + i] * kv;
            }
        }
    }
}

// The V pair (dimensions 2 w, 2 w + 1 of the KV head at e0) of a slot.
vec2 v_pair(uint slot, uint e0, uint w) {
    if (p.bits == 0u && p.kv_f32 == 0u) return unpackHalf2x16(vc[(slot * p.KV * p.D + e0) / 2u + w]);
    return vec2(kv_at(1u, slot, e0 + 2u * w), kv_at(1u, slot, e0 + 2u * w + 1u));
}

void main() {
    uint c = gl_WorkGroupID.x, y = gl_WorkGroupID.y, t = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x, D = p.D;
    uint G = p.H / p.KV, ngr = (G + p.hpg - 1u) / p.hpg, kvh = y / ngr, r = y % ngr;
    uint h0 = kvh * G + r * p.hpg, nh = min(p.hpg, G - r * p.hpg), e0 = kvh * D, nout = nh * D;
    uint pos = step[0] + t, s0, ns, r0, nv;
    kv_visible(pos, p.sink, p.span, p.win, s0, ns, r0, nv);
    uint kb = min(c * p.chunk, nv), ke = min(kb + p.chunk, nv);
    // the value pairs: W a head, S slices of keys, this thread's slice sl and pairs w0 + 64 u, u < wpt
    uint W = D / 2u, S = W >= 64u ? 1u : 64u / W, wpt = (W + 63u) / 64u;
    uint sl = W >= 64u ? 0u : tid / W, w0 = W >= 64u ? tid : tid % W;
    bool vt = sl < S && w0 < W;   // (64 % W threads past the slices take no pairs)
    for (uint i = tid; i < nout; i += 64u) qs[i] = qkv[t * p.qkv_w + h0 * D + i];
    float hm[8], hl[8];
    for (uint j = 0u; j < 8u; j++) hm[j] = -1.0 / 0.0, hl[j] = 0.0;
    vec2 av[MP];
    for (uint k = 0u; k < MP; k++) av[k] = vec2(0.0);
    uint sg = gl_SubgroupID, nsg = gl_NumSubgroups;
    barrier();
    for (uint k0 = kb; k0 < ke; k0 += 64u) {
        uint ki = k0 + tid, nk = min(64u, ke - k0);
        bool valid = ki < ke;
        float s[8];
        for (uint j = 0u; j < 8u; j++) s[j] = 0.0;
        if (valid) {
            uint slot = kv_slot(ki < ns ? s0 + ki : r0 + (ki - ns), p.sink, p.ring);
            slots[tid] = slot;
            score_key(slot, e0, nh, s);
        }
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
                    vv[u] = w < W ? v_pair(slot, e0, w) : vec2(0.0);
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
    if (tid < nh)
        for (uint j = 0u; j < 8u; j++)
            if (j == tid) hls[j] = hl[j];
    barrier();
    float acc[32];
    for (uint k = 0u; k < 32u; k++) {
        uint o = tid + 64u * k;
        if (o >= nout) break;
        float a = 0.0;
        for (uint q = 0u; q < S; q++) a += qs[q * nout + o];
        acc[k] = a;
    }
    barrier();   // qs is rewritten below
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
