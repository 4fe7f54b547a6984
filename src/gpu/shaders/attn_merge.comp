// attn_merge.comp — the chunks attn_split.comp wrote for query head h of
// token t combined (log-sum-exp): M = max m_c, w_c = exp(m_c - M) (0 for an
// empty chunk, l_c = 0), out[d] = sum w_c acc_c[d] / sum w_c l_c, over the nc
// chunks dispatched, in chunk order.  With quant (D a multiple of 32) the
// head's 32-value blocks are also written quantized for the GGUF matmul of
// the attention's output (quantize.glsl, as quantx.comp would write them
// from o: the output's blocks never straddle heads), one dispatch less.
// One workgroup per (h, t).  Every chunk's (m, l) is read once, by one
// thread (chunk c by thread c % 64), into shared memory; a thread's output
// dimension d then reads the chunks' acc_c[d] 8 at a time (the loads of a
// group in flight together; consecutive threads read consecutive words),
// adding them in chunk order.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Part { float part[]; };
layout(std430, set = 0, binding = 3) writeonly buffer O { float o[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint H, D, ldo, nc, nc_max, quant; } p;
#include "quantize.glsl"

shared float cm[256], cl[256];   // the chunks' m and l (nc <= 256)
shared float w[256];             // the chunks' weights
shared float hv[512];            // the head's output (quant)

void main() {
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, D = p.D;
    uint base = (t * p.H + h) * p.nc_max * (D + 2u), st = D + 2u, nc = p.nc;
    for (uint c = tid; c < nc; c += 64u) {
        cm[c] = part[base + c * st];
        cl[c] = part[base + c * st + 1u];
    }
    barrier();
    float M = -1.0 / 0.0;
    for (uint c = 0u; c < nc; c++) M = max(M, cm[c]);
    for (uint c = tid; c < nc; c += 64u) w[c] = cl[c] > 0.0 ? exp(cm[c] - M) : 0.0;
    barrier();
    float L = 0.0;
    for (uint c = 0u; c < nc; c++) L += w[c] * cl[c];
    for (uint d = tid; d < D; d += 64u) {
        float a = 0.0;
        for (uint c0 = 0u; c0 < nc; c0 += 8u) {
            float v[8];
            for (uint u = 0u; u < 8u; u++) v[u] = c0 + u < nc ? part[base + (c0 + u) * st + 2u + d] : 0.0;
            for (uint u = 0u; u < 8u; u++) {
                if (c0 + u >= nc) break;
                a += w[c0 + u] * v[u];
            }
        }
        a /= L;
        o[t * p.ldo + h * D + d] = a;
        hv[d] = a;
    }
    if (p.quant == 0u) return;
    barrier();
    uint nb = D / 32u, row_blocks = p.H * nb;
    for (uint b = tid; b < nb; b += 64u) {
        float v[32];
        for (uint j = 0u; j < 32u; j++) v[j] = hv[b * 32u + j];
        quantize_block(v, (t * row_blocks + h * nb + b) * 9u);
    }
}
