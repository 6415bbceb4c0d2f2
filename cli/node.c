/* SPDX-License-Identifier: MIT */
#include "cli/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "cli/names.h"
#include "cli/render.h"
#include "proto/ctl.h"

/* How long ping waits for the node's answer: the node may take up to its
 * connect and handshake timeouts (about 15 s) to reach the contact. */
#define PING_TIMEOUT_MS 30000

/* The node's connections: a count, and a table of them if there are any. */
static int print_peers(const struct tf_cli *cli, const msgpack_object *status)
{
    static const struct tf_cli_render_row cols[] = {
        {"PEER", "id", TF_CLI_RENDER_CONTACT},          {"ADDR", "addr", TF_CLI_RENDER_TEXT},
        {"DIR", "direction", TF_CLI_RENDER_TEXT},       {"STATE", "state", TF_CLI_RENDER_TEXT},
        {"IN FLIGHT", "in_flight", TF_CLI_RENDER_UINT},
    };
    const msgpack_object *peers = tf_proto_ctl_get(status, "peers");
    char count[16];
    if (peers == NULL)
        return TF_CLI_EXIT_OK;
    if (peers->type != MSGPACK_OBJECT_ARRAY) {
        tf_cli_render_kv("peers", "?");
        return TF_CLI_EXIT_OK;
    }
    snprintf(count, sizeof count, "%u", peers->via.array.size);
    tf_cli_render_kv("peers", count);
    if (peers->via.array.size == 0)
        return TF_CLI_EXIT_OK;
    putchar('\n');
    return tf_cli_render_list(cli, &peers->via.array, cols, sizeof cols / sizeof cols[0]);
}

int tf_cli_node_status(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_render_row rows[] = {
        {"id", "id", TF_CLI_RENDER_TEXT},
        {"fingerprint", "fingerprint", TF_CLI_RENDER_TEXT},
        {"name", "name", TF_CLI_RENDER_TEXT},
        {"listen", "listen", TF_CLI_RENDER_TEXT},
        {"version", "version", TF_CLI_RENDER_TEXT},
        {"pid", "pid", TF_CLI_RENDER_UINT},
        {"uptime", "uptime_s", TF_CLI_RENDER_DURATION},
        {"store", "store_bytes", TF_CLI_RENDER_BYTES},
        {"store map", "store_map_bytes", TF_CLI_RENDER_BYTES},
        {"disk free", "disk_free_bytes", TF_CLI_RENDER_BYTES},
        {"contacts", "contacts", TF_CLI_RENDER_UINT},
        {"events", "events", TF_CLI_RENDER_UINT},
        {"outbox", "outbox", TF_CLI_RENDER_UINT},
        {"messages", "messages", TF_CLI_RENDER_UINT},
    };
    struct tf_cli_args a;
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    int rc;

    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = tf_cli_ctl_run(&c, cli, "status", NULL, 0, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    } else {
        tf_cli_render_kv("home", cli->home);
        tf_cli_render_rows(res, rows, sizeof rows / sizeof rows[0]);
        rc = print_peers(cli, res);
    }
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

/* "pong from alice (tf1abc...) at 127.0.0.1:7451 in 1.2 ms" */
static void print_pong(const char *name, const msgpack_object *res)
{
    const msgpack_object *rtt = tf_proto_ctl_get(res, "rtt_ms");
    char who[128], id[64], addr[512], ms[32] = "?";
    tf_cli_render_clean(who, sizeof who, name, strlen(name));
    tf_cli_render_field(id, sizeof id, res, "id", TF_CLI_RENDER_SHORT_ID);
    tf_cli_render_field(addr, sizeof addr, res, "addr", TF_CLI_RENDER_TEXT);
    if (rtt != NULL && rtt->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        snprintf(ms, sizeof ms, "%llu", (unsigned long long)rtt->via.u64);
    else if (rtt != NULL &&
             (rtt->type == MSGPACK_OBJECT_FLOAT32 || rtt->type == MSGPACK_OBJECT_FLOAT64))
        snprintf(ms, sizeof ms, "%.1f", rtt->via.f64);
    printf("pong from %s (%s...) at %s in %s ms\n", who, id, addr, ms);
}

int tf_cli_node_ping(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_args a;
    struct tf_cli_ctl c = {0};
    struct tf_cli_ctl_arg arg = {.key = "name", .type = TF_CLI_CTL_STR};
    const msgpack_object *res;
    int rc;

    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 1, 1, "NAME|ID") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((arg.str = a.pos[0])[0] == '\0')
        return tf_cli_args_usage_error(cli, "the name is empty");
    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK || (rc = tf_cli_ctl_open(&c, cli)) != 0)
        goto cleanup;
    c.timeout_ms = PING_TIMEOUT_MS;
    if ((rc = tf_cli_ctl_call(&c, "ping", &arg, 1, &res)) != TF_CLI_EXIT_OK)
        goto cleanup;
    if (cli->json)
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    else
        print_pong(arg.str, res);
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

/* One event for people: "2026-05-01 12:34:56  #12  contact.added  contact=tf1... name=Bob". */
static void print_event(const msgpack_object *ev, struct tf_cli_names *names)
{
    char when[32] = "-", type[128], value[4096], key[128];
    uint64_t seq = 0, t;
    const char *p;
    size_t n;
    if (tf_proto_ctl_get_uint(ev, "time", &t) == TF_OK && t < 253402300800u /* year 10000 */) {
        time_t tt = (time_t)t;
        struct tm tm;
        if (localtime_r(&tt, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    }
    if (tf_proto_ctl_get_uint(ev, "seq", &seq) != TF_OK)
        seq = 0;
    if (tf_proto_ctl_get_str(ev, "type", &p, &n) != TF_OK)
        p = "?", n = 1;
    tf_cli_render_clean(type, sizeof type, p, n);
    printf("%s  #%llu  %s", when, (unsigned long long)seq, type);
    for (uint32_t i = 0; i < ev->via.map.size; i++) {
        const msgpack_object_kv *kv = &ev->via.map.ptr[i];
        const msgpack_object_str *k = &kv->key.via.str;
        /* Keys are strings: tf_proto_ctl_unpack checked every map. */
        if ((k->size == 3 && memcmp(k->ptr, "seq", 3) == 0) ||
            (k->size == 4 && memcmp(k->ptr, "time", 4) == 0) ||
            (k->size == 4 && memcmp(k->ptr, "type", 4) == 0))
            continue;
        tf_cli_render_clean(key, sizeof key, k->ptr, k->size);
        /* Ids as people know them: a contact by alias or name, an intro by
         * the first 12 digits (what `twofold show` takes). */
        const msgpack_object *v = &kv->val;
        if (v->type == MSGPACK_OBJECT_STR &&
            tf_cli_names_is_text_id(v->via.str.ptr, v->via.str.size))
            tf_cli_names_label(names, v->via.str.ptr, v->via.str.size, value, sizeof value);
        else if (v->type == MSGPACK_OBJECT_STR && v->via.str.size == 64)
            tf_cli_render_clean(value, sizeof value, v->via.str.ptr, 12);
        else
            tf_cli_render_value(value, sizeof value, v);
        printf("  %s=%s", key, value);
    }
    putchar('\n');
}

/* Parses a decimal event sequence number. */
static int parse_seq(const char *s, uint64_t *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int tf_cli_node_watch(struct tf_cli *cli, int argc, char **argv)
{
    enum { OPT_SINCE = 1 };
    static const struct tf_cli_opt opts[] = {{"since", true, OPT_SINCE}, {NULL, false, 0}};
    struct tf_cli_args a;
    struct tf_cli_ctl c = {0};
    struct tf_cli_ctl_arg arg = {.key = "since", .type = TF_CLI_CTL_UINT};
    bool since = false;
    const msgpack_object *res, *frame;
    struct tf_cli_names names;
    const char *val;
    int id, rc;

    tf_cli_names_init(&names, cli);
    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((id = tf_cli_args_next(&a, &val)) > 0) {
        if (parse_seq(val, &arg.u) != 0)
            return tf_cli_args_usage_error(cli, "--since wants an event number, not '%s'", val);
        since = true;
    }
    if (id < 0 || tf_cli_args_want(&a, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;

    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK || (rc = tf_cli_ctl_open(&c, cli)) != 0)
        goto cleanup;
    /* Ctrl-C (or SIGTERM) ends the watch with status 0. */
    tf_cli_ctl_catch_stop(&c);
    if ((rc = tf_cli_ctl_call(&c, "watch", &arg, since ? 1 : 0, &res)) != 0)
        goto cleanup;
    if (!cli->json && isatty(STDOUT_FILENO))
        fprintf(stderr, "watching %s; press Ctrl-C to stop\n", cli->home);
    while ((rc = tf_cli_ctl_next(&c, &frame)) == TF_CLI_EXIT_OK) {
        const msgpack_object *ev = tf_proto_ctl_get(frame, "event");
        bool ok = true;
        if (ev == NULL && tf_proto_ctl_get_bool(frame, "ok", &ok) == TF_OK && !ok) {
            rc = tf_cli_ctl_refused(&c, frame);
            break;
        }
        if (ev == NULL || ev->type != MSGPACK_OBJECT_MAP) {
            rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed event");
            break;
        }
        const char *type;
        size_t type_len;
        /* A contact added, renamed or removed: names are looked up again. */
        if (tf_proto_ctl_get_str(ev, "type", &type, &type_len) == TF_OK && type_len > 8 &&
            memcmp(type, "contact.", 8) == 0)
            tf_cli_names_clear(&names);
        if (cli->json)
            rc = tf_cli_render_json_print(cli, tf_cli_render_json(ev), true);
        else
            print_event(ev, &names);
        if (rc != TF_CLI_EXIT_OK)
            break;
        if (fflush(stdout) != 0) {
            rc = tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot write the output");
            break;
        }
    }
cleanup:
    if (rc == -1)
        rc = TF_CLI_EXIT_OK; /* interrupted */
    tf_cli_names_deinit(&names);
    tf_cli_ctl_close(&c);
    return rc;
}
