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
// GGUF Q4_1 / Q5_0 / Q5_1 and K-quants Q4_K / Q5_K / Q6_K (ggml's block
// layouts, as src/quant/quant_gguf.c decodes them): read per 32-element
// sub-block s of a row (a K-quant block of 256 holds 8), as 8 words of 4
// signed byte codes (w_sub_codes: element 4k + i in byte i of word k), the
// integer scales of its two 16-element halves (w_sub_isc: 1 but for the
// K-quants' 6-bit / int8 sub-block scales) and (d, m) (w_sub_dm): value =
// d * (isc * code) + m.  Q4_1: d, m; Q5_0: d, codes q - 16; Q5_1: d, m;
// Q4_K / Q5_K: d, m = -dmin * min of the sub-block; Q6_K: d, codes q - 32.
#define FMT_F32 0u
#define FMT_F16 1u
#define FMT_BF16 2u
#define FMT_Q8_0 3u
#define FMT_Q4_0 4u
#define FMT_AFFINE 5u
#define FMT_MXFP4 6u
#define FMT_MXFP8 7u
#define FMT_Q4_1 8u
#define FMT_Q5_0 9u
#define FMT_Q5_1 10u
#define FMT_Q4_K 11u
#define FMT_Q5_K 12u
#define FMT_Q6_K 13u

layout(std430, set = 0, binding = 0) readonly buffer Weights { uint wd[]; };
layout(std430, set = 0, binding = 0) readonly buffer Weights4 { uvec4 wd4[]; };   // the same, 16 bytes a step

uint w_byte(uint a) { return (wd[a >> 2] >> ((a & 3u) << 3)) & 0xFFu; }
uint w_u16(uint a) { return (wd[a >> 2] >> ((a & 2u) << 3)) & 0xFFFFu; }   // a even
float w_f16(uint a) { return unpackHalf2x16(w_u16(a)).x; }
int w_i8(uint a) { return int(w_byte(a) << 24) >> 24; }
// GGUF formats the CPU engine multiplies with int8 activations (quantx.comp: blocks of 32, K-quants' d
// per 256); Q5_0 / Q5_1 / Q5_K it decodes to f32 and multiplies by f32 activations (src/kernels/qmatmul.c).
bool fmt_quant(uint fmt) {
    return fmt == FMT_Q8_0 || fmt == FMT_Q4_0 || fmt == FMT_Q4_1 || fmt == FMT_Q4_K || fmt == FMT_Q6_K;
}
bool fmt_mlx(uint fmt) { return fmt >= FMT_AFFINE && fmt <= FMT_MXFP8; }   // MLX: codes + per-group scales, f32 activations
bool fmt_sub(uint fmt) { return fmt >= FMT_Q4_1; }   // read by sub-block (w_sub_*)
bool fmt_min(uint fmt) { return fmt == FMT_Q4_1 || fmt == FMT_Q5_1 || fmt == FMT_Q4_K || fmt == FMT_Q5_K; }   // m != 0

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

void w_sub_block(uint fmt, uint rb, uint s, inout float v[32]);   // below

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
    } else if (fmt_sub(fmt)) {
        w_sub_block(fmt, rb, b, v);
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

// ---- sub-block formats (see above) ----

// The byte address of the block holding sub-block s of the row at byte rb.
uint w_sub_addr(uint fmt, uint rb, uint s) {
    if (fmt == FMT_Q4_1) return rb + 20u * s;
    if (fmt == FMT_Q5_0) return rb + 22u * s;
    if (fmt == FMT_Q5_1) return rb + 24u * s;
    return rb + (fmt == FMT_Q4_K ? 144u : fmt == FMT_Q5_K ? 176u : 210u) * (s >> 3);
}

// Bits 0..3 of h in the low bit of bytes 0..3 (Q5_0 / Q5_1's fifth bits of 4 elements).
uint w_spread4(uint h) { return (h & 1u) | ((h & 2u) << 7) | ((h & 4u) << 14) | ((h & 8u) << 21); }
// Each byte of v (0 .. 2o - 1) minus o, as a signed byte (no borrow between bytes).
uint w_bytes_minus(uint v, uint o) { return ((v | 0x80808080u) - o * 0x01010101u) ^ 0x80808080u; }

// Codes 4k .. 4k + 3 of sub-block s, one signed byte each.
uint w_sub_codes(uint fmt, uint rb, uint s, uint k) {
    uint a = w_sub_addr(fmt, rb, s), j = s & 7u;
    if (fmt == FMT_Q4_1) return (w_u32(a + 4u + 4u * (k & 3u)) >> (4u * (k >> 2))) & 0x0F0F0F0Fu;
    if (fmt == FMT_Q5_0 || fmt == FMT_Q5_1) {
        uint o = fmt == FMT_Q5_0 ? 2u : 4u;   // qh (32 bits, bit e: element e), then 16 bytes as Q4_0's
        uint lo = (w_u32(a + o + 4u + 4u * (k & 3u)) >> (4u * (k >> 2))) & 0x0F0F0F0Fu;
        uint v = lo | (w_spread4((w_u32(a + o) >> (4u * k)) & 15u) << 4);
        return fmt == FMT_Q5_0 ? w_bytes_minus(v, 16u) : v;
    }
    if (fmt == FMT_Q4_K)   // qs[128] at 16: 32 bytes per pair of sub-blocks, low nibbles the first
        return (w_u32(a + 16u + 32u * (j >> 1) + 4u * k) >> (4u * (j & 1u))) & 0x0F0F0F0Fu;
    if (fmt == FMT_Q5_K) {   // qh[32] at 16 (bit j of byte l: element l of sub-block j), qs[128] at 48
        uint lo = (w_u32(a + 48u + 32u * (j >> 1) + 4u * k) >> (4u * (j & 1u))) & 0x0F0F0F0Fu;
        return lo | (((w_u32(a + 16u + 4u * k) >> j) & 0x01010101u) << 4);
    }
    // Q6_K: ql[128] (half h = j / 4: 64 bytes, sub-block g = j % 4: bytes 32 (g & 1) .., nibble g / 2),
    // qh[64] at 128 (half h: 32 bytes, bits 2g, 2g + 1)
    uint h = j >> 2, g = j & 3u;
    uint lo = (w_u32(a + 64u * h + 32u * (g & 1u) + 4u * k) >> (4u * (g >> 1))) & 0x0F0F0F0Fu;
    uint hi = (w_u32(a + 128u + 32u * h + 4u * k) >> (2u * g)) & 0x03030303u;
    return w_bytes_minus(lo | (hi << 4), 32u);
}

// Q4_K / Q5_K: the 6-bit scale (x) and min (y) of sub-block j, from the 12 bytes at a.
uvec2 w_k4_scale(uint a, uint j) {
    if (j < 4u) return uvec2(w_byte(a + j) & 63u, w_byte(a + j + 4u) & 63u);
    uint b = w_byte(a + j + 4u);
    return uvec2((b & 15u) | ((w_byte(a + j - 4u) >> 6) << 4), (b >> 4) | ((w_byte(a + j) >> 6) << 4));
}

// The integer scales of sub-block s's halves (elements 0..15, 16..31).
ivec2 w_sub_isc(uint fmt, uint rb, uint s) {
    uint a = w_sub_addr(fmt, rb, s), j = s & 7u;
    if (fmt == FMT_Q4_K || fmt == FMT_Q5_K) return ivec2(int(w_k4_scale(a + 4u, j).x));
    if (fmt == FMT_Q6_K) return ivec2(w_i8(a + 192u + 2u * j), w_i8(a + 193u + 2u * j));   // int8 per 16
    return ivec2(1);
}

// (d, m) of sub-block s: value = d * (isc * code) + m.
vec2 w_sub_dm(uint fmt, uint rb, uint s) {
    uint a = w_sub_addr(fmt, rb, s);
    if (fmt == FMT_Q5_0) return vec2(w_f16(a), 0.0);
    if (fmt == FMT_Q6_K) return vec2(w_f16(a + 208u), 0.0);
    if (fmt == FMT_Q4_K || fmt == FMT_Q5_K) return vec2(w_f16(a), -w_f16(a + 2u) * float(w_k4_scale(a + 4u, s & 7u).y));
    return vec2(w_f16(a), w_f16(a + 2u));   // Q4_1, Q5_1
}

// Elements [s*32, s*32+32) of the row at byte rb, as f32.
void w_sub_block(uint fmt, uint rb, uint s, inout float v[32]) {
    vec2 dm = w_sub_dm(fmt, rb, s);
    ivec2 sc = w_sub_isc(fmt, rb, s);
    for (uint k = 0u; k < 8u; k++) {
        int w = int(w_sub_codes(fmt, rb, s, k)), c = sc[k >> 2];
        for (int i = 0; i < 4; i++) v[4u * k + uint(i)] = dm.x * float(c * bitfieldExtract(w, 8 * i, 8)) + dm.y;
    }
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
