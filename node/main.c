/* SPDX-License-Identifier: MIT */
/* twofoldd: the twofold node daemon.  At this stage it only answers --help and
 * --version; the node issue gives it its work. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: twofoldd [--home DIR] [--log-level LEVEL]\n"
                 "\n"
                 "The twofold node: holds one person's identity and contacts and\n"
                 "answers introduction requests from other nodes.\n"
                 "\n"
                 "options:\n"
                 "  --help       show this help and exit\n"
                 "  --version    print the version and exit\n"
                 "\n"
                 "The daemon itself is not implemented yet in this version; see README.md.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("twofoldd %s\n", TF_VERSION);
            return 0;
        }
        fprintf(stderr, "twofoldd: unknown option '%s' (try --help)\n", argv[i]);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "twofoldd: libsodium failed to initialise\n");
        return 1;
    }
    fprintf(stderr, "twofoldd: the daemon is not implemented yet in this version (try --help)\n");
    return 1;
}
