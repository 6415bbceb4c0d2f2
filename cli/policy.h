/* SPDX-License-Identifier: MIT */
/*
 * twofold policy check|reload|show|test: the introduction policy
 * (docs/POLICY.md).  check parses a file here, with proto/policy, without a
 * node; the others ask the running node over the control socket.
 */
#ifndef TF_CLI_POLICY_H
#define TF_CLI_POLICY_H

#include "cli/args.h"

/* policy check [FILE]: parses FILE (default <home>/policy) offline. */
tf_cli_verb_fn tf_cli_policy_check;
/* policy reload: the node reads its policy file again. */
tf_cli_verb_fn tf_cli_policy_reload;
/* policy show: the node's active rules, each with its line. */
tf_cli_verb_fn tf_cli_policy_show;
/* policy test --connector NAME|unknown --topic T [--mode M]: what the policy
 * would decide, without deciding anything. */
tf_cli_verb_fn tf_cli_policy_test;

#endif
