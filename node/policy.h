/* SPDX-License-Identifier: MIT */
/*
 * The owner's policy (docs/POLICY.md) in the running node: the rules file
 * <home>/policy loaded at start (an error refuses the start) and on SIGHUP or
 * `policy.reload` (an error keeps the previous rules), the limit counters in
 * the store, automatic answers to proposals, and the policy verbs.
 */
#ifndef TF_NODE_POLICY_H
#define TF_NODE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>

#include "node/contact.h"
#include "proto/err.h"
#include "proto/intro.h"
#include "proto/mp.h"
#include "proto/policy.h"

struct tf_node;

#define TF_NODE_HOME_POLICY "policy"

/* Loads <home>/policy into node->policy (none if the file is missing).  On
 * error returns it with why = "FILE:LINE:COLUMN: what" and leaves the active
 * rules unchanged. */
TF_MUST_CHECK int tf_node_policy_load(struct tf_node *node, char *why, size_t why_cap);

void tf_node_policy_free(struct tf_node *node);

/* Decides a proposal from connector_pk on topic/mode.  With record, a
 * decision by a limited rule is counted (in the current write transaction);
 * without, nothing is written (`policy test`). */
TF_MUST_CHECK int tf_node_policy_decide(struct tf_node *node, const uint8_t connector_pk[32],
                                        struct tf_proto_bytes topic, enum tf_proto_intro_mode mode,
                                        bool record, struct tf_proto_policy_decision *out);

/* requests: what else a decision may depend on (zero: an introduction that
 * answers no request). */
struct tf_node_policy_facts {
    bool is_request;      /* deciding a request; connector_pk is its asker */
    bool answers_request; /* the proposal answers one of the owner's open requests */
    enum tf_proto_policy_trust offer_trust; /* requests: best trust among contacts offering */
};

/* tf_node_policy_decide with facts (borrowed). */
TF_MUST_CHECK int tf_node_policy_decide_ex(struct tf_node *node, const uint8_t connector_pk[32],
                                           struct tf_proto_bytes topic,
                                           enum tf_proto_intro_mode mode,
                                           const struct tf_node_policy_facts *facts, bool record,
                                           struct tf_proto_policy_decision *out);

/* requests: the node's trust level as the policy sees it. */
enum tf_proto_policy_trust tf_node_policy_trust(enum tf_node_trust t);

/* Collects policy counters that no longer count: those older than their
 * rule's window (a decision at time t counts while t > now - window) and
 * those of rules no longer in the policy (a rule whose conditions change gets
 * a new key).  Deletes at most limit of them, in the write transaction, and
 * says how many in *deleted. */
TF_MUST_CHECK int tf_node_policy_collect(struct tf_node *node, uint64_t now, size_t limit,
                                         size_t *deleted);

/* The policy verbs (policy.reload, policy.show, policy.test); *handled says
 * whether verb was one of them. */
TF_MUST_CHECK int tf_node_policy_verb(struct tf_node *node, const char *verb, size_t verb_len,
                                      const msgpack_object *args, struct tf_proto_mp_writer *w,
                                      char *why, size_t why_cap, bool *handled);

#endif
