// glu.comp — hid[t][i] = act(gate[t][i]) * up[t][i] over gu[t] = [gate | up]
// (I values each; the gate and up matmuls, or phi3's fused gate_up, wrote
// them with their biases).  act: 0 SiLU, 1 GELU (tanh approximation),
// 2 GELU (erf, Abramowitz-Stegun 7.1.26, |error| < 1.5e-7).
#version 450
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer GU { float gu[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Hid { float hid[]; };
layout(push_constant) uniform P { uint I, n, act; } p;

float erf_as(float x) {
    float s = sign(x), a = abs(x), t = 1.0 / (1.0 + 0.3275911 * a);
    float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
    return s * y;
}

void main() {
    uint g = gl_GlobalInvocationID.x;
    if (g >= p.I * p.n) return;
    uint t = g / p.I, i = g % p.I;
    float x = gu[t * 2u * p.I + i], u = gu[t * 2u * p.I + p.I + i], a;
    if (p.act == 1u) a = 0.5 * x * (1.0 + tanh(clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0)));
    else if (p.act == 2u) a = 0.5 * x * (1.0 + erf_as(x * 0.7071067811865476));
    else a = x / (1.0 + exp(-x));
    hid[g] = a * u;
}
