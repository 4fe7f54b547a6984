// norm.glsl — RMSNorm of one token's row, h = v / sqrt(mean(v^2) + eps) * w
// (gemma: * (1 + w)), shared by rmsnorm.comp and matmul.comp (whose last
// workgroup norms the residual it just updated: the norm's dispatch folded
// into the matmul's).  Both run it as NORM_NTH = 256 virtual threads,
// whatever their workgroup's size: virtual thread v sums elements v, v + 256,
// ... and the 256 partial sums meet in a tree (norm_reduce), a quantized
// block of 32 is 8 virtual threads' 4 values each (normed_blocks: its
// max|v|, and its 256-value group's, met in shared memory: max() is exact in
// any order), so every sum runs in one order and the two kernels write the
// same bits.  The including shader defines NORM_WG (its invocations, a
// divisor of 256), the shared arrays norm_red[256] and norm_bmax[256], the
// readonly buffer vec (the weights), norm_in(mode, i) and norm_out(mode, i,
// h) (its sources and destinations), and includes quantize.glsl first.
#define NORM_NTH 256u
#define NORM_VT 4u     // virtual threads an invocation at most (NORM_WG >= 64)

float weighed(float v, float r, uint w_off, uint i, uint plus_one) {
    float w = vec[w_off + i];
    return plus_one != 0u ? (v * r) * (1.0 + w) : w * (v * r);
}

// 1 / sqrt(mean(v^2) + eps) of d values from the virtual threads' partial sums in norm_red
// (the caller wrote them; every invocation calls this: barriers).
float norm_reduce(uint d, float eps) {
    uint tid = gl_LocalInvocationID.x;
    barrier();
    for (uint h = NORM_NTH / 2u; h > 0u; h >>= 1) {
        for (uint v = tid; v < h; v += NORM_WG) norm_red[v] += norm_red[v + h];
        barrier();
    }
    float r = 1.0 / sqrt(norm_red[0] / float(d) + eps);
    barrier();   // norm_red is rewritten by the next norm
    return r;
}

// The sum of squares of elements v, v + 256, .. of src (mode's source) into norm_red[v], then the scale.
float norm_scale(uint mode, uint src, uint d, float eps) {
    for (uint v = gl_LocalInvocationID.x; v < NORM_NTH; v += NORM_WG) {
        float ss = 0.0;
        for (uint i = v; i < d; i += NORM_NTH) ss += norm_in(mode, src + i) * norm_in(mode, src + i);
        norm_red[v] = ss;
    }
    return norm_reduce(d, eps);
}

// The normed values (norm_in(mode, src + i)) to norm_out(mode, dst + i), then their codes into xq for token t
// (quant: 32, or 256 for the K-quants' d per 256-value group): virtual thread v takes values 4 v' .. + 3 of
// a round of 32 blocks (word v % 8 of block v / 8), with the block's own d (quant 32: the max of its 8
// virtual threads') or its group's (quant 256: 64 virtual threads', quantx.comp's d).  Every invocation
// runs every round (the barriers).
void normed_blocks(uint mode, uint src, uint dst, uint t, float r, uint w_off, uint d, uint quant, uint plus_one) {
    uint nb = d / 32u, per = quant / 4u, rb = NORM_NTH / 8u, tid = gl_LocalInvocationID.x;
    for (uint b0 = 0u; b0 < nb; b0 += rb) {
        float vals[NORM_VT][4];
        for (uint k = 0u; k < NORM_VT; k++) {
            uint v = tid + k * NORM_WG, b = b0 + v / 8u, i0 = b * 32u + 4u * (v % 8u);
            if (v >= NORM_NTH) break;
            float m = 0.0;
            if (b < nb)
                for (uint j = 0u; j < 4u; j++) {
                    uint i = i0 + j;
                    vals[k][j] = weighed(norm_in(mode, src + i), r, w_off, i, plus_one);
                    norm_out(mode, dst + i, vals[k][j]);
                    m = max(m, abs(vals[k][j]));
                }
            norm_bmax[v] = m;
        }
        barrier();
        for (uint k = 0u; k < NORM_VT; k++) {
            uint v = tid + k * NORM_WG, b = b0 + v / 8u, g0 = v / per * per;
            if (v >= NORM_NTH) break;
            float m = 0.0;
            for (uint j = g0; j < g0 + per; j++) m = max(m, norm_bmax[j]);
            if (b < nb) quantize_quarter(vals[k], m, (t * nb + b) * 9u, v % 8u);
        }
        barrier();   // norm_bmax is read until here
    }
}

// Token t's row of d values, src to dst: normed, weighed (w_off), and quantized where quant asks.
void norm_row(uint mode, uint src, uint dst, uint t, uint d, float eps, uint w_off, uint quant, uint plus_one) {
    float r = norm_scale(mode, src, d, eps);
    if (quant != 0u) {
        normed_blocks(mode, src, dst, t, r, w_off, d, quant, plus_one);
        return;
    }
    for (uint i = gl_LocalInvocationID.x; i < d; i += NORM_WG)
        norm_out(mode, dst + i, weighed(norm_in(mode, src + i), r, w_off, i, plus_one));
}
