/*
 * hf.c — model directory (mlx-lm, quantized or not, or HF) -> transformers
 * directory: model.safetensors / pytorch_model.bin (sharded at 5 GB with an
 * index.json as save_pretrained writes it), config.json without mlx-lm's
 * "quantization" keys, tokenizer and generation files copied.
 *
 * Quantized MLX weights are dequantized exactly as mx.dequantize does on the
 * CPU (in the scales' dtype, or --dtype); mlx-lm's sanitize is undone where
 * it lost something: a head dropped because it was tied is restored (as a
 * copy of the embedding) only when config.json says the head is untied.
 *
 * Invariants: output built in a temporary directory, renamed at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"

#define HF_SHARD_BYTES 5000000000ull

static int cmp_out(const void *a, const void *b) {
    return sl_arch_cmp_names(((const sl_out_tensor *)a)->name, ((const sl_out_tensor *)b)->name);
}

static int plan_hf(sl_plan *p, const sl_checkpoint *ck, const pj *cfg, const sl_arch_info *arch, const char *src,
                   sl_dtype cast, sl_error *err) {
    const pj *qc = pj_get(cfg, "quantization");
    if (!qc) qc = pj_get(cfg, "quantization_config");
    int rc = 0;
    for (size_t i = 0; !rc && i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        size_t len = strlen(t->name);
        if (len > 7 && (sl_str_ends_with(t->name, ".scales") || sl_str_ends_with(t->name, ".biases"))) {
            char wn[560];
            snprintf(wn, sizeof wn, "%.*s.weight", (int)(len - 7), t->name);
            const sl_tensor *w = sl_checkpoint_find(ck, wn);
            if (w && w->dtype == SL_U32) continue;
        }
        sl_out_tensor o = {.name = t->name, .ndim = t->ndim, .kind = SL_OUT_COPY, .src = t, .params = t->numel};
        memcpy(o.shape, t->shape, sizeof o.shape);
        bool fl = t->dtype == SL_F16 || t->dtype == SL_BF16 || t->dtype == SL_F32 || t->dtype == SL_F64;
        o.dtype = cast != SL_DTYPE_INVALID && fl ? cast : t->dtype;
        if (t->dtype == SL_U32 && sl_str_ends_with(t->name, ".weight")) {
            char module[512], sn[560], bn[560];
            snprintf(module, sizeof module, "%.*s", (int)(len - 7), t->name);
            snprintf(sn, sizeof sn, "%s.scales", module);
            snprintf(bn, sizeof bn, "%s.biases", module);
            const sl_tensor *s = sl_checkpoint_find(ck, sn), *b = sl_checkpoint_find(ck, bn);
            if (!s) return sl_errorf(err, SL_EINVAL, "%s: quantized '%s' has no '%s'", src, t->name, sn);
            if (!qc) return sl_errorf(err, SL_EINVAL, "%s: '%s' is packed but config.json has no \"quantization\"", src, t->name);
            const pj *e = pj_get(qc, module);
            const pj *base = e && e->type == PJ_OBJ ? e : qc;
            sl_qparams q = {.bits = (int)pj_int(pj_get(base, "bits"), 4), .group_size = (int)pj_int(pj_get(base, "group_size"), 64)};
            const char *m = pj_str(pj_get(base, "mode"));
            if (m && sl_q_mode_from_name(m, &q.mode))
                return sl_errorf(err, SL_EUNSUPPORTED, "%s: '%s': unknown quantization mode '%s'", src, module, m);
            if ((rc = sl_q_check(q.mode, q.bits, q.group_size, err))) return rc;
            uint64_t words = (uint64_t)t->shape[t->ndim - 1], K = words * 32 / (uint64_t)q.bits;
            bool affine = q.mode == SL_Q_AFFINE;
            if (t->ndim != 2 || s->ndim != 2 || s->shape[0] != t->shape[0] ||
                (uint64_t)s->shape[1] * (uint64_t)q.group_size != K || (affine && (!b || b->ndim != 2 ||
                b->shape[0] != s->shape[0] || b->shape[1] != s->shape[1] || b->dtype != s->dtype)))
                return sl_errorf(err, SL_EINVAL, "%s: '%s': weight, scales and biases shapes do not match %d-bit %s group %d",
                                 src, module, q.bits, sl_q_mode_name(q.mode), q.group_size);
            if (affine && s->dtype != SL_F16 && s->dtype != SL_BF16 && s->dtype != SL_F32)
                return sl_errorf(err, SL_EINVAL, "%s: '%s': scales must be f16, bf16 or f32, not %s", src, sn, sl_dtype_name(s->dtype));
            if (!affine && s->dtype != SL_U8)
                return sl_errorf(err, SL_EINVAL, "%s: '%s': %s scales must be uint8", src, sn, sl_q_mode_name(q.mode));
            o.kind = SL_OUT_DEQUANT;
            o.src_scales = s;
            o.src_biases = affine ? b : NULL;
            o.q = q;
            o.shape[1] = (int64_t)K;
            o.dtype = cast != SL_DTYPE_INVALID ? cast : affine ? s->dtype : SL_BF16;
            o.params = (uint64_t)t->shape[0] * K;
        }
        rc = sl_plan_add(p, &o, err);
    }
    /* restore a head that mlx-lm dropped as tied, when the config says untied */
    if (!rc && !sl_convert_tied(arch, cfg) && !sl_checkpoint_find(ck, "lm_head.weight")) {
        for (size_t i = 0; i < p->n; i++)
            if (!strcmp(p->t[i].name, "model.embed_tokens.weight")) {
                sl_out_tensor h = p->t[i];
                h.name = "lm_head.weight";
                rc = sl_plan_add(p, &h, err);
                break;
            }
    }
    if (!rc) qsort(p->t, p->n, sizeof *p->t, cmp_out);
    return rc;
}

int sl_hf_save(sl_plan *p, pj *cfg, const char *side_src, const char *dst, sl_error *err) {
    const sl_convert_opts *o = p->o;
    bool safet = o->to != SL_FMT_TORCH;
    uint32_t nshards = 0;
    char (*names)[64] = NULL;
    sl_name_file *nf = NULL;
    sl_outdir od = {0};
    bool od_open = false;
    int rc = 0;
    for (size_t i = 0; i < p->n; i++) p->total += sl_plan_nbytes(&p->t[i]);
    nshards = sl_plan_shard(p, o->max_shard_bytes ? o->max_shard_bytes : HF_SHARD_BYTES);
    names = calloc(nshards, sizeof *names);
    nf = calloc(p->n ? p->n : 1, sizeof *nf);
    if (!names || !nf) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc && !(rc = sl_outdir_open(&od, dst, o->force, err))) od_open = true;
    cJSON *meta = NULL;
    if (!rc && safet) {
        meta = cJSON_CreateObject();
        if (!meta || !cJSON_AddStringToObject(meta, "format", "pt")) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    const char *stem = safet ? "model" : "pytorch_model", *ext = safet ? "safetensors" : "bin";
    for (uint32_t s = 0; !rc && s < nshards; s++) {
        if (nshards == 1) snprintf(names[s], 64, "%s.%s", stem, ext);
        else snprintf(names[s], 64, "%s-%05u-of-%05u.%s", stem, s + 1, nshards, ext);
        char *path = sl_path_join(od.tmp_path, names[s]);
        rc = sl_plan_write_file(p, s, safet ? SL_FMT_SAFETENSORS : SL_FMT_TORCH, path, meta, err);
        free(path);
    }
    cJSON_Delete(meta);
    if (!rc && nshards > 1) {
        uint64_t total = 0, params = 0;
        for (size_t i = 0; i < p->n; i++) {
            nf[i] = (sl_name_file){p->t[i].name, names[p->t[i].shard]};
            total += sl_plan_nbytes(&p->t[i]);
            params += p->t[i].params;
        }
        char *ip = sl_path_join(od.tmp_path, safet ? "model.safetensors.index.json" : "pytorch_model.bin.index.json");
        rc = sl_convert_write_index_hf(ip, nf, p->n, total, params, err);
        free(ip);
    }
    if (!rc) {
        pj_remove(cfg, "quantization");
        pj_remove(cfg, "quantization_config");
        pj_sort_keys(cfg);
        char *path = sl_path_join(od.tmp_path, "config.json");
        rc = pj_write(cfg, 2, true, path, err);
        free(path);
    }
    if (!rc && side_src) rc = sl_convert_copy_side_files(side_src, od.tmp_path, p->st, err);
    if (od_open) {
        if (!rc) rc = sl_outdir_commit(&od, err);
        else sl_outdir_abort(&od);
    }
    free(names);
    free(nf);
    return rc;
}

int sl_convert_to_hf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                     sl_error *err) {
    if (o->to != SL_FMT_SAFETENSORS && o->to != SL_FMT_TORCH)
        return sl_errorf(err, SL_EINVAL, "--to hf / torch: output must be safetensors or torch");
    if (o->q.enabled)
        return sl_errorf(err, SL_EUNSUPPORTED, "--quantize is not available for --to hf/torch (use --to mlx or gguf)");
    if (!sl_path_is_dir(src)) {
        sl_error e2;
        if (sl_detect_format(src, &e2) == SL_FMT_GGUF) return sl_convert_gguf_to_hf(src, dst, o, st, err);
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: --to hf/torch needs a model directory (config.json + weights) or a GGUF file", src);
    }
    if (sl_path_exists(dst) && !o->force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
    pj *cfg = NULL;
    sl_checkpoint *ck = NULL;
    const sl_arch_info *arch = NULL;
    sl_plan p = {.o = o, .st = st};
    char *cpath = sl_path_join(src, "config.json");
    int rc = pj_load(cpath, &cfg, err);
    free(cpath);
    if (!rc && cfg->type != PJ_OBJ) rc = sl_errorf(err, SL_EINVAL, "%s/config.json: not a JSON object", src);
    if (!rc && !(arch = sl_convert_arch(pj_str(pj_get(cfg, "model_type")), src, err))) rc = SL_EUNSUPPORTED;
    if (!rc) rc = sl_checkpoint_open(src, &ck, err);
    if (!rc) {
        p.ck = ck;
        rc = plan_hf(&p, ck, cfg, arch, src, o->dtype, err);
    }
    if (!rc) rc = sl_hf_save(&p, cfg, src, dst, err);
    if (st) {
        st->bytes_written = p.done;
        for (size_t i = 0; i < p.n; i++) st->params += p.t[i].params;
    }
    sl_plan_free(&p);
    pj_free(cfg);
    sl_checkpoint_close(ck);
    return rc;
}
