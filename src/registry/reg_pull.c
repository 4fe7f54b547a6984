/*
 * reg_pull.c — `silica pull`: a model from a Hugging Face protocol hub into
 * the store (and optionally the HF cache), with parallel, resumable,
 * verified downloads.
 *
 * Protocol: GET /api/models/{repo}/revision/{rev} -> commit ("sha");
 * GET /api/models/{repo}/tree/{commit}?recursive=true&expand=false (Link
 * rel="next" pagination) -> files with git oid, size and lfs {oid, size};
 * GET /{repo}/resolve/{commit}/{path} following redirects (X-Linked-Etag,
 * X-Linked-Size and X-Repo-Commit are cross-checked when present).
 *
 * Invariants:
 *  - A file is downloaded into partial/<digest>-<size>.part, locked with
 *    flock while in use, so a restarted (or concurrent) pull continues it;
 *    its size and digest (sha256 for LFS files, git blob sha1 for others)
 *    are checked before it becomes a blob; a mismatch deletes the partial.
 *  - The version is registered only after every blob is in place; the
 *    per-model lock makes two concurrent pulls end with one version.
 *  - Offline (SILICA_OFFLINE / HF_HUB_OFFLINE) makes no network request.
 *  - Free space is checked before the first download (store, and the HF
 *    cache when it is on another filesystem); a write that still fails
 *    (ENOSPC) names the file and keeps the partial for a later resume.
 *  - A dry run lists the selection and takes no per-model lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <curl/curl.h>

#include "registry/reg_impl.h"

bool sl_reg_offline_env(void) { return sl_net_offline(); }

typedef struct job {
    char *path;
    uint64_t size;
    char oid[41];        /* git blob sha1 */
    char lfs[65];        /* sha256 if LFS */
    char sha256[65];     /* result */
    uint64_t done;       /* bytes so far (progress; under pull.mu) */
    int active;          /* being fetched (progress; under pull.mu) */
    int finished;        /* fetched or found stored (progress; under pull.mu) */
    int rc;
    sl_error err;
} job;

typedef struct pull {
    sl_reg *r;
    const sl_reg_pull_opts *o;
    const char *endpoint;
    char commit[41];
    char *hf_snap;       /* HF-cache snapshot of this commit, if any */
    const char *const *headers;
    job *jobs;
    size_t n_jobs, cap_jobs, next;
    pthread_mutex_t mu;
    uint64_t done, total, fetched;
    bool failed;
} pull;

static bool safe_relpath(const char *p) {
    if (!p[0] || p[0] == '/' || strlen(p) > 1000 || strchr(p, '\\')) return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
        s += n + (e ? 1 : 0);
        if (e && !*s) return false;
    }
    return true;
}

static char *escape_path(const char *p) {
    /* keep '/', escape each component */
    size_t cap = strlen(p) * 3 + 1;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    for (const unsigned char *s = (const unsigned char *)p; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("-._~/", *s))
            out[o++] = (char)*s;
        else o += (size_t)snprintf(out + o, cap - o, "%%%02X", *s);
    }
    out[o] = 0;
    return out;
}

static char *escape_all(const char *s) {
    char *e = escape_path(s);
    if (!e) return NULL;
    /* quote(rev, safe=""): '/' too */
    size_t n = 0;
    for (char *c = e; *c; c++) n += *c == '/';
    char *out = malloc(strlen(e) + n * 2 + 1), *o = out;
    if (!out) { free(e); return NULL; }
    for (char *c = e; *c; c++) {
        if (*c == '/') { memcpy(o, "%2F", 3); o += 3; }
        else *o++ = *c;
    }
    *o = 0;
    free(e);
    return out;
}

static int api_error(const pull *p, const char *what, const sl_http_resp *rs, sl_error *err) {
    const char *code = rs->error_code[0] ? rs->error_code : rs->status == 404 ? "not found" : "error";
    return sl_errorf(err, SL_EINVAL, "%s: %s at %s answered %ld (%s)", p->o->repo, what, p->endpoint, rs->status, code);
}

static int get_json(pull *p, const char *url, const char *what, cJSON **out, char **next, sl_error *err) {
    sl_http_resp rs;
    sl_http_req rq = {.url = url, .headers = p->headers};
    int rc = sl_http_do(&rq, &rs, err);
    if (rc) {
        if (rs.unresolved) sl_error_prefix(err, "%s: ", p->o->repo);   /* the host is the news, not the request */
        else sl_error_prefix(err, "%s: %s: ", p->o->repo, what);
        return rc;
    }
    if (rs.status != 200) {
        rc = api_error(p, what, &rs, err);
        sl_http_resp_free(&rs);
        return rc;
    }
    *out = rs.body ? cJSON_Parse(rs.body) : NULL;
    if (next) {
        *next = rs.next_link;
        rs.next_link = NULL;
    }
    sl_http_resp_free(&rs);
    if (!*out) return sl_errorf(err, SL_EINVAL, "%s: %s at %s: answer is not JSON", p->o->repo, what, p->endpoint);
    return 0;
}

static int add_job(pull *p, cJSON *e, sl_error *err) {
    cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type"), *path = cJSON_GetObjectItemCaseSensitive(e, "path"),
          *size = cJSON_GetObjectItemCaseSensitive(e, "size"), *oid = cJSON_GetObjectItemCaseSensitive(e, "oid"),
          *lfs = cJSON_GetObjectItemCaseSensitive(e, "lfs");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "file") != 0) return 0;   /* directories */
    if (!cJSON_IsString(path) || !cJSON_IsNumber(size) || size->valuedouble < 0 || size->valuedouble > 9.0e15)
        return sl_errorf(err, SL_EINVAL, "%s: tree entry without a valid path and size", p->o->repo);
    if (!safe_relpath(path->valuestring))
        return sl_errorf(err, SL_EINVAL, "%s: tree entry '%s' is not a safe relative path", p->o->repo, path->valuestring);
    if (p->n_jobs == p->cap_jobs) {
        p->cap_jobs = p->cap_jobs ? p->cap_jobs * 2 : 32;
        job *nj = realloc(p->jobs, p->cap_jobs * sizeof *nj);
        if (!nj) return sl_errorf(err, SL_ENOMEM, "out of memory");
        p->jobs = nj;
    }
    job *j = &p->jobs[p->n_jobs];
    memset(j, 0, sizeof *j);
    j->size = (uint64_t)size->valuedouble;
    if (cJSON_IsString(oid) && sl_is_hex(oid->valuestring, 40)) memcpy(j->oid, oid->valuestring, 41);
    if (lfs) {
        cJSON *lo = cJSON_GetObjectItemCaseSensitive(lfs, "oid"), *ls = cJSON_GetObjectItemCaseSensitive(lfs, "size");
        if (!cJSON_IsString(lo) || !sl_is_hex(lo->valuestring, 64))
            return sl_errorf(err, SL_EINVAL, "%s: %s: lfs.oid is not a sha256", p->o->repo, path->valuestring);
        memcpy(j->lfs, lo->valuestring, 65);
        if (cJSON_IsNumber(ls)) {
            if (ls->valuedouble < 0 || ls->valuedouble > 9.0e15)
                return sl_errorf(err, SL_EINVAL, "%s: %s: lfs.size is not a file size", p->o->repo, path->valuestring);
            j->size = (uint64_t)ls->valuedouble;
        }
    }
    if (!j->lfs[0] && !j->oid[0])
        return sl_errorf(err, SL_EINVAL, "%s: %s: tree entry has neither oid nor lfs.oid", p->o->repo, path->valuestring);
    j->path = strdup(path->valuestring);
    p->n_jobs++;
    return 0;
}

static int cmp_job(const void *a, const void *b) { return strcmp(((const job *)a)->path, ((const job *)b)->path); }

static bool any_match(const char *const *pats, size_t n, const char *path) {
    for (size_t i = 0; i < n; i++)
        if (reg_glob_match(pats[i], path)) return true;
    return false;
}

/* default selection: config/tokenizer files + the weights of one format
 * (transformers shards over a Mistral-style consolidated.safetensors) */
static int select_files(pull *p, sl_error *err) {
    const sl_reg_pull_opts *o = p->o;
    static const char *const meta[] = {"*.json", "*.txt", "*.model", "*.tiktoken", "*.jinja", "*.jsonl", "*.py"};
    bool has_st = false, has_bin = false, has_hf_st = false;
    size_t n_gguf = 0;
    for (size_t i = 0; i < p->n_jobs; i++) {
        const char *f = p->jobs[i].path;
        if (!strncmp(f, "original/", 9)) continue;
        has_st |= sl_str_ends_with(f, ".safetensors");
        has_hf_st |= sl_str_ends_with(f, ".safetensors") && !strncmp(sl_path_basename(f), "model", 5);
        has_bin |= sl_str_ends_with(f, ".bin") && strstr(f, "pytorch_model");
        n_gguf += sl_str_ends_with(f, ".gguf");
    }
    if (!o->n_include && !has_st && !has_bin && n_gguf > 1)
        return sl_errorf(err, SL_EINVAL, "%s: %zu GGUF files at this revision; choose with --include (e.g. '*Q4_K_M.gguf')",
                         o->repo, n_gguf);
    size_t k = 0;
    for (size_t i = 0; i < p->n_jobs; i++) {
        job *j = &p->jobs[i];
        const char *f = j->path;
        bool keep;
        if (o->n_include) keep = any_match(o->include, o->n_include, f);
        else if (!strncmp(f, "original/", 9)) keep = false;
        else if (any_match(meta, sizeof meta / sizeof meta[0], f)) keep = true;
        else if (has_st)   /* Mistral repos also ship consolidated.safetensors: the same weights again */
            keep = sl_str_ends_with(f, ".safetensors") && !(has_hf_st && !strncmp(sl_path_basename(f), "consolidated", 12));
        else if (has_bin) keep = sl_str_ends_with(f, ".bin") && strstr(f, "pytorch_model");
        else keep = sl_str_ends_with(f, ".gguf") || sl_str_ends_with(f, ".npz");
        if (keep && o->n_exclude && any_match(o->exclude, o->n_exclude, f)) keep = false;
        if (keep) p->jobs[k++] = *j;
        else free(j->path);
    }
    p->n_jobs = k;
    if (!k) return sl_errorf(err, SL_EINVAL, "%s@%.12s: no file matches the selection", o->repo, p->commit);
    qsort(p->jobs, p->n_jobs, sizeof *p->jobs, cmp_job);
    for (size_t i = 1; i < p->n_jobs; i++)
        if (!strcmp(p->jobs[i].path, p->jobs[i - 1].path))
            return sl_errorf(err, SL_EINVAL, "%s: the tree lists '%s' twice", o->repo, p->jobs[i].path);
    return 0;
}

/* The hub's JSON answers as the pull reads them (for tests and fuzzing): a
 * revision object then a tree array; *n_files = files the default selection keeps. */
int reg_pull_parse_answers(const char *repo, const char *revision_json, size_t rlen, const char *tree_json, size_t tlen,
                           size_t *n_files, sl_error *err) {
    *n_files = 0;
    sl_reg_pull_opts o = {.repo = repo};
    pull p = {.o = &o, .endpoint = "fuzz"};
    cJSON *j = cJSON_ParseWithLength(revision_json, rlen);
    cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "sha");
    int rc = 0;
    if (!cJSON_IsString(sha) || !sl_is_hex(sha->valuestring, 40))
        rc = sl_errorf(err, SL_EINVAL, "%s: revision answer has no 40-hex \"sha\"", repo);
    else memcpy(p.commit, sha->valuestring, 41);
    cJSON_Delete(j);
    j = rc ? NULL : cJSON_ParseWithLength(tree_json, tlen);
    if (!rc && !cJSON_IsArray(j)) rc = sl_errorf(err, SL_EINVAL, "%s: tree answer is not a JSON array", repo);
    for (cJSON *e = j ? j->child : NULL; e && !rc; e = e->next) rc = add_job(&p, e, err);
    cJSON_Delete(j);
    if (!rc) rc = select_files(&p, err);
    if (!rc) *n_files = p.n_jobs;
    for (size_t i = 0; i < p.n_jobs; i++) free(p.jobs[i].path);
    free(p.jobs);
    return rc;
}

typedef struct job_ctx {
    pull *p;
    job *j;
} job_ctx;

static void on_progress(void *ctx, uint64_t delta) {
    job_ctx *c = ctx;
    pthread_mutex_lock(&c->p->mu);
    c->p->done += delta;
    c->p->fetched += delta;
    c->j->done += delta;
    pthread_mutex_unlock(&c->p->mu);
}

/* Try the HF-cache copy of this file first: hardlink it into the partial. */
static bool from_hf_cache(pull *p, job *j, const char *part) {
    if (!p->hf_snap) return false;
    char *src = sl_fmt("%s/%s", p->hf_snap, j->path);
    struct stat st;
    bool ok = src && stat(src, &st) == 0 && (uint64_t)st.st_size == j->size &&
              linkat(AT_FDCWD, src, AT_FDCWD, part, AT_SYMLINK_FOLLOW) == 0;
    free(src);
    return ok;
}

static int fetch_one(pull *p, job *j) {
    sl_reg *r = p->r;
    sl_error *err = &j->err;
    const char *want = j->lfs[0] ? j->lfs : j->oid;
    job_ctx jc = {p, j};
    if (j->lfs[0] && reg_blob_exists(r, j->lfs, j->size)) {   /* dedup before any request */
        memcpy(j->sha256, j->lfs, 65);
        return 0;
    }
    char *part = sl_fmt("%s/partial/%s-%llu.part", r->home, want, (unsigned long long)j->size);
    if (!part) return sl_errorf(err, SL_ENOMEM, "out of memory");
    struct stat st0;
    if (stat(part, &st0) != 0) from_hf_cache(p, j, part);
    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = sl_errorf(err, SL_EIO, "%s: cannot open %s: %s", j->path, part, strerror(errno));
        free(part);
        return rc;
    }
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {}
    int rc = 0;
    struct stat st;
    /* another process may have finished it while we waited */
    if (j->lfs[0] && reg_blob_exists(r, j->lfs, j->size)) {
        memcpy(j->sha256, j->lfs, 65);
        close(fd);
        free(part);
        return 0;
    }
    if (fstat(fd, &st) != 0 || st.st_nlink == 0) {   /* unlinked by the finisher: start over */
        close(fd);
        rc = fetch_one(p, j);
        free(part);
        return rc;
    }
    sl_dl d = {.headers = p->headers, .what = j->path, .expect_size = j->size, .fd = fd,
               .progress = on_progress, .progress_ctx = &jc};
    reg_dl_hash hs;
    if (!reg_dl_hash_attach(&d, &hs, !j->lfs[0], j->size)) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc && (uint64_t)st.st_size > j->size && ftruncate(fd, 0) != 0) rc = sl_errorf(err, SL_EIO, "%s: %s", part, strerror(errno));
    if (!rc && (uint64_t)st.st_size <= j->size && st.st_size > 0) {
        /* resume: rehash what is already there */
        rc = sl_hash_fd(fd, hs.h, &d.have, part, err);
        on_progress(&jc, d.have);
        pthread_mutex_lock(&p->mu);
        p->fetched -= d.have;
        pthread_mutex_unlock(&p->mu);
    }
    char *ep = escape_path(j->path);
    char *url = sl_fmt("%s/%s/resolve/%s/%s", p->endpoint, p->o->repo, p->commit, ep ? ep : "");
    free(ep);
    d.url = url;
    if (!rc && (d.have < j->size || j->size == 0)) rc = sl_http_download(&d, err);
    if (!rc && d.resp.linked_size && d.resp.linked_size != j->size)
        rc = sl_errorf(err, SL_EINVAL, "%s: the hub says %llu bytes (X-Linked-Size), the tree said %llu", j->path,
                       (unsigned long long)d.resp.linked_size, (unsigned long long)j->size);
    if (!rc && d.resp.repo_commit[0] && strcmp(d.resp.repo_commit, p->commit) != 0)
        rc = sl_errorf(err, SL_EINVAL, "%s: served from commit %.40s, expected %s (X-Repo-Commit)", j->path,
                       d.resp.repo_commit, p->commit);
    if (!rc && d.have != j->size)
        rc = sl_errorf(err, SL_EINVAL, "%s: got %llu bytes, expected %llu", j->path, (unsigned long long)d.have,
                       (unsigned long long)j->size);
    char sha1[41];
    if (!rc) {
        sl_hasher_final(hs.h, j->sha256, sha1);
        hs.h = NULL;
        bool good = j->lfs[0] ? !strcmp(j->sha256, j->lfs) : !strcmp(sha1, j->oid);
        if (!good) {
            rc = sl_errorf(err, SL_EINVAL, "%s: corrupt download: %s %s, expected %s; partial deleted", j->path,
                           j->lfs[0] ? "sha256" : "git sha1", j->lfs[0] ? j->sha256 : sha1, want);
            unlink(part);
        }
    }
    if (!rc && fsync(fd) != 0) rc = sl_errorf(err, SL_EIO, "%s: fsync failed: %s", part, strerror(errno));
    if (!rc) {
        if (reg_blob_exists(r, j->sha256, j->size)) unlink(part);
        else rc = reg_blob_adopt(r, part, j->sha256, err);
    }
    sl_hasher_free(hs.h);
    sl_http_resp_free(&d.resp);
    close(fd);
    free(url);
    free(part);
    return rc;
}

int reg_pull_blob(sl_reg *r, const char *endpoint, const char *repo, const char *commit, const char *path,
                  const char *sha256, uint64_t size, sl_error *err) {
    char *ep = escape_path(path), *tmp = reg_tmp_path(r, "repair");
    char *url = ep ? sl_fmt("%s/%s/resolve/%s/%s", endpoint, repo, commit, ep) : NULL;
    const char *tok = getenv("HF_TOKEN");
    char *auth = tok && *tok ? sl_fmt("Authorization: Bearer %s", tok) : NULL;
    const char *headers[3] = {"Accept-Encoding: identity", auth, NULL};
    int fd = tmp ? open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
    int rc = (!url || !tmp) ? sl_errorf(err, SL_ENOMEM, "out of memory") : 0;
    if (!rc && fd < 0) rc = sl_errorf(err, SL_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    sl_dl d = {.url = url, .headers = headers, .what = url, .expect_size = size, .fd = fd};
    reg_dl_hash hs;
    if (!reg_dl_hash_attach(&d, &hs, false, 0) && !rc) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc) rc = sl_http_download(&d, err);
    char got[65] = "";
    if (!rc) {
        sl_hasher_final(hs.h, got, NULL);
        hs.h = NULL;
        if (d.have != size || strcmp(got, sha256) != 0)
            rc = sl_errorf(err, SL_EINVAL, "%s: the hub now serves other bytes (sha256 %.12s..., expected %.12s...)", url,
                           got, sha256);
    }
    if (!rc && fsync(fd) != 0) rc = sl_errorf(err, SL_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (fd >= 0) close(fd);
    if (!rc) rc = reg_blob_adopt(r, tmp, sha256, err);
    else if (tmp) unlink(tmp);
    sl_hasher_free(hs.h);
    sl_http_resp_free(&d.resp);
    free(url);
    free(ep);
    free(tmp);
    free(auth);
    return rc;
}

static void *worker(void *arg) {
    pull *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next++;
        bool stop = p->failed || i >= p->n_jobs;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        job *j = &p->jobs[i];
        pthread_mutex_lock(&p->mu);
        j->active = 1;
        pthread_mutex_unlock(&p->mu);
        j->rc = fetch_one(p, j);
        pthread_mutex_lock(&p->mu);
        j->active = 0;
        j->finished = !j->rc;
        pthread_mutex_unlock(&p->mu);
        if (j->rc) {
            pthread_mutex_lock(&p->mu);
            p->failed = true;
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

typedef struct prog_ctl {
    pull *p;
    volatile int stop;
} prog_ctl;

/* Every 100 ms: the files in flight and the totals, to o->progress. */
static void *progress_thread(void *arg) {
    prog_ctl *c = arg;
    pull *p = c->p;
    sl_reg_pull_file *act = calloc(p->n_jobs ? p->n_jobs : 1, sizeof *act);
    if (!act) return NULL;
    while (!c->stop) {
        sl_reg_pull_progress pr = {.active = act, .files = p->n_jobs};
        pthread_mutex_lock(&p->mu);
        for (size_t i = 0; i < p->n_jobs; i++) {
            const job *j = &p->jobs[i];
            pr.files_done += j->finished != 0;
            if (j->active) act[pr.n_active++] = (sl_reg_pull_file){.path = j->path, .done = j->done, .size = j->size};
        }
        pr.done = p->done;
        pr.total = p->total;
        pthread_mutex_unlock(&p->mu);
        p->o->progress(p->o->progress_ctx, &pr);
        usleep(100000);
    }
    free(act);
    return NULL;
}

/* Free bytes of the filesystem holding `path` (or its nearest existing
 * parent); *dev = its device.  False when unknown. */
static bool fs_free(const char *path, uint64_t *avail, dev_t *dev) {
    char *p = strdup(path);
    bool ok = false;
    while (p && *p) {
        struct statvfs vf;
        struct stat st;
        if (statvfs(p, &vf) == 0 && stat(p, &st) == 0) {
            *avail = (uint64_t)vf.f_bavail * vf.f_frsize;
            *dev = st.st_dev;
            ok = true;
            break;
        }
        char *slash = strrchr(p, '/');
        if (!slash || !strcmp(p, "/")) break;
        if (slash == p) slash[1] = 0;
        else *slash = 0;
    }
    free(p);
    return ok;
}

/* Bytes of job j already here: its blob (LFS digest known) or its partial. */
static uint64_t job_present(pull *p, const job *j) {
    if (j->lfs[0] && reg_blob_exists(p->r, j->lfs, j->size)) return j->size;
    struct stat st;
    char *part = sl_fmt("%s/partial/%s-%llu.part", p->r->home, j->lfs[0] ? j->lfs : j->oid, (unsigned long long)j->size);
    uint64_t have = part && stat(part, &st) == 0 && (uint64_t)st.st_size <= j->size ? (uint64_t)st.st_size : 0;
    free(part);
    return have;
}

static uint64_t bytes_needed(pull *p) {
    uint64_t need = 0;
    for (size_t i = 0; i < p->n_jobs; i++) need += p->jobs[i].size - job_present(p, &p->jobs[i]);
    return need;
}

/* Disk-space check before any download: the store, and the HF cache when
 * --hf-cache writes to another filesystem (blobs are copied there). */
static int check_disk(pull *p, sl_error *err) {
    uint64_t need = bytes_needed(p), avail = 0;
    dev_t dev = 0, cdev = 0;
    if (fs_free(p->r->home, &avail, &dev) && need > avail)
        return sl_errorf(err, SL_EIO, "%s: not enough disk space in %s: need %llu bytes, %llu available", p->o->repo,
                         p->r->home, (unsigned long long)need, (unsigned long long)avail);
    char *cache = p->o->hf_cache ? sl_reg_hf_cache_dir() : NULL;
    int rc = 0;
    if (cache && fs_free(cache, &avail, &cdev) && cdev != dev && p->total > avail)
        rc = sl_errorf(err, SL_EIO, "%s: not enough disk space for the Hugging Face cache in %s: need %llu bytes, %llu available",
                       p->o->repo, cache, (unsigned long long)p->total, (unsigned long long)avail);
    free(cache);
    return rc;
}

/* --dry-run: the selection with what is already here, and the space needed. */
static int make_plan(pull *p, sl_reg_pull_result *res, sl_error *err) {
    res->plan = calloc(p->n_jobs ? p->n_jobs : 1, sizeof *res->plan);
    if (!res->plan) return sl_errorf(err, SL_ENOMEM, "out of memory");
    sl_reg_version *v = NULL;   /* this commit already stored: its small files count too */
    char *nm = reg_db_known_snapshot(p->r, p->o->repo, p->commit) ? sl_fmt("%s@%s", p->o->repo, p->commit) : NULL;
    if (nm && sl_reg_find(p->r, nm, &v, NULL)) v = NULL;
    free(nm);
    int rc = 0;
    for (size_t i = 0; i < p->n_jobs && !rc; i++) {
        job *j = &p->jobs[i];
        sl_reg_pull_file *f = &res->plan[res->n_plan++];
        f->path = strdup(j->path);
        if (!f->path) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        f->size = j->size;
        snprintf(f->digest, sizeof f->digest, "%s", j->lfs[0] ? j->lfs : j->oid);
        f->done = job_present(p, j);
        for (size_t k = 0; v && k < v->n_files; k++)
            if (!strcmp(v->files[k].path, j->path) && v->files[k].size == j->size) f->done = j->size;
        res->bytes_needed += f->size - f->done;
    }
    sl_reg_version_free(v);
    res->files = p->n_jobs;
    res->bytes_total = p->total;
    dev_t dev;
    if (!fs_free(p->r->home, &res->bytes_free, &dev)) res->bytes_free = 0;
    return rc;
}

void sl_reg_pull_result_free(sl_reg_pull_result *res) {
    if (!res) return;
    for (size_t i = 0; i < res->n_plan; i++) free(res->plan[i].path);
    free(res->plan);
    res->plan = NULL;
    res->n_plan = 0;
}

static int offline_pull(sl_reg *r, const sl_reg_pull_opts *o, sl_reg_pull_result *res, sl_error *err) {
    const char *rev = o->revision ? o->revision : "main";
    char *name = sl_fmt("%s@%s", o->repo, rev);
    sl_reg_version *v = NULL;
    sl_error e2 = {0};
    int rc = 0;
    if (name && !sl_reg_find(r, name, &v, &e2)) {
        res->already = true;
        snprintf(res->revision, sizeof res->revision, "%s", v->revision);
    } else {
        char *cache = sl_reg_hf_cache_dir(), *commit = NULL;
        char *snap = cache ? sl_reg_hf_snapshot(cache, o->repo, rev, &commit) : NULL;
        if (snap) {
            sl_reg_lineage lin = {.kind = "hf-cache", .endpoint = cache, .repo = (char *)o->repo, .commit = commit};
            rc = reg_import(r, snap, o->repo, commit, sl_is_hex(rev, 40) ? NULL : rev, &lin, REG_LINK, &v, err);
            if (!rc) snprintf(res->revision, sizeof res->revision, "%s", commit);
        } else {
            rc = sl_errorf(err, SL_EINVAL, "%s@%s: offline (SILICA_OFFLINE or HF_HUB_OFFLINE is set) and not in the store or the Hugging Face cache",
                           o->repo, rev);
        }
        free(snap);
        free(commit);
        free(cache);
    }
    sl_reg_version_free(v);
    free(name);
    return rc;
}

/* 1. the commit a revision names: p->commit, res->revision */
static int pull_resolve_commit(pull *p, const char *rev, sl_reg_pull_result *res, sl_error *err) {
    char *erev = escape_all(rev);
    char *url = sl_fmt("%s/api/models/%s/revision/%s", p->endpoint, p->o->repo, erev ? erev : rev);
    cJSON *j = NULL;
    int rc = get_json(p, url, "revision", &j, NULL, err);
    if (!rc) {
        cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "sha");
        if (!cJSON_IsString(sha) || !sl_is_hex(sha->valuestring, 40)) {
            rc = sl_errorf(err, SL_EINVAL, "%s: revision answer from %s has no 40-hex \"sha\"", p->o->repo, p->endpoint);
        } else {
            memcpy(p->commit, sha->valuestring, 41);
            snprintf(res->revision, sizeof res->revision, "%s", p->commit);
        }
    }
    cJSON_Delete(j);
    free(url);
    free(erev);
    return rc;
}

/* 2. the commit is in the store already (and the whole repo was asked):
 * *v that version, its ref moved to rev when rev is a name.  *have false
 * when it must be downloaded. */
static int pull_find_stored(pull *p, const char *rev, sl_reg_version **v, bool *have, sl_reg_pull_result *res,
                            sl_error *err) {
    const sl_reg_pull_opts *o = p->o;
    *have = reg_db_known_snapshot(p->r, o->repo, p->commit) && !o->n_include && !o->n_exclude && !o->dry_run;
    if (!*have) return 0;
    int rc = 0;
    char *nm2 = sl_fmt("%s@%s", o->repo, p->commit);
    if (nm2 && !sl_reg_find(p->r, nm2, v, NULL)) {
        res->already = true;
        if (!sl_is_hex(rev, 40)) {   /* move the ref to this commit */
            free((*v)->ref);
            (*v)->ref = strdup(rev);
            rc = reg_db_insert_version(p->r, *v, err);
        }
    } else *have = false;
    free(nm2);
    return rc;
}

/* 3. the commit's file list, page by page, as jobs.  checked: the answer must
 * be an array, a relative next link is made absolute and a page linking to
 * itself is an error (the listing for the HF cache's etags only reads). */
static int pull_list_tree(pull *p, bool checked, sl_error *err) {
    const sl_reg_pull_opts *o = p->o;
    char *url = sl_fmt("%s/api/models/%s/tree/%s?recursive=true&expand=false", p->endpoint, o->repo, p->commit);
    int rc = 0;
    for (int page = 0; url && page < 10000 && !rc; page++) {
        char *next = NULL;
        cJSON *j = NULL;
        if ((rc = get_json(p, url, "tree", &j, &next, err))) break;
        if (checked && !cJSON_IsArray(j))
            rc = sl_errorf(err, SL_EINVAL, "%s: tree answer from %s is not a JSON array", o->repo, p->endpoint);
        for (cJSON *e = (checked ? j : cJSON_IsArray(j) ? j : NULL) ? j->child : NULL; e && !rc; e = e->next)
            rc = add_job(p, e, err);
        cJSON_Delete(j);
        if (checked && next && strncmp(next, "http", 4) != 0) {   /* relative link */
            char *abs = sl_fmt("%s%s", p->endpoint, next);
            free(next);
            next = abs;
        }
        if (checked && next && !strcmp(next, url))
            rc = sl_errorf(err, SL_EINVAL, "%s: tree pagination at %s links to itself", o->repo, p->endpoint);
        free(url);
        url = next;
    }
    free(url);
    return rc;
}

/* 5. download every job on o->jobs threads (4 by default, at most 32), with
 * the progress thread when asked; the first job's error is the result. */
static int pull_download(pull *p, sl_error *err) {
    const sl_reg_pull_opts *o = p->o;
    int rc = 0;
    int nt = o->jobs > 0 ? o->jobs : 4;
    if (nt > 32) nt = 32;
    if ((size_t)nt > p->n_jobs) nt = (int)p->n_jobs;
    pthread_t th[32];
    prog_ctl pc = {.p = p};
    pthread_t pt;
    bool prog = o->progress && pthread_create(&pt, NULL, progress_thread, &pc) == 0;
    int started = 0;
    for (int t = 0; t < nt; t++)
        if (pthread_create(&th[t], NULL, worker, p) == 0) started++;
    if (!started) worker(p);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    if (prog) {
        pc.stop = 1;
        pthread_join(pt, NULL);
        sl_reg_pull_progress fin = {.files = p->n_jobs, .done = p->done, .total = p->total, .finished = true};
        for (size_t i = 0; i < p->n_jobs; i++) fin.files_done += p->jobs[i].finished != 0;
        o->progress(o->progress_ctx, &fin);
    }
    for (size_t i = 0; i < p->n_jobs && !rc; i++)
        if (p->jobs[i].rc) {
            rc = p->jobs[i].rc;
            if (err) *err = p->jobs[i].err;
        }
    if (!rc && p->failed) rc = sl_errorf(err, SL_EIO, "%s: download failed", o->repo);
    return rc;
}

/* 6. the downloaded files as a version: snapshot, description, index */
static int pull_register(pull *p, const char *rev, sl_reg_version **out, sl_error *err) {
    const sl_reg_pull_opts *o = p->o;
    int rc = 0;
    sl_reg_version *v = calloc(1, sizeof *v);
    if (!v) return sl_errorf(err, SL_ENOMEM, "out of memory");
    *out = v;
    v->model = strdup(o->repo);
    v->revision = strdup(p->commit);
    v->ref = sl_is_hex(rev, 40) ? NULL : strdup(rev);
    v->files = calloc(p->n_jobs, sizeof *v->files);
    if (!v->files) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < p->n_jobs; i++) {
        v->files[i].path = strdup(p->jobs[i].path);
        v->files[i].size = p->jobs[i].size;
        memcpy(v->files[i].sha256, p->jobs[i].sha256, 65);
        v->size += p->jobs[i].size;
        v->n_files++;
    }
    if (!rc) {
        v->lineage.kind = strdup("hub");
        v->lineage.endpoint = strdup(p->endpoint);
        v->lineage.repo = strdup(o->repo);
        v->lineage.commit = strdup(p->commit);
    }
    if (!rc) rc = reg_build_snapshot(p->r, v, err);
    if (!rc) {
        char *snap = reg_snapshot_path(p->r, v->model, v->revision);
        reg_describe(v, snap, true);
        free(snap);
        rc = sl_reg_commit_version(p->r, v, err);
    }
    return rc;
}

/* the etag the hub gives path: an LFS file's sha256, else its git blob id; NULL if not listed */
static const char *job_etag(const pull *p, const char *path) {
    const char *e = NULL;
    for (size_t k = 0; k < p->n_jobs; k++)
        if (!strcmp(p->jobs[k].path, path)) e = p->jobs[k].lfs[0] ? p->jobs[k].lfs : p->jobs[k].oid;
    return e;
}

/* 7. the version in the HF cache layout (models--org--name), with the hub's
 * etags (listed afresh when the version was in the store already) */
static int pull_write_hf_cache(pull *p, const sl_reg_version *v, bool have, const char *rev, sl_error *err) {
    int rc = 0;
    char **etags = calloc(v->n_files ? v->n_files : 1, sizeof *etags);
    if (!etags) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < v->n_files; i++) {
        const char *e = job_etag(p, v->files[i].path);
        etags[i] = strdup(e ? e : v->files[i].sha256);
    }
    if (!rc && have) {
        /* already stored: etags of non-LFS files come from a fresh tree listing */
        rc = pull_list_tree(p, false, err);
        for (size_t i = 0; !rc && i < v->n_files; i++) {
            const char *e = job_etag(p, v->files[i].path);
            if (e) {
                free(etags[i]);
                etags[i] = strdup(e);
            }
        }
    }
    char *cache = sl_reg_hf_cache_dir();
    if (!rc) rc = reg_hf_write(cache, p->o->repo, sl_is_hex(rev, 40) ? NULL : rev, p->commit, p->r, v, etags, err);
    free(cache);
    for (size_t i = 0; etags && i < v->n_files; i++) free(etags[i]);
    free(etags);
    return rc;
}

/* The hub's endpoint without trailing slashes: o->endpoint, $HF_ENDPOINT or huggingface.co (malloc'd). */
static char *pull_endpoint(const sl_reg_pull_opts *o) {
    char *ep_env = getenv("HF_ENDPOINT");
    char *endpoint = strdup(o->endpoint ? o->endpoint : ep_env && *ep_env ? ep_env : "https://huggingface.co");
    if (!endpoint) return NULL;
    size_t el = strlen(endpoint);
    while (el > 0 && endpoint[el - 1] == '/') endpoint[--el] = 0;
    return endpoint;
}

int sl_reg_pull(sl_reg *r, const sl_reg_pull_opts *o, sl_reg_pull_result *res, sl_error *err) {
    memset(res, 0, sizeof *res);
    double t0 = sl_now();
    sl_reg_name nm;
    int rc = sl_reg_parse_name(o->repo, &nm, err);
    if (rc) return rc;
    bool plain = !nm.revision && !nm.tag;
    sl_reg_name_free(&nm);
    if (!plain) return sl_errorf(err, SL_EINVAL, "'%s': give the revision with @ on the pull command line, not inside the repo id", o->repo);
    if (o->offline || sl_reg_offline_env()) return offline_pull(r, o, res, err);

    pull p = {.r = r, .o = o};
    pthread_mutex_init(&p.mu, NULL);
    char *endpoint = pull_endpoint(o);
    if (!endpoint) return sl_errorf(err, SL_ENOMEM, "out of memory");
    p.endpoint = endpoint;
    const char *tok = o->token ? o->token : getenv("HF_TOKEN");
    char *auth = tok && *tok ? sl_fmt("Authorization: Bearer %s", tok) : NULL;
    const char *headers[3] = {"Accept-Encoding: identity", auth, NULL};
    p.headers = headers;
    const char *rev = o->revision ? o->revision : "main";
    char *lock_key = sl_fmt("pull-%s", o->repo);
    int lfd = -1;
    sl_reg_version *v = NULL;
    bool have = false;
    if ((rc = reg_lock(r, LOCK_SH, err))) goto out;
    lfd = o->dry_run ? -1 : reg_lock_key(r, lock_key, err);
    if (lfd < 0 && !o->dry_run) { rc = err ? err->code : SL_EIO; goto out_unlock; }

    if ((rc = pull_resolve_commit(&p, rev, res, err))) goto out_unlock;
    rc = pull_find_stored(&p, rev, &v, &have, res, err);
    if (!have) {
        if (!rc) rc = pull_list_tree(&p, true, err);
        if (!rc) rc = select_files(&p, err);
        for (size_t i = 0; i < p.n_jobs && !rc; i++) p.total += p.jobs[i].size;
        if (!rc && o->dry_run) {
            rc = make_plan(&p, res, err);
            goto out_unlock;
        }
        if (!rc) rc = check_disk(&p, err);
        /* 4. reuse the HF cache's copy of this commit */
        char *cache = sl_reg_hf_cache_dir();
        if (!rc && cache) p.hf_snap = sl_reg_hf_snapshot(cache, o->repo, p.commit, NULL);
        free(cache);
        if (!rc) rc = pull_download(&p, err);
        if (!rc) rc = pull_register(&p, rev, &v, err);
    }
    if (!rc && o->hf_cache && v) rc = pull_write_hf_cache(&p, v, have, rev, err);
    if (v) {
        res->files = v->n_files;
        res->bytes_total = v->size;
    }
    res->bytes_fetched = p.fetched;
    sl_reg_version_free(v);
out_unlock:
    reg_unlock_key(lfd);
    reg_unlock(r);
out:
    for (size_t i = 0; i < p.n_jobs; i++) free(p.jobs[i].path);
    free(p.jobs);
    free(p.hf_snap);
    free(lock_key);
    free(auth);
    free(endpoint);
    pthread_mutex_destroy(&p.mu);
    res->seconds = sl_now() - t0;
    return rc;
}
