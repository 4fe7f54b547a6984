/*
 * qaffine_x86.c — MLX affine 4-bit weights times 24-bit integer
 * activations on AVX-512 VNNI (qdot.h sl_qd_affine24_fn, and its GEMM tile
 * sl_qd_affine24_mm_fn for prompts), for the "avx512" set of qdot_x86.c;
 * the activations' planes (sl_v512_prep_x24) for both widths.  8-bit
 * weights take group lanes (qaffine8_x86.c); the helpers here keep a bits
 * argument (always 4) for the lane offsets they share with the planes.
 *
 * The one-token dot: the row's scales are widened and multiplied by the
 * token's d into ls (stack), the bias term is a 16-lane dot; then per 64
 * code bytes, vpdpbusd of the codes (unsigned) with the h, m and l int8
 * planes (low nibbles against the even elements, high against the odd);
 * each i32 lane (4 code bytes, inside one group) holds the whole
 * 65536 h + 256 m + l exactly (|.| <= 8 * 15 * SL_QD_X24_MAX < 2^31: the
 * m and l products accumulate onto the shifted h and m sums), one
 * conversion rounds it, scaled by its group's ls, on one f32 chain; a
 * last 32 code bytes (cols % 128 == 64) form a 256-bit tail.
 *
 * The tile (rows x tokens in registers) runs that chain for every (row,
 * token) pair with the same operands: codes unpacked once per row and
 * chunk for all tokens, the token's d and the row's scales broadcast once
 * per chunk and multiplied into the pair's s_g * d_g (the dot's ls, the
 * same single f32 product), the same lanes, the same bias dot, the same
 * final additions: every output has its one-token dot's bits, so neither
 * batching nor the row split between threads changes a result.
 * One-token calls take X24_R1 rows per pass on Intel and one on AMD
 * (x24_one_stream: which reads faster from memory there), each row its own
 * chain, so the CPU's vendor changes speed, never a bit.
 */
#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)
#include <stdbool.h>
#include <string.h>

#include "silica/cpu.h"

#define LD64(p) _mm512_loadu_si512((const void *)(p))
#define LD32(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

/* The exact integer lanes of 64 code bytes (q: codes; lo / hi: their
 * nibbles for 4-bit) against one token's planes (ph, pm, pl at the chunk)
 * as one f32 vector: 65536 h + (256 m + l), rounded once. */
T_512 __attribute__((always_inline)) static inline __m512 x24_lanes(int bits, __m512i q, __m512i lo, __m512i hi,
                                                                  const int8_t *ph, const int8_t *pm,
                                                                  const int8_t *pl) {
    const __m512i z = _mm512_setzero_si512();   /* 65536 h + 256 m + l whole in i32 (|.| <= 8 * 15 * SL_QD_X24_MAX < 2^31) */
    (void)bits;
    (void)q;
    __m512i ih = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, lo, LD64(ph)), hi, LD64(ph + 64));
    __m512i im = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_slli_epi32(ih, 8), lo, LD64(pm)), hi, LD64(pm + 64));
    __m512i il = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_slli_epi32(im, 8), lo, LD64(pl)), hi, LD64(pl + 64));
    return _mm512_cvtepi32_ps(il);   /* one rounding */
}

/* The 4-bit tail: 32 code bytes at cc, the planes' 32 / 32 halves at ph,
 * pm, pl; ls: the scale products of the groups there (two for 16 bytes per
 * group, one for 32). */
T_512 static inline float x24_tail(const uint8_t *cc, const int8_t *ph, const int8_t *pm, const int8_t *pl,
                                   size_t bpg, const float *ls) {
    const __m256i z = _mm256_setzero_si256(), n4 = _mm256_set1_epi8(15);
    __m256i q = LD32(cc), lo = _mm256_and_si256(q, n4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), n4);
    __m256i ih = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, lo, LD32(ph)), hi, LD32(ph + 32));
    __m256i im = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_slli_epi32(ih, 8), lo, LD32(pm)), hi, LD32(pm + 32));
    __m256i il = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_slli_epi32(im, 8), lo, LD32(pl)), hi, LD32(pl + 32));
    __m256 v = _mm256_cvtepi32_ps(il);   /* as x24_lanes' 4-bit lanes */
    __m256 sc = bpg == 16 ? _mm256_permutexvar_ps(_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_maskz_loadu_ps(3, ls))
                          : _mm256_set1_ps(ls[0]);
    return hsum8(_mm256_mul_ps(v, sc));
}

/* Per-lane group values of a 64-byte chunk: 16 or 32 bytes per group put
 * 4 or 2 groups in a chunk (lane i: group i / 4 or i / 8 of v), 64 or 128
 * bytes one (broadcast). */
typedef struct x24_geom {
    size_t nbytes, bpg, G;
    int sh;   /* bpg is 16, 32, 64 or 128: c / bpg == c >> sh */
    __m512i idx;
    __mmask16 sm;
} x24_geom;
T_512 static inline x24_geom x24_geometry(size_t cols, int gs, int bits) {
    x24_geom g;
    g.nbytes = cols * (size_t)bits / 8;
    g.bpg = (size_t)gs * (size_t)bits / 8;
    g.G = cols / (size_t)gs;
    g.sh = __builtin_ctzll((unsigned long long)g.bpg);
    g.idx = _mm512_setzero_si512();
    g.sm = 0;
    if (g.bpg < 64) {
        g.idx = _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                  g.bpg == 16 ? 2 : 3);
        g.sm = (__mmask16)((1u << (64 / g.bpg)) - 1u);
    }
    return g;
}
T_512 static inline __m512 x24_groupvec(const x24_geom *g, const float *v, size_t c) {
    return g->bpg >= 64 ? _mm512_set1_ps(v[c >> g->sh])
                        : _mm512_permutexvar_ps(g->idx, _mm512_maskz_loadu_ps(g->sm, v + (c >> g->sh)));
}

/* The one-token dot of R rows (row r: codes + r * ldc, scales and biases
 * + r * lds bytes; result out[r]), each row the single dot's chain; the
 * planes' loads shared by the R rows (R memory streams, each prefetched
 * X24_PF bytes ahead: without it the interleaved streams read slower from
 * memory than one row after another). */
#define X24_MR 4   /* at most rows per one-token call */
#define X24_R1(bits) 2   /* rows per one-token call on Intel (2 read faster from memory than 4) */
#define X24_PF 2048   /* code bytes ahead each row stream prefetches (a hint: any address) */
/* Whether one-token calls take one row per pass instead of X24_R1: on AMD
 * (Zen 4, part9 round 11) one prefetched stream per thread reads 1.5-1.8x
 * faster from memory than two or four interleaved ones, while Intel
 * (Sapphire Rapids, round 7) reads two or four faster.  Each row keeps its
 * own chain either way: the choice changes no bit. */
static bool x24_one_stream(void) { return strcmp(sl_cpu()->vendor, "AuthenticAMD") == 0; }
T_512 __attribute__((always_inline)) static inline void x24_rows(int R, int bits, const uint8_t *codes, size_t ldc,
                                                               const uint8_t *scales, const uint8_t *biases,
                                                               size_t lds, sl_dtype sdt, const float *d,
                                                               const float *xsum, const int8_t *planes, size_t cols,
                                                               int gs, float *out) {
    x24_geom geo = x24_geometry(cols, gs, bits);
    size_t ss = sdt == SL_F32 ? 4 : 2;
    float ls[X24_MR][SL_QD_X24_GROUPS], bsum[X24_MR];
    for (int r = 0; r < R; r++) {   /* ls = s * d, and the bias term b . xsum */
        const uint8_t *sr = scales + (size_t)r * lds, *br = biases + (size_t)r * lds;
        __m512 bacc = _mm512_setzero_ps();
        for (size_t g = 0; g < geo.G; g += 16) {
            __mmask16 m = mask_upto(geo.G - g);
            _mm512_mask_storeu_ps(ls[r] + g, m, _mm512_mul_ps(ld_scales(sr + ss * g, sdt, m), _mm512_maskz_loadu_ps(m, d + g)));
            bacc = _mm512_fmadd_ps(ld_scales(br + ss * g, sdt, m), _mm512_maskz_loadu_ps(m, xsum + g), bacc);
        }
        bsum[r] = _mm512_reduce_add_ps(bacc);
    }
    const int8_t *ph = planes, *pm = planes + cols, *pl = planes + 2 * cols;
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[X24_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    size_t c = 0;
    for (; c + 64 <= geo.nbytes; c += 64) {
        size_t o = bits == 4 ? 2 * c : c;
        for (int r = 0; r < R; r++) {
            _mm_prefetch((const char *)(codes + (size_t)r * ldc + c + X24_PF), _MM_HINT_T0);
            __m512i q = LD64(codes + (size_t)r * ldc + c);
            __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            __m512 v = x24_lanes(bits, q, lo, hi, ph + o, pm + o, pl + o);
            acc[r] = _mm512_fmadd_ps(v, x24_groupvec(&geo, ls[r], c), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        float tail = c < geo.nbytes ? x24_tail(codes + (size_t)r * ldc + c, ph + 2 * c, pm + 2 * c, pl + 2 * c, geo.bpg,
                                               ls[r] + (c >> geo.sh))
                                    : 0.0f;
        out[r] = _mm512_reduce_add_ps(acc[r]) + tail + bsum[r];
    }
}
T_512 static inline float v512_affine_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases,
                                          sl_dtype sdt, const float *d, const float *xsum, const int8_t *planes,
                                          size_t cols, int gs, int bits) {
    float out;
    x24_rows(1, bits, codes, 0, scales, biases, 0, sdt, d, xsum, planes, cols, gs, &out);
    return out;
}
T_512 float sl_v512_affine4_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                          const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs) {
    return v512_affine_x24(codes, scales, biases, sdt, d, xsum, planes, cols, gs, 4);
}

/* ---- the GEMM tile ----
 * NR rows (widened scales ws, biases wb: G floats each, row i at i * G) x
 * NT tokens (token t at act + t * lda: xsum[G], d[G], then the planes). */
/* Per 64 code bytes the rows' codes, nibbles and scale vectors stay in
 * registers and the tokens come one after another (their planes loaded
 * once for the X24_TR rows): with every token's planes held for all rows
 * (the loop the other way round) the 16 accumulators spilled. */
#define X24_TR 4   /* rows per tile */
#define X24_MT 4   /* tokens per tile */
T_512 __attribute__((always_inline)) static inline void x24_tile(int NR, int NT, int bits, const uint8_t *codes,
                                                               size_t ldc, const float *ws, const float *wb,
                                                               const uint8_t *act, size_t lda, size_t cols, int gs,
                                                               float *out, size_t ldo) {
    x24_geom geo = x24_geometry(cols, gs, bits);
    size_t G = geo.G;
    const float *xs[X24_MT], *dt[X24_MT];
    const int8_t *pt[X24_MT];
    float bs[X24_TR][X24_MT];
    for (int t = 0; t < NT; t++) {
        xs[t] = (const float *)(const void *)(act + (size_t)t * lda);
        dt[t] = xs[t] + G;
        pt[t] = (const int8_t *)(const void *)(xs[t] + 2 * G);
    }
    for (int r = 0; r < NR; r++)   /* the dot's bias chain per pair */
        for (int t = 0; t < NT; t++) {
            __m512 bacc = _mm512_setzero_ps();
            for (size_t g = 0; g < G; g += 16) {
                __mmask16 m = mask_upto(G - g);
                bacc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wb + (size_t)r * G + g), _mm512_maskz_loadu_ps(m, xs[t] + g),
                                       bacc);
            }
            bs[r][t] = _mm512_reduce_add_ps(bacc);
        }
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[X24_TR][X24_MT];
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    size_t c = 0;
    for (; c + 64 <= geo.nbytes; c += 64) {   /* rows' codes and scales in registers, then token by token */
        size_t o = bits == 4 ? 2 * c : c;
        __m512i q[X24_TR], lo[X24_TR], hi[X24_TR];
        __m512 sv[X24_TR];
        for (int r = 0; r < NR; r++) {
            q[r] = LD64(codes + (size_t)r * ldc + c);
            lo[r] = _mm512_and_si512(q[r], m4);
            hi[r] = _mm512_and_si512(_mm512_srli_epi16(q[r], 4), m4);
            sv[r] = x24_groupvec(&geo, ws + (size_t)r * G, c);
        }
        for (int t = 0; t < NT; t++) {
            __m512 dv = x24_groupvec(&geo, dt[t], c);
            for (int r = 0; r < NR; r++) {
                __m512 v = x24_lanes(bits, q[r], lo[r], hi[r], pt[t] + o, pt[t] + cols + o, pt[t] + 2 * cols + o);
                acc[r][t] = _mm512_fmadd_ps(v, _mm512_mul_ps(sv[r], dv), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) {
            float tail = 0.0f;
            if (c < geo.nbytes) {
                size_t g = c >> geo.sh;
                float ls[2];
                ls[0] = ws[(size_t)r * G + g] * dt[t][g];
                ls[1] = geo.bpg == 16 ? ws[(size_t)r * G + g + 1] * dt[t][g + 1] : 0.0f;
                tail = x24_tail(codes + (size_t)r * ldc + c, pt[t] + 2 * c, pt[t] + cols + 2 * c, pt[t] + 2 * cols + 2 * c,
                                geo.bpg, ls);
            }
            out[(size_t)t * ldo + (size_t)r] = _mm512_reduce_add_ps(acc[r][t]) + tail + bs[r][t];
        }
}
#undef LD64
#undef LD32

#define X24_TILE_FN(NAME, NR, NT, BITS)                                                                      \
    T_512 static void NAME(const uint8_t *codes, size_t ldc, const float *ws, const float *wb, const uint8_t *act, \
                           size_t lda, size_t cols, int gs, float *out, size_t ldo) {                        \
        x24_tile(NR, NT, BITS, codes, ldc, ws, wb, act, lda, cols, gs, out, ldo);                            \
    }
X24_TILE_FN(x24_4_44, X24_TR, X24_MT, 4)
X24_TILE_FN(x24_4_41, X24_TR, 1, 4)
X24_TILE_FN(x24_4_14, 1, X24_MT, 4)
X24_TILE_FN(x24_4_11, 1, 1, 4)
typedef void (*x24_tile_fn)(const uint8_t *codes, size_t ldc, const float *ws, const float *wb, const uint8_t *act,
                            size_t lda, size_t cols, int gs, float *out, size_t ldo);

/* Rows X24_TR at a time (their scales and biases widened once for all
 * tokens), tokens X24_MT at a time; the rest one by one. */
T_512 __attribute__((always_inline)) static inline void x24_mm(int bits, const x24_tile_fn tiles[4], const uint8_t *codes, size_t ldc, const uint8_t *scales,
                         const uint8_t *biases, size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda,
                         int nt, size_t cols, int gs, float *out, size_t ldo) {
    size_t G = cols / (size_t)gs, ss = sdt == SL_F32 ? 4 : 2;
    if (nt == 1) {   /* one token: X24_R1 rows per call of the dot's own chains */
        const float *xs = (const float *)(const void *)act;
        const int8_t *pt = (const int8_t *)(const void *)(xs + 2 * G);
        int r = 0;
        if (!x24_one_stream())
            for (; r + X24_R1(bits) <= nr; r += X24_R1(bits))
                x24_rows(X24_R1(bits), bits, codes + (size_t)r * ldc, ldc, scales + (size_t)r * lds, biases + (size_t)r * lds,
                         lds, sdt, xs + G, xs, pt, cols, gs, out + r);
        for (; r < nr; r++)
            x24_rows(1, bits, codes + (size_t)r * ldc, ldc, scales + (size_t)r * lds, biases + (size_t)r * lds, lds, sdt,
                     xs + G, xs, pt, cols, gs, out + r);
        return;
    }
    float ws[X24_TR * SL_QD_X24_GROUPS], wb[X24_TR * SL_QD_X24_GROUPS];
    for (int r = 0; r < nr; r += X24_TR) {
        int mr = nr - r < X24_TR ? nr - r : X24_TR;
        for (int i = 0; i < mr; i++)
            for (size_t g = 0; g < G; g += 16) {
                __mmask16 m = mask_upto(G - g);
                size_t o = (size_t)(r + i) * lds + ss * g;
                _mm512_mask_storeu_ps(ws + (size_t)i * G + g, m, ld_scales(scales + o, sdt, m));
                _mm512_mask_storeu_ps(wb + (size_t)i * G + g, m, ld_scales(biases + o, sdt, m));
            }
        const uint8_t *cr = codes + (size_t)r * ldc;
        for (int i = 0; i < mr; i += mr == X24_TR ? X24_TR : 1) {
            x24_tile_fn ft = mr == X24_TR ? tiles[0] : tiles[2], f1 = mr == X24_TR ? tiles[1] : tiles[3];
            int t = 0;
            for (; t + X24_MT <= nt; t += X24_MT)
                ft(cr + (size_t)i * ldc, ldc, ws + (size_t)i * G, wb + (size_t)i * G, act + (size_t)t * lda, lda, cols,
                   gs, out + (size_t)t * ldo + (size_t)(r + i), ldo);
            for (; t < nt; t++)
                f1(cr + (size_t)i * ldc, ldc, ws + (size_t)i * G, wb + (size_t)i * G, act + (size_t)t * lda, lda, cols,
                   gs, out + (size_t)t * ldo + (size_t)(r + i), ldo);
        }
    }
}
T_512 void sl_v512_affine4_x24_mm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                            size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols,
                            int gs, float *out, size_t ldo) {
    static const x24_tile_fn tiles[4] = {x24_4_44, x24_4_41, x24_4_14, x24_4_11};
    x24_mm(4, tiles, codes, ldc, scales, biases, lds, sdt, nr, act, lda, nt, cols, gs, out, ldo);
}
/* ---- the activations' 24-bit planes (sl_qd_prep_x24, 16 lanes) ----
 * Per group the same amax (max is exact in any order; a NaN element is
 * skipped as fmaxf skips it), d = amax / SL_QD_X24_MAX and 1 / d, then per
 * element the same product, round-to-nearest-even, clamp and byte split
 * (l = low signed byte, m the next, h the rest): bit for bit the portable
 * planes and d for finite inputs.  4-bit order: per 128 elements the even
 * ones, then the odd ones (64 / 64; a last 64 as 32 / 32), by two-source
 * permutes of the rounded integers. */
T_512 static inline void x24_store(int8_t *ph, int8_t *pm, int8_t *pl, size_t p, __m512i q) {
    const __m512i k128 = _mm512_set1_epi32(128), k255 = _mm512_set1_epi32(255);
    __m512i l = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(q, k128), k255), k128);
    __m512i q1 = _mm512_srai_epi32(_mm512_sub_epi32(q, l), 8);
    __m512i m = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(q1, k128), k255), k128);
    __m512i h = _mm512_srai_epi32(_mm512_sub_epi32(q1, m), 8);
    _mm_storeu_si128((__m128i *)(void *)(ph + p), _mm512_cvtepi32_epi8(h));
    _mm_storeu_si128((__m128i *)(void *)(pm + p), _mm512_cvtepi32_epi8(m));
    _mm_storeu_si128((__m128i *)(void *)(pl + p), _mm512_cvtepi32_epi8(l));
}

T_512 void sl_v512_prep_x24(const float *x, size_t cols, int gs, int bits, int8_t *planes, float *d) {
    int8_t *ph = planes, *pm = planes + cols, *pl = planes + 2 * cols;
    const __m512 hi = _mm512_set1_ps((float)SL_QD_X24_MAX), lo = _mm512_set1_ps(-(float)SL_QD_X24_MAX);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (size_t c = 0; c < cols; c += 128) {
        size_t len = cols - c >= 128 ? 128 : cols - c;   /* 128, or a last 64 (cols % 64 == 0) */
        int nv = (int)(len / 16);
        __m512i q[8];
        for (size_t g0 = 0; g0 < len; g0 += (size_t)gs) {
            int gv = gs / 16, v0 = (int)(g0 / 16);
            __m512 am = _mm512_setzero_ps();
            for (int i = 0; i < gv; i++)
                am = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + c + g0 + 16 * (size_t)i)), am);
            float amax = _mm512_reduce_max_ps(am);
            float dg = amax / (float)SL_QD_X24_MAX, id = dg > 0.0f ? 1.0f / dg : 0.0f;
            d[(c + g0) / (size_t)gs] = dg;
            __m512 idv = _mm512_set1_ps(id);
            for (int i = 0; i < gv; i++) {
                __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + c + g0 + 16 * (size_t)i), idv),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[v0 + i] = _mm512_cvtps_epi32(_mm512_max_ps(lo, _mm512_min_ps(hi, r)));
            }
        }
        if (bits == 8) {
            for (int i = 0; i < nv; i++) x24_store(ph, pm, pl, c + 16 * (size_t)i, q[i]);
            continue;
        }
        for (int i = 0; i < nv / 2; i++) {
            x24_store(ph, pm, pl, c + 16 * (size_t)i, _mm512_permutex2var_epi32(q[2 * i], even, q[2 * i + 1]));
            x24_store(ph, pm, pl, c + len / 2 + 16 * (size_t)i, _mm512_permutex2var_epi32(q[2 * i], odd, q[2 * i + 1]));
        }
    }
}
#else
typedef int sl_qaffine_x86_unused; /* ISO C forbids an empty translation unit */
#endif
