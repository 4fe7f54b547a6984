/*
 * model_registry.c — part 7's tour of the store API: import a model
 * directory as a version, tag it, list the store, resolve a name to a local
 * path and open the checkpoint there, show the lineage, verify every blob.
 *
 *   model_registry DIR ORG/NAME        (store: $SILICA_HOME)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "silica/checkpoint.h"
#include "silica/registry.h"

static int fail(const sl_error *err) {
    fprintf(stderr, "model_registry: %s\n", err->msg);
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: model_registry DIR ORG/NAME\n");
        return 2;
    }
    sl_error err = {0};
    sl_reg *r;
    if (sl_reg_open(NULL, &r, &err)) return fail(&err);

    /* 1. a new version: every file hashed, hard-linked into blobs/ */
    sl_reg_lineage lin = {.kind = "import", .endpoint = argv[1]};
    sl_reg_version *v;
    if (sl_reg_import_dir(r, argv[1], argv[2], NULL, NULL, &lin, &v, &err)) return fail(&err);
    printf("imported %s@%.12s: %zu files, format %s, %" PRId64 " parameters\n", v->model, v->revision, v->n_files,
           v->format, v->params);
    for (size_t i = 0; i < v->n_files; i++)
        printf("  %-28s %10" PRIu64 "  sha256:%.16s...\n", v->files[i].path, v->files[i].size, v->files[i].sha256);

    /* 2. a tag, then a derived name sharing the same blobs */
    char tagged[512], copy[512];
    snprintf(tagged, sizeof tagged, "%s:example", v->model);
    snprintf(copy, sizeof copy, "%s-copy", v->model);
    if (sl_reg_tag(r, v->model, tagged, &err) || sl_reg_tag(r, tagged, copy, &err)) return fail(&err);

    /* 3. list */
    sl_reg_version **all;
    size_t n;
    if (sl_reg_list(r, false, &all, &n, &err)) return fail(&err);
    printf("store %s holds %zu versions\n", sl_reg_home(r), n);
    sl_reg_versions_free(all, n);

    /* 4. a name is a path: open the checkpoint through it */
    char *path;
    if (sl_reg_resolve(tagged, &path, &err)) return fail(&err);
    sl_checkpoint *ck;
    if (sl_checkpoint_open(path, &ck, &err)) return fail(&err);
    printf("%s -> %s: %zu tensors\n", tagged, path, ck->n_tensors);
    sl_checkpoint_close(ck);
    free(path);

    /* 5. lineage of the copy */
    sl_reg_version *c;
    if (sl_reg_find(r, copy, &c, &err)) return fail(&err);
    sl_reg_version **chain;
    size_t nc;
    if (sl_reg_lineage_chain(r, c, &chain, &nc, &err)) return fail(&err);
    printf("lineage of %s: %s (from %s)", copy, c->lineage.kind, c->lineage.parent);
    for (size_t i = 0; i < nc; i++) printf(" <- %s@%.12s %s", chain[i]->model, chain[i]->revision, chain[i]->lineage.kind);
    printf("\n");
    sl_reg_versions_free(chain, nc);
    sl_reg_version_free(c);

    /* 6. verify: rehash every blob */
    uint64_t bad;
    if (sl_reg_verify(r, NULL, false, NULL, NULL, &bad, &err)) return fail(&err);
    printf("verify: %" PRIu64 " problems\n", bad);
    sl_reg_version_free(v);
    sl_reg_close(r);
    return bad ? 1 : 0;
}
