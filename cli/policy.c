/* SPDX-License-Identifier: MIT */
#include "cli/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/ctl.h"
#include "cli/render.h"
#include "proto/ctl.h"
#include "proto/policy.h"

/* The policy file in the home (docs/POLICY.md). */
#define POLICY_LEAF "policy"

/* Reads path into *text (malloc'ed; *len bytes), refusing a file over
 * TF_PROTO_POLICY_TEXT_MAX before reading all of it.  Returns an exit status,
 * or -1 (printing nothing) if the file does not exist. */
static int read_policy(const struct tf_cli *cli, const char *path, char **text, size_t *len)
{
    const size_t max = TF_PROTO_POLICY_TEXT_MAX;
    struct stat sb;
    int rc = TF_CLI_EXIT_OK;
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL && errno == ENOENT)
        return -1;
    if (f == NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "cannot open %s: %s", path,
                                  strerror(errno));
    if (fstat(fileno(f), &sb) != 0) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "cannot read %s: it is a directory", path);
        goto done;
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max)
        goto too_big;
    /* One byte more than allowed, to see a file that grew or is not regular. */
    if ((*text = malloc(max + 1)) == NULL) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
        goto done;
    }
    *len = fread(*text, 1, max + 1, f);
    if (ferror(f)) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    if (*len > max)
        goto too_big;
    goto done;
too_big:
    rc = tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL,
                            "%s is larger than 1 MiB (%zu bytes), the most a policy may be", path,
                            max);
done:
    fclose(f);
    if (rc != TF_CLI_EXIT_OK) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* Prints {file, rules[, loaded]} for --json. */
static int print_check_json(const struct tf_cli *cli, const char *path, size_t rules, bool loaded)
{
    json_t *j =
        json_pack("{s:s, s:b, s:I}", "file", path, "loaded", loaded, "rules", (json_int_t)rules);
    return tf_cli_render_json_print(cli, j, false);
}

/* The parser's refusal: "FILE:LINE:COLUMN: what" on stderr as it is (so an
 * editor can jump to it), and with --json {error: {...}} on stdout. */
static int print_check_error(const struct tf_cli *cli, int rc,
                             const struct tf_proto_policy_error *err)
{
    char clean[TF_PROTO_POLICY_ERROR_MAX];
    if (rc == TF_E_NOMEM)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    if (cli->json) {
        json_t *j = json_pack("{s:{s:i, s:s, s:s, s:I, s:I}}", "error", "code", rc, "name",
                              tf_err_name(rc), "message", err->text, "line", (json_int_t)err->line,
                              "column", (json_int_t)err->column);
        (void)tf_cli_render_json_print(cli, j, false);
    }
    tf_cli_render_clean(clean, sizeof clean, err->text, strlen(err->text));
    fflush(stdout);
    fprintf(stderr, "%s\n", clean);
    return TF_CLI_EXIT_FAIL;
}

int tf_cli_policy_check(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_args a;
    struct tf_proto_policy *policy = NULL;
    struct tf_proto_policy_error err;
    char home_path[TF_NODE_PATH_MAX], clean[TF_NODE_PATH_MAX];
    const char *path;
    char *text = NULL;
    size_t len;
    int rc;

    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 1, "FILE") != 0)
        return TF_CLI_EXIT_USAGE;
    if (a.n_pos == 1) {
        if (a.pos[0][0] == '\0')
            return tf_cli_args_usage_error(cli, "the file name is empty");
        path = a.pos[0];
    } else {
        if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK)
            return rc;
        if (tf_node_home_path(cli->home, POLICY_LEAF, home_path, sizeof home_path) != 0)
            return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                                      "the home directory path is too long");
        path = home_path;
    }
    tf_cli_render_clean(clean, sizeof clean, path, strlen(path));
    rc = read_policy(cli, path, &text, &len);
    if (rc == -1 && a.n_pos == 1)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "cannot open %s: %s", path,
                                  strerror(ENOENT));
    if (rc == -1) {
        if (cli->json)
            return print_check_json(cli, path, 0, false);
        printf("no policy file at %s: every proposal is put to you (ask)\n", clean);
        return TF_CLI_EXIT_OK;
    }
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    memset(&err, 0, sizeof err);
    rc = tf_proto_policy_parse(text, len, path, &policy, &err);
    free(text);
    if (rc != TF_OK)
        return print_check_error(cli, rc, &err);
    size_t n = policy->n_rules;
    tf_proto_policy_free(policy);
    if (cli->json)
        return print_check_json(cli, path, n, true);
    printf("%s: %zu %s, OK\n", clean, n, n == 1 ? "rule" : "rules");
    return TF_CLI_EXIT_OK;
}

/* Parses a verb without arguments, calls the node and, with --json, prints
 * the result as it is.  *done is true once nothing is left to print.  Close c
 * afterwards whatever it returns. */
static int call_plain(struct tf_cli *cli, int argc, char **argv, const char *verb,
                      struct tf_cli_ctl *c, const msgpack_object **res, bool *done)
{
    struct tf_cli_args a;
    int rc;
    *done = true;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = tf_cli_ctl_run(c, cli, verb, NULL, 0, res)) != TF_CLI_EXIT_OK)
        return rc;
    if (cli->json)
        return tf_cli_render_json_print(cli, tf_cli_render_json(*res), false);
    *done = false;
    return TF_CLI_EXIT_OK;
}

int tf_cli_policy_reload(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    char file[TF_NODE_PATH_MAX];
    uint64_t n = 0;
    bool done;
    int rc = call_plain(cli, argc, argv, "policy.reload", &c, &res, &done);
    if (!done && tf_proto_ctl_get_uint(res, "rules", &n) != TF_OK) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed reply");
    } else if (!done) {
        tf_cli_render_field(file, sizeof file, res, "file", TF_CLI_RENDER_TEXT);
        printf("policy reloaded: %llu %s from %s\n", (unsigned long long)n,
               n == 1 ? "rule" : "rules", file);
    }
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_policy_show(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_ctl c = {0};
    const msgpack_object *res, *rules;
    char file[TF_NODE_PATH_MAX], text[TF_PROTO_POLICY_LINE_MAX * 2];
    bool loaded = false, done;
    uint64_t line;
    int rc = call_plain(cli, argc, argv, "policy.show", &c, &res, &done);
    if (done)
        goto cleanup;
    rules = tf_proto_ctl_get(res, "rules");
    if (tf_proto_ctl_get_bool(res, "loaded", &loaded) != TF_OK ||
        (loaded && (rules == NULL || rules->type != MSGPACK_OBJECT_ARRAY))) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed policy");
        goto cleanup;
    }
    if (!loaded) {
        printf("no policy file: every proposal is put to you\n");
        goto cleanup;
    }
    if (rules->via.array.size == 0) {
        tf_cli_render_field(file, sizeof file, res, "file", TF_CLI_RENDER_TEXT);
        printf("no rules in %s: every proposal is put to you\n", file);
        goto cleanup;
    }
    for (uint32_t i = 0; i < rules->via.array.size; i++) {
        const msgpack_object *r = &rules->via.array.ptr[i];
        if (tf_proto_ctl_get_uint(r, "line", &line) != TF_OK) {
            rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed rule");
            goto cleanup;
        }
        tf_cli_render_field(text, sizeof text, r, "text", TF_CLI_RENDER_TEXT);
        printf("%llu: %s\n", (unsigned long long)line, text);
    }
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_policy_test(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_CONNECTOR = 1, OPT_TOPIC, OPT_MODE, OPT_REQUESTER, OPT_ANSWERS };
    static const struct tf_cli_opt opts[] = {
        {"connector", true, OPT_CONNECTOR},
        {"topic", true, OPT_TOPIC},
        {"mode", true, OPT_MODE},
        {"requester", true, OPT_REQUESTER},      /* requests */
        {"answers-request", false, OPT_ANSWERS}, /* requests */
        {NULL, false, 0},
    };
    const char *connector = NULL, *topic = NULL, *mode = NULL, *val, *action, *requester = NULL;
    bool answers = false;
    struct tf_cli_ctl_arg args[5];
    struct tf_cli_ctl c = {0};
    struct tf_cli_args a;
    const msgpack_object *res;
    char action_buf[32], rule[64];
    size_t n = 0, len;
    int opt, rc;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((opt = tf_cli_args_next(&a, &val)) > 0) {
        if (opt == OPT_CONNECTOR)
            connector = val;
        else if (opt == OPT_TOPIC)
            topic = val;
        else if (opt == OPT_REQUESTER)
            requester = val;
        else if (opt == OPT_ANSWERS)
            answers = true;
        else
            mode = val;
    }
    if (opt < 0 || tf_cli_args_want(&a, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if (requester != NULL) { /* requests: the request rules */
        if (connector != NULL || answers || mode != NULL)
            return tf_cli_args_usage_error(cli, "--requester tests the request rules: not with "
                                                "--connector, --mode or --answers-request");
        connector = requester;
    }
    if (connector == NULL)
        return tf_cli_args_usage_error(cli, "missing --connector NAME|ID (a contact, or unknown "
                                            "for someone who is not one)");
    if (connector[0] == '\0')
        return tf_cli_args_usage_error(cli, "the name is empty");
    if (topic == NULL)
        return tf_cli_args_usage_error(cli, "missing --topic TOPIC");
    if ((rc = tf_cli_args_check_tag(cli, "topic", topic)) != TF_CLI_EXIT_OK)
        return rc;
    if (mode != NULL && strcmp(mode, "parallel") != 0 && strcmp(mode, "sequential") != 0)
        return tf_cli_args_usage_error(cli, "mode '%s' is not parallel or sequential", mode);

    tf_cli_ctl_add_str(args, &n, requester != NULL ? "requester" : "connector", connector);
    tf_cli_ctl_add_str(args, &n, "topic", topic);
    tf_cli_ctl_add_str(args, &n, "mode", mode);
    if (answers)
        args[n++] =
            (struct tf_cli_ctl_arg){.key = "answers_request", .type = TF_CLI_CTL_BOOL, .b = true};
    if ((rc = tf_cli_ctl_run(&c, cli, "policy.test", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
        goto cleanup;
    }
    const msgpack_object *r = tf_proto_ctl_get(res, "rule");
    if (tf_proto_ctl_get_str(res, "action", &action, &len) != TF_OK ||
        (r != NULL && r->type != MSGPACK_OBJECT_NIL && r->type != MSGPACK_OBJECT_STR)) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed decision");
        goto cleanup;
    }
    tf_cli_render_clean(action_buf, sizeof action_buf, action, len);
    if (r != NULL && r->type == MSGPACK_OBJECT_STR)
        tf_cli_render_clean(rule, sizeof rule, r->via.str.ptr, r->via.str.size);
    else
        snprintf(rule, sizeof rule, "no rule matched: the default");
    const char *to;
    size_t to_len;
    if (tf_proto_ctl_get_str(res, "propose", &to, &to_len) == TF_OK) { /* requests */
        char who[TF_PROTO_TEXT_ID_SIZE + 8];
        tf_cli_render_clean(who, sizeof who, to, to_len);
        printf("%s %s (%s)\n", action_buf, who, rule);
    } else {
        printf("%s (%s)\n", action_buf, rule);
    }
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}
