/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors reader: each
 * input is read with sl_safetensors_read (via a memfd path); every accepted
 * tensor's first and last bytes are touched and a few elements decoded, so an
 * out-of-bounds view shows up under ASan/UBSan.
 */
#include "fuzz_common.h"   /* first: it defines _GNU_SOURCE for memfd_create */

#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"
#include "formats/formats_impl.h"   /* the readers and the checkpoint builder */

static volatile uint8_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    sl_error err;
    sl_checkpoint *ck = sl_checkpoint_new(SL_FMT_SAFETENSORS, path);
    if (ck && sl_safetensors_read(ck, path, &err) == 0) {
        for (size_t i = 0; i < ck->n_tensors; i++) {
            const sl_tensor *t = &ck->tensors[i];
            if (t->nbytes) g_sink ^= t->data[0] ^ t->data[t->nbytes - 1];
            double buf[4];
            uint64_t n = t->numel < 4 ? t->numel : 4;
            if (sl_dtype_size(t->dtype) && sl_dtype_size(t->dtype) <= sizeof buf / 4 * 2)
                (void)sl_tensor_read(t, t->numel - n, n, t->dtype, buf, &err);
        }
    }
    sl_checkpoint_close(ck);
    close(fd);
    return 0;
}
