/*
 * engine.c — the client side of the adapter protocol
 * (part8/adapters/PROTOCOL.md): an engine is a child process reading JSON
 * requests on its stdin and answering one JSON line each on its stdout.
 * silica's own engine is a fork running sl_cmp_serve (serve.c); the other
 * engines are Python adapters run by $SILICA_PYTHON (else python3).
 *
 * Invariants:
 *  - Every started child is reaped by sl_cmp_engine_close (quit, close the
 *    pipe, waitpid); its stderr goes to an unlinked temporary file whose
 *    last line explains an adapter that died without answering.
 *  - Writing to a dead adapter is an error, never a SIGPIPE: SIGPIPE is
 *    ignored once an engine is started (when it had its default action).
 *  - Logits travel as base64 of little-endian float32 [n x vocab].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "compare/compare_impl.h"
#include "silica/io.h"

struct sl_cmp_engine {
    char name[32];
    char version[128];
    char device[128]; /* what the last load answer named ("" if none) */
    char *formats;    /* comma-joined, e.g. "hf,mlx" */
    pid_t pid;
    FILE *in, *out;   /* child's stdin (we write), child's stdout (we read) */
    int err_fd;       /* child's stderr (unlinked temp file) */
    char *line;
    size_t cap;
};

/* dirname of p into buf. */
static void dir_of(const char *p, char *buf, size_t cap) {
    const char *s = strrchr(p, '/');
    if (!s) snprintf(buf, cap, ".");
    else if (s == p) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(s - p), p);
}

const char *sl_cmp_adapter_dir(void) {
    static char buf[PATH_MAX + 64];
    const char *env = getenv("SILICA_ADAPTERS");
    if (env && *env) return sl_path_is_dir(env) ? env : NULL;
    if (sl_installed_path("adapters", buf, sizeof buf) && sl_path_is_dir(buf)) return buf;
    /* The source tree: this file is <root>/src/compare/engine.c (absolute in CMake builds). */
    char d[PATH_MAX], src[PATH_MAX], root[PATH_MAX];
    dir_of(__FILE__, d, sizeof d);
    dir_of(d, src, sizeof src);
    dir_of(src, root, sizeof root);
    snprintf(buf, sizeof buf, "%s/part8/adapters", root);
    return sl_path_is_dir(buf) ? buf : NULL;
}

/* <adapter dir>/<name>_adapter.py ('.' and '-' -> '_'), malloc'd, or NULL. */
static char *adapter_path(const char *name) {
    const char *dir = sl_cmp_adapter_dir();
    if (!dir || !*name || strlen(name) > 24) return NULL;
    char file[64];
    size_t k = 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '.' || c == '-') c = '_';
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return NULL;
        file[k++] = c;
    }
    snprintf(file + k, sizeof file - k, "_adapter.py");
    char *p = sl_path_join(dir, file);
    if (p && !sl_path_exists(p)) {
        free(p);
        p = NULL;
    }
    return p;
}

bool sl_cmp_engine_known(const char *name) {
    if (strcmp(name, "silica") == 0) return true;
    char *p = adapter_path(name);
    free(p);
    return p != NULL;
}

/* The last non-empty line of the child's stderr, into buf. */
static void stderr_tail(sl_cmp_engine *e, char *buf, size_t cap) {
    buf[0] = 0;
    if (e->err_fd < 0) return;
    off_t end = lseek(e->err_fd, 0, SEEK_END);
    if (end <= 0) return;
    char tmp[2048];
    off_t start = end > (off_t)sizeof tmp - 1 ? end - (off_t)sizeof tmp + 1 : 0;
    ssize_t n = pread(e->err_fd, tmp, (size_t)(end - start), start);
    if (n <= 0) return;
    tmp[n] = 0;
    while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r')) tmp[--n] = 0;
    char *nl = strrchr(tmp, '\n');
    const char *last = nl ? nl + 1 : tmp;
    size_t k = strlen(last) < cap ? strlen(last) : cap - 1;
    memcpy(buf, last, k);
    buf[k] = 0;
}

/* Read one response line as JSON; an {"error": ...} answer becomes the error. */
static int read_reply(sl_cmp_engine *e, cJSON **out, sl_error *err) {
    *out = NULL;
    ssize_t n = getline(&e->line, &e->cap, e->out);
    if (sl_interrupted()) return sl_errorf(err, SL_EINTR, "interrupted");
    if (n <= 0) {
        char tail[512];
        stderr_tail(e, tail, sizeof tail);
        return sl_errorf(err, SL_EIO, "engine %s exited without answering%s%s", e->name, tail[0] ? ": " : "", tail);
    }
    cJSON *j = cJSON_ParseWithLength(e->line, (size_t)n);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return sl_errorf(err, SL_EINVAL, "engine %s: answer is not a JSON object (see part8/adapters/PROTOCOL.md)",
                         e->name);
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(msg)) {
        int code = strncmp(msg->valuestring, "not installed", 13) == 0 ? SL_EUNSUPPORTED : SL_EINVAL;
        sl_errorf(err, code, "%s", msg->valuestring);
        cJSON_Delete(j);
        return code;
    }
    *out = j;
    return 0;
}

static int send_request(sl_cmp_engine *e, cJSON *req, sl_error *err) {
    char *s = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!s) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int bad = fputs(s, e->in) < 0 || fputc('\n', e->in) == EOF || fflush(e->in) != 0;
    free(s);
    if (bad) {
        char tail[512];
        stderr_tail(e, tail, sizeof tail);
        return sl_errorf(err, SL_EIO, "engine %s: cannot send a request (it exited)%s%s", e->name,
                         tail[0] ? ": " : "", tail);
    }
    return 0;
}

static int spawn(sl_cmp_engine *e, const char *script, sl_error *err) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0) return sl_errorf(err, SL_EIO, "pipe: %s", strerror(errno));
    if (pipe(from_child) != 0) {
        close(to_child[0]);
        close(to_child[1]);
        return sl_errorf(err, SL_EIO, "pipe: %s", strerror(errno));
    }
    const char *td = getenv("TMPDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/silica-engine-XXXXXX", td && *td ? td : "/tmp");
    int efd = mkstemp(path);
    if (efd >= 0) unlink(path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e2 = errno;
        close(to_child[0]), close(to_child[1]), close(from_child[0]), close(from_child[1]);
        if (efd >= 0) close(efd);
        return sl_errorf(err, SL_EIO, "fork: %s", strerror(e2));
    }
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        if (efd >= 0) dup2(efd, 2);
        close(to_child[0]), close(to_child[1]), close(from_child[0]), close(from_child[1]);
        if (efd > 2) close(efd);
        if (!script) {
            FILE *in = fdopen(0, "r"), *out = fdopen(1, "w");
            _exit(in && out ? sl_cmp_serve(in, out) : 2);
        }
        const char *py = getenv("SILICA_PYTHON");
        if (!py || !*py) py = "python3";
        execlp(py, py, "-u", script, (char *)NULL);
        /* no interpreter: answer the hello ourselves so the engine reads as not installed */
        dprintf(1, "{\"protocol\": 1, \"engine\": \"%s\", \"error\": \"not installed: cannot run %s: %s\"}\n", e->name,
                py, strerror(errno));
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    e->pid = pid;
    e->err_fd = efd;
    e->in = fdopen(to_child[1], "w");
    e->out = fdopen(from_child[0], "r");
    if (!e->in || !e->out) return sl_errorf(err, SL_ENOMEM, "out of memory");
    return 0;
}

static int parse_hello(sl_cmp_engine *e, sl_error *err) {
    cJSON *h;
    int rc = read_reply(e, &h, err);
    if (rc == SL_EUNSUPPORTED) return rc;
    if (rc) {
        sl_error_prefix(err, "engine %s: ", e->name);
        return rc;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(h, "protocol");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "version");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(h, "formats");
    if (!cJSON_IsNumber(p) || p->valuedouble != 1 || !cJSON_IsString(v) || !cJSON_IsArray(f)) {
        cJSON_Delete(h);
        return sl_errorf(err, SL_EINVAL, "engine %s: hello needs protocol 1, version and formats (PROTOCOL.md)",
                         e->name);
    }
    snprintf(e->version, sizeof e->version, "%s", v->valuestring);
    size_t len = 1;
    const cJSON *x;
    cJSON_ArrayForEach(x, f) if (cJSON_IsString(x)) len += strlen(x->valuestring) + 1;
    e->formats = calloc(1, len);
    if (!e->formats) {
        cJSON_Delete(h);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    cJSON_ArrayForEach(x, f) if (cJSON_IsString(x)) {
        if (e->formats[0]) strcat(e->formats, ",");
        strcat(e->formats, x->valuestring);
    }
    cJSON_Delete(h);
    return 0;
}

int sl_cmp_engine_start(const char *name, sl_cmp_engine **out, sl_error *err) {
    *out = NULL;
    bool own = strcmp(name, "silica") == 0;
    char *script = own ? NULL : adapter_path(name);
    if (!own && !script) return sl_errorf(err, SL_EINVAL, "unknown engine '%s' (no %s adapter in %s)", name, name,
                                          sl_cmp_adapter_dir() ? sl_cmp_adapter_dir() : "part8/adapters");
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    sl_cmp_engine *e = calloc(1, sizeof *e);
    if (!e) {
        free(script);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->err_fd = -1;
    int rc = spawn(e, script, err);
    free(script);
    if (!rc) rc = parse_hello(e, err);
    if (rc) {
        sl_cmp_engine_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

const char *sl_cmp_engine_name(const sl_cmp_engine *e) { return e->name; }
const char *sl_cmp_engine_version(const sl_cmp_engine *e) { return e->version; }
const char *sl_cmp_engine_device(const sl_cmp_engine *e) { return e->device; }

bool sl_cmp_engine_reads(const sl_cmp_engine *e, const char *format) {
    size_t n = strlen(format);
    for (const char *p = e->formats; p && *p;) {
        const char *c = strchr(p, ',');
        size_t k = c ? (size_t)(c - p) : strlen(p);
        if (k == n && strncmp(p, format, n) == 0) return true;
        p = c ? c + 1 : p + k;
    }
    return false;
}

int sl_cmp_engine_load(sl_cmp_engine *e, const char *model, int n_ctx, const char *device, int gpu_layers,
                       sl_error *err) {
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "load");
    cJSON_AddStringToObject(req, "model", model);
    cJSON_AddNumberToObject(req, "n_ctx", n_ctx);
    if (device) cJSON_AddStringToObject(req, "device", device);
    if (gpu_layers) cJSON_AddNumberToObject(req, "gpu_layers", gpu_layers);
    int rc = send_request(e, req, err);
    cJSON *r = NULL;
    if (!rc) rc = read_reply(e, &r, err);
    const cJSON *d = r ? cJSON_GetObjectItemCaseSensitive(r, "device") : NULL;
    snprintf(e->device, sizeof e->device, "%s", cJSON_IsString(d) ? d->valuestring : "");
    cJSON_Delete(r);
    return rc;
}

static int parse_eval(sl_cmp_engine *e, const cJSON *j, int n, sl_cmp_result *r, sl_error *err) {
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(j, "logits_f32");
    const cJSON *greedy = cJSON_GetObjectItemCaseSensitive(j, "greedy");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 2 || !cJSON_IsString(b64) || !cJSON_IsArray(greedy))
        return sl_errorf(err, SL_EINVAL, "engine %s: eval answer needs shape [n, vocab], logits_f32, greedy",
                         e->name);
    double rows = cJSON_GetArrayItem(shape, 0)->valuedouble, V = cJSON_GetArrayItem(shape, 1)->valuedouble;
    if (rows != n || V < 1 || V > (1 << 24))
        return sl_errorf(err, SL_EINVAL, "engine %s: logits shape [%g, %g], expected [%d, vocab]", e->name, rows, V,
                         n);
    r->n = n;
    r->vocab = (int)V;
    size_t want = (size_t)n * (size_t)r->vocab * 4;
    if (sl_cmp_b64_decode(b64->valuestring, (void **)&r->logits, want, err)) {
        sl_error_prefix(err, "engine %s: logits_f32: ", e->name);
        return SL_EINVAL;
    }
    r->n_greedy = cJSON_GetArraySize(greedy);
    r->greedy = malloc(((size_t)r->n_greedy + 1) * sizeof *r->greedy);
    if (!r->greedy) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, greedy) r->greedy[k++] = cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= INT32_MAX ? (int32_t)x->valuedouble : -1;
    static const char *const keys[] = {"prompt_s", "ttft_s", "gen_s"};
    double *dst[] = {&r->prompt_s, &r->ttft_s, &r->gen_s};
    for (int i = 0; i < 3; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        *dst[i] = cJSON_IsNumber(t) ? t->valuedouble : 0;
    }
    const cJSON *rss = cJSON_GetObjectItemCaseSensitive(j, "peak_rss_bytes");
    r->peak_rss = cJSON_IsNumber(rss) && rss->valuedouble > 0 && rss->valuedouble < 1e18 ? (uint64_t)rss->valuedouble : 0;
    return 0;
}

int sl_cmp_engine_eval(sl_cmp_engine *e, const int32_t *ids, int n, int max_tokens, sl_cmp_result *r,
                       sl_error *err) {
    memset(r, 0, sizeof *r);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "eval");
    cJSON *a = cJSON_AddArrayToObject(req, "ids");
    for (int k = 0; k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[k]));
    cJSON_AddStringToObject(req, "want", "logits");
    cJSON_AddNumberToObject(req, "max_tokens", max_tokens);
    int rc = send_request(e, req, err);
    cJSON *j = NULL;
    if (!rc) rc = read_reply(e, &j, err);
    if (!rc) rc = parse_eval(e, j, n, r, err);
    cJSON_Delete(j);
    if (rc) sl_cmp_result_free(r);
    return rc;
}

void sl_cmp_result_free(sl_cmp_result *r) {
    free(r->logits);
    free(r->greedy);
    memset(r, 0, sizeof *r);
}

void sl_cmp_engine_close(sl_cmp_engine *e) {
    if (!e) return;
    if (e->in) {
        fputs("{\"op\": \"quit\"}\n", e->in);
        fclose(e->in);
    }
    if (e->out) fclose(e->out);
    if (e->pid > 0) {
        int st;
        while (waitpid(e->pid, &st, 0) < 0 && errno == EINTR) {}
    }
    if (e->err_fd >= 0) close(e->err_fd);
    free(e->formats);
    free(e->line);
    free(e);
}
