/* SPDX-License-Identifier: MIT */
#include "cli/profile.h"

#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/render.h"
#include "proto/card.h"
#include "proto/ctl.h"
#include "proto/mp.h"

/* The longest comma-separated list accepted (16 tags of 64 bytes fit). */
#define LIST_TEXT_MAX 2048

static const struct tf_cli_render_row PROFILE_ROWS[] = {
    {"id", "id", TF_CLI_RENDER_TEXT},           {"name", "name", TF_CLI_RENDER_TEXT},
    {"addresses", "addrs", TF_CLI_RENDER_LIST}, {"offers", "offers", TF_CLI_RENDER_LIST},
    {"seeks", "seeks", TF_CLI_RENDER_LIST},     {"card number", "seq", TF_CLI_RENDER_UINT},
    {"issued", "issued", TF_CLI_RENDER_AGO},    {"listen", "listen", TF_CLI_RENDER_TEXT},
    {"card", "card", TF_CLI_RENDER_TEXT},
};

/* Prints the profile: JSON, or for people the label/value list. */
static int print_profile(const struct tf_cli *cli, const msgpack_object *res)
{
    if (res->type != MSGPACK_OBJECT_MAP)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed profile");
    if (cli->json)
        return tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    tf_cli_render_rows(res, PROFILE_ROWS, sizeof PROFILE_ROWS / sizeof PROFILE_ROWS[0]);
    return TF_CLI_EXIT_OK;
}

int tf_cli_profile_show(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_args a;
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    int rc;

    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = tf_cli_ctl_run(&c, cli, "profile.show", NULL, 0, &res)) == TF_CLI_EXIT_OK)
        rc = print_profile(cli, res);
    tf_cli_ctl_close(&c);
    return rc;
}

/* A comma-separated list of an option: "" is an empty list. */
struct list {
    bool given;
    size_t n;
    const char *v[TF_PROTO_CARD_TAGS_MAX];
    char buf[LIST_TEXT_MAX];
};

/* Splits val into l, checking each item as a tag (addrs false) or a
 * HOST:PORT (addrs true); at most max items. */
static int list_parse(const struct tf_cli *cli, const char *opt, const char *val, bool addrs,
                      size_t max, struct list *l)
{
    size_t len = strlen(val);
    if (len >= sizeof l->buf)
        return tf_cli_args_usage_error(cli, "--%s is too long", opt);
    memcpy(l->buf, val, len + 1);
    l->given = true;
    l->n = 0;
    if (len == 0)
        return TF_CLI_EXIT_OK;
    for (char *p = l->buf, *end; p != NULL; p = end) {
        end = strchr(p, ',');
        if (end != NULL)
            *end++ = '\0';
        bool valid = addrs ? tf_proto_addr_is_valid((const uint8_t *)p, strlen(p))
                           : tf_proto_tag_is_valid((const uint8_t *)p, strlen(p));
        if (!valid && addrs)
            return tf_cli_args_usage_error(cli,
                                           "'%s' is not an address: use HOST:PORT, such as "
                                           "example.org:7451",
                                           p);
        if (!valid)
            return tf_cli_args_check_tag(cli, "tag", p);
        if (l->n == max)
            return tf_cli_args_usage_error(cli, "--%s takes at most %zu items", opt, max);
        l->v[l->n++] = p;
    }
    return TF_CLI_EXIT_OK;
}

static void arg_list(struct tf_cli_ctl_arg *args, size_t *n, const char *key, const struct list *l)
{
    if (l->given)
        args[(*n)++] =
            (struct tf_cli_ctl_arg){.key = key, .type = TF_CLI_CTL_STRS, .strs = l->v, .n = l->n};
}

/* A display name: what a card accepts (1-64 bytes of UTF-8, no control
 * characters). */
static bool name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TF_PROTO_CARD_NAME_MAX || !tf_proto_utf8_is_valid((const uint8_t *)s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int tf_cli_profile_set(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_NAME = 1, OPT_OFFERS, OPT_SEEKS, OPT_ADVERTISE, OPT_LISTEN };
    static const struct tf_cli_opt opts[] = {
        {"name", true, OPT_NAME},     {"offers", true, OPT_OFFERS},
        {"seeks", true, OPT_SEEKS},   {"advertise", true, OPT_ADVERTISE},
        {"listen", true, OPT_LISTEN}, {NULL, false, 0},
    };
    static struct list offers, seeks, advertise;
    const char *val, *name = NULL, *listen = NULL;
    struct tf_cli_ctl_arg args[5];
    struct tf_cli_ctl c = {0};
    struct tf_cli_args a;
    const msgpack_object *res;
    size_t n = 0;
    int id = 0, rc = TF_CLI_EXIT_OK;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while (rc == TF_CLI_EXIT_OK && (id = tf_cli_args_next(&a, &val)) > 0) {
        if (id == OPT_NAME && !name_is_valid(name = val))
            rc = tf_cli_args_usage_error(cli,
                                         "a name is 1 to %d bytes of text without control "
                                         "characters",
                                         TF_PROTO_CARD_NAME_MAX);
        else if (id == OPT_OFFERS)
            rc = list_parse(cli, "offers", val, false, TF_PROTO_CARD_TAGS_MAX, &offers);
        else if (id == OPT_SEEKS)
            rc = list_parse(cli, "seeks", val, false, TF_PROTO_CARD_TAGS_MAX, &seeks);
        else if (id == OPT_ADVERTISE)
            rc = list_parse(cli, "advertise", val, true, TF_PROTO_CARD_ADDRS_MAX, &advertise);
        else if (id == OPT_LISTEN && !tf_proto_addr_is_valid((const uint8_t *)val, strlen(val)))
            rc = tf_cli_args_usage_error(cli,
                                         "--listen '%s' is not an address: use HOST:PORT, such "
                                         "as 0.0.0.0:7451",
                                         val);
        else if (id == OPT_LISTEN)
            listen = val;
    }
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (id < 0 || tf_cli_args_want(&a, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;

    tf_cli_ctl_add_str(args, &n, "name", name);
    arg_list(args, &n, "offers", &offers);
    arg_list(args, &n, "seeks", &seeks);
    arg_list(args, &n, "advertise", &advertise);
    tf_cli_ctl_add_str(args, &n, "listen", listen);
    if (n == 0)
        return tf_cli_args_usage_error(cli, "nothing to change: give --name, --offers, --seeks, "
                                            "--advertise or --listen");
    if ((rc = tf_cli_ctl_run(&c, cli, "profile.set", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (!cli->json && res->type == MSGPACK_OBJECT_MAP) {
        char seq[32];
        tf_cli_render_field(seq, sizeof seq, res, "seq", TF_CLI_RENDER_UINT);
        printf("card re-issued as number %s and sent to your contacts\n", seq);
    }
    rc = print_profile(cli, res);
    if (rc == TF_CLI_EXIT_OK && !cli->json && listen != NULL)
        printf("the new listen address takes effect when twofoldd restarts\n");
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}
