/* SPDX-License-Identifier: MIT */
#include "cli/qr.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/render.h"

#ifdef TF_HAVE_QRENCODE

#include <qrencode.h>

/* The quiet zone the QR specification asks for, in modules. */
#define QUIET 4

static bool dark(const QRcode *qr, int x, int y)
{
    if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
        return false;
    return (qr->data[(size_t)y * (size_t)qr->width + (size_t)x] & 1) != 0;
}

bool tf_cli_qr_available(void)
{
    return true;
}

int tf_cli_qr_print(const struct tf_cli *cli, const char *text)
{
    /* Level L keeps the code small; a phone camera reading a screen rarely
     * needs more error correction. */
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    if (qr == NULL) {
        if (errno == ERANGE)
            return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL,
                                      "the card is too long for a QR code; share the text instead");
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot make the QR code: %s",
                                  strerror(errno));
    }
    for (int y = -QUIET; y < qr->width + QUIET; y += 2) {
        if (cli->color)
            fputs("\033[97;40m", stdout);
        for (int x = -QUIET; x < qr->width + QUIET; x++) {
            bool top = !dark(qr, x, y), bottom = !dark(qr, x, y + 1);
            fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", stdout);
        }
        if (cli->color)
            fputs("\033[0m", stdout);
        putchar('\n');
    }
    QRcode_free(qr);
    return TF_CLI_EXIT_OK;
}

#else

bool tf_cli_qr_available(void)
{
    return false;
}

int tf_cli_qr_print(const struct tf_cli *cli, const char *text)
{
    (void)text;
    return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL,
                              "this twofold was built without QR support (libqrencode); share "
                              "the card text instead");
}

#endif
