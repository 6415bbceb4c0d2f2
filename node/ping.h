/* SPDX-License-Identifier: MIT */
/*
 * `twofold ping`: reach a contact's node over an authenticated link, round-trip
 * a PING, and report the time or a precise reason it failed.
 */
#ifndef TF_NODE_PING_H
#define TF_NODE_PING_H

#include <stddef.h>
#include <stdint.h>

#include "node/contact.h"
#include "proto/err.h"

struct tf_node;
struct tf_node_link;
struct tf_node_ctl_request;

/* How long a ping may take in all (connect, handshake, PING, PONG). */
#define TF_NODE_PING_TIMEOUT_MS 15000

/* Starts a ping of contact c for the request req.  Returns TF_E_AGAIN when
 * the reply was deferred (it comes later), or an error with why set. */
TF_MUST_CHECK int tf_node_ping_start(struct tf_node *node, struct tf_node_ctl_request *req,
                                     const struct tf_node_contact *c, char *why, size_t why_cap);

void tf_node_ping_link_up(struct tf_node *node, struct tf_node_link *link);
void tf_node_ping_dial_failed(struct tf_node *node, const uint8_t pk[32], int err,
                              const char *addr);
void tf_node_ping_pong(struct tf_node *node, struct tf_node_link *link, uint64_t nonce);

/* Fails every pending ping (the node is stopping) and closes their timers. */
void tf_node_ping_stop_all(struct tf_node *node);

#endif
