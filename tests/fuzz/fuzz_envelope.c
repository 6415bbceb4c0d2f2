/* SPDX-License-Identifier: MIT */
/*
 * Envelopes: tf_proto_envelope_decode, then tf_proto_envelope_open as the
 * fixed identity "me" (seed all 0x01) at TF_FUZZ_NOW.  The committed corpus
 * holds envelopes sealed to me (from gen_corpus), so mutations reach the
 * unseal, inner decoding and signature checks.
 *
 * Properties:
 *  - a decoded envelope re-encodes to exactly the input, and its sealed view
 *    lies inside the input;
 *  - tf_proto_envelope_peek_id finds the msg_id of every envelope that
 *    decodes (the same id), and never reads outside the input;
 *  - open agrees with decode on the outer format, and succeeds only for
 *    envelopes addressed to me that have not expired;
 *  - on success the body view lies inside the returned plaintext, the type
 *    is known and every byte after the inner array (the padding) is zero;
 *    on failure nothing is returned.
 */
#include <string.h>

#include <sodium.h>

#include "fixture.h"
#include "fuzz.h"
#include "reencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tf_proto_identity me;
    static bool ready;
    if (!ready) {
        fuzz_sodium_init();
        FUZZ_ASSERT(tf_fuzz_identity(&me, TF_FUZZ_SEED_ME) == TF_OK);
        ready = true;
    }

    struct tf_proto_envelope e;
    uint8_t peeked[TF_PROTO_MSG_ID_LEN];
    int prc = tf_proto_envelope_peek_id(data, size, peeked);
    FUZZ_ASSERT(prc <= 0);
    int drc = tf_proto_envelope_decode(data, size, &e);
    FUZZ_ASSERT(drc <= 0);
    if (drc == TF_OK) {
        FUZZ_ASSERT(prc == TF_OK);
        FUZZ_ASSERT(memcmp(peeked, e.msg_id, sizeof peeked) == 0);
    }
    if (drc == TF_OK) {
        FUZZ_ASSERT(fuzz_view_within(e.sealed, data, size));
        FUZZ_ASSERT(e.sealed.len > crypto_box_SEALBYTES);
        fuzz_touch_view(e.sealed);
        struct tf_proto_mp_writer w;
        tf_proto_mp_writer_init(&w);
        tf_fuzz_encode_envelope(&w, &e);
        FUZZ_ASSERT(fuzz_writer_equals(&w, data, size));
    }

    struct tf_proto_buf plain = {NULL, 0};
    struct tf_proto_envelope_opened o;
    int rc = tf_proto_envelope_open(&me, data, size, TF_FUZZ_NOW, &plain, &o);
    FUZZ_ASSERT(rc <= 0);
    if (drc != TF_OK)
        FUZZ_ASSERT(rc == drc);
    if (rc != TF_OK) {
        FUZZ_ASSERT(plain.data == NULL);
        return 0;
    }
    FUZZ_ASSERT(drc == TF_OK);
    FUZZ_ASSERT(memcmp(e.to_pk, me.sign_pk, TF_PROTO_KEY_LEN) == 0);
    FUZZ_ASSERT(TF_FUZZ_NOW <= e.expires);
    FUZZ_ASSERT(plain.len == e.sealed.len - crypto_box_SEALBYTES);
    FUZZ_ASSERT(tf_proto_msg_type_is_valid(o.type));
    FUZZ_ASSERT(fuzz_view_within(o.body, plain.data, plain.len));
    fuzz_touch_view(o.body);
    /* inner ends with the bin8 signature right after the body */
    size_t inner_len = (size_t)(o.body.ptr + o.body.len - plain.data) + 2 + TF_PROTO_SIG_LEN;
    FUZZ_ASSERT(inner_len <= plain.len);
    FUZZ_ASSERT(sodium_is_zero(plain.data + inner_len, plain.len - inner_len));
    fuzz_touch(plain.data, plain.len);
    tf_proto_buf_free(&plain);
    return 0;
}
