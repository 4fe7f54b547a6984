// kvcache.glsl — the device KV cache's layout, shared by qkrope.comp (which
// writes it) and attn_split.comp (which reads it).  The same rows as the CPU
// engine's cache (src/runtime/kvcache.h), in one buffer per layer for K and
// one for V, of 32-bit words:
//   slots:  position j < sink lives in slot j, j >= sink in slot
//           sink + (j - sink) % ring (sl_kv_layer_plan: full layers without
//           --max-kv-size have sink 0 and ring n_ctx, i.e. slot = position;
//           sliding layers a ring of window + batch - 1; a rotating cache
//           keeps `sink` attention sinks and a ring).
//   rows:   a slot's row holds all KV heads of the position (KV * D values,
//           head kvh at element kvh * D): f32 words, f16 pairs (element 2i in
//           the low half), or (bits 4 / 8) MLX affine codes, a little-endian
//           bitstream LSB first, row * bits / 32 words a row.
//   groups: (bits 4 / 8) after every slot's codes, at word sb_off, per slot
//           and group of `group` consecutive row elements (groups may span
//           heads) its scale and bias: one word of two f16 (scale low), or
//           two f32 words (scale, bias); value = float(q) * s + b, the
//           product rounded before the sum (the CPU's dequantization order).
// Byte sizes equal the CPU engine's (sl_kv_pos_bytes per position and layer).

uint kv_slot(uint pos, uint sink, uint ring) { return pos < sink ? pos : sink + (pos - sink) % ring; }

// x rounded to the nearest f16 value, ties to even (the CPU engine's f32 -> f16
// conversion), as a float: exact arithmetic (frexp, ldexp, roundEven), so it
// does not depend on the driver's packHalf2x16 rounding.
float kv_round_f16(float x) {
    if (abs(x) >= 65520.0) return x * (1.0 / 0.0);   // past half an ulp above 65504: infinity
    int e;
    frexp(x, e);                                      // |x| = m * 2^e, m in [0.5, 1)
    int q = max(e - 11, -24);                         // the f16 ulp at |x|: 2^(e-11), subnormals 2^-24
    return ldexp(roundEven(ldexp(x, -q)), q);
}

// The keys position pos sees, in position order (the CPU engine's, src/runtime/kvcache.h): the sinks
// j < sink with pos - j < win, then max(pos - span + 1, sink) <= j <= pos (win, span: the sliding window or
// the rotating cache's span, 0x7fffffff when unbounded).  Key ki < nv is position s0 + ki for ki < ns
// (the sinks), else r0 + ki - ns.
void kv_visible(uint pos, uint sink, uint span, uint win, out uint s0, out uint ns, out uint r0, out uint nv) {
    uint s1 = min(sink, pos + 1u);
    s0 = min(pos + 1u > win ? pos + 1u - win : 0u, s1);
    r0 = max(pos + 1u > span ? pos + 1u - span : 0u, sink);
    ns = s1 - s0;
    nv = ns + (pos + 1u > r0 ? pos + 1u - r0 : 0u);
}
