/* SPDX-License-Identifier: MIT */
/* twofold: the command-line client.  At this stage it only answers --help and
 * --version; the node issue gives it its verbs. */
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: twofold [--home DIR] [--json] VERB [ARGS...]\n"
                 "\n"
                 "Double opt-in introductions: ask both people before you connect them.\n"
                 "\n"
                 "options:\n"
                 "  --help       show this help and exit\n"
                 "  --version    print the version and exit\n"
                 "\n"
                 "No verbs are implemented yet in this version; see README.md.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("twofold %s\n", TF_VERSION);
        return 0;
    }
    fprintf(stderr, "twofold: unknown verb or option '%s' (try --help)\n", argv[1]);
    return 2;
}
