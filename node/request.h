/* SPDX-License-Identifier: MIT */
/*
 * Requests for an introduction (docs/CONTROL.md "Requests"): an asker asks a
 * connector for someone who offers a topic; the connector answers with a
 * proposal (intro.propose with "answers"), declines, or lets it expire; the
 * asker may withdraw.  Both ends keep one record per request (table
 * requests), stepped by the pure machine of proto/request.h; this module
 * carries out its actions (sign, send, store, emit) under one savepoint.
 *
 * Budgets (what an asker can make a connector keep): open requests per asker,
 * records per asker, records from strangers together (config keys
 * max_open_requests_per_asker, max_requests_per_asker,
 * max_stranger_requests); closed records are collected after
 * request_retention_s.
 */
#ifndef TF_NODE_REQUEST_H
#define TF_NODE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>

#include "proto/err.h"
#include "proto/intro.h"
#include "proto/intro_machine.h"
#include "proto/mp.h"
#include "proto/policy.h"

struct tf_node;

TF_MUST_CHECK int tf_node_request_start(struct tf_node *node);
void tf_node_request_stop(struct tf_node *node);

/* Control verbs request.* (docs/CONTROL.md).  Same contract as node/verbs.h. */
TF_MUST_CHECK int tf_node_request_verb(struct tf_node *node, const char *verb, size_t verb_len,
                                       const msgpack_object *args, struct tf_proto_mp_writer *w,
                                       char *why, size_t why_cap, bool *handled);

/* A request or request close from from_pk (the authenticated sender), as
 * tf_node_intro_receive.  Other types: TF_PROTO_ACK_REASON_UNSUPPORTED. */
/* Delivery ended for the envelope msg_id (any type: only requests' are
 * known here).  reason >= 0: the recipient refused it for good (the ACK
 * reason): the request closes as "refused".  reason < 0: delivered, or
 * given up otherwise: the request is left as it is. */
TF_MUST_CHECK int tf_node_request_envelope_done(struct tf_node *node, const uint8_t msg_id[16],
                                                int reason);

int tf_node_request_receive(struct tf_node *node, uint16_t type, const uint8_t from_pk[32],
                            const uint8_t *body, size_t len);

/*
 * Connector, intro.propose with args["answers"]: resolves the request it
 * names (hex id or a unique prefix of >= 8 digits) and checks that it is a
 * request this node received, still open and not expired, and that its asker
 * is a or b (*side: 0 for a, 1 for b).  Changes nothing.  TF_E_NOT_FOUND
 * when args has no "answers" (why untouched); other errors fill why.
 */
TF_MUST_CHECK int tf_node_request_check_answer(struct tf_node *node, const msgpack_object *args,
                                               const uint8_t a[32], const uint8_t b[32], int *side,
                                               uint8_t request_id[32], char *why, size_t why_cap);

/* Connector, intro.propose with "answers" and no topic: copies the seeking
 * tag of the request args["answers"] names into topic (NUL-terminated).
 * TF_E_NOT_FOUND when args has no "answers" (why untouched). */
TF_MUST_CHECK int tf_node_request_topic(struct tf_node *node, const msgpack_object *args,
                                        char *topic, size_t cap, char *why, size_t why_cap);

/* Connector: records that intro_id answers request_id (checked with
 * tf_node_request_check_answer), its asker being on side; by names who
 * decided ("owner", "policy:N").  In the write transaction. */
TF_MUST_CHECK int tf_node_request_answered(struct tf_node *node, const uint8_t request_id[32],
                                           const uint8_t intro_id[32], int side, const char *by);

/* Connector: fills p->has_request and p->request_id for the proposal of
 * intro_id to side (set when that side asked for this intro). */
TF_MUST_CHECK int tf_node_request_fill_proposal(struct tf_node *node, const uint8_t intro_id[32],
                                                int side, struct tf_proto_proposal *p);

/* Asker: a new, verified proposal p from its connector arrived.  If it names
 * a request, it answers it only when that request is this node's own, made
 * to p's connector, still open and not expired; then the request is marked
 * answered (in the write transaction) and *answers is true.  Otherwise
 * *answers is false (logged) and nothing changes: the proposal is an
 * ordinary one. */
TF_MUST_CHECK int tf_node_request_on_proposal(struct tf_node *node,
                                              const struct tf_proto_proposal *p, bool *answers);

/* requests policy: a contact who offers a topic, as the policy ranks them:
 * higher trust first, then the newer card (its issued time), then the lower
 * public key. */
struct tf_node_request_offer {
    uint8_t pk[32];
    enum tf_proto_policy_trust trust;
    uint64_t issued;
};

/* The best (at most max) of the owner's contacts whose card offers topic:
 * not blocked, with a trust level, and not requester (may be NULL).  *n says
 * how many were written to out, best first. */
TF_MUST_CHECK int tf_node_request_offers(struct tf_node *node, const uint8_t *requester,
                                         struct tf_proto_bytes topic,
                                         struct tf_node_request_offer *out, size_t max, size_t *n);

/* feedback: counts a connector's intro event for the parties' statistics
 * (intro.proposed: both; intro.replied and intro.declined: side's party).
 * Called by node/intro.c in the write transaction. */
TF_MUST_CHECK int tf_node_request_count_intro(struct tf_node *node, enum tf_proto_im_emit e,
                                              const uint8_t parties[2][32], int side);

/* feedback: forgets the feedback records of intro id, removed from the
 * store: as the connector, what its parties reported (parties: the intro's
 * two); as a party (parties NULL), what this node reported.  The counts in
 * the statistics stay.  In the write transaction. */
TF_MUST_CHECK int tf_node_request_forget_feedback(struct tf_node *node, const uint8_t id[32],
                                                  const uint8_t (*parties)[32]);

/* feedback: the statistics kept about contact pk, as a map (for
 * contact.show): { proposed, accepted, declined, helpful, unhelpful } as
 * the connector, and { helped, unhelpful } for the intros pk made for this
 * node as a party (connector_helped, connector_unhelpful).  Writes 7 pairs
 * (keys and values) into the caller's open map. */
TF_MUST_CHECK int tf_node_request_write_stats(struct tf_node *node, const uint8_t pk[32],
                                              struct tf_proto_mp_writer *w);
#define TF_NODE_REQUEST_STATS_PAIRS 2

/* feedback: how many of connector's intros this node reported as helpful. */
TF_MUST_CHECK int tf_node_request_connector_helped(struct tf_node *node,
                                                   const uint8_t connector[32], uint64_t *n);

#endif
