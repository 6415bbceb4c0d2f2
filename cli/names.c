/* SPDX-License-Identifier: MIT */
#include "cli/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/render.h"
#include "node/contact.h"
#include "proto/ctl.h"
#include "proto/identity.h"

struct tf_cli_names_entry {
    char id[TF_PROTO_TEXT_ID_SIZE];
    char label[192];
};

void tf_cli_names_init(struct tf_cli_names *nm, const struct tf_cli *cli)
{
    memset(nm, 0, sizeof *nm);
    nm->cli = cli;
}

void tf_cli_names_deinit(struct tf_cli_names *nm)
{
    tf_cli_ctl_close(&nm->c);
    free(nm->e);
    memset(nm, 0, sizeof *nm);
}

void tf_cli_names_clear(struct tf_cli_names *nm)
{
    nm->n = 0;
}

bool tf_cli_names_is_text_id(const char *p, size_t n)
{
    return n == TF_PROTO_TEXT_ID_SIZE - 1 && memcmp(p, "tf1", 3) == 0;
}

/* Opens the names' own connection at the first lookup; false if there is
 * none (then ids stay ids and no marks are added). */
static bool connected(struct tf_cli_names *nm)
{
    if (!nm->tried) {
        nm->tried = true;
        /* tf_cli_ctl_open prints why it fails: a second connection to a node
         * that just answered the first one rarely does.  Then ids stay. */
        if (tf_cli_ctl_open(&nm->c, nm->cli) != TF_CLI_EXIT_OK)
            tf_cli_ctl_close(&nm->c);
    }
    return nm->c.connected;
}

/* Asks the node for the contact that `name` (an alias or an id) designates;
 * false if none.  Its text id goes to id, how the owner calls it (alias,
 * else short id) to alias. */
static bool resolve(struct tf_cli_names *nm, const char *name, char id[TF_PROTO_TEXT_ID_SIZE],
                    char *alias, size_t cap)
{
    const msgpack_object *res;
    if (!connected(nm))
        return false;
    struct tf_cli_ctl_arg arg = {.key = "name", .type = TF_CLI_CTL_STR, .str = name};
    nm->c.quiet_refusal = true;
    if (tf_cli_ctl_call(&nm->c, "contact.show", &arg, 1, &res) != TF_CLI_EXIT_OK)
        return false;
    tf_cli_render_field(id, TF_PROTO_TEXT_ID_SIZE, res, "id", TF_CLI_RENDER_TEXT);
    tf_cli_render_field(alias, cap, res, "alias", TF_CLI_RENDER_TEXT);
    if (strcmp(alias, "-") == 0)
        tf_cli_render_field(alias, cap, res, "id", TF_CLI_RENDER_SHORT_ID);
    return true;
}

/* Copies the string obj[key] into buf if it is one without NUL bytes that
 * fits; else "". */
static void copy_str(char *buf, size_t cap, const msgpack_object *obj, const char *key)
{
    const char *p;
    size_t n;
    buf[0] = '\0';
    if (tf_proto_ctl_get_str(obj, key, &p, &n) != TF_OK || n >= cap || memchr(p, '\0', n))
        return;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

void tf_cli_names_who(struct tf_cli_names *nm, const msgpack_object *obj, const char *key,
                      char *buf, size_t cap)
{
    char id[TF_PROTO_TEXT_ID_SIZE], name[256], key_name[64], other[TF_PROTO_TEXT_ID_SIZE];
    char alias[TF_NODE_ALIAS_MAX + 16];
    tf_cli_render_field(buf, cap, obj, key, TF_CLI_RENDER_CONTACT);
    if (buf[0] != '"')
        return; /* the owner's alias, or an id */
    /* Copied first: the lookups below may reuse obj's buffer. */
    copy_str(id, sizeof id, obj, key);
    snprintf(key_name, sizeof key_name, "%s_name", key);
    copy_str(name, sizeof name, obj, key_name);
    if (name[0] == '\0')
        copy_str(name, sizeof name, obj, "name");
    if (!tf_cli_names_is_text_id(id, strlen(id)) || !connected(nm))
        return;
    bool stranger = !resolve(nm, id, other, alias, sizeof alias) || strcmp(other, id) != 0;
    /* The name is one of the owner's aliases.  Only a name shaped like an
     * alias is looked up, so that a name such as a text id is not taken for
     * one (contact.show resolves ids too). */
    bool taken = tf_node_alias_is_valid(name) && resolve(nm, name, other, alias, sizeof alias) &&
                 strcmp(other, id) != 0;
    size_t len = strlen(buf);
    if (stranger || taken)
        snprintf(buf + len, cap - len, " (%s%s%s%s)", stranger ? "stranger" : "",
                 stranger && taken ? ", " : "", taken ? "not your " : "", taken ? alias : "");
}

/* Asks the node for the contact's label (tf_cli_names_who); "" if it has
 * none. */
static void look_up(struct tf_cli_names *nm, const char *id, char *label, size_t cap)
{
    const msgpack_object *res;
    label[0] = '\0';
    if (!connected(nm))
        return;
    struct tf_cli_ctl_arg arg = {.key = "name", .type = TF_CLI_CTL_STR, .str = id};
    nm->c.quiet_refusal = true;
    if (tf_cli_ctl_call(&nm->c, "contact.show", &arg, 1, &res) != TF_CLI_EXIT_OK)
        return;
    tf_cli_names_who(nm, res, "id", label, cap);
    if (strcmp(label, "-") == 0)
        label[0] = '\0';
}

int tf_cli_names_print_list(struct tf_cli *cli, const char *verb, const struct tf_cli_ctl_arg *args,
                            size_t n, const char *empty, const struct tf_cli_render_row *cols,
                            size_t ncols)
{
    struct tf_cli_ctl c = {0};
    struct tf_cli_names names;
    struct tf_cli_render_table t;
    const msgpack_object *res;
    const char **headers = NULL;
    char cell[256];
    tf_cli_names_init(&names, cli);
    int rc = tf_cli_ctl_run(&c, cli, verb, args, n, &res);
    if (rc != TF_CLI_EXIT_OK)
        goto cleanup;
    if (res->type != MSGPACK_OBJECT_ARRAY) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed %s reply", verb);
        goto cleanup;
    }
    if (cli->json || res->via.array.size == 0) {
        if (cli->json)
            rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
        else
            printf("%s\n", empty);
        goto cleanup;
    }
    if ((headers = calloc(ncols, sizeof *headers)) == NULL) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
        goto cleanup;
    }
    for (size_t k = 0; k < ncols; k++)
        headers[k] = cols[k].label;
    tf_cli_render_table_init(&t, ncols, headers);
    for (uint32_t i = 0; i < res->via.array.size; i++) {
        const msgpack_object *o = &res->via.array.ptr[i];
        for (size_t k = 0; k < ncols; k++) {
            if (cols[k].kind != TF_CLI_RENDER_CONTACT) {
                tf_cli_render_table_add_field(&t, o, cols[k].key, cols[k].kind);
                continue;
            }
            tf_cli_names_who(&names, o, cols[k].key, cell, sizeof cell);
            tf_cli_render_table_add(&t, cell);
        }
    }
    rc = tf_cli_render_table_print(&t, cli);
    tf_cli_render_table_deinit(&t);
cleanup:
    free(headers);
    tf_cli_names_deinit(&names);
    tf_cli_ctl_close(&c);
    return rc;
}

void tf_cli_names_label(struct tf_cli_names *nm, const char *p, size_t n, char *buf, size_t cap)
{
    char id[TF_PROTO_TEXT_ID_SIZE];
    if (!tf_cli_names_is_text_id(p, n)) {
        tf_cli_render_clean(buf, cap, p, n);
        return;
    }
    memcpy(id, p, n);
    id[n] = '\0';
    for (size_t i = 0; i < nm->n; i++) {
        if (strcmp(nm->e[i].id, id) == 0) {
            snprintf(buf, cap, "%s", nm->e[i].label);
            return;
        }
    }
    struct tf_cli_names_entry e;
    memcpy(e.id, id, sizeof id);
    look_up(nm, id, e.label, sizeof e.label);
    if (e.label[0] == '\0')
        tf_cli_render_clean(e.label, sizeof e.label, id, 12);
    snprintf(buf, cap, "%s", e.label);
    if (nm->n == nm->cap && nm->cap < TF_CLI_NAMES_MAX) {
        size_t cap2 = nm->cap ? nm->cap * 2 : 16;
        struct tf_cli_names_entry *g = realloc(nm->e, cap2 * sizeof *g);
        if (g == NULL)
            return; /* not remembered: looked up again next time */
        nm->e = g;
        nm->cap = cap2;
    }
    if (nm->n < nm->cap)
        nm->e[nm->n++] = e;
}
