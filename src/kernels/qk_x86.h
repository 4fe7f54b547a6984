/*
 * qk_x86.h — GGUF Q4_K / Q6_K block decoding shared by the AVX-512 tiles
 * (qk_x86.c) and the AMX GEMM (qamx_x86.c) (internal).  A block's 256 codes
 * come out as four 64-byte vectors in the activations' element order (the
 * order of a q8_K block's qs): Q4_K per 32 code bytes the low nibbles, then
 * the high ones (0..15); Q6_K 4 low bits from ql and 2 high from qh (0..63,
 * the -32 offset left to the caller).
 * Invariant: included only where SL_QD_X86 holds (qdot.h).
 */
#ifndef SILICA_KERNELS_QK_X86_H
#define SILICA_KERNELS_QK_X86_H

#include "kernels/qdot_x86.h"

#if defined(SL_QD_X86)

T_512 static inline __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
/* 16-bit lanes: lo in the low 256 bits, hi in the high ones. */
T_512 static inline __m512i halves16(short lo, short hi) {
    return join256(_mm256_set1_epi16(lo), _mm256_set1_epi16(hi));
}

/* Q4_K: 144-byte blocks: d, dmin (f16), 12 bytes of 6-bit scales and mins,
 * 128 code bytes (32 per 64 elements: low nibbles first).  The 8 scales
 * (bytes 0-7) and 8 mins (bytes 8-15) of the 12 packed bytes at q, as
 * sl_qd_k4_scale unpacks them. */
T_512 static inline __m128i q4_k_scales_mins(const uint8_t *q) {
    uint32_t a, b, c;
    memcpy(&a, q, 4);
    memcpy(&b, q + 4, 4);
    memcpy(&c, q + 8, 4);
    uint32_t sc_lo = a & 0x3f3f3f3fu, m_lo = b & 0x3f3f3f3fu;
    uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4;
    uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4;
    return _mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo);
}
T_512 static inline void q4_k_codes(const uint8_t *w, __m512i *c) {
    const __m512i shift = halves16(0, 4), m4 = _mm512_set1_epi8(15);
    for (int k = 0; k < 4; k++) {
        __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(w + 16 + 32 * k)));
        c[k] = _mm512_and_si512(_mm512_srlv_epi16(q, shift), m4);
    }
}

/* Q6_K: 210-byte blocks: ql[128] (low 4 bits), qh[64] (high 2 bits), 16
 * signed 8-bit scales (one per 16 elements), d (f16); value = code - 32. */
T_512 static inline void q6_k_codes(const uint8_t *w, __m512i *c) {
    const __m512i m4 = _mm512_set1_epi8(15), m3 = _mm512_set1_epi8(3);
    const __m512i sh_a = halves16(0, 2), sh_b = halves16(4, 6);   /* qh bits of each 32-element quarter */
    for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512((const void *)(w + 64 * h));
        __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(w + 128 + 32 * h)));
        __m512i ha = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(q, sh_a), m3), 4);
        __m512i hb = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(q, sh_b), m3), 4);
        c[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4), ha);
        c[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), hb);
    }
}

#endif
#endif
