/* SPDX-License-Identifier: MIT */
/*
 * Noise messages from a peer.  The first input byte picks what reads the
 * rest (mod 5):
 *   0  an XX responder reading message 1;
 *   1  an XX initiator reading message 2 (after sending the fixture's msg 1);
 *   2  an XX responder reading message 3 (after the fixture's msgs 1 and 2);
 *   3  the responder's transport cipher decrypting the first message;
 *   4  an IK responder reading message 1.
 * The handshakes use the fixture's fixed keys (fixture.h), so the committed
 * corpus holds the real messages and mutations start from valid ones.
 *
 * Properties (noise.h):
 *  - a failed read returns payload_len 0, leaves the payload buffer zeroed
 *    and the handshake FAILED with no remote static key;
 *  - a successful read fits its payload in msg_len bytes; after message 3
 *    (or 2 for the initiator) the remote static key is the peer's;
 *  - after a successful read 1 the responder can write message 2;
 *  - a failed decrypt leaves the counter unchanged, and a MAC failure leaves
 *    the len - 16 output bytes zeroed.
 */
#include <string.h>

#include "fixture.h"
#include "fuzz.h"

static struct tf_fuzz_fixture fx;
static struct tf_fuzz_noise_xx xx;

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Reads msg into hs and checks the documented outcome; returns the result. */
static int read_checked(struct tf_proto_noise_handshake *hs, const uint8_t *msg, size_t len,
                        uint8_t *payload)
{
    size_t plen = 12345;
    memset(payload, 0xaa, len);
    int rc = tf_proto_noise_handshake_read(hs, msg, len, payload, len, &plen);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK) {
        FUZZ_ASSERT(rc != TF_E_BAD_STATE);
        FUZZ_ASSERT(plen == 0);
        FUZZ_ASSERT(all_zero(payload, len));
        FUZZ_ASSERT(tf_proto_noise_handshake_state(hs) == TF_PROTO_NOISE_STATE_FAILED);
        FUZZ_ASSERT(tf_proto_noise_handshake_remote_static(hs) == NULL);
        return rc;
    }
    FUZZ_ASSERT(plen <= len);
    fuzz_touch(payload, plen);
    return rc;
}

static void responder_msg1(enum tf_proto_noise_pattern pattern, const uint8_t *msg, size_t len,
                           uint8_t *payload)
{
    struct tf_proto_noise_handshake hs;
    if (pattern == TF_PROTO_NOISE_PATTERN_XX)
        hs = xx.resp_before_msg1;
    else
        FUZZ_ASSERT(tf_fuzz_noise_start(&hs, &fx.other, TF_PROTO_NOISE_PATTERN_IK,
                                        TF_PROTO_NOISE_ROLE_RESPONDER, NULL) == TF_OK);
    if (read_checked(&hs, msg, len, payload) == TF_OK) {
        FUZZ_ASSERT(tf_proto_noise_handshake_state(&hs) == TF_PROTO_NOISE_STATE_WRITE);
        if (pattern == TF_PROTO_NOISE_PATTERN_IK) {
            const uint8_t *rs = tf_proto_noise_handshake_remote_static(&hs);
            FUZZ_ASSERT(rs != NULL && memcmp(rs, fx.me.noise_pk, TF_PROTO_KEY_LEN) == 0);
        }
        uint8_t out[TF_FUZZ_NOISE_MSG_CAP];
        size_t olen;
        int rc = tf_proto_noise_handshake_write(&hs, NULL, 0, out, sizeof out, &olen);
        FUZZ_ASSERT(rc == TF_OK || rc == TF_E_LOW_ORDER);
    }
    tf_proto_noise_handshake_deinit(&hs);
}

static void read_later(const struct tf_proto_noise_handshake *before, const uint8_t *expect_rs,
                       const uint8_t *msg, size_t len, uint8_t *payload)
{
    struct tf_proto_noise_handshake hs = *before;
    if (read_checked(&hs, msg, len, payload) == TF_OK) {
        const uint8_t *rs = tf_proto_noise_handshake_remote_static(&hs);
        FUZZ_ASSERT(rs != NULL && memcmp(rs, expect_rs, TF_PROTO_KEY_LEN) == 0);
    }
    tf_proto_noise_handshake_deinit(&hs);
}

static void transport(const uint8_t *msg, size_t len, uint8_t *out)
{
    struct tf_proto_noise_cipher c = xx.resp_recv;
    size_t olen = 12345;
    memset(out, 0xaa, len);
    int rc = tf_proto_noise_cipher_decrypt(&c, msg, len, out, len, &olen);
    FUZZ_ASSERT(rc <= 0);
    if (rc == TF_OK) {
        FUZZ_ASSERT(len >= TF_PROTO_NOISE_TAG_LEN && olen == len - TF_PROTO_NOISE_TAG_LEN);
        FUZZ_ASSERT(c.n == xx.resp_recv.n + 1);
        fuzz_touch(out, olen);
    } else {
        FUZZ_ASSERT(c.n == xx.resp_recv.n);
        if (rc == TF_E_DECRYPT)
            FUZZ_ASSERT(all_zero(out, len - TF_PROTO_NOISE_TAG_LEN));
    }
    tf_proto_noise_cipher_deinit(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        fuzz_sodium_init();
        FUZZ_ASSERT(tf_fuzz_fixture_init(&fx) == TF_OK);
        FUZZ_ASSERT(tf_fuzz_noise_xx(&fx, &xx) == TF_OK);
        ready = true;
    }
    if (size < 1)
        return 0;
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    uint8_t *buf = malloc(len > 0 ? len : 1);
    FUZZ_ASSERT(buf != NULL);
    switch (data[0] % 5) {
    case 0:
        responder_msg1(TF_PROTO_NOISE_PATTERN_XX, msg, len, buf);
        break;
    case 1:
        read_later(&xx.init_before_msg2, fx.other.noise_pk, msg, len, buf);
        break;
    case 2:
        read_later(&xx.resp_before_msg3, fx.me.noise_pk, msg, len, buf);
        break;
    case 3:
        transport(msg, len, buf);
        break;
    default:
        responder_msg1(TF_PROTO_NOISE_PATTERN_IK, msg, len, buf);
        break;
    }
    free(buf);
    return 0;
}
