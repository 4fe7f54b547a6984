/*
 * pytorch_example.c — part 1 example: open a PyTorch checkpoint (a
 * torch.save .bin/.pt/.pth file, or a directory with pytorch_model.bin and
 * its index) with libsilica, list its tensors and print the first values of
 * each floating-point tensor converted to f32.
 *
 *     usage: pytorch_example CHECKPOINT [N]      (N values per tensor, default 4)
 *
 * Output, one line per tensor:
 *     <name> <dtype> [<d0>,<d1>,...] = v0 v1 ... vN-1     (float dtypes)
 *     <name> <dtype> [<d0>,<d1>,...]                       (others)
 * Values are printed with %.9g, which round-trips every f32 exactly.
 *
 * Invariants: the file is mmap'd and the pickle is read by silica's allowlist
 * unpickler, which never calls anything; sl_tensor_read() converts only the
 * few elements asked for (honouring strides of views and byte order).  Any
 * failure prints libsilica's one-line message and exits 2.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "silica/silica.h"

#define MAX_VALUES 64

static int print_tensor(const sl_tensor *t, uint64_t want, sl_error *err) {
    printf("%s %s [", t->name, sl_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) printf("%s%" PRId64, d ? "," : "", t->shape[d]);
    printf("]");
    const sl_dtype_info *info = sl_dtype_get(t->dtype);
    if (info && info->is_float && sl_convert_supported(t->dtype, SL_F32)) {
        float v[MAX_VALUES];
        uint64_t n = t->numel < want ? t->numel : want;
        int rc = sl_tensor_read(t, 0, n, SL_F32, v, err);
        if (rc != SL_OK) {
            printf("\n");
            return rc;
        }
        printf(" =");
        for (uint64_t i = 0; i < n; i++) printf(" %.9g", (double)v[i]);
    }
    printf("\n");
    return SL_OK;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CHECKPOINT [N]\n", argv[0]);
        return 2;
    }
    uint64_t want = 4;
    if (argc == 3) {
        char *end;
        unsigned long long n = strtoull(argv[2], &end, 10);
        if (*end || n > MAX_VALUES) {
            fprintf(stderr, "pytorch_example: error: N must be an integer 0..%d, got '%s'\n", MAX_VALUES, argv[2]);
            return 2;
        }
        want = n;
    }
    sl_error err = {0};
    sl_checkpoint *ck = NULL;
    if (sl_checkpoint_open(argv[1], &ck, &err) != SL_OK) {
        fprintf(stderr, "pytorch_example: error: %s\n", err.msg);
        return 2;
    }
    int rc = SL_OK;
    for (size_t i = 0; i < ck->n_tensors && rc == SL_OK; i++) rc = print_tensor(&ck->tensors[i], want, &err);
    if (rc != SL_OK) fprintf(stderr, "pytorch_example: error: %s\n", err.msg);
    sl_checkpoint_close(ck);
    return rc == SL_OK ? 0 : 2;
}
