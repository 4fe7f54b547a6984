/*
 * mlx.c — HF / mlx-lm model directory -> the mlx-lm directory that
 * `mlx_lm.convert` writes for the same flags (ml-explore/mlx-lm mlx_lm/convert.py and
 * mlx_lm/utils.py: load_config, sanitize, quantize_model, save):
 *
 *   load_config (generation_config's eos_token_id wins) -> sanitize (rotary
 *   inv_freq dropped, tied lm_head dropped) -> cast float tensors to --dtype,
 *   else config torch_dtype -> quantize every Linear/Embedding weight (2-D
 *   ".weight") whose input size is a multiple of the group size, with the
 *   mixed recipes' per-layer bits -> save: shards of <= 5 GiB in module order,
 *   {"format": "mlx"} metadata, index.json (indent 4, always), config.json
 *   (sorted, indent 4, "quantization" + "quantization_config"), README.md
 *   model card, and the source's tokenizer / generation / *.py files copied.
 *
 * Also `--dequantize` of an mlx-lm directory (quantization keys popped) and
 * re-casting an mlx-lm directory.  Tensor bytes are produced by plan.c.
 *
 * Invariants: the output directory is built in a temporary sibling and
 * renamed at the end (sl_outdir); nothing is written into DST on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"

#define MLX_SHARD_BYTES (5ull << 30)

static const char k_model_card[] =
    "---\nlanguage: en\nlibrary_name: mlx\npipeline_tag: text-generation\ntags:\n- mlx\n---\n";

static int cmp_report(const void *a, const void *b) {
    return sl_arch_cmp_names(((const sl_tensor_report *)a)->name, ((const sl_tensor_report *)b)->name);
}

static int cmp_out(const void *a, const void *b) {
    return sl_arch_cmp_names(((const sl_out_tensor *)a)->name, ((const sl_out_tensor *)b)->name);
}

static bool ends_with(const char *s, const char *suf) { return sl_str_ends_with(s, suf); }

static bool is_float(sl_dtype t) { return t == SL_F16 || t == SL_BF16 || t == SL_F32 || t == SL_F64; }

/* torch_dtype string -> dtype, INVALID when absent or not one of mlx_lm's three */
static sl_dtype config_dtype(const pj *cfg) {
    const char *s = pj_str(pj_get(cfg, "torch_dtype"));
    if (!s) {
        const pj *tc = pj_get(cfg, "text_config");
        s = pj_str(pj_get(tc, "dtype"));
    }
    if (!s) return SL_DTYPE_INVALID;
    if (!strcmp(s, "float16")) return SL_F16;
    if (!strcmp(s, "bfloat16")) return SL_BF16;
    if (!strcmp(s, "float32")) return SL_F32;
    return SL_DTYPE_INVALID;
}

/* mlx_lm load_config: generation_config.json's truthy eos_token_id replaces config's. */
static int apply_generation_config(const char *src, pj *cfg, sl_error *err) {
    char *g = sl_path_join(src, "generation_config.json");
    if (!g) return sl_errorf(err, SL_ENOMEM, "out of memory");
    pj *gc = NULL;
    sl_error ignored = {0};
    if (sl_path_exists(g) && pj_load(g, &gc, &ignored) == 0) {
        pj *eos = pj_get(gc, "eos_token_id");
        if (pj_truthy(eos)) {
            pj *c = pj_copy(eos);
            if (!c || pj_set(cfg, "eos_token_id", c)) {
                pj_free(c);
                pj_free(gc);
                free(g);
                return sl_errorf(err, SL_ENOMEM, "out of memory");
            }
        }
    }
    pj_free(gc);
    free(g);
    return 0;
}

/* mixed_* recipe (mlx_lm convert.py mixed_quant_predicate_builder). */
typedef struct recipe {
    int low, high;
    int layer_location;   /* index of the layer number in a module path */
    int num_layers;
} recipe;

static int recipe_init(recipe *r, const char *name, const sl_checkpoint *ck, const pj *cfg, sl_error *err) {
    if (!strcmp(name, "mixed_2_6")) *r = (recipe){2, 6, 0, 0};
    else if (!strcmp(name, "mixed_3_4")) *r = (recipe){3, 4, 0, 0};
    else if (!strcmp(name, "mixed_3_6")) *r = (recipe){3, 6, 0, 0};
    else if (!strcmp(name, "mixed_4_6")) *r = (recipe){4, 6, 0, 0};
    else
        return sl_errorf(err, SL_EUNSUPPORTED,
                         "unknown --quant-recipe '%s' (mixed_2_6, mixed_3_4, mixed_3_6 or mixed_4_6)", name);
    const char *first = NULL;
    for (size_t i = 0; i < ck->n_tensors; i++)
        if (strstr(ck->tensors[i].name, "down_proj") &&
            (!first || sl_arch_cmp_names(ck->tensors[i].name, first) < 0))
            first = ck->tensors[i].name;
    if (!first) return sl_errorf(err, SL_EINVAL, "%s: model has no down_proj layers for the mixed recipe", ck->path);
    int loc = 0;
    for (const char *s = first; *s; loc++) {
        size_t n = strcspn(s, ".");
        bool digits = n > 0;
        for (size_t k = 0; k < n; k++) digits &= s[k] >= '0' && s[k] <= '9';
        if (digits) break;
        s += n + (s[n] == '.');
    }
    r->layer_location = loc;
    r->num_layers = (int)pj_int(pj_get(cfg, "num_hidden_layers"), 0);
    return 0;
}

static int recipe_bits(const recipe *r, const char *path) {
    int index = 0, seg = 0;
    for (const char *s = path; *s; seg++) {
        size_t n = strcspn(s, ".");
        if (seg == r->layer_location) {
            index = atoi(s);
            break;
        }
        s += n + (s[n] == '.');
    }
    int L = r->num_layers;
    bool more = index < L / 8 || index >= 7 * L / 8 || ((index - L / 8) % 3 + 3) % 3 == 2;
    if ((strstr(path, "v_proj") || strstr(path, "v_a_proj") || strstr(path, "v_b_proj")) && more) return r->high;
    if (strstr(path, "down_proj") && more) return r->high;
    if (strstr(path, "lm_head")) return r->high;
    return r->low;
}

static bool keep_float(const char *patterns, const char *module) {
    if (!patterns) return false;
    const char *s = patterns;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n) {
            char pat[256];
            snprintf(pat, sizeof pat, "%.*s", (int)n, s);
            if (strstr(module, pat)) return true;
        }
        s += n + (s[n] == ',');
    }
    return false;
}

static pj *qentry(int group, bool group_null, int bits, sl_q_mode mode) {
    pj *e = pj_new_obj();
    if (!e) return NULL;
    if (pj_set(e, "group_size", group_null ? pj_new_null() : pj_new_int(group)) ||
        pj_set(e, "bits", pj_new_int(bits)) || pj_set(e, "mode", pj_new_str(sl_q_mode_name(mode)))) {
        pj_free(e);
        return NULL;
    }
    return e;
}

/* Quantization parameters of an already-quantized module of an mlx-lm dir. */
static int source_qparams(const pj *cfg, const char *module, sl_qparams *q, const char *path, sl_error *err) {
    const pj *qc = pj_get(cfg, "quantization");
    if (!qc) qc = pj_get(cfg, "quantization_config");
    if (!qc) return sl_errorf(err, SL_EINVAL, "%s: config.json has no \"quantization\" for quantized '%s'", path, module);
    const pj *e = pj_get(qc, module);
    if (e && e->type != PJ_OBJ) e = NULL;
    const pj *base = e ? e : qc;
    q->bits = (int)pj_int(pj_get(base, "bits"), pj_int(pj_get(qc, "bits"), 4));
    q->group_size = (int)pj_int(pj_get(base, "group_size"), pj_int(pj_get(qc, "group_size"), 64));
    const char *m = pj_str(pj_get(base, "mode"));
    if (!m) m = pj_str(pj_get(qc, "mode"));
    q->mode = SL_Q_AFFINE;
    if (m && sl_q_mode_from_name(m, &q->mode))
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: '%s': unknown quantization mode '%s'", path, module, m);
    q->group_null = false;
    return sl_q_check(q->mode, q->bits, q->group_size, err);
}

/* Check weight/scales/biases shapes of a quantized module; returns K (input size). */
static int check_qshapes(const sl_tensor *w, const sl_tensor *s, const sl_tensor *b, const sl_qparams *q,
                         const char *module, uint64_t *K, sl_error *err) {
    if (w->dtype != SL_U32 || w->ndim < 2)
        return sl_errorf(err, SL_EINVAL, "'%s.weight': expected a uint32 matrix for %d-bit %s, got %s", module, q->bits,
                         sl_q_mode_name(q->mode), sl_dtype_name(w->dtype));
    uint64_t words = (uint64_t)w->shape[w->ndim - 1];
    uint64_t k = words * 32 / (uint64_t)q->bits;
    if ((words * 32) % (uint64_t)q->bits || s->ndim != w->ndim ||
        (uint64_t)s->shape[s->ndim - 1] * (uint64_t)q->group_size != k)
        return sl_errorf(err, SL_EINVAL,
                         "'%s': weight %lld x %lld words and scales with %lld groups do not match %d bits, group %d",
                         module, (long long)w->shape[0], (long long)words, (long long)s->shape[s->ndim - 1], q->bits,
                         q->group_size);
    for (int d = 0; d < w->ndim - 1; d++)
        if (s->shape[d] != w->shape[d] || (b && b->shape[d] != w->shape[d]))
            return sl_errorf(err, SL_EINVAL, "'%s': weight, scales and biases disagree in dimension %d", module, d);
    if (q->mode == SL_Q_AFFINE) {
        if (!b) return sl_errorf(err, SL_EINVAL, "'%s': affine-quantized weight has no '%s.biases'", module, module);
        if (b->ndim != s->ndim || b->shape[b->ndim - 1] != s->shape[s->ndim - 1] || b->dtype != s->dtype)
            return sl_errorf(err, SL_EINVAL, "'%s': scales and biases differ in shape or dtype", module);
        if (!is_float(s->dtype) || s->dtype == SL_F64)
            return sl_errorf(err, SL_EINVAL, "'%s.scales': expected f16, bf16 or f32, got %s", module,
                             sl_dtype_name(s->dtype));
    } else if (s->dtype != SL_U8) {
        return sl_errorf(err, SL_EINVAL, "'%s.scales': expected uint8 for %s, got %s", module, sl_q_mode_name(q->mode),
                         sl_dtype_name(s->dtype));
    }
    *K = k;
    return 0;
}

typedef struct mlx_job {
    const char *src;
    const sl_convert_opts *o;
    pj *cfg;
    const sl_arch_info *arch;
    sl_checkpoint *ck;
    sl_plan plan;
    pj *qconf;            /* "quantization" being built (NULL if not quantizing) */
    sl_dtype cast;        /* INVALID = keep */
    bool src_quantized;
    sl_qparams qdef;
    bool group_null;
    recipe rec;
    bool use_recipe;
} mlx_job;

static int add_float(mlx_job *j, const sl_tensor *t, sl_error *err) {
    sl_out_tensor o = {.name = t->name, .ndim = t->ndim, .kind = SL_OUT_COPY, .src = t, .params = t->numel};
    memcpy(o.shape, t->shape, sizeof o.shape);
    o.dtype = (j->cast != SL_DTYPE_INVALID && is_float(t->dtype)) ? j->cast : t->dtype;
    return sl_plan_add(&j->plan, &o, err);
}

/* A float Linear/Embedding weight: quantize it or keep it (and say why). */
static int add_weight(mlx_job *j, const sl_tensor *t, sl_error *err) {
    char module[512];
    snprintf(module, sizeof module, "%.*s", (int)(strlen(t->name) - 7), t->name);
    const sl_quant_opts *qo = &j->o->q;
    uint64_t K = (uint64_t)t->shape[t->ndim - 1];
    char why[48];
    if (K % (uint64_t)j->qdef.group_size) {
        snprintf(why, sizeof why, "float (in %llu %% group %d != 0)", (unsigned long long)K, j->qdef.group_size);
        int rc = sl_plan_report(&j->plan, module, why, NULL, NULL, err);
        return rc ? rc : add_float(j, t, err);
    }
    if (keep_float(qo->keep_float, module)) {
        int rc = sl_plan_report(&j->plan, module, "float (--keep-float)", NULL, NULL, err);
        return rc ? rc : add_float(j, t, err);
    }
    sl_qparams q = j->qdef;
    if (j->use_recipe) {
        q.bits = recipe_bits(&j->rec, module);
        q.group_null = j->group_null;
        pj *e = qentry(q.group_size, q.group_null, q.bits, q.mode);
        if (!e || pj_set(j->qconf, module, e)) {
            pj_free(e);
            return sl_errorf(err, SL_ENOMEM, "out of memory");
        }
    }
    sl_dtype qdt = j->cast != SL_DTYPE_INVALID ? j->cast : t->dtype;
    if (qdt != SL_F16 && qdt != SL_BF16 && qdt != SL_F32)
        return sl_errorf(err, SL_EUNSUPPORTED, "tensor '%s': cannot quantize %s (f32, f16 or bf16 only)", t->name,
                         sl_dtype_name(t->dtype));
    uint64_t words, groups;
    int rc = sl_q_row_layout(q.mode, q.bits, q.group_size, K, &words, &groups, err);
    if (rc) return rc;
    bool affine = q.mode == SL_Q_AFFINE;
    sl_out_tensor o = {.ndim = t->ndim, .src = t, .q = q, .qdtype = qdt};
    memcpy(o.shape, t->shape, sizeof o.shape);
    char name[560];
    snprintf(name, sizeof name, "%s.weight", module);
    o.name = name;
    o.kind = SL_OUT_QWEIGHT;
    o.dtype = SL_U32;
    o.shape[o.ndim - 1] = (int64_t)words;
    o.params = t->numel;
    o.report = j->o->report;
    if ((rc = sl_plan_add(&j->plan, &o, err))) return rc;
    o.report = false;
    o.params = 0;
    o.shape[o.ndim - 1] = (int64_t)groups;
    o.dtype = affine ? qdt : SL_U8;
    snprintf(name, sizeof name, "%s.scales", module);
    o.kind = SL_OUT_QSCALES;
    if ((rc = sl_plan_add(&j->plan, &o, err))) return rc;
    if (affine) {
        snprintf(name, sizeof name, "%s.biases", module);
        o.kind = SL_OUT_QBIASES;
        rc = sl_plan_add(&j->plan, &o, err);
    }
    return rc;
}

/* An already-quantized module of an mlx-lm dir: dequantize or keep. */
static int add_quantized(mlx_job *j, const sl_tensor *w, const char *module, sl_error *err) {
    char sn[560], bn[560];
    snprintf(sn, sizeof sn, "%s.scales", module);
    snprintf(bn, sizeof bn, "%s.biases", module);
    const sl_tensor *s = sl_checkpoint_find(j->ck, sn), *b = sl_checkpoint_find(j->ck, bn);
    sl_qparams q;
    int rc = source_qparams(j->cfg, module, &q, j->src, err);
    uint64_t K = 0;
    if (!rc) rc = check_qshapes(w, s, b, &q, module, &K, err);
    if (rc) return rc;
    if (!j->o->dequantize) {
        rc = add_float(j, w, err);
        if (!rc) rc = add_float(j, s, err);
        if (!rc && b) rc = add_float(j, b, err);
        /* parameters: the float size, not the packed words */
        if (!rc) {
            for (size_t i = j->plan.n - (b ? 3 : 2); i < j->plan.n; i++) j->plan.t[i].params = 0;
            j->plan.t[j->plan.n - (b ? 3 : 2)].params = w->numel / (uint64_t)w->shape[w->ndim - 1] * K;
        }
        return rc;
    }
    sl_out_tensor o = {.name = w->name, .ndim = w->ndim, .kind = SL_OUT_DEQUANT, .src = w, .src_scales = s,
                       .src_biases = b, .q = q};
    memcpy(o.shape, w->shape, sizeof o.shape);
    o.shape[o.ndim - 1] = (int64_t)K;
    if (q.mode == SL_Q_AFFINE) o.dtype = j->cast != SL_DTYPE_INVALID ? j->cast : s->dtype;
    else o.dtype = j->cast != SL_DTYPE_INVALID ? j->cast : SL_BF16;
    o.params = w->numel / (uint64_t)w->shape[w->ndim - 1] * K;
    return sl_plan_add(&j->plan, &o, err);
}

static int cmp_tensor_ptr(const void *a, const void *b) {
    return sl_arch_cmp_names((*(const sl_tensor *const *)a)->name, (*(const sl_tensor *const *)b)->name);
}

static int build_plan(mlx_job *j, sl_error *err) {
    bool tied = sl_convert_tied(j->arch, j->cfg);
    /* visit tensors in module order: per-layer config entries follow it */
    const sl_tensor **ord = malloc((j->ck->n_tensors ? j->ck->n_tensors : 1) * sizeof *ord);
    if (!ord) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < j->ck->n_tensors; i++) ord[i] = &j->ck->tensors[i];
    qsort(ord, j->ck->n_tensors, sizeof *ord, cmp_tensor_ptr);
    int rc = 0;
    for (size_t i = 0; !rc && i < j->ck->n_tensors; i++) {
        const sl_tensor *t = ord[i];
        const char *n = t->name;
        if (strstr(n, "rotary_emb.inv_freq")) continue;
        if (tied && !strcmp(n, "lm_head.weight")) continue;
        if (j->src_quantized && (ends_with(n, ".scales") || ends_with(n, ".biases"))) {
            char module[512], wn[560];
            snprintf(module, sizeof module, "%.*s", (int)(strlen(n) - 7), n);
            snprintf(wn, sizeof wn, "%s.weight", module);
            const sl_tensor *w = sl_checkpoint_find(j->ck, wn);
            if (w && w->dtype == SL_U32) continue;   /* handled with its weight */
        }
        if (ends_with(n, ".weight") && t->dtype == SL_U32) {
            char module[512];
            snprintf(module, sizeof module, "%.*s", (int)(strlen(n) - 7), n);
            char sn[560];
            snprintf(sn, sizeof sn, "%s.scales", module);
            if (!sl_checkpoint_find(j->ck, sn))
                rc = sl_errorf(err, SL_EINVAL, "%s: quantized '%s' has no '%s'", j->src, n, sn);
            else rc = add_quantized(j, t, module, err);
            continue;
        }
        if (j->qconf && ends_with(n, ".weight") && t->ndim == 2 && is_float(t->dtype)) rc = add_weight(j, t, err);
        else rc = add_float(j, t, err);
    }
    free(ord);
    if (!rc) qsort(j->plan.t, j->plan.n, sizeof *j->plan.t, cmp_out);
    return rc;
}

static int write_index(sl_plan *p, const char *dir, char **shard_names, sl_error *err) {
    uint64_t total = 0, params = 0;
    const char **names = malloc((p->n ? p->n : 1) * sizeof *names);
    if (!names) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        total += sl_plan_nbytes(&p->t[i]);
        params += p->t[i].params;
        names[i] = p->t[i].name;
    }
    pj *idx = pj_new_obj(), *md = pj_new_obj(), *wm = pj_new_obj();
    int rc = idx && md && wm ? 0 : -1;
    if (!rc) rc = pj_set(md, "total_size", pj_new_int((long long)total));
    if (!rc) rc = pj_set(md, "total_parameters", pj_new_int((long long)params));
    /* weight_map sorted by name (Python sorted() on str = code point order) */
    size_t *ord = malloc((p->n ? p->n : 1) * sizeof *ord);
    if (!ord) rc = -1;
    for (size_t i = 0; !rc && i < p->n; i++) ord[i] = i;
    for (size_t i = 1; !rc && i < p->n; i++) { /* insertion sort by strcmp */
        size_t v = ord[i], k = i;
        while (k > 0 && strcmp(names[ord[k - 1]], names[v]) > 0) {
            ord[k] = ord[k - 1];
            k--;
        }
        ord[k] = v;
    }
    for (size_t i = 0; !rc && i < p->n; i++)
        rc = pj_set(wm, names[ord[i]], pj_new_str(shard_names[p->t[ord[i]].shard]));
    free(ord);
    free(names);
    if (!rc) {
        rc = pj_set(idx, "metadata", md);
        md = NULL;
    }
    if (!rc) {
        rc = pj_set(idx, "weight_map", wm);
        wm = NULL;
    }
    if (rc) {
        pj_free(idx);
        pj_free(md);
        pj_free(wm);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (p->st) {
        p->st->params = params;
        p->st->model_bytes = total;
        p->st->bits_per_weight = params ? (double)total * 8.0 / (double)params : 0;
    }
    char *path = sl_path_join(dir, "model.safetensors.index.json");
    rc = pj_write(idx, 4, false, path, err);
    free(path);
    pj_free(idx);
    return rc;
}

static int write_config(pj *c, pj **qconf, bool drop_quant, const char *dir, sl_error *err) {
    pj_remove(c, "_name_or_path");
    pj_remove(c, "vision_config");
    if (drop_quant) {
        pj_remove(c, "quantization");
        pj_remove(c, "quantization_config");
    }
    if (*qconf) {
        pj *q2 = pj_copy(*qconf);
        if (!q2 || pj_set(c, "quantization", *qconf)) {
            pj_free(q2);
            return sl_errorf(err, SL_ENOMEM, "out of memory");
        }
        *qconf = NULL;
        if (pj_set(c, "quantization_config", q2)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    } else if (pj_get(c, "quantization")) {
        pj *q2 = pj_copy(pj_get(c, "quantization"));
        if (!q2 || pj_set(c, "quantization_config", q2)) return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    pj_sort_keys(c);
    char *path = sl_path_join(dir, "config.json");
    int rc = pj_write(c, 4, false, path, err);
    free(path);
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text, sl_error *err) {
    char *path = sl_path_join(dir, name);
    sl_outfile f;
    int rc = sl_outfile_open(&f, path, err);
    if (!rc) rc = sl_outfile_write(&f, text, strlen(text), err);
    if (!rc) rc = sl_outfile_commit(&f, err);
    else sl_outfile_abort(&f);
    free(path);
    return rc;
}

int sl_mlx_save(sl_plan *p, pj *cfg, pj **qconf, bool drop_quant, const char *side_src, const char *dst,
                sl_error *err) {
    const sl_convert_opts *o = p->o;
    int rc = 0;
    sl_outdir od = {0};
    bool od_open = false;
    char **shard_names = NULL;
    uint32_t nshards = 0;
    if (!rc) {
        for (size_t i = 0; i < p->n; i++) p->total += sl_plan_nbytes(&p->t[i]);
        nshards = sl_plan_shard(p, o->max_shard_bytes ? o->max_shard_bytes : MLX_SHARD_BYTES);
        shard_names = calloc(nshards, sizeof *shard_names);
        if (!shard_names) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        for (uint32_t s = 0; !rc && s < nshards; s++) {
            char name[64];
            if (nshards == 1) snprintf(name, sizeof name, "model.safetensors");
            else snprintf(name, sizeof name, "model-%05u-of-%05u.safetensors", s + 1, nshards);
            if (!(shard_names[s] = strdup(name))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        }
    }
    if (!rc && !(rc = sl_outdir_open(&od, dst, o->force, err))) od_open = true;
    cJSON *meta = NULL;
    if (!rc) {
        meta = cJSON_CreateObject();
        if (!meta || !cJSON_AddStringToObject(meta, "format", "mlx")) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (uint32_t s = 0; !rc && s < nshards; s++) {
        char *path = sl_path_join(od.tmp_path, shard_names[s]);
        rc = sl_plan_write_file(p, s, SL_FMT_SAFETENSORS, path, meta, err);
        free(path);
    }
    cJSON_Delete(meta);
    if (!rc) rc = write_index(p, od.tmp_path, shard_names, err);
    if (!rc) rc = write_config(cfg, qconf, drop_quant, od.tmp_path, err);
    if (!rc) rc = (side_src ? sl_convert_copy_side_files(side_src, od.tmp_path, p->st, err) : 0);
    if (!rc) rc = write_text(od.tmp_path, "README.md", k_model_card, err);
    if (od_open) {
        if (!rc) rc = sl_outdir_commit(&od, err);
        else sl_outdir_abort(&od);
    }
    if (shard_names)
        for (uint32_t s = 0; s < nshards; s++) free(shard_names[s]);
    free(shard_names);
    return rc;
}

/* Resolve -q options into j->qdef / j->qconf (mlx_lm quantize_model). */
static int setup_quant(mlx_job *j, sl_error *err) {
    const sl_quant_opts *qo = &j->o->q;
    static const int def_g[] = {64, 32, 32, 16}, def_b[] = {4, 4, 8, 4};
    j->qdef.mode = qo->mode;
    j->qdef.group_size = qo->group_size ? qo->group_size : def_g[qo->mode];
    j->qdef.bits = qo->bits ? qo->bits : def_b[qo->mode];
    int rc = sl_q_check(j->qdef.mode, j->qdef.bits, j->qdef.group_size, err);
    if (rc) return rc;
    if (qo->recipe) {
        if (qo->mode != SL_Q_AFFINE)
            return sl_errorf(err, SL_EUNSUPPORTED, "--quant-recipe works with --q-mode affine only, not %s",
                             sl_q_mode_name(qo->mode));
        if ((rc = recipe_init(&j->rec, qo->recipe, j->ck, j->cfg, err))) return rc;
        j->use_recipe = true;
        j->group_null = qo->group_size == 0;
    }
    if (pj_get(j->cfg, "quantization"))
        return sl_errorf(err, SL_EINVAL, "%s: the model is already quantized (use --dequantize first)", j->src);
    j->qconf = qentry(j->qdef.group_size, false, j->qdef.bits, j->qdef.mode);
    if (!j->qconf) return sl_errorf(err, SL_ENOMEM, "out of memory");
    return 0;
}

int sl_convert_to_mlx(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                      sl_error *err) {
    if (!sl_path_is_dir(src)) {
        sl_error e2 = {0};
        if (sl_detect_format(src, &e2) == SL_FMT_GGUF) return sl_convert_gguf_to_mlx(src, dst, o, st, err);
        return sl_errorf(err, SL_EUNSUPPORTED, "%s: --to mlx needs a model directory (config.json + weights) or a GGUF file",
                         src);
    }
    if (sl_path_exists(dst) && !o->force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
    if (o->q.enabled && o->dequantize)
        return sl_errorf(err, SL_EINVAL, "choose either --quantize or --dequantize, not both");
    mlx_job j = {.src = src, .o = o, .cast = o->dtype};
    j.plan.o = o;
    j.plan.st = st;
    char *cpath = sl_path_join(src, "config.json");
    int rc = pj_load(cpath, &j.cfg, err);
    free(cpath);
    if (!rc && j.cfg->type != PJ_OBJ) rc = sl_errorf(err, SL_EINVAL, "%s/config.json: not a JSON object", src);
    if (!rc && !(j.arch = sl_convert_arch(pj_str(pj_get(j.cfg, "model_type")), src, err))) rc = SL_EUNSUPPORTED;
    if (!rc) rc = apply_generation_config(src, j.cfg, err);
    if (!rc) rc = sl_checkpoint_open(src, &j.ck, err);
    if (!rc) {
        j.plan.ck = j.ck;
        j.src_quantized = pj_get(j.cfg, "quantization") != NULL;
        if (j.cast == SL_DTYPE_INVALID) j.cast = config_dtype(j.cfg);
        if (o->dequantize && !j.src_quantized)
            rc = sl_errorf(err, SL_EINVAL, "%s: --dequantize: the model is not quantized", src);
    }
    if (!rc && o->q.enabled) rc = setup_quant(&j, err);
    if (!rc) rc = build_plan(&j, err);
    if (!rc) rc = sl_mlx_save(&j.plan, j.cfg, &j.qconf, o->dequantize, src, dst, err);
    if (st) {
        st->bytes_written = j.plan.done;
        if (st->n_report) qsort(st->report, st->n_report, sizeof *st->report, cmp_report);
    }
    sl_plan_free(&j.plan);
    pj_free(j.qconf);
    pj_free(j.cfg);
    sl_checkpoint_close(j.ck);
    return rc;
}
