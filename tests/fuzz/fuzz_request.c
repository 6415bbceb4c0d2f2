/* SPDX-License-Identifier: MIT */
/*
 * requests: tf_proto_request_verify as the fixture connector receiving from
 * the fixture party ("me"), at a fixed time, then tf_proto_request_close_verify
 * with the same bytes (the two share a wire shape: a signed statement).
 *
 * Properties: the verifier never crashes or returns a positive value; an
 * accepted request decodes again to the same id and fields, its id is the
 * request-id hash of the statement's body, and the body re-encodes to
 * exactly the bytes received; an accepted close re-encodes to its body.
 */
#include <string.h>

#include <sodium.h>

#include "fixture.h"
#include "fuzz.h"
#include "proto/request.h"
#include "reencode.h"

#define NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tf_proto_identity connector, asker;
    static bool ready;
    if (!ready) {
        fuzz_sodium_init();
        FUZZ_ASSERT(tf_fuzz_identity(&connector, TF_FUZZ_SEED_CONNECTOR) == TF_OK);
        FUZZ_ASSERT(tf_fuzz_identity(&asker, TF_FUZZ_SEED_ME) == TF_OK);
        ready = true;
    }
    struct tf_proto_request q, again;
    int rc = tf_proto_request_verify(connector.sign_pk, asker.sign_pk, data, size, NOW,
                                     TF_PROTO_SKEW_DEFAULT, &q);
    FUZZ_ASSERT(rc <= 0);
    if (rc == TF_OK) {
        struct tf_proto_statement st;
        uint8_t id[TF_PROTO_REQUEST_ID_LEN];
        FUZZ_ASSERT(tf_proto_statement_parse(data, size, &st) == TF_OK);
        tf_fuzz_check_statement(&st, data, size);
        tf_proto_hash_tagged(id, "twofold/v1/request-id", st.body.ptr, st.body.len, NULL, 0);
        FUZZ_ASSERT(memcmp(id, q.id, sizeof id) == 0);
        FUZZ_ASSERT(tf_proto_request_decode(data, size, &again) == TF_OK);
        FUZZ_ASSERT(memcmp(again.id, q.id, sizeof id) == 0 && again.expires == q.expires &&
                    again.created == q.created && again.seeking.len == q.seeking.len);
        FUZZ_ASSERT(tf_proto_tag_is_valid(q.seeking.ptr, q.seeking.len));
        FUZZ_ASSERT(q.expires > q.created &&
                    q.expires - q.created <= TF_PROTO_REQUEST_EXPIRES_MAX_S && NOW <= q.expires);
        struct tf_proto_mp_writer w;
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, 8);
        tf_proto_mp_write_uint(&w, TF_PROTO_REQUEST_VERSION);
        tf_proto_mp_write_bin(&w, q.asker_pk, TF_PROTO_KEY_LEN);
        tf_proto_mp_write_bin(&w, q.connector_pk, TF_PROTO_KEY_LEN);
        tf_proto_mp_write_text(&w, q.seeking);
        tf_proto_mp_write_text(&w, q.note);
        tf_proto_mp_write_uint(&w, q.created);
        tf_proto_mp_write_uint(&w, q.expires);
        tf_proto_mp_write_bin(&w, q.nonce, TF_PROTO_REQUEST_NONCE_LEN);
        FUZZ_ASSERT(fuzz_writer_equals(&w, st.body.ptr, st.body.len));
    }
    struct tf_proto_request_close c;
    rc = tf_proto_request_close_verify(connector.sign_pk, data, size, &c);
    FUZZ_ASSERT(rc <= 0);
    if (rc == TF_OK) {
        struct tf_proto_statement st;
        FUZZ_ASSERT(tf_proto_statement_parse(data, size, &st) == TF_OK);
        struct tf_proto_mp_writer w;
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, 4);
        tf_proto_mp_write_uint(&w, TF_PROTO_REQUEST_VERSION);
        tf_proto_mp_write_bin(&w, c.id, sizeof c.id);
        tf_proto_mp_write_uint(&w, (uint64_t)c.action);
        tf_proto_mp_write_uint(&w, c.time);
        FUZZ_ASSERT(fuzz_writer_equals(&w, st.body.ptr, st.body.len));
    }
    return 0;
}
