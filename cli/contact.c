/* SPDX-License-Identifier: MIT */
#include "cli/contact.h"

#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/names.h"
#include "cli/render.h"
#include "node/contact.h"
#include "proto/card.h"
#include "proto/ctl.h"

/* The longest card text accepted; a card's text form is < 6 KiB. */
#define CARD_TEXT_MAX (16 * 1024)
/* What is read for one: a card with line breaks and indentation added. */
#define CARD_INPUT_MAX (2 * CARD_TEXT_MAX)

enum {
    OPT_ALIAS = 1,
    OPT_NO_ALIAS,
    OPT_TRUST,
    OPT_TAG,
    OPT_NO_TAGS,
    OPT_ADD_TAG,
    OPT_RM_TAG,
    OPT_BLOCK,
    OPT_UNBLOCK,
};

/* Tags given on the command line, checked as they are collected. */
struct tags {
    bool given;
    size_t n;
    const char *v[TF_NODE_TAGS_MAX];
};

static int tags_add(const struct tf_cli *cli, struct tags *t, const char *tag)
{
    int rc = tf_cli_args_check_tag(cli, "tag", tag);
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (t->n == TF_NODE_TAGS_MAX)
        return tf_cli_args_usage_error(cli, "a contact has at most %d tags", TF_NODE_TAGS_MAX);
    t->given = true;
    t->v[t->n++] = tag;
    return TF_CLI_EXIT_OK;
}

static int check_alias(const struct tf_cli *cli, const char *alias)
{
    if (tf_node_alias_is_valid(alias))
        return TF_CLI_EXIT_OK;
    return tf_cli_args_usage_error(cli,
                                   "'%s' is not an alias: use 1-32 of A-Z, a-z, 0-9, '.', '_' "
                                   "and '-', starting with a letter or digit, not with 'tf1'",
                                   alias);
}

static int check_trust(const struct tf_cli *cli, const char *trust)
{
    static const char *const names[] = {"close", "known", "acquaintance"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(trust, names[i]) == 0)
            return TF_CLI_EXIT_OK;
    return tf_cli_args_usage_error(cli, "trust '%s' is not close, known or acquaintance", trust);
}

static void arg_tags(struct tf_cli_ctl_arg *args, size_t *n, const char *key, const struct tags *t)
{
    if (t->given)
        args[(*n)++] =
            (struct tf_cli_ctl_arg){.key = key, .type = TF_CLI_CTL_STRS, .strs = t->v, .n = t->n};
}

/* Parses a verb that takes NAME|ID and no options, connects and calls. */
static int call_named(struct tf_cli *cli, int argc, char **argv, const char *verb,
                      struct tf_cli_ctl *c, const msgpack_object **result)
{
    struct tf_cli_args a;
    struct tf_cli_ctl_arg arg;
    size_t n = 0;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 1, 1, "NAME|ID") != 0)
        return TF_CLI_EXIT_USAGE;
    if (a.pos[0][0] == '\0')
        return tf_cli_args_usage_error(cli, "the name is empty");
    tf_cli_ctl_add_str(&arg, &n, "name", a.pos[0]);
    return tf_cli_ctl_run(c, cli, verb, &arg, n, result);
}

/* Adds the keys `contact list --json` promises, should the node leave any
 * out, so scripts can rely on them. */
static json_t *contact_json(const msgpack_object *o)
{
    static const char *const keys[] = {"id", "alias", "name", "trust", "introduced_by", "intro"};
    json_t *j = tf_cli_render_json(o);
    if (!json_is_object(j))
        return j;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (json_object_get(j, keys[i]) == NULL && json_object_set_new(j, keys[i], json_null()))
            goto oom;
    if (json_object_get(j, "tags") == NULL && json_object_set_new(j, "tags", json_array()) != 0)
        goto oom;
    return j;
oom:
    json_decref(j);
    return NULL;
}

/* One line for people after add or set: "added Bob (tf1qxyz...) as bob, trust known". */
static void print_summary(const char *what, const msgpack_object *c)
{
    char name[512], id[64], alias[64], trust[32];
    tf_cli_render_field(name, sizeof name, c, "name", TF_CLI_RENDER_TEXT);
    tf_cli_render_field(id, sizeof id, c, "id", TF_CLI_RENDER_SHORT_ID);
    tf_cli_render_field(alias, sizeof alias, c, "alias", TF_CLI_RENDER_TEXT);
    tf_cli_render_field(trust, sizeof trust, c, "trust", TF_CLI_RENDER_TEXT);
    printf("%s %s (%s...)", what, name, id);
    if (strcmp(alias, "-") != 0)
        printf(" as %s", alias);
    printf(", trust %s\n", trust);
}

/* Prints a contact: JSON, or for people the summary line. */
static int print_contact(const struct tf_cli *cli, const char *what, const msgpack_object *c)
{
    if (cli->json)
        return tf_cli_render_json_print(cli, contact_json(c), false);
    print_summary(what, c);
    return TF_CLI_EXIT_OK;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Puts the card text into buf (NUL-terminated, every whitespace character
 * removed): arg itself, or stdin if arg is "-".  A card has none of its own
 * (tfcard1: and base64url), so this undoes the line breaks and indentation
 * that mail clients and terminals insert (wrapping at 76 or 80 columns, CRLF)
 * without changing what is checked. */
static int card_text(const struct tf_cli *cli, const char *arg, char *buf, size_t cap)
{
    size_t len = 0;
    int rc;
    if (strcmp(arg, "-") != 0) {
        len = strlen(arg);
        if (len < cap)
            memcpy(buf, arg, len);
    } else if ((rc = tf_cli_args_read_stdin(cli, "paste the card, then press Ctrl-D:", buf, cap,
                                            &len)) != TF_CLI_EXIT_OK) {
        return rc;
    }
    if (len >= cap)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "that is too long to be a card");
    size_t out = 0;
    for (size_t i = 0; i < len; i++)
        if (!is_space(buf[i]))
            buf[out++] = buf[i];
    buf[out] = '\0';
    return TF_CLI_EXIT_OK;
}

int tf_cli_contact_add(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_opt opts[] = {
        {"alias", true, OPT_ALIAS},
        {"trust", true, OPT_TRUST},
        {"tag", true, OPT_TAG},
        {NULL, false, 0},
    };
    static char text_buf[CARD_INPUT_MAX];
    struct tf_cli_args a;
    struct tags tags = {0};
    const char *val, *alias = NULL, *trust = NULL, *text;
    struct tf_cli_ctl_arg args[4];
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    size_t n = 0;
    int id = 0, rc = TF_CLI_EXIT_OK;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while (rc == TF_CLI_EXIT_OK && (id = tf_cli_args_next(&a, &val)) > 0) {
        if (id == OPT_ALIAS)
            rc = check_alias(cli, alias = val);
        else if (id == OPT_TRUST)
            rc = check_trust(cli, trust = val);
        else
            rc = tags_add(cli, &tags, val);
    }
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (id < 0 || tf_cli_args_want(&a, 1, 1, "CARD (the text from 'twofold card', or - for stdin)"))
        return TF_CLI_EXIT_USAGE;
    if ((rc = card_text(cli, a.pos[0], text_buf, sizeof text_buf)) != TF_CLI_EXIT_OK)
        return rc;
    text = text_buf;

    /* Check the card here, so a mistyped or altered one is refused before
     * anything is sent; the node checks it again before storing it. */
    struct tf_proto_buf signed_card = {0};
    struct tf_proto_card card;
    rc = tf_proto_card_from_text(text, strlen(text), &signed_card, &card);
    tf_proto_buf_free(&signed_card);
    if (rc != TF_OK)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL,
                                  "card refused: %s; nothing was stored (ask for the card again: "
                                  "'twofold card' prints it)",
                                  tf_strerror(rc));

    tf_cli_ctl_add_str(args, &n, "card", text);
    tf_cli_ctl_add_str(args, &n, "alias", alias);
    tf_cli_ctl_add_str(args, &n, "trust", trust);
    arg_tags(args, &n, "tags", &tags);
    if ((rc = tf_cli_ctl_run(&c, cli, "contact.add", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    uint64_t added = 0, updated = 0;
    bool is_new = tf_proto_ctl_get_uint(res, "added", &added) != TF_OK ||
                  tf_proto_ctl_get_uint(res, "updated", &updated) != TF_OK || added == updated;
    rc = print_contact(cli, is_new ? "added" : "updated", res);
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_contact_list(struct tf_cli *cli, int argc, char **argv)
{
    static const char *const headers[] = {"ALIAS", "NAME",  "TRUST",        "TAGS",
                                          "ID",    "ADDED", "INTRODUCED BY"};
    struct tf_cli_args a;
    struct tf_cli_ctl c = {0};
    struct tf_cli_ctl_page page = {0};
    struct tf_cli_ctl_arg args[2];
    size_t n = 0;
    struct tf_cli_render_table t;
    struct tf_cli_names names;
    const msgpack_object *res;
    int rc;

    if (tf_cli_ctl_page_parse(&a, cli, argc, argv, &page, 0) != 0)
        return TF_CLI_EXIT_USAGE;
    tf_cli_ctl_page_args(&page, args, &n);
    if ((rc = tf_cli_ctl_run(&c, cli, "contact.list", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (res->type != MSGPACK_OBJECT_ARRAY) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed contact list");
        goto cleanup;
    }
    const msgpack_object_array *list = &res->via.array;
    if (cli->json) {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr != NULL && i < list->size; i++) {
            if (json_array_append_new(arr, contact_json(&list->ptr[i])) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        rc = tf_cli_render_json_print(cli, arr, false);
        goto cleanup;
    }
    if (list->size == 0) {
        if (page.after != NULL || page.before != NULL)
            printf("no contacts %s that one\n", page.after != NULL ? "after" : "before");
        else
            printf("no contacts yet; add one with: twofold contact add CARD\n");
        goto cleanup;
    }
    tf_cli_names_init(&names, cli);
    tf_cli_render_table_init(&t, sizeof headers / sizeof headers[0], headers);
    for (uint32_t i = 0; i < list->size; i++) {
        const msgpack_object *o = &list->ptr[i];
        char trust[32], cell[48];
        bool blocked = false;
        tf_cli_render_field(trust, sizeof trust, o, "trust", TF_CLI_RENDER_TEXT);
        if (tf_proto_ctl_get_bool(o, "blocked", &blocked) != TF_OK)
            blocked = false;
        snprintf(cell, sizeof cell, "%s%s", trust, blocked ? ", blocked" : "");
        tf_cli_render_table_add_field(&t, o, "alias", TF_CLI_RENDER_TEXT);
        tf_cli_render_table_add_field(&t, o, "name", TF_CLI_RENDER_TEXT);
        tf_cli_render_table_add(&t, cell);
        tf_cli_render_table_add_field(&t, o, "tags", TF_CLI_RENDER_LIST);
        tf_cli_render_table_add_field(&t, o, "id", TF_CLI_RENDER_SHORT_ID);
        tf_cli_render_table_add_field(&t, o, "added", TF_CLI_RENDER_AGO);
        const char *by;
        size_t by_len;
        if (tf_proto_ctl_get_str(o, "introduced_by", &by, &by_len) == TF_OK) {
            char label[128];
            tf_cli_names_label(&names, by, by_len, label, sizeof label);
            tf_cli_render_table_add(&t, label);
        } else {
            tf_cli_render_table_add(&t, "-");
        }
    }
    rc = tf_cli_render_table_print(&t, cli);
    tf_cli_render_table_deinit(&t);
    tf_cli_names_deinit(&names);
    if (rc == TF_CLI_EXIT_OK)
        tf_cli_ctl_page_hint(cli, "twofold contact list", &page, list, false);
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_contact_show(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_render_row rows[] = {
        {"alias", "alias", TF_CLI_RENDER_TEXT},
        {"name", "name", TF_CLI_RENDER_TEXT},
        {"id", "id", TF_CLI_RENDER_TEXT},
        {"fingerprint", "fingerprint", TF_CLI_RENDER_TEXT},
        {"trust", "trust", TF_CLI_RENDER_TEXT},
        {"tags", "tags", TF_CLI_RENDER_LIST},
        {"blocked", "blocked", TF_CLI_RENDER_YESNO},
        {"addresses", "addrs", TF_CLI_RENDER_LIST},
        {"offers", "offers", TF_CLI_RENDER_LIST},
        {"seeks", "seeks", TF_CLI_RENDER_LIST},
    };
    static const struct tf_cli_render_row rows_after[] = {
        {"intro", "intro", TF_CLI_RENDER_SHORT_ID},
        {"card number", "seq", TF_CLI_RENDER_UINT},
        {"added", "added", TF_CLI_RENDER_AGO},
        {"updated", "updated", TF_CLI_RENDER_AGO},
        {"intros", "intros_summary", TF_CLI_RENDER_TEXT}, /* requests: your intros of them */
        {"card", "card", TF_CLI_RENDER_TEXT},
    };
    struct tf_cli_ctl c = {0};
    struct tf_cli_names names;
    const msgpack_object *res;
    const char *p;
    size_t len;
    char label[128];
    int rc = call_named(cli, argc, argv, "contact.show", &c, &res);
    if (rc == TF_CLI_EXIT_OK && cli->json) {
        rc = tf_cli_render_json_print(cli, contact_json(res), false);
    } else if (rc == TF_CLI_EXIT_OK) {
        tf_cli_render_rows(res, rows, sizeof rows / sizeof rows[0]);
        /* Who introduced them, by the name you know them by. */
        if (tf_proto_ctl_get_str(res, "introduced_by", &p, &len) == TF_OK) {
            tf_cli_names_init(&names, cli);
            tf_cli_names_label(&names, p, len, label, sizeof label);
            tf_cli_names_deinit(&names);
            tf_cli_render_kv("introduced by", label);
        }
        tf_cli_render_rows(res, rows_after, sizeof rows_after / sizeof rows_after[0]);
    }
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_contact_rm(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    char id[128];
    int rc = call_named(cli, argc, argv, "contact.rm", &c, &res);
    if (rc == TF_CLI_EXIT_OK && cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    } else if (rc == TF_CLI_EXIT_OK) {
        tf_cli_render_field(id, sizeof id, res, "removed", TF_CLI_RENDER_TEXT);
        printf("removed %s\n", id);
    }
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_contact_set(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_opt opts[] = {
        {"alias", true, OPT_ALIAS},      {"no-alias", false, OPT_NO_ALIAS},
        {"trust", true, OPT_TRUST},      {"tag", true, OPT_TAG},
        {"no-tags", false, OPT_NO_TAGS}, {"add-tag", true, OPT_ADD_TAG},
        {"rm-tag", true, OPT_RM_TAG},    {"block", false, OPT_BLOCK},
        {"unblock", false, OPT_UNBLOCK}, {NULL, false, 0},
    };
    struct tf_cli_args a;
    struct tags tags = {0}, add = {0}, rm = {0};
    const char *val, *alias = NULL, *trust = NULL;
    bool no_alias = false, block = false, unblock = false;
    struct tf_cli_ctl_arg args[7];
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    size_t n = 0;
    int id = 0, rc = TF_CLI_EXIT_OK;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while (rc == TF_CLI_EXIT_OK && (id = tf_cli_args_next(&a, &val)) > 0) {
        switch (id) {
        case OPT_ALIAS:
            rc = check_alias(cli, alias = val);
            break;
        case OPT_NO_ALIAS:
            no_alias = true;
            break;
        case OPT_TRUST:
            rc = check_trust(cli, trust = val);
            break;
        case OPT_TAG:
            rc = tags_add(cli, &tags, val);
            break;
        case OPT_NO_TAGS:
            tags.given = true;
            break;
        case OPT_ADD_TAG:
            rc = tags_add(cli, &add, val);
            break;
        case OPT_RM_TAG:
            rc = tags_add(cli, &rm, val);
            break;
        case OPT_BLOCK:
            block = true;
            break;
        default:
            unblock = true;
            break;
        }
    }
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (id < 0 || tf_cli_args_want(&a, 1, 1, "NAME|ID") != 0)
        return TF_CLI_EXIT_USAGE;
    if (alias != NULL && no_alias)
        return tf_cli_args_usage_error(cli, "give --alias or --no-alias, not both");
    if (block && unblock)
        return tf_cli_args_usage_error(cli, "give --block or --unblock, not both");
    if (tags.given && (add.given || rm.given))
        return tf_cli_args_usage_error(cli, "--tag and --no-tags replace all tags; do not mix "
                                            "them with --add-tag or --rm-tag");

    tf_cli_ctl_add_str(args, &n, "name", a.pos[0]);
    if (alias != NULL || no_alias)
        tf_cli_ctl_add_str(args, &n, "alias", no_alias ? "" : alias);
    tf_cli_ctl_add_str(args, &n, "trust", trust);
    arg_tags(args, &n, "tags", &tags);
    arg_tags(args, &n, "add_tags", &add);
    arg_tags(args, &n, "rm_tags", &rm);
    if (block || unblock)
        args[n++] = (struct tf_cli_ctl_arg){.key = "blocked", .type = TF_CLI_CTL_BOOL, .b = block};
    if (n == 1)
        return tf_cli_args_usage_error(cli, "nothing to change: give --alias, --no-alias, "
                                            "--trust, --tag, --no-tags, --add-tag, --rm-tag, "
                                            "--block or --unblock");
    if ((rc = tf_cli_ctl_run(&c, cli, "contact.set", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    rc = print_contact(cli, "updated", res);
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

/* contact block|unblock NAME|ID: contact.set with only `blocked`. */
static int set_blocked(struct tf_cli *cli, int argc, char **argv, bool blocked)
{
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[2];
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    char who[512];
    size_t n = 0;
    int rc;

    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 1, 1, "NAME|ID") != 0)
        return TF_CLI_EXIT_USAGE;
    if (a.pos[0][0] == '\0')
        return tf_cli_args_usage_error(cli, "the name is empty");
    tf_cli_ctl_add_str(args, &n, "name", a.pos[0]);
    args[n++] = (struct tf_cli_ctl_arg){.key = "blocked", .type = TF_CLI_CTL_BOOL, .b = blocked};
    if ((rc = tf_cli_ctl_run(&c, cli, "contact.set", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, contact_json(res), false);
        goto cleanup;
    }
    /* Your name for them, else theirs, else what was typed. */
    tf_cli_render_field(who, sizeof who, res, "alias", TF_CLI_RENDER_TEXT);
    if (strcmp(who, "-") == 0 || strcmp(who, "?") == 0)
        tf_cli_render_field(who, sizeof who, res, "name", TF_CLI_RENDER_TEXT);
    if (strcmp(who, "-") == 0 || strcmp(who, "?") == 0)
        tf_cli_render_clean(who, sizeof who, a.pos[0], strlen(a.pos[0]));
    if (blocked)
        printf("blocked %s: their proposals are now dropped\n", who);
    else
        printf("unblocked %s\n", who);
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_contact_block(struct tf_cli *cli, int argc, char **argv)
{
    return set_blocked(cli, argc, argv, true);
}

int tf_cli_contact_unblock(struct tf_cli *cli, int argc, char **argv)
{
    return set_blocked(cli, argc, argv, false);
}
