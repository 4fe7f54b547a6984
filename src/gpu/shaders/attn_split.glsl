// attn_split.glsl — the interface of generation's split attention, shared by its kernels
// (attn_split.comp, attn_split2.comp: the same dispatch, bindings and push constants, which
// vk_session.c's attention() fills): the bindings, the push constants and the KV cache's readers.
layout(std430, set = 0, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Part { float part[]; };   // (direct: the output)
layout(std430, set = 0, binding = 4) writeonly buffer XQ { uint xq[]; };
layout(std430, set = 0, binding = 5) readonly buffer Step { uint step[]; };   // step[0]: the batch's first position
layout(push_constant) uniform P {
    uint H, KV, D, qkv_w, kv_f32;
    float scale, softcap;
    uint sink, span, win, ring, bits, group, sb_off, chunk, nc_max, hpg, direct, ldo, quant;
} p;

#include "kvcache.glsl"
#include "attn_kv.glsl"
#include "quantize.glsl"
