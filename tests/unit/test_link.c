/* SPDX-License-Identifier: MIT */
/*
 * Link-layer helpers (proto/link.c) that the node's budgets rely on: the
 * address prefix counted by the per-address caps, and the mailbox messages.
 * (The other link messages are covered by the hostile suite; handshake
 * payload padding by test_noise.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
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

/* Mailbox messages (docs/PROTOCOL.md "Mailboxes"), byte for byte: UPLOAD
 * and PUSH have ENVELOPE's shape under types 8 and 9; an ACK may carry
 * status 2 (deferred) with reasons 10 and 11; type 10 is still unknown. */
static void test_mailbox_messages(void **state)
{
    (void)state;
    const uint8_t env[3] = {0xde, 0xad, 0x01};
    struct tf_proto_buf out;
    struct tf_proto_link_msg m;
    static const uint8_t upload[] = {0x92, 0x08, 0xc4, 0x03, 0xde, 0xad, 0x01};
    assert_int_equal(tf_proto_link_envelope_as(TF_PROTO_LINK_UPLOAD, env, 3, &out), TF_OK);
    assert_int_equal(out.len, sizeof upload);
    assert_memory_equal(out.data, upload, sizeof upload);
    assert_int_equal(tf_proto_link_decode(out.data, out.len, &m), TF_OK);
    assert_int_equal(m.type, TF_PROTO_LINK_UPLOAD);
    assert_int_equal(m.envelope.len, 3);
    assert_memory_equal(m.envelope.ptr, env, 3);
    tf_proto_buf_free(&out);
    assert_int_equal(tf_proto_link_envelope_as(TF_PROTO_LINK_PUSH, env, 3, &out), TF_OK);
    assert_int_equal(out.data[1], 0x09);
    assert_int_equal(tf_proto_link_decode(out.data, out.len, &m), TF_OK);
    assert_int_equal(m.type, TF_PROTO_LINK_PUSH);
    tf_proto_buf_free(&out);
    assert_int_equal(tf_proto_link_envelope_as(TF_PROTO_LINK_ACK, env, 3, &out), TF_E_INVALID_ARG);
    assert_int_equal(tf_proto_link_envelope_as(TF_PROTO_LINK_UPLOAD, env, 0, &out), TF_E_TOO_LONG);

    uint8_t id[16];
    memset(id, 0x11, sizeof id);
    assert_int_equal(
        tf_proto_link_ack(id, TF_PROTO_ACK_DEFERRED, TF_PROTO_ACK_REASON_OVER_QUOTA, &out), TF_OK);
    assert_int_equal(out.len, 1 + 1 + 2 + 16 + 1 + 1);
    assert_memory_equal(out.data, "\x94\x03\xc4\x10", 4);
    assert_memory_equal(out.data + 20, "\x02\x0b", 2);
    assert_int_equal(tf_proto_link_decode(out.data, out.len, &m), TF_OK);
    assert_int_equal(m.status, TF_PROTO_ACK_DEFERRED);
    assert_int_equal(m.reason, TF_PROTO_ACK_REASON_OVER_QUOTA);
    out.data[20] = 0x03; /* status 3: unknown */
    assert_int_equal(tf_proto_link_decode(out.data, out.len, &m), TF_E_BAD_VALUE);
    tf_proto_buf_free(&out);
    assert_string_equal(tf_proto_ack_reason_name(TF_PROTO_ACK_REASON_NOT_HOSTED),
                        "the mailbox does not host the recipient");

    static const uint8_t type11[] = {0x92, 0x0b, 0xc4, 0x01, 0x00};
    assert_int_equal(tf_proto_link_decode(type11, sizeof type11, &m), TF_E_BAD_VALUE);
    static const uint8_t upload3[] = {0x93, 0x08, 0xc4, 0x01, 0x00, 0x00};
    assert_int_equal(tf_proto_link_decode(upload3, sizeof upload3, &m), TF_E_COUNT);
}

/* direct: the DIRECT link message and the "direct" HELLO feature. */
static void test_direct_message(void **state)
{
    (void)state;
    struct tf_proto_buf out, direct;
    struct tf_proto_link_msg m;
    static const uint8_t id[TF_PROTO_MSG_ID_LEN] = {7};
    assert_int_equal(tf_proto_envelope_direct_encode(id, 1700000000u, TF_PROTO_MSG_TYPE_CLOSE,
                                                     (const uint8_t *)"x", 1, &direct),
                     TF_OK);
    assert_int_equal(direct.len, TF_PROTO_ENVELOPE_PAD_MIN);
    assert_int_equal(tf_proto_link_envelope_as(TF_PROTO_LINK_DIRECT, direct.data, direct.len, &out),
                     TF_OK);
    /* [10, bin16 4096 bytes] */
    assert_int_equal(out.len, 1 + 1 + 3 + direct.len);
    assert_memory_equal(out.data, "\x92\x0a\xc5\x10\x00", 5);
    assert_int_equal(tf_proto_link_decode(out.data, out.len, &m), TF_OK);
    assert_int_equal(m.type, TF_PROTO_LINK_DIRECT);
    assert_int_equal(m.envelope.len, direct.len);
    assert_memory_equal(m.envelope.ptr, direct.data, direct.len);
    /* trailing bytes after the link message */
    assert_int_equal(tf_proto_link_decode(out.data, out.len - 1, &m), TF_E_TRUNCATED);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&direct);

    /* A DIRECT message is at most the largest class. */
    uint8_t *big = calloc(1, TF_PROTO_ENVELOPE_PAD_MAX + 1);
    assert_non_null(big);
    assert_int_equal(
        tf_proto_link_envelope_as(TF_PROTO_LINK_DIRECT, big, TF_PROTO_ENVELOPE_PAD_MAX + 1, &out),
        TF_E_TOO_LONG);
    assert_int_equal(
        tf_proto_link_envelope_as(TF_PROTO_LINK_ENVELOPE, big, TF_PROTO_ENVELOPE_PAD_MAX + 1, &out),
        TF_OK);
    out.data[1] = TF_PROTO_LINK_DIRECT; /* the same bytes as DIRECT: too long */
    assert_int_equal(tf_proto_link_decode(out.data, out.len, &m), TF_E_TOO_LONG);
    tf_proto_buf_free(&out);
    free(big);
    assert_int_equal(tf_proto_link_envelope_as(TF_PROTO_LINK_DIRECT, id, 0, &out), TF_E_TOO_LONG);

    /* The feature name is a valid HELLO tag and reads back. */
    static const char *const features[] = {TF_PROTO_LINK_FEATURE_MAILBOX,
                                           TF_PROTO_LINK_FEATURE_DIRECT};
    assert_int_equal(tf_proto_link_hello(features, 2, &out), TF_OK);
    assert_int_equal(tf_proto_link_decode(out.data, out.len, &m), TF_OK);
    assert_int_equal(m.n_features, 2);
    assert_int_equal(m.features[1].len, strlen("direct"));
    assert_memory_equal(m.features[1].ptr, "direct", strlen("direct"));
    tf_proto_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_ipv4),
        cmocka_unit_test(test_prefix_ipv6_64),
        cmocka_unit_test(test_prefix_v4_mapped),
        cmocka_unit_test(test_prefix_bad_length),
        cmocka_unit_test(test_mailbox_messages),
        /* direct */
        cmocka_unit_test(test_direct_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
