/* SPDX-License-Identifier: MIT */
#include "cli/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/render.h"
#include "proto/card.h"
#include "proto/ctl.h"
#include "proto/mp.h"

enum { OPT_HOME = -100, OPT_JSON = -101, OPT_HELP = -102 };

/* Accepted by every verb, in any position. */
static const struct tf_cli_opt GLOBALS[] = {
    {"home", true, OPT_HOME},
    {"json", false, OPT_JSON},
    {"help", false, OPT_HELP},
    {NULL, false, 0},
};

void tf_cli_args_init(struct tf_cli_args *a, struct tf_cli *cli, int argc, char **argv,
                      const struct tf_cli_opt *opts)
{
    static const struct tf_cli_opt none[] = {{NULL, false, 0}};
    memset(a, 0, sizeof *a);
    a->cli = cli;
    a->argc = argc;
    a->argv = argv;
    a->opts = opts != NULL ? opts : none;
}

/* Finds "name" (n bytes, from "--name" or "--name=...") in table. */
static const struct tf_cli_opt *lookup(const struct tf_cli_opt *table, const char *name, size_t n)
{
    for (; table->name != NULL; table++)
        if (strlen(table->name) == n && memcmp(table->name, name, n) == 0)
            return table;
    return NULL;
}

/* The option of table nearest to name[0..n) by edit distance, if one is
 * near enough to suggest (proto/ctl.h); the first of equals. */
static const struct tf_cli_opt *nearest(const struct tf_cli_opt *table, const char *name, size_t n)
{
    const struct tf_cli_opt *best = NULL;
    size_t best_d = SIZE_MAX;
    for (; table->name != NULL; table++) {
        size_t len = strlen(table->name);
        if (!tf_proto_ctl_is_near(name, n, table->name, len))
            continue;
        size_t d = tf_proto_ctl_distance(name, n, table->name, len);
        if (d < best_d) {
            best = table;
            best_d = d;
        }
    }
    return best;
}

int tf_cli_args_usage_error(const struct tf_cli *cli, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tf_cli_render_fail(cli, TF_CLI_EXIT_USAGE, "%s (try '%s --help')", msg, cli->cmd);
}

static int add_positional(struct tf_cli_args *a, const char *arg)
{
    if (a->n_pos == TF_CLI_ARGS_POS_MAX) {
        tf_cli_args_usage_error(a->cli, "too many arguments");
        return -1;
    }
    a->pos[a->n_pos++] = arg;
    return 0;
}

int tf_cli_args_next(struct tf_cli_args *a, const char **val)
{
    while (a->next < a->argc) {
        const char *arg = a->argv[a->next];
        bool is_opt = !a->opts_done && arg[0] == '-' && arg[1] != '\0';
        if (!is_opt) {
            if (a->stop_at_positional)
                return 0;
            a->next++;
            if (add_positional(a, arg) != 0)
                return -1;
            continue;
        }
        a->next++;
        if (strcmp(arg, "--") == 0) {
            a->opts_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (arg[1] != '-') {
            tf_cli_args_usage_error(a->cli, "unknown option '%s'", arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const struct tf_cli_opt *o = lookup(a->opts, name, n);
        if (o == NULL)
            o = lookup(GLOBALS, name, n);
        if (o == NULL) {
            const struct tf_cli_opt *near = nearest(a->opts, name, n);
            if (near == NULL)
                near = nearest(GLOBALS, name, n);
            if (near != NULL)
                tf_cli_args_usage_error(a->cli, "unknown option '--%.*s' (did you mean '--%s'?)",
                                        (int)n, name, near->name);
            else
                tf_cli_args_usage_error(a->cli, "unknown option '--%.*s'", (int)n, name);
            return -1;
        }
        const char *v = NULL;
        if (o->has_arg) {
            if (eq != NULL)
                v = eq + 1;
            else if (a->next < a->argc)
                v = a->argv[a->next++];
            else {
                tf_cli_args_usage_error(a->cli, "option '--%s' needs a value", o->name);
                return -1;
            }
        } else if (eq != NULL) {
            tf_cli_args_usage_error(a->cli, "option '--%s' takes no value", o->name);
            return -1;
        }
        switch (o->id) {
        case OPT_HOME:
            a->cli->home_arg = v;
            continue;
        case OPT_JSON:
            a->cli->json = true;
            continue;
        case OPT_HELP:
            a->help = true;
            continue;
        default:
            *val = v;
            return o->id;
        }
    }
    return 0;
}

int tf_cli_args_want(const struct tf_cli_args *a, size_t min, size_t max, const char *what)
{
    if (a->n_pos < min) {
        tf_cli_args_usage_error(a->cli, "missing %s", what);
        return -1;
    }
    if (a->n_pos > max) {
        tf_cli_args_usage_error(a->cli, "unexpected argument '%s'", a->pos[max]);
        return -1;
    }
    return 0;
}

int tf_cli_args_parse_plain(struct tf_cli_args *a, struct tf_cli *cli, int argc, char **argv,
                            size_t min, size_t max, const char *what)
{
    const char *val;
    tf_cli_args_init(a, cli, argc, argv, NULL);
    if (tf_cli_args_next(a, &val) < 0)
        return -1;
    return tf_cli_args_want(a, min, max, what);
}

int tf_cli_args_home(struct tf_cli *cli)
{
    int rc = tf_node_home_resolve(cli->home_arg, cli->home, sizeof cli->home);
    if (rc == -ENAMETOOLONG)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "the home directory path is too long");
    if (rc != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                                  "cannot tell where the twofold home is: give --home DIR or set "
                                  "TWOFOLD_HOME");
    return TF_CLI_EXIT_OK;
}

int tf_cli_args_read_stdin(const struct tf_cli *cli, const char *prompt, char *buf, size_t cap,
                           size_t *len)
{
    *len = 0;
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "%s\n", prompt);
    for (ssize_t r = 1; r != 0 && *len < cap;) {
        r = read(STDIN_FILENO, buf + *len, cap - *len);
        if (r < 0 && errno != EINTR)
            return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot read stdin: %s",
                                      strerror(errno));
        if (r > 0)
            *len += (size_t)r;
    }
    return TF_CLI_EXIT_OK;
}

static bool is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

int tf_cli_args_check_text(const struct tf_cli *cli, const char *what, const char *text, size_t len,
                           size_t max)
{
    if (len > max)
        return tf_cli_args_usage_error(cli, "%s is longer than %zu bytes", what, max);
    if (is_blank(text, len))
        return tf_cli_args_usage_error(cli, "%s is empty", what);
    if (memchr(text, '\0', len) != NULL || !tf_proto_utf8_is_valid((const uint8_t *)text, len))
        return tf_cli_args_usage_error(cli, "%s is not UTF-8 text", what);
    return TF_CLI_EXIT_OK;
}

int tf_cli_args_check_tag(const struct tf_cli *cli, const char *what, const char *tag)
{
    if (tf_proto_tag_is_valid((const uint8_t *)tag, strlen(tag)))
        return TF_CLI_EXIT_OK;
    return tf_cli_args_usage_error(cli,
                                   "'%s' is not a %s: use 1-64 of a-z, 0-9 and '-', not starting "
                                   "or ending with '-'",
                                   tag, what);
}

int tf_cli_args_duration(const struct tf_cli *cli, const char *s, uint64_t max_days, uint64_t *secs)
{
    static const char units[] = "smhdw";
    static const uint64_t unit_secs[] = {1, 60, 3600, 86400, 7 * 86400};
    const char *unit = NULL;
    char *end = NULL;
    unsigned long long v = 0;
    if (s[0] >= '0' && s[0] <= '9') {
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == 0 && end[0] != '\0' && end[1] == '\0')
            unit = strchr(units, end[0]);
    }
    if (unit == NULL)
        return tf_cli_args_usage_error(cli,
                                       "--expires wants a duration such as 90m, 12h, 14d or 2w, "
                                       "not '%s'",
                                       s);
    uint64_t mult = unit_secs[unit - units];
    if (v == 0 || v > max_days * 86400u / mult)
        return tf_cli_args_usage_error(cli, "--expires must be more than 0 and at most %llu days",
                                       (unsigned long long)max_days);
    *secs = v * mult;
    return TF_CLI_EXIT_OK;
}
