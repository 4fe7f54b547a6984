// attn_kv.glsl — reading the KV cache (kvcache.glsl's layout) in the attention kernel
// (attn_split.comp): element e (of KV * D) of the row in slot `slot` of K (which 0) or V as f32 (f16
// pairs, f32 words, or MLX affine codes dequantized as float(q) * s + b, the product rounded before the
// sum).  The including shader declares kc, vc and a push-constant block p with KV, D, kv_f32, bits,
// group and sb_off.
uint kv_word(uint which, uint i) { return which == 0u ? kc[i] : vc[i]; }

float kv_at(uint which, uint slot, uint e) {
    uint row = p.KV * p.D;
    if (p.bits == 0u) {
        if (p.kv_f32 != 0u) return uintBitsToFloat(kv_word(which, slot * row + e));
        vec2 f = unpackHalf2x16(kv_word(which, (slot * row + e) / 2u));
        return (e & 1u) != 0u ? f.y : f.x;
    }
    uint bit = e * p.bits, q = (kv_word(which, slot * row / 32u * p.bits + bit / 32u) >> (bit % 32u)) & ((1u << p.bits) - 1u);
    uint gi = slot * (row / p.group) + e / p.group;
    float s, b;
    if (p.kv_f32 != 0u) {
        s = uintBitsToFloat(kv_word(which, p.sb_off + 2u * gi));
        b = uintBitsToFloat(kv_word(which, p.sb_off + 2u * gi + 1u));
    } else {
        vec2 sb = unpackHalf2x16(kv_word(which, p.sb_off + gi));
        s = sb.x;
        b = sb.y;
    }
    precise float x = float(q) * s;
    precise float y = x + b;
    return y;
}

// A raw score q . k times the scale, softcapped (softcap > 0: softcap * tanh(s / softcap)).
float attn_score(float s) {
    s *= p.scale;
    if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
    return s;
}
