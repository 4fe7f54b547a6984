/*
 * qaffine_gl_x86.c — MLX affine 4/8-bit weights times 24-bit integer
 * activations (qdot.h sl_qd_prep_x24) in group lanes on AVX-512 VNNI: the
 * "avx512" set's affine4/8_x24 dots, their rows x tokens entries and its
 * whole-matmul GEMMs for batches of 2 tokens or more (qdot.h
 * sl_qd_affine24_fn / _mm_fn / _gemm_fn, sl_qd_x24_tiles_fn).
 *
 * The order every path of this set computes (so neither batching nor the
 * row split between threads changes a bit): per group g of gs elements
 *   H_g  = sum q_i h_i,  ML_g = sum q_i (256 m_i + l_i)    (exact in int32:
 *          |ML_g| <= 128 * 255 * 32896 < 2^31, any order of the integer sums)
 *   F_g  = fma((float)H_g, 65536, (float)ML_g),  ls_g = s_g * d_g
 * then one f32 lane per group: lane g % 16 of acc = fma(F_g, ls_g, acc),
 * blocks of 16 groups in order (lanes past G untouched), and the bias chain
 * bacc = fma(b_g, xsum_g, bacc) in the same lanes; the result is
 * reduce(acc) + reduce(bacc).  Per 16 groups that is 48 vpdpbusd (gs 64),
 * one shift and four f32 vector operations per output, against a shift or
 * two, a multiply and one or two FMAs per 64 code bytes in the lane order
 * of part9's round 3 (which shared Zen 4's vpdpbusd ports: part9 round 16).
 *
 * The one-token dots read the row as stored (natural element order; 4-bit:
 * low nibbles against the planes' even elements, high against odd) and
 * move each group's lane sums (16, 8 or 4 a group) into the group's lane
 * with a tree of integer adds over shuffles (exact).  The GEMMs pack 16
 * rows at a time (4 for fewer than 8 tokens) into the thread's scratch in
 * the group-lane form (per block of 16 groups, vector k = dword k of every
 * group of the block, by transposes in registers; 4-bit: the low nibbles
 * as bytes, then the high ones), and the shared
 * token preparation writes each token's planes the same way (4-bit: even
 * elements, then odd), once per matmul: the mmap stays the only copy of
 * the weights.  A block of gb < 16 groups keeps its vectors gb lanes wide
 * (masked loads), so nothing is read past a row or a plane.
 */
#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)
#include <string.h>

#define GL_PF 2048   /* code bytes ahead the one-token dot prefetches (a hint: any address) */

/* The tree that moves lane sums into group lanes (integer adds: exact in
 * any order).  Each step adds two shuffles of a and b that split every
 * section (a group's partial sums) in half, a's sections first: gl_s128
 * on 128-bit blocks (16 -> 8 -> 4 lanes per group), gl_s32 inside them
 * (4 -> 2 -> 1); the last step leaves group 4 (L % 4) + L / 4 in lane L,
 * which one permute puts in order. */
T_512 static inline __m512i gl_s128(__m512i a, __m512i b, int wide) {
    return wide ? _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xEE))
                : _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x88), _mm512_shuffle_i64x2(a, b, 0xDD));
}
T_512 static inline __m512i gl_s32(__m512i a, __m512i b, int wide) {
    __m512 x = _mm512_castsi512_ps(a), y = _mm512_castsi512_ps(b);
    return wide ? _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(x, y, 0x44)),
                                   _mm512_castps_si512(_mm512_shuffle_ps(x, y, 0xEE)))
                : _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(x, y, 0x88)),
                                   _mm512_castps_si512(_mm512_shuffle_ps(x, y, 0xDD)));
}
/* v[0..7] with two groups of 8 lanes each (groups 2i, 2i + 1: gl_s128(.., 1)
 * of two one-group vectors, or a chunk of two 32-byte groups) -> lane j =
 * group j's sum. */
/* v[0..3] with four groups of 4 lanes each, one per 128-bit block (groups
 * 4i .. 4i + 3: the step after that, or a 4-bit chunk of 32-element groups). */
T_512 static inline __m512i gl_tree4(__m512i *v) {
    for (int i = 0; i < 2; i++) v[i] = gl_s32(v[2 * i], v[2 * i + 1], 1);
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
                                    gl_s32(v[0], v[1], 0));
}
T_512 static inline __m512i gl_tree(__m512i *v) {
    for (int i = 0; i < 4; i++) v[i] = gl_s128(v[2 * i], v[2 * i + 1], 0);
    return gl_tree4(v);
}

/* One 64-byte chunk of codes q against the planes at c: the h lanes onto
 * *h, the 256 m + l lanes onto *ml. */
T_512 static inline void gl_chunk(__m512i q, const int8_t *ph, const int8_t *pm, const int8_t *pl, __m512i *h,
                                  __m512i *ml) {
    *h = _mm512_dpbusd_epi32(*h, q, _mm512_loadu_si512((const void *)ph));
    __m512i m = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, _mm512_loadu_si512((const void *)pm));
    *ml = _mm512_add_epi32(*ml, _mm512_dpbusd_epi32(_mm512_slli_epi32(m, 8), q, _mm512_loadu_si512((const void *)pl)));
}

/* The one-token dot (sl_qd_affine24_fn, 8-bit): the row as stored. */
/* A block of up to 16 groups (lanes of m) into the chains: F_g = 65536 H_g + ML_g (exact), acc += F_g (s_g d_g),
 * bacc += b_g xsum_g: the one order of every path of this set. */
T_512 static inline void gl_groups_add(__m512i H, __m512i ML, __mmask16 m, const uint8_t *scales, const uint8_t *biases,
                                       sl_dtype sdt, const float *d, const float *xsum, __m512 *acc, __m512 *bacc) {
    __m512 F = _mm512_fmadd_ps(_mm512_cvtepi32_ps(H), _mm512_set1_ps(65536.0f), _mm512_cvtepi32_ps(ML));
    *acc = _mm512_fmadd_ps(F, _mm512_mul_ps(ld_scales(scales, sdt, m), _mm512_maskz_loadu_ps(m, d)), *acc);
    *bacc = _mm512_fmadd_ps(ld_scales(biases, sdt, m), _mm512_maskz_loadu_ps(m, xsum), *bacc);
}

T_512 float sl_v512_affine8_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                                const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs) {
    const size_t G = cols / (size_t)gs, ss = sdt == SL_F32 ? 4 : 2, bg = (size_t)gs;
    const int8_t *ph = planes, *pm = planes + cols, *pl = planes + 2 * cols;
    const __m512i z = _mm512_setzero_si512();
    __m512 acc = _mm512_setzero_ps(), bacc = _mm512_setzero_ps();
    for (size_t g0 = 0; g0 < G; g0 += 16) {
        size_t gb = G - g0 < 16 ? G - g0 : 16;
        __m512i vh[8], vm[8];
        for (int i = 0; i < 8; i++) vh[i] = vm[i] = z;
        if (bg == 32) {   /* a chunk holds two groups: already 8 + 8 lanes */
#pragma GCC unroll 8
            for (size_t i = 0; i < 8; i++) {
                size_t c = (g0 + 2 * i) * bg;
                if (2 * i >= gb) break;
                __m512i h = z, ml = z;
                _mm_prefetch((const char *)(codes + c + GL_PF), _MM_HINT_T0);
                gl_chunk(_mm512_loadu_si512((const void *)(codes + c)), ph + c, pm + c, pl + c, &h, &ml);
                vh[i] = h;
                vm[i] = ml;
            }
        } else {
#pragma GCC unroll 8
            for (size_t j = 0; j < 16; j += 2) {   /* groups j, j + 1 -> 8 + 8 lanes (unrolled: vh, vm in registers) */
                if (j >= gb) break;
                __m512i ha = z, ma = z, hb = z, mb = z;
                size_t ca = (g0 + j) * bg;
                for (size_t c = ca; c < ca + bg; c += 64) {
                    _mm_prefetch((const char *)(codes + c + GL_PF), _MM_HINT_T0);
                    gl_chunk(_mm512_loadu_si512((const void *)(codes + c)), ph + c, pm + c, pl + c, &ha, &ma);
                }
                for (size_t c = ca + bg; j + 1 < gb && c < ca + 2 * bg; c += 64) {
                    _mm_prefetch((const char *)(codes + c + GL_PF), _MM_HINT_T0);
                    gl_chunk(_mm512_loadu_si512((const void *)(codes + c)), ph + c, pm + c, pl + c, &hb, &mb);
                }
                vh[j / 2] = gl_s128(ha, hb, 1);
                vm[j / 2] = gl_s128(ma, mb, 1);
            }
        }
        gl_groups_add(gl_tree(vh), gl_tree(vm), mask_upto(gb), scales + ss * g0, biases + ss * g0, sdt, d + g0,
                      xsum + g0, &acc, &bacc);
    }
    return _mm512_reduce_add_ps(acc) + _mm512_reduce_add_ps(bacc);
}

T_512 static inline void gl_chunk4(const uint8_t *cc, const int8_t *ph, const int8_t *pm, const int8_t *pl, int tail,
                                   __m512i *h, __m512i *ml) {
    if (tail) {
        const __m256i z = _mm256_setzero_si256(), m4 = _mm256_set1_epi8(15);
        __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)cc);
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
#define LDY(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
        __m256i ih = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, lo, LDY(ph)), hi, LDY(ph + 32));
        __m256i im = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, lo, LDY(pm)), hi, LDY(pm + 32));
        __m256i il = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_slli_epi32(im, 8), lo, LDY(pl)), hi, LDY(pl + 32));
#undef LDY
        *h = _mm512_add_epi32(*h, _mm512_zextsi256_si512(ih));
        *ml = _mm512_add_epi32(*ml, _mm512_zextsi256_si512(il));
        return;
    }
    const __m512i z = _mm512_setzero_si512(), m4 = _mm512_set1_epi8(15);
    __m512i q = _mm512_loadu_si512((const void *)cc);
    __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
#define LDZ(p) _mm512_loadu_si512((const void *)(p))
    *h = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(*h, lo, LDZ(ph)), hi, LDZ(ph + 64));
    __m512i im = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, lo, LDZ(pm)), hi, LDZ(pm + 64));
    *ml = _mm512_add_epi32(*ml, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_slli_epi32(im, 8), lo, LDZ(pl)), hi,
                                                    LDZ(pl + 64)));
#undef LDZ
}

/* The one-token dot (sl_qd_affine24_fn, 4-bit): a 64-byte chunk holds one
 * group of 128 (paired as for 8-bit), two of 64 or four of 32 (the tree's
 * first or second step done). */
T_512 float sl_v512_affine4_x24(const uint8_t *codes, const uint8_t *scales, const uint8_t *biases, sl_dtype sdt,
                                const float *d, const float *xsum, const int8_t *planes, size_t cols, int gs) {
    const size_t G = cols / (size_t)gs, ss = sdt == SL_F32 ? 4 : 2, bg = (size_t)gs / 2, nbytes = cols / 2;
    const int8_t *ph = planes, *pm = planes + cols, *pl = planes + 2 * cols;
    const __m512i z = _mm512_setzero_si512();
    __m512 acc = _mm512_setzero_ps(), bacc = _mm512_setzero_ps();
    for (size_t g0 = 0; g0 < G; g0 += 16) {
        size_t gb = G - g0 < 16 ? G - g0 : 16;
        __m512i vh[8], vm[8], H, ML;
        for (int i = 0; i < 8; i++) vh[i] = vm[i] = z;
        if (bg == 64) {
#pragma GCC unroll 8
            for (size_t j = 0; j < 16; j += 2) {   /* groups j, j + 1 -> 8 + 8 lanes */
                if (j >= gb) break;
                __m512i ha = z, ma = z, hb = z, mb = z;
                size_t c = (g0 + j) * bg;
                _mm_prefetch((const char *)(codes + c + GL_PF), _MM_HINT_T0);
                gl_chunk4(codes + c, ph + 2 * c, pm + 2 * c, pl + 2 * c, 0, &ha, &ma);
                if (j + 1 < gb) gl_chunk4(codes + c + 64, ph + 2 * c + 128, pm + 2 * c + 128, pl + 2 * c + 128, 0, &hb, &mb);
                vh[j / 2] = gl_s128(ha, hb, 1);
                vm[j / 2] = gl_s128(ma, mb, 1);
            }
            H = gl_tree(vh);
            ML = gl_tree(vm);
        } else {
#pragma GCC unroll 8
            for (size_t i = 0; i < 8; i++) {
                size_t c = g0 * bg + 64 * i;
                if (c >= (g0 + gb) * bg) break;
                __m512i h = z, ml = z;
                _mm_prefetch((const char *)(codes + c + GL_PF), _MM_HINT_T0);
                gl_chunk4(codes + c, ph + 2 * c, pm + 2 * c, pl + 2 * c, c + 64 > nbytes, &h, &ml);
                vh[i] = h;
                vm[i] = ml;
            }
            H = bg == 32 ? gl_tree(vh) : gl_tree4(vh);
            ML = bg == 32 ? gl_tree(vm) : gl_tree4(vm);
        }
        gl_groups_add(H, ML, mask_upto(gb), scales + ss * g0, biases + ss * g0, sdt, d + g0, xsum + g0, &acc, &bacc);
    }
    return _mm512_reduce_add_ps(acc) + _mm512_reduce_add_ps(bacc);
}
typedef float (*gl_dot_fn)(const uint8_t *, const uint8_t *, const uint8_t *, sl_dtype, const float *, const float *,
                          const int8_t *, size_t, int);

/* Rows x tokens in the one-token form (qdot.h sl_qd_affine24_mm_fn): the
 * dot per pair (generation, one row after another, one prefetched stream;
 * the engine hands batches of 2 or more tokens to the GEMM: affine_gemm_min). */
T_512 static inline void gl_mm(gl_dot_fn dot, const uint8_t *codes, size_t ldc, const uint8_t *scales,
                               const uint8_t *biases, size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda,
                               int nt, size_t cols, int gs, float *out, size_t ldo) {
    size_t G = cols / (size_t)gs;
    for (int t = 0; t < nt; t++) {
        const float *xs = (const float *)(const void *)(act + (size_t)t * lda);
        const int8_t *pt = (const int8_t *)(const void *)(xs + 2 * G);
        for (int r = 0; r < nr; r++)
            out[(size_t)t * ldo + (size_t)r] = dot(codes + (size_t)r * ldc, scales + (size_t)r * lds,
                                                   biases + (size_t)r * lds, sdt, xs + G, xs, pt, cols, gs);
    }
}

T_512 void sl_v512_affine8_x24_mm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                  size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols,
                                  int gs, float *out, size_t ldo) {
    gl_mm(sl_v512_affine8_x24, codes, ldc, scales, biases, lds, sdt, nr, act, lda, nt, cols, gs, out, ldo);
}

T_512 void sl_v512_affine4_x24_mm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                  size_t lds, sl_dtype sdt, int nr, const uint8_t *act, size_t lda, int nt, size_t cols,
                                  int gs, float *out, size_t ldo) {
    gl_mm(sl_v512_affine4_x24, codes, ldc, scales, biases, lds, sdt, nr, act, lda, nt, cols, gs, out, ldo);
}

/* ---- the group-lane form and the GEMM ---- */

/* Groups [g, g + n) of a token's plane (src: group g's pb bytes) to their
 * places in a group-lane form of G groups: block b = g / 16 at dst + bs b,
 * its part at + po gb, vector k of the part at + 4 k gb, lane j = dword k
 * of group 16 b + j (gb = the block's groups), by masked gathers (once a
 * token and matmul).  Each block's parts (and a token's planes) are
 * adjacent, so that a tile reads one run per row and per token, not runs
 * cols apart (which alias in L1 sets on long rows). */
T_512 static void gl_pack(const uint8_t *src, size_t g, size_t n, size_t G, int pb, uint8_t *dst, size_t bs,
                          size_t po) {
    const size_t Q = (size_t)pb / 4;
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    while (n > 0) {
        size_t b = g / 16, j = g % 16, gb = G - 16 * b < 16 ? G - 16 * b : 16, cnt = gb - j < n ? gb - j : n;
        __mmask16 m = (__mmask16)(mask_upto(j + cnt) & ~mask_upto(j));
        uint8_t *blk = dst + bs * b + po * gb;
        /* lane l reads group g + l - j (lanes below j masked off, never read) */
        __m512i idx = _mm512_mullo_epi32(_mm512_sub_epi32(iota, _mm512_set1_epi32((int)j)), _mm512_set1_epi32(pb));
        for (size_t k = 0; k < Q; k++)
            _mm512_mask_storeu_epi32(blk + 4 * k * gb, m,
                                     _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx,
                                                                 (const void *)(src + 4 * k), 1));
        g += cnt;
        n -= cnt;
        src += cnt * (size_t)pb;
    }
}

/* The rows' group-lane form by transposes in registers.  16 groups of 2^q
 * dwords (q <= 4) loaded as 2^q vectors: dword d (group d >> q, k = d mod
 * 2^q) sits in vector d >> 4, lane d mod 16; the form wants it in vector k,
 * lane d >> q.  gl_xchg trades one bit of the vector index with one lane
 * bit, one shuffle a vector: lane x of a pair's first vector (index bit s
 * clear) with bit b set takes the second's lane x - 2^b, lane x of the
 * second with bit b clear the first's x + 2^b. */
T_512 static inline void gl_xchg(__m512i *v, int n, int s, int b) {
#pragma GCC unroll 16
    for (int i = 0; i < n; i++) {
        if (i & s) continue;
        __m512i a = v[i], c = v[i + s];
        if (b == 0) {
            v[i] = _mm512_mask_shuffle_epi32(a, 0xAAAA, c, (_MM_PERM_ENUM)0xA0);
            v[i + s] = _mm512_mask_shuffle_epi32(c, 0x5555, a, (_MM_PERM_ENUM)0xF5);
        } else if (b == 1) {
            v[i] = _mm512_unpacklo_epi64(a, c);
            v[i + s] = _mm512_unpackhi_epi64(a, c);
        } else if (b == 2) {
            v[i] = _mm512_mask_shuffle_i32x4(a, 0xF0F0, c, c, 0xA0);
            v[i + s] = _mm512_mask_shuffle_i32x4(c, 0x0F0F, a, a, 0xF5);
        } else {
            v[i] = _mm512_shuffle_i32x4(a, c, 0x44);
            v[i + s] = _mm512_shuffle_i32x4(a, c, 0xEE);
        }
    }
}
/* q < 4: after lane bits m < q - 1 traded with index bits m (gl_tr), lane
 * bit m holds group bit 4 + m - q (m < q - 1), k's bit q - 1 (m = q - 1)
 * or group bit m - q (m >= q), and index bit q - 1 group bit 3: the last
 * step permutes each pair into group order, output c taking k's bit q - 1
 * = c (lane j: lane e of the first vector, e < 16, or of the second). */
T_512 static inline __m512i gl_tr_idx(int q, int c) {
    int32_t x[16];
    for (int j = 0; j < 16; j++) {
        int e = ((j >> 3) & 1) << 4 | c << (q - 1);
        for (int m = 0; m < 4; m++)
            if (m < q - 1) e |= ((j >> (4 + m - q)) & 1) << m;
            else if (m >= q) e |= ((j >> (m - q)) & 1) << m;
        x[j] = e;
    }
    return _mm512_loadu_si512((const void *)x);
}
/* v[0 .. 2^q) -> v[k] lane j = dword k of group j.  q = 4: the four lane
 * bits trade with the four index bits; q < 4: bits below q - 1, then
 * two-source permutes (idx0, idx1: gl_tr_idx(q, 0 / 1)). */
T_512 static inline void gl_tr(__m512i *v, int q, __m512i idx0, __m512i idx1) {
    const int n = 1 << q;
    gl_xchg(v, n, 1, 0);
    if (q >= 3) gl_xchg(v, n, 2, 1);
    if (q == 4) {
        gl_xchg(v, n, 4, 2);
        gl_xchg(v, n, 8, 3);
        return;
    }
#pragma GCC unroll 8
    for (int i = 0; i < n / 2; i++) {
        __m512i a = v[i], c = v[i + n / 2];
        v[i] = _mm512_permutex2var_epi32(a, idx0, c);
        v[i + n / 2] = _mm512_permutex2var_epi32(a, idx1, c);
    }
}

/* A row's G groups of pb bytes (src) in the group-lane form (block b at
 * dst + 16 gs b, vector k of a block at + 4 k gb, gb its groups; split,
 * 4-bit codes: the low nibbles there, the high ones as the block's next
 * part, pb gb further), by gl_tr on each block's 64-byte chunks (groups of
 * 128 bytes: two transposes, of the even and of the odd chunks: their
 * dwords 0-15 and 16-31).  A last block of gb < 16 groups reads its gb pb
 * bytes and writes its vectors gb lanes wide. */
T_512 __attribute__((always_inline)) static inline void gl_pack_rowq(const uint8_t *src, size_t G, int pb,
                                                                   uint8_t *dst, int split) {
    const int Q = pb / 4, q = Q == 4 ? 2 : Q == 8 ? 3 : 4, h2 = Q == 32 ? 2 : 1;
    const __m512i i0 = gl_tr_idx(q, 0), i1 = gl_tr_idx(q, 1), m4 = _mm512_set1_epi8(15);
    for (size_t g0 = 0; g0 < G; g0 += 16) {
        size_t gb = G - g0 < 16 ? G - g0 : 16, nb = gb * (size_t)pb;
        const uint8_t *s = src + g0 * (size_t)pb;
        uint8_t *blk = dst + (size_t)(split + 1) * (size_t)pb * g0;
        __mmask16 m = mask_upto(gb);
#pragma GCC unroll 2
        for (int h = 0; h < h2; h++) {
            __m512i v[16];
#pragma GCC unroll 16
            for (int i = 0; i < Q / h2; i++) {
                size_t o = 64 * (size_t)(h2 * i + h);
                _mm_prefetch((const char *)(s + o + GL_PF), _MM_HINT_T0);
                v[i] = _mm512_maskz_loadu_epi32(mask_upto(o < nb ? (nb - o) / 4 : 0), (const void *)(s + o));
            }
            gl_tr(v, q, i0, i1);
#pragma GCC unroll 16
            for (int k = 0; k < Q / h2; k++) {
                size_t o = 4 * (size_t)(16 * h + k) * gb;
                if (split) {
                    _mm512_mask_storeu_epi32(blk + (size_t)pb * gb + o, m, _mm512_and_si512(_mm512_srli_epi16(v[k], 4), m4));
                    v[k] = _mm512_and_si512(v[k], m4);
                }
                _mm512_mask_storeu_epi32(blk + o, m, v[k]);
            }
        }
    }
}
/* gl_pack_rowq for each (pb, split) of the GEMMs, its transposes unrolled
 * (with q a variable v[] stayed in memory: 2 tokens ran a third slower). */
T_512 static void gl_pack_row(const uint8_t *src, size_t G, int pb, uint8_t *dst, int split) {
    if (split && pb == 16) gl_pack_rowq(src, G, 16, dst, 1);
    else if (split && pb == 32) gl_pack_rowq(src, G, 32, dst, 1);
    else if (split) gl_pack_rowq(src, G, 64, dst, 1);
    else if (pb == 32) gl_pack_rowq(src, G, 32, dst, 0);
    else if (pb == 64) gl_pack_rowq(src, G, 64, dst, 0);
    else gl_pack_rowq(src, G, 128, dst, 0);
}

/* Columns [c0, c0 + cc) of token i of a block of tn (sl_qd_x24_tiles_fn;
 * cc <= 1024, the pieces qmatmul.c hands over):
 * token i at tiles + 3 i cols, its block b of groups at + 48 gs b, plane
 * p of the block at + p gs gb (gl_pack); 4-bit: the plane's even elements
 * (per 128: the first half, qdot.h), then its odd ones, as two parts. */
T_512 void sl_v512_x24_tiles(const int8_t *planes, size_t c0, size_t cc, size_t cols, int gs, int bits, int i,
                             int tn, int8_t *tiles) {
    (void)tn;
    size_t G = cols / (size_t)gs;
    for (int p = 0; p < 3; p++) {
        const uint8_t *src = (const uint8_t *)(planes + (size_t)p * cc);
        uint8_t *dst = (uint8_t *)(tiles + 3 * (size_t)i * cols);   /* block b at 48 gs b: plane p at + p gs gb */
        if (bits == 8) {
            gl_pack(src, c0 / (size_t)gs, cc / (size_t)gs, G, gs, dst, 48 * (size_t)gs, (size_t)p * (size_t)gs);
            continue;
        }
        uint8_t ev[512], od[512];   /* the piece's even and odd elements, each in element order */
        for (size_t e = 0; e < cc; e += 128) {   /* a block of 128 elements (a last one of 64) */
            size_t len = cc - e < 128 ? cc - e : 128;
            memcpy(ev + e / 2, src + e, len / 2);
            memcpy(od + e / 2, src + e + len / 2, len / 2);
        }
        gl_pack(ev, c0 / (size_t)gs, cc / (size_t)gs, G, gs / 2, dst, 48 * (size_t)gs, (size_t)p * (size_t)gs);
        gl_pack(od, c0 / (size_t)gs, cc / (size_t)gs, G, gs / 2, dst, 48 * (size_t)gs, (size_t)p * (size_t)gs + (size_t)gs / 2);
    }
}

/* NR rows (packed at wp, GL_WS(cols) apart; widened scales ws, biases wb, G apart)
 * x NT tokens (planes at tp, 3 cols apart; xsum at tx, d at tx + G, 2 G
 * apart), NP parts a row and a plane (4-bit: low nibbles against even
 * elements, then high against odd; gl_pack's places): h and m in one pass
 * over a block's vectors, l onto 256 m in a second, then the block's f32
 * lanes. */
#define GL_WS(cols) ((cols) + 64)   /* bytes a packed row takes in scratch (padded: rows apart in L1 sets) */
#define GL_TR 4   /* rows per tile */
#define GL_TT 2   /* tokens per tile */
/* A tile's f32 chains wait between group ranges at st + GL_ST(r, t)
 * floats (st: the tile's first pair in a 16 x 16 pairs array). */
#define GL_ST(r, t) (((size_t)(r) * 16 + (size_t)(t)) * 16)
/* Groups per range: a tile's rows and tokens of one range in L1 (2048 elements). */
#define GL_RANGE(gs) ((gs) >= 128 ? 16 : 2048 / (size_t)(gs))
T_512 __attribute__((always_inline)) static inline void gl_tile(int NR, int NT, int NP, const uint8_t *wp, size_t cols,
                                                              const float *ws, const float *wb, size_t G, size_t ga,
                                                              size_t ge, const int8_t *tp, const float *tx, int gs,
                                                              float *out, size_t ldo, float *st) {
    const size_t pb = (size_t)gs / (size_t)NP, Q = pb / 4, ldt = 3 * cols;
    __m512 acc[GL_TR][GL_TT], bacc[GL_TR][GL_TT];
    for (int r = 0; r < NR; r++)   /* the chains so far (GL_ST) */
        for (int t = 0; t < NT; t++)
            acc[r][t] = ga == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(st + GL_ST(r, t));
    for (size_t g0 = ga; g0 < ge; g0 += 16) {
        size_t gb = G - g0 < 16 ? G - g0 : 16, wo = 16 * (size_t)gs * (g0 / 16), to = 48 * (size_t)gs * (g0 / 16);
        __mmask16 m = mask_upto(gb);
        __m512i H[GL_TR][GL_TT], M[GL_TR][GL_TT], w[GL_TR];
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) H[r][t] = M[r][t] = _mm512_setzero_si512();
        for (int u = 0; u < NP; u++)
            for (size_t k = 0; k < Q; k++) {
                size_t o = ((size_t)u * pb + 4 * k) * gb;
                for (int r = 0; r < NR; r++) w[r] = _mm512_maskz_loadu_epi32(m, wp + (size_t)r * GL_WS(cols) + wo + o);
                for (int t = 0; t < NT; t++) {
                    __m512i ph = _mm512_maskz_loadu_epi32(m, tp + (size_t)t * ldt + to + o);
                    __m512i pm = _mm512_maskz_loadu_epi32(m, tp + (size_t)t * ldt + to + (size_t)gs * gb + o);
                    for (int r = 0; r < NR; r++) {
                        H[r][t] = _mm512_dpbusd_epi32(H[r][t], w[r], ph);
                        M[r][t] = _mm512_dpbusd_epi32(M[r][t], w[r], pm);
                    }
                }
            }
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) M[r][t] = _mm512_slli_epi32(M[r][t], 8);
        for (int u = 0; u < NP; u++)
            for (size_t k = 0; k < Q; k++) {
                size_t o = ((size_t)u * pb + 4 * k) * gb;
                for (int r = 0; r < NR; r++) w[r] = _mm512_maskz_loadu_epi32(m, wp + (size_t)r * GL_WS(cols) + wo + o);
                for (int t = 0; t < NT; t++) {
                    __m512i pl = _mm512_maskz_loadu_epi32(m, tp + (size_t)t * ldt + to + 2 * (size_t)gs * gb + o);
                    for (int r = 0; r < NR; r++) M[r][t] = _mm512_dpbusd_epi32(M[r][t], w[r], pl);
                }
            }
        for (int t = 0; t < NT; t++) {
            __m512 dv = _mm512_maskz_loadu_ps(m, tx + 2 * G * (size_t)t + G + g0);
            for (int r = 0; r < NR; r++) {
                __m512 F = _mm512_fmadd_ps(_mm512_cvtepi32_ps(H[r][t]), _mm512_set1_ps(65536.0f),
                                           _mm512_cvtepi32_ps(M[r][t]));
                acc[r][t] = _mm512_fmadd_ps(F, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, ws + (size_t)r * G + g0), dv),
                                            acc[r][t]);
            }
        }
    }
    if (ge < G) {
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) _mm512_storeu_ps(st + GL_ST(r, t), acc[r][t]);
        return;
    }
    for (int r = 0; r < NR; r++)   /* the bias chains, then the results */
        for (int t = 0; t < NT; t++) {
            bacc[r][t] = _mm512_setzero_ps();
            for (size_t g0 = 0; g0 < G; g0 += 16) {
                __mmask16 m = mask_upto(G - g0);
                bacc[r][t] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wb + (size_t)r * G + g0),
                                             _mm512_maskz_loadu_ps(m, tx + 2 * G * (size_t)t + g0), bacc[r][t]);
            }
            out[(size_t)t * ldo + (size_t)r] = _mm512_reduce_add_ps(acc[r][t]) + _mm512_reduce_add_ps(bacc[r][t]);
        }
}
typedef void (*gl_tile_fn)(const uint8_t *wp, size_t cols, const float *ws, const float *wb, size_t G, size_t ga,
                           size_t ge, const int8_t *tp, const float *tx, int gs, float *out, size_t ldo, float *st);
#define GL_TILE_FN(NAME, NR, NT, NP)                                                                            \
    T_512 static void NAME(const uint8_t *wp, size_t cols, const float *ws, const float *wb, size_t G, size_t ga, \
                           size_t ge, const int8_t *tp, const float *tx, int gs, float *out, size_t ldo,       \
                           float *st) {                                                                       \
        gl_tile(NR, NT, NP, wp, cols, ws, wb, G, ga, ge, tp, tx, gs, out, ldo, st);                           \
    }
GL_TILE_FN(gl_tile8_42, GL_TR, GL_TT, 1)
GL_TILE_FN(gl_tile8_41, GL_TR, 1, 1)
GL_TILE_FN(gl_tile8_12, 1, GL_TT, 1)
GL_TILE_FN(gl_tile8_11, 1, 1, 1)
GL_TILE_FN(gl_tile4_42, GL_TR, GL_TT, 2)
GL_TILE_FN(gl_tile4_41, GL_TR, 1, 2)
GL_TILE_FN(gl_tile4_12, 1, GL_TT, 2)
GL_TILE_FN(gl_tile4_11, 1, 1, 2)

/* The GEMM (sl_qd_affine24_gemm_fn; the avx512 set's batches from 2
 * tokens): panels of 16 rows (4 below 8 tokens: each weight group loaded,
 * transposed and split once, then read by every token's tile from L1)
 * packed into scratch (16 cols bytes, then their widened scales and
 * biases, 16 G floats each, then 16 x 16 tiles' chains), then every block
 * of 16 tokens in GL_TR x GL_TT tiles (tiles: rows x tokens, rows x 1, 1 x
 * tokens, 1 x 1), GL_RANGE groups at a time (blocks of 16 in order: the
 * chains' order is the dot's). */
T_512 static void gl_gemm(int bits, const gl_tile_fn tiles[4], const uint8_t *codes, size_t ldc, const uint8_t *scales,
                          const uint8_t *biases, size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt,
                          size_t cols, int gs, float *out, size_t ldo, void *scratch) {
    const size_t G = cols / (size_t)gs, ss = sdt == SL_F32 ? 4 : 2, tb = 8 * G + 3 * cols, pb = (size_t)gs * bits / 8;
    uint8_t *wp = scratch;
    float *ws = (float *)(void *)(wp + 16 * GL_WS(cols)), *wb = ws + 16 * G, *st = wb + 16 * G;   /* st: 16 KiB */
    const int ph = nt < 8 ? GL_TR : 16;   /* rows a panel: few tokens, a pack that stays in L1, the next prefetched */
    for (int r0 = 0; r0 < nr; r0 += ph) {
        int pr = nr - r0 < ph ? nr - r0 : ph;
        for (int i = 0; i < pr; i++) {
            size_t r = (size_t)(r0 + i);
            gl_pack_row(codes + r * ldc, G, (int)pb, wp + (size_t)i * GL_WS(cols), bits == 4);
            for (size_t g = 0; g < G; g += 16) {
                __mmask16 m = mask_upto(G - g);
                _mm512_mask_storeu_ps(ws + (size_t)i * G + g, m, ld_scales(scales + r * lds + ss * g, sdt, m));
                _mm512_mask_storeu_ps(wb + (size_t)i * G + g, m, ld_scales(biases + r * lds + ss * g, sdt, m));
            }
        }
        for (int t0 = 0; t0 < nt; t0 += 16) {
            int tn = nt - t0 < 16 ? nt - t0 : 16;
            const uint8_t *blk = act + (size_t)t0 * tb;
            const int8_t *tp = (const int8_t *)(const void *)blk;
            const float *tx = (const float *)(const void *)(blk + (size_t)tn * 3 * cols);
            for (size_t ga = 0; ga < G; ga += GL_RANGE(gs)) {   /* ranges of groups, the chains carried in st */
                size_t ge = G - ga < GL_RANGE(gs) ? G : ga + GL_RANGE(gs);
                for (int j = 0; ph < 16 && j < ph && r0 + ph + j < nr; j++)   /* the next panel's range towards L2 */
                    for (size_t o = ga * pb; o < ge * pb; o += 64)
                        _mm_prefetch((const char *)(codes + (size_t)(r0 + ph + j) * ldc + o), _MM_HINT_T1);
                for (int i = 0; i < pr;) {
                    int R = pr - i >= GL_TR ? GL_TR : 1;
                    for (int t = 0; t < tn;) {
                        int T = tn - t >= GL_TT ? GL_TT : 1;
                        gl_tile_fn f = tiles[(R == GL_TR ? 0 : 2) + (T == GL_TT ? 0 : 1)];
                        f(wp + (size_t)i * GL_WS(cols), cols, ws + (size_t)i * G, wb + (size_t)i * G, G, ga, ge,
                          tp + (size_t)t * 3 * cols, tx + (size_t)t * 2 * G, gs,
                          out + (size_t)(t0 + t) * ldo + (size_t)(r0 + i), ldo, st + GL_ST(i, t));
                        t += T;
                    }
                    i += R;
                }
            }
        }
    }
}
T_512 void sl_v512_affine4_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                    size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                                    float *out, size_t ldo, void *scratch) {
    static const gl_tile_fn tiles[4] = {gl_tile4_42, gl_tile4_41, gl_tile4_12, gl_tile4_11};
    gl_gemm(4, tiles, codes, ldc, scales, biases, lds, sdt, nr, act, nt, cols, gs, out, ldo, scratch);
}
T_512 void sl_v512_affine8_x24_gemm(const uint8_t *codes, size_t ldc, const uint8_t *scales, const uint8_t *biases,
                                    size_t lds, sl_dtype sdt, int nr, const uint8_t *act, int nt, size_t cols, int gs,
                                    float *out, size_t ldo, void *scratch) {
    static const gl_tile_fn tiles[4] = {gl_tile8_42, gl_tile8_41, gl_tile8_12, gl_tile8_11};
    gl_gemm(8, tiles, codes, ldc, scales, biases, lds, sdt, nr, act, nt, cols, gs, out, ldo, scratch);
}
#else
typedef int sl_qaffine_gl_x86_unused; /* ISO C forbids an empty translation unit */
#endif
