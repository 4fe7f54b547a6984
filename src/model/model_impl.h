/*
 * model_impl.h — internals of src/model: binding quantized weights
 * (model_q.c).  What an open model holds, for the engines too, is
 * model/weights.h.
 */
#ifndef SILICA_MODEL_IMPL_H
#define SILICA_MODEL_IMPL_H

#include "model/weights.h"

/* model_q.c: quantized weights (MLX uint32 codes + scales [+ biases]; GGUF
 * blocks) bound as views after checking them against the config. */
int sl_model_bind_mlx(sl_model *m, const sl_tensor *t, int64_t rows, int64_t cols, const char *why, sl_weight *w,
                      sl_error *err);
int sl_model_bind_gguf(sl_model *m, const sl_tensor *t, int64_t rows, int64_t cols, const char *why, sl_weight *w,
                       sl_error *err);

#endif
