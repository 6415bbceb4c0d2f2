/* SPDX-License-Identifier: MIT */
/*
 * Sealed envelopes: end-to-end messages a relay can store and forward unread.
 *
 *   envelope = [version=1, msg_id bin16, to_pk bin32, expires uint, sealed bin]
 *   sealed   = crypto_box_seal(recipient box_pk, inner || padding)
 *   inner    = [from_pk bin32, type uint, body bin, sig bin64]
 *   padding  = zero bytes, so that inner || padding is the smallest size
 *              class (TF_PROTO_ENVELOPE_CLASSES) that holds inner
 *   sig      = Ed25519(from, "twofold/v1/envelope" || 0x00 || to_pk || msg_id
 *                      || u64be(expires) || u16be(type) || body)
 *
 * The signature binds the recipient, id and expiry, so none of them can be
 * altered or the body replayed to someone else.  It does not cover the
 * padding: the padding carries nothing, and a reader refuses any non-zero
 * byte in it.
 *
 * Why padding: the length of a sealed envelope would otherwise tell an
 * observer of the link (or a relay) what is inside.  An accept reply carries
 * a card and a note, a decline only a short reason; an introduction carries
 * two cards, a close only an id.  With a smallest class of 4096 bytes, all
 * of these (an introduction of two cards and notes up to about 3 KB in all)
 * are the same length on the wire.
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

/* Sizes of inner || padding (the sealed plaintext), smallest first: 4096,
 * then doubling to 32768, then 53248 (13 * 4096), the smallest multiple of
 * 4096 that holds the largest possible inner (a body of TF_PROTO_BODY_MAX
 * bytes: 49257 bytes in all). */
#define TF_PROTO_ENVELOPE_CLASSES                                                                  \
    {                                                                                              \
        4096u, 8192u, 16384u, 32768u, 53248u                                                       \
    }
#define TF_PROTO_ENVELOPE_PAD_MIN 4096u
#define TF_PROTO_ENVELOPE_PAD_MAX 53248u

enum tf_proto_msg_type {
    TF_PROTO_MSG_TYPE_NOTE = 1,         /* body: UTF-8 text from a contact */
    TF_PROTO_MSG_TYPE_PROPOSAL = 2,     /* body: signed proposal */
    TF_PROTO_MSG_TYPE_REPLY = 3,        /* body: signed reply */
    TF_PROTO_MSG_TYPE_INTRODUCTION = 4, /* body: signed introduction */
    TF_PROTO_MSG_TYPE_CLOSE = 5,        /* body: signed close */
    TF_PROTO_MSG_TYPE_CARD_UPDATE = 6,  /* body: signed card */
    /* requests (proto/request.h) */
    TF_PROTO_MSG_TYPE_REQUEST = 7,       /* body: signed request */
    TF_PROTO_MSG_TYPE_REQUEST_CLOSE = 8, /* body: signed request close */
    TF_PROTO_MSG_TYPE_FEEDBACK = 9,      /* body: signed feedback */
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

/* The padded length of an inner part of inner_len bytes: the smallest size
 * class that holds it, or 0 if none does (inner_len > PAD_MAX). */
size_t tf_proto_envelope_padded_len(size_t inner_len);

/* Builds an envelope from `from` to the identity to_sign_pk whose box key is
 * to_box_pk, its inner part padded to its size class.  msg_id is
 * caller-chosen random bytes.  *out is owned by the caller. */
TF_MUST_CHECK int tf_proto_envelope_seal(const struct tf_proto_identity *from,
                                         const uint8_t to_sign_pk[static TF_PROTO_KEY_LEN],
                                         const uint8_t to_box_pk[static TF_PROTO_KEY_LEN],
                                         const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN],
                                         uint64_t expires, uint16_t type, const uint8_t *body,
                                         size_t body_len, struct tf_proto_buf *out);

/* Decodes the outer part only (what a relay needs). */
TF_MUST_CHECK int tf_proto_envelope_decode(const uint8_t *buf, size_t len,
                                           struct tf_proto_envelope *out);

/*
 * Finds the msg_id of bytes that may not decode as an envelope, so that even
 * a malformed envelope can be acknowledged (docs/PROTOCOL.md section 10):
 * buf must begin with an array header of at least 2 elements, then a uint
 * (any version), then a bin of exactly 16 bytes, which is copied to msg_id.
 * Nothing after it is read.  Returns TF_OK, or the reader's error when the id
 * cannot be located (then nothing can be acknowledged).
 */
TF_MUST_CHECK int tf_proto_envelope_peek_id(const uint8_t *buf, size_t len,
                                            uint8_t msg_id[static TF_PROTO_MSG_ID_LEN]);

/*
 * Opens an envelope addressed to `me` at time `now` (unix seconds).  Checks,
 * in this order: outer format and version; to_pk is me (TF_E_NOT_FOR_ME);
 * now <= expires (TF_E_EXPIRED); the seal opens (TF_E_BAD_SEAL); inner format,
 * where the type must be known (TF_E_BAD_VALUE, checked as it is read: no
 * other check here returns TF_E_BAD_VALUE, so a caller can answer "unsupported
 * type"); the padding after the inner array is all zero bytes (TF_E_TRAILING;
 * any length is accepted, also none); the signature (TF_E_BAD_SIG).
 * On success *plain owns the decrypted inner bytes and *out views into it.
 */
TF_MUST_CHECK int tf_proto_envelope_open(const struct tf_proto_identity *me, const uint8_t *buf,
                                         size_t len, uint64_t now, struct tf_proto_buf *plain,
                                         struct tf_proto_envelope_opened *out);

/*
 * direct (issue 17): an envelope's content sent on a link to its recipient
 * itself (link message DIRECT, docs/PROTOCOL.md section 9), with neither seal
 * nor envelope signature: the Noise link already authenticates both
 * identities and encrypts.  The sender is the link's authenticated peer and
 * the recipient the node that reads it.
 *
 *   direct  = inner || padding
 *   inner   = [msg_id bin16, expires uint, type uint, body bin]
 *   padding = zero bytes, so that inner || padding is exactly the smallest
 *             size class (TF_PROTO_ENVELOPE_CLASSES) that holds inner
 *
 * The padding hides what is inside as it does in a sealed envelope: an
 * accept and a decline, an introduction and a close, are the same length.
 */
struct tf_proto_envelope_direct {
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    uint64_t expires;
    uint16_t type;              /* enum tf_proto_msg_type */
    struct tf_proto_bytes body; /* views into the decoded buffer */
};

/* Encodes a direct message, padded to its class.  TF_E_BAD_VALUE for an
 * unknown type, TF_E_TOO_LONG for a body over TF_PROTO_BODY_MAX.  *out is
 * owned by the caller. */
TF_MUST_CHECK int tf_proto_envelope_direct_encode(const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN],
                                                  uint64_t expires, uint16_t type,
                                                  const uint8_t *body, size_t body_len,
                                                  struct tf_proto_buf *out);

/*
 * Decodes a direct message strictly: at most TF_PROTO_ENVELOPE_PAD_MAX bytes
 * (TF_E_TOO_LONG); canonical msgpack with exact field sizes (the reader's
 * errors); a known type (TF_E_BAD_VALUE, checked as it is read, after msg_id
 * and expires: no other check returns TF_E_BAD_VALUE, and out->msg_id and
 * out->expires are then set, so that a caller can answer "unsupported type");
 * every byte after inner zero (TF_E_TRAILING); and the length exactly the
 * class of inner (TF_E_BAD_LENGTH).  The expiry is the caller's to check.
 * On TF_OK, out->body views into buf.
 */
TF_MUST_CHECK int tf_proto_envelope_direct_decode(const uint8_t *buf, size_t len,
                                                  struct tf_proto_envelope_direct *out);

#endif
