/* SPDX-License-Identifier: MIT */
/*
 * twofold message, messages and outbox: notes between contacts, which the
 * node stores and delivers in the background, over the control socket.
 */
#ifndef TF_CLI_MESSAGE_H
#define TF_CLI_MESSAGE_H

#include "cli/args.h"

/* message NAME|ID TEXT|-: queues a note to a contact. */
tf_cli_verb_fn tf_cli_message_send;
/* messages [NAME|ID]: the notes sent and received, oldest first. */
tf_cli_verb_fn tf_cli_message_list;
/* outbox: the envelopes the node is still trying to deliver. */
tf_cli_verb_fn tf_cli_message_outbox;

#endif
