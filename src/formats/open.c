/*
 * open.c — sl_checkpoint_open(): from a path (file or model directory) to a
 * checkpoint, choosing the format reader from magic bytes.
 *
 * Directory rules, in order:
 *   1. model.safetensors.index.json  -> every shard named in weight_map
 *   2. pytorch_model.bin.index.json  -> every shard named in weight_map
 *   3. files ending .safetensors, else .bin .pt .pth, else .gguf, else .npz (sorted)
 * With an index, every tensor of weight_map must exist in the shard it names.
 * GGUF: a directory holds one model — one file, or one llama.cpp split set
 * (gguf-split's PREFIX-%05d-of-%05d.gguf names, parts 1..N all present, the
 * first file's split.count equal to N); several unrelated GGUFs are an error
 * that lists them.  A split part given as a file opens its whole set.
 * config.json, when present, is parsed into ck->config.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "silica/checkpoint.h"
#include "formats/formats_impl.h"

#define MAX_INDEX_BYTES (64u << 20)
#define MAX_CONFIG_BYTES (16u << 20)

sl_format sl_detect_format(const char *path, sl_error *err) {
    uint8_t buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sl_errorf(err, SL_EIO, "%s: cannot open: %s", path, strerror(errno));
        return SL_FMT_UNKNOWN;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        sl_errorf(err, SL_EIO, "%s: cannot read: %s", path, strerror(errno));
        return SL_FMT_UNKNOWN;
    }
    if (n == 0) {
        sl_errorf(err, SL_EINVAL, "%s: empty file, expected a checkpoint", path);
        return SL_FMT_UNKNOWN;
    }
    if (sl_lfs_is_pointer(buf, (size_t)n)) {
        sl_errorf(err, SL_ELFS, "%s: is a Git LFS pointer, not weights: run `git lfs pull`", path);
        return SL_FMT_UNKNOWN;
    }
    if (n >= 4 && memcmp(buf, "GGUF", 4) == 0) return SL_FMT_GGUF;
    if (n >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0) return SL_FMT_NPY;
    if (n >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0)
        return sl_str_ends_with(path, ".npz") ? SL_FMT_NPZ : SL_FMT_TORCH;
    if (n >= 4 && memcmp(buf, "PK\x05\x06", 4) == 0)   /* empty zip */
        return sl_str_ends_with(path, ".npz") ? SL_FMT_NPZ : SL_FMT_TORCH;
    /* safetensors before legacy torch: a header length of 0x2_80..0x5_ff starts 0x80 0x02..0x05 */
    if (n >= 9 && buf[8] == '{') return SL_FMT_SAFETENSORS;
    if (n >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) return SL_FMT_TORCH_LEGACY;
    if (sl_str_ends_with(path, ".safetensors")) return SL_FMT_SAFETENSORS;  /* let the reader say what is wrong */
    if (sl_str_ends_with(path, ".gguf")) return SL_FMT_GGUF;
    if (sl_str_ends_with(path, ".npy")) return SL_FMT_NPY;
    if (sl_str_ends_with(path, ".npz")) return SL_FMT_NPZ;
    if (sl_str_ends_with(path, ".bin") || sl_str_ends_with(path, ".pt") || sl_str_ends_with(path, ".pth"))
        return SL_FMT_TORCH;
    sl_errorf(err, SL_EUNSUPPORTED,
              "%s: unrecognised file (expected safetensors, PyTorch .bin/.pt, .npy/.npz or GGUF)", path);
    return SL_FMT_UNKNOWN;
}

/* gguf-split's part name PREFIX-NNNNN-of-MMMMM.gguf: *plen the prefix length. */
static bool split_name(const char *name, size_t *plen, unsigned *no, unsigned *count) {
    static const char tail[] = "-00000-of-00000.gguf";
    size_t n = strlen(name), t = sizeof tail - 1;
    if (n <= t) return false;
    const char *s = name + n - t;
    unsigned a = 0, b = 0;
    for (size_t i = 0; i < t; i++) {
        if (tail[i] == '0') {
            if (s[i] < '0' || s[i] > '9') return false;
            if (i < 6) a = a * 10 + (unsigned)(s[i] - '0');
            else b = b * 10 + (unsigned)(s[i] - '0');
        } else if (s[i] != tail[i]) {
            return false;
        }
    }
    if (a == 0 || b == 0 || a > b) return false;
    *plen = n - t;
    *no = a;
    *count = b;
    return true;
}

/* names[0..n) (sorted .gguf names of one directory) must be one model: one
 * file or a complete split set (then sorted order is part order). */
static int gguf_one_model(const char *dir, char *const *names, size_t n, sl_error *err) {
    if (n <= 1) return 0;
    size_t p0 = 0, p = 0;
    unsigned no = 0, cnt = 0, cnt0 = 0;
    bool set = true;
    for (size_t i = 0; i < n && set; i++) {
        set = split_name(names[i], &p, &no, &cnt) && no == i + 1 && (i == 0 || (cnt == cnt0 && p == p0 &&
                                                                                   !strncmp(names[i], names[0], p)));
        if (i == 0) p0 = p, cnt0 = cnt;
    }
    if (set && cnt0 == n) return 0;
    char list[512];
    size_t k = 0;
    list[0] = 0;
    for (size_t i = 0; i < n && k + 8 < sizeof list; i++) {
        int w = snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= sizeof list - k) {
            snprintf(list + k, sizeof list - k, ", ...");
            break;
        }
        k += (size_t)w;
    }
    if (set) return sl_errorf(err, SL_EINVAL, "%s: split GGUF %.*s has %zu of its %u parts (%s)", dir, (int)p0, names[0], n,
                              cnt0, list);
    return sl_errorf(err, SL_EINVAL, "%s: holds %zu GGUF models (%s): pass the path of one of them", dir, n, list);
}

/* A split set's parts beside `path` (a part), in order; or just path. */
static int gguf_split_parts(const char *path, char ***out, size_t *n_out, sl_error *err) {
    const char *base = sl_path_basename(path);
    size_t plen, dl = (size_t)(base - path);
    unsigned no, cnt = 1;
    bool split = split_name(base, &plen, &no, &cnt) && cnt > 1;
    char **v = calloc(cnt, sizeof *v);
    if (!v) return sl_errorf(err, SL_ENOMEM, "out of memory");
    for (unsigned i = 0; i < cnt; i++) {
        size_t len = strlen(path) + 1;
        if (!(v[i] = malloc(len))) {
            for (unsigned k = 0; k < i; k++) free(v[k]);
            free(v);
            return sl_errorf(err, SL_ENOMEM, "out of memory");
        }
        if (!split) memcpy(v[i], path, len);
        else snprintf(v[i], len, "%.*s%.*s-%05u-of-%05u.gguf", (int)dl, path, (int)plen, base, i + 1, cnt);
    }
    for (unsigned i = 0; i < cnt; i++)
        if (!sl_path_exists(v[i])) {
            int rc = sl_errorf(err, SL_EINVAL, "%s: split GGUF part %u of %u is missing (%s)", path, i + 1, cnt, v[i]);
            for (unsigned k = 0; k < cnt; k++) free(v[k]);
            free(v);
            return rc;
        }
    *out = v;
    *n_out = cnt;
    return 0;
}

/* The first file's split.count (llama.cpp's gguf-split key), when present,
 * must match the parts found. */
static int check_split_count(const sl_checkpoint *ck, sl_error *err) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(ck->metadata, "split.count");
    if (ck->n_files > 1 && (!cJSON_IsNumber(c) || c->valuedouble != (double)ck->n_files))
        return sl_errorf(err, SL_EINVAL, "%s: split.count is %s, but the split set has %zu parts", ck->files[0],
                         cJSON_IsNumber(c) ? "not that" : "missing", ck->n_files);
    return 0;
}

static int read_one(sl_checkpoint *ck, sl_format f, const char *path, sl_error *err) {
    switch (f) {
    case SL_FMT_SAFETENSORS: return sl_safetensors_read(ck, path, err);
    case SL_FMT_TORCH:
    case SL_FMT_TORCH_LEGACY: return sl_torch_read(ck, path, err);
    case SL_FMT_NPY: return sl_npy_read(ck, path, err);
    case SL_FMT_NPZ: return sl_npz_read(ck, path, err);
    case SL_FMT_GGUF: return sl_gguf_read(ck, path, err);
    default: return sl_errorf(err, SL_EUNSUPPORTED, "%s: unsupported format", path);
    }
}

static int load_json(const char *path, uint64_t max, cJSON **out, sl_error *err) {
    char *txt;
    size_t len;
    int rc = sl_read_file(path, max, &txt, &len, err);
    if (rc) return rc;
    const char *end = NULL;
    /* len + 1: cJSON's require_null_terminated check needs the NUL that
     * sl_read_file appends inside the length, else a file that ends right
     * after its closing brace (mlx-lm's config.json) is rejected. */
    cJSON *j = cJSON_ParseWithLengthOpts(txt, len + 1, &end, 1);
    if (!j) {
        long off = end ? (long)(end - txt) : -1;
        free(txt);
        return sl_errorf(err, SL_EINVAL, "%s: invalid JSON near byte %ld", path, off);
    }
    free(txt);
    *out = j;
    return 0;
}

/* Shards listed by an index.json weight_map, in first-seen order. */
static int open_indexed(sl_checkpoint *ck, const char *dir, const char *index_name, sl_format f, sl_error *err) {
    char *ipath = sl_path_join(dir, index_name);
    cJSON *idx = NULL;
    int rc = load_json(ipath, MAX_INDEX_BYTES, &idx, err);
    if (rc) { free(ipath); return rc; }
    cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(wm)) {
        rc = sl_errorf(err, SL_EINVAL, "%s: field 'weight_map' missing or not an object", ipath);
        goto done;
    }
    cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || strcmp(e->valuestring, "..") == 0) {
            rc = sl_errorf(err, SL_EINVAL, "%s: weight_map['%s'] must be a shard file name in the same directory",
                           ipath, e->string);
            goto done;
        }
        bool seen = false;
        for (cJSON *p = wm->child; p != e; p = p->next)
            if (strcmp(p->valuestring, e->valuestring) == 0) { seen = true; break; }
        if (seen) continue;
        char *shard = sl_path_join(dir, e->valuestring);
        if (!sl_path_exists(shard)) {
            rc = sl_errorf(err, SL_EINVAL, "%s: shard '%s' named in weight_map is missing", ipath, e->valuestring);
            free(shard);
            goto done;
        }
        sl_format sf = sl_detect_format(shard, err);
        rc = sf == SL_FMT_UNKNOWN ? (err ? err->code : SL_EINVAL) : read_one(ck, sf, shard, err);
        free(shard);
        if (rc) goto done;
        if (f == SL_FMT_TORCH && sf == SL_FMT_TORCH_LEGACY) ck->format = SL_FMT_TORCH_LEGACY;
    }
    /* every tensor named must be where the index says */
    cJSON_ArrayForEach(e, wm) {
        const sl_tensor *t = sl_checkpoint_find(ck, e->string);
        if (!t) {
            rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s' is in weight_map but in no shard", ipath, e->string);
            goto done;
        }
        if (strcmp(sl_path_basename(ck->files[t->file]), e->valuestring) != 0) {
            rc = sl_errorf(err, SL_EINVAL, "%s: tensor '%s' is in '%s', but weight_map says '%s'", ipath, e->string,
                           sl_path_basename(ck->files[t->file]), e->valuestring);
            goto done;
        }
    }
    cJSON *md = cJSON_GetObjectItemCaseSensitive(idx, "metadata");
    if (cJSON_IsObject(md)) cJSON_AddItemToObject(ck->metadata, "index", cJSON_Duplicate(md, 1));
done:
    cJSON_Delete(idx);
    free(ipath);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool has_ext(const char *n, const char *const *exts) {
    for (; *exts; exts++)
        if (sl_str_ends_with(n, *exts)) return true;
    return false;
}

static int open_dir(sl_checkpoint *ck, const char *dir, sl_error *err) {
    int rc = 0;
    char *cfg = sl_path_join(dir, "config.json");
    if (sl_path_exists(cfg)) {
        rc = load_json(cfg, MAX_CONFIG_BYTES, &ck->config, err);
        if (!rc && !cJSON_IsObject(ck->config)) rc = sl_errorf(err, SL_EINVAL, "%s: expected a JSON object", cfg);
    }
    free(cfg);
    if (rc) return rc;

    static const char *const st_idx = "model.safetensors.index.json";
    static const char *const pt_idx = "pytorch_model.bin.index.json";
    char *p = sl_path_join(dir, st_idx);
    bool have = sl_path_exists(p);
    free(p);
    if (have) { ck->format = SL_FMT_SAFETENSORS; return open_indexed(ck, dir, st_idx, SL_FMT_SAFETENSORS, err); }
    p = sl_path_join(dir, pt_idx);
    have = sl_path_exists(p);
    free(p);
    if (have) { ck->format = SL_FMT_TORCH; return open_indexed(ck, dir, pt_idx, SL_FMT_TORCH, err); }

    static const char *const groups[4][4] = {
        {".safetensors", NULL}, {".bin", ".pt", ".pth", NULL}, {".gguf", NULL}, {".npz", NULL}};
    DIR *d = opendir(dir);
    if (!d) return sl_errorf(err, SL_EIO, "%s: cannot list directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int group = 4;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        for (int g = 0; g < 4 && g <= group; g++) {
            if (!has_ext(de->d_name, groups[g])) continue;
            if (g < group) {   /* a better group: forget what we had */
                for (size_t i = 0; i < n; i++) free(names[i]);
                n = 0;
                group = g;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                char **nn = realloc(names, cap * sizeof *nn);
                if (!nn) { closedir(d); for (size_t i = 0; i < n; i++) free(names[i]); free(names); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
                names = nn;
            }
            names[n++] = strdup(de->d_name);
            break;
        }
    }
    closedir(d);
    if (n == 0) {
        free(names);
        return sl_errorf(err, SL_EINVAL,
                         "%s: no weights found (expected *.safetensors, *.bin, *.gguf or *.npz, or an index.json)", dir);
    }
    qsort(names, n, sizeof *names, cmp_str);
    if (group == 2) rc = gguf_one_model(dir, names, n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        char *fp = sl_path_join(dir, names[i]);
        sl_format f = sl_detect_format(fp, err);
        if (f == SL_FMT_UNKNOWN) rc = err ? err->code : SL_EINVAL;
        else {
            if (i == 0) ck->format = f;
            rc = read_one(ck, f, fp, err);
        }
        free(fp);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!rc && group == 2) rc = check_split_count(ck, err);
    return rc;
}

static int open_file(sl_checkpoint *ck, const char *path, sl_error *err) {
    sl_format f = sl_detect_format(path, err);
    if (f == SL_FMT_UNKNOWN) return err ? err->code : SL_EINVAL;
    ck->format = f;
    if (f != SL_FMT_GGUF) return read_one(ck, f, path, err);
    char **parts = NULL;
    size_t n = 0;
    int rc = gguf_split_parts(path, &parts, &n, err);
    for (size_t i = 0; i < n && !rc; i++) rc = read_one(ck, f, parts[i], err);
    for (size_t i = 0; i < n; i++) free(parts[i]);
    free(parts);
    return rc ? rc : check_split_count(ck, err);
}

int sl_checkpoint_open(const char *path, sl_checkpoint **out, sl_error *err) {
    *out = NULL;
    if (!sl_path_exists(path)) return sl_errorf(err, SL_EIO, "%s: no such file or directory", path);
    sl_checkpoint *ck = sl_checkpoint_new(SL_FMT_UNKNOWN, path);
    if (!ck) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc;
    if (sl_path_is_dir(path)) {
        rc = open_dir(ck, path, err);
    } else {
        rc = open_file(ck, path, err);
    }
    if (rc) {
        sl_checkpoint_close(ck);
        return rc ? rc : SL_EINVAL;
    }
    *out = ck;
    return 0;
}

int sl_checkpoint_gguf_path(const char *path, char **gguf, sl_error *err) {
    *gguf = NULL;
    if (!sl_path_is_dir(path)) {
        if (sl_detect_format(path, NULL) != SL_FMT_GGUF) return 0;
        char **parts = NULL;
        size_t n = 0;
        int rc = gguf_split_parts(path, &parts, &n, err);
        if (rc) return rc;
        for (size_t i = 1; i < n; i++) free(parts[i]);
        *gguf = parts[0];
        free(parts);
        return 0;
    }
    static const char *const other[] = {".safetensors", ".bin", ".pt", ".pth", "model.safetensors.index.json",
                                        "pytorch_model.bin.index.json", NULL};
    DIR *d = opendir(path);
    if (!d) return sl_errorf(err, SL_EIO, "%s: cannot list directory: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    bool others = false;
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (has_ext(de->d_name, other)) others = true;
        if (!sl_str_ends_with(de->d_name, ".gguf")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    if (!rc && n && !others) {
        qsort(names, n, sizeof *names, cmp_str);
        rc = gguf_one_model(path, names, n, err);
        if (!rc && !(*gguf = sl_path_join(path, names[0]))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}
