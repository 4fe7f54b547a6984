/*
 * test_gguf.c — the typed GGUF API (silica/gguf.h) and the writer in C:
 * ggml type table vs ggml's block sizes, a writer -> parser round trip of
 * every value type with the getters' acceptance rules, and every truncated
 * prefix of a valid file failing cleanly (never crashing, always a message).
 * Interop with the real peer (gguf-py) is in tests/py/test_gguf.py.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "silica/silica.h"

/* ggml's (type id, elements per block, bytes per block), from ggml.c type_traits */
static const struct { uint32_t id; uint32_t be, bb; } k_ggml_blocks[] = {
    {0, 1, 4}, {1, 1, 2}, {2, 32, 18}, {3, 32, 20}, {6, 32, 22}, {7, 32, 24}, {8, 32, 34}, {9, 32, 36},
    {10, 256, 84}, {11, 256, 110}, {12, 256, 144}, {13, 256, 176}, {14, 256, 210}, {15, 256, 292},
    {16, 256, 66}, {17, 256, 74}, {18, 256, 98}, {19, 256, 50}, {20, 32, 18}, {21, 256, 110}, {22, 256, 82},
    {23, 256, 136}, {24, 1, 1}, {25, 1, 2}, {26, 1, 4}, {27, 1, 8}, {28, 1, 8}, {29, 256, 56}, {30, 1, 2},
    {34, 256, 54}, {35, 256, 66}, {39, 32, 17},
};

static void test_ggml_type_table(void **st) {
    (void)st;
    for (size_t i = 0; i < sizeof k_ggml_blocks / sizeof k_ggml_blocks[0]; i++) {
        sl_dtype d = sl_gguf_dtype_from_ggml(k_ggml_blocks[i].id);
        const sl_dtype_info *in = sl_dtype_get(d);
        assert_non_null(in);
        assert_int_equal(in->block_elems, k_ggml_blocks[i].be);
        assert_int_equal(in->block_bytes, k_ggml_blocks[i].bb);
        assert_int_equal(sl_gguf_ggml_from_dtype(d), (int)k_ggml_blocks[i].id);
    }
    for (uint32_t id = 31; id <= 33; id++) assert_int_equal(sl_gguf_dtype_from_ggml(id), SL_DTYPE_INVALID);
    assert_int_equal(sl_gguf_dtype_from_ggml(1000), SL_DTYPE_INVALID);
    assert_null(sl_gguf_ggml_type_name(1000));
    assert_int_equal(sl_gguf_ggml_from_dtype(SL_U8), -1);
    assert_int_equal(sl_gguf_ggml_from_dtype(SL_F8_E4M3), -1);
    for (int t = 0; t < SL_GGUF_TYPE_COUNT; t++) assert_int_equal(sl_gguf_type_from_name(sl_gguf_type_name(t)), t);
}

static const char *k_meta =
    "{\"general.architecture\":\"llama\","
    "\"u8\":{\"type\":\"uint8\",\"value\":7},"
    "\"i8\":{\"type\":\"int8\",\"value\":-3},"
    "\"u32\":{\"type\":\"uint32\",\"value\":4000000000},"
    "\"i64\":{\"type\":\"int64\",\"value\":\"-9223372036854775808\"},"
    "\"u64\":{\"type\":\"uint64\",\"value\":\"18446744073709551615\"},"
    "\"f32\":0.5,\"f64\":{\"type\":\"float64\",\"value\":0.1},\"b\":true,\"s\":\"hi\","
    "\"toks\":[\"a\",\"bcd\",\"\"],"
    "\"nest\":[[1,2],[],[3]],"
    "\"general.alignment\":128}";

static void test_round_trip_and_getters(void **st) {
    (void)st;
    char path[] = "/tmp/sl_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    cJSON *md = cJSON_Parse(k_meta);
    assert_non_null(md);
    sl_tensor_spec spec[2] = {{.name = "w", .dtype = SL_Q4_K, .ndim = 2, .shape = {3, 512}},
                              {.name = "b", .dtype = SL_F32, .ndim = 1, .shape = {5}}};
    sl_error err = {0};
    sl_writer *w;
    assert_int_equal(sl_writer_open(&w, SL_FMT_GGUF, path, spec, 2, md, &err), 0);
    uint8_t blk[3 * 2 * 144];
    for (size_t i = 0; i < sizeof blk; i++) blk[i] = (uint8_t)(i * 7);
    float b[5] = {1, 2, 3, 4, 5};
    assert_int_equal(sl_writer_write(w, blk, sizeof blk, &err), 0);
    assert_int_equal(sl_writer_write(w, b, sizeof b, &err), 0);
    assert_int_equal(sl_writer_finish(w, &err), 0);

    sl_gguf *g;
    assert_int_equal(sl_gguf_open(path, &g, &err), 0);
    assert_int_equal(sl_gguf_version(g), 3);
    assert_int_equal(sl_gguf_alignment(g), 128);
    assert_int_equal(sl_gguf_data_offset(g) % 128, 0);
    assert_int_equal(sl_gguf_n_kv(g), 13);
    assert_string_equal(sl_gguf_key(g, 1), "u8");

    uint32_t u32; int32_t i32; int64_t i64; uint64_t u64; float f; double d; bool bo; const char *s; size_t len;
    assert_int_equal(sl_gguf_get_u32(g, "u8", &u32, &err), 0);
    assert_int_equal(u32, 7);
    assert_int_equal(sl_gguf_get_u32(g, "u32", &u32, &err), 0);
    assert_true(u32 == 4000000000u);
    assert_int_equal(sl_gguf_get_i32(g, "u32", &i32, &err), SL_EINVAL);   /* does not fit */
    assert_non_null(strstr(err.msg, "'u32'"));
    assert_int_equal(sl_gguf_get_u32(g, "i8", &u32, &err), SL_EINVAL);    /* negative */
    assert_int_equal(sl_gguf_get_i32(g, "i8", &i32, &err), 0);
    assert_int_equal(i32, -3);
    assert_int_equal(sl_gguf_get_i64(g, "i64", &i64, &err), 0);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(sl_gguf_get_u64(g, "u64", &u64, &err), 0);
    assert_true(u64 == UINT64_MAX);
    assert_int_equal(sl_gguf_get_i64(g, "u64", &i64, &err), SL_EINVAL);
    assert_int_equal(sl_gguf_get_f32(g, "f32", &f, &err), 0);
    assert_true(f == 0.5f);
    assert_int_equal(sl_gguf_get_f64(g, "f64", &d, &err), 0);
    assert_true(d == 0.1);
    assert_int_equal(sl_gguf_get_bool(g, "b", &bo, &err), 0);
    assert_true(bo);
    assert_int_equal(sl_gguf_get_str(g, "s", &s, &len, &err), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(s, "hi", 2);
    assert_int_equal(sl_gguf_get_str(g, "missing", &s, &len, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "'missing'"));
    assert_int_equal(sl_gguf_get_str(g, "u8", &s, &len, &err), SL_EINVAL);

    sl_gguf_value arr, e;
    assert_int_equal(sl_gguf_get_array(g, "toks", &arr, &err), 0);
    assert_int_equal(arr.elem_type, SL_GGUF_STRING);
    assert_int_equal(arr.len, 3);
    assert_int_equal(sl_gguf_array_get(&arr, 1, &e), 0);
    assert_int_equal(e.len, 3);
    assert_memory_equal(e.data, "bcd", 3);
    assert_int_equal(sl_gguf_array_get(&arr, 2, &e), 0);
    assert_int_equal(e.len, 0);
    assert_int_equal(sl_gguf_array_get(&arr, 3, &e), SL_EINVAL);
    assert_int_equal(sl_gguf_get_array(g, "nest", &arr, &err), 0);
    assert_int_equal(arr.elem_type, SL_GGUF_ARRAY);
    assert_int_equal(sl_gguf_array_get(&arr, 2, &e), 0);   /* walk past an empty inner array */
    sl_gguf_value x;
    assert_int_equal(e.len, 1);
    assert_int_equal(sl_gguf_array_get(&e, 0, &x), 0);
    assert_true(sl_gguf_value_i64(&x, &i64) && i64 == 3);

    const sl_gguf_tensor_info *t = sl_gguf_tensor(g, 0);
    assert_string_equal(t->name, "w");
    assert_int_equal(t->ggml_type, 12);
    assert_int_equal(t->ne[0], 512);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->nbytes, sizeof blk);
    assert_int_equal(sl_gguf_tensor(g, 1)->offset, 896);   /* 864 padded to 128 */
    assert_null(sl_gguf_tensor(g, 2));

    /* the checkpoint's typed view is the same, and writing it back reproduces the file */
    sl_checkpoint *ck;
    assert_int_equal(sl_checkpoint_open(path, &ck, &err), 0);
    cJSON *typed, *direct = sl_gguf_metadata_json(g, true);
    assert_int_equal(sl_gguf_checkpoint_metadata(ck, &typed, &err), 0);
    assert_true(cJSON_Compare(typed, direct, 1));
    assert_int_equal(sl_checkpoint_find(ck, "w")->shape[1], 512);
    cJSON_Delete(direct);
    cJSON_Delete(typed);
    sl_checkpoint_close(ck);
    sl_gguf_close(g);
    cJSON_Delete(md);
    unlink(path);
}

/* every strict prefix of a valid file fails with a message; none crash */
static void test_truncated_prefixes(void **st) {
    (void)st;
    char path[] = "/tmp/sl_gguf_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cJSON *md = cJSON_Parse(k_meta);
    sl_tensor_spec spec = {.name = "b", .dtype = SL_F32, .ndim = 1, .shape = {4}};
    sl_error err = {0};
    sl_writer *w;
    assert_int_equal(sl_writer_open(&w, SL_FMT_GGUF, path, &spec, 1, md, &err), 0);
    float v[4] = {0};
    assert_int_equal(sl_writer_write(w, v, sizeof v, &err), 0);
    assert_int_equal(sl_writer_finish(w, &err), 0);
    sl_mapping *m;
    assert_int_equal(sl_map_file(path, &m, &err), 0);
    sl_gguf *g;
    assert_int_equal(sl_gguf_parse(m->data, m->size, "full", &g, &err), 0);
    uint64_t end = sl_gguf_data_offset(g) + sl_gguf_tensor(g, 0)->offset + sl_gguf_tensor(g, 0)->nbytes;
    sl_gguf_close(g);
    assert_true(end < m->size);   /* the writer pads after the last tensor too */
    /* prefixes that cut the header or the tensor bytes fail; cutting only the trailing padding is fine */
    for (uint64_t n = 0; n <= m->size; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, m->data, n);
        err.msg[0] = 0;
        int rc = sl_gguf_parse(copy, n, "prefix", &g, &err);
        if (rc == 0) sl_gguf_close(g);
        free(copy);
        if (n >= end) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, SL_EINVAL);
            assert_true(strncmp(err.msg, "prefix: ", 8) == 0);
        }
    }
    sl_unmap(m);
    cJSON_Delete(md);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ggml_type_table),
        cmocka_unit_test(test_round_trip_and_getters),
        cmocka_unit_test(test_truncated_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
