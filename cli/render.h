/* SPDX-License-Identifier: MIT */
/*
 * Output: one-line errors on stderr, JSON for scripts (through jansson, which
 * does the escaping), and aligned tables and "label  value" lists for people.
 *
 * Everything printed for people passes through the cleaner: control
 * characters (C0, DEL, C1), bidirectional-override characters and invalid
 * UTF-8 become '?', so a name on a card cannot move the cursor, recolour the
 * terminal or disguise itself.
 */
#ifndef TF_CLI_RENDER_H
#define TF_CLI_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack/object.h>

#include "cli/args.h"

/* Prints "CMD: message" (cleaned) as one line on stderr and returns code.
 * With --json it first prints {"error": {"name", "message", "exit"}} as one
 * line on stdout, name being E_USAGE, E_NODE, E_LOCAL or E_FAILED after the
 * exit status code (docs/twofold.1, JSON OUTPUT). */
int tf_cli_render_fail(const struct tf_cli *cli, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same without the JSON object, for a caller that printed its own. */
int tf_cli_render_fail_text(const struct tf_cli *cli, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes a cleaned copy of p[0..n) into buf (always NUL-terminated,
 * truncated at a character boundary if it does not fit). */
void tf_cli_render_clean(char *buf, size_t cap, const char *p, size_t n);

/* "just now", "5 min ago", "3 h ago", "2 days ago" (or "in 5 min" for a time
 * ahead of the clock). */
void tf_cli_render_ago(char *buf, size_t cap, uint64_t then, uint64_t now);

/* How a field of a reply is shown to people. */
enum tf_cli_render_kind {
    TF_CLI_RENDER_TEXT,       /* str, cleaned */
    TF_CLI_RENDER_LIST,       /* array of str, joined with ", " */
    TF_CLI_RENDER_UINT,       /* decimal */
    TF_CLI_RENDER_AGO,        /* unix time, relative */
    TF_CLI_RENDER_DURATION,   /* seconds, as "3 h" */
    TF_CLI_RENDER_BYTES,      /* bytes, as "1.5 MiB" */
    TF_CLI_RENDER_YESNO,      /* bool */
    TF_CLI_RENDER_SHORT_ID,   /* a text id cut to its first 12 characters */
    TF_CLI_RENDER_CONTACT,    /* obj's "<key>_alias" or "alias" as it is, else the name the
                                 peer chose ("<key>_name" or "name") quoted and followed by
                                 obj[key] as SHORT_ID ("\"bob\" tf1abcdefghi"), else obj[key]
                                 as SHORT_ID */
    TF_CLI_RENDER_PARTY,      /* obj[key] is an intro's side: CONTACT of its "contact", then
                                 its "state" in brackets: "alice (accepted)" */
    TF_CLI_RENDER_LINE,       /* str: its first line, cleaned, cut to 60 columns ("...") */
    TF_CLI_RENDER_PARA,       /* str: every line cleaned, the later ones indented to follow
                                 a label of tf_cli_render_rows */
    TF_CLI_RENDER_DUE_MS,     /* unix ms ahead: "in 3 s", or "now" once passed */
    TF_CLI_RENDER_SHORT_LINE, /* as LINE, cut to 30 columns */
};

/* Formats obj[key] into buf; "-" when absent or nil, "?" when of another
 * type than kind expects. */
void tf_cli_render_field(char *buf, size_t cap, const msgpack_object *obj, const char *key,
                         enum tf_cli_render_kind kind);

/* Formats the name a peer chose for itself, obj's "<key>_name" or "name",
 * quoted and followed by obj[key] as SHORT_ID: "\"bob\" tf1abcdefghi"
 * (quotes in it escaped); "-" if obj has no name. */
void tf_cli_render_peer_name(char *buf, size_t cap, const msgpack_object *obj, const char *key);

/* Formats any value for a one-line human listing (strings cleaned and
 * quoted if they hold spaces, arrays joined with ","). */
void tf_cli_render_value(char *buf, size_t cap, const msgpack_object *o);

/* One row of a "label  value" listing. */
struct tf_cli_render_row {
    const char *label;
    const char *key;
    enum tf_cli_render_kind kind;
};

/* Prints the rows whose key is present in obj (nil shown as "-"), labels
 * padded to one width. */
void tf_cli_render_rows(const msgpack_object *obj, const struct tf_cli_render_row *rows, size_t n);

/* Prints one "label  value" line (value printed as given: clean it first). */
void tf_cli_render_kv(const char *label, const char *value);

/* A table with a header line and columns padded to their widest cell.  Cells
 * are cleaned copies; allocation failures are remembered and reported by
 * tf_cli_render_table_print. */
struct tf_cli_render_table {
    size_t ncols;
    const char *const *headers; /* borrowed, ncols entries */
    char **cells;               /* owned, row-major */
    size_t n, cap;
    bool oom;
};

void tf_cli_render_table_init(struct tf_cli_render_table *t, size_t ncols,
                              const char *const *headers);
/* Appends a cell (cleaned copy of text). */
void tf_cli_render_table_add(struct tf_cli_render_table *t, const char *text);
/* Appends obj[key] formatted as by tf_cli_render_field. */
void tf_cli_render_table_add_field(struct tf_cli_render_table *t, const msgpack_object *obj,
                                   const char *key, enum tf_cli_render_kind kind);
/* Prints the table (bold header when cli->color).  Returns an exit status. */
int tf_cli_render_table_print(const struct tf_cli_render_table *t, const struct tf_cli *cli);
void tf_cli_render_table_deinit(struct tf_cli_render_table *t);

/* Prints the objects of list as a table, one row each: the rows' labels are
 * the headers, their keys and kinds the cells.  Returns an exit status. */
int tf_cli_render_list(const struct tf_cli *cli, const msgpack_object_array *list,
                       const struct tf_cli_render_row *cols, size_t ncols);

/* Converts a reply value to JSON; NULL on allocation failure.  Invalid UTF-8
 * in strings or keys is replaced by '?'.  The caller owns the reference. */
json_t *tf_cli_render_json(const msgpack_object *o);

/* Prints j (reference taken; NULL means allocation failed) on stdout, indented
 * or on one line, followed by a newline.  Returns an exit status. */
int tf_cli_render_json_print(const struct tf_cli *cli, json_t *j, bool one_line);

#endif
