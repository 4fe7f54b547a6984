/*
 * load.c — what `silica fit MODEL` names: a model directory or weights file
 * (headers only, via sl_checkpoint_open), a directory holding only a
 * config.json (pre-download), a config.json, or a catalog name
 * (data/models/NAME.json: $SILICA_DATA_DIR, else the installed copy, else
 * the source tree's).
 *
 * Invariants: catalog names are plain ([A-Za-z0-9._-], no '/'), so a name
 * can never escape the catalog directory; a missing path that is not a
 * catalog name is one error line pointing at `silica fit --list`.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "estimate/estimate_impl.h"
#include "silica/checkpoint.h"
#include "silica/io.h"
#include "silica/memory.h"

#ifndef SILICA_DATA_DIR
#define SILICA_DATA_DIR "data"
#endif

/* ---- catalog ---- */

/* $SILICA_DATA_DIR/models, else the installed share/silica/data/models
 * (sl_installed_path), else the source tree's data/models. */
const char *sl_fit_catalog_dir(void) {
    static char dir[1024];
    const char *e = getenv("SILICA_DATA_DIR");
    if (!(e && *e) && sl_installed_path("data/models", dir, sizeof dir)) return dir;
    snprintf(dir, sizeof dir, "%s/models", e && *e ? e : SILICA_DATA_DIR);
    return dir;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int sl_fit_catalog_list(char ***names, size_t *n, sl_error *err) {
    *names = NULL;
    *n = 0;
    const char *dir = sl_fit_catalog_dir();
    DIR *d = opendir(dir);
    if (!d) return sl_errorf(err, SL_EIO, "%s: cannot list the model catalog", dir);
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) && !rc) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(*names, cap * sizeof *nn);
            if (!nn) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); break; }
            *names = nn;
        }
        if (!((*names)[*n] = strndup(e->d_name, l - 5))) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else (*n)++;
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, cmp_str);
    return rc;
}

static int load_json(const char *path, cJSON **out, sl_error *err) {
    char *buf = NULL;
    size_t len = 0;
    int rc = sl_read_file(path, 16u << 20, &buf, &len, err);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) {
        size_t off = end ? (size_t)(end - buf) : 0;
        free(buf);
        return sl_errorf(err, SL_EINVAL, "%s: not valid JSON (at byte %zu)", path, off);
    }
    free(buf);
    *out = j;
    return 0;
}

static bool dir_has_weights(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;
        found = sl_str_ends_with(n, ".safetensors") || sl_str_ends_with(n, ".bin") || sl_str_ends_with(n, ".gguf") ||
                sl_str_ends_with(n, ".pt") || sl_str_ends_with(n, ".pth") || sl_str_ends_with(n, ".npz");
    }
    closedir(d);
    return found;
}

static int from_config_file(const char *path, const char *name, sl_fit_model **out, sl_error *err) {
    cJSON *cfg = NULL;
    int rc = load_json(path, &cfg, err);
    if (rc) return rc;
    rc = sl_fit_model_from_config(cfg, name, out, err);
    /* catalog files name their source: "https://huggingface.co/ORG/NAME/blob/..." */
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(cfg, "_source");
    const char *pre = "https://huggingface.co/";
    if (!rc && cJSON_IsString(src) && !strncmp(src->valuestring, pre, strlen(pre))) {
        const char *r = src->valuestring + strlen(pre), *slash = strchr(r, '/');
        const char *end = slash ? strchr(slash + 1, '/') : NULL;
        if (end && (size_t)(end - r) < sizeof (*out)->repo) snprintf((*out)->repo, sizeof (*out)->repo, "%.*s", (int)(end - r), r);
    }
    cJSON_Delete(cfg);
    return rc;
}

int sl_fit_model_load(const char *model, sl_fit_model **out, sl_error *err) {
    *out = NULL;
    if (!model || !*model) return sl_errorf(err, SL_EINVAL, "no model given");
    if (sl_path_is_dir(model)) {
        char *cfgp = sl_path_join(model, "config.json");
        if (!cfgp) return sl_errorf(err, SL_ENOMEM, "out of memory");
        if (!dir_has_weights(model)) {
            int rc;
            if (sl_path_exists(cfgp)) {
                rc = from_config_file(cfgp, model, out, err);
                if (!rc) fit_note(*out, "%s: no weight files: sizes predicted from config.json", model);
            } else {
                rc = sl_errorf(err, SL_EINVAL, "%s: neither weight files nor config.json in this directory", model);
            }
            free(cfgp);
            return rc;
        }
        free(cfgp);
    } else if (sl_path_exists(model)) {
        if (sl_str_ends_with(model, ".json")) return from_config_file(model, model, out, err);
    } else {
        /* a catalog name: data/models/NAME.json */
        bool plain = strlen(model) < 128 && !strchr(model, '/');
        for (const char *p = model; plain && *p; p++) plain = isalnum((unsigned char)*p) || strchr("._-", *p);
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.json", sl_fit_catalog_dir(), model);
        if (plain && sl_path_exists(path)) return from_config_file(path, model, out, err);
        return sl_errorf(err, SL_EINVAL,
                         "%s: no such file or directory, and not a catalog model (see `silica fit --list`)", model);
    }
    sl_checkpoint *ck = NULL;
    int rc = sl_checkpoint_open(model, &ck, err);
    if (rc) return rc;
    if (!ck->config && ck->format != SL_FMT_GGUF && !sl_path_is_dir(model)) {
        /* a single weights file: config.json beside it */
        char *dir = strdup(model);
        if (dir) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            char *cfgp = sl_path_join(slash ? dir : ".", "config.json");
            cJSON *cfg = NULL;
            sl_error e2;
            if (cfgp && sl_path_exists(cfgp) && load_json(cfgp, &cfg, &e2) == 0) ck->config = cfg;
            free(cfgp);
            free(dir);
        }
    }
    rc = fit_model_from_checkpoint(ck, model, out, err);
    sl_checkpoint_close(ck);
    return rc;
}
