/* SPDX-License-Identifier: MIT */
/*
 * tf_proto_text_id_decode on arbitrary text.
 *
 * Properties:
 *  - accepted: tf_proto_text_id_encode gives back the input lowercased;
 *  - rejected: pk is left untouched, and a TF_E_BAD_CHAR position is inside
 *    the input.
 */
#include <string.h>

#include "fuzz.h"
#include "proto/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    uint8_t pk[TF_PROTO_KEY_LEN];
    uint8_t untouched[TF_PROTO_KEY_LEN];
    size_t where = SIZE_MAX;
    memset(pk, 0x5a, sizeof pk);
    memset(untouched, 0x5a, sizeof untouched);

    int rc = tf_proto_text_id_decode(text, size, pk, &where);
    if (rc != TF_OK) {
        FUZZ_ASSERT(rc < 0);
        FUZZ_ASSERT(memcmp(pk, untouched, sizeof pk) == 0);
        if (rc == TF_E_BAD_CHAR)
            FUZZ_ASSERT(where < size);
        /* where is optional. */
        FUZZ_ASSERT(tf_proto_text_id_decode(text, size, pk, NULL) == rc);
        return 0;
    }
    FUZZ_ASSERT(size == TF_PROTO_TEXT_ID_LEN);
    char out[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(pk, out);
    FUZZ_ASSERT(out[TF_PROTO_TEXT_ID_LEN] == '\0');
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        FUZZ_ASSERT(out[i] == c);
    }
    return 0;
}
