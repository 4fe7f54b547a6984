/*
 * quant_affine.c — MLX affine quantization: per group of 32/64/128 values a
 * scale s and bias b (stored in F32/F16/BF16) and 2..8-bit codes q, with
 * w ~= q*s + b, packed LSB-first into a little-endian uint32 bitstream.
 *
 * The arithmetic reproduces mlx/backend/cpu/quantized.cpp (variant CPU) and
 * the Metal kernel mlx/backend/metal/kernels/quantized.h (variant GPU) exactly,
 * in float32:
 *   n = 2^bits-1; mn,mx = min/max of the group (NaN skipped; GPU: max starts
 *   at 0, min at the dtype's max); s = max((mx-mn)/n, 1e-7);
 *   side = |mn| > |mx|; if !side s = -s; edge = side ? mn : mx;
 *   q0 = R(edge/s); if q0 != 0 { s = edge/q0; b = edge } else b = 0;
 *   q = clamp(R((w-b)/s), 0, n)      R = rint (CPU) or round (GPU)
 * Codes use the float32 s; the stored scale is s rounded to the scale dtype.
 * NaN codes are 0 (MLX's float->uint conversion of NaN on x86 and ARM).
 *
 * Invariants: a chunk is a whole number of groups; since group sizes are
 * multiples of 32, every group ends on a word boundary of the bitstream, so
 * chunks concatenate.  The hot loops (4-bit) are written so the compiler
 * vectorises them; rounding uses the 1.5*2^23 trick on values clamped to
 * [-1, n+1], which equals rint there.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/quant_impl.h"
#include "quant/quant_simd.h"

#define SL_Q_EPS 1e-7f

int sl_qi_check_n(const char *fn, size_t n, size_t unit, sl_error *err) {
    if (unit == 0 || n % unit != 0)
        return sl_errorf(err, SL_EINVAL, "%s: %zu elements is not a multiple of the group/block size %zu", fn,
                         n, unit);
    return 0;
}

const char *sl_q_mode_name(sl_q_mode m) {
    switch (m) {
    case SL_Q_AFFINE: return "affine";
    case SL_Q_MXFP4: return "mxfp4";
    case SL_Q_MXFP8: return "mxfp8";
    case SL_Q_NVFP4: return "nvfp4";
    }
    return "?";
}

int sl_q_mode_from_name(const char *name, sl_q_mode *out) {
    static const sl_q_mode all[] = {SL_Q_AFFINE, SL_Q_MXFP4, SL_Q_MXFP8, SL_Q_NVFP4};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, sl_q_mode_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return SL_EUNSUPPORTED;
}

int sl_q_check(sl_q_mode mode, int bits, int group_size, sl_error *err) {
    switch (mode) {
    case SL_Q_AFFINE:
        if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8)
            return sl_errorf(err, SL_EUNSUPPORTED, "affine quantization: %d bits is not supported (2, 3, 4, 5, 6 or 8)",
                             bits);
        if (group_size != 32 && group_size != 64 && group_size != 128)
            return sl_errorf(err, SL_EUNSUPPORTED,
                             "affine quantization: group size %d is not supported (32, 64 or 128)", group_size);
        return 0;
    case SL_Q_MXFP4:
    case SL_Q_MXFP8:
    case SL_Q_NVFP4: {
        int eb = mode == SL_Q_MXFP8 ? 8 : 4, eg = mode == SL_Q_NVFP4 ? 16 : 32;
        if (bits != eb || group_size != eg)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s quantization needs %d bits and group size %d, not %d bits / group %d",
                             sl_q_mode_name(mode), eb, eg, bits, group_size);
        return 0;
    }
    }
    return sl_errorf(err, SL_EUNSUPPORTED, "quantization mode %d is not supported (affine, mxfp4, mxfp8, nvfp4)",
                     (int)mode);
}

int sl_q_row_layout(sl_q_mode mode, int bits, int group_size, uint64_t k, uint64_t *words, uint64_t *groups,
                    sl_error *err) {
    int rc = sl_q_check(mode, bits, group_size, err);
    if (rc) return rc;
    if (k == 0 || k % (uint64_t)group_size != 0)
        return sl_errorf(err, SL_EINVAL, "row of %llu elements is not a positive multiple of the group size %d",
                         (unsigned long long)k, group_size);
    /* group sizes are multiples of 16 and bits*16 % 32 == 0 for even bits;
     * odd bits only occur with groups of >= 32, so this is exact */
    if (words) *words = k / 32 * (uint64_t)bits + (k % 32) * (uint64_t)bits / 32;
    if (groups) *groups = k / (uint64_t)group_size;
    return 0;
}

/* ---- bitstream -------------------------------------------------------- */

void sl_qi_pack(const uint8_t *codes, size_t n, int bits, uint32_t *words) {
    if (bits == 4) {
        for (size_t w = 0; w < n / 8; w++) {
            const uint8_t *c = codes + 8 * w;
            words[w] = (uint32_t)c[0] | (uint32_t)c[1] << 4 | (uint32_t)c[2] << 8 | (uint32_t)c[3] << 12 |
                       (uint32_t)c[4] << 16 | (uint32_t)c[5] << 20 | (uint32_t)c[6] << 24 | (uint32_t)c[7] << 28;
        }
        return;
    }
    if (bits == 8) {
        for (size_t w = 0; w < n / 4; w++) {
            const uint8_t *c = codes + 4 * w;
            words[w] = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
        }
        return;
    }
    uint64_t acc = 0;
    int have = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= (uint64_t)codes[i] << have;
        have += bits;
        if (have >= 32) {
            words[w++] = (uint32_t)acc;
            acc >>= 32;
            have -= 32;
        }
    }
}

void sl_qi_unpack(const uint32_t *words, size_t n, int bits, uint8_t *codes) {
    if (bits == 4) {
        for (size_t i = 0; i < n; i++) codes[i] = (uint8_t)((words[i / 8] >> (4 * (i % 8))) & 15u);
        return;
    }
    if (bits == 8) {
        for (size_t i = 0; i < n; i++) codes[i] = (uint8_t)(words[i / 4] >> (8 * (i % 4)));
        return;
    }
    uint64_t acc = 0, mask = (1u << bits) - 1;
    int have = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (have < bits) {
            acc |= (uint64_t)words[w++] << have;
            have += 32;
        }
        codes[i] = (uint8_t)(acc & mask);
        acc >>= bits;
        have -= bits;
    }
}

static int check_bits_n(const char *fn, size_t n, int bits, sl_error *err) {
    if (bits < 1 || bits > 8)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: %d bits per code is not supported (1..8)", fn, bits);
    if ((n * (size_t)bits) % 32 != 0)
        return sl_errorf(err, SL_EINVAL, "%s: %zu codes of %d bits do not fill whole uint32 words", fn, n, bits);
    return 0;
}

int sl_q_pack(const uint8_t *codes, size_t n, int bits, uint32_t *words, sl_error *err) {
    int rc = check_bits_n("sl_q_pack", n, bits, err);
    if (rc) return rc;
    if (n && (!codes || !words)) return sl_errorf(err, SL_EINVAL, "sl_q_pack: NULL buffer");
    for (size_t i = 0; i < n; i++)
        if (codes[i] >> bits)
            return sl_errorf(err, SL_EINVAL, "sl_q_pack: code %u at index %zu does not fit in %d bits", codes[i], i,
                             bits);
    sl_qi_pack(codes, n, bits, words);
    return 0;
}

int sl_q_unpack(const uint32_t *words, size_t n, int bits, uint8_t *codes, sl_error *err) {
    int rc = check_bits_n("sl_q_unpack", n, bits, err);
    if (rc) return rc;
    if (n && (!codes || !words)) return sl_errorf(err, SL_EINVAL, "sl_q_unpack: NULL buffer");
    sl_qi_unpack(words, n, bits, codes);
    return 0;
}

/* ---- quantize ------------------------------------------------------- */

static float dtype_max(sl_dtype t) {
    if (t == SL_F16) return 65504.0f;
    if (t == SL_BF16) return sl_bf16_to_f32(0x7f7f);
    return FLT_MAX;
}

/* rint for |t| small: exact round-half-even under the default FP mode */
static inline float rint_small(float t) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float r = t + magic;
    return r - magic;
}

/* One group (x already float32): codes + float32 scale and bias. */
static void affine_group(const float *x, int gs, int bits, sl_q_variant v, float tmax, int avx2, uint8_t *codes,
                         float *s_out, float *b_out) {
    const float n = (float)((1 << bits) - 1);
    float mn, mx;
    if (v == SL_Q_VARIANT_GPU) {
        mn = tmax;
        mx = 0.0f;
    } else {
        mn = INFINITY;
        mx = -INFINITY;
    }
#if defined(SL_QI_X86)
    if (avx2)
        sl_qi_avx2_minmax(x, gs, &mn, &mx);
    else
#endif
        for (int i = 0; i < gs; i++) {
            float w = x[i];
            mn = w < mn ? w : mn;
            mx = w > mx ? w : mx;
        }
    float s = (mx - mn) / n;
    s = s < SL_Q_EPS ? SL_Q_EPS : s;
    int side = fabsf(mn) > fabsf(mx);
    if (!side) s = -s;
    float edge = side ? mn : mx;
    float q0 = v == SL_Q_VARIANT_GPU ? roundf(edge / s) : rintf(edge / s);
    float b = 0.0f;
    if (q0 != 0.0f) {
        s = edge / q0;
        b = edge;
    }
    const float hi = n + 1.0f;
    if (v == SL_Q_VARIANT_GPU) {
        for (int i = 0; i < gs; i++) {
            float t = (x[i] - b) / s;
            t = t > -1.0f ? t : -1.0f; /* NaN -> -1 -> code 0 */
            t = t < hi ? t : hi;
            float r = roundf(t);
            r = r < 0.0f ? 0.0f : r;
            r = r > n ? n : r;
            codes[i] = (uint8_t)(int)r;
        }
    } else {
#if defined(SL_QI_X86)
        if (avx2) {
            sl_qi_avx2_codes(x, gs, s, b, n, codes);
            goto done;
        }
#endif
        for (int i = 0; i < gs; i++) {
            float t = (x[i] - b) / s;
            t = t > -1.0f ? t : -1.0f;
            t = t < hi ? t : hi;
            float r = rint_small(t);
            r = r < 0.0f ? 0.0f : r;
            r = r > n ? n : r;
            codes[i] = (uint8_t)(int)r;
        }
    }
#if defined(SL_QI_X86)
done:
#endif
    *s_out = s;
    *b_out = b;
}

static void load_group(const void *src, sl_dtype t, size_t off, int gs, float *x) {
    if (t == SL_F32)
        memcpy(x, (const char *)src + 4 * off, (size_t)gs * 4);
    else if (t == SL_F16)
        sl_f16_to_f32_n((const uint16_t *)src + off, x, (size_t)gs);
    else
        sl_bf16_to_f32_n((const uint16_t *)src + off, x, (size_t)gs);
}

int sl_q_affine_quantize(const void *src, sl_dtype src_type, size_t n, int bits, int group_size,
                         sl_dtype scale_type, sl_q_variant variant, uint32_t *wq, void *scales, void *biases,
                         sl_error *err) {
    int rc = sl_q_check(SL_Q_AFFINE, bits, group_size, err);
    if (rc) return rc;
    if (!sl_qi_is_float3(src_type))
        return sl_errorf(err, SL_EUNSUPPORTED, "affine quantization: input dtype %s is not supported (F32, F16, BF16)",
                         sl_dtype_name(src_type));
    if (!sl_qi_is_float3(scale_type))
        return sl_errorf(err, SL_EUNSUPPORTED, "affine quantization: scale dtype %s is not supported (F32, F16, BF16)",
                         sl_dtype_name(scale_type));
    if (variant != SL_Q_VARIANT_CPU && variant != SL_Q_VARIANT_GPU)
        return sl_errorf(err, SL_EUNSUPPORTED, "affine quantization: variant %d is not supported (cpu, gpu)",
                         (int)variant);
    if ((rc = sl_qi_check_n("affine quantization", n, (size_t)group_size, err))) return rc;
    if (n && (!src || !wq || !scales || !biases))
        return sl_errorf(err, SL_EINVAL, "affine quantization: NULL buffer");
    float x[128];
    uint8_t codes[128];
    const float tmax = dtype_max(src_type);
    const size_t words_per_group = (size_t)group_size * (size_t)bits / 32;
    const int avx2 = sl_qi_use_avx2();
    (void)avx2; /* only the x86 build has AVX2 kernels */
    for (size_t g = 0; g < n / (size_t)group_size; g++) {
        float s, b;
        load_group(src, src_type, g * (size_t)group_size, group_size, x);
        affine_group(x, group_size, bits, variant, tmax, avx2, codes, &s, &b);
        sl_qi_pack(codes, (size_t)group_size, bits, wq + g * words_per_group);
        sl_qi_store(scales, scale_type, g, s);
        sl_qi_store(biases, scale_type, g, b);
    }
    return 0;
}

/* ---- dequantize ------------------------------------------------------ */

int sl_q_affine_dequantize(const uint32_t *wq, const void *scales, const void *biases, sl_dtype scale_type,
                           size_t n, int bits, int group_size, sl_dtype out_type, void *out, sl_error *err) {
    int rc = sl_q_check(SL_Q_AFFINE, bits, group_size, err);
    if (rc) return rc;
    if (!sl_qi_is_float3(scale_type))
        return sl_errorf(err, SL_EUNSUPPORTED, "affine dequantization: scale dtype %s is not supported (F32, F16, BF16)",
                         sl_dtype_name(scale_type));
    if (out_type != SL_F32 && out_type != scale_type)
        return sl_errorf(err, SL_EUNSUPPORTED,
                         "affine dequantization: output dtype %s is not supported (F32 or the scale dtype %s)",
                         sl_dtype_name(out_type), sl_dtype_name(scale_type));
    if ((rc = sl_qi_check_n("affine dequantization", n, (size_t)group_size, err))) return rc;
    if (n && (!wq || !scales || !biases || !out))
        return sl_errorf(err, SL_EINVAL, "affine dequantization: NULL buffer");
    const size_t gs = (size_t)group_size, wpg = gs * (size_t)bits / 32;
    const int avx2 = sl_qi_use_avx2();
    (void)avx2; /* only the x86 build has AVX2 kernels */
    uint8_t codes[128];
    float y[128];
    for (size_t g = 0; g < n / gs; g++) {
        const float s = sl_qi_load(scales, scale_type, g), b = sl_qi_load(biases, scale_type, g);
        const uint32_t *w = wq + g * wpg;
        if (out_type == SL_F32) {
            float *o = (float *)out + g * gs;
#if defined(SL_QI_X86)
            if (avx2 && bits == 4) {
                sl_qi_avx2_dq4_f32(w, wpg, s, b, o);
                continue;
            }
            if (avx2 && bits == 8) {
                sl_qi_avx2_dq8_f32(w, wpg, s, b, o);
                continue;
            }
#endif
            if (bits == 4) {
                for (size_t i = 0; i < gs; i++) {
                    float t = (float)((w[i / 8] >> (4 * (i % 8))) & 15u) * s;
                    o[i] = t + b;
                }
                continue;
            }
            sl_qi_unpack(w, gs, bits, codes);
            for (size_t i = 0; i < gs; i++) {
                float t = (float)codes[i] * s;
                o[i] = t + b;
            }
        } else if (isfinite(s) && isfinite(b)) {
            /* MLX CPU: (T)((T)(q*s) + b); finite s and b give no NaN, so the
             * vector converters (plain RNE) produce MLX's bits */
            uint16_t *o = (uint16_t *)out + g * gs;
            sl_qi_unpack(w, gs, bits, codes);
            for (size_t i = 0; i < gs; i++) y[i] = (float)codes[i] * s;
            if (out_type == SL_F16) {
                sl_f32_to_f16_n(y, o, gs);
                sl_f16_to_f32_n(o, y, gs);
            } else {
                sl_f32_to_bf16_n(y, o, gs);
                sl_bf16_to_f32_n(o, y, gs);
            }
            for (size_t i = 0; i < gs; i++) y[i] = y[i] + b;
            if (out_type == SL_F16)
                sl_f32_to_f16_n(y, o, gs);
            else
                sl_f32_to_bf16_n(y, o, gs);
        } else {
            sl_qi_unpack(w, gs, bits, codes);
            for (size_t i = 0; i < gs; i++) {
                float t = sl_qi_round_to(out_type, (float)codes[i] * s);
                sl_qi_store(out, out_type, g * gs + i, t + b);
            }
        }
    }
    return 0;
}
