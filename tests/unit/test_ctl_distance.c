/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/ctl's did-you-mean distance (issue 16, ux). */
#include "fixtures.h"

#include <string.h>

#include "proto/ctl.h"

static size_t dist(const char *a, const char *b)
{
    return tf_proto_ctl_distance(a, strlen(a), b, strlen(b));
}

static bool near(const char *typed, const char *candidate)
{
    return tf_proto_ctl_is_near(typed, strlen(typed), candidate, strlen(candidate));
}

static void test_distance(void **state)
{
    (void)state;
    assert_int_equal(dist("", ""), 0);
    assert_int_equal(dist("contact", "contact"), 0);
    assert_int_equal(dist("", "abc"), 3);
    assert_int_equal(dist("abc", ""), 3);
    assert_int_equal(dist("contcat", "contact"), 1); /* a swap counts once */
    assert_int_equal(dist("contac", "contact"), 1);
    assert_int_equal(dist("contactt", "contact"), 1);
    assert_int_equal(dist("cantact", "contact"), 1);
    assert_int_equal(dist("CONTACT", "contact"), 0); /* ASCII case is ignored */
    assert_int_equal(dist("kitten", "sitting"), 3);
    assert_int_equal(dist("ca", "abc"), 3); /* optimal string alignment, not Damerau */
    assert_int_equal(dist("inbx", "inbox"), 1);
    char long_a[TF_PROTO_CTL_DISTANCE_MAX + 2];
    memset(long_a, 'a', sizeof long_a - 1);
    long_a[sizeof long_a - 1] = '\0';
    assert_true(dist(long_a, "a") == SIZE_MAX);
    long_a[TF_PROTO_CTL_DISTANCE_MAX] = '\0';
    assert_int_equal(dist(long_a, ""), TF_PROTO_CTL_DISTANCE_MAX);
}

static void test_near(void **state)
{
    (void)state;
    assert_true(near("contcat", "contact"));
    assert_true(near("bbo", "bob"));
    assert_true(near("propse", "propose"));
    assert_true(near("prpse", "propose")); /* 2 edits, both at least 5 long */
    assert_false(near("bob", "bob"));      /* equal: nothing to suggest */
    assert_false(near("ab", "xy"));
    assert_false(near("id", "inbox"));
    assert_false(near("abc", "xyz"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_near),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
