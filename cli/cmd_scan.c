/*
 * cmd_scan.c — `silica scan PATH [--json]`: list every pickle import (GLOBAL,
 * INST, STACK_GLOBAL) of a PyTorch file, or of each .bin/.pt/.pth/.ckpt/.pkl
 * file of a directory, and whether silica's allowlist loader accepts it.
 * Nothing is executed.  Exit: 0 clean, 1 an import outside the allowlist
 * (named on stderr), 2 unreadable input or usage.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "silica/torch.h"

static const char *k_help =
    "usage: silica scan PATH [--json]\n\n"
    "List the Python imports (pickle GLOBALs) a PyTorch checkpoint would perform\n"
    "when unpickled, without executing anything, and whether silica's allowlist\n"
    "loader accepts each (OrderedDict, torch._utils rebuild functions, torch\n"
    "storage classes and dtypes).  PATH is a torch.save file (zip or legacy), a\n"
    "raw pickle, or a directory (its *.bin, *.pt, *.pth, *.ckpt, *.pkl files).\n\n"
    "exit status: 0 all imports allowed, 1 something outside the allowlist (the\n"
    "first offender is named on stderr), 2 unreadable input.\n\n"
    "options:\n"
    "  --json   {\"files\": [{\"path\", \"imports\": [{\"pickle\", \"global\", \"via\",\n"
    "           \"offset\", \"allowed\"}]}], \"unsafe\": N}\n"
    "  --help   this text\n";

typedef struct scan_out {
    bool json;
    cJSON *imports;      /* of the current file (json) */
    size_t n_unsafe, n_total;
    char first_bad[640];
} scan_out;

static int on_import(void *ud, const sl_pickle_import *imp) {
    scan_out *o = ud;
    o->n_total++;
    char full[600];
    snprintf(full, sizeof full, "%s.%s", imp->module, imp->name);
    if (!imp->allowed) {
        if (!o->n_unsafe)
            snprintf(o->first_bad, sizeof o->first_bad, "%s: %s: %s '%s' is not allowed", imp->file, imp->pickle,
                     imp->via, full);
        o->n_unsafe++;
    }
    if (o->json) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "pickle", imp->pickle);
        cJSON_AddStringToObject(e, "global", full);
        cJSON_AddStringToObject(e, "via", imp->via);
        cJSON_AddNumberToObject(e, "offset", (double)imp->offset);
        cJSON_AddBoolToObject(e, "allowed", imp->allowed);
        cJSON_AddItemToArray(o->imports, e);
    } else {
        printf("%-8s %s: %s: %s%s\n", imp->allowed ? "allowed" : "UNSAFE", imp->file, imp->pickle, full,
               strcmp(imp->via, "GLOBAL") ? (strcmp(imp->via, "INST") ? " (via STACK_GLOBAL)" : " (via INST)") : "");
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool scannable(const char *n) {
    static const char *const ext[] = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", NULL};
    for (int i = 0; ext[i]; i++)
        if (sl_str_ends_with(n, ext[i])) return true;
    return false;
}

/* Files to scan: PATH itself, or the matching files of a directory (sorted). */
static int list_files(const char *path, char ***out, size_t *n, sl_error *err) {
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    if (!sl_path_is_dir(path)) {
        *out = malloc(sizeof **out);
        if (!*out || !((*out)[0] = strdup(path))) { free(*out); *out = NULL; return sl_errorf(err, SL_ENOMEM, "out of memory"); }
        *n = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return sl_errorf(err, SL_EIO, "%s: cannot list directory", path);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !scannable(de->d_name)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(*out, cap * sizeof *nn);
            if (!nn) break;
            *out = nn;
        }
        (*out)[(*n)++] = sl_path_join(path, de->d_name);
    }
    closedir(d);
    if (*n == 0) return sl_errorf(err, SL_EINVAL, "%s: no .bin/.pt/.pth/.ckpt/.pkl files to scan", path);
    qsort(*out, *n, sizeof **out, cmp_str);
    return 0;
}

int cmd_scan(int argc, char **argv) {
    const char *path = NULL;
    scan_out o = {0};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        if (strcmp(argv[i], "--json") == 0) o.json = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("scan", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage("scan", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage("scan", "missing PATH");
    sl_error err = {0};
    if (!sl_path_exists(path)) {
        sl_errorf(&err, SL_EIO, "%s: no such file or directory", path);
        return cli_fail(&err);
    }
    char **files;
    size_t n;
    if (list_files(path, &files, &n, &err)) return cli_fail(&err);
    cJSON *root = o.json ? cJSON_CreateObject() : NULL;
    cJSON *jfiles = root ? cJSON_AddArrayToObject(root, "files") : NULL;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (o.json) o.imports = cJSON_CreateArray();
        rc = sl_torch_scan(files[i], on_import, &o, &err);
        if (o.json) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "path", files[i]);
            cJSON_AddItemToObject(f, "imports", o.imports);
            cJSON_AddItemToArray(jfiles, f);
        }
    }
    for (size_t i = 0; i < n; i++) free(files[i]);
    free(files);
    if (rc) {
        cJSON_Delete(root);
        fflush(stdout);
        return cli_fail(&err);
    }
    if (o.json) {
        cJSON_AddNumberToObject(root, "unsafe", (double)o.n_unsafe);
        cli_print_json(root);
    } else {
        printf("%zu import%s, %zu outside the allowlist\n", o.n_total, o.n_total == 1 ? "" : "s", o.n_unsafe);
    }
    if (o.n_unsafe) {
        fflush(stdout);
        fprintf(stderr, "silica scan: %s\n", o.first_bad);
        return 1;
    }
    return 0;
}
