/* SPDX-License-Identifier: MIT */
/*
 * Links between nodes (docs/PROTOCOL.md §9): the TCP listener, outbound
 * dialling through a contact's card addresses, the Noise XX handshake with
 * card checks, framing, link messages, timeouts and connection limits.
 *
 * The net module owns every link.  It tells the node what happens through
 * tf_node_net_events (link up, dial failed, envelope, ACK, PONG), and the node
 * sends through tf_node_net_send while a link is up.  Sent messages are
 * queued and written once per loop turn, by tf_node_net_committed, in one
 * write per link; messages whose sending must wait for the group commit
 * (ACKs, envelopes) are queued as held and go out only after it.
 */
#ifndef TF_NODE_NET_H
#define TF_NODE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/link.h"
#include "proto/mp.h"

struct tf_node;
struct tf_node_net;
struct tf_node_link;

/* Starts listening on host:port (numeric IP), or with listen NULL, starts
 * without a listener (links are only dialled).  *out is owned by the node. */
TF_MUST_CHECK int tf_node_net_start(struct tf_node *node, const char *listen,
                                    struct tf_node_net **out);

/* Closes the listener and every link (freed through the loop). */
void tf_node_net_stop(struct tf_node_net *net);

/* The link to pk that is up (handshake and HELLOs done), or NULL. */
struct tf_node_link *tf_node_net_find(struct tf_node_net *net, const uint8_t pk[static 32]);

/* Makes sure a link to pk is up or being made, dialling the addresses of the
 * card (borrowed for the call) in order.  The outcome arrives as
 * tf_node__on_link_up or tf_node__on_dial_failed. */
void tf_node_net_dial(struct tf_node_net *net, const uint8_t pk[static 32],
                      const struct tf_proto_bytes *addrs, size_t n_addrs);

/* The same, saying whether the dial budgets for strangers apply (a mailbox
 * named by a contact's card is dialled as the contact would be). */
void tf_node_net_dial_as(struct tf_node_net *net, const uint8_t pk[static 32],
                         const struct tf_proto_bytes *addrs, size_t n_addrs, bool stranger);

/* Queues a link message (plaintext, copied) on an up link, to be written at
 * the end of the loop turn.  A held message is dropped if that turn's commit
 * fails. */
TF_MUST_CHECK int tf_node_net_send(struct tf_node_link *link, const struct tf_proto_buf *msg,
                                   bool held);

/* Ends a loop turn (the node calls it after every commit attempt, and in a
 * turn that wrote nothing): writes each link's queued messages; held ones
 * are dropped when rc reports a failed commit (the sender will retry). */
void tf_node_net_committed(struct tf_node_net *net, int rc);

/* Ends a loop turn whose batch waits for a later commit (waitcommit):
 * writes each link's queued messages up to the first held one (PINGs,
 * PONGs), and leaves the held ones for tf_node_net_committed. */
void tf_node_net_flush_unheld(struct tf_node_net *net);

/* Envelopes sent on this link and not yet acknowledged.  Setting a larger
 * number starts (or keeps) the wait for an ACK that dead_link_ms bounds; a
 * smaller one is progress and restarts it. */
uint32_t tf_node_link_in_flight(const struct tf_node_link *link);
void tf_node_link_set_in_flight(struct tf_node_link *link, uint32_t n);
const uint8_t *tf_node_link_peer(const struct tf_node_link *link);
const char *tf_node_link_addr(const struct tf_node_link *link);
/* True if the peer's HELLO listed the "mailbox" feature (UPLOAD and PUSH). */
bool tf_node_link_mailbox(const struct tf_node_link *link);
/* direct: true if both HELLOs listed the "direct" feature (DIRECT messages
 * may go either way on this link). */
bool tf_node_link_direct(const struct tf_node_link *link);

/* Writes the status "peers" array (docs/CONTROL.md). */
void tf_node_net_write_peers(struct tf_node_net *net, struct tf_proto_mp_writer *w);

/* How often each link budget triggered since start (status "limits"). */
struct tf_node_net_counters {
    uint64_t queue_full;      /* links closed: the peer did not read (max_link_queue_bytes) */
    uint64_t ping_limited;    /* links closed: PINGs over ping_rate_per_s/ping_burst */
    uint64_t accept_limited;  /* connections refused: accept_rate_per_s/_per_prefix */
    uint64_t refused;         /* connections refused: a link budget full, nobody to evict */
    uint64_t evicted;         /* links closed to make room (stranger or handshake) */
    uint64_t stranger_idle;   /* stranger links closed: no envelope for stranger_idle_ms */
    uint64_t identity_capped; /* links closed: over max_links_per_identity */
    uint64_t dials_refused;   /* dials or addresses skipped by a dial budget */
    uint64_t dead;            /* links closed: no PONG or ACK within dead_link_ms */
};

/* Writes the status "limits" map: the counters above by name. */
void tf_node_net_write_limits(struct tf_node_net *net, struct tf_proto_mp_writer *w);

#endif
