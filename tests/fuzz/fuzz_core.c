/* SPDX-License-Identifier: MIT */
/*
 * Intro cores: tf_proto_intro_core_decode, and for what it accepts,
 * tf_proto_intro_core_encode must reproduce the input byte for byte (the
 * canonical codec admits one encoding per core), with the topic view inside
 * the input.
 */
#include "fuzz.h"
#include "reencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tf_proto_intro_core core;
    fuzz_sodium_init();
    int rc = tf_proto_intro_core_decode(data, size, &core);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK)
        return 0;
    FUZZ_ASSERT(core.mode == TF_PROTO_INTRO_MODE_PARALLEL ||
                core.mode == TF_PROTO_INTRO_MODE_SEQUENTIAL);
    struct tf_proto_bytes input = {data, size};
    tf_fuzz_check_core(&core, input);
    return 0;
}
