/*
 * convert.c — streaming format conversion of unquantized checkpoints
 * (files and model directories); see silica/convert.h.
 *
 * Data flow: sl_checkpoint_open (views into mmap'd files) -> per output file,
 * sl_writer_open with the tensor specs -> for each tensor in the writer's
 * order: sl_tensor_read() chunk by chunk (dtype conversion, strides, byte
 * order) -> sl_writer_write() -> release the source pages.
 *
 * Invariants:
 *  - At most one CHUNK_BYTES buffer of tensor data is held at any time.
 *  - Directory outputs are assembled in a temporary sibling directory and
 *    renamed into place only when every file is complete.
 */
#include "silica/convert.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/convert_impl.h"
#include "silica/gguf.h"
#include "silica/safetensors.h"
#include "silica/writer.h"

#define CHUNK_BYTES (8u << 20)
#define DEFAULT_SHARD_BYTES (5000000000ull) /* 5 GB, as transformers' save_pretrained */

sl_format sl_format_from_name(const char *n) {
    if (!strcmp(n, "safetensors") || !strcmp(n, "hf")) return SL_FMT_SAFETENSORS;
    if (!strcmp(n, "torch") || !strcmp(n, "pt") || !strcmp(n, "pytorch")) return SL_FMT_TORCH;
    if (!strcmp(n, "npz")) return SL_FMT_NPZ;
    if (!strcmp(n, "gguf")) return SL_FMT_GGUF;
    return SL_FMT_UNKNOWN;
}

sl_dtype sl_dtype_from_user(const char *n) {
    if (!strcmp(n, "f32") || !strcmp(n, "float32") || !strcmp(n, "F32")) return SL_F32;
    if (!strcmp(n, "f16") || !strcmp(n, "float16") || !strcmp(n, "F16")) return SL_F16;
    if (!strcmp(n, "bf16") || !strcmp(n, "bfloat16") || !strcmp(n, "BF16")) return SL_BF16;
    return SL_DTYPE_INVALID;
}

static sl_dtype out_dtype(const sl_tensor *t, sl_dtype want) {
    if (want == SL_DTYPE_INVALID) return t->dtype;
    switch (t->dtype) {
    case SL_F32: case SL_F16: case SL_BF16: case SL_F64: return want;
    default: return t->dtype;   /* ints, bools, f8, packed and quantized blocks stay as they are */
    }
}

typedef struct progress {
    const sl_convert_opts *o;
    uint64_t done, total;
} progress;

/* Stream one tensor into the writer. */
static int stream_tensor(const sl_checkpoint *ck, const sl_tensor *t, sl_dtype dt, sl_writer *w, uint8_t *buf,
                         progress *pg, sl_error *err) {
    size_t esz = sl_dtype_size(dt);
    if (esz == 0 || !sl_dtype_get(dt)->is_float || dt == t->dtype) {
        /* raw copy: same dtype (any layout via sl_tensor_read when byte-addressable) */
        if (sl_dtype_size(t->dtype) == 0) {
            if (!t->contiguous || t->big_endian)
                return sl_errorf(err, SL_EUNSUPPORTED, "tensor '%s': strided %s tensors are not supported", t->name,
                                 sl_dtype_name(t->dtype));
            uint64_t off = 0;
            while (off < t->nbytes) {
                size_t n = t->nbytes - off > CHUNK_BYTES ? CHUNK_BYTES : (size_t)(t->nbytes - off);
                int rc = sl_writer_write(w, t->data + off, n, err);
                if (rc) return rc;
                off += n;
                pg->done += n;
                if (pg->o->progress) pg->o->progress(pg->o->progress_ctx, pg->done, pg->total, t->name);
                if (sl_interrupted()) return sl_errorf(err, SL_EINTR, "interrupted");
            }
            sl_checkpoint_release(ck, t);
            return 0;
        }
        esz = sl_dtype_size(t->dtype);
        dt = t->dtype;
    }
    uint64_t per = CHUNK_BYTES / esz, first = 0;
    while (first < t->numel) {
        uint64_t n = t->numel - first > per ? per : t->numel - first;
        int rc = sl_tensor_read(t, first, n, dt, buf, err);
        if (!rc) rc = sl_writer_write(w, buf, (size_t)(n * esz), err);
        if (rc) return rc;
        first += n;
        pg->done += n * esz;
        if (pg->o->progress) pg->o->progress(pg->o->progress_ctx, pg->done, pg->total, t->name);
        if (sl_interrupted()) return sl_errorf(err, SL_EINTR, "interrupted");
    }
    sl_checkpoint_release(ck, t);
    return 0;
}

static int writer_metadata(const sl_checkpoint *ck, sl_format to, cJSON **out, sl_error *err) {
    *out = NULL;
    if (to == SL_FMT_GGUF)   /* keep every key's GGUF type so a rewrite is byte-identical */
        return ck->format == SL_FMT_GGUF ? sl_gguf_checkpoint_metadata(ck, out, err) : 0;
    if (to != SL_FMT_SAFETENSORS) return 0;
    cJSON *m = cJSON_CreateObject();
    if (ck->format == SL_FMT_SAFETENSORS)
        for (cJSON *e = ck->metadata->child; e; e = e->next)
            if (cJSON_IsString(e)) cJSON_AddStringToObject(m, e->string, e->valuestring);
    if (!cJSON_GetObjectItemCaseSensitive(m, "format")) cJSON_AddStringToObject(m, "format", "pt");
    *out = m;
    return 0;
}

/* Write tensors idx[0..n) of ck to one file. */
static int write_file(const sl_checkpoint *ck, const size_t *idx, size_t n, const char *path,
                      const sl_convert_opts *o, progress *pg, sl_convert_stats *st, sl_error *err) {
    sl_tensor_spec *specs = calloc(n ? n : 1, sizeof *specs);
    uint8_t *buf = malloc(CHUNK_BYTES);
    if (!specs || !buf) {
        free(specs);
        free(buf);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const sl_tensor *t = &ck->tensors[idx[i]];
        specs[i].name = t->name;
        specs[i].dtype = out_dtype(t, o->dtype);
        specs[i].ndim = t->ndim;
        memcpy(specs[i].shape, t->shape, sizeof t->shape);
    }
    cJSON *meta = NULL;
    sl_writer *w = NULL;
    int rc = writer_metadata(ck, o->to, &meta, err);
    if (!rc) rc = sl_writer_open(&w, o->to, path, specs, n, meta, err);
    cJSON_Delete(meta);
    if (!rc) {
        const size_t *order = sl_writer_order(w);
        for (size_t k = 0; k < n && !rc; k++) {
            const sl_tensor *t = &ck->tensors[idx[order[k]]];
            rc = stream_tensor(ck, t, specs[order[k]].dtype, w, buf, pg, err);
        }
        if (rc) sl_writer_abort(w);
        else rc = sl_writer_finish(w, err);
    }
    if (!rc) {
        st->files_written++;
        st->tensors += n;
    }
    free(specs);
    free(buf);
    return rc;
}

static uint64_t out_nbytes(const sl_tensor *t, sl_dtype want) {
    uint64_t nb = t->nbytes;
    sl_dtype_nbytes(out_dtype(t, want), t->numel, &nb);
    return nb;
}

/* ---- index.json, formatted as transformers writes it (indent 2, sorted keys) ---- */

int sl_convert_write_index_hf(const char *path, sl_name_file *nf, size_t n, uint64_t total_size,
                              uint64_t total_params, sl_error *err) {
    const char **names = malloc((n ? n : 1) * sizeof *names), **files = malloc((n ? n : 1) * sizeof *files);
    int rc = 0;
    if (!names || !files) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        names[i] = nf[i].name;
        files[i] = nf[i].file;
    }
    if (!rc) rc = sl_shard_index_write(path, names, files, n, total_size, (int64_t)total_params, err);
    free(names);
    free(files);
    return rc;
}

/* ---- directories ---- */

bool sl_convert_is_weight_file(const char *n) {
    static const char *ext[] = {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".npz", ".npy", NULL};
    for (int i = 0; ext[i]; i++)
        if (sl_str_ends_with(n, ext[i])) return true;
    return !strcmp(n, "model.safetensors.index.json") || !strcmp(n, "pytorch_model.bin.index.json");
}

static int copy_files(const char *src, const char *dst, bool model, sl_convert_stats *st, sl_error *err) {
    DIR *d = opendir(src);
    if (!d) return sl_errorf(err, SL_EIO, "%s: cannot list directory", src);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || sl_convert_is_weight_file(e->d_name)) continue;
        /* model conversions write their own config.json and model card */
        if (model && (!strcmp(e->d_name, "config.json") || !strcmp(e->d_name, "README.md"))) continue;
        char *s = sl_path_join(src, e->d_name);
        struct stat sb;
        if (stat(s, &sb) == 0 && S_ISREG(sb.st_mode)) {
            char *t = sl_path_join(dst, e->d_name);
            rc = sl_copy_file(s, t, err);
            if (!rc) st->files_copied++;
            free(t);
        }
        free(s);
    }
    closedir(d);
    return rc;
}

bool sl_convert_is_model_dir(const char *dir) {
    char *c = sl_path_join(dir, "config.json");
    bool yes = false;
    pj *cfg = NULL;
    if (c && sl_path_exists(c) && pj_load(c, &cfg, NULL) == 0) yes = pj_str(pj_get(cfg, "model_type")) != NULL;
    pj_free(cfg);
    free(c);
    return yes;
}

bool sl_convert_dir_is_quantized(const char *dir) {
    char *c = sl_path_join(dir, "config.json");
    bool yes = false;
    pj *cfg = NULL;
    if (c && sl_path_exists(c) && pj_load(c, &cfg, NULL) == 0) yes = pj_get(cfg, "quantization") != NULL;
    pj_free(cfg);
    free(c);
    return yes;
}

int sl_convert_copy_side_files(const char *src, const char *dst, sl_convert_stats *st, sl_error *err) {
    sl_convert_stats local = {0};
    return copy_files(src, dst, true, st ? st : &local, err);
}

void sl_convert_stats_free(sl_convert_stats *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_report; i++) free(st->report[i].name);
    free(st->report);
    st->report = NULL;
    st->n_report = 0;
    free(st->fallbacks);
    st->fallbacks = NULL;
    st->n_fallbacks = 0;
}

static const char *dir_stem(sl_format f) {
    switch (f) {
    case SL_FMT_SAFETENSORS: return "model";
    case SL_FMT_TORCH: return "pytorch_model";
    case SL_FMT_NPZ: return "weights";
    default: return "model";
    }
}

static const char *ext_of(sl_format f) {
    switch (f) {
    case SL_FMT_SAFETENSORS: return "safetensors";
    case SL_FMT_TORCH: return "bin";
    case SL_FMT_NPZ: return "npz";
    case SL_FMT_GGUF: return "gguf";
    default: return "bin";
    }
}

static int convert_dir(const sl_checkpoint *ck, const char *src, const char *dst, const sl_convert_opts *o,
                       progress *pg, sl_convert_stats *st, sl_error *err) {
    sl_outdir od;
    int rc = sl_outdir_open(&od, dst, o->force, err);
    if (rc) return rc;
    rc = copy_files(src, od.tmp_path, false, st, err);
    /* plan shards in checkpoint order; npz and gguf are always one file */
    uint64_t limit = o->max_shard_bytes ? o->max_shard_bytes : DEFAULT_SHARD_BYTES;
    bool shardable = o->to == SL_FMT_SAFETENSORS || o->to == SL_FMT_TORCH;
    size_t n = ck->n_tensors;
    uint32_t *shard_of = calloc(n ? n : 1, sizeof *shard_of);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    sl_name_file *nf = calloc(n ? n : 1, sizeof *nf);
    char **shard_names = NULL;
    uint32_t nshards = 1;
    uint64_t total_size = 0, total_params = 0, cur = 0;
    if (!shard_of || !idx || !nf) rc = rc ? rc : sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        uint64_t b = out_nbytes(&ck->tensors[i], o->dtype);
        if (shardable && cur > 0 && cur + b > limit) {
            nshards++;
            cur = 0;
        }
        shard_of[i] = nshards - 1;
        cur += b;
        total_size += b;
        total_params += ck->tensors[i].numel;
    }
    if (!rc) {
        shard_names = calloc(nshards, sizeof *shard_names);
        if (!shard_names) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (uint32_t s = 0; !rc && s < nshards; s++) {
        char name[256];
        if (nshards == 1) snprintf(name, sizeof name, "%s.%s", dir_stem(o->to), ext_of(o->to));
        else snprintf(name, sizeof name, "%s-%05u-of-%05u.%s", dir_stem(o->to), s + 1, nshards, ext_of(o->to));
        shard_names[s] = strdup(name);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (shard_of[i] == s) idx[k++] = i;
        char *path = sl_path_join(od.tmp_path, name);
        rc = write_file(ck, idx, k, path, o, pg, st, err);
        free(path);
    }
    if (!rc && nshards > 1) {
        for (size_t i = 0; i < n; i++) {
            nf[i].name = ck->tensors[i].name;
            nf[i].file = shard_names[shard_of[i]];
        }
        const char *iname = o->to == SL_FMT_SAFETENSORS ? "model.safetensors.index.json" : "pytorch_model.bin.index.json";
        char *ipath = sl_path_join(od.tmp_path, iname);
        rc = sl_convert_write_index_hf(ipath, nf, n, total_size, total_params, err);
        free(ipath);
    }
    if (!rc) rc = sl_outdir_commit(&od, err);
    else sl_outdir_abort(&od);
    if (shard_names)
        for (uint32_t s = 0; s < nshards; s++) free(shard_names[s]);
    free(shard_names);
    free(shard_of);
    free(idx);
    free(nf);
    return rc;
}

int sl_convert_path(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *stats,
                    sl_error *err) {
    sl_convert_stats local;
    sl_convert_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    int mrc = -1;
    if (o->layout == SL_LAYOUT_MLX) mrc = sl_convert_to_mlx(src, dst, o, st, err);
    else if (o->layout == SL_LAYOUT_HF) mrc = sl_convert_to_hf(src, dst, o, st, err);
    else if (o->to == SL_FMT_GGUF && ((sl_path_is_dir(src) && sl_convert_is_model_dir(src)) || o->q.enabled ||
                                      o->q.gguf_type != SL_DTYPE_INVALID || o->q.gguf_mix))
        mrc = sl_convert_to_gguf(src, dst, o, st, err);
    if (mrc >= 0) {
        if (st == &local) sl_convert_stats_free(st);
        return mrc;
    }
    if (o->to != SL_FMT_SAFETENSORS && o->to != SL_FMT_TORCH && o->to != SL_FMT_NPZ && o->to != SL_FMT_GGUF)
        return sl_errorf(err, SL_EINVAL, "unsupported output format (expected safetensors, torch, npz or gguf)");
    if (o->dtype != SL_DTYPE_INVALID && o->dtype != SL_F32 && o->dtype != SL_F16 && o->dtype != SL_BF16)
        return sl_errorf(err, SL_EINVAL, "unsupported --dtype (expected f32, f16 or bf16)");
    bool dir = sl_path_is_dir(src);
    if (!dir && sl_path_exists(dst) && !o->force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
    if (dir && sl_path_exists(dst) && !o->force)
        return sl_errorf(err, SL_EINVAL, "%s: already exists (use --force to replace it)", dst);
    sl_checkpoint *ck;
    int rc = sl_checkpoint_open(src, &ck, err);
    if (rc) return rc;
    progress pg = {.o = o};
    for (size_t i = 0; i < ck->n_tensors; i++) pg.total += out_nbytes(&ck->tensors[i], o->dtype);
    if (dir) {
        rc = convert_dir(ck, src, dst, o, &pg, st, err);
    } else {
        size_t *idx = malloc((ck->n_tensors ? ck->n_tensors : 1) * sizeof *idx);
        if (!idx) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else {
            for (size_t i = 0; i < ck->n_tensors; i++) idx[i] = i;
            rc = write_file(ck, idx, ck->n_tensors, dst, o, &pg, st, err);
            free(idx);
        }
    }
    st->bytes_written = pg.done;
    sl_checkpoint_close(ck);
    return rc;
}
