// quantx.comp — the activations of a GGUF Q8_0 / Q4_0 matmul quantized once
// per matmul (not once per weight row): for token t and 32-element block b of
// x[t][x_off ..], quantize_block (quantize.glsl: d = max|x| / 127,
// q = roundEven(x / d), exactly as the CPU engine quantizes) writes 9 words
// at xq[(t * nb + b) * 9].  One invocation per block.  (rmsnorm.comp and
// glu.comp write the same blocks themselves where a norm or the GLU feeds
// the matmul.)
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint cols, n, x_off, ldx; } p;
#include "quantize.glsl"

void main() {
    uint nb = p.cols / 32u, i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * 65535u * 64u;
    if (i >= nb * p.n) return;
    uint t = i / nb, b = i % nb, xb = p.x_off + t * p.ldx + b * 32u;
    float v[32];
    for (uint j = 0u; j < 32u; j++) v[j] = x[xb + j];
    quantize_block(v, i * 9u);
}
