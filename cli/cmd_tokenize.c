/*
 * cmd_tokenize.c — `silica tokenize` (text -> {"ids", "tokens"}) and
 * `silica detokenize` (ids -> text), identical to Hugging Face tokenizers.
 * Both take a model directory or a tokenizer.json path, and a --jsonl FILE
 * batch mode (one JSON value per line in, one JSON object per line out) so
 * many strings go through one process.
 *
 * Invariants: bad input -> one stderr line, exit 2; output text is exactly
 * the decoded text (no newline added) unless --json.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void tokenize_help(void) {
    printf("usage: silica tokenize MODEL_DIR|tokenizer.json (--text T | --file F | --jsonl F) [options]\n\n"
           "Encode text into token ids exactly as Hugging Face tokenizers does; prints\n"
           "{\"ids\": [...], \"tokens\": [...]}.\n\n"
           "options:\n"
           "  --text T            the text to encode\n"
           "  --file F            encode the bytes of file F (invalid UTF-8 is replaced by U+FFFD\n"
           "                      per maximal invalid subsequence, as bytes.decode('utf-8', 'replace'))\n"
           "  --jsonl F           batch: each line of F is a JSON string; one JSON object per line out\n"
           "  --add-special       add BOS/EOS as the post-processor / tokenizer_config.json say\n"
           "  --special-as-text   special-token text in the input is plain text, not a special token\n"
           "  --json              JSON output (the default)\n"
           "  --stats             print load/encode times, bytes and id counts instead of the ids\n");
}

static void detokenize_help(void) {
    printf("usage: silica detokenize MODEL_DIR|tokenizer.json (--ids 1,2,3 | --jsonl F) [options]\n\n"
           "Decode token ids into text exactly as Hugging Face tokenizers' decode does; prints\n"
           "the text as is (no newline added).\n\n"
           "options:\n"
           "  --ids LIST          comma-separated token ids\n"
           "  --jsonl F           batch: each line of F is a JSON array of ids; prints one\n"
           "                      {\"text\": ..., \"stream\": [...]} per line\n"
           "  --skip-special      leave special tokens out of the text\n"
           "  --stream            decode id by id like generation does (never a broken UTF-8\n"
           "                      sequence); prints each chunk as it becomes final\n"
           "  --json              print {\"text\": ...} (with --stream also \"stream\": [chunks])\n"
           "  --stats             print load/decode times and byte counts instead of the text\n");
}

/* JSON string output that keeps NUL and every byte (input is valid UTF-8). */
static void put_json_string(FILE *f, const char *s, size_t n) {
    static const char hx[] = "0123456789abcdef";
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(f, "\\u00%c%c", hx[c >> 4], hx[c & 15]);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}

static void put_ids_json(FILE *f, const sl_tok_ids *ids, const sl_tok_strs *strs) {
    fputs("{\"ids\": [", f);
    for (size_t i = 0; i < ids->n; i++) fprintf(f, i ? ", %u" : "%u", ids->ids[i]);
    fputs("], \"tokens\": [", f);
    for (size_t i = 0; i < strs->n; i++) {
        if (i) fputs(", ", f);
        put_json_string(f, strs->data + strs->off[i], strs->len[i]);
    }
    fputs("]}\n", f);
}

/* Decode one JSON string literal s[0..n) (surrounding whitespace allowed)
 * into malloc'd bytes; lone surrogates become U+FFFD.  Returns 0 or -1. */
static int json_string(const char *s, size_t n, char **out, size_t *olen) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++;
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    char *o = NULL;
    size_t k = 0, cap = 0;
    const char *stop, *why;
    if (sl_json_string_decode(s + i, s + n, SL_JSON_SURROGATE_FFFD, false, &o, &k, &cap, &stop, &why) || stop != s + n) {
        free(o);
        return -1;
    }
    *out = o;
    *olen = k;
    return 0;
}

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
static double now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
/* CPU time of this thread: what a benchmark on a shared machine should compare */
static double cpu_ms(void) { return clock_ms(CLOCK_THREAD_CPUTIME_ID); }

/* --stats: timings instead of output (benchmarks) */
typedef struct run_stats {
    bool on;
    double load_ms, work_ms, load_cpu_ms, work_cpu_ms;
    unsigned long long bytes, ids, items;
} run_stats;

static void print_stats(const run_stats *st, const char *work) {
    printf("{\"load_ms\": %.3f, \"load_cpu_ms\": %.3f, \"%s_ms\": %.3f, \"%s_cpu_ms\": %.3f, \"bytes\": %llu, "
           "\"ids\": %llu, \"items\": %llu}\n",
           st->load_ms, st->load_cpu_ms, work, st->work_ms, work, st->work_cpu_ms, st->bytes, st->ids, st->items);
}

/* Read a whole file (raw bytes). */
static int read_all(const char *path, char **buf, size_t *len, sl_error *err) {
    return sl_read_file(path, 1ull << 31, buf, len, err);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *jsonl = NULL;
    unsigned flags = 0;
    run_stats st = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (cli_is_help(a)) {
            tokenize_help();
            return 0;
        }
        if ((v = cli_opt_value(argc, argv, &i, "--text", &missing))) text = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--file", &missing))) file = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--jsonl", &missing))) jsonl = v;
        else if (missing) return cli_usage("tokenize", "%s needs a value", a);
        else if (!strcmp(a, "--add-special")) flags |= SL_TOK_ADD_SPECIAL;
        else if (!strcmp(a, "--special-as-text")) flags |= SL_TOK_SPECIAL_AS_TEXT;
        else if (!strcmp(a, "--stats")) st.on = true;
        else if (!strcmp(a, "--json")) {
        } else if (a[0] == '-' && a[1]) return cli_usage("tokenize", "unknown option '%s'", a);
        else if (!model) model = a;
        else return cli_usage("tokenize", "unexpected argument '%s'", a);
    }
    if (!model) return cli_usage("tokenize", "missing MODEL_DIR or tokenizer.json");
    if ((text != NULL) + (file != NULL) + (jsonl != NULL) != 1)
        return cli_usage("tokenize", "give exactly one of --text, --file, --jsonl");
    sl_error err = {0};
    sl_tokenizer *t = NULL;
    double t0 = now_ms(), c0 = cpu_ms();
    if (sl_tok_load(model, &t, &err)) return cli_fail(&err);
    st.load_ms = now_ms() - t0;
    st.load_cpu_ms = cpu_ms() - c0;
    sl_tok_ids ids = {0};
    sl_tok_strs strs = {0};
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (text || file) {
        if (file && read_all(file, &buf, &len, &err)) rc = cli_fail(&err);
        const char *in = text ? text : buf;
        size_t n = text ? strlen(text) : len;
        t0 = now_ms();
        c0 = cpu_ms();
        if (!rc && sl_tok_encode_strs(t, in, n, flags, &ids, st.on ? NULL : &strs, &err)) rc = cli_fail(&err);
        st.work_ms = now_ms() - t0;
        st.work_cpu_ms = cpu_ms() - c0;
        st.bytes = n;
        st.ids = ids.n;
        st.items = 1;
        if (!rc && !st.on) put_ids_json(stdout, &ids, &strs);
    } else {
        if (read_all(jsonl, &buf, &len, &err)) rc = cli_fail(&err);
        size_t pos = 0, line = 0;
        while (!rc && pos < len) {
            char *nl = memchr(buf + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - buf) : len;
            line++;
            char *str = NULL;
            size_t sl = 0;
            if (end == pos) {
                pos = end + 1;
                continue;
            }
            if (json_string(buf + pos, end - pos, &str, &sl)) {
                fflush(stdout);
                sl_errorf(&err, SL_EINVAL, "%s:%zu: expected a JSON string", jsonl, line);
                rc = cli_fail(&err);
                break;
            }
            ids.n = 0;
            strs.n = strs.size = 0;
            t0 = now_ms();
            c0 = cpu_ms();
            int erc = sl_tok_encode_strs(t, str, sl, flags, &ids, st.on ? NULL : &strs, &err);
            st.work_ms += now_ms() - t0;
            st.work_cpu_ms += cpu_ms() - c0;
            st.bytes += sl;
            st.ids += ids.n;
            st.items++;
            free(str);
            if (erc) {
                fflush(stdout);
                rc = cli_fail(&err);
                break;
            }
            if (!st.on) put_ids_json(stdout, &ids, &strs);
            pos = end + 1;
        }
    }
    if (!rc && st.on) print_stats(&st, "encode");
    free(buf);
    sl_tok_ids_free(&ids);
    sl_tok_strs_free(&strs);
    sl_tok_free(t);
    return rc;
}

static int ids_push(sl_tok_ids *ids, uint32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        uint32_t *v = realloc(ids->ids, cap * sizeof *v);
        if (!v) return 1;
        ids->ids = v;
        ids->cap = cap;
    }
    ids->ids[ids->n++] = id;
    return 0;
}

static int parse_ids(const char *s, sl_tok_ids *ids, sl_error *err) {
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        if (*p < '0' || *p > '9') return sl_errorf(err, SL_EINVAL, "--ids: expected comma-separated integers, got '%.20s'", p);
        errno = 0;
        char *e;
        unsigned long long v = strtoull(p, &e, 10);
        if (errno || v > UINT32_MAX) return sl_errorf(err, SL_EINVAL, "--ids: id '%.20s' is out of range", p);
        if (ids_push(ids, (uint32_t)v)) return sl_errorf(err, SL_ENOMEM, "out of memory");
        p = e;
        if (*p && *p != ',' && *p != ' ') return sl_errorf(err, SL_EINVAL, "--ids: expected comma-separated integers, got '%.20s'", p);
    }
    return 0;
}

/* Decode ids (and with stream, the chunks) into a JSON object or raw output. */
static int detok_one(const sl_tokenizer *t, const sl_tok_ids *ids, unsigned flags, bool stream, bool json,
                     bool line_mode, run_stats *st, sl_error *err) {
    char *text = NULL;
    size_t tl = 0;
    double t0 = now_ms(), c0 = cpu_ms();
    if (sl_tok_decode(t, ids->ids, ids->n, flags, &text, &tl, err)) return 1;
    if (st->on) {
        st->work_ms += now_ms() - t0;
        st->work_cpu_ms += cpu_ms() - c0;
        st->bytes += tl;
        st->ids += ids->n;
        st->items++;
        free(text);
        return 0;
    }
    struct chunk {
        char *s;
        size_t n;
    } *chunks = NULL;
    size_t nch = 0;
    bool stream_err = false;
    if (stream) {
        chunks = calloc(ids->n + 1, sizeof *chunks);
        if (!chunks) {
            free(text);
            sl_errorf(err, SL_ENOMEM, "out of memory");
            return 1;
        }
        sl_tok_stream *s = NULL;
        if (sl_tok_stream_new(t, flags, &s, err)) {
            free(text);
            return 1;
        }
        for (size_t i = 0; i < ids->n; i++) {
            const char *c;
            size_t cl;
            if (sl_tok_stream_step(s, ids->ids[i], &c, &cl, err)) {
                if (line_mode) { /* batch: report the failure in the record, like HF raising */
                    stream_err = true;
                    break;
                }
                sl_tok_stream_free(s);
                for (size_t k = 0; k < nch; k++) free(chunks[k].s);
                free(chunks);
                free(text);
                return 1;
            }
            if (!json && !line_mode) {
                fwrite(c, 1, cl, stdout);
                fflush(stdout);
            }
            chunks[nch].n = cl;
            if (cl && (chunks[nch].s = malloc(cl))) memcpy(chunks[nch].s, c, cl);
            else chunks[nch].n = 0;
            nch++;
        }
        sl_tok_stream_free(s);
    }
    if (json || line_mode) {
        fputs("{\"text\": ", stdout);
        put_json_string(stdout, text, tl);
        if (stream_err) {
            fputs(", \"stream\": null, \"stream_error\": ", stdout);
            put_json_string(stdout, err->msg, strlen(err->msg));
        } else if (stream) {
            fputs(", \"stream\": [", stdout);
            for (size_t i = 0; i < nch; i++) {
                if (i) fputs(", ", stdout);
                if (chunks[i].n) put_json_string(stdout, chunks[i].s, chunks[i].n);
                else fputs("null", stdout);
            }
            fputc(']', stdout);
        }
        fputs("}\n", stdout);
    } else if (!stream) {
        fwrite(text, 1, tl, stdout);
    }
    for (size_t i = 0; i < nch; i++) free(chunks[i].s);
    free(chunks);
    free(text);
    return 0;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *jsonl = NULL;
    unsigned flags = 0;
    bool json = false, stream = false;
    run_stats st = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (cli_is_help(a)) {
            detokenize_help();
            return 0;
        }
        if ((v = cli_opt_value(argc, argv, &i, "--ids", &missing))) ids_s = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--jsonl", &missing))) jsonl = v;
        else if (missing) return cli_usage("detokenize", "%s needs a value", a);
        else if (!strcmp(a, "--skip-special")) flags |= SL_TOK_SKIP_SPECIAL;
        else if (!strcmp(a, "--stream")) stream = true;
        else if (!strcmp(a, "--stats")) st.on = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (a[0] == '-' && a[1]) return cli_usage("detokenize", "unknown option '%s'", a);
        else if (!model) model = a;
        else return cli_usage("detokenize", "unexpected argument '%s'", a);
    }
    if (!model) return cli_usage("detokenize", "missing MODEL_DIR or tokenizer.json");
    if ((ids_s != NULL) + (jsonl != NULL) != 1) return cli_usage("detokenize", "give exactly one of --ids, --jsonl");
    sl_error err = {0};
    sl_tok_ids ids = {0};
    if (ids_s && parse_ids(ids_s, &ids, &err)) {
        sl_tok_ids_free(&ids);
        return cli_fail(&err);
    }
    sl_tokenizer *t = NULL;
    double t0 = now_ms(), c0 = cpu_ms();
    if (sl_tok_load(model, &t, &err)) {
        sl_tok_ids_free(&ids);
        return cli_fail(&err);
    }
    st.load_ms = now_ms() - t0;
    st.load_cpu_ms = cpu_ms() - c0;
    int rc = 0;
    if (ids_s) {
        if (detok_one(t, &ids, flags, stream, json, false, &st, &err)) rc = cli_fail(&err);
    } else {
        char *buf = NULL;
        size_t len = 0;
        if (read_all(jsonl, &buf, &len, &err)) rc = cli_fail(&err);
        size_t pos = 0, line = 0;
        while (!rc && pos < len) {
            char *nl = memchr(buf + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - buf) : len;
            line++;
            if (end == pos) {
                pos = end + 1;
                continue;
            }
            cJSON *j = cJSON_ParseWithLength(buf + pos, end - pos);
            ids.n = 0;
            bool ok = cJSON_IsArray(j);
            const cJSON *x;
            cJSON_ArrayForEach(x, j) {
                if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > (double)UINT32_MAX ||
                    ids_push(&ids, (uint32_t)x->valuedouble))
                    ok = false;
            }
            cJSON_Delete(j);
            fflush(stdout);
            if (!ok) {
                sl_errorf(&err, SL_EINVAL, "%s:%zu: expected a JSON array of token ids", jsonl, line);
                rc = cli_fail(&err);
            } else if (detok_one(t, &ids, flags, stream, true, true, &st, &err)) rc = cli_fail(&err);
            pos = end + 1;
        }
        free(buf);
    }
    if (!rc && st.on) print_stats(&st, "decode");
    fflush(stdout);
    sl_tok_ids_free(&ids);
    sl_tok_free(t);
    return rc;
}
