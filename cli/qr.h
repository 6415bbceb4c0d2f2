/* SPDX-License-Identifier: MIT */
/*
 * Terminal QR codes (libqrencode, optional at build time: TF_HAVE_QRENCODE).
 */
#ifndef TF_CLI_QR_H
#define TF_CLI_QR_H

#include <stdbool.h>

#include "cli/args.h"

/* Draws text as a QR code on stdout with Unicode half blocks, two modules per
 * character cell, with a quiet zone.  Light modules are drawn as blocks (the
 * foreground), dark ones as blanks; with colour allowed, the colours are set
 * to white on black so the code also scans on a light terminal.  Returns an
 * exit status: TF_CLI_EXIT_FAIL if the text does not fit in a QR code or QR
 * support was not built in. */
/* True if QR support was built in. */
bool tf_cli_qr_available(void);

int tf_cli_qr_print(const struct tf_cli *cli, const char *text);

#endif
