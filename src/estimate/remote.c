/*
 * remote.c — `silica fit ORG/NAME` before download: the estimate of a hub
 * repository from its file list and headers only.
 *
 * How: the registry lists the files a pull would fetch (sl_reg_pull with
 * dry_run: revision -> commit, tree API, default selection); config.json
 * and *.index.json are fetched whole (small, bounded); each .safetensors
 * header is read with two HTTP Range requests (bytes 0-7: the header
 * length N; bytes 8..8+N-1: the JSON header); a .gguf header with Range
 * requests over a growing prefix (1 MiB, doubling) until it parses and the
 * first tensor's data begins within the bytes read (the header ends before
 * it, so no parsed byte came from the hole).  The bytes land in a private temporary
 * directory as SPARSE files of the real sizes (header bytes at their
 * offsets, a hole for the rest), which then goes through
 * sl_fit_model_load like any local model — so the remote estimate is the
 * local estimate of the same files, byte for byte, with no second parser.
 * PyTorch .bin / .pt / .npz weights are sizes only: the model comes from
 * config.json and weights_bytes is the files' total (noted).
 *
 * Invariants: no request asks for more than a header (every Range answer is
 * bounded by max_body, and a server that ignores Range is an error, not a
 * download); the temporary directory is removed on every path; offline
 * (SILICA_OFFLINE / HF_HUB_OFFLINE) makes no request and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "estimate/estimate_impl.h"
#include "core/fsutil.h"
#include "net/http.h"
#include "silica/checkpoint.h"
#include "silica/io.h"
#include "silica/memory.h"
#include "silica/registry.h"

#define SMALL_FILE_MAX (16u << 20)    /* config.json, index.json */
#define HEADER_MAX (64u << 20)        /* a safetensors or GGUF header */
#define GGUF_FIRST (1u << 20)

typedef struct remote {
    const sl_fit_remote_opts *o;
    char *endpoint;
    const char *commit;
    const char *headers[4];
    char *auth;
    char *dir;                 /* the sparse mirror */
    uint64_t bytes_read;       /* answer bytes received */
} remote;

/* GET {endpoint}/{repo}/resolve/{commit}/{path} with an optional Range
 * [from, from + len); *body malloc'd (exactly len bytes when ranged). */
static int fetch(remote *rm, const char *path, uint64_t from, uint64_t len, bool ranged, char **body, size_t *blen,
                 sl_error *err) {
    *body = NULL;
    *blen = 0;
    char *url = sl_fmt("%s/%s/resolve/%s/%s", rm->endpoint, rm->o->repo, rm->commit, path);
    char range[80];
    const char *hdrs[5] = {rm->headers[0], rm->headers[1], NULL, NULL, NULL};
    int k = rm->headers[1] ? 2 : 1;
    if (ranged) {
        snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)from,
                 (unsigned long long)(from + len - 1));
        hdrs[k] = range;
    }
    if (!url) return sl_errorf(err, SL_ENOMEM, "out of memory");
    sl_http_req rq = {.url = url, .headers = hdrs, .max_body = ranged ? len : SMALL_FILE_MAX};
    sl_http_resp rs;
    int rc = sl_http_do(&rq, &rs, err);
    free(url);
    if (rc) {
        if (ranged && rs.status == 200)
            rc = sl_errorf(err, SL_EINVAL, "%s: %s: the hub ignored the Range request (answered 200 with the whole file); "
                           "cannot read the header without downloading", rm->o->repo, path);
        else if (rs.unresolved) sl_error_prefix(err, "%s: ", rm->o->repo);
        else sl_error_prefix(err, "%s: %s: ", rm->o->repo, path);
        sl_http_resp_free(&rs);
        return rc;
    }
    rm->bytes_read += rs.len;
    if (rs.status != (ranged ? 206 : 200) || (ranged && rs.len != len)) {
        rc = sl_errorf(err, SL_EINVAL, "%s: %s at %s answered %ld%s%s (expected %s)", rm->o->repo, path, rm->endpoint,
                       rs.status, rs.error_code[0] ? " " : "", rs.error_code,
                       ranged ? "206 Partial Content with the requested bytes" : "200");
        sl_http_resp_free(&rs);
        return rc;
    }
    *body = rs.body ? rs.body : calloc(1, 1);
    *blen = rs.len;
    rs.body = NULL;
    sl_http_resp_free(&rs);
    return *body ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
}

/* Create dir/path (parents too) of `size` bytes holding `data` at offset 0. */
static int put_sparse(remote *rm, const char *path, const char *data, size_t n, uint64_t size, sl_error *err) {
    char *full = sl_path_join(rm->dir, path);
    if (!full) return sl_errorf(err, SL_ENOMEM, "out of memory");
    char *slash = strrchr(full, '/');
    int rc = 0;
    if (slash && slash > full + strlen(rm->dir)) {
        *slash = 0;
        rc = sl_mkdir_p(full, err);
        *slash = '/';
    }
    int fd = rc ? -1 : open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!rc && fd < 0) rc = sl_errorf(err, SL_EIO, "%s: cannot create: %s", full, strerror(errno));
    for (size_t off = 0; !rc && off < n;) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = sl_errorf(err, SL_EIO, "%s: write failed: %s", full, strerror(errno));
        else off += (size_t)w;
    }
    if (!rc && ftruncate(fd, (off_t)size) != 0) rc = sl_errorf(err, SL_EIO, "%s: %s", full, strerror(errno));
    if (fd >= 0) close(fd);
    free(full);
    return rc;
}

static int mirror_safetensors(remote *rm, const sl_reg_pull_file *f, sl_error *err) {
    if (f->size < 8)
        return sl_errorf(err, SL_EINVAL, "%s: %s: %llu bytes, too short for a safetensors file", rm->o->repo, f->path,
                         (unsigned long long)f->size);
    char *b8, *hdr = NULL;
    size_t n8, nh = 0;
    int rc = fetch(rm, f->path, 0, 8, true, &b8, &n8, err);
    if (rc) return rc;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | (unsigned char)b8[i];
    uint64_t end;
    if (len == 0 || len > HEADER_MAX || !sl_add_u64(len, 8, &end) || end > f->size)
        rc = sl_errorf(err, SL_EINVAL, "%s: %s: header length %llu does not fit the file (%llu bytes; at most %u)",
                       rm->o->repo, f->path, (unsigned long long)len, (unsigned long long)f->size, HEADER_MAX);
    if (!rc) rc = fetch(rm, f->path, 8, len, true, &hdr, &nh, err);
    char *all = rc ? NULL : malloc(8 + nh);
    if (!rc && !all) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc) {
        memcpy(all, b8, 8);
        memcpy(all + 8, hdr, nh);
        rc = put_sparse(rm, f->path, all, 8 + nh, f->size, err);
    }
    free(all);
    free(hdr);
    free(b8);
    return rc;
}

/* A GGUF header: grow the prefix until the file parses and the first
 * tensor's data begins inside it (so no parsed byte came from the hole). */
static int mirror_gguf(remote *rm, const sl_reg_pull_file *f, sl_error *err) {
    uint64_t want = f->size < GGUF_FIRST ? f->size : GGUF_FIRST;
    char *full = sl_path_join(rm->dir, f->path);
    if (!full) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc;
    for (;;) {
        char *b;
        size_t n;
        if ((rc = fetch(rm, f->path, 0, want, true, &b, &n, err))) break;
        rc = put_sparse(rm, f->path, b, n, f->size, err);
        free(b);
        if (rc) break;
        sl_checkpoint *ck = NULL;
        sl_error e2 = {0};
        bool ok = sl_checkpoint_open(full, &ck, &e2) == 0;
        uint64_t first = UINT64_MAX;
        for (size_t i = 0; ok && i < ck->n_tensors; i++)
            if (ck->tensors[i].offset < first) first = ck->tensors[i].offset;
        sl_checkpoint_close(ck);
        /* header end <= data start <= first tensor: all parsed bytes were real */
        if (ok && (first <= want || want == f->size)) break;
        if (want == f->size || want >= HEADER_MAX) {
            rc = ok ? sl_errorf(err, SL_EINVAL, "%s: %s: GGUF header larger than %u bytes", rm->o->repo, f->path, HEADER_MAX)
                    : sl_errorf(err, SL_EINVAL, "%s: %s: not a readable GGUF header (%s)", rm->o->repo, f->path, e2.msg);
            break;
        }
        want = want * 2 > f->size ? f->size : want * 2;
    }
    free(full);
    return rc;
}

/* Replace every "<dir>" in s by repo (messages and notes name the repository). */
static void unmirror(char *s, size_t cap, const char *dir, const char *repo) {
    size_t dl = strlen(dir);
    char *p;
    while ((p = strstr(s, dir))) {
        char t[1024];
        snprintf(t, sizeof t, "%.*s%s%s", (int)(p - s), s, repo, p + dl);
        size_t l = strlen(t) < cap ? strlen(t) : cap - 1;   /* cut, like the original buffer would */
        memcpy(s, t, l);
        s[l] = 0;
    }
}

static bool is_small_meta(const char *p) {
    const char *b = sl_path_basename(p);
    return !strcmp(b, "config.json") || sl_str_ends_with(b, ".index.json");
}

int sl_fit_model_remote(const sl_fit_remote_opts *o, sl_fit_model **out, uint64_t *bytes_read, sl_error *err) {
    *out = NULL;
    if (bytes_read) *bytes_read = 0;
    if (sl_reg_offline_env())
        return sl_errorf(err, SL_EINVAL,
                         "%s: not a local path nor in the store, and offline (SILICA_OFFLINE / HF_HUB_OFFLINE): "
                         "a hub estimate needs the network",
                         o->repo);
    remote rm = {.o = o};
    const char *ep = o->endpoint ? o->endpoint : getenv("HF_ENDPOINT");
    rm.endpoint = strdup(ep && *ep ? ep : "https://huggingface.co");
    if (!rm.endpoint) return sl_errorf(err, SL_ENOMEM, "out of memory");
    size_t el = strlen(rm.endpoint);
    while (el > 0 && rm.endpoint[el - 1] == '/') rm.endpoint[--el] = 0;
    const char *tok = o->token ? o->token : getenv("HF_TOKEN");
    rm.auth = tok && *tok ? sl_fmt("Authorization: Bearer %s", tok) : NULL;
    rm.headers[0] = "Accept-Encoding: identity";
    rm.headers[1] = rm.auth;
    sl_reg *r = NULL;
    sl_reg_pull_result res;
    memset(&res, 0, sizeof res);
    sl_reg_pull_opts po = {.repo = o->repo, .revision = o->revision, .endpoint = rm.endpoint, .token = o->token,
                           .include = o->include, .n_include = o->n_include, .dry_run = true};
    int rc = sl_reg_open(NULL, &r, err);
    if (!rc) rc = sl_reg_pull(r, &po, &res, err);
    sl_reg_close(r);
    rm.commit = res.revision;
    if (!rc) {
        const char *tmp = getenv("TMPDIR");
        char *tmpl = sl_fmt("%s/silica-fit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!tmpl || !mkdtemp(tmpl)) {
            rc = sl_errorf(err, SL_EIO, "%s: cannot create a temporary directory: %s", o->repo, strerror(errno));
            free(tmpl);
        } else rm.dir = tmpl;
    }
    uint64_t other_bytes = 0;
    size_t n_weights = 0, n_other = 0;
    for (size_t i = 0; !rc && i < res.n_plan; i++) {
        const sl_reg_pull_file *f = &res.plan[i];
        if (sl_str_ends_with(f->path, ".safetensors")) {
            rc = mirror_safetensors(&rm, f, err);
            n_weights++;
        } else if (sl_str_ends_with(f->path, ".gguf")) {
            rc = mirror_gguf(&rm, f, err);
            n_weights++;
        } else if (sl_str_ends_with(f->path, ".bin") || sl_str_ends_with(f->path, ".pt") ||
                   sl_str_ends_with(f->path, ".pth") || sl_str_ends_with(f->path, ".npz")) {
            if (!sl_add_u64(other_bytes, f->size, &other_bytes))
                rc = sl_errorf(err, SL_EINVAL, "%s: file sizes overflow", o->repo);
            n_other++;
        } else if (is_small_meta(f->path)) {
            if (f->size > SMALL_FILE_MAX) {
                rc = sl_errorf(err, SL_EINVAL, "%s: %s: %llu bytes, more than the %u a config may have", o->repo,
                               f->path, (unsigned long long)f->size, SMALL_FILE_MAX);
                break;
            }
            char *b;
            size_t n;
            if (!(rc = fetch(&rm, f->path, 0, 0, false, &b, &n, err))) {
                rc = put_sparse(&rm, f->path, b, n, n, err);
                free(b);
            }
        }
    }
    if (!rc && !n_weights && !n_other)
        rc = sl_errorf(err, SL_EINVAL, "%s@%.12s: no weight files (*.safetensors, *.gguf, *.bin) in the repository",
                       o->repo, rm.commit);
    if (!rc && n_weights && n_other) other_bytes = 0;   /* the selection never mixes; safetensors win */
    if (!rc && (rc = sl_fit_model_load(rm.dir, out, err)) && err) unmirror(err->msg, sizeof err->msg, rm.dir, o->repo);
    if (!rc) {
        sl_fit_model *m = *out;
        /* notes and the name speak of the repository, not the temporary mirror */
        for (int k = 0; k < m->n_notes; k++) unmirror(m->notes[k], sizeof m->notes[k], rm.dir, o->repo);
        char *nm = strdup(o->repo);
        if (nm) {
            free(m->name);
            m->name = nm;
        }
        snprintf(m->repo, sizeof m->repo, "%s", o->repo);
        if (other_bytes && !m->from_headers) {
            m->weights_bytes = other_bytes;
            fit_note(m, "%s: weights_bytes is the size of %zu PyTorch/NumPy file(s) (headers not read)", o->repo, n_other);
        }
    }
    if (rm.dir) sl_rm_rf(rm.dir);
    free(rm.dir);
    sl_reg_pull_result_free(&res);
    free(rm.auth);
    free(rm.endpoint);
    if (bytes_read) *bytes_read = rm.bytes_read;
    if (rc && *out) {
        sl_fit_model_free(*out);
        *out = NULL;
    }
    return rc;
}
