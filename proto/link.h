/* SPDX-License-Identifier: MIT */
/*
 * Link messages (docs/PROTOCOL.md §9): the plaintext of each Noise transport
 * message between two nodes, and the 2-byte frame header around every Noise
 * message.  Pure encode/decode.
 */
#ifndef TF_PROTO_LINK_H
#define TF_PROTO_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "proto/envelope.h"
#include "proto/err.h"
#include "proto/mp.h"

#define TF_PROTO_LINK_VERSION 1
#define TF_PROTO_FRAME_HEADER_LEN 2
#define TF_PROTO_FRAME_MAX 65535
#define TF_PROTO_LINK_FEATURES_MAX 16
#define TF_PROTO_LINK_ERROR_TEXT_MAX 200

enum tf_proto_link_type {
    TF_PROTO_LINK_HELLO = 1,
    TF_PROTO_LINK_ENVELOPE = 2,
    TF_PROTO_LINK_ACK = 3,
    TF_PROTO_LINK_PING = 4,
    TF_PROTO_LINK_PONG = 5,
    TF_PROTO_LINK_ERROR = 6,
    TF_PROTO_LINK_BYE = 7,
    /* Mailboxes (docs/PROTOCOL.md "Mailboxes"); sent only to a peer whose
     * HELLO lists TF_PROTO_LINK_FEATURE_MAILBOX. */
    TF_PROTO_LINK_UPLOAD = 8, /* sender -> mailbox: an envelope for a tenant */
    TF_PROTO_LINK_PUSH = 9,   /* mailbox -> tenant: an envelope it holds */
    /* direct (issue 17): an envelope's content without seal or envelope
     * signature (proto/envelope.h, "direct"), sent only to the recipient
     * itself on a link where both HELLOs list TF_PROTO_LINK_FEATURE_DIRECT. */
    TF_PROTO_LINK_DIRECT = 10,
};

/* The HELLO feature of a node that understands UPLOAD and PUSH. */
#define TF_PROTO_LINK_FEATURE_MAILBOX "mailbox"
/* direct: the HELLO feature of a node that takes DIRECT messages. */
#define TF_PROTO_LINK_FEATURE_DIRECT "direct"

/* ACK status and reasons (§9). */
enum tf_proto_ack_status {
    TF_PROTO_ACK_OK = 0,
    TF_PROTO_ACK_REJECTED = 1,
    /* Only in answer to UPLOAD: this mailbox does not take the envelope now
     * (reason NOT_HOSTED or OVER_QUOTA); the sender keeps it and tries
     * another path or later. */
    TF_PROTO_ACK_DEFERRED = 2,
};

enum tf_proto_ack_reason {
    TF_PROTO_ACK_REASON_NONE = 0,
    TF_PROTO_ACK_REASON_MALFORMED = 1,
    TF_PROTO_ACK_REASON_NOT_FOR_ME = 2,
    TF_PROTO_ACK_REASON_EXPIRED = 3,
    TF_PROTO_ACK_REASON_BAD_SEAL = 4,
    TF_PROTO_ACK_REASON_BAD_SIG = 5,
    TF_PROTO_ACK_REASON_NOT_PEER = 6,
    TF_PROTO_ACK_REASON_REFUSED = 7,
    TF_PROTO_ACK_REASON_UNSUPPORTED = 8,
    TF_PROTO_ACK_REASON_INVALID = 9,
    TF_PROTO_ACK_REASON_NOT_HOSTED = 10, /* UPLOAD: to_pk is not a tenant here */
    TF_PROTO_ACK_REASON_OVER_QUOTA = 11, /* UPLOAD: a quota of the tenant or uploader */
};

/* A short English name for a reason ("not for me", ...). */
const char *tf_proto_ack_reason_name(uint64_t reason);

/* The ACK reason for an error from tf_proto_envelope_open. */
enum tf_proto_ack_reason tf_proto_ack_reason_for(int err);

enum tf_proto_link_error {
    TF_PROTO_LINK_ERROR_PROTOCOL = 1,
    TF_PROTO_LINK_ERROR_LIMIT = 2,
    TF_PROTO_LINK_ERROR_VERSION = 3,
    TF_PROTO_LINK_ERROR_SHUTDOWN = 4,
};

/* A decoded link message; views point into the decoded buffer. */
struct tf_proto_link_msg {
    enum tf_proto_link_type type;
    uint64_t version;  /* HELLO */
    size_t n_features; /* HELLO */
    struct tf_proto_bytes features[TF_PROTO_LINK_FEATURES_MAX];
    struct tf_proto_bytes envelope;      /* ENVELOPE, UPLOAD, PUSH; DIRECT: the direct message */
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN]; /* ACK */
    uint64_t status;                     /* ACK */
    uint64_t reason;                     /* ACK, ERROR */
    uint64_t nonce;                      /* PING, PONG */
    struct tf_proto_bytes text;          /* ERROR */
};

/* Strict decode (canonical msgpack, field bounds, no trailing bytes).
 * Unknown type: TF_E_BAD_VALUE. */
TF_MUST_CHECK int tf_proto_link_decode(const uint8_t *buf, size_t len,
                                       struct tf_proto_link_msg *out);

/* Encoders; *out owned by the caller. */
TF_MUST_CHECK int tf_proto_link_hello(const char *const *features, size_t n,
                                      struct tf_proto_buf *out);
TF_MUST_CHECK int tf_proto_link_envelope(const uint8_t *env, size_t len, struct tf_proto_buf *out);
/* ENVELOPE, UPLOAD, PUSH or DIRECT (same fields: [type, bin]); another type
 * is TF_E_INVALID_ARG.  A DIRECT message is 1..TF_PROTO_ENVELOPE_PAD_MAX
 * bytes (tf_proto_envelope_direct_encode), the others
 * 1..TF_PROTO_ENVELOPE_MAX: TF_E_TOO_LONG otherwise. */
TF_MUST_CHECK int tf_proto_link_envelope_as(enum tf_proto_link_type type, const uint8_t *env,
                                            size_t len, struct tf_proto_buf *out);
TF_MUST_CHECK int tf_proto_link_ack(const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN],
                                    enum tf_proto_ack_status status,
                                    enum tf_proto_ack_reason reason, struct tf_proto_buf *out);
TF_MUST_CHECK int tf_proto_link_ping(enum tf_proto_link_type type, uint64_t nonce,
                                     struct tf_proto_buf *out); /* PING or PONG */
TF_MUST_CHECK int tf_proto_link_error(enum tf_proto_link_error reason, const char *text,
                                      struct tf_proto_buf *out);
TF_MUST_CHECK int tf_proto_link_bye(struct tf_proto_buf *out);

/* Handshake payloads (docs/PROTOCOL.md §9): Noise messages 2 and 3 carry
 * the sender's signed card followed by zero bytes up to exactly
 * TF_PROTO_LINK_HS_PAYLOAD_LEN, so that their length tells nothing of the
 * card (name length, number of addresses).  A reader takes the card's own
 * length from its msgpack ([bin body, bin sig]) and requires every byte
 * after it to be zero; it accepts any amount of padding, none included. */
#define TF_PROTO_LINK_HS_PAYLOAD_LEN 4096

/* Writes card (1..TF_PROTO_LINK_HS_PAYLOAD_LEN bytes, a signed card) and
 * its padding to out.  TF_OK, or TF_E_TOO_LONG for a longer card. */
TF_MUST_CHECK int tf_proto_link_hs_payload_pad(const uint8_t *card, size_t len,
                                               uint8_t out[static TF_PROTO_LINK_HS_PAYLOAD_LEN]);

/* The length of the card at the start of a handshake payload, in
 * *card_len.  TF_OK; the statement decoder's error when the payload does
 * not start with a signed statement; TF_E_TRAILING when a padding byte is
 * not zero.  The card itself is not verified here. */
TF_MUST_CHECK int tf_proto_link_hs_payload_card(const uint8_t *payload, size_t len,
                                                size_t *card_len);

/* The prefix a node's per-address budgets count (docs/PROTOCOL.md §9): the
 * byte 4 and an IPv4 address (also when IPv4-mapped in IPv6), or the byte 6
 * and the first 8 bytes of an IPv6 address (its /64: one host often holds a
 * whole /64).  ip is 4 or 16 bytes in network order.  TF_OK, or
 * TF_E_INVALID_ARG for another length (out then all zero). */
#define TF_PROTO_LINK_PREFIX_LEN 9
TF_MUST_CHECK int tf_proto_link_addr_prefix(const uint8_t *ip, size_t len,
                                            uint8_t out[static TF_PROTO_LINK_PREFIX_LEN]);

/* Frame header: writes u16be(len).  len must be 1..65535. */
void tf_proto_frame_header(uint8_t out[static TF_PROTO_FRAME_HEADER_LEN], uint16_t len);

/* Reads a frame header: TF_E_AGAIN with fewer than 2 bytes, TF_E_BAD_LENGTH
 * for 0, TF_E_TOO_LONG above max; else the body length. */
TF_MUST_CHECK int tf_proto_frame_parse(const uint8_t *buf, size_t len, size_t max,
                                       size_t *body_len);

#endif
