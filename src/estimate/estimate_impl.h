/*
 * estimate_impl.h — internals shared by the estimator's modules (model.c:
 * what a model is; load.c: finding it; estimate.c: sizes and verdicts;
 * recommend.c: what would make it fit).
 */
#ifndef SILICA_ESTIMATE_IMPL_H
#define SILICA_ESTIMATE_IMPL_H

#include "silica/memory.h"

/* Whether a tensor name is the token embedding (HF, GGUF and GPT-2 names). */
bool fit_is_embedding(const char *name);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void fit_note(sl_fit_model *m, const char *fmt, ...);

struct sl_checkpoint;
/* A model from an open checkpoint's tensor headers (+ its config.json or GGUF metadata). */
int fit_model_from_checkpoint(struct sl_checkpoint *ck, const char *name, sl_fit_model **out, sl_error *err);

/* Stored bytes of w after quantizing with r as mlx_lm.convert does: a
 * Linear/Embedding matrix whose columns divide the group becomes
 * rows*cols*bits/8 packed bytes + rows*(cols/group) scales and biases of
 * float_bytes each; anything else stays float (float_bytes per element). */
int fit_weight_bytes(const sl_fit_weight *w, const sl_fit_recipe *r, uint32_t float_bytes, uint64_t *out,
                     sl_error *err);

/* e's total with the weights replaced by w stored bytes (a quantization
 * recipe): the resident share of the weights is kept (embedding rows). */
uint64_t fit_total_with_weights(const sl_fit_estimate *e, uint64_t w);

/* Engine constants the compute-buffer estimate assumes (src/runtime/session.c). */
#define SL_FIT_BATCH 64
#define SL_FIT_THREADS 8
#define SL_FIT_BASE_OVERHEAD (12ull * SL_MIB)   /* silica run, 4-bit 5M-param model: 13.7 MiB peak */

#endif
