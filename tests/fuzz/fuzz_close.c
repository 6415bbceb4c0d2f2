/* SPDX-License-Identifier: MIT */
/*
 * tf_proto_close_verify with the fixture connector's key.
 *
 * Properties: intro_id is written only on success; an accepted close's
 * statement re-encodes to exactly the input and its body is [bin intro_id].
 */
#include <string.h>

#include "fixture.h"
#include "fuzz.h"
#include "reencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tf_proto_identity connector;
    static bool ready;
    if (!ready) {
        fuzz_sodium_init();
        FUZZ_ASSERT(tf_fuzz_identity(&connector, TF_FUZZ_SEED_CONNECTOR) == TF_OK);
        ready = true;
    }

    uint8_t id[TF_PROTO_INTRO_ID_LEN], untouched[TF_PROTO_INTRO_ID_LEN];
    memset(id, 0x5a, sizeof id);
    memset(untouched, 0x5a, sizeof untouched);
    int rc = tf_proto_close_verify(connector.sign_pk, data, size, id);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK) {
        FUZZ_ASSERT(memcmp(id, untouched, sizeof id) == 0);
        return 0;
    }
    struct tf_proto_statement st;
    FUZZ_ASSERT(tf_proto_statement_parse(data, size, &st) == TF_OK);
    tf_fuzz_check_statement(&st, data, size);
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 1);
    tf_proto_mp_write_bin(&w, id, sizeof id);
    FUZZ_ASSERT(fuzz_writer_equals(&w, st.body.ptr, st.body.len));
    return 0;
}
