/*
 * test_registry.c — cmocka unit tests for the registry's pure parts: model
 * names, LFS pointer parse/format (round trip, canonical bytes, bounds),
 * the git blob sha1 / sha256 hasher against known digests, content
 * revisions (order-independent), hub glob matching and a store round trip
 * in a temporary $SILICA_HOME (import, find, tag, rm, gc).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry/reg_impl.h"
#include "silica/lfs.h"

static void test_names(void **state) {
    (void)state;
    sl_reg_name n;
    assert_int_equal(sl_reg_parse_name("acme/tiny@main:q4", &n, NULL), 0);
    assert_string_equal(n.model, "acme/tiny");
    assert_string_equal(n.revision, "main");
    assert_string_equal(n.tag, "q4");
    sl_reg_name_free(&n);
    assert_int_equal(sl_reg_parse_name("mlx-community/Qwen3-4B-4bit@refs/pr/1", &n, NULL), 0);
    assert_string_equal(n.revision, "refs/pr/1");
    assert_null(n.tag);
    sl_reg_name_free(&n);
    const char *bad[] = {"", "a", "a/", "/b", "a/b/c", "../b", "a/..", "a/b@", "a/b:", "a/b@x/../y", "a b/c", ".a/b",
                         "a/b:t:u", NULL};
    for (int i = 0; bad[i]; i++) {
        sl_error err = {0};
        assert_int_not_equal(sl_reg_parse_name(bad[i], &n, &err), 0);
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

static void test_pointer_round_trip(void **state) {
    (void)state;
    const char *canon = "version https://git-lfs.github.com/spec/v1\n"
                        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
                        "size 12345\n";
    sl_lfs_pointer p;
    sl_error err = {0};
    assert_int_equal(sl_lfs_pointer_parse((const uint8_t *)canon, strlen(canon), "p", &p, &err), 0);
    assert_int_equal(p.size, 12345);
    char out[SL_LFS_POINTER_MAX];
    size_t n = sl_lfs_pointer_format(&p, out, sizeof out);
    assert_int_equal(n, strlen(canon));
    assert_memory_equal(out, canon, n);
    assert_int_equal(n, 125 + 5);   /* git-lfs: 125 + digits of size */
    /* every truncation before the size digits is rejected */
    size_t size_at = (size_t)(strstr(canon, "size ") - canon) + 5;
    for (size_t k = 0; k <= size_at; k++) assert_int_not_equal(sl_lfs_pointer_parse((const uint8_t *)canon, k, "p", &p, NULL), 0);
    p.size = 0;
    assert_int_equal(sl_lfs_pointer_format(&p, out, sizeof out), 0);   /* empty file -> empty pointer */
    assert_int_equal(sl_lfs_pointer_format(&p, out, 10), 0);
}

static void test_hashes(void **state) {
    (void)state;
    /* git hash-object of "hello\n" and sha256("hello\n") */
    sl_hasher *h = sl_hasher_new(true, 6);
    sl_hasher_update(h, "hello\n", 6);
    char s256[65], s1[41];
    sl_hasher_final(h, s256, s1);
    assert_string_equal(s1, "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_string_equal(s256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    assert_true(sl_is_hex(s1, 40));
    assert_false(sl_is_hex("ABC", 3));
}

static void test_content_revision_and_globs(void **state) {
    (void)state;
    sl_reg_file a[2] = {{.path = "a", .size = 1}, {.path = "b", .size = 2}};
    memset(a[0].sha256, '1', 64);
    memset(a[1].sha256, '2', 64);
    sl_reg_file b[2] = {a[1], a[0]};
    char *r1 = reg_content_revision(a, 2), *r2 = reg_content_revision(b, 2);
    assert_string_equal(r1, r2);
    assert_int_equal(strlen(r1), 40);
    free(r1);
    free(r2);
    assert_true(reg_glob_match("*.json", "sub/dir/config.json"));
    assert_true(reg_glob_match("model-*.safetensors", "model-00001-of-00002.safetensors"));
    assert_false(reg_glob_match("*.gguf", "model.safetensors"));
}

static void test_store_round_trip(void **state) {
    (void)state;
    char home[] = "/tmp/silica-reg-XXXXXX";
    assert_non_null(mkdtemp(home));
    char *src = sl_fmt("%s-src", home);
    assert_int_equal(sl_mkdir_p(src, NULL), 0);
    char *f = sl_fmt("%s/config.json", src);
    FILE *o = fopen(f, "w");
    fputs("{\"model_type\":\"llama\"}", o);
    fclose(o);
    sl_reg *r;
    sl_error err = {0};
    assert_int_equal(sl_reg_open(home, &r, &err), 0);
    sl_reg_version *v;
    assert_int_equal(sl_reg_import_dir(r, src, "acme/unit", NULL, NULL, NULL, &v, &err), 0);
    assert_int_equal(v->n_files, 1);
    assert_true(reg_blob_exists(r, v->files[0].sha256, v->files[0].size));
    assert_int_equal(sl_reg_tag(r, "acme/unit", "acme/unit:t", &err), 0);
    sl_reg_version *w;
    assert_int_equal(sl_reg_find(r, "acme/unit:t", &w, &err), 0);
    assert_string_equal(w->revision, v->revision);
    assert_int_equal(sl_reg_check_version(r, w, &err), 0);
    sl_reg_rm_result res;
    assert_int_equal(sl_reg_rm(r, "acme/unit", false, &res, &err), 0);
    assert_int_equal(res.st.blobs, 1);
    assert_int_equal(res.n_removed, 1);
    assert_string_equal(res.removed[0]->revision, v->revision);
    assert_int_equal(res.remaining, 0);
    sl_reg_rm_result_free(&res);
    sl_reg_stats st;
    assert_false(reg_blob_exists(r, v->files[0].sha256, v->files[0].size));
    sl_reg_version *gone = NULL;
    assert_int_not_equal(sl_reg_find(r, "acme/unit", &gone, NULL), 0);
    assert_null(gone);
    assert_int_equal(sl_reg_gc(r, &st, &err), 0);
    sl_reg_version_free(v);
    sl_reg_version_free(w);
    sl_reg_close(r);
    sl_rm_rf(home);
    sl_rm_rf(src);
    free(src);
    free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_pointer_round_trip),
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_content_revision_and_globs),
        cmocka_unit_test(test_store_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
