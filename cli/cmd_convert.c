/*
 * cmd_convert.c — `silica convert SRC DST --to FORMAT [options]` and
 * `silica quantize SRC DST [options]` (convert into the source's own
 * format family, quantized): option parsing, the --report table / JSON.
 * The work itself is sl_convert_path (src/convert/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"
#include "silica/convert.h"

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
    "options:\n"
    "  -q, --quantize         quantize Linear/Embedding weights (--to mlx)\n"
    "  --q-bits B             2, 3, 4, 5, 6, 8 (affine; default 4)\n"
    "  --q-group-size G       32, 64, 128 (affine; default 64)\n"
    "  --q-mode M             affine (default), mxfp4, mxfp8, nvfp4\n"
    "  --quant-recipe R       mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6 (mlx-lm's recipes)\n"
    "  --keep-float P1,P2     keep modules whose name contains a pattern in float\n"
    "  --q-variant cpu|gpu    MLX affine rounding of the CPU (default) or the Metal kernel\n"
    "  --q-type T             GGUF tensor type: Q4_0, Q4_1, Q8_0, Q4_K, Q6_K, F16, F32\n"
    "  --dtype D              float tensors (and scales) become f32, f16 or bf16\n"
    "  -d, --dequantize       quantized MLX weights back to float\n"
    "  --report               per-tensor quantization error and bits per weight\n"
    "  --max-shard-size SIZE  shard size for directories, e.g. 5GB, 500MB\n"
    "  --force                replace DST if it exists\n"
    "  --json                 print a JSON summary (with --report: the report)\n"
    "  --help                 this text\n";

static const char *k_quant_help =
    "usage: silica quantize SRC DST [-q options]\n\n"
    "Quantize a model into its own format family: an HF or mlx-lm directory becomes an\n"
    "mlx-lm directory (as `silica convert SRC DST --to mlx -q`), a GGUF file a GGUF file\n"
    "(--q-type, default Q4_0).  Options as for `silica convert`: --q-bits, --q-group-size,\n"
    "--q-mode, --quant-recipe, --keep-float, --q-variant, --q-type, --dtype, --report,\n"
    "--json, --force, --max-shard-size.\n";

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
        if (r->bits)
            printf("%-48s %-30s %4d %5d %12.6g %12.6g %10.4g\n", r->name, r->status, r->bits, r->group_size, r->rmse,
                   r->max_abs, r->rel);
        else
            printf("%-48s %-30s %4s %5s %12s %12s %10s\n", r->name, r->status, "-", "-", "-", "-", "-");
    }
    printf("bits per weight: %.3f (%llu parameters)\n", st->bits_per_weight, (unsigned long long)st->params);
}

int cli_convert_main(int argc, char **argv, bool quantize_cmd) {
    const char *cmd = quantize_cmd ? "quantize" : "convert";
    const char *src = NULL, *dst = NULL, *v, *to_name = NULL;
    sl_convert_opts o = {.to = SL_FMT_UNKNOWN, .dtype = SL_DTYPE_INVALID};
    o.q.gguf_type = SL_DTYPE_INVALID;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        if (cli_is_help(argv[i])) { fputs(quantize_cmd ? k_quant_help : k_help, stdout); return 0; }
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
        } else if ((v = cli_opt_value(argc, argv, &i, "--keep-float", &missing))) {
            o.q.keep_float = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--q-variant", &missing))) {
            if (!strcmp(v, "cpu")) o.q.variant = SL_Q_VARIANT_CPU;
            else if (!strcmp(v, "gpu")) o.q.variant = SL_Q_VARIANT_GPU;
            else return cli_usage(cmd, "unknown --q-variant '%s' (cpu or gpu)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--q-type", &missing))) {
            o.q.gguf_type = sl_dtype_from_name(v);
            if (o.q.gguf_type != SL_Q4_0 && o.q.gguf_type != SL_Q4_1 && o.q.gguf_type != SL_Q8_0 &&
                o.q.gguf_type != SL_Q4_K && o.q.gguf_type != SL_Q6_K && o.q.gguf_type != SL_F16 &&
                o.q.gguf_type != SL_F32)
                return cli_usage(cmd, "unknown --q-type '%s' (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K, F16 or F32)", v);
        } else if (missing) {
            return cli_usage(cmd, "option '%s' needs a value", argv[i]);
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quantize")) {
            o.q.enabled = true;
        } else if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--dequantize")) {
            o.dequantize = true;
        } else if (!strcmp(argv[i], "--report")) {
            o.report = true;
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
    const char *store_src = NULL;   /* registry: SRC may be a store name; the output is then registered */
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
    cli_progress pg;
    cli_progress_init(&pg, cmd);
    o.progress = cli_progress_cb;
    o.progress_ctx = &pg;
    sl_error err = {0};
    sl_convert_stats st;
    int rc = sl_convert_path(src, dst, &o, &st, &err);
    cli_progress_done(&pg);
    if (rc) {
        sl_convert_stats_free(&st);
        return cli_fail(&err);
    }
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", dst);
        cJSON_AddStringToObject(j, "format", o.layout == SL_LAYOUT_MLX ? "mlx" : sl_format_name(o.to));
        cJSON_AddNumberToObject(j, "tensors", (double)st.tensors);
        cJSON_AddNumberToObject(j, "bytes", (double)st.bytes_written);
        cJSON_AddNumberToObject(j, "files_written", st.files_written);
        cJSON_AddNumberToObject(j, "files_copied", st.files_copied);
        if (st.params) cJSON_AddNumberToObject(j, "parameters", (double)st.params);
        if (st.inexact) cJSON_AddNumberToObject(j, "inexact_repacks", (double)st.inexact);
        if (o.report) print_report(&st, true, j);
        cli_print_json(j);
    } else {
        char b[32];
        printf("wrote %s: %llu tensors, %s in %u file(s)%s\n", dst, (unsigned long long)st.tensors,
               cli_human_bytes(st.bytes_written, b, sizeof b), st.files_written,
               st.files_copied ? " + config/tokenizer files" : "");
        if (st.inexact)
            printf("note: %llu quantization groups could not be repacked exactly (scale/bias not representable in f16)\n",
                   (unsigned long long)st.inexact);
        if (o.report) print_report(&st, false, NULL);
    }
    sl_convert_stats_free(&st);
    if (store_src) cli_register_derived(store_src, dst, argc, argv);
    return 0;
}

int cmd_convert(int argc, char **argv) { return cli_convert_main(argc, argv, false); }
