/* SPDX-License-Identifier: MIT */
/*
 * twofold profile [set]: your own card as the running node holds it, and
 * changing it (the node re-signs it and sends it to your contacts).
 */
#ifndef TF_CLI_PROFILE_H
#define TF_CLI_PROFILE_H

#include "cli/args.h"

/* profile: id, name, addresses, offers, seeks, card number, listen, card. */
tf_cli_verb_fn tf_cli_profile_show;
/* profile set [--name N] [--offers T,...] [--seeks T,...] [--advertise A,...]
 * [--listen A]: changes the card; only the options given are sent. */
tf_cli_verb_fn tf_cli_profile_set;

#endif
