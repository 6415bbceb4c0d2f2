/* SPDX-License-Identifier: MIT */
/*
 * twofold status, watch and ping: the running node itself and its links to
 * contacts' nodes, over the control socket.
 */
#ifndef TF_CLI_NODE_H
#define TF_CLI_NODE_H

#include "cli/args.h"

/* status: id, listen address, uptime, store size, counts, peers. */
tf_cli_verb_fn tf_cli_node_status;
/* watch [--since SEQ]: prints events as they happen until interrupted. */
tf_cli_verb_fn tf_cli_node_watch;
/* ping NAME|ID: has the node reach a contact's node and prints the round trip. */
tf_cli_verb_fn tf_cli_node_ping;

#endif
