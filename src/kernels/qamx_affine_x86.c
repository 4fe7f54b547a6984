/*
 * qamx_affine_x86.c — MLX affine 4/8-bit weights times 24-bit integer
 * activations (qdot.h sl_qd_prep_x24) for the "amx" set of qamx_x86.c: its
 * own one-token dots (sl_qd_affine24_fn), their GEMM on AMX int8 tiles
 * (sl_qd_affine24_gemm_fn), in an order both keep, and the GEMM's token
 * form (sl_amx_x24_tiles).
 *
 * The order (dot and GEMM alike): for a (row, token) pair and each group g
 * of gs elements (gs in {32, 64, 128}), the exact integer sums of the codes
 * q (0..15 or 0..255) times the activation planes, H_g = sum q h,
 * M_g = sum q m, L_g = sum q l, and T_g = 256 M_g + L_g (exact in int32 in
 * any order: |q| <= 255, |h|, |m|, |l| <= 128, gs <= 128, so
 * |M_g|, |L_g| <= 128 * 255 * 128 = 4177920 and |T_g| <= 257 * 4177920 =
 * 1073725440 < 2^31); the group value v_g = fmaf((float)H_g, 65536,
 * (float)T_g); then acc[g % 16] = fma(v_g, s_g * d_g, acc[g % 16]) and
 * acc[g % 16] = fma(b_g, xsum_g, acc[g % 16]) for g = 0, 1, ..., G - 1
 * (s_g, b_g the row's scale and bias widened to f32, d_g, xsum_g the
 * token's; s_g * d_g one f32 product; acc starts at +0), then the 16 lanes
 * halved (red16, qamx_x86.h).  The AVX-512 set's dot converts each 4-byte
 * lane to f32 before scaling (qaffine_x86.c); a tile gives whole-group sums
 * only, hence this set's own dots: bit-identical to its GEMM,
 * tolerance-identical to the other sets, like any two sets.
 *
 * The dot: per 16 groups, vpdpbusd of the codes (unsigned) with the h, m
 * and l planes per 64 code bytes (128 for 8-bit gs 128), m and l combined
 * as 256 m + l per lane (exact), then the lanes of each group added by
 * two-source permutes until lane i holds group i; one masked fma pair per
 * 16 groups.  4-bit codes are split into low / high nibbles, which meet the
 * planes' even / odd halves per 128 elements (sl_qd_prep_x24); a last 64
 * elements (cols % 128 == 64) is a 32-byte vector with zero upper lanes.
 *
 * The GEMM: one tile product is 16 tokens x 16 weight rows x one part of a
 * group, K = min(gs, 64) elements (tdpbsud: signed activation bytes x
 * unsigned codes), the elements of a group in one K order for both sides
 * (8-bit: as stored; 4-bit: the even elements, low nibbles, then the odd
 * ones, high nibbles): A = the 16 tokens' plane bytes for that part, a
 * tile of 16 x K contiguous bytes in the GEMM's token form (qdot.h
 * sl_qd_affine24_gemm_fn; sl_amx_x24_tiles writes it once per matmul, as
 * the tokens are prepared, and every call reads it in place: 16 rows a
 * token's planes apart, the loads ran about a third slower, and a
 * rearrangement per call cost as much as the products for a thread's
 * claim of 32 rows), B = a panel of 16 rows' codes for that part in the
 * VNNI layout (4 codes of each row per 64-byte tile row), unpacked once
 * per panel and chunk of tokens into the thread's scratch by gathers — the
 * weights stay mmap'd views — and C = int32 [token][row], one tile per
 * plane.  The f32 side walks lane by lane as qamx_x86.c's GEMM does: for
 * lane l the groups l, l + 16, ... in order (two groups' six products in
 * flight), the 16 tokens' 16-row accumulators in registers, parked in
 * scratch, then the halving over lanes as vector adds.  Tokens go in
 * chunks of up to 8 blocks of 16 (at most about 1 MiB: they stay in L2
 * while every panel of the call passes them); a last partial block of tn
 * tokens is stored and run with tiles of tn rows (no padding).
 */
#include "kernels/qamx_x86.h"

#if defined(SL_QD_AMX)
#include <string.h>

#define LD64(p) _mm512_loadu_si512((const void *)(p))

/* ---- the one-token dot ---- */

/* The h and T = 256 m + l lanes of 64 code bytes at c (8-bit: element c;
 * 4-bit: elements 2c..2c+127, or a last 64 when c + 64 > nbytes), added
 * into ih, it. */
T_512 __attribute__((always_inline)) static inline void x24_unit(int bits, const uint8_t *codes, const int8_t *ph,
                                                               size_t cols, size_t c, size_t nbytes, __m512i *ih,
                                                               __m512i *it) {
    __m512i im = _mm512_setzero_si512();   /* it += 256 m + l: the l products onto it + 256 m (exact) */
    if (bits == 8) {
        __m512i q = LD64(codes + c);
        *ih = _mm512_dpbusd_epi32(*ih, q, LD64(ph + c));
        im = _mm512_dpbusd_epi32(im, q, LD64(ph + cols + c));
        *it = _mm512_dpbusd_epi32(_mm512_add_epi32(*it, _mm512_slli_epi32(im, 8)), q, LD64(ph + 2 * cols + c));
    } else {
        const __m512i m4 = _mm512_set1_epi8(15);
        size_t o = 2 * c;
        __m512i q, ah, am, al, bh, bm, bl;
        if (c + 64 <= nbytes) {
            q = LD64(codes + c);
            ah = LD64(ph + o), am = LD64(ph + cols + o), al = LD64(ph + 2 * cols + o);
            bh = LD64(ph + o + 64), bm = LD64(ph + cols + o + 64), bl = LD64(ph + 2 * cols + o + 64);
        } else {   /* a last 64 elements: 32 code bytes, planes split 32 / 32 */
            const __mmask64 k = 0xffffffffull;
            q = _mm512_maskz_loadu_epi8(k, codes + c);
            ah = _mm512_maskz_loadu_epi8(k, ph + o), am = _mm512_maskz_loadu_epi8(k, ph + cols + o);
            al = _mm512_maskz_loadu_epi8(k, ph + 2 * cols + o);
            bh = _mm512_maskz_loadu_epi8(k, ph + o + 32), bm = _mm512_maskz_loadu_epi8(k, ph + cols + o + 32);
            bl = _mm512_maskz_loadu_epi8(k, ph + 2 * cols + o + 32);
        }
        __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        *ih = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(*ih, lo, ah), hi, bh);
        im = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(im, lo, am), hi, bm);
        *it = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_add_epi32(*it, _mm512_slli_epi32(im, 8)), lo, al), hi, bl);
    }
}

/* The dot for one (bits, gs) of R rows (row r: codes + r * ldc, scales
 * and biases + r * lds bytes; result out[r], R <= AMX_X24_ROWS), each
 * row the single dot's order, each row's codes prefetched X24_PF bytes
 * ahead (R interleaved streams read slower from memory without), the
 * planes' loads shared: per 16 groups V vectors of lanes (V
 * lanes per group), folded to one lane per group. */
#define X24_PF 2048   /* code bytes ahead each row stream prefetches (a hint: any address) */
#define AMX_X24_ROWS 4   /* at most; 4-bit takes 2 (its fold trees for 4 rows spill registers) */
#define AMX_X24_R(BITS) ((BITS) == 8 ? 4 : 2)
T_512 __attribute__((always_inline)) static inline void amx_x24(int R, int bits, int gs, const uint8_t *codes,
                                                              size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                                              size_t lds, sl_dtype sdt, const float *d,
                                                              const float *xsum, const int8_t *planes, size_t cols,
                                                              float *out) {
    const size_t G = cols / (size_t)gs, nbytes = cols * (size_t)bits / 8, bpg = (size_t)gs * (size_t)bits / 8;
    const size_t U = bpg > 64 ? 128 : 64;   /* code bytes per vector: one group of 8-bit gs 128 spans two */
    const int V = (int)(16 * bpg / U);
    const size_t ss = sdt == SL_F32 ? 4 : 2;
    const __m512 k16 = _mm512_set1_ps(65536.0f);
    __m512 acc[AMX_X24_ROWS];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (size_t g0 = 0; g0 < G; g0 += 16) {
        __m512i vh[AMX_X24_ROWS][8], vt[AMX_X24_ROWS][8];   /* vectors 2i and 2i + 1 folded as they come */
        for (int i = 0; i < V; i += 2) {
            __m512i h2[AMX_X24_ROWS][2], t2[AMX_X24_ROWS][2];
            for (int e = 0; e < 2; e++) {
                size_t c = g0 * bpg + (size_t)(i + e) * U;
                for (int r = 0; r < R; r++) h2[r][e] = t2[r][e] = _mm512_setzero_si512();
                for (size_t k = 0; k < U && c + k < nbytes; k += 64)
                    for (int r = 0; r < R; r++) {
                        _mm_prefetch((const char *)(codes + (size_t)r * ldc + c + k + X24_PF), _MM_HINT_T0);
                        x24_unit(bits, codes + (size_t)r * ldc, planes, cols, c + k, nbytes, &h2[r][e], &t2[r][e]);
                    }
            }
            for (int r = 0; r < R; r++) vh[r][i / 2] = fold(h2[r][0], h2[r][1]), vt[r][i / 2] = fold(t2[r][0], t2[r][1]);
        }
        __mmask16 m = mask_upto(G - g0);
        __m512 dv = _mm512_maskz_loadu_ps(m, d + g0), xv = _mm512_maskz_loadu_ps(m, xsum + g0);
        for (int r = 0; r < R; r++) {
            for (int n = V / 2; n > 1; n /= 2)
                for (int i = 0; i < n / 2; i++)
                    vh[r][i] = fold(vh[r][2 * i], vh[r][2 * i + 1]), vt[r][i] = fold(vt[r][2 * i], vt[r][2 * i + 1]);
            const uint8_t *sr = scales + (size_t)r * lds + ss * g0, *br = biases + (size_t)r * lds + ss * g0;
            __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(vh[r][0]), k16, _mm512_cvtepi32_ps(vt[r][0]));
            acc[r] = _mm512_mask3_fmadd_ps(v, _mm512_mul_ps(ld_scales(sr, sdt, m), dv), acc[r], m);
            acc[r] = _mm512_mask3_fmadd_ps(ld_scales(br, sdt, m), xv, acc[r], m);
        }
    }
    for (int r = 0; r < R; r++) out[r] = red16(acc[r]);
}

/* R rows of one (bits, gs), R <= AMX_X24_ROWS. */
#define AMX_X24_GS(R, BITS, gs, ...)                                                   \
    ((gs) == 32 ? amx_x24(R, BITS, 32, __VA_ARGS__) : (gs) == 64 ? amx_x24(R, BITS, 64, __VA_ARGS__) \
                                                    : amx_x24(R, BITS, 128, __VA_ARGS__))

#define AMX_X24_DOT(NAME, BITS)                                                                              \
    T_512 float NAME(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,       \
                     const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs) {         \
        float out;                                                                                           \
        AMX_X24_GS(1, BITS, gs, codes, 0, scales, biases, 0, sdt, d, xsum, planes, cols, &out);              \
        return out;                                                                                          \
    }
AMX_X24_DOT(sl_amx_affine4_x24, 4)
AMX_X24_DOT(sl_amx_affine8_x24, 8)

/* The dots for nr rows x nt tokens (qdot.h sl_qd_affine24_mm_fn: generation
 * and batches below the GEMM's), AMX_X24_R rows per pass: each output
 * the dot's bits. */
#define AMX_X24_MM(NAME, BITS)                                                                               \
    T_512 void NAME(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases, size_t lds,   \
                    sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols, int gs, float *out, \
                    size_t ldo) {                                                                            \
        size_t G = cols / (size_t)gs;                                                                        \
        for (int t = 0; t < nt; t++) {                                                                       \
            const float *xs = (const float *)(const void *)(act + (size_t)t * lda);                          \
            const int8_t *pt = (const int8_t *)(const void *)(xs + 2 * G);                                   \
            float *o = out + (size_t)t * ldo;                                                                \
            int r = 0;                                                                                       \
            for (; r + AMX_X24_R(BITS) <= nr; r += AMX_X24_R(BITS))                                          \
                AMX_X24_GS(AMX_X24_R(BITS), BITS, gs, codes + (size_t)r * ldc, ldc, scales + (size_t)r * lds,   \
                           biases + (size_t)r * lds, lds, sdt, xs + G, xs, pt, cols, o + r);                 \
            for (; r < nr; r++)                                                                              \
                AMX_X24_GS(1, BITS, gs, codes + (size_t)r * ldc, ldc, scales + (size_t)r * lds,              \
                           biases + (size_t)r * lds, lds, sdt, xs + G, xs, pt, cols, o + r);                 \
        }                                                                                                    \
    }
AMX_X24_MM(sl_amx_affine4_x24_mm, 4)
AMX_X24_MM(sl_amx_affine8_x24_mm, 8)

/* ---- the GEMM ---- */

/* Where group g lies: its first code byte and the plane positions of its
 * elements in the GEMM's K order.  8-bit: the elements in order from lo;
 * 4-bit: the even ones (low nibbles, the planes' even half: gs / 2 bytes
 * from lo), then the odd ones (high nibbles, gs / 2 bytes from hi).  A
 * tile product takes kb = min(gs, 64) of them (a group is gs / kb parts). */
typedef struct x24_group {
    size_t code, lo, hi;
} x24_group;
static inline x24_group group_at(int bits, size_t cols, int gs, size_t g) {
    x24_group p;
    size_t e = g * (size_t)gs;
    if (bits == 8) {
        p.code = p.lo = p.hi = e;   /* one segment of gs */
        return p;
    }
    size_t e0 = e & ~(size_t)127, len = cols - e0 >= 128 ? 128 : cols - e0, o = (e - e0) / 2;
    p.code = e0 / 2 + o;
    p.lo = e0 + o, p.hi = e0 + len / 2 + o;
    return p;
}

/* Tiles 0-2: C of one group (h, m, l planes: ar tokens x 16 rows int32),
 * 3-5: C of a second group; 6: A (ar tokens x kb bytes); 7: B (kb / 4 x 64 bytes). */
T_AMX static void x24_tiles_on(int kb, int ar) {
    _Alignas(64) sl_amx_tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) {
        c.rows[i] = (uint8_t)(i == 7 ? kb / 4 : ar);
        c.colsb[i] = (uint16_t)(i == 6 ? kb : 64);
    }
    MEM_BARRIER();
    _tile_loadconfig(&c);
}

/* The scales (or biases) of type t of the rows in mask m, row r's dword
 * at p + idx[r] (16-bit types: its low half, or its high half where hi;
 * the caller keeps the dword inside the row), widened as ld_scales does;
 * other rows 0. */
T_512 static inline __m512 scales16(const uint8_t *p, sl_dtype t, __m512i idx, __mmask16 m, int hi) {
    __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, (const void *)p, 1);
    if (t == SL_F32) return _mm512_castsi512_ps(v);
    if (hi) v = _mm512_srli_epi32(v, 16);
    if (t == SL_F16) return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* The panel of rows [0, nr) (nr <= 16; the rest zero): group g's codes in
 * K order as gs / 4 VNNI rows of 64 bytes (4 codes of each of the 16 rows)
 * at bp + 16 g gs, its scales at sp[16 g + r], biases at bq[16 g + r]. */
T_512 static void x24_panel(int bits, const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                            size_t lds, sl_dtype sdt, int nr, size_t cols, int gs, int8_t *bp, float *sp, float *bq) {
    const __mmask16 m = (__mmask16)((1u << nr) - 1u);
    const __m512i z = _mm512_setzero_si512(), m4 = _mm512_set1_epi8(15);
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32((int)ldc));
    const __m512i idxs = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)lds));
    size_t G = cols / (size_t)gs, ss = sdt == SL_F32 ? 4 : 2;
    for (size_t g = 0; g < G; g++) {
        size_t c = group_at(bits, cols, gs, g).code;
        int8_t *o = bp + 16 * g * (size_t)gs;
        for (int k = 0; k < gs * bits / 32; k++) {   /* the group's code dwords */
            __m512i w = _mm512_mask_i32gather_epi32(z, m, idx, (const void *)(codes + c + 4 * (size_t)k), 1);
            if (bits == 8) {
                _mm512_store_si512((void *)(o + 64 * k), w);
                continue;
            }
            _mm512_store_si512((void *)(o + 64 * k), _mm512_and_si512(w, m4));
            _mm512_store_si512((void *)(o + 8 * gs + 64 * k), _mm512_and_si512(_mm512_srli_epi32(w, 4), m4));
        }
        if (ss == 2 && G == 1) {   /* one 16-bit value per row: no dword inside the row */
            for (int r = 0; r < 16; r++) {
                __mmask16 m1 = r < nr ? 1 : 0;
                sp[16 * g + (size_t)r] = _mm512_cvtss_f32(ld_scales(scales + (size_t)r * lds, sdt, m1));
                bq[16 * g + (size_t)r] = _mm512_cvtss_f32(ld_scales(biases + (size_t)r * lds, sdt, m1));
            }
            continue;
        }
        int hi = ss == 2 && g > 0;   /* 16-bit: the dword ending at the value (g > 0) or starting there (g = 0) */
        _mm512_store_ps(sp + 16 * g, scales16(scales + ss * g - 2 * (size_t)hi, sdt, idxs, m, hi));
        _mm512_store_ps(bq + 16 * g, scales16(biases + ss * g - 2 * (size_t)hi, sdt, idxs, m, hi));
    }
}

/* Columns [c0, c0 + cc) of token i of a block of tn (qdot.h
 * sl_qd_x24_tiles_fn): group g's part j (K order, group_at) at
 * tiles + tn (3 o + kb p) for plane p (o = g gs + j kb, the part's first
 * K index over the row), the token's kb bytes at + kb i: each tile
 * tn x kb contiguous bytes. */
T_512 void sl_amx_x24_tiles(const int8_t *planes, size_t c0, size_t cc, size_t cols, int gs, int bits, int i,
                            int tn, int8_t *tiles) {
    (void)cols;
    const int kb = gs > 64 ? 64 : gs, seg = bits == 8 ? gs : gs / 2, piece = seg < 64 ? seg : 64;   /* two segments of seg bytes per group */
    const __mmask64 m = piece == 64 ? ~(__mmask64)0 : ((__mmask64)1 << piece) - 1;
    const size_t G = cc / (size_t)gs, pt = (size_t)tn * (size_t)kb;
    for (size_t g = 0; g < G; g++) {
        x24_group q = group_at(bits, cc, gs, g);
        for (int k = 0; k < gs; k += piece) {   /* K index k: a piece within one part */
            size_t src = k < seg ? q.lo + (size_t)k : q.hi + (size_t)(k - seg), o = c0 + g * (size_t)gs + (size_t)(k / kb * kb);
            int8_t *dst = tiles + 3 * (size_t)tn * o + (size_t)kb * (size_t)i + (size_t)(k % kb);
            for (int p = 0; p < 3; p++)
                _mm512_mask_storeu_epi8(dst + pt * (size_t)p, m, _mm512_maskz_loadu_epi8(m, planes + (size_t)p * cc + src));
        }
    }
}

/* The three planes' products of group g into C tiles C0, C1, C2 (A at a:
 * the token block's planes, sl_amx_x24_tiles, tn tokens). */
#define X24_PRODUCTS(C0, C1, C2, g)                                        \
    do {                                                                   \
        _tile_zero(C0);                                                    \
        _tile_zero(C1);                                                    \
        _tile_zero(C2);                                                    \
        for (int j = 0; j < np; j++) {                                     \
            size_t o_ = (g) * (size_t)gs + (size_t)j * (size_t)kb;         \
            const int8_t *a_ = a + 3 * (size_t)tn * o_;                    \
            _tile_loadd(7, bp + 16 * o_, 64);                              \
            _tile_loadd(6, a_, kb);                                        \
            _tile_dpbsud(C0, 6, 7);                                        \
            _tile_loadd(6, a_ + (size_t)tn * kb, kb);                      \
            _tile_dpbsud(C1, 6, 7);                                        \
            _tile_loadd(6, a_ + 2 * (size_t)tn * kb, kb);                  \
            _tile_dpbsud(C2, 6, 7);                                        \
        }                                                                  \
    } while (0)

/* One group's f32 terms for 16 tokens (C at c: [plane][token][row]; the
 * tokens' xsum at xs[t], d at xs[t] + G): the dot's two fmas per lane. */
T_512 static inline void x24_post(__m512 *acc, const int32_t *c, const float *sg, const float *bg, const float *const *xs,
                                  size_t G, size_t g) {
    const __m512 s = _mm512_load_ps(sg), b = _mm512_load_ps(bg), k16 = _mm512_set1_ps(65536.0f);
    UNROLL_ALL
    for (int t = 0; t < 16; t++) {
        __m512i h = _mm512_load_si512((const void *)(c + 16 * t)), m = _mm512_load_si512((const void *)(c + 256 + 16 * t));
        __m512i l = _mm512_load_si512((const void *)(c + 512 + 16 * t));
        __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(h), k16,
                                   _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(m, 8), l)));
        acc[t] = _mm512_fmadd_ps(v, _mm512_mul_ps(s, _mm512_set1_ps(xs[t][G + g])), acc[t]);
        acc[t] = _mm512_fmadd_ps(b, _mm512_set1_ps(xs[t][g]), acc[t]);
    }
}

/* A GEMM call: its arguments and its scratch (amx_x24_gemm). */
typedef struct x24_job {
    int bits, gs, kb, nr;
    const uint8_t *codes, *scales, *biases, *act;
    size_t ldc, lds, tb, cols, ldo;   /* tb: bytes per token in act (8 G + 3 cols) */
    sl_dtype sdt;
    float *out;
    int8_t *bp;               /* the panel */
    float *sp, *bq, *accb;    /* the panel's scales and biases; the parked lanes [lane][token][row] */
    int32_t *cb;              /* C tiles stored: [tile][token][row] */
    int ar;                   /* A / C tile rows configured (-1: none yet) */
} x24_job;

/* One panel of 16 rows from r0 by the tokens [c0, c1) of a chunk. */
T_AMX static void x24_panel_tokens(x24_job *jb, int r0, int c0, int c1) {
    const int bits = jb->bits, gs = jb->gs, kb = jb->kb, np = gs / kb;
    const size_t cols = jb->cols, G = cols / (size_t)gs, tb = jb->tb, ldo = jb->ldo;
    const uint8_t *act = jb->act;
    const int8_t *bp = jb->bp;
    const float *sp = jb->sp, *bq = jb->bq;
    float *accb = jb->accb, *out = jb->out;
    int32_t *cb = jb->cb;
    int pr = jb->nr - r0 < 16 ? jb->nr - r0 : 16;
    x24_panel(bits, jb->codes + (size_t)r0 * jb->ldc, jb->ldc, jb->scales + (size_t)r0 * jb->lds,
              jb->biases + (size_t)r0 * jb->lds, jb->lds, jb->sdt, pr, cols, gs, jb->bp, jb->sp, jb->bq);
    MEM_BARRIER();
    for (int t0 = c0; t0 < c1; t0 += 16) {
        int tn = c1 - t0 < 16 ? c1 - t0 : 16;
        if (tn != jb->ar) x24_tiles_on(kb, jb->ar = tn);
        const int8_t *a = (const int8_t *)(act + (size_t)t0 * tb);   /* the block of tokens t0 .. t0 + tn - 1 */
        const float *xs[16];
        for (int t = 0; t < 16; t++) xs[t] = (const float *)(const void *)(a + (size_t)tn * 3 * cols + (size_t)(t < tn ? t : 0) * 8 * G);
        for (size_t l = 0; l < 16; l++) {
            __m512 acc[16];
            UNROLL_ALL
            for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
            size_t g = l;
            for (; g + 16 < G; g += 32) {   /* groups g and g + 16 (same lane) in flight */
                X24_PRODUCTS(0, 1, 2, g);
                X24_PRODUCTS(3, 4, 5, g + 16);
                _tile_stored(0, cb, 64);
                _tile_stored(1, cb + 256, 64);
                _tile_stored(2, cb + 512, 64);
                _tile_stored(3, cb + 768, 64);
                _tile_stored(4, cb + 1024, 64);
                _tile_stored(5, cb + 1280, 64);
                MEM_BARRIER();
                x24_post(acc, cb, sp + 16 * g, bq + 16 * g, xs, G, g);
                x24_post(acc, cb + 768, sp + 16 * (g + 16), bq + 16 * (g + 16), xs, G, g + 16);
            }
            if (g < G) {
                X24_PRODUCTS(0, 1, 2, g);
                _tile_stored(0, cb, 64);
                _tile_stored(1, cb + 256, 64);
                _tile_stored(2, cb + 512, 64);
                MEM_BARRIER();
                x24_post(acc, cb, sp + 16 * g, bq + 16 * g, xs, G, g);
            }
            UNROLL_ALL
            for (int t = 0; t < 16; t++) _mm512_store_ps(accb + l * 256 + 16 * (size_t)t, acc[t]);
        }
        for (int t = 0; t < tn; t++)   /* red16 over the lanes, 16 rows at a time */
            _mm512_mask_storeu_ps(out + (size_t)(t0 + t) * ldo + r0, (__mmask16)((1u << pr) - 1u),
                                  red16_lanes(accb + 16 * (size_t)t, 256));
    }
}

/* Tokens per chunk: blocks of 16 up to about 1 MiB (they stay in L2 while
 * every panel of the call passes them), 1 to 8 blocks. */
static int x24_chunk(size_t tb) {
    size_t b = ((size_t)1 << 20) / (16 * tb);
    return 16 * (b < 1 ? 1 : b > 8 ? 8 : (int)b);
}

T_AMX static void amx_x24_gemm(int bits, const uint8_t *codes, size_t ldc, const uint8_t *scales,
                               const uint8_t *biases, size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt,
                               size_t cols, int gs, float *out, size_t ldo, void *scratch) {
    const size_t G = cols / (size_t)gs;
    x24_job jb = {.bits = bits, .gs = gs, .kb = gs > 64 ? 64 : gs, .nr = nr, .codes = codes,
                  .scales = scales, .biases = biases, .act = act, .ldc = ldc, .lds = lds, .tb = 8 * G + 3 * cols,
                  .cols = cols, .ldo = ldo, .sdt = sdt, .out = out, .bp = scratch, .ar = -1};
    jb.sp = (float *)(void *)(jb.bp + 16 * cols), jb.bq = jb.sp + 16 * G, jb.accb = jb.bq + 16 * G;
    jb.cb = (int32_t *)(void *)(jb.accb + 16 * 256);
    memset(jb.cb, 0, 6 * 1024);   /* rows of a partial token block stay defined */
    int tc = x24_chunk(jb.tb);
    for (int c0 = 0; c0 < nt; c0 += tc) {   /* a chunk of tokens stays in L2 while the panels pass */
        int c1 = nt - c0 < tc ? nt : c0 + tc;
        for (int r0 = 0; r0 < nr; r0 += 16) x24_panel_tokens(&jb, r0, c0, c1);
    }
    _tile_release();
}

T_AMX void sl_amx_affine4_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                   size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                                   float *out, size_t ldo, void *scratch) {
    amx_x24_gemm(4, codes, ldc, scales, biases, lds, sdt, nr, act, nt, cols, gs, out, ldo, scratch);
}
T_AMX void sl_amx_affine8_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                   size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                                   float *out, size_t ldo, void *scratch) {
    amx_x24_gemm(8, codes, ldc, scales, biases, lds, sdt, nr, act, nt, cols, gs, out, ldo, scratch);
}
#else
typedef int sl_qamx_affine_x86_unused; /* ISO C forbids an empty translation unit */
#endif
