/*
 * gguf_import.c — llama.cpp GGUF file -> mlx-lm directory.
 *
 * Q4_0 / Q4_1 / Q8_0 matrices are repacked losslessly into MLX affine
 * (group 32, 4 or 8 bits, f16 scales and biases) exactly as MLX's own GGUF
 * loader does (ml-explore/mlx mlx/io/gguf_quants.cpp); other types are dequantized to f16
 * (F32 stays F32).  Tensor names go back to Hugging Face's, llama's Q/K rows
 * are un-permuted (adjacent pairs -> rotate-half), and config.json is
 * synthesized from the <arch>.* keys with "quantization" describing the
 * repacked layers.  Tokenizer files are not reconstructed from GGUF metadata.
 *
 * Invariants: repacking works row by row, so memory stays at one row plus
 * the writer's buffers; output directory built under a temporary name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert_impl.h"
#include "silica/gguf.h"

static int cmp_out(const void *a, const void *b) {
    return sl_arch_cmp_names(((const sl_out_tensor *)a)->name, ((const sl_out_tensor *)b)->name);
}

/* f32 metadata -> the shortest decimal that reads back as that f32 (1e-05, not 9.99999974e-06) */
static double f32_to_decimal(float f) {
    char b[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)f);
        if (strtof(b, NULL) == f) break;
    }
    return strtod(b, NULL);
}

static int set_u32(pj *c, const sl_gguf *g, const char *arch, const char *key, const char *cfg_key, bool required,
                   const char *path, sl_error *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    uint32_t v;
    if (sl_gguf_find(g, k) < 0) {
        if (required) return sl_errorf(err, SL_EINVAL, "%s: GGUF metadata has no '%s'", path, k);
        return 0;
    }
    int rc = sl_gguf_get_u32(g, k, &v, err);
    if (rc) return rc;
    return pj_set(c, cfg_key, pj_new_int(v)) ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
}

static int set_f32(pj *c, const sl_gguf *g, const char *arch, const char *key, const char *cfg_key, double dflt,
                   sl_error *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    float v = (float)dflt;
    if (sl_gguf_find(g, k) >= 0) {
        int rc = sl_gguf_get_f32(g, k, &v, err);
        if (rc) return rc;
    }
    return pj_set(c, cfg_key, pj_new_float(f32_to_decimal(v))) ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
}

static int make_config(const sl_gguf *g, const char *arch, const char *path, bool tied, uint64_t vocab, pj **out,
                       sl_error *err) {
    pj *c = pj_new_obj();
    if (!c) return sl_errorf(err, SL_ENOMEM, "out of memory");
    static const char *archs[][2] = {{"llama", "LlamaForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"}};
    const char *cls = "LlamaForCausalLM";
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(archs[i][0], arch)) cls = archs[i][1];
    pj *a = pj_new_arr();
    int rc = !a || pj_push(a, pj_new_str(cls)) || pj_set(c, "architectures", a) ||
             pj_set(c, "model_type", pj_new_str(arch)) ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
    if (!rc) rc = set_u32(c, g, arch, "embedding_length", "hidden_size", true, path, err);
    if (!rc) rc = set_u32(c, g, arch, "feed_forward_length", "intermediate_size", true, path, err);
    if (!rc) rc = set_u32(c, g, arch, "block_count", "num_hidden_layers", true, path, err);
    if (!rc) rc = set_u32(c, g, arch, "attention.head_count", "num_attention_heads", true, path, err);
    if (!rc) rc = set_u32(c, g, arch, "attention.head_count_kv", "num_key_value_heads", false, path, err);
    if (!rc) rc = set_u32(c, g, arch, "context_length", "max_position_embeddings", false, path, err);
    if (!rc) rc = set_u32(c, g, arch, "attention.key_length", "head_dim", false, path, err);
    if (!rc) rc = set_f32(c, g, arch, "attention.layer_norm_rms_epsilon", "rms_norm_eps", 1e-6, err);
    if (!rc) rc = set_f32(c, g, arch, "rope.freq_base", "rope_theta", !strcmp(arch, "llama") ? 10000 : 1000000, err);
    if (!rc && !pj_get(c, "num_key_value_heads"))
        rc = pj_set(c, "num_key_value_heads", pj_copy(pj_get(c, "num_attention_heads")));
    uint32_t id;
    sl_error ignore = {0};
    if (!rc && sl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id, &ignore) == 0) rc = pj_set(c, "bos_token_id", pj_new_int(id));
    if (!rc && sl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id, &ignore) == 0) rc = pj_set(c, "eos_token_id", pj_new_int(id));
    if (!rc) rc = pj_set(c, "vocab_size", pj_new_int((long long)vocab));
    if (!rc) rc = pj_set(c, "tie_word_embeddings", pj_new_bool(tied));
    if (!rc) rc = pj_set(c, "torch_dtype", pj_new_str("float16"));
    if (rc && !err->code) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (rc) pj_free(c);
    else *out = c;
    return rc;
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

int sl_convert_gguf_to_mlx(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                           sl_error *err) {
    if (o->q.enabled || o->dequantize)
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF -> MLX keeps the GGUF's own quantization (no -q / -d)", src);
    if (sl_path_exists(dst) && !o->force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
    sl_checkpoint *ck = NULL;
    sl_gguf *g = NULL;
    pj *cfg = NULL, *qconf = NULL;
    sl_plan p = {.o = o, .st = st};
    int rc = sl_checkpoint_open(src, &ck, err);
    if (!rc && ck->format != SL_FMT_GGUF) rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: --to mlx needs a model directory or a GGUF file", src);
    if (!rc) rc = sl_gguf_from_checkpoint(ck, &g, err);
    char arch[32] = "";
    if (!rc) {
        const char *s;
        size_t len;
        rc = sl_gguf_get_str(g, "general.architecture", &s, &len, err);
        if (!rc) snprintf(arch, sizeof arch, "%.*s", (int)(len < 31 ? len : 31), s);
        if (!rc && strcmp(arch, "llama") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3"))
            rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF architecture '%s' is not supported (llama, qwen2, qwen3)", src, arch);
    }
    const sl_tensor *embd = ck && !rc ? sl_checkpoint_find(ck, "token_embd.weight") : NULL;
    if (!rc && !embd) rc = sl_errorf(err, SL_EINVAL, "%s: GGUF has no token_embd.weight", src);
    bool tied = !rc && !sl_checkpoint_find(ck, "output.weight");
    if (!rc) rc = make_config(g, arch, src, tied, (uint64_t)embd->shape[0], &cfg, err);
    uint32_t heads = (uint32_t)pj_int(pj_get(cfg, "num_attention_heads"), 0);
    uint32_t kv_heads = (uint32_t)pj_int(pj_get(cfg, "num_key_value_heads"), heads);
    p.ck = ck;
    int default_bits = 0;
    for (size_t i = 0; !rc && ck && i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        char name[160];
        if (!sl_gguf_name_to_hf(t->name, name, sizeof name)) {
            if (!strcmp(t->name, "rope_freqs.weight")) continue;   /* llama3 RoPE factors: mlx-lm computes them */
            rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s' has no Hugging Face name", src, t->name);
            break;
        }
        sl_out_tensor ot = {.name = name, .ndim = t->ndim, .src = t, .params = t->numel, .unpermute = true};
        memcpy(ot.shape, t->shape, sizeof ot.shape);
        if (!strcmp(arch, "llama") && strstr(t->name, ".attn_q.")) ot.permute_heads = heads;
        if (!strcmp(arch, "llama") && strstr(t->name, ".attn_k.")) ot.permute_heads = kv_heads;
        if (ot.permute_heads && t->ndim != 2) ot.permute_heads = 0;
        uint64_t K = (uint64_t)t->shape[t->ndim - 1];
        if (t->ndim == 2 && (t->dtype == SL_Q4_0 || t->dtype == SL_Q4_1 || t->dtype == SL_Q8_0) && K % 32 == 0) {
            int bits = t->dtype == SL_Q8_0 ? 8 : 4;
            char module[160], n2[176];
            snprintf(module, sizeof module, "%.*s", (int)(strlen(name) - 7), name);
            if (!default_bits) {
                default_bits = bits;
                if (!(qconf = qentry(bits))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
            } else if (bits != default_bits) {
                pj *e = qentry(bits);
                if (!e || pj_set(qconf, module, e)) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
            }
            ot.kind = SL_OUT_REPACK_W;
            ot.dtype = SL_U32;
            ot.shape[1] = (int64_t)(K * (uint64_t)bits / 32);
            if (!rc) rc = sl_plan_add(&p, &ot, err);
            ot.params = 0;
            ot.dtype = SL_F16;
            ot.shape[1] = (int64_t)(K / 32);
            snprintf(n2, sizeof n2, "%s.scales", module);
            ot.name = n2;
            ot.kind = SL_OUT_REPACK_S;
            if (!rc) rc = sl_plan_add(&p, &ot, err);
            snprintf(n2, sizeof n2, "%s.biases", module);
            ot.kind = SL_OUT_REPACK_B;
            if (!rc) rc = sl_plan_add(&p, &ot, err);
            continue;
        }
        const sl_dtype_info *di = sl_dtype_get(t->dtype);
        if (t->dtype == SL_F32 || t->dtype == SL_F16) {
            ot.dtype = t->dtype;
            ot.kind = ot.permute_heads ? SL_OUT_GGUF_Q : SL_OUT_COPY;
        } else if (di->is_float || sl_q_gguf_can_dequantize(t->dtype)) {
            ot.dtype = SL_F16;  /* as MLX's loader: BF16 and k-quants become f16 */
            ot.kind = SL_OUT_GGUF_Q;
        } else {
            rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: tensor '%s': GGUF type %s cannot be converted", src, t->name,
                           sl_dtype_name(t->dtype));
            break;
        }
        rc = sl_plan_add(&p, &ot, err);
    }
    if (!rc) {
        qsort(p.t, p.n, sizeof *p.t, cmp_out);
        rc = sl_mlx_save(&p, cfg, &qconf, false, NULL, dst, err);
    }
    if (st) st->bytes_written = p.done;
    sl_plan_free(&p);
    pj_free(cfg);
    pj_free(qconf);
    sl_gguf_close(g);
    sl_checkpoint_close(ck);
    return rc;
}
