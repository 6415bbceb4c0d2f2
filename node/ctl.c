/* SPDX-License-Identifier: MIT */
/* SO_PEERCRED and struct ucred are Linux extensions. */
#define _GNU_SOURCE
#include "node/ctl.h"
#include "node/internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack/zone.h>
#include <uv.h>

#include "node/log.h"
#include "node/node.h"
#include "node/verbs.h"
#include "proto/ctl.h"
#include "proto/mp.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* One reply or event waiting to be written.  A `durable` reply promises a
 * change and waits for the group commit; frames queued behind it are `held`
 * too, so replies keep request order.  `id` lets a failed commit turn a
 * durable reply into an error. */
struct out_frame {
    struct out_frame *next;
    uint8_t *data; /* header + body */
    size_t len;
    uint64_t id;
    bool held;
    bool durable;
    bool wrote;                            /* powerloss: the request itself changed the store */
    bool watch;                            /* the reply to a watch: it starts the stream */
    struct tf_node_ctl_deferred *deferred; /* set while the reply is pending */
};

struct tf_node_ctl_deferred {
    struct client *c;    /* NULL once the client has gone */
    struct out_frame *f; /* the placeholder in c's queue */
};

struct tf_node_ctl_request {
    struct client *c;
    uint64_t id;
};

struct client {
    uv_pipe_t pipe;
    struct tf_node_ctl *ctl;
    struct client *next, *prev;
    unsigned num; /* for log lines */
    uid_t uid;
    uint8_t *rbuf;
    size_t rlen;
    struct out_frame *out_head, *out_tail;
    bool watching;
    /* Replaying the event log to a watcher: events after backlog_after are
     * read from the store a page per loop turn, once the client has taken
     * the previous page; live events wait in the store meanwhile. */
    bool backlog;
    uint64_t backlog_after;
    /* The seq a watch reply told: live events up to it are not sent (it
     * may be read through a batch still open, whose events are broadcast
     * at its commit). */
    uint64_t told;
    bool closing;
    bool close_after_flush; /* stop reading; close once the queue drains */
};

struct tf_node_ctl {
    struct tf_node *node;
    uv_pipe_t server;
    char path[TF_NODE_PATH_MAX];
    struct client *clients;
    size_t n_clients;
    unsigned next_num;
    bool stopping;
};

/* One write of up to WRITE_FRAMES_MAX frames (a list, owned). */
#define WRITE_FRAMES_MAX 64
struct write_req {
    uv_write_t req;
    struct out_frame *frames;
};

#define RBUF_CAP (TF_PROTO_CTL_HEADER_LEN + TF_PROTO_CTL_REQUEST_MAX)

static void client_close(struct client *c);
static void flush(struct client *c);

static void free_frame(struct out_frame *f)
{
    if (f->deferred != NULL) {
        /* The client is going away: the owner's completion becomes a no-op. */
        f->deferred->c = NULL;
        f->deferred->f = NULL;
    }
    free(f->data);
    free(f);
}

/* Frames a finished writer's bytes; takes ownership of body. */
static struct out_frame *frame_new(struct tf_proto_buf *body, uint64_t id, bool durable)
{
    struct out_frame *f = calloc(1, sizeof *f);
    uint8_t *data = body->len <= UINT32_MAX ? malloc(TF_PROTO_CTL_HEADER_LEN + body->len) : NULL;
    if (f == NULL || data == NULL) {
        free(f);
        free(data);
        tf_proto_buf_free(body);
        return NULL;
    }
    tf_proto_ctl_frame_header(data, (uint32_t)body->len);
    memcpy(data + TF_PROTO_CTL_HEADER_LEN, body->data, body->len);
    f->data = data;
    f->len = TF_PROTO_CTL_HEADER_LEN + body->len;
    f->id = id;
    f->held = durable;
    f->durable = durable;
    tf_proto_buf_free(body);
    return f;
}

static void enqueue(struct client *c, struct out_frame *f)
{
    if (c->out_tail)
        c->out_tail->next = f;
    else
        c->out_head = f;
    c->out_tail = f;
}

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *wr = container_of(req, struct write_req, req);
    struct client *c = req->handle->data;
    while (wr->frames != NULL) {
        struct out_frame *f = wr->frames;
        wr->frames = f->next;
        free_frame(f);
    }
    free(wr);
    if (status < 0 && !c->closing) {
        tf_node_log(TF_NODE_LOG_DEBUG, "ctl", "client %u: write failed: %s", c->num,
                    uv_strerror(status));
        client_close(c);
        return;
    }
    if (c->close_after_flush && c->out_head == NULL &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) == 0)
        client_close(c);
}

/* Writes queued frames from the head until one that waits for a commit,
 * many frames to a write. */
static void flush(struct client *c)
{
    while (!c->closing && c->out_head != NULL && !c->out_head->held) {
        struct write_req *wr = malloc(sizeof *wr);
        if (wr == NULL) {
            client_close(c);
            return;
        }
        /* Detach the ready frames (up to the limit) as the request's list. */
        uv_buf_t bufs[WRITE_FRAMES_MAX];
        unsigned n = 0;
        struct out_frame **tail = &wr->frames;
        while (n < WRITE_FRAMES_MAX && c->out_head != NULL && !c->out_head->held) {
            struct out_frame *f = c->out_head;
            c->out_head = f->next;
            f->next = NULL;
            *tail = f;
            tail = &f->next;
            bufs[n++] = uv_buf_init((char *)f->data, (unsigned)f->len);
        }
        if (c->out_head == NULL)
            c->out_tail = NULL;
        int rc = uv_write(&wr->req, (uv_stream_t *)&c->pipe, bufs, n, write_cb);
        if (rc < 0) {
            while (wr->frames != NULL) {
                struct out_frame *f = wr->frames;
                wr->frames = f->next;
                free_frame(f);
            }
            free(wr);
            client_close(c);
            return;
        }
    }
    if (!c->closing &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > TF_NODE_CTL_OUTPUT_MAX) {
        tf_node_log(TF_NODE_LOG_WARN, "ctl", "client %u: not reading its output; disconnecting",
                    c->num);
        client_close(c);
        return;
    }
    if (!c->closing && c->close_after_flush && c->out_head == NULL &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) == 0)
        client_close(c);
}

/* Writes the start of a successful reply: {"id": id, "ok": true, "result":
 * — the caller writes the result value next. */
static void write_ok_head(struct tf_proto_mp_writer *w, uint64_t id)
{
    tf_proto_mp_write_map(w, 3);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_uint(w, id);
    tf_proto_mp_write_cstr(w, "ok");
    tf_proto_mp_write_bool(w, true);
    tf_proto_mp_write_cstr(w, "result");
}

/* Writes an error reply body. */
static int error_body(uint64_t id, int code, const char *message, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, id);
    tf_proto_mp_write_cstr(&w, "ok");
    tf_proto_mp_write_bool(&w, false);
    tf_proto_mp_write_cstr(&w, "error");
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_cstr(&w, "code");
    tf_proto_mp_write_int(&w, code);
    tf_proto_mp_write_cstr(&w, "name");
    tf_proto_mp_write_cstr(&w, tf_err_name(code));
    tf_proto_mp_write_cstr(&w, "message");
    tf_proto_mp_write_cstr(&w, message && message[0] ? message : tf_strerror(code));
    return tf_proto_mp_writer_finish(&w, out);
}

static void send_error(struct client *c, uint64_t id, int code, const char *message)
{
    struct tf_proto_buf body;
    struct out_frame *f;
    /* An error changes nothing, but it must not overtake held replies, nor
     * leave before the batch it may reflect is committed (a refusal that
     * depends on a change still waiting: waitcommit): durable while the
     * store is dirty, so that no earlier reply's release lets it out before
     * the commit, and a failed commit turns it into "ask again". */
    if (error_body(id, code, message, &body) != TF_OK ||
        (f = frame_new(&body, id, tf_node_store_dirty(c->ctl->node->store))) == NULL) {
        client_close(c);
        return;
    }
    f->held = f->held || (c->out_tail != NULL && c->out_tail->held);
    enqueue(c, f);
    flush(c);
}

/* Frames a page of the event backlog for a watcher. */
struct backlog {
    struct client *c;
    size_t n;
    int err;
};

static void handle_watch(struct client *c, uint64_t id, const msgpack_object *args)
{
    struct tf_node *node = c->ctl->node;
    uint64_t last, since = 0;
    int rc = tf_node_store_event_last(node->store, &last);
    if (rc != TF_OK) {
        send_error(c, id, rc, "cannot read the event log");
        return;
    }
    bool have_since = tf_proto_ctl_get_uint(args, "since", &since) == TF_OK;
    if (!have_since && tf_proto_ctl_get(args, "since") != NULL &&
        tf_proto_ctl_get(args, "since")->type != MSGPACK_OBJECT_NIL) {
        send_error(c, id, TF_E_BAD_REQUEST, "argument 'since' must be an unsigned integer");
        return;
    }
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body;
    struct out_frame *f;
    tf_proto_mp_writer_init(&w);
    write_ok_head(&w, id);
    tf_proto_mp_write_map(&w, 1);
    tf_proto_mp_write_cstr(&w, "seq");
    tf_proto_mp_write_uint(&w, last);
    /* `last` was read through the open batch: the reply waits for its
     * commit (durable: nothing released before it lets it out, and a failed
     * commit turns it into "ask again"), so that a watcher is never told of
     * an event that is lost. */
    if (tf_proto_mp_writer_finish(&w, &body) != TF_OK ||
        (f = frame_new(&body, id, tf_node_store_dirty(node->store))) == NULL) {
        client_close(c);
        return;
    }
    f->held = f->held || (c->out_tail != NULL && c->out_tail->held);
    f->watch = true;
    enqueue(c, f);
    /* The backlog is read after this turn's commit (backlog_pump), so that
     * only committed events are replayed. */
    c->backlog = have_since;
    c->backlog_after = since;
    c->told = last;
    c->watching = true;
    flush(c);
}

/* Builds {"event": {"seq": seq, <record's pairs>}} from a stored record,
 * a map of fewer than 15 pairs written by tf_node_event. */
static int event_frame(uint64_t seq, const uint8_t *rec, size_t len, struct tf_proto_buf *out)
{
    if (len < 1 || (rec[0] & 0xf0) != 0x80 || (rec[0] & 0x0f) == 0x0f)
        return TF_E_CORRUPT;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf head;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 1);
    tf_proto_mp_write_cstr(&w, "event");
    tf_proto_mp_write_map(&w, (uint32_t)(rec[0] & 0x0f) + 1);
    tf_proto_mp_write_cstr(&w, "seq");
    tf_proto_mp_write_uint(&w, seq);
    int rc = tf_proto_mp_writer_finish(&w, &head);
    if (rc != TF_OK)
        return rc;
    uint8_t *p = realloc(head.data, head.len + len - 1);
    if (p == NULL) {
        tf_proto_buf_free(&head);
        return TF_E_NOMEM;
    }
    memcpy(p + head.len, rec + 1, len - 1);
    out->data = p;
    out->len = head.len + len - 1;
    return TF_OK;
}

static int backlog_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
    struct backlog *b = arg;
    struct tf_proto_buf body;
    struct out_frame *f;
    int rc = event_frame(seq, rec, len, &body);
    if (rc != TF_OK) {
        b->err = rc;
        return 1;
    }
    if ((f = frame_new(&body, 0, false)) == NULL) {
        b->err = TF_E_NOMEM;
        return 1;
    }
    f->held = b->c->out_tail != NULL && b->c->out_tail->held;
    enqueue(b->c, f);
    b->c->backlog_after = seq;
    return ++b->n == TF_NODE_CTL_EVENTS_PAGE ? 1 : 0;
}

/* Sends a watcher the next page of its backlog once it has taken the last
 * one (nothing queued, little unwritten), so that replaying a long event log
 * holds one page in memory and never blocks the loop for long.  A short page
 * means the watcher has caught up: it gets live events from then on.  Runs
 * after the turn's commit, with no write transaction open. */
static void backlog_pump(struct client *c)
{
    if (!c->backlog || c->closing || c->close_after_flush || c->out_head != NULL ||
        uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > TF_NODE_CTL_BACKLOG_LOW)
        return;
    struct backlog b = {c, 0, TF_OK};
    int rc = tf_node_store_event_foreach(c->ctl->node->store, c->backlog_after, backlog_cb, &b);
    if ((rc != TF_OK && rc != 1) || b.err != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "ctl", "client %u: event backlog failed: %s", c->num,
                    tf_strerror(b.err != TF_OK ? b.err : rc));
        client_close(c);
        return;
    }
    if (b.n > 0)
        tf_node_log(TF_NODE_LOG_DEBUG, "ctl", "client %u: backlog page of %zu events, to seq %llu",
                    c->num, b.n, (unsigned long long)c->backlog_after);
    if (b.n < TF_NODE_CTL_EVENTS_PAGE)
        c->backlog = false;
    flush(c);
}

struct tf_node_ctl_deferred *tf_node_ctl_defer(struct tf_node_ctl_request *req)
{
    struct tf_node_ctl_deferred *d = calloc(1, sizeof *d);
    struct out_frame *f = calloc(1, sizeof *f);
    if (d == NULL || f == NULL) {
        free(d);
        free(f);
        return NULL;
    }
    f->id = req->id;
    f->held = true;
    f->deferred = d;
    d->c = req->c;
    d->f = f;
    enqueue(req->c, f);
    return d;
}

void tf_node_ctl_complete(struct tf_node_ctl_deferred *d, int rc, const struct tf_proto_buf *result,
                          const char *why)
{
    struct client *c = d->c;
    struct out_frame *f = d->f;
    free(d);
    if (c == NULL || f == NULL)
        return;
    f->deferred = NULL;
    struct tf_proto_buf body = {0};
    if (rc == TF_OK) {
        struct tf_proto_mp_writer w;
        tf_proto_mp_writer_init(&w);
        write_ok_head(&w, f->id);
        tf_proto_mp_write_raw(&w, result->data, result->len);
        rc = tf_proto_mp_writer_finish(&w, &body);
    }
    if (rc != TF_OK && error_body(f->id, rc, why, &body) != TF_OK) {
        client_close(c);
        return;
    }
    uint8_t *data = malloc(TF_PROTO_CTL_HEADER_LEN + body.len);
    if (data == NULL) {
        tf_proto_buf_free(&body);
        client_close(c);
        return;
    }
    tf_proto_ctl_frame_header(data, (uint32_t)body.len);
    memcpy(data + TF_PROTO_CTL_HEADER_LEN, body.data, body.len);
    f->data = data;
    f->len = TF_PROTO_CTL_HEADER_LEN + body.len;
    tf_proto_buf_free(&body);
    /* Release it, and the frames queued behind it only to keep the order, up
     * to the next one that still waits (for a commit or its own reply). */
    f->held = false;
    for (struct out_frame *g = f->next; g != NULL; g = g->next) {
        if (g->deferred != NULL || g->durable)
            break;
        g->held = false;
    }
    flush(c);
}

int tf_node__ctl_event_frame(uint64_t seq, const uint8_t *rec, size_t len, struct tf_proto_buf *out)
{
    return event_frame(seq, rec, len, out);
}

static void handle_request(struct client *c, const uint8_t *body, size_t len)
{
    struct tf_node *node = c->ctl->node;
    msgpack_zone zone;
    msgpack_object req;
    uint64_t id = 0;
    const char *verb;
    size_t verb_len;
    char why[512] = "";
    if (!msgpack_zone_init(&zone, 4096)) {
        client_close(c);
        return;
    }
    int rc = tf_proto_ctl_unpack(body, len, &zone, &req);
    if (rc != TF_OK) {
        snprintf(why, sizeof why, "malformed request: %s", tf_strerror(rc));
        send_error(c, 0, rc, why);
        c->close_after_flush = true; /* out of step with this client: stop */
        uv_read_stop((uv_stream_t *)&c->pipe);
        goto out;
    }
    if (req.type != MSGPACK_OBJECT_MAP || tf_proto_ctl_get_uint(&req, "id", &id) != TF_OK) {
        send_error(c, 0, TF_E_BAD_REQUEST, "a request is a map with an unsigned integer 'id'");
        goto out;
    }
    if (tf_proto_ctl_get_str(&req, "verb", &verb, &verb_len) != TF_OK) {
        send_error(c, id, TF_E_BAD_REQUEST, "a request needs a string 'verb'");
        goto out;
    }
    const msgpack_object *args = tf_proto_ctl_get(&req, "args");
    if (args != NULL && args->type == MSGPACK_OBJECT_NIL)
        args = NULL;
    if (args != NULL && args->type != MSGPACK_OBJECT_MAP) {
        send_error(c, id, TF_E_BAD_REQUEST, "'args' must be a map");
        goto out;
    }
    if (verb_len == 5 && memcmp(verb, "watch", 5) == 0) {
        handle_watch(c, id, args);
        goto out;
    }
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    write_ok_head(&w, id);
    struct tf_node_ctl_request request = {c, id};
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    rc = tf_node_verbs_run(node, &request, verb, verb_len, args, &w, why, sizeof why);
    if (rc != TF_OK && rc != TF_E_AGAIN)
        tf_node_rollback(node, sp); /* a refused request changes nothing */
    if (rc == TF_E_AGAIN) {
        /* The verb deferred its reply: a placeholder keeps the order. */
        tf_proto_mp_writer_deinit(&w);
        goto out;
    }
    struct tf_proto_buf reply;
    if (rc == TF_OK)
        rc = tf_proto_mp_writer_finish(&w, &reply);
    else
        tf_proto_mp_writer_deinit(&w);
    if (rc != TF_OK) {
        char vb[64];
        tf_node_log(TF_NODE_LOG_DEBUG, "ctl", "client %u: %s refused: %s", c->num,
                    tf_node_log_escape(verb, verb_len, vb, sizeof vb),
                    why[0] ? why : tf_strerror(rc));
        send_error(c, id, rc, why);
        goto out;
    }
    /* A reply that promises durability waits for the commit. */
    struct out_frame *f = frame_new(&reply, id, tf_node_store_dirty(node->store));
    if (f == NULL) {
        client_close(c);
        goto out;
    }
    f->wrote = tf_node_store_savepoint(node->store) != sp.store;
    if (c->out_tail != NULL && c->out_tail->held)
        f->held = true;
    enqueue(c, f);
    flush(c);
out:
    msgpack_zone_destroy(&zone);
}

static void process(struct client *c)
{
    size_t off = 0;
    while (!c->closing && !c->close_after_flush) {
        uint32_t n;
        int rc =
            tf_proto_ctl_frame_parse(c->rbuf + off, c->rlen - off, TF_PROTO_CTL_REQUEST_MAX, &n);
        if (rc == TF_E_AGAIN)
            break;
        if (rc != TF_OK) {
            tf_node_log(TF_NODE_LOG_WARN, "ctl", "client %u: bad frame (%s); closing", c->num,
                        tf_strerror(rc));
            send_error(c, 0, rc,
                       rc == TF_E_TOO_LONG ? "request larger than 64 KiB" : "empty request frame");
            c->close_after_flush = true;
            uv_read_stop((uv_stream_t *)&c->pipe);
            flush(c);
            return;
        }
        if (c->rlen - off - TF_PROTO_CTL_HEADER_LEN < n)
            break;
        handle_request(c, c->rbuf + off + TF_PROTO_CTL_HEADER_LEN, n);
        off += TF_PROTO_CTL_HEADER_LEN + n;
    }
    if (off > 0 && !c->closing) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct client *c = h->data;
    buf->base = (char *)c->rbuf + c->rlen;
    buf->len = RBUF_CAP - c->rlen;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct client *c = s->data;
    if (nread == 0)
        return; /* EAGAIN: nothing to do */
    if (nread < 0) {
        if (nread != UV_EOF)
            tf_node_log(TF_NODE_LOG_DEBUG, "ctl", "client %u: read: %s", c->num,
                        uv_strerror((int)nread));
        /* Let queued replies go out; then close. */
        c->close_after_flush = true;
        uv_read_stop(s);
        flush(c);
        return;
    }
    c->rlen += (size_t)nread;
    process(c);
}

static void client_free_cb(uv_handle_t *h)
{
    struct client *c = h->data;
    struct out_frame *f = c->out_head;
    while (f != NULL) {
        struct out_frame *next = f->next;
        free_frame(f);
        f = next;
    }
    free(c->rbuf);
    free(c);
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct tf_node_ctl *ctl = c->ctl;
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctl->n_clients--;
    tf_node_log(TF_NODE_LOG_DEBUG, "ctl", "client %u: closed", c->num);
    uv_close((uv_handle_t *)&c->pipe, client_free_cb);
}

static size_t clients_of_uid(const struct tf_node_ctl *ctl, uid_t uid)
{
    size_t n = 0;
    for (const struct client *c = ctl->clients; c != NULL; c = c->next)
        n += c->uid == uid;
    return n;
}

static void connection_cb(uv_stream_t *server, int status)
{
    struct tf_node_ctl *ctl = server->data;
    if (status < 0) {
        tf_node_log(TF_NODE_LOG_WARN, "ctl", "accept: %s", uv_strerror(status));
        return;
    }
    struct client *c = calloc(1, sizeof *c);
    uint8_t *rbuf = malloc(RBUF_CAP);
    if (c == NULL || rbuf == NULL || uv_pipe_init(ctl->node->loop, &c->pipe, 0) != 0) {
        free(c);
        free(rbuf);
        return;
    }
    c->rbuf = rbuf;
    c->ctl = ctl;
    c->num = ++ctl->next_num;
    c->pipe.data = c;
    c->next = ctl->clients;
    if (ctl->clients)
        ctl->clients->prev = c;
    ctl->clients = c;
    ctl->n_clients++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        client_close(c);
        return;
    }
    /* Only the node's owner may talk to it, whatever the socket's mode. */
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
        tf_node_log(TF_NODE_LOG_WARN, "ctl", "client %u: cannot read peer credentials", c->num);
        client_close(c);
        return;
    }
    c->uid = cred.uid;
    if (cred.uid != getuid()) {
        tf_node_log(TF_NODE_LOG_WARN, "ctl", "client %u: uid %u is not the node's owner; refused",
                    c->num, (unsigned)cred.uid);
        client_close(c);
        return;
    }
    if (ctl->n_clients > TF_NODE_CTL_CLIENTS_MAX ||
        clients_of_uid(ctl, cred.uid) > TF_NODE_CTL_CLIENTS_PER_UID) {
        tf_node_log(TF_NODE_LOG_WARN, "ctl", "client %u: too many connections; refused", c->num);
        send_error(c, 0, -EMFILE, "too many control connections");
        c->close_after_flush = true;
        flush(c);
        return;
    }
    tf_node_log(TF_NODE_LOG_DEBUG, "ctl", "client %u: connected (pid %d)", c->num, (int)cred.pid);
    if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) != 0)
        client_close(c);
}

static void ctl_free_cb(uv_handle_t *h)
{
    free(container_of(h, struct tf_node_ctl, server));
}

int tf_node_ctl_start(struct tf_node *node, const char *path, struct tf_node_ctl **out)
{
    struct tf_node_ctl *ctl = calloc(1, sizeof *ctl);
    if (ctl == NULL)
        return TF_E_NOMEM;
    ctl->node = node;
    if (snprintf(ctl->path, sizeof ctl->path, "%s", path) >= (int)sizeof ctl->path) {
        free(ctl);
        return -ENAMETOOLONG;
    }
    int rc = uv_pipe_init(node->loop, &ctl->server, 0);
    if (rc != 0) {
        free(ctl);
        return rc;
    }
    ctl->server.data = ctl;
    /* The home lock is ours, so a socket file left here is stale. */
    if (unlink(path) != 0 && errno != ENOENT) {
        rc = -errno;
        goto fail;
    }
    /* libuv 1.44 has no uv_pipe_bind2 with a mode: bind under a tight umask,
     * then make the mode exact and check it. */
    mode_t old = umask(077);
    rc = uv_pipe_bind(&ctl->server, path);
    umask(old);
    if (rc != 0)
        goto fail;
    struct stat sb;
    if (chmod(path, 0600) != 0 || stat(path, &sb) != 0) {
        rc = -errno;
        goto fail;
    }
    if ((sb.st_mode & 0777) != 0600) {
        rc = -EPERM;
        goto fail;
    }
    if ((rc = uv_listen((uv_stream_t *)&ctl->server, 128, connection_cb)) != 0)
        goto fail;
    *out = ctl;
    return TF_OK;
fail:
    /* The handle was initialised: it must be closed through the loop. */
    uv_close((uv_handle_t *)&ctl->server, ctl_free_cb);
    return rc;
}

void tf_node_ctl_stop(struct tf_node_ctl *ctl)
{
    if (ctl == NULL || ctl->stopping)
        return;
    ctl->stopping = true;
    while (ctl->clients != NULL)
        client_close(ctl->clients);
    unlink(ctl->path);
    uv_close((uv_handle_t *)&ctl->server, ctl_free_cb);
}

bool tf_node_ctl_holding(const struct tf_node_ctl *ctl)
{
    if (ctl == NULL)
        return false;
    for (const struct client *c = ctl->clients; c != NULL; c = c->next)
        for (const struct out_frame *f = c->out_head; f != NULL; f = f->next)
            if (f->held && f->durable && f->deferred == NULL)
                return true;
    return false;
}

void tf_node_ctl_committed(struct tf_node_ctl *ctl, int rc)
{
    if (ctl == NULL)
        return;
    struct client *c = ctl->clients;
    while (c != NULL) {
        struct client *next = c->next; /* flush may close c */
        for (struct out_frame *f = c->out_head; f != NULL; f = f->next) {
            if (!f->held || f->deferred != NULL)
                continue;
            f->held = false;
            if (rc == TF_OK || !f->durable)
                continue;
            if (f->watch) /* told a seq that was lost: no stream; ask again */
                c->watching = c->backlog = false;
            struct tf_proto_buf body;
            /* powerloss: a full disk is said as such (node/node.c store_full).
             * A request that changed nothing waited only because its answer
             * may show the turn's other changes, which were not stored. */
            bool full = rc == -ENOSPC;
            const char *msg = !full ? "the change could not be saved; nothing was stored"
                              : f->wrote
                                  ? "the disk is full: nothing was stored; the node takes changes "
                                    "again by itself once space is freed"
                                  : "the disk is full: the answer could not be confirmed (it "
                                    "would have shown changes that were not stored); ask again";
            if (error_body(f->id, full ? TF_E_FULL : rc, msg, &body) == TF_OK) {
                uint8_t *data = malloc(TF_PROTO_CTL_HEADER_LEN + body.len);
                if (data != NULL) {
                    tf_proto_ctl_frame_header(data, (uint32_t)body.len);
                    memcpy(data + TF_PROTO_CTL_HEADER_LEN, body.data, body.len);
                    free(f->data);
                    f->data = data;
                    f->len = TF_PROTO_CTL_HEADER_LEN + body.len;
                }
                tf_proto_buf_free(&body);
            }
        }
        flush(c);
        if (!c->closing)
            backlog_pump(c);
        c = next;
    }
}

void tf_node_ctl_broadcast(struct tf_node_ctl *ctl, uint64_t seq, const uint8_t *frame, size_t len)
{
    struct client *c = ctl->clients;
    while (c != NULL) {
        struct client *next = c->next;
        /* A watcher still replaying its backlog reads these from the store;
         * one told a later seq has it already, in what it was told. */
        if (c->watching && !c->backlog && !c->close_after_flush && seq > c->told) {
            struct out_frame *f = calloc(1, sizeof *f);
            uint8_t *data = malloc(len);
            if (f == NULL || data == NULL) {
                free(f);
                free(data);
                client_close(c);
            } else {
                memcpy(data, frame, len);
                f->data = data;
                f->len = len;
                enqueue(c, f); /* written by tf_node_ctl_committed, with the turn's replies */
            }
        }
        c = next;
    }
}
