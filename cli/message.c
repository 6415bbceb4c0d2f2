/* SPDX-License-Identifier: MIT */
#include "cli/message.h"

#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/render.h"
#include "node/store.h"
#include "proto/ctl.h"

/* Room for the longest note read from stdin plus the line breaks that end
 * it, so a note of exactly the maximum piped in with echo still fits. */
#define STDIN_MAX (TF_NODE_MESSAGE_TEXT_MAX + 64)

/* Points *text at the note: arg itself, or if arg is "-" stdin without the
 * line breaks that end it (kept in buf, NUL-terminated).  The node would
 * refuse an empty, overlong or non-UTF-8 note too; checking here says so
 * without a round trip, and keeps NUL bytes from cutting the note short. */
static int note_text(const struct tf_cli *cli, const char *arg, char *buf, size_t cap,
                     const char **text)
{
    size_t len = strlen(arg);
    int rc;
    *text = arg;
    if (strcmp(arg, "-") == 0) {
        if ((rc = tf_cli_args_read_stdin(cli, "type the message, then press Ctrl-D:", buf, cap - 1,
                                         &len)) != TF_CLI_EXIT_OK)
            return rc;
        /* A full buffer left more unread: too long, whatever ends it. */
        while (len > 0 && len < cap - 1 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        buf[len] = '\0';
        *text = buf;
    }
    return tf_cli_args_check_text(cli, "the message", *text, len, TF_NODE_MESSAGE_TEXT_MAX);
}

int tf_cli_message_send(struct tf_cli *cli, int argc, char **argv)
{
    static char text_buf[STDIN_MAX + 1];
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[2];
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    const char *text;
    char who[128], id[64];
    int rc;

    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 2, 2, "NAME|ID and TEXT") != 0)
        return TF_CLI_EXIT_USAGE;
    if (a.pos[0][0] == '\0')
        return tf_cli_args_usage_error(cli, "the name is empty");
    if ((rc = note_text(cli, a.pos[1], text_buf, sizeof text_buf, &text)) != TF_CLI_EXIT_OK)
        return rc;
    args[0] = (struct tf_cli_ctl_arg){.key = "name", .type = TF_CLI_CTL_STR, .str = a.pos[0]};
    args[1] = (struct tf_cli_ctl_arg){.key = "text", .type = TF_CLI_CTL_STR, .str = text};
    if ((rc = tf_cli_ctl_run(&c, cli, "message.send", args, 2, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    } else {
        tf_cli_render_clean(who, sizeof who, a.pos[0], strlen(a.pos[0]));
        tf_cli_render_field(id, sizeof id, res, "id", TF_CLI_RENDER_TEXT);
        printf("queued note to %s (id %s)\n", who, id);
    }
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_message_list(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_render_row cols[] = {
        {"TIME", "time", TF_CLI_RENDER_AGO},           {"DIR", "direction", TF_CLI_RENDER_TEXT},
        {"CONTACT", "contact", TF_CLI_RENDER_CONTACT}, {"STATE", "state", TF_CLI_RENDER_TEXT},
        {"TEXT", "text", TF_CLI_RENDER_LINE},
    };
    struct tf_cli_args a;
    struct tf_cli_ctl_page page = {0};
    struct tf_cli_ctl_arg args[3];
    size_t n = 0;
    const char *empty = "no messages yet; send one with: twofold message NAME TEXT";
    char who[128], buf[192], cmd[160] = "twofold messages";

    if (tf_cli_ctl_page_parse(&a, cli, argc, argv, &page, 1) != 0)
        return TF_CLI_EXIT_USAGE;
    if (a.n_pos == 1) {
        if (a.pos[0][0] == '\0')
            return tf_cli_args_usage_error(cli, "the name is empty");
        tf_cli_ctl_add_str(args, &n, "name", a.pos[0]);
        tf_cli_render_clean(who, sizeof who, a.pos[0], strlen(a.pos[0]));
        snprintf(buf, sizeof buf, "no messages with %s", who);
        snprintf(cmd, sizeof cmd, "twofold messages %s", who);
        empty = buf;
    }
    if (page.after != NULL || page.before != NULL)
        empty = page.after != NULL ? "no messages after that one" : "no messages before that one";
    tf_cli_ctl_page_args(&page, args, &n);
    return tf_cli_ctl_print_page(cli, "message.list", args, n, empty, cols,
                                 sizeof cols / sizeof cols[0], cmd, &page, true);
}

int tf_cli_message_outbox(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_render_row cols[] = {
        {"TO", "to", TF_CLI_RENDER_CONTACT},
        {"TYPE", "type", TF_CLI_RENDER_TEXT},
        {"ATTEMPTS", "attempts", TF_CLI_RENDER_UINT},
        {"NEXT TRY", "next_try", TF_CLI_RENDER_DUE_MS},
        {"EXPIRES", "expires", TF_CLI_RENDER_AGO},
        {"LAST ERROR", "last_error", TF_CLI_RENDER_LINE},
    };
    struct tf_cli_args a;
    struct tf_cli_ctl_page page = {.id_key = "msg_id"};
    struct tf_cli_ctl_arg args[2];
    size_t n = 0;
    const char *empty = "the outbox is empty";

    if (tf_cli_ctl_page_parse(&a, cli, argc, argv, &page, 0) != 0)
        return TF_CLI_EXIT_USAGE;
    if (page.after != NULL || page.before != NULL)
        empty = page.after != NULL ? "nothing after that entry" : "nothing before that entry";
    tf_cli_ctl_page_args(&page, args, &n);
    return tf_cli_ctl_print_page(cli, "outbox.list", args, n, empty, cols,
                                 sizeof cols / sizeof cols[0], "twofold outbox", &page, false);
}
