/*
 * recipe.c — candidates made from the reference by the conversion library
 * (silica/compare.h sl_cmp_make_candidate): MLX recipes as
 * `silica quantize DIR DST --q-bits B` / `--quant-recipe R` / `--q-mode M`,
 * GGUF types as `silica convert SRC DST.gguf --to gguf --q-type T`.
 *
 * Invariant: the spec names exactly one conversion; the output is written
 * atomically by sl_convert_path (nothing partial on failure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/compare_impl.h"
#include "silica/convert.h"
#include "silica/io.h"

static const char *const k_mlx[] = {"q2", "q3", "q4", "q5", "q6", "q8", "mxfp4", "mxfp8", "nvfp4",
                                    "mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"};
static const char *const k_gguf[] = {"Q8_0", "Q6_K", "Q4_K", "Q4_1", "Q4_0", "F16", "F32"};
#define N_MLX (sizeof k_mlx / sizeof *k_mlx)
#define N_GGUF (sizeof k_gguf / sizeof *k_gguf)

bool sl_cmp_recipe_known(const char *spec, bool *gguf) {
    for (size_t k = 0; k < N_MLX; k++)
        if (strcmp(spec, k_mlx[k]) == 0) {
            if (gguf) *gguf = false;
            return true;
        }
    for (size_t k = 0; k < N_GGUF; k++)
        if (strcmp(spec, k_gguf[k]) == 0) {
            if (gguf) *gguf = true;
            return true;
        }
    return false;
}

const char *sl_cmp_recipes_supported(void) {
    return "q2, q3, q4, q5, q6, q8, mxfp4, mxfp8, nvfp4, mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6 (MLX); "
           "Q8_0, Q6_K, Q4_K, Q4_1, Q4_0, F16, F32 (GGUF)";
}

/* src's name without a trailing '/' or a .gguf extension. */
static void stem(const char *src, char *buf, size_t n) {
    size_t len = strlen(src);
    while (len > 1 && src[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && src[start - 1] != '/') start--;
    size_t k = len - start;
    if (k > 5 && strncmp(src + len - 5, ".gguf", 5) == 0) k -= 5;
    snprintf(buf, n, "%.*s", (int)k, src + start);
}

int sl_cmp_make_candidate(const char *src, const char *spec, const char *dir, char **out, double *bits_per_weight,
                          sl_error *err) {
    *out = NULL;
    bool gguf;
    if (!sl_cmp_recipe_known(spec, &gguf))
        return sl_errorf(err, SL_EINVAL, "unknown quantization '%s' (%s)", spec, sl_cmp_recipes_supported());
    bool src_dir = sl_path_is_dir(src);
    if (!gguf && !src_dir)
        return sl_errorf(err, SL_EINVAL, "%s: MLX quantization '%s' needs a model directory, not a file", src, spec);
    sl_convert_opts o = {0};
    o.dtype = SL_DTYPE_INVALID;
    o.q.gguf_type = SL_DTYPE_INVALID;
    if (gguf) {
        o.to = SL_FMT_GGUF;
        o.q.gguf_type = sl_dtype_from_name(spec);
        o.q.enabled = src_dir ? false : true;   /* GGUF -> GGUF is `silica quantize` */
    } else {
        o.to = SL_FMT_SAFETENSORS;
        o.layout = SL_LAYOUT_MLX;
        o.q.enabled = true;
        if (spec[0] == 'q') o.q.bits = spec[1] - '0';
        else if (strncmp(spec, "mixed", 5) == 0) o.q.recipe = spec;
        else o.q.mode = strcmp(spec, "mxfp4") == 0 ? SL_Q_MXFP4 : strcmp(spec, "mxfp8") == 0 ? SL_Q_MXFP8 : SL_Q_NVFP4;
    }
    char name[512];
    stem(src, name, sizeof name);
    char file[600];
    snprintf(file, sizeof file, "%s-%s%s", name, spec, gguf ? ".gguf" : "");
    char *dst = sl_path_join(dir, file);
    if (!dst) return sl_errorf(err, SL_ENOMEM, "out of memory");
    sl_convert_stats st;
    memset(&st, 0, sizeof st);
    int rc = sl_convert_path(src, dst, &o, &st, err);
    if (rc) {
        sl_error_prefix(err, "%s: ", spec);
        free(dst);
    } else {
        *out = dst;
        if (bits_per_weight) *bits_per_weight = st.bits_per_weight;
    }
    sl_convert_stats_free(&st);
    return rc;
}
