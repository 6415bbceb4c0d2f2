/* SPDX-License-Identifier: MIT */
/*
 * The verbs that work without a running node: they create the home or read
 * the store read-only (which LMDB allows while twofoldd has it open).
 */
#ifndef TF_CLI_OFFLINE_H
#define TF_CLI_OFFLINE_H

#include "cli/args.h"

/* twofold init --name NAME [--listen HOST:PORT] [--advertise HOST:PORT] */
tf_cli_verb_fn tf_cli_offline_init;
/* twofold id */
tf_cli_verb_fn tf_cli_offline_id;
/* twofold card [--qr] */
tf_cli_verb_fn tf_cli_offline_card;

#endif
