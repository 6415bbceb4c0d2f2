/* SPDX-License-Identifier: MIT */
/*
 * The page's API: each request becomes one control request (cli/ctl.c, the
 * CLI's own client), on a fresh connection to the node's socket; events come
 * from a `watch` connection and are passed on as Server-Sent Events.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "cli/ctl.h"
#include "cli/render.h"
#include "cli/web/web.h"
#include "proto/ctl.h"

/* The verbs the page uses.  Others (watch: see the event stream; ping, which
 * holds a connection for seconds; message and profile changes) are refused
 * with 400: the page needs no more power than this. */
static const char *const VERBS[] = {
    "status",        "profile.show",   "outbox.list", "contact.list",  "contact.show",
    "contact.add",   "contact.set",    "contact.rm",  "intro.propose", "intro.list",
    "intro.show",    "intro.withdraw", "intro.rm",    "inbox.list",    "intro.accept",
    "intro.decline", "inbox.rm",       "policy.show", "policy.test",   "policy.reload",
};

static bool verb_allowed(const char *verb)
{
    for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
        if (strcmp(VERBS[i], verb) == 0)
            return true;
    return false;
}

/* Dumps j (taken) as compact JSON into *out; 500 when out of memory. */
static unsigned dump(json_t *j, char **out, unsigned status)
{
    *out = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return *out != NULL ? status : 500;
}

/* A reply made here rather than by the node: {"ok": false, "error": {...}}. */
static unsigned local_error(char **out, unsigned status, const char *name, const char *message)
{
    json_t *j = json_pack("{s:b, s:{s:i, s:s, s:s}}", "ok", 0, "error", "code", 0, "name", name,
                          "message", message);
    return dump(j, out, status);
}

/* Turns the JSON object args into control arguments (views into args, which
 * must outlive them; *strs holds the arrays' element pointers, owned).
 * Returns 0, or -1 with *why set. */
static int convert_args(json_t *args, struct tf_cli_ctl_arg *out, size_t *n, const char ***strs,
                        const char **why)
{
    const char *key;
    json_t *v;
    size_t total = 0, used = 0;
    *n = 0;
    *strs = NULL;
    if (!json_is_object(args)) {
        *why = "the arguments are not a JSON object";
        return -1;
    }
    if (json_object_size(args) > TF_PROTO_CTL_MAP_MAX) {
        *why = "too many arguments";
        return -1;
    }
    json_object_foreach(args, key, v)
    {
        if (json_is_array(v))
            total += json_array_size(v);
    }
    /* The body is at most TF_CLI_WEB_BODY_MAX bytes, so total is small. */
    if (total > 0 && (*strs = calloc(total, sizeof **strs)) == NULL) {
        *why = "out of memory";
        return -1;
    }
    json_object_foreach(args, key, v)
    {
        struct tf_cli_ctl_arg *a = &out[*n];
        memset(a, 0, sizeof *a);
        a->key = key;
        if (json_is_null(v))
            continue; /* absent */
        if (json_is_string(v)) {
            a->type = TF_CLI_CTL_STR;
            a->str = json_string_value(v);
            /* cli/ctl.c sends C strings: a NUL inside would cut the text. */
            if (strlen(a->str) != json_string_length(v)) {
                *why = "a text argument holds a NUL character";
                return -1;
            }
        } else if (json_is_boolean(v)) {
            a->type = TF_CLI_CTL_BOOL;
            a->b = json_is_true(v);
        } else if (json_is_integer(v) && json_integer_value(v) >= 0) {
            a->type = TF_CLI_CTL_UINT;
            a->u = (uint64_t)json_integer_value(v);
        } else if (json_is_array(v)) {
            size_t i;
            json_t *e;
            a->type = TF_CLI_CTL_STRS;
            a->strs = *strs + used;
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
                    *why = "an array argument holds something other than text";
                    return -1;
                }
                (*strs)[used++] = json_string_value(e);
            }
            a->n = json_array_size(v);
        } else {
            *why = "an argument is not text, a boolean, an unsigned integer or an array of text";
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* Waits for one of the TF_CLI_WEB_CALLS_MAX control connections. */
static int take_call_slot(struct tf_cli_web *web)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += TF_CLI_WEB_CALL_WAIT_MS / 1000;
    while (sem_timedwait(&web->calls, &ts) != 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

unsigned tf_cli_web_api_call(struct tf_cli_web *web, const char *verb, const char *args_json,
                             size_t len, char **out)
{
    struct tf_cli_ctl_arg args[TF_PROTO_CTL_MAP_MAX];
    struct tf_cli_ctl c = {0};
    const char **strs = NULL;
    const char *why = NULL;
    const msgpack_object *result;
    json_error_t jerr;
    size_t n = 0;
    unsigned status;

    *out = NULL;
    if (!verb_allowed(verb))
        return local_error(out, 400, "E_UNKNOWN_VERB", "the page may not use this verb");
    json_t *j = json_loadb(args_json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        return local_error(out, 400, "E_BAD_REQUEST", "the body is not JSON");
    if (convert_args(j, args, &n, &strs, &why) != 0) {
        status = local_error(out, 400, "E_BAD_REQUEST", why);
        goto cleanup;
    }
    if (take_call_slot(web) != 0) {
        status = local_error(out, 503, "E_BUSY", "too many requests to the node at once");
        goto cleanup;
    }
    int rc = tf_cli_ctl_open(&c, &web->cli);
    if (rc == TF_CLI_EXIT_OK)
        rc = tf_cli_ctl_call(&c, verb, args, n, &result);
    if (rc == TF_CLI_EXIT_OK) {
        status =
            dump(json_pack("{s:b, s:o}", "ok", 1, "result", tf_cli_render_json(result)), out, 200);
    } else if (rc == TF_CLI_EXIT_FAIL && tf_proto_ctl_get(&c.root, "error") != NULL) {
        /* The node refused: its error, as the CLI's --json shows it. */
        status = dump(json_pack("{s:b, s:o}", "ok", 0, "error",
                                tf_cli_render_json(tf_proto_ctl_get(&c.root, "error"))),
                      out, 200);
    } else if (rc == TF_CLI_EXIT_FAIL) {
        status = local_error(out, 400, "E_TOO_LONG", "the request is larger than the node takes");
    } else {
        status = local_error(out, 503, "E_NODE", "the node is not running or did not answer");
    }
    tf_cli_ctl_close(&c);
    sem_post(&web->calls);
cleanup:
    free(strs);
    json_decref(j);
    return status;
}

/* One event stream: a watch connection and the bytes not yet handed to
 * libmicrohttpd. */
struct stream {
    struct tf_cli_web *web;
    struct tf_cli_ctl ctl;
    char *pending; /* owned */
    size_t len, off;
};

static void stream_free_cb(void *cls)
{
    struct stream *s = cls;
    tf_cli_ctl_close(&s->ctl);
    free(s->pending);
    atomic_fetch_sub(&s->web->streams, 1);
    free(s);
}

/* Sets s->pending to text (taken). */
static void stream_set(struct stream *s, char *text)
{
    free(s->pending);
    s->pending = text;
    s->len = text != NULL ? strlen(text) : 0;
    s->off = 0;
}

/* Waits for the next event (or the keepalive time) and formats it. */
static int stream_fill(struct stream *s)
{
    struct pollfd pf[2] = {{.fd = s->ctl.fd, .events = POLLIN},
                           {.fd = s->web->quit_fd, .events = POLLIN}};
    int n = poll(pf, 2, TF_CLI_WEB_KEEPALIVE_MS);
    if (n < 0 && errno != EINTR)
        return -1;
    if (pf[1].revents != 0)
        return -1;
    if (n <= 0 || pf[0].revents == 0) {
        stream_set(s, strdup(": keepalive\n\n"));
        return s->pending != NULL ? 0 : -1;
    }
    const msgpack_object *frame;
    if (tf_cli_ctl_next(&s->ctl, &frame) != TF_CLI_EXIT_OK)
        return -1;
    const msgpack_object *ev = tf_proto_ctl_get(frame, "event");
    if (ev == NULL)
        return -1; /* an error frame: the watch is over */
    json_t *j = tf_cli_render_json(ev);
    char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (body == NULL)
        return -1;
    /* Compact JSON has no raw newline, so it is one data line. */
    size_t need = strlen(body) + sizeof "data: \n\n";
    char *text = malloc(need);
    if (text != NULL)
        snprintf(text, need, "data: %s\n\n", body);
    free(body);
    stream_set(s, text);
    return text != NULL ? 0 : -1;
}

static ssize_t stream_read_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    (void)pos;
    if (s->off == s->len && stream_fill(s) != 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->pending + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

struct MHD_Response *tf_cli_web_api_events(struct tf_cli_web *web, unsigned *status)
{
    const msgpack_object *result;
    *status = 503;
    if (atomic_fetch_add(&web->streams, 1) >= TF_CLI_WEB_STREAMS_MAX) {
        atomic_fetch_sub(&web->streams, 1);
        return NULL;
    }
    struct stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        atomic_fetch_sub(&web->streams, 1);
        return NULL;
    }
    s->web = web;
    if (tf_cli_ctl_open(&s->ctl, &web->cli) != TF_CLI_EXIT_OK ||
        tf_cli_ctl_call(&s->ctl, "watch", NULL, 0, &result) != TF_CLI_EXIT_OK) {
        stream_free_cb(s);
        return NULL;
    }
    /* The first lines tell the page the stream is up. */
    stream_set(s, strdup("retry: 3000\n: watching\n\n"));
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                               stream_read_cb, s, stream_free_cb);
    if (r == NULL)
        stream_free_cb(s);
    else
        *status = 200;
    return r;
}
