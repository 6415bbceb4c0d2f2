/* SPDX-License-Identifier: MIT */
/* A non-blocking control-socket client for the benchmark (docs/CONTROL.md). */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/ctl.h"
#include "proto/err.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)
#define READ_CHUNK 65536

int tf_bench_ctl_open(struct tf_bench_ctl *c, const char *home, char *why, size_t why_cap)
{
    struct sockaddr_un sa;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control.sock", home);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
        WHY("the control socket path under %s is too long for a Unix socket", home);
        return TF_E_TOO_LONG;
    }
    if (!msgpack_zone_init(&c->zone, 4096)) {
        WHY("out of memory");
        return TF_E_NOMEM;
    }
    c->zone_ready = true;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        int e = errno;
        WHY("socket: %s", strerror(e));
        return -e;
    }
    /* A Unix stream connect completes (or fails) at once. */
    if (connect(c->fd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        WHY("cannot connect to %s: %s", sa.sun_path, strerror(e));
        return -e;
    }
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        int e = errno;
        WHY("fcntl: %s", strerror(e));
        return -e;
    }
    return 0;
}

void tf_bench_ctl_close(struct tf_bench_ctl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->out);
    free(c->in);
    c->out = c->in = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    c->in_off = c->in_len = c->in_cap = c->last_len = 0;
    if (c->zone_ready)
        msgpack_zone_destroy(&c->zone);
    c->zone_ready = false;
}

/* Makes room for n more bytes at the end of a buffer, first dropping the
 * consumed prefix [0, *off). */
static int reserve(uint8_t **buf, size_t *off, size_t *len, size_t *cap, size_t n)
{
    if (*off > 0 && *off == *len) {
        *off = *len = 0;
    } else if (*off > 0 && (*off >= *cap / 2 || *cap - *len < n)) {
        memmove(*buf, *buf + *off, *len - *off);
        *len -= *off;
        *off = 0;
    }
    if (*cap - *len >= n)
        return 0;
    size_t want = *cap ? *cap : 4096;
    while (want - *len < n) {
        if (want > SIZE_MAX / 2)
            return TF_E_NOMEM;
        want *= 2;
    }
    uint8_t *p = realloc(*buf, want);
    if (p == NULL)
        return TF_E_NOMEM;
    *buf = p;
    *cap = want;
    return 0;
}

uint64_t tf_bench_ctl_begin(struct tf_bench_ctl *c, struct tf_proto_mp_writer *w, const char *verb,
                            uint32_t nargs)
{
    uint64_t id = ++c->next_id;
    tf_proto_mp_writer_init(w);
    tf_proto_mp_write_map(w, nargs > 0 ? 3 : 2);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_uint(w, id);
    tf_proto_mp_write_cstr(w, "verb");
    tf_proto_mp_write_cstr(w, verb);
    if (nargs > 0) {
        tf_proto_mp_write_cstr(w, "args");
        tf_proto_mp_write_map(w, nargs);
    }
    return id;
}

int tf_bench_ctl_flush(struct tf_bench_ctl *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return -errno;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

bool tf_bench_ctl_want_write(const struct tf_bench_ctl *c)
{
    return c->out_off < c->out_len;
}

int tf_bench_ctl_send(struct tf_bench_ctl *c, struct tf_proto_mp_writer *w)
{
    struct tf_proto_buf body;
    int rc = tf_proto_mp_writer_finish(w, &body);
    if (rc != TF_OK)
        return rc;
    if (body.len > TF_PROTO_CTL_REQUEST_MAX) {
        tf_proto_buf_free(&body);
        return TF_E_TOO_LONG;
    }
    rc =
        reserve(&c->out, &c->out_off, &c->out_len, &c->out_cap, TF_PROTO_CTL_HEADER_LEN + body.len);
    if (rc == 0) {
        tf_proto_ctl_frame_header(c->out + c->out_len, (uint32_t)body.len);
        memcpy(c->out + c->out_len + TF_PROTO_CTL_HEADER_LEN, body.data, body.len);
        c->out_len += TF_PROTO_CTL_HEADER_LEN + body.len;
    }
    tf_proto_buf_free(&body);
    return rc == 0 ? tf_bench_ctl_flush(c) : rc;
}

int tf_bench_ctl_fill(struct tf_bench_ctl *c)
{
    for (;;) {
        /* The last frame's views die here: its bytes may move. */
        c->in_off += c->last_len;
        c->last_len = 0;
        int rc = reserve(&c->in, &c->in_off, &c->in_len, &c->in_cap, READ_CHUNK);
        if (rc != 0)
            return rc;
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        c->in_len += (size_t)n;
        if (c->in_len < c->in_cap)
            return 0; /* the socket is drained */
    }
}

int tf_bench_ctl_next(struct tf_bench_ctl *c, msgpack_object *out)
{
    uint32_t body_len;
    c->in_off += c->last_len;
    c->last_len = 0;
    msgpack_zone_clear(&c->zone);
    size_t avail = c->in_len - c->in_off;
    int rc = tf_proto_ctl_frame_parse(c->in + c->in_off, avail, TF_PROTO_CTL_REPLY_MAX, &body_len);
    if (rc == TF_E_AGAIN)
        return 0;
    if (rc != TF_OK)
        return rc;
    if (avail - TF_PROTO_CTL_HEADER_LEN < body_len)
        return 0;
    rc = tf_proto_ctl_unpack(c->in + c->in_off + TF_PROTO_CTL_HEADER_LEN, body_len, &c->zone, out);
    c->last_len = TF_PROTO_CTL_HEADER_LEN + (size_t)body_len;
    return rc == TF_OK ? 1 : rc;
}

int tf_bench_ctl_reply(const msgpack_object *frame, uint64_t *id, msgpack_object *result, char *why,
                       size_t why_cap)
{
    bool ok;
    if (tf_proto_ctl_get_uint(frame, "id", id) != TF_OK ||
        tf_proto_ctl_get_bool(frame, "ok", &ok) != TF_OK) {
        WHY("the node sent a frame that is not a reply");
        return TF_E_BAD_KEY;
    }
    if (ok) {
        const msgpack_object *r = tf_proto_ctl_get(frame, "result");
        if (r != NULL)
            *result = *r;
        else
            result->type = MSGPACK_OBJECT_NIL;
        return 0;
    }
    const msgpack_object *err = tf_proto_ctl_get(frame, "error");
    const char *name = "?", *msg = "";
    size_t name_len = 1, msg_len = 0;
    if (tf_proto_ctl_get_str(err, "name", &name, &name_len) != TF_OK) {
        name = "?";
        name_len = 1;
    }
    if (tf_proto_ctl_get_str(err, "message", &msg, &msg_len) != TF_OK)
        msg_len = 0;
    WHY("%.*s: %.*s", (int)name_len, name, (int)msg_len, msg_len ? msg : "");
    return TF_E_BAD_STATE;
}

int tf_bench_ctl_call(struct tf_bench_ctl *c, struct tf_proto_mp_writer *w, double timeout_s,
                      msgpack_object *result, char *why, size_t why_cap)
{
    uint64_t want = c->next_id; /* tf_bench_ctl_begin took it */
    double deadline = tf_bench_now() + timeout_s;
    int rc = tf_bench_ctl_send(c, w);
    if (rc != 0) {
        WHY("cannot send a request: %s", tf_strerror(rc));
        return rc;
    }
    for (;;) {
        msgpack_object frame;
        while ((rc = tf_bench_ctl_next(c, &frame)) == 1) {
            uint64_t id;
            if (tf_proto_ctl_get(&frame, "event") != NULL)
                continue;
            rc = tf_bench_ctl_reply(&frame, &id, result, why, why_cap);
            if (rc == TF_E_BAD_KEY)
                return rc;
            if (id == want || id == 0)
                return rc;
        }
        if (rc < 0) {
            WHY("malformed frame from the node: %s", tf_strerror(rc));
            return rc;
        }
        double left = deadline - tf_bench_now();
        if (left <= 0) {
            WHY("no reply within %.0f s", timeout_s);
            return -ETIMEDOUT;
        }
        if (tf_bench_stop) {
            WHY("interrupted");
            return -EINTR;
        }
        struct pollfd p = {.fd = c->fd,
                           .events = (short)(POLLIN | (tf_bench_ctl_want_write(c) ? POLLOUT : 0))};
        int n = poll(&p, 1, left > 0.1 ? 100 : (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            WHY("poll: %s", strerror(errno));
            return rc;
        }
        if (n > 0 && (p.revents & POLLOUT) && (rc = tf_bench_ctl_flush(c)) != 0) {
            WHY("cannot write to the node: %s", tf_strerror(rc));
            return rc;
        }
        if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) &&
            (rc = tf_bench_ctl_fill(c)) != 0) {
            WHY("cannot read from the node: %s", tf_strerror(rc));
            return rc;
        }
    }
}
