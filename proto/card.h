/* SPDX-License-Identifier: MIT */
/*
 * Contact cards: an identity's owner-signed description of itself.
 *
 * Body (canonical msgpack map, integer keys in ascending order, all present):
 *   1 version  uint (= 1)        6 addrs   array of str "host:port" (0..8)
 *   2 sign_pk  bin 32 (Ed25519)  7 offers  array of tag (0..16)
 *   3 noise_pk bin 32 (X25519)   8 seeks   array of tag (0..16)
 *   4 box_pk   bin 32 (X25519)   9 issued  uint (unix seconds)
 *   5 name     str 1..64        10 seq     uint
 *  11 mailboxes array (1..3) of [sign_pk bin 32, addrs array (1..2) of str]
 *               optional: present only when the card names mailboxes, so a
 *               card without any is a version-1 card byte for byte
 * Signed as a statement in the "twofold/v1/card" domain by sign_pk.  Shared as
 * one line: "tfcard1:" + base64url (no padding) of the signed statement.
 */
#ifndef TF_PROTO_CARD_H
#define TF_PROTO_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/identity.h"
#include "proto/mp.h"

#define TF_PROTO_CARD_VERSION 1
#define TF_PROTO_CARD_NAME_MAX 64
#define TF_PROTO_CARD_ADDRS_MAX 8
#define TF_PROTO_CARD_ADDR_MAX 128
#define TF_PROTO_CARD_TAGS_MAX 16
#define TF_PROTO_TAG_MAX 64
#define TF_PROTO_CARD_TEXT_PREFIX "tfcard1:"
/* Mailboxes (docs/PROTOCOL.md "Mailboxes"): nodes that hold sealed envelopes
 * for the card's owner.  Each is named by its identity key and reached at its
 * own addresses. */
#define TF_PROTO_CARD_MAILBOXES_MAX 3
#define TF_PROTO_CARD_MAILBOX_ADDRS_MAX 2
/* A signed card's wire size is bounded by its fields; 4 KiB is ample. */
#define TF_PROTO_CARD_SIGNED_MAX 4096

/* One mailbox of a card; addrs are views as for the card's own. */
struct tf_proto_card_mailbox {
    uint8_t sign_pk[TF_PROTO_KEY_LEN];
    size_t n_addrs;
    struct tf_proto_bytes addrs[TF_PROTO_CARD_MAILBOX_ADDRS_MAX];
};

/* A card's fields.  Text fields are views: into the decoded buffer after
 * decoding, or into the caller's strings when building. */
struct tf_proto_card {
    uint8_t sign_pk[TF_PROTO_KEY_LEN];
    uint8_t noise_pk[TF_PROTO_KEY_LEN];
    uint8_t box_pk[TF_PROTO_KEY_LEN];
    struct tf_proto_bytes name;
    size_t n_addrs;
    struct tf_proto_bytes addrs[TF_PROTO_CARD_ADDRS_MAX];
    size_t n_offers;
    struct tf_proto_bytes offers[TF_PROTO_CARD_TAGS_MAX];
    size_t n_seeks;
    struct tf_proto_bytes seeks[TF_PROTO_CARD_TAGS_MAX];
    uint64_t issued;
    uint64_t seq;
    size_t n_mailboxes; /* 0: the card has no key 11 */
    struct tf_proto_card_mailbox mailboxes[TF_PROTO_CARD_MAILBOXES_MAX];
};

/* True if s is a tag: 1..64 bytes of [a-z0-9-], not starting or ending with
 * '-'.  Topics, offers and seeks are tags. */
bool tf_proto_tag_is_valid(const uint8_t *s, size_t len);

/* True if s is "host:port": host is a name of [A-Za-z0-9.-], an IPv4 address
 * or a bracketed IPv6 address; port is 1..65535 without leading zeros. */
bool tf_proto_addr_is_valid(const uint8_t *s, size_t len);

/* The sequence number of the card an owner issues after one numbered prev,
 * at now_ms (Unix time in milliseconds): max(prev + 1, now_ms).  Never going
 * back, even for a store restored from a backup older than the card its
 * contacts hold (they keep only a higher number): a restore takes longer than
 * a millisecond, so the time has passed every number issued before. */
uint64_t tf_proto_card_next_seq(uint64_t prev, uint64_t now_ms);

/* Encodes and signs a card.  The card's keys must be id's keys
 * (TF_E_KEY_MISMATCH); every field is validated as the decoder would, and a
 * signed card over TF_PROTO_CARD_SIGNED_MAX bytes is TF_E_TOO_LONG.  *out
 * (the signed statement) is owned by the caller. */
TF_MUST_CHECK int tf_proto_card_sign(const struct tf_proto_identity *id,
                                     const struct tf_proto_card *card, struct tf_proto_buf *out);

/* Decodes a card body strictly (no signature check).  Views point into body. */
TF_MUST_CHECK int tf_proto_card_decode_body(const uint8_t *body, size_t len,
                                            struct tf_proto_card *out);

/* Parses a signed card, decodes its body and verifies its signature with the
 * sign_pk it names.  Views point into buf. */
TF_MUST_CHECK int tf_proto_card_verify(const uint8_t *buf, size_t len, struct tf_proto_card *out);

/* Bytes the caller verified before (a held contact's card, a statement it
 * signed itself), or {NULL, 0}.  A verifier given one skips the signature
 * check of an input byte-identical to it: the outcome is the same, only
 * the public-key operation is saved.  Never fill it from unverified input. */
struct tf_proto_known {
    const uint8_t *ptr;
    size_t len;
};

/* True if buf is byte-for-byte known. */
bool tf_proto_known_matches(struct tf_proto_known known, const uint8_t *buf, size_t len);

/* As tf_proto_card_verify, without the signature check when buf is known. */
TF_MUST_CHECK int tf_proto_card_verify_known(const uint8_t *buf, size_t len,
                                             struct tf_proto_known known,
                                             struct tf_proto_card *out);

/* Text form of a signed card: "tfcard1:" + base64url.  *out is a malloc'ed
 * NUL-terminated string owned by the caller. */
TF_MUST_CHECK int tf_proto_card_to_text(const uint8_t *signed_card, size_t len, char **out);

/* Parses the text form (surrounding whitespace allowed), verifies it, and
 * returns the signed bytes in *signed_out (owned by the caller) with *card
 * viewing into them. */
TF_MUST_CHECK int tf_proto_card_from_text(const char *text, size_t len,
                                          struct tf_proto_buf *signed_out,
                                          struct tf_proto_card *card);

/* Decides whether `candidate` may replace `held`: TF_OK if it is the same
 * identity with a higher sequence number, TF_E_KEY_MISMATCH for another
 * identity, TF_E_STALE if its sequence number is not higher. */
/* The index of pk among the card's mailboxes, or -1. */
int tf_proto_card_mailbox_index(const struct tf_proto_card *card,
                                const uint8_t pk[static TF_PROTO_KEY_LEN]);

TF_MUST_CHECK int tf_proto_card_supersedes(const struct tf_proto_card *candidate,
                                           const struct tf_proto_card *held);

#endif
