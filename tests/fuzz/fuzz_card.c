/* SPDX-License-Identifier: MIT */
/*
 * Cards as bytes: the input is tried both as a signed card
 * (tf_proto_card_verify) and as a bare card body (tf_proto_card_decode_body).
 *
 * Properties:
 *  - a decoded body re-encodes to exactly the input (canonical codec);
 *  - every view lies inside the input;
 *  - a verified card's body decodes to the same fields, and its text form
 *    parses back (tf_proto_card_from_text) to identical bytes and fields.
 */
#include <string.h>

#include "fuzz.h"
#include "reencode.h"

static void check_same_card(const struct tf_proto_card *a, const struct tf_proto_card *b)
{
    FUZZ_ASSERT(memcmp(a->sign_pk, b->sign_pk, TF_PROTO_KEY_LEN) == 0);
    FUZZ_ASSERT(memcmp(a->noise_pk, b->noise_pk, TF_PROTO_KEY_LEN) == 0);
    FUZZ_ASSERT(memcmp(a->box_pk, b->box_pk, TF_PROTO_KEY_LEN) == 0);
    FUZZ_ASSERT(fuzz_views_eq(a->name, b->name));
    FUZZ_ASSERT(a->n_addrs == b->n_addrs);
    for (size_t i = 0; i < a->n_addrs; i++)
        FUZZ_ASSERT(fuzz_views_eq(a->addrs[i], b->addrs[i]));
    FUZZ_ASSERT(a->n_offers == b->n_offers);
    for (size_t i = 0; i < a->n_offers; i++)
        FUZZ_ASSERT(fuzz_views_eq(a->offers[i], b->offers[i]));
    FUZZ_ASSERT(a->n_seeks == b->n_seeks);
    for (size_t i = 0; i < a->n_seeks; i++)
        FUZZ_ASSERT(fuzz_views_eq(a->seeks[i], b->seeks[i]));
    FUZZ_ASSERT(a->issued == b->issued);
    FUZZ_ASSERT(a->seq == b->seq);
}

static void check_body(const uint8_t *data, size_t size)
{
    struct tf_proto_card c;
    if (tf_proto_card_decode_body(data, size, &c) != TF_OK)
        return;
    tf_fuzz_check_card_views(&c, data, size);
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_fuzz_encode_card_body(&w, &c);
    FUZZ_ASSERT(fuzz_writer_equals(&w, data, size));
}

static void check_signed(const uint8_t *data, size_t size)
{
    struct tf_proto_card c, body_fields, again;
    struct tf_proto_statement st;
    if (tf_proto_card_verify(data, size, &c) != TF_OK)
        return;
    FUZZ_ASSERT(size <= TF_PROTO_CARD_SIGNED_MAX);
    tf_fuzz_check_card_views(&c, data, size);
    FUZZ_ASSERT(tf_proto_statement_parse(data, size, &st) == TF_OK);
    tf_fuzz_check_statement(&st, data, size);
    FUZZ_ASSERT(tf_proto_card_decode_body(st.body.ptr, st.body.len, &body_fields) == TF_OK);
    check_same_card(&c, &body_fields);
    FUZZ_ASSERT(tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_CARD, c.sign_pk) == TF_OK);
    FUZZ_ASSERT(tf_proto_card_supersedes(&c, &c) == TF_E_STALE);

    char *text = NULL;
    FUZZ_ASSERT(tf_proto_card_to_text(data, size, &text) == TF_OK);
    struct tf_proto_buf back = {NULL, 0};
    FUZZ_ASSERT(tf_proto_card_from_text(text, strlen(text), &back, &again) == TF_OK);
    FUZZ_ASSERT(back.len == size && memcmp(back.data, data, size) == 0);
    tf_fuzz_check_card_views(&again, back.data, back.len);
    check_same_card(&c, &again);
    tf_proto_buf_free(&back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sodium_init();
    check_body(data, size);
    check_signed(data, size);
    return 0;
}
