/* SPDX-License-Identifier: MIT */
/*
 * The control socket server (docs/CONTROL.md): accepts the owner's CLI
 * connections on <home>/control.sock, decodes request frames, runs verbs
 * (node/verbs.h) and writes replies.  Replies to requests that changed state
 * are held until the node's group commit has made the change durable
 * (tf_node_ctl_committed).
 */
#ifndef TF_NODE_CTL_H
#define TF_NODE_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/mp.h"

struct tf_node;
struct tf_node_ctl;

/* Most connections at once, in all and from one uid. */
#define TF_NODE_CTL_CLIENTS_MAX 64
#define TF_NODE_CTL_CLIENTS_PER_UID 16
/* A client whose unread output passes this is disconnected. */
#define TF_NODE_CTL_OUTPUT_MAX (64u * 1024u * 1024u)
/* `watch` replays the event log a page of this many events per loop turn,
 * the next page once the client's unwritten output is at most
 * TF_NODE_CTL_BACKLOG_LOW bytes (docs/CONTROL.md). */
#define TF_NODE_CTL_EVENTS_PAGE 256
#define TF_NODE_CTL_BACKLOG_LOW (256u * 1024u)

/* Binds path (0600, inside the 0700 home; a stale socket file is replaced)
 * and starts listening.  *out is owned by the node; tf_node_ctl_stop frees it
 * through the loop. */
TF_MUST_CHECK int tf_node_ctl_start(struct tf_node *node, const char *path,
                                    struct tf_node_ctl **out);

/* Closes the listener and every connection; memory is freed in the close
 * callbacks, so the loop must run afterwards.  Unlinks the socket file. */
void tf_node_ctl_stop(struct tf_node_ctl *ctl);

/* Called at the end of every loop turn, after the group commit attempt (rc
 * is its result; TF_OK in a turn that wrote nothing).  On success held
 * replies go out; on failure each held reply is replaced by an error reply
 * (the change was lost).  Then each client's queued frames are written, in
 * as few writes as the queue allows, and a watcher replaying the event log
 * that has taken its last page gets the next one (read from the store, which
 * then has no write transaction open). */
void tf_node_ctl_committed(struct tf_node_ctl *ctl, int rc);

/* waitcommit: true if a reply waits for the group commit (held and durable;
 * one held only behind a reply still being made, a ping's, does not). */
bool tf_node_ctl_holding(const struct tf_node_ctl *ctl);

/* A request whose reply comes later (e.g. ping, which waits for the
 * network).  Created by tf_node_ctl_defer while a verb runs; the owner must
 * call tf_node_ctl_complete exactly once (it frees the handle).  If the client
 * goes away meanwhile, completing is a harmless no-op. */
struct tf_node_ctl_deferred;

/* The request being handled right now (set only while a verb runs). */
struct tf_node_ctl_request;

/* Defers the reply to req; the verb then returns TF_E_AGAIN.  NULL on
 * allocation failure (the verb should fail instead). */
struct tf_node_ctl_deferred *tf_node_ctl_defer(struct tf_node_ctl_request *req);

/* Completes a deferred reply: rc == TF_OK sends result (one encoded msgpack
 * value, borrowed); otherwise an error reply with message why. */
void tf_node_ctl_complete(struct tf_node_ctl_deferred *d, int rc, const struct tf_proto_buf *result,
                          const char *why);

/* Queues framed event seq for every watching client but those still
 * replaying the log (they will read it from the store) and those whose watch
 * reply told a seq at or past it; it is written by the next
 * tf_node_ctl_committed. */
void tf_node_ctl_broadcast(struct tf_node_ctl *ctl, uint64_t seq, const uint8_t *frame, size_t len);

#endif
