// attn.comp — attention of query head h of token t (position pos = step[0] + t)
// over the keys of its KV head h / (H / KV) (GQA) that the query sees, in
// position order (kvcache.glsl's kv_visible: sinks, then the window or the
// rotating cache's span), each read from its slot (attn_kv.glsl; f32, f16 or
// MLX affine codes dequantized as float(q) * s + b).  The prompt's kernel;
// a few tokens (generation) take attn_split.comp + attn_merge.comp.
// Flash-style online softmax over tiles of 64 keys: each thread scores one
// key (q . k * scale, optional softcap), the tile's maximum rescales the
// running sum and output, and each thread accumulates its own output
// dimensions (d = tid, tid + 64, ...; head_dim <= 512).  One workgroup per (t, h).
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, set = 0, binding = 3) writeonly buffer O { float o[]; };
layout(std430, set = 0, binding = 5) readonly buffer Step { uint step[]; };   // step[0]: the batch's first position
layout(push_constant) uniform P {
    uint H, KV, D, qkv_w, ldo, kv_f32;
    float scale, softcap;
    uint sink, span, win, ring, bits, group, sb_off;
} p;

#include "kvcache.glsl"
#include "attn_kv.glsl"

shared float qs[512];
shared float ps[64];
shared uint slots[64];   // the tile's slots

void main() {
    uint t = gl_WorkGroupID.x, h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, D = p.D;
    uint kvh = h / (p.H / p.KV), pos = step[0] + t, e0 = kvh * D;
    uint s0, ns, r0, nv;   // the visible keys: [s0, s0 + ns) sinks, then [r0, pos]
    kv_visible(pos, p.sink, p.span, p.win, s0, ns, r0, nv);
    for (uint i = tid; i < D; i += 64u) qs[i] = qkv[t * p.qkv_w + h * D + i];
    barrier();
    float m = -1.0 / 0.0, l = 0.0, acc[8];
    for (uint k = 0u; k < 8u; k++) acc[k] = 0.0;
    for (uint k0 = 0u; k0 < nv; k0 += 64u) {
        uint ki = k0 + tid;
        float s = -1.0 / 0.0;
        if (ki < nv) {
            uint slot = kv_slot(ki < ns ? s0 + ki : r0 + (ki - ns), p.sink, p.ring), row = p.KV * D;
            slots[tid] = slot;
            s = 0.0;
            if (p.bits != 0u) {
                for (uint i = 0u; i < D; i++) s += qs[i] * kv_at(0u, slot, e0 + i);
            } else if (p.kv_f32 != 0u) {
                for (uint i = 0u; i < D; i++) s += qs[i] * uintBitsToFloat(kc[slot * row + e0 + i]);
            } else {
                uint w0 = (slot * row + e0) / 2u;
                for (uint i = 0u; i < D / 2u; i++) {
                    vec2 f = unpackHalf2x16(kc[w0 + i]);
                    s += qs[2u * i] * f.x + qs[2u * i + 1u] * f.y;
                }
            }
            s = attn_score(s);
        }
        ps[tid] = s;
        barrier();
        uint nk = min(64u, nv - k0);
        float mt = m;
        for (uint k = 0u; k < nk; k++) mt = max(mt, ps[k]);
        barrier();
        ps[tid] = ki < nv ? exp(s - mt) : 0.0;
        barrier();
        float alpha = exp(m - mt), lt = 0.0;
        for (uint k = 0u; k < nk; k++) lt += ps[k];
        l = l * alpha + lt;
        for (uint k = 0u; k < 8u; k++) {
            uint d = tid + 64u * k;
            if (d >= D) break;
            float a = acc[k] * alpha;
            for (uint jj = 0u; jj < nk; jj++) a += ps[jj] * kv_at(1u, slots[jj], e0 + d);
            acc[k] = a;
        }
        m = mt;
        barrier();
    }
    for (uint k = 0u; k < 8u; k++) {
        uint d = tid + 64u * k;
        if (d < D) o[t * p.ldo + h * D + d] = acc[k] / l;
    }
}
