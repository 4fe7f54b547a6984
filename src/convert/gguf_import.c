/*
 * gguf_import.c — llama.cpp GGUF file -> mlx-lm directory (--to mlx) or
 * transformers directory (--to hf), for every family of the architecture
 * table (src/model/arch.c).
 *
 * config.json is the one the engine reads from the same GGUF
 * (sl_arch_gguf_config: llama.cpp's keys, defaults and RoPE factor tensors)
 * plus architectures / torch_dtype.  Tensor names go back to Hugging Face's
 * through the table's map; Q/K rows that convert_hf_to_gguf permuted (llama)
 * are un-permuted; Gemma norms, stored as 1 + w, get the 1 taken off; RoPE
 * factor tensors are not weights (they are in config.json).
 *
 * --to mlx: Q4_0 / Q4_1 / Q8_0 matrices are repacked losslessly into MLX
 * affine (group 32, 4 or 8 bits, f16 scales and biases) exactly as MLX's own
 * GGUF loader does (ml-explore/mlx mlx/io/gguf_quants.cpp), with
 * "quantization" describing them; other types are dequantized to f16 (F32
 * stays F32).  --to hf: every matrix is dequantized to f16 (or --dtype),
 * F32/F16 kept.  Tokenizer files are not reconstructed from GGUF metadata.
 *
 * Invariants: repacking works row by row, so memory stays at one row plus
 * the writer's buffers; output directory built under a temporary name.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "convert/convert_impl.h"
#include "silica/gguf.h"

static int cmp_out(const void *a, const void *b) {
    return sl_arch_cmp_names(((const sl_out_tensor *)a)->name, ((const sl_out_tensor *)b)->name);
}

/* Integer-valued config.json keys (the rest are written as floats: 10000.0, 1e-05). */
static bool int_key(const char *k) {
    static const char *const keys[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                       "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
                                       "head_dim", "vocab_size", "bos_token_id", "eos_token_id", "sliding_window",
                                       "original_max_position_embeddings", "query_pre_attn_scalar", "sliding_window_pattern"};
    for (size_t i = 0; k && i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i])) return true;
    return false;
}

/* cJSON tree -> pyjson tree (numbers: ints for integer keys, else floats). */
static pj *from_cjson(const cJSON *v, const char *key) {
    pj *o = NULL;
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        bool obj = cJSON_IsObject(v);
        o = obj ? pj_new_obj() : pj_new_arr();
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            pj *x = from_cjson(e, obj ? e->string : key);
            if (!o || !x || (obj ? pj_set(o, e->string, x) : pj_push(o, x))) {
                pj_free(x);
                pj_free(o);
                return NULL;
            }
        }
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        o = int_key(key) && d == floor(d) && fabs(d) < 9e15 ? pj_new_int((long long)d) : pj_new_float(d);
    } else if (cJSON_IsString(v)) {
        o = pj_new_str(v->valuestring);
    } else if (cJSON_IsBool(v)) {
        o = pj_new_bool(cJSON_IsTrue(v));
    } else {
        o = pj_new_null();
    }
    return o;
}

/* config.json for a GGUF: the engine's reading of it + architectures / torch_dtype. */
static int make_config(const sl_checkpoint *ck, const sl_arch_info **arch, pj **out, sl_error *err) {
    cJSON *c = NULL;
    int rc = sl_arch_gguf_config(ck, arch, &c, err);
    if (rc) return rc;
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString((*arch)->hf_class));
    cJSON_AddItemToObject(c, "architectures", a);
    cJSON_AddStringToObject(c, "torch_dtype", "float16");
    *out = from_cjson(c, NULL);
    cJSON_Delete(c);
    return *out ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
}

static pj *qentry(int bits) {
    pj *e = pj_new_obj();
    if (e && (pj_set(e, "group_size", pj_new_int(32)) || pj_set(e, "bits", pj_new_int(bits)) ||
              pj_set(e, "mode", pj_new_str("affine")))) {
        pj_free(e);
        return NULL;
    }
    return e;
}

/* One GGUF tensor into the plan: repacked (mlx, Q4_0/Q4_1/Q8_0), copied or dequantized. */
static int plan_tensor(sl_plan *p, const sl_tensor *t, sl_out_tensor *ot, bool mlx, int *default_bits, pj **qconf,
                       sl_error *err) {
    const char *src = p->ck->path;
    uint64_t K = (uint64_t)t->shape[t->ndim - 1];
    const sl_convert_opts *o = p->o;
    int rc = 0;
    if (mlx && t->ndim == 2 && (t->dtype == SL_Q4_0 || t->dtype == SL_Q4_1 || t->dtype == SL_Q8_0) && K % 32 == 0) {
        int bits = t->dtype == SL_Q8_0 ? 8 : 4;
        char module[160], n2[176];
        snprintf(module, sizeof module, "%.*s", (int)(strlen(ot->name) - 7), ot->name);
        if (!*default_bits) {
            *default_bits = bits;
            if (!(*qconf = qentry(bits))) return sl_errorf(err, SL_ENOMEM, "out of memory");
        } else if (bits != *default_bits) {
            pj *e = qentry(bits);
            if (!e || pj_set(*qconf, module, e)) return sl_errorf(err, SL_ENOMEM, "out of memory");
        }
        ot->kind = SL_OUT_REPACK_W;
        ot->dtype = SL_U32;
        ot->shape[1] = (int64_t)(K * (uint64_t)bits / 32);
        if ((rc = sl_plan_add(p, ot, err))) return rc;
        ot->params = 0;
        ot->dtype = SL_F16;
        ot->shape[1] = (int64_t)(K / 32);
        snprintf(n2, sizeof n2, "%s.scales", module);
        ot->name = n2;
        ot->kind = SL_OUT_REPACK_S;
        if ((rc = sl_plan_add(p, ot, err))) return rc;
        snprintf(n2, sizeof n2, "%s.biases", module);
        ot->kind = SL_OUT_REPACK_B;
        return sl_plan_add(p, ot, err);
    }
    const sl_dtype_info *di = sl_dtype_get(t->dtype);
    bool fl = t->dtype == SL_F32 || t->dtype == SL_F16 || t->dtype == SL_BF16;
    if (!fl && !sl_q_gguf_can_dequantize(t->dtype))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': GGUF type %s cannot be converted", src, t->name,
                         sl_dtype_name(t->dtype));
    if (!mlx && o->dtype != SL_DTYPE_INVALID) ot->dtype = o->dtype;
    else if (t->dtype == SL_F32 || t->dtype == SL_F16) ot->dtype = t->dtype;
    else ot->dtype = SL_F16;   /* as MLX's loader: BF16 and k-quants become f16 */
    ot->kind = ot->permute_heads || ot->add != 0.0f || ot->dtype != t->dtype || di->is_quant ? SL_OUT_GGUF_Q : SL_OUT_COPY;
    return sl_plan_add(p, ot, err);
}

static bool rope_factor_tensor(const char *n) {
    return !strcmp(n, "rope_freqs.weight") || !strcmp(n, "rope_factors_long.weight") ||
           !strcmp(n, "rope_factors_short.weight");
}

static int gguf_to_dir(const char *src, const char *dst, bool mlx, const sl_convert_opts *o, sl_convert_stats *st,
                       sl_error *err) {
    if (o->q.enabled || (mlx && o->dequantize))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF -> %s keeps the GGUF's own quantization (no -q / -d)", src,
                         mlx ? "MLX" : "HF");
    if (sl_path_exists(dst) && !o->force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
    sl_checkpoint *ck = NULL;
    const sl_arch_info *arch = NULL;
    pj *cfg = NULL, *qconf = NULL;
    sl_plan p = {.o = o, .st = st};
    int rc = sl_checkpoint_open(src, &ck, err);
    if (!rc && ck->format != SL_FMT_GGUF)
        rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: --to %s needs a model directory or a GGUF file", src, mlx ? "mlx" : "hf");
    if (!rc) rc = make_config(ck, &arch, &cfg, err);
    if (!rc && !sl_checkpoint_find(ck, "token_embd.weight")) rc = sl_errorf(err, SL_EINVAL, "%s: GGUF has no token_embd.weight", src);
    uint32_t heads = (uint32_t)pj_int(pj_get(cfg, "num_attention_heads"), 0);
    uint32_t kv_heads = (uint32_t)pj_int(pj_get(cfg, "num_key_value_heads"), heads);
    p.ck = ck;
    int default_bits = 0;
    for (size_t i = 0; !rc && i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        char name[160];
        if (rope_factor_tensor(t->name)) continue;   /* RoPE settings, in config.json */
        if (!sl_arch_hf_name(arch, t->name, name, sizeof name)) {
            rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' has no Hugging Face name", src, t->name);
            break;
        }
        sl_out_tensor ot = {.name = name, .ndim = t->ndim, .src = t, .params = t->numel, .unpermute = true};
        memcpy(ot.shape, t->shape, sizeof ot.shape);
        if (arch->gguf_permute_qk && strstr(t->name, ".attn_q.")) ot.permute_heads = heads;
        if (arch->gguf_permute_qk && strstr(t->name, ".attn_k.")) ot.permute_heads = kv_heads;
        if (arch->gemma && sl_str_ends_with(t->name, "norm.weight")) ot.add = -1.0f;   /* stored as 1 + w */
        rc = plan_tensor(&p, t, &ot, mlx, &default_bits, &qconf, err);
    }
    if (!rc) {
        qsort(p.t, p.n, sizeof *p.t, cmp_out);
        rc = mlx ? sl_mlx_save(&p, cfg, &qconf, false, NULL, dst, err) : sl_hf_save(&p, cfg, NULL, dst, err);
    }
    if (st) {
        st->bytes_written = p.done;
        for (size_t i = 0; i < p.n; i++) st->params += p.t[i].params;
    }
    sl_plan_free(&p);
    pj_free(cfg);
    pj_free(qconf);
    sl_checkpoint_close(ck);
    return rc;
}

int sl_convert_gguf_to_mlx(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                           sl_error *err) {
    return gguf_to_dir(src, dst, true, o, st, err);
}

int sl_convert_gguf_to_hf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                          sl_error *err) {
    return gguf_to_dir(src, dst, false, o, st, err);
}
