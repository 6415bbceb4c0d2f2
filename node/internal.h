/* SPDX-License-Identifier: MIT */
/* Helpers shared by several node/ modules and nothing outside node/. */
#ifndef TF_NODE_INTERNAL_H
#define TF_NODE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>

#include "node/store.h" /* requests: enum tf_node_store_table */
#include "proto/link.h"
#include "proto/mp.h"

struct tf_node;
struct tf_node_link;

/* Builds the watch frame body {"event": {"seq": seq, <record pairs>}} from a
 * stored event record (a msgpack fixmap).  *out owned by the caller. */
int tf_node__ctl_event_frame(uint64_t seq, const uint8_t *rec, size_t len,
                             struct tf_proto_buf *out);

/* Events from node/net.c, dispatched by node/node.c. */
void tf_node__on_link_up(struct tf_node *node, struct tf_node_link *link);
void tf_node__on_link_closed(struct tf_node *node, struct tf_node_link *link);
void tf_node__on_dial_failed(struct tf_node *node, const uint8_t pk[32], int err, const char *addr);
void tf_node__on_link_message(struct tf_node *node, struct tf_node_link *link,
                              const struct tf_proto_link_msg *m);

/* Finds the contact named by the string argument key of args (an alias, a
 * text id or a unique id prefix); on failure why says what was wrong. */
struct tf_node_contact;
int tf_node__find_contact(struct tf_node *node, const msgpack_object *args, const char *key,
                          struct tf_node_contact *c, char *why, size_t why_cap);

/* Resolves args[key]: a record id of table t given as 64 hex digits or a
 * unique prefix of at least 8; noun ("intro", "request") names it in why.
 * TF_E_BAD_REQUEST, TF_E_NOT_FOUND, TF_E_AMBIGUOUS or a store error. */

int tf_node__resolve_hex_id(struct tf_node *node, enum tf_node_store_table table,
                            const msgpack_object *args, const char *key, const char *noun,
                            uint8_t id[32], char *why, size_t why_cap);

/* Makes room for one more element in a growing array (*items holds n of
 * *cap elements of size bytes).  TF_OK or TF_E_NOMEM (the array unchanged). */
int tf_node__grow(void **items, size_t *cap, size_t n, size_t size);

/* Writes the contact's alias for pk as str, or nil (pk may be NULL). */
void tf_node__write_alias(struct tf_node *node, const uint8_t *pk, struct tf_proto_mp_writer *w);

/* Writes all n bytes of p to fd, retrying after EINTR.  0 or -errno.
 * (node/keys.c; also used by node/backup.c.) */
int tf_node__write_all(int fd, const uint8_t *p, size_t n);

#endif
