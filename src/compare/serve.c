/*
 * serve.c — silica's own engine behind the adapter protocol
 * (part8/adapters/PROTOCOL.md): `load` opens a model and a session of
 * n_ctx positions (f32 KV cache: the figures then measure the weights, not
 * a rounded cache), `eval` evaluates the ids
 * from position 0 with every position's logits, then generates max_tokens
 * ids greedily (argmax, first index on ties; EOS does not stop it).
 * `"want": "topk"` answers each position's k largest logits with their ids
 * and the row's log-sum-exp instead of the whole rows.
 *
 * Invariants: one request, one answer line; an error answers
 * {"error": "..."} and the loop goes on; the loop ends at EOF, `quit`, or
 * Ctrl-C (between requests).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "compare/compare_impl.h"
#include "silica/gpu.h"
#include "silica/io.h"
#include "silica/memory.h"
#include "silica/model.h"
#include "silica/runtime.h"
#include "silica/version.h"

typedef struct server {
    sl_model *m;
    sl_session *s;
    int n_ctx;
} server;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int32_t argmax(const float *row, int V) {
    int32_t best = 0;
    for (int k = 1; k < V; k++)
        if (row[k] > row[best]) best = k;
    return best;
}

static int op_load(server *sv, const cJSON *req, cJSON *ans, sl_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(req, "n_ctx");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(req, "device");
    if (!cJSON_IsString(model)) return sl_errorf(err, SL_EINVAL, "load: \"model\" must be a string");
    if (!cJSON_IsNumber(ctx) || ctx->valuedouble < 1 || ctx->valuedouble > (1 << 24))
        return sl_errorf(err, SL_EINVAL, "load: \"n_ctx\" must be an integer 1..16777216");
    sl_device_sel sel = {0};
    if (dev && !cJSON_IsString(dev)) return sl_errorf(err, SL_EINVAL, "load: \"device\" must be a string");
    if (dev && sl_device_parse(dev->valuestring, &sel, err)) return SL_EINVAL;
    const cJSON *gl = cJSON_GetObjectItemCaseSensitive(req, "gpu_layers");
    if (gl && (!cJSON_IsNumber(gl) || gl->valuedouble < SL_GPU_LAYERS_NONE || gl->valuedouble > (1 << 20) ||
               gl->valuedouble != (int)gl->valuedouble))
        return sl_errorf(err, SL_EINVAL, "load: \"gpu_layers\" must be an integer -1..1048576");
    sl_session_free(sv->s);
    sl_model_close(sv->m);
    sv->s = NULL;
    sv->m = NULL;
    double t0 = now();
    if (sl_model_open(model->valuestring, &sv->m, err)) return SL_EINVAL;
    sv->n_ctx = (int)ctx->valuedouble;
    sl_session_opts so = {.n_ctx = sv->n_ctx, .kv_dtype = SL_F32, .device = sel, .gpu_layers = gl ? (int)gl->valuedouble : 0};
    if (sl_session_new(sv->m, &so, &sv->s, err)) return SL_EINVAL;
    cJSON_AddBoolToObject(ans, "ok", 1);
    cJSON_AddStringToObject(ans, "device", sl_session_device(sv->s, NULL));
    cJSON_AddNumberToObject(ans, "vocab", sl_model_get_config(sv->m)->vocab_size);
    cJSON_AddNumberToObject(ans, "load_s", now() - t0);
    return 0;
}

/* Parse ids and max_tokens of an eval request; *ids malloc'd. */
static int eval_args(const server *sv, const cJSON *req, int32_t **ids, int *n, int *max_tokens, sl_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, "ids");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
    if (!sv->s) return sl_errorf(err, SL_EINVAL, "eval: no model loaded");
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1) return sl_errorf(err, SL_EINVAL, "eval: \"ids\" must be a non-empty array");
    if (mt && (!cJSON_IsNumber(mt) || mt->valuedouble < 0 || mt->valuedouble > (1 << 24)))
        return sl_errorf(err, SL_EINVAL, "eval: \"max_tokens\" must be an integer 0..16777216");
    *max_tokens = mt ? (int)mt->valuedouble : 0;
    *n = cJSON_GetArraySize(a);
    if (*max_tokens < 0 || (int64_t)*n + *max_tokens > sv->n_ctx)
        return sl_errorf(err, SL_EINVAL, "eval: %d ids + %d generated exceed n_ctx %d", *n, *max_tokens, sv->n_ctx);
    *ids = malloc((size_t)*n * sizeof **ids);
    if (!*ids) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > INT32_MAX) {
            free(*ids);
            *ids = NULL;
            return sl_errorf(err, SL_EINVAL, "eval: ids[%d] is not a token id", k);
        }
        (*ids)[k++] = (int32_t)x->valuedouble;
    }
    return 0;
}

/* "want" of an eval request: 0 for "logits" (the default), else "k" of "topk" (clamped to V). */
static int eval_want(const cJSON *req, int V, int *k, sl_error *err) {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(req, "want");
    const cJSON *kk = cJSON_GetObjectItemCaseSensitive(req, "k");
    *k = 0;
    if (!w || (cJSON_IsString(w) && strcmp(w->valuestring, "logits") == 0)) return 0;
    if (!cJSON_IsString(w) || strcmp(w->valuestring, "topk") != 0)
        return sl_errorf(err, SL_EINVAL, "eval: \"want\" must be \"logits\" or \"topk\"");
    if (!cJSON_IsNumber(kk) || kk->valuedouble < 1 || kk->valuedouble != (double)(int64_t)kk->valuedouble)
        return sl_errorf(err, SL_EINVAL, "eval: \"k\" must be a positive integer with \"want\": \"topk\"");
    *k = kk->valuedouble < V ? (int)kk->valuedouble : V;
    return 0;
}

/* The top-k answer's fields: base64 ids / logits [n, k] (malloc'd) and "logsumexp" into ans. */
static int topk_fields(const float *logits, int n, int V, int k, cJSON *ans, char **ids_b64, char **vals_b64,
                       sl_error *err) {
    int32_t *ids = malloc((size_t)n * (size_t)k * sizeof *ids);
    float *vals = malloc((size_t)n * (size_t)k * sizeof *vals);
    cJSON *lse = cJSON_AddArrayToObject(ans, "logsumexp");
    int rc = 0;
    if (!ids || !vals || !lse) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        const float *row = logits + (size_t)i * V;
        sl_cmp_topk(row, V, k, ids + (size_t)i * k, vals + (size_t)i * k);
        cJSON_AddItemToArray(lse, cJSON_CreateNumber(sl_cmp_log_softmax(row, V, NULL)));
    }
    if (!rc) {
        *ids_b64 = sl_cmp_b64_encode(ids, (size_t)n * (size_t)k * sizeof *ids);
        *vals_b64 = sl_cmp_b64_encode(vals, (size_t)n * (size_t)k * sizeof *vals);
        if (!*ids_b64 || !*vals_b64) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    free(ids);
    free(vals);
    return rc;
}

/* Answers itself on out (*write_failed set when that fails); errors are left to the caller. */
static int op_eval(server *sv, const cJSON *req, cJSON *ans, FILE *out, bool *write_failed, sl_error *err) {
    int32_t *ids = NULL, *greedy = NULL;
    int n = 0, max_tokens = 0, k = 0, rc;
    float *logits = NULL, *row = NULL;
    char *b64 = NULL, *b64_ids = NULL, *rest = NULL;
    if ((rc = eval_args(sv, req, &ids, &n, &max_tokens, err))) goto out;
    int V = sl_model_get_config(sv->m)->vocab_size;
    if ((rc = eval_want(req, V, &k, err))) goto out;
    logits = malloc((size_t)n * (size_t)V * sizeof *logits);
    row = malloc((size_t)V * sizeof *row);
    greedy = malloc(((size_t)max_tokens + 1) * sizeof *greedy);
    if (!logits || !row || !greedy) { rc = sl_errorf(err, SL_ENOMEM, "out of memory"); goto out; }
    sl_session_reset(sv->s);
    double t0 = now();
    if ((rc = sl_session_eval(sv->s, ids, n, true, logits, err))) goto out;
    double t1 = now(), t_first = t1;
    for (int j = 0; j < max_tokens; j++) {
        const float *last = j == 0 ? logits + (size_t)(n - 1) * V : row;
        greedy[j] = argmax(last, V);
        if (j == 0) t_first = now();
        if (j + 1 < max_tokens && (rc = sl_session_eval(sv->s, &greedy[j], 1, false, row, err))) goto out;
    }
    double t2 = now();
    if (k) {
        if ((rc = topk_fields(logits, n, V, k, ans, &b64_ids, &b64, err))) goto out;
    } else if (!(b64 = sl_cmp_b64_encode(logits, (size_t)n * (size_t)V * sizeof *logits))) {
        rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    cJSON *shape = cJSON_AddArrayToObject(ans, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(n));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(k ? k : V));
    cJSON *g = cJSON_AddArrayToObject(ans, "greedy");
    for (int j = 0; j < max_tokens; j++) cJSON_AddItemToArray(g, cJSON_CreateNumber(greedy[j]));
    cJSON_AddNumberToObject(ans, "prompt_s", t1 - t0);
    cJSON_AddNumberToObject(ans, "ttft_s", max_tokens ? t_first - t0 : 0);
    cJSON_AddNumberToObject(ans, "gen_s", max_tokens ? t2 - t_first : 0);
    cJSON_AddNumberToObject(ans, "peak_rss_bytes", (double)sl_mem_peak_rss());
    /* the logits (tens of MB for a real vocabulary) are spliced in front, not copied into the tree */
    rest = cJSON_PrintUnformatted(ans);
    if (!rest) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    else if (k)
        *write_failed = fprintf(out, "{\"topk_ids_i32\": \"%s\", \"topk_logits_f32\": \"%s\", %s\n", b64_ids, b64,
                                rest + 1) < 0 || fflush(out) != 0;
    else *write_failed = fprintf(out, "{\"logits_f32\": \"%s\", %s\n", b64, rest + 1) < 0 || fflush(out) != 0;
out:
    free(rest);
    free(b64);
    free(b64_ids);
    free(ids);
    free(greedy);
    free(logits);
    free(row);
    return rc;
}

static int answer(FILE *out, const char *text) {
    return fputs(text, out) < 0 || fputc('\n', out) == EOF || fflush(out) != 0;
}

int sl_cmp_serve(FILE *in, FILE *out) {
    server sv = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char hello[256];
    snprintf(hello, sizeof hello,
             "{\"protocol\": 1, \"engine\": \"silica\", \"version\": \"silica %s\", \"formats\": [\"hf\", \"mlx\", "
             "\"gguf\"]}",
             sl_version());
    int rc = answer(out, hello) ? 2 : 0;
    while (!rc && !sl_interrupted() && (n = getline(&line, &cap, in)) > 0) {
        cJSON *req = cJSON_ParseWithLength(line, (size_t)n), *ans = cJSON_CreateObject();
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
        sl_error err = {0};
        int r;
        if (!cJSON_IsObject(req) || !cJSON_IsString(op)) r = sl_errorf(&err, SL_EINVAL, "a request is a JSON object with \"op\"");
        else if (strcmp(op->valuestring, "quit") == 0) {
            cJSON_Delete(req);
            cJSON_Delete(ans);
            break;
        } else if (strcmp(op->valuestring, "load") == 0) r = op_load(&sv, req, ans, &err);
        else if (strcmp(op->valuestring, "eval") == 0) {
            bool failed = false;
            r = op_eval(&sv, req, ans, out, &failed, &err);
            if (!r) {
                rc = failed ? 2 : 0;
                cJSON_Delete(req);
                cJSON_Delete(ans);
                continue;
            }
        } else r = sl_errorf(&err, SL_EINVAL, "unknown op '%s' (load, eval, quit)", op->valuestring);
        if (r) {
            cJSON_Delete(ans);
            ans = cJSON_CreateObject();
            cJSON_AddStringToObject(ans, "error", err.msg);
        }
        char *s = cJSON_PrintUnformatted(ans);
        rc = !s || answer(out, s) ? 2 : 0;
        free(s);
        cJSON_Delete(req);
        cJSON_Delete(ans);
    }
    free(line);
    sl_session_free(sv.s);
    sl_model_close(sv.m);
    return rc;
}
