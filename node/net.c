/* SPDX-License-Identifier: MIT */
#include "node/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "node/internal.h"
#include "node/log.h"
#include "node/node.h"
#include "proto/card.h"
#include "proto/noise.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

enum link_state {
    LINK_CONNECTING, /* outbound TCP connect in progress */
    LINK_HANDSHAKE,  /* Noise handshake */
    LINK_HELLO,      /* transport keys ready, waiting for the peer's HELLO */
    LINK_UP,
    LINK_CLOSING,
};

static const char *link_state_name(enum link_state s)
{
    switch (s) {
    case LINK_CONNECTING:
        return "connecting";
    case LINK_HANDSHAKE:
        return "handshake";
    case LINK_HELLO:
        return "hello";
    case LINK_UP:
        return "up";
    case LINK_CLOSING:
        return "closing";
    }
    return "?";
}

/* A plaintext link message waiting to be encrypted and written. */
struct out_msg {
    struct out_msg *next;
    struct tf_proto_buf msg;
    bool held;
};

struct dial;

struct tf_node_link {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    struct tf_node_net *net;
    struct tf_node_link *next, *prev;
    unsigned num;
    bool outbound;
    enum link_state state;
    char addr[TF_PROTO_CARD_ADDR_MAX + 8]; /* remote "ip:port" (or the dialled address) */
    char ip[64];                           /* remote ip, for the per-address cap */
    struct dial *dial;                     /* outbound: the dial this link serves */
    uint8_t expected_pk[32];
    uint8_t peer_pk[32]; /* authenticated, from LINK_HELLO on */
    struct tf_proto_noise_handshake hs;
    struct tf_proto_noise_cipher tx, rx;
    uint8_t *rbuf;
    size_t rlen;
    struct out_msg *out_head, *out_tail;
    uint32_t in_flight;
    uint64_t last_rx_ms;
    int open_handles; /* tcp and timer; freed when both closed */
    int fail_rc;      /* why an outbound link failed */
};

/* An outbound attempt to reach pk through its card's addresses. */
struct dial {
    struct dial *next;
    struct tf_node_net *net;
    uint8_t pk[32];
    char addrs[TF_PROTO_CARD_ADDRS_MAX][TF_PROTO_CARD_ADDR_MAX + 1];
    size_t n_addrs, index;
    uv_getaddrinfo_t gai;
    bool resolving;
    bool cancelled;
    int last_rc;
    char last_addr[TF_PROTO_CARD_ADDR_MAX + 1];
};

struct tf_node_net {
    struct tf_node *node;
    uv_tcp_t listener;
    bool listening;
    struct tf_node_link *links;
    size_t n_links;
    unsigned next_num;
    struct dial *dials;
    bool stopping;
};

static void link_close(struct tf_node_link *l, int rc, const char *why);
static void flush(struct tf_node_link *l);
static void dial_next(struct dial *d);
static void dial_free(struct dial *d);

static uint64_t now_ms(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static const struct tf_node_config *cfg(const struct tf_node_link *l)
{
    return &l->net->node->config;
}

/* Log prefix: the link number and address, and the peer once known. */
#define LOG(level, l, fmt, ...)                                                                    \
    tf_node_log(level, "net", "link %u %s: " fmt, (l)->num, (l)->addr, __VA_ARGS__)

/* Writing. */

struct write_req {
    uv_write_t req;
    size_t len;
    uint8_t data[]; /* frames: header + body each */
};

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *wr = container_of(req, struct write_req, req);
    struct tf_node_link *l = req->handle->data;
    free(wr);
    if (status < 0 && l->state != LINK_CLOSING)
        link_close(l, status, "write failed");
}

static struct write_req *write_req_new(size_t cap)
{
    struct write_req *wr = malloc(sizeof *wr + cap);
    if (wr != NULL)
        wr->len = 0;
    return wr;
}

/* Appends one frame of n raw bytes, or of the encryption of n plaintext bytes
 * (encrypt); the caller sized wr for it. */
static int append_frame(struct tf_node_link *l, struct write_req *wr, const uint8_t *p, size_t n,
                        bool encrypt)
{
    size_t body = encrypt ? n + TF_PROTO_NOISE_TAG_LEN : n;
    if (n == 0 || body > TF_PROTO_FRAME_MAX)
        return TF_E_TOO_LONG;
    uint8_t *at = wr->data + wr->len;
    tf_proto_frame_header(at, (uint16_t)body);
    at += TF_PROTO_FRAME_HEADER_LEN;
    int rc = TF_OK;
    if (encrypt) {
        rc = tf_proto_noise_cipher_encrypt(&l->tx, p, n, at, body, &body);
        l->net->node->stats.frames_sent++;
    } else {
        memcpy(at, p, n);
    }
    if (rc == TF_OK)
        wr->len += TF_PROTO_FRAME_HEADER_LEN + body;
    return rc;
}

/* Hands wr to libuv (which owns it from then on) or frees it. */
static int write_req_submit(struct tf_node_link *l, struct write_req *wr)
{
    uv_buf_t buf = uv_buf_init((char *)wr->data, (unsigned)wr->len);
    int rc = uv_write(&wr->req, (uv_stream_t *)&l->tcp, &buf, 1, write_cb);
    if (rc != 0)
        free(wr);
    else
        l->net->node->stats.writes++;
    return rc;
}

/* Writes one frame of raw bytes (a handshake message), or one encrypted link
 * message (encrypt). */
static int write_one(struct tf_node_link *l, const uint8_t *p, size_t n, bool encrypt)
{
    struct write_req *wr = write_req_new(TF_PROTO_FRAME_HEADER_LEN + n + TF_PROTO_NOISE_TAG_LEN);
    if (wr == NULL)
        return TF_E_NOMEM;
    int rc = append_frame(l, wr, p, n, encrypt);
    if (rc != TF_OK) {
        free(wr);
        return rc;
    }
    return write_req_submit(l, wr);
}

static int write_frame(struct tf_node_link *l, const uint8_t *p, size_t n)
{
    return write_one(l, p, n, false);
}

static int write_msg(struct tf_node_link *l, const struct tf_proto_buf *msg)
{
    return write_one(l, msg->data, msg->len, true);
}

static void free_out(struct out_msg *m)
{
    tf_proto_buf_free(&m->msg);
    free(m);
}

/* Writes queued messages up to the first held one, as one write: the
 * frames of a loop turn leave in one system call. */
static void flush(struct tf_node_link *l)
{
    size_t cap = 0;
    struct out_msg *m;
    for (m = l->out_head; m != NULL && !m->held; m = m->next)
        cap += TF_PROTO_FRAME_HEADER_LEN + m->msg.len + TF_PROTO_NOISE_TAG_LEN;
    if (l->state == LINK_CLOSING || cap == 0)
        return;
    struct write_req *wr = write_req_new(cap);
    int rc = wr != NULL ? TF_OK : TF_E_NOMEM;
    while (rc == TF_OK && l->out_head != NULL && !l->out_head->held) {
        m = l->out_head;
        l->out_head = m->next;
        if (l->out_head == NULL)
            l->out_tail = NULL;
        rc = append_frame(l, wr, m->msg.data, m->msg.len, true);
        free_out(m);
    }
    if (rc == TF_OK)
        rc = write_req_submit(l, wr);
    else
        free(wr);
    if (rc != 0)
        link_close(l, rc, "cannot write");
}

int tf_node_net_send(struct tf_node_link *l, const struct tf_proto_buf *msg, bool held)
{
    if (l->state != LINK_UP && l->state != LINK_HELLO)
        return TF_E_BAD_STATE;
    struct out_msg *m = calloc(1, sizeof *m);
    uint8_t *copy = malloc(msg->len);
    if (m == NULL || copy == NULL) {
        free(m);
        free(copy);
        return TF_E_NOMEM;
    }
    memcpy(copy, msg->data, msg->len);
    m->msg.data = copy;
    m->msg.len = msg->len;
    /* Keep order: anything queued behind a held message waits too. */
    m->held = held || (l->out_tail != NULL && l->out_tail->held);
    if (l->out_tail)
        l->out_tail->next = m;
    else
        l->out_head = m;
    l->out_tail = m;
    return TF_OK; /* written at the end of the loop turn: tf_node_net_committed */
}

void tf_node_net_committed(struct tf_node_net *net, int rc)
{
    for (struct tf_node_link *l = net->links; l != NULL;) {
        struct tf_node_link *next = l->next;
        struct out_msg **pp = &l->out_head;
        l->out_tail = NULL;
        while (*pp != NULL) {
            struct out_msg *m = *pp;
            if (m->held && rc != TF_OK) {
                /* Never promise what was not stored: drop the ACK; the
                 * sender retries. */
                *pp = m->next;
                free_out(m);
                continue;
            }
            m->held = false;
            l->out_tail = m;
            pp = &m->next;
        }
        flush(l);
        l = next;
    }
}

/* Sends ERROR and closes. */
static void fail_link(struct tf_node_link *l, enum tf_proto_link_error reason, const char *why)
{
    struct tf_proto_buf msg;
    if ((l->state == LINK_UP || l->state == LINK_HELLO) &&
        tf_proto_link_error(reason, why, &msg) == TF_OK) {
        (void)write_msg(l, &msg);
        tf_proto_buf_free(&msg);
    }
    link_close(l, TF_E_BAD_REQUEST, why);
}

/* Lifetime. */

static void link_free_cb(uv_handle_t *h)
{
    struct tf_node_link *l = h->data;
    if (--l->open_handles > 0)
        return;
    struct out_msg *m = l->out_head;
    while (m != NULL) {
        struct out_msg *next = m->next;
        free_out(m);
        m = next;
    }
    tf_proto_noise_handshake_deinit(&l->hs);
    tf_proto_noise_cipher_deinit(&l->tx);
    tf_proto_noise_cipher_deinit(&l->rx);
    free(l->rbuf);
    free(l);
}

static void unlink_link(struct tf_node_link *l)
{
    struct tf_node_net *net = l->net;
    if (l->prev)
        l->prev->next = l->next;
    else if (net->links == l)
        net->links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->next = l->prev = NULL;
    net->n_links--;
}

static void link_close(struct tf_node_link *l, int rc, const char *why)
{
    if (l->state == LINK_CLOSING)
        return;
    enum link_state was = l->state;
    l->state = LINK_CLOSING;
    LOG(was == LINK_UP ? TF_NODE_LOG_INFO : TF_NODE_LOG_DEBUG, l, "closed (%s -> closing): %s",
        link_state_name(was), why);
    unlink_link(l);
    if (was == LINK_UP)
        tf_node__on_link_closed(l->net->node, l);
    struct dial *d = l->dial;
    l->dial = NULL;
    uv_close((uv_handle_t *)&l->tcp, link_free_cb);
    uv_close((uv_handle_t *)&l->timer, link_free_cb);
    if (d != NULL) {
        /* An outbound link that never came up: try the next address (or stop
         * if the dial is no longer wanted). */
        d->last_rc = rc != 0 ? rc : l->fail_rc;
        snprintf(d->last_addr, sizeof d->last_addr, "%s", d->addrs[d->index]);
        d->index++;
        dial_next(d);
    }
}

static void timer_cb(uv_timer_t *t)
{
    struct tf_node_link *l = t->data;
    if (l->state != LINK_UP) {
        l->fail_rc = -ETIMEDOUT;
        link_close(l, -ETIMEDOUT, "handshake timed out");
        return;
    }
    uint64_t idle = now_ms() - l->last_rx_ms;
    if (idle >= cfg(l)->idle_timeout_ms) {
        link_close(l, -ETIMEDOUT, "idle timeout");
        return;
    }
    /* Quiet for a third of the idle timeout: ask for a sign of life. */
    if (idle >= cfg(l)->idle_timeout_ms / 3) {
        struct tf_proto_buf ping;
        if (tf_proto_link_ping(TF_PROTO_LINK_PING, 0, &ping) == TF_OK) {
            if (tf_node_net_send(l, &ping, false) != TF_OK)
                LOG(TF_NODE_LOG_DEBUG, l, "%s", "cannot queue a keepalive PING");
            tf_proto_buf_free(&ping);
        }
    }
    uv_timer_start(&l->timer, timer_cb, cfg(l)->idle_timeout_ms / 3, 0);
}

static struct tf_node_link *link_new(struct tf_node_net *net, bool outbound)
{
    struct tf_node_link *l = calloc(1, sizeof *l);
    uint8_t *rbuf = malloc(TF_PROTO_FRAME_HEADER_LEN + TF_PROTO_FRAME_MAX);
    if (l == NULL || rbuf == NULL) {
        free(l);
        free(rbuf);
        return NULL;
    }
    l->rbuf = rbuf;
    l->net = net;
    l->outbound = outbound;
    l->num = ++net->next_num;
    l->state = outbound ? LINK_CONNECTING : LINK_HANDSHAKE;
    uv_tcp_init(net->node->loop, &l->tcp);
    uv_timer_init(net->node->loop, &l->timer);
    l->tcp.data = l;
    l->timer.data = l;
    l->open_handles = 2;
    l->next = net->links;
    if (net->links)
        net->links->prev = l;
    net->links = l;
    net->n_links++;
    uv_timer_start(&l->timer, timer_cb, net->node->config.handshake_timeout_ms, 0);
    return l;
}

/* Handshake. */

static int start_handshake(struct tf_node_link *l)
{
    uint8_t e[TF_PROTO_NOISE_KEY_LEN];
    randombytes_buf(e, sizeof e);
    struct tf_proto_noise_config c = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = l->outbound ? TF_PROTO_NOISE_ROLE_INITIATOR : TF_PROTO_NOISE_ROLE_RESPONDER,
        .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = tf_proto_identity_noise_sk(&l->net->node->id),
        .e_sk = e,
    };
    /* Frames are whole messages, written once per loop turn: never wait for
     * more (Nagle would hold each small reply for the peer's delayed ACK). */
    int rc = uv_tcp_nodelay(&l->tcp, 1);
    if (rc == 0)
        rc = tf_proto_noise_handshake_init(&l->hs, &c);
    sodium_memzero(e, sizeof e);
    return rc;
}

/* Writes the next handshake message; payload is our card for messages 2/3. */
static int handshake_write(struct tf_node_link *l, bool with_card)
{
    static uint8_t out[TF_PROTO_NOISE_MSG_MAX];
    size_t len;
    const struct tf_proto_buf *card = &l->net->node->card;
    int rc = tf_proto_noise_handshake_write(&l->hs, with_card ? card->data : NULL,
                                            with_card ? card->len : 0, out, sizeof out, &len);
    if (rc == TF_OK)
        rc = write_frame(l, out, len);
    return rc;
}

/* Checks the card a handshake message carried against the remote static key
 * (and, outbound, against the identity we dialled). */
static int check_card(struct tf_node_link *l, const uint8_t *payload, size_t len)
{
    struct tf_proto_card card;
    int rc = tf_proto_card_verify(payload, len, &card);
    if (rc != TF_OK)
        return rc;
    const uint8_t *rs = tf_proto_noise_handshake_remote_static(&l->hs);
    if (rs == NULL || sodium_memcmp(rs, card.noise_pk, TF_PROTO_KEY_LEN) != 0)
        return TF_E_KEY_MISMATCH;
    if (l->outbound && sodium_memcmp(card.sign_pk, l->expected_pk, TF_PROTO_KEY_LEN) != 0)
        return TF_E_KEY_MISMATCH;
    memcpy(l->peer_pk, card.sign_pk, TF_PROTO_KEY_LEN);
    return TF_OK;
}

static int send_hello(struct tf_node_link *l)
{
    struct tf_proto_buf hello;
    int rc = tf_proto_link_hello(NULL, 0, &hello);
    if (rc == TF_OK) {
        rc = write_msg(l, &hello);
        tf_proto_buf_free(&hello);
    }
    return rc;
}

static void handshake_done(struct tf_node_link *l)
{
    int rc = tf_proto_noise_handshake_split(&l->hs, &l->tx, &l->rx);
    tf_proto_noise_handshake_deinit(&l->hs);
    if (rc == TF_OK)
        rc = send_hello(l);
    if (rc != TF_OK) {
        link_close(l, rc, "cannot finish the handshake");
        return;
    }
    l->state = LINK_HELLO;
}

static void on_handshake_frame(struct tf_node_link *l, const uint8_t *body, size_t len)
{
    static uint8_t payload[TF_PROTO_NOISE_MSG_MAX];
    size_t plen;
    int rc = tf_proto_noise_handshake_read(&l->hs, body, len, payload, sizeof payload, &plen);
    if (rc != TF_OK) {
        l->fail_rc = rc;
        link_close(l, rc, tf_strerror(rc));
        return;
    }
    if (plen > 0 || tf_proto_noise_handshake_remote_static(&l->hs) != NULL) {
        /* Messages 2 and 3 carry the card; message 1 carries nothing. */
        if (tf_proto_noise_handshake_remote_static(&l->hs) == NULL) {
            link_close(l, TF_E_BAD_REQUEST, "unexpected payload in handshake message 1");
            return;
        }
        if ((rc = check_card(l, payload, plen)) != TF_OK) {
            l->fail_rc = rc;
            LOG(TF_NODE_LOG_WARN, l, "peer's card refused: %s", tf_strerror(rc));
            link_close(l, rc, "card refused");
            return;
        }
    }
    enum tf_proto_noise_state st = tf_proto_noise_handshake_state(&l->hs);
    if (st == TF_PROTO_NOISE_STATE_WRITE) {
        if ((rc = handshake_write(l, true)) != TF_OK) {
            l->fail_rc = rc;
            link_close(l, rc, tf_strerror(rc));
            return;
        }
        st = tf_proto_noise_handshake_state(&l->hs);
    }
    if (st == TF_PROTO_NOISE_STATE_SPLIT)
        handshake_done(l);
}

/* Transport. */

static void on_link_msg(struct tf_node_link *l, const struct tf_proto_link_msg *m)
{
    if (l->state == LINK_HELLO) {
        if (m->type != TF_PROTO_LINK_HELLO) {
            fail_link(l, TF_PROTO_LINK_ERROR_PROTOCOL, "expected HELLO first");
            return;
        }
        if (m->version != TF_PROTO_LINK_VERSION) {
            fail_link(l, TF_PROTO_LINK_ERROR_VERSION, "unsupported link version");
            return;
        }
        l->state = LINK_UP;
        struct tf_node_net *net = l->net;
        /* A dial to this peer is done: this link serves it, or another one
         * (still resolving or connecting) stops at its next step. */
        for (struct dial *d = net->dials; d != NULL; d = d->next) {
            if (d->cancelled || sodium_memcmp(d->pk, l->peer_pk, 32) != 0)
                continue;
            d->cancelled = true;
            if (d == l->dial) {
                l->dial = NULL;
                dial_free(d);
            }
            break;
        }
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(l->peer_pk, tid);
        LOG(TF_NODE_LOG_INFO, l, "up with %s (%s)", tid, l->outbound ? "outbound" : "inbound");
        uv_timer_start(&l->timer, timer_cb, cfg(l)->idle_timeout_ms / 3, 0);
        tf_node__on_link_up(net->node, l);
        return;
    }
    switch (m->type) {
    case TF_PROTO_LINK_HELLO:
        fail_link(l, TF_PROTO_LINK_ERROR_PROTOCOL, "second HELLO");
        return;
    case TF_PROTO_LINK_PING: {
        struct tf_proto_buf pong;
        if (tf_proto_link_ping(TF_PROTO_LINK_PONG, m->nonce, &pong) == TF_OK) {
            if (tf_node_net_send(l, &pong, false) != TF_OK)
                LOG(TF_NODE_LOG_DEBUG, l, "%s", "cannot queue a PONG");
            tf_proto_buf_free(&pong);
        }
        return;
    }
    case TF_PROTO_LINK_ERROR: {
        char esc[256];
        LOG(TF_NODE_LOG_WARN, l, "peer reported error %llu: %s", (unsigned long long)m->reason,
            tf_node_log_escape((const char *)m->text.ptr, m->text.len, esc, sizeof esc));
        link_close(l, TF_E_BAD_REQUEST, "peer sent ERROR");
        return;
    }
    case TF_PROTO_LINK_BYE:
        link_close(l, 0, "peer said BYE");
        return;
    case TF_PROTO_LINK_ENVELOPE:
    case TF_PROTO_LINK_ACK:
    case TF_PROTO_LINK_PONG:
        tf_node__on_link_message(l->net->node, l, m);
        return;
    }
}

static void on_transport_frame(struct tf_node_link *l, uint8_t *body, size_t len)
{
    size_t plen;
    l->net->node->stats.frames_received++;
    int rc = tf_proto_noise_cipher_decrypt(&l->rx, body, len, body, len, &plen);
    if (rc != TF_OK) {
        LOG(TF_NODE_LOG_WARN, l, "frame does not decrypt (%s); closing", tf_strerror(rc));
        link_close(l, rc, "bad frame");
        return;
    }
    struct tf_proto_link_msg m;
    if ((rc = tf_proto_link_decode(body, plen, &m)) != TF_OK) {
        LOG(TF_NODE_LOG_WARN, l, "bad link message (%s); closing", tf_strerror(rc));
        fail_link(l, TF_PROTO_LINK_ERROR_PROTOCOL, "malformed link message");
        return;
    }
    on_link_msg(l, &m);
}

static void process(struct tf_node_link *l)
{
    size_t off = 0;
    while (l->state != LINK_CLOSING) {
        size_t n;
        size_t max = l->state == LINK_HANDSHAKE ? cfg(l)->max_handshake_frame : cfg(l)->max_frame;
        int rc = tf_proto_frame_parse(l->rbuf + off, l->rlen - off, max, &n);
        if (rc == TF_E_AGAIN)
            break;
        if (rc != TF_OK) {
            LOG(TF_NODE_LOG_WARN, l, "frame length refused (%s); closing", tf_strerror(rc));
            fail_link(l, TF_PROTO_LINK_ERROR_LIMIT, "frame too large");
            return;
        }
        if (l->rlen - off - TF_PROTO_FRAME_HEADER_LEN < n)
            break;
        uint8_t *body = l->rbuf + off + TF_PROTO_FRAME_HEADER_LEN;
        off += TF_PROTO_FRAME_HEADER_LEN + n;
        l->last_rx_ms = now_ms();
        if (l->state == LINK_HANDSHAKE)
            on_handshake_frame(l, body, n);
        else
            on_transport_frame(l, body, n);
    }
    if (l->state != LINK_CLOSING && off > 0) {
        memmove(l->rbuf, l->rbuf + off, l->rlen - off);
        l->rlen -= off;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct tf_node_link *l = h->data;
    buf->base = (char *)l->rbuf + l->rlen;
    buf->len = TF_PROTO_FRAME_HEADER_LEN + TF_PROTO_FRAME_MAX - l->rlen;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct tf_node_link *l = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        l->fail_rc = (int)nread;
        link_close(l, (int)nread, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
        return;
    }
    l->rlen += (size_t)nread;
    process(l);
}

/* Inbound. */

static size_t links_from_ip(const struct tf_node_net *net, const char *ip)
{
    size_t n = 0;
    for (const struct tf_node_link *l = net->links; l != NULL; l = l->next)
        n += !l->outbound && strcmp(l->ip, ip) == 0;
    return n;
}

static void format_addr(const struct sockaddr_storage *ss, char *ip, size_t ip_cap, char *addr,
                        size_t addr_cap)
{
    int port = 0;
    ip[0] = '\0';
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
        uv_ip4_name(a, ip, ip_cap);
        port = ntohs(a->sin_port);
        snprintf(addr, addr_cap, "%s:%d", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
        uv_ip6_name(a, ip, ip_cap);
        port = ntohs(a->sin6_port);
        snprintf(addr, addr_cap, "[%s]:%d", ip, port);
    } else {
        snprintf(addr, addr_cap, "?");
    }
}

static void connection_cb(uv_stream_t *server, int status)
{
    struct tf_node_net *net = server->data;
    if (status < 0) {
        tf_node_log(TF_NODE_LOG_WARN, "net", "accept: %s", uv_strerror(status));
        return;
    }
    struct tf_node_link *l = link_new(net, false);
    if (l == NULL)
        return;
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        link_close(l, TF_E_BAD_STATE, "accept failed");
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len);
    format_addr(&ss, l->ip, sizeof l->ip, l->addr, sizeof l->addr);
    const struct tf_node_config *c = &net->node->config;
    if (net->n_links > c->max_connections) {
        LOG(TF_NODE_LOG_WARN, l, "refused: %zu connections (max %llu)", net->n_links,
            (unsigned long long)c->max_connections);
        link_close(l, -EMFILE, "too many connections");
        return;
    }
    if (links_from_ip(net, l->ip) > c->max_connections_per_ip) {
        LOG(TF_NODE_LOG_WARN, l, "refused: too many connections from %s (max %llu)", l->ip,
            (unsigned long long)c->max_connections_per_ip);
        link_close(l, -EMFILE, "too many connections from one address");
        return;
    }
    LOG(TF_NODE_LOG_DEBUG, l, "%s", "accepted");
    int rc = start_handshake(l);
    if (rc == TF_OK)
        rc = uv_read_start((uv_stream_t *)&l->tcp, alloc_cb, read_cb);
    if (rc != 0)
        link_close(l, rc, "cannot start the handshake");
}

/* Outbound. */

static void connect_cb(uv_connect_t *req, int status)
{
    struct tf_node_link *l = req->data;
    if (l->state == LINK_CLOSING)
        return;
    if (status < 0) {
        l->fail_rc = status;
        link_close(l, status, uv_strerror(status));
        return;
    }
    l->state = LINK_HANDSHAKE;
    int rc = start_handshake(l);
    if (rc == TF_OK)
        rc = handshake_write(l, false);
    if (rc == TF_OK)
        rc = uv_read_start((uv_stream_t *)&l->tcp, alloc_cb, read_cb);
    if (rc != 0) {
        l->fail_rc = rc;
        link_close(l, rc, "cannot start the handshake");
    }
}

static void dial_free(struct dial *d)
{
    struct tf_node_net *net = d->net;
    for (struct dial **pp = &net->dials; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    free(d);
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dial *d = req->data;
    d->resolving = false;
    if (d->cancelled || d->net->stopping) {
        uv_freeaddrinfo(res);
        dial_free(d);
        return;
    }
    if (status < 0 || res == NULL) {
        d->last_rc = status < 0 ? status : -EHOSTUNREACH;
        snprintf(d->last_addr, sizeof d->last_addr, "%s", d->addrs[d->index]);
        uv_freeaddrinfo(res);
        d->index++;
        dial_next(d);
        return;
    }
    struct tf_node_link *l = link_new(d->net, true);
    if (l == NULL) {
        uv_freeaddrinfo(res);
        d->last_rc = TF_E_NOMEM;
        d->index = d->n_addrs;
        dial_next(d);
        return;
    }
    l->dial = d;
    memcpy(l->expected_pk, d->pk, 32);
    snprintf(l->addr, sizeof l->addr, "%s", d->addrs[d->index]);
    l->connect.data = l;
    int rc = uv_tcp_connect(&l->connect, &l->tcp, res->ai_addr, connect_cb);
    uv_freeaddrinfo(res);
    if (rc != 0)
        link_close(l, rc, uv_strerror(rc));
}

/* Tries the next address of a dial, or reports failure when none is left. */
static void dial_next(struct dial *d)
{
    struct tf_node_net *net = d->net;
    if (d->cancelled || net->stopping) {
        dial_free(d);
        return;
    }
    if (d->index >= d->n_addrs) {
        uint8_t pk[32];
        char addr[TF_PROTO_CARD_ADDR_MAX + 1];
        int rc = d->last_rc != 0 ? d->last_rc : -EHOSTUNREACH;
        memcpy(pk, d->pk, 32);
        snprintf(addr, sizeof addr, "%s", d->n_addrs ? d->last_addr : "");
        dial_free(d);
        tf_node__on_dial_failed(net->node, pk, rc, addr);
        return;
    }
    /* Split "host:port" at the last colon; strip IPv6 brackets. */
    char host[TF_PROTO_CARD_ADDR_MAX + 1], *colon;
    snprintf(host, sizeof host, "%s", d->addrs[d->index]);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        d->index++;
        dial_next(d);
        return;
    }
    *colon = '\0';
    const char *port = colon + 1;
    char *h = host;
    if (h[0] == '[') {
        h++;
        size_t n = strlen(h);
        if (n > 0 && h[n - 1] == ']')
            h[n - 1] = '\0';
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    d->gai.data = d;
    d->resolving = true;
    int rc = uv_getaddrinfo(net->node->loop, &d->gai, resolved_cb, h, port, &hints);
    if (rc != 0) {
        d->resolving = false;
        d->last_rc = rc;
        snprintf(d->last_addr, sizeof d->last_addr, "%s", d->addrs[d->index]);
        d->index++;
        dial_next(d);
    }
}

void tf_node_net_dial(struct tf_node_net *net, const uint8_t pk[static 32],
                      const struct tf_proto_bytes *addrs, size_t n_addrs)
{
    if (net->stopping)
        return;
    for (struct dial *d = net->dials; d != NULL; d = d->next)
        if (!d->cancelled && sodium_memcmp(d->pk, pk, 32) == 0)
            return; /* already dialling */
    struct dial *d = calloc(1, sizeof *d);
    if (d == NULL) {
        tf_node__on_dial_failed(net->node, pk, TF_E_NOMEM, "");
        return;
    }
    d->net = net;
    memcpy(d->pk, pk, 32);
    for (size_t i = 0; i < n_addrs && i < TF_PROTO_CARD_ADDRS_MAX; i++) {
        size_t n = addrs[i].len < TF_PROTO_CARD_ADDR_MAX ? addrs[i].len : TF_PROTO_CARD_ADDR_MAX;
        memcpy(d->addrs[i], addrs[i].ptr, n);
        d->addrs[i][n] = '\0';
        d->n_addrs++;
    }
    d->next = net->dials;
    net->dials = d;
    if (d->n_addrs == 0)
        d->last_rc = TF_E_NOT_FOUND;
    dial_next(d);
}

struct tf_node_link *tf_node_net_find(struct tf_node_net *net, const uint8_t pk[static 32])
{
    /* The newest up link wins: links are kept newest first. */
    for (struct tf_node_link *l = net->links; l != NULL; l = l->next)
        if (l->state == LINK_UP && sodium_memcmp(l->peer_pk, pk, 32) == 0)
            return l;
    return NULL;
}

uint32_t tf_node_link_in_flight(const struct tf_node_link *link)
{
    return link->in_flight;
}

void tf_node_link_set_in_flight(struct tf_node_link *link, uint32_t n)
{
    link->in_flight = n;
}

const uint8_t *tf_node_link_peer(const struct tf_node_link *link)
{
    return link->peer_pk;
}

const char *tf_node_link_addr(const struct tf_node_link *link)
{
    return link->addr;
}

void tf_node_net_write_peers(struct tf_node_net *net, struct tf_proto_mp_writer *w)
{
    uint32_t n = 0;
    for (struct tf_node_link *l = net ? net->links : NULL; l != NULL; l = l->next)
        n++;
    tf_proto_mp_write_array(w, n);
    for (struct tf_node_link *l = net ? net->links : NULL; l != NULL; l = l->next) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        bool known = l->state == LINK_UP || l->state == LINK_HELLO;
        tf_proto_mp_write_map(w, 6);
        tf_proto_mp_write_cstr(w, "id");
        if (known || l->outbound) {
            tf_proto_text_id_encode(known ? l->peer_pk : l->expected_pk, tid);
            tf_proto_mp_write_cstr(w, tid);
        } else {
            tf_proto_mp_write_nil(w);
        }
        tf_proto_mp_write_cstr(w, "alias");
        tf_node__write_alias(net->node, known ? l->peer_pk : (l->outbound ? l->expected_pk : NULL),
                             w);
        tf_proto_mp_write_cstr(w, "addr");
        tf_proto_mp_write_cstr(w, l->addr);
        tf_proto_mp_write_cstr(w, "direction");
        tf_proto_mp_write_cstr(w, l->outbound ? "out" : "in");
        tf_proto_mp_write_cstr(w, "state");
        tf_proto_mp_write_cstr(w, l->state == LINK_UP ? "up" : link_state_name(l->state));
        tf_proto_mp_write_cstr(w, "in_flight");
        tf_proto_mp_write_uint(w, l->in_flight);
    }
}

/* Listener. */

static int parse_listen(const char *listen, struct sockaddr_storage *ss)
{
    char host[TF_PROTO_CARD_ADDR_MAX + 1];
    snprintf(host, sizeof host, "%s", listen);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return -EINVAL;
    *colon = '\0';
    int port = atoi(colon + 1) /* validated by tf_proto_addr_is_valid at init */;
    char *h = host;
    if (h[0] == '[') {
        h++;
        size_t n = strlen(h);
        if (n > 0 && h[n - 1] == ']')
            h[n - 1] = '\0';
        return uv_ip6_addr(h, port, (struct sockaddr_in6 *)(void *)ss);
    }
    return uv_ip4_addr(h, port, (struct sockaddr_in *)(void *)ss);
}

static void listener_free_cb(uv_handle_t *h)
{
    free(container_of(h, struct tf_node_net, listener));
}

int tf_node_net_start(struct tf_node *node, const char *listen, struct tf_node_net **out)
{
    struct tf_node_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return TF_E_NOMEM;
    net->node = node;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = parse_listen(listen, &ss);
    if (rc != 0) {
        free(net);
        tf_node_log(TF_NODE_LOG_ERROR, "net",
                    "listen address %s must be a numeric IP and port (see twofold init "
                    "--listen)",
                    listen);
        return rc;
    }
    if ((rc = uv_tcp_init(node->loop, &net->listener)) != 0) {
        free(net);
        return rc;
    }
    net->listener.data = net;
    if ((rc = uv_tcp_bind(&net->listener, (const struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&net->listener, 128, connection_cb)) != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "net", "cannot listen on %s: %s", listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&net->listener, listener_free_cb);
        return rc;
    }
    net->listening = true;
    *out = net;
    return TF_OK;
}

void tf_node_net_stop(struct tf_node_net *net)
{
    if (net == NULL || net->stopping)
        return;
    net->stopping = true;
    /* A dial is either resolving (freed when its resolver returns, which
     * uv_cancel makes prompt) or attached to a connecting link (freed when
     * that link closes, below). */
    for (struct dial *d = net->dials; d != NULL; d = d->next) {
        d->cancelled = true;
        if (d->resolving)
            uv_cancel((uv_req_t *)&d->gai);
    }
    while (net->links != NULL) {
        struct tf_node_link *l = net->links;
        if (l->state == LINK_UP) {
            struct tf_proto_buf bye;
            if (tf_proto_link_bye(&bye) == TF_OK) {
                (void)write_msg(l, &bye);
                tf_proto_buf_free(&bye);
            }
        }
        link_close(l, 0, "node stopping");
    }
    uv_close((uv_handle_t *)&net->listener, listener_free_cb);
}
