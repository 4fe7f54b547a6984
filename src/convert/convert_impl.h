/*
 * convert_impl.h — internals shared by the src/convert/ files (not public).
 *
 *  pyjson.c    JSON tree printed exactly like Python's json.dump(indent=N)
 *  arch.c      the architecture table (src/model/arch.h) for conversion: lookups, tied heads, module order
 *  plan.c      a model conversion as a list of output tensors + producers
 *  mlx.c       HF / mlx-lm directory -> mlx-lm directory (mlx_lm.convert)
 *  hf.c        mlx-lm / HF directory -> transformers directory (safetensors / torch)
 *  gguf_export.c  model directory -> llama.cpp GGUF
 *  gguf_import.c  llama.cpp GGUF -> mlx-lm / transformers directory
 *  convert.c   plain container conversion and the sl_convert_path entry
 */
#ifndef SILICA_CONVERT_IMPL_H
#define SILICA_CONVERT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/arch.h"
#include "silica/convert.h"
#include "silica/quant.h"
#include "silica/writer.h"

/* ---- pyjson.c ---- */

typedef enum pj_type { PJ_NULL, PJ_TRUE, PJ_FALSE, PJ_INT, PJ_FLOAT, PJ_STR, PJ_ARR, PJ_OBJ } pj_type;

typedef struct pj {
    pj_type type;
    char *s;            /* PJ_STR: UTF-8 text; PJ_INT: decimal digits */
    double d;           /* PJ_FLOAT */
    size_t n, cap;      /* PJ_ARR / PJ_OBJ members */
    char **keys;        /* PJ_OBJ */
    struct pj **vals;
} pj;

int pj_parse(const char *text, size_t len, const char *path, pj **out, sl_error *err);
int pj_load(const char *path, pj **out, sl_error *err);
/* indent < 0: one line with ", " / ": " separators (json.dumps default). */
char *pj_dump(const pj *v, int indent, size_t *len);
int pj_write(const pj *v, int indent, bool newline, const char *path, sl_error *err);
void pj_free(pj *v);
pj *pj_copy(const pj *v);
pj *pj_new_obj(void);
pj *pj_new_arr(void);
pj *pj_new_null(void);
pj *pj_new_bool(bool b);
pj *pj_new_int(long long i);
pj *pj_new_float(double d);
pj *pj_new_str(const char *s);
pj *pj_get(const pj *obj, const char *key);
int pj_set(pj *obj, const char *key, pj *v);   /* takes v; replaces in place */
int pj_push(pj *arr, pj *v);                    /* takes v */
void pj_remove(pj *obj, const char *key);
void pj_sort_keys(pj *obj);                     /* top level only, like sorted(d.items()) */
bool pj_truthy(const pj *v);
long long pj_int(const pj *v, long long dflt);
const char *pj_str(const pj *v);

/* ---- arch.c ---- */

/* A model type with mlx-lm conversion rules (mlx_module set); NULL with an
 * error listing them. */
const sl_arch_info *sl_convert_arch(const char *model_type, const char *path, sl_error *err);
/* Any model type of the table (GGUF export); NULL with an error listing them. */
const sl_arch_info *sl_convert_arch_gguf(const char *model_type, const char *path, sl_error *err);
/* Does the source config tie the head to the embedding (mlx-lm's defaults)? */
bool sl_convert_tied(const sl_arch_info *a, const pj *config);
/* Compare two parameter names in mlx-lm module order (tree_flatten of the
 * model: embed_tokens, layers by index, q/k/v/o, gate/down/up, norms, head). */
int sl_arch_cmp_names(const char *a, const char *b);

/* ---- plan.c: a model conversion as output tensors with producers ---- */

typedef enum sl_out_kind {
    SL_OUT_COPY,      /* src converted to dtype (cast or same) */
    SL_OUT_QWEIGHT,   /* quantize src (cast to qdtype first): packed uint32 codes */
    SL_OUT_QSCALES,   /* ... scales */
    SL_OUT_QBIASES,   /* ... biases */
    SL_OUT_DEQUANT,   /* dequantize src (U32) + src_scales + src_biases into dtype */
    SL_OUT_GGUF_DEQ,  /* dequantize a GGUF block tensor to dtype */
    SL_OUT_REPACK_W,  /* GGUF Q4_0/Q4_1/Q8_0 -> MLX affine codes (lossless) */
    SL_OUT_REPACK_S,
    SL_OUT_REPACK_B,
    SL_OUT_GGUF_Q,    /* float src -> GGUF block type `dtype` */
    SL_OUT_Q4_1_FROM_AFFINE, /* MLX affine 4-bit (src, src_scales, src_biases) -> Q4_1 */
} sl_out_kind;

typedef struct sl_qparams {
    sl_q_mode mode;
    int bits;
    int group_size;
    bool group_null;          /* config records "group_size": null (mlx-lm recipe quirk) */
} sl_qparams;

typedef struct sl_out_tensor {
    char *name;
    sl_dtype dtype;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    sl_out_kind kind;
    const sl_tensor *src, *src_scales, *src_biases;
    sl_qparams q;             /* quantize / dequantize parameters */
    sl_dtype qdtype;          /* dtype the source is cast to before quantizing (= scale dtype) */
    uint32_t permute_heads;   /* llama Q/K row permutation with this many heads (0 = none) */
    bool unpermute;           /* GGUF import: the inverse permutation (GGUF -> HF rows) */
    float add;                /* GGUF export: added to every element, rounded to src's float dtype (gemma norms +1) */
    uint64_t params;          /* parameters this output stands for (0 for scales/biases) */
    uint32_t shard;
    bool report;              /* collect quantization error for --report */
    sl_dtype gguf_wanted;     /* GGUF mix: the type the rules chose before a row-length fallback
                                 (SL_DTYPE_INVALID, or == dtype: no fallback) */
} sl_out_tensor;

typedef struct sl_plan {
    sl_out_tensor *t;
    size_t n, cap;
    const sl_convert_opts *o;
    sl_convert_stats *st;
    const sl_checkpoint *ck;   /* source, for releasing pages */
    uint64_t done, total;      /* progress */
} sl_plan;

int sl_plan_add(sl_plan *p, const sl_out_tensor *t, sl_error *err);   /* copies name */
void sl_plan_free(sl_plan *p);
/* Output bytes of one planned tensor (0 on overflow). */
uint64_t sl_plan_nbytes(const sl_out_tensor *t);
/* Write the planned tensors whose shard == s to one file (format fmt). */
int sl_plan_write_file(sl_plan *p, uint32_t shard, sl_format fmt, const char *path, const cJSON *metadata,
                       sl_error *err);
/* Greedy mlx-lm make_shards in plan order (new shard when size + nbytes > limit);
 * returns the number of shards. */
uint32_t sl_plan_shard(sl_plan *p, uint64_t limit);
/* --report line of a GGUF tensor: its type (and the fallback), bits per weight, error stats s (may be NULL). */
int sl_plan_report_gguf(sl_plan *p, const sl_out_tensor *o, const sl_q_stats *s, sl_error *err);
/* Append a per-tensor report entry (quantization error stats). */
int sl_plan_report(sl_plan *p, const char *name, const char *status, const sl_qparams *q, const sl_q_stats *s,
                   sl_error *err);

/* ---- the model pipelines ---- */
/* Write a planned mlx-lm directory (mlx.c): shards, index.json, config.json
 * (cfg; *qconf becomes "quantization" + "quantization_config" and is taken;
 * drop_quant pops them), README.md, and side_src's non-weight files. */
int sl_mlx_save(sl_plan *p, pj *cfg, pj **qconf, bool drop_quant, const char *side_src, const char *dst,
                sl_error *err);
int sl_convert_to_mlx(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                      sl_error *err);
int sl_convert_to_hf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                     sl_error *err);
/* Write a planned transformers directory (hf.c): shards (safetensors, or
 * torch when o->to is torch), index.json, config.json without "quantization",
 * side_src's non-weight files (NULL: none). */
int sl_hf_save(sl_plan *p, pj *cfg, const char *side_src, const char *dst, sl_error *err);
int sl_convert_gguf_to_mlx(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                           sl_error *err);
int sl_convert_gguf_to_hf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                          sl_error *err);
int sl_convert_to_gguf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                       sl_error *err);

/* convert.c helpers shared with the pipelines */
typedef struct sl_name_file { const char *name; const char *file; } sl_name_file;
/* transformers' index.json (indent 2, sorted weight_map); sorts nf. */
int sl_convert_write_index_hf(const char *path, sl_name_file *nf, size_t n, uint64_t total_size,
                              uint64_t total_params, sl_error *err);
bool sl_convert_is_weight_file(const char *name);
/* Copy a model directory's non-weight files except config.json / README.md. */
int sl_convert_copy_side_files(const char *src, const char *dst, sl_convert_stats *st, sl_error *err);
/* A directory with config.json naming a model_type. */
bool sl_convert_is_model_dir(const char *dir);

#endif
