/*
 * run.c — a comparison (silica/compare.h sl_cmp_run): the reference model
 * on the reference engine gives the reference logits of every prompt once;
 * then every (engine, model) pair runs in a fresh engine process (so its
 * peak RSS is its own) and is judged against them.
 *
 * Invariants: rows come in engine order, models in the order given (REF
 * first); a pair whose engine does not read the model's format has no row;
 * a pair whose engine is missing or fails has a row with the error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compare/compare_impl.h"
#include "silica/convert.h"
#include "silica/io.h"
#include "silica/memory.h"

const char *sl_cmp_model_format(const char *path) {
    if (sl_path_is_dir(path)) return sl_convert_dir_is_quantized(path) ? "mlx" : "hf";
    if (sl_str_ends_with(path, ".gguf")) return "gguf";
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    if (f) {
        if (fread(magic, 1, 4, f) != 4) magic[0] = 0;
        fclose(f);
    }
    return memcmp(magic, "GGUF", 4) == 0 ? "gguf" : "hf";
}

void sl_cmp_model_size(const char *path, uint64_t *file_bytes, double *bits_per_weight) {
    struct stat st;
    *file_bytes = 0;
    *bits_per_weight = 0;
    if (sl_path_is_dir(path)) {
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            char *p = sl_path_join(path, de->d_name);
            if (p && de->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) *file_bytes += (uint64_t)st.st_size;
            free(p);
        }
        if (d) closedir(d);
    } else if (stat(path, &st) == 0) {
        *file_bytes = (uint64_t)st.st_size;
    }
    sl_fit_model *m = NULL;
    if (sl_fit_model_load(path, &m, NULL) == 0 && m->params)
        *bits_per_weight = (double)m->weights_bytes * 8.0 / (double)m->params;
    sl_fit_model_free(m);
}

typedef struct ref_run {
    sl_cmp_result *res;   /* per prompt */
    int n;
} ref_run;

static void ref_free(ref_run *r) {
    for (int k = 0; r->res && k < r->n; k++) sl_cmp_result_free(&r->res[k]);
    free(r->res);
}

/* Start `engine`, load `model`, evaluate every prompt into res[]. */
static int run_pair(const sl_cmp_opts *o, const char *engine, const char *model, sl_cmp_result *res,
                    char *version, size_t vcap, char *device, size_t dcap, sl_error *err) {
    sl_cmp_engine *e = NULL;
    int rc = sl_cmp_engine_start(engine, &e, err);
    if (rc) return rc;
    snprintf(version, vcap, "%s", sl_cmp_engine_version(e));
    if (!sl_cmp_engine_reads(e, sl_cmp_model_format(model))) {
        sl_cmp_engine_close(e);
        return -1;   /* not applicable */
    }
    bool own = strcmp(engine, "silica") == 0;
    rc = sl_cmp_engine_load(e, model, o->n_ctx, own ? o->device : NULL, own ? o->gpu_layers : 0, err);
    if (device) snprintf(device, dcap, "%s", sl_cmp_engine_device(e));
    for (int k = 0; !rc && k < o->n_prompts; k++) {
        if (sl_interrupted()) rc = sl_errorf(err, SL_EINTR, "interrupted");
        else rc = sl_cmp_engine_eval(e, o->prompts[k].ids, o->prompts[k].n, o->max_tokens, &res[k], err);
        if (!rc && res[k].vocab != o->vocab)
            rc = sl_errorf(err, SL_EINVAL, "%s: vocabulary of %d tokens, the reference has %d", model, res[k].vocab,
                           o->vocab);
    }
    sl_cmp_engine_close(e);
    return rc;
}

/* Judge one pair's results against the reference into row. */
static int judge(const sl_cmp_opts *o, const ref_run *ref, const sl_cmp_result *res, sl_cmp_row *row,
                 sl_error *err) {
    sl_cmp_acc *a;
    if (sl_cmp_acc_new(&a, err)) return SL_ENOMEM;
    double prompt_s = 0, gen_s = 0, ttft = 0, prefix = 0;
    int64_t prompt_tok = 0, gen_tok = 0;
    int rc = 0;
    for (int k = 0; !rc && k < o->n_prompts; k++) {
        const sl_cmp_result *r = &res[k], *q = &ref->res[k];
        rc = sl_cmp_acc_add(a, q->logits, r->logits, o->prompts[k].ids, o->prompts[k].n, o->vocab, err);
        prefix += sl_cmp_common_prefix(q->greedy, q->n_greedy, r->greedy, r->n_greedy);
        prompt_s += r->prompt_s;
        prompt_tok += r->n;
        gen_s += r->gen_s;
        gen_tok += r->n_greedy > 1 ? r->n_greedy - 1 : 0;
        ttft += r->ttft_s;
        if (r->peak_rss > row->peak_rss) row->peak_rss = r->peak_rss;
    }
    if (!rc) {
        sl_cmp_acc_stats(a, &row->st);
        row->greedy_prefix = o->n_prompts ? prefix / o->n_prompts : 0;
        row->prompt_tps = prompt_s > 0 ? (double)prompt_tok / prompt_s : 0;
        row->gen_tps = gen_s > 0 ? (double)gen_tok / gen_s : 0;
        row->ttft_ms = o->max_tokens && o->n_prompts ? 1e3 * ttft / o->n_prompts : 0;
        size_t n;
        const double *kl = sl_cmp_acc_klds(a, &n);
        row->klds = malloc((n ? n : 1) * sizeof *row->klds);
        if (!row->klds) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        else {
            memcpy(row->klds, kl, n * sizeof *kl);
            row->klds_n = n;
        }
    }
    sl_cmp_acc_free(a);
    return rc;
}

static sl_cmp_row *add_row(sl_cmp_report *rep, const char *label, const char *path, const char *engine) {
    sl_cmp_row *rows = realloc(rep->rows, ((size_t)rep->n_rows + 1) * sizeof *rows);
    if (!rows) return NULL;
    rep->rows = rows;
    sl_cmp_row *r = &rows[rep->n_rows++];
    memset(r, 0, sizeof *r);
    r->model = strdup(label);
    r->path = strdup(path);
    snprintf(r->engine, sizeof r->engine, "%s", engine);
    sl_cmp_model_size(path, &r->file_bytes, &r->bits_per_weight);
    return r->model && r->path ? r : NULL;
}

static int check_opts(const sl_cmp_opts *o, sl_error *err) {
    if (o->n_prompts < 1) return sl_errorf(err, SL_EINVAL, "nothing to compare: no prompt");
    if (o->vocab < 1) return sl_errorf(err, SL_EINVAL, "the reference's vocabulary size is unknown");
    for (int k = 0; k < o->n_prompts; k++) {
        if (o->prompts[k].n < 1 || o->prompts[k].n + o->max_tokens > o->n_ctx)
            return sl_errorf(err, SL_EINVAL, "prompt %d: %d tokens + %d generated do not fit a context of %d", k + 1,
                             o->prompts[k].n, o->max_tokens, o->n_ctx);
        for (int i = 0; i < o->prompts[k].n; i++)
            if (o->prompts[k].ids[i] < 0 || o->prompts[k].ids[i] >= o->vocab)
                return sl_errorf(err, SL_EINVAL, "prompt %d: token id %d is outside the vocabulary (%d tokens)", k + 1,
                                 (int)o->prompts[k].ids[i], o->vocab);
    }
    for (int k = 0; k < o->n_engines; k++)
        if (!sl_cmp_engine_known(o->engines[k]))
            return sl_errorf(err, SL_EINVAL, "unknown engine '%s' (silica, or an adapter in %s)", o->engines[k],
                             sl_cmp_adapter_dir() ? sl_cmp_adapter_dir() : "part8/adapters");
    const char *re = o->ref_engine ? o->ref_engine : "silica";
    if (!sl_cmp_engine_known(re)) return sl_errorf(err, SL_EINVAL, "unknown reference engine '%s'", re);
    return 0;
}

/* Every engine on every model; rows appended to rep. */
static int run_engines(const sl_cmp_opts *o, const ref_run *ref, sl_cmp_report *rep, sl_error *err) {
    static const char *const k_default[] = {"silica"};
    const char *const *engines = o->n_engines ? o->engines : k_default;
    int n_eng = o->n_engines ? o->n_engines : 1, n_models = 1 + o->n_cands, done = 0;
    rep->engine_status = calloc((size_t)n_eng, sizeof *rep->engine_status);
    rep->engine_names = calloc((size_t)n_eng, sizeof *rep->engine_names);
    if (!rep->engine_status || !rep->engine_names) return sl_errorf(err, SL_ENOMEM, "out of memory");
    rep->n_engines = n_eng;
    sl_cmp_result *res = calloc((size_t)o->n_prompts, sizeof *res);
    if (!res) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = 0;
    for (int e = 0; !rc && e < n_eng; e++) {
        rep->engine_names[e] = strdup(engines[e]);
        for (int m = 0; !rc && m < n_models; m++, done++) {
            const char *path = m ? o->cands[m - 1] : o->ref;
            const char *label = m ? (o->cand_labels && o->cand_labels[m - 1] ? o->cand_labels[m - 1] : path)
                                  : (o->ref_label ? o->ref_label : path);
            if (o->progress) o->progress(o->progress_ud, done, n_eng * n_models, label, engines[e]);
            char version[128] = "";
            sl_error pe = {0};
            int r = run_pair(o, engines[e], path, res, version, sizeof version, NULL, 0, &pe);
            if (!rep->engine_status[e] && (version[0] || r))
                rep->engine_status[e] = strdup(version[0] ? version : pe.msg);
            if (r == SL_EINTR || sl_interrupted()) rc = sl_errorf(err, SL_EINTR, "interrupted");
            else if (r != -1) {
                sl_cmp_row *row = add_row(rep, label, path, engines[e]);
                if (!row) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
                else if (r) row->error = strdup(r == SL_EUNSUPPORTED ? "not installed" : pe.msg);
                else if (judge(o, ref, res, row, &pe)) row->error = strdup(pe.msg);
            }
            for (int k = 0; k < o->n_prompts; k++) sl_cmp_result_free(&res[k]);
        }
    }
    free(res);
    if (o->progress && !rc) o->progress(o->progress_ud, done, done, "", "");
    return rc;
}

int sl_cmp_run(const sl_cmp_opts *o, sl_cmp_report **out, sl_error *err) {
    *out = NULL;
    int rc = check_opts(o, err);
    if (rc) return rc;
    sl_cmp_report *rep = calloc(1, sizeof *rep);
    ref_run ref = {calloc((size_t)o->n_prompts, sizeof(sl_cmp_result)), o->n_prompts};
    if (!rep || !ref.res) {
        free(rep);
        free(ref.res);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    const char *re = o->ref_engine ? o->ref_engine : "silica";
    rep->ref_model = strdup(o->ref_label ? o->ref_label : o->ref);
    rep->ref_path = strdup(o->ref);
    rep->ref_engine = strdup(re);
    rep->n_prompts = o->n_prompts;
    rep->max_tokens = o->max_tokens;
    rep->n_ctx = o->n_ctx;
    sl_cmp_model_size(o->ref, &rep->ref_file_bytes, &rep->ref_bits_per_weight);
    for (int k = 0; k < o->n_prompts; k++) rep->tokens += o->prompts[k].n;
    char version[128] = "";
    char dev[128] = "";
    rc = run_pair(o, re, o->ref, ref.res, version, sizeof version, dev, sizeof dev, err);
    rep->device = strdup(dev[0] ? dev : o->device ? o->device : "cpu");
    if (rc == -1) rc = sl_errorf(err, SL_EINVAL, "%s: the reference engine %s does not read %s models", o->ref, re,
                                 sl_cmp_model_format(o->ref));
    else if (rc && rc != SL_EINTR) sl_error_prefix(err, "reference %s on %s: ", o->ref, re);
    rep->ref_version = strdup(version);
    if (!rc) {
        sl_cmp_acc *a;
        if (!(rc = sl_cmp_acc_new(&a, err))) {
            for (int k = 0; !rc && k < o->n_prompts; k++)
                rc = sl_cmp_acc_add(a, ref.res[k].logits, ref.res[k].logits, o->prompts[k].ids, o->prompts[k].n,
                                    o->vocab, err);
            sl_cmp_stats st;
            sl_cmp_acc_stats(a, &st);
            rep->ref_ppl = st.ppl_ref;
            sl_cmp_acc_free(a);
        }
    }
    if (!rc) rc = run_engines(o, &ref, rep, err);
    ref_free(&ref);
    if (rc) {
        sl_cmp_report_free(rep);
        return rc;
    }
    *out = rep;
    return 0;
}

void sl_cmp_report_free(sl_cmp_report *r) {
    if (!r) return;
    for (int k = 0; k < r->n_rows; k++) {
        free(r->rows[k].model);
        free(r->rows[k].path);
        free(r->rows[k].error);
        free(r->rows[k].klds);
    }
    free(r->rows);
    for (int k = 0; k < r->n_engines; k++) {
        free(r->engine_status ? r->engine_status[k] : NULL);
        free(r->engine_names ? r->engine_names[k] : NULL);
    }
    free(r->engine_status);
    free(r->engine_names);
    free(r->ref_model);
    free(r->ref_path);
    free(r->ref_engine);
    free(r->device);
    free(r->ref_version);
    free(r);
}
