/* SPDX-License-Identifier: MIT */
/*
 * Delivery (docs/PROTOCOL.md §10): the durable outbox and its retries on the
 * sending side; the receive path, dedupe and ACKs on the receiving side.
 *
 * Sending happens only in tf_node_delivery_run, which the node calls right
 * after each group commit, so an envelope never leaves before the state
 * change that caused it is on disk.
 */
#ifndef TF_NODE_DELIVERY_H
#define TF_NODE_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/contact.h"
#include "proto/err.h"
#include "proto/link.h"

/* The longest an envelope may live: the longest intro (365 days) plus the
 * grace its envelopes get (30 days), rounded up.  A received envelope that
 * expires later is refused (ACK reason 1, docs/PROTOCOL.md section 10). */
#define TF_NODE_DELIVERY_TTL_MAX_S (400u * 86400u)

struct tf_node;
struct tf_node_link;
struct tf_node_delivery;

TF_MUST_CHECK int tf_node_delivery_start(struct tf_node *node, struct tf_node_delivery **out);
void tf_node_delivery_stop(struct tf_node_delivery *d);

/* Seals body for `to` and puts it in the outbox, in the current write
 * transaction.  msg_id receives the new envelope's id. */
TF_MUST_CHECK int tf_node_delivery_enqueue(struct tf_node_delivery *d,
                                           const struct tf_node_contact *to, uint16_t type,
                                           const uint8_t *body, size_t len, uint64_t expires,
                                           uint8_t msg_id[static 16]);

/* True if text is a valid note: 1..TF_NODE_MESSAGE_TEXT_MAX bytes of UTF-8
 * without control characters other than newline and tab. */
bool tf_node_note_is_valid(const uint8_t *text, size_t len);

/* Runs after each commit: sends what is due and what waited for a link. */
void tf_node_delivery_run(struct tf_node_delivery *d);

void tf_node_delivery_link_up(struct tf_node_delivery *d, struct tf_node_link *link);
void tf_node_delivery_link_closed(struct tf_node_delivery *d, struct tf_node_link *link);
void tf_node_delivery_dial_failed(struct tf_node_delivery *d, const uint8_t pk[32], int err);

/* An ENVELOPE arrived on link: checks, stores, and queues the ACK (held
 * until commit). */
void tf_node_delivery_envelope(struct tf_node_delivery *d, struct tf_node_link *link,
                               const uint8_t *env, size_t len);

/* An ACK arrived on link. */
void tf_node_delivery_ack(struct tf_node_delivery *d, struct tf_node_link *link,
                          const struct tf_proto_link_msg *m);

#endif
