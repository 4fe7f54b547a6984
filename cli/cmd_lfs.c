/*
 * cmd_lfs.c — `silica lfs`: Git LFS pointers and remotes.
 *   silica lfs pointer FILE            the pointer git-lfs would write for FILE
 *   silica lfs parse POINTER [--json]  check a pointer file, print oid and size
 *   silica lfs fetch REMOTE DIR NAME   a checkout of pointer files + its LFS
 *                                      remote -> a new store version NAME
 *   silica lfs push NAME REMOTE [--pointers DIR]
 *                                      upload a version's files as LFS objects;
 *                                      DIR receives the pointer files to commit
 * REMOTE: file:///path/repo.git (or a path) or http(s)://host/repo.git (batch API).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "silica/lfs.h"
#include "silica/registry.h"

static const char *k_help =
    "usage: silica lfs pointer FILE\n"
    "       silica lfs parse POINTER [--json]\n"
    "       silica lfs fetch REMOTE DIR NAME\n"
    "       silica lfs push NAME REMOTE [--pointers DIR]\n\n"
    "Git LFS without git-lfs.  `pointer` prints the pointer file git-lfs writes for\n"
    "FILE (byte-identical).  `fetch` reads the pointer files of a checkout DIR (e.g.\n"
    "`GIT_LFS_SKIP_SMUDGE=1 git clone`), downloads their objects from REMOTE, checks\n"
    "each sha256 and size, and adds the model to the store as NAME.  `push` uploads\n"
    "the files of store version NAME as LFS objects; with --pointers DIR it also\n"
    "writes the pointer files (weights) and plain files (config, tokenizer) plus\n"
    ".gitattributes into DIR, ready to commit and `git push`.\n\n"
    "REMOTE is file:///path/repo.git (objects under lfs/objects/aa/bb/OID) or\n"
    "http(s)://host/repo.git (the batch API at REMOTE/info/lfs, basic transfers;\n"
    "credentials from git's credential helpers after a 401, or user:password@ in the URL).\n";

static int cmd_pointer(const char *file) {
    sl_lfs_pointer p;
    sl_error err = {0};
    if (sl_lfs_pointer_for_file(file, &p, &err)) return cli_fail(&err);
    char out[SL_LFS_POINTER_MAX];
    size_t n = sl_lfs_pointer_format(&p, out, sizeof out);
    fwrite(out, 1, n, stdout);
    return 0;
}

static int cmd_parse(const char *file, bool json) {
    sl_error err = {0};
    char *buf = NULL;
    size_t len = 0;
    sl_lfs_pointer p;
    if (sl_read_file(file, SL_LFS_POINTER_MAX, &buf, &len, &err)) return cli_fail(&err);
    int rc = sl_lfs_pointer_parse((const uint8_t *)buf, len, file, &p, &err);
    free(buf);
    if (rc) return cli_fail(&err);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "oid", p.oid);
        cJSON_AddNumberToObject(o, "size", (double)p.size);
        cJSON *e = cJSON_AddArrayToObject(o, "extensions");
        for (int i = 0; i < p.n_ext; i++) cJSON_AddItemToArray(e, cJSON_CreateString(p.ext[i]));
        cli_print_json(o);
    } else {
        printf("oid sha256:%s\nsize %llu\n", p.oid, (unsigned long long)p.size);
    }
    return 0;
}

static int cmd_fetch(const char *remote, const char *dir, const char *name) {
    sl_error err = {0};
    sl_reg *r = NULL;
    sl_reg_version *v = NULL;
    size_t nobj = 0;
    int rc = sl_reg_open(NULL, &r, &err);
    if (!rc) rc = sl_reg_lfs_fetch(r, remote, dir, name, &v, &nobj, &err);
    if (!rc) printf("%s@%.12s: %zu files (%zu LFS objects fetched)\n", v->model, v->revision, v->n_files, nobj);
    sl_reg_version_free(v);
    sl_reg_close(r);
    return rc ? cli_fail(&err) : 0;
}

static int cmd_push(const char *name, const char *remote, const char *pointers) {
    sl_error err = {0};
    sl_reg *r = NULL;
    sl_reg_version *v = NULL;
    int rc = sl_reg_open(NULL, &r, &err);
    if (!rc) rc = sl_reg_lfs_push(r, name, remote, pointers, &v, &err);
    if (!rc) printf("pushed %s@%.12s: %zu LFS objects to %s\n", v->model, v->revision, v->n_files, remote);
    sl_reg_version_free(v);
    sl_reg_close(r);
    return rc ? cli_fail(&err) : 0;
}

int cmd_lfs(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(k_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    const char *pos[3] = {0};
    int np = 0;
    bool json = false;
    const char *pointers = NULL, *v;
    for (int i = 2; i < argc; i++) {
        bool missing = false;
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        if (!strcmp(argv[i], "--json")) json = true;
        else if ((v = cli_opt_value(argc, argv, &i, "--pointers", &missing))) pointers = v;
        else if (missing) return cli_usage("lfs", "option '%s' needs a value", argv[i]);
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage("lfs", "unknown option '%s'", argv[i]);
        else if (np < 3) pos[np++] = argv[i];
        else return cli_usage("lfs", "unexpected argument '%s'", argv[i]);
    }
    if (!strcmp(sub, "pointer")) return np == 1 ? cmd_pointer(pos[0]) : cli_usage("lfs", "pointer expects FILE");
    if (!strcmp(sub, "parse")) return np == 1 ? cmd_parse(pos[0], json) : cli_usage("lfs", "parse expects POINTER");
    if (!strcmp(sub, "fetch")) return np == 3 ? cmd_fetch(pos[0], pos[1], pos[2]) : cli_usage("lfs", "fetch expects REMOTE DIR NAME");
    if (!strcmp(sub, "push")) return np == 2 ? cmd_push(pos[0], pos[1], pointers) : cli_usage("lfs", "push expects NAME REMOTE");
    return cli_usage("lfs", "unknown subcommand '%s'", sub);
}
