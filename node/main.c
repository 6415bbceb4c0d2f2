/* SPDX-License-Identifier: MIT */
/* twofoldd: the twofold node daemon.  Runs in the foreground and logs to
 * stderr (systemd-friendly). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <sodium.h>
#include <uv.h>

#include "node/home.h"
#include "node/log.h"
#include "node/node.h"
#include "node/notify.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: twofoldd [--home DIR] [--log-level LEVEL]\n"
                 "\n"
                 "The twofold node: holds one person's identity and contacts and answers\n"
                 "the twofold CLI on DIR/control.sock.  Runs in the foreground; logs go to\n"
                 "stderr.  Stop it with SIGINT or SIGTERM; SIGHUP reloads configuration.\n"
                 "\n"
                 "options:\n"
                 "  --home DIR         the node's home (default: $TWOFOLD_HOME, else\n"
                 "                     $XDG_DATA_HOME/twofold, else ~/.local/share/twofold);\n"
                 "                     create it first with: twofold init --name NAME\n"
                 "  --log-level LEVEL  error, warn, info (default) or debug\n"
                 "  --help             show this help and exit\n"
                 "  --version          print the version and exit\n"
                 "\n"
                 "exit status: 0 after a clean shutdown, 1 if the node could not start,\n"
                 "2 for a usage error, 74 if writing or syncing the store failed (the node\n"
                 "stopped without sending anything of that batch; restart it).\n");
}

int main(int argc, char **argv)
{
    const char *home_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            /* Tests ask this line whether the build has its test hooks. */
            printf("twofoldd %s (test hooks: %s)\n", TF_VERSION,
                   tf_node_test_hooks() ? "on" : "off");
            return 0;
        }
        if ((strcmp(a, "--home") == 0 || strcmp(a, "--log-level") == 0) && i + 1 >= argc) {
            fprintf(stderr, "twofoldd: %s needs a value (try --help)\n", a);
            return 2;
        }
        if (strcmp(a, "--home") == 0) {
            home_arg = argv[++i];
        } else if (strcmp(a, "--log-level") == 0) {
            int level = tf_node_log_parse_level(argv[++i]);
            if (level < 0) {
                fprintf(stderr, "twofoldd: log level must be error, warn, info or debug\n");
                return 2;
            }
            tf_node_log_set_level((enum tf_node_log_level)level);
        } else {
            fprintf(stderr, "twofoldd: unknown option '%s' (try --help)\n", a);
            return 2;
        }
    }
    /* Info lines leave once per loop turn (node/node.c commit_cb). */
    tf_node_log_buffered();
    if (sodium_init() < 0) {
        fprintf(stderr, "twofoldd: libsodium failed to initialise\n");
        return 1;
    }
    /* A peer or client that closes early must cost a write error (EPIPE),
     * never the process. */
    signal(SIGPIPE, SIG_IGN);
    /* A core dump would hold the secret keys; so would a debugger or another
     * process of the same user reading /proc/PID/mem.  Not dumpable also
     * makes /proc/PID root's and refuses ptrace from the same uid. */
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0) {
        fprintf(stderr, "twofoldd: cannot disable core dumps: %s\n", strerror(errno));
        return 1;
    }
#ifdef __linux__
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        fprintf(stderr, "twofoldd: cannot make the process non-dumpable: %s\n", strerror(errno));
        return 1;
    }
#endif

    char home[TF_NODE_PATH_MAX];
    int rc = tf_node_home_resolve(home_arg, home, sizeof home);
    if (rc != 0) {
        fprintf(stderr, "twofoldd: cannot determine the home directory: %s (use --home DIR)\n",
                strerror(-rc));
        return 1;
    }
    uv_loop_t loop;
    if ((rc = uv_loop_init(&loop)) != 0) {
        fprintf(stderr, "twofoldd: %s\n", uv_strerror(rc));
        return 1;
    }
    struct tf_node node;
    struct tf_node_options opts = {.home = home};
    int started = tf_node_start(&node, &loop, &opts);
    /* The control socket and the listener accept from here on: a service
     * manager waiting for readiness (Type=notify) may start what uses the
     * node.  A failed notice is logged by tf_node_notify. */
    if (started == 0) {
        char state[TF_NODE_PATH_MAX + 256];
        snprintf(state, sizeof state, "READY=1\nSTATUS=ready: control %s, listening on %s",
                 node.socket_path, node.listen[0] ? node.listen : "-");
        (void)tf_node_notify(state);
    }
    /* Even a failed start may have open handles to close. */
    uv_run(&loop, UV_RUN_DEFAULT);
    int exit_status = node.exit_status; /* powerloss: a store failure's */
    tf_node_deinit(&node);
    rc = uv_loop_close(&loop);
    if (rc != 0)
        tf_node_log(TF_NODE_LOG_ERROR, "node", "event loop did not close cleanly: %s",
                    uv_strerror(rc));
    if (started != 0)
        return 1;
    if (exit_status != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "node", "stopped after a store failure (exit status %d)",
                    exit_status);
        return exit_status;
    }
    tf_node_log(TF_NODE_LOG_INFO, "node", "stopped");
    return rc == 0 ? 0 : 1;
}
