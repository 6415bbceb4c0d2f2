/* SPDX-License-Identifier: MIT */
/*
 * A contact as the node stores it: the person's signed card plus what the
 * owner says about them (alias, trust, tags, blocked) and where they came from
 * (introduced_by / intro).  Pure: encoding and decoding of the stored record,
 * no I/O.
 *
 * Record (msgpack array, canonical, decoded with proto/mp's strict reader):
 *   [ card: bin (signed card), alias: str (0..32), trust: uint (0..3),
 *     tags: array (0..16) of tag, introduced_by: bin 32 | nil,
 *     intro: bin 32 | nil, added: uint, updated: uint, blocked: bool ]
 */
#ifndef TF_NODE_CONTACT_H
#define TF_NODE_CONTACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/card.h"
#include "proto/err.h"
#include "proto/mp.h"

#define TF_NODE_ALIAS_MAX 32
#define TF_NODE_TAGS_MAX 16

enum tf_node_trust {
    TF_NODE_TRUST_NONE = 0, /* stored for a reason other than trust */
    TF_NODE_TRUST_ACQUAINTANCE = 1,
    TF_NODE_TRUST_KNOWN = 2,
    TF_NODE_TRUST_CLOSE = 3,
};

/* "none", "acquaintance", "known", "close". */
const char *tf_node_trust_name(enum tf_node_trust trust);
/* Parses a trust name; TF_E_BAD_VALUE if unknown. */
TF_MUST_CHECK int tf_node_trust_parse(const char *s, enum tf_node_trust *out);

struct tf_node_contact {
    uint8_t pk[TF_PROTO_KEY_LEN];      /* the card's sign_pk (the store's key) */
    struct tf_proto_buf card;          /* signed card, owned */
    struct tf_proto_card fields;       /* views into card.data, valid while card lives */
    char alias[TF_NODE_ALIAS_MAX + 1]; /* "" when none */
    enum tf_node_trust trust;
    size_t n_tags;
    char tags[TF_NODE_TAGS_MAX][TF_PROTO_TAG_MAX + 1];
    bool has_introducer;
    uint8_t introduced_by[TF_PROTO_KEY_LEN]; /* the connector, if has_introducer */
    uint8_t intro[32];                       /* the intro id, if has_introducer */
    uint64_t added;
    uint64_t updated;
    bool blocked;
};

/* True if s is a valid alias: 1..32 of [A-Za-z0-9._-], starting with a letter
 * or digit, and not starting with "tf1" in any case (which would read as an
 * id). */
bool tf_node_alias_is_valid(const char *s);

/* Sets c from a verified signed card (copied); other fields zeroed.  c's
 * previous contents are not freed; on failure c is zeroed. */
TF_MUST_CHECK int tf_node_contact_from_card(struct tf_node_contact *c, const uint8_t *card,
                                            size_t len);
/* The same for a card whose signature was verified before: when it was
 * stored (the cards table), or by the check that just accepted it.  Only
 * its format is checked. */
TF_MUST_CHECK int tf_node_contact_from_verified_card(struct tf_node_contact *c, const uint8_t *card,
                                                     size_t len);

/* Encodes the stored record.  *out owned by the caller.  Checks what the
 * decoder checks: the card's decode error or TF_E_KEY_MISMATCH if c->card
 * does not name c->pk, TF_E_BAD_VALUE for an invalid alias, trust or tag. */
TF_MUST_CHECK int tf_node_contact_encode(const struct tf_node_contact *c, struct tf_proto_buf *out);

/* Decodes a stored record for key pk: strict format, the card's body decoded
 * (its signature is not checked again: it was verified before it was stored)
 * and naming pk.  TF_E_CORRUPT on any failure.  c owns copies afterwards. */
TF_MUST_CHECK int tf_node_contact_decode(const uint8_t pk[static TF_PROTO_KEY_LEN],
                                         const uint8_t *rec, size_t len, struct tf_node_contact *c);

/* Deep copy (dst owns its own card bytes and its fields view them).  dst's
 * previous contents are not freed and are kept on failure. */
TF_MUST_CHECK int tf_node_contact_copy(struct tf_node_contact *dst,
                                       const struct tf_node_contact *src);

/* Frees the card bytes; the struct may be reused.  Safe on a zeroed struct. */
void tf_node_contact_deinit(struct tf_node_contact *c);

#endif
