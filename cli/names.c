/* SPDX-License-Identifier: MIT */
#include "cli/names.h"

#include <stdlib.h>
#include <string.h>

#include "proto/ctl.h"
#include "proto/identity.h"

struct tf_cli_names_entry {
    char id[TF_PROTO_TEXT_ID_SIZE];
    char label[72];
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

/* Asks the node for the contact's alias or name; "" if it has none. */
static void look_up(struct tf_cli_names *nm, const char *id, char *label, size_t cap)
{
    const msgpack_object *res;
    label[0] = '\0';
    if (!nm->tried) {
        nm->tried = true;
        /* tf_cli_ctl_open prints why it fails: a second connection to a node
         * that just answered the first one rarely does.  Then ids stay. */
        if (tf_cli_ctl_open(&nm->c, nm->cli) != TF_CLI_EXIT_OK)
            tf_cli_ctl_close(&nm->c);
    }
    if (!nm->c.connected)
        return;
    struct tf_cli_ctl_arg arg = {.key = "name", .type = TF_CLI_CTL_STR, .str = id};
    nm->c.quiet_refusal = true;
    if (tf_cli_ctl_call(&nm->c, "contact.show", &arg, 1, &res) != TF_CLI_EXIT_OK)
        return;
    tf_cli_render_field(label, cap, res, "alias", TF_CLI_RENDER_TEXT);
    if (strcmp(label, "-") == 0)
        tf_cli_render_field(label, cap, res, "name", TF_CLI_RENDER_TEXT);
    if (strcmp(label, "-") == 0)
        label[0] = '\0';
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
