/* SPDX-License-Identifier: MIT */
/*
 * twofold mailbox host|unhost|list|use|status: holding sealed envelopes for
 * people you host, and being reached through mailboxes yourself.
 */
#ifndef TF_CLI_MAILBOX_H
#define TF_CLI_MAILBOX_H

#include "cli/args.h"

/* mailbox host NAME|ID [--quota SIZE]: hold envelopes for a contact. */
tf_cli_verb_fn tf_cli_mailbox_host;
/* mailbox unhost NAME|ID: stop, and drop what is held for them. */
tf_cli_verb_fn tf_cli_mailbox_unhost;
/* mailbox list: the tenants, what is held for each, when last seen. */
tf_cli_verb_fn tf_cli_mailbox_list;
/* mailbox use CARD|- [--remove]: list (or take off) a mailbox on your card. */
tf_cli_verb_fn tf_cli_mailbox_use;
/* mailbox status: your mailboxes and whether the node is linked to each. */
tf_cli_verb_fn tf_cli_mailbox_status;

#endif
