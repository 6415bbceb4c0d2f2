/* SPDX-License-Identifier: MIT */
/*
 * twofold backup FILE and twofold restore FILE [HOME]: the CLI side of
 * node/backup.h (arguments, the passphrase, what is printed).  Neither needs
 * the node: a backup reads the store read-only, even while the node runs.
 */
#ifndef TF_CLI_BACKUP_H
#define TF_CLI_BACKUP_H

#include "cli/args.h"

/* twofold backup FILE [--force] [--passphrase-file FILE] */
tf_cli_verb_fn tf_cli_backup_write;
/* twofold restore FILE [HOME] [--passphrase-file FILE] */
tf_cli_verb_fn tf_cli_backup_restore;

#endif
