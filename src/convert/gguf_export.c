/*
 * gguf_export.c — model directory -> llama.cpp GGUF (placeholder until the
 * exporter lands).
 */
#include "convert_impl.h"

int sl_convert_to_gguf(const char *src, const char *dst, const sl_convert_opts *o, sl_convert_stats *st,
                       sl_error *err) {
    (void)dst; (void)o; (void)st;
    return sl_errorf(err, SL_EUNSUPPORTED, "%s: GGUF export of model directories is not implemented yet", src);
}
