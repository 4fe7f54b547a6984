/*
 * test_zip.c — ZIP reader/writer: round trip through the streaming writer
 * (alignment, CRC, zip64 end records), DEFLATE entries made with zlib, and
 * malformed archives built byte by byte (each must fail cleanly).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "formats/zip.h"
#include "silica/checkpoint.h"

static void w16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void w32(uint8_t *p, uint32_t v) { w16(p, (uint16_t)v); w16(p + 2, (uint16_t)(v >> 16)); }

/* One-entry archive: local header + data + central entry + EOCD. */
typedef struct fake {
    const char *name;
    uint16_t method, flags;
    const uint8_t *data;   /* as stored (compressed when method 8) */
    uint32_t csize, usize, crc;
} fake;

static size_t build(const fake *f, uint8_t *out) {
    size_t nl = strlen(f->name), p = 0;
    w32(out, 0x04034b50); w16(out + 4, 20); w16(out + 6, f->flags); w16(out + 8, f->method);
    w16(out + 10, 0); w16(out + 12, 0x21); w32(out + 14, f->crc); w32(out + 18, f->csize); w32(out + 22, f->usize);
    w16(out + 26, (uint16_t)nl); w16(out + 28, 0);
    memcpy(out + 30, f->name, nl);
    p = 30 + nl;
    memcpy(out + p, f->data, f->csize);
    p += f->csize;
    size_t cd = p;
    memset(out + p, 0, 46);
    w32(out + p, 0x02014b50); w16(out + p + 4, 20); w16(out + p + 6, 20); w16(out + p + 8, f->flags);
    w16(out + p + 10, f->method); w32(out + p + 16, f->crc); w32(out + p + 20, f->csize); w32(out + p + 24, f->usize);
    w16(out + p + 28, (uint16_t)nl); w32(out + p + 42, 0);
    memcpy(out + p + 46, f->name, nl);
    p += 46 + nl;
    memset(out + p, 0, 22);
    w32(out + p, 0x06054b50); w16(out + p + 8, 1); w16(out + p + 10, 1);
    w32(out + p + 12, (uint32_t)(p - cd)); w32(out + p + 16, (uint32_t)cd);
    return p + 22;
}

static size_t deflate_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = (Bytef *)(uintptr_t)in;
    s.avail_in = (uInt)n;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    size_t r = s.total_out;
    deflateEnd(&s);
    return r;
}

static uint8_t g_buf[1 << 16];

static int open_fake(const fake *f, sl_zip *z, sl_error *err) {
    size_t n = build(f, g_buf);
    return sl_zip_open(z, "t.zip", g_buf, n, err);
}

static void test_roundtrip(void **st) {
    (void)st;
    char dir[] = "/tmp/sl_zip_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a.zip", dir);
    sl_error err = {0};
    sl_outfile of;
    assert_int_equal(sl_outfile_open(&of, path, &err), 0);
    sl_zip_writer *zw;
    assert_int_equal(sl_zipw_new(&zw, &of, &err), 0);
    uint8_t big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (uint8_t)(i * 7);
    assert_int_equal(sl_zipw_add(zw, "arch/data.pkl", "hello", 5, 64, &err), 0);
    assert_int_equal(sl_zipw_begin(zw, "arch/data/0", 1000, 64, &err), 0);
    assert_int_equal(sl_zipw_data(zw, big, 300, &err), 0);
    assert_int_equal(sl_zipw_data(zw, big + 300, 700, &err), 0);
    assert_int_not_equal(sl_zipw_data(zw, big, 1, &err), 0);   /* more than declared */
    assert_int_equal(sl_zipw_end(zw, &err), 0);
    assert_int_equal(sl_zipw_add(zw, "empty", "", 0, 1, &err), 0);
    assert_int_equal(sl_zipw_finish(zw, &err), 0);
    assert_int_equal(sl_outfile_commit(&of, &err), 0);

    sl_mapping *m;
    assert_int_equal(sl_map_file(path, &m, &err), 0);
    sl_zip z;
    assert_int_equal(sl_zip_open(&z, path, m->data, m->size, &err), 0);
    assert_int_equal(z.n, 3);
    const sl_zip_entry *e = sl_zip_find(&z, "arch/data/0");
    assert_non_null(e);
    assert_int_equal(e->data_offset % 64, 0);
    assert_int_equal(e->size, 1000);
    const uint8_t *v;
    uint8_t *own;
    assert_int_equal(sl_zip_read(&z, e, 1 << 20, &v, &own, &err), 0);
    assert_null(own);
    assert_memory_equal(v, big, 1000);
    assert_int_equal(sl_zip_verify(&z, e, &err), 0);
    assert_int_not_equal(sl_zip_read(&z, e, 999, &v, &own, &err), 0);   /* over max */
    e = sl_zip_find(&z, "arch/data.pkl");
    assert_non_null(e);
    assert_int_equal(e->data_offset % 64, 0);
    assert_int_equal(sl_zip_view(&z, e, &v, &err), 0);
    assert_memory_equal(v, "hello", 5);
    assert_non_null(sl_zip_find(&z, "empty"));
    assert_null(sl_zip_find(&z, "nope"));
    sl_zip_close(&z);
    sl_unmap(m);
    unlink(path);
    rmdir(dir);
}

static void test_deflate(void **st) {
    (void)st;
    uint8_t plain[4096], comp[8192];
    for (int i = 0; i < 4096; i++) plain[i] = (uint8_t)(i % 13);
    uint32_t crc = (uint32_t)crc32(0, plain, 4096);
    fake f = {"x.npy", 8, 0, comp, 0, 4096, crc};
    f.csize = (uint32_t)deflate_raw(plain, 4096, comp, sizeof comp);
    sl_zip z;
    sl_error err = {0};
    assert_int_equal(open_fake(&f, &z, &err), 0);
    const uint8_t *v;
    uint8_t *own;
    assert_int_equal(sl_zip_read(&z, &z.entries[0], 1 << 20, &v, &own, &err), 0);
    assert_non_null(own);
    assert_memory_equal(v, plain, 4096);
    free(own);
    assert_int_not_equal(sl_zip_view(&z, &z.entries[0], &v, &err), 0);   /* compressed: no view */
    sl_zip_close(&z);

    /* bomb: declares 100 bytes, inflates to 4096 */
    f.usize = 100;
    assert_int_equal(open_fake(&f, &z, &err), 0);
    assert_int_equal(sl_zip_read(&z, &z.entries[0], 1 << 20, &v, &own, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "past its declared"));
    assert_null(own);
    sl_zip_close(&z);

    /* short: declares more than it inflates to */
    f.usize = 5000;
    assert_int_equal(open_fake(&f, &z, &err), 0);
    assert_int_equal(sl_zip_read(&z, &z.entries[0], 1 << 20, &v, &own, &err), SL_EINVAL);
    sl_zip_close(&z);

    /* wrong CRC */
    f.usize = 4096;
    f.crc ^= 1;
    assert_int_equal(open_fake(&f, &z, &err), 0);
    assert_int_equal(sl_zip_read(&z, &z.entries[0], 1 << 20, &v, &own, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "CRC"));
    sl_zip_close(&z);

    /* garbage compressed data */
    memset(comp, 0xFF, 64);
    f.csize = 64;
    f.crc = crc;
    assert_int_equal(open_fake(&f, &z, &err), 0);
    assert_int_equal(sl_zip_read(&z, &z.entries[0], 1 << 20, &v, &own, &err), SL_EINVAL);
    sl_zip_close(&z);
}

static void expect_open_fail(const fake *f, int code, const char *needle) {
    sl_zip z;
    sl_error err = {0};
    assert_int_equal(open_fake(f, &z, &err), code);
    assert_non_null(strstr(err.msg, "t.zip"));
    if (needle && !strstr(err.msg, needle)) fail_msg("'%s' not in '%s'", needle, err.msg);
    sl_zip_close(&z);
}

static void test_malformed(void **st) {
    (void)st;
    const uint8_t d[4] = {1, 2, 3, 4};
    uint32_t crc = (uint32_t)crc32(0, d, 4);
    fake ok = {"a.npy", 0, 0, d, 4, 4, crc};
    sl_zip z;
    sl_error err = {0};
    assert_int_equal(open_fake(&ok, &z, &err), 0);
    sl_zip_close(&z);

    fake f = ok;
    f.name = "../evil";
    expect_open_fail(&f, SL_EINVAL, "unsafe");
    f.name = "a/../../b";
    expect_open_fail(&f, SL_EINVAL, "unsafe");
    f.name = "/abs";
    expect_open_fail(&f, SL_EINVAL, "unsafe");
    f = ok;
    f.flags = 1;
    expect_open_fail(&f, SL_EUNSUPPORTED, "encrypted");
    f = ok;
    f.method = 12;   /* bzip2 */
    expect_open_fail(&f, SL_EUNSUPPORTED, "method 12");
    f = ok;
    f.usize = 5;     /* STORED with csize != usize */
    expect_open_fail(&f, SL_EINVAL, "STORED");

    /* wrong CRC on a STORED entry: open is fine, read/verify catch it */
    f = ok;
    f.crc = crc ^ 0x10;
    assert_int_equal(open_fake(&f, &z, &err), 0);
    const uint8_t *v;
    uint8_t *own;
    assert_int_equal(sl_zip_read(&z, &z.entries[0], 100, &v, &own, &err), SL_EINVAL);
    assert_int_equal(sl_zip_verify(&z, &z.entries[0], &err), SL_EINVAL);
    sl_zip_close(&z);

    /* truncations of a valid archive: every prefix must fail, never crash */
    size_t n = build(&ok, g_buf);
    for (size_t k = 0; k < n; k++) {
        uint8_t *cp = malloc(k ? k : 1);
        memcpy(cp, g_buf, k);
        sl_error e2 = {0};
        sl_zip z2;
        assert_int_not_equal(sl_zip_open(&z2, "t.zip", cp, k, &e2), 0);
        sl_zip_close(&z2);
        free(cp);
    }
    /* every single-byte corruption: open may succeed or fail, but never crash */
    for (size_t k = 0; k < n; k++) {
        uint8_t *cp = malloc(n);
        memcpy(cp, g_buf, n);
        cp[k] ^= 0xA5;
        sl_error e2 = {0};
        sl_zip z2;
        if (sl_zip_open(&z2, "t.zip", cp, n, &e2) == 0) {
            for (size_t i = 0; i < z2.n; i++) {
                const uint8_t *vv;
                uint8_t *oo;
                if (sl_zip_read(&z2, &z2.entries[i], 1 << 20, &vv, &oo, &e2) == 0) free(oo);
            }
            sl_zip_close(&z2);
        }
        free(cp);
    }
    /* local header offset pointing past EOF */
    n = build(&ok, g_buf);
    w32(g_buf + n - 22 - 46 - strlen(ok.name) + 42, 9999);
    assert_int_equal(sl_zip_open(&z, "t.zip", g_buf, n, &err), SL_EINVAL);
    /* entry count larger than the directory */
    n = build(&ok, g_buf);
    w16(g_buf + n - 22 + 8, 2);
    w16(g_buf + n - 22 + 10, 2);
    assert_int_equal(sl_zip_open(&z, "t.zip", g_buf, n, &err), SL_EINVAL);
}

static void test_duplicate(void **st) {
    (void)st;
    char path[] = "/tmp/sl_zipdup_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sl_error err = {0};
    sl_outfile of;
    assert_int_equal(sl_outfile_open(&of, path, &err), 0);
    sl_zip_writer *zw;
    assert_int_equal(sl_zipw_new(&zw, &of, &err), 0);
    assert_int_equal(sl_zipw_add(zw, "a", "x", 1, 1, &err), 0);
    assert_int_equal(sl_zipw_add(zw, "a", "y", 1, 1, &err), 0);
    assert_int_equal(sl_zipw_finish(zw, &err), 0);
    assert_int_equal(sl_outfile_commit(&of, &err), 0);
    sl_mapping *m;
    assert_int_equal(sl_map_file(path, &m, &err), 0);
    sl_zip z;
    assert_int_equal(sl_zip_open(&z, path, m->data, m->size, &err), SL_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate"));
    sl_unmap(m);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_deflate),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_duplicate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
