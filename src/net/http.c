/*
 * http.c — libcurl requests for the hub and LFS clients: bounded JSON
 * answers with retries, and resumable downloads streamed to a sink.
 *
 * Invariants: see net/http.h.  Bytes reach the partial file strictly in
 * order at offset `have`, and every byte written is given to the sink once,
 * so a digest the sink computes covers exactly the file's bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "net/http.h"

#define MAX_JSON (64u << 20)

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
bool sl_net_offline(void) {
    const char *s = getenv("SILICA_OFFLINE");
    if (s && *s && strcmp(s, "0") != 0) return true;
    const char *names[] = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"};
    for (int i = 0; i < 2; i++) {
        s = getenv(names[i]);
        if (s && (!strcmp(s, "1") || !strcasecmp(s, "on") || !strcasecmp(s, "yes") || !strcasecmp(s, "true"))) return true;
    }
    return false;
}

void sl_http_global_init(void) { pthread_once(&g_once, init_once); }

void sl_http_backoff(int attempt) {
    const char *b = getenv("SILICA_RETRY_BASE_MS");
    long base = b ? atol(b) : 500;
    if (base < 0) base = 0;
    long ms = base << (attempt < 5 ? attempt : 5);
    if (ms > 8000) ms = 8000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

void sl_http_resp_free(sl_http_resp *r) {
    free(r->body);
    free(r->next_link);
    memset(r, 0, sizeof *r);
}

static void copy_trim(char *dst, size_t cap, const char *v, size_t n) {
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ')) n--;
    while (n && *v == ' ') { v++; n--; }
    if (n >= 2 && v[0] == 'W' && v[1] == '/') { v += 2; n -= 2; }
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') { v++; n -= 2; }
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
    sl_http_resp *r = ud;
    size_t n = size * nitems;
    if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {   /* a new answer (redirect hop): per-answer fields reset */
        r->error_code[0] = 0;
        r->auth[0] = 0;
        free(r->next_link);
        r->next_link = NULL;
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon) return n;
    size_t kl = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vl = n - kl - 1;
#define IS(k) (kl == sizeof(k) - 1 && !strncasecmp(buf, k, kl))
    char tmp[256];
    if (IS("X-Error-Code")) copy_trim(r->error_code, sizeof r->error_code, v, vl);
    else if (IS("X-Repo-Commit") && !r->repo_commit[0]) copy_trim(r->repo_commit, sizeof r->repo_commit, v, vl);
    else if (IS("X-Linked-Etag")) copy_trim(r->linked_etag, sizeof r->linked_etag, v, vl);
    else if (IS("ETag") && !r->linked_etag[0]) copy_trim(r->linked_etag, sizeof r->linked_etag, v, vl);
    else if (IS("X-Linked-Size") && !r->linked_size) {
        copy_trim(tmp, sizeof tmp, v, vl);
        r->linked_size = strtoull(tmp, NULL, 10);
    } else if (IS("LFS-Authenticate")) copy_trim(r->auth, sizeof r->auth, v, vl);
    else if (IS("Link")) {
        /* <url>; rel="next" (possibly among others, comma separated) */
        char *s = strndup(v, vl);
        for (char *p = s ? strchr(s, '<') : NULL; p; p = strchr(p + 1, '<')) {
            char *e = strchr(p, '>');
            if (!e) break;
            char *semi = e + 1;
            char *comma = strchr(semi, ',');
            size_t seg = comma ? (size_t)(comma - semi) : strlen(semi);
            if (memmem(semi, seg, "rel=\"next\"", 10) || memmem(semi, seg, "rel=next", 8)) {
                free(r->next_link);
                r->next_link = strndup(p + 1, (size_t)(e - p - 1));
                break;
            }
        }
        free(s);
    }
#undef IS
    return n;
}

typedef struct body_buf {
    sl_http_resp *r;
    uint64_t max;
    bool overflow;
} body_buf;

static size_t on_body(char *p, size_t size, size_t nm, void *ud) {
    body_buf *b = ud;
    size_t n = size * nm;
    if (b->r->len + n > b->max) { b->overflow = true; return 0; }
    char *nb = realloc(b->r->body, b->r->len + n + 1);
    if (!nb) return 0;
    memcpy(nb + b->r->len, p, n);
    b->r->len += n;
    nb[b->r->len] = 0;
    b->r->body = nb;
    return n;
}

typedef struct upload_src {
    FILE *f;
} upload_src;

static size_t on_read(char *buf, size_t size, size_t nm, void *ud) {
    upload_src *u = ud;
    return fread(buf, 1, size * nm, u->f);
}

static CURL *new_handle(const char *url, struct curl_slist **hl, const char *const *headers) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "silica/0.1.0");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL);
    *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++) *hl = curl_slist_append(*hl, headers[i]);
    if (*hl) curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hl);
    return c;
}

static bool retryable_status(long s) { return s == 408 || s == 429 || s >= 500; }

static bool resolver_error(CURLcode cc) { return cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY; }

int sl_http_unresolved(const char *url, int cc, sl_error *err) {
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    const char *at = strpbrk(h, "@/");
    if (at && *at == '@') h = at + 1;   /* user:password@host */
    size_t n = *h == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/?#");
    if (cc == CURLE_COULDNT_RESOLVE_PROXY)
        return sl_errorf(err, SL_EIO, "%.*s: cannot resolve the proxy host (offline? SILICA_OFFLINE=1 uses the store only)",
                         (int)n, h);
    return sl_errorf(err, SL_EIO, "%.*s: cannot resolve host (offline? SILICA_OFFLINE=1 uses the store only)", (int)n, h);
}

/* SILICA_OFFLINE / HF_HUB_OFFLINE: no request leaves the process, whoever asks. */
static int refuse_offline(const char *url, sl_error *err) {
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/?#");
    return sl_errorf(err, SL_EINVAL, "%.*s: offline (SILICA_OFFLINE or HF_HUB_OFFLINE is set): no network request made",
                     (int)n, h);
}

int sl_http_do(const sl_http_req *rq, sl_http_resp *resp, sl_error *err) {
    memset(resp, 0, sizeof *resp);
    if (sl_net_offline()) return refuse_offline(rq->url, err);
    sl_http_global_init();
    for (int attempt = 0;; attempt++) {
        sl_http_resp_free(resp);
        struct curl_slist *hl;
        CURL *c = new_handle(rq->url, &hl, rq->headers);
        if (!c) return sl_errorf(err, SL_ENOMEM, "%s: cannot create an HTTP handle", rq->url);
        body_buf bb = {.r = resp, .max = rq->max_body && rq->max_body < MAX_JSON ? rq->max_body : MAX_JSON};
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
        upload_src up = {0};
        if (rq->upload_path) {
            up.f = fopen(rq->upload_path, "rb");
            if (!up.f) {
                curl_slist_free_all(hl);
                curl_easy_cleanup(c);
                return sl_errorf(err, SL_EIO, "%s: cannot open: %s", rq->upload_path, strerror(errno));
            }
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &up);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->upload_size);
        } else if (rq->body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
        }
        if (rq->method && !rq->upload_path) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
        if (rq->userpwd) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERPWD, rq->userpwd);
        }
        CURLcode cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
        if (up.f) fclose(up.f);
        curl_slist_free_all(hl);
        curl_easy_cleanup(c);
        if (bb.overflow)
            return sl_errorf(err, SL_EINVAL, "%s: answer larger than %llu bytes", rq->url, (unsigned long long)bb.max);
        if (cc == CURLE_OK && !retryable_status(resp->status)) return 0;
        if (resolver_error(cc)) {
            resp->unresolved = true;
            return sl_http_unresolved(rq->url, (int)cc, err);
        }
        if (attempt + 1 >= SL_HTTP_TRIES) {
            if (cc != CURLE_OK) {
                snprintf(resp->message, sizeof resp->message, "%s", curl_easy_strerror(cc));
                return sl_errorf(err, SL_EIO, "%s: %s (after %d tries)", rq->url, resp->message, attempt + 1);
            }
            return 0;   /* the caller reports the status */
        }
        sl_http_backoff(attempt);
    }
}

/* ------------------------------------------------------------------ */
/* downloads                                                            */

typedef struct dl_state {
    sl_dl *d;
    CURL *c;
    bool decided, writing, restarted, too_long, io_error;
    int io_errno;
    uint64_t progressed;
} dl_state;

static size_t on_dl_body(char *p, size_t size, size_t nm, void *ud) {
    dl_state *s = ud;
    sl_dl *d = s->d;
    size_t n = size * nm;
    if (!s->decided) {
        s->decided = true;
        long st = 0;
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &st);
        if (st == 206) s->writing = true;
        else if (st == 200) {
            s->writing = true;
            if (d->have > 0) {   /* the server ignored Range: restart this file cleanly */
                if (ftruncate(d->fd, 0) != 0) { s->io_error = true; s->io_errno = errno; return 0; }
                if (!d->sink_restart(d->sink_ctx)) d->sink_failed = true;
                d->have = 0;
                s->restarted = true;
            }
        }
    }
    if (!s->writing) return n;   /* an error page: drop it */
    if (d->have + n > d->expect_size) { s->too_long = true; return 0; }
    for (size_t off = 0; off < n;) {
        ssize_t w = pwrite(d->fd, p + off, n - off, (off_t)(d->have + off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { s->io_error = true; s->io_errno = w < 0 ? errno : ENOSPC; return 0; }
        off += (size_t)w;
    }
    if (!d->sink_failed) d->sink_data(d->sink_ctx, p, n);
    d->have += n;
    s->progressed += n;
    if (d->progress) d->progress(d->progress_ctx, n);
    return n;
}

static const char *status_text(const sl_http_resp *r) {
    if (r->error_code[0]) return r->error_code;
    switch (r->status) {
    case 401: return "unauthorized (set HF_TOKEN?)";
    case 403: return "forbidden";
    case 404: return "not found";
    default: return "HTTP error";
    }
}

int sl_http_download(sl_dl *d, sl_error *err) {
    memset(&d->resp, 0, sizeof d->resp);
    if (sl_net_offline()) return refuse_offline(d->url, err);
    sl_http_global_init();
    int fails = 0;
    while (d->have < d->expect_size || d->expect_size == 0) {
        struct curl_slist *hl;
        CURL *c = new_handle(d->url, &hl, d->headers);
        if (!c) return sl_errorf(err, SL_ENOMEM, "%s: cannot create an HTTP handle", d->what);
        sl_http_resp_free(&d->resp);
        dl_state s = {.d = d, .c = c};
        char range[64];
        if (d->have > 0) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)d->have);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &d->resp);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_dl_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
        CURLcode cc = curl_easy_perform(c);
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        d->resp.status = st;
        curl_slist_free_all(hl);
        curl_easy_cleanup(c);
        if (s.io_error)
            return sl_errorf(err, SL_EIO, "%s: cannot write the download: %s%s", d->what, strerror(s.io_errno),
                             s.io_errno == ENOSPC ? " (disk full)" : "");
        if (s.too_long)
            return sl_errorf(err, SL_EINVAL, "%s: the server sent more than the expected %llu bytes", d->what,
                             (unsigned long long)d->expect_size);
        if (d->sink_failed) return sl_errorf(err, SL_ENOMEM, "out of memory");
        if (resolver_error(cc)) {
            d->resp.unresolved = true;
            return sl_http_unresolved(d->url, (int)cc, err);
        }
        if (cc == CURLE_OK && (st == 200 || st == 206)) {
            if (d->expect_size == 0 || d->have == d->expect_size) break;
            /* a short answer without a transport error: resume */
        } else if (cc == CURLE_OK && st == 416) {
            /* our partial is longer than the object or the server disagrees: restart */
            if (ftruncate(d->fd, 0) != 0) return sl_errorf(err, SL_EIO, "%s: %s", d->what, strerror(errno));
            if (!d->sink_restart(d->sink_ctx)) d->sink_failed = true;
            d->have = 0;
        } else if (cc == CURLE_OK && !retryable_status(st)) {
            return sl_errorf(err, SL_EINVAL, "%s: %s answered %ld (%s)", d->what, d->url, st, status_text(&d->resp));
        }
        if (s.progressed) fails = 0;
        else if (++fails >= SL_HTTP_TRIES)
            return sl_errorf(err, SL_EIO, "%s: %s after %d tries", d->what,
                             cc != CURLE_OK ? curl_easy_strerror(cc) : "server error", fails);
        if (!s.progressed) sl_http_backoff(fails - 1);
    }
    return 0;
}
