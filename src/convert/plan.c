/*
 * plan.c — a model conversion as a list of output tensors, each with a
 * producer (copy/cast, quantize, dequantize, GGUF repack / requantize), and
 * the code that streams the producers of one output file into a writer.
 *
 * Memory: copies and dequantizations stream in CHUNK_BYTES pieces; a
 * quantization computes one whole tensor's packed codes, scales and biases
 * (smaller than the source tensor) and keeps them in a one-entry cache, so
 * the weight / scales / biases outputs of one source tensor — which the
 * writer may ask for at different times (safetensors orders by dtype, then
 * name) — cost at most two quantization passes and never more than one
 * tensor's worth of memory.  Source pages are released after each pass.
 *
 * Invariants: every size is computed with overflow-checked arithmetic;
 * quantization only runs on tensors whose last dimension is a multiple of
 * the group size (the planners check it; the quant library re-checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"

#define CHUNK_BYTES (8u << 20)

int sl_plan_add(sl_plan *p, const sl_out_tensor *t, sl_error *err) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        sl_out_tensor *nt = realloc(p->t, cap * sizeof *nt);
        if (!nt) return sl_errorf(err, SL_ENOMEM, "out of memory");
        p->t = nt;
        p->cap = cap;
    }
    p->t[p->n] = *t;
    if (!(p->t[p->n].name = strdup(t->name))) return sl_errorf(err, SL_ENOMEM, "out of memory");
    p->n++;
    return 0;
}

void sl_plan_free(sl_plan *p) {
    for (size_t i = 0; i < p->n; i++) free(p->t[i].name);
    free(p->t);
    p->t = NULL;
    p->n = p->cap = 0;
}

uint64_t sl_plan_nbytes(const sl_out_tensor *t) {
    uint64_t numel = 1, nb = 0;
    for (int d = 0; d < t->ndim; d++)
        if (!sl_mul_u64(numel, (uint64_t)t->shape[d], &numel)) return 0;
    if (!sl_dtype_nbytes(t->dtype, numel, &nb)) return 0;
    return nb;
}

uint32_t sl_plan_shard(sl_plan *p, uint64_t limit) {
    uint32_t shards = 0;
    uint64_t size = 0;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t b = sl_plan_nbytes(&p->t[i]);
        if (!shards || size + b > limit) {
            shards++;
            size = 0;
        }
        p->t[i].shard = shards - 1;
        size += b;
    }
    return shards ? shards : 1;
}

int sl_plan_report(sl_plan *p, const char *name, const char *status, const sl_qparams *q, const sl_q_stats *s,
                   sl_error *err) {
    sl_convert_stats *st = p->st;
    if (!st || !p->o->report) return 0;
    sl_tensor_report *r = realloc(st->report, (st->n_report + 1) * sizeof *r);
    if (!r) return sl_errorf(err, SL_ENOMEM, "out of memory");
    st->report = r;
    r += st->n_report;
    memset(r, 0, sizeof *r);
    if (!(r->name = strdup(name))) return sl_errorf(err, SL_ENOMEM, "out of memory");
    st->n_report++;
    snprintf(r->status, sizeof r->status, "%s", status);
    if (q) {
        r->bits = q->bits;
        r->group_size = q->group_size;
        snprintf(r->mode, sizeof r->mode, "%s", sl_q_mode_name(q->mode));
    }
    if (s) {
        r->n = s->n;
        r->rmse = sl_q_stats_rmse(s);
        r->max_abs = s->max_abs;
        r->rel = sl_q_stats_rel(s);
    }
    return 0;
}

static int tick(sl_plan *p, uint64_t n, const char *what, sl_error *err) {
    p->done += n;
    if (p->o->progress) p->o->progress(p->o->progress_ctx, p->done, p->total, what);
    if (sl_interrupted()) return sl_errorf(err, SL_EINTR, "interrupted");
    return 0;
}

/* ---- copy / cast ---- */

static int produce_copy(sl_plan *p, const sl_out_tensor *o, sl_writer *w, uint8_t *buf, sl_error *err) {
    const sl_tensor *t = o->src;
    sl_dtype dt = o->dtype;
    if (sl_dtype_size(t->dtype) == 0 || sl_dtype_size(dt) == 0) {
        if (dt != t->dtype || !t->contiguous || t->big_endian)
            return sl_errorf(err, SL_EUNSUPPORTED, "tensor '%s': cannot convert %s to %s", t->name,
                             sl_dtype_name(t->dtype), sl_dtype_name(dt));
        for (uint64_t off = 0; off < t->nbytes;) {
            size_t n = t->nbytes - off > CHUNK_BYTES ? CHUNK_BYTES : (size_t)(t->nbytes - off);
            int rc = sl_writer_write(w, t->data + off, n, err);
            if (!rc) rc = tick(p, n, o->name, err);
            if (rc) return rc;
            off += n;
        }
        return 0;
    }
    size_t esz = sl_dtype_size(dt);
    uint64_t per = CHUNK_BYTES / esz;
    for (uint64_t first = 0; first < t->numel;) {
        uint64_t n = t->numel - first > per ? per : t->numel - first;
        int rc = sl_tensor_read(t, first, n, dt, buf, err);
        if (!rc) rc = sl_writer_write(w, buf, (size_t)(n * esz), err);
        if (!rc) rc = tick(p, n * esz, o->name, err);
        if (rc) return rc;
        first += n;
    }
    return 0;
}

/* ---- quantize (whole tensor, cached) ---- */

typedef struct qcache {
    const sl_tensor *src;
    sl_qparams q;
    sl_dtype qdtype;
    uint8_t *wq, *scales, *biases;
    uint64_t wq_bytes, s_bytes;
} qcache;

static void qcache_clear(qcache *c) {
    free(c->wq);
    free(c->scales);
    free(c->biases);
    memset(c, 0, sizeof *c);
}

static int quantize_tensor(sl_plan *p, const sl_out_tensor *o, qcache *c, uint8_t *buf, sl_error *err) {
    const sl_tensor *t = o->src;
    if (c->src == t && c->q.bits == o->q.bits && c->q.group_size == o->q.group_size && c->q.mode == o->q.mode &&
        c->qdtype == o->qdtype)
        return 0;
    qcache_clear(c);
    const sl_qparams *q = &o->q;
    uint64_t K = (uint64_t)t->shape[t->ndim - 1];
    uint64_t words, groups;
    int rc = sl_q_row_layout(q->mode, q->bits, q->group_size, K, &words, &groups, err);
    if (rc) {
        sl_error_prefix(err, "tensor '%s': ", t->name);
        return rc;
    }
    uint64_t rows = K ? t->numel / K : 0;
    bool affine = q->mode == SL_Q_AFFINE;
    size_t ssz = affine ? sl_dtype_size(o->qdtype) : 1, esz = sl_dtype_size(o->qdtype);
    uint64_t nwq, ns;
    if (!sl_mul_u64(rows, words * 4, &nwq) || !sl_mul_u64(rows, groups * ssz, &ns))
        return sl_errorf(err, SL_EINVAL, "tensor '%s': size overflow", t->name);
    c->wq = malloc(nwq ? nwq : 1);
    c->scales = malloc(ns ? ns : 1);
    c->biases = affine ? malloc(ns ? ns : 1) : NULL;
    if (!c->wq || !c->scales || (affine && !c->biases)) {
        qcache_clear(c);
        return sl_errorf(err, SL_ENOMEM, "tensor '%s': out of memory quantizing", t->name);
    }
    c->wq_bytes = nwq;
    c->s_bytes = ns;
    uint64_t per_rows = (K && esz) ? CHUNK_BYTES / (K * esz) : 1;
    if (per_rows == 0) per_rows = 1;
    float *ref = NULL, *approx = NULL;
    sl_q_stats stats = {0};
    uint64_t chunk_elems = per_rows * K;
    uint8_t *big = NULL;
    if (per_rows * K * esz > CHUNK_BYTES) { /* one row larger than the chunk buffer */
        big = malloc(K * esz);
        if (!big) { qcache_clear(c); return sl_errorf(err, SL_ENOMEM, "out of memory"); }
        buf = big;
    }
    if (o->report) {
        ref = malloc(chunk_elems * sizeof *ref);
        approx = malloc(chunk_elems * sizeof *approx);
        if (!ref || !approx) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    for (uint64_t r0 = 0; !rc && r0 < rows; r0 += per_rows) {
        uint64_t nr = rows - r0 > per_rows ? per_rows : rows - r0;
        size_t n = (size_t)(nr * K);
        rc = sl_tensor_read(t, r0 * K, n, o->qdtype, buf, err);
        if (rc) break;
        uint32_t *wq = (uint32_t *)(c->wq + r0 * words * 4);
        void *sc = c->scales + r0 * groups * ssz;
        void *bi = affine ? c->biases + r0 * groups * ssz : NULL;
        if (affine)
            rc = sl_q_affine_quantize(buf, o->qdtype, n, q->bits, q->group_size, o->qdtype, p->o->q.variant, wq, sc,
                                      bi, err);
        else
            rc = sl_q_fp_quantize(q->mode, buf, o->qdtype, n, NULL, wq, sc, err);
        if (!rc && ref) {
            sl_convert(o->qdtype, buf, SL_F32, ref, n);
            if (affine)
                rc = sl_q_affine_dequantize(wq, sc, bi, o->qdtype, n, q->bits, q->group_size, SL_F32, approx, err);
            else
                rc = sl_q_fp_dequantize(q->mode, wq, sc, n, NULL, SL_F32, approx, err);
            if (!rc) sl_q_error_stats(&stats, ref, approx, n);
        }
        if (!rc && sl_interrupted()) rc = sl_errorf(err, SL_EINTR, "interrupted");
    }
    free(ref);
    free(approx);
    free(big);
    sl_checkpoint_release(p->ck, t);
    if (rc) {
        sl_error_prefix(err, "tensor '%s': ", t->name);
        qcache_clear(c);
        return rc;
    }
    c->src = t;
    c->q = *q;
    c->qdtype = o->qdtype;
    if (o->report) {
        char module[512];
        snprintf(module, sizeof module, "%s", o->name);
        char *dot = strrchr(module, '.');
        if (dot && !strcmp(dot, ".weight")) *dot = 0;
        rc = sl_plan_report(p, module, "quantized", q, &stats, err);
    }
    return rc;
}

static int write_mem(sl_plan *p, const sl_out_tensor *o, sl_writer *w, const uint8_t *data, uint64_t n,
                     sl_error *err) {
    for (uint64_t off = 0; off < n;) {
        size_t k = n - off > CHUNK_BYTES ? CHUNK_BYTES : (size_t)(n - off);
        int rc = sl_writer_write(w, data + off, k, err);
        if (!rc) rc = tick(p, k, o->name, err);
        if (rc) return rc;
        off += k;
    }
    return 0;
}

/* ---- dequantize MLX (affine or fp modes) ---- */

static int produce_dequant(sl_plan *p, const sl_out_tensor *o, sl_writer *w, sl_error *err) {
    const sl_tensor *wt = o->src, *st = o->src_scales, *bt = o->src_biases;
    const sl_qparams *q = &o->q;
    uint64_t K = (uint64_t)o->shape[o->ndim - 1], words, groups;
    int rc = sl_q_row_layout(q->mode, q->bits, q->group_size, K, &words, &groups, err);
    if (rc) return rc;
    uint64_t rows = K ? wt->numel / words : 0;
    bool affine = q->mode == SL_Q_AFFINE;
    /* affine: scales/biases are cast to the output dtype first (mlx_lm casts
     * every float parameter before dequantizing), then (T)((T)(q*s)+b) */
    sl_dtype sdt = affine ? o->dtype : SL_U8;
    size_t ssz = sl_dtype_size(sdt), osz = sl_dtype_size(o->dtype);
    uint64_t per_rows = CHUNK_BYTES / (K * 4 > 1 ? K * 4 : 1);
    if (per_rows == 0) per_rows = 1;
    uint32_t *wb = malloc(per_rows * words * 4);
    uint8_t *sb = malloc(per_rows * groups * ssz), *bb = affine ? malloc(per_rows * groups * ssz) : NULL;
    uint8_t *ob = malloc(per_rows * K * (osz > 4 ? osz : 4));
    if (!wb || !sb || !ob || (affine && !bb)) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    for (uint64_t r0 = 0; !rc && r0 < rows; r0 += per_rows) {
        uint64_t nr = rows - r0 > per_rows ? per_rows : rows - r0;
        rc = sl_tensor_read(wt, r0 * words, nr * words, SL_U32, wb, err);
        if (!rc) rc = sl_tensor_read(st, r0 * groups, nr * groups, sdt, sb, err);
        if (!rc && affine) rc = sl_tensor_read(bt, r0 * groups, nr * groups, sdt, bb, err);
        if (rc) break;
        size_t n = (size_t)(nr * K);
        if (affine)
            rc = sl_q_affine_dequantize(wb, sb, bb, sdt, n, q->bits, q->group_size, o->dtype, ob, err);
        else
            rc = sl_q_fp_dequantize(q->mode, wb, sb, n, NULL, o->dtype, ob, err);
        if (!rc) rc = sl_writer_write(w, ob, n * osz, err);
        if (!rc) rc = tick(p, n * osz, o->name, err);
    }
    free(wb);
    free(sb);
    free(bb);
    free(ob);
    sl_checkpoint_release(p->ck, wt);
    if (rc) sl_error_prefix(err, "tensor '%s': ", o->name);
    return rc;
}

/* ---- GGUF blocks ---- */

static int produce_gguf_deq(sl_plan *p, const sl_out_tensor *o, sl_writer *w, sl_error *err) {
    const sl_tensor *t = o->src;
    const sl_dtype_info *di = sl_dtype_get(t->dtype);
    uint64_t per = (CHUNK_BYTES / 4) / di->block_elems * di->block_elems;
    float *f = malloc(per * 4);
    size_t osz = sl_dtype_size(o->dtype);
    uint8_t *ob = malloc(per * osz);
    int rc = f && ob ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
    for (uint64_t first = 0; !rc && first < t->numel; first += per) {
        uint64_t n = t->numel - first > per ? per : t->numel - first;
        const uint8_t *src = t->data + first / di->block_elems * di->block_bytes;
        if (t->dtype == SL_F32 || t->dtype == SL_F16 || t->dtype == SL_BF16)
            rc = sl_tensor_read(t, first, n, SL_F32, f, err);
        else
            rc = sl_q_gguf_dequantize(t->dtype, src, (size_t)n, f, err);
        if (rc) break;
        if (!sl_convert(SL_F32, f, o->dtype, ob, (size_t)n)) rc = sl_errorf(err, SL_EUNSUPPORTED, "bad dtype");
        if (!rc) rc = sl_writer_write(w, ob, (size_t)n * osz, err);
        if (!rc) rc = tick(p, n * osz, o->name, err);
    }
    free(f);
    free(ob);
    sl_checkpoint_release(p->ck, t);
    if (rc) sl_error_prefix(err, "tensor '%s': ", o->name);
    return rc;
}

/* Row r of the output comes from row perm(r) of the source: llama.cpp's
 * Q/K permutation (HF rotate-half -> interleaved pairs) inverted, row-wise. */
static uint64_t permuted_row(uint64_t r, uint64_t rows, uint32_t heads, bool inverse) {
    if (!heads) return r;
    uint64_t hd = rows / heads, half = hd / 2;
    uint64_t h = r / hd, i = r % hd;
    if (inverse) /* HF row h*hd + k*half + j comes from GGUF row h*hd + 2*j + k */
        return h * hd + 2 * (i % half) + i / half;
    /* GGUF row h*hd + 2*j + k comes from HF row h*hd + k*half + j */
    uint64_t j = i / 2, k = i % 2;
    return h * hd + k * half + j;
}

/* GGUF Q4_0/Q4_1/Q8_0 -> MLX affine; which part is o->kind.  Row-wise (rows may be un-permuted). */
static int produce_repack(sl_plan *p, const sl_out_tensor *o, sl_writer *w, sl_error *err) {
    const sl_tensor *t = o->src;
    const sl_dtype_info *di = sl_dtype_get(t->dtype);
    uint64_t K = (uint64_t)t->shape[t->ndim - 1], rows = K ? t->numel / K : 0;
    uint64_t rowb = K / 32 * di->block_bytes;
    uint32_t *wq = malloc(K + 4);  /* <= K bytes of codes (8-bit) */
    uint16_t *sc = malloc(K / 32 * 2 + 2), *bi = malloc(K / 32 * 2 + 2);
    int rc = wq && sc && bi ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
    for (uint64_t r = 0; !rc && r < rows; r++) {
        uint64_t sr = permuted_row(r, rows, o->permute_heads, o->unpermute), ovf = 0;
        int bits = 0;
        rc = sl_q_gguf_to_affine(t->dtype, t->data + sr * rowb, (size_t)K, wq, sc, bi, &bits, &ovf, err);
        if (rc) break;
        if (p->st && o->kind == SL_OUT_REPACK_B) p->st->inexact += ovf;
        const void *d = o->kind == SL_OUT_REPACK_W ? (const void *)wq : o->kind == SL_OUT_REPACK_S ? (const void *)sc : (const void *)bi;
        uint64_t nb = o->kind == SL_OUT_REPACK_W ? K * (uint64_t)bits / 8 : K / 32 * 2;
        rc = sl_writer_write(w, d, (size_t)nb, err);
        if (!rc && (r % 256 == 255 || r + 1 == rows)) rc = tick(p, nb * (r % 256 + 1), o->name, err);
    }
    free(wq);
    free(sc);
    free(bi);
    sl_checkpoint_release(p->ck, t);
    if (rc) sl_error_prefix(err, "tensor '%s': ", o->name);
    return rc;
}

/* One source row as f32: float tensors, GGUF blocks or MLX affine (dequantized). */
typedef struct row_reader {
    uint32_t *wb;
    uint8_t *sb, *bb;
} row_reader;

static int read_row_f32(const sl_out_tensor *o, uint64_t row, uint64_t K, row_reader *rr, float *f, sl_error *err) {
    const sl_tensor *t = o->src;
    if (o->src_scales) { /* MLX affine: words, scales, biases of the row */
        const sl_tensor *st = o->src_scales, *bt = o->src_biases;
        uint64_t words = K * (uint64_t)o->q.bits / 32, groups = K / (uint64_t)o->q.group_size;
        int rc = sl_tensor_read(t, row * words, words, SL_U32, rr->wb, err);
        if (!rc) rc = sl_tensor_read(st, row * groups, groups, st->dtype, rr->sb, err);
        if (!rc) rc = sl_tensor_read(bt, row * groups, groups, st->dtype, rr->bb, err);
        if (!rc)
            rc = sl_q_affine_dequantize(rr->wb, rr->sb, rr->bb, st->dtype, (size_t)K, o->q.bits, o->q.group_size, SL_F32,
                                        f, err);
        return rc;
    }
    const sl_dtype_info *di = sl_dtype_get(t->dtype);
    if (di->is_quant) {
        if (K % di->block_elems) return sl_errorf(err, SL_EINVAL, "rows of %llu elements are not whole %s blocks",
                                                   (unsigned long long)K, di->name);
        return sl_q_gguf_dequantize(t->dtype, t->data + row * (K / di->block_elems) * di->block_bytes, (size_t)K, f, err);
    }
    return sl_tensor_read(t, row * K, K, SL_F32, f, err);
}

/* f[i] += a, rounded to F16 when the source is F16: llama.cpp's converter adds
 * in the tensor's torch dtype, but widens BF16 tensors to F32 before (so BF16
 * and F32 sources add exactly in f32). */
static void add_rounded(float *f, size_t n, float a, sl_dtype t) {
    for (size_t i = 0; i < n; i++) {
        f[i] += a;
        if (t == SL_F16) {
            uint16_t h;
            sl_convert(SL_F32, &f[i], t, &h, 1);
            sl_convert(t, &h, SL_F32, &f[i], 1);
        }
    }
}

/* float, GGUF-block or MLX-quantized src -> F32/F16/BF16 or a GGUF block type,
 * one row at a time, with an optional Q/K row permutation. */
static int produce_gguf_q(sl_plan *p, const sl_out_tensor *o, sl_writer *w, sl_error *err) {
    const sl_tensor *t = o->src;
    uint64_t numel = 1;
    for (int d = 0; d < o->ndim; d++) numel *= (uint64_t)o->shape[d];
    uint64_t K = (uint64_t)o->shape[o->ndim - 1];
    if (o->ndim == 1 && o->permute_heads) K = 1; /* a q/k bias: permute its elements */
    uint64_t rows = K ? numel / K : 0;
    const sl_dtype_info *di = sl_dtype_get(o->dtype);
    size_t rowb = (size_t)(K / di->block_elems * di->block_bytes);
    bool is_float = o->dtype == SL_F32 || o->dtype == SL_F16 || o->dtype == SL_BF16;
    float *f = malloc(K * 4), *back = o->report ? malloc(K * 4) : NULL;
    uint8_t *ob = malloc(rowb ? rowb : 1);
    row_reader rr = {0};
    if (o->src_scales) {
        size_t ssz = sl_dtype_size(o->src_scales->dtype);
        rr.wb = malloc(K * 8 / 32 * 4 + 4);
        rr.sb = malloc(K * ssz + 1);
        rr.bb = malloc(K * ssz + 1);
    }
    int rc = f && ob && (!o->report || back) && (!o->src_scales || (rr.wb && rr.sb && rr.bb))
                 ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
    sl_q_stats qs = {0};
    for (uint64_t r = 0; !rc && r < rows; r++) {
        uint64_t sr = permuted_row(r, rows, o->permute_heads, o->unpermute);
        rc = read_row_f32(o, sr, K, &rr, f, err);
        if (rc) break;
        if (o->add != 0.0f) add_rounded(f, (size_t)K, o->add, t->dtype);
        if (is_float) {
            if (!sl_convert(SL_F32, f, o->dtype, ob, (size_t)K)) rc = sl_errorf(err, SL_EUNSUPPORTED, "bad dtype");
            if (!rc && back) sl_convert(o->dtype, ob, SL_F32, back, (size_t)K);
        } else {
            rc = sl_q_gguf_quantize(o->dtype, f, (size_t)K, ob, err);
            if (!rc && back) rc = sl_q_gguf_dequantize(o->dtype, ob, (size_t)K, back, err);
        }
        if (!rc && back) sl_q_error_stats(&qs, f, back, (size_t)K);
        if (!rc) rc = sl_writer_write(w, ob, rowb, err);
        if (!rc && (r % 256 == 255 || r + 1 == rows)) rc = tick(p, rowb * (r % 256 + 1), o->name, err);
    }
    if (!rc && o->report) rc = sl_plan_report_gguf(p, o, &qs, err);
    free(f);
    free(back);
    free(ob);
    free(rr.wb);
    free(rr.sb);
    free(rr.bb);
    sl_checkpoint_release(p->ck, t);
    if (rc) sl_error_prefix(err, "tensor '%s': ", o->name);
    return rc;
}

int sl_plan_report_gguf(sl_plan *p, const sl_out_tensor *o, const sl_q_stats *s, sl_error *err) {
    char status[48];
    const char *ty = sl_dtype_name(o->dtype);
    if (o->gguf_wanted != SL_DTYPE_INVALID && o->gguf_wanted != o->dtype)
        snprintf(status, sizeof status, "%s (%s: row %lld)", ty, sl_dtype_name(o->gguf_wanted),
                 (long long)o->shape[o->ndim - 1]);
    else
        snprintf(status, sizeof status, "%s", ty);
    size_t before = p->st ? p->st->n_report : 0;
    int rc = sl_plan_report(p, o->name, status, NULL, s, err);
    if (!rc && p->st && p->st->n_report > before) {
        const sl_dtype_info *d = sl_dtype_get(o->dtype);
        p->st->report[before].bpw = 8.0 * d->block_bytes / d->block_elems;
    }
    return rc;
}

/* MLX affine 4-bit -> Q4_1 (lossless when scales fit f16), row-permuted. */
static int produce_q4_1(sl_plan *p, const sl_out_tensor *o, sl_writer *w, sl_error *err) {
    const sl_tensor *wt = o->src, *st = o->src_scales, *bt = o->src_biases;
    uint64_t K = (uint64_t)o->shape[o->ndim - 1], words = K / 8, groups = K / (uint64_t)o->q.group_size;
    uint64_t rows = words ? wt->numel / words : 0;
    size_t ssz = sl_dtype_size(st->dtype), rowb = (size_t)(K / 32 * 20);
    uint32_t *wb = malloc(words * 4);
    uint8_t *sb = malloc(groups * ssz), *bb = malloc(groups * ssz), *ob = malloc(rowb ? rowb : 1);
    int rc = wb && sb && bb && ob ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
    for (uint64_t r = 0; !rc && r < rows; r++) {
        uint64_t sr = permuted_row(r, rows, o->permute_heads, o->unpermute), inexact = 0;
        rc = sl_tensor_read(wt, sr * words, words, SL_U32, wb, err);
        if (!rc) rc = sl_tensor_read(st, sr * groups, groups, st->dtype, sb, err);
        if (!rc) rc = sl_tensor_read(bt, sr * groups, groups, st->dtype, bb, err);
        if (!rc) rc = sl_q_affine_to_q4_1(wb, sb, bb, st->dtype, (size_t)K, o->q.group_size, ob, &inexact, err);
        if (!rc && p->st) p->st->inexact += inexact;
        if (!rc) rc = sl_writer_write(w, ob, rowb, err);
        if (!rc && (r % 256 == 255 || r + 1 == rows)) rc = tick(p, rowb * (r % 256 + 1), o->name, err);
    }
    free(wb);
    free(sb);
    free(bb);
    free(ob);
    sl_checkpoint_release(p->ck, wt);
    if (rc) sl_error_prefix(err, "tensor '%s': ", o->name);
    return rc;
}

static int produce(sl_plan *p, const sl_out_tensor *o, sl_writer *w, qcache *c, uint8_t *buf, sl_error *err) {
    int rc;
    switch (o->kind) {
    case SL_OUT_COPY:
        rc = produce_copy(p, o, w, buf, err);
        sl_checkpoint_release(p->ck, o->src);
        return rc;
    case SL_OUT_QWEIGHT:
    case SL_OUT_QSCALES:
    case SL_OUT_QBIASES:
        if ((rc = quantize_tensor(p, o, c, buf, err))) return rc;
        if (o->kind == SL_OUT_QWEIGHT) return write_mem(p, o, w, c->wq, c->wq_bytes, err);
        return write_mem(p, o, w, o->kind == SL_OUT_QSCALES ? c->scales : c->biases, c->s_bytes, err);
    case SL_OUT_DEQUANT: return produce_dequant(p, o, w, err);
    case SL_OUT_GGUF_DEQ: return produce_gguf_deq(p, o, w, err);
    case SL_OUT_REPACK_W:
    case SL_OUT_REPACK_S:
    case SL_OUT_REPACK_B: return produce_repack(p, o, w, err);
    case SL_OUT_GGUF_Q: return produce_gguf_q(p, o, w, err);
    case SL_OUT_Q4_1_FROM_AFFINE: return produce_q4_1(p, o, w, err);
    }
    return sl_errorf(err, SL_EINVAL, "tensor '%s': no producer", o->name);
}

int sl_plan_write_file(sl_plan *p, uint32_t shard, sl_format fmt, const char *path, const cJSON *metadata,
                       sl_error *err) {
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) n += p->t[i].shard == shard;
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    sl_tensor_spec *specs = calloc(n ? n : 1, sizeof *specs);
    uint8_t *buf = malloc(CHUNK_BYTES);
    int rc = idx && specs && buf ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; !rc && i < p->n; i++)
        if (p->t[i].shard == shard) {
            const sl_out_tensor *o = &p->t[i];
            idx[k] = i;
            specs[k].name = o->name;
            specs[k].dtype = o->dtype;
            specs[k].ndim = o->ndim;
            memcpy(specs[k].shape, o->shape, sizeof o->shape);
            k++;
        }
    sl_writer *w = NULL;
    if (!rc) rc = sl_writer_open(&w, fmt, path, specs, n, metadata, err);
    if (!rc) {
        qcache c = {0};
        const size_t *order = sl_writer_order(w);
        for (size_t j = 0; j < n && !rc; j++) rc = produce(p, &p->t[idx[order[j]]], w, &c, buf, err);
        qcache_clear(&c);
        if (rc) sl_writer_abort(w);
        else rc = sl_writer_finish(w, err);
    }
    if (!rc && p->st) {
        p->st->files_written++;
        p->st->tensors += n;
    }
    free(idx);
    free(specs);
    free(buf);
    return rc;
}
