// quantx.comp — the activations of a GGUF Q8_0 / Q4_0 / Q4_1 / Q4_K / Q6_K
// matmul quantized once per matmul (not once per weight row): for token t and
// 32-element block b of x[t][x_off ..], d = max|x| / 127 over the qk
// elements around it (32, or 256 for K-quants: llama.cpp's q8_K, one d per
// 256) and q = clamp(roundEven(x / d), -127, 127),
// exactly as the CPU engine quantizes (src/kernels/qdot.c), written as 9
// words at xq[(t * nb + b) * 9]: d's bits, then the 32 codes packed 4 per
// word (element 4k + i in byte i of word k).  One invocation per block.
// (rmsnorm.comp and glu.comp write the same blocks themselves (quantize.glsl)
// where a norm or the GLU feeds a matmul with one d per 32.)
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint cols, n, x_off, ldx, qk; } p;

void main() {
    uint nb = p.cols / 32u, i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * 65535u * 64u;
    if (i >= nb * p.n) return;
    uint t = i / nb, b = i % nb, xb = p.x_off + t * p.ldx + b * 32u, o = i * 9u;
    float amax = 0.0;
    uint g0 = p.x_off + t * p.ldx + (b * 32u / p.qk) * p.qk;   // the qk-element group's start
    for (uint j = 0u; j < p.qk; j++) amax = max(amax, abs(x[g0 + j]));
    float d = amax / 127.0, id = d > 0.0 ? 1.0 / d : 0.0;
    xq[o] = floatBitsToUint(d);
    for (uint k = 0u; k < 8u; k++) {
        uint w = 0u;
        for (uint j = 0u; j < 4u; j++) {
            int q = int(clamp(roundEven(x[xb + 4u * k + j] * id), -127.0, 127.0));
            w |= (uint(q) & 0xFFu) << (8u * j);
        }
        xq[o + 1u + k] = w;
    }
}
