// matmul.comp — y[t][r] (+)= sum_c x[t][c] * W[r][c] (+ bias[r]), then an
// optional softcap: cap * tanh(y / cap).  One workgroup per (row, 8 tokens);
// thread i takes column blocks i, i+64, ...; a tree in shared memory adds
// the 64 partial sums (rows beyond 65535 workgroups: z slices).  GGUF Q8_0 / Q4_0 multiply as the CPU engine does
// (src/kernels/qdot.c): each 32-element block of x is quantized to int8
// with d = max|x| / 127, q = roundEven(x / d), and a block adds
// (d_w * d_x) * sum(q_w * q_x); other formats multiply in f32.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(std430, set = 0, binding = 3) readonly buffer Vec { float vec[]; };
layout(push_constant) uniform P {
    uint fmt, rows, cols, row_bytes, n, x_off, ldx, y_off, ldy;
    int bias_off;   // into vec, -1: none
    uint accumulate;
    float softcap;  // 0: none
} p;

#define TN 8u
shared float red[TN][64];

void main() {
    uint r = gl_WorkGroupID.x + gl_WorkGroupID.z * 65535u, t0 = gl_WorkGroupID.y * TN, tid = gl_LocalInvocationID.x;
    if (r >= p.rows) return;   // the whole workgroup: rows past 65535 come in slices along z
    uint nt = min(TN, p.n - t0);
    float acc[TN];
    for (uint t = 0u; t < TN; t++) acc[t] = 0.0;
    uint rb = r * p.row_bytes, nb = (p.cols + 31u) / 32u;
    float v[32];
    int qw[32];
    bool q = fmt_quant(p.fmt);
    for (uint b = tid; b < nb; b += 64u) {
        float dw = 1.0;
        if (q) dw = w_qblock(p.fmt, rb, b, qw);
        else w_block(p.fmt, rb, b, p.cols, v);
        for (uint t = 0u; t < nt; t++) {
            uint xb = p.x_off + (t0 + t) * p.ldx + b * 32u;
            if (q) {
                float amax = 0.0;
                for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(x[xb + j]));
                float d = amax / 127.0, id = d > 0.0 ? 1.0 / d : 0.0;
                int s = 0;
                for (uint j = 0u; j < 32u; j++) s += qw[j] * int(clamp(roundEven(x[xb + j] * id), -127.0, 127.0));
                acc[t] += (dw * d) * float(s);
            } else {
                float s = 0.0;
                for (uint j = 0u; j < 32u && b * 32u + j < p.cols; j++) s += v[j] * x[xb + j];
                acc[t] += s;
            }
        }
    }
    for (uint t = 0u; t < TN; t++) red[t][tid] = acc[t];
    barrier();
    for (uint h = 32u; h > 0u; h >>= 1) {
        if (tid < h)
            for (uint t = 0u; t < TN; t++) red[t][tid] += red[t][tid + h];
        barrier();
    }
    if (tid < nt) {
        uint o = p.y_off + (t0 + tid) * p.ldy + r;
        float s = red[tid][0];
        if (p.bias_off >= 0) s += vec[uint(p.bias_off) + r];
        if (p.accumulate != 0u) s += y[o];
        if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
        y[o] = s;
    }
}
