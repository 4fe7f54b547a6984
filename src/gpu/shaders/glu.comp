// glu.comp — hid[t][i] = act(gate[t][i]) * up[t][i] over gu[t] = [gate | up]
// (I values each; the gate and up matmuls, or phi3's fused gate_up, wrote
// them with their biases).  act: 0 SiLU, 1 GELU (tanh approximation),
// 2 GELU (erf, Abramowitz-Stegun 7.1.26, |error| < 1.5e-7).  One
// invocation per value.  With quant = qk (32 or 256, I a multiple of it)
// the values are also written quantized for the GGUF down matmul, as
// quantx.comp would write them from hid (quantize.glsl), with a d per 32
// (Q8_0 / Q4_0 / Q4_1) or per 256 (Q4_K / Q6_K): one workgroup per token (y)
// and 256 values (x), 4 values a thread (glu_quant): the GLU and the down
// projection's quantization in one dispatch.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer GU { float gu[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Hid { float hid[]; };
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(push_constant) uniform P { uint I, n, act, quant; } p;
#include "quantize.glsl"

float erf_as(float x) {
    float s = sign(x), a = abs(x), t = 1.0 / (1.0 + 0.3275911 * a);
    float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return s * y;
}

// act(gate) * up of value i of token t.
float glu(uint t, uint i) {
    float x = gu[t * 2u * p.I + i], u = gu[t * 2u * p.I + p.I + i], a;
    if (p.act == 1u) a = 0.5 * x * (1.0 + tanh(clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0)));
    else if (p.act == 2u) a = 0.5 * x * (1.0 + erf_as(x * 0.7071067811865476));
    else a = x / (1.0 + exp(-x));
    return a * u;
}

shared float amax[64];

// quant (32 or 256): a workgroup per token (y) and 256 values (x), 4 values
// a thread; the max|v| of each 32-value block (8 threads) or 256-value
// group (64) read from shared memory (max() is exact in any order: the same d
// as quantx.comp's), a code word a thread.
void glu_quant() {
    uint g = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, i0 = g * 256u + 4u * tid;
    bool mine = i0 < p.I;   // (I a multiple of 32, not always of 256)
    float v[4], m = 0.0;
    if (mine)
        for (uint j = 0u; j < 4u; j++) {
            v[j] = glu(t, i0 + j);
            hid[t * p.I + i0 + j] = v[j];
            m = max(m, abs(v[j]));
        }
    amax[tid] = m;
    barrier();
    uint per = p.quant / 4u, k0 = tid / per * per;
    for (uint k = k0; k < k0 + per; k++) m = max(m, amax[k]);
    if (!mine) return;
    uint o = (t * (p.I / 32u) + i0 / 32u) * 9u;
    quantize_quarter(v, m, o, tid % 8u);
}

void main() {
    uint g = gl_GlobalInvocationID.x;
    if (p.quant != 0u) {
        glu_quant();
        return;
    }
    if (g >= p.I * p.n) return;
    hid[g] = glu(g / p.I, g % p.I);
}
