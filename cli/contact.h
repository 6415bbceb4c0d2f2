/* SPDX-License-Identifier: MIT */
/*
 * twofold contact add|list|show|set|rm|block|unblock: the contact verbs, over the control
 * socket.  Arguments that can be checked here (aliases, trust names, tags,
 * the card's checksum and signature) are checked before the node is asked.
 */
#ifndef TF_CLI_CONTACT_H
#define TF_CLI_CONTACT_H

#include "cli/args.h"

/* contact add CARD|- [--alias NAME] [--trust TRUST] [--tag TAG]... */
tf_cli_verb_fn tf_cli_contact_add;
/* contact list */
tf_cli_verb_fn tf_cli_contact_list;
/* contact show NAME|ID */
tf_cli_verb_fn tf_cli_contact_show;
/* contact set NAME|ID [--alias A | --no-alias] [--trust T] [--tag T... | --no-tags]
 *                     [--add-tag T]... [--rm-tag T]... [--block | --unblock] */
tf_cli_verb_fn tf_cli_contact_set;
/* contact rm NAME|ID */
tf_cli_verb_fn tf_cli_contact_rm;
/* contact block NAME|ID: drop their proposals (contact.set blocked=true) */
tf_cli_verb_fn tf_cli_contact_block;
/* contact unblock NAME|ID: take their proposals again */
tf_cli_verb_fn tf_cli_contact_unblock;

#endif
