/* SPDX-License-Identifier: MIT */
/*
 * Requests for an introduction, over the control socket: ask (the asker's
 * side), requests and its show, decline and withdraw.
 */
#ifndef TF_CLI_REQUEST_H
#define TF_CLI_REQUEST_H

#include "cli/args.h"

/* ask CONNECTOR --seeking TAG [--note TEXT] [--expires DURATION] */
tf_cli_verb_fn tf_cli_request_ask;
/* requests: list the requests sent and received */
tf_cli_verb_fn tf_cli_request_list;
/* requests show REQUEST */
tf_cli_verb_fn tf_cli_request_show;
/* requests decline REQUEST */
tf_cli_verb_fn tf_cli_request_decline;
/* requests withdraw REQUEST */
tf_cli_verb_fn tf_cli_request_withdraw;

/* suggest [--for CONTACT] [--topic TAG] [--limit N] */
tf_cli_verb_fn tf_cli_request_suggest;

/* feedback INTRO --helped yes|no [--note TEXT] */
tf_cli_verb_fn tf_cli_request_feedback;

#endif
