/* SPDX-License-Identifier: MIT */
#include "node/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "node/contact.h"
#include "node/addr.h"
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

/* A token bucket: rate tokens a second up to burst, in thousandths. */
struct bucket {
    uint64_t milli;
    uint64_t last_ms;
    bool started;
};

/* An IPv4 address or an IPv6 /64, tagged with its family: what the
 * per-prefix budgets count. */
#define PREFIX_LEN TF_PROTO_LINK_PREFIX_LEN

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
    char ip[64];                           /* remote ip, for logs */
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
    /* Budgets (times on the loop's monotonic clock, uv_now). */
    uint8_t prefix[PREFIX_LEN]; /* inbound: the remote address's prefix */
    size_t queued;              /* bytes in out_head..out_tail */
    bool overflow;              /* queue over its budget: closed at the end of the turn */
    struct bucket pings;        /* PINGs the peer may still send */
    bool is_contact;            /* up with a contact that is not blocked */
    bool peer_mailbox;          /* the peer's HELLO listed the "mailbox" feature */
    bool direct;                /* direct: both HELLOs listed the "direct" feature */
    bool hello_direct;          /* direct: our own HELLO listed it */
    uint64_t born_ms;
    uint64_t last_env_ms; /* last envelope either way (or link up) */
    uint64_t ka_nonce;    /* our keepalive PING waiting for its PONG */
    uint64_t ka_sent_ms;  /* ... sent then; 0: none waiting */
    uint64_t ack_wait_ms; /* envelopes in flight, no ACK since then; 0: none */
};

/* An outbound attempt to reach pk through its card's addresses. */
struct dial {
    struct dial *next;
    struct tf_node_net *net;
    uint8_t pk[32];
    bool stranger; /* pk is not a contact: the stranger dial budgets apply */
    char addrs[TF_PROTO_CARD_ADDRS_MAX][TF_PROTO_CARD_ADDR_MAX + 1];
    size_t n_addrs, index;
    uv_getaddrinfo_t gai;
    bool resolving;
    bool cancelled;
    int last_rc;
    char last_addr[TF_PROTO_CARD_ADDR_MAX + 1];
    /* The addresses the current card address resolved to (owned), and the
     * next one to try: each dial resolves afresh and tries every address,
     * at most DIAL_ADDRS_PER_NAME of them, before the next card address. */
    struct addrinfo *res, *next_ai;
    size_t tried_ai;
};

/* Resolved addresses tried per card address: a card's name that resolves to
 * many addresses costs at most this many connection attempts per dial. */
#define DIAL_ADDRS_PER_NAME 8

/* Accept-rate buckets per prefix: a small table, least recently used
 * entry reused (the global bucket still bounds what a prefix that lost its
 * entry can do). */
#define PREFIX_BUCKETS 128

/* Stranger card addresses dialled in the current window: a full table
 * refuses dials to new stranger addresses until a window ends. */
#define STRANGER_ADDRS 256

struct tf_node_net {
    struct tf_node *node;
    uv_tcp_t listener;
    bool listening;
    struct tf_node_link *links;
    size_t n_links, n_in, n_out;
    unsigned next_num;
    struct dial *dials;
    size_t n_dials, n_stranger_dials;
    bool stopping;
    bool listener_closed; /* stopping: net is freed once no dial is left */
    struct bucket accepts;
    struct prefix_bucket {
        uint8_t prefix[PREFIX_LEN];
        struct bucket bk;
        bool used;
    } prefix_buckets[PREFIX_BUCKETS];
    struct stranger_addr {
        char addr[TF_PROTO_CARD_ADDR_MAX + 1];
        uint64_t since_ms;
        uint64_t count;
    } stranger_addrs[STRANGER_ADDRS];
    uint64_t warn_ms; /* last budget warning: at most one a second, the rest debug */
    struct tf_node_net_counters counters;
};

static void link_close(struct tf_node_link *l, int rc, const char *why);
static void timer_cb(uv_timer_t *t);
static void flush(struct tf_node_link *l);
static void dial_next(struct dial *d);
static void dial_free(struct dial *d);
static void dial_connect(struct dial *d);

/* The loop's monotonic clock in milliseconds (cached once per loop turn):
 * every link timer and budget window uses it. */
static uint64_t net_now(const struct tf_node_net *net)
{
    return uv_now(net->node->loop);
}

static const struct tf_node_config *cfg(const struct tf_node_link *l)
{
    return &l->net->node->config;
}

/* Log prefix: the link number and address, and the peer once known. */
#define LOG(level, l, fmt, ...)                                                                    \
    tf_node_log(level, "net", "link %u %s: " fmt, (l)->num, (l)->addr, __VA_ARGS__)

/* Budget warnings: at most one a second at warn level, the rest at debug,
 * so that a flood cannot flood the log too. */
static enum tf_node_log_level budget_level(struct tf_node_net *net)
{
    uint64_t now = net_now(net);
    if (net->warn_ms != 0 && now - net->warn_ms < 1000)
        return TF_NODE_LOG_DEBUG;
    net->warn_ms = now;
    return TF_NODE_LOG_WARN;
}

/* Takes one token from a bucket filled at rate a second up to burst (a new
 * bucket starts full).  False when it is empty. */
static bool bucket_take(struct bucket *bk, uint64_t rate, uint64_t burst, uint64_t now)
{
    uint64_t cap = burst * 1000;
    if (!bk->started) {
        bk->started = true;
        bk->milli = cap;
    } else if (now > bk->last_ms) {
        /* rate tokens a second are rate thousandths a millisecond. */
        uint64_t dt = now - bk->last_ms;
        uint64_t add = dt > cap ? cap * 1000 : dt * rate;
        bk->milli = add >= cap - bk->milli ? cap : bk->milli + add;
    }
    bk->last_ms = now;
    if (bk->milli < 1000)
        return false;
    bk->milli -= 1000;
    return true;
}

/* Whether pk is one of the owner's contacts (and not blocked), or one of the
 * mailboxes the owner's card names: these are served first when a budget is
 * full; everyone else is a stranger. */
static bool peer_is_contact(struct tf_node_net *net, const uint8_t pk[static 32])
{
    if (tf_proto_card_mailbox_index(&net->node->card_fields, pk) >= 0)
        return true;
    struct tf_node_contact c;
    memset(&c, 0, sizeof c);
    bool yes = tf_node_store_contact_get(net->node->store, pk, &c) == TF_OK && !c.blocked;
    tf_node_contact_deinit(&c);
    return yes;
}

/* Bytes this link holds for writing: our queue and libuv's. */
static size_t link_queued(const struct tf_node_link *l)
{
    return l->queued + uv_stream_get_write_queue_size((const uv_stream_t *)&l->tcp);
}

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
        l->queued -= sizeof *m + m->msg.len;
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
    if (l->overflow)
        return TF_E_TOO_LONG;
    if (link_queued(l) + sizeof(struct out_msg) + msg->len > cfg(l)->max_link_queue_bytes) {
        /* The peer does not read what we write.  Stop queueing; the link
         * is closed at the end of the turn (tf_node_net_committed), not
         * here, under the caller's feet. */
        l->overflow = true;
        l->net->counters.queue_full++;
        LOG(budget_level(l->net), l,
            "peer does not read: %zu bytes queued (max_link_queue_bytes %llu); closing",
            link_queued(l), (unsigned long long)cfg(l)->max_link_queue_bytes);
        uv_read_stop((uv_stream_t *)&l->tcp);
        return TF_E_TOO_LONG;
    }
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
    l->queued += sizeof *m + m->msg.len;
    return TF_OK; /* written at the end of the loop turn: tf_node_net_committed */
}

void tf_node_net_flush_unheld(struct tf_node_net *net)
{
    for (struct tf_node_link *l = net->links; l != NULL;) {
        struct tf_node_link *next = l->next; /* flush may close l */
        if (!l->overflow)
            flush(l);
        l = next;
    }
}

void tf_node_net_committed(struct tf_node_net *net, int rc)
{
    for (struct tf_node_link *l = net->links; l != NULL;) {
        struct tf_node_link *next = l->next;
        if (l->overflow) {
            link_close(l, TF_E_TOO_LONG, "peer does not read");
            l = next;
            continue;
        }
        struct out_msg **pp = &l->out_head;
        l->out_tail = NULL;
        while (*pp != NULL) {
            struct out_msg *m = *pp;
            if (m->held && rc != TF_OK) {
                /* Never promise what was not stored: drop the ACK; the
                 * sender retries. */
                *pp = m->next;
                l->queued -= sizeof *m + m->msg.len;
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
    /* What was queued before the fault goes first (the PONGs of a PING
     * burst, say), then the ERROR. */
    if (l->state == LINK_UP || l->state == LINK_HELLO)
        flush(l);
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
    if (l->outbound)
        net->n_out--;
    else
        net->n_in--;
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
        /* An outbound link that never came up: try the next resolved address,
         * then the next card address (or stop if the dial is no longer
         * wanted). */
        d->last_rc = rc != 0 ? rc : l->fail_rc;
        snprintf(d->last_addr, sizeof d->last_addr, "%s", d->addrs[d->index]);
        dial_connect(d);
    }
}

/* Closes a link that stopped answering (dead_link_ms): delivery then
 * redials as after any close. */
static void link_dead(struct tf_node_link *l, const char *what)
{
    l->net->counters.dead++;
    LOG(TF_NODE_LOG_WARN, l, "%s within %llu ms (dead_link_ms); closing", what,
        (unsigned long long)cfg(l)->dead_link_ms);
    link_close(l, -ETIMEDOUT, what);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Restarts the timer of an up link at its next deadline: the keepalive
 * PING after a third of the idle timeout, the idle timeout, the PONG or ACK
 * it waits for, and a stranger's idle limit. */
static void link_schedule(struct tf_node_link *l)
{
    const struct tf_node_config *c = cfg(l);
    uint64_t at = l->last_rx_ms + c->idle_timeout_ms;
    if (l->ka_sent_ms == 0)
        at = earliest(at, l->last_rx_ms + c->idle_timeout_ms / 3);
    else
        at = earliest(at, l->ka_sent_ms + c->dead_link_ms);
    if (l->ack_wait_ms != 0)
        at = earliest(at, l->ack_wait_ms + c->dead_link_ms);
    if (!l->is_contact)
        at = earliest(at, l->last_env_ms + c->stranger_idle_ms);
    uint64_t now = net_now(l->net);
    uv_timer_start(&l->timer, timer_cb, at > now ? at - now : 1, 0);
}

static void timer_cb(uv_timer_t *t)
{
    struct tf_node_link *l = t->data;
    if (l->state != LINK_UP) {
        l->fail_rc = -ETIMEDOUT;
        link_close(l, -ETIMEDOUT, "handshake timed out");
        return;
    }
    const struct tf_node_config *c = cfg(l);
    uint64_t now = net_now(l->net);
    if (now - l->last_rx_ms >= c->idle_timeout_ms) {
        link_close(l, -ETIMEDOUT, "idle timeout");
        return;
    }
    if (l->ka_sent_ms != 0 && now - l->ka_sent_ms >= c->dead_link_ms) {
        link_dead(l, "no PONG to our PING");
        return;
    }
    if (l->ack_wait_ms != 0 && l->in_flight == 0)
        l->ack_wait_ms = 0; /* nothing in flight on this link any more */
    if (l->ack_wait_ms != 0 && now - l->ack_wait_ms >= c->dead_link_ms) {
        link_dead(l, "no ACK for envelopes in flight");
        return;
    }
    /* The owner may have added, removed or blocked the peer since the link
     * came up: look again at each tick. */
    l->is_contact = peer_is_contact(l->net, l->peer_pk);
    if (!l->is_contact && now - l->last_env_ms >= c->stranger_idle_ms) {
        l->net->counters.stranger_idle++;
        LOG(budget_level(l->net), l,
            "stranger sent no envelope for %llu ms (stranger_idle_ms); closing",
            (unsigned long long)(now - l->last_env_ms));
        link_close(l, -ETIMEDOUT, "idle stranger");
        return;
    }
    /* Quiet for a third of the idle timeout: ask for a sign of life.  Its
     * nonce is even; `twofold ping` (node/ping.c) uses odd ones. */
    if (l->ka_sent_ms == 0 && now - l->last_rx_ms >= c->idle_timeout_ms / 3) {
        struct tf_proto_buf ping;
        uint64_t nonce = ((uint64_t)randombytes_random() << 32 | randombytes_random()) & ~1ull;
        if (tf_proto_link_ping(TF_PROTO_LINK_PING, nonce, &ping) == TF_OK) {
            if (tf_node_net_send(l, &ping, false) != TF_OK) {
                LOG(TF_NODE_LOG_DEBUG, l, "%s", "cannot queue a keepalive PING");
            } else {
                l->ka_nonce = nonce;
                l->ka_sent_ms = now;
            }
            tf_proto_buf_free(&ping);
        }
    }
    link_schedule(l);
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
    l->born_ms = net_now(net);
    l->last_rx_ms = l->born_ms;
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
    if (outbound)
        net->n_out++;
    else
        net->n_in++;
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
        .s_pk = l->net->node->id.noise_pk, /* computed once, at start */
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

/* Writes the next handshake message; payload is our card, padded, for
 * messages 2/3 (tf_proto_link_hs_payload_pad), nothing for message 1. */
static int handshake_write(struct tf_node_link *l, bool with_card)
{
    static uint8_t out[TF_PROTO_NOISE_MSG_MAX];
    static uint8_t padded[TF_PROTO_LINK_HS_PAYLOAD_LEN];
    size_t len;
    const struct tf_proto_buf *card = &l->net->node->card;
    int rc = with_card ? tf_proto_link_hs_payload_pad(card->data, card->len, padded) : TF_OK;
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&l->hs, with_card ? padded : NULL,
                                            with_card ? sizeof padded : 0, out, sizeof out, &len);
    if (rc == TF_OK)
        rc = write_frame(l, out, len);
    return rc;
}

/* Checks the card a handshake message carried against the remote static key
 * (and, outbound, against the identity we dialled). */
static int check_card(struct tf_node_link *l, const uint8_t *payload, size_t len)
{
    struct tf_proto_card card;
    size_t card_len;
    int rc = tf_proto_link_hs_payload_card(payload, len, &card_len);
    if (rc == TF_OK)
        rc = tf_proto_card_verify(payload, card_len, &card);
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
    static const char *const features[] = {TF_PROTO_LINK_FEATURE_MAILBOX,
                                           TF_PROTO_LINK_FEATURE_DIRECT};
    struct tf_proto_buf hello;
    /* direct: listed only when the config allows it (direct_envelopes); the
     * link is direct (or not) for its whole life by what this HELLO said, so
     * a reload changes new links only. */
    l->hello_direct = cfg(l)->direct_envelopes != 0;
    int rc = tf_proto_link_hello(features, l->hello_direct ? 2 : 1, &hello);
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

/* A peer key may hold max_links_per_identity links: the oldest beyond that
 * is closed (a peer that reconnects leaves its old link behind). */
static void cap_identity(struct tf_node_link *l)
{
    size_t n = 0;
    struct tf_node_link *oldest = NULL;
    for (struct tf_node_link *o = l->net->links; o != NULL; o = o->next) {
        if (o->state != LINK_UP || sodium_memcmp(o->peer_pk, l->peer_pk, 32) != 0)
            continue;
        n++;
        if (oldest == NULL || o->num < oldest->num)
            oldest = o;
    }
    if (n <= cfg(l)->max_links_per_identity || oldest == NULL || oldest == l)
        return;
    l->net->counters.identity_capped++;
    LOG(budget_level(l->net), oldest,
        "one of %zu links with the same peer (max_links_per_identity %llu); closing the oldest", n,
        (unsigned long long)cfg(l)->max_links_per_identity);
    link_close(oldest, -EBUSY, "too many links with one identity");
}

/* True if the HELLO m lists feature. */
static bool has_feature(const struct tf_proto_link_msg *m, const char *feature)
{
    size_t n = strlen(feature);
    for (size_t i = 0; i < m->n_features; i++)
        if (m->features[i].len == n && memcmp(m->features[i].ptr, feature, n) == 0)
            return true;
    return false;
}

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
        l->peer_mailbox = has_feature(m, TF_PROTO_LINK_FEATURE_MAILBOX);
        /* direct: negotiated when both HELLOs list it. */
        l->direct = l->hello_direct && has_feature(m, TF_PROTO_LINK_FEATURE_DIRECT);
        struct tf_node_net *net = l->net;
        /* A dial to this peer is done: this link serves it, or another one
         * (still resolving or connecting) stops at its next step.  This
         * link's own dial is freed even when another link's HELLO cancelled
         * it first (both nodes redialling each other after a partition):
         * kept, it would count against the dial budgets for the link's
         * whole life. */
        if (l->dial != NULL) {
            struct dial *own = l->dial;
            l->dial = NULL;
            dial_free(own);
        }
        for (struct dial *d = net->dials; d != NULL; d = d->next) {
            if (d->cancelled || sodium_memcmp(d->pk, l->peer_pk, 32) != 0)
                continue;
            d->cancelled = true;
            break;
        }
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(l->peer_pk, tid);
        l->is_contact = peer_is_contact(net, l->peer_pk);
        l->last_env_ms = net_now(net);
        LOG(TF_NODE_LOG_INFO, l, "up with %s (%s), %s", tid, l->outbound ? "outbound" : "inbound",
            l->is_contact ? "contact" : "stranger");
        cap_identity(l);
        link_schedule(l);
        tf_node__on_link_up(net->node, l);
        return;
    }
    switch (m->type) {
    case TF_PROTO_LINK_HELLO:
        fail_link(l, TF_PROTO_LINK_ERROR_PROTOCOL, "second HELLO");
        return;
    case TF_PROTO_LINK_PING: {
        const struct tf_node_config *c = cfg(l);
        if (!bucket_take(&l->pings, c->ping_rate_per_s, c->ping_burst, net_now(l->net))) {
            l->net->counters.ping_limited++;
            LOG(budget_level(l->net), l, "PINGs over %llu a second (burst %llu); closing",
                (unsigned long long)c->ping_rate_per_s, (unsigned long long)c->ping_burst);
            fail_link(l, TF_PROTO_LINK_ERROR_LIMIT, "too many PINGs");
            return;
        }
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
    case TF_PROTO_LINK_PONG:
        if (l->ka_sent_ms != 0 && m->nonce == l->ka_nonce) {
            l->ka_sent_ms = 0; /* our keepalive: the link lives */
            link_schedule(l);
            return;
        }
        tf_node__on_link_message(l->net->node, l, m);
        return;
    case TF_PROTO_LINK_DIRECT:
        /* direct: only where both HELLOs listed the feature. */
        if (!l->direct) {
            fail_link(l, TF_PROTO_LINK_ERROR_PROTOCOL, "DIRECT without the direct feature");
            return;
        }
        /* A DIRECT that does not decode is a fault of the link's peer (it
         * cannot come from anyone else): the link closes, nothing changes.
         * An unknown type alone is answered by delivery ("unsupported"). */
        struct tf_proto_envelope_direct dm;
        int drc = tf_proto_envelope_direct_decode(m->envelope.ptr, m->envelope.len, &dm);
        if (drc != TF_OK && drc != TF_E_BAD_VALUE) {
            LOG(TF_NODE_LOG_WARN, l, "malformed DIRECT message (%s); closing", tf_strerror(drc));
            fail_link(l, TF_PROTO_LINK_ERROR_PROTOCOL, "malformed DIRECT message");
            return;
        }
        l->last_env_ms = net_now(l->net);
        tf_node__on_link_message(l->net->node, l, m);
        return;
    case TF_PROTO_LINK_ENVELOPE:
    case TF_PROTO_LINK_UPLOAD:
    case TF_PROTO_LINK_PUSH:
        l->last_env_ms = net_now(l->net);
        tf_node__on_link_message(l->net->node, l, m);
        return;
    case TF_PROTO_LINK_ACK:
        l->ack_wait_ms = 0; /* progress: whatever is still in flight waits from now */
        tf_node__on_link_message(l->net->node, l, m);
        if (l->state == LINK_UP && l->in_flight > 0 && l->ack_wait_ms == 0) {
            l->ack_wait_ms = net_now(l->net);
            link_schedule(l);
        }
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
    /* A link over its queue budget reads no further: it closes at the end
     * of the turn. */
    while (l->state != LINK_CLOSING && !l->overflow) {
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
        l->last_rx_ms = net_now(l->net);
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

/* The prefix the per-address budgets count (tf_proto_link_addr_prefix);
 * all zero for an address of another family. */
static void prefix_of(const struct sockaddr_storage *ss, uint8_t out[static PREFIX_LEN])
{
    int rc = TF_E_INVALID_ARG;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
        rc = tf_proto_link_addr_prefix((const uint8_t *)&a->sin_addr, 4, out);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
        rc = tf_proto_link_addr_prefix(a->sin6_addr.s6_addr, 16, out);
    }
    if (rc != TF_OK)
        memset(out, 0, PREFIX_LEN);
}

static size_t links_from_prefix(const struct tf_node_net *net, const uint8_t *prefix)
{
    size_t n = 0;
    for (const struct tf_node_link *l = net->links; l != NULL; l = l->next)
        n += !l->outbound && memcmp(l->prefix, prefix, PREFIX_LEN) == 0;
    return n;
}

static size_t inbound_handshakes(const struct tf_node_net *net)
{
    size_t n = 0;
    for (const struct tf_node_link *l = net->links; l != NULL; l = l->next)
        n += !l->outbound && l->state == LINK_HANDSHAKE;
    return n;
}

/* The accept-rate bucket of a prefix (an unused entry, or the least
 * recently used one, taken over). */
static struct bucket *prefix_bucket(struct tf_node_net *net, const uint8_t *prefix)
{
    struct prefix_bucket *lru = &net->prefix_buckets[0];
    for (size_t i = 0; i < PREFIX_BUCKETS; i++) {
        struct prefix_bucket *p = &net->prefix_buckets[i];
        if (p->used && memcmp(p->prefix, prefix, PREFIX_LEN) == 0)
            return &p->bk;
        if (!p->used || (lru->used && p->bk.last_ms < lru->bk.last_ms))
            lru = p;
    }
    memset(lru, 0, sizeof *lru);
    lru->used = true;
    memcpy(lru->prefix, prefix, PREFIX_LEN);
    return &lru->bk;
}

/* The link to close to make room for newcomer: among links in its
 * direction (and prefix, if given), the stranger whose last envelope is
 * oldest, else the link longest in its handshake (outbound: only a dial to
 * a stranger).  A contact's link is never chosen.  NULL when there is
 * none. */
static struct tf_node_link *pick_victim(struct tf_node_net *net,
                                        const struct tf_node_link *newcomer, bool outbound,
                                        const uint8_t *prefix, bool handshakes_only)
{
    struct tf_node_link *up = NULL, *hs = NULL;
    for (struct tf_node_link *l = net->links; l != NULL; l = l->next) {
        if (l == newcomer || l->outbound != outbound || l->state == LINK_CLOSING ||
            (prefix != NULL && memcmp(l->prefix, prefix, PREFIX_LEN) != 0))
            continue;
        if (l->state == LINK_UP) {
            if (!handshakes_only && !l->is_contact &&
                (up == NULL || l->last_env_ms <= up->last_env_ms))
                up = l;
        } else if ((!outbound || (l->dial != NULL && l->dial->stranger)) &&
                   (hs == NULL || l->num < hs->num)) {
            hs = l; /* outbound: a dial to a stranger, which then fails */
        }
    }
    return up != NULL ? up : hs;
}

/* Closes a victim to make room (see pick_victim); false if there is none. */
static bool make_room(struct tf_node_net *net, const struct tf_node_link *newcomer, bool outbound,
                      const uint8_t *prefix, bool handshakes_only, const char *budget)
{
    struct tf_node_link *v = pick_victim(net, newcomer, outbound, prefix, handshakes_only);
    if (v == NULL)
        return false;
    net->counters.evicted++;
    LOG(budget_level(net), v, "%s full: closed to make room (%s, %s)", budget,
        v->state == LINK_UP ? "stranger" : "in handshake", link_state_name(v->state));
    link_close(v, -EBUSY, "evicted to make room");
    return true;
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

/* Applies the inbound budgets to a just accepted link l (counted already):
 * the accept rate, the per-prefix cap, the handshake cap, the inbound
 * budget and the total.  A full budget first evicts a stranger or a
 * handshake; false (l closed) when l is refused. */
static bool admit(struct tf_node_net *net, struct tf_node_link *l)
{
    const struct tf_node_config *c = &net->node->config;
    uint64_t now = net_now(net);
    const char *v6 = l->prefix[0] == 6 ? "/64" : "";
    /* Bursts of up to two seconds' worth pass (a node that restarts
     * reconnects all its links at once). */
    if (!bucket_take(&net->accepts, c->accept_rate_per_s, 2 * c->accept_rate_per_s, now) ||
        !bucket_take(prefix_bucket(net, l->prefix), c->accept_rate_per_prefix,
                     2 * c->accept_rate_per_prefix, now)) {
        net->counters.accept_limited++;
        LOG(budget_level(net), l,
            "refused: over the accept rate (accept_rate_per_s %llu, accept_rate_per_prefix %llu)",
            (unsigned long long)c->accept_rate_per_s,
            (unsigned long long)c->accept_rate_per_prefix);
        link_close(l, -EBUSY, "accept rate");
        return false;
    }
    if (links_from_prefix(net, l->prefix) > c->max_connections_per_ip &&
        !make_room(net, l, false, l->prefix, false, "max_connections_per_ip")) {
        net->counters.refused++;
        LOG(budget_level(net), l, "refused: too many connections from %s%s (max %llu)", l->ip, v6,
            (unsigned long long)c->max_connections_per_ip);
        link_close(l, -EMFILE, "too many connections from one address");
        return false;
    }
    if (inbound_handshakes(net) > c->max_inbound_handshakes &&
        !make_room(net, l, false, NULL, true, "max_inbound_handshakes")) {
        net->counters.refused++;
        link_close(l, -EMFILE, "too many handshakes");
        return false;
    }
    if (net->n_in > c->max_inbound_links &&
        !make_room(net, l, false, NULL, false, "max_inbound_links")) {
        net->counters.refused++;
        LOG(budget_level(net), l, "refused: %zu inbound links, all contacts (max %llu)", net->n_in,
            (unsigned long long)c->max_inbound_links);
        link_close(l, -EMFILE, "too many connections");
        return false;
    }
    if (net->n_links > c->max_connections) {
        net->counters.refused++;
        LOG(budget_level(net), l, "refused: %zu connections (max %llu)", net->n_links,
            (unsigned long long)c->max_connections);
        link_close(l, -EMFILE, "too many connections");
        return false;
    }
    return true;
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
    prefix_of(&ss, l->prefix);
    if (!admit(net, l))
        return;
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
    net->n_dials--;
    if (d->stranger)
        net->n_stranger_dials--;
    uv_freeaddrinfo(d->res);
    free(d);
    if (net->listener_closed && net->dials == NULL)
        free(net);
}

/* Dials in progress to addr: outbound links not up yet and resolving dials
 * (other than self). */
static size_t dials_to(const struct tf_node_net *net, const struct dial *self, const char *addr)
{
    size_t n = 0;
    for (const struct tf_node_link *l = net->links; l != NULL; l = l->next)
        n += l->outbound && l->dial != NULL && strcmp(l->addr, addr) == 0;
    for (const struct dial *d = net->dials; d != NULL; d = d->next)
        n += d != self && d->resolving && strcmp(d->addrs[d->index], addr) == 0;
    return n;
}

/* Counts one dial to a stranger's card address in the current window;
 * false when that address has had stranger_dials_per_addr already (or
 * STRANGER_ADDRS other addresses fill the table). */
static bool stranger_addr_take(struct tf_node_net *net, const char *addr)
{
    const struct tf_node_config *c = &net->node->config;
    uint64_t now = net_now(net), window = c->stranger_dial_window_s * 1000;
    struct stranger_addr *free_slot = NULL;
    for (size_t i = 0; i < STRANGER_ADDRS; i++) {
        struct stranger_addr *a = &net->stranger_addrs[i];
        bool live = a->count > 0 && now - a->since_ms < window;
        if (live && strcmp(a->addr, addr) == 0) {
            if (a->count >= c->stranger_dials_per_addr)
                return false;
            a->count++;
            return true;
        }
        if (!live && free_slot == NULL)
            free_slot = a;
    }
    if (free_slot == NULL)
        return false;
    snprintf(free_slot->addr, sizeof free_slot->addr, "%s", addr);
    free_slot->since_ms = now;
    free_slot->count = 1;
    return true;
}

/* Whether a dial may try addr now: at most max_dials_per_addr at once, and
 * for a stranger, at most stranger_dials_per_addr per window. */
static bool dial_addr_allowed(struct dial *d, const char *addr)
{
    struct tf_node_net *net = d->net;
    const struct tf_node_config *c = &net->node->config;
    const char *why = NULL;
    if (dials_to(net, d, addr) >= c->max_dials_per_addr)
        why = "max_dials_per_addr";
    else if (d->stranger && !stranger_addr_take(net, addr))
        why = "stranger_dials_per_addr in stranger_dial_window_s";
    if (why == NULL)
        return true;
    char esc[TF_PROTO_CARD_ADDR_MAX * 4 + 4];
    net->counters.dials_refused++;
    tf_node_log(budget_level(net), "net", "dial to %s skipped: %s",
                tf_node_log_escape(addr, strlen(addr), esc, sizeof esc), why);
    return false;
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
    d->res = d->next_ai = res;
    d->tried_ai = 0;
    dial_connect(d);
}

/* Connects to the next address the current card address resolved to; when
 * none is left (or DIAL_ADDRS_PER_NAME were tried), moves on to the next card
 * address.  A connection that fails comes back here through link_close. */
static void dial_connect(struct dial *d)
{
    struct addrinfo *ai = d->next_ai;
    while (ai != NULL && ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
        ai = ai->ai_next;
    if (d->cancelled || d->net->stopping || ai == NULL || d->tried_ai >= DIAL_ADDRS_PER_NAME) {
        uv_freeaddrinfo(d->res);
        d->res = d->next_ai = NULL;
        d->index++;
        dial_next(d);
        return;
    }
    d->next_ai = ai->ai_next;
    d->tried_ai++;
    struct tf_node_link *l = link_new(d->net, true);
    if (l == NULL) {
        d->last_rc = TF_E_NOMEM;
        d->next_ai = NULL;
        d->index = d->n_addrs;
        uv_freeaddrinfo(d->res);
        d->res = NULL;
        dial_next(d);
        return;
    }
    l->dial = d;
    memcpy(l->expected_pk, d->pk, 32);
    snprintf(l->addr, sizeof l->addr, "%s", d->addrs[d->index]);
    char ip[64] = "?";
    if (ai->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)(const void *)ai->ai_addr, ip, sizeof ip);
    else
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)ai->ai_addr, ip, sizeof ip);
    LOG(TF_NODE_LOG_DEBUG, l, "connecting to %s (address %zu the name resolved to)", ip,
        d->tried_ai);
    l->connect.data = l;
    int rc = uv_tcp_connect(&l->connect, &l->tcp, ai->ai_addr, connect_cb);
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
    if (!dial_addr_allowed(d, d->addrs[d->index])) {
        d->last_rc = -EBUSY;
        snprintf(d->last_addr, sizeof d->last_addr, "%s", d->addrs[d->index]);
        d->index++;
        dial_next(d);
        return;
    }
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
    tf_node_net_dial_as(net, pk, addrs, n_addrs, !peer_is_contact(net, pk));
}

void tf_node_net_dial_as(struct tf_node_net *net, const uint8_t pk[static 32],
                         const struct tf_proto_bytes *addrs, size_t n_addrs, bool stranger)
{
    if (net->stopping)
        return;
    for (struct dial *d = net->dials; d != NULL; d = d->next)
        if (!d->cancelled && sodium_memcmp(d->pk, pk, 32) == 0)
            return; /* already dialling */
    const struct tf_node_config *c = &net->node->config;
    const char *full = NULL;
    if (net->n_dials >= c->max_dials)
        full = "max_dials";
    else if (stranger && net->n_stranger_dials >= c->max_stranger_dials)
        full = "max_stranger_dials";
    else if (net->n_out >= c->max_outbound_links &&
             (stranger || !make_room(net, NULL, true, NULL, false, "max_outbound_links")))
        full = "max_outbound_links";
    else if (net->n_links >= c->max_connections)
        full = "max_connections";
    if (full != NULL) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(pk, tid);
        net->counters.dials_refused++;
        tf_node_log(budget_level(net), "net", "dial to %s refused: %s full (%s)", tid, full,
                    stranger ? "stranger" : "contact");
        tf_node__on_dial_failed(net->node, pk, -EBUSY, "");
        return;
    }
    struct dial *d = calloc(1, sizeof *d);
    if (d == NULL) {
        tf_node__on_dial_failed(net->node, pk, TF_E_NOMEM, "");
        return;
    }
    d->net = net;
    d->stranger = stranger;
    net->n_dials++;
    if (stranger)
        net->n_stranger_dials++;
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
    uint64_t now = net_now(link->net);
    bool was_waiting = link->ack_wait_ms != 0;
    if (n > link->in_flight)
        link->last_env_ms = now;
    /* Waiting for an ACK from the first envelope in flight; only an ACK
     * that arrives ends or restarts the wait (on_link_msg), not a resend,
     * which delivery counts as one out and one in. */
    if (n > 0 && !was_waiting)
        link->ack_wait_ms = now;
    link->in_flight = n;
    if (link->state == LINK_UP && link->ack_wait_ms != 0 && !was_waiting)
        link_schedule(link);
}

const uint8_t *tf_node_link_peer(const struct tf_node_link *link)
{
    return link->peer_pk;
}

const char *tf_node_link_addr(const struct tf_node_link *link)
{
    return link->addr;
}

bool tf_node_link_mailbox(const struct tf_node_link *link)
{
    return link->peer_mailbox;
}

bool tf_node_link_direct(const struct tf_node_link *link)
{
    return link->direct;
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

void tf_node_net_write_limits(struct tf_node_net *net, struct tf_proto_mp_writer *w)
{
    static const struct tf_node_net_counters none;
    const struct tf_node_net_counters *k = net != NULL ? &net->counters : &none;
    const struct {
        const char *key;
        uint64_t value;
    } items[] = {
        {"links_in", net != NULL ? net->n_in : 0},
        {"links_out", net != NULL ? net->n_out : 0},
        {"dials", net != NULL ? net->n_dials : 0},
        {"queue_full", k->queue_full},
        {"ping_limited", k->ping_limited},
        {"accept_limited", k->accept_limited},
        {"refused", k->refused},
        {"evicted", k->evicted},
        {"stranger_idle", k->stranger_idle},
        {"identity_capped", k->identity_capped},
        {"dials_refused", k->dials_refused},
        {"dead", k->dead},
    };
    tf_proto_mp_write_map(w, sizeof items / sizeof items[0]);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        tf_proto_mp_write_cstr(w, items[i].key);
        tf_proto_mp_write_uint(w, items[i].value);
    }
}

/* Listener. */

static void listener_free_cb(uv_handle_t *h)
{
    struct tf_node_net *net = container_of(h, struct tf_node_net, listener);
    /* uv_cancel cannot stop a lookup already running in the resolver's
     * thread: its resolved_cb still comes and reads net.  The last dial
     * freed frees net then (dial_free). */
    net->listener_closed = true;
    if (net->dials == NULL)
        free(net);
}

int tf_node_net_start(struct tf_node *node, const char *listen, struct tf_node_net **out)
{
    struct tf_node_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return TF_E_NOMEM;
    net->node = node;
    if (listen == NULL) {
        /* Links only this node dials (a node behind NAT, reached through
         * its mailboxes). */
        *out = net;
        return TF_OK;
    }
    /* The name is resolved at each start (startup may block: the loop does
     * not run yet); the first address that binds is used. */
    char host[TF_NODE_ADDR_HOST_MAX + 1], port[6];
    int rc = tf_node_addr_split(listen, host, port);
    if (rc != TF_OK) {
        free(net);
        tf_node_log(TF_NODE_LOG_ERROR, "net",
                    "listen address %s is not HOST:PORT; change it with: twofold config set "
                    "listen HOST:PORT",
                    listen);
        return rc;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    uv_getaddrinfo_t gai;
    if ((rc = uv_getaddrinfo(node->loop, &gai, NULL, host, port, &hints)) != 0) {
        free(net);
        tf_node_log(TF_NODE_LOG_ERROR, "net",
                    "cannot resolve the listen address %s: %s; change it with: twofold config "
                    "set listen HOST:PORT",
                    listen, uv_strerror(rc));
        return rc;
    }
    if ((rc = uv_tcp_init(node->loop, &net->listener)) != 0) {
        uv_freeaddrinfo(gai.addrinfo);
        free(net);
        return rc;
    }
    net->listener.data = net;
    /* Each address gets its own socket, bound here; the first that binds is
     * handed to libuv (a handle whose bind failed cannot be bound again). */
    int fd = -1;
    rc = UV_EADDRNOTAVAIL;
    for (struct addrinfo *ai = gai.addrinfo; ai != NULL && fd < 0; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int on = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            rc = -errno;
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0 && (rc = uv_tcp_open(&net->listener, fd)) != 0)
        close(fd);
    if (fd >= 0 && rc == 0)
        rc = uv_listen((uv_stream_t *)&net->listener, 128, connection_cb);
    uv_freeaddrinfo(gai.addrinfo);
    if (rc != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "net",
                    "cannot listen on %s: %s; if another program holds it, change it with: "
                    "twofold config set listen HOST:PORT",
                    listen, uv_strerror(rc));
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
    if (!net->listening) {
        net->listener_closed = true; /* there is none: freed now or by the last dial */
        if (net->dials == NULL)
            free(net);
        return;
    }
    uv_close((uv_handle_t *)&net->listener, listener_free_cb);
}
