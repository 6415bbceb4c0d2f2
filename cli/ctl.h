/* SPDX-License-Identifier: MIT */
/*
 * The CLI's side of the control protocol (docs/CONTROL.md): a blocking Unix
 * socket client for one short-lived process.  Requests are built with
 * proto/mp's writer; replies are framed and decoded with proto/ctl (never by
 * handing node bytes to msgpack_unpack directly).
 *
 * Every function that can fail prints one line saying what went wrong and
 * returns an exit status (enum tf_cli_exit), so a verb only has to return it.
 */
#ifndef TF_CLI_CTL_H
#define TF_CLI_CTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>
#include <msgpack/zone.h>

#include "cli/args.h"
#include "cli/render.h"

/* A node that holds its home's lock but has no control socket yet is
 * starting: the CLI waits up to TF_CLI_CTL_START_WAIT_MS for its socket,
 * trying every TF_CLI_CTL_START_POLL_MS.  When no node holds the lock, it
 * still looks for TF_CLI_CTL_START_GRACE_MS (a node launched at the same
 * moment takes its lock within 10-30 ms, 40-130 ms under ASan, more on a
 * loaded machine) before it says "not running". */
#define TF_CLI_CTL_START_WAIT_MS 10000
#define TF_CLI_CTL_START_GRACE_MS 1000
#define TF_CLI_CTL_START_POLL_MS 10

/* How long a reply may take, unless the caller sets timeout_ms. */
#define TF_CLI_CTL_TIMEOUT_MS 10000

enum tf_cli_ctl_type {
    TF_CLI_CTL_STR,  /* str */
    TF_CLI_CTL_BOOL, /* b */
    TF_CLI_CTL_UINT, /* u */
    TF_CLI_CTL_STRS, /* strs[0..n) */
};

/* One request argument: args[key] = value. */
struct tf_cli_ctl_arg {
    const char *key;
    enum tf_cli_ctl_type type;
    const char *str;
    bool b;
    uint64_t u;
    const char *const *strs;
    size_t n;
};

struct tf_cli_ctl {
    const struct tf_cli *cli; /* borrowed */
    bool connected;           /* fd is open */
    int fd;
    uint64_t last_id;
    uint8_t *body;       /* the last frame's bytes (the tree views into them), owned */
    msgpack_object root; /* the last frame, decoded into zone */
    msgpack_zone zone;
    bool zone_ready;
    /* For a caller that handles signals (tf_cli_ctl_catch_stop): the signal
     * mask to wait with (the stop signals are blocked otherwise, see
     * pselect), and the flag the handler sets; a wait interrupted with *stop
     * non-zero ends. */
    const sigset_t *wait_mask;
    volatile sig_atomic_t *stop;
    /* For a verb the node answers slowly (ping): how long a reply may take,
     * set after tf_cli_ctl_open; 0 means TF_CLI_CTL_TIMEOUT_MS. */
    int timeout_ms;
    /* With quiet_refusal, tf_cli_ctl_call prints nothing when the node
     * refuses: it returns TF_CLI_EXIT_FAIL with the error's code in refused
     * and the reply in root, for the caller to try something else or to
     * print it (tf_cli_ctl_refused). */
    bool quiet_refusal;
    int refused;
};

/* Connects to <home>/control.sock, waiting for a node that is starting (see
 * TF_CLI_CTL_START_WAIT_MS).  When nothing listens there, says that the node
 * is not running and how to start it (TF_CLI_EXIT_NODE). */
int tf_cli_ctl_open(struct tf_cli_ctl *c, const struct tf_cli *cli);

/* Sends {id, verb, args} and waits up to c->timeout_ms for the reply.
 * On success *result views the reply's result (nil if it has none), valid
 * until the next call on c or tf_cli_ctl_close.  A refusal by the node is
 * printed (its message on stderr; with --json also {"error": ...} on stdout)
 * and gives TF_CLI_EXIT_FAIL.  Returns -1, printing nothing, if the wait was
 * ended through c->stop. */
int tf_cli_ctl_call(struct tf_cli_ctl *c, const char *verb, const struct tf_cli_ctl_arg *args,
                    size_t n, const msgpack_object **result);

/* The common path of a node verb: resolves the home (tf_cli_args_home),
 * connects (tf_cli_ctl_open) and calls (tf_cli_ctl_call).  Close c
 * afterwards whatever it returns. */
int tf_cli_ctl_run(struct tf_cli_ctl *c, struct tf_cli *cli, const char *verb,
                   const struct tf_cli_ctl_arg *args, size_t n, const msgpack_object **result);

/* Waits (without a time limit) for the next frame the node sends on its own,
 * such as a watch event.  *frame is valid as for tf_cli_ctl_call.  Returns an
 * exit status, or -1 without printing anything if *c->stop was set. */
int tf_cli_ctl_next(struct tf_cli_ctl *c, const msgpack_object **frame);

/* Prints a node's error reply {id, ok: false, error} (also used for error
 * frames that arrive outside a call) and returns TF_CLI_EXIT_FAIL. */
int tf_cli_ctl_refused(struct tf_cli_ctl *c, const msgpack_object *reply);

/* Makes SIGINT and SIGTERM end c's waits (tf_cli_ctl_call, tf_cli_ctl_next
 * and tf_cli_ctl_pause return -1) instead of the process: they stay blocked
 * except while c waits, so one cannot slip in between a check and a wait.
 * Call after tf_cli_ctl_open. */
void tf_cli_ctl_catch_stop(struct tf_cli_ctl *c);

/* Sleeps for ms milliseconds.  Returns 0, or -1 once a stop signal came
 * (see tf_cli_ctl_catch_stop). */
int tf_cli_ctl_pause(struct tf_cli_ctl *c, int ms);

/* Appends the request argument {key: val} to args[*n], unless val is NULL. */
void tf_cli_ctl_add_str(struct tf_cli_ctl_arg *args, size_t *n, const char *key, const char *val);

/* Calls a verb whose result is an array of objects and prints it: as JSON,
 * as the line `empty` when it has no elements, or as a table of cols.
 * Returns an exit status. */
int tf_cli_ctl_print_list(struct tf_cli *cli, const char *verb, const struct tf_cli_ctl_arg *args,
                          size_t n, const char *empty, const struct tf_cli_render_row *cols,
                          size_t ncols);
/* The same for a paged verb: then tf_cli_ctl_page_hint(cli, cmd, page, ...). */
struct tf_cli_ctl_page;
int tf_cli_ctl_print_page(struct tf_cli *cli, const char *verb, const struct tf_cli_ctl_arg *args,
                          size_t n, const char *empty, const struct tf_cli_render_row *cols,
                          size_t ncols, const char *cmd, const struct tf_cli_ctl_page *page,
                          bool newest_first_default);

/* Paging of listing verbs (contact list, messages): the options --limit N,
 * --after CURSOR and --before CURSOR (docs/CONTROL.md).  A verb puts
 * TF_CLI_CTL_PAGE_OPTS in its option table and hands those ids to
 * tf_cli_ctl_page_opt. */
enum {
    TF_CLI_CTL_OPT_LIMIT = 100,
    TF_CLI_CTL_OPT_AFTER,
    TF_CLI_CTL_OPT_BEFORE,
};
#define TF_CLI_CTL_PAGE_OPTS                                                                       \
    {"limit", true, TF_CLI_CTL_OPT_LIMIT}, {"after", true, TF_CLI_CTL_OPT_AFTER},                  \
    {                                                                                              \
        "before", true, TF_CLI_CTL_OPT_BEFORE                                                      \
    }
/* What a page asks for; limit 0 means the default page (100). */
struct tf_cli_ctl_page {
    uint64_t limit;
    const char *after, *before; /* borrowed from argv */
    const char *id_key;         /* the items' cursor field; NULL: "id" */
};
/* Takes option id (one of TF_CLI_CTL_OPT_*) with its value.  Returns 0, or
 * TF_CLI_EXIT_USAGE after printing why (a bad number, both cursors). */
int tf_cli_ctl_page_opt(const struct tf_cli *cli, struct tf_cli_ctl_page *p, int id,
                        const char *val);
/* Parses the arguments of a listing verb that takes only the paging options
 * and at most max_pos operands (left in *a).  Returns 0, or TF_CLI_EXIT_USAGE
 * after printing why. */
struct tf_cli_args;
int tf_cli_ctl_page_parse(struct tf_cli_args *a, struct tf_cli *cli, int argc, char **argv,
                          struct tf_cli_ctl_page *p, size_t max_pos);
/* Appends the page's request arguments (limit, and after or before) to
 * args[*n]; args needs room for two more. */
void tf_cli_ctl_page_args(const struct tf_cli_ctl_page *p, struct tf_cli_ctl_arg *args, size_t *n);
/* After a page of items (objects with an "id") was printed for people: if it
 * was full, says on stderr how to ask for the next one ("more: CMD --after
 * ID"), in the direction the page went (newest_first_default: without a
 * cursor the page held the newest items, so the next is --before). */
void tf_cli_ctl_page_hint(const struct tf_cli *cli, const char *cmd,
                          const struct tf_cli_ctl_page *p, const msgpack_object_array *items,
                          bool newest_first_default);

/* Closes the connection and frees everything.  Safe on a zeroed struct, after
 * a failed tf_cli_ctl_open, and twice. */
void tf_cli_ctl_close(struct tf_cli_ctl *c);

#endif
