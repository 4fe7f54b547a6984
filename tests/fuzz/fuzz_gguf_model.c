/*
 * fuzz_gguf_model.c — libFuzzer target for GGUF models: each input is opened
 * with sl_model_open, which turns the GGUF metadata of any supported
 * architecture (llama, qwen2/3, gemma 1-3, phi3: head counts, rope keys,
 * sliding-window pattern, rope factor tensors) into a config and binds every
 * weight as a view; a model that opens is closed again.  The estimator's
 * reading of the same bytes (sl_fit_model_load: the same architecture table
 * mapping, or the plain keys for unknown families) runs too.  Any
 * out-of-bounds read in the metadata mapping or the binding shows up under
 * ASan/UBSan.
 */
#include "fuzz_common.h"   /* first: it defines _GNU_SOURCE for memfd_create */

#include "silica/silica.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    sl_error err;
    sl_model *m = NULL;
    if (sl_model_open(path, &m, &err) == 0) {
        const sl_model_config *c = sl_model_get_config(m);
        volatile int x = c->n_layers + c->rotary_dim;
        (void)x;
        sl_model_close(m);
    }
    sl_fit_model *f = NULL;
    if (sl_fit_model_load(path, &f, &err) == 0) sl_fit_model_free(f);
    close(fd);
    return 0;
}
