/*
 * model_q.c — quantized weights (MLX, GGUF blocks) for sl_model_open.
 *
 *  - MLX (mlx-lm directories): a module `P` is quantized when `P.weight` is
 *    uint32 and `P.scales` exists; bits / group size / mode come from
 *    config.json "quantization" (or "quantization_config"), with per-module
 *    overrides keyed by `P` (mlx-lm's rule: mode defaults to affine, a null
 *    group_size means 64).  Affine needs `P.biases` with the scales' dtype
 *    (F32/F16/BF16); mxfp4/mxfp8/nvfp4 have uint8 scales and no biases.
 *  - GGUF: blocks of any type the matmul kernels take, bound in place (the
 *    GGUF's config and tensor names come from the architecture table,
 *    arch_gguf.c / arch.c).
 * Invariants: every quantized weight is checked (shapes of codes, scales,
 * biases against the config, dtypes, contiguity) before it is bound as a
 * view; nothing is dequantized here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/model_impl.h"
#include "silica/quant.h"

/* ---- MLX ---- */

static const cJSON *qfield(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int qparams(const sl_model *m, const char *module, int *bits, int *gs, sl_q_mode *mode, sl_error *err) {
    const cJSON *cfg = m->ck->config;
    const cJSON *qc = cfg ? qfield(cfg, "quantization") : NULL;
    if (!qc && cfg) qc = qfield(cfg, "quantization_config");
    if (!cJSON_IsObject(qc))
        return sl_errorf(err, SL_EINVAL, "%s: '%s.weight' is quantized (it has '%s.scales'), but config.json has no "
                         "\"quantization\" object", m->ck->path, module, module);
    const cJSON *e = qfield(qc, module);
    const cJSON *base = cJSON_IsObject(e) ? e : qc;
    const cJSON *b = qfield(base, "bits");
    if (!b) b = qfield(qc, "bits");
    const cJSON *g = qfield(base, "group_size");
    if (!g && base != qc && !cJSON_GetObjectItemCaseSensitive(base, "group_size")) g = qfield(qc, "group_size");
    const cJSON *md = qfield(base, "mode");
    if (!md) md = qfield(qc, "mode");
    if ((b && !cJSON_IsNumber(b)) || (g && !cJSON_IsNumber(g)) || (md && !cJSON_IsString(md)))
        return sl_errorf(err, SL_EINVAL, "%s: config.json \"quantization\" for '%s': bits and group_size must be "
                         "integers, mode a string", m->ck->path, module);
    *bits = b ? b->valueint : 4;
    *gs = g ? g->valueint : 64;
    *mode = SL_Q_AFFINE;
    if (md && sl_q_mode_from_name(md->valuestring, mode))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: '%s': unknown quantization mode '%s' (affine, mxfp4, mxfp8, nvfp4)",
                         m->ck->path, module, md->valuestring);
    sl_error e2;
    if (sl_q_check(*mode, *bits, *gs, &e2))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: '%s': %s", m->ck->path, module, e2.msg);
    return 0;
}

static int check_view(const sl_model *m, const sl_tensor *t, sl_error *err) {
    if (!t->contiguous || t->big_endian)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s; the engine needs contiguous little-endian weights",
                         m->ck->path, t->name, t->big_endian ? "big-endian" : "strided");
    return 0;
}

int sl_model_bind_mlx(sl_model *m, const sl_tensor *t, int64_t rows, int64_t cols, const char *why, sl_weight *w,
                      sl_error *err) {
    char module[256], sn[300], bn[300];
    size_t len = strlen(t->name);
    if (len < 8 || len >= sizeof module + 7 || strcmp(t->name + len - 7, ".weight") != 0)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' is uint32 but not a quantized '.weight'", m->ck->path, t->name);
    memcpy(module, t->name, len - 7);
    module[len - 7] = 0;
    snprintf(sn, sizeof sn, "%s.scales", module);
    snprintf(bn, sizeof bn, "%s.biases", module);
    const sl_tensor *s = sl_checkpoint_find(m->ck, sn), *b = sl_checkpoint_find(m->ck, bn);
    if (!s)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' is uint32 but '%s' is missing (not an MLX-quantized weight)",
                         m->ck->path, t->name, sn);
    int bits = 0, gs = 0, rc;
    sl_q_mode mode = SL_Q_AFFINE;
    if ((rc = qparams(m, module, &bits, &gs, &mode, err))) return rc;
    if (cols % gs)
        return sl_errorf(err, SL_EINVAL, "%s: '%s': %lld columns are not a multiple of group_size %d", m->ck->path,
                         module, (long long)cols, gs);
    int64_t words = cols * bits / 32, groups = cols / gs;
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != words)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must be [%lld, %lld] uint32 for a [%lld, %lld] matrix (%s) "
                         "at %d bits", m->ck->path, t->name, (long long)rows, (long long)words, (long long)rows,
                         (long long)cols, why, bits);
    if (s->ndim != 2 || s->shape[0] != rows || s->shape[1] != groups)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must be [%lld, %lld] (group_size %d)", m->ck->path, sn,
                         (long long)rows, (long long)groups, gs);
    if (mode == SL_Q_AFFINE) {
        if (!b) return sl_errorf(err, SL_EINVAL, "%s: affine-quantized '%s' has no '%s'", m->ck->path, module, bn);
        if (s->dtype != SL_F32 && s->dtype != SL_F16 && s->dtype != SL_BF16)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s, expected F32, F16 or BF16", m->ck->path, sn,
                             sl_dtype_name(s->dtype));
        if (b->dtype != s->dtype || b->ndim != 2 || b->shape[0] != rows || b->shape[1] != groups)
            return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must match '%s' in shape and dtype", m->ck->path, bn, sn);
        if ((rc = check_view(m, b, err))) return rc;
    } else {
        if (b) return sl_errorf(err, SL_EINVAL, "%s: %s-quantized '%s' must not have '%s'", m->ck->path,
                                sl_q_mode_name(mode), module, bn);
        if (s->dtype != SL_U8 && s->dtype != SL_F8_E8M0 && s->dtype != SL_F8_E4M3)
            return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s, expected uint8 %s scales", m->ck->path, sn,
                             sl_dtype_name(s->dtype), sl_q_mode_name(mode));
    }
    if ((rc = check_view(m, t, err)) || (rc = check_view(m, s, err))) return rc;
    memset(w, 0, sizeof *w);
    w->fmt = mode == SL_Q_AFFINE ? SL_WF_MLX_AFFINE : SL_WF_MLX_FP;
    w->dtype = SL_U32;
    w->rows = rows;
    w->cols = cols;
    w->data = t->data;
    w->row_bytes = (size_t)words * 4;
    w->scales = s->data;
    w->biases = b && mode == SL_Q_AFFINE ? b->data : NULL;
    w->scale_dtype = mode == SL_Q_AFFINE ? s->dtype : SL_U8;
    w->bits = bits;
    w->group_size = gs;
    w->qmode = (int)mode;
    w->name = t->name;
    m->weight_bytes += t->nbytes + s->nbytes + (w->biases ? b->nbytes : 0);
    return 0;
}

int sl_model_bind_gguf(sl_model *m, const sl_tensor *t, int64_t rows, int64_t cols, const char *why, sl_weight *w,
                       sl_error *err) {
    const sl_dtype_info *di = sl_dtype_get(t->dtype);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return sl_errorf(err, SL_EINVAL, "%s: tensor '%s' must be [%lld, %lld] (%s)", m->ck->path, t->name,
                         (long long)rows, (long long)cols, why);
    memset(w, 0, sizeof *w);
    w->fmt = SL_WF_GGUF;
    w->dtype = t->dtype;
    w->rows = rows;
    w->cols = cols;
    if (!di || cols % di->block_elems || !sl_matmul_for(w))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' is %s; the engine multiplies F32, F16, BF16, Q4_0, Q4_1, "
                         "Q5_0, Q5_1, Q8_0, Q2_K..Q6_K and IQ4_NL", m->ck->path, t->name, sl_dtype_name(t->dtype));
    int rc = check_view(m, t, err);
    if (rc) return rc;
    w->data = t->data;
    w->row_bytes = (size_t)(cols / di->block_elems) * di->block_bytes;
    w->name = t->name;
    m->weight_bytes += t->nbytes;
    return 0;
}
