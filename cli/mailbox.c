/* SPDX-License-Identifier: MIT */
#include "cli/mailbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/render.h"
#include "proto/card.h"
#include "proto/ctl.h"

/* The card text accepted on the command line or stdin: the base64 of the
 * largest card and some space. */
#define CARD_TEXT_MAX 6000

static const struct tf_cli_render_row TENANT_COLS[] = {
    {"tenant", "id", TF_CLI_RENDER_CONTACT},       {"envelopes", "envelopes", TF_CLI_RENDER_UINT},
    {"bytes", "bytes", TF_CLI_RENDER_BYTES},       {"quota", "quota_bytes", TF_CLI_RENDER_BYTES},
    {"last seen", "last_seen", TF_CLI_RENDER_AGO}, {"connected", "connected", TF_CLI_RENDER_YESNO},
};

static const struct tf_cli_render_row MAILBOX_COLS[] = {
    {"mailbox", "id", TF_CLI_RENDER_CONTACT},
    {"addresses", "addrs", TF_CLI_RENDER_LIST},
    {"connected", "connected", TF_CLI_RENDER_YESNO},
    {"last error", "last_error", TF_CLI_RENDER_TEXT},
};

/* "1048576", "512K", "64M", "2G" (powers of 1024) -> bytes; false if not. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-')
        return false;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift != 0)
        end++;
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

int tf_cli_mailbox_host(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_QUOTA = 1 };
    static const struct tf_cli_opt opts[] = {{"quota", true, OPT_QUOTA}, {NULL, false, 0}};
    struct tf_cli_ctl_arg args[2];
    struct tf_cli_ctl c = {0};
    struct tf_cli_args a;
    const msgpack_object *res;
    const char *val;
    uint64_t quota = 0;
    bool has_quota = false;
    size_t n = 0;
    int id, rc = TF_CLI_EXIT_OK;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while (rc == TF_CLI_EXIT_OK && (id = tf_cli_args_next(&a, &val)) > 0) {
        if (id == OPT_QUOTA && !(has_quota = parse_size(val, &quota)))
            rc = tf_cli_args_usage_error(cli,
                                         "--quota '%s' is not a size: give bytes, or a number "
                                         "and K, M or G",
                                         val);
    }
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (id < 0 || tf_cli_args_want(&a, 1, 1, "NAME|ID (the contact to host)") != 0)
        return TF_CLI_EXIT_USAGE;
    tf_cli_ctl_add_str(args, &n, "name", a.pos[0]);
    if (has_quota)
        args[n++] =
            (struct tf_cli_ctl_arg){.key = "quota_bytes", .type = TF_CLI_CTL_UINT, .u = quota};
    if ((rc = tf_cli_ctl_run(&c, cli, "mailbox.host", args, n, &res)) == TF_CLI_EXIT_OK) {
        if (cli->json) {
            rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
        } else {
            char who[128], q[32];
            tf_cli_render_field(who, sizeof who, res, "id", TF_CLI_RENDER_CONTACT);
            tf_cli_render_field(q, sizeof q, res, "quota_bytes", TF_CLI_RENDER_BYTES);
            printf("hosting %s: envelopes for them are held here (quota %s)\n", who, q);
        }
    }
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_mailbox_unhost(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_ctl_arg args[1];
    struct tf_cli_ctl c = {0};
    struct tf_cli_args a;
    const msgpack_object *res;
    size_t n = 0;
    int rc;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 1, 1, "NAME|ID (the tenant)") != 0)
        return TF_CLI_EXIT_USAGE;
    tf_cli_ctl_add_str(args, &n, "name", a.pos[0]);
    if ((rc = tf_cli_ctl_run(&c, cli, "mailbox.unhost", args, n, &res)) == TF_CLI_EXIT_OK) {
        if (cli->json) {
            rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
        } else {
            char k[32];
            tf_cli_render_field(k, sizeof k, res, "purged_envelopes", TF_CLI_RENDER_UINT);
            printf("no longer hosting %s; %s held envelopes dropped\n", a.pos[0], k);
        }
    }
    tf_cli_ctl_close(&c);
    return rc;
}

/* Prints the array under key of a reply map as a table (or JSON). */
static int print_array(const struct tf_cli *cli, const msgpack_object *res, const char *key,
                       const struct tf_cli_render_row *cols, size_t ncols)
{
    if (cli->json)
        return tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    const msgpack_object *list =
        res->type == MSGPACK_OBJECT_MAP ? tf_proto_ctl_get(res, key) : NULL;
    if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed reply");
    if (list->via.array.size == 0) {
        printf("none\n");
        return TF_CLI_EXIT_OK;
    }
    return tf_cli_render_list(cli, &list->via.array, cols, ncols);
}

static int print_status(const struct tf_cli *cli, const msgpack_object *res)
{
    if (!cli->json && res->type == MSGPACK_OBJECT_MAP) {
        char listening[8], direct[16];
        tf_cli_render_field(listening, sizeof listening, res, "listening", TF_CLI_RENDER_YESNO);
        tf_cli_render_field(direct, sizeof direct, res, "direct_addrs", TF_CLI_RENDER_UINT);
        printf("listening: %s; addresses on your card: %s\n", listening, direct);
    }
    return print_array(cli, res, "mailboxes", MAILBOX_COLS,
                       sizeof MAILBOX_COLS / sizeof MAILBOX_COLS[0]);
}

static int print_tenants(const struct tf_cli *cli, const msgpack_object *res)
{
    return print_array(cli, res, "tenants", TENANT_COLS,
                       sizeof TENANT_COLS / sizeof TENANT_COLS[0]);
}

/* A verb without arguments whose reply print shows. */
static int run_plain(struct tf_cli *cli, int argc, char **argv, const char *verb,
                     int (*print)(const struct tf_cli *, const msgpack_object *))
{
    struct tf_cli_ctl c = {0};
    struct tf_cli_args a;
    const msgpack_object *res;
    int rc;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = tf_cli_ctl_run(&c, cli, verb, NULL, 0, &res)) == TF_CLI_EXIT_OK)
        rc = print(cli, res);
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_mailbox_list(struct tf_cli *cli, int argc, char **argv)
{
    return run_plain(cli, argc, argv, "mailbox.list", print_tenants);
}

int tf_cli_mailbox_status(struct tf_cli *cli, int argc, char **argv)
{
    return run_plain(cli, argc, argv, "mailbox.status", print_status);
}

int tf_cli_mailbox_use(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_REMOVE = 1 };
    static const struct tf_cli_opt opts[] = {{"remove", false, OPT_REMOVE}, {NULL, false, 0}};
    static char text[CARD_TEXT_MAX + 1];
    struct tf_cli_ctl_arg args[2];
    struct tf_cli_ctl c = {0};
    struct tf_cli_args a;
    const msgpack_object *res;
    const char *val, *card;
    bool remove = false;
    size_t n = 0;
    int id, rc;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((id = tf_cli_args_next(&a, &val)) > 0)
        remove = remove || id == OPT_REMOVE;
    if (id < 0 || tf_cli_args_want(&a, 1, 1, "CARD (the mailbox node's card, or - for stdin)") != 0)
        return TF_CLI_EXIT_USAGE;
    card = a.pos[0];
    if (strcmp(card, "-") == 0) {
        size_t len;
        rc = tf_cli_args_read_stdin(cli, "paste the mailbox's card, then Ctrl-D", text,
                                    CARD_TEXT_MAX, &len);
        if (rc != TF_CLI_EXIT_OK)
            return rc;
        if (len >= CARD_TEXT_MAX)
            return tf_cli_args_usage_error(cli, "that is too long for a card");
        text[len] = '\0';
        card = text;
    }
    tf_cli_ctl_add_str(args, &n, "card", card);
    if (remove)
        args[n++] = (struct tf_cli_ctl_arg){.key = "remove", .type = TF_CLI_CTL_BOOL, .b = true};
    if ((rc = tf_cli_ctl_run(&c, cli, "mailbox.use", args, n, &res)) == TF_CLI_EXIT_OK) {
        if (!cli->json)
            printf("card re-issued %s that mailbox and sent to your contacts\n",
                   remove ? "without" : "with");
        rc = print_status(cli, res);
    }
    tf_cli_ctl_close(&c);
    return rc;
}
