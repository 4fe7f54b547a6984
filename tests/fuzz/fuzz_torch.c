/*
 * fuzz_torch.c — libFuzzer target for the PyTorch reader (zip and legacy
 * containers, data.pkl, storages, views) and sl_torch_scan(): each input is
 * a file (memfd); reading it must succeed or fail cleanly, never crash.
 */
#include "fuzz_common.h"

#include "silica/checkpoint.h"
#include "silica/torch.h"
#include "formats/formats_impl.h"   /* the readers and the checkpoint builder */

static int on_import(void *ud, const sl_pickle_import *imp) {
    (void)ud; (void)imp;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    sl_error err = {0};
    sl_checkpoint *ck = sl_checkpoint_new(SL_FMT_TORCH, path);
    if (ck) {
        if (sl_torch_read(ck, path, &err) == 0) {
            /* touch every element through the strided reader */
            for (size_t i = 0; i < ck->n_tensors; i++) {
                const sl_tensor *t = &ck->tensors[i];
                if (t->numel && t->numel < 4096 && sl_convert_supported(t->dtype, SL_F32)) {
                    static float buf[4096];
                    (void)sl_tensor_read(t, 0, t->numel, SL_F32, buf, &err);
                }
            }
        }
        sl_checkpoint_close(ck);
    }
    (void)sl_torch_scan(path, on_import, NULL, &err);
    close(fd);
    return 0;
}
