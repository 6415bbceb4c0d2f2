/* SPDX-License-Identifier: MIT */
/*
 * The control verbs (docs/CONTROL.md): each validates its arguments, then
 * changes state (in the node's current write transaction) and writes its
 * result.  A verb that fails has changed nothing.
 */
#ifndef TF_NODE_VERBS_H
#define TF_NODE_VERBS_H

#include <stddef.h>

#include <msgpack/object.h>

#include "proto/err.h"
#include "proto/mp.h"

struct tf_node;

/* Listing verbs (contact.list, message.list) answer a page of at most
 * `limit` items: this many unless the client asks (docs/CONTROL.md), and
 * never more than TF_NODE_VERBS_PAGE_MAX. */
#define TF_NODE_VERBS_PAGE_DEFAULT 100
#define TF_NODE_VERBS_PAGE_MAX 1000

/* Runs verb with args (a map, or NULL when absent).  On success writes exactly
 * one msgpack value (the result) to w.  On failure returns the error and puts
 * a one-line message in why; what was written to w is discarded. */
struct tf_node_ctl_request;
/* req identifies the request for verbs that reply later (tf_node_ctl_defer):
 * they return TF_E_AGAIN. */
TF_MUST_CHECK int tf_node_verbs_run(struct tf_node *node, struct tf_node_ctl_request *req,
                                    const char *verb, size_t verb_len, const msgpack_object *args,
                                    struct tf_proto_mp_writer *w, char *why, size_t why_cap);

/* Writes the contact object of docs/CONTROL.md for c (with its card's text
 * form when with_card). */
struct tf_node_contact;
void tf_node_verbs_write_contact(struct tf_proto_mp_writer *w, const struct tf_node_contact *c,
                                 bool with_card);

#endif
