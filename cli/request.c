/* SPDX-License-Identifier: MIT */
#include "cli/request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/render.h"
#include "proto/ctl.h"
#include "proto/request.h"

/* A request id in hex, and the shortest prefix of one the node resolves. */
#define REQUEST_HEX_LEN (2 * TF_PROTO_REQUEST_ID_LEN)
#define REQUEST_PREFIX_MIN 8

/* Checks a REQUEST argument: 8 to 64 hex digits. */
static int request_arg(const struct tf_cli *cli, const char *arg)
{
    size_t n = strlen(arg);
    bool hex = n >= REQUEST_PREFIX_MIN && n <= REQUEST_HEX_LEN;
    for (size_t i = 0; hex && i < n; i++)
        hex = (arg[i] >= '0' && arg[i] <= '9') || (arg[i] >= 'a' && arg[i] <= 'f') ||
              (arg[i] >= 'A' && arg[i] <= 'F');
    if (!hex)
        return tf_cli_args_usage_error(cli,
                                       "'%s' is not a request: give its id (64 hex digits) or "
                                       "its first %d or more digits",
                                       arg, REQUEST_PREFIX_MIN);
    return TF_CLI_EXIT_OK;
}

static const struct tf_cli_render_row SHOW_ROWS[] = {
    {"id", "id", TF_CLI_RENDER_TEXT},
    {"role", "role", TF_CLI_RENDER_TEXT},
    {"state", "state", TF_CLI_RENDER_TEXT},
    {"seeking", "seeking", TF_CLI_RENDER_TEXT},
    {"asker", "asker", TF_CLI_RENDER_TEXT},
    {"connector", "connector", TF_CLI_RENDER_TEXT},
    {"contact", "alias", TF_CLI_RENDER_TEXT},
    {"note", "note", TF_CLI_RENDER_PARA},
    {"created", "created", TF_CLI_RENDER_AGO},
    {"expires", "expires", TF_CLI_RENDER_AGO},
    {"closed", "closed", TF_CLI_RENDER_AGO},
    {"answered by", "intro", TF_CLI_RENDER_TEXT},
    {"decided by", "decided_by", TF_CLI_RENDER_TEXT},
};

/* Runs verb with {key: val} and prints the request it returns. */
static int run_one(struct tf_cli *cli, const char *verb, const struct tf_cli_ctl_arg *args,
                   size_t n, const char *done)
{
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    const char *p;
    size_t len;
    char id[REQUEST_HEX_LEN + 1];
    int rc = tf_cli_ctl_run(&c, cli, verb, args, n, &res);
    if (rc != TF_CLI_EXIT_OK)
        goto cleanup;
    if (tf_proto_ctl_get_str(res, "id", &p, &len) != TF_OK || len != REQUEST_HEX_LEN) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed request");
        goto cleanup;
    }
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    } else if (done != NULL) {
        tf_cli_render_clean(id, sizeof id, p, len);
        printf("%s %.16s\n", done, id);
    } else {
        tf_cli_render_rows(res, SHOW_ROWS, sizeof SHOW_ROWS / sizeof SHOW_ROWS[0]);
    }
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_request_ask(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_SEEKING = 1, OPT_NOTE, OPT_EXPIRES };
    static const struct tf_cli_opt opts[] = {{"seeking", true, OPT_SEEKING},
                                             {"note", true, OPT_NOTE},
                                             {"expires", true, OPT_EXPIRES},
                                             {NULL, false, 0}};
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[4];
    const char *seeking = NULL, *note = NULL, *val;
    uint64_t expires_s = 0;
    size_t n = 0;
    int opt, rc = TF_CLI_EXIT_OK;
    tf_cli_args_init(&a, cli, argc, argv, opts);
    while (rc == TF_CLI_EXIT_OK && (opt = tf_cli_args_next(&a, &val)) > 0) {
        if (opt == OPT_SEEKING)
            seeking = val;
        else if (opt == OPT_NOTE)
            note = val;
        else
            rc = tf_cli_args_duration(cli, val, TF_PROTO_REQUEST_EXPIRES_MAX_S / 86400, &expires_s);
    }
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (opt < 0 || tf_cli_args_want(&a, 1, 1, "CONNECTOR (the contact to ask)") != 0)
        return TF_CLI_EXIT_USAGE;
    if (seeking == NULL)
        return tf_cli_args_usage_error(cli, "missing --seeking TAG (what you look for, such as "
                                            "real-estate-law)");
    if ((rc = tf_cli_args_check_tag(cli, "seeking", seeking)) != TF_CLI_EXIT_OK)
        return rc;
    if (note != NULL && (rc = tf_cli_args_check_text(cli, "--note", note, strlen(note),
                                                     TF_PROTO_REQUEST_NOTE_MAX)) != 0)
        return rc;
    tf_cli_ctl_add_str(args, &n, "connector", a.pos[0]);
    tf_cli_ctl_add_str(args, &n, "seeking", seeking);
    tf_cli_ctl_add_str(args, &n, "note", note);
    if (expires_s > 0)
        args[n++] =
            (struct tf_cli_ctl_arg){.key = "expires_s", .type = TF_CLI_CTL_UINT, .u = expires_s};
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    const char *p;
    size_t len;
    char id[REQUEST_HEX_LEN + 1];
    if ((rc = tf_cli_ctl_run(&c, cli, "request.ask", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (tf_proto_ctl_get_str(res, "id", &p, &len) != TF_OK || len != REQUEST_HEX_LEN) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed request id");
        goto cleanup;
    }
    tf_cli_render_clean(id, sizeof id, p, len);
    if (cli->json)
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    else
        printf("%s\n", id);
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_request_list(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_render_row cols[] = {
        {"ID", "id", TF_CLI_RENDER_SHORT_ID},   {"ROLE", "role", TF_CLI_RENDER_TEXT},
        {"WHO", "alias", TF_CLI_RENDER_TEXT},   {"SEEKING", "seeking", TF_CLI_RENDER_TEXT},
        {"STATE", "state", TF_CLI_RENDER_TEXT}, {"EXPIRES", "expires", TF_CLI_RENDER_AGO},
        {"NOTE", "note", TF_CLI_RENDER_LINE},
    };
    struct tf_cli_args a;
    struct tf_cli_ctl_page page = {0};
    struct tf_cli_ctl_arg args[2];
    size_t n = 0;
    if (tf_cli_ctl_page_parse(&a, cli, argc, argv, &page, 0) != 0)
        return TF_CLI_EXIT_USAGE;
    if (page.before != NULL)
        return tf_cli_args_usage_error(cli, "requests are listed forward only: use --after ID");
    if (page.after != NULL && strlen(page.after) != REQUEST_HEX_LEN)
        return tf_cli_args_usage_error(cli, "--after wants a request's whole id (%d hex digits)",
                                       REQUEST_HEX_LEN);
    tf_cli_ctl_page_args(&page, args, &n);
    return tf_cli_ctl_print_page(cli, "request.list", args, n,
                                 page.after != NULL ? "no requests after that one" : "no requests",
                                 cols, sizeof cols / sizeof cols[0], "twofold requests", &page,
                                 false);
}

/* requests show|decline|withdraw REQUEST */
static int one(struct tf_cli *cli, int argc, char **argv, const char *verb, const char *done)
{
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[1];
    size_t n = 0;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 1, 1, "REQUEST (a request's id)") != 0)
        return TF_CLI_EXIT_USAGE;
    int rc = request_arg(cli, a.pos[0]);
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    tf_cli_ctl_add_str(args, &n, "id", a.pos[0]);
    return run_one(cli, verb, args, n, done);
}

int tf_cli_request_show(struct tf_cli *cli, int argc, char **argv)
{
    return one(cli, argc, argv, "request.show", NULL);
}

int tf_cli_request_decline(struct tf_cli *cli, int argc, char **argv)
{
    return one(cli, argc, argv, "request.decline", "declined");
}

int tf_cli_request_withdraw(struct tf_cli *cli, int argc, char **argv)
{
    return one(cli, argc, argv, "request.withdraw", "withdrew");
}

int tf_cli_request_suggest(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_FOR = 1, OPT_TOPIC, OPT_LIMIT };
    static const struct tf_cli_opt opts[] = {{"for", true, OPT_FOR},
                                             {"topic", true, OPT_TOPIC},
                                             {"limit", true, OPT_LIMIT},
                                             {NULL, false, 0}};
    static const struct tf_cli_render_row cols[] = {
        {"SCORE", "score", TF_CLI_RENDER_UINT},
        {"SEEKER", "seeker_name", TF_CLI_RENDER_TEXT},
        {"OFFERER", "offerer_name", TF_CLI_RENDER_TEXT},
        {"TOPIC", "topic", TF_CLI_RENDER_TEXT},
        {"COMMAND", "command", TF_CLI_RENDER_TEXT},
    };
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[3];
    const char *who = NULL, *topic = NULL, *val;
    uint64_t limit = 0;
    size_t n = 0;
    int opt, rc = TF_CLI_EXIT_OK;
    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((opt = tf_cli_args_next(&a, &val)) > 0) {
        if (opt == OPT_FOR) {
            who = val;
        } else if (opt == OPT_TOPIC) {
            topic = val;
        } else {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0 || v < 1 || v > 1000)
                return tf_cli_args_usage_error(cli, "--limit wants a number from 1 to 1000");
            limit = v;
        }
    }
    if (opt < 0 || tf_cli_args_want(&a, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if (topic != NULL && (rc = tf_cli_args_check_tag(cli, "topic", topic)) != TF_CLI_EXIT_OK)
        return rc;
    tf_cli_ctl_add_str(args, &n, "for", who);
    tf_cli_ctl_add_str(args, &n, "topic", topic);
    if (limit > 0)
        args[n++] = (struct tf_cli_ctl_arg){.key = "limit", .type = TF_CLI_CTL_UINT, .u = limit};
    return tf_cli_ctl_print_list(cli, "suggest", args, n,
                                 "no suggestions: no contact seeks what another offers (or they "
                                 "have met through you already)",
                                 cols, sizeof cols / sizeof cols[0]);
}

int tf_cli_request_feedback(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_HELPED = 1, OPT_NOTE };
    static const struct tf_cli_opt opts[] = {
        {"helped", true, OPT_HELPED}, {"note", true, OPT_NOTE}, {NULL, false, 0}};
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[3];
    const char *helped = NULL, *note = NULL, *val;
    size_t n = 0;
    int opt, rc;
    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((opt = tf_cli_args_next(&a, &val)) > 0) {
        if (opt == OPT_HELPED)
            helped = val;
        else
            note = val;
    }
    if (opt < 0 ||
        tf_cli_args_want(&a, 1, 1, "INTRO (an introduction you were introduced by)") != 0)
        return TF_CLI_EXIT_USAGE;
    if (helped == NULL || (strcmp(helped, "yes") != 0 && strcmp(helped, "no") != 0))
        return tf_cli_args_usage_error(cli, "give --helped yes or --helped no");
    if (note != NULL && (rc = tf_cli_args_check_text(cli, "--note", note, strlen(note),
                                                     TF_PROTO_FEEDBACK_NOTE_MAX)) != 0)
        return rc;
    if ((rc = request_arg(cli, a.pos[0])) != TF_CLI_EXIT_OK)
        return rc;
    tf_cli_ctl_add_str(args, &n, "id", a.pos[0]);
    args[n++] = (struct tf_cli_ctl_arg){
        .key = "helped", .type = TF_CLI_CTL_BOOL, .b = strcmp(helped, "yes") == 0};
    tf_cli_ctl_add_str(args, &n, "note", note);
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    if ((rc = tf_cli_ctl_run(&c, cli, "feedback.send", args, n, &res)) == TF_CLI_EXIT_OK) {
        if (cli->json)
            rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
        else
            printf("feedback sent to the connector: %s\n",
                   strcmp(helped, "yes") == 0 ? "it helped" : "it did not help");
    }
    tf_cli_ctl_close(&c);
    return rc;
}
