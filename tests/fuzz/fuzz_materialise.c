/* SPDX-License-Identifier: MIT */
/*
 * The materialisation check, as party "me" (side a of the fixture intro)
 * holding its stored acceptance (fixture my_reply).  Input: the introduction
 * bytes.  The corpus holds a valid introduction for this party and, for each
 * step of the check, a properly signed introduction that fails at that step,
 * so mutations explore past the signatures.
 *
 * Properties when it accepts (docs in intro.h):
 *  - every view in the result lies inside the input and is touched;
 *  - the result agrees with an independent decode: same intro id, connector
 *    and topic; my side is a; the other card verifies, is not me and is the
 *    card of reply b; the replies' notes and the connector note match;
 *  - my reply appears in the introduction byte for byte.
 */
#include <string.h>

#include "fixture.h"
#include "fuzz.h"
#include "reencode.h"

static struct tf_fuzz_fixture fx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        fuzz_sodium_init();
        FUZZ_ASSERT(tf_fuzz_fixture_init(&fx) == TF_OK);
        ready = true;
    }

    struct tf_proto_materialised m;
    int rc = tf_proto_intro_materialise_check(fx.me.sign_pk, fx.my_reply.data, fx.my_reply.len,
                                              data, size, TF_FUZZ_SKEW, &m);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK)
        return 0;

    FUZZ_ASSERT(fuzz_view_within(m.topic, data, size));
    FUZZ_ASSERT(fuzz_view_within(m.other_card, data, size));
    FUZZ_ASSERT(fuzz_view_within(m.other_note, data, size));
    FUZZ_ASSERT(fuzz_view_within(m.connector_note, data, size));
    fuzz_touch_view(m.topic);
    fuzz_touch_view(m.other_note);
    fuzz_touch_view(m.connector_note);
    tf_fuzz_check_card_views(&m.other, m.other_card.ptr, m.other_card.len);

    struct tf_proto_statement st, st_b;
    struct tf_proto_introduction in;
    struct tf_proto_reply rb;
    struct tf_proto_card other;
    FUZZ_ASSERT(tf_proto_introduction_decode(data, size, &st, &in) == TF_OK);
    FUZZ_ASSERT(memcmp(m.intro_id, in.intro_id, TF_PROTO_INTRO_ID_LEN) == 0);
    FUZZ_ASSERT(memcmp(m.connector_pk, in.core.connector_pk, TF_PROTO_KEY_LEN) == 0);
    FUZZ_ASSERT(fuzz_views_eq(m.topic, in.core.topic));
    FUZZ_ASSERT(fuzz_views_eq(m.connector_note, in.note));
    FUZZ_ASSERT(m.my_side == TF_PROTO_SIDE_A);
    FUZZ_ASSERT(fuzz_view_eq(in.reply_a, fx.my_reply.data, fx.my_reply.len));
    FUZZ_ASSERT(tf_proto_reply_decode(in.reply_b.ptr, in.reply_b.len, &st_b, &rb) == TF_OK);
    FUZZ_ASSERT(fuzz_views_eq(m.other_card, rb.card));
    FUZZ_ASSERT(fuzz_views_eq(m.other_note, rb.note));
    FUZZ_ASSERT(tf_proto_card_verify(m.other_card.ptr, m.other_card.len, &other) == TF_OK);
    FUZZ_ASSERT(memcmp(other.sign_pk, m.other.sign_pk, TF_PROTO_KEY_LEN) == 0);
    FUZZ_ASSERT(memcmp(other.sign_pk, fx.me.sign_pk, TF_PROTO_KEY_LEN) != 0);
    FUZZ_ASSERT(tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_INTRODUCTION,
                                          in.core.connector_pk) == TF_OK);
    FUZZ_ASSERT(in.time <= in.core.expires || in.time - in.core.expires <= TF_FUZZ_SKEW);
    return 0;
}
