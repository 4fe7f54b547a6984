/*
 * test_pickle.c — the allowlist unpickler on hand-assembled pickles (accepted
 * shapes and each refusal), the opcode scanner, and the torch writer round
 * trip (write with sl_writer, read back with sl_checkpoint_open, same bytes).
 *
 * With SILICA_TORCH_SAMPLES=DIR set it also writes sample files plus
 * manifest.json into DIR, for tools/torch_check.py to load with real torch.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "formats/pickle.h"
#include "silica/silica.h"
#include "silica/torch.h"

/* ---- unpickler ---- */

static int load(const char *bytes, size_t n, sl_error *err) {
    sl_pk_doc *doc;
    sl_pkv *root;
    size_t used;
    int rc = sl_pk_load((const uint8_t *)bytes, n, "t.pkl", &doc, &root, &used, err);
    sl_pk_free(doc);
    return rc;
}
#define LOAD(lit, err) load(lit, sizeof(lit) - 1, err)

static void test_accepts_containers(void **st) {
    (void)st;
    sl_error err = {0};
    /* {'a': [1, 2.0, True, None, 'x'], 'b': (300, -1, 2**40)} */
    static const char p[] = "\x80\x02}q\x00(X\x01\x00\x00\x00" "a]q\x01(K\x01G@\x00\x00\x00\x00\x00\x00\x00\x88NX\x01\x00\x00\x00xe"
                            "X\x01\x00\x00\x00" "bM,\x01J\xff\xff\xff\xff\x8a\x06\x00\x00\x00\x00\x00\x01\x87u.";
    sl_pk_doc *doc;
    sl_pkv *root;
    size_t used;
    if (sl_pk_load((const uint8_t *)p, sizeof p - 1, "t", &doc, &root, &used, &err)) fail_msg("%s", err.msg);
    assert_int_equal(used, sizeof p - 1);
    assert_int_equal(root->kind, SL_PK_DICT);
    assert_int_equal(root->u.seq.n, 4);
    sl_pkv *l = root->u.seq.v[1];
    assert_int_equal(l->kind, SL_PK_LIST);
    assert_int_equal(l->u.seq.n, 5);
    assert_true(l->u.seq.v[1]->u.f == 2.0);
    sl_pkv *t = root->u.seq.v[3];
    assert_int_equal(t->u.seq.v[0]->u.i, 300);
    assert_int_equal(t->u.seq.v[1]->u.i, -1);
    assert_int_equal(t->u.seq.v[2]->u.i, 1ll << 40);
    sl_pk_free(doc);
}

static void expect_fail(const char *p, size_t n, int code, const char *needle) {
    sl_error err = {0};
    assert_int_equal(load(p, n, &err), code);
    if (!strstr(err.msg, needle)) fail_msg("'%s' not in '%s'", needle, err.msg);
    assert_non_null(strstr(err.msg, "t.pkl"));
}
#define FAILS(lit, code, needle) expect_fail(lit, sizeof(lit) - 1, code, needle)

static void test_refusals(void **st) {
    (void)st;
    FAILS("\x80\x02\x63posix\nsystem\nX\x02\x00\x00\x00lsR.", SL_EUNSAFE, "global 'posix.system' is not allowed");
    FAILS("\x80\x02\x63" "builtins\neval\n.", SL_EUNSAFE, "builtins.eval");
    FAILS("\x80\x04\x8c\x05posix\x8c\x06system\x93.", SL_EUNSAFE, "SHORT_BINUNICODE");
    FAILS("\x80\x02R.", SL_EINVAL, "stack underflow");
    FAILS("\x80\x02h\x05.", SL_EINVAL, "memo index 5 was never set");
    FAILS("\x80\x02]K\x01", SL_EINVAL, "without STOP");
    FAILS("\x80\x02(K\x01.", SL_EINVAL, "MARK");
    FAILS("K\x01.", SL_EINVAL, "PROTO");
    FAILS("\x80\x02X\xff\x00\x00\x00ab.", SL_EINVAL, "exceeds");
    FAILS("\x80\x02K\x01K\x02K\x03s.", SL_EINVAL, "not a dict");
    FAILS("\x80\x02}K\x01" "a.", SL_EINVAL, "not a list");
    FAILS("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.", SL_EUNSUPPORTED, "64 bits");
    FAILS("\x80\x02\x63" "collections\nOrderedDict\nK\x01\x85R.", SL_EINVAL, "without arguments");
    FAILS("\x80\x02\x63torch\nFloatStorage\n)R.", SL_EUNSAFE, "calling 'torch.FloatStorage'");
    FAILS("\x80\x02(X\x07\x00\x00\x00storage\x63torch\nFloatStorage\nX\x04\x00\x00\x00../xX\x03\x00\x00\x00" "cpuK\x01tQ.",
          SL_EINVAL, "character outside");
    FAILS("\x80\x02K\x01Q.", SL_EINVAL, "persistent id");
    FAILS("\x80\x02}}b.", SL_EINVAL, "BUILD");
    FAILS("\x80\x02\xff.", SL_EINVAL, "unknown opcode 0xff");
    FAILS("\x80\x02\x63os\nsystem", SL_EINVAL, "not terminated");
}

static int count_cb(void *ud, const char *m, const char *n, const char *via, size_t off) {
    (void)off;
    char *out = ud;
    snprintf(out + strlen(out), 256 - strlen(out), "%s.%s/%s;", m, n, via);
    return 0;
}

static void test_scan(void **st) {
    (void)st;
    sl_error err = {0};
    char seen[256] = "";
    static const char p[] = "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93"
                            "X\x01\x00\x00\x00x\x85R\x63" "collections\nOrderedDict\n0.";
    size_t used;
    assert_int_equal(sl_pk_scan((const uint8_t *)p, sizeof p - 1, "t", count_cb, seen, &used, &err), 0);
    assert_string_equal(seen, "posix.system/STACK_GLOBAL;collections.OrderedDict/GLOBAL;");
    assert_true(sl_pk_global_allowed("torch._utils", "_rebuild_tensor_v2"));
    assert_false(sl_pk_global_allowed("torch", "load"));
}

/* ---- writer round trip ---- */

static uint8_t pattern(size_t seed, size_t i, sl_dtype d) {
    return d == SL_BOOL ? (uint8_t)((seed + i) & 1) : (uint8_t)(seed * 31 + i * 7 + 3);
}

typedef struct sample { const char *name; sl_dtype dtype; int ndim; int64_t shape[4]; } sample;

static const sample k_samples[] = {
    {"f64", SL_F64, 2, {2, 3}}, {"f32", SL_F32, 1, {5}}, {"f16", SL_F16, 2, {3, 2}}, {"bf16", SL_BF16, 1, {4}},
    {"i64", SL_I64, 1, {3}}, {"i32", SL_I32, 2, {2, 2}}, {"i16", SL_I16, 1, {3}}, {"i8", SL_I8, 1, {3}},
    {"u8", SL_U8, 3, {2, 1, 2}}, {"bool", SL_BOOL, 1, {4}}, {"c64", SL_C64, 1, {2}}, {"c128", SL_C128, 1, {2}},
    {"u16", SL_U16, 1, {3}}, {"u32", SL_U32, 1, {3}}, {"u64", SL_U64, 1, {3}}, {"f8e4m3", SL_F8_E4M3, 1, {4}},
    {"f8e5m2", SL_F8_E5M2, 1, {4}}, {"f8e8m0", SL_F8_E8M0, 1, {4}}, {"f8e4m3fnuz", SL_F8_E4M3FNUZ, 1, {2}},
    {"f8e5m2fnuz", SL_F8_E5M2FNUZ, 1, {2}}, {"f4", SL_F4, 2, {2, 4}}, {"scalar", SL_F32, 0, {0}},
    {"empty", SL_F32, 2, {0, 3}}, {"layer.0.weight", SL_BF16, 2, {2, 2}},
};
#define N_SAMPLES (sizeof k_samples / sizeof k_samples[0])

static void write_file(const char *path, const sl_tensor_spec *specs, size_t n) {
    sl_error err = {0};
    sl_writer *w;
    if (sl_writer_open(&w, SL_FMT_TORCH, path, specs, n, NULL, &err)) fail_msg("%s", err.msg);
    const size_t *order = sl_writer_order(w);
    for (size_t k = 0; k < n; k++) {
        size_t s = order[k];
        uint64_t numel = 1, nb;
        for (int d = 0; d < specs[s].ndim; d++) numel *= (uint64_t)specs[s].shape[d];
        assert_true(sl_dtype_nbytes(specs[s].dtype, numel, &nb));
        for (uint64_t i = 0; i < nb; i++) {   /* byte by byte: exercises streaming */
            uint8_t b = pattern(s, i, specs[s].dtype);
            if (sl_writer_write(w, &b, 1, &err)) fail_msg("%s", err.msg);
        }
    }
    if (sl_writer_finish(w, &err)) fail_msg("%s", err.msg);
}

static void check_file(const char *path, const sl_tensor_spec *specs, size_t n) {
    sl_error err = {0};
    sl_checkpoint *ck;
    if (sl_checkpoint_open(path, &ck, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ck->n_tensors, n);
    for (size_t s = 0; s < n; s++) {
        const sl_tensor *t = sl_checkpoint_find(ck, specs[s].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, specs[s].dtype);
        assert_int_equal(t->ndim, specs[s].ndim);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], specs[s].shape[d]);
        assert_true(t->contiguous);
        for (uint64_t i = 0; i < t->nbytes; i++) assert_int_equal(t->data[i], pattern(s, i, t->dtype));
    }
    sl_checkpoint_close(ck);
}

static void specs_of(sl_tensor_spec *specs) {
    for (size_t i = 0; i < N_SAMPLES; i++) {
        specs[i] = (sl_tensor_spec){.name = k_samples[i].name, .dtype = k_samples[i].dtype, .ndim = k_samples[i].ndim};
        memcpy(specs[i].shape, k_samples[i].shape, sizeof k_samples[i].shape);
    }
}

static void test_writer_roundtrip(void **st) {
    (void)st;
    char dir[] = "/tmp/sl_pickle_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/all.pt", dir);
    sl_tensor_spec specs[N_SAMPLES];
    specs_of(specs);
    write_file(path, specs, N_SAMPLES);
    check_file(path, specs, N_SAMPLES);
    /* scan: only allowed globals */
    sl_error err = {0};
    char seen[256] = "";
    (void)seen;
    unlink(path);
    /* unsupported dtype refused before anything is written */
    sl_tensor_spec bad = {.name = "q", .dtype = SL_Q4_0, .ndim = 1, .shape = {32}};
    sl_writer *w;
    assert_int_equal(sl_writer_open(&w, SL_FMT_TORCH, path, &bad, 1, NULL, &err), SL_EUNSUPPORTED);
    assert_false(sl_path_exists(path));
    rmdir(dir);
}

/* Many tensors: SETITEMS batches of 1000, BININT2 numels. */
static void test_writer_many(void **st) {
    (void)st;
    enum { N = 1203 };
    char dir[] = "/tmp/sl_pickle_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/many.bin", dir);
    sl_tensor_spec *specs = calloc(N, sizeof *specs);
    char (*names)[16] = calloc(N, 16);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], 16, "t%zu", i);
        specs[i] = (sl_tensor_spec){.name = names[i], .dtype = SL_U8, .ndim = 1, .shape = {(int64_t)(i % 3)}};
    }
    specs[7].shape[0] = 70000;
    write_file(path, specs, N);
    check_file(path, specs, N);
    unlink(path);
    rmdir(dir);
    free(specs);
    free(names);
}

/* SILICA_TORCH_SAMPLES=DIR: files for tools/torch_check.py */
static void dump_samples(const char *dir) {
    mkdir(dir, 0755);
    sl_tensor_spec specs[N_SAMPLES];
    specs_of(specs);
    char path[512];
    snprintf(path, sizeof path, "%s/all_dtypes.pt", dir);
    write_file(path, specs, N_SAMPLES);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"all_dtypes.pt\": [");
    for (size_t i = 0; i < N_SAMPLES; i++) {
        fprintf(f, "%s{\"name\": \"%s\", \"dtype\": \"%s\", \"seed\": %zu, \"shape\": [", i ? ", " : "", specs[i].name,
                sl_dtype_name(specs[i].dtype), i);
        for (int d = 0; d < specs[i].ndim; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long)specs[i].shape[d]);
        fprintf(f, "]}");
    }
    fprintf(f, "], \"many.pt\": [");
    enum { M = 1003 };
    sl_tensor_spec *many = calloc(M, sizeof *many);
    char (*names)[16] = calloc(M, 16);
    for (size_t i = 0; i < M; i++) {
        snprintf(names[i], 16, "t%zu", i);
        many[i] = (sl_tensor_spec){.name = names[i], .dtype = SL_U8, .ndim = 1, .shape = {(int64_t)(i % 3)}};
        if (i == 5) many[i].shape[0] = 70000;
        fprintf(f, "%s{\"name\": \"%s\", \"dtype\": \"U8\", \"seed\": %zu, \"shape\": [%lld]}", i ? ", " : "",
                names[i], i, (long long)many[i].shape[0]);
    }
    fprintf(f, "]}\n");
    fclose(f);
    snprintf(path, sizeof path, "%s/many.pt", dir);
    write_file(path, many, M);
    free(many);
    free(names);
}

int main(void) {
    const char *samples = getenv("SILICA_TORCH_SAMPLES");
    if (samples && *samples) {
        dump_samples(samples);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_containers),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
