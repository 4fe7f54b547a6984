// tiled.glsl — what the two prompt (matrix-matrix) kernels share
// (matmul_tiled.comp: 64 x 64 tiles; matmul_tiled2.comp: 128 x 64 with
// coalesced loads a step ahead; matmul_tiled3.comp: the int8 formats' 128 x
// 64 tiles in 8 x 8 register blocks): their bindings and push constants
// (matmul.comp's), the loads of a step's weights and activations, and the
// write of an output.  Include after intdot.glsl and weights.glsl.
//
// A load (tl_fetch_w, tl_fetch_x) is one item: a quarter kq of the
// 32-column step k0 (columns k0 + 8 kq .. + 7; Q4_0 f32: see below) of one
// row or token, converted as they go into shared memory, held in
// registers (TItem) until tl_store_w / tl_store_x put them there through the
// including kernel's layout (put4_w / put_wu / put_dm and put4_x / put_xu /
// put_dx, declared below, defined by the kernel).  What an item holds (see
// matmul_tiled.comp's header for the arithmetic):
//  - f32 (dense, MLX, GGUF codes as f32 integers): a, b the 8 values' bits,
//    at columns 8 kq .. + 3 and 8 kq + 4 .. + 7 of the step; Q4_0 (4 low and
//    4 high nibbles of 4 bytes): 4 kq .. + 3 and 16 + 4 kq .. + 3;
//  - packed codes (packed_codes(): the SILICA_INT_DOT build, or any build of
//    a kernel that defines TL_PACK_ALL true before including this, for the
//    int8-activation formats): a.x, a.y the code words 2 kq, 2 kq + 1, isc the integer scale
//    of half kq / 2 (stored by the even kq at word PK_ISC + kq / 2);
//  - dm: the GGUF block's (d, m) of a weight row (m 0 but for fmt_min), d_x
//    of a token's int8 block; read and stored by kq 0 alone.
// Rows and tokens past the matrix are zero items (scales 0 too), columns
// past cols zeros: the kernels neither read back nor write them.
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(std430, set = 0, binding = 3) readonly buffer Vec { float vec[]; };
layout(std430, set = 0, binding = 4) readonly buffer XQ { uint xq[]; };   // quantx.comp's blocks
layout(push_constant) uniform P {
    uint fmt, rows, cols, row_bytes, n, x_off, ldx, y_off, ldy;
    int bias_off;   // into vec, -1: none
    uint accumulate;
    float softcap;  // 0: none
    uint team;      // unused here (matmul.comp's)
    uint vec;       // 1: dense rows and x rows 16-byte aligned (see matmul.comp; MLX: x rows alone)
    uint bits, gs, sfmt, sc_off, bi_off;   // MLX formats (weights.glsl)
} p;

#define PK_ISC 8u   // packed codes: the word (k) of half h's integer scale is PK_ISC + h

struct TItem {
    uvec4 a, b;
    vec2 dm;
    int isc;
};

// The including kernel's shared-memory layout: 4 values (bits) at columns k .. k + 3 (k a multiple of 4)
// of row m / token t, one word at column (packed: word) k, the block scales.
void put4_w(uint k, uint m, uvec4 v);
void put_wu(uint k, uint m, uint v);
void put_dm(uint m, vec2 dm);
void put4_x(uint k, uint t, uvec4 v);
void put_xu(uint k, uint t, uint v);
void put_dx(uint t, float d);

// This build and format keep the codes packed (see above).
#ifndef TL_PACK_ALL
#define TL_PACK_ALL false
#endif
bool packed_codes() { return (INT_DOT || TL_PACK_ALL) && fmt_quant(p.fmt); }

TItem tl_zero() { return TItem(uvec4(0u), uvec4(0u), vec2(0.0), 0); }

// Two words of signed byte codes as 8 f32 integers (times isc) in an item.
void tl_codes_f32(uvec2 c, int isc, inout TItem it) {
    for (int j = 0; j < 4; j++) {
        it.a[j] = floatBitsToUint(float(isc * bitfieldExtract(int(c.x), 8 * j, 8)));
        it.b[j] = floatBitsToUint(float(isc * bitfieldExtract(int(c.y), 8 * j, 8)));
    }
}

// The GGUF item of row byte rb (a whole row of blocks): Q8_0 / Q4_0, or a sub-block format's step.
TItem tl_fetch_gguf(uint rb, uint k0, uint kq) {
    TItem it = tl_zero();
    uint s = k0 / 32u;
    uvec2 c;
    if (fmt_sub(p.fmt)) {   // code words 2 kq, 2 kq + 1 of sub-block s: one 16-element half
        if (kq == 0u) it.dm = w_sub_dm(p.fmt, rb, s);
        it.isc = w_sub_isc(p.fmt, rb, s)[kq >> 1];
        c = uvec2(w_sub_codes(p.fmt, rb, s, 2u * kq), w_sub_codes(p.fmt, rb, s, 2u * kq + 1u));
    } else if (p.fmt == FMT_Q8_0) {
        uint a = rb + s * 34u;
        if (kq == 0u) it.dm.x = w_f16(a);
        it.isc = 1;
        c = w_u64(a + 2u + kq * 8u);
    } else {   // Q4_0
        uint a = rb + s * 18u;
        if (kq == 0u) it.dm.x = w_f16(a);
        it.isc = 1;
        if (packed_codes()) {   // elements 8 kq .. + 7: the low (kq < 2) or high nibbles of bytes 8 (kq & 1) ..
            c = (w_u64(a + 2u + 8u * (kq & 1u)) >> (4u * (kq >> 1))) & 0x0F0F0F0Fu;
            c = uvec2(w_bytes_minus(c.x, 8u), w_bytes_minus(c.y, 8u));
        } else {   // the 4 bytes at 4 kq: elements 4 kq .. + 3 (low nibbles) and 16 + 4 kq .. (high)
            uint w = w_u32(a + 2u + kq * 4u);
            for (uint j = 0u; j < 4u; j++) {
                it.a[j] = floatBitsToUint(float(int(bitfieldExtract(w, int(8u * j), 4)) - 8));
                it.b[j] = floatBitsToUint(float(int(bitfieldExtract(w, int(8u * j + 4u), 4)) - 8));
            }
            return it;
        }
    }
    if (packed_codes()) it.a.xy = c;
    else tl_codes_f32(c, it.isc, it);
    return it;
}

// Row r's item kq of step k0.
TItem tl_fetch_w(uint r, uint k0, uint kq) {
    if (r >= p.rows) return tl_zero();
    uint rb = r * p.row_bytes, c0 = k0 + kq * 8u;
    if (fmt_quant(p.fmt) || fmt_sub(p.fmt)) return tl_fetch_gguf(rb, k0, kq);
    TItem it = tl_zero();
    if (fmt_mlx(p.fmt)) {   // cols: whole groups, so c0 < cols; 8 codes of one group
        vec2 sb = w_group(p.fmt, p.sfmt, p.sc_off, p.bi_off, r, p.cols / p.gs, c0 / p.gs);
        for (uint j = 0u; j < 4u; j++) {
            it.a[j] = floatBitsToUint(sb.x * w_mlx_value(p.fmt, w_code(rb >> 2, c0 + j, p.bits)) + sb.y);
            it.b[j] = floatBitsToUint(sb.x * w_mlx_value(p.fmt, w_code(rb >> 2, c0 + 4u + j, p.bits)) + sb.y);
        }
    } else if (p.vec != 0u && c0 < p.cols) {   // p.vec: cols a multiple of 8 (f16 / bf16) or 4 (f32)
        vec4 a, b;
        if (p.fmt == FMT_F32) {
            uint q = (rb >> 4) + c0 / 4u;
            w_vec(p.fmt, wd4[q], a, b);
            b = c0 + 4u < p.cols ? uintBitsToFloat(wd4[q + 1u]) : vec4(0.0);
        } else {
            w_vec(p.fmt, wd4[(rb >> 4) + c0 / 8u], a, b);
        }
        it.a = floatBitsToUint(a);
        it.b = floatBitsToUint(b);
    } else {
        for (uint j = 0u; j < 4u; j++) {
            it.a[j] = floatBitsToUint(c0 + j < p.cols ? w_dense(p.fmt, rb, c0 + j) : 0.0);
            it.b[j] = floatBitsToUint(c0 + 4u + j < p.cols ? w_dense(p.fmt, rb, c0 + 4u + j) : 0.0);
        }
    }
    return it;
}

// Token tt's item kq of step k0 (x, or its int8 blocks in xq).
TItem tl_fetch_x(uint tt, uint k0, uint kq) {
    TItem it = tl_zero();
    uint c0 = k0 + kq * 8u;
    if (tt >= p.n) return it;
    if (fmt_quant(p.fmt)) {
        uint o = (tt * (p.cols / 32u) + k0 / 32u) * 9u;
        if (kq == 0u) it.dm.x = uintBitsToFloat(xq[o]);
        uvec2 c = uvec2(xq[o + 1u + 2u * kq], xq[o + 2u + 2u * kq]);
        if (packed_codes()) it.a.xy = c;
        else tl_codes_f32(c, 1, it);
    } else if (p.vec != 0u && c0 < p.cols) {
        uint q = (p.x_off + tt * p.ldx + c0) >> 2;
        it.a = floatBitsToUint(x4[q]);
        it.b = floatBitsToUint(c0 + 4u < p.cols ? x4[q + 1u] : vec4(0.0));
    } else {
        uint xb = p.x_off + tt * p.ldx;
        for (uint j = 0u; j < 4u; j++) {
            it.a[j] = floatBitsToUint(c0 + j < p.cols ? x[xb + c0 + j] : 0.0);
            it.b[j] = floatBitsToUint(c0 + 4u + j < p.cols ? x[xb + c0 + 4u + j] : 0.0);
        }
    }
    return it;
}

// Row m's item kq into shared memory (see above).
void tl_store_w(TItem it, uint m, uint kq) {
    if (packed_codes()) {
        put_wu(2u * kq, m, it.a.x);
        put_wu(2u * kq + 1u, m, it.a.y);
        if ((kq & 1u) == 0u) put_wu(PK_ISC + (kq >> 1), m, uint(it.isc));
    } else if (p.fmt == FMT_Q4_0) {
        put4_w(4u * kq, m, it.a);
        put4_w(16u + 4u * kq, m, it.b);
    } else {
        put4_w(8u * kq, m, it.a);
        put4_w(8u * kq + 4u, m, it.b);
    }
    if (kq == 0u) put_dm(m, it.dm);
}

// Token t's item kq into shared memory.
void tl_store_x(TItem it, uint t, uint kq) {
    if (packed_codes()) {
        put_xu(2u * kq, t, it.a.x);
        put_xu(2u * kq + 1u, t, it.a.y);
    } else {
        put4_x(8u * kq, t, it.a);
        put4_x(8u * kq + 4u, t, it.b);
    }
    if (kq == 0u) put_dx(t, it.dm.x);
}

// y[t][r] = s (+ bias) (+ y) (softcapped).
void tl_out(uint r, uint t, float s) {
    uint o = p.y_off + t * p.ldy + r;
    if (p.bias_off >= 0) s += vec[uint(p.bias_off) + r];
    if (p.accumulate != 0u) s += y[o];
    if (p.softcap > 0.0) s = p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
    y[o] = s;
}
