// quantx.comp — the activations of a GGUF Q8_0 / Q4_0 / Q4_1 / Q4_K / Q6_K
// matmul quantized once per matmul (not once per weight row): for token t and
// 32-element block b of x[t][x_off ..], d = max|x| / 127 over the qk
// elements around it (32, or 256 for K-quants: llama.cpp's q8_K, one d per
// 256) and q = clamp(roundEven(x / d), -127, 127),
// exactly as the CPU engine quantizes (src/kernels/qdot.c), written as 9
// words at xq[(t * nb + b) * 9]: d's bits, then the 32 codes packed 4 per
// word (element 4k + i in byte i of word k).  A workgroup per token (y) and
// 256 values (x), 4 values a thread: the max|v| of each block (8 threads) or
// 256-value group (64) read from shared memory (max() is exact in any
// order), a code word a thread.
// (rmsnorm.comp and glu.comp write the same blocks themselves (quantize.glsl)
// where a norm or the GLU feeds a matmul.)
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint cols, n, x_off, ldx, qk; } p;
#include "quantize.glsl"

shared float amax[64];

void main() {
    uint t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, i0 = gl_WorkGroupID.x * 256u + 4u * tid;
    bool mine = i0 < p.cols;   // (cols a multiple of 32, not always of 256)
    uint xb = p.x_off + t * p.ldx + i0;
    float v[4], m = 0.0;
    if (mine)
        for (uint j = 0u; j < 4u; j++) {
            v[j] = x[xb + j];
            m = max(m, abs(v[j]));
        }
    amax[tid] = m;
    barrier();
    uint per = p.qk / 4u, k0 = tid / per * per;
    for (uint k = k0; k < k0 + per; k++) m = max(m, amax[k]);
    if (!mine) return;
    uint o = (t * (p.cols / 32u) + i0 / 32u) * 9u;
    quantize_quarter(v, m, o, tid % 8u);
}
