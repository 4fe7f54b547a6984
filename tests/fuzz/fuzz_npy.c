/*
 * fuzz_npy.c — libFuzzer target for the NumPy readers: the first input byte
 * picks .npy (even) or .npz (odd), the rest is the file.  Every accepted
 * tensor is read back in full (up to 64 KiB) through sl_tensor_read, which
 * walks Fortran strides and byte-swaps big-endian data, so a bad view or
 * stride shows up under ASan/UBSan.
 */
#include "fuzz_common.h"   /* first: it defines _GNU_SOURCE for memfd_create */

#include <stdlib.h>
#include <string.h>

#include "silica/silica.h"
#include "formats/formats_impl.h"   /* the readers and the checkpoint builder */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool npz = data[0] & 1;
    char path[64];
    int fd = fuzz_memfile(data + 1, size - 1, path, sizeof path);
    if (fd < 0) return 0;
    sl_error err;
    sl_checkpoint *ck = sl_checkpoint_new(npz ? SL_FMT_NPZ : SL_FMT_NPY, path);
    int rc = !ck ? 1 : npz ? sl_npz_read(ck, path, &err) : sl_npy_read(ck, path, &err);
    if (rc == 0) {
        for (size_t i = 0; i < ck->n_tensors; i++) {
            const sl_tensor *t = &ck->tensors[i];
            size_t esz = sl_dtype_size(t->dtype);
            if (!esz || t->nbytes > 65536) continue;
            void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
            (void)sl_tensor_read(t, 0, t->numel, t->dtype, buf, &err);
            free(buf);
        }
    }
    sl_checkpoint_close(ck);
    close(fd);
    return 0;
}
