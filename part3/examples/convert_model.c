/*
 * convert_model.c — part 3's example: convert a Hugging Face model directory
 * with libsilica's convert API, the way `silica convert` does.
 *
 *   convert_model SRC DST mlx [BITS]   HF/mlx-lm dir -> mlx-lm dir (BITS: quantize, affine g64)
 *   convert_model SRC DST hf           mlx-lm/HF dir -> transformers safetensors dir
 *   convert_model SRC DST.gguf gguf    HF/mlx-lm dir -> llama.cpp GGUF (F16; MLX 4-bit -> Q4_1)
 *
 * Prints a progress line per tensor, then the summary; with BITS, the
 * per-tensor quantization error (sl_convert_opts.report).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"
#include "silica/convert.h"

static void progress(void *ctx, uint64_t done, uint64_t total, const char *what) {
    const char **last = ctx;
    if (*last && !strcmp(*last, what)) return; /* one line per tensor */
    *last = what;
    fprintf(stderr, "  %5.1f%%  %s\n", total ? 100.0 * (double)done / (double)total : 100.0, what);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s SRC DST mlx|hf|gguf [BITS]\n", argv[0]);
        return 2;
    }
    sl_convert_opts o = {.dtype = SL_DTYPE_INVALID, .force = true};
    o.q.gguf_type = SL_DTYPE_INVALID;
    if (!strcmp(argv[3], "mlx")) {
        o.to = SL_FMT_SAFETENSORS;
        o.layout = SL_LAYOUT_MLX;
        if (argc > 4) {
            o.q.enabled = true;          /* mlx_lm.convert -q --q-bits BITS */
            o.q.mode = SL_Q_AFFINE;
            o.q.bits = atoi(argv[4]);
            o.q.group_size = 64;
            o.report = true;
        }
    } else if (!strcmp(argv[3], "hf")) {
        o.to = SL_FMT_SAFETENSORS;
        o.layout = SL_LAYOUT_HF;         /* dequantizes MLX weights */
    } else if (!strcmp(argv[3], "gguf")) {
        o.to = SL_FMT_GGUF;
    } else {
        fprintf(stderr, "unknown target '%s'\n", argv[3]);
        return 2;
    }
    const char *last = NULL;
    o.progress = progress;
    o.progress_ctx = &last;
    sl_error err = {0};
    sl_convert_stats st;
    if (sl_convert_path(argv[1], argv[2], &o, &st, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 2;
    }
    printf("%s: %llu tensors in %u file(s), %llu parameters\n", argv[2], (unsigned long long)st.tensors,
           st.files_written, (unsigned long long)st.params);
    if (o.q.enabled) {
        for (size_t i = 0; i < st.n_report; i++) {
            const sl_tensor_report *r = &st.report[i];
            if (r->bits) printf("  %-40s %d-bit  rmse %.3g  max %.3g\n", r->name, r->bits, r->rmse, r->max_abs);
            else printf("  %-40s %s\n", r->name, r->status);
        }
        printf("bits per weight: %.3f\n", st.bits_per_weight);
    }
    sl_convert_stats_free(&st);
    return 0;
}
