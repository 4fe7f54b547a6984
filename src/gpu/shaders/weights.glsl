// weights.glsl — reading a weight matrix in its stored layout (binding 0,
// raw 32-bit words): rows of f32 / f16 / bf16, or GGUF Q8_0 / Q4_0 blocks
// (ggml's layout: an f16 scale d, then 32 int8 codes, or 16 bytes of 4-bit
// codes, low nibbles = elements 0..15, high = 16..31, value d * (q - 8)).
// wd4 aliases the same buffer 16 bytes at a time, for rows whose start is
// 16-byte aligned (the caller checks).
// A row starts at byte row * row_bytes; f16/bf16 rows and GGUF blocks are
// 2-byte aligned, f32 rows 4-byte aligned.
// MLX affine (FMT_AFFINE, mlx's quantize): a row of cols codes of `bits`
// (2..8) bits, a little-endian bitstream of 32-bit words, LSB first (code c
// at bit c * bits of the row: for 3, 5, 6 bits codes straddle words), one
// row every row_bytes = cols * bits / 8 (a whole number of words: cols is a
// multiple of the group size, 32 / 64 / 128); value = s * q + b with s, b
// of the code's group (cols / group_size a row) in two arrays stored after
// the codes in the same buffer, at byte offsets sc_off and bi_off, in
// f32 / f16 / bf16 (sfmt: FMT_F32 .. FMT_BF16), row-major like the codes
// (vk_session.c's upload_weight).  MLX mxfp4 / mxfp8 (FMT_MXFP4 / 8): the
// same rows of 4-bit E2M1 / 8-bit E4M3 codes, groups of 32, value =
// code's float * 2^(e - 127), e a byte per group at sc_off, no bias.  A
// 32-element chunk of a row is exactly `bits` words and lies in one group.
#define FMT_F32 0u
#define FMT_F16 1u
#define FMT_BF16 2u
#define FMT_Q8_0 3u
#define FMT_Q4_0 4u
#define FMT_AFFINE 5u
#define FMT_MXFP4 6u
#define FMT_MXFP8 7u

layout(std430, set = 0, binding = 0) readonly buffer Weights { uint wd[]; };
layout(std430, set = 0, binding = 0) readonly buffer Weights4 { uvec4 wd4[]; };   // the same, 16 bytes a step

uint w_byte(uint a) { return (wd[a >> 2] >> ((a & 3u) << 3)) & 0xFFu; }
uint w_u16(uint a) { return (wd[a >> 2] >> ((a & 2u) << 3)) & 0xFFFFu; }   // a even
float w_f16(uint a) { return unpackHalf2x16(w_u16(a)).x; }
int w_i8(uint a) { return int(w_byte(a) << 24) >> 24; }
bool fmt_quant(uint fmt) { return fmt == FMT_Q8_0 || fmt == FMT_Q4_0; }   // GGUF: int8 activations (quantx.comp)
bool fmt_mlx(uint fmt) { return fmt >= FMT_AFFINE; }   // MLX: codes + per-group scales, f32 activations

// Element c of a dense (f32 / f16 / bf16) row starting at byte rb.
float w_dense(uint fmt, uint rb, uint c) {
    if (fmt == FMT_F32) return uintBitsToFloat(wd[(rb >> 2) + c]);
    if (fmt == FMT_F16) return w_f16(rb + 2u * c);
    return uintBitsToFloat(w_u16(rb + 2u * c) << 16);
}

// The 4 (f32: a) or 8 (f16 / bf16: a, then b) weights of a 16-byte step.
void w_vec(uint fmt, uvec4 u, out vec4 a, out vec4 b) {
    if (fmt == FMT_F32) {
        a = uintBitsToFloat(u);
        b = vec4(0.0);
    } else if (fmt == FMT_F16) {
        a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
        b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
    } else {
        a = uintBitsToFloat(uvec4(u.x << 16, u.x & 0xFFFF0000u, u.y << 16, u.y & 0xFFFF0000u));
        b = uintBitsToFloat(uvec4(u.z << 16, u.z & 0xFFFF0000u, u.w << 16, u.w & 0xFFFF0000u));
    }
}

// Elements [b*32, b*32+32) of the row starting at byte rb (0 past cols).
void w_block(uint fmt, uint rb, uint b, uint cols, inout float v[32]) {
    if (fmt == FMT_Q8_0) {
        uint a = rb + b * 34u;
        float d = w_f16(a);
        for (uint j = 0u; j < 32u; j++) v[j] = d * float(w_i8(a + 2u + j));
    } else if (fmt == FMT_Q4_0) {
        uint a = rb + b * 18u;
        float d = w_f16(a);
        for (uint j = 0u; j < 16u; j++) {
            uint q = w_byte(a + 2u + j);
            v[j] = d * float(int(q & 15u) - 8);
            v[j + 16u] = d * float(int(q >> 4) - 8);
        }
    } else {
        for (uint j = 0u; j < 32u; j++) {
            uint c = b * 32u + j;
            v[j] = c < cols ? w_dense(fmt, rb, c) : 0.0;
        }
    }
}

// The 4 / 8 bytes at byte a (a even) as words: the whole words that cover
// them, shifted into place where a is not 4-aligned (no branch: lanes'
// blocks alternate).  They may read a word past the bytes: weight buffers
// carry 16 bytes of padding (vk_session.c's upload_weight).
uint w_u32(uint a) {
    uint i = a >> 2, w0 = wd[i], w1 = wd[i + 1u];
    return (a & 2u) == 0u ? w0 : (w0 >> 16) | (w1 << 16);
}
uvec2 w_u64(uint a) {
    uint i = a >> 2, w0 = wd[i], w1 = wd[i + 1u], w2 = wd[i + 2u];
    return (a & 2u) == 0u ? uvec2(w0, w1) : uvec2((w0 >> 16) | (w1 << 16), (w1 >> 16) | (w2 << 16));
}

// MLX: code c of the row whose codes start at word rw (see above).
uint w_code(uint rw, uint c, uint bits) {
    uint bit = c * bits, i = rw + (bit >> 5), s = bit & 31u, v = wd[i] >> s;
    if (s + bits > 32u) v |= wd[i + 1u] << (32u - s);
    return v & ((1u << bits) - 1u);
}
// Scale and bias of group g of row r (G groups a row) of an MLX weight.
vec2 w_group(uint fmt, uint sfmt, uint sc_off, uint bi_off, uint r, uint G, uint g) {
    uint i = r * G + g;
    if (fmt == FMT_AFFINE) return vec2(w_dense(sfmt, sc_off, i), w_dense(sfmt, bi_off, i));
    return vec2(exp2(float(int(w_byte(sc_off + i)) - 127)), 0.0);   // E8M0
}

// The value of code q: affine q itself, mxfp4 E2M1, mxfp8 E4M3 (OCP FP8, 0x7F / 0xFF NaN).
float w_mlx_value(uint fmt, uint q) {
    if (fmt == FMT_AFFINE) return float(q);
    float sg = (q & (fmt == FMT_MXFP4 ? 8u : 128u)) != 0u ? -1.0 : 1.0;
    if (fmt == FMT_MXFP4) {
        uint e = (q >> 1) & 3u, m = q & 1u;
        return sg * (e == 0u ? 0.5 * float(m) : (1.0 + 0.5 * float(m)) * exp2(float(e) - 1.0));
    }
    uint e = (q >> 3) & 15u, m = q & 7u;
    if (e == 15u && m == 7u) return uintBitsToFloat(0x7FC00000u);
    return sg * (e == 0u ? float(m) / 512.0 : (1.0 + float(m) / 8.0) * exp2(float(e) - 7.0));
}

// The 32 codes of chunk b (elements b*32 ..) of the MLX row whose codes
// start at word rw, as f32 (fp modes: their values): 4 and 8 bits 16 bytes
// at a time (rw is then a multiple of 4: rows of cols / 8 or cols / 4
// words), others code by code.
void w_codes32(uint fmt, uint rw, uint b, uint bits, inout float q[32]) {
    if (bits == 4u) {
        uvec4 u = wd4[(rw >> 2) + b];
        for (uint j = 0u; j < 32u; j++) q[j] = float((u[j >> 3] >> (4u * (j & 7u))) & 15u);
    } else if (bits == 8u) {
        uvec4 u0 = wd4[(rw >> 2) + 2u * b], u1 = wd4[(rw >> 2) + 2u * b + 1u];
        for (uint j = 0u; j < 16u; j++) {
            q[j] = float((u0[j >> 2] >> (8u * (j & 3u))) & 255u);
            q[j + 16u] = float((u1[j >> 2] >> (8u * (j & 3u))) & 255u);
        }
    } else {
        for (uint j = 0u; j < 32u; j++) q[j] = float(w_code(rw, b * 32u + j, bits));
    }
    if (fmt != FMT_AFFINE)
        for (uint j = 0u; j < 32u; j++) q[j] = w_mlx_value(fmt, uint(q[j]));
}

// Elements [b*32, b*32+32) of MLX row r, dequantized (s * value + b).
void w_mlx_block(uint fmt, uint r, uint b, uint row_bytes, uint bits, uint gs, uint sfmt, uint sc_off, uint bi_off,
                 uint cols, inout float v[32]) {
    vec2 sb = w_group(fmt, sfmt, sc_off, bi_off, r, cols / gs, b * 32u / gs);
    w_codes32(fmt, r * row_bytes >> 2, b, bits, v);
    for (uint j = 0u; j < 32u; j++) v[j] = sb.x * v[j] + sb.y;
}
