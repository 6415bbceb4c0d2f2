/* SPDX-License-Identifier: MIT */
/*
 * The fixed world the fuzz targets check against and gen_corpus builds seeds
 * for: three identities derived from constant seeds, their signed cards, one
 * intro core between "me" (side a) and "other" (side b) made by "connector",
 * and both parties' signed acceptances.
 *
 * Everything here is deterministic (Ed25519 signatures are), so a target that
 * rebuilds the fixture gets byte-for-byte the objects gen_corpus used for the
 * committed seeds: the stored reply the materialisation target passes is the
 * one inside the valid introduction in its corpus.
 */
#ifndef TF_TESTS_FUZZ_FIXTURE_H
#define TF_TESTS_FUZZ_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/card.h"
#include "proto/identity.h"
#include "proto/intro.h"
#include "proto/mp.h"
#include "proto/noise.h"

/* The clock every target checks against (2023-11-14T22:13:20Z). */
#define TF_FUZZ_NOW UINT64_C(1700000000)
#define TF_FUZZ_SKEW ((uint64_t)TF_PROTO_SKEW_DEFAULT)
#define TF_FUZZ_CREATED (TF_FUZZ_NOW - 600)
#define TF_FUZZ_EXPIRES (TF_FUZZ_NOW + 7 * 86400)

/* Seed bytes: every byte of the 32-byte seed is this value. */
#define TF_FUZZ_SEED_ME 0x01
#define TF_FUZZ_SEED_OTHER 0x02
#define TF_FUZZ_SEED_CONNECTOR 0x03

struct tf_fuzz_fixture {
    struct tf_proto_identity me;        /* side a of the intro */
    struct tf_proto_identity other;     /* side b */
    struct tf_proto_identity connector; /* made the intro */
    struct tf_proto_buf me_card;        /* signed cards */
    struct tf_proto_buf other_card;
    struct tf_proto_buf connector_card;
    uint8_t salt_a[TF_PROTO_SALT_LEN];
    uint8_t salt_b[TF_PROTO_SALT_LEN];
    struct tf_proto_buf core; /* core bytes */
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    struct tf_proto_buf my_reply;    /* me's signed accept for side a: what me stored */
    struct tf_proto_buf other_reply; /* other's signed accept for side b */
};

/* Builds the whole fixture.  Needs sodium_init().  TF_OK or the first error;
 * on error the fixture may be partly filled: deinit it. */
TF_MUST_CHECK int tf_fuzz_fixture_init(struct tf_fuzz_fixture *f);

/* Frees everything; safe on a zeroed or partly built fixture. */
void tf_fuzz_fixture_deinit(struct tf_fuzz_fixture *f);

/* Derives an identity from a seed of 32 copies of byte b. */
TF_MUST_CHECK int tf_fuzz_identity(struct tf_proto_identity *id, uint8_t b);

/* Signs a card for id with the given name and one address; no offers or
 * seeks.  *out is owned by the caller. */
TF_MUST_CHECK int tf_fuzz_card(const struct tf_proto_identity *id, const char *name,
                               const char *addr, uint64_t seq, struct tf_proto_buf *out);

/* Encodes a core for (pk_a, salt_a) and (pk_b, salt_b) and computes its id. */
TF_MUST_CHECK int tf_fuzz_core(const uint8_t connector_pk[static TF_PROTO_KEY_LEN],
                               const uint8_t pk_a[static TF_PROTO_KEY_LEN],
                               const uint8_t salt_a[static TF_PROTO_SALT_LEN],
                               const uint8_t pk_b[static TF_PROTO_KEY_LEN],
                               const uint8_t salt_b[static TF_PROTO_SALT_LEN], const char *topic,
                               uint64_t created, uint64_t expires, enum tf_proto_intro_mode mode,
                               struct tf_proto_buf *out,
                               uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN]);

/* Signs an acceptance (card and note) or, with card NULL, a decline (reason
 * = note) by id.  *out is owned by the caller. */
TF_MUST_CHECK int tf_fuzz_reply(const struct tf_proto_identity *id,
                                const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN],
                                enum tf_proto_side side, const struct tf_proto_buf *card,
                                const char *note, uint64_t time, struct tf_proto_buf *out);

/* Noise: every handshake uses the identities' Noise static keys and a fixed
 * ephemeral key per role (32 copies of this byte), so messages replay. */
#define TF_FUZZ_NOISE_E_INITIATOR 0x11
#define TF_FUZZ_NOISE_E_RESPONDER 0x22
#define TF_FUZZ_NOISE_MSG_CAP 2048

/* Starts a handshake as id.  rs_pk: the responder's static key for an IK
 * initiator, else NULL. */
TF_MUST_CHECK int tf_fuzz_noise_start(struct tf_proto_noise_handshake *hs,
                                      const struct tf_proto_identity *id,
                                      enum tf_proto_noise_pattern pattern,
                                      enum tf_proto_noise_role role, const uint8_t *rs_pk);

/* A complete XX handshake, "me" initiating to "other"; message 1 carries no
 * payload, message 2 other's card and message 3 me's card.  Keeps each
 * message, the handshake states from just before each read (structs without
 * pointers: copy them to replay a read), and the responder's receiving cipher
 * with the initiator's first transport message ("hello") encrypted. */
struct tf_fuzz_noise_xx {
    uint8_t msg[3][TF_FUZZ_NOISE_MSG_CAP];
    size_t len[3];
    struct tf_proto_noise_handshake resp_before_msg1;
    struct tf_proto_noise_handshake init_before_msg2;
    struct tf_proto_noise_handshake resp_before_msg3;
    struct tf_proto_noise_cipher resp_recv;
    uint8_t transport[64];
    size_t transport_len;
};

TF_MUST_CHECK int tf_fuzz_noise_xx(const struct tf_fuzz_fixture *f, struct tf_fuzz_noise_xx *out);

/* IK message 1 from "me" to "other" (payload: me's card). */
TF_MUST_CHECK int tf_fuzz_noise_ik_msg1(const struct tf_fuzz_fixture *f, uint8_t *out, size_t cap,
                                        size_t *len);

#endif
