/*
 * http.c — the server's HTTP side on libmicrohttpd: one internal polling
 * thread, connections suspended while they wait for the scheduler and
 * resumed when there is something to send.  Routing, the API key, CORS,
 * body limits and timeouts, request lifetime, logging, startup and the
 * SIGTERM drain (sl_serve_run / sl_serve_stop).
 *
 * Invariants:
 *  - Nothing here blocks the polling thread on generation: a generation
 *    request is parsed, queued (sched.c) and its connection suspended.
 *  - A body larger than the limit is refused with 413 (from Content-Length
 *    before it is read, else once it is); a body still arriving after the
 *    timeout closes the connection (a slow client cannot hold a slot —
 *    it gets none before its body is complete).
 *  - Streams are chunked responses read from r->out; at end of data the
 *    reader suspends the connection until the scheduler adds more.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve/srv_impl.h"

/* ---- small helpers ---- */

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int srv_buf_add(srv_buf *b, const void *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int srv_buf_str(srv_buf *b, const char *s) { return srv_buf_add(b, s, strlen(s)); }

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

srv_model *srv_find_model(srv_server *s, const char *name) {
    if (!name || !name[0]) return &s->models[0];
    size_t n = strlen(name);
    if (n > 7 && strcmp(name + n - 7, ":latest") == 0) n -= 7;   /* ollama's default tag */
    for (int i = 0; i < s->n_models; i++)
        if (strlen(s->models[i].id) == n && strncmp(s->models[i].id, name, n) == 0) return &s->models[i];
    return NULL;
}

/* ---- requests ---- */

void srv_req_retain(srv_req *r) {
    pthread_mutex_lock(&r->mu);
    r->refs++;
    pthread_mutex_unlock(&r->mu);
}

void srv_req_release(srv_req *r) {
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left > 0) return;
    srv_server *s = r->srv;
    for (int i = 0; r->choices && i < r->p.n; i++) {
        srv_buf_free(&r->choices[i].text);
        srv_buf_free(&r->choices[i].seen);
        sl_tool_calls_free(&r->choices[i].calls);
        cJSON_Delete(r->choices[i].logprobs);
        cJSON_Delete(r->choices[i].context);
    }
    free(r->choices);
    srv_params_free(&r->p);
    free(r->prompt);
    srv_buf_free(&r->out);
    pthread_mutex_destroy(&r->mu);
    free(r);
    atomic_fetch_sub(&s->live, 1);
}

void srv_req_wake(srv_req *r) {
    if (r->suspended && r->conn && !r->closed) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

void srv_req_resume_closed(srv_req *r) {
    if (r->suspended && r->conn) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

static srv_req *req_new(srv_server *s, srv_model *m, srv_params *p, struct MHD_Connection *conn) {
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->choices = calloc((size_t)p->n, sizeof *r->choices);
    if (!r->choices) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->refs = 1;   /* the connection's */
    r->srv = s;
    r->model = m;
    r->p = *p;
    memset(p, 0, sizeof *p);
    for (int i = 0; i < r->p.n; i++) {
        r->choices[i].req = r;
        r->choices[i].index = i;
        r->choices[i].slot = -1;
    }
    unsigned long long k = atomic_fetch_add(&s->next_id, 1);
    const char *prefix = r->p.api == SRV_OAI_CHAT ? "chatcmpl" : "cmpl";
    snprintf(r->id, sizeof r->id, "%s-%llx%06llx", prefix, (unsigned long long)time(NULL), k & 0xffffff);
    r->created = (long long)time(NULL);
    r->t0 = srv_now();
    if (!r->p.seed_set) {   /* no seed: a fresh one per request (OpenAI's and llama-server's behaviour) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (k * 0x9E3779B97F4A7C15ull);
        r->p.sampling.seed = x;
    }
    r->conn = conn;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    atomic_fetch_add(&s->live, 1);
    return r;
}

/* ---- connections ---- */

typedef struct srv_conn {
    srv_server *s;
    srv_buf body;
    bool too_large;
    double t0;
    srv_req *req;
    srv_api api;
    int status;
    char method[16];
    char path[160];
} srv_conn;

static void add_common_headers(srv_server *s, struct MHD_Response *resp) {
    if (s->o.cors) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", s->o.cors);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
}

static enum MHD_Result send_reply(srv_conn *cc, struct MHD_Connection *conn, int status, const char *type,
                                  const void *body, size_t len) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    if (type) MHD_add_response_header(resp, "Content-Type", type);
    add_common_headers(cc->s, resp);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (type && strncmp(type, "text/html", 9) == 0)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    cc->status = status;
    return ret;
}

static enum MHD_Result send_error(srv_conn *cc, struct MHD_Connection *conn, srv_api api, const srv_error *e) {
    atomic_fetch_add(&cc->s->n_errors, 1);
    char *body = srv_fmt_error(api, e);
    enum MHD_Result ret = send_reply(cc, conn, e->status, "application/json", body ? body : "{}",
                                     body ? strlen(body) : 2);
    free(body);
    return ret;
}

static enum MHD_Result send_srv_reply(srv_conn *cc, struct MHD_Connection *conn, srv_reply *rp) {
    enum MHD_Result ret = send_reply(cc, conn, rp->status, rp->type, rp->body ? rp->body : "", rp->len);
    if (rp->status >= 400) atomic_fetch_add(&cc->s->n_errors, 1);
    free(rp->body);
    return ret;
}

/* ---- streaming ---- */

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_req *r = cls;
    pthread_mutex_lock(&r->mu);
    ssize_t n;
    if (r->out.len > 0) {
        size_t k = r->out.len < max ? r->out.len : max;
        memcpy(buf, r->out.p, k);
        memmove(r->out.p, r->out.p + k, r->out.len - k);
        r->out.len -= k;
        n = (ssize_t)k;
    } else if (r->done) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (r->closed || !r->conn) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
        r->suspended = true;
        MHD_suspend_connection(r->conn);
        n = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void free_stream(void *cls) { srv_req_release(cls); }

/* The response of a generation request once the scheduler decided it:
 * called with r->mu held. */
static enum MHD_Result reply_generation(srv_conn *cc, struct MHD_Connection *conn, srv_req *r) {
    if (r->p.stream && r->started) {
        r->refs++;   /* the response's reference (mutex held) */
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_stream, r, free_stream);
        if (!resp) {
            r->refs--;
            return MHD_NO;
        }
        bool ollama = r->p.api == SRV_OLLAMA_CHAT || r->p.api == SRV_OLLAMA_GENERATE;
        MHD_add_response_header(resp, "Content-Type", ollama ? "application/x-ndjson" : "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        add_common_headers(cc->s, resp);
        enum MHD_Result ret = MHD_queue_response(conn, 200, resp);
        MHD_destroy_response(resp);
        cc->status = 200;
        return ret;
    }
    int status = r->status ? r->status : 500;
    return send_reply(cc, conn, status, "application/json", r->out.p ? r->out.p : "", r->out.len);
}

/* Called when the request's body is complete, or again after a resume. */
static enum MHD_Result wait_or_reply(srv_conn *cc, struct MHD_Connection *conn) {
    srv_req *r = cc->req;
    pthread_mutex_lock(&r->mu);
    enum MHD_Result ret = MHD_YES;
    if (r->closed) {
        ret = MHD_NO;   /* the client is gone: close */
    } else if (r->done || (r->p.stream && r->started)) {
        ret = reply_generation(cc, conn, r);
    } else {
        r->suspended = true;
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&r->mu);
    return ret;
}

static enum MHD_Result start_generation(srv_conn *cc, struct MHD_Connection *conn, srv_api api) {
    srv_server *s = cc->s;
    srv_params p;
    srv_error e;
    memset(&e, 0, sizeof e);
    cc->api = api;
    if (srv_parse_request(api, cc->body.p, cc->body.len, &p, &e)) return send_error(cc, conn, api, &e);
    srv_model *m = srv_find_model(s, p.model);
    if (!m) {
        srv_fail(&e, 404, "model", "model '%.200s' is not served here (GET /v1/models lists them)", p.model);
        srv_params_free(&p);
        return send_error(cc, conn, api, &e);
    }
    if (srv_model_ensure(s, m, &e)) {
        srv_params_free(&p);
        return send_error(cc, conn, api, &e);
    }
    srv_req *r = req_new(s, m, &p, conn);
    if (!r) {
        srv_params_free(&p);
        srv_fail(&e, 500, NULL, "out of memory");
        return send_error(cc, conn, api, &e);
    }
    if (srv_sched_submit(m, r, &e)) {
        srv_req_release(r);
        return send_error(cc, conn, api, &e);
    }
    cc->req = r;
    return wait_or_reply(cc, conn);
}

/* ---- routing ---- */

static bool authorized(srv_server *s, struct MHD_Connection *conn) {
    if (!s->o.api_key) return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return false;
    const char *k = h + 7, *want = s->o.api_key;
    size_t lk = strlen(k), lw = strlen(want);
    unsigned diff = (unsigned)(lk != lw);
    for (size_t i = 0; i < lw; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < lk ? k[i] : 0);
    return diff == 0;
}

static const struct {
    const char *path;
    srv_api api;
} k_gen_routes[] = {
    {"/v1/chat/completions", SRV_OAI_CHAT},
    {"/v1/completions", SRV_OAI_COMPLETION},
    {"/api/chat", SRV_OLLAMA_CHAT},
    {"/api/generate", SRV_OLLAMA_GENERATE},
};

static enum MHD_Result route(srv_conn *cc, struct MHD_Connection *conn, const char *url, const char *method) {
    srv_server *s = cc->s;
    srv_error e;
    memset(&e, 0, sizeof e);
    atomic_fetch_add(&s->n_requests, 1);
    if (strcmp(method, "OPTIONS") == 0) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        add_common_headers(s, resp);
        if (s->o.cors) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
        enum MHD_Result ret = MHD_queue_response(conn, 204, resp);
        MHD_destroy_response(resp);
        cc->status = 204;
        return ret;
    }
    bool is_post = strcmp(method, "POST") == 0, is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (is_get && (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0))
        return send_reply(cc, conn, 200, "text/html; charset=utf-8", srv_web_index, srv_web_index_len);
    bool ollama_route = strncmp(url, "/api/", 5) == 0;
    srv_api err_api = ollama_route ? SRV_OLLAMA_CHAT : SRV_OAI_CHAT;
    if (strcmp(url, "/health") != 0 && !authorized(s, conn)) {
        srv_fail(&e, 401, NULL, "a valid API key is needed (Authorization: Bearer KEY)");
        e.type = "authentication_error";
        return send_error(cc, conn, err_api, &e);
    }
    for (size_t i = 0; i < sizeof k_gen_routes / sizeof *k_gen_routes; i++) {
        if (strcmp(url, k_gen_routes[i].path) != 0) continue;
        if (!is_post) {
            srv_fail(&e, 405, NULL, "%s needs POST", url);
            return send_error(cc, conn, k_gen_routes[i].api, &e);
        }
        if (atomic_load(&s->draining)) {
            srv_fail(&e, 503, NULL, "the server is shutting down");
            e.type = "server_error";
            return send_error(cc, conn, k_gen_routes[i].api, &e);
        }
        return start_generation(cc, conn, k_gen_routes[i].api);
    }
    srv_reply rp;
    memset(&rp, 0, sizeof rp);
    if (srv_route_info(s, method, url, cc->body.p, cc->body.len, &rp)) return send_srv_reply(cc, conn, &rp);
    srv_fail(&e, 404, NULL, "no route %s %.100s", method, url);
    return send_error(cc, conn, err_api, &e);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    srv_server *s = cls;
    srv_conn *cc = *con_cls;
    size_t max_body = s->o.max_body ? s->o.max_body : (size_t)8 << 20;
    int timeout = s->o.timeout_s > 0 ? s->o.timeout_s : 30;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        cc->s = s;
        cc->t0 = srv_now();
        snprintf(cc->method, sizeof cc->method, "%s", method);
        snprintf(cc->path, sizeof cc->path, "%s", url);
        *con_cls = cc;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > max_body) {
            srv_error e;
            srv_fail(&e, 413, NULL, "the request body is larger than %zu bytes", max_body);
            return send_error(cc, conn, strncmp(url, "/api/", 5) == 0 ? SRV_OLLAMA_CHAT : SRV_OAI_CHAT, &e);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (srv_now() - cc->t0 > timeout) return MHD_NO;   /* body too slow: close */
        if (cc->body.len + *upload_size > max_body) cc->too_large = true;
        else if (srv_buf_add(&cc->body, upload, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cc->req) return wait_or_reply(cc, conn);
    if (cc->too_large) {
        srv_error e;
        srv_fail(&e, 413, NULL, "the request body is larger than %zu bytes", max_body);
        return send_error(cc, conn, strncmp(url, "/api/", 5) == 0 ? SRV_OLLAMA_CHAT : SRV_OAI_CHAT, &e);
    }
    return route(cc, conn, url, method);
}

static void log_request(srv_server *s, const srv_conn *cc, enum MHD_RequestTerminationCode toe) {
    if (s->o.log == SL_SERVE_LOG_NONE) return;
    double ms = (srv_now() - cc->t0) * 1e3;
    bool aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (s->o.log == SL_SERVE_LOG_JSON) {
        cJSON *j = cJSON_CreateObject();
        char ts[64];
        srv_rfc3339(ts, sizeof ts);
        cJSON_AddStringToObject(j, "time", ts);
        cJSON_AddStringToObject(j, "method", cc->method);
        cJSON_AddStringToObject(j, "path", cc->path);
        cJSON_AddNumberToObject(j, "status", cc->status);
        cJSON_AddNumberToObject(j, "ms", (double)(long long)(ms * 1000) / 1000);
        if (aborted) cJSON_AddTrueToObject(j, "client_gone");
        char *line = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (line) fprintf(stderr, "%s\n", line);
        free(line);
    } else {
        fprintf(stderr, "silica serve: %s %s %d %.1f ms%s\n", cc->method, cc->path, cc->status, ms,
                aborted ? " (client gone)" : "");
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    srv_server *s = cls;
    srv_conn *cc = *con_cls;
    if (!cc) return;
    *con_cls = NULL;
    log_request(s, cc, toe);
    if (cc->req) {
        srv_req *r = cc->req;
        pthread_mutex_lock(&r->mu);
        r->closed = true;
        r->conn = NULL;
        r->fd = -1;
        r->suspended = false;
        pthread_mutex_unlock(&r->mu);
        srv_req_release(r);
    }
    srv_buf_free(&cc->body);
    free(cc);
}

/* ---- startup, stop, drain ---- */

static volatile sig_atomic_t g_stop;
static int g_stop_pipe[2] = {-1, -1};

void sl_serve_stop(void) {
    g_stop = 1;
    if (g_stop_pipe[1] >= 0) {
        ssize_t w = write(g_stop_pipe[1], "x", 1);
        (void)w;
    }
}

static int listen_socket(const char *host, int port, int *fd_out, int *port_out, sl_error *err) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port < 0 ? 0 : port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) return sl_errorf(err, SL_EINVAL, "--host %s: %s", host, gai_strerror(g));
    int fd = -1, e = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return sl_errorf(err, SL_EIO, "cannot listen on %s:%d: %s", host, port, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

static void wait_for_stop(void) {
    while (!g_stop) {
        struct pollfd pf = {.fd = g_stop_pipe[0], .events = POLLIN};
        poll(&pf, 1, 1000);
    }
}

static void drain(srv_server *s) {
    atomic_store(&s->draining, true);
    MHD_socket lfd = MHD_quiesce_daemon(s->d);   /* no new connections */
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    while (atomic_load(&s->live) > 0) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int sl_serve_run(const sl_serve_opts *o, sl_error *err) {
    if (!o || o->n_models < 1) return sl_errorf(err, SL_EINVAL, "serve: no model to serve");
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return sl_errorf(err, SL_ENOMEM, "out of memory");
    s->o = *o;
    if (!s->o.host) s->o.host = "127.0.0.1";
    int rc = 0, lfd = -1;
    s->models = calloc((size_t)o->n_models, sizeof *s->models);
    if (!s->models) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < o->n_models; i++) {
        rc = srv_model_init(s, &s->models[i], &o->models[i], err);
        s->n_models = i + 1;
        for (int k = 0; !rc && k < i; k++)
            if (strcmp(s->models[k].id, s->models[i].id) == 0)
                rc = sl_errorf(err, SL_EINVAL, "two models are named '%s' (give one another name)", s->models[i].id);
    }
    srv_error le;
    if (!rc && srv_model_ensure(s, &s->models[0], &le)) rc = sl_errorf(err, SL_EINVAL, "%s", le.msg);
    if (!rc) rc = listen_socket(s->o.host, o->port == 0 ? 8080 : o->port, &lfd, &s->port, err);
    if (!rc && g_stop_pipe[0] < 0 && pipe(g_stop_pipe) != 0) rc = sl_errorf(err, SL_EIO, "pipe: %s", strerror(errno));
    if (!rc) {
        fcntl(g_stop_pipe[1], F_SETFL, O_NONBLOCK);
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME;
        int timeout = o->timeout_s > 0 ? o->timeout_s : 30;
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)lfd,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout, MHD_OPTION_NOTIFY_COMPLETED,
                                on_completed, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_END);
        if (!s->d) {
            close(lfd);
            rc = sl_errorf(err, SL_EIO, "cannot start the HTTP server on %s:%d", s->o.host, s->port);
        }
    } else if (lfd >= 0) {
        close(lfd);
    }
    if (!rc) {
        if (o->ready_fn) o->ready_fn(o->ready_ud, s->o.host, s->port);
        wait_for_stop();
        drain(s);
        MHD_stop_daemon(s->d);
    }
    for (int i = 0; i < s->n_models; i++) srv_model_stop(&s->models[i]);
    free(s->models);
    free(s);
    return rc;
}
