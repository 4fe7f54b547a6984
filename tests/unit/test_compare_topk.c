/*
 * test_compare_topk.c — sl_cmp_topk (silica/compare.h), the selection behind
 * the adapter protocol's "want": "topk": largest first, equal values by lower
 * id first, NaN after every number, k = V is the whole row sorted.  The
 * Python side (tests/py/test_compare.py) checks it against numpy's stable
 * argsort on real logits; these are the tie and NaN cases random logits miss.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "silica/compare.h"

static void ties_keep_the_lower_id_first(void **state) {
    (void)state;
    const float row[] = {1, 3, 3, 2, 3, 0};
    int32_t ids[4];
    float vals[4];
    sl_cmp_topk(row, 6, 4, ids, vals);
    const int32_t want[] = {1, 2, 4, 3};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ids[i], want[i]);
        assert_true(vals[i] == row[want[i]]);
    }
}

static void nan_goes_after_every_number(void **state) {
    (void)state;
    const float row[] = {NAN, -5, NAN, 7, -1};
    int32_t ids[5];
    float vals[5];
    sl_cmp_topk(row, 5, 5, ids, vals);
    const int32_t want[] = {3, 4, 1, 0, 2};
    for (int i = 0; i < 5; i++) assert_int_equal(ids[i], want[i]);
    sl_cmp_topk(row, 5, 2, ids, vals);   /* a full buffer: numbers displace the NaN */
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 4);
}

static void k_one_is_the_argmax(void **state) {
    (void)state;
    const float row[] = {-2, 4, 4, -8};
    int32_t id;
    float v;
    sl_cmp_topk(row, 4, 1, &id, &v);
    assert_int_equal(id, 1);
    assert_true(v == 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ties_keep_the_lower_id_first),
        cmocka_unit_test(nan_goes_after_every_number),
        cmocka_unit_test(k_one_is_the_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
