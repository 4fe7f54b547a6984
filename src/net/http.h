/*
 * net/http.h — the small libcurl layer the hub and LFS clients and the remote
 * estimate share: JSON requests with retries, and resumable downloads into
 * partial files whose bytes stream, in order, to the caller's sink (the
 * registry hashes them).
 *
 * Invariants: every response body is bounded (JSON <= 64 MiB); retries back
 * off exponentially (SILICA_RETRY_BASE_MS, default 500 ms, capped at 8 s) on
 * 429, 5xx and dropped connections, at most SL_HTTP_TRIES attempts without
 * progress; a 200 answer to a Range request restarts the file from zero.
 * A host (or proxy) name that does not resolve is not retried: the request
 * fails at once with one line naming the host and SILICA_OFFLINE
 * (resp.unresolved set), since retrying a resolver error only adds delay.
 * Offline (SILICA_OFFLINE / HF_HUB_OFFLINE) no request is made at all: both
 * entry points refuse before opening a connection.
 */
#ifndef SILICA_NET_HTTP_H
#define SILICA_NET_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/error.h"

#define SL_HTTP_TRIES 6

typedef struct sl_http_resp {
    long status;
    char *body;
    size_t len;
    char *next_link;      /* Link: <..>; rel="next" */
    char error_code[64];  /* X-Error-Code */
    char repo_commit[64]; /* X-Repo-Commit */
    char linked_etag[80]; /* X-Linked-Etag (or ETag), quotes and W/ stripped */
    uint64_t linked_size; /* X-Linked-Size, 0 if absent */
    char auth[128];       /* LFS-Authenticate */
    char message[256];    /* curl error text */
    bool unresolved;      /* the host or proxy name did not resolve (err names the host; callers add only the repo) */
} sl_http_resp;

typedef struct sl_http_req {
    const char *method;          /* NULL: GET */
    const char *url;
    const char *const *headers;  /* NULL-terminated extra headers */
    const char *body;            /* request body (POST) */
    const char *upload_path;     /* PUT this file's bytes */
    uint64_t upload_size;
    const char *userpwd;         /* "user:password" for HTTP Basic, or NULL */
    uint64_t max_body;           /* answer bytes allowed (0: 64 MiB); more is an error */
} sl_http_req;

/* SILICA_OFFLINE (not "0"), or HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE
 * 1/on/yes/true, as huggingface_hub reads them: no request is made. */
bool sl_net_offline(void);

void sl_http_global_init(void);
/* One request with retries; resp filled (free with sl_http_resp_free). Returns
 * 0 when an HTTP answer arrived (any status), SL_EIO when the network failed. */
int sl_http_do(const sl_http_req *rq, sl_http_resp *resp, sl_error *err);
void sl_http_resp_free(sl_http_resp *r);
void sl_http_backoff(int attempt);

/* Download url into partial file `fd` (already holding `have` bytes, already
 * given to the sink), resuming with Range.  On return *have is the file size
 * and the sink has seen every byte in order: sink_data for each piece written;
 * sink_restart when the file starts over from byte 0 (the server ignored
 * Range, or refused it with 416), returning false when it cannot (out of
 * memory: the download then fails). */
typedef struct sl_dl {
    const char *url;
    const char *const *headers;
    const char *what;             /* file name for messages */
    uint64_t expect_size;
    int fd;
    uint64_t have;
    void (*sink_data)(void *ctx, const void *p, size_t n);
    bool (*sink_restart)(void *ctx);
    void *sink_ctx;
    bool sink_failed;             /* a restart failed */
    /* progress */
    void (*progress)(void *ctx, uint64_t delta);
    void *progress_ctx;
    sl_http_resp resp;            /* headers of the last answer */
} sl_dl;
int sl_http_download(sl_dl *d, sl_error *err);
/* The one-line error for a resolver failure of url (cc: CURLE_COULDNT_RESOLVE_*). */
int sl_http_unresolved(const char *url, int cc, sl_error *err);

#endif
