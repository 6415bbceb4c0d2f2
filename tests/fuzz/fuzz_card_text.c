/* SPDX-License-Identifier: MIT */
/*
 * tf_proto_card_from_text on arbitrary text.
 *
 * Properties when it accepts:
 *  - the card's views lie inside the returned signed bytes;
 *  - tf_proto_card_to_text of those bytes is exactly the input without its
 *    surrounding whitespace (base64url without padding has one spelling per
 *    byte string, and libsodium rejects non-zero trailing bits);
 *  - parsing that text again gives identical bytes;
 *  - only base64url characters follow the prefix: libsodium 1.0.18 decodes
 *    every byte 0x80..0xff as '_' (its decoder takes a signed char), so
 *    card.c must check the alphabet itself (regression input:
 *    corpus/card_text/regress-high-byte-as-underscore);
 *  - on failure the output buffer is left empty.
 */
#include <string.h>

#include "fuzz.h"
#include "reencode.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sodium_init();
    const char *text = (const char *)data;
    struct tf_proto_buf signed_card = {NULL, 0};
    struct tf_proto_card card;
    int rc = tf_proto_card_from_text(text, size, &signed_card, &card);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK) {
        FUZZ_ASSERT(signed_card.data == NULL);
        return 0;
    }
    tf_fuzz_check_card_views(&card, signed_card.data, signed_card.len);

    size_t start = 0, end = size;
    while (start < end && is_space(text[start]))
        start++;
    while (end > start && is_space(text[end - 1]))
        end--;
    const size_t prefix = strlen(TF_PROTO_CARD_TEXT_PREFIX);
    bool alphabet_only = true;
    for (size_t i = start + prefix; i < end; i++)
        alphabet_only = alphabet_only && is_b64url(text[i]);
    FUZZ_ASSERT(alphabet_only);

    char *again = NULL;
    FUZZ_ASSERT(tf_proto_card_to_text(signed_card.data, signed_card.len, &again) == TF_OK);
    FUZZ_ASSERT(strlen(again) == end - start && memcmp(again, text + start, end - start) == 0);

    struct tf_proto_buf back = {NULL, 0};
    struct tf_proto_card card2;
    FUZZ_ASSERT(tf_proto_card_from_text(again, strlen(again), &back, &card2) == TF_OK);
    FUZZ_ASSERT(back.len == signed_card.len && memcmp(back.data, signed_card.data, back.len) == 0);
    FUZZ_ASSERT(card2.seq == card.seq && card2.issued == card.issued);
    tf_proto_buf_free(&back);
    free(again);
    tf_proto_buf_free(&signed_card);
    return 0;
}
