/* SPDX-License-Identifier: MIT */
/*
 * tf_proto_introduction_decode (format only).
 *
 * Properties when it accepts: the statement and the introduction body
 * re-encode to exactly the input, the core re-encodes to core_bytes, and every
 * view lies inside the input.
 */
#include "fuzz.h"
#include "reencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tf_proto_statement st;
    struct tf_proto_introduction in;
    fuzz_sodium_init();
    int rc = tf_proto_introduction_decode(data, size, &st, &in);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK)
        return 0;
    tf_fuzz_check_statement(&st, data, size);
    FUZZ_ASSERT(fuzz_view_within(in.core_bytes, st.body.ptr, st.body.len));
    FUZZ_ASSERT(fuzz_view_within(in.reply_a, st.body.ptr, st.body.len));
    FUZZ_ASSERT(fuzz_view_within(in.reply_b, st.body.ptr, st.body.len));
    FUZZ_ASSERT(fuzz_view_within(in.note, st.body.ptr, st.body.len));
    FUZZ_ASSERT(in.reply_a.len >= 1 && in.reply_b.len >= 1);
    fuzz_touch_view(in.reply_a);
    fuzz_touch_view(in.reply_b);
    fuzz_touch_view(in.note);
    tf_fuzz_check_core(&in.core, in.core_bytes);
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_fuzz_encode_introduction_body(&w, &in);
    FUZZ_ASSERT(fuzz_writer_equals(&w, st.body.ptr, st.body.len));
    return 0;
}
