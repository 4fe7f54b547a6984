// embed.comp — x[t] = row ids[t] of the embedding matrix * scale.
// One workgroup per token; each thread decodes 32-element blocks (MLX:
// bits .. bi_off describe the codes' groups, weights.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, set = 0, binding = 2) buffer X { float x[]; };
layout(push_constant) uniform P { uint fmt, cols, row_bytes, ld; float scale; uint bits, gs, sfmt, sc_off, bi_off; } p;

void main() {
    uint t = gl_WorkGroupID.x;
    uint r = uint(ids[t]), rb = r * p.row_bytes;
    float v[32];
    for (uint b = gl_LocalInvocationID.x; b * 32u < p.cols; b += 64u) {
        if (fmt_mlx(p.fmt)) w_mlx_block(p.fmt, r, b, p.row_bytes, p.bits, p.gs, p.sfmt, p.sc_off, p.bi_off, p.cols, v);
        else w_block(p.fmt, rb, b, p.cols, v);
        for (uint j = 0u; j < 32u && b * 32u + j < p.cols; j++) x[t * p.ld + b * 32u + j] = v[j] * p.scale;
    }
}
