// embed.comp — x[t] = row ids[t] of the embedding matrix * scale.
// One workgroup per token; each thread decodes 32-element blocks.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, set = 0, binding = 2) buffer X { float x[]; };
layout(push_constant) uniform P { uint fmt, cols, row_bytes, ld; float scale; } p;

void main() {
    uint t = gl_WorkGroupID.x;
    uint rb = uint(ids[t]) * p.row_bytes;
    float v[32];
    for (uint b = gl_LocalInvocationID.x; b * 32u < p.cols; b += 64u) {
        w_block(p.fmt, rb, b, p.cols, v);
        for (uint j = 0u; j < 32u && b * 32u + j < p.cols; j++) x[t * p.ld + b * 32u + j] = v[j] * p.scale;
    }
}
