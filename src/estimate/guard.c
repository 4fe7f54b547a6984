/*
 * guard.c — the memory guard of the generating commands (and a server):
 * this machine's budget as `silica fit` computes it, a session's KV cache
 * as the estimator sees it, and the refusal of a model that will not fit,
 * before any weight page is read or the KV cache exists.
 *
 * Invariants: the guard estimates exactly as `silica fit MODEL --ctx N --kv
 * T` does (same model reading, same numbers, same budget rule) and refuses
 * only when total > budget; when the estimator cannot read the model or the
 * machine's memory is unknown it stays out of the way (opening the model
 * reports the real problem).  The refusal is one line with the numbers and
 * what would make it fit.
 */
#include <stdio.h>
#include <string.h>

#include "silica/memory.h"
#include "silica/runtime.h"

bool sl_fit_host_budget(sl_mem_host *host, sl_fit_budget *b, char *target, size_t cap) {
    sl_mem_host_probe(host);
    *b = (sl_fit_budget){host->total_bytes, host->budget_bytes, host->apple, false};
    if (!host->apple && host->cgroup_limit_bytes && host->cgroup_limit_bytes < host->total_bytes) {
        b->ram_bytes = host->cgroup_limit_bytes;
        b->whole_ram = true;
    }
    snprintf(target, cap, "this machine (%s)", host->budget_source);
    return b->budget_bytes != 0;
}

sl_fit_kv sl_fit_kv_for_session(const struct sl_session_opts *so, const sl_fit_model *m) {
    bool f32 = so->kv_dtype ? so->kv_dtype == SL_F32 : m->f32_compute;
    sl_fit_kv k = {so->kv_bits == 8 ? SL_KV_Q8 : so->kv_bits == 4 ? SL_KV_Q4 : f32 ? SL_KV_F32 : SL_KV_F16,
                   so->kv_group_size, so->max_kv, so->kv_keep, f32};
    return k;
}

/* x in the unit of `ref` (GiB when ref >= 1 GiB, else MiB), 2 decimals. */
static const char *in_unit(uint64_t x, uint64_t ref, char *buf, size_t cap) {
    double u = ref >= SL_GIB ? (double)SL_GIB : (double)SL_MIB;
    snprintf(buf, cap, "%.2f", (double)x / u);
    return buf;
}

/* "; try: <quantize command>, or --ctx N" from the recommendations. */
static void what_would_fit(const sl_fit_model *m, const sl_fit_budget *b, int64_t ctx, sl_kv_type kv, char *tries,
                           size_t cap) {
    sl_fit_rec recs[8];
    size_t nrec = 0;
    sl_error err = {0};
    tries[0] = 0;
    if (!sl_fit_recommend(m, b, ctx, kv, recs, 8, &nrec, &err)) {
        bool quant = false, shorter = false;
        for (size_t k = 0; k < nrec; k++) {
            const sl_fit_rec *r = &recs[k];
            if (r->verdict == SL_FIT_NO || (r->kind == SL_REC_QUANT && quant) || (r->kind == SL_REC_CTX && shorter))
                continue;
            if (r->kind != SL_REC_QUANT && r->kind != SL_REC_CTX) continue;   /* KV types and sysctls: see `silica fit` */
            size_t l = strlen(tries);
            snprintf(tries + l, cap - l, "%s%s", l ? ", or " : "; try: ", r->kind == SL_REC_QUANT ? r->command : r->what);
            quant |= r->kind == SL_REC_QUANT;
            shorter |= r->kind == SL_REC_CTX;
        }
    }
    if (!tries[0]) snprintf(tries, cap, "; no quantization or shorter context makes it fit");
}

int sl_fit_guard(const char *path, const struct sl_session_opts *so, uint64_t max_memory, sl_error *err) {
    return sl_fit_guard_beside(path, so, max_memory, 0, NULL, NULL, err);
}

int sl_fit_guard_beside(const char *path, const struct sl_session_opts *so, uint64_t max_memory, uint64_t in_use,
                        const char *in_use_what, uint64_t *needs, sl_error *err) {
    int64_t ctx = so->n_ctx;
    sl_fit_budget b;
    char target[160];
    if (needs) *needs = 0;
    if (max_memory) {
        b = (sl_fit_budget){max_memory, max_memory, false, true};
        snprintf(target, sizeof target, "--max-memory");
    } else {
        sl_mem_host host;
        if (!sl_fit_host_budget(&host, &b, target, sizeof target)) return 0;   /* unknown machine: nothing to compare */
    }
    sl_error e2 = {0};
    sl_fit_model *m = NULL;
    if (sl_fit_model_load(path, &m, &e2)) return 0;   /* opening the model reports what is wrong with it */
    sl_fit_kv fk = sl_fit_kv_for_session(so, m);
    sl_fit_estimate e;
    if (ctx > SL_FIT_MAX_CTX) ctx = SL_FIT_MAX_CTX;
    if (sl_fit_estimate_ex(m, ctx, &fk, &e, &e2)) {
        sl_fit_model_free(m);
        return 0;
    }
    if (needs) *needs = e.total_bytes;
    if (e.total_bytes + in_use <= b.budget_bytes) {
        sl_fit_model_free(m);
        return 0;
    }
    uint64_t budget = b.budget_bytes;
    b.budget_bytes = in_use < budget ? budget - in_use : 0;   /* what is left for this model */
    char tries[2048];
    what_would_fit(m, &b, ctx, fk.type, tries, sizeof tries);
    uint64_t ref = e.total_bytes + in_use > budget ? e.total_bytes + in_use : budget;
    const char *unit = ref >= SL_GIB ? "GiB" : "MiB";
    char t[32], w[32], k[32], ov[32], bud[32], used[32], kvs[64] = "", beside[400] = "";
    snprintf(kvs, sizeof kvs, " --kv %s", sl_kv_type_name(fk.type));   /* the cache it would use (default: the model's dtype) */
    if (fk.max_kv > 0) snprintf(kvs + strlen(kvs), sizeof kvs - strlen(kvs), " --max-kv-size %lld", (long long)fk.max_kv);
    if (in_use)
        snprintf(beside, sizeof beside, " beside %s %s already in use (%.300s)", in_unit(in_use, ref, used, sizeof used),
                 unit, in_use_what ? in_use_what : "loaded models");
    sl_errorf(err, SL_EINVAL,
              "%s: needs %s %s at --ctx %lld%s (weights %s + KV %s + overhead %s)%s but the budget is %s %s (%s)%s; "
              "--force runs it anyway",
              path, in_unit(e.total_bytes, ref, t, sizeof t), unit, (long long)ctx, kvs,
              in_unit(e.weights_resident_bytes, ref, w, sizeof w), in_unit(e.kv_bytes, ref, k, sizeof k),
              in_unit(e.compute_bytes + e.overhead_bytes, ref, ov, sizeof ov), beside,
              in_unit(budget, ref, bud, sizeof bud), unit, target, tries);
    sl_fit_model_free(m);
    return SL_EINVAL;
}
