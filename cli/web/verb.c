/* SPDX-License-Identifier: MIT */
#include "cli/web/verb.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/render.h"

int tf_cli_web_verb(struct tf_cli *cli, int argc, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    /* argv, plus the program, --home DIR and the final NULL. */
    char **args = calloc((size_t)argc + 5, sizeof *args);
    if (args == NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    size_t n = 0;
    args[n++] = "twofold-web";
    if (cli->home_arg != NULL) {
        args[n++] = "--home";
        args[n++] = (char *)(uintptr_t)cli->home_arg;
    }
    for (int i = 0; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    /* Installed and built, twofold-web sits next to twofold. */
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/twofold-web", self);
            execv(path, args);
        }
    }
    execvp("twofold-web", args);
    int e = errno;
    free(args);
    return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                              "cannot start twofold-web (%s); was twofold built with "
                              "libmicrohttpd?",
                              strerror(e));
}
