/* SPDX-License-Identifier: MIT */
/*
 * twofold config: the node's settings, read and changed with or without a
 * running node.  `listen` and `advertise` live in the store (the card holds
 * the advertised addresses); every other setting is a line of HOME/config
 * (node/config.h).  Values are checked with the node's own rules
 * (node/config.c, node/addr.c) before anything is written.
 */
#ifndef TF_CLI_CONFIG_H
#define TF_CLI_CONFIG_H

#include "cli/args.h"

/* twofold config list */
tf_cli_verb_fn tf_cli_config_list;
/* twofold config get KEY */
tf_cli_verb_fn tf_cli_config_get;
/* twofold config set KEY VALUE */
tf_cli_verb_fn tf_cli_config_set;
/* twofold config unset KEY */
tf_cli_verb_fn tf_cli_config_unset;

#endif
