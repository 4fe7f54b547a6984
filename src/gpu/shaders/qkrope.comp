// qkrope.comp — after the q/k/v matmul, per token t of qkv[t] = [q heads |
// k heads | v heads]: optional RMSNorm over head_dim (qwen3, gemma3), then
// RoPE with the batch's cos/sin table (cs[t][i], sn[t][i], i < rotary_dim/2,
// computed on the host by the same code as the CPU engine: every RoPE
// variant), on pairs (i, i + rot/2), or (2i, 2i+1) for GGUF's permuted Q/K
// rows.  Workgroup (t, h < H): q head h, written back.  Workgroup (t, H + u):
// the `unit` consecutive K/V row elements from element u * unit (whole k
// heads: unit = D, or with a quantized cache lcm(D, group) <= 1024, so that
// groups spanning heads lie in one workgroup) are roped and stored with the
// matching v heads into the layer's KV cache at position step[0] + t, in the
// layout of kvcache.glsl: f32, f16 pairs, or MLX affine codes computed as
// the CPU engine does (src/quant/quant_affine.c, mlx's CPU quantize): f16
// cache values rounded to f16 first, per group mn, mx = min, max;
// s = max((mx - mn) / n, 1e-7), negated unless |mn| > |mx|; edge = mn or mx;
// q0 = rint(edge / s); if q0 != 0 { s = edge / q0; b = edge } else b = 0;
// q = clamp(rint(clamp((x - b) / s, -1, n + 1)), 0, n); the scale and bias
// stored rounded to the cache dtype.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) readonly buffer Vec { float vec[]; };
layout(std430, set = 0, binding = 2) readonly buffer Rope { float rope[]; };
layout(std430, set = 0, binding = 3) buffer K { uint kc[]; };
layout(std430, set = 0, binding = 4) buffer V { uint vc[]; };
layout(std430, set = 0, binding = 5) readonly buffer Step { uint step[]; };   // step[0]: the batch's first position
layout(push_constant) uniform P {
    uint H, KV, D, half_rot, adjacent, qk_norm, qn_off, kn_off, plus_one, qkv_w, cs_off, sn_off, kv_f32;
    float eps;
    uint sink, ring, bits, group, unit, sb_off;
} p;

#include "kvcache.glsl"

shared float head[1024];   // q: one head; k: the unit's roped keys
shared float vals[1024];   // the unit's values
shared float red[64];
shared float gsc[32], gbi[32];   // the unit's groups (unit / group <= 1024 / 32): scale, bias (f32, for the codes)

// Head hh of token t (a q head when hh < H, else a k head) normed and roped into head[off ..].
void rope_head(uint t, uint hh, uint off) {
    uint tid = gl_LocalInvocationID.x, D = p.D, base = t * p.qkv_w + hh * D;
    for (uint i = tid; i < D; i += 64u) head[off + i] = qkv[base + i];
    barrier();
    if (p.qk_norm != 0u) {
        float ss = 0.0;
        for (uint i = tid; i < D; i += 64u) ss += head[off + i] * head[off + i];
        red[tid] = ss;
        barrier();
        for (uint s = 32u; s > 0u; s >>= 1) {
            if (tid < s) red[tid] += red[tid + s];
            barrier();
        }
        float r = 1.0 / sqrt(red[0] / float(D) + p.eps);
        uint wo = hh < p.H ? p.qn_off : p.kn_off;
        for (uint i = tid; i < D; i += 64u) {
            float w = vec[wo + i];
            head[off + i] = p.plus_one != 0u ? (head[off + i] * r) * (1.0 + w) : w * (head[off + i] * r);
        }
        barrier();
    }
    uint cb = p.cs_off + t * p.half_rot, sb = p.sn_off + t * p.half_rot;
    for (uint i = tid; i < p.half_rot; i += 64u) {
        uint ia = off + (p.adjacent != 0u ? 2u * i : i), ib = off + (p.adjacent != 0u ? 2u * i + 1u : i + p.half_rot);
        float a = head[ia], b = head[ib], c = rope[cb + i], s = rope[sb + i];
        head[ia] = a * c - b * s;
        head[ib] = b * c + a * s;
    }
    barrier();
}

float unit_val(bool value, uint i) { return value ? vals[i] : head[i]; }

// The unit's groups of K (value false) or V: scales and biases into gsc / gbi (one thread a group),
// stored at the slot's group words; then the codes, a word a thread.
void store_quantized(bool value, uint slot, uint e0) {
    uint tid = gl_LocalInvocationID.x, G = p.group, ng = p.unit / G, row = p.KV * p.D;
    float n = float((1u << p.bits) - 1u);
    if (tid < ng) {
        float mn = 1.0 / 0.0, mx = -1.0 / 0.0;
        for (uint i = tid * G; i < tid * G + G; i++) {
            float w = unit_val(value, i);
            mn = w < mn ? w : mn;
            mx = w > mx ? w : mx;
        }
        precise float s = (mx - mn) / n;
        s = s < 1e-7 ? 1e-7 : s;
        bool side = abs(mn) > abs(mx);
        if (!side) s = -s;
        float edge = side ? mn : mx;
        precise float q0 = roundEven(edge / s), b = 0.0;
        if (q0 != 0.0) {
            s = edge / q0;
            b = edge;
        }
        gsc[tid] = s;
        gbi[tid] = b;
        uint gi = slot * (row / G) + e0 / G + tid;
        if (p.kv_f32 != 0u) {
            uint w = p.sb_off + 2u * gi;
            if (value) {
                vc[w] = floatBitsToUint(s);
                vc[w + 1u] = floatBitsToUint(b);
            } else {
                kc[w] = floatBitsToUint(s);
                kc[w + 1u] = floatBitsToUint(b);
            }
        } else {
            uint w = packHalf2x16(vec2(kv_round_f16(s), kv_round_f16(b)));
            if (value) vc[p.sb_off + gi] = w;
            else kc[p.sb_off + gi] = w;
        }
    }
    barrier();
    uint per = 32u / p.bits, words = p.unit / per, w0 = (slot * row + e0) / per;
    for (uint wi = tid; wi < words; wi += 64u) {
        uint word = 0u;
        for (uint k = 0u; k < per; k++) {
            uint i = wi * per + k, g = i / G;
            precise float t = (unit_val(value, i) - gbi[g]) / gsc[g];
            t = t > -1.0 ? t : -1.0;
            t = t < n + 1.0 ? t : n + 1.0;
            float r = clamp(roundEven(t), 0.0, n);
            word |= uint(r) << (k * p.bits);
        }
        if (value) vc[w0 + wi] = word;
        else kc[w0 + wi] = word;
    }
    barrier();   // gsc / gbi are read until here
}

void main() {
    uint t = gl_WorkGroupID.x, h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, D = p.D;
    if (h < p.H) {
        rope_head(t, h, 0u);
        uint base = t * p.qkv_w + h * D;
        for (uint i = tid; i < D; i += 64u) qkv[base + i] = head[i];
        return;
    }
    uint e0 = (h - p.H) * p.unit, kvh0 = e0 / D;   // the unit's first row element and k head
    for (uint j = 0u; j < p.unit / D; j++) rope_head(t, p.H + kvh0 + j, j * D);
    uint slot = kv_slot(step[0] + t, p.sink, p.ring), row = p.KV * D;
    uint vb = t * p.qkv_w + (p.H + p.KV) * D + e0;
    bool f16 = p.kv_f32 == 0u, round16 = f16 && p.bits != 0u;   // quantized f16 cache: the f16 row's codes
    for (uint i = tid; i < p.unit; i += 64u) {
        vals[i] = round16 ? kv_round_f16(qkv[vb + i]) : qkv[vb + i];
        if (round16) head[i] = kv_round_f16(head[i]);
    }
    barrier();
    if (p.bits != 0u) {
        store_quantized(false, slot, e0);
        store_quantized(true, slot, e0);
    } else if (!f16) {
        for (uint i = tid; i < p.unit; i += 64u) {
            kc[slot * row + e0 + i] = floatBitsToUint(head[i]);
            vc[slot * row + e0 + i] = floatBitsToUint(vals[i]);
        }
    } else {
        for (uint i = tid; i < p.unit / 2u; i += 64u) {
            kc[(slot * row + e0) / 2u + i] = packHalf2x16(vec2(head[2u * i], head[2u * i + 1u]));
            vc[(slot * row + e0) / 2u + i] = packHalf2x16(vec2(vals[2u * i], vals[2u * i + 1u]));
        }
    }
}
