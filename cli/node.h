/* SPDX-License-Identifier: MIT */
/*
 * twofold status and twofold watch: the running node itself, over the
 * control socket.
 */
#ifndef TF_CLI_NODE_H
#define TF_CLI_NODE_H

#include "cli/args.h"

/* status: id, listen address, uptime, store size, counts. */
tf_cli_verb_fn tf_cli_node_status;
/* watch [--since SEQ]: prints events as they happen until interrupted. */
tf_cli_verb_fn tf_cli_node_watch;

#endif
