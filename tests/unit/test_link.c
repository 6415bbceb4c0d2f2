/* SPDX-License-Identifier: MIT */
/*
 * Link-layer helpers (proto/link.c) that the node's budgets rely on: the
 * address prefix counted by the per-address caps.  (Link messages are
 * covered by the hostile suite; handshake payload padding by test_noise.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/link.h"

static void prefix(const uint8_t *ip, size_t len, uint8_t out[TF_PROTO_LINK_PREFIX_LEN])
{
    assert_int_equal(tf_proto_link_addr_prefix(ip, len, out), TF_OK);
}

/* IPv4: the whole address; two addresses differ. */
static void test_prefix_ipv4(void **state)
{
    (void)state;
    const uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
    uint8_t pa[TF_PROTO_LINK_PREFIX_LEN], pb[TF_PROTO_LINK_PREFIX_LEN];
    prefix(a, 4, pa);
    prefix(b, 4, pb);
    const uint8_t want[TF_PROTO_LINK_PREFIX_LEN] = {4, 192, 0, 2, 1, 0, 0, 0, 0};
    assert_memory_equal(pa, want, sizeof want);
    assert_memory_not_equal(pa, pb, sizeof pa);
}

/* IPv6: one /64 is one prefix, whatever the interface id; the next /64 is
 * another. */
static void test_prefix_ipv6_64(void **state)
{
    (void)state;
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16], c[16];
    memcpy(b, a, 16);
    memset(b + 8, 0xee, 8); /* another host of the same /64 */
    memcpy(c, a, 16);
    c[7] ^= 1; /* the neighbouring /64 */
    uint8_t pa[TF_PROTO_LINK_PREFIX_LEN], pb[TF_PROTO_LINK_PREFIX_LEN],
        pc[TF_PROTO_LINK_PREFIX_LEN];
    prefix(a, 16, pa);
    prefix(b, 16, pb);
    prefix(c, 16, pc);
    assert_int_equal(pa[0], 6);
    assert_memory_equal(pa + 1, a, 8);
    assert_memory_equal(pa, pb, sizeof pa);
    assert_memory_not_equal(pa, pc, sizeof pa);
}

/* An IPv4-mapped IPv6 address (a dual-stack listener) counts as its IPv4
 * address, not as the ::ffff:0:0/64 shared by every IPv4 peer. */
static void test_prefix_v4_mapped(void **state)
{
    (void)state;
    const uint8_t m1[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    const uint8_t m2[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2};
    const uint8_t v4[4] = {192, 0, 2, 1};
    uint8_t p1[TF_PROTO_LINK_PREFIX_LEN], p2[TF_PROTO_LINK_PREFIX_LEN],
        p4[TF_PROTO_LINK_PREFIX_LEN];
    prefix(m1, 16, p1);
    prefix(m2, 16, p2);
    prefix(v4, 4, p4);
    assert_memory_equal(p1, p4, sizeof p1);
    assert_memory_not_equal(p1, p2, sizeof p1);
}

static void test_prefix_bad_length(void **state)
{
    (void)state;
    const uint8_t ip[16] = {1};
    uint8_t out[TF_PROTO_LINK_PREFIX_LEN];
    memset(out, 0xaa, sizeof out);
    assert_int_equal(tf_proto_link_addr_prefix(ip, 5, out), TF_E_INVALID_ARG);
    const uint8_t zero[TF_PROTO_LINK_PREFIX_LEN] = {0};
    assert_memory_equal(out, zero, sizeof zero);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_ipv4),
        cmocka_unit_test(test_prefix_ipv6_64),
        cmocka_unit_test(test_prefix_v4_mapped),
        cmocka_unit_test(test_prefix_bad_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
