/*
 * writers.c — sl_writer_open: the format's writer ops, handed to the generic
 * streaming driver (core/writer.c).  The one place a format is chosen for
 * writing, as open.c is for reading.
 */
#include "formats/formats_impl.h"

int sl_writer_open(sl_writer **out, sl_format fmt, const char *path, const sl_tensor_spec *specs, size_t n,
                   const cJSON *metadata, sl_error *err) {
    *out = NULL;
    const sl_writer_ops *ops = NULL;
    switch (fmt) {
    case SL_FMT_SAFETENSORS: ops = sl_safetensors_writer_ops(); break;
    case SL_FMT_TORCH: ops = sl_torch_writer_ops(); break;
    case SL_FMT_NPZ: ops = sl_npz_writer_ops(); break;
    case SL_FMT_NPY: ops = sl_npy_writer_ops(); break;
    case SL_FMT_GGUF: ops = sl_gguf_writer_ops(); break;
    default: return sl_errorf(err, SL_EUNSUPPORTED, "%s: cannot write format '%s'", path, sl_format_name(fmt));
    }
    return sl_writer_open_ops(out, fmt, ops, path, specs, n, metadata, err);
}
