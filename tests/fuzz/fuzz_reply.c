/* SPDX-License-Identifier: MIT */
/*
 * Replies: tf_proto_reply_decode, then tf_proto_reply_verify as the
 * fixture's connector would, once for "me" on side a and once for "other" on
 * side b of the fixture intro.
 *
 * Properties:
 *  - a decoded reply's statement and body re-encode to exactly the input;
 *    every view lies inside it; an accept has a card and no reason, a decline
 *    neither card nor note;
 *  - verify fails whenever decode fails, with the same error;
 *  - an accepted reply names the intro and side asked for, and an accept's
 *    card verifies and is the signer's.
 */
#include <string.h>

#include "fixture.h"
#include "fuzz.h"
#include "reencode.h"

static struct tf_fuzz_fixture fx;

static void check_verify(const uint8_t *data, size_t size, int drc,
                         const uint8_t signer[static TF_PROTO_KEY_LEN], enum tf_proto_side side)
{
    struct tf_proto_reply r;
    int rc = tf_proto_reply_verify(signer, fx.intro_id, side, data, size, &r);
    FUZZ_ASSERT(rc <= 0);
    if (drc != TF_OK)
        FUZZ_ASSERT(rc == drc);
    if (rc != TF_OK)
        return;
    FUZZ_ASSERT(memcmp(r.intro_id, fx.intro_id, TF_PROTO_INTRO_ID_LEN) == 0);
    FUZZ_ASSERT(r.side == side);
    if (r.decision == TF_PROTO_DECISION_ACCEPT) {
        FUZZ_ASSERT(memcmp(r.card_fields.sign_pk, signer, TF_PROTO_KEY_LEN) == 0);
        tf_fuzz_check_card_views(&r.card_fields, r.card.ptr, r.card.len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        fuzz_sodium_init();
        FUZZ_ASSERT(tf_fuzz_fixture_init(&fx) == TF_OK);
        ready = true;
    }

    struct tf_proto_statement st;
    struct tf_proto_reply r;
    int drc = tf_proto_reply_decode(data, size, &st, &r);
    FUZZ_ASSERT(drc <= 0);
    if (drc == TF_OK) {
        tf_fuzz_check_statement(&st, data, size);
        FUZZ_ASSERT(r.side == TF_PROTO_SIDE_A || r.side == TF_PROTO_SIDE_B);
        FUZZ_ASSERT(r.decision == TF_PROTO_DECISION_ACCEPT ||
                    r.decision == TF_PROTO_DECISION_DECLINE);
        if (r.decision == TF_PROTO_DECISION_ACCEPT) {
            FUZZ_ASSERT(r.card.len >= 1 && r.card.len <= TF_PROTO_CARD_SIGNED_MAX);
            FUZZ_ASSERT(r.reason.len == 0);
        } else {
            FUZZ_ASSERT(r.card.len == 0 && r.note.len == 0);
        }
        FUZZ_ASSERT(fuzz_view_within(r.card, st.body.ptr, st.body.len));
        FUZZ_ASSERT(fuzz_view_within(r.note, st.body.ptr, st.body.len));
        FUZZ_ASSERT(fuzz_view_within(r.reason, st.body.ptr, st.body.len));
        fuzz_touch_view(r.card);
        fuzz_touch_view(r.note);
        fuzz_touch_view(r.reason);
        struct tf_proto_mp_writer w;
        tf_proto_mp_writer_init(&w);
        tf_fuzz_encode_reply_body(&w, &r);
        FUZZ_ASSERT(fuzz_writer_equals(&w, st.body.ptr, st.body.len));
    }
    check_verify(data, size, drc, fx.me.sign_pk, TF_PROTO_SIDE_A);
    check_verify(data, size, drc, fx.other.sign_pk, TF_PROTO_SIDE_B);
    return 0;
}
