/* SPDX-License-Identifier: MIT */
/*
 * Introductions, over the control socket: propose, intros, show, withdraw and
 * intros rm (the connector's side), inbox, accept, decline and inbox rm (a
 * party's side).
 * Arguments that can be checked here (topics, texts, durations, intro ids,
 * asking someone to meet themselves) are checked before the node is asked.
 */
#ifndef TF_CLI_INTRO_H
#define TF_CLI_INTRO_H

#include "cli/args.h"

/* propose A B --topic TOPIC [--note TEXT | --note-a TEXT --note-b TEXT]
 *         [--about-a TEXT] [--about-b TEXT] [--sequential] [--expires DURATION]
 *         [--wait] */
tf_cli_verb_fn tf_cli_intro_propose;
/* intros [--state STATE] [--limit N] [--before INTRO] */
tf_cli_verb_fn tf_cli_intro_list;
/* intros rm INTRO */
tf_cli_verb_fn tf_cli_intro_rm;
/* show INTRO */
tf_cli_verb_fn tf_cli_intro_show;
/* withdraw INTRO */
tf_cli_verb_fn tf_cli_intro_withdraw;
/* inbox [--all] [--limit N] [--before INTRO] */
tf_cli_verb_fn tf_cli_intro_inbox;
/* inbox rm INTRO */
tf_cli_verb_fn tf_cli_intro_inbox_rm;
/* accept INTRO [--note TEXT] */
tf_cli_verb_fn tf_cli_intro_accept;
/* decline INTRO [--reason TEXT] */
tf_cli_verb_fn tf_cli_intro_decline;

#endif
