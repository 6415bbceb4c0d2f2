/* SPDX-License-Identifier: MIT */
/*
 * direct (issue 17): tf_proto_envelope_direct_decode, the content of a
 * DIRECT link message (an envelope's content on a direct link, without seal
 * or envelope signature).
 *
 * Properties:
 *  - the decoder returns TF_OK or an error, never reads outside the input,
 *    and refuses every input over TF_PROTO_ENVELOPE_PAD_MAX bytes;
 *  - a decoded message has a known type, a body view inside the input, a
 *    length that is exactly the size class of its inner part, and encodes
 *    back (tf_proto_envelope_direct_encode) to exactly the input: the
 *    encoding is unique, padding included;
 *  - wrapped in a DIRECT link message it decodes back to the same bytes.
 */
#include <string.h>

#include "fuzz.h"
#include "proto/envelope.h"
#include "proto/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tf_proto_envelope_direct d;
    int rc = tf_proto_envelope_direct_decode(data, size, &d);
    FUZZ_ASSERT(rc <= 0);
    if (size > TF_PROTO_ENVELOPE_PAD_MAX)
        FUZZ_ASSERT(rc == TF_E_TOO_LONG);
    if (rc != TF_OK)
        return 0;
    FUZZ_ASSERT(tf_proto_msg_type_is_valid(d.type));
    FUZZ_ASSERT(fuzz_view_within(d.body, data, size));
    fuzz_touch_view(d.body);
    FUZZ_ASSERT(tf_proto_envelope_padded_len(size) == size);

    struct tf_proto_buf again;
    FUZZ_ASSERT(tf_proto_envelope_direct_encode(d.msg_id, d.expires, d.type, d.body.ptr, d.body.len,
                                                &again) == TF_OK);
    FUZZ_ASSERT(again.len == size && memcmp(again.data, data, size) == 0);
    tf_proto_buf_free(&again);

    struct tf_proto_buf msg;
    struct tf_proto_link_msg m;
    FUZZ_ASSERT(tf_proto_link_envelope_as(TF_PROTO_LINK_DIRECT, data, size, &msg) == TF_OK);
    FUZZ_ASSERT(tf_proto_link_decode(msg.data, msg.len, &m) == TF_OK);
    FUZZ_ASSERT(m.type == TF_PROTO_LINK_DIRECT);
    FUZZ_ASSERT(m.envelope.len == size && memcmp(m.envelope.ptr, data, size) == 0);
    tf_proto_buf_free(&msg);
    return 0;
}
