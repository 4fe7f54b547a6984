/*
 * lfs_client.c — a Git LFS client: objects moved between a local directory
 * and an LFS remote, either a file:// repository (objects at
 * <repo>/lfs/objects/<aa>/<bb>/<oid>, or <repo>/.git/lfs/objects/... for a
 * work tree) or an HTTP server speaking the batch API with basic transfers.
 *
 * Invariants:
 *  - Every fetched object is written to a temporary next to its final name,
 *    its size and sha256 checked, then renamed: no unverified object is ever
 *    visible under its oid.  Objects pushed to a file:// remote are linked or
 *    copied to a temporary and renamed likewise.
 *  - Batch answers are bounded JSON; per-object errors and expired actions are
 *    reported with the oid; action headers are sent verbatim.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "registry/reg_impl.h"
#include "silica/lfs.h"

typedef struct remote {
    bool http;
    char *objects;   /* file:// */
    char *lfs_url;   /* http */
    char *userpwd;   /* from `git credential fill` after a 401 */
} remote;

static void remote_free(remote *r) {
    free(r->objects);
    free(r->lfs_url);
    if (r->userpwd) memset(r->userpwd, 0, strlen(r->userpwd));
    free(r->userpwd);
}

/* Ask git's credential helpers for the LFS URL's host, as git-lfs does
 * (GIT_TERMINAL_PROMPT=0: never prompt).  Returns "user:password" or NULL. */
static char *credential_fill(const char *url) {
    const char *hs = strstr(url, "://");
    if (!hs) return NULL;
    for (const char *p = url; p < hs; p++)   /* the scheme goes into a shell command: letters only */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '+' ||
              *p == '-' || *p == '.'))
            return NULL;
    hs += 3;
    size_t hl = strcspn(hs, "/");
    if (memchr(hs, '@', hl)) return NULL;   /* the URL carries its own credentials */
    for (size_t i = 0; i < hl; i++) {
        char c = hs[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':'))
            return NULL;
    }
    char *cmd = sl_fmt("printf 'protocol=%.*s\\nhost=%.*s\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill 2>/dev/null",
                       (int)(hs - 3 - url), url, (int)hl, hs);
    FILE *f = cmd ? popen(cmd, "r") : NULL;
    free(cmd);
    if (!f) return NULL;
    char line[1024], user[sizeof line] = "", pass[sizeof line] = "";
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "username=", 9)) snprintf(user, sizeof user, "%s", line + 9);
        else if (!strncmp(line, "password=", 9)) snprintf(pass, sizeof pass, "%s", line + 9);
    }
    int st = pclose(f);
    char *out = (st == 0 && user[0]) ? sl_fmt("%s:%s", user, pass) : NULL;
    memset(pass, 0, sizeof pass);
    return out;
}

static int remote_parse(const char *s, remote *r, sl_error *err) {
    memset(r, 0, sizeof *r);
    if (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8)) {
        r->http = true;
        size_t n = strlen(s);
        while (n && s[n - 1] == '/') n--;
        if (n >= 9 && !strncmp(s + n - 9, "/info/lfs", 9)) r->lfs_url = strndup(s, n);
        else r->lfs_url = sl_fmt("%.*s/info/lfs", (int)n, s);
        return r->lfs_url ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    const char *path = !strncmp(s, "file://", 7) ? s + 7 : s;
    if (!sl_path_is_dir(path)) return sl_errorf(err, SL_EINVAL, "%s: LFS remote is not a directory (expected file:///path/repo.git or http(s)://)", s);
    char *git = sl_fmt("%s/.git", path);
    r->objects = git && sl_path_is_dir(git) ? sl_fmt("%s/.git/lfs/objects", path) : sl_fmt("%s/lfs/objects", path);
    free(git);
    return r->objects ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
}

static char *object_path(const char *objects, const char *oid) {
    return sl_fmt("%s/%.2s/%.2s/%s", objects, oid, oid + 2, oid);
}

/* hash a file that already holds the object; rename to final when it checks out */
static int verify_and_place(const char *tmp, const char *final, const sl_lfs_object *o, sl_error *err) {
    char got[65];
    uint64_t size = 0;
    int rc = sl_hash_file(tmp, got, &size, err);
    if (!rc && size != o->size)
        rc = sl_errorf(err, SL_EINVAL, "LFS object %s: %llu bytes, the pointer says %llu", o->oid, (unsigned long long)size,
                       (unsigned long long)o->size);
    if (!rc && strcmp(got, o->oid) != 0) rc = sl_errorf(err, SL_EINVAL, "LFS object %s: corrupt (sha256 %s)", o->oid, got);
    if (!rc && rename(tmp, final) != 0) rc = sl_errorf(err, SL_EIO, "%s: cannot rename: %s", final, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

static int link_or_copy(const char *src, const char *dst, sl_error *err) {
    if (linkat(AT_FDCWD, src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) == 0) return 0;
    return sl_copy_file(src, dst, err);
}

/* ------------------------------------------------------------------ */
/* HTTP batch API                                                       */

static const char *const k_json_headers[] = {"Accept: application/vnd.git-lfs+json",
                                             "Content-Type: application/vnd.git-lfs+json", NULL};

static int batch(remote *r, const char *op, const sl_lfs_object *objs, size_t n, cJSON **out, sl_error *err) {
    *out = NULL;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "operation", op);
    cJSON *tr = cJSON_AddArrayToObject(req, "transfers");
    cJSON_AddItemToArray(tr, cJSON_CreateString("basic"));
    cJSON *arr = cJSON_AddArrayToObject(req, "objects");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "oid", objs[i].oid);
        cJSON_AddNumberToObject(o, "size", (double)objs[i].size);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddStringToObject(req, "hash_algo", "sha256");
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    char *url = sl_fmt("%s/objects/batch", r->lfs_url);
    sl_http_req rq = {.method = "POST", .url = url, .headers = k_json_headers, .body = body, .userpwd = r->userpwd};
    sl_http_resp rs;
    int rc = (!body || !url) ? sl_errorf(err, SL_ENOMEM, "out of memory") : sl_http_do(&rq, &rs, err);
    if (!rc && rs.status == 401 && !r->userpwd && (r->userpwd = credential_fill(r->lfs_url))) {
        sl_http_resp_free(&rs);
        rq.userpwd = r->userpwd;
        rc = sl_http_do(&rq, &rs, err);
    }
    free(body);
    if (!rc) {
        if (rs.status == 200) {
            *out = rs.body ? cJSON_Parse(rs.body) : NULL;
            if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*out, "objects")))
                rc = sl_errorf(err, SL_EINVAL, "%s: batch answer has no \"objects\" array", url);
            cJSON *t = cJSON_GetObjectItemCaseSensitive(*out, "transfer");
            if (!rc && t && (!cJSON_IsString(t) || strcmp(t->valuestring, "basic") != 0))
                rc = sl_errorf(err, SL_EUNSUPPORTED, "%s: server chose transfer '%s', only basic is supported", url,
                               cJSON_IsString(t) ? t->valuestring : "?");
        } else {
            cJSON *j = rs.body ? cJSON_Parse(rs.body) : NULL;
            cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
            if (rs.status == 401)
                rc = sl_errorf(err, SL_EINVAL, "%s: 401 authentication required%s%s%s (no git credential helper answered; or put user:password@ in the URL)",
                               url, rs.auth[0] ? " (LFS-Authenticate: " : "", rs.auth, rs.auth[0] ? ")" : "");
            else
                rc = sl_errorf(err, SL_EINVAL, "%s: batch %s answered %ld%s%s", url, op, rs.status, cJSON_IsString(m) ? ": " : "",
                               cJSON_IsString(m) ? m->valuestring : "");
            cJSON_Delete(j);
        }
        sl_http_resp_free(&rs);
    }
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    free(url);
    return rc;
}

typedef struct action {
    const char *href;
    char **headers;   /* NULL-terminated "K: V" */
} action;

static void action_free(action *a) {
    for (size_t i = 0; a->headers && a->headers[i]; i++) free(a->headers[i]);
    free(a->headers);
}

/* find the object answer for oid; fill the named action (absent -> href NULL) */
static int object_action(cJSON *ans, const sl_lfs_object *o, const char *name, action *a, sl_error *err) {
    memset(a, 0, sizeof *a);
    cJSON *e, *objs = cJSON_GetObjectItemCaseSensitive(ans, "objects");
    cJSON_ArrayForEach(e, objs) {
        cJSON *oid = cJSON_GetObjectItemCaseSensitive(e, "oid");
        if (!cJSON_IsString(oid) || strcmp(oid->valuestring, o->oid) != 0) continue;
        cJSON *er = cJSON_GetObjectItemCaseSensitive(e, "error");
        if (er) {
            cJSON *c = cJSON_GetObjectItemCaseSensitive(er, "code"), *m = cJSON_GetObjectItemCaseSensitive(er, "message");
            return sl_errorf(err, SL_EINVAL, "LFS object %s: server error %d%s%s", o->oid, cJSON_IsNumber(c) ? c->valueint : 0,
                             cJSON_IsString(m) ? ": " : "", cJSON_IsString(m) ? m->valuestring : "");
        }
        cJSON *act = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "actions"), name);
        if (!act) return 0;
        cJSON *href = cJSON_GetObjectItemCaseSensitive(act, "href");
        if (!cJSON_IsString(href) || (strncmp(href->valuestring, "http://", 7) && strncmp(href->valuestring, "https://", 8)))
            return sl_errorf(err, SL_EINVAL, "LFS object %s: %s action without an http(s) href", o->oid, name);
        cJSON *ei = cJSON_GetObjectItemCaseSensitive(act, "expires_in"), *ea = cJSON_GetObjectItemCaseSensitive(act, "expires_at");
        if (cJSON_IsNumber(ei) && ei->valuedouble <= 0)
            return sl_errorf(err, SL_EINVAL, "LFS object %s: %s action already expired (expires_in %g)", o->oid, name, ei->valuedouble);
        if (!cJSON_IsNumber(ei) && cJSON_IsString(ea) && strlen(ea->valuestring) >= 19) {
            char now[32];
            time_t t = time(NULL);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S", &tm);
            if (strncmp(ea->valuestring, now, 19) <= 0)
                return sl_errorf(err, SL_EINVAL, "LFS object %s: %s action expired at %s", o->oid, name, ea->valuestring);
        }
        a->href = href->valuestring;
        cJSON *h = cJSON_GetObjectItemCaseSensitive(act, "header");
        size_t nh = (size_t)cJSON_GetArraySize(h);
        a->headers = calloc(nh + 3, sizeof *a->headers);
        if (!a->headers) return sl_errorf(err, SL_ENOMEM, "out of memory");
        size_t k = 0;
        cJSON *hv;
        cJSON_ArrayForEach(hv, h) {
            if (cJSON_IsString(hv) && hv->string && !strpbrk(hv->string, "\r\n:") && !strpbrk(hv->valuestring, "\r\n"))
                a->headers[k++] = sl_fmt("%s: %s", hv->string, hv->valuestring);
        }
        return 0;
    }
    return sl_errorf(err, SL_EINVAL, "LFS object %s: missing from the batch answer", o->oid);
}

static int http_fetch(remote *r, const sl_lfs_object *objs, size_t n, const char *dst_dir, sl_error *err) {
    cJSON *ans = NULL;
    int rc = batch(r, "download", objs, n, &ans, err);
    for (size_t i = 0; !rc && i < n; i++) {
        const sl_lfs_object *o = &objs[i];
        char *final = sl_fmt("%s/%s", dst_dir, o->oid);
        if (final && sl_path_exists(final)) { free(final); continue; }
        action a;
        rc = object_action(ans, o, "download", &a, err);
        if (!rc && !a.href) rc = sl_errorf(err, SL_EINVAL, "LFS object %s: no download action", o->oid);
        char *tmp = sl_fmt("%s.tmp-%d", final ? final : "", (int)getpid());
        int fd = !rc ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        if (!rc && fd < 0) rc = sl_errorf(err, SL_EIO, "%s: %s", tmp, strerror(errno));
        if (!rc) {
            sl_dl d = {.url = a.href, .headers = (const char *const *)a.headers, .what = o->oid, .expect_size = o->size,
                       .fd = fd};
            reg_dl_hash hs;
            reg_dl_hash_attach(&d, &hs, false, 0);
            rc = sl_http_download(&d, err);
            sl_hasher_free(hs.h);
            sl_http_resp_free(&d.resp);
            fsync(fd);
        }
        if (fd >= 0) close(fd);
        if (!rc) rc = verify_and_place(tmp, final, o, err);
        else if (tmp) unlink(tmp);
        action_free(&a);
        free(tmp);
        free(final);
    }
    cJSON_Delete(ans);
    return rc;
}

static int http_push(remote *r, const sl_lfs_object *objs, size_t n, sl_lfs_src_fn src, void *ctx, sl_error *err) {
    cJSON *ans = NULL;
    int rc = batch(r, "upload", objs, n, &ans, err);
    for (size_t i = 0; !rc && i < n; i++) {
        const sl_lfs_object *o = &objs[i];
        action up, ver;
        memset(&ver, 0, sizeof ver);
        rc = object_action(ans, o, "upload", &up, err);
        if (!rc && up.href) {   /* no upload action: the server has it */
            size_t k = 0;
            while (up.headers[k]) k++;
            up.headers[k] = strdup("Content-Type: application/octet-stream");
            sl_http_req rq = {.method = "PUT", .url = up.href, .headers = (const char *const *)up.headers,
                              .upload_path = src(ctx, i), .upload_size = o->size};
            sl_http_resp rs;
            rc = sl_http_do(&rq, &rs, err);
            if (!rc && (rs.status < 200 || rs.status > 299))
                rc = sl_errorf(err, SL_EINVAL, "LFS object %s: upload answered %ld", o->oid, rs.status);
            if (!rc) sl_http_resp_free(&rs);
            if (!rc) rc = object_action(ans, o, "verify", &ver, err);
            if (!rc && ver.href) {
                size_t kv = 0;
                while (ver.headers[kv]) kv++;
                ver.headers[kv++] = strdup(k_json_headers[0]);
                ver.headers[kv] = strdup(k_json_headers[1]);
                char *body = sl_fmt("{\"oid\":\"%s\",\"size\":%llu}", o->oid, (unsigned long long)o->size);
                sl_http_req vq = {.method = "POST", .url = ver.href, .headers = (const char *const *)ver.headers, .body = body,
                                  .userpwd = r->userpwd};
                rc = sl_http_do(&vq, &rs, err);
                if (!rc && (rs.status < 200 || rs.status > 299))
                    rc = sl_errorf(err, SL_EINVAL, "LFS object %s: verify answered %ld", o->oid, rs.status);
                if (!rc) sl_http_resp_free(&rs);
                free(body);
            }
        }
        action_free(&up);
        action_free(&ver);
    }
    cJSON_Delete(ans);
    return rc;
}

/* ------------------------------------------------------------------ */

int sl_lfs_fetch(const char *remote_s, const sl_lfs_object *objs, size_t n, const char *dst_dir, sl_error *err) {
    remote r;
    int rc = remote_parse(remote_s, &r, err);
    if (rc) return rc;
    if (!(rc = sl_mkdir_p(dst_dir, err))) {
        if (r.http) rc = http_fetch(&r, objs, n, dst_dir, err);
        for (size_t i = 0; !r.http && !rc && i < n; i++) {
            char *src = object_path(r.objects, objs[i].oid), *final = sl_fmt("%s/%s", dst_dir, objs[i].oid);
            char *tmp = sl_fmt("%s.tmp-%d", final ? final : "", (int)getpid());
            if (!src || !final || !tmp) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
            else if (!sl_path_exists(final)) {
                if (!sl_path_exists(src)) rc = sl_errorf(err, SL_EINVAL, "LFS object %s is not on the remote %s", objs[i].oid, remote_s);
                else if (!(rc = link_or_copy(src, tmp, err))) rc = verify_and_place(tmp, final, &objs[i], err);
            }
            free(src);
            free(final);
            free(tmp);
        }
    }
    remote_free(&r);
    return rc;
}

int sl_lfs_push(const char *remote_s, const sl_lfs_object *objs, size_t n, sl_lfs_src_fn src, void *ctx, sl_error *err) {
    remote r;
    int rc = remote_parse(remote_s, &r, err);
    if (rc) return rc;
    if (r.http) rc = http_push(&r, objs, n, src, ctx, err);
    for (size_t i = 0; !r.http && !rc && i < n; i++) {
        char *dst = object_path(r.objects, objs[i].oid);
        char *dir = sl_fmt("%s/%.2s/%.2s", r.objects, objs[i].oid, objs[i].oid + 2);
        char *tmp = sl_fmt("%s.tmp-%d", dst ? dst : "", (int)getpid());
        struct stat st;
        if (!dst || !dir || !tmp) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else if (stat(dst, &st) == 0 && (uint64_t)st.st_size == objs[i].size) { /* already there */ }
        else if (!(rc = sl_mkdir_p(dir, err)) && !(rc = link_or_copy(src(ctx, i), tmp, err))) {
            if (rename(tmp, dst) != 0) {
                rc = sl_errorf(err, SL_EIO, "%s: cannot rename: %s", dst, strerror(errno));
                unlink(tmp);
            }
        }
        free(dst);
        free(dir);
        free(tmp);
    }
    remote_free(&r);
    return rc;
}
