// rmsnorm.comp — per token t: h = x[t] / sqrt(mean(x[t]^2) + eps) * w
// (gemma: * (1 + w)); out[t] = h, or out[t] += h with add (a normed branch
// added to the residual: gemma2/3 post-attention / post-feed-forward).
// With quant (add off, d a multiple of 32), h is also written quantized for
// the GGUF matmuls that read it, as quantx.comp would write it from out[t]
// (the same f32 values, the same rule: quantx.comp's header): one dispatch
// and one barrier less.  One workgroup per token.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Y { float y[]; };
layout(std430, set = 0, binding = 2) readonly buffer Vec { float vec[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint d, x_off, ldx, y_off, ldy, w_off, plus_one, add; float eps; uint quant; } p;
#include "quantize.glsl"

shared float red[64];

float normed(uint xb, uint i, float r) {
    float w = vec[p.w_off + i];
    return p.plus_one != 0u ? (x[xb + i] * r) * (1.0 + w) : w * (x[xb + i] * r);
}

void main() {
    uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    uint xb = p.x_off + t * p.ldx, yb = p.y_off + t * p.ldy;
    float ss = 0.0;
    for (uint i = tid; i < p.d; i += 64u) ss += x[xb + i] * x[xb + i];
    red[tid] = ss;
    barrier();
    for (uint h = 32u; h > 0u; h >>= 1) {
        if (tid < h) red[tid] += red[tid + h];
        barrier();
    }
    float r = 1.0 / sqrt(red[0] / float(p.d) + p.eps);
    if (p.quant != 0u) {   // a block of 32 an invocation: its values, then its codes
        uint nb = p.d / 32u;
        for (uint b = tid; b < nb; b += 64u) {
            float v[32];
            for (uint j = 0u; j < 32u; j++) {
                v[j] = normed(xb, b * 32u + j, r);
                y[yb + b * 32u + j] = v[j];
            }
            quantize_block(v, (t * nb + b) * 9u);
        }
        return;
    }
    for (uint i = tid; i < p.d; i += 64u) {
        float h = normed(xb, i, r);
        if (p.add != 0u) y[yb + i] += h;
        else y[yb + i] = h;
    }
}
