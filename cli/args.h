/* SPDX-License-Identifier: MIT */
/*
 * The CLI's shared context, exit codes and option parser.
 *
 * Options are long only ("--alias NAME" or "--alias=NAME"), plus "-h" for
 * "--help"; "--" ends the options and "-" is an ordinary argument (stdin).
 * The global options --home DIR and --json are accepted in any position, so
 * `twofold --json contact list` and `twofold contact list --json` are the
 * same.  --help is found by the dispatcher in main.c before a verb runs.
 */
#ifndef TF_CLI_ARGS_H
#define TF_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "node/home.h"

/* Exit statuses, documented in docs/twofold.1 (EXIT STATUS). */
enum tf_cli_exit {
    TF_CLI_EXIT_OK = 0,
    TF_CLI_EXIT_FAIL = 1,  /* the node refused, or the operation failed */
    TF_CLI_EXIT_USAGE = 2, /* bad command line */
    TF_CLI_EXIT_NODE = 3,  /* the node is not running, unreachable or misbehaving */
    TF_CLI_EXIT_LOCAL = 4, /* local trouble: home missing or unreadable, out of memory */
};

/* What every verb gets: the global options and where to print. */
struct tf_cli {
    const char *cmd;             /* "twofold contact add", for messages */
    const char *home_arg;        /* --home, or NULL; borrowed from argv */
    char home[TF_NODE_PATH_MAX]; /* the resolved home (tf_cli_args_home) */
    bool json;                   /* --json */
    bool color;                  /* stdout is a TTY and NO_COLOR is unset */
};

/* A verb: argv holds the arguments after the verb's name.  Returns an exit
 * status, having printed any error. */
typedef int tf_cli_verb_fn(struct tf_cli *cli, int argc, char **argv);

/* One option a verb accepts.  Tables end with a NULL name. */
struct tf_cli_opt {
    const char *name; /* without the leading "--" */
    bool has_arg;
    int id; /* > 0, returned by tf_cli_args_next */
};

#define TF_CLI_ARGS_POS_MAX 8

/* Parser state over argv[0..argc). */
struct tf_cli_args {
    struct tf_cli *cli;
    int argc;
    char **argv;
    int next;
    const struct tf_cli_opt *opts; /* borrowed */
    bool stop_at_positional;       /* stop (return 0) at the first positional */
    bool opts_done;                /* "--" seen */
    bool help;                     /* "--help" or "-h" seen */
    size_t n_pos;
    const char *pos[TF_CLI_ARGS_POS_MAX]; /* positional arguments, views into argv */
};

void tf_cli_args_init(struct tf_cli_args *a, struct tf_cli *cli, int argc, char **argv,
                      const struct tf_cli_opt *opts);

/* Returns the id of the next option of a's table (with its argument in *val,
 * NULL if it takes none), 0 at the end, or -1 after printing a usage error
 * (unknown option, missing argument, too many arguments).  Positional
 * arguments are collected in a->pos; with stop_at_positional the parser
 * returns 0 at the first one instead and a->next indexes it. */
int tf_cli_args_next(struct tf_cli_args *a, const char **val);

/* For a verb without options of its own: parses argv (globals only) and
 * checks that min..max positionals were given, as tf_cli_args_want.  Returns
 * 0, or -1 after printing a usage error. */
int tf_cli_args_parse_plain(struct tf_cli_args *a, struct tf_cli *cli, int argc, char **argv,
                            size_t min, size_t max, const char *what);

/* Checks that min..max positionals were given; otherwise prints a usage error
 * naming `what` (e.g. "CARD") and returns -1. */
int tf_cli_args_want(const struct tf_cli_args *a, size_t min, size_t max, const char *what);

/* Prints "CMD: message (try 'CMD --help')" on stderr and returns
 * TF_CLI_EXIT_USAGE. */
int tf_cli_args_usage_error(const struct tf_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Checks a text given on the command line (a message, a note): not blank,
 * at most max bytes, UTF-8 without NUL bytes.  Otherwise prints a usage
 * error naming it as `what` ("the message is empty") and returns
 * TF_CLI_EXIT_USAGE. */
int tf_cli_args_check_text(const struct tf_cli *cli, const char *what, const char *text, size_t len,
                           size_t max);

/* Checks a tag (a contact's tag, an intro's topic): 1-64 of a-z, 0-9 and
 * '-', not starting or ending with '-'.  Otherwise prints a usage error
 * calling it a `what` ("'X' is not a topic") and returns TF_CLI_EXIT_USAGE. */
int tf_cli_args_check_tag(const struct tf_cli *cli, const char *what, const char *tag);

/* Parses `--expires` DURATION s: a whole number and a unit, s, m, h, d or w,
 * more than 0 and at most max_days days, into *secs.  Otherwise prints a
 * usage error and returns TF_CLI_EXIT_USAGE. */
int tf_cli_args_duration(const struct tf_cli *cli, const char *s, uint64_t max_days,
                         uint64_t *secs);

/* Reads stdin to its end into buf[0..cap), for an argument given as "-";
 * prompt goes to stderr first if stdin is a terminal.  *len is the number of
 * bytes read: cap if they did not all fit.  Returns an exit status
 * (TF_CLI_EXIT_LOCAL after printing why stdin could not be read). */
int tf_cli_args_read_stdin(const struct tf_cli *cli, const char *prompt, char *buf, size_t cap,
                           size_t *len);

/* Resolves cli->home from --home, $TWOFOLD_HOME, $XDG_DATA_HOME or $HOME.
 * Returns an exit status (0, or TF_CLI_EXIT_LOCAL after printing why). */
int tf_cli_args_home(struct tf_cli *cli);

#endif
