/* SPDX-License-Identifier: MIT */
/*
 * The owner's own card (profile.show, profile.set) and card updates from
 * contacts (docs/CONTROL.md "Profile").
 */
#ifndef TF_NODE_PROFILE_H
#define TF_NODE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>

#include "proto/err.h"
#include "proto/mp.h"

struct tf_node;

/* profile.show / profile.set; *handled says whether verb was one of them. */
TF_MUST_CHECK int tf_node_profile_verb(struct tf_node *node, const char *verb, size_t verb_len,
                                       const msgpack_object *args, struct tf_proto_mp_writer *w,
                                       char *why, size_t why_cap, bool *handled);

/* Issues the owner's card anew from fields (borrowed; keys, name and lists
 * as wanted; seq and issued are set here), stores it (with listen, if not
 * NULL, as the listen address from the next start), makes it the node's
 * card and queues it as a card update for every contact that is not
 * blocked, in the current write transaction.  TF_OK, or an error with why
 * filled. */
struct tf_proto_card;
TF_MUST_CHECK int tf_node_profile_publish(struct tf_node *node, const struct tf_proto_card *fields,
                                          const char *listen, char *why, size_t why_cap);

/* A card update (signed card) from from_pk: kept if from_pk is a contact and
 * the card is theirs and newer.  Returns an ACK reason (0: taken or not newer)
 * or -1 when it could not be stored. */
int tf_node_profile_card_update(struct tf_node *node, const uint8_t from_pk[32],
                                const uint8_t *body, size_t len);

/* At start: a card re-issued while the node was stopped (`twofold config set
 * advertise`) is pushed to every contact, as profile.set does.  The store's
 * meta "card_pushed" holds the sequence number last pushed (8 bytes, big
 * endian); a store without it (made before it existed) records the current
 * card as pushed.  Run after delivery has started. */
TF_MUST_CHECK int tf_node_profile_start(struct tf_node *node);

#endif
