/* SPDX-License-Identifier: MIT */
#include "cli/intro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "cli/names.h"
#include "cli/render.h"
#include "proto/ctl.h"
#include "proto/intro.h"

/* The most items one page of intros or inbox may hold (the node's limit). */
#define INTRO_PAGE_MAX 1000

/* The longest --expires: a year. */
#define EXPIRES_MAX (365 * 86400)
/* How often --wait asks the node, in ms. */
#define WAIT_POLL_MS 500
/* An intro id in hex, and the shortest prefix of one the node resolves. */
#define INTRO_HEX_LEN (2 * TF_PROTO_INTRO_ID_LEN)
#define INTRO_PREFIX_MIN 8

/* The states of an intro, as the connector sees it; the last three end it
 * without an introduction. */
static const char *const INTRO_STATES[] = {"asking", "introduced", "declined", "withdrawn",
                                           "expired"};
#define N_INTRO_STATES (sizeof INTRO_STATES / sizeof INTRO_STATES[0])

/* Parses a DURATION of at most a year (cli/args.h). */
static int parse_duration(const struct tf_cli *cli, const char *s, uint64_t *secs)
{
    return tf_cli_args_duration(cli, s, EXPIRES_MAX / 86400, secs);
}

/* Copies an INTRO argument, lowercased, into buf: 8 (a prefix) to 64 (the
 * whole id) hex digits. */
static int intro_arg(const struct tf_cli *cli, const char *arg, char buf[INTRO_HEX_LEN + 1])
{
    size_t n = strlen(arg);
    bool hex = n >= INTRO_PREFIX_MIN && n <= INTRO_HEX_LEN;
    for (size_t i = 0; hex && i < n; i++) {
        char ch = arg[i] >= 'A' && arg[i] <= 'F' ? (char)(arg[i] - 'A' + 'a') : arg[i];
        hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
        buf[i] = ch;
    }
    if (!hex)
        return tf_cli_args_usage_error(cli,
                                       "'%s' is not an intro: give its id (64 hex digits) or its "
                                       "first %d or more digits",
                                       arg, INTRO_PREFIX_MIN);
    buf[n] = '\0';
    return TF_CLI_EXIT_OK;
}

/* True if the intro's state ends it without an introduction. */
static bool is_failed(const char *state)
{
    for (size_t i = 2; i < N_INTRO_STATES; i++)
        if (strcmp(state, INTRO_STATES[i]) == 0)
            return true;
    return false;
}

/* Prints "bob: pending → accepted" for each side whose state changed since
 * seen[0..1], then "intro: asking → introduced" for the intro (the first
 * time, "bob: pending"), and remembers the states in seen.  With --json, the
 * intro as one line instead if anything changed.  Returns an exit status. */
static int print_changes(const struct tf_cli *cli, const msgpack_object *intro, char seen[3][64])
{
    static const char *const keys[] = {"a", "b"};
    bool changed = false;
    for (size_t i = 0; i < 3; i++) {
        const msgpack_object *obj = i < 2 ? tf_proto_ctl_get(intro, keys[i]) : intro;
        char state[64], who[256] = "intro";
        tf_cli_render_field(state, sizeof state, obj, "state", TF_CLI_RENDER_TEXT);
        if (strcmp(state, seen[i]) == 0)
            continue;
        if (i < 2)
            tf_cli_render_field(who, sizeof who, obj, "contact", TF_CLI_RENDER_CONTACT);
        if (!cli->json && seen[i][0] == '\0')
            printf("%s: %s\n", who, state);
        else if (!cli->json)
            printf("%s: %s \u2192 %s\n", who, seen[i], state);
        memcpy(seen[i], state, sizeof state);
        changed = true;
    }
    if (changed && cli->json)
        return tf_cli_render_json_print(cli, tf_cli_render_json(intro), true);
    if (fflush(stdout) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot write the output");
    return TF_CLI_EXIT_OK;
}

/* propose --wait: asks the node for the intro until it ends or a stop signal
 * comes, printing its changes. */
static int wait_for(const struct tf_cli *cli, struct tf_cli_ctl *c, const char *id)
{
    struct tf_cli_ctl_arg arg = {.key = "id", .type = TF_CLI_CTL_STR, .str = id};
    char seen[3][64] = {"", "", ""}, state[64];
    const msgpack_object *res;
    int rc;

    tf_cli_ctl_catch_stop(c);
    if (!cli->json && isatty(STDOUT_FILENO))
        fprintf(stderr, "waiting for their answers; press Ctrl-C to stop\n");
    while ((rc = tf_cli_ctl_call(c, "intro.show", &arg, 1, &res)) == TF_CLI_EXIT_OK) {
        const char *p;
        size_t n;
        if (tf_proto_ctl_get_str(res, "state", &p, &n) != TF_OK)
            return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed intro");
        if ((rc = print_changes(cli, res, seen)) != TF_CLI_EXIT_OK)
            return rc;
        tf_cli_render_clean(state, sizeof state, p, n);
        if (strcmp(state, "introduced") == 0)
            return TF_CLI_EXIT_OK;
        if (is_failed(state))
            return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "the intro is %s", state);
        if ((rc = tf_cli_ctl_pause(c, WAIT_POLL_MS)) != 0)
            break;
    }
    if (rc != -1)
        return rc;
    fprintf(stderr, "stopped waiting; the intro goes on\n");
    return TF_CLI_EXIT_OK;
}

int tf_cli_intro_propose(struct tf_cli *cli, int argc, char **argv)
{
    /* The texts first, in the order of texts[] below. */
    enum {
        OPT_NOTE = 1,
        OPT_NOTE_A,
        OPT_NOTE_B,
        OPT_ABOUT_A,
        OPT_ABOUT_B,
        OPT_TOPIC,
        OPT_SEQUENTIAL,
        OPT_EXPIRES,
        OPT_WAIT,
        OPT_ANSWERS, /* requests */
    };
    static const struct tf_cli_opt opts[] = {
        {"note", true, OPT_NOTE},
        {"note-a", true, OPT_NOTE_A},
        {"note-b", true, OPT_NOTE_B},
        {"about-a", true, OPT_ABOUT_A},
        {"about-b", true, OPT_ABOUT_B},
        {"topic", true, OPT_TOPIC},
        {"sequential", false, OPT_SEQUENTIAL},
        {"expires", true, OPT_EXPIRES},
        {"wait", false, OPT_WAIT},
        {"answers", true, OPT_ANSWERS}, /* requests */
        {NULL, false, 0},
    };
    static const char *const text_keys[] = {"note", "note_a", "note_b", "about_a", "about_b"};
    enum { N_TEXTS = sizeof text_keys / sizeof text_keys[0] };
    const char *texts[N_TEXTS] = {NULL}, *topic = NULL, *val, *p, *answers = NULL;
    bool sequential = false, wait = false;
    struct tf_cli_ctl_arg args[3 + N_TEXTS + 2 + 1];
    struct tf_cli_ctl c = {0};
    struct tf_cli_args a;
    const msgpack_object *res;
    char id[INTRO_HEX_LEN + 1];
    uint64_t expires_s = 0;
    size_t n = 0, len;
    int opt = 0, rc = TF_CLI_EXIT_OK;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while (rc == TF_CLI_EXIT_OK && (opt = tf_cli_args_next(&a, &val)) > 0) {
        if (opt == OPT_TOPIC)
            topic = val;
        else if (opt == OPT_SEQUENTIAL)
            sequential = true;
        else if (opt == OPT_WAIT)
            wait = true;
        else if (opt == OPT_EXPIRES)
            rc = parse_duration(cli, val, &expires_s);
        else if (opt == OPT_ANSWERS) /* requests */
            answers = val;
        else
            texts[opt - OPT_NOTE] = val;
    }
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (opt < 0 || tf_cli_args_want(&a, 2, 2, "A and B (the two contacts to introduce)") != 0)
        return TF_CLI_EXIT_USAGE;
    if (a.pos[0][0] == '\0' || a.pos[1][0] == '\0')
        return tf_cli_args_usage_error(cli, "the name is empty");
    if (strcmp(a.pos[0], a.pos[1]) == 0)
        return tf_cli_args_usage_error(cli,
                                       "A and B are both '%s': introduce two different "
                                       "contacts",
                                       a.pos[0]);
    if (topic == NULL && answers == NULL) /* requests: the request's topic by default */
        return tf_cli_args_usage_error(cli, "missing --topic TOPIC (what the introduction is "
                                            "about, such as real-estate-law)");
    if (topic != NULL && (rc = tf_cli_args_check_tag(cli, "topic", topic)) != TF_CLI_EXIT_OK)
        return rc;
    if (texts[0] != NULL && (texts[1] != NULL || texts[2] != NULL))
        return tf_cli_args_usage_error(cli, "give --note (to both), or --note-a and --note-b, "
                                            "not both");
    for (size_t i = 0; i < N_TEXTS; i++) {
        char what[16];
        snprintf(what, sizeof what, "--%s", opts[i].name);
        if (texts[i] != NULL && (rc = tf_cli_args_check_text(cli, what, texts[i], strlen(texts[i]),
                                                             TF_PROTO_NOTE_MAX)) != 0)
            return rc;
    }

    tf_cli_ctl_add_str(args, &n, "a", a.pos[0]);
    tf_cli_ctl_add_str(args, &n, "b", a.pos[1]);
    tf_cli_ctl_add_str(args, &n, "topic", topic);
    for (size_t i = 0; i < N_TEXTS; i++)
        tf_cli_ctl_add_str(args, &n, text_keys[i], texts[i]);
    tf_cli_ctl_add_str(args, &n, "answers", answers); /* requests */
    if (sequential)
        args[n++] =
            (struct tf_cli_ctl_arg){.key = "sequential", .type = TF_CLI_CTL_BOOL, .b = true};
    if (expires_s > 0)
        args[n++] =
            (struct tf_cli_ctl_arg){.key = "expires_s", .type = TF_CLI_CTL_UINT, .u = expires_s};
    if ((rc = tf_cli_ctl_run(&c, cli, "intro.propose", args, n, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (tf_proto_ctl_get_str(res, "id", &p, &len) != TF_OK || len != INTRO_HEX_LEN) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed intro id");
        goto cleanup;
    }
    /* Kept: the reply is gone after the next call. */
    tf_cli_render_clean(id, sizeof id, p, len);
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), wait);
    } else {
        char who[2][256];
        for (int i = 0; i < 2; i++)
            tf_cli_render_clean(who[i], sizeof who[i], a.pos[i], strlen(a.pos[i]));
        if (sequential)
            printf("proposed intro %.12s: %s is asked first and %s only once %s accepts, "
                   "privately, and they are introduced only if both accept (follow it with: "
                   "twofold show %.12s)\n",
                   id, who[0], who[1], who[0], id);
        else
            printf("proposed intro %.12s: %s and %s are each asked privately, and are "
                   "introduced only if both accept (follow it with: twofold show %.12s)\n",
                   id, who[0], who[1], id);
    }
    if (rc == TF_CLI_EXIT_OK && wait)
        rc = wait_for(cli, &c, id);
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

/* Parses the arguments of a verb with npos positionals (named `what` in
 * errors) and at most one option of its own, --name (NULL: none): *val is
 * its last value ("" for a flag), NULL if it was not given.  Returns 0, or -1
 * after printing a usage error. */
static int parse_one_opt(struct tf_cli_args *a, struct tf_cli *cli, int argc, char **argv,
                         const char *name, bool has_arg, size_t npos, const char *what,
                         const char **val)
{
    const struct tf_cli_opt opts[] = {{name, has_arg, 1}, {NULL, false, 0}};
    const char *v;
    int opt;
    *val = NULL;
    tf_cli_args_init(a, cli, argc, argv, opts);
    while ((opt = tf_cli_args_next(a, &v)) > 0)
        *val = v != NULL ? v : "";
    return opt < 0 || tf_cli_args_want(a, npos, npos, what) != 0 ? -1 : 0;
}

/* The options of the listing verbs: one of their own (--state TEXT or
 * --all), and the page (--limit N, --before INTRO). */
struct page_opts {
    const char *own; /* the value of the verb's own option, "" for a flag, or NULL */
    uint64_t limit;  /* 0: the node's default */
    char before[INTRO_HEX_LEN + 1];
};

enum { PAGE_OWN = 1, PAGE_LIMIT, PAGE_BEFORE };

static int parse_page(struct tf_cli *cli, int argc, char **argv, const char *own, bool own_arg,
                      struct page_opts *po)
{
    const struct tf_cli_opt opts[] = {{own, own_arg, PAGE_OWN},
                                      {"limit", true, PAGE_LIMIT},
                                      {"before", true, PAGE_BEFORE},
                                      {NULL, false, 0}};
    struct tf_cli_args a;
    const char *v;
    int opt, rc;
    memset(po, 0, sizeof *po);
    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((opt = tf_cli_args_next(&a, &v)) > 0) {
        if (opt == PAGE_OWN) {
            po->own = v != NULL ? v : "";
        } else if (opt == PAGE_LIMIT) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n < 1 ||
                n > INTRO_PAGE_MAX)
                return tf_cli_args_usage_error(cli, "--limit must be a number from 1 to %d",
                                               INTRO_PAGE_MAX);
            po->limit = n;
        } else if ((rc = intro_arg(cli, v, po->before)) != TF_CLI_EXIT_OK) {
            return rc;
        }
    }
    return opt < 0 || tf_cli_args_want(&a, 0, 0, "") != 0 ? TF_CLI_EXIT_USAGE : TF_CLI_EXIT_OK;
}

/* Adds the page options to args. */
static void add_page(const struct page_opts *po, struct tf_cli_ctl_arg *args, size_t *n)
{
    if (po->limit != 0)
        args[(*n)++] =
            (struct tf_cli_ctl_arg){.key = "limit", .type = TF_CLI_CTL_UINT, .u = po->limit};
    if (po->before[0] != '\0')
        tf_cli_ctl_add_str(args, n, "before", po->before);
}

int tf_cli_intro_list(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_render_row cols[] = {
        {"ID", "id", TF_CLI_RENDER_SHORT_ID},   {"STATE", "state", TF_CLI_RENDER_TEXT},
        {"TOPIC", "topic", TF_CLI_RENDER_TEXT}, {"A", "a", TF_CLI_RENDER_PARTY},
        {"B", "b", TF_CLI_RENDER_PARTY},        {"CREATED", "created", TF_CLI_RENDER_AGO},
    };
    struct page_opts po;
    struct tf_cli_ctl_arg args[3];
    const char *empty = "no intros yet; propose one with: twofold propose A B --topic TOPIC";
    char buf[64];
    size_t n = 0;
    int rc;

    if ((rc = parse_page(cli, argc, argv, "state", true, &po)) != TF_CLI_EXIT_OK)
        return rc;
    if (po.own != NULL) {
        size_t i = 0;
        while (i < N_INTRO_STATES && strcmp(po.own, INTRO_STATES[i]) != 0)
            i++;
        if (i == N_INTRO_STATES)
            return tf_cli_args_usage_error(cli,
                                           "state '%s' is not asking, introduced, declined, "
                                           "withdrawn or expired",
                                           po.own);
        snprintf(buf, sizeof buf, "no intros are %s", po.own);
        empty = buf;
    }
    tf_cli_ctl_add_str(args, &n, "state", po.own);
    add_page(&po, args, &n);
    if (po.before[0] != '\0')
        empty = "no more intros";
    return tf_cli_ctl_print_list(cli, "intro.list", args, n, empty, cols,
                                 sizeof cols / sizeof cols[0]);
}

int tf_cli_intro_inbox(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_render_row cols[] = {
        {"ID", "id", TF_CLI_RENDER_SHORT_ID},
        {"FROM", "connector", TF_CLI_RENDER_CONTACT},
        {"TOPIC", "topic", TF_CLI_RENDER_TEXT},
        {"STATE", "state", TF_CLI_RENDER_TEXT},
        {"DECIDED BY", "decided_by", TF_CLI_RENDER_TEXT},
        {"NOTE", "note", TF_CLI_RENDER_SHORT_LINE},
        {"ABOUT", "about_other", TF_CLI_RENDER_SHORT_LINE},
        {"RECEIVED", "received", TF_CLI_RENDER_AGO},
    };
    struct page_opts po;
    struct tf_cli_ctl_arg args[3];
    size_t n = 0;
    int rc;

    if ((rc = parse_page(cli, argc, argv, "all", false, &po)) != TF_CLI_EXIT_OK)
        return rc;
    /* Without --all: what waits for an answer, and what a policy rule
     * accepted for the owner while its outcome is open (docs/twofold.1). */
    args[n++] = (struct tf_cli_ctl_arg){
        .key = po.own != NULL ? "all" : "open", .type = TF_CLI_CTL_BOOL, .b = true};
    add_page(&po, args, &n);
    return tf_cli_names_print_list(cli, "inbox.list", args, n,
                                   po.before[0] != '\0' ? "no more introductions"
                                   : po.own != NULL
                                       ? "nobody has proposed an introduction to you yet"
                                       : "no introductions wait for your answer (all of them: "
                                         "twofold inbox --all)",
                                   cols, sizeof cols / sizeof cols[0]);
}

/* One side of an intro for `show`: who, their state, and the texts that
 * concern them, each only if the node gave it. */
static void print_side(const msgpack_object *intro, const char *side, struct tf_cli_names *names)
{
    /* '@' in a label stands for the side. */
    static const struct tf_cli_render_row rows[] = {
        {"@ state", "state", TF_CLI_RENDER_TEXT},
        {"@ reason", "reason", TF_CLI_RENDER_PARA},
        {"note to @", "note", TF_CLI_RENDER_PARA},
        {"about @", "about", TF_CLI_RENDER_PARA},
    };
    const msgpack_object *o = tf_proto_ctl_get(intro, side);
    char who[256], alias[64], line[512], buf[8192], label[16];
    /* The owner's alias first; the name the side chose stays quoted. */
    tf_cli_render_field(alias, sizeof alias, o, "alias", TF_CLI_RENDER_TEXT);
    tf_cli_names_who(names, o, "contact", who, sizeof who);
    if (strcmp(alias, "-") == 0) {
        snprintf(line, sizeof line, "%s", who);
    } else {
        tf_cli_render_peer_name(who, sizeof who, o, "contact");
        if (strcmp(who, "-") == 0)
            tf_cli_render_field(who, sizeof who, o, "contact", TF_CLI_RENDER_SHORT_ID);
        snprintf(line, sizeof line, "%s (%s)", alias, who);
    }
    tf_cli_render_kv(side, line);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const msgpack_object *v = tf_proto_ctl_get(o, rows[i].key);
        if (v == NULL || v->type == MSGPACK_OBJECT_NIL)
            continue;
        snprintf(label, sizeof label, "%s", rows[i].label);
        *strchr(label, '@') = side[0];
        tf_cli_render_field(buf, sizeof buf, o, rows[i].key, rows[i].kind);
        tf_cli_render_kv(label, buf);
    }
}

/* show, for people. */
static void print_intro(const msgpack_object *intro, struct tf_cli_names *names)
{
    static const struct tf_cli_render_row rows[] = {
        {"id", "id", TF_CLI_RENDER_TEXT},          {"state", "state", TF_CLI_RENDER_TEXT},
        {"topic", "topic", TF_CLI_RENDER_TEXT},    {"mode", "mode", TF_CLI_RENDER_TEXT},
        {"note", "note", TF_CLI_RENDER_PARA},      {"created", "created", TF_CLI_RENDER_AGO},
        {"expires", "expires", TF_CLI_RENDER_AGO}, {"updated", "updated", TF_CLI_RENDER_AGO},
    };
    tf_cli_render_rows(intro, rows, sizeof rows / sizeof rows[0]);
    print_side(intro, "a", names);
    print_side(intro, "b", names);
}

/* withdraw, for people: "withdrew intro 1a2b3c4d5e6f between alice and bob
 * on real-estate-law". */
static void print_withdrawn(const char *done, const msgpack_object *intro,
                            struct tf_cli_names *names)
{
    char id[16], a[256], b[256], topic[128];
    tf_cli_render_field(id, sizeof id, intro, "id", TF_CLI_RENDER_SHORT_ID);
    tf_cli_names_who(names, tf_proto_ctl_get(intro, "a"), "contact", a, sizeof a);
    tf_cli_names_who(names, tf_proto_ctl_get(intro, "b"), "contact", b, sizeof b);
    tf_cli_render_field(topic, sizeof topic, intro, "topic", TF_CLI_RENDER_TEXT);
    printf("%s intro %s between %s and %s on %s\n", done, id, a, b, topic);
}

/* accept and decline, for people: "accepted intro 1a2b3c4d5e6f from carol on
 * real-estate-law". */
static void print_answered(const char *done, const msgpack_object *item, struct tf_cli_names *names)
{
    char id[16], from[256], topic[128];
    bool resent = false;
    tf_cli_render_field(id, sizeof id, item, "id", TF_CLI_RENDER_SHORT_ID);
    tf_cli_names_who(names, item, "connector", from, sizeof from);
    tf_cli_render_field(topic, sizeof topic, item, "topic", TF_CLI_RENDER_TEXT);
    /* Accepting again changes nothing: the node sent the same acceptance. */
    if (tf_proto_ctl_get_bool(item, "resent", &resent) == TF_OK && resent)
        printf("already accepted intro %s from %s on %s; acceptance re-sent\n", id, from, topic);
    else
        printf("%s intro %s from %s on %s\n", done, id, from, topic);
}

/* A verb that takes INTRO and at most one text option. */
struct intro_verb {
    const char *verb; /* "intro.accept" */
    const char *opt;  /* its text option, also the request's key ("note"), or NULL */
    size_t max;       /* the text's longest, in bytes */
    const char *done; /* for people: "accepted" */
    void (*print)(const char *done, const msgpack_object *res, struct tf_cli_names *names);
};

static int run_intro_verb(struct tf_cli *cli, int argc, char **argv, const struct intro_verb *v)
{
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[2];
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    const char *text;
    char id[INTRO_HEX_LEN + 1], what[16];
    size_t n = 0;
    int rc;

    if (parse_one_opt(&a, cli, argc, argv, v->opt, true, 1, "INTRO (an intro id)", &text) != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = intro_arg(cli, a.pos[0], id)) != TF_CLI_EXIT_OK)
        return rc;
    snprintf(what, sizeof what, "--%s", v->opt != NULL ? v->opt : "");
    if (text != NULL &&
        (rc = tf_cli_args_check_text(cli, what, text, strlen(text), v->max)) != TF_CLI_EXIT_OK)
        return rc;
    tf_cli_ctl_add_str(args, &n, "id", id);
    if (v->opt != NULL)
        tf_cli_ctl_add_str(args, &n, v->opt, text);
    if ((rc = tf_cli_ctl_run(&c, cli, v->verb, args, n, &res)) == TF_CLI_EXIT_OK) {
        if (cli->json)
            rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
        else {
            struct tf_cli_names names;
            tf_cli_names_init(&names, cli);
            v->print(v->done, res, &names);
            tf_cli_names_deinit(&names);
        }
    }
    tf_cli_ctl_close(&c);
    return rc;
}

/* show of an intro proposed to you, for people: what you were told, your
 * answer and who gave it, and how it ended. */
static void print_item(const msgpack_object *item, struct tf_cli_names *names)
{
    static const struct tf_cli_render_row head[] = {
        {"id", "id", TF_CLI_RENDER_TEXT},
    };
    static const struct tf_cli_render_row rows[] = {
        {"topic", "topic", TF_CLI_RENDER_TEXT},
        {"mode", "mode", TF_CLI_RENDER_TEXT},
        {"state", "state", TF_CLI_RENDER_TEXT},
        {"decided by", "decided_by", TF_CLI_RENDER_TEXT},
        {"note to you", "note", TF_CLI_RENDER_PARA},
        {"about them", "about_other", TF_CLI_RENDER_PARA},
    };
    static const struct tf_cli_render_row rows_after[] = {
        {"their note", "other_note", TF_CLI_RENDER_PARA},
        {"received", "received", TF_CLI_RENDER_AGO},
        {"expires", "expires", TF_CLI_RENDER_AGO},
        {"updated", "updated", TF_CLI_RENDER_AGO},
    };
    const char *p;
    size_t len;
    char label[256];
    tf_cli_render_rows(item, head, sizeof head / sizeof head[0]);
    tf_cli_names_who(names, item, "connector", label, sizeof label);
    tf_cli_render_kv("proposed by", label);
    tf_cli_render_rows(item, rows, sizeof rows / sizeof rows[0]);
    if (tf_proto_ctl_get_str(item, "other", &p, &len) == TF_OK) {
        tf_cli_names_label(names, p, len, label, sizeof label);
        tf_cli_render_kv("introduced to", label);
    }
    tf_cli_render_rows(item, rows_after, sizeof rows_after / sizeof rows_after[0]);
    printf("(you are one of the two sides; the other side's answer stays private until both "
           "accept)\n");
}

/* show: an intro you proposed (intro.show) or one proposed to you
 * (inbox.show), whichever the node holds. */
int tf_cli_intro_show(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_args a;
    struct tf_cli_ctl_arg args[1];
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    const char *unused;
    char id[INTRO_HEX_LEN + 1];
    size_t n = 0;
    int rc;

    if (parse_one_opt(&a, cli, argc, argv, NULL, false, 1, "INTRO (an intro id)", &unused) != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = intro_arg(cli, a.pos[0], id)) != TF_CLI_EXIT_OK)
        return rc;
    tf_cli_ctl_add_str(args, &n, "id", id);
    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK || (rc = tf_cli_ctl_open(&c, cli)) != 0)
        goto cleanup;
    bool mine = true;
    c.quiet_refusal = true;
    rc = tf_cli_ctl_call(&c, "intro.show", args, n, &res);
    c.quiet_refusal = false;
    if (rc == TF_CLI_EXIT_FAIL && c.refused == TF_E_NOT_FOUND) {
        mine = false;
        rc = tf_cli_ctl_call(&c, "inbox.show", args, n, &res);
    } else if (rc == TF_CLI_EXIT_FAIL) {
        rc = tf_cli_ctl_refused(&c, &c.root);
    }
    if (rc != TF_CLI_EXIT_OK)
        goto cleanup;
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    } else {
        struct tf_cli_names names;
        tf_cli_names_init(&names, cli);
        if (mine)
            print_intro(res, &names);
        else
            print_item(res, &names);
        tf_cli_names_deinit(&names);
    }
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_intro_withdraw(struct tf_cli *cli, int argc, char **argv)
{
    static const struct intro_verb v = {"intro.withdraw", NULL, 0, "withdrew", print_withdrawn};
    return run_intro_verb(cli, argc, argv, &v);
}

int tf_cli_intro_accept(struct tf_cli *cli, int argc, char **argv)
{
    static const struct intro_verb v = {"intro.accept", "note", TF_PROTO_NOTE_MAX, "accepted",
                                        print_answered};
    return run_intro_verb(cli, argc, argv, &v);
}

/* intros rm and inbox rm: "removed intro 1a2b3c4d5e6f". */
static void print_removed(const char *done, const msgpack_object *item, struct tf_cli_names *names)
{
    char id[16];
    (void)names;
    tf_cli_render_field(id, sizeof id, item, "id", TF_CLI_RENDER_SHORT_ID);
    printf("%s intro %s\n", done, id);
}

int tf_cli_intro_rm(struct tf_cli *cli, int argc, char **argv)
{
    static const struct intro_verb v = {"intro.rm", NULL, 0, "removed", print_removed};
    return run_intro_verb(cli, argc, argv, &v);
}

int tf_cli_intro_inbox_rm(struct tf_cli *cli, int argc, char **argv)
{
    static const struct intro_verb v = {"inbox.rm", NULL, 0, "removed", print_removed};
    return run_intro_verb(cli, argc, argv, &v);
}

int tf_cli_intro_decline(struct tf_cli *cli, int argc, char **argv)
{
    static const struct intro_verb v = {"intro.decline", "reason", TF_PROTO_REASON_MAX, "declined",
                                        print_answered};
    return run_intro_verb(cli, argc, argv, &v);
}
