/*
 * qgemm_x86.c — the avx512 set's GGUF Q4_0 / Q8_0 kernels (AVX-512 BW +
 * VNNI): the one-token dot (sl_qd_q8_fn), the generation rows kernels with
 * their per-token prep (sl_qd_q40_prep_fn / _rows_fn / _rowsn_fn: one
 * token, 2..15 tokens) and the prompt GEMM
 * (sl_qd_q8_gemm_fn), all in one f32 order, "block lanes":
 *
 *   acc (16 f32 lanes) = 0; for each group of 16 blocks g (the last one
 *   partial, its missing lanes masked: left untouched):
 *     acc[j] = fmadd((float)isum(block 16 g + j), d_w * d_y, acc[j]);
 *   out = _mm512_reduce_add_ps(acc)   (in gcc's order: hsum16)
 *
 * isum is the block's exact integer dot ((q - 8) . y for Q4_0, w . y for
 * Q8_0), whatever way it is formed; d_w * d_y is the one f32 product of
 * the widened f16 weight scale and the activation scale.  Lane j of every
 * f32 operation is one block, so the f32 work is one cvt, one multiply and
 * one fmadd per 16 blocks (per (row, token)), against 8 per 16 blocks when
 * lanes held 4-byte partial sums (rounds 2-3: the prompt GEMM was bound
 * by that f32 work).
 *
 * How isum is formed, always through vpdpbusd (unsigned u x signed s):
 * u = the codes as unsigned bytes (Q4_0: q in 0..15; Q8_0: w xor 0x80 =
 * w + 128) against the activations y, then minus k . sum(y) (k = 8, 128;
 * sl_q8b.s is sum(y)).  For the GEMM and Q8_0 a "pair" vector holds two blocks'
 * 32 bytes (lanes 0-7, 8-15: q4_0_pair / q8_0_pair / y_pair, qdot_x86.h);
 * a group is 8 pairs, a 16 x 8 matrix of 4-byte words M[j][k] (block j,
 * word k).
 *  - Q8_0 dot and rows: vpdpbusd on the pairs as stored, then reduce8
 *    sums the 8 words of each block into lane j (three lane-bit swap
 *    stages with two-source permutes and adds, 21 operations per group);
 *  - Q4_0 dot and rows (round 15): "quad lanes", below q4q_load: four
 *    blocks per vector, one per 128-bit lane, their codes 0-15 and 16-31
 *    against the token's y in the same layout (made once per call), two
 *    vpdpbusd per quad, then two in-lane stages (unpack and add) sum the
 *    four vectors' words into one lane per block, in the lane order
 *    4 k + q for block 4 q + k; that order is undone once per output
 *    before the reduction (9 operations per group against 21);
 *  - GEMM: transpose8 moves the same matrix to "word k of all 16 blocks"
 *    vectors (the same three stages without the adds) once per call for a
 *    chunk of gr weight rows (packed into the scratch: the mmap stays the
 *    only copy of the weights) and once per gr rows for a token; then 8
 *    vpdpbusd per (row, token) and group accumulate the 16 blocks' isums
 *    directly, onto the token's -k . sum(y) lanes.
 * Integer sums are exact in any order, the products and the fmadd chain
 * are the same: every output of the rows kernel and of the GEMM is the
 * dot's, bit for bit, so batching and threads change nothing (tests:
 * test_gemm.c, test_kernels.c).  Against the portable dot (another f32
 * order) the results are tolerance-identical.
 * GEMM register tile: RT = 4 rows x TT = 2 tokens (8 isum and 8 acc
 * registers, 4 rows' word vectors; the token words are memory operands);
 * 16 rows per pack where the scratch holds them (SL_QD_GEMM_SCRATCH(nb):
 * 576 bytes a row and group; at least 8 rows), a token's pack (640 bytes a
 * group, made once per row pack: its transposition is the GEMM's main
 * overhead) GB = 8 groups at a time, the row tiles' chains parked in the
 * scratch between group blocks, so a block's token pack stays in L1 on
 * long rows (8192 columns: 91 -> 112-116 MAC/ns).  The caller pads the
 * tokens to SL_QD_GEMM_TOKENS (a multiple of TT): padding tokens are
 * computed and dropped.
 */
#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)
#define GR 16 /* weight rows per pack, at most: as many as SL_QD_GEMM_SCRATCH(nb) holds, >= 8 */
#define RT 4  /* rows per register tile */
#define TT 2  /* tokens per register tile */
#define GB 8  /* groups (of 16 blocks) per token pack */
_Static_assert(GR % RT == 0 && 8 % RT == 0 && SL_QD_GEMM_TOKENS % TT == 0 && sizeof(sl_q8b) == 40, "shapes");
/* SL_QD_GEMM_SCRATCH(nb) = 576 nb + 18 KiB + 64 holds the token packs and the chains (fixed
 * sizes) in its 18 KiB, and 576 x 16 bytes per whole group of 16 blocks: 16 rows' packs (576
 * bytes a row and group); a partial last group leaves at least 8 (one block: 8). */
_Static_assert(TT * GB * 640 + GR / RT * RT * TT * 64 <= 16 * 16 * 64 + 2 * 1024 - 64, "packs fit");

/* The three swap stages: stage l exchanges the vector-index bit l of a pair
 * (A, B) with lane bit l (word bit k_l); stage 2 also puts block j in lane
 * j (after three plain swaps lane bits 0-3 hold j1 j2 j3 j0). */
static const int32_t SWAP[3][2][16] __attribute__((aligned(64))) = {
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}, {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 8, 1, 9, 2, 10, 3, 11, 16, 24, 17, 25, 18, 26, 19, 27}, {4, 12, 5, 13, 6, 14, 7, 15, 20, 28, 21, 29, 22, 30, 23, 31}}};

T_512 static inline void swap_stage(__m512i *a, __m512i *b, int l) {
    __m512i ia = _mm512_load_si512((const void *)SWAP[l][0]), ib = _mm512_load_si512((const void *)SWAP[l][1]);
    __m512i na = _mm512_permutex2var_epi32(*a, ia, *b), nb = _mm512_permutex2var_epi32(*a, ib, *b);
    *a = na, *b = nb;
}
/* v[i] lanes 8 h + k = M[2 i + h][k]  ->  v[k] lane j = M[j][k]. */
T_512 static inline void transpose8(__m512i v[8]) {
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < 8; i++)
            if (!(i >> l & 1)) swap_stage(&v[i], &v[i | 1 << l], l);
}
/* The same stages summing each swapped pair: lane j = sum over k of M[j][k]. */
T_512 static inline __m512i reduce8(__m512i p[8]) {
    __m512i c[4], d[2];
    for (int m = 0; m < 4; m++) {
        swap_stage(&p[2 * m], &p[2 * m + 1], 0);
        c[m] = _mm512_add_epi32(p[2 * m], p[2 * m + 1]);
    }
    for (int m = 0; m < 2; m++) {
        swap_stage(&c[2 * m], &c[2 * m + 1], 1);
        d[m] = _mm512_add_epi32(c[2 * m], c[2 * m + 1]);
    }
    swap_stage(&d[0], &d[1], 2);
    return _mm512_add_epi32(d[0], d[1]);
}

/* A whole group at w: the unsigned code bytes of blocks 2 i, 2 i + 1 (u[i],
 * the pairs' layout) and the 16 f16 weight scales widened (block j in lane
 * j), the scales picked by word permutes from the loads (a gather was a
 * fifth of the generation time): Q4_0 four blocks per 72 bytes
 * (q4_0_quad; scale words 0, 9, 18, 27 of its 64-byte load), Q8_0 four
 * per 136 (words 0, 17, 34, 51 of two 64-byte loads), each quad's four
 * words permuted into words 4 q .. 4 q + 3 and blended. */
T_512 static inline void group_load(const uint8_t *w, int q8, __m512i u[8], __m512 *dw) {
    __m512i sc = _mm512_setzero_si512();
    for (int q = 0; q < 4; q++) {
        const int st = q8 ? 17 : 9;
        const __m512i idx = _mm512_mask_blend_epi16((__mmask32)(0xfu << 4 * q), _mm512_setzero_si512(),
                                                    _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                     3 * st, 2 * st, st, 0, 3 * st, 2 * st, st, 0,
                                                                     3 * st, 2 * st, st, 0, 3 * st, 2 * st, st, 0));
        __m512i v;
        if (q8) {
            const uint8_t *wq = w + 136 * q;
            __m512i A = _mm512_loadu_si512((const void *)wq), B = _mm512_loadu_si512((const void *)(wq + 64));
            v = _mm512_permutex2var_epi16(A, idx, B);
            const __m512i k80 = _mm512_set1_epi8((char)0x80);
            u[2 * q] = _mm512_xor_si512(q8_0_pair(wq), k80);
            u[2 * q + 1] = _mm512_xor_si512(q8_0_pair(wq + 68), k80);
        } else {
            __m512i A;
            q4_0_quad(w + 72 * q, &A, &u[2 * q], &u[2 * q + 1]);
            v = _mm512_permutexvar_epi16(idx, A);
        }
        sc = _mm512_mask_blend_epi16((__mmask32)(0xfu << 4 * q), sc, v);
    }
    *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(sc));
}
T_512 static inline __m512i idx40(void) {
    return _mm512_set_epi32(600, 560, 520, 480, 440, 400, 360, 320, 280, 240, 200, 160, 120, 80, 40, 0);
}
T_512 static inline __m512 group_dy(const sl_q8b *y) { return _mm512_i32gather_ps(idx40(), (const void *)&y->d, 1); }
T_512 static inline __m512i group_ksum(const sl_q8b *y, int q8) {
    return _mm512_slli_epi32(_mm512_i32gather_epi32(idx40(), (const void *)&y->s, 1), q8 ? 7 : 3);
}

/* A group's 16 isums from its code pairs u and the token's pairs ys, as stored (dot, rows). */
T_512 static inline __m512i group_isum(const __m512i u[8], const __m512i ys[8], __m512i ksum) {
    __m512i p[8];
    for (int i = 0; i < 8; i++) p[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[i], ys[i]);
    return _mm512_sub_epi32(reduce8(p), ksum);
}
/* The chain's reduction: _mm512_reduce_add_ps's order as gcc writes it (upper + lower halves, then
 * quarters, then lanes 0 + 2 and 1 + 3, then those two), spelled out, so that every compiler keeps
 * it: clang lowers the intrinsic to a reassociable reduction, free to drop a lane permute before it
 * or to take another order in another function. */
T_512 static inline float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)), _mm512_castps512_ps256(v));
    __m128 b = _mm_add_ps(_mm256_extractf128_ps(a, 1), _mm256_castps256_ps128(a));
    __m128 c = _mm_add_ps(b, _mm_shuffle_ps(b, b, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}
T_512 static inline __mmask16 group_mask(size_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u); }

/* The last, partial group (rem < 16 blocks) copied to zeroed buffers: whole groups read nothing past the row. */
typedef struct pad_group {
    uint8_t w[16 * 34 + 64];
    sl_q8b y[16];
} pad_group;
static void pad_copy(pad_group *p, const uint8_t *w, const sl_q8b *y, size_t rem, int q8) {
    memset(p, 0, sizeof *p);
    if (w) memcpy(p->w, w, rem * (q8 ? 34 : 18));
    if (y) memcpy(p->y, y, rem * sizeof(sl_q8b));
}

/* ---- Q4_0 dots and rows in "quad lanes" ----
 * A group's isums without the pairs' three cross-lane stages: vector q of
 * four holds blocks 4 q .. 4 q + 3 (72 bytes: 64-byte loads at 0 and 8,
 * one word permute), block 4 q + k's 16 code bytes in its 128-bit
 * lane k, split into low nibbles (codes 0-15, c[q]) and high (16-31,
 * c[4 + q]); vpdpbusd of c[q] against the token's y[0..15] of the same
 * blocks, then of c[4 + q] against y[16..31] (tok_form, once per call)
 * leaves four words per block, which two in-lane stages (unpack lo / hi
 * and add, 32- then 64-bit) sum across the four vectors: 9 operations per
 * group against reduce8's 21 cross-lane ones.  The sums come out with
 * block 4 q + k in lane 4 k + q (Q4Q_LANE: a 4 x 4 transpose, its own
 * inverse), so the weight scales are picked in that order, the token's d
 * and k . sum(y) are stored in it, and the chain's lanes are put back (one
 * permute) before the reduction: every lane runs the same chain on the
 * same block as in block lanes, so the bits are the GEMM's.  (Q8_0 in
 * quads, 136 bytes and two word permutes a quad, was 2 % slower than its
 * pairs in L3: its codes need no split, so the pairs' loads are cheap.) */
#define Q4Q_LANE(l) (4 * ((l) % 4) + (l) / 4)
T_512 static inline __m512i q4q_lanes(void) {
    return _mm512_set_epi32(Q4Q_LANE(15), Q4Q_LANE(14), Q4Q_LANE(13), Q4Q_LANE(12), Q4Q_LANE(11), Q4Q_LANE(10),
                            Q4Q_LANE(9), Q4Q_LANE(8), Q4Q_LANE(7), Q4Q_LANE(6), Q4Q_LANE(5), Q4Q_LANE(4), Q4Q_LANE(3),
                            Q4Q_LANE(2), Q4Q_LANE(1), Q4Q_LANE(0));
}
/* A whole Q4_0 group at w: c[q] / c[4 + q] the low / high nibbles of blocks 4 q + k in lane k,
 * dw the 16 widened scales in quad-lane order (lane 4 k + q: word 9 k of quad q's 64-byte load). */
T_512 static inline void q4q_load(const uint8_t *w, __m512i c[8], __m512 *dw) {
    const __m512i ci = _mm512_set_epi16(63, 62, 61, 60, 59, 58, 57, 56, 26, 25, 24, 23, 22, 21, 20, 19,
                                        17, 16, 15, 14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
    const __m512i si = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                        59, 27, 59, 27, 50, 18, 50, 18, 41, 9, 41, 9, 32, 0, 32, 0);
    __m512i A[4];
    for (int q = 0; q < 4; q++) {
        A[q] = _mm512_loadu_si512((const void *)(w + 72 * q));
        c[q] = _mm512_permutex2var_epi16(A[q], ci, _mm512_loadu_si512((const void *)(w + 72 * q + 8)));
    }
    __m512i s = _mm512_mask_blend_epi16(0xcccc, _mm512_permutex2var_epi16(A[0], si, A[1]),
                                        _mm512_permutex2var_epi16(A[2], si, A[3]));
    *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(s));
    const __m512i m4 = _mm512_set1_epi8(15);
    for (int q = 0; q < 4; q++) {
        c[4 + q] = _mm512_and_si512(_mm512_srli_epi16(c[q], 4), m4);
        c[q] = _mm512_and_si512(c[q], m4);
    }
}
/* The group's 16 isums (quad-lane order) from q4q_load's codes and the token's form. */
T_512 static inline __m512i quad_isum(const __m512i c[8], const __m512i ys[8], __m512i ksum) {
    __m512i p[4];
    for (int q = 0; q < 4; q++)
        p[q] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), c[q], ys[q]), c[4 + q], ys[4 + q]);
    __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
    __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
    return _mm512_sub_epi32(_mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b)), ksum);
}

/* A token's group in the dot's form (Q8_0: pairs, block lanes; Q4_0: quad lanes, d_y and
 * k . sum(y) in the sums' lane order); row_dot's pre: the token's whole groups, or NULL (formed
 * per row). */
typedef struct tok_group {
    __m512i ys[8];   /* Q8_0: y_pair of blocks 2 i, 2 i + 1; Q4_0: ys[q] lane k y[0..15] of block 4 q + k, ys[4 + q] its y[16..31] */
    __m512 dy;
    __m512i ksum;
} tok_group;
T_512 static inline void tok_form(const sl_q8b *y, int q8, tok_group *t) {
    if (q8) {
        for (int i = 0; i < 8; i++) t->ys[i] = y_pair(y + 2 * i);
        t->dy = group_dy(y), t->ksum = group_ksum(y, q8);
        return;
    }
    for (int q = 0; q < 4; q++)
        for (int k = 0; k < 4; k++) {
            memcpy((uint8_t *)&t->ys[q] + 16 * k, y[4 * q + k].qs, 16);
            memcpy((uint8_t *)&t->ys[4 + q] + 16 * k, y[4 * q + k].qs + 16, 16);
        }
    const __m512i l = q4q_lanes();
    t->dy = _mm512_permutexvar_ps(l, group_dy(y)), t->ksum = _mm512_permutexvar_epi32(l, group_ksum(y, q8));
}
/* One group step of a chain (the set's lane order for the type), the mask of a partial group's
 * rem blocks in that order, and the chain back in block lanes for the reduction. */
typedef struct grp_w {
    __m512i u[8];
    __m512 dw;
} grp_w;
T_512 static inline void grp_load(const uint8_t *w, int q8, grp_w *g) {
    if (q8) group_load(w, 1, g->u, &g->dw);
    else q4q_load(w, g->u, &g->dw);
}
T_512 static inline __m512 grp_step(const grp_w *g, const tok_group *t, int q8, __m512 acc, __mmask16 m) {
    __m512i is = q8 ? group_isum(g->u, t->ys, t->ksum) : quad_isum(g->u, t->ys, t->ksum);
    __m512 f = _mm512_cvtepi32_ps(is), d = _mm512_mul_ps(g->dw, t->dy);
    return m == 0xffff ? _mm512_fmadd_ps(f, d, acc) : _mm512_mask3_fmadd_ps(f, d, acc, m);
}
static inline __mmask16 grp_mask(size_t rem, int q8) {
    if (q8) return group_mask(rem);
    unsigned m = 0;
    for (int l = 0; l < 16; l++) m |= (unsigned)(Q4Q_LANE(l) < (int)rem) << l;
    return (__mmask16)m;
}
T_512 static inline float grp_reduce(__m512 acc, int q8) {
    return hsum16(q8 ? acc : _mm512_permutexvar_ps(q4q_lanes(), acc));
}

T_512 static inline float row_dot(const uint8_t *w, const sl_q8b *y, const tok_group *pre, size_t nb, int q8) {
    const size_t bb = q8 ? 34 : 18;
    __m512 acc = _mm512_setzero_ps();
    size_t g = 0;
    grp_w gw;
    for (; g + 16 <= nb; g += 16) {
        grp_load(w + g * bb, q8, &gw);
        tok_group own;
        const tok_group *t = pre ? pre + g / 16 : &own;
        if (!pre) tok_form(y + g, q8, &own);
        acc = grp_step(&gw, t, q8, acc, 0xffff);
    }
    if (g < nb) {
        pad_group p;
        pad_copy(&p, w + g * bb, y + g, nb - g, q8);
        grp_load(p.w, q8, &gw);
        tok_group t;
        tok_form(p.y, q8, &t);
        acc = grp_step(&gw, &t, q8, acc, grp_mask(nb - g, q8));
    }
    return grp_reduce(acc, q8);
}

T_512 float sl_v512_q4_0(const uint8_t *w, const sl_q8b *y, size_t nb) { return row_dot(w, y, NULL, nb, 0); }
T_512 float sl_v512_q8_0(const uint8_t *w, const sl_q8b *y, size_t nb) { return row_dot(w, y, NULL, nb, 1); }

/* Generation: the token's whole groups (pairs, d_y, k . sum(y): 40 bytes a block, within
 * SL_QD_Q40_PREP_BYTES) once per call, then row_dot per row. */
T_512 static void prep(const sl_q8b *y, size_t nb, void *out, int q8) {
    tok_group *t = out;
    for (size_t g = 0; g + 16 <= nb; g += 16, t++) tok_form(y + g, q8, t);
}
T_512 void sl_v512_q4_0_prep(const sl_q8b *y, size_t nb, void *out) { prep(y, nb, out, 0); }
T_512 void sl_v512_q8_0_prep(const sl_q8b *y, size_t nb, void *out) { prep(y, nb, out, 1); }
T_512 void sl_v512_q4_0_rows(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, const void *pre, size_t nb,
                       float *out) {
    for (size_t r = 0; r < nr; r++) out[r] = row_dot(w + r * ldw, y, pre, nb, 0);
}
T_512 void sl_v512_q8_0_rows(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, const void *pre, size_t nb,
                       float *out) {
    for (size_t r = 0; r < nr; r++) out[r] = row_dot(w + r * ldw, y, pre, nb, 1);
}

/* A few tokens (qdot.h sl_qd_q40_rowsn_fn): each group of a row loaded once
 * for all nt <= SL_QD_ROWS_MAX_TOKENS tokens, every (row, token) row_dot's
 * chain; pre: nt prep forms SL_QD_Q40_PREP_BYTES(nb) apart. */
T_512 static void rows_n(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, size_t ldy, int nt, const void *pre,
                         size_t nb, float *out, size_t ldo, int q8) {
    const size_t bb = q8 ? 34 : 18, ng = nb / 16;
    for (size_t r = 0; r < nr; r++) {
        const uint8_t *wr = w + r * ldw;
        __m512 acc[SL_QD_ROWS_MAX_TOKENS];
        for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
        grp_w gw;
        for (size_t g = 0; g < ng; g++) {
            grp_load(wr + g * 16 * bb, q8, &gw);
            for (int t = 0; t < nt; t++) {
                const tok_group *tg = (const tok_group *)(const void *)((const uint8_t *)pre + (size_t)t * SL_QD_Q40_PREP_BYTES(nb)) + g;
                acc[t] = grp_step(&gw, tg, q8, acc[t], 0xffff);
            }
        }
        if (ng * 16 < nb) {
            pad_group p;
            pad_copy(&p, wr + ng * 16 * bb, NULL, nb - ng * 16, q8);
            grp_load(p.w, q8, &gw);
            for (int t = 0; t < nt; t++) {
                pad_copy(&p, NULL, y + (size_t)t * ldy + ng * 16, nb - ng * 16, q8);
                tok_group tg;
                tok_form(p.y, q8, &tg);
                acc[t] = grp_step(&gw, &tg, q8, acc[t], grp_mask(nb - ng * 16, q8));
            }
        }
        for (int t = 0; t < nt; t++) out[(size_t)t * ldo + r] = grp_reduce(acc[t], q8);
    }
}
T_512 void sl_v512_q4_0_rows_n(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, size_t ldy, int nt,
                               const void *pre, size_t nb, float *out, size_t ldo) {
    rows_n(w, ldw, nr, y, ldy, nt, pre, nb, out, ldo, 0);
}
T_512 void sl_v512_q8_0_rows_n(const uint8_t *w, size_t ldw, size_t nr, const sl_q8b *y, size_t ldy, int nt,
                               const void *pre, size_t nb, float *out, size_t ldo) {
    rows_n(w, ldw, nr, y, ldy, nt, pre, nb, out, ldo, 1);
}

/* ---- the prompt GEMM ---- */
typedef struct wpack { __m512i u[8]; __m512 dw; } wpack;                  /* a row's group: 576 bytes */
typedef struct ypack { __m512i s[8]; __m512i nks; __m512 dy; } ypack;     /* a token's group: 640 bytes */

/* Row or token group (16 blocks at w / y, whole or padded) in the word layout. */
T_512 static void pack_w(const uint8_t *w, int q8, wpack *o) {
    __m512i v[8];
    group_load(w, q8, v, &o->dw);
    transpose8(v);
    for (int k = 0; k < 8; k++) o->u[k] = v[k];
}
T_512 static void pack_y(const sl_q8b *y, int q8, ypack *o) {
    __m512i v[8];
    for (int i = 0; i < 8; i++) v[i] = y_pair(y + 2 * i);
    transpose8(v);
    for (int k = 0; k < 8; k++) o->s[k] = v[k];
    int32_t nks[16];
    float dy[16];
    for (int j = 0; j < 16; j++) {   /* group_ksum / _dy's values; unsigned: padding tokens hold any bits */
        nks[j] = (int32_t)(0u - ((uint32_t)y[j].s << (q8 ? 7 : 3)));
        dy[j] = y[j].d;
    }
    o->nks = _mm512_loadu_si512((const void *)nks);
    o->dy = _mm512_loadu_ps(dy);
}
/* All groups of gr rows (rows past n zero), or of TT tokens (the caller's padding included). */
T_512 static void pack_rows(const uint8_t *w, size_t ldw, int n, int gr, size_t nb, int q8, wpack *o) {
    const size_t ng = (nb + 15) / 16, bb = q8 ? 34 : 18;
    for (int r = 0; r < gr; r++)
        for (size_t g = 0; g < ng; g++) {
            wpack *d = o + (size_t)r * ng + g;
            if (r >= n) {
                memset(d, 0, sizeof *d);
                continue;
            }
            const uint8_t *wg = w + (size_t)r * ldw + g * 16 * bb;
            if (g * 16 + 16 <= nb) {
                pack_w(wg, q8, d);
                continue;
            }
            pad_group p;
            pad_copy(&p, wg, NULL, nb - g * 16, q8);
            pack_w(p.w, q8, d);
        }
}
T_512 static void pack_toks(const sl_q8b *y, size_t ldy, int ntok, size_t g0, size_t g1, size_t nb, int q8, ypack *o) {
    for (int t = 0; t < ntok; t++)
        for (size_t g = g0; g < g1; g++) {
            const sl_q8b *yg = y + (size_t)t * ldy + g * 16;
            ypack *d = o + (size_t)t * (g1 - g0) + (g - g0);
            if (g * 16 + 16 <= nb) {
                pack_y(yg, q8, d);
                continue;
            }
            pad_group p;
            pad_copy(&p, NULL, yg, nb - g * 16, q8);
            pack_y(p.y, q8, d);
        }
}

/* RT packed rows (W, ng groups apart) x TT packed tokens (Y, yn groups apart, from group g0),
 * groups [g0, g1) of the chains acc[r][t]: started at zero when g0 is 0, else read from
 * acc_m; then reduced into o[t][r] when g1 is the last group, else written back. */
T_512 static void tile(const wpack *W, size_t ng, const ypack *Y, size_t yn, size_t g0, size_t g1, size_t nb,
                       __m512 acc_m[RT][TT], float o[TT][RT]) {
    __m512 acc[RT][TT];
    for (int r = 0; r < RT; r++)
        for (int t = 0; t < TT; t++) acc[r][t] = g0 ? acc_m[r][t] : _mm512_setzero_ps();
    for (size_t g = g0; g < g1; g++) {
        const ypack *yg = Y + (g - g0);
        __m512i is[RT][TT];
        for (int r = 0; r < RT; r++)
            for (int t = 0; t < TT; t++) is[r][t] = yg[(size_t)t * yn].nks;
        for (int k = 0; k < 8; k++)
            for (int r = 0; r < RT; r++) {
                __m512i u = W[(size_t)r * ng + g].u[k];
                for (int t = 0; t < TT; t++) is[r][t] = _mm512_dpbusd_epi32(is[r][t], u, yg[(size_t)t * yn].s[k]);
            }
        __mmask16 m = group_mask(nb - g * 16);
        for (int r = 0; r < RT; r++)
            for (int t = 0; t < TT; t++)
                acc[r][t] = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(is[r][t]),
                                                  _mm512_mul_ps(W[(size_t)r * ng + g].dw, yg[(size_t)t * yn].dy), acc[r][t], m);
    }
    for (int r = 0; r < RT; r++)
        for (int t = 0; t < TT; t++) {
            if (g1 < ng) acc_m[r][t] = acc[r][t];
            else o[t][r] = hsum16(acc[r][t]);
        }
}

/* Rows in packs of gr (as many as the scratch holds beside the token pack and the chains, up
 * to GR); tokens TT at a time, their groups GB at a time (a long row's chains parked in the
 * scratch between blocks), so that a block's token pack stays in L1 while the row tiles go by. */
T_512 static void gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb, float *out,
                       size_t ldo, void *scratch, int q8) {
    const size_t ng = (nb + 15) / 16, room = SL_QD_GEMM_SCRATCH(nb) - 64;   /* the caller's alignment may take 63 */
    const size_t fixed = (size_t)TT * GB * sizeof(ypack) + (size_t)GR / RT * sizeof(__m512[RT][TT]);
    size_t g = (room - fixed) / (ng * sizeof(wpack));
    const int gr = (int)(g > GR ? GR : g) / RT * RT;   /* >= 8; 16 for whole groups (static assertion above) */
    __m512(*A)[RT][TT] = scratch;                       /* chains of the row tiles */
    ypack *Y = (ypack *)(void *)(A + GR / RT);
    wpack *W = (wpack *)(void *)(Y + TT * GB);
    for (int r0 = 0; r0 < nr; r0 += gr) {
        int rn = nr - r0 < gr ? nr - r0 : gr;
        pack_rows(w + (size_t)r0 * ldw, ldw, rn, gr, nb, q8, W);
        for (int t0 = 0; t0 < nt; t0 += TT)
            for (size_t g0 = 0; g0 < ng; g0 += GB) {
                size_t g1 = g0 + GB < ng ? g0 + GB : ng;
                pack_toks(y + (size_t)t0 * ldy, ldy, TT, g0, g1, nb, q8, Y);
                for (int ri = 0; ri < rn; ri += RT) {
                    float o[TT][RT];
                    tile(W + (size_t)ri * ng, ng, Y, g1 - g0, g0, g1, nb, A[ri / RT], o);
                    for (int t = 0; g1 == ng && t < TT && t0 + t < nt; t++)
                        for (int r = 0; r < RT && ri + r < rn; r++) out[(size_t)(t0 + t) * ldo + (size_t)(r0 + ri + r)] = o[t][r];
                }
            }
    }
}

T_512 void sl_v512_q4_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                       float *out, size_t ldo, void *scratch) {
    gemm(w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch, 0);
}
T_512 void sl_v512_q8_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                       float *out, size_t ldo, void *scratch) {
    gemm(w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch, 1);
}
#endif
