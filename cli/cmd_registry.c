/*
 * cmd_registry.c — the store commands: `silica list`, `show`, `tag`, `rm`,
 * `gc`, `verify`, `du`.  The store is $SILICA_HOME (see `silica list --help`);
 * models in the Hugging Face cache are listed too (source "hf-cache").
 * Exit codes: 0 ok, 1 verify found problems, 2 bad input (one stderr line).
 */
#define _GNU_SOURCE   /* realpath */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "progress.h"
#include "silica/registry.h"

static const char *k_store_note =
    "The store is $SILICA_HOME (default ~/.cache/silica); models in the Hugging Face\n"
    "cache ($HF_HUB_CACHE or $HF_HOME/hub) are visible too, without copying.\n"
    "Names: org/name[@revision][:tag]; a bare org/name is the newest version.\n";

static int open_store(sl_reg **r) {
    sl_error err = {0};
    if (sl_reg_open(NULL, r, &err)) return cli_fail(&err);
    return 0;
}

static void iso_time(double t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void ago(double t, char *buf, size_t n) {
    double d = (double)time(NULL) - t;
    if (d < 60) snprintf(buf, n, "just now");
    else if (d < 3600) snprintf(buf, n, "%d minutes ago", (int)(d / 60));
    else if (d < 86400) snprintf(buf, n, "%d hours ago", (int)(d / 3600));
    else if (d < 86400 * 60) snprintf(buf, n, "%d days ago", (int)(d / 86400));
    else iso_time(t, buf, n);
}

static cJSON *version_json(const sl_reg_version *v, bool files) {
    cJSON *o = cJSON_CreateObject();
    char t[32];
    cJSON_AddStringToObject(o, "name", v->model);
    cJSON_AddStringToObject(o, "revision", v->revision);
    if (v->ref) cJSON_AddStringToObject(o, "ref", v->ref);
    cJSON *tags = cJSON_AddArrayToObject(o, "tags");
    for (size_t i = 0; i < v->n_tags; i++) cJSON_AddItemToArray(tags, cJSON_CreateString(v->tags[i]));
    cJSON_AddStringToObject(o, "format", v->format ? v->format : "");
    if (v->quant) cJSON_AddStringToObject(o, "quant", v->quant);
    else cJSON_AddNullToObject(o, "quant");
    cJSON_AddNumberToObject(o, "params", (double)v->params);
    cJSON_AddNumberToObject(o, "size", (double)v->size);
    iso_time(v->created, t, sizeof t);
    cJSON_AddStringToObject(o, "modified", t);
    cJSON_AddStringToObject(o, "source", v->source ? v->source : "store");
    cJSON_AddStringToObject(o, "path", v->path ? v->path : "");
    if (files) {
        cJSON *cfg = v->config ? cJSON_Parse(v->config) : NULL;
        if (cfg) cJSON_AddItemToObject(o, "config", cfg);
        cJSON *fa = cJSON_AddArrayToObject(o, "files");
        for (size_t i = 0; i < v->n_files; i++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "path", v->files[i].path);
            cJSON_AddNumberToObject(f, "size", (double)v->files[i].size);
            if (v->files[i].sha256[0]) cJSON_AddStringToObject(f, "sha256", v->files[i].sha256);
            cJSON_AddItemToArray(fa, f);
        }
    }
    return o;
}

static cJSON *lineage_json(const sl_reg_version *v) {
    cJSON *l = cJSON_CreateObject();
    const sl_reg_lineage *x = &v->lineage;
    cJSON_AddStringToObject(l, "version", v->model);
    cJSON_AddStringToObject(l, "revision", v->revision);
    if (x->kind) cJSON_AddStringToObject(l, "kind", x->kind);
    if (x->endpoint) cJSON_AddStringToObject(l, "endpoint", x->endpoint);
    if (x->repo) cJSON_AddStringToObject(l, "repo", x->repo);
    if (x->commit) cJSON_AddStringToObject(l, "commit", x->commit);
    if (x->parent) cJSON_AddStringToObject(l, "parent", x->parent);
    if (x->command) cJSON_AddStringToObject(l, "command", x->command);
    return l;
}

static void print_lineage(const sl_reg_version *v, int depth) {
    const sl_reg_lineage *x = &v->lineage;
    printf("  %*s%s@%.12s  %s", depth * 2, "", v->model, v->revision, x->kind ? x->kind : "?");
    bool derived = x->kind && !strcmp(x->kind, "derived");
    if (derived && x->parent && x->parent[0] == '/') printf(" from %s", x->parent);   /* a path, not in the chain */
    if (derived && x->endpoint) printf(" (output also at %s)", x->endpoint);
    else if (x->endpoint) printf(" from %s", x->endpoint);
    if (x->repo) printf(" repo %s", x->repo);
    if (x->commit) printf(" commit %.12s", x->commit);
    if (x->command) printf("\n  %*s  by: %s", depth * 2, "", x->command);
    putchar('\n');
}

/* Options of the store commands: --json, and one command-specific flag. */
typedef struct flag {
    const char *name;   /* e.g. "--all" (NULL: none) */
    bool *set;
} flag;

static int parse_flags(const char *cmd, int argc, char **argv, const char *help, bool *json, flag fl, const char **pos,
                       int npos, int *got) {
    *got = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { fputs(help, stdout); fputs(k_store_note, stdout); return 0; }
        if (json && strcmp(argv[i], "--json") == 0) *json = true;
        else if (fl.name && strcmp(argv[i], fl.name) == 0) *fl.set = true;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage(cmd, "unknown option '%s'", argv[i]);
        else if (*got < npos) pos[(*got)++] = argv[i];
        else return cli_usage(cmd, "unexpected argument '%s'", argv[i]);
    }
    return -1;
}

static int parse_common(const char *cmd, int argc, char **argv, const char *help, bool *json, const char **pos,
                        int npos, int *got) {
    return parse_flags(cmd, argc, argv, help, json, (flag){0}, pos, npos, got);
}

/* Progress of import hashing / verify on stderr, only on a terminal. */
static void store_progress(sl_reg *r, cli_progress *pg, const char *label) {
    cli_progress_init(pg, label);
    if (pg->enabled) sl_reg_set_progress(r, cli_progress_cb, pg);
}

int cmd_list(int argc, char **argv) {
    static const char *help = "usage: silica list [--json]\n\nList every model version in the store: NAME, REVISION, FORMAT, QUANT, SIZE,\nMODIFIED (newest first), then the Hugging Face cache's models.\n\n";
    bool json = false;
    int got;
    int rc = parse_common("list", argc, argv, help, &json, NULL, 0, &got);
    if (rc >= 0) return rc;
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    sl_reg_version **vs;
    size_t n;
    if (sl_reg_list(r, true, &vs, &n, &err)) { sl_reg_close(r); return cli_fail(&err); }
    if (json) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, version_json(vs[i], false));
        cli_print_json(a);
    } else {
        printf("%-40s %-12s %-6s %-10s %10s  %s\n", "NAME", "REVISION", "FORMAT", "QUANT", "SIZE", "MODIFIED");
        for (size_t i = 0; i < n; i++) {
            const sl_reg_version *v = vs[i];
            char name[256], hb[32], when[40];
            int o = snprintf(name, sizeof name, "%s", v->model);
            for (size_t t = 0; t < v->n_tags && o < (int)sizeof name - 2; t++)
                o += snprintf(name + o, sizeof name - (size_t)o, "%s%s", t ? "," : ":", v->tags[t]);
            if (v->source && !strcmp(v->source, "hf-cache") && o < (int)sizeof name - 8)
                snprintf(name + o, sizeof name - (size_t)o, " (hf)");
            ago(v->created, when, sizeof when);
            printf("%-40s %-12.12s %-6s %-10s %10s  %s\n", name, v->revision, v->format ? v->format : "-",
                   v->quant ? v->quant : "-", cli_human_bytes(v->size, hb, sizeof hb), when);
        }
    }
    sl_reg_versions_free(vs, n);
    sl_reg_close(r);
    return 0;
}

/* a version from the store, else from the HF cache (files without digests) */
static int find_any(sl_reg *r, const char *name, sl_reg_version **out, sl_error *err) {
    if (!sl_reg_find(r, name, out, err)) return 0;
    sl_reg_name nm;
    if (sl_reg_parse_name(name, &nm, NULL)) return SL_EINVAL;
    sl_reg_version **vs;
    size_t n;
    sl_error e2 = {0};
    int rc = SL_EINVAL;
    if (!nm.tag && !sl_reg_list(r, true, &vs, &n, &e2)) {
        for (size_t i = 0; i < n; i++) {
            sl_reg_version *v = vs[i];
            if (strcmp(v->source, "hf-cache") || strcmp(v->model, nm.model)) continue;
            const char *want = nm.revision ? nm.revision : "main";
            if (strcmp(v->ref, want) && strncmp(v->revision, want, strlen(want))) continue;
            *out = v;
            vs[i] = NULL;
            rc = 0;
            break;
        }
        sl_reg_versions_free(vs, n);
    }
    sl_reg_name_free(&nm);
    return rc;
}

int cmd_show(int argc, char **argv) {
    static const char *help = "usage: silica show NAME [--json]\n\nA version's files with sizes and sha256 digests, its config summary and its\nlineage chain (where it came from, or what it was derived from and how).\n\n";
    bool json = false;
    const char *pos[1];
    int got;
    int rc = parse_common("show", argc, argv, help, &json, pos, 1, &got);
    if (rc >= 0) return rc;
    if (!got) return cli_usage("show", "missing NAME");
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    sl_reg_version *v = NULL;
    if (find_any(r, pos[0], &v, &err)) { sl_reg_close(r); return cli_fail(&err); }
    sl_reg_version **chain = NULL;
    size_t nc = 0;
    if (v->id) sl_reg_lineage_chain(r, v, &chain, &nc, &err);
    if (json) {
        cJSON *o = version_json(v, true);
        cJSON *l = cJSON_AddArrayToObject(o, "lineage");
        cJSON_AddItemToArray(l, lineage_json(v));
        for (size_t i = 0; i < nc; i++) cJSON_AddItemToArray(l, lineage_json(chain[i]));
        cli_print_json(o);
    } else {
        char hb[32], when[40];
        iso_time(v->created, when, sizeof when);
        printf("name:     %s\nrevision: %s\n", v->model, v->revision);
        if (v->ref) printf("ref:      %s\n", v->ref);
        if (v->n_tags) {
            printf("tags:    ");
            for (size_t i = 0; i < v->n_tags; i++) printf(" %s", v->tags[i]);
            putchar('\n');
        }
        printf("format:   %s\nquant:    %s\nparams:   %" PRId64 "\nsize:     %s\nmodified: %s\nsource:   %s\npath:     %s\n",
               v->format ? v->format : "-", v->quant ? v->quant : "-", v->params,
               cli_human_bytes(v->size, hb, sizeof hb), when, v->source, v->path);
        if (v->config) printf("config:   %s\n", v->config);
        printf("files:\n");
        for (size_t i = 0; i < v->n_files; i++)
            printf("  %-48s %14" PRIu64 "  %s\n", v->files[i].path, v->files[i].size,
                   v->files[i].sha256[0] ? v->files[i].sha256 : "-");
        if (v->id) {
            printf("lineage:\n");
            print_lineage(v, 0);
            for (size_t i = 0; i < nc; i++) print_lineage(chain[i], (int)i + 1);
        }
    }
    sl_reg_versions_free(chain, nc);
    sl_reg_version_free(v);
    sl_reg_close(r);
    return 0;
}

int cmd_tag(int argc, char **argv) {
    static const char *help = "usage: silica tag SRC NEW [--json]\n\nGive a version another name: NEW is org/name:tag (a tag of the same model) or\nanother org/name[:tag] (a new model sharing SRC's blobs; nothing is copied).\n--json prints the version NEW names.\n\n";
    bool json = false;
    const char *pos[2];
    int got;
    int rc = parse_common("tag", argc, argv, help, &json, pos, 2, &got);
    if (rc >= 0) return rc;
    if (got < 2) return cli_usage("tag", "expected SRC and NEW");
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    sl_reg_version *v = NULL;
    if (sl_reg_tag(r, pos[0], pos[1], &err) || sl_reg_find(r, pos[1], &v, &err)) rc = cli_fail(&err);
    else if (json) cli_print_json(version_json(v, false));
    else printf("%s -> %s@%.12s\n", pos[1], v->model, v->revision);
    sl_reg_version_free(v);
    sl_reg_close(r);
    return rc;
}

int cmd_rm(int argc, char **argv) {
    static const char *help =
        "usage: silica rm NAME [--all] [--json]\n\n"
        "Remove a version from the store: NAME's version (a bare org/name is its newest\n"
        "version; @revision or :tag choose another), or with --all every version of\n"
        "org/name.  Says which revision(s) went and how many remain; blobs are deleted\n"
        "only when no other version uses them.\n\n";
    bool json = false, all = false;
    const char *pos[1];
    int got;
    int rc = parse_flags("rm", argc, argv, help, &json, (flag){"--all", &all}, pos, 1, &got);
    if (rc >= 0) return rc;
    if (!got) return cli_usage("rm", "missing NAME");
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    sl_reg_rm_result res;
    if (sl_reg_rm(r, pos[0], all, &res, &err)) rc = cli_fail(&err);
    else if (json) {
        cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "removed");
        for (size_t i = 0; i < res.n_removed; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", res.removed[i]->model);
            cJSON_AddStringToObject(e, "revision", res.removed[i]->revision);
            cJSON_AddItemToArray(a, e);
        }
        cJSON_AddNumberToObject(o, "remaining", (double)res.remaining);
        cJSON_AddNumberToObject(o, "blobs_freed", (double)res.st.blobs);
        cJSON_AddNumberToObject(o, "bytes_freed", (double)res.st.bytes);
        cli_print_json(o);
    } else {
        char hb[32];
        for (size_t i = 0; i < res.n_removed; i++) {
            const sl_reg_version *v = res.removed[i];
            printf("removed %s@%.12s", v->model, v->revision);
            for (size_t t = 0; t < v->n_tags; t++) printf("%s%s", t ? "," : " :", v->tags[t]);
            putchar('\n');
        }
        const char *model = res.n_removed ? res.removed[0]->model : pos[0];
        printf("%" PRIu64 " blobs, %s freed; ", res.st.blobs, cli_human_bytes(res.st.bytes, hb, sizeof hb));
        if (res.remaining)
            printf("%zu other version%s of %s remain%s (`silica rm --all %s` removes %s)\n", res.remaining,
                   res.remaining == 1 ? "" : "s", model, res.remaining == 1 ? "s" : "", model,
                   res.remaining == 1 ? "it" : "them");
        else printf("no version of %s is left\n", model);
    }
    sl_reg_rm_result_free(&res);
    sl_reg_close(r);
    return rc;
}

int cmd_gc(int argc, char **argv) {
    static const char *help = "usage: silica gc [--json]\n\nDelete unreferenced blobs, orphan snapshot directories, temporaries and the\nquarantine (corrupt blobs `verify` moved aside); says how much it freed.\nResumable partial downloads are kept (and counted).\n\n";
    bool json = false;
    int got;
    int rc = parse_common("gc", argc, argv, help, &json, NULL, 0, &got);
    if (rc >= 0) return rc;
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    sl_reg_stats st;
    if (sl_reg_gc(r, &st, &err)) rc = cli_fail(&err);
    else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "blobs", (double)st.blobs);
        cJSON_AddNumberToObject(o, "blob_bytes", (double)st.bytes);
        cJSON_AddNumberToObject(o, "orphan_snapshots", (double)st.versions);
        cJSON_AddNumberToObject(o, "temporaries", (double)st.tmp);
        cJSON_AddNumberToObject(o, "quarantined", (double)st.quarantined);
        cJSON_AddNumberToObject(o, "quarantined_bytes", (double)st.quarantined_bytes);
        cJSON_AddNumberToObject(o, "freed_bytes", (double)(st.bytes + st.quarantined_bytes));
        cJSON_AddNumberToObject(o, "partials_kept", (double)st.partials);
        cJSON_AddNumberToObject(o, "partial_bytes_kept", (double)st.partial_bytes);
        cli_print_json(o);
    } else {
        char hb[32], qb[32], fb[32];
        printf("gc: removed %" PRIu64 " blobs (%s), %" PRIu64 " orphan snapshots, %" PRIu64 " temporaries, %" PRIu64
               " quarantined blobs (%s); freed %s; kept %" PRIu64 " partial downloads\n",
               st.blobs, cli_human_bytes(st.bytes, hb, sizeof hb), st.versions, st.tmp, st.quarantined,
               cli_human_bytes(st.quarantined_bytes, qb, sizeof qb),
               cli_human_bytes(st.bytes + st.quarantined_bytes, fb, sizeof fb), st.partials);
    }
    sl_reg_close(r);
    return rc;
}

typedef struct verify_out {
    cJSON *problems;   /* --json: collected; else printed as they come */
    cli_progress *pg;
    uint64_t repaired;
} verify_out;

static void report(void *ctx, const sl_reg_problem *p) {
    verify_out *o = ctx;
    o->repaired += p->repaired;
    if (o->problems) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "version", p->version);
        cJSON_AddStringToObject(e, "path", p->path);
        cJSON_AddStringToObject(e, "sha256", p->sha256);
        cJSON_AddStringToObject(e, "problem", p->problem);
        cJSON_AddBoolToObject(e, "quarantined", p->quarantined);
        cJSON_AddBoolToObject(e, "repaired", p->repaired);
        if (p->repair) cJSON_AddStringToObject(e, p->repaired ? "repaired_from" : "not_repaired", p->repair);
        cJSON_AddItemToArray(o->problems, e);
        return;
    }
    cli_progress_done(o->pg);   /* end the bar's line before a report line */
    printf("%s %s/%s: %s%s", p->repaired ? "FIXED" : "BAD  ", p->version, p->path, p->problem,
           p->quarantined ? ", moved to quarantine/" : "");
    if (p->repair) printf(p->repaired ? "; restored from %s" : "; not repaired: %s", p->repair);
    putchar('\n');
    fflush(stdout);
}

int cmd_verify(int argc, char **argv) {
    static const char *help =
        "usage: silica verify [NAME] [--repair] [--json]\n\n"
        "Rehash every blob (of NAME, or of the whole store) against its sha256; corrupt\n"
        "blobs are moved to quarantine/ (`silica gc` empties it) and reported.  On a\n"
        "terminal stderr shows bytes hashed / total and the rate.\n"
        "  --repair  restore missing or corrupt blobs from where they came from, when\n"
        "            the bytes there still hash right: the path a version was imported\n"
        "            or converted from, its Hugging Face cache snapshot, or the hub\n"
        "            commit it was pulled from; says what it could not repair\n"
        "Exit 1 when a problem is left.\n\n";
    bool json = false, repair = false;
    const char *pos[1] = {NULL};
    int got;
    int rc = parse_flags("verify", argc, argv, help, &json, (flag){"--repair", &repair}, pos, 1, &got);
    if (rc >= 0) return rc;
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    uint64_t bad = 0;
    cli_progress pg;
    store_progress(r, &pg, "verify");
    verify_out out = {.problems = json ? cJSON_CreateArray() : NULL, .pg = &pg};
    int vrc = sl_reg_verify(r, got ? pos[0] : NULL, repair, report, &out, &bad, &err);
    cli_progress_done(&pg);
    if (vrc) {
        rc = cli_fail(&err);
        cJSON_Delete(out.problems);
    } else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", bad == 0);
        cJSON_AddNumberToObject(o, "problems", (double)bad);
        cJSON_AddNumberToObject(o, "repaired", (double)out.repaired);
        cJSON_AddItemToObject(o, "files", out.problems);
        cli_print_json(o);
        rc = bad ? 1 : 0;
    } else if (bad) {
        printf("verify: %" PRIu64 " problems%s\n", bad, repair ? " left" : " (`silica verify --repair` restores what it can)");
        rc = 1;
    } else if (out.repaired) printf("verify: ok (%" PRIu64 " repaired)\n", out.repaired);
    else printf("verify: ok\n");
    sl_reg_close(r);
    return rc;
}

int cmd_du(int argc, char **argv) {
    static const char *help = "usage: silica du [--json]\n\nDisk use of the store: versions, unique blobs and their bytes, partial\ndownloads, temporaries and quarantined blobs.\n\n";
    bool json = false;
    int got;
    int rc = parse_common("du", argc, argv, help, &json, NULL, 0, &got);
    if (rc >= 0) return rc;
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    sl_reg_stats st;
    if (sl_reg_du(r, &st, &err)) rc = cli_fail(&err);
    else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "home", sl_reg_home(r));
        cJSON_AddNumberToObject(o, "versions", (double)st.versions);
        cJSON_AddNumberToObject(o, "blobs", (double)st.blobs);
        cJSON_AddNumberToObject(o, "bytes", (double)st.bytes);
        cJSON_AddNumberToObject(o, "partials", (double)st.partials);
        cJSON_AddNumberToObject(o, "partial_bytes", (double)st.partial_bytes);
        cJSON_AddNumberToObject(o, "tmp", (double)st.tmp);
        cJSON_AddNumberToObject(o, "quarantined", (double)st.quarantined);
        cli_print_json(o);
    } else {
        char hb[32], pb[32];
        printf("%s\n  versions:    %" PRIu64 "\n  blobs:       %" PRIu64 " (%s)\n  partials:    %" PRIu64 " (%s)\n"
               "  temporaries: %" PRIu64 "\n  quarantined: %" PRIu64 "\n",
               sl_reg_home(r), st.versions, st.blobs, cli_human_bytes(st.bytes, hb, sizeof hb), st.partials,
               cli_human_bytes(st.partial_bytes, pb, sizeof pb), st.tmp, st.quarantined);
    }
    sl_reg_close(r);
    return rc;
}

int cmd_import(int argc, char **argv) {
    static const char *help =
        "usage: silica import PATH NAME [--json]\n\n"
        "Add a local model directory (or one file) to the store as a new version of NAME\n"
        "(org/name[:tag]).  Every file is copied into the store (a reflink where the\n"
        "filesystem can) and hashed; your files are only read — their content, mode and\n"
        "times stay as they were, and editing them later does not touch the store.\n"
        "On a terminal stderr shows bytes hashed / total and the rate.\n\n";
    bool json = false;
    const char *pos[2];
    int got;
    int rc = parse_common("import", argc, argv, help, &json, pos, 2, &got);
    if (rc >= 0) return rc;
    if (got < 2) return cli_usage("import", "expected PATH and NAME");
    sl_reg *r;
    if ((rc = open_store(&r))) return rc;
    sl_error err = {0};
    sl_reg_version *v = NULL;
    char *abs = realpath(pos[0], NULL);   /* the origin verify --repair goes back to */
    sl_reg_lineage lin = {.kind = "import", .endpoint = abs ? abs : (char *)pos[0]};
    cli_progress pg;
    store_progress(r, &pg, "import");
    int irc = sl_reg_import_dir(r, pos[0], pos[1], NULL, NULL, &lin, &v, &err);
    cli_progress_done(&pg);
    if (irc) rc = cli_fail(&err);
    else if (json) cli_print_json(version_json(v, true));
    else printf("%s@%.12s: %zu files\n", v->model, v->revision, v->n_files);
    free(abs);
    sl_reg_version_free(v);
    sl_reg_close(r);
    return rc;
}

/* ---- store names for inspect / convert / quantize ---- */

static char *g_resolved;   /* kept reachable for the process lifetime */

int cli_resolve_store(const char **path, const char **name) {
    if (name) *name = NULL;
    if (!sl_reg_looks_like_name(*path)) return 0;
    sl_error err = {0};
    char *p = NULL;
    if (sl_reg_resolve(*path, &p, &err)) return cli_fail(&err);
    free(g_resolved);
    g_resolved = p;
    if (name) *name = *path;
    *path = p;
    return 0;
}

int cli_register_derived(const sl_reg_derived *d, int argc, char **argv, char *label, size_t n) {
    size_t len = 8;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 3;
    char *cmd = malloc(len);
    if (!cmd) return 2;
    size_t o = (size_t)snprintf(cmd, len, "silica");
    for (int i = 0; i < argc; i++) o += (size_t)snprintf(cmd + o, len - o, " %s", argv[i]);
    sl_reg_derived dd = *d;
    dd.command = cmd;
    sl_error err = {0};
    sl_reg_version *v = NULL;
    int rc = sl_reg_register_derived(&dd, &v, &err) ? cli_fail(&err) : 0;
    if (!rc) snprintf(label, n, "%s@%s", v->model, v->revision);
    sl_reg_version_free(v);
    free(cmd);
    return rc;
}
