/*
 * gguf_impl.h — what gguf.c (reader, typed API) and gguf_write.c (writer)
 * share; internal to libsilica.
 */
#ifndef SILICA_GGUF_IMPL_H
#define SILICA_GGUF_IMPL_H

#include "silica/gguf.h"

/* Encoded size of a fixed-size GGUF scalar type; 0 for string and array. */
uint32_t sl_gguf__scalar_size(sl_gguf_type t);

#endif
