/* npy.c — placeholder until the NumPy reader/writer lands. */
#include "silica/checkpoint.h"
#include "../core/writer_impl.h"
int sl_npy_read(sl_checkpoint *ck, const char *path, sl_error *err) { (void)ck; return sl_errorf(err, SL_EUNSUPPORTED, "%s: npy reader missing", path); }
int sl_npz_read(sl_checkpoint *ck, const char *path, sl_error *err) { (void)ck; return sl_errorf(err, SL_EUNSUPPORTED, "%s: npz reader missing", path); }
static int begin(sl_writer *w, sl_error *err) { return sl_errorf(err, SL_EUNSUPPORTED, "%s: npy writer missing", w->out.path); }
static const sl_writer_ops ops = {.begin = begin};
const sl_writer_ops *sl_npy_writer_ops(void) { return &ops; }
const sl_writer_ops *sl_npz_writer_ops(void) { return &ops; }
