/* SPDX-License-Identifier: MIT */
/*
 * Sealed envelopes: end-to-end messages a relay can store and forward unread.
 *
 *   envelope = [version=1, msg_id bin16, to_pk bin32, expires uint, sealed bin]
 *   sealed   = crypto_box_seal(recipient box_pk, inner)
 *   inner    = [from_pk bin32, type uint, body bin, sig bin64]
 *   sig      = Ed25519(from, "twofold/v1/envelope" || 0x00 || to_pk || msg_id
 *                      || u64be(expires) || u16be(type) || body)
 *
 * The signature binds the recipient, id and expiry, so none of them can be
 * altered or the body replayed to someone else.
 */
#ifndef TF_PROTO_ENVELOPE_H
#define TF_PROTO_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/identity.h"
#include "proto/mp.h"

#define TF_PROTO_ENVELOPE_VERSION 1
#define TF_PROTO_MSG_ID_LEN 16
/* Largest envelope on the wire: fits a Noise transport message (65535 bytes
 * minus the 16-byte tag) with room for the link message around it. */
#define TF_PROTO_ENVELOPE_MAX 65000

enum tf_proto_msg_type {
    TF_PROTO_MSG_TYPE_NOTE = 1,         /* body: UTF-8 text from a contact */
    TF_PROTO_MSG_TYPE_PROPOSAL = 2,     /* body: signed proposal */
    TF_PROTO_MSG_TYPE_REPLY = 3,        /* body: signed reply */
    TF_PROTO_MSG_TYPE_INTRODUCTION = 4, /* body: signed introduction */
    TF_PROTO_MSG_TYPE_CLOSE = 5,        /* body: signed close */
    TF_PROTO_MSG_TYPE_CARD_UPDATE = 6,  /* body: signed card */
};

/* True for the types above. */
bool tf_proto_msg_type_is_valid(uint64_t type);

/* The outer, unencrypted part of an envelope (views into the input). */
struct tf_proto_envelope {
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    uint8_t to_pk[TF_PROTO_KEY_LEN];
    uint64_t expires;
    struct tf_proto_bytes sealed;
};

/* What the recipient learns on opening; body views into the plaintext buffer
 * returned alongside. */
struct tf_proto_envelope_opened {
    uint8_t from_pk[TF_PROTO_KEY_LEN];
    uint16_t type;
    struct tf_proto_bytes body;
};

/* Builds an envelope from `from` to the identity to_sign_pk whose box key is
 * to_box_pk.  msg_id is caller-chosen random bytes.  *out is owned by the
 * caller. */
TF_MUST_CHECK int tf_proto_envelope_seal(const struct tf_proto_identity *from,
                                         const uint8_t to_sign_pk[static TF_PROTO_KEY_LEN],
                                         const uint8_t to_box_pk[static TF_PROTO_KEY_LEN],
                                         const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN],
                                         uint64_t expires, uint16_t type, const uint8_t *body,
                                         size_t body_len, struct tf_proto_buf *out);

/* Decodes the outer part only (what a relay or the dedupe table needs). */
TF_MUST_CHECK int tf_proto_envelope_decode(const uint8_t *buf, size_t len,
                                           struct tf_proto_envelope *out);

/*
 * Opens an envelope addressed to `me` at time `now` (unix seconds).  Checks,
 * in this order: outer format and version; to_pk is me (TF_E_NOT_FOR_ME);
 * now <= expires (TF_E_EXPIRED); the seal opens (TF_E_BAD_SEAL); inner format;
 * the type is known (TF_E_BAD_VALUE); the signature (TF_E_BAD_SIG).
 * On success *plain owns the decrypted inner bytes and *out views into it.
 */
TF_MUST_CHECK int tf_proto_envelope_open(const struct tf_proto_identity *me, const uint8_t *buf,
                                         size_t len, uint64_t now, struct tf_proto_buf *plain,
                                         struct tf_proto_envelope_opened *out);

#endif
