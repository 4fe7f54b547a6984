// qkrope.comp — after the q/k/v matmul, per token t and head h of the
// (H + KV) q and k heads of qkv[t] = [q heads | k heads | v heads]:
// optional RMSNorm over head_dim (qwen3, gemma3), then RoPE with the
// batch's cos/sin table (cs[t][i], sn[t][i], i < rotary_dim/2, computed on
// the host by the same code as the CPU engine: every RoPE variant), on
// pairs (i, i + rot/2), or (2i, 2i+1) for GGUF's permuted Q/K rows.  The
// k heads and the matching v heads are stored into the layer's KV cache
// at position pos0 + t (f16 pairs, or f32).  One workgroup per (t, h).
#version 450
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) readonly buffer Vec { float vec[]; };
layout(std430, set = 0, binding = 2) readonly buffer Rope { float rope[]; };
layout(std430, set = 0, binding = 3) buffer K { uint kc[]; };
layout(std430, set = 0, binding = 4) buffer V { uint vc[]; };
layout(push_constant) uniform P {
    uint H, KV, D, half_rot, adjacent, qk_norm, qn_off, kn_off, plus_one, qkv_w, pos0, cs_off, sn_off, kv_f32;
    float eps;
} p;

shared float head[512];
shared float red[64];

void main() {
    uint t = gl_WorkGroupID.x, h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, D = p.D;
    uint base = t * p.qkv_w + h * D;
    for (uint i = tid; i < D; i += 64u) head[i] = qkv[base + i];
    barrier();
    if (p.qk_norm != 0u) {
        float ss = 0.0;
        for (uint i = tid; i < D; i += 64u) ss += head[i] * head[i];
        red[tid] = ss;
        barrier();
        for (uint s = 32u; s > 0u; s >>= 1) {
            if (tid < s) red[tid] += red[tid + s];
            barrier();
        }
        float r = 1.0 / sqrt(red[0] / float(D) + p.eps);
        uint wo = h < p.H ? p.qn_off : p.kn_off;
        for (uint i = tid; i < D; i += 64u) {
            float w = vec[wo + i];
            head[i] = p.plus_one != 0u ? (head[i] * r) * (1.0 + w) : w * (head[i] * r);
        }
        barrier();
    }
    uint cb = p.cs_off + t * p.half_rot, sb = p.sn_off + t * p.half_rot;
    for (uint i = tid; i < p.half_rot; i += 64u) {
        uint ia = p.adjacent != 0u ? 2u * i : i, ib = p.adjacent != 0u ? 2u * i + 1u : i + p.half_rot;
        float a = head[ia], b = head[ib], c = rope[cb + i], s = rope[sb + i];
        head[ia] = a * c - b * s;
        head[ib] = b * c + a * s;
    }
    barrier();
    if (h < p.H) {
        for (uint i = tid; i < D; i += 64u) qkv[base + i] = head[i];
        return;
    }
    uint kvh = h - p.H, row = (p.pos0 + t) * p.KV + kvh;
    uint vb = t * p.qkv_w + (p.H + p.KV + kvh) * D;
    if (p.kv_f32 != 0u) {
        for (uint i = tid; i < D; i += 64u) {
            kc[row * D + i] = floatBitsToUint(head[i]);
            vc[row * D + i] = floatBitsToUint(qkv[vb + i]);
        }
    } else {
        for (uint i = tid; i < D / 2u; i += 64u) {
            kc[row * (D / 2u) + i] = packHalf2x16(vec2(head[2u * i], head[2u * i + 1u]));
            vc[row * (D / 2u) + i] = packHalf2x16(vec2(qkv[vb + 2u * i], qkv[vb + 2u * i + 1u]));
        }
    }
}
