// attn.comp — attention of query head h of token t (position pos0 + t) over
// the visible keys of its KV head h / (H / KV) (GQA): positions
// [lo, pos0 + t], lo = pos - window + 1 on sliding layers, else 0.
// Flash-style online softmax over tiles of 64 keys: each thread scores one
// key (q . k * scale, optional softcap), the tile's maximum rescales the
// running sum and output, and each thread accumulates its own output
// dimensions (d = tid, tid + 64, ...; head_dim <= 512).  One workgroup per (t, h).
#version 450
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, set = 0, binding = 3) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint H, KV, D, qkv_w, pos0, window, ldo, kv_f32; float scale, softcap; } p;

shared float qs[512];
shared float ps[64];

float kv_at(uint which, uint row, uint i) {   // element i of cached row (which 0: K, 1: V)
    if (p.kv_f32 != 0u) return uintBitsToFloat(which == 0u ? kc[row * p.D + i] : vc[row * p.D + i]);
    uint w = which == 0u ? kc[row * (p.D / 2u) + i / 2u] : vc[row * (p.D / 2u) + i / 2u];
    vec2 f = unpackHalf2x16(w);
    return (i & 1u) != 0u ? f.y : f.x;
}

void main() {
    uint t = gl_WorkGroupID.x, h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, D = p.D;
    uint kvh = h / (p.H / p.KV), pos = p.pos0 + t;
    uint lo = p.window > 0u && pos + 1u > p.window ? pos + 1u - p.window : 0u;
    for (uint i = tid; i < D; i += 64u) qs[i] = qkv[t * p.qkv_w + h * D + i];
    barrier();
    float m = -1.0 / 0.0, l = 0.0, acc[8];
    for (uint k = 0u; k < 8u; k++) acc[k] = 0.0;
    for (uint j0 = lo; j0 <= pos; j0 += 64u) {
        uint j = j0 + tid;
        float s = -1.0 / 0.0;
        if (j <= pos) {
            uint row = j * p.KV + kvh;
            s = 0.0;
            if (p.kv_f32 != 0u) {
                for (uint i = 0u; i < D; i++) s += qs[i] * uintBitsToFloat(kc[row * D + i]);
            } else {
                for (uint i = 0u; i < D / 2u; i++) {
                    vec2 f = unpackHalf2x16(kc[row * (D / 2u) + i]);
                    s += qs[2u * i] * f.x + qs[2u * i + 1u] * f.y;
                }
            }
            s *= p.scale;
            if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
        }
        ps[tid] = s;
        barrier();
        uint nk = min(64u, pos + 1u - j0);
        float mt = m;
        for (uint k = 0u; k < nk; k++) mt = max(mt, ps[k]);
        barrier();
        ps[tid] = j <= pos ? exp(s - mt) : 0.0;
        barrier();
        float alpha = exp(m - mt), lt = 0.0;
        for (uint k = 0u; k < nk; k++) lt += ps[k];
        l = l * alpha + lt;
        for (uint k = 0u; k < 8u; k++) {
            uint d = tid + 64u * k;
            if (d >= D) break;
            float a = acc[k] * alpha;
            for (uint jj = 0u; jj < nk; jj++) a += ps[jj] * kv_at(1u, (j0 + jj) * p.KV + kvh, d);
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
