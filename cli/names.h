/* SPDX-License-Identifier: MIT */
/*
 * Names for people instead of 63-character ids: a text id (tf1...) is shown
 * as the contact's alias, else the name they chose quoted with the short id
 * ("\"bob\" tf1abcdefghi"), else its first 12 characters.  A chosen name is
 * marked when its holder is not a contact ("stranger") or when it is one of
 * the owner's aliases ("not your bob"): a peer can call itself anything.
 * Looked up with contact.show over a connection of its own (so a caller's
 * reply stays valid), once per id, and remembered.
 */
#ifndef TF_CLI_NAMES_H
#define TF_CLI_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/ctl.h"
#include "cli/render.h"

/* At most this many ids are remembered; beyond, ids are shown short. */
#define TF_CLI_NAMES_MAX 4096

struct tf_cli_names_entry;

struct tf_cli_names {
    const struct tf_cli *cli; /* borrowed */
    struct tf_cli_ctl c;      /* opened at the first lookup */
    bool tried;               /* c was opened (or failed to open) */
    struct tf_cli_names_entry *e;
    size_t n, cap;
};

void tf_cli_names_init(struct tf_cli_names *nm, const struct tf_cli *cli);
void tf_cli_names_deinit(struct tf_cli_names *nm);
/* Forgets what was looked up (after a contact changed). */
void tf_cli_names_clear(struct tf_cli_names *nm);

/* True if p[0..n) has the shape of a text id (tf1 and 60 more characters). */
bool tf_cli_names_is_text_id(const char *p, size_t n);

/* Writes the label for the text id p[0..n) into buf (cleaned): the
 * contact's alias, else name, else the id cut to 12 characters.  Nothing is
 * printed when the lookup fails. */
void tf_cli_names_label(struct tf_cli_names *nm, const char *p, size_t n, char *buf, size_t cap);

/* Writes how the person whose text id is obj[key] is shown (cleaned): as
 * TF_CLI_RENDER_CONTACT, and a peer-chosen name followed by " (stranger)",
 * " (not your ALIAS)" or both when they apply.  obj may be a reply on nm's
 * own connection (it is read before the lookups).  Nothing is printed. */
void tf_cli_names_who(struct tf_cli_names *nm, const msgpack_object *obj, const char *key,
                      char *buf, size_t cap);

/* tf_cli_ctl_print_list, with TF_CLI_RENDER_CONTACT cells written by
 * tf_cli_names_who.  Returns an exit status. */
int tf_cli_names_print_list(struct tf_cli *cli, const char *verb, const struct tf_cli_ctl_arg *args,
                            size_t n, const char *empty, const struct tf_cli_render_row *cols,
                            size_t ncols);

#endif
