/*
 * quant_tool.c — test tool: drives the quantization library (silica/quant.h)
 * on raw little-endian bytes from stdin, writing raw bytes to stdout, so
 * tests/py/test_quant.py can compare with mlx and gguf-py byte for byte.
 *
 *   quant_tool affine-q SRC_DT BITS GS SCALE_DT cpu|gpu  < w       > wq|scales|biases
 *   quant_tool affine-dq BITS GS SCALE_DT OUT_DT N       < wq|s|b  > w
 *   quant_tool fp-q MODE SRC_DT [GLOBAL_SCALE]           < w       > wq|scales
 *   quant_tool fp-dq MODE OUT_DT N [GLOBAL_SCALE]        < wq|s    > w
 *   quant_tool gguf-q TYPE                               < f32     > blocks
 *   quant_tool gguf-dq TYPE                              < blocks  > f32
 *   quant_tool gguf2affine TYPE                          < blocks  > wq|scales|biases (F16)
 *   quant_tool affine2q41 GS SCALE_DT N                  < wq|s|b  > Q4_1 blocks; stderr: inexact=K
 *   quant_tool pack BITS / unpack BITS N                 codes (u8) <-> words (u32)
 *   quant_tool stats                                     < ref f32|approx f32 > "rmse max_abs rel"
 * Exit 2 with one stderr line (the library's message) on bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/quant.h"

static unsigned char *read_all(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            unsigned char *p = realloc(b, cap * 2);
            if (!p) break;
            b = p;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, stdin);
        if (got == 0) {
            *len = n;
            return b;
        }
        n += got;
    }
    free(b);
    return NULL;
}

static int die(const char *msg) {
    fprintf(stderr, "quant_tool: %s\n", msg);
    return 2;
}

static sl_dtype dt(const char *s) { return sl_dtype_from_name(s); }
static size_t dsz(sl_dtype t) {
    size_t z = sl_dtype_size(t);
    return z ? z : 1;
}

static int emit(const void *p, size_t n) { return fwrite(p, 1, n, stdout) == n ? 0 : 2; }

int main(int argc, char **argv) {
    if (argc < 2) return die("usage: quant_tool CMD ARGS < in > out (see quant_tool.c)");
    const char *cmd = argv[1];
    size_t len = 0;
    unsigned char *in = read_all(&len);
    if (!in) return die("out of memory reading stdin");
    sl_error err = {0};
    int rc = 0;
    unsigned char *out = NULL;
    size_t outlen = 0;

    if (strcmp(cmd, "affine-q") == 0 && argc == 7) {
        sl_dtype st = dt(argv[2]), sc = dt(argv[5]);
        int bits = atoi(argv[3]), gs = atoi(argv[4]);
        sl_q_variant v = strcmp(argv[6], "gpu") == 0 ? SL_Q_VARIANT_GPU : SL_Q_VARIANT_CPU;
        size_t n = len / dsz(st), gsz = gs > 0 ? (size_t)gs : 1;
        size_t wbytes = n * (size_t)(bits > 0 ? bits : 1) / 8, sbytes = n / gsz * dsz(sc);
        outlen = wbytes + 2 * sbytes;
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_affine_quantize(in, st, n, bits, gs, sc, v, (uint32_t *)(void *)out, out + wbytes,
                                        out + wbytes + sbytes, &err)
                 : SL_ENOMEM;
    } else if (strcmp(cmd, "affine-dq") == 0 && argc == 7) {
        int bits = atoi(argv[2]), gs = atoi(argv[3]);
        sl_dtype sc = dt(argv[4]), ot = dt(argv[5]);
        size_t n = strtoull(argv[6], NULL, 10), gsz = gs > 0 ? (size_t)gs : 1;
        size_t wbytes = n * (size_t)(bits > 0 ? bits : 1) / 8, sbytes = n / gsz * dsz(sc);
        if (len != wbytes + 2 * sbytes) { free(in); return die("affine-dq: stdin size does not match N"); }
        outlen = n * dsz(ot);
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_affine_dequantize((const uint32_t *)(const void *)in, in + wbytes, in + wbytes + sbytes, sc,
                                          n, bits, gs, ot, out, &err)
                 : SL_ENOMEM;
    } else if (strcmp(cmd, "fp-q") == 0 && (argc == 4 || argc == 5)) {
        sl_q_mode m = SL_Q_AFFINE;
        if (sl_q_mode_from_name(argv[2], &m)) { free(in); return die("fp-q: unknown mode"); }
        sl_dtype st = dt(argv[3]);
        float g = argc == 5 ? strtof(argv[4], NULL) : 0.0f;
        size_t n = len / dsz(st), gsz = m == SL_Q_NVFP4 ? 16 : 32, bits = m == SL_Q_MXFP8 ? 8 : 4;
        size_t wbytes = n * bits / 8;
        outlen = wbytes + n / gsz;
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_fp_quantize(m, in, st, n, argc == 5 ? &g : NULL, (uint32_t *)(void *)out, out + wbytes, &err)
                 : SL_ENOMEM;
    } else if (strcmp(cmd, "fp-dq") == 0 && (argc == 5 || argc == 6)) {
        sl_q_mode m = SL_Q_AFFINE;
        if (sl_q_mode_from_name(argv[2], &m)) { free(in); return die("fp-dq: unknown mode"); }
        sl_dtype ot = dt(argv[3]);
        size_t n = strtoull(argv[4], NULL, 10);
        float g = argc == 6 ? strtof(argv[5], NULL) : 0.0f;
        size_t gsz = m == SL_Q_NVFP4 ? 16 : 32, bits = m == SL_Q_MXFP8 ? 8 : 4, wbytes = n * bits / 8;
        if (len != wbytes + n / gsz) { free(in); return die("fp-dq: stdin size does not match N"); }
        outlen = n * dsz(ot);
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_fp_dequantize(m, (const uint32_t *)(const void *)in, in + wbytes, n,
                                      argc == 6 ? &g : NULL, ot, out, &err)
                 : SL_ENOMEM;
    } else if (strcmp(cmd, "gguf-q") == 0 && argc == 3) {
        sl_dtype t = dt(argv[2]);
        const sl_dtype_info *inf = sl_dtype_get(t);
        size_t n = len / 4;
        outlen = inf ? n / inf->block_elems * inf->block_bytes : 0;
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_gguf_quantize(t, (const float *)(const void *)in, n, out, &err) : SL_ENOMEM;
    } else if (strcmp(cmd, "gguf-dq") == 0 && argc == 3) {
        sl_dtype t = dt(argv[2]);
        const sl_dtype_info *inf = sl_dtype_get(t);
        size_t n = inf && inf->block_bytes ? len / inf->block_bytes * inf->block_elems : 0;
        if (inf && len % inf->block_bytes) { free(in); return die("gguf-dq: stdin is not a whole number of blocks"); }
        outlen = n * 4;
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_gguf_dequantize(t, in, n, (float *)(void *)out, &err) : SL_ENOMEM;
    } else if (strcmp(cmd, "gguf2affine") == 0 && argc == 3) {
        sl_dtype t = dt(argv[2]);
        const sl_dtype_info *inf = sl_dtype_get(t);
        size_t n = inf && inf->block_bytes ? len / inf->block_bytes * inf->block_elems : 0;
        size_t bits = t == SL_Q8_0 ? 8 : 4, wbytes = n * bits / 8, sbytes = n / 32 * 2;
        outlen = wbytes + 2 * sbytes;
        out = calloc(1, outlen + 4);
        int b = 0;
        uint64_t ovf = 0;
        rc = out ? sl_q_gguf_to_affine(t, in, n, (uint32_t *)(void *)out, (uint16_t *)(void *)(out + wbytes),
                                       (uint16_t *)(void *)(out + wbytes + sbytes), &b, &ovf, &err)
                 : SL_ENOMEM;
        if (!rc) fprintf(stderr, "bits=%d overflow=%llu\n", b, (unsigned long long)ovf);
    } else if (strcmp(cmd, "affine2q41") == 0 && argc == 5) {
        int gs = atoi(argv[2]);
        sl_dtype sc = dt(argv[3]);
        size_t n = strtoull(argv[4], NULL, 10), gsz = gs > 0 ? (size_t)gs : 1;
        size_t wbytes = n / 2, sbytes = n / gsz * dsz(sc);
        if (len != wbytes + 2 * sbytes) { free(in); return die("affine2q41: stdin size does not match N"); }
        outlen = n / 32 * 20;
        out = calloc(1, outlen + 4);
        uint64_t inexact = 0;
        rc = out ? sl_q_affine_to_q4_1((const uint32_t *)(const void *)in, in + wbytes, in + wbytes + sbytes, sc, n,
                                       gs, out, &inexact, &err)
                 : SL_ENOMEM;
        if (!rc) fprintf(stderr, "inexact=%llu\n", (unsigned long long)inexact);
    } else if (strcmp(cmd, "pack") == 0 && argc == 3) {
        int bits = atoi(argv[2]);
        outlen = len * (size_t)(bits > 0 ? bits : 1) / 8;
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_pack(in, len, bits, (uint32_t *)(void *)out, &err) : SL_ENOMEM;
    } else if (strcmp(cmd, "unpack") == 0 && argc == 4) {
        int bits = atoi(argv[2]);
        size_t n = strtoull(argv[3], NULL, 10);
        if (len * 8 != n * (size_t)(bits > 0 ? bits : 1)) { free(in); return die("unpack: stdin size does not match N"); }
        outlen = n;
        out = calloc(1, outlen + 4);
        rc = out ? sl_q_unpack((const uint32_t *)(const void *)in, n, bits, out, &err) : SL_ENOMEM;
    } else if (strcmp(cmd, "stats") == 0 && argc == 2) {
        size_t n = len / 8;
        sl_q_stats s = {0};
        sl_q_error_stats(&s, (const float *)(const void *)in, (const float *)(const void *)in + n, n);
        printf("%.17g %.17g %.17g\n", sl_q_stats_rmse(&s), s.max_abs, sl_q_stats_rel(&s));
    } else {
        free(in);
        return die("unknown command or wrong argument count (see quant_tool.c)");
    }
    free(in);
    if (rc) {
        free(out);
        fprintf(stderr, "quant_tool: %s\n", err.msg[0] ? err.msg : "failed");
        return 2;
    }
    if (out && emit(out, outlen)) rc = 2;
    free(out);
    return rc;
}
