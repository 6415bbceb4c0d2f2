/* SPDX-License-Identifier: MIT */
/* `twofold web`: starts twofold-web (cli/web/web.h), the node's local page. */
#ifndef TF_CLI_WEB_VERB_H
#define TF_CLI_WEB_VERB_H

#include "cli/args.h"

/* Replaces this process with twofold-web, found next to the running twofold
 * (else on PATH), handing it --home and argv.  Returns only on failure, with
 * an exit status after saying why. */
int tf_cli_web_verb(struct tf_cli *cli, int argc, char **argv);

#endif
