/* SPDX-License-Identifier: MIT */
#include "cli/ctl.h"

#include "cli/args.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/render.h"
#include "node/home.h"
#include "node/verbs.h"
#include "proto/ctl.h"
#include "proto/mp.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tf_cli_ctl_open(struct tf_cli_ctl *c, const struct tf_cli *cli)
{
    struct sockaddr_un sa;
    char path[TF_NODE_PATH_MAX];
    struct stat sb;

    memset(c, 0, sizeof *c);
    c->cli = cli;
    if (stat(cli->home, &sb) != 0 && errno == ENOENT)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                                  "there is no twofold home at %s; create one with: twofold "
                                  "--home %s init --name NAME",
                                  cli->home, cli->home);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    char why[TF_NODE_PATH_MAX + 256];
    if (tf_node_home_socket_path(cli->home, path, sizeof path, why, sizeof why) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "%s", why);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (!msgpack_zone_init(&c->zone, 4096))
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    c->zone_ready = true;
    /* A node that holds its lock but has no control socket yet is starting:
     * wait for it (TF_CLI_CTL_START_WAIT_MS).  With no lock held, look again
     * for TF_CLI_CTL_START_GRACE_MS, in case a node launched at the same
     * moment (`twofoldd & twofold ...`) has not reached its lock yet. */
    int64_t start = now_ms();
    int e = 0, held = 0;
    for (;;) {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot make a socket: %s",
                                      strerror(errno));
        c->connected = true;
        if (connect(c->fd, (const struct sockaddr *)&sa, sizeof sa) == 0)
            return TF_CLI_EXIT_OK;
        e = errno;
        if (e != ENOENT && e != ECONNREFUSED)
            break;
        held = tf_node_home_lock_held(cli->home) == 1;
        int64_t waited = now_ms() - start;
        if (waited >= (held ? TF_CLI_CTL_START_WAIT_MS : TF_CLI_CTL_START_GRACE_MS))
            break;
        close(c->fd);
        c->connected = false;
        nanosleep(&(struct timespec){0, TF_CLI_CTL_START_POLL_MS * 1000000L}, NULL);
    }
    if (held)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE,
                                  "twofoldd for %s holds its lock but did not open its control "
                                  "socket within %d s (is it starting or stopping?); see its log",
                                  cli->home, TF_CLI_CTL_START_WAIT_MS / 1000);
    if (e == ENOENT || e == ECONNREFUSED)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE,
                                  "twofoldd is not running for %s; start it with: twofoldd "
                                  "--home %s",
                                  cli->home, cli->home);
    return tf_cli_render_fail(cli, e == EACCES || e == EPERM ? TF_CLI_EXIT_LOCAL : TF_CLI_EXIT_NODE,
                              "cannot connect to %s: %s", path, strerror(e));
}

void tf_cli_ctl_close(struct tf_cli_ctl *c)
{
    if (c->connected)
        close(c->fd);
    c->connected = false;
    free(c->body);
    c->body = NULL;
    if (c->zone_ready)
        msgpack_zone_destroy(&c->zone);
    c->zone_ready = false;
}

/* How long a reply may take, in ms. */
static int timeout_ms(const struct tf_cli_ctl *c)
{
    return c->timeout_ms > 0 ? c->timeout_ms : TF_CLI_CTL_TIMEOUT_MS;
}

/* Waits until fd is readable or the deadline (< 0: none) passes.  pselect
 * rather than poll: with c->wait_mask it unblocks the stop signals only while
 * it waits, so a signal that arrives just before the wait cannot be missed. */
static int wait_readable(struct tf_cli_ctl *c, int64_t deadline)
{
    if (c->fd >= FD_SETSIZE)
        return -EMFILE;
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            ts.tv_sec = (time_t)(left / 1000);
            ts.tv_nsec = (long)(left % 1000) * 1000000;
            tsp = &ts;
        }
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(c->fd, &rd);
        int n = pselect(c->fd + 1, &rd, NULL, NULL, tsp, c->wait_mask);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
        if (c->stop != NULL && *c->stop)
            return -EINTR;
    }
}

/* Reads exactly n bytes.  -EPIPE if the node closed the connection. */
static int read_exact(struct tf_cli_ctl *c, uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        int rc = wait_readable(c, deadline);
        if (rc != 0)
            return rc;
        ssize_t r = read(c->fd, p, n);
        if (r == 0)
            return -EPIPE;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one frame and decodes it into c's zone. */
static int read_frame(struct tf_cli_ctl *c, int64_t deadline, msgpack_object *out)
{
    uint8_t hdr[TF_PROTO_CTL_HEADER_LEN];
    uint32_t len;
    free(c->body);
    c->body = NULL;
    msgpack_zone_clear(&c->zone);
    int rc = read_exact(c, hdr, sizeof hdr, deadline);
    if (rc != 0)
        return rc;
    if ((rc = tf_proto_ctl_frame_parse(hdr, sizeof hdr, TF_PROTO_CTL_REPLY_MAX, &len)) != TF_OK)
        return rc;
    /* len is at most TF_PROTO_CTL_REPLY_MAX, checked before allocating. */
    if ((c->body = malloc(len)) == NULL)
        return TF_E_NOMEM;
    if ((rc = read_exact(c, c->body, len, deadline)) != 0)
        return rc;
    return tf_proto_ctl_unpack(c->body, len, &c->zone, out);
}

/* Prints what went wrong talking to the node. */
static int report(struct tf_cli_ctl *c, int rc)
{
    const struct tf_cli *cli = c->cli;
    switch (rc) {
    case -ETIMEDOUT:
        return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE,
                                  "twofoldd for %s did not answer within %d s; check that it is "
                                  "healthy (its log)",
                                  cli->home, timeout_ms(c) / 1000);
    case -EPIPE:
    case -ECONNRESET:
        return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE,
                                  "twofoldd for %s closed the connection (did it stop?)",
                                  cli->home);
    case -ENOMEM:
    case TF_E_NOMEM:
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    default:
        if (rc <= -10000)
            return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE,
                                      "twofoldd sent a malformed reply (%s); are twofold and "
                                      "twofoldd the same version?",
                                      tf_strerror(rc));
        return tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "cannot talk to twofoldd: %s",
                                  tf_strerror(rc));
    }
}

static void write_arg(struct tf_proto_mp_writer *w, const struct tf_cli_ctl_arg *a)
{
    tf_proto_mp_write_cstr(w, a->key);
    switch (a->type) {
    case TF_CLI_CTL_STR:
        tf_proto_mp_write_cstr(w, a->str);
        break;
    case TF_CLI_CTL_BOOL:
        tf_proto_mp_write_bool(w, a->b);
        break;
    case TF_CLI_CTL_UINT:
        tf_proto_mp_write_uint(w, a->u);
        break;
    case TF_CLI_CTL_STRS:
        tf_proto_mp_write_array(w, (uint32_t)a->n);
        for (size_t i = 0; i < a->n; i++)
            tf_proto_mp_write_cstr(w, a->strs[i]);
        break;
    }
}

static int send_request(struct tf_cli_ctl *c, const char *verb, const struct tf_cli_ctl_arg *args,
                        size_t n)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body;
    uint8_t hdr[TF_PROTO_CTL_HEADER_LEN];
    if (n > TF_PROTO_CTL_MAP_MAX)
        return TF_E_TOO_LONG;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, n > 0 ? 3 : 2);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, ++c->last_id);
    tf_proto_mp_write_cstr(&w, "verb");
    tf_proto_mp_write_cstr(&w, verb);
    if (n > 0) {
        tf_proto_mp_write_cstr(&w, "args");
        tf_proto_mp_write_map(&w, (uint32_t)n);
        for (size_t i = 0; i < n; i++)
            write_arg(&w, &args[i]);
    }
    int rc = tf_proto_mp_writer_finish(&w, &body);
    if (rc != TF_OK)
        return rc;
    if (body.len > TF_PROTO_CTL_REQUEST_MAX) {
        tf_proto_buf_free(&body);
        return TF_E_TOO_LONG;
    }
    tf_proto_ctl_frame_header(hdr, (uint32_t)body.len);
    if ((rc = write_all(c->fd, hdr, sizeof hdr)) == 0)
        rc = write_all(c->fd, body.data, body.len);
    tf_proto_buf_free(&body);
    return rc;
}

int tf_cli_ctl_refused(struct tf_cli_ctl *c, const msgpack_object *reply)
{
    const msgpack_object *err = tf_proto_ctl_get(reply, "error");
    const char *msg = NULL, *name = NULL;
    size_t msg_len = 0, name_len = 0;
    int64_t code = 0;
    if (tf_proto_ctl_get_str(err, "message", &msg, &msg_len) != TF_OK)
        msg = NULL;
    if (tf_proto_ctl_get_str(err, "name", &name, &name_len) != TF_OK)
        name = NULL;
    if (tf_proto_ctl_get_int(err, "code", &code) != TF_OK || code < INT32_MIN || code > 0)
        code = 0;
    if (c->cli->json && err != NULL) {
        json_t *e = tf_cli_render_json(err);
        if (json_is_object(e))
            (void)json_object_set_new(e, "exit", json_integer(TF_CLI_EXIT_FAIL));
        /* "o" takes e's reference, also when packing fails. */
        (void)tf_cli_render_json_print(c->cli, e != NULL ? json_pack("{s:o}", "error", e) : NULL,
                                       false);
    }
    if (c->cli->json && err == NULL)
        return tf_cli_render_fail(c->cli, TF_CLI_EXIT_FAIL, "twofoldd refused: %s",
                                  tf_strerror((int)code));
    if (msg != NULL && msg_len > 0)
        return tf_cli_render_fail_text(c->cli, TF_CLI_EXIT_FAIL, "%.*s", (int)msg_len, msg);
    if (name != NULL)
        return tf_cli_render_fail_text(c->cli, TF_CLI_EXIT_FAIL, "twofoldd refused: %.*s",
                                       (int)name_len, name);
    return tf_cli_render_fail_text(c->cli, TF_CLI_EXIT_FAIL, "twofoldd refused: %s",
                                   tf_strerror((int)code));
}

int tf_cli_ctl_call(struct tf_cli_ctl *c, const char *verb, const struct tf_cli_ctl_arg *args,
                    size_t n, const msgpack_object **result)
{
    static const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    const msgpack_object *reply = &c->root;
    uint64_t id;
    bool ok;
    int rc = send_request(c, verb, args, n);
    if (rc == TF_E_TOO_LONG)
        return tf_cli_render_fail(c->cli, TF_CLI_EXIT_FAIL,
                                  "the request is larger than twofoldd accepts (%u KiB)",
                                  TF_PROTO_CTL_REQUEST_MAX / 1024);
    if (rc != 0)
        return report(c, rc);
    if ((rc = read_frame(c, now_ms() + timeout_ms(c), &c->root)) == -EINTR)
        return -1;
    if (rc != 0)
        return report(c, rc);
    if (reply->type != MSGPACK_OBJECT_MAP || tf_proto_ctl_get_uint(reply, "id", &id) != TF_OK ||
        tf_proto_ctl_get_bool(reply, "ok", &ok) != TF_OK)
        return report(c, TF_E_BAD_KEY);
    /* Id 0 answers a request the node could not read at all. */
    if (id != c->last_id && !(id == 0 && !ok))
        return report(c, TF_E_BAD_VALUE);
    if (!ok && c->quiet_refusal) {
        int64_t code = 0;
        const msgpack_object *err = tf_proto_ctl_get(reply, "error");
        c->refused =
            tf_proto_ctl_get_int(err, "code", &code) == TF_OK && code >= INT32_MIN && code <= 0
                ? (int)code
                : 0;
        return TF_CLI_EXIT_FAIL;
    }
    if (!ok)
        return tf_cli_ctl_refused(c, reply);
    *result = tf_proto_ctl_get(reply, "result");
    if (*result == NULL)
        *result = &nil;
    return TF_CLI_EXIT_OK;
}

int tf_cli_ctl_run(struct tf_cli_ctl *c, struct tf_cli *cli, const char *verb,
                   const struct tf_cli_ctl_arg *args, size_t n, const msgpack_object **result)
{
    int rc = tf_cli_args_home(cli);
    if (rc == TF_CLI_EXIT_OK)
        rc = tf_cli_ctl_open(c, cli);
    if (rc == TF_CLI_EXIT_OK)
        rc = tf_cli_ctl_call(c, verb, args, n, result);
    return rc;
}

int tf_cli_ctl_next(struct tf_cli_ctl *c, const msgpack_object **frame)
{
    int rc = read_frame(c, -1, &c->root);
    if (rc == -EINTR)
        return -1;
    if (rc != 0)
        return report(c, rc);
    *frame = &c->root;
    return TF_CLI_EXIT_OK;
}

int tf_cli_ctl_print_page(struct tf_cli *cli, const char *verb, const struct tf_cli_ctl_arg *args,
                          size_t n, const char *empty, const struct tf_cli_render_row *cols,
                          size_t ncols, const char *cmd, const struct tf_cli_ctl_page *page,
                          bool newest_first_default)
{
    struct tf_cli_ctl c = {0};
    const msgpack_object *res;
    int rc = tf_cli_ctl_run(&c, cli, verb, args, n, &res);
    if (rc != TF_CLI_EXIT_OK)
        goto cleanup;
    if (res->type != MSGPACK_OBJECT_ARRAY) {
        rc = tf_cli_render_fail(cli, TF_CLI_EXIT_NODE, "twofoldd sent a malformed %s reply", verb);
    } else if (cli->json) {
        rc = tf_cli_render_json_print(cli, tf_cli_render_json(res), false);
    } else if (res->via.array.size == 0) {
        printf("%s\n", empty);
    } else {
        rc = tf_cli_render_list(cli, &res->via.array, cols, ncols);
        if (rc == TF_CLI_EXIT_OK && page != NULL)
            tf_cli_ctl_page_hint(cli, cmd, page, &res->via.array, newest_first_default);
    }
cleanup:
    tf_cli_ctl_close(&c);
    return rc;
}

int tf_cli_ctl_print_list(struct tf_cli *cli, const char *verb, const struct tf_cli_ctl_arg *args,
                          size_t n, const char *empty, const struct tf_cli_render_row *cols,
                          size_t ncols)
{
    return tf_cli_ctl_print_page(cli, verb, args, n, empty, cols, ncols, NULL, NULL, false);
}

int tf_cli_ctl_page_opt(const struct tf_cli *cli, struct tf_cli_ctl_page *p, int id,
                        const char *val)
{
    char *end;
    switch (id) {
    case TF_CLI_CTL_OPT_LIMIT:
        errno = 0;
        p->limit = strtoull(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0 || p->limit < 1 ||
            p->limit > TF_NODE_VERBS_PAGE_MAX)
            return tf_cli_args_usage_error(cli, "--limit wants a number from 1 to %d, not '%s'",
                                           TF_NODE_VERBS_PAGE_MAX, val);
        return 0;
    case TF_CLI_CTL_OPT_AFTER:
    case TF_CLI_CTL_OPT_BEFORE:
        if (val[0] == '\0')
            return tf_cli_args_usage_error(cli, "--%s wants an id",
                                           id == TF_CLI_CTL_OPT_AFTER ? "after" : "before");
        *(id == TF_CLI_CTL_OPT_AFTER ? &p->after : &p->before) = val;
        if (p->after != NULL && p->before != NULL)
            return tf_cli_args_usage_error(cli, "give --after or --before, not both");
        return 0;
    default:
        return tf_cli_args_usage_error(cli, "unknown paging option");
    }
}

int tf_cli_ctl_page_parse(struct tf_cli_args *a, struct tf_cli *cli, int argc, char **argv,
                          struct tf_cli_ctl_page *p, size_t max_pos)
{
    static const struct tf_cli_opt opts[] = {TF_CLI_CTL_PAGE_OPTS, {NULL, false, 0}};
    const char *val;
    int id;
    tf_cli_args_init(a, cli, argc, argv, opts);
    while ((id = tf_cli_args_next(a, &val)) > 0)
        if (tf_cli_ctl_page_opt(cli, p, id, val) != 0)
            return TF_CLI_EXIT_USAGE;
    if (id < 0 || tf_cli_args_want(a, 0, max_pos, "") != 0)
        return TF_CLI_EXIT_USAGE;
    return 0;
}

void tf_cli_ctl_page_args(const struct tf_cli_ctl_page *p, struct tf_cli_ctl_arg *args, size_t *n)
{
    args[(*n)++] = (struct tf_cli_ctl_arg){.key = "limit",
                                           .type = TF_CLI_CTL_UINT,
                                           .u = p->limit ? p->limit : TF_NODE_VERBS_PAGE_DEFAULT};
    tf_cli_ctl_add_str(args, n, "after", p->after);
    tf_cli_ctl_add_str(args, n, "before", p->before);
}

void tf_cli_ctl_page_hint(const struct tf_cli *cli, const char *cmd,
                          const struct tf_cli_ctl_page *p, const msgpack_object_array *items,
                          bool newest_first_default)
{
    uint64_t limit = p->limit ? p->limit : TF_NODE_VERBS_PAGE_DEFAULT;
    if (cli->json || items->size == 0 || items->size < limit)
        return;
    bool backwards = p->before != NULL || (p->after == NULL && newest_first_default);
    char id[80];
    const msgpack_object *edge = &items->ptr[backwards ? 0 : items->size - 1];
    tf_cli_render_field(id, sizeof id, edge, p->id_key != NULL ? p->id_key : "id",
                        TF_CLI_RENDER_TEXT);
    fprintf(stderr, "(%u shown; %s: %s --%s %s)\n", items->size, backwards ? "earlier" : "more",
            cmd, backwards ? "before" : "after", id);
}

void tf_cli_ctl_add_str(struct tf_cli_ctl_arg *args, size_t *n, const char *key, const char *val)
{
    if (val != NULL)
        args[(*n)++] = (struct tf_cli_ctl_arg){.key = key, .type = TF_CLI_CTL_STR, .str = val};
}

/* Set by SIGINT or SIGTERM once tf_cli_ctl_catch_stop ran: the process's
 * only global. */
static volatile sig_atomic_t stop_requested;
/* The signal mask to wait with: the caller's, with SIGINT and SIGTERM. */
static sigset_t stop_wait_mask;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void tf_cli_ctl_catch_stop(struct tf_cli_ctl *c)
{
    struct sigaction sa;
    sigset_t stop_set;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_set, &stop_wait_mask);
    sigdelset(&stop_wait_mask, SIGINT);
    sigdelset(&stop_wait_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    c->wait_mask = &stop_wait_mask;
    c->stop = &stop_requested;
}

int tf_cli_ctl_pause(struct tf_cli_ctl *c, int ms)
{
    int64_t deadline = now_ms() + ms;
    for (;;) {
        /* The stop signals are blocked until pselect: none is missed. */
        if (c->stop != NULL && *c->stop)
            return -1;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000),
                              .tv_nsec = (long)(left % 1000) * 1000000};
        (void)pselect(0, NULL, NULL, NULL, &ts, c->wait_mask);
    }
}
