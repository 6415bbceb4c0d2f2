/* SPDX-License-Identifier: MIT */
/*
 * Mailboxes (docs/PROTOCOL.md "Mailboxes"): a node holds sealed envelopes
 * for the tenants its owner hosts, and a node whose card names mailboxes
 * keeps a link to each of them.
 *
 * Mailbox side.  Hosting is the owner's choice (mailbox.host; nobody by
 * default).  A peer UPLOADs an envelope whose to_pk is a tenant; the mailbox
 * stores it and ACKs only after that commit (the ACK is held), or refuses
 * with status DEFERRED and reason NOT_HOSTED or OVER_QUOTA, storing nothing.
 * While a tenant has a link up whose HELLO listed the "mailbox" feature, the
 * mailbox PUSHes what it holds for it (a window of PUSH_WINDOW at a time);
 * the tenant ACKs after its own commit and only then is the envelope
 * deleted.  A push without an ACK is pushed again on the tenant's next link.
 * Envelopes are held at most config.mailbox_ttl_max_s (or until their own
 * expiry, if sooner); a sweep collects the expired ones.
 *
 * Tables (store schema 7), records are canonical msgpack arrays:
 *   mbox_tenants  tenant pk (32) -> [quota_bytes, quota_envelopes, added,
 *                                    last_seen, bytes, envelopes]  (uints)
 *   mbox_envs     tenant pk (32) || msg_id (16)
 *                 -> [uploader: bin 32, received: uint, held_until: uint,
 *                     envelope: bin]
 *   mbox_expiry   u64be(held_until) || tenant pk || msg_id -> empty
 * A tenant record's bytes and envelopes are the sums over its mbox_envs rows,
 * written in the same transaction as every row change, so a quota check is
 * one read.
 *
 * Tenant side.  For each mailbox its own card names, the node keeps a link:
 * it dials the mailbox when no link is up, again after each failure with a
 * backoff doubling from 1 s to config.mailbox_retry_max_ms (jittered).  The
 * link's keepalive is node/net.c's (a PING after a third of idle_timeout_ms
 * of silence, dead after dead_link_ms without the PONG).
 */
#ifndef TF_NODE_MAILBOX_H
#define TF_NODE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>

#include "proto/err.h"
#include "proto/link.h"
#include "proto/mp.h"

struct tf_node;
struct tf_node_link;
struct tf_node_mailbox;

/* Starts the expiry sweep and the tenant side's dial timer.  *out is owned
 * by the node (tf_node_mailbox_stop). */
TF_MUST_CHECK int tf_node_mailbox_start(struct tf_node *node, struct tf_node_mailbox **out);

/* Closes the timers; the module is freed once they have closed. */
void tf_node_mailbox_stop(struct tf_node_mailbox *mb);

/* Runs once per loop turn before the commit (as delivery does): pushes
 * what waits for connected tenants (held until the commit). */
void tf_node_mailbox_run(struct tf_node_mailbox *mb);

void tf_node_mailbox_link_up(struct tf_node_mailbox *mb, struct tf_node_link *link);
void tf_node_mailbox_link_closed(struct tf_node_mailbox *mb, struct tf_node_link *link);
void tf_node_mailbox_dial_failed(struct tf_node_mailbox *mb, const uint8_t pk[32], int err);

/* An UPLOAD arrived on link (bytes borrowed for the call): stored and ACKed
 * after the commit, or refused (ACK status DEFERRED or REJECTED). */
void tf_node_mailbox_upload(struct tf_node_mailbox *mb, struct tf_node_link *link,
                            const uint8_t *env, size_t len);

/* The node's own envelope for one of its tenants who is not connected:
 * held here as an upload by the node itself would be, in the write
 * transaction.  TF_OK with the ACK the node would have sent in *status and
 * *reason; TF_E_AGAIN when it could not be stored now (try later). */
TF_MUST_CHECK int tf_node_mailbox_deposit(struct tf_node_mailbox *mb, const uint8_t *env,
                                          size_t len, enum tf_proto_ack_status *status,
                                          enum tf_proto_ack_reason *reason);

/* An ACK arrived on link: true if it answered one of our PUSHes (the
 * envelope is then deleted), false if it is for the delivery module. */
bool tf_node_mailbox_ack(struct tf_node_mailbox *mb, struct tf_node_link *link,
                         const struct tf_proto_link_msg *m);

/* The control verbs mailbox.host, mailbox.unhost, mailbox.list,
 * mailbox.use and mailbox.status (docs/CONTROL.md "Mailboxes"); *handled
 * says whether verb was one of them. */
TF_MUST_CHECK int tf_node_mailbox_verb(struct tf_node *node, const char *verb, size_t verb_len,
                                       const msgpack_object *args, struct tf_proto_mp_writer *w,
                                       char *why, size_t why_cap, bool *handled);

#endif
