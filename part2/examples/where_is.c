/* where_is.c — part 2: where a tensor's bytes live.  For each tensor of a checkpoint
 * (any format, file or model directory) prints its file, the byte range of its data
 * inside that file, dtype, shape and the first bytes in hex — the numbers part 2's
 * layouts predict (safetensors: 8 + header length + data_offsets[0]; GGUF: data
 * offset + tensor offset; torch zip: the data/KEY record's payload).
 *   where_is PATH [NAME]      (NAME: only that tensor)
 * Invariants: reads only the headers and the bytes it prints (mmap views); bad input
 * is one line on stderr and exit 2. */
#include <stdio.h>
#include <string.h>
#include "silica/silica.h"

static void show(const sl_checkpoint *ck, const sl_tensor *t) {
    const char *file = ck->files[t->file];
    const char *base = strrchr(file, '/');
    printf("%s %s [", t->name, sl_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
    printf("] %s bytes %llu..%llu", base ? base + 1 : file, (unsigned long long)t->offset,
           (unsigned long long)(t->offset + t->nbytes));
    if (t->contiguous) {
        printf(" :");
        for (uint64_t i = 0; i < t->nbytes && i < 8; i++) printf(" %02x", t->data[i]);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    sl_error err = {0};
    sl_checkpoint *ck;
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: where_is PATH [NAME]\n");
        return 2;
    }
    if (sl_checkpoint_open(argv[1], &ck, &err)) {
        fprintf(stderr, "where_is: error: %s\n", err.msg);
        return 2;
    }
    printf("format %s, %zu file(s), %zu tensors\n", sl_format_name(ck->format), ck->n_files, ck->n_tensors);
    int rc = 0;
    if (argc == 3) {
        const sl_tensor *t = sl_checkpoint_find(ck, argv[2]);
        if (t) show(ck, t);
        else {
            fprintf(stderr, "where_is: error: %s: no tensor named '%s'\n", argv[1], argv[2]);
            rc = 2;
        }
    } else {
        for (size_t i = 0; i < ck->n_tensors; i++) show(ck, &ck->tensors[i]);
    }
    sl_checkpoint_close(ck);
    return rc;
}
