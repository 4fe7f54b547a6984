// rmsnorm.comp — per token t: h = x[t] / sqrt(mean(x[t]^2) + eps) * w
// (gemma: * (1 + w)); out[t] = h, or out[t] += h with add (a normed branch
// added to the residual: gemma2/3 post-attention / post-feed-forward).
// With quant = qk (add off; 32, or 256 for K-quants: d a multiple of it), h
// is also written quantized for the GGUF matmuls that read it, as quantx.comp
// would write it from out[t] (the same f32 values, the same rule:
// quantx.comp's header): one dispatch and one barrier less.  With add and then, the residual just updated is
// normed again by the next norm's weights w2 into z[t] (quant: and xq), as a
// second dispatch would: gemma2/3's post-norm and the norm after it in one
// dispatch.  Every sum of squares runs in the same order (norm.glsl),
// fused or not.
// One workgroup of 256 invocations per token, norm.glsl's virtual threads one
// an invocation (the sums' order: norm.glsl), so no thread walks a long row
// alone; matmul.comp's fused norm writes the same bits.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) coherent buffer Y { float y[]; };
layout(std430, set = 0, binding = 2) readonly buffer Vec { float vec[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint d, x_off, ldx, y_off, ldy, w_off, plus_one, add; float eps; uint quant, then, w2_off; } p;
#include "quantize.glsl"

#define NORM_WG 256u
shared float norm_red[256];
shared float norm_bmax[256];   // quant: each virtual thread's 4 values' max|v|
// mode 0: x -> y (the norm); mode 1: y -> z (the norm after a post-norm, then)
float norm_in(uint mode, uint i) { return mode == 0u ? x[i] : y[i]; }
void norm_out(uint mode, uint i, float h) {
    if (mode == 0u) y[i] = h;
    else z[i] = h;
}
#include "norm.glsl"

void main() {
    uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    uint xb = p.x_off + t * p.ldx, yb = p.y_off + t * p.ldy;
    if (p.add == 0u) {
        norm_row(0u, xb, yb, t, p.d, p.eps, p.w_off, p.quant, p.plus_one);
        return;
    }
    float r = norm_scale(0u, xb, p.d, p.eps), ss = 0.0;
    for (uint i = tid; i < p.d; i += NORM_WG) {
        float h = weighed(x[xb + i], r, p.w_off, i, p.plus_one) + y[yb + i];
        y[yb + i] = h;
        ss += h * h;
    }
    if (p.then == 0u) return;
    norm_red[tid] = ss;
    float r2 = norm_reduce(p.d, p.eps);
    memoryBarrierBuffer();
    barrier();   // every thread's y[t] written
    if (p.quant != 0u) {
        normed_blocks(1u, yb, yb, t, r2, p.w2_off, p.d, p.quant, p.plus_one);
        return;
    }
    for (uint i = tid; i < p.d; i += NORM_WG) z[yb + i] = weighed(y[yb + i], r2, p.w2_off, i, p.plus_one);
}
