/*
 * qgemm_x86.c — the avx512 set's prompt GEMM for GGUF Q4_0 / Q8_0 weights
 * (qdot.h sl_qd_q8_gemm_fn: a thread's rows x every token of a prompt, with
 * a private scratch), AVX-512 BW + VNNI.
 *
 * The one-token dots (qdot_x86.c v512_q4_0 / v512_q8_0) keep two 16-lane
 * f32 chains per (row, token): chain 0 over the block pairs p = 0, 2, 4,
 * ... (blocks 2p, 2p + 1 in lanes 0-7, 8-15), chain 1 over p = 1, 3, ...,
 * each step acc = fmadd(cvt(i32 lanes), (d_w, d_w') * (d_y, d_y'), acc);
 * then reduce(a0 + a1) + the odd last block (v512_*_tail).  This GEMM runs
 * exactly those chains, with the per-row work done once per call instead
 * of once per 4-token tile: GR rows at a time are packed into the scratch
 * (the mmap stays the only copy of the weights; the pack is GR rows of
 * nb / 2 pairs, 128 bytes per row), each pair as
 *   u:  the unsigned byte codes (Q4_0: the 4-bit codes q, in y's order;
 *       Q8_0: w xor 0x80 = w + 128), one 64-byte vector;
 *   rd: the two f16 scales widened to f32, two_scales(d_w, d_w').
 * A token's pair is its 64 activation bytes s, its lane correction
 * nc = -k . s (k = 8 for Q4_0, 128 for Q8_0: (q - 8) . y = q . y - 8 . y,
 * (w + 128) . y - 128 . y = w . y) and two_scales(d_y, d_y'), formed once
 * per GR rows.  One vpdpbusd onto nc gives the dot's exact i32 lanes; the
 * scale vector is the same f32 products d_w * d_y (lane-wise multiply of
 * the two pair vectors); the fmadd, the chain split and the final
 * reduction are the dot's: every output bit for bit the one-token dot, so
 * batching and threads change nothing (tests: test_gemm.c, and
 * test_kernels.c's prompt path against one-token calls).
 * Register tile: GR = 8 rows x GT = 2 tokens of one chain (16
 * accumulators, the two tokens' operands in 6 registers: no spills; 4 x 4
 * needed 12 and spilled, and formed each token's operands for 4 rows
 * only), the row operands loaded from the pack (L1 / L2).  The pack of 8
 * rows is 512 nb bytes, within SL_QD_GEMM_SCRATCH(nb).  The caller pads the
 * tokens to SL_QD_GEMM_TOKENS (a multiple of GT): padding tokens are
 * computed and dropped.
 */
#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)
#define GR 8 /* rows per pack (and per register tile) */
#define GT 2 /* tokens per register tile */
_Static_assert(GR * 64 <= 576 && SL_QD_GEMM_TOKENS % GT == 0, "the pack fits SL_QD_GEMM_SCRATCH(nb)");

/* Rows [0, nr) of a GR-row chunk into pk (pair p, row r at pk + 2 (p GR + r)); rows past nr zero. */
T_512 static void pack_rows(const uint8_t *w, size_t ldw, int nr, size_t np, int q8, __m512i *pk) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    const size_t bb = q8 ? 34 : 18;
    for (int r = 0; r < GR; r++) {
        const uint8_t *wr = w + (size_t)r * ldw;
        for (size_t p = 0; p < np; p++, wr += 2 * bb) {
            __m512i *o = pk + 2 * (p * GR + (size_t)r);
            if (r >= nr) {
                o[0] = o[1] = _mm512_setzero_si512();
                continue;
            }
            o[0] = q8 ? _mm512_xor_si512(q8_0_pair(wr), k80) : q4_0_pair(wr);
            o[1] = _mm512_castps_si512(two_scales(f16s(wr), f16s(wr + bb)));
        }
    }
}

/* One chain (pairs c, c + 2, ...) of the GR x GT tile into a[r][t]. */
T_512 static inline void tile_chain(const __m512i *pk, size_t np, size_t c, const sl_q8b *y, size_t ldy, __m512i kv,
                                    __m512 a[GR][GT]) {
    const __m512i z = _mm512_setzero_si512();
    for (int r = 0; r < GR; r++)
        for (int t = 0; t < GT; t++) a[r][t] = _mm512_setzero_ps();
    for (size_t p = c; p < np; p += 2) {
        __m512i s[GT], nc[GT];
        __m512 td[GT];
        for (int t = 0; t < GT; t++) {
            const sl_q8b *yb = y + (size_t)t * ldy + 2 * p;
            s[t] = y_pair(yb);
            nc[t] = _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, kv, s[t]));
            td[t] = two_scales(yb[0].d, yb[1].d);
        }
        const __m512i *pp = pk + 2 * p * GR;
        for (int r = 0; r < GR; r++) {
            __m512i u = _mm512_load_si512((const void *)(pp + 2 * r));
            __m512 rd = _mm512_castsi512_ps(_mm512_load_si512((const void *)(pp + 2 * r + 1)));
            for (int t = 0; t < GT; t++)
                a[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(nc[t], u, s[t])),
                                          _mm512_mul_ps(rd, td[t]), a[r][t]);
        }
    }
}

/* The GR x GT tile's reduce(a0 + a1) per (row, token): o[t][r]. */
T_512 static void tile(const __m512i *pk, size_t np, const sl_q8b *y, size_t ldy, __m512i kv, float o[GT][GR]) {
    __m512 a0[GR][GT], a1[GR][GT];
    tile_chain(pk, np, 0, y, ldy, kv, a0);
    tile_chain(pk, np, 1, y, ldy, kv, a1);
    for (int t = 0; t < GT; t++)
        for (int r = 0; r < GR; r++) o[t][r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r][t], a1[r][t]));
}

T_512 static void gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb, float *out,
                       size_t ldo, void *scratch, int q8) {
    const size_t np = nb / 2, bb = q8 ? 34 : 18;
    const __m512i kv = _mm512_set1_epi8(q8 ? (char)0x80 : 8);
    __m512i *pk = scratch;
    for (int r0 = 0; r0 < nr; r0 += GR) {
        int rn = nr - r0 < GR ? nr - r0 : GR;
        const uint8_t *wc = w + (size_t)r0 * ldw;
        pack_rows(wc, ldw, rn, np, q8, pk);
        for (int t0 = 0; t0 < nt; t0 += GT) {
            float o[GT][GR];
            const sl_q8b *yt = y + (size_t)t0 * ldy;
            tile(pk, np, yt, ldy, kv, o);
            for (int t = 0; t < GT && t0 + t < nt; t++)
                for (int r = 0; r < rn; r++) {
                    const uint8_t *wl = wc + (size_t)r * ldw + (nb - 1) * bb;
                    const sl_q8b *yl = yt + (size_t)t * ldy + nb - 1;
                    float tail = nb & 1 ? (q8 ? v512_q8_0_tail(wl, yl) : v512_q4_0_tail(wl, yl)) : 0.0f;
                    out[(size_t)(t0 + t) * ldo + (size_t)(r0 + r)] = o[t][r] + tail;
                }
        }
    }
}

void sl_v512_q4_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                       float *out, size_t ldo, void *scratch) {
    gemm(w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch, 0);
}
void sl_v512_q8_0_gemm(const uint8_t *w, size_t ldw, int nr, const sl_q8b *y, size_t ldy, int nt, size_t nb,
                       float *out, size_t ldo, void *scratch) {
    gemm(w, ldw, nr, y, ldy, nt, nb, out, ldo, scratch, 1);
}
#endif
