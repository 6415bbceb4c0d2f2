/* SPDX-License-Identifier: MIT */
/*
 * tf_proto_proposal_verify as the fixed party "me" at TF_FUZZ_NOW.  The
 * corpus holds proposals signed by the fixture's connector, valid ones and
 * ones failing each later check, so mutations start past the signature.
 *
 * Properties when it accepts:
 *  - every view lies inside the input; the statement and the proposal body
 *    re-encode exactly; the core re-encodes to core_bytes;
 *  - the results of every check hold: intro id, connector card naming the
 *    connector, commitment opening to me, time window.
 */
#include <string.h>

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

    struct tf_proto_proposal p;
    int rc = tf_proto_proposal_verify(me.sign_pk, data, size, TF_FUZZ_NOW, TF_FUZZ_SKEW, &p);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK)
        return 0;

    struct tf_proto_statement st;
    FUZZ_ASSERT(tf_proto_statement_parse(data, size, &st) == TF_OK);
    tf_fuzz_check_statement(&st, data, size);
    FUZZ_ASSERT(fuzz_view_within(p.core_bytes, st.body.ptr, st.body.len));
    FUZZ_ASSERT(fuzz_view_within(p.connector_card, st.body.ptr, st.body.len));
    FUZZ_ASSERT(fuzz_view_within(p.about_other, st.body.ptr, st.body.len));
    FUZZ_ASSERT(fuzz_view_within(p.note, st.body.ptr, st.body.len));
    fuzz_touch_view(p.about_other);
    fuzz_touch_view(p.note);
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_fuzz_encode_proposal_body(&w, &p);
    FUZZ_ASSERT(fuzz_writer_equals(&w, st.body.ptr, st.body.len));

    tf_fuzz_check_core(&p.core, p.core_bytes);
    tf_fuzz_check_card_views(&p.card, p.connector_card.ptr, p.connector_card.len);

    uint8_t h[TF_PROTO_HASH_LEN];
    tf_proto_intro_id(p.core_bytes.ptr, p.core_bytes.len, h);
    FUZZ_ASSERT(memcmp(h, p.intro_id, sizeof h) == 0);
    FUZZ_ASSERT(memcmp(p.card.sign_pk, p.core.connector_pk, TF_PROTO_KEY_LEN) == 0);
    tf_proto_intro_commit(me.sign_pk, p.salt, h);
    FUZZ_ASSERT(p.side == TF_PROTO_SIDE_A || p.side == TF_PROTO_SIDE_B);
    FUZZ_ASSERT(
        memcmp(h, p.side == TF_PROTO_SIDE_A ? p.core.commit_a : p.core.commit_b, sizeof h) == 0);
    FUZZ_ASSERT(TF_FUZZ_NOW <= p.core.expires);
    FUZZ_ASSERT(p.core.created <= TF_FUZZ_NOW + TF_FUZZ_SKEW);
    return 0;
}
