/* torch.c — placeholder until the PyTorch reader/writer lands. */
#include "silica/checkpoint.h"
#include "../core/writer_impl.h"
int sl_torch_read(sl_checkpoint *ck, const char *path, sl_error *err) { (void)ck; return sl_errorf(err, SL_EUNSUPPORTED, "%s: torch reader missing", path); }
static int begin(sl_writer *w, sl_error *err) { return sl_errorf(err, SL_EUNSUPPORTED, "%s: torch writer missing", w->out.path); }
static const sl_writer_ops ops = {.begin = begin};
const sl_writer_ops *sl_torch_writer_ops(void) { return &ops; }
