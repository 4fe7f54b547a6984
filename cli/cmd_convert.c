/*
 * cmd_convert.c — `silica convert SRC DST --to FORMAT [--dtype D]`: stream a
 * checkpoint (file or model directory) into another container format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"
#include "silica/convert.h"

static const char *k_help =
    "usage: silica convert SRC DST --to safetensors|torch|npz|gguf [--dtype f32|f16|bf16]\n"
    "                      [--max-shard-size SIZE] [--force] [--json]\n\n"
    "Convert unquantized tensors between formats, streaming tensor by tensor (memory\n"
    "stays near one 8 MiB chunk whatever the model size).  SRC is a file or a model\n"
    "directory; for a directory DST is a directory that receives the weights\n"
    "(model.safetensors / pytorch_model.bin / weights.npz / model.gguf, sharded with an\n"
    "index.json above --max-shard-size) plus every config/tokenizer file of SRC.\n"
    "Output is written under a temporary name and renamed at the end: a failure or\n"
    "Ctrl-C leaves nothing behind.\n\n"
    "options:\n"
    "  --to FORMAT            safetensors (alias hf), torch (alias pt), npz, gguf\n"
    "  --dtype D              convert floating-point tensors to f32, f16 or bf16\n"
    "                         (round-to-nearest-even; integer tensors are kept)\n"
    "  --max-shard-size SIZE  shard size for directories, e.g. 5GB (default), 500MB\n"
    "  --force                replace DST if it exists\n"
    "  --json                 print a JSON summary\n"
    "  --help                 this text\n";

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

int cmd_convert(int argc, char **argv) {
    const char *src = NULL, *dst = NULL, *v;
    sl_convert_opts o = {.to = SL_FMT_UNKNOWN, .dtype = SL_DTYPE_INVALID};
    bool json = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        if ((v = cli_opt_value(argc, argv, &i, "--to", &missing))) {
            o.to = sl_format_from_name(v);
            if (o.to == SL_FMT_UNKNOWN)
                return cli_usage("convert", "unknown --to '%s' (expected safetensors, torch, npz or gguf)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--dtype", &missing))) {
            o.dtype = sl_dtype_from_user(v);
            if (o.dtype == SL_DTYPE_INVALID) return cli_usage("convert", "unknown --dtype '%s' (expected f32, f16 or bf16)", v);
        } else if ((v = cli_opt_value(argc, argv, &i, "--max-shard-size", &missing))) {
            if (parse_size(v, &o.max_shard_bytes)) return cli_usage("convert", "bad --max-shard-size '%s' (e.g. 5GB, 500MB)", v);
        } else if (missing) {
            return cli_usage("convert", "option '%s' needs a value", argv[i]);
        } else if (!strcmp(argv[i], "--force")) {
            o.force = true;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("convert", "unknown option '%s'", argv[i]);
        } else if (!src) src = argv[i];
        else if (!dst) dst = argv[i];
        else return cli_usage("convert", "unexpected argument '%s'", argv[i]);
    }
    if (!src || !dst) return cli_usage("convert", "expected SRC and DST");
    if (o.to == SL_FMT_UNKNOWN) return cli_usage("convert", "missing --to FORMAT");
    cli_progress pg;
    cli_progress_init(&pg, "convert");
    o.progress = cli_progress_cb;
    o.progress_ctx = &pg;
    sl_error err = {0};
    sl_convert_stats st;
    int rc = sl_convert_path(src, dst, &o, &st, &err);
    cli_progress_done(&pg);
    if (rc) return cli_fail(&err);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "output", dst);
        cJSON_AddStringToObject(j, "format", sl_format_name(o.to));
        cJSON_AddNumberToObject(j, "tensors", (double)st.tensors);
        cJSON_AddNumberToObject(j, "bytes", (double)st.bytes_written);
        cJSON_AddNumberToObject(j, "files_written", st.files_written);
        cJSON_AddNumberToObject(j, "files_copied", st.files_copied);
        cli_print_json(j);
    } else {
        char b[32];
        printf("wrote %s: %llu tensors, %s in %u file(s)%s\n", dst, (unsigned long long)st.tensors,
               cli_human_bytes(st.bytes_written, b, sizeof b), st.files_written,
               st.files_copied ? " + config/tokenizer files" : "");
    }
    return 0;
}
