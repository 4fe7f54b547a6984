// quantize.glsl — one 32-element block of activations quantized for the GGUF
// Q8_0 / Q4_0 / Q4_1 / Q4_K / Q6_K matmuls, as the CPU engine quantizes
// (src/kernels/qdot.c): d = amax / 127 with amax = max|v| over the block (a d
// per 32) or over the 256 values around it (K-quants: llama.cpp's q8_K, the
// caller's amax), q = clamp(roundEven(v / d), -127, 127), written as 9 words
// at xq[o]: d's bits, then the 32 codes packed 4 per word (element 4k + i in
// byte i of word k), as quantx.comp writes them.  The including shader
// declares xq (or defines QX as the array to write).
#ifndef QX
#define QX xq
#endif

// 1 / d for amax (0 for an all-zero group).
float quantize_inv(float amax) {
    float d = amax / 127.0;
    return d > 0.0 ? 1.0 / d : 0.0;
}

// Four consecutive values' codes, packed as one word.
uint quantize_word(float a, float b, float c, float e, float id) {
    float v[4] = float[4](a, b, c, e);
    uint w = 0u;
    for (uint j = 0u; j < 4u; j++) {
        int q = int(clamp(roundEven(v[j] * id), -127.0, 127.0));
        w |= (uint(q) & 0xFFu) << (8u * j);
    }
    return w;
}

// The block v with its own scale (a d per 32).
void quantize_block(float v[32], uint o) {
    float amax = 0.0;
    for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(v[j]));
    float id = quantize_inv(amax);
    QX[o] = floatBitsToUint(amax / 127.0);
    for (uint k = 0u; k < 8u; k++) QX[o + 1u + k] = quantize_word(v[4u * k], v[4u * k + 1u], v[4u * k + 2u], v[4u * k + 3u], id);
}

// Word k (values 4k .. 4k + 3: v) of the block at xq[o] with the scale of amax (its block's or group's
// max|v|), and d when k is 0: a block written by 8 invocations (rmsnorm.comp, glu.comp, quantx.comp).
void quantize_quarter(float v[4], float amax, uint o, uint k) {
    if (k == 0u) QX[o] = floatBitsToUint(amax / 127.0);
    QX[o + 1u + k] = quantize_word(v[0], v[1], v[2], v[3], quantize_inv(amax));
}
