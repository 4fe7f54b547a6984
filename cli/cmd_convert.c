/*
 * cmd_convert.c — `silica convert SRC DST --to FORMAT [options]` and
 * `silica quantize SRC DST [options]` (convert into the source's own
 * format family, quantized): option parsing, the --report table / JSON,
 * and the store: SRC may be a store name, DST may be one.
 * The work itself is sl_convert_path (src/convert/).
 *
 * Store invariants: a derived model never becomes a version of its source's
 * name; it is registered under --name, DST (a store name), or a default
 * named after the source the way mlx-community and GGUF repos are
 * (org/name-mlx-4bit, org/name-Q4_K, org/name-GGUF...), with lineage to the
 * source.  Output bound for the store is written in the store's scratch
 * directory and moved in (no copy); a failure leaves nothing registered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "silica/convert.h"
#include "silica/registry.h"

static const char *k_help =
    "usage: silica convert SRC DST --to mlx|hf|torch|gguf|safetensors|npz [options]\n\n"
    "Convert a checkpoint file or a model directory, streaming tensor by tensor.\n"
    "  --to mlx     the directory mlx_lm.convert writes (sanitized names, config.json\n"
    "               with \"quantization\", <= 5 GiB shards + index.json, tokenizer files)\n"
    "  --to hf      a transformers directory (model.safetensors shards), dequantizing\n"
    "               MLX weights; --to torch: pytorch_model.bin shards\n"
    "  --to mlx|hf  from a GGUF file: its config.json and weights under Hugging Face\n"
    "               names (mlx: Q4_0/Q4_1/Q8_0 repacked losslessly, others f16)\n"
    "  --to gguf    from a model directory: a llama.cpp GGUF (metadata, tokenizer) for\n"
    "               llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3\n"
    "  --to safetensors|torch|npz|gguf  on files: the same tensors in another container\n"
    "Output is written under a temporary name and renamed at the end: a failure or\n"
    "Ctrl-C leaves nothing behind.\n\n"
    "The store: SRC may be a store name (org/name[@rev][:tag]).  DST may be one too\n"
    "(org/name[:tag] whose org/ is not a directory here; write ./org/name for a path):\n"
    "the output then goes straight into the store under that name.  A model made from\n"
    "a store name is registered as a model of its own, never as a version of SRC:\n"
    "--name, else SRC's name plus what was done, as mlx-community and GGUF repos name\n"
    "them: org/name-mlx-4bit, -mlx-8bit, -mlx-mxfp4, -mlx-mixed_3_6, -mlx, -Q4_K_M,\n"
    "-Q8_0, -GGUF (float), -hf, -torch...  `silica show` gives its lineage.\n\n"
    "options:\n"
    "  -q, --quantize         quantize Linear/Embedding weights (--to mlx)\n"
    "  --q-bits B             2, 3, 4, 5, 6, 8 (affine; default 4)\n"
    "  --q-group-size G       32, 64, 128 (affine; default 64)\n"
    "  --q-mode M             affine (default), mxfp4, mxfp8, nvfp4\n"
    "  --quant-recipe R       mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6 (mlx-lm's recipes)\n"
    "  --keep-float P1,P2     keep modules whose name contains a pattern in float\n"
    "  --q-variant cpu|gpu    MLX affine rounding of the CPU (default) or the Metal kernel\n"
    "  --q-type T             GGUF: a llama-quantize type (Q4_K_M, Q8_0, ...; listed below)\n"
    "  --pure                 GGUF: T's base type for every quantizable tensor (no mix rules)\n"
    "  --dtype D              float tensors (and scales) become f32, f16 or bf16\n"
    "  -d, --dequantize       quantized MLX weights back to float\n"
    "  --report               per-tensor quantization error and bits per weight\n"
    "  --max-shard-size SIZE  shard size for directories, e.g. 5GB, 500MB\n"
    "  --force                replace DST if it exists\n"
    "  --name NAME            register the output in the store as NAME (org/name[:tag])\n"
    "  --json                 print a JSON summary (with --report: the report)\n"
    "  --help                 this text\n";

static const char *k_quant_help =
    "usage: silica quantize SRC DST [-q options]\n\n"
    "Quantize a model into its own format family: an HF or mlx-lm directory becomes an\n"
    "mlx-lm directory (as `silica convert SRC DST --to mlx -q`), a GGUF file a GGUF file\n"
    "(--q-type, default Q4_0), tensor types chosen as llama-quantize chooses them.\n"
    "Options as for `silica convert`: --q-bits, --q-group-size, --q-mode, --quant-recipe,\n"
    "--keep-float, --q-variant, --q-type, --pure, --dtype, --report, --json, --force,\n"
    "--max-shard-size, --name.  SRC and DST may be store names, as for `silica convert`\n"
    "(the result is named e.g. org/name-mlx-4bit, org/name-Q4_K_M).\n"
    "With --budget SIZE the recipe is chosen for you: the least KL divergence among those that fit\n"
    "(`silica quantize --budget 1G --help`).\n";

/* The --q-type table: llama-quantize's mixes with their size on Llama-3-8B's shapes. */
static void print_mixes(void) {
    printf("\nGGUF types (--q-type), as llama-quantize names them; bits per weight of the whole\n"
           "file for Llama-3-8B's tensor shapes:\n");
    for (size_t i = 0; sl_gguf_mix_at(i); i++) {
        const sl_gguf_mix *m = sl_gguf_mix_at(i);
        if (m->alias_of) printf("  %-8s alias for %s\n", m->name, m->alias_of);
        else printf("  %-8s %5.2f bpw (%s)\n", m->name, sl_gguf_mix_reference_bpw(m),
                    sl_dtype_get(m->base)->is_quant ? "mix" : "float");
    }
    printf("Rules (llama.cpp src/llama-quant.cpp): output.weight (token_embd when tied) Q6_K;\n"
           "attn_v / ffn_down get more bits by layer position in the _M / _S / _L mixes; a tensor\n"
           "whose rows do not fit the block size falls back (Q4_K -> Q5_0, Q6_K -> Q8_0, ...),\n"
           "and each fallback is reported.  --imatrix is not supported (no importance matrix).\n");
}

/* "Q4_0, Q4_1, ..." (every mix name) */
static void mix_names(char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; sl_gguf_mix_at(i) && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", sl_gguf_mix_at(i)->name);
}

static void print_fallbacks(const sl_convert_stats *st, bool json, cJSON *j) {
    cJSON *arr = json && st->n_fallbacks ? cJSON_AddArrayToObject(j, "fallbacks") : NULL;
    for (size_t i = 0; i < st->n_fallbacks; i++) {
        const sl_type_fallback *f = &st->fallbacks[i];
        const char *w = sl_dtype_name(f->wanted), *u = sl_dtype_name(f->used);
        if (arr) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "tensors", f->count);
            cJSON_AddStringToObject(e, "wanted", w);
            cJSON_AddStringToObject(e, "used", u);
            cJSON_AddNumberToObject(e, "row_length", (double)f->row);
            cJSON_AddItemToArray(arr, e);
        } else if (!json) {
            printf("fallback: %u tensor%s: %s \u2192 %s (row length %lld not a multiple of %u)\n", f->count,
                   f->count == 1 ? "" : "s", w, u, (long long)f->row, sl_dtype_get(f->wanted)->block_elems);
        }
    }
}

static int parse_size(const char *s, uint64_t *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return -1;
    double m = 1;
    if (!strcmp(end, "") || !strcmp(end, "B")) m = 1;
    else if (!strcmp(end, "KB")) m = 1e3;
    else if (!strcmp(end, "MB")) m = 1e6;
    else if (!strcmp(end, "GB")) m = 1e9;
    else if (!strcmp(end, "KiB")) m = 1024.0;
    else if (!strcmp(end, "MiB")) m = 1048576.0;
    else if (!strcmp(end, "GiB")) m = 1073741824.0;
    else return -1;
    *out = (uint64_t)(v * m);
    return 0;
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v <= 0 || v > 4096) return -1;
    *out = (int)v;
    return 0;
}

static void print_report(const sl_convert_stats *st, bool json, cJSON *j) {
    if (json) {
        cJSON *arr = cJSON_AddArrayToObject(j, "report");
        for (size_t i = 0; i < st->n_report; i++) {
            const sl_tensor_report *r = &st->report[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", r->name);
            cJSON_AddStringToObject(e, "status", r->status);
            if (r->bpw > 0) cJSON_AddNumberToObject(e, "bits_per_weight", r->bpw);
            if (r->bpw > 0 && r->n) {
                cJSON_AddNumberToObject(e, "elements", (double)r->n);
                cJSON_AddNumberToObject(e, "rmse", r->rmse);
                cJSON_AddNumberToObject(e, "max_abs_error", r->max_abs);
                cJSON_AddNumberToObject(e, "relative_error", r->rel);
            }
            if (r->bits) {
                cJSON_AddNumberToObject(e, "bits", r->bits);
                cJSON_AddNumberToObject(e, "group_size", r->group_size);
                cJSON_AddStringToObject(e, "mode", r->mode);
                cJSON_AddNumberToObject(e, "elements", (double)r->n);
                cJSON_AddNumberToObject(e, "rmse", r->rmse);
                cJSON_AddNumberToObject(e, "max_abs_error", r->max_abs);
                cJSON_AddNumberToObject(e, "relative_error", r->rel);
            }
            cJSON_AddItemToArray(arr, e);
        }
        cJSON_AddNumberToObject(j, "bits_per_weight", st->bits_per_weight);
        return;
    }
    printf("%-48s %-30s %4s %5s %12s %12s %10s\n", "tensor", "status", "bits", "group", "rmse", "max_abs", "rel_err");
    for (size_t i = 0; i < st->n_report; i++) {
        const sl_tensor_report *r = &st->report[i];
        if (r->bpw > 0 && r->n)
            printf("%-48s %-30s %4.4g %5s %12.6g %12.6g %10.4g\n", r->name, r->status, r->bpw, "-", r->rmse,
                   r->max_abs, r->rel);
        else if (r->bpw > 0)
            printf("%-48s %-30s %4.4g %5s %12s %12s %10s\n", r->name, r->status, r->bpw, "-", "-", "-", "-");
        else if (r->bits)
            printf("%-48s %-30s %4d %5d %12.6g %12.6g %10.4g\n", r->name, r->status, r->bits, r->group_size, r->rmse,
                   r->max_abs, r->rel);
        else
            printf("%-48s %-30s %4s %5s %12s %12s %10s\n", r->name, r->status, "-", "-", "-", "-", "-");
    }
    printf("bits per weight: %.3f (%llu parameters)\n", st->bits_per_weight, (unsigned long long)st->params);
}

/* What a conversion did, as a name suffix (mlx-community / GGUF repo style). */
static void derived_suffix(const sl_convert_opts *o, const char *to_name, char *buf, size_t n) {
    const char *dt = o->dtype == SL_F32 ? "-f32" : o->dtype == SL_F16 ? "-f16" : o->dtype == SL_BF16 ? "-bf16" : "";
    if (o->layout == SL_LAYOUT_MLX && o->q.enabled) {
        if (o->q.recipe) snprintf(buf, n, "-mlx-%s", o->q.recipe);
        else if (o->q.mode != SL_Q_AFFINE) snprintf(buf, n, "-mlx-%s", sl_q_mode_name(o->q.mode));
        else snprintf(buf, n, "-mlx-%dbit", o->q.bits ? o->q.bits : 4);
    } else if (o->layout == SL_LAYOUT_MLX) {
        snprintf(buf, n, "-mlx%s", dt);
    } else if (o->to == SL_FMT_GGUF) {
        const sl_gguf_mix *m = o->q.gguf_mix ? o->q.gguf_mix : o->q.enabled ? sl_gguf_mix_find("Q4_0") : NULL;
        if (m) snprintf(buf, n, "-%s", m->alias_of ? m->alias_of : m->name);
        else snprintf(buf, n, "-GGUF%s", dt);
    } else {
        snprintf(buf, n, "-%s%s", o->layout == SL_LAYOUT_HF ? "hf" : to_name ? to_name : sl_format_name(o->to), dt);
    }
}

/* DST names the store: org/name[:tag] shaped, and org/ is not a directory
 * here (so a path such as out/model, whose out/ exists, stays a path). */
static bool store_target(const char *dst) {
    if (!sl_reg_looks_like_name(dst)) return false;
    char org[128];
    size_t k = strcspn(dst, "/");
    snprintf(org, sizeof org, "%.*s", (int)(k < sizeof org ? k : sizeof org - 1), dst);
    return !sl_path_exists(org);
}

/* A name the output can be registered as: org/name[:tag], no @revision. */
static int check_new_name(const char *cmd, const char *what, const char *name) {
    sl_reg_name nm;
    sl_error err = {0};
    if (sl_reg_parse_name(name, &nm, &err)) return cli_usage(cmd, "%s: %s", what, err.msg);
    bool rev = nm.revision != NULL;
    sl_reg_name_free(&nm);
    if (rev) return cli_usage(cmd, "%s '%s': a new model takes no @revision (the store gives it one)", what, name);
    return 0;
}

/* The output inside a scratch directory: a directory ("model"), or one file
 * named after the model inside "model/". */
static char *scratch_output(const char *scratch, bool out_dir, const char *name, const sl_convert_opts *o) {
    size_t n = strlen(scratch) + strlen(name) + 32;
    char *p = malloc(n);
    if (!p) return NULL;
    if (out_dir) {
        snprintf(p, n, "%s/model", scratch);
        return p;
    }
    const char *base = strchr(name, '/') + 1;
    size_t bl = strcspn(base, ":");
    const char *ext = o->to == SL_FMT_GGUF ? "gguf" : o->to == SL_FMT_NPZ ? "npz" : o->to == SL_FMT_TORCH ? "bin" : "safetensors";
    snprintf(p, n, "%s/model", scratch);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) { free(p); return NULL; }
    snprintf(p, n, "%s/model/%.*s.%s", scratch, (int)bl, base, ext);
    return p;
}

/* Where the output goes and the name it is registered under (if any). */
typedef struct out_plan {
    char name[256];     /* org/name[:tag] to register, "" when not registered */
    bool to_store;      /* DST was a store name: written in scratch, moved in */
    char *scratch;      /* the scratch directory (to_store) */
    char *path;         /* where sl_convert_path writes */
} out_plan;

static int plan_output(const char *cmd, const sl_convert_opts *o, const char *to_name, bool src_dir,
                       const char *store_src, const char *dst, const char *name_opt, out_plan *op) {
    memset(op, 0, sizeof *op);
    op->to_store = store_target(dst);
    if (op->to_store && name_opt) return cli_usage(cmd, "--name and a store name as DST ('%s') both name the output", dst);
    if (op->to_store || name_opt) {
        const char *nm = op->to_store ? dst : name_opt;
        int rc = check_new_name(cmd, op->to_store ? "DST" : "--name", nm);
        if (rc) return rc;
        snprintf(op->name, sizeof op->name, "%s", nm);
    } else if (store_src) {   /* a model of its own, named after its source and what was done */
        char suffix[64];
        derived_suffix(o, to_name, suffix, sizeof suffix);
        snprintf(op->name, sizeof op->name, "%.*s%s", (int)strcspn(store_src, "@:"), store_src, suffix);
        sl_reg_name nm;
        if (sl_reg_parse_name(op->name, &nm, NULL))
            return cli_usage(cmd, "'%s' is too long for a store name; choose one with --name", op->name);
        sl_reg_name_free(&nm);
    }
    if (!op->to_store) {
        op->path = strdup(dst);
        return op->path ? 0 : 2;
    }
    sl_error err = {0};
    if (sl_reg_scratch_dir(&op->scratch, &err)) return cli_fail(&err);
    bool out_dir = o->layout != SL_LAYOUT_PLAIN || (src_dir && o->to != SL_FMT_GGUF);
    op->path = scratch_output(op->scratch, out_dir, op->name, o);
    if (!op->path) {
        sl_errorf(&err, SL_EIO, "%s: cannot prepare the output: %s", op->scratch, strerror(errno));
        rmdir(op->scratch);
        return cli_fail(&err);
    }
    return 0;
}

/* Remove what is left of the scratch directory (the move emptied it). */
static void plan_done(out_plan *op) {
    if (op->scratch) {
        char *model = malloc(strlen(op->scratch) + 8);
        if (model) {
            sprintf(model, "%s/model", op->scratch);
            if (strcmp(model, op->path) != 0) {   /* a one-file output: scratch/model/<file> */
                unlink(op->path);
                rmdir(model);
            }
        }
        free(model);
        rmdir(op->scratch);
    }
    free(op->scratch);
    free(op->path);
}

int cli_convert_main(int argc, char **argv, bool quantize_cmd) {
    const char *cmd = quantize_cmd ? "quantize" : "convert";
    const char *src = NULL, *dst = NULL, *v, *to_name = NULL, *name_opt = NULL;
    sl_convert_opts o = {.to = SL_FMT_UNKNOWN, .dtype = SL_DTYPE_INVALID};
    o.q.gguf_type = SL_DTYPE_INVALID;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        if (cli_is_help(argv[i])) {
            fputs(quantize_cmd ? k_quant_help : k_help, stdout);
            print_mixes();
            return 0;
        }
        if (!quantize_cmd && (v = cli_opt_value(argc, argv, &i, "--to", &missing))) {
            to_name = v;
            if (!strcmp(v, "mlx")) o.to = SL_FMT_SAFETENSORS, o.layout = SL_LAYOUT_MLX;
            else if ((o.to = sl_format_from_name(v)) == SL_FMT_UNKNOWN)
                return cli_usage(cmd, "unknown --to '%s' (expected mlx, hf, torch, gguf, safetensors or npz)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--dtype", &missing))) {
            o.dtype = sl_dtype_from_user(v);
            if (o.dtype == SL_DTYPE_INVALID) return cli_usage(cmd, "unknown --dtype '%s' (expected f32, f16 or bf16)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-shard-size", &missing))) {
            if (parse_size(v, &o.max_shard_bytes)) return cli_usage(cmd, "bad --max-shard-size '%s' (e.g. 5GB, 500MB)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--q-bits", &missing))) {
            if (parse_int(v, &o.q.bits)) return cli_usage(cmd, "bad --q-bits '%s' (2, 3, 4, 5, 6 or 8)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--q-group-size", &missing))) {
            if (parse_int(v, &o.q.group_size)) return cli_usage(cmd, "bad --q-group-size '%s' (32, 64 or 128)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--q-mode", &missing))) {
            if (sl_q_mode_from_name(v, &o.q.mode))
                return cli_usage(cmd, "unknown --q-mode '%s' (affine, mxfp4, mxfp8 or nvfp4)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--quant-recipe", &missing)) ||
                   (v = cli_opt_value(argc, argv, &i, "--quant-predicate", &missing))) {
            if (strcmp(v, "mixed_2_6") && strcmp(v, "mixed_3_4") && strcmp(v, "mixed_3_6") && strcmp(v, "mixed_4_6"))
                return cli_usage(cmd, "unknown --quant-recipe '%s' (mixed_2_6, mixed_3_4, mixed_3_6 or mixed_4_6)", v);
            o.q.recipe = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--name", &missing))) {
            name_opt = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--keep-float", &missing))) {
            o.q.keep_float = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--q-variant", &missing))) {
            if (!strcmp(v, "cpu")) o.q.variant = SL_Q_VARIANT_CPU;
            else if (!strcmp(v, "gpu")) o.q.variant = SL_Q_VARIANT_GPU;
            else return cli_usage(cmd, "unknown --q-variant '%s' (cpu or gpu)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--q-type", &missing))) {
            if (!(o.q.gguf_mix = sl_gguf_mix_find(v))) {
                char names[512];
                mix_names(names, sizeof names);
                return cli_usage(cmd, "unknown --q-type '%s' (expected one of %s)", v, names);
            }
        } else if ((v = cli_opt_value(argc, argv, &i, "--imatrix", &missing))) {
            return cli_usage(cmd, "--imatrix is not supported: silica quantizes without an importance matrix "
                                  "(llama-quantize's results without --imatrix)");
        } else if (missing) {
            return cli_usage(cmd, "option '%s' needs a value", argv[i]);
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quantize")) {
            o.q.enabled = true;
        } else if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--dequantize")) {
            o.dequantize = true;
        } else if (!strcmp(argv[i], "--report")) {
            o.report = true;
        } else if (!strcmp(argv[i], "--pure")) {
            o.q.gguf_pure = true;
        } else if (!strcmp(argv[i], "--force")) {
            o.force = true;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage(cmd, "unknown option '%s'", argv[i]);
        } else if (!src) src = argv[i];
        else if (!dst) dst = argv[i];
        else return cli_usage(cmd, "unexpected argument '%s'", argv[i]);
    }
    if (!src || !dst) return cli_usage(cmd, "expected SRC and DST");
    const char *store_src = NULL;   /* SRC may be a store name; the output is then registered (plan_output) */
    if (cli_resolve_store(&src, &store_src)) return 2;
    bool dir = sl_path_is_dir(src);
    if (quantize_cmd) {
        o.q.enabled = true;
        if (dir) o.to = SL_FMT_SAFETENSORS, o.layout = SL_LAYOUT_MLX;
        else o.to = SL_FMT_GGUF;
    } else {
        if (o.to == SL_FMT_UNKNOWN) return cli_usage(cmd, "missing --to FORMAT");
        /* hf: a transformers directory; torch from a quantized mlx-lm dir or with -d too */
        sl_error fe;
        if (to_name && !strcmp(to_name, "hf") && (dir || sl_detect_format(src, &fe) == SL_FMT_GGUF))
            o.layout = SL_LAYOUT_HF;   /* GGUF -> transformers directory */
        if (dir && o.to == SL_FMT_TORCH && (o.dequantize || sl_convert_dir_is_quantized(src))) o.layout = SL_LAYOUT_HF;
        if (dir && o.to == SL_FMT_SAFETENSORS && o.layout == SL_LAYOUT_PLAIN && (o.dequantize || sl_convert_dir_is_quantized(src)))
            o.layout = SL_LAYOUT_HF;
        if ((o.q.enabled || o.q.recipe) && o.layout != SL_LAYOUT_MLX && o.to != SL_FMT_GGUF)
            return cli_usage(cmd, "--quantize needs --to mlx or --to gguf");
        if (o.q.recipe) o.q.enabled = true;
    }
    out_plan op;
    int rc = plan_output(cmd, &o, to_name, dir, store_src, dst, name_opt, &op);
    if (rc) return rc;
    cli_progress pg;
    cli_progress_init(&pg, cmd);
    o.progress = cli_progress_cb;
    o.progress_ctx = &pg;
    sl_error err = {0};
    sl_convert_stats st;
    rc = sl_convert_path(src, op.path, &o, &st, &err);
    cli_progress_done(&pg);
    char label[400] = "";   /* org/name@revision of the registered output */
    if (!rc && op.name[0]) {
        sl_reg_derived d = {.src_name = store_src, .src_path = store_src ? NULL : src, .path = op.path,
                            .name = op.name, .move = op.scratch != NULL};
        rc = cli_register_derived(&d, argc, argv, label, sizeof label) ? SL_EIO : 0;
        if (rc) err.msg[0] = 0;   /* already printed */
    }
    plan_done(&op);
    if (rc) {
        sl_convert_stats_free(&st);
        return err.msg[0] ? cli_fail(&err) : 2;
    }
    char brief[300];   /* label with the revision cut to 12 hex, as list and show print it */
    const char *at = strchr(label, '@');
    snprintf(brief, sizeof brief, "%.*s%.13s", at ? (int)(at - label) : 0, label, at ? at : "");
    const char *shown = op.to_store ? label : dst;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", shown);
        if (label[0]) cJSON_AddStringToObject(j, "stored_as", label);
        cJSON_AddStringToObject(j, "format", o.layout == SL_LAYOUT_MLX ? "mlx" : sl_format_name(o.to));
        cJSON_AddNumberToObject(j, "tensors", (double)st.tensors);
        cJSON_AddNumberToObject(j, "bytes", (double)st.bytes_written);
        cJSON_AddNumberToObject(j, "files_written", st.files_written);
        cJSON_AddNumberToObject(j, "files_copied", st.files_copied);
        if (st.params) cJSON_AddNumberToObject(j, "parameters", (double)st.params);
        if (st.inexact) cJSON_AddNumberToObject(j, "inexact_repacks", (double)st.inexact);
        if (o.report) print_report(&st, true, j);
        print_fallbacks(&st, true, j);
        cli_print_json(j);
    } else {
        char b[32];
        printf("wrote %s: %llu tensors, %s in %u file(s)%s\n", op.to_store ? brief : dst, (unsigned long long)st.tensors,
               cli_human_bytes(st.bytes_written, b, sizeof b), st.files_written,
               st.files_copied ? " + config/tokenizer files" : "");
        if (label[0] && !op.to_store) printf("stored as %s (`silica show %s` for its lineage)\n", brief, op.name);
        if (st.inexact)
            printf("note: %llu quantization groups could not be repacked exactly (scale/bias not representable in f16)\n",
                   (unsigned long long)st.inexact);
        print_fallbacks(&st, false, NULL);
        if (o.report) print_report(&st, false, NULL);
    }
    sl_convert_stats_free(&st);
    return 0;
}

int cmd_convert(int argc, char **argv) { return cli_convert_main(argc, argv, false); }
