/*
 * st_tool.c — test tool driving the safetensors / npy / npz writers for
 * tests/py/test_safetensors.py and tests/py/test_numpy.py (peers: the
 * safetensors, numpy and mlx Python packages):
 *   st_tool write FMT SPEC OUT   FMT = safetensors|npz|npy; SPEC.json =
 *                                {"metadata": {...} | null, "tensors": [{"name",
 *                                "dtype", "shape", "file"}]}: raw tensor bytes
 *                                come from each "file"; streamed in the
 *                                writer's order in 7-byte chunks
 *   st_tool npy SRC NAME OUT     one tensor of any checkpoint as .npy (read
 *                                through sl_tensor_read: strides and byte order
 *                                resolved)
 *   st_tool index DIR TOTAL PARAMS NAME=FILE...   sl_safetensors_write_index
 *                                (PARAMS < 0 omits total_parameters)
 * Exit 0, or 2 with one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"
#include "silica/safetensors.h"

static int die(const sl_error *e) {
    fprintf(stderr, "st_tool: error: %s\n", e->msg);
    return 2;
}

static int usage(void) {
    fprintf(stderr, "usage: st_tool write FMT SPEC OUT | npy SRC NAME OUT | index DIR TOTAL PARAMS NAME=FILE...\n");
    return 2;
}

static int cmd_write(const char *fmt_s, const char *spec_path, const char *out) {
    sl_error err = {0};
    sl_format fmt = !strcmp(fmt_s, "safetensors") ? SL_FMT_SAFETENSORS
                    : !strcmp(fmt_s, "npz")        ? SL_FMT_NPZ
                    : !strcmp(fmt_s, "npy")        ? SL_FMT_NPY
                                                   : SL_FMT_UNKNOWN;
    if (fmt == SL_FMT_UNKNOWN) return usage();
    char *txt;
    size_t len;
    if (sl_read_file(spec_path, 1u << 24, &txt, &len, &err)) return die(&err);
    cJSON *spec = cJSON_Parse(txt);
    free(txt);
    cJSON *ts = cJSON_GetObjectItem(spec, "tensors");
    int n = cJSON_GetArraySize(ts);
    sl_tensor_spec *specs = calloc((size_t)n + 1, sizeof *specs);
    char **files = calloc((size_t)n + 1, sizeof *files);
    int i = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        specs[i].name = cJSON_GetObjectItem(t, "name")->valuestring;
        specs[i].dtype = sl_dtype_from_name(cJSON_GetObjectItem(t, "dtype")->valuestring);
        cJSON *sh = cJSON_GetObjectItem(t, "shape"), *d;
        cJSON_ArrayForEach(d, sh) specs[i].shape[specs[i].ndim++] = (int64_t)d->valuedouble;
        files[i] = cJSON_GetObjectItem(t, "file")->valuestring;
        i++;
    }
    cJSON *md = cJSON_GetObjectItem(spec, "metadata");
    sl_writer *w;
    int rc = sl_writer_open(&w, fmt, out, specs, (size_t)n, cJSON_IsNull(md) ? NULL : md, &err);
    if (!rc) {
        const size_t *order = sl_writer_order(w);
        for (int k = 0; k < n && !rc; k++) {
            char *buf;
            size_t bl;
            rc = sl_read_file(files[order[k]], 1u << 30, &buf, &bl, &err);
            for (size_t off = 0; !rc && off < bl; off += 7)
                rc = sl_writer_write(w, buf + off, bl - off < 7 ? bl - off : 7, &err);
            if (!rc) free(buf);
        }
        if (rc) sl_writer_abort(w);
        else rc = sl_writer_finish(w, &err);
    }
    free(specs);
    free(files);
    cJSON_Delete(spec);
    return rc ? die(&err) : 0;
}

static int cmd_npy(const char *src, const char *name, const char *out) {
    sl_error err = {0};
    sl_checkpoint *ck;
    if (sl_checkpoint_open(src, &ck, &err)) return die(&err);
    const sl_tensor *t = sl_checkpoint_find(ck, name);
    int rc = 0;
    if (!t) rc = sl_errorf(&err, SL_EINVAL, "%s: no tensor '%s'", src, name);
    sl_tensor_spec s = {0};
    uint8_t *buf = NULL;
    if (!rc) {
        s.name = t->name;
        s.dtype = t->dtype;
        s.ndim = t->ndim;
        memcpy(s.shape, t->shape, sizeof s.shape);
        buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        rc = sl_tensor_read(t, 0, t->numel, t->dtype, buf, &err);
    }
    sl_writer *w;
    if (!rc) rc = sl_writer_open(&w, SL_FMT_NPY, out, &s, 1, NULL, &err);
    if (!rc) {
        rc = sl_writer_write(w, buf, (size_t)t->nbytes, &err);
        if (rc) sl_writer_abort(w);
        else rc = sl_writer_finish(w, &err);
    }
    free(buf);
    sl_checkpoint_close(ck);
    return rc ? die(&err) : 0;
}

static int cmd_index(int argc, char **argv) {
    const char *dir = argv[2];
    uint64_t total = strtoull(argv[3], NULL, 10);
    int64_t params = strtoll(argv[4], NULL, 10);
    int n = argc - 5;
    const char **names = calloc((size_t)n + 1, sizeof *names), **files = calloc((size_t)n + 1, sizeof *files);
    for (int i = 0; i < n; i++) {
        char *eq = strrchr(argv[5 + i], '=');
        if (!eq) return usage();
        *eq = 0;
        names[i] = argv[5 + i];
        files[i] = eq + 1;
    }
    sl_error err = {0};
    int rc = sl_safetensors_write_index(dir, names, files, (size_t)n, total, params, &err);
    free(names);
    free(files);
    return rc ? die(&err) : 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "write")) return cmd_write(argv[2], argv[3], argv[4]);
    if (argc == 5 && !strcmp(argv[1], "npy")) return cmd_npy(argv[2], argv[3], argv[4]);
    if (argc >= 5 && !strcmp(argv[1], "index")) return cmd_index(argc, argv);
    return usage();
}
