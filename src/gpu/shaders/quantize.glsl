// quantize.glsl — one 32-element block of activations quantized for the GGUF
// Q8_0 / Q4_0 matmuls, as the CPU engine quantizes (src/kernels/qdot.c):
// d = max|v| / 127, q = clamp(roundEven(v / d), -127, 127), written as 9
// words at xq[o]: d's bits, then the 32 codes packed 4 per word (element
// 4k + i in byte i of word k).  The including shader declares xq.
void quantize_block(float v[32], uint o) {
    float amax = 0.0;
    for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(v[j]));
    float d = amax / 127.0, id = d > 0.0 ? 1.0 / d : 0.0;
    xq[o] = floatBitsToUint(d);
    for (uint k = 0u; k < 8u; k++) {
        uint w = 0u;
        for (uint j = 0u; j < 4u; j++) {
            int q = int(clamp(roundEven(v[4u * k + j] * id), -127.0, 127.0));
            w |= (uint(q) & 0xFFu) << (8u * j);
        }
        xq[o + 1u + k] = w;
    }
}
