/* SPDX-License-Identifier: MIT */
/*
 * Delivery (docs/PROTOCOL.md §10): the durable outbox and its retries on the
 * sending side; the receive path, dedupe and ACKs on the receiving side.
 *
 * Sending happens only in tf_node_delivery_run, which the node calls right
 * after each group commit, so an envelope never leaves before the state
 * change that caused it is on disk.
 *
 * Budgets (node/config.h, "delivery" and "messages" blocks): outbox entries
 * per recipient and for non-contacts together (checked at enqueue), msg ids
 * remembered (seen_max, checked before an envelope is taken), dials per entry
 * to an address from a stranger's card (stranger_dials_max), and notes
 * received per contact and in all (messages_max_per_contact, messages_max:
 * beyond, a note gets no ACK and its sender retries).  The outbox and
 * messages counts are kept in memory (built at start, updated with this
 * module's writes), so each check is O(1).  Notes older than
 * messages_retention_s are collected by a sweep (hourly at most).
 * Duplicates are detected on (sender, msg_id) once the envelope is
 * authenticated.
 *
 * Mailboxes (docs/PROTOCOL.md "Mailboxes"): an envelope goes on a link to
 * its recipient that is up; else as UPLOAD on an up link to one of the
 * recipient's mailboxes (card order) that has not refused or lost one for
 * it lately; else the recipient's own addresses are dialled, and when that
 * fails, its mailboxes.  A mailbox's ACK ends delivery (custody); its
 * DEFERRED answer keeps the envelope and tries again another way.  When
 * this node is itself the recipient's mailbox, it holds the envelope in its
 * own mailbox tables (node/mailbox.c).
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

/* The longest the node keeps trying to deliver an envelope to someone who
 * is not a contact (the decline of a stranger's proposal or request),
 * however long what it answers asked for: each holds a share of
 * outbox_max_strangers until it is acknowledged or expires. */
#define TF_NODE_DELIVERY_STRANGER_TTL_S 86400u

struct tf_node;
struct tf_node_link;
struct tf_node_delivery;

TF_MUST_CHECK int tf_node_delivery_start(struct tf_node *node, struct tf_node_delivery **out);
void tf_node_delivery_stop(struct tf_node_delivery *d);

/* Puts body for `to` in the outbox, in the current write transaction: kept
 * as it is, to go unsealed on a direct link to `to` and sealed (once, when
 * first needed) elsewhere; sealed at once when config.direct_envelopes is 0
 * or body is empty.  msg_id receives the new envelope's id.  TF_E_TOO_LONG, with a
 * log line naming the budget, when the outbox already holds
 * config.outbox_max_per_peer entries for `to`, or (when `to` is not a
 * contact) config.outbox_max_strangers entries for non-contacts together;
 * nothing is written then. */
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
 * until commit).  Bytes that do not decode as an envelope are refused with
 * ACK reason 1 when their msg_id can be read (tf_proto_envelope_peek_id),
 * else dropped; an unknown inner type gets reason 8. */
void tf_node_delivery_envelope(struct tf_node_delivery *d, struct tf_node_link *link,
                               const uint8_t *env, size_t len);

/* mailbox: a PUSH arrived on link: an envelope a mailbox held for us.  It
 * is taken exactly as an ENVELOPE is (the seal, the signature, the expiry,
 * the dedupe on (sender, msg_id) and every budget), except that its sender
 * need not be the link's peer; the ACK goes back on link after the commit.
 * Any peer may push: it can only hand over envelopes their senders sealed
 * and signed, and each is taken at most once. */
void tf_node_delivery_pushed(struct tf_node_delivery *d, struct tf_node_link *link,
                             const uint8_t *env, size_t len);

/* direct: a DIRECT message arrived on link, which negotiated the feature
 * (node/net.c checks that, and closes the link on a message that does not
 * decode).  Its sender is the link's peer and its recipient this node; it is
 * taken exactly as an opened ENVELOPE is (the expiry, the dedupe on (sender,
 * msg_id), the statements it carries verified, every budget), and the same
 * ACK goes back: reason 3 when expired, 8 for an unknown type. */
void tf_node_delivery_direct(struct tf_node_delivery *d, struct tf_node_link *link,
                             const uint8_t *buf, size_t len);

/* An ACK arrived on link: from the recipient, or from the mailbox an
 * envelope was uploaded to on that link (custody: delivered as far as the
 * sender is concerned).  A mailbox's DEFERRED ACK keeps the envelope and
 * sends it again at once another way, leaving that mailbox out for that
 * recipient for a backoff. */
void tf_node_delivery_ack(struct tf_node_delivery *d, struct tf_node_link *link,
                          const struct tf_proto_link_msg *m);

/*
 * ackdefer: an ACK that ends an entry's delivery (its envelope taken by the
 * recipient or, custody, by a mailbox) does not write the entry's delete at
 * once: the entry is marked acknowledged in memory (never sent again, not
 * listed by outbox.list, not counted in status's outbox or the outbox
 * budgets) and its delete goes into the next write transaction the node
 * commits for any other reason, or into one of its own ack_defer_ms after
 * the first waiting delete, or at once when ack_defer_max deletes wait.  A
 * crash before that commit only makes the node send the envelope again
 * after its restart, which the receiver takes as a duplicate and
 * acknowledges again.  Notes are deleted at once: their outcome is an event.
 */

/* Called right before the node commits: writes the waiting deletes into the
 * open write transaction if there is one (the turn commits anyway), if the
 * flush timer fired, the budget was hit or a waiting entry came due, or if
 * force (a clean stop).  Opens a transaction if needed. */
void tf_node_delivery_flush(struct tf_node_delivery *d, bool force);

/* Called after every commit (rc: its result, TF_OK when nothing was
 * written): deletes written by the flush are forgotten when committed, and
 * wait again when their batch was lost.  d may be NULL. */
void tf_node_delivery_committed(struct tf_node_delivery *d, int rc);

/* True if msg_id is acknowledged and its delete not committed yet: the
 * outbox still holds it, but it is no longer queued.  d may be NULL. */
bool tf_node_delivery_acked(const struct tf_node_delivery *d, const uint8_t msg_id[static 16]);

/* How many such deletes wait (none are written outside a commit). */
size_t tf_node_delivery_acks_pending(const struct tf_node_delivery *d);

/* ackdefer: true if the open write transaction holds only outbox deletes
 * made because ACKs arrived (and their bookkeeping): a commit of it promises
 * nothing to anyone.  For the node's commits_acks_only counter.  d may be
 * NULL (false). */
bool tf_node_delivery_acks_only(const struct tf_node_delivery *d);

#endif
