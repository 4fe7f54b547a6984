/*
 * gguf_tool.c — test tool driving the GGUF reader/writer and the typed API of
 * silica/gguf.h for tests/py/test_gguf.py (the peer there is gguf-py):
 *   gguf_tool dump FILE          typed view as JSON: version, alignment,
 *                                data_offset, typed metadata, tensor infos, and
 *                                every element of each array read back through
 *                                sl_gguf_array_get / the scalar getters
 *   gguf_tool rewrite IN OUT     GGUF -> GGUF keeping every key's type (typed
 *                                metadata + tensors streamed from the mapping)
 *   gguf_tool tensor FILE NAME OUT   raw bytes of one tensor, read through
 *                                sl_checkpoint_open + sl_tensor_read
 *   gguf_tool write SPEC OUT     SPEC.json = {"metadata": {...}, "tensors":
 *                                [{"name","dtype","shape","file"}]}: raw tensor
 *                                bytes come from each "file"
 * Exit 0, or 2 with one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"

static int die(const sl_error *e) {
    fprintf(stderr, "gguf_tool: error: %s\n", e->msg);
    return 2;
}

static cJSON *elem_json(const sl_gguf_value *v) {
    if (v->type == SL_GGUF_STRING) {
        char *s = malloc((size_t)v->len + 1);
        memcpy(s, v->data, (size_t)v->len);
        s[v->len] = 0;
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    if (v->type == SL_GGUF_ARRAY) {
        cJSON *a = cJSON_CreateArray();
        for (uint64_t i = 0; i < v->len; i++) {
            sl_gguf_value e;
            if (sl_gguf_array_get(v, i, &e)) break;
            cJSON_AddItemToArray(a, elem_json(&e));
        }
        return a;
    }
    if (v->type == SL_GGUF_BOOL) return cJSON_CreateBool(v->data[0]);
    double d;
    sl_gguf_value_f64(v, &d);
    return cJSON_CreateNumber(d);
}

static int dump(const char *path) {
    sl_error err = {0};
    sl_gguf *g;
    if (sl_gguf_open(path, &g, &err)) return die(&err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", sl_gguf_version(g));
    cJSON_AddNumberToObject(o, "alignment", sl_gguf_alignment(g));
    cJSON_AddNumberToObject(o, "data_offset", (double)sl_gguf_data_offset(g));
    cJSON_AddItemToObject(o, "metadata", sl_gguf_metadata_json(g, true));
    cJSON *elems = cJSON_AddObjectToObject(o, "elements");
    cJSON *gets = cJSON_AddObjectToObject(o, "getters");
    for (size_t i = 0; i < sl_gguf_n_kv(g); i++) {
        const char *k = sl_gguf_key(g, i);
        sl_gguf_value v;
        sl_gguf_kv_value(g, i, &v);
        if (v.type == SL_GGUF_ARRAY) cJSON_AddItemToObject(elems, k, elem_json(&v));
        /* the getters: report what each accepts */
        cJSON *r = cJSON_CreateObject();
        uint32_t u32; int32_t i32; int64_t i64; uint64_t u64; float f32; bool b; const char *s; size_t sl;
        if (!sl_gguf_get_u32(g, k, &u32, NULL)) cJSON_AddNumberToObject(r, "u32", u32);
        if (!sl_gguf_get_i32(g, k, &i32, NULL)) cJSON_AddNumberToObject(r, "i32", i32);
        if (!sl_gguf_get_i64(g, k, &i64, NULL)) cJSON_AddNumberToObject(r, "i64", (double)i64);
        if (!sl_gguf_get_u64(g, k, &u64, NULL)) cJSON_AddNumberToObject(r, "u64", (double)u64);
        if (!sl_gguf_get_f32(g, k, &f32, NULL)) cJSON_AddNumberToObject(r, "f32", f32);
        if (!sl_gguf_get_bool(g, k, &b, NULL)) cJSON_AddBoolToObject(r, "bool", b);
        if (!sl_gguf_get_str(g, k, &s, &sl, NULL)) cJSON_AddNumberToObject(r, "strlen", (double)sl);
        cJSON_AddItemToObject(gets, k, r);
    }
    cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
    for (size_t i = 0; i < sl_gguf_n_tensors(g); i++) {
        const sl_gguf_tensor_info *t = sl_gguf_tensor(g, i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddNumberToObject(e, "ggml_type", t->ggml_type);
        cJSON_AddStringToObject(e, "dtype", sl_dtype_name(t->dtype));
        cJSON *ne = cJSON_AddArrayToObject(e, "ne");
        for (uint32_t d = 0; d < t->n_dims; d++) cJSON_AddItemToArray(ne, cJSON_CreateNumber((double)t->ne[d]));
        cJSON_AddNumberToObject(e, "offset", (double)t->offset);
        cJSON_AddNumberToObject(e, "nbytes", (double)t->nbytes);
        cJSON_AddItemToArray(ts, e);
    }
    char *txt = cJSON_PrintUnformatted(o);
    puts(txt);
    free(txt);
    cJSON_Delete(o);
    sl_gguf_close(g);
    return 0;
}

static int rewrite(const char *in, const char *out) {
    sl_error err = {0};
    sl_checkpoint *ck;
    if (sl_checkpoint_open(in, &ck, &err)) return die(&err);
    cJSON *md = NULL;
    sl_tensor_spec *specs = calloc(ck->n_tensors + 1, sizeof *specs);
    sl_writer *w = NULL;
    int rc = sl_gguf_checkpoint_metadata(ck, &md, &err);
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const sl_tensor *t = &ck->tensors[i];
        specs[i].name = t->name;
        specs[i].dtype = t->dtype;
        specs[i].ndim = t->ndim;
        memcpy(specs[i].shape, t->shape, sizeof t->shape);
    }
    if (!rc) rc = sl_writer_open(&w, SL_FMT_GGUF, out, specs, ck->n_tensors, md, &err);
    for (size_t k = 0; !rc && k < ck->n_tensors; k++) {
        const sl_tensor *t = &ck->tensors[sl_writer_order(w)[k]];
        rc = sl_writer_write(w, t->data, (size_t)t->nbytes, &err);
    }
    if (w) {
        if (!rc) rc = sl_writer_finish(w, &err);
        else sl_writer_abort(w);
    }
    cJSON_Delete(md);
    free(specs);
    sl_checkpoint_close(ck);
    return rc ? die(&err) : 0;
}

static int write_spec(const char *spec_path, const char *out) {
    sl_error err = {0};
    char *txt;
    size_t len;
    if (sl_read_file(spec_path, 1u << 26, &txt, &len, &err)) return die(&err);
    cJSON *spec = cJSON_Parse(txt);
    free(txt);
    if (!spec) {
        fprintf(stderr, "gguf_tool: error: %s: invalid JSON\n", spec_path);
        return 2;
    }
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(spec, "metadata");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(spec, "tensors");
    size_t n = (size_t)cJSON_GetArraySize(ts);
    sl_tensor_spec *specs = calloc(n + 1, sizeof *specs);
    const char **files = calloc(n + 1, sizeof *files);
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        specs[i].name = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
        specs[i].dtype = sl_dtype_from_name(cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring);
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape"), *d;
        cJSON_ArrayForEach(d, sh) specs[i].shape[specs[i].ndim++] = (int64_t)d->valuedouble;
        files[i] = cJSON_GetObjectItemCaseSensitive(t, "file")->valuestring;
        i++;
    }
    sl_writer *w = NULL;
    int rc = sl_writer_open(&w, SL_FMT_GGUF, out, specs, n, md, &err);
    for (size_t k = 0; !rc && k < n; k++) {
        sl_mapping *m = NULL;
        rc = sl_map_file(files[sl_writer_order(w)[k]], &m, &err);
        /* stream in small chunks to exercise the driver */
        for (uint64_t off = 0; !rc && off < m->size; off += 7) {
            size_t c = m->size - off < 7 ? (size_t)(m->size - off) : 7;
            rc = sl_writer_write(w, m->data + off, c, &err);
        }
        sl_unmap(m);
    }
    if (w) {
        if (!rc) rc = sl_writer_finish(w, &err);
        else sl_writer_abort(w);
    }
    free(specs);
    free(files);
    cJSON_Delete(spec);
    return rc ? die(&err) : 0;
}

static int tensor_bytes(const char *path, const char *name, const char *out) {
    sl_error err = {0};
    sl_checkpoint *ck;
    if (sl_checkpoint_open(path, &ck, &err)) return die(&err);
    const sl_tensor *t = sl_checkpoint_find(ck, name);
    int rc = t ? 0 : sl_errorf(&err, SL_EINVAL, "%s: no tensor '%s'", path, name);
    void *buf = malloc(t && t->nbytes ? (size_t)t->nbytes : 1);
    if (!rc) rc = sl_tensor_read(t, 0, t->numel, t->dtype, buf, &err);
    if (!rc) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(buf, 1, (size_t)t->nbytes, f) != t->nbytes) rc = sl_errorf(&err, SL_EIO, "%s: write failed", out);
        if (f) fclose(f);
    }
    free(buf);
    sl_checkpoint_close(ck);
    return rc ? die(&err) : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "dump") == 0) return dump(argv[2]);
    if (argc == 4 && strcmp(argv[1], "rewrite") == 0) return rewrite(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "tensor") == 0) return tensor_bytes(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "write") == 0) return write_spec(argv[2], argv[3]);
    fprintf(stderr, "usage: gguf_tool dump FILE | rewrite IN OUT | tensor FILE NAME OUT | write SPEC.json OUT\n");
    return 2;
}
