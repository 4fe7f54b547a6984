// rmsnorm.comp — per token t: h = x[t] / sqrt(mean(x[t]^2) + eps) * w
// (gemma: * (1 + w)); out[t] = h, or out[t] += h with add (a normed branch
// added to the residual: gemma2/3 post-attention / post-feed-forward).
// With quant = qk (add off; 32, or 256 for K-quants: d a multiple of it), h
// is also written quantized for the GGUF matmuls that read it, as quantx.comp
// would write it from out[t] (the same f32 values, the same rule:
// quantx.comp's header): one dispatch and one barrier less.  With add and then, the residual just updated is
// normed again by the next norm's weights w2 into z[t] (quant: and xq), as a
// second dispatch would: gemma2/3's post-norm and the norm after it in one
// dispatch.  Every sum of squares runs in the same order (below), fused
// or not.
// One workgroup of NTH invocations per token: each sum of squares takes
// element i in thread i % NTH, then a tree; a quantized block of 32 is 8
// threads' 4 values each (its max|v| and its 256-value group's met in shared
// memory: max() is exact in any order), so no thread walks a long row alone.
#version 450
#extension GL_GOOGLE_include_directive : require
#define NTH 256u
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) coherent buffer Y { float y[]; };
layout(std430, set = 0, binding = 2) readonly buffer Vec { float vec[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint d, x_off, ldx, y_off, ldy, w_off, plus_one, add; float eps; uint quant, then, w2_off; } p;
#include "quantize.glsl"

shared float red[NTH];
shared float bmax[NTH];   // quant: each thread's 4 values' max|v|

float weighed(float v, float r, uint w_off, uint i) {
    float w = vec[w_off + i];
    return p.plus_one != 0u ? (v * r) * (1.0 + w) : w * (v * r);
}

// 1 / sqrt(mean(v^2) + eps) from each thread's partial sum of squares.
float rms_scale(float ss) {
    uint tid = gl_LocalInvocationID.x;
    red[tid] = ss;
    barrier();
    for (uint h = NTH / 2u; h > 0u; h >>= 1) {
        if (tid < h) red[tid] += red[tid + h];
        barrier();
    }
    return 1.0 / sqrt(red[0] / float(p.d) + p.eps);
}

// quant: the normed values (from y when from_y, else x) into z or y, then their codes: thread tid takes
// values 4 tid .. + 3 of a round of NTH / 8 blocks (word tid % 8 of block tid / 8), with the block's own d
// (quant 32: the max of its 8 threads') or its 256-value group's (quant 256: 64 threads', quantx.comp's d).
// Every thread runs every round (the barriers).
void normed_blocks(bool from_y, uint src, uint dst, uint t, float r, uint w_off) {
    uint nb = p.d / 32u, tid = gl_LocalInvocationID.x, per = p.quant / 4u, rb = NTH / 8u;
    for (uint b0 = 0u; b0 < nb; b0 += rb) {
        uint b = b0 + tid / 8u, i0 = b * 32u + 4u * (tid % 8u);
        float v[4], m = 0.0;
        if (b < nb)
            for (uint j = 0u; j < 4u; j++) {
                uint i = i0 + j;
                v[j] = weighed(from_y ? y[src + i] : x[src + i], r, w_off, i);
                if (from_y) z[dst + i] = v[j];
                else y[dst + i] = v[j];
                m = max(m, abs(v[j]));
            }
        bmax[tid] = m;
        barrier();
        uint g0 = tid / per * per;
        for (uint k = g0; k < g0 + per; k++) m = max(m, bmax[k]);
        barrier();   // bmax is read until here
        if (b < nb) {
            uint o = (t * nb + b) * 9u;
            quantize_quarter(v, m, o, tid % 8u);
        }
    }
}

void main() {
    uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    uint xb = p.x_off + t * p.ldx, yb = p.y_off + t * p.ldy;
    float ss = 0.0;
    for (uint i = tid; i < p.d; i += NTH) ss += x[xb + i] * x[xb + i];
    float r = rms_scale(ss);
    if (p.quant != 0u && p.add == 0u) {
        normed_blocks(false, xb, yb, t, r, p.w_off);
        return;
    }
    ss = 0.0;
    for (uint i = tid; i < p.d; i += NTH) {
        float h = weighed(x[xb + i], r, p.w_off, i);
        if (p.add != 0u) h += y[yb + i];
        y[yb + i] = h;
        ss += h * h;
    }
    if (p.then == 0u) return;
    barrier();   // red[0] is read above until here
    float r2 = rms_scale(ss);
    memoryBarrierBuffer();
    barrier();   // every thread's y[t] written
    if (p.quant != 0u) {
        normed_blocks(true, yb, yb, t, r2, p.w2_off);
        return;
    }
    for (uint i = tid; i < p.d; i += NTH) z[yb + i] = weighed(y[yb + i], r2, p.w2_off, i);
}
