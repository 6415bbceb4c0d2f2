/* SPDX-License-Identifier: MIT */
/*
 * The double opt-in workflow (docs/PROTOCOL.md §8, docs/CONTROL.md
 * "Introductions"): the connector's intros (intros_out) and the party's inbox
 * (intros_in), driven by control verbs, by received envelopes and by the
 * sweep.  The transitions are the pure machines of proto/intro_machine.h:
 * each caller reduces its input to the machine's predicates, steps it, and
 * carries out the actions (sign, store, send, emit, add a contact) in order
 * under a savepoint, so every state change and the envelopes it causes go
 * into the same write transaction (delivery sends only after the commit),
 * or none of them.  Each state change is logged, "old -> new", in one place
 * per machine.
 */
#ifndef TF_NODE_INTRO_H
#define TF_NODE_INTRO_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>

#include "proto/err.h"
#include "proto/link.h"
#include "proto/mp.h"

struct tf_node;

TF_MUST_CHECK int tf_node_intro_start(struct tf_node *node);
void tf_node_intro_stop(struct tf_node *node);

/* Control verbs (docs/CONTROL.md).  Same contract as node/verbs.h. */
TF_MUST_CHECK int tf_node_intro_verb(struct tf_node *node, const char *verb, size_t verb_len,
                                     const msgpack_object *args, struct tf_proto_mp_writer *w,
                                     char *why, size_t why_cap, bool *handled);

/* A proposal, reply, introduction or close from from_pk (the authenticated
 * sender).  Returns TF_PROTO_ACK_REASON_NONE when it was taken (state changed
 * or a harmless duplicate), another reason when it is refused, or -1 when it
 * could not be stored (no ACK: the sender retries). */
int tf_node_intro_receive(struct tf_node *node, uint16_t type, const uint8_t from_pk[32],
                          const uint8_t *body, size_t len);

/* Writes the tombstones of proposals refused since the last call (the
 * receive path rolls back what a refused envelope wrote, then calls this, in
 * the same batch, so the tombstone is committed with the refusal's ACK).
 * Errors are logged; a refusal that cannot be kept stays in memory only. */
void tf_node_intro_save_refusals(struct tf_node *node);

/* The signed card of a non-contact this node corresponds with (a connector),
 * for sealing and dialling.  *out owned by the caller; TF_E_NOT_FOUND. */
TF_MUST_CHECK int tf_node_intro_peer_card(struct tf_node *node, const uint8_t pk[32],
                                          struct tf_proto_buf *out);

/* requests: the strongest thing this connector's intros (still kept) say
 * about the pair a, b, any topic: introduced, one still asking, one declined
 * (by either side) last changed at or after declined_since, or none. */
enum tf_node_intro_pair {
    TF_NODE_INTRO_PAIR_NONE = 0,
    TF_NODE_INTRO_PAIR_DECLINED = 1,
    TF_NODE_INTRO_PAIR_OPEN = 2,
    TF_NODE_INTRO_PAIR_INTRODUCED = 3,
};
TF_MUST_CHECK int tf_node_intro_pair_status(struct tf_node *node, const uint8_t a[32],
                                            const uint8_t b[32], uint64_t declined_since,
                                            enum tf_node_intro_pair *out);

/* requests (feedback): the inbox item args["id"] names: its intro id, its
 * connector, and whether it was introduced.  Errors fill why. */
TF_MUST_CHECK int tf_node_intro_inbox_lookup(struct tf_node *node, const msgpack_object *args,
                                             uint8_t intro_id[32], uint8_t connector[32],
                                             bool *introduced, char *why, size_t why_cap);

/* requests (feedback): the two parties of this connector's intro, and
 * whether it was introduced.  TF_E_NOT_FOUND when it has none (any more). */
TF_MUST_CHECK int tf_node_intro_out_parties(struct tf_node *node, const uint8_t intro_id[32],
                                            uint8_t parties[2][32], bool *introduced);

#endif
